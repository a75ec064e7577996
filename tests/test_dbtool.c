/* test_dbtool.c - runs the built dialbackd-dbtool against a store filled
 * through the store API (held open by this process, as a running daemon
 * would): tables, JSON, the Prometheus form of the counters, the writing
 * commands, usage and open errors, and that no dialback key text ever
 * reaches the output. Most cases are tables of struct expect. */
#include "config.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <ctype.h>
#include <regex.h>
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

/* Copies the next line of *s into buf (cut to fit) and moves past it;
 * false at the end of s. */
static bool
next_line(const char **s, char *buf, size_t len)
{
	const char *p = *s, *end = strchr(p, '\n');
	size_t n = end != NULL ? (size_t)(end - p) : strlen(p);

	if (*p == '\0')
		return false;
	*s = end != NULL ? end + 1 : p + n;
	if (n >= len)
		n = len - 1;
	memcpy(buf, p, n);
	buf[n] = '\0';
	return true;
}

/* Whether a line of s contains all of the words (w2, w3 may be NULL). */
static bool
has_row(const char *s, const char *w1, const char *w2, const char *w3)
{
	char buf[4096];

	while (next_line(&s, buf, sizeof(buf)))
		if (strstr(buf, w1) != NULL &&
		    (w2 == NULL || strstr(buf, w2) != NULL) &&
		    (w3 == NULL || strstr(buf, w3) != NULL))
			return true;
	return false;
}

/* Whether a line of s has exactly the blank-separated fields of want,
 * where "*" stands for any one field. */
