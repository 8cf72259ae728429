// SPDX-License-Identifier: MIT
/*
 * tree_test: process trees, dumped and restored whole.
 *
 *  - tree: a root with 3 children, the second with 2 children of its own. Every task keeps
 *    its PID, parent, session, group, the order of its children (/proc/PID/task/TID/children)
 *    and a memory pattern of its own; none is traced or stopped after restore, and each runs
 *    on by itself: the root sees every descendant's tick counter advance (process_vm_readv).
 *  - tree50: the same for 50 processes on three levels (1 + 7 + 7 * 6).
 *  - groups_sessions: a child that made a session of its own (setsid) with two children in
 *    it, one leading a group there; a child leading a group; a sibling that joined that
 *    group. Every task keeps its session and group.
 *  - zombies: unreaped children that exited with 3 and 42 or were killed by SIGTERM, and a
 *    live child's unreaped child that exited with 5: after restore each is still a zombie of
 *    the same parent with the same PID, and wait returns the same status.
 *  - stopped: children stopped by SIGSTOP and by SIGTSTP are still stopped ('T') after
 *    restore and waitid() reports the same stop signal; after SIGCONT they answer over a
 *    pipe.
 *  - multi_roots: three independent trees, dumped by one `ckpt dump -t a,b,c` and restored by
 *    one `ckpt restore`; each verifies itself (its parent is the runner again).
 *  - pipeline: producer | filter | consumer, caught mid-stream: numbers queued in both pipes,
 *    the producer blocked on a full one, the filter and consumer holding running state.
 *    After restore the consumer's count and checksum are those of an uninterrupted run.
 *  - tree_errors: `ckpt dump -t` refusals, each leaving every task of every tree unharmed: a
 *    PID that does not exist, one given twice, a root inside another root's tree, malformed
 *    lists, and tasks whose session or group leader is outside the dump (no --shell-job).
 *
 * Each task records its own state before the root says ready and checks it once asked to
 * verify: SIGUSR2 from the runner to the root, passed on by every task to its children. A
 * task's verdict is its exit status, which its parent waits for (bounded) and folds into its
 * own, so the root's exit status covers the whole tree.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cr.h"

CR_FIXTURE_LR(tree);

#define MAX_KIDS	8
#define MAX_TASKS	64
#define TICK_MS		5		/* a waiting task ticks this often */
#define SETUP_MS	5000		/* the tree is set up within */
#define CHILD_MS	8000		/* a root's children exit within (the runner: 10 s) */
#define LEVEL_MS	2500		/* ...each level below 2.5 s sooner (> RUN_MS) */
#define RUN_MS		2000		/* every descendant ticks within */
#define IO_MS		30000		/* pipe I/O spanning the dump and restore */
#define PAT_SIZE	(3 * 4096 + 123)

static volatile unsigned long ticks;	/* each task's own, advanced while it waits */
static unsigned char pat[PAT_SIZE];	/* each task's own memory pattern */
static int report_fd = -1;		/* setup pipe: a descendant writes its PID when set up */
static int report_rd = -1;		/* its read end, in the root */

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

static long ms_left(long deadline)
{
	long left = deadline - now_ms();

	return left > 0 ? left : 0;
}

