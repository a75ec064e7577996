/* zone.c - size-class slabs for long-lived small objects (see zone.h). */
#include "config.h"

#include <sys/mman.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "zone.h"

#if defined(__SANITIZE_ADDRESS__)
#define ZONE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ZONE_ASAN 1
#endif
#endif

#ifdef ZONE_ASAN
#include <sanitizer/asan_interface.h>
#define ZONE_POISON(p, n)	ASAN_POISON_MEMORY_REGION((p), (n))
#define ZONE_UNPOISON(p, n)	ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define ZONE_POISON(p, n)	((void)(p), (void)(n))
#define ZONE_UNPOISON(p, n)	((void)(p), (void)(n))
#endif

#ifdef HAVE_VALGRIND_MEMCHECK_H
#include <valgrind/memcheck.h>
#define ZONE_VG_ALLOC(p, n)	VALGRIND_MALLOCLIKE_BLOCK((p), (n), 0, 0)
#define ZONE_VG_FREE(p)		VALGRIND_FREELIKE_BLOCK((p), 0)
#define ZONE_VG_OPEN(p, n)	VALGRIND_MAKE_MEM_DEFINED((p), (n))
#define ZONE_VG_CLOSE(p, n)	VALGRIND_MAKE_MEM_NOACCESS((p), (n))
#else
#define ZONE_VG_ALLOC(p, n)	((void)(p), (void)(n))
#define ZONE_VG_FREE(p)		((void)(p))
#define ZONE_VG_OPEN(p, n)	((void)(p), (void)(n))
#define ZONE_VG_CLOSE(p, n)	((void)(p), (void)(n))
#endif

#define ZONE_ALIGN	16
#define ZONE_CLASSES	(ZONE_MAX_SIZE / ZONE_ALIGN)
#define ZONE_SLAB_SIZE	(32u * 1024)
/* Reserved address space, not memory: pages are touched as slabs fill.
 * 256 MiB holds ~80 000 idle streams per process. */
#define ZONE_REGION_SIZE ((size_t)256 << 20)
#define ZONE_SLABS	((int32_t)(ZONE_REGION_SIZE / ZONE_SLAB_SIZE))
#define ZONE_NONE	(-1)

struct zone_slab {
	void		*free;		/* freed slots, linked through their first word */
	uint32_t	 used;		/* live objects */
	uint32_t	 bump;		/* bytes handed out from the slab's start */
	int32_t		 next, prev;	/* its class's list of slabs with room; free-slab stack */
	uint16_t	 cls;		/* size class + 1; 0 = not in use */
};

static struct {
	char		*base;		/* NULL until mapped */
	int		 failed;	/* the region could not be mapped: use malloc */
	int32_t		 fresh;		/* slabs [fresh, ZONE_SLABS) never used */
	int32_t		 released;	/* stack of given-back slabs */
	int32_t		 room[ZONE_CLASSES];	/* per class: slabs with a free slot */
	size_t		 slabs_used, objects, bytes;
	struct zone_slab slab[ZONE_SLABS];
} zone;

static size_t
class_size(unsigned cls)
{
	return ((size_t)cls + 1) * ZONE_ALIGN;
}

static int
zone_map(void)
{
	void *p;
	unsigned i;

	if (zone.base != NULL)
		return 0;
	if (zone.failed)
		return -1;
	p = mmap(NULL, ZONE_REGION_SIZE, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED) {
		zone.failed = 1;	/* e.g. strict overcommit: malloc serves all */
		return -1;
	}
	zone.base = p;
	zone.fresh = 0;
	zone.released = ZONE_NONE;
	for (i = 0; i < ZONE_CLASSES; i++)
		zone.room[i] = ZONE_NONE;
	return 0;
}

int
zone_owns(const void *p)
{
	const char *c = p;

	return zone.base != NULL && c >= zone.base && c < zone.base + ZONE_REGION_SIZE;
}

static int32_t
slab_of(const void *p)
{
	return (int32_t)(((const char *)p - zone.base) / ZONE_SLAB_SIZE);
}

static char *
slab_start(int32_t i)
{
	return zone.base + (size_t)i * ZONE_SLAB_SIZE;
}

static int
slab_has_room(const struct zone_slab *s)
{
	return s->free != NULL || s->bump + class_size(s->cls - 1u) <= ZONE_SLAB_SIZE;
}

static void
room_push(unsigned cls, int32_t i)
{
	struct zone_slab *s = &zone.slab[i];

	s->prev = ZONE_NONE;
	s->next = zone.room[cls];
	if (s->next != ZONE_NONE)
		zone.slab[s->next].prev = i;
	zone.room[cls] = i;
}

static void
room_remove(unsigned cls, int32_t i)
{
	struct zone_slab *s = &zone.slab[i];

	if (s->prev != ZONE_NONE)
		zone.slab[s->prev].next = s->next;
	else
		zone.room[cls] = s->next;
	if (s->next != ZONE_NONE)
		zone.slab[s->next].prev = s->prev;
	s->next = s->prev = ZONE_NONE;
}

