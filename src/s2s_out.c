/* s2s_out.c - the originating role: outbound streams, one per (local,
 * remote) pair in this worker. */
#include "config.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>

#include "conf.h"
#include "conn.h"
#include "dialback.h"
#include "log.h"
#include "ipc.h"
#include "pairindex.h"
#include "resolver.h"
#include "router.h"
#include "stats.h"
#include "s2s.h"
#include "store.h"
#include "tls.h"
#include "util.h"
#include "worker.h"
#include "xmlnode.h"

#define OUT_MAX_VERIFIES	256	/* outstanding db:verify per outbound stream */
#define OUT_DRAIN_BATCH		64	/* queued stanzas written per flush */
#define BACKOFF_SLOTS		256	/* remote domains whose failures we remember */
#define BACKOFF_MIN		2	/* seconds after the first failure */
#define BACKOFF_MAX		300

enum out_state {
	OUT_RESOLVING,		/* waiting for DNS */
	OUT_CONNECTING,		/* TCP connect in progress */
	OUT_OPENING,		/* our header sent, waiting for the peer's */
	OUT_FEATURES,		/* waiting for <stream:features> */
	OUT_STARTTLS,		/* <starttls/> sent or handshake running */
	OUT_READY,		/* negotiation done: dialback can go */
};

enum out_auth {
	AUTH_NONE,		/* no db:result sent */
	AUTH_PENDING,		/* db:result sent, waiting for the verdict */
	AUTH_VALID,
	AUTH_FAILED,
};

struct out_verify {
	uint64_t in_conn_id;		/* inbound stream waiting for the answer */
	char stream_id[256];		/* our id on that inbound stream */
	char *key;
	bool sent;
	time_t deadline;
	TAILQ_ENTRY(out_verify) entry;
};

struct s2s_out {
	struct worker *w;
	char local[DOMAIN_MAX + 1], remote[DOMAIN_MAX + 1];
	enum out_state state;
	enum out_auth auth;
	bool want_auth;			/* stanzas need this pair validated */
	struct conn *c;
	struct resolve_query *rq;
	struct resolve_result addrs;
	size_t next_addr;
	char peer_stream_id[256];
	bool peer_version1;
	time_t auth_deadline;
	char last_error[160];
	TAILQ_HEAD(, out_verify) verifies;
	size_t n_verifies;
	bool route_held;		/* we hold the outbound route in the store */
	bool draining;			/* store queue being written out */
	uint64_t inflight[OUT_DRAIN_BATCH];	/* seqs written, removed once flushed */
	size_t n_inflight;
	/* Stanzas written straight to the stream (not from the store's
	 * queue) that may still sit in its output buffer, by their place in
	 * the stream's output (conn out_added): queued again if the stream
	 * closes before they are sent. */
	struct out_unsent { uint64_t start; size_t len; } *unsent;
	size_t unsent_head, unsent_n, unsent_cap;
	TAILQ_ENTRY(s2s_out) entry;
	struct pair_index_entry index_entry;	/* in out_index */
};

static TAILQ_HEAD(, s2s_out) outs = TAILQ_HEAD_INITIALIZER(outs);
static size_t n_outs;
/* Every stanza a component sends looks its stream up by domain pair. */
static struct pair_index out_index;

static const struct conn_ops out_ops;
static void out_free(struct s2s_out *o, const char *reason);
static void out_try_next(struct s2s_out *o);

size_t
s2s_out_count(void)
{
	return n_outs;
}

static void
out_pair_store(struct s2s_out *o, enum store_pair_state state, const char *reason)
{
	struct store_pair p;

	memset(&p, 0, sizeof(p));
	util_strlcpy(p.local, o->local, sizeof(p.local));
	util_strlcpy(p.remote, o->remote, sizeof(p.remote));
	p.dir = PAIR_OUT;
	p.state = state;
	p.owner.slot = o->w->slot;
	p.owner.pid = o->w->pid;
	p.conn_id = o->c != NULL ? o->c->id : 0;
	p.since = time(NULL);
	util_strlcpy(p.stream_id, o->peer_stream_id, sizeof(p.stream_id));
	util_strlcpy(p.reason, reason != NULL ? reason : "", sizeof(p.reason));
	if (store_pair_put(o->w->store, &p) != STORE_OK)
		log_warn("s2s out %s -> %s: cannot record pair state", o->local, o->remote);
}

static struct s2s_out *
out_find(const char *local, const char *remote)
{
	struct pair_index_entry *e = pair_index_find(&out_index, local, remote);

	return e != NULL ? (struct s2s_out *)((char *)e - offsetof(struct s2s_out, index_entry)) : NULL;
}

static void
resolved(void *arg, const struct resolve_result *res)
{
	struct s2s_out *o = arg;

	o->rq = NULL;
	if (!res->ok) {
		log_warn("s2s out %s -> %s: DNS: %s", o->local, o->remote, res->error);
		out_free(o, "remote-server-not-found");
		return;
	}
	o->addrs = *res;
	o->next_addr = 0;
	out_try_next(o);
}

