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
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "inventory.pb-c.h"
#include "pstree.pb-c.h"

#include "ckpt.h"
#include "dump.h"
#include "image.h"
#include "kerndat.h"
#include "log.h"

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

/* "10,20:30" -> pids; duplicates and junk are usage errors. */
static int parse_pid_list(const char *arg, struct dump_opts *o)
{
	const char *p = arg;

	while (*p) {
		char *end;
		long v = strtol(p, &end, 10);
		if (end == p || v <= 0 || v > (1 << 22) || (*end && *end != ',' && *end != ':')) {
			fprintf(stderr, "ckpt dump: bad PID list '%s'\n", arg);
			return -1;
		}
		for (size_t i = 0; i < o->nr_roots; i++) {
			if (o->roots[i] == v) {
				fprintf(stderr, "ckpt dump: PID %ld is given twice in '%s'\n", v, arg);
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

static int collect_pending(struct dump_task *task, bool shared, SiginfoEntry ***ret, size_t *ret_n)
{
	struct __ptrace_peeksiginfo_args a = { .flags = shared ? PTRACE_PEEKSIGINFO_SHARED : 0, .nr = 32 };
	uint8_t buf[32][128];
	SiginfoEntry **list = NULL;
	size_t n = 0;
	int err = 0;

	for (;;) {
		a.off = n;
		long got = ptrace(PTRACE_PEEKSIGINFO, task->pid, &a, buf);
		if (got < 0) {
			err = -errno;
			pr_perror("cannot read pending signals of %d", task->pid);
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

static int write_core(struct dump_ctx *ctx, struct dump_task *task)
{
	struct parasite_task_state *ps = &task->pstate;
	struct proc_status *st = &task->it.status;
	CoreEntry core = CORE_ENTRY__INIT;
	TaskCoreEntry tc = TASK_CORE_ENTRY__INIT;
	ThreadCoreEntry th = THREAD_CORE_ENTRY__INIT, *ths[1] = { &th };
	UserRegsEntry regs = USER_REGS_ENTRY__INIT;
	SigaltstackEntry alt = SIGALTSTACK_ENTRY__INIT;
	CredsEntry creds = CREDS_ENTRY__INIT;
	RlimitEntry rl[RLIM_NLIMITS], *rlp[RLIM_NLIMITS];
	SigactionEntry sa[64], *sap[64];
	ItimerEntry it[3], *itp[3];
	char buf[PATH_MAX], cwd[PATH_MAX], root[PATH_MAX];
	struct user_regs_struct r = task->it.regs;
	int64_t in_syscall;
	int err;

	fixup_syscall_restart(task->pid, &r, &in_syscall);
#define R(f, g) regs.f = r.g
	R(r15, r15); R(r14, r14); R(r13, r13); R(r12, r12); R(bp, rbp); R(bx, rbx); R(r11, r11);
	R(r10, r10); R(r9, r9); R(r8, r8); R(ax, rax); R(cx, rcx); R(dx, rdx); R(si, rsi);
	R(di, rdi); R(orig_ax, orig_rax); R(ip, rip); R(cs, cs); R(flags, eflags); R(sp, rsp);
	R(ss, ss); R(fs_base, fs_base); R(gs_base, gs_base); R(ds, ds); R(es, es); R(fs, fs);
	R(gs, gs);
#undef R
	th.tid = task->pid;
	th.gpregs = &regs;
	th.has_xsave = true;
	th.xsave.data = task->it.xsave;
	th.xsave.len = task->it.xsave_len;
	th.blocked = task->it.sigmask;
	alt.sp = ps->altstack.sp;
	alt.size = ps->altstack.size;
	alt.flags = ps->altstack.flags;
	th.altstack = &alt;
	th.comm = task->stat.comm;
	th.has_in_syscall = true;
	th.in_syscall = in_syscall;
	struct rseq_conf {
		uint64_t ptr;
		uint32_t len, flags, sig;
	} rc = {};
	RseqEntry rseq = RSEQ_ENTRY__INIT;
	if (ptrace(PTRACE_GET_RSEQ_CONFIGURATION, task->pid, sizeof(rc), &rc) < 0) {
		err = -errno;
		pr_perror("cannot read the rseq registration of %d", task->pid);
		return err;
	}
	if (rc.ptr) {
		rseq.ptr = rc.ptr;
		rseq.len = rc.len;
		rseq.sig = rc.sig;
		rseq.has_flags = true;
		rseq.flags = rc.flags;
		th.rseq = &rseq;
	}
	err = collect_pending(task, false, &th.pending, &th.n_pending);
	if (err)
		return err;
	err = collect_pending(task, true, &tc.shared_pending, &tc.n_shared_pending);
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

	core.task = &tc;
	core.threads = ths;
	core.n_threads = 1;
	err = img_store_one(ctx->dirfd, IMG_CORE, task->pid, &core);
out:
	free_siginfos(th.pending, th.n_pending);
	free_siginfos(tc.shared_pending, tc.n_shared_pending);
	return err;
}

/* What ckpt cannot dump yet is refused here, before anything is written. */
static int check_task(struct dump_task *task)
{
	char buf[256], name[64];
	int err;

	err = proc_parse_stat(task->pid, &task->stat);
	if (err) {
		pr_errno(err, "cannot read /proc/%d", task->pid);
		return err;
	}
	if (task->it.status.threads > 1) {
		pr_err("task %d has %d threads; multi-threaded processes are not supported yet",
		       task->pid, task->it.status.threads);
		return -EOPNOTSUPP;
	}
	snprintf(name, sizeof(name), "task/%d/children", task->pid);
	if (proc_read_file(task->pid, name, buf, sizeof(buf)) > 0 && buf[0] && buf[0] != '\n') {
		pr_err("task %d has children (%s); process trees are not supported yet", task->pid,
		       strtok(buf, "\n"));
		return -EOPNOTSUPP;
	}
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

static int dump_one(struct dump_ctx *ctx, struct dump_task *task)
{
	int err;

	err = check_task(task);
	if (err)
		return err;
	err = proc_parse_maps(task->pid, true, &task->vmas, &task->nr_vmas);
	if (err) {
		pr_errno(err, "cannot read the mappings of %d", task->pid);
		return err;
	}
	err = infect_parasite_inject(&task->it);
	if (err)
		return err;
	err = infect_parasite_call(&task->it, PARASITE_CMD_DUMP_TASK);
	if (err)
		return err;
	task->pstate = task->it.pargs->task;
	task->it.trap_act = task->pstate.sigactions[SIGTRAP - 1];
	task->it.trap_act_valid = true;
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

static int write_pstree(struct dump_ctx *ctx)
{
	struct img *img = img_open(ctx->dirfd, IMG_PSTREE, 0, O_WRONLY);
	int err = 0;

	if (!img)
		return -errno;
	for (size_t i = 0; i < ctx->nr_tasks && !err; i++) {
		struct dump_task *t = &ctx->tasks[i];
		PstreeEntry e = PSTREE_ENTRY__INIT;
		uint32_t tid = t->pid;
		e.pid = t->pid;
		e.ppid = 0;	/* every task is a root for now */
		e.pgid = t->stat.pgid;
		e.sid = t->stat.sid;
		e.threads = &tid;
		e.n_threads = 1;
		err = img_write(img, &e);
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
	return img_store_one(ctx->dirfd, IMG_INVENTORY, 0, &inv);
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

static int do_dump(struct dump_opts *o)
{
	struct dump_ctx ctx = { .opts = o, .dirfd = -1 };
	uint64_t t_freeze = 0, t_end;
	int err;

	err = infect_init();
	if (err)
		return err;
	ctx.tasks = calloc(o->nr_roots, sizeof(*ctx.tasks));
	if (!ctx.tasks)
		return -ENOMEM;
	ctx.dirfd = open_dir(o->dir);
	if (ctx.dirfd < 0) {
		err = ctx.dirfd;
		goto out;
	}
	/* Freeze everything first, then read. */
	t_freeze = now_ns(CLOCK_MONOTONIC);
	for (size_t i = 0; i < o->nr_roots; i++) {
		struct dump_task *t = &ctx.tasks[i];
		t->pid = o->roots[i];
		if (t->pid == getpid()) {
			pr_err("cannot dump ckpt itself (%d)", t->pid);
			err = -EINVAL;
			goto release;
		}
		struct proc_stat st;
		if (proc_parse_stat(t->pid, &st) == 0 && (st.state == 'Z' || st.state == 'X')) {
			pr_err("task %d is a zombie; there is nothing to dump", t->pid);
			err = -ESRCH;
			goto release;
		}
		err = infect_seize(t->pid, &t->it);
		if (err)
			goto release;
		ctx.nr_tasks++;
	}
	pr_info("froze %zu task(s)", ctx.nr_tasks);
	for (size_t i = 0; i < ctx.nr_tasks; i++) {
		err = dump_one(&ctx, &ctx.tasks[i]);
		if (err)
			goto release;
	}
	err = write_pstree(&ctx);
	if (!err)
		err = dump_files_write(&ctx);
	if (!err && fault_injected("write-images"))
		err = -EIO;
	if (err)
		goto release;
	t_end = now_ns(CLOCK_MONOTONIC);
	err = write_inventory(&ctx, t_end - t_freeze);
	if (!err && fsync(ctx.dirfd) < 0 && errno != EINVAL) {
		err = -errno;
		pr_perror("cannot sync the image directory '%s'", o->dir);
	}
	if (!err && fault_injected("before-kill"))
		err = -EIO;
	if (err) {
		unlinkat(ctx.dirfd, "inventory.img", 0);
		goto release;
	}
release:
	/* On success the tasks die (or run on); on failure they always run on. */
	for (size_t i = 0; i < ctx.nr_tasks; i++) {
		int rerr = infect_release(&ctx.tasks[i].it, !err && !o->leave_running);
		if (rerr && !err)
			err = rerr;
	}
	t_end = now_ns(CLOCK_MONOTONIC);
	if (!err)
		pr_info("dump done: %zu task(s), %llu bytes of pages, frozen %.3f ms", ctx.nr_tasks,
			(unsigned long long)ctx.pages_bytes, (t_end - t_freeze) / 1e6);
out:
	dump_files_free(&ctx);
	for (size_t i = 0; i < o->nr_roots; i++)
		free(ctx.tasks[i].vmas);
	free(ctx.tasks);
	if (ctx.dirfd >= 0)
		close(ctx.dirfd);
	return err;
}

int cmd_dump(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "tree", required_argument, NULL, 't' },
		{ "images-dir", required_argument, NULL, 'D' },
		{ "leave-running", no_argument, NULL, 'R' },
		{ "shell-job", no_argument, NULL, 'j' },
		{ "verbosity", optional_argument, NULL, 'v' },
		{ "log-file", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	struct dump_opts o = {};
	int opt, err;

	while ((opt = getopt_long(argc, argv, "t:D:Rjv::o:h", lopts, NULL)) != -1) {
		switch (opts_common(opt, optarg)) {
		case 1:
			continue;
		case -1:
			return 2;
		}
		switch (opt) {
		case 't':
			if (parse_pid_list(optarg, &o))
				return 2;
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
		case 'h':
			printf("usage: ckpt dump -t PID[,PID...] -D DIR [--leave-running] [--shell-job] [-v[N]] [-o LOG]\n");
			return 0;
		default:
			return 2;
		}
	}
	if (!o.nr_roots || !o.dir || optind != argc) {
		fprintf(stderr, "usage: ckpt dump -t PID[,PID...] -D DIR [--leave-running] [--shell-job]\n");
		free(o.roots);
		return 2;
	}
	opts_hold_stop_signals();
	err = do_dump(&o);
	free(o.roots);
	return err ? 1 : 0;
}