static const char *describe(int status, char *buf, size_t size)
{
	if (WIFEXITED(status))
		snprintf(buf, size, "exit %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, size, "killed by signal %d", WTERMSIG(status));
	else
		snprintf(buf, size, "status 0x%x", status);
	return buf;
}

/* State letter and parent of pid from /proc/PID/stat; '?' if it is gone. */
static char proc_state(pid_t pid, pid_t *ppid)
{
	char path[64], buf[512], *p, state = '?';
	int parent = 0;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (cr_read_file(path, buf, sizeof(buf)) <= 0 || !(p = strrchr(buf, ')')) ||
	    sscanf(p + 1, " %c %d", &state, &parent) != 2)
		state = '?';
	if (ppid)
		*ppid = parent;
	return state;
}

/* Closes every fd above 2 except a, b (-1: none) and the setup pipe. */
static void close_except(int a, int b)
{
	int keep[3] = { a, b, report_fd }, lo = 3;

	for (int i = 0; i < 3; i++)
		for (int j = i + 1; j < 3; j++)
			if (keep[j] < keep[i]) {
				int t = keep[i];

				keep[i] = keep[j];
				keep[j] = t;
			}
	for (int i = 0; i < 3; i++) {
		if (keep[i] < lo)
			continue;
		if (keep[i] > lo)
			CR_SETUP(!close_range(lo, keep[i] - 1, 0), "close_range");
		lo = keep[i] + 1;
	}
	CR_SETUP(!close_range(lo, ~0U, 0), "close_range");
}

/* Reads len bytes (bounded); the number read (short at EOF), or -1 on error or timeout. */
static ssize_t read_bounded(int fd, void *buf, size_t len, long timeout_ms)
{
	long deadline = now_ms() + timeout_ms;
	size_t got = 0;

	while (got < len) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t n;
		int ret = poll(&pfd, 1, ms_left(deadline));

		if (ret < 0 && errno == EINTR)
			continue;	/* a signal, or the restore (poll is not resumed) */
		if (ret <= 0) {
			if (ret == 0)
				errno = ETIMEDOUT;
			return -1;
		}
		n = read(fd, (char *)buf + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		got += n;
	}
	return got;
}

static int write_full(int fd, const void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = write(fd, (const char *)buf + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		done += n;
	}
	return 0;
}

/* ---- the tree's plumbing ---- */

/* Forks a child of the calling task that runs fn(arg) and exits with its result. */
static pid_t spawn(int (*fn)(void *), void *arg)
{
	pid_t pid = fork();

	CR_SETUP(pid >= 0, "fork");
	if (pid == 0) {
		sigset_t none;

		/* Only the root reads the reports (and says ready: the harness closes
		 * cr_ready_fd in children). */
		if (report_rd >= 0)
			close(report_rd);
		report_rd = -1;
		sigemptyset(&none);
		CR_SETUP(!sigprocmask(SIG_SETMASK, &none, NULL), "sigprocmask");
		_exit(fn(arg));
	}
	return pid;
}

/* The root, before it forks: the pipe descendants report on. */
static void reports_open(void)
{
	int fds[2];

	CR_SETUP(!pipe2(fds, O_CLOEXEC), "pipe");
	report_rd = fds[0];
	report_fd = fds[1];
}

/* A descendant is set up: it tells the root its PID and closes the pipe. */
static void report_ready(void)
{
	pid_t me = getpid();

	CR_SETUP(write(report_fd, &me, sizeof(me)) == sizeof(me), "report to the root");
	close(report_fd);
	report_fd = -1;
}

/*
 * The root: waits (bounded) until nr descendants reported, their PIDs into pids, and closed
 * the pipe (EOF): none may be caught holding it, its read end gone.
 */
static void reports_collect(pid_t *pids, int nr)
{
	size_t want = nr * sizeof(*pids);
	pid_t got[MAX_TASKS + 1];
	ssize_t n;

	CR_SETUP(nr < MAX_TASKS, "%d descendants", nr);
	close(report_fd);
	report_fd = -1;
	n = read_bounded(report_rd, got, want + 1, SETUP_MS);	/* + 1: up to EOF */
	CR_SETUP(n == (ssize_t)want, "%zd of %d descendants set up and closed the report pipe "
		 "within %d ms (read %zd bytes)", n > 0 ? n / (ssize_t)sizeof(*pids) : 0, nr,
		 SETUP_MS, n);
	memcpy(pids, got, want);
	close(report_rd);
	report_rd = -1;
}

/* Waits for the verify request, ticking; returns the deadline for this task's children. */
static long wait_verify(int depth)
{
	struct timespec tick = { 0, TICK_MS * 1000000L };
	sigset_t usr2, old;

	sigemptyset(&usr2);
	sigaddset(&usr2, SIGUSR2);
	CR_SETUP(!sigprocmask(SIG_BLOCK, &usr2, &old), "sigprocmask");
	sigdelset(&old, SIGUSR2);
	while (!cr_verify_requested) {
		ticks++;
		/* SIGUSR2 is let in only here: no request is missed (EINTR). */
		if (ppoll(NULL, 0, &tick, &old) < 0 && errno != EINTR) {
			CR_CHECK(0, "ppoll: %s", strerror(errno));
			break;
		}
	}
	CR_CHECK(!sigprocmask(SIG_SETMASK, &old, NULL), "sigprocmask: %s", strerror(errno));
	return now_ms() + CHILD_MS - depth * LEVEL_MS;
}

/* Passes the verify request on. */
static void forward_verify(const pid_t *kids, int nr)
{
	for (int i = 0; i < nr; i++)
		CR_CHECK(!kill(kids[i], SIGUSR2), "SIGUSR2 to child %d: %s", kids[i],
			 strerror(errno));
}

/* Waits for child pid until deadline; its wait status, or -1 (reported; killed if alive). */
static int wait_child(pid_t pid, long deadline)
{
	int pidfd = syscall(SYS_pidfd_open, pid, 0), status, ret = 0;

	if (pidfd < 0) {
		CR_CHECK(0, "child %d: pidfd_open: %s", pid, strerror(errno));
		return -1;
	}
	for (;;) {
		struct pollfd pfd = { .fd = pidfd, .events = POLLIN };

		ret = poll(&pfd, 1, ms_left(deadline));
		if (ret >= 0 || errno != EINTR)
			break;
	}
	close(pidfd);
	if (ret <= 0) {
		CR_CHECK(0, "child %d (State %c) did not exit in time (killed)", pid,
			 proc_state(pid, NULL));
		kill(pid, SIGKILL);
	}
	if (waitpid(pid, &status, 0) != pid) {
		CR_CHECK(0, "waitpid %d: %s", pid, strerror(errno));
		return -1;
	}
	return ret > 0 ? status : -1;
}

/* Reaps the children: each must exit 0 (it and its subtree checked out), none be left. */
static void reap_kids(const pid_t *kids, int nr, long deadline)
{
	char what[64], left[256];

	for (int i = 0; i < nr; i++) {
		int status = wait_child(kids[i], deadline);

		if (status != -1)
			CR_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
				 "child %d: %s (its own report is above)", kids[i],
				 describe(status, what, sizeof(what)));
	}
	if (cr_read_file("/proc/thread-self/children", left, sizeof(left)) > 0)
		CR_CHECK(0, "children left behind: %s", left);
}

