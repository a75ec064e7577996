/* s2s_in.c - the receiving and authoritative roles on inbound streams. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/bufferevent_ssl.h>

#include "conf.h"
#include "conn.h"
#include "dialback.h"
#include "log.h"
#include "router.h"
#include "s2s.h"
#include "stats.h"
#include "store.h"
#include "tls.h"
#include "util.h"
#include "worker.h"
#include "xmlnode.h"
#include "xmlstream.h"
#include "zone.h"

#define IN_MAX_PAIRS		64	/* domain pairs per inbound stream */

enum in_pair_state { IN_PAIR_PENDING, IN_PAIR_VALID };

/* Domains are allocated to their length: an idle stream must stay small. */
struct in_pair {
	char *remote;			/* the originating (sender) domain */
	char *local;			/* our hosted (target) domain */
	enum in_pair_state state;
	time_t deadline;		/* for a pending pair */
	/* local was found hosted under the configuration of this
	 * generation + 1 (0: not yet): asked again only after a reload,
	 * not for every stanza */
	uint64_t hosted_checked;
};

struct s2s_in {
	struct conn *c;
	char stream_id[STREAM_ID_HEX + 1];
	char *to;			/* header 'to' ("" on legacy streams) */
	char *from;			/* header 'from' (may be "") */
	bool version1;
	bool opened;			/* peer header seen, ours sent */
	bool starttls;			/* <proceed/> sent, handshake pending */
	struct in_pair *pairs;		/* grown on demand, at most IN_MAX_PAIRS */
	size_t n_pairs, cap_pairs;
	size_t n_valid;
	time_t opened_at;
};

static const struct conn_ops in_ops;

static struct in_pair *
in_pair_find(struct s2s_in *s, const char *remote, const char *local)
{
	size_t i;

	for (i = 0; i < s->n_pairs; i++)
		if (util_domain_equal(s->pairs[i].remote, remote) &&
		    util_domain_equal(s->pairs[i].local, local))
			return &s->pairs[i];
	return NULL;
}

static void
in_pair_remove(struct s2s_in *s, struct in_pair *p)
{
	size_t i = (size_t)(p - s->pairs);

	if (p->state == IN_PAIR_VALID)
		s->n_valid--;
	zone_free(p->remote);
	zone_free(p->local);
	memmove(&s->pairs[i], &s->pairs[i + 1], (s->n_pairs - i - 1) * sizeof(s->pairs[0]));
	s->n_pairs--;
}

static void
in_pair_store(struct s2s_in *s, const struct in_pair *ip, enum store_pair_state state,
    const char *reason)
{
	struct store_pair p;

	memset(&p, 0, sizeof(p));
	util_strlcpy(p.local, ip->local, sizeof(p.local));
	util_strlcpy(p.remote, ip->remote, sizeof(p.remote));
	p.dir = PAIR_IN;
	p.state = state;
	p.owner.slot = s->c->w->slot;
	p.owner.pid = s->c->w->pid;
	p.conn_id = s->c->id;
	p.since = time(NULL);
	util_strlcpy(p.stream_id, s->stream_id, sizeof(p.stream_id));
	util_strlcpy(p.reason, reason != NULL ? reason : "", sizeof(p.reason));
	if (store_pair_put(s->c->w->store, &p) != STORE_OK)
		log_warn("s2s in %s -> %s: cannot record pair state", ip->remote, ip->local);
}

/* Replaces *dst with a copy of src. -1 when out of memory (*dst kept). */
static int
in_set_str(char **dst, const char *src)
{
	char *d = zone_strdup(src);

	if (d == NULL)
		return -1;
	zone_free(*dst);
	*dst = d;
	return 0;
}

