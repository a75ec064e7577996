/* ipc.c - datagram hand-off between workers. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "ipc.h"
#include "log.h"
#include "router.h"
#include "util.h"
#include "worker.h"

#define IPC_BUF		(2u << 20)	/* socket buffers: room for stanzas up to ~1.9 MiB */
#define IPC_MAGIC	0x44424431u	/* "DBD1" */
#define IPC_BACKLOG_MAX	(64u << 20)	/* bytes waiting for one busy worker */
#define IPC_BATCH_MAX	(64u << 10)	/* messages gathered into one datagram */
#define IPC_RECV_BUDGET	(1u << 20)	/* bytes read from the channel per wakeup */

struct ipc_hdr {
	uint32_t magic;
	uint16_t type;
	uint16_t local_len;
	uint16_t remote_len;
	uint16_t pad;
	uint32_t data_len;
};

static size_t max_data = 200000;	/* refined from the real buffer size */
static struct event *ev_recv;
static struct ipc_channel *chans;
static unsigned n_chans;
static char *rbuf;
static bool recv_paused;

void
ipc_resume(struct worker *w)
{
	if (recv_paused && ev_recv != NULL && event_add(ev_recv, NULL) == 0)
		recv_paused = false;
}

size_t
ipc_max_data(void)
{
	return max_data;
}

static void
set_buffers(int fd, int opt_force, int opt)
{
	int size = (int)IPC_BUF;

	/* As root before privileges are dropped, FORCE goes past wmem_max. */
	if (setsockopt(fd, SOL_SOCKET, opt_force, &size, sizeof(size)) == -1)
		(void)setsockopt(fd, SOL_SOCKET, opt, &size, sizeof(size));
}

int
ipc_create(struct ipc_channel *ch, unsigned n, char *err, size_t errlen)
{
	unsigned i;
	int sv[2];

	for (i = 0; i < n; i++) {
		if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == -1) {
			snprintf(err, errlen, "socketpair: %s", strerror(errno));
			while (i-- > 0)
				ipc_close(&ch[i]);
			return -1;
		}
		set_buffers(sv[0], SO_SNDBUFFORCE, SO_SNDBUF);
		set_buffers(sv[1], SO_RCVBUFFORCE, SO_RCVBUF);
		ch[i].send_fd = sv[0];
		ch[i].recv_fd = sv[1];
	}
	return 0;
}

void
ipc_close(struct ipc_channel *ch)
{
	if (ch->send_fd != -1)
		close(ch->send_fd);
	if (ch->recv_fd != -1)
		close(ch->recv_fd);
	ch->send_fd = ch->recv_fd = -1;
}

/* A datagram holds one or more messages back to back (see ipc_send). */
static void
deliver_datagram(struct worker *w, size_t n)
{
	struct ipc_hdr h;
	size_t off = 0, len;

	while (off < n) {
		if (n - off < sizeof(h)) {
			log_warn("ipc: short message (%zu bytes) dropped", n - off);
			return;
		}
		memcpy(&h, rbuf + off, sizeof(h));
		len = sizeof(h) + (size_t)h.local_len + h.remote_len + 2 + (size_t)h.data_len;
		if (h.magic != IPC_MAGIC || len > n - off) {
			log_warn("ipc: malformed message dropped");
			return;
		}
		{
			char *local = rbuf + off + sizeof(h);
			char *remote = local + h.local_len + 1;
			char *data = remote + h.remote_len + 1;

			local[h.local_len] = '\0';
			remote[h.remote_len] = '\0';
			router_ipc_deliver(w, (enum ipc_type)h.type, local, remote, data, h.data_len);
		}
		off += len;
	}
}

static void
ipc_recv_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	size_t taken;
	ssize_t n;
	int i;

	/* A bounded amount per wakeup keeps the loop fair to sockets. */
	for (i = 0, taken = 0; i < 256 && taken < IPC_RECV_BUDGET; i++) {
		if (w->congested > 0) {
			/* back-pressure: senders keep their messages in their
			 * backlogs until our component has caught up */
			event_del(ev_recv);
			recv_paused = true;
			return;
		}
		n = recv(fd, rbuf, IPC_BUF, 0);
		if (n < 0) {
			if (errno != EAGAIN && errno != EINTR)
				log_warn("ipc: recv: %s", strerror(errno));
			return;
		}
		deliver_datagram(w, (size_t)n);
		taken += (size_t)n;
	}
}

