/* component.c - XEP-0114 component streams (jabber:component:accept). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>
#include <unistd.h>

#include "component.h"
#include "conf.h"
#include "conn.h"
#include "dialback.h"
#include "log.h"
#include "router.h"
#include "stats.h"
#include "store.h"
#include "util.h"
#include "worker.h"
#include "xmlnode.h"
#include "xmlstream.h"

struct component {
	struct conn *c;
	char domain[DOMAIN_MAX + 1];
	char stream_id[STREAM_ID_HEX + 1];
	bool opened;
	bool authed;			/* handshake accepted, route claimed */
	LIST_ENTRY(component) entry;
};

static LIST_HEAD(, component) components = LIST_HEAD_INITIALIZER(components);
static const struct conn_ops component_ops;

static struct component *
component_find(const char *domain)
{
	struct component *k;

	LIST_FOREACH(k, &components, entry)
		if (k->authed && util_domain_equal(k->domain, domain))
			return k;
	return NULL;
}

int
component_accept(struct worker *w, int fd, const struct sockaddr *sa)
{
	struct component *k = calloc(1, sizeof(*k));
	struct conn *c;

	if (k == NULL) {
		close(fd);
		return -1;
	}
	if ((c = conn_accept(w, CONN_COMPONENT, fd, sa, &component_ops, k)) == NULL) {
		free(k);
		return -1;
	}
	k->c = c;
	LIST_INSERT_HEAD(&components, k, entry);
	log_info("component conn %llu: accepted from %s", (unsigned long long)c->id, c->peer);
	conn_set_timeout(c, w->conf->dialback_timeout);
	return 0;
}

static void
component_header(struct component *k, const char *from)
{
	/* XEP-0114 defines no version and no features */
	conn_send_header(k->c, k->stream_id, from, NULL, false);
}

static void
component_stream_start(struct conn *c, const struct xml_node *hdr)
{
	struct component *k = c->role;
	const char *to = xml_node_attr(hdr, "to");
	const char *default_ns = NULL;
	const struct conf_domain *d;
	size_t i;

	for (i = 0; i < hdr->n_nsdecls; i++)
		if (hdr->nsdecls[i].prefix == NULL)
			default_ns = hdr->nsdecls[i].uri;
	if (dialback_stream_id(k->stream_id) == -1) {
		conn_abort(c, "no randomness for a stream id");
		return;
	}
	k->opened = true;
	if (!xml_node_is(hdr, "stream", NS_STREAMS) || default_ns == NULL ||
	    strcmp(default_ns, NS_COMPONENT) != 0) {
		component_header(k, NULL);
		conn_stream_error(c, "invalid-namespace", "expected jabber:component:accept");
		return;
	}
	d = to != NULL ? conf_domain_find(c->w->conf, to) : NULL;
	if (d == NULL || d->component_secret == NULL) {
		component_header(k, NULL);
		log_info("component conn %llu %s: no component may attach for '%s'", (unsigned long long)c->id,
		    c->peer, to != NULL ? to : "");
		conn_stream_error(c, "host-unknown", "no component is configured for that domain");
		return;
	}
	util_strlcpy(k->domain, d->name, sizeof(k->domain));
	component_header(k, k->domain);
}

static void
component_handshake(struct component *k, struct xml_node *n)
{
	struct worker *w = k->c->w;
	const struct conf_domain *d = conf_domain_find(w->conf, k->domain);
	struct store_route r, current;
	char *text;
	size_t len;
	int rc;

	if (d == NULL || d->component_secret == NULL || (text = xml_node_text(n, &len)) == NULL) {
		conn_stream_error(k->c, "not-authorized", NULL);
		return;
	}
	if (!component_handshake_check(k->stream_id, d->component_secret, text, len)) {
		util_wipe(text, len);
		free(text);
		log_warn("component conn %llu %s: bad handshake for %s", (unsigned long long)k->c->id,
		    k->c->peer, k->domain);
		conn_stream_error(k->c, "not-authorized", "handshake does not match the secret");
		return;
	}
	util_wipe(text, len);
	free(text);
	memset(&r, 0, sizeof(r));
	r.kind = ROUTE_COMPONENT;
	util_strlcpy(r.domain, k->domain, sizeof(r.domain));
	r.owner.slot = w->slot;
	r.owner.pid = w->pid;
	r.since = time(NULL);
	/* The store says "already ours" for a second component on this same
	 * worker: check the worker's own list first. */
	if (component_find(k->domain) != NULL) {
		rc = STORE_EXISTS;
		current.owner = r.owner;
	} else {
		rc = store_route_claim(w->store, &r, &current);
	}
	if (rc == STORE_EXISTS && !router_owner_alive(w, &current.owner)) {
		/* the holder died: its claim is stale */
		(void)store_route_release(w->store, ROUTE_COMPONENT, k->domain, "", &current.owner);
		rc = store_route_claim(w->store, &r, &current);
	}
	if (rc == STORE_EXISTS) {
		log_warn("component conn %llu %s: %s already has a component (worker %d); refused",
		    (unsigned long long)k->c->id, k->c->peer, k->domain, current.owner.slot);
		conn_stream_error(k->c, "conflict", "a component for this domain is already connected");
		return;
	}
	if (rc != STORE_OK) {
		log_warn("component conn %llu: cannot record the route: %s", (unsigned long long)k->c->id,
		    store_strerror(rc));
		conn_stream_error(k->c, "internal-server-error", NULL);
		return;
	}
	k->authed = true;
	conn_authenticated(k->c);
	stats_inc(ST_COMPONENTS);
	conn_write(k->c, "<handshake/>", 12);
	conn_set_timeout(k->c, 0);
	log_info("component conn %llu %s: %s attached", (unsigned long long)k->c->id, k->c->peer, k->domain);
}

