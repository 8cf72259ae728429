// SPDX-License-Identifier: MIT
#define LOG_PREFIX "dump: "
#include <dirent.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "inventory.pb-c.h"
#include "pstree.pb-c.h"

#include "aio_inflight.h"
#include "ckpt.h"
#include "dump.h"
#include "image.h"
#include "kerndat.h"
#include "log.h"
#include "netlock.h"

#define DUMP_ATTEMPTS 8
#define ERESTARTSYS 512
#define ERESTARTNOINTR 513
#define ERESTARTNOHAND 514
#define ERESTART_RESTARTBLOCK 516

#ifndef PTRACE_GET_RSEQ_CONFIGURATION
#define PTRACE_GET_RSEQ_CONFIGURATION 0x420f
#endif

#ifndef PTRACE_PEEKSIGINFO_SHARED
#define PTRACE_PEEKSIGINFO_SHARED 1
#endif

static uint64_t now_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

int dump_parse_roots(const char *cmd, const char *arg, struct dump_opts *o)
{
	const char *p = arg;

	while (*p) {
		char *end;
		long v = strtol(p, &end, 10);
		if (end == p || v <= 0 || v > (1 << 22) || (*end && *end != ',' && *end != ':')) {
			fprintf(stderr, "ckpt %s: bad PID list '%s'\n", cmd, arg);
			return -1;
		}
		for (size_t i = 0; i < o->nr_roots; i++) {
			if (o->roots[i] == v) {
				fprintf(stderr, "ckpt %s: PID %ld is given twice in '%s'\n", cmd, v,
					arg);
				return -1;
			}
		}
		pid_t *r = realloc(o->roots, (o->nr_roots + 1) * sizeof(*r));
		if (!r)
			return -1;
		o->roots = r;
		o->roots[o->nr_roots++] = v;
		p = *end ? end + 1 : end;
	}
	return o->nr_roots ? 0 : -1;
}

static int collect_pending(pid_t tid, bool shared, SiginfoEntry ***ret, size_t *ret_n)
{
	struct __ptrace_peeksiginfo_args a = { .flags = shared ? PTRACE_PEEKSIGINFO_SHARED : 0, .nr = 32 };
	uint8_t buf[32][128];
	SiginfoEntry **list = NULL;
	size_t n = 0;
	int err = 0;

	for (;;) {
		a.off = n;
		long got = ptrace(PTRACE_PEEKSIGINFO, tid, &a, buf);
		if (got < 0) {
			err = -errno;
			pr_perror("cannot read pending signals of %d", tid);
			goto fail;
		}
		if (got == 0)
			break;
		SiginfoEntry **nl = realloc(list, (n + got) * sizeof(*nl));
		if (!nl) {
			err = -ENOMEM;
			goto fail;
		}
		list = nl;
		for (long i = 0; i < got; i++) {
			SiginfoEntry *e = calloc(1, sizeof(*e) + 128);
			if (!e) {
				err = -ENOMEM;
				goto fail;
			}
			siginfo_entry__init(e);
			e->siginfo.data = (uint8_t *)(e + 1);
			e->siginfo.len = 128;
			memcpy(e->siginfo.data, buf[i], 128);
			list[n++] = e;
		}
	}
	*ret = list;
	*ret_n = n;
	return 0;
fail:
	for (size_t i = 0; i < n; i++)
		free(list[i]);
	free(list);
	return err;
}

/*
 * The registers a restored task resumes with. A task frozen inside an
 * interrupted syscall has rax = -ERESTART*; the kernel would restart the
 * call when the task resumes, but sigreturn on restore does not, so do
 * here what the kernel's signal path does when no handler runs.
 *
 * -ERESTART_RESTARTBLOCK resumes through restart_syscall() and a restart
 * block that stays in the old kernel. For the relative sleeps the kernel
 * has already copied the remaining time to the caller's `rem` when it was
 * interrupted (do_nanosleep, TT_NATIVE), so the restored task re-enters
 * the sleep with `rem` as its request. Without `rem`, and for the other
 * restart-block users (poll, futex waits), it sees EINTR, as after a
 * signal.
 */
static void fixup_syscall_restart(pid_t pid, struct user_regs_struct *r, int64_t *ret_in_syscall)
{
	*ret_in_syscall = (int64_t)r->orig_rax;
	if ((int64_t)r->orig_rax < 0)
		return;
	switch ((int64_t)r->rax) {
	case -ERESTARTNOHAND:
	case -ERESTARTSYS:
	case -ERESTARTNOINTR:
		r->rax = r->orig_rax;
		r->rip -= 2;
		break;
	case -ERESTART_RESTARTBLOCK:
		if (r->orig_rax == SYS_clock_nanosleep && r->r10 && !(r->rsi & TIMER_ABSTIME)) {
			r->rdx = r->r10;
		} else if (r->orig_rax == SYS_nanosleep && r->rsi) {
			r->rdi = r->rsi;
		} else {
			pr_warn("task %d was in syscall %lld with a restart block; it will see EINTR",
				pid, (long long)r->orig_rax);
			r->rax = -EINTR;
			break;
		}
		r->rax = r->orig_rax;
		r->rip -= 2;
		break;
	}
}

