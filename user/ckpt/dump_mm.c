// SPDX-License-Identifier: MIT
#define LOG_PREFIX "mm: "
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "pagemap.pb-c.h"

#include "ckpt.h"
#include "dump.h"
#include "image.h"
#include "kcompat.h"
#include "log.h"
#include "vdso.h"

#define XFER_BUF (1ul << 20)
#define SCAN_VEC 512

/* Streams page runs of one task into its pages file and pagemap image. */
struct page_writer {
	pid_t pid;
	int pages_fd;
	int mem_fd;		/* /proc/PID/mem, for mappings we cannot read directly */
	struct img *pagemap;
	uint8_t *buf;
	struct iovec riov[IOV_MAX];
	size_t nr_riov, buf_used;
	size_t cap, max_iov;	/* when to flush the queued ranges */
	uint64_t run_start, run_len;	/* pending pagemap entry */
	uint64_t ref_start, ref_len;	/* pending entry without data: PE_PARENT or PE_PREV */
	uint32_t ref_flags;
	struct dump_task *task;
	bool deferred;			/* record the runs in task->copy, read after the thaw */
	struct dirty_run *hot;		/* but for these (pw_hot_zones) */
	size_t nr_hot;
	const struct infect_task **rseq;	/* threads with an rseq area, by its address */
	size_t nr_rseq;
	int pagemap_fd;			/* /proc/PID/pagemap of the task */
	int parent_pagemap_fd;		/* and of its parent in the dump, or -1 */
	uint64_t total;
	uint64_t file_off;	/* end of what the pages file holds */
	/* splice mode: pages go task -> pipes (vmsplice) -> file (splice) */
	struct infect_task *it;
	int nr_pipes;
	int rfd[PARASITE_MAX_PIPES];		/* our copies of the read ends */
	int tfd[PARASITE_MAX_PIPES][2];		/* the task's fds */
};

/* Write the pending run [*start, +*len) as a pagemap entry with flags, if any. */
static int pw_flush_run(struct page_writer *pw, uint64_t start, uint64_t *len, uint32_t flags)
{
	PagemapEntry e = PAGEMAP_ENTRY__INIT;

	if (!*len)
		return 0;
	e.vaddr = start;
	e.nr_pages = *len / IMG_PAGE_SIZE;
	e.has_flags = true;
	e.flags = flags;
	*len = 0;
	return img_write(pw->pagemap, &e);
}

static int pw_flush_entry(struct page_writer *pw)
{
	return pw_flush_run(pw, pw->run_start, &pw->run_len, PE_PRESENT);
}

static int pw_flush_ref(struct page_writer *pw)
{
	return pw_flush_run(pw, pw->ref_start, &pw->ref_len, pw->ref_flags);
}

/*
 * Pages with no data here: still shared with the parent process
 * (PE_PARENT), or unchanged since the parent images (PE_PREV).
 */
static int pw_add_ref(struct page_writer *pw, uint64_t addr, uint64_t len, uint32_t flags)
{
	int err;

	if (flags == PE_PREV)
		pw->task->prev_pages += len / IMG_PAGE_SIZE;
	if (pw->ref_len && pw->ref_flags == flags && pw->ref_start + pw->ref_len == addr) {
		pw->ref_len += len;
		return 0;
	}
	err = pw_flush_entry(pw);
	if (!err)
		err = pw_flush_ref(pw);
	pw->ref_start = addr;
	pw->ref_len = len;
	pw->ref_flags = flags;
	return err;
}

/* After the thaw, copy [addr, +len) of the task's memory to file_off (dump_copy_deferred). */
static int pw_defer(struct page_writer *pw, uint64_t addr, uint64_t len, bool forced)
{
	struct dump_task *t = pw->task;
	struct dump_copy_run *last = t->nr_copy ? &t->copy[t->nr_copy - 1] : NULL;

	if (last && last->forced == forced && last->addr + last->len == addr &&
	    last->file_off + last->len == pw->file_off) {
		last->len += len;
	} else {
		if (t->nr_copy == t->cap_copy) {
			size_t cap = t->cap_copy ? 2 * t->cap_copy : 64;
			struct dump_copy_run *n = realloc(t->copy, cap * sizeof(*n));
			if (!n)
				return -ENOMEM;
			t->copy = n;
			t->cap_copy = cap;
		}
		t->copy[t->nr_copy++] = (struct dump_copy_run){ addr, len, pw->file_off, forced };
	}
	pw->file_off += len;
	pw->total += len;
	return 0;
}

/* Append bytes that did not come through pw_flush_data. */
static int pw_write(struct page_writer *pw, const void *buf, size_t len)
{
	while (len) {
		ssize_t n = pwrite(pw->pages_fd, buf, len, pw->file_off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		buf = (const char *)buf + n;
		len -= n;
		pw->file_off += n;
	}
	return 0;
}

/*
 * Splice mode: hand the queued ranges to the parasite, which vmsplices them
 * into the pipes (page references, no copy), then splice each pipe into
 * the pages file: one copy in all, as when writing from memory.
 */
static int pw_flush_splice(struct page_writer *pw)
{
	struct parasite_vmsplice *v = &pw->it->pargs->vmsplice;
	size_t fill[PARASITE_MAX_PIPES] = { 0 };
	int p = 0, err;

	v->nr = 0;
	for (size_t i = 0; i < pw->nr_riov; i++) {
		uint64_t addr = (uint64_t)pw->riov[i].iov_base, len = pw->riov[i].iov_len;
		while (len) {
			uint64_t room = PARASITE_PIPE_SIZE - fill[p], chunk = len < room ? len : room;
			if (!room) {
				p++;
				continue;
			}
			v->iov[v->nr++] = (struct parasite_iov){ addr, chunk, p };
			fill[p] += chunk;
			addr += chunk;
			len -= chunk;
		}
	}
	err = infect_parasite_call(pw->it, PARASITE_CMD_VMSPLICE);
	if (err)
		return err;
	for (int k = 0; k <= p && k < pw->nr_pipes; k++) {
		loff_t off = pw->file_off;
		while (fill[k]) {
			ssize_t n = splice(pw->rfd[k], NULL, pw->pages_fd, &off, fill[k], SPLICE_F_MOVE);
			if (n <= 0) {
				err = n < 0 ? -errno : -EIO;
				pr_errno(err, "cannot splice pages of %d into pages-%d.img", pw->pid, pw->pid);
				return err;
			}
			fill[k] -= n;
		}
		pw->file_off = off;
	}
	return 0;
}

/* Buffer mode: process_vm_readv into a small buffer, then write it out. */
static int pw_flush_copy(struct page_writer *pw)
{
	struct iovec l = { pw->buf, pw->buf_used };
	ssize_t n = process_vm_readv(pw->pid, &l, 1, pw->riov, pw->nr_riov, 0);
	int err;

	if (n != (ssize_t)pw->buf_used) {
		err = n < 0 ? -errno : -EFAULT;
		pr_errno(err, "cannot read %zu bytes of memory of %d near %p", pw->buf_used, pw->pid,
			 pw->riov[0].iov_base);
		return err;
	}
	err = pw_write(pw, pw->buf, pw->buf_used);
	if (err)
		pr_errno(err, "cannot write pages-%d.img", pw->pid);
	return err;
}

/* The queued ranges went to the file from base on: put the rseq areas back as they were. */
static int rseq_cmp(const void *a, const void *b)
{
	uint64_t x = (*(const struct infect_task *const *)a)->rseq_addr;
	uint64_t y = (*(const struct infect_task *const *)b)->rseq_addr;

	return (x > y) - (x < y);
}

/* pw->rseq: the task's threads that have an rseq area, sorted by it, for pw_patch_range(). */
static int pw_rseq_areas(struct page_writer *pw)
{
	const struct dump_task *t = pw->task;

	pw->rseq = malloc((t->nr_threads + 1) * sizeof(*pw->rseq));
	if (!pw->rseq)
		return -ENOMEM;
	for (size_t k = 0; k < t->nr_threads; k++)
		if (t->threads[k].it->rseq_len)
			pw->rseq[pw->nr_rseq++] = t->threads[k].it;
	qsort(pw->rseq, pw->nr_rseq, sizeof(*pw->rseq), rseq_cmp);
	return 0;
}

/* Task memory [s, e) went to the file at `at`: put the rseq areas in it back as they were. */
static int pw_patch_range(struct page_writer *pw, uint64_t s, uint64_t e, uint64_t at)
{
	size_t lo = 0, hi = pw->nr_rseq;

	/* The first area that ends after s (the areas are sorted and disjoint). */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (pw->rseq[mid]->rseq_addr + pw->rseq[mid]->rseq_len <= s)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t k = lo; k < pw->nr_rseq && pw->rseq[k]->rseq_addr < e; k++) {
		const struct infect_task *r = pw->rseq[k];
		uint64_t rs = r->rseq_addr > s ? r->rseq_addr : s;
		uint64_t re = r->rseq_addr + r->rseq_len < e ? r->rseq_addr + r->rseq_len : e;
		if (rs >= re)
			continue;
		if (pwrite(pw->pages_fd, r->rseq + (rs - r->rseq_addr), re - rs, at + (rs - s)) !=
		    (ssize_t)(re - rs))
			return errno ? -errno : -EIO;
	}
	return 0;
}

