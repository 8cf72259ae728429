// SPDX-License-Identifier: MIT
/*
 * ghost_test: files deleted while open or mapped survive dump and restore with their
 * contents: a deleted file open with data and an offset (contents, offset, st_nlink 0,
 * "(deleted)" link), the same deleted file open twice (two descriptions, one inode), one
 * description shared across a fork, a MAP_SHARED mapping of a deleted file that is also
 * open (one inode for both), mappings of deleted files with no fd left, a sparse deleted
 * file (holes stay holes); when another file has taken the old name, the ghost comes back
 * under a name next to it and that file is left alone; and a
 * deleted file above the size limit is refused at dump with the victim unharmed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cr.h"

CR_FIXTURE_LR(ghost);

/* Creates name in the victim's dir with size pattern bytes (seed), opened flags, then unlinks it. */
static int make_deleted(const char *name, size_t size, unsigned seed, int flags, char *ret_path)
{
	static unsigned char buf[65536];
	int fd;

	snprintf(ret_path, PATH_MAX, "%s/%s", cr_victim_dir, name);
	fd = open(ret_path, flags | O_CREAT | O_TRUNC, 0640);
	CR_SETUP(fd >= 0, "create '%s'", ret_path);
	for (size_t off = 0; off < size;) {
		size_t n = size - off < sizeof(buf) ? size - off : sizeof(buf);
		for (size_t i = 0; i < n; i++)
			buf[i] = cr_pattern(off + i, seed);
		CR_SETUP(pwrite(fd, buf, n, off) == (ssize_t)n, "write");
		off += n;
	}
	CR_SETUP(!unlink(ret_path), "unlink '%s'", ret_path);
	return fd;
}

/* fd shows "<path> (deleted)" and has no links. */
static void check_deleted(int fd, const char *path)
{
	char link[64], target[PATH_MAX + 16], want[PATH_MAX + 16];
	struct stat st;
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, target, sizeof(target) - 1);
	target[n > 0 ? n : 0] = '\0';
	snprintf(want, sizeof(want), "%s (deleted)", path);
	CR_CHECK(!strcmp(target, want), "fd %d links to '%s', expected '%s'", fd, target, want);
	CR_CHECK(!fstat(fd, &st) && st.st_nlink == 0, "fd %d: st_nlink %lu, expected 0", fd,
		 (unsigned long)st.st_nlink);
	CR_CHECK(access(path, F_OK) && errno == ENOENT, "'%s' exists after restore", path);
}

static bool pattern_at(int fd, off_t off, size_t n, unsigned seed)
{
	unsigned char buf[4096];

	if (n > sizeof(buf) || pread(fd, buf, n, off) != (ssize_t)n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (buf[i] != cr_pattern(off + i, seed))
			return false;
	return true;
}

/* ---- one deleted file, open with an offset ---- */

/* arg non-NULL: another file took the name meanwhile; the ghost comes back next to it. */
static int victim_open(void *arg)
{
	static char path[PATH_MAX + 32], taken[PATH_MAX + 32];
	struct stat st;
	char buf[8];
	int fd = make_deleted("open.dat", 10000, 1, O_RDWR, path);

	CR_SETUP(dup2(fd, 40) == 40 && !close(fd), "dup2");
	CR_SETUP(lseek(40, 1234, SEEK_SET) == 1234, "lseek");
	CR_SETUP(!fchmod(40, 0604), "fchmod");

	cr_victim_ready_wait();

	if (arg) {
		snprintf(taken, sizeof(taken), "%s", path);
		snprintf(path, sizeof(path), "%.4000s.ckpt-ghost-1", taken);
		CR_CHECK(!stat(taken, &st) && st.st_size == 0, "the file that took the name was touched");
	}
	check_deleted(40, path);
	CR_CHECK(lseek(40, 0, SEEK_CUR) == 1234, "offset %ld, expected 1234",
		 (long)lseek(40, 0, SEEK_CUR));
	CR_CHECK(!fstat(40, &st) && st.st_size == 10000 && (st.st_mode & 07777) == 0604,
		 "size %lld mode 0%o, expected 10000 0604", (long long)st.st_size, st.st_mode);
	CR_CHECK((fcntl(40, F_GETFL) & O_ACCMODE) == O_RDWR, "flags 0%o", fcntl(40, F_GETFL));
	CR_CHECK(pattern_at(40, 0, 4096, 1) && pattern_at(40, 8000, 2000, 1),
		 "contents differ");
	CR_CHECK(write(40, "ghost", 5) == 5 && lseek(40, 0, SEEK_CUR) == 1239, "write at the offset");
	CR_CHECK(pread(40, buf, 5, 1234) == 5 && !memcmp(buf, "ghost", 5), "written bytes not read back");
	return cr_victim_result();
}

CR_CASE(ghost, open, .victim = victim_open);

static int take_name(struct cr_run *r)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/open.dat", r->env->dir);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd < 0)
		return cr_fail(r, "create '%s': %s", path, strerror(errno));
	close(fd);
	return 0;
}

/* The taken name is left alone; the ghost gets a name next to it (the restore warns).
 * Not left running: only a restored victim has the new name. */
