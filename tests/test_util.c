/* test_util.c - parsing helpers and the bounded buffer. */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_main.h"
#include "pairindex.h"
#include "util.h"

static void
test_parse_size(void)
{
	uint64_t v;

	CU_ASSERT(util_parse_size("4096", &v) == 0 && v == 4096);
	CU_ASSERT(util_parse_size("64M", &v) == 0 && v == 64ULL << 20);
	CU_ASSERT(util_parse_size("1g", &v) == 0 && v == 1ULL << 30);
	CU_ASSERT(util_parse_size("512KB", &v) == 0 && v == 512ULL << 10);
	CU_ASSERT(util_parse_size("", &v) == -1);
	CU_ASSERT(util_parse_size("-1", &v) == -1);
	CU_ASSERT(util_parse_size("12X", &v) == -1);
	CU_ASSERT(util_parse_size("99999999999999999999", &v) == -1);
	CU_ASSERT(util_parse_size("17179869184G", &v) == -1);
}

static void
test_parse_duration(void)
{
	unsigned v;

	CU_ASSERT(util_parse_duration("30", &v) == 0 && v == 30);
	CU_ASSERT(util_parse_duration("30s", &v) == 0 && v == 30);
	CU_ASSERT(util_parse_duration("5m", &v) == 0 && v == 300);
	CU_ASSERT(util_parse_duration("2h", &v) == 0 && v == 7200);
	CU_ASSERT(util_parse_duration("1d", &v) == 0 && v == 86400);
	CU_ASSERT(util_parse_duration("abc", &v) == -1);
	CU_ASSERT(util_parse_duration("5x", &v) == -1);
	CU_ASSERT(util_parse_duration("5 m", &v) == -1);
}

static void
test_parse_listen(void)
{
	struct sockaddr_storage ss;
	socklen_t len;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	char text[80];

	CU_ASSERT_EQUAL_FATAL(util_parse_listen("127.0.0.1:5269", 1, &ss, &len), 0);
	CU_ASSERT_EQUAL(ss.ss_family, AF_INET);
	CU_ASSERT_EQUAL(ntohs(sin->sin_port), 5269);
	util_format_addr((struct sockaddr *)&ss, text, sizeof(text));
	CU_ASSERT_STRING_EQUAL(text, "127.0.0.1:5269");

	CU_ASSERT_EQUAL_FATAL(util_parse_listen("[::1]:5270", 1, &ss, &len), 0);
	CU_ASSERT_EQUAL(ss.ss_family, AF_INET6);
	CU_ASSERT_EQUAL(ntohs(sin6->sin6_port), 5270);
	util_format_addr((struct sockaddr *)&ss, text, sizeof(text));
	CU_ASSERT_STRING_EQUAL(text, "[::1]:5270");

	CU_ASSERT_EQUAL(util_parse_listen("*:5269", 1, &ss, &len), 0);
	CU_ASSERT_EQUAL(ss.ss_family, AF_INET6);
	CU_ASSERT_EQUAL(util_parse_listen("5347", 1, &ss, &len), 0);
	CU_ASSERT_EQUAL(ntohs(sin6->sin6_port), 5347);
	CU_ASSERT_EQUAL(util_parse_listen("127.0.0.1", 5347, &ss, &len), 0);
	CU_ASSERT_EQUAL(ntohs(sin->sin_port), 5347);

	CU_ASSERT_EQUAL(util_parse_listen("::1:5269", 1, &ss, &len), -1);
	CU_ASSERT_EQUAL(util_parse_listen("example.org:5269", 1, &ss, &len), -1);
	CU_ASSERT_EQUAL(util_parse_listen("127.0.0.1:70000", 1, &ss, &len), -1);
	CU_ASSERT_EQUAL(util_parse_listen("[::1", 1, &ss, &len), -1);
}

