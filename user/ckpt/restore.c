// SPDX-License-Identifier: MIT
#define LOG_PREFIX "restore: "
#include <fcntl.h>
#include <getopt.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/rseq.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "blob.h"
#include "ckpt.h"
#include "image.h"
#include "infect.h"
#include "log.h"
#include "restore.h"
#include "restorer_abi.h"

#define RESTORE_WAIT_MS 120000

static int load_list(int dirfd, enum img_kind kind, int pid, void ***ret, size_t *ret_n, bool must)
{
	struct img *img = img_open(dirfd, kind, pid, O_RDONLY);
	void **list = NULL, *msg;
	size_t n = 0;
	int r;

	*ret = NULL;
	*ret_n = 0;
	if (!img) {
		if (errno == ENOENT && !must)
			return 0;
		if (errno == ENOENT) {
			char name[64];
			img_name(kind, pid, name, sizeof(name));
			pr_err("image %s is missing", name);
		}
		return -errno;
	}
	while ((r = img_read(img, &msg)) == 1) {
		void **nl = realloc(list, (n + 1) * sizeof(*nl));
		if (!nl) {
			img_free(img, msg);
			r = -ENOMEM;
			break;
		}
		list = nl;
		list[n++] = msg;
	}
	img_close(img);
	if (r < 0) {
		for (size_t i = 0; i < n; i++)
			img_free_kind(kind, list[i]);
		free(list);
		return r;
	}
	*ret = list;
	*ret_n = n;
	return 0;
}

static void free_list(enum img_kind kind, void **list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		img_free_kind(kind, list[i]);
	free(list);
}

static int load_task(struct rst_ctx *ctx, struct rst_task *t)
{
	int err;

	err = img_load_one(ctx->dirfd, IMG_CORE, t->pid, (void **)&t->core);
	if (!err)
		err = img_load_one(ctx->dirfd, IMG_MM, t->pid, (void **)&t->mm);
	if (!err)
		err = load_list(ctx->dirfd, IMG_PAGEMAP, t->pid, (void ***)&t->pagemap, &t->nr_pagemap, true);
	if (!err)
		err = load_list(ctx->dirfd, IMG_FDINFO, t->pid, (void ***)&t->fdinfo, &t->nr_fdinfo, true);
	if (err)
		return err;
	if (t->core->n_threads != 1 || t->core->threads[0]->tid != (uint32_t)t->pid) {
		char name[64];
		img_name(IMG_CORE, t->pid, name, sizeof(name));
		return img_bad_at(name, 0, "threads", "expected one thread %d", t->pid);
	}
	t->fd_base = 0;
	for (size_t i = 0; i < t->nr_fdinfo; i++)
		if ((int)t->fdinfo[i]->fd >= t->fd_base)
			t->fd_base = t->fdinfo[i]->fd + 1;
	return 0;
}

static int load_images(struct rst_ctx *ctx)
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
	err = load_list(ctx->dirfd, IMG_PSTREE, 0, (void ***)&tree, &nr_tree, true);
	if (err)
		return err;
	if (!nr_tree) {
		pr_err("image pstree.img: no task");
		free(tree);
		return -EINVAL;
	}
	ctx->tasks = calloc(nr_tree, sizeof(*ctx->tasks));
	if (!ctx->tasks) {
		free_list(IMG_PSTREE, (void **)tree, nr_tree);
		return -ENOMEM;
	}
	/* One bit per possible PID (the codec bounds them): duplicates in O(n). */
	uint8_t *seen = calloc((1u << 22) / 8, 1);
	if (!seen)
		err = -ENOMEM;
	for (size_t i = 0; i < nr_tree && !err; i++) {
		uint32_t pid = tree[i]->pid;
		if (tree[i]->ppid || tree[i]->n_threads != 1)
			err = img_bad_at("pstree.img", i, "ppid/threads",
					 "task %u: process trees and threads are not supported yet", pid);
		else if (seen[pid / 8] & (1u << (pid % 8)))
			err = img_bad_at("pstree.img", i, "pid", "%u listed twice", pid);
		seen[pid / 8] |= 1u << (pid % 8);
		ctx->tasks[ctx->nr_tasks].pid = tree[i]->pid;
		ctx->tasks[ctx->nr_tasks].pgid = tree[i]->pgid;
		ctx->tasks[ctx->nr_tasks].sid = tree[i]->sid;
		ctx->tasks[ctx->nr_tasks].child = -1;
		ctx->nr_tasks++;
	}
	free(seen);
	free_list(IMG_PSTREE, (void **)tree, nr_tree);
	if (err)
		return err;
	err = load_list(ctx->dirfd, IMG_FILES, 0, (void ***)&ctx->files, &ctx->nr_files, true);
	if (!err)
		err = load_list(ctx->dirfd, IMG_PIPES_DATA, 0, (void ***)&ctx->pipes, &ctx->nr_pipes, false);
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
		err = load_task(ctx, &ctx->tasks[i]);
	return err;
}