int
s2s_in_accept(struct worker *w, int fd, const struct sockaddr *sa, const struct iplimit_key *ip)
{
	struct s2s_in *s = zone_calloc(1, sizeof(*s));
	struct conn *c;

	/* short heap strings: held for the life of every stream */
	if (s == NULL || (s->to = zone_strdup("")) == NULL || (s->from = zone_strdup("")) == NULL) {
		if (s != NULL) {
			zone_free(s->to);
			zone_free(s);
		}
		close(fd);
		return -1;
	}
	if ((c = conn_accept(w, CONN_S2S_IN, fd, sa, &in_ops, s)) == NULL) {
		zone_free(s->to);
		zone_free(s->from);
		zone_free(s);
		iplimit_release(ip);
		return -1;
	}
	c->ip = *ip;
	c->ip_counted = true;
	s->c = c;
	s->opened_at = time(NULL);
	stats_inc(ST_STREAMS_IN);
	log_info("s2s in conn %llu: accepted from %s", (unsigned long long)c->id, c->peer);
	/* A peer must open its stream and authenticate in bounded time. */
	conn_set_timeout(c, w->conf->dialback_timeout);
	return 0;
}

/* Our response header (sent even when we are about to refuse, so the
 * stream error can follow it, RFC 6120 §4.9.1.2). */
static void
in_send_header(struct s2s_in *s, const char *from)
{
	conn_send_header(s->c, s->stream_id, from, s->from, s->version1);
}

static void
in_send_features(struct s2s_in *s)
{
	struct worker *w = s->c->w;
	SSL_CTX *ctx = w->conf->tls != TLS_MODE_OFF && s->to[0] != '\0' ? tls_server_ctx(w->tls, s->to) : NULL;
	bool offer_tls = ctx != NULL && !s->c->tls;
	bool required = w->conf->tls == TLS_MODE_REQUIRED;

	if (offer_tls && required) {
		/* RFC 6120 §5.3.1: only STARTTLS until it is done. */
		conn_printf(s->c, "<stream:features><starttls xmlns='" NS_TLS "'><required/></starttls>"
		    "</stream:features>");
		return;
	}
	conn_printf(s->c, "<stream:features>%s<dialback xmlns='" NS_DIALBACK_FEATURE "'><errors/></dialback>"
	    "</stream:features>", offer_tls ? "<starttls xmlns='" NS_TLS "'/>" : "");
}

static void
in_stream_start(struct conn *c, const struct xml_node *hdr)
{
	struct s2s_in *s = c->role;
	struct worker *w = c->w;
	const char *to = xml_node_attr(hdr, "to"), *from = xml_node_attr(hdr, "from");
	const char *version = xml_node_attr(hdr, "version");
	const char *default_ns = NULL;
	size_t i;

	for (i = 0; i < hdr->n_nsdecls; i++)
		if (hdr->nsdecls[i].prefix == NULL)
			default_ns = hdr->nsdecls[i].uri;
	s->version1 = version != NULL && version[0] >= '1' && version[0] <= '9';
	if (in_set_str(&s->from, from != NULL && util_domain_valid(from) ? from : "") == -1) {
		conn_abort(c, "out of memory");
		return;
	}
	if (dialback_stream_id(s->stream_id) == -1) {
		conn_abort(c, "no randomness for a stream id");
		return;
	}
	s->opened = true;
	if (!xml_node_is(hdr, "stream", NS_STREAMS)) {
		in_send_header(s, to != NULL && worker_hosts(w, to) ? to : NULL);
		conn_stream_error(c, "invalid-namespace", "not an XMPP stream");
		return;
	}
	if (default_ns == NULL || strcmp(default_ns, NS_SERVER) != 0) {
		in_send_header(s, to != NULL && worker_hosts(w, to) ? to : NULL);
		conn_stream_error(c, "invalid-namespace", "the stream namespace must be jabber:server");
		return;
	}
	if (version != NULL && !(version[0] >= '0' && version[0] <= '9')) {
		in_send_header(s, NULL);
		conn_stream_error(c, "unsupported-version", NULL);
		return;
	}
	if (to != NULL && to[0] != '\0' && !worker_hosts(w, to)) {
		in_send_header(s, NULL);
		log_info("s2s in conn %llu %s: stream to unhosted domain '%s'", (unsigned long long)c->id,
		    c->peer, to);
		conn_stream_error(c, "host-unknown", "this server does not host that domain");
		return;
	}
	if (to == NULL && s->version1) {
		in_send_header(s, NULL);
		conn_stream_error(c, "host-unknown", "the stream header has no 'to'");
		return;
	}
	if (in_set_str(&s->to, to != NULL ? to : "") == -1) {
		conn_abort(c, "out of memory");
		return;
	}
	in_send_header(s, s->to);
	if (s->from[0] != '\0' && !conf_remote_allowed(w->conf, s->from)) {
		log_info("s2s in conn %llu %s: %s is not allowed to federate ([s2s] allow/deny)",
		    (unsigned long long)c->id, c->peer, s->from);
		conn_stream_error(c, "policy-violation", "this server does not federate with your domain");
		return;
	}
	log_info("s2s in conn %llu %s: stream %s -> %s%s%s", (unsigned long long)c->id, c->peer,
	    s->from[0] != '\0' ? s->from : "?", s->to[0] != '\0' ? s->to : "?",
	    s->version1 ? "" : " (legacy, no version)", c->tls ? " over TLS" : "");
	if (s->version1)
		in_send_features(s);
}

