/* SPDX-License-Identifier: MIT */
/*
 * cr.h: checkpoint/restore test runner on top of harness.h.
 *
 * A case is a victim function plus options. cr_run_case() forks a "runner" (PID 1 of a new
 * PID + mount namespace in the pidns variant, a child subreaper in the host variant). The
 * runner forks the victim with fds 0/1/2 on /dev/null and DIR/victim.out and every other fd
 * closed; the victim leads a session and process group of its own (setsid() before the
 * victim function runs) unless the case sets keep_session. The runner waits until the
 * victim said "ready" (one byte on a pipe, then the victim closes it), runs `ckpt dump`,
 * reaps the killed victim and every task of its tree (they become the runner's children),
 * runs `ckpt restore -d`, sends SIGUSR2 to the restored task (same PID, now the runner's
 * child) and waits for its exit status: 0 means the victim found its state intact. A victim
 * with children passes the request on and folds their verdicts into its own. With
 * nr_victims > 1 the same happens to several victims at once (one dump, one restore). The
 * first thing that goes wrong is reported as one line; the test then prints the runner's,
 * ckpt's and the victim's logs as TAP comments.
 *
 * Files in the per-test temp dir DIR (kept when CR_KEEP=1 is set):
 *   runner.log        what the runner did, step by step
 *   dump.out/.log     stdout+stderr / -v4 log of `ckpt dump` (other tags for other calls)
 *   restore.out/.log  same for `ckpt restore`
 *   victim.out        the victims' stdout and stderr (O_APPEND, shared by both runs)
 *   img/              the image directory
 *
 * The ckpt binary is $CKPT, or ../../ckpt relative to the test binary (build/ckpt).
 */
#ifndef SELFTESTS_CR_H
#define SELFTESTS_CR_H

#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "harness.h"

enum cr_mode {
	CR_MODE_PIDNS,
	CR_MODE_HOST,
};

/* Fixture data of every C/R test. */
struct cr_env {
	enum cr_mode mode;
	bool leave_running;
	char dir[256];			/* per-test temp dir (short: paths are built on it) */
	char ckpt[PATH_MAX];
};

struct cr_run;
typedef int (*cr_victim_fn)(void *arg);
typedef int (*cr_step_fn)(struct cr_run *r);

struct cr_case {
	/* Builds its state, calls cr_victim_ready(), waits (cr_victim_wait()), verifies and
	 * returns the exit code: 0 ok, 1 mismatch (lines in victim.out), 4 skip (before ready). */
	cr_victim_fn victim;
	void *arg;
	/* Whole runner flow; NULL means cr_flow_default(). */
	cr_step_fn flow;
	/* Runs in the runner after the dump (and the reaping of the dumped victim), before the
	 * restore. May set r->restore_err. Returns 0 or cr_fail(). */
	cr_step_fn between;
	/* Dump with CKPT_FAULT=fault: it must fail and leave the victim unharmed. */
	const char *fault;
	/* The dump must fail with this text (case-insensitive) on stderr, victim unharmed. */
	const char *dump_err;
	/* Dump only once the victim is blocked in system call syscall_nr. */
	bool wait_blocked;
	long syscall_nr;
	/* The case does not depend on the leave-running variant (runs it as a plain dump). */
	bool no_leave;
	/* The tree changes by itself (tasks and threads come and go): no before/after
	 * comparison of its tasks around a dump; the victim's own checks judge it. */
	bool changing;
	/* The victim stays in the test's session and process group (leaders outside any dump)
	 * instead of calling setsid() first. */
	bool keep_session;
	/* cr_dump() and cr_restore() pass --shell-job. */
	bool shell_job;
	/* cr_dump() passes --ext-unix-sk. */
	bool ext_unix_sk;
	/* Victims (independent roots) the default flow starts, dumps in one `-t a,b,c`,
	 * restores in one call and verifies one by one; 0 means 1. */
	int nr_victims;
};

#define CR_MAX_VICTIMS	8
#define CR_MAX_TASKS	256	/* tasks of the trees of one dump the runner tracks */

/* A task of a dumped tree, for cr_reap_dumped(). */
struct cr_task {
	pid_t pid;
	pid_t root;			/* the dumped root whose tree it is in */
	int pidfd;			/* open from just before the dump until it is reaped */
};

