/* log.h - leveled logging to stderr, syslog or a file; one event per line. */
#ifndef DIALBACKD_LOG_H
#define DIALBACKD_LOG_H

#include <stdarg.h>

enum log_level {
	LOG_LVL_ERR = 0,	/* the daemon or a subsystem cannot go on */
	LOG_LVL_WARN,		/* something failed, service continues */
	LOG_LVL_NOTICE,		/* normal but significant: start, stop, reload */
	LOG_LVL_INFO,		/* one line per stream / dialback event */
	LOG_LVL_DEBUG,		/* protocol detail (stream XML with keys masked) */
};

#define LOG_PRINTF(f, a) __attribute__((format(printf, f, a)))

/* target: "stderr", "syslog" or an absolute file path. 0 on success. */
int log_open(const char *target, enum log_level level);
/* Reopen a file target (SIGUSR1, after logrotate). 0 on success. */
int log_reopen(void);
void log_close(void);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* "master", "worker 3", "dbtool": prefixed to every line. */
void log_set_procname(const char *name);
/* Parses "error|warning|notice|info|debug"; 0 on success. */
int log_level_parse(const char *s, enum log_level *out);
/* "error", "warning", ... ("unknown" out of range). */
const char *log_level_name(enum log_level level);
int log_enabled(enum log_level level);

void log_msg(enum log_level level, const char *fmt, ...) LOG_PRINTF(2, 3);
void log_vmsg(enum log_level level, const char *fmt, va_list ap) LOG_PRINTF(2, 0);
#define log_err(...)	log_msg(LOG_LVL_ERR, __VA_ARGS__)
#define log_warn(...)	log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_notice(...)	log_msg(LOG_LVL_NOTICE, __VA_ARGS__)
#define log_info(...)	log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...)	do { if (log_enabled(LOG_LVL_DEBUG)) log_msg(LOG_LVL_DEBUG, __VA_ARGS__); } while (0)

/* Broken invariant: log (fatal with ": strerror(errno)") and exit(1). */
void fatal(const char *fmt, ...) LOG_PRINTF(1, 2) __attribute__((noreturn));
void fatalx(const char *fmt, ...) LOG_PRINTF(1, 2) __attribute__((noreturn));

#endif
