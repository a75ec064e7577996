/* secret.h - the dialback secret file: read it, or create it 0600 from the
 * CSPRNG. The secret never leaves this process except as its SHA-256 digest
 * (the XEP-0185 HMAC key) and is never logged. */
#ifndef DIALBACKD_SECRET_H
#define DIALBACKD_SECRET_H

#include <stdbool.h>
#include <sys/types.h>

#include "dialback.h"

/* Loads path (creating it with 32 random bytes as hex, mode 0600, when
 * absent and create is true) and stores SHA256(secret) as hex in digest.
 * Refuses a file readable or writable by group/other, or owned by a user
 * other than owner (owner (uid_t)-1: not checked). 0 on success, else -1
 * with a message in err. */
int secret_load(const char *path, bool create, uid_t owner,
    char digest[DIALBACK_SECRET_HEX + 1], char *err, size_t errlen);

#endif
