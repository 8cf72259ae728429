// SPDX-License-Identifier: MIT
/*
 * Incremental restore (see restore.h): the trees are built once and kept
 * in step with later deltas of the same chain while nothing runs.
 *
 * Held frozen, every live task is one thread stopped under our ptrace in
 * its restorer (RESTORER_STATUS_FROZEN), with its memory in place, the fds
 * of its first restore (or its parent's), and our pidfd among them. A
 * fixup changes it from outside: system calls it is made to run from its
 * stop through the syscall instruction of its restorer region (clone3
 * with set_tid, setsid, setpgid, exit_group, wait4, mmap, munmap,
 * mprotect, madvise, mremap, pidfd_getfd), and pages written through
 * /proc/PID/mem. A fixup compares the new images with what each task has
 * now (its previous images: the mapping lists and the resolved pages):
 * a mapping that is the same stays with its pages, and only the pages of
 * the new top level are written into it; anything else is unmapped and
 * mapped again from the images.
 *
 * The final step maps a fresh restorer region into each task with the
 * final images' args (mm_kept): the restorer takes the final fds from us
 * with pidfd_getfd, and does everything after the memory as in a full
 * restore (threads, AIO rings, credentials, signals, timers); the engine
 * then takes each thread through rt_sigreturn as usual.
 */
#define LOG_PREFIX "restore: "
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "blob.h"
#include "delta.pb-c.h"
#include "ckpt.h"
#include "image.h"
#include "infect.h"
#include "log.h"
#include "proc.h"
#include "restore.h"
#include "restorer_abi.h"

#define FROZEN_WAIT_MS 30000
#define COPY_BUF (4u << 20)

static uint64_t now_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static uint64_t syscall_ip(const struct rst_task *t)
{
	return t->region + blob_sym_off(BLOB_RESTORER, BLOB_SYM_SYSCALL);
}

/* Scratch memory in the task: its first restorer's args area, which nothing reads again. */
static uint64_t scratch(const struct rst_task *t)
{
	return t->region + blob_map_size(BLOB_RESTORER);
}

static int mem_write(struct rst_task *t, uint64_t addr, const void *buf, size_t len)
{
	while (len) {
		ssize_t n = pwrite(t->memfd, buf, len, (off_t)addr);
		if (n <= 0) {
			int err = n < 0 ? -errno : -EIO;
			pr_errno(err, "cannot write %zu bytes at %#llx into %d", len,
				 (unsigned long long)addr, t->pid);
			return err;
		}
		buf = (const char *)buf + n;
		addr += n;
		len -= n;
	}
	return 0;
}

static int set_regs(pid_t pid, struct user_regs_struct *r)
{
	if (ptrace(PTRACE_SETREGS, pid, NULL, r) < 0) {
		int err = -errno;
		pr_perror("cannot set the registers of %d", pid);
		return err;
	}
	return 0;
}

/* Point t's stopped thread at its syscall instruction with system call nr and its arguments. */
static int load_syscall(struct rst_task *t, long nr, const uint64_t a[6])
{
	struct user_regs_struct r = *t->regs;

	r.rip = syscall_ip(t);
	r.rax = nr;
	r.orig_rax = -1;
	r.rdi = a[0];
	r.rsi = a[1];
	r.rdx = a[2];
	r.r10 = a[3];
	r.r8 = a[4];
	r.r9 = a[5];
	return set_regs(t->pid, &r);
}

static int syscall_result(struct rst_task *t, long *ret)
{
	struct user_regs_struct r;

	if (ptrace(PTRACE_GETREGS, t->pid, NULL, &r) < 0) {
		int err = -errno;
		pr_perror("cannot get the registers of %d", t->pid);
		return err;
	}
	*ret = (long)r.rax;
	return 0;
}

/*
 * Make t run system call nr and stop at its exit; *ret is what it
 * returned (-errno for a failed call, which is not an error here).
 */
static int rsys(struct rst_task *t, const char *what, long *ret, long nr, uint64_t a1, uint64_t a2,
		uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6)
{
	uint64_t a[6] = { a1, a2, a3, a4, a5, a6 };
	int err = load_syscall(t, nr, a);

	if (!err)
		err = restore_step_syscall(t->pid, what);
	if (!err)
		err = restore_step_syscall(t->pid, what);
	if (!err)
		err = syscall_result(t, ret);
	return err;
}

/* rsys() that must succeed: 0, or -errno of the call (logged). */
static int rcall(struct rst_task *t, const char *what, long nr, uint64_t a1, uint64_t a2,
		 uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6)
{
	long ret;
	int err = rsys(t, what, &ret, nr, a1, a2, a3, a4, a5, a6);

	if (err)
		return err;
	if (ret < 0 && ret > -4096) {
		pr_errno((int)ret, "%s in %d failed", what, t->pid);
		return (int)ret;
	}
	return 0;
}

/* Wait (bounded) for pid's next report; 0 with *status, or -errno (logged). */
static int wait_for(pid_t pid, int *status, const char *what)
{
	int err = infect_wait(pid, status, FROZEN_WAIT_MS);

	if (err)
		pr_errno(err, "waiting for %d (%s)", pid, what);
	return err;
}

static int wait_exit(pid_t pid, const char *what)
{
	char buf[64];
	int status, err;

	for (int i = 0; i < 8; i++) {
		err = wait_for(pid, &status, what);
		if (err)
			return err;
		if (WIFEXITED(status) || WIFSIGNALED(status))
			return 0;
		/* A stop on the way out (a signal to deliver, an event): let it go on. */
		int sig = WIFSTOPPED(status) && !(status >> 16) ? WSTOPSIG(status) : 0;
		if (ptrace(PTRACE_CONT, pid, NULL, (void *)(long)sig) < 0 && errno != ESRCH) {
			err = -errno;
			pr_perror("cannot resume %d (%s)", pid, what);
			return err;
		}
	}
	pr_err("task %d did not exit (%s): %s", pid, what, infect_status_str(status, buf, sizeof(buf)));
	return -EIO;
}

/* Kill t (SIGKILL) and wait for it as its tracer. */
static int kill_one(struct rst_task *t)
{
	if (kill(t->pid, SIGKILL) < 0 && errno != ESRCH) {
		int err = -errno;
		pr_perror("cannot kill %d", t->pid);
		return err;
	}
	return wait_exit(t->pid, "killed by the fixup");
}

/*
 * End t the way the images show it ended (a zombie's wait status): its
 * exit code through exit_group, or its signal with the default action,
 * no core file, delivered.
 */
/* Name t (PR_SET_NAME) while it is frozen. */
static int set_comm(struct rst_task *t, const char *comm)
{
	char name[16] = "";
	int err;

	if (!comm || !comm[0])
		return 0;
	strncpy(name, comm, sizeof(name) - 1);
	err = mem_write(t, scratch(t), name, sizeof(name));
	if (!err)
		err = rcall(t, "prctl(PR_SET_NAME)", SYS_prctl, PR_SET_NAME, scratch(t), 0, 0, 0, 0);
	return err;
}