static void
test_parse_hostport(void)
{
	char host[64];
	uint16_t port;

	CU_ASSERT(util_parse_hostport("xmpp.example.org:5270", 5269, host, sizeof(host), &port) == 0);
	CU_ASSERT_STRING_EQUAL(host, "xmpp.example.org");
	CU_ASSERT_EQUAL(port, 5270);
	CU_ASSERT(util_parse_hostport("xmpp.example.org", 5269, host, sizeof(host), &port) == 0);
	CU_ASSERT_EQUAL(port, 5269);
	CU_ASSERT(util_parse_hostport("[2001:db8::1]:5269", 1, host, sizeof(host), &port) == 0);
	CU_ASSERT_STRING_EQUAL(host, "2001:db8::1");
	CU_ASSERT(util_parse_hostport(":5269", 1, host, sizeof(host), &port) == -1);
	CU_ASSERT(util_parse_hostport("a:b", 1, host, sizeof(host), &port) == -1);
	CU_ASSERT(util_parse_hostport("a-very-long-name-that-does-not-fit-in-the-buffer-of-sixty-four-bytes.example", 1,
	    host, sizeof(host), &port) == -1);
}

static void
test_strbuf(void)
{
	struct strbuf sb;
	char *p;
	size_t len;
	int i;

	strbuf_init(&sb, 10);
	CU_ASSERT_EQUAL(strbuf_appends(&sb, "hello"), 0);
	CU_ASSERT_EQUAL(strbuf_printf(&sb, "%d", 1234), 0);
	CU_ASSERT_STRING_EQUAL(sb.data, "hello1234");
	/* over the limit: refused, contents unchanged */
	CU_ASSERT_EQUAL(strbuf_appends(&sb, "xy"), -1);
	CU_ASSERT_EQUAL(strbuf_printf(&sb, "%s", "xy"), -1);
	CU_ASSERT_STRING_EQUAL(sb.data, "hello1234");
	CU_ASSERT_EQUAL(strbuf_appends(&sb, "!"), 0);
	p = strbuf_steal(&sb, &len);
	CU_ASSERT_EQUAL(len, 10);
	CU_ASSERT_STRING_EQUAL(p, "hello1234!");
	CU_ASSERT_PTR_NULL(sb.data);
	free(p);

	strbuf_init(&sb, 0);
	for (i = 0; i < 10000; i++)
		if (strbuf_append(&sb, "abc", 3) != 0)
			break;
	CU_ASSERT_EQUAL(sb.len, 30000);
	strbuf_free(&sb);
}

static void
test_domains(void)
{
	char longlabel[80];

	CU_ASSERT_TRUE(util_domain_valid("example.org"));
	CU_ASSERT_TRUE(util_domain_valid("localhost"));
	CU_ASSERT_TRUE(util_domain_valid("echo.p1.test"));
	CU_ASSERT_FALSE(util_domain_valid(""));
	CU_ASSERT_FALSE(util_domain_valid("example.org."));
	CU_ASSERT_FALSE(util_domain_valid(".org"));
	CU_ASSERT_FALSE(util_domain_valid("a..b"));
	CU_ASSERT_FALSE(util_domain_valid("user@example.org"));
	CU_ASSERT_FALSE(util_domain_valid("example.org/res"));
	CU_ASSERT_FALSE(util_domain_valid("exa mple.org"));
	memset(longlabel, 'a', 70);
	longlabel[70] = '\0';
	CU_ASSERT_FALSE(util_domain_valid(longlabel));
	CU_ASSERT_TRUE(util_domain_equal("Example.ORG", "example.org"));
	CU_ASSERT_FALSE(util_domain_equal("example.org", "example.net"));
	/* ASCII only folds; a prefix is not equal; the order is the folded one */
	CU_ASSERT_FALSE(util_domain_equal("example.org", "example.or"));
	CU_ASSERT_FALSE(util_domain_equal("", "a"));
	CU_ASSERT_TRUE(util_domain_equal("", ""));
	CU_ASSERT_FALSE(util_domain_equal("\xc3\x89.test", "\xc3\xa9.test"));
	CU_ASSERT_FALSE(util_domain_equal("a[.test", "a{.test"));	/* '[' + 32 is '{' */
	CU_ASSERT(util_domain_cmp("B.test", "a.test") > 0);
	CU_ASSERT(util_domain_cmp("a.test", "B.test") < 0);
	CU_ASSERT(util_domain_cmp("Z", "[") > 0);	/* 'z' after '[' once folded */
	CU_ASSERT_EQUAL(util_domain_cmp("MiXeD.Test", "mixed.TEST"), 0);
}

