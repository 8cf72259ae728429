/* SPDX-License-Identifier: MIT */
/*
 * The tracking daemon: attach to process trees, write the changelog,
 * serve the control socket until told to stop.
 */
#ifndef CKPT_TRACKD_DAEMON_H
#define CKPT_TRACKD_DAEMON_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct daemon_opts {
	const pid_t *roots;
	size_t nr_roots;
	int dirfd;		/* LOGDIR, open */
	const char *logdir;	/* for messages */
	const char *pidfile;	/* or NULL */
	size_t ring_size;	/* 0: default */
	bool no_dirty;		/* no written-page tracking */
	/*
	 * -d: the parent waits on this pipe; the daemon writes "0" once it
	 * serves, or "1" once it gave up and cleaned up (the errors are in
	 * its log). -1 in the foreground.
	 */
	int ready_fd;
	/*
	 * The lock on LOGDIR, handed over: closed once the log is, before the
	 * answer to `trackd stop` or to the waiting parent, so whoever hears
	 * of the end can start again at once.
	 */
	int lock_fd;
};

/*
 * The roots exist, are processes (not threads) and are given once.
 * 0 or -errno (logged). daemon_run checks again.
 */
int daemon_check_roots(const struct daemon_opts *o);

/*
 * Attach and run until `trackd stop` or SIGTERM/SIGINT/SIGHUP. Returns
 * the exit code: 0 after a clean stop, 1 when attaching or the log failed.
 */
int daemon_run(const struct daemon_opts *o);

#endif
