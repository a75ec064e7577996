/* test_dbtool.c - runs the built dialbackd-dbtool against a store filled
 * through the store API (held open by this process, as a running daemon
 * would): tables, JSON, the writing commands, usage and open errors, and
 * that no dialback key text ever reaches the output. */
#include "config.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <ctype.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store.h"
#include "test_main.h"
#include "util.h"

#define DBTOOL	TOP_BUILDDIR "/src/dialbackd-dbtool"
#define KEY_A	"c0ffee11c0ffee11c0ffee11c0ffee11c0ffee11c0ffee11c0ffee11c0ffee11"
#define KEY_B	"badd00d5badd00d5badd00d5badd00d5badd00d5badd00d5badd00d5badd00d5"
#define PID_A	4242
#define PID_B	4343

static struct store *st;	/* held open for the whole suite */
static char dir[4096];
static time_t now;

/* ---- running the tool ------------------------------------------------------ */

static char *
slurp(FILE *f)
{
	struct strbuf sb;
	char buf[4096];
	size_t n;

	strbuf_init(&sb, 0);
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		if (strbuf_append(&sb, buf, n) == -1)
			abort();
	if (strbuf_append(&sb, "", 0) == -1)
		abort();
	return strbuf_steal(&sb, NULL);
}

/* Runs the tool with args (a shell fragment); *out and *err get stdout and
 * stderr (free them). Returns the exit status, -1 if it did not exit. */
