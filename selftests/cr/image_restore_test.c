// SPDX-License-Identifier: MIT
/*
 * image_restore_test: hostile images on the restore path. A real dump of a simple victim is
 * taken, then one thing is corrupted with the image codec (or by hand for raw damage) before
 * the restore: a page run outside any mapping, a truncated pages file, overlapping mappings,
 * a mapping naming a file that is not there, an fd naming a file that is not there, an
 * xsave area larger than this CPU's, no inventory, a flipped byte in the core image, a
 * mapped file that changed size. Every restore must fail with a non-zero exit, an error
 * naming the image file (or the path) and, for a bad field, the field; the PID must be free
 * afterwards and no process left. The `control` case restores the untouched dump.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cr.h"
#include "cr_img.h"
#include "image.h"
#include "core.pb-c.h"
#include "files.pb-c.h"
#include "mm.pb-c.h"
#include "pagemap.pb-c.h"

#define PAGE 4096UL
#define MAP_FILE_PAGES 8

CR_FIXTURE(image_restore);

/* ---- the victim ---- */

/*
 * Layout it builds and reports in DIR/info ("area map_file"):
 *   area+0P  RW anon, never touched
 *   area+1P  RW anon, written (one pagemap run of exactly one page)
 *   area+2P  hole
 *   area+3P  PROT_NONE anon, never touched
 * plus a private read-only mapping of DIR/map.dat.
 */