/* What a task checks about itself after restore. */
struct self_state {
	pid_t pid, ppid, pgid, sid;
	char children[512];		/* /proc/thread-self/children */
};

static void state_record(struct self_state *s)
{
	s->pid = getpid();
	s->ppid = getppid();
	s->pgid = getpgrp();
	s->sid = getsid(0);
	CR_SETUP(cr_read_file("/proc/thread-self/children", s->children,
			      sizeof(s->children)) >= 0, "read /proc/thread-self/children");
}

static void state_check(const struct self_state *s)
{
	char children[512], status[4096], tracer[32] = "?";

	CR_CHECK(getpid() == s->pid, "getpid() %d, expected %d", getpid(), s->pid);
	CR_CHECK(getppid() == s->ppid, "parent %d, expected %d", getppid(), s->ppid);
	CR_CHECK(getpgrp() == s->pgid, "process group %d, expected %d", getpgrp(), s->pgid);
	CR_CHECK(getsid(0) == s->sid, "session %d, expected %d", getsid(0), s->sid);
	if (cr_read_file("/proc/thread-self/children", children, sizeof(children)) < 0)
		CR_CHECK(0, "read /proc/thread-self/children: %s", strerror(errno));
	else
		CR_CHECK(!strcmp(children, s->children), "children '%s', expected '%s'", children,
			 s->children);
	if (cr_read_file("/proc/self/status", status, sizeof(status)) > 0)
		cr_status_field(status, "TracerPid", tracer, sizeof(tracer));
	CR_CHECK(!strcmp(tracer, "0"), "TracerPid %s", tracer);
}

static void pat_check(unsigned seed)
{
	long off = cr_check_pattern(pat, sizeof(pat), seed);

	CR_CHECK(off < 0, "memory pattern %u differs at byte %ld: 0x%02x, expected 0x%02x", seed,
		 off, off < 0 ? 0 : pat[off], off < 0 ? 0 : cr_pattern(off, seed));
}

static int read_ticks(pid_t pid, unsigned long *v)
{
	struct iovec local = { .iov_base = v, .iov_len = sizeof(*v) };
	struct iovec remote = { .iov_base = (void *)&ticks, .iov_len = sizeof(*v) };

	return process_vm_readv(pid, &local, 1, &remote, 1, 0) == sizeof(*v) ? 0 : -1;
}

/* The root: every task of pids runs by itself, seen from outside: its tick counter moves. */
static void check_ticking(const pid_t *pids, int nr)
{
	unsigned long first[MAX_TASKS], now;
	bool moved[MAX_TASKS] = { false };
	long deadline = now_ms() + RUN_MS;
	int left = nr;

	for (int i = 0; i < nr; i++)
		if (read_ticks(pids[i], &first[i])) {
			CR_CHECK(0, "task %d: process_vm_readv: %s", pids[i], strerror(errno));
			moved[i] = true;
			left--;
		}
	while (left && now_ms() < deadline) {
		/* Nothing signals a tick: look again, bounded. */
		(void)poll(NULL, 0, TICK_MS);
		for (int i = 0; i < nr; i++)
			if (!moved[i] && !read_ticks(pids[i], &now) && now != first[i]) {
				moved[i] = true;
				left--;
			}
	}
	for (int i = 0; i < nr; i++)
		CR_CHECK(moved[i], "task %d (State %c) does not run: its tick counter stays %lu",
			 pids[i], proc_state(pids[i], NULL), first[i]);
}

/* ---- generic trees: tree, tree50, groups_sessions, multi_roots, tree_errors ---- */

enum {
	PG_KEEP,			/* stays in its parent's group */
	PG_SETSID,			/* leads a new session (and group) */
	PG_OWN,				/* leads a new group */
	PG_JOIN,			/* PG_JOIN + k: joins the group led by its sibling k */
};

struct node {
	int nkids;
	const struct node *kids;
	int pg;
};

struct node_arg {
	const struct node *n;
	unsigned seed;			/* of its memory pattern, distinct in the tree */
	int depth;
	pid_t join;			/* PG_JOIN: the group */
};

static int count_tasks(const struct node *n)
{
	int c = 1;

	for (int i = 0; i < n->nkids; i++)
		c += count_tasks(&n->kids[i]);
	return c;
}

