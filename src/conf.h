/* conf.h - dialbackd.conf: an INI file read with inih into one immutable
 * struct conf. A reload parses a new struct and swaps it in; the old one is
 * freed only when nothing refers to it. (Named conf.h because config.h is
 * autoconf's.) */
#ifndef DIALBACKD_CONF_H
#define DIALBACKD_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "log.h"

#define CONF_DEFAULT_S2S_PORT		5269
#define CONF_DEFAULT_COMPONENT_PORT	5347

enum tls_mode {
	TLS_MODE_OFF = 0,	/* never offer or use STARTTLS */
	TLS_MODE_OPTIONAL,	/* offer and use when the peer does */
	TLS_MODE_REQUIRED,	/* refuse dialback on unencrypted streams */
};

struct conf_listen {
	struct sockaddr_storage addr;
	socklen_t addrlen;
	char text[80];		/* as written, normalised: "127.0.0.1:5269" */
};

struct conf_domain {
	char *name;		/* [domain NAME], lower-cased */
	char *certificate;	/* NULL: use [tls] certificate */
	char *key;		/* NULL: use [tls] key */
	char *component_secret;	/* NULL: no component may attach */
};

struct conf_host {
	char *domain;		/* remote domain, lower-cased */
	char *host;		/* address or name to connect to */
	uint16_t port;
};

struct conf {
	char *path;			/* file this was read from */

	/* [server] */
	unsigned workers;		/* default 1 */
	char *user, *group;		/* NULL: stay as the starting user */
	char *pidfile;			/* default RUNSTATEDIR/dialbackd.pid */
	char *store;			/* LMDB directory */
	uint64_t store_size;		/* LMDB map size in bytes, default 64M */
	bool store_sync;		/* fsync each commit; default no */
	char *secret_file;		/* dialback secret, created 0600 if absent */
	enum log_level log_level;	/* default info */
	char *log;			/* "syslog", "stderr" or a file path */

	/* [s2s] */
	struct conf_listen *s2s_listen;
	size_t n_s2s_listen;
	enum tls_mode tls;		/* default optional */
	unsigned dialback_timeout;	/* seconds, default 30 */
	unsigned connect_timeout;	/* seconds, default 10 */
	unsigned idle_timeout;		/* seconds, default 600 */
	unsigned keepalive_interval;	/* seconds, whitespace ping, default 300 */
	size_t max_stanza_size;		/* bytes, default 262144 (>= 10000) */
	unsigned max_connections;	/* per worker, default 10000 */
	unsigned queue_max;		/* stanzas per pair awaiting dialback, default 1000 */
	unsigned queue_max_age;		/* seconds a queued stanza may wait, default 60 */
	unsigned key_lifetime;		/* seconds a dialback key stays verifiable, default 300 */
	size_t max_stanza_size_unauth;	/* bytes before any pair is validated, default 10000 */
	unsigned max_pending_dialback;	/* db:result being verified per stream, default 16 */
	unsigned max_element_depth;	/* elements open inside a stanza, default 64 */
	unsigned max_element_attributes; /* per element, declarations included, default 64 */
	unsigned max_element_children;	/* child nodes per element, default 10000 */
	unsigned max_streams_per_ip;	/* concurrent inbound streams per address, default 64 */
	unsigned max_new_per_ip;	/* new inbound connections per second per address, default 50 */
	size_t output_buffer_max;	/* bytes queued for one peer before it is cut off, default 4M */
	/* remote domain patterns, lower-cased, in file order, no duplicates:
	 * "example.org", "*.example.org" (strict subdomains only) or "*" */
	char **s2s_allow;		/* empty: every domain not denied */
	size_t n_s2s_allow;
	char **s2s_deny;
	size_t n_s2s_deny;

	/* [components] */
	struct conf_listen *component_listen;
	size_t n_component_listen;

	/* [tls] */
	char *tls_certificate, *tls_key, *tls_ciphers;

	/* [domain NAME] */
	struct conf_domain *domains;
	size_t n_domains;

	/* [hosts] */
	struct conf_host *hosts;
	size_t n_hosts;
};

/* Parses path. On error returns NULL and writes "FILE:LINE: [section] key:
 * reason" (or "FILE: reason") into err. */
struct conf *conf_load(const char *path, char *err, size_t errlen);
void conf_free(struct conf *c);

/* Lookups are case-insensitive on the domain. NULL when absent. */
const struct conf_domain *conf_domain_find(const struct conf *c, const char *name);
const struct conf_host *conf_host_find(const struct conf *c, const char *domain);

/* Whether [s2s] allow and deny let us exchange stanzas with domain
 * (compared without regard to ASCII case): false when it matches a deny
 * pattern, else true when the allow list is empty or it matches an allow
 * pattern. A hosted domain ([domain NAME]) is always allowed; NULL, or a
 * name util_domain_valid() refuses, never is. */
bool conf_remote_allowed(const struct conf *c, const char *domain);

/* Writes the effective configuration, every key with its value, as INI
 * (secrets shown as "<set>", unset keys as "key ="), domains and hosts
 * sorted. The output loads again as the same configuration. Used by
 * `dialbackd -t -v`; check ferror(out) for write errors. */
void conf_print(const struct conf *c, FILE *out);

const char *conf_tls_mode_name(enum tls_mode m);

#endif
