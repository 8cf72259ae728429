// SPDX-License-Identifier: MIT
/*
 * The migration stream (user/ckpt/stream.c) and the in-RAM image directory
 * (user/ckpt/memdir.c), linked in: a round of files (empty, small, several
 * MiB) goes over a socket pair and arrives byte for byte, control messages
 * skip PINGs and turn a peer's ERROR into -EREMOTEIO; hostile frames (names
 * with '/' or '..', lengths over the limits, bad magic, a stream that ends
 * inside a frame or a file) are rejected with a message naming the frame
 * and field, and leave no directory behind; a memdir holds files reachable
 * under its path only (another mount namespace, a tmpfs), and its helper
 * ends with its owner, taking the files with it.
 */
#define LOG_PREFIX "stream_test: "
#include <endian.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#include "log.h"
#include "memdir.h"
#include "stream.h"

#define TMPFS_MAGIC_NR	0x01021994
#define BIG_FILE	((8u << 20) + 123)	/* not a multiple of any pipe or page size */
#define WAIT_MS		5000

/* ---------------------------------------------------------------- helpers */

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

static const char *cap_text(void)
{
	static char buf[16384];
	ssize_t n = cap_fd >= 0 ? pread(cap_fd, buf, sizeof(buf) - 1, 0) : -1;

	buf[n > 0 ? n : 0] = 0;
	return buf;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Write len bytes of a seeded pattern into dirfd/name. 0 or -errno. */
static int make_file(int dirfd, const char *name, size_t len, unsigned seed)
{
	int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	char *buf = malloc(len ? len : 1);
	int err = 0;

	if (fd < 0 || !buf) {
		err = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < len; i++) {
		seed = seed * 1103515245u + 12345u;
		buf[i] = seed >> 16;
	}
	if (write(fd, buf, len) != (ssize_t)len)
		err = -EIO;
out:
	free(buf);
	if (fd >= 0)
		close(fd);
	return err;
}

/* Whether a/name and b/name hold the same bytes. */
static bool same_file(int a, int b, const char *name)
{
	struct stat sa, sb;
	bool same = false;
	int fa = openat(a, name, O_RDONLY | O_CLOEXEC), fb = openat(b, name, O_RDONLY | O_CLOEXEC);

	if (fa >= 0 && fb >= 0 && !fstat(fa, &sa) && !fstat(fb, &sb) && sa.st_size == sb.st_size) {
		char *x = malloc(sa.st_size + 1), *y = malloc(sa.st_size + 1);
		same = x && y && pread(fa, x, sa.st_size, 0) == sa.st_size &&
		       pread(fb, y, sb.st_size, 0) == sb.st_size && !memcmp(x, y, sa.st_size);
		free(x);
		free(y);
	}
	if (fa >= 0)
		close(fa);
	if (fb >= 0)
		close(fb);
	return same;
}

/* A raw frame header (and name) as a hostile peer would write it. */
static int raw_frame(int sk, unsigned type, unsigned flags, uint32_t name_len, const char *name,
		     size_t name_bytes, uint64_t arg, uint32_t magic)
{
	struct stream_frame f = {
		.magic = htole32(magic),
		.type = htole16(type),
		.flags = htole16(flags),
		.name_len = htole32(name_len),
		.arg = htole64(arg),
	};

	if (write(sk, &f, sizeof(f)) != sizeof(f))
		return -EIO;
	if (name_bytes && write(sk, name, name_bytes) != (ssize_t)name_bytes)
		return -EIO;
	return 0;
}

static int frame(int sk, unsigned type, unsigned flags, const char *name, uint64_t arg)
{
	size_t len = name ? strlen(name) : 0;

	return raw_frame(sk, type, flags, len, name, len, arg, STREAM_MAGIC);
}

static bool exists_at(int dirfd, const char *name)
{
	struct stat st;

	return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

/* ---------------------------------------------------------------- fixture */

FIXTURE(st)
{
	char dir[PATH_MAX];
	int src, dst;		/* DIR/src and DIR/dst */
	int sk[2];
};

FIXTURE_SETUP(st)
{
	const char *tmp = getenv("TMPDIR");
	char path[PATH_MAX + 8];

	self->src = self->dst = self->sk[0] = self->sk[1] = -1;
	snprintf(self->dir, sizeof(self->dir), "%s/stream_test.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	ASSERT_TRUE(mkdtemp(self->dir) != NULL);
	snprintf(path, sizeof(path), "%s/src", self->dir);
	ASSERT_EQ(0, mkdir(path, 0700));
	self->src = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	snprintf(path, sizeof(path), "%s/dst", self->dir);
	ASSERT_EQ(0, mkdir(path, 0700));
	self->dst = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ASSERT_LE(0, self->src);
	ASSERT_LE(0, self->dst);
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, self->sk));
	cap_begin();
}

FIXTURE_TEARDOWN(st)
{
	for (int i = 0; i < 2; i++)
		if (self->sk[i] >= 0)
			close(self->sk[i]);
	if (self->src >= 0)
		close(self->src);
	if (self->dst >= 0)
		close(self->dst);
	if (self->dir[0])
		nftw(self->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static const struct stream_limits big_limits = {
	.max_file = 1ull << 30, .max_round = 1ull << 31, .max_files = 1000,
};

/* ---------------------------------------------------------------- rounds */

static const struct {
	const char *name;
	size_t len;
} round_files[] = {
	{ "inventory.img", 77 }, { "core-10.img", 1000 }, { "empty.img", 0 },
	{ "pages-10.img", BIG_FILE }, { "pagemap-10.img", 4096 },
};
#define NR_ROUND_FILES (sizeof(round_files) / sizeof(round_files[0]))

/* A round crosses the socket pair (the sender a child) and arrives byte for byte. */
TEST_F(st, round_identical)
{
	struct stream_round sent = {}, got = {};
	uint64_t total = 0;
	int p[2], status;

	ASSERT_EQ(0, mkdirat(self->src, "7", 0700));
	int rd = openat(self->src, "7", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ASSERT_LE(0, rd);
	for (size_t i = 0; i < NR_ROUND_FILES; i++) {
		ASSERT_EQ(0, make_file(rd, round_files[i].name, round_files[i].len, i + 1));
		total += round_files[i].len;
	}
	/* Not a regular file: skipped with a warning. */
	ASSERT_EQ(0, mkdirat(rd, "subdir", 0700));
	ASSERT_EQ(0, pipe2(p, O_CLOEXEC));
	pid_t child = fork();
	ASSERT_LE(0, child);
	if (!child) {
		close(self->sk[1]);
		int err = stream_setup(self->sk[0], WAIT_MS, -1);
		if (!err)
			err = stream_send_round(self->sk[0], 7, STREAM_F_DELTA, self->src, "7", &sent);
		if (!err)
			err = stream_send_msg(self->sk[0], STREAM_PING, 0, NULL);
		if (!err)
			err = stream_send_msg(self->sk[0], STREAM_ACK, 7, NULL);
		if (!err)
			err = stream_send_msg(self->sk[0], STREAM_ERROR, EXDEV, "it broke");
		if (write(p[1], &sent, sizeof(sent)) != sizeof(sent))
			err = -EIO;
		_exit(err ? 1 : 0);
	}
	close(p[1]);
	close(self->sk[0]);
	self->sk[0] = -1;
	ASSERT_EQ(0, stream_setup(self->sk[1], WAIT_MS, -1));
	ASSERT_EQ(0, stream_recv_round(self->sk[1], self->dst, &big_limits, &got));
	EXPECT_EQ(7, got.round);
	EXPECT_EQ(STREAM_F_DELTA, got.flags);
	EXPECT_STREQ("7", got.dir);
	EXPECT_EQ(NR_ROUND_FILES, got.files);
	EXPECT_EQ(total, got.bytes);
	int gd = openat(self->dst, "7", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ASSERT_LE(0, gd);
	for (size_t i = 0; i < NR_ROUND_FILES; i++) {
		struct stat st;
		EXPECT_TRUE(same_file(rd, gd, round_files[i].name));
		EXPECT_EQ(0, fstatat(gd, round_files[i].name, &st, 0));
		EXPECT_EQ(0600, st.st_mode & 0777);
	}
	EXPECT_FALSE(exists_at(gd, "subdir"));
	/* The PING is skipped; the ERROR is the peer's, with its text. */
	uint64_t arg = 0;
	EXPECT_EQ(0, stream_recv_msg(self->sk[1], STREAM_ACK, &arg));
	EXPECT_EQ(7, arg);
	EXPECT_EQ(-EREMOTEIO, stream_recv_msg(self->sk[1], STREAM_RUNNING, NULL));
	EXPECT_TRUE(strstr(cap_text(), "it broke") != NULL);
	/* And then the end of the stream, at a frame boundary. */
	EXPECT_EQ(-ECONNRESET, stream_recv_msg(self->sk[1], STREAM_GO, NULL));
	EXPECT_TRUE(strstr(cap_text(), "closed the connection") != NULL);
	ASSERT_EQ(sizeof(sent), read(p[0], &sent, sizeof(sent)));
	EXPECT_EQ(total, sent.bytes);
	EXPECT_EQ(NR_ROUND_FILES, sent.files);
	ASSERT_EQ(child, waitpid(child, &status, 0));
	EXPECT_EQ(0, status);
	close(p[0]);
	close(gd);
	close(rd);
}

/* A silent peer is a timeout naming what we waited for. */
TEST_F(st, timeout)
{
	ASSERT_EQ(0, stream_setup(self->sk[1], 200, -1));
	EXPECT_EQ(-ETIMEDOUT, stream_recv_msg(self->sk[1], STREAM_READY, NULL));
	EXPECT_TRUE(strstr(cap_text(), "waiting for READY") != NULL);
}

/* A readable cancel fd ends a wait at once. */
TEST_F(st, cancel)
{
	int efd[2];

	ASSERT_EQ(0, pipe2(efd, O_CLOEXEC));
	ASSERT_EQ(1, write(efd[1], "x", 1));
	ASSERT_EQ(0, stream_setup(self->sk[1], WAIT_MS, efd[0]));
	EXPECT_EQ(-EINTR, stream_recv_msg(self->sk[1], STREAM_READY, NULL));
	EXPECT_TRUE(strstr(cap_text(), "interrupted") != NULL);
	stream_set_cancel_fd(-1);
	close(efd[0]);
	close(efd[1]);
}

/* The keepalive thread's PINGs keep a waiting peer from timing out. */
TEST_F(st, pings)
{
	ASSERT_EQ(0, stream_setup(self->sk[0], 1000, -1));
	pid_t child = fork();
	ASSERT_LE(0, child);
	if (!child) {
		/* Busy for three times the peer's timeout (PINGs every 250 ms), then the answer. */
		struct timespec t = { 0, 500 * 1000 * 1000 };
		if (stream_ping_start(self->sk[0]))
			_exit(1);
		for (int i = 0; i < 6; i++)
			nanosleep(&t, NULL);
		stream_ping_stop();
		_exit(stream_send_msg(self->sk[0], STREAM_READY, 0, NULL) ? 1 : 0);
	}
	ASSERT_EQ(0, stream_setup(self->sk[1], 1000, -1));
	EXPECT_EQ(0, stream_recv_msg(self->sk[1], STREAM_READY, NULL));
	int status;
	ASSERT_EQ(child, waitpid(child, &status, 0));
	EXPECT_EQ(0, status);
}

/* ---------------------------------------------------------------- hostile */

enum hostile {
	H_SLASH, H_DOTDOT, H_DIR_DOTDOT, H_NAME_LEN, H_SIZE, H_ROUND_SIZE, H_TOO_MANY,
	H_TRUNC_FILE, H_TRUNC_HEADER, H_TRUNC_NAME, H_MAGIC, H_TYPE, H_FLAGS, H_END_COUNT,
	H_TWICE, H_NUL, H_WRONG_TYPE,
};

static const struct {
	enum hostile kind;
	const char *tag;
	int err;
	const char *needle;		/* in the log */
} hostile_cases[] = {
	{ H_SLASH, "slash", -EPROTO, "FILE frame: file name 'a/b' has a bad character" },
	{ H_DOTDOT, "dotdot", -EPROTO, "FILE frame: file name '..' is not a plain name" },
	{ H_DIR_DOTDOT, "dir dotdot", -EPROTO, "ROUND frame: directory name '..'" },
	{ H_NAME_LEN, "name_len", -EPROTO, "FILE frame: name_len 100000 is over 255" },
	{ H_SIZE, "size", -EFBIG, "FILE frame: size 1099511627776 of 'big'" },
	{ H_ROUND_SIZE, "round size", -EFBIG, "left for round" },
	{ H_TOO_MANY, "too many files", -E2BIG, "has more than 2 files" },
	{ H_TRUNC_FILE, "truncated file", -EPROTO, "ends 10 bytes into 1000 of file 'x'" },
	{ H_TRUNC_HEADER, "truncated header", -EPROTO, "truncated: it ends 10 bytes into 24" },
	{ H_TRUNC_NAME, "truncated name", -EPROTO, "truncated: it ends 3 bytes into 9" },
	{ H_MAGIC, "magic", -EPROTO, "bad frame magic 0xdeadbeef" },
	{ H_TYPE, "type", -EPROTO, "unknown frame type 99" },
	{ H_FLAGS, "flags", -EPROTO, "ROUND frame: unknown flags 0x10" },
	{ H_END_COUNT, "end count", -EPROTO, "END frame: 5 files announced, 1 received" },
	{ H_TWICE, "twice", -EEXIST, "FILE frame: 'x' comes twice" },
	{ H_NUL, "nul", -EPROTO, "has a bad character (0x00)" },
	{ H_WRONG_TYPE, "wrong type", -EPROTO, "got a GO frame while receiving round" },
};

/* What a hostile sender writes for kind (after which the socket is closed). */
static int write_hostile(int sk, enum hostile kind)
{
	static char zeros[4096];
	int err = 0;

	if (kind != H_DIR_DOTDOT && kind != H_TRUNC_HEADER && kind != H_MAGIC && kind != H_TYPE &&
	    kind != H_FLAGS)
		err = frame(sk, STREAM_ROUND, 0, "r", 1);
	if (err)
		return err;
	switch (kind) {
	case H_SLASH:
		return frame(sk, STREAM_FILE, 0, "a/b", 1);
	case H_DOTDOT:
		return frame(sk, STREAM_FILE, 0, "..", 1);
	case H_DIR_DOTDOT:
		return frame(sk, STREAM_ROUND, 0, "..", 1);
	case H_NAME_LEN:
		return raw_frame(sk, STREAM_FILE, 0, 100000, "x", 1, 1, STREAM_MAGIC);
	case H_SIZE:
		return frame(sk, STREAM_FILE, 0, "big", 1ull << 40);
	case H_ROUND_SIZE:
		/* Each file fits; together they are over max_round (3000). */
		err = frame(sk, STREAM_FILE, 0, "a", 2000);
		if (!err && write(sk, zeros, 2000) != 2000)
			err = -EIO;
		return err ? err : frame(sk, STREAM_FILE, 0, "b", 2000);
	case H_TOO_MANY:
		for (int i = 0; i < 3 && !err; i++) {
			char n[8];
			snprintf(n, sizeof(n), "f%d", i);
			err = frame(sk, STREAM_FILE, 0, n, 0);
		}
		return err;
	case H_TRUNC_FILE:
		err = frame(sk, STREAM_FILE, 0, "x", 1000);
		return err ? err : write(sk, zeros, 10) == 10 ? 0 : -EIO;
	case H_TRUNC_HEADER:
		return write(sk, zeros, 10) == 10 ? 0 : -EIO;
	case H_TRUNC_NAME:
		return raw_frame(sk, STREAM_FILE, 0, 9, "abc", 3, 1, STREAM_MAGIC);
	case H_MAGIC:
		return raw_frame(sk, STREAM_ROUND, 0, 1, "r", 1, 1, 0xdeadbeef);
	case H_TYPE:
		return raw_frame(sk, 99, 0, 0, NULL, 0, 0, STREAM_MAGIC);
	case H_FLAGS:
		return frame(sk, STREAM_ROUND, 0x10, "r", 1);
	case H_END_COUNT:
		err = frame(sk, STREAM_FILE, 0, "x", 0);
		return err ? err : frame(sk, STREAM_END, 0, NULL, 5);
	case H_TWICE:
		err = frame(sk, STREAM_FILE, 0, "x", 0);
		return err ? err : frame(sk, STREAM_FILE, 0, "x", 0);
	case H_NUL:
		return raw_frame(sk, STREAM_FILE, 0, 3, "a\0b", 3, 0, STREAM_MAGIC);
	case H_WRONG_TYPE:
		return frame(sk, STREAM_GO, 0, NULL, 0);
	}
	return -EINVAL;
}

/*
 * Each hostile stream (written whole into the socket buffer, then the
 * writer's end closed) is rejected with its error and message, and no
 * round directory is left.
 */
TEST_F(st, hostile_frames)
{
	const struct stream_limits lim = { .max_file = 2500, .max_round = 3000, .max_files = 2 };

	for (size_t i = 0; i < sizeof(hostile_cases) / sizeof(hostile_cases[0]); i++) {
		int sk[2];
		ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sk));
		ASSERT_EQ(0, write_hostile(sk[0], hostile_cases[i].kind));
		close(sk[0]);
		cap_begin();
		ASSERT_EQ(0, stream_setup(sk[1], WAIT_MS, -1));
		int err = stream_recv_round(sk[1], self->dst, &lim, NULL);
		close(sk[1]);
		const char *text = cap_text();
		if (err != hostile_cases[i].err || !strstr(text, hostile_cases[i].needle))
			TH_LOG("case '%s': error %d, log: %s", hostile_cases[i].tag, err, text);
		EXPECT_EQ(hostile_cases[i].err, err);
		EXPECT_TRUE(strstr(text, hostile_cases[i].needle) != NULL);
		EXPECT_FALSE(exists_at(self->dst, "r"));
	}
}

/* Senders refuse what a receiver would: a bad directory name, a missing directory. */
TEST_F(st, send_checks)
{
	EXPECT_EQ(-EINVAL, stream_send_round(self->sk[0], 0, 0, self->src, "../x", NULL));
	EXPECT_TRUE(strstr(cap_text(), "round directory name '../x'") != NULL);
	EXPECT_EQ(-ENOENT, stream_send_round(self->sk[0], 0, 0, self->src, "nope", NULL));
	EXPECT_EQ(0, stream_check_name("pages-1.img", 11, "file"));
	EXPECT_EQ(-EINVAL, stream_check_name("", 0, "file"));
	EXPECT_EQ(-EINVAL, stream_check_name(".", 1, "file"));
}

/* ---------------------------------------------------------------- memdir */

static bool mnt_ns_differs(pid_t pid)
{
	char a[64] = "", b[64] = "", path[64];

	snprintf(path, sizeof(path), "/proc/%d/ns/mnt", pid);
	if (readlink("/proc/self/ns/mnt", a, sizeof(a) - 1) <= 0 ||
	    readlink(path, b, sizeof(b) - 1) <= 0)
		return false;
	return strcmp(a, b) != 0;
}

/* Wait (bounded) until pid, which need not be our child, has exited. */
static bool exited_within(pid_t pid, int ms)
{
	int pfd = syscall(SYS_pidfd_open, pid, 0);

	if (pfd < 0)
		return errno == ESRCH;
	struct pollfd p = { .fd = pfd, .events = POLLIN };
	int n = poll(&p, 1, ms);
	close(pfd);
	return n == 1;
}

/* Files made under the memdir are there through its path only; close ends it all. */
TEST(memdir_files)
{
	struct memdir m;
	char path[PATH_MAX], ours[PATH_MAX];
	struct statfs sf;
	struct stat st;

	cap_begin();
	int err = memdir_open(32 << 20, &m);
	if (err == -EPERM)
		SKIP(return, "mounting a tmpfs needs CAP_SYS_ADMIN");
	ASSERT_EQ(0, err);
	ASSERT_LT(0, m.pid);
	EXPECT_TRUE(mnt_ns_differs(m.pid));
	EXPECT_FALSE(mnt_ns_differs(getpid()));
	ASSERT_EQ(0, fstatfs(m.dirfd, &sf));
	EXPECT_EQ(TMPFS_MAGIC_NR, sf.f_type);
	EXPECT_LT(0, memdir_free_bytes(&m));
	EXPECT_GE(32ull << 20, memdir_free_bytes(&m));
	/* One file through the fd, one through the path; each seen through the other. */
	ASSERT_EQ(0, make_file(m.dirfd, "via-fd", 5000, 1));
	snprintf(path, sizeof(path), "%s/via-path", m.path);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	ASSERT_LE(0, fd);
	ASSERT_EQ(3, write(fd, "abc", 3));
	close(fd);
	EXPECT_TRUE(exists_at(m.dirfd, "via-path"));
	snprintf(path, sizeof(path), "%s/via-fd", m.path);
	ASSERT_EQ(0, stat(path, &st));
	EXPECT_EQ(5000, st.st_size);
	/* Not in our tree where the helper mounted it. */
	snprintf(ours, sizeof(ours), "%s/via-fd", strstr(m.path, "/root/") + 5);
	EXPECT_NE(0, stat(ours, &st));
	pid_t helper = m.pid;
	memdir_close(&m);
	EXPECT_EQ(0, m.pid);
	EXPECT_EQ(-1, m.dirfd);
	EXPECT_TRUE(exited_within(helper, WAIT_MS));
	EXPECT_NE(0, stat(path, &st));
	memdir_close(&m);	/* idempotent */
}

/* The owner dies (SIGKILL, no clean-up): the helper goes too, and the files with it. */
TEST(memdir_owner_dies)
{
	struct {
		pid_t helper;
		int err;
		char path[64];
	} info = {};
	char path[PATH_MAX];
	int p[2], status;
	struct stat st;

	/* The helper is reparented to us: reap it here, not in the harness. */
	ASSERT_EQ(0, prctl(PR_SET_CHILD_SUBREAPER, 1));
	ASSERT_EQ(0, pipe2(p, O_CLOEXEC));
	pid_t owner = fork();
	ASSERT_LE(0, owner);
	if (!owner) {
		struct memdir m;
		close(p[0]);
		info.err = memdir_open(16 << 20, &m);
		if (!info.err) {
			info.helper = m.pid;
			snprintf(info.path, sizeof(info.path), "%s", m.path);
			info.err = make_file(m.dirfd, "precious", 4096, 7);
		}
		if (write(p[1], &info, sizeof(info)) != sizeof(info))
			_exit(1);
		pause();
		_exit(0);
	}
	close(p[1]);
	ASSERT_EQ(sizeof(info), read(p[0], &info, sizeof(info)));
	close(p[0]);
	if (info.err == -EPERM) {
		kill(owner, SIGKILL);
		waitpid(owner, NULL, 0);
		SKIP(return, "mounting a tmpfs needs CAP_SYS_ADMIN");
	}
	ASSERT_EQ(0, info.err);
	snprintf(path, sizeof(path), "%s/precious", info.path);
	ASSERT_EQ(0, stat(path, &st));
	ASSERT_EQ(0, kill(owner, SIGKILL));
	ASSERT_EQ(owner, waitpid(owner, &status, 0));
	EXPECT_TRUE(exited_within(info.helper, WAIT_MS));
	EXPECT_EQ(info.helper, waitpid(info.helper, &status, 0));
	/* Its parent-death signal, or the end of its line to the owner: whichever came first. */
	EXPECT_TRUE((WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) ||
		    (WIFEXITED(status) && WEXITSTATUS(status) == 0));
	EXPECT_NE(0, stat(path, &st));
}

TEST_HARNESS_MAIN
