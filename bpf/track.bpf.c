// SPDX-License-Identifier: (GPL-2.0-only OR MIT)
/*
 * track.bpf.c: follows tracked process trees and sends one struct track_event
 * per fork, exit, exec and address-space change to trackd through `events`.
 *
 * A process is tracked while its tgid (as seen from trackd's PID namespace)
 * is a key of `tracked`: trackd adds the roots, task_newtask adds every new
 * process a tracked one creates, sched_process_exit removes the group once
 * its last thread is gone. Everything else returns after one map lookup.
 *
 * Syscall events come from the syscalls:sys_exit_* tracepoints: only calls
 * that succeeded are sent, with their arguments taken from the user
 * registers the syscall entry saved (the x86-64 syscall ABI: di, si, dx,
 * r10, r8, r9; the kernel does not write them back on the way out).
 */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "bpf/track.h"

/* uapi macros, which vmlinux.h does not carry. */
#define TRACK_CLONE_THREAD		0x00010000
#define TRACK_MADV_DONTNEED		4
#define TRACK_MADV_FREE			8
#define TRACK_MADV_REMOVE		9
#define TRACK_MADV_DONTNEED_LOCKED	24
#define TRACK_MADV_GUARD_INSTALL	102
#define TRACK_MADV_GUARD_REMOVE		103
/* A syscall returning an address fails with -1..-4095 (include/linux/err.h). */
#define TRACK_MAX_ERRNO			4095
#define TRACK_EFAULT			14
/* Kernel dev_t: 12-bit major, 20-bit minor (include/linux/kdev_t.h). */
#define TRACK_MINORBITS			20
/* MAX_PID_NS_LEVEL, include/linux/pid_namespace.h. */
#define TRACK_MAX_PIDNS_LEVEL		32

const volatile __u32 cfg_pidns_ino;		/* trackd's PID namespace */
/* Its level (0: the initial one), or TRACK_PIDNS_LEVEL_UNKNOWN: found below. */
const volatile __u32 cfg_pidns_level;
const volatile __u64 cfg_page_size = 4096;
/* Wake trackd only once this much waits in the ring (it also reads on a timer). */
const volatile __u64 cfg_wakeup_bytes;

/* The level of cfg_pidns_ino plus one once pidns_level() found it; 0 before. */
static __u32 pidns_depth;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);		/* set by trackd */
	__type(key, __s32);			/* tgid */
	__type(value, __u8);
} tracked SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20);		/* set by trackd */
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TRACK_STAT_NR);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);		/* set by trackd */
	__type(key, __s32);			/* tgid */
	__type(value, __u64);			/* records dropped */
} lost SEC(".maps");

/*
 * The TID a thread had when it called execve, from sched_prepare_exec (before
 * de_thread() gives it the leader's PID) to sched_process_exec, whose old_pid
 * is only the number in the initial namespace.
 */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, __s32);
} exec_tid SEC(".maps");

struct ids {
	__s32 pid;
	__s32 tgid;
};

/*
 * The level of trackd's namespace. When trackd could not tell (its /proc is
 * not the initial namespace's), the first pid seen in that namespace or below
 * it shows it: one of the ancestors of pid's own namespace is trackd's, and
 * a namespace knows its level. TRACK_PIDNS_LEVEL_UNKNOWN until then.
 */
static __always_inline __u32 pidns_level(struct pid *pid)
{
	struct pid_namespace *ns;
	struct upid upid;
	__u32 level;

	if (cfg_pidns_level != TRACK_PIDNS_LEVEL_UNKNOWN)
		return cfg_pidns_level;
	if (pidns_depth)
		return pidns_depth - 1;
	level = BPF_CORE_READ(pid, level);
	/* A variable index into the flexible numbers[]: read it by address. */
	if (bpf_probe_read_kernel(&upid, sizeof(upid), &pid->numbers[level]))
		return TRACK_PIDNS_LEVEL_UNKNOWN;
	ns = upid.ns;
	for (int i = 0; i <= TRACK_MAX_PIDNS_LEVEL && ns; i++) {
		if (BPF_CORE_READ(ns, ns.inum) == cfg_pidns_ino) {
			level = BPF_CORE_READ(ns, level);
			pidns_depth = level + 1;
			return level;
		}
		ns = BPF_CORE_READ(ns, parent);
	}
	return TRACK_PIDNS_LEVEL_UNKNOWN;
}

