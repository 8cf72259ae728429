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

static int write_pages(int dirfd, int pid, int nr_pages)
{
	char name[32];
	uint8_t page[PAGE];
	int fd, err = 0;

	img_name(IMG_PAGES, pid, name, sizeof(name));
	fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	for (int k = 0; k < nr_pages && !err; k++) {
		fill_page(page, pid, k);
		if (write(fd, page, PAGE) != PAGE)
			err = -EIO;
	}
	close(fd);
	return err;
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

FIXTURE(pg)
{
	char dir[PATH_MAX];
	char ckpt[PATH_MAX];
	int dirfd;
};

FIXTURE_SETUP(pg)
{
	const char *tmp = getenv("TMPDIR");

	self->dirfd = -1;
	snprintf(self->dir, sizeof(self->dir), "%s/pages_test.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	ASSERT_TRUE(mkdtemp(self->dir) != NULL);
	self->dirfd = open(self->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ASSERT_LE(0, self->dirfd);
	if (!run_find_ckpt(self->ckpt, sizeof(self->ckpt))) {
		TH_LOG("no ckpt binary (set CKPT or build ckpt)");
		ASSERT_TRUE(0);
	}
	ASSERT_EQ(0, write_dump(self->dirfd));
}

FIXTURE_TEARDOWN(pg)
{
	if (self->dirfd >= 0)
		close(self->dirfd);
	if (self->dir[0])
		nftw(self->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---------------------------------------------------------------- tests */

TEST_F(pg, runs_text)
{
	struct run_result r;

	run_ckpt(&r, self->ckpt, ARGS("show", self->dir, "--pages"));
	EXPECT_EQ(0, r.status);
	EXPECT_STREQ("10 0x400000-0x403000 3 pages data\n"
		     "10 0x7f0000000000-0x7f0000003000 3 pages data\n"
		     "11 0x400000-0x404000 4 pages parent\n"
		     "11 0x7f0000000000-0x7f0000001000 1 pages data\n"
		     "11 0x7f0000001000-0x7f0000002000 1 pages parent\n"
		     "13 0x401000-0x402000 1 pages parent\n"
		     "13 0x7f0000000000-0x7f0000002000 2 pages parent\n", r.out);
	EXPECT_STREQ("", r.err);
	run_result_free(&r);
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
	char want[256];
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
	snprintf(want, sizeof(want), "{\"pid\": 10, \"addr\": 4194304, \"flags\": \"data\", "
		 "\"crc32c\": %u}", page_sum(ROOT, 0));
	EXPECT_TRUE(strstr(r.out, want) != NULL);
	snprintf(want, sizeof(want), "{\"pid\": 13, \"addr\": %llu, \"flags\": \"parent\", "
		 "\"crc32c\": %u}", HEAP_ADDR, page_sum(CHILD, 0));
	EXPECT_TRUE(strstr(r.out, want) != NULL);
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

FIXTURE_VARIANT_ADD(bad, pages_short)
{
	.mutate = m_short,
	.msg = "image pagemap-10.img: entry 2: field 'nr_pages': 3 pages at offset 12288 run "
	       "past the end of pages-10.img (20480 bytes)",
};
FIXTURE_VARIANT_ADD(bad, pages_long)
{
	.mutate = m_long,
	.msg = "image pages-10.img: size 28672, but its pagemap describes 24576 bytes",
};
FIXTURE_VARIANT_ADD(bad, pages_missing)
{
	.mutate = m_missing,
	.msg = "cannot open 'pages-11.img'",
};
FIXTURE_VARIANT_ADD(bad, unsorted)
{
	.mutate = m_unsorted,
	.msg = "image pagemap-11.img: entry 1: field 'vaddr': 0x400000 overlaps or is out of order",
};
FIXTURE_VARIANT_ADD(bad, overlap)
{
	.mutate = m_overlap,
	.msg = "image pagemap-11.img: entry 1: field 'vaddr': 0x402000 overlaps or is out of order",
};
FIXTURE_VARIANT_ADD(bad, huge_run)
{
	.mutate = m_huge_run,
	.msg = "image pagemap-10.img: entry 1: field 'nr_pages': 2147483647 pages at offset 4096 "
	       "run past the end of pages-10.img (24576 bytes)",
};
FIXTURE_VARIANT_ADD(bad, pages_dir)
{
	.mutate = m_pages_dir,
	.msg = "pages file 'pages-10.img' is not a regular file",
};
FIXTURE_VARIANT_ADD(bad, no_pagemap)
{
	.mutate = m_no_pagemap,
	.msg = "pagemap-13.img",
};

FIXTURE_SETUP(bad)
{
	const char *tmp = getenv("TMPDIR");

	self->dirfd = -1;
	snprintf(self->dir, sizeof(self->dir), "%s/pages_test.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	ASSERT_TRUE(mkdtemp(self->dir) != NULL);
	self->dirfd = open(self->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ASSERT_LE(0, self->dirfd);
	if (!run_find_ckpt(self->ckpt, sizeof(self->ckpt))) {
		TH_LOG("no ckpt binary (set CKPT or build ckpt)");
		ASSERT_TRUE(0);
	}
	ASSERT_EQ(0, write_dump(self->dirfd));
	ASSERT_EQ(0, variant->mutate(self->dirfd));
}

FIXTURE_TEARDOWN(bad)
{
	if (self->dirfd >= 0)
		close(self->dirfd);
	if (self->dir[0])
		nftw(self->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
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
