/* test_zone.c - the small-object zone: slots, reuse, growth past the zone,
 * empty slabs given back, and a bounded random workload checked byte by byte. */
#include "config.h"

#include <sys/mman.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_main.h"
#include "zone.h"

#define SLAB_BYTES (32 * 1024)	/* zone.c's slab size */

static void
test_zone_small_and_large(void)
{
	char *a = zone_malloc(10), *b = zone_malloc(10), *big = zone_malloc(ZONE_MAX_SIZE + 1);
	char *edge = zone_malloc(ZONE_MAX_SIZE);

	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_PTR_NOT_NULL_FATAL(big);
	CU_ASSERT_PTR_NOT_NULL_FATAL(edge);
	CU_ASSERT(zone_owns(a) && zone_owns(b) && zone_owns(edge));
	CU_ASSERT(!zone_owns(big));
	CU_ASSERT_EQUAL((uintptr_t)a % 16, 0);
	CU_ASSERT_EQUAL((uintptr_t)edge % 16, 0);
	CU_ASSERT(a + 16 <= b || b + 16 <= a);	/* one 16-byte class, no overlap */
	memset(a, 'a', 10);
	memset(b, 'b', 10);
	memset(edge, 'e', ZONE_MAX_SIZE);
	memset(big, 'g', ZONE_MAX_SIZE + 1);
	CU_ASSERT(a[9] == 'a' && b[0] == 'b');
	zone_free(a);
	zone_free(b);
	zone_free(edge);
	zone_free(big);		/* malloc'd: handed to free() */
	zone_free(NULL);
	CU_ASSERT(!zone_owns(NULL));
	CU_ASSERT(!zone_owns(&a));
}

static void
test_zone_reuse_and_calloc(void)
{
	struct zone_stats before, after;
	char *a, *b;
	size_t i;
	int zero = 1;

	zone_get_stats(&before);
	a = zone_malloc(200);
	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	memset(a, 0xff, 200);
	zone_free(a);
	/* the slot just freed is the next one handed out, zeroed by calloc */
	b = zone_calloc(25, 8);
	CU_ASSERT_PTR_EQUAL(b, a);
	for (i = 0; i < 200; i++)
		zero &= b[i] == 0;
	CU_ASSERT(zero);
	zone_get_stats(&after);
	CU_ASSERT_EQUAL(after.objects, before.objects + 1);
	CU_ASSERT_EQUAL(after.bytes, before.bytes + 208);
	zone_free(b);
	zone_get_stats(&after);
	CU_ASSERT_EQUAL(after.objects, before.objects);
	CU_ASSERT_PTR_NULL(zone_calloc(SIZE_MAX / 2, 4));
	CU_ASSERT_PTR_NULL(zone_reallocarray(NULL, SIZE_MAX / 2, 4));
}

static void
test_zone_realloc_moves_and_leaves(void)
{
	char *p = zone_strdup("dialback"), *q;

	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT_STRING_EQUAL(p, "dialback");
	q = zone_realloc(p, 12);	/* fits the 16-byte slot: stays */
	CU_ASSERT_PTR_EQUAL(q, p);
	q = zone_realloc(q, 500);	/* another class: moves, contents kept */
	CU_ASSERT_PTR_NOT_NULL_FATAL(q);
	CU_ASSERT(zone_owns(q));
	CU_ASSERT_STRING_EQUAL(q, "dialback");
	memset(q + 9, 'x', 490);
	q = zone_realloc(q, 5000);	/* too big for the zone: malloc'd */
	CU_ASSERT_PTR_NOT_NULL_FATAL(q);
	CU_ASSERT(!zone_owns(q));
	CU_ASSERT_STRING_EQUAL(q, "dialback");
	CU_ASSERT(q[9] == 'x' && q[498] == 'x');
	q = zone_realloc(q, 6000);	/* stays with malloc */
	CU_ASSERT_PTR_NOT_NULL_FATAL(q);
	CU_ASSERT(!zone_owns(q));
	CU_ASSERT_STRING_EQUAL(q, "dialback");
	zone_free(q);
}

