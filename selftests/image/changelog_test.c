// SPDX-License-Identifier: MIT
/*
 * Changelog unit tests (user/lib/changelog.c): records of every kind round-trip;
 * the writer appends to an existing log with the right next seq; torn tails are cut
 * by the writer and end the log for the reader; corrupt and hostile records are
 * rejected by both with a message naming the record and the field; a long log reads
 * in bounded memory; `ckpt show --log` prints it as text and JSON.
 *
 * Hostile logs are written here with their own framing, so they can hold what
 * cl_append() refuses to write.
 */
#define LOG_PREFIX "changelog_test: "
#include <endian.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "run.h"

#include "changelog.h"
#include "crc32c.h"
#include "log.h"

#define CL_TEST_MAGIC	0x434c4731u	/* changelog.c's CL_MAGIC, "CLG1" */
#define BIG_RECORDS	100000
#define BIG_PATH_LEN	200
#define BIG_RSS_SLACK	(16ull << 20)	/* the big log is larger than this */

/* ---------------------------------------------------------------- helpers */

/* A record with its storage; ent_full() sets every field. */
struct ent {
	ChangelogEntry e;
	int32_t roots[2];
	int32_t tgids[3];
	uint64_t ranges[4];
};

static void ent_init(struct ent *x, uint32_t kind, uint64_t ts_ns)
{
	memset(x, 0, sizeof(*x));
	changelog_entry__init(&x->e);
	x->e.kind = kind;
	x->e.ts_ns = ts_ns;
}

/* A START (or GAP) with just the header fields. */
static void ent_header(struct ent *x, uint32_t kind, uint64_t ts_ns)
{
	ent_init(x, kind, ts_ns);
	x->e.has_format = true;
	x->e.format = CHANGELOG_FORMAT;
	x->roots[0] = 100;
	x->e.roots = x->roots;
	x->e.n_roots = 1;
	x->e.boot_id = "9d4f7c1e-2b3a-4c5d-8e9f-0a1b2c3d4e5f";
}

static void ent_full(struct ent *x, uint32_t kind, uint64_t ts_ns)
{
	ent_header(x, kind, ts_ns);
	x->e.has_pid = x->e.has_tgid = x->e.has_ppid = true;
	x->e.pid = 100 + kind;
	x->e.tgid = 100;
	x->e.ppid = 1;
	x->e.has_start = x->e.has_len = x->e.has_prot = x->e.has_flags = true;
	x->e.start = 0x7f0000001000ull + kind * 0x1000;
	x->e.len = 0x2000;
	x->e.prot = 3;
	x->e.flags = 0x1200011;
	x->e.has_old_start = x->e.has_old_len = true;
	x->e.old_start = 0x7e0000000000ull;
	x->e.old_len = 0x1000;
	x->e.has_dev = x->e.has_ino = x->e.has_pgoff = true;
	x->e.dev = 0x803;
	x->e.ino = 123456;
	x->e.pgoff = 7;
	x->e.has_arg0 = x->e.has_arg1 = true;
	x->e.arg0 = -5;
	x->e.arg1 = INT64_MAX;
	x->e.path = "/usr/bin/true";
	x->roots[1] = 200;
	x->e.n_roots = 2;
	x->e.has_realtime_ns = x->e.has_pidns_ino = true;
	x->e.realtime_ns = 1700000000123456789ull;
	x->e.pidns_ino = 4026531836ull;
	x->tgids[0] = 100;
	x->tgids[1] = 101;
	x->tgids[2] = 102;
	x->e.tgids = x->tgids;
	x->e.n_tgids = 3;
	x->e.has_count = true;
	x->e.count = 9;
	x->ranges[0] = 0x1000;
	x->ranges[1] = 0x3000;
	x->ranges[2] = 0x10000;
	x->ranges[3] = 0x20000;
	x->e.ranges = x->ranges;
	x->e.n_ranges = 4;
	x->e.reason = "because";
}

/* The kinds in an order a log may have them: START first. */
static const uint32_t all_kinds[] = {
	CL_START, CL_FORK, CL_EXIT, CL_EXEC, CL_MMAP, CL_MUNMAP, CL_MREMAP, CL_MPROTECT,
	CL_BRK, CL_MADVISE, CL_SHMAT, CL_SHMDT, CL_IO_SETUP, CL_IO_DESTROY, CL_SETSID,
	CL_SETPGID, CL_GAP, CL_ATTACH, CL_LOST, CL_MARK, CL_ARMED, CL_UNARMED, CL_STOP,
};
#define NR_KINDS (sizeof(all_kinds) / sizeof(all_kinds[0]))

/* Log messages go to a memfd the test reads back. */
static int cap_fd = -1;

static void cap_begin(void)
{
	if (cap_fd < 0) {
		cap_fd = memfd_create("log", MFD_CLOEXEC);
		if (cap_fd < 0)
			return;
		log_init(NULL, LOG_WARN);
		log_set_fd(cap_fd);
	}
	(void)!ftruncate(cap_fd, 0);
	(void)lseek(cap_fd, 0, SEEK_SET);
}

/* What was logged since cap_begin(). */
static const char *cap_text(void)
{
	static char buf[16384];
	ssize_t n = pread(cap_fd, buf, sizeof(buf) - 1, 0);

	buf[n > 0 ? n : 0] = 0;
	return buf;
}

#define EXPECT_LOGGED(substr)								\
	do {										\
		const char *text_ = cap_text();						\
		if (!strstr(text_, substr))						\
			TH_LOG("'%s' not in the log: %s", substr, text_);		\
		EXPECT_TRUE(strstr(text_, substr) != NULL);				\
	} while (0)

static off_t file_size(int dirfd)
{
	struct stat st;

	if (fstatat(dirfd, CHANGELOG_FILE, &st, 0) < 0)
		return -1;
	return st.st_size;
}

/* Offsets of up to max records (after the header), by their framing. Returns how many. */
static int rec_offsets(int dirfd, off_t *off, uint32_t *len, int max)
{
	int fd = openat(dirfd, CHANGELOG_FILE, O_RDONLY | O_CLOEXEC);
	off_t pos = 8, size = file_size(dirfd);
	int n = 0;

	while (fd >= 0 && n < max && pos + 8 <= size) {
		uint32_t l;

		if (pread(fd, &l, sizeof(l), pos) != sizeof(l))
			break;
		off[n] = pos;
		len[n] = le32toh(l);
		pos += 8 + le32toh(l);
		n++;
	}
	if (fd >= 0)
		close(fd);
	return n;
}

