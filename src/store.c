/* store.c - the LMDB store shared by every dialbackd process. The only file
 * that includes lmdb.h; record formats are described in docs/store.md. */
#include "config.h"

#include <sys/stat.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lmdb.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "log.h"
#include "store.h"
#include "util.h"

enum db_id { DB_KEYS = 0, DB_PAIRS, DB_ROUTES, DB_QUEUE, DB_STATS, DB_COUNT };

static const char *const db_names[DB_COUNT] = {
	[DB_KEYS] = "keys",
	[DB_PAIRS] = "pairs",
	[DB_ROUTES] = "routes",
	[DB_QUEUE] = "queue",
	[DB_STATS] = "stats",
};

#define VAL_VERSION	1	/* first byte of every value */
#define VAL_F_TUPLE	0x01	/* value carries the key tuple (the key is a digest) */
#define KEY_DIGEST	0x01	/* first byte of a key standing for a long tuple */
#define DIGEST_LEN	32	/* SHA-256 */
#define TUPLE_MAX	4096	/* longest key tuple: 3 x 1023 bytes + separators */
#define VALUE_MAX	8192	/* longest value other than a queue entry */
#define SEQ_LEN		8	/* queue key suffix: big-endian sequence number */
#define SLOT_LEN	4	/* stats key suffix: big-endian slot, sign flipped */
#define NAME_MAX_LEN	63	/* stats counter name */
#define DOMAIN_LEN	1023	/* longest domain field (RFC 6120 domainpart) */
#define ID_LEN		255	/* longest stream id */
#define KEYTEXT_LEN	128	/* longest dialback key text */
#define REASON_LEN	127	/* longest failure reason */
/* The queue may take at most 3/4 of the map, so a flood of stanzas for
 * unreachable peers cannot stop keys, pairs and deletes from being written. */
#define QUEUE_SHARE_NUM	3
#define QUEUE_SHARE_DEN	4
/* Inserts stop this many pages short of the map's end: a delete needs free
 * pages for its copy-on-write, and LMDB cannot reuse the pages the latest
 * commit freed, so a map filled to the brim could not even be purged. */
#define RESERVE_PAGES	32
#define RESERVE_SHARE	64	/* or 1/64 of the map if that is more */
#define FULL_WARN_MS	60000	/* repeat the map-full warning at most this often */

struct store {
	MDB_env		*env;
	MDB_dbi		 dbi[DB_COUNT];
	char		 path[PATH_MAX];
	bool		 rdonly;
	size_t		 maxkey;	/* mdb_env_get_maxkeysize() */
	MDB_txn		*rtxn;		/* reset read txn kept for renewal */
	bool		 rtxn_busy;	/* rtxn is in use (an iteration callback is running) */
	unsigned	 nreading;	/* read txns active in this process */
	MDB_txn		*debug_txn;	/* store_debug_begin_read */
	const volatile sig_atomic_t *cancel;
	uint64_t	 full_warned_ms;	/* last map-full warning, 0 = none yet */
	unsigned long	 full_suppressed;	/* map-full events not logged since */
	struct route_cache_entry *route_cache;	/* ROUTE_CACHE_SLOTS, made on first use */
};

/* Routing reads a route for every stanza. An answer is kept with the id of
 * the last committed write transaction, which LMDB keeps in the shared
 * meta page and any writer in any process advances: while it is unchanged
 * no route can have changed, so a cached answer is exact, and checking
 * costs no transaction. */
/* Enough slots that a worker serving a few thousand domain pairs mostly
 * hits; an entry is ~200 bytes and calloc'd pages are touched only as
 * slots are used. Names longer than ROUTE_NAMES_MAX are always read. */
#define ROUTE_CACHE_SLOTS	4096
#define ROUTE_NAMES_MAX		160

struct route_cache_entry {
	uint64_t	 txnid;		/* 0: empty */
	int		 rc;		/* STORE_OK or STORE_NOTFOUND */
	struct store_owner owner;
	time_t		 since;
	enum store_route_kind kind;
	size_t		 nlen;
	char		 names[ROUTE_NAMES_MAX];	/* "domain\0remote" as asked */
};

/* ---- packing: fixed-width big-endian fields into a bounded buffer -------- */

struct pack {
	unsigned char	*buf;
	size_t		 len, cap;
	bool		 over;	/* something did not fit: the record is unusable */
};

static void
pk_bytes(struct pack *pk, const void *p, size_t n)
{
	if (pk->over || n > pk->cap - pk->len) {
		pk->over = true;
		return;
	}
	if (n > 0)
		memcpy(pk->buf + pk->len, p, n);
	pk->len += n;
}

static void
pk_uint(struct pack *pk, uint64_t v, size_t width)
{
	unsigned char b[8];
	size_t i;

	for (i = 0; i < width; i++)
		b[i] = (unsigned char)(v >> (8 * (width - 1 - i)));
	pk_bytes(pk, b, width);
}

/* A string of at most 255 bytes, preceded by its length. */
static void
pk_str8(struct pack *pk, const char *s, size_t max)
{
	size_t n = strnlen(s, max + 1);

	if (n > max || n > UINT8_MAX) {
		pk->over = true;
		return;
	}
	pk_uint(pk, n, 1);
	pk_bytes(pk, s, n);
}

struct unpack {
	const unsigned char	*p;
	size_t			 len, off;
	bool			 bad;	/* read past the end or malformed */
};

static const unsigned char *
up_bytes(struct unpack *u, size_t n)
{
	const unsigned char *p;

	if (u->bad || n > u->len - u->off) {
		u->bad = true;
		return NULL;
	}
	p = u->p + u->off;
	u->off += n;
	return p;
}

static uint64_t
be_get(const unsigned char *p, size_t width)
{
	uint64_t v = 0;
	size_t i;

	for (i = 0; i < width; i++)
		v = (v << 8) | p[i];
	return v;
}

static void
be_put(unsigned char *p, uint64_t v, size_t width)
{
	size_t i;

	for (i = 0; i < width; i++)
		p[i] = (unsigned char)(v >> (8 * (width - 1 - i)));
}

static uint64_t
up_uint(struct unpack *u, size_t width)
{
	const unsigned char *p = up_bytes(u, width);

	return p == NULL ? 0 : be_get(p, width);
}

static void
up_str8(struct unpack *u, char *dst, size_t size)
{
	size_t n = (size_t)up_uint(u, 1);
	const unsigned char *p = up_bytes(u, n);

	dst[0] = '\0';
	if (p == NULL || n >= size) {
		u->bad = true;
		return;
	}
	memcpy(dst, p, n);
	dst[n] = '\0';
}

/* Fields every kind of record shares: a Unix time (int64) and an owner
 * (int32 slot, int32 pid). */
static void
pk_time(struct pack *pk, time_t t)
{
	pk_uint(pk, (uint64_t)(int64_t)t, 8);
}

static time_t
up_time(struct unpack *u)
{
	return (time_t)(int64_t)up_uint(u, 8);
}

static void
pk_owner(struct pack *pk, const struct store_owner *o)
{
	pk_uint(pk, (uint32_t)o->slot, 4);
	pk_uint(pk, (uint32_t)o->pid, 4);
}

static void
up_owner(struct unpack *u, struct store_owner *o)
{
	o->slot = (int32_t)(uint32_t)up_uint(u, 4);
	o->pid = (pid_t)(int32_t)(uint32_t)up_uint(u, 4);
}

/* ---- keys: NUL-separated tuples, or a digest when LMDB's limit is hit ---- */

struct dkey {
	unsigned char	 tuple[TUPLE_MAX];	/* fields joined by NUL */
	size_t		 tlen;
	size_t		 nfields;
	unsigned char	 key[TUPLE_MAX + 1 + SEQ_LEN];	/* what LMDB stores */
	size_t		 klen;
	size_t		 plen;		/* key bytes before the suffix */
	bool		 digest;	/* key is KEY_DIGEST + SHA-256(tuple) */
	bool		 bad;		/* a field was too long or malformed */
};

static void
dk_init(struct dkey *dk)
{
	dk->tlen = 0;
	dk->nfields = 0;
	dk->klen = 0;
	dk->plen = 0;
	dk->digest = false;
	dk->bad = false;
}

/* Key fields are non-empty and free of control bytes: that keeps the NUL
 * separator unambiguous and no plain key can start with KEY_DIGEST. */
static void
dk_field(struct dkey *dk, const char *s, size_t max)
{
	size_t n, i;

	if (dk->bad)
		return;
	if (s == NULL || (n = strnlen(s, max + 1)) > max || n == 0) {
		dk->bad = true;
		return;
	}
	for (i = 0; i < n; i++) {
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
			dk->bad = true;
			return;
		}
	}
	if (n + 1 > sizeof(dk->tuple) - dk->tlen) {
		dk->bad = true;
		return;
	}
	if (dk->nfields > 0)
		dk->tuple[dk->tlen++] = '\0';
	memcpy(dk->tuple + dk->tlen, s, n);
	dk->tlen += n;
	dk->nfields++;
}

/* Plain form: tuple [NUL suffix]. When that exceeds LMDB's key size limit
 * (511 bytes by default, less than three long domains) the key becomes
 * KEY_DIGEST SHA-256(tuple) [suffix] and the value carries the tuple. */
static int
dk_finish(const struct store *st, struct dkey *dk, const void *suffix, size_t slen)
{
	size_t plain = dk->tlen + (slen > 0 ? 1 + slen : 0);
	unsigned int mdlen = 0;

	if (dk->bad || slen > SEQ_LEN)
		return -1;
	if (plain <= st->maxkey) {
		memcpy(dk->key, dk->tuple, dk->tlen);
		dk->klen = dk->tlen;
		if (slen > 0)
			dk->key[dk->klen++] = '\0';
		dk->digest = false;
	} else {
		dk->key[0] = KEY_DIGEST;
		if (EVP_Digest(dk->tuple, dk->tlen, dk->key + 1, &mdlen,
		    EVP_sha256(), NULL) != 1 || mdlen != DIGEST_LEN)
			return -1;
		dk->klen = 1 + DIGEST_LEN;
		dk->digest = true;
	}
	dk->plen = dk->klen;
	if (slen > 0)
		memcpy(dk->key + dk->klen, suffix, slen);
	dk->klen += slen;
	return 0;
}

