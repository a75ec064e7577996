/* ipc.h - worker-to-worker stanza hand-off. The master creates one
 * datagram socketpair per worker slot before forking; every worker inherits
 * every slot's sending end and its own receiving end, so any worker can
 * hand a stanza to the worker that owns a component or an outbound stream.
 * Datagrams are atomic, so many senders can share one socket. */
#ifndef DIALBACKD_IPC_H
#define DIALBACKD_IPC_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

struct worker;

enum ipc_type {
	IPC_TO_COMPONENT = 1,	/* deliver data to the component of local */
	IPC_TO_REMOTE,		/* send data over the outbound stream local -> remote */
	IPC_QUEUE_KICK,		/* the store queue of local -> remote has new entries */
};

struct ipc_channel {
	int send_fd;		/* any worker writes here */
	int recv_fd;		/* only the slot's worker reads here */
};

/* Master: create channels for slots [0, n). 0 on success. */
int ipc_create(struct ipc_channel *ch, unsigned n, char *err, size_t errlen);
void ipc_close(struct ipc_channel *ch);

/* Worker: start reading its own channel. */
int ipc_worker_init(struct worker *w, struct ipc_channel *channels, unsigned n);
void ipc_worker_free(struct worker *w);

/* Hands a message to slot's worker. 0 when taken: it leaves with the
 * others of this loop turn at its end, or, when that worker's queue is
 * full, in order once it has room again. -1 when the message is larger
 * than a datagram may be (EMSGSIZE), too much is already waiting for that
 * worker (EAGAIN) or out of memory: the caller falls back (store queue, or
 * a bounce). */
int ipc_send(struct worker *w, int slot, enum ipc_type type, const char *local,
    const char *remote, const char *data, size_t len);

/* Read the worker channel again after back-pressure (conn.c). */
void ipc_resume(struct worker *w);
/* Largest stanza that fits in one message. */
size_t ipc_max_data(void);

#endif
