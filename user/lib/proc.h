/* SPDX-License-Identifier: MIT */
/* /proc readers. They log only at debug level; callers report failures. */
#ifndef CKPT_PROC_H
#define CKPT_PROC_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define PROC_MAX_LOCKS 16

/* VmFlags from smaps */
enum {
	PROC_VMF_GROWSDOWN = 1 << 0,	/* gd */
	PROC_VMF_HUGEPAGE = 1 << 1,	/* hg */
	PROC_VMF_NOHUGEPAGE = 1 << 2,	/* nh */
	PROC_VMF_DONTDUMP = 1 << 3,	/* dd */
	PROC_VMF_DONTCOPY = 1 << 4,	/* dc */
	PROC_VMF_WIPEONFORK = 1 << 5,	/* wf */
	PROC_VMF_LOCKED = 1 << 6,	/* lo */
	PROC_VMF_PFNMAP = 1 << 7,	/* pf */
	PROC_VMF_IO = 1 << 8,		/* io */
	PROC_VMF_UFFD = 1 << 9,		/* um, ui: a userfaultfd handles its faults */
	PROC_VMF_SHARED = 1 << 10,	/* sh */
	PROC_VMF_NORESERVE = 1 << 11,	/* nr */
	PROC_VMF_UFFD_WP = 1 << 12,	/* uw: write-protect tracking by a userfaultfd */
};

struct proc_vma {
	uint64_t start, end, pgoff;
	uint32_t prot;		/* PROT_* */
	bool shared;		/* 's' in the perms column */
	uint32_t dev_major, dev_minor;
	uint64_t ino;
	uint32_t vmflags;	/* PROC_VMF_*, with smaps only */
	char path[PATH_MAX];	/* "" for anonymous */
};

/* Every mapping of pid ("self" when pid is 0). *ret is malloc'ed. */
int proc_parse_maps(pid_t pid, bool smaps, struct proc_vma **ret, size_t *ret_n);

/* The fields of /proc/PID/stat that ckpt uses, by their man-page numbers. */
struct proc_stat {
	char comm[64];
	char state;
	int ppid, pgid, sid;
	unsigned long long start_code, end_code, start_stack;	/* 26, 27, 28 */
	unsigned long long start_data, end_data, start_brk;	/* 45, 46, 47 */
	unsigned long long arg_start, arg_end, env_start, env_end;	/* 48-51 */
	int exit_signal;	/* 38 */
	int num_threads;	/* 20 */
	int exit_code;		/* 52: wait status of a zombie */
	unsigned long flags;	/* 9: PF_* */
};
int proc_parse_stat(pid_t pid, struct proc_stat *ret);

struct proc_status {
	uint32_t uid[4], gid[4];	/* real, effective, saved, fs */
	uint32_t groups[256];
	int nr_groups;		/* > 256: more than the array holds */
	uint64_t cap_inh, cap_prm, cap_eff, cap_bnd, cap_amb;
	uint32_t umask;
	int no_new_privs;
	int seccomp, seccomp_filters;
	int threads;
	int tgid;		/* the thread group of the PID read */
	int tracer;		/* TracerPid: who holds it under ptrace, or 0 */
	uint64_t sig_pnd, shd_pnd, sig_ign;
};
int proc_parse_status(pid_t pid, struct proc_status *ret);

/* A "lock:" line of /proc/PID/fdinfo/FD (fs/locks.c lock_get_status). */
struct proc_lock {
	char kind[16];		/* FLOCK, POSIX, OFDLCK, LEASE, DELEG, ... */
	char mode[16];		/* ADVISORY, MANDATORY */
	char access[16];	/* READ, WRITE, ... */
	uint64_t start, end;	/* end UINT64_MAX: EOF */
};

/* pos, flags, mnt_id and locks from /proc/PID/fdinfo/FD */
struct proc_fdinfo {
	uint64_t pos;
	uint32_t flags;
	int mnt_id;
	int nr_locks;		/* may exceed PROC_MAX_LOCKS: only that many are kept */
	struct proc_lock locks[PROC_MAX_LOCKS];
};
int proc_parse_fdinfo(pid_t pid, int fd, struct proc_fdinfo *ret);

/* Read a small /proc file whole; returns length or -errno. NUL-terminated. */
ssize_t proc_read_file(pid_t pid, const char *name, char *buf, size_t len);
/* readlink of /proc/PID/NAME into buf. */
int proc_readlink(pid_t pid, const char *name, char *buf, size_t len);

#endif
