/* component.h - local services attached over XEP-0114
 * (jabber:component:accept): handshake against the domain's
 * component_secret, one live component per domain (a second gets
 * <conflict/>), and 'from' checked against the component's domain. */
#ifndef DIALBACKD_COMPONENT_H
#define DIALBACKD_COMPONENT_H

#include <stddef.h>
#include <sys/socket.h>

struct worker;

int component_accept(struct worker *w, int fd, const struct sockaddr *sa);
/* Writes a serialized stanza to this worker's component for domain.
 * -1 when this worker has none. */
int component_write(struct worker *w, const char *domain, const char *data, size_t len);
/* After a reload: close components whose domain (or secret) is gone. */
void component_reconfigure(struct worker *w);
/* Closes every component stream (graceful stop). */
void component_shutdown(struct worker *w);

#endif