/* Every value starts: version, flags[, u16 tuple length, tuple]. */
static void
pk_header(struct pack *pk, const struct dkey *dk)
{
	pk_uint(pk, VAL_VERSION, 1);
	pk_uint(pk, dk->digest ? VAL_F_TUPLE : 0, 1);
	if (dk->digest) {
		pk_uint(pk, dk->tlen, 2);
		pk_bytes(pk, dk->tuple, dk->tlen);
	}
}

/* A record read back: its key tuple, the key suffix, and the value after
 * the header. Pointers are into LMDB's map: valid until the txn ends. */
struct rec {
	const unsigned char	*tuple;
	size_t			 tlen;
	const unsigned char	*suffix;
	struct unpack		 val;
};

static int
rec_parse(const MDB_val *k, const MDB_val *v, size_t slen, struct rec *r)
{
	const unsigned char *kp = k->mv_data;
	unsigned version, flags;

	r->val.p = v->mv_data;
	r->val.len = v->mv_size;
	r->val.off = 0;
	r->val.bad = false;
	version = (unsigned)up_uint(&r->val, 1);
	flags = (unsigned)up_uint(&r->val, 1);
	if (r->val.bad || version != VAL_VERSION)
		return -1;
	if (k->mv_size > 0 && kp[0] == KEY_DIGEST) {
		if (!(flags & VAL_F_TUPLE) || k->mv_size != 1 + DIGEST_LEN + slen)
			return -1;
		r->tlen = (size_t)up_uint(&r->val, 2);
		r->tuple = up_bytes(&r->val, r->tlen);
		r->suffix = kp + 1 + DIGEST_LEN;
	} else {
		if (flags & VAL_F_TUPLE)
			return -1;
		if (slen > 0) {
			if (k->mv_size < slen + 2 || kp[k->mv_size - slen - 1] != '\0')
				return -1;
			r->tlen = k->mv_size - slen - 1;
		} else
			r->tlen = k->mv_size;
		r->tuple = kp;
		r->suffix = kp + k->mv_size - slen;
	}
	return r->val.bad ? -1 : 0;
}

/* Splits a tuple into at most max fields, each copied NUL-terminated into
 * dst[i] (sizes[i] bytes). Returns the number of fields, -1 if one does
 * not fit or there are more than max. */
static int
tuple_split(const unsigned char *t, size_t tlen, char *const dst[],
    const size_t sizes[], size_t max)
{
	size_t i = 0, start = 0, end;

	for (;;) {
		if (i == max)
			return -1;
		end = start;
		while (end < tlen && t[end] != '\0')
			end++;
		if (end - start >= sizes[i])
			return -1;
		memcpy(dst[i], t + start, end - start);
		dst[i][end - start] = '\0';
		i++;
		if (end == tlen)
			return (int)i;
		start = end + 1;
	}
}

/* ---- errors ---------------------------------------------------------------- */

static void
full_warn(struct store *st, const char *what)
{
	uint64_t now = util_now_mono_ms();

	if (st->full_warned_ms != 0 && now - st->full_warned_ms < FULL_WARN_MS) {
		st->full_suppressed++;
		return;
	}
	log_warn("store %s: map full, %s refused (%lu more since the last "
	    "warning); raise store_size or drop queues with dialbackd-dbtool",
	    st->path, what, st->full_suppressed);
	st->full_warned_ms = now == 0 ? 1 : now;
	st->full_suppressed = 0;
}

/* Maps an LMDB failure to a status and logs it. */
static int
lmdb_fail(struct store *st, int rc, const char *what)
{
	if (rc == MDB_MAP_FULL) {
		full_warn(st, what);
		return STORE_FULL;
	}
	log_warn("store %s: %s: %s", st->path, what, mdb_strerror(rc));
	return STORE_ERROR;
}

static bool
cancelled(const struct store *st)
{
	return st->cancel != NULL && *st->cancel != 0;
}

/* ---- transactions ---------------------------------------------------------- */

/* Begins a transaction, retrying once after the map was grown by another
 * process or once the reader table was cleared of dead processes. */
static int
txn_begin(struct store *st, unsigned flags, MDB_txn **txn)
{
	int rc, rc2, dead, tries;

	*txn = NULL;
	for (tries = 0;; tries++) {
		rc = mdb_txn_begin(st->env, NULL, flags, txn);
		if (rc == 0)
			return STORE_OK;
		if (tries > 0)
			break;
		if (rc == MDB_MAP_RESIZED) {
			/* Remapping while this process reads would pull the
			 * pages from under that reader. */
			if (st->nreading > 0)
				break;
			if ((rc2 = mdb_env_set_mapsize(st->env, 0)) != 0) {
				log_warn("store %s: adopt new map size: %s",
				    st->path, mdb_strerror(rc2));
				break;
			}
			log_info("store %s: map size changed by another process",
			    st->path);
		} else if (rc == MDB_READERS_FULL) {
			if ((rc2 = mdb_reader_check(st->env, &dead)) != 0) {
				log_warn("store %s: reader check: %s", st->path,
				    mdb_strerror(rc2));
				break;
			}
			log_warn("store %s: reader table full, cleared %d "
			    "stale slot(s)", st->path, dead);
		} else
			break;
	}
	*txn = NULL;
	return lmdb_fail(st, rc, "begin transaction");
}

static int
wtxn_begin(struct store *st, MDB_txn **txn)
{
	*txn = NULL;
	if (st->rdonly) {
		log_warn("store %s: opened read-only, write refused", st->path);
		return STORE_ERROR;
	}
	return txn_begin(st, 0, txn);
}

/* Commits; the txn is gone afterwards whatever the outcome. */
static int
wtxn_commit(struct store *st, MDB_txn **txn, const char *what)
{
	int rc = mdb_txn_commit(*txn);

	*txn = NULL;
	if (rc != 0)
		return lmdb_fail(st, rc, what);
	return STORE_OK;
}

/* Read transactions reuse one handle (mdb_txn_reset/renew) unless it is
 * already in use by an outer iteration of this process. */
static int
rtxn_begin(struct store *st, MDB_txn **txn)
{
	int rc, ret;

	*txn = NULL;
	if (st->rtxn != NULL && !st->rtxn_busy) {
		if ((rc = mdb_txn_renew(st->rtxn)) == 0) {
			*txn = st->rtxn;
			st->rtxn_busy = true;
			st->nreading++;
			return STORE_OK;
		}
		/* e.g. MDB_MAP_RESIZED: start over with a fresh handle */
		mdb_txn_abort(st->rtxn);
		st->rtxn = NULL;
	}
	if ((ret = txn_begin(st, MDB_RDONLY, txn)) != STORE_OK)
		return ret;
	if (st->rtxn == NULL) {
		st->rtxn = *txn;
		st->rtxn_busy = true;
	}
	st->nreading++;
	return STORE_OK;
}

static void
rtxn_end(struct store *st, MDB_txn *txn)
{
	if (txn == NULL)
		return;
	if (txn == st->rtxn) {
		mdb_txn_reset(txn);
		st->rtxn_busy = false;
	} else
		mdb_txn_abort(txn);
	st->nreading--;
}

/* A walk over db from prefix (every record when plen is 0) while keys
 * start with it. fn returns WALK_NEXT, WALK_STOP, or WALK_DELETE (write
 * txns only). A walk with max_delete stops after that many deletions and
 * records where the next one resumes. */
enum walk_verdict { WALK_NEXT = 0, WALK_STOP, WALK_DELETE };

struct walk {
	enum db_id	 db;
	const void	*prefix;
	size_t		 plen;
	enum walk_verdict (*fn)(const MDB_val *, const MDB_val *, void *);
	void		*ctx;
	size_t		 max_delete;	/* 0: no limit */
	size_t		 deleted;	/* out: records deleted */
	bool		 more;		/* out: stopped at max_delete */
	unsigned char	 resume[TUPLE_MAX + 16];	/* start here if rlen > 0 */
	size_t		 rlen;
};

static void
walk_init(struct walk *w, enum db_id db, const void *prefix, size_t plen,
    enum walk_verdict (*fn)(const MDB_val *, const MDB_val *, void *),
    void *ctx)
{
	w->db = db;
	w->prefix = prefix;
	w->plen = plen;
	w->fn = fn;
	w->ctx = ctx;
	w->max_delete = 0;
	w->deleted = 0;
	w->more = false;
	w->rlen = 0;
}

static int
walk(struct store *st, MDB_txn *txn, struct walk *w)
{
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	MDB_cursor_op op = MDB_SET_RANGE;
	int rc, ret = STORE_ERROR;

	w->more = false;
	if ((rc = mdb_cursor_open(txn, st->dbi[w->db], &cur)) != 0) {
		ret = lmdb_fail(st, rc, "open cursor");
		goto out;
	}
	if (w->rlen > 0) {
		k.mv_data = w->resume;
		k.mv_size = w->rlen;
	} else if (w->plen > 0) {
		k.mv_data = (void *)w->prefix;
		k.mv_size = w->plen;
	} else
		op = MDB_FIRST;
	v.mv_data = NULL;
	v.mv_size = 0;
	/* After mdb_cursor_del the cursor already rests on the next record and
	 * MDB_NEXT returns that one, so deleting while walking skips nothing. */
	while ((rc = mdb_cursor_get(cur, &k, &v, op)) == 0) {
		op = MDB_NEXT;
		if (w->plen > 0 && (k.mv_size < w->plen ||
		    memcmp(k.mv_data, w->prefix, w->plen) != 0))
			break;
		if (cancelled(st)) {
			log_debug("store %s: walk of %s cancelled", st->path,
			    db_names[w->db]);
			goto out;
		}
		switch (w->fn(&k, &v, w->ctx)) {
		case WALK_NEXT:
			break;
		case WALK_STOP:
			goto done;
		case WALK_DELETE:
			if (w->max_delete > 0 && w->deleted == w->max_delete) {
				/* resume here: the record is still to do */
				if (k.mv_size > sizeof(w->resume))
					goto out;
				memcpy(w->resume, k.mv_data, k.mv_size);
				w->rlen = k.mv_size;
				w->more = true;
				goto done;
			}
			if ((rc = mdb_cursor_del(cur, 0)) != 0) {
				ret = lmdb_fail(st, rc, "delete");
				goto out;
			}
			w->deleted++;
			break;
		}
	}
	if (rc != 0 && rc != MDB_NOTFOUND) {
		ret = lmdb_fail(st, rc, "read");
		goto out;
	}
 done:
	ret = STORE_OK;
 out:
	if (cur != NULL)
		mdb_cursor_close(cur);
	return ret;
}

