// SPDX-License-Identifier: MIT
/*
 * The trackd changelog: image framing (magic, version, then length, CRC-32C
 * and a ChangelogEntry per record) read as a stream, so a long log costs a
 * buffer of at most one record, never the whole file. The writer checks an
 * existing log with the reader before appending to it, and every record it
 * appends passes the same field checks, so it cannot write a log the reader
 * rejects.
 */
#define LOG_PREFIX "changelog: "
#include <endian.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "changelog.h"
#include "crc32c.h"
#include "log.h"

#define CL_MAGIC	0x434c4731u		/* "CLG1" */
#define CL_HDR_SIZE	8			/* magic, version */
#define CL_REC_HDR	8			/* length, CRC-32C */
#define CL_BUF_SIZE	(64u << 10)		/* read chunk; the writer flushes past it */
#define CL_PID_MAX	(1 << 22)		/* PID_MAX_LIMIT on 64-bit */
#define CL_MAX_TGIDS	(1u << 22)
#define CL_MAX_STR	4096			/* path, reason: PATH_MAX */
#define CL_MAX_BOOT_ID	64			/* a UUID is 36 */
#define CL_PAGE_SIZE	4096ull
#define CL_PATH_MAX	(PATH_MAX + sizeof(CHANGELOG_FILE) + 2)	/* DIR/changelog.img */

struct cl_reader {
	int fd;
	bool own_fd;
	bool quiet;		/* the writer's check: it reports a torn tail itself */
	char path[CL_PATH_MAX];
	uint8_t *buf;
	size_t cap, len, off;	/* buf[0] is at file offset pos; off is the next record */
	uint64_t pos;
	uint64_t rec;		/* records returned so far */
	uint64_t seq;		/* seq of the last one */
	uint32_t kind;		/* kind of the last one */
	uint64_t torn;
	int state;		/* 0 reading, 1 at the end, -errno after an error */
};

struct cl_writer {
	int fd;
	char path[CL_PATH_MAX];
	uint8_t *buf;
	size_t len, cap;
	uint64_t size;		/* bytes written to the file */
	uint64_t next_seq;
	int err;		/* sticky: a failed write leaves the log's tail unknown */
};

const char *cl_kind_name(uint32_t kind)
{
	static const char *const names[] = {
		[CL_FORK] = "fork", [CL_EXIT] = "exit", [CL_EXEC] = "exec", [CL_MMAP] = "mmap",
		[CL_MUNMAP] = "munmap", [CL_MREMAP] = "mremap", [CL_MPROTECT] = "mprotect",
		[CL_BRK] = "brk", [CL_MADVISE] = "madvise", [CL_SHMAT] = "shmat",
		[CL_SHMDT] = "shmdt", [CL_IO_SETUP] = "io_setup", [CL_IO_DESTROY] = "io_destroy",
		[CL_SETSID] = "setsid", [CL_SETPGID] = "setpgid", [CL_START] = "start",
		[CL_GAP] = "gap", [CL_ATTACH] = "attach", [CL_LOST] = "lost", [CL_MARK] = "mark",
		[CL_ARMED] = "armed", [CL_UNARMED] = "unarmed", [CL_STOP] = "stop",
	};

	if (kind >= sizeof(names) / sizeof(names[0]) || !names[kind])
		return "?";
	return names[kind];
}

/* "DIR/changelog.img" for messages, DIR as the kernel names dirfd. */
static void cl_path(int dirfd, char buf[CL_PATH_MAX])
{
	char link[64], dir[PATH_MAX];
	ssize_t n = -1;

	if (dirfd != AT_FDCWD) {
		snprintf(link, sizeof(link), "/proc/self/fd/%d", dirfd);
		n = readlink(link, dir, sizeof(dir) - 1);
	}
	if (n <= 0) {
		snprintf(buf, CL_PATH_MAX, "%s", CHANGELOG_FILE);
		return;
	}
	dir[n] = 0;
	snprintf(buf, CL_PATH_MAX, "%s%s%s", dir, dir[n - 1] == '/' ? "" : "/", CHANGELOG_FILE);
}

