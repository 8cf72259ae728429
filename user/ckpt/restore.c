// SPDX-License-Identifier: MIT
#define LOG_PREFIX "restore: "
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <linux/futex.h>
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/rseq.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "blob.h"
#include "ckpt.h"
#include "image.h"
#include "infect.h"
#include "log.h"
#include "netlock.h"
#include "proc.h"
#include "pstree.h"
#include "restore.h"
#include "restorer_abi.h"

#define RESTORE_WAIT_MS 120000

static int load_task(struct rst_ctx *ctx, struct rst_task *t)
{
	int err;

	err = img_load_one(ctx->dirfd, IMG_CORE, t->pid, (void **)&t->core);
	if (!err)
		err = img_load_one(ctx->dirfd, IMG_MM, t->pid, (void **)&t->mm);
	if (!err) {
		/* chain_resolve takes a missing level-0 pagemap as no pages; a dump always has one. */
		char name[64];
		img_name(IMG_PAGEMAP, t->pid, name, sizeof(name));
		if (faccessat(ctx->dirfd, name, F_OK, 0) < 0) {
			err = -errno;
			if (err == -ENOENT)
				pr_err("image %s is missing", name);
			else
				pr_perror("cannot access %s", name);
		}
	}
	/* A fixup's parent images are those of the frozen trees, resolved already. */
	const struct rst_task *o = NULL;
	for (size_t i = 0; ctx->prev && i < ctx->prev->nr_tasks && !o; i++)
		if (ctx->prev->tasks[i].pid == t->pid && !ctx->prev->tasks[i].zombie)
			o = &ctx->prev->tasks[i];
	if (!err && o && ctx->chain.n > 1)
		err = chain_resolve_on(&ctx->chain, t->pid, o->srcs, o->nr_srcs, &t->srcs, &t->nr_srcs);
	else if (!err)
		err = chain_resolve(&ctx->chain, t->pid, &t->srcs, &t->nr_srcs);
	if (!err)
		err = img_load_all(ctx->dirfd, IMG_FDINFO, t->pid, true, (void ***)&t->fdinfo, &t->nr_fdinfo);
	if (err)
		return err;
	if (t->core->n_threads != t->nr_threads) {
		char name[64];
		img_name(IMG_CORE, t->pid, name, sizeof(name));
		return img_bad_at(name, 0, "threads", "%zu threads, pstree.img lists %zu",
				  t->core->n_threads, t->nr_threads);
	}
	for (size_t k = 0; k < t->nr_threads; k++) {
		if (t->core->threads[k]->tid != (uint32_t)t->threads[k].tid) {
			char name[64];
			img_name(IMG_CORE, t->pid, name, sizeof(name));
			return img_bad_at(name, 0, "threads.tid", "thread %zu is %u, pstree.img says %d",
					  k, t->core->threads[k]->tid, t->threads[k].tid);
		}
	}
	t->exit_signal = t->core->task->has_exit_signal ? (int)t->core->task->exit_signal : SIGCHLD;
	if (t->exit_signal < 0 || t->exit_signal > 64) {
		char name[64];
		img_name(IMG_CORE, t->pid, name, sizeof(name));
		return img_bad_at(name, 0, "task.exit_signal", "%d is not a signal", t->exit_signal);
	}
	t->stop_signal = t->core->task->has_stop_signal ? (int)t->core->task->stop_signal : 0;
	t->fd_base = 0;
	for (size_t i = 0; i < t->nr_fdinfo; i++)
		if ((int)t->fdinfo[i]->fd >= t->fd_base)
			t->fd_base = t->fdinfo[i]->fd + 1;
	return 0;
}

/*
 * Group the task indexes by parent into ctx->children: task i's children
 * are children[first_child .. first_child + nr_children). Tasks are in
 * pstree order (pstree_check: every parent before its children), so a
 * counting sort taken in index order keeps each group in dumped order,
 * which is the order fork_children() must create them in.
 */
static int index_children(struct rst_ctx *ctx)
{
	size_t next = 0;

	ctx->children = calloc(ctx->nr_tasks, sizeof(*ctx->children));
	if (!ctx->children)
		return -ENOMEM;
	for (size_t i = 0; i < ctx->nr_tasks; i++)
		if (ctx->tasks[i].parent >= 0)
			ctx->tasks[ctx->tasks[i].parent].nr_children++;
	for (size_t i = 0; i < ctx->nr_tasks; i++) {
		ctx->tasks[i].first_child = next;
		next += ctx->tasks[i].nr_children;
		ctx->tasks[i].nr_children = 0;
	}
	for (size_t i = 0; i < ctx->nr_tasks; i++) {
		if (ctx->tasks[i].parent < 0)
			continue;
		struct rst_task *p = &ctx->tasks[ctx->tasks[i].parent];
		ctx->children[p->first_child + p->nr_children++] = i;
	}
	return 0;
}

/* Where a thread is, for looking it up by TID (ctx->tids). */
struct rst_tid {
	pid_t tid;
	struct rst_task *task;
	struct rst_thread *thread;
};

static int cmp_tid(const void *a, const void *b)
{
	pid_t x = ((const struct rst_tid *)a)->tid, y = ((const struct rst_tid *)b)->tid;

	return (x > y) - (x < y);
}

/*
 * ctx->tids: every thread of the tasks that are not zombies (these have
 * no restorer to wait for), sorted by TID for find_thread(). TIDs are
 * unique (load_images checks), so a lookup finds at most one.
 */
static int index_threads(struct rst_ctx *ctx)
{
	size_t n = 0;

	for (size_t i = 0; i < ctx->nr_tasks; i++)
		if (!ctx->tasks[i].zombie)
			n += ctx->tasks[i].nr_threads;
	ctx->tids = calloc(n ? n : 1, sizeof(*ctx->tids));
	if (!ctx->tids)
		return -ENOMEM;
	for (size_t i = 0; i < ctx->nr_tasks; i++) {
		struct rst_task *t = &ctx->tasks[i];
		for (size_t k = 0; k < t->nr_threads && !t->zombie; k++)
			ctx->tids[ctx->nr_tids++] = (struct rst_tid){ t->threads[k].tid, t, &t->threads[k] };
	}
	qsort(ctx->tids, ctx->nr_tids, sizeof(*ctx->tids), cmp_tid);
	return 0;
}

