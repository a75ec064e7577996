/* worker.c - a worker process: one event loop over the inherited listeners
 * and the connections it accepts or opens. */
#include "config.h"

#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <event2/listener.h>
#include <openssl/ssl.h>

#include "component.h"
#include "conn.h"
#include "ipc.h"
#include "log.h"
#include "resolver.h"
#include "s2s.h"
#include "stats.h"
#include "store.h"
#include "tls.h"
#include "util.h"
#include "worker.h"

#define WORKER_STOP_GRACE	5	/* seconds to flush streams on stop */
#define ACCEPT_PAUSE_MS		500	/* back off when out of file descriptors */
#define KEY_PURGE_INTERVAL	60	/* seconds between expired-key sweeps */
#define STREAMS_REPORT_INTERVAL	2	/* seconds between stream counts to the master */
#define MEM_TRIM_INTERVAL	5	/* at most every 5 s, once connections have closed */
#define WORKER_MMAP_THRESHOLD	(16 * 1024)	/* see worker_main */
#define HIBERNATE_TRIM_MIN	64	/* parsers hibernated in one tick that warrant a trim */

static struct worker the_worker;

bool
worker_hosts(const struct worker *w, const char *domain)
{
	return conf_domain_find(w->conf, domain) != NULL;
}

/* Ids are handed out in sequence, so the low bits spread them evenly. */
static size_t
conn_bucket(uint64_t id, size_t size)
{
	return (size_t)(id & (size - 1));
}

/* Keeps at most one connection per bucket on average. */
static int
conns_by_id_grow(struct worker *w)
{
	size_t size = w->conns_by_id_size == 0 ? 64 : w->conns_by_id_size * 2, i;
	struct conn **grown, *c, *next;

	if ((grown = calloc(size, sizeof(*grown))) == NULL)
		return -1;
	for (i = 0; i < w->conns_by_id_size; i++) {
		for (c = w->conns_by_id[i]; c != NULL; c = next) {
			next = c->id_next;
			c->id_next = grown[conn_bucket(c->id, size)];
			grown[conn_bucket(c->id, size)] = c;
		}
	}
	free(w->conns_by_id);
	w->conns_by_id = grown;
	w->conns_by_id_size = size;
	return 0;
}

int
worker_conn_index(struct worker *w, struct conn *c)
{
	size_t b;

	/* a failed growth past the first table only lengthens the chains */
	if (w->n_conns >= w->conns_by_id_size && conns_by_id_grow(w) == -1 &&
	    w->conns_by_id_size == 0)
		return -1;
	b = conn_bucket(c->id, w->conns_by_id_size);
	c->id_next = w->conns_by_id[b];
	w->conns_by_id[b] = c;
	return 0;
}

void
worker_conn_unindex(struct worker *w, struct conn *c)
{
	struct conn **pp;

	if (w->conns_by_id_size == 0)
		return;
	for (pp = &w->conns_by_id[conn_bucket(c->id, w->conns_by_id_size)]; *pp != NULL;
	    pp = &(*pp)->id_next) {
		if (*pp == c) {
			*pp = c->id_next;
			c->id_next = NULL;
			return;
		}
	}
}

struct conn *
worker_conn_find(struct worker *w, uint64_t id)
{
	struct conn *c;

	if (w->conns_by_id_size == 0)
		return NULL;
	for (c = w->conns_by_id[conn_bucket(id, w->conns_by_id_size)]; c != NULL; c = c->id_next)
		if (c->id == id)
			return c;
	return NULL;
}

static bool
listener_is_component(const struct worker *w, const struct evconnlistener *lev)
{
	size_t i;

	for (i = 0; i < w->n_listeners; i++)
		if (w->listeners[i].lev == lev)
			return w->listeners[i].component;
	return false;
}

static void
accept_cb(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	struct worker *w = arg;
	bool component = listener_is_component(w, lev);
	struct iplimit_key key;
	const char *why = NULL;
	unsigned n = w->conf->workers > 0 ? w->conf->workers : 1;
	char addr[80];

	if (w->stopping || w->draining) {
		close(fd);
		return;
	}
	if (w->n_conns >= w->conf->max_connections) {
		why = "this worker holds max_connections";
	} else if (!component) {
		/* Each worker sees about 1/n of one address's connections. */
		iplimit_key_from(sa, &key);
		if (iplimit_admit(&key, (w->conf->max_streams_per_ip + n - 1) / n,
		    (w->conf->max_new_per_ip + n - 1) / n, &why)) {
			if (s2s_in_accept(w, fd, sa, &key) == -1)
				log_warn("cannot set up an inbound connection");
			return;
		}
	} else {
		if (component_accept(w, fd, sa) == -1)
			log_warn("cannot set up a component connection");
		return;
	}
	/* Refused before any TLS or XML work. */
	util_format_addr(sa, addr, sizeof(addr));
	log_warn("connection from %s refused: %s", addr, why);
	stats_inc(ST_REFUSED);
	close(fd);
}

