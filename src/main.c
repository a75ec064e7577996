/* main.c - dialbackd: command line, config check, daemonizing, pidfile. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/crypto.h>

#include "conf.h"
#include "log.h"
#include "master.h"
#include "zone.h"

#define DEFAULT_CONF SYSCONFDIR "/dialbackd/dialbackd.conf"

static void
usage(FILE *out)
{
	fprintf(out,
	    "usage: dialbackd [-c FILE] [-f] [-t] [-v] [-V]\n"
	    "  -c FILE  configuration file (default %s)\n"
	    "  -f       stay in the foreground and log to stderr\n"
	    "  -t       check the configuration and exit (0 valid, 1 not)\n"
	    "  -v       with -t: print the effective configuration; else log at debug level\n"
	    "  -V       print the version and exit\n", DEFAULT_CONF);
}

static int
write_pidfile(const char *path)
{
	char buf[32];
	int fd, n;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd == -1)
		return -1;
	n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (write(fd, buf, (size_t)n) != n) {
		close(fd);
		return -1;
	}
	return close(fd);
}

static int
daemonize(void)
{
	pid_t pid;
	int fd;

	if ((pid = fork()) == -1)
		return -1;
	if (pid > 0)
		_exit(0);
	if (setsid() == -1)
		return -1;
	if ((pid = fork()) == -1)
		return -1;
	if (pid > 0)
		_exit(0);
	if (chdir("/") == -1)
		return -1;
	if ((fd = open("/dev/null", O_RDWR)) == -1)
		return -1;
	dup2(fd, STDIN_FILENO);
	dup2(fd, STDOUT_FILENO);
	dup2(fd, STDERR_FILENO);
	if (fd > STDERR_FILENO)
		close(fd);
	return 0;
}

/* OpenSSL's allocator hooks, for the zone (see main()). */
static void *
ossl_malloc(size_t n, const char *file, int line)
{
	(void)file;
	(void)line;
	return zone_malloc(n);
}

static void *
ossl_realloc(void *p, size_t n, const char *file, int line)
{
	(void)file;
	(void)line;
	return zone_realloc(p, n);
}

static void
ossl_free(void *p, const char *file, int line)
{
	(void)file;
	(void)line;
	zone_free(p);
}

int
main(int argc, char **argv)
{
	const char *path = DEFAULT_CONF;
	bool foreground = false, check = false, verbose = false;
	char err[1024];
	struct conf *conf;
	int ch, rc;

	/* libevent's per-connection structures (bufferevents, events) and
	 * OpenSSL's small per-connection state live as long as their
	 * streams: keep them with the other long-lived objects, away from
	 * the handshakes' large transients (zone.h). Set before either
	 * library allocates anything. */
	event_set_mem_functions(zone_malloc, zone_realloc, zone_free);
	if (CRYPTO_set_mem_functions(ossl_malloc, ossl_realloc, ossl_free) != 1) {
		fprintf(stderr, "dialbackd: cannot set OpenSSL's allocator\n");
		return 1;
	}

	while ((ch = getopt(argc, argv, "c:ftvVh")) != -1) {
		switch (ch) {
		case 'c': path = optarg; break;
		case 'f': foreground = true; break;
		case 't': check = true; break;
		case 'v': verbose = true; break;
		case 'V': printf("dialbackd %s\n", PACKAGE_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if ((conf = conf_load(path, err, sizeof(err))) == NULL) {
		fprintf(stderr, "dialbackd: %s\n", err);
		return 1;
	}
	if (check) {
		if (verbose)
			conf_print(conf, stdout);
		fprintf(stderr, "dialbackd: configuration %s is valid\n", path);
		conf_free(conf);
		return 0;
	}
	if (verbose)
		conf->log_level = LOG_LVL_DEBUG;
	if (log_open(foreground ? "stderr" : conf->log, conf->log_level) == -1) {
		fprintf(stderr, "dialbackd: cannot open log %s: %s\n", conf->log, strerror(errno));
		conf_free(conf);
		return 1;
	}
	umask(077);
	if (!foreground) {
		if (daemonize() == -1) {
			log_err("cannot daemonize: %s", strerror(errno));
			conf_free(conf);
			return 1;
		}
	}
	if (conf->pidfile != NULL && (!foreground || getenv("NOTIFY_SOCKET") == NULL) &&
	    write_pidfile(conf->pidfile) == -1)
		log_warn("cannot write pidfile %s: %s", conf->pidfile, strerror(errno));
	{
		char *pidfile = conf->pidfile != NULL ? strdup(conf->pidfile) : NULL;

		rc = master_run(conf, path);
		if (pidfile != NULL) {
			(void)unlink(pidfile);
			free(pidfile);
		}
	}
	log_close();
	return rc;
}
