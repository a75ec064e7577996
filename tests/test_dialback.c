/* test_dialback.c - XEP-0185/XEP-0220 key vectors, the XEP-0114 handshake
 * vector, and the secret file. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dialback.h"
#include "secret.h"
#include "test_main.h"

static void
test_secret_digest(void)
{
	char d[DIALBACK_SECRET_HEX + 1];

	CU_ASSERT_EQUAL(dialback_secret_digest("s3cr3tf0rd14lb4ck", 17, d), 0);
	CU_ASSERT_STRING_EQUAL(d, "a7136eb1f46c9ef18c5e78c36ca257067c69b3d518285f0b18a96c33beae9acc");
	CU_ASSERT_EQUAL(dialback_secret_digest("d14lb4ck43v3r", 13, d), 0);
	CU_ASSERT_STRING_EQUAL(d, "d66b79a6167d8b027a32169eb73edf390f10921f41b9905536d821d9cbf104de");
}

/* XEP-0185 §3 worked example. */
static void
test_xep0185_vector(void)
{
	char d[DIALBACK_SECRET_HEX + 1], k[DIALBACK_KEY_HEX + 1];

	CU_ASSERT_EQUAL_FATAL(dialback_secret_digest("s3cr3tf0rd14lb4ck", 17, d), 0);
	CU_ASSERT_EQUAL(dialback_key(d, "xmpp.example.com", "example.org", "D60000229F", k), 0);
	CU_ASSERT_STRING_EQUAL(k, "37c69b1cf07a3f67c04a5ef5902fa5114f2c76fe4a2686482ba5b89323075643");
}

/* XEP-0220 §2 examples: both directions. */
static void
test_xep0220_vectors(void)
{
	char d[DIALBACK_SECRET_HEX + 1], k[DIALBACK_KEY_HEX + 1];

	CU_ASSERT_EQUAL_FATAL(dialback_secret_digest("s3cr3tf0rd14lb4ck", 17, d), 0);
	CU_ASSERT_EQUAL(dialback_key(d, "montague.example", "capulet.example", "D60000229F", k), 0);
	CU_ASSERT_STRING_EQUAL(k, "b4835385f37fe2895af6c196b59097b16862406db80559900d96bf6fa7d23df3");

	CU_ASSERT_EQUAL_FATAL(dialback_secret_digest("d14lb4ck43v3r", 13, d), 0);
	CU_ASSERT_EQUAL(dialback_key(d, "capulet.example", "montague.example", "417GAF25", k), 0);
	CU_ASSERT_STRING_EQUAL(k, "225cc5aa6a071133249d25fef42ae516fc7a86c523aa1c6980a7f73e784c972d");
}

/* Swapping the domains or the id must change the key (the jabberd2 flaw). */
static void
test_key_binds_every_input(void)
{
	char d[DIALBACK_SECRET_HEX + 1], a[DIALBACK_KEY_HEX + 1], b[DIALBACK_KEY_HEX + 1];

	CU_ASSERT_EQUAL_FATAL(dialback_secret_digest("0123456789abcdef", 16, d), 0);
	CU_ASSERT_EQUAL(dialback_key(d, "a.test", "b.test", "id1", a), 0);
	CU_ASSERT_EQUAL(dialback_key(d, "b.test", "a.test", "id1", b), 0);
	CU_ASSERT_STRING_NOT_EQUAL(a, b);
	CU_ASSERT_EQUAL(dialback_key(d, "a.test", "c.test", "id1", b), 0);
	CU_ASSERT_STRING_NOT_EQUAL(a, b);
	CU_ASSERT_EQUAL(dialback_key(d, "a.test", "b.test", "id2", b), 0);
	CU_ASSERT_STRING_NOT_EQUAL(a, b);
	/* empty inputs are refused, not hashed */
	CU_ASSERT_EQUAL(dialback_key(d, "", "b.test", "id1", b), -1);
	CU_ASSERT_EQUAL(dialback_key(d, "a.test", "b.test", "", b), -1);
}

static void
test_key_equal(void)
{
	const char *k = "37c69b1cf07a3f67c04a5ef5902fa5114f2c76fe4a2686482ba5b89323075643";

	CU_ASSERT_TRUE(dialback_key_equal(k, 64, k, 64));
	CU_ASSERT_FALSE(dialback_key_equal(k, 64, "37c69b1c", 8));
	CU_ASSERT_FALSE(dialback_key_equal(k, 64,
	    "37c69b1cf07a3f67c04a5ef5902fa5114f2c76fe4a2686482ba5b89323075644", 64));
	CU_ASSERT_FALSE(dialback_key_equal("", 0, "", 0));
	/* 40-hex keys exist in the wild: they compare like any other text */
	CU_ASSERT_TRUE(dialback_key_equal("aaee83c26aeeafcbabeabfcbcd50df997e0a2a1e", 40,
	    "aaee83c26aeeafcbabeabfcbcd50df997e0a2a1e", 40));
}