static int
run_raw(char **out, char **err, const char *fmt, ...)
{
	char args[8192], cmd[16384], errpath[4200];
	va_list ap;
	FILE *p, *f;
	int status;

	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	snprintf(errpath, sizeof(errpath), "%s/stderr.txt", test_tmpdir());
	snprintf(cmd, sizeof(cmd), "'%s' %s 2>'%s'", DBTOOL, args, errpath);
	if ((p = popen(cmd, "r")) == NULL)
		abort();
	*out = slurp(p);
	status = pclose(p);
	if ((f = fopen(errpath, "r")) == NULL)
		abort();
	*err = slurp(f);
	fclose(f);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

#define run(out, err, ...) run_raw(out, err, "-s '%s' " __VA_ARGS__)
#define RUN(out, err, args) run_raw(out, err, "-s '%s' %s", dir, args)

static bool
no_secret(const char *s)
{
	return strstr(s, KEY_A) == NULL && strstr(s, KEY_B) == NULL &&
	    strstr(s, "c0ffee11") == NULL && strstr(s, "badd00d5") == NULL;
}

/* The line of s that contains all of the words, or NULL. */
static bool
has_row(const char *s, const char *w1, const char *w2, const char *w3)
{
	const char *line = s, *end;
	char buf[4096];
	size_t n;

	while (*line != '\0') {
		end = strchr(line, '\n');
		n = end != NULL ? (size_t)(end - line) : strlen(line);
		if (n >= sizeof(buf))
			n = sizeof(buf) - 1;
		memcpy(buf, line, n);
		buf[n] = '\0';
		if (strstr(buf, w1) != NULL && (w2 == NULL || strstr(buf, w2)) &&
		    (w3 == NULL || strstr(buf, w3)))
			return true;
		if (end == NULL)
			break;
		line = end + 1;
	}
	return false;
}

static size_t
count_lines(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		if (*s == '\n')
			n++;
	return n;
}

/* ---- a small JSON syntax check (RFC 8259) ---------------------------------- */

static const char *json_value(const char *p, int depth);

static const char *
json_ws(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return p;
}

static const char *
json_str(const char *p)
{
	int i;

	if (*p++ != '"')
		return NULL;
	while (*p != '"') {
		if ((unsigned char)*p < 0x20)
			return NULL;
		if (*p == '\\') {
			p++;
			if (*p == 'u') {
				for (i = 1; i <= 4; i++)
					if (!isxdigit((unsigned char)p[i]))
						return NULL;
				p += 5;
				continue;
			}
			if (strchr("\"\\/bfnrt", *p) == NULL || *p == '\0')
				return NULL;
		}
		p++;
	}
	return p + 1;
}

static const char *
json_num(const char *p)
{
	if (*p == '-')
		p++;
	if (!isdigit((unsigned char)*p))
		return NULL;
	if (*p == '0' && isdigit((unsigned char)p[1]))
		return NULL;
	while (isdigit((unsigned char)*p))
		p++;
	return p;
}

static const char *
json_value(const char *p, int depth)
{
	if (depth > 16)
		return NULL;
	p = json_ws(p);
	if (*p == '{' || *p == '[') {
		char close = *p == '{' ? '}' : ']';
		bool obj = *p == '{';

		p = json_ws(p + 1);
		if (*p == close)
			return p + 1;
		for (;;) {
			if (obj) {
				if ((p = json_str(json_ws(p))) == NULL)
					return NULL;
				p = json_ws(p);
				if (*p++ != ':')
					return NULL;
			}
			if ((p = json_value(p, depth + 1)) == NULL)
				return NULL;
			p = json_ws(p);
			if (*p == close)
				return p + 1;
			if (*p++ != ',')
				return NULL;
		}
	}
	if (*p == '"')
		return json_str(p);
	if (strncmp(p, "true", 4) == 0 || strncmp(p, "null", 4) == 0)
		return p + 4;
	if (strncmp(p, "false", 5) == 0)
		return p + 5;
	return json_num(p);
}

/* One JSON array and nothing after it. */
static bool
json_array_ok(const char *s)
{
	const char *p = json_ws(s);

	if (*p != '[')
		return false;
	if ((p = json_value(p, 0)) == NULL)
		return false;
	return *json_ws(p) == '\0';
}

static void
test_json_checker(void)
{
	CU_ASSERT(json_array_ok("[]\n"));
	CU_ASSERT(json_array_ok("[\n{\"a\":1,\"b\":\"x\\\"\\u0001\"},\n{}\n]\n"));
	CU_ASSERT(!json_array_ok("[{\"a\":1}"));
	CU_ASSERT(!json_array_ok("[{\"a\":\"\n\"}]"));
	CU_ASSERT(!json_array_ok("[{a:1}]"));
	CU_ASSERT(!json_array_ok("[] []"));
}

/* ---- the store ------------------------------------------------------------- */

static int
suite_init(void)
{
	char err[512];
	struct store_key k;
	struct store_pair p;
	struct store_route r;
	struct store_owner w0 = { 0, PID_A };
	const char *const names[] = { "stanzas_in", "dialback_ok" };
	const uint64_t d0[] = { 10, 2 }, d1[] = { 5 }, dm[] = { 1 };
	int i;

	now = time(NULL);
	snprintf(dir, sizeof(dir), "%s/db", test_tmpdir());
	if ((st = store_open(dir, 4 << 20, STORE_NOSYNC, 32, err,
	    sizeof(err))) == NULL) {
		fprintf(stderr, "store_open: %s\n", err);
		return -1;
	}
	memset(&k, 0, sizeof(k));
	snprintf(k.originating, sizeof(k.originating), "a.example");
	snprintf(k.receiving, sizeof(k.receiving), "b.example");
	snprintf(k.stream_id, sizeof(k.stream_id), "s1");
	snprintf(k.key, sizeof(k.key), "%s", KEY_A);
	k.issued = now - 10;
	k.expires = now + 3600;
	k.owner = w0;
	if (store_key_put(st, &k) != STORE_OK)
		return -1;
	snprintf(k.receiving, sizeof(k.receiving), "c.example");
	snprintf(k.stream_id, sizeof(k.stream_id), "s2");
	snprintf(k.key, sizeof(k.key), "%s", KEY_B);
	k.issued = now - 1000;
	k.expires = now - 100;
	k.owner.slot = 1;
	k.owner.pid = PID_B;
	if (store_key_put(st, &k) != STORE_OK)
		return -1;

	memset(&p, 0, sizeof(p));
	snprintf(p.local, sizeof(p.local), "a.example");
	snprintf(p.remote, sizeof(p.remote), "b.example");
	p.dir = PAIR_OUT;
	p.state = PAIR_PENDING;
	p.owner = w0;
	p.conn_id = 7;
	p.since = now;
	snprintf(p.stream_id, sizeof(p.stream_id), "s1");
	if (store_pair_put(st, &p) != STORE_OK)
		return -1;
	snprintf(p.remote, sizeof(p.remote), "b\xc3\xbc" "cher.example");
	p.dir = PAIR_IN;
	p.state = PAIR_FAILED;
	p.conn_id = 8;
	snprintf(p.reason, sizeof(p.reason), "bad \"cert\" \\ x\t");
	if (store_pair_put(st, &p) != STORE_OK)
		return -1;

	memset(&r, 0, sizeof(r));
	r.kind = ROUTE_COMPONENT;
	snprintf(r.domain, sizeof(r.domain), "muc.a.example");
	r.owner.slot = 1;
	r.owner.pid = PID_B;
	r.since = now;
	if (store_route_claim(st, &r, NULL) != STORE_OK)
		return -1;
	/* the first append claims the outbound route for worker 0 */
	for (i = 0; i < 3; i++)
		if (store_queue_append(st, "a.example", "b.example", "<message/>",
		    10, now - 5, 0, &w0, NULL, NULL, NULL) != STORE_OK)
			return -1;
	if (store_queue_append(st, "a.example", "c.example", "<iq/>", 5, now,
	    0, &w0, NULL, NULL, NULL) != STORE_OK)
		return -1;
	if (store_stats_add(st, 0, names, d0, 2) != STORE_OK ||
	    store_stats_add(st, 1, names, d1, 1) != STORE_OK ||
	    store_stats_add(st, -1, names, dm, 1) != STORE_OK)
		return -1;
	return 0;
}

static int
suite_clean(void)
{
	store_close(st);
	st = NULL;
	return 0;
}

/* ---- listing --------------------------------------------------------------- */

static void
test_keys(void)
{
	char *out, *err;

	CU_ASSERT_EQUAL(RUN(&out, &err, "keys"), 0);
	CU_ASSERT_EQUAL(strncmp(out, "ORIGINATING", 11), 0);
	CU_ASSERT(has_row(out, "RECEIVING", "STREAM-ID", "EXPIRES"));
	CU_ASSERT(has_row(out, "b.example", "s1", "live"));
	CU_ASSERT(has_row(out, "c.example", "s2", "expired"));
	CU_ASSERT(has_row(out, "c.example", "4343", NULL));
	CU_ASSERT_EQUAL(count_lines(out), 3);
	CU_ASSERT(no_secret(out));
	CU_ASSERT_STRING_EQUAL(err, "");
	free(out);
	free(err);

	CU_ASSERT_EQUAL(RUN(&out, &err, "--json keys"), 0);
	CU_ASSERT(json_array_ok(out));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"originating\":\"a.example\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"receiving\":\"b.example\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"stream_id\":\"s1\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"state\":\"expired\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"pid\":4242"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"issued\":"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"expires\":"));
	CU_ASSERT_PTR_NULL(strstr(out, "\"key\""));
	CU_ASSERT(no_secret(out));
	free(out);
	free(err);

	/* --json after the command works too */
	CU_ASSERT_EQUAL(RUN(&out, &err, "keys --json"), 0);
	CU_ASSERT(json_array_ok(out));
	free(out);
	free(err);
}