static int end_as_zombie(struct rst_task *t, uint32_t st, const char *comm)
{
	/* A zombie keeps the name it had; a new task has its parent's. */
	int err = set_comm(t, comm);

	if (err)
		return err;

	if (WIFSIGNALED(st) && WTERMSIG(st) != SIGKILL) {
		int sig = WTERMSIG(st);
		struct {
			uint64_t handler, flags, restorer, mask;
			struct rlimit none;
			uint64_t set;
		} buf = { .set = 1ull << (sig - 1) };
		uint64_t at = scratch(t);
		err = mem_write(t, at, &buf, sizeof(buf));
		if (!err)
			err = rcall(t, "prlimit64(RLIMIT_CORE)", SYS_prlimit64, 0, RLIMIT_CORE,
				    at + offsetof(typeof(buf), none), 0, 0, 0);
		if (!err)
			err = rcall(t, "rt_sigaction(SIG_DFL)", SYS_rt_sigaction, sig, at, 0, 8, 0, 0);
		if (!err)
			err = rcall(t, "rt_sigprocmask(SIG_UNBLOCK)", SYS_rt_sigprocmask, SIG_UNBLOCK,
				    at + offsetof(typeof(buf), set), 0, 8, 0, 0);
		/* A piped core_pattern ignores RLIMIT_CORE 0: no core of ckpt's stage either way. */
		if (!err)
			err = rcall(t, "prctl(PR_SET_DUMPABLE)", SYS_prctl, PR_SET_DUMPABLE, 0, 0, 0, 0, 0);
		if (!err)
			err = rcall(t, "tgkill", SYS_tgkill, t->pid, t->pid, sig, 0, 0, 0);
		if (!err && ptrace(PTRACE_CONT, t->pid, NULL, NULL) < 0)
			err = -errno;
		return err ? err : wait_exit(t->pid, "ending as a zombie");
	}
	if (WIFSIGNALED(st))
		return kill_one(t);
	uint64_t a[6] = { WEXITSTATUS(st) };
	err = load_syscall(t, SYS_exit_group, a);
	if (!err)
		err = restore_step_syscall(t->pid, "exit_group");
	if (!err && ptrace(PTRACE_SYSCALL, t->pid, NULL, NULL) < 0)
		err = -errno;
	return err ? err : wait_exit(t->pid, "ending as a zombie");
}

static int open_mem(struct rst_task *t)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/mem", t->pid);
	t->memfd = open(path, O_RDWR | O_CLOEXEC);
	if (t->memfd < 0) {
		int err = -errno;
		pr_perror("cannot open %s", path);
		return err;
	}
	return 0;
}

static int get_regs(struct rst_task *t)
{
	if (!t->regs)
		t->regs = malloc(sizeof(*t->regs));
	if (!t->regs)
		return -ENOMEM;
	if (ptrace(PTRACE_GETREGS, t->pid, NULL, t->regs) < 0) {
		int err = -errno;
		pr_perror("cannot get the registers of %d", t->pid);
		return err;
	}
	return 0;
}

/*
 * New task n, forked by its frozen parent p (clone3 with n's PID, run by
 * p), stops traced (PTRACE_O_TRACEFORK/CLONE) before its first
 * instruction, a copy of p: p's memory, fds and restorer region.
 */
static int fork_in(struct rst_task *p, struct rst_task *n)
{
	struct {
		struct clone_args ca;
		pid_t tid;
	} buf = { .ca = { .exit_signal = n->zombie ? SIGCHLD : n->exit_signal, .set_tid_size = 1 },
		  .tid = n->pid };
	uint64_t at = scratch(p);
	char sbuf[64];
	int status, err;
	long ret;

	buf.ca.set_tid = at + offsetof(typeof(buf), tid);
	uint64_t a[6] = { at, sizeof(buf.ca) };
	err = mem_write(p, at, &buf, sizeof(buf));
	if (!err)
		err = load_syscall(p, SYS_clone3, a);
	if (!err)
		err = restore_step_syscall(p->pid, "entering clone3");
	if (err)
		return err;
	/* The fork (or clone) event comes before the exit, when the child exists. */
	for (int i = 0;; i++) {
		if (ptrace(PTRACE_SYSCALL, p->pid, NULL, NULL) < 0) {
			err = -errno;
			pr_perror("cannot resume %d (clone3)", p->pid);
			return err;
		}
		err = wait_for(p->pid, &status, "clone3");
		if (err)
			return err;
		if (WIFSTOPPED(status) && WSTOPSIG(status) == (SIGTRAP | 0x80))
			break;
		int ev = status >> 16;
		if (i == 2 || !WIFSTOPPED(status) ||
		    (ev != PTRACE_EVENT_FORK && ev != PTRACE_EVENT_CLONE && ev != PTRACE_EVENT_VFORK)) {
			pr_err("task %d %s while forking %d", p->pid,
			       infect_status_str(status, sbuf, sizeof(sbuf)), n->pid);
			return -EIO;
		}
	}
	err = syscall_result(p, &ret);
	if (err)
		return err;
	if (ret != n->pid) {
		if (ret == -EEXIST)
			pr_err("PID %d is in use; %d cannot fork its new child with that PID", n->pid, p->pid);
		else if (ret < 0)
			pr_errno((int)ret, "%d cannot fork its new child %d (clone3 with set_tid)", p->pid,
				 n->pid);
		else
			pr_err("%d forked %ld instead of %d", p->pid, ret, n->pid);
		return ret < 0 ? (int)ret : -EIO;
	}
	err = wait_for(n->pid, &status, "its first stop");
	if (err)
		return err;
	if (!WIFSTOPPED(status)) {
		pr_err("new task %d %s", n->pid, infect_status_str(status, sbuf, sizeof(sbuf)));
		return -ECHILD;
	}
	n->region = p->region;
	n->region_len = p->region_len;
	n->pidfd_slot = p->pidfd_slot;
	n->nr_vdso_parts = p->nr_vdso_parts;
	n->vdso_parts = malloc(4 * sizeof(*n->vdso_parts));
	if (!n->vdso_parts)
		return -ENOMEM;
	memcpy(n->vdso_parts, p->vdso_parts, p->nr_vdso_parts * sizeof(*n->vdso_parts));
	n->cur_mm = p->cur_mm;
	n->cur_srcs = p->cur_srcs;
	n->nr_cur_srcs = p->nr_cur_srcs;
	n->fresh = true;
	err = get_regs(n);
	if (!err)
		err = open_mem(n);
	pr_debug("%d forked %d", p->pid, n->pid);
	return err;
}

/* ---- the frozen trees and the images of a fixup ---- */

static struct rst_task *find_task(struct rst_ctx *ctx, pid_t pid)
{
	for (size_t i = 0; i < ctx->nr_tasks; i++)
		if (ctx->tasks[i].pid == pid)
			return &ctx->tasks[i];
	return NULL;
}

/* Is the mapping the same (but for its protection) in both images? */
static bool vma_same(const MmEntry *om, const VmaEntry *o, const MmEntry *nm, const VmaEntry *v)
{
	if (o->start != v->start || o->end != v->end || o->pgoff != v->pgoff ||
	    o->flags != v->flags || o->kind != v->kind || o->has_file_id != v->has_file_id)
		return false;
	if (v->kind == VMA_KIND_SHARED_ANON && o->shmid != v->shmid)
		return false;
	if (!v->has_file_id)
		return true;
	if (o->file_id >= om->n_files || v->file_id >= nm->n_files)
		return false;
	const MapFileEntry *a = om->files[o->file_id], *b = nm->files[v->file_id];
	return !a->has_ghost_id && !b->has_ghost_id && !strcmp(a->path, b->path) &&
	       a->dev == b->dev && a->ino == b->ino && a->size == b->size;
}

static bool vdso_kind(const VmaEntry *v)
{
	return v->kind == VMA_KIND_VDSO || v->kind == VMA_KIND_VVAR;
}

static bool private_kind(const VmaEntry *v)
{
	return v->kind == VMA_KIND_ANON || v->kind == VMA_KIND_FILE_PRIVATE;
}

/* Per task of a fixup: which of its new mappings stay as they are. */
struct mm_plan {
	bool *keep;		/* by new vma index */
	bool *old_keep;		/* by old vma index */
	uint64_t vdso_to;	/* where its vDSO block goes, if it moves */
	struct restorer_range vdso_parts[4];
	uint32_t nr_vdso_parts;
	bool vdso_moves;
	int *level_fds;		/* pages files by chain level, -1 until opened */
};

static bool overlaps(uint64_t s1, uint64_t e1, uint64_t s2, uint64_t e2)
{
	return s1 < e2 && s2 < e1;
}

/* The image's vDSO code address, or 0. */
static uint64_t vdso_code(const MmEntry *mm)
{
	for (size_t i = 0; i < mm->n_vmas; i++)
		if (mm->vmas[i]->kind == VMA_KIND_VDSO)
			return mm->vmas[i]->start;
	return 0;
}

