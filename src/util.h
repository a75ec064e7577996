/* util.h - small helpers shared by every module: bounded strings, a growable
 * byte buffer, number/size/duration parsing, randomness, hex. */
#ifndef DIALBACKD_UTIL_H
#define DIALBACKD_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Longest domain name we accept (RFC 6120 §3.2: domainpart <= 1023 bytes). */
#define DOMAIN_MAX 1023

/* Copies at most size-1 bytes and NUL-terminates; returns strlen(src)
 * (truncation when >= size), like BSD strlcpy. */
size_t util_strlcpy(char *dst, const char *src, size_t size);

/* A growable byte buffer with a hard limit. Always NUL-terminated. */
struct strbuf {
	char *data;	/* NULL until the first append */
	size_t len;	/* bytes used, excluding the NUL */
	size_t cap;	/* bytes allocated */
	size_t max;	/* refuse to grow beyond this (0 = SIZE_MAX) */
};
void strbuf_init(struct strbuf *sb, size_t max);
/* 0 on success, -1 when out of memory or over sb->max (contents unchanged). */
int strbuf_append(struct strbuf *sb, const char *data, size_t len);
int strbuf_appends(struct strbuf *sb, const char *s);
int strbuf_printf(struct strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void strbuf_reset(struct strbuf *sb);
void strbuf_free(struct strbuf *sb);
/* Hands the buffer to the caller (free() it); sb is reset. */
char *strbuf_steal(struct strbuf *sb, size_t *len);

/* "64M", "1G", "4096", "512K" -> bytes. 0 on success, -1 on bad syntax/overflow. */
int util_parse_size(const char *s, uint64_t *out);
/* "30", "30s", "5m", "2h", "1d" -> seconds. 0 on success. */
int util_parse_duration(const char *s, unsigned *out);
/* Decimal unsigned in [min, max]. 0 on success. */
int util_parse_uint(const char *s, unsigned long min, unsigned long max, unsigned long *out);
/* "yes/no/true/false/on/off/1/0". 0 on success. */
int util_parse_bool(const char *s, bool *out);
/* "127.0.0.1:5269", "[::1]:5269", "*:5269", "5269" (all addresses) -> sockaddr.
 * default_port applies when no port is given. 0 on success. */
int util_parse_listen(const char *s, uint16_t default_port,
    struct sockaddr_storage *ss, socklen_t *sslen);
/* "host:port", "[v6]:port" or "host" -> host copied into host (size hostlen)
 * and port (default_port when absent). 0 on success. */
int util_parse_hostport(const char *s, uint16_t default_port, char *host,
    size_t hostlen, uint16_t *port);
/* Formats an address as "1.2.3.4:5" or "[::1]:5". */
void util_format_addr(const struct sockaddr *sa, char *out, size_t outlen);

/* Fills buf from the kernel CSPRNG. 0 on success, -1 (errno set) otherwise. */
int util_random_bytes(void *buf, size_t n);
/* Lowercase hex of n bytes into out (2n+1 bytes). */
void util_hex(const unsigned char *in, size_t n, char *out);
/* Overwrites memory in a way the compiler cannot elide. */
void util_wipe(void *p, size_t n);

/* Lower-case ASCII domain comparison (domains are compared case-insensitively
 * in ASCII; IDNA forms arrive already in A-label form on the wire). */
bool util_domain_equal(const char *a, const char *b);
/* The order that goes with it (<0, 0, >0), for sorting and bsearch. */
int util_domain_cmp(const char *a, const char *b);
/* Continues hash h over d so that domains equal by util_domain_equal hash
 * alike; start from a random seed where peers choose the domains. */
uint64_t util_domain_hash(const char *d, uint64_t h);
/* A syntactically acceptable domainpart for s2s: 1..DOMAIN_MAX bytes, labels
 * of [A-Za-z0-9-_] or non-ASCII UTF-8, no empty label, no trailing dot. */
bool util_domain_valid(const char *d);

/* The domainpart of a JID ("user@dom/res" -> "dom"), into out. 0 on
 * success, -1 when empty or longer than outlen-1. */
int util_jid_domain(const char *jid, char *out, size_t outlen);

/* Monotonic milliseconds. */
uint64_t util_now_mono_ms(void);

#endif
