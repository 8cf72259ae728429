// SPDX-License-Identifier: MIT
/*
 * `ckpt show DIR --pages [--sums] [--json]` on image directories written here with the
 * codec: a root with data pages, a child whose PE_PARENT runs resolve to the root's sums,
 * a grandchild two levels down and a zombie. The exact text lines (merged runs, and one
 * page a line with the CRC-32C computed here), the JSON objects and their syntax, and
 * hostile pagemaps (a pages file too short or too long, runs out of order or overlapping)
 * rejected with exit 1 and a message naming the file, the entry and the field.
 */
#define LOG_PREFIX "pages_test: "
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "run.h"

#include "inventory.pb-c.h"
#include "pagemap.pb-c.h"
#include "pstree.pb-c.h"

#include "crc32c.h"
#include "image.h"

#define PAGE		4096
#define ROOT		10	/* data pages */
#define CHILD		11	/* parent runs, one the root lacks, and its own data */
#define ZOMBIE		12	/* no images */
#define GRANDCHILD	13	/* a parent run resolved two levels up */
#define TEXT_ADDR	0x400000ull
#define HEAP_ADDR	0x7f0000000000ull

/* ---------------------------------------------------------------- images */

struct run_def {
	uint64_t vaddr;
	uint32_t nr_pages;
	int flags;		/* PE_*, or -1 for no flags field (data) */
};

/* The tree in pstree order, or (root_last) with the root moved to the end. */
static int write_pstree(int dirfd, bool root_last)
{
	static const uint32_t pids[][3] = {	/* pid, ppid, zombie */
		{ ROOT, 0, 0 }, { CHILD, ROOT, 0 }, { ZOMBIE, ROOT, 1 }, { GRANDCHILD, CHILD, 0 },
	};
	const size_t n = sizeof(pids) / sizeof(pids[0]);
	struct img *img = img_open(dirfd, IMG_PSTREE, 0, O_WRONLY);
	int err = 0;

	if (!img)
		return -errno;
	for (size_t k = 0; k < n && !err; k++) {
		PstreeEntry e = PSTREE_ENTRY__INIT;
		size_t i = root_last ? (k + 1) % n : k;
		uint32_t tid = pids[i][0];

		e.pid = e.pgid = e.sid = pids[i][0];
		e.ppid = pids[i][1];
		e.threads = &tid;
		e.n_threads = 1;
		e.has_zombie_status = pids[i][2];
		e.comm = pids[i][2] ? (char *)"zombie" : NULL;
		err = img_write(img, &e);
	}
	if (img_close(img) && !err)
		err = -EIO;
	return err;
}

static int write_pagemap(int dirfd, int pid, const struct run_def *runs, size_t n)
{
	struct img *img = img_open(dirfd, IMG_PAGEMAP, pid, O_WRONLY);
	int err = 0;

	if (!img)
		return -errno;
	for (size_t i = 0; i < n && !err; i++) {
		PagemapEntry e = PAGEMAP_ENTRY__INIT;

		e.vaddr = runs[i].vaddr;
		e.nr_pages = runs[i].nr_pages;
		e.has_flags = runs[i].flags >= 0;
		e.flags = runs[i].flags >= 0 ? runs[i].flags : 0;
		err = img_write(img, &e);
	}
	if (img_close(img) && !err)
		err = -EIO;
	return err;
}

/* Page k of pid's pages file: every byte pid * 16 + k, the last eight bytes its index. */
static void fill_page(uint8_t *page, int pid, int k)
{
	uint64_t idx = k;

	memset(page, pid * 16 + k, PAGE);
	memcpy(page + PAGE - sizeof(idx), &idx, sizeof(idx));
}

static uint32_t page_sum(int pid, int k)
{
	uint8_t page[PAGE];

	fill_page(page, pid, k);
	return crc32c(0, page, PAGE);
}

/* pid's pages file holding the pages ks[0..n) of fill_page()'s numbering (ks NULL: 0 to n - 1). */
static int write_pages_of(int dirfd, int pid, const int *ks, int n)
{
	char name[32];
	uint8_t page[PAGE];
	int fd, err = 0;

	img_name(IMG_PAGES, pid, name, sizeof(name));
	fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	for (int k = 0; k < n && !err; k++) {
		fill_page(page, pid, ks ? ks[k] : k);
		if (write(fd, page, PAGE) != PAGE)
			err = -EIO;
	}
	close(fd);
	return err;
}

