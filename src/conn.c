/* conn.c - stream I/O: bufferevents, TLS switch, parser feeding, close. */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>

#include "conn.h"
#include "ipc.h"
#include "log.h"
#include "stats.h"
#include "util.h"
#include "worker.h"
#include "zone.h"

#define CONN_OUTPUT_MAX		(4u << 20)	/* a peer that stops reading is cut off here */
#define CONN_CLOSE_GRACE	5		/* seconds to flush a closing stream */
#define CONN_READ_CHUNK		16384
/* An inbound stream this long without a stanza gives its parser back
 * (xml_stream_hibernate): most federated streams are idle most of the
 * time, and a parser is most of an idle stream's memory. */
#define CONN_HIBERNATE_MS	2000
#define CONN_COMPONENT_READ	(256 * 1024)	/* read per loop turn, see conn_read_more */
#define CONN_S2S_READ		(64 * 1024)
/* A component (a trusted local service) whose unread output passes this
 * makes the worker stop reading inbound streams until it has caught up:
 * back-pressure instead of cutting the component off at output_buffer_max.
 * Remote peers never cause a pause (a peer that does not read would stall
 * everyone); they hit output_buffer_max. */
#define CONN_OUTPUT_HIGH	(1u << 20)
#define CONN_REASON_MAX		159	/* bytes of a close reason kept for the log */
#define CONN_HEADER_MAX		4096	/* bytes of a stream header's start tag */

static void conn_read_cb(struct bufferevent *bev, void *arg);
static void conn_write_cb(struct bufferevent *bev, void *arg);
static void conn_event_cb(struct bufferevent *bev, short what, void *arg);
static void conn_free(struct conn *c);
static void conn_set_congested(struct conn *c, bool on);

/* The XML parser's callbacks forward to the role. */
static void
xs_stream_start(void *ctx, const struct xml_node *hdr)
{
	struct conn *c = ctx;

	if (!c->dead && !c->closing)
		c->ops->on_stream_start(c, hdr);
}

static void
xs_stanza(void *ctx, struct xml_node *stanza)
{
	struct conn *c = ctx;

	if (c->dead || c->closing) {
		xml_node_free(stanza);
		return;
	}
	/* one clock read per read callback, not per stanza */
	c->last_read_ms = c->read_cb_ms;
	c->ops->on_stanza(c, stanza);
}

static void
xs_stream_end(void *ctx)
{
	struct conn *c = ctx;

	if (!c->dead && !c->closing)
		conn_close(c, "peer closed the stream");
}

static void
xs_error(void *ctx, enum xml_stream_error err, const char *detail)
{
	struct conn *c = ctx;
	const char *cond = xml_stream_error_condition(err);

	log_info("conn %llu %s: XML error: %s (%s)", (unsigned long long)c->id, c->peer,
	    cond, detail != NULL ? detail : "");
	if (!c->header_sent) {
		/* RFC 6120 §4.9.1.2: open our stream before the error. */
		conn_send_header(c, NULL, NULL, NULL, c->kind != CONN_COMPONENT);
	}
	conn_stream_error(c, cond, NULL);
}

static bool
xs_raw_stanza(void *ctx, const struct xml_stanza_head *head, const char *raw, size_t len)
{
	struct conn *c = ctx;

	if (c->dead || c->closing)
		return true;	/* dropped, as xs_stanza does */
	/* Every role on a shallow stream (conn_new) takes stanzas as bytes;
	 * one that did not would get each one parsed again, whole. */
	if (c->ops->on_raw_stanza == NULL)
		return false;
	c->last_read_ms = c->read_cb_ms;
	return c->ops->on_raw_stanza(c, head, raw, len);
}

static const struct xml_stream_callbacks conn_xml_callbacks = {
	.on_stream_start = xs_stream_start,
	.on_stanza = xs_stanza,
	.on_raw_stanza = xs_raw_stanza,
	.on_stream_end = xs_stream_end,
	.on_error = xs_error,
};

/* Keeps a copy of reason, at most CONN_REASON_MAX bytes (idle streams do
 * not carry room for one). Out of memory keeps the previous reason. */
