// SPDX-License-Identifier: MIT
#define LOG_PREFIX "infect: "
#include <elf.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "blob.h"
#include "ckpt.h"
#include "infect.h"
#include "log.h"
#include "proc.h"

#ifndef PTRACE_EVENT_STOP
#define PTRACE_EVENT_STOP 128
#endif

#define XSAVE_MAX (64 * 1024)
#define PF_EXITING_FLAG 0x4	/* PF_EXITING, include/linux/sched.h */
#define WAIT_MS 10000

static int sigchld_fd = -1;

int infect_init(void)
{
	sigset_t set;

	if (sigchld_fd >= 0)
		return 0;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -errno;
	sigchld_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sigchld_fd < 0) {
		pr_perror("cannot create a signalfd for SIGCHLD");
		return -errno;
	}
	return 0;
}

/* waitpid(pid) for one pid or any (-1), bounded by the SIGCHLD signalfd. */
static int wait_bounded(pid_t pid, pid_t *ret_pid, int *status, int timeout_ms)
{
	struct timespec start, now;

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		struct signalfd_siginfo si;
		pid_t r = waitpid(pid, status, __WALL | WNOHANG);

		if (r > 0) {
			*ret_pid = r;
			return 0;
		}
		if (r < 0)
			return -errno;
		clock_gettime(CLOCK_MONOTONIC, &now);
		long elapsed = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
		if (elapsed >= timeout_ms)
			return -ETIMEDOUT;
		/* SIGCHLD comes for every stop of a tracee and every child exit. */
		struct pollfd pfd = { .fd = sigchld_fd, .events = POLLIN };
		if (poll(&pfd, 1, timeout_ms - elapsed) < 0 && errno != EINTR)
			return -errno;
		while (read(sigchld_fd, &si, sizeof(si)) > 0)
			;
	}
}

int infect_wait(pid_t pid, int *status, int timeout_ms)
{
	pid_t got;

	return wait_bounded(pid, &got, status, timeout_ms);
}

int infect_wait_any(pid_t *ret_pid, int *status, int timeout_ms)
{
	return wait_bounded(-1, ret_pid, status, timeout_ms);
}