/* Runner state, visible to flows and hooks (they run in the runner process). */
struct cr_run {
	const struct cr_env *env;
	const struct cr_case *c;
	pid_t victim;			/* PID of the victim as the runner (and ckpt) sees it */
	pid_t victims[CR_MAX_VICTIMS];	/* every victim started, in order (cr_victim_index) */
	int nr_victims;
	struct cr_task dumped[CR_MAX_TASKS];	/* last cr_dump*()'s trees, parents first */
	int nr_dumped;
	pid_t outside[CR_MAX_VICTIMS];	/* the runner's children outside those trees */
	int nr_outside;
	char imgdir[PATH_MAX];
	char restore_err[PATH_MAX + 64];	/* if set: restore must fail saying this */
	char err[2048];			/* first failure */
	char skip[512];			/* set by cr_skip() */
	int logfd;			/* runner.log */
};

/* A snapshot of what a task looks like from outside, for "unharmed" checks. */
struct cr_snap {
	char state;			/* first letter of State: R S D T t Z ... */
	pid_t tracer;			/* TracerPid */
	char maps[65536];
	char sig[512];			/* SigPnd, ShdPnd, SigBlk, SigIgn, SigCgt lines */
	char fds[4096];			/* fd -> target lines */
};

/* ---- test side (test child) ---- */

void cr_env_setup(struct th_meta *_metadata, struct cr_env *env, enum cr_mode mode,
		  bool leave_running);
void cr_env_teardown(struct th_meta *_metadata, struct cr_env *env);
/* Runs the case in a runner and fails/skips the test with the runner's verdict. */
void cr_run_case(struct th_meta *_metadata, struct cr_env *env, const struct cr_case *c);

/* Fixture `f` with variants pidns and host (and pidns_leave for CR_FIXTURE_LR). */
#define CR_FIXTURE_BASE(f)								\
	FIXTURE(f) {									\
		struct cr_env env;							\
	};										\
	FIXTURE_VARIANT(f) {								\
		enum cr_mode mode;							\
		bool leave_running;							\
	};										\
	FIXTURE_VARIANT_ADD(f, pidns) { .mode = CR_MODE_PIDNS };			\
	FIXTURE_VARIANT_ADD(f, host) { .mode = CR_MODE_HOST };				\
	FIXTURE_SETUP(f)								\
	{										\
		cr_env_setup(_metadata, &self->env, variant->mode, variant->leave_running); \
	}										\
	FIXTURE_TEARDOWN(f)								\
	{										\
		cr_env_teardown(_metadata, &self->env);					\
	}
#define CR_FIXTURE(f) CR_FIXTURE_BASE(f)
#define CR_FIXTURE_LR(f)								\
	CR_FIXTURE_BASE(f)								\
	FIXTURE_VARIANT_ADD(f, pidns_leave) { .mode = CR_MODE_PIDNS, .leave_running = true };

/* One C/R case: CR_CASE(fixture, name, .victim = fn, ...). */
#define CR_CASE(f, name, ...)								\
	TEST_F(f, name)									\
	{										\
		static const struct cr_case cr_case_ = { __VA_ARGS__ };			\
		cr_run_case(_metadata, &self->env, &cr_case_);				\
	}

/* ---- runner side (flows and hooks) ---- */

