/* router.c - stanza routing between remote servers, components and the
 * hosted domains' own answers, across workers. */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "component.h"
#include "conf.h"
#include "log.h"
#include "router.h"
#include "s2s.h"
#include "stats.h"
#include "store.h"
#include "util.h"
#include "worker.h"
#include "xmlnode.h"
#include "xmlstream.h"

/* kill(pid, 0) answers "is the owner alive?", but a syscall per stanza
 * shows in profiles: answers are kept for a moment. A dead owner is seen
 * within ALIVE_CACHE_MS; its successor clears its routes anyway. */
#define ALIVE_CACHE_SLOTS	64
#define ALIVE_CACHE_MS		200

struct alive_entry {
	pid_t pid;
	bool alive;
	uint64_t checked_ms;
};

static struct alive_entry alive_cache[ALIVE_CACHE_SLOTS];

bool
router_owner_alive(const struct worker *w, const struct store_owner *o)
{
	struct alive_entry *e;
	uint64_t now;

	if (o->pid <= 0)
		return false;
	if (o->pid == w->pid)
		return true;
	e = &alive_cache[(unsigned)o->pid % ALIVE_CACHE_SLOTS];
	now = util_now_mono_ms();
	if (e->pid == o->pid && now - e->checked_ms < ALIVE_CACHE_MS)
		return e->alive;
	e->pid = o->pid;
	e->alive = kill(o->pid, 0) == 0 || errno == EPERM;
	e->checked_ms = now;
	return e->alive;
}

static bool
owner_is_me(const struct worker *w, const struct store_owner *o)
{
	return o->slot == w->slot && o->pid == w->pid;
}

/* ---- parsing a stored stanza back ---------------------------------------- */

struct xml_node *
router_parse(const char *data, size_t len)
{
	static const char open[] = "<stream:stream xmlns='" NS_SERVER "' xmlns:stream='" NS_STREAMS "'>";
	struct xml_stream_limits lim = { len + 1024, 256, 256, 100000, 4096 };

	return xml_parse_stanza(open, sizeof(open) - 1, data, len, &lim);
}

/* ---- bounces ------------------------------------------------------------- */

void
router_bounce(struct worker *w, const char *data, size_t len, const char *error_type,
    const char *condition)
{
	struct xml_node *n = router_parse(data, len), *err, *cond;
	const char *type, *from, *to;
	char *fromdup = NULL, *todup = NULL;
	char from_dom[DOMAIN_MAX + 1], to_dom[DOMAIN_MAX + 1];
	struct strbuf sb;

	if (n == NULL) {
		log_warn("router: an undeliverable stanza could not be parsed; dropped");
		return;
	}
	type = xml_node_attr(n, "type");
	from = xml_node_attr(n, "from");
	to = xml_node_attr(n, "to");
	/* RFC 6120 §8.3.1: never answer an error with an error. */
	if ((type != NULL && strcmp(type, "error") == 0) || from == NULL || to == NULL ||
	    (strcmp(n->name, "iq") == 0 && type != NULL && strcmp(type, "result") == 0)) {
		log_info("router: undeliverable %s (%s) dropped", n->name, condition);
		xml_node_free(n);
		return;
	}
	if ((fromdup = strdup(from)) == NULL || (todup = strdup(to)) == NULL ||
	    util_jid_domain(fromdup, from_dom, sizeof(from_dom)) == -1 ||
	    util_jid_domain(todup, to_dom, sizeof(to_dom)) == -1)
		goto out;
	/* The error goes back from the intended recipient to the sender. */
	if (xml_node_set_attr(n, NULL, NULL, "from", todup) == -1 ||
	    xml_node_set_attr(n, NULL, NULL, "to", fromdup) == -1 ||
	    xml_node_set_attr(n, NULL, NULL, "type", "error") == -1 ||
	    (err = xml_node_add_child(n, NULL, "error", NS_SERVER)) == NULL ||
	    xml_node_set_attr(err, NULL, NULL, "type", error_type) == -1 ||
	    (cond = xml_node_add_child(err, NULL, condition, NS_STANZA_ERRORS)) == NULL)
		goto out;
	stats_inc(ST_STANZAS_BOUNCED);
	strbuf_init(&sb, len + 4096);
	if (xml_serialize(n, NS_SERVER, &sb) == 0) {
		log_info("router: %s from %s to %s bounced: %s", n->name, fromdup, todup, condition);
		router_send(w, to_dom, from_dom, sb.data, sb.len);
	}
	strbuf_free(&sb);
out:
	free(fromdup);
	free(todup);
	xml_node_free(n);
}