int restore_load_images(struct rst_ctx *ctx)
{
	PstreeEntry **tree;
	size_t nr_tree;
	struct utsname u;
	int err;

	err = img_load_one(ctx->dirfd, IMG_INVENTORY, 0, (void **)&ctx->inv);
	if (err) {
		if (err == -ENOENT)
			pr_err("'%s' holds no complete dump (inventory.img is missing)", ctx->opts->dir);
		return err;
	}
	uname(&u);
	if (strcmp(ctx->inv->machine, u.machine)) {
		pr_err("the images are from a %s machine, this is %s", ctx->inv->machine, u.machine);
		return -EINVAL;
	}
	/* Held frozen, such a round is only a step: the next one brings what changed meanwhile. */
	if (ctx->inv->pages_after_thaw && !ctx->frozen_round && !ctx->prev) {
		pr_err("the pages in '%s' were copied while the tree ran (a --leave-running round of an incremental dump); restore a later round taken without --leave-running",
		       ctx->opts->dir);
		return -EINVAL;
	}
	/*
	 * The chain of parent images (just this directory for a full dump) is
	 * checked whole here, before any task exists; each task's pages are
	 * resolved through it in load_task().
	 */
	int fd = fcntl(ctx->dirfd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0) {
		err = -errno;
		pr_perror("cannot duplicate the fd of '%s'", ctx->opts->dir);
		return err;
	}
	err = chain_open(fd, ctx->opts->dir, &ctx->chain);
	if (err)
		return err;
	if (ctx->chain.n > 1)
		pr_info("'%s' is an incremental dump: %zu levels of images down to '%s'",
			ctx->opts->dir, ctx->chain.n, ctx->chain.paths[ctx->chain.n - 1]);
	err = img_load_all(ctx->dirfd, IMG_PSTREE, 0, true, (void ***)&tree, &nr_tree);
	if (err)
		return err;
	if (!nr_tree) {
		pr_err("image pstree.img: no task");
		free(tree);
		return -EINVAL;
	}
	ctx->tasks = calloc(nr_tree, sizeof(*ctx->tasks));
	if (!ctx->tasks) {
		img_free_all(IMG_PSTREE, (void **)tree, nr_tree);
		return -ENOMEM;
	}
	/* One bit per possible PID (the codec bounds them): duplicate TIDs in O(n). */
	uint8_t *seen = calloc((1u << 22) / 8, 1);
	struct pstree_node *nodes = calloc(nr_tree, sizeof(*nodes));
	if (!seen || !nodes)
		err = -ENOMEM;
	for (size_t i = 0; i < nr_tree && !err; i++) {
		PstreeEntry *e = tree[i];
		struct rst_task *t = &ctx->tasks[ctx->nr_tasks];
		for (size_t k = 0; k < e->n_threads && !err; k++) {
			uint32_t tid = e->threads[k];
			if (seen[tid / 8] & (1u << (tid % 8)))
				err = img_bad_at("pstree.img", i, "threads", "TID %u is listed twice", tid);
			seen[tid / 8] |= 1u << (tid % 8);
		}
		if (err)
			break;
		if (e->has_zombie_status && !e->ppid) {
			err = img_bad_at("pstree.img", i, "zombie_status", "root %u cannot be a zombie",
					 e->pid);
			break;
		}
		t->threads = calloc(e->n_threads, sizeof(*t->threads));
		if (!t->threads) {
			err = -ENOMEM;
			break;
		}
		for (size_t k = 0; k < e->n_threads; k++)
			t->threads[k].tid = e->threads[k];
		t->nr_threads = e->n_threads;
		t->pid = e->pid;
		t->ppid = e->ppid;
		t->pgid = e->pgid;
		t->sid = e->sid;
		t->zombie = e->has_zombie_status;
		t->zombie_status = e->zombie_status;
		snprintf(t->comm, sizeof(t->comm), "%s", e->comm ? e->comm : "");
		nodes[i] = (struct pstree_node){ .pid = e->pid, .ppid = e->ppid, .pgid = e->pgid,
						 .sid = e->sid, .zombie = t->zombie };
		ctx->nr_tasks++;
	}
	if (!err) {
		struct pstree_err pe;
		err = pstree_check(nodes, ctx->nr_tasks, true, &pe);
		if (err == -EINVAL)
			err = img_bad_at("pstree.img", pe.idx, pe.field, "%s", pe.msg);
	}
	for (size_t i = 0; i < ctx->nr_tasks && !err; i++) {
		struct rst_task *t = &ctx->tasks[i];
		t->parent = nodes[i].parent;
		t->early = nodes[i].early;
		t->sid_outside = nodes[i].sid_outside;
		t->pgid_outside = nodes[i].pgid_outside;
	}
	free(nodes);
	free(seen);
	img_free_all(IMG_PSTREE, (void **)tree, nr_tree);
	if (!err)
		err = index_children(ctx);
	if (!err)
		err = index_threads(ctx);
	if (err)
		return err;
	err = img_load_all(ctx->dirfd, IMG_FILES, 0, true, (void ***)&ctx->files, &ctx->nr_files);
	if (!err)
		err = img_load_all(ctx->dirfd, IMG_PIPES_DATA, 0, false, (void ***)&ctx->pipes, &ctx->nr_pipes);
	if (err)
		return err;
	for (size_t i = 0; i < ctx->nr_files; i++)
		if (ctx->files[i]->id != i)
			return img_bad_at("files.img", i, "id", "%u at index %zu", ctx->files[i]->id, i);
	ctx->file_fds = malloc((ctx->nr_files + 1) * sizeof(int));
	if (!ctx->file_fds)
		return -ENOMEM;
	for (size_t i = 0; i < ctx->nr_files; i++)
		ctx->file_fds[i] = -1;
	for (size_t i = 0; i < ctx->nr_tasks && !err; i++)
		if (!ctx->tasks[i].zombie)
			err = load_task(ctx, &ctx->tasks[i]);
	return err;
}

/*
 * Tasks are created by the engine (roots) or by their restored parent,
 * each running task_main() in a copy of the engine, in three phases the
 * engine drives through this page (MAP_SHARED, inherited by every new
 * task until its restorer unmaps everything):
 *   CREATE  fork the children (a session leader forks those that stay in
 *           its old session first, then calls setsid), lead own group;
 *   GROUPS  every group now has its leader: join the recorded group, and
 *           a task that is to be a zombie exits with its status;
 *   RUN     (the engine now traces every task) fds, cwd, root, then the
 *           restorer.
 */