/* Decide what stays; check that nothing new lands on the restorer region or a vDSO that stays. */
static int plan_mm(struct rst_task *t, struct mm_plan *pl)
{
	const MmEntry *om = t->cur_mm, *nm = t->mm;
	char name[64];

	pl->keep = calloc(nm->n_vmas + 1, sizeof(bool));
	pl->old_keep = calloc(om->n_vmas + 1, sizeof(bool));
	if (!pl->keep || !pl->old_keep)
		return -ENOMEM;
	for (size_t i = 0, k = 0; i < nm->n_vmas; i++) {
		const VmaEntry *v = nm->vmas[i];
		while (k < om->n_vmas && om->vmas[k]->start < v->start)
			k++;
		if (k == om->n_vmas || vdso_kind(v) || !vma_same(om, om->vmas[k], nm, v))
			continue;
		/*
		 * A new task's private memory is its own, mapped again, unless
		 * the images show it shares pages with its parent (cow_parent):
		 * then it keeps what it inherited, as a full restore would.
		 */
		if (t->fresh && private_kind(v) && !v->cow_parent)
			continue;
		pl->keep[i] = pl->old_keep[k] = true;
	}
	uint64_t was = vdso_code(om), will = vdso_code(nm);
	if (was != will) {
		int err = restore_mm_plan_vdso(t, &pl->vdso_to, pl->vdso_parts, &pl->nr_vdso_parts);
		if (err) {
			pr_err("the vDSO of %d moved (to %#llx) and cannot be moved here in a fixup",
			       t->pid, (unsigned long long)will);
			return err;
		}
		pl->vdso_moves = true;
	}
	img_name(IMG_MM, t->pid, name, sizeof(name));
	for (size_t i = 0; i < nm->n_vmas; i++) {
		const VmaEntry *v = nm->vmas[i];
		if (vdso_kind(v))
			continue;
		if (overlaps(v->start, v->end, t->region, t->region + t->region_len))
			return img_bad_at(name, i, "vmas",
					  "mapping %#llx-%#llx overlaps where ckpt's restorer sits in the frozen task (%#llx-%#llx); restore these images fully instead",
					  (unsigned long long)v->start, (unsigned long long)v->end,
					  (unsigned long long)t->region,
					  (unsigned long long)(t->region + t->region_len));
		const struct restorer_range *p = pl->vdso_moves ? pl->vdso_parts : t->vdso_parts;
		uint32_t np = pl->vdso_moves ? pl->nr_vdso_parts : t->nr_vdso_parts;
		for (uint32_t k = 0; k < np; k++)
			if (overlaps(v->start, v->end, p[k].start, p[k].end))
				return img_bad_at(name, i, "vmas", "mapping %#llx-%#llx overlaps the vDSO at %#llx",
						  (unsigned long long)v->start, (unsigned long long)v->end,
						  (unsigned long long)p[k].start);
	}
	return 0;
}

static void free_plan(struct mm_plan *pl, size_t levels)
{
	free(pl->keep);
	free(pl->old_keep);
	for (size_t l = 0; pl->level_fds && l < levels; l++)
		if (pl->level_fds[l] >= 0)
			close(pl->level_fds[l]);
	free(pl->level_fds);
}

/* Move t's vDSO block where the new images have it (mremap, part by part). */
static int move_vdso(struct rst_task *t, struct mm_plan *pl)
{
	int err;

	if (!pl->nr_vdso_parts || !pl->vdso_to) {
		for (uint32_t k = 0; k < t->nr_vdso_parts; k++) {
			err = rcall(t, "munmap of the vDSO", SYS_munmap, t->vdso_parts[k].start,
				    t->vdso_parts[k].end - t->vdso_parts[k].start, 0, 0, 0, 0);
			if (err)
				return err;
		}
		t->nr_vdso_parts = 0;
		return 0;
	}
	if (pl->nr_vdso_parts != t->nr_vdso_parts) {
		pr_err("the vDSO of %d has %u parts, this kernel's %u", t->pid, t->nr_vdso_parts,
		       pl->nr_vdso_parts);
		return -EINVAL;
	}
	uint64_t lo = pl->vdso_parts[0].start, hi = pl->vdso_parts[pl->nr_vdso_parts - 1].end;
	for (uint32_t k = 0; k < t->nr_vdso_parts; k++)
		if (overlaps(t->vdso_parts[k].start, t->vdso_parts[k].end, lo, hi)) {
			pr_err("the vDSO of %d moves onto itself (%#llx to %#llx); not in a fixup", t->pid,
			       (unsigned long long)t->vdso_parts[0].start, (unsigned long long)lo);
			return -EINVAL;
		}
	for (uint32_t k = 0; k < t->nr_vdso_parts; k++) {
		uint64_t len = t->vdso_parts[k].end - t->vdso_parts[k].start;
		err = rcall(t, "mremap of the vDSO", SYS_mremap, t->vdso_parts[k].start, len, len,
			    MREMAP_MAYMOVE | MREMAP_FIXED, pl->vdso_parts[k].start, 0);
		if (err)
			return err;
		t->vdso_parts[k] = pl->vdso_parts[k];
	}
	return 0;
}

/* An fd of ours in the task (pidfd_getfd through its pidfd of us); *ret the task's number. */
static int give_fd(struct rst_task *t, int fd, long *ret)
{
	int err = rsys(t, "pidfd_getfd", ret, SYS_pidfd_getfd, t->pidfd_slot, fd, 0, 0, 0, 0);

	if (!err && *ret < 0) {
		pr_errno((int)*ret, "%d cannot take fd %d of ckpt (pidfd_getfd)", t->pid, fd);
		err = (int)*ret;
	}
	return err;
}

static int map_one(struct rst_ctx *ctx, struct rst_task *t, const VmaEntry *v)
{
	uint32_t flags = v->flags | MAP_FIXED;
	long tfd = -1;
	int fd = -1, err = 0;

	if (v->kind == VMA_KIND_SHARED_ANON) {
		for (size_t i = 0; i < ctx->nr_shms; i++)
			if (ctx->shms[i].shmid == v->shmid)
				fd = dup(ctx->shms[i].fd);
		if (fd < 0) {
			pr_err("no shared memory object %llu for %d", (unsigned long long)v->shmid, t->pid);
			return -ENOENT;
		}
		flags &= ~MAP_ANONYMOUS;
	} else if (v->has_file_id) {
		fd = restore_mm_open_file(ctx, t->mm, v->file_id);
		if (fd < 0)
			return fd;
	}
	if (fd >= 0)
		err = give_fd(t, fd, &tfd);
	if (!err) {
		long ret;
		err = rsys(t, "mmap", &ret, SYS_mmap, v->start, v->end - v->start, v->prot, flags,
			   (uint64_t)tfd, v->pgoff);
		if (!err && (uint64_t)ret != v->start) {
			err = ret < 0 && ret > -4096 ? (int)ret : -EFAULT;
			pr_errno(err, "mmap of %#llx-%#llx (prot %#x flags %#x) in %d",
				 (unsigned long long)v->start, (unsigned long long)v->end, v->prot, flags,
				 t->pid);
		}
	}
	if (tfd >= 0) {
		long ret;
		int e = rsys(t, "close", &ret, SYS_close, tfd, 0, 0, 0, 0, 0);
		if (!err)
			err = e;
	}
	if (fd >= 0)
		close(fd);
	return err;
}

/* The pages file of level for t (opened once per fixup). */
static int level_fd(struct rst_ctx *ctx, struct mm_plan *pl, struct rst_task *t, uint32_t level)
{
	if (!pl->level_fds) {
		pl->level_fds = malloc(ctx->chain.n * sizeof(int));
		if (!pl->level_fds)
			return -ENOMEM;
		for (size_t l = 0; l < ctx->chain.n; l++)
			pl->level_fds[l] = -1;
	}
	if (level >= ctx->chain.n)
		return -EINVAL;
	if (pl->level_fds[level] < 0)
		pl->level_fds[level] = chain_pages_fd(&ctx->chain, level, t->pid);
	return pl->level_fds[level];
}