static void
conn_set_reason(struct conn *c, const char *reason)
{
	size_t len = strnlen(reason, CONN_REASON_MAX);
	char *r = zone_malloc(len + 1);

	if (r == NULL)
		return;
	memcpy(r, reason, len);
	r[len] = '\0';
	zone_free(c->close_reason);
	c->close_reason = r;
}

static const char *
conn_reason(const struct conn *c, const char *fallback)
{
	return c->close_reason != NULL ? c->close_reason : fallback;
}

static void
conn_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	if (c->closing) {
		conn_abort(c, conn_reason(c, "close timed out"));
		return;
	}
	c->busy++;
	c->ops->on_timeout(c);
	c->busy--;
	if (c->dead && c->busy == 0)
		conn_free(c);
}

/* The parser's limits from the configuration, for stanzas of up to
 * stanza_bytes. */
static void
conn_limits(const struct conf *conf, size_t stanza_bytes, struct xml_stream_limits *lim)
{
	memset(lim, 0, sizeof(*lim));
	lim->max_stanza_bytes = stanza_bytes;
	lim->max_depth = conf->max_element_depth;
	lim->max_attrs = conf->max_element_attributes;
	lim->max_children = conf->max_element_children;
	lim->max_header_bytes = CONN_HEADER_MAX;
}

static struct conn *
conn_new(struct worker *w, enum conn_kind kind, const struct conn_ops *ops, void *role)
{
	struct conn *c = zone_calloc(1, sizeof(*c));
	struct xml_stream_limits lim;

	if (c == NULL)
		return NULL;
	c->id = ++w->next_conn_id;
	c->kind = kind;
	c->w = w;
	c->ops = ops;
	c->role = role;
	/* Until a pair is validated, only small dialback elements are needed. */
	conn_limits(w->conf, w->conf->max_stanza_size_unauth < w->conf->max_stanza_size ?
	    w->conf->max_stanza_size_unauth : w->conf->max_stanza_size, &lim);
	c->xs = xml_stream_new(&lim, &conn_xml_callbacks, c);
	c->ev_timeout = evtimer_new(w->base, conn_timeout_cb, c);
	if (c->xs == NULL || c->ev_timeout == NULL || worker_conn_index(w, c) == -1) {
		if (c->xs != NULL)
			xml_stream_free(c->xs);
		if (c->ev_timeout != NULL)
			event_free(c->ev_timeout);
		zone_free(c);
		return NULL;
	}
	/* Inbound stanzas are routed as the bytes they arrived as (see
	 * xml_stream_set_shallow); outbound streams carry no stanzas to us. */
	xml_stream_set_shallow(c->xs, kind != CONN_S2S_OUT);
	c->last_read_ms = c->last_write_ms = util_now_mono_ms();
	TAILQ_INSERT_TAIL(&w->conns, c, entry);
	if (++w->n_conns > w->conns_high)
		w->conns_high = w->n_conns;
	return c;
}

static void
conn_setup_bev(struct conn *c)
{
	bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
	bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
}

/* Wraps fd (owned from here on) into the connection's bufferevent. On
 * failure the connection is freed and -1 returned. */
static int
conn_attach_socket(struct conn *c, evutil_socket_t fd)
{
	int one = 1;

	/* Dialback is a chain of small writes; Nagle would add ~40 ms to each
	 * (see the interop notes on delayed ACKs). */
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == -1)
		log_debug("conn %llu: TCP_NODELAY: %s", (unsigned long long)c->id, strerror(errno));
	c->bev = bufferevent_socket_new(c->w->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		close(fd);
		conn_free(c);
		return -1;
	}
	conn_setup_bev(c);
	return 0;
}