static int node_main(void *arg);

/*
 * A task of a generic tree: sets its session/group, forks its children, fills its pattern,
 * reports (the root collects every report and says ready), ticks until asked to verify,
 * passes the request on (the root first checks that every descendant runs), checks itself
 * and reaps its children.
 */
static int node_run(const struct node_arg *a)
{
	const struct node *n = a->n;
	static struct self_state st;
	pid_t kids[MAX_KIDS], all[MAX_TASKS];
	int nr_all = count_tasks(n) - 1;
	long deadline;

	CR_SETUP(n->nkids <= MAX_KIDS && nr_all < MAX_TASKS, "tree too big");
	if (a->n->pg == PG_SETSID)
		CR_SETUP(setsid() == getpid(), "setsid");
	else if (a->n->pg == PG_OWN)
		CR_SETUP(!setpgid(0, 0), "setpgid(0, 0)");
	else if (a->n->pg >= PG_JOIN)
		CR_SETUP(!setpgid(0, a->join), "setpgid(0, %d)", a->join);
	if (a->depth == 0)
		reports_open();

	for (int i = 0; i < n->nkids; i++) {
		const struct node *k = &n->kids[i];
		struct node_arg ka = { .n = k, .seed = a->seed * 10 + i + 1,
				       .depth = a->depth + 1 };

		if (k->pg >= PG_JOIN) {
			CR_SETUP(k->pg - PG_JOIN < i, "joins a later sibling");
			ka.join = kids[k->pg - PG_JOIN];
		}
		kids[i] = spawn(node_main, &ka);
		/* As a shell does: set the group from both sides, so that it exists for a
		 * sibling forked next to join. */
		if (k->pg == PG_OWN)
			CR_SETUP(!setpgid(kids[i], kids[i]), "setpgid(%d, %d)", kids[i], kids[i]);
		else if (k->pg >= PG_JOIN)
			CR_SETUP(!setpgid(kids[i], ka.join), "setpgid(%d, %d)", kids[i], ka.join);
	}
	cr_fill(pat, sizeof(pat), a->seed);
	state_record(&st);
	if (a->depth == 0) {
		reports_collect(all, nr_all);
		cr_victim_ready();
	} else {
		report_ready();
	}

	deadline = wait_verify(a->depth);
	if (a->depth == 0)
		check_ticking(all, nr_all);
	forward_verify(kids, n->nkids);
	state_check(&st);
	pat_check(a->seed);
	reap_kids(kids, n->nkids, deadline);
	return cr_victim_result();
}

static int node_main(void *arg)
{
	return node_run(arg);
}

/* The victim: the root of the tree arg, its pattern seeded by which victim it is. */
static int victim_tree(void *arg)
{
	struct node_arg a = { .n = arg, .seed = 1 + cr_victim_index };

	return node_run(&a);
}

/* 1: root -> A, B, C; B -> B1, B2 */
static const struct node tree_b_kids[2];
static const struct node tree_kids[3] = { {}, { .nkids = 2, .kids = tree_b_kids }, {} };
static const struct node tree7 = { .nkids = 3, .kids = tree_kids };

CR_CASE(tree, tree, .victim = victim_tree, .arg = (void *)&tree7);

/* 2: root -> 7 children -> 6 grandchildren each: 50 tasks */
static const struct node leaves6[6];
static const struct node tree50_kids[7] = { [0 ... 6] = { .nkids = 6, .kids = leaves6 } };
static const struct node tree50 = { .nkids = 7, .kids = tree50_kids };

CR_CASE(tree, tree50, .victim = victim_tree, .arg = (void *)&tree50);

/*
 * 3: root (leads session R and group R)
 *	S: setsid()		session S, group S
 *		S1		session S, group S
 *		S2: own group	session S, group S2
 *	G: own group		session R, group G
 *	M: joins G		session R, group G
 */
static const struct node sess_kids[2] = { { .pg = PG_KEEP }, { .pg = PG_OWN } };
static const struct node groups_kids[3] = {
	{ .nkids = 2, .kids = sess_kids, .pg = PG_SETSID },
	{ .pg = PG_OWN },
	{ .pg = PG_JOIN + 1 },
};
static const struct node groups = { .nkids = 3, .kids = groups_kids };

CR_CASE(tree, groups_sessions, .victim = victim_tree, .arg = (void *)&groups);

/* 6: three roots, each -> A, B; B -> B1 */
static const struct node small_b_kids[1];
static const struct node small_kids[2] = { {}, { .nkids = 1, .kids = small_b_kids } };
static const struct node small = { .nkids = 2, .kids = small_kids };

CR_CASE(tree, multi_roots, .victim = victim_tree, .arg = (void *)&small, .nr_victims = 3);

/* ---- zombies ---- */

static int exit_with(void *arg)
{
	report_ready();
	return (int)(long)arg;
}

