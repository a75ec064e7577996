/* dbtool.c - dialbackd-dbtool: list and repair the dialbackd store while
 * the daemon runs. Listing commands open the store read-only; the few that
 * write open it read-write. Dialback keys are secret-equivalent until they
 * expire, so their text is never printed. See docs/dialbackd-dbtool.1. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "store.h"
#include "util.h"

#define PROGNAME	"dialbackd-dbtool"
#define DEFAULT_CONF	SYSCONFDIR "/dialbackd/dialbackd.conf"
#define EXIT_USAGE	2
#define MAX_ARGS	3	/* most arguments any command takes */

/* Set by SIGINT, SIGTERM and SIGPIPE (to the signal number): store walks
 * stop and we leave through the normal close path. */
static volatile sig_atomic_t stop_signal;

static void
on_signal(int sig)
{
	stop_signal = sig;
}

/* ---- output: an aligned table, or a JSON array of objects --------------- */

enum col_type {
	COL_STR,	/* text; "-" when empty in a table */
	COL_NUM,	/* decimal integer, a JSON number */
	COL_TIME,	/* epoch seconds: ISO 8601 UTC in a table, a number in JSON */
	COL_AGE,	/* seconds: "5s", "3m", "2h", "4d" in a table, a number
			 * in JSON */
};

struct column {
	const char	*head;	/* table header */
	const char	*json;	/* JSON member name */
	enum col_type	 type;
};

struct table {
	const struct column	*cols;
	size_t			 ncols;
	char			**cells;	/* nrows x ncols, row-major */
	size_t			 nrows, cap;	/* rows used, rows allocated */
	bool			 nomem;		/* a row could not be stored */
};

static void
table_init(struct table *t, const struct column *cols, size_t ncols)
{
	t->cols = cols;
	t->ncols = ncols;
	t->cells = NULL;
	t->nrows = 0;
	t->cap = 0;
	t->nomem = false;
}

