/* test_store.c - the LMDB store: every call round-trips, the dialback key
 * verdicts, the queue's order, limit and atomic route claim, several
 * processes at once, a reader killed mid-transaction, a full map. */
#include "config.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store.h"
#include "test_main.h"
#include "util.h"

#define NOW	((time_t)1700000000)
#define KEY1	"4f1c0a55e2d9b8a7c6f5e4d3c2b1a09f8e7d6c5b4a3928170615f4e3d2c1b0a9"
#define KEY2	"0000000000000000000000000000000000000000000000000000000000000000"

/* A fresh store directory under the test tmpdir. */
static const char *
store_dir(const char *name)
{
	static char path[4096];

	snprintf(path, sizeof(path), "%s/%s", test_tmpdir(), name);
	return path;
}

static struct store *
open_rw(const char *name, uint64_t map_size)
{
	char err[512];
	struct store *st = store_open(store_dir(name), map_size, STORE_NOSYNC, 32,
	    err, sizeof(err));

	if (st == NULL)
		fprintf(stderr, "store_open: %s\n", err);
	return st;
}

static void
make_key(struct store_key *k, const char *orig, const char *recv,
    const char *id, const char *text, time_t issued, time_t expires, int slot)
{
	memset(k, 0, sizeof(*k));
	snprintf(k->originating, sizeof(k->originating), "%s", orig);
	snprintf(k->receiving, sizeof(k->receiving), "%s", recv);
	snprintf(k->stream_id, sizeof(k->stream_id), "%s", id);
	snprintf(k->key, sizeof(k->key), "%s", text);
	k->issued = issued;
	k->expires = expires;
	k->owner.slot = slot;
	k->owner.pid = 1000 + slot;
}

static int
count_key(const struct store_key *k, void *ctx)
{
	(*(size_t *)ctx)++;
	return 0;
}

/* A domain of n bytes: "aaa...a.example" style, no control bytes. */
static char *
long_domain(char c, size_t n)
{
	char *d = malloc(n + 1);

	if (d == NULL)
		abort();
	memset(d, c, n);
	d[n] = '\0';
	return d;
}

/* ---- open ------------------------------------------------------------------ */

static void
test_open(void)
{
	char err[512], path[4200];
	struct store *st;
	struct stat sb;
	struct store_key k;

	st = open_rw("open", 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	CU_ASSERT_STRING_EQUAL(store_path(st), store_dir("open"));
	CU_ASSERT_EQUAL(stat(store_dir("open"), &sb), 0);
	CU_ASSERT_EQUAL(sb.st_mode & 0777, 0700);
	store_close(st);

	/* read-only: works on an initialised store, refuses writes */
	st = store_open(store_dir("open"), 0, STORE_RDONLY, 0, err, sizeof(err));
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	make_key(&k, "a.example", "b.example", "id1", KEY1, NOW, NOW + 60, 0);
	CU_ASSERT_EQUAL(store_key_put(st, &k), STORE_ERROR);
	store_close(st);

	/* missing store: a clear message naming the path */
	st = store_open(store_dir("missing"), 0, STORE_RDONLY, 0, err, sizeof(err));
	CU_ASSERT_PTR_NULL(st);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, store_dir("missing")));
	CU_ASSERT_EQUAL(stat(store_dir("missing"), &sb), -1);
	st = store_open(store_dir("missing"), 0, STORE_NOCREATE, 0, err, sizeof(err));
	CU_ASSERT_PTR_NULL(st);
	CU_ASSERT_EQUAL(stat(store_dir("missing"), &sb), -1);

	/* a directory without data.mdb */
	CU_ASSERT_EQUAL(mkdir(store_dir("empty"), 0700), 0);
	st = store_open(store_dir("empty"), 0, STORE_RDONLY, 0, err, sizeof(err));
	CU_ASSERT_PTR_NULL(st);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "no store"));

	/* a file, not a directory */
	snprintf(path, sizeof(path), "%s/afile", test_tmpdir());
	free(test_write_file(test_tmpdir(), "afile", "x\n"));
	st = store_open(path, 0, 0, 0, err, sizeof(err));
	CU_ASSERT_PTR_NULL(st);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "not a directory"));

	CU_ASSERT_STRING_EQUAL(store_strerror(STORE_FULL), "store full");
	CU_ASSERT_STRING_EQUAL(store_strerror(STORE_OK), "ok");
}

/* ---- keys ------------------------------------------------------------------ */

static void
test_keys(void)
{
	struct store *st = open_rw("keys", 0);
	struct store_key k;
	struct store_owner issuer;
	enum store_key_verdict v;
	size_t n = 0, purged = 99;

	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	make_key(&k, "a.example", "b.example", "id1", KEY1, NOW, NOW + 300, 2);
	CU_ASSERT_EQUAL(store_key_put(st, &k), STORE_OK);
	make_key(&k, "a.example", "b.example", "id2", KEY1, NOW - 600, NOW - 300, 1);
	CU_ASSERT_EQUAL(store_key_put(st, &k), STORE_OK);
	make_key(&k, "a.example", "c.example", "id1", KEY2, NOW, NOW + 10, 3);
	CU_ASSERT_EQUAL(store_key_put(st, &k), STORE_OK);

	CU_ASSERT_EQUAL(store_key_check(st, "a.example", "b.example", "id1",
	    KEY1, strlen(KEY1), NOW, &v, &issuer), STORE_OK);
	CU_ASSERT_EQUAL(v, KEY_VALID);
	CU_ASSERT_EQUAL(issuer.slot, 2);
	CU_ASSERT_EQUAL(issuer.pid, 1002);
	/* same length, different text */
	CU_ASSERT_EQUAL(store_key_check(st, "a.example", "b.example", "id1",
	    KEY2, strlen(KEY2), NOW, &v, NULL), STORE_OK);
	CU_ASSERT_EQUAL(v, KEY_MISMATCH);
	/* a prefix of the right key */
	CU_ASSERT_EQUAL(store_key_check(st, "a.example", "b.example", "id1",
	    KEY1, 10, NOW, &v, NULL), STORE_OK);
	CU_ASSERT_EQUAL(v, KEY_MISMATCH);
	/* unknown stream id, unknown pair, the domains swapped */
	CU_ASSERT_EQUAL(store_key_check(st, "a.example", "b.example", "id9",
	    KEY1, strlen(KEY1), NOW, &v, NULL), STORE_OK);
	CU_ASSERT_EQUAL(v, KEY_UNKNOWN);
	CU_ASSERT_EQUAL(store_key_check(st, "b.example", "a.example", "id1",
	    KEY1, strlen(KEY1), NOW, &v, NULL), STORE_OK);
	CU_ASSERT_EQUAL(v, KEY_UNKNOWN);
	/* expired, even with the right text; expiry is at expires itself */
	CU_ASSERT_EQUAL(store_key_check(st, "a.example", "b.example", "id2",
	    KEY1, strlen(KEY1), NOW, &v, NULL), STORE_OK);
	CU_ASSERT_EQUAL(v, KEY_EXPIRED);
	CU_ASSERT_EQUAL(store_key_check(st, "a.example", "c.example", "id1",
	    KEY2, strlen(KEY2), NOW + 9, &v, NULL), STORE_OK);
	CU_ASSERT_EQUAL(v, KEY_VALID);
	CU_ASSERT_EQUAL(store_key_check(st, "a.example", "c.example", "id1",
	    KEY2, strlen(KEY2), NOW + 10, &v, NULL), STORE_OK);
	CU_ASSERT_EQUAL(v, KEY_EXPIRED);

	CU_ASSERT_EQUAL(store_keys_foreach(st, count_key, &n), STORE_OK);
	CU_ASSERT_EQUAL(n, 3);

	/* purge: only expires <= now */
	CU_ASSERT_EQUAL(store_keys_purge(st, NOW, &purged), STORE_OK);
	CU_ASSERT_EQUAL(purged, 1);
	n = 0;
	CU_ASSERT_EQUAL(store_keys_foreach(st, count_key, &n), STORE_OK);
	CU_ASSERT_EQUAL(n, 2);
	CU_ASSERT_EQUAL(store_keys_purge(st, NOW + 10, &purged), STORE_OK);
	CU_ASSERT_EQUAL(purged, 1);

	CU_ASSERT_EQUAL(store_key_delete(st, "a.example", "b.example", "id1"),
	    STORE_OK);
	CU_ASSERT_EQUAL(store_key_delete(st, "a.example", "b.example", "id1"),
	    STORE_NOTFOUND);
	CU_ASSERT_EQUAL(store_key_check(st, "a.example", "b.example", "id1",
	    KEY1, strlen(KEY1), NOW, &v, NULL), STORE_OK);
	CU_ASSERT_EQUAL(v, KEY_UNKNOWN);
	store_close(st);
}