static int collect_caps(pid_t pid, CredsEntry *c)
{
	cap_t caps = cap_get_pid(pid);

	if (!caps) {
		int err = -errno;
		pr_perror("cannot read capabilities of %d", pid);
		return err;
	}
	c->cap_eff = c->cap_prm = c->cap_inh = 0;
	for (int cap = 0; cap <= CAP_LAST_CAP && cap < 64; cap++) {
		cap_flag_value_t v;
		if (!cap_get_flag(caps, cap, CAP_EFFECTIVE, &v) && v)
			c->cap_eff |= 1ull << cap;
		if (!cap_get_flag(caps, cap, CAP_PERMITTED, &v) && v)
			c->cap_prm |= 1ull << cap;
		if (!cap_get_flag(caps, cap, CAP_INHERITABLE, &v) && v)
			c->cap_inh |= 1ull << cap;
	}
	cap_free(caps);
	return 0;
}

static void free_siginfos(SiginfoEntry **l, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(l[i]);
	free(l);
}

static void free_thread_core(ThreadCoreEntry *th)
{
	if (!th)
		return;
	free_siginfos(th->pending, th->n_pending);
	free(th);
}

/* One thread's ThreadCoreEntry, with everything it points at in one block. */
static int thread_core(struct dump_thread *d, ThreadCoreEntry **ret)
{
	struct thread_block {
		ThreadCoreEntry th;
		UserRegsEntry regs;
		SigaltstackEntry alt;
		RseqEntry rseq;
	} *b = calloc(1, sizeof(*b));
	struct infect_task *it = d->it;
	struct user_regs_struct r = it->regs;
	int64_t in_syscall;
	int err;

	if (!b)
		return -ENOMEM;
	thread_core_entry__init(&b->th);
	user_regs_entry__init(&b->regs);
	sigaltstack_entry__init(&b->alt);
	rseq_entry__init(&b->rseq);
	ThreadCoreEntry *th = &b->th;
	fixup_syscall_restart(it->pid, &r, &in_syscall);
#define R(f, g) b->regs.f = r.g
	R(r15, r15); R(r14, r14); R(r13, r13); R(r12, r12); R(bp, rbp); R(bx, rbx); R(r11, r11);
	R(r10, r10); R(r9, r9); R(r8, r8); R(ax, rax); R(cx, rcx); R(dx, rdx); R(si, rsi);
	R(di, rdi); R(orig_ax, orig_rax); R(ip, rip); R(cs, cs); R(flags, eflags); R(sp, rsp);
	R(ss, ss); R(fs_base, fs_base); R(gs_base, gs_base); R(ds, ds); R(es, es); R(fs, fs);
	R(gs, gs);
#undef R
	th->tid = it->pid;
	th->gpregs = &b->regs;
	th->has_xsave = true;
	th->xsave.data = it->xsave;
	th->xsave.len = it->xsave_len;
	th->blocked = it->sigmask;
	b->alt.sp = d->alt_sp;
	b->alt.size = d->alt_size;
	b->alt.flags = d->alt_flags;
	th->altstack = &b->alt;
	th->comm = d->comm;
	th->has_in_syscall = true;
	th->in_syscall = in_syscall;
	th->has_clear_tid = true;
	th->clear_tid = d->clear_tid;
	th->has_robust_list = true;
	th->robust_list = d->robust;
	th->has_robust_len = true;
	th->robust_len = d->robust_len;
	/* struct ptrace_rseq_configuration (uapi/linux/ptrace.h, 5.13). */
	struct rseq_conf {
		uint64_t ptr;
		uint32_t len, sig, flags, pad;
	} rc = {};
	if (ptrace(PTRACE_GET_RSEQ_CONFIGURATION, it->pid, sizeof(rc), &rc) < 0) {
		err = -errno;
		pr_perror("cannot read the rseq registration of %d", it->pid);
		free(b);
		return err;
	}
	if (rc.ptr) {
		b->rseq.ptr = rc.ptr;
		b->rseq.len = rc.len;
		b->rseq.sig = rc.sig;
		b->rseq.has_flags = true;
		b->rseq.flags = rc.flags;
		th->rseq = &b->rseq;
	}
	err = collect_pending(it->pid, false, &th->pending, &th->n_pending);
	if (err) {
		free(b);
		return err;
	}
	*ret = th;
	return 0;
}

