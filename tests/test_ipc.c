/* test_ipc.c - the worker channels: messages of one loop turn travel in
 * one datagram; a receiving worker that does not read fills its socket,
 * later messages wait in the sender's backlog up to its bound, and
 * everything kept arrives once the receiver reads, in order. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/event.h>

#include "ipc.h"
#include "router.h"
#include "test_main.h"
#include "worker.h"

#define MSG_BYTES	16000
#define SEND_BOUND	20000		/* 64 MiB of backlog is ~4200 of them */
#define HDR_BYTES	16		/* struct ipc_hdr */
#define RECV_BYTES	(1 << 20)	/* more than a datagram holds */

/* ipc.c hands what it receives to the router; these tests only send. */
void
router_ipc_deliver(struct worker *w, enum ipc_type type, const char *local,
    const char *remote, const char *data, size_t len)
{
	(void)w;
	(void)type;
	(void)local;
	(void)remote;
	(void)data;
	(void)len;
}

/* Reads what slot 1's worker would: datagrams of one or more messages,
 * each with 16000 bytes of data that start with its sequence number.
 * Returns how many messages arrived, or -1 on one out of order. */
static long
read_in_order(int fd, long *next, char *buf, size_t cap)
{
	static const char names[] = "a.test\0b.test";
	const size_t msg = HDR_BYTES + sizeof(names) + MSG_BYTES;
	long got = 0;
	ssize_t n;
	size_t off;

	while ((n = recv(fd, buf, cap, MSG_DONTWAIT)) > 0) {
		if ((size_t)n % msg != 0)
			return -1;
		for (off = 0; off < (size_t)n; off += msg) {
			char want[16];

			snprintf(want, sizeof(want), "%08ld", *next);
			if (memcmp(buf + off + HDR_BYTES, names, sizeof(names)) != 0 ||
			    memcmp(buf + off + HDR_BYTES + sizeof(names), want, 8) != 0)
				return -1;
			(*next)++;
			got++;
		}
	}
	return got;
}

/* Two slots' channels, this worker in slot 0; sndbuf > 0 shrinks the
 * sending buffers as an unprivileged master would leave them. */
static void
channels_up(struct worker *w, struct ipc_channel ch[2], int sndbuf)
{
	char err[128];
	int i;

	memset(w, 0, sizeof(*w));
	w->base = event_base_new();
	CU_ASSERT_PTR_NOT_NULL_FATAL(w->base);
	CU_ASSERT_EQUAL_FATAL(ipc_create(ch, 2, err, sizeof(err)), 0);
	for (i = 0; sndbuf > 0 && i < 2; i++)
		CU_ASSERT_EQUAL(setsockopt(ch[i].send_fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)), 0);
	CU_ASSERT_EQUAL_FATAL(ipc_worker_init(w, ch, 2), 0);
}

static void
channels_down(struct worker *w, struct ipc_channel ch[2])
{
	ipc_worker_free(w);
	ipc_close(&ch[0]);
	ipc_close(&ch[1]);
	event_base_free(w->base);
}