/* Reports, then waits (bounded) for the SIGTERM that kills it. */
static int wait_for_term(void *arg)
{
	report_ready();
	(void)poll(NULL, 0, SETUP_MS);
	dprintf(2, "victim %d: no SIGTERM within %d ms\n", getpid(), SETUP_MS);
	return 2;
}

/* Waits (bounded) until child pid exited, without reaping it. */
static void wait_zombie(pid_t pid)
{
	int pidfd = syscall(SYS_pidfd_open, pid, 0);
	struct pollfd pfd = { .fd = pidfd, .events = POLLIN };
	siginfo_t si = { 0 };

	CR_SETUP(pidfd >= 0, "pidfd_open %d", pid);
	CR_SETUP(poll(&pfd, 1, SETUP_MS) == 1, "child %d did not exit", pid);
	close(pidfd);
	CR_SETUP(!waitid(P_PID, pid, &si, WEXITED | WNOHANG | WNOWAIT) && si.si_pid == pid,
		 "child %d exited but is not waitable", pid);
	CR_SETUP(proc_state(pid, NULL) == 'Z', "child %d is not a zombie", pid);
}

/* After restore: pid is still a zombie child with wait status want; reaps it. */
static void check_zombie(pid_t pid, int want)
{
	char got_s[64], want_s[64];
	pid_t ppid, got;
	char state = proc_state(pid, &ppid);
	int status = -1;

	CR_CHECK(state == 'Z', "child %d in state '%c', expected a zombie", pid, state);
	CR_CHECK(ppid == getpid(), "zombie %d has parent %d, expected %d", pid, ppid, getpid());
	got = waitpid(pid, &status, WNOHANG);
	CR_CHECK(got == pid, "waitpid(%d, WNOHANG) returned %d (%s)", pid, got,
		 got < 0 ? strerror(errno) : "still running");
	if (got != pid)
		return;
	CR_CHECK(WIFEXITED(status) == WIFEXITED(want) && WIFSIGNALED(status) == WIFSIGNALED(want),
		 "zombie %d: %s, expected %s", pid, describe(status, got_s, sizeof(got_s)),
		 describe(want, want_s, sizeof(want_s)));
	CR_CHECK(status == want, "zombie %d: wait status 0x%x (%s), expected 0x%x (%s)", pid,
		 status, describe(status, got_s, sizeof(got_s)), want,
		 describe(want, want_s, sizeof(want_s)));
}

/* A live child with a zombie child of its own (exit 5). */
static int zombie_parent(void *arg)
{
	static struct self_state st;
	pid_t z = spawn(exit_with, (void *)5L);

	wait_zombie(z);
	cr_fill(pat, sizeof(pat), 77);
	state_record(&st);
	report_ready();

	wait_verify(1);
	state_check(&st);
	pat_check(77);
	check_zombie(z, W_EXITCODE(5, 0));
	return cr_victim_result();
}

static int victim_zombies(void *arg)
{
	static struct self_state st;
	pid_t z3, z42, zterm, live, all[5];
	long deadline;

	reports_open();
	z3 = spawn(exit_with, (void *)3L);
	live = spawn(zombie_parent, NULL);
	zterm = spawn(wait_for_term, NULL);
	z42 = spawn(exit_with, (void *)42L);
	reports_collect(all, 5);
	CR_SETUP(!kill(zterm, SIGTERM), "kill %d", zterm);
	wait_zombie(z3);
	wait_zombie(zterm);
	wait_zombie(z42);
	cr_fill(pat, sizeof(pat), 1);
	state_record(&st);	/* the children list has the zombies in it */
	cr_victim_ready();

	deadline = wait_verify(0);
	check_ticking(&live, 1);
	forward_verify(&live, 1);
	state_check(&st);
	pat_check(1);
	check_zombie(z3, W_EXITCODE(3, 0));
	check_zombie(zterm, W_EXITCODE(0, SIGTERM));
	check_zombie(z42, W_EXITCODE(42, 0));
	reap_kids(&live, 1, deadline);
	return cr_victim_result();
}

CR_CASE(tree, zombies, .victim = victim_zombies);

/* ---- stopped children ---- */

struct stop_kid {
	pid_t pid;
	int sig;
	int cmd[2];			/* root -> child */
	int ans[2];			/* child -> root */
};

/* Reports, is stopped while it waits for a command, then answers with its PID. */
static int stop_child(void *arg)
{
	const struct stop_kid *k = arg;
	static struct self_state st;
	pid_t me = getpid();
	char c = 0;
	ssize_t n;

	close_except(k->cmd[0], k->ans[1]);
	if (k->sig == SIGTSTP)
		CR_SETUP(!setpgid(0, 0), "setpgid");
	cr_fill(pat, sizeof(pat), 100 + k->sig);
	state_record(&st);
	report_ready();

	n = read_bounded(k->cmd[0], &c, 1, IO_MS);
	CR_CHECK(n == 1 && c == 'p', "command: read %zd ('%c'): %s", n, c, strerror(errno));
	CR_CHECK(!write_full(k->ans[1], &me, sizeof(me)), "answer: %s", strerror(errno));
	state_check(&st);
	pat_check(100 + k->sig);
	return cr_victim_result();
}

