/* tls.c - OpenSSL contexts for STARTTLS. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "log.h"
#include "tls.h"
#include "util.h"

struct tls_domain_ctx {
	char *domain;
	SSL_CTX *ctx;
};

struct tls_contexts {
	struct tls_domain_ctx *domains;
	size_t n_domains;
	SSL_CTX *client;
};

static void
ssl_error(char *err, size_t errlen, const char *what, const char *path)
{
	char buf[256];
	unsigned long e = ERR_get_error();

	ERR_error_string_n(e, buf, sizeof(buf));
	snprintf(err, errlen, "%s %s: %s", what, path, e != 0 ? buf : "unknown error");
	ERR_clear_error();
}


static SSL_CTX *
ctx_new(const SSL_METHOD *method, const char *ciphers, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(method);

	if (ctx == NULL) {
		ssl_error(err, errlen, "cannot create", "TLS context");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
	/* Idle connections should not pin 2 x 16 KiB of TLS buffers. */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if (ciphers != NULL && SSL_CTX_set_cipher_list(ctx, ciphers) != 1) {
		ssl_error(err, errlen, "bad [tls] ciphers", ciphers);
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

static SSL_CTX *
server_ctx_new(const struct conf *c, const char *cert, const char *key, char *err, size_t errlen)
{
	SSL_CTX *ctx = ctx_new(TLS_server_method(), c->tls_ciphers, err, errlen);

	if (ctx == NULL)
		return NULL;
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		ssl_error(err, errlen, "cannot load certificate", cert);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		ssl_error(err, errlen, "cannot load key", key);
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		ssl_error(err, errlen, "key does not match certificate", cert);
		goto fail;
	}
	/* Peers' certificates are not asked for: dialback, not PKIX,
	 * authenticates them, and a kept certificate chain costs every
	 * stream a few KB for as long as it lives. */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	/* No resumption: s2s streams live long, and tickets cost a round of
	 * crypto and memory per handshake. */
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	if (SSL_CTX_set_num_tickets(ctx, 0) != 1) {
		ssl_error(err, errlen, "cannot turn off", "session tickets");
		goto fail;
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

struct tls_contexts *
tls_contexts_new(const struct conf *c, char *err, size_t errlen)
{
	struct tls_contexts *t = calloc(1, sizeof(*t));
	size_t i;

	if (t == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (c->n_domains > 0 && (t->domains = calloc(c->n_domains, sizeof(*t->domains))) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (i = 0; i < c->n_domains; i++) {
		const struct conf_domain *d = &c->domains[i];
		const char *cert = d->certificate != NULL ? d->certificate : c->tls_certificate;
		const char *key = d->certificate != NULL ? d->key : c->tls_key;

		if ((t->domains[i].domain = strdup(d->name)) == NULL) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
		t->n_domains = i + 1;
		if (cert == NULL || key == NULL)
			continue;
		if ((t->domains[i].ctx = server_ctx_new(c, cert, key, err, errlen)) == NULL)
			goto fail;
	}
	if ((t->client = ctx_new(TLS_client_method(), c->tls_ciphers, err, errlen)) == NULL)
		goto fail;
	SSL_CTX_set_verify(t->client, SSL_VERIFY_NONE, NULL);
	return t;
fail:
	tls_contexts_free(t);
	return NULL;
}

void
tls_contexts_free(struct tls_contexts *t)
{
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < t->n_domains; i++) {
		free(t->domains[i].domain);
		SSL_CTX_free(t->domains[i].ctx);
	}
	free(t->domains);
	SSL_CTX_free(t->client);
	free(t);
}

SSL_CTX *
tls_server_ctx(struct tls_contexts *t, const char *domain)
{
	size_t i;

	for (i = 0; i < t->n_domains; i++)
		if (util_domain_equal(t->domains[i].domain, domain))
			return t->domains[i].ctx;
	return NULL;
}

SSL_CTX *
tls_client_ctx(struct tls_contexts *t)
{
	return t->client;
}

bool
tls_any_server(const struct tls_contexts *t)
{
	size_t i;

	for (i = 0; i < t->n_domains; i++)
		if (t->domains[i].ctx != NULL)
			return true;
	return false;
}

void
tls_describe(SSL *ssl, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s %s", SSL_get_version(ssl), SSL_get_cipher_name(ssl));
}