/* The number of pid in trackd's namespace; 0 when pid is not visible there. */
static __always_inline __s32 pid_nr_ns(struct pid *pid)
{
	struct upid upid;
	__u32 level;

	if (!pid)
		return 0;
	level = pidns_level(pid);
	if (level == TRACK_PIDNS_LEVEL_UNKNOWN || BPF_CORE_READ(pid, level) < level)
		return 0;
	if (bpf_probe_read_kernel(&upid, sizeof(upid), &pid->numbers[level]))
		return 0;
	if (BPF_CORE_READ(upid.ns, ns.inum) != cfg_pidns_ino)
		return 0;
	return upid.nr;
}

static __always_inline __s32 task_tid_ns(struct task_struct *task)
{
	return pid_nr_ns(BPF_CORE_READ(task, thread_pid));
}

static __always_inline __s32 task_tgid_ns(struct task_struct *task)
{
	if (!task)
		return 0;
	return pid_nr_ns(BPF_CORE_READ(task, signal, pids[PIDTYPE_TGID]));
}

static __always_inline bool tgid_tracked(__s32 tgid)
{
	return tgid && bpf_map_lookup_elem(&tracked, &tgid);
}

/*
 * Whether the current process is tracked; fills ids when it is. In the initial
 * namespace the numbers come from one helper call, without reading the task.
 */
static __always_inline bool current_tracked(struct ids *ids)
{
	struct task_struct *task;
	__u64 pid_tgid;

	if (!cfg_pidns_level) {
		pid_tgid = bpf_get_current_pid_tgid();
		ids->tgid = pid_tgid >> 32;
		ids->pid = (__u32)pid_tgid;
		return tgid_tracked(ids->tgid);
	}
	task = bpf_get_current_task_btf();
	ids->tgid = task_tgid_ns(task);
	if (!tgid_tracked(ids->tgid))
		return false;
	ids->pid = task_tid_ns(task);
	return true;
}

static __always_inline void stat_inc(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &idx);

	if (v)
		*v += 1;
}

/* A record about tgid could not be sent: count it, and name tgid in `lost`. */
static __always_inline void note_drop(__s32 tgid)
{
	__u64 one = 1, *v;

	stat_inc(TRACK_STAT_DROPS);
	v = bpf_map_lookup_elem(&lost, &tgid);
	if (!v && bpf_map_update_elem(&lost, &tgid, &one, BPF_NOEXIST) == 0)
		return;
	/* Present already, or another CPU inserted it first; else the map is full. */
	if (!v)
		v = bpf_map_lookup_elem(&lost, &tgid);
	if (v)
		__sync_fetch_and_add(v, 1);
	else
		stat_inc(TRACK_STAT_LOST_UNNAMED);
}

/* Fills the header of e, reserved for TRACK_EVENT_SIZE_NOPATH bytes at least. */
static __always_inline void event_init(struct track_event *e, __u32 kind, const struct ids *ids,
				       struct task_struct *task)
{
	__builtin_memset(e, 0, TRACK_EVENT_SIZE_NOPATH);
	e->ts = bpf_ktime_get_ns();
	e->kind = kind;
	e->pid = ids->pid;
	e->tgid = ids->tgid;
	e->ppid = task_tgid_ns(BPF_CORE_READ(task, real_parent));
}

/* A record of every kind but TRACK_EXEC, about task; NULL (counted) if the ring is full. */
static __always_inline struct track_event *event_new(__u32 kind, const struct ids *ids,
						     struct task_struct *task)
{
	struct track_event *e = bpf_ringbuf_reserve(&events, TRACK_EVENT_SIZE_NOPATH, 0);