enum {
	PHASE_ABORT = -1,
	PHASE_CREATE = 0,
	PHASE_GROUPS = 1,
	PHASE_RUN = 2,
};

#define PHASE_WAIT_MS 30000
#define TASK_WAIT_S 120

struct rst_shared {
	int phase;
	int nr_ready;		/* tasks done with the current phase */
	int failed;		/* PID of the first task that failed, or 0 */
	int __pad;
	pid_t created[];	/* by task index: its PID once forked */
};

static long futex(int *uaddr, int op, int val, const struct timespec *ts)
{
	return syscall(SYS_futex, uaddr, op, val, ts, NULL, 0);
}

/* In a new task: the failure is logged already; tell the engine and go. */
static void __attribute__((noreturn)) task_fail(struct rst_ctx *ctx, struct rst_task *t)
{
	int zero = 0;

	__atomic_compare_exchange_n(&ctx->shm->failed, &zero, t->pid, false, __ATOMIC_SEQ_CST,
				    __ATOMIC_SEQ_CST);
	futex(&ctx->shm->nr_ready, FUTEX_WAKE, INT_MAX, NULL);
	_exit(1);
}

/* In a new task: report this phase done and wait for the engine's next. */
static void task_next_phase(struct rst_ctx *ctx, int want)
{
	struct rst_shared *s = ctx->shm;

	__atomic_add_fetch(&s->nr_ready, 1, __ATOMIC_SEQ_CST);
	futex(&s->nr_ready, FUTEX_WAKE, INT_MAX, NULL);
	for (int i = 0;; i++) {
		int ph = __atomic_load_n(&s->phase, __ATOMIC_SEQ_CST);
		if (ph == PHASE_ABORT || i == TASK_WAIT_S)
			_exit(1);
		if (ph >= want)
			return;
		struct timespec ts = { 1, 0 };
		futex(&s->phase, FUTEX_WAIT, ph, &ts);
	}
}

static void __attribute__((noreturn)) task_main(struct rst_ctx *ctx, size_t idx);

/* clone3 with the task's PID, from the engine (roots) or its parent. */
static int fork_task(struct rst_ctx *ctx, size_t idx)
{
	struct rst_task *t = &ctx->tasks[idx];
	struct clone_args ca = { .exit_signal = t->zombie ? SIGCHLD : t->exit_signal };
	pid_t set_tid = t->pid;

	ca.set_tid = (uint64_t)&set_tid;
	ca.set_tid_size = 1;
	pid_t pid = syscall(SYS_clone3, &ca, sizeof(ca));
	if (pid == 0)
		task_main(ctx, idx);
	if (pid < 0) {
		int err = -errno;
		if (errno == EEXIST)
			pr_err("PID %d is already in use (by a task, or as the process group or session ID of one); cannot restore the task with its PID",
			       t->pid);
		else
			pr_perror("cannot create task %d (clone3 with set_tid)", t->pid);
		return err;
	}
	__atomic_store_n(&ctx->shm->created[idx], pid, __ATOMIC_SEQ_CST);
	return 0;
}

/* Fork task idx's children that come before (early) or after its setsid, in dumped order. */
static int fork_children(struct rst_ctx *ctx, size_t idx, bool early)
{
	const struct rst_task *t = &ctx->tasks[idx];

	for (size_t j = 0; j < t->nr_children; j++) {
		size_t c = ctx->children[t->first_child + j];
		if (ctx->tasks[c].early != early)
			continue;
		int err = fork_task(ctx, c);
		if (err)
			return err;
	}
	return 0;
}

/* Exit the way the dumped zombie did; its parent never reaps it here. */
static void __attribute__((noreturn)) become_zombie(struct rst_task *t)
{
	int st = t->zombie_status;

	if (t->comm[0])
		prctl(PR_SET_NAME, t->comm);
	if (WIFSIGNALED(st)) {
		struct rlimit none = { 0, 0 };
		struct sigaction dfl = { .sa_handler = SIG_DFL };
		sigset_t set;
		int sig = WTERMSIG(st);

		/* No core file: the dumped one was written already, if any. */
		setrlimit(RLIMIT_CORE, &none);
		sigaction(sig, &dfl, NULL);
		sigemptyset(&set);
		sigaddset(&set, sig);
		sigprocmask(SIG_UNBLOCK, &set, NULL);
		kill(getpid(), sig);
		/* A signal whose default is not to kill: the status was SIGKILL's. */
		kill(getpid(), SIGKILL);
	}
	_exit(WEXITSTATUS(st));
}

