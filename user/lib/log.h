/* SPDX-License-Identifier: MIT */
#ifndef CKPT_LOG_H
#define CKPT_LOG_H

#include <errno.h>
#include <string.h>

enum log_level {
	LOG_ERR = 1,	/* -v1: errors only */
	LOG_WARN = 2,	/* -v2: the default */
	LOG_INFO = 3,
	LOG_DEBUG = 4,
};

#ifndef LOG_PREFIX
#define LOG_PREFIX ""
#endif

/* Set where messages go: -o FILE opens a file (0600), NULL means stderr. */
int log_init(const char *path, int level);
void log_set_level(int level);
int log_get_level(void);
/* CLOCK_MONOTONIC of log_init in ns: a blob's lines use the same origin. */
unsigned long long log_start_ns(void);
/* The fd log lines go to, for handing to a blob; -1 when none. */
int log_get_fd(void);
/*
 * Log to fd from now on, and nowhere else (a restored task's fd 2 is not
 * ours). Used after fds were moved around.
 */
void log_set_fd(int fd);
void log_fini(void);
void log_printf(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A terminal progress line ("\r..."), shown only when stderr is a tty. */
void log_progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_progress_done(void);

#define pr_err(fmt, ...)   log_printf(LOG_ERR, "Error: " LOG_PREFIX fmt "\n", ##__VA_ARGS__)
#define pr_warn(fmt, ...)  log_printf(LOG_WARN, "Warn: " LOG_PREFIX fmt "\n", ##__VA_ARGS__)
#define pr_info(fmt, ...)  log_printf(LOG_INFO, LOG_PREFIX fmt "\n", ##__VA_ARGS__)
#define pr_debug(fmt, ...) log_printf(LOG_DEBUG, LOG_PREFIX fmt "\n", ##__VA_ARGS__)
/* errno right after the failing call. */
#define pr_perror(fmt, ...) pr_err(fmt ": %s", ##__VA_ARGS__, strerror(errno))
/* A returned negative errno. */
#define pr_errno(err, fmt, ...) pr_err(fmt ": %s", ##__VA_ARGS__, strerror(-(err)))

#endif