	if (!e) {
		note_drop(ids->tgid);
		return NULL;
	}
	event_init(e, kind, ids, task);
	return e;
}

/*
 * A wake-up per record would cost the tracked task a context switch to
 * trackd for each of them; trackd drains the ring on a short timer anyway,
 * so only a ring filling up is worth waking it early.
 */
static __always_inline void event_send(struct track_event *e)
{
	__u64 flags = BPF_RB_NO_WAKEUP;

	if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= cfg_wakeup_bytes)
		flags = BPF_RB_FORCE_WAKEUP;
	bpf_ringbuf_submit(e, flags);
	stat_inc(TRACK_STAT_EVENTS);
}

/* Fork, exit, exec. */

SEC("tp_btf/task_newtask")
int BPF_PROG(tp_btf_task_newtask, struct task_struct *task, u64 clone_flags)
{
	struct track_event *e;
	struct ids creator, ids;
	bool unfollowed = false;
	__u8 one = 1;

	if (!current_tracked(&creator))
		return 0;
	ids.pid = task_tid_ns(task);
	ids.tgid = task_tgid_ns(task);
	if (!(clone_flags & TRACK_CLONE_THREAD) && ids.tgid &&
	    bpf_map_update_elem(&tracked, &ids.tgid, &one, BPF_ANY)) {
		stat_inc(TRACK_STAT_TRACKED_FULL);
		unfollowed = true;
	}
	e = event_new(TRACK_FORK, &ids, task);
	if (!e)
		return 0;
	/* kernel_clone_args.flags: clone() already took CSIGNAL (the exit signal) out. */
	e->flags = clone_flags;
	e->arg0 = creator.pid;
	e->arg1 = unfollowed;
	event_send(e);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(tp_btf_sched_process_exit, struct task_struct *task, bool group_dead)
{
	struct track_event *e;
	struct ids ids;

	if (!current_tracked(&ids))
		return 0;
	e = event_new(TRACK_EXIT, &ids, task);
	if (e) {
		/* do_exit() stored it before the tracepoint (6.18: exit(3) reads 0x300). */
		e->arg0 = BPF_CORE_READ(task, exit_code);
		e->arg1 = group_dead;
		event_send(e);
	}
	if (group_dead)
		bpf_map_delete_elem(&tracked, &ids.tgid);
	return 0;
}

/*
 * Runs at exec's point of no return (begin_new_exec(), 6.10), before de_thread() gives
 * an exec'ing non-leader thread the leader's PID.
 */
SEC("tp_btf/sched_prepare_exec")
int BPF_PROG(tp_btf_sched_prepare_exec, struct task_struct *task, struct linux_binprm *bprm)
{
	struct ids ids;
	__s32 *tid;

	if (!current_tracked(&ids))
		return 0;
	tid = bpf_task_storage_get(&exec_tid, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (tid)
		*tid = ids.pid;
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(tp_btf_sched_process_exec, struct task_struct *p, pid_t old_pid,
	     struct linux_binprm *bprm)
{
	struct track_event *e;
	struct ids ids;
	__s32 *tid;

	if (!current_tracked(&ids))
		return 0;
	tid = bpf_task_storage_get(&exec_tid, p, 0, 0);
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		note_drop(ids.tgid);
		goto out;
	}
	__builtin_memset(e->path, 0, sizeof(e->path));
	event_init(e, TRACK_EXEC, &ids, p);
	/* old_pid is the TID in the initial namespace, right for trackd only there. */
	if (tid)
		e->arg0 = *tid;
	else if (!cfg_pidns_level)
		e->arg0 = old_pid;
	bpf_probe_read_kernel_str(e->path, sizeof(e->path), BPF_CORE_READ(bprm, filename));
	event_send(e);
out:
	if (tid)
		bpf_task_storage_delete(&exec_tid, p);
	return 0;
}

/* Syscalls. */

struct sc {
	struct task_struct *task;
	struct ids ids;
	__u64 arg[4];		/* no call followed takes more */
};

/* Whether the caller is tracked; fills sc with it and its syscall arguments. */
static __always_inline bool sc_begin(struct sc *sc)
{
	struct pt_regs *regs;

	if (!current_tracked(&sc->ids))
		return false;
	sc->task = bpf_get_current_task_btf();
	regs = (struct pt_regs *)bpf_task_pt_regs(sc->task);
	sc->arg[0] = BPF_CORE_READ(regs, di);
	sc->arg[1] = BPF_CORE_READ(regs, si);
	sc->arg[2] = BPF_CORE_READ(regs, dx);
	sc->arg[3] = BPF_CORE_READ(regs, r10);
	return true;
}

static __always_inline bool is_err_addr(long ret)
{
	return (unsigned long)ret >= (unsigned long)-TRACK_MAX_ERRNO;
}

static __always_inline __u64 page_align(__u64 len)
{
	return (len + cfg_page_size - 1) & ~(cfg_page_size - 1);
}

struct vma_info {
	__u64 start;
	__u64 end;
	__u64 dev;
	__u64 ino;
	__u64 pgoff;
};

/* st_dev as stat(2) reports it: new_encode_dev() of include/linux/kdev_t.h. */
static __always_inline __u64 encode_dev(__u32 dev)
{
	__u32 major = dev >> TRACK_MINORBITS, minor = dev & ((1U << TRACK_MINORBITS) - 1);

	return (minor & 0xff) | (major << 8) | ((minor & ~0xffU) << 12);
}

static long vma_info_cb(struct task_struct *task, struct vm_area_struct *vma, void *data)
{
	struct vma_info *vi = data;
	struct file *file;
	struct inode *inode;

	vi->start = BPF_CORE_READ(vma, vm_start);
	vi->end = BPF_CORE_READ(vma, vm_end);
	file = BPF_CORE_READ(vma, vm_file);
	if (!file)
		return 0;
	inode = BPF_CORE_READ(file, f_inode);
	vi->dev = encode_dev(BPF_CORE_READ(inode, i_sb, s_dev));
	vi->ino = BPF_CORE_READ(inode, i_ino);
	vi->pgoff = BPF_CORE_READ(vma, vm_pgoff);
	return 0;
}

/*
 * The VMA holding addr. A neighbour may have been merged into it, so its
 * start and pgoff are those of the VMA, not of addr. Returns 0, -ENOENT, or
 * -EBUSY when the mm's lock could not be taken without waiting.
 */
static __always_inline long vma_find(struct task_struct *task, __u64 addr, struct vma_info *vi)
{
	return bpf_find_vma(task, addr, vma_info_cb, vi, 0);
}

/* The file identity of the mapping at e->start, from vi; arg1: the lookup's result. */
static __always_inline void event_set_file(struct track_event *e, const struct vma_info *vi,
					   long err)
{
	e->arg1 = err;
	if (err || !vi->ino)
		return;
	e->dev = vi->dev;
	e->ino = vi->ino;
	e->pgoff = vi->pgoff + (e->start - vi->start) / cfg_page_size;
}

/*
 * Sends a record of kind about [start, start + len) with prot and arg0, the
 * shape of the calls that only name a range.
 */
static __always_inline int range_event(const struct sc *sc, __u32 kind, __u64 start, __u64 len,
				       __u64 prot, __s64 arg0)
{
	struct track_event *e = event_new(kind, &sc->ids, sc->task);

	if (!e)
		return 0;
	e->start = start;
	e->len = len;
	e->prot = prot;
	e->arg0 = arg0;
	event_send(e);
	return 0;
}

/*
 * A record of kind about the new mapping at start, for the caller to complete
 * and send: start and the file fields from the VMA holding it (looked up
 * unless err already tells why not) and, with to_vma_end, len up to that
 * VMA's end. NULL if the ring is full.
 */
static __always_inline struct track_event *map_event_new(const struct sc *sc, __u32 kind,
							 __u64 start, bool to_vma_end, long err)
{
	struct vma_info vi = {};
	struct track_event *e;

	if (!err)
		err = vma_find(sc->task, start, &vi);
	e = event_new(kind, &sc->ids, sc->task);
	if (!e)
		return NULL;
	e->start = start;
	if (to_vma_end && !err)
		e->len = vi.end - start;
	event_set_file(e, &vi, err);
	return e;
}

SEC("tracepoint/syscalls/sys_exit_mmap")
int tp_sys_exit_mmap(struct syscall_trace_exit *ctx)
{
	struct track_event *e;
	struct sc sc;

	if (is_err_addr(ctx->ret) || !sc_begin(&sc))
		return 0;
	e = map_event_new(&sc, TRACK_MMAP, ctx->ret, false, 0);
	if (!e)
		return 0;
	e->len = page_align(sc.arg[1]);
	e->prot = sc.arg[2];
	e->flags = sc.arg[3];
	event_send(e);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_munmap")
int tp_sys_exit_munmap(struct syscall_trace_exit *ctx)
{
	struct sc sc;

	if (ctx->ret < 0 || !sc_begin(&sc))
		return 0;
	return range_event(&sc, TRACK_MUNMAP, sc.arg[0], page_align(sc.arg[1]), 0, 0);
}

SEC("tracepoint/syscalls/sys_exit_mremap")
int tp_sys_exit_mremap(struct syscall_trace_exit *ctx)
{
	struct track_event *e;
	struct sc sc;

	if (is_err_addr(ctx->ret) || !sc_begin(&sc))
		return 0;
	e = map_event_new(&sc, TRACK_MREMAP, ctx->ret, false, 0);
	if (!e)
		return 0;
	e->old_start = sc.arg[0];
	e->old_len = page_align(sc.arg[1]);
	e->len = page_align(sc.arg[2]);
	e->flags = sc.arg[3];
	event_send(e);
	return 0;
}

/* mprotect is pkey_mprotect with pkey -1 (mm/mprotect.c): arg0 is the pkey. */
static __always_inline int mprotect_event(struct syscall_trace_exit *ctx, bool with_pkey)
{
	struct sc sc;

	if (ctx->ret < 0 || !sc_begin(&sc))
		return 0;
	return range_event(&sc, TRACK_MPROTECT, sc.arg[0], page_align(sc.arg[1]), sc.arg[2],
			   with_pkey ? (int)sc.arg[3] : -1);
}

SEC("tracepoint/syscalls/sys_exit_mprotect")
int tp_sys_exit_mprotect(struct syscall_trace_exit *ctx)
{
	return mprotect_event(ctx, false);
}

SEC("tracepoint/syscalls/sys_exit_pkey_mprotect")
int tp_sys_exit_pkey_mprotect(struct syscall_trace_exit *ctx)
{
	return mprotect_event(ctx, true);
}

/*
 * brk returns the new break on success and the old one on failure, and
 * brk(0) only asks: a change happened when the answer is what was asked for.
 */
SEC("tracepoint/syscalls/sys_exit_brk")
int tp_sys_exit_brk(struct syscall_trace_exit *ctx)
{
	struct task_struct *task;
	struct track_event *e;
	struct mm_struct *mm;
	struct sc sc;
	__u64 start;

	if (ctx->ret <= 0 || !sc_begin(&sc))
		return 0;
	if (!sc.arg[0] || sc.arg[0] != (__u64)ctx->ret)
		return 0;
	task = sc.task;
	mm = BPF_CORE_READ(task, mm);
	start = BPF_CORE_READ(mm, start_brk);
	e = event_new(TRACK_BRK, &sc.ids, sc.task);
	if (!e)
		return 0;
	e->start = start;
	e->len = BPF_CORE_READ(mm, brk) - start;
	event_send(e);
	return 0;
}

/*
 * The advices that change what the range reads: the discarding ones, and the guard regions
 * of 6.13 (GUARD_INSTALL zaps the range's pages before it puts guard markers in; after
 * GUARD_REMOVE the range reads as zero-fill or the file again).
 *
 * process_madvise() is not followed: its target is a pidfd, possibly of another process,
 * which the caller's tracked state says nothing about. Since 6.13 it takes every advice
 * when that pidfd is the caller's own process (mm/madvise.c, "unrestrict process_madvise()
 * for current process"), so a discard or guard made that way is missed here.
 */
static __always_inline bool madvise_changes(int advice)
{
	return advice == TRACK_MADV_DONTNEED || advice == TRACK_MADV_FREE ||
	       advice == TRACK_MADV_REMOVE || advice == TRACK_MADV_DONTNEED_LOCKED ||
	       advice == TRACK_MADV_GUARD_INSTALL || advice == TRACK_MADV_GUARD_REMOVE;
}

SEC("tracepoint/syscalls/sys_exit_madvise")
int tp_sys_exit_madvise(struct syscall_trace_exit *ctx)
{
	struct sc sc;
	int advice;

	if (ctx->ret < 0 || !sc_begin(&sc))
		return 0;
	advice = sc.arg[2];
	if (!madvise_changes(advice))
		return 0;
	return range_event(&sc, TRACK_MADVISE, sc.arg[0], page_align(sc.arg[1]), 0, advice);
}

SEC("tracepoint/syscalls/sys_exit_shmat")
int tp_sys_exit_shmat(struct syscall_trace_exit *ctx)
{
	struct track_event *e;
	struct sc sc;

	if (is_err_addr(ctx->ret) || !sc_begin(&sc))
		return 0;
	e = map_event_new(&sc, TRACK_SHMAT, ctx->ret, true, 0);
	if (!e)
		return 0;
	e->flags = sc.arg[2];
	e->arg0 = (int)sc.arg[0];
	event_send(e);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_shmdt")
int tp_sys_exit_shmdt(struct syscall_trace_exit *ctx)
{
	struct sc sc;

	if (ctx->ret < 0 || !sc_begin(&sc))
		return 0;
	return range_event(&sc, TRACK_SHMDT, sc.arg[0], 0, 0, 0);
}

SEC("tracepoint/syscalls/sys_exit_io_setup")
int tp_sys_exit_io_setup(struct syscall_trace_exit *ctx)
{
	struct track_event *e;
	__u64 ctx_id = 0;
	struct sc sc;

	if (ctx->ret < 0 || !sc_begin(&sc))
		return 0;
	/* The context ID the call just stored at the user pointer: the ring's address. */
	if (bpf_probe_read_user(&ctx_id, sizeof(ctx_id), (void *)sc.arg[1]))
		ctx_id = 0;
	e = map_event_new(&sc, TRACK_IO_SETUP, ctx_id, true, ctx_id ? 0 : -TRACK_EFAULT);
	if (!e)
		return 0;
	e->arg0 = (unsigned int)sc.arg[0];
	event_send(e);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_io_destroy")
int tp_sys_exit_io_destroy(struct syscall_trace_exit *ctx)
{
	struct sc sc;

	if (ctx->ret < 0 || !sc_begin(&sc))
		return 0;
	return range_event(&sc, TRACK_IO_DESTROY, sc.arg[0], 0, 0, 0);
}

SEC("tracepoint/syscalls/sys_exit_setsid")
int tp_sys_exit_setsid(struct syscall_trace_exit *ctx)
{
	struct track_event *e;
	struct ids ids;

	if (ctx->ret < 0 || !current_tracked(&ids))
		return 0;
	e = event_new(TRACK_SETSID, &ids, bpf_get_current_task_btf());
	if (!e)
		return 0;
	e->arg0 = ctx->ret;
	event_send(e);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_setpgid")
int tp_sys_exit_setpgid(struct syscall_trace_exit *ctx)
{
	struct track_event *e;
	struct sc sc;

	if (ctx->ret < 0 || !sc_begin(&sc))
		return 0;
	e = event_new(TRACK_SETPGID, &sc.ids, sc.task);
	if (!e)
		return 0;
	e->arg0 = (int)sc.arg[0];
	e->arg1 = (int)sc.arg[1];
	event_send(e);
	return 0;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