/* ---- delivery -------------------------------------------------------------- */

/* To a hosted domain: its component, wherever it is, else its own answers. */
static int
deliver_local(struct worker *w, const char *from_domain, const char *to_domain,
    const char *data, size_t len, struct xml_node *parsed)
{
	struct store_route r;
	int rc = store_route_get(w->store, ROUTE_COMPONENT, to_domain, "", &r);

	if (rc == STORE_OK && router_owner_alive(w, &r.owner)) {
		xml_node_free(parsed);
		stats_inc(ST_STANZAS_ROUTED);
		if (owner_is_me(w, &r.owner))
			return component_write(w, to_domain, data, len) == 0 ? 0 :
			    (router_bounce(w, data, len, "cancel", "service-unavailable"), -1);
		if (ipc_send(w, r.owner.slot, IPC_TO_COMPONENT, to_domain, from_domain, data, len) == 0) {
			log_debug("router: %s -> %s handed to worker %d (component)", from_domain, to_domain,
			    r.owner.slot);
			return 0;
		}
		log_warn("router: cannot hand a stanza for %s to worker %d: %s", to_domain, r.owner.slot,
		    strerror(errno));
		router_bounce(w, data, len, "wait", "resource-constraint");
		return -1;
	}
	if (parsed == NULL && (parsed = router_parse(data, len)) == NULL) {
		log_warn("router: stanza for %s could not be parsed; dropped", to_domain);
		return -1;
	}
	local_deliver(w, parsed, to_domain, from_domain);
	return 0;
}

/* To a remote domain over the (from, to) outbound pair. */
static int
deliver_remote(struct worker *w, const char *from_domain, const char *to_domain,
    const char *data, size_t len)
{
	struct store_route r, current;
	struct store_owner me = { w->slot, w->pid };
	bool claimed = false;
	uint64_t seq;
	int rc;

	rc = store_route_get(w->store, ROUTE_OUTBOUND, from_domain, to_domain, &r);
	if (rc == STORE_OK && !router_owner_alive(w, &r.owner)) {
		/* Its worker died: the route is stale, the queue is not. */
		(void)store_route_release(w->store, ROUTE_OUTBOUND, from_domain, to_domain, &r.owner);
		rc = STORE_NOTFOUND;
	}
	if (rc == STORE_OK && owner_is_me(w, &r.owner))
		return s2s_out_send(w, from_domain, to_domain, data, len);
	if (rc == STORE_OK && ipc_send(w, r.owner.slot, IPC_TO_REMOTE, from_domain, to_domain, data, len) == 0) {
		log_debug("router: %s -> %s handed to worker %d (outbound)", from_domain, to_domain, r.owner.slot);
		return 0;
	}
	/* No owner (or the owner cannot take it now): queue it, claiming the
	 * route in the same transaction if it is free. */
	rc = store_queue_append(w->store, from_domain, to_domain, data, len, time(NULL),
	    w->conf->queue_max, &me, &claimed, &current, &seq);
	if (rc == STORE_EXISTS) {
		log_warn("router: queue for %s -> %s is full (%u); stanza bounced", from_domain, to_domain,
		    w->conf->queue_max);
		router_bounce(w, data, len, "wait", "resource-constraint");
		return -1;
	}
	if (rc != STORE_OK) {
		log_warn("router: cannot queue for %s -> %s: %s", from_domain, to_domain, store_strerror(rc));
		router_bounce(w, data, len, "wait", "resource-constraint");
		return -1;
	}
	stats_inc(ST_STANZAS_QUEUED);
	if (claimed || owner_is_me(w, &current.owner))
		s2s_out_kick(w, from_domain, to_domain);
	else if (ipc_send(w, current.owner.slot, IPC_QUEUE_KICK, from_domain, to_domain, "", 0) == -1)
		log_info("router: cannot notify worker %d of queued stanzas for %s -> %s",
		    current.owner.slot, from_domain, to_domain);
	return 0;
}