static int pw_patch_rseq(struct page_writer *pw, uint64_t base)
{
	uint64_t at = base;

	for (size_t i = 0; i < pw->nr_riov && pw->nr_rseq; i++) {
		uint64_t s = (uint64_t)pw->riov[i].iov_base, e = s + pw->riov[i].iov_len;
		int err = pw_patch_range(pw, s, e, at);
		if (err)
			return err;
		at += e - s;
	}
	return 0;
}

/*
 * A round that copies after the thaw still copies frozen what a thread
 * writes first when it runs again, even idle (back from an interrupted
 * system call): around its stack pointer and its thread pointer (errno,
 * the rseq area). The pre-copy image of an idle tree is then exact, and
 * the check after the copy (copy_changed) says so.
 */
#define HOT_BELOW_SP	(64ull << 10)
#define HOT_ABOVE_SP	(16ull << 10)
#define HOT_AROUND_TP	(16ull << 10)

static int pw_hot_zones(struct page_writer *pw)
{
	const struct dump_task *t = pw->task;
	struct dirty_run *z = malloc(2 * (t->nr_threads + 1) * sizeof(*z));
	size_t n = 0;

	if (!z)
		return -ENOMEM;
	for (size_t k = 0; k < t->nr_threads; k++) {
		const struct user_regs_struct *r = &t->threads[k].it->regs;
		uint64_t sp = r->rsp & ~(IMG_PAGE_SIZE - 1), tp = r->fs_base & ~(IMG_PAGE_SIZE - 1);
		z[n++] = (struct dirty_run){ sp > HOT_BELOW_SP ? sp - HOT_BELOW_SP : 0, sp + HOT_ABOVE_SP };
		if (tp)
			z[n++] = (struct dirty_run){ tp > HOT_AROUND_TP ? tp - HOT_AROUND_TP : 0,
						     tp + HOT_AROUND_TP };
	}
	pw->hot = z;
	pw->nr_hot = runs_normalize(z, n);
	return 0;
}

/* Copy [addr, +len) of the frozen task now (deferred mode): hot memory. */
static int pw_copy_now(struct page_writer *pw, uint64_t addr, uint64_t len)
{
	struct iovec l = { pw->buf, len }, r = { (void *)addr, len };
	uint64_t at = pw->file_off;
	int err;

	if (process_vm_readv(pw->pid, &l, 1, &r, 1, 0) != (ssize_t)len) {
		err = errno ? -errno : -EFAULT;
		pr_errno(err, "cannot read memory of %d at %#llx", pw->pid, (unsigned long long)addr);
		return err;
	}
	err = pw_write(pw, pw->buf, len);
	if (!err)
		err = pw_patch_range(pw, addr, addr + len, at);
	if (err)
		pr_errno(err, "cannot write pages-%d.img", pw->pid);
	pw->total += len;
	return err;
}

/* Deferred mode: [addr, +len) is copied after the thaw, but for its hot parts. */
static int pw_defer_cold(struct page_writer *pw, uint64_t addr, uint64_t len)
{
	uint64_t e = addr + len;
	int err = 0;

	for (size_t i = 0; i < pw->nr_hot && addr < e && !err; i++) {
		uint64_t hs = pw->hot[i].start > addr ? pw->hot[i].start : addr;
		uint64_t he = pw->hot[i].end < e ? pw->hot[i].end : e;
		if (hs >= he)
			continue;
		if (hs > addr)
			err = pw_defer(pw, addr, hs - addr, false);
		if (!err)
			err = pw_copy_now(pw, hs, he - hs);
		addr = he;
	}
	if (!err && addr < e)
		err = pw_defer(pw, addr, e - addr, false);
	return err;
}

static int pw_flush_data(struct page_writer *pw)
{
	uint64_t base = pw->file_off;
	int err;

	if (!pw->buf_used)
		return 0;
	if (pw->deferred) {
		/* The buffer is free: the queued ranges only stood for what to copy. */
		for (size_t i = 0; i < pw->nr_riov; i++) {
			err = pw_defer_cold(pw, (uint64_t)pw->riov[i].iov_base, pw->riov[i].iov_len);
			if (err)
				return err;
		}
		pw->nr_riov = 0;
		pw->buf_used = 0;
		return 0;
	}
	err = pw->nr_pipes ? pw_flush_splice(pw) : pw_flush_copy(pw);
	if (!err)
		err = pw_patch_rseq(pw, base);
	if (err)
		return err;
	pw->total += pw->buf_used;
	if ((pw->total & ((64ul << 20) - 1)) < pw->buf_used)
		log_progress("dumping %d: %llu MiB", pw->pid, (unsigned long long)(pw->total >> 20));
	pw->nr_riov = 0;
	pw->buf_used = 0;
	return 0;
}

/* Queue [addr, addr + len) of the task's memory. */
static int pw_add(struct page_writer *pw, uint64_t addr, uint64_t len)
{
	int err;

	pw->task->data_pages += len / IMG_PAGE_SIZE;
	if (pw->run_len && pw->run_start + pw->run_len == addr) {
		pw->run_len += len;
	} else {
		err = pw_flush_entry(pw);
		if (!err)
			err = pw_flush_ref(pw);
		if (err)
			return err;
		pw->run_start = addr;
		pw->run_len = len;
	}
	while (len) {
		uint64_t chunk = pw->cap - pw->buf_used;
		if (chunk > len)
			chunk = len;
		pw->riov[pw->nr_riov].iov_base = (void *)addr;
		pw->riov[pw->nr_riov].iov_len = chunk;
		pw->nr_riov++;
		pw->buf_used += chunk;
		addr += chunk;
		len -= chunk;
		if (pw->buf_used == pw->cap || pw->nr_riov == pw->max_iov) {
			err = pw_flush_data(pw);
			if (err)
				return err;
		}
	}
	return 0;
}

