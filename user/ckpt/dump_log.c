// SPDX-License-Identifier: MIT
#define LOG_PREFIX "dump: "
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "changelog.h"
#include "ctl.h"
#include "dirty.h"
#include "dump.h"
#include "log.h"
#include "image.h"
#include "kcompat.h"
#include "proc.h"
#include "wptrack.h"
#include <pthread.h>
#include <sys/mman.h>

/* Whether START e tracks as many roots as -t gave, each of them among its own. */
static bool dump_log_same_roots(const ChangelogEntry *e, const struct dump_opts *o)
{
	if (e->n_roots != o->nr_roots)
		return false;
	for (size_t i = 0; i < o->nr_roots; i++) {
		size_t j = 0;

		while (j < e->n_roots && e->roots[j] != o->roots[i])
			j++;
		if (j == e->n_roots)
			return false;
	}
	return true;
}

/* The log's START: the roots it tracks must be the dump's. */
static int dump_log_identity(struct dump_ctx *ctx, int dirfd)
{
	const struct dump_opts *o = ctx->opts;
	struct cl_reader *r = cl_reader_open(dirfd);
	ChangelogEntry *e = NULL;
	int err;

	if (!r)
		return -errno;
	err = cl_next(r, &e);
	if (err == 0) {
		pr_err("the changelog in '%s' is empty", o->since_log);
		err = -EINVAL;
	}
	if (err < 0)
		goto out;
	/* The reader checked that the first record is a START with roots and a boot ID. */
	if (!dump_log_same_roots(e, o)) {
		char list[256] = "";
		for (size_t j = 0, len = 0; j < e->n_roots && len < sizeof(list) - 16; j++)
			len += snprintf(list + len, sizeof(list) - len, "%s%d", j ? "," : "",
					e->roots[j]);
		pr_err("the changelog in '%s' tracks the roots %s, not the ones given to -t",
		       o->since_log, list);
		err = -EINVAL;
		goto out;
	}
	snprintf(ctx->log_boot_id, sizeof(ctx->log_boot_id), "%s", e->boot_id);
	ctx->log_start_ns = e->realtime_ns;
	err = 0;
out:
	cl_entry_free(e);
	cl_reader_close(r);
	return err;
}

/* One request to the trackd on the log, with an fd attached when fd >= 0: its answer in ans. */
static int dump_log_request(struct dump_ctx *ctx, int dirfd, const char *req, int fd, char *ans,
			    size_t len)
{
	int sk = ctl_connect(dirfd);
	long n;

	if (sk < 0) {
		pr_errno(sk, "no trackd runs on '%s'", ctx->opts->since_log);
		return sk;
	}
	n = ctl_send(sk, req, strlen(req), fd);
	if (!n)
		n = ctl_recv(sk, ans, len - 1, NULL);
	close(sk);
	if (n < 0) {
		pr_errno(n, "no answer from the trackd on '%s' to '%s'", ctx->opts->since_log, req);
		return n;
	}
	ans[n] = 0;
	return 0;
}

/* `trackd mark`: the MARK's seq and where it starts in the log. */
static int dump_log_request_mark(struct dump_ctx *ctx, int dirfd)
{
	char ans[256], *end;
	int err = dump_log_request(ctx, dirfd, "mark offset", -1, ans, sizeof(ans));

	if (err)
		return err;
	if (strncmp(ans, "ok\n", 3)) {
		pr_err("the trackd on '%s' refused a mark: %s", ctx->opts->since_log, ans);
		return -EIO;
	}
	ctx->log_seq = strtoull(ans + 3, &end, 10);
	ctx->log_offset = *end == ' ' ? strtoull(end + 1, NULL, 10) : 0;
	return ctx->log_seq ? 0 : -EIO;
}

static struct dump_task *dump_log_task(struct dump_ctx *ctx, pid_t pid)
{
	struct dump_task *t = dump_task_by_pid(ctx, pid);

	return t && !t->zombie ? t : NULL;
}

