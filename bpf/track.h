/* SPDX-License-Identifier: MIT */
/*
 * Records the tracker (track.bpf.c) sends to trackd through the `events`
 * ring buffer. No includes, no pointers: __u* types come from vmlinux.h on
 * the BPF side and from <linux/types.h> on the user side.
 *
 * Every PID here is as seen from trackd's PID namespace (cfg_pidns_ino at
 * level cfg_pidns_level); the setpgid/setsid arguments are the raw values
 * the caller passed or got back, in the caller's own namespace.
 */
#ifndef CKPT_BPF_TRACK_H
#define CKPT_BPF_TRACK_H

enum track_kind {
	TRACK_FORK = 1,		/* pid/tgid: the new task; ppid: its parent's tgid;
				 * flags: clone flags without the exit signal (the
				 * kernel strips CSIGNAL before task_newtask);
				 * arg0: the creating thread; arg1: 1 when a new
				 * process could not be added to `tracked` (full,
				 * TRACK_STAT_TRACKED_FULL): it is not followed, no
				 * record about it comes; 0 otherwise (always for a
				 * thread) */
	TRACK_EXIT,		/* arg0: exit status as wait() reports it (code << 8,
				 * or the signal); arg1: 1 if the last thread of the group */
	TRACK_EXEC,		/* arg0: TID before the exec (0 if unknown); path: the
				 * file run, as passed to execve */
	TRACK_MMAP,		/* start, len, prot, flags, and dev/ino/pgoff of the file */
	TRACK_MUNMAP,		/* start, len */
	TRACK_MREMAP,		/* old_start, old_len -> start, len; flags: MREMAP_*;
				 * dev/ino/pgoff of the file */
	TRACK_MPROTECT,		/* start, len, prot; arg0: the pkey of pkey_mprotect,
				 * -1 for mprotect */
	TRACK_BRK,		/* start: mm->start_brk; len: new brk - start_brk */
	TRACK_MADVISE,		/* start, len; arg0: advice, only those that discard
				 * pages or guards (MADV_DONTNEED, _DONTNEED_LOCKED,
				 * _FREE, _REMOVE, _GUARD_INSTALL, _GUARD_REMOVE) */
	TRACK_SHMAT,		/* start, len, flags: shmflg, dev/ino; arg0: shmid */
	TRACK_SHMDT,		/* start (the length is gone with the mapping: 0) */
	TRACK_IO_SETUP,		/* start: context ID = ring address; len: ring size;
				 * dev/ino of the ring; arg0: nr_events asked for */
	TRACK_IO_DESTROY,	/* start: context ID */
	TRACK_SETSID,		/* arg0: the new SID */
	TRACK_SETPGID,		/* arg0: pid argument; arg1: pgid argument */
	TRACK_NR_KINDS,
};

#define TRACK_PATH_MAX 256

/*
 * cfg_pidns_level when trackd cannot tell the level of its PID namespace
 * (its /proc belongs to a namespace other than the initial one): the tracker
 * finds it from the first task it sees in that namespace or below it.
 */
#define TRACK_PIDNS_LEVEL_UNKNOWN 0xffffffffU

/*
 * MMAP, MREMAP, SHMAT and IO_SETUP look the new mapping up: their arg1 is 0,
 * or the lookup's -errno (-EBUSY when another thread held the mm's lock),
 * and then dev/ino/pgoff (and the SHMAT/IO_SETUP len) are 0. len and old_len
 * are bytes rounded up to whole pages; pgoff is the file offset of start in
 * pages, 0 (like dev and ino) for a mapping without a file.
 */

struct track_event {
	__u64 ts;		/* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u32 kind;		/* enum track_kind */
	__s32 pid;		/* the thread the event is about */
	__s32 tgid;
	__s32 ppid;		/* tgid of its parent (real_parent) */
	__u64 start;
	__u64 len;
	__u64 prot;
	__u64 flags;
	__u64 old_start;
	__u64 old_len;
	__u64 dev;		/* backing file: st_dev in user-space encoding (new_encode_dev) */
	__u64 ino;
	__u64 pgoff;		/* in pages */
	__s64 arg0;
	__s64 arg1;
	/* TRACK_EXEC only: the other kinds reserve the record without it. */
	char path[TRACK_PATH_MAX];
};

/*
 * Besides `stats`, a drop notes the tgid it concerned in the hash map
 * `lost` (tgid -> drops); when that map is full, TRACK_STAT_LOST_UNNAMED
 * is bumped instead and every tracked task must count as affected.
 */
#define TRACK_EVENT_SIZE_NOPATH	((unsigned long)&((struct track_event *)0)->path)

/* Indexes of the per-CPU `stats` array. */
enum track_stat {
	TRACK_STAT_EVENTS,	/* records sent */
	TRACK_STAT_DROPS,	/* ring-buffer reserve failures */
	TRACK_STAT_TRACKED_FULL,/* a new process could not be added to `tracked` */
	TRACK_STAT_LOST_UNNAMED,/* drops whose tgid could not be noted in `lost` */
	TRACK_STAT_NR,
};

#endif