/* Purge deleting while walking must not skip records across pages. */
static void
test_keys_purge_many(void)
{
	struct store *st = open_rw("purge", 0);
	struct store_key k;
	char id[32];
	size_t i, n = 0, purged = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	for (i = 0; i < 2000; i++) {
		snprintf(id, sizeof(id), "id%05zu", i);
		make_key(&k, "a.example", "b.example", id, KEY1, NOW,
		    i % 3 == 0 ? NOW + 100 : NOW - 1, 0);
		CU_ASSERT_EQUAL_FATAL(store_key_put(st, &k), STORE_OK);
	}
	CU_ASSERT_EQUAL(store_keys_purge(st, NOW, &purged), STORE_OK);
	CU_ASSERT_EQUAL(purged, 2000 - 667);
	CU_ASSERT_EQUAL(store_keys_foreach(st, count_key, &n), STORE_OK);
	CU_ASSERT_EQUAL(n, 667);
	store_close(st);
}

struct find_key {
	const char	*orig;
	bool		 found;
	size_t		 origlen;
};

static int
find_key_cb(const struct store_key *k, void *ctx)
{
	struct find_key *fk = ctx;

	if (strcmp(k->originating, fk->orig) == 0) {
		fk->found = true;
		fk->origlen = strlen(k->originating);
	}
	return 0;
}

/* Tuples beyond LMDB's 511-byte key limit, and inputs that do not fit. */
static void
test_keys_long(void)
{
	struct store *st = open_rw("long", 0);
	struct store_key k;
	struct find_key fk;
	enum store_key_verdict v;
	char *d1 = long_domain('x', 1023), *d2 = long_domain('y', 1023);
	char id[256];

	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	memset(id, 'i', 255);
	id[255] = '\0';
	make_key(&k, d1, d2, id, KEY1, NOW, NOW + 60, 0);
	CU_ASSERT_EQUAL(store_key_put(st, &k), STORE_OK);
	CU_ASSERT_EQUAL(store_key_check(st, d1, d2, id, KEY1, strlen(KEY1), NOW,
	    &v, NULL), STORE_OK);
	CU_ASSERT_EQUAL(v, KEY_VALID);
	CU_ASSERT_EQUAL(store_key_check(st, d1, d2, "short", KEY1, strlen(KEY1),
	    NOW, &v, NULL), STORE_OK);
	CU_ASSERT_EQUAL(v, KEY_UNKNOWN);
	fk.orig = d1;
	fk.found = false;
	CU_ASSERT_EQUAL(store_keys_foreach(st, find_key_cb, &fk), STORE_OK);
	CU_ASSERT(fk.found);
	CU_ASSERT_EQUAL(fk.origlen, 1023);

	/* not NUL-terminated within the field: rejected, not truncated */
	memset(k.originating, 'z', sizeof(k.originating));
	CU_ASSERT_EQUAL(store_key_put(st, &k), STORE_ERROR);
	make_key(&k, "a.example", "b.example", "id", KEY1, NOW, NOW + 60, 0);
	memset(k.key, 'f', sizeof(k.key));
	CU_ASSERT_EQUAL(store_key_put(st, &k), STORE_ERROR);
	/* over-long strings, control bytes, empty fields */
	free(d1);
	d1 = long_domain('x', 1024);
	CU_ASSERT_EQUAL(store_key_check(st, d1, "b.example", "id", KEY1,
	    strlen(KEY1), NOW, &v, NULL), STORE_ERROR);
	CU_ASSERT_EQUAL(store_key_check(st, "a\nb", "b.example", "id", KEY1,
	    strlen(KEY1), NOW, &v, NULL), STORE_ERROR);
	CU_ASSERT_EQUAL(store_key_delete(st, "", "b.example", "id"), STORE_ERROR);
	free(d1);
	free(d2);
	store_close(st);
}

/* ---- pairs ----------------------------------------------------------------- */

static int
count_pair(const struct store_pair *p, void *ctx)
{
	(*(size_t *)ctx)++;
	return 0;
}

static void
make_pair(struct store_pair *p, const char *local, const char *remote,
    enum store_pair_dir dir, enum store_pair_state state, int slot, pid_t pid)
{
	memset(p, 0, sizeof(*p));
	snprintf(p->local, sizeof(p->local), "%s", local);
	snprintf(p->remote, sizeof(p->remote), "%s", remote);
	p->dir = dir;
	p->state = state;
	p->owner.slot = slot;
	p->owner.pid = pid;
	p->conn_id = 42;
	p->since = NOW;
	snprintf(p->stream_id, sizeof(p->stream_id), "s-%d", slot);
}

static void
test_pairs(void)
{
	struct store *st = open_rw("pairs", 0);
	struct store_pair p, got;
	size_t n = 0;
	char *d = long_domain('q', 1023);

	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	make_pair(&p, "a.example", "b.example", PAIR_OUT, PAIR_PENDING, 1, 100);
	CU_ASSERT_EQUAL(store_pair_put(st, &p), STORE_OK);
	make_pair(&p, "a.example", "b.example", PAIR_IN, PAIR_VALID, 2, 200);
	snprintf(p.reason, sizeof(p.reason), "%s", "none");
	CU_ASSERT_EQUAL(store_pair_put(st, &p), STORE_OK);
	CU_ASSERT_EQUAL(store_pair_get(st, "a.example", "b.example", PAIR_IN,
	    &got), STORE_OK);
	CU_ASSERT_STRING_EQUAL(got.local, "a.example");
	CU_ASSERT_STRING_EQUAL(got.remote, "b.example");
	CU_ASSERT_EQUAL(got.dir, PAIR_IN);
	CU_ASSERT_EQUAL(got.state, PAIR_VALID);
	CU_ASSERT_EQUAL(got.owner.slot, 2);
	CU_ASSERT_EQUAL(got.owner.pid, 200);
	CU_ASSERT_EQUAL(got.conn_id, 42);
	CU_ASSERT_EQUAL(got.since, NOW);
	CU_ASSERT_STRING_EQUAL(got.stream_id, "s-2");
	CU_ASSERT_STRING_EQUAL(got.reason, "none");

	/* overwrite: state change */
	p.state = PAIR_FAILED;
	snprintf(p.reason, sizeof(p.reason), "%s", "remote-server-timeout");
	CU_ASSERT_EQUAL(store_pair_put(st, &p), STORE_OK);
	CU_ASSERT_EQUAL(store_pair_get(st, "a.example", "b.example", PAIR_IN,
	    &got), STORE_OK);
	CU_ASSERT_EQUAL(got.state, PAIR_FAILED);
	CU_ASSERT_STRING_EQUAL(got.reason, "remote-server-timeout");

	/* long domains take the digest path */
	make_pair(&p, d, d, PAIR_OUT, PAIR_VALID, 3, 300);
	CU_ASSERT_EQUAL(store_pair_put(st, &p), STORE_OK);
	CU_ASSERT_EQUAL(store_pair_get(st, d, d, PAIR_OUT, &got), STORE_OK);
	CU_ASSERT_EQUAL(strlen(got.local), 1023);
	CU_ASSERT_EQUAL(got.owner.slot, 3);

	CU_ASSERT_EQUAL(store_pairs_foreach(st, count_pair, &n), STORE_OK);
	CU_ASSERT_EQUAL(n, 3);
	CU_ASSERT_EQUAL(store_pair_delete(st, "a.example", "b.example", PAIR_IN),
	    STORE_OK);
	CU_ASSERT_EQUAL(store_pair_get(st, "a.example", "b.example", PAIR_IN,
	    &got), STORE_NOTFOUND);
	CU_ASSERT_EQUAL(store_pair_delete(st, "a.example", "b.example", PAIR_IN),
	    STORE_NOTFOUND);
	/* the other direction is a separate record */
	CU_ASSERT_EQUAL(store_pair_get(st, "a.example", "b.example", PAIR_OUT,
	    &got), STORE_OK);

	/* unterminated reason rejected */
	memset(p.reason, 'r', sizeof(p.reason));
	CU_ASSERT_EQUAL(store_pair_put(st, &p), STORE_ERROR);
	CU_ASSERT_STRING_EQUAL(store_pair_state_name(PAIR_VALID), "valid");
	CU_ASSERT_STRING_EQUAL(store_pair_dir_name(PAIR_OUT), "out");
	free(d);
	store_close(st);
}

/* ---- routes ---------------------------------------------------------------- */

