/* SPDX-License-Identifier: MIT */
/*
 * Seizing a task and running code in it: remote system calls and the
 * parasite blob. A task is either untouched or fully under our control;
 * infect_release() is the one way back, whatever happened in between.
 */
#ifndef CKPT_INFECT_H
#define CKPT_INFECT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

#include "parasite_abi.h"
#include "proc.h"

struct infect_task {
	pid_t pid;
	struct user_regs_struct regs;	/* as frozen, before any change */
	struct proc_status status;	/* /proc/PID/status as frozen */
	uint64_t sigmask;		/* blocked mask as frozen */
	uint8_t *xsave;
	size_t xsave_len;
	uint64_t gadget;		/* address of a syscall instruction in the task */
	uint64_t parasite;		/* parasite mapping in the task, or 0 */
	size_t parasite_len;
	bool seized;
	bool touched;			/* regs or mask changed: restore them on release */
	int held_stop;			/* a stop signal that came meanwhile, delivered at detach */
	int stop_sig;			/* it was group-stopped by this signal, or 0 */
	/*
	 * The parasite's int3 resets SIGTRAP to SIG_DFL when SIGTRAP is
	 * ignored or blocked (force_sig_info_to_task). It is kept unblocked,
	 * so only an ignored SIGTRAP, or one blocked because a SIGTRAP is
	 * already pending, needs its action put back on release: trap_act
	 * once the parasite has read it, else SIG_IGN or SIG_DFL.
	 */
	bool trap_ignored;
	bool trap_blocked;
	bool trap_act_valid;
	struct blob_sigaction trap_act;
	struct parasite_args *pargs;	/* local copy of the args area */
	/*
	 * The thread's struct rseq as it was when seized: the kernel rewrites
	 * it (CPU and concurrency IDs, and it clears rseq_cs) whenever the
	 * thread comes back to user space from a remote call, so release puts
	 * it back, and a dump of the memory uses these bytes. len 0: none.
	 */
	uint64_t rseq_addr;
	uint32_t rseq_len;
	uint8_t rseq[32];
};

/* Block SIGCHLD and open the signalfd the waits below use. Call once. */
int infect_init(void);

/*
 * PTRACE_SEIZE and PTRACE_INTERRUPT pid, and wait (bounded) until it is
 * stopped; read its registers, xstate and blocked mask. On failure the
 * task is released. Logs errors.
 */
int infect_seize(pid_t pid, struct infect_task *t);

/*
 * Seize another thread of a seized process (leader, already infected or
 * not): its registers, xstate and mask; remote syscalls in it use the
 * leader's gadget. Released with infect_release() like a process.
 */
int infect_seize_thread(pid_t tid, const struct infect_task *leader, struct infect_task *t);

/*
 * Run system call nr(a1, buf) in thread t, buf being the leader's scratch
 * area, and copy len bytes of the answer into out. 0 or -errno (the
 * call's own error included). Does not log.
 */
int infect_syscall_out(struct infect_task *t, const struct infect_task *leader, long nr,
		       uint64_t a1, void *out, size_t len);

/* process_vm_readv of len bytes at addr; 0 or -errno. Does not log. */
int infect_read(const struct infect_task *t, void *buf, uint64_t addr, size_t len);

/* Run one system call in the task. Returns 0 with *ret the raw result. */
int infect_syscall(struct infect_task *t, long nr, long *ret, uint64_t a1, uint64_t a2,
		   uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6);

/* Map the parasite into the task. */
int infect_parasite_inject(struct infect_task *t);

/* Run one parasite command; t->pargs holds the answer. Returns its ret. */
int infect_parasite_call(struct infect_task *t, enum parasite_cmd cmd);

/*
 * Undo everything: unmap the parasite, put back registers and mask, then
 * either detach (the task runs on as before) or kill it. Safe to call in
 * any state; logs but does not fail the caller's error path.
 */
int infect_release(struct infect_task *t, bool kill_task);

/*
 * Wait for a state change of pid, at most timeout_ms. Returns 0 with
 * *status, -ETIMEDOUT, or -errno.
 */
int infect_wait(pid_t pid, int *status, int timeout_ms);

/* The same for any child or tracee; *ret_pid says which. -ECHILD: none left. */
int infect_wait_any(pid_t *ret_pid, int *status, int timeout_ms);

/* Description of a wait status for messages ("stopped by SIGSEGV"). */
const char *infect_status_str(int status, char *buf, size_t len);

#endif