/* Read-only walk in its own read txn. */
static int
walk_read(struct store *st, enum db_id db, const void *prefix, size_t plen,
    enum walk_verdict (*fn)(const MDB_val *, const MDB_val *, void *),
    void *ctx)
{
	struct walk w;
	MDB_txn *txn = NULL;
	int ret;

	walk_init(&w, db, prefix, plen, fn, ctx);
	if ((ret = rtxn_begin(st, &txn)) != STORE_OK)
		return ret;
	ret = walk(st, txn, &w);
	rtxn_end(st, txn);
	return ret;
}

#define DELETE_BATCH	256	/* records deleted per write txn */

/* Deletes what fn selects in write txns of at most DELETE_BATCH deletions:
 * short txns keep other workers' writes flowing, and in a full map a small
 * batch still finds the few free pages its copy-on-write needs (the batch
 * is halved on MDB_MAP_FULL, down to one record). *deleted counts. */
static int
delete_batched(struct store *st, enum db_id db, const void *prefix,
    size_t plen, enum walk_verdict (*fn)(const MDB_val *, const MDB_val *, void *),
    void *ctx, size_t *deleted, const char *what)
{
	struct walk *w;
	MDB_txn *txn = NULL;
	unsigned char *start = NULL;	/* where the current batch began */
	size_t batch = DELETE_BATCH, slen;
	int ret = STORE_ERROR;

	if ((w = malloc(sizeof(*w))) == NULL ||
	    (start = malloc(sizeof(w->resume))) == NULL) {
		log_warn("store %s: %s: out of memory", st->path, what);
		goto out;
	}
	walk_init(w, db, prefix, plen, fn, ctx);
	do {
		memcpy(start, w->resume, w->rlen);
		slen = w->rlen;
		if ((ret = wtxn_begin(st, &txn)) != STORE_OK)
			goto out;
		w->deleted = 0;
		w->max_delete = batch;
		if ((ret = walk(st, txn, w)) == STORE_OK)
			ret = wtxn_commit(st, &txn, what);
		if (txn != NULL) {
			mdb_txn_abort(txn);
			txn = NULL;
		}
		if (ret == STORE_FULL && batch > 1) {
			/* nothing of this batch was written: redo it smaller */
			batch /= 2;
			memcpy(w->resume, start, slen);
			w->rlen = slen;
			w->more = true;
			continue;
		}
		if (ret != STORE_OK)
			goto out;
		*deleted += w->deleted;
	} while (w->more);
 out:
	free(start);
	free(w);
	return ret;
}

static void
bad_record(const struct store *st, enum db_id db)
{
	log_warn("store %s: skipping a malformed or newer-format record in %s",
	    st->path, db_names[db]);
}

/* Inside a write txn, before an insert of about len bytes into db: refuses
 * (STORE_FULL, warned) when the map would keep fewer than the reserve pages
 * free, or the queue would pass its share. Live pages are counted from the
 * databases' own page counts (O(1)), so pages freed by deletes count as
 * free again; pages pinned by readers are caught by MDB_MAP_FULL instead. */
static int
room_check(struct store *st, MDB_txn *txn, enum db_id db, size_t len,
    const char *what)
{
	MDB_stat ms;
	MDB_envinfo ei;
	uint64_t live = 2, need, map_pages, reserve, dbpages = 0;
	MDB_dbi dbi;
	int rc, i;

	if ((rc = mdb_env_info(st->env, &ei)) != 0)
		return lmdb_fail(st, rc, "env info");
	/* 0 and 1 are LMDB's free-page and main databases; +2 meta pages */
	for (i = -2; i < DB_COUNT; i++) {
		dbi = i < 0 ? (MDB_dbi)(i + 2) : st->dbi[i];
		if ((rc = mdb_stat(txn, dbi, &ms)) != 0)
			return lmdb_fail(st, rc, "stat");
		live += (uint64_t)ms.ms_branch_pages + ms.ms_leaf_pages +
		    ms.ms_overflow_pages;
		if (i >= 0 && (enum db_id)i == db)
			dbpages = (uint64_t)ms.ms_branch_pages +
			    ms.ms_leaf_pages + ms.ms_overflow_pages;
	}
	if (ms.ms_psize == 0)
		return STORE_ERROR;
	map_pages = (uint64_t)ei.me_mapsize / ms.ms_psize;
	/* the record's own pages, plus a split up the tree */
	need = (len + ms.ms_psize - 1) / ms.ms_psize + 2;
	reserve = map_pages / RESERVE_SHARE;
	if (reserve < RESERVE_PAGES)
		reserve = RESERVE_PAGES;
	if (live + need + reserve > map_pages) {
		full_warn(st, what);
		return STORE_FULL;
	}
	if (db == DB_QUEUE &&
	    (dbpages + need) * QUEUE_SHARE_DEN > map_pages * QUEUE_SHARE_NUM) {
		full_warn(st, "queue append (the queue's share of the map is "
		    "used up)");
		return STORE_FULL;
	}
	return STORE_OK;
}

static bool
owner_equal(const struct store_owner *a, const struct store_owner *b)
{
	return a->slot == b->slot && a->pid == b->pid;
}

/* ---- records: decoding, one-record transactions, typed iteration ------- */

/* A queue entry read back: the domains copied, the stanza in the map. */
struct queue_rec {
	char		 local[1024], remote[1024];
	struct store_queued q;
};

/* One decoded record of any database. */
union record {
	struct store_key	k;
	struct store_pair	p;
	struct store_route	r;
	struct queue_rec	q;
	struct store_stat	s;
};

static int key_decode(const MDB_val *, const MDB_val *, struct store_key *);
static int pair_decode(const MDB_val *, const MDB_val *, struct store_pair *);
static int route_decode(const MDB_val *, const MDB_val *, struct store_route *);
static int queue_decode(const MDB_val *, const MDB_val *, struct queue_rec *);
static int stat_decode(const MDB_val *, const MDB_val *, struct store_stat *);

/* Decodes a record of db into out, the structure that db holds (a member
 * of union record). -1 when it is malformed or of a newer format. */
static int
record_decode(enum db_id db, const MDB_val *k, const MDB_val *v, void *out)
{
	switch (db) {
	case DB_KEYS:
		return key_decode(k, v, out);
	case DB_PAIRS:
		return pair_decode(k, v, out);
	case DB_ROUTES:
		return route_decode(k, v, out);
	case DB_QUEUE:
		return queue_decode(k, v, out);
	case DB_STATS:
		return stat_decode(k, v, out);
	case DB_COUNT:
		break;
	}
	return -1;
}

static MDB_val
dk_val(const struct dkey *dk)
{
	MDB_val mk;

	mk.mv_data = (void *)dk->key;
	mk.mv_size = dk->klen;
	return mk;
}

/* Logs input that cannot make a key; STORE_ERROR. */
static int
bad_input(const struct store *st, const char *what, const char *fields)
{
	log_warn("store %s: %s: %s too long or malformed", st->path, what,
	    fields);
	return STORE_ERROR;
}

/* Inside txn: dk's record of db, decoded into out. STORE_NOTFOUND when
 * there is none; a record that cannot be decoded is STORE_ERROR. */
static int
txn_get(struct store *st, MDB_txn *txn, enum db_id db, const struct dkey *dk,
    void *out, const char *what)
{
	MDB_val mk = dk_val(dk), mv;
	int rc;

	rc = mdb_get(txn, st->dbi[db], &mk, &mv);
	if (rc == MDB_NOTFOUND)
		return STORE_NOTFOUND;
	if (rc != 0)
		return lmdb_fail(st, rc, what);
	if (record_decode(db, &mk, &mv, out) == -1) {
		bad_record(st, db);
		return STORE_ERROR;
	}
	return STORE_OK;
}

/* txn_get in a read txn of its own. */
static int
get_one(struct store *st, enum db_id db, const struct dkey *dk, void *out,
    const char *what)
{
	MDB_txn *txn = NULL;
	int ret;

	if ((ret = rtxn_begin(st, &txn)) != STORE_OK)
		return ret;
	ret = txn_get(st, txn, db, dk, out, what);
	rtxn_end(st, txn);
	return ret;
}

/* Writes (or overwrites) dk's record of db in a write txn of its own,
 * after the room check. */
static int
put_one(struct store *st, enum db_id db, const struct dkey *dk,
    const void *val, size_t len, const char *what)
{
	MDB_txn *txn = NULL;
	MDB_val mk = dk_val(dk), mv;
	int rc, ret;

	mv.mv_data = (void *)val;
	mv.mv_size = len;
	if ((ret = wtxn_begin(st, &txn)) != STORE_OK)
		goto out;
	if ((ret = room_check(st, txn, db, mk.mv_size + mv.mv_size,
	    what)) != STORE_OK)
		goto out;
	if ((rc = mdb_put(txn, st->dbi[db], &mk, &mv, 0)) != 0) {
		ret = lmdb_fail(st, rc, what);
		goto out;
	}
	ret = wtxn_commit(st, &txn, what);
 out:
	if (txn != NULL)
		mdb_txn_abort(txn);
	return ret;
}

