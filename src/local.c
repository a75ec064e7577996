/* local.c - a hosted domain with no component answers for itself:
 * XEP-0199 ping and XEP-0030 disco#info to the bare domain, and
 * service-unavailable for anything else that expects an answer. */
#include "config.h"

#include <string.h>

#include "log.h"
#include "router.h"
#include "s2s.h"
#include "util.h"
#include "xmlnode.h"

#define NS_PING		"urn:xmpp:ping"
#define NS_DISCO_INFO	"http://jabber.org/protocol/disco#info"

static void
send_reply(struct worker *w, const char *local, const char *remote, struct strbuf *sb)
{
	if (router_send(w, local, remote, sb->data, sb->len) == -1)
		log_warn("local %s: reply to %s could not be delivered", local, remote);
}

/* Opening tag of a reply: from/to swapped, id mirrored. */
static int
reply_open(struct strbuf *sb, const char *name, const char *type, const struct xml_node *req)
{
	const char *from = xml_node_attr(req, "from"), *to = xml_node_attr(req, "to");
	const char *id = xml_node_attr(req, "id");

	if (strbuf_printf(sb, "<%s type='%s' from='", name, type) == -1 ||
	    xml_escape(sb, to, strlen(to)) == -1 || strbuf_appends(sb, "' to='") == -1 ||
	    xml_escape(sb, from, strlen(from)) == -1 || strbuf_appends(sb, "'") == -1)
		return -1;
	if (id != NULL && (strbuf_appends(sb, " id='") == -1 ||
	    xml_escape(sb, id, strlen(id)) == -1 || strbuf_appends(sb, "'") == -1))
		return -1;
	return 0;
}

static void
send_error(struct worker *w, const struct xml_node *req, const char *local, const char *remote,
    const char *type, const char *condition)
{
	struct strbuf sb;

	strbuf_init(&sb, 65536);
	if (reply_open(&sb, req->name, "error", req) == 0 &&
	    strbuf_printf(&sb, "><error type='%s'><%s xmlns='" NS_STANZA_ERRORS "'/></error></%s>",
	    type, condition, req->name) == 0)
		send_reply(w, local, remote, &sb);
	strbuf_free(&sb);
}

static bool
is_bare_domain(const char *jid, const char *domain)
{
	return util_domain_equal(jid, domain);
}

void
local_deliver(struct worker *w, struct xml_node *n, const char *local, const char *remote)
{
	const char *type = xml_node_attr(n, "type");
	const char *to = xml_node_attr(n, "to");
	struct xml_node *child = xml_node_first_element(n);
	struct strbuf sb;

	strbuf_init(&sb, 65536);
	if (type != NULL && strcmp(type, "error") == 0)
		goto out;	/* never answer an error with an error (RFC 6120 §8.3.1) */
	if (strcmp(n->name, "iq") == 0) {
		if (type == NULL || (strcmp(type, "get") != 0 && strcmp(type, "set") != 0))
			goto out;	/* results need no answer */
		if (is_bare_domain(to, local) && strcmp(type, "get") == 0 && child != NULL &&
		    xml_node_is(child, "ping", NS_PING)) {
			if (reply_open(&sb, "iq", "result", n) == 0 && strbuf_appends(&sb, "/>") == 0)
				send_reply(w, local, remote, &sb);
			log_info("local %s: ping from %s answered", local, xml_node_attr(n, "from"));
			goto out;
		}
		if (is_bare_domain(to, local) && strcmp(type, "get") == 0 && child != NULL &&
		    xml_node_is(child, "query", NS_DISCO_INFO) && xml_node_attr(child, "node") == NULL) {
			if (reply_open(&sb, "iq", "result", n) == 0 &&
			    strbuf_appends(&sb, "><query xmlns='" NS_DISCO_INFO "'>"
			    "<identity category='server' type='im' name='dialbackd'/>"
			    "<feature var='" NS_DISCO_INFO "'/>"
			    "<feature var='" NS_PING "'/>"
			    "</query></iq>") == 0)
				send_reply(w, local, remote, &sb);
			log_info("local %s: disco#info from %s answered", local, xml_node_attr(n, "from"));
			goto out;
		}
		send_error(w, n, local, remote, "cancel", "service-unavailable");
		goto out;
	}
	if (strcmp(n->name, "message") == 0) {
		/* No component serves this domain: tell the sender. */
		send_error(w, n, local, remote, "cancel", "service-unavailable");
		goto out;
	}
	/* presence: nobody here to receive it; RFC 6121 lets us drop it. */
	log_debug("local %s: presence from %s dropped (no component)", local, xml_node_attr(n, "from"));
out:
	strbuf_free(&sb);
	xml_node_free(n);
}