static void
make_route(struct store_route *r, enum store_route_kind kind,
    const char *domain, const char *remote, int slot, pid_t pid)
{
	memset(r, 0, sizeof(*r));
	r->kind = kind;
	snprintf(r->domain, sizeof(r->domain), "%s", domain);
	snprintf(r->remote, sizeof(r->remote), "%s", remote);
	r->owner.slot = slot;
	r->owner.pid = pid;
	r->since = NOW;
}

static int
count_route(const struct store_route *r, void *ctx)
{
	(*(size_t *)ctx)++;
	return 0;
}

static void
test_routes(void)
{
	struct store *st = open_rw("routes", 0);
	struct store_route r, cur, got;
	struct store_owner other = { 1, 111 }, mine = { 0, 100 };
	enum store_route_kind kind;
	size_t n = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	make_route(&r, ROUTE_OUTBOUND, "a.example", "b.example", 0, 100);
	CU_ASSERT_EQUAL(store_route_claim(st, &r, &cur), STORE_OK);
	CU_ASSERT_EQUAL(cur.owner.pid, 100);
	/* again by the same owner: still ours */
	CU_ASSERT_EQUAL(store_route_claim(st, &r, NULL), STORE_OK);
	/* another owner: conflict, told who holds it */
	make_route(&r, ROUTE_OUTBOUND, "a.example", "b.example", 1, 111);
	memset(&cur, 0, sizeof(cur));
	CU_ASSERT_EQUAL(store_route_claim(st, &r, &cur), STORE_EXISTS);
	CU_ASSERT_EQUAL(cur.owner.slot, 0);
	CU_ASSERT_EQUAL(cur.owner.pid, 100);
	CU_ASSERT_STRING_EQUAL(cur.remote, "b.example");
	/* same slot, other pid is another owner too */
	make_route(&r, ROUTE_OUTBOUND, "a.example", "b.example", 0, 101);
	CU_ASSERT_EQUAL(store_route_claim(st, &r, NULL), STORE_EXISTS);

	/* a component route; remote is ignored for components */
	make_route(&r, ROUTE_COMPONENT, "muc.a.example", "ignored", 2, 222);
	CU_ASSERT_EQUAL(store_route_claim(st, &r, NULL), STORE_OK);
	CU_ASSERT_EQUAL(store_route_get(st, ROUTE_COMPONENT, "muc.a.example",
	    NULL, &got), STORE_OK);
	CU_ASSERT_EQUAL(got.kind, ROUTE_COMPONENT);
	CU_ASSERT_STRING_EQUAL(got.remote, "");
	CU_ASSERT_EQUAL(got.owner.pid, 222);
	CU_ASSERT_EQUAL(got.since, NOW);
	CU_ASSERT_EQUAL(store_route_get(st, ROUTE_OUTBOUND, "muc.a.example",
	    "x", &got), STORE_NOTFOUND);

	CU_ASSERT_EQUAL(store_routes_foreach(st, count_route, &n), STORE_OK);
	CU_ASSERT_EQUAL(n, 2);

	/* release: only by the owner */
	CU_ASSERT_EQUAL(store_route_release(st, ROUTE_OUTBOUND, "a.example",
	    "b.example", &other), STORE_EXISTS);
	CU_ASSERT_EQUAL(store_route_release(st, ROUTE_OUTBOUND, "a.example",
	    "b.example", &mine), STORE_OK);
	CU_ASSERT_EQUAL(store_route_release(st, ROUTE_OUTBOUND, "a.example",
	    "b.example", &mine), STORE_NOTFOUND);
	/* now free for the other owner */
	make_route(&r, ROUTE_OUTBOUND, "a.example", "b.example", 1, 111);
	CU_ASSERT_EQUAL(store_route_claim(st, &r, NULL), STORE_OK);

	/* delete: whoever owns it */
	memset(&got, 0, sizeof(got));
	CU_ASSERT_EQUAL(store_route_delete(st, ROUTE_OUTBOUND, "a.example",
	    "b.example", &got), STORE_OK);
	CU_ASSERT_EQUAL(got.owner.pid, 111);
	CU_ASSERT_EQUAL(store_route_delete(st, ROUTE_OUTBOUND, "a.example",
	    "b.example", NULL), STORE_NOTFOUND);
	/* an outbound route needs a remote */
	make_route(&r, ROUTE_OUTBOUND, "a.example", "", 1, 111);
	CU_ASSERT_EQUAL(store_route_claim(st, &r, NULL), STORE_ERROR);

	CU_ASSERT_EQUAL(store_route_kind_parse("outbound", &kind), 0);
	CU_ASSERT_EQUAL(kind, ROUTE_OUTBOUND);
	CU_ASSERT_EQUAL(store_route_kind_parse("bogus", &kind), -1);
	store_close(st);
}

/* ---- queue ----------------------------------------------------------------- */

struct qcollect {
	size_t		 n;
	uint64_t	 seq[64];
	char		 data[64][32];
	char		 local[64][16];
	time_t		 queued[64];
};

static int
collect_q(const struct store_queued *q, void *ctx)
{
	struct qcollect *c = ctx;

	if (c->n < 64) {
		c->seq[c->n] = q->seq;
		snprintf(c->data[c->n], sizeof(c->data[0]), "%.*s", (int)q->len,
		    q->data);
		snprintf(c->local[c->n], sizeof(c->local[0]), "%.15s", q->local);
		c->queued[c->n] = q->queued;
	}
	c->n++;
	return 0;
}

