/* SPDX-License-Identifier: MIT */
/*
 * Contract between the engine and the restorer blob.
 *
 * The engine forks the new task (with its PID), sets up its fds (with
 * their flock and OFD locks, not the POSIX ones: restorer_lock), cwd and
 * root with libc, then maps one region at a place free both in its own
 * address space and in the image: the blob, then struct restorer_args and
 * the arrays it points at (by offset from the args), then a stack. It
 * blocks every signal and jumps to export_restorer_entry with %rdi = args
 * and %rsp = the top of that stack.
 *
 * From there the restorer owns the task: it unmaps everything but its
 * region and the vDSO, moves the vDSO to the dumped address, maps and
 * fills the saved address space, applies process state, creates the
 * other threads (clone3 with their TIDs, each on its own stack in the
 * region), and every thread applies its own state and stops on an int3
 * with its status set (1 done, or -errno; the first thread to fail also
 * puts its tid in args->err_tid and its message in args->errmsg). The engine,
 * which traces the task with PTRACE_O_TRACECLONE, then lets each thread
 * run into rt_sigreturn with its frame (threads[i].sigframe), and
 * finally removes the region itself through ptrace, since nothing can
 * unmap the code it runs on.
 */
#ifndef CKPT_RESTORER_ABI_H
#define CKPT_RESTORER_ABI_H

#include <linux/types.h>

#include "parasite_abi.h"

#define RESTORER_MAGIC		0x52535452	/* "RSTR" */
#define RESTORER_ABI_VERSION	8
#define RESTORER_STACK_SIZE	(64 * 1024)
#define RESTORER_THREAD_STACK_SIZE	(32 * 1024)
#define RESTORER_ERRMSG_SIZE	512

enum {
	RESTORER_STATUS_RUNNING = 0,
	RESTORER_STATUS_DONE = 1,
	RESTORER_STATUS_FROZEN = 2,	/* keep_frozen: memory in place, stopped for fixups */
	/* negative: -errno of the failed step, described in errmsg */
};

/* A mapping to put in place. */
struct restorer_vma {
	__u64 start;
	__u64 end;
	__u64 pgoff;
	__u32 prot;
	__u32 flags;		/* MAP_* for mmap, without MAP_FIXED */
	__u32 kind;		/* VMA_KIND_* from the image */
	__u32 madv;		/* VMA_MADV_* */
	__s32 fd;		/* backing file, or -1 */
	__u32 has_pages;	/* some page run lands in it: map writable first */
	__u32 data_off;		/* bytes in the args to copy in, e.g. a vDSO proxy */
	__u32 data_len;
	__u32 name_off;		/* NUL-terminated anonymous mapping name in the args, or 0 */
	__u32 premapped;	/* already mapped and filled elsewhere: see restorer_premap */
};

/*
 * A private mapping the task's libc stage mapped and filled at `from`
 * before forking its children (who share its pages copy-on-write); the
 * restorer keeps it and moves it to `to`.
 */
struct restorer_premap {
	__u64 from;
	__u64 to;
	__u64 len;
};

/*
 * A run of pages to read from fd at file_off into vaddr. An incremental
 * dump's pages come from the pages files of several image directories
 * (the top one is pages_fd): each run names its own.
 */
struct restorer_run {
	__u64 vaddr;
	__u64 len;
	__u64 file_off;
	__s32 fd;
	__u32 __pad;
};

/*
 * An fd of the engine that the restorer takes (pidfd_getfd, the same open
 * file description) and puts at target: how a kept task (mm_kept) gets its
 * final fd table.
 */
struct restorer_getfd {
	__s32 src;		/* the engine's fd */
	__s32 target;
	__u32 cloexec;
	__u32 __pad;
};

struct restorer_range {
	__u64 start;
	__u64 end;
};