/* Deletes dk's record of db in a write txn of its own; STORE_NOTFOUND
 * when there was none. */
static int
del_one(struct store *st, enum db_id db, const struct dkey *dk,
    const char *what)
{
	MDB_txn *txn = NULL;
	MDB_val mk = dk_val(dk);
	int rc, ret;

	if ((ret = wtxn_begin(st, &txn)) != STORE_OK)
		goto out;
	rc = mdb_del(txn, st->dbi[db], &mk, NULL);
	if (rc == MDB_NOTFOUND) {
		ret = STORE_NOTFOUND;
		goto out;
	}
	if (rc != 0) {
		ret = lmdb_fail(st, rc, what);
		goto out;
	}
	ret = wtxn_commit(st, &txn, what);
 out:
	if (txn != NULL)
		mdb_txn_abort(txn);
	return ret;
}

/* The caller's callback of a typed iteration, one type per database. */
union iter_cb {
	int	(*key)(const struct store_key *, void *);
	int	(*pair)(const struct store_pair *, void *);
	int	(*route)(const struct store_route *, void *);
	int	(*queue)(const struct store_queued *, void *);
	int	(*stat)(const struct store_stat *, void *);
};

struct iter {
	struct store	*st;
	enum db_id	 db;
	union iter_cb	 cb;
	void		*ctx;
	size_t		 limit, seen;	/* limit 0: every record */
	union record	 rec;
};

static int
iter_call(struct iter *it)
{
	switch (it->db) {
	case DB_KEYS:
		return it->cb.key(&it->rec.k, it->ctx);
	case DB_PAIRS:
		return it->cb.pair(&it->rec.p, it->ctx);
	case DB_ROUTES:
		return it->cb.route(&it->rec.r, it->ctx);
	case DB_QUEUE:
		return it->cb.queue(&it->rec.q.q, it->ctx);
	case DB_STATS:
		return it->cb.stat(&it->rec.s, it->ctx);
	case DB_COUNT:
		break;
	}
	return 1;
}

static enum walk_verdict
iter_one(const MDB_val *k, const MDB_val *v, void *arg)
{
	struct iter *it = arg;
	int stop;

	if (record_decode(it->db, k, v, &it->rec) == -1) {
		bad_record(it->st, it->db);
		return WALK_NEXT;
	}
	stop = iter_call(it);
	/* a dialback key is secret-equivalent: no copy outlives the call */
	if (it->db == DB_KEYS)
		util_wipe(&it->rec.k, sizeof(it->rec.k));
	if (stop != 0 || (it->limit > 0 && ++it->seen >= it->limit))
		return WALK_STOP;
	return WALK_NEXT;
}

/* Decodes each record of db that starts with prefix (every record when
 * plen is 0), in key order, and hands it to cb, for at most limit records
 * (0: all); cb stops early by returning non-zero. One read txn. */
static int
iterate(struct store *st, enum db_id db, union iter_cb cb, void *ctx,
    const void *prefix, size_t plen, size_t limit)
{
	struct iter *it;
	int ret;

	/* the record holds two 1K domains or more: keep it off the caller's
	 * stack, iteration callbacks may call the store again */
	if ((it = calloc(1, sizeof(*it))) == NULL) {
		log_warn("store %s: out of memory", st->path);
		return STORE_ERROR;
	}
	it->st = st;
	it->db = db;
	it->cb = cb;
	it->ctx = ctx;
	it->limit = limit;
	ret = walk_read(st, db, prefix, plen, iter_one, it);
	free(it);
	return ret;
}

/* ---- environment ----------------------------------------------------------- */

struct store *
store_open(const char *dir, uint64_t map_size, unsigned flags,
    unsigned maxreaders, char *err, size_t errlen)
{
	struct store *st = NULL;
	struct stat sb;
	MDB_txn *txn = NULL;
	char file[PATH_MAX + 16];
	unsigned envflags = MDB_NOTLS;
	unsigned dbflags = 0;
	bool must_exist = (flags & (STORE_RDONLY | STORE_NOCREATE)) != 0;
	int rc, dead, i;

	if (errlen > 0)
		err[0] = '\0';
	if (dir == NULL || dir[0] == '\0' || strlen(dir) >= sizeof(st->path)) {
		snprintf(err, errlen, "store: invalid directory name");
		goto fail;
	}
	if ((st = calloc(1, sizeof(*st))) == NULL) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		goto fail;
	}
	memcpy(st->path, dir, strlen(dir) + 1);
	st->rdonly = (flags & STORE_RDONLY) != 0;
	if (!must_exist && mkdir(dir, 0700) == -1 && errno != EEXIST) {
		snprintf(err, errlen, "%s: cannot create directory: %s", dir,
		    strerror(errno));
		goto fail;
	}
	if (stat(dir, &sb) == -1) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		goto fail;
	}
	if (!S_ISDIR(sb.st_mode)) {
		snprintf(err, errlen, "%s: not a directory", dir);
		goto fail;
	}
	snprintf(file, sizeof(file), "%s/data.mdb", dir);
	if (must_exist && stat(file, &sb) == -1) {
		snprintf(err, errlen, "%s: no store here (%s: %s)", dir, file,
		    strerror(errno));
		goto fail;
	}

	if ((rc = mdb_env_create(&st->env)) != 0) {
		snprintf(err, errlen, "%s: %s", dir, mdb_strerror(rc));
		goto fail;
	}
	if (map_size > 0 && (map_size > SIZE_MAX ||
	    (rc = mdb_env_set_mapsize(st->env, (size_t)map_size)) != 0)) {
		snprintf(err, errlen, "%s: map size %llu: %s", dir,
		    (unsigned long long)map_size,
		    map_size > SIZE_MAX ? "too large" : mdb_strerror(rc));
		goto fail;
	}
	if (maxreaders > 0 &&
	    (rc = mdb_env_set_maxreaders(st->env, maxreaders)) != 0) {
		snprintf(err, errlen, "%s: max readers: %s", dir, mdb_strerror(rc));
		goto fail;
	}
	if ((rc = mdb_env_set_maxdbs(st->env, DB_COUNT)) != 0) {
		snprintf(err, errlen, "%s: max dbs: %s", dir, mdb_strerror(rc));
		goto fail;
	}
	if (st->rdonly)
		envflags |= MDB_RDONLY;
	if (flags & STORE_NOSYNC)
		envflags |= MDB_NOSYNC;
	if ((rc = mdb_env_open(st->env, dir, envflags, 0600)) != 0) {
		snprintf(err, errlen, "%s: %s", dir, mdb_strerror(rc));
		goto fail;
	}
	/* A process that died in a read txn pins old pages until its slot is
	 * cleared; every process does this at start (after fork). */
	if (flags & STORE_NOCHECK)
		;
	else if ((rc = mdb_reader_check(st->env, &dead)) != 0)
		log_warn("store %s: reader check: %s", dir, mdb_strerror(rc));
	else if (dead > 0)
		log_notice("store %s: cleared %d stale reader slot(s)", dir, dead);
	else
		log_debug("store %s: no stale reader slots", dir);
	st->maxkey = (size_t)mdb_env_get_maxkeysize(st->env);

	/* All named databases, once, in one transaction (mdb_dbi_open rule). */
	if (txn_begin(st, st->rdonly ? MDB_RDONLY : 0, &txn) != STORE_OK) {
		snprintf(err, errlen, "%s: cannot begin a transaction", dir);
		goto fail;
	}
	if (!must_exist)
		dbflags = MDB_CREATE;
	for (i = 0; i < DB_COUNT; i++) {
		rc = mdb_dbi_open(txn, db_names[i], dbflags, &st->dbi[i]);
		if (rc == MDB_NOTFOUND) {
			snprintf(err, errlen, "%s: store not initialised (no "
			    "\"%s\" database; dialbackd creates it)", dir,
			    db_names[i]);
			goto fail;
		}
		if (rc != 0) {
			snprintf(err, errlen, "%s: database %s: %s", dir,
			    db_names[i], mdb_strerror(rc));
			goto fail;
		}
	}
	rc = mdb_txn_commit(txn);
	txn = NULL;
	if (rc != 0) {
		snprintf(err, errlen, "%s: %s", dir, mdb_strerror(rc));
		goto fail;
	}
	return st;

 fail:
	if (txn != NULL)
		mdb_txn_abort(txn);
	store_close(st);
	return NULL;
}

void
store_close(struct store *st)
{
	if (st == NULL)
		return;
	if (st->debug_txn != NULL)
		mdb_txn_abort(st->debug_txn);
	if (st->rtxn != NULL)
		mdb_txn_abort(st->rtxn);
	if (st->env != NULL)
		mdb_env_close(st->env);
	free(st->route_cache);
	free(st);
}

int
store_reader_check(struct store *st, int *dead)
{
	int rc, n = 0;

	if ((rc = mdb_reader_check(st->env, &n)) != 0)
		return lmdb_fail(st, rc, "reader check");
	if (dead != NULL)
		*dead = n;
	return STORE_OK;
}

struct reader_list_ctx {
	void	(*cb)(const char *, void *);
	void	*ctx;
};

static int
reader_line(const char *msg, void *arg)
{
	struct reader_list_ctx *rl = arg;
	char line[256];
	size_t n;

	/* One call per line, each ending in a newline. */
	n = util_strlcpy(line, msg, sizeof(line));
	if (n >= sizeof(line))
		n = sizeof(line) - 1;
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	rl->cb(line, rl->ctx);
	return 0;
}

int
store_reader_list(struct store *st, void (*cb)(const char *line, void *ctx),
    void *ctx)
{
	struct reader_list_ctx rl = { cb, ctx };
	int rc;

	if ((rc = mdb_reader_list(st->env, reader_line, &rl)) < 0)
		return lmdb_fail(st, rc, "reader list");
	return STORE_OK;
}