/* Pages of a mapping the task cannot read itself (PROT_NONE): via /proc/PID/mem. */
static int pw_add_forced(struct page_writer *pw, uint64_t addr, uint64_t len)
{
	int err = pw_flush_data(pw);

	if (err)
		return err;
	err = pw_add(pw, addr, 0);
	if (err)
		return err;
	pw->run_len += len;
	pw->task->data_pages += len / IMG_PAGE_SIZE;
	if (pw->deferred)
		return pw_defer(pw, addr, len, true);
	while (len) {
		uint64_t chunk = len < XFER_BUF ? len : XFER_BUF;
		ssize_t n = pread(pw->mem_fd, pw->buf, chunk, addr);
		if (n != (ssize_t)chunk) {
			err = n < 0 ? -errno : -EFAULT;
			pr_errno(err, "cannot read memory of %d at %#llx", pw->pid, (unsigned long long)addr);
			return err;
		}
		err = pw_write(pw, pw->buf, chunk);
		if (err) {
			pr_errno(err, "cannot write pages-%d.img", pw->pid);
			return err;
		}
		pw->total += chunk;
		addr += chunk;
		len -= chunk;
	}
	return 0;
}

/*
 * Which pages of a private mapping hold data of the task's own: present or
 * swapped, not the shared zero page, and for file mappings not the file's
 * page-cache page (those come back from the file).
 */
#define PM_PFN_MASK ((1ull << 55) - 1)
#define PM_PRESENT (1ull << 63)
#define COW_BATCH 4096

/*
 * Split [start, end) into pages the task still shares with its parent
 * (the same page frame mapped at the same address in both: a fork's
 * copy-on-write that neither side has broken) and pages of its own.
 * Reading page frame numbers from /proc/PID/pagemap needs CAP_SYS_ADMIN.
 */
static int pw_add_cow(struct page_writer *pw, uint64_t start, uint64_t end, bool *ret_shared)
{
	uint64_t own[COW_BATCH], par[COW_BATCH];
	int err = 0;

	while (start < end && !err) {
		size_t n = (end - start) / IMG_PAGE_SIZE;
		if (n > COW_BATCH)
			n = COW_BATCH;
		off_t off = start / IMG_PAGE_SIZE * sizeof(uint64_t);
		if (pread(pw->pagemap_fd, own, n * 8, off) != (ssize_t)(n * 8) ||
		    pread(pw->parent_pagemap_fd, par, n * 8, off) != (ssize_t)(n * 8)) {
			err = -errno ? -errno : -EIO;
			pr_perror("cannot read the page frames of %d at %#llx", pw->pid,
				  (unsigned long long)start);
			return err;
		}
		for (size_t i = 0; i < n && !err;) {
			bool shared = (own[i] & PM_PRESENT) && (par[i] & PM_PRESENT) &&
				      (own[i] & PM_PFN_MASK) && (own[i] & PM_PFN_MASK) == (par[i] & PM_PFN_MASK);
			size_t k = i + 1;
			while (k < n) {
				bool s2 = (own[k] & PM_PRESENT) && (par[k] & PM_PRESENT) &&
					  (own[k] & PM_PFN_MASK) &&
					  (own[k] & PM_PFN_MASK) == (par[k] & PM_PFN_MASK);
				if (s2 != shared)
					break;
				k++;
			}
			uint64_t a = start + i * IMG_PAGE_SIZE, len = (k - i) * IMG_PAGE_SIZE;
			err = shared ? pw_add_ref(pw, a, len, PE_PARENT) : pw_add(pw, a, len);
			*ret_shared |= shared;
			i = k;
		}
		start += n * IMG_PAGE_SIZE;
	}
	return err;
}

/* One run of pages with data of the task's own (or shared copy-on-write with its parent). */
static int pw_add_range(struct page_writer *pw, uint64_t start, uint64_t end, bool readable, bool cow,
			bool *ret_shared)
{
	return !readable ? pw_add_forced(pw, start, end - start)
	       : cow	 ? pw_add_cow(pw, start, end, ret_shared)
			 : pw_add(pw, start, end - start);
}

/*
 * PAGEMAP_SCAN reports a PTE marker as SWAPPED: the uffd-wp marker that
 * write tracking leaves in a hole (WP_UNPOPULATED), a guard region. Such a
 * page has no data; /proc/PID/pagemap shows it as swap type 31
 * (SWP_PTE_MARKER, the last type, after the device, migration and
 * hwpoison ones), which no swap file gets.
 */
#define PM_SWAP (1ull << 62)
#define PM_SWAP_TYPE(e) ((e) & 0x1f)
#define SWP_PTE_MARKER 31

static bool pm_marker(uint64_t e)
{
	return (e & PM_SWAP) && !(e & PM_PRESENT) && PM_SWAP_TYPE(e) == SWP_PTE_MARKER;
}

static int pw_add_swapped(struct page_writer *pw, uint64_t start, uint64_t end, bool readable,
			  bool cow, bool *ret_shared)
{
	uint64_t pm[COW_BATCH];
	int err = 0;

	while (start < end && !err) {
		size_t n = (end - start) / IMG_PAGE_SIZE;
		if (n > COW_BATCH)
			n = COW_BATCH;
		if (pread(pw->pagemap_fd, pm, n * 8, start / IMG_PAGE_SIZE * 8) != (ssize_t)(n * 8)) {
			err = errno ? -errno : -EIO;
			pr_perror("cannot read the pagemap of %d at %#llx", pw->pid, (unsigned long long)start);
			return err;
		}
		for (size_t i = 0; i < n && !err;) {
			size_t k = i + 1;
			while (k < n && pm_marker(pm[k]) == pm_marker(pm[i]))
				k++;
			if (!pm_marker(pm[i]))
				err = pw_add_range(pw, start + i * IMG_PAGE_SIZE, start + k * IMG_PAGE_SIZE,
						   readable, cow, ret_shared);
			i = k;
		}
		start += n * IMG_PAGE_SIZE;
	}
	return err;
}

/*
 * One walk over a private mapping v: the pages with data of the task's
 * own, merged in address order with ok[0..nok) (sorted, disjoint: a
 * delta's pages the parent images hold as they are), which become PE_PREV
 * entries whatever the walk says of them; the walk's pages outside them
 * are data.
 */
struct vma_walk {
	struct page_writer *pw;
	const struct proc_vma *v;
	const struct dirty_run *ok;
	size_t nok, i;
	uint64_t pos, end;	/* everything below pos is emitted; the walk stops at end */
	bool readable, cow, *ret_shared;
};

static int walk_prev_upto(struct vma_walk *w, uint64_t addr)
{
	while (w->i < w->nok && w->ok[w->i].start <= addr) {
		uint64_t s = w->ok[w->i].start, e = w->ok[w->i].end;
		if (s < w->pos)
			s = w->pos;
		if (e > w->end)
			e = w->end;
		if (s < e) {
			int err = pw_add_ref(w->pw, s, e - s, PE_PREV);
			if (err)
				return err;
			w->pos = e;
		}
		w->i++;
	}
	return 0;
}

static int walk_region(struct vma_walk *w, uint64_t rs, uint64_t re, uint64_t categories)
{
	while (rs < re) {
		int err = walk_prev_upto(w, rs);
		if (err)
			return err;
		if (rs < w->pos)
			rs = w->pos;
		if (rs >= re)
			break;
		uint64_t next = w->i < w->nok && w->ok[w->i].start < re ? w->ok[w->i].start : re;
		err = categories & PAGE_IS_PRESENT
			      ? pw_add_range(w->pw, rs, next, w->readable, w->cow, w->ret_shared)
			      : pw_add_swapped(w->pw, rs, next, w->readable, w->cow, w->ret_shared);
		if (err)
			return err;
		w->pos = rs = next;
	}
	return 0;
}

