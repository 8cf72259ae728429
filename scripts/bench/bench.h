/* SPDX-License-Identifier: MIT */
/*
 * What the bench drivers share: failing, timing, the host's facts, paths next to the driver,
 * running a command, statistics and the BENCH lines.  Nothing here logs; a failure that
 * cannot be reported back ends the driver through bench_die().
 */
#ifndef BENCH_H
#define BENCH_H

#include <stddef.h>
#include <sys/resource.h>
#include <sys/types.h>

/* The driver's name for its messages ("incr-bench"); set first in main(). */
extern const char *bench_prog;
/* Run once by bench_die() before it exits: stops what the driver started.  May be NULL. */
extern void (*bench_on_die)(void);
/* From bench_host_info(); "unknown" until then. */
extern char bench_kernel[65], bench_cpu[128];

/* "PROG: error: ..." on stderr (stdout flushed first), bench_on_die, exit(1). */
void bench_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* CLOCK_MONOTONIC in ms. */
double bench_now_ms(void);

/* The kernel release and the CPU model into bench_kernel and bench_cpu. */
void bench_host_info(void);

/* snprintf into a PATH_MAX buffer; a path that does not fit is fatal. */
void bench_path_fmt(char *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* rel, relative to the directory of the running binary, into a PATH_MAX buffer. */
void bench_self_relative(char *out, const char *rel);

/* Touch and free gib GiB: freed memory goes back to the host, and its first touch is slow. */
void bench_prewarm(long gib);

/*
 * Wait up to timeout_ms for pid (a child, or an orphan we reap) to exit and reap it: 0, or
 * -ETIMEDOUT after killing and reaping it, or another negative errno.  ret_ru may be NULL.
 */
int bench_wait(pid_t pid, int *ret_status, struct rusage *ret_ru, int timeout_ms);

/*
 * Run argv (stdin on /dev/null, no other fd) with stdout and stderr into out, NUL-terminated;
 * killed after timeout_ms.  The exit status, 128 + signal when killed; the wall time from
 * fork to reap into ret_ms unless NULL.
 */
int bench_run(const char *const argv[], char *out, size_t len, int timeout_ms, double *ret_ms);

struct bench_stat {
	double median, min, max;
};

/* Of the n > 0 values of v, which it sorts. */
struct bench_stat bench_stat_of(double *v, int n);

/* The same value for median, min and max: a figure measured once. */
struct bench_stat bench_stat_one(double v);

/* One machine-readable line: "BENCH scenario=... metric=... unit=... median=... ...". */
void bench_line(const char *scenario, const char *metric, const char *unit, struct bench_stat s,
		int runs);

#endif