static struct s2s_out *
out_new(struct worker *w, const char *local, const char *remote)
{
	struct s2s_out *o = calloc(1, sizeof(*o));
	const struct conf_host *h;

	if (o == NULL)
		return NULL;
	o->w = w;
	util_strlcpy(o->local, local, sizeof(o->local));
	util_strlcpy(o->remote, remote, sizeof(o->remote));
	o->index_entry.local = o->local;
	o->index_entry.remote = o->remote;
	if (pair_index_add(&out_index, &o->index_entry) == -1) {
		free(o);
		return NULL;
	}
	TAILQ_INIT(&o->verifies);
	TAILQ_INSERT_TAIL(&outs, o, entry);
	n_outs++;
	o->state = OUT_RESOLVING;
	h = conf_host_find(w->conf, remote);
	log_info("s2s out %s -> %s: resolving%s", local, remote, h != NULL ? " ([hosts] override)" : "");
	o->rq = resolver_s2s(w->resolver, remote, h != NULL ? h->host : NULL,
	    h != NULL ? h->port : 0, resolved, o);
	if (o->rq == NULL) {
		out_free(o, "resolver failure");
		return NULL;
	}
	out_pair_store(o, PAIR_PENDING, "");
	return o;
}

struct bounce_ctx {
	struct worker *w;
	const char *condition;
	size_t n;
};

static int
bounce_one(const struct store_queued *q, void *arg)
{
	struct bounce_ctx *b = arg;

	/* A stanza refused as invalid (XEP-0220 §2.1.1) comes back as
	 * internal-server-error, anything else as remote-server-timeout. */
	router_bounce(b->w, q->data, q->len, strcmp(b->condition, "remote-server-timeout") == 0 ||
	    strcmp(b->condition, "resource-constraint") == 0 ? "wait" : "cancel", b->condition);
	b->n++;
	return 0;
}

/* Returns every queued stanza of the pair to its sender with condition. */
static size_t
out_bounce_queue(struct worker *w, const char *local, const char *remote, const char *condition)
{
	struct bounce_ctx b = { w, condition, 0 };
	size_t dropped = 0;

	/* Bounce first (may route locally), then drop what was bounced. */
	if (store_queue_foreach_pair(w->store, local, remote, 0, bounce_one, &b) != STORE_OK)
		log_warn("s2s out %s -> %s: cannot read the queue to bounce it", local, remote);
	if (store_queue_drop(w->store, local, remote, &dropped) != STORE_OK)
		log_warn("s2s out %s -> %s: cannot clear the queue", local, remote);
	return b.n;
}

/* Answers every verify still waiting with an error, bounces the queue. */
static void
out_fail_all(struct s2s_out *o, const char *condition)
{
	struct out_verify *v;
	size_t n;

	while ((v = TAILQ_FIRST(&o->verifies)) != NULL) {
		TAILQ_REMOVE(&o->verifies, v, entry);
		o->n_verifies--;
		s2s_in_verify_result(o->w, v->in_conn_id, o->remote, o->local, v->stream_id,
		    VERIFY_ERROR, condition);
		util_wipe(v->key, strlen(v->key));
		free(v->key);
		free(v);
	}
	/* On shutdown the queue stays in the store for the next start. */
	if (!o->route_held || strcmp(condition, "system-shutdown") == 0)
		return;
	n = out_bounce_queue(o->w, o->local, o->remote, condition);
	if (n > 0)
		log_warn("s2s out %s -> %s: %zu queued stanza(s) returned to their senders: %s",
		    o->local, o->remote, n, condition);
}

/* ---- backoff: a failing domain is not retried at once ------------------ */

struct backoff {
	char remote[DOMAIN_MAX + 1];
	unsigned failures;
	time_t until;
};

static struct backoff backoffs[BACKOFF_SLOTS];

static struct backoff *
backoff_find(const char *remote, bool create)
{
	struct backoff *b, *oldest = &backoffs[0];
	size_t i;

	for (i = 0; i < BACKOFF_SLOTS; i++) {
		b = &backoffs[i];
		if (b->remote[0] != '\0' && util_domain_equal(b->remote, remote))
			return b;
		if (b->until < oldest->until)
			oldest = b;
	}
	if (!create)
		return NULL;
	memset(oldest, 0, sizeof(*oldest));
	util_strlcpy(oldest->remote, remote, sizeof(oldest->remote));
	return oldest;
}

static void
backoff_failed(const char *remote)
{
	struct backoff *b = backoff_find(remote, true);
	unsigned delay = BACKOFF_MIN;
	unsigned i;

	b->failures++;
	for (i = 1; i < b->failures && delay < BACKOFF_MAX; i++)
		delay *= 2;
	if (delay > BACKOFF_MAX)
		delay = BACKOFF_MAX;
	b->until = time(NULL) + (time_t)delay;
	log_info("s2s out -> %s: %u failure(s) in a row; next attempt in %u s", remote, b->failures, delay);
}

static void
backoff_succeeded(const char *remote)
{
	struct backoff *b = backoff_find(remote, false);

	if (b != NULL)
		memset(b, 0, sizeof(*b));
}

static bool
backoff_active(const char *remote)
{
	struct backoff *b = backoff_find(remote, false);

	return b != NULL && b->until > time(NULL);
}

static void
out_free(struct s2s_out *o, const char *reason)
{
	struct conn *c = o->c;

	out_fail_all(o, reason);
	if (o->rq != NULL)
		resolver_cancel(o->rq);
	if (strcmp(reason, "remote-server-not-found") == 0 || strcmp(reason, "remote-server-timeout") == 0)
		backoff_failed(o->remote);
	if (o->route_held) {
		struct store_owner me = { o->w->slot, o->w->pid };
		if (store_route_release(o->w->store, ROUTE_OUTBOUND, o->local, o->remote, &me) == STORE_ERROR)
			log_warn("s2s out %s -> %s: cannot release the route", o->local, o->remote);
	}
	if (o->auth == AUTH_VALID || o->auth == AUTH_NONE || o->auth == AUTH_PENDING) {
		if (store_pair_delete(o->w->store, o->local, o->remote, PAIR_OUT) == STORE_ERROR)
			log_warn("s2s out %s -> %s: cannot clear pair state", o->local, o->remote);
	}
	TAILQ_REMOVE(&outs, o, entry);
	pair_index_remove(&out_index, &o->index_entry);
	n_outs--;
	o->c = NULL;
	if (c != NULL) {
		c->role = NULL;
		conn_close(c, reason);
	}
	log_info("s2s out %s -> %s: closed (%s)", o->local, o->remote, reason);
	free(o->unsent);
	free(o);
}

