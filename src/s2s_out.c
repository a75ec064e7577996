/* s2s_out.c - the originating role: outbound streams, one per (local,
 * remote) pair in this worker. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include <event2/bufferevent_ssl.h>

#include "conf.h"
#include "conn.h"
#include "dialback.h"
#include "log.h"
#include "resolver.h"
#include "s2s.h"
#include "store.h"
#include "tls.h"
#include "util.h"
#include "worker.h"
#include "xmlnode.h"

#define OUT_MAX_VERIFIES	256	/* outstanding db:verify per outbound stream */
#define OUT_QUEUE_MAX_BYTES	(8u << 20)	/* in-memory queue per pair */

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

struct out_stanza {
	char *data;
	size_t len;
	time_t queued;
	TAILQ_ENTRY(out_stanza) entry;
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
	TAILQ_HEAD(, out_stanza) queue;
	size_t queue_bytes, queue_len;
	TAILQ_ENTRY(s2s_out) entry;
};

static TAILQ_HEAD(, s2s_out) outs = TAILQ_HEAD_INITIALIZER(outs);
static size_t n_outs;

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
	struct s2s_out *o;

	TAILQ_FOREACH(o, &outs, entry)
		if (util_domain_equal(o->local, local) && util_domain_equal(o->remote, remote))
			return o;
	return NULL;
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
	TAILQ_INIT(&o->verifies);
	TAILQ_INIT(&o->queue);
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

/* Answers every verify still waiting with an error, empties the queue. */
static void
out_fail_all(struct s2s_out *o, const char *condition)
{
	struct out_verify *v;
	struct out_stanza *s;

	while ((v = TAILQ_FIRST(&o->verifies)) != NULL) {
		TAILQ_REMOVE(&o->verifies, v, entry);
		o->n_verifies--;
		s2s_in_verify_result(o->w, v->in_conn_id, o->remote, o->local, v->stream_id,
		    VERIFY_ERROR, condition);
		util_wipe(v->key, strlen(v->key));
		free(v->key);
		free(v);
	}
	if (o->queue_len > 0)
		log_warn("s2s out %s -> %s: %zu queued stanza(s) not delivered: %s",
		    o->local, o->remote, o->queue_len, condition);
	/* TODO(issue 4): bounce to the local sender (component) with the
	 * condition instead of dropping. */
	while ((s = TAILQ_FIRST(&o->queue)) != NULL) {
		TAILQ_REMOVE(&o->queue, s, entry);
		free(s->data);
		free(s);
	}
	o->queue_len = o->queue_bytes = 0;
}

static void
out_free(struct s2s_out *o, const char *reason)
{
	struct conn *c = o->c;

	out_fail_all(o, reason);
	if (o->rq != NULL)
		resolver_cancel(o->rq);
	if (o->auth == AUTH_VALID || o->auth == AUTH_NONE || o->auth == AUTH_PENDING) {
		if (store_pair_delete(o->w->store, o->local, o->remote, PAIR_OUT) == STORE_ERROR)
			log_warn("s2s out %s -> %s: cannot clear pair state", o->local, o->remote);
	}
	TAILQ_REMOVE(&outs, o, entry);
	n_outs--;
	o->c = NULL;
	if (c != NULL) {
		c->role = NULL;
		conn_close(c, reason);
	}
	log_info("s2s out %s -> %s: closed (%s)", o->local, o->remote, reason);
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
	out_free(o, "remote-server-not-found");
}

static void
out_send_header(struct s2s_out *o)
{
	o->state = OUT_OPENING;
	o->c->header_sent = true;
	conn_printf(o->c, "<?xml version='1.0'?><stream:stream xmlns:stream='" NS_STREAMS "' "
	    "xmlns='" NS_SERVER "' xmlns:db='" NS_DIALBACK "' from='%s' to='%s' version='1.0' xml:lang='en'>",
	    o->local, o->remote);
	conn_set_timeout(o->c, o->w->conf->dialback_timeout);
}

static void
out_connected(struct conn *c)
{
	struct s2s_out *o = c->role;

	if (o == NULL)
		return;
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
	conn_printf(o->c, "<db:result from='%s' to='%s'>%s</db:result>", o->local, o->remote, k.key);
	util_wipe(k.key, sizeof(k.key));
	log_info("s2s out %s -> %s: db:result sent (stream %s)", o->local, o->remote, o->peer_stream_id);
	conn_set_timeout(o->c, o->w->conf->dialback_timeout);
}