static void
in_dialback_error(struct s2s_in *s, const char *local, const char *remote, const char *condition)
{
	conn_printf(s->c, "<db:result from='%s' to='%s' type='error'><error type='cancel'>"
	    "<%s xmlns='" NS_STANZA_ERRORS "'/></error></db:result>", local, remote, condition);
}

/* <db:result from=remote to=local>key</db:result>: the receiving role. */
static void
in_db_result(struct s2s_in *s, struct xml_node *n)
{
	struct worker *w = s->c->w;
	const char *from = xml_node_attr(n, "from"), *to = xml_node_attr(n, "to");
	struct in_pair *p;
	char *key;
	const char *k;
	size_t klen;

	if (xml_node_attr(n, "type") != NULL) {
		log_info("s2s in conn %llu: db:result with a type on an inbound stream; ignored",
		    (unsigned long long)s->c->id);
		return;
	}
	if (from == NULL || to == NULL || !util_domain_valid(from) || !util_domain_valid(to)) {
		conn_stream_error(s->c, "improper-addressing", "db:result needs valid 'from' and 'to'");
		return;
	}
	if (!worker_hosts(w, to)) {
		/* XEP-0220 §2.2.1: a dialback error, not a stream error. */
		log_info("s2s in conn %llu: db:result %s -> %s: target not hosted", (unsigned long long)s->c->id,
		    from, to);
		in_dialback_error(s, to, from, "item-not-found");
		return;
	}
	if (!conf_remote_allowed(w->conf, from)) {
		log_info("s2s in conn %llu: db:result %s -> %s: not allowed ([s2s] allow/deny)",
		    (unsigned long long)s->c->id, from, to);
		in_dialback_error(s, to, from, "forbidden");
		return;
	}
	if (w->conf->tls == TLS_MODE_REQUIRED && !s->c->tls) {
		log_info("s2s in conn %llu: db:result %s -> %s without TLS; refused", (unsigned long long)s->c->id,
		    from, to);
		in_dialback_error(s, to, from, "policy-violation");
		return;
	}
	p = in_pair_find(s, from, to);
	if (p != NULL && p->state == IN_PAIR_VALID) {
		conn_printf(s->c, "<db:result from='%s' to='%s' type='valid'/>", to, from);
		return;
	}
	if (p != NULL) {
		log_info("s2s in conn %llu: db:result %s -> %s already being verified", (unsigned long long)s->c->id,
		    from, to);
		return;
	}
	if (s->n_pairs >= IN_MAX_PAIRS || s->n_pairs - s->n_valid >= w->conf->max_pending_dialback) {
		stats_inc(ST_LIMITS_HIT);
		in_dialback_error(s, to, from, "resource-constraint");
		return;
	}
	if ((key = xml_node_text(n, &klen)) == NULL) {
		conn_abort(s->c, "out of memory");
		return;
	}
	k = key;
	dialback_trim(&k, &klen);
	if (klen == 0 || klen > DIALBACK_KEY_MAX) {
		free(key);
		in_dialback_error(s, to, from, "not-acceptable");
		return;
	}
	if (s->n_pairs == s->cap_pairs) {
		size_t cap = s->cap_pairs == 0 ? 2 : s->cap_pairs * 2;
		struct in_pair *grown = zone_reallocarray(s->pairs, cap, sizeof(*grown));
		if (grown == NULL) {
			free(key);
			in_dialback_error(s, to, from, "resource-constraint");
			return;
		}
		s->pairs = grown;
		s->cap_pairs = cap;
	}
	p = &s->pairs[s->n_pairs];
	memset(p, 0, sizeof(*p));
	if ((p->remote = zone_strdup(from)) == NULL || (p->local = zone_strdup(to)) == NULL) {
		zone_free(p->remote);
		free(key);
		in_dialback_error(s, to, from, "resource-constraint");
		return;
	}
	s->n_pairs++;
	p->state = IN_PAIR_PENDING;
	p->deadline = time(NULL) + (time_t)w->conf->dialback_timeout;
	in_pair_store(s, p, PAIR_PENDING, "");
	stats_inc(ST_DIALBACK_ATTEMPTS);
	log_info("s2s in conn %llu: db:result %s -> %s: asking %s's authoritative server",
	    (unsigned long long)s->c->id, from, to, from);
	/* The answer arrives through s2s_in_verify_result(), maybe at once. */
	s2s_out_verify(w, to, from, s->stream_id, k, klen, s->c->id);
	util_wipe(key, strlen(key));
	free(key);
}

