/* store.h - the LMDB key store shared by every dialbackd process (the only
 * module that includes lmdb.h). One environment, five named databases:
 *
 *   keys    originating\0receiving\0stream-id  -> key, issued, expires
 *   pairs   local\0remote\0direction           -> state, owner, conn id, since, reason
 *   routes  kind\0domain[\0remote]             -> owner of a component or outbound stream
 *   queue   local\0remote\0seq(be64)           -> a serialized stanza awaiting its pair
 *   stats   name\0worker                        -> counter
 *
 * Each process opens the store itself after fork (LMDB forbids sharing an
 * environment across fork). Every call is one short transaction (bulk
 * deletes: a few, of at most 256 deletions each); none is held across
 * event-loop iterations. Iteration callbacks may call the store again.
 * Values carry a version byte; the format is described in docs/store.md.
 * Domain fields are 1..1023 bytes, stream ids 1..255, with no control
 * bytes: anything else is refused with STORE_ERROR, never truncated. */
#ifndef DIALBACKD_STORE_H
#define DIALBACKD_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <signal.h>
#include <stdio.h>
#include <time.h>

enum store_status {
	STORE_OK = 0,
	STORE_NOTFOUND = 1,	/* no such record */
	STORE_EXISTS = 2,	/* a claim found another owner */
	STORE_ERROR = -1,	/* I/O or LMDB failure; logged */
	STORE_FULL = -2,	/* MDB_MAP_FULL: nothing was written; earlier data intact */
};

#define STORE_RDONLY	0x1	/* open read-only (dbtool listing commands) */
#define STORE_NOSYNC	0x2	/* do not fsync on commit (survives process crashes, not power loss) */
#define STORE_NOCREATE	0x4	/* fail unless the store exists and is initialised (dbtool) */
#define STORE_NOCHECK	0x8	/* skip the reader check at open (dbtool readers shows stale slots) */

struct store;

/* Creates the directory (0700) if needed unless read-only. maxreaders sizes
 * the reader table (workers x 2 + tools). On failure NULL and a message in err.
 * map_size 0 keeps the size recorded in an existing store (a smaller value
 * would shrink it under the running daemon); maxreaders 0 is LMDB's default.
 * A read-only open fails with "store not initialised" until a read-write
 * open has created the databases. */
struct store *store_open(const char *dir, uint64_t map_size, unsigned flags,
    unsigned maxreaders, char *err, size_t errlen);
void store_close(struct store *st);
/* Clears reader slots of dead processes; *dead gets how many. */
int store_reader_check(struct store *st, int *dead);
/* Calls cb for each line of mdb_reader_list output. */
int store_reader_list(struct store *st, void (*cb)(const char *line, void *ctx), void *ctx);
const char *store_path(const struct store *st);
const char *store_strerror(enum store_status s);
/* When *flag becomes non-zero (a signal handler sets it), iterations and
 * store_dump stop and return STORE_ERROR. NULL disables. */
void store_set_cancel(struct store *st, const volatile sig_atomic_t *flag);

/* Owner of a stream or component: worker slot and process. */
struct store_owner {
	int slot;		/* worker slot 0..N-1 */
	pid_t pid;
};

/* ---- keys: outstanding dialback keys ------------------------------------ */

struct store_key {
	char originating[1024], receiving[1024], stream_id[256];
	char key[129];		/* hex key text */
	time_t issued, expires;
	struct store_owner owner;	/* worker that issued it */
};

enum store_key_verdict {
	KEY_VALID = 0,
	KEY_UNKNOWN,		/* no key for (originating, receiving, stream id) */
	KEY_EXPIRED,
	KEY_MISMATCH,		/* outstanding but the text differs */
};

int store_key_put(struct store *st, const struct store_key *k);
/* Looks the key up and compares in constant time. *verdict is set on STORE_OK.
 * *issuer (may be NULL) gets the worker that issued it. A key is expired
 * when expires <= now. */
int store_key_check(struct store *st, const char *originating,
    const char *receiving, const char *stream_id, const char *key,
    size_t keylen, time_t now, enum store_key_verdict *verdict,
    struct store_owner *issuer);
int store_key_delete(struct store *st, const char *originating,
    const char *receiving, const char *stream_id);
/* Deletes keys with expires <= now, in batches (not one transaction);
 * *purged counts what was deleted even on failure. */
int store_keys_purge(struct store *st, time_t now, size_t *purged);
/* Iterates in key order; stop early by returning non-zero from cb. */
int store_keys_foreach(struct store *st, int (*cb)(const struct store_key *k, void *ctx), void *ctx);

/* ---- pairs: dialback state of each (local, remote, direction) ----------- */

enum store_pair_dir { PAIR_IN = 0, PAIR_OUT = 1 };
enum store_pair_state { PAIR_PENDING = 0, PAIR_VALID, PAIR_INVALID, PAIR_FAILED };

struct store_pair {
	char local[1024], remote[1024];
	enum store_pair_dir dir;
	enum store_pair_state state;
	struct store_owner owner;
	uint64_t conn_id;	/* the owner's connection number */
	time_t since;		/* when the state last changed */
	char stream_id[256];
	char reason[128];	/* last failure, "" if none */
};

int store_pair_put(struct store *st, const struct store_pair *p);
int store_pair_get(struct store *st, const char *local, const char *remote,
    enum store_pair_dir dir, struct store_pair *out);