static void
out_try_next(struct s2s_out *o)
{
	char addr[80];

	while (o->next_addr < o->addrs.n) {
		const struct sockaddr *sa = (const struct sockaddr *)&o->addrs.addrs[o->next_addr];
		socklen_t len = o->addrs.lens[o->next_addr];

		o->next_addr++;
		util_format_addr(sa, addr, sizeof(addr));
		o->state = OUT_CONNECTING;
		o->c = conn_connect(o->w, sa, len, &out_ops, o);
		if (o->c != NULL) {
			log_debug("s2s out %s -> %s: connecting to %s", o->local, o->remote, addr);
			conn_set_timeout(o->c, o->w->conf->connect_timeout);
			return;
		}
		log_info("s2s out %s -> %s: cannot connect to %s", o->local, o->remote, addr);
	}
	log_warn("s2s out %s -> %s: no address reachable (%s)", o->local, o->remote,
	    o->last_error[0] != '\0' ? o->last_error : "no addresses");
	/* RFC 6120 §10.4.3: resolved, but no stream could be negotiated. */
	out_free(o, "remote-server-timeout");
}

static void
out_send_header(struct s2s_out *o)
{
	o->state = OUT_OPENING;
	conn_send_header(o->c, NULL, o->local, o->remote, true);
	conn_set_timeout(o->c, o->w->conf->dialback_timeout);
}

static void
out_connected(struct conn *c)
{
	struct s2s_out *o = c->role;

	if (o == NULL)
		return;
	stats_inc(ST_STREAMS_OUT);
	log_info("s2s out %s -> %s: connected to %s (conn %llu)", o->local, o->remote, c->peer,
	    (unsigned long long)c->id);
	out_send_header(o);
}

static void
out_connect_failed(struct conn *c, const char *why)
{
	struct s2s_out *o = c->role;

	if (o == NULL)
		return;
	log_info("s2s out %s -> %s: connect to %s failed: %s", o->local, o->remote, c->peer, why);
	snprintf(o->last_error, sizeof(o->last_error), "%s: %s", c->peer, why);
	c->role = NULL;
	o->c = NULL;
	out_try_next(o);
}

static void
out_send_verifies(struct s2s_out *o)
{
	struct out_verify *v;

	TAILQ_FOREACH(v, &o->verifies, entry) {
		if (v->sent)
			continue;
		v->sent = true;
		if (conn_printf(o->c, "<db:verify from='%s' to='%s' id='%s'>%s</db:verify>",
		    o->local, o->remote, v->stream_id, v->key) == -1)
			return;
		log_info("s2s out %s -> %s: db:verify sent for inbound conn %llu", o->local, o->remote,
		    (unsigned long long)v->in_conn_id);
	}
}

static void
out_send_result(struct s2s_out *o)
{
	struct store_key k;
	time_t now = time(NULL);
	int rc;

	if (o->peer_stream_id[0] == '\0') {
		log_warn("s2s out %s -> %s: peer sent no stream id; cannot do dialback", o->local, o->remote);
		out_free(o, "remote-server-timeout");
		return;
	}
	memset(&k, 0, sizeof(k));
	util_strlcpy(k.originating, o->local, sizeof(k.originating));
	util_strlcpy(k.receiving, o->remote, sizeof(k.receiving));
	util_strlcpy(k.stream_id, o->peer_stream_id, sizeof(k.stream_id));
	if (dialback_key(o->w->secret_digest, o->remote, o->local, o->peer_stream_id, k.key) == -1) {
		out_free(o, "internal-server-error");
		return;
	}
	k.issued = now;
	k.expires = now + (time_t)o->w->conf->key_lifetime;
	k.owner.slot = o->w->slot;
	k.owner.pid = o->w->pid;
	/* The key must be in the store before the peer can ask for it. */
	rc = store_key_put(o->w->store, &k);
	if (rc != STORE_OK) {
		log_warn("s2s out %s -> %s: cannot store dialback key: %s", o->local, o->remote,
		    store_strerror(rc));
		util_wipe(k.key, sizeof(k.key));
		out_free(o, "internal-server-error");
		return;
	}
	o->auth = AUTH_PENDING;
	stats_inc(ST_DIALBACK_ATTEMPTS);
	conn_printf(o->c, "<db:result from='%s' to='%s'>%s</db:result>", o->local, o->remote, k.key);
	util_wipe(k.key, sizeof(k.key));
	log_info("s2s out %s -> %s: db:result sent (stream %s)", o->local, o->remote, o->peer_stream_id);
	conn_set_timeout(o->c, o->w->conf->dialback_timeout);
}

struct drain_ctx {
	struct s2s_out *o;
	int failed;
};

static int
drain_one(const struct store_queued *q, void *arg)
{
	struct drain_ctx *d = arg;
	struct s2s_out *o = d->o;

	if (o->c == NULL || conn_write(o->c, q->data, q->len) == -1) {
		d->failed = 1;
		return 1;
	}
	o->inflight[o->n_inflight++] = q->seq;
	return 0;
}