static void
test_queue(void)
{
	struct store *st = open_rw("queue", 0);
	struct store_owner w0 = { 0, 100 }, w1 = { 1, 111 };
	struct store_route cur;
	struct qcollect *c = calloc(1, sizeof(*c));
	char msg[32];
	uint64_t seq;
	size_t i, depth, dropped;
	bool claimed;

	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	/* first append claims the route */
	CU_ASSERT_EQUAL(store_queue_append(st, "a.example", "b.example", "m0", 2,
	    NOW, 5, &w0, &claimed, &cur, &seq), STORE_OK);
	CU_ASSERT(claimed);
	CU_ASSERT_EQUAL(seq, 1);
	CU_ASSERT_EQUAL(cur.owner.pid, 100);
	CU_ASSERT_EQUAL(cur.kind, ROUTE_OUTBOUND);
	CU_ASSERT_EQUAL(store_route_get(st, ROUTE_OUTBOUND, "a.example",
	    "b.example", &cur), STORE_OK);
	CU_ASSERT_EQUAL(cur.owner.pid, 100);
	/* another worker appends: queued, not claimed, told who owns it */
	for (i = 1; i < 5; i++) {
		snprintf(msg, sizeof(msg), "m%zu", i);
		CU_ASSERT_EQUAL(store_queue_append(st, "a.example", "b.example",
		    msg, strlen(msg), NOW + (time_t)i, 5, &w1, &claimed, &cur,
		    &seq), STORE_OK);
		CU_ASSERT(!claimed);
		CU_ASSERT_EQUAL(cur.owner.pid, 100);
		CU_ASSERT_EQUAL(seq, i + 1);
	}
	/* the owner appending again does not "take" it again */
	CU_ASSERT_EQUAL(store_queue_append(st, "a.example", "b.example", "x", 1,
	    NOW, 0, &w0, &claimed, NULL, &seq), STORE_OK);
	CU_ASSERT(!claimed);
	CU_ASSERT_EQUAL(store_queue_remove(st, "a.example", "b.example", seq),
	    STORE_OK);
	/* depth limit: nothing written */
	CU_ASSERT_EQUAL(store_queue_append(st, "a.example", "b.example", "over", 4,
	    NOW, 5, &w1, &claimed, NULL, &seq), STORE_EXISTS);
	CU_ASSERT_EQUAL(store_queue_depth(st, "a.example", "b.example", &depth),
	    STORE_OK);
	CU_ASSERT_EQUAL(depth, 5);

	/* order = append order */
	CU_ASSERT_EQUAL(store_queue_foreach_pair(st, "a.example", "b.example", 0,
	    collect_q, c), STORE_OK);
	CU_ASSERT_EQUAL_FATAL(c->n, 5);
	for (i = 0; i < 5; i++) {
		snprintf(msg, sizeof(msg), "m%zu", i);
		CU_ASSERT_EQUAL(c->seq[i], i + 1);
		CU_ASSERT_STRING_EQUAL(c->data[i], msg);
		CU_ASSERT_EQUAL(c->queued[i], NOW + (time_t)i);
	}
	/* limit */
	memset(c, 0, sizeof(*c));
	CU_ASSERT_EQUAL(store_queue_foreach_pair(st, "a.example", "b.example", 2,
	    collect_q, c), STORE_OK);
	CU_ASSERT_EQUAL(c->n, 2);

	/* a second pair; one whose local is a prefix of another's */
	CU_ASSERT_EQUAL(store_queue_append(st, "a.example", "c.example", "c0", 2,
	    NOW, 0, &w1, &claimed, NULL, &seq), STORE_OK);
	CU_ASSERT(claimed);
	CU_ASSERT_EQUAL(seq, 1);
	CU_ASSERT_EQUAL(store_queue_append(st, "a.exampl", "b.example", "p0", 2,
	    NOW, 0, &w1, &claimed, NULL, &seq), STORE_OK);
	CU_ASSERT_EQUAL(store_queue_depth(st, "a.exampl", "b.example", &depth),
	    STORE_OK);
	CU_ASSERT_EQUAL(depth, 1);
	/* an empty stanza is allowed */
	CU_ASSERT_EQUAL(store_queue_append(st, "e.example", "b.example", NULL, 0,
	    NOW, 0, &w1, &claimed, NULL, &seq), STORE_OK);
	memset(c, 0, sizeof(*c));
	CU_ASSERT_EQUAL(store_queue_foreach(st, collect_q, c), STORE_OK);
	CU_ASSERT_EQUAL(c->n, 8);

	/* remove from the middle, then order holds and seq goes on */
	CU_ASSERT_EQUAL(store_queue_remove(st, "a.example", "b.example", 3),
	    STORE_OK);
	CU_ASSERT_EQUAL(store_queue_remove(st, "a.example", "b.example", 3),
	    STORE_NOTFOUND);
	CU_ASSERT_EQUAL(store_queue_append(st, "a.example", "b.example", "m5", 2,
	    NOW, 5, &w1, &claimed, NULL, &seq), STORE_OK);
	CU_ASSERT_EQUAL(seq, 6);
	memset(c, 0, sizeof(*c));
	CU_ASSERT_EQUAL(store_queue_foreach_pair(st, "a.example", "b.example", 0,
	    collect_q, c), STORE_OK);
	CU_ASSERT_EQUAL_FATAL(c->n, 5);
	CU_ASSERT_EQUAL(c->seq[1], 2);
	CU_ASSERT_EQUAL(c->seq[2], 4);
	CU_ASSERT_EQUAL(c->seq[4], 6);

	/* drop one pair only */
	CU_ASSERT_EQUAL(store_queue_drop(st, "a.example", "b.example", &dropped),
	    STORE_OK);
	CU_ASSERT_EQUAL(dropped, 5);
	CU_ASSERT_EQUAL(store_queue_depth(st, "a.example", "b.example", &depth),
	    STORE_OK);
	CU_ASSERT_EQUAL(depth, 0);
	CU_ASSERT_EQUAL(store_queue_depth(st, "a.exampl", "b.example", &depth),
	    STORE_OK);
	CU_ASSERT_EQUAL(depth, 1);
	CU_ASSERT_EQUAL(store_queue_depth(st, "a.example", "c.example", &depth),
	    STORE_OK);
	CU_ASSERT_EQUAL(depth, 1);
	CU_ASSERT_EQUAL(store_queue_drop(st, "none.example", "b.example",
	    &dropped), STORE_OK);
	CU_ASSERT_EQUAL(dropped, 0);
	free(c);
	store_close(st);
}

/* A pair whose key exceeds LMDB's limit: the digest form keeps order too. */
static void
test_queue_long(void)
{
	struct store *st = open_rw("queuelong", 0);
	struct store_owner w0 = { 0, 100 };
	struct store_route cur;
	struct qcollect *c = calloc(1, sizeof(*c));
	char *l = long_domain('l', 600), *r = long_domain('r', 1023);
	char msg[32];
	uint64_t seq;
	size_t i, depth, dropped;
	bool claimed;

	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	for (i = 0; i < 20; i++) {
		snprintf(msg, sizeof(msg), "long%zu", i);
		CU_ASSERT_EQUAL(store_queue_append(st, l, r, msg, strlen(msg), NOW,
		    0, &w0, &claimed, &cur, &seq), STORE_OK);
		CU_ASSERT_EQUAL(seq, i + 1);
		CU_ASSERT_EQUAL(claimed, i == 0);
	}
	CU_ASSERT_EQUAL(strlen(cur.remote), 1023);
	CU_ASSERT_EQUAL(store_queue_foreach_pair(st, l, r, 0, collect_q, c),
	    STORE_OK);
	CU_ASSERT_EQUAL_FATAL(c->n, 20);
	for (i = 0; i < 20; i++) {
		snprintf(msg, sizeof(msg), "long%zu", i);
		CU_ASSERT_STRING_EQUAL(c->data[i], msg);
		CU_ASSERT_EQUAL(c->seq[i], i + 1);
		CU_ASSERT_EQUAL(strspn(c->local[i], "l"), 15);
	}
	CU_ASSERT_EQUAL(store_queue_depth(st, l, r, &depth), STORE_OK);
	CU_ASSERT_EQUAL(depth, 20);
	CU_ASSERT_EQUAL(store_queue_remove(st, l, r, 20), STORE_OK);
	CU_ASSERT_EQUAL(store_queue_drop(st, l, r, &dropped), STORE_OK);
	CU_ASSERT_EQUAL(dropped, 19);
	free(l);
	free(r);
	free(c);
	store_close(st);
}

/* ---- clear_slot ------------------------------------------------------------ */

static void
test_clear_slot(void)
{
	struct store *st = open_rw("clear", 0);
	struct store_route r;
	struct store_pair p;
	size_t cleared = 99, n;

	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	/* slot 1: old pid 100 (dead), new pid 200; slot 2: pid 300 */
	make_route(&r, ROUTE_OUTBOUND, "a.example", "b.example", 1, 100);
	CU_ASSERT_EQUAL(store_route_claim(st, &r, NULL), STORE_OK);
	make_route(&r, ROUTE_COMPONENT, "c.a.example", "", 1, 100);
	CU_ASSERT_EQUAL(store_route_claim(st, &r, NULL), STORE_OK);
	make_route(&r, ROUTE_OUTBOUND, "a.example", "c.example", 1, 200);
	CU_ASSERT_EQUAL(store_route_claim(st, &r, NULL), STORE_OK);
	make_route(&r, ROUTE_OUTBOUND, "a.example", "d.example", 2, 300);
	CU_ASSERT_EQUAL(store_route_claim(st, &r, NULL), STORE_OK);
	make_pair(&p, "a.example", "b.example", PAIR_OUT, PAIR_PENDING, 1, 100);
	CU_ASSERT_EQUAL(store_pair_put(st, &p), STORE_OK);
	make_pair(&p, "a.example", "x.example", PAIR_IN, PAIR_VALID, 2, 300);
	CU_ASSERT_EQUAL(store_pair_put(st, &p), STORE_OK);

	CU_ASSERT_EQUAL(store_clear_slot(st, 1, 200, &cleared), STORE_OK);
	CU_ASSERT_EQUAL(cleared, 3);
	n = 0;
	CU_ASSERT_EQUAL(store_routes_foreach(st, count_route, &n), STORE_OK);
	CU_ASSERT_EQUAL(n, 2);
	CU_ASSERT_EQUAL(store_route_get(st, ROUTE_OUTBOUND, "a.example",
	    "c.example", &r), STORE_OK);
	CU_ASSERT_EQUAL(store_route_get(st, ROUTE_OUTBOUND, "a.example",
	    "b.example", &r), STORE_NOTFOUND);
	n = 0;
	CU_ASSERT_EQUAL(store_pairs_foreach(st, count_pair, &n), STORE_OK);
	CU_ASSERT_EQUAL(n, 1);

	/* pid 0: everything of the slot */
	CU_ASSERT_EQUAL(store_clear_slot(st, 1, 0, &cleared), STORE_OK);
	CU_ASSERT_EQUAL(cleared, 1);
	CU_ASSERT_EQUAL(store_clear_slot(st, 1, 0, &cleared), STORE_OK);
	CU_ASSERT_EQUAL(cleared, 0);
	n = 0;
	CU_ASSERT_EQUAL(store_routes_foreach(st, count_route, &n), STORE_OK);
	CU_ASSERT_EQUAL(n, 1);
	store_close(st);
}

/* ---- stats ----------------------------------------------------------------- */

struct stat_sum {
	uint64_t	 in0, out0, in1, master;
	int		 in_slots[4];	/* slots of stanzas_in, in order */
	size_t		 n, nin;
};