static int cl_bad(const char *path, uint64_t rec, uint64_t off, const char *field,
		  const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* "FILE: record N (offset O): field 'F': why". Returns -EINVAL. */
static int cl_bad(const char *path, uint64_t rec, uint64_t off, const char *field,
		  const char *fmt, ...)
{
	char why[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	pr_err("%s: record %" PRIu64 " (offset %" PRIu64 "): field '%s': %s", path, rec, off, field,
	       why);
	return -EINVAL;
}

static bool cl_pid_ok(bool has, int32_t pid)
{
	return !has || (pid >= 0 && pid < CL_PID_MAX);
}

/*
 * Field checks of record rec (1-based) at offset off, prev_seq being the
 * seq of the record before it (0 for the first).
 */
static int cl_check(const char *path, uint64_t rec, uint64_t off, const ChangelogEntry *e,
		    uint64_t prev_seq)
{
	bool header = e->kind == CL_START || e->kind == CL_GAP;

	if (cl_kind_name(e->kind)[0] == '?')
		return cl_bad(path, rec, off, "kind", "%u is unknown", e->kind);
	if (e->seq != prev_seq + 1)
		return cl_bad(path, rec, off, "seq", "%" PRIu64 " does not follow %" PRIu64, e->seq,
			      prev_seq);
	if (!prev_seq && e->kind != CL_START)
		return cl_bad(path, rec, off, "kind", "the log starts with %s, not start",
			      cl_kind_name(e->kind));
	if (prev_seq && e->kind == CL_START)
		return cl_bad(path, rec, off, "kind", "a start record after the first");
	if (header && !e->has_format)
		return cl_bad(path, rec, off, "format", "missing from a %s record",
			      cl_kind_name(e->kind));
	if (header && e->format != CHANGELOG_FORMAT)
		return cl_bad(path, rec, off, "format", "%u is not supported (this reads %u)",
			      e->format, CHANGELOG_FORMAT);
	if (header && (!e->boot_id || !e->boot_id[0]))
		return cl_bad(path, rec, off, "boot_id", "missing from a %s record",
			      cl_kind_name(e->kind));
	if (e->boot_id && strlen(e->boot_id) > CL_MAX_BOOT_ID)
		return cl_bad(path, rec, off, "boot_id", "longer than %d bytes", CL_MAX_BOOT_ID);
	if (e->kind == CL_START && !e->n_roots)
		return cl_bad(path, rec, off, "roots", "no root task");
	for (size_t i = 0; i < e->n_roots; i++)
		if (e->roots[i] <= 0 || e->roots[i] >= CL_PID_MAX)
			return cl_bad(path, rec, off, "roots", "%d is not a PID", e->roots[i]);
	if (!cl_pid_ok(e->has_pid, e->pid))
		return cl_bad(path, rec, off, "pid", "%d is out of range", e->pid);
	if (!cl_pid_ok(e->has_tgid, e->tgid))
		return cl_bad(path, rec, off, "tgid", "%d is out of range", e->tgid);
	if (!cl_pid_ok(e->has_ppid, e->ppid))
		return cl_bad(path, rec, off, "ppid", "%d is out of range", e->ppid);
	if (e->n_tgids > CL_MAX_TGIDS)
		return cl_bad(path, rec, off, "tgids", "%zu tasks is implausible", e->n_tgids);
	for (size_t i = 0; i < e->n_tgids; i++)
		if (!cl_pid_ok(true, e->tgids[i]))
			return cl_bad(path, rec, off, "tgids", "%d is out of range", e->tgids[i]);
	if (e->n_ranges % 2)
		return cl_bad(path, rec, off, "ranges", "%zu values, not [start, end) pairs",
			      e->n_ranges);
	for (size_t i = 0; i < e->n_ranges; i += 2) {
		uint64_t start = e->ranges[i], end = e->ranges[i + 1];

		if (start >= end || ((start | end) & (CL_PAGE_SIZE - 1)))
			return cl_bad(path, rec, off, "ranges",
				      "range %zu [0x%" PRIx64 ", 0x%" PRIx64 ") is empty or not "
				      "page-aligned", i / 2, start, end);
	}
	if (e->path && strlen(e->path) >= CL_MAX_STR)
		return cl_bad(path, rec, off, "path", "longer than %d bytes", CL_MAX_STR - 1);
	if (e->reason && strlen(e->reason) >= CL_MAX_STR)
		return cl_bad(path, rec, off, "reason", "longer than %d bytes", CL_MAX_STR - 1);
	return 0;
}

/* ---------------------------------------------------------------- reader */

/*
 * Have at least need bytes from buf + off on, or all there is up to the end
 * of the file. 0 or -errno (logged).
 */
static int cl_fill(struct cl_reader *r, size_t need)
{
	if (r->len - r->off >= need)
		return 0;
	if (r->off + need > r->cap) {
		memmove(r->buf, r->buf + r->off, r->len - r->off);
		r->pos += r->off;
		r->len -= r->off;
		r->off = 0;
	}
	if (need > r->cap) {
		size_t cap = need < 2 * r->cap ? 2 * r->cap : need;
		uint8_t *p = realloc(r->buf, cap);

		if (!p) {
			pr_err("%s: out of memory for a record of %zu bytes", r->path, need);
			return -ENOMEM;
		}
		r->buf = p;
		r->cap = cap;
	}
	while (r->len - r->off < need) {
		ssize_t n = pread(r->fd, r->buf + r->len, r->cap - r->len, r->pos + r->len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int err = -errno;

			pr_perror("cannot read %s", r->path);
			return err;
		}
		if (n == 0)
			break;
		r->len += n;
	}
	return 0;
}

static void cl_reader_free(struct cl_reader *r)
{
	if (!r)
		return;
	if (r->own_fd && r->fd >= 0)
		close(r->fd);
	free(r->buf);
	free(r);
}

/* A reader of fd at offset 0; checks the file header. NULL with errno set (logged). */
static struct cl_reader *cl_reader_new(int fd, bool own_fd, const char *path)
{
	struct cl_reader *r = calloc(1, sizeof(*r));
	uint32_t hdr[2];
	struct stat st;
	int err;

	if (!r) {
		if (own_fd)
			close(fd);
		pr_err("%s: out of memory", path);
		errno = ENOMEM;
		return NULL;
	}
	r->fd = fd;
	r->own_fd = own_fd;
	snprintf(r->path, sizeof(r->path), "%s", path);
	if (fstat(fd, &st) < 0) {
		err = -errno;
		pr_perror("cannot stat %s", r->path);
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		pr_err("%s is not a regular file", r->path);
		err = -EINVAL;
		goto fail;
	}
	r->cap = CL_BUF_SIZE;
	r->buf = malloc(r->cap);
	if (!r->buf) {
		pr_err("%s: out of memory", r->path);
		err = -ENOMEM;
		goto fail;
	}
	err = cl_fill(r, CL_HDR_SIZE);
	if (err)
		goto fail;
	if (r->len < CL_HDR_SIZE) {
		pr_err("%s: truncated header (%zu bytes)", r->path, r->len);
		err = -EINVAL;
		goto fail;
	}
	memcpy(hdr, r->buf, sizeof(hdr));
	if (le32toh(hdr[0]) != CL_MAGIC) {
		pr_err("%s: field 'magic': 0x%08x is not a changelog (0x%08x)", r->path,
		       le32toh(hdr[0]), CL_MAGIC);
		err = -EINVAL;
		goto fail;
	}
	if (le32toh(hdr[1]) != CHANGELOG_FORMAT) {
		pr_err("%s: field 'version': format version %u is not supported (this reads %u)",
		       r->path, le32toh(hdr[1]), CHANGELOG_FORMAT);
		err = -EINVAL;
		goto fail;
	}
	r->off = CL_HDR_SIZE;
	return r;
fail:
	cl_reader_free(r);
	errno = -err;
	return NULL;
}

struct cl_reader *cl_reader_open(int dirfd)
{
	char path[CL_PATH_MAX];
	int fd;

	cl_path(dirfd, path);
	fd = openat(dirfd, CHANGELOG_FILE, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		pr_perror("cannot open %s", path);
		return NULL;
	}
	return cl_reader_new(fd, true, path);
}

/* The record at off is cut short: the log ends before it. */
static int cl_torn(struct cl_reader *r, size_t have)
{
	r->torn = have;
	r->state = 1;
	if (!r->quiet)
		pr_warn("%s: torn tail of %zu bytes at offset %" PRIu64 " (after record %" PRIu64
			"), ignoring", r->path, have, r->pos + r->off, r->rec);
	return 0;
}

int cl_next(struct cl_reader *r, ChangelogEntry **ret)
{
	uint64_t off = r->pos + r->off, rec = r->rec + 1;
	uint32_t len, crc, want;
	ChangelogEntry *e;
	size_t have;
	int err;

	if (r->state)
		return r->state < 0 ? r->state : 0;
	err = cl_fill(r, CL_REC_HDR);
	if (err)
		return r->state = err;
	have = r->len - r->off;
	if (have == 0) {
		r->state = 1;
		return 0;
	}
	if (have < CL_REC_HDR)
		return cl_torn(r, have);
	memcpy(&len, r->buf + r->off, sizeof(len));
	memcpy(&crc, r->buf + r->off + sizeof(len), sizeof(crc));
	len = le32toh(len);
	crc = le32toh(crc);
	/* The writer never makes a record this big, so no torn write does either. */
	if (len > CHANGELOG_MAX_RECORD)
		return r->state = cl_bad(r->path, rec, off, "length",
					 "%u bytes, more than the limit of %u", len,
					 CHANGELOG_MAX_RECORD);
	/* One byte more tells whether anything follows the record. */
	err = cl_fill(r, CL_REC_HDR + len + 1);
	if (err)
		return r->state = err;
	have = r->len - r->off;
	if (have < CL_REC_HDR + len)
		return cl_torn(r, have);
	want = crc32c(crc32c(0, r->buf + r->off, sizeof(len)), r->buf + r->off + CL_REC_HDR, len);
	if (crc != want) {
		if (have == CL_REC_HDR + len)
			return cl_torn(r, have);
		return r->state = cl_bad(r->path, rec, off, "crc",
					 "stored 0x%08x, computed 0x%08x, and more records follow: "
					 "the log is corrupt", crc, want);
	}
	e = changelog_entry__unpack(NULL, len, r->buf + r->off + CL_REC_HDR);
	if (!e)
		return r->state = cl_bad(r->path, rec, off, "message",
					 "malformed ChangelogEntry (bad encoding or a required "
					 "field missing)");
	err = cl_check(r->path, rec, off, e, r->seq);
	if (err) {
		changelog_entry__free_unpacked(e, NULL);
		return r->state = err;
	}
	r->off += CL_REC_HDR + len;
	r->rec = rec;
	r->seq = e->seq;
	r->kind = e->kind;
	*ret = e;
	return 1;
}

int cl_reader_seek(struct cl_reader *r, uint64_t off, uint64_t seq)
{
	if (off < CL_HDR_SIZE || !seq)
		return -EINVAL;
	r->pos = off;
	r->len = r->off = 0;
	r->rec = seq - 1;	/* seqs have no holes: record N is seq N */
	r->seq = seq - 1;
	r->state = 0;
	r->torn = 0;
	return 0;
}

void cl_reader_follow(struct cl_reader *r)
{
	r->quiet = true;
	if (r->state == 1) {
		r->state = 0;
		r->torn = 0;
	}
}

uint64_t cl_reader_torn(const struct cl_reader *r)
{
	return r->torn;
}

const char *cl_reader_path(const struct cl_reader *r)
{
	return r->path;
}

void cl_entry_free(ChangelogEntry *e)
{
	if (e)
		changelog_entry__free_unpacked(e, NULL);
}

void cl_reader_close(struct cl_reader *r)
{
	cl_reader_free(r);
}

/* ---------------------------------------------------------------- writer */

static int cl_write_all(struct cl_writer *w, const void *data, size_t len)
{
	const uint8_t *p = data;
	size_t done = 0;

	while (done < len) {
		ssize_t n = write(w->fd, p + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			w->err = -errno;
			pr_perror("cannot write %s", w->path);
			return w->err;
		}
		done += n;
		w->size += n;
	}
	return 0;
}

static void cl_writer_free(struct cl_writer *w)
{
	if (!w)
		return;
	if (w->fd >= 0)
		close(w->fd);
	free(w->buf);
	free(w);
}

/*
 * Check the existing log on w->fd: find the next seq and whether the last
 * record is a STOP; cut off a torn tail. 0 or -errno (logged).
 */
static int cl_writer_scan(struct cl_writer *w, bool *ret_clean)
{
	struct cl_reader *r = cl_reader_new(w->fd, false, w->path);
	ChangelogEntry *e;
	uint64_t end;
	int ret;

	if (!r)
		return -errno;
	r->quiet = true;
	while ((ret = cl_next(r, &e)) > 0)
		cl_entry_free(e);
	if (ret < 0)
		goto out;
	end = r->pos + r->off;
	if (r->torn) {
		pr_warn("%s: cutting off a torn tail of %" PRIu64 " bytes at offset %" PRIu64
			" (after record %" PRIu64 ")", w->path, r->torn, end, r->rec);
		if (ftruncate(w->fd, end) < 0) {
			ret = -errno;
			pr_perror("cannot truncate %s to %" PRIu64 " bytes", w->path, end);
			goto out;
		}
	}
	w->size = end;
	w->next_seq = r->seq + 1;
	*ret_clean = r->rec && r->kind == CL_STOP;
	ret = 0;
out:
	cl_reader_free(r);
	return ret;
}

struct cl_writer *cl_writer_open(int dirfd, uint64_t *ret_next_seq, bool *ret_clean)
{
	struct cl_writer *w = calloc(1, sizeof(*w));
	bool clean = false;
	struct stat st;
	int err;

	if (!w) {
		pr_err("out of memory");
		errno = ENOMEM;
		return NULL;
	}
	cl_path(dirfd, w->path);
	w->next_seq = 1;
	/* O_APPEND: whatever the file offset, records go after the last one. */
	w->fd = openat(dirfd, CHANGELOG_FILE, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW,
		       0600);
	if (w->fd < 0) {
		err = -errno;
		pr_perror("cannot open %s", w->path);
		goto fail;
	}
	/* Two writers would interleave records and reuse seqs. */
	if (flock(w->fd, LOCK_EX | LOCK_NB) < 0) {
		err = -errno;
		if (errno == EWOULDBLOCK)
			pr_err("%s is in use by another writer", w->path);
		else
			pr_perror("cannot lock %s", w->path);
		goto fail;
	}
	if (fstat(w->fd, &st) < 0) {
		err = -errno;
		pr_perror("cannot stat %s", w->path);
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		pr_err("%s is not a regular file", w->path);
		err = -EINVAL;
		goto fail;
	}
	if (st.st_size) {
		err = cl_writer_scan(w, &clean);
		if (err)
			goto fail;
	} else {
		uint32_t hdr[2] = { htole32(CL_MAGIC), htole32(CHANGELOG_FORMAT) };

		/* Written at once: a crash leaves an empty log or a valid one. */
		err = cl_write_all(w, hdr, sizeof(hdr));
		if (err)
			goto fail;
	}
	pr_debug("%s: appending from seq %" PRIu64 " at offset %" PRIu64 "%s", w->path,
		 w->next_seq, w->size, clean ? ", stopped cleanly" : "");
	*ret_next_seq = w->next_seq;
	*ret_clean = clean;
	return w;
fail:
	cl_writer_free(w);
	errno = -err;
	return NULL;
}

int64_t cl_append(struct cl_writer *w, ChangelogEntry *e)
{
	uint64_t seq = w->next_seq, off = cl_size(w);
	size_t len;
	uint32_t hdr[2];
	int err;

	if (w->err)
		return w->err;
	e->seq = seq;
	err = cl_check(w->path, seq, off, e, seq - 1);
	if (err)
		return err;
	len = changelog_entry__get_packed_size(e);
	if (len > CHANGELOG_MAX_RECORD) {
		pr_err("%s: record %" PRIu64 " (%s) of %zu bytes is over the limit of %u", w->path,
		       seq, cl_kind_name(e->kind), len, CHANGELOG_MAX_RECORD);
		return -EFBIG;
	}
	if (w->len + CL_REC_HDR + len > w->cap) {
		size_t cap = w->len + CL_REC_HDR + len;
		uint8_t *p;

		if (cap < 2 * CL_BUF_SIZE)
			cap = 2 * CL_BUF_SIZE;
		p = realloc(w->buf, cap);
		if (!p) {
			pr_err("%s: out of memory for record %" PRIu64, w->path, seq);
			return -ENOMEM;
		}
		w->buf = p;
		w->cap = cap;
	}
	changelog_entry__pack(e, w->buf + w->len + CL_REC_HDR);
	hdr[0] = htole32(len);
	hdr[1] = htole32(crc32c(crc32c(0, &hdr[0], sizeof(hdr[0])),
				w->buf + w->len + CL_REC_HDR, len));
	memcpy(w->buf + w->len, hdr, sizeof(hdr));
	w->len += CL_REC_HDR + len;
	w->next_seq++;
	if (w->len > CL_BUF_SIZE) {
		err = cl_flush(w, false);
		if (err)
			return err;
	}
	return seq;
}

int cl_flush(struct cl_writer *w, bool sync)
{
	size_t len = w->len;

	if (w->err)
		return w->err;
	w->len = 0;
	if (cl_write_all(w, w->buf, len))
		return w->err;
	if (sync && fdatasync(w->fd) < 0) {
		w->err = -errno;
		pr_perror("cannot sync %s", w->path);
		return w->err;
	}
	return 0;
}

uint64_t cl_size(const struct cl_writer *w)
{
	return w->size + w->len;
}

int cl_writer_close(struct cl_writer *w)
{
	int ret;

	if (!w)
		return 0;
	ret = cl_flush(w, false);
	if (!ret && fsync(w->fd) < 0) {
		ret = -errno;
		pr_perror("cannot sync %s", w->path);
	}
	cl_writer_free(w);
	return ret;
}