const char *
store_path(const struct store *st)
{
	return st->path;
}

const char *
store_strerror(enum store_status s)
{
	switch (s) {
	case STORE_OK:
		return "ok";
	case STORE_NOTFOUND:
		return "not found";
	case STORE_EXISTS:
		return "held by another owner or limit reached";
	case STORE_ERROR:
		return "store error";
	case STORE_FULL:
		return "store full";
	}
	return "unknown store status";
}

void
store_set_cancel(struct store *st, const volatile sig_atomic_t *flag)
{
	st->cancel = flag;
}

int
store_debug_begin_read(struct store *st)
{
	if (st->debug_txn != NULL)
		return STORE_ERROR;
	if (txn_begin(st, MDB_RDONLY, &st->debug_txn) != STORE_OK)
		return STORE_ERROR;
	st->nreading++;
	return STORE_OK;
}

void
store_debug_end_read(struct store *st)
{
	if (st->debug_txn == NULL)
		return;
	mdb_txn_abort(st->debug_txn);
	st->debug_txn = NULL;
	st->nreading--;
}

/* ---- keys ------------------------------------------------------------------ */

static int
key_dk(const struct store *st, struct dkey *dk, const char *originating,
    const char *receiving, const char *stream_id)
{
	dk_init(dk);
	dk_field(dk, originating, DOMAIN_LEN);
	dk_field(dk, receiving, DOMAIN_LEN);
	dk_field(dk, stream_id, ID_LEN);
	return dk_finish(st, dk, NULL, 0);
}

static int
key_decode(const MDB_val *k, const MDB_val *v, struct store_key *out)
{
	struct rec r;
	char *const dst[] = { out->originating, out->receiving, out->stream_id };
	const size_t sizes[] = { sizeof(out->originating),
	    sizeof(out->receiving), sizeof(out->stream_id) };

	memset(out, 0, sizeof(*out));
	if (rec_parse(k, v, 0, &r) == -1 ||
	    tuple_split(r.tuple, r.tlen, dst, sizes, 3) != 3)
		return -1;
	out->issued = up_time(&r.val);
	out->expires = up_time(&r.val);
	up_owner(&r.val, &out->owner);
	up_str8(&r.val, out->key, sizeof(out->key));
	return r.val.bad ? -1 : 0;
}

int
store_key_put(struct store *st, const struct store_key *k)
{
	struct dkey dk;
	unsigned char buf[VALUE_MAX];
	struct pack pk = { buf, 0, sizeof(buf), false };
	int ret;

	if (key_dk(st, &dk, k->originating, k->receiving, k->stream_id) == -1)
		return bad_input(st, "key put", "domain or stream id");
	pk_header(&pk, &dk);
	pk_time(&pk, k->issued);
	pk_time(&pk, k->expires);
	pk_owner(&pk, &k->owner);
	pk_str8(&pk, k->key, KEYTEXT_LEN);
	if (pk.over || k->key[0] == '\0') {
		log_warn("store %s: key put: key text empty or too long", st->path);
		ret = STORE_ERROR;
	} else
		ret = put_one(st, DB_KEYS, &dk, buf, pk.len, "key put");
	util_wipe(buf, sizeof(buf));
	return ret;
}

int
store_key_check(struct store *st, const char *originating,
    const char *receiving, const char *stream_id, const char *key,
    size_t keylen, time_t now, enum store_key_verdict *verdict,
    struct store_owner *issuer)
{
	struct dkey dk;
	struct store_key k;
	size_t stored;
	int ret;

	memset(&k, 0, sizeof(k));
	if (key_dk(st, &dk, originating, receiving, stream_id) == -1)
		return bad_input(st, "key check", "domain or stream id");
	ret = get_one(st, DB_KEYS, &dk, &k, "key check");
	if (ret == STORE_NOTFOUND) {
		*verdict = KEY_UNKNOWN;
		ret = STORE_OK;
		goto out;
	}
	if (ret != STORE_OK)
		goto out;
	if (issuer != NULL)
		*issuer = k.owner;
	stored = strlen(k.key);
	/* Key lengths are public (fixed-size hex); the text is compared in
	 * constant time. */
	if (k.expires <= now)
		*verdict = KEY_EXPIRED;
	else if (key == NULL || keylen != stored ||
	    CRYPTO_memcmp(k.key, key, stored) != 0)
		*verdict = KEY_MISMATCH;
	else
		*verdict = KEY_VALID;
 out:
	util_wipe(&k, sizeof(k));
	return ret;
}

int
store_key_delete(struct store *st, const char *originating,
    const char *receiving, const char *stream_id)
{
	struct dkey dk;

	if (key_dk(st, &dk, originating, receiving, stream_id) == -1)
		return bad_input(st, "key delete", "domain or stream id");
	return del_one(st, DB_KEYS, &dk, "key delete");
}

struct purge_ctx {
	struct store	*st;
	time_t		 now;
};

static enum walk_verdict
purge_one(const MDB_val *k, const MDB_val *v, void *arg)
{
	struct purge_ctx *pc = arg;
	struct store_key key;
	enum walk_verdict verdict = WALK_NEXT;

	if (key_decode(k, v, &key) == -1)
		bad_record(pc->st, DB_KEYS);
	else if (key.expires <= pc->now)
		verdict = WALK_DELETE;
	util_wipe(&key, sizeof(key));
	return verdict;
}

int
store_keys_purge(struct store *st, time_t now, size_t *purged)
{
	struct purge_ctx pc = { st, now };
	size_t n = 0;
	int ret;

	/* Batched, not atomic: a key expired is expired in any batch. */
	ret = delete_batched(st, DB_KEYS, NULL, 0, purge_one, &pc, &n,
	    "key purge");
	if (purged != NULL)
		*purged = n;
	return ret;
}

int
store_keys_foreach(struct store *st,
    int (*cb)(const struct store_key *k, void *ctx), void *ctx)
{
	return iterate(st, DB_KEYS, (union iter_cb){ .key = cb }, ctx, NULL, 0,
	    0);
}

/* ---- pairs ----------------------------------------------------------------- */

const char *
store_pair_state_name(enum store_pair_state s)
{
	switch (s) {
	case PAIR_PENDING:
		return "pending";
	case PAIR_VALID:
		return "valid";
	case PAIR_INVALID:
		return "invalid";
	case PAIR_FAILED:
		return "failed";
	}
	return "unknown";
}

const char *
store_pair_dir_name(enum store_pair_dir d)
{
	switch (d) {
	case PAIR_IN:
		return "in";
	case PAIR_OUT:
		return "out";
	}
	return "unknown";
}

static int
pair_dk(const struct store *st, struct dkey *dk, const char *local,
    const char *remote, enum store_pair_dir dir)
{
	dk_init(dk);
	if (dir != PAIR_IN && dir != PAIR_OUT)
		dk->bad = true;
	dk_field(dk, local, DOMAIN_LEN);
	dk_field(dk, remote, DOMAIN_LEN);
	dk_field(dk, store_pair_dir_name(dir), 3);
	return dk_finish(st, dk, NULL, 0);
}

static int
pair_decode(const MDB_val *k, const MDB_val *v, struct store_pair *out)
{
	struct rec r;
	char dir[4];
	char *const dst[] = { out->local, out->remote, dir };
	const size_t sizes[] = { sizeof(out->local), sizeof(out->remote),
	    sizeof(dir) };
	unsigned state;

	memset(out, 0, sizeof(*out));
	if (rec_parse(k, v, 0, &r) == -1 ||
	    tuple_split(r.tuple, r.tlen, dst, sizes, 3) != 3)
		return -1;
	if (strcmp(dir, "in") == 0)
		out->dir = PAIR_IN;
	else if (strcmp(dir, "out") == 0)
		out->dir = PAIR_OUT;
	else
		return -1;
	state = (unsigned)up_uint(&r.val, 1);
	if (state > PAIR_FAILED)
		return -1;
	out->state = (enum store_pair_state)state;
	up_owner(&r.val, &out->owner);
	out->conn_id = up_uint(&r.val, 8);
	out->since = up_time(&r.val);
	up_str8(&r.val, out->stream_id, sizeof(out->stream_id));
	up_str8(&r.val, out->reason, sizeof(out->reason));
	return r.val.bad ? -1 : 0;
}

int
store_pair_put(struct store *st, const struct store_pair *p)
{
	struct dkey dk;
	unsigned char buf[VALUE_MAX];
	struct pack pk = { buf, 0, sizeof(buf), false };

	if (pair_dk(st, &dk, p->local, p->remote, p->dir) == -1 ||
	    p->state > PAIR_FAILED)
		return bad_input(st, "pair put", "domain");
	pk_header(&pk, &dk);
	pk_uint(&pk, (unsigned)p->state, 1);
	pk_owner(&pk, &p->owner);
	pk_uint(&pk, p->conn_id, 8);
	pk_time(&pk, p->since);
	pk_str8(&pk, p->stream_id, ID_LEN);
	pk_str8(&pk, p->reason, REASON_LEN);
	if (pk.over) {
		log_warn("store %s: pair put: stream id or reason too long",
		    st->path);
		return STORE_ERROR;
	}
	return put_one(st, DB_PAIRS, &dk, buf, pk.len, "pair put");
}

int
store_pair_get(struct store *st, const char *local, const char *remote,
    enum store_pair_dir dir, struct store_pair *out)
{
	struct dkey dk;

	if (pair_dk(st, &dk, local, remote, dir) == -1)
		return bad_input(st, "pair get", "domain");
	return get_one(st, DB_PAIRS, &dk, out, "pair get");
}

int
store_pair_delete(struct store *st, const char *local, const char *remote,
    enum store_pair_dir dir)
{
	struct dkey dk;

	if (pair_dk(st, &dk, local, remote, dir) == -1)
		return bad_input(st, "pair delete", "domain");
	return del_one(st, DB_PAIRS, &dk, "pair delete");
}

