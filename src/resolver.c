/* resolver.c - c-ares driven by libevent. */
#include "config.h"

#include <sys/queue.h>

#include <arpa/inet.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ares.h>
#include <event2/event.h>

#include "log.h"
#include "resolver.h"
#include "util.h"

#define RESOLVER_MAX_SOCKS	16	/* c-ares rarely uses more than a few */
#define SRV_MAX_TARGETS		8	/* targets we try per domain */
#define S2S_DEFAULT_PORT	5269
/* Domains resolved at once per worker; the rest wait their turn. A burst
 * of new peers (a restart, a flood of verifies) would otherwise send
 * thousands of datagrams at the name server at once, which drops what
 * overflows its socket, and every dropped query costs a c-ares timeout. */
#define RESOLVER_MAX_INFLIGHT	32

struct resolver_sock {
	ares_socket_t fd;
	struct event *ev;
};

TAILQ_HEAD(query_list, resolve_query);

struct resolver {
	struct event_base *base;
	ares_channel channel;
	struct event *timer;
	struct resolver_sock socks[RESOLVER_MAX_SOCKS];
	unsigned inflight;		/* queries started, not finished */
	struct query_list waiting;	/* not started yet, oldest first */
	bool closing;			/* resolver_free: start nothing more */
};

struct srv_target {
	char host[256];
	uint16_t port, priority, weight;
	int done;
	struct resolve_result addrs;
};

struct resolve_query {
	struct resolver *r;
	resolve_cb cb;			/* NULL once cancelled */
	void *arg;
	char domain[DOMAIN_MAX + 1];
	char override_host[256];	/* "" for none */
	uint16_t override_port;
	TAILQ_ENTRY(resolve_query) wait_entry;
	int pending;			/* outstanding c-ares calls */
	struct srv_target targets[SRV_MAX_TARGETS];
	size_t n_targets;
	struct resolve_result result;
};

static void resolver_arm_timer(struct resolver *r);

static void
resolver_sock_cb(evutil_socket_t fd, short what, void *arg)
{
	struct resolver *r = arg;

	ares_process_fd(r->channel, (what & EV_READ) ? fd : ARES_SOCKET_BAD,
	    (what & EV_WRITE) ? fd : ARES_SOCKET_BAD);
	resolver_arm_timer(r);
}

static void
resolver_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct resolver *r = arg;

	ares_process_fd(r->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	resolver_arm_timer(r);
}

static void
resolver_arm_timer(struct resolver *r)
{
	struct timeval tv, *tvp;

	tvp = ares_timeout(r->channel, NULL, &tv);
	if (tvp != NULL)
		evtimer_add(r->timer, tvp);
	else
		evtimer_del(r->timer);
}

/* c-ares tells us which sockets to watch. */
static void
resolver_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct resolver *r = data;
	struct resolver_sock *slot = NULL, *free_slot = NULL;
	size_t i;

	for (i = 0; i < RESOLVER_MAX_SOCKS; i++) {
		if (r->socks[i].ev != NULL && r->socks[i].fd == fd)
			slot = &r->socks[i];
		else if (r->socks[i].ev == NULL && free_slot == NULL)
			free_slot = &r->socks[i];
	}
	if (slot != NULL) {
		event_free(slot->ev);
		slot->ev = NULL;
	}
	if (!readable && !writable)
		return;
	if (slot == NULL)
		slot = free_slot;
	if (slot == NULL) {
		log_warn("resolver: more than %d DNS sockets; query will time out", RESOLVER_MAX_SOCKS);
		return;
	}
	slot->fd = fd;
	slot->ev = event_new(r->base, fd, EV_PERSIST | (readable ? EV_READ : 0) |
	    (writable ? EV_WRITE : 0), resolver_sock_cb, r);
	if (slot->ev == NULL || event_add(slot->ev, NULL) == -1)
		log_warn("resolver: cannot watch DNS socket");
}