/*
 * Processes trackd could not arm (forked since its last mark, exec'ed, or
 * refused: it cannot seize them while the dump holds them) get a
 * userfaultfd made through the dump's own seize, handed over with `adopt
 * TGID`. Having had no tracking, their memory is read whole this time
 * (task->reread says why). A refusal only costs the next round the same.
 */
static void dump_log_adopt(struct dump_ctx *ctx, int dirfd)
{
	char *ans = malloc(65536), req[64];

	if (!ans || dump_log_request(ctx, dirfd, "status", -1, ans, 65536)) {
		free(ans);
		return;
	}
	for (char *line = ans, *next; line && *line; line = next) {
		struct dump_task *t;
		char res[256], *why;
		int uffd;

		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		if (strncmp(line, "unarmed ", 8))
			continue;
		t = dump_log_task(ctx, strtol(line + 8, &why, 10));
		if (!t)
			continue;
		snprintf(t->unarmed, sizeof(t->unarmed), "%s", *why ? why + 1 : "?");
		uffd = wptrack_take_seized(&t->it);
		if (uffd < 0)
			continue;
		snprintf(req, sizeof(req), "adopt %d", t->pid);
		if (!dump_log_request(ctx, dirfd, req, uffd, res, sizeof(res)) && strncmp(res, "ok", 2))
			pr_warn("the trackd on '%s' did not take the write tracking of %d: %s",
				ctx->opts->since_log, t->pid, res);
		close(uffd);
	}
	free(ans);
}

/*
 * What the frozen process wrote since the last re-arm, or (rearm) the
 * re-arm itself, its report dropped: nothing wrote meanwhile, the tree is
 * frozen and the dump writes only to its parasite's area.
 */
/* One walk over part of a process's address space, possibly in a thread of its own. */
struct scan_job {
	pid_t pid;
	struct dirty_run range;
	bool rearm;
	struct dirty_run *runs;
	struct page_region *known;
	size_t n, nk;
	int err;
};

static void *scan_job_run(void *arg)
{
	struct scan_job *j = arg;
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/pagemap", j->pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	j->err = fd < 0 ? -errno
			: dirty_scan_known(fd, &j->range, 1, j->rearm, &j->runs, &j->n,
					   j->rearm ? NULL : &j->known, &j->nk);
	if (fd >= 0)
		close(fd);
	return NULL;
}

/*
 * Where to cut the address space of t in two for two walks at once: the
 * middle of its registered memory as the parent images saw it (the tree
 * is frozen, PAGEMAP_SCAN takes mmap_lock for reading, the halves do not
 * meet). 0: not worth it (small, no parent images, one CPU).
 */
#define SCAN_SPLIT_MIN (512ull << 20)
static uint64_t dump_log_split(struct dump_ctx *ctx, struct dump_task *t)
{
	const MmEntry *mm = dump_delta_prev_mm(ctx, t);
	uint64_t total = 0, half;

	if (!mm || sysconf(_SC_NPROCESSORS_ONLN) < 2)
		return 0;
	for (size_t i = 0; i < mm->n_vmas; i++)
		total += mm->vmas[i]->end - mm->vmas[i]->start;
	if (total < SCAN_SPLIT_MIN)
		return 0;
	half = total / 2;
	for (size_t i = 0; i < mm->n_vmas; i++) {
		uint64_t len = mm->vmas[i]->end - mm->vmas[i]->start;
		if (half < len)
			return (mm->vmas[i]->start + half) & ~(IMG_PAGE_SIZE - 1);
		half -= len;
	}
	return 0;
}

/* The walk over all of t: in two threads when dump_log_split() says so. */
static int dump_log_walk(struct dump_ctx *ctx, struct dump_task *t, bool rearm,
			 struct scan_job *res)
{
	uint64_t split = dump_log_split(ctx, t);
	struct scan_job hi = { .pid = t->pid, .range = { split, IMG_TASK_SIZE }, .rearm = rearm };
	pthread_t th;

