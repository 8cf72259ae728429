// SPDX-License-Identifier: MIT
/*
 * The restorer turns a freshly forked copy of the engine into the dumped
 * process. On entry (see restorer_abi.h) the task has the engine's
 * mappings, its final fd table plus the fds listed in args (pages file,
 * files to map, log), its final cwd and root, and every signal blocked.
 * The engine traces it with PTRACE_O_EXITKILL, so if anything here fails
 * the engine kills the task: no half-restored process survives.
 */
#include <linux/aio_abi.h>
#include <linux/capability.h>
#include <linux/fcntl.h>
#include <linux/mman.h>
#include <linux/sched.h>
#include <linux/prctl.h>
#include <linux/securebits.h>

#include "restorer_abi.h"
#include "rt.h"

#define BLOB_PREFIX "restorer: "

#define ARCH_SET_GS 0x1001
#define ARCH_SET_FS 0x1002
#define IOV_BATCH 512

void restorer_main(struct restorer_args *a);
void restorer_sigreturn(unsigned long frame, const void *trap_action) __attribute__((noreturn));
long restorer_clone_thread(struct clone_args *ca, unsigned long size, void (*fn)(void *), void *arg);

struct blob_iovec {
	unsigned long base;
	unsigned long len;
};

static struct restorer_args *args;

static void *at(__u32 off)
{
	return (char *)args + off;
}

/*
 * Report the failed step to the engine and stop; the engine kills us.
 * Several threads can fail at once (each sets its own credentials, rseq,
 * ...), so the message is built on this thread's stack and only the first
 * to claim args->err_tid copies it into args->errmsg; the others only log
 * theirs. Each failing thread stores its error in its own status, which
 * also ends the leader's wait_threads. The engine reads all of it once
 * every thread sits on an int3, so the plain errmsg copy cannot be seen
 * half done.
 */
static void __attribute__((noreturn)) fail(long err, const char *fmt, ...)
{
	int code = err < 0 ? (int)err : -1;
	__u32 tid = (__u32)sys_gettid(), none = 0;
	char msg[RESTORER_ERRMSG_SIZE];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = rt_vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	rt_snprintf(msg + n, sizeof(msg) - n, ": errno %ld", -err);
	rt_err("thread %u: %s", tid, msg);
	if (__atomic_compare_exchange_n(&args->err_tid, &none, tid, 0, __ATOMIC_ACQ_REL,
					__ATOMIC_ACQUIRE)) {
		memcpy(args->errmsg, msg, sizeof(msg));
		__atomic_store_n(&args->status, code, __ATOMIC_RELEASE);
	}
	/* A mismatched args may not have a usable thread array. */
	if (args->magic == RESTORER_MAGIC && args->version == RESTORER_ABI_VERSION) {
		struct restorer_thread *th = at(args->threads_off);

		for (__u32 k = 0; k < args->nr_threads; k++)
			if (th[k].tid == tid)
				__atomic_store_n(&th[k].status, code, __ATOMIC_RELEASE);
	}
	for (;;) {
		asm volatile("int3" ::: "memory");
		sys_exit_group(1);
	}
}

/*
 * Step 1: only the restorer region, the vDSO and the premapped mappings
 * (filled before the fork, see restorer_premap) stay. Unmapping the gaps
 * between them, rather than a list of what ckpt had mapped, also catches
 * whatever ckpt mapped after such a list was taken; munmap of a range with
 * nothing in it is not an error.
 */
static void unmap_engine(void)
{
	struct restorer_range keep[5];
	struct restorer_premap *pm = at(args->premaps_off);
	__u32 n = 0, p = 0;

	keep[n++] = (struct restorer_range){ args->region_start, args->region_end };
	for (__u32 i = 0; i < args->nr_vdso_parts && i < 4; i++)
		keep[n++] = args->vdso_parts[i];
	for (__u32 i = 1; i < n; i++) {
		for (__u32 k = i; k > 0 && keep[k - 1].start > keep[k].start; k--) {
			struct restorer_range t = keep[k];
			keep[k] = keep[k - 1];
			keep[k - 1] = t;
		}
	}
	/* Walk both sorted lists (premaps are sorted by the engine) in address order. */
	__u64 from = 0;
	for (__u32 i = 0;;) {
		__u64 s, e;
		if (i < n && (p == args->nr_premaps || keep[i].start <= pm[p].from)) {
			s = keep[i].start;
			e = keep[i].end;
			i++;
		} else if (p < args->nr_premaps) {
			s = pm[p].from;
			e = pm[p].from + pm[p].len;
			p++;
		} else {
			s = e = args->task_size;
		}
		if (s > from) {
			long ret = sys_munmap(from, s - from);
			if (ret)
				fail(ret, "munmap %lx-%lx", (unsigned long)from, (unsigned long)s);
		}
		if (e > from)
			from = e;
		if (s == args->task_size)
			break;
	}
}

static int overlaps(__u64 s1, __u64 e1, __u64 s2, __u64 e2)
{
	return s1 < e2 && s2 < e1;
}

/* Is [c, c + len) free now (and not where the vDSO is or goes)? */
static int free_for_tmp(__u64 c, __u64 len, __u64 cur, __u64 dst)
{
	struct restorer_premap *pm = at(args->premaps_off);

	if (c < RT_PAGE_SIZE || c + len > args->task_size ||
	    overlaps(c, c + len, dst, dst + len) || overlaps(c, c + len, cur, cur + len) ||
	    overlaps(c, c + len, args->region_start, args->region_end))
		return 0;
	for (__u32 i = 0; i < args->nr_premaps; i++)
		if (overlaps(c, c + len, pm[i].from, pm[i].from + pm[i].len))
			return 0;
	return 1;
}