static const char *const key_verdict_names[] = {
	[KEY_VALID] = "valid", [KEY_UNKNOWN] = "no such key", [KEY_EXPIRED] = "key expired",
	[KEY_MISMATCH] = "key mismatch",
};

/* <db:verify from=ours to=asker id=... type='TAIL: the answer of the
 * authoritative role, attributes escaped (they come from the peer). */
static void
in_verify_answer(struct s2s_in *s, const char *ours, const char *asker, const char *id,
    const char *type_tail)
{
	struct strbuf sb;

	strbuf_init(&sb, 8192);
	if (strbuf_appends(&sb, "<db:verify from='") == 0 && xml_escape(&sb, ours, strlen(ours)) == 0 &&
	    strbuf_appends(&sb, "' to='") == 0 && xml_escape(&sb, asker, strlen(asker)) == 0 &&
	    strbuf_appends(&sb, "' id='") == 0 && xml_escape(&sb, id, strlen(id)) == 0 &&
	    strbuf_appends(&sb, "' type='") == 0 && strbuf_appends(&sb, type_tail) == 0)
		conn_write(s->c, sb.data, sb.len);
	strbuf_free(&sb);
}

/* <db:verify from=receiving to=us id=...>key</db:verify>: the
 * authoritative role, answered from the shared store whichever worker
 * issued the key and whether or not this stream is authenticated. */
static void
in_db_verify(struct s2s_in *s, struct xml_node *n)
{
	struct worker *w = s->c->w;
	const char *from = xml_node_attr(n, "from"), *to = xml_node_attr(n, "to");
	const char *id = xml_node_attr(n, "id");
	enum store_key_verdict verdict = KEY_UNKNOWN;
	struct store_owner issuer = { -1, 0 };
	char *key;
	const char *k;
	size_t klen;
	int rc;

	if (xml_node_attr(n, "type") != NULL) {
		log_info("s2s in conn %llu: db:verify with a type on an inbound stream; ignored",
		    (unsigned long long)s->c->id);
		return;
	}
	if (from == NULL || to == NULL || id == NULL || !util_domain_valid(from) || !util_domain_valid(to)) {
		conn_stream_error(s->c, "improper-addressing", "db:verify needs 'from', 'to' and 'id'");
		return;
	}
	if (!worker_hosts(w, to)) {
		log_info("s2s in conn %llu: db:verify for unhosted %s", (unsigned long long)s->c->id, to);
		in_verify_answer(s, to, from, id, "error'><error type='cancel'><item-not-found xmlns='"
		    NS_STANZA_ERRORS "'/></error></db:verify>");
		return;
	}
	if ((key = xml_node_text(n, &klen)) == NULL) {
		conn_abort(s->c, "out of memory");
		return;
	}
	k = key;
	dialback_trim(&k, &klen);
	rc = store_key_check(w->store, to, from, id, k, klen, time(NULL), &verdict, &issuer);
	util_wipe(key, strlen(key));
	free(key);
	if (rc != STORE_OK) {
		log_warn("s2s in conn %llu: db:verify %s -> %s: store error: %s", (unsigned long long)s->c->id,
		    to, from, store_strerror(rc));
		verdict = KEY_UNKNOWN;
	}
	stats_inc(ST_VERIFY_ANSWERED);
	log_info("s2s in conn %llu: db:verify %s -> %s id %s: %s (key issued by worker %d)",
	    (unsigned long long)s->c->id, to, from, id, key_verdict_names[verdict], issuer.slot);
	in_verify_answer(s, to, from, id, verdict == KEY_VALID ? "valid'/>" : "invalid'/>");
}