static void
test_hex_random(void)
{
	unsigned char raw[4] = { 0x00, 0x9f, 0xa0, 0xff };
	unsigned char r1[16], r2[16];
	char out[9];

	util_hex(raw, sizeof(raw), out);
	CU_ASSERT_STRING_EQUAL(out, "009fa0ff");
	CU_ASSERT_EQUAL(util_random_bytes(r1, sizeof(r1)), 0);
	CU_ASSERT_EQUAL(util_random_bytes(r2, sizeof(r2)), 0);
	CU_ASSERT_NOT_EQUAL(memcmp(r1, r2, sizeof(r1)), 0);
}

/* Domains equal without case hash alike, under any seed; others differ. */
static void
test_domain_hash(void)
{
	uint64_t seeds[] = { 0, 1, 0xcbf29ce484222325ULL, 0x0123456789abcdefULL };
	size_t i;

	for (i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
		uint64_t s = seeds[i];
		CU_ASSERT_EQUAL(util_domain_hash("Example.COM", s), util_domain_hash("example.com", s));
		CU_ASSERT_EQUAL(util_domain_hash("", s), s);
		CU_ASSERT_NOT_EQUAL(util_domain_hash("example.com", s), util_domain_hash("example.org", s));
		CU_ASSERT_NOT_EQUAL(util_domain_hash("ab", s), util_domain_hash("ba", s));
		/* only ASCII folds, as strcasecmp in the C locale */
		CU_ASSERT_NOT_EQUAL(util_domain_hash("\xc3\x89", s), util_domain_hash("\xc3\xa9", s));
	}
	CU_ASSERT_NOT_EQUAL(util_domain_hash("example.com", 1), util_domain_hash("example.com", 2));
}

/* 1000 pairs through several growths: each found (any case), none lost,
 * removal from the middle of a chain, and an empty index after. */
static void
test_pair_index(void)
{
	enum { N = 1000 };
	static struct pair_index_entry e[N];
	static char remote[N][32];
	struct pair_index ix = { 0 };
	char upper[32];
	size_t i, found = 0, gone = 0;

	CU_ASSERT_PTR_NULL(pair_index_find(&ix, "a.test", "b.test"));
	for (i = 0; i < N; i++) {
		snprintf(remote[i], sizeof(remote[i]), "peer%zu.example", i);
		e[i].local = i % 2 ? "one.test" : "two.test";
		e[i].remote = remote[i];
		CU_ASSERT_EQUAL_FATAL(pair_index_add(&ix, &e[i]), 0);
	}
	CU_ASSERT_EQUAL(ix.n, N);
	CU_ASSERT(ix.size >= N);
	for (i = 0; i < N; i++) {
		snprintf(upper, sizeof(upper), "PEER%zu.Example", i);
		found += pair_index_find(&ix, i % 2 ? "ONE.test" : "two.TEST", upper) == &e[i];
		/* the same remote with the other local is another pair */
		gone += pair_index_find(&ix, i % 2 ? "two.test" : "one.test", remote[i]) == NULL;
	}
	CU_ASSERT_EQUAL(found, N);
	CU_ASSERT_EQUAL(gone, N);
	for (i = 0; i < N; i += 3)
		pair_index_remove(&ix, &e[i]);
	for (i = 0, found = 0; i < N; i++)
		found += pair_index_find(&ix, e[i].local, e[i].remote) == (i % 3 ? &e[i] : NULL);
	CU_ASSERT_EQUAL(found, N);
	CU_ASSERT_EQUAL(ix.n, N - (N + 2) / 3);
	pair_index_clear(&ix);
	CU_ASSERT_PTR_NULL(pair_index_find(&ix, e[1].local, e[1].remote));
	CU_ASSERT_EQUAL(ix.n, 0);
}

int
test_register(void)
{
	CU_pSuite s = CU_add_suite("util", NULL, NULL);

	if (s == NULL)
		return CU_get_error();
	TEST_ADD(s, test_parse_size);
	TEST_ADD(s, test_parse_duration);
	TEST_ADD(s, test_parse_listen);
	TEST_ADD(s, test_parse_hostport);
	TEST_ADD(s, test_strbuf);
	TEST_ADD(s, test_domains);
	TEST_ADD(s, test_domain_hash);
	TEST_ADD(s, test_pair_index);
	TEST_ADD(s, test_hex_random);
	return CUE_SUCCESS;
}
