// SPDX-License-Identifier: MIT
/*
 * The incremental dump (--prev-images): what a delta takes from its parent
 * images. A page is referred to the parent (PE_PREV) only when all of
 * this holds, and is copied otherwise:
 *   - the process is the same one (no fork, exit or exec under its PID in
 *     the log window, no LOST or GAP for it);
 *   - the parent images hold data for the page (not a hole, not a page
 *     shared with the parent process);
 *   - the page lies in a mapping of the same kind and backing, at the
 *     same offset, in both;
 *   - the scan taken before the re-arm says it was not written, and the
 *     log shows no mapping change or discard over it.
 */
#define LOG_PREFIX "delta: "
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "delta.pb-c.h"
#include "pstree.pb-c.h"

#include "dump.h"
#include "image.h"
#include "log.h"

static int run_cmp(const void *a, const void *b)
{
	const struct dirty_run *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

size_t runs_normalize(struct dirty_run *r, size_t n)
{
	size_t k = 0;

	if (!n)
		return 0;
	qsort(r, n, sizeof(*r), run_cmp);
	for (size_t i = 1; i < n; i++) {
		if (r[i].start <= r[k].end) {
			if (r[i].end > r[k].end)
				r[k].end = r[i].end;
		} else {
			r[++k] = r[i];
		}
	}
	return k + 1;
}

struct runs_out {
	struct dirty_run *r;
	size_t n, cap;
};

static int runs_push(struct runs_out *o, uint64_t s, uint64_t e)
{
	if (s >= e)
		return 0;
	if (o->n && o->r[o->n - 1].end == s) {
		o->r[o->n - 1].end = e;
		return 0;
	}
	if (o->n == o->cap) {
		size_t cap = o->cap ? 2 * o->cap : 16;
		struct dirty_run *n = realloc(o->r, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		o->r = n;
		o->cap = cap;
	}
	o->r[o->n++] = (struct dirty_run){ s, e };
	return 0;
}

static int runs_done(struct runs_out *o, int err, struct dirty_run **ret, size_t *ret_n)
{
	if (err || !o->n) {
		free(o->r);
		o->r = NULL;
		o->n = 0;
	}
	*ret = o->r;
	*ret_n = o->n;
	return err;
}

int runs_intersect(const struct dirty_run *a, size_t na, const struct dirty_run *b, size_t nb,
		   struct dirty_run **ret, size_t *ret_n)
{
	struct runs_out o = { 0 };
	size_t i = 0, j = 0;
	int err = 0;

	while (i < na && j < nb && !err) {
		uint64_t s = a[i].start > b[j].start ? a[i].start : b[j].start;
		uint64_t e = a[i].end < b[j].end ? a[i].end : b[j].end;
		err = runs_push(&o, s, e);
		if (a[i].end < b[j].end)
			i++;
		else
			j++;
	}
	return runs_done(&o, err, ret, ret_n);
}

int runs_subtract(const struct dirty_run *a, size_t na, const struct dirty_run *b, size_t nb,
		  struct dirty_run **ret, size_t *ret_n)
{
	struct runs_out o = { 0 };
	size_t j = 0;
	int err = 0;

	for (size_t i = 0; i < na && !err; i++) {
		uint64_t s = a[i].start;
		while (j < nb && b[j].end <= s)
			j++;
		for (size_t k = j; k < nb && b[k].start < a[i].end && !err; k++) {
			err = runs_push(&o, s, b[k].start);
			if (b[k].end > s)
				s = b[k].end;
		}
		if (!err && s < a[i].end)
			err = runs_push(&o, s, a[i].end);
	}
	return runs_done(&o, err, ret, ret_n);
}

/* Replace *r with *r op b. */
static int runs_apply(struct dirty_run **r, size_t *n, const struct dirty_run *b, size_t nb, bool sub)
{
	struct dirty_run *out;
	size_t nout;
	int err = sub ? runs_subtract(*r, *n, b, nb, &out, &nout)
		      : runs_intersect(*r, *n, b, nb, &out, &nout);

	if (err)
		return err;
	free(*r);
	*r = out;
	*n = nout;
	return 0;
}

static int prev_cmp(const void *a, const void *b)
{
	uint32_t x = (*(PstreeEntry *const *)a)->pid, y = (*(PstreeEntry *const *)b)->pid;

	return (x > y) - (x < y);
}

/* Where e is in ctx->prev_tree. */
static size_t prev_index(const struct dump_ctx *ctx, const PstreeEntry *e)
{
	size_t lo = 0, hi = ctx->nr_prev_tree;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (ctx->prev_tree[mid]->pid < e->pid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The parent's pstree entry of pid (ctx->prev_tree is sorted by PID), or NULL. */
static const PstreeEntry *prev_entry(const struct dump_ctx *ctx, pid_t pid)
{
	PstreeEntry key = { .pid = pid }, *k = &key, **e;

	e = bsearch(&k, ctx->prev_tree, ctx->nr_prev_tree, sizeof(*ctx->prev_tree), prev_cmp);
	return e ? *e : NULL;
}

static int by_pid_cmp_ptr(const void *a, const void *b)
{
	pid_t x = (*(struct dump_task *const *)a)->pid, y = (*(struct dump_task *const *)b)->pid;

	return (x > y) - (x < y);
}

static struct dump_task **task_index(struct dump_ctx *ctx)
{
	if (ctx->by_pid || !ctx->nr_tasks)
		return ctx->by_pid;
	ctx->by_pid = malloc(ctx->nr_tasks * sizeof(*ctx->by_pid));
	if (!ctx->by_pid)
		return NULL;
	for (size_t i = 0; i < ctx->nr_tasks; i++)
		ctx->by_pid[i] = &ctx->tasks[i];
	qsort(ctx->by_pid, ctx->nr_tasks, sizeof(*ctx->by_pid), by_pid_cmp_ptr);
	return ctx->by_pid;
}

struct dump_task *dump_task_by_pid(struct dump_ctx *ctx, pid_t pid)
{
	struct dump_task key = { .pid = pid }, *k = &key, **idx = task_index(ctx), **e;

	if (!idx) {
		for (size_t i = 0; i < ctx->nr_tasks; i++)
			if (ctx->tasks[i].pid == pid)
				return &ctx->tasks[i];
		return NULL;
	}
	e = bsearch(&k, idx, ctx->nr_tasks, sizeof(*idx), by_pid_cmp_ptr);
	return e ? *e : NULL;
}

static int load_prev_procs(struct dump_ctx *ctx);

static bool has_inventory(const char *dir)
{
	char p[PATH_MAX];

	return snprintf(p, sizeof(p), "%s/inventory.img", dir) < (int)sizeof(p) &&
	       !access(p, F_OK);
}

/* to, as a path relative to the directory from (both exist): "../img.0". NULL when it cannot. */
static char *path_between(const char *from, const char *to)
{
	char a[PATH_MAX], b[PATH_MAX], *out;
	size_t common = 0, ups = 0, len;

	if (!realpath(from, a) || !realpath(to, b))
		return NULL;
	/* The longest common directory prefix, component by component. */
	for (size_t i = 0; a[i] && a[i] == b[i]; i++)
		if (a[i + 1] == '/' || !a[i + 1])
			if (b[i + 1] == '/' || !b[i + 1])
				common = i + 1;
	if (common == 1)	/* only the root in common */
		common = 0;
	for (const char *p = a + common; *p; p++)
		ups += *p == '/';
	if (a[common])
		ups += a[common] != '/';
	len = ups * 3 + strlen(b + common) + 2;
	out = malloc(len);
	if (!out)
		return NULL;
	out[0] = 0;
	for (size_t i = 0; i < ups; i++)
		strcat(out, "../");
	strcat(out, b[common] == '/' ? b + common + 1 : b + common);
	if (!out[0])
		strcpy(out, ".");
	return out;
}

int dump_delta_open(struct dump_ctx *ctx)
{
	const struct dump_opts *o = ctx->opts;
	const InventoryEntry *pi;
	char *path;
	int err;

	/*
	 * Relative to -D (what the inventory keeps), or failing that to the
	 * working directory: then the inventory gets the path from -D to it.
	 */
	if (o->prev_images[0] == '/')
		path = strdup(o->prev_images);
	else if (asprintf(&path, "%s/%s", o->dir, o->prev_images) < 0)
		path = NULL;
	ctx->prev_path = strdup(o->prev_images);
	if (!path || !ctx->prev_path) {
		free(path);
		return -ENOMEM;
	}
	if (o->prev_images[0] != '/' && !has_inventory(path) && has_inventory(o->prev_images)) {
		char *rel = path_between(o->dir, o->prev_images);
		if (rel) {
			pr_info("'%s' is taken from the working directory: '%s' from '%s'",
				o->prev_images, rel, o->dir);
			free(ctx->prev_path);
			ctx->prev_path = rel;
			free(path);
			path = strdup(o->prev_images);
			if (!path)
				return -ENOMEM;
		}
	}
	err = chain_open(-1, path, &ctx->prev);
	free(path);
	if (err)
		return err;
	ctx->has_prev = true;
	pi = ctx->prev.invs[0];
	if (!pi->has_changelog_seq || !pi->changelog_boot_id || !pi->dump_id) {
		pr_err("the images in '%s' were not taken with --since-log: there is no changelog position to continue from",
		       o->prev_images);
		return -EINVAL;
	}
	if (pi->n_root_pids != o->nr_roots) {
		pr_err("the images in '%s' have %zu root(s), -t gives %zu", o->prev_images, pi->n_root_pids,
		       o->nr_roots);
		return -EINVAL;
	}
	for (size_t i = 0; i < o->nr_roots; i++) {
		size_t j = 0;
		while (j < pi->n_root_pids && pi->root_pids[j] != (uint32_t)o->roots[i])
			j++;
		if (j == pi->n_root_pids) {
			pr_err("root %d given to -t is not a root of the images in '%s'", o->roots[i],
			       o->prev_images);
			return -EINVAL;
		}
	}
	ctx->prev_seq = pi->changelog_seq;
	err = img_load_all(ctx->prev.dirfds[0], IMG_PSTREE, 0, true, (void ***)&ctx->prev_tree,
			   &ctx->nr_prev_tree);
	if (!err)
		qsort(ctx->prev_tree, ctx->nr_prev_tree, sizeof(*ctx->prev_tree), prev_cmp);
	if (!err)
		err = load_prev_procs(ctx);
	return err;
}

/*
 * Before the freeze, for every live process of the parent images: its mm
 * and the pages the parent images hold data for (not shared with the
 * parent process), so that the frozen part of the dump only looks them
 * up. (prev_procs is in prev_tree's order: by PID.)
 */
static int load_prev_procs(struct dump_ctx *ctx)
{
	ctx->prev_procs = calloc(ctx->nr_prev_tree + 1, sizeof(*ctx->prev_procs));
	if (!ctx->prev_procs)
		return -ENOMEM;
	for (size_t i = 0; i < ctx->nr_prev_tree; i++) {
		const PstreeEntry *e = ctx->prev_tree[i];
		struct dump_prev_proc *pp = &ctx->prev_procs[i];
		struct page_src *src = NULL;
		struct runs_out o = { 0 };
		size_t n = 0;
		int err;

		if (e->has_zombie_status)
			continue;
		err = img_load_one(ctx->prev.dirfds[0], IMG_MM, e->pid, (void **)&pp->mm);
		if (err) {
			pr_errno(err, "cannot read the mm of %u in '%s'", e->pid, ctx->prev_path);
			return err;
		}
		err = chain_resolve(&ctx->prev, e->pid, &src, &n);
		for (size_t k = 0; k < n && !err; k++)
			if (src[k].flags == PE_PRESENT)
				err = runs_push(&o, src[k].vaddr, src[k].vaddr + src[k].len);
		free(src);
		err = runs_done(&o, err, &pp->data, &pp->nr_data);
		if (err)
			return err;
	}
	return 0;
}

const MmEntry *dump_delta_prev_mm(struct dump_ctx *ctx, const struct dump_task *t)
{
	const PstreeEntry *p;

	if (t->prev_mm || !ctx->has_prev || !ctx->prev_procs)
		return t->prev_mm;
	p = prev_entry(ctx, t->pid);
	return p ? ctx->prev_procs[prev_index(ctx, p)].mm : NULL;
}

int dump_delta_plan(struct dump_ctx *ctx)
{
	for (size_t i = 0; i < ctx->nr_tasks; i++) {
		struct dump_task *t = &ctx->tasks[i];
		const PstreeEntry *p = prev_entry(ctx, t->pid);
		struct dump_prev_proc *pp;

		if (!p || p->has_zombie_status)
			t->delta_state = DELTA_NEW;
		else if (!t->delta_state)
			t->delta_state = DELTA_SAME;
		if (t->zombie || t->delta_state == DELTA_NEW)
			continue;
		if (ctx->log_gap && !t->reread[0])
			snprintf(t->reread, sizeof(t->reread),
				 "trackd started again since the parent images (a GAP in the log)");
		/* New and exec'ed processes are read whole anyway: their state says so. */
		if (t->unarmed[0] && t->delta_state == DELTA_SAME && !t->reread[0])
			snprintf(t->reread, sizeof(t->reread), "it had no write tracking (%s)",
				 t->unarmed);
		if (t->reread[0])
			pr_warn("%d is read whole: %s", t->pid, t->reread);
		pp = &ctx->prev_procs[prev_index(ctx, p)];
		t->prev_mm = pp->mm;
		pp->mm = NULL;
		if (t->delta_state == DELTA_SAME && !t->reread[0]) {
			t->prev_ok = pp->data;
			t->nr_prev_ok = pp->nr_data;
			pp->data = NULL;
		}
	}
	return 0;
}

/* A mapping of the parent's, as /proc would show it (the fields build_mm reads). */
static void vma_of_entry(const MmEntry *mm, const VmaEntry *e, struct proc_vma *v)
{
	*v = (struct proc_vma){ .start = e->start, .end = e->end, .pgoff = e->pgoff, .prot = e->prot,
				.shared = e->flags & MAP_SHARED };
	v->vmflags = (e->flags & MAP_GROWSDOWN ? PROC_VMF_GROWSDOWN : 0) |
		     (e->flags & MAP_NORESERVE ? PROC_VMF_NORESERVE : 0) |
		     (e->flags & MAP_LOCKED ? PROC_VMF_LOCKED : 0) |
		     (e->madv & VMA_MADV_HUGEPAGE ? PROC_VMF_HUGEPAGE : 0) |
		     (e->madv & VMA_MADV_NOHUGEPAGE ? PROC_VMF_NOHUGEPAGE : 0) |
		     (e->madv & VMA_MADV_DONTDUMP ? PROC_VMF_DONTDUMP : 0) |
		     (e->madv & VMA_MADV_DONTFORK ? PROC_VMF_DONTCOPY : 0) |
		     (e->madv & VMA_MADV_WIPEONFORK ? PROC_VMF_WIPEONFORK : 0);
	switch (e->kind) {
	case VMA_KIND_ANON:
		if (e->name)
			snprintf(v->path, sizeof(v->path), "[anon:%s]", e->name);
		break;
	case VMA_KIND_FILE_PRIVATE:
	case VMA_KIND_FILE_SHARED: {
		const MapFileEntry *f = mm->files[e->file_id];
		snprintf(v->path, sizeof(v->path), "%s", f->path);
		v->dev_major = major(f->dev);
		v->dev_minor = minor(f->dev);
		v->ino = f->ino;
		break;
	}
	case VMA_KIND_SHARED_ANON:
		v->ino = e->shmid;
		if (e->memfd)
			snprintf(v->path, sizeof(v->path), "/memfd:%s (deleted)", e->memfd);
		else if (e->name)
			snprintf(v->path, sizeof(v->path), "[anon_shmem:%s]", e->name);
		else
			snprintf(v->path, sizeof(v->path), "/dev/zero (deleted)");
		break;
	case VMA_KIND_VDSO:
		snprintf(v->path, sizeof(v->path), "[vdso]");
		break;
	case VMA_KIND_VVAR:
		snprintf(v->path, sizeof(v->path), "[vvar]");
		break;
	}
}

static int vma_start_cmp(const void *a, const void *b)
{
	const struct proc_vma *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/* Whether a reused list can stand for this mm: no deleted files (their ghosts are per dump). */
static bool reusable(const MmEntry *mm)
{
	for (size_t i = 0; i < mm->n_files; i++)
		if (mm->files[i]->has_ghost_id)
			return false;
	return true;
}

static int reuse_maps(struct dump_task *t)
{
	const MmEntry *mm = t->prev_mm;
	size_t n = mm->n_vmas + mm->n_aio_rings;

	t->vmas = calloc(n ? n : 1, sizeof(*t->vmas));
	if (!t->vmas)
		return -ENOMEM;
	for (size_t i = 0; i < mm->n_vmas; i++)
		vma_of_entry(mm, mm->vmas[i], &t->vmas[i]);
	for (size_t i = 0; i < mm->n_aio_rings; i++) {
		struct proc_vma *v = &t->vmas[mm->n_vmas + i];
		*v = (struct proc_vma){ .start = mm->aio_rings[i]->addr,
					.end = mm->aio_rings[i]->addr + mm->aio_rings[i]->len,
					.prot = PROT_READ | PROT_WRITE, .shared = true };
		snprintf(v->path, sizeof(v->path), "/[aio] (deleted)");
	}
	qsort(t->vmas, n, sizeof(*t->vmas), vma_start_cmp);
	t->nr_vmas = n;
	t->maps_reused = true;
	return 0;
}

/* --verify-maps: the reused list must be what /proc shows. */
static int verify_maps(struct dump_ctx *ctx, struct dump_task *t)
{
	struct proc_vma *real;
	size_t n, k = 0;
	int err = proc_parse_maps(t->pid, true, &real, &n);

	if (err) {
		pr_errno(err, "cannot read the mappings of %d", t->pid);
		return err;
	}
	for (size_t i = 0; i < n && !err; i++) {
		const struct proc_vma *r = &real[i], *v = k < t->nr_vmas ? &t->vmas[k] : NULL;
		if (!strcmp(r->path, "[vsyscall]"))
			continue;
		k++;
		if (!v || v->start != r->start || v->end != r->end || v->prot != r->prot ||
		    v->shared != r->shared || ((r->path[0] == '/') && v->pgoff != r->pgoff)) {
			pr_err("--verify-maps: the mapping list of %d taken from '%s' differs from /proc at %#llx-%#llx '%s'",
			       t->pid, ctx->prev_path, (unsigned long long)r->start,
			       (unsigned long long)r->end, r->path);
			err = -EIO;
		}
	}
	if (!err && k != t->nr_vmas) {
		pr_err("--verify-maps: %d has %zu mappings, '%s' lists %zu", t->pid, k, ctx->prev_path,
		       t->nr_vmas);
		err = -EIO;
	}
	free(real);
	if (!err)
		pr_info("%d: the mapping list taken from '%s' matches /proc", t->pid, ctx->prev_path);
	return err;
}

static bool anon_private(const struct proc_vma *v)
{
	return !v->shared && !v->ino &&
	       (!v->path[0] || !strcmp(v->path, "[heap]") || !strcmp(v->path, "[stack]") ||
		!strncmp(v->path, "[anon:", 6));
}

/* v and e map the same memory over their overlap: same kind, backing and file offset. */
static bool same_backing(const MmEntry *mm, const struct proc_vma *v, const VmaEntry *e)
{
	if (e->kind == VMA_KIND_ANON)
		return anon_private(v);
	if (e->kind != VMA_KIND_FILE_PRIVATE || v->shared || v->path[0] != '/')
		return false;
	const MapFileEntry *f = mm->files[e->file_id];
	return f->ino == v->ino && f->dev == makedev(v->dev_major, v->dev_minor) &&
	       v->pgoff - v->start == e->pgoff - e->start;
}

/* Where the mappings now and in the parent images hold the same private memory. */
static int stable_ranges(const struct dump_task *t, struct dirty_run **ret, size_t *ret_n)
{
	const MmEntry *mm = t->prev_mm;
	struct runs_out o = { 0 };
	size_t j = 0;
	int err = 0;

	for (size_t i = 0; i < t->nr_vmas && !err; i++) {
		const struct proc_vma *v = &t->vmas[i];
		while (j < mm->n_vmas && mm->vmas[j]->end <= v->start)
			j++;
		for (size_t k = j; k < mm->n_vmas && mm->vmas[k]->start < v->end && !err; k++) {
			const VmaEntry *e = mm->vmas[k];
			if (!same_backing(mm, v, e))
				continue;
			err = runs_push(&o, e->start > v->start ? e->start : v->start,
					e->end < v->end ? e->end : v->end);
		}
	}
	return runs_done(&o, err, ret, ret_n);
}

int dump_delta_maps(struct dump_ctx *ctx, struct dump_task *t)
{
	struct dirty_run *stable;
	size_t nr_stable;
	int err;

	if (t->delta_state == DELTA_SAME && !t->maps_changed && !t->reread[0] && t->prev_mm &&
	    reusable(t->prev_mm)) {
		err = reuse_maps(t);
		if (!err && ctx->opts->verify_maps)
			err = verify_maps(ctx, t);
	} else {
		err = proc_parse_maps(t->pid, true, &t->vmas, &t->nr_vmas);
		if (err)
			pr_errno(err, "cannot read the mappings of %d", t->pid);
	}
	if (err || !t->prev_ok)
		return err;
	err = stable_ranges(t, &stable, &nr_stable);
	if (!err)
		err = runs_apply(&t->prev_ok, &t->nr_prev_ok, stable, nr_stable, false);
	free(stable);
	if (!err)
		err = runs_apply(&t->prev_ok, &t->nr_prev_ok, t->written, t->nr_written, true);
	if (!err)
		err = runs_apply(&t->prev_ok, &t->nr_prev_ok, t->touched, t->nr_touched, true);
	return err;
}

static bool vma_same(const MmEntry *a, const VmaEntry *x, const MmEntry *b, const VmaEntry *y)
{
	if (x->kind != y->kind || x->prot != y->prot || x->flags != y->flags ||
	    (x->has_madv ? x->madv : 0) != (y->has_madv ? y->madv : 0))
		return false;
	if (x->kind == VMA_KIND_FILE_PRIVATE || x->kind == VMA_KIND_FILE_SHARED)
		return a->files[x->file_id]->ino == b->files[y->file_id]->ino &&
		       a->files[x->file_id]->dev == b->files[y->file_id]->dev &&
		       x->pgoff - x->start == y->pgoff - y->start;
	if (x->kind == VMA_KIND_SHARED_ANON)
		return x->shmid == y->shmid && x->pgoff - x->start == y->pgoff - y->start;
	return true;
}

static int ranges_of(const MmEntry *mm, struct dirty_run **ret, size_t *ret_n)
{
	struct runs_out o = { 0 };
	int err = 0;

	for (size_t i = 0; i < mm->n_vmas && !err; i++)
		err = runs_push(&o, mm->vmas[i]->start, mm->vmas[i]->end);
	return runs_done(&o, err, ret, ret_n);
}

/* delta.img's view of one address space: ranges added, removed, changed in place. */
static int mm_diff(const MmEntry *prev, const MmEntry *cur, DeltaEntry *d)
{
	struct dirty_run *a = NULL, *b = NULL, *add = NULL, *rem = NULL;
	size_t na = 0, nb = 0, nadd = 0, nrem = 0, j = 0;
	struct runs_out chg = { 0 };
	int err = ranges_of(cur, &a, &na);

	if (!err)
		err = ranges_of(prev, &b, &nb);
	if (!err)
		err = runs_subtract(a, na, b, nb, &add, &nadd);
	if (!err)
		err = runs_subtract(b, nb, a, na, &rem, &nrem);
	for (size_t i = 0; i < cur->n_vmas && !err; i++) {
		const VmaEntry *x = cur->vmas[i];
		while (j < prev->n_vmas && prev->vmas[j]->end <= x->start)
			j++;
		for (size_t k = j; k < prev->n_vmas && prev->vmas[k]->start < x->end && !err; k++)
			if (!vma_same(cur, x, prev, prev->vmas[k]))
				err = runs_push(&chg, x->start > prev->vmas[k]->start ? x->start : prev->vmas[k]->start,
						x->end < prev->vmas[k]->end ? x->end : prev->vmas[k]->end);
	}
	free(a);
	free(b);
	/* struct dirty_run is two uint64_t: the pairs DeltaEntry wants. */
	d->added = (uint64_t *)add;
	d->n_added = 2 * nadd;
	d->removed = (uint64_t *)rem;
	d->n_removed = 2 * nrem;
	if (err)
		free(chg.r);
	d->changed = err ? NULL : (uint64_t *)chg.r;
	d->n_changed = err ? 0 : 2 * chg.n;
	return err;
}

static bool has_tid(const uint32_t *l, size_t n, uint32_t tid)
{
	for (size_t i = 0; i < n; i++)
		if (l[i] == tid)
			return true;
	return false;
}

static int write_one(struct img *img, struct dump_task *t, const PstreeEntry *p, const MmEntry *cur)
{
	DeltaEntry d = DELTA_ENTRY__INIT;
	uint32_t tids[t->nr_threads + 1], newt[t->nr_threads + 1], gone[p ? p->n_threads + 1 : 1];
	int err = 0;

	d.pid = t->pid;
	d.state = t->delta_state;
	d.has_ppid = true;
	d.ppid = t->ppid;
	d.has_clone_flags = t->has_clone_flags;
	d.clone_flags = t->clone_flags;
	d.has_regrouped = true;
	d.regrouped = t->regrouped || (p && (p->sid != (uint32_t)t->sid || p->pgid != (uint32_t)t->pgid));
	if (t->reread[0])
		d.reread = t->reread;
	for (size_t k = 0; k < t->nr_threads; k++)
		tids[k] = t->threads[k].it->pid;
	if (t->zombie)
		tids[0] = t->pid;
	size_t nt = t->zombie ? 1 : t->nr_threads;
	if (p && t->delta_state != DELTA_NEW) {
		for (size_t k = 0; k < nt; k++)
			if (!has_tid(p->threads, p->n_threads, tids[k]))
				newt[d.n_new_threads++] = tids[k];
		for (size_t k = 0; k < p->n_threads; k++)
			if (!has_tid(tids, nt, p->threads[k]))
				gone[d.n_gone_threads++] = p->threads[k];
	}
	d.new_threads = newt;
	d.gone_threads = gone;
	if (t->touched) {
		d.touched = (uint64_t *)t->touched;
		d.n_touched = 2 * t->nr_touched;
	}
	d.has_maps_reused = true;
	d.maps_reused = t->maps_reused;
	d.has_data_pages = d.has_prev_pages = !t->zombie;
	d.data_pages = t->data_pages;
	d.prev_pages = t->prev_pages;
	if (t->prev_mm && cur && t->delta_state != DELTA_NEW)
		err = mm_diff(t->prev_mm, cur, &d);
	if (!err)
		err = img_write(img, &d);
	free(d.added);
	free(d.removed);
	free(d.changed);
	return err;
}

/* Called by dump_mm with the task's new mm: delta.img is written as the tasks are dumped. */
int dump_delta_task(struct dump_ctx *ctx, struct dump_task *t, const MmEntry *cur)
{
	if (!ctx->delta_img)
		return 0;
	return write_one(ctx->delta_img, t, prev_entry(ctx, t->pid), cur);
}

int dump_delta_begin(struct dump_ctx *ctx)
{
	ctx->delta_img = img_open(ctx->dirfd, IMG_DELTA, 0, O_WRONLY);
	if (!ctx->delta_img)
		return -errno;
	/* What left first: processes of the parent images not here any more (or not the same). */
	for (size_t i = 0; i < ctx->nr_prev_tree; i++) {
		const PstreeEntry *p = ctx->prev_tree[i];
		const struct dump_task *t = dump_task_by_pid(ctx, p->pid);
		if (t && t->delta_state != DELTA_NEW)
			continue;
		DeltaEntry d = DELTA_ENTRY__INIT;
		d.pid = p->pid;
		d.state = DELTA_EXITED;
		d.has_ppid = true;
		d.ppid = p->ppid;
		int err = img_write(ctx->delta_img, &d);
		if (err)
			return err;
	}
	return 0;
}

int dump_delta_write(struct dump_ctx *ctx)
{
	int err = 0;

	if (!ctx->delta_img)
		return 0;
	/* Zombies have no mm: their entries come here. */
	for (size_t i = 0; i < ctx->nr_tasks && !err; i++)
		if (ctx->tasks[i].zombie)
			err = dump_delta_task(ctx, &ctx->tasks[i], NULL);
	int cerr = img_close(ctx->delta_img);
	ctx->delta_img = NULL;
	return err ? err : cerr;
}

void dump_delta_close(struct dump_ctx *ctx)
{
	if (ctx->delta_img)
		(void)img_close(ctx->delta_img);
	ctx->delta_img = NULL;
	for (size_t i = 0; i < ctx->nr_tasks; i++) {
		struct dump_task *t = &ctx->tasks[i];
		if (t->prev_mm)
			img_free_kind(IMG_MM, t->prev_mm);
		t->prev_mm = NULL;
		free(t->prev_ok);
		free(t->touched);
		free(t->written);
		free(t->known);
		t->known = NULL;
		t->prev_ok = t->touched = t->written = NULL;
	}
	free(ctx->by_pid);
	ctx->by_pid = NULL;
	for (size_t i = 0; ctx->prev_procs && i < ctx->nr_prev_tree; i++) {
		if (ctx->prev_procs[i].mm)
			img_free_kind(IMG_MM, ctx->prev_procs[i].mm);
		free(ctx->prev_procs[i].data);
	}
	free(ctx->prev_procs);
	ctx->prev_procs = NULL;
	if (ctx->prev_tree)
		img_free_all(IMG_PSTREE, (void **)ctx->prev_tree, ctx->nr_prev_tree);
	ctx->prev_tree = NULL;
	if (ctx->has_prev)
		chain_close(&ctx->prev);
	ctx->has_prev = false;
	free(ctx->prev_path);
	ctx->prev_path = NULL;
}
