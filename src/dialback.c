/* dialback.c - XEP-0185 keys and the XEP-0114 handshake digest. */
#include "config.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "dialback.h"
#include "util.h"

int
dialback_secret_digest(const void *secret, size_t len, char out[DIALBACK_SECRET_HEX + 1])
{
	unsigned char md[SHA256_DIGEST_LENGTH];

	if (SHA256(secret, len, md) == NULL)
		return -1;
	util_hex(md, sizeof(md), out);
	util_wipe(md, sizeof(md));
	return 0;
}

int
dialback_key(const char secret_digest[DIALBACK_SECRET_HEX + 1],
    const char *receiving, const char *originating, const char *stream_id,
    char out[DIALBACK_KEY_HEX + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	size_t rl = strlen(receiving), ol = strlen(originating), il = strlen(stream_id);
	struct strbuf msg;
	int rc = -1;

	if (rl == 0 || ol == 0 || il == 0 || strlen(secret_digest) != DIALBACK_SECRET_HEX)
		return -1;
	/* The message is "receiving SP originating SP stream-id" (XEP-0185 §2). */
	strbuf_init(&msg, 3 * 2048);
	if (strbuf_append(&msg, receiving, rl) == -1 || strbuf_append(&msg, " ", 1) == -1 ||
	    strbuf_append(&msg, originating, ol) == -1 || strbuf_append(&msg, " ", 1) == -1 ||
	    strbuf_append(&msg, stream_id, il) == -1)
		goto out;
	/* The HMAC key is the hex text of SHA256(secret), not the raw digest. */
	if (HMAC(EVP_sha256(), secret_digest, DIALBACK_SECRET_HEX,
	    (const unsigned char *)msg.data, msg.len, md, &mdlen) == NULL ||
	    mdlen != SHA256_DIGEST_LENGTH)
		goto out;
	util_hex(md, mdlen, out);
	rc = 0;
out:
	strbuf_free(&msg);
	return rc;
}

bool
dialback_key_equal(const char *a, size_t alen, const char *b, size_t blen)
{
	/* The length of a key is public (64 hex chars for XEP-0185); only the
	 * content must not leak through timing, so compare it in constant time. */
	if (alen != blen || alen == 0 || alen > DIALBACK_KEY_MAX)
		return false;
	return CRYPTO_memcmp(a, b, alen) == 0;
}

int
dialback_stream_id(char out[STREAM_ID_HEX + 1])
{
	unsigned char raw[STREAM_ID_HEX / 2];

	if (util_random_bytes(raw, sizeof(raw)) == -1)
		return -1;
	util_hex(raw, sizeof(raw), out);
	return 0;
}

int
component_handshake_digest(const char *stream_id, const char *secret,
    char out[HANDSHAKE_HEX + 1])
{
	unsigned char md[SHA_DIGEST_LENGTH];
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int rc = -1;

	if (ctx == NULL)
		return -1;
	if (EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) == 1 &&
	    EVP_DigestUpdate(ctx, stream_id, strlen(stream_id)) == 1 &&
	    EVP_DigestUpdate(ctx, secret, strlen(secret)) == 1 &&
	    EVP_DigestFinal_ex(ctx, md, NULL) == 1) {
		util_hex(md, sizeof(md), out);
		rc = 0;
	}
	EVP_MD_CTX_free(ctx);
	return rc;
}

bool
component_handshake_check(const char *stream_id, const char *secret,
    const char *given, size_t given_len)
{
	char want[HANDSHAKE_HEX + 1], low[HANDSHAKE_HEX];
	size_t i;
	bool ok;

	dialback_trim(&given, &given_len);
	if (given_len != HANDSHAKE_HEX)
		return false;
	if (component_handshake_digest(stream_id, secret, want) == -1)
		return false;
	for (i = 0; i < HANDSHAKE_HEX; i++) {
		char c = given[i];
		low[i] = (c >= 'A' && c <= 'F') ? (char)(c - 'A' + 'a') : c;
	}
	ok = CRYPTO_memcmp(want, low, HANDSHAKE_HEX) == 0;
	util_wipe(want, sizeof(want));
	return ok;
}

void
dialback_trim(const char **text, size_t *len)
{
	const char *s = *text;
	size_t n = *len;

	while (n > 0 && (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')) {
		s++;
		n--;
	}
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
		n--;
	*text = s;
	*len = n;
}