static void
test_trim(void)
{
	const char *t = "\n  abc \t\r\n";
	size_t n = strlen(t);

	dialback_trim(&t, &n);
	CU_ASSERT_EQUAL(n, 3);
	CU_ASSERT_EQUAL(strncmp(t, "abc", 3), 0);
	t = " \n ";
	n = 3;
	dialback_trim(&t, &n);
	CU_ASSERT_EQUAL(n, 0);
}

static void
test_stream_id(void)
{
	char a[STREAM_ID_HEX + 1], b[STREAM_ID_HEX + 1];

	CU_ASSERT_EQUAL(dialback_stream_id(a), 0);
	CU_ASSERT_EQUAL(dialback_stream_id(b), 0);
	CU_ASSERT_EQUAL(strlen(a), 32);
	CU_ASSERT_STRING_NOT_EQUAL(a, b);
}

/* XEP-0114 §3 example: stream id 3BF96D32, secret "test". */
static void
test_handshake_vector(void)
{
	char h[HANDSHAKE_HEX + 1];
	const char *want = "aaee83c26aeeafcbabeabfcbcd50df997e0a2a1e";

	CU_ASSERT_EQUAL(component_handshake_digest("3BF96D32", "test", h), 0);
	CU_ASSERT_STRING_EQUAL(h, want);
	CU_ASSERT_TRUE(component_handshake_check("3BF96D32", "test", want, 40));
	CU_ASSERT_TRUE(component_handshake_check("3BF96D32", "test",
	    "AAEE83C26AEEAFCBABEABFCBCD50DF997E0A2A1E", 40));
	CU_ASSERT_TRUE(component_handshake_check("3BF96D32", "test", " aaee83c26aeeafcbabeabfcbcd50df997e0a2a1e\n", 42));
	CU_ASSERT_FALSE(component_handshake_check("3BF96D32", "test2", want, 40));
	CU_ASSERT_FALSE(component_handshake_check("3BF96D33", "test", want, 40));
	CU_ASSERT_FALSE(component_handshake_check("3BF96D32", "test", want, 39));
	CU_ASSERT_FALSE(component_handshake_check("3BF96D32", "test", "", 0));
}

static void
test_secret_file(void)
{
	char d1[DIALBACK_SECRET_HEX + 1], d2[DIALBACK_SECRET_HEX + 1], err[512];
	char path[4200];
	struct stat st;
	char *p;

	snprintf(path, sizeof(path), "%s/secret", test_tmpdir());
	unlink(path);
	/* absent and not allowed to create */
	CU_ASSERT_EQUAL(secret_load(path, false, (uid_t)-1, d1, err, sizeof(err)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, path));
	/* created 0600, then read back the same */
	CU_ASSERT_EQUAL_FATAL(secret_load(path, true, (uid_t)-1, d1, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(stat(path, &st), 0);
	CU_ASSERT_EQUAL(st.st_mode & 0777, 0600);
	CU_ASSERT_EQUAL(secret_load(path, true, (uid_t)-1, d2, err, sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(d1, d2);
	/* wrong owner */
	CU_ASSERT_EQUAL(secret_load(path, false, getuid() + 1, d2, err, sizeof(err)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "owned by"));
	/* group-readable is refused */
	CU_ASSERT_EQUAL(chmod(path, 0640), 0);
	CU_ASSERT_EQUAL(secret_load(path, false, (uid_t)-1, d2, err, sizeof(err)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "0600"));
	/* a known secret gives the known digest; too short is refused */
	p = test_write_file(test_tmpdir(), "secret2", "s3cr3tf0rd14lb4ck\n");
	CU_ASSERT_EQUAL(chmod(p, 0600), 0);
	CU_ASSERT_EQUAL(secret_load(p, false, (uid_t)-1, d2, err, sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(d2, "a7136eb1f46c9ef18c5e78c36ca257067c69b3d518285f0b18a96c33beae9acc");
	free(p);
	p = test_write_file(test_tmpdir(), "secret3", "short\n");
	CU_ASSERT_EQUAL(chmod(p, 0600), 0);
	CU_ASSERT_EQUAL(secret_load(p, false, (uid_t)-1, d2, err, sizeof(err)), -1);
	free(p);
}

int
test_register(void)
{
	CU_pSuite s = CU_add_suite("dialback", NULL, NULL);

	if (s == NULL)
		return CU_get_error();
	TEST_ADD(s, test_secret_digest);
	TEST_ADD(s, test_xep0185_vector);
	TEST_ADD(s, test_xep0220_vectors);
	TEST_ADD(s, test_key_binds_every_input);
	TEST_ADD(s, test_key_equal);
	TEST_ADD(s, test_trim);
	TEST_ADD(s, test_stream_id);
	TEST_ADD(s, test_handshake_vector);
	TEST_ADD(s, test_secret_file);
	return CUE_SUCCESS;
}