/* Messages for one worker are gathered into one datagram per loop turn:
 * a stanza per datagram cost a send and a receive each, which made a
 * stanza that crosses workers about three times as dear as one that does
 * not. A message larger than a batch goes alone. A datagram the channel
 * has no room for (EAGAIN) waits, in order, in that worker's backlog; a
 * write event sends it when the channel drains, and everything later for
 * that worker queues behind it. */
struct ipc_pending {
	struct ipc_pending *next;
	size_t len;
	unsigned char msg[];
};

struct ipc_out {
	struct ipc_pending *batch;	/* gathered this loop turn, or NULL */
	struct ipc_pending *head, *tail;	/* the backlog */
	size_t bytes;			/* in the backlog */
	struct event *ev;		/* EV_WRITE on the slot's send_fd while backlogged */
	int slot;
};

static struct ipc_out *outs;		/* one per slot, made on first use */
static struct event *ev_flush;		/* sends the batches at the end of a turn */
static size_t batch_max = IPC_BATCH_MAX;

static void flush_cb(evutil_socket_t fd, short what, void *arg);

int
ipc_worker_init(struct worker *w, struct ipc_channel *channels, unsigned n)
{
	int sndbuf = 0;
	socklen_t len = sizeof(sndbuf);

	chans = channels;
	n_chans = n;
	if ((rbuf = malloc(IPC_BUF)) == NULL)
		return -1;
	if (getsockopt(channels[w->slot].send_fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, &len) == 0 &&
	    sndbuf > 0) {
		/* The kernel doubles the value for bookkeeping; leave room
		 * for a message's header and names too. */
		size_t half = (size_t)sndbuf / 2;
		size_t usable = half > 16384 ? half - 8192 : half / 2;

		max_data = usable < IPC_BUF - 8192 ? usable : IPC_BUF - 8192;
	}
	/* a batch always fits in one datagram */
	batch_max = max_data < IPC_BATCH_MAX ? max_data : IPC_BATCH_MAX;
	ev_recv = event_new(w->base, channels[w->slot].recv_fd, EV_READ | EV_PERSIST, ipc_recv_cb, w);
	if (ev_recv == NULL || event_add(ev_recv, NULL) == -1)
		return -1;
	if ((ev_flush = event_new(w->base, -1, 0, flush_cb, w)) == NULL)
		return -1;
	return 0;
}

/* Errors after which a datagram is kept and sent again: a full channel,
 * or the kernel short of memory for a moment. */
static bool
send_retry(int err)
{
	return err == EAGAIN || err == EWOULDBLOCK || err == EINTR || err == ENOBUFS || err == ENOMEM;
}

static void
backlog_flush(evutil_socket_t fd, short what, void *arg)
{
	struct ipc_out *o = arg;
	struct ipc_pending *p;

	while ((p = o->head) != NULL) {
		if (send(chans[o->slot].send_fd, p->msg, p->len, MSG_DONTWAIT) < 0) {
			if (send_retry(errno))
				return;		/* still full: wait for the next write event */
			log_warn("ipc: %zu bytes for worker %d are lost: %s", p->len, o->slot, strerror(errno));
		}
		o->head = p->next;
		if (o->head == NULL)
			o->tail = NULL;
		o->bytes -= p->len;
		free(p);
	}
	event_del(o->ev);
}

/* Sends a datagram, or keeps it behind the slot's backlog. Takes p. -1
 * (p freed) when it is lost: logged, for the caller to report. */
static int
out_push(struct worker *w, struct ipc_out *o, struct ipc_pending *p)
{
	struct ipc_pending *q;

	if (o->head == NULL) {
		if (send(chans[o->slot].send_fd, p->msg, p->len, MSG_DONTWAIT) >= 0) {
			free(p);
			return 0;
		}
		if (!send_retry(errno)) {
			/* The master holds every channel open, so this means
			 * a broken channel, not a busy worker. */
			log_warn("ipc: %zu bytes for worker %d are lost: %s", p->len, o->slot, strerror(errno));
			free(p);
			return -1;
		}
	}
	if (o->ev == NULL &&
	    (o->ev = event_new(w->base, chans[o->slot].send_fd, EV_WRITE | EV_PERSIST, backlog_flush, o)) == NULL) {
		log_warn("ipc: %zu bytes for worker %d are lost: out of memory", p->len, o->slot);
		free(p);
		return -1;
	}
	/* a batch kept for a while keeps only what it holds */
	if ((q = realloc(p, sizeof(*p) + p->len)) != NULL)
		p = q;
	p->next = NULL;
	if (o->tail != NULL)
		o->tail->next = p;
	else
		o->head = p;
	o->tail = p;
	o->bytes += p->len;
	/* fails only on a broken event base; the next push tries again */
	if (event_add(o->ev, NULL) == -1)
		log_warn("ipc: cannot wait for worker %d's channel", o->slot);
	return 0;
}