/* Records the first failure (also in runner.log); returns -1. */
int cr_fail(struct cr_run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Marks the case skipped; returns -1. */
int cr_skip(struct cr_run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cr_note(struct cr_run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Forks the case's victim, sets r->victim and waits (bounded) until it is ready and closed
 * the pipe. */
int cr_victim_start(struct cr_run *r);
/* The same for victim fn(arg), keep_session as in struct cr_case; *ret_pid is its PID. */
int cr_victim_spawn(struct cr_run *r, cr_victim_fn fn, void *arg, bool keep_session,
		    pid_t *ret_pid);
/* pid and all its descendants (children of any of its threads, zombies included) into pids,
 * parents before children, each one's children in /proc/PID/task/TID/children order.
 * Returns how many (at most max), or -errno if pid is gone. */
int cr_tree(pid_t pid, pid_t *pids, int max);
/* Waits (bounded) until pid is blocked in system call nr. */
int cr_wait_syscall(struct cr_run *r, pid_t pid, long nr);
/* Runs ckpt with args (NULL-terminated); stdout+stderr go to DIR/<tag>.out, -v4 -o
 * DIR/<tag>.log are appended. *ret_status is the wait status. 0, or cr_fail() if it could
 * not run or timed out. fault: CKPT_FAULT value or NULL (then CKPT_FAULT is unset). */
int cr_ckpt(struct cr_run *r, const char *tag, const char *fault, const char *const args[],
	    int *ret_status);
/* cr_ckpt() in two halves: start ckpt and return its pid (or cr_fail()); if stdio_fd >= 0 it
 * becomes ckpt's fds 0-2 instead of /dev/null and DIR/<tag>.out. cr_ckpt_wait() waits for it,
 * bounded, like cr_ckpt(). */
pid_t cr_ckpt_start(struct cr_run *r, const char *tag, const char *fault, const char *const args[],
		    int stdio_fd);
int cr_ckpt_wait(struct cr_run *r, const char *tag, pid_t pid, int *ret_status);
/* ckpt dump -t PID[,PID...] -D imgdir [--leave-running] [--shell-job if the case says so].
 * Records the tasks of the trees first (r->dumped), for cr_reap_dumped(). */
int cr_dump(struct cr_run *r, const char *tag, pid_t pid, bool leave_running, const char *fault,
	    int *ret_status);
int cr_dump_pids(struct cr_run *r, const char *tag, const pid_t *pids, int nr, bool leave_running,
		 const char *fault, int *ret_status);
/* cr_dump_pids() with the NULL-terminated extra arguments (may be NULL) appended. */
int cr_dump_pids_extra(struct cr_run *r, const char *tag, const pid_t *pids, int nr,
		       bool leave_running, const char *const extra[], const char *fault,
		       int *ret_status);
/* ckpt restore -D imgdir -d --pidfile DIR/<tag>.pid [--shell-job if the case says so];
 * *ret_pid from the pidfile (0 if none). */
int cr_restore(struct cr_run *r, const char *tag, int *ret_status, pid_t *ret_pid);
/* Sends SIGUSR2 to the (child) pid and waits, bounded, for exit status 0. */
int cr_verify(struct cr_run *r, pid_t pid, const char *what);
/* After a dump without --leave-running: the victim must die soon; reaps it, then (bounded)
 * every other task cr_dump*() recorded in its tree, which the runner inherits as it dies. */
int cr_reap_dumped(struct cr_run *r, pid_t pid);
/* Fails unless the ckpt call `tag` exited non-zero (not by a signal), with a message on
 * stderr that contains `needle` (if not NULL, case-insensitive). */
int cr_expect_failed(struct cr_run *r, const char *tag, int status, const char *needle);
/* Fails unless the output (stdout+stderr) of ckpt call `tag` contains needle (any case). */
int cr_expect_output(struct cr_run *r, const char *tag, const char *needle);
/* Fails if ckpt call `tag` did not exit 0 (message quotes the first line of its stderr). */
int cr_expect_ok(struct cr_run *r, const char *tag, int status);
/* Snapshot and "unharmed" check: not traced, stopped only if it was (a zombie stays one),
 * same maps, signals and fds. */
int cr_snapshot(struct cr_run *r, pid_t pid, struct cr_snap *s);
int cr_check_unharmed(struct cr_run *r, pid_t pid, const struct cr_snap *before);
/* The same for every task of the trees of roots (cr_tree()); free with cr_snap_trees_free(). */
struct cr_tree_snap {
	int nr;
	pid_t pids[CR_MAX_TASKS];
	struct cr_snap *snaps;
};
int cr_snapshot_trees(struct cr_run *r, const pid_t *roots, int nr, struct cr_tree_snap *s);
int cr_check_unharmed_trees(struct cr_run *r, const struct cr_tree_snap *before);
void cr_snap_trees_free(struct cr_tree_snap *s);
/* Reaps zombie children, then fails if pid exists. */
int cr_expect_pid_free(struct cr_run *r, pid_t pid, const char *why);
/* Number of live children of the runner. */
int cr_count_children(void);
/* Image dir 0700, every image file 0600. */
int cr_check_image_modes(struct cr_run *r);
/* The flow described at the top of this file. */
int cr_flow_default(struct cr_run *r);

/*
 * Dump, reap, prepare(r, dumped) (may be NULL), the case's `between` (which
 * may edit the images and set r->restore_err), restore. With restore_err
 * set the restore must fail saying it, and `field` too when it is a
 * non-empty string by then, leaving the PID free and no process behind;
 * without it the restored victim must verify itself.
 */
int cr_flow_restore_edited(struct cr_run *r, int (*prepare)(struct cr_run *r, pid_t dumped),
			   const char *field);

/* Test memory patterns: byte i of a buffer filled with seed. */
unsigned char cr_pattern(size_t i, unsigned seed);
void cr_fill(void *p, size_t n, unsigned seed);
/* Index of the first byte that differs from the pattern, or -1. */
long cr_check_pattern(const void *p, size_t n, unsigned seed);
bool cr_all_zero(const void *p, size_t n);

/* ---- victim side ---- */

extern volatile sig_atomic_t cr_verify_requested;	/* set by the SIGUSR2 handler */
extern const char *cr_victim_dir;			/* the per-test temp dir */
extern int cr_ready_fd;		/* -1 in the children the victim forks (pthread_atfork) */
extern int cr_victim_index;	/* which victim of the case this is: 0, 1, ... */

/* Writes the "ready" byte and closes the pipe: from here on the victim may be dumped. */
void cr_victim_ready(void);
/* Blocks SIGUSR2 and sigsuspend()s until the verify request arrived. */
void cr_victim_wait(void);
/* cr_victim_ready() + cr_victim_wait(). */
void cr_victim_ready_wait(void);
/* 0 if no CR_CHECK failed, else 1. */
int cr_victim_result(void);

void cr_victim_fail(const char *file, int line, const char *cond, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
__attribute__((noreturn)) void cr_victim_abort(int code, const char *file, int line,
					       const char *cond, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

/* Verification failure: reported in victim.out, the victim will exit 1. */
#define CR_CHECK(cond, fmt, ...)							\
	do {										\
		if (!(cond))								\
			cr_victim_fail(__FILE__, __LINE__, #cond, fmt, ##__VA_ARGS__);	\
	} while (0)
/* Set-up failure before ready: exit 2 (with errno text). */
#define CR_SETUP(cond, fmt, ...)							\
	do {										\
		if (!(cond))								\
			cr_victim_abort(2, __FILE__, __LINE__, #cond, fmt, ##__VA_ARGS__); \
	} while (0)
/* Missing feature, before ready: the case is skipped with this reason. */
#define CR_VICTIM_SKIP(fmt, ...) cr_victim_abort(4, __FILE__, __LINE__, "skip", fmt, ##__VA_ARGS__)

/* Victim helpers that allocate nothing. */
ssize_t cr_read_file(const char *path, char *buf, size_t size);	/* NUL-terminated */
uint64_t cr_hash(const void *p, size_t n);				/* FNV-1a */
/* Value of a "Key:" line of /proc/self/status, copied into buf; 0 or -ENOENT. */
int cr_status_field(const char *status, const char *key, char *buf, size_t size);

#ifdef __x86_64__
/* Register state a victim holds across the dump inside one asm block. */
struct cr_regs {
	uint64_t gpr[7];		/* rbx r9 r10 r12 r13 r14 r15 */
	uint8_t vec[16][32];		/* ymm0-15 (xmm0-15: the low 16 bytes without AVX) */
	uint32_t mxcsr;
	uint16_t fcw;			/* x87 control word */
	uint8_t st[3][10];		/* st0..st2: fldl2t, fld1, fldpi under fcw */
};

/* Fills in with distinct values (seeded) and computes the x87 values the asm will load. */
void cr_regs_init(struct cr_regs *in, unsigned seed);
/* The x87 values (st) the asm leaves under r->fcw: fldpi, fld1, fldl2t. For a caller that
 * changes fcw after cr_regs_init(). */
void cr_regs_x87(struct cr_regs *r);
/* Loads in into the registers, says so from inside the asm, spins on cr_verify_requested
 * without touching them, then stores them into out. Saying so: with arrived, a `lock incl`
 * of *arrived (any thread, any number of them); without (NULL), the victim's ready byte is
 * written and the pipe closed (the main thread, once). */
void cr_regs_hold(const struct cr_regs *in, struct cr_regs *out, bool avx, uint32_t *arrived);
/* cr_regs_hold(in, out, avx, NULL). */
void cr_regs_wait(const struct cr_regs *in, struct cr_regs *out, bool avx);
/* CR_CHECKs out against in; returns the number of mismatches. */
int cr_regs_compare(const struct cr_regs *in, const struct cr_regs *out, bool avx);
bool cr_cpu_has_avx(void);
#endif

#endif /* SELFTESTS_CR_H */
