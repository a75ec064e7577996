/* conf.c - read dialbackd.conf (INI, through inih) into one struct conf.
 *
 * inih splits lines into name and value; everything else is ours. We feed
 * inih through our own line reader so that we can
 *  - count lines ourselves and refuse lines too long for inih's fixed
 *    buffer (inih would otherwise parse the tail as a line of its own),
 *  - see section headers even when the section holds no key (inih calls
 *    the handler only for keys, and "[domain example.org]" alone is the
 *    usual way to host a domain), and without inih's 49-byte truncation
 *    of section names,
 *  - stop at the first error.
 * Every key is described once in keys[], which drives both parsing and
 * conf_print(). */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ini.h>

#include "conf.h"
#include "log.h"
#include "util.h"

#define CONF_DEFAULT_PIDFILE	RUNSTATEDIR "/dialbackd.pid"
#define CONF_DEFAULT_STORE	LOCALSTATEDIR "/lib/dialbackd"
#define CONF_DEFAULT_SECRET	LOCALSTATEDIR "/lib/dialbackd/secret"
#define CONF_DEFAULT_S2S_LISTEN		"*:5269"
#define CONF_DEFAULT_COMPONENT_LISTEN	"127.0.0.1:5347"

#define DURATION_MAX	(7U * 86400)	/* no timeout needs more than a week */
#define LISTEN_TOKEN_MAX 128		/* longest "[v6]:port" we take */
#define SECTION_MAX	(DOMAIN_MAX + 16)	/* "domain " + a domain name */
#define PATTERN_MAX	(DOMAIN_MAX + 2)	/* "*." + a domain name */

enum conf_section {
	SECT_NONE = 0,		/* before the first [section] */
	SECT_SERVER,
	SECT_S2S,
	SECT_COMPONENTS,
	SECT_TLS,
	SECT_DOMAIN,
	SECT_HOSTS,
};

enum conf_kind {
	KIND_UINT,		/* unsigned, range min..max */
	KIND_DURATION,		/* unsigned seconds, range min..max */
	KIND_SIZE64,		/* uint64_t bytes, range min..max */
	KIND_SIZE,		/* size_t bytes, range min..max */
	KIND_BOOL,
	KIND_PATH,		/* char *, required absolute path */
	KIND_FILE,		/* char *, optional readable regular file */
	KIND_NAME,		/* char *, optional word (user, group) */
	KIND_STRING,		/* char *, optional free text */
	KIND_SECRET,		/* char *, optional, never echoed or printed */
	KIND_LOGLEVEL,
	KIND_LOG,		/* "syslog", "stderr" or an absolute path */
	KIND_TLS,
	KIND_LISTEN,		/* accumulates into the section's listeners */
	KIND_ACL,		/* accumulates domain patterns: allow, deny */
};

struct conf_key {
	const char *name;
	enum conf_section section;
	enum conf_kind kind;
	size_t offset;		/* in struct conf, or struct conf_domain */
	uint64_t min, max;
	const char *why_min;	/* said when below min, or NULL */
};

#define C(f)	offsetof(struct conf, f)
#define D(f)	offsetof(struct conf_domain, f)

/* In documentation order: conf_print() writes keys in this order. */
static const struct conf_key keys[] = {
	{ "workers", SECT_SERVER, KIND_UINT, C(workers), 1, 256, NULL },
	{ "user", SECT_SERVER, KIND_NAME, C(user), 0, 0, NULL },
	{ "group", SECT_SERVER, KIND_NAME, C(group), 0, 0, NULL },
	{ "pidfile", SECT_SERVER, KIND_PATH, C(pidfile), 0, 0, NULL },
	{ "store", SECT_SERVER, KIND_PATH, C(store), 0, 0, NULL },
	{ "store_size", SECT_SERVER, KIND_SIZE64, C(store_size),
	    1ULL << 20, SIZE_MAX, NULL },
	{ "store_sync", SECT_SERVER, KIND_BOOL, C(store_sync), 0, 0, NULL },
	{ "secret_file", SECT_SERVER, KIND_PATH, C(secret_file), 0, 0, NULL },
	{ "log_level", SECT_SERVER, KIND_LOGLEVEL, C(log_level), 0, 0, NULL },
	{ "log", SECT_SERVER, KIND_LOG, C(log), 0, 0, NULL },

	{ "listen", SECT_S2S, KIND_LISTEN, 0, 0, 0, NULL },
	{ "tls", SECT_S2S, KIND_TLS, C(tls), 0, 0, NULL },
	{ "dialback_timeout", SECT_S2S, KIND_DURATION, C(dialback_timeout),
	    1, DURATION_MAX, NULL },
	{ "connect_timeout", SECT_S2S, KIND_DURATION, C(connect_timeout),
	    1, DURATION_MAX, NULL },
	{ "idle_timeout", SECT_S2S, KIND_DURATION, C(idle_timeout),
	    1, DURATION_MAX, NULL },
	/* 0 turns whitespace keepalives off */
	{ "keepalive_interval", SECT_S2S, KIND_DURATION, C(keepalive_interval),
	    0, DURATION_MAX, NULL },
	{ "max_stanza_size", SECT_S2S, KIND_SIZE, C(max_stanza_size),
	    10000, 16ULL << 20,
	    "RFC 6120 section 13.12 requires at least 10000 bytes" },
	{ "max_connections", SECT_S2S, KIND_UINT, C(max_connections),
	    1, 1000000, NULL },
	{ "queue_max", SECT_S2S, KIND_UINT, C(queue_max), 1, 1000000, NULL },
	{ "queue_max_age", SECT_S2S, KIND_DURATION, C(queue_max_age),
	    1, DURATION_MAX, NULL },
	{ "key_lifetime", SECT_S2S, KIND_DURATION, C(key_lifetime),
	    1, DURATION_MAX, NULL },
	{ "max_stanza_size_unauth", SECT_S2S, KIND_SIZE, C(max_stanza_size_unauth),
	    1000, 16ULL << 20, NULL },
	{ "max_pending_dialback", SECT_S2S, KIND_UINT, C(max_pending_dialback), 1, 1000, NULL },
	{ "max_element_depth", SECT_S2S, KIND_UINT, C(max_element_depth), 8, 1000, NULL },
	{ "max_element_attributes", SECT_S2S, KIND_UINT, C(max_element_attributes), 16, 10000, NULL },
	{ "max_element_children", SECT_S2S, KIND_UINT, C(max_element_children), 100, 1000000, NULL },
	{ "max_streams_per_ip", SECT_S2S, KIND_UINT, C(max_streams_per_ip), 1, 1000000, NULL },
	{ "max_new_per_ip", SECT_S2S, KIND_UINT, C(max_new_per_ip), 1, 1000000, NULL },
	{ "output_buffer_max", SECT_S2S, KIND_SIZE, C(output_buffer_max),
	    65536, 1ULL << 30, NULL },
	{ "allow", SECT_S2S, KIND_ACL, C(s2s_allow), 0, 0, NULL },
	{ "deny", SECT_S2S, KIND_ACL, C(s2s_deny), 0, 0, NULL },

	{ "listen", SECT_COMPONENTS, KIND_LISTEN, 0, 0, 0, NULL },

	{ "certificate", SECT_TLS, KIND_FILE, C(tls_certificate), 0, 0, NULL },
	{ "key", SECT_TLS, KIND_FILE, C(tls_key), 0, 0, NULL },
	{ "ciphers", SECT_TLS, KIND_STRING, C(tls_ciphers), 0, 0, NULL },

	{ "certificate", SECT_DOMAIN, KIND_FILE, D(certificate), 0, 0, NULL },
	{ "key", SECT_DOMAIN, KIND_FILE, D(key), 0, 0, NULL },
	{ "component_secret", SECT_DOMAIN, KIND_SECRET, D(component_secret),
	    0, 0, NULL },
};

