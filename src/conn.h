/* conn.h - one XMPP stream over TCP (and TLS): the socket, the optional TLS
 * layer, the XML parser and the output buffer. It owns all of them; one
 * teardown (conn_free via conn_close/conn_abort) releases everything. The
 * protocol role (s2s in, s2s out) lives behind conn_ops. */
#ifndef DIALBACKD_CONN_H
#define DIALBACKD_CONN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <event2/bufferevent.h>
#include <openssl/ssl.h>

#include "iplimit.h"
#include "xmlstream.h"

struct worker;
struct conn;

enum conn_kind { CONN_S2S_IN, CONN_S2S_OUT, CONN_COMPONENT };

struct conn_ops {
	/* on_connected, on_connect_failed, on_tls_ready and on_drained may be
	 * NULL for roles that never connect out, switch to TLS or wait on
	 * their output. */
	void (*on_connected)(struct conn *c);		/* outbound TCP is up */
	void (*on_connect_failed)(struct conn *c, const char *why);
	void (*on_stream_start)(struct conn *c, const struct xml_node *hdr);
	void (*on_stanza)(struct conn *c, struct xml_node *stanza);	/* takes ownership */
	/* May be NULL: a shallow stanza as head and bytes (see the
	 * on_raw_stanza callback in xmlstream.h); false sends it to
	 * on_stanza as a tree. */
	bool (*on_raw_stanza)(struct conn *c, const struct xml_stanza_head *head,
	    const char *raw, size_t len);
	void (*on_tls_ready)(struct conn *c);		/* handshake done, parser reset */
	void (*on_timeout)(struct conn *c);		/* conn_set_timeout expired */
	void (*on_free)(struct conn *c, const char *reason);	/* release role state */
	void (*on_drained)(struct conn *c);		/* output flushed (may be NULL) */
};

struct conn {
	uint64_t id;			/* unique within the worker */
	enum conn_kind kind;
	struct worker *w;
	const struct conn_ops *ops;
	void *role;			/* struct s2s_in / s2s_out */
	struct bufferevent *bev;	/* socket, then the TLS one that took it over */
	struct xml_stream *xs;
	struct event *ev_timeout;
	char peer[80];			/* remote address for logs */
	uint64_t last_read_ms, last_write_ms;	/* last stanza in / out (monotonic) */
	uint64_t read_cb_ms;	/* when the running read callback started */
	uint64_t last_keepalive_ms;
	/* bytes ever handed to the output buffer: with its length, tells
	 * how much of what was written has gone to the kernel */
	uint64_t out_added;
	int busy;			/* >0 while inside a callback of ours */
	bool tls;			/* TLS established */
	bool tls_handshaking;		/* TLS filter in place, handshake not seen done */
	bool connecting;		/* outbound TCP in progress */
	bool header_sent;		/* our <stream:stream> is out */
	bool closing;			/* close written; flushing */
	bool dead;			/* free as soon as not busy */
	bool ip_counted;		/* holds a slot in iplimit */
	struct iplimit_key ip;
	SSL_CTX *tls_ctx;		/* TLS switch requested (conn_start_tls) */
	bool tls_server;
	char *tls_sni;			/* until the switch; zone string */
	char *close_reason;		/* why it closes, or NULL; zone string */
	bool congested;			/* component: output above the high watermark */
	bool paused;			/* reading stopped for back-pressure */
	TAILQ_ENTRY(conn) pause_entry;
	TAILQ_ENTRY(conn) entry;
	struct conn *id_next;		/* in its worker's conns_by_id chain */
};

/* Adopts an accepted socket. NULL on failure (fd closed). */
struct conn *conn_accept(struct worker *w, enum conn_kind kind, int fd,
    const struct sockaddr *sa, const struct conn_ops *ops, void *role);
/* Back-pressure ended: read the paused streams (and the worker channel)
 * again. */
void conn_resume_paused(struct worker *w);
/* Lets the parsers of streams idle for a while give their memory back;
 * called from the worker's tick. Returns how many did. */
size_t conn_hibernate_idle(struct worker *w);
/* After the first validated pair: allow full-size stanzas. */
void conn_authenticated(struct conn *c);
/* Starts a non-blocking connect; ops->on_connected or on_connect_failed
 * follows. NULL on immediate failure. */
struct conn *conn_connect(struct worker *w, const struct sockaddr *sa,
    socklen_t len, const struct conn_ops *ops, void *role);

/* Queue bytes for the peer. -1 when the output limit is exceeded (the
 * connection is then being closed). */
int conn_write(struct conn *c, const char *data, size_t len);
int conn_printf(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Serialize a node into the stream (stream_ns as for xml_serialize). */
int conn_write_node(struct conn *c, const struct xml_node *n, const char *stream_ns);

/* Writes our <stream:stream> header: jabber:server with xmlns:db, or
 * jabber:component:accept on a component stream. id, from and to may be
 * NULL or "" (left out); values are escaped. */
void conn_send_header(struct conn *c, const char *id, const char *from, const char *to,
    bool version1);
/* <stream:error><condition/>[<text/>]</stream:error></stream:stream>, then
 * close once flushed. When our header is not out yet, the caller must
 * have sent it first (RFC 6120 §4.9.1.2). */
void conn_stream_error(struct conn *c, const char *condition, const char *text);
/* </stream:stream> (when our header went out), flush, free. */
void conn_close(struct conn *c, const char *reason);
/* Drop now without writing anything (TLS failure, peer gone). */
void conn_abort(struct conn *c, const char *reason);

/* Arms (or with secs 0 disarms) the role's timer. */
void conn_set_timeout(struct conn *c, unsigned secs);
/* From a stanza callback (after queueing <proceed/>, or on receiving it):
 * stop parsing and switch to TLS once the current bytes are consumed.
 * sni: the name to ask for (client), or NULL. -1 when out of memory. */
int conn_start_tls(struct conn *c, SSL_CTX *ctx, bool server, const char *sni);
/* Replace the parser state (stream restart). */
int conn_reset_parser(struct conn *c);

#endif
