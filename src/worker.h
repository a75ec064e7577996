/* worker.h - one worker process: its event loop, its connections, and the
 * shared objects every connection of the worker uses. */
#ifndef DIALBACKD_WORKER_H
#define DIALBACKD_WORKER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>

#include <event2/event.h>

#include "conf.h"
#include "dialback.h"

struct conn;
struct store;
struct resolver;
struct tls_contexts;

/* A listening socket handed down by the master. */
struct worker_listener {
	int fd;
	bool component;			/* XEP-0114 listener, else s2s */
	struct evconnlistener *lev;
};

struct worker {
	int slot;			/* 0..workers-1 */
	pid_t pid;
	struct conf *conf;		/* replaced on SIGHUP */
	uint64_t conf_generation;	/* counts the replacements */
	char secret_digest[DIALBACK_SECRET_HEX + 1];
	struct event_base *base;
	struct store *store;
	struct resolver *resolver;
	struct tls_contexts *tls;
	struct worker_listener *listeners;
	size_t n_listeners;
	struct event *ev_sigterm, *ev_sigint, *ev_sighup, *ev_sigusr1, *ev_sigquit;
	struct event *ev_tick;		/* 1 s housekeeping timer */
	struct event *ev_accept_resume;	/* re-enable accepting after EMFILE */
	struct event *ev_stop_check;	/* while stopping: exit when no streams are left */
	TAILQ_HEAD(, conn) conns;	/* every live connection */
	TAILQ_HEAD(, conn) paused;	/* inbound streams not read while a component is congested */
	unsigned congested;		/* components whose output is above CONN_OUTPUT_HIGH */
	size_t n_conns;
	struct conn **conns_by_id;	/* chains through conn->id_next (worker_conn_find) */
	size_t conns_by_id_size;	/* a power of two, or 0 */
	size_t conns_high;		/* most connections since memory was last trimmed */
	uint64_t next_conn_id;
	bool stopping;
	bool draining;
	int report_fd;			/* pipe to the master */
	uint32_t reported_streams;			/* SIGQUIT: no new connections, exit when idle */
};

/* What a worker tells the master on the report pipe: 8 bytes, written in
 * one write() (atomic on a pipe). */
struct worker_report {
	uint16_t slot;
	uint16_t kind;			/* WORKER_READY or WORKER_STREAMS */
	uint32_t value;			/* streams open, for WORKER_STREAMS */
};
#define WORKER_READY	1
#define WORKER_STREAMS	2

/* Runs a worker until it is told to stop; never returns. It reports on
 * ready_fd once it accepts connections, then its stream count (at most
 * every 2 s) when it changed. */
struct ipc_channel;
void worker_main(int slot, struct conf *conf, const char *secret_digest,
    struct worker_listener *listeners, size_t n_listeners, int ready_fd,
    struct ipc_channel *ipc, unsigned n_ipc)
    __attribute__((noreturn));

/* Looks a live connection up by id (ids are never reused in a worker). */
/* Connections by id: a dialback answer finds its stream in constant time.
 * worker_conn_index fails (-1) only when out of memory. */
int worker_conn_index(struct worker *w, struct conn *c);
void worker_conn_unindex(struct worker *w, struct conn *c);
struct conn *worker_conn_find(struct worker *w, uint64_t id);
/* Hosted domain? */
bool worker_hosts(const struct worker *w, const char *domain);

#endif