/* Writes the next batch of the store queue; entries are removed from the
 * store only once the connection's output has been flushed to the socket
 * (out_drained), so a crash before that keeps them queued. */
static void
out_drain(struct s2s_out *o)
{
	struct drain_ctx d = { o, 0 };

	if (o->c == NULL || o->auth != AUTH_VALID || o->n_inflight > 0)
		return;
	o->draining = true;
	if (store_queue_foreach_pair(o->w->store, o->local, o->remote, OUT_DRAIN_BATCH, drain_one, &d) != STORE_OK)
		log_warn("s2s out %s -> %s: cannot read the queue", o->local, o->remote);
	if (o->n_inflight == 0)
		o->draining = false;	/* queue empty: direct writes from now on */
}

/* Forgets the written stanzas the kernel has taken. */
static void
unsent_prune(struct s2s_out *o)
{
	uint64_t sent;

	if (o->c == NULL || o->c->bev == NULL)
		return;
	sent = o->c->out_added - evbuffer_get_length(bufferevent_get_output(o->c->bev));
	while (o->unsent_n > 0 &&
	    o->unsent[o->unsent_head].start + o->unsent[o->unsent_head].len <= sent) {
		o->unsent_head++;
		o->unsent_n--;
	}
	if (o->unsent_n == 0) {
		/* an idle stream keeps nothing */
		free(o->unsent);
		o->unsent = NULL;
		o->unsent_head = o->unsent_cap = 0;
	}
}

/* Notes a stanza written at output position start. Out of memory only
 * means it cannot be queued again should the stream close under it. */
static void
unsent_note(struct s2s_out *o, uint64_t start, size_t len)
{
	unsent_prune(o);
	if (o->unsent_head + o->unsent_n == o->unsent_cap) {
		if (o->unsent_head > 0) {
			memmove(o->unsent, o->unsent + o->unsent_head, o->unsent_n * sizeof(*o->unsent));
			o->unsent_head = 0;
		} else {
			size_t cap = o->unsent_cap == 0 ? 64 : o->unsent_cap * 2;
			struct out_unsent *grown = reallocarray(o->unsent, cap, sizeof(*grown));
			if (grown == NULL)
				return;
			o->unsent = grown;
			o->unsent_cap = cap;
		}
	}
	o->unsent[o->unsent_head + o->unsent_n++] = (struct out_unsent){ start, len };
}

/* The stream c is closing under a validated pair: the stanzas still in
 * its output buffer go back to the store's queue, in order, for the next
 * stream (out_reopen); one the kernel took only part of is lost to the
 * peer anyway and is logged. Bounced when the queue cannot take them. */
static void
unsent_requeue(struct s2s_out *o, struct conn *c)
{
	struct store_owner me = { o->w->slot, o->w->pid };
	struct evbuffer *out;
	uint64_t sent;
	size_t i, requeued = 0, bounced = 0, cut = 0;

	if (c->bev == NULL || o->unsent_n == 0)
		goto done;
	out = bufferevent_get_output(c->bev);
	sent = c->out_added - evbuffer_get_length(out);
	/* the bufferevent keeps its output's front frozen, even for reading */
	(void)evbuffer_unfreeze(out, 1);
	for (i = o->unsent_head; i < o->unsent_head + o->unsent_n; i++) {
		const struct out_unsent *u = &o->unsent[i];
		struct store_route current;
		struct evbuffer_ptr at;
		bool claimed;
		uint64_t seq;
		char *data;

		if (u->start + u->len <= sent)
			continue;
		if (u->start < sent) {
			cut++;
			continue;
		}
		if ((data = malloc(u->len)) == NULL ||
		    evbuffer_ptr_set(out, &at, (size_t)(u->start - sent), EVBUFFER_PTR_SET) == -1 ||
		    evbuffer_copyout_from(out, &at, data, u->len) != (ev_ssize_t)u->len) {
			free(data);
			log_warn("s2s out %s -> %s: cannot read back an unsent stanza", o->local, o->remote);
			continue;
		}
		if (store_queue_append(o->w->store, o->local, o->remote, data, u->len, time(NULL),
		    o->w->conf->queue_max, &me, &claimed, &current, &seq) == STORE_OK) {
			requeued++;
		} else {
			router_bounce(o->w, data, u->len, "wait", "resource-constraint");
			bounced++;
		}
		free(data);
	}
	if (requeued + bounced + cut > 0)
		log_notice("s2s out %s -> %s: stream closed with %zu stanza(s) unsent: %zu queued for "
		    "a new stream, %zu bounced (queue full), %zu cut off mid-write", o->local, o->remote,
		    requeued + bounced + cut, requeued, bounced, cut);
done:
	free(o->unsent);
	o->unsent = NULL;
	o->unsent_head = o->unsent_n = o->unsent_cap = 0;
}

static void
out_drained(struct conn *c)
{
	struct s2s_out *o = c->role;
	size_t i;

	if (o == NULL)
		return;
	unsent_prune(o);
	if (o->n_inflight == 0)
		return;
	for (i = 0; i < o->n_inflight; i++)
		if (store_queue_remove(o->w->store, o->local, o->remote, o->inflight[i]) == STORE_ERROR)
			log_warn("s2s out %s -> %s: cannot remove a sent stanza from the queue", o->local, o->remote);
	log_debug("s2s out %s -> %s: %zu queued stanza(s) sent", o->local, o->remote, o->n_inflight);
	o->n_inflight = 0;
	out_drain(o);
}