int
store_pairs_foreach(struct store *st,
    int (*cb)(const struct store_pair *p, void *ctx), void *ctx)
{
	return iterate(st, DB_PAIRS, (union iter_cb){ .pair = cb }, ctx, NULL,
	    0, 0);
}

/* ---- routes ---------------------------------------------------------------- */

const char *
store_route_kind_name(enum store_route_kind k)
{
	switch (k) {
	case ROUTE_COMPONENT:
		return "component";
	case ROUTE_OUTBOUND:
		return "outbound";
	}
	return "unknown";
}

int
store_route_kind_parse(const char *s, enum store_route_kind *out)
{
	if (strcmp(s, "component") == 0)
		*out = ROUTE_COMPONENT;
	else if (strcmp(s, "outbound") == 0)
		*out = ROUTE_OUTBOUND;
	else
		return -1;
	return 0;
}

static int
route_dk(const struct store *st, struct dkey *dk, enum store_route_kind kind,
    const char *domain, const char *remote)
{
	dk_init(dk);
	if (kind != ROUTE_COMPONENT && kind != ROUTE_OUTBOUND)
		dk->bad = true;
	dk_field(dk, store_route_kind_name(kind), 16);
	dk_field(dk, domain, DOMAIN_LEN);
	if (kind == ROUTE_OUTBOUND)
		dk_field(dk, remote, DOMAIN_LEN);
	return dk_finish(st, dk, NULL, 0);
}

static int
route_decode(const MDB_val *k, const MDB_val *v, struct store_route *out)
{
	struct rec r;
	char kind[16];
	char *const dst[] = { kind, out->domain, out->remote };
	const size_t sizes[] = { sizeof(kind), sizeof(out->domain),
	    sizeof(out->remote) };
	int n;

	memset(out, 0, sizeof(*out));
	if (rec_parse(k, v, 0, &r) == -1 ||
	    (n = tuple_split(r.tuple, r.tlen, dst, sizes, 3)) < 2 ||
	    store_route_kind_parse(kind, &out->kind) == -1 ||
	    n != (out->kind == ROUTE_OUTBOUND ? 3 : 2))
		return -1;
	if (n == 2)
		out->remote[0] = '\0';
	up_owner(&r.val, &out->owner);
	out->since = up_time(&r.val);
	return r.val.bad ? -1 : 0;
}

static size_t
route_pack(unsigned char *buf, size_t cap, const struct dkey *dk,
    const struct store_owner *owner, time_t since)
{
	struct pack pk = { buf, 0, cap, false };

	pk_header(&pk, dk);
	pk_owner(&pk, owner);
	pk_time(&pk, since);
	return pk.over ? 0 : pk.len;
}

/* Inside a write txn: claims dk's route for owner unless someone holds it.
 * *claimed: this call wrote the claim; cur gets the route as it stands. */
static int
route_claim_txn(struct store *st, MDB_txn *txn, const struct dkey *dk,
    const struct store_owner *owner, time_t since, bool *claimed,
    struct store_route *cur)
{
	unsigned char buf[VALUE_MAX];
	MDB_val mk = dk_val(dk), mv;
	size_t len;
	int rc;

	*claimed = false;
	if ((rc = txn_get(st, txn, DB_ROUTES, dk, cur, "route get")) !=
	    STORE_NOTFOUND)
		return rc;	/* held (cur says by whom), or a failure */
	if ((len = route_pack(buf, sizeof(buf), dk, owner, since)) == 0)
		return STORE_ERROR;
	if ((rc = room_check(st, txn, DB_ROUTES, dk->klen + len,
	    "route claim")) != STORE_OK)
		return rc;
	mv.mv_data = buf;
	mv.mv_size = len;
	if ((rc = mdb_put(txn, st->dbi[DB_ROUTES], &mk, &mv, 0)) != 0)
		return lmdb_fail(st, rc, "route claim");
	if (route_decode(&mk, &mv, cur) == -1)
		return STORE_ERROR;
	*claimed = true;
	return STORE_OK;
}

int
store_route_claim(struct store *st, const struct store_route *r,
    struct store_route *current)
{
	struct dkey dk;
	struct store_route cur;
	MDB_txn *txn = NULL;
	bool claimed;
	int ret = STORE_ERROR;

	if (route_dk(st, &dk, r->kind, r->domain, r->remote) == -1)
		return bad_input(st, "route claim", "domain");
	if ((ret = wtxn_begin(st, &txn)) != STORE_OK)
		goto out;
	if ((ret = route_claim_txn(st, txn, &dk, &r->owner, r->since,
	    &claimed, &cur)) != STORE_OK)
		goto out;
	if (!claimed && !owner_equal(&cur.owner, &r->owner)) {
		if (current != NULL)
			*current = cur;
		ret = STORE_EXISTS;
		goto out;
	}
	if (claimed)
		ret = wtxn_commit(st, &txn, "route claim");
	if (ret == STORE_OK && current != NULL)
		*current = cur;
 out:
	if (txn != NULL)
		mdb_txn_abort(txn);
	return ret;
}

static uint64_t
last_txnid(struct store *st)
{
	MDB_envinfo ei;

	return mdb_env_info(st->env, &ei) == 0 ? (uint64_t)ei.me_last_txnid : 0;
}

/* The slot for a question, found from the names as asked: a hit costs
 * no key building. *dlen gets strlen(domain) and *nlen the length of
 * "domain\0remote"; NULL when the names are too long to cache (they are
 * then always read). */
static struct route_cache_entry *
route_cache_slot(struct store *st, enum store_route_kind kind, const char *domain,
    const char *remote, size_t *dlen, size_t *nlen)
{
	size_t rlen = strnlen(remote, ROUTE_NAMES_MAX), i;
	uint32_t h = 2166136261u ^ (uint32_t)kind;	/* FNV-1a */

	*dlen = strnlen(domain, ROUTE_NAMES_MAX);
	if (*dlen + 1 + rlen >= ROUTE_NAMES_MAX)
		return NULL;
	if (st->route_cache == NULL &&
	    (st->route_cache = calloc(ROUTE_CACHE_SLOTS, sizeof(*st->route_cache))) == NULL)
		return NULL;	/* no cache: every lookup reads the store */
	for (i = 0; i < *dlen; i++)
		h = (h ^ (unsigned char)domain[i]) * 16777619u;
	h = (h ^ 0) * 16777619u;
	for (i = 0; i < rlen; i++)
		h = (h ^ (unsigned char)remote[i]) * 16777619u;
	*nlen = *dlen + 1 + rlen;
	return &st->route_cache[h % ROUTE_CACHE_SLOTS];
}

int
store_route_get(struct store *st, enum store_route_kind kind,
    const char *domain, const char *remote, struct store_route *out)
{
	struct route_cache_entry *e = NULL;
	struct dkey dk;
	uint64_t txnid;
	size_t nlen = 0, dlen = 0;
	int ret;

	if (kind != ROUTE_OUTBOUND)
		remote = "";	/* a component route has no remote part */
	if (domain == NULL || remote == NULL)
		return bad_input(st, "route get", "domain");
	/* read before the lookup: a write in between makes the entry stale
	 * rather than wrong */
	txnid = last_txnid(st);
	e = route_cache_slot(st, kind, domain, remote, &dlen, &nlen);
	/* "domain\0remote" as one run of bytes */
	if (e != NULL && txnid != 0 && e->txnid == txnid && e->kind == kind && e->nlen == nlen &&
	    memcmp(e->names, domain, dlen + 1) == 0 &&
	    memcmp(e->names + dlen + 1, remote, nlen - dlen - 1) == 0) {
		if (e->rc == STORE_OK) {
			/* every field set: no memset of its 2 KB per stanza */
			out->kind = kind;
			(void)util_strlcpy(out->domain, domain, sizeof(out->domain));
			(void)util_strlcpy(out->remote, remote, sizeof(out->remote));
			out->owner = e->owner;
			out->since = e->since;
		}
		return e->rc;
	}
	if (route_dk(st, &dk, kind, domain, remote) == -1)
		return bad_input(st, "route get", "domain");
	ret = get_one(st, DB_ROUTES, &dk, out, "route get");
	if (e != NULL && (ret == STORE_OK || ret == STORE_NOTFOUND)) {
		e->txnid = txnid;
		e->rc = ret;
		e->kind = kind;
		e->nlen = nlen;
		memcpy(e->names, domain, dlen + 1);
		memcpy(e->names + dlen + 1, remote, nlen - dlen - 1);
		if (ret == STORE_OK) {
			e->owner = out->owner;
			e->since = out->since;
		}
	}
	return ret;
}

/* Deletes a route if owner is NULL or holds it. */
static int
route_remove(struct store *st, enum store_route_kind kind, const char *domain,
    const char *remote, const struct store_owner *owner,
    struct store_route *removed, const char *what)
{
	struct dkey dk;
	struct store_route cur;
	MDB_txn *txn = NULL;
	MDB_val mk, mv;
	int rc, ret = STORE_ERROR;

	if (route_dk(st, &dk, kind, domain, remote) == -1)
		return bad_input(st, what, "domain");
	mk = dk_val(&dk);
	if ((ret = wtxn_begin(st, &txn)) != STORE_OK)
		goto out;
	rc = mdb_get(txn, st->dbi[DB_ROUTES], &mk, &mv);
	if (rc == MDB_NOTFOUND) {
		ret = STORE_NOTFOUND;
		goto out;
	}
	if (rc != 0) {
		ret = lmdb_fail(st, rc, what);
		goto out;
	}
	if (route_decode(&mk, &mv, &cur) == -1) {
		/* an unreadable record can still be removed by force */
		if (owner != NULL) {
			bad_record(st, DB_ROUTES);
			ret = STORE_ERROR;
			goto out;
		}
		memset(&cur, 0, sizeof(cur));
	}
	if (owner != NULL && !owner_equal(&cur.owner, owner)) {
		ret = STORE_EXISTS;
		goto out;
	}
	if ((rc = mdb_del(txn, st->dbi[DB_ROUTES], &mk, NULL)) != 0) {
		ret = lmdb_fail(st, rc, what);
		goto out;
	}
	if ((ret = wtxn_commit(st, &txn, what)) == STORE_OK && removed != NULL)
		*removed = cur;
 out:
	if (txn != NULL)
		mdb_txn_abort(txn);
	return ret;
}