/* The first of the sorted, disjoint sources s[0..n) that ends after addr (n if none). */
static size_t first_src(const struct page_src *s, size_t n, uint64_t addr)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (s[mid].vaddr + s[mid].len <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static const struct page_src *find_src(const struct page_src *s, size_t n, uint64_t addr)
{
	size_t i = first_src(s, n, addr);

	return i < n && s[i].vaddr <= addr ? &s[i] : NULL;
}

#define COPY_BATCH 1024

/*
 * Pages go in batches: runs that follow each other in one pages file are
 * read with one pread, and those bound for the task's memory written with
 * one process_vm_writev; what that cannot write (a read-only mapping) goes
 * through /proc/PID/mem, which may write anywhere its tracer wants.
 */
struct copy_ctx {
	struct rst_ctx *ctx;
	struct rst_task *t;
	struct mm_plan *pl;
	char *buf;
	uint64_t bytes;
	int src_fd;		/* of the batch */
	uint64_t src_off, len;
	size_t n;
	struct {
		int fd;		/* memfd: the task's memory at dst; else a shared memory object */
		uint64_t dst, len;
	} piece[COPY_BATCH];
};

static int pwrite_all(struct rst_task *t, int fd, const char *buf, uint64_t len, uint64_t dst)
{
	for (uint64_t done = 0; done < len;) {
		ssize_t w = pwrite(fd, buf + done, len - done, (off_t)(dst + done));
		if (w <= 0) {
			int err = w < 0 ? -errno : -EIO;
			pr_errno(err, "cannot write pages of %d at %#llx", t->pid,
				 (unsigned long long)(dst + done));
			return err;
		}
		done += w;
	}
	return 0;
}

static int copy_flush(struct copy_ctx *c)
{
	struct iovec l[COPY_BATCH], r[COPY_BATCH];
	struct rst_task *t = c->t;
	char *p = c->buf;
	int err = 0;

	if (!c->n)
		return 0;
	ssize_t got = pread(c->src_fd, c->buf, c->len, (off_t)c->src_off);
	if (got != (ssize_t)c->len) {
		err = got < 0 ? -errno : -EIO;
		pr_errno(err, "cannot read %llu bytes of pages for %d at offset %llu",
			 (unsigned long long)c->len, t->pid, (unsigned long long)c->src_off);
		return err;
	}
	for (size_t i = 0; i < c->n && !err;) {
		if (c->piece[i].fd != t->memfd) {
			err = pwrite_all(t, c->piece[i].fd, p, c->piece[i].len, c->piece[i].dst);
			p += c->piece[i].len;
			i++;
			continue;
		}
		size_t k = 0;
		uint64_t want = 0;
		for (; i + k < c->n && c->piece[i + k].fd == t->memfd; k++) {
			l[k] = (struct iovec){ p + want, c->piece[i + k].len };
			r[k] = (struct iovec){ (void *)c->piece[i + k].dst, c->piece[i + k].len };
			want += c->piece[i + k].len;
		}
		ssize_t w = process_vm_writev(t->pid, l, k, r, k, 0);
		uint64_t done = w > 0 ? (uint64_t)w : 0;
		/* Whatever it could not write (read-only pages) through /proc/PID/mem. */
		for (size_t j = 0; j < k && !err; j++) {
			uint64_t len = c->piece[i + j].len;
			if (done >= len) {
				done -= len;
				continue;
			}
			err = pwrite_all(t, t->memfd, (char *)l[j].iov_base + done, len - done,
					 c->piece[i + j].dst + done);
			done = 0;
		}
		p += want;
		i += k;
	}
	c->bytes += c->len;
	c->n = 0;
	c->len = 0;
	return err;
}

/* Queue [off, off + len) of src_fd for dst (in dst_fd's terms); big pieces go at once. */
static int copy_add(struct copy_ctx *c, int src_fd, uint64_t off, uint64_t len, int dst_fd,
		    uint64_t dst)
{
	int err;

	if (c->n && (c->src_fd != src_fd || c->src_off + c->len != off || c->n == COPY_BATCH ||
		     c->len + len > COPY_BUF)) {
		err = copy_flush(c);
		if (err)
			return err;
	}
	while (len > COPY_BUF) {
		c->src_fd = src_fd;
		c->src_off = off;
		c->len = COPY_BUF;
		c->piece[0].fd = dst_fd;
		c->piece[0].dst = dst;
		c->piece[0].len = COPY_BUF;
		c->n = 1;
		err = copy_flush(c);
		if (err)
			return err;
		off += COPY_BUF;
		dst += COPY_BUF;
		len -= COPY_BUF;
	}
	if (!c->n) {
		c->src_fd = src_fd;
		c->src_off = off;
	}
	c->piece[c->n].fd = dst_fd;
	c->piece[c->n].dst = dst;
	c->piece[c->n].len = len;
	c->n++;
	c->len += len;
	return 0;
}

/*
 * [s, e) of t, which the task's images take from src (PE_PRESENT at a
 * level, or PE_PARENT: the parent process's pages, followed up).
 */
static int copy_piece(struct copy_ctx *c, const struct rst_task *owner, const struct page_src *src,
		      uint64_t s, uint64_t e, int dst_fd, uint64_t dst)
{
	struct rst_ctx *ctx = c->ctx;

	if (src->flags != PE_PARENT) {
		/* The data is in the owner's pages files; opened per task t only for t itself. */
		int fd;
		if (owner == c->t) {
			fd = level_fd(ctx, c->pl, c->t, src->level);
		} else {
			fd = chain_pages_fd(&ctx->chain, src->level, owner->pid);
		}
		if (fd < 0)
			return fd;
		int err = copy_add(c, fd, src->off + (s - src->vaddr), e - s, dst_fd, dst);
		/* Another task's file (a PE_PARENT page) is read before it is closed. */
		if (owner != c->t) {
			if (!err)
				err = copy_flush(c);
			close(fd);
		}
		return err;
	}
	if (owner->parent < 0)
		return -EINVAL;
	const struct rst_task *p = &ctx->tasks[owner->parent];
	while (s < e) {
		const struct page_src *ps = find_src(p->srcs, p->nr_srcs, s);
		if (!ps) {
			pr_err("page %#llx of %d is its parent's (PE_PARENT), but %d has none there",
			       (unsigned long long)s, owner->pid, p->pid);
			return -EINVAL;
		}
		uint64_t pe = ps->vaddr + ps->len < e ? ps->vaddr + ps->len : e;
		int err = copy_piece(c, p, ps, s, pe, dst_fd, dst);
		if (err)
			return err;
		dst += pe - s;
		s = pe;
	}
	return 0;
}

/* Present pages of a (sorted, disjoint) source list within [s, e) that the other list lacks. */
static int discard_gone(struct rst_task *t, const struct page_src *was, size_t nwas,
			const struct page_src *now, size_t nnow, uint64_t s, uint64_t e)
{
	/* Only the sources within [s, e): a mapping's, among the whole address space's. */
	size_t k = first_src(now, nnow, s);

	for (size_t i = first_src(was, nwas, s); i < nwas && was[i].vaddr < e; i++) {
		uint64_t a = was[i].vaddr > s ? was[i].vaddr : s;
		uint64_t b = was[i].vaddr + was[i].len < e ? was[i].vaddr + was[i].len : e;
		if (a >= b)
			continue;
		while (a < b) {
			while (k < nnow && now[k].vaddr + now[k].len <= a)
				k++;
			uint64_t gap_end = k < nnow && now[k].vaddr < b ? now[k].vaddr : b;
			if (gap_end > a) {
				int err = rcall(t, "madvise(MADV_DONTNEED)", SYS_madvise, a, gap_end - a,
						MADV_DONTNEED, 0, 0, 0);
				if (err)
					return err;
			}
			if (k == nnow || now[k].vaddr >= b)
				break;
			a = now[k].vaddr + now[k].len;
		}
	}
	return 0;
}

/* Bring t's memory from its current images to its new ones. */
static int apply_mm(struct rst_ctx *ctx, struct rst_task *t, struct mm_plan *pl, char *buf,
		    uint64_t *ret_bytes)
{
	const MmEntry *om = t->cur_mm, *nm = t->mm;
	int err;

	for (size_t k = 0; k < om->n_vmas; k++) {
		const VmaEntry *o = om->vmas[k];
		if (pl->old_keep[k] || vdso_kind(o))
			continue;
		err = rcall(t, "munmap", SYS_munmap, o->start, o->end - o->start, 0, 0, 0, 0);
		if (err)
			return err;
	}
	if (pl->vdso_moves) {
		err = move_vdso(t, pl);
		if (err)
			return err;
	}
	for (size_t i = 0; i < nm->n_vmas; i++) {
		const VmaEntry *v = nm->vmas[i];
		if (vdso_kind(v))
			continue;
		if (!pl->keep[i]) {
			err = map_one(ctx, t, v);
		} else {
			const VmaEntry *o = NULL;
			for (size_t k = 0; k < om->n_vmas && !o; k++)
				if (om->vmas[k]->start == v->start)
					o = om->vmas[k];
			err = 0;
			if (o && o->prot != v->prot)
				err = rcall(t, "mprotect", SYS_mprotect, v->start, v->end - v->start, v->prot,
					    0, 0, 0);
			/* Pages it had that the images no longer have: back to zero (or the file). */
			if (!err && private_kind(v))
				err = discard_gone(t, t->cur_srcs, t->nr_cur_srcs, t->srcs, t->nr_srcs,
						   v->start, v->end);
		}
		if (err)
			return err;
	}
	/*
	 * Pages: in a mapping that stays, only the new top level's (the
	 * others are there already); in one mapped again, all of them.
	 */
	struct copy_ctx *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	*c = (struct copy_ctx){ .ctx = ctx, .t = t, .pl = pl, .buf = buf };
	size_t k = 0;
	err = 0;
	for (size_t i = 0; i < t->nr_srcs && !err; i++) {
		const struct page_src *r = &t->srcs[i];
		uint64_t s = r->vaddr, e = r->vaddr + r->len;
		while (s < e) {
			while (k < nm->n_vmas && nm->vmas[k]->end <= s)
				k++;
			if (k == nm->n_vmas || nm->vmas[k]->start > s) {
				pr_err("page %#llx of %d is in no mapping", (unsigned long long)s, t->pid);
				err = -EINVAL;
				break;
			}
			const VmaEntry *v = nm->vmas[k];
			uint64_t pe = e < v->end ? e : v->end;
			/* The parent's pages (PE_PARENT) in a mapping that stays are shared already. */
			bool shared = r->flags == PE_PARENT && pl->keep[k];
			if ((r->level == 0 && !shared) || !pl->keep[k]) {
				int dst_fd = t->memfd;
				uint64_t dst = s;
				if (v->kind == VMA_KIND_SHARED_ANON) {
					dst_fd = -1;
					for (size_t j = 0; j < ctx->nr_shms; j++)
						if (ctx->shms[j].shmid == v->shmid)
							dst_fd = ctx->shms[j].fd;
					dst = s - v->start + v->pgoff;
				}
				err = copy_piece(c, t, r, s, pe, dst_fd, dst);
				if (err)
					break;
			}
			s = pe;
		}
	}
	if (!err)
		err = copy_flush(c);
	*ret_bytes += c->bytes;
	free(c);
	if (!err) {
		/* What its children forked from now on inherit. */
		t->cur_mm = t->mm;
		t->cur_srcs = t->srcs;
		t->nr_cur_srcs = t->nr_srcs;
	}
	return err;
}

/* A fixup under way. */
struct fixup {
	struct rst_ctx *ctx;
	DeltaEntry **d;
	size_t nd;
	struct mm_plan *plans;	/* by task index */
	char *buf;
	uint64_t bytes;
};

static int update_mm(struct fixup *fx, size_t idx)
{
	struct rst_task *t = &fx->ctx->tasks[idx];
	int err = 0;

	if (t->fresh)
		err = plan_mm(t, &fx->plans[idx]);
	if (!err)
		err = apply_mm(fx->ctx, t, &fx->plans[idx], fx->buf, &fx->bytes);
	return err;
}

/* ---- tree changes ---- */

/* The pages of pid in the fixup's delta.img say it is a new process (a reused PID). */
static bool delta_new(DeltaEntry **d, size_t n, pid_t pid)
{
	for (size_t i = 0; i < n; i++)
		if ((pid_t)d[i]->pid == pid)
			return d[i]->state == DELTA_NEW;
	return false;
}

static int set_subreaper(struct rst_task *t)
{
	const TaskCoreEntry *tc = t->core->task;

	return rcall(t, "prctl(PR_SET_CHILD_SUBREAPER)", SYS_prctl, PR_SET_CHILD_SUBREAPER,
		     tc->has_child_subreaper && tc->child_subreaper, 0, 0, 0, 0);
}

/* Fork n (and, for a new session leader, its early children first) in its parent. */
static int birth(struct fixup *fx, size_t idx)
{
	struct rst_ctx *ctx = fx->ctx;
	struct rst_task *n = &ctx->tasks[idx];
	struct rst_task *p = &ctx->tasks[n->parent];
	int err = fork_in(p, n);

	/* Its memory before its children fork: they inherit it (copy-on-write). */
	if (!err && !n->zombie)
		err = update_mm(fx, idx);
	if (!err && !n->zombie)
		err = set_comm(n, n->core->threads[0]->comm ? n->core->threads[0]->comm :
							      n->core->task->comm);
	if (!err && !n->zombie)
		err = set_subreaper(n);
	if (err)
		return err;
	if (n->sid == n->pid) {
		for (size_t j = 0; j < n->nr_children && !err; j++) {
			size_t c = ctx->children[n->first_child + j];
			if (ctx->tasks[c].early)
				err = birth(fx, c);
		}
		if (!err)
			err = rcall(n, "setsid", SYS_setsid, 0, 0, 0, 0, 0, 0);
	} else if (n->pgid == n->pid) {
		err = rcall(n, "setpgid", SYS_setpgid, 0, 0, 0, 0, 0, 0);
	}
	for (size_t j = 0; j < n->nr_children && !err; j++) {
		size_t c = ctx->children[n->first_child + j];
		if (!ctx->tasks[c].early)
			err = birth(fx, c);
	}
	return err;
}

/* Is this task of the new images one that lives on from the frozen trees? */
static struct rst_task *kept_of(struct rst_ctx *ctx, DeltaEntry **d, size_t nd, struct rst_task *n)
{
	struct rst_task *o = find_task(ctx->prev, n->pid);

	if (!o || (o->zombie && !n->zombie) || delta_new(d, nd, n->pid))
		return NULL;
	return o;
}

/*
 * A task whose parent ended this round, or that the images show under
 * another parent, went where the kernel reparented it: check that it is
 * where the images say. New tasks are where they are forked.
 */
static int check_ppid(struct fixup *fx, struct rst_task *t)
{
	const struct rst_task *o = find_task(fx->ctx->prev, t->pid);
	pid_t want = t->ppid ? t->ppid : getpid();
	struct proc_stat st;
	int err;

	if (t->fresh || (o && o->ppid == t->ppid && (!t->ppid || find_task(fx->ctx, t->ppid)) &&
			 !delta_new(fx->d, fx->nd, t->ppid)))
		return 0;
	err = proc_parse_stat(t->pid, &st);
	if (err) {
		pr_errno(err, "cannot read /proc/%d/stat", t->pid);
		return err;
	}
	if (st.ppid != want) {
		pr_err("task %d has parent %d, the images say %d: ckpt cannot move a task to another parent",
		       t->pid, st.ppid, want);
		return -EINVAL;
	}
	return 0;
}

/*
 * Tree changes, in the order the kernel needs them: the tasks that ended
 * end (children first) and the parents that reaped a child reap it; the
 * new ones are forked (parents first) and join their groups, and those
 * that ended since end. The engine is a child subreaper: orphans come to it.
 */
static int apply_tree(struct fixup *fx)
{
	struct rst_ctx *ctx = fx->ctx, *old = ctx->prev;
	DeltaEntry **d = fx->d;
	size_t nd = fx->nd;
	int err;

	/*
	 * Subreapers first: the orphans of the tasks that end go to them, as
	 * they did. A task that exec'ed has another name.
	 */
	for (size_t i = 0; i < ctx->nr_tasks; i++) {
		struct rst_task *n = &ctx->tasks[i];
		if (n->zombie || !n->regs)
			continue;
		const struct rst_task *o = find_task(old, n->pid);
		const TaskCoreEntry *was = o->core->task, *tc = n->core->task;
		err = 0;
		if ((was->has_child_subreaper && was->child_subreaper) !=
		    (tc->has_child_subreaper && tc->child_subreaper))
			err = set_subreaper(n);
		if (!err && strcmp(was->comm, tc->comm))
			err = set_comm(n, tc->comm);
		if (err)
			return err;
	}
	for (size_t i = old->nr_tasks; i-- > 0;) {
		struct rst_task *o = &old->tasks[i];
		struct rst_task *n = find_task(ctx, o->pid);
		bool gone = !n || delta_new(d, nd, o->pid);
		if (o->zombie)
			continue;
		if (gone)
			err = kill_one(o);
		else if (n->zombie)
			err = end_as_zombie(o, n->zombie_status, n->comm);
		else
			continue;
		if (err)
			return err;
		pr_info("%d %s", o->pid, gone ? "ended" : "became a zombie");
	}
	/*
	 * What was reaped since: by its parent if that lives on, else by us
	 * (its subreaper now); before any fork, as a zombie holds its PID.
	 */
	for (size_t i = 0; i < old->nr_tasks; i++) {
		struct rst_task *o = &old->tasks[i];
		struct rst_task *n = find_task(ctx, o->pid);
		if (n && !delta_new(d, nd, o->pid))
			continue;
		struct rst_task *p = o->ppid ? find_task(ctx, o->ppid) : NULL;
		if (p && !p->zombie && p->regs) {
			long ret;
			err = rsys(p, "wait4", &ret, SYS_wait4, o->pid, 0, __WALL, 0, 0, 0);
			if (!err && ret != o->pid) {
				pr_errno(ret < 0 ? (int)ret : -ECHILD, "%d cannot reap %d", p->pid, o->pid);
				err = -ECHILD;
			}
		} else {
			int status;
			err = waitpid(o->pid, &status, __WALL | WNOHANG) < 0 && errno != ECHILD ? -errno : 0;
		}
		if (err)
			return err;
	}
	/* The tasks that live on get their memory first: new children inherit it. */
	for (size_t i = 0; i < ctx->nr_tasks; i++) {
		struct rst_task *n = &ctx->tasks[i];
		if (n->zombie || !n->regs)
			continue;
		err = update_mm(fx, i);
		if (err)
			return err;
	}
	for (size_t i = 0; i < ctx->nr_tasks; i++) {
		struct rst_task *n = &ctx->tasks[i];
		if (kept_of(ctx, d, nd, n) || n->regs)
			continue;
		if (n->parent < 0) {
			pr_err("the images have a new root %d; a fixup cannot add roots", n->pid);
			return -EINVAL;
		}
		struct rst_task *p = &ctx->tasks[n->parent];
		if (p->zombie || !p->regs) {
			pr_err("new task %d has parent %d, which is not a frozen task", n->pid, p->pid);
			return -EINVAL;
		}
		err = birth(fx, i);
		if (err)
			return err;
	}
	/* Groups and sessions: new tasks join theirs, tasks that moved move; then new zombies end. */
	for (size_t i = 0; i < ctx->nr_tasks; i++) {
		struct rst_task *n = &ctx->tasks[i];
		struct rst_task *o = kept_of(ctx, d, nd, n);
		if (o && (o->zombie || n->zombie))
			continue;	/* ended above, or a zombie already */
		bool own_group = false;
		if (o && o->sid != n->sid) {
			if (n->sid != n->pid) {
				pr_err("%d moved to session %d; only setsid() can change a session", n->pid,
				       n->sid);
				return -EINVAL;
			}
			err = rcall(n, "setsid", SYS_setsid, 0, 0, 0, 0, 0, 0);
			if (err)
				return err;
			own_group = true;	/* setsid made it the leader of its own group */
		}
		pid_t pg = n->pgid_outside ? ctx->own_pgid : n->pgid;
		if (own_group ? n->pgid != n->pid : o ? o->pgid != n->pgid : n->pgid != n->pid) {
			err = rcall(n, "setpgid", SYS_setpgid, 0, pg == n->pid ? 0 : pg, 0, 0, 0, 0);
			if (err)
				return err;
		}
		if (n->zombie) {
			err = end_as_zombie(n, n->zombie_status, n->comm);
			if (err)
				return err;
		}
	}
	for (size_t i = 0; i < ctx->nr_tasks; i++) {
		err = check_ppid(fx, &ctx->tasks[i]);
		if (err)
			return err;
	}
	return 0;
}

/* ---- the frozen trees ---- */

/* Is pid traced by us (so it is one of ours, not a stranger that got a PID we used)? */
static bool ours(pid_t pid)
{
	struct proc_status st;

	return proc_parse_status(pid, &st) == 0 && st.tracer == getpid();
}

/*
 * Kill every task of ctx still there and wait for each; then reap what
 * came to us as the orphans' subreaper (zombies of dead parents). Other
 * children of ours (a helper of the caller's) are left alone.
 */
static void kill_all(struct rst_ctx *ctx)
{
	int status;
	pid_t pid;

	for (size_t i = 0; i < ctx->nr_tasks; i++) {
		/* A zombie goes with its parent (or comes to us, its subreaper). */
		pid = ctx->tasks[i].pid;
		if (!ctx->tasks[i].zombie && ours(pid) && kill(pid, SIGKILL) == 0)
			(void)infect_wait(pid, &status, 2000);
	}
	for (size_t i = 0; i < ctx->nr_tasks; i++)
		waitpid(ctx->tasks[i].pid, &status, __WALL | WNOHANG);
}

/*
 * Free a context of the incremental restore. Once the trees are held, no
 * restorer region is reserved in ckpt any more (restore_frozen_start
 * gives them up): restore_free_ctx must not unmap them.
 */
static void free_ctx(struct rst_ctx *ctx, bool held)
{
	if (!ctx)
		return;
	for (size_t i = 0; held && i < ctx->nr_tasks; i++)
		ctx->tasks[i].region = 0;
	if (ctx->engine_pidfd > 0)
		close(ctx->engine_pidfd);
	free((char *)ctx->opts->dir);
	free(ctx->opts);
	restore_free_ctx(ctx);
	free(ctx);
}

static void free_frozen(struct rst_ctx *ctx)
{
	free_ctx(ctx, true);
}

/* After the first restore stopped: what the fixups need of every live task. */
static int hold(struct rst_ctx *ctx)
{
	for (size_t i = 0; i < ctx->nr_tasks; i++) {
		struct rst_task *t = &ctx->tasks[i];
		struct restorer_args *a = t->args;
		if (t->zombie)
			continue;
		int err = get_regs(t);
		if (!err)
			err = open_mem(t);
		if (err)
			return err;
		if (ptrace(PTRACE_SETOPTIONS, t->pid, NULL,
			   PTRACE_O_EXITKILL | PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACECLONE |
				   PTRACE_O_TRACEFORK) < 0) {
			err = -errno;
			pr_perror("cannot set the ptrace options of %d", t->pid);
			return err;
		}
		t->vdso_parts = calloc(4, sizeof(*t->vdso_parts));
		if (!t->vdso_parts)
			return -ENOMEM;
		t->nr_vdso_parts = a->vdso_new_start ? a->nr_vdso_parts : 0;
		for (uint32_t k = 0; k < t->nr_vdso_parts; k++)
			t->vdso_parts[k] = (struct restorer_range){
				a->vdso_parts[k].start - a->vdso_cur_start + a->vdso_new_start,
				a->vdso_parts[k].end - a->vdso_cur_start + a->vdso_new_start,
			};
		t->cur_mm = t->mm;
		t->cur_srcs = t->srcs;
		t->nr_cur_srcs = t->nr_srcs;
	}
	return 0;
}

static struct rst_ctx *new_ctx(const struct restore_opts *o, const char *dir)
{
	struct rst_ctx *ctx = calloc(1, sizeof(*ctx));
	struct restore_opts *copy = malloc(sizeof(*copy));

	if (!ctx || !copy || !(dir = strdup(dir))) {
		free(ctx);
		free(copy);
		return NULL;
	}
	*copy = *o;
	copy->dir = dir;
	ctx->opts = copy;
	ctx->dirfd = -1;
	ctx->engine_pidfd = -1;
	return ctx;
}

int restore_frozen_start(struct restore_opts *o, struct rst_ctx **ret)
{
	struct rst_ctx *ctx = new_ctx(o, o->dir);
	int err;

	*ret = NULL;
	if (!ctx)
		return -ENOMEM;
	err = infect_init();
	if (err)
		goto fail_free;
	struct rlimit nofile;
	if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
		nofile.rlim_cur = nofile.rlim_max;
		setrlimit(RLIMIT_NOFILE, &nofile);
	}
	ctx->frozen_round = true;
	err = restore_prepare(ctx);
	if (err)
		goto fail_free;
	ctx->engine_pidfd = syscall(SYS_pidfd_open, getpid(), 0);
	if (ctx->engine_pidfd < 0) {
		err = -errno;
		pr_perror("cannot open a pidfd of ckpt");
		goto fail_free;
	}
	/* Each task keeps a pidfd of ours after its restorer's fds: fixups take fds through it. */
	for (size_t i = 0; i < ctx->nr_tasks && !err; i++) {
		struct rst_task *t = &ctx->tasks[i];
		if (t->zombie)
			continue;
		int *r = realloc(t->rfds, (t->nr_rfds + 1) * sizeof(int));
		if (!r) {
			err = -ENOMEM;
			break;
		}
		t->rfds = r;
		r[t->nr_rfds] = fcntl(ctx->engine_pidfd, F_DUPFD_CLOEXEC, 0);
		if (r[t->nr_rfds] < 0) {
			err = -errno;
			break;
		}
		t->pidfd_slot = t->fd_base + t->nr_rfds++;
		((struct restorer_args *)t->args)->keep_frozen = 1;
	}
	if (err)
		goto fail_free;
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
		err = -errno;
		pr_perror("cannot become a child subreaper");
		goto fail_free;
	}
	ctx->frozen_round = true;
	err = restore_build(ctx);
	if (!err)
		err = hold(ctx);
	if (err) {
		restore_kill_tasks(ctx);
		prctl(PR_SET_CHILD_SUBREAPER, 0);
		goto fail_free;
	}
	/* The engine's own reservations of the regions are not needed any more. */
	for (size_t i = 0; i < ctx->nr_tasks; i++) {
		struct rst_task *t = &ctx->tasks[i];
		if (!t->zombie)
			munmap((void *)t->region, t->region_len);
	}
	pr_info("%zu task(s) restored and held frozen", ctx->nr_tasks);
	*ret = ctx;
	return 0;