static void
test_pairs(void)
{
	char *out, *err;

	CU_ASSERT_EQUAL(RUN(&out, &err, "pairs"), 0);
	CU_ASSERT_EQUAL(strncmp(out, "LOCAL", 5), 0);
	CU_ASSERT(has_row(out, "REMOTE", "STATE", "REASON"));
	CU_ASSERT(has_row(out, "b.example", "out", "pending"));
	CU_ASSERT(has_row(out, "b\xc3\xbc" "cher.example", "in", "failed"));
	/* the tab in the reason is shown as '?' to keep one row per line */
	CU_ASSERT(has_row(out, "bad \"cert\" \\ x?", NULL, NULL));
	CU_ASSERT_EQUAL(count_lines(out), 3);
	free(out);
	free(err);

	CU_ASSERT_EQUAL(RUN(&out, &err, "--json pairs"), 0);
	CU_ASSERT(json_array_ok(out));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"dir\":\"out\",\"state\":\"pending\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"conn\":8"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"reason\":\"bad \\\"cert\\\" \\\\ x\\t\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"remote\":\"b\xc3\xbc" "cher.example\""));
	free(out);
	free(err);
}

static void
test_routes(void)
{
	char *out, *err;

	CU_ASSERT_EQUAL(RUN(&out, &err, "routes"), 0);
	CU_ASSERT_EQUAL(strncmp(out, "KIND", 4), 0);
	CU_ASSERT(has_row(out, "DOMAIN", "REMOTE", "SINCE"));
	CU_ASSERT(has_row(out, "component", "muc.a.example", "4343"));
	CU_ASSERT(has_row(out, "outbound", "a.example", "b.example"));
	CU_ASSERT(has_row(out, "outbound", "c.example", "4242"));
	free(out);
	free(err);

	CU_ASSERT_EQUAL(RUN(&out, &err, "--json routes"), 0);
	CU_ASSERT(json_array_ok(out));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"kind\":\"component\","
	    "\"domain\":\"muc.a.example\",\"remote\":\"\",\"slot\":1,\"pid\":4343"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"kind\":\"outbound\","
	    "\"domain\":\"a.example\",\"remote\":\"b.example\""));
	free(out);
	free(err);
}

