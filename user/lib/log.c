// SPDX-License-Identifier: MIT
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static int log_fd = STDERR_FILENO;
static int log_level = LOG_WARN;
static struct timespec log_start;
static int progress_shown;
static int log_only_fd;

int log_init(const char *path, int level)
{
	clock_gettime(CLOCK_MONOTONIC, &log_start);
	log_level = level;
	if (!path || !strcmp(path, "-"))
		return 0;
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0) {
		int err = -errno;
		fprintf(stderr, "Error: cannot open log file '%s': %s\n", path, strerror(errno));
		return err;
	}
	log_fd = fd;
	return 0;
}

void log_set_level(int level)
{
	log_level = level;
}

int log_get_level(void)
{
	return log_level;
}

unsigned long long log_start_ns(void)
{
	return log_start.tv_sec * 1000000000ull + log_start.tv_nsec;
}

int log_get_fd(void)
{
	return log_fd;
}

void log_set_fd(int fd)
{
	log_fd = fd;
	log_only_fd = 1;
}

void log_fini(void)
{
	if (log_fd > STDERR_FILENO)
		close(log_fd);
	log_fd = STDERR_FILENO;
}

void log_progress_done(void)
{
	if (progress_shown) {
		(void)!write(STDERR_FILENO, "\n", 1);
		progress_shown = 0;
	}
}

void log_printf(int level, const char *fmt, ...)
{
	char buf[4096];
	struct timespec now;
	va_list ap;
	int saved = errno, n;

	if (level > log_level)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	double t = (now.tv_sec - log_start.tv_sec) + (now.tv_nsec - log_start.tv_nsec) / 1e9;
	n = 0;
	if (log_level >= LOG_INFO || log_fd != STDERR_FILENO)
		n = snprintf(buf, sizeof(buf), "(%9.6f) ", t);
	va_start(ap, fmt);
	n += vsnprintf(buf + n, sizeof(buf) - n, fmt, ap);
	va_end(ap);
	if (n >= (int)sizeof(buf))
		n = sizeof(buf) - 1;
	if (progress_shown && log_fd == STDERR_FILENO && !log_only_fd)
		log_progress_done();
	(void)!write(log_fd, buf, n);
	/* Errors also reach the terminal when the log goes to a file. */
	if (level == LOG_ERR && log_fd != STDERR_FILENO && !log_only_fd) {
		const char *p = buf;
		while (*p && *p != ')')
			p++;
		p = *p ? p + 2 : buf;
		(void)!write(STDERR_FILENO, p, buf + n - p);
	}
	errno = saved;
}

void log_progress(const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	int n;

	if (!isatty(STDERR_FILENO))
		return;
	buf[0] = '\r';
	va_start(ap, fmt);
	n = 1 + vsnprintf(buf + 1, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (n >= (int)sizeof(buf))
		n = sizeof(buf) - 1;
	(void)!write(STDERR_FILENO, buf, n);
	progress_shown = 1;
}