/* Everything in a new task, from the engine's copy to the restorer. */
static void __attribute__((noreturn)) task_main(struct rst_ctx *ctx, size_t idx)
{
	struct rst_task *t = &ctx->tasks[idx];
	const TaskCoreEntry *tc;
	sigset_t all;

	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	/* Until the engine traces us (EXITKILL), a dead parent takes us along. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	/* Memory the children share with us copy-on-write, before they are forked. */
	if (!t->zombie && restore_mm_premap(t))
		task_fail(ctx, t);

	if (t->sid == t->pid) {
		if (fork_children(ctx, idx, true))
			task_fail(ctx, t);
		if (setsid() < 0) {
			pr_perror("cannot make %d a session leader", t->pid);
			task_fail(ctx, t);
		}
	} else if (t->pgid == t->pid && setpgid(0, 0) < 0) {
		pr_perror("cannot make %d a process group leader", t->pid);
		task_fail(ctx, t);
	}
	if (fork_children(ctx, idx, false))
		task_fail(ctx, t);
	task_next_phase(ctx, PHASE_GROUPS);

	if (t->pgid != t->pid) {
		pid_t pg = t->pgid_outside ? ctx->own_pgid : t->pgid;
		if (getpgrp() != pg && setpgid(0, pg) < 0) {
			pr_perror("cannot put %d into process group %d", t->pid, pg);
			task_fail(ctx, t);
		}
	}
	if (t->zombie) {
		__atomic_add_fetch(&ctx->shm->nr_ready, 1, __ATOMIC_SEQ_CST);
		futex(&ctx->shm->nr_ready, FUTEX_WAKE, INT_MAX, NULL);
		become_zombie(t);
	}
	task_next_phase(ctx, PHASE_RUN);

	tc = t->core->task;
	if (restore_files_child(t))
		goto fail;
	if (chdir(tc->cwd) < 0) {
		pr_perror("cannot change to the working directory '%s' of %d", tc->cwd, t->pid);
		goto fail;
	}
	if (strcmp(tc->root, "/") && chroot(tc->root) < 0) {
		pr_perror("cannot change root to '%s' for %d", tc->root, t->pid);
		goto fail;
	}
	umask(tc->umask);
	if (personality(tc->personality) < 0) {
		pr_perror("cannot set personality %#x for %d", tc->personality, t->pid);
		goto fail;
	}
	/*
	 * glibc registered an rseq area in our TLS, which the restorer unmaps;
	 * the kernel would then fault writing the CPU number into it on the
	 * next return to user space. The registered length may be the struct
	 * size or glibc's feature size, whichever the kernel recorded.
	 */
	if (__rseq_size) {
		void *area = (char *)__builtin_thread_pointer() + __rseq_offset;
		if (syscall(SYS_rseq, area, 32, RSEQ_FLAG_UNREGISTER, RSEQ_SIG) &&
		    syscall(SYS_rseq, area, __rseq_size, RSEQ_FLAG_UNREGISTER, RSEQ_SIG)) {
			pr_perror("cannot unregister rseq before the restorer runs");
			goto fail;
		}
	}
	if (restore_mm_child(t))
		goto fail;
	uint64_t entry = t->region + blob_sym_off(BLOB_RESTORER, BLOB_SYM_ENTRY);
	uint64_t args = t->region + blob_map_size(BLOB_RESTORER);
	__asm__ volatile("movq %0, %%rsp\n\t"
			 "movq %1, %%rdi\n\t"
			 "jmpq *%2\n\t"
			 :
			 : "r"(t->stack_top), "r"(args), "r"(entry)
			 : "memory");
	__builtin_unreachable();
fail:
	/* Traced with EXITKILL by now: the engine sees the exit. */
	_exit(1);
}

int restore_step_syscall(pid_t pid, const char *what)
{
	int status, err;

	if (ptrace(PTRACE_SYSCALL, pid, NULL, NULL) < 0) {
		err = -errno;
		pr_perror("cannot resume %d (%s)", pid, what);
		return err;
	}
	err = infect_wait(pid, &status, RESTORE_WAIT_MS);
	if (err) {
		pr_errno(err, "waiting for %d (%s)", pid, what);
		return err;
	}
	if (!WIFSTOPPED(status) || WSTOPSIG(status) != (SIGTRAP | 0x80)) {
		struct user_regs_struct regs = {};
		siginfo_t si = {};
		char buf[64];
		if (WIFSTOPPED(status)) {
			ptrace(PTRACE_GETREGS, pid, NULL, &regs);
			ptrace(PTRACE_GETSIGINFO, pid, NULL, &si);
		}
		pr_err("task %d %s (%s) at ip %#llx, signo %d code %d addr %p", pid,
		       infect_status_str(status, buf, sizeof(buf)), what, (unsigned long long)regs.rip,
		       si.si_signo, si.si_code, si.si_addr);
		return -EIO;
	}
	return 0;
}

/*
 * A thread stopped on the restorer's int3, done: let it run rt_sigreturn
 * (the kernel loads registers, FPU state, mask and sigaltstack from its
 * frame) and stop right after it. The leader first puts back the SIGTRAP
 * action (one rt_sigaction), which the traps of all threads reset.
 */
static int step_sigreturn(pid_t tid, struct user_regs_struct *ret_regs, uint64_t *ret_mask)
{
	struct user_regs_struct regs;
	uint64_t all = ~0ull;
	int err;

	for (int i = 0;; i++) {
		err = restore_step_syscall(tid, "entering rt_sigreturn");
		if (err)
			return err;
		if (ptrace(PTRACE_GETREGS, tid, NULL, &regs) < 0) {
			err = -errno;
			pr_perror("cannot get registers of %d", tid);
			return err;
		}
		if (regs.orig_rax == SYS_rt_sigreturn)
			break;
		if (i == 1) {
			pr_err("task %d made system call %lld instead of rt_sigreturn", tid,
			       (long long)regs.orig_rax);
			return -EIO;
		}
		err = restore_step_syscall(tid, "restoring the SIGTRAP action");
		if (err)
			return err;
	}
	err = restore_step_syscall(tid, "leaving rt_sigreturn");
	if (err)
		return err;
	if (ptrace(PTRACE_GETREGS, tid, NULL, ret_regs) < 0 ||
	    ptrace(PTRACE_GETSIGMASK, tid, sizeof(*ret_mask), ret_mask) < 0 ||
	    ptrace(PTRACE_SETSIGMASK, tid, sizeof(all), &all) < 0) {
		err = -errno;
		pr_perror("cannot read the restored state of %d", tid);
		return err;
	}
	return 0;
}

/*
 * Every thread of the process is on its final int3. Take each through
 * rt_sigreturn, then remove the restorer region through the leader's own
 * syscall instruction in that region, stopping at the exit of that munmap
 * before it can return into code that is gone, and put back the registers
 * and masks rt_sigreturn gave each thread.
 */
int restore_finish_task(struct rst_task *t)
{
	size_t n = t->nr_threads;
	struct user_regs_struct final[n], regs;
	uint64_t mask[n];
	pid_t pid = t->pid;
	int err;

	/* The leader last: its rt_sigaction of SIGTRAP comes after every trap. */
	for (size_t k = n; k-- > 0;) {
		err = step_sigreturn(t->threads[k].tid, &final[k], &mask[k]);
		if (err)
			return err;
	}
	regs = final[0];
	regs.rip = t->region + blob_sym_off(BLOB_RESTORER, BLOB_SYM_SYSCALL);
	regs.rax = SYS_munmap;
	regs.orig_rax = -1;
	regs.rdi = t->region;
	regs.rsi = t->region_len;
	if (ptrace(PTRACE_SETREGS, pid, NULL, &regs) < 0) {
		err = -errno;
		pr_perror("cannot set registers of %d", pid);
		return err;
	}
	err = restore_step_syscall(pid, "entering munmap of the restorer");
	if (!err)
		err = restore_step_syscall(pid, "leaving munmap of the restorer");
	if (err)
		return err;
	if (ptrace(PTRACE_GETREGS, pid, NULL, &regs) < 0 || regs.rax != 0) {
		pr_err("cannot remove the restorer from %d: %s", pid, strerror(-(long)regs.rax));
		return -EIO;
	}
	for (size_t k = 0; k < n; k++) {
		pid_t tid = t->threads[k].tid;
		if (ptrace(PTRACE_SETREGS, tid, NULL, &final[k]) < 0 ||
		    ptrace(PTRACE_SETSIGMASK, tid, sizeof(mask[k]), &mask[k]) < 0) {
			err = -errno;
			pr_perror("cannot set the final state of %d", tid);
			return err;
		}
	}
	return 0;
}