struct resolver *
resolver_new(struct event_base *base, char *err, size_t errlen)
{
	struct resolver *r = calloc(1, sizeof(*r));
	struct ares_options opts;
	int rc;

	if (r == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	r->base = base;
	TAILQ_INIT(&r->waiting);
	if ((rc = ares_library_init(ARES_LIB_INIT_ALL)) != ARES_SUCCESS) {
		snprintf(err, errlen, "c-ares: %s", ares_strerror(rc));
		free(r);
		return NULL;
	}
	memset(&opts, 0, sizeof(opts));
	opts.sock_state_cb = resolver_sock_state;
	opts.sock_state_cb_data = r;
	opts.timeout = 3000;	/* ms per try */
	opts.tries = 2;
	rc = ares_init_options(&r->channel, &opts,
	    ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
	if (rc != ARES_SUCCESS) {
		snprintf(err, errlen, "c-ares: %s", ares_strerror(rc));
		ares_library_cleanup();
		free(r);
		return NULL;
	}
	if ((r->timer = evtimer_new(base, resolver_timer_cb, r)) == NULL) {
		snprintf(err, errlen, "out of memory");
		ares_destroy(r->channel);
		ares_library_cleanup();
		free(r);
		return NULL;
	}
	return r;
}

void
resolver_free(struct resolver *r)
{
	struct resolve_query *q;
	size_t i;

	if (r == NULL)
		return;
	r->closing = true;
	/* ares_destroy runs pending callbacks with ARES_EDESTRUCTION; the
	 * waiting queries never started: their callbacks do not run either. */
	ares_destroy(r->channel);
	while ((q = TAILQ_FIRST(&r->waiting)) != NULL) {
		TAILQ_REMOVE(&r->waiting, q, wait_entry);
		free(q);
	}
	for (i = 0; i < RESOLVER_MAX_SOCKS; i++)
		if (r->socks[i].ev != NULL)
			event_free(r->socks[i].ev);
	event_free(r->timer);
	ares_library_cleanup();
	free(r);
}

static void
result_add(struct resolve_result *res, const struct sockaddr *sa, socklen_t len, uint16_t port)
{
	if (res->n >= RESOLVE_MAX_ADDRS || len > sizeof(res->addrs[0]))
		return;
	memcpy(&res->addrs[res->n], sa, len);
	if (sa->sa_family == AF_INET)
		((struct sockaddr_in *)&res->addrs[res->n])->sin_port = htons(port);
	else if (sa->sa_family == AF_INET6)
		((struct sockaddr_in6 *)&res->addrs[res->n])->sin6_port = htons(port);
	else
		return;
	res->lens[res->n] = len;
	res->n++;
}

static void start_waiting(struct resolver *r);

/* Called when every outstanding lookup of q is done. */
static void
query_finish(struct resolve_query *q)
{
	struct resolver *r;
	size_t i, j;

	if (q->pending > 0)
		return;
	/* Targets are already in priority/weight order; concatenate. */
	for (i = 0; i < q->n_targets; i++)
		for (j = 0; j < q->targets[i].addrs.n; j++)
			result_add(&q->result, (struct sockaddr *)&q->targets[i].addrs.addrs[j],
			    q->targets[i].addrs.lens[j], q->targets[i].port);
	q->result.ok = q->result.n > 0;
	if (!q->result.ok && q->result.error[0] == '\0')
		snprintf(q->result.error, sizeof(q->result.error), "no address for %.120s", q->domain);
	if (q->cb != NULL)
		q->cb(q->arg, &q->result);
	r = q->r;
	free(q);
	r->inflight--;
	start_waiting(r);
}

/* Each target lookup carries its query and target. */
struct target_ctx {
	struct resolve_query *q;
	struct srv_target *t;
};

static void
target_done(void *arg, int status, int timeouts, struct ares_addrinfo *ai)
{
	struct target_ctx *tc = arg;
	struct resolve_query *q = tc->q;
	struct srv_target *t = tc->t;
	struct ares_addrinfo_node *n;

	if (status == ARES_SUCCESS && ai != NULL) {
		for (n = ai->nodes; n != NULL; n = n->ai_next)
			result_add(&t->addrs, n->ai_addr, n->ai_addrlen, t->port);
	} else {
		snprintf(t->addrs.error, sizeof(t->addrs.error), "%.100s: %.50s", t->host, ares_strerror(status));
		if (q->result.error[0] == '\0')
			util_strlcpy(q->result.error, t->addrs.error, sizeof(q->result.error));
	}
	if (ai != NULL)
		ares_freeaddrinfo(ai);
	if (status == ARES_EDESTRUCTION)
		q->cb = NULL;
	t->done = 1;
	free(tc);
	q->pending--;
	query_finish(q);
}

static void
query_finish_cb(evutil_socket_t fd, short what, void *arg)
{
	query_finish(arg);
}

static void
lookup_target(struct resolve_query *q, struct srv_target *t)
{
	struct ares_addrinfo_hints hints;
	struct target_ctx *tc = malloc(sizeof(*tc));

	if (tc == NULL) {
		snprintf(t->addrs.error, sizeof(t->addrs.error), "out of memory");
		return;
	}
	tc->q = q;
	tc->t = t;
	memset(&hints, 0, sizeof(hints));
	/* No AI_ADDRCONFIG: a host whose only interface is loopback must
	 * still get addresses. */
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	q->pending++;
	ares_getaddrinfo(q->r->channel, t->host, NULL, &hints, target_done, tc);
}

/* RFC 2782: lowest priority first; within a priority, weighted random. */
static void
srv_order(struct srv_target *t, size_t n)
{
	size_t i, j, start;
	struct srv_target tmp;

	for (i = 1; i < n; i++)
		for (j = i; j > 0 && t[j].priority < t[j - 1].priority; j--) {
			tmp = t[j]; t[j] = t[j - 1]; t[j - 1] = tmp;
		}
	for (start = 0; start < n; ) {
		size_t end = start;
		while (end < n && t[end].priority == t[start].priority)
			end++;
		for (i = start; i < end; i++) {
			uint32_t total = 0, pick, r;
			for (j = i; j < end; j++)
				total += (uint32_t)t[j].weight + 1;
			if (util_random_bytes(&r, sizeof(r)) == -1)
				r = 0;
			pick = r % total;
			for (j = i; j < end; j++) {
				if (pick < (uint32_t)t[j].weight + 1)
					break;
				pick -= (uint32_t)t[j].weight + 1;
			}
			if (j >= end)
				j = end - 1;
			tmp = t[i]; t[i] = t[j]; t[j] = tmp;
		}
		start = end;
	}
}

static void
fallback_to_domain(struct resolve_query *q)
{
	struct srv_target *t = &q->targets[0];

	q->n_targets = 1;
	util_strlcpy(t->host, q->domain, sizeof(t->host));
	t->port = S2S_DEFAULT_PORT;
	lookup_target(q, t);
}

static void
srv_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct resolve_query *q = arg;
	struct ares_srv_reply *srv = NULL, *s;
	size_t i;

	/* q->pending still counts this SRV query: it holds q alive while the
	 * target lookups below (which may answer at once from /etc/hosts) run. */
	if (status == ARES_EDESTRUCTION || status == ARES_ECANCELLED) {
		q->cb = NULL;
		q->pending--;
		query_finish(q);
		return;
	}
	if (status == ARES_SUCCESS && ares_parse_srv_reply(abuf, alen, &srv) == ARES_SUCCESS && srv != NULL) {
		if (srv->next == NULL && (srv->host[0] == '\0' || strcmp(srv->host, ".") == 0)) {
			/* RFC 6120 §3.2.1: "decidedly not available"; no fallback. */
			snprintf(q->result.error, sizeof(q->result.error),
			    "%.100s: SRV target '.' (no XMPP service)", q->domain);
			ares_free_data(srv);
			q->pending--;
			query_finish(q);
			return;
		}
		for (s = srv; s != NULL && q->n_targets < SRV_MAX_TARGETS; s = s->next) {
			struct srv_target *t = &q->targets[q->n_targets];
			if (s->host[0] == '\0' || strcmp(s->host, ".") == 0 || s->port == 0)
				continue;
			util_strlcpy(t->host, s->host, sizeof(t->host));
			t->port = s->port;
			t->priority = s->priority;
			t->weight = s->weight;
			q->n_targets++;
		}
		ares_free_data(srv);
		srv_order(q->targets, q->n_targets);
		for (i = 0; i < q->n_targets; i++)
			lookup_target(q, &q->targets[i]);
		q->pending--;
		query_finish(q);
		return;
	}
	/* No SRV answer: fall back to the domain itself on 5269 (§3.2.2). */
	fallback_to_domain(q);
	q->pending--;
	query_finish(q);
}

/* Sends q's first lookups; q counts as in flight until query_finish. -1
 * when its result could not be scheduled (out of memory): the caller then
 * finishes q itself. */
static int
query_start(struct resolve_query *q)
{
	struct resolver *r = q->r;
	char name[DOMAIN_MAX + 32];

	r->inflight++;
	q->pending = 1;		/* held until this function returns */
	if (q->override_host[0] != '\0') {
		struct srv_target *t = &q->targets[0];
		q->n_targets = 1;
		util_strlcpy(t->host, q->override_host, sizeof(t->host));
		t->port = q->override_port;
		lookup_target(q, t);
	} else {
		snprintf(name, sizeof(name), "_xmpp-server._tcp.%s", q->domain);
		q->pending++;
		ares_query(r->channel, name, 1 /* C_IN */, 33 /* T_SRV */, srv_cb, q);
	}
	resolver_arm_timer(r);
	/* c-ares may answer from /etc/hosts at once; then deliver from the
	 * loop, never inside the caller's stack. */
	q->pending--;
	if (q->pending == 0 && event_base_once(r->base, -1, EV_TIMEOUT, query_finish_cb, q, NULL) == -1)
		return -1;
	return 0;
}

/* Starts waiting queries while there is room. */
static void
start_waiting(struct resolver *r)
{
	struct resolve_query *q;

	while (!r->closing && r->inflight < RESOLVER_MAX_INFLIGHT &&
	    (q = TAILQ_FIRST(&r->waiting)) != NULL) {
		TAILQ_REMOVE(&r->waiting, q, wait_entry);
		if (q->cb == NULL) {
			free(q);	/* cancelled while waiting */
			continue;
		}
		if (query_start(q) == -1) {
			snprintf(q->result.error, sizeof(q->result.error), "out of memory");
			query_finish(q);
		}
	}
}

struct resolve_query *
resolver_s2s(struct resolver *r, const char *domain, const char *override_host,
    uint16_t override_port, resolve_cb cb, void *arg)
{
	struct resolve_query *q = calloc(1, sizeof(*q));

	if (q == NULL)
		return NULL;
	q->r = r;
	q->cb = cb;
	q->arg = arg;
	util_strlcpy(q->domain, domain, sizeof(q->domain));
	if (override_host != NULL) {
		util_strlcpy(q->override_host, override_host, sizeof(q->override_host));
		q->override_port = override_port;
	}
	if (r->inflight >= RESOLVER_MAX_INFLIGHT || !TAILQ_EMPTY(&r->waiting)) {
		TAILQ_INSERT_TAIL(&r->waiting, q, wait_entry);
		return q;
	}
	if (query_start(q) == -1) {
		/* nothing is outstanding: no callback, q freed */
		q->cb = NULL;
		query_finish(q);
		return NULL;
	}
	return q;
}

int
resolver_set_servers(struct resolver *r, const char *servers)
{
	return ares_set_servers_ports_csv(r->channel, servers) == ARES_SUCCESS ? 0 : -1;
}

void
resolver_cancel(struct resolve_query *q)
{
	if (q != NULL)
		q->cb = NULL;
}
