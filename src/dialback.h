/* dialback.h - Server Dialback key arithmetic (XEP-0185) and the component
 * handshake digest (XEP-0114). Pure functions, no I/O: unit-tested against
 * the XEPs' vectors. */
#ifndef DIALBACKD_DIALBACK_H
#define DIALBACKD_DIALBACK_H

#include <stdbool.h>
#include <stddef.h>

#define DIALBACK_KEY_HEX	64	/* hex chars of an HMAC-SHA256 key */
#define DIALBACK_KEY_MAX	1024	/* longest key text we accept from a peer */
#define DIALBACK_SECRET_HEX	64	/* hex chars of SHA256(secret) */
#define STREAM_ID_HEX		32	/* 128 random bits */
#define HANDSHAKE_HEX		40	/* hex chars of a SHA-1 digest */

/* The HMAC key of XEP-0185: lowercase hex SHA256(secret) (64 chars + NUL). */
int dialback_secret_digest(const void *secret, size_t len,
    char out[DIALBACK_SECRET_HEX + 1]);

/* key = hex(HMAC-SHA256(secret_digest, receiving ' ' originating ' ' id)).
 * 0 on success, -1 on failure (bad input or crypto error). */
int dialback_key(const char secret_digest[DIALBACK_SECRET_HEX + 1],
    const char *receiving, const char *originating, const char *stream_id,
    char out[DIALBACK_KEY_HEX + 1]);

/* Constant-time comparison of key texts; lengths may differ (then false,
 * still without an early exit on content). Leading/trailing XML whitespace
 * of the peer's text must be trimmed by the caller. */
bool dialback_key_equal(const char *a, size_t alen, const char *b, size_t blen);

/* A fresh unpredictable, non-repeating stream id: 128 bits as hex. */
int dialback_stream_id(char out[STREAM_ID_HEX + 1]);

/* XEP-0114: hex(lowercase(SHA1(stream_id || secret))). */
int component_handshake_digest(const char *stream_id, const char *secret,
    char out[HANDSHAKE_HEX + 1]);
/* Checks a component's <handshake/> text (case-insensitive hex, constant time). */
bool component_handshake_check(const char *stream_id, const char *secret,
    const char *given, size_t given_len);

/* Trims XML whitespace (SP, TAB, CR, LF) from both ends of text in place of
 * a pointer/length pair. */
void dialback_trim(const char **text, size_t *len);

#endif