int
store_route_release(struct store *st, enum store_route_kind kind,
    const char *domain, const char *remote, const struct store_owner *owner)
{
	return route_remove(st, kind, domain, remote, owner, NULL,
	    "route release");
}

int
store_route_delete(struct store *st, enum store_route_kind kind,
    const char *domain, const char *remote, struct store_route *removed)
{
	return route_remove(st, kind, domain, remote, NULL, removed,
	    "route delete");
}

int
store_routes_foreach(struct store *st,
    int (*cb)(const struct store_route *r, void *ctx), void *ctx)
{
	return iterate(st, DB_ROUTES, (union iter_cb){ .route = cb }, ctx, NULL,
	    0, 0);
}

struct clear_ctx {
	struct store	*st;
	enum db_id	 db;
	int		 slot;
	pid_t		 keep;
};

static enum walk_verdict
clear_one(const MDB_val *k, const MDB_val *v, void *arg)
{
	struct clear_ctx *cc = arg;
	const struct store_owner *owner;
	union record u;

	if (record_decode(cc->db, k, v, &u) == -1) {
		bad_record(cc->st, cc->db);
		return WALK_NEXT;
	}
	owner = cc->db == DB_ROUTES ? &u.r.owner : &u.p.owner;
	/* pids are never 0, so keep 0 clears the whole slot */
	if (owner->slot == cc->slot && owner->pid != cc->keep)
		return WALK_DELETE;
	return WALK_NEXT;
}

int
store_clear_slot(struct store *st, int slot, pid_t keep_pid, size_t *cleared)
{
	struct clear_ctx cc = { st, DB_ROUTES, slot, keep_pid };
	size_t n = 0;
	int ret;

	ret = delete_batched(st, DB_ROUTES, NULL, 0, clear_one, &cc, &n,
	    "clear slot");
	if (ret == STORE_OK) {
		cc.db = DB_PAIRS;
		ret = delete_batched(st, DB_PAIRS, NULL, 0, clear_one, &cc, &n,
		    "clear slot");
	}
	if (cleared != NULL)
		*cleared = n;
	return ret;
}

/* ---- queue ----------------------------------------------------------------- */

/* The queue key of (local, remote, seq); dk->plen is the pair's prefix. */
static int
queue_dk(const struct store *st, struct dkey *dk, const char *local,
    const char *remote, uint64_t seq)
{
	unsigned char s[SEQ_LEN];

	be_put(s, seq, SEQ_LEN);
	dk_init(dk);
	dk_field(dk, local, DOMAIN_LEN);
	dk_field(dk, remote, DOMAIN_LEN);
	return dk_finish(st, dk, s, SEQ_LEN);
}

static int
queue_decode(const MDB_val *k, const MDB_val *v, struct queue_rec *qr)
{
	struct rec r;
	char *const dst[] = { qr->local, qr->remote };
	const size_t sizes[] = { sizeof(qr->local), sizeof(qr->remote) };

	if (rec_parse(k, v, SEQ_LEN, &r) == -1 ||
	    tuple_split(r.tuple, r.tlen, dst, sizes, 2) != 2)
		return -1;
	qr->q.local = qr->local;
	qr->q.remote = qr->remote;
	qr->q.seq = be_get(r.suffix, SEQ_LEN);
	qr->q.queued = up_time(&r.val);
	if (r.val.bad)
		return -1;
	qr->q.data = (const char *)r.val.p + r.val.off;
	qr->q.len = r.val.len - r.val.off;
	return 0;
}

/* Inside txn: the pair's highest sequence number (0 if empty) and its
 * depth counted up to limit (limit 0: not counted). */
static int
queue_scan(struct store *st, MDB_txn *txn, const struct dkey *dk,
    size_t limit, uint64_t *last, size_t *depth)
{
	unsigned char key[sizeof(dk->key)];
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	size_t n = 0;
	int rc, ret = STORE_ERROR;

	*last = 0;
	*depth = 0;
	if ((rc = mdb_cursor_open(txn, st->dbi[DB_QUEUE], &cur)) != 0) {
		ret = lmdb_fail(st, rc, "open cursor");
		goto out;
	}
	/* The last entry sorts just below prefix + ff..ff. */
	memcpy(key, dk->key, dk->plen);
	memset(key + dk->plen, 0xff, SEQ_LEN);
	k.mv_data = key;
	k.mv_size = dk->plen + SEQ_LEN;
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	if (rc == 0)
		rc = mdb_cursor_get(cur, &k, &v, MDB_PREV);
	else if (rc == MDB_NOTFOUND)
		rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
	if (rc != 0 && rc != MDB_NOTFOUND) {
		ret = lmdb_fail(st, rc, "queue scan");
		goto out;
	}
	if (rc == 0 && k.mv_size == dk->plen + SEQ_LEN &&
	    memcmp(k.mv_data, dk->key, dk->plen) == 0)
		*last = be_get((const unsigned char *)k.mv_data + dk->plen, SEQ_LEN);
	if (limit > 0 && *last > 0) {
		k.mv_data = (void *)dk->key;
		k.mv_size = dk->plen;
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
		while (rc == 0 && n < limit && k.mv_size == dk->plen + SEQ_LEN &&
		    memcmp(k.mv_data, dk->key, dk->plen) == 0) {
			n++;
			rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
		}
		if (rc != 0 && rc != MDB_NOTFOUND) {
			ret = lmdb_fail(st, rc, "queue scan");
			goto out;
		}
	}
	*depth = n;
	ret = STORE_OK;
 out:
	if (cur != NULL)
		mdb_cursor_close(cur);
	return ret;
}

int
store_queue_append(struct store *st, const char *local, const char *remote,
    const char *data, size_t len, time_t now, unsigned max_depth,
    const struct store_owner *owner, bool *claimed, struct store_route *current,
    uint64_t *seq)
{
	struct dkey dk, rk;
	struct store_route cur;
	unsigned char hdr[TUPLE_MAX + 16];
	struct pack pk = { hdr, 0, sizeof(hdr), false };
	MDB_txn *txn = NULL;
	MDB_val mk, mv;
	uint64_t last;
	size_t depth;
	bool took = false;
	int rc, ret = STORE_ERROR;

	if (claimed != NULL)
		*claimed = false;
	if (seq != NULL)
		*seq = 0;
	if (queue_dk(st, &dk, local, remote, 0) == -1 ||
	    route_dk(st, &rk, ROUTE_OUTBOUND, local, remote) == -1)
		return bad_input(st, "queue append", "domain");
	if ((data == NULL && len > 0) || owner == NULL)
		goto out;
	pk_header(&pk, &dk);
	if (pk.over || len > SIZE_MAX - pk.len - 8)
		goto out;
	if ((ret = wtxn_begin(st, &txn)) != STORE_OK)
		goto out;
	if ((ret = queue_scan(st, txn, &dk, max_depth, &last, &depth)) != STORE_OK)
		goto out;
	if (max_depth > 0 && depth >= max_depth) {
		ret = STORE_EXISTS;
		goto out;
	}
	if (last == UINT64_MAX) {
		ret = STORE_ERROR;
		goto out;
	}
	if ((ret = room_check(st, txn, DB_QUEUE, dk.klen + pk.len + 8 + len,
	    "queue append")) != STORE_OK)
		goto out;
	be_put(dk.key + dk.plen, last + 1, SEQ_LEN);
	mk = dk_val(&dk);
	mv.mv_data = NULL;
	mv.mv_size = pk.len + 8 + len;
	/* MDB_RESERVE: copy the stanza once, straight into the map */
	if ((rc = mdb_put(txn, st->dbi[DB_QUEUE], &mk, &mv,
	    MDB_NOOVERWRITE | MDB_RESERVE)) != 0) {
		ret = lmdb_fail(st, rc, "queue append");
		goto out;
	}
	memcpy(mv.mv_data, hdr, pk.len);
	be_put((unsigned char *)mv.mv_data + pk.len, (uint64_t)(int64_t)now, 8);
	if (len > 0)
		memcpy((unsigned char *)mv.mv_data + pk.len + 8, data, len);
	if ((ret = route_claim_txn(st, txn, &rk, owner, now, &took, &cur)) != STORE_OK)
		goto out;
	if ((ret = wtxn_commit(st, &txn, "queue append")) != STORE_OK)
		goto out;
	if (claimed != NULL)
		*claimed = took;
	if (current != NULL)
		*current = cur;
	if (seq != NULL)
		*seq = last + 1;
 out:
	if (txn != NULL)
		mdb_txn_abort(txn);
	return ret;
}

int
store_queue_foreach_pair(struct store *st, const char *local,
    const char *remote, size_t limit,
    int (*cb)(const struct store_queued *q, void *ctx), void *ctx)
{
	struct dkey dk;

	if (queue_dk(st, &dk, local, remote, 0) == -1)
		return bad_input(st, "queue read", "domain");
	return iterate(st, DB_QUEUE, (union iter_cb){ .queue = cb }, ctx,
	    dk.key, dk.plen, limit);
}

int
store_queue_foreach(struct store *st,
    int (*cb)(const struct store_queued *q, void *ctx), void *ctx)
{
	return iterate(st, DB_QUEUE, (union iter_cb){ .queue = cb }, ctx, NULL,
	    0, 0);
}

int
store_queue_remove(struct store *st, const char *local, const char *remote,
    uint64_t seq)
{
	struct dkey dk;

	if (queue_dk(st, &dk, local, remote, seq) == -1)
		return bad_input(st, "queue remove", "domain");
	return del_one(st, DB_QUEUE, &dk, "queue remove");
}