static void move_vdso_parts(__u64 from, __u64 to)
{
	struct restorer_range *p = args->vdso_parts;

	for (__u32 i = 0; i < args->nr_vdso_parts; i++) {
		__u64 len = p[i].end - p[i].start;
		__u64 src = p[i].start - args->vdso_cur_start + from;
		__u64 dst = p[i].start - args->vdso_cur_start + to;
		long ret = sys_mremap(src, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
		if (rt_is_err(ret))
			fail(ret, "mremap of vDSO part %lx to %lx", (unsigned long)src,
			     (unsigned long)dst);
	}
}

/*
 * Step 2: the running kernel's vDSO (its vvar pages and code, which
 * reference each other at fixed offsets) moves as one block to where the
 * image had it; the engine checked the block fits the dumped hole. The
 * parts are moved one by one (mremap works on one mapping at a time), via
 * a temporary place when the old and new blocks overlap.
 */
static void place_vdso(void)
{
	__u64 cur = args->vdso_cur_start, len = args->vdso_cur_len;
	__u64 dst = args->vdso_new_start;

	if (!args->nr_vdso_parts)
		return;
	if (!dst) {
		struct restorer_range *p = args->vdso_parts;
		for (__u32 i = 0; i < args->nr_vdso_parts; i++)
			sys_munmap(p[i].start, p[i].end - p[i].start);
		return;
	}
	if (dst == cur)
		return;
	if (overlaps(cur, cur + len, dst, dst + len)) {
		/* Nothing but the region, the vDSO and the premaps is mapped now. */
		__u64 tmp = 0;
		for (int k = 1; k <= 8 && !tmp; k++) {
			__u64 c = k & 1 ? args->region_start - (k + 1) / 2 * len
					: args->region_end + (k / 2 - 1) * len;
			if (!free_for_tmp(c, len, cur, dst))
				continue;
			tmp = c;
		}
		if (!tmp)
			fail(-12, "no room to move the vDSO out of the way");
		move_vdso_parts(cur, tmp);
		cur = tmp;
	}
	move_vdso_parts(cur, dst);
}

/*
 * Step 3: the premapped mappings go to their places (mremap keeps the
 * pages, and so the sharing with the parent and children). Their premap
 * areas were chosen clear of every final mapping of this task.
 */
static void move_premaps(void)
{
	struct restorer_premap *pm = at(args->premaps_off);

	for (__u32 i = 0; i < args->nr_premaps; i++) {
		long ret = sys_mremap(pm[i].from, pm[i].len, pm[i].len, MREMAP_MAYMOVE | MREMAP_FIXED,
				      pm[i].to);
		if (rt_is_err(ret))
			fail(ret, "mremap of premapped %lx to %lx", (unsigned long)pm[i].from,
			     (unsigned long)pm[i].to);
	}
}

/* Step 4: the other saved mappings, writable while their pages are read in. */
static void map_vmas(void)
{
	struct restorer_vma *v = at(args->vmas_off);

	for (__u32 i = 0; i < args->nr_vmas; i++) {
		if (v[i].premapped)
			continue;
		unsigned long prot = v[i].prot | (v[i].has_pages ? PROT_READ | PROT_WRITE : 0);
		long ret = sys_mmap(v[i].start, v[i].end - v[i].start, prot, v[i].flags | MAP_FIXED,
				    v[i].fd, v[i].pgoff);
		if (rt_is_err(ret))
			fail(ret, "mmap %lx-%lx prot %lx flags %x fd %d", (unsigned long)v[i].start,
			     (unsigned long)v[i].end, prot, v[i].flags, v[i].fd);
		if (v[i].data_len)
			memcpy((void *)v[i].start, at(v[i].data_off), v[i].data_len);
	}
}

/*
 * Step 5: page contents, as few preadv calls as the file layout allows:
 * one per batch of runs that follow each other in one pages file (an
 * incremental dump's runs alternate between the files of its levels).
 * Every fd named by a run is open here, at fd_base + its slot.
 */
static void read_pages(void)
{
	struct restorer_run *r = at(args->runs_off);
	struct blob_iovec iov[IOV_BATCH];
	__u32 i = 0;

	while (i < args->nr_runs) {
		__u64 off = r[i].file_off, len = 0;
		int fd = r[i].fd;
		int n = 0;

		while (i < args->nr_runs && n < IOV_BATCH && r[i].fd == fd &&
		       r[i].file_off == off + len) {
			iov[n].base = r[i].vaddr;
			iov[n].len = r[i].len;
			len += r[i].len;
			n++;
			i++;
		}
		/*
		 * Fault the pages in up front (MADV_POPULATE_WRITE, 5.14): one
		 * walk instead of a page fault per page under preadv's copy.
		 * Only the runs: pages never dumped must stay unpopulated.
		 */
		for (int k = 0; k < n; k++)
			sys_madvise(iov[k].base, iov[k].len, 23);
		/* A short read leaves a tail: finish it run by run. */
		long ret = sys_preadv(fd, iov, n, off, 0);
		if (ret < 0)
			fail(ret, "reading %lu bytes of pages at offset %lu of fd %d", (unsigned long)len,
			     (unsigned long)off, fd);
		if ((__u64)ret == len)
			continue;
		__u64 done = ret;
		for (int k = 0; k < n; k++) {
			if (done >= iov[k].len) {
				done -= iov[k].len;
				continue;
			}
			__u64 pos = off, skip = done;
			for (int j = 0; j < k; j++)
				pos += iov[j].len;
			while (skip < iov[k].len) {
				ret = sys_pread64(fd, (void *)(iov[k].base + skip),
						  iov[k].len - skip, pos + skip);
				if (ret <= 0)
					fail(ret ? ret : -5, "pages file (fd %d) ends before %lx", fd,
					     (unsigned long)(iov[k].base + skip));
				skip += ret;
			}
			done = 0;
		}
	}
}

/* Step 6: final protections and advice. */
static void finish_vmas(void)
{
	struct restorer_vma *v = at(args->vmas_off);
	static const struct {
		__u32 bit;
		int advice;
	} madv[] = {
		{ 1 << 0, MADV_HUGEPAGE }, { 1 << 1, MADV_NOHUGEPAGE }, { 1 << 2, MADV_DONTDUMP },
		{ 1 << 3, MADV_DONTFORK }, { 1 << 4, MADV_WIPEONFORK },
	};

	for (__u32 i = 0; i < args->nr_vmas; i++) {
		__u64 len = v[i].end - v[i].start;
		long ret;

		if (v[i].has_pages && v[i].prot != (PROT_READ | PROT_WRITE)) {
			ret = sys_mprotect(v[i].start, len, v[i].prot);
			if (ret)
				fail(ret, "mprotect %lx", (unsigned long)v[i].start);
		}
		if (v[i].name_off) {
			/* PR_SET_VMA, PR_SET_VMA_ANON_NAME: needs CONFIG_ANON_VMA_NAME. */
			ret = sys_prctl(0x53564d41, 0, v[i].start, len, (unsigned long)at(v[i].name_off));
			if (ret)
				rt_err("naming the mapping at %lx failed: %ld, ignoring",
				       (unsigned long)v[i].start, ret);
		}
		for (unsigned k = 0; k < sizeof(madv) / sizeof(madv[0]); k++) {
			if (!(v[i].madv & madv[k].bit))
				continue;
			/* Advice is a hint; a kernel that lacks one (THP off) is no reason to fail. */
			ret = sys_madvise(v[i].start, len, madv[k].advice);
			if (ret)
				rt_err("madvise %d at %lx failed: %ld, ignoring", madv[k].advice,
				       (unsigned long)v[i].start, ret);
		}
	}
}

/* The kernel's struct aio_ring (fs/aio.c): this header, then the io_events. */
struct blob_aio_ring {
	__u32 id;		/* the context's index in the mm's table: the kernel's */
	__u32 nr;
	__u32 head;		/* the reader's position; user space may move it */
	__u32 tail;		/* copied from the kernel's own ctx->tail */
	__u32 magic, compat_features, incompat_features, header_length;
};

#define AIO_BATCH 64

/*
 * n reads of 0 bytes from the empty pipe at fd. pipe_read() returns 0 at
 * once for an empty request, so aio_read() completes each one inside
 * io_submit (aio_rw_done -> aio_complete), advancing the kernel's tail.
 */
static void aio_dummies(const struct restorer_aio *r, unsigned long ctx, int fd, __u32 n)
{
	struct iocb cb[AIO_BATCH];
	struct iocb *cbp[AIO_BATCH];
	long ret;

	memset(cb, 0, sizeof(cb));
	for (__u32 i = 0; i < n; i++) {
		cb[i].aio_lio_opcode = IOCB_CMD_PREAD;
		cb[i].aio_fildes = fd;
		cb[i].aio_buf = (unsigned long)cb;
		cbp[i] = &cb[i];
	}
	ret = sys_io_submit(ctx, n, cbp);
	if (ret != (long)n)
		fail(ret < 0 ? ret : -11, "AIO context %lx: %u filler requests, %ld submitted",
		     (unsigned long)r->addr, n, ret);
}

/*
 * Native AIO contexts. The kernel writes each completion at its own
 * ctx->tail, which user space cannot set, and publishes it in the ring
 * header; readers (io_getevents, or libaio in user space) take events
 * from the header's head to its tail. A fresh context starts at 0, so:
 * complete `head` filler requests and consume them (io_getevents moves
 * head), complete `waiting` more and leave them, which puts the kernel's
 * tail where it was and holds exactly the slots the waiting events held
 * (the kernel gives slots back as head moves: refill_reqs_available);
 * then write the dumped events over the fillers. New requests complete
 * after them, in order.
 *
 * The mapping is left where io_setup put it until mremap moves it: the
 * kernel follows the move (aio_ring_mremap sets the context's ID to the
 * new address). Every ring's final place is held first (PROT_NONE), so
 * that no new ring lands where a later one must go. What is mapped: the
 * restored mappings, this region and the vDSO; a pipe is open meanwhile.
 */
static void restore_aio(void)
{
	struct restorer_aio *r = at(args->aio_off);
	struct io_event ev[AIO_BATCH];
	int pfd[2];
	long ret;

	if (!args->nr_aio)
		return;
	for (__u32 i = 0; i < args->nr_aio; i++) {
		ret = sys_mmap(r[i].addr, r[i].len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
			       -1, 0);
		if (rt_is_err(ret))
			fail(ret, "holding %lx for an AIO ring", (unsigned long)r[i].addr);
	}
	ret = sys_pipe2(pfd, 0);
	if (ret)
		fail(ret, "pipe2 for the AIO filler requests");
	for (__u32 i = 0; i < args->nr_aio; i++) {
		unsigned long ctx = 0, addr = r[i].addr;
		__u32 waiting = (r[i].tail + r[i].nr - r[i].head) % r[i].nr, n;

		ret = sys_io_setup((r[i].nr - 2) / 2, &ctx);
		if (ret)
			fail(ret, "io_setup for the AIO context at %lx (%u events)", addr, r[i].nr);
		if (((struct blob_aio_ring *)ctx)->nr != r[i].nr)
			fail(-22, "AIO context %lx: this kernel made a ring of %u events, the dump's has %u",
			     addr, ((struct blob_aio_ring *)ctx)->nr, r[i].nr);
		ret = sys_mremap(ctx, r[i].len, r[i].len, MREMAP_MAYMOVE | MREMAP_FIXED, addr);
		if ((unsigned long)ret != addr)
			fail(rt_is_err(ret) ? ret : -14, "moving the AIO ring %lx to %lx", ctx, addr);
		struct blob_aio_ring *h = (struct blob_aio_ring *)addr;
		struct io_event *slots = (struct io_event *)(h + 1);
		for (__u32 done = 0; done < r[i].head; done += n) {
			struct {
				long sec, nsec;
			} wait = { 1, 0 };
			n = r[i].head - done < AIO_BATCH ? r[i].head - done : AIO_BATCH;
			aio_dummies(&r[i], addr, pfd[0], n);
			ret = sys_io_getevents(addr, n, n, ev, &wait);
			if (ret != (long)n)
				fail(ret < 0 ? ret : -62, "AIO context %lx: %u filler completions, %ld read",
				     addr, n, ret);
		}
		for (__u32 done = 0; done < waiting; done += n) {
			n = waiting - done < AIO_BATCH ? waiting - done : AIO_BATCH;
			aio_dummies(&r[i], addr, pfd[0], n);
		}
		if (h->head != r[i].head || h->tail != r[i].tail)
			fail(-5, "AIO context %lx: ring at head %u tail %u, not %u %u", addr, h->head,
			     h->tail, r[i].head, r[i].tail);
		const struct io_event *saved = at(r[i].events_off);
		for (__u32 k = 0; k < waiting; k++)
			slots[(r[i].head + k) % r[i].nr] = saved[k];
		rt_debug("AIO context %lx: %u events waiting", addr, waiting);
	}
	sys_close(pfd[0]);
	sys_close(pfd[1]);
}

static void set_mm(void)
{
	long ret;

	args->mm.auxv = (unsigned long)args->auxv;
	ret = sys_prctl(PR_SET_MM, PR_SET_MM_MAP, (unsigned long)&args->mm, sizeof(args->mm), 0);
	if (ret)
		fail(ret, "PR_SET_MM_MAP (brk %lx, exe fd %d)", (unsigned long)args->mm.brk,
		     (int)args->mm.exe_fd);
}

static void set_signals(void)
{
	for (int sig = 1; sig <= 64; sig++) {
		if (!(args->sigaction_set & (1ULL << (sig - 1))))
			continue;
		long ret = sys_rt_sigaction(sig, &args->sigactions[sig - 1], NULL, 8);
		if (ret)
			fail(ret, "rt_sigaction(%d)", sig);
	}
}

static void set_rlimits(void)
{
	for (__u32 i = 0; i < args->nr_rlimits; i++) {
		long ret = sys_prlimit64(0, i, &args->rlimits[i], NULL);
		if (ret)
			fail(ret, "setting rlimit %u", i);
	}
}

/*
 * The very last step, after set_timers_and_pending closed the restorer's
 * fds (the log among them: a failure is reported through errmsg only):
 * the process's POSIX locks. They belong to the fd table, and the kernel
 * drops all of them on an inode when the process closes any fd of that
 * inode (filp_flush -> locks_remove_posix, fs/locks.c). Taken any earlier,
 * a lock on a file this restorer maps (from its own fd of it, closed at
 * the end) would be gone. The threads share the fd table, so the leader
 * takes them for all; no fd is closed from here to sigreturn.
 * Non-blocking: another process holding a conflicting lock by now fails
 * the restore.
 */
static void take_posix_locks(void)
{
	const struct restorer_lock *l = at(args->locks_off);

	for (__u32 i = 0; i < args->nr_locks; i++) {
		struct flock f = {
			.l_type = l[i].write ? F_WRLCK : F_RDLCK,
			.l_whence = 0,	/* SEEK_SET */
			.l_start = l[i].start,
			.l_len = l[i].len,
		};
		long ret = sys_fcntl(l[i].fd, F_SETLK, (unsigned long)&f);
		if (ret)
			fail(ret, "taking the POSIX %s lock of fd %d again (start 0x%lx, length 0x%lx)",
			     l[i].write ? "write" : "read", l[i].fd, (unsigned long)l[i].start,
			     (unsigned long)l[i].len);
	}
}

static void capset3(const struct __user_cap_data_struct *data)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	long ret = sys_capset(&hdr, data);

	if (ret)
		fail(ret, "capset");
}