CR_CASE(ghost, name_taken, .victim = victim_open, .arg = (void *)1, .between = take_name,
	.no_leave = true);

/* ---- the same deleted file open twice: two descriptions, one inode ---- */

static int victim_twice(void *arg)
{
	static char path[PATH_MAX];
	char proc[64], buf[4];
	struct stat a, b;
	int fd = make_deleted("twice.dat", 5000, 2, O_RDWR, path), ro;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	ro = open(proc, O_RDONLY);
	CR_SETUP(ro >= 0, "reopen");
	CR_SETUP(lseek(fd, 100, SEEK_SET) == 100 && lseek(ro, 4000, SEEK_SET) == 4000, "lseek");

	cr_victim_ready_wait();

	check_deleted(fd, path);
	check_deleted(ro, path);
	CR_CHECK(!fstat(fd, &a) && !fstat(ro, &b) && a.st_ino == b.st_ino && a.st_dev == b.st_dev,
		 "the two fds are not one inode any more");
	CR_CHECK(lseek(fd, 0, SEEK_CUR) == 100 && lseek(ro, 0, SEEK_CUR) == 4000,
		 "offsets %ld and %ld, expected 100 and 4000", (long)lseek(fd, 0, SEEK_CUR),
		 (long)lseek(ro, 0, SEEK_CUR));
	CR_CHECK((fcntl(ro, F_GETFL) & O_ACCMODE) == O_RDONLY, "second fd is not read-only");
	CR_CHECK(pwrite(fd, "abcd", 4, 4000) == 4 && read(ro, buf, 4) == 4 && !memcmp(buf, "abcd", 4),
		 "a write through one fd is not seen through the other");
	return cr_victim_result();
}

CR_CASE(ghost, open_twice, .victim = victim_twice);

/* ---- one description shared across a fork ---- */

static int victim_fork(void *arg)
{
	static char path[PATH_MAX];
	int fd = make_deleted("fork.dat", 3000, 3, O_RDWR, path), go[2], ack[2], status;
	pid_t c;
	char b;

	CR_SETUP(lseek(fd, 500, SEEK_SET) == 500, "lseek");
	CR_SETUP(!pipe(go) && !pipe(ack), "pipe");
	c = fork();
	CR_SETUP(c >= 0, "fork");
	if (c == 0) {
		close(go[1]);
		close(ack[0]);
		/* The fd table is final now: the runner compares it around the dump. */
		if (write(ack[1], "r", 1) != 1)
			_exit(3);
		close(ack[1]);
		if (read(go[0], &b, 1) != 1)
			_exit(3);
		/* Advances the offset the parent shares. */
		_exit(lseek(fd, 0, SEEK_CUR) == 500 && write(fd, "kid", 3) == 3 ? 0 : 1);
	}
	close(go[0]);
	close(ack[1]);
	CR_SETUP(read(ack[0], &b, 1) == 1, "wait for the child");
	close(ack[0]);

	cr_victim_ready_wait();

	check_deleted(fd, path);
	CR_CHECK(write(go[1], "g", 1) == 1, "wake the child");
	CR_CHECK(waitpid(c, &status, 0) == c && WIFEXITED(status) && WEXITSTATUS(status) == 0,
		 "the child saw another offset or could not write (status 0x%x)", status);
	CR_CHECK(lseek(fd, 0, SEEK_CUR) == 503, "offset %ld, expected 503 (one description)",
		 (long)lseek(fd, 0, SEEK_CUR));
	return cr_victim_result();
}

CR_CASE(ghost, shared_fork, .victim = victim_fork);

/* ---- a MAP_SHARED mapping of a deleted file that is also open ---- */

static int victim_map_shared(void *arg)
{
	static char path[PATH_MAX];
	int fd = make_deleted("mapped.dat", 3 * 4096, 4, O_RDWR, path);
	unsigned char *p = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	struct stat a, b;
	char proc[96], buf[8];

	CR_SETUP(p != MAP_FAILED, "mmap");
	memcpy(p + 4096, "before", 6);

	cr_victim_ready_wait();

	check_deleted(fd, path);
	CR_CHECK(p[0] == cr_pattern(0, 4) && p[3 * 4096 - 1] == cr_pattern(3 * 4096 - 1, 4) &&
		 !memcmp(p + 4096, "before", 6), "mapped contents differ");
	memcpy(p + 8192, "after!", 6);
	CR_CHECK(pread(fd, buf, 6, 8192) == 6 && !memcmp(buf, "after!", 6),
		 "a write through the mapping is not seen through the fd");
	CR_CHECK(pwrite(fd, "viafd", 5, 100) == 5 && !memcmp(p + 100, "viafd", 5),
		 "a write through the fd is not seen through the mapping");
	snprintf(proc, sizeof(proc), "/proc/self/map_files/%lx-%lx", (unsigned long)p,
		 (unsigned long)p + 3 * 4096);
	CR_CHECK(!stat(proc, &a) && !fstat(fd, &b) && a.st_ino == b.st_ino,
		 "the mapping and the fd are not one inode");
	return cr_victim_result();
}