/* A stanza from an attached component, addressed from and to: routed
 * when 'from' is in its domain. n (may be NULL when raw is given) is
 * freed here. */
static void
component_route(struct component *k, const char *from, const char *to, struct xml_node *n,
    const char *raw, size_t raw_len)
{
	struct conn *c = k->c;
	char fromdom[DOMAIN_MAX + 1];

	if (from == NULL || to == NULL) {
		conn_stream_error(c, "improper-addressing", "stanzas need 'from' and 'to'");
		xml_node_free(n);
		return;
	}
	/* XEP-0114 §3: 'from' must be in the component's own domain. */
	if (util_jid_domain(from, fromdom, sizeof(fromdom)) == -1 || !util_domain_equal(fromdom, k->domain)) {
		log_warn("component conn %llu: %s sent a stanza from '%s'", (unsigned long long)c->id,
		    k->domain, from);
		conn_stream_error(c, "invalid-from", "'from' must be in the component's domain");
		xml_node_free(n);
		return;
	}
	router_route(c->w, n, NS_COMPONENT, from, to, raw, raw_len);
}

static void
component_stanza(struct conn *c, struct xml_node *n)
{
	struct component *k = c->role;
	const char *raw;
	size_t raw_len;

	if (k == NULL) {
		xml_node_free(n);
		return;
	}
	if (!k->authed) {
		if (xml_node_is(n, "handshake", NS_COMPONENT))
			component_handshake(k, n);
		else
			conn_stream_error(c, "not-authorized", "handshake first");
		xml_node_free(n);
		return;
	}
	if (strcmp(n->ns, NS_COMPONENT) != 0 || (strcmp(n->name, "message") != 0 &&
	    strcmp(n->name, "presence") != 0 && strcmp(n->name, "iq") != 0)) {
		conn_stream_error(c, "unsupported-stanza-type", NULL);
		xml_node_free(n);
		return;
	}
	raw = xml_stream_raw_stanza(c->xs, &raw_len);
	component_route(k, xml_node_attr(n, "from"), xml_node_attr(n, "to"), n, raw, raw_len);
}

/* The fast path: a message, presence or iq as its bytes, no tree. */
static bool
component_raw_stanza(struct conn *c, const struct xml_stanza_head *h, const char *raw, size_t len)
{
	struct component *k = c->role;

	if (k == NULL || !k->authed || strcmp(h->ns, NS_COMPONENT) != 0)
		return false;	/* component_stanza gives the answer */
	component_route(k, h->from, h->to, NULL, raw, len);
	return true;
}

int
component_write(struct worker *w, const char *domain, const char *data, size_t len)
{
	struct component *k = component_find(domain);

	if (k == NULL || k->c == NULL || k->c->closing || k->c->dead)
		return -1;
	return conn_write(k->c, data, len);
}

void
component_shutdown(struct worker *w)
{
	struct component *k;

	LIST_FOREACH(k, &components, entry)
		if (k->c != NULL && k->c->header_sent)
			conn_stream_error(k->c, "system-shutdown", NULL);
}

void
component_reconfigure(struct worker *w)
{
	struct component *k, *next;
	const struct conf_domain *d;

	for (k = LIST_FIRST(&components); k != NULL; k = next) {
		next = LIST_NEXT(k, entry);
		if (!k->authed || k->c == NULL)
			continue;
		d = conf_domain_find(w->conf, k->domain);
		if (d == NULL || d->component_secret == NULL) {
			log_notice("component %s: domain removed from the configuration; closing", k->domain);
			conn_stream_error(k->c, "host-gone", NULL);
		}
	}
}

static void
component_timeout(struct conn *c)
{
	log_info("component conn %llu %s: no handshake in time", (unsigned long long)c->id, c->peer);
	if (!c->header_sent)
		conn_abort(c, "timeout");
	else
		conn_stream_error(c, "connection-timeout", NULL);
}

static void
component_free(struct conn *c, const char *reason)
{
	struct component *k = c->role;
	struct store_owner me = { c->w->slot, c->w->pid };

	if (k == NULL)
		return;
	if (k->authed) {
		if (store_route_release(c->w->store, ROUTE_COMPONENT, k->domain, "", &me) == STORE_ERROR)
			log_warn("component %s: cannot release the route", k->domain);
		log_info("component conn %llu: %s detached (%s)", (unsigned long long)c->id, k->domain, reason);
	}
	LIST_REMOVE(k, entry);
	c->role = NULL;
	free(k);
}

static const struct conn_ops component_ops = {
	.on_stream_start = component_stream_start,
	.on_stanza = component_stanza,
	.on_raw_stanza = component_raw_stanza,
	.on_timeout = component_timeout,
	.on_free = component_free,
};