static void split_caps(struct __user_cap_data_struct *d, __u64 eff, __u64 prm, __u64 inh)
{
	d[0].effective = eff;
	d[0].permitted = prm;
	d[0].inheritable = inh;
	d[1].effective = eff >> 32;
	d[1].permitted = prm >> 32;
	d[1].inheritable = inh >> 32;
}

/*
 * Credentials last among the privileged steps, in an order where each
 * step still has the capability it needs:
 * - SECBIT_NO_SETUID_FIXUP keeps the capability sets while the IDs change;
 * - the inheritable set goes in while permitted and effective are full and
 *   the bounding set is whole (capset limits inheritable by both);
 * - ambient caps are raised (each must be permitted and inheritable, and
 *   SECBIT_NO_CAP_AMBIENT_RAISE is not set yet);
 * - the bounding set is trimmed and the saved securebits set, both needing
 *   CAP_SETPCAP;
 * - a last capset drops to the saved permitted and effective sets (the
 *   kernel trims ambient to permitted & inheritable, as it was).
 */
static void set_creds(void)
{
	struct restorer_creds *c = &args->creds;
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2];
	long ret;

	ret = sys_prctl(PR_SET_SECUREBITS, SECBIT_NO_SETUID_FIXUP, 0, 0, 0);
	if (ret)
		fail(ret, "PR_SET_SECUREBITS");
	ret = sys_setgroups(c->nr_groups, at(c->groups_off));
	if (ret)
		fail(ret, "setgroups");
	ret = sys_setresgid(c->gid, c->egid, c->sgid);
	if (ret)
		fail(ret, "setresgid(%u, %u, %u)", c->gid, c->egid, c->sgid);
	sys_setfsgid(c->fsgid);
	ret = sys_setresuid(c->uid, c->euid, c->suid);
	if (ret)
		fail(ret, "setresuid(%u, %u, %u)", c->uid, c->euid, c->suid);
	sys_setfsuid(c->fsuid);
	ret = sys_capget(&hdr, data);
	if (ret)
		fail(ret, "capget");
	data[0].inheritable = c->cap_inh;
	data[1].inheritable = c->cap_inh >> 32;
	capset3(data);
	ret = sys_prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	if (ret)
		fail(ret, "clearing ambient caps");
	for (int cap = 0; cap < 64; cap++) {
		if (!(c->cap_amb & (1ULL << cap)))
			continue;
		ret = sys_prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0);
		if (ret)
			fail(ret, "raising ambient cap %d", cap);
	}
	for (int cap = 0; cap < 64; cap++) {
		if (c->cap_bnd & (1ULL << cap))
			continue;
		ret = sys_prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);
		if (ret && ret != -22)	/* EINVAL: beyond the last cap */
			fail(ret, "PR_CAPBSET_DROP %d", cap);
	}
	ret = sys_prctl(PR_SET_SECUREBITS, c->securebits, 0, 0, 0);
	if (ret)
		fail(ret, "PR_SET_SECUREBITS 0x%x", c->securebits);
	split_caps(data, c->cap_eff, c->cap_prm, c->cap_inh);
	capset3(data);
}

