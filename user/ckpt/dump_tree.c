// SPDX-License-Identifier: MIT
/*
 * Finding and freezing the trees to dump. Each process is frozen (every
 * thread seized and interrupted) before its children are read: a frozen
 * process cannot fork, so its children list is final, and a child that
 * forks meanwhile is caught when the child itself is frozen and read.
 * Only two things still move while the walk goes on: threads of a process
 * being seized (re-listed until a pass finds none new) and children that
 * exit before they are reached (they become zombies, or vanish when their
 * parent reaps automatically).
 */
#define LOG_PREFIX "dump: "
#include <dirent.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "ckpt.h"
#include "dump.h"
#include "log.h"
#include "pstree.h"

#define THREAD_PASSES 16
#define EXIT_WAIT_MS 2000

static int add_task(struct dump_ctx *ctx, pid_t pid, pid_t ppid)
{
	if (ctx->nr_tasks == ctx->cap_tasks) {
		size_t cap = ctx->cap_tasks ? ctx->cap_tasks * 2 : 16;
		struct dump_task *n = realloc(ctx->tasks, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		ctx->tasks = n;
		ctx->cap_tasks = cap;
		/* threads[0] of a task is the task's own leader: it moved too. */
		for (size_t i = 0; i < ctx->nr_tasks; i++)
			if (n[i].threads)
				n[i].threads[0].it = &n[i].it;
	}
	struct dump_task *t = &ctx->tasks[ctx->nr_tasks++];
	memset(t, 0, sizeof(*t));
	t->pages_fd = -1;
	t->pid = pid;
	t->ppid = ppid;
	return 0;
}

static bool has_thread(const struct dump_task *t, pid_t tid)
{
	for (size_t i = 0; i < t->nr_threads; i++)
		if (t->threads[i].it->pid == tid)
			return true;
	return false;
}

/* One pass over /proc/PID/task: seize what is not seized yet. */
static int seize_new_threads(struct dump_task *t, bool *ret_changed)
{
	char path[64];
	struct dirent *de;
	DIR *d;
	int err = 0;

	*ret_changed = false;
	snprintf(path, sizeof(path), "/proc/%d/task", t->pid);
	d = opendir(path);
	if (!d) {
		err = -errno;
		pr_perror("cannot list the threads of %d", t->pid);
		return err;
	}
	while (!err && (de = readdir(d))) {
		pid_t tid = atoi(de->d_name);
		if (tid <= 0 || has_thread(t, tid))
			continue;
		struct dump_thread *n = realloc(t->threads, (t->nr_threads + 1) * sizeof(*n));
		if (!n) {
			err = -ENOMEM;
			break;
		}
		t->threads = n;
		struct dump_thread *th = &t->threads[t->nr_threads];
		memset(th, 0, sizeof(*th));
		th->it = calloc(1, sizeof(*th->it));
		if (!th->it) {
			err = -ENOMEM;
			break;
		}
		err = infect_seize_thread(tid, &t->it, th->it);
		if (err == -ESRCH) {
			/* It exited before we got it: nothing to dump. */
			free(th->it);
			err = 0;
			continue;
		}
		if (err) {
			free(th->it);
			break;
		}
		t->nr_threads++;
		*ret_changed = true;
	}
	closedir(d);
	return err;
}

/*
 * Freeze one process: the leader (through which the parasite will run),
 * then its other threads until a pass over /proc/PID/task finds no thread
 * we do not hold. Returns -ESRCH if it is gone, with t->zombie set if it
 * is a zombie now.
 */
static int freeze_process(struct dump_task *t)
{
	struct proc_stat st;
	int err;

	if (proc_parse_stat(t->pid, &st) < 0)
		return -ESRCH;
	if (st.state == 'Z' || st.state == 'X')
		goto zombie;
	err = infect_seize(t->pid, &t->it);
	if (err == -ESRCH)
		goto zombie;
	if (err)
		return err;
	t->frozen = true;
	t->threads = calloc(1, sizeof(*t->threads));
	if (!t->threads)
		return -ENOMEM;
	t->threads[0].it = &t->it;
	t->nr_threads = 1;
	for (int pass = 0;; pass++) {
		bool changed;
		if (pass == THREAD_PASSES) {
			pr_err("the threads of %d keep changing; cannot freeze it", t->pid);
			return -EAGAIN;
		}
		err = seize_new_threads(t, &changed);
		if (err)
			return err;
		if (!changed)
			break;
	}
	if (t->nr_threads > 1)
		pr_debug("%d: froze %zu threads", t->pid, t->nr_threads);
	return 0;
zombie:
	/* Exiting: it is a zombie (or reaped) within moments; wait for that. */
	int pidfd = syscall(SYS_pidfd_open, t->pid, 0);
	if (pidfd >= 0) {
		struct pollfd pfd = { .fd = pidfd, .events = POLLIN };
		(void)poll(&pfd, 1, EXIT_WAIT_MS);
		close(pidfd);
	}
	if (proc_parse_stat(t->pid, &st) < 0 || (st.state != 'Z' && st.state != 'X'))
		return -ESRCH;
	if (st.num_threads > 1) {
		pr_err("the leader of %d has exited but %d of its threads still run; not supported yet",
		       t->pid, st.num_threads - 1);
		return -EOPNOTSUPP;
	}
	t->zombie = true;
	t->exit_status = st.exit_code;
	return 0;
}

/* The root of the tree task idx is in, for messages. */
static pid_t root_of(struct dump_ctx *ctx, size_t idx)
{
	pid_t ppid = ctx->tasks[idx].ppid;

	while (ppid) {
		size_t i = 0;
		while (i < idx && ctx->tasks[i].pid != ppid)
			i++;
		if (i == idx)
			break;
		idx = i;
		ppid = ctx->tasks[i].ppid;
	}
	return ctx->tasks[idx].pid;
}

/* Children of every thread of a frozen process, in the kernel's order. */
static int read_children(struct dump_ctx *ctx, struct dump_task *t, size_t idx)
{
	for (size_t k = 0; k < t->nr_threads; k++) {
		char name[64], buf[65536], *p, *end;
		snprintf(name, sizeof(name), "task/%d/children", t->threads[k].it->pid);
		ssize_t n = proc_read_file(t->pid, name, buf, sizeof(buf));
		if (n < 0) {
			pr_errno(n, "cannot read the children of %d", t->threads[k].it->pid);
			return n;
		}
		if ((size_t)n >= sizeof(buf) - 1) {
			pr_err("task %d has too many children to list", t->pid);
			return -E2BIG;
		}
		for (p = buf;; p = end) {
			long c = strtol(p, &end, 10);
			if (end == p)
				break;
			for (size_t r = 0; r < ctx->opts->nr_roots; r++) {
				if (ctx->opts->roots[r] == c) {
					pr_err("root %ld is inside the tree of root %d: give only the top of each tree",
					       c, root_of(ctx, idx));
					return -EINVAL;
				}
			}
			if (c == getpid()) {
				pr_err("the tree of %d contains ckpt itself", t->pid);
				return -EINVAL;
			}
			int err = add_task(ctx, c, ctx->tasks[idx].pid);
			if (err)
				return err;
			t = &ctx->tasks[idx];	/* add_task may move the array */
		}
	}
	return 0;
}

static int kcmp(pid_t a, pid_t b, int type)
{
	return syscall(SYS_kcmp, a, b, type, 0, 0);
}

/* Resources shared between processes that ckpt cannot recreate yet. */
static int check_sharing(struct dump_ctx *ctx, struct dump_task *t)
{
	struct dump_task *p = NULL;

	for (size_t i = 0; i < ctx->nr_tasks; i++)
		if (ctx->tasks[i].pid == t->ppid && !ctx->tasks[i].zombie)
			p = &ctx->tasks[i];
	if (!p)
		return 0;
	if (kcmp(p->pid, t->pid, KCMP_VM) == 0) {
		pr_err("task %d shares its address space with its parent %d (vfork or CLONE_VM); not supported",
		       t->pid, p->pid);
		return -EOPNOTSUPP;
	}
	if (kcmp(p->pid, t->pid, KCMP_FILES) == 0) {
		pr_err("task %d shares its fd table with its parent %d (CLONE_FILES); not supported yet",
		       t->pid, p->pid);
		return -EOPNOTSUPP;
	}
	if (kcmp(p->pid, t->pid, KCMP_FS) == 0) {
		pr_err("task %d shares its cwd and root with its parent %d (CLONE_FS); not supported yet",
		       t->pid, p->pid);
		return -EOPNOTSUPP;
	}
	return 0;
}

int dump_tree_collect(struct dump_ctx *ctx)
{
	const struct dump_opts *o = ctx->opts;
	int err;

	for (size_t i = 0; i < o->nr_roots; i++) {
		struct proc_stat st;
		if (o->roots[i] == getpid()) {
			pr_err("cannot dump ckpt itself (%d)", o->roots[i]);
			return -EINVAL;
		}
		if (kill(o->roots[i], 0) < 0 && errno == ESRCH) {
			pr_err("root %d: no such process", o->roots[i]);
			return -ESRCH;
		}
		if (proc_parse_stat(o->roots[i], &st) == 0 && (st.state == 'Z' || st.state == 'X')) {
			pr_err("root %d is a zombie; there is nothing to dump", o->roots[i]);
			return -ESRCH;
		}
		err = add_task(ctx, o->roots[i], 0);
		if (err)
			return err;
	}
	/* Breadth first: the task list is the pstree order, parents first. */
	for (size_t i = 0; i < ctx->nr_tasks; i++) {
		struct dump_task *t = &ctx->tasks[i];
		err = freeze_process(t);
		if (err == -ESRCH && t->ppid) {
			/* Exited and reaped before we got to it. */
			pr_debug("%d exited while the tree was being frozen", t->pid);
			memmove(t, t + 1, (ctx->nr_tasks - i - 1) * sizeof(*t));
			ctx->nr_tasks--;
			i--;
			continue;
		}
		if (err == -ESRCH) {
			pr_err("root %d: no such process", t->pid);
			return err;
		}
		if (err)
			return err;
		if (t->zombie)
			continue;
		err = read_children(ctx, t, i);
		if (err)
			return err;
	}
	for (size_t i = 0; i < ctx->nr_tasks; i++) {
		struct dump_task *t = &ctx->tasks[i];
		err = proc_parse_stat(t->pid, &t->stat);
		if (err) {
			pr_errno(err, "cannot read /proc/%d/stat", t->pid);
			return err;
		}
		t->pgid = t->stat.pgid;
		t->sid = t->stat.sid;
		if (t->zombie)
			pr_debug("%d is a zombie of %d (status 0x%x)", t->pid, t->ppid, t->exit_status);
		else if (t->it.stop_sig)
			pr_info("task %d is stopped by %s", t->pid, strsignal(t->it.stop_sig));
		err = t->zombie ? 0 : check_sharing(ctx, t);
		if (err)
			return err;
	}
	for (size_t i = 0; i < ctx->nr_tasks; i++)
		if (ctx->tasks[i].ppid)
			pr_debug("%d: child of %d in the tree of %d", ctx->tasks[i].pid,
				 ctx->tasks[i].ppid, root_of(ctx, i));
	return 0;
}

int dump_tree_check(struct dump_ctx *ctx)
{
	struct pstree_node *n = calloc(ctx->nr_tasks, sizeof(*n));
	struct pstree_err pe;
	int err;

	if (!n)
		return -ENOMEM;
	for (size_t i = 0; i < ctx->nr_tasks; i++) {
		struct dump_task *t = &ctx->tasks[i];
		n[i] = (struct pstree_node){ .pid = t->pid, .ppid = t->ppid, .pgid = t->pgid,
					     .sid = t->sid, .zombie = t->zombie };
	}
	err = pstree_check(n, ctx->nr_tasks, ctx->opts->shell_job, &pe);
	if (err == -EINVAL)
		pr_err("%s", pe.msg);
	free(n);
	return err;
}

void dump_tree_release(struct dump_ctx *ctx, bool kill_tasks)
{
	/*
	 * The leader first: it removes the parasite while the other threads
	 * are still stopped. A killed leader takes its threads with it.
	 */
	for (size_t i = 0; i < ctx->nr_tasks; i++) {
		struct dump_task *t = &ctx->tasks[i];
		if (!t->frozen)
			continue;
		int err = infect_release(&t->it, kill_tasks);
		if (err && !ctx->release_err)
			ctx->release_err = err;
		for (size_t k = 1; k < t->nr_threads; k++) {
			err = infect_release(t->threads[k].it, kill_tasks);
			if (err && !ctx->release_err)
				ctx->release_err = err;
			free(t->threads[k].it);
		}
		free(t->threads);
		t->threads = NULL;
		t->nr_threads = 0;
		t->frozen = false;
	}
}
