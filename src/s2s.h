/* s2s.h - the server-to-server roles.
 *
 * s2s_in.c   receiving and authoritative roles: inbound streams, features,
 *            STARTTLS, db:result checks (via s2s_out_verify), db:verify
 *            answers from the store, and stanzas for validated pairs.
 * s2s_out.c  originating role: one outbound stream per (local, remote) pair
 *            in this worker, resolved and connected on demand, with
 *            STARTTLS, db:result, a queue until valid, and the db:verify
 *            requests the receiving role sends to authoritative servers. */
#ifndef DIALBACKD_S2S_H
#define DIALBACKD_S2S_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

struct worker;
struct conn;
struct xml_node;

enum verify_verdict {
	VERIFY_VALID,
	VERIFY_INVALID,
	VERIFY_ERROR,		/* condition says why: remote-server-not-found, -timeout */
};

/* ---- s2s_in.c ---- */
struct iplimit_key;
/* ip: the address's slot in iplimit, released when the stream ends. */
int s2s_in_accept(struct worker *w, int fd, const struct sockaddr *sa, const struct iplimit_key *ip);
/* The authoritative server answered a db:verify that inbound connection
 * conn_id asked for (pair: originating remote -> local). */
void s2s_in_verify_result(struct worker *w, uint64_t conn_id, const char *remote,
    const char *local, const char *stream_id, enum verify_verdict verdict,
    const char *condition);

/* After a reload: close inbound streams to domains no longer hosted. */
void s2s_in_reconfigure(struct worker *w);

/* ---- s2s_out.c ---- */
/* Sends a serialized stanza (a jabber:server stanza without xmlns on its
 * root) from local to remote; queued until the pair is validated. 0 when
 * accepted, -1 when refused (logged). */
int s2s_out_send(struct worker *w, const char *local, const char *remote,
    const char *data, size_t len);
/* Asks remote's authoritative server whether key (which remote presented to
 * local on inbound stream conn_id with our stream id stream_id) is valid;
 * s2s_in_verify_result() follows, exactly once. */
void s2s_out_verify(struct worker *w, const char *local, const char *remote,
    const char *stream_id, const char *key, size_t keylen, uint64_t conn_id);
/* New entries in the store queue of a pair this worker owns. */
void s2s_out_kick(struct worker *w, const char *local, const char *remote);
/* At worker start: take over queues whose owner is gone. */
void s2s_out_resume_queues(struct worker *w);
/* Expires db:verify requests past their deadline (called every second). */
void s2s_out_tick(struct worker *w, time_t now);
/* After a reload: close outbound pairs of domains no longer hosted. */
void s2s_out_reconfigure(struct worker *w);
/* Closes every outbound stream (graceful stop). */
void s2s_out_shutdown(struct worker *w);
/* Number of outbound pairs held by this worker. */
size_t s2s_out_count(void);

/* ---- local.c: a hosted domain answering for itself ---- */
/* A validated stanza from remote to a hosted domain. Takes ownership. */
void local_deliver(struct worker *w, struct xml_node *stanza, const char *local,
    const char *remote);

#endif