	*res = (struct scan_job){ .pid = t->pid, .range = { 0, split ? split : IMG_TASK_SIZE },
				  .rearm = rearm };
	if (split && pthread_create(&th, NULL, scan_job_run, &hi))
		split = 0, res->range.end = IMG_TASK_SIZE;
	scan_job_run(res);
	if (!split)
		return res->err;
	pthread_join(th, NULL);
	if (!res->err)
		res->err = hi.err;
	/* The halves are disjoint and in order: the lists join end to end. */
	if (!res->err && hi.n) {
		struct dirty_run *r = realloc(res->runs, (res->n + hi.n) * sizeof(*r));
		struct page_region *k = rearm ? NULL
				       : realloc(res->known, (res->nk + hi.nk + 1) * sizeof(*k));
		if (!r || (!rearm && !k)) {
			res->runs = r ? r : res->runs;
			res->known = k ? k : res->known;
			res->err = -ENOMEM;
		} else {
			memcpy(r + res->n, hi.runs, hi.n * sizeof(*r));
			res->runs = r;
			res->n += hi.n;
			if (k) {
				memcpy(k + res->nk, hi.known, hi.nk * sizeof(*k));
				res->known = k;
				res->nk += hi.nk;
			}
		}
	}
	free(hi.runs);
	free(hi.known);
	return res->err;
}

static int dump_log_scan(struct dump_ctx *ctx, struct dump_task *t, bool rearm)
{
	struct scan_job j;
	int err = dump_log_walk(ctx, t, rearm, &j);
	struct page_region *known = j.known;
	struct dirty_run *runs = j.runs;
	size_t n = j.n, nk = j.nk;

	if (err) {
		free(runs);
		free(known);
		pr_errno(err, "cannot %s the written pages of %d", rearm ? "re-arm" : "scan", t->pid);
		return err;
	}
	if (rearm) {
		free(runs);
	} else {
		free(t->written);
		free(t->known);
		t->written = runs;
		t->nr_written = n;
		t->known = known;
		t->nr_known = nk;
	}
	return 0;
}

/*
 * Only once the images are complete: a dump that fails before leaves the
 * tracking as it was, so the next one still sees every page written since
 * the parent's mark. (A failure in the middle of this loop would lose the
 * reports of the processes re-armed already; the ioctl does not fail on a
 * frozen process short of running out of memory.)
 */
int dump_log_rearm(struct dump_ctx *ctx)
{
	int err = 0;

	for (size_t i = 0; !err && i < ctx->nr_tasks; i++)
		if (!ctx->tasks[i].zombie)
			err = dump_log_scan(ctx, &ctx->tasks[i], true);
	return err;
}

/* A mapping change of one process in the log window, in log order. */
struct log_op {
	uint32_t kind;
	bool gone;		/* cancelled: the dump's own parasite, or a map undone */
	uint64_t start, len, old_start, old_len, flags;
};

/* What the log window says of one process (by tgid). */
struct log_proc {
	pid_t tgid;
	bool forked, exited, execed, regrouped, untracked, lost;
	uint64_t clone_flags, lost_count;
	struct log_op *ops;
	size_t nr_ops, cap_ops;
};

/*
 * The log window (parent's mark, this mark], read in two steps: before
 * the freeze as far as the log goes (from the parent's mark's offset), and
 * once frozen the few records up to this mark.
 */
struct log_window {
	struct cl_reader *r;
	struct log_proc *procs;
	size_t n, cap;
	uint32_t *slots;	/* open addressing by tgid: index + 1, 0 free */
	size_t nr_slots;
	bool at_mark, gap, lost_all;
	uint64_t lost_all_count, last_seq;
};

static bool ops_overlap(const struct log_op *o, uint64_t s, uint64_t e)
{
	return (o->start < e && o->start + o->len > s) ||
	       (o->kind == CL_MREMAP && o->old_start < e && o->old_start + o->old_len > s);
}

/*
 * A mapping placed by the kernel (no MAP_FIXED, so it replaced nothing)
 * and unmapped exactly later, with nothing in between reaching outside
 * it, left no trace: the dump's own parasite area is such a pair
 * (mmap, mprotect, munmap), and so is any scratch mapping of the program.
 */