/* Waits (bounded) until child pid is stopped by sig; SIGCHLD is blocked. The stop stays
 * unreported (WNOWAIT). */
static void wait_stopped(pid_t pid, int sig)
{
	long deadline = now_ms() + SETUP_MS;
	sigset_t chld;

	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	for (;;) {
		siginfo_t si = { 0 };
		struct timespec ts = { 0, 0 };
		long left = ms_left(deadline);

		if (!waitid(P_PID, pid, &si, WSTOPPED | WNOHANG | WNOWAIT) && si.si_pid == pid) {
			CR_SETUP(si.si_code == CLD_STOPPED && si.si_status == sig,
				 "child %d: code %d status %d, expected stopped by %d", pid,
				 si.si_code, si.si_status, sig);
			return;
		}
		CR_SETUP(left > 0, "child %d not stopped by signal %d in time", pid, sig);
		ts.tv_sec = left / 1000;
		ts.tv_nsec = left % 1000 * 1000000L;
		(void)sigtimedwait(&chld, NULL, &ts);
	}
}

static int victim_stopped(void *arg)
{
	static const int sigs[2] = { SIGSTOP, SIGTSTP };
	static struct self_state st;
	struct stop_kid k[2];
	pid_t pids[2], all[2];
	sigset_t chld, old;
	long deadline;

	reports_open();
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	CR_SETUP(!sigprocmask(SIG_BLOCK, &chld, &old), "sigprocmask");
	for (int i = 0; i < 2; i++) {
		k[i].sig = sigs[i];
		CR_SETUP(!pipe(k[i].cmd) && !pipe(k[i].ans), "pipe");
		k[i].pid = pids[i] = spawn(stop_child, &k[i]);
		/*
		 * SIGTSTP is ignored in an orphaned process group, and the root's group is one
		 * (its parent, the runner, is in another session): that child gets a group of
		 * its own, whose parent (the root) is in the same session.
		 */
		if (sigs[i] == SIGTSTP)
			CR_SETUP(!setpgid(k[i].pid, k[i].pid), "setpgid");
		close(k[i].cmd[0]);
		close(k[i].ans[1]);
	}
	reports_collect(all, 2);
	for (int i = 0; i < 2; i++) {
		CR_SETUP(!kill(k[i].pid, k[i].sig), "kill %d", k[i].pid);
		wait_stopped(k[i].pid, k[i].sig);
	}
	CR_SETUP(!sigprocmask(SIG_SETMASK, &old, NULL), "sigprocmask");
	cr_fill(pat, sizeof(pat), 1);
	state_record(&st);
	cr_victim_ready();

	deadline = wait_verify(0);
	state_check(&st);
	pat_check(1);
	for (int i = 0; i < 2; i++) {
		siginfo_t si = { 0 };
		char state = proc_state(k[i].pid, NULL);
		pid_t answer = 0;
		ssize_t n;

		CR_CHECK(state == 'T', "child %d (stopped by %s) in state '%c', expected 'T'",
			 k[i].pid, strsignal(k[i].sig), state);
		CR_CHECK(!waitid(P_PID, k[i].pid, &si, WSTOPPED | WNOHANG | WNOWAIT) &&
			 si.si_pid == k[i].pid && si.si_code == CLD_STOPPED &&
			 si.si_status == k[i].sig,
			 "waitid(%d, WSTOPPED): pid %d code %d status %d, expected stopped by %d",
			 k[i].pid, si.si_pid, si.si_code, si.si_status, k[i].sig);
		CR_CHECK(!kill(k[i].pid, SIGCONT), "SIGCONT %d: %s", k[i].pid, strerror(errno));
		CR_CHECK(!write_full(k[i].cmd[1], "p", 1), "command to %d: %s", k[i].pid,
			 strerror(errno));
		n = read_bounded(k[i].ans[0], &answer, sizeof(answer), ms_left(deadline));
		CR_CHECK(n == sizeof(answer) && answer == k[i].pid,
			 "child %d after SIGCONT: answered %d (read %zd: %s)", k[i].pid, answer, n,
			 n < 0 ? strerror(errno) : "-");
	}
	reap_kids(pids, 2, deadline);
	return cr_victim_result();
}

CR_CASE(tree, stopped, .victim = victim_stopped);

/* ---- producer | filter | consumer ---- */

#define PIPE_N		4000	/* numbers the producer writes: 1..PIPE_N */
#define FILTER_PRE	1000	/* numbers the filter passes on before it is set up */
#define CONSUMER_PRE	400	/* numbers the consumer takes before it is set up */
#define PIPE1_SIZE	4096	/* producer -> filter: full long before PIPE_N */

struct stage {
	int in, out;
};

