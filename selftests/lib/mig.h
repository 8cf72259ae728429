/* SPDX-License-Identifier: MIT */
/*
 * mig.h: live-migration tests on top of cr.h (`ckpt migrate` / `ckpt receive` over loopback).
 *
 * The source side is the cr.h runner itself (PID 1 of its namespace or a child subreaper).
 * A destination is a fresh PID + mount namespace (its own /proc) whose init is a child of
 * the runner: it starts ckpt commands there on request, reaps every orphan of the namespace
 * and reports each exit, sends signals and lists the namespace's processes. Its ns_last_pid
 * is set to a base chosen by the caller, so that its own processes (ckpt receive and its
 * helpers) do not take the PIDs the migrated tree needs. Closing the control socket ends
 * the init, and with it every process of the namespace.
 *
 * Output of a command started with tag T goes to DIR/T.out (stdout and stderr), its -v4
 * log to DIR/T.log, as cr_ckpt() does; mig_wait_line() watches such a file.
 */
#ifndef SELFTESTS_MIG_H
#define SELFTESTS_MIG_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "cr.h"

#define MIG_MAX_EXITS	256
#define MIG_MAX_TASKS	128

/* A process the init reaped, in the namespace's PIDs. */
struct mig_exit {
	pid_t pid;
	int status;
};

/* A destination namespace, as the runner sees it. */
struct mig_ns {
	const char *name;		/* for messages */
	pid_t init;			/* the init (a child of the runner), 0 if none */
	int sk;				/* control socket, -1 if none */
	int nr_exits;
	struct mig_exit exits[MIG_MAX_EXITS];
};

/* A process of a namespace (mig_ns_tasks()). */
struct mig_task {
	pid_t pid;
	char comm[16];
};

/*
 * Base for a namespace's ns_last_pid that stays clear of the tree of root (whose PIDs, and
 * those it forks, come after root in its namespace): well below root, wrapped within
 * pid_max. k makes the bases of several namespaces differ.
 */
pid_t mig_pid_base(pid_t root, int k);

/* Starts the init of a new namespace (name is kept, not copied). 0 or cr_fail(). */
int mig_ns_start(struct cr_run *r, struct mig_ns *ns, const char *name, pid_t base);
/*
 * Runs ckpt with args (NULL-terminated, at most 20) in the namespace, with -v4 -o
 * DIR/<tag>.log appended and stdout+stderr on DIR/<tag>.out (truncated first); fault is the
 * CKPT_FAULT value or NULL. Its PID there into *ret_pid and, if ret_pidfd is not NULL, a
 * pidfd of it (the caller closes it). 0 or cr_fail().
 */
int mig_ns_spawn(struct cr_run *r, struct mig_ns *ns, const char *tag, const char *fault,
		 const char *const args[], pid_t *ret_pid, int *ret_pidfd);
/* kill(pid, sig) inside the namespace; 0, or -errno (not logged). */
int mig_ns_kill(struct cr_run *r, struct mig_ns *ns, pid_t pid, int sig);
/*
 * Waits (bounded) until the init reaped pid (a PID of the namespace) and puts its wait
 * status into *ret_status. 0 or cr_fail() (on a timeout too).
 */
int mig_ns_wait(struct cr_run *r, struct mig_ns *ns, pid_t pid, long timeout_ms, int *ret_status);
/* The processes of the namespace but its init into tasks; how many, or cr_fail(). */
int mig_ns_tasks(struct cr_run *r, struct mig_ns *ns, struct mig_task *tasks, int max);
/* Waits (bounded) until the namespace holds no process but its init; 0 or cr_fail(). */
int mig_ns_wait_empty(struct cr_run *r, struct mig_ns *ns, long timeout_ms, const char *why);
/*
 * Ends the namespace: every trackd in it gets SIGTERM first (and a bounded wait to
 * detach), then the control socket is closed, the init exits (the kernel kills the rest)
 * and is reaped. Safe on a namespace never started or already stopped.
 */
void mig_ns_stop(struct cr_run *r, struct mig_ns *ns);

/*
 * Waits (bounded) for a line of DIR/<tag>.out that starts with prefix and copies it (without
 * its newline) into line, if not NULL. Gives up early once pidfd (if >= 0) says the process
 * exited and the file has no such line. 0 or cr_fail().
 */
int mig_wait_line(struct cr_run *r, const char *tag, const char *prefix, int pidfd,
		  long timeout_ms, char *line, size_t size);
/* Whether DIR/<tag>.out has a line that starts with prefix. */
bool mig_has_line(struct cr_run *r, const char *tag, const char *prefix);

/* How many threads of the tree of root (cr_tree()) are traced by tracer (0: by anyone). */
int mig_tree_traced(pid_t root, pid_t tracer);
/* Waits (bounded) until pid (a PID of the runner's namespace) is stopped (State T). */
int mig_wait_stopped(struct cr_run *r, pid_t pid, const char *what);

/*
 * The runner's trackd children (daemons started by a `ckpt migrate` that are reparented to
 * the runner once they detach): their PIDs into pids; how many.
 */
int mig_trackd_children(pid_t *pids, int max);
/* SIGTERMs them and reaps them (bounded, SIGKILL at the end); how many there were. */
int mig_trackd_stop_children(struct cr_run *r);

/*
 * Reaps zombie children and waits (bounded) until the runner's live children are only
 * those in keep[] (nr of them). 0 or cr_fail() naming the others.
 */
int mig_wait_children_only(struct cr_run *r, const pid_t *keep, int nr, long timeout_ms,
			   const char *why);

#endif /* SELFTESTS_MIG_H */