/* The kernel's struct prctl_mm_map, as PR_SET_MM_MAP takes it. */
struct restorer_mm_map {
	__u64 start_code;
	__u64 end_code;
	__u64 start_data;
	__u64 end_data;
	__u64 start_brk;
	__u64 brk;
	__u64 start_stack;
	__u64 arg_start;
	__u64 arg_end;
	__u64 env_start;
	__u64 env_end;
	__u64 auxv;		/* pointer, filled in by the restorer */
	__u32 auxv_size;	/* bytes */
	__u32 exe_fd;
};

struct restorer_creds {
	__u32 uid, euid, suid, fsuid;
	__u32 gid, egid, sgid, fsgid;
	__u64 cap_inh, cap_prm, cap_eff, cap_bnd, cap_amb;
	__u32 securebits;
	__u32 nr_groups;
	__u32 groups_off;	/* __u32[nr_groups] */
	__u32 __pad;
};

struct restorer_rlimit {
	__u64 cur;
	__u64 max;
};

/*
 * A POSIX timer, created with its ID (PR_TIMER_CREATE_RESTORE_IDS) and
 * armed relative to the moment the restorer arms it.
 */
struct restorer_timer {
	__s32 id;
	__s32 clock;
	__u32 notify;		/* SIGEV_* */
	__u32 signo;
	__u64 sigval;
	__u32 tid;		/* SIGEV_THREAD_ID target */
	__u32 overrun;		/* what timer_getoverrun() said */
	__u64 value_ns;		/* 0: disarmed */
	__u64 interval_ns;
	__u32 signal_pending;	/* its signal was queued, not yet delivered */
	__u32 __pad;
};

/*
 * A native AIO context: the restorer makes one with io_setup, moves its
 * ring to addr and refills it (restore_aio in restorer.c). nr is the
 * dumped ring's slot count: the engine checked that this kernel makes a
 * ring of the same size (len bytes) for io_setup((nr - 2) / 2).
 */
struct restorer_aio {
	__u64 addr;
	__u64 len;
	__u32 nr;
	__u32 head;
	__u32 tail;
	__u32 events_off;	/* (tail - head) mod nr struct io_event, from head on */
};

/*
 * A POSIX (fcntl) lock of the process on [start, start + len) (len 0: to
 * the end of the file), taken through the task's fd once the restorer has
 * closed its own fds: see take_posix_locks in restorer.c.
 */
struct restorer_lock {
	__s32 fd;
	__u32 write;		/* 1: F_WRLCK, 0: F_RDLCK */
	__s64 start;
	__s64 len;
};

/* Per thread; threads[0] is the leader, which runs restorer_main. */
struct restorer_thread {
	__u32 tid;
	__s32 status;		/* RESTORER_STATUS_* of this thread, -errno if it failed */
	__u64 sigframe;		/* address of its rt_sigframe (the pretcode word) */
	__u64 stack_top;	/* 16-byte aligned; unused for the leader */
	__u64 fs_base;
	__u64 gs_base;
	__u64 clear_tid;	/* set_tid_address */
	__u64 robust_list;	/* set_robust_list, 0: none */
	__u64 robust_len;
	__u64 rseq_ptr;		/* 0: no rseq registration */
	__u32 rseq_len;
	__u32 rseq_sig;
	__u32 nr_pending;
	__u32 pending_off;	/* 128-byte siginfos, this thread's private queue */
	char comm[16];
};

struct restorer_args {
	__u32 magic;
	__u32 version;
	__s32 status;		/* RESTORER_STATUS_*: the first failure's, or done */
	__s32 log_fd;
	__s32 log_level;
	__u32 err_tid;		/* 0, or the failed thread whose message errmsg holds */
	__u64 log_start_ns;	/* the engine's log time origin (CLOCK_MONOTONIC) */
	char errmsg[RESTORER_ERRMSG_SIZE];

	/* The region the restorer lives in; all but it and the vDSO goes. */
	__u64 region_start;
	__u64 region_end;
	__u64 task_size;	/* top of user address space */