static void
test_queue(void)
{
	char *out, *err;

	CU_ASSERT_EQUAL(RUN(&out, &err, "queue"), 0);
	CU_ASSERT_EQUAL(strncmp(out, "LOCAL", 5), 0);
	CU_ASSERT(has_row(out, "REMOTE", "DEPTH", "BYTES"));
	CU_ASSERT(has_row(out, "b.example", "  3  ", " 30 "));
	CU_ASSERT(has_row(out, "c.example", "  1  ", "  5  "));
	CU_ASSERT_EQUAL(count_lines(out), 3);
	free(out);
	free(err);

	CU_ASSERT_EQUAL(RUN(&out, &err, "--json queue"), 0);
	CU_ASSERT(json_array_ok(out));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"local\":\"a.example\","
	    "\"remote\":\"b.example\",\"depth\":3,\"bytes\":30"));
	free(out);
	free(err);

	CU_ASSERT_EQUAL(RUN(&out, &err, "queue a.example b.example"), 0);
	CU_ASSERT_EQUAL(strncmp(out, "SEQ", 3), 0);
	CU_ASSERT(has_row(out, "QUEUED", "AGE", "SIZE"));
	CU_ASSERT_EQUAL(count_lines(out), 4);
	free(out);
	free(err);

	CU_ASSERT_EQUAL(RUN(&out, &err, "--json queue a.example b.example"), 0);
	CU_ASSERT(json_array_ok(out));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "{\"seq\":1,\"queued\":"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "{\"seq\":3,\"queued\":"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"size\":10}"));
	free(out);
	free(err);

	/* a pair with nothing queued: the header only */
	CU_ASSERT_EQUAL(RUN(&out, &err, "queue x.example y.example"), 0);
	CU_ASSERT_EQUAL(count_lines(out), 1);
	free(out);
	free(err);
	CU_ASSERT_EQUAL(RUN(&out, &err, "--json queue x.example y.example"), 0);
	CU_ASSERT_STRING_EQUAL(out, "[]\n");
	free(out);
	free(err);
}

static void
test_stats(void)
{
	char *out, *err;

	CU_ASSERT_EQUAL(RUN(&out, &err, "stats"), 0);
	CU_ASSERT_EQUAL(strncmp(out, "NAME", 4), 0);
	CU_ASSERT(has_row(out, "WORKER", "VALUE", NULL));
	CU_ASSERT(has_row(out, "stanzas_in", "master", " 1"));
	CU_ASSERT(has_row(out, "stanzas_in", "total", "16"));
	CU_ASSERT(has_row(out, "dialback_ok", "total", " 2"));
	/* dialback_ok: worker 0 and total; stanzas_in: master, 0, 1, total */
	CU_ASSERT_EQUAL(count_lines(out), 7);
	free(out);
	free(err);

	CU_ASSERT_EQUAL(RUN(&out, &err, "--json stats"), 0);
	CU_ASSERT(json_array_ok(out));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "{\"name\":\"stanzas_in\","
	    "\"worker\":\"1\",\"value\":5}"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "{\"name\":\"stanzas_in\","
	    "\"worker\":\"total\",\"value\":16}"));
	free(out);
	free(err);
}