/* The restorer's verdict for every thread of the task. */
static int check_restorer_status(struct rst_task *t, bool frozen)
{
	/* Frozen (keep_frozen): only the leader ran, and stopped with its memory in place. */
	size_t n = frozen ? 1 : t->nr_threads;
	int want = frozen ? RESTORER_STATUS_FROZEN : RESTORER_STATUS_DONE;
	struct restorer_args a;
	struct restorer_thread th[n];
	uint64_t args = t->region + blob_map_size(BLOB_RESTORER);
	struct iovec l[2] = { { &a, sizeof(a) }, { th, sizeof(th) } };
	struct iovec r[2] = { { (void *)args, sizeof(a) },
			      { (void *)(args + ((struct restorer_args *)t->args)->threads_off), sizeof(th) } };

	if (process_vm_readv(t->pid, l, 2, r, 2, 0) != (ssize_t)(sizeof(a) + sizeof(th))) {
		int err = -errno;
		pr_perror("cannot read the restorer status of %d", t->pid);
		return err;
	}
	/*
	 * Each failed thread has its -errno in its status; only the first
	 * (a.err_tid) got to write errmsg, the others' messages are in the
	 * restorer log. A thread still running stopped for another's failure.
	 */
	a.errmsg[sizeof(a.errmsg) - 1] = 0;
	int err = 0;
	for (size_t k = 0; k < n; k++) {
		if (th[k].status >= 0)
			continue;
		if (th[k].tid == a.err_tid)
			pr_err("restore of %d failed in the restorer (thread %u): %s", t->pid, th[k].tid,
			       a.errmsg);
		else
			pr_err("restore of %d failed in the restorer (thread %u): errno %d, see the restorer log",
			       t->pid, th[k].tid, -th[k].status);
		if (!err || th[k].tid == a.err_tid)
			err = th[k].status;
	}
	if (err)
		return err;
	for (size_t k = 0; k < n; k++) {
		if (th[k].status == want)
			continue;
		pr_err("restore of %d failed in the restorer (thread %u): %s", t->pid, th[k].tid,
		       a.err_tid ? a.errmsg : "stopped unexpectedly");
		return a.status < 0 ? a.status : -EIO;
	}
	return 0;
}

/* The thread tid of a task that is not a zombie, or NULL. */
static struct rst_thread *find_thread(struct rst_ctx *ctx, pid_t tid, struct rst_task **ret_task)
{
	struct rst_tid key = { .tid = tid };
	struct rst_tid *e = bsearch(&key, ctx->tids, ctx->nr_tids, sizeof(*ctx->tids), cmp_tid);

	if (!e)
		return NULL;
	*ret_task = e->task;
	return e->thread;
}

/*
 * Let every restorer run until each thread of each task sits on its
 * final int3. Threads appear through PTRACE_O_TRACECLONE: the leader
 * stops for the clone event, the new thread with PTRACE_EVENT_STOP; both
 * just go on. Anything else is a failed restore.
 */
int restore_run_restorers(struct rst_ctx *ctx)
{
	size_t left = 0;
	uint64_t bytes = 0;

	for (size_t i = 0; i < ctx->nr_tasks; i++) {
		if (!ctx->tasks[i].zombie) {
			ctx->tasks[i].threads[0].at_trap = false;
			left += ctx->frozen_round ? 1 : ctx->tasks[i].nr_threads;
			bytes += ctx->tasks[i].pages_bytes;
		}
	}
	/* The restorers read every page first: allow for a slow disk (20 MiB/s). */
	int wait_ms = RESTORE_WAIT_MS + (int)(bytes / (20ull << 20) * 1000);
	while (left) {
		struct rst_task *t;
		char buf[64];
		int status;
		pid_t tid;
		int err = infect_wait_any(&tid, &status, wait_ms);
		if (err) {
			pr_errno(err, "waiting for the restorers (%zu thread(s) not done)", left);
			return err;
		}
		struct rst_thread *th = find_thread(ctx, tid, &t);
		if (!th) {
			pr_warn("unexpected %d: %s, ignoring", tid, infect_status_str(status, buf, sizeof(buf)));
			continue;
		}
		if (!WIFSTOPPED(status)) {
			pr_err("restore of %d failed: thread %d %s", t->pid, tid,
			       infect_status_str(status, buf, sizeof(buf)));
			return -ECHILD;
		}
		int event = status >> 16, sig = WSTOPSIG(status);
		if (event == PTRACE_EVENT_CLONE || event == PTRACE_EVENT_STOP ||
		    (event == 0 && sig == SIGSTOP)) {
			if (ptrace(PTRACE_CONT, tid, NULL, NULL) < 0) {
				err = -errno;
				pr_perror("cannot resume %d", tid);
				return err;
			}
			continue;
		}
		if (event == 0 && sig == SIGTRAP && !th->at_trap) {
			th->at_trap = true;
			left--;
			continue;
		}
		struct user_regs_struct regs = {};
		siginfo_t si = {};
		ptrace(PTRACE_GETREGS, tid, NULL, &regs);
		ptrace(PTRACE_GETSIGINFO, tid, NULL, &si);
		pr_err("restore of %d failed: thread %d %s in the restorer at ip %#llx, addr %p", t->pid,
		       tid, infect_status_str(status, buf, sizeof(buf)), (unsigned long long)regs.rip,
		       si.si_addr);
		return -EIO;
	}
	for (size_t i = 0; i < ctx->nr_tasks; i++) {
		if (ctx->tasks[i].zombie)
			continue;
		int err = check_restorer_status(&ctx->tasks[i], ctx->frozen_round);
		if (err)
			return err;
	}
	return 0;
}

static void set_phase(struct rst_ctx *ctx, int phase)
{
	__atomic_store_n(&ctx->shm->nr_ready, 0, __ATOMIC_SEQ_CST);
	__atomic_store_n(&ctx->shm->phase, phase, __ATOMIC_SEQ_CST);
	futex(&ctx->shm->phase, FUTEX_WAKE, INT_MAX, NULL);
}