	/*
	 * The running kernel's vDSO: its mappings ([vvar], [vvar_vclock],
	 * [vdso]) spanning vdso_cur_start.. +vdso_cur_len, moved as one block
	 * so that vdso_cur_start lands on vdso_new_start (0: unmap them).
	 */
	struct restorer_range vdso_parts[4];
	__u32 nr_vdso_parts;
	__u32 __padv;
	__u64 vdso_cur_start;
	__u64 vdso_cur_len;
	__u64 vdso_new_start;

	__u32 nr_vmas;
	__u32 vmas_off;		/* struct restorer_vma[] */
	__u32 nr_runs;
	__u32 runs_off;		/* struct restorer_run[], sorted by fd and file_off */
	__s32 pages_fd;		/* the top level's pages file (runs name theirs) */
	__u32 nr_close;
	__u32 close_off;	/* __s32[] fds to close at the end */
	__u32 nr_premaps;
	__u32 premaps_off;	/* struct restorer_premap[], sorted by from */
	__u32 __pad2;

	struct restorer_mm_map mm;
	__u64 auxv[128];

	struct blob_sigaction sigactions[64];	/* index sig - 1 */
	__u64 sigaction_set;			/* bit sig - 1: restore it */
	struct blob_itimer itimers[3];
	struct restorer_rlimit rlimits[16];
	__u32 nr_rlimits;
	__u32 nr_shared_pending;
	__u32 shared_pending_off;
	__u32 nr_threads;
	__u32 threads_off;	/* struct restorer_thread[] */
	__u32 __pad3;

	struct restorer_creds creds;
	__s32 pdeathsig;
	__s32 dumpable;
	__u64 timer_slack_ns;
	__u32 no_new_privs;
	__u32 child_subreaper;
	__u32 nr_timers;
	__u32 timers_off;	/* struct restorer_timer[] */
	__u32 nr_aio;
	__u32 aio_off;		/* struct restorer_aio[], sorted by addr */
	__u32 nr_locks;
	__u32 locks_off;	/* struct restorer_lock[] */

	/*
	 * An incremental restore (restore_frozen.c). keep_frozen: put the
	 * memory in place, then stop for good on an int3 with status FROZEN;
	 * the engine changes the task from outside and later starts it
	 * again at the entry with mm_kept set: the memory is in place
	 * already, the task's fds (none of the final ones) are replaced by
	 * getfds, taken through engine_pidfd (a pidfd of the engine, an fd
	 * of the task), and everything after the memory is done as usual.
	 */
	__u32 keep_frozen;
	__u32 mm_kept;
	__s32 engine_pidfd;
	__u32 nr_getfds;
	__u32 getfds_off;	/* struct restorer_getfd[] */
	__s32 fd_top;		/* above every getfd target */
};

_Static_assert(sizeof(struct restorer_vma) == 64, "restorer_vma");
_Static_assert(sizeof(struct restorer_run) == 32, "restorer_run");
_Static_assert(sizeof(struct restorer_premap) == 24, "restorer_premap");
_Static_assert(sizeof(struct restorer_thread) == 104, "restorer_thread");
_Static_assert(sizeof(struct restorer_timer) == 56, "restorer_timer");
_Static_assert(sizeof(struct restorer_aio) == 32, "restorer_aio");
_Static_assert(sizeof(struct restorer_lock) == 24, "restorer_lock");
_Static_assert(sizeof(struct restorer_getfd) == 16, "restorer_getfd");
_Static_assert(sizeof(struct restorer_mm_map) == 104, "prctl_mm_map layout");
_Static_assert(__builtin_offsetof(struct restorer_args, err_tid) == 20, "err_tid");
_Static_assert(__builtin_offsetof(struct restorer_args, errmsg) == 32, "errmsg");
_Static_assert(sizeof(struct restorer_args) % 8 == 0, "restorer_args alignment");

#endif