/* The filter's running state makes its output depend on everything before. */
static uint64_t filter_step(uint64_t x, uint64_t *state)
{
	*state = *state * 6364136223846793005ULL + x * 2654435761ULL + 1;
	return *state ^ (*state >> 29);
}

static void consume(uint64_t y, uint64_t *sum)
{
	*sum = (*sum ^ y) * 0x100000001b3ULL;
}

static int producer(void *arg)
{
	const struct stage *s = arg;
	static struct self_state st;

	close_except(s->out, -1);
	/* EPIPE, not a silent death, if the filter dies. */
	CR_SETUP(signal(SIGPIPE, SIG_IGN) != SIG_ERR, "SIGPIPE");
	state_record(&st);
	report_ready();
	/* Soon blocks: the filter stops reading at FILTER_PRE, the pipe holds one page. */
	for (uint64_t i = 1; i <= PIPE_N; i++)
		if (write_full(s->out, &i, sizeof(i))) {
			CR_CHECK(0, "producer: write number %llu: %s", (unsigned long long)i,
				 strerror(errno));
			break;
		}
	close(s->out);
	wait_verify(1);
	state_check(&st);
	return cr_victim_result();
}

static int filter(void *arg)
{
	const struct stage *s = arg;
	static struct self_state st;
	uint64_t x, y, state = 1, n = 0;
	ssize_t got;

	close_except(s->in, s->out);
	state_record(&st);
	for (;;) {
		if (n == FILTER_PRE) {
			report_ready();
			wait_verify(1);
		}
		got = read_bounded(s->in, &x, sizeof(x), IO_MS);
		if (got == 0)
			break;
		if (got != sizeof(x)) {
			CR_CHECK(0, "filter: read after %llu numbers: %zd: %s",
				 (unsigned long long)n, got, strerror(errno));
			break;
		}
		CR_CHECK(x == n + 1, "filter: number %llu, expected %llu", (unsigned long long)x,
			 (unsigned long long)n + 1);
		y = filter_step(x, &state);
		if (write_full(s->out, &y, sizeof(y))) {
			CR_CHECK(0, "filter: write: %s", strerror(errno));
			break;
		}
		n++;
	}
	close(s->out);
	CR_CHECK(n == PIPE_N, "filter: %llu numbers, expected %d", (unsigned long long)n, PIPE_N);
	state_check(&st);
	return cr_victim_result();
}

static int consumer(void *arg)
{
	const struct stage *s = arg;
	static struct self_state st;
	uint64_t y, res[2] = { 0, 0 };	/* count, checksum */
	ssize_t got;

	close_except(s->in, s->out);
	state_record(&st);
	for (;;) {
		if (res[0] == CONSUMER_PRE) {
			report_ready();
			wait_verify(1);
		}
		got = read_bounded(s->in, &y, sizeof(y), IO_MS);
		if (got == 0)
			break;
		if (got != sizeof(y)) {
			CR_CHECK(0, "consumer: read after %llu numbers: %zd: %s",
				 (unsigned long long)res[0], got, strerror(errno));
			break;
		}
		consume(y, &res[1]);
		res[0]++;
	}
	CR_CHECK(!write_full(s->out, res, sizeof(res)), "consumer: write result: %s",
		 strerror(errno));
	state_check(&st);
	return cr_victim_result();
}

static int victim_pipeline(void *arg)
{
	static struct self_state st;
	int p1[2], p2[2], res[2];
	uint64_t want = 0, fstate = 1, got[2] = { 0, 0 };
	pid_t kids[3], all[3];
	struct stage sp, sf, sc;
	long deadline;
	ssize_t n;

	for (uint64_t i = 1; i <= PIPE_N; i++)
		consume(filter_step(i, &fstate), &want);

	reports_open();
	CR_SETUP(!pipe(p1) && !pipe(p2) && !pipe(res), "pipe");
	CR_SETUP(fcntl(p1[1], F_SETPIPE_SZ, PIPE1_SIZE) == PIPE1_SIZE, "F_SETPIPE_SZ");
	sp = (struct stage){ .in = -1, .out = p1[1] };
	sf = (struct stage){ .in = p1[0], .out = p2[1] };
	sc = (struct stage){ .in = p2[0], .out = res[1] };
	kids[0] = spawn(producer, &sp);
	kids[1] = spawn(filter, &sf);
	kids[2] = spawn(consumer, &sc);
	close(p1[0]);
	close(p1[1]);
	close(p2[0]);
	close(p2[1]);
	close(res[1]);
	reports_collect(all, 3);
	state_record(&st);
	cr_victim_ready();

	deadline = wait_verify(0);
	forward_verify(kids, 3);
	state_check(&st);
	n = read_bounded(res[0], got, sizeof(got), ms_left(deadline));
	CR_CHECK(n == sizeof(got), "consumer's result: read %zd: %s", n,
		 n < 0 ? strerror(errno) : "short");
	CR_CHECK(got[0] == PIPE_N, "the consumer got %llu numbers, expected %d",
		 (unsigned long long)got[0], PIPE_N);
	CR_CHECK(got[1] == want,
		 "the consumer's checksum is %#llx, an uninterrupted run gives %#llx",
		 (unsigned long long)got[1], (unsigned long long)want);
	close(res[0]);
	reap_kids(kids, 3, deadline);
	return cr_victim_result();
}

