// SPDX-License-Identifier: MIT
/*
 * Chains of images (pagechain.h). Resolution walks the chain top-down: the
 * level-0 pagemap becomes a sorted list of sources, and each round replaces
 * the PE_PREV pieces of that list with what the next level has there, one
 * merge walk over two sorted lists, so a chain of L levels of N entries
 * costs O(L * N) and no recursion. Every image may be hostile: entries are
 * checked for order before any offset is summed, and a pages file against
 * its pagemap before its data is used.
 */
#define LOG_PREFIX "chain: "
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pagemap.pb-c.h"

#include "image.h"
#include "log.h"
#include "pagechain.h"

/* Grow c's arrays by one level; the new level's slots are empty. */
static int chain_grow(struct chain *c)
{
	int *fds = realloc(c->dirfds, (c->n + 1) * sizeof(*fds));
	if (!fds)
		return -ENOMEM;
	c->dirfds = fds;
	char **paths = realloc(c->paths, (c->n + 1) * sizeof(*paths));
	if (!paths)
		return -ENOMEM;
	c->paths = paths;
	InventoryEntry **invs = realloc(c->invs, (c->n + 1) * sizeof(*invs));
	if (!invs)
		return -ENOMEM;
	c->invs = invs;
	c->dirfds[c->n] = -1;
	c->paths[c->n] = NULL;
	c->invs[c->n] = NULL;
	c->n++;
	return 0;
}

void chain_close(struct chain *c)
{
	for (size_t i = 0; i < c->n; i++) {
		if (c->dirfds[i] >= 0)
			close(c->dirfds[i]);
		free(c->paths[i]);
		img_free_kind(IMG_INVENTORY, c->invs[i]);
	}
	free(c->dirfds);
	free(c->paths);
	free(c->invs);
	*c = (struct chain){ 0 };
}

/* parent_images as reached from the child's path, for messages. */
static char *chain_join(const char *child, const char *rel)
{
	char *p;

	if (rel[0] == '/')
		return strdup(rel);
	if (asprintf(&p, "%s/%s", child, rel) < 0)
		return NULL;
	return p;
}

