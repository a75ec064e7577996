/* master.c - prefork supervisor. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ipc.h"
#include "log.h"
#include "master.h"
#include "notify.h"
#include "secret.h"
#include "store.h"
#include "util.h"
#include "worker.h"

#define MAX_WORKERS		256
#define RESPAWN_MIN_DELAY	1	/* seconds before restarting a crashed worker */
#define RESPAWN_MAX_DELAY	60
#define RESPAWN_STABLE		30	/* a worker up this long resets the backoff */
#define STOP_TIMEOUT		10	/* seconds before SIGKILL on shutdown */
#define LISTEN_BACKLOG		511

struct worker_slot {
	pid_t pid;			/* 0 when not running */
	time_t started;
	time_t respawn_at;		/* 0: not scheduled */
	unsigned delay;			/* current backoff */
	bool ready;
	pid_t drain_pid;		/* a previous worker of this slot still draining */
	uint32_t streams;		/* open streams, as last reported */
	struct worker_listener *listeners;	/* this slot's SO_REUSEPORT sockets */
	size_t n_listeners;
};

static volatile sig_atomic_t got_sigchld, got_sigterm, got_sighup, got_sigusr1;

static struct conf *conf;
static const char *conf_path;
static struct worker_slot slots[MAX_WORKERS];
static unsigned n_slots;
static char secret_digest[DIALBACK_SECRET_HEX + 1];
static int ready_pipe[2] = { -1, -1 };
static struct ipc_channel ipc[MAX_WORKERS];
static unsigned n_ipc;

static void
master_signal(int sig)
{
	switch (sig) {
	case SIGCHLD: got_sigchld = 1; break;
	case SIGTERM: case SIGINT: got_sigterm = 1; break;
	case SIGHUP: got_sighup = 1; break;
	case SIGUSR1: got_sigusr1 = 1; break;
	}
}

static int
bind_one(const struct conf_listen *l, char *err, size_t errlen)
{
	int fd, one = 1, zero = 0;

	fd = socket(l->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		snprintf(err, errlen, "%s: socket: %s", l->text, strerror(errno));
		return -1;
	}
	/* One socket per worker on the same address: the kernel spreads new
	 * connections across them (SO_REUSEPORT), no thundering herd. */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == -1) {
		snprintf(err, errlen, "%s: setsockopt: %s", l->text, strerror(errno));
		close(fd);
		return -1;
	}
	if (l->addr.ss_family == AF_INET6 &&
	    IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)&l->addr)->sin6_addr))
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	if (bind(fd, (const struct sockaddr *)&l->addr, l->addrlen) == -1 ||
	    listen(fd, LISTEN_BACKLOG) == -1) {
		snprintf(err, errlen, "cannot listen on %s: %s", l->text, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* SO_REUSEPORT would let a second dialbackd (or anything else run by the
 * same user) share the port silently and take half the connections; a
 * plain bind first tells whether the address is already in use. */
static int
probe_free(const struct conf_listen *l, char *err, size_t errlen)
{
	int fd, one = 1, zero = 0, rc = 0;

	fd = socket(l->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		snprintf(err, errlen, "%s: socket: %s", l->text, strerror(errno));
		return -1;
	}
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (l->addr.ss_family == AF_INET6 &&
	    IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)&l->addr)->sin6_addr))
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	if (bind(fd, (const struct sockaddr *)&l->addr, l->addrlen) == -1 || listen(fd, 1) == -1) {
		snprintf(err, errlen, "cannot listen on %s: %s%s", l->text, strerror(errno),
		    errno == EADDRINUSE ? " (is another dialbackd running?)" : "");
		rc = -1;
	}
	close(fd);
	return rc;
}

static int
probe_all(char *err, size_t errlen)
{
	size_t i;

	for (i = 0; i < conf->n_s2s_listen; i++)
		if (probe_free(&conf->s2s_listen[i], err, errlen) == -1)
			return -1;
	for (i = 0; i < conf->n_component_listen; i++)
		if (probe_free(&conf->component_listen[i], err, errlen) == -1)
			return -1;
	return 0;
}