/* Signals are all blocked here; sigreturn installs the saved mask. */
static void queue_private(struct restorer_thread *th)
{
	long pid = sys_getpid();

	for (__u32 i = 0; i < th->nr_pending; i++) {
		const int *si = at(th->pending_off + 128 * i);
		long ret = sys_rt_tgsigqueueinfo(pid, th->tid, si[0], si);
		if (ret)
			fail(ret, "queueing signal %d to thread %u", si[0], th->tid);
	}
}

/* Until every other thread is done (or one failed: the engine sees it). */
static void wait_threads(void)
{
	struct restorer_thread *th = at(args->threads_off);

	for (__u32 k = 1; k < args->nr_threads; k++)
		while (__atomic_load_n(&th[k].status, __ATOMIC_ACQUIRE) == RESTORER_STATUS_RUNNING &&
		       __atomic_load_n(&args->status, __ATOMIC_ACQUIRE) >= 0)
			sys_sched_yield();
}

/*
 * What each thread sets for itself: these are per-task in the kernel
 * (credentials, name, timer slack, no_new_privs, TLS bases, rseq,
 * clear_child_tid, robust list, private signal queue), so the leader's
 * calls would not reach the other threads.
 */
static void set_thread_attrs(struct restorer_thread *th, int leader)
{
	long ret;

	set_creds();
	ret = sys_prctl(PR_SET_NAME, (unsigned long)th->comm, 0, 0, 0);
	if (ret)
		fail(ret, "PR_SET_NAME");
	ret = sys_prctl(PR_SET_TIMERSLACK, args->timer_slack_ns, 0, 0, 0);
	if (ret)
		fail(ret, "PR_SET_TIMERSLACK");
	/* After the credentials: changing them resets both. */
	if (leader) {
		/*
		 * Dumpable belongs to the mm, and a credential change by any
		 * thread resets it (commit_creds): set it once every other
		 * thread is past its own set_creds.
		 */
		wait_threads();
		/*
		 * Another thread failed: its error is the restore's, so stop
		 * here, status still running, instead of going on to close
		 * the log and mark the process done.
		 */
		while (__atomic_load_n(&args->err_tid, __ATOMIC_ACQUIRE)) {
			asm volatile("int3" ::: "memory");
			sys_exit_group(1);
		}
		ret = sys_prctl(PR_SET_PDEATHSIG, args->pdeathsig, 0, 0, 0);
		if (ret)
			fail(ret, "PR_SET_PDEATHSIG");
		ret = sys_prctl(PR_SET_DUMPABLE, args->dumpable, 0, 0, 0);
		if (ret)
			fail(ret, "PR_SET_DUMPABLE %d", args->dumpable);
		ret = sys_prctl(PR_SET_CHILD_SUBREAPER, args->child_subreaper, 0, 0, 0);
		if (ret)
			fail(ret, "PR_SET_CHILD_SUBREAPER");
	}
	if (args->no_new_privs) {
		ret = sys_prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
		if (ret)
			fail(ret, "PR_SET_NO_NEW_PRIVS");
	}
	ret = sys_arch_prctl(ARCH_SET_FS, th->fs_base);
	if (ret)
		fail(ret, "ARCH_SET_FS");
	ret = sys_arch_prctl(ARCH_SET_GS, th->gs_base);
	if (ret)
		fail(ret, "ARCH_SET_GS");
	/* The area lives in the restored memory, which is in place now. */
	if (th->rseq_ptr) {
		ret = sys_rseq((void *)th->rseq_ptr, th->rseq_len, 0, th->rseq_sig);
		if (ret)
			fail(ret, "registering rseq at %lx", (unsigned long)th->rseq_ptr);
	}
	sys_set_tid_address((void *)th->clear_tid);
	if (th->robust_list) {
		ret = sys_set_robust_list((void *)th->robust_list, th->robust_len);
		if (ret)
			fail(ret, "set_robust_list(%lx, %lu)", (unsigned long)th->robust_list,
			     (unsigned long)th->robust_len);
	}
	/* The leader's come after its timers are armed (set_timers_and_pending). */
	if (!leader)
		queue_private(th);
}

