/* iplimit.h - per-address limits on inbound connections, checked at accept
 * (before any TLS or XML work): concurrent streams and new connections per
 * second (token bucket). Kept per worker; the kernel spreads one address's
 * connections across workers, so each worker enforces its share. */
#ifndef DIALBACKD_IPLIMIT_H
#define DIALBACKD_IPLIMIT_H

#include <stdbool.h>
#include <sys/socket.h>

struct iplimit_key {
	unsigned char addr[16];		/* IPv4 as v4-mapped IPv6 */
};

void iplimit_key_from(const struct sockaddr *sa, struct iplimit_key *k);
/* May a new connection from k be accepted? Counts it when yes.
 * *why gets a reason when no. */
bool iplimit_admit(const struct iplimit_key *k, unsigned max_streams,
    unsigned max_new_per_sec, const char **why);
/* The connection counted by iplimit_admit has closed. */
void iplimit_release(const struct iplimit_key *k);

#endif
