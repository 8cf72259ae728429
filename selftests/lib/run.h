/* SPDX-License-Identifier: MIT */
/*
 * run.h: running the ckpt binary from a test and checking its JSON output. Plain libc, no
 * harness: each call reports failure in its return value or result, the test asserts.
 */
#ifndef SELFTESTS_RUN_H
#define SELFTESTS_RUN_H

#include <stdbool.h>
#include <stddef.h>

#define RUN_OUT_MAX	(1u << 20)	/* bytes of stdout / stderr kept per run */
#define RUN_MAX_ARGS	14		/* arguments after the program name */

/*
 * The ckpt binary: $CKPT if set and not empty, else ../../ckpt relative to the directory of
 * the running test binary (/proc/self/exe). Stores its canonical path in buf and returns
 * true if it exists and is executable; false otherwise, or if size < PATH_MAX.
 */
bool run_find_ckpt(char *buf, size_t size);

/* What one run of ckpt left behind. */
struct run_result {
	int status;		/* exit code, or -1 (not run, or killed by a signal) */
	char *out, *err;	/* stdout and stderr, NUL-terminated; NULL if not run */
};

/*
 * Runs ckpt (a path, not searched in $PATH) with args, a NULL-terminated list of at most
 * RUN_MAX_ARGS (the rest are dropped), and waits for it. stdout and stderr go to memfds
 * and are read back into r->out and r->err, the first RUN_OUT_MAX bytes of each; r->out
 * and r->err are NULL (and status -1) if the memfds cannot be made. Free with
 * run_result_free().
 */
void run_ckpt(struct run_result *r, const char *ckpt, const char *const *args);

/* Frees r->out and r->err. */
void run_result_free(struct run_result *r);

/*
 * True if text is exactly one JSON value (objects and arrays nested at most 32 deep;
 * integers only, no fraction or exponent), with only white space around it.
 */
bool run_json_valid(const char *text);

#endif /* SELFTESTS_RUN_H */