#undef C
#undef D

#define NKEYS	ARRAY_SIZE(keys)

static const char *const section_names[] = {
	[SECT_NONE] = "",
	[SECT_SERVER] = "server",
	[SECT_S2S] = "s2s",
	[SECT_COMPONENTS] = "components",
	[SECT_TLS] = "tls",
	[SECT_DOMAIN] = "domain",
	[SECT_HOSTS] = "hosts",
};

/* Parse-time bookkeeping for one [domain NAME], parallel to c->domains. */
struct domain_parse {
	int line;			/* of the [domain NAME] header */
	int key_line[NKEYS];		/* where each key was given, 0 = not */
};

struct conf_parse {
	struct conf *c;
	const char *path;
	FILE *fp;
	mode_t mode;			/* of the file, for the secrecy check */

	int lineno;			/* of the line inih is looking at */
	bool indented;			/* that line starts with white space */
	enum conf_section section;
	char label[SECTION_MAX];	/* "[label]" in messages */
	size_t domain;			/* index into c->domains in [domain] */

	int key_line[NKEYS];		/* global keys: line given, 0 = not */
	struct domain_parse *dom;	/* parallel to c->domains */
	int *host_line;			/* parallel to c->hosts */
	size_t cap_domains, cap_hosts, cap_s2s, cap_component;
	size_t cap_allow, cap_deny;
	bool component_none;		/* [components] listen = none */

	bool failed;			/* err holds the first error */
	int err_line;			/* its line, 0 when file-level */
	char *err;
	size_t errlen;
};

static void conf_error(struct conf_parse *, int, const char *, ...)
    LOG_PRINTF(3, 4);
static void key_error(struct conf_parse *, const char *, const char *, ...)
    LOG_PRINTF(3, 4);

/* Records the first error only: later ones are usually its consequences. */
static void
conf_error(struct conf_parse *st, int line, const char *fmt, ...)
{
	char reason[1024];
	va_list ap;

	if (st->failed)
		return;
	st->failed = true;
	st->err_line = line;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	if (st->err == NULL || st->errlen == 0)
		return;
	if (line > 0)
		snprintf(st->err, st->errlen, "%s:%d: %s", st->path, line,
		    reason);
	else
		snprintf(st->err, st->errlen, "%s: %s", st->path, reason);
}

