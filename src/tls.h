/* tls.h - OpenSSL contexts: one server context per hosted domain that has
 * a certificate (chosen by the stream's 'to', RFC 6120 §5.4.3.1), and one
 * client context for outbound STARTTLS. Dialback authenticates the peer, so
 * peer certificates are requested but not required to chain (self-signed
 * certificates are common in federation). */
#ifndef DIALBACKD_TLS_H
#define DIALBACKD_TLS_H

#include <stdbool.h>
#include <openssl/ssl.h>

#include "conf.h"

struct tls_contexts;

/* Loads every certificate of the config. NULL and err on failure. */
struct tls_contexts *tls_contexts_new(const struct conf *c, char *err, size_t errlen);
void tls_contexts_free(struct tls_contexts *t);
/* Server context for a hosted domain, or NULL when it has no certificate. */
SSL_CTX *tls_server_ctx(struct tls_contexts *t, const char *domain);
SSL_CTX *tls_client_ctx(struct tls_contexts *t);
/* True when at least one domain can offer STARTTLS. */
bool tls_any_server(const struct tls_contexts *t);
/* "TLSv1.3 TLS_AES_256_GCM_SHA384" for logs. */
void tls_describe(SSL *ssl, char *out, size_t outlen);

#endif