static int dump_private_pages(struct page_writer *pw, const struct proc_vma *v, uint64_t start,
			      uint64_t end, bool file, bool cow, bool *ret_shared,
			      const struct dirty_run *ok, size_t nok)
{
	struct page_region vec[SCAN_VEC];
	struct pm_scan_arg arg = {
		.size = sizeof(arg),
		.start = start,
		.end = end,
		.vec = (uint64_t)vec,
		.vec_len = SCAN_VEC,
		.category_inverted = PAGE_IS_PFNZERO | (file ? PAGE_IS_FILE : 0),
		.category_mask = PAGE_IS_PFNZERO | (file ? PAGE_IS_FILE : 0),
		.category_anyof_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
		.return_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
	};
	struct vma_walk w = { .pw = pw, .v = v, .ok = ok, .nok = nok, .pos = start, .end = end,
			      .readable = v->prot & PROT_READ, .cow = cow, .ret_shared = ret_shared };
	int err = 0;

	while (arg.start < end && !err) {
		int n = ioctl(pw->pagemap_fd, PAGEMAP_SCAN, &arg);
		if (n < 0) {
			err = -errno;
			if (errno == ENOTTY)
				pr_err("this kernel has no PAGEMAP_SCAN (Linux 6.7+); see 'ckpt check'");
			else
				pr_perror("PAGEMAP_SCAN of %d at %#llx failed", pw->pid,
					  (unsigned long long)arg.start);
			return err;
		}
		for (int k = 0; k < n && !err; k++)
			err = walk_region(&w, vec[k].start, vec[k].end, vec[k].categories);
		if (arg.walk_end <= arg.start)
			break;
		arg.start = arg.walk_end;
	}
	return err ? err : walk_prev_upto(&w, end - 1);
}

/*
 * Shared anonymous memory: its pages live in a shmem file whether or not
 * this task has them mapped right now, so read the file's data extents.
 */
static int dump_shmem_pages(struct page_writer *pw, const struct proc_vma *v)
{
	char path[96];
	uint64_t len = v->end - v->start;
	off_t pos = v->pgoff, end = v->pgoff + len;
	int fd, err = 0;

	snprintf(path, sizeof(path), "/proc/%d/map_files/%llx-%llx", pw->pid,
		 (unsigned long long)v->start, (unsigned long long)v->end);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		pr_perror("cannot open shared memory of %d at %#llx", pw->pid, (unsigned long long)v->start);
		return err;
	}
	err = pw_flush_data(pw);
	while (!err && pos < end) {
		off_t data = lseek(fd, pos, SEEK_DATA);
		if (data < 0 || data >= end)
			break;
		off_t hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0 || hole > end)
			hole = end;
		uint64_t addr = v->start + (data - v->pgoff);
		err = pw_add(pw, addr, 0);
		if (err)
			break;
		pw->run_len += hole - data;
		pw->task->data_pages += (hole - data) / IMG_PAGE_SIZE;
		for (off_t o = data; o < hole && !err;) {
			size_t chunk = hole - o < (off_t)XFER_BUF ? (size_t)(hole - o) : XFER_BUF;
			ssize_t n = pread(fd, pw->buf, chunk, o);
			if (n != (ssize_t)chunk) {
				err = n < 0 ? -errno : -EIO;
				pr_errno(err, "cannot read shared memory of %d", pw->pid);
				break;
			}
			err = pw_write(pw, pw->buf, chunk);
			if (err)
				pr_errno(err, "cannot write pages-%d.img", pw->pid);
			pw->total += chunk;
			o += chunk;
		}
		pos = hole;
	}
	close(fd);
	return err;
}

static int file_id(MmEntry *mm, const struct stat *st, const char *path)
{
	for (size_t i = 0; i < mm->n_files; i++)
		if (mm->files[i]->dev == st->st_dev && mm->files[i]->ino == st->st_ino)
			return i;
	MapFileEntry **nf = realloc(mm->files, (mm->n_files + 1) * sizeof(*nf));
	if (!nf)
		return -ENOMEM;
	mm->files = nf;
	MapFileEntry *f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	map_file_entry__init(f);
	f->id = mm->n_files;
	f->path = strdup(path);
	f->dev = st->st_dev;
	f->ino = st->st_ino;
	f->size = st->st_size;
	f->mode = st->st_mode;
	f->has_mtime_ns = true;
	f->mtime_ns = st->st_mtim.tv_sec * 1000000000ull + st->st_mtim.tv_nsec;
	mm->files[mm->n_files++] = f;
	return f->id;
}

static const char *unsupported_mapping(const struct proc_vma *v)
{
	const char *p = v->path;

	if (!strcmp(p, "[vdso]") || !strcmp(p, "[vvar]") || !strcmp(p, "[vvar_vclock]"))
		return NULL;
	/*
	 * Write-protect tracking alone (uw) is trackd's: the process holds no
	 * userfaultfd (an fd of that kind is refused with the files), and in
	 * async mode the kernel resolves every fault by itself, so the memory
	 * reads like any other and is restored untracked.
	 */
	if (v->vmflags & PROC_VMF_UFFD)
		return "it is registered with userfaultfd";
	if (!strcmp(p, "anon_inode:[io_uring]"))
		return "it is an io_uring ring (io_uring is not supported yet)";
	if (!strncmp(p, "/SYSV", 5))
		return "it is System V shared memory (not supported yet)";
	if (!strncmp(p, "/memfd:", 7) && !v->shared)
		return "it is a private mapping of a memfd (not supported yet)";
	if (!strcmp(p, "/dev/zero (deleted)") && !v->shared)
		return "it is a private mapping of shared anonymous memory";
	if (p[0] == '[' && strcmp(p, "[heap]") && strcmp(p, "[stack]") && strncmp(p, "[anon:", 6) &&
	    strncmp(p, "[anon_shmem:", 12))
		return "it is a special mapping ckpt does not know";
	if ((v->vmflags & (PROC_VMF_PFNMAP | PROC_VMF_IO)))
		return "it maps device memory";
	if (p[0] && p[0] != '/' && p[0] != '[')
		return "its backing is unknown";
	return NULL;
}

/*
 * A mapping of a deleted file (st_nlink 0): its contents are saved as a
 * ghost file, shared with any fd on the same inode. ret_path gets the name
 * the file had. Returns the ghost id or -errno (logged).
 */
static int mapped_ghost(struct dump_ctx *ctx, pid_t pid, const struct proc_vma *v,
			const struct stat *st, char *ret_path, size_t len)
{
	char proc[96], what[96];

	snprintf(what, sizeof(what), "the mapping at %#llx of %d", (unsigned long long)v->start, pid);
	if (!S_ISREG(st->st_mode) || st->st_nlink) {
		pr_err("%s: '%s' is %s; not supported yet", what, v->path,
		       st->st_nlink ? "deleted but still linked elsewhere" : "not a regular file");
		return -EOPNOTSUPP;
	}
	snprintf(ret_path, len, "%.*s", (int)(strlen(v->path) - 10), v->path);
	snprintf(proc, sizeof(proc), "/proc/%d/map_files/%llx-%llx", pid,
		 (unsigned long long)v->start, (unsigned long long)v->end);
	return dump_files_ghost(ctx, proc, what, ret_path, st);
}