static int
sum_stat(const struct store_stat *s, void *ctx)
{
	struct stat_sum *ss = ctx;

	ss->n++;
	if (strcmp(s->name, "stanzas_in") == 0 && ss->nin < 4)
		ss->in_slots[ss->nin++] = s->slot;
	if (strcmp(s->name, "stanzas_in") == 0 && s->slot == 0)
		ss->in0 = s->value;
	else if (strcmp(s->name, "stanzas_out") == 0 && s->slot == 0)
		ss->out0 = s->value;
	else if (strcmp(s->name, "stanzas_in") == 0 && s->slot == 1)
		ss->in1 = s->value;
	else if (strcmp(s->name, "stanzas_in") == 0 && s->slot == -1)
		ss->master = s->value;
	return 0;
}

static void
test_stats(void)
{
	struct store *st = open_rw("stats", 0);
	const char *const names[] = { "stanzas_in", "stanzas_out", "dialback_ok" };
	const uint64_t d1[] = { 10, 5, 1 }, d2[] = { 3, 0, 1 };
	const char *const bad[] = { "stanzas_in", "" };
	struct stat_sum ss;

	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	CU_ASSERT_EQUAL(store_stats_add(st, 0, names, d1, 3), STORE_OK);
	CU_ASSERT_EQUAL(store_stats_add(st, 0, names, d2, 3), STORE_OK);
	CU_ASSERT_EQUAL(store_stats_add(st, 1, names, d1, 1), STORE_OK);
	CU_ASSERT_EQUAL(store_stats_add(st, -1, names, d2, 1), STORE_OK);
	/* one bad name: the whole batch is refused */
	CU_ASSERT_EQUAL(store_stats_add(st, 0, bad, d1, 2), STORE_ERROR);
	memset(&ss, 0, sizeof(ss));
	CU_ASSERT_EQUAL(store_stats_foreach(st, sum_stat, &ss), STORE_OK);
	CU_ASSERT_EQUAL(ss.in0, 13);
	CU_ASSERT_EQUAL(ss.out0, 5);
	CU_ASSERT_EQUAL(ss.in1, 10);
	CU_ASSERT_EQUAL(ss.master, 3);
	CU_ASSERT_EQUAL(ss.n, 5);
	/* per counter: the master first, then workers in order */
	CU_ASSERT_EQUAL(ss.nin, 3);
	CU_ASSERT_EQUAL(ss.in_slots[0], -1);
	CU_ASSERT_EQUAL(ss.in_slots[1], 0);
	CU_ASSERT_EQUAL(ss.in_slots[2], 1);
	store_close(st);
}

/* ---- dump ------------------------------------------------------------------ */

static void
test_dump(void)
{
	struct store *st = open_rw("dump", 0);
	struct store_key k;
	struct store_pair p;
	struct store_route r;
	struct store_owner w0 = { 0, 100 };
	const char *const names[] = { "stanzas_in" };
	const uint64_t d[] = { 7 };
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	make_key(&k, "a.example", "b.example", "id1", KEY1, NOW, NOW + 60, 0);
	CU_ASSERT_EQUAL(store_key_put(st, &k), STORE_OK);
	make_pair(&p, "a.example", "b.example", PAIR_OUT, PAIR_PENDING, 0, 100);
	CU_ASSERT_EQUAL(store_pair_put(st, &p), STORE_OK);
	make_route(&r, ROUTE_COMPONENT, "c.example", "", 0, 100);
	CU_ASSERT_EQUAL(store_route_claim(st, &r, NULL), STORE_OK);
	CU_ASSERT_EQUAL(store_queue_append(st, "a.example", "b.example",
	    "<m>\"q\"\n</m>", 11, NOW, 0, &w0, NULL, NULL, NULL), STORE_OK);
	CU_ASSERT_EQUAL(store_stats_add(st, 0, names, d, 1), STORE_OK);

	f = open_memstream(&buf, &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_EQUAL(store_dump(st, f), STORE_OK);
	CU_ASSERT_EQUAL(fclose(f), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
	CU_ASSERT_EQUAL(strncmp(buf, "dialbackd-store-dump 1\n", 23), 0);
	CU_ASSERT(len >= 4 && strcmp(buf + len - 4, "end\n") == 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "keys originating=\"a.example\" "
	    "receiving=\"b.example\" stream_id=\"id1\""));
	CU_ASSERT_PTR_NULL(strstr(buf, KEY1));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "pairs local=\"a.example\" "
	    "remote=\"b.example\" dir=out state=pending"));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "routes kind=component "
	    "domain=\"c.example\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "routes kind=outbound "
	    "domain=\"a.example\" remote=\"b.example\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "seq=1 queued=1700000000 len=11 "
	    "data=\"<m>\\\"q\\\"\\x0a</m>\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "stats name=\"stanzas_in\" slot=0 "
	    "value=7"));
	free(buf);
	store_close(st);
}

/* ---- several processes ----------------------------------------------------- */

#define NCHILD	4
#define NAPPEND	150

static int
child_work(int slot)
{
	char err[512], local[64], msg[64], id[32];
	struct store *st;
	struct store_key k;
	struct store_route r;
	struct store_owner me = { slot, getpid() };
	const char *const names[] = { "appended" };
	const uint64_t one[] = { 1 };
	bool claimed;
	int i, claims = 0;

	/* Opened after fork, as every dialbackd process does. */
	st = store_open(store_dir("multi"), 0, STORE_NOSYNC, 32, err, sizeof(err));
	if (st == NULL)
		return 10;
	snprintf(local, sizeof(local), "w%d.example", slot);
	for (i = 0; i < NAPPEND; i++) {
		snprintf(msg, sizeof(msg), "%d:%d", slot, i);
		if (store_queue_append(st, local, "r.example", msg, strlen(msg),
		    NOW, 0, &me, &claimed, NULL, NULL) != STORE_OK)
			return 11;
		/* every child races for one shared pair */
		if (store_queue_append(st, "shared.example", "r.example", msg,
		    strlen(msg), NOW, 0, &me, &claimed, NULL, NULL) != STORE_OK)
			return 12;
		if (claimed)
			claims++;
		snprintf(id, sizeof(id), "%d-%d", slot, i);
		make_key(&k, local, "r.example", id, KEY1, NOW, NOW + 60, slot);
		if (store_key_put(st, &k) != STORE_OK)
			return 13;
		if (store_stats_add(st, slot % 2, names, one, 1) != STORE_OK)
			return 14;
	}
	make_route(&r, ROUTE_COMPONENT, "race.example", "", slot, getpid());
	if (store_route_claim(st, &r, NULL) == STORE_OK)
		claims += 100;
	store_close(st);
	return claims;	/* exit code: how many claims this child won */
}

struct multi_check {
	unsigned	 next[NCHILD];	/* next i expected from each child */
	bool		 order_ok;
	size_t		 n;
};

static int
check_shared(const struct store_queued *q, void *ctx)
{
	struct multi_check *mc = ctx;
	char buf[32];
	int slot, i;

	mc->n++;
	/* q->data is not NUL-terminated */
	snprintf(buf, sizeof(buf), "%.*s", (int)q->len, q->data);
	if (sscanf(buf, "%d:%d", &slot, &i) != 2 || slot < 0 ||
	    slot >= NCHILD || (unsigned)i != mc->next[slot]) {
		mc->order_ok = false;
		return 0;
	}
	mc->next[slot]++;
	return 0;
}

static int
sum_appended(const struct store_stat *s, void *ctx)
{
	if (strcmp(s->name, "appended") == 0)
		*(uint64_t *)ctx += s->value;
	return 0;
}