/* Every thread but the leader starts here, on its own stack. */
static void thread_main(void *arg)
{
	struct restorer_thread *th = arg;

	set_thread_attrs(th, 0);
	__atomic_store_n(&th->status, RESTORER_STATUS_DONE, __ATOMIC_RELEASE);
	restorer_sigreturn(th->sigframe, NULL);
}

/*
 * The other threads, with their TIDs: clone3's set_tid needs
 * CAP_CHECKPOINT_RESTORE, so this comes before any thread drops its
 * credentials. Each new thread inherits the leader's all-blocked mask.
 * The engine traces with PTRACE_O_TRACECLONE, so each one is traced
 * from its first instruction.
 */
static void create_threads(void)
{
	struct restorer_thread *th = at(args->threads_off);

	for (__u32 i = 1; i < args->nr_threads; i++) {
		int tid = th[i].tid;
		struct clone_args ca = {
			.flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD |
				 CLONE_SYSVSEM,
			.stack = th[i].stack_top - RESTORER_THREAD_STACK_SIZE,
			.stack_size = RESTORER_THREAD_STACK_SIZE,
			.set_tid = (unsigned long)&tid,
			.set_tid_size = 1,
		};
		long ret = restorer_clone_thread(&ca, sizeof(ca), thread_main, &th[i]);
		if (ret != tid)
			fail(ret < 0 ? ret : -17, "creating thread %d (clone3 gave %ld)", tid, ret);
	}
}