CR_CASE(tree, pipeline, .victim = victim_pipeline);

/* ---- refused dumps ---- */

/* ckpt call tag must have exited with code, saying needle. */
static int expect_refused(struct cr_run *r, const char *tag, int status, int code,
			  const char *needle)
{
	if (cr_expect_failed(r, tag, status, needle))
		return -1;
	if (WEXITSTATUS(status) != code)
		return cr_fail(r, "ckpt %s exited %d, expected %d", tag, WEXITSTATUS(status), code);
	return 0;
}

static const struct node chain_kids[1];
static const struct node chain_kid = { .nkids = 1, .kids = chain_kids };
static const struct node chain = { .nkids = 1, .kids = &chain_kid };	/* root -> A1 -> A2 */

static int flow_errors(struct cr_run *r)
{
	static struct cr_tree_snap before;
	char a[16], b[16], k[16], a1[16], l_gone[64], l_twice[64], l_nested[64], l_nested2[64],
	     l_empty[64];
	pid_t roots[3], tree[4], gone;
	int status, ret = -1;
	const struct {
		const char *tag, *list;
		int code;			/* exit code: 2 for usage errors */
		const char *needle;
		bool shell_job;			/* the message points at --shell-job too */
	} calls[] = {
		{ .tag = "nopid", .list = l_gone, .code = 1, .needle = "no such process" },
		{ .tag = "twice", .list = l_twice, .code = 2, .needle = "given twice" },
		{ .tag = "nested", .list = l_nested, .code = 1, .needle = "inside the tree of" },
		{ .tag = "nested-first", .list = l_nested2, .code = 1,
		  .needle = "inside the tree of" },
		{ .tag = "empty", .list = l_empty, .code = 2, .needle = "bad PID list" },
		{ .tag = "word", .list = "abc", .code = 2, .needle = "bad PID list" },
		/* A1's session and group leader is A. */
		{ .tag = "session", .list = a1, .code = 1, .needle = "not in the dump",
		  .shell_job = true },
		/* K's are the test's. */
		{ .tag = "group", .list = k, .code = 1, .needle = "not in the dump",
		  .shell_job = true },
	};

	/* A and B lead their sessions; K stays in the test's. */
	for (int i = 0; i < 3; i++)
		if (cr_victim_spawn(r, victim_tree, (void *)&chain, i == 2, &roots[i]))
			return -1;
	if (cr_tree(roots[0], tree, 4) != 3)
		return cr_fail(r, "victim %d: expected a tree of 3 tasks", roots[0]);
	gone = fork();
	if (gone < 0)
		return cr_fail(r, "fork: %s", strerror(errno));
	if (gone == 0)
		_exit(0);
	if (waitpid(gone, NULL, 0) != gone)
		return cr_fail(r, "waitpid %d: %s", gone, strerror(errno));
	snprintf(a, sizeof(a), "%d", roots[0]);
	snprintf(b, sizeof(b), "%d", roots[1]);
	snprintf(k, sizeof(k), "%d", roots[2]);
	snprintf(a1, sizeof(a1), "%d", tree[1]);
	snprintf(l_gone, sizeof(l_gone), "%s,%d", a, gone);
	snprintf(l_twice, sizeof(l_twice), "%s,%s:%s", a, b, a);
	snprintf(l_nested, sizeof(l_nested), "%s,%s", a, a1);
	snprintf(l_nested2, sizeof(l_nested2), "%s:%s", a1, a);
	snprintf(l_empty, sizeof(l_empty), "%s,,%s", a, b);

	if (cr_snapshot_trees(r, roots, 3, &before))
		goto out;
	for (size_t i = 0; i < sizeof(calls) / sizeof(calls[0]); i++) {
		const char *args[] = { "dump", "-t", calls[i].list, "-D", r->imgdir, NULL };

		if (cr_ckpt(r, calls[i].tag, NULL, args, &status) ||
		    expect_refused(r, calls[i].tag, status, calls[i].code, calls[i].needle) ||
		    (calls[i].shell_job && cr_expect_output(r, calls[i].tag, "--shell-job")) ||
		    cr_check_unharmed_trees(r, &before))
			goto out;
	}
	for (int i = 0; i < 3; i++)
		if (cr_verify(r, roots[i], "dump-refused"))
			goto out;
	ret = 0;
out:
	cr_snap_trees_free(&before);
	return ret;
}

/* The flow dumps nothing successfully: the leave-running variant is the same as pidns. */
CR_CASE(tree, tree_errors, .flow = flow_errors);

TEST_HARNESS_MAIN