static void
accept_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	size_t i;

	for (i = 0; i < w->n_listeners; i++)
		if (w->listeners[i].lev != NULL)
			evconnlistener_enable(w->listeners[i].lev);
}

static void
accept_error_cb(struct evconnlistener *lev, void *arg)
{
	struct worker *w = arg;
	int err = EVUTIL_SOCKET_ERROR();
	struct timeval tv = { 0, ACCEPT_PAUSE_MS * 1000 };
	size_t i;

	if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
		/* Pause instead of spinning on a listener we cannot serve. */
		log_warn("accept: %s; pausing accepts for %d ms", strerror(err), ACCEPT_PAUSE_MS);
		for (i = 0; i < w->n_listeners; i++)
			if (w->listeners[i].lev != NULL)
				evconnlistener_disable(w->listeners[i].lev);
		evtimer_add(w->ev_accept_resume, &tv);
		return;
	}
	log_warn("accept: %s", strerror(err));
}

static void
worker_report(struct worker *w, uint16_t kind, uint32_t value)
{
	struct worker_report r = { (uint16_t)w->slot, kind, value };

	if (w->report_fd != -1 && write(w->report_fd, &r, sizeof(r)) != (ssize_t)sizeof(r))
		log_debug("cannot report to the master: %s", strerror(errno));
}

/* While stopping: leave the loop as soon as every stream is closed. */
static void
stop_check_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	if (w->n_conns == 0)
		event_base_loopbreak(w->base);
}

static void
worker_stop(struct worker *w, const char *why)
{
	struct conn *c, *next;
	struct timeval tv = { WORKER_STOP_GRACE, 0 };
	size_t i;

	if (w->stopping)
		return;
	if (w->draining && w->n_conns == 0) {
		log_notice("drained");
		event_base_loopbreak(w->base);
		return;
	}
	w->stopping = true;
	log_notice("stopping (%s): closing %zu stream(s)", why, w->n_conns);
	for (i = 0; i < w->n_listeners; i++)
		if (w->listeners[i].lev != NULL) {
			evconnlistener_free(w->listeners[i].lev);
			w->listeners[i].lev = NULL;
		}
	s2s_out_shutdown(w);
	component_shutdown(w);
	for (c = TAILQ_FIRST(&w->conns); c != NULL; c = next) {
		next = TAILQ_NEXT(c, entry);
		if (c->header_sent)
			conn_stream_error(c, "system-shutdown", NULL);
		else
			conn_abort(c, "system-shutdown");
	}
	event_base_loopexit(w->base, &tv);
	{
		struct timeval poll = { 0, 20000 };
		struct event *ev = event_new(w->base, -1, EV_PERSIST, stop_check_cb, w);
		if (ev == NULL || event_add(ev, &poll) == -1)
			log_warn("cannot watch the stop; waiting %d s", WORKER_STOP_GRACE);
		w->ev_stop_check = ev;
	}
}

/* SIGHUP: the master has checked the new file; load it here too, swap it
 * in, and close what the new configuration no longer allows. Streams of
 * domains that stay are kept. */
static void
worker_reload(struct worker *w)
{
	char err[1024];
	struct conf *next = conf_load(w->conf->path, err, sizeof(err));
	struct tls_contexts *tls;

	if (next == NULL) {
		log_err("reload failed, keeping the running configuration: %s", err);
		return;
	}
	if (strcmp(next->store, w->conf->store) != 0) {
		log_err("reload: [server] store changed; that needs a restart");
		conf_free(next);
		return;
	}
	if ((tls = tls_contexts_new(next, err, sizeof(err))) == NULL) {
		log_err("reload failed (TLS), keeping the running configuration: %s", err);
		conf_free(next);
		return;
	}
	/* Live TLS sessions keep their own reference to their context. */
	tls_contexts_free(w->tls);
	w->tls = tls;
	conf_free(w->conf);
	w->conf = next;
	w->conf_generation++;
	log_set_level(next->log_level);
	s2s_in_reconfigure(w);
	s2s_out_reconfigure(w);
	component_reconfigure(w);
	log_notice("configuration reloaded: %zu domain(s)", next->n_domains);
}