static int
bind_slot(struct worker_slot *ws, char *err, size_t errlen)
{
	size_t n = conf->n_s2s_listen + conf->n_component_listen, i;

	if ((ws->listeners = calloc(n, sizeof(*ws->listeners))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (i = 0; i < n; i++) {
		bool comp = i >= conf->n_s2s_listen;
		const struct conf_listen *l = comp ? &conf->component_listen[i - conf->n_s2s_listen] :
		    &conf->s2s_listen[i];
		ws->listeners[i].component = comp;
		if ((ws->listeners[i].fd = bind_one(l, err, errlen)) == -1) {
			while (i-- > 0)
				close(ws->listeners[i].fd);
			free(ws->listeners);
			ws->listeners = NULL;
			return -1;
		}
	}
	ws->n_listeners = n;
	return 0;
}

static void
unbind_slot(struct worker_slot *ws)
{
	size_t i;

	for (i = 0; i < ws->n_listeners; i++)
		close(ws->listeners[i].fd);
	free(ws->listeners);
	ws->listeners = NULL;
	ws->n_listeners = 0;
}

static int
drop_privileges(uid_t *uid, gid_t *gid, char *err, size_t errlen)
{
	struct passwd *pw = NULL;
	struct group *gr = NULL;

	*uid = geteuid();
	*gid = getegid();
	if (conf->user == NULL && conf->group == NULL) {
		if (geteuid() == 0)
			log_warn("running as root: set [server] user and group to drop privileges");
		return 0;
	}
	if (geteuid() != 0) {
		/* Under systemd's User= we already are the service user. */
		if ((conf->user == NULL || ((pw = getpwnam(conf->user)) != NULL && pw->pw_uid == geteuid())) &&
		    (conf->group == NULL || ((gr = getgrnam(conf->group)) != NULL && gr->gr_gid == getegid())))
			return 0;
		log_warn("[server] user/group set but not started as root: staying uid %lu",
		    (unsigned long)geteuid());
		return 0;
	}
	if (conf->user != NULL && (pw = getpwnam(conf->user)) == NULL) {
		snprintf(err, errlen, "[server] user: no such user '%s'", conf->user);
		return -1;
	}
	if (conf->group != NULL && (gr = getgrnam(conf->group)) == NULL) {
		snprintf(err, errlen, "[server] group: no such group '%s'", conf->group);
		return -1;
	}
	*gid = gr != NULL ? gr->gr_gid : pw->pw_gid;
	*uid = pw != NULL ? pw->pw_uid : 0;
	/* The store and secret must belong to the service user. */
	if (chown(conf->store, *uid, *gid) == -1)
		log_warn("chown %s: %s", conf->store, strerror(errno));
	if (chown(conf->secret_file, *uid, *gid) == -1 && errno != ENOENT)
		log_warn("chown %s: %s", conf->secret_file, strerror(errno));
	if (setgroups(1, gid) == -1 || setresgid(*gid, *gid, *gid) == -1 ||
	    (pw != NULL && setresuid(*uid, *uid, *uid) == -1)) {
		snprintf(err, errlen, "cannot drop privileges: %s", strerror(errno));
		return -1;
	}
	log_info("running as uid %lu gid %lu", (unsigned long)getuid(), (unsigned long)getgid());
	return 0;
}

static void
spawn(unsigned slot)
{
	struct worker_slot *ws = &slots[slot];
	sigset_t none;
	pid_t pid;
	unsigned i;

	pid = fork();
	if (pid == -1) {
		log_warn("cannot fork worker %u: %s", slot, strerror(errno));
		ws->respawn_at = time(NULL) + RESPAWN_MIN_DELAY;
		return;
	}
	if (pid == 0) {
		/* Child: default signal handling, only its own sockets. */
		signal(SIGCHLD, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		signal(SIGUSR1, SIG_DFL);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		close(ready_pipe[0]);
		for (i = 0; i < n_slots; i++)
			if (i != slot)
				unbind_slot(&slots[i]);
		for (i = 0; i < n_ipc; i++)
			if (i != slot) {
				close(ipc[i].recv_fd);
				ipc[i].recv_fd = -1;
			}
		worker_main((int)slot, conf, secret_digest, ws->listeners, ws->n_listeners, ready_pipe[1],
		    ipc, n_ipc);
	}
	ws->pid = pid;
	ws->streams = 0;
	ws->started = time(NULL);
	ws->respawn_at = 0;
	ws->ready = false;
	log_info("worker %u started (pid %ld)", slot, (long)pid);
}

static unsigned
count_ready(void)
{
	unsigned i, n = 0;

	for (i = 0; i < n_slots; i++)
		if (slots[i].pid != 0 && slots[i].ready)
			n++;
	return n;
}

static void
notify_status(const char *prefix)
{
	char msg[160];

	unsigned i;
	unsigned long streams = 0;

	for (i = 0; i < n_slots; i++)
		if (slots[i].pid != 0)
			streams += slots[i].streams;
	snprintf(msg, sizeof(msg), "%sSTATUS=%u of %u workers ready, %lu streams", prefix,
	    count_ready(), n_slots, streams);
	(void)notify_send(msg);
}

static void
reap(void)
{
	int status;
	pid_t pid;
	unsigned i;
	time_t now = time(NULL);

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (i = 0; i < n_slots; i++)
			if (slots[i].pid == pid)
				break;
		if (i == n_slots) {
			/* a surplus worker that finished draining */
			for (i = 0; i < MAX_WORKERS; i++)
				if (slots[i].drain_pid == pid)
					slots[i].drain_pid = 0;
			continue;
		}
		slots[i].pid = 0;
		slots[i].ready = false;
		if (got_sigterm)
			continue;
		if (WIFSIGNALED(status))
			log_err("worker %u (pid %ld) killed by signal %d", i, (long)pid, WTERMSIG(status));
		else
			log_err("worker %u (pid %ld) exited with status %d", i, (long)pid, WEXITSTATUS(status));
		/* Back off a worker that keeps dying, so a crash at start
		 * cannot spin the machine. */
		if (now - slots[i].started >= RESPAWN_STABLE)
			slots[i].delay = RESPAWN_MIN_DELAY;
		else
			slots[i].delay = slots[i].delay == 0 ? RESPAWN_MIN_DELAY :
			    (slots[i].delay * 2 > RESPAWN_MAX_DELAY ? RESPAWN_MAX_DELAY : slots[i].delay * 2);
		slots[i].respawn_at = now + slots[i].delay;
		log_notice("worker %u restarts in %u s", i, slots[i].delay);
		notify_status("");
	}
}

static void
read_ready(void)
{
	struct worker_report r[64];
	ssize_t n, j;
	bool was_all = count_ready() == n_slots, changed = false;

	while ((n = read(ready_pipe[0], r, sizeof(r))) > 0) {
		for (j = 0; j < n / (ssize_t)sizeof(r[0]); j++) {
			if (r[j].slot >= n_slots || slots[r[j].slot].pid == 0)
				continue;
			if (r[j].kind == WORKER_READY)
				slots[r[j].slot].ready = true;
			else if (r[j].kind == WORKER_STREAMS)
				slots[r[j].slot].streams = r[j].value;
			changed = true;
		}
	}
	if (!was_all && count_ready() == n_slots) {
		log_notice("all %u worker(s) ready", n_slots);
		notify_status("READY=1\n");
	} else if (changed && was_all) {
		notify_status("");
	}
}

static bool
listen_equal(const struct conf *a, const struct conf *b)
{
	size_t i;

	if (a->n_s2s_listen != b->n_s2s_listen || a->n_component_listen != b->n_component_listen)
		return false;
	for (i = 0; i < a->n_s2s_listen; i++)
		if (strcmp(a->s2s_listen[i].text, b->s2s_listen[i].text) != 0)
			return false;
	for (i = 0; i < a->n_component_listen; i++)
		if (strcmp(a->component_listen[i].text, b->component_listen[i].text) != 0)
			return false;
	return true;
}

/* SIGHUP: parse the new config first; keep the old one if it is bad. */
static void
reload(void)
{
	char err[1024];
	struct conf *next;
	unsigned i, target;

	(void)notify_send("RELOADING=1");
	log_notice("reloading %s", conf_path);
	next = conf_load(conf_path, err, sizeof(err));
	if (next == NULL) {
		log_err("reload failed, keeping the running configuration: %s", err);
		notify_status("READY=1\n");
		return;
	}
	if (strcmp(next->store, conf->store) != 0) {
		log_err("reload refused: [server] store changed; that needs a restart");
		conf_free(next);
		notify_status("READY=1\n");
		return;
	}
	if (!listen_equal(next, conf))
		log_warn("reload: changed listen addresses take effect at the next restart");
	log_set_level(next->log_level);
	/* Workers are separate processes with their own copy: free ours. */
	conf_free(conf);
	conf = next;
	target = conf->workers > n_ipc ? n_ipc : conf->workers;
	if (target < conf->workers)
		log_warn("reload: at most %u workers without a restart (twice the count at start)", n_ipc);
	/* Workers that stay reload the file themselves and keep their
	 * streams; surplus ones drain (no new connections, exit when their
	 * streams close); new slots get new workers. */
	for (i = 0; i < n_slots && i < target; i++)
		if (slots[i].pid != 0)
			kill(slots[i].pid, SIGHUP);
	while (n_slots > target) {
		struct worker_slot *ws = &slots[--n_slots];
		if (ws->pid != 0) {
			log_notice("worker %u (pid %ld) drains: fewer workers configured", n_slots, (long)ws->pid);
			kill(ws->pid, SIGQUIT);
			ws->drain_pid = ws->pid;
		}
		ws->pid = 0;
		ws->ready = false;
		ws->respawn_at = 0;
		unbind_slot(ws);
	}
	while (n_slots < target) {
		if (bind_slot(&slots[n_slots], err, sizeof(err)) == -1) {
			log_err("reload: cannot add worker %u: %s", n_slots, err);
			break;
		}
		slots[n_slots].delay = 0;
		/* The slot's channel and records still belong to a draining
		 * predecessor: its successor starts once it has exited. */
		if (slots[n_slots].drain_pid != 0)
			slots[n_slots].respawn_at = time(NULL) + 1;
		else
			spawn(n_slots);
		n_slots++;
	}
	notify_status("READY=1\n");
}

static void
stop_all(void)
{
	unsigned i, alive;
	time_t deadline = time(NULL) + STOP_TIMEOUT;
	int status;

	(void)notify_send("STOPPING=1");
	log_notice("stopping %u worker(s)", n_slots);
	for (i = 0; i < n_slots; i++)
		if (slots[i].pid != 0)
			kill(slots[i].pid, SIGTERM);
	for (i = 0; i < MAX_WORKERS; i++)
		if (slots[i].drain_pid != 0)
			kill(slots[i].drain_pid, SIGTERM);
	for (;;) {
		alive = 0;
		for (i = 0; i < n_slots; i++) {
			if (slots[i].pid == 0)
				continue;
			if (waitpid(slots[i].pid, &status, WNOHANG) == slots[i].pid)
				slots[i].pid = 0;
			else
				alive++;
		}
		if (alive == 0)
			break;
		if (time(NULL) >= deadline) {
			for (i = 0; i < n_slots; i++)
				if (slots[i].pid != 0) {
					log_warn("worker %u did not stop in %d s; killing it", i, STOP_TIMEOUT);
					kill(slots[i].pid, SIGKILL);
				}
			deadline = time(NULL) + 2;
		}
		usleep(50000);
	}
	/* drained workers of older generations */
	while (waitpid(-1, &status, WNOHANG) > 0)
		;
}

/* Make sure the store exists and opens before any worker depends on it;
 * closed again before fork (LMDB must not cross fork). */
static int
check_store(char *err, size_t errlen)
{
	struct store *st = store_open(conf->store, conf->store_size, STORE_NOSYNC,
	    conf->workers * 2 + 64, err, errlen);

	if (st == NULL)
		return -1;
	store_close(st);
	return 0;
}

int
master_run(struct conf *c, const char *path)
{
	char err[1024];
	struct sigaction sa;
	sigset_t block, empty;
	uid_t uid;
	gid_t gid;
	unsigned i;
	int rc = 1;

	conf = c;
	conf_path = path;
	log_set_procname("master");
	n_slots = conf->workers > MAX_WORKERS ? MAX_WORKERS : conf->workers;

	if (mkdir(conf->store, 0700) == -1 && errno != EEXIST) {
		log_err("cannot create store directory %s: %s", conf->store, strerror(errno));
		return 1;
	}
	if (probe_all(err, sizeof(err)) == -1) {
		log_err("%s", err);
		goto out;
	}
	for (i = 0; i < n_slots; i++) {
		if (bind_slot(&slots[i], err, sizeof(err)) == -1) {
			log_err("%s", err);
			goto out;
		}
	}
	/* Channels for every possible slot, so a reload can add workers. */
	for (i = 0; i < MAX_WORKERS; i++)
		ipc[i].send_fd = ipc[i].recv_fd = -1;
	n_ipc = conf->workers * 2 > 8 ? conf->workers * 2 : 8;
	if (n_ipc > MAX_WORKERS)
		n_ipc = MAX_WORKERS;
	if (ipc_create(ipc, n_ipc, err, sizeof(err)) == -1) {
		log_err("%s", err);
		n_ipc = 0;
		goto out;
	}
	if (pipe2(ready_pipe, O_CLOEXEC | O_NONBLOCK) == -1) {
		log_err("pipe: %s", strerror(errno));
		goto out;
	}
	/* The secret is created before dropping privileges, then handed to
	 * the service user; every worker inherits its digest. */
	if (secret_load(conf->secret_file, true, (uid_t)-1, secret_digest, err, sizeof(err)) == -1) {
		log_err("%s", err);
		goto out;
	}
	if (drop_privileges(&uid, &gid, err, sizeof(err)) == -1) {
		log_err("%s", err);
		goto out;
	}
	if (secret_load(conf->secret_file, false, geteuid(), secret_digest, err, sizeof(err)) == -1) {
		log_err("%s", err);
		goto out;
	}
	if (check_store(err, sizeof(err)) == -1) {
		log_err("store: %s", err);
		goto out;
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = master_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGCHLD, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* Signals arrive only inside ppoll(): no races with the flags. */
	sigemptyset(&block);
	sigaddset(&block, SIGCHLD);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGUSR1);
	sigprocmask(SIG_BLOCK, &block, NULL);
	sigemptyset(&empty);

	log_notice("dialbackd %s starting %u worker(s), %zu domain(s)", PACKAGE_VERSION, n_slots,
	    conf->n_domains);
	for (i = 0; i < n_slots; i++)
		spawn(i);

	for (;;) {
		struct pollfd pfd = { ready_pipe[0], POLLIN, 0 };
		struct timespec ts = { 1, 0 };
		time_t now;

		if (ppoll(&pfd, 1, &ts, &empty) > 0 && (pfd.revents & POLLIN))
			read_ready();
		if (got_sigterm)
			break;
		if (got_sigchld) {
			got_sigchld = 0;
			reap();
		}
		if (got_sighup) {
			got_sighup = 0;
			reload();
		}
		if (got_sigusr1) {
			got_sigusr1 = 0;
			if (log_reopen() == -1)
				log_warn("cannot reopen the log: %s", strerror(errno));
			for (i = 0; i < n_slots; i++)
				if (slots[i].pid != 0)
					kill(slots[i].pid, SIGUSR1);
		}
		now = time(NULL);
		for (i = 0; i < n_slots; i++)
			if (slots[i].pid == 0 && slots[i].respawn_at != 0 && now >= slots[i].respawn_at) {
				if (slots[i].drain_pid != 0)
					slots[i].respawn_at = now + 1;
				else
					spawn(i);
			}
	}
	stop_all();
	rc = 0;
	log_notice("stopped");
out:
	for (i = 0; i < n_slots; i++)
		unbind_slot(&slots[i]);
	for (i = 0; i < n_ipc; i++)
		ipc_close(&ipc[i]);
	if (ready_pipe[0] != -1) {
		close(ready_pipe[0]);
		close(ready_pipe[1]);
	}
	util_wipe(secret_digest, sizeof(secret_digest));
	conf_free(conf);
	return rc;
}