void
s2s_in_verify_result(struct worker *w, uint64_t conn_id, const char *remote,
    const char *local, const char *stream_id, enum verify_verdict verdict,
    const char *condition)
{
	struct conn *c = worker_conn_find(w, conn_id);
	struct s2s_in *s;
	struct in_pair *p;

	if (c == NULL || c->kind != CONN_S2S_IN || c->closing || c->dead || c->role == NULL) {
		log_info("s2s in %s -> %s: verification answer for a stream that is gone; dropped",
		    remote, local);
		return;
	}
	s = c->role;
	/* XEP-0220 §2.1.2: match (from, to, id); else drop silently. */
	if (strcmp(s->stream_id, stream_id) != 0 || (p = in_pair_find(s, remote, local)) == NULL ||
	    p->state != IN_PAIR_PENDING)
		return;
	switch (verdict) {
	case VERIFY_VALID:
		p->state = IN_PAIR_VALID;
		if (s->n_valid++ == 0)
			conn_authenticated(c);
		stats_inc(ST_DIALBACK_VALID);
		in_pair_store(s, p, PAIR_VALID, "");
		log_info("s2s in conn %llu: %s -> %s is now valid", (unsigned long long)c->id, remote, local);
		conn_printf(c, "<db:result from='%s' to='%s' type='valid'/>", local, remote);
		conn_set_timeout(c, w->conf->idle_timeout);
		break;
	case VERIFY_INVALID:
		log_warn("s2s in conn %llu: %s -> %s: authoritative server says the key is invalid",
		    (unsigned long long)c->id, remote, local);
		in_pair_store(s, p, PAIR_INVALID, "authoritative server answered invalid");
		stats_inc(ST_DIALBACK_INVALID);
		conn_printf(c, "<db:result from='%s' to='%s' type='invalid'/>", local, remote);
		in_pair_remove(s, p);
		/* XEP-0220 §2.2.1: the first pair failing closes the stream. */
		if (s->n_valid == 0)
			conn_close(c, "dialback invalid");
		break;
	case VERIFY_ERROR:
		log_warn("s2s in conn %llu: %s -> %s: cannot verify: %s", (unsigned long long)c->id, remote,
		    local, condition != NULL ? condition : "error");
		in_pair_store(s, p, PAIR_FAILED, condition != NULL ? condition : "error");
		stats_inc(condition != NULL && strcmp(condition, "remote-server-timeout") == 0 ?
		    ST_DIALBACK_TIMEOUTS : ST_DIALBACK_ERRORS);
		in_dialback_error(s, local, remote, condition != NULL ? condition : "remote-server-not-found");
		in_pair_remove(s, p);
		break;
	}
}

/* A stanza (message, presence, iq) from the peer. */
/* A stanza from a remote server, addressed from and to: routed when its
 * pair is validated on this stream. n (may be NULL when raw is given) is
 * freed here. */