/* pid's pages file holding its pages 0 to nr_pages - 1. */
static int write_pages(int dirfd, int pid, int nr_pages)
{
	return write_pages_of(dirfd, pid, NULL, nr_pages);
}

static const struct run_def root_runs[] = {
	{ TEXT_ADDR, 2, PE_PRESENT },			/* pages 0-1 */
	{ TEXT_ADDR + 2 * PAGE, 1, -1 },		/* page 2, adjacent: one merged run */
	{ HEAP_ADDR, 3, PE_PRESENT },			/* pages 3-5 */
};
#define ROOT_PAGES 6

static const struct run_def child_runs[] = {
	{ TEXT_ADDR, 3, PE_PARENT },			/* the root's pages 0-2 */
	{ TEXT_ADDR + 3 * PAGE, 1, PE_PARENT },		/* the root has none here */
	{ HEAP_ADDR, 1, PE_PRESENT },			/* its own page 0 */
	{ HEAP_ADDR + PAGE, 1, PE_PARENT },		/* the root's page 4 */
};
#define CHILD_PAGES 1

static const struct run_def grandchild_runs[] = {
	{ TEXT_ADDR + PAGE, 1, PE_PARENT },		/* the child's parent page, root's 1 */
	{ HEAP_ADDR, 2, PE_PARENT },			/* the child's page 0, root's 4 */
};

/* The good dump; no pages file for the grandchild, which has no data. */
static int write_dump(int dirfd)
{
	int err = write_pstree(dirfd, false);

	if (!err)
		err = write_pagemap(dirfd, ROOT, root_runs, 3);
	if (!err)
		err = write_pages(dirfd, ROOT, ROOT_PAGES);
	if (!err)
		err = write_pagemap(dirfd, CHILD, child_runs, 4);
	if (!err)
		err = write_pages(dirfd, CHILD, CHILD_PAGES);
	if (!err)
		err = write_pagemap(dirfd, GRANDCHILD, grandchild_runs, 2);
	return err;
}

/* ---------------------------------------------------------------- running ckpt */

#define ARGS(...) ((const char *const[]){ __VA_ARGS__, NULL })

static int count_of(const char *text, const char *what)
{
	int n = 0;

	for (const char *p = text; (p = strstr(p, what)); p += strlen(what))
		n++;
	return n;
}

/* ---------------------------------------------------------------- fixture */

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	(void)remove(path);
	return 0;
}

/*
 * Makes a fresh directory in TMPDIR into dir (PATH_MAX) and finds the ckpt binary
 * (PATH_MAX); an O_DIRECTORY fd of dir. *dirfd is -1 until then, for the teardown.
 */