static int
out_flush(struct worker *w, struct ipc_out *o)
{
	struct ipc_pending *p = o->batch;

	o->batch = NULL;
	if (p == NULL)
		return 0;
	return out_push(w, o, p);
}

static void
flush_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	unsigned i;

	(void)fd;
	(void)what;
	for (i = 0; outs != NULL && i < n_chans; i++)
		(void)out_flush(w, &outs[i]);
}

static void
pending_put(struct ipc_pending *p, const struct iovec *iov, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		memcpy(p->msg + p->len, iov[i].iov_base, iov[i].iov_len);
		p->len += iov[i].iov_len;
	}
}

int
ipc_send(struct worker *w, int slot, enum ipc_type type, const char *local,
    const char *remote, const char *data, size_t len)
{
	struct ipc_hdr h;
	struct iovec iov[4];
	size_t ll = strlen(local), rl = strlen(remote), total;
	struct ipc_out *o;
	struct ipc_pending *p;
	unsigned i;

	if (slot < 0 || (unsigned)slot >= n_chans || len > max_data || ll > 0xffff || rl > 0xffff) {
		errno = EMSGSIZE;
		return -1;
	}
	if (outs == NULL) {
		if ((outs = calloc(n_chans, sizeof(*outs))) == NULL)
			return -1;
		for (i = 0; i < n_chans; i++)
			outs[i].slot = (int)i;
	}
	o = &outs[slot];
	memset(&h, 0, sizeof(h));
	h.magic = IPC_MAGIC;
	h.type = (uint16_t)type;
	h.local_len = (uint16_t)ll;
	h.remote_len = (uint16_t)rl;
	h.data_len = (uint32_t)len;
	iov[0].iov_base = &h;
	iov[0].iov_len = sizeof(h);
	iov[1].iov_base = (void *)local;
	iov[1].iov_len = ll + 1;
	iov[2].iov_base = (void *)remote;
	iov[2].iov_len = rl + 1;
	iov[3].iov_base = (void *)data;
	iov[3].iov_len = len;
	total = sizeof(h) + ll + 1 + rl + 1 + len;
	/* Refused now, while the caller can still queue or bounce it. */
	if (o->bytes + (o->batch != NULL ? o->batch->len : 0) + total > IPC_BACKLOG_MAX) {
		errno = EAGAIN;
		return -1;
	}
	/* a failed flush is logged there; this message is not part of it */
	if (o->batch != NULL && o->batch->len + total > batch_max)
		(void)out_flush(w, o);
	if (total > batch_max || ev_flush == NULL) {
		/* alone, after everything before it (also when no loop
		 * turn would send a batch: before init, after free) */
		if ((p = malloc(sizeof(*p) + total)) == NULL)
			return -1;
		p->len = 0;
		pending_put(p, iov, 4);
		return out_push(w, o, p);
	}
	if (o->batch == NULL) {
		if ((o->batch = malloc(sizeof(*o->batch) + batch_max)) == NULL)
			return -1;
		o->batch->len = 0;
		event_active(ev_flush, EV_TIMEOUT, 0);
	}
	pending_put(o->batch, iov, 4);
	return 0;
}

void
ipc_worker_free(struct worker *w)
{
	unsigned i;
	struct ipc_pending *p;

	/* what this turn gathered still gets its chance */
	flush_cb(-1, 0, w);
	for (i = 0; outs != NULL && i < n_chans; i++) {
		while ((p = outs[i].head) != NULL) {
			outs[i].head = p->next;
			free(p);
		}
		if (outs[i].ev != NULL)
			event_free(outs[i].ev);
	}
	free(outs);
	outs = NULL;
	if (ev_flush != NULL)
		event_free(ev_flush);
	ev_flush = NULL;
	if (ev_recv != NULL)
		event_free(ev_recv);
	ev_recv = NULL;
	free(rbuf);
	rbuf = NULL;
}
