/* SPDX-License-Identifier: MIT */
/*
 * incr.h: incremental-dump tests on top of cr.h (trackd + `ckpt dump --since-log
 * [--prev-images]`).
 *
 * The runner starts a trackd daemon on the victim's tree with its log in DIR/<log name>,
 * drives the victim with commands (one at a time: the runner writes it to the FIFO DIR/cmd,
 * the victim answers on the FIFO DIR/ack, except to "v", which means "check yourself and
 * wait for SIGUSR2"), dumps the chain of images DIR/i0, DIR/i1, ... and restores its top.
 * Every trackd and ckpt call leaves DIR/<tag>.out; trackd's -v4 log is DIR/trackd.log.
 */
#ifndef SELFTESTS_INCR_H
#define SELFTESTS_INCR_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "cr.h"

#define INCR_PAGE_SIZE	4096UL
#define INCR_WAIT_MS	5000	/* bound of every wait for the victim or a daemon */

/* CLOCK_MONOTONIC in milliseconds. */
long incr_now_ms(void);
/* A page (INCR_PAGE_SIZE bytes) of the cr_fill() pattern of seed, never all zero. */
void incr_fill_page(void *p, unsigned seed);
/* Reads a line from fd (each byte bounded by ms, unless ms < 0); 0, or -errno (-EPIPE at EOF). */
int incr_read_line(int fd, char *buf, size_t size, int ms);
/*
 * Waits (bounded by INCR_WAIT_MS) for child pid to exit and reaps it; its wait status, or
 * -errno. poll() is not restarted after a signal handler.
 */
int incr_wait_child(pid_t pid);
/* Whether p holds the page incr_fill_page(seed) writes; safe in several threads at once. */
bool incr_page_matches(const void *p, unsigned seed);

/* ---- victim side ---- */

/* Handles one command (not "v"): the reply to send, "ok..." or "err...", into reply. */
typedef void (*incr_victim_cmd_fn)(void *arg, const char *cmd, char *reply, size_t size);

/*
 * Reads commands from DIR/cmd and answers each on DIR/ack with what fn(arg, ...) made of it,
 * until "v": then returns 0. Returns 2 (the victim's set-up failure code) after saying on
 * stderr why it could not read a command.
 */
int incr_victim_serve(incr_victim_cmd_fn fn, void *arg);

/* ---- runner side ---- */

/* A chain's state in the runner. */
struct incr {
	char log[PATH_MAX];		/* DIR/<log name> */
	pid_t trackd;			/* the daemon, 0 if none */
	char info[256];			/* the victim's last reply */
};

/* DIR/name into buf (PATH_MAX bytes). */
void incr_path(struct cr_run *r, char *buf, const char *name);
/* Waits (bounded) until pid, a child of the runner, exited, and reaps it. 0 or cr_fail(). */
int incr_reap(struct cr_run *r, pid_t pid, const char *what);
/*
 * Runs the trackd next to ckpt with args (NULL-terminated, at most 14) and waits (bounded)
 * for it; output to DIR/<tag>.out, its wait status into *ret_status. 0 or cr_fail().
 */
int incr_trackd_run(struct cr_run *r, const char *tag, const char *const args[],
		    int *ret_status);
/* trackd -t roots -L DIR/logname -d: the log path and the daemon's pid into st. */
int incr_trackd_start(struct cr_run *r, struct incr *st, const pid_t *roots, int nr,
		      const char *logname);
/*
 * trackd stop, if st has a daemon; the daemon (the runner's child once it daemonized) must
 * exit. st has none afterwards, whatever happened.
 */
int incr_trackd_stop(struct cr_run *r, struct incr *st);
/*
 * Sends cmd to the victim over DIR/cmd and, unless it is "v", waits (bounded) for its
 * reply on DIR/ack into st->info, which must start with "ok". 0 or cr_fail().
 */
int incr_cmd(struct cr_run *r, struct incr *st, pid_t victim, const char *cmd);
/*
 * ckpt dump -t pid -D DIR/dir [--leave-running] --since-log st->log [--prev-images prev]
 * [flag]; it must succeed. Without leave, the dumped tree is reaped.
 */
int incr_dump(struct cr_run *r, struct incr *st, const char *tag, pid_t pid, const char *dir,
	      const char *prev, bool leave, const char *flag);
/* A restore of DIR/dir that must succeed and bring the victim back with its PID. */
int incr_restore(struct cr_run *r, pid_t victim, const char *dir, const char *tag);
/*
 * The end of a chain: trackd stopped (if it still runs), DIR/dir restored, the victim
 * verified (told "v" first if it serves commands).
 */
int incr_finish(struct cr_run *r, struct incr *st, pid_t victim, const char *dir,
		bool serves);

/* What a flow does with the case's victim v. */
typedef int (*incr_body_fn)(struct cr_run *r, struct incr *st, pid_t v);

/* The case's victim started, then body on it; no trackd is left attached, whatever it did. */
int incr_flow(struct cr_run *r, incr_body_fn body);

#endif /* SELFTESTS_INCR_H */