/*
 * What is pending for the leader and the process now is not the task's:
 * e.g. the SIGCHLD of a child recreated as a zombie while this task was
 * being built. Threads created here start with empty private queues.
 */
static void drain_pending(void)
{
	__u64 all = ~0ULL;
	struct {
		long sec, nsec;
	} zero = { 0, 0 };

	while (sys_rt_sigtimedwait(&all, NULL, &zero, 8) > 0)
		;
}

/* The kernel's struct sigevent (64 bytes) and struct itimerspec on x86_64. */
struct blob_sigevent {
	__u64 value;
	__s32 signo;
	__s32 notify;
	__s32 tid;
	__s32 __pad[11];
};

struct blob_itimerspec {
	__s64 interval_sec, interval_nsec;
	__s64 value_sec, value_nsec;
};

#define PR_TIMER_CREATE_RESTORE_IDS	77	/* Linux 6.15, uapi/linux/prctl.h */
#define PR_TIMER_CREATE_RESTORE_IDS_OFF	0
#define PR_TIMER_CREATE_RESTORE_IDS_ON	1
#define SIGEV_NONE_	1
#define SIGEV_THREAD_ID_	4
#define SI_TIMER_	(-2)
#define TIMER_ABSTIME_	1
#define NSEC	1000000000ULL

/*
 * With PR_TIMER_CREATE_RESTORE_IDS on, timer_create() takes the ID to use
 * from *timer_id instead of handing out the next one (EBUSY if taken).
 * Without it (before 6.15) the IDs cannot be chosen: a clear error.
 */
static void create_timers(void)
{
	struct restorer_timer *t = at(args->timers_off);
	long ret = sys_prctl(PR_TIMER_CREATE_RESTORE_IDS, PR_TIMER_CREATE_RESTORE_IDS_ON, 0, 0, 0);

	if (ret)
		fail(ret, "this kernel cannot create POSIX timers with given IDs "
			  "(PR_TIMER_CREATE_RESTORE_IDS, Linux 6.15+)");
	for (__u32 i = 0; i < args->nr_timers; i++) {
		struct blob_sigevent ev = {
			.value = t[i].sigval, .signo = t[i].signo, .notify = t[i].notify, .tid = t[i].tid,
		};
		int id = t[i].id;
		ret = sys_timer_create(t[i].clock, &ev, &id);
		if (ret || id != t[i].id)
			fail(ret ? ret : -17, "creating POSIX timer %d (clock %d, got ID %d)", t[i].id,
			     t[i].clock, id);
	}
	sys_prctl(PR_TIMER_CREATE_RESTORE_IDS, PR_TIMER_CREATE_RESTORE_IDS_OFF, 0, 0, 0);
}

static void to_ts(__u64 ns, __s64 *sec, __s64 *nsec)
{
	*sec = ns / NSEC;
	*nsec = ns % NSEC;
}

/* Clocks whose timers the kernel forwards by whole intervals from their expiry (hrtimers). */
static int hrtimer_clock(int clock)
{
	return clock == 0 || clock == 1 || clock == 7 || clock == 8 || clock == 9 || clock == 11;
}

/*
 * Arm timer t to expire first at absolute time `first` (in the past
 * here), so that the kernel queues its signal now; with `consume` take
 * it at once, which makes the kernel forward the timer by whole
 * intervals past now and count all but one of them as the overrun that
 * timer_getoverrun() then reports (posixtimer_deliver_signal: it_overrun
 * starts at -1 after timer_settime).
 */