static void
test_multiprocess(void)
{
	struct store *st;
	struct store_route r;
	struct multi_check mc;
	pid_t pids[NCHILD];
	char local[64], id[32];
	enum store_key_verdict v;
	int i, status, total_claims = 0, comp_claims = 0;
	size_t depth, nkeys = 0;
	uint64_t appended = 0;

	/* create it first, and close it: no environment across fork */
	st = open_rw("multi", 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	store_close(st);
	for (i = 0; i < NCHILD; i++) {
		pids[i] = fork();
		CU_ASSERT_FATAL(pids[i] != -1);
		if (pids[i] == 0)
			_exit(child_work(i));
	}
	for (i = 0; i < NCHILD; i++) {
		CU_ASSERT_EQUAL(waitpid(pids[i], &status, 0), pids[i]);
		CU_ASSERT(WIFEXITED(status));
		CU_ASSERT(WEXITSTATUS(status) < 10 || WEXITSTATUS(status) >= 100);
		total_claims += WEXITSTATUS(status) % 100;
		comp_claims += WEXITSTATUS(status) / 100;
	}
	/* exactly one child claimed the shared outbound route, one the component */
	CU_ASSERT_EQUAL(total_claims, 1);
	CU_ASSERT_EQUAL(comp_claims, 1);

	st = open_rw("multi", 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	for (i = 0; i < NCHILD; i++) {
		snprintf(local, sizeof(local), "w%d.example", i);
		CU_ASSERT_EQUAL(store_queue_depth(st, local, "r.example", &depth),
		    STORE_OK);
		CU_ASSERT_EQUAL(depth, NAPPEND);
		CU_ASSERT_EQUAL(store_route_get(st, ROUTE_OUTBOUND, local,
		    "r.example", &r), STORE_OK);
		CU_ASSERT_EQUAL(r.owner.slot, i);
		CU_ASSERT_EQUAL(r.owner.pid, pids[i]);
		snprintf(id, sizeof(id), "%d-%d", i, NAPPEND - 1);
		CU_ASSERT_EQUAL(store_key_check(st, local, "r.example", id, KEY1,
		    strlen(KEY1), NOW, &v, NULL), STORE_OK);
		CU_ASSERT_EQUAL(v, KEY_VALID);
	}
	/* the shared queue holds every entry, each child's in its own order */
	memset(&mc, 0, sizeof(mc));
	mc.order_ok = true;
	CU_ASSERT_EQUAL(store_queue_foreach_pair(st, "shared.example",
	    "r.example", 0, check_shared, &mc), STORE_OK);
	CU_ASSERT_EQUAL(mc.n, NCHILD * NAPPEND);
	CU_ASSERT(mc.order_ok);
	CU_ASSERT_EQUAL(store_keys_foreach(st, count_key, &nkeys), STORE_OK);
	CU_ASSERT_EQUAL(nkeys, NCHILD * NAPPEND);
	CU_ASSERT_EQUAL(store_stats_foreach(st, sum_appended, &appended), STORE_OK);
	CU_ASSERT_EQUAL(appended, NCHILD * NAPPEND);
	store_close(st);
}

/* ---- a reader killed mid-transaction --------------------------------------- */

struct find_pid {
	pid_t	 pid;
	bool	 found;
	size_t	 lines;
};

static void
find_reader(const char *line, void *ctx)
{
	struct find_pid *fp = ctx;
	long pid;

	fp->lines++;
	if (sscanf(line, "%ld", &pid) == 1 && pid == (long)fp->pid)
		fp->found = true;
}

static void
test_stale_reader(void)
{
	struct store *st;
	struct find_pid fp;
	int fds[2], dead = -1, status;
	char c;
	pid_t pid;

	st = open_rw("stale", 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	store_close(st);
	CU_ASSERT_FATAL(pipe(fds) == 0);
	pid = fork();
	CU_ASSERT_FATAL(pid != -1);
	if (pid == 0) {
		char err[512];

		close(fds[0]);
		st = store_open(store_dir("stale"), 0, 0, 32, err, sizeof(err));
		if (st == NULL || store_debug_begin_read(st) != STORE_OK)
			_exit(1);
		if (write(fds[1], "r", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(fds[1]);
	CU_ASSERT_EQUAL(read(fds[0], &c, 1), 1);
	close(fds[0]);

	st = open_rw("stale", 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	/* alive: listed, and the check leaves it alone */
	memset(&fp, 0, sizeof(fp));
	fp.pid = pid;
	CU_ASSERT_EQUAL(store_reader_list(st, find_reader, &fp), STORE_OK);
	CU_ASSERT(fp.found);
	CU_ASSERT_EQUAL(store_reader_check(st, &dead), STORE_OK);
	CU_ASSERT_EQUAL(dead, 0);

	CU_ASSERT_EQUAL(kill(pid, SIGKILL), 0);
	CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
	CU_ASSERT(WIFSIGNALED(status));
	CU_ASSERT_EQUAL(store_reader_check(st, &dead), STORE_OK);
	CU_ASSERT(dead >= 1);
	memset(&fp, 0, sizeof(fp));
	fp.pid = pid;
	CU_ASSERT_EQUAL(store_reader_list(st, find_reader, &fp), STORE_OK);
	CU_ASSERT(!fp.found);
	CU_ASSERT(fp.lines >= 1);
	store_close(st);
}

/* ---- map growth by another process ----------------------------------------- */

static void
test_map_resized(void)
{
	struct store *st;
	struct store_key k;
	char id[32];
	int fds[2], back[2], status;
	char c;
	pid_t pid;
	size_t i, n = 0;

	CU_ASSERT_FATAL(pipe(fds) == 0 && pipe(back) == 0);
	pid = fork();
	CU_ASSERT_FATAL(pid != -1);
	if (pid == 0) {
		/* waits until the parent has a small map open, then grows it */
		close(fds[1]);
		close(back[0]);
		if (read(fds[0], &c, 1) != 1)
			_exit(1);
		st = open_rw("resize", 16 << 20);
		if (st == NULL)
			_exit(2);
		for (i = 0; i < 3000; i++) {
			snprintf(id, sizeof(id), "grow%zu", i);
			make_key(&k, "a.example", "b.example", id, KEY1, NOW,
			    NOW + 60, 1);
			if (store_key_put(st, &k) != STORE_OK)
				_exit(3);
		}
		store_close(st);
		_exit(write(back[1], "d", 1) == 1 ? 0 : 4);
	}
	close(fds[0]);
	close(back[1]);
	st = open_rw("resize", 1 << 20);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	make_key(&k, "a.example", "b.example", "first", KEY1, NOW, NOW + 60, 0);
	CU_ASSERT_EQUAL(store_key_put(st, &k), STORE_OK);
	/* a read now leaves a reset read handle to be renewed after the growth */
	CU_ASSERT_EQUAL(store_keys_foreach(st, count_key, &n), STORE_OK);
	CU_ASSERT_EQUAL(n, 1);
	n = 0;
	CU_ASSERT_EQUAL(write(fds[1], "g", 1), 1);
	CU_ASSERT_EQUAL(read(back[0], &c, 1), 1);
	CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
	CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(fds[1]);
	close(back[0]);
	/* the data no longer fits our 1M view: reads and writes adopt the size */
	CU_ASSERT_EQUAL(store_keys_foreach(st, count_key, &n), STORE_OK);
	CU_ASSERT_EQUAL(n, 3001);
	make_key(&k, "a.example", "b.example", "after", KEY1, NOW, NOW + 60, 0);
	CU_ASSERT_EQUAL(store_key_put(st, &k), STORE_OK);
	store_close(st);
}

/* ---- a full map ------------------------------------------------------------ */

static void
test_map_full(void)
{
	struct store *st = open_rw("full", 1 << 20);
	struct store_key k;
	enum store_key_verdict v;
	char id[64];
	size_t i, written = 0, n = 0, purged;
	int rc = STORE_OK;

	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	/* long stream ids make each key a few hundred bytes */
	for (i = 0; i < 100000 && rc == STORE_OK; i++) {
		snprintf(id, sizeof(id), "%08zu-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", i);
		make_key(&k, "a.example", "b.example", id, KEY1, NOW,
		    i < 300 ? NOW - 1 : NOW + 60, 0);
		rc = store_key_put(st, &k);
		if (rc == STORE_OK)
			written++;
	}
	CU_ASSERT_EQUAL(rc, STORE_FULL);
	CU_ASSERT(written > 1000);
	/* nothing partial, everything earlier intact */
	CU_ASSERT_EQUAL(store_keys_foreach(st, count_key, &n), STORE_OK);
	CU_ASSERT_EQUAL(n, written);
	snprintf(id, sizeof(id), "%08zu-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
	    written - 1);
	CU_ASSERT_EQUAL(store_key_check(st, "a.example", "b.example", id, KEY1,
	    strlen(KEY1), NOW, &v, NULL), STORE_OK);
	CU_ASSERT_EQUAL(v, KEY_VALID);
	snprintf(id, sizeof(id), "%08zu-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
	    written);
	CU_ASSERT_EQUAL(store_key_check(st, "a.example", "b.example", id, KEY1,
	    strlen(KEY1), NOW, &v, NULL), STORE_OK);
	CU_ASSERT_EQUAL(v, KEY_UNKNOWN);
	/* still full for another put, but small deletes go through */
	CU_ASSERT_EQUAL(store_key_put(st, &k), STORE_FULL);
	snprintf(id, sizeof(id), "%08zu-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
	    (size_t)500);
	CU_ASSERT_EQUAL(store_key_delete(st, "a.example", "b.example", id),
	    STORE_OK);
	CU_ASSERT_EQUAL(store_keys_purge(st, NOW, &purged), STORE_OK);
	CU_ASSERT_EQUAL(purged, 300);
	n = 0;
	CU_ASSERT_EQUAL(store_keys_foreach(st, count_key, &n), STORE_OK);
	CU_ASSERT_EQUAL(n, written - 301);
	/* and the room freed takes new keys again */
	CU_ASSERT_EQUAL(store_key_put(st, &k), STORE_OK);
	store_close(st);
}

/* A reader pins every page freed after it began, so LMDB itself runs out
 * (MDB_MAP_FULL) while little is live: the txn is aborted, nothing partial
 * is written, and once the reader ends the store takes writes again. */
static void
test_map_full_pinned(void)
{
	struct store *st = open_rw("pinned", 1 << 20);
	struct store_key k;
	enum store_key_verdict v;
	char id[32];
	size_t i, written = 0, n = 0;
	int rc = STORE_OK;

	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	make_key(&k, "a.example", "b.example", "seed", KEY1, NOW, NOW + 60, 0);
	CU_ASSERT_EQUAL(store_key_put(st, &k), STORE_OK);
	CU_ASSERT_EQUAL_FATAL(store_debug_begin_read(st), STORE_OK);
	for (i = 0; i < 100000 && rc == STORE_OK; i++) {
		snprintf(id, sizeof(id), "p%06zu", i);
		make_key(&k, "a.example", "b.example", id, KEY1, NOW, NOW + 60, 0);
		if ((rc = store_key_put(st, &k)) == STORE_OK)
			written++;
	}
	CU_ASSERT_EQUAL(rc, STORE_FULL);
	CU_ASSERT(written > 10);
	CU_ASSERT_EQUAL(store_keys_foreach(st, count_key, &n), STORE_OK);
	CU_ASSERT_EQUAL(n, written + 1);
	snprintf(id, sizeof(id), "p%06zu", written);
	CU_ASSERT_EQUAL(store_key_check(st, "a.example", "b.example", id, KEY1,
	    strlen(KEY1), NOW, &v, NULL), STORE_OK);
	CU_ASSERT_EQUAL(v, KEY_UNKNOWN);
	store_debug_end_read(st);
	/* the pages the reader pinned are free again (after a commit or two) */
	for (i = 0; i < 3; i++)
		rc = store_key_delete(st, "a.example", "b.example", "seed");
	CU_ASSERT_EQUAL(store_key_put(st, &k), STORE_OK);
	store_close(st);
}

/* The queue cannot use the whole map: keys can still be written. */
static void
test_queue_share(void)
{
	struct store *st = open_rw("qfull", 1 << 20);
	struct store_owner w0 = { 0, 100 };
	struct store_key k;
	char data[1500];
	size_t i, appended = 0, depth, dropped;
	int rc = STORE_OK;

	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	memset(data, 'd', sizeof(data));
	for (i = 0; i < 10000 && rc == STORE_OK; i++) {
		rc = store_queue_append(st, "a.example", "b.example", data,
		    sizeof(data), NOW, 0, &w0, NULL, NULL, NULL);
		if (rc == STORE_OK)
			appended++;
	}
	CU_ASSERT_EQUAL(rc, STORE_FULL);
	CU_ASSERT(appended > 100);
	CU_ASSERT_EQUAL(store_queue_depth(st, "a.example", "b.example", &depth),
	    STORE_OK);
	CU_ASSERT_EQUAL(depth, appended);
	for (i = 0; i < 50; i++) {
		char id[16];

		snprintf(id, sizeof(id), "k%zu", i);
		make_key(&k, "a.example", "b.example", id, KEY1, NOW, NOW + 60, 0);
		CU_ASSERT_EQUAL(store_key_put(st, &k), STORE_OK);
	}
	CU_ASSERT_EQUAL(store_queue_drop(st, "a.example", "b.example", &dropped),
	    STORE_OK);
	CU_ASSERT_EQUAL(dropped, appended);
	CU_ASSERT_EQUAL(store_queue_append(st, "a.example", "b.example", data,
	    sizeof(data), NOW, 0, &w0, NULL, NULL, NULL), STORE_OK);
	store_close(st);
}

/* ---- nested use from a callback ------------------------------------------- */

struct nested {
	struct store	*st;
	size_t		 inner, removed;
};

static int
nested_cb(const struct store_queued *q, void *ctx)
{
	struct nested *ns = ctx;
	size_t depth = 0;

	/* a read inside an iteration, then removing the entry just seen */
	if (store_queue_depth(ns->st, q->local, q->remote, &depth) == STORE_OK)
		ns->inner = depth;
	if (store_queue_remove(ns->st, q->local, q->remote, q->seq) == STORE_OK)
		ns->removed++;
	return 0;
}

static void
test_nested(void)
{
	struct store *st = open_rw("nested", 0);
	struct store_owner w0 = { 0, 100 };
	struct nested ns = { st, 0, 0 };
	size_t depth;
	int i;

	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	for (i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(store_queue_append(st, "a.example", "b.example",
		    "m", 1, NOW, 0, &w0, NULL, NULL, NULL), STORE_OK);
	CU_ASSERT_EQUAL(store_queue_foreach_pair(st, "a.example", "b.example", 0,
	    nested_cb, &ns), STORE_OK);
	CU_ASSERT_EQUAL(ns.removed, 3);
	CU_ASSERT(ns.inner >= 1);
	CU_ASSERT_EQUAL(store_queue_depth(st, "a.example", "b.example", &depth),
	    STORE_OK);
	CU_ASSERT_EQUAL(depth, 0);
	store_close(st);
}

/* ---- every typed iteration stops when its callback says so ---------------- */

struct stopper {
	size_t	 n;		/* calls so far */
	size_t	 stop_at;	/* the call that stops; 0: none */
};

static int
stop_next(void *ctx)
{
	struct stopper *sp = ctx;

	return ++sp->n == sp->stop_at;
}

/* One callback per record type, all counting with stop_next. */
#define STOP_CB(name, type)						\
static int								\
name(const type *rec, void *ctx)					\
{									\
	return stop_next(ctx);						\
}
STOP_CB(stop_key, struct store_key)
STOP_CB(stop_pair, struct store_pair)
STOP_CB(stop_route, struct store_route)
STOP_CB(stop_queued, struct store_queued)
STOP_CB(stop_stat, struct store_stat)
#undef STOP_CB

enum { IT_KEYS, IT_PAIRS, IT_ROUTES, IT_QUEUE, IT_QUEUE_PAIR, IT_STATS, IT_N };

/* Iteration it over st with a callback that stops at call stop_at (and a
 * limit for the one that takes one); *calls gets how many calls there were. */
static int
iterate_stopping(struct store *st, int it, size_t stop_at, size_t limit,
    size_t *calls)
{
	struct stopper sp = { 0, stop_at };
	int rc = STORE_ERROR;

	switch (it) {
	case IT_KEYS:
		rc = store_keys_foreach(st, stop_key, &sp);
		break;
	case IT_PAIRS:
		rc = store_pairs_foreach(st, stop_pair, &sp);
		break;
	case IT_ROUTES:
		rc = store_routes_foreach(st, stop_route, &sp);
		break;
	case IT_QUEUE:
		rc = store_queue_foreach(st, stop_queued, &sp);
		break;
	case IT_QUEUE_PAIR:
		rc = store_queue_foreach_pair(st, "a.example", "b.example",
		    limit, stop_queued, &sp);
		break;
	case IT_STATS:
		rc = store_stats_foreach(st, stop_stat, &sp);
		break;
	}
	*calls = sp.n;
	return rc;
}

static void
test_foreach_stop(void)
{
	/* stop_at, limit (queue of one pair only), the calls expected */
	static const struct {
		size_t	 stop_at, limit, calls;
	} cases[] = {
		{ 0, 0, 3 },	/* a callback that never stops sees all three */
		{ 2, 0, 2 },	/* stopping at the second: no third call */
		{ 1, 0, 1 },
		{ 0, 1, 1 },	/* a limit stops the queue of a pair too */
		{ 2, 3, 2 },	/* whichever comes first */
		{ 3, 2, 2 },
	};
	struct store *st = open_rw("stop", 0);
	struct store_owner w0 = { 0, 100 };
	const char *const names[] = { "a", "b", "c" };
	const uint64_t d[] = { 1, 2, 3 };
	struct store_key k;
	struct store_pair p;
	struct store_route r;
	struct stopper sp = { 0, 0 };
	char dom[32];
	size_t i, calls;
	int it;

	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	for (i = 0; i < 3; i++) {
		snprintf(dom, sizeof(dom), "r%zu.example", i);
		make_key(&k, "a.example", dom, "id", KEY1, NOW, NOW + 60, 0);
		CU_ASSERT_EQUAL(store_key_put(st, &k), STORE_OK);
		make_pair(&p, "a.example", dom, PAIR_OUT, PAIR_VALID, 0, 100);
		CU_ASSERT_EQUAL(store_pair_put(st, &p), STORE_OK);
		/* two components; the queue's outbound route is the third */
		make_route(&r, ROUTE_COMPONENT, dom, "", 0, 100);
		if (i < 2)
			CU_ASSERT_EQUAL(store_route_claim(st, &r, NULL),
			    STORE_OK);
		CU_ASSERT_EQUAL(store_queue_append(st, "a.example", "b.example",
		    "m", 1, NOW, 0, &w0, NULL, NULL, NULL), STORE_OK);
	}
	CU_ASSERT_EQUAL(store_stats_add(st, 0, names, d, 3), STORE_OK);
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		for (it = 0; it < IT_N; it++) {
			/* only the queue of one pair takes a limit */
			if (cases[i].limit > 0 && it != IT_QUEUE_PAIR)
				continue;
			CU_ASSERT_EQUAL(iterate_stopping(st, it,
			    cases[i].stop_at, cases[i].limit, &calls), STORE_OK);
			CU_ASSERT_EQUAL(calls, cases[i].calls);
		}
	}

	/* input that cannot make a key is refused before any transaction */
	CU_ASSERT_EQUAL(store_pair_get(st, "", "b.example", PAIR_IN, &p),
	    STORE_ERROR);
	CU_ASSERT_EQUAL(store_pair_delete(st, "a\tb", "b.example", PAIR_IN),
	    STORE_ERROR);
	CU_ASSERT_EQUAL(store_route_get(st, ROUTE_OUTBOUND, "a.example", NULL,
	    &r), STORE_ERROR);
	CU_ASSERT_EQUAL(store_route_delete(st, ROUTE_COMPONENT, "", NULL, NULL),
	    STORE_ERROR);
	CU_ASSERT_EQUAL(store_queue_remove(st, "a.example", "", 1),
	    STORE_ERROR);
	CU_ASSERT_EQUAL(store_queue_foreach_pair(st, "", "b.example", 0,
	    stop_queued, &sp), STORE_ERROR);
	store_close(st);
}

/* A route read (and so cached) in this process must follow a change made
 * by another process, and by this one. */
/* Cached route answers stay exact for many pairs at once, and for names
 * too long to cache; a change to one pair is seen at once. */
static void
test_route_cache_many_pairs(void)
{
	struct store *st = open_rw("rmany", 0);
	struct store_route r, got;
	struct store_owner me = { 1, 100 };
	char remote[64], longname[200];
	int i, bad = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	memset(&r, 0, sizeof(r));
	r.kind = ROUTE_OUTBOUND;
	r.owner = me;
	snprintf(r.domain, sizeof(r.domain), "a.example");
	for (i = 0; i < 600; i += 2) {
		snprintf(r.remote, sizeof(r.remote), "peer%d.example", i);
		CU_ASSERT_EQUAL(store_route_claim(st, &r, NULL), STORE_OK);
	}
	/* twice: the second round is answered from the cache */
	for (int round = 0; round < 2; round++) {
		for (i = 0; i < 600; i++) {
			snprintf(remote, sizeof(remote), "peer%d.example", i);
			if (store_route_get(st, ROUTE_OUTBOUND, "a.example", remote, &got) !=
			    (i % 2 == 0 ? STORE_OK : STORE_NOTFOUND))
				bad++;
		}
	}
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_EQUAL(store_route_release(st, ROUTE_OUTBOUND, "a.example", "peer10.example", &me), STORE_OK);
	CU_ASSERT_EQUAL(store_route_get(st, ROUTE_OUTBOUND, "a.example", "peer10.example", &got), STORE_NOTFOUND);
	CU_ASSERT_EQUAL(store_route_get(st, ROUTE_OUTBOUND, "a.example", "peer12.example", &got), STORE_OK);

	/* a name past what the cache keeps: read every time, still right */
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	snprintf(r.remote, sizeof(r.remote), "%s", longname);
	CU_ASSERT_EQUAL(store_route_claim(st, &r, NULL), STORE_OK);
	CU_ASSERT_EQUAL(store_route_get(st, ROUTE_OUTBOUND, "a.example", longname, &got), STORE_OK);
	CU_ASSERT_STRING_EQUAL(got.remote, longname);
	CU_ASSERT_EQUAL(store_route_release(st, ROUTE_OUTBOUND, "a.example", longname, &me), STORE_OK);
	CU_ASSERT_EQUAL(store_route_get(st, ROUTE_OUTBOUND, "a.example", longname, &got), STORE_NOTFOUND);
	store_close(st);
}

static void
test_route_cache_other_process(void)
{
	struct store *st;
	struct store_route r, cur;
	struct store_owner other = { 7, 4242 };
	int status, i;
	pid_t pid;

	st = open_rw("rcache", 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	/* a cached miss */
	CU_ASSERT_EQUAL(store_route_get(st, ROUTE_COMPONENT, "c.example", "", &r), STORE_NOTFOUND);
	CU_ASSERT_EQUAL(store_route_get(st, ROUTE_COMPONENT, "c.example", "", &r), STORE_NOTFOUND);
	pid = fork();
	CU_ASSERT_FATAL(pid != -1);
	if (pid == 0) {
		/* the inherited handle is not used; a fresh one, as a worker has */
		char err[512];
		struct store *cst = store_open(store_dir("rcache"), 0, 0, 32, err, sizeof(err));
		struct store_route nr;

		memset(&nr, 0, sizeof(nr));
		nr.kind = ROUTE_COMPONENT;
		snprintf(nr.domain, sizeof(nr.domain), "c.example");
		nr.owner = other;
		_exit(cst != NULL && store_route_claim(cst, &nr, NULL) == STORE_OK ? 0 : 1);
	}
	CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
	CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	for (i = 0; i < 2; i++) {
		CU_ASSERT_EQUAL(store_route_get(st, ROUTE_COMPONENT, "c.example", "", &r), STORE_OK);
		CU_ASSERT_EQUAL(r.owner.slot, 7);
		CU_ASSERT_EQUAL(r.owner.pid, 4242);
		CU_ASSERT_STRING_EQUAL(r.domain, "c.example");
		CU_ASSERT_EQUAL(r.kind, ROUTE_COMPONENT);
	}
	/* released here: the next read misses again */
	CU_ASSERT_EQUAL(store_route_release(st, ROUTE_COMPONENT, "c.example", "", &other), STORE_OK);
	CU_ASSERT_EQUAL(store_route_get(st, ROUTE_COMPONENT, "c.example", "", &cur), STORE_NOTFOUND);
	/* an outbound pair is another key */
	CU_ASSERT_EQUAL(store_route_get(st, ROUTE_OUTBOUND, "c.example", "r.example", &r), STORE_NOTFOUND);
	store_close(st);
}

int
test_register(void)
{
	CU_pSuite s;

	if ((s = CU_add_suite("store", NULL, NULL)) == NULL)
		return CU_get_error();
	TEST_ADD(s, test_open);
	TEST_ADD(s, test_keys);
	TEST_ADD(s, test_keys_purge_many);
	TEST_ADD(s, test_keys_long);
	TEST_ADD(s, test_pairs);
	TEST_ADD(s, test_routes);
	TEST_ADD(s, test_queue);
	TEST_ADD(s, test_queue_long);
	TEST_ADD(s, test_clear_slot);
	TEST_ADD(s, test_stats);
	TEST_ADD(s, test_dump);
	TEST_ADD(s, test_nested);
	TEST_ADD(s, test_foreach_stop);
	if ((s = CU_add_suite("store processes", NULL, NULL)) == NULL)
		return CU_get_error();
	TEST_ADD(s, test_multiprocess);
	TEST_ADD(s, test_route_cache_many_pairs);
	TEST_ADD(s, test_route_cache_other_process);
	TEST_ADD(s, test_stale_reader);
	TEST_ADD(s, test_map_resized);
	if ((s = CU_add_suite("store limits", NULL, NULL)) == NULL)
		return CU_get_error();
	TEST_ADD(s, test_map_full);
	TEST_ADD(s, test_map_full_pinned);
	TEST_ADD(s, test_queue_share);
	return CUE_SUCCESS;
}
