/* test_main.h - shared scaffolding for the CUnit test programs. Each
 * tests/test_<module>.c defines test_register() adding its suites; the
 * common main() runs them and exits non-zero on any failure. */
#ifndef DIALBACKD_TEST_MAIN_H
#define DIALBACKD_TEST_MAIN_H

#include <CUnit/CUnit.h>

/* Defined by each test program: add suites, return 0 or a CUnit error. */
int test_register(void);

/* A fresh private directory under tests/tmp of the build tree (removed at
 * exit when every test passed). Returns a static path. */
const char *test_tmpdir(void);
/* Writes text to dir/name; returns the malloc'd path (free it). */
char *test_write_file(const char *dir, const char *name, const char *text);

/* Adds a test, aborting the program if CUnit cannot. */
#define TEST_ADD(suite, fn) do { \
	if (CU_add_test((suite), #fn, (fn)) == NULL) return CU_get_error(); \
} while (0)

#endif