static void free_mm(MmEntry *mm)
{
	for (size_t i = 0; i < mm->n_vmas; i++) {
		free(mm->vmas[i]->name);
		free(mm->vmas[i]->memfd);
		free(mm->vmas[i]);
	}
	free(mm->vmas);
	for (size_t i = 0; i < mm->n_files; i++) {
		free(mm->files[i]->path);
		free(mm->files[i]);
	}
	free(mm->files);
	free(mm->auxv);
	free(mm->vdso_image.data);
	dump_aio_free(mm);
}

static int collect_file(pid_t pid, const struct proc_vma *v, struct stat *st)
{
	char path[96];

	snprintf(path, sizeof(path), "/proc/%d/map_files/%llx-%llx", pid, (unsigned long long)v->start,
		 (unsigned long long)v->end);
	if (stat(path, st) < 0) {
		int err = -errno;
		pr_perror("cannot stat the file mapped by %d at %#llx ('%s')", pid,
			  (unsigned long long)v->start, v->path);
		return err;
	}
	return 0;
}

/* Keep the vDSO's bytes: a restoring kernel with other vDSO code needs them. */
static int read_vdso(pid_t pid, const struct proc_vma *v, MmEntry *mm)
{
	size_t len = v->end - v->start;

	if (len > VDSO_MAX_SIZE || mm->has_vdso_image) {
		pr_err("the [vdso] of %d (%zu bytes at %#llx) is not one ckpt knows", pid, len,
		       (unsigned long long)v->start);
		return -EOPNOTSUPP;
	}
	mm->vdso_image.data = malloc(len);
	if (!mm->vdso_image.data)
		return -ENOMEM;
	struct iovec l = { mm->vdso_image.data, len }, r = { (void *)v->start, len };
	if (process_vm_readv(pid, &l, 1, &r, 1, 0) != (ssize_t)len) {
		int err = -errno;
		pr_perror("cannot read the [vdso] of %d", pid);
		free(mm->vdso_image.data);
		mm->vdso_image.data = NULL;
		return err;
	}
	mm->vdso_image.len = len;
	mm->has_vdso_image = true;
	return 0;
}

/*
 * Shared anonymous memory and memfds: one object per inode across the
 * dump, which restore creates once and every mapping maps. Its pages are
 * dumped by the first task that maps a given range of it.
 */