static int victim_simple(void *arg)
{
	static char path[PATH_MAX], info[PATH_MAX + 64];
	unsigned char *area, *file;
	uint64_t h_file;
	int fd, n;

	snprintf(path, sizeof(path), "%s/map.dat", cr_victim_dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	CR_SETUP(fd >= 0, "create '%s'", path);
	for (size_t i = 0; i < MAP_FILE_PAGES * PAGE; i += 512) {
		unsigned char blk[512];

		memset(blk, (int)(i / 512), sizeof(blk));
		CR_SETUP(write(fd, blk, sizeof(blk)) == (ssize_t)sizeof(blk), "write");
	}
	file = mmap(NULL, MAP_FILE_PAGES * PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
	CR_SETUP(file != MAP_FAILED, "mmap file");
	close(fd);
	h_file = cr_hash(file, MAP_FILE_PAGES * PAGE);

	area = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CR_SETUP(area != MAP_FAILED, "mmap");
	CR_SETUP(!munmap(area + 2 * PAGE, PAGE), "munmap");
	CR_SETUP(!mprotect(area + 3 * PAGE, PAGE, PROT_NONE), "mprotect");
	memset(area + PAGE, 0x5c, PAGE);

	snprintf(info, sizeof(info), "%s/info", cr_victim_dir);
	fd = open(info, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	CR_SETUP(fd >= 0, "create '%s'", info);
	n = dprintf(fd, "%lx %s\n", (unsigned long)area, path);
	CR_SETUP(n > 0, "write info");
	close(fd);

	cr_victim_ready_wait();

	for (size_t i = 0; i < PAGE; i++)
		if (area[PAGE + i] != 0x5c) {
			CR_CHECK(0, "anon page differs at byte %zu", i);
			break;
		}
	CR_CHECK(cr_hash(file, MAP_FILE_PAGES * PAGE) == h_file, "file mapping differs");
	return cr_victim_result();
}

/* ---- runner side: what the victim reported, and image editing ---- */

static pid_t dumped;		/* the dumped PID (r->victim is cleared once reaped) */
static uint64_t area;		/* see victim_simple() */
static char map_path[PATH_MAX];
static char field[64];		/* the restore error must also name this, if set */

static int read_info(struct cr_run *r)
{
	char path[PATH_MAX + 16], buf[PATH_MAX + 64];
	unsigned long a;

	snprintf(path, sizeof(path), "%s/info", r->env->dir);
	if (cr_read_file(path, buf, sizeof(buf)) <= 0 ||
	    sscanf(buf, "%lx %4095s", &a, map_path) != 2)
		return cr_fail(r, "cannot read the victim's %s", path);
	area = a;
	return 0;
}

static void img_file(struct cr_run *r, enum img_kind kind, char *buf, size_t size)
{
	char name[64];

	img_name(kind, dumped, name, sizeof(name));
	snprintf(buf, size, "%s/%s", r->imgdir, name);
}

static void expect_error(struct cr_run *r, enum img_kind kind, const char *f)
{
	char name[64];

	img_name(kind, dumped, name, sizeof(name));
	snprintf(r->restore_err, sizeof(r->restore_err), "%s", name);
	snprintf(field, sizeof(field), "%s", f ? f : "");
}

/*
 * Dump, corrupt (the case's `between`), restore. With an error expected: non-zero exit, the
 * error names the file (and field), the PID is free and no process is left.
 */
static int prepare_hostile(struct cr_run *r, pid_t pid)
{
	dumped = pid;
	return read_info(r);
}

static int flow_hostile(struct cr_run *r)
{
	return cr_flow_restore_edited(r, prepare_hostile, field);
}

#define HOSTILE_CASE(name, fn)								\
	CR_CASE(image_restore, name, .victim = victim_simple, .flow = flow_hostile,	\
		.between = fn, .no_leave = true)

HOSTILE_CASE(control, NULL);

/* ---- a pagemap run outside any mapping ---- */

static int move_run(struct cr_run *r, void **list, size_t n, void *arg)
{
	PagemapEntry **pm = (PagemapEntry **)list;
	size_t i;

	for (i = 0; i < n; i++)
		if (pm[i]->vaddr == area + PAGE)
			break;
	if (i == n || pm[i]->nr_pages != 1)
		return cr_fail(r, "no one-page pagemap run at %#llx in the dump",
			       (unsigned long long)(area + PAGE));
	/* Into the hole: still sorted, same number of pages. */
	pm[i]->vaddr = area + 2 * PAGE;
	expect_error(r, IMG_PAGEMAP, "vaddr");
	return 0;
}

static int corrupt_pagemap(struct cr_run *r)
{
	return cr_edit_list(r, IMG_PAGEMAP, dumped, move_run, NULL);
}

HOSTILE_CASE(pagemap_outside_vma, corrupt_pagemap);

/* ---- pages file one page short ---- */

static int corrupt_pages(struct cr_run *r)
{
	char path[PATH_MAX + 64];
	struct stat st;

	img_file(r, IMG_PAGES, path, sizeof(path));
	if (stat(path, &st) < 0)
		return cr_fail(r, "stat '%s': %s", path, strerror(errno));
	if (st.st_size < (off_t)PAGE)
		return cr_fail(r, "'%s' holds no page", path);
	if (truncate(path, st.st_size - PAGE) < 0)
		return cr_fail(r, "truncate '%s': %s", path, strerror(errno));
	expect_error(r, IMG_PAGES, NULL);
	return 0;
}

HOSTILE_CASE(pages_truncated, corrupt_pages);

/* ---- overlapping mappings ---- */

static int overlap_vmas(struct cr_run *r, MmEntry *mm)
{
	for (size_t i = 0; i + 1 < mm->n_vmas; i++)
		if (mm->vmas[i]->end == area + 2 * PAGE &&
		    mm->vmas[i + 1]->start == area + 3 * PAGE) {
			/* Over the hole and one page into the PROT_NONE mapping. */
			mm->vmas[i]->end = area + 4 * PAGE;
			expect_error(r, IMG_MM, "vmas");
			return 0;
		}
	return cr_fail(r, "mapping ending at %#llx not found in the image",
		       (unsigned long long)(area + 2 * PAGE));
}

static int corrupt_overlap(struct cr_run *r)
{
	return cr_edit_mm(r, dumped, overlap_vmas);
}

HOSTILE_CASE(vmas_overlap, corrupt_overlap);

/* ---- a file mapping naming a file id out of range ---- */

static int bad_file_id(struct cr_run *r, MmEntry *mm)
{
	for (size_t i = 0; i < mm->n_vmas; i++)
		if (mm->vmas[i]->kind == VMA_KIND_FILE_PRIVATE && mm->vmas[i]->has_file_id) {
			mm->vmas[i]->file_id = mm->n_files + 5;
			expect_error(r, IMG_MM, "file_id");
			return 0;
		}
	return cr_fail(r, "no private file mapping in the image");
}

static int corrupt_file_id(struct cr_run *r)
{
	return cr_edit_mm(r, dumped, bad_file_id);
}

HOSTILE_CASE(vma_file_id_out_of_range, corrupt_file_id);

/* ---- an fd naming a file id that does not exist ---- */

static int bad_fd_file(struct cr_run *r, void **list, size_t n, void *arg)
{
	FdinfoEntry **fi = (FdinfoEntry **)list;

	if (!n)
		return cr_fail(r, "fdinfo-%d.img has no entry", dumped);
	fi[0]->id = *(size_t *)arg + 3;
	expect_error(r, IMG_FDINFO, "id");
	return 0;
}

static int corrupt_fdinfo(struct cr_run *r)
{
	void **files;
	size_t nfiles;

	if (cr_load_list(r, IMG_FILES, dumped, &files, &nfiles))
		return -1;
	cr_free_list(IMG_FILES, files, nfiles);
	return cr_edit_list(r, IMG_FDINFO, dumped, bad_fd_file, &nfiles);
}

HOSTILE_CASE(fdinfo_file_missing, corrupt_fdinfo);

/* ---- an xsave area larger than this CPU's ---- */

static int corrupt_xsave(struct cr_run *r)
{
	ThreadCoreEntry *th;
	CoreEntry *core;
	uint8_t *p;
	int dirfd, ret = 0;

	dirfd = cr_img_dir(r);
	if (dirfd < 0)
		return -1;
	if (img_load_one(dirfd, IMG_CORE, dumped, (void **)&core)) {
		close(dirfd);
		return cr_fail(r, "cannot load core-%d.img", dumped);
	}
	th = core->threads[0];
	if (!th->has_xsave) {
		ret = cr_skip(r, "the dump has no xsave area (no XSAVE on this CPU)");
		goto out;
	}
	/* The codec's own limits still hold: a multiple of 8, under 1 MiB. */
	p = realloc(th->xsave.data, th->xsave.len + 4096);
	if (!p) {
		ret = cr_fail(r, "out of memory");
		goto out;
	}
	memset(p + th->xsave.len, 0, 4096);
	th->xsave.data = p;
	th->xsave.len += 4096;
	if (img_store_one(dirfd, IMG_CORE, dumped, core))
		ret = cr_fail(r, "cannot write core-%d.img", dumped);
	expect_error(r, IMG_CORE, "xsave");
out:
	img_free_kind(IMG_CORE, core);
	close(dirfd);
	return ret;
}

HOSTILE_CASE(xsave_too_large, corrupt_xsave);

/* ---- no inventory ---- */

static int corrupt_inventory(struct cr_run *r)
{
	char path[PATH_MAX + 64];

	snprintf(path, sizeof(path), "%s/inventory.img", r->imgdir);
	if (unlink(path) < 0)
		return cr_fail(r, "unlink '%s': %s", path, strerror(errno));
	expect_error(r, IMG_INVENTORY, NULL);
	return 0;
}

HOSTILE_CASE(inventory_missing, corrupt_inventory);

/* ---- one flipped byte in the middle of core-PID.img ---- */

static int corrupt_core_byte(struct cr_run *r)
{
	char path[PATH_MAX + 64];
	unsigned char c;
	struct stat st;
	off_t mid;
	int fd;

	img_file(r, IMG_CORE, path, sizeof(path));
	fd = open(path, O_RDWR);
	if (fd < 0 || fstat(fd, &st) < 0) {
		if (fd >= 0)
			close(fd);
		return cr_fail(r, "open '%s': %s", path, strerror(errno));
	}
	mid = st.st_size / 2;
	if (pread(fd, &c, 1, mid) != 1) {
		close(fd);
		return cr_fail(r, "read '%s': %s", path, strerror(errno));
	}
	c ^= 0xff;
	if (pwrite(fd, &c, 1, mid) != 1) {
		close(fd);
		return cr_fail(r, "write '%s': %s", path, strerror(errno));
	}
	close(fd);
	cr_note(r, "flipped byte %lld of %lld in %s", (long long)mid, (long long)st.st_size, path);
	expect_error(r, IMG_CORE, NULL);
	return 0;
}

HOSTILE_CASE(core_flipped_byte, corrupt_core_byte);

/* ---- a mapped file replaced by one of another size ---- */

static int corrupt_mapped_file(struct cr_run *r)
{
	static unsigned char buf[(MAP_FILE_PAGES + 1) * PAGE];
	int fd;

	if (unlink(map_path) < 0)
		return cr_fail(r, "unlink '%s': %s", map_path, strerror(errno));
	fd = open(map_path, O_WRONLY | O_CREAT | O_EXCL, 0644);
	if (fd < 0)
		return cr_fail(r, "create '%s': %s", map_path, strerror(errno));
	memset(buf, 0x11, sizeof(buf));
	if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf)) {
		close(fd);
		return cr_fail(r, "write '%s': %s", map_path, strerror(errno));
	}
	close(fd);
	snprintf(r->restore_err, sizeof(r->restore_err), "%s", map_path);
	field[0] = 0;
	return 0;
}

HOSTILE_CASE(mapped_file_resized, corrupt_mapped_file);

TEST_HARNESS_MAIN