static void
test_dump(void)
{
	char *out, *err;
	size_t n;

	CU_ASSERT_EQUAL(RUN(&out, &err, "dump"), 0);
	CU_ASSERT_EQUAL(strncmp(out, "dialbackd-store-dump 1\n", 23), 0);
	n = strlen(out);
	CU_ASSERT(n > 4 && strcmp(out + n - 4, "end\n") == 0);
	CU_ASSERT(has_row(out, "keys originating=\"a.example\"", "key=hidden",
	    NULL));
	CU_ASSERT(has_row(out, "queue local=\"a.example\"", "data=\"<iq/>\"",
	    NULL));
	CU_ASSERT(no_secret(out));
	free(out);
	free(err);
}

/* This process holds the store open and has read it: it holds a slot. */
static void
test_readers(void)
{
	char *out, *err, pid[32], want[64], e[512];
	int fds[2], status;
	size_t depth;
	pid_t child;
	char c;

	snprintf(pid, sizeof(pid), "%ld", (long)getpid());
	CU_ASSERT_EQUAL(store_queue_depth(st, "a.example", "b.example", &depth),
	    STORE_OK);
	CU_ASSERT_EQUAL(RUN(&out, &err, "readers"), 0);
	CU_ASSERT_EQUAL(strncmp(out, "PID", 3), 0);
	CU_ASSERT(has_row(out, "THREAD", "TXNID", "STATUS"));
	CU_ASSERT(has_row(out, pid, "live", NULL));
	free(out);
	free(err);

	/* A reader killed in its transaction leaves a stale slot. No store
	 * environment may cross the fork, so ours is closed meanwhile and
	 * reopened after it: LMDB resets the reader table when the last
	 * process closes the store, a running daemon keeps it open. */
	store_close(st);
	st = NULL;
	CU_ASSERT_FATAL(pipe(fds) == 0);
	child = fork();
	CU_ASSERT_FATAL(child != -1);
	if (child == 0) {
		struct store *cs;

		close(fds[0]);
		cs = store_open(dir, 0, 0, 32, e, sizeof(e));
		if (cs == NULL || store_debug_begin_read(cs) != STORE_OK ||
		    write(fds[1], "r", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(fds[1]);
	st = store_open(dir, 0, STORE_NOSYNC, 32, e, sizeof(e));
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	CU_ASSERT_EQUAL(read(fds[0], &c, 1), 1);
	close(fds[0]);
	CU_ASSERT_EQUAL(kill(child, SIGKILL), 0);
	CU_ASSERT_EQUAL(waitpid(child, &status, 0), child);

	snprintf(want, sizeof(want), "%ld", (long)child);
	CU_ASSERT_EQUAL(RUN(&out, &err, "readers"), 0);
	CU_ASSERT(has_row(out, want, "stale", NULL));
	free(out);
	free(err);
	CU_ASSERT_EQUAL(RUN(&out, &err, "--json readers"), 0);
	CU_ASSERT(json_array_ok(out));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"status\":\"stale\""));
	free(out);
	free(err);
	CU_ASSERT_EQUAL(RUN(&out, &err, "readers --check"), 0);
	CU_ASSERT_STRING_EQUAL(out, "cleared 1 stale reader slot\n");
	free(out);
	free(err);
	CU_ASSERT_EQUAL(RUN(&out, &err, "readers"), 0);
	CU_ASSERT(!has_row(out, want, NULL, NULL));
	free(out);
	free(err);
	CU_ASSERT_EQUAL(RUN(&out, &err, "--json readers --check"), 0);
	CU_ASSERT_STRING_EQUAL(out, "[\n{\"cleared\":0}\n]\n");
	free(out);
	free(err);
}

/* Piped into head: the tool stops quietly and leaves no stale reader. */
static void
test_sigpipe(void)
{
	struct store_owner w = { 2, 5555 };
	char *out, *err, errpath[4200];
	FILE *f;
	int i;

	for (i = 0; i < 5000; i++)
		CU_ASSERT_EQUAL_FATAL(store_queue_append(st, "p.example",
		    "q.example", "<message/>", 10, now, 0, &w, NULL, NULL, NULL),
		    STORE_OK);
	/* the tool's own stderr, not head's */
	snprintf(errpath, sizeof(errpath), "%s/pipe-err.txt", test_tmpdir());
	CU_ASSERT_EQUAL(run(&out, &err, "queue p.example q.example 2>'%s' | "
	    "head -n 2", dir, errpath), 0);
	CU_ASSERT_EQUAL(count_lines(out), 2);
	CU_ASSERT_EQUAL(strncmp(out, "SEQ", 3), 0);
	free(out);
	free(err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f = fopen(errpath, "r"));
	err = slurp(f);
	fclose(f);
	CU_ASSERT_STRING_EQUAL(err, "");
	free(err);
	CU_ASSERT_EQUAL(run(&out, &err, "dump 2>'%s' | head -c 100 >/dev/null",
	    dir, errpath), 0);
	free(out);
	free(err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f = fopen(errpath, "r"));
	err = slurp(f);
	fclose(f);
	CU_ASSERT_STRING_EQUAL(err, "");
	free(err);
	CU_ASSERT_EQUAL(RUN(&out, &err, "readers"), 0);
	CU_ASSERT_PTR_NULL(strstr(out, "stale"));
	free(out);
	free(err);
}

/* ---- writing --------------------------------------------------------------- */

static void
test_purge(void)
{
	char *out, *err;

	CU_ASSERT_EQUAL(RUN(&out, &err, "purge"), 0);
	CU_ASSERT_STRING_EQUAL(out, "purged 1 expired key\n");
	free(out);
	free(err);
	CU_ASSERT_EQUAL(RUN(&out, &err, "keys"), 0);
	CU_ASSERT(!has_row(out, "c.example", NULL, NULL));
	CU_ASSERT(has_row(out, "b.example", NULL, NULL));
	free(out);
	free(err);
	CU_ASSERT_EQUAL(RUN(&out, &err, "--json purge"), 0);
	CU_ASSERT_STRING_EQUAL(out, "[\n{\"purged\":0}\n]\n");
	free(out);
	free(err);
}

static void
test_drop(void)
{
	char *out, *err;
	size_t depth = 99;

	CU_ASSERT_EQUAL(RUN(&out, &err, "drop a.example b.example"), 0);
	CU_ASSERT_STRING_EQUAL(out,
	    "dropped 3 queued stanzas for a.example -> b.example\n");
	free(out);
	free(err);
	CU_ASSERT_EQUAL(store_queue_depth(st, "a.example", "b.example", &depth),
	    STORE_OK);
	CU_ASSERT_EQUAL(depth, 0);
	CU_ASSERT_EQUAL(store_queue_depth(st, "a.example", "c.example", &depth),
	    STORE_OK);
	CU_ASSERT_EQUAL(depth, 1);
	CU_ASSERT_EQUAL(RUN(&out, &err, "drop a.example c.example --json"), 0);
	CU_ASSERT_STRING_EQUAL(out, "[\n{\"dropped\":1}\n]\n");
	free(out);
	free(err);
}

static void
test_flush(void)
{
	struct store_route r;
	char *out, *err;

	CU_ASSERT_EQUAL(RUN(&out, &err, "flush outbound a.example b.example"), 0);
	CU_ASSERT_EQUAL(strncmp(out, "removed outbound route a.example -> "
	    "b.example (held by worker 0, pid 4242, since ", 81), 0);
	free(out);
	free(err);
	CU_ASSERT_EQUAL(store_route_get(st, ROUTE_OUTBOUND, "a.example",
	    "b.example", &r), STORE_NOTFOUND);
	/* again: nothing to remove */
	CU_ASSERT_EQUAL(RUN(&out, &err, "flush outbound a.example b.example"), 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "no outbound route a.example -> "
	    "b.example"));
	free(out);
	free(err);
	CU_ASSERT_EQUAL(RUN(&out, &err, "--json flush component muc.a.example"),
	    0);
	CU_ASSERT(json_array_ok(out));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"kind\":\"component\","
	    "\"domain\":\"muc.a.example\""));
	free(out);
	free(err);
	CU_ASSERT_EQUAL(store_route_get(st, ROUTE_COMPONENT, "muc.a.example",
	    NULL, &r), STORE_NOTFOUND);
	/* wrong shapes */
	CU_ASSERT_EQUAL(RUN(&out, &err, "flush outbound a.example"), 2);
	free(out);
	free(err);
	CU_ASSERT_EQUAL(RUN(&out, &err, "flush component a.example b.example"), 2);
	free(out);
	free(err);
	CU_ASSERT_EQUAL(RUN(&out, &err, "flush bogus a.example"), 2);
	free(out);
	free(err);
}