/* Negotiation is done: dialback and verifies may go. */
static void
out_ready(struct s2s_out *o)
{
	o->state = OUT_READY;
	out_send_verifies(o);
	if (o->c == NULL)
		return;
	if (o->want_auth && o->auth == AUTH_NONE)
		out_send_result(o);
	else if (o->auth != AUTH_PENDING)
		conn_set_timeout(o->c, o->w->conf->dialback_timeout);
}

static void
out_stream_start(struct conn *c, const struct xml_node *hdr)
{
	struct s2s_out *o = c->role;
	const char *id, *version;

	if (o == NULL)
		return;
	if (!xml_node_is(hdr, "stream", NS_STREAMS)) {
		conn_stream_error(c, "invalid-namespace", NULL);
		return;
	}
	id = xml_node_attr(hdr, "id");
	version = xml_node_attr(hdr, "version");
	util_strlcpy(o->peer_stream_id, id != NULL ? id : "", sizeof(o->peer_stream_id));
	o->peer_version1 = version != NULL && strncmp(version, "1.", 2) == 0;
	if (!o->peer_version1) {
		/* Legacy (pre-1.0) peer: no features, dialback right away. */
		if (o->w->conf->tls == TLS_MODE_REQUIRED && !c->tls) {
			log_warn("s2s out %s -> %s: peer has no STARTTLS (legacy stream) but tls = required",
			    o->local, o->remote);
			out_free(o, "policy-violation");
			return;
		}
		out_ready(o);
		return;
	}
	o->state = OUT_FEATURES;
}

static void
out_features(struct s2s_out *o, struct xml_node *features)
{
	struct xml_node *starttls = xml_node_child(features, "starttls", NS_TLS);
	enum tls_mode mode = o->w->conf->tls;

	if (starttls != NULL && !o->c->tls && mode != TLS_MODE_OFF) {
		o->state = OUT_STARTTLS;
		conn_printf(o->c, "<starttls xmlns='" NS_TLS "'/>");
		return;
	}
	if (!o->c->tls && mode == TLS_MODE_REQUIRED) {
		log_warn("s2s out %s -> %s: peer does not offer STARTTLS but tls = required",
		    o->local, o->remote);
		out_free(o, "policy-violation");
		return;
	}
	if (starttls != NULL && xml_node_child(starttls, "required", NS_TLS) != NULL && !o->c->tls) {
		log_warn("s2s out %s -> %s: peer requires STARTTLS but tls = off", o->local, o->remote);
		out_free(o, "policy-violation");
		return;
	}
	out_ready(o);
}

static void
out_dialback_result(struct s2s_out *o, struct xml_node *n)
{
	const char *type = xml_node_attr(n, "type");
	const char *from = xml_node_attr(n, "from"), *to = xml_node_attr(n, "to");

	/* XEP-0220 §3.1: only an answer to a request we sent on this stream. */
	if (o->auth != AUTH_PENDING || from == NULL || to == NULL ||
	    !util_domain_equal(from, o->remote) || !util_domain_equal(to, o->local)) {
		log_warn("s2s out %s -> %s: unsolicited db:result (from=%s to=%s); ignored",
		    o->local, o->remote, from != NULL ? from : "", to != NULL ? to : "");
		return;
	}
	if (type != NULL && strcmp(type, "valid") == 0) {
		o->auth = AUTH_VALID;
		log_info("s2s out %s -> %s: dialback valid", o->local, o->remote);
		stats_inc(ST_DIALBACK_VALID);
		backoff_succeeded(o->remote);
		out_pair_store(o, PAIR_VALID, "");
		conn_set_timeout(o->c, o->w->conf->idle_timeout);
		out_drain(o);
		return;
	}
	o->auth = AUTH_FAILED;
	if (type != NULL && strcmp(type, "invalid") == 0) {
		log_warn("s2s out %s -> %s: dialback invalid (peer rejected our key)", o->local, o->remote);
		out_pair_store(o, PAIR_INVALID, "peer answered invalid");
		stats_inc(ST_DIALBACK_INVALID);
		out_free(o, "internal-server-error");
	} else {
		struct xml_node *err = xml_node_child(n, "error", NULL);
		struct xml_node *cond = err != NULL ? xml_node_first_element(err) : NULL;

		log_warn("s2s out %s -> %s: dialback error from peer: %s", o->local, o->remote,
		    cond != NULL ? cond->name : "(no condition)");
		out_pair_store(o, PAIR_FAILED, cond != NULL ? cond->name : "dialback error");
		stats_inc(ST_DIALBACK_ERRORS);
		out_free(o, "remote-server-timeout");
	}
}

static void
out_verify_answer(struct s2s_out *o, struct xml_node *n)
{
	const char *type = xml_node_attr(n, "type");
	const char *from = xml_node_attr(n, "from"), *to = xml_node_attr(n, "to");
	const char *id = xml_node_attr(n, "id");
	struct out_verify *v;
	enum verify_verdict verdict;

	if (from == NULL || to == NULL || id == NULL || !util_domain_equal(from, o->remote) ||
	    !util_domain_equal(to, o->local)) {
		log_warn("s2s out %s -> %s: db:verify answer with wrong from/to; ignored", o->local, o->remote);
		return;
	}
	TAILQ_FOREACH(v, &o->verifies, entry)
		if (v->sent && strcmp(v->stream_id, id) == 0)
			break;
	if (v == NULL) {
		log_warn("s2s out %s -> %s: unsolicited db:verify answer (id %s); ignored",
		    o->local, o->remote, id);
		return;
	}
	TAILQ_REMOVE(&o->verifies, v, entry);
	o->n_verifies--;
	if (type != NULL && strcmp(type, "valid") == 0)
		verdict = VERIFY_VALID;
	else if (type != NULL && strcmp(type, "invalid") == 0)
		verdict = VERIFY_INVALID;
	else
		verdict = VERIFY_ERROR;
	s2s_in_verify_result(o->w, v->in_conn_id, o->remote, o->local, v->stream_id, verdict,
	    verdict == VERIFY_ERROR ? "remote-server-not-found" : NULL);
	util_wipe(v->key, strlen(v->key));
	free(v->key);
	free(v);
	/* A stream opened only to verify is closed once its answers are in. */
	if (o->n_verifies == 0 && !o->want_auth)
		out_free(o, "verification done");
}