/* SIGQUIT: stop accepting, keep serving existing streams, exit once the
 * last one has closed (idle_timeout). Used for surplus workers on reload. */
static void
worker_drain(struct worker *w)
{
	size_t i;

	if (w->draining || w->stopping)
		return;
	w->draining = true;
	log_notice("draining: no new connections; exiting when %zu stream(s) have closed", w->n_conns);
	for (i = 0; i < w->n_listeners; i++)
		if (w->listeners[i].lev != NULL) {
			evconnlistener_free(w->listeners[i].lev);
			w->listeners[i].lev = NULL;
		}
}

static void
signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct worker *w = arg;

	switch (sig) {
	case SIGTERM:
	case SIGINT:
		worker_stop(w, sig == SIGTERM ? "SIGTERM" : "SIGINT");
		break;
	case SIGUSR1:
		if (log_reopen() == -1)
			log_warn("cannot reopen the log: %s", strerror(errno));
		break;
	case SIGHUP:
		worker_reload(w);
		break;
	case SIGQUIT:
		worker_drain(w);
		break;
	default:
		break;
	}
}

/* A single space on streams quiet for keepalive_interval keeps NATs and
 * firewalls from dropping long-lived federation links (RFC 6120 §4.6.1). */
static void
send_keepalives(struct worker *w)
{
	uint64_t now = util_now_mono_ms(), quiet = (uint64_t)w->conf->keepalive_interval * 1000;
	struct conn *c, *next;

	if (quiet == 0)
		return;
	for (c = TAILQ_FIRST(&w->conns); c != NULL; c = next) {
		next = TAILQ_NEXT(c, entry);
		if (!c->header_sent || c->closing || c->dead || c->tls_ctx != NULL)
			continue;
		if (now - c->last_write_ms < quiet || now - c->last_keepalive_ms < quiet)
			continue;
		c->last_keepalive_ms = now;
		conn_write(c, " ", 1);
	}
}

static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	static time_t last_purge, last_trim, last_report;
	time_t now = time(NULL);
	size_t purged = 0;

	if (w->stopping)
		return;
	if (getppid() == 1) {
		/* the master is gone (PDEATHSIG covers most cases) */
		worker_stop(w, "master exited");
		return;
	}
	s2s_out_tick(w, now);
	send_keepalives(w);
	/* Parsers freed by the hundred leave holes between the streams'
	 * other blocks: hand the whole free pages back. */
	if (conn_hibernate_idle(w) >= HIBERNATE_TRIM_MIN)
		malloc_trim(0);
	/* elapsed time, not now % N: a late tick must not skip a report */
	if (now - last_report >= STREAMS_REPORT_INTERVAL && w->reported_streams != (uint32_t)w->n_conns) {
		last_report = now;
		w->reported_streams = (uint32_t)w->n_conns;
		worker_report(w, WORKER_STREAMS, w->reported_streams);
	}
	/* After a burst of connections has gone (a flood, a reconnect storm),
	 * give the freed heap back to the system instead of keeping the peak. */
	if (w->n_conns < w->conns_high && now - last_trim >= MEM_TRIM_INTERVAL) {
		malloc_trim(0);
		last_trim = now;
		w->conns_high = w->n_conns;
	}
	stats_flush(w->store, w->slot);
	/* One worker sweeps expired keys for everyone. */
	if (w->slot == 0 && now - last_purge >= KEY_PURGE_INTERVAL) {
		last_purge = now;
		if (store_keys_purge(w->store, now, &purged) == STORE_OK && purged > 0)
			log_debug("purged %zu expired dialback key(s)", purged);
	}
}

static struct event *
add_signal(struct worker *w, int sig)
{
	struct event *ev = evsignal_new(w->base, sig, signal_cb, w);

	if (ev == NULL || event_add(ev, NULL) == -1)
		fatalx("cannot watch signal %d", sig);
	return ev;
}

void
worker_main(int slot, struct conf *conf, const char *secret_digest,
    struct worker_listener *listeners, size_t n_listeners, int ready_fd,
    struct ipc_channel *ipc, unsigned n_ipc)
{
	struct worker *w = &the_worker;
	char name[32], err[512];
	struct timeval one = { 1, 0 };
	size_t i, cleared = 0;
	int dead = 0;
	unsigned flags;
	struct event *tick;