static int patch_byte(int dirfd, off_t off, uint8_t xor)
{
	int fd = openat(dirfd, CHANGELOG_FILE, O_RDWR | O_CLOEXEC);
	uint8_t b;
	int ret = -1;

	if (fd >= 0 && pread(fd, &b, 1, off) == 1) {
		b ^= xor;
		if (pwrite(fd, &b, 1, off) == 1)
			ret = 0;
	}
	if (fd >= 0)
		close(fd);
	return ret;
}

/* A raw log: header, then records framed here. */
static int raw_create(int dirfd, uint32_t magic, uint32_t version)
{
	uint32_t hdr[2] = { htole32(magic), htole32(version) };
	int fd = openat(dirfd, CHANGELOG_FILE, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd >= 0 && write(fd, hdr, sizeof(hdr)) != sizeof(hdr)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* One record: length field len_field (the data length unless forced), a good CRC. */
static int raw_put_bytes(int fd, uint32_t len_field, const void *data, size_t len)
{
	uint32_t hdr[2];

	hdr[0] = htole32(len_field);
	hdr[1] = htole32(crc32c(crc32c(0, &hdr[0], sizeof(hdr[0])), data, len));
	if (write(fd, hdr, sizeof(hdr)) != sizeof(hdr))
		return -1;
	return write(fd, data, len) == (ssize_t)len ? 0 : -1;
}

static int raw_put(int fd, ChangelogEntry *e, uint64_t seq)
{
	size_t len;
	uint8_t *p;
	int ret;

	e->seq = seq;
	len = changelog_entry__get_packed_size(e);
	p = malloc(len ? len : 1);
	if (!p)
		return -1;
	changelog_entry__pack(e, p);
	ret = raw_put_bytes(fd, len, p, len);
	free(p);
	return ret;
}

/* Writes a START, then n records of kind MMAP (seq 2 ... n + 1), last (if not 0) as the end. */
static int write_log(int dirfd, int n, uint32_t last)
{
	struct cl_writer *w;
	struct ent x;
	uint64_t next;
	bool clean;

	w = cl_writer_open(dirfd, &next, &clean);
	if (!w)
		return -1;
	ent_header(&x, CL_START, 1000);
	if (cl_append(w, &x.e) != 1)
		goto fail;
	for (int i = 0; i < n; i++) {
		ent_init(&x, i == n - 1 && last ? last : CL_MMAP, 2000 + i);
		x.e.has_start = x.e.has_len = true;
		x.e.start = 0x10000 + i * 0x1000ull;
		x.e.len = 0x1000;
		if (cl_append(w, &x.e) != i + 2)
			goto fail;
	}
	return cl_writer_close(w);
fail:
	cl_writer_close(w);
	return -1;
}

/*
 * Reads the whole log: the number of records, -1 if it could not be opened.
 * *ret_err is what cl_next() returned last.
 */
static int read_all(int dirfd, int *ret_err, uint64_t *ret_torn)
{
	struct cl_reader *r = cl_reader_open(dirfd);
	ChangelogEntry *e;
	uint64_t seq = 0;
	int n = 0, ret;

	if (!r)
		return -1;
	while ((ret = cl_next(r, &e)) > 0) {
		if (e->seq != ++seq)
			ret = -ERANGE;
		cl_entry_free(e);
		if (ret < 0)
			break;
		n++;
	}
	*ret_err = ret;
	*ret_torn = cl_reader_torn(r);
	cl_reader_close(r);
	return n;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)remove(path);
	return 0;
}

/* ---------------------------------------------------------------- fixture */

FIXTURE(cl)
{
	char dir[PATH_MAX];
	int dirfd;
};

FIXTURE_SETUP(cl)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(self->dir, sizeof(self->dir), "%s/changelog_test.XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	ASSERT_TRUE(mkdtemp(self->dir) != NULL);
	self->dirfd = open(self->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ASSERT_LE(0, self->dirfd);
	cap_begin();
}

FIXTURE_TEARDOWN(cl)
{
	if (self->dirfd >= 0)
		close(self->dirfd);
	if (self->dir[0])
		nftw(self->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---------------------------------------------------------------- tests */

TEST(kind_names)
{
	EXPECT_STREQ("fork", cl_kind_name(CL_FORK));
	EXPECT_STREQ("setpgid", cl_kind_name(CL_SETPGID));
	EXPECT_STREQ("start", cl_kind_name(CL_START));
	EXPECT_STREQ("stop", cl_kind_name(CL_STOP));
	EXPECT_STREQ("?", cl_kind_name(0));
	EXPECT_STREQ("?", cl_kind_name(CL_SETPGID + 1));
	EXPECT_STREQ("?", cl_kind_name(CL_START - 1));
	EXPECT_STREQ("?", cl_kind_name(CL_KIND_MAX + 1));
	EXPECT_STREQ("?", cl_kind_name(UINT32_MAX));
	for (size_t i = 0; i < NR_KINDS; i++)
		EXPECT_STRNE("?", cl_kind_name(all_kinds[i]));
}

/* Every kind with every field: what is read back packs to the same bytes. */
TEST_F(cl, round_trip)
{
	uint8_t *packed[NR_KINDS];
	size_t plen[NR_KINDS];
	struct cl_writer *w;
	struct cl_reader *r;
	ChangelogEntry *e;
	uint64_t next;
	bool clean = true;
	size_t i;

	w = cl_writer_open(self->dirfd, &next, &clean);
	ASSERT_TRUE(w != NULL);
	EXPECT_EQ(1, next);
	EXPECT_FALSE(clean);
	EXPECT_EQ(8, cl_size(w));
	for (i = 0; i < NR_KINDS; i++) {
		struct ent x;

		ent_full(&x, all_kinds[i], 1000000 + i);
		ASSERT_EQ((int64_t)i + 1, cl_append(w, &x.e));
		ASSERT_EQ(i + 1, x.e.seq);
		plen[i] = changelog_entry__get_packed_size(&x.e);
		packed[i] = malloc(plen[i]);
		ASSERT_TRUE(packed[i] != NULL);
		changelog_entry__pack(&x.e, packed[i]);
	}
	next = cl_size(w);
	ASSERT_EQ(0, cl_writer_close(w));
	EXPECT_EQ((off_t)next, file_size(self->dirfd));

	r = cl_reader_open(self->dirfd);
	ASSERT_TRUE(r != NULL);
	EXPECT_TRUE(strstr(cl_reader_path(r), self->dir) != NULL);
	for (i = 0; i < NR_KINDS; i++) {
		uint8_t buf[4096];

		ASSERT_EQ(1, cl_next(r, &e));
		EXPECT_EQ(i + 1, e->seq);
		EXPECT_EQ(all_kinds[i], e->kind);
		EXPECT_EQ(1000000 + i, e->ts_ns);
		EXPECT_STREQ("/usr/bin/true", e->path);
		EXPECT_EQ(4, e->n_ranges);
		EXPECT_EQ(-5, e->arg0);
		ASSERT_EQ(plen[i], changelog_entry__get_packed_size(e));
		changelog_entry__pack(e, buf);
		EXPECT_EQ(0, memcmp(buf, packed[i], plen[i]));
		cl_entry_free(e);
		free(packed[i]);
	}
	EXPECT_EQ(0, cl_next(r, &e));
	EXPECT_EQ(0, cl_next(r, &e));
	EXPECT_EQ(0, cl_reader_torn(r));
	cl_reader_close(r);
	EXPECT_STREQ("", cap_text());
}

/* Reopening continues the seqs; ret_clean is true only after a STOP. */
TEST_F(cl, reopen_appends)
{
	struct cl_writer *w;
	struct ent x;
	uint64_t next, torn;
	bool clean;
	int err;

	w = cl_writer_open(self->dirfd, &next, &clean);
	ASSERT_TRUE(w != NULL);
	ent_header(&x, CL_START, 10);
	ASSERT_EQ(1, cl_append(w, &x.e));
	ent_init(&x, CL_FORK, 20);
	ASSERT_EQ(2, cl_append(w, &x.e));
	ASSERT_EQ(0, cl_writer_close(w));

	/* trackd died: no STOP. */
	w = cl_writer_open(self->dirfd, &next, &clean);
	ASSERT_TRUE(w != NULL);
	EXPECT_EQ(3, next);
	EXPECT_FALSE(clean);
	ent_header(&x, CL_GAP, 30);
	x.e.reason = "restarted";
	ASSERT_EQ(3, cl_append(w, &x.e));
	ent_init(&x, CL_EXIT, 40);
	ASSERT_EQ(4, cl_append(w, &x.e));
	ent_init(&x, CL_STOP, 50);
	ASSERT_EQ(5, cl_append(w, &x.e));
	ASSERT_EQ(0, cl_writer_close(w));

	w = cl_writer_open(self->dirfd, &next, &clean);
	ASSERT_TRUE(w != NULL);
	EXPECT_EQ(6, next);
	EXPECT_TRUE(clean);
	ent_header(&x, CL_GAP, 60);
	ASSERT_EQ(6, cl_append(w, &x.e));
	ASSERT_EQ(0, cl_writer_close(w));

	w = cl_writer_open(self->dirfd, &next, &clean);
	ASSERT_TRUE(w != NULL);
	EXPECT_EQ(7, next);
	EXPECT_FALSE(clean);
	ASSERT_EQ(0, cl_writer_close(w));

	EXPECT_EQ(6, read_all(self->dirfd, &err, &torn));
	EXPECT_EQ(0, err);
	EXPECT_EQ(0, torn);
	EXPECT_EQ(0, cl_writer_close(NULL));
}

/* A header-only log (trackd died before its START) starts at seq 1. */
TEST_F(cl, reopen_empty)
{
	struct cl_writer *w;
	uint64_t next;
	bool clean;
	int fd;

	fd = raw_create(self->dirfd, CL_TEST_MAGIC, CHANGELOG_FORMAT);
	ASSERT_LE(0, fd);
	close(fd);
	w = cl_writer_open(self->dirfd, &next, &clean);
	ASSERT_TRUE(w != NULL);
	EXPECT_EQ(1, next);
	EXPECT_FALSE(clean);
	EXPECT_EQ(8, cl_size(w));
	ASSERT_EQ(0, cl_writer_close(w));
	EXPECT_EQ(8, file_size(self->dirfd));
}

/* Records stay in memory until cl_flush() or past the buffer size. */
TEST_F(cl, buffering)
{
	struct cl_writer *w, *w2;
	struct ent x;
	uint64_t next;
	bool clean;
	int64_t seq = 0;

	w = cl_writer_open(self->dirfd, &next, &clean);
	ASSERT_TRUE(w != NULL);
	EXPECT_EQ(8, file_size(self->dirfd));
	ent_header(&x, CL_START, 1);
	ASSERT_EQ(1, cl_append(w, &x.e));
	ent_init(&x, CL_MARK, 2);
	ASSERT_EQ(2, cl_append(w, &x.e));
	EXPECT_EQ(8, file_size(self->dirfd));
	EXPECT_LT(8, cl_size(w));
	ASSERT_EQ(0, cl_flush(w, false));
	EXPECT_EQ((off_t)cl_size(w), file_size(self->dirfd));

	/* A second writer is refused while this one holds the log. */
	w2 = cl_writer_open(self->dirfd, &next, &clean);
	EXPECT_TRUE(w2 == NULL);
	EXPECT_EQ(EWOULDBLOCK, errno);
	EXPECT_LOGGED("in use by another writer");
	cl_writer_close(w2);

	/* Well past 64 KiB without a flush: most of it is in the file. */
	for (int i = 0; i < 10000; i++) {
		ent_init(&x, CL_MUNMAP, 3 + i);
		x.e.has_start = x.e.has_len = true;
		x.e.start = 0x7f0000000000ull;
		x.e.len = 0x1000;
		seq = cl_append(w, &x.e);
		ASSERT_EQ(3 + i, seq);
	}
	EXPECT_LT((off_t)cl_size(w) - (128 << 10), file_size(self->dirfd));
	ASSERT_EQ(0, cl_flush(w, true));
	EXPECT_EQ((off_t)cl_size(w), file_size(self->dirfd));
	ASSERT_EQ(0, cl_writer_close(w));
}

/* cl_append() refuses what the reader would reject, without using up a seq. */
TEST_F(cl, append_rejects)
{
	struct cl_writer *w;
	struct ent x;
	uint64_t next;
	bool clean;

	w = cl_writer_open(self->dirfd, &next, &clean);
	ASSERT_TRUE(w != NULL);
	ent_init(&x, CL_FORK, 1);
	EXPECT_EQ(-EINVAL, cl_append(w, &x.e));
	EXPECT_LOGGED("field 'kind'");
	ent_init(&x, CL_START, 1);
	EXPECT_EQ(-EINVAL, cl_append(w, &x.e));
	EXPECT_LOGGED("field 'format'");
	ent_header(&x, CL_START, 1);
	ASSERT_EQ(1, cl_append(w, &x.e));
	ent_header(&x, CL_START, 2);
	EXPECT_EQ(-EINVAL, cl_append(w, &x.e));
	ent_init(&x, 20, 2);
	EXPECT_EQ(-EINVAL, cl_append(w, &x.e));
	ent_init(&x, CL_ARMED, 2);
	x.ranges[0] = 0x1000;
	x.ranges[1] = 0x2000;
	x.ranges[2] = 0x5000;
	x.e.ranges = x.ranges;
	x.e.n_ranges = 3;
	EXPECT_EQ(-EINVAL, cl_append(w, &x.e));
	EXPECT_LOGGED("field 'ranges'");
	ent_init(&x, CL_FORK, 2);
	x.e.has_pid = true;
	x.e.pid = -1;
	EXPECT_EQ(-EINVAL, cl_append(w, &x.e));
	EXPECT_LOGGED("record 2 (offset ");
	EXPECT_LOGGED("field 'pid'");
	ent_init(&x, CL_FORK, 2);
	EXPECT_EQ(2, cl_append(w, &x.e));
	ASSERT_EQ(0, cl_writer_close(w));
}

/* A log of a START, 4 MMAPs and a STOP (seq 6) whose STOP is torn in some way. */
FIXTURE(torn)
{
	char dir[PATH_MAX];
	int dirfd;
};

FIXTURE_VARIANT(torn)
{
	int cut;		/* keep this many bytes of the last record; -1: all of it */
	bool bad_crc;		/* flip its last byte */
};

FIXTURE_VARIANT_ADD(torn, mid_length) { .cut = 2 };
FIXTURE_VARIANT_ADD(torn, mid_crc) { .cut = 6 };
FIXTURE_VARIANT_ADD(torn, header_only) { .cut = 8 };
FIXTURE_VARIANT_ADD(torn, mid_message) { .cut = 11 };
FIXTURE_VARIANT_ADD(torn, bad_crc) { .cut = -1, .bad_crc = true };

FIXTURE_SETUP(torn)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(self->dir, sizeof(self->dir), "%s/changelog_test.XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	ASSERT_TRUE(mkdtemp(self->dir) != NULL);
	self->dirfd = open(self->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ASSERT_LE(0, self->dirfd);
	cap_begin();
}

FIXTURE_TEARDOWN(torn)
{
	if (self->dirfd >= 0)
		close(self->dirfd);
	if (self->dir[0])
		nftw(self->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

TEST_F(torn, cut)
{
	char want[128];
	off_t off[8], keep;
	uint32_t len[8];
	struct cl_writer *w;
	struct ent x;
	uint64_t next, torn;
	bool clean = true;
	int err;

	ASSERT_EQ(0, write_log(self->dirfd, 5, CL_STOP));
	ASSERT_EQ(6, rec_offsets(self->dirfd, off, len, 8));
	ASSERT_LT(variant->cut, (int)(8 + len[5]));
	if (variant->cut >= 0) {
		int fd = openat(self->dirfd, CHANGELOG_FILE, O_RDWR | O_CLOEXEC);

		ASSERT_LE(0, fd);
		ASSERT_EQ(0, ftruncate(fd, off[5] + variant->cut));
		close(fd);
		keep = variant->cut;
	} else {
		ASSERT_EQ(0, patch_byte(self->dirfd, off[5] + 8 + len[5] - 1, 0x40));
		keep = 8 + len[5];
	}

	/* The reader: every earlier record, then the end with the torn bytes noted. */
	EXPECT_EQ(5, read_all(self->dirfd, &err, &torn));
	EXPECT_EQ(0, err);
	EXPECT_EQ(keep, torn);
	snprintf(want, sizeof(want), "torn tail of %lld bytes at offset %lld", (long long)keep,
		 (long long)off[5]);
	EXPECT_LOGGED(want);

	/* The writer cuts it off and carries on from seq 6. */
	cap_begin();
	w = cl_writer_open(self->dirfd, &next, &clean);
	ASSERT_TRUE(w != NULL);
	EXPECT_EQ(6, next);
	EXPECT_FALSE(clean);
	snprintf(want, sizeof(want), "cutting off a torn tail of %lld bytes", (long long)keep);
	EXPECT_LOGGED(want);
	EXPECT_EQ(off[5], file_size(self->dirfd));
	EXPECT_EQ((uint64_t)off[5], cl_size(w));
	ent_init(&x, CL_STOP, 9000);
	EXPECT_EQ(6, cl_append(w, &x.e));
	ASSERT_EQ(0, cl_writer_close(w));

	cap_begin();
	EXPECT_EQ(6, read_all(self->dirfd, &err, &torn));
	EXPECT_EQ(0, err);
	EXPECT_EQ(0, torn);
	EXPECT_STREQ("", cap_text());
}

/* A bad record with more after it is corruption: both refuse, the file is left alone. */
TEST_F(cl, corrupt_middle)
{
	char want[128];
	off_t off[8], size;
	uint32_t len[8];
	struct cl_writer *w;
	uint64_t next, torn;
	bool clean;
	int err;

	ASSERT_EQ(0, write_log(self->dirfd, 5, CL_STOP));
	ASSERT_EQ(6, rec_offsets(self->dirfd, off, len, 8));
	ASSERT_EQ(0, patch_byte(self->dirfd, off[2] + 9, 0x01));
	size = file_size(self->dirfd);

	EXPECT_EQ(2, read_all(self->dirfd, &err, &torn));
	EXPECT_EQ(-EINVAL, err);
	EXPECT_EQ(0, torn);
	snprintf(want, sizeof(want), "changelog.img: record 3 (offset %lld): field 'crc'",
		 (long long)off[2]);
	EXPECT_LOGGED(want);
	EXPECT_LOGGED(self->dir);

	cap_begin();
	w = cl_writer_open(self->dirfd, &next, &clean);
	EXPECT_TRUE(w == NULL);
	EXPECT_EQ(EINVAL, errno);
	EXPECT_LOGGED(want);
	cl_writer_close(w);
	EXPECT_EQ(size, file_size(self->dirfd));

	/* A length cut short in the middle: the rest does not frame. */
	ASSERT_EQ(0, patch_byte(self->dirfd, off[2] + 9, 0x01));
	ASSERT_EQ(0, patch_byte(self->dirfd, off[1], 0x01));
	cap_begin();
	EXPECT_EQ(1, read_all(self->dirfd, &err, &torn));
	EXPECT_EQ(-EINVAL, err);
	EXPECT_LOGGED("record 2 (offset ");
}

/* Hostile logs: each is rejected by the reader and the writer, naming the field. */
FIXTURE(hostile)
{
	char dir[PATH_MAX];
	int dirfd;
};

FIXTURE_VARIANT(hostile)
{
	int (*build)(int fd);	/* after a START (seq 1) unless magic/version are set */
	uint32_t magic, version;	/* 0: the right ones */
	const char *field;
	int record;		/* the record named, 0: a header error */
};

static int h_huge_length(int fd)
{
	uint8_t junk[64] = { 0 };

	return raw_put_bytes(fd, 0xfffffff0u, junk, sizeof(junk));
}

static int h_max_length(int fd)
{
	uint8_t junk[64] = { 0 };

	return raw_put_bytes(fd, CHANGELOG_MAX_RECORD + 1, junk, sizeof(junk));
}

static int h_seq_gap(int fd)
{
	struct ent x;

	ent_init(&x, CL_FORK, 2);
	return raw_put(fd, &x.e, 3);
}

static int h_seq_repeat(int fd)
{
	struct ent x;

	ent_init(&x, CL_FORK, 2);
	return raw_put(fd, &x.e, 1);
}

static int h_unknown_kind(int fd)
{
	struct ent x;

	ent_init(&x, 20, 2);
	return raw_put(fd, &x.e, 2);
}

static int h_kind_zero(int fd)
{
	struct ent x;

	ent_init(&x, 0, 2);
	return raw_put(fd, &x.e, 2);
}

static int h_second_start(int fd)
{
	struct ent x;

	ent_header(&x, CL_START, 2);
	return raw_put(fd, &x.e, 2);
}

static int h_armed(int fd, size_t n, uint64_t a, uint64_t b, uint64_t c)
{
	struct ent x;

	ent_init(&x, CL_ARMED, 2);
	x.ranges[0] = a;
	x.ranges[1] = b;
	x.ranges[2] = c;
	x.e.ranges = x.ranges;
	x.e.n_ranges = n;
	return raw_put(fd, &x.e, 2);
}

static int h_odd_ranges(int fd)
{
	return h_armed(fd, 3, 0x1000, 0x2000, 0x3000);
}

static int h_empty_range(int fd)
{
	return h_armed(fd, 2, 0x2000, 0x2000, 0);
}

static int h_reversed_range(int fd)
{
	return h_armed(fd, 2, 0x3000, 0x2000, 0);
}

static int h_unaligned_range(int fd)
{
	return h_armed(fd, 2, 0x1000, 0x2001, 0);
}

static int h_negative_pid(int fd)
{
	struct ent x;

	ent_init(&x, CL_EXIT, 2);
	x.e.has_pid = true;
	x.e.pid = -7;
	return raw_put(fd, &x.e, 2);
}

static int h_negative_ppid(int fd)
{
	struct ent x;

	ent_init(&x, CL_FORK, 2);
	x.e.has_ppid = true;
	x.e.ppid = INT32_MIN;
	return raw_put(fd, &x.e, 2);
}

static int h_negative_tgid(int fd)
{
	struct ent x;

	ent_init(&x, CL_LOST, 2);
	x.tgids[0] = -1;
	x.e.tgids = x.tgids;
	x.e.n_tgids = 1;
	return raw_put(fd, &x.e, 2);
}

static int h_long_path(int fd)
{
	static char path[5000];
	struct ent x;

	memset(path, 'a', sizeof(path) - 1);
	path[0] = '/';
	ent_init(&x, CL_EXEC, 2);
	x.e.path = path;
	return raw_put(fd, &x.e, 2);
}

static int h_gap_without_format(int fd)
{
	struct ent x;

	ent_header(&x, CL_GAP, 2);
	x.e.has_format = false;
	return raw_put(fd, &x.e, 2);
}

static int h_malformed(int fd)
{
	static const uint8_t junk[] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

	return raw_put_bytes(fd, sizeof(junk), junk, sizeof(junk));
}

/* The first record is the hostile one: these replace the START. */
static int h_first_not_start(int fd)
{
	struct ent x;

	ent_init(&x, CL_FORK, 1);
	return raw_put(fd, &x.e, 1);
}

static int h_first_seq_2(int fd)
{
	struct ent x;

	ent_header(&x, CL_START, 1);
	return raw_put(fd, &x.e, 2);
}

static int h_wrong_format(int fd)
{
	struct ent x;

	ent_header(&x, CL_START, 1);
	x.e.format = CHANGELOG_FORMAT + 1;
	return raw_put(fd, &x.e, 1);
}

static int h_no_roots(int fd)
{
	struct ent x;

	ent_header(&x, CL_START, 1);
	x.e.n_roots = 0;
	return raw_put(fd, &x.e, 1);
}

static int h_no_boot_id(int fd)
{
	struct ent x;

	ent_header(&x, CL_START, 1);
	x.e.boot_id = NULL;
	return raw_put(fd, &x.e, 1);
}

FIXTURE_VARIANT_ADD(hostile, huge_length) {
	.build = h_huge_length, .field = "length", .record = 2 };
FIXTURE_VARIANT_ADD(hostile, max_length) { .build = h_max_length, .field = "length", .record = 2 };
FIXTURE_VARIANT_ADD(hostile, seq_gap) { .build = h_seq_gap, .field = "seq", .record = 2 };
FIXTURE_VARIANT_ADD(hostile, seq_repeat) { .build = h_seq_repeat, .field = "seq", .record = 2 };
FIXTURE_VARIANT_ADD(hostile, unknown_kind) {
	.build = h_unknown_kind, .field = "kind", .record = 2 };
FIXTURE_VARIANT_ADD(hostile, kind_zero) { .build = h_kind_zero, .field = "kind", .record = 2 };
FIXTURE_VARIANT_ADD(hostile, second_start) {
	.build = h_second_start, .field = "kind", .record = 2 };
FIXTURE_VARIANT_ADD(hostile, odd_ranges) { .build = h_odd_ranges, .field = "ranges", .record = 2 };
FIXTURE_VARIANT_ADD(hostile, empty_range) {
	.build = h_empty_range, .field = "ranges", .record = 2 };
FIXTURE_VARIANT_ADD(hostile, reversed_range) {
	.build = h_reversed_range, .field = "ranges", .record = 2 };
FIXTURE_VARIANT_ADD(hostile, unaligned_range) {
	.build = h_unaligned_range, .field = "ranges", .record = 2 };
FIXTURE_VARIANT_ADD(hostile, negative_pid) { .build = h_negative_pid, .field = "pid", .record = 2 };
FIXTURE_VARIANT_ADD(hostile, negative_ppid) {
	.build = h_negative_ppid, .field = "ppid", .record = 2 };
FIXTURE_VARIANT_ADD(hostile, negative_tgid) {
	.build = h_negative_tgid, .field = "tgids", .record = 2 };
FIXTURE_VARIANT_ADD(hostile, long_path) { .build = h_long_path, .field = "path", .record = 2 };
FIXTURE_VARIANT_ADD(hostile, gap_without_format) {
	.build = h_gap_without_format, .field = "format", .record = 2 };
FIXTURE_VARIANT_ADD(hostile, malformed) { .build = h_malformed, .field = "message", .record = 2 };
FIXTURE_VARIANT_ADD(hostile, first_not_start) {
	.build = h_first_not_start, .field = "kind", .record = 1 };
FIXTURE_VARIANT_ADD(hostile, first_seq_2) { .build = h_first_seq_2, .field = "seq", .record = 1 };
FIXTURE_VARIANT_ADD(hostile, wrong_format) {
	.build = h_wrong_format, .field = "format", .record = 1 };
FIXTURE_VARIANT_ADD(hostile, no_roots) { .build = h_no_roots, .field = "roots", .record = 1 };
FIXTURE_VARIANT_ADD(hostile, no_boot_id) { .build = h_no_boot_id, .field = "boot_id", .record = 1 };
FIXTURE_VARIANT_ADD(hostile, wrong_magic) { .magic = 0x494e5631, .field = "magic" };
FIXTURE_VARIANT_ADD(hostile, wrong_version) { .version = CHANGELOG_FORMAT + 1, .field = "version" };

FIXTURE_SETUP(hostile)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(self->dir, sizeof(self->dir), "%s/changelog_test.XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	ASSERT_TRUE(mkdtemp(self->dir) != NULL);
	self->dirfd = open(self->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ASSERT_LE(0, self->dirfd);
	cap_begin();
}

FIXTURE_TEARDOWN(hostile)
{
	if (self->dirfd >= 0)
		close(self->dirfd);
	if (self->dir[0])
		nftw(self->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

TEST_F(hostile, rejected)
{
	char want[128];
	struct cl_writer *w;
	struct cl_reader *r;
	ChangelogEntry *e;
	uint32_t len[2];
	off_t size, off[2];
	uint64_t next;
	bool clean;
	int fd;

	fd = raw_create(self->dirfd, variant->magic ? variant->magic : CL_TEST_MAGIC,
			variant->version ? variant->version : CHANGELOG_FORMAT);
	ASSERT_LE(0, fd);
	if (variant->record == 2) {
		struct ent x;

		ent_header(&x, CL_START, 1);
		ASSERT_EQ(0, raw_put(fd, &x.e, 1));
	}
	if (variant->build)
		ASSERT_EQ(0, variant->build(fd));
	close(fd);
	size = file_size(self->dirfd);

	if (variant->record) {
		ASSERT_EQ(variant->record, rec_offsets(self->dirfd, off, len, variant->record));
		snprintf(want, sizeof(want), "changelog.img: record %d (offset %lld): field '%s': ",
			 variant->record, (long long)off[variant->record - 1], variant->field);
	} else {
		snprintf(want, sizeof(want), "changelog.img: field '%s': ", variant->field);
	}
	r = cl_reader_open(self->dirfd);
	if (!variant->record) {
		EXPECT_TRUE(r == NULL);
		EXPECT_EQ(EINVAL, errno);
	} else {
		ASSERT_TRUE(r != NULL);
		for (int i = 1; i < variant->record; i++) {
			ASSERT_EQ(1, cl_next(r, &e));
			cl_entry_free(e);
		}
		EXPECT_EQ(-EINVAL, cl_next(r, &e));
		/* The error sticks. */
		EXPECT_EQ(-EINVAL, cl_next(r, &e));
		EXPECT_EQ(0, cl_reader_torn(r));
	}
	cl_reader_close(r);
	EXPECT_LOGGED(want);

	cap_begin();
	w = cl_writer_open(self->dirfd, &next, &clean);
	EXPECT_TRUE(w == NULL);
	EXPECT_EQ(EINVAL, errno);
	EXPECT_LOGGED(want);
	cl_writer_close(w);
	EXPECT_EQ(size, file_size(self->dirfd));
}

/* A log much larger than any buffer reads record by record. */
TEST_F_TIMEOUT(cl, big_log, 120)
{
	char path[BIG_PATH_LEN + 1];
	struct rusage before, after;
	struct cl_writer *w;
	struct cl_reader *r;
	ChangelogEntry *e;
	struct ent x;
	uint64_t next, seq = 0;
	bool clean;
	int ret;

	memset(path, 'p', BIG_PATH_LEN);
	path[0] = '/';
	path[BIG_PATH_LEN] = 0;
	w = cl_writer_open(self->dirfd, &next, &clean);
	ASSERT_TRUE(w != NULL);
	ent_header(&x, CL_START, 1);
	ASSERT_EQ(1, cl_append(w, &x.e));
	for (int i = 2; i <= BIG_RECORDS; i++) {
		ent_init(&x, CL_EXEC, i);
		x.e.has_pid = x.e.has_tgid = true;
		x.e.pid = x.e.tgid = i;
		x.e.path = path;
		ASSERT_EQ(i, cl_append(w, &x.e));
	}
	ASSERT_EQ(0, cl_writer_close(w));
	ASSERT_LT((off_t)(BIG_RSS_SLACK + (4 << 20)), file_size(self->dirfd));

	ASSERT_EQ(0, getrusage(RUSAGE_SELF, &before));
	r = cl_reader_open(self->dirfd);
	ASSERT_TRUE(r != NULL);
	while ((ret = cl_next(r, &e)) > 0) {
		ASSERT_EQ(++seq, e->seq);
		cl_entry_free(e);
	}
	EXPECT_EQ(0, ret);
	EXPECT_EQ(BIG_RECORDS, seq);
	EXPECT_EQ(0, cl_reader_torn(r));
	cl_reader_close(r);
	ASSERT_EQ(0, getrusage(RUSAGE_SELF, &after));
	/* ru_maxrss is in KiB. Reading the file whole would add all of it. */
	TH_LOG("%lld-byte log read; max RSS grew by %ld KiB", (long long)file_size(self->dirfd),
	       after.ru_maxrss - before.ru_maxrss);
	EXPECT_GT(BIG_RSS_SLACK / 1024, (unsigned long long)(after.ru_maxrss - before.ru_maxrss));

	/* The writer's check of it is streamed too. */
	w = cl_writer_open(self->dirfd, &next, &clean);
	ASSERT_TRUE(w != NULL);
	EXPECT_EQ(BIG_RECORDS + 1, next);
	ASSERT_EQ(0, cl_writer_close(w));
}

/* ---------------------------------------------------------------- ckpt show */

#define ARGS(...) ((const char *const[]){ __VA_ARGS__, NULL })

static int count_of(const char *text, const char *what)
{
	int n = 0;

	for (const char *p = text; (p = strstr(p, what)); p += strlen(what))
		n++;
	return n;
}

/* The log `ckpt show` is tested on. */
static int write_show_log(int dirfd)
{
	const uint64_t t0 = 5000000000ull;
	struct cl_writer *w;
	struct ent x;
	uint64_t next;
	bool clean;
	int ret = 0;

	w = cl_writer_open(dirfd, &next, &clean);
	if (!w)
		return -1;
	ent_header(&x, CL_START, t0);
	x.e.has_realtime_ns = x.e.has_pidns_ino = true;
	x.e.realtime_ns = 1700000000000000000ull;
	x.e.pidns_ino = 4026531836ull;
	x.e.boot_id = "b0";
	ret |= cl_append(w, &x.e) != 1;

	ent_init(&x, CL_FORK, t0 + 3512000);
	x.e.has_pid = x.e.has_tgid = x.e.has_ppid = x.e.has_flags = true;
	x.e.pid = x.e.tgid = 104;
	x.e.ppid = 100;
	x.e.flags = 0x1200011;
	ret |= cl_append(w, &x.e) != 2;

	ent_init(&x, CL_MMAP, t0 + 4000000);
	x.e.has_pid = x.e.has_tgid = x.e.has_start = x.e.has_len = x.e.has_prot = true;
	x.e.has_flags = true;
	x.e.pid = x.e.tgid = 104;
	x.e.start = 0x7f0000000000ull;
	x.e.len = 0x21000;
	x.e.prot = 3;
	x.e.flags = 0x22;
	ret |= cl_append(w, &x.e) != 3;

	ent_init(&x, CL_EXEC, t0 + 1250000000);
	x.e.has_pid = x.e.has_tgid = x.e.has_arg0 = true;
	x.e.pid = x.e.tgid = x.e.arg0 = 104;
	x.e.path = "/bin/true";
	ret |= cl_append(w, &x.e) != 4;

	ent_init(&x, CL_MARK, t0 + 2000000000);
	x.tgids[0] = 100;
	x.tgids[1] = 104;
	x.e.tgids = x.tgids;
	x.e.n_tgids = 2;
	ret |= cl_append(w, &x.e) != 5;

	ent_init(&x, CL_ARMED, t0 + 2000000001);
	x.e.has_tgid = true;
	x.e.tgid = 104;
	x.ranges[0] = 0x400000;
	x.ranges[1] = 0x401000;
	x.ranges[2] = 0x7f0000000000ull;
	x.ranges[3] = 0x7f0000021000ull;
	x.e.ranges = x.ranges;
	x.e.n_ranges = 4;
	ret |= cl_append(w, &x.e) != 6;

	ent_init(&x, CL_LOST, t0 + 3000000000ull);
	x.e.has_count = true;
	x.e.count = 3;
	ret |= cl_append(w, &x.e) != 7;

	ent_init(&x, CL_LOST, t0 + 3000000000ull);
	x.e.has_count = true;
	x.e.count = 1;
	x.tgids[0] = 104;
	x.e.tgids = x.tgids;
	x.e.n_tgids = 1;
	x.e.reason = "ring full";
	ret |= cl_append(w, &x.e) != 8;

	ent_header(&x, CL_GAP, 100);
	x.e.reason = "restarted";
	ret |= cl_append(w, &x.e) != 9;

	ent_init(&x, CL_STOP, 50100);
	x.tgids[0] = 100;
	x.e.tgids = x.tgids;
	x.e.n_tgids = 1;
	ret |= cl_append(w, &x.e) != 10;

	ret |= cl_writer_close(w) != 0;
	return ret ? -1 : 0;
}

static const char *const show_lines[] = {
	"1 +0.000000 start format 1 roots [100] boot_id 'b0' realtime_ns 1700000000000000000 "
	"pidns_ino 4026531836\n",
	"2 +0.003512 fork pid 104 tgid 104 ppid 100 flags 0x1200011 thread no\n",
	"3 +0.004000 mmap pid 104 tgid 104 start 0x7f0000000000 len 0x21000 prot rw- flags 0x22\n",
	"4 +1.250000 exec pid 104 tgid 104 arg0 104 path '/bin/true'\n",
	"5 +2.000000 mark tgids [100, 104]\n",
	"6 +2.000000 armed tgid 104 ranges [0x400000-0x401000, 0x7f0000000000-0x7f0000021000]\n",
	"7 +3.000000 lost count 3 tgids all\n",
	"8 +3.000000 lost tgids [104] count 1 reason 'ring full'\n",
	"9 +0.000000 gap format 1 roots [100] boot_id '9d4f7c1e-2b3a-4c5d-8e9f-0a1b2c3d4e5f' "
	"reason 'restarted'\n",
	"10 +0.000050 stop tgids [100]\n",
};
#define NR_SHOW_LINES (sizeof(show_lines) / sizeof(show_lines[0]))

static char *show_expected(size_t from)
{
	static char buf[4096];

	buf[0] = 0;
	for (size_t i = from; i < NR_SHOW_LINES; i++)
		strcat(buf, show_lines[i]);
	return buf;
}

TEST_F(cl, show_log)
{
	char ckpt[PATH_MAX], file[PATH_MAX + 32];
	struct run_result r;

	if (!run_find_ckpt(ckpt, sizeof(ckpt))) {
		TH_LOG("no ckpt binary (set CKPT or run 'make ckpt')");
		ASSERT_TRUE(0);
	}
	ASSERT_EQ(0, write_show_log(self->dirfd));

	run_ckpt(&r, ckpt, ARGS("show", "--log", self->dir));
	EXPECT_EQ(0, r.status);
	ASSERT_TRUE(r.out != NULL);
	EXPECT_STREQ(show_expected(0), r.out);
	EXPECT_STREQ("", r.err);
	run_result_free(&r);

	/* After seq 4: what happened since a mark at 4. */
	run_ckpt(&r, ckpt, ARGS("show", "--log", self->dir, "--since", "4"));
	EXPECT_EQ(0, r.status);
	EXPECT_STREQ(show_expected(4), r.out);
	run_result_free(&r);

	run_ckpt(&r, ckpt, ARGS("show", "--since", "10", "--log", self->dir));
	EXPECT_EQ(0, r.status);
	EXPECT_STREQ("", r.out);
	run_result_free(&r);

	run_ckpt(&r, ckpt, ARGS("show", "--log", self->dir, "--json"));
	EXPECT_EQ(0, r.status);
	EXPECT_TRUE(run_json_valid(r.out));
	EXPECT_EQ('[', r.out[0]);
	EXPECT_EQ(10, count_of(r.out, "{\"seq\": "));
	EXPECT_TRUE(strstr(r.out, "{\"seq\": 2, \"ts_ns\": 5003512000, \"kind\": 1, \"pid\": 104, "
				  "\"tgid\": 104, \"ppid\": 100, \"flags\": 18874385}") != NULL);
	EXPECT_TRUE(strstr(r.out, "\"ranges\": [4194304, 4198400, 139637976727552, "
				  "139637976862720]") != NULL);
	EXPECT_TRUE(strstr(r.out, "\"path\": \"/bin/true\"") != NULL);
	run_result_free(&r);

	run_ckpt(&r, ckpt, ARGS("show", "--log", self->dir, "--json", "--since", "8"));
	EXPECT_EQ(0, r.status);
	EXPECT_TRUE(run_json_valid(r.out));
	EXPECT_EQ(2, count_of(r.out, "{\"seq\": "));
	EXPECT_TRUE(strstr(r.out, "{\"seq\": 9, ") != NULL);
	run_result_free(&r);

	run_ckpt(&r, ckpt, ARGS("show", "--log", self->dir, "--json", "--since", "99"));
	EXPECT_EQ(0, r.status);
	EXPECT_STREQ("[]\n", r.out);
	run_result_free(&r);

	/* The file itself, and the directory holding it. */
	snprintf(file, sizeof(file), "%s/%s", self->dir, CHANGELOG_FILE);
	run_ckpt(&r, ckpt, ARGS("show", file));
	EXPECT_EQ(0, r.status);
	EXPECT_TRUE(strstr(r.out, "changelog.img: changelog\n") == r.out);
	EXPECT_TRUE(strstr(r.out, "\n  2 +0.003512 fork pid 104 tgid 104 ppid 100 flags 0x1200011 "
				  "thread no\n") != NULL);
	run_result_free(&r);

	run_ckpt(&r, ckpt, ARGS("show", "--json", self->dir));
	EXPECT_EQ(0, r.status);
	EXPECT_TRUE(run_json_valid(r.out));
	EXPECT_TRUE(strstr(r.out, "\"kind\": \"changelog\", \"entries\": [") != NULL);
	EXPECT_EQ(10, count_of(r.out, "{\"seq\": "));
	EXPECT_STREQ("", r.err);
	run_result_free(&r);

	/* Usage errors. */
	run_ckpt(&r, ckpt, ARGS("show", "--log", self->dir, "--since", "x"));
	EXPECT_EQ(2, r.status);
	run_result_free(&r);
	run_ckpt(&r, ckpt, ARGS("show", "--log", self->dir, self->dir));
	EXPECT_EQ(2, r.status);
	run_result_free(&r);
	snprintf(file, sizeof(file), "%s/none", self->dir);
	run_ckpt(&r, ckpt, ARGS("show", "--log", file));
	EXPECT_EQ(1, r.status);
	run_result_free(&r);
}

/* A torn tail is a warning; a corrupt record fails the command. */
TEST_F(cl, show_log_damaged)
{
	char ckpt[PATH_MAX], want[128];
	off_t off[16];
	uint32_t len[16];
	struct run_result r;
	int fd;

	if (!run_find_ckpt(ckpt, sizeof(ckpt))) {
		TH_LOG("no ckpt binary (set CKPT or run 'make ckpt')");
		ASSERT_TRUE(0);
	}
	ASSERT_EQ(0, write_show_log(self->dirfd));
	ASSERT_EQ(10, rec_offsets(self->dirfd, off, len, 16));
	fd = openat(self->dirfd, CHANGELOG_FILE, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ftruncate(fd, off[9] + 5));
	close(fd);

	run_ckpt(&r, ckpt, ARGS("show", "--log", self->dir));
	EXPECT_EQ(0, r.status);
	EXPECT_EQ(9, count_of(r.out, "\n"));
	snprintf(want, sizeof(want), "torn tail of 5 bytes at offset %lld", (long long)off[9]);
	EXPECT_TRUE(strstr(r.err, want) != NULL);
	run_result_free(&r);

	run_ckpt(&r, ckpt, ARGS("show", "--log", self->dir, "--json"));
	EXPECT_EQ(0, r.status);
	EXPECT_TRUE(run_json_valid(r.out));
	EXPECT_EQ(9, count_of(r.out, "{\"seq\": "));
	run_result_free(&r);

	ASSERT_EQ(0, patch_byte(self->dirfd, off[4] + 8, 0x10));
	run_ckpt(&r, ckpt, ARGS("show", "--log", self->dir));
	EXPECT_EQ(1, r.status);
	EXPECT_EQ(4, count_of(r.out, "\n"));
	snprintf(want, sizeof(want), "record 5 (offset %lld): field 'crc'", (long long)off[4]);
	if (!strstr(r.err, want))
		TH_LOG("stderr: %s", r.err);
	EXPECT_TRUE(strstr(r.err, want) != NULL);
	run_result_free(&r);

	run_ckpt(&r, ckpt, ARGS("show", "--log", self->dir, "--json"));
	EXPECT_EQ(1, r.status);
	EXPECT_TRUE(run_json_valid(r.out));
	run_result_free(&r);

	run_ckpt(&r, ckpt, ARGS("show", "--json", self->dir));
	EXPECT_EQ(1, r.status);
	EXPECT_TRUE(run_json_valid(r.out));
	EXPECT_TRUE(strstr(r.out, "\"error\": \"record 5 is corrupt\"") != NULL);
	run_result_free(&r);
}

TEST_HARNESS_MAIN