static void
out_stanza(struct conn *c, struct xml_node *n)
{
	struct s2s_out *o = c->role;

	if (o == NULL)
		goto out;
	if (xml_node_is(n, "features", NS_STREAMS) && o->state == OUT_FEATURES) {
		out_features(o, n);
	} else if (xml_node_is(n, "proceed", NS_TLS) && o->state == OUT_STARTTLS) {
		if (conn_start_tls(c, tls_client_ctx(o->w->tls), false, o->remote) == 0)
			log_debug("s2s out %s -> %s: TLS handshake", o->local, o->remote);
		else
			conn_abort(c, "out of memory");
	} else if (xml_node_is(n, "failure", NS_TLS) && o->state == OUT_STARTTLS) {
		log_warn("s2s out %s -> %s: peer refused STARTTLS", o->local, o->remote);
		out_free(o, "remote-server-timeout");
	} else if (xml_node_is(n, "result", NS_DIALBACK) && o->state == OUT_READY) {
		out_dialback_result(o, n);
	} else if (xml_node_is(n, "verify", NS_DIALBACK) && o->state == OUT_READY) {
		out_verify_answer(o, n);
	} else if (xml_node_is(n, "error", NS_STREAMS)) {
		struct xml_node *cond = xml_node_first_element(n);
		log_warn("s2s out %s -> %s: stream error from peer: %s", o->local, o->remote,
		    cond != NULL ? cond->name : "(none)");
		out_free(o, "remote-server-timeout");
	} else {
		log_info("s2s out %s -> %s: unexpected <%s/> (state %d); ignored", o->local, o->remote,
		    n->name, (int)o->state);
	}
out:
	xml_node_free(n);
}

static void
out_tls_ready(struct conn *c)
{
	struct s2s_out *o = c->role;
	char desc[128];

	if (o == NULL)
		return;
	tls_describe(bufferevent_openssl_get_ssl(c->bev), desc, sizeof(desc));
	log_info("s2s out %s -> %s: TLS established (%s)", o->local, o->remote, desc);
	out_send_header(o);
}

static void
out_timeout(struct conn *c)
{
	struct s2s_out *o = c->role;

	if (o == NULL) {
		conn_close(c, "timeout");
		return;
	}
	switch (o->state) {
	case OUT_CONNECTING:
		log_info("s2s out %s -> %s: connect to %s timed out", o->local, o->remote, c->peer);
		snprintf(o->last_error, sizeof(o->last_error), "%s: connect timeout", c->peer);
		c->role = NULL;
		o->c = NULL;
		conn_abort(c, "connect timeout");
		out_try_next(o);
		return;
	case OUT_READY:
		if (o->auth == AUTH_VALID) {
			uint64_t idle = util_now_mono_ms() - (c->last_read_ms > c->last_write_ms ?
			    c->last_read_ms : c->last_write_ms);
			if (idle + 500 >= (uint64_t)o->w->conf->idle_timeout * 1000) {
				log_info("s2s out %s -> %s: idle for %us; closing", o->local, o->remote,
				    o->w->conf->idle_timeout);
				out_free(o, "idle");
				return;
			}
			conn_set_timeout(c, o->w->conf->idle_timeout - (unsigned)(idle / 1000));
			return;
		}
		if (o->auth == AUTH_NONE && o->n_verifies == 0 && !o->want_auth) {
			out_free(o, "idle");
			return;
		}
		break;
	default:
		break;
	}
	log_warn("s2s out %s -> %s: dialback timed out (state %d)", o->local, o->remote, (int)o->state);
	out_pair_store(o, PAIR_FAILED, "timeout");
	stats_inc(ST_DIALBACK_TIMEOUTS);
	o->auth = AUTH_FAILED;
	out_free(o, "remote-server-timeout");
}

static struct s2s_out *out_ensure(struct worker *w, const char *local, const char *remote);

/* A validated stream closed under us (the peer's idle timeout, its
 * restart) is not a failure: no backoff, nothing bounced. What is still
 * queued goes out over a new stream; the route stays ours meanwhile. */
static void
out_reopen(struct s2s_out *o)
{
	struct worker *w = o->w;
	struct store_owner me = { w->slot, w->pid };
	char local[DOMAIN_MAX + 1], remote[DOMAIN_MAX + 1];
	bool held = o->route_held;
	size_t depth = 0;

	util_strlcpy(local, o->local, sizeof(local));
	util_strlcpy(remote, o->remote, sizeof(remote));
	o->route_held = false;	/* out_free keeps the route and the queue */
	out_free(o, "closed by peer");
	if (!held)
		return;
	if (store_queue_depth(w->store, local, remote, &depth) == STORE_OK && depth > 0 &&
	    out_ensure(w, local, remote) != NULL)
		return;
	if (store_route_release(w->store, ROUTE_OUTBOUND, local, remote, &me) == STORE_ERROR)
		log_warn("s2s out %s -> %s: cannot release the route", local, remote);
}