static void
in_route(struct s2s_in *s, const char *from, const char *to, struct xml_node *n,
    const char *raw, size_t raw_len)
{
	char from_domain[DOMAIN_MAX + 1], to_domain[DOMAIN_MAX + 1];
	struct in_pair *p;

	if (s->n_valid == 0) {
		/* RFC 6120 §4.3.5: stanzas before authentication. */
		conn_stream_error(s->c, "not-authorized", "no domain pair has been validated on this stream");
		xml_node_free(n);
		return;
	}
	if (from == NULL || to == NULL) {
		conn_stream_error(s->c, "improper-addressing", "stanzas need 'from' and 'to'");
		xml_node_free(n);
		return;
	}
	if (util_jid_domain(from, from_domain, sizeof(from_domain)) == -1 ||
	    util_jid_domain(to, to_domain, sizeof(to_domain)) == -1) {
		conn_stream_error(s->c, "improper-addressing", "malformed JID");
		xml_node_free(n);
		return;
	}
	p = in_pair_find(s, from_domain, to_domain);
	if (p == NULL || p->hosted_checked != s->c->w->conf_generation + 1) {
		if (!worker_hosts(s->c->w, to_domain)) {
			conn_stream_error(s->c, "host-unknown", "this server does not host the 'to' domain");
			xml_node_free(n);
			return;
		}
		if (p != NULL)
			p->hosted_checked = s->c->w->conf_generation + 1;
	}
	if (p == NULL || p->state != IN_PAIR_VALID) {
		conn_stream_error(s->c, "invalid-from", "the 'from' domain is not validated on this stream");
		xml_node_free(n);
		return;
	}
	router_route_pair(s->c->w, n, NS_SERVER, raw, raw_len, from_domain, to_domain, true);
}

/* The fast path: a message, presence or iq as its bytes, no tree. */
static bool
in_raw_stanza(struct conn *c, const struct xml_stanza_head *h, const char *raw, size_t len)
{
	struct s2s_in *s = c->role;

	if (s == NULL || strcmp(h->ns, NS_SERVER) != 0)
		return false;	/* in_stanza gives the answer */
	in_route(s, h->from, h->to, NULL, raw, len);
	return true;
}

static void
in_stanza(struct conn *c, struct xml_node *n)
{
	struct s2s_in *s = c->role;
	struct worker *w = c->w;

	if (s == NULL) {
		xml_node_free(n);
		return;
	}
	/* stanzas first: they are nearly all a stream carries */
	if (strcmp(n->ns, NS_SERVER) == 0 && (strcmp(n->name, "message") == 0 ||
	    strcmp(n->name, "presence") == 0 || strcmp(n->name, "iq") == 0)) {
		const char *raw;
		size_t raw_len;

		raw = xml_stream_raw_stanza(c->xs, &raw_len);
		in_route(s, xml_node_attr(n, "from"), xml_node_attr(n, "to"), n, raw, raw_len);
		return;
	}
	if (xml_node_is(n, "starttls", NS_TLS)) {
		SSL_CTX *ctx = s->to[0] != '\0' ? tls_server_ctx(w->tls, s->to) : NULL;
		if (c->tls || ctx == NULL || w->conf->tls == TLS_MODE_OFF) {
			conn_printf(c, "<failure xmlns='" NS_TLS "'/>");
			conn_close(c, "starttls not available");
		} else {
			/* TLS starts right after <proceed/>'s '>': nothing may be
			 * parsed after <starttls/> (the conn checks for that). */
			conn_printf(c, "<proceed xmlns='" NS_TLS "'/>");
			s->starttls = true;
			conn_start_tls(c, ctx, true, NULL);
		}
	} else if (xml_node_is(n, "result", NS_DIALBACK)) {
		in_db_result(s, n);
	} else if (xml_node_is(n, "verify", NS_DIALBACK)) {
		in_db_verify(s, n);
	} else if (xml_node_is(n, "error", NS_STREAMS)) {
		struct xml_node *cond = xml_node_first_element(n);
		log_info("s2s in conn %llu %s: stream error from peer: %s", (unsigned long long)c->id, c->peer,
		    cond != NULL ? cond->name : "(none)");
		conn_close(c, "peer sent a stream error");
	} else if (s->n_valid == 0) {
		conn_stream_error(c, "not-authorized", "unexpected element before authentication");
	} else {
		conn_stream_error(c, "unsupported-stanza-type", NULL);
	}
	xml_node_free(n);
}