/* Wait until every task reported the phase done (or one failed). */
static int wait_phase(struct rst_ctx *ctx, const char *what)
{
	struct rst_shared *s = ctx->shm;
	struct timespec start, now;

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		int ready = __atomic_load_n(&s->nr_ready, __ATOMIC_SEQ_CST);
		int failed = __atomic_load_n(&s->failed, __ATOMIC_SEQ_CST);
		if (failed) {
			pr_err("restore failed in task %d while %s", failed, what);
			return -EIO;
		}
		if (ready >= (int)ctx->nr_tasks)
			return 0;
		clock_gettime(CLOCK_MONOTONIC, &now);
		long ms = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
		if (ms > PHASE_WAIT_MS) {
			pr_err("only %d of %zu tasks finished %s within %d s", ready, ctx->nr_tasks, what,
			       PHASE_WAIT_MS / 1000);
			return -ETIMEDOUT;
		}
		/* A root that died never reports; its children die with it (PDEATHSIG). */
		for (size_t i = 0; i < ctx->nr_tasks; i++) {
			int status;
			pid_t pid = s->created[i];
			if (ctx->tasks[i].ppid || pid <= 0)
				continue;
			if (waitpid(pid, &status, WNOHANG | __WALL) == pid) {
				char buf[64];
				pr_err("task %d %s while %s", pid, infect_status_str(status, buf, sizeof(buf)),
				       what);
				s->created[i] = 0;
				return -ECHILD;
			}
		}
		struct timespec ts = { 0, 50 * 1000 * 1000 };
		futex(&s->nr_ready, FUTEX_WAIT, ready, &ts);
	}
}

/* The zombies-to-be exited; their parents must see them before they go on. */
static int wait_zombies(struct rst_ctx *ctx)
{
	for (size_t i = 0; i < ctx->nr_tasks; i++) {
		struct rst_task *t = &ctx->tasks[i];
		if (!t->zombie)
			continue;
		int fd = syscall(SYS_pidfd_open, ctx->shm->created[i], 0);
		if (fd < 0) {
			if (errno == ESRCH)
				continue;
			pr_perror("cannot watch zombie %d", t->pid);
			return -errno;
		}
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int r = poll(&pfd, 1, PHASE_WAIT_MS);
		close(fd);
		if (r != 1) {
			pr_err("task %d did not exit to become a zombie", t->pid);
			return -ETIMEDOUT;
		}
	}
	return 0;
}

/* Trace every task (a failure of ours kills them), then let them run. */
static int seize_tasks(struct rst_ctx *ctx)
{
	for (size_t i = 0; i < ctx->nr_tasks; i++) {
		struct rst_task *t = &ctx->tasks[i];
		if (t->zombie)
			continue;
		if (ptrace(PTRACE_SEIZE, t->pid, NULL,
			   PTRACE_O_EXITKILL | PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACECLONE) < 0) {
			int err = -errno;
			pr_perror("cannot trace the new task %d", t->pid);
			return err;
		}
	}
	return 0;
}