#define LOG_CANCEL_MAX 20000
static void dump_log_cancel(struct log_proc *p)
{
	if (p->nr_ops > LOG_CANCEL_MAX)
		return;
	for (size_t i = 0; i < p->nr_ops; i++) {
		struct log_op *m = &p->ops[i];
		uint64_t s = m->start, e = m->start + m->len;
		size_t j;

		if (m->kind != CL_MMAP || m->gone || (m->flags & (MAP_FIXED | MAP_SHARED)) || !m->len)
			continue;
		for (j = i + 1; j < p->nr_ops; j++) {
			const struct log_op *o = &p->ops[j];
			if (o->gone || !ops_overlap(o, s, e))
				continue;
			if (o->kind == CL_MUNMAP && o->start == s && o->len == m->len)
				break;
			if (o->kind != CL_MPROTECT || o->start < s || o->start + o->len > e) {
				j = p->nr_ops;
				break;
			}
		}
		if (j == p->nr_ops)
			continue;
		for (size_t k = i; k <= j; k++)
			if (!p->ops[k].gone && ops_overlap(&p->ops[k], s, e))
				p->ops[k].gone = true;
	}
}

static int dump_log_add_touched(struct dump_task *t, uint64_t s, uint64_t e)
{
	s &= ~(IMG_PAGE_SIZE - 1);
	e = (e + IMG_PAGE_SIZE - 1) & ~(IMG_PAGE_SIZE - 1);
	if (e > IMG_TASK_SIZE)
		e = IMG_TASK_SIZE;
	if (s >= e)
		return 0;
	struct dirty_run *n = realloc(t->touched, (t->nr_touched + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	t->touched = n;
	t->touched[t->nr_touched++] = (struct dirty_run){ s, e };
	return 0;
}

/* What is left of p's mapping changes, into task t: touched ranges, maps_changed. */
static int dump_log_apply(struct log_proc *p, struct dump_task *t)
{
	uint64_t brk_lo = UINT64_MAX, brk_hi = 0;
	int err = 0;

	dump_log_cancel(p);
	for (size_t i = 0; i < p->nr_ops && !err; i++) {
		const struct log_op *o = &p->ops[i];
		pr_debug("%d: %s %#llx+%#llx flags %#llx%s", t->pid, cl_kind_name(o->kind),
			 (unsigned long long)o->start, (unsigned long long)o->len,
			 (unsigned long long)o->flags, o->gone ? " (undone since)" : "");
		if (o->gone)
			continue;
		if (o->kind != CL_MADVISE)
			t->maps_changed = true;
		switch (o->kind) {
		case CL_MREMAP:
			err = dump_log_add_touched(t, o->old_start, o->old_start + o->old_len);
			/* fall through */
		case CL_MMAP:
		case CL_MUNMAP:
		case CL_MADVISE:
		case CL_SHMAT:
		case CL_IO_SETUP:
			if (!err)
				err = dump_log_add_touched(t, o->start, o->start + o->len);
			break;
		case CL_SHMDT:
		case CL_IO_DESTROY:
			/* The length went with the mapping: the rest of the space counts. */
			err = dump_log_add_touched(t, o->start, IMG_TASK_SIZE);
			break;
		case CL_BRK:
			/* The heap moved between the brks seen (the parent's included). */
			if (o->start + o->len < brk_lo)
				brk_lo = o->start + o->len;
			if (o->start + o->len > brk_hi)
				brk_hi = o->start + o->len;
			break;
		}
	}
	if (!err && brk_hi) {
		uint64_t prev = t->prev_mm ? t->prev_mm->brk : brk_lo;
		err = dump_log_add_touched(t, prev < brk_lo ? prev : brk_lo, prev > brk_hi ? prev : brk_hi);
	}
	if (!err)
		t->nr_touched = runs_normalize(t->touched, t->nr_touched);
	return err;
}

static struct log_proc *window_proc(struct log_window *w, pid_t tgid)
{
	size_t mask, h;

	if (w->n * 2 >= w->nr_slots) {
		size_t nr = w->nr_slots ? 2 * w->nr_slots : 256;
		uint32_t *slots = calloc(nr, sizeof(*slots));
		if (!slots)
			return NULL;
		for (size_t i = 0; i < w->n; i++) {
			h = (uint32_t)w->procs[i].tgid * 2654435761u & (nr - 1);
			while (slots[h])
				h = (h + 1) & (nr - 1);
			slots[h] = i + 1;
		}
		free(w->slots);
		w->slots = slots;
		w->nr_slots = nr;
	}
	mask = w->nr_slots - 1;
	for (h = (uint32_t)tgid * 2654435761u & mask; w->slots[h]; h = (h + 1) & mask)
		if (w->procs[w->slots[h] - 1].tgid == tgid)
			return &w->procs[w->slots[h] - 1];
	if (w->n == w->cap) {
		size_t cap = w->cap ? 2 * w->cap : 64;
		struct log_proc *p = realloc(w->procs, cap * sizeof(*p));
		if (!p)
			return NULL;
		w->procs = p;
		w->cap = cap;
	}
	w->procs[w->n] = (struct log_proc){ .tgid = tgid };
	w->slots[h] = ++w->n;
	return &w->procs[w->n - 1];
}

static struct log_proc *window_find(const struct log_window *w, pid_t tgid)
{
	size_t mask = w->nr_slots - 1;

	for (size_t h = (uint32_t)tgid * 2654435761u & mask; w->nr_slots && w->slots[h]; h = (h + 1) & mask)
		if (w->procs[w->slots[h] - 1].tgid == tgid)
			return &w->procs[w->slots[h] - 1];
	return NULL;
}

static int window_add_op(struct log_proc *p, ChangelogEntry *e)
{
	/* Out of user space (a corrupt record): it counts as touching all of it. */
	if (e->start >= IMG_TASK_SIZE || e->len > IMG_TASK_SIZE - e->start ||
	    e->old_start >= IMG_TASK_SIZE || e->old_len > IMG_TASK_SIZE - e->old_start) {
		e->start = e->old_start = 0;
		e->len = e->old_len = IMG_TASK_SIZE;
	}
	if (p->nr_ops == p->cap_ops) {
		size_t cap = p->cap_ops ? 2 * p->cap_ops : 16;
		struct log_op *n = realloc(p->ops, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		p->ops = n;
		p->cap_ops = cap;
	}
	p->ops[p->nr_ops++] = (struct log_op){ e->kind, false, e->start, e->len, e->old_start,
					       e->old_len, e->flags };
	return 0;
}

/* One record of the window, by its tgid; before the parent's mark, nothing. */
static int window_add(struct dump_ctx *ctx, struct log_window *w, ChangelogEntry *e)
{
	struct log_proc *p = NULL;

	w->last_seq = e->seq;
	if (e->seq == ctx->prev_seq) {
		if (e->kind != CL_MARK) {
			pr_err("record %llu of the changelog in '%s' is a %s, not the mark the images in '%s' were taken at",
			       (unsigned long long)e->seq, ctx->opts->since_log, cl_kind_name(e->kind),
			       ctx->prev_path);
			return -EINVAL;
		}
		w->at_mark = true;
		return 0;
	}
	if (e->seq < ctx->prev_seq)
		return 0;
	if (e->has_tgid && e->kind != CL_GAP && e->kind != CL_LOST) {
		p = window_proc(w, e->tgid);
		if (!p)
			return -ENOMEM;
	}
	switch (e->kind) {
	case CL_GAP:
		w->gap = true;
		break;
	case CL_LOST:
		if (!e->n_tgids) {
			w->lost_all = true;
			w->lost_all_count += e->count;
		}
		for (size_t i = 0; i < e->n_tgids; i++) {
			p = window_proc(w, e->tgids[i]);
			if (!p)
				return -ENOMEM;
			p->lost = true;
			p->lost_count += e->count;
		}
		break;
	case CL_FORK:
		/* A new process (the pid is the new tgid), or its PID is reused. */
		if (e->pid == e->tgid && !p->forked) {
			p->forked = true;
			p->clone_flags = e->flags;
			p->untracked = e->arg1 == 1;
		}
		break;
	case CL_EXIT:
		p->exited |= e->arg1 == 1;	/* a process now under this PID is another */
		break;
	case CL_EXEC:
		p->execed = true;
		break;
	case CL_SETSID:
	case CL_SETPGID:
		p->regrouped = true;
		break;
	case CL_MMAP: case CL_MUNMAP: case CL_MREMAP: case CL_MPROTECT: case CL_BRK:
	case CL_MADVISE: case CL_SHMAT: case CL_SHMDT: case CL_IO_SETUP: case CL_IO_DESTROY:
		return window_add_op(p, e);
	}
	return 0;
}

/* Read on: to the end of what trackd wrote so far (until 0), or up to seq `until`. */
static int window_read(struct dump_ctx *ctx, struct log_window *w, uint64_t until)
{
	ChangelogEntry *e;
	int err = 0;

	cl_reader_follow(w->r);
	while ((!until || w->last_seq < until) && (err = cl_next(w->r, &e)) == 1) {
		err = window_add(ctx, w, e);
		cl_entry_free(e);
		if (err)
			return err;
	}
	if (err < 0)
		return err;
	if (until && w->last_seq < until) {
		pr_err("the changelog in '%s' ends at record %llu, before the mark %llu", ctx->opts->since_log,
		       (unsigned long long)w->last_seq, (unsigned long long)until);
		return -EIO;
	}
	return 0;
}

static void window_free(struct log_window *w)
{
	if (!w)
		return;
	for (size_t i = 0; i < w->n; i++)
		free(w->procs[i].ops);
	free(w->procs);
	free(w->slots);
	cl_reader_close(w->r);
	free(w);
}

/*
 * Before the freeze: open the window at the parent's mark (its offset in
 * the log when the parent images have it, and the record there checked;
 * else from the start) and read what the log has so far.
 */
static int window_open(struct dump_ctx *ctx, int dirfd)
{
	const InventoryEntry *pi = ctx->prev.invs[0];
	struct log_window *w = calloc(1, sizeof(*w));
	int err;

	if (!w)
		return -ENOMEM;
	ctx->win = w;
	w->r = cl_reader_open(dirfd);
	if (!w->r)
		return -errno;
	if (pi->has_changelog_offset) {
		ChangelogEntry *e = NULL;
		bool ok = !cl_reader_seek(w->r, pi->changelog_offset, ctx->prev_seq);
		/* A wrong offset is no error (and says nothing): the log is read from its start then. */
		int level = log_get_level();
		log_set_level(0);
		ok = ok && cl_next(w->r, &e) == 1 && e->seq == ctx->prev_seq && e->kind == CL_MARK;
		log_set_level(level);
		cl_entry_free(e);
		if (ok) {
			w->at_mark = true;
			w->last_seq = ctx->prev_seq;
		} else {
			pr_debug("the parent's mark is not at offset %llu of the log: reading it whole",
				 (unsigned long long)pi->changelog_offset);
			cl_reader_close(w->r);
			w->r = cl_reader_open(dirfd);
			if (!w->r)
				return -errno;
		}
	}
	err = window_read(ctx, w, 0);
	pr_debug("changelog read up to record %llu before the freeze", (unsigned long long)w->last_seq);
	return err;
}

static void dump_log_reread(struct dump_task *t, const char *fmt, unsigned long long v)
{
	if (!t->reread[0])
		snprintf(t->reread, sizeof(t->reread), fmt, v);
}

/* Once frozen and marked: the rest of the window, then what it says of each task. */
static int window_finish(struct dump_ctx *ctx)
{
	struct log_window *w = ctx->win;
	int err = window_read(ctx, w, ctx->log_seq);

	if (!err && !w->at_mark) {
		pr_err("the changelog in '%s' has no record %llu, the mark the images in '%s' were taken at",
		       ctx->opts->since_log, (unsigned long long)ctx->prev_seq, ctx->prev_path);
		err = -EINVAL;
	}
	ctx->log_gap = w->gap;
	for (size_t i = 0; i < ctx->nr_tasks && !err; i++) {
		struct dump_task *t = &ctx->tasks[i];
		struct log_proc *p = t->zombie ? NULL : window_find(w, t->pid);
		if (t->zombie)
			continue;
		if (w->lost_all)
			dump_log_reread(t, "%llu tracker records were lost", w->lost_all_count);
		if (!p)
			continue;
		if (p->lost)
			dump_log_reread(t, "%llu tracker records were lost", p->lost_count);
		if (p->forked || p->exited)
			t->delta_state = DELTA_NEW;
		else if (p->execed)
			t->delta_state = DELTA_EXECED;
		if (p->forked) {
			t->has_clone_flags = true;
			t->clone_flags = p->clone_flags;
		}
		if (p->untracked)
			snprintf(t->reread, sizeof(t->reread),
				 "the tracker's table was full when it was forked");
		t->regrouped = p->regrouped;
		err = dump_log_apply(p, t);
	}
	return err;
}

int dump_log_open(struct dump_ctx *ctx)
{
	int dirfd, err;

	dirfd = open(ctx->opts->since_log, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0) {
		err = -errno;
		pr_perror("cannot open the changelog directory '%s'", ctx->opts->since_log);
		return err;
	}
	ctx->log_dirfd = dirfd;
	err = dump_log_identity(ctx, dirfd);
	if (!err && ctx->has_prev) {
		const InventoryEntry *pi = ctx->prev.invs[0];
		if (!pi->changelog_boot_id || strcmp(pi->changelog_boot_id, ctx->log_boot_id) ||
		    pi->changelog_start_ns != ctx->log_start_ns) {
			pr_err("the images in '%s' were not taken with the changelog in '%s' (another trackd run or host)",
			       ctx->prev_path, ctx->opts->since_log);
			err = -EINVAL;
		}
	}
	if (!err && ctx->has_prev)
		err = window_open(ctx, dirfd);
	return err;
}

int dump_log_forget(struct dump_ctx *ctx)
{
	char ans[256];
	int err = ctx->log_dirfd < 0 ? -EBADF
				     : dump_log_request(ctx, ctx->log_dirfd, "lost", -1, ans, sizeof(ans));

	if (!err && strncmp(ans, "ok\n", 3))
		err = -EIO;
	if (err)
		pr_err("the write tracking was re-armed before the dump failed, and the log in '%s' could not say so: "
		       "a later delta would miss pages; take a full dump (without --prev-images) next",
		       ctx->opts->since_log);
	else
		pr_info("the dump failed after re-arming the write tracking: record %llu of the log says so",
			strtoull(ans + 3, NULL, 10));
	return err;
}

void dump_log_close(struct dump_ctx *ctx)
{
	window_free(ctx->win);
	ctx->win = NULL;
	if (ctx->log_dirfd >= 0)
		close(ctx->log_dirfd);
	ctx->log_dirfd = -1;
}

int dump_log_mark(struct dump_ctx *ctx)
{
	int dirfd = ctx->log_dirfd, err = 0;

	/* The harvest first, before trackd arms anything new. */
	for (size_t i = 0; !err && i < ctx->nr_tasks; i++)
		if (!ctx->tasks[i].zombie)
			err = dump_log_scan(ctx, &ctx->tasks[i], false);
	pr_debug("written pages harvested");
	/* trackd registers what is new (it needs no ptrace for that); the rest is adopted. */
	if (!err)
		err = dump_log_request_mark(ctx, dirfd);
	pr_debug("mark taken");
	if (!err)
		dump_log_adopt(ctx, dirfd);
	pr_debug("untracked processes handed to trackd");
	if (!err && ctx->has_prev && ctx->log_seq <= ctx->prev_seq) {
		pr_err("the changelog in '%s' is at %llu, behind the images in '%s' (%llu)",
		       ctx->opts->since_log, (unsigned long long)ctx->log_seq, ctx->prev_path,
		       (unsigned long long)ctx->prev_seq);
		err = -EINVAL;
	}
	if (!err && ctx->has_prev)
		err = window_finish(ctx);
	if (!err)
		pr_info("changelog '%s': mark %llu", ctx->opts->since_log,
			(unsigned long long)ctx->log_seq);
	return err;
}