/* Everything in the child, from the engine's copy to the restorer. */
static void __attribute__((noreturn)) child_main(struct rst_task *t, int sync_fd)
{
	const TaskCoreEntry *tc = t->core->task;
	char c;
	sigset_t all;

	/* Wait until the engine traces us: from then on a failure kills us. */
	if (read(sync_fd, &c, 1) != 1)
		_exit(1);
	close(sync_fd);
	/*
	 * A task that led its session or group leads a new one again; any
	 * other stays in ckpt's, which is what --shell-job asks for (and what
	 * the engine warned about otherwise).
	 */
	if (t->sid == t->pid && setsid() < 0) {
		pr_perror("cannot make %d a session leader", t->pid);
		goto fail;
	}
	if (t->sid != t->pid && t->pgid == t->pid && setpgid(0, 0) < 0) {
		pr_perror("cannot make %d a process group leader", t->pid);
		goto fail;
	}
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
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
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
	uint64_t stack = t->region + t->region_len;
	__asm__ volatile("movq %0, %%rsp\n\t"
			 "movq %1, %%rdi\n\t"
			 "jmpq *%2\n\t"
			 :
			 : "r"(stack), "r"(args), "r"(entry)
			 : "memory");
	__builtin_unreachable();
fail:
	_exit(1);
}

static int ptrace_step_syscall(pid_t pid, const char *what)
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
 * The restorer stopped on its int3, done. Let it run rt_sigreturn (the
 * kernel loads registers, FPU state, mask and sigaltstack from the frame)
 * and stop right after it; then remove the restorer region through the
 * task's own syscall instruction in that region, stopping at the exit of
 * that munmap before the task can return into code that is gone, and put
 * back the registers rt_sigreturn gave it.
 */
static int finish_task(struct rst_task *t)
{
	pid_t pid = t->child;
	struct user_regs_struct final, regs;
	uint64_t mask, all = ~0ull;
	int err;

	/* At most one system call (rt_sigaction of SIGTRAP) comes first. */
	for (int i = 0;; i++) {
		err = ptrace_step_syscall(pid, "entering rt_sigreturn");
		if (err)
			return err;
		if (ptrace(PTRACE_GETREGS, pid, NULL, &regs) < 0) {
			err = -errno;
			pr_perror("cannot get registers of %d", pid);
			return err;
		}
		if (regs.orig_rax == SYS_rt_sigreturn)
			break;
		if (i == 1) {
			pr_err("task %d made system call %lld instead of rt_sigreturn", pid,
			       (long long)regs.orig_rax);
			return -EIO;
		}
		err = ptrace_step_syscall(pid, "restoring the SIGTRAP action");
		if (err)
			return err;
	}
	err = ptrace_step_syscall(pid, "leaving rt_sigreturn");
	if (err)
		return err;
	if (ptrace(PTRACE_GETREGS, pid, NULL, &final) < 0 ||
	    ptrace(PTRACE_GETSIGMASK, pid, sizeof(mask), &mask) < 0 ||
	    ptrace(PTRACE_SETSIGMASK, pid, sizeof(all), &all) < 0) {
		err = -errno;
		pr_perror("cannot read the restored state of %d", pid);
		return err;
	}
	regs = final;
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
	err = ptrace_step_syscall(pid, "entering munmap of the restorer");
	if (!err)
		err = ptrace_step_syscall(pid, "leaving munmap of the restorer");
	if (err)
		return err;
	if (ptrace(PTRACE_GETREGS, pid, NULL, &regs) < 0 || regs.rax != 0) {
		pr_err("cannot remove the restorer from %d: %s", pid, strerror(-(long)regs.rax));
		return -EIO;
	}
	if (ptrace(PTRACE_SETREGS, pid, NULL, &final) < 0 ||
	    ptrace(PTRACE_SETSIGMASK, pid, sizeof(mask), &mask) < 0) {
		err = -errno;
		pr_perror("cannot set the final state of %d", pid);
		return err;
	}
	return 0;
}