static void
out_conn_free(struct conn *c, const char *reason)
{
	struct s2s_out *o = c->role;

	if (o == NULL)
		return;
	/* The connection went away under the pair. */
	o->c = NULL;
	c->role = NULL;
	if (o->state == OUT_CONNECTING) {
		out_try_next(o);
		return;
	}
	if (o->auth == AUTH_VALID) {
		log_info("s2s out %s -> %s: connection closed: %s", o->local, o->remote, reason);
		unsent_requeue(o, c);
		out_reopen(o);
		return;
	}
	log_info("s2s out %s -> %s: connection lost: %s", o->local, o->remote, reason);
	out_free(o, "remote-server-timeout");
}

static const struct conn_ops out_ops = {
	.on_connected = out_connected,
	.on_connect_failed = out_connect_failed,
	.on_stream_start = out_stream_start,
	.on_stanza = out_stanza,
	.on_tls_ready = out_tls_ready,
	.on_timeout = out_timeout,
	.on_free = out_conn_free,
	.on_drained = out_drained,
};

/* This worker owns (or is about to own) the pair: make sure a stream
 * exists and, once valid, drains the store queue. */
static struct s2s_out *
out_ensure(struct worker *w, const char *local, const char *remote)
{
	struct s2s_out *o = out_find(local, remote);

	if (o == NULL) {
		if (backoff_active(remote)) {
			log_info("s2s out %s -> %s: backing off after failures; queued stanzas returned",
			    local, remote);
			out_bounce_queue(w, local, remote, "remote-server-timeout");
			(void)store_route_release(w->store, ROUTE_OUTBOUND, local, remote,
			    &(struct store_owner){ w->slot, w->pid });
			return NULL;
		}
		if ((o = out_new(w, local, remote)) == NULL)
			return NULL;
	}
	o->route_held = true;
	if (!o->want_auth) {
		o->want_auth = true;
		if (o->state == OUT_READY && o->auth == AUTH_NONE && o->c != NULL)
			out_send_result(o);
	}
	return o;
}

int
s2s_out_send(struct worker *w, const char *local, const char *remote,
    const char *data, size_t len)
{
	struct s2s_out *o = out_find(local, remote);
	struct store_owner me = { w->slot, w->pid };
	struct store_route current;
	bool claimed;
	uint64_t seq;
	int rc;

	/* The hot path: a valid stream with nothing queued before us. */
	if (o != NULL && o->auth == AUTH_VALID && o->c != NULL && !o->draining && o->route_held) {
		uint64_t at = o->c->out_added;

		if (conn_write(o->c, data, len) == 0) {
			stats_inc(ST_STANZAS_ROUTED);
			unsent_note(o, at, len);
			return 0;
		}
		/* The stream is going (output limit, no memory) and o may be
		 * gone with it; its unsent stanzas were queued again, and this
		 * one follows them into the queue. */
		o = NULL;
	}
	rc = store_queue_append(w->store, local, remote, data, len, time(NULL), w->conf->queue_max,
	    &me, &claimed, &current, &seq);
	if (rc != STORE_OK) {
		log_warn("s2s out %s -> %s: cannot queue: %s", local, remote,
		    rc == STORE_EXISTS ? "queue full" : store_strerror(rc));
		router_bounce(w, data, len, "wait", "resource-constraint");
		return -1;
	}
	stats_inc(ST_STANZAS_QUEUED);
	if (!claimed && !(current.owner.slot == w->slot && current.owner.pid == w->pid)) {
		/* Another worker took the pair meanwhile: it drains the queue. */
		(void)ipc_send(w, current.owner.slot, IPC_QUEUE_KICK, local, remote, "", 0);
		return 0;
	}
	o = out_ensure(w, local, remote);
	if (o != NULL && o->auth == AUTH_VALID)
		out_drain(o);
	return 0;
}

void
s2s_out_kick(struct worker *w, const char *local, const char *remote)
{
	struct s2s_out *o = out_ensure(w, local, remote);

	if (o != NULL && o->auth == AUTH_VALID)
		out_drain(o);
}

/* A successor (or any worker at start) takes over queues whose route is
 * free, e.g. because the worker that owned them died. */
struct resume_ctx {
	struct worker *w;
	char last_local[DOMAIN_MAX + 1], last_remote[DOMAIN_MAX + 1];
	struct { char local[DOMAIN_MAX + 1], remote[DOMAIN_MAX + 1]; } pairs[64];
	size_t n;
};

static int
resume_collect(const struct store_queued *q, void *arg)
{
	struct resume_ctx *r = arg;

	if (strcmp(q->local, r->last_local) == 0 && strcmp(q->remote, r->last_remote) == 0)
		return 0;
	util_strlcpy(r->last_local, q->local, sizeof(r->last_local));
	util_strlcpy(r->last_remote, q->remote, sizeof(r->last_remote));
	if (r->n >= ARRAY_SIZE(r->pairs))
		return 1;
	util_strlcpy(r->pairs[r->n].local, q->local, sizeof(r->pairs[0].local));
	util_strlcpy(r->pairs[r->n].remote, q->remote, sizeof(r->pairs[0].remote));
	r->n++;
	return 0;
}