int store_pair_delete(struct store *st, const char *local, const char *remote,
    enum store_pair_dir dir);
int store_pairs_foreach(struct store *st, int (*cb)(const struct store_pair *p, void *ctx), void *ctx);
const char *store_pair_state_name(enum store_pair_state s);
const char *store_pair_dir_name(enum store_pair_dir d);

/* ---- routes: which worker owns a component or an outbound stream -------- */

enum store_route_kind { ROUTE_COMPONENT = 0, ROUTE_OUTBOUND = 1 };
/* "component", "outbound"; the parser returns -1 for anything else. */
const char *store_route_kind_name(enum store_route_kind k);
int store_route_kind_parse(const char *s, enum store_route_kind *out);

struct store_route {
	enum store_route_kind kind;
	char domain[1024];	/* component domain, or the local domain of an outbound pair */
	char remote[1024];	/* "" for components (ignored when writing one) */
	struct store_owner owner;
	time_t since;
};

/* Claims the route for owner in one write transaction. STORE_OK when
 * claimed (or already ours), STORE_EXISTS when someone else holds it
 * (*current filled in, may be NULL). */
int store_route_claim(struct store *st, const struct store_route *r,
    struct store_route *current);
int store_route_get(struct store *st, enum store_route_kind kind,
    const char *domain, const char *remote, struct store_route *out);
/* Releases only if owned by owner (slot and pid): STORE_OK when released,
 * STORE_NOTFOUND when nobody holds it, STORE_EXISTS when another owner does. */
int store_route_release(struct store *st, enum store_route_kind kind,
    const char *domain, const char *remote, const struct store_owner *owner);
/* Removes the route whoever owns it (dbtool flush of a stuck route); *removed
 * (may be NULL) gets what was there. STORE_NOTFOUND when there was none. */
int store_route_delete(struct store *st, enum store_route_kind kind,
    const char *domain, const char *remote, struct store_route *removed);
int store_routes_foreach(struct store *st, int (*cb)(const struct store_route *r, void *ctx), void *ctx);

/* Removes every route and pair whose owner has this slot but not this pid
 * (the state a dead predecessor in the slot left behind); *cleared counts.
 * pid 0 clears all of the slot's entries. Batched like store_keys_purge. */
int store_clear_slot(struct store *st, int slot, pid_t keep_pid, size_t *cleared);

/* ---- queue: stanzas for pairs not yet valid ----------------------------- */

struct store_queued {
	const char *local, *remote;
	uint64_t seq;		/* increasing per pair */
	time_t queued;		/* when it was appended */
	const char *data;	/* serialized stanza (not NUL-terminated) */
	size_t len;
};

/* In ONE write transaction: append the stanza to (local, remote)'s queue and
 * claim the outbound route for owner if nobody holds it, so two workers
 * never open two streams for one pair. *claimed tells whether this call
 * took the route (the caller must then connect); when someone else holds
 * it, *current (may be NULL) says who (it is filled with the route as it
 * stands after the call in every case). Returns STORE_OK when appended (*seq
 * set), STORE_EXISTS when the pair already has max_depth entries (nothing
 * written; max_depth 0 = no limit), STORE_FULL when the map is full or the
 * queue already uses its share of the map (nothing written). */
int store_queue_append(struct store *st, const char *local, const char *remote,
    const char *data, size_t len, time_t now, unsigned max_depth,
    const struct store_owner *owner, bool *claimed, struct store_route *current,
    uint64_t *seq);
/* Calls cb for up to limit entries of the pair in order (limit 0 = all).
 * data is valid only during cb. */
int store_queue_foreach_pair(struct store *st, const char *local,
    const char *remote, size_t limit,
    int (*cb)(const struct store_queued *q, void *ctx), void *ctx);
/* Every entry of every pair, in key order. */
int store_queue_foreach(struct store *st,
    int (*cb)(const struct store_queued *q, void *ctx), void *ctx);
int store_queue_remove(struct store *st, const char *local, const char *remote, uint64_t seq);
/* Removes all entries of the pair (batched); *dropped counts. */
int store_queue_drop(struct store *st, const char *local, const char *remote, size_t *dropped);
int store_queue_depth(struct store *st, const char *local, const char *remote, size_t *depth);

/* ---- stats: counters --------------------------------------------------- */

struct store_stat {
	char name[64];
	int slot;		/* worker slot, -1 for the master */
	uint64_t value;
};

/* Adds deltas to n counters of one slot in one write transaction (workers
 * batch their counters and flush them every second, not per stanza). */
int store_stats_add(struct store *st, int slot, const char *const *names,
    const uint64_t *deltas, size_t n);
int store_stats_foreach(struct store *st, int (*cb)(const struct store_stat *s, void *ctx), void *ctx);

/* ---- whole store ------------------------------------------------------- */

/* Writes every record of every database as text, one per line, with a
 * stable header ("dialbackd-store-dump 1") and "end" trailer. Key text is
 * never written (a dialback key is secret-equivalent until it expires). */
int store_dump(struct store *st, FILE *out);

/* ---- for tests ---------------------------------------------------------- */

/* Begins a read transaction and keeps it open (a reader slot held) until
 * store_debug_end_read or exit; lets a test kill a process mid-read. */
int store_debug_begin_read(struct store *st);
void store_debug_end_read(struct store *st);

#endif