/* A slab for class cls, put on its room list; ZONE_NONE when the region is full. */
static int32_t
slab_take(unsigned cls)
{
	int32_t i;

	if (zone.released != ZONE_NONE) {
		i = zone.released;
		zone.released = zone.slab[i].next;
	} else if (zone.fresh < ZONE_SLABS) {
		i = zone.fresh++;
	} else {
		return ZONE_NONE;
	}
	memset(&zone.slab[i], 0, sizeof(zone.slab[i]));
	zone.slab[i].cls = (uint16_t)(cls + 1);
	/* unused slots are off limits to the memory checkers */
	ZONE_POISON(slab_start(i), ZONE_SLAB_SIZE);
	ZONE_VG_CLOSE(slab_start(i), ZONE_SLAB_SIZE);
	room_push(cls, i);
	zone.slabs_used++;
	return i;
}

/* An empty slab goes back to the system; its pages read as zero when reused. */
static void
slab_release(unsigned cls, int32_t i)
{
	struct zone_slab *s = &zone.slab[i];

	room_remove(cls, i);
	/* Failure leaves the pages resident, which is only a cost. */
	(void)madvise(slab_start(i), ZONE_SLAB_SIZE, MADV_DONTNEED);
	s->cls = 0;
	s->free = NULL;
	s->used = s->bump = 0;
	s->next = zone.released;
	zone.released = i;
	zone.slabs_used--;
}

void *
zone_malloc(size_t size)
{
	unsigned cls;
	int32_t i;
	struct zone_slab *s;
	char *p;

	if (size == 0)
		size = 1;
	if (size > ZONE_MAX_SIZE || zone_map() == -1)
		return malloc(size);
	cls = (unsigned)((size - 1) / ZONE_ALIGN);
	if ((i = zone.room[cls]) == ZONE_NONE && (i = slab_take(cls)) == ZONE_NONE)
		return malloc(size);	/* region full */
	s = &zone.slab[i];
	if (s->free != NULL) {
		p = s->free;
		ZONE_UNPOISON(p, sizeof(void *));
		ZONE_VG_OPEN(p, sizeof(void *));
		memcpy(&s->free, p, sizeof(void *));
		ZONE_VG_CLOSE(p, sizeof(void *));
	} else {
		p = slab_start(i) + s->bump;
		s->bump += (uint32_t)class_size(cls);
	}
	s->used++;
	if (!slab_has_room(s))
		room_remove(cls, i);
	zone.objects++;
	zone.bytes += class_size(cls);
	ZONE_UNPOISON(p, size);
	ZONE_VG_ALLOC(p, size);
	return p;
}

void *
zone_calloc(size_t n, size_t size)
{
	void *p;

	if (size != 0 && n > SIZE_MAX / size) {
		errno = ENOMEM;
		return NULL;
	}
	if ((p = zone_malloc(n * size)) != NULL)
		memset(p, 0, n * size);
	return p;
}

void
zone_free(void *p)
{
	int32_t i;
	struct zone_slab *s;
	unsigned cls;
	int had_room;

	if (p == NULL)
		return;
	if (!zone_owns(p)) {
		free(p);
		return;
	}
	i = slab_of(p);
	s = &zone.slab[i];
	cls = s->cls - 1u;
	had_room = slab_has_room(s);
	ZONE_VG_FREE(p);
	ZONE_UNPOISON(p, class_size(cls));
	ZONE_VG_OPEN(p, sizeof(void *));
	memcpy(p, &s->free, sizeof(void *));
	ZONE_VG_CLOSE(p, sizeof(void *));
	ZONE_POISON(p, class_size(cls));
	s->free = p;
	s->used--;
	zone.objects--;
	zone.bytes -= class_size(cls);
	if (!had_room)
		room_push(cls, i);
	/* Keep one slab per class in hand, so an object allocated and freed
	 * in turn does not map and unmap a slab each time. */
	if (s->used == 0 && (zone.room[cls] != i || s->next != ZONE_NONE))
		slab_release(cls, i);
}

void *
zone_realloc(void *p, size_t size)
{
	size_t have;
	void *q;

	if (p == NULL)
		return zone_malloc(size);
	if (!zone_owns(p))
		return realloc(p, size);
	if (size == 0)
		size = 1;
	have = class_size(zone.slab[slab_of(p)].cls - 1u);
	if (size <= have) {
		ZONE_UNPOISON(p, size);
		ZONE_VG_FREE(p);
		ZONE_VG_ALLOC(p, size);
		ZONE_VG_OPEN(p, size);	/* keeps its contents */
		return p;
	}
	if ((q = zone_malloc(size)) == NULL)
		return NULL;
	/* the slot's tail past the size once asked for is copied, unread */
	ZONE_UNPOISON(p, have);
	ZONE_VG_OPEN(p, have);
	memcpy(q, p, have);
	zone_free(p);
	return q;
}

void *
zone_reallocarray(void *p, size_t n, size_t size)
{
	if (size != 0 && n > SIZE_MAX / size) {
		errno = ENOMEM;
		return NULL;
	}
	return zone_realloc(p, n * size);
}

char *
zone_strdup(const char *s)
{
	size_t len = strlen(s) + 1;
	char *d = zone_malloc(len);

	if (d != NULL)
		memcpy(d, s, len);
	return d;
}

void
zone_get_stats(struct zone_stats *st)
{
	st->slabs_used = zone.slabs_used;
	st->objects = zone.objects;
	st->bytes = zone.bytes;
}
