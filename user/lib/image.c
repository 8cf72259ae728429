// SPDX-License-Identifier: MIT
#define LOG_PREFIX "img: "
#include <endian.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core.pb-c.h"
#include "delta.pb-c.h"
#include "files.pb-c.h"
#include "inventory.pb-c.h"
#include "mm.pb-c.h"
#include "pagemap.pb-c.h"
#include "pstree.pb-c.h"

#include "crc32c.h"
#include "image.h"
#include "log.h"

#define PID_MAX (1u << 22)			/* PID_MAX_LIMIT on 64-bit */
/* <linux/signal.h> has it (4.7+) but clashes with glibc's <signal.h>. */
#ifndef SS_AUTODISARM
#define SS_AUTODISARM (1u << 31)
#endif

struct img {
	enum img_kind kind;
	char path[64];
	int fd;
	/* read side */
	uint8_t *buf;
	size_t len, off;
	int entry;
	/* write side */
	uint8_t *wbuf;
	size_t wlen, wcap;
	int werr;
};

typedef int (*img_check_fn)(const struct img *img, const void *msg);

struct img_kind_desc {
	const char *fmt;	/* file name; %d is the PID */
	uint32_t magic;
	const ProtobufCMessageDescriptor *desc;
	img_check_fn check;
};

static int check_inventory(const struct img *img, const void *msg);
static int check_pstree(const struct img *img, const void *msg);
static int check_core(const struct img *img, const void *msg);
static int check_mm(const struct img *img, const void *msg);
static int check_pagemap(const struct img *img, const void *msg);
static int check_file(const struct img *img, const void *msg);
static int check_fdinfo(const struct img *img, const void *msg);
static int check_pipe_data(const struct img *img, const void *msg);
static int check_ghost(const struct img *img, const void *msg);
static int check_delta(const struct img *img, const void *msg);

static const struct img_kind_desc kinds[IMG_NR_KINDS] = {
	[IMG_INVENTORY] = { "inventory.img", 0x494e5631, &inventory_entry__descriptor, check_inventory },
	[IMG_PSTREE] = { "pstree.img", 0x50535431, &pstree_entry__descriptor, check_pstree },
	[IMG_CORE] = { "core-%d.img", 0x434f5231, &core_entry__descriptor, check_core },
	[IMG_MM] = { "mm-%d.img", 0x4d4d4931, &mm_entry__descriptor, check_mm },
	[IMG_PAGEMAP] = { "pagemap-%d.img", 0x50474d31, &pagemap_entry__descriptor, check_pagemap },
	[IMG_FILES] = { "files.img", 0x464c5331, &file_entry__descriptor, check_file },
	[IMG_FDINFO] = { "fdinfo-%d.img", 0x46444931, &fdinfo_entry__descriptor, check_fdinfo },
	[IMG_PIPES_DATA] = { "pipes-data.img", 0x50495031, &pipe_data_entry__descriptor, check_pipe_data },
	[IMG_GHOST] = { "ghost-files.img", 0x47485331, &ghost_file_entry__descriptor, check_ghost },
	[IMG_DELTA] = { "delta.img", 0x444c5431, &delta_entry__descriptor, check_delta },
};

void img_name(enum img_kind kind, int pid, char *buf, size_t len)
{
	if (kind == IMG_PAGES)
		snprintf(buf, len, "pages-%d.img", pid);
	else
		snprintf(buf, len, kinds[kind].fmt, pid);
}

const char *img_kind_name(enum img_kind kind)
{
	static const char *names[] = {
		[IMG_INVENTORY] = "inventory", [IMG_PSTREE] = "pstree", [IMG_CORE] = "core",
		[IMG_MM] = "mm", [IMG_PAGEMAP] = "pagemap", [IMG_FILES] = "files",
		[IMG_FDINFO] = "fdinfo", [IMG_PIPES_DATA] = "pipes-data", [IMG_GHOST] = "ghost-files",
		[IMG_DELTA] = "delta", [IMG_PAGES] = "pages",
	};
	return kind <= IMG_PAGES ? names[kind] : "?";
}

const void *img_kind_descriptor(enum img_kind kind)
{
	return kind < IMG_NR_KINDS ? kinds[kind].desc : NULL;
}

enum img_kind img_kind_of_name(const char *name, int *ret_pid)
{
	char buf[64];
	int pid;

	for (int k = 0; k <= IMG_PAGES; k++) {
		const char *fmt = k == IMG_PAGES ? "pages-%d.img" : kinds[k].fmt;
		if (!strchr(fmt, '%')) {
			if (!strcmp(name, fmt)) {
				*ret_pid = 0;
				return k;
			}
			continue;
		}
		if (sscanf(name, fmt, &pid) == 1 && pid > 0) {
			snprintf(buf, sizeof(buf), fmt, pid);
			if (!strcmp(buf, name)) {
				*ret_pid = pid;
				return k;
			}
		}
	}
	return IMG_NR_KINDS + 1;
}

const char *img_path(const struct img *img)
{
	return img->path;
}

int img_entry_index(const struct img *img)
{
	return img->entry;
}