void
s2s_in_reconfigure(struct worker *w)
{
	struct conn *c, *next;
	struct s2s_in *s;

	for (c = TAILQ_FIRST(&w->conns); c != NULL; c = next) {
		next = TAILQ_NEXT(c, entry);
		if (c->kind != CONN_S2S_IN || c->closing || c->dead || (s = c->role) == NULL)
			continue;
		if (s->to[0] != '\0' && !worker_hosts(w, s->to)) {
			log_notice("s2s in conn %llu: %s is no longer hosted; closing", (unsigned long long)c->id, s->to);
			conn_stream_error(c, "host-gone", NULL);
			continue;
		}
		for (size_t i = 0; i < s->n_pairs; i++) {
			if (conf_remote_allowed(w->conf, s->pairs[i].remote))
				continue;
			log_notice("s2s in conn %llu: %s is no longer allowed; closing", (unsigned long long)c->id,
			    s->pairs[i].remote);
			conn_stream_error(c, "policy-violation", "federation with your domain was turned off");
			break;
		}
	}
}

static void
in_tls_ready(struct conn *c)
{
	struct s2s_in *s = c->role;
	char desc[128];

	if (s == NULL)
		return;
	s->starttls = false;
	s->opened = false;
	tls_describe(bufferevent_openssl_get_ssl(c->bev), desc, sizeof(desc));
	log_info("s2s in conn %llu %s: TLS established (%s)", (unsigned long long)c->id, c->peer, desc);
	c->header_sent = false;
}

static void
in_timeout(struct conn *c)
{
	struct s2s_in *s = c->role;
	time_t now = time(NULL);
	size_t i;

	if (s == NULL || s->n_valid == 0) {
		if (s != NULL && s->n_pairs > 0) {
			/* still verifying: the verify deadline answers first */
			conn_set_timeout(c, 5);
			for (i = 0; i < s->n_pairs; i++)
				if (s->pairs[i].deadline + 5 > now)
					return;
		}
		log_info("s2s in conn %llu %s: not authenticated in time; closing", (unsigned long long)c->id,
		    c->peer);
		conn_stream_error(c, "connection-timeout", NULL);
		return;
	}
	{
		uint64_t idle = util_now_mono_ms() - c->last_read_ms;
		unsigned limit = c->w->conf->idle_timeout;

		if (idle + 500 >= (uint64_t)limit * 1000) {
			log_info("s2s in conn %llu %s: idle for %us; closing", (unsigned long long)c->id, c->peer, limit);
			conn_close(c, "idle");
			return;
		}
		conn_set_timeout(c, limit - (unsigned)(idle / 1000));
	}
}

static void
in_free(struct conn *c, const char *reason)
{
	struct s2s_in *s = c->role;
	size_t i;

	if (s == NULL)
		return;
	for (i = 0; i < s->n_pairs; i++)
		if (store_pair_delete(c->w->store, s->pairs[i].local, s->pairs[i].remote, PAIR_IN) == STORE_ERROR)
			log_warn("s2s in conn %llu: cannot clear pair state", (unsigned long long)c->id);
	log_info("s2s in conn %llu %s: closed (%s)", (unsigned long long)c->id, c->peer, reason);
	for (i = 0; i < s->n_pairs; i++) {
		zone_free(s->pairs[i].remote);
		zone_free(s->pairs[i].local);
	}
	zone_free(s->pairs);
	zone_free(s->to);
	zone_free(s->from);
	c->role = NULL;
	zone_free(s);
}

static const struct conn_ops in_ops = {
	.on_stream_start = in_stream_start,
	.on_stanza = in_stanza,
	.on_raw_stanza = in_raw_stanza,
	.on_tls_ready = in_tls_ready,
	.on_timeout = in_timeout,
	.on_free = in_free,
};
