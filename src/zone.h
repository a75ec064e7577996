/* zone.h - a small-object allocator for state that lives as long as a
 * stream.
 *
 * Why: an idle stream keeps ~3 KB of small objects (the connection, its
 * libevent bufferevent and events, the stream's header copy, its domain
 * strings) but its handshake allocates and frees ten times that (expat's
 * parser, read buffers, the dialback verify connection, OpenSSL's
 * handshake). In one malloc heap the long-lived objects land in the holes
 * the transients leave, so every idle stream pins several pages that are
 * mostly free: RSS per idle stream was ~5x the bytes in use. The zone keeps
 * the long-lived objects apart, packed by size class in their own slabs,
 * so the heap the transients use can be trimmed back to the system.
 *
 * Objects up to ZONE_MAX_SIZE bytes come from 32 KiB slabs carved out of
 * one reserved (not committed) region; a slab whose objects are all freed
 * is given back with madvise. Larger requests, and every request once the
 * region is full or could not be mapped, go to malloc. zone_free() and
 * zone_realloc() accept pointers from either, so a free that goes through
 * the zone is always safe; a zone pointer must never reach free().
 *
 * Single-threaded: each process (master, every worker) has its own zone.
 * Under AddressSanitizer free and unused slots are poisoned, and under
 * valgrind the slots are reported as heap blocks, so both tools see zone
 * objects as they see malloc's. */
#ifndef DIALBACKD_ZONE_H
#define DIALBACKD_ZONE_H

#include <stddef.h>

/* Larger requests are passed to malloc. libevent's buffer chains start at
 * 1024 bytes and are short-lived, so they stay out of the zone. */
#define ZONE_MAX_SIZE 1008

void	*zone_malloc(size_t size);
void	*zone_calloc(size_t n, size_t size);
void	*zone_realloc(void *p, size_t size);
void	*zone_reallocarray(void *p, size_t n, size_t size);
void	 zone_free(void *p);
char	*zone_strdup(const char *s);

/* 1 when p was handed out by the zone (not by malloc). */
int	 zone_owns(const void *p);

struct zone_stats {
	size_t	slabs_used;	/* slabs holding at least one object */
	size_t	objects;	/* live zone objects */
	size_t	bytes;		/* their size-class bytes */
};
void	 zone_get_stats(struct zone_stats *st);

#endif
