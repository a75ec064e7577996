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

static void
ipc_recv_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	struct ipc_hdr h;
	ssize_t n;
	int i;

	/* A bounded number per wakeup keeps the loop fair to sockets. */
	for (i = 0; i < 256; i++) {
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
		if ((size_t)n < sizeof(h)) {
			log_warn("ipc: short message (%zd bytes) dropped", n);
			continue;
		}
		memcpy(&h, rbuf, sizeof(h));
		if (h.magic != IPC_MAGIC || sizeof(h) + (size_t)h.local_len + h.remote_len + 2 +
		    (size_t)h.data_len != (size_t)n) {
			log_warn("ipc: malformed message dropped");
			continue;
		}
		{
			char *local = rbuf + sizeof(h);
			char *remote = local + h.local_len + 1;
			char *data = remote + h.remote_len + 1;

			local[h.local_len] = '\0';
			remote[h.remote_len] = '\0';
			router_ipc_deliver(w, (enum ipc_type)h.type, local, remote, data, h.data_len);
		}
	}
}

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
	    sndbuf > 65536) {
		/* The kernel doubles the value for bookkeeping; leave room. */
		size_t usable = (size_t)sndbuf / 2 - 4096;
		max_data = usable < IPC_BUF - 8192 ? usable : IPC_BUF - 8192;
	}
	ev_recv = event_new(w->base, channels[w->slot].recv_fd, EV_READ | EV_PERSIST, ipc_recv_cb, w);
	if (ev_recv == NULL || event_add(ev_recv, NULL) == -1)
		return -1;
	return 0;
}

/* A message that could not be sent at once (the receiving worker's queue
 * was full: EAGAIN). Later messages to the same worker wait behind it, so
 * order is kept; a write event flushes them when the queue drains. */
struct ipc_pending {
	struct ipc_pending *next;
	size_t len;
	unsigned char msg[];
};

struct ipc_backlog {
	struct ipc_pending *head, *tail;
	size_t bytes;
	struct event *ev;		/* EV_WRITE on the slot's send_fd while non-empty */
	int slot;
};

static struct ipc_backlog *backlogs;	/* one per slot, made on first use */

static void
backlog_flush(evutil_socket_t fd, short what, void *arg)
{
	struct ipc_backlog *b = arg;
	struct ipc_pending *p;

	while ((p = b->head) != NULL) {
		if (send(chans[b->slot].send_fd, p->msg, p->len, MSG_DONTWAIT) < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;		/* still full: wait for the next write event */
			log_warn("ipc: a message for worker %d is lost: %s", b->slot, strerror(errno));
		}
		b->head = p->next;
		if (b->head == NULL)
			b->tail = NULL;
		b->bytes -= p->len;
		free(p);
	}
	event_del(b->ev);
}

static int
backlog_add(struct worker *w, int slot, const struct iovec *iov, int n, size_t total)
{
	struct ipc_backlog *b;
	struct ipc_pending *p;
	size_t off = 0;
	int i;

	if (backlogs == NULL && (backlogs = calloc(n_chans, sizeof(*backlogs))) == NULL)
		return -1;
	b = &backlogs[slot];
	if (b->bytes + total > IPC_BACKLOG_MAX) {
		errno = EAGAIN;
		return -1;
	}
	if (b->ev == NULL) {
		b->slot = slot;
		b->ev = event_new(w->base, chans[slot].send_fd, EV_WRITE | EV_PERSIST, backlog_flush, b);
		if (b->ev == NULL)
			return -1;
	}
	if ((p = malloc(sizeof(*p) + total)) == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		memcpy(p->msg + off, iov[i].iov_base, iov[i].iov_len);
		off += iov[i].iov_len;
	}
	p->len = total;
	p->next = NULL;
	if (b->tail != NULL)
		b->tail->next = p;
	else
		b->head = p;
	b->tail = p;
	b->bytes += total;
	if (event_add(b->ev, NULL) == -1)
		return -1;
	return 0;
}

int
ipc_send(struct worker *w, int slot, enum ipc_type type, const char *local,
    const char *remote, const char *data, size_t len)
{
	struct ipc_hdr h;
	struct iovec iov[4];
	size_t ll = strlen(local), rl = strlen(remote), total;
	ssize_t n;

	if (slot < 0 || (unsigned)slot >= n_chans || len > max_data || ll > 0xffff || rl > 0xffff) {
		errno = EMSGSIZE;
		return -1;
	}
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
	/* Behind a backlog, join it: order to one worker is kept. */
	if (backlogs != NULL && backlogs[slot].head != NULL)
		return backlog_add(w, slot, iov, 4, total);
	n = writev(chans[slot].send_fd, iov, 4);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return backlog_add(w, slot, iov, 4, total);
	if (n < 0)
		return -1;
	return 0;
}

void
ipc_worker_free(struct worker *w)
{
	unsigned i;
	struct ipc_pending *p;

	for (i = 0; backlogs != NULL && i < n_chans; i++) {
		while ((p = backlogs[i].head) != NULL) {
			backlogs[i].head = p->next;
			free(p);
		}
		if (backlogs[i].ev != NULL)
			event_free(backlogs[i].ev);
	}
	free(backlogs);
	backlogs = NULL;
	if (ev_recv != NULL)
		event_free(ev_recv);
	ev_recv = NULL;
	free(rbuf);
	rbuf = NULL;
}