const char *infect_status_str(int status, char *buf, size_t len)
{
	if (WIFEXITED(status))
		snprintf(buf, len, "exited with %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "killed by %s", strsignal(WTERMSIG(status)));
	else if (WIFSTOPPED(status))
		snprintf(buf, len, "stopped by %s (event %d)", strsignal(WSTOPSIG(status) & 0x7f),
			 status >> 16);
	else
		snprintf(buf, len, "status 0x%x", status);
	return buf;
}

/* Wait for the next stop; a task that exits instead is an error. */
static int wait_stop(struct infect_task *t, int *status, const char *what)
{
	char buf[64];
	int err = infect_wait(t->pid, status, WAIT_MS);

	if (err == -ETIMEDOUT) {
		pr_err("task %d did not stop within %d s while %s", t->pid, WAIT_MS / 1000, what);
		/*
		 * It is still running our code or syscall: stop it wherever it
		 * is, so that the release can put its registers back.
		 */
		if (ptrace(PTRACE_INTERRUPT, t->pid, NULL, NULL) == 0 &&
		    infect_wait(t->pid, status, WAIT_MS) == 0 && !WIFSTOPPED(*status))
			t->seized = false;
		return err;
	}
	if (err) {
		pr_errno(err, "waiting for task %d while %s", t->pid, what);
		return err;
	}
	if (!WIFSTOPPED(*status)) {
		pr_err("task %d %s while %s", t->pid, infect_status_str(*status, buf, sizeof(buf)), what);
		t->seized = false;
		return -ESRCH;
	}
	return 0;
}

/*
 * Resume the task with request and wait for its next stop. SIGSTOP cannot
 * be blocked: when it arrives while we run code in the task it is held
 * (suppressed now, delivered when we detach) instead of failing the dump.
 */
static int resume_wait(struct infect_task *t, int request, int *status, const char *what)
{
	for (int i = 0; i < 16; i++) {
		if (ptrace(request, t->pid, NULL, NULL) < 0) {
			int err = -errno;
			pr_perror("cannot resume %d (%s)", t->pid, what);
			return err;
		}
		int err = wait_stop(t, status, what);
		if (err)
			return err;
		if (*status >> 16 == 0 && WSTOPSIG(*status) == SIGSTOP) {
			pr_info("%d: holding a SIGSTOP that came while %s", t->pid, what);
			t->held_stop = SIGSTOP;
			continue;
		}
		/*
		 * A group-stopped task traps once for the seize and once more
		 * for our interrupt (both PTRACE_EVENT_STOP, job control
		 * traps taken before it returns to user space): resume again.
		 */
		if (*status >> 16 == PTRACE_EVENT_STOP) {
			pr_debug("%d: another stop report while %s", t->pid, what);
			continue;
		}
		return 0;
	}
	pr_err("task %d keeps being stopped while %s", t->pid, what);
	return -EAGAIN;
}

static void rseq_snapshot(struct infect_task *t);

static int getregs(pid_t pid, struct user_regs_struct *regs)
{
	if (ptrace(PTRACE_GETREGS, pid, NULL, regs) < 0) {
		int err = -errno;
		pr_perror("cannot get registers of %d", pid);
		return err;
	}
	return 0;
}

static int setregs(pid_t pid, const struct user_regs_struct *regs)
{
	if (ptrace(PTRACE_SETREGS, pid, NULL, regs) < 0) {
		int err = -errno;
		pr_perror("cannot set registers of %d", pid);
		return err;
	}
	return 0;
}

static int setmask(pid_t pid, uint64_t mask)
{
	if (ptrace(PTRACE_SETSIGMASK, pid, sizeof(mask), &mask) < 0) {
		int err = -errno;
		pr_perror("cannot set the signal mask of %d", pid);
		return err;
	}
	return 0;
}

/*
 * A syscall instruction already in the task, so nothing has to be written
 * into its code: the vDSO has one in its fallback paths; any executable
 * mapping will do otherwise.
 */
static int find_gadget(struct infect_task *t)
{
	struct proc_vma *vmas;
	size_t n;
	int err = proc_parse_maps(t->pid, false, &vmas, &n);

	if (err) {
		pr_errno(err, "cannot read the mappings of %d", t->pid);
		return err;
	}
	for (int pass = 0; pass < 2 && !t->gadget; pass++) {
		for (size_t i = 0; i < n && !t->gadget; i++) {
			bool vdso = !strcmp(vmas[i].path, "[vdso]");
			if (!(vmas[i].prot & PROT_EXEC) || (pass == 0) != vdso)
				continue;
			size_t len = vmas[i].end - vmas[i].start;
			if (len > (1 << 20))
				len = 1 << 20;
			uint8_t *buf = malloc(len);
			if (!buf)
				break;
			struct iovec l = { buf, len }, r = { (void *)vmas[i].start, len };
			ssize_t got = process_vm_readv(t->pid, &l, 1, &r, 1, 0);
			for (ssize_t k = 0; k + 1 < got; k++) {
				if (buf[k] == 0x0f && buf[k + 1] == 0x05) {
					t->gadget = vmas[i].start + k;
					break;
				}
			}
			free(buf);
		}
	}
	free(vmas);
	if (!t->gadget) {
		pr_err("no syscall instruction found in the executable mappings of %d", t->pid);
		return -ENOEXEC;
	}
	pr_debug("%d: syscall gadget at %#llx", t->pid, (unsigned long long)t->gadget);
	return 0;
}

/*
 * PTRACE_SEIZE + PTRACE_INTERRUPT one thread and read what it holds. A
 * thread already in a group-stop re-traps with PTRACE_EVENT_STOP and the
 * stop signal (ptrace(2), "group-stop"); it is recorded, and on detach
 * the kernel puts it back into the stop (__ptrace_unlink re-arms
 * JOBCTL_STOP_PENDING while SIGNAL_STOP_STOPPED holds).
 */
static int seize_thread(pid_t pid, struct infect_task *t)
{
	struct iovec iov;
	int status, err;

	memset(t, 0, sizeof(*t));
	t->pid = pid;
	if (ptrace(PTRACE_SEIZE, pid, NULL, PTRACE_O_TRACESYSGOOD) < 0) {
		struct proc_stat st;
		err = -errno;
		/* ptrace_attach refuses a task already exiting (PF_EXITING) with EPERM. */
		if (err == -EPERM && (proc_parse_stat(pid, &st) || (st.flags & PF_EXITING_FLAG)))
			err = -ESRCH;
		if (err == -ESRCH)
			pr_debug("cannot seize %d: it is gone or exiting", pid);
		else if (err == -EPERM)
			pr_err("cannot seize %d: %s (already traced, or not permitted)", pid, strerror(EPERM));
		else
			pr_errno(err, "cannot seize %d", pid);
		return err;
	}
	t->seized = true;
	if (ptrace(PTRACE_INTERRUPT, pid, NULL, NULL) < 0) {
		err = -errno;
		pr_perror("cannot interrupt %d", pid);
		goto fail;
	}
	/*
	 * The interrupt stop may come after signal-delivery stops of signals
	 * that were already on their way; let those through (the kernel sets up
	 * the handler frame or applies the default action) and wait again.
	 */
	for (int tries = 0;; tries++) {
		err = wait_stop(t, &status, "freezing it");
		if (err)
			goto fail;
		if (status >> 16 == PTRACE_EVENT_STOP) {
			int sig = WSTOPSIG(status);
			if (sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU) {
				pr_debug("%d: stopped by %s", pid, strsignal(sig));
				t->stop_sig = sig;
			}
			break;
		}
		if (tries == 32) {
			pr_err("task %d keeps receiving signals; cannot freeze it", pid);
			err = -EAGAIN;
			goto fail;
		}
		pr_debug("%d: passing %s on before the freeze", pid, strsignal(WSTOPSIG(status)));
		if (ptrace(PTRACE_CONT, pid, NULL, (void *)(long)WSTOPSIG(status)) < 0) {
			err = -errno;
			pr_perror("cannot resume %d", pid);
			goto fail;
		}
	}
	err = getregs(pid, &t->regs);
	if (err)
		goto fail;
	if (ptrace(PTRACE_GETSIGMASK, pid, sizeof(t->sigmask), &t->sigmask) < 0) {
		err = -errno;
		pr_perror("cannot get the signal mask of %d", pid);
		goto fail;
	}
	t->xsave = malloc(XSAVE_MAX);
	if (!t->xsave) {
		err = -ENOMEM;
		goto fail;
	}
	iov.iov_base = t->xsave;
	iov.iov_len = XSAVE_MAX;
	if (ptrace(PTRACE_GETREGSET, pid, NT_X86_XSTATE, &iov) < 0) {
		err = -errno;
		pr_perror("cannot get the extended FPU state of %d", pid);
		goto fail;
	}
	t->xsave_len = iov.iov_len;
	rseq_snapshot(t);
	return 0;
fail:
	infect_release(t, false);
	return err;
}

static int remote_rw(pid_t pid, void *local, uint64_t remote, size_t len, bool write)
{
	struct iovec l = { local, len }, r = { (void *)remote, len };
	ssize_t n = write ? process_vm_writev(pid, &l, 1, &r, 1, 0) : process_vm_readv(pid, &l, 1, &r, 1, 0);

	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EFAULT;
}

/* struct ptrace_rseq_configuration (uapi/linux/ptrace.h, 5.13). */
struct rseq_conf {
	uint64_t ptr;
	uint32_t len, sig, flags, pad;
};
#ifndef PTRACE_GET_RSEQ_CONFIGURATION
#define PTRACE_GET_RSEQ_CONFIGURATION 0x420f
#endif

/* t->rseq*, before anything runs in the thread; none when it has no rseq area. */
static void rseq_snapshot(struct infect_task *t)
{
	struct rseq_conf rc = {};

	t->rseq_len = 0;
	if (ptrace(PTRACE_GET_RSEQ_CONFIGURATION, t->pid, sizeof(rc), &rc) < 0 || !rc.ptr)
		return;
	t->rseq_addr = rc.ptr;
	t->rseq_len = rc.len < sizeof(t->rseq) ? rc.len : sizeof(t->rseq);
	if (remote_rw(t->pid, t->rseq, t->rseq_addr, t->rseq_len, false))
		t->rseq_len = 0;
}

/* Put the thread's rseq area back as it was seized, if a remote call changed it. */
static void rseq_put_back(struct infect_task *t)
{
	uint8_t now[sizeof(t->rseq)];

	if (!t->rseq_len || remote_rw(t->pid, now, t->rseq_addr, t->rseq_len, false) ||
	    !memcmp(now, t->rseq, t->rseq_len))
		return;
	if (remote_rw(t->pid, t->rseq, t->rseq_addr, t->rseq_len, true))
		pr_debug("%d: cannot put its rseq area back", t->pid);
	else
		pr_debug("%d: rseq area put back as it was seized", t->pid);
}

int infect_seize(pid_t pid, struct infect_task *t)
{
	int err = seize_thread(pid, t);

	if (err)
		return err;
	err = find_gadget(t);
	if (err)
		goto fail;
	err = proc_parse_status(pid, &t->status);
	if (err) {
		pr_errno(err, "cannot read /proc/%d/status", pid);
		goto fail;
	}
	uint64_t trap = 1ull << (SIGTRAP - 1);
	t->trap_ignored = t->status.sig_ign & trap;
	t->trap_blocked = (t->status.sig_pnd | t->status.shd_pnd) & trap;
	if (fault_injected("seize")) {
		err = -EIO;
		goto fail;
	}
	return 0;
fail:
	infect_release(t, false);
	return err;
}

int infect_seize_thread(pid_t tid, const struct infect_task *leader, struct infect_task *t)
{
	int err = seize_thread(tid, t);

	if (err)
		return err;
	t->gadget = leader->gadget;
	t->trap_blocked = leader->trap_blocked;
	return 0;
}

/* The parasite's args area, free between parasite calls; 0 before injection. */
static uint64_t infect_scratch(const struct infect_task *leader, size_t *ret_len)
{
	*ret_len = sizeof(*leader->pargs);
	return leader->parasite ? leader->parasite + blob_map_size(BLOB_PARASITE) : 0;
}

int infect_syscall_out(struct infect_task *t, const struct infect_task *leader, long nr,
		       uint64_t a1, void *out, size_t len)
{
	size_t room;
	uint64_t scratch = infect_scratch(leader, &room);
	long ret;
	int err;

	if (!scratch || len > room)
		return -ENOSPC;
	err = infect_syscall(t, nr, &ret, a1, scratch, 0, 0, 0, 0);
	if (!err && ret)
		err = ret;
	return err ? err : infect_read(leader, out, scratch, len);
}

int infect_read(const struct infect_task *t, void *buf, uint64_t addr, size_t len)
{
	struct iovec l = { buf, len }, r = { (void *)addr, len };
	ssize_t n = process_vm_readv(t->pid, &l, 1, &r, 1, 0);

	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EFAULT;
}

/* The first change to a task blocks every signal it could otherwise take. */
static int take_control(struct infect_task *t)
{
	uint64_t mask = ~0ull;

	if (t->touched)
		return 0;
	t->touched = true;
	/* See trap_ignored in infect.h: an unblocked SIGTRAP keeps a caught action. */
	if (!t->trap_blocked)
		mask &= ~(1ull << (SIGTRAP - 1));
	return setmask(t->pid, mask);
}

int infect_syscall(struct infect_task *t, long nr, long *ret, uint64_t a1, uint64_t a2,
		   uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6)
{
	struct user_regs_struct regs = t->regs;
	int status, err;

	err = take_control(t);
	if (err)
		return err;
	regs.rip = t->gadget;
	regs.rax = nr;
	/* orig_rax -1: no syscall restart when the task leaves its stop. */
	regs.orig_rax = -1;
	regs.rdi = a1;
	regs.rsi = a2;
	regs.rdx = a3;
	regs.r10 = a4;
	regs.r8 = a5;
	regs.r9 = a6;
	err = setregs(t->pid, &regs);
	if (err)
		return err;
	/* Stop at the syscall's entry, then at its exit, then read rax. */
	for (int stop = 0; stop < 2; stop++) {
		err = resume_wait(t, PTRACE_SYSCALL, &status, "running a remote syscall");
		if (err)
			return err;
		if (WSTOPSIG(status) != (SIGTRAP | 0x80)) {
			char buf[64];
			pr_err("task %d %s during remote syscall %ld", t->pid,
			       infect_status_str(status, buf, sizeof(buf)), nr);
			return -EFAULT;
		}
	}
	err = getregs(t->pid, &regs);
	if (err)
		return err;
	*ret = regs.rax;
	return 0;
}


static size_t parasite_args_off(void)
{
	return blob_map_size(BLOB_PARASITE);
}

int infect_parasite_inject(struct infect_task *t)
{
	size_t code = blob_map_size(BLOB_PARASITE);
	size_t len = code + ((sizeof(struct parasite_args) + 4095) & ~4095ul) + PARASITE_STACK_SIZE;
	long addr;
	int err;

	err = infect_syscall(t, SYS_mmap, &addr, 0, len, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (err)
		return err;
	if ((unsigned long)addr >= -4095ul) {
		pr_errno(addr, "cannot map the parasite into %d", t->pid);
		return addr;
	}
	t->parasite = addr;
	t->parasite_len = len;
	err = remote_rw(t->pid, (void *)blob_bytes(BLOB_PARASITE), addr, blob_size(BLOB_PARASITE), true);
	if (err) {
		pr_errno(err, "cannot copy the parasite into %d", t->pid);
		return err;
	}
	long ret;
	err = infect_syscall(t, SYS_mprotect, &ret, addr, code, PROT_READ | PROT_WRITE | PROT_EXEC, 0, 0, 0);
	if (!err && ret)
		err = ret;
	if (err) {
		pr_errno(err, "cannot make the parasite executable in %d", t->pid);
		return err;
	}
	t->pargs = calloc(1, sizeof(*t->pargs));
	if (!t->pargs)
		return -ENOMEM;
	pr_debug("%d: parasite at %#lx (%zu bytes)", t->pid, addr, len);
	if (fault_injected("parasite-inject"))
		return -EIO;
	return 0;
}

static void flush_parasite_log(struct infect_task *t)
{
	uint32_t n = t->pargs->log_len;

	if (n > PARASITE_LOG_SIZE)
		n = PARASITE_LOG_SIZE;
	/* The parasite filtered by level already; errors keep theirs. */
	for (uint32_t i = 0; i < n;) {
		uint32_t k = i;
		while (k < n && t->pargs->log[k] != '\n')
			k++;
		bool err = !strncmp(t->pargs->log + i, "Error:", 6);
		log_printf(err ? LOG_ERR : LOG_DEBUG, "%.*s\n", (int)(k - i), t->pargs->log + i);
		i = k + 1;
	}
	t->pargs->log_len = 0;
}

int infect_parasite_call(struct infect_task *t, enum parasite_cmd cmd)
{
	struct user_regs_struct regs = t->regs;
	uint64_t args = t->parasite + parasite_args_off();
	uint64_t trap = t->parasite + blob_sym_off(BLOB_PARASITE, BLOB_SYM_TRAP);
	int status, err;

	t->pargs->magic = PARASITE_MAGIC;
	t->pargs->version = PARASITE_ABI_VERSION;
	t->pargs->cmd = cmd;
	t->pargs->ret = -ENOSYS;
	t->pargs->log_level = log_get_level();
	t->pargs->log_len = 0;
	err = remote_rw(t->pid, t->pargs, args, sizeof(*t->pargs), true);
	if (err) {
		pr_errno(err, "cannot write parasite args into %d", t->pid);
		return err;
	}
	regs.rip = t->parasite + blob_sym_off(BLOB_PARASITE, BLOB_SYM_ENTRY);
	regs.rsp = t->parasite + t->parasite_len;
	regs.rdi = args;
	regs.rax = 0;
	regs.orig_rax = -1;
	err = setregs(t->pid, &regs);
	if (err)
		return err;
	err = resume_wait(t, PTRACE_CONT, &status, "running the parasite");
	if (err)
		return err;
	err = getregs(t->pid, &regs);
	if (err)
		return err;
	if (WSTOPSIG(status) != SIGTRAP || regs.rip != trap + 1) {
		char buf[64];
		pr_err("parasite in %d failed: task %s at %#llx", t->pid,
		       infect_status_str(status, buf, sizeof(buf)), (unsigned long long)regs.rip);
		remote_rw(t->pid, t->pargs, args, sizeof(*t->pargs), false);
		flush_parasite_log(t);
		return -EFAULT;
	}
	err = remote_rw(t->pid, t->pargs, args, sizeof(*t->pargs), false);
	if (err) {
		pr_errno(err, "cannot read parasite answer from %d", t->pid);
		return err;
	}
	flush_parasite_log(t);
	if (t->pargs->ret)
		pr_errno(t->pargs->ret, "parasite command %d in %d failed", cmd, t->pid);
	if (!t->pargs->ret && fault_injected("parasite-cmd"))
		return -EIO;
	return t->pargs->ret;
}

int infect_release(struct infect_task *t, bool kill_task)
{
	int err = 0;

	if (!t->seized)
		goto out;
	if (kill_task) {
		/*
		 * With SIGKILL queued the task never returns to user space. Its
		 * memory is freed on the way out, which takes a while for a big
		 * one; its parent reaps it, no need to wait here.
		 */
		kill(t->pid, SIGKILL);
		t->seized = false;
		goto out;
	}
	if (t->parasite && (t->trap_ignored || t->trap_blocked) && t->pargs) {
		struct blob_sigaction act = { .handler = (uint64_t)(t->trap_ignored ? SIG_IGN : SIG_DFL) };
		uint64_t at = t->parasite + parasite_args_off();
		long ret = -EFAULT;
		if (t->trap_act_valid)
			act = t->trap_act;
		if (remote_rw(t->pid, &act, at, sizeof(act), true) ||
		    infect_syscall(t, SYS_rt_sigaction, &ret, SIGTRAP, at, 0, 8, 0, 0) || ret) {
			pr_err("cannot put back the SIGTRAP action of %d", t->pid);
			err = -EIO;
		}
	}
	if (t->parasite) {
		long ret;
		int e = infect_syscall(t, SYS_munmap, &ret, t->parasite, t->parasite_len, 0, 0, 0, 0);
		if (e || ret) {
			pr_err("cannot remove the parasite from %d at %#llx", t->pid,
			       (unsigned long long)t->parasite);
			err = e ? e : ret;
		}
		t->parasite = 0;
	}
	if (t->touched && t->seized) {
		if (setregs(t->pid, &t->regs) || setmask(t->pid, t->sigmask))
			err = -EIO;
		t->touched = false;
	}
	if (t->seized)
		rseq_put_back(t);
	if (t->seized && ptrace(PTRACE_DETACH, t->pid, NULL, (void *)(long)t->held_stop) < 0) {
		err = -errno;
		pr_perror("cannot detach from %d", t->pid);
	}
	t->seized = false;
out:
	free(t->xsave);
	free(t->pargs);
	t->xsave = NULL;
	t->pargs = NULL;
	return err;
}