void
s2s_out_resume_queues(struct worker *w)
{
	struct resume_ctx *r = calloc(1, sizeof(*r));
	struct store_route route, current;
	size_t i;

	if (r == NULL)
		return;
	r->w = w;
	if (store_queue_foreach(w->store, resume_collect, r) != STORE_OK) {
		free(r);
		return;
	}
	for (i = 0; i < r->n; i++) {
		if (store_route_get(w->store, ROUTE_OUTBOUND, r->pairs[i].local, r->pairs[i].remote,
		    &current) == STORE_OK) {
			if (router_owner_alive(w, &current.owner))
				continue;
			(void)store_route_release(w->store, ROUTE_OUTBOUND, r->pairs[i].local,
			    r->pairs[i].remote, &current.owner);
		}
		memset(&route, 0, sizeof(route));
		route.kind = ROUTE_OUTBOUND;
		util_strlcpy(route.domain, r->pairs[i].local, sizeof(route.domain));
		util_strlcpy(route.remote, r->pairs[i].remote, sizeof(route.remote));
		route.owner.slot = w->slot;
		route.owner.pid = w->pid;
		route.since = time(NULL);
		if (store_route_claim(w->store, &route, &current) != STORE_OK)
			continue;
		log_notice("s2s out %s -> %s: taking over queued stanzas left by a previous owner",
		    r->pairs[i].local, r->pairs[i].remote);
		s2s_out_kick(w, r->pairs[i].local, r->pairs[i].remote);
	}
	free(r);
}

void
s2s_out_verify(struct worker *w, const char *local, const char *remote,
    const char *stream_id, const char *key, size_t keylen, uint64_t conn_id)
{
	struct s2s_out *o = out_find(local, remote);
	struct out_verify *v;

	if (o == NULL && (o = out_new(w, local, remote)) == NULL) {
		s2s_in_verify_result(w, conn_id, remote, local, stream_id, VERIFY_ERROR,
		    "remote-server-not-found");
		return;
	}
	if (o->n_verifies >= OUT_MAX_VERIFIES || (v = calloc(1, sizeof(*v))) == NULL) {
		s2s_in_verify_result(w, conn_id, remote, local, stream_id, VERIFY_ERROR,
		    "resource-constraint");
		return;
	}
	if ((v->key = strndup(key, keylen)) == NULL) {
		free(v);
		s2s_in_verify_result(w, conn_id, remote, local, stream_id, VERIFY_ERROR,
		    "resource-constraint");
		return;
	}
	v->in_conn_id = conn_id;
	util_strlcpy(v->stream_id, stream_id, sizeof(v->stream_id));
	v->deadline = time(NULL) + (time_t)w->conf->dialback_timeout;
	TAILQ_INSERT_TAIL(&o->verifies, v, entry);
	o->n_verifies++;
	/* A verify may go before our own pair is validated (never make it
	 * wait for that: both sides would wait forever). */
	if (o->state == OUT_READY && o->c != NULL)
		out_send_verifies(o);
}

static int
oldest_cb(const struct store_queued *q, void *arg)
{
	*(time_t *)arg = q->queued;
	return 1;
}

/* Stanzas may wait for a pair only queue_max_age seconds. */
static void
out_expire_queue(struct s2s_out *o, time_t now)
{
	time_t oldest = 0;

	if (store_queue_foreach_pair(o->w->store, o->local, o->remote, 1, oldest_cb, &oldest) != STORE_OK ||
	    oldest == 0 || oldest + (time_t)o->w->conf->queue_max_age > now)
		return;
	log_warn("s2s out %s -> %s: queued stanzas waited more than %u s", o->local, o->remote,
	    o->w->conf->queue_max_age);
	out_free(o, "remote-server-timeout");
}

void
s2s_out_tick(struct worker *w, time_t now)
{
	struct s2s_out *o, *next;
	struct out_verify *v, *vnext;

	for (o = TAILQ_FIRST(&outs); o != NULL; o = next) {
		next = TAILQ_NEXT(o, entry);
		for (v = TAILQ_FIRST(&o->verifies); v != NULL; v = vnext) {
			vnext = TAILQ_NEXT(v, entry);
			if (v->deadline > now)
				continue;
			TAILQ_REMOVE(&o->verifies, v, entry);
			o->n_verifies--;
			log_warn("s2s out %s -> %s: db:verify for inbound conn %llu timed out",
			    o->local, o->remote, (unsigned long long)v->in_conn_id);
			s2s_in_verify_result(w, v->in_conn_id, o->remote, o->local, v->stream_id,
			    VERIFY_ERROR, "remote-server-timeout");
			util_wipe(v->key, strlen(v->key));
			free(v->key);
			free(v);
		}
		if (o->n_verifies == 0 && !o->want_auth && o->state == OUT_READY) {
			out_free(o, "verification done");
			continue;
		}
		if (o->route_held && o->auth != AUTH_VALID)
			out_expire_queue(o, now);
	}
}

void
s2s_out_reconfigure(struct worker *w)
{
	struct s2s_out *o, *next;

	for (o = TAILQ_FIRST(&outs); o != NULL; o = next) {
		next = TAILQ_NEXT(o, entry);
		if (!worker_hosts(w, o->local)) {
			log_notice("s2s out %s -> %s: %s is no longer hosted; closing", o->local, o->remote, o->local);
			out_free(o, "service-unavailable");
		} else if (!conf_remote_allowed(w->conf, o->remote)) {
			log_notice("s2s out %s -> %s: %s is no longer allowed; closing", o->local, o->remote, o->remote);
			out_free(o, "policy-violation");
		}
	}
}

void
s2s_out_shutdown(struct worker *w)
{
	struct s2s_out *o;

	while ((o = TAILQ_FIRST(&outs)) != NULL)
		out_free(o, "system-shutdown");
	pair_index_clear(&out_index);
}