static void
table_free(struct table *t)
{
	size_t i;

	for (i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	t->cells = NULL;
	t->nrows = t->cap = 0;
}

/* Copies one row of ncols strings. */
static void
table_add(struct table *t, const char *const *vals)
{
	char **cells;
	size_t i, cap;

	if (t->nomem)
		return;
	if (t->nrows == t->cap) {
		cap = t->cap == 0 ? 16 : t->cap * 2;
		if (cap > SIZE_MAX / sizeof(char *) / t->ncols ||
		    (cells = realloc(t->cells, cap * t->ncols * sizeof(char *))) == NULL) {
			t->nomem = true;
			return;
		}
		t->cells = cells;
		t->cap = cap;
	}
	for (i = 0; i < t->ncols; i++) {
		if ((t->cells[t->nrows * t->ncols + i] = strdup(vals[i])) == NULL) {
			while (i-- > 0)
				free(t->cells[t->nrows * t->ncols + i]);
			t->nomem = true;
			return;
		}
	}
	t->nrows++;
}

/* An age in its largest whole unit: "45s", "3m", "2h", "6d". */
static const char *
age_text(char *buf, size_t len, long long secs)
{
	if (secs < 0)
		secs = 0;
	if (secs < 60)
		snprintf(buf, len, "%llds", secs);
	else if (secs < 60 * 60)
		snprintf(buf, len, "%lldm", secs / 60);
	else if (secs < 24 * 60 * 60)
		snprintf(buf, len, "%lldh", secs / (60 * 60));
	else
		snprintf(buf, len, "%lldd", secs / (24 * 60 * 60));
	return buf;
}

/* The text a table shows for a cell. */
static const char *
cell_text(const struct column *col, const char *cell, char *buf, size_t len)
{
	struct tm tm;
	time_t tv;

	if (col->type == COL_AGE)
		return age_text(buf, len, strtoll(cell, NULL, 10));
	if (col->type == COL_TIME) {
		tv = (time_t)strtoll(cell, NULL, 10);
		if (gmtime_r(&tv, &tm) == NULL ||
		    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
			return cell;
		return buf;
	}
	if (col->type == COL_STR && cell[0] == '\0')
		return "-";
	return cell;
}

/* Columns count characters, not bytes: UTF-8 continuation bytes are free. */
static size_t
text_width(const char *s)
{
	size_t w = 0;

	for (; *s != '\0'; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			w++;
	return w;
}

/* Control bytes would break the one-record-per-line layout. */
static void
put_clean(FILE *out, const char *s)
{
	for (; *s != '\0'; s++)
		putc((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s, out);
}

static bool
right_aligned(const struct column *col)
{
	return col->type == COL_NUM || col->type == COL_AGE;
}

static void
table_print_text(const struct table *t, FILE *out)
{
	char buf[64];
	size_t *width, r, c, w;
	const char *s;

	if ((width = calloc(t->ncols, sizeof(*width))) == NULL)
		return;
	for (c = 0; c < t->ncols; c++)
		width[c] = strlen(t->cols[c].head);
	for (r = 0; r < t->nrows; r++) {
		for (c = 0; c < t->ncols; c++) {
			s = cell_text(&t->cols[c], t->cells[r * t->ncols + c],
			    buf, sizeof(buf));
			if ((w = text_width(s)) > width[c])
				width[c] = w;
		}
	}
	for (c = 0; c < t->ncols; c++)
		fprintf(out, "%-*s%s", c + 1 < t->ncols ? (int)width[c] : 0,
		    t->cols[c].head, c + 1 < t->ncols ? "  " : "\n");
	for (r = 0; r < t->nrows && stop_signal == 0; r++) {
		for (c = 0; c < t->ncols; c++) {
			s = cell_text(&t->cols[c], t->cells[r * t->ncols + c],
			    buf, sizeof(buf));
			w = text_width(s);
			/* numbers right-aligned, text left-aligned */
			if (right_aligned(&t->cols[c]))
				fprintf(out, "%*s", (int)(width[c] - w), "");
			put_clean(out, s);
			if (c + 1 == t->ncols)
				putc('\n', out);
			else if (right_aligned(&t->cols[c]))
				fputs("  ", out);
			else
				fprintf(out, "%*s", (int)(width[c] - w + 2), "");
		}
	}
	free(width);
}

/* Length of the valid UTF-8 sequence at s, 0 if it is not one. */
static size_t
utf8_len(const unsigned char *s)
{
	size_t n, i;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, cp = s[0] & 0x07;
	else
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	/* overlong forms, surrogates, beyond U+10FFFF */
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return n;
}

/* A JSON string: escapes per RFC 8259, invalid UTF-8 as U+FFFD. */
static void
json_string(FILE *out, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t n;

	putc('"', out);
	while (*s != '\0') {
		if (*s == '"' || *s == '\\') {
			putc('\\', out);
			putc(*s++, out);
		} else if (*s == '\n') {
			fputs("\\n", out);
			s++;
		} else if (*s == '\t') {
			fputs("\\t", out);
			s++;
		} else if (*s == '\r') {
			fputs("\\r", out);
			s++;
		} else if (*s < 0x20 || *s == 0x7f) {
			fprintf(out, "\\u%04x", *s++);
		} else if ((n = utf8_len(s)) == 0) {
			fputs("\\ufffd", out);
			s++;
		} else {
			fwrite(s, 1, n, out);
			s += n;
		}
	}
	putc('"', out);
}

static void
table_print_json(const struct table *t, FILE *out)
{
	size_t r, c;
	const char *cell;

	fputs("[", out);
	for (r = 0; r < t->nrows && stop_signal == 0; r++) {
		fputs(r == 0 ? "\n{" : ",\n{", out);
		for (c = 0; c < t->ncols; c++) {
			cell = t->cells[r * t->ncols + c];
			if (c > 0)
				putc(',', out);
			json_string(out, t->cols[c].json);
			putc(':', out);
			if (t->cols[c].type == COL_STR)
				json_string(out, cell);
			else
				fputs(cell, out);
		}
		putc('}', out);
	}
	fputs(t->nrows > 0 ? "\n]\n" : "]\n", out);
}

/* ---- commands -------------------------------------------------------------- */

struct ctx {
	struct store	*st;
	bool		 json;
	bool		 check;		/* readers --check */
	bool		 prometheus;	/* stats --prometheus */
	time_t		 now;
	FILE		*out;
	struct table	 t;
};

static const char *
num(char *buf, size_t len, long long v)
{
	snprintf(buf, len, "%lld", v);
	return buf;
}

static const char *
unum(char *buf, size_t len, unsigned long long v)
{
	snprintf(buf, len, "%llu", v);
	return buf;
}

/* Seconds from t to now, 0 for a time in the future. */
static const char *
age(char *buf, size_t len, const struct ctx *cx, time_t t)
{
	return num(buf, len, t > cx->now ? 0 : (long long)(cx->now - t));
}

static const char *
plural(size_t n)
{
	return n == 1 ? "" : "s";
}

/* Prints the collected table; 0, or 1 when it could not be built. */
static int
finish_table(struct ctx *cx, int rc, const char *what)
{
	if (rc != STORE_OK) {
		if (stop_signal == 0)
			fprintf(stderr, "%s: %s: %s\n", PROGNAME, what,
			    store_strerror(rc));
		return EXIT_FAILURE;
	}
	if (cx->t.nomem) {
		fprintf(stderr, "%s: %s: out of memory\n", PROGNAME, what);
		return EXIT_FAILURE;
	}
	if (cx->json)
		table_print_json(&cx->t, cx->out);
	else
		table_print_text(&cx->t, cx->out);
	return EXIT_SUCCESS;
}

static const struct column key_cols[] = {
	{ "ORIGINATING", "originating", COL_STR },
	{ "RECEIVING", "receiving", COL_STR },
	{ "STREAM-ID", "stream_id", COL_STR },
	{ "ISSUED", "issued", COL_TIME },
	{ "EXPIRES", "expires", COL_TIME },
	{ "STATE", "state", COL_STR },
	{ "WORKER", "slot", COL_NUM },
	{ "PID", "pid", COL_NUM },
};

static int
key_row(const struct store_key *k, void *arg)
{
	struct ctx *cx = arg;
	char issued[32], expires[32], slot[16], pid[16];
	/* k->key is deliberately never read here */
	const char *row[] = { k->originating, k->receiving, k->stream_id,
	    num(issued, sizeof(issued), (long long)k->issued),
	    num(expires, sizeof(expires), (long long)k->expires),
	    k->expires <= cx->now ? "expired" : "live",
	    num(slot, sizeof(slot), k->owner.slot),
	    num(pid, sizeof(pid), (long long)k->owner.pid) };

	table_add(&cx->t, row);
	return cx->t.nomem;
}

static int
cmd_keys(struct ctx *cx, int argc, char **argv)
{
	table_init(&cx->t, key_cols, ARRAY_SIZE(key_cols));
	return finish_table(cx, store_keys_foreach(cx->st, key_row, cx), "keys");
}

static const struct column pair_cols[] = {
	{ "LOCAL", "local", COL_STR },
	{ "REMOTE", "remote", COL_STR },
	{ "DIR", "dir", COL_STR },
	{ "STATE", "state", COL_STR },
	{ "AGE", "age", COL_AGE },
	{ "WORKER", "slot", COL_NUM },
	{ "PID", "pid", COL_NUM },
	{ "CONN", "conn", COL_NUM },
	{ "SINCE", "since", COL_TIME },
	{ "STREAM-ID", "stream_id", COL_STR },
	{ "REASON", "reason", COL_STR },
};

static int
pair_row(const struct store_pair *p, void *arg)
{
	struct ctx *cx = arg;
	char a[32], slot[16], pid[16], conn[32], since[32];
	const char *row[] = { p->local, p->remote, store_pair_dir_name(p->dir),
	    store_pair_state_name(p->state), age(a, sizeof(a), cx, p->since),
	    num(slot, sizeof(slot), p->owner.slot),
	    num(pid, sizeof(pid), (long long)p->owner.pid),
	    unum(conn, sizeof(conn), p->conn_id),
	    num(since, sizeof(since), (long long)p->since),
	    p->stream_id, p->reason };

	table_add(&cx->t, row);
	return cx->t.nomem;
}

static int
cmd_pairs(struct ctx *cx, int argc, char **argv)
{
	table_init(&cx->t, pair_cols, ARRAY_SIZE(pair_cols));
	return finish_table(cx, store_pairs_foreach(cx->st, pair_row, cx),
	    "pairs");
}

static const struct column route_cols[] = {
	{ "KIND", "kind", COL_STR },
	{ "DOMAIN", "domain", COL_STR },
	{ "REMOTE", "remote", COL_STR },
	{ "WORKER", "slot", COL_NUM },
	{ "PID", "pid", COL_NUM },
	{ "SINCE", "since", COL_TIME },
};

static void
route_add(struct table *t, const struct store_route *r)
{
	char slot[16], pid[16], since[32];
	const char *row[] = { store_route_kind_name(r->kind), r->domain,
	    r->remote, num(slot, sizeof(slot), r->owner.slot),
	    num(pid, sizeof(pid), (long long)r->owner.pid),
	    num(since, sizeof(since), (long long)r->since) };

	table_add(t, row);
}

static int
route_row(const struct store_route *r, void *arg)
{
	struct ctx *cx = arg;

	route_add(&cx->t, r);
	return cx->t.nomem;
}

static int
cmd_routes(struct ctx *cx, int argc, char **argv)
{
	table_init(&cx->t, route_cols, ARRAY_SIZE(route_cols));
	return finish_table(cx, store_routes_foreach(cx->st, route_row, cx),
	    "routes");
}

/* queue without arguments: one row per pair. */
static const struct column depth_cols[] = {
	{ "LOCAL", "local", COL_STR },
	{ "REMOTE", "remote", COL_STR },
	{ "DEPTH", "depth", COL_NUM },
	{ "BYTES", "bytes", COL_NUM },
	{ "OLDEST", "oldest", COL_TIME },
	{ "AGE", "age", COL_AGE },
};

/* Entries of a pair are adjacent in key order: sum until the pair changes. */
struct depth_acc {
	struct ctx	*cx;
	bool		 any;
	char		 local[1024], remote[1024];
	size_t		 depth;
	unsigned long long bytes;
	time_t		 oldest;
};

static void
depth_flush(struct depth_acc *da)
{
	char depth[32], bytes[32], oldest[32], a[32];
	const char *row[] = { da->local, da->remote,
	    unum(depth, sizeof(depth), da->depth),
	    unum(bytes, sizeof(bytes), da->bytes),
	    num(oldest, sizeof(oldest), (long long)da->oldest),
	    age(a, sizeof(a), da->cx, da->oldest) };

	if (da->any)
		table_add(&da->cx->t, row);
}

static int
depth_row(const struct store_queued *q, void *arg)
{
	struct depth_acc *da = arg;

	if (!da->any || strcmp(da->local, q->local) != 0 ||
	    strcmp(da->remote, q->remote) != 0) {
		depth_flush(da);
		util_strlcpy(da->local, q->local, sizeof(da->local));
		util_strlcpy(da->remote, q->remote, sizeof(da->remote));
		da->any = true;
		da->depth = 0;
		da->bytes = 0;
		da->oldest = q->queued;
	}
	da->depth++;
	da->bytes += q->len;
	if (q->queued < da->oldest)
		da->oldest = q->queued;
	return da->cx->t.nomem;
}

/* queue LOCAL REMOTE: one row per entry. */
static const struct column entry_cols[] = {
	{ "SEQ", "seq", COL_NUM },
	{ "QUEUED", "queued", COL_TIME },
	{ "AGE", "age", COL_AGE },
	{ "SIZE", "size", COL_NUM },
};

static int
entry_row(const struct store_queued *q, void *arg)
{
	struct ctx *cx = arg;
	char seq[32], queued[32], a[32], size[32];
	const char *row[] = { unum(seq, sizeof(seq), q->seq),
	    num(queued, sizeof(queued), (long long)q->queued),
	    age(a, sizeof(a), cx, q->queued),
	    unum(size, sizeof(size), q->len) };

	table_add(&cx->t, row);
	return cx->t.nomem;
}

static int
cmd_queue(struct ctx *cx, int argc, char **argv)
{
	struct depth_acc *da;
	int rc;

	if (argc == 2) {
		table_init(&cx->t, entry_cols, ARRAY_SIZE(entry_cols));
		return finish_table(cx, store_queue_foreach_pair(cx->st, argv[0],
		    argv[1], 0, entry_row, cx), "queue");
	}
	table_init(&cx->t, depth_cols, ARRAY_SIZE(depth_cols));
	if ((da = calloc(1, sizeof(*da))) == NULL) {
		fprintf(stderr, "%s: out of memory\n", PROGNAME);
		return EXIT_FAILURE;
	}
	da->cx = cx;
	if ((rc = store_queue_foreach(cx->st, depth_row, da)) == STORE_OK)
		depth_flush(da);
	free(da);
	return finish_table(cx, rc, "queue");
}

/* ---- stats: one row per counter, one column per worker ----------------- */

/* The counters the workers record (src/stats.c), in the order shown, with
 * the HELP text of the Prometheus form. Other names found in the store
 * follow them. */
static const struct counter {
	const char	*name;
	const char	*help;
} counters[] = {
	{ "streams_in", "Inbound server-to-server streams accepted." },
	{ "streams_out", "Outbound server-to-server streams connected." },
	{ "dialback_attempts", "Dialback attempts (db:result sent or "
	    "received)." },
	{ "dialback_valid", "Dialback attempts that ended valid." },
	{ "dialback_invalid", "Dialback attempts that ended invalid." },
	{ "dialback_errors", "Dialback attempts that ended in an error "
	    "(authoritative server unreachable, peer error)." },
	{ "dialback_timeouts", "Dialback attempts that timed out." },
	{ "verify_answered", "db:verify requests answered as the authoritative "
	    "server." },
	{ "stanzas_routed", "Stanzas routed to a valid stream or a "
	    "component." },
	{ "stanzas_bounced", "Stanzas returned to their sender with an "
	    "error." },
	{ "stanzas_queued", "Stanzas queued for a pair not yet valid." },
	{ "bytes_in", "Bytes read from server-to-server and component "
	    "connections." },
	{ "bytes_out", "Bytes written to server-to-server and component "
	    "connections." },
	{ "components", "Components attached (successful handshakes)." },
};

/* Every counter record is read before anything is printed: the workers
 * (the columns) are known only once all are read. */
struct stat_grid {
	struct store_stat *recs;
	size_t		 nrecs, cap;
	bool		 nomem;
	const char	**names;	/* rows: counters[], then other names */
	size_t		 nnames;
	int		*slots;		/* columns, ascending: master (-1) 1st */
	size_t		 nslots;
	uint64_t	*vals;		/* nnames x nslots; 0: none recorded */
};

static int
stat_collect(const struct store_stat *s, void *arg)
{
	struct stat_grid *g = arg;
	struct store_stat *recs;
	size_t cap;

	if (g->nrecs == g->cap) {
		cap = g->cap == 0 ? 64 : g->cap * 2;
		if (cap > SIZE_MAX / sizeof(*recs) ||
		    (recs = realloc(g->recs, cap * sizeof(*recs))) == NULL) {
			g->nomem = true;
			return 1;
		}
		g->recs = recs;
		g->cap = cap;
	}
	g->recs[g->nrecs++] = *s;
	return 0;
}

static void
stat_grid_free(struct stat_grid *g)
{
	free(g->recs);
	free(g->names);
	free(g->slots);
	free(g->vals);
}

/* The row of a counter name, or nnames when there is none yet. */
static size_t
stat_row(const struct stat_grid *g, const char *name)
{
	size_t r;

	for (r = 0; r < g->nnames; r++)
		if (strcmp(g->names[r], name) == 0)
			break;
	return r;
}

static int
slot_cmp(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return (x > y) - (x < y);
}

/* Rows, columns and the matrix from the records; -1 when out of memory. */
static int
stat_grid_build(struct stat_grid *g)
{
	size_t i, n = 0;
	int *col;

	/* +1: calloc(0) may return NULL */
	if ((g->names = calloc(ARRAY_SIZE(counters) + g->nrecs + 1,
	    sizeof(*g->names))) == NULL ||
	    (g->slots = calloc(g->nrecs + 1, sizeof(*g->slots))) == NULL)
		return -1;
	for (i = 0; i < ARRAY_SIZE(counters); i++)
		g->names[g->nnames++] = counters[i].name;
	for (i = 0; i < g->nrecs; i++) {
		if (stat_row(g, g->recs[i].name) == g->nnames)
			g->names[g->nnames++] = g->recs[i].name;
		g->slots[i] = g->recs[i].slot;
	}
	qsort(g->slots, g->nrecs, sizeof(*g->slots), slot_cmp);
	for (i = 0; i < g->nrecs; i++)
		if (n == 0 || g->slots[n - 1] != g->slots[i])
			g->slots[n++] = g->slots[i];
	g->nslots = n;
	if ((g->vals = calloc(g->nnames * g->nslots + 1,
	    sizeof(*g->vals))) == NULL)
		return -1;
	for (i = 0; i < g->nrecs; i++) {
		col = bsearch(&g->recs[i].slot, g->slots, g->nslots,
		    sizeof(*g->slots), slot_cmp);
		if (col != NULL)
			g->vals[stat_row(g, g->recs[i].name) * g->nslots +
			    (size_t)(col - g->slots)] = g->recs[i].value;
	}
	return 0;
}

/* A counter of one worker (col < nslots) or the sum over all (nslots). */
static uint64_t
stat_value(const struct stat_grid *g, size_t row, size_t col)
{
	uint64_t v = 0;
	size_t c;

	if (col < g->nslots)
		return g->vals[row * g->nslots + col];
	for (c = 0; c < g->nslots; c++)
		v += g->vals[row * g->nslots + c];
	return v;
}

/* "master" for the master process (slot -1), else the slot number. */
static const char *
worker_name(char *buf, size_t len, int slot)
{
	if (slot < 0)
		snprintf(buf, len, "master");
	else
		snprintf(buf, len, "%d", slot);
	return buf;
}

/* COUNTER, MASTER, W0, W1, ..., TOTAL. */
static int
stats_table(struct ctx *cx, const struct stat_grid *g)
{
	size_t ncols = g->nslots + 2, r, c;
	struct column *cols;
	char (*heads)[16], (*cells)[32];
	const char **row;
	int ret = EXIT_FAILURE;

	cols = calloc(ncols, sizeof(*cols));
	heads = calloc(ncols, sizeof(*heads));
	cells = calloc(ncols, sizeof(*cells));
	row = calloc(ncols, sizeof(*row));
	if (cols == NULL || heads == NULL || cells == NULL || row == NULL) {
		fprintf(stderr, "%s: stats: out of memory\n", PROGNAME);
		goto out;
	}
	cols[0] = (struct column){ "COUNTER", "counter", COL_STR };
	for (c = 0; c < g->nslots; c++) {
		if (g->slots[c] < 0)
			snprintf(heads[c], sizeof(heads[c]), "MASTER");
		else
			snprintf(heads[c], sizeof(heads[c]), "W%d",
			    g->slots[c]);
		cols[c + 1] = (struct column){ heads[c], heads[c], COL_NUM };
	}
	cols[ncols - 1] = (struct column){ "TOTAL", "total", COL_NUM };
	table_init(&cx->t, cols, ncols);
	for (r = 0; r < g->nnames; r++) {
		row[0] = g->names[r];
		for (c = 0; c <= g->nslots; c++)
			row[c + 1] = unum(cells[c + 1], sizeof(cells[c + 1]),
			    stat_value(g, r, c));
		table_add(&cx->t, row);
	}
	ret = finish_table(cx, STORE_OK, "stats");
	table_free(&cx->t);
	table_init(&cx->t, NULL, 0);
 out:
	free(cols);
	free(heads);
	free(cells);
	free(row);
	return ret;
}

/* {"counter":value,...} of one worker, or of the totals (col nslots). */
static void
stats_json_counters(FILE *out, const struct stat_grid *g, size_t col)
{
	size_t r;

	putc('{', out);
	for (r = 0; r < g->nnames; r++) {
		if (r > 0)
			putc(',', out);
		json_string(out, g->names[r]);
		fprintf(out, ":%llu",
		    (unsigned long long)stat_value(g, r, col));
	}
	putc('}', out);
}

/* {"workers":{"master":{...},"0":{...},...},"total":{...}} */
static int
stats_json(struct ctx *cx, const struct stat_grid *g)
{
	char w[16];
	size_t c;

	fputs("{\n\"workers\":{", cx->out);
	for (c = 0; c < g->nslots; c++) {
		fputs(c == 0 ? "\n" : ",\n", cx->out);
		json_string(cx->out, worker_name(w, sizeof(w), g->slots[c]));
		putc(':', cx->out);
		stats_json_counters(cx->out, g, c);
	}
	fputs(g->nslots > 0 ? "\n},\n\"total\":" : "},\n\"total\":", cx->out);
	stats_json_counters(cx->out, g, g->nslots);
	fputs("\n}\n", cx->out);
	return EXIT_SUCCESS;
}

/* A counter name that can be part of a metric name: [A-Za-z_][A-Za-z0-9_]*
 * (ASCII, whatever the locale). */
static bool
metric_name_ok(const char *s)
{
	static const char first[] = "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ_";
	static const char rest[] = "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789";

	return *s != '\0' && strchr(first, *s) != NULL &&
	    s[strspn(s, rest)] == '\0';
}

/* The Prometheus text format, for node_exporter's textfile collector: per
 * counter a HELP and a TYPE line, then one sample per worker; "# EOF"
 * (OpenMetrics) ends it. No total: sum() over the worker label gives it. */
static int
stats_prometheus(struct ctx *cx, const struct stat_grid *g)
{
	char w[16];
	size_t r, c;

	for (r = 0; r < g->nnames; r++) {
		if (!metric_name_ok(g->names[r])) {
			fprintf(stderr, "%s: stats: counter \"%s\" left out: "
			    "not usable in a metric name\n", PROGNAME,
			    g->names[r]);
			continue;
		}
		fprintf(cx->out, "# HELP dialbackd_%s_total ", g->names[r]);
		if (r < ARRAY_SIZE(counters))
			fputs(counters[r].help, cx->out);
		else
			fprintf(cx->out, "Counter %s of dialbackd.",
			    g->names[r]);
		fprintf(cx->out, "\n# TYPE dialbackd_%s_total counter\n",
		    g->names[r]);
		for (c = 0; c < g->nslots; c++)
			fprintf(cx->out, "dialbackd_%s_total{worker=\"%s\"} "
			    "%llu\n", g->names[r],
			    worker_name(w, sizeof(w), g->slots[c]),
			    (unsigned long long)stat_value(g, r, c));
	}
	fputs("# EOF\n", cx->out);
	return EXIT_SUCCESS;
}

static int
cmd_stats(struct ctx *cx, int argc, char **argv)
{
	struct stat_grid g;
	int rc, ret = EXIT_FAILURE;

	memset(&g, 0, sizeof(g));
	rc = store_stats_foreach(cx->st, stat_collect, &g);
	if (rc != STORE_OK) {
		if (stop_signal == 0)
			fprintf(stderr, "%s: stats: %s\n", PROGNAME,
			    store_strerror(rc));
		goto out;
	}
	if (g.nomem || stat_grid_build(&g) == -1) {
		fprintf(stderr, "%s: stats: out of memory\n", PROGNAME);
		goto out;
	}
	if (cx->prometheus)
		ret = stats_prometheus(cx, &g);
	else if (cx->json)
		ret = stats_json(cx, &g);
	else
		ret = stats_table(cx, &g);
 out:
	stat_grid_free(&g);
	return ret;
}

static const struct column reader_cols[] = {
	{ "PID", "pid", COL_NUM },
	{ "THREAD", "thread", COL_STR },
	{ "TXNID", "txnid", COL_STR },
	{ "STATUS", "status", COL_STR },
};

/* mdb_reader_list lines: a header, then "pid thread txnid" per slot. */
static void
reader_row(const char *line, void *arg)
{
	struct ctx *cx = arg;
	char pid[32], thread[32], txnid[32];
	const char *row[] = { pid, thread, txnid, NULL };
	long p;

	if (sscanf(line, "%ld %31s %31s", &p, thread, txnid) != 3 || p <= 0)
		return;
	snprintf(pid, sizeof(pid), "%ld", p);
	/* EPERM: alive, just not ours to signal */
	row[3] = kill((pid_t)p, 0) == 0 || errno == EPERM ? "live" : "stale";
	table_add(&cx->t, row);
}

/* A one-number result: a sentence in a table, an object in JSON. */
static int
report_count(struct ctx *cx, const char *json_name, size_t n,
    const char *fmt, ...)
{
	struct column col = { "COUNT", json_name, COL_NUM };
	char value[32];
	const char *row[] = { unum(value, sizeof(value), n) };
	va_list ap;

	if (!cx->json) {
		va_start(ap, fmt);
		vfprintf(cx->out, fmt, ap);
		va_end(ap);
		return EXIT_SUCCESS;
	}
	table_init(&cx->t, &col, 1);
	table_add(&cx->t, row);
	if (cx->t.nomem)
		return EXIT_FAILURE;
	table_print_json(&cx->t, cx->out);
	table_free(&cx->t);
	return EXIT_SUCCESS;
}

static int
cmd_readers(struct ctx *cx, int argc, char **argv)
{
	int rc, dead = 0;

	if (cx->check) {
		if ((rc = store_reader_check(cx->st, &dead)) != STORE_OK) {
			fprintf(stderr, "%s: reader check: %s\n", PROGNAME,
			    store_strerror(rc));
			return EXIT_FAILURE;
		}
		return report_count(cx, "cleared", (size_t)dead,
		    "cleared %d stale reader slot%s\n", dead,
		    plural((size_t)dead));
	}
	table_init(&cx->t, reader_cols, ARRAY_SIZE(reader_cols));
	return finish_table(cx, store_reader_list(cx->st, reader_row, cx),
	    "readers");
}

static int
cmd_purge(struct ctx *cx, int argc, char **argv)
{
	size_t n = 0;
	int rc;

	if ((rc = store_keys_purge(cx->st, cx->now, &n)) != STORE_OK) {
		fprintf(stderr, "%s: purge: %s (%zu key%s purged before the "
		    "failure)\n", PROGNAME, store_strerror(rc), n, plural(n));
		return EXIT_FAILURE;
	}
	return report_count(cx, "purged", n, "purged %zu expired key%s\n", n,
	    plural(n));
}

static int
cmd_drop(struct ctx *cx, int argc, char **argv)
{
	size_t n = 0;
	int rc;

	if ((rc = store_queue_drop(cx->st, argv[0], argv[1], &n)) != STORE_OK) {
		fprintf(stderr, "%s: drop %s %s: %s (%zu dropped before the "
		    "failure)\n", PROGNAME, argv[0], argv[1],
		    store_strerror(rc), n);
		return EXIT_FAILURE;
	}
	return report_count(cx, "dropped", n,
	    "dropped %zu queued stanza%s for %s -> %s\n", n, plural(n),
	    argv[0], argv[1]);
}

static int
cmd_flush(struct ctx *cx, int argc, char **argv)
{
	struct store_route r;
	enum store_route_kind kind;
	char since[32];
	struct tm tm;
	time_t t;
	int rc;

	if (store_route_kind_parse(argv[0], &kind) == -1) {
		fprintf(stderr, "%s: flush: KIND is \"component\" or "
		    "\"outbound\", not \"%s\"\n", PROGNAME, argv[0]);
		return EXIT_USAGE;
	}
	if ((kind == ROUTE_OUTBOUND) != (argc == 3)) {
		fprintf(stderr, "%s: flush: %s\n", PROGNAME,
		    kind == ROUTE_OUTBOUND ? "an outbound route needs LOCAL "
		    "and REMOTE" : "a component route takes one DOMAIN");
		return EXIT_USAGE;
	}
	memset(&r, 0, sizeof(r));
	rc = store_route_delete(cx->st, kind, argv[1], argc == 3 ? argv[2] : NULL,
	    &r);
	if (rc == STORE_NOTFOUND) {
		fprintf(stderr, "%s: no %s route %s%s%s\n", PROGNAME, argv[0],
		    argv[1], argc == 3 ? " -> " : "", argc == 3 ? argv[2] : "");
		return EXIT_FAILURE;
	}
	if (rc != STORE_OK) {
		fprintf(stderr, "%s: flush: %s\n", PROGNAME, store_strerror(rc));
		return EXIT_FAILURE;
	}
	if (cx->json) {
		table_init(&cx->t, route_cols, ARRAY_SIZE(route_cols));
		route_add(&cx->t, &r);
		return finish_table(cx, STORE_OK, "flush");
	}
	t = r.since;
	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(since, sizeof(since), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(since, sizeof(since), "%lld", (long long)r.since);
	fprintf(cx->out, "removed %s route %s%s%s (held by worker %d, pid %ld, "
	    "since %s)\n", store_route_kind_name(r.kind), argv[1],
	    argc == 3 ? " -> " : "", argc == 3 ? argv[2] : "", r.owner.slot,
	    (long)r.owner.pid, since);
	return EXIT_SUCCESS;
}

static int
cmd_dump(struct ctx *cx, int argc, char **argv)
{
	if (store_dump(cx->st, cx->out) != STORE_OK) {
		if (stop_signal == 0)
			fprintf(stderr, "%s: dump failed\n", PROGNAME);
		return EXIT_FAILURE;
	}
	return EXIT_SUCCESS;
}

static int cmd_help(struct ctx *, int, char **);

/* Commands as patterns: name, arguments, whether they write. */
static const struct command {
	const char	*name;
	const char	*args;
	int		 min, max;	/* argument count */
	bool		 writes;	/* open the store read-write */
	bool		 json;		/* has a --json form */
	bool		 store;		/* needs the store */
	int		(*run)(struct ctx *, int, char **);
	const char	*help;
} commands[] = {
	{ "keys", "", 0, 0, false, true, true, cmd_keys,
	    "outstanding dialback keys (never their text)" },
	{ "pairs", "", 0, 0, false, true, true, cmd_pairs,
	    "dialback state of each domain pair" },
	{ "routes", "", 0, 0, false, true, true, cmd_routes,
	    "which worker owns each component and outbound stream" },
	{ "queue", "[LOCAL REMOTE]", 0, 2, false, true, true, cmd_queue,
	    "queue depth per pair, or one pair's entries" },
	{ "stats", "[--prometheus]", 0, 0, false, true, true, cmd_stats,
	    "counters per worker and in total; or for Prometheus" },
	{ "readers", "[--check]", 0, 0, false, true, true, cmd_readers,
	    "LMDB reader slots; --check clears stale ones" },
	{ "dump", "", 0, 0, false, false, true, cmd_dump,
	    "every record as text (key text omitted)" },
	{ "purge", "", 0, 0, true, true, true, cmd_purge,
	    "delete expired keys" },
	{ "drop", "LOCAL REMOTE", 2, 2, true, true, true, cmd_drop,
	    "drop a pair's queued stanzas" },
	{ "flush", "KIND DOMAIN [REMOTE]", 2, 3, true, true, true, cmd_flush,
	    "release a stuck route, whoever holds it" },
	{ "help", "", 0, 0, false, false, false, cmd_help,
	    "this text" },
};

static void
usage(FILE *out)
{
	size_t i;

	fprintf(out, "usage: %s [-c FILE | -s DIR] [--json] COMMAND [ARGS]\n\n"
	    "options:\n"
	    "  -c, --config FILE  read the store directory from FILE\n"
	    "                     (default %s)\n"
	    "  -s, --store DIR    use the store in DIR; no configuration needed\n"
	    "      --json         print JSON instead of a table\n"
	    "  -h, --help         this text\n\n"
	    "commands:\n", PROGNAME, DEFAULT_CONF);
	for (i = 0; i < ARRAY_SIZE(commands); i++)
		fprintf(out, "  %-8s %-21s %s\n", commands[i].name,
		    commands[i].args, commands[i].help);
	fprintf(out, "\nflush takes \"component DOMAIN\" or \"outbound LOCAL "
	    "REMOTE\".\n");
}

static int
cmd_help(struct ctx *cx, int argc, char **argv)
{
	usage(cx->out);
	return EXIT_SUCCESS;
}

/* The store directory: -s, or the configuration file's store setting. */
static int
store_dir(const char *store_opt, const char *conf_path, char *dir, size_t len)
{
	struct conf *c;
	char err[1024];
	int ret = -1;

	if (store_opt != NULL) {
		if (util_strlcpy(dir, store_opt, len) >= len) {
			fprintf(stderr, "%s: %s: path too long\n", PROGNAME,
			    store_opt);
			return -1;
		}
		return 0;
	}
	if ((c = conf_load(conf_path, err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s: %s\n", PROGNAME, err);
		return -1;
	}
	if (c->store == NULL || c->store[0] == '\0')
		fprintf(stderr, "%s: %s: no store directory configured\n",
		    PROGNAME, conf_path);
	else if (util_strlcpy(dir, c->store, len) >= len)
		fprintf(stderr, "%s: %s: store path too long\n", PROGNAME,
		    conf_path);
	else
		ret = 0;
	conf_free(c);
	return ret;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "store", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const struct command *cmd = NULL;
	const char *conf_path = NULL, *store_opt = NULL;
	char *args[MAX_ARGS];
	char dir[4096], err[1024];
	struct ctx cx;
	struct sigaction sa;
	int ch, i, nargs = 0, ret = EXIT_FAILURE;
	unsigned flags;
	size_t j;

	memset(&cx, 0, sizeof(cx));
	cx.out = stdout;
	table_init(&cx.t, NULL, 0);
	log_set_procname("dbtool");
	if (log_open("stderr", LOG_LVL_WARN) != 0)
		return EXIT_FAILURE;

	/* "+": stop at the command, its own options are parsed below */
	while ((ch = getopt_long(argc, argv, "+c:s:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			conf_path = optarg;
			break;
		case 's':
			store_opt = optarg;
			break;
		case 'j':
			cx.json = true;
			break;
		case 'h':
			usage(stdout);
			return EXIT_SUCCESS;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (conf_path != NULL && store_opt != NULL) {
		fprintf(stderr, "%s: -c and -s exclude each other\n", PROGNAME);
		return EXIT_USAGE;
	}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	for (j = 0; j < ARRAY_SIZE(commands); j++)
		if (strcmp(argv[optind], commands[j].name) == 0)
			cmd = &commands[j];
	if (cmd == NULL) {
		fprintf(stderr, "%s: unknown command \"%s\" (try \"%s help\")\n",
		    PROGNAME, argv[optind], PROGNAME);
		return EXIT_USAGE;
	}
	for (i = optind + 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			cx.json = true;
		else if (strcmp(argv[i], "--check") == 0 &&
		    cmd->run == cmd_readers)
			cx.check = true;
		else if (strcmp(argv[i], "--prometheus") == 0 &&
		    cmd->run == cmd_stats)
			cx.prometheus = true;
		else if (argv[i][0] == '-') {
			fprintf(stderr, "%s: %s: unknown option %s\n", PROGNAME,
			    cmd->name, argv[i]);
			return EXIT_USAGE;
		} else if (nargs == MAX_ARGS || nargs == cmd->max) {
			fprintf(stderr, "%s: %s: too many arguments\n", PROGNAME,
			    cmd->name);
			return EXIT_USAGE;
		} else
			args[nargs++] = argv[i];
	}
	if (nargs < cmd->min || (cmd->run == cmd_queue && nargs == 1)) {
		fprintf(stderr, "usage: %s %s %s\n", PROGNAME, cmd->name,
		    cmd->args);
		return EXIT_USAGE;
	}
	if (cx.json && !cmd->json) {
		fprintf(stderr, "%s: %s has no JSON form\n", PROGNAME, cmd->name);
		return EXIT_USAGE;
	}
	if (cx.json && cx.prometheus) {
		fprintf(stderr, "%s: --json and --prometheus exclude each "
		    "other\n", PROGNAME);
		return EXIT_USAGE;
	}
	if (!cmd->store)
		return cmd->run(&cx, nargs, args);

	/* A handler, not SIG_IGN: a write to a closed pipe then fails with
	 * EPIPE and we close the store (and its reader slot) on the way out. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGPIPE, &sa, NULL) == -1 ||
	    sigaction(SIGINT, &sa, NULL) == -1 ||
	    sigaction(SIGTERM, &sa, NULL) == -1) {
		fprintf(stderr, "%s: sigaction: %s\n", PROGNAME, strerror(errno));
		return EXIT_FAILURE;
	}

	if (store_dir(store_opt, conf_path != NULL ? conf_path : DEFAULT_CONF,
	    dir, sizeof(dir)) == -1)
		goto out;
	/* map size 0: keep the size the daemon gave the store */
	flags = cmd->writes ? STORE_NOCREATE : STORE_RDONLY;
	/* readers must see stale slots before (or instead of) clearing them */
	if (cmd->run == cmd_readers)
		flags |= STORE_NOCHECK;
	cx.st = store_open(dir, 0, flags, 0, err, sizeof(err));
	if (cx.st == NULL) {
		fprintf(stderr, "%s: cannot open store: %s\n", PROGNAME, err);
		goto out;
	}
	store_set_cancel(cx.st, &stop_signal);
	cx.now = time(NULL);
	ret = cmd->run(&cx, nargs, args);
	if (fflush(cx.out) == EOF || ferror(cx.out)) {
		if (stop_signal != SIGPIPE)
			fprintf(stderr, "%s: write error: %s\n", PROGNAME,
			    strerror(errno));
		ret = EXIT_FAILURE;
	}
 out:
	table_free(&cx.t);
	store_close(cx.st);
	if (stop_signal == SIGINT || stop_signal == SIGTERM) {
		fprintf(stderr, "%s: interrupted\n", PROGNAME);
		ret = EXIT_FAILURE;
	} else if (stop_signal == SIGPIPE)
		ret = EXIT_FAILURE;	/* the reader went away: nothing to say */
	return ret;
}
