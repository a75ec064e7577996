/* pairindex.h - a hash index of objects keyed by a (local, remote) domain
 * pair, compared as util_domain_equal does. Intrusive: the object embeds a
 * struct pair_index_entry whose local/remote point at its own strings. The
 * hash is seeded at random, as remote peers choose the domains. */
#ifndef DIALBACKD_PAIRINDEX_H
#define DIALBACKD_PAIRINDEX_H

#include <stddef.h>
#include <stdint.h>

struct pair_index_entry {
	struct pair_index_entry	*next;		/* in its bucket */
	const char		*local, *remote;
};

struct pair_index {
	struct pair_index_entry	**buckets;	/* a power of two of them, or NULL */
	size_t			  size, n;
	uint64_t		  seed;
};

/* Adds e (e->local and e->remote set, the pair not yet present). -1 when
 * out of memory, e not added. */
int	pair_index_add(struct pair_index *ix, struct pair_index_entry *e);
void	pair_index_remove(struct pair_index *ix, struct pair_index_entry *e);
struct pair_index_entry *pair_index_find(const struct pair_index *ix, const char *local,
	    const char *remote);
/* Frees the buckets (not the entries); the index is then empty. */
void	pair_index_clear(struct pair_index *ix);

#endif
