// SPDX-License-Identifier: MIT
#define LOG_PREFIX "mm: "
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blob.h"
#include "ckpt.h"
#include "image.h"
#include "kerndat.h"
#include "log.h"
#include "proc.h"
#include "restore.h"
#include "restorer_abi.h"
#include "sigframe.h"
#include "vdso.h"


static size_t page_up(size_t v)
{
	return (v + IMG_PAGE_SIZE - 1) & ~(IMG_PAGE_SIZE - 1);
}

/* Layout of the args area, offsets from its start. */
struct args_layout {
	size_t vmas, runs, premaps, close, getfds, locks, groups, pending, shared_pending, names,
		vdso_proxy, threads, timers, aio, aio_events, sigframe, sigframe_size, total;
};

static bool vma_has_data(const VmaEntry *v)
{
	return v->kind == VMA_KIND_ANON || v->kind == VMA_KIND_FILE_PRIVATE ||
	       v->kind == VMA_KIND_SHARED_ANON;
}

/*
 * Every page run lands in mappings that take page data, a PE_PARENT run
 * in one inherited copy-on-write from the parent; count the bytes read
 * from the pages files of every level. The runs are the resolved chain
 * (chain_resolve): sorted, disjoint, each level's file checked against
 * its pagemap.
 */
static int check_pagemap(struct rst_ctx *ctx, struct rst_task *t, bool *has_pages,
			 uint64_t *ret_bytes)
{
	MmEntry *mm = t->mm;
	char name[64];
	uint64_t bytes = 0;
	size_t k = 0;

	img_name(IMG_PAGEMAP, t->pid, name, sizeof(name));
	for (size_t i = 0; i < t->nr_srcs; i++) {
		const struct page_src *r = &t->srcs[i];
		uint64_t s = r->vaddr, e = r->vaddr + r->len;
		bool parent = r->flags == PE_PARENT;
		if (!parent)
			bytes += e - s;
		while (s < e) {
			while (k < mm->n_vmas && mm->vmas[k]->end <= s)
				k++;
			if (k == mm->n_vmas || mm->vmas[k]->start > s || !vma_has_data(mm->vmas[k])) {
				/* The runs are merged across entries (and levels): no entry index. */
				if (r->level)
					pr_err("image %s: field 'vaddr': page %#llx, whose data is in '%s', is not in a mapping that holds data",
					       name, (unsigned long long)s, ctx->chain.paths[r->level]);
				else
					pr_err("image %s: field 'vaddr': page %#llx is not in a mapping that holds data",
					       name, (unsigned long long)s);
				return -EINVAL;
			}
			if (parent && !mm->vmas[k]->cow_parent) {
				pr_err("image %s: field 'flags': page %#llx is the parent's, in a mapping not inherited from it",
				       name, (unsigned long long)s);
				return -EINVAL;
			}
			has_pages[k] = true;
			s = e < mm->vmas[k]->end ? e : mm->vmas[k]->end;
		}
	}
	*ret_bytes = bytes;
	return 0;
}

struct busy {
	uint64_t start, end;
};

/* The AIO rings of mm are taken too, though they are no vmas of the image. */
static size_t add_aio_busy(const MmEntry *mm, struct busy *b, size_t n)
{
	for (size_t i = 0; i < mm->n_aio_rings; i++)
		b[n++] = (struct busy){ mm->aio_rings[i]->addr,
					mm->aio_rings[i]->addr + mm->aio_rings[i]->len };
	return n;
}