static void
test_ipc_backlog_keeps_order(void)
{
	struct ipc_channel ch[2];
	struct worker w;
	char *data, *buf;
	long sent = 0, next = 0, r;
	int rc = 0, saved_errno = 0, idle;

	channels_up(&w, ch, 0);
	data = calloc(1, MSG_BYTES);
	buf = malloc(RECV_BYTES);
	CU_ASSERT_PTR_NOT_NULL_FATAL(data);
	CU_ASSERT_PTR_NOT_NULL_FATAL(buf);

	/* too large for one datagram: refused at once */
	CU_ASSERT_EQUAL(ipc_send(&w, 1, IPC_TO_COMPONENT, "a.test", "b.test", data,
	    ipc_max_data() + 1), -1);
	CU_ASSERT_EQUAL(errno, EMSGSIZE);

	/* nobody reads slot 1: its socket fills, then the backlog, then -1 */
	memset(data, 'x', MSG_BYTES);
	for (sent = 0; sent < SEND_BOUND; sent++) {
		char seq[16];

		snprintf(seq, sizeof(seq), "%08ld", sent);
		memcpy(data, seq, 8);
		if ((rc = ipc_send(&w, 1, IPC_TO_COMPONENT, "a.test", "b.test", data, MSG_BYTES)) == -1) {
			saved_errno = errno;
			break;
		}
	}
	CU_ASSERT_EQUAL(rc, -1);
	CU_ASSERT_EQUAL(saved_errno, EAGAIN);
	/* 64 MiB waited in the backlog, far more than any socket holds */
	CU_ASSERT(sent > (64L << 20) / MSG_BYTES);

	/* the receiver reads: the backlog flushes as the socket drains */
	for (idle = 0; next < sent && idle < 200; ) {
		if ((r = read_in_order(ch[1].recv_fd, &next, buf, RECV_BYTES)) == -1)
			break;
		idle = r > 0 ? 0 : idle + 1;
		(void)event_base_loop(w.base, EVLOOP_NONBLOCK);
	}
	CU_ASSERT_EQUAL(next, sent);

	/* with the backlog empty, messages of one loop turn go out together
	 * at its end, next in order */
	for (r = 0; r < 3; r++) {
		snprintf(buf, 16, "%08ld", sent + r);
		memcpy(data, buf, 8);
		CU_ASSERT_EQUAL(ipc_send(&w, 1, IPC_TO_COMPONENT, "a.test", "b.test", data, MSG_BYTES), 0);
	}
	CU_ASSERT_EQUAL(read_in_order(ch[1].recv_fd, &next, buf, RECV_BYTES), 0);
	(void)event_base_loop(w.base, EVLOOP_NONBLOCK);
	CU_ASSERT_EQUAL(recv(ch[1].recv_fd, buf, RECV_BYTES, MSG_PEEK | MSG_DONTWAIT),
	    (ssize_t)(3 * (HDR_BYTES + 14 + MSG_BYTES)));	/* one datagram */
	CU_ASSERT_EQUAL(read_in_order(ch[1].recv_fd, &next, buf, RECV_BYTES), 3);
	CU_ASSERT_EQUAL(next, sent + 3);

	channels_down(&w, ch);
	free(data);
	free(buf);
}

/* Small socket buffers (no privilege to raise them): the largest message
 * and every batch still fit in one datagram. */
static void
test_ipc_small_buffers(void)
{
	struct ipc_channel ch[2];
	struct worker w;
	char *data, *buf;
	int i;
	ssize_t n;
	size_t max, got = 0, want;

	channels_up(&w, ch, 32768);
	max = ipc_max_data();
	CU_ASSERT(max > 1000 && max < 32768);
	data = calloc(1, max);
	buf = malloc(RECV_BYTES);
	CU_ASSERT_PTR_NOT_NULL_FATAL(data);
	CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
	CU_ASSERT_EQUAL(ipc_send(&w, 1, IPC_TO_COMPONENT, "a.test", "b.test", data, max), 0);
	for (i = 0; i < 5; i++)
		CU_ASSERT_EQUAL(ipc_send(&w, 1, IPC_TO_REMOTE, "a.test", "b.test", data, max / 3), 0);
	/* what the small socket cannot take waits, and follows as it drains */
	want = (HDR_BYTES + 14) * 6 + max + 5 * (max / 3);
	for (i = 0; i < 200 && got < want; i++) {
		(void)event_base_loop(w.base, EVLOOP_NONBLOCK);
		while ((n = recv(ch[1].recv_fd, buf, RECV_BYTES, MSG_DONTWAIT)) > 0)
			got += (size_t)n;
	}
	/* everything arrived: one large message, five smaller ones */
	CU_ASSERT_EQUAL(got, want);
	channels_down(&w, ch);
	free(data);
	free(buf);
}

int
test_register(void)
{
	CU_pSuite s = CU_add_suite("ipc", NULL, NULL);

	if (s == NULL)
		return CU_get_error();
	TEST_ADD(s, test_ipc_backlog_keeps_order);
	TEST_ADD(s, test_ipc_small_buffers);
	return CUE_SUCCESS;
}