struct conn *
conn_accept(struct worker *w, enum conn_kind kind, int fd, const struct sockaddr *sa,
    const struct conn_ops *ops, void *role)
{
	struct conn *c;

	if ((c = conn_new(w, kind, ops, role)) == NULL) {
		close(fd);
		return NULL;
	}
	util_format_addr(sa, c->peer, sizeof(c->peer));
	evutil_make_socket_nonblocking(fd);
	if (conn_attach_socket(c, fd) == -1)
		return NULL;
	if (bufferevent_enable(c->bev, EV_READ | EV_WRITE) == -1) {
		conn_free(c);
		return NULL;
	}
	return c;
}

struct conn *
conn_connect(struct worker *w, const struct sockaddr *sa, socklen_t len,
    const struct conn_ops *ops, void *role)
{
	struct conn *c = conn_new(w, CONN_S2S_OUT, ops, role);
	evutil_socket_t fd;

	if (c == NULL)
		return NULL;
	util_format_addr(sa, c->peer, sizeof(c->peer));
	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		log_warn("conn %llu: socket: %s", (unsigned long long)c->id, strerror(errno));
		conn_free(c);
		return NULL;
	}
	if (conn_attach_socket(c, fd) == -1)
		return NULL;
	c->connecting = true;
	if (bufferevent_socket_connect(c->bev, sa, (int)len) == -1) {
		conn_free(c);
		return NULL;
	}
	if (bufferevent_enable(c->bev, EV_READ | EV_WRITE) == -1) {
		conn_free(c);
		return NULL;
	}
	return c;
}

/* Debug logs show the XML, but never a dialback key or handshake digest:
 * the text inside those elements is replaced. */
static void
log_xml(const struct conn *c, const char *dir, const char *data, size_t len)
{
	static const char *const secret_tags[] = { "<db:result", "<db:verify", "<result", "<verify", "<handshake" };
	char buf[4096];
	size_t i, n = len < sizeof(buf) - 1 ? len : sizeof(buf) - 1;

	memcpy(buf, data, n);
	buf[n] = '\0';
	for (i = 0; i < ARRAY_SIZE(secret_tags); i++) {
		char *p = buf;
		while ((p = strstr(p, secret_tags[i])) != NULL) {
			char *gt = strchr(p, '>');
			if (gt == NULL) {
				*p = '\0';	/* cut mid-tag: drop the rest */
				break;
			}
			p = gt + 1;
			if (gt > buf && gt[-1] == '/')
				continue;
			while (*p != '\0' && *p != '<')
				*p++ = '*';
		}
	}
	for (i = 0; i < n; i++)
		if (buf[i] == '\n' || buf[i] == '\r')
			buf[i] = ' ';
	log_debug("conn %llu %s %s: %s%s", (unsigned long long)c->id, c->peer, dir, buf,
	    n < len ? " [...]" : "");
}

int
conn_write(struct conn *c, const char *data, size_t len)
{
	struct evbuffer *out;

	if (c->dead || c->bev == NULL)
		return -1;
	out = bufferevent_get_output(c->bev);
	if (evbuffer_get_length(out) + len > c->w->conf->output_buffer_max) {
		log_warn("conn %llu %s: peer is not reading (%zu bytes pending); closing",
		    (unsigned long long)c->id, c->peer, evbuffer_get_length(out));
		stats_inc(ST_LIMITS_HIT);
		conn_abort(c, "output buffer limit");
		return -1;
	}
	if (log_enabled(LOG_LVL_DEBUG))
		log_xml(c, "SEND", data, len);
	stats_add(ST_BYTES_OUT, len);
	if (evbuffer_add(out, data, len) == -1) {
		conn_abort(c, "out of memory");
		return -1;
	}
	c->out_added += len;
	if (c->kind == CONN_COMPONENT && evbuffer_get_length(out) > CONN_OUTPUT_HIGH)
		conn_set_congested(c, true);
	/* Whitespace keepalives do not count as traffic for idle_timeout. */
	if (!(len == 1 && data[0] == ' '))
		c->last_write_ms = util_now_mono_ms();
	return 0;
}

int
conn_printf(struct conn *c, const char *fmt, ...)
{
	char *p;
	va_list ap;
	int n, rc;

	va_start(ap, fmt);
	n = vasprintf(&p, fmt, ap);
	va_end(ap);
	if (n < 0) {
		conn_abort(c, "out of memory");
		return -1;
	}
	rc = conn_write(c, p, (size_t)n);
	free(p);
	return rc;
}