static int read_restorer_status(struct rst_task *t, struct restorer_args *a)
{
	struct iovec l = { a, sizeof(*a) };
	struct iovec r = { (void *)(t->region + blob_map_size(BLOB_RESTORER)), sizeof(*a) };

	if (process_vm_readv(t->child, &l, 1, &r, 1, 0) != sizeof(*a)) {
		int err = -errno;
		pr_perror("cannot read the restorer status of %d", t->pid);
		return err;
	}
	return 0;
}

/* Fork the task with its PID and run it up to the restorer's final stop. */
static int restore_task(struct rst_ctx *ctx, struct rst_task *t)
{
	struct clone_args ca = { .exit_signal = SIGCHLD };
	pid_t set_tid = t->pid;
	int sync[2], status, err;
	struct restorer_args a;

	if (kill(t->pid, 0) == 0 || errno != ESRCH) {
		pr_err("PID %d is already in use; cannot restore the task with its PID", t->pid);
		return -EEXIST;
	}
	if (pipe2(sync, O_CLOEXEC) < 0)
		return -errno;
	ca.set_tid = (uint64_t)&set_tid;
	ca.set_tid_size = 1;
	pid_t pid = syscall(SYS_clone3, &ca, sizeof(ca));
	if (pid == 0) {
		close(sync[1]);
		child_main(t, sync[0]);
	}
	close(sync[0]);
	if (pid < 0) {
		err = -errno;
		if (errno == EEXIST)
			pr_err("PID %d is already in use; cannot restore the task with its PID", t->pid);
		else
			pr_perror("cannot create task %d (clone3 with set_tid)", t->pid);
		close(sync[1]);
		return err;
	}
	t->child = pid;
	if (ptrace(PTRACE_SEIZE, pid, NULL, PTRACE_O_EXITKILL | PTRACE_O_TRACESYSGOOD) < 0) {
		err = -errno;
		pr_perror("cannot trace the new task %d", pid);
		close(sync[1]);
		return err;
	}
	if (write(sync[1], "g", 1) != 1) {
		err = -errno;
		close(sync[1]);
		return err;
	}
	close(sync[1]);
	/* The restorer reads every page first: allow for a slow disk (20 MiB/s). */
	int wait_ms = RESTORE_WAIT_MS + (int)(t->pages_bytes / (20ull << 20) * 1000);
	err = infect_wait(pid, &status, wait_ms);
	if (err) {
		pr_errno(err, "waiting for the restorer of %d", pid);
		return err;
	}
	if (!WIFSTOPPED(status)) {
		char buf[64];
		pr_err("restore of %d failed: the new task %s", pid, infect_status_str(status, buf, sizeof(buf)));
		t->child = -1;
		return -ECHILD;
	}
	err = read_restorer_status(t, &a);
	if (err)
		return err;
	if (a.status != RESTORER_STATUS_DONE) {
		a.errmsg[sizeof(a.errmsg) - 1] = 0;
		pr_err("restore of %d failed in the restorer: %s", pid,
		       a.errmsg[0] ? a.errmsg : "stopped unexpectedly");
		return a.status < 0 ? a.status : -EIO;
	}
	return finish_task(t);
}

static void kill_children(struct rst_ctx *ctx)
{
	for (size_t i = 0; i < ctx->nr_tasks; i++) {
		struct rst_task *t = &ctx->tasks[i];
		int status;
		if (t->child <= 0)
			continue;
		kill(t->child, SIGKILL);
		while (waitpid(t->child, &status, __WALL) < 0 && errno == EINTR)
			;
		t->child = -1;
	}
}