/* Build every tree and run every restorer up to its last stop. */
int restore_build(struct rst_ctx *ctx)
{
	int err;

	ctx->shm_len = sizeof(struct rst_shared) + ctx->nr_tasks * sizeof(pid_t);
	ctx->shm = mmap(NULL, ctx->shm_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (ctx->shm == MAP_FAILED) {
		ctx->shm = NULL;
		pr_perror("cannot map the page shared with the new tasks");
		return -errno;
	}
	for (size_t i = 0; i < ctx->nr_tasks; i++) {
		struct rst_task *t = &ctx->tasks[i];
		if (kill(t->pid, 0) == 0 || errno != ESRCH) {
			pr_err("PID %d is already in use; cannot restore the task with its PID", t->pid);
			return -EEXIST;
		}
	}
	for (size_t i = 0; i < ctx->nr_tasks; i++) {
		if (ctx->tasks[i].ppid)
			continue;
		err = fork_task(ctx, i);
		if (err)
			return err;
	}
	err = wait_phase(ctx, "creating the tree");
	if (!err && fault_injected("restore-tree"))
		err = -EIO;
	if (err)
		return err;
	set_phase(ctx, PHASE_GROUPS);
	err = wait_phase(ctx, "joining process groups");
	if (!err)
		err = wait_zombies(ctx);
	if (!err)
		err = seize_tasks(ctx);
	if (!err && fault_injected("restore-seized"))
		err = -EIO;
	if (err)
		return err;
	set_phase(ctx, PHASE_RUN);
	err = restore_run_restorers(ctx);
	if (!err && fault_injected("restore-restorers"))
		err = -EIO;
	for (size_t i = 0; i < ctx->nr_tasks && !err && !ctx->frozen_round; i++)
		if (!ctx->tasks[i].zombie)
			err = restore_finish_task(&ctx->tasks[i]);
	return err;
}

/*
 * Kill whatever was created. ckpt is a child subreaper during the
 * restore, so the orphans of killed tasks come to it to be reaped.
 */
void restore_kill_tasks(struct rst_ctx *ctx)
{
	int status;
	pid_t pid;

	if (!ctx->shm)
		return;
	__atomic_store_n(&ctx->shm->phase, PHASE_ABORT, __ATOMIC_SEQ_CST);
	futex(&ctx->shm->phase, FUTEX_WAKE, INT_MAX, NULL);
	for (size_t i = 0; i < ctx->nr_tasks; i++)
		if (ctx->shm->created[i] > 0)
			kill(ctx->shm->created[i], SIGKILL);
	while (infect_wait_any(&pid, &status, 5000) == 0)
		;
}

int restore_write_pidfile(const char *path, pid_t pid)
{
	char buf[32];
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int n = snprintf(buf, sizeof(buf), "%d", pid);

	if (fd < 0 || write(fd, buf, n) != n) {
		int err = -errno;
		pr_perror("cannot write the pid file '%s'", path);
		if (fd >= 0)
			close(fd);
		return err;
	}
	close(fd);
	return 0;
}

void restore_free_ctx(struct rst_ctx *ctx)
{
	for (size_t i = 0; i < ctx->nr_tasks; i++) {
		struct rst_task *t = &ctx->tasks[i];
		img_free_kind(IMG_CORE, t->core);
		img_free_kind(IMG_MM, t->mm);
		free(t->srcs);
		free(t->level_slots);
		img_free_all(IMG_FDINFO, (void **)t->fdinfo, t->nr_fdinfo);
		for (size_t k = 1; k < t->nr_rfds; k++)
			if (t->rfds[k] >= 0)
				close(t->rfds[k]);
		free(t->rfds);
		free(t->shm_slots);
		free(t->plan);
		free(t->args);
		free(t->threads);
		free(t->premap);
		free(t->premap_fresh);
		if (t->region)
			munmap((void *)t->region, t->region_len);
		if (t->premap_area)
			munmap((void *)t->premap_area, t->premap_area_len);
		if (t->memfd > 0)
			close(t->memfd);
		free(t->regs);
		free(t->vdso_parts);
	}
	free(ctx->tasks);
	free(ctx->children);
	free(ctx->tids);
	restore_files_close(ctx);
	restore_mm_shm_close(ctx);
	free(ctx->file_fds);
	img_free_all(IMG_FILES, (void **)ctx->files, ctx->nr_files);
	img_free_all(IMG_PIPES_DATA, (void **)ctx->pipes, ctx->nr_pipes);
	img_free_kind(IMG_INVENTORY, ctx->inv);
	chain_close(&ctx->chain);
	if (ctx->shm)
		munmap(ctx->shm, ctx->shm_len);
	if (ctx->dirfd >= 0)
		close(ctx->dirfd);
}

/* The signal that stops a restored stopped task: its own if that still stops it. */
static int stop_signal_of(const struct rst_task *t)
{
	const TaskCoreEntry *tc = t->core->task;

	for (size_t s = 0; s < tc->n_sigactions; s++)
		if ((int)tc->sigactions[s]->sig == t->stop_signal &&
		    tc->sigactions[s]->handler != (uint64_t)SIG_DFL)
			return SIGSTOP;
	return t->stop_signal;
}

/* Wait (bounded) for a traced thread's group-stop report. */
static int wait_group_stop(pid_t tid)
{
	int status, err;

	for (int i = 0; i < 8; i++) {
		err = infect_wait(tid, &status, RESTORE_WAIT_MS);
		if (err)
			return err;
		if (!WIFSTOPPED(status))
			return -ECHILD;
		if (status >> 16 == PTRACE_EVENT_STOP)
			return 0;
		/* A signal-delivery stop on the way (the stop signal itself): deliver it. */
		if (ptrace(PTRACE_CONT, tid, NULL, (void *)(long)WSTOPSIG(status)) < 0)
			return -errno;
	}
	return -EAGAIN;
}

/*
 * A task that was stopped is stopped again while still traced, so that it
 * is in its group stop before ckpt returns: the stop signal goes in with
 * the leader's resumption, every thread reports its part of the group stop
 * (a seized tracee shows it as PTRACE_EVENT_STOP), and the detach then
 * leaves the group stopped (__ptrace_unlink re-arms the stop while
 * SIGNAL_STOP_STOPPED holds).
 */
static int stop_again(struct rst_task *t)
{
	int sig = stop_signal_of(t), err = 0;

	if (ptrace(PTRACE_CONT, t->pid, NULL, (void *)(long)sig) < 0)
		return -errno;
	err = wait_group_stop(t->pid);
	for (size_t k = 1; k < t->nr_threads && !err; k++) {
		if (ptrace(PTRACE_CONT, t->threads[k].tid, NULL, NULL) < 0)
			err = -errno;
		else
			err = wait_group_stop(t->threads[k].tid);
	}
	if (err)
		pr_errno(err, "cannot stop %d again with %s", t->pid, strsignal(sig));
	return err;
}

/* After the detach the stop takes hold within moments; wait (bounded) to see it. */
static void wait_stopped(pid_t pid)
{
	for (int i = 0; i < 1000; i++) {
		struct proc_stat st;
		if (proc_parse_stat(pid, &st) || st.state == 'T')
			return;
		/* No event tells a non-parent that a task entered its stop: poll. */
		struct timespec ms = { 0, 1000 * 1000 };
		nanosleep(&ms, NULL);
	}
	pr_warn("task %d is not stopped yet, continuing", pid);
}

/* Past this point the tasks run: nothing may kill them any more. */
void restore_release_tasks(struct rst_ctx *ctx)
{
	for (size_t i = 0; i < ctx->nr_tasks; i++) {
		struct rst_task *t = &ctx->tasks[i];
		if (t->zombie)
			continue;
		if (t->stop_signal && stop_again(t))
			pr_warn("task %d runs although it was stopped at dump time", t->pid);
		for (size_t k = t->nr_threads; k-- > 0;)
			if (ptrace(PTRACE_DETACH, t->threads[k].tid, NULL, NULL) < 0)
				pr_perror("cannot detach from %d", t->threads[k].tid);
		if (t->stop_signal)
			wait_stopped(t->pid);
		pr_info("restored %d%s%s", t->pid, t->nr_threads > 1 ? " with its threads" : "",
			t->stop_signal ? ", stopped" : "");
	}
}

/*
 * The dump's network lock lives on the host that dumped (same boot ID);
 * elsewhere there is none to lift. A lock that cannot be lifted is a
 * warning: the tasks are back, only their peers stay held off.
 */
void restore_unlock_network(const InventoryEntry *inv)
{
	char boot_id[64] = "";

	if (proc_read_file(0, "../sys/kernel/random/boot_id", boot_id, sizeof(boot_id)) > 0)
		boot_id[strcspn(boot_id, "\n")] = 0;
	if (inv->boot_id && strcmp(inv->boot_id, boot_id)) {
		pr_info("the network lock %s is on the host that dumped; nothing to lift here",
			inv->net_lock);
		return;
	}
	if (netlock_unlock(inv->net_lock))
		pr_warn("if that table is still there, peers of the restored TCP connections stay held off until 'nft delete table inet %s'",
			inv->net_lock);
}

int restore_wait_roots(const pid_t *roots, size_t n)
{
	int ret = 0;

	for (size_t i = 0; i < n; i++) {
		int status;
		while (waitpid(roots[i], &status, 0) < 0) {
			if (errno != EINTR) {
				pr_perror("cannot wait for %d", roots[i]);
				status = 1 << 8;
				break;
			}
		}
		if (!i)
			ret = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	}
	return ret;
}

int restore_prepare(struct rst_ctx *ctx)
{
	struct restore_opts *o = ctx->opts;
	int err;

	ctx->own_pgid = getpgrp();
	ctx->own_sid = getsid(0);
	ctx->dirfd = open(o->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (ctx->dirfd < 0) {
		pr_perror("cannot open the image directory '%s'", o->dir);
		return -EBADF;
	}
	err = restore_load_images(ctx);
	for (size_t i = 0; i < ctx->nr_tasks && !err && !o->shell_job; i++) {
		struct rst_task *t = &ctx->tasks[i];
		if (t->sid_outside && (t->parent < 0 || !ctx->tasks[t->parent].sid_outside))
			pr_warn("task %d was in session %d, which is not in the dump; it joins ckpt's session (--shell-job silences this)",
				t->pid, t->sid);
	}
	/* Everything that can be checked is checked before any task exists. */
	if (!err)
		err = restore_mm_shm_prepare(ctx);
	if (!err)
		err = restore_mm_plan_cow(ctx);
	for (size_t i = 0; i < ctx->nr_tasks && !err; i++) {
		if (ctx->tasks[i].zombie)
			continue;
		/* Held frozen, a task gets its fds in the final step, from the last images. */
		if (!ctx->frozen_round)
			err = restore_files_prepare(ctx, &ctx->tasks[i]);
		if (!err)
			err = restore_mm_prepare(ctx, &ctx->tasks[i]);
	}
	return err;
}

static int do_restore(struct restore_opts *o)
{
	struct rst_ctx ctx = { .opts = o, .dirfd = -1 };
	int err, ret = 0;

	err = infect_init();
	if (err)
		return -1;
	/*
	 * The task's fds may sit above our soft fd limit; the new task starts
	 * with our limits (the restorer sets its own last).
	 */
	struct rlimit nofile;
	if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
		nofile.rlim_cur = nofile.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &nofile) < 0)
			pr_warn("cannot raise the fd limit to %llu: %s, ignoring",
				(unsigned long long)nofile.rlim_max, strerror(errno));
	}
	err = restore_prepare(&ctx);
	if (err == -EBADF)
		return -1;
	if (!err && prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
		err = -errno;
		pr_perror("cannot become a child subreaper");
	}
	if (!err)
		err = restore_build(&ctx);
	if (!err && fault_injected("restore-finish"))
		err = -EIO;
	/* The peers reach the restored sockets again, then those leave repair mode. */
	if (!err && ctx.inv->net_lock)
		restore_unlock_network(ctx.inv);
	if (!err)
		err = restore_inet_finish(&ctx);
	if (!err && o->pidfile)
		err = restore_write_pidfile(o->pidfile, ctx.tasks[0].pid);
	if (err) {
		restore_kill_tasks(&ctx);
		prctl(PR_SET_CHILD_SUBREAPER, 0);
		restore_free_ctx(&ctx);
		return -1;
	}
	/* Orphans of the restored trees go where they would have gone. */
	prctl(PR_SET_CHILD_SUBREAPER, 0);
	restore_release_tasks(&ctx);
	opts_release_stop_signals();
	if (!o->detach) {
		pid_t roots[ctx.nr_tasks];
		size_t n = 0;
		for (size_t i = 0; i < ctx.nr_tasks; i++)
			if (!ctx.tasks[i].ppid)
				roots[n++] = ctx.tasks[i].pid;
		ret = restore_wait_roots(roots, n);
	}
	restore_free_ctx(&ctx);
	return ret;
}

