/* log.c - one line per event to stderr, syslog or a file. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

enum log_target { TARGET_STDERR, TARGET_SYSLOG, TARGET_FILE };

static enum log_target target = TARGET_STDERR;
static enum log_level level = LOG_LVL_INFO;
static char file_path[4096];
static int file_fd = -1;
static char procname[32] = "dialbackd";

static const char *const level_names[] = {
	[LOG_LVL_ERR] = "error",
	[LOG_LVL_WARN] = "warning",
	[LOG_LVL_NOTICE] = "notice",
	[LOG_LVL_INFO] = "info",
	[LOG_LVL_DEBUG] = "debug",
};

static const int syslog_prio[] = {
	[LOG_LVL_ERR] = LOG_ERR,
	[LOG_LVL_WARN] = LOG_WARNING,
	[LOG_LVL_NOTICE] = LOG_NOTICE,
	[LOG_LVL_INFO] = LOG_INFO,
	[LOG_LVL_DEBUG] = LOG_DEBUG,
};

static int
open_file(void)
{
	int fd = open(file_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);

	if (fd == -1)
		return -1;
	if (file_fd != -1)
		close(file_fd);
	file_fd = fd;
	return 0;
}

int
log_open(const char *t, enum log_level lvl)
{
	level = lvl;
	if (strcmp(t, "stderr") == 0) {
		target = TARGET_STDERR;
		return 0;
	}
	if (strcmp(t, "syslog") == 0) {
		target = TARGET_SYSLOG;
		openlog("dialbackd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
		return 0;
	}
	if (t[0] != '/' || strlen(t) >= sizeof(file_path)) {
		errno = EINVAL;
		return -1;
	}
	memcpy(file_path, t, strlen(t) + 1);
	if (open_file() == -1)
		return -1;
	target = TARGET_FILE;
	return 0;
}

int
log_reopen(void)
{
	if (target != TARGET_FILE)
		return 0;
	return open_file();
}

void
log_close(void)
{
	if (target == TARGET_SYSLOG)
		closelog();
	if (file_fd != -1) {
		close(file_fd);
		file_fd = -1;
	}
	target = TARGET_STDERR;
}

void
log_set_level(enum log_level lvl)
{
	level = lvl;
}

enum log_level
log_get_level(void)
{
	return level;
}

int
log_enabled(enum log_level lvl)
{
	return lvl <= level;
}

void
log_set_procname(const char *name)
{
	snprintf(procname, sizeof(procname), "%s", name);
}

const char *
log_level_name(enum log_level lvl)
{
	return (size_t)lvl < sizeof(level_names) / sizeof(level_names[0]) ? level_names[lvl] : "unknown";
}

int
log_level_parse(const char *s, enum log_level *out)
{
	size_t i;

	for (i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcasecmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	if (strcasecmp(s, "warn") == 0 || strcasecmp(s, "err") == 0) {
		*out = s[0] == 'w' || s[0] == 'W' ? LOG_LVL_WARN : LOG_LVL_ERR;
		return 0;
	}
	return -1;
}

void
log_vmsg(enum log_level lvl, const char *fmt, va_list ap)
{
	char line[2048];
	char stamp[40];
	int n, off;
	struct timespec ts;
	struct tm tm;
	int saved_errno = errno;

	if (lvl > level)
		return;
	if (target == TARGET_SYSLOG) {
		n = vsnprintf(line, sizeof(line), fmt, ap);
		if (n >= 0)
			syslog(syslog_prio[lvl], "%s: %s", procname, line);
		errno = saved_errno;
		return;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	off = snprintf(line, sizeof(line), "%s.%03ldZ %s[%ld] %s: ", stamp,
	    ts.tv_nsec / 1000000, procname, (long)getpid(), level_names[lvl]);
	if (off < 0 || (size_t)off >= sizeof(line))
		off = 0;
	n = vsnprintf(line + off, sizeof(line) - (size_t)off - 1, fmt, ap);
	if (n < 0)
		n = 0;
	off += n;
	if ((size_t)off > sizeof(line) - 2)
		off = sizeof(line) - 2;	/* truncated: keep one event on one line */
	line[off++] = '\n';
	/* One write() per line keeps lines whole when several processes share
	 * the same file or stderr. */
	if (write(target == TARGET_FILE ? file_fd : STDERR_FILENO, line, (size_t)off) < 0) {
		/* nowhere left to report it */
	}
	errno = saved_errno;
}

void
log_msg(enum log_level lvl, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(lvl, fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	int e = errno;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_err("fatal: %s: %s", msg, strerror(e));
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_err("fatal: %s", msg);
	exit(1);
}