int
conn_write_node(struct conn *c, const struct xml_node *n, const char *stream_ns)
{
	struct strbuf sb;
	int rc = -1;

	strbuf_init(&sb, CONN_OUTPUT_MAX);
	if (xml_serialize(n, stream_ns, &sb) == 0)
		rc = conn_write(c, sb.data, sb.len);
	strbuf_free(&sb);
	return rc;
}

static void
conn_begin_close(struct conn *c, const char *reason)
{
	conn_set_reason(c, reason);
	c->closing = true;
	if (c->bev != NULL)
		bufferevent_disable(c->bev, EV_READ);
	evtimer_del(c->ev_timeout);
	{
		struct timeval tv = { CONN_CLOSE_GRACE, 0 };
		evtimer_add(c->ev_timeout, &tv);
	}
	if (c->bev == NULL || evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		conn_abort(c, reason);
}

static int
header_attr(struct strbuf *sb, const char *name, const char *value)
{
	if (value == NULL || value[0] == '\0')
		return 0;
	if (strbuf_printf(sb, " %s='", name) == -1 || xml_escape(sb, value, strlen(value)) == -1)
		return -1;
	return strbuf_appends(sb, "'");
}

void
conn_send_header(struct conn *c, const char *id, const char *from, const char *to, bool version1)
{
	struct strbuf sb;

	strbuf_init(&sb, 8192);
	if (strbuf_appends(&sb, c->kind == CONN_COMPONENT ?
	    "<?xml version='1.0'?><stream:stream xmlns='" NS_COMPONENT "' xmlns:stream='" NS_STREAMS "'" :
	    "<?xml version='1.0'?><stream:stream xmlns='" NS_SERVER "' xmlns:stream='" NS_STREAMS "'"
	    " xmlns:db='" NS_DIALBACK "'") == 0 &&
	    header_attr(&sb, "id", id) == 0 && header_attr(&sb, "from", from) == 0 &&
	    header_attr(&sb, "to", to) == 0 &&
	    strbuf_appends(&sb, version1 ? " version='1.0' xml:lang='en'>" : " xml:lang='en'>") == 0)
		conn_write(c, sb.data, sb.len);
	strbuf_free(&sb);
	c->header_sent = true;
}

void
conn_stream_error(struct conn *c, const char *condition, const char *text)
{
	if (c->dead || c->closing)
		return;
	log_info("conn %llu %s: stream error <%s/>%s%s", (unsigned long long)c->id, c->peer,
	    condition, text != NULL ? ": " : "", text != NULL ? text : "");
	stats_inc(ST_STREAM_ERRORS);
	if (strcmp(condition, "policy-violation") == 0 || strcmp(condition, "resource-constraint") == 0)
		stats_inc(ST_LIMITS_HIT);
	if (c->header_sent) {
		struct strbuf sb;

		strbuf_init(&sb, 8192);
		if (strbuf_printf(&sb, "<stream:error><%s xmlns='" NS_STREAM_ERRORS "'/>", condition) == 0 &&
		    (text == NULL || (strbuf_appends(&sb, "<text xmlns='" NS_STREAM_ERRORS "' xml:lang='en'>") == 0 &&
		    xml_escape(&sb, text, strlen(text)) == 0 && strbuf_appends(&sb, "</text>") == 0)) &&
		    strbuf_appends(&sb, "</stream:error></stream:stream>") == 0)
			conn_write(c, sb.data, sb.len);
		strbuf_free(&sb);
	}
	if (!c->dead)
		conn_begin_close(c, condition);
}

void
conn_close(struct conn *c, const char *reason)
{
	if (c->dead || c->closing)
		return;
	if (c->header_sent)
		conn_write(c, "</stream:stream>", 16);
	if (!c->dead)
		conn_begin_close(c, reason);
}

void
conn_abort(struct conn *c, const char *reason)
{
	if (c->dead)
		return;
	if (c->close_reason == NULL || !c->closing)
		conn_set_reason(c, reason);
	c->dead = true;
	if (c->bev != NULL)
		bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	if (c->busy == 0)
		conn_free(c);
}

void
conn_resume_paused(struct worker *w)
{
	struct conn *p;

	while ((p = TAILQ_FIRST(&w->paused)) != NULL) {
		TAILQ_REMOVE(&w->paused, p, pause_entry);
		p->paused = false;
		if (p->dead || p->closing || p->bev == NULL)
			continue;
		bufferevent_enable(p->bev, EV_READ);
		/* what was already read waits in the input buffer: process it */
		bufferevent_trigger(p->bev, EV_READ, BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
	}
	ipc_resume(w);
}

static void
conn_set_congested(struct conn *c, bool on)
{
	if (c->congested == on)
		return;
	c->congested = on;
	if (on) {
		if (c->w->congested++ == 0)
			log_info("conn %llu %s: component is slow; pausing inbound streams",
			    (unsigned long long)c->id, c->peer);
	} else if (--c->w->congested == 0) {
		conn_resume_paused(c->w);
	}
}

static void
conn_free(struct conn *c)
{
	struct worker *w = c->w;

	if (c->paused) {
		TAILQ_REMOVE(&w->paused, c, pause_entry);
		c->paused = false;
	}
	conn_set_congested(c, false);
	c->busy++;	/* on_free must not re-enter conn_free */
	c->ops->on_free(c, conn_reason(c, "closed"));
	TAILQ_REMOVE(&w->conns, c, entry);
	worker_conn_unindex(w, c);
	w->n_conns--;
	if (c->ip_counted)
		iplimit_release(&c->ip);
	if (c->bev != NULL)
		bufferevent_free(c->bev);
	xml_stream_free(c->xs);
	event_free(c->ev_timeout);
	zone_free(c->tls_sni);
	zone_free(c->close_reason);
	zone_free(c);
}

void
conn_authenticated(struct conn *c)
{
	struct xml_stream_limits lim;

	conn_limits(c->w->conf, c->w->conf->max_stanza_size, &lim);
	if (xml_stream_set_limits(c->xs, &lim) == -1)
		log_warn("conn %llu: cannot raise the stanza limit", (unsigned long long)c->id);
}

void
conn_set_timeout(struct conn *c, unsigned secs)
{
	struct timeval tv = { (time_t)secs, 0 };

	if (c->closing || c->dead)
		return;
	evtimer_del(c->ev_timeout);
	if (secs > 0)
		evtimer_add(c->ev_timeout, &tv);
}

int
conn_reset_parser(struct conn *c)
{
	return xml_stream_reset(c->xs);
}

int
conn_start_tls(struct conn *c, SSL_CTX *ctx, bool server, const char *sni)
{
	/* Called from a stanza callback while the parser still holds the
	 * bytes of <starttls/> or <proceed/>: the switch happens in
	 * conn_read_cb once those bytes are drained, so the TLS layer never
	 * sees them. */
	zone_free(c->tls_sni);
	c->tls_sni = NULL;
	if (sni != NULL && sni[0] != '\0' && (c->tls_sni = zone_strdup(sni)) == NULL)
		return -1;
	c->tls_ctx = ctx;
	c->tls_server = server;
	xml_stream_stop(c->xs);
	return 0;
}

/* The TLS bufferevent takes the socket over from the cleartext one, which
 * is freed: one buffer layer less per byte, and ~1.3 KB less per stream
 * than a filter on top of it. What the cleartext layer still holds (our
 * <proceed/>) is written out first; it is tiny and the peer is waiting
 * for it, so a socket that cannot take it now means a peer not reading. */
static void
conn_switch_tls(struct conn *c)
{
	SSL *ssl;
	struct bufferevent *tls;
	struct evbuffer *out = bufferevent_get_output(c->bev);
	SSL_CTX *ctx = c->tls_ctx;
	evutil_socket_t fd = bufferevent_getfd(c->bev);

	c->tls_ctx = NULL;
	/* the bufferevent keeps its output's front frozen: only it writes */
	if (evbuffer_unfreeze(out, 1) == -1)
		fd = -1;
	while (fd != -1 && evbuffer_get_length(out) > 0)
		if (evbuffer_write(out, fd) <= 0)
			break;
	if (fd == -1 || evbuffer_get_length(out) > 0) {
		conn_abort(c, "TLS: cannot flush the cleartext stream");
		return;
	}
	if ((ssl = SSL_new(ctx)) == NULL) {
		conn_abort(c, "TLS: cannot create session");
		return;
	}
	if (!c->tls_server && c->tls_sni != NULL && SSL_set_tlsext_host_name(ssl, c->tls_sni) != 1)
		log_debug("conn %llu: cannot set SNI", (unsigned long long)c->id);
	zone_free(c->tls_sni);
	c->tls_sni = NULL;
	/* the cleartext bufferevent lets go of the socket without closing it */
	if (bufferevent_setfd(c->bev, -1) == -1) {
		SSL_free(ssl);
		conn_abort(c, "TLS: cannot take the socket over");
		return;
	}
	bufferevent_free(c->bev);	/* freed once its read callback (ours) returns */
	c->bev = NULL;
	tls = bufferevent_openssl_socket_new(c->w->base, fd, ssl,
	    c->tls_server ? BUFFEREVENT_SSL_ACCEPTING : BUFFEREVENT_SSL_CONNECTING,
	    BEV_OPT_CLOSE_ON_FREE);
	if (tls == NULL) {
		SSL_free(ssl);
		evutil_closesocket(fd);
		conn_abort(c, "TLS: cannot create the TLS layer");
		return;
	}
	/* Peers often close TCP without close_notify; that is not an error. */
	bufferevent_openssl_set_allow_dirty_shutdown(tls, 1);
	c->bev = tls;
	c->tls_handshaking = true;
	conn_setup_bev(c);
	if (bufferevent_enable(c->bev, EV_READ | EV_WRITE) == -1)
		conn_abort(c, "TLS: cannot enable");
}

/* The handshake is done: the stream restarts on a fresh parser. Reached
 * from the CONNECTED event or, when the peer's first application data
 * arrives in the same read as its Finished message, from the read callback
 * (libevent may deliver that data before the event). */
static void
conn_tls_established(struct conn *c)
{
	if (!c->tls_handshaking)
		return;
	c->tls_handshaking = false;
	c->tls = true;
	if (conn_reset_parser(c) == -1)
		conn_abort(c, "cannot reset parser");
	else if (c->ops->on_tls_ready != NULL)
		c->ops->on_tls_ready(c);
}

/* libevent 2.1 reads at most 4 KiB per loop turn. A turn that handles
 * only ~30 stanzas makes one write per remote stream for every stanza or
 * two when a component fans out to many; so take what the socket holds,
 * up to a budget (EOF and errors are left for the next read to see). */
static void
conn_read_more(struct conn *c, struct evbuffer *in)
{
	size_t budget = c->kind == CONN_COMPONENT ? CONN_COMPONENT_READ : CONN_S2S_READ;
	evutil_socket_t fd;

	if (c->bev == NULL || c->dead || c->closing || c->tls || c->tls_handshaking ||
	    c->tls_ctx != NULL || (c->kind == CONN_S2S_IN && c->w->congested > 0))
		return;
	if ((fd = bufferevent_getfd(c->bev)) == -1)
		return;
	/* the bufferevent keeps its input's end frozen between its reads */
	if (evbuffer_unfreeze(in, 0) == -1)
		return;
	while (evbuffer_get_length(in) < budget) {
		if (evbuffer_read(in, fd, (int)(budget - evbuffer_get_length(in))) <= 0)
			break;
	}
	(void)evbuffer_freeze(in, 0);
}

static void
conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	c->busy++;
	c->read_cb_ms = util_now_mono_ms();
	conn_tls_established(c);
	conn_read_more(c, in);
	while (!c->dead && !c->closing && evbuffer_get_length(in) > 0) {
		if (c->w->congested > 0 && c->kind == CONN_S2S_IN) {
			/* back-pressure: leave the rest in the input buffer */
			bufferevent_disable(c->bev, EV_READ);
			if (!c->paused) {
				c->paused = true;
				TAILQ_INSERT_TAIL(&c->w->paused, c, pause_entry);
			}
			break;
		}
		/* Parsed where it lies: expat keeps a copy of what it has
		 * not finished, and nothing touches this input meanwhile. */
		struct evbuffer_iovec v;
		size_t n, consumed = 0;
		enum xml_feed_result r;

		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
			break;
		n = v.iov_len < CONN_READ_CHUNK ? v.iov_len : CONN_READ_CHUNK;
		stats_add(ST_BYTES_IN, (uint64_t)n);
		if (log_enabled(LOG_LVL_DEBUG))
			log_xml(c, "RECV", v.iov_base, n);
		r = xml_stream_feed(c->xs, v.iov_base, n, &consumed);
		if (r == XS_FEED_ERROR) {
			evbuffer_drain(in, (size_t)n);
			break;
		}
		evbuffer_drain(in, r == XS_FEED_STOPPED ? consumed : (size_t)n);
		if (r == XS_FEED_STOPPED) {
			/* A role stopped the parser to switch to TLS: nothing may
			 * follow <starttls/> or <proceed/> in cleartext. */
			if (c->dead || c->closing || c->tls_ctx == NULL)
				break;
			if (evbuffer_get_length(in) > 0) {
				log_warn("conn %llu %s: cleartext data after STARTTLS; closing",
				    (unsigned long long)c->id, c->peer);
				conn_abort(c, "data after starttls");
				break;
			}
			conn_switch_tls(c);
			break;
		}
	}
	c->busy--;
	if (c->dead && c->busy == 0)
		conn_free(c);
}

size_t
conn_hibernate_idle(struct worker *w)
{
	uint64_t now = util_now_mono_ms();
	struct conn *c;
	size_t n = 0;

	TAILQ_FOREACH(c, &w->conns, entry) {
		if (c->dead || c->closing || c->busy > 0 || now - c->last_read_ms < CONN_HIBERNATE_MS)
			continue;
		if (xml_stream_hibernate(c->xs))
			n++;
	}
	return n;
}

static void
conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	if (c->dead || evbuffer_get_length(bufferevent_get_output(bev)) != 0)
		return;
	if (c->closing) {
		conn_abort(c, conn_reason(c, "closed"));
		return;
	}
	conn_set_congested(c, false);
	if (c->ops->on_drained != NULL) {
		c->busy++;
		c->ops->on_drained(c);
		c->busy--;
		if (c->dead && c->busy == 0)
			conn_free(c);
	}
}