static int write_core(struct dump_ctx *ctx, struct dump_task *task)
{
	struct parasite_task_state *ps = &task->pstate;
	struct proc_status *st = &task->it.status;
	CoreEntry core = CORE_ENTRY__INIT;
	TaskCoreEntry tc = TASK_CORE_ENTRY__INIT;
	CredsEntry creds = CREDS_ENTRY__INIT;
	RlimitEntry rl[RLIM_NLIMITS], *rlp[RLIM_NLIMITS];
	SigactionEntry sa[64], *sap[64];
	ItimerEntry it[3], *itp[3];
	char buf[PATH_MAX], cwd[PATH_MAX], root[PATH_MAX];
	ThreadCoreEntry **ths = calloc(task->nr_threads, sizeof(*ths));
	int err = 0;

	if (!ths)
		return -ENOMEM;
	for (size_t i = 0; i < task->nr_threads && !err; i++)
		err = thread_core(&task->threads[i], &ths[i]);
	if (err)
		goto out;
	err = collect_pending(task->pid, true, &tc.shared_pending, &tc.n_shared_pending);
	if (!err)
		err = dump_timers(task, &tc, ths);
	if (err)
		goto out;

	tc.comm = task->stat.comm;
	err = proc_read_file(task->pid, "personality", buf, sizeof(buf));
	if (err < 0) {
		pr_errno(err, "cannot read the personality of %d", task->pid);
		goto out;
	}
	tc.personality = strtoul(buf, NULL, 16);
	tc.umask = st->umask;
	creds.uid = st->uid[0];
	creds.euid = st->uid[1];
	creds.suid = st->uid[2];
	creds.fsuid = st->uid[3];
	creds.gid = st->gid[0];
	creds.egid = st->gid[1];
	creds.sgid = st->gid[2];
	creds.fsgid = st->gid[3];
	creds.groups = st->groups;
	creds.n_groups = st->nr_groups;
	err = collect_caps(task->pid, &creds);
	if (err)
		goto out;
	creds.cap_bnd = st->cap_bnd;
	creds.cap_amb = st->cap_amb;
	creds.securebits = ps->securebits;
	tc.creds = &creds;
	_Static_assert(RLIM_NLIMITS <= 16, "rlimits fit the parasite's table");
	for (int i = 0; i < RLIM_NLIMITS; i++) {
		rlimit_entry__init(&rl[i]);
		rl[i].resource = i;
		rl[i].cur = ps->rlimits[i][0];
		rl[i].max = ps->rlimits[i][1];
		rlp[i] = &rl[i];
	}
	tc.rlimits = rlp;
	tc.n_rlimits = RLIM_NLIMITS;
	for (int sig = 1; sig <= 64; sig++) {
		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		SigactionEntry *e = &sa[tc.n_sigactions];
		sigaction_entry__init(e);
		e->sig = sig;
		e->handler = ps->sigactions[sig - 1].handler;
		e->flags = ps->sigactions[sig - 1].flags;
		e->restorer = ps->sigactions[sig - 1].restorer;
		e->mask = ps->sigactions[sig - 1].mask;
		sap[tc.n_sigactions++] = e;
	}
	tc.sigactions = sap;
	for (int i = 0; i < 3; i++) {
		itimer_entry__init(&it[i]);
		it[i].which = i;
		it[i].value_us = ps->itimers[i].value_sec * 1000000 + ps->itimers[i].value_usec;
		it[i].interval_us = ps->itimers[i].interval_sec * 1000000 + ps->itimers[i].interval_usec;
		itp[i] = &it[i];
	}
	tc.itimers = itp;
	tc.n_itimers = 3;
	tc.pdeathsig = ps->pdeathsig;
	tc.dumpable = ps->dumpable;
	err = proc_read_file(task->pid, "timerslack_ns", buf, sizeof(buf));
	if (err < 0) {
		pr_errno(err, "cannot read the timer slack of %d", task->pid);
		goto out;
	}
	tc.timer_slack_ns = strtoull(buf, NULL, 10);
	tc.no_new_privs = st->no_new_privs;
	tc.seccomp_mode = st->seccomp;
	err = proc_readlink(task->pid, "cwd", cwd, sizeof(cwd));
	if (!err)
		err = proc_readlink(task->pid, "root", root, sizeof(root));
	if (err) {
		pr_errno(err, "cannot read cwd/root of %d", task->pid);
		goto out;
	}
	if (strstr(cwd, " (deleted)")) {
		pr_err("the working directory of %d, '%s', is deleted", task->pid, cwd);
		err = -ENOENT;
		goto out;
	}
	tc.cwd = cwd;
	tc.root = root;
	tc.has_exit_signal = true;
	tc.exit_signal = task->stat.exit_signal;
	tc.has_stop_signal = true;
	tc.stop_signal = task->it.stop_sig;
	tc.has_child_subreaper = true;
	tc.child_subreaper = task->child_subreaper;

	core.task = &tc;
	core.threads = ths;
	core.n_threads = task->nr_threads;
	err = img_store_one(ctx->dirfd, IMG_CORE, task->pid, &core);
out:
	for (size_t i = 0; i < task->nr_threads; i++)
		free_thread_core(ths[i]);
	free(ths);
	free_siginfos(tc.shared_pending, tc.n_shared_pending);
	dump_timers_free(&tc);
	return err;
}