/* ---- errors ---------------------------------------------------------------- */

static void
test_usage(void)
{
	static const char *const bad[] = {
		"", "bogus", "drop a.example", "keys extra", "queue a.example",
		"--bogus keys", "dump --json", "keys --check",
		"flush outbound a b c d",
	};
	char *out, *err;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		CU_ASSERT_EQUAL(RUN(&out, &err, bad[i]), 2);
		CU_ASSERT_STRING_EQUAL(out, "");
		CU_ASSERT_NOT_EQUAL(err[0], '\0');
		free(out);
		free(err);
	}
	CU_ASSERT_EQUAL(run_raw(&out, &err, "-c /x.conf -s /y keys"), 2);
	free(out);
	free(err);
	CU_ASSERT_EQUAL(run_raw(&out, &err, ""), 2);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "usage:"));
	free(out);
	free(err);
	CU_ASSERT_EQUAL(run_raw(&out, &err, "help"), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "usage:"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "readers"));
	free(out);
	free(err);
	CU_ASSERT_EQUAL(run_raw(&out, &err, "--help"), 0);
	free(out);
	free(err);
}

static void
test_missing(void)
{
	char *out, *err, path[4200];

	snprintf(path, sizeof(path), "%s/nothing", test_tmpdir());
	CU_ASSERT_EQUAL(run(&out, &err, "keys", path), 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, path));
	CU_ASSERT_STRING_EQUAL(out, "");
	free(out);
	free(err);
	/* a writing command does not create one either */
	CU_ASSERT_EQUAL(run(&out, &err, "purge", path), 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, path));
	free(out);
	free(err);
	CU_ASSERT_EQUAL(access(path, F_OK), -1);
	/* a directory that holds no store */
	CU_ASSERT_EQUAL(mkdir(path, 0700), 0);
	CU_ASSERT_EQUAL(run(&out, &err, "drop a.example b.example", path), 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "no store"));
	free(out);
	free(err);
	CU_ASSERT_EQUAL(run(&out, &err, "readers", path), 1);
	free(out);
	free(err);
	/* a configuration file that does not exist */
	CU_ASSERT_EQUAL(run_raw(&out, &err, "-c '%s/none.conf' keys",
	    test_tmpdir()), 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "none.conf"));
	free(out);
	free(err);
}

int
test_register(void)
{
	CU_pSuite s;

	if ((s = CU_add_suite("json checker", NULL, NULL)) == NULL)
		return CU_get_error();
	TEST_ADD(s, test_json_checker);
	if ((s = CU_add_suite("dbtool", suite_init, suite_clean)) == NULL)
		return CU_get_error();
	TEST_ADD(s, test_keys);
	TEST_ADD(s, test_pairs);
	TEST_ADD(s, test_routes);
	TEST_ADD(s, test_queue);
	TEST_ADD(s, test_stats);
	TEST_ADD(s, test_dump);
	TEST_ADD(s, test_readers);
	TEST_ADD(s, test_sigpipe);
	TEST_ADD(s, test_purge);
	TEST_ADD(s, test_drop);
	TEST_ADD(s, test_flush);
	TEST_ADD(s, test_usage);
	TEST_ADD(s, test_missing);
	return CUE_SUCCESS;
}