int
router_send(struct worker *w, const char *from_domain, const char *to_domain,
    const char *data, size_t len)
{
	if (worker_hosts(w, to_domain))
		return deliver_local(w, from_domain, to_domain, data, len, NULL);
	if (!worker_hosts(w, from_domain)) {
		log_warn("router: stanza from %s to %s: neither domain is hosted here; dropped",
		    from_domain, to_domain);
		return -1;
	}
	if (!conf_remote_allowed(w->conf, to_domain)) {
		log_info("router: %s -> %s refused by [s2s] allow/deny", from_domain, to_domain);
		router_bounce(w, data, len, "cancel", "policy-violation");
		return -1;
	}
	return deliver_remote(w, from_domain, to_domain, data, len);
}

void
router_route(struct worker *w, struct xml_node *n, const char *src_ns,
    const char *from, const char *to, const char *raw, size_t raw_len)
{
	char from_dom[DOMAIN_MAX + 1], to_dom[DOMAIN_MAX + 1];

	if (from == NULL || to == NULL || util_jid_domain(from, from_dom, sizeof(from_dom)) == -1 ||
	    util_jid_domain(to, to_dom, sizeof(to_dom)) == -1) {
		xml_node_free(n);
		return;
	}
	router_route_pair(w, n, src_ns, raw, raw_len, from_dom, to_dom, worker_hosts(w, to_dom));
}

void
router_route_pair(struct worker *w, struct xml_node *n, const char *src_ns,
    const char *raw, size_t raw_len, const char *from_dom, const char *to_dom, bool local)
{
	struct strbuf sb;
	const char *data = raw;
	size_t len = raw_len;

	strbuf_init(&sb, (size_t)w->conf->max_stanza_size * 2 + 4096);
	if (data == NULL) {
		if (xml_serialize(n, src_ns, &sb) == -1) {
			log_warn("router: cannot serialize a stanza from %s", from_dom);
			strbuf_free(&sb);
			xml_node_free(n);
			return;
		}
		data = sb.data;
		len = sb.len;
	}
	if (!local) {
		xml_node_free(n);
		router_send(w, from_dom, to_dom, data, len);
	} else {
		/* a whole tree is kept for the hosted domain's own answers; a
		 * shallow one (raw given) is parsed from the bytes if needed */
		if (raw != NULL) {
			xml_node_free(n);
			n = NULL;
		}
		deliver_local(w, from_dom, to_dom, data, len, n);
	}
	strbuf_free(&sb);
}

void
router_ipc_deliver(struct worker *w, enum ipc_type type, const char *local,
    const char *remote, const char *data, size_t len)
{
	switch (type) {
	case IPC_TO_COMPONENT:
		/* local is the component's domain, remote the sender's */
		if (component_write(w, local, data, len) == -1)
			deliver_local(w, remote, local, data, len, NULL);
		break;
	case IPC_TO_REMOTE:
		if (s2s_out_send(w, local, remote, data, len) == -1)
			log_info("router: stanza for %s -> %s handed over but refused", local, remote);
		break;
	case IPC_QUEUE_KICK:
		s2s_out_kick(w, local, remote);
		break;
	default:
		log_warn("router: unknown message type %d from another worker", (int)type);
		break;
	}
}