static int dump_dir_open(struct th_meta *_metadata, char *dir, char *ckpt, int *dirfd)
{
	const char *tmp = getenv("TMPDIR");

	*dirfd = -1;
	snprintf(dir, PATH_MAX, "%s/pages_test.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	ASSERT_TRUE(mkdtemp(dir) != NULL);
	*dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ASSERT_LE(0, *dirfd);
	if (!run_find_ckpt(ckpt, PATH_MAX)) {
		TH_LOG("no ckpt binary (set CKPT or build ckpt)");
		ASSERT_TRUE(0);
	}
	return *dirfd;
}

/* Closes dirfd (if open) and removes dir with all in it (if made). */
static void dump_dir_remove(int dirfd, const char *dir)
{
	if (dirfd >= 0)
		close(dirfd);
	if (dir[0])
		nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* `ckpt show DIR --pages` succeeds, prints want and nothing on stderr. */
static void expect_pages(struct th_meta *_metadata, const char *ckpt, const char *dir,
			 const char *want)
{
	struct run_result r;

	run_ckpt(&r, ckpt, ARGS("show", dir, "--pages"));
	EXPECT_EQ(0, r.status);
	EXPECT_STREQ(want, r.out);
	EXPECT_STREQ("", r.err);
	run_result_free(&r);
}

/* out, a --pages --sums --json listing, holds pid's page at addr with flags and crc32c sum. */
static void expect_json_sum(struct th_meta *_metadata, const char *out, int pid, uint64_t addr,
			    const char *flags, uint32_t sum)
{
	char want[256];

	snprintf(want, sizeof(want), "{\"pid\": %d, \"addr\": %llu, \"flags\": \"%s\", "
		 "\"crc32c\": %u}", pid, (unsigned long long)addr, flags, sum);
	EXPECT_TRUE(strstr(out, want) != NULL);
}

FIXTURE(pg)
{
	char dir[PATH_MAX];
	char ckpt[PATH_MAX];
	int dirfd;
};

FIXTURE_SETUP(pg)
{
	ASSERT_EQ(0, write_dump(dump_dir_open(_metadata, self->dir, self->ckpt, &self->dirfd)));
}

FIXTURE_TEARDOWN(pg)
{
	dump_dir_remove(self->dirfd, self->dir);
}

/* ---------------------------------------------------------------- tests */

TEST_F(pg, runs_text)
{
	expect_pages(_metadata, self->ckpt, self->dir,
		     "10 0x400000-0x403000 3 pages data\n"
		     "10 0x7f0000000000-0x7f0000003000 3 pages data\n"
		     "11 0x400000-0x404000 4 pages parent\n"
		     "11 0x7f0000000000-0x7f0000001000 1 pages data\n"
		     "11 0x7f0000001000-0x7f0000002000 1 pages parent\n"
		     "13 0x401000-0x402000 1 pages parent\n"
		     "13 0x7f0000000000-0x7f0000002000 2 pages parent\n");
}

TEST_F(pg, sums_text)
{
	char want[2048];
	size_t n = 0;
	struct run_result r;

#define LINE(pid, addr, flags, sum) \
	(n += snprintf(want + n, sizeof(want) - n, "%d 0x%llx %s %08x\n", pid, \
		       (unsigned long long)(addr), flags, sum))
	for (int k = 0; k < 3; k++)
		LINE(ROOT, TEXT_ADDR + k * PAGE, "data", page_sum(ROOT, k));
	for (int k = 0; k < 3; k++)
		LINE(ROOT, HEAP_ADDR + k * PAGE, "data", page_sum(ROOT, 3 + k));
	for (int k = 0; k < 3; k++)
		LINE(CHILD, TEXT_ADDR + k * PAGE, "parent", page_sum(ROOT, k));
	n += snprintf(want + n, sizeof(want) - n, "%d 0x%llx parent -\n", CHILD,
		      TEXT_ADDR + 3 * PAGE);
	LINE(CHILD, HEAP_ADDR, "data", page_sum(CHILD, 0));
	LINE(CHILD, HEAP_ADDR + PAGE, "parent", page_sum(ROOT, 4));
	LINE(GRANDCHILD, TEXT_ADDR + PAGE, "parent", page_sum(ROOT, 1));
	LINE(GRANDCHILD, HEAP_ADDR, "parent", page_sum(CHILD, 0));
	LINE(GRANDCHILD, HEAP_ADDR + PAGE, "parent", page_sum(ROOT, 4));
#undef LINE
	ASSERT_LT(n, sizeof(want));

	run_ckpt(&r, self->ckpt, ARGS("show", self->dir, "--pages", "--sums"));
	EXPECT_EQ(0, r.status);
	EXPECT_STREQ(want, r.out);
	EXPECT_STREQ("", r.err);
	run_result_free(&r);

	/* Option order does not matter. */
	run_ckpt(&r, self->ckpt, ARGS("show", "--sums", "--pages", self->dir));
	EXPECT_EQ(0, r.status);
	EXPECT_STREQ(want, r.out);
	run_result_free(&r);
}

/* A parent listed after its child is not looked at: its pages' sums are unknown there. */
TEST_F(pg, parent_after_child)
{
	char want[1024];
	size_t n = 0;
	struct run_result r;

	ASSERT_EQ(0, write_pstree(self->dirfd, true));
	for (int k = 0; k < 4; k++)
		n += snprintf(want + n, sizeof(want) - n, "%d 0x%llx parent -\n", CHILD,
			      TEXT_ADDR + k * PAGE);
	n += snprintf(want + n, sizeof(want) - n, "%d 0x%llx data %08x\n", CHILD, HEAP_ADDR,
		      page_sum(CHILD, 0));
	n += snprintf(want + n, sizeof(want) - n, "%d 0x%llx parent -\n", CHILD,
		      HEAP_ADDR + PAGE);
	n += snprintf(want + n, sizeof(want) - n, "%d 0x%llx parent -\n", GRANDCHILD,
		      TEXT_ADDR + PAGE);
	n += snprintf(want + n, sizeof(want) - n, "%d 0x%llx parent %08x\n", GRANDCHILD,
		      HEAP_ADDR, page_sum(CHILD, 0));
	n += snprintf(want + n, sizeof(want) - n, "%d 0x%llx parent -\n", GRANDCHILD,
		      HEAP_ADDR + PAGE);
	ASSERT_LT(n, sizeof(want));

	run_ckpt(&r, self->ckpt, ARGS("show", self->dir, "--pages", "--sums"));
	EXPECT_EQ(0, r.status);
	/* The root's own pages come last. */
	EXPECT_TRUE(!strncmp(want, r.out, n));
	if (strncmp(want, r.out, n))
		TH_LOG("stdout: %s", r.out);
	EXPECT_EQ(6, count_of(r.out + n, "10 0x"));
	run_result_free(&r);
}

TEST_F(pg, json)
{
	struct run_result r;

	run_ckpt(&r, self->ckpt, ARGS("show", self->dir, "--pages", "--json"));
	EXPECT_EQ(0, r.status);
	EXPECT_TRUE(run_json_valid(r.out));
	EXPECT_EQ('[', r.out[0]);
	EXPECT_EQ(7, count_of(r.out, "{\"pid\": "));
	EXPECT_TRUE(strstr(r.out, "\n {\"pid\": 10, \"start\": 4194304, \"end\": 4206592, "
				  "\"pages\": 3, \"flags\": \"data\"},\n") != NULL);
	EXPECT_TRUE(strstr(r.out, "{\"pid\": 11, \"start\": 4194304, \"end\": 4210688, "
				  "\"pages\": 4, \"flags\": \"parent\"}") != NULL);
	run_result_free(&r);

	run_ckpt(&r, self->ckpt, ARGS("show", self->dir, "--pages", "--sums", "--json"));
	EXPECT_EQ(0, r.status);
	EXPECT_TRUE(run_json_valid(r.out));
	EXPECT_EQ(15, count_of(r.out, "{\"pid\": "));
	expect_json_sum(_metadata, r.out, 10, 4194304, "data", page_sum(ROOT, 0));
	expect_json_sum(_metadata, r.out, 13, HEAP_ADDR, "parent", page_sum(CHILD, 0));
	EXPECT_TRUE(strstr(r.out, "{\"pid\": 11, \"addr\": 4206592, \"flags\": \"parent\", "
				  "\"crc32c\": null}") != NULL);
	EXPECT_STREQ("}\n]\n", r.out + strlen(r.out) - 4);
	run_result_free(&r);
}

TEST_F(pg, empty)
{
	struct run_result r;

	/* Only the zombie: nothing to list. */
	ASSERT_EQ(0, unlinkat(self->dirfd, "pstree.img", 0));
	{
		struct img *img = img_open(self->dirfd, IMG_PSTREE, 0, O_WRONLY);
		PstreeEntry e = PSTREE_ENTRY__INIT;
		uint32_t tid = ROOT;

		ASSERT_TRUE(img != NULL);
		e.pid = e.pgid = e.sid = e.ppid = ROOT;
		e.threads = &tid;
		e.n_threads = 1;
		e.has_zombie_status = true;
		ASSERT_EQ(0, img_write(img, &e));
		ASSERT_EQ(0, img_close(img));
	}
	run_ckpt(&r, self->ckpt, ARGS("show", self->dir, "--pages"));
	EXPECT_EQ(0, r.status);
	EXPECT_STREQ("", r.out);
	run_result_free(&r);
	run_ckpt(&r, self->ckpt, ARGS("show", self->dir, "--pages", "--sums", "--json"));
	EXPECT_EQ(0, r.status);
	EXPECT_STREQ("[]\n", r.out);
	run_result_free(&r);
}

TEST_F(pg, usage)
{
	char file[PATH_MAX + 16];
	struct run_result r;

	run_ckpt(&r, self->ckpt, ARGS("show", self->dir, "--sums"));
	EXPECT_EQ(2, r.status);
	run_result_free(&r);
	snprintf(file, sizeof(file), "%s/pagemap-10.img", self->dir);
	run_ckpt(&r, self->ckpt, ARGS("show", file, "--pages"));
	EXPECT_EQ(2, r.status);
	run_result_free(&r);
	run_ckpt(&r, self->ckpt, ARGS("show", "--pages", "--log", self->dir));
	EXPECT_EQ(2, r.status);
	run_result_free(&r);
	run_ckpt(&r, self->ckpt, ARGS("show", self->dir, "--pages", "--since", "3"));
	EXPECT_EQ(2, r.status);
	run_result_free(&r);
}

/* ---------------------------------------------------------------- chains */

/*
 * An incremental dump over the good dump: DIR/base is the dump above (the
 * parent images) with an inventory, DIR itself the delta, whose pagemaps
 * say PE_PREV for most pages. Listed through the chain it must be the
 * base's listing, with "level 1" where the data is the base's.
 */
#define ID_BASE		"0123456789abcdef0123456789abcdef"
#define ID_TOP		"fedcba9876543210fedcba9876543210"
#define ID_OTHER	"00000000000000000000000000000000"

static int write_inventory(int dirfd, const char *id, const char *parent, const char *parent_id,
			   uint64_t parent_seq, uint64_t seq, bool after_thaw)
{
	InventoryEntry e = INVENTORY_ENTRY__INIT;
	uint32_t root = ROOT;

	e.format_version = IMG_FORMAT_VERSION;
	e.kernel = (char *)"6.18";
	e.machine = (char *)"x86_64";
	e.root_pids = &root;
	e.n_root_pids = 1;
	e.dump_id = (char *)id;
	e.parent_images = (char *)parent;
	e.parent_dump_id = (char *)parent_id;
	e.has_parent_changelog_seq = parent != NULL;
	e.parent_changelog_seq = parent_seq;
	e.has_changelog_seq = true;
	e.changelog_seq = seq;
	e.changelog_boot_id = (char *)"boot";
	e.has_changelog_start_ns = true;
	e.changelog_start_ns = 1000;
	e.has_pages_after_thaw = after_thaw;
	e.pages_after_thaw = after_thaw;
	return img_store_one(dirfd, IMG_INVENTORY, 0, &e);
}

static const struct run_def top_root_runs[] = {
	{ TEXT_ADDR, 3, PE_PREV },			/* the base's pages 0-2 */
	{ HEAP_ADDR, 1, PE_PRESENT },			/* rewritten: the same bytes as the base's 3 */
	{ HEAP_ADDR + PAGE, 2, PE_PREV },		/* the base's 4-5 */
};

static const struct run_def top_child_runs[] = {
	{ TEXT_ADDR, 4, PE_PARENT },
	{ HEAP_ADDR, 1, PE_PREV },			/* the base's own page 0 */
	{ HEAP_ADDR + PAGE, 1, PE_PARENT },
};

static int write_delta(int dirfd)
{
	static const int root_pages[] = { 3 };
	int err = write_pstree(dirfd, false);

	if (!err)
		err = write_pagemap(dirfd, ROOT, top_root_runs, 3);
	if (!err)
		err = write_pages_of(dirfd, ROOT, root_pages, 1);
	if (!err)
		err = write_pagemap(dirfd, CHILD, top_child_runs, 3);
	if (!err)
		err = write_pagemap(dirfd, GRANDCHILD, grandchild_runs, 2);
	if (!err)
		err = write_inventory(dirfd, ID_TOP, "base", ID_BASE, 5, 6, false);
	return err;
}

FIXTURE(chain)
{
	char dir[PATH_MAX];
	char base[PATH_MAX + 8];
	char ckpt[PATH_MAX];
	int dirfd, basefd;
};

FIXTURE_SETUP(chain)
{
	self->basefd = -1;
	dump_dir_open(_metadata, self->dir, self->ckpt, &self->dirfd);
	snprintf(self->base, sizeof(self->base), "%s/base", self->dir);
	ASSERT_EQ(0, mkdir(self->base, 0700));
	self->basefd = open(self->base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ASSERT_LE(0, self->basefd);
	ASSERT_EQ(0, write_dump(self->basefd));
	ASSERT_EQ(0, write_inventory(self->basefd, ID_BASE, NULL, NULL, 0, 5, false));
	ASSERT_EQ(0, write_delta(self->dirfd));
}

FIXTURE_TEARDOWN(chain)
{
	if (self->basefd >= 0)
		close(self->basefd);
	dump_dir_remove(self->dirfd, self->dir);
}

TEST_F(chain, runs_text)
{
	expect_pages(_metadata, self->ckpt, self->dir,
		     "10 0x400000-0x403000 3 pages data level 1\n"
		     "10 0x7f0000000000-0x7f0000001000 1 pages data\n"
		     "10 0x7f0000001000-0x7f0000003000 2 pages data level 1\n"
		     "11 0x400000-0x404000 4 pages parent\n"
		     "11 0x7f0000000000-0x7f0000001000 1 pages data level 1\n"
		     "11 0x7f0000001000-0x7f0000002000 1 pages parent\n"
		     "13 0x401000-0x402000 1 pages parent\n"
		     "13 0x7f0000000000-0x7f0000002000 2 pages parent\n");
}

/* The delta's sums are the full dump's, page for page. */
TEST_F(chain, sums_equal_full)
{
	struct run_result full, delta;

	run_ckpt(&full, self->ckpt, ARGS("show", self->base, "--pages", "--sums"));
	run_ckpt(&delta, self->ckpt, ARGS("show", self->dir, "--pages", "--sums"));
	EXPECT_EQ(0, full.status);
	EXPECT_EQ(0, delta.status);
	ASSERT_TRUE(full.out && delta.out);
	/* Where the data lies is no part of the listing: it compares as it is. */
	EXPECT_TRUE(strstr(delta.out, " level ") == NULL);
	EXPECT_STREQ(full.out, delta.out);
	EXPECT_EQ(15, count_of(delta.out, "\n"));
	run_result_free(&full);
	run_result_free(&delta);
}

TEST_F(chain, json)
{
	struct run_result r;

	run_ckpt(&r, self->ckpt, ARGS("show", self->dir, "--pages", "--sums", "--json"));
	EXPECT_EQ(0, r.status);
	EXPECT_TRUE(run_json_valid(r.out));
	expect_json_sum(_metadata, r.out, 10, 4194304, "data", page_sum(ROOT, 0));
	expect_json_sum(_metadata, r.out, 10, HEAP_ADDR, "data", page_sum(ROOT, 3));
	run_result_free(&r);
	run_ckpt(&r, self->ckpt, ARGS("show", self->dir, "--pages", "--json"));
	EXPECT_EQ(0, r.status);
	EXPECT_TRUE(run_json_valid(r.out));
	EXPECT_TRUE(strstr(r.out, "{\"pid\": 11, \"start\": 139637976727552, \"end\": "
				  "139637976731648, \"pages\": 1, \"flags\": \"data\", \"level\": 1}")
		    != NULL);
	run_result_free(&r);
}

/* Three levels: a second delta over the first, changing nothing (PE_PREV through PE_PREV). */
TEST_F(chain, three_levels)
{
	static const struct run_def all_prev[] = { { TEXT_ADDR, 3, PE_PREV }, { HEAP_ADDR, 3, PE_PREV } };
	char top[PATH_MAX + 8];
	int fd;

	snprintf(top, sizeof(top), "%s/top", self->dir);
	ASSERT_EQ(0, mkdir(top, 0700));
	fd = open(top, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, write_pstree(fd, false));
	ASSERT_EQ(0, write_pagemap(fd, ROOT, all_prev, 2));
	ASSERT_EQ(0, write_pagemap(fd, CHILD, top_child_runs, 3));
	ASSERT_EQ(0, write_pagemap(fd, GRANDCHILD, grandchild_runs, 2));
	ASSERT_EQ(0, write_inventory(fd, ID_OTHER, "..", ID_TOP, 6, 7, false));
	close(fd);
	expect_pages(_metadata, self->ckpt, top,
		     "10 0x400000-0x403000 3 pages data level 2\n"
		     "10 0x7f0000000000-0x7f0000001000 1 pages data level 1\n"
		     "10 0x7f0000001000-0x7f0000003000 2 pages data level 2\n"
		     "11 0x400000-0x404000 4 pages parent\n"
		     "11 0x7f0000000000-0x7f0000001000 1 pages data level 2\n"
		     "11 0x7f0000001000-0x7f0000002000 1 pages parent\n"
		     "13 0x401000-0x402000 1 pages parent\n"
		     "13 0x7f0000000000-0x7f0000002000 2 pages parent\n");
}

/* Exit 1 naming what is wrong, nothing listed. */
static void expect_rejected(struct th_meta *_metadata, const char *ckpt, const char *dir,
			    const char *msg)
{
	struct run_result r;

	run_ckpt(&r, ckpt, ARGS("show", dir, "--pages", "--sums"));
	EXPECT_EQ(1, r.status);
	EXPECT_STREQ("", r.out);
	if (!r.err || !strstr(r.err, msg))
		TH_LOG("stderr: %s (wanted '%s')", r.err, msg);
	EXPECT_TRUE(r.err && strstr(r.err, msg) != NULL);
	run_result_free(&r);
}

TEST_F(chain, wrong_parent_id)
{
	char msg[2 * PATH_MAX + 256];

	ASSERT_EQ(0, write_inventory(self->dirfd, ID_TOP, "base", ID_OTHER, 5, 6, false));
	snprintf(msg, sizeof(msg), "images '%s': parent_dump_id " ID_OTHER " is not the dump in "
		 "'%s/base' (its dump_id is " ID_BASE ")", self->dir, self->dir);
	expect_rejected(_metadata, self->ckpt, self->dir, msg);
}

TEST_F(chain, wrong_parent_seq)
{
	ASSERT_EQ(0, write_inventory(self->dirfd, ID_TOP, "base", ID_BASE, 4, 6, false));
	expect_rejected(_metadata, self->ckpt, self->dir, "parent_changelog_seq 4 is not the seq of");
}

TEST_F(chain, missing_parent)
{
	ASSERT_EQ(0, write_inventory(self->dirfd, ID_TOP, "nowhere", ID_BASE, 5, 6, false));
	expect_rejected(_metadata, self->ckpt, self->dir, "cannot open parent_images 'nowhere'");
}

TEST_F(chain, loop)
{
	ASSERT_EQ(0, write_inventory(self->basefd, ID_BASE, "..", ID_TOP, 4, 5, false));
	expect_rejected(_metadata, self->ckpt, self->dir, "the chain is a loop");
}

/* PE_PREV where the level below has only the parent process's page. */
TEST_F(chain, prev_of_parent_page)
{
	static const struct run_def runs[] = {
		{ TEXT_ADDR, 4, PE_PARENT }, { HEAP_ADDR, 2, PE_PREV },
	};

	ASSERT_EQ(0, write_pagemap(self->dirfd, CHILD, runs, 2));
	expect_rejected(_metadata, self->ckpt, self->dir, "has no data for it");
}

/* PE_PREV where the level below has nothing. */
TEST_F(chain, prev_of_nothing)
{
	static const struct run_def runs[] = {
		{ TEXT_ADDR, 4, PE_PREV }, { HEAP_ADDR, 1, PE_PRESENT }, { HEAP_ADDR + PAGE, 2, PE_PREV },
	};

	ASSERT_EQ(0, write_pagemap(self->dirfd, ROOT, runs, 3));
	expect_rejected(_metadata, self->ckpt, self->dir, "page 0x403000 of 10 is PE_PREV, but");
}

/* PE_PREV at the bottom of the chain. */
TEST_F(chain, prev_without_parent)
{
	ASSERT_EQ(0, write_inventory(self->dirfd, ID_TOP, NULL, NULL, 0, 6, false));
	expect_rejected(_metadata, self->ckpt, self->dir,
			"image pagemap-10.img: entry 0: field 'flags': PE_PREV run at 0x400000, "
			"but");
}

TEST_F(chain, missing_pagemap_below)
{
	ASSERT_EQ(0, unlinkat(self->basefd, "pagemap-11.img", 0));
	expect_rejected(_metadata, self->ckpt, self->dir,
			"pagemap-11.img has PE_PREV runs, but");
}

/* A pages file one level down checked against its own pagemap. */
TEST_F(chain, pages_long_below)
{
	char msg[PATH_MAX + 128];

	ASSERT_EQ(0, write_pages(self->basefd, ROOT, ROOT_PAGES + 1));
	snprintf(msg, sizeof(msg), "image %s/base/pages-10.img: size 28672, but its pagemap "
		 "describes 24576 bytes", self->dir);
	expect_rejected(_metadata, self->ckpt, self->dir, msg);
}

/* Restore refuses a --leave-running round as the top of a chain, before anything else. */
TEST_F(chain, restore_after_thaw)
{
	struct run_result r;

	ASSERT_EQ(0, write_inventory(self->dirfd, ID_TOP, "base", ID_BASE, 5, 6, true));
	run_ckpt(&r, self->ckpt, ARGS("restore", "-D", self->dir));
	EXPECT_EQ(1, r.status);
	if (!r.err || !strstr(r.err, "were copied while the tree ran"))
		TH_LOG("stderr: %s", r.err);
	EXPECT_TRUE(r.err && strstr(r.err, "were copied while the tree ran") != NULL);
	run_result_free(&r);
}

/* ---------------------------------------------------------------- hostile dumps */

FIXTURE(bad)
{
	char dir[PATH_MAX];
	char ckpt[PATH_MAX];
	int dirfd;
};

FIXTURE_VARIANT(bad)
{
	int (*mutate)(int dirfd);
	const char *msg;	/* in stderr */
};

/* The root's last run ends one page past the end of its pages file. */
static int m_short(int dirfd)
{
	return write_pages(dirfd, ROOT, ROOT_PAGES - 1);
}

static int m_long(int dirfd)
{
	return write_pages(dirfd, ROOT, ROOT_PAGES + 1);
}

static int m_missing(int dirfd)
{
	return unlinkat(dirfd, "pages-11.img", 0) ? -errno : 0;
}

static int m_unsorted(int dirfd)
{
	const struct run_def runs[] = { child_runs[2], child_runs[0] };

	return write_pagemap(dirfd, CHILD, runs, 2);
}

static int m_overlap(int dirfd)
{
	const struct run_def runs[] = {
		{ TEXT_ADDR, 3, PE_PARENT }, { TEXT_ADDR + 2 * PAGE, 1, PE_PRESENT },
	};

	return write_pagemap(dirfd, CHILD, runs, 2);
}

static int m_huge_run(int dirfd)
{
	const struct run_def runs[] = {
		{ TEXT_ADDR, 1, PE_PRESENT }, { 0x1000000000ull, UINT32_MAX / 2, PE_PRESENT },
	};

	return write_pagemap(dirfd, ROOT, runs, 2);
}

static int m_pages_dir(int dirfd)
{
	return unlinkat(dirfd, "pages-10.img", 0) || mkdirat(dirfd, "pages-10.img", 0700) ?
		-errno : 0;
}

static int m_no_pagemap(int dirfd)
{
	return unlinkat(dirfd, "pagemap-13.img", 0) ? -errno : 0;
}

/* A variant of bad: mutate spoils the good dump so, msg is what ckpt show says to it. */
#define BAD(name, fn, text)								\
	FIXTURE_VARIANT_ADD(bad, name) { .mutate = fn, .msg = text }

BAD(pages_short, m_short,
    "image pagemap-10.img: entry 2: field 'nr_pages': 3 pages at offset 12288 run "
    "past the end of pages-10.img (20480 bytes)");
BAD(pages_long, m_long, "image pages-10.img: size 28672, but its pagemap describes 24576 bytes");
BAD(pages_missing, m_missing, "cannot open 'pages-11.img'");
BAD(unsorted, m_unsorted,
    "image pagemap-11.img: entry 1: field 'vaddr': 0x400000 overlaps or is out of order");
BAD(overlap, m_overlap,
    "image pagemap-11.img: entry 1: field 'vaddr': 0x402000 overlaps or is out of order");
BAD(huge_run, m_huge_run,
    "image pagemap-10.img: entry 1: field 'nr_pages': 2147483647 pages at offset 4096 "
    "run past the end of pages-10.img (24576 bytes)");
BAD(pages_dir, m_pages_dir, "pages file 'pages-10.img' is not a regular file");
BAD(no_pagemap, m_no_pagemap, "pagemap-13.img");

FIXTURE_SETUP(bad)
{
	ASSERT_EQ(0, write_dump(dump_dir_open(_metadata, self->dir, self->ckpt, &self->dirfd)));
	ASSERT_EQ(0, variant->mutate(self->dirfd));
}

FIXTURE_TEARDOWN(bad)
{
	dump_dir_remove(self->dirfd, self->dir);
}

/* Exit 1 with the message, nothing listed, in every output form. */
TEST_F(bad, rejected)
{
	static const char *const forms[][3] = {
		{ "--pages", NULL }, { "--pages", "--sums" }, { "--pages", "--json" },
		{ "--pages", "--sums", "--json" },
	};
	struct run_result r;

	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		run_ckpt(&r, self->ckpt, ARGS("show", self->dir, forms[i][0], forms[i][1],
					      forms[i][2]));
		EXPECT_EQ(1, r.status);
		EXPECT_STREQ("", r.out);
		if (!strstr(r.err, variant->msg))
			TH_LOG("form %zu: stderr: %s", i, r.err);
		EXPECT_TRUE(strstr(r.err, variant->msg) != NULL);
		run_result_free(&r);
	}
}

TEST_HARNESS_MAIN