static int write_pidfile(const char *path, pid_t pid)
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

static void free_ctx(struct rst_ctx *ctx)
{
	for (size_t i = 0; i < ctx->nr_tasks; i++) {
		struct rst_task *t = &ctx->tasks[i];
		img_free_kind(IMG_CORE, t->core);
		img_free_kind(IMG_MM, t->mm);
		free_list(IMG_PAGEMAP, (void **)t->pagemap, t->nr_pagemap);
		free_list(IMG_FDINFO, (void **)t->fdinfo, t->nr_fdinfo);
		for (size_t k = 1; k < t->nr_rfds; k++)
			if (t->rfds[k] >= 0)
				close(t->rfds[k]);
		free(t->rfds);
		free(t->plan);
		free(t->args);
		if (t->region)
			munmap((void *)t->region, t->region_len);
	}
	free(ctx->tasks);
	restore_files_close(ctx);
	free(ctx->file_fds);
	free_list(IMG_FILES, (void **)ctx->files, ctx->nr_files);
	free_list(IMG_PIPES_DATA, (void **)ctx->pipes, ctx->nr_pipes);
	img_free_kind(IMG_INVENTORY, ctx->inv);
	if (ctx->dirfd >= 0)
		close(ctx->dirfd);
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
	ctx.dirfd = open(o->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (ctx.dirfd < 0) {
		pr_perror("cannot open the image directory '%s'", o->dir);
		return -1;
	}
	err = load_images(&ctx);
	for (size_t i = 0; i < ctx.nr_tasks && !err; i++) {
		struct rst_task *t = &ctx.tasks[i];
		if (t->sid != t->pid && !o->shell_job)
			pr_warn("task %d was in session %d, which is not in the dump; it joins ckpt's session (--shell-job silences this)",
				t->pid, t->sid);
	}
	/* Everything that can be checked is checked before any task exists. */
	for (size_t i = 0; i < ctx.nr_tasks && !err; i++) {
		err = restore_files_prepare(&ctx, &ctx.tasks[i]);
		if (!err)
			err = restore_mm_prepare(&ctx, &ctx.tasks[i]);
	}
	for (size_t i = 0; i < ctx.nr_tasks && !err; i++)
		err = restore_task(&ctx, &ctx.tasks[i]);
	if (err) {
		kill_children(&ctx);
		free_ctx(&ctx);
		return -1;
	}
	if (o->pidfile && write_pidfile(o->pidfile, ctx.tasks[0].child)) {
		kill_children(&ctx);
		free_ctx(&ctx);
		return -1;
	}
	/* Past this point the tasks run: nothing may kill them any more. */
	for (size_t i = 0; i < ctx.nr_tasks; i++) {
		if (ptrace(PTRACE_DETACH, ctx.tasks[i].child, NULL, NULL) < 0)
			pr_perror("cannot detach from %d", ctx.tasks[i].child);
		pr_info("restored %d", ctx.tasks[i].child);
	}
	if (!o->detach) {
		for (size_t i = 0; i < ctx.nr_tasks; i++) {
			int status;
			while (waitpid(ctx.tasks[i].child, &status, 0) < 0) {
				if (errno != EINTR) {
					pr_perror("cannot wait for %d", ctx.tasks[i].child);
					status = 1 << 8;
					break;
				}
			}
			ret = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		}
	}
	for (size_t i = 0; i < ctx.nr_tasks; i++)
		ctx.tasks[i].child = -1;
	free_ctx(&ctx);
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
		case 'h':
			printf("usage: ckpt restore -D DIR [-d] [--pidfile FILE] [--shell-job] [-v[N]] [-o LOG]\n");
			return 0;
		default:
			return 2;
		}
	}
	if (!o.dir || optind != argc) {
		fprintf(stderr, "usage: ckpt restore -D DIR [-d] [--pidfile FILE] [--shell-job]\n");
		return 2;
	}
	int ret = do_restore(&o);
	return ret < 0 ? 1 : ret;
}
