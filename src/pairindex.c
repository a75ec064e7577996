/* pairindex.c - chained hash index over domain pairs (see pairindex.h). */
#include "config.h"

#include <stdlib.h>

#include "pairindex.h"
#include "util.h"

#define PAIR_INDEX_MIN	64

static size_t
bucket_of(const struct pair_index *ix, const char *local, const char *remote, size_t size)
{
	uint64_t h = util_domain_hash(local, ix->seed);

	h = (h ^ '/') * 0x100000001b3ULL;	/* "a"+"bc" and "ab"+"c" differ */
	return (size_t)(util_domain_hash(remote, h) & (size - 1));
}

/* Keeps at most one entry per bucket on average. */
static int
pair_index_grow(struct pair_index *ix)
{
	size_t size = ix->size == 0 ? PAIR_INDEX_MIN : ix->size * 2, i;
	struct pair_index_entry **grown, *e, *next;

	if ((grown = calloc(size, sizeof(*grown))) == NULL)
		return -1;
	if (ix->size == 0 && util_random_bytes(&ix->seed, sizeof(ix->seed)) == -1)
		ix->seed = 0xcbf29ce484222325ULL;	/* still correct, only guessable */
	for (i = 0; i < ix->size; i++) {
		for (e = ix->buckets[i]; e != NULL; e = next) {
			size_t b = bucket_of(ix, e->local, e->remote, size);
			next = e->next;
			e->next = grown[b];
			grown[b] = e;
		}
	}
	free(ix->buckets);
	ix->buckets = grown;
	ix->size = size;
	return 0;
}

int
pair_index_add(struct pair_index *ix, struct pair_index_entry *e)
{
	size_t b;

	/* a failed growth past the first table only lengthens the chains */
	if (ix->n >= ix->size && pair_index_grow(ix) == -1 && ix->size == 0)
		return -1;
	b = bucket_of(ix, e->local, e->remote, ix->size);
	e->next = ix->buckets[b];
	ix->buckets[b] = e;
	ix->n++;
	return 0;
}

void
pair_index_remove(struct pair_index *ix, struct pair_index_entry *e)
{
	struct pair_index_entry **pp;

	if (ix->size == 0)
		return;
	for (pp = &ix->buckets[bucket_of(ix, e->local, e->remote, ix->size)]; *pp != NULL;
	    pp = &(*pp)->next) {
		if (*pp == e) {
			*pp = e->next;
			e->next = NULL;
			ix->n--;
			return;
		}
	}
}

struct pair_index_entry *
pair_index_find(const struct pair_index *ix, const char *local, const char *remote)
{
	struct pair_index_entry *e;

	if (ix->size == 0)
		return NULL;
	for (e = ix->buckets[bucket_of(ix, local, remote, ix->size)]; e != NULL; e = e->next)
		if (util_domain_equal(e->remote, remote) && util_domain_equal(e->local, local))
			return e;
	return NULL;
}

void
pair_index_clear(struct pair_index *ix)
{
	free(ix->buckets);
	ix->buckets = NULL;
	ix->size = ix->n = 0;
}