fail_free:
	free_ctx(ctx, false);
	return err;
}

/*
 * Load the fixup's images and check everything that can be checked
 * before the frozen trees change: the chain leads to the current top,
 * and every task's mapping plan is possible.
 */
static int fixup_load(struct rst_ctx *cur, struct rst_ctx *ctx, DeltaEntry ***d, size_t *nd)
{
	int err;

	ctx->dirfd = open(ctx->opts->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (ctx->dirfd < 0) {
		err = -errno;
		pr_perror("cannot open the image directory '%s'", ctx->opts->dir);
		return err;
	}
	err = restore_load_images(ctx);
	if (err)
		return err;
	const char *want = cur->inv->dump_id ? cur->inv->dump_id : "";
	if (ctx->chain.n < 2 || !ctx->chain.invs[1] || !ctx->chain.invs[1]->dump_id ||
	    strcmp(ctx->chain.invs[1]->dump_id, want)) {
		pr_err("'%s' is not a delta of the frozen images '%s' (its parent_dump_id is %s, theirs is %s)",
		       ctx->opts->dir, cur->opts->dir,
		       ctx->inv->parent_dump_id ? ctx->inv->parent_dump_id : "none", want);
		return -EINVAL;
	}
	err = img_load_all(ctx->dirfd, IMG_DELTA, 0, false, (void ***)d, nd);
	if (err)
		return err;
	/* The frozen trees' shared memory objects stay; new ones are made. */
	ctx->shms = cur->shms;
	ctx->nr_shms = cur->nr_shms;
	cur->shms = NULL;
	cur->nr_shms = 0;
	return restore_mm_shm_prepare(ctx);
}

/*
 * What a frozen task is now (its place in memory, its stop, its fds of
 * ours) goes from one context's task to the other's: to a fixup's, and
 * back when the fixup is refused.
 */
static void hand_over(struct rst_task *to, struct rst_task *from)
{
	to->region = from->region;
	to->region_len = from->region_len;
	to->pidfd_slot = from->pidfd_slot;
	to->nr_vdso_parts = from->nr_vdso_parts;
	to->vdso_parts = from->vdso_parts;
	to->regs = from->regs;
	to->memfd = from->memfd;
	from->vdso_parts = NULL;
	from->regs = NULL;
	from->memfd = -1;
}

int restore_frozen_fixup(struct rst_ctx *cur, const char *dir)
{
	struct rst_ctx *ctx = new_ctx(cur->opts, dir);
	struct fixup fx = { .ctx = ctx };
	uint64_t t0 = now_ns(CLOCK_MONOTONIC), t_load;
	bool changed = false;
	int err;

	if (!ctx)
		return -ENOMEM;
	ctx->prev = cur;
	ctx->own_pgid = cur->own_pgid;
	ctx->own_sid = cur->own_sid;
	for (size_t i = 0; i < ctx->nr_tasks; i++)
		ctx->tasks[i].memfd = -1;
	err = fixup_load(cur, ctx, &fx.d, &fx.nd);
	t_load = now_ns(CLOCK_MONOTONIC);
	/* Each task that lives on takes over what the frozen one has. */
	for (size_t i = 0; i < ctx->nr_tasks && !err; i++) {
		struct rst_task *n = &ctx->tasks[i];
		struct rst_task *o = kept_of(ctx, fx.d, fx.nd, n);
		if (!o || o->zombie || n->zombie)
			continue;
		hand_over(n, o);
		n->cur_mm = o->mm;
		n->cur_srcs = o->srcs;
		n->nr_cur_srcs = o->nr_srcs;
	}
	fx.plans = calloc(ctx->nr_tasks + 1, sizeof(*fx.plans));
	fx.buf = malloc(COPY_BUF);
	if (!err && (!fx.plans || !fx.buf))
		err = -ENOMEM;
	/* Nothing has changed yet: a failure up to here leaves the frozen trees as they were. */
	for (size_t i = 0; i < ctx->nr_tasks && !err; i++) {
		struct rst_task *n = &ctx->tasks[i];
		if (!n->zombie && n->regs)
			err = plan_mm(n, &fx.plans[i]);
	}
	if (!err) {
		changed = true;
		err = apply_tree(&fx);
	}
	for (size_t i = 0; fx.plans && i < ctx->nr_tasks; i++)
		free_plan(&fx.plans[i], ctx->chain.n);
	free(fx.plans);
	free(fx.buf);
	img_free_all(IMG_DELTA, (void **)fx.d, fx.nd);
	ctx->prev = NULL;
	if (err && changed) {
		pr_err("the fixup with '%s' failed half way; the frozen trees cannot be kept", dir);
		/* The caller aborts: what was forked here is in ctx, the rest in cur. */
		kill_all(ctx);
		kill_all(cur);
		cur->lost = true;
	} else if (err) {
		/* Everything back to cur. */
		for (size_t i = 0; i < ctx->nr_tasks; i++) {
			struct rst_task *n = &ctx->tasks[i];
			struct rst_task *o = find_task(cur, n->pid);
			if (o && n->regs)
				hand_over(o, n);
		}
		if (!cur->shms) {
			cur->shms = ctx->shms;
			cur->nr_shms = ctx->nr_shms;
			ctx->shms = NULL;
			ctx->nr_shms = 0;
		}
		pr_err("fixup '%s' refused; the frozen trees are unchanged", dir);
	} else {
		for (size_t i = 0; i < ctx->nr_tasks; i++)
			ctx->tasks[i].fresh = false;
		ctx->engine_pidfd = cur->engine_pidfd;
		cur->engine_pidfd = -1;
		pr_info("fixup '%s' applied: %zu task(s), %llu bytes of pages, %.3f ms (images loaded and checked in %.3f ms)",
			dir, ctx->nr_tasks, (unsigned long long)fx.bytes,
			(now_ns(CLOCK_MONOTONIC) - t0) / 1e6, (t_load - t0) / 1e6);
		/* ctx replaces cur, in place, so the caller's pointer stays good. */
		struct rst_ctx tmp = *cur;
		*cur = *ctx;
		*ctx = tmp;
	}
	free_frozen(ctx);
	return err;
}

/* ---- the final step ---- */

/* A path into t's memory, in the new region's stack (unused until the restorer runs). */
static int put_path(struct rst_task *t, const char *path, uint64_t *ret)
{
	size_t len = strlen(path) + 1;

	if (len > RESTORER_STACK_SIZE / 2)
		return -ENAMETOOLONG;
	*ret = t->stack_top - RESTORER_STACK_SIZE / 2;
	return mem_write(t, *ret, path, len);
}

/*
 * What the first round's libc stage set and the final images may have
 * changed since: working directory, root, umask, personality (as
 * task_main does it: chdir, then chroot).
 */
static int set_fs_state(struct rst_task *t)
{
	const TaskCoreEntry *tc = t->core->task;
	uint64_t at;
	int err = put_path(t, tc->cwd, &at);

	if (!err)
		err = rcall(t, "chdir", SYS_chdir, at, 0, 0, 0, 0, 0);
	if (!err && strcmp(tc->root, "/")) {
		err = put_path(t, tc->root, &at);
		if (!err)
			err = rcall(t, "chroot", SYS_chroot, at, 0, 0, 0, 0, 0);
	}
	if (!err)
		err = rcall(t, "umask", SYS_umask, tc->umask, 0, 0, 0, 0, 0);
	if (!err)
		err = rcall(t, "personality", SYS_personality, tc->personality, 0, 0, 0, 0, 0);
	if (err)
		pr_err("cannot set the working directory '%s', root '%s', umask or personality of %d",
		       tc->cwd, tc->root, t->pid);
	return err;
}

/*
 * Start t's restorer again in a fresh region with the final args: map it
 * through the old region's syscall instruction, fill it through
 * /proc/PID/mem, unmap the old one through the new one's, then jump.
 */
static int inject(struct rst_task *t, uint64_t old, size_t old_len)
{
	uint64_t region = t->region;
	long ret;
	int err;

	t->region = old;
	err = rsys(t, "mmap of the restorer", &ret, SYS_mmap, region, t->region_len,
		   PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
		   (uint64_t)-1, 0);
	t->region = region;
	if (!err && (uint64_t)ret != region) {
		err = ret < 0 && ret > -4096 ? (int)ret : -EEXIST;
		pr_errno(err, "cannot map the restorer at %#llx in %d", (unsigned long long)region, t->pid);
	}
	if (!err)
		err = mem_write(t, region, blob_bytes(BLOB_RESTORER), blob_size(BLOB_RESTORER));
	if (!err)
		err = mem_write(t, region + blob_map_size(BLOB_RESTORER), t->args, t->args_len);
	/* Through the new region's syscall instruction, now that it is there. */
	if (!err)
		err = set_fs_state(t);
	if (!err)
		err = rcall(t, "munmap of the old restorer", SYS_munmap, old, old_len, 0, 0, 0, 0);
	if (err)
		return err;
	struct user_regs_struct r = *t->regs;
	r.rip = region + blob_sym_off(BLOB_RESTORER, BLOB_SYM_ENTRY);
	r.rsp = t->stack_top;
	r.rdi = region + blob_map_size(BLOB_RESTORER);
	r.orig_rax = -1;
	err = set_regs(t->pid, &r);
	if (!err && ptrace(PTRACE_CONT, t->pid, NULL, NULL) < 0) {
		err = -errno;
		pr_perror("cannot start the restorer of %d again", t->pid);
	}
	return err;
}

/* What a full restore's first round left in a task's plan: made again for the final images. */
static void drop_first_plan(struct rst_task *t)
{
	for (size_t k = 1; k < t->nr_rfds; k++)
		if (t->rfds[k] >= 0)
			close(t->rfds[k]);
	free(t->rfds);
	free(t->shm_slots);
	free(t->level_slots);
	free(t->plan);
	free(t->args);
	t->rfds = NULL;
	t->shm_slots = NULL;
	t->level_slots = NULL;
	t->plan = NULL;
	t->args = NULL;
	t->nr_rfds = t->nr_shm_slots = t->nr_plan = 0;
	/* The first round's copy-on-write plan is spent. */
	free(t->premap);
	free(t->premap_fresh);
	t->premap = NULL;
	t->premap_fresh = NULL;
}

int restore_frozen_finish(struct rst_ctx *ctx)
{
	uint64_t t0 = now_ns(CLOCK_MONOTONIC);
	int err = 0;

	if (ctx->inv->pages_after_thaw) {
		pr_err("the pages in '%s' were copied while the tree ran (a --leave-running round); resume needs a round taken without --leave-running: the trees stay frozen",
		       ctx->opts->dir);
		return -EAGAIN;
	}
	ctx->mm_kept = true;
	ctx->frozen_round = false;
	for (size_t i = 0; i < ctx->nr_tasks && !err; i++) {
		struct rst_task *t = &ctx->tasks[i];
		if (t->zombie)
			continue;
		struct restorer_range busy[5];
		size_t nb = 0;
		uint64_t old = t->region;
		size_t old_len = t->region_len;
		busy[nb++] = (struct restorer_range){ old, old + old_len };
		for (uint32_t k = 0; k < t->nr_vdso_parts && nb < 5; k++)
			busy[nb++] = t->vdso_parts[k];
		drop_first_plan(t);
		err = restore_files_prepare(ctx, t);
		if (!err)
			err = restore_mm_prepare_kept(ctx, t, busy, nb);
		if (!err)
			err = inject(t, old, old_len);
	}
	if (!err)
		err = restore_run_restorers(ctx);
	for (size_t i = 0; i < ctx->nr_tasks && !err; i++)
		if (!ctx->tasks[i].zombie)
			err = restore_finish_task(&ctx->tasks[i]);
	if (!err && ctx->opts->pidfile)
		err = restore_write_pidfile(ctx->opts->pidfile, ctx->tasks[0].pid);
	if (err) {
		pr_err("the final step failed; the restored trees are killed");
		return err;
	}
	pr_info("final state of '%s' in place in %.3f ms", ctx->opts->dir,
		(now_ns(CLOCK_MONOTONIC) - t0) / 1e6);
	return 0;
}

void restore_frozen_release(struct rst_ctx *ctx)
{
	/*
	 * Only now (a migration's source is past the point of no return):
	 * the peers reach the restored sockets again, then those leave
	 * repair mode; a failure is the connections', the tasks run anyway.
	 */
	if (ctx->inv->net_lock)
		restore_unlock_network(ctx->inv);
	if (restore_inet_finish(ctx))
		pr_warn("the restored TCP connections may not work");
	prctl(PR_SET_CHILD_SUBREAPER, 0);
	restore_release_tasks(ctx);
}

void restore_frozen_abort(struct rst_ctx *ctx)
{
	if (!ctx)
		return;
	kill_all(ctx);
	prctl(PR_SET_CHILD_SUBREAPER, 0);
	free_frozen(ctx);
}

size_t restore_frozen_roots(const struct rst_ctx *ctx, pid_t *out, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < ctx->nr_tasks && n < max; i++)
		if (!ctx->tasks[i].ppid)
			out[n++] = ctx->tasks[i].pid;
	return n;
}

void restore_frozen_free(struct rst_ctx *ctx)
{
	free_frozen(ctx);
}