static void arm_in_past(const struct restorer_timer *t, __s64 first, int consume)
{
	struct blob_itimerspec its;
	long ret;

	if (first < 1)	/* a young CPU clock: 0 would disarm */
		first = 1;
	to_ts(t->interval_ns, &its.interval_sec, &its.interval_nsec);
	its.value_sec = first / (__s64)NSEC;
	its.value_nsec = first % (__s64)NSEC;
	ret = sys_timer_settime(t->id, TIMER_ABSTIME_, &its, NULL);
	if (ret)
		fail(ret, "arming POSIX timer %d", t->id);
	if (!consume)
		return;
	/* The expiry is an hrtimer interrupt away; every signal is blocked here. */
	__u64 set = 1ULL << (t->signo - 1);
	struct {	/* siginfo_t: the union starts at 16 on 64-bit */
		int signo, errno_, code, __pad, timerid, overrun;
		int rest[26];
	} si = { 0 };
	struct {
		long sec, nsec;
	} wait = { 1, 0 };
	ret = sys_rt_sigtimedwait(&set, &si, &wait, 8);
	if (ret != (long)t->signo || si.code != SI_TIMER_ || si.timerid != t->id)
		fail(ret < 0 ? ret : -5, "POSIX timer %d: no expiry to restore its overrun %u "
		     "(signal %ld came from timer %d)", t->id, t->overrun, ret, si.timerid);
}

/* Nanoseconds on clock t->clock now. */
static __s64 timer_clock_now(const struct restorer_timer *t)
{
	struct {
		long sec, nsec;
	} now;
	long ret = sys_clock_gettime(t->clock, &now);

	if (ret)
		fail(ret, "reading clock %d of POSIX timer %d", t->clock, t->id);
	return now.sec * (__s64)NSEC + now.nsec;
}

/*
 * A periodic timer whose signal was delivered with an overrun, and is
 * not queued again, gets that overrun back by an expiry (overrun + 1)
 * intervals before its next one, taken here with rt_sigtimedwait(),
 * which is how the kernel computes it (on delivery). This comes first,
 * before any other timer is armed and before any dumped signal is queued
 * again: rt_sigtimedwait() takes the first queued signal of that number,
 * and a timer's signal is a preallocated sigqueue the kernel queues
 * whatever else of its number is queued (posixtimer_send_sigqueue), so
 * a timer whose signal was pending (armed in the past below, and a
 * process CPU clock timer fires inside timer_settime) or a re-queued
 * siginfo of the same number would be taken instead: the restore failed
 * and the other signal was lost. Only timers signalling the leader or
 * the process can do this (the leader dequeues); one due again within
 * microseconds of its own expiry here could still have its next signal
 * taken by a later one, which fails the restore rather than losing it.
 */
static void restore_overruns(__u32 leader_tid)
{
	struct restorer_timer *t = at(args->timers_off);

	for (__u32 i = 0; i < args->nr_timers; i++) {
		__s64 value = t[i].value_ns, interval = t[i].interval_ns;
		int signals = t[i].notify != SIGEV_NONE_ &&
			      (!(t[i].notify & SIGEV_THREAD_ID_) || t[i].tid == leader_tid);
		if (t[i].signal_pending || !t[i].overrun || !value || !interval || !signals ||
		    !hrtimer_clock(t[i].clock) ||
		    (__u64)t[i].overrun + 1 >= (1ULL << 62) / (__u64)interval)
			continue;
		__s64 now_ns = timer_clock_now(&t[i]);
		if (now_ns + value > (__s64)(t[i].overrun + 1) * interval)
			arm_in_past(&t[i], now_ns + value - (__s64)(t[i].overrun + 1) * interval, 1);
	}
}

/* The timer is armed (restore_overruns did it): it_value is non-zero. */
static int timer_armed(const struct restorer_timer *t)
{
	struct blob_itimerspec its;
	long ret = sys_timer_gettime(t->id, &its);

	if (ret)
		fail(ret, "reading POSIX timer %d", t->id);
	return its.value_sec || its.value_nsec;
}

/*
 * Every other timer starts over with the time it had left. A timer whose
 * signal was pending is made to expire "now + value - interval", which
 * is past, so its own signal is queued again (computing si_overrun on
 * delivery as it would have). A timer whose overrun restore_overruns()
 * could not give back says so.
 */
static void arm_timers(void)
{
	struct restorer_timer *t = at(args->timers_off);

	for (__u32 i = 0; i < args->nr_timers; i++) {
		struct blob_itimerspec its;
		__s64 value = t[i].value_ns, interval = t[i].interval_ns;
		if (t[i].signal_pending) {
			/* timer_settime() zeroes the overrun of the previous signal (6.18). */
			if (t[i].overrun)
				rt_info("POSIX timer %d: its overrun %u is not restored (its signal "
					"is queued again)", t[i].id, t[i].overrun);
			arm_in_past(&t[i], timer_clock_now(&t[i]) + value - interval, 0);
			continue;
		}
		if (t[i].overrun && value && interval && timer_armed(&t[i]))
			continue;
		if (t[i].overrun)
			rt_info("POSIX timer %d: its overrun %u is not restored", t[i].id, t[i].overrun);
		if (!value)
			continue;
		to_ts(t[i].interval_ns, &its.interval_sec, &its.interval_nsec);
		to_ts(t[i].value_ns, &its.value_sec, &its.value_nsec);
		long ret = sys_timer_settime(t[i].id, 0, &its, NULL);
		if (ret)
			fail(ret, "arming POSIX timer %d", t[i].id);
	}
}

/*
 * Last, so that no timer runs while the task is still being built (a
 * failure here still kills it): the POSIX timers' overruns, the leader's
 * and the process's pending signals, the other POSIX timers, then the
 * interval timers. The dumped siginfos go before the timers whose signal
 * was pending: rt_sigqueueinfo() drops a signal below SIGRTMIN that is
 * already pending (legacy_queue) while a timer's is queued regardless,
 * so in the other order a sigqueue()d SIGUSR1 queued next to a timer's
 * SIGUSR1 was lost. Every signal stays blocked until sigreturn.
 */
