/* SPDX-License-Identifier: MIT */
/*
 * Contract between the engine and the parasite blob.
 *
 * The engine maps the blob into a seized task, followed by one args area
 * (struct parasite_args, then the parasite's stack). For each command it
 * fills the args, points the task's registers at export_parasite_entry
 * with %rdi = args and %rsp = top of the stack, and resumes it with every
 * signal blocked. The parasite answers in args->ret (0 or -errno) and
 * stops on an int3 right after the call; it never touches any state of
 * the task that the engine does not restore when it cures the task.
 */
#ifndef CKPT_PARASITE_ABI_H
#define CKPT_PARASITE_ABI_H

#include <linux/types.h>

#define PARASITE_MAGIC		0x50415253	/* "PARS" */
#define PARASITE_ABI_VERSION	1
#define PARASITE_STACK_SIZE	(32 * 1024)
#define PARASITE_LOG_SIZE	4096

enum parasite_cmd {
	PARASITE_CMD_NONE,
	PARASITE_CMD_DUMP_TASK,	/* fill struct parasite_task_state */
	PARASITE_CMD_PIPES,	/* create struct parasite_pipes.nr pipes */
	PARASITE_CMD_VMSPLICE,	/* struct parasite_vmsplice: pages into those pipes */
	PARASITE_NR_CMDS,
};

#define PARASITE_MAX_PIPES	8
#define PARASITE_PIPE_SIZE	(1 << 20)	/* pipe-max-size without CAP_SYS_RESOURCE */
#define PARASITE_MAX_IOVS	1024

/*
 * Pipes in the task that page contents travel through: the engine takes
 * the read ends with pidfd_getfd and closes the task's copies itself
 * (remote close) once done, so a parasite crash cannot leave them behind.
 */
struct parasite_pipes {
	__u32 nr;
	__u32 size;			/* each pipe's capacity, set by the parasite */
	__s32 fds[PARASITE_MAX_PIPES][2];
};

/* vmsplice each range (no longer than a pipe) into the write end of pipe[pipe]. */
struct parasite_iov {
	__u64 addr;
	__u32 len;
	__u32 pipe;
};

struct parasite_vmsplice {
	__u32 nr;
	__u32 __pad;
	struct parasite_iov iov[PARASITE_MAX_IOVS];
};

/* The kernel's struct sigaction for rt_sigaction on x86_64. */
struct blob_sigaction {
	__u64 handler;
	__u64 flags;
	__u64 restorer;
	__u64 mask;
};

struct blob_itimer {
	__u64 interval_sec;
	__u64 interval_usec;
	__u64 value_sec;
	__u64 value_usec;
};

struct blob_stack {		/* stack_t */
	__u64 sp;
	__s32 flags;
	__u32 __pad;
	__u64 size;
};

struct parasite_task_state {
	struct blob_sigaction sigactions[64];	/* index sig - 1 */
	struct blob_itimer itimers[3];
	struct blob_stack altstack;
	/*
	 * prlimit() on another task whose IDs differ needs CAP_SYS_RESOURCE;
	 * the task reads its own. {cur, max} by RLIMIT_* number.
	 */
	__u64 rlimits[16][2];
	__u64 brk;
	__s32 pdeathsig;
	__s32 dumpable;
	__s32 securebits;
	__s32 __pad;
};

struct parasite_args {
	__u32 magic;
	__u32 version;
	__u32 cmd;
	__s32 ret;
	__s32 log_level;
	__u32 log_len;			/* bytes used in log[] */
	char log[PARASITE_LOG_SIZE];
	union {
		struct parasite_task_state task;
		struct parasite_pipes pipes;
		struct parasite_vmsplice vmsplice;
		__u8 __space[4096 * 5];
	};
};

_Static_assert(sizeof(struct blob_sigaction) == 32, "blob_sigaction");
_Static_assert(sizeof(struct blob_stack) == 24, "stack_t layout");
_Static_assert(sizeof(struct blob_itimer) == 32, "itimerval layout");
_Static_assert(__builtin_offsetof(struct parasite_args, log) == 24, "parasite_args.log");
_Static_assert(sizeof(struct parasite_task_state) <= 4096, "task state fits");
_Static_assert(sizeof(struct parasite_vmsplice) <= 4096 * 5, "vmsplice list fits");
_Static_assert(sizeof(struct parasite_args) == 24 + PARASITE_LOG_SIZE + 4096 * 5, "parasite_args size");

#endif