int img_bad_at(const char *file, int entry, const char *field, const char *fmt, ...)
{
	char why[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	log_printf(LOG_ERR, "Error: image %s: entry %d: field '%s': %s\n", file, entry, field, why);
	return -EINVAL;
}

int img_bad(const struct img *img, const char *field, const char *fmt, ...)
{
	char why[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	return img_bad_at(img->path, img->entry, field, "%s", why);
}

static void img_destroy(struct img *img)
{
	if (!img)
		return;
	if (img->fd >= 0)
		close(img->fd);
	free(img->buf);
	free(img->wbuf);
	free(img);
}

static int img_flush(struct img *img)
{
	size_t done = 0;

	while (!img->werr && done < img->wlen) {
		ssize_t n = write(img->fd, img->wbuf + done, img->wlen - done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			img->werr = -errno;
			pr_perror("cannot write image %s", img->path);
			break;
		}
		done += n;
	}
	img->wlen = 0;
	return img->werr;
}

static int img_put(struct img *img, const void *data, size_t len)
{
	if (img->wlen + len > img->wcap) {
		if (img_flush(img))
			return img->werr;
		if (len > img->wcap) {
			size_t cap = len < (1 << 16) ? (1 << 16) : len;
			uint8_t *p = realloc(img->wbuf, cap);
			if (!p)
				return -ENOMEM;
			img->wbuf = p;
			img->wcap = cap;
		}
	}
	memcpy(img->wbuf + img->wlen, data, len);
	img->wlen += len;
	return 0;
}

static int img_load(struct img *img)
{
	struct stat st;
	uint32_t hdr[2];

	if (fstat(img->fd, &st) < 0) {
		int err = -errno;
		pr_perror("cannot stat image %s", img->path);
		return err;
	}
	if (!S_ISREG(st.st_mode)) {
		pr_err("image %s is not a regular file", img->path);
		return -EINVAL;
	}
	if ((uint64_t)st.st_size > IMG_MAX_FILE) {
		pr_err("image %s: file size %lld is over the limit of %u bytes", img->path,
		       (long long)st.st_size, IMG_MAX_FILE);
		return -EFBIG;
	}
	img->len = st.st_size;
	img->buf = malloc(img->len ? img->len : 1);
	if (!img->buf)
		return -ENOMEM;
	size_t done = 0;
	while (done < img->len) {
		ssize_t n = read(img->fd, img->buf + done, img->len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int err = -errno;
			pr_perror("cannot read image %s", img->path);
			return err;
		}
		if (n == 0) {
			img->len = done;	/* shrank under us: parse what is there */
			break;
		}
		done += n;
	}
	if (img->len < sizeof(hdr)) {
		pr_err("image %s: truncated header (%zu bytes)", img->path, img->len);
		return -EINVAL;
	}
	memcpy(hdr, img->buf, sizeof(hdr));
	if (le32toh(hdr[0]) != kinds[img->kind].magic) {
		pr_err("image %s: field 'magic': 0x%08x is not a %s image (0x%08x)", img->path,
		       le32toh(hdr[0]), img_kind_name(img->kind), kinds[img->kind].magic);
		return -EINVAL;
	}
	if (le32toh(hdr[1]) != IMG_FORMAT_VERSION) {
		pr_err("image %s: field 'version': format version %u is not supported (this ckpt reads %u)",
		       img->path, le32toh(hdr[1]), IMG_FORMAT_VERSION);
		return -EINVAL;
	}
	img->off = sizeof(hdr);
	return 0;
}

struct img *img_open(int dirfd, enum img_kind kind, int pid, int flags)
{
	struct img *img;
	int err;

	if (kind >= IMG_NR_KINDS) {
		errno = EINVAL;
		return NULL;
	}
	img = calloc(1, sizeof(*img));
	if (!img)
		return NULL;
	img->kind = kind;
	img->entry = -1;
	img_name(kind, pid, img->path, sizeof(img->path));
	if ((flags & O_ACCMODE) == O_RDONLY) {
		img->fd = openat(dirfd, img->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (img->fd < 0) {
			err = -errno;
			if (errno != ENOENT)
				pr_perror("cannot open image %s", img->path);
			goto fail;
		}
		err = img_load(img);
		if (err)
			goto fail;
		return img;
	}
	img->fd = openat(dirfd, img->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (img->fd < 0) {
		err = -errno;
		pr_perror("cannot create image %s", img->path);
		goto fail;
	}
	uint32_t hdr[2] = { htole32(kinds[kind].magic), htole32(IMG_FORMAT_VERSION) };
	err = img_put(img, hdr, sizeof(hdr));
	if (err)
		goto fail;
	return img;
fail:
	img_destroy(img);
	errno = -err;
	return NULL;
}

int img_write(struct img *img, const void *msg)
{
	size_t len = protobuf_c_message_get_packed_size(msg);
	uint32_t hdr = htole32(len);
	uint8_t stackbuf[4096], *p = stackbuf;
	int err;

	if (len > IMG_MAX_ENTRY) {
		pr_err("image %s: entry of %zu bytes is over the limit", img->path, len);
		return -EFBIG;
	}
	if (len > sizeof(stackbuf)) {
		p = malloc(len);
		if (!p)
			return -ENOMEM;
	}
	protobuf_c_message_pack(msg, p);
	uint32_t crc = htole32(crc32c(crc32c(0, &hdr, sizeof(hdr)), p, len));
	err = img_put(img, &hdr, sizeof(hdr));
	if (!err)
		err = img_put(img, &crc, sizeof(crc));
	if (!err)
		err = img_put(img, p, len);
	if (p != stackbuf)
		free(p);
	img->entry++;
	return err;
}

int img_read(struct img *img, void **ret_msg)
{
	uint32_t len, crc, want;
	void *msg;
	int err;

	if (img->off == img->len)
		return 0;
	img->entry++;
	if (img->len - img->off < 2 * sizeof(len)) {
		pr_err("image %s: entry %d: truncated length (%zu trailing bytes)", img->path,
		       img->entry, img->len - img->off);
		return -EINVAL;
	}
	memcpy(&len, img->buf + img->off, sizeof(len));
	memcpy(&crc, img->buf + img->off + sizeof(len), sizeof(crc));
	want = crc32c(0, img->buf + img->off, sizeof(len));
	len = le32toh(len);
	img->off += 2 * sizeof(len);
	if (len > IMG_MAX_ENTRY || len > img->len - img->off) {
		pr_err("image %s: entry %d: length %u runs past the end of the file (%zu bytes left)",
		       img->path, img->entry, len, img->len - img->off);
		return -EINVAL;
	}
	want = crc32c(want, img->buf + img->off, len);
	if (le32toh(crc) != want) {
		pr_err("image %s: entry %d: checksum mismatch (stored 0x%08x, computed 0x%08x): the entry is corrupt",
		       img->path, img->entry, le32toh(crc), want);
		return -EINVAL;
	}
	msg = protobuf_c_message_unpack(kinds[img->kind].desc, NULL, len, img->buf + img->off);
	if (!msg) {
		pr_err("image %s: entry %d: malformed %s message (bad encoding or a required field missing)",
		       img->path, img->entry, kinds[img->kind].desc->name);
		return -EINVAL;
	}
	img->off += len;
	err = kinds[img->kind].check(img, msg);
	if (err) {
		protobuf_c_message_free_unpacked(msg, NULL);
		return err;
	}
	*ret_msg = msg;
	return 1;
}

int img_read_one(struct img *img, void **ret_msg)
{
	void *msg;
	int ret = img_read(img, &msg);

	if (ret == 0) {
		pr_err("image %s: no entry", img->path);
		return -EINVAL;
	}
	if (ret < 0)
		return ret;
	if (img->off != img->len) {
		protobuf_c_message_free_unpacked(msg, NULL);
		pr_err("image %s: %zu unexpected bytes after the only entry", img->path,
		       img->len - img->off);
		return -EINVAL;
	}
	*ret_msg = msg;
	return 0;
}

void img_free(struct img *img, void *msg)
{
	if (msg)
		protobuf_c_message_free_unpacked(msg, NULL);
}

void img_free_kind(enum img_kind kind, void *msg)
{
	if (msg)
		protobuf_c_message_free_unpacked(msg, NULL);
}

static bool img_no_sync;

void img_defer_sync(bool defer)
{
	img_no_sync = defer;
}

bool img_sync_deferred(void)
{
	return img_no_sync;
}

int img_close(struct img *img)
{
	int err = 0;

	if (!img)
		return 0;
	if (img->wbuf || img->wlen) {
		err = img_flush(img);
		if (!err && !img_no_sync && fsync(img->fd) < 0 && errno != EINVAL && errno != EROFS) {
			err = -errno;
			pr_perror("cannot sync image %s", img->path);
		}
	}
	img_destroy(img);
	return err;
}

int img_store_one(int dirfd, enum img_kind kind, int pid, const void *msg)
{
	struct img *img = img_open(dirfd, kind, pid, O_WRONLY);
	int err, cerr;

	if (!img)
		return -errno;
	err = img_write(img, msg);
	cerr = img_close(img);
	return err ? err : cerr;
}

int img_load_one(int dirfd, enum img_kind kind, int pid, void **ret_msg)
{
	struct img *img = img_open(dirfd, kind, pid, O_RDONLY);
	int err;

	if (!img) {
		err = -errno;
		if (err == -ENOENT) {
			char name[64];
			img_name(kind, pid, name, sizeof(name));
			pr_err("image %s is missing", name);
		}
		return err;
	}
	err = img_read_one(img, ret_msg);
	img_close(img);
	return err;
}

int img_load_all(int dirfd, enum img_kind kind, int pid, bool must, void ***ret, size_t *ret_n)
{
	struct img *img = img_open(dirfd, kind, pid, O_RDONLY);
	void **list = NULL, *msg;
	size_t n = 0;
	int r;

	*ret = NULL;
	*ret_n = 0;
	if (!img) {
		r = -errno;
		if (r == -ENOENT && !must)
			return 0;
		if (r == -ENOENT) {
			char name[64];
			img_name(kind, pid, name, sizeof(name));
			pr_err("image %s is missing", name);
		}
		return r;
	}
	while ((r = img_read(img, &msg)) == 1) {
		void **nl = realloc(list, (n + 1) * sizeof(*nl));
		if (!nl) {
			img_free(img, msg);
			r = -ENOMEM;
			break;
		}
		list = nl;
		list[n++] = msg;
	}
	img_close(img);
	if (r < 0) {
		img_free_all(kind, list, n);
		return r;
	}
	*ret = list;
	*ret_n = n;
	return 0;
}

void img_free_all(enum img_kind kind, void **list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		img_free_kind(kind, list[i]);
	free(list);
}

/*
 * Field checks. They stop values that would make a consumer index out of
 * range or pass garbage to the kernel; relations between entries are
 * checked where the entries are put together.
 */

static bool page_aligned(uint64_t v)
{
	return (v & (IMG_PAGE_SIZE - 1)) == 0;
}

bool dump_id_ok(const char *id)
{
	size_t n = 0;

	for (; id[n]; n++)
		if (!((id[n] >= '0' && id[n] <= '9') || (id[n] >= 'a' && id[n] <= 'f')))
			return false;
	return n == 32;
}

static int check_inventory(const struct img *img, const void *msg)
{
	const InventoryEntry *e = msg;

	if (e->format_version != IMG_FORMAT_VERSION)
		return img_bad(img, "format_version", "%u is not supported", e->format_version);
	if (e->n_root_pids == 0)
		return img_bad(img, "root_pids", "no root task");
	for (size_t i = 0; i < e->n_root_pids; i++)
		if (e->root_pids[i] == 0 || e->root_pids[i] >= PID_MAX)
			return img_bad(img, "root_pids", "%u is not a valid PID", e->root_pids[i]);
	if (e->has_page_size && e->page_size != IMG_PAGE_SIZE)
		return img_bad(img, "page_size", "%u, this host uses %llu", e->page_size, IMG_PAGE_SIZE);
	if (e->has_xsave_size && e->xsave_size > (1u << 20))
		return img_bad(img, "xsave_size", "%u bytes is implausible", e->xsave_size);
	if (e->net_lock) {
		bool ok = strlen(e->net_lock) < 64 && e->net_lock[0];
		for (const char *p = e->net_lock; ok && *p; p++)
			ok = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_';
		if (!ok)
			return img_bad(img, "net_lock", "'%s' is not a table name ckpt makes", e->net_lock);
	}
	if (e->dump_id && !dump_id_ok(e->dump_id))
		return img_bad(img, "dump_id", "'%.40s' is not 32 hex digits", e->dump_id);
	if (e->parent_images && (!e->parent_images[0] || strlen(e->parent_images) >= PATH_MAX))
		return img_bad(img, "parent_images", "empty or longer than a path");
	if (!e->parent_images != !e->parent_dump_id || !e->parent_images != !e->has_parent_changelog_seq)
		return img_bad(img, "parent_images", "a delta names its parent's directory, dump ID and seq");
	if (e->parent_dump_id && !dump_id_ok(e->parent_dump_id))
		return img_bad(img, "parent_dump_id", "'%.40s' is not 32 hex digits", e->parent_dump_id);
	if (e->parent_images && (!e->has_changelog_seq || e->changelog_seq <= e->parent_changelog_seq))
		return img_bad(img, "parent_changelog_seq", "a delta's seq must follow its parent's");
	return 0;
}

static bool ranges_ok(const uint64_t *r, size_t n)
{
	if (n % 2)
		return false;
	for (size_t i = 0; i < n; i += 2)
		if (r[i] >= r[i + 1] || r[i + 1] > IMG_TASK_SIZE || (i && r[i] < r[i - 1]))
			return false;
	return true;
}

static int check_delta(const struct img *img, const void *msg)
{
	const DeltaEntry *e = msg;

	if (e->pid == 0 || e->pid >= PID_MAX)
		return img_bad(img, "pid", "%u is not a valid PID", e->pid);
	if (e->state < DELTA_SAME || e->state > DELTA_EXECED)
		return img_bad(img, "state", "%u", e->state);
	if (e->has_ppid && e->ppid >= PID_MAX)
		return img_bad(img, "ppid", "%u is not a valid PID", e->ppid);
	for (size_t i = 0; i < e->n_new_threads; i++)
		if (e->new_threads[i] == 0 || e->new_threads[i] >= PID_MAX)
			return img_bad(img, "new_threads", "%u is not a valid TID", e->new_threads[i]);
	for (size_t i = 0; i < e->n_gone_threads; i++)
		if (e->gone_threads[i] == 0 || e->gone_threads[i] >= PID_MAX)
			return img_bad(img, "gone_threads", "%u is not a valid TID", e->gone_threads[i]);
	if (e->reread && strlen(e->reread) > 4096)
		return img_bad(img, "reread", "longer than 4096 bytes");
	if (!ranges_ok(e->added, e->n_added))
		return img_bad(img, "added", "not sorted [start, end) pairs in user space");
	if (!ranges_ok(e->removed, e->n_removed))
		return img_bad(img, "removed", "not sorted [start, end) pairs in user space");
	if (!ranges_ok(e->changed, e->n_changed))
		return img_bad(img, "changed", "not sorted [start, end) pairs in user space");
	if (!ranges_ok(e->touched, e->n_touched))
		return img_bad(img, "touched", "not sorted [start, end) pairs in user space");
	return 0;
}

static int check_pstree(const struct img *img, const void *msg)
{
	const PstreeEntry *e = msg;

	if (e->pid == 0 || e->pid >= PID_MAX)
		return img_bad(img, "pid", "%u is not a valid PID", e->pid);
	if (e->ppid >= PID_MAX || e->pgid >= PID_MAX || e->sid >= PID_MAX)
		return img_bad(img, "ppid/pgid/sid", "out of range");
	if (e->n_threads == 0 || e->threads[0] != e->pid)
		return img_bad(img, "threads", "the thread list must start with the leader %u", e->pid);
	if (e->has_zombie_status && e->n_threads != 1)
		return img_bad(img, "threads", "zombie %u has %zu threads", e->pid, e->n_threads);
	if (e->comm && strlen(e->comm) > 15)
		return img_bad(img, "comm", "longer than 15 bytes");
	if (e->has_zombie_status && (e->zombie_status & ~0xffffu))
		return img_bad(img, "zombie_status", "0x%x is not a wait status", e->zombie_status);
	if (e->n_threads > 65536)
		return img_bad(img, "threads", "%zu threads is implausible", e->n_threads);
	for (size_t i = 0; i < e->n_threads; i++)
		if (e->threads[i] == 0 || e->threads[i] >= PID_MAX)
			return img_bad(img, "threads", "%u is not a valid TID", e->threads[i]);
	return 0;
}

static int check_siginfos(const struct img *img, const char *field, SiginfoEntry **si, size_t n)
{
	if (n > 65536)
		return img_bad(img, field, "%zu queued signals is implausible", n);
	for (size_t i = 0; i < n; i++) {
		int signo;
		if (si[i]->siginfo.len != 128)
			return img_bad(img, field, "siginfo %zu is %zu bytes, not 128", i,
				       si[i]->siginfo.len);
		memcpy(&signo, si[i]->siginfo.data, sizeof(signo));
		if (signo < 1 || signo > 64 || signo == SIGKILL || signo == SIGSTOP)
			return img_bad(img, field, "siginfo %zu has signal %d", i, signo);
	}
	return 0;
}

/*
 * POSIX timers: what timer_create() accepts (good_sigevent, clocks with
 * timers, process CPU clocks encoded negative), IDs in increasing order (each is created with its own), a
 * SIGEV_THREAD_ID target among the process's threads, and times that keep
 * the restorer's arithmetic in 64 bits.
 */
static int check_posix_timers(const struct img *img, const CoreEntry *e)
{
	const TaskCoreEntry *t = e->task;
	int64_t prev = -1;

	if (t->n_posix_timers > 4096)
		return img_bad(img, "task.posix_timers", "%zu timers, at most 4096", t->n_posix_timers);
	for (size_t i = 0; i < t->n_posix_timers; i++) {
		const PosixTimerEntry *p = t->posix_timers[i];
		bool tid_ok = false;
		if (p->id > INT32_MAX || (int64_t)p->id <= prev)
			return img_bad(img, "task.posix_timers.id", "timer %zu: %u is out of order or range",
				       i, p->id);
		prev = p->id;
		if (p->clock != CLOCK_REALTIME && p->clock != CLOCK_MONOTONIC &&
		    p->clock != CLOCK_PROCESS_CPUTIME_ID && p->clock != CLOCK_BOOTTIME &&
		    p->clock != CLOCK_REALTIME_ALARM && p->clock != CLOCK_BOOTTIME_ALARM &&
		    p->clock != CLOCK_TAI && (p->clock >= 0 || (p->clock & 4) || (p->clock & 3) == 3))
			return img_bad(img, "task.posix_timers.clock", "timer %u: clock %d", p->id, p->clock);
		if (p->notify != SIGEV_SIGNAL && p->notify != SIGEV_NONE && p->notify != SIGEV_THREAD &&
		    p->notify != (SIGEV_SIGNAL | SIGEV_THREAD_ID))
			return img_bad(img, "task.posix_timers.notify", "timer %u: %u", p->id, p->notify);
		if (p->notify != SIGEV_NONE && (p->signo < 1 || p->signo > 64))
			return img_bad(img, "task.posix_timers.signo", "timer %u: %u is not a signal",
				       p->id, p->signo);
		for (size_t k = 0; k < e->n_threads; k++)
			tid_ok |= p->has_notify_tid && e->threads[k]->tid == p->notify_tid;
		if ((p->notify == (SIGEV_SIGNAL | SIGEV_THREAD_ID)) != tid_ok)
			return img_bad(img, "task.posix_timers.notify_tid",
				       "timer %u: %s thread %u", p->id, tid_ok ? "unexpected" : "no such",
				       p->notify_tid);
		if (p->value_ns >= (1ull << 60) || p->interval_ns >= (1ull << 60))
			return img_bad(img, "task.posix_timers.value_ns", "timer %u: beyond 2^60 ns", p->id);
		if (p->overrun > INT32_MAX)
			return img_bad(img, "task.posix_timers.overrun", "timer %u: %u", p->id, p->overrun);
		if (p->has_signal_pending && p->signal_pending &&
		    (p->notify == SIGEV_NONE || (!p->interval_ns && p->value_ns)))
			return img_bad(img, "task.posix_timers.signal_pending",
				       "timer %u cannot have its signal queued", p->id);
	}
	return 0;
}

static int check_core(const struct img *img, const void *msg)
{
	const CoreEntry *e = msg;
	const TaskCoreEntry *t = e->task;
	int err;

	if (e->n_threads == 0)
		return img_bad(img, "threads", "no thread");
	if (strlen(t->comm) > 15)
		return img_bad(img, "task.comm", "'%s' is longer than 15 bytes", t->comm);
	if (t->umask & ~0777u)
		return img_bad(img, "task.umask", "0%o is not a mode", t->umask);
	if (t->n_rlimits > RLIM_NLIMITS)
		return img_bad(img, "task.rlimits", "%zu entries, at most %d", t->n_rlimits, RLIM_NLIMITS);
	for (size_t i = 0; i < t->n_rlimits; i++) {
		if (t->rlimits[i]->resource >= RLIM_NLIMITS)
			return img_bad(img, "task.rlimits.resource", "%u is unknown", t->rlimits[i]->resource);
		if (t->rlimits[i]->cur > t->rlimits[i]->max)
			return img_bad(img, "task.rlimits.cur", "above max for resource %u",
				       t->rlimits[i]->resource);
	}
	if (t->n_sigactions > 64)
		return img_bad(img, "task.sigactions", "%zu entries, at most 64", t->n_sigactions);
	for (size_t i = 0; i < t->n_sigactions; i++) {
		uint32_t sig = t->sigactions[i]->sig;
		if (sig < 1 || sig > 64 || sig == SIGKILL || sig == SIGSTOP)
			return img_bad(img, "task.sigactions.sig", "%u cannot have an action", sig);
	}
	if (t->n_itimers > 3)
		return img_bad(img, "task.itimers", "%zu entries, at most 3", t->n_itimers);
	for (size_t i = 0; i < t->n_itimers; i++)
		if (t->itimers[i]->which > 2)
			return img_bad(img, "task.itimers.which", "%u is unknown", t->itimers[i]->which);
	if (t->pdeathsig > 64)
		return img_bad(img, "task.pdeathsig", "%u is not a signal", t->pdeathsig);
	if (t->dumpable > 2)
		return img_bad(img, "task.dumpable", "%u is not a dumpable mode", t->dumpable);
	if (t->creds->n_groups > 65536)
		return img_bad(img, "task.creds.groups", "%zu groups", t->creds->n_groups);
	if (t->seccomp_mode > 2)
		return img_bad(img, "task.seccomp_mode", "%u is unknown", t->seccomp_mode);
	if (t->cwd[0] != '/' || t->root[0] != '/')
		return img_bad(img, "task.cwd/root", "not an absolute path");
	if (t->has_stop_signal && t->stop_signal != 0 && t->stop_signal != SIGSTOP &&
	    t->stop_signal != SIGTSTP && t->stop_signal != SIGTTIN && t->stop_signal != SIGTTOU)
		return img_bad(img, "task.stop_signal", "%u is not a stop signal", t->stop_signal);
	if (e->n_threads > 65536)
		return img_bad(img, "threads", "%zu threads is implausible", e->n_threads);
	err = check_siginfos(img, "task.shared_pending", t->shared_pending, t->n_shared_pending);
	if (!err)
		err = check_posix_timers(img, e);
	if (err)
		return err;
	for (size_t i = 0; i < e->n_threads; i++) {
		const ThreadCoreEntry *th = e->threads[i];
		if (th->tid == 0 || th->tid >= PID_MAX)
			return img_bad(img, "threads.tid", "%u is not a valid TID", th->tid);
		/*
		 * The NT_X86_XSTATE regset ends with the last enabled component,
		 * not on a 64-byte boundary: with PKRU (8 bytes at 2432) it is
		 * 2440 bytes. Every component size is a multiple of 8.
		 */
		if (th->has_xsave && (th->xsave.len < 576 || th->xsave.len > (1u << 20) ||
				      th->xsave.len % 8))
			return img_bad(img, "threads.xsave", "%zu bytes is not an xsave area",
				       th->xsave.len);
		if (th->altstack && (th->altstack->flags & ~(SS_DISABLE | SS_ONSTACK | SS_AUTODISARM)))
			return img_bad(img, "threads.altstack.flags", "0x%x", th->altstack->flags);
		if (th->comm && strlen(th->comm) > 15)
			return img_bad(img, "threads.comm", "longer than 15 bytes");
		if (th->has_robust_len && th->robust_len > 4096)
			return img_bad(img, "threads.robust_len", "%llu", (unsigned long long)th->robust_len);
		err = check_siginfos(img, "threads.pending", th->pending, th->n_pending);
		if (err)
			return err;
	}
	return 0;
}

static int check_mm(const struct img *img, const void *msg)
{
	const MmEntry *e = msg;
	uint64_t prev_end = 0;

	if (e->n_auxv % 2 || e->n_auxv > 2 * 64)
		return img_bad(img, "auxv", "%zu words is not a list of pairs", e->n_auxv);
	if (e->n_vmas > (1u << 20))
		return img_bad(img, "vmas", "%zu mappings is implausible", e->n_vmas);
	for (size_t i = 0; i < e->n_files; i++) {
		if (e->files[i]->path[0] != '/')
			return img_bad(img, "files.path", "'%s' is not absolute", e->files[i]->path);
		if (e->files[i]->id != i)
			return img_bad(img, "files.id", "%u at index %zu", e->files[i]->id, i);
		if (e->files[i]->has_ghost_id && !S_ISREG(e->files[i]->mode))
			return img_bad(img, "files.ghost_id", "file %zu is deleted but not a regular file", i);
	}
	if (e->has_vdso_image && e->vdso_image.len > (64u << 10))
		return img_bad(img, "vdso_image", "%zu bytes is not a vDSO", e->vdso_image.len);
	if (e->has_exe_file_id && e->exe_file_id >= e->n_files)
		return img_bad(img, "exe_file_id", "%u, only %zu files", e->exe_file_id, e->n_files);
	for (size_t i = 0; i < e->n_vmas; i++) {
		const VmaEntry *v = e->vmas[i];
		if (!page_aligned(v->start) || !page_aligned(v->end) || !page_aligned(v->pgoff))
			return img_bad(img, "vmas.start/end/pgoff", "mapping %zu is not page aligned", i);
		if (v->start >= v->end || v->end > IMG_TASK_SIZE)
			return img_bad(img, "vmas.end", "mapping %zu: 0x%llx-0x%llx is not a range",
				       i, (unsigned long long)v->start, (unsigned long long)v->end);
		if (v->start < prev_end)
			return img_bad(img, "vmas.start", "mapping %zu at 0x%llx overlaps or is out of order",
				       i, (unsigned long long)v->start);
		prev_end = v->end;
		if (v->prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC))
			return img_bad(img, "vmas.prot", "mapping %zu: 0x%x", i, v->prot);
		if (v->kind < VMA_KIND_ANON || v->kind > VMA_KIND_VVAR)
			return img_bad(img, "vmas.kind", "mapping %zu: %u is unknown", i, v->kind);
		bool file = v->kind == VMA_KIND_FILE_PRIVATE || v->kind == VMA_KIND_FILE_SHARED;
		if (file && (!v->has_file_id || v->file_id >= e->n_files))
			return img_bad(img, "vmas.file_id", "mapping %zu names no valid file", i);
		if (v->name) {
			size_t len = strlen(v->name);
			bool ok = len && len < 80 && (v->kind == VMA_KIND_ANON || v->kind == VMA_KIND_SHARED_ANON);
			for (size_t k = 0; ok && k < len; k++)
				ok = v->name[k] > ' ' && v->name[k] < 0x7f && !strchr("\\`$[]", v->name[k]);
			if (!ok)
				return img_bad(img, "vmas.name", "mapping %zu: '%s' is not an anonymous mapping name", i, v->name);
		}
		if (v->kind == VMA_KIND_SHARED_ANON && !v->has_shmid)
			return img_bad(img, "vmas.shmid", "shared mapping %zu has no shmid", i);
		if (v->has_shm_size && v->shm_size > (1ull << 46))
			return img_bad(img, "vmas.shm_size", "mapping %zu: %llu bytes is implausible", i,
				       (unsigned long long)v->shm_size);
		if (v->memfd && (v->kind != VMA_KIND_SHARED_ANON || strlen(v->memfd) > 249 ||
				 strchr(v->memfd, '/')))
			return img_bad(img, "vmas.memfd", "mapping %zu: not a memfd name", i);
		if (v->flags & ~(MAP_SHARED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN |
				 MAP_NORESERVE | MAP_LOCKED))
			return img_bad(img, "vmas.flags", "mapping %zu: 0x%x", i, v->flags);
	}
	/* AIO rings: whole, sorted, clear of each other and of every mapping. */
	if (e->n_aio_rings > 65536)
		return img_bad(img, "aio_rings", "%zu contexts is implausible", e->n_aio_rings);
	prev_end = 0;
	for (size_t i = 0, k = 0; i < e->n_aio_rings; i++) {
		const AioRingEntry *r = e->aio_rings[i];
		uint64_t len = (32 + 32ull * r->nr + IMG_PAGE_SIZE - 1) & ~(uint64_t)(IMG_PAGE_SIZE - 1);
		if (r->nr < 2 || r->nr > (1u << 24) || r->len != len || (r->len - 32) / 32 != r->nr)
			return img_bad(img, "aio_rings.nr/len", "context %zu: %u events in %llu bytes", i,
				       r->nr, (unsigned long long)r->len);
		if (!page_aligned(r->addr) || r->addr < prev_end || r->addr >= IMG_TASK_SIZE ||
		    r->len > IMG_TASK_SIZE - r->addr)
			return img_bad(img, "aio_rings.addr", "context %zu at 0x%llx is misplaced", i,
				       (unsigned long long)r->addr);
		prev_end = r->addr + r->len;
		while (k < e->n_vmas && e->vmas[k]->end <= r->addr)
			k++;
		if (k < e->n_vmas && e->vmas[k]->start < prev_end)
			return img_bad(img, "aio_rings.addr", "context %zu at 0x%llx overlaps a mapping", i,
				       (unsigned long long)r->addr);
		if (r->head >= r->nr || r->tail >= r->nr)
			return img_bad(img, "aio_rings.head/tail", "context %zu: %u/%u of %u", i, r->head,
				       r->tail, r->nr);
		size_t waiting = (r->tail + r->nr - r->head) % r->nr;
		if ((r->has_events ? r->events.len : 0) != waiting * 32)
			return img_bad(img, "aio_rings.events", "context %zu: %zu bytes for %zu events", i,
				       r->has_events ? r->events.len : 0, waiting);
	}
	return 0;
}

static int check_pagemap(const struct img *img, const void *msg)
{
	const PagemapEntry *e = msg;

	if (!page_aligned(e->vaddr) || e->vaddr >= IMG_TASK_SIZE)
		return img_bad(img, "vaddr", "0x%llx", (unsigned long long)e->vaddr);
	if (e->nr_pages == 0 || e->nr_pages > (IMG_TASK_SIZE - e->vaddr) / IMG_PAGE_SIZE)
		return img_bad(img, "nr_pages", "%u at 0x%llx", e->nr_pages,
			       (unsigned long long)e->vaddr);
	if (e->has_flags && e->flags != PE_PRESENT && e->flags != PE_PARENT && e->flags != PE_PREV)
		return img_bad(img, "flags", "0x%x", e->flags);
	return 0;
}

/* A watch number past this would take too long to reach on restore (one watch per number). */
#define IMG_INOTIFY_MAX_WD	(1u << 20)
#define IMG_MAX_FD		(1u << 20)

static int check_timerfd(const struct img *img, const TimerfdEntry *t)
{
	const uint64_t max_ns = (uint64_t)INT64_MAX - 1000000000ull;	/* fits a timespec */

	/* CLOCK_REALTIME, MONOTONIC, BOOTTIME, REALTIME_ALARM, BOOTTIME_ALARM */
	if (t->clockid != 0 && t->clockid != 1 && t->clockid != 7 && t->clockid != 8 &&
	    t->clockid != 9)
		return img_bad(img, "timerfd.clockid", "%u is not a timerfd clock", t->clockid);
	if (t->flags & ~3u)
		return img_bad(img, "timerfd.flags", "0x%x", t->flags);
	if (t->value_ns > max_ns || t->interval_ns > max_ns ||
	    (t->has_expires_ns && t->expires_ns > max_ns))
		return img_bad(img, "timerfd.value_ns", "a time beyond any timespec");
	return 0;
}

static int check_anon_file(const struct img *img, const FileEntry *e)
{
	switch (e->kind) {
	case FILE_KIND__FILE_EVENTFD:
		if (!e->eventfd)
			return img_bad(img, "eventfd", "missing for file %u", e->id);
		if (e->eventfd->counter == UINT64_MAX)
			return img_bad(img, "eventfd.counter", "above the eventfd maximum");
		break;
	case FILE_KIND__FILE_SIGNALFD:
		if (!e->signalfd)
			return img_bad(img, "signalfd", "missing for file %u", e->id);
		break;
	case FILE_KIND__FILE_TIMERFD:
		if (!e->timerfd)
			return img_bad(img, "timerfd", "missing for file %u", e->id);
		return check_timerfd(img, e->timerfd);
	case FILE_KIND__FILE_EPOLL:
		if (!e->epoll)
			return img_bad(img, "epoll", "missing for file %u", e->id);
		if (e->epoll->n_tfd > IMG_MAX_FD)
			return img_bad(img, "epoll.tfd", "%zu registrations", e->epoll->n_tfd);
		for (size_t i = 0; i < e->epoll->n_tfd; i++) {
			const EpollTfdEntry *t = e->epoll->tfd[i];
			if (t->tfd >= IMG_MAX_FD)
				return img_bad(img, "epoll.tfd.tfd", "%u is above any fd limit", t->tfd);
			if (t->file_id == e->id)
				return img_bad(img, "epoll.tfd.file_id", "epoll file %u watches itself",
					       e->id);
		}
		break;
	case FILE_KIND__FILE_INOTIFY:
		if (!e->inotify)
			return img_bad(img, "inotify", "missing for file %u", e->id);
		for (size_t i = 0; i < e->inotify->n_wd; i++) {
			const InotifyWdEntry *w = e->inotify->wd[i];
			if (w->wd == 0 || w->wd > IMG_INOTIFY_MAX_WD ||
			    (i && w->wd <= e->inotify->wd[i - 1]->wd))
				return img_bad(img, "inotify.wd.wd", "%u: not in 1..%u in increasing order",
					       w->wd, IMG_INOTIFY_MAX_WD);
			if (w->path[0] != '/')
				return img_bad(img, "inotify.wd.path", "'%s' is not absolute", w->path);
			if (!(w->mask & 0xfff) || (w->mask & ~0x84000fffu))
				return img_bad(img, "inotify.wd.mask", "0x%x", w->mask);
		}
		break;
	default:
		return img_bad(img, "kind", "%d is unknown", e->kind);
	}
	return 0;
}

static int check_file(const struct img *img, const void *msg)
{
	const FileEntry *e = msg;

	switch (e->kind) {
	case FILE_KIND__FILE_REG:
	case FILE_KIND__FILE_CHR:
	case FILE_KIND__FILE_TTY:
		if (!e->reg)
			return img_bad(img, "reg", "missing for file %u", e->id);
		if (e->reg->path[0] != '/')
			return img_bad(img, "reg.path", "'%s' is not absolute", e->reg->path);
		if (e->reg->has_ghost_id && (e->kind != FILE_KIND__FILE_REG || !S_ISREG(e->reg->mode)))
			return img_bad(img, "reg.ghost_id", "file %u is deleted but not a regular file",
				       e->id);
		break;
	case FILE_KIND__FILE_PIPE:
	case FILE_KIND__FILE_FIFO:
		if (!e->pipe)
			return img_bad(img, "pipe", "missing for file %u", e->id);
		if (e->kind == FILE_KIND__FILE_FIFO && (!e->pipe->path || e->pipe->path[0] != '/'))
			return img_bad(img, "pipe.path", "a FIFO needs an absolute path");
		break;
	case FILE_KIND__FILE_INET: {
		const InetSkEntry *n = e->inet_sk;
		size_t alen = n && n->family == AF_INET6 ? sizeof(struct sockaddr_in6)
							  : sizeof(struct sockaddr_in);
		if (!n)
			return img_bad(img, "inet_sk", "missing for file %u", e->id);
		if (n->family != AF_INET && n->family != AF_INET6)
			return img_bad(img, "inet_sk.family", "%u is not IPv4 or IPv6", n->family);
		if (n->type != SOCK_STREAM && n->type != SOCK_DGRAM)
			return img_bad(img, "inet_sk.type", "%u is not TCP or UDP", n->type);
		if ((n->has_local && n->local.len != alen) || (n->has_peer && n->peer.len != alen))
			return img_bad(img, "inet_sk.local/peer", "not a sockaddr of family %u", n->family);
		if ((n->has_local && ((struct sockaddr *)n->local.data)->sa_family != n->family) ||
		    (n->has_peer && ((struct sockaddr *)n->peer.data)->sa_family != n->family))
			return img_bad(img, "inet_sk.local/peer", "address family differs from %u",
				       n->family);
		bool est = n->type == SOCK_STREAM && n->state == 1 /* TCP_ESTABLISHED */;
		if (est && (!n->has_local || !n->has_peer || !n->has_snd_seq || !n->has_rcv_seq))
			return img_bad(img, "inet_sk", "established connection %u without addresses or sequence numbers",
				       e->id);
		if (n->has_unsent && (!n->has_send_queue || n->unsent > n->send_queue.len))
			return img_bad(img, "inet_sk.unsent", "%u bytes, more than the send queue", n->unsent);
		if ((n->has_send_queue && n->send_queue.len > (1u << 30)) ||
		    (n->has_recv_queue && n->recv_queue.len > (1u << 30)))
			return img_bad(img, "inet_sk.send_queue/recv_queue", "implausibly large");
		if (n->has_snd_wscale && (n->snd_wscale > 14 || n->rcv_wscale > 14))
			return img_bad(img, "inet_sk.snd_wscale/rcv_wscale", "window scale above 14");
		if (n->n_queue != n->n_queue_from || n->n_queue > 4096 ||
		    (n->n_queue && n->type != SOCK_DGRAM))
			return img_bad(img, "inet_sk.queue", "%zu datagrams with %zu senders", n->n_queue,
				       n->n_queue_from);
		for (size_t i = 0; i < n->n_queue; i++)
			if (n->queue[i].len > 65536 || n->queue_from[i].len != alen)
				return img_bad(img, "inet_sk.queue/queue_from", "datagram %zu", i);
		break;
	}
	case FILE_KIND__FILE_UNIX: {
		const UnixSkEntry *u = e->unix_sk;
		uint64_t bytes = 0;
		if (!u)
			return img_bad(img, "unix_sk", "missing for file %u", e->id);
		if (u->type != SOCK_STREAM && u->type != SOCK_DGRAM && u->type != SOCK_SEQPACKET)
			return img_bad(img, "unix_sk.type", "%u is not a socket type ckpt knows", u->type);
		if (u->ino == u->peer)
			return img_bad(img, "unix_sk.peer", "socket %llu is its own peer",
				       (unsigned long long)u->ino);
		if (u->type == SOCK_STREAM && u->n_queue > 1)
			return img_bad(img, "unix_sk.queue", "a stream socket has one queue, not %zu",
				       u->n_queue);
		if (u->n_queue > 65536)
			return img_bad(img, "unix_sk.queue", "%zu messages is implausible", u->n_queue);
		for (size_t i = 0; i < u->n_queue; i++)
			bytes += u->queue[i].len;
		if (bytes > (1u << 30))
			return img_bad(img, "unix_sk.queue", "%llu queued bytes is implausible",
				       (unsigned long long)bytes);
		if (u->has_shutdown && u->shutdown > 3)
			return img_bad(img, "unix_sk.shutdown", "%u", u->shutdown);
		/* Names are copied into a sockaddr_un. */
		if (u->has_name && (!u->name.len || u->name.len > 108))
			return img_bad(img, "unix_sk.name", "%zu bytes, not 1 to 108", u->name.len);
		if (u->has_external && u->external &&
		    (u->type != SOCK_DGRAM || !u->has_peer_name || !u->peer_name.len ||
		     u->peer_name.len > 108))
			return img_bad(img, "unix_sk.external", "only a datagram socket with a peer name of 1 to 108 bytes");
		if (u->dir && (u->dir[0] != '/' || !u->has_name || !u->name.data[0]))
			return img_bad(img, "unix_sk.dir", "'%s' without a relative path name", u->dir);
		if (u->has_state && u->state != 1 && u->state != 7 && u->state != 10)
			return img_bad(img, "unix_sk.state", "%u is not established, closed or listening",
				       u->state);
		if (u->has_state && u->state == 10 && u->type == SOCK_DGRAM)
			return img_bad(img, "unix_sk.state", "a listening datagram socket");
		if (u->n_pending > 65536 || (u->n_pending && u->state != 10))
			return img_bad(img, "unix_sk.pending", "%zu connections", u->n_pending);
		if (u->n_queue_from && u->n_queue_from != u->n_queue)
			return img_bad(img, "unix_sk.queue_from", "%zu senders for %zu messages",
				       u->n_queue_from, u->n_queue);
		for (size_t i = 0; i < u->n_queue_from; i++)
			if (u->queue_from[i].len > 108)
				return img_bad(img, "unix_sk.queue_from", "a name of %zu bytes",
					       u->queue_from[i].len);
		if (u->has_mode && !S_ISSOCK(u->mode))
			return img_bad(img, "unix_sk.mode", "0%o is not a socket", u->mode);
		break;
	}
	case FILE_KIND__FILE_EVENTFD:
	case FILE_KIND__FILE_SIGNALFD:
	case FILE_KIND__FILE_TIMERFD:
	case FILE_KIND__FILE_EPOLL:
	case FILE_KIND__FILE_INOTIFY:
		return check_anon_file(img, e);
	default:
		return img_bad(img, "kind", "%d is unknown", e->kind);
	}
	return 0;
}

static int check_fdinfo(const struct img *img, const void *msg)
{
	const FdinfoEntry *e = msg;

	if (e->fd >= (1u << 20))
		return img_bad(img, "fd", "%u is above any fd limit", e->fd);
	if (e->n_locks > 64)
		return img_bad(img, "locks", "%zu locks on fd %u", e->n_locks, e->fd);
	for (size_t i = 0; i < e->n_locks; i++) {
		const FileLockEntry *l = e->locks[i];
		if (l->kind < 1 || l->kind > 3)
			return img_bad(img, "locks.kind", "%u on fd %u", l->kind, e->fd);
		if (l->start > INT64_MAX || l->len > INT64_MAX || l->start + l->len > (uint64_t)INT64_MAX)
			return img_bad(img, "locks.start/len", "range out of bounds on fd %u", e->fd);
	}
	return 0;
}

static int check_pipe_data(const struct img *img, const void *msg)
{
	const PipeDataEntry *e = msg;

	if (e->size < 4096 || e->size > (1u << 28))
		return img_bad(img, "size", "pipe capacity %u", e->size);
	if (e->has_data && e->data.len > e->size)
		return img_bad(img, "data", "%zu bytes do not fit a pipe of %u", e->data.len, e->size);
	return 0;
}

static int check_ghost(const struct img *img, const void *msg)
{
	const GhostFileEntry *e = msg;

	if (e->id >= (1u << 20))
		return img_bad(img, "id", "%u is implausible", e->id);
	if (e->path[0] != '/' || strlen(e->path) >= 4096)
		return img_bad(img, "path", "'%s' is not an absolute path", e->path);
	if (!S_ISREG(e->mode) || (e->mode & ~(S_IFMT | 07777)))
		return img_bad(img, "mode", "0%o is not a regular file", e->mode);
	if (e->size > IMG_GHOST_MAX_SIZE)
		return img_bad(img, "size", "%llu bytes, more than %llu", (unsigned long long)e->size,
			       IMG_GHOST_MAX_SIZE);
	if (e->has_data != e->has_off)
		return img_bad(img, "off", "data without an offset or the other way round");
	if (e->has_data && (e->data.len > IMG_GHOST_MAX_DATA || e->off > e->size ||
			    e->data.len > e->size - e->off))
		return img_bad(img, "data", "%zu bytes at %llu do not fit a file of %llu",
			       e->data.len, (unsigned long long)e->off, (unsigned long long)e->size);
	return 0;
}