int cmd_restore(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "images-dir", required_argument, NULL, 'D' },
		{ "restore-detached", no_argument, NULL, 'd' },
		{ "detach", no_argument, NULL, 'd' },
		{ "pidfile", required_argument, NULL, 'p' },
		{ "shell-job", no_argument, NULL, 'j' },
		{ "keep-frozen", no_argument, NULL, 'K' },
		{ "control", required_argument, NULL, 'C' },
		{ "fixup", required_argument, NULL, 'F' },
		{ "resume", no_argument, NULL, 'R' },
		{ "abort", no_argument, NULL, 'A' },
		{ "verbosity", optional_argument, NULL, 'v' },
		{ "log-file", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	struct restore_opts o = {};
	int opt;

	while ((opt = getopt_long(argc, argv, "D:dp:jv::o:h", lopts, NULL)) != -1) {
		switch (opts_common(opt, optarg)) {
		case 1:
			continue;
		case -1:
			return 2;
		}
		switch (opt) {
		case 'D':
			o.dir = optarg;
			break;
		case 'd':
			o.detach = true;
			break;
		case 'p':
			o.pidfile = optarg;
			break;
		case 'j':
			o.shell_job = true;
			break;
		case 'K':
			o.keep_frozen = true;
			break;
		case 'C':
			o.control = optarg;
			break;
		case 'F':
			o.fixup = optarg;
			break;
		case 'R':
			o.resume = true;
			break;
		case 'A':
			o.abort = true;
			break;
		case 'h':
			printf("usage: ckpt restore -D DIR [-d] [--pidfile FILE] [--shell-job] [-v[N]] [-o LOG]\n"
			       "       ckpt restore -D DIR --keep-frozen --control SOCK [...]\n"
			       "       ckpt restore --fixup DIR [--resume] --control SOCK\n"
			       "       ckpt restore --resume --control SOCK\n"
			       "       ckpt restore --abort --control SOCK\n");
			return 0;
		default:
			return 2;
		}
	}
	bool client = o.fixup || o.resume || o.abort;
	if (optind != argc || (o.keep_frozen && (!o.dir || !o.control || client)) ||
	    (client && (!o.control || o.dir || (o.abort && (o.fixup || o.resume)))) ||
	    (o.control && !o.keep_frozen && !client)) {
		fprintf(stderr, "usage: ckpt restore -D DIR --keep-frozen --control SOCK\n"
				"       ckpt restore (--fixup DIR [--resume] | --resume | --abort) --control SOCK\n");
		return 2;
	}
	if (client)
		return restore_client(&o);
	if (o.keep_frozen)
		return restore_server(&o);
	if (!o.dir) {
		fprintf(stderr, "usage: ckpt restore -D DIR [-d] [--pidfile FILE] [--shell-job]\n");
		return 2;
	}
	/* Dying with tasks half built would leave them to EXITKILL and PDEATHSIG. */
	opts_hold_stop_signals();
	int ret = do_restore(&o);
	return ret < 0 ? 1 : ret;
}