/* Entries of one pair: the prefix alone decides, the key length must match. */
static enum walk_verdict
queue_match(const MDB_val *k, const MDB_val *v, void *arg)
{
	const struct dkey *dk = arg;

	return k->mv_size == dk->plen + SEQ_LEN ? WALK_DELETE : WALK_NEXT;
}

int
store_queue_drop(struct store *st, const char *local, const char *remote,
    size_t *dropped)
{
	struct dkey dk;
	size_t n = 0;
	int ret;

	if (dropped != NULL)
		*dropped = 0;
	if (queue_dk(st, &dk, local, remote, 0) == -1)
		return bad_input(st, "queue drop", "domain");
	ret = delete_batched(st, DB_QUEUE, dk.key, dk.plen, queue_match, &dk,
	    &n, "queue drop");
	if (dropped != NULL)
		*dropped = n;
	return ret;
}

struct depth_ctx {
	const struct dkey	*dk;
	size_t			 n;
};

static enum walk_verdict
queue_count(const MDB_val *k, const MDB_val *v, void *arg)
{
	struct depth_ctx *dc = arg;

	if (k->mv_size == dc->dk->plen + SEQ_LEN)
		dc->n++;
	return WALK_NEXT;
}

int
store_queue_depth(struct store *st, const char *local, const char *remote,
    size_t *depth)
{
	struct dkey dk;
	struct depth_ctx dc = { &dk, 0 };
	int ret;

	*depth = 0;
	if (queue_dk(st, &dk, local, remote, 0) == -1)
		return bad_input(st, "queue depth", "domain");
	if ((ret = walk_read(st, DB_QUEUE, dk.key, dk.plen, queue_count,
	    &dc)) == STORE_OK)
		*depth = dc.n;
	return ret;
}

/* ---- stats ----------------------------------------------------------------- */

/* Sign flipped so that the master (-1) sorts before worker 0. */
static int
stat_dk(const struct store *st, struct dkey *dk, const char *name, int slot)
{
	unsigned char s[SLOT_LEN];

	be_put(s, (uint32_t)slot ^ 0x80000000u, SLOT_LEN);
	dk_init(dk);
	dk_field(dk, name, NAME_MAX_LEN);
	return dk_finish(st, dk, s, SLOT_LEN);
}

static int
stat_decode(const MDB_val *k, const MDB_val *v, struct store_stat *out)
{
	struct rec r;
	char *const dst[] = { out->name };
	const size_t sizes[] = { sizeof(out->name) };

	memset(out, 0, sizeof(*out));
	if (rec_parse(k, v, SLOT_LEN, &r) == -1 ||
	    tuple_split(r.tuple, r.tlen, dst, sizes, 1) != 1)
		return -1;
	out->slot = (int)(int32_t)((uint32_t)be_get(r.suffix, SLOT_LEN) ^
	    0x80000000u);
	out->value = up_uint(&r.val, 8);
	return r.val.bad ? -1 : 0;
}

int
store_stats_add(struct store *st, int slot, const char *const *names,
    const uint64_t *deltas, size_t n)
{
	struct dkey dk;
	struct store_stat cur;
	unsigned char buf[64];
	struct pack pk;
	MDB_txn *txn = NULL;
	MDB_val mk, mv;
	size_t i;
	uint64_t value;
	int rc, ret = STORE_ERROR;

	if ((ret = wtxn_begin(st, &txn)) != STORE_OK)
		goto out;
	if ((ret = room_check(st, txn, DB_STATS, n * (NAME_MAX_LEN + 32),
	    "stats add")) != STORE_OK)
		goto out;
	for (i = 0; i < n; i++) {
		if (stat_dk(st, &dk, names[i], slot) == -1) {
			log_warn("store %s: stats: counter name empty, too long "
			    "or malformed", st->path);
			ret = STORE_ERROR;
			goto out;
		}
		mk = dk_val(&dk);
		rc = mdb_get(txn, st->dbi[DB_STATS], &mk, &mv);
		value = 0;
		if (rc == 0 && stat_decode(&mk, &mv, &cur) == 0)
			value = cur.value;
		else if (rc == 0)
			bad_record(st, DB_STATS);	/* overwritten below */
		else if (rc != MDB_NOTFOUND) {
			ret = lmdb_fail(st, rc, "stats get");
			goto out;
		}
		pk = (struct pack){ buf, 0, sizeof(buf), false };
		pk_header(&pk, &dk);
		pk_uint(&pk, value + deltas[i], 8);
		mv.mv_data = buf;
		mv.mv_size = pk.len;
		if (pk.over) {
			ret = STORE_ERROR;
			goto out;
		}
		if ((rc = mdb_put(txn, st->dbi[DB_STATS], &mk, &mv, 0)) != 0) {
			ret = lmdb_fail(st, rc, "stats put");
			goto out;
		}
	}
	ret = wtxn_commit(st, &txn, "stats add");
 out:
	if (txn != NULL)
		mdb_txn_abort(txn);
	return ret;
}

int
store_stats_foreach(struct store *st,
    int (*cb)(const struct store_stat *s, void *ctx), void *ctx)
{
	return iterate(st, DB_STATS, (union iter_cb){ .stat = cb }, ctx, NULL,
	    0, 0);
}

/* ---- dump ------------------------------------------------------------------ */

/* A quoted string: printable ASCII and UTF-8 as is, the rest as \xHH. */
static void
dump_str(FILE *out, const char *s, size_t n)
{
	size_t i;
	unsigned char c;

	putc('"', out);
	for (i = 0; i < n; i++) {
		c = (unsigned char)s[i];
		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			fprintf(out, "\\x%02x", c);
		else
			putc(c, out);
	}
	putc('"', out);
}

/* A label and a quoted NUL-terminated string. */
static void
dump_field(FILE *out, const char *label, const char *s)
{
	fputs(label, out);
	dump_str(out, s, strlen(s));
}

struct dump_ctx {
	struct store	*st;
	struct walk	 w;
	FILE		*out;
	enum db_id	 db;
	union record	 u;
	bool		 failed;	/* the output could not be written */
};

static enum walk_verdict
dump_one(const MDB_val *k, const MDB_val *v, void *arg)
{
	struct dump_ctx *dc = arg;
	FILE *out = dc->out;
	union record *u = &dc->u;

	if (record_decode(dc->db, k, v, u) == -1) {
		fprintf(out, "# %s: skipped a malformed record\n",
		    db_names[dc->db]);
		goto done;
	}
	switch (dc->db) {
	case DB_KEYS:
		dump_field(out, "keys originating=", u->k.originating);
		dump_field(out, " receiving=", u->k.receiving);
		dump_field(out, " stream_id=", u->k.stream_id);
		/* the key text itself is never written */
		fprintf(out, " issued=%lld expires=%lld slot=%d pid=%ld "
		    "key=hidden\n", (long long)u->k.issued,
		    (long long)u->k.expires, u->k.owner.slot,
		    (long)u->k.owner.pid);
		util_wipe(&u->k, sizeof(u->k));
		break;
	case DB_PAIRS:
		dump_field(out, "pairs local=", u->p.local);
		dump_field(out, " remote=", u->p.remote);
		fprintf(out, " dir=%s state=%s slot=%d pid=%ld conn=%llu "
		    "since=%lld", store_pair_dir_name(u->p.dir),
		    store_pair_state_name(u->p.state), u->p.owner.slot,
		    (long)u->p.owner.pid, (unsigned long long)u->p.conn_id,
		    (long long)u->p.since);
		dump_field(out, " stream_id=", u->p.stream_id);
		dump_field(out, " reason=", u->p.reason);
		putc('\n', out);
		break;
	case DB_ROUTES:
		fprintf(out, "routes kind=%s",
		    store_route_kind_name(u->r.kind));
		dump_field(out, " domain=", u->r.domain);
		dump_field(out, " remote=", u->r.remote);
		fprintf(out, " slot=%d pid=%ld since=%lld\n", u->r.owner.slot,
		    (long)u->r.owner.pid, (long long)u->r.since);
		break;
	case DB_QUEUE:
		dump_field(out, "queue local=", u->q.local);
		dump_field(out, " remote=", u->q.remote);
		fprintf(out, " seq=%llu queued=%lld len=%zu data=",
		    (unsigned long long)u->q.q.seq, (long long)u->q.q.queued,
		    u->q.q.len);
		dump_str(out, u->q.q.data, u->q.q.len);
		putc('\n', out);
		break;
	case DB_STATS:
		dump_field(out, "stats name=", u->s.name);
		fprintf(out, " slot=%d value=%llu\n", u->s.slot,
		    (unsigned long long)u->s.value);
		break;
	case DB_COUNT:
		break;
	}
 done:
	if (ferror(out)) {
		dc->failed = true;
		return WALK_STOP;
	}
	return WALK_NEXT;
}

int
store_dump(struct store *st, FILE *out)
{
	struct dump_ctx *dc;
	MDB_txn *txn = NULL;
	int ret = STORE_ERROR, i;

	if ((dc = calloc(1, sizeof(*dc))) == NULL) {
		log_warn("store %s: out of memory", st->path);
		return STORE_ERROR;
	}
	dc->st = st;
	dc->out = out;
	/* One read txn: the dump is a consistent snapshot. */
	if ((ret = rtxn_begin(st, &txn)) != STORE_OK)
		goto out;
	fprintf(out, "dialbackd-store-dump 1\n");
	for (i = 0; i < DB_COUNT && !dc->failed; i++) {
		dc->db = (enum db_id)i;
		walk_init(&dc->w, dc->db, NULL, 0, dump_one, dc);
		if ((ret = walk(st, txn, &dc->w)) != STORE_OK)
			goto out;
	}
	fprintf(out, "end\n");
	if (dc->failed || fflush(out) == EOF || ferror(out))
		ret = STORE_ERROR;
 out:
	rtxn_end(st, txn);
	free(dc);
	return ret;
}