/* What ckpt cannot dump yet is refused here, before anything is written. */
static int check_task(struct dump_task *task)
{
	if (task->it.status.nr_groups > 256) {
		pr_err("task %d is in %d supplementary groups; more than 256 are not supported yet",
		       task->pid, task->it.status.nr_groups);
		return -EOPNOTSUPP;
	}
	if (task->it.status.seccomp == 2) {
		pr_err("task %d uses seccomp filters (%d); dumping seccomp filters is not supported yet",
		       task->pid, task->it.status.seccomp_filters);
		return -EOPNOTSUPP;
	}
	if (task->it.status.seccomp == 1) {
		pr_err("task %d is in seccomp strict mode, which is not supported yet", task->pid);
		return -EOPNOTSUPP;
	}
	return 0;
}

/* The credential lines of /proc/PID/task/TID/status, for comparing threads. */
static int thread_creds(pid_t pid, pid_t tid, char *buf, size_t len)
{
	static const char *const keys[] = { "Uid:", "Gid:", "Groups:", "CapInh:", "CapPrm:",
					     "CapEff:", "CapBnd:", "CapAmb:", "NoNewPrivs:" };
	char name[64], status[16384], *line, *save;
	size_t n = 0;

	snprintf(name, sizeof(name), "task/%d/status", tid);
	ssize_t r = proc_read_file(pid, name, status, sizeof(status));
	if (r < 0)
		return r;
	buf[0] = 0;
	for (line = strtok_r(status, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
			if (!strncmp(line, keys[k], strlen(keys[k])) && n < len)
				n += snprintf(buf + n, len - n, "%s\n", line);
	return 0;
}

/*
 * Credentials are per thread in the kernel, but the image keeps one set
 * per process (what glibc's set*id calls keep in step): refuse a thread
 * that differs rather than restore it with the wrong ones.
 */
static int check_thread_creds(struct dump_task *task)
{
	char lead[4096], other[4096];
	int err;

	if (task->nr_threads < 2)
		return 0;
	err = thread_creds(task->pid, task->pid, lead, sizeof(lead));
	for (size_t i = 1; i < task->nr_threads && !err; i++) {
		pid_t tid = task->threads[i].it->pid;
		err = thread_creds(task->pid, tid, other, sizeof(other));
		if (!err && strcmp(lead, other)) {
			pr_err("thread %d of %d has other credentials than its leader; not supported yet",
			       tid, task->pid);
			return -EOPNOTSUPP;
		}
	}
	if (err)
		pr_errno(err, "cannot read the credentials of the threads of %d", task->pid);
	return err;
}

/*
 * What each thread holds that ptrace does not show: clear_child_tid and
 * the alternate signal stack, asked with remote syscalls in the thread
 * itself (both calls act on current), answers in the parasite's scratch
 * area; the robust list head by get_robust_list(tid); the name from /proc.
 */
static int collect_thread(struct dump_task *task, struct dump_thread *d, bool leader)
{
	pid_t tid = d->it->pid;
	char name[64];
	int err;

	snprintf(name, sizeof(name), "task/%d/comm", tid);
	if (proc_read_file(task->pid, name, d->comm, sizeof(d->comm)) < 0) {
		pr_perror("cannot read the name of thread %d", tid);
		return -errno;
	}
	d->comm[strcspn(d->comm, "\n")] = 0;
	if (syscall(SYS_get_robust_list, tid, &d->robust, &d->robust_len) < 0) {
		err = -errno;
		pr_perror("cannot read the robust futex list of thread %d", tid);
		return err;
	}
	err = infect_syscall_out(d->it, &task->it, SYS_prctl, PR_GET_TID_ADDRESS, &d->clear_tid,
				 sizeof(d->clear_tid));
	if (err) {
		pr_errno(err, "cannot read the clear_child_tid address of thread %d", tid);
		return err;
	}
	if (leader) {
		uint32_t sub = 0;
		err = infect_syscall_out(d->it, &task->it, SYS_prctl, PR_GET_CHILD_SUBREAPER, &sub,
					 sizeof(sub));
		if (err) {
			pr_errno(err, "cannot read the child subreaper flag of %d", tid);
			return err;
		}
		task->child_subreaper = sub;
		d->alt_sp = task->pstate.altstack.sp;
		d->alt_size = task->pstate.altstack.size;
		d->alt_flags = task->pstate.altstack.flags;
		return 0;
	}
	struct {
		uint64_t sp;
		int32_t flags, pad;
		uint64_t size;
	} ss;
	err = infect_syscall_out(d->it, &task->it, SYS_sigaltstack, 0, &ss, sizeof(ss));
	if (err) {
		pr_errno(err, "cannot read the signal stack of thread %d", tid);
		return err;
	}
	d->alt_sp = ss.sp;
	d->alt_size = ss.size;
	d->alt_flags = ss.flags;
	return 0;
}

static int dump_one(struct dump_ctx *ctx, struct dump_task *task)
{
	int err;

	if (task->zombie)
		return 0;
	err = check_task(task);
	if (!err)
		err = check_thread_creds(task);
	if (err)
		return err;
	if (ctx->has_prev) {
		err = dump_delta_maps(ctx, task);
	} else {
		err = proc_parse_maps(task->pid, true, &task->vmas, &task->nr_vmas);
		if (err)
			pr_errno(err, "cannot read the mappings of %d", task->pid);
	}
	if (err)
		return err;
	err = infect_parasite_inject(&task->it);
	if (err)
		return err;
	err = infect_parasite_call(&task->it, PARASITE_CMD_DUMP_TASK);
	if (err)
		return err;
	task->pstate = task->it.pargs->task;
	task->it.trap_act = task->pstate.sigactions[SIGTRAP - 1];
	task->it.trap_act_valid = true;
	for (size_t i = 0; i < task->nr_threads; i++) {
		err = collect_thread(task, &task->threads[i], i == 0);
		if (err)
			return err;
	}
	if (fault_injected("collect-mm"))
		return -EIO;
	err = dump_mm(ctx, task);
	if (err)
		return err;
	err = dump_files(ctx, task);
	if (err)
		return err;
	if (fault_injected("dump-files"))
		return -EIO;
	return write_core(ctx, task);
}

/*
 * A task's mappings are needed until its children are dumped (they are
 * compared for copy-on-write sharing): free them after its last child,
 * or after the task itself when it has none. Children come after their
 * parent in pstree order.
 */
static void free_done_vmas(struct dump_ctx *ctx, size_t i, const size_t *last_child)
{
	struct dump_task *t = &ctx->tasks[i];

	for (size_t j = i + 1; t->ppid && j-- > 0;) {
		if (ctx->tasks[j].pid != t->ppid)
			continue;
		if (last_child[j] == i) {
			free(ctx->tasks[j].vmas);
			ctx->tasks[j].vmas = NULL;
		}
		break;
	}
	if (last_child[i] == i) {
		free(t->vmas);
		t->vmas = NULL;
	}
}

static int write_pstree(struct dump_ctx *ctx)
{
	struct img *img = img_open(ctx->dirfd, IMG_PSTREE, 0, O_WRONLY);
	int err = 0;

	if (!img)
		return -errno;
	for (size_t i = 0; i < ctx->nr_tasks && !err; i++) {
		struct dump_task *t = &ctx->tasks[i];
		PstreeEntry e = PSTREE_ENTRY__INIT;
		uint32_t one = t->pid, *tids = &one;
		size_t nr = 1;
		if (t->nr_threads > 1) {
			tids = malloc(t->nr_threads * sizeof(*tids));
			if (!tids) {
				err = -ENOMEM;
				break;
			}
			for (size_t k = 0; k < t->nr_threads; k++)
				tids[k] = t->threads[k].it->pid;
			nr = t->nr_threads;
		}
		e.pid = t->pid;
		e.ppid = t->ppid;
		e.pgid = t->pgid;
		e.sid = t->sid;
		e.threads = tids;
		e.n_threads = nr;
		e.has_zombie_status = t->zombie;
		e.zombie_status = t->exit_status;
		if (t->zombie)
			e.comm = t->stat.comm;
		err = img_write(img, &e);
		if (tids != &one)
			free(tids);
	}
	int cerr = img_close(img);
	return err ? err : cerr;
}

static int write_inventory(struct dump_ctx *ctx, uint64_t frozen_ns)
{
	InventoryEntry inv = INVENTORY_ENTRY__INIT;
	struct utsname u;
	char boot_id[64] = "";
	uint32_t roots[ctx->opts->nr_roots];

	uname(&u);
	if (proc_read_file(0, "../sys/kernel/random/boot_id", boot_id, sizeof(boot_id)) > 0)
		boot_id[strcspn(boot_id, "\n")] = 0;
	for (size_t i = 0; i < ctx->opts->nr_roots; i++)
		roots[i] = ctx->opts->roots[i];
	inv.format_version = IMG_FORMAT_VERSION;
	inv.kernel = u.release;
	inv.machine = u.machine;
	inv.root_pids = roots;
	inv.n_root_pids = ctx->opts->nr_roots;
	inv.boot_id = boot_id;
	inv.has_dump_time_ns = true;
	inv.dump_time_ns = now_ns(CLOCK_REALTIME);
	inv.has_page_size = true;
	inv.page_size = getpagesize();
	inv.has_xsave_size = true;
	inv.xsave_size = ctx->tasks[0].it.xsave_len;
	inv.has_xfeatures = true;
	inv.xfeatures = kerndat_xcr0();
	inv.has_frozen_ns = true;
	inv.frozen_ns = frozen_ns;
	inv.ckpt_version = CKPT_VERSION;
	inv.has_leave_running = true;
	inv.leave_running = ctx->opts->leave_running;
	if (ctx->net_lock[0])
		inv.net_lock = ctx->net_lock;
	if (ctx->log_seq) {
		inv.changelog_boot_id = ctx->log_boot_id;
		inv.has_changelog_start_ns = inv.has_changelog_seq = true;
		inv.changelog_start_ns = ctx->log_start_ns;
		inv.changelog_seq = ctx->log_seq;
		inv.has_changelog_offset = ctx->log_offset != 0;
		inv.changelog_offset = ctx->log_offset;
	}
	inv.dump_id = ctx->dump_id;
	if (ctx->has_prev) {
		inv.parent_images = ctx->prev_path;
		inv.parent_dump_id = ctx->prev.invs[0]->dump_id;
		inv.has_parent_changelog_seq = true;
		inv.parent_changelog_seq = ctx->prev_seq;
	}
	if (ctx->pages_torn)
		inv.has_pages_after_thaw = inv.pages_after_thaw = true;
	return img_store_one(ctx->dirfd, IMG_INVENTORY, 0, &inv);
}

/*
 * The images written so far go to disk (in one syncfs when img_close and
 * the pages files skipped their own fsync, see img_defer_sync), then the
 * inventory, which says the dump is complete, and the directory.
 */
static int finish_images(struct dump_ctx *ctx, uint64_t frozen_ns)
{
	int err = 0;

	if (img_sync_deferred() && syncfs(ctx->dirfd) < 0) {
		err = -errno;
		pr_perror("cannot sync the images in '%s'", ctx->opts->dir);
		return err;
	}
	img_defer_sync(false);
	err = write_inventory(ctx, frozen_ns);
	if (!err && fsync(ctx->dirfd) < 0 && errno != EINVAL) {
		err = -errno;
		pr_perror("cannot sync the image directory '%s'", ctx->opts->dir);
	}
	return err;
}

static int open_dir(const char *dir)
{
	int fd;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		pr_perror("cannot create the image directory '%s'", dir);
		return -errno;
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		pr_perror("cannot open the image directory '%s'", dir);
		return -errno;
	}
	/* A stale inventory would make a half-written dump look complete. */
	if (unlinkat(fd, "inventory.img", 0) < 0 && errno != ENOENT) {
		pr_perror("cannot remove the old inventory.img in '%s'", dir);
		close(fd);
		return -errno;
	}
	return fd;
}

/* A new dump's ID: 128 random bits in hex. */
static int make_dump_id(char id[33])
{
	uint8_t r[16];

	if (getrandom(r, sizeof(r), 0) != sizeof(r)) {
		pr_perror("cannot make a dump ID");
		return -EIO;
	}
	for (int i = 0; i < 16; i++)
		snprintf(id + 2 * i, 3, "%02x", r[i]);
	return 0;
}

static int dump_attempt(struct dump_opts *o, bool last, bool *ret_retry,
			struct dump_stats *ret_stats)
{
	struct dump_ctx ctx = { .opts = o, .dirfd = -1, .log_dirfd = -1, .last_attempt = last };
	uint64_t t_freeze = 0, t_end, t_thaw = 0;
	size_t nr_threads = 0, nr_zombies = 0, *last_child = NULL;
	int err;

	err = infect_init();
	if (!err)
		err = make_dump_id(ctx.dump_id);
	if (err)
		return err;
	ctx.copy_after_thaw = o->since_log && o->leave_running && !o->copy_frozen;
	/*
	 * A tree that runs on need not wait for the disk: one syncfs after the
	 * thaw. One that dies next waits for its own files only (syncfs would
	 * wait for everything else written on that file system too).
	 */
	img_defer_sync(o->leave_running);
	ctx.dirfd = open_dir(o->dir);
	if (ctx.dirfd < 0)
		return ctx.dirfd;
	/* A broken chain, or a log that does not fit, is an error before anything is frozen. */
	if (o->prev_images)
		err = dump_delta_open(&ctx);
	if (!err && o->since_log)
		err = dump_log_open(&ctx);
	if (err)
		goto release;
	/* Freeze everything first, then read. */
	t_freeze = now_ns(CLOCK_MONOTONIC);
	err = dump_tree_collect(&ctx);
	if (err)
		goto release;
	for (size_t i = 0; i < ctx.nr_tasks; i++) {
		nr_threads += ctx.tasks[i].nr_threads;
		nr_zombies += ctx.tasks[i].zombie;
	}
	pr_info("froze %zu process(es), %zu thread(s), %zu zombie(s) in %.3f ms", ctx.nr_tasks - nr_zombies,
		nr_threads, nr_zombies, (now_ns(CLOCK_MONOTONIC) - t_freeze) / 1e6);
	err = dump_tree_check(&ctx);
	if (!err)
		err = dump_inet_check_listeners(&ctx, true);
	if (!err && o->since_log)
		err = dump_log_mark(&ctx);
	if (!err && ctx.has_prev)
		err = dump_delta_plan(&ctx);
	if (!err && ctx.has_prev)
		err = dump_delta_begin(&ctx);
	if (err)
		goto release;
	last_child = malloc(ctx.nr_tasks * sizeof(*last_child));
	if (!last_child) {
		err = -ENOMEM;
		goto release;
	}
	for (size_t i = 0; i < ctx.nr_tasks; i++) {
		last_child[i] = i;
		for (size_t j = i; ctx.tasks[i].ppid && j-- > 0;)
			if (ctx.tasks[j].pid == ctx.tasks[i].ppid) {
				last_child[j] = i;
				break;
			}
	}
	for (size_t i = 0; i < ctx.nr_tasks; i++) {
		err = dump_one(&ctx, &ctx.tasks[i]);
		if (err)
			goto release;
		free_done_vmas(&ctx, i, last_child);
	}
	err = write_pstree(&ctx);
	if (!err)
		err = dump_files_write(&ctx);
	if (!err)
		err = dump_delta_write(&ctx);
	if (!err && fault_injected("write-images"))
		err = -EIO;
	if (err)
		goto release;
	/* The peers are held off from here until the restore: the tasks die soon. */
	if (!o->leave_running) {
		snprintf(ctx.net_lock, sizeof(ctx.net_lock), "ckpt_%d_%llx", o->roots[0],
			 (unsigned long long)now_ns(CLOCK_REALTIME));
		err = netlock_lock(ctx.files, ctx.nr_files, ctx.net_lock);
		if (err)
			ctx.net_lock[0] = 0;
		if (err == 1 || err == -ENOENT)
			err = 0;
		if (err)
			goto release;
	}
	t_end = now_ns(CLOCK_MONOTONIC);
	/* The tasks die next: the images must be complete and on disk first. */
	if (!o->leave_running)
		err = finish_images(&ctx, t_end - t_freeze);
	/* A connection that completed its handshake meanwhile would be lost. */
	if (!err && !o->leave_running)
		err = dump_inet_check_listeners(&ctx, false);
	if (!err && fault_injected("before-kill"))
		err = -EIO;
	if (!err && !o->leave_running && o->before_kill)
		err = o->before_kill(o->before_kill_arg, now_ns(CLOCK_MONOTONIC) - t_freeze);
	/* Last while frozen: the next round sees what is written from here on. */
	if (!err && o->since_log && o->leave_running) {
		pr_debug("images written; re-arming the write tracking");
		ctx.rearmed = true;
		err = dump_log_rearm(&ctx);
		if (!err && fault_injected("after-rearm"))
			err = -EIO;
		pr_debug("re-armed");
	}
	if (err) {
		unlinkat(ctx.dirfd, "inventory.img", 0);
		goto release;
	}
release:
	if (err && ctx.net_lock[0])
		netlock_unlock(ctx.net_lock);
	/*
	 * On success the tasks die (or run on); on failure they always run
	 * on. A killed task's connections close in repair mode, silently:
	 * after the kill. One that runs on gets its connections out of repair
	 * mode before it runs (a recv meanwhile would fail with EPERM).
	 */
	bool kill_tree = !err && !o->leave_running;
	if (!kill_tree)
		dump_inet_done(&ctx, false);
	dump_tree_release(&ctx, kill_tree);
	if (kill_tree)
		dump_inet_done(&ctx, true);
	if (!err)
		err = ctx.release_err;
	t_thaw = now_ns(CLOCK_MONOTONIC);
	/*
	 * The tree runs on: what need not be done frozen comes now. A
	 * pre-copy round's pages, then syncing, then the inventory.
	 */
	if (!err && o->leave_running && ctx.copy_after_thaw)
		err = dump_copy_deferred(&ctx);
	if (!err && o->leave_running)
		err = finish_images(&ctx, t_thaw - t_freeze);
	if (err && ctx.rearmed)
		(void)dump_log_forget(&ctx);
	t_end = now_ns(CLOCK_MONOTONIC);
	if (!err)
		pr_info("dump done: %zu task(s), %llu bytes of pages, frozen %.3f ms, %.3f ms in all",
			ctx.nr_tasks, (unsigned long long)ctx.pages_bytes, (t_thaw - t_freeze) / 1e6,
			(t_end - t_freeze) / 1e6);
	if (!err && ret_stats) {
		ret_stats->frozen_ns = t_thaw - t_freeze;
		ret_stats->pages_bytes = ctx.pages_bytes;
		ret_stats->nr_tasks = ctx.nr_tasks;
		snprintf(ret_stats->net_lock, sizeof(ret_stats->net_lock), "%s", ctx.net_lock);
	}
	img_defer_sync(false);
	dump_copy_free(&ctx);
	dump_log_close(&ctx);
	dump_delta_close(&ctx);
	dump_files_free(&ctx);
	for (size_t i = 0; i < ctx.nr_tasks; i++) {
		free(ctx.tasks[i].vmas);
	}
	free(ctx.tasks);
	free(ctx.shm_dumped);
	free(last_child);
	close(ctx.dirfd);
	*ret_retry = err && ctx.retry;
	return err;
}

/*
 * A moment the tree cannot be dumped in (a listener with connections the
 * task has not accepted yet) ends the attempt with ctx->retry set: every task is
 * let go, runs a little, and the dump starts over, a bounded number of
 * times.
 */
int dump_run(struct dump_opts *o, struct dump_stats *ret_stats)
{
	bool retry = true;
	int err = 0;

	for (int attempt = 1; attempt <= DUMP_ATTEMPTS && retry; attempt++) {
		if (attempt > 1) {
			struct timespec pause = { 0, attempt * 20 * 1000 * 1000 };
			pr_info("the tree is in a state ckpt cannot dump; trying again (%d of %d)",
				attempt, DUMP_ATTEMPTS);
			nanosleep(&pause, NULL);
		}
		retry = false;
		err = dump_attempt(o, attempt == DUMP_ATTEMPTS, &retry, ret_stats);
	}
	return err;
}

int cmd_dump(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "tree", required_argument, NULL, 't' },
		{ "images-dir", required_argument, NULL, 'D' },
		{ "leave-running", no_argument, NULL, 'R' },
		{ "shell-job", no_argument, NULL, 'j' },
		{ "ext-unix-sk", no_argument, NULL, 'X' },
		{ "since-log", required_argument, NULL, 'L' },
		{ "prev-images", required_argument, NULL, 'P' },
		{ "copy-frozen", no_argument, NULL, 'F' },
		{ "verify-maps", no_argument, NULL, 'V' },
		{ "verbosity", optional_argument, NULL, 'v' },
		{ "log-file", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	struct dump_opts o = {};
	int opt, ret = 2;

	while ((opt = getopt_long(argc, argv, "t:D:Rjv::o:h", lopts, NULL)) != -1) {
		switch (opts_common(opt, optarg)) {
		case 1:
			continue;
		case -1:
			goto out;
		}
		switch (opt) {
		case 't':
			if (dump_parse_roots("dump", optarg, &o))
				goto out;
			break;
		case 'D':
			o.dir = optarg;
			break;
		case 'R':
			o.leave_running = true;
			break;
		case 'j':
			o.shell_job = true;
			break;
		case 'X':
			o.ext_unix_sk = true;
			break;
		case 'L':
			o.since_log = optarg;
			break;
		case 'P':
			o.prev_images = optarg;
			break;
		case 'F':
			o.copy_frozen = true;
			break;
		case 'V':
			o.verify_maps = true;
			break;
		case 'h':
			printf("usage: ckpt dump -t PID[,PID...] -D DIR [--leave-running] [--shell-job] [--ext-unix-sk]\n"
			       "                 [--since-log LOGDIR [--prev-images DIR] [--copy-frozen] [--verify-maps]]\n"
			       "                 [-v[N]] [-o LOG]\n");
			ret = 0;
			goto out;
		default:
			goto out;
		}
	}
	if (!o.nr_roots || !o.dir || optind != argc) {
		fprintf(stderr, "usage: ckpt dump -t PID[,PID...] -D DIR [--leave-running] [--shell-job]\n");
		goto out;
	}
	if ((o.prev_images || o.copy_frozen || o.verify_maps) && !o.since_log) {
		fprintf(stderr, "ckpt dump: --prev-images, --copy-frozen and --verify-maps need --since-log\n");
		goto out;
	}
	opts_hold_stop_signals();
	ret = dump_run(&o, NULL) ? 1 : 0;
	/* dump_aio.c loaded it at the first AIO context; kept across attempts (and rounds). */
	aio_inflight_close();
out:
	free(o.roots);
	return ret;
}