static void
out_flush_queue(struct s2s_out *o)
{
	struct out_stanza *s;

	while (o->c != NULL && (s = TAILQ_FIRST(&o->queue)) != NULL) {
		if (conn_write(o->c, s->data, s->len) == -1)
			return;
		TAILQ_REMOVE(&o->queue, s, entry);
		o->queue_len--;
		o->queue_bytes -= s->len;
		free(s->data);
		free(s);
	}
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
		log_info("s2s out %s -> %s: dialback valid; %zu queued stanza(s) to send",
		    o->local, o->remote, o->queue_len);
		out_pair_store(o, PAIR_VALID, "");
		conn_set_timeout(o->c, o->w->conf->idle_timeout);
		out_flush_queue(o);
		return;
	}
	o->auth = AUTH_FAILED;
	if (type != NULL && strcmp(type, "invalid") == 0) {
		log_warn("s2s out %s -> %s: dialback invalid (peer rejected our key)", o->local, o->remote);
		out_pair_store(o, PAIR_INVALID, "peer answered invalid");
		out_free(o, "internal-server-error");
	} else {
		struct xml_node *err = xml_node_child(n, "error", NULL);
		struct xml_node *cond = err != NULL ? xml_node_first_element(err) : NULL;

		log_warn("s2s out %s -> %s: dialback error from peer: %s", o->local, o->remote,
		    cond != NULL ? cond->name : "(no condition)");
		out_pair_store(o, PAIR_FAILED, cond != NULL ? cond->name : "dialback error");
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
	if (o->n_verifies == 0 && !o->want_auth && o->queue_len == 0)
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
		out_free(o, o->auth == AUTH_VALID ? "remote-server-timeout" : "remote-server-timeout");
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
		if (o->auth == AUTH_NONE && o->n_verifies == 0 && o->queue_len == 0) {
			out_free(o, "idle");
			return;
		}
		break;
	default:
		break;
	}
	log_warn("s2s out %s -> %s: dialback timed out (state %d)", o->local, o->remote, (int)o->state);
	out_pair_store(o, PAIR_FAILED, "timeout");
	o->auth = AUTH_FAILED;
	out_free(o, "remote-server-timeout");
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
	log_info("s2s out %s -> %s: connection lost: %s", o->local, o->remote, reason);
	out_free(o, o->auth == AUTH_VALID ? "remote-server-timeout" : "remote-server-timeout");
}

static const struct conn_ops out_ops = {
	.on_connected = out_connected,
	.on_connect_failed = out_connect_failed,
	.on_stream_start = out_stream_start,
	.on_stanza = out_stanza,
	.on_tls_ready = out_tls_ready,
	.on_timeout = out_timeout,
	.on_free = out_conn_free,
};

int
s2s_out_send(struct worker *w, const char *local, const char *remote,
    const char *data, size_t len)
{
	struct s2s_out *o = out_find(local, remote);
	struct out_stanza *s;

	if (o == NULL && (o = out_new(w, local, remote)) == NULL) {
		log_warn("s2s out %s -> %s: cannot start a stream", local, remote);
		return -1;
	}
	if (o->auth == AUTH_VALID && o->c != NULL && TAILQ_EMPTY(&o->queue))
		return conn_write(o->c, data, len);
	if (o->queue_len >= w->conf->queue_max || o->queue_bytes + len > OUT_QUEUE_MAX_BYTES) {
		log_warn("s2s out %s -> %s: queue full (%zu stanzas); stanza dropped", local, remote,
		    o->queue_len);
		return -1;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL || (s->data = malloc(len)) == NULL) {
		free(s);
		return -1;
	}
	memcpy(s->data, data, len);
	s->len = len;
	s->queued = time(NULL);
	TAILQ_INSERT_TAIL(&o->queue, s, entry);
	o->queue_len++;
	o->queue_bytes += len;
	if (!o->want_auth) {
		o->want_auth = true;
		if (o->state == OUT_READY && o->auth == AUTH_NONE && o->c != NULL)
			out_send_result(o);
	}
	return 0;
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
		if (o->n_verifies == 0 && !o->want_auth && o->queue_len == 0 && o->state == OUT_READY)
			out_free(o, "verification done");
	}
}

void
s2s_out_shutdown(struct worker *w)
{
	struct s2s_out *o;

	while ((o = TAILQ_FIRST(&outs)) != NULL)
		out_free(o, "system-shutdown");
}