	memset(w, 0, sizeof(*w));
	w->slot = slot;
	w->pid = getpid();
	w->conf = conf;
	util_strlcpy(w->secret_digest, secret_digest, sizeof(w->secret_digest));
	w->listeners = listeners;
	w->n_listeners = n_listeners;
	TAILQ_INIT(&w->conns);
	TAILQ_INIT(&w->paused);
	snprintf(name, sizeof(name), "worker %d", slot);
	log_set_procname(name);
	/* TLS record and handshake buffers (16 KiB and more) come and go per
	 * handshake and per burst; from the heap they would leave holes
	 * between the long-lived blocks of idle streams, which no trim can
	 * give back. Mapped on their own, they go back whole. */
	if (mallopt(M_MMAP_THRESHOLD, WORKER_MMAP_THRESHOLD) != 1)
		log_warn("worker %d: cannot set the malloc mmap threshold", slot);

	/* Die with the master, so no orphan keeps a listening port. */
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) == -1)
		log_warn("prctl(PR_SET_PDEATHSIG): %s", strerror(errno));
	signal(SIGPIPE, SIG_IGN);

	/* LMDB: every process opens the environment itself, after fork. */
	flags = conf->store_sync ? 0 : STORE_NOSYNC;
	w->store = store_open(conf->store, conf->store_size, flags, conf->workers * 2 + 64,
	    err, sizeof(err));
	if (w->store == NULL)
		fatalx("store: %s", err);
	if (store_reader_check(w->store, &dead) == STORE_OK && dead > 0)
		log_notice("cleared %d stale store reader slot(s)", dead);
	/* Whatever a dead predecessor in this slot left behind is stale. */
	if (store_clear_slot(w->store, slot, w->pid, &cleared) == STORE_OK && cleared > 0)
		log_notice("cleared %zu stale route/pair record(s) of a previous worker %d", cleared, slot);

	if ((w->base = event_base_new()) == NULL)
		fatalx("cannot create the event loop");
	if ((w->resolver = resolver_new(w->base, err, sizeof(err))) == NULL)
		fatalx("resolver: %s", err);
	if ((w->tls = tls_contexts_new(conf, err, sizeof(err))) == NULL)
		fatalx("TLS: %s", err);
	w->ev_sigterm = add_signal(w, SIGTERM);
	w->ev_sigint = add_signal(w, SIGINT);
	w->ev_sighup = add_signal(w, SIGHUP);
	w->ev_sigusr1 = add_signal(w, SIGUSR1);
	w->ev_sigquit = add_signal(w, SIGQUIT);
	if ((w->ev_accept_resume = evtimer_new(w->base, accept_resume_cb, w)) == NULL)
		fatalx("out of memory");
	if ((tick = event_new(w->base, -1, EV_PERSIST, tick_cb, w)) == NULL ||
	    event_add(tick, &one) == -1)
		fatalx("cannot start the housekeeping timer");
	w->ev_tick = tick;

	if (ipc_worker_init(w, ipc, n_ipc) == -1)
		fatalx("cannot read the worker channel");
	for (i = 0; i < n_listeners; i++) {
		listeners[i].lev = evconnlistener_new(w->base, accept_cb, w,
		    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, listeners[i].fd);
		if (listeners[i].lev == NULL)
			fatalx("cannot listen on an inherited socket");
		evconnlistener_set_error_cb(listeners[i].lev, accept_error_cb);
	}
	/* Queues whose owner died (or that this slot's predecessor held). */
	s2s_out_resume_queues(w);
	log_info("worker %d ready (pid %ld)", slot, (long)w->pid);
	w->report_fd = ready_fd;
	worker_report(w, WORKER_READY, 0);

	event_base_dispatch(w->base);

	log_notice("exiting");
	stats_flush(w->store, w->slot);
	s2s_out_shutdown(w);
	while (!TAILQ_EMPTY(&w->conns))
		conn_abort(TAILQ_FIRST(&w->conns), "exit");
	ipc_worker_free(w);
	if (w->report_fd != -1)
		close(w->report_fd);
	resolver_free(w->resolver);
	tls_contexts_free(w->tls);
	event_free(w->ev_sigterm);
	event_free(w->ev_sigint);
	event_free(w->ev_sighup);
	event_free(w->ev_sigusr1);
	event_free(w->ev_sigquit);
	conf_free(w->conf);
	free(w->conns_by_id);
	event_free(w->ev_accept_resume);
	event_free(w->ev_tick);
	if (w->ev_stop_check != NULL)
		event_free(w->ev_stop_check);
	event_base_free(w->base);
	store_close(w->store);
	exit(0);
}