CR_CASE(ghost, map_shared, .victim = victim_map_shared);

/* ---- mappings of deleted files with no fd left: one private, one shared ---- */

static int victim_map_only(void *arg)
{
	static char ppath[PATH_MAX], spath[PATH_MAX];
	int pfd = make_deleted("private.dat", 2 * 4096, 5, O_RDWR, ppath);
	int sfd = make_deleted("shared.dat", 4096, 6, O_RDWR, spath);
	unsigned char *pp = mmap(NULL, 2 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, pfd, 0);
	unsigned char *sp = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, sfd, 0);
	char maps[65536], line[PATH_MAX + 32];

	CR_SETUP(pp != MAP_FAILED && sp != MAP_FAILED, "mmap");
	close(pfd);
	close(sfd);
	pp[10] = 'x';		/* private copy of one page */
	sp[20] = 'y';		/* goes to the (deleted) file */

	cr_victim_ready_wait();

	CR_CHECK(pp[10] == 'x' && pp[11] == cr_pattern(11, 5) && pp[4096] == cr_pattern(4096, 5),
		 "private mapping contents differ");
	CR_CHECK(sp[20] == 'y' && sp[21] == cr_pattern(21, 6), "shared mapping contents differ");
	CR_CHECK(cr_read_file("/proc/self/maps", maps, sizeof(maps)) > 0, "read maps");
	snprintf(line, sizeof(line), "%s (deleted)", spath);
	CR_CHECK(strstr(maps, line), "maps has no '%s'", line);
	snprintf(line, sizeof(line), "%s (deleted)", ppath);
	CR_CHECK(strstr(maps, line), "maps has no '%s'", line);
	return cr_victim_result();
}

CR_CASE(ghost, map_only, .victim = victim_map_only);

/* ---- a sparse deleted file ---- */

#define SPARSE_SIZE	(8 << 20)

static int victim_sparse(void *arg)
{
	static char path[PATH_MAX];
	unsigned char buf[4096];
	struct stat st;
	int fd;

	snprintf(path, sizeof(path), "%s/sparse.dat", cr_victim_dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	CR_SETUP(fd >= 0, "create");
	CR_SETUP(!ftruncate(fd, SPARSE_SIZE), "ftruncate");
	cr_fill(buf, sizeof(buf), 7);
	CR_SETUP(pwrite(fd, buf, 4096, 0) == 4096 && pwrite(fd, buf, 4096, 3 << 20) == 4096,
		 "write");
	CR_SETUP(!unlink(path), "unlink");
	CR_SETUP(lseek(fd, 77, SEEK_SET) == 77, "lseek");
	CR_SETUP(!fstat(fd, &st), "fstat");
	if (st.st_blocks * 512 >= (1 << 20))
		CR_VICTIM_SKIP("the filesystem of '%s' does not keep holes", cr_victim_dir);

	cr_victim_ready_wait();

	check_deleted(fd, path);
	CR_CHECK(!fstat(fd, &st) && st.st_size == SPARSE_SIZE, "size %lld, expected %d",
		 (long long)st.st_size, SPARSE_SIZE);
	CR_CHECK(st.st_blocks * 512 < (1 << 20), "%lld bytes allocated: the holes were filled",
		 (long long)st.st_blocks * 512);
	CR_CHECK(lseek(fd, 0, SEEK_CUR) == 77, "offset %ld", (long)lseek(fd, 0, SEEK_CUR));
	CR_CHECK(pread(fd, buf, 4096, 3 << 20) == 4096 && cr_check_pattern(buf, 4096, 7) < 0,
		 "data after the hole differs");
	CR_CHECK(pread(fd, buf, 4096, 0) == 4096 && cr_check_pattern(buf, 4096, 7) < 0,
		 "data at 0 differs");
	CR_CHECK(pread(fd, buf, 4096, 5 << 20) == 4096 && cr_all_zero(buf, 4096),
		 "a hole is not zeros");
	return cr_victim_result();
}

CR_CASE(ghost, sparse, .victim = victim_sparse);

/* ---- above the size limit: refused, victim unharmed ---- */

static int victim_too_big(void *arg)
{
	static char path[PATH_MAX];
	struct stat st;
	int fd;

	snprintf(path, sizeof(path), "%s/big.dat", cr_victim_dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	CR_SETUP(fd >= 0, "create");
	CR_SETUP(!ftruncate(fd, (64 << 20) + 1) && pwrite(fd, "end", 3, 64 << 20) == 3, "size");
	CR_SETUP(!unlink(path), "unlink");
	CR_SETUP(lseek(fd, 42, SEEK_SET) == 42, "lseek");

	cr_victim_ready_wait();

	CR_CHECK(lseek(fd, 0, SEEK_CUR) == 42, "offset moved to %ld", (long)lseek(fd, 0, SEEK_CUR));
	CR_CHECK(!fstat(fd, &st) && st.st_size == (64 << 20) + 3, "size %lld", (long long)st.st_size);
	return cr_victim_result();
}

CR_CASE(ghost, too_big_refused, .victim = victim_too_big, .dump_err = "too large to save");

TEST_HARNESS_MAIN
