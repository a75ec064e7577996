/* resolver.h - asynchronous s2s name resolution with c-ares on the worker's
 * event loop: [hosts] override, else _xmpp-server._tcp SRV (RFC 6120 §3.2,
 * priority and weight order, "." = no service), else the domain's A/AAAA on
 * port 5269. The result is the ordered list of addresses to try. */
#ifndef DIALBACKD_RESOLVER_H
#define DIALBACKD_RESOLVER_H

#include <stdint.h>
#include <sys/socket.h>

#include <event2/event.h>

#define RESOLVE_MAX_ADDRS 16

struct resolve_result {
	int ok;					/* 1 when at least one address */
	char error[160];			/* why not, for logs */
	size_t n;
	struct sockaddr_storage addrs[RESOLVE_MAX_ADDRS];
	socklen_t lens[RESOLVE_MAX_ADDRS];
};

typedef void (*resolve_cb)(void *arg, const struct resolve_result *res);

struct resolver;
struct resolve_query;

struct resolver *resolver_new(struct event_base *base, char *err, size_t errlen);
void resolver_free(struct resolver *r);

/* Resolves domain (host/port given: a [hosts] override instead of SRV).
 * The callback runs once, later, from the event loop. NULL on failure. */
struct resolve_query *resolver_s2s(struct resolver *r, const char *domain,
    const char *override_host, uint16_t override_port, resolve_cb cb, void *arg);
/* Use these name servers ("127.0.0.1:9,...") instead of resolv.conf's
 * (the fuzzer points them at a closed loopback port). 0 on success. */
int resolver_set_servers(struct resolver *r, const char *servers);
/* The callback will not run; the query is freed when c-ares is done. */
void resolver_cancel(struct resolve_query *q);

#endif
