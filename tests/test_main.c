/* test_main.c - main() for every CUnit test program. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "log.h"
#include "test_main.h"

static char tmpdir[4096];

const char *
test_tmpdir(void)
{
	char base[2048];

	if (tmpdir[0] != '\0')
		return tmpdir;
	if ((size_t)snprintf(base, sizeof(base), "%s/tests/tmp", TOP_BUILDDIR) >= sizeof(base)) {
		fprintf(stderr, "build directory path too long\n");
		exit(2);
	}
	if (mkdir(base, 0700) == -1 && errno != EEXIST) {
		perror(base);
		exit(2);
	}
	snprintf(tmpdir, sizeof(tmpdir), "%s/run.XXXXXX", base);
	if (mkdtemp(tmpdir) == NULL) {
		perror(tmpdir);
		exit(2);
	}
	return tmpdir;
}

char *
test_write_file(const char *dir, const char *name, const char *text)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *path = malloc(n);
	FILE *f;

	if (path == NULL)
		abort();
	snprintf(path, n, "%s/%s", dir, name);
	if ((f = fopen(path, "w")) == NULL || fputs(text, f) == EOF || fclose(f) != 0) {
		perror(path);
		exit(2);
	}
	return path;
}

int
main(void)
{
	unsigned failures;
	char cmd[8300];

	if (log_open("stderr", LOG_LVL_WARN) != 0)
		return 2;
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 2;
	if (test_register() != CUE_SUCCESS) {
		fprintf(stderr, "test registration failed: %s\n", CU_get_error_msg());
		CU_cleanup_registry();
		return 2;
	}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failures = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
	CU_cleanup_registry();
	if (failures == 0 && tmpdir[0] != '\0') {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", tmpdir);
	}
	return failures == 0 ? 0 : 1;
}