static void
conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;
	char why[200];
	unsigned long e;

	c->busy++;
	if (what & BEV_EVENT_CONNECTED) {
		if (c->connecting) {
			c->connecting = false;
			if (c->ops->on_connected != NULL)
				c->ops->on_connected(c);
		} else {
			conn_tls_established(c);
		}
	} else if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
		int err = EVUTIL_SOCKET_ERROR();

		e = bufferevent_get_openssl_error(bev);
		if (e != 0) {
			char ebuf[160];
			ERR_error_string_n(e, ebuf, sizeof(ebuf));
			snprintf(why, sizeof(why), "TLS error: %s", ebuf);
		} else if (what & BEV_EVENT_EOF) {
			snprintf(why, sizeof(why), "connection closed by peer");
		} else {
			snprintf(why, sizeof(why), "%s", err != 0 ? strerror(err) : "socket error");
		}
		if (c->connecting) {
			c->connecting = false;
			if (c->ops->on_connect_failed != NULL)
				c->ops->on_connect_failed(c, why);
			conn_abort(c, why);
		} else if (c->closing) {
			conn_abort(c, conn_reason(c, "closed"));
		} else {
			conn_abort(c, why);
		}
	}
	c->busy--;
	if (c->dead && c->busy == 0)
		conn_free(c);
}