/* "FILE:LINE: [section] key: reason" for the key on the current line. */
static void
key_error(struct conf_parse *st, const char *name, const char *fmt, ...)
{
	char reason[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	conf_error(st, st->lineno, "[%s] %s: %s", st->label, name, reason);
}

/* Makes room for element n; arrays only grow while parsing. Returns the
 * array, moved or not, or NULL (arr untouched) when out of memory. */
static void *
grow(void *arr, size_t *cap, size_t n, size_t elsize)
{
	size_t ncap;
	char *p;

	if (n < *cap)
		return arr;
	ncap = *cap == 0 ? 4 : *cap * 2;
	if (ncap > SIZE_MAX / elsize)
		return NULL;
	if ((p = realloc(arr, ncap * elsize)) == NULL)
		return NULL;
	memset(p + *cap * elsize, 0, (ncap - *cap) * elsize);
	*cap = ncap;
	return p;
}

/* Domains compare in ASCII case only; other bytes are taken as they are. */
static void
ascii_lower(char *s)
{
	for (; *s != '\0'; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

const char *
conf_tls_mode_name(enum tls_mode m)
{
	switch (m) {
	case TLS_MODE_OFF:
		return "off";
	case TLS_MODE_OPTIONAL:
		return "optional";
	case TLS_MODE_REQUIRED:
		return "required";
	}
	return "unknown";
}

/* ---- values ------------------------------------------------------------ */

/* The file must exist and be readable now, so that `dialbackd -t` catches a
 * wrong path instead of the first TLS handshake. */
static int
check_readable(struct conf_parse *st, const char *name, const char *path)
{
	struct stat sb;
	int fd;

	/* O_NONBLOCK: a FIFO must not hang the load; S_ISREG refuses it */
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)) ==
	    -1) {
		key_error(st, name, "cannot read \"%s\": %s", path,
		    strerror(errno));
		return -1;
	}
	if (fstat(fd, &sb) == -1) {
		key_error(st, name, "cannot stat \"%s\": %s", path,
		    strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	if (!S_ISREG(sb.st_mode)) {
		key_error(st, name, "\"%s\" is not a regular file", path);
		return -1;
	}
	return 0;
}

static int
set_string(struct conf_parse *st, const char *name, char **field,
    const char *value)
{
	char *p;

	if ((p = strdup(value)) == NULL) {
		key_error(st, name, "out of memory");
		return -1;
	}
	free(*field);
	*field = p;
	return 0;
}

/* "64M" rather than "67108864": the largest unit that divides exactly. */
static void
format_size(uint64_t v, char *out, size_t outlen)
{
	static const struct {
		char suffix;
		unsigned shift;
	} units[] = { { 'T', 40 }, { 'G', 30 }, { 'M', 20 }, { 'K', 10 } };
	size_t i;

	for (i = 0; i < ARRAY_SIZE(units); i++) {
		uint64_t unit = 1ULL << units[i].shift;
		if (v != 0 && v % unit == 0) {
			snprintf(out, outlen, "%llu%c",
			    (unsigned long long)(v / unit), units[i].suffix);
			return;
		}
	}
	snprintf(out, outlen, "%llu", (unsigned long long)v);
}

static int
set_size(struct conf_parse *st, const struct conf_key *k, const char *value,
    uint64_t *out)
{
	char lim[32];

	if (util_parse_size(value, out) == -1) {
		key_error(st, k->name, "invalid size \"%s\"", value);
		return -1;
	}
	if (*out < k->min) {
		format_size(k->min, lim, sizeof(lim));
		if (k->why_min != NULL)
			key_error(st, k->name, "%s is too small: %s", value,
			    k->why_min);
		else
			key_error(st, k->name, "%s is too small: the minimum "
			    "is %s", value, lim);
		return -1;
	}
	if (*out > k->max) {
		format_size(k->max, lim, sizeof(lim));
		key_error(st, k->name, "%s is too large: the maximum is %s",
		    value, lim);
		return -1;
	}
	return 0;
}

/* Adds one normalised listener, refusing an address given twice anywhere:
 * the second bind() would fail at startup with a less helpful message. */
static int
listen_push(struct conf_parse *st, enum conf_section sect, const char *name,
    const char *tok, uint16_t port)
{
	struct conf *c = st->c;
	struct conf_listen *l, **arr;
	size_t *n, *cap, i;
	const struct sockaddr_in6 *sin6;
	void *p;

	if (sect == SECT_S2S) {
		arr = &c->s2s_listen;
		n = &c->n_s2s_listen;
		cap = &st->cap_s2s;
	} else {
		arr = &c->component_listen;
		n = &c->n_component_listen;
		cap = &st->cap_component;
	}
	if ((p = grow(*arr, cap, *n, sizeof(**arr))) == NULL) {
		key_error(st, name, "out of memory");
		return -1;
	}
	*arr = p;
	l = &(*arr)[*n];
	memset(l, 0, sizeof(*l));
	if (util_parse_listen(tok, port, &l->addr, &l->addrlen) == -1) {
		key_error(st, name, "invalid address \"%s\": expected "
		    "ADDRESS:PORT, [IPv6]:PORT or *:PORT", tok);
		return -1;
	}
	sin6 = (const struct sockaddr_in6 *)&l->addr;
	if (l->addr.ss_family == AF_INET6 &&
	    memcmp(&sin6->sin6_addr, &in6addr_any, sizeof(in6addr_any)) == 0)
		snprintf(l->text, sizeof(l->text), "*:%u",
		    ntohs(sin6->sin6_port));
	else
		util_format_addr((const struct sockaddr *)&l->addr, l->text,
		    sizeof(l->text));

	for (i = 0; i < c->n_s2s_listen; i++) {
		if (strcmp(c->s2s_listen[i].text, l->text) == 0)
			goto dup;
	}
	for (i = 0; i < c->n_component_listen; i++) {
		if (strcmp(c->component_listen[i].text, l->text) == 0)
			goto dup;
	}
	(*n)++;
	return 0;
dup:
	key_error(st, name, "%s is already a listening address", l->text);
	return -1;
}

/* "a:1 b:2,c:3": several addresses per value, and listen may repeat. */
static int
set_listen(struct conf_parse *st, const char *name, const char *value)
{
	static const char seps[] = " \t,";
	char tok[LISTEN_TOKEN_MAX];
	uint16_t port;
	size_t len;
	bool any = false;

	port = st->section == SECT_S2S ? CONF_DEFAULT_S2S_PORT :
	    CONF_DEFAULT_COMPONENT_PORT;
	while (*value != '\0') {
		value += strspn(value, seps);
		if ((len = strcspn(value, seps)) == 0)
			break;
		if (len >= sizeof(tok)) {
			key_error(st, name, "invalid address \"%.*s...\"", 40,
			    value);
			return -1;
		}
		memcpy(tok, value, len);
		tok[len] = '\0';
		value += len;
		any = true;

		if (strcmp(tok, "none") == 0) {
			if (st->section != SECT_COMPONENTS) {
				key_error(st, name, "the s2s listener cannot "
				    "be turned off");
				return -1;
			}
			st->component_none = true;
		} else if (listen_push(st, st->section, name, tok, port) == -1)
			return -1;
		if (st->section == SECT_COMPONENTS && st->component_none &&
		    st->c->n_component_listen > 0) {
			key_error(st, name, "\"none\" cannot be combined with "
			    "addresses");
			return -1;
		}
	}
	if (!any) {
		key_error(st, name, "empty value");
		return -1;
	}
	return 0;
}

/* Checks and lower-cases one pattern: "*", "*.DOMAIN" or "DOMAIN". */
static int
acl_pattern(struct conf_parse *st, const char *name, char *pat)
{
	char *dom = pat;

	if (strcmp(pat, "*") == 0)
		return 0;
	if (strncmp(pat, "*.", 2) == 0)
		dom = pat + 2;
	if (strchr(dom, '*') != NULL) {
		key_error(st, name, "invalid pattern \"%s\": '*' may only "
		    "stand alone or begin the pattern as \"*.\"", pat);
		return -1;
	}
	if (*dom == '\0') {
		key_error(st, name, "invalid pattern \"%s\": no domain after "
		    "\"*.\"", pat);
		return -1;
	}
	if (!util_domain_valid(dom)) {
		if (dom == pat)
			key_error(st, name, "invalid pattern \"%s\": not a "
			    "valid domain name", pat);
		else
			key_error(st, name, "invalid pattern \"%s\": \"%s\" is "
			    "not a valid domain name", pat, dom);
		return -1;
	}
	ascii_lower(pat);
	return 0;
}

/* "a.example *.b.example,c.example": several patterns per value, and the
 * key may repeat. An empty value adds nothing (conf_print() writes an empty
 * list that way); a pattern already in the list is dropped. */
static int
set_acl(struct conf_parse *st, const struct conf_key *k, const char *value)
{
	static const char seps[] = " \t,";
	char tok[PATTERN_MAX + 1];
	char **arr_new, ***arr;
	size_t len, i, *n, *cap;

	if (k->offset == offsetof(struct conf, s2s_allow)) {
		arr = &st->c->s2s_allow;
		n = &st->c->n_s2s_allow;
		cap = &st->cap_allow;
	} else {
		arr = &st->c->s2s_deny;
		n = &st->c->n_s2s_deny;
		cap = &st->cap_deny;
	}
	while (*value != '\0') {
		value += strspn(value, seps);
		if ((len = strcspn(value, seps)) == 0)
			break;
		if (len >= sizeof(tok)) {
			key_error(st, k->name, "invalid pattern \"%.*s...\": "
			    "too long", 40, value);
			return -1;
		}
		memcpy(tok, value, len);
		tok[len] = '\0';
		value += len;
		if (acl_pattern(st, k->name, tok) == -1)
			return -1;
		for (i = 0; i < *n; i++)
			if (strcmp((*arr)[i], tok) == 0)
				break;
		if (i < *n)
			continue;
		if ((arr_new = grow(*arr, cap, *n, sizeof(**arr))) == NULL) {
			key_error(st, k->name, "out of memory");
			return -1;
		}
		*arr = arr_new;
		if (((*arr)[*n] = strdup(tok)) == NULL) {
			key_error(st, k->name, "out of memory");
			return -1;
		}
		(*n)++;
	}
	return 0;
}

static int
set_key(struct conf_parse *st, const struct conf_key *k, void *base,
    const char *value)
{
	void *field = (char *)base + k->offset;
	char **str = field;
	unsigned long ul;
	unsigned dur;
	uint64_t size;
	enum log_level lvl;
	bool b;

	switch (k->kind) {
	case KIND_UINT:
		if (util_parse_uint(value, (unsigned long)k->min,
		    (unsigned long)k->max, &ul) == -1) {
			key_error(st, k->name, "invalid value \"%s\": expected "
			    "a number from %llu to %llu", value,
			    (unsigned long long)k->min,
			    (unsigned long long)k->max);
			return -1;
		}
		*(unsigned *)field = (unsigned)ul;
		return 0;
	case KIND_DURATION:
		if (util_parse_duration(value, &dur) == -1) {
			key_error(st, k->name, "invalid duration \"%s\"",
			    value);
			return -1;
		}
		if (dur < k->min || dur > k->max) {
			key_error(st, k->name, "%s is out of range: expected "
			    "%llus to %llus", value,
			    (unsigned long long)k->min,
			    (unsigned long long)k->max);
			return -1;
		}
		*(unsigned *)field = dur;
		return 0;
	case KIND_SIZE64:
		if (set_size(st, k, value, &size) == -1)
			return -1;
		*(uint64_t *)field = size;
		return 0;
	case KIND_SIZE:
		if (set_size(st, k, value, &size) == -1)
			return -1;
		*(size_t *)field = (size_t)size;
		return 0;
	case KIND_BOOL:
		if (util_parse_bool(value, &b) == -1) {
			key_error(st, k->name, "invalid boolean \"%s\": "
			    "expected yes or no", value);
			return -1;
		}
		*(bool *)field = b;
		return 0;
	case KIND_PATH:
		if (*value == '\0') {
			key_error(st, k->name, "empty value");
			return -1;
		}
		/* the daemon changes directory; relative paths would move */
		if (*value != '/') {
			key_error(st, k->name, "\"%s\" is not an absolute path",
			    value);
			return -1;
		}
		return set_string(st, k->name, str, value);
	case KIND_FILE:
		if (*value == '\0')
			return 0;	/* empty: not set */
		if (*value != '/') {
			key_error(st, k->name, "\"%s\" is not an absolute path",
			    value);
			return -1;
		}
		if (check_readable(st, k->name, value) == -1)
			return -1;
		return set_string(st, k->name, str, value);
	case KIND_NAME:
		if (*value == '\0')
			return 0;
		if (value[strcspn(value, " \t")] != '\0') {
			key_error(st, k->name, "invalid name \"%s\"", value);
			return -1;
		}
		return set_string(st, k->name, str, value);
	case KIND_STRING:
	case KIND_SECRET:
		if (*value == '\0')
			return 0;
		return set_string(st, k->name, str, value);
	case KIND_LOGLEVEL:
		if (log_level_parse(value, &lvl) == -1) {
			key_error(st, k->name, "invalid log level \"%s\": "
			    "expected error, warning, notice, info or debug",
			    value);
			return -1;
		}
		*(enum log_level *)field = lvl;
		return 0;
	case KIND_LOG:
		if (strcmp(value, "syslog") != 0 &&
		    strcmp(value, "stderr") != 0 && value[0] != '/') {
			key_error(st, k->name, "invalid log \"%s\": expected "
			    "syslog, stderr or an absolute file path", value);
			return -1;
		}
		return set_string(st, k->name, str, value);
	case KIND_TLS:
		if (strcmp(value, "required") == 0)
			*(enum tls_mode *)field = TLS_MODE_REQUIRED;
		else if (strcmp(value, "optional") == 0)
			*(enum tls_mode *)field = TLS_MODE_OPTIONAL;
		else if (strcmp(value, "off") == 0)
			*(enum tls_mode *)field = TLS_MODE_OFF;
		else {
			key_error(st, k->name, "invalid TLS mode \"%s\": "
			    "expected required, optional or off", value);
			return -1;
		}
		return 0;
	case KIND_LISTEN:
		return set_listen(st, k->name, value);
	case KIND_ACL:
		return set_acl(st, k, value);
	}
	key_error(st, k->name, "internal error: unhandled key kind");
	return -1;
}

/* ---- sections ------------------------------------------------------------ */

static int
domain_begin(struct conf_parse *st, const char *name)
{
	struct conf *c = st->c;
	struct conf_domain *d;
	char lname[DOMAIN_MAX + 1];
	size_t i;

	if (*name == '\0') {
		conf_error(st, st->lineno, "[%s]: missing domain name: write "
		    "[domain NAME]", st->label);
		return -1;
	}
	if (util_strlcpy(lname, name, sizeof(lname)) >= sizeof(lname) ||
	    !util_domain_valid(lname)) {
		conf_error(st, st->lineno, "[%s]: invalid domain name",
		    st->label);
		return -1;
	}
	ascii_lower(lname);
	snprintf(st->label, sizeof(st->label), "domain %s", lname);
	for (i = 0; i < c->n_domains; i++) {
		if (strcmp(c->domains[i].name, lname) == 0) {
			conf_error(st, st->lineno, "[%s]: domain given twice "
			    "(first at line %d)", st->label, st->dom[i].line);
			return -1;
		}
	}
	/* domains[] and dom[] grow in step, from the same capacity */
	if (c->n_domains == st->cap_domains) {
		size_t cap1 = st->cap_domains, cap2 = st->cap_domains;
		void *p;

		if ((p = grow(c->domains, &cap1, c->n_domains,
		    sizeof(*c->domains))) == NULL)
			goto oom;
		c->domains = p;
		if ((p = grow(st->dom, &cap2, c->n_domains,
		    sizeof(*st->dom))) == NULL)
			goto oom;
		st->dom = p;
		st->cap_domains = cap1;
	}
	d = &c->domains[c->n_domains];
	memset(d, 0, sizeof(*d));
	if ((d->name = strdup(lname)) == NULL)
		goto oom;
	memset(&st->dom[c->n_domains], 0, sizeof(st->dom[0]));
	st->dom[c->n_domains].line = st->lineno;
	st->domain = c->n_domains++;
	return 0;
oom:
	conf_error(st, st->lineno, "[%s]: out of memory", st->label);
	return -1;
}

/* Called by the reader for each "[...]" line; text is what lies between the
 * brackets. */
static int
section_begin(struct conf_parse *st, const char *text, size_t len)
{
	enum conf_section s;
	size_t i;

	while (len > 0 && isspace((unsigned char)*text)) {
		text++;
		len--;
	}
	while (len > 0 && isspace((unsigned char)text[len - 1]))
		len--;
	if (len >= sizeof(st->label)) {
		conf_error(st, st->lineno, "section name too long");
		return -1;
	}
	memcpy(st->label, text, len);
	st->label[len] = '\0';

	for (s = SECT_SERVER; s <= SECT_HOSTS; s++) {
		if (s == SECT_DOMAIN)
			continue;
		if (strcmp(st->label, section_names[s]) == 0) {
			st->section = s;
			return 0;
		}
	}
	i = strlen(section_names[SECT_DOMAIN]);
	if (strncmp(st->label, section_names[SECT_DOMAIN], i) == 0 &&
	    (st->label[i] == '\0' || isspace((unsigned char)st->label[i]))) {
		st->section = SECT_DOMAIN;
		while (isspace((unsigned char)st->label[i]))
			i++;
		/* domain_begin() copies the name before it rewrites label */
		return domain_begin(st, st->label + i);
	}
	conf_error(st, st->lineno, "[%s]: unknown section", st->label);
	return -1;
}

/* [hosts] remote.example = host[:port] */
static int
host_add(struct conf_parse *st, const char *name, const char *value)
{
	struct conf *c = st->c;
	struct conf_host *h;
	char domain[DOMAIN_MAX + 1], host[DOMAIN_MAX + 1];
	unsigned char addr[sizeof(struct in6_addr)];
	uint16_t port;
	size_t i;

	if (util_strlcpy(domain, name, sizeof(domain)) >= sizeof(domain) ||
	    !util_domain_valid(domain)) {
		key_error(st, name, "invalid domain name");
		return -1;
	}
	ascii_lower(domain);
	for (i = 0; i < c->n_hosts; i++) {
		if (strcmp(c->hosts[i].domain, domain) == 0) {
			key_error(st, name, "given twice (first at line %d)",
			    st->host_line[i]);
			return -1;
		}
	}
	if (*value == '\0') {
		key_error(st, name, "empty value");
		return -1;
	}
	if (util_parse_hostport(value, CONF_DEFAULT_S2S_PORT, host,
	    sizeof(host), &port) == -1) {
		key_error(st, name, "invalid host \"%s\": expected HOST, "
		    "HOST:PORT or [IPv6]:PORT", value);
		return -1;
	}
	if (inet_pton(AF_INET, host, addr) != 1 &&
	    inet_pton(AF_INET6, host, addr) != 1 && !util_domain_valid(host)) {
		key_error(st, name, "invalid host \"%s\"", host);
		return -1;
	}

	/* hosts[] and host_line[] grow in step, from the same capacity */
	if (c->n_hosts == st->cap_hosts) {
		size_t cap1 = st->cap_hosts, cap2 = st->cap_hosts;
		void *p;

		if ((p = grow(c->hosts, &cap1, c->n_hosts,
		    sizeof(*c->hosts))) == NULL)
			goto oom;
		c->hosts = p;
		if ((p = grow(st->host_line, &cap2, c->n_hosts,
		    sizeof(*st->host_line))) == NULL)
			goto oom;
		st->host_line = p;
		st->cap_hosts = cap1;
	}
	h = &c->hosts[c->n_hosts];
	memset(h, 0, sizeof(*h));
	if ((h->domain = strdup(domain)) == NULL ||
	    (h->host = strdup(host)) == NULL) {
		free(h->domain);
		h->domain = NULL;
		goto oom;
	}
	h->port = port;
	st->host_line[c->n_hosts++] = st->lineno;
	return 0;
oom:
	key_error(st, name, "out of memory");
	return -1;
}

/* ---- inih glue ----------------------------------------------------------- */

static int
conf_handler(void *user, const char *section, const char *name,
    const char *value)
{
	struct conf_parse *st = user;
	const struct conf_key *k = NULL;
	int *line;
	void *base;
	size_t i;

	(void)section;		/* we track sections ourselves, untruncated */
	if (st->failed)
		return 0;
	if (st->section == SECT_NONE) {
		conf_error(st, st->lineno, "%s: key outside any [section]",
		    name);
		return 0;
	}
	if (*name == '\0') {
		conf_error(st, st->lineno, "[%s]: missing key name before "
		    "'='", st->label);
		return 0;
	}
	if (st->section == SECT_HOSTS)
		return host_add(st, name, value) == 0;

	for (i = 0; i < NKEYS; i++) {
		if (keys[i].section == st->section &&
		    strcmp(keys[i].name, name) == 0) {
			k = &keys[i];
			break;
		}
	}
	if (k == NULL) {
		key_error(st, name, "unknown key");
		return 0;
	}
	if (st->section == SECT_DOMAIN) {
		line = &st->dom[st->domain].key_line[i];
		base = &st->c->domains[st->domain];
	} else {
		line = &st->key_line[i];
		base = st->c;
	}
	/* a typo'd duplicate silently overriding is worse than an error */
	if (k->kind != KIND_LISTEN && k->kind != KIND_ACL && *line != 0) {
		key_error(st, name, "given twice (first at line %d)%s", *line,
		    st->indented ? "; an indented line continues the value "
		    "of the line before it" : "");
		return 0;
	}
	if (*line == 0)
		*line = st->lineno;
	return set_key(st, k, base, value) == 0;
}

/* An fgets() for inih that counts lines, refuses what inih would mangle and
 * hands section headers to section_begin(). */
static char *
conf_reader(char *str, int num, void *user)
{
	struct conf_parse *st = user;
	size_t len = 0, max;
	char *p, *close;
	int ch;

	if (st->failed || num < 4)
		return NULL;
	/* inih wants room for "\r\n" and the NUL after the longest line */
	max = (size_t)num - 1;
	while ((ch = getc(st->fp)) != EOF) {
		if (len == 0)
			st->lineno++;
		if (ch == '\0') {
			conf_error(st, st->lineno, "NUL byte in line");
			return NULL;
		}
		if (len == max) {
			conf_error(st, st->lineno, "line too long (the limit "
			    "is %d bytes)", num - 2);
			return NULL;
		}
		str[len++] = (char)ch;
		if (ch == '\n')
			break;
	}
	if (ferror(st->fp)) {
		conf_error(st, 0, "read error: %s", strerror(errno));
		return NULL;
	}
	if (len == 0)
		return NULL;
	str[len] = '\0';

	/* inih would skip a BOM itself, but then the indentation test below
	 * would see the first line as indented */
	if (st->lineno == 1 && len >= 3 && (unsigned char)str[0] == 0xEF &&
	    (unsigned char)str[1] == 0xBB && (unsigned char)str[2] == 0xBF)
		memmove(str, str + 3, len - 2);

	for (p = str; isspace((unsigned char)*p); p++)
		;
	st->indented = p > str && *p != '\0';
	if (*p != '[')
		return str;
	/* inih reads an indented "[...]" after a key as a continuation of the
	 * key's value; make the file say what it means instead */
	if (st->indented) {
		conf_error(st, st->lineno, "a section header must not be "
		    "indented");
		return NULL;
	}
	if ((close = strchr(p, ']')) == NULL) {
		conf_error(st, st->lineno, "missing ']' in section header");
		return NULL;
	}
	for (p = close + 1; isspace((unsigned char)*p); p++)
		;
	if (*p != '\0' && *p != ';' && *p != '#') {
		conf_error(st, st->lineno, "text after ']' in section header");
		return NULL;
	}
	p = strchr(str, '[') + 1;
	if (section_begin(st, p, (size_t)(close - p)) == -1)
		return NULL;
	return str;
}

/* ---- load ---------------------------------------------------------------- */

static int
set_defaults(struct conf *c)
{
	c->workers = 1;
	c->store_size = 64ULL << 20;
	c->store_sync = false;
	c->log_level = LOG_LVL_INFO;
	c->tls = TLS_MODE_OPTIONAL;
	c->dialback_timeout = 30;
	c->connect_timeout = 10;
	c->idle_timeout = 600;
	c->keepalive_interval = 300;
	c->max_stanza_size = 256 * 1024;
	c->max_connections = 10000;
	c->queue_max = 1000;
	c->queue_max_age = 60;
	c->key_lifetime = 300;
	c->max_stanza_size_unauth = 10000;
	c->max_pending_dialback = 16;
	c->max_element_depth = 64;
	c->max_element_attributes = 64;
	c->max_element_children = 10000;
	c->max_streams_per_ip = 64;
	c->max_new_per_ip = 50;
	c->output_buffer_max = 4u << 20;
	if ((c->pidfile = strdup(CONF_DEFAULT_PIDFILE)) == NULL ||
	    (c->store = strdup(CONF_DEFAULT_STORE)) == NULL ||
	    (c->secret_file = strdup(CONF_DEFAULT_SECRET)) == NULL ||
	    (c->log = strdup("syslog")) == NULL)
		return -1;
	return 0;
}

static size_t
key_index(enum conf_section s, const char *name)
{
	size_t i;

	for (i = 0; i < NKEYS; i++)
		if (keys[i].section == s && strcmp(keys[i].name, name) == 0)
			return i;
	fatalx("conf: no key [%s] %s", section_names[s], name);
}

/* certificate and key go together; error at whichever was given. */
static int
check_pair(struct conf_parse *st, const char *label, const char *cert,
    const char *key, const int *key_line, enum conf_section s)
{
	if (cert != NULL && key == NULL) {
		conf_error(st, key_line[key_index(s, "certificate")],
		    "[%s] certificate: given without key", label);
		return -1;
	}
	if (key != NULL && cert == NULL) {
		conf_error(st, key_line[key_index(s, "key")],
		    "[%s] key: given without certificate", label);
		return -1;
	}
	return 0;
}

static int
cmp_domain(const void *a, const void *b)
{
	return strcmp(((const struct conf_domain *)a)->name,
	    ((const struct conf_domain *)b)->name);
}

static int
cmp_host(const void *a, const void *b)
{
	return strcmp(((const struct conf_host *)a)->domain,
	    ((const struct conf_host *)b)->domain);
}

/* Checks that span keys, once the whole file is read. */
static int
conf_finish(struct conf_parse *st)
{
	struct conf *c = st->c;
	char label[SECTION_MAX];
	size_t i;
	int line;
	bool secrets = false;

	if (c->n_domains == 0) {
		conf_error(st, 0, "no [domain NAME] section: dialbackd must "
		    "host at least one domain");
		return -1;
	}
	if (c->n_s2s_listen == 0) {
		st->section = SECT_S2S;
		snprintf(st->label, sizeof(st->label), "s2s");
		st->lineno = 0;
		if (listen_push(st, SECT_S2S, "listen",
		    CONF_DEFAULT_S2S_LISTEN, CONF_DEFAULT_S2S_PORT) == -1)
			return -1;
	}
	if (c->n_component_listen == 0 && !st->component_none) {
		st->section = SECT_COMPONENTS;
		snprintf(st->label, sizeof(st->label), "components");
		st->lineno = 0;
		if (listen_push(st, SECT_COMPONENTS, "listen",
		    CONF_DEFAULT_COMPONENT_LISTEN,
		    CONF_DEFAULT_COMPONENT_PORT) == -1)
			return -1;
	}
	if (check_pair(st, "tls", c->tls_certificate, c->tls_key,
	    st->key_line, SECT_TLS) == -1)
		return -1;
	for (i = 0; i < c->n_domains; i++) {
		struct conf_domain *d = &c->domains[i];

		snprintf(label, sizeof(label), "domain %s", d->name);
		if (check_pair(st, label, d->certificate, d->key,
		    st->dom[i].key_line, SECT_DOMAIN) == -1)
			return -1;
		if (c->tls == TLS_MODE_REQUIRED && d->certificate == NULL &&
		    c->tls_certificate == NULL) {
			conf_error(st, st->dom[i].line, "[%s] certificate: "
			    "[s2s] tls = required, but neither this domain "
			    "nor [tls] has a certificate", label);
			return -1;
		}
		if (d->component_secret != NULL)
			secrets = true;
	}
	/* a key that expires before verification ends cannot verify */
	if (c->key_lifetime < c->dialback_timeout) {
		line = st->key_line[key_index(SECT_S2S, "key_lifetime")];
		if (line == 0)
			line = st->key_line[key_index(SECT_S2S,
			    "dialback_timeout")];
		conf_error(st, line, "[s2s] key_lifetime: %us is shorter than "
		    "dialback_timeout (%us)", c->key_lifetime,
		    c->dialback_timeout);
		return -1;
	}
	if (secrets && (st->mode & S_IROTH))
		log_warn("%s: holds component secrets but every user can read "
		    "it (chmod o-r)", st->path);

	/* sorted: stable conf_print() output and binary search */
	qsort(c->domains, c->n_domains, sizeof(*c->domains), cmp_domain);
	if (c->n_hosts > 0)
		qsort(c->hosts, c->n_hosts, sizeof(*c->hosts), cmp_host);
	return 0;
}

struct conf *
conf_load(const char *path, char *err, size_t errlen)
{
	struct conf_parse st;
	struct conf *c = NULL;
	struct stat sb;
	char iobuf[BUFSIZ];
	int rv;

	memset(&st, 0, sizeof(st));
	st.path = path;
	st.err = err;
	st.errlen = errlen;
	if (err != NULL && errlen > 0)
		err[0] = '\0';

	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (c->path = strdup(path)) == NULL || set_defaults(c) == -1) {
		conf_error(&st, 0, "out of memory");
		goto fail;
	}
	st.c = c;
	if ((st.fp = fopen(path, "re")) == NULL) {
		conf_error(&st, 0, "cannot open: %s", strerror(errno));
		goto fail;
	}
	/* our buffer, so the component secrets can be wiped from it */
	if (setvbuf(st.fp, iobuf, _IOFBF, sizeof(iobuf)) != 0) {
		conf_error(&st, 0, "setvbuf failed");
		goto fail;
	}
	if (fstat(fileno(st.fp), &sb) == -1) {
		conf_error(&st, 0, "cannot stat: %s", strerror(errno));
		goto fail;
	}
	st.mode = sb.st_mode;

	rv = ini_parse_stream(conf_reader, &st, conf_handler, &st);
	/* inih finds lines without '=' on its own, and goes on */
	if (rv > 0 && (!st.failed || (st.err_line > 0 && rv < st.err_line))) {
		st.failed = false;
		conf_error(&st, rv, "syntax error: expected \"key = value\"");
	} else if (rv < 0 && !st.failed) {
		conf_error(&st, 0, "cannot parse (inih error %d)", rv);
	}
	if (st.failed)
		goto fail;
	if (conf_finish(&st) == -1)
		goto fail;
	goto out;
fail:
	conf_free(c);
	c = NULL;
out:
	if (st.fp != NULL) {
		fclose(st.fp);
		util_wipe(iobuf, sizeof(iobuf));
	}
	free(st.dom);
	free(st.host_line);
	return c;
}

void
conf_free(struct conf *c)
{
	size_t i;

	if (c == NULL)
		return;
	free(c->path);
	free(c->user);
	free(c->group);
	free(c->pidfile);
	free(c->store);
	free(c->secret_file);
	free(c->log);
	free(c->s2s_listen);
	for (i = 0; i < c->n_s2s_allow; i++)
		free(c->s2s_allow[i]);
	free(c->s2s_allow);
	for (i = 0; i < c->n_s2s_deny; i++)
		free(c->s2s_deny[i]);
	free(c->s2s_deny);
	free(c->component_listen);
	free(c->tls_certificate);
	free(c->tls_key);
	free(c->tls_ciphers);
	for (i = 0; i < c->n_domains; i++) {
		struct conf_domain *d = &c->domains[i];
		free(d->name);
		free(d->certificate);
		free(d->key);
		if (d->component_secret != NULL) {
			util_wipe(d->component_secret,
			    strlen(d->component_secret));
			free(d->component_secret);
		}
	}
	free(c->domains);
	for (i = 0; i < c->n_hosts; i++) {
		free(c->hosts[i].domain);
		free(c->hosts[i].host);
	}
	free(c->hosts);
	free(c);
}

/* ---- lookups ------------------------------------------------------------- */

static int
find_domain(const void *key, const void *elem)
{
	return util_domain_cmp(key, ((const struct conf_domain *)elem)->name);
}

static int
find_host(const void *key, const void *elem)
{
	return util_domain_cmp(key, ((const struct conf_host *)elem)->domain);
}

const struct conf_domain *
conf_domain_find(const struct conf *c, const char *name)
{
	if (c == NULL || name == NULL || c->n_domains == 0)
		return NULL;
	return bsearch(name, c->domains, c->n_domains, sizeof(*c->domains),
	    find_domain);
}

const struct conf_host *
conf_host_find(const struct conf *c, const char *domain)
{
	if (c == NULL || domain == NULL || c->n_hosts == 0)
		return NULL;
	return bsearch(domain, c->hosts, c->n_hosts, sizeof(*c->hosts),
	    find_host);
}

/* Whether domain, dlen bytes long, matches one of the n patterns. */
static bool
acl_match(char *const *pats, size_t n, const char *domain, size_t dlen)
{
	const char *p;
	size_t i, plen;

	for (i = 0; i < n; i++) {
		p = pats[i];
		if (p[0] == '*' && p[1] == '\0')
			return true;
		if (p[0] == '*') {
			/* ".example.org" must end the domain and something
			 * must come before it: the apex itself is no match */
			p++;
			plen = strlen(p);
			if (dlen > plen &&
			    util_domain_cmp(domain + dlen - plen, p) == 0)
				return true;
		} else if (util_domain_cmp(domain, p) == 0)
			return true;
	}
	return false;
}

bool
conf_remote_allowed(const struct conf *c, const char *domain)
{
	size_t dlen;

	if (c == NULL || domain == NULL || !util_domain_valid(domain))
		return false;
	if (conf_domain_find(c, domain) != NULL)
		return true;
	dlen = strlen(domain);
	if (acl_match(c->s2s_deny, c->n_s2s_deny, domain, dlen))
		return false;
	return c->n_s2s_allow == 0 ||
	    acl_match(c->s2s_allow, c->n_s2s_allow, domain, dlen);
}

/* ---- printing ------------------------------------------------------------ */

static void
print_listen(const struct conf *c, const struct conf_key *k, FILE *out)
{
	const struct conf_listen *l;
	size_t i, n;

	if (k->section == SECT_S2S) {
		l = c->s2s_listen;
		n = c->n_s2s_listen;
	} else {
		l = c->component_listen;
		n = c->n_component_listen;
	}
	if (n == 0)
		fprintf(out, "%s = none\n", k->name);
	for (i = 0; i < n; i++)
		fprintf(out, "%s = %s\n", k->name, l[i].text);
}

/* One line per pattern, like listen; "key =" for an empty list. */
static void
print_acl(const struct conf *c, const struct conf_key *k, FILE *out)
{
	char *const *arr;
	size_t i, n;

	if (k->offset == offsetof(struct conf, s2s_allow)) {
		arr = c->s2s_allow;
		n = c->n_s2s_allow;
	} else {
		arr = c->s2s_deny;
		n = c->n_s2s_deny;
	}
	if (n == 0)
		fprintf(out, "%s =\n", k->name);
	for (i = 0; i < n; i++)
		fprintf(out, "%s = %s\n", k->name, arr[i]);
}

static void
print_key(const struct conf *c, const struct conf_key *k, const void *base,
    FILE *out)
{
	const void *field = (const char *)base + k->offset;
	const char *s = NULL;
	char buf[32];

	switch (k->kind) {
	case KIND_UINT:
		snprintf(buf, sizeof(buf), "%u", *(const unsigned *)field);
		s = buf;
		break;
	case KIND_DURATION:
		snprintf(buf, sizeof(buf), "%us", *(const unsigned *)field);
		s = buf;
		break;
	case KIND_SIZE64:
		format_size(*(const uint64_t *)field, buf, sizeof(buf));
		s = buf;
		break;
	case KIND_SIZE:
		format_size(*(const size_t *)field, buf, sizeof(buf));
		s = buf;
		break;
	case KIND_BOOL:
		s = *(const bool *)field ? "yes" : "no";
		break;
	case KIND_PATH:
	case KIND_FILE:
	case KIND_NAME:
	case KIND_STRING:
	case KIND_LOG:
		s = *(char *const *)field;
		break;
	case KIND_SECRET:
		s = *(char *const *)field != NULL ? "<set>" : NULL;
		break;
	case KIND_LOGLEVEL:
		s = log_level_name(*(const enum log_level *)field);
		break;
	case KIND_TLS:
		s = conf_tls_mode_name(*(const enum tls_mode *)field);
		break;
	case KIND_LISTEN:
		print_listen(c, k, out);
		return;
	case KIND_ACL:
		print_acl(c, k, out);
		return;
	}
	/* unset optional keys print as "key =", which reads back as unset */
	if (s == NULL)
		fprintf(out, "%s =\n", k->name);
	else
		fprintf(out, "%s = %s\n", k->name, s);
}

static void
print_section(const struct conf *c, enum conf_section s, const void *base,
    FILE *out)
{
	size_t i;

	for (i = 0; i < NKEYS; i++)
		if (keys[i].section == s)
			print_key(c, &keys[i], base, out);
}

/* Output errors are the caller's to see with ferror(out). */
void
conf_print(const struct conf *c, FILE *out)
{
	enum conf_section s;
	const struct conf_host *h;
	size_t i;

	for (s = SECT_SERVER; s <= SECT_TLS; s++) {
		fprintf(out, "%s[%s]\n", s == SECT_SERVER ? "" : "\n",
		    section_names[s]);
		print_section(c, s, c, out);
	}
	for (i = 0; i < c->n_domains; i++) {
		fprintf(out, "\n[domain %s]\n", c->domains[i].name);
		print_section(c, SECT_DOMAIN, &c->domains[i], out);
	}
	fprintf(out, "\n[hosts]\n");
	for (i = 0; i < c->n_hosts; i++) {
		h = &c->hosts[i];
		if (strchr(h->host, ':') != NULL)
			fprintf(out, "%s = [%s]:%u\n", h->domain, h->host,
			    h->port);
		else
			fprintf(out, "%s = %s:%u\n", h->domain, h->host,
			    h->port);
	}
}