static bool chain_str_eq(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

/* The link from level i (a delta) to level i + 1, just opened. 0 or -EINVAL (logged). */
static int chain_check_link(const struct chain *c, size_t i)
{
	const InventoryEntry *ch = c->invs[i], *p = c->invs[i + 1];
	const char *cp = c->paths[i], *pp = c->paths[i + 1];

	if (!p->dump_id || strcmp(p->dump_id, ch->parent_dump_id)) {
		pr_err("images '%s': parent_dump_id %s is not the dump in '%s' (its dump_id is %s)",
		       cp, ch->parent_dump_id, pp, p->dump_id ? p->dump_id : "missing");
		return -EINVAL;
	}
	if (!p->has_changelog_seq || p->changelog_seq != ch->parent_changelog_seq) {
		if (p->has_changelog_seq)
			pr_err("images '%s': parent_changelog_seq %llu is not the seq of '%s' (%llu)",
			       cp, (unsigned long long)ch->parent_changelog_seq, pp,
			       (unsigned long long)p->changelog_seq);
		else
			pr_err("images '%s': parent_changelog_seq %llu, but '%s' has no changelog_seq",
			       cp, (unsigned long long)ch->parent_changelog_seq, pp);
		return -EINVAL;
	}
	if (!chain_str_eq(ch->changelog_boot_id, p->changelog_boot_id)) {
		pr_err("images '%s': changelog_boot_id %s is not the one of '%s' (%s)", cp,
		       ch->changelog_boot_id ? ch->changelog_boot_id : "missing", pp,
		       p->changelog_boot_id ? p->changelog_boot_id : "missing");
		return -EINVAL;
	}
	if (ch->has_changelog_start_ns != p->has_changelog_start_ns ||
	    ch->changelog_start_ns != p->changelog_start_ns) {
		pr_err("images '%s': changelog_start_ns %llu is not the one of '%s' (%llu): another changelog",
		       cp, (unsigned long long)ch->changelog_start_ns, pp,
		       (unsigned long long)p->changelog_start_ns);
		return -EINVAL;
	}
	bool same = ch->n_root_pids == p->n_root_pids;
	for (size_t k = 0; same && k < ch->n_root_pids; k++)
		same = ch->root_pids[k] == p->root_pids[k];
	if (!same) {
		pr_err("images '%s': root_pids are not the ones of '%s' (%zu and %zu roots, first %u and %u)",
		       cp, pp, ch->n_root_pids, p->n_root_pids,
		       ch->n_root_pids ? ch->root_pids[0] : 0, p->n_root_pids ? p->root_pids[0] : 0);
		return -EINVAL;
	}
	return 0;
}

/* Load level i's inventory, and check that its directory is no earlier level's. */
static int chain_load_level(struct chain *c, size_t i, dev_t *devs, ino_t *inos)
{
	struct stat st;
	int err;

	if (fstat(c->dirfds[i], &st) < 0) {
		err = -errno;
		pr_perror("cannot stat '%s'", c->paths[i]);
		return err;
	}
	devs[i] = st.st_dev;
	inos[i] = st.st_ino;
	for (size_t k = 0; k < i; k++) {
		if (devs[k] == st.st_dev && inos[k] == st.st_ino) {
			pr_err("images '%s': parent_images '%s' is '%s' again: the chain is a loop",
			       c->paths[i - 1], c->invs[i - 1]->parent_images, c->paths[k]);
			return -ELOOP;
		}
	}
	err = img_load_one(c->dirfds[i], IMG_INVENTORY, 0, (void **)&c->invs[i]);
	if (err == -ENOENT) {
		if (i)
			pr_err("images '%s': parent_images '%s' holds no complete dump (inventory.img is missing)",
			       c->paths[i - 1], c->paths[i]);
		else
			pr_err("'%s' holds no complete dump (inventory.img is missing)", c->paths[i]);
	} else if (err && i) {
		/* The codec named the file, not which level's it is. */
		pr_err("images '%s': parent_images '%s' has a bad inventory.img", c->paths[i - 1],
		       c->paths[i]);
	}
	return err;
}

int chain_open(int dirfd, const char *path, struct chain *c)
{
	dev_t *devs = NULL;
	ino_t *inos = NULL;
	int err;

	*c = (struct chain){ 0 };
	if (dirfd < 0) {
		dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dirfd < 0) {
			err = -errno;
			pr_perror("cannot open the image directory '%s'", path);
			return err;
		}
	}
	err = chain_grow(c);
	if (err) {
		close(dirfd);
		return err;
	}
	c->dirfds[0] = dirfd;
	c->paths[0] = strdup(path);
	devs = malloc(CHAIN_MAX_LEVELS * sizeof(*devs));
	inos = malloc(CHAIN_MAX_LEVELS * sizeof(*inos));
	if (!c->paths[0] || !devs || !inos) {
		err = -ENOMEM;
		goto out;
	}
	err = chain_load_level(c, 0, devs, inos);
	while (!err && c->invs[c->n - 1]->parent_images) {
		size_t i = c->n - 1;
		const char *rel = c->invs[i]->parent_images;

		if (c->n == CHAIN_MAX_LEVELS) {
			pr_err("images '%s': more than %d levels of parent images", c->paths[0],
			       CHAIN_MAX_LEVELS);
			err = -ELOOP;
			break;
		}
		err = chain_grow(c);
		if (err)
			break;
		c->paths[i + 1] = chain_join(c->paths[i], rel);
		if (!c->paths[i + 1]) {
			err = -ENOMEM;
			break;
		}
		/* openat ignores the child's fd for an absolute path. */
		c->dirfds[i + 1] = openat(c->dirfds[i], rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (c->dirfds[i + 1] < 0) {
			err = -errno;
			pr_perror("images '%s': cannot open parent_images '%s'", c->paths[i], rel);
			break;
		}
		err = chain_load_level(c, i + 1, devs, inos);
		if (!err)
			err = chain_check_link(c, i);
	}
	if (!err && c->n > 1)
		pr_debug("'%s': a chain of %zu images down to '%s'", c->paths[0], c->n,
			 c->paths[c->n - 1]);
out:
	free(devs);
	free(inos);
	if (err)
		chain_close(c);
	return err;
}

int chain_open_one(int dirfd, const char *path, struct chain *c)
{
	int err;

	*c = (struct chain){ 0 };
	err = chain_grow(c);
	if (!err) {
		c->paths[0] = strdup(path);
		if (!c->paths[0])
			err = -ENOMEM;
	}
	if (err) {
		chain_close(c);
		close(dirfd);
		return err;
	}
	c->dirfds[0] = dirfd;
	return 0;
}

/* A growing list of sources. */
struct srcs {
	struct page_src *v;
	size_t n, cap;
};

static int srcs_push(struct srcs *l, struct page_src src)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 64;
		struct page_src *v = realloc(l->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = src;
	return 0;
}

/* Append, merging with the last source when it continues it. */
static int srcs_add(struct srcs *l, uint64_t vaddr, uint64_t len, uint32_t level, uint32_t flags,
		    uint64_t off)
{
	if (l->n) {
		struct page_src *p = &l->v[l->n - 1];
		if (p->vaddr + p->len == vaddr && p->flags == flags && p->level == level &&
		    (flags != PE_PRESENT || p->off + p->len == off)) {
			p->len += len;
			return 0;
		}
	}
	return srcs_push(l, (struct page_src){ vaddr, len, level, flags, off });
}

/* A pagemap entry's kind: no flags field is data, as the dump has always written it. */
static uint32_t chain_pe_flags(const PagemapEntry *e)
{
	if (!e->has_flags || (e->flags & PE_PRESENT))
		return PE_PRESENT;
	return e->flags & PE_PARENT ? PE_PARENT : PE_PREV;
}

/* A level's pagemap: its entries as sources of that level (PE_PREV ones unresolved). */
struct level_map {
	struct page_src *v;
	size_t n;
	uint64_t bytes;		/* of its PE_PRESENT runs: the size its pages file must have */
	bool has_prev;
	bool missing;		/* no pagemap-PID.img */
	char name[PATH_MAX];	/* the pagemap, with the directory below level 0 */
	bool resolved;		/* the level's sources resolved already: each has its level */
};

static void chain_file_name(const struct chain *c, uint32_t level, enum img_kind kind, pid_t pid,
			    char *buf, size_t len)
{
	char name[64];

	img_name(kind, pid, name, sizeof(name));
	if (level == 0)
		snprintf(buf, len, "%s", name);
	else
		snprintf(buf, len, "%s/%s", c->paths[level], name);
}

/* Read level's pagemap of pid into m, checking order. 0 or -errno (logged). */
static int chain_load_map(struct chain *c, uint32_t level, pid_t pid, struct level_map *m)
{
	struct srcs l = { 0 };
	uint64_t prev_end = 0;
	struct img *img;
	void *msg;
	int r, idx = 0;

	*m = (struct level_map){ 0 };
	chain_file_name(c, level, IMG_PAGEMAP, pid, m->name, sizeof(m->name));
	img = img_open(c->dirfds[level], IMG_PAGEMAP, pid, O_RDONLY);
	if (!img) {
		r = -errno;
		if (r == -ENOENT) {
			m->missing = true;
			return 0;
		}
		pr_errno(r, "cannot read %s", m->name);
		return r;
	}
	while ((r = img_read(img, &msg)) == 1) {
		const PagemapEntry *e = msg;
		uint64_t s = e->vaddr, len = (uint64_t)e->nr_pages * IMG_PAGE_SIZE;
		uint32_t flags = chain_pe_flags(e);

		/* The codec bounds each run inside the task size; sorted, the sums cannot overflow. */
		if (s < prev_end) {
			r = img_bad_at(m->name, idx, "vaddr", "%#llx overlaps or is out of order",
				       (unsigned long long)s);
		} else if (flags == PE_PREV && level + 1 == c->n) {
			r = img_bad_at(m->name, idx, "flags",
				       "PE_PREV run at %#llx, but '%s' has no parent images",
				       (unsigned long long)s, c->paths[level]);
		} else {
			prev_end = s + len;
			/* Not merged: entry i stays v[i], for the messages of chain_check_pages. */
			if (srcs_push(&l, (struct page_src){ s, len, level, flags,
							     flags == PE_PRESENT ? m->bytes : 0 }))
				r = -ENOMEM;
			if (flags == PE_PRESENT)
				m->bytes += len;
			m->has_prev |= flags == PE_PREV;
		}
		img_free(img, msg);
		idx++;
		if (r != 1)
			break;
	}
	img_close(img);
	if (r < 0) {
		free(l.v);
		return r;
	}
	m->v = l.v;
	m->n = l.n;
	return 0;
}

/*
 * Check level's pages file against its pagemap: a regular file, each data
 * run inside it, no bytes beyond them. A missing file is fine at level 0
 * when the pagemap has no data (a process whose every page is elsewhere).
 */
static int chain_check_pages(struct chain *c, uint32_t level, pid_t pid, const struct level_map *m)
{
	char name[PATH_MAX], file[64];
	struct stat st;
	int fd, err = 0;

	chain_file_name(c, level, IMG_PAGES, pid, name, sizeof(name));
	img_name(IMG_PAGES, pid, file, sizeof(file));
	/* O_NONBLOCK: a FIFO planted there must not hang us before the type check. */
	fd = openat(c->dirfds[level], file, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		err = -errno;
		if (err == -ENOENT && level == 0 && !m->bytes)
			return 0;
		pr_perror("cannot open '%s'", name);
		return err;
	}
	if (fstat(fd, &st) < 0) {
		err = -errno;
		pr_perror("cannot stat '%s'", name);
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		pr_err("pages file '%s' is not a regular file", name);
		err = -EINVAL;
		goto out;
	}
	for (size_t i = 0; i < m->n; i++) {
		const struct page_src *s = &m->v[i];
		if (s->flags != PE_PRESENT || s->off + s->len <= (uint64_t)st.st_size)
			continue;
		err = img_bad_at(m->name, i, "nr_pages",
				 "%llu pages at offset %llu run past the end of %s (%lld bytes)",
				 (unsigned long long)(s->len / IMG_PAGE_SIZE), (unsigned long long)s->off,
				 name, (long long)st.st_size);
		goto out;
	}
	if ((uint64_t)st.st_size != m->bytes) {
		pr_err("image %s: size %lld, but its pagemap describes %llu bytes", name,
		       (long long)st.st_size, (unsigned long long)m->bytes);
		err = -EINVAL;
	}
out:
	close(fd);
	return err;
}

/*
 * One round: the PE_PREV pieces of cur taken from level's map m, into out.
 * Both lists are sorted and disjoint, so one walk does it.
 */
static int chain_merge(const struct chain *c, uint32_t level, pid_t pid, const struct srcs *cur,
		       const struct level_map *m, struct srcs *out, bool *ret_used)
{
	size_t j = 0;
	int err = 0;

	for (size_t i = 0; i < cur->n && !err; i++) {
		const struct page_src *p = &cur->v[i];
		uint64_t s = p->vaddr, e = p->vaddr + p->len;

		if (p->flags != PE_PREV) {
			err = srcs_add(out, p->vaddr, p->len, p->level, p->flags, p->off);
			continue;
		}
		while (s < e && !err) {
			while (j < m->n && m->v[j].vaddr + m->v[j].len <= s)
				j++;
			if (j == m->n || m->v[j].vaddr > s) {
				pr_err("images '%s': page %#llx of %d is PE_PREV, but '%s' has no data for it (not in %s)",
				       c->paths[level - 1], (unsigned long long)s, pid, c->paths[level],
				       m->name);
				return -EINVAL;
			}
			const struct page_src *q = &m->v[j];
			uint64_t end = e < q->vaddr + q->len ? e : q->vaddr + q->len;
			if (q->flags == PE_PARENT)
				return img_bad_at(m->name, j, "flags",
						  "page %#llx is the parent process's (PE_PARENT), but '%s' takes it as PE_PREV: '%s' has no data for it",
						  (unsigned long long)s, c->paths[level - 1], c->paths[level]);
			if (q->flags == PE_PRESENT)
				*ret_used = true;
			uint32_t l = q->flags == PE_PRESENT && !m->resolved ? level : q->level;
			err = srcs_add(out, s, end - s, l, q->flags,
				       q->flags == PE_PRESENT ? q->off + (s - q->vaddr) : 0);
			s = end;
		}
	}
	return err;
}

/*
 * Level 0 as it is, adjacent runs merged, into cur; *ret_prev: whether
 * it has PE_PREV runs. A missing pagemap is no pages.
 */
static int chain_load_top(struct chain *c, pid_t pid, struct srcs *cur, bool *ret_prev)
{
	struct level_map m;
	int err = chain_load_map(c, 0, pid, &m);

	*ret_prev = false;
	if (err || m.missing)
		return err;
	err = chain_check_pages(c, 0, pid, &m);
	for (size_t i = 0; i < m.n && !err; i++)
		err = srcs_add(cur, m.v[i].vaddr, m.v[i].len, 0, m.v[i].flags, m.v[i].off);
	*ret_prev = m.has_prev;
	free(m.v);
	return err;
}

/* cur as the result: NULL when empty; freed on error. */
static int chain_result(struct srcs *cur, int err, struct page_src **ret, size_t *ret_n)
{
	if (err || !cur->n) {
		free(cur->v);
		*cur = (struct srcs){ 0 };
	}
	*ret = cur->v;
	*ret_n = cur->n;
	return err;
}

int chain_resolve(struct chain *c, pid_t pid, struct page_src **ret, size_t *ret_n)
{
	struct srcs cur = { 0 }, next = { 0 };
	struct level_map m;
	bool prev;
	int err;

	err = chain_load_top(c, pid, &cur, &prev);
	for (uint32_t level = 1; !err && prev; level++) {
		bool used = false;

		/* chain_load_map rejects PE_PREV at the last level: level < c->n here. */
		err = chain_load_map(c, level, pid, &m);
		if (err)
			break;
		if (m.missing) {
			char above[PATH_MAX], file[64];
			chain_file_name(c, level - 1, IMG_PAGEMAP, pid, above, sizeof(above));
			img_name(IMG_PAGEMAP, pid, file, sizeof(file));
			pr_err("%s has PE_PREV runs, but '%s' has no %s: process %d is not in those images",
			       above, c->paths[level], file, pid);
			err = -EINVAL;
			break;
		}
		next.n = 0;
		err = chain_merge(c, level, pid, &cur, &m, &next, &used);
		if (!err && used)
			err = chain_check_pages(c, level, pid, &m);
		free(m.v);
		struct srcs t = cur;
		cur = next;
		next = t;
		prev = false;
		for (size_t i = 0; i < cur.n && !prev; i++)
			prev = cur.v[i].flags == PE_PREV;
	}
	free(next.v);
	return chain_result(&cur, err, ret, ret_n);
}

int chain_pages_fd(struct chain *c, uint32_t level, pid_t pid)
{
	char name[64];
	int fd;

	if (level >= c->n) {
		pr_err("no level %u in the chain of '%s' (%zu levels)", level, c->paths[0], c->n);
		return -EINVAL;
	}
	img_name(IMG_PAGES, pid, name, sizeof(name));
	fd = openat(c->dirfds[level], name, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fd = -errno;
		if (level)
			pr_perror("cannot open '%s/%s'", c->paths[level], name);
		else
			pr_perror("cannot open '%s'", name);
	}
	return fd;
}

int chain_resolve_on(struct chain *c, pid_t pid, const struct page_src *below, size_t nbelow,
		     struct page_src **ret, size_t *ret_n)
{
	struct srcs cur = { 0 }, out = { 0 };
	bool prev, used = false;
	int err = chain_load_top(c, pid, &cur, &prev);

	if (!err && prev) {
		/* below, one level down: what level 1 resolves to, as chain_merge takes it. */
		struct level_map m = { .n = nbelow, .resolved = true };
		m.v = malloc((nbelow ? nbelow : 1) * sizeof(*m.v));
		if (!m.v)
			err = -ENOMEM;
		for (size_t i = 0; !err && i < nbelow; i++) {
			m.v[i] = below[i];
			m.v[i].level++;
		}
		chain_file_name(c, 1, IMG_PAGEMAP, pid, m.name, sizeof(m.name));
		if (!err)
			err = chain_merge(c, 1, pid, &cur, &m, &out, &used);
		free(m.v);
		free(cur.v);
		cur = out;
	}
	return chain_result(&cur, err, ret, ret_n);
}