static void set_timers_and_pending(struct restorer_thread *leader)
{
	__s32 *fds = at(args->close_off);
	long pid = sys_getpid(), ret;

	if (args->nr_timers) {
		create_timers();
		restore_overruns(leader->tid);
	}
	queue_private(leader);
	for (__u32 i = 0; i < args->nr_shared_pending; i++) {
		const int *si = at(args->shared_pending_off + 128 * i);
		ret = sys_rt_sigqueueinfo(pid, si[0], si);
		if (ret)
			fail(ret, "queueing shared signal %d", si[0]);
	}
	if (args->nr_timers)
		arm_timers();
	for (__u32 i = 0; i < args->nr_close; i++)
		sys_close(fds[i]);
	for (int which = 0; which < 3; which++) {
		ret = sys_setitimer(which, &args->itimers[which], NULL);
		if (ret)
			fail(ret, "setitimer(%d)", which);
	}
}

/*
 * keep_frozen: the memory is in place; the rest waits for the engine,
 * which changes the task from outside (system calls it makes the task
 * run from a stop, /proc/PID/mem) and starts it again at the entry with
 * mm_kept. Nothing here runs again.
 */
static void __attribute__((noreturn)) stay_frozen(void)
{
	struct restorer_thread *leader = at(args->threads_off);

	rt_debug("memory in place; frozen until the engine resumes the task");
	/* Its own name while it waits (ps shows what is held), set for good later. */
	sys_prctl(PR_SET_NAME, (unsigned long)leader->comm, 0, 0, 0);
	/* Orphans of tasks a fixup ends go where they went on the dumped side. */
	sys_prctl(PR_SET_CHILD_SUBREAPER, args->child_subreaper, 0, 0, 0);
	/*
	 * The libc stage's PR_SET_PDEATHSIG (a dead parent takes a task being
	 * built along) would kill a frozen task whose parent a fixup ends;
	 * the engine's PTRACE_O_EXITKILL covers the engine's death.
	 */
	sys_prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0);
	__atomic_store_n(&leader->status, RESTORER_STATUS_FROZEN, __ATOMIC_RELEASE);
	__atomic_store_n(&args->status, RESTORER_STATUS_FROZEN, __ATOMIC_RELEASE);
	for (;;)
		asm volatile("int3" ::: "memory");
}

/*
 * mm_kept: the task's fds are those of its first restore (or its
 * parent's, for a task forked by a fixup); the final ones are the
 * engine's, taken with pidfd_getfd (same open file description, so
 * offsets and sharing are right) and put at their numbers. Everything
 * else is closed first; the engine's pidfd moves above every target.
 */
static void install_fds(void)
{
	struct restorer_getfd *g = at(args->getfds_off);
	long p, ret;

	p = sys_fcntl(args->engine_pidfd, 1030 /* F_DUPFD_CLOEXEC */, args->fd_top);
	if (p < 0)
		fail(p, "moving the engine's pidfd %d above %d", args->engine_pidfd, args->fd_top);
	if (p > 0)
		sys_close_range(0, p - 1, 0);
	sys_close_range(p + 1, ~0UL >> 32, 0);
	for (__u32 i = 0; i < args->nr_getfds; i++) {
		long fd = sys_pidfd_getfd(p, g[i].src, 0);
		if (fd < 0)
			fail(fd, "taking fd %d of the engine for %d", g[i].src, g[i].target);
		if (fd != g[i].target) {
			ret = sys_dup3(fd, g[i].target, g[i].cloexec ? 02000000 /* O_CLOEXEC */ : 0);
			sys_close(fd);
			if (ret < 0)
				fail(ret, "placing fd %d", g[i].target);
		} else if (!g[i].cloexec) {
			ret = sys_fcntl(fd, 2 /* F_SETFD */, 0);
			if (ret < 0)
				fail(ret, "clearing close-on-exec of fd %d", g[i].target);
		}
	}
	sys_close(p);
}

void restorer_main(struct restorer_args *a)
{
	args = a;
	/* A kept task's log fd is among those it takes first. */
	rt_log_init_fd(a->mm_kept ? -1 : a->log_fd, a->log_level, a->log_start_ns);
	if (a->magic != RESTORER_MAGIC || a->version != RESTORER_ABI_VERSION)
		fail(-22, "args magic/version mismatch");
	rt_debug("pid %ld: %u mappings, %u page runs", sys_getpid(), a->nr_vmas, a->nr_runs);

	if (a->mm_kept) {
		install_fds();
		rt_log_init_fd(a->log_fd, a->log_level, a->log_start_ns);
		rt_debug("pid %ld: memory kept, %u fds taken from the engine", sys_getpid(),
			 a->nr_getfds);
		finish_vmas();
	} else {
		unmap_engine();
		/* From here only this region, the vDSO and the fds in args exist. */
		place_vdso();
		move_premaps();
		map_vmas();
		rt_debug("mappings in place");
		read_pages();
		rt_debug("pages read");
		finish_vmas();
		if (a->keep_frozen)
			stay_frozen();
	}
	restore_aio();
	set_mm();
	set_signals();
	set_rlimits();
	create_threads();
	struct restorer_thread *leader = at(a->threads_off);
	drain_pending();
	set_thread_attrs(leader, 1);
	rt_debug("done, handing over to the engine for sigreturn");
	/* The log fd is among those closed next. */
	set_timers_and_pending(leader);
	take_posix_locks();
	leader->status = RESTORER_STATUS_DONE;
	a->status = RESTORER_STATUS_DONE;
	restorer_sigreturn(leader->sigframe,
			   a->sigaction_set & (1ULL << (5 - 1)) ? &a->sigactions[5 - 1] : NULL);
}