static int
page_resident(void *p)
{
	unsigned char v = 0;
	long pg = sysconf(_SC_PAGESIZE);
	void *page = (void *)((uintptr_t)p & ~((uintptr_t)pg - 1));

	if (mincore(page, (size_t)pg, &v) != 0)
		return -1;
	return v & 1;
}

/* Three slabs of one class filled, then emptied: two go back to the
 * system (their pages no longer resident), one stays for the next object. */
static void
test_zone_empty_slabs_released(void)
{
	enum { SIZE = 512, PER_SLAB = SLAB_BYTES / SIZE, N = 3 * PER_SLAB };
	static char *obj[N];
	struct zone_stats base, full, empty;
	size_t i;
	int released = 0;

	zone_get_stats(&base);
	for (i = 0; i < N; i++) {
		obj[i] = zone_malloc(SIZE - 8);
		CU_ASSERT_PTR_NOT_NULL_FATAL(obj[i]);
		memset(obj[i], (int)i, SIZE - 8);
	}
	zone_get_stats(&full);
	CU_ASSERT(full.slabs_used >= base.slabs_used + 2);
	CU_ASSERT(full.slabs_used <= base.slabs_used + 3);
	for (i = 0; i < N; i++) {
		CU_ASSERT_EQUAL((unsigned char)obj[i][SIZE - 9], (unsigned char)i);
		zone_free(obj[i]);
	}
	zone_get_stats(&empty);
	CU_ASSERT_EQUAL(empty.objects, base.objects);
	CU_ASSERT(empty.slabs_used <= base.slabs_used + 1);
	for (i = 0; i < N; i += PER_SLAB)
		released += page_resident(obj[i]) == 0;
	CU_ASSERT(released >= 2);
}

/* Random sizes allocated, grown and freed (bounded: 200000 steps); every
 * object carries a pattern that must survive until it is freed. */
static void
test_zone_random_workload(void)
{
	enum { SLOTS = 4096, STEPS = 200000 };
	static unsigned char *obj[SLOTS];
	static size_t len[SLOTS];
	struct zone_stats base, st;
	unsigned seed = 12345;
	size_t i, live = 0, bad = 0, k, n;

	zone_get_stats(&base);
	for (i = 0; i < STEPS; i++) {
		k = (size_t)rand_r(&seed) % SLOTS;
		if (obj[k] != NULL) {
			for (n = 0; n < len[k]; n++)
				bad += obj[k][n] != (unsigned char)(k + n);
			if (rand_r(&seed) % 4 == 0) {	/* grow it */
				size_t grown = len[k] + (size_t)rand_r(&seed) % 600;
				unsigned char *q = zone_realloc(obj[k], grown);
				CU_ASSERT_PTR_NOT_NULL_FATAL(q);
				for (n = len[k]; n < grown; n++)
					q[n] = (unsigned char)(k + n);
				obj[k] = q;
				len[k] = grown;
				continue;
			}
			zone_free(obj[k]);
			obj[k] = NULL;
			live--;
			continue;
		}
		len[k] = 1 + (size_t)rand_r(&seed) % (ZONE_MAX_SIZE + 200);
		obj[k] = zone_malloc(len[k]);
		CU_ASSERT_PTR_NOT_NULL_FATAL(obj[k]);
		for (n = 0; n < len[k]; n++)
			obj[k][n] = (unsigned char)(k + n);
		live++;
	}
	CU_ASSERT_EQUAL(bad, 0);
	for (k = 0; k < SLOTS; k++) {
		zone_free(obj[k]);
		obj[k] = NULL;
	}
	zone_get_stats(&st);
	CU_ASSERT_EQUAL(st.objects, base.objects);
	CU_ASSERT_EQUAL(st.bytes, base.bytes);
	CU_ASSERT(live > 0);
}

int
test_register(void)
{
	CU_pSuite s = CU_add_suite("zone", NULL, NULL);

	if (s == NULL)
		return CU_get_error();
	TEST_ADD(s, test_zone_small_and_large);
	TEST_ADD(s, test_zone_reuse_and_calloc);
	TEST_ADD(s, test_zone_realloc_moves_and_leaves);
	TEST_ADD(s, test_zone_empty_slabs_released);
	TEST_ADD(s, test_zone_random_workload);
	return CUE_SUCCESS;
}