static bool
has_fields(const char *s, const char *want)
{
	char buf[4096], w[1024], *lp, *wp, *l, *f;

	while (next_line(&s, buf, sizeof(buf))) {
		if (util_strlcpy(w, want, sizeof(w)) >= sizeof(w))
			abort();
		l = strtok_r(buf, " ", &lp);
		f = strtok_r(w, " ", &wp);
		while (l != NULL && f != NULL &&
		    (strcmp(f, "*") == 0 || strcmp(f, l) == 0)) {
			l = strtok_r(NULL, " ", &lp);
			f = strtok_r(NULL, " ", &wp);
		}
		if (l == NULL && f == NULL)
			return true;
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

/* One JSON array (open '[') or object ('{') and nothing after it. */
static bool
json_ok(const char *s, char open)
{
	const char *p = json_ws(s);

	if (*p != open)
		return false;
	if ((p = json_value(p, 0)) == NULL)
		return false;
	return *json_ws(p) == '\0';
}

static void
test_json_checker(void)
{
	CU_ASSERT(json_ok("[]\n", '['));
	CU_ASSERT(json_ok("[\n{\"a\":1,\"b\":\"x\\\"\\u0001\"},\n{}\n]\n", '['));
	CU_ASSERT(json_ok("{\"w\":{\"0\":{\"a\":1}},\"t\":{}}\n", '{'));
	CU_ASSERT(!json_ok("{}", '['));
	CU_ASSERT(!json_ok("[{\"a\":1}", '['));
	CU_ASSERT(!json_ok("[{\"a\":\"\n\"}]", '['));
	CU_ASSERT(!json_ok("[{a:1}]", '['));
	CU_ASSERT(!json_ok("[] []", '['));
	CU_ASSERT(!json_ok("{\"a\":1,}", '{'));
}

/* ---- the Prometheus text format ------------------------------------------- */

/* Checks s as node_exporter's textfile collector reads it (the Prometheus
 * text format), ended by OpenMetrics' "# EOF": only HELP, TYPE, sample and
 * EOF lines, each ending in a newline; per family a HELP line, then its
 * TYPE line, then its samples without a break; no family or worker twice;
 * "# EOF" last. Returns the number of families, -1 when anything is off. */
static int
prom_check(const char *s)
{
	enum { HELP, TYPE, SAMPLE, END, NPAT };
	static const char *const pat[NPAT] = {
		[HELP] = "^# HELP (dialbackd_[a-zA-Z0-9_]+_total) [ -~]+$",
		[TYPE] = "^# TYPE (dialbackd_[a-zA-Z0-9_]+_total) counter$",
		[SAMPLE] = "^(dialbackd_[a-zA-Z0-9_]+_total)"
		    "\\{worker=\"(master|0|[1-9][0-9]*)\"\\} (0|[1-9][0-9]*)$",
		[END] = "^# EOF$",
	};
	regex_t re[NPAT];
	regmatch_t m[3];
	char line[1024], fam[128] = "", seen[64][128], workers[64][16];
	size_t nseen = 0, nworkers = 0, n, i;
	int k, ret = -1;
	int state = END;	/* the last line's kind; END: none yet */
	bool eof = false;
	const char *end;

	for (k = 0; k < NPAT; k++)
		if (regcomp(&re[k], pat[k], REG_EXTENDED) != 0)
			abort();
	for (; *s != '\0'; s = end + 1) {
		if (eof || (end = strchr(s, '\n')) == NULL ||
		    (n = (size_t)(end - s)) >= sizeof(line))
			goto out;
		memcpy(line, s, n);
		line[n] = '\0';
		for (k = 0; k < NPAT; k++)
			if (regexec(&re[k], line, 3, m, 0) == 0)
				break;
		if (k < END && (n = (size_t)(m[1].rm_eo - m[1].rm_so)) >=
		    sizeof(fam))
			goto out;
		switch (k) {
		case HELP:
			if (state == HELP || nseen == ARRAY_SIZE(seen))
				goto out;
			memcpy(fam, line + m[1].rm_so, n);
			fam[n] = '\0';
			for (i = 0; i < nseen; i++)
				if (strcmp(seen[i], fam) == 0)
					goto out;
			memcpy(seen[nseen++], fam, n + 1);
			nworkers = 0;
			break;
		case TYPE:
			if (state != HELP || strlen(fam) != n ||
			    strncmp(line + m[1].rm_so, fam, n) != 0)
				goto out;
			break;
		case SAMPLE:
			if ((state != TYPE && state != SAMPLE) ||
			    strlen(fam) != n ||
			    strncmp(line + m[1].rm_so, fam, n) != 0)
				goto out;
			n = (size_t)(m[2].rm_eo - m[2].rm_so);
			if (nworkers == ARRAY_SIZE(workers) ||
			    n >= sizeof(workers[0]))
				goto out;
			for (i = 0; i < nworkers; i++)
				if (strlen(workers[i]) == n && strncmp(workers[i],
				    line + m[2].rm_so, n) == 0)
					goto out;
			memcpy(workers[nworkers], line + m[2].rm_so, n);
			workers[nworkers++][n] = '\0';
			break;
		case END:
			if (state == HELP)
				goto out;
			eof = true;
			break;
		default:
			goto out;
		}
		state = k;
	}
	if (eof)
		ret = (int)nseen;
 out:
	for (k = 0; k < NPAT; k++)
		regfree(&re[k]);
	return ret;
}

static void
test_prom_checker(void)
{
	static const char *const bad[] = {
		"",					/* no EOF */
		"# EOF",				/* no newline */
		"# EOF\n# EOF\n",			/* EOF not last */
		"# EOF\n\n",
		"dialbackd_a_total{worker=\"0\"} 1\n# EOF\n",	/* no HELP/TYPE */
		"# HELP dialbackd_a_total A.\ndialbackd_a_total{worker=\"0\"} 1\n"
		    "# EOF\n",				/* no TYPE */
		"# TYPE dialbackd_a_total counter\n# EOF\n",	/* no HELP */
		"# HELP dialbackd_a_total A.\n# TYPE dialbackd_a_total gauge\n"
		    "# EOF\n",
		"# HELP dialbackd_a_total A.\n# TYPE dialbackd_b_total counter\n"
		    "# EOF\n",
		"# HELP dialbackd_a_total A.\n# TYPE dialbackd_a_total counter\n"
		    "dialbackd_b_total{worker=\"0\"} 1\n# EOF\n",
		"# HELP dialbackd_a_total A.\n# TYPE dialbackd_a_total counter\n"
		    "dialbackd_a_total{worker=\"0\"} 1\n"
		    "dialbackd_a_total{worker=\"0\"} 2\n# EOF\n",	/* twice */
		"# HELP dialbackd_a_total A.\n# TYPE dialbackd_a_total counter\n"
		    "dialbackd_a_total{worker=\"01\"} 1\n# EOF\n",
		"# HELP dialbackd_a_total A.\n# TYPE dialbackd_a_total counter\n"
		    "dialbackd_a_total{slot=\"0\"} 1\n# EOF\n",
		"# HELP dialbackd_a_total A.\n# TYPE dialbackd_a_total counter\n"
		    "dialbackd_a_total{worker=\"0\"} -1\n# EOF\n",
		"# HELP dialbackd_a A.\n# TYPE dialbackd_a counter\n# EOF\n",
		"# HELP dialbackd_a_total A.\n# TYPE dialbackd_a_total counter\n"
		    "# HELP dialbackd_a_total A.\n# TYPE dialbackd_a_total counter\n"
		    "# EOF\n",				/* a family twice */
		"# HELP dialbackd_a_total A.\n# TYPE dialbackd_a_total counter\n"
		    "# EOF\ndialbackd_a_total{worker=\"0\"} 1\n",
	};
	size_t i;

	CU_ASSERT_EQUAL(prom_check("# EOF\n"), 0);
	CU_ASSERT_EQUAL(prom_check(
	    "# HELP dialbackd_a_total A (\"x\").\n"
	    "# TYPE dialbackd_a_total counter\n"
	    "dialbackd_a_total{worker=\"master\"} 0\n"
	    "dialbackd_a_total{worker=\"0\"} 18446744073709551615\n"
	    "dialbackd_a_total{worker=\"12\"} 3\n"
	    "# HELP dialbackd_b_total B.\n"
	    "# TYPE dialbackd_b_total counter\n"
	    "# EOF\n"), 2);
	for (i = 0; i < ARRAY_SIZE(bad); i++)
		CU_ASSERT_EQUAL(prom_check(bad[i]), -1);
}

/* ---- expectations: one run of the tool, what it must print ---------------- */

enum form { FORM_TEXT = 0, FORM_JSON_ARRAY, FORM_JSON_OBJECT, FORM_PROMETHEUS };

struct expect {
	const char	*args;
	int		 status;
	enum form	 form;		/* checked as a whole */
	const char	*exact;		/* all of stdout; NULL: not checked */
	const char	*starts;	/* the start of stdout */
	const char	*ends;		/* the end of stdout */
	size_t		 lines;		/* stdout's lines; 0: not checked */
	const char	*rows[6][3];	/* lines of stdout with these words */
	const char	*fields[4];	/* lines of stdout with these fields */
	const char	*has[6];	/* in stdout */
	const char	*lacks[3];	/* not in stdout */
	const char	*err;		/* in stderr; NULL: none if status 0 */
};

/* A failed check names the command line (in CUnit's file column). */
#define EXPECT(e, cond)							\
	CU_assertImplementation((cond), __LINE__, #cond, (e)->args, "",	\
	    CU_FALSE)

static bool
ends_with(const char *s, const char *end)
{
	size_t n = strlen(s), m = strlen(end);

	return n >= m && strcmp(s + n - m, end) == 0;
}

/* Runs the tool on the store in d and checks all that e says. No output
 * may ever hold a dialback key's text. */
static void
expect_in(const char *d, const struct expect *e)
{
	char *out, *err;
	size_t i;

	EXPECT(e, run_raw(&out, &err, "-s '%s' %s", d, e->args) == e->status);
	if (e->exact != NULL)
		EXPECT(e, strcmp(out, e->exact) == 0);
	if (e->starts != NULL)
		EXPECT(e, strncmp(out, e->starts, strlen(e->starts)) == 0);
	if (e->ends != NULL)
		EXPECT(e, ends_with(out, e->ends));
	if (e->lines > 0)
		EXPECT(e, count_lines(out) == e->lines);
	for (i = 0; i < ARRAY_SIZE(e->rows) && e->rows[i][0] != NULL; i++)
		EXPECT(e, has_row(out, e->rows[i][0], e->rows[i][1],
		    e->rows[i][2]));
	for (i = 0; i < ARRAY_SIZE(e->fields) && e->fields[i] != NULL; i++)
		EXPECT(e, has_fields(out, e->fields[i]));
	for (i = 0; i < ARRAY_SIZE(e->has) && e->has[i] != NULL; i++)
		EXPECT(e, strstr(out, e->has[i]) != NULL);
	for (i = 0; i < ARRAY_SIZE(e->lacks) && e->lacks[i] != NULL; i++)
		EXPECT(e, strstr(out, e->lacks[i]) == NULL);
	switch (e->form) {
	case FORM_TEXT:
		break;
	case FORM_JSON_ARRAY:
		EXPECT(e, json_ok(out, '['));
		break;
	case FORM_JSON_OBJECT:
		EXPECT(e, json_ok(out, '{'));
		break;
	case FORM_PROMETHEUS:
		EXPECT(e, prom_check(out) >= 14);
		break;
	}
	if (e->err != NULL)
		EXPECT(e, strstr(err, e->err) != NULL);
	else if (e->status == 0)
		EXPECT(e, err[0] == '\0');
	else
		EXPECT(e, err[0] != '\0');	/* a failure says why */
	EXPECT(e, no_secret(out) && no_secret(err));
	free(out);
	free(err);
}

static void
expect_all(const char *d, const struct expect *e, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		expect_in(d, &e[i]);
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
	const char *const names[] = { "streams_in", "dialback_valid" };
	const char *const names1[] = { "streams_in", "x-legacy" };
	const uint64_t d0[] = { 10, 2 }, d1[] = { 5, 4 }, dm[] = { 1 };
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

	/* pairs aged 2 hours, 3 minutes and 3 days */
	memset(&p, 0, sizeof(p));
	snprintf(p.local, sizeof(p.local), "a.example");
	snprintf(p.remote, sizeof(p.remote), "b.example");
	p.dir = PAIR_OUT;
	p.state = PAIR_PENDING;
	p.owner = w0;
	p.conn_id = 7;
	p.since = now - 7200;
	snprintf(p.stream_id, sizeof(p.stream_id), "s1");
	if (store_pair_put(st, &p) != STORE_OK)
		return -1;
	snprintf(p.remote, sizeof(p.remote), "b\xc3\xbc" "cher.example");
	p.dir = PAIR_IN;
	p.state = PAIR_FAILED;
	p.conn_id = 8;
	p.since = now - 200;
	snprintf(p.reason, sizeof(p.reason), "bad \"cert\" \\ x\t");
	if (store_pair_put(st, &p) != STORE_OK)
		return -1;
	snprintf(p.remote, sizeof(p.remote), "d.example");
	p.state = PAIR_VALID;
	p.owner.slot = 1;
	p.owner.pid = PID_B;
	p.since = now - 3 * 86400 - 100;
	p.reason[0] = '\0';
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
	/* worker 1 also has a counter whose name is no metric name */
	if (store_stats_add(st, 0, names, d0, 2) != STORE_OK ||
	    store_stats_add(st, 1, names1, d1, 2) != STORE_OK ||
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
	static const struct expect e[] = {
		{ "keys", .starts = "ORIGINATING", .lines = 3, .rows = {
		    { "RECEIVING", "STREAM-ID", "EXPIRES" },
		    { "WORKER", "PID", NULL },
		    { "b.example", "s1", "live" },
		    { "c.example", "s2", "expired" },
		    { "c.example", "4343", NULL } } },
		{ "--json keys", .form = FORM_JSON_ARRAY, .has = {
		    "\"originating\":\"a.example\",\"receiving\":\"b.example\","
		    "\"stream_id\":\"s1\",\"issued\":",
		    "\"state\":\"expired\",\"slot\":1,\"pid\":4343",
		    "\"expires\":" }, .lacks = { "\"key\"" } },
		/* --json after the command works too */
		{ "keys --json", .form = FORM_JSON_ARRAY },
	};

	expect_all(dir, e, ARRAY_SIZE(e));
}

static void
test_pairs(void)
{
	static const struct expect e[] = {
		{ "pairs", .starts = "LOCAL", .lines = 4, .rows = {
		    { "REMOTE", "STATE", "AGE" },
		    { "WORKER", "REASON", NULL },
		    { "b.example", "out", "pending" },
		    { "b\xc3\xbc" "cher.example", "in", "failed" },
		    /* the tab in the reason is shown as '?' (one row a line) */
		    { "bad \"cert\" \\ x?", NULL, NULL } }, .fields = {
		    /* state, age, owner worker and pid, the last failure */
		    "a.example b.example out pending 2h 0 4242 7 * s1 -",
		    "a.example b\xc3\xbc" "cher.example in failed 3m 0 4242 8 * s1 "
		    "bad \"cert\" \\ x?",
		    "a.example d.example in valid 3d 1 4343 8 * s1 -" } },
		{ "--json pairs", .form = FORM_JSON_ARRAY, .has = {
		    "\"dir\":\"out\",\"state\":\"pending\",\"age\":72",
		    "\"state\":\"failed\",\"age\":2",
		    "\"conn\":8",
		    "\"reason\":\"bad \\\"cert\\\" \\\\ x\\t\"",
		    "\"remote\":\"b\xc3\xbc" "cher.example\"" } },
	};

	expect_all(dir, e, ARRAY_SIZE(e));
}

static void
test_routes(void)
{
	static const struct expect e[] = {
		{ "routes", .starts = "KIND", .rows = {
		    { "DOMAIN", "REMOTE", "SINCE" },
		    { "component", "muc.a.example", "4343" },
		    { "outbound", "a.example", "b.example" },
		    { "outbound", "c.example", "4242" } } },
		{ "--json routes", .form = FORM_JSON_ARRAY, .has = {
		    "\"kind\":\"component\",\"domain\":\"muc.a.example\","
		    "\"remote\":\"\",\"slot\":1,\"pid\":4343",
		    "\"kind\":\"outbound\",\"domain\":\"a.example\","
		    "\"remote\":\"b.example\"" } },
	};

	expect_all(dir, e, ARRAY_SIZE(e));
}

static void
test_queue(void)
{
	static const struct expect e[] = {
		{ "queue", .starts = "LOCAL", .lines = 3, .rows = {
		    { "REMOTE", "DEPTH", "BYTES" },
		    { "OLDEST", "AGE", NULL },
		    { "b.example", "  3  ", " 30 " },
		    { "c.example", "  1  ", "  5  " } } },
		{ "--json queue", .form = FORM_JSON_ARRAY, .has = {
		    "\"local\":\"a.example\",\"remote\":\"b.example\","
		    "\"depth\":3,\"bytes\":30" } },
		{ "queue a.example b.example", .starts = "SEQ", .lines = 4,
		    .rows = { { "QUEUED", "AGE", "SIZE" } } },
		{ "--json queue a.example b.example", .form = FORM_JSON_ARRAY,
		    .has = { "{\"seq\":1,\"queued\":", "{\"seq\":3,\"queued\":",
		    "\"size\":10}" } },
		/* a pair with nothing queued: the header only */
		{ "queue x.example y.example", .lines = 1 },
		{ "--json queue x.example y.example", .exact = "[]\n" },
	};

	expect_all(dir, e, ARRAY_SIZE(e));
}

/* One row per counter (the 14 the workers record, then others), a column
 * per worker and the total; the Prometheus form leaves out a name that
 * cannot be a metric name. */
static void
test_stats(void)
{
	static const struct expect e[] = {
		{ "stats", .lines = 16, .fields = {
		    "COUNTER MASTER W0 W1 TOTAL",
		    "streams_in 1 10 5 16",
		    "dialback_valid 0 2 0 2",
		    "x-legacy 0 0 4 4" }, .rows = { { "components", " 0", NULL },
		    { "bytes_out", NULL, NULL } } },
		{ "--json stats", .form = FORM_JSON_OBJECT, .starts =
		    "{\n\"workers\":{\n\"master\":{\"streams_in\":1,",
		    .has = { "\n\"0\":{\"streams_in\":10,\"streams_out\":0,",
		    "\"dialback_valid\":2,",
		    "\n\"1\":{\"streams_in\":5,",
		    "\n\"total\":{\"streams_in\":16,",
		    "\"components\":0," },
		    .ends = ",\"x-legacy\":4}\n}\n" },
		{ "stats --prometheus", .form = FORM_PROMETHEUS,
		    .lines = 14 * 5 + 1, .starts =
		    "# HELP dialbackd_streams_in_total Inbound server-to-server "
		    "streams accepted.\n"
		    "# TYPE dialbackd_streams_in_total counter\n"
		    "dialbackd_streams_in_total{worker=\"master\"} 1\n"
		    "dialbackd_streams_in_total{worker=\"0\"} 10\n"
		    "dialbackd_streams_in_total{worker=\"1\"} 5\n"
		    "# HELP dialbackd_streams_out_total ",
		    .has = { "\ndialbackd_dialback_valid_total{worker=\"0\"} 2\n",
		    "\n# TYPE dialbackd_bytes_out_total counter\n",
		    "\ndialbackd_components_total{worker=\"1\"} 0\n" },
		    .ends = "\ndialbackd_components_total{worker=\"1\"} 0\n"
		    "# EOF\n", .lacks = { "legacy" }, .err = "\"x-legacy\"" },
		{ "stats --prometheus --json", .status = 2 },
		{ "--json stats --prometheus", .status = 2 },
	};

	expect_all(dir, e, ARRAY_SIZE(e));
}

/* A store whose workers have counted nothing yet. */
static void
test_stats_empty(void)
{
	static const struct expect e[] = {
		{ "stats", .lines = 15, .fields = { "COUNTER TOTAL",
		    "streams_in 0", "components 0" } },
		{ "--json stats", .form = FORM_JSON_OBJECT,
		    .starts = "{\n\"workers\":{},\n\"total\":{\"streams_in\":0," },
		{ "stats --prometheus", .form = FORM_PROMETHEUS, .lines = 29,
		    .ends = "# TYPE dialbackd_components_total counter\n# EOF\n" },
	};
	char d[4200], e2[512];
	struct store *s2;

	snprintf(d, sizeof(d), "%s/empty", test_tmpdir());
	s2 = store_open(d, 1 << 20, STORE_NOSYNC, 0, e2, sizeof(e2));
	CU_ASSERT_PTR_NOT_NULL_FATAL(s2);
	expect_all(d, e, ARRAY_SIZE(e));
	store_close(s2);
}

static void
test_dump(void)
{
	static const struct expect e[] = {
		{ "dump", .starts = "dialbackd-store-dump 1\n", .ends = "\nend\n",
		    .rows = {
		    { "keys originating=\"a.example\"", "key=hidden", NULL },
		    { "queue local=\"a.example\"", "data=\"<iq/>\"", NULL },
		    { "stats name=\"x-legacy\" slot=1 value=4", NULL, NULL } } },
	};

	expect_all(dir, e, ARRAY_SIZE(e));
}

/* This process holds the store open and has read it: it holds a slot. */
static void
test_readers(void)
{
	char pid[32], want[32], e[512];
	const struct expect live = { "readers", .starts = "PID", .rows = {
	    { "THREAD", "TXNID", "STATUS" }, { pid, "live", NULL } } };
	const struct expect dead[] = {
		{ "readers", .rows = { { want, "stale", NULL } } },
		{ "--json readers", .form = FORM_JSON_ARRAY,
		    .has = { "\"status\":\"stale\"" } },
		{ "readers --check", .exact = "cleared 1 stale reader slot\n" },
		{ "readers", .lacks = { want } },
		{ "--json readers --check", .exact = "[\n{\"cleared\":0}\n]\n" },
	};
	int fds[2], status;
	size_t depth;
	pid_t child;
	char c;

	snprintf(pid, sizeof(pid), "%ld", (long)getpid());
	CU_ASSERT_EQUAL(store_queue_depth(st, "a.example", "b.example", &depth),
	    STORE_OK);
	expect_in(dir, &live);

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
	expect_all(dir, dead, ARRAY_SIZE(dead));
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
	static const struct expect e[] = {
		{ "purge", .exact = "purged 1 expired key\n" },
		{ "keys", .rows = { { "b.example", NULL, NULL } },
		    .lacks = { "c.example" } },
		{ "--json purge", .exact = "[\n{\"purged\":0}\n]\n" },
	};

	expect_all(dir, e, ARRAY_SIZE(e));
}

static void
test_drop(void)
{
	static const struct expect e[] = {
		{ "drop a.example b.example",
		    .exact = "dropped 3 queued stanzas for a.example -> b.example\n" },
		{ "drop a.example c.example --json",
		    .exact = "[\n{\"dropped\":1}\n]\n" },
		{ "drop a.example c.example",
		    .exact = "dropped 0 queued stanzas for a.example -> c.example\n" },
	};
	size_t depth = 99;

	expect_in(dir, &e[0]);
	CU_ASSERT_EQUAL(store_queue_depth(st, "a.example", "b.example", &depth),
	    STORE_OK);
	CU_ASSERT_EQUAL(depth, 0);
	CU_ASSERT_EQUAL(store_queue_depth(st, "a.example", "c.example", &depth),
	    STORE_OK);
	CU_ASSERT_EQUAL(depth, 1);
	expect_all(dir, e + 1, ARRAY_SIZE(e) - 1);
	CU_ASSERT_EQUAL(store_queue_depth(st, "a.example", "c.example", &depth),
	    STORE_OK);
	CU_ASSERT_EQUAL(depth, 0);
}

static void
test_flush(void)
{
	static const struct expect e[] = {
		{ "flush outbound a.example b.example", .starts = "removed "
		    "outbound route a.example -> b.example (held by worker 0, "
		    "pid 4242, since ", .lines = 1 },
		/* again: nothing to remove */
		{ "flush outbound a.example b.example", .status = 1,
		    .exact = "", .err = "no outbound route a.example -> b.example" },
		{ "--json flush component muc.a.example", .form = FORM_JSON_ARRAY,
		    .has = { "\"kind\":\"component\",\"domain\":\"muc.a.example\"" } },
		/* wrong shapes */
		{ "flush outbound a.example", .status = 2, .exact = "" },
		{ "flush component a.example b.example", .status = 2, .exact = "" },
		{ "flush bogus a.example", .status = 2, .exact = "" },
	};
	struct store_route r;

	expect_all(dir, e, ARRAY_SIZE(e));
	CU_ASSERT_EQUAL(store_route_get(st, ROUTE_OUTBOUND, "a.example",
	    "b.example", &r), STORE_NOTFOUND);
	CU_ASSERT_EQUAL(store_route_get(st, ROUTE_COMPONENT, "muc.a.example",
	    NULL, &r), STORE_NOTFOUND);
}

/* ---- errors ---------------------------------------------------------------- */

static void
test_usage(void)
{
	static const char *const bad[] = {
		"", "bogus", "drop a.example", "keys extra", "queue a.example",
		"--bogus keys", "dump --json", "keys --check",
		"flush outbound a b c d", "keys --prometheus",
		"readers --prometheus", "stats --check",
	};
	struct expect e;
	char *out, *err;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		memset(&e, 0, sizeof(e));
		e.args = bad[i];
		e.status = 2;
		e.exact = "";
		expect_in(dir, &e);
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
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "--prometheus"));
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

	if ((s = CU_add_suite("checkers", NULL, NULL)) == NULL)
		return CU_get_error();
	TEST_ADD(s, test_json_checker);
	TEST_ADD(s, test_prom_checker);
	if ((s = CU_add_suite("dbtool", suite_init, suite_clean)) == NULL)
		return CU_get_error();
	TEST_ADD(s, test_keys);
	TEST_ADD(s, test_pairs);
	TEST_ADD(s, test_routes);
	TEST_ADD(s, test_queue);
	TEST_ADD(s, test_stats);
	TEST_ADD(s, test_stats_empty);
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