static int busy_cmp(const void *a, const void *b)
{
	const struct busy *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/* The highest gap of len bytes (plus guard pages) below top among busy ranges. */
static int find_gap(struct busy *b, size_t n, size_t len, uint64_t top, uint64_t *ret)
{
	const uint64_t guard = 16 * IMG_PAGE_SIZE;
	size_t m = 0;

	/* The ranges come from two address spaces and overlap: merge them. */
	qsort(b, n, sizeof(*b), busy_cmp);
	for (size_t i = 0; i < n; i++) {
		if (m && b[i].start <= b[m - 1].end) {
			if (b[i].end > b[m - 1].end)
				b[m - 1].end = b[i].end;
		} else {
			b[m++] = b[i];
		}
	}
	n = m;
	for (size_t i = n; ; i--) {
		uint64_t lo = i ? b[i - 1].end : (1ul << 32);
		if (i && b[i - 1].start >= top)
			goto next;
		if (top > lo && top - lo >= len + 2 * guard) {
			*ret = (top - len - guard) & ~(IMG_PAGE_SIZE - 1);
			return 0;
		}
next:
		if (!i)
			return -ENOMEM;
		if (b[i - 1].start < top)
			top = b[i - 1].start;
	}
}

/*
 * A place for the restorer that is free both in the image and in ckpt
 * itself (the child starts as a copy of ckpt). Searched from near the top
 * of the address space down, clear of the stack's growth area.
 */
static int find_region(struct rst_task *t, const struct proc_vma *own, size_t nown, size_t len,
		       uint64_t *ret)
{
	struct busy *b = malloc((nown + t->mm->n_vmas + t->mm->n_aio_rings + 1) * sizeof(*b));
	size_t n = 0;
	int err;

	if (!b)
		return -ENOMEM;
	for (size_t i = 0; i < nown; i++)
		if (own[i].end <= IMG_TASK_SIZE)
			b[n++] = (struct busy){ own[i].start, own[i].end };
	for (size_t i = 0; i < t->mm->n_vmas; i++)
		b[n++] = (struct busy){ t->mm->vmas[i]->start, t->mm->vmas[i]->end };
	n = add_aio_busy(t->mm, b, n);
	err = find_gap(b, n, len, IMG_TASK_SIZE - (1ul << 30), ret);
	free(b);
	if (err)
		pr_err("no room for the restorer in the address space of %d", t->pid);
	return err;
}

static long find_vma(const MmEntry *mm, uint64_t start, uint64_t end)
{
	for (size_t i = 0; i < mm->n_vmas; i++)
		if (mm->vmas[i]->start == start && mm->vmas[i]->end == end)
			return i;
	return -1;
}

static bool plain_anon(const VmaEntry *v)
{
	return v->kind == VMA_KIND_ANON && v->flags == (MAP_PRIVATE | MAP_ANONYMOUS);
}

/* Is task d in the subtree of task t (t itself included)? */
static bool in_subtree(struct rst_ctx *ctx, size_t t, size_t d)
{
	for (long i = d; i >= 0; i = ctx->tasks[i].parent)
		if ((size_t)i == t)
			return true;
	return false;
}

/*
 * Copy-on-write sharing across fork, planned before any task exists. A
 * parent whose child inherits a mapping maps it in its libc stage at a
 * "premap" address, fills it, and forks: the child starts with the
 * parent's pages shared, writes only its own over them, and its restorer
 * moves the mapping to the dumped address with mremap, which keeps the
 * sharing. The premap area of a task must be free in ckpt and clear of
 * every final mapping of the task and of its descendants (they all inherit
 * the area and move things into those places).
 */
int restore_mm_plan_cow(struct rst_ctx *ctx)
{
	struct proc_vma *own = NULL;
	size_t nown = 0;
	int err = 0;

	for (size_t i = 0; i < ctx->nr_tasks && !err; i++) {
		struct rst_task *t = &ctx->tasks[i];
		if (t->zombie)
			continue;
		t->premap = calloc(t->mm->n_vmas + 1, sizeof(*t->premap));
		t->premap_fresh = calloc(t->mm->n_vmas + 1, sizeof(*t->premap_fresh));
		if (!t->premap || !t->premap_fresh)
			return -ENOMEM;
	}
	/* Which mappings of a parent some child inherits: premap_fresh[] as a mark. */
	for (size_t i = 0; i < ctx->nr_tasks; i++) {
		struct rst_task *c = &ctx->tasks[i];
		char name[64];
		if (c->zombie)
			continue;
		img_name(IMG_MM, c->pid, name, sizeof(name));
		for (size_t k = 0; k < c->mm->n_vmas; k++) {
			const VmaEntry *v = c->mm->vmas[k];
			if (!v->cow_parent)
				continue;
			struct rst_task *p = c->parent >= 0 ? &ctx->tasks[c->parent] : NULL;
			long kp = p && !p->zombie ? find_vma(p->mm, v->start, v->end) : -1;
			if (!plain_anon(v) || kp < 0 || !plain_anon(p->mm->vmas[kp]))
				return img_bad_at(name, 0, "vmas.cow_parent",
						  "mapping at 0x%llx is not one its parent has",
						  (unsigned long long)v->start);
			p->premap_fresh[kp] = true;
		}
	}
	err = proc_parse_maps(0, false, &own, &nown);
	if (err) {
		pr_errno(err, "cannot read /proc/self/maps");
		return err;
	}
	for (size_t i = 0; i < ctx->nr_tasks && !err; i++) {
		struct rst_task *t = &ctx->tasks[i];
		uint64_t total = 0;
		if (t->zombie)
			continue;
		for (size_t k = 0; k < t->mm->n_vmas; k++) {
			const VmaEntry *v = t->mm->vmas[k];
			if (v->cow_parent) {
				struct rst_task *p = &ctx->tasks[t->parent];
				t->premap[k] = p->premap[find_vma(p->mm, v->start, v->end)];
				t->premap_fresh[k] = false;
			} else if (t->premap_fresh[k]) {
				total += v->end - v->start + IMG_PAGE_SIZE;
			}
		}
		if (!total)
			continue;
		size_t nb = nown;
		for (size_t d = i; d < ctx->nr_tasks; d++)
			if (!ctx->tasks[d].zombie && in_subtree(ctx, i, d))
				nb += ctx->tasks[d].mm->n_vmas + ctx->tasks[d].mm->n_aio_rings;
		struct busy *b = malloc((nb + 1) * sizeof(*b));
		if (!b) {
			err = -ENOMEM;
			break;
		}
		size_t n = 0;
		for (size_t k = 0; k < nown; k++)
			if (own[k].end <= IMG_TASK_SIZE)
				b[n++] = (struct busy){ own[k].start, own[k].end };
		for (size_t d = i; d < ctx->nr_tasks; d++) {
			if (ctx->tasks[d].zombie || !in_subtree(ctx, i, d))
				continue;
			for (size_t k = 0; k < ctx->tasks[d].mm->n_vmas; k++)
				b[n++] = (struct busy){ ctx->tasks[d].mm->vmas[k]->start,
							ctx->tasks[d].mm->vmas[k]->end };
			n = add_aio_busy(ctx->tasks[d].mm, b, n);
		}
		err = find_gap(b, n, total, IMG_TASK_SIZE - (1ul << 30), &t->premap_area);
		free(b);
		if (err) {
			pr_err("no room to share the memory of %d with its children", t->pid);
			break;
		}
		/* Held in ckpt (so later places avoid it) until the task maps over it. */
		void *p = mmap((void *)t->premap_area, total, PROT_NONE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
		if (p != (void *)t->premap_area) {
			err = p == MAP_FAILED ? -errno : -EEXIST;
			pr_errno(err, "cannot reserve %#llx for the shared memory of %d",
				 (unsigned long long)t->premap_area, t->pid);
			if (p != MAP_FAILED)
				munmap(p, total);
			break;
		}
		t->premap_area_len = total;
		uint64_t at = t->premap_area;
		for (size_t k = 0; k < t->mm->n_vmas; k++) {
			if (!t->premap_fresh[k])
				continue;
			t->premap[k] = at;
			at += t->mm->vmas[k]->end - t->mm->vmas[k]->start + IMG_PAGE_SIZE;
		}
		/* The reservation shows in our maps from now on. */
		free(own);
		own = NULL;
		err = proc_parse_maps(0, false, &own, &nown);
	}
	free(own);
	return err;
}

/*
 * Call fn for every piece of the task's data runs, with the rfds index of
 * the pages file holding it (the level's slot) and its offset there.
 */
static int for_each_run(struct rst_task *t, int (*fn)(struct rst_task *t, long vma, uint64_t addr,
						      uint64_t len, int slot, uint64_t off, void *arg),
			void *arg)
{
	size_t k = 0;

	for (size_t i = 0; i < t->nr_srcs; i++) {
		const struct page_src *r = &t->srcs[i];
		uint64_t s = r->vaddr, e = r->vaddr + r->len, off = r->off;
		if (r->flags != PE_PRESENT)
			continue;
		int slot = r->level ? t->level_slots[r->level] : 1;
		/* A run may span mappings; split it at their ends (check_pagemap saw each page in one). */
		while (s < e) {
			while (k < t->mm->n_vmas && t->mm->vmas[k]->end <= s)
				k++;
			uint64_t end = e < t->mm->vmas[k]->end ? e : t->mm->vmas[k]->end;
			int err = fn(t, k, s, end - s, slot, off, arg);
			if (err)
				return err;
			off += end - s;
			s = end;
		}
	}
	return 0;
}

static int premap_fill(struct rst_task *t, long k, uint64_t addr, uint64_t len, int slot,
		       uint64_t off, void *arg)
{
	(void)arg;
	if (!t->premap[k])
		return 0;
	char *dst = (char *)(t->premap[k] + (addr - t->mm->vmas[k]->start));
	for (uint64_t done = 0; done < len;) {
		ssize_t n = pread(t->rfds[slot], dst + done, len - done, off + done);
		if (n <= 0) {
			int err = n < 0 ? -errno : -EIO;
			pr_errno(err, "cannot read the pages of %d at %#llx", t->pid,
				 (unsigned long long)(addr + done));
			return err;
		}
		done += n;
	}
	return 0;
}

int restore_mm_premap(struct rst_task *t)
{
	for (size_t k = 0; t->premap && k < t->mm->n_vmas; k++) {
		const VmaEntry *v = t->mm->vmas[k];
		uint64_t len = v->end - v->start, delta = t->premap[k] - v->start;
		if (!t->premap[k])
			continue;
		if (t->premap_fresh[k]) {
			void *p = mmap((void *)t->premap[k], len, PROT_READ | PROT_WRITE,
				       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
			if (p == MAP_FAILED) {
				pr_perror("cannot map the shared memory of %d at %#llx", t->pid,
					  (unsigned long long)t->premap[k]);
				return -errno;
			}
			continue;
		}
		/*
		 * Inherited: what is neither the parent's (PE_PARENT) nor our
		 * own data must read as zeros, as it did in the task.
		 */
		uint64_t pos = v->start;
		for (size_t i = 0; i <= t->nr_srcs; i++) {
			uint64_t s = i < t->nr_srcs ? t->srcs[i].vaddr : v->end;
			uint64_t e = i < t->nr_srcs ? s + t->srcs[i].len : v->end;
			if (e <= v->start)
				continue;
			if (s > v->end)
				s = v->end;
			if (s > pos && madvise((void *)(pos + delta), s - pos, MADV_DONTNEED) < 0) {
				pr_perror("cannot clear inherited memory of %d at %#llx", t->pid,
					  (unsigned long long)pos);
				return -errno;
			}
			if (e > pos)
				pos = e;
			if (pos >= v->end)
				break;
		}
	}
	return for_each_run(t, premap_fill, NULL);
}

static int run_file_cmp(const void *x, const void *y)
{
	const struct restorer_run *a = x, *b = y;

	if (a->fd != b->fd)
		return a->fd < b->fd ? -1 : 1;
	return a->file_off < b->file_off ? -1 : a->file_off > b->file_off;
}

static int premap_cmp(const void *x, const void *y)
{
	const struct restorer_premap *a = x, *b = y;

	return a->from < b->from ? -1 : a->from > b->from;
}

static int count_run(struct rst_task *t, long k, uint64_t addr, uint64_t len, int slot,
		     uint64_t off, void *arg)
{
	(void)addr, (void)len, (void)slot, (void)off;
	if (!t->premap || !t->premap[k])
		(*(size_t *)arg)++;
	return 0;
}

/* The runs the restorer reads: those outside premapped mappings (filled before the fork). */
static int add_run(struct rst_task *t, long k, uint64_t addr, uint64_t len, int slot,
		   uint64_t off, void *arg)
{
	struct restorer_args *a = arg;

	if (t->premap && t->premap[k])
		return 0;
	struct restorer_run *runs = (struct restorer_run *)((char *)a + a->runs_off);
	runs[a->nr_runs++] = (struct restorer_run){ .vaddr = addr, .len = len, .file_off = off,
						     .fd = t->fd_base + slot };
	return 0;
}

static void *aat(struct rst_task *t, size_t off)
{
	return (char *)t->args + off;
}

static int open_map_file(struct rst_ctx *ctx, const MapFileEntry *f, bool write)
{
	struct stat st;
	int flags = write ? O_RDWR : O_RDONLY;
	int fd = f->has_ghost_id ? restore_files_ghost(ctx, f->ghost_id, flags)
				 : restore_open_checked(f->path, flags, f->mode & S_IFMT);

	if (fd < 0)
		return fd;
	if (fstat(fd, &st) < 0 || (uint64_t)st.st_size != f->size ||
	    (st.st_mode & (S_IFMT | 07777)) != (f->mode & (S_IFMT | 07777))) {
		pr_err("'%s' changed since the dump (size %lld mode 0%o, dumped %llu 0%o)", f->path,
		       (long long)st.st_size, st.st_mode, (unsigned long long)f->size, f->mode);
		close(fd);
		return -ESTALE;
	}
	if (!f->has_ghost_id && (st.st_dev != f->dev || st.st_ino != f->ino))
		pr_info("'%s' is a different inode than at dump time; same size and mode", f->path);
	return fd;
}

int restore_mm_open_file(struct rst_ctx *ctx, const MmEntry *mm, size_t idx)
{
	bool write = false;

	if (idx >= mm->n_files)
		return -EINVAL;
	for (size_t i = 0; i < mm->n_vmas; i++)
		if (mm->vmas[i]->kind == VMA_KIND_FILE_SHARED && mm->vmas[i]->file_id == idx &&
		    (mm->vmas[i]->prot & PROT_WRITE))
			write = true;
	return open_map_file(ctx, mm->files[idx], write);
}

static struct rst_shm *find_shm(struct rst_ctx *ctx, uint64_t shmid, size_t *ret_idx)
{
	for (size_t i = 0; i < ctx->nr_shms; i++) {
		if (ctx->shms[i].shmid == shmid) {
			*ret_idx = i;
			return &ctx->shms[i];
		}
	}
	return NULL;
}

/*
 * Shared anonymous memory is made the way the task made it (mmap
 * MAP_SHARED | MAP_ANONYMOUS) and taken as a file through map_files, so
 * that every mapping of it shows "/dev/zero (deleted)" again.
 */
static int create_shm(struct rst_shm *s)
{
	if (s->memfd) {
		s->fd = memfd_create(s->memfd, MFD_CLOEXEC);
		if (s->fd < 0 || ftruncate(s->fd, s->size) < 0) {
			int err = -errno;
			pr_perror("cannot create memfd '%s' of %llu bytes", s->memfd,
				  (unsigned long long)s->size);
			return err;
		}
		return 0;
	}
	void *p = mmap(NULL, s->size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	char path[96];
	if (p == MAP_FAILED) {
		pr_perror("cannot create %llu bytes of shared memory", (unsigned long long)s->size);
		return -errno;
	}
	snprintf(path, sizeof(path), "/proc/self/map_files/%lx-%lx", (unsigned long)p,
		 (unsigned long)p + s->size);
	s->fd = open(path, O_RDWR | O_CLOEXEC);
	int err = s->fd < 0 ? -errno : 0;
	munmap(p, s->size);
	if (err)
		pr_errno(err, "cannot open the shared memory object at %p", p);
	return err;
}

int restore_mm_shm_prepare(struct rst_ctx *ctx)
{
	for (size_t i = 0; i < ctx->nr_tasks; i++) {
		const struct rst_task *t = &ctx->tasks[i];
		char name[64];
		if (t->zombie)
			continue;
		img_name(IMG_MM, t->pid, name, sizeof(name));
		for (size_t k = 0; k < t->mm->n_vmas; k++) {
			const VmaEntry *v = t->mm->vmas[k];
			uint64_t need = v->pgoff + (v->end - v->start);
			size_t idx;
			if (v->kind != VMA_KIND_SHARED_ANON)
				continue;
			if (v->has_shm_size && v->shm_size > need)
				need = page_up(v->shm_size);
			struct rst_shm *s = find_shm(ctx, v->shmid, &idx);
			if (s) {
				if (!s->memfd != !v->memfd || (s->memfd && strcmp(s->memfd, v->memfd)))
					return img_bad_at(name, 0, "vmas.memfd",
							  "mapping at 0x%llx: shmid %llu is also another object",
							  (unsigned long long)v->start,
							  (unsigned long long)v->shmid);
				if (need > s->size)
					s->size = need;
				continue;
			}
			s = realloc(ctx->shms, (ctx->nr_shms + 1) * sizeof(*s));
			if (!s)
				return -ENOMEM;
			ctx->shms = s;
			char *memfd = v->memfd ? strdup(v->memfd) : NULL;
			if (v->memfd && !memfd)
				return -ENOMEM;
			ctx->shms[ctx->nr_shms++] = (struct rst_shm){ v->shmid, need, memfd, -1 };
		}
	}
	for (size_t i = 0; i < ctx->nr_shms; i++) {
		/*
		 * A fixup's context starts with the objects the frozen tasks map
		 * already; one that grew since (ftruncate) grows with it.
		 */
		if (ctx->shms[i].fd >= 0) {
			struct stat st;
			if (fstat(ctx->shms[i].fd, &st) == 0 && (uint64_t)st.st_size < ctx->shms[i].size &&
			    ftruncate(ctx->shms[i].fd, ctx->shms[i].size) < 0) {
				int err = -errno;
				pr_perror("cannot grow shared memory object %llu to %llu bytes",
					  (unsigned long long)ctx->shms[i].shmid,
					  (unsigned long long)ctx->shms[i].size);
				return err;
			}
			continue;
		}
		int err = create_shm(&ctx->shms[i]);
		if (err)
			return err;
	}
	if (ctx->nr_shms)
		pr_debug("%zu shared memory object(s)", ctx->nr_shms);
	return 0;
}

void restore_mm_shm_close(struct rst_ctx *ctx)
{
	for (size_t i = 0; i < ctx->nr_shms; i++) {
		if (ctx->shms[i].fd >= 0)
			close(ctx->shms[i].fd);
		free((char *)ctx->shms[i].memfd);
	}
	free(ctx->shms);
	ctx->shms = NULL;
	ctx->nr_shms = 0;
}

/* The task's slot for shared memory object idx among its restorer fds. */
static int shm_slot(struct rst_task *t, size_t idx)
{
	for (size_t j = 0; j < t->nr_shm_slots; j++)
		if (t->shm_slots[j] == idx)
			return 3 + t->mm->n_files + j;
	return -1;
}

/*
 * The restorer's fds: [0] log, [1] pages, [2] exe, [3 + k] mapped file k,
 * then the shared memory objects it maps, then the pages files of the
 * deeper chain levels its runs read from. chain_resolve checked every
 * pages file used against its pagemap.
 */
static int open_rfds(struct rst_ctx *ctx, struct rst_task *t, bool kept)
{
	MmEntry *mm = t->mm;
	size_t nr_levels = 0;
	char name[64];

	if (kept) {
		/* Memory in place: the log, no pages, and the executable for PR_SET_MM_MAP. */
		t->rfds = malloc(3 * sizeof(int));
		if (!t->rfds)
			return -ENOMEM;
		t->rfds[t->nr_rfds++] = log_get_fd();
		t->rfds[t->nr_rfds++] = open("/dev/null", O_RDONLY | O_CLOEXEC);
		t->rfds[t->nr_rfds++] = mm->has_exe_file_id ?
			restore_mm_open_file(ctx, mm, mm->exe_file_id) : open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (t->rfds[1] < 0 || t->rfds[2] < 0) {
			int err = t->rfds[2] < -1 ? t->rfds[2] : -errno;
			pr_errno(err, "cannot set up the restorer's fds for %d", t->pid);
			return err;
		}
		return 0;
	}

	t->level_slots = malloc(ctx->chain.n * sizeof(*t->level_slots));
	if (!t->level_slots)
		return -ENOMEM;
	for (size_t l = 0; l < ctx->chain.n; l++)
		t->level_slots[l] = -1;
	t->level_slots[0] = 1;
	for (size_t i = 0; i < t->nr_srcs; i++) {
		const struct page_src *r = &t->srcs[i];
		if (r->flags == PE_PRESENT && r->level && t->level_slots[r->level] < 0) {
			t->level_slots[r->level] = 0;	/* used; its slot comes below */
			nr_levels++;
		}
	}
	t->rfds = malloc((3 + mm->n_files + mm->n_vmas + nr_levels) * sizeof(int));
	t->shm_slots = malloc((mm->n_vmas + 1) * sizeof(*t->shm_slots));
	if (!t->rfds || !t->shm_slots)
		return -ENOMEM;
	t->rfds[t->nr_rfds++] = log_get_fd();
	img_name(IMG_PAGES, t->pid, name, sizeof(name));
	int fd = openat(ctx->dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno != ENOENT) {
		int err = -errno;
		pr_perror("cannot open %s", name);
		return err;
	}
	/* Missing only when its pagemap has no data (chain_resolve): nothing reads it. */
	t->rfds[t->nr_rfds++] = fd >= 0 ? fd : open("/dev/null", O_RDONLY | O_CLOEXEC);
	t->rfds[t->nr_rfds++] = -1;	/* exe, below */
	for (size_t k = 0; k < mm->n_files; k++) {
		bool write = false;
		for (size_t i = 0; i < mm->n_vmas; i++)
			if (mm->vmas[i]->kind == VMA_KIND_FILE_SHARED && mm->vmas[i]->file_id == k &&
			    (mm->vmas[i]->prot & PROT_WRITE))
				write = true;
		fd = open_map_file(ctx, mm->files[k], write);
		if (fd < 0)
			return fd;
		t->rfds[t->nr_rfds++] = fd;
	}
	/* PR_SET_MM_MAP takes the executable by fd: a copy of its mapped file's. */
	int exe = mm->has_exe_file_id ? t->rfds[3 + mm->exe_file_id] : -1;
	t->rfds[2] = exe >= 0 ? fcntl(exe, F_DUPFD_CLOEXEC, 0) : open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (t->rfds[2] < 0 || t->rfds[1] < 0) {
		int err = -errno;
		pr_perror("cannot set up the restorer's fds for %d", t->pid);
		return err;
	}
	for (size_t i = 0; i < mm->n_vmas; i++) {
		size_t idx;
		if (mm->vmas[i]->kind != VMA_KIND_SHARED_ANON ||
		    !find_shm(ctx, mm->vmas[i]->shmid, &idx) || shm_slot(t, idx) >= 0)
			continue;
		fd = fcntl(ctx->shms[idx].fd, F_DUPFD_CLOEXEC, 0);
		if (fd < 0) {
			int err = -errno;
			pr_perror("cannot duplicate a shared memory fd for %d", t->pid);
			return err;
		}
		t->shm_slots[t->nr_shm_slots++] = idx;
		t->rfds[t->nr_rfds++] = fd;
	}
	for (size_t l = 1; l < ctx->chain.n; l++) {
		if (t->level_slots[l] < 0)
			continue;
		fd = chain_pages_fd(&ctx->chain, l, t->pid);
		if (fd < 0)
			return fd;
		t->level_slots[l] = t->nr_rfds;
		t->rfds[t->nr_rfds++] = fd;
	}
	return 0;
}

static int layout_args(struct rst_task *t, struct args_layout *l, size_t nr_runs, bool kept)
{
	const CoreEntry *c = t->core;
	size_t off = sizeof(struct restorer_args), xsave = 0;

	l->vmas = off;
	off += t->mm->n_vmas * sizeof(struct restorer_vma);
	l->runs = off;
	off += nr_runs * sizeof(struct restorer_run);
	l->premaps = off;
	off += t->mm->n_vmas * sizeof(struct restorer_premap);
	l->close = off;
	off += t->nr_rfds * sizeof(int32_t);
	off = (off + 7) & ~7ul;
	l->getfds = off;
	if (kept)
		off += (t->nr_rfds + t->nr_plan) * sizeof(struct restorer_getfd);
	l->locks = off;
	off += restore_files_posix_locks(t, NULL) * sizeof(struct restorer_lock);
	l->groups = off;
	off += c->task->creds->n_groups * sizeof(uint32_t);
	off = (off + 7) & ~7ul;
	l->pending = off;
	for (size_t i = 0; i < c->n_threads; i++) {
		off += c->threads[i]->n_pending * 128;
		if (c->threads[i]->has_xsave && c->threads[i]->xsave.len > xsave)
			xsave = c->threads[i]->xsave.len;
	}
	l->shared_pending = off;
	off += c->task->n_shared_pending * 128;
	l->names = off;
	for (size_t i = 0; i < t->mm->n_vmas; i++)
		if (t->mm->vmas[i]->name)
			off += strlen(t->mm->vmas[i]->name) + 1;
	off = (off + 15) & ~15ul;
	l->vdso_proxy = off;
	off += t->mm->has_vdso_image ? t->mm->vdso_image.len : 0;
	off = (off + 63) & ~63ul;
	l->threads = off;
	off += c->n_threads * sizeof(struct restorer_thread);
	l->timers = off;
	off += c->task->n_posix_timers * sizeof(struct restorer_timer);
	l->aio = off;
	off += t->mm->n_aio_rings * sizeof(struct restorer_aio);
	l->aio_events = off;
	for (size_t i = 0; i < t->mm->n_aio_rings; i++)
		off += t->mm->aio_rings[i]->events.len;
	off = (off + 63) & ~63ul;
	l->sigframe = off;
	l->sigframe_size = (sigframe_size(xsave) + 63) & ~63ul;
	off += c->n_threads * l->sigframe_size;
	l->total = page_up(off);
	return 0;
}

static void fill_task_state(struct rst_task *t, struct restorer_args *a, const struct args_layout *l)
{
	const TaskCoreEntry *tc = t->core->task;
	const CredsEntry *cr = tc->creds;
	struct restorer_thread *rt = aat(t, l->threads);
	size_t pending = l->pending;

	for (size_t i = 0; i < tc->n_sigactions; i++) {
		const SigactionEntry *s = tc->sigactions[i];
		a->sigactions[s->sig - 1] = (struct blob_sigaction){ s->handler, s->flags, s->restorer, s->mask };
		a->sigaction_set |= 1ull << (s->sig - 1);
	}
	for (size_t i = 0; i < tc->n_itimers; i++) {
		const ItimerEntry *it = tc->itimers[i];
		a->itimers[it->which] = (struct blob_itimer){
			it->interval_us / 1000000, it->interval_us % 1000000,
			it->value_us / 1000000, it->value_us % 1000000,
		};
	}
	/* Keep the current limits for resources the image does not name. */
	for (int r = 0; r < 16; r++) {
		struct rlimit cur;
		getrlimit(r, &cur);
		a->rlimits[r] = (struct restorer_rlimit){ cur.rlim_cur, cur.rlim_max };
	}
	a->nr_rlimits = 16;
	for (size_t i = 0; i < tc->n_rlimits; i++)
		a->rlimits[tc->rlimits[i]->resource] =
			(struct restorer_rlimit){ tc->rlimits[i]->cur, tc->rlimits[i]->max };
	a->creds = (struct restorer_creds){
		cr->uid, cr->euid, cr->suid, cr->fsuid, cr->gid, cr->egid, cr->sgid, cr->fsgid,
		cr->cap_inh, cr->cap_prm, cr->cap_eff, cr->cap_bnd, cr->cap_amb, cr->securebits,
		cr->n_groups, l->groups, 0,
	};
	if (cr->n_groups)
		memcpy(aat(t, l->groups), cr->groups, cr->n_groups * sizeof(uint32_t));
	a->nr_threads = t->core->n_threads;
	a->threads_off = l->threads;
	for (size_t k = 0; k < t->core->n_threads; k++) {
		const ThreadCoreEntry *th = t->core->threads[k];
		struct restorer_thread *o = &rt[k];
		o->tid = th->tid;
		/* Thread k >= 1: the k-th stack after the leader's. */
		o->stack_top = k ? t->stack_top + k * RESTORER_THREAD_STACK_SIZE : 0;
		o->nr_pending = th->n_pending;
		o->pending_off = pending;
		for (size_t i = 0; i < th->n_pending; i++, pending += 128)
			memcpy(aat(t, pending), th->pending[i]->siginfo.data, 128);
		snprintf(o->comm, sizeof(o->comm), "%s", th->comm ? th->comm : tc->comm);
		o->fs_base = th->gpregs->fs_base;
		o->gs_base = th->gpregs->gs_base;
		if (th->rseq) {
			o->rseq_ptr = th->rseq->ptr;
			o->rseq_len = th->rseq->len;
			o->rseq_sig = th->rseq->sig;
		}
		o->clear_tid = th->has_clear_tid ? th->clear_tid : 0;
		o->robust_list = th->has_robust_list ? th->robust_list : 0;
		o->robust_len = th->has_robust_len ? th->robust_len : 0;
	}
	a->nr_shared_pending = tc->n_shared_pending;
	a->shared_pending_off = l->shared_pending;
	for (size_t i = 0; i < tc->n_shared_pending; i++)
		memcpy(aat(t, l->shared_pending + 128 * i), tc->shared_pending[i]->siginfo.data, 128);
	a->pdeathsig = tc->pdeathsig;
	a->dumpable = tc->dumpable;
	if (a->dumpable == 2) {
		/* SUID_DUMP_ROOT comes from fs.suid_dumpable and cannot be set by prctl. */
		pr_warn("task %d was dumpable for root only (mode 2); it is restored not dumpable",
			t->pid);
		a->dumpable = 0;
	}
	a->nr_timers = tc->n_posix_timers;
	a->timers_off = l->timers;
	for (size_t i = 0; i < tc->n_posix_timers; i++) {
		const PosixTimerEntry *p = tc->posix_timers[i];
		((struct restorer_timer *)aat(t, l->timers))[i] = (struct restorer_timer){
			.id = p->id, .clock = p->clock, .notify = p->notify, .signo = p->signo,
			.sigval = p->sigval, .tid = p->has_notify_tid ? p->notify_tid : 0,
			.overrun = p->overrun, .value_ns = p->value_ns, .interval_ns = p->interval_ns,
			.signal_pending = p->has_signal_pending && p->signal_pending,
		};
	}
	a->timer_slack_ns = tc->timer_slack_ns;
	a->no_new_privs = tc->no_new_privs;
	a->child_subreaper = tc->has_child_subreaper && tc->child_subreaper;
}

static void fill_sigframe(struct rst_ctx *ctx, struct rst_task *t, const struct args_layout *l,
			  uint64_t args_addr, size_t k)
{
	const ThreadCoreEntry *th = t->core->threads[k];
	const UserRegsEntry *g = th->gpregs;
	struct restorer_thread *rt = aat(t, l->threads);
	size_t at = l->sigframe + k * l->sigframe_size;
	struct sigframe_regs r = {
		.r15 = g->r15, .r14 = g->r14, .r13 = g->r13, .r12 = g->r12, .bp = g->bp,
		.bx = g->bx, .r11 = g->r11, .r10 = g->r10, .r9 = g->r9, .r8 = g->r8, .ax = g->ax,
		.cx = g->cx, .dx = g->dx, .si = g->si, .di = g->di, .ip = g->ip, .cs = g->cs,
		.flags = g->flags, .sp = g->sp, .ss = g->ss, .blocked = th->blocked,
		.xsave = th->has_xsave ? th->xsave.data : NULL,
		.xsave_len = th->has_xsave ? th->xsave.len : 0,
		.xfeatures = ctx->inv->has_xfeatures ? ctx->inv->xfeatures : 0,
	};
	if (th->altstack) {
		r.alt_sp = th->altstack->sp;
		r.alt_size = th->altstack->size;
		r.alt_flags = th->altstack->flags;
	} else {
		r.alt_flags = SS_DISABLE;
	}
	rt[k].sigframe = sigframe_build(aat(t, at), args_addr + at, &r);
}

/* Write a jump at code[0] (which will live at `at`) to `to`; 0 or -ENOSPC. */
static int put_jump(uint8_t *code, uint64_t room, uint64_t at, uint64_t to)
{
	int64_t rel = (int64_t)(to - (at + 5));

	if (rel == (int32_t)rel && room >= 5) {
		int32_t r = rel;
		code[0] = 0xe9;				/* jmp rel32 */
		memcpy(code + 1, &r, 4);
		return 0;
	}
	if (room < 13)
		return -ENOSPC;
	code[0] = 0x49;					/* movabs $to, %r11 */
	code[1] = 0xbb;
	memcpy(code + 2, &to, 8);
	code[10] = 0x41;				/* jmp *%r11 */
	code[11] = 0xff;
	code[12] = 0xe3;
	return 0;
}

/*
 * The running kernel's vDSO code differs from the dumped one, or does not
 * fit where the dumped one was: put the running vDSO in a free place and
 * leave at the old address a copy of the dumped vDSO (so its ELF headers
 * still read right through AT_SYSINFO_EHDR) whose every function entry
 * jumps to the same function of the running vDSO. The program's cached
 * entry points keep working; the old code itself never runs.
 */
static int vdso_proxy(struct rst_task *t, struct restorer_args *a, const struct args_layout *l,
		      uint64_t img_code, uint64_t cur_code, uint64_t cur_code_len)
{
	const MmEntry *mm = t->mm;
	struct vdso_sym old[VDSO_MAX_SYMS], cur[VDSO_MAX_SYMS];
	int nold, ncur, err;
	struct busy *b;
	size_t n = 0;

	nold = vdso_symbols(mm->vdso_image.data, mm->vdso_image.len, old, VDSO_MAX_SYMS);
	ncur = vdso_symbols((const uint8_t *)cur_code, cur_code_len, cur, VDSO_MAX_SYMS);
	if (nold < 0 || ncur < 0) {
		pr_err("cannot read the %s vDSO's symbols for %d", nold < 0 ? "dumped" : "running", t->pid);
		return -EINVAL;
	}
	b = malloc((mm->n_vmas + mm->n_aio_rings + 1) * sizeof(*b));
	if (!b)
		return -ENOMEM;
	for (size_t i = 0; i < mm->n_vmas; i++)
		b[n++] = (struct busy){ mm->vmas[i]->start, mm->vmas[i]->end };
	n = add_aio_busy(mm, b, n);
	b[n++] = (struct busy){ t->region, t->region + t->region_len };
	/* Below the old vDSO, so that the jumps are likely to be rel32. */
	uint64_t gap;
	err = find_gap(b, n, a->vdso_cur_len, img_code, &gap);
	a->vdso_new_start = gap;
	free(b);
	if (err) {
		pr_err("no room for this kernel's vDSO in the address space of %d", t->pid);
		return err;
	}
	uint8_t *proxy = aat(t, l->vdso_proxy);
	uint64_t new_code = a->vdso_new_start + (cur_code - a->vdso_cur_start);
	memcpy(proxy, mm->vdso_image.data, mm->vdso_image.len);
	for (int i = 0; i < nold; i++) {
		const struct vdso_sym *c = vdso_find(cur, ncur, old[i].name);
		uint8_t *at = proxy + old[i].off;
		uint64_t room = mm->vdso_image.len - old[i].off;
		if (!c) {
			pr_warn("this kernel's vDSO has no '%s'; a call to it in %d will fault",
				old[i].name, t->pid);
			if (room >= 2) {
				at[0] = 0x0f;			/* ud2 */
				at[1] = 0x0b;
			}
			continue;
		}
		if (put_jump(at, room, img_code + old[i].off, new_code + c->off)) {
			pr_err("no room for a jump at '%s' of the dumped vDSO of %d", old[i].name, t->pid);
			return -ENOSPC;
		}
	}
	struct restorer_vma *v = (struct restorer_vma *)aat(t, l->vmas) + a->nr_vmas++;
	*v = (struct restorer_vma){
		.start = img_code, .end = img_code + mm->vdso_image.len, .prot = PROT_READ | PROT_EXEC,
		.flags = MAP_PRIVATE | MAP_ANONYMOUS, .kind = VMA_KIND_VDSO, .fd = -1, .has_pages = 1,
		.data_off = l->vdso_proxy, .data_len = mm->vdso_image.len,
	};
	pr_info("%d: vDSO proxy at %#llx, this kernel's vDSO at %#llx", t->pid,
		(unsigned long long)img_code, (unsigned long long)a->vdso_new_start);
	return 0;
}

/* Whether the dumped vDSO is byte for byte the running one (no image: assume so). */
static bool vdso_same(const MmEntry *mm, uint64_t cur_code, uint64_t cur_code_len)
{
	if (!mm->has_vdso_image)
		return true;
	return mm->vdso_image.len == cur_code_len &&
	       !memcmp(mm->vdso_image.data, (const void *)cur_code, cur_code_len);
}

/*
 * The vDSO of the running kernel goes where the image had its vDSO code,
 * with its data pages in front as this kernel lays them out, when it is
 * the same code and the block fits the image's free space; otherwise the
 * dumped vDSO is proxied (vdso_proxy).
 */
static int plan_vdso(struct rst_task *t, struct restorer_args *a, const struct args_layout *l,
		     const struct proc_vma *own, size_t n)
{
	uint64_t cur_lo = UINT64_MAX, cur_hi = 0, cur_code = 0, cur_code_len = 0;
	uint64_t img_code = 0, img_lo = UINT64_MAX, img_hi = 0;
	bool fits = true;

	for (size_t i = 0; i < n; i++) {
		bool vdso = !strcmp(own[i].path, "[vdso]");
		if (!vdso && strcmp(own[i].path, "[vvar]") && strcmp(own[i].path, "[vvar_vclock]"))
			continue;
		if (a->nr_vdso_parts == 4) {
			pr_err("this kernel's vDSO has more than 4 mappings; ckpt does not know it");
			return -E2BIG;
		}
		a->vdso_parts[a->nr_vdso_parts++] = (struct restorer_range){ own[i].start, own[i].end };
		cur_lo = own[i].start < cur_lo ? own[i].start : cur_lo;
		cur_hi = own[i].end > cur_hi ? own[i].end : cur_hi;
		if (vdso) {
			cur_code = own[i].start;
			cur_code_len = own[i].end - own[i].start;
		}
	}
	for (size_t i = 0; i < t->mm->n_vmas; i++) {
		const VmaEntry *v = t->mm->vmas[i];
		if (v->kind != VMA_KIND_VDSO && v->kind != VMA_KIND_VVAR)
			continue;
		img_lo = v->start < img_lo ? v->start : img_lo;
		img_hi = v->end > img_hi ? v->end : img_hi;
		if (v->kind == VMA_KIND_VDSO) {
			img_code = v->start;
			if (t->mm->has_vdso_image && t->mm->vdso_image.len != v->end - v->start) {
				char name[64];
				img_name(IMG_MM, t->pid, name, sizeof(name));
				return img_bad_at(name, 0, "vdso_image", "%zu bytes for a [vdso] of %llu",
						  t->mm->vdso_image.len, (unsigned long long)(v->end - v->start));
			}
		}
	}
	a->vdso_cur_start = cur_lo;
	a->vdso_cur_len = cur_hi - cur_lo;
	if (!img_code) {
		a->vdso_new_start = 0;
		return 0;
	}
	if (!cur_code) {
		pr_err("this kernel gives ckpt no vDSO, but the image of %d has one", t->pid);
		return -ENOENT;
	}
	a->vdso_new_start = img_code - (cur_code - cur_lo);
	uint64_t s = a->vdso_new_start, e = s + a->vdso_cur_len;
	for (size_t i = 0; i < t->mm->n_vmas; i++) {
		const VmaEntry *v = t->mm->vmas[i];
		if (v->kind != VMA_KIND_VDSO && v->kind != VMA_KIND_VVAR && v->start < e && s < v->end)
			fits = false;
	}
	for (size_t i = 0; i < t->mm->n_aio_rings; i++)
		if (t->mm->aio_rings[i]->addr < e && s < t->mm->aio_rings[i]->addr + t->mm->aio_rings[i]->len)
			fits = false;
	if (s < t->region + t->region_len && t->region < e)
		fits = false;
	bool same = vdso_same(t->mm, cur_code, cur_code_len);
	if (same && fits) {
		if (s != img_lo || e != img_hi)
			pr_info("%d: the vDSO data pages are laid out differently here; moved as one block",
				t->pid);
		return 0;
	}
	if (!t->mm->has_vdso_image) {
		pr_err("this kernel's vDSO (%#llx-%#llx) would overlap a mapping of %d, and the image has no copy of the old vDSO to proxy",
		       (unsigned long long)s, (unsigned long long)e, t->pid);
		return -EEXIST;
	}
	pr_info("%d: the vDSO %s; proxying it", t->pid, same ? "does not fit its old place" : "differs from the dumped one");
	return vdso_proxy(t, a, l, img_code, cur_code, cur_code_len);
}

/* The kernel's num_possible_cpus(): the entries of /sys/devices/system/cpu/possible ("0-3,8"). */
static int possible_cpus(void)
{
	char buf[256], *p = buf;
	FILE *f = fopen("/sys/devices/system/cpu/possible", "re");
	int n = 0;

	if (!f)
		return -errno;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = 0;
	fclose(f);
	while (*p >= '0' && *p <= '9') {
		long lo = strtol(p, &p, 10), hi = lo;
		if (*p == '-')
			hi = strtol(p + 1, &p, 10);
		n += hi - lo + 1;
		if (*p == ',')
			p++;
	}
	return n > 0 ? n : -EINVAL;
}

/*
 * The ring io_setup(req) makes: 2 * max(req, 4 * possible CPUs) + 2 slots
 * rounded up to whole pages, nr being what fits (fs/aio.c ioctx_alloc and
 * aio_setup_ring).
 */
static uint64_t aio_ring_nr(uint64_t req, int cpus)
{
	uint64_t n = req > 4ull * cpus ? req : 4ull * cpus;

	return (page_up(32 + 32 * (2 * n + 2)) - 32) / 32;
}

/*
 * The restorer asks for (nr - 2) / 2 events, which gives a ring of the
 * dumped size on any kernel whose smallest ring is not larger: more CPUs
 * than the dumping host may make that impossible (a ring cannot shrink:
 * the kernel keeps writing all of it, and io_destroy unmaps its full size).
 */
static int plan_aio(struct rst_task *t, struct restorer_args *a, const struct args_layout *l)
{
	struct restorer_aio *o = aat(t, l->aio);
	size_t ev = l->aio_events;
	int cpus;

	if (!t->mm->n_aio_rings)
		return 0;
	cpus = possible_cpus();
	if (cpus < 0) {
		pr_errno(cpus, "cannot read /sys/devices/system/cpu/possible");
		return cpus;
	}
	for (size_t i = 0; i < t->mm->n_aio_rings; i++) {
		const AioRingEntry *r = t->mm->aio_rings[i];
		if (aio_ring_nr((r->nr - 2) / 2, cpus) != r->nr) {
			pr_err("the AIO context %#llx of %d has a ring of %u events; with %d possible CPUs this kernel makes none smaller than %llu, so it cannot be restored at its size",
			       (unsigned long long)r->addr, t->pid, r->nr, cpus,
			       (unsigned long long)aio_ring_nr(0, cpus));
			return -EOPNOTSUPP;
		}
		o[i] = (struct restorer_aio){ .addr = r->addr, .len = r->len, .nr = r->nr,
					      .head = r->head, .tail = r->tail, .events_off = ev };
		if (r->events.len)
			memcpy(aat(t, ev), r->events.data, r->events.len);
		ev += r->events.len;
	}
	a->nr_aio = t->mm->n_aio_rings;
	a->aio_off = l->aio;
	return 0;
}

static int mm_prepare(struct rst_ctx *ctx, struct rst_task *t, bool kept,
		      const struct restorer_range *busy, size_t nr_busy)
{
	MmEntry *mm = t->mm;
	struct args_layout l;
	struct proc_vma *own = NULL;
	size_t nown = 0;
	bool *has_pages;
	uint64_t pages_bytes = 0;
	int err = 0;

	has_pages = calloc(mm->n_vmas + 1, sizeof(bool));
	if (!has_pages)
		return -ENOMEM;
	if (!kept)
		err = check_pagemap(ctx, t, has_pages, &pages_bytes);
	if (err)
		goto out;
	/* PR_TIMER_CREATE_RESTORE_IDS(_GET) (77, 2): Linux 6.15+; the restorer turns it on. */
	if (t->core->task->n_posix_timers && prctl(77, 2, 0, 0, 0) < 0) {
		err = -errno;
		pr_err("%d has POSIX timers, but this kernel cannot create timers with given IDs (PR_TIMER_CREATE_RESTORE_IDS, Linux 6.15+)",
		       t->pid);
		goto out;
	}
	for (size_t k = 0; k < t->core->n_threads && !err; k++) {
		const ThreadCoreEntry *th = t->core->threads[k];
		if (!th->has_xsave)
			continue;
		size_t have = th->xsave.len, host = kerndat_xsave_area();
		/* A larger area would make the kernel drop to FXSAVE-only state silently. */
		uint64_t bv = 0;
		if (have >= 520)
			memcpy(&bv, th->xsave.data + 512, sizeof(bv));
		if (bv & ~kerndat_xcr0()) {
			char name[64];
			img_name(IMG_CORE, t->pid, name, sizeof(name));
			err = img_bad_at(name, 0, "threads.xsave",
					 "thread %u: state components 0x%llx are not enabled on this CPU (XCR0 0x%llx)",
					 th->tid, (unsigned long long)bv, (unsigned long long)kerndat_xcr0());
			goto out;
		}
		if (!host || have > host) {
			char name[64];
			img_name(IMG_CORE, t->pid, name, sizeof(name));
			err = img_bad_at(name, 0, "threads.xsave",
					 "thread %u: %zu bytes of xstate, this CPU's XSAVE area is %zu bytes",
					 th->tid, have, host);
			goto out;
		}
	}
	t->pages_bytes = pages_bytes;
	err = open_rfds(ctx, t, kept);
	if (err)
		goto out;
	size_t nr_runs = 0;
	if (!kept)
		for_each_run(t, count_run, &nr_runs);
	layout_args(t, &l, nr_runs, kept);
	t->args_len = l.total;
	/* The blob, its args, the leader's stack, then one stack per other thread. */
	size_t stacks = (t->core->n_threads - 1) * RESTORER_THREAD_STACK_SIZE;
	t->region_len = blob_map_size(BLOB_RESTORER) + l.total + RESTORER_STACK_SIZE + stacks;
	/* ckpt's own mappings: the restorer's place must be free in the child too. */
	if (kept) {
		/* The task's own: its restorer region and vDSO. */
		own = calloc(nr_busy + 1, sizeof(*own));
		if (!own) {
			err = -ENOMEM;
			goto out;
		}
		for (; nown < nr_busy; nown++) {
			own[nown].start = busy[nown].start;
			own[nown].end = busy[nown].end;
		}
	} else {
		err = proc_parse_maps(0, false, &own, &nown);
	}
	if (err) {
		pr_errno(err, "cannot read /proc/self/maps");
		goto out;
	}
	uint64_t region;
	err = find_region(t, own, nown, t->region_len, &region);
	if (err)
		goto out;
	/* Hold the place in ckpt too, so nothing lands there before the fork. */
	void *p = kept ? (void *)region : mmap((void *)region, t->region_len, PROT_NONE,
					       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (p != (void *)region) {
		err = p == MAP_FAILED ? -errno : -EEXIST;
		pr_errno(err, "cannot reserve %#llx for the restorer", (unsigned long long)region);
		if (p != MAP_FAILED)
			munmap(p, t->region_len);
		goto out;
	}
	/* Ours from here: free_ctx unmaps it (a kept task's is in the task only). */
	t->region = region;
	t->args = calloc(1, t->args_len);
	if (!t->args) {
		err = -ENOMEM;
		goto out;
	}
	uint64_t args_addr = t->region + blob_map_size(BLOB_RESTORER);
	struct restorer_args *a = t->args;
	t->stack_top = args_addr + l.total + RESTORER_STACK_SIZE;
	a->magic = RESTORER_MAGIC;
	a->version = RESTORER_ABI_VERSION;
	a->log_fd = t->fd_base;
	a->log_level = log_get_level();
	a->log_start_ns = log_start_ns();
	a->region_start = t->region;
	a->region_end = t->region + t->region_len;
	a->task_size = IMG_TASK_SIZE;

	struct restorer_vma *rv = aat(t, l.vmas);
	size_t names_off = l.names;
	a->vmas_off = l.vmas;
	for (size_t i = 0; i < mm->n_vmas; i++) {
		const VmaEntry *v = mm->vmas[i];
		if (v->kind == VMA_KIND_VDSO || v->kind == VMA_KIND_VVAR)
			continue;
		struct restorer_vma *o = &rv[a->nr_vmas++];
		o->start = v->start;
		o->end = v->end;
		o->pgoff = v->pgoff;
		o->prot = v->prot;
		o->flags = v->flags;
		o->kind = v->kind;
		o->madv = v->has_madv ? v->madv : 0;
		o->fd = v->has_file_id ? (int32_t)(t->fd_base + 3 + v->file_id) : -1;
		if (v->kind == VMA_KIND_SHARED_ANON) {
			size_t idx = 0;
			find_shm(ctx, v->shmid, &idx);
			o->fd = t->fd_base + shm_slot(t, idx);
			o->flags &= ~MAP_ANONYMOUS;
		}
		o->has_pages = has_pages[i];
		if (kept)
			o->fd = -1;
		if (!kept && t->premap && t->premap[i]) {
			/* In place before the restorer runs; only moved, then protected. */
			struct restorer_premap *pm = aat(t, l.premaps);
			pm[a->nr_premaps++] = (struct restorer_premap){ t->premap[i], v->start,
								       v->end - v->start };
			o->premapped = 1;
			o->has_pages = 1;
		}
		if (v->name) {
			size_t n = strlen(v->name) + 1;
			memcpy(aat(t, names_off), v->name, n);
			o->name_off = names_off;
			names_off += n;
		}
	}
	a->runs_off = l.runs;
	if (!kept)
		for_each_run(t, add_run, a);
	/* By file and offset: the restorer reads what follows in one file with one preadv. */
	qsort(aat(t, l.runs), a->nr_runs, sizeof(struct restorer_run), run_file_cmp);
	a->premaps_off = l.premaps;
	qsort(aat(t, l.premaps), a->nr_premaps, sizeof(struct restorer_premap), premap_cmp);
	a->pages_fd = t->fd_base + 1;
	a->nr_close = t->nr_rfds;
	a->close_off = l.close;
	for (size_t i = 0; i < t->nr_rfds; i++)
		((int32_t *)aat(t, l.close))[i] = t->fd_base + i;
	a->locks_off = l.locks;
	a->nr_locks = restore_files_posix_locks(t, aat(t, l.locks));

	a->mm = (struct restorer_mm_map){
		mm->start_code, mm->end_code, mm->start_data, mm->end_data, mm->start_brk, mm->brk,
		mm->start_stack, mm->arg_start, mm->arg_end, mm->env_start, mm->env_end, 0,
		mm->n_auxv * sizeof(uint64_t), mm->has_exe_file_id ? (uint32_t)(t->fd_base + 2) : UINT32_MAX,
	};
	if (mm->n_auxv)
		memcpy(a->auxv, mm->auxv, mm->n_auxv * sizeof(uint64_t));
	if (kept) {
		struct restorer_getfd *g = aat(t, l.getfds);
		a->mm_kept = 1;
		a->engine_pidfd = t->pidfd_slot;
		a->getfds_off = l.getfds;
		for (size_t i = 0; i < t->nr_rfds; i++)
			g[a->nr_getfds++] = (struct restorer_getfd){ t->rfds[i], t->fd_base + (int)i, 1, 0 };
		for (size_t i = 0; i < t->nr_plan; i++)
			g[a->nr_getfds++] = (struct restorer_getfd){ t->plan[i].src, t->plan[i].target,
								     t->plan[i].cloexec, 0 };
		a->fd_top = t->fd_base + t->nr_rfds;
	}
	err = kept ? 0 : plan_vdso(t, a, &l, own, nown);
	if (!err)
		err = plan_aio(t, a, &l);
	if (err)
		goto out;
	fill_task_state(t, a, &l);
	for (size_t k = 0; k < t->core->n_threads; k++)
		fill_sigframe(ctx, t, &l, args_addr, k);
out:
	free(own);
	free(has_pages);
	return err;
}

int restore_mm_prepare(struct rst_ctx *ctx, struct rst_task *t)
{
	return mm_prepare(ctx, t, false, NULL, 0);
}

int restore_mm_prepare_kept(struct rst_ctx *ctx, struct rst_task *t,
			    const struct restorer_range *busy, size_t nr_busy)
{
	return mm_prepare(ctx, t, true, busy, nr_busy);
}

/*
 * plan_vdso() for a task whose vDSO is moved by a fixup: only the place
 * of the running kernel's block, as a fresh restore would put it.
 */
int restore_mm_plan_vdso(struct rst_task *t, uint64_t *ret_at, struct restorer_range *parts,
			 uint32_t *ret_n)
{
	struct restorer_args *a = calloc(1, sizeof(*a));
	struct proc_vma *own = NULL;
	struct args_layout l = {};
	size_t nown = 0;
	int err;

	if (!a)
		return -ENOMEM;
	err = proc_parse_maps(0, false, &own, &nown);
	for (size_t i = 0; i < nown && !err; i++) {
		/* Another kernel's vDSO would need a proxy, which a fixup cannot make. */
		if (!strcmp(own[i].path, "[vdso]") &&
		    !vdso_same(t->mm, own[i].start, own[i].end - own[i].start)) {
			pr_err("the dumped vDSO of %d differs from this kernel's", t->pid);
			err = -EINVAL;
		}
	}
	if (!err) {
		/* No copy of the dumped vDSO to proxy with: it must fit as it is. */
		bool had = t->mm->has_vdso_image;
		t->mm->has_vdso_image = false;
		err = plan_vdso(t, a, &l, own, nown);
		t->mm->has_vdso_image = had;
	}
	if (!err) {
		*ret_at = a->vdso_new_start;
		*ret_n = a->nr_vdso_parts;
		for (uint32_t i = 0; i < a->nr_vdso_parts; i++)
			parts[i] = (struct restorer_range){
				a->vdso_parts[i].start - a->vdso_cur_start + a->vdso_new_start,
				a->vdso_parts[i].end - a->vdso_cur_start + a->vdso_new_start,
			};
	}
	free(own);
	free(a);
	return err;
}

int restore_mm_child(struct rst_task *t)
{
	/* The blob keeps its data next to its code, so it is RWX. */
	void *p = mmap((void *)t->region, t->region_len, PROT_READ | PROT_WRITE | PROT_EXEC,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);

	if (p == MAP_FAILED) {
		pr_perror("cannot map the restorer at %#llx", (unsigned long long)t->region);
		return -errno;
	}
	memcpy(p, blob_bytes(BLOB_RESTORER), blob_size(BLOB_RESTORER));
	memcpy((char *)p + blob_map_size(BLOB_RESTORER), t->args, t->args_len);
	return 0;
}