static int shm_vma(struct dump_ctx *ctx, struct dump_task *task, const struct proc_vma *v,
		   VmaEntry *e)
{
	struct stat st;
	int err = collect_file(task->pid, v, &st);

	if (err)
		return err;
	e->kind = VMA_KIND_SHARED_ANON;
	e->flags |= MAP_SHARED | MAP_ANONYMOUS;
	e->has_shmid = true;
	e->shmid = v->ino;
	e->pgoff = v->pgoff;
	e->has_shm_size = true;
	e->shm_size = st.st_size;
	if (!strncmp(v->path, "/memfd:", 7)) {
		const char *name = v->path + 7;
		size_t len = strlen(name);
		if (len >= 10 && !strcmp(name + len - 10, " (deleted)"))
			len -= 10;
		e->memfd = strndup(name, len);
		if (!e->memfd)
			return -ENOMEM;
	}
	for (size_t i = 0; i < ctx->nr_shm_dumped; i++) {
		struct dump_shm_range *r = &ctx->shm_dumped[i];
		if (r->shmid == v->ino && r->pgoff == v->pgoff && r->len == v->end - v->start) {
			e->has_shm_pages_elsewhere = true;
			e->shm_pages_elsewhere = true;
			return 0;
		}
	}
	struct dump_shm_range *n = realloc(ctx->shm_dumped, (ctx->nr_shm_dumped + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	ctx->shm_dumped = n;
	n[ctx->nr_shm_dumped++] = (struct dump_shm_range){ v->ino, v->pgoff, v->end - v->start };
	return 0;
}

static int build_mm(struct dump_ctx *ctx, struct dump_task *task, MmEntry *mm)
{
	struct proc_stat *s = &task->stat;
	uint64_t auxv[128];
	char exe[PATH_MAX];
	struct stat st;
	int err;

	mm->start_code = s->start_code;
	mm->end_code = s->end_code;
	mm->start_data = s->start_data;
	mm->end_data = s->end_data;
	mm->start_brk = s->start_brk;
	mm->brk = task->pstate.brk;
	mm->start_stack = s->start_stack;
	mm->arg_start = s->arg_start;
	mm->arg_end = s->arg_end;
	mm->env_start = s->env_start;
	mm->env_end = s->env_end;

	ssize_t n = proc_read_file(task->pid, "auxv", (char *)auxv, sizeof(auxv));
	if (n < 0) {
		pr_errno(n, "cannot read the auxv of %d", task->pid);
		return n;
	}
	mm->n_auxv = (n / 16) * 2;
	mm->auxv = malloc(sizeof(uint64_t) * (mm->n_auxv ? mm->n_auxv : 1));
	if (!mm->auxv)
		return -ENOMEM;
	memcpy(mm->auxv, auxv, mm->n_auxv * sizeof(uint64_t));

	err = proc_readlink(task->pid, "exe", exe, sizeof(exe));
	if (!err) {
		char p[64];
		snprintf(p, sizeof(p), "/proc/%d/exe", task->pid);
		if (stat(p, &st) < 0)
			err = -errno;
	}
	if (err) {
		pr_errno(err, "cannot read the executable of %d", task->pid);
		return err;
	}
	if (strstr(exe, " (deleted)")) {
		pr_err("the executable of %d, '%s', is deleted; not supported yet", task->pid, exe);
		return -ENOENT;
	}
	err = file_id(mm, &st, exe);
	if (err < 0)
		return err;
	mm->has_exe_file_id = true;
	mm->exe_file_id = err;

	mm->vmas = calloc(task->nr_vmas, sizeof(*mm->vmas));
	if (!mm->vmas)
		return -ENOMEM;
	for (size_t i = 0; i < task->nr_vmas; i++) {
		const struct proc_vma *v = &task->vmas[i];
		const char *why;
		VmaEntry *e;

		if (!strcmp(v->path, "[vsyscall]"))
			continue;
		/* The kernel's, recreated with io_setup: no vma of the image. */
		if (dump_aio_is_ring(v) && !(v->vmflags & PROC_VMF_UFFD)) {
			err = dump_aio_add(mm, v);
			if (err)
				return err;
			continue;
		}
		why = unsupported_mapping(v);
		if (why) {
			pr_err("cannot dump the mapping %#llx-%#llx '%s' of %d: %s",
			       (unsigned long long)v->start, (unsigned long long)v->end, v->path,
			       task->pid, why);
			return -EOPNOTSUPP;
		}
		e = malloc(sizeof(*e));
		if (!e)
			return -ENOMEM;
		vma_entry__init(e);
		mm->vmas[mm->n_vmas++] = e;
		e->start = v->start;
		e->end = v->end;
		e->prot = v->prot;
		e->has_madv = true;
		e->madv = (v->vmflags & PROC_VMF_HUGEPAGE ? VMA_MADV_HUGEPAGE : 0) |
			  (v->vmflags & PROC_VMF_NOHUGEPAGE ? VMA_MADV_NOHUGEPAGE : 0) |
			  (v->vmflags & PROC_VMF_DONTDUMP ? VMA_MADV_DONTDUMP : 0) |
			  (v->vmflags & PROC_VMF_DONTCOPY ? VMA_MADV_DONTFORK : 0) |
			  (v->vmflags & PROC_VMF_WIPEONFORK ? VMA_MADV_WIPEONFORK : 0);
		e->flags = (v->vmflags & PROC_VMF_GROWSDOWN ? MAP_GROWSDOWN : 0) |
			   (v->vmflags & PROC_VMF_NORESERVE ? MAP_NORESERVE : 0) |
			   (v->vmflags & PROC_VMF_LOCKED ? MAP_LOCKED : 0);
		if (!strcmp(v->path, "[vdso]")) {
			e->kind = VMA_KIND_VDSO;
			e->flags |= MAP_PRIVATE;
			err = read_vdso(task->pid, v, mm);
			if (err)
				return err;
		} else if (!strcmp(v->path, "[vvar]") || !strcmp(v->path, "[vvar_vclock]")) {
			e->kind = VMA_KIND_VVAR;
			e->flags |= MAP_PRIVATE;
		} else if (v->path[0] == '/' && v->shared &&
			   (!strcmp(v->path, "/dev/zero (deleted)") || !strncmp(v->path, "/memfd:", 7))) {
			err = shm_vma(ctx, task, v, e);
			if (err)
				return err;
		} else if (v->path[0] == '/') {
			size_t plen = strlen(v->path);
			char old_path[PATH_MAX];
			const char *path = v->path;
			int ghost = -1;
			err = collect_file(task->pid, v, &st);
			if (err)
				return err;
			if (st.st_ino != v->ino) {
				pr_err("the file mapped by %d at %#llx changed under the dump", task->pid,
				       (unsigned long long)v->start);
				return -ESTALE;
			}
			if (plen > 10 && !strcmp(v->path + plen - 10, " (deleted)")) {
				ghost = mapped_ghost(ctx, task->pid, v, &st, old_path, sizeof(old_path));
				if (ghost < 0)
					return ghost;
				path = old_path;
			}
			err = file_id(mm, &st, path);
			if (err < 0)
				return err;
			if (ghost >= 0) {
				mm->files[err]->has_ghost_id = true;
				mm->files[err]->ghost_id = ghost;
			}
			e->has_file_id = true;
			e->file_id = err;
			e->pgoff = v->pgoff;
			e->kind = v->shared ? VMA_KIND_FILE_SHARED : VMA_KIND_FILE_PRIVATE;
			e->flags |= v->shared ? MAP_SHARED : MAP_PRIVATE;
		} else if (!strncmp(v->path, "[anon_shmem:", 12)) {
			err = shm_vma(ctx, task, v, e);
			if (err)
				return err;
		} else {
			e->kind = VMA_KIND_ANON;
			e->flags |= MAP_PRIVATE | MAP_ANONYMOUS;
		}
		/* "[anon:NAME]" / "[anon_shmem:NAME]": the name set with PR_SET_VMA_ANON_NAME. */
		const char *colon = strchr(v->path, ':');
		size_t plen = strlen(v->path);
		if (v->path[0] == '[' && colon && plen > 2 && v->path[plen - 1] == ']' &&
		    (e->kind == VMA_KIND_ANON || e->kind == VMA_KIND_SHARED_ANON)) {
			e->name = strndup(colon + 1, v->path + plen - 1 - (colon + 1));
			if (!e->name)
				return -ENOMEM;
		}
	}
	return dump_aio_collect(task, mm);
}

/* Remote close of the task's pipe fds: no parasite needed, so it works after a crash too. */
static int pw_close_pipes(struct page_writer *pw)
{
	int err = 0;

	for (int i = 0; i < PARASITE_MAX_PIPES; i++) {
		for (int e = 0; e < 2; e++) {
			long ret = 0;
			int serr = 0;
			if (pw->tfd[i][e] >= 0)
				serr = infect_syscall(pw->it, SYS_close, &ret, pw->tfd[i][e], 0, 0, 0, 0, 0);
			if ((serr || ret) && !err) {
				err = serr ? serr : (int)ret;
				pr_errno(err, "cannot close the dump's pipe fd %d in %d", pw->tfd[i][e], pw->pid);
			}
			pw->tfd[i][e] = -1;
		}
		if (pw->rfd[i] >= 0)
			close(pw->rfd[i]);
		pw->rfd[i] = -1;
	}
	pw->nr_pipes = 0;
	return err;
}

/*
 * Splice mode needs pipes in the task (the parasite vmsplices its own
 * memory) whose read ends we hold. When they cannot be had (fd limit), the
 * copy through a buffer is the fallback.
 */
static void pw_open_pipes(struct page_writer *pw, struct infect_task *it)
{
	struct parasite_pipes *p = &it->pargs->pipes;
	int pidfd, err;

	pw->it = it;
	p->nr = PARASITE_MAX_PIPES;
	for (int i = 0; i < PARASITE_MAX_PIPES; i++)
		p->fds[i][0] = p->fds[i][1] = -1;
	err = infect_parasite_call(it, PARASITE_CMD_PIPES);
	for (int i = 0; i < PARASITE_MAX_PIPES; i++) {
		pw->tfd[i][0] = p->fds[i][0];
		pw->tfd[i][1] = p->fds[i][1];
	}
	if (err)
		goto fallback;
	pidfd = syscall(SYS_pidfd_open, pw->pid, 0);
	if (pidfd < 0)
		goto fallback;
	for (int i = 0; i < PARASITE_MAX_PIPES; i++) {
		pw->rfd[i] = syscall(SYS_pidfd_getfd, pidfd, pw->tfd[i][0], 0);
		if (pw->rfd[i] < 0) {
			close(pidfd);
			goto fallback;
		}
	}
	close(pidfd);
	pw->nr_pipes = PARASITE_MAX_PIPES;
	pw->cap = (size_t)PARASITE_MAX_PIPES * PARASITE_PIPE_SIZE;
	pw->max_iov = PARASITE_MAX_IOVS - PARASITE_MAX_PIPES;
	return;
fallback:
	pr_info("%d: no pipes in the task (%d); copying pages through a buffer", pw->pid, err);
	(void)pw_close_pipes(pw);	/* a failure shows again at the final close */
}

/* The parent's plain private anonymous mapping at exactly this range, if any. */
static bool cow_candidate(const struct dump_task *parent, const struct proc_vma *v,
			  const VmaEntry *e)
{
	if (!parent || e->kind != VMA_KIND_ANON || e->flags != (MAP_PRIVATE | MAP_ANONYMOUS) ||
	    !(v->prot & PROT_READ))
		return false;
	for (size_t i = 0; i < parent->nr_vmas; i++) {
		const struct proc_vma *p = &parent->vmas[i];
		if (p->start == v->start && p->end == v->end && !p->shared && !p->ino &&
		    !strcmp(p->path, v->path) && !(p->vmflags & ~PROC_VMF_DONTDUMP & ~PROC_VMF_NOHUGEPAGE & ~PROC_VMF_HUGEPAGE))
			return true;
	}
	return false;
}

/*
 * [s, e) of v, which the parent images do not hold as it is: what the
 * harvest saw of its written pages (task->known, from *kk on) needs no
 * second look; the rest goes through the page scan. With dry, only count
 * the pieces that would (*ret_scans).
 */
static int dump_changed(struct page_writer *pw, struct dump_task *t, const struct proc_vma *v,
			uint64_t s, uint64_t e, bool cow, bool *ret_shared, size_t *kk, bool dry,
			size_t *ret_scans)
{
	const struct page_region *kn = t->known;
	bool readable = v->prot & PROT_READ;
	uint64_t pos = s;
	int err = 0;

	while (*kk < t->nr_known && kn[*kk].end <= s)
		(*kk)++;
	for (size_t k = *kk; k < t->nr_known && kn[k].start < e && !err; k++) {
		uint64_t ks = kn[k].start > s ? kn[k].start : s, ke = kn[k].end < e ? kn[k].end : e;
		if (ks > pos) {
			(*ret_scans)++;
			if (!dry)
				err = dump_private_pages(pw, v, pos, ks, false, cow, ret_shared, NULL, 0);
		}
		if (!err && !dry && (kn[k].categories & PAGE_IS_PRESENT) &&
		    !(kn[k].categories & PAGE_IS_PFNZERO))
			err = pw_add_range(pw, ks, ke, readable, cow, ret_shared);
		else if (!err && !dry && (kn[k].categories & PAGE_IS_SWAPPED))
			err = pw_add_swapped(pw, ks, ke, readable, cow, ret_shared);
		pos = ke;
	}
	if (!err && pos < e) {
		(*ret_scans)++;
		if (!dry)
			err = dump_private_pages(pw, v, pos, e, false, cow, ret_shared, NULL, 0);
	}
	return err;
}

/* A delta's anonymous mapping: PE_PREV runs, and the rest through dump_changed(). */
static int dump_delta_vma(struct page_writer *pw, struct dump_task *t, const struct proc_vma *v,
			  bool cow, bool *ret_shared, const struct dirty_run *ok, size_t nok, bool dry,
			  size_t *ret_scans)
{
	uint64_t pos = v->start;
	size_t kk = 0;
	int err = 0;

	for (size_t i = 0; i <= nok && !err; i++) {
		uint64_t s = i < nok ? (ok[i].start > v->start ? ok[i].start : v->start) : v->end;
		uint64_t e = i < nok ? (ok[i].end < v->end ? ok[i].end : v->end) : v->end;
		if (s > pos)
			err = dump_changed(pw, t, v, pos, s, cow, ret_shared, &kk, dry, ret_scans);
		if (!err && !dry && e > s)
			err = pw_add_ref(pw, s, e - s, PE_PREV);
		if (e > pos)
			pos = e;
	}
	return err;
}

/*
 * The private pages of v; in a delta, task->prev_ok from *k on says what
 * is PE_PREV. An anonymous mapping of a delta is not walked again where
 * the harvest told enough, unless that leaves it in many pieces (then one
 * walk over it all is cheaper than a scan for each).
 */
#define DELTA_MAX_SCANS 32
static int dump_vma_pages(struct page_writer *pw, struct dump_task *task, const struct proc_vma *v,
			  bool file, bool cow, bool *ret_shared, size_t *k)
{
	const struct dirty_run *ok = task->prev_ok;
	size_t n = 0, scans = 0;

	while (*k < task->nr_prev_ok && ok[*k].end <= v->start)
		(*k)++;
	while (*k + n < task->nr_prev_ok && ok[*k + n].start < v->end)
		n++;
	if (!ok)
		return dump_private_pages(pw, v, v->start, v->end, file, cow, ret_shared, NULL, 0);
	if (!file) {
		(void)dump_delta_vma(pw, task, v, cow, ret_shared, ok + *k, n, true, &scans);
		if (scans <= DELTA_MAX_SCANS)
			return dump_delta_vma(pw, task, v, cow, ret_shared, ok + *k, n, false, &scans);
	}
	return dump_private_pages(pw, v, v->start, v->end, file, cow, ret_shared, ok + *k, n);
}

static int write_pages(struct dump_ctx *ctx, struct dump_task *task, MmEntry *mm)
{
	struct page_writer pw = { .pid = task->pid, .pages_fd = -1, .mem_fd = -1, .parent_pagemap_fd = -1,
				  .cap = XFER_BUF, .max_iov = IOV_MAX, .task = task,
				  .deferred = ctx->copy_after_thaw };
	size_t ok_idx = 0;
	char name[64], path[64];
	int pagemap_fd = -1, err = 0;

	img_name(IMG_PAGES, task->pid, name, sizeof(name));
	pw.pages_fd = openat(ctx->dirfd, name, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (pw.pages_fd < 0) {
		err = -errno;
		pr_perror("cannot create %s", name);
		goto out;
	}
	pw.pagemap = img_open(ctx->dirfd, IMG_PAGEMAP, task->pid, O_WRONLY);
	if (!pw.pagemap) {
		err = -errno;
		goto out;
	}
	snprintf(path, sizeof(path), "/proc/%d/pagemap", task->pid);
	pagemap_fd = open(path, O_RDONLY | O_CLOEXEC);
	pw.pagemap_fd = pagemap_fd;
	pw.parent_pagemap_fd = -1;
	/* The parent was dumped before (pstree order): its pages are in its images. */
	const struct dump_task *parent = NULL;
	for (size_t i = 0; i < ctx->nr_tasks && task->ppid; i++)
		if (ctx->tasks[i].pid == task->ppid && !ctx->tasks[i].zombie && ctx->tasks[i].vmas)
			parent = &ctx->tasks[i];
	if (parent) {
		snprintf(path, sizeof(path), "/proc/%d/pagemap", parent->pid);
		pw.parent_pagemap_fd = open(path, O_RDONLY | O_CLOEXEC);
		if (pw.parent_pagemap_fd < 0)
			parent = NULL;
	}
	snprintf(path, sizeof(path), "/proc/%d/mem", task->pid);
	pw.mem_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (pagemap_fd < 0 || pw.mem_fd < 0) {
		err = -errno;
		pr_perror("cannot open the pagemap or memory of %d", task->pid);
		goto out;
	}
	pw.buf = mmap(NULL, XFER_BUF, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (pw.buf == MAP_FAILED) {
		err = -errno;
		pw.buf = NULL;
		goto out;
	}
	for (int i = 0; i < PARASITE_MAX_PIPES; i++)
		pw.rfd[i] = pw.tfd[i][0] = pw.tfd[i][1] = -1;
	if (task->it.parasite && !pw.deferred && !getenv("CKPT_NO_SPLICE"))
		pw_open_pipes(&pw, &task->it);
	err = pw_rseq_areas(&pw);
	if (!err && pw.deferred)
		err = pw_hot_zones(&pw);
	if (err)
		goto out;
	for (size_t i = 0, k = 0; i < mm->n_vmas && !err; i++) {
		VmaEntry *e = mm->vmas[i];
		while (task->vmas[k].start != e->start)
			k++;
		switch (e->kind) {
		case VMA_KIND_ANON: {
			bool shared = false;
			err = dump_vma_pages(&pw, task, &task->vmas[k], false,
					     cow_candidate(parent, &task->vmas[k], e), &shared, &ok_idx);
			if (shared) {
				e->has_cow_parent = true;
				e->cow_parent = true;
			}
			break;
		}
		case VMA_KIND_FILE_PRIVATE:
			err = dump_vma_pages(&pw, task, &task->vmas[k], true, false, NULL, &ok_idx);
			break;
		case VMA_KIND_SHARED_ANON:
			if (!e->shm_pages_elsewhere)
				err = dump_shmem_pages(&pw, &task->vmas[k]);
			break;
		}
	}
	if (!err)
		err = pw_flush_data(&pw);
	if (!err)
		err = pw_flush_entry(&pw);
	if (!err)
		err = pw_flush_ref(&pw);
	if (!err && fault_injected("dump-pages"))
		err = -EIO;
	log_progress_done();
	ctx->pages_bytes += pw.total;
	pr_info("%d: %llu bytes of pages%s", task->pid, (unsigned long long)pw.total,
		pw.deferred ? " to copy after the thaw" : "");
	if (ctx->has_prev)
		pr_info("%d: %llu pages written, %llu taken from the parent images", task->pid,
			(unsigned long long)task->data_pages, (unsigned long long)task->prev_pages);
out:
	if (pw.it) {
		int cerr = pw_close_pipes(&pw);
		if (!err)
			err = cerr;
	}
	if (pw.buf)
		munmap(pw.buf, XFER_BUF);
	free(pw.hot);
	free(pw.rseq);
	if (pw.pagemap) {
		int cerr = img_close(pw.pagemap);
		if (!err)
			err = cerr;
	}
	if (pw.pages_fd >= 0 && pw.deferred && !err) {
		task->pages_fd = pw.pages_fd;	/* dump_copy_deferred() fills and closes it */
	} else if (pw.pages_fd >= 0) {
		if (!err && !img_sync_deferred() && fsync(pw.pages_fd) < 0 && errno != EINVAL) {
			err = -errno;
			pr_perror("cannot sync %s", name);
		}
		close(pw.pages_fd);
	}
	if (pw.mem_fd >= 0)
		close(pw.mem_fd);
	if (pagemap_fd >= 0)
		close(pagemap_fd);
	if (pw.parent_pagemap_fd >= 0)
		close(pw.parent_pagemap_fd);
	return err;
}

int dump_mm(struct dump_ctx *ctx, struct dump_task *task)
{
	MmEntry mm = MM_ENTRY__INIT;
	int err;

	err = build_mm(ctx, task, &mm);
	if (err)
		goto out;
	err = write_pages(ctx, task, &mm);
	if (err)
		goto out;
	err = img_store_one(ctx->dirfd, IMG_MM, task->pid, &mm);
	if (!err)
		err = dump_delta_task(ctx, task, &mm);
out:
	free_mm(&mm);
	return err;
}

/*
 * Read [addr, +len) of t into buf for the copy after the thaw, as well as
 * can be: the task runs again, and a range it unmapped meanwhile reads as
 * zeros (the log has the munmap, so the next round takes that range
 * again), as does everything of a task that is gone.
 */
static void copy_read_slow(struct dump_task *t, int mem_fd, uint8_t *buf, uint64_t addr,
			   uint64_t len, uint64_t *ret_lost)
{
	if (mem_fd >= 0 && pread(mem_fd, buf, len, addr) == (ssize_t)len)
		return;
	for (uint64_t p = 0; p < len; p += IMG_PAGE_SIZE) {
		if (mem_fd >= 0 && pread(mem_fd, buf + p, IMG_PAGE_SIZE, addr + p) == (ssize_t)IMG_PAGE_SIZE)
			continue;
		memset(buf + p, 0, IMG_PAGE_SIZE);
		*ret_lost += IMG_PAGE_SIZE;
	}
	(void)t;
}

static int copy_write(struct dump_task *t, const uint8_t *buf, uint64_t len, uint64_t off)
{
	while (len) {
		ssize_t n = pwrite(t->pages_fd, buf, len, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int err = n < 0 ? -errno : -EIO;
			pr_errno(err, "cannot write pages-%d.img", t->pid);
			return err;
		}
		buf += n;
		len -= n;
		off += n;
	}
	return 0;
}

/*
 * One task's deferred runs: as many as fill the buffer (and follow each
 * other in the file) in one process_vm_readv and one pwrite.
 */
static int copy_task(struct dump_task *t, uint8_t *buf, uint64_t *ret_lost)
{
	struct iovec local = { buf, 0 }, remote[IOV_MAX];
	uint64_t file_off, done = 0;	/* done: bytes of the run at i taken already */
	char path[64];
	int mem_fd, err = 0;
	size_t i = 0;

	snprintf(path, sizeof(path), "/proc/%d/mem", t->pid);
	mem_fd = open(path, O_RDONLY | O_CLOEXEC);
	while (i < t->nr_copy && !err) {
		bool forced = t->copy[i].forced;	/* alone in its batch: /proc/PID/mem */
		size_t nr = 0;
		uint64_t len = 0;

		file_off = t->copy[i].file_off + done;
		/* Gather: contiguous in the file, readable by process_vm_readv. */
		while (i < t->nr_copy && nr < IOV_MAX && len < XFER_BUF) {
			const struct dump_copy_run *r = &t->copy[i];
			if (r->file_off + done != file_off + len || (r->forced && nr))
				break;
			uint64_t chunk = r->len - done < XFER_BUF - len ? r->len - done : XFER_BUF - len;
			remote[nr++] = (struct iovec){ (void *)(r->addr + done), chunk };
			len += chunk;
			done += chunk;
			if (done == r->len) {
				i++;
				done = 0;
			}
			if (r->forced)
				break;
		}
		local.iov_len = len;
		ssize_t n = forced ? -1 : process_vm_readv(t->pid, &local, 1, remote, nr, 0);
		if (n != (ssize_t)len) {
			uint64_t at = 0;
			for (size_t k = 0; k < nr; k++) {
				copy_read_slow(t, mem_fd, buf + at, (uint64_t)remote[k].iov_base,
					       remote[k].iov_len, ret_lost);
				at += remote[k].iov_len;
			}
		}
		err = copy_write(t, buf, len, file_off);
	}
	if (mem_fd >= 0)
		close(mem_fd);
	if (!err && !img_sync_deferred() && fsync(t->pages_fd) < 0 && errno != EINVAL) {
		err = -errno;
		pr_perror("cannot sync pages-%d.img", t->pid);
	}
	return err;
}

/*
 * Whether anything t copied after the thaw was written since the re-arm
 * (or cannot be told): then the copy may not be the memory as frozen.
 * One scan without re-arming, over the copied ranges only.
 */
static bool copy_changed(struct dump_task *t)
{
	struct dirty_run *ranges = malloc(t->nr_copy * sizeof(*ranges)), *w = NULL;
	size_t n = 0, nw = 0;
	bool changed = true;

	if (!ranges)
		return true;
	for (size_t i = 0; i < t->nr_copy; i++)
		ranges[n++] = (struct dirty_run){ t->copy[i].addr, t->copy[i].addr + t->copy[i].len };
	n = runs_normalize(ranges, n);
	if (!dirty_scan(t->pid, ranges, n, false, &w, &nw))
		changed = nw != 0;
	if (changed)
		pr_info("%d: %llu KiB of what was copied after the thaw was written meanwhile", t->pid,
			(unsigned long long)dirty_bytes(w, nw) >> 10);
	free(w);
	free(ranges);
	return changed;
}

int dump_copy_deferred(struct dump_ctx *ctx)
{
	uint8_t *buf = mmap(NULL, XFER_BUF, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int err = 0;

	if (buf == MAP_FAILED)
		return -errno;
	for (size_t i = 0; i < ctx->nr_tasks && !err; i++) {
		struct dump_task *t = &ctx->tasks[i];
		uint64_t lost = 0;
		if (t->pages_fd < 0)
			continue;
		err = copy_task(t, buf, &lost);
		if (lost)
			pr_warn("%d: %llu KiB could not be read after the thaw (unmapped or gone since); "
				"they read as zeros here and the next round takes them again",
				t->pid, (unsigned long long)lost >> 10);
		if (!err && t->nr_copy && (lost || copy_changed(t)))
			ctx->pages_torn = true;
	}
	munmap(buf, XFER_BUF);
	if (!err && ctx->pages_torn)
		pr_info("pages changed while they were copied: these images are a pre-copy round, "
			"good as the parent of a later delta, not to restore from");
	return err;
}

/* Close what dump_mm left open for the copy after the thaw. */
void dump_copy_free(struct dump_ctx *ctx)
{
	for (size_t i = 0; i < ctx->nr_tasks; i++) {
		struct dump_task *t = &ctx->tasks[i];
		if (t->pages_fd >= 0)
			close(t->pages_fd);
		t->pages_fd = -1;
		free(t->copy);
		t->copy = NULL;
		t->nr_copy = t->cap_copy = 0;
	}
}
