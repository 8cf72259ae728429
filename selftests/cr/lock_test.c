// SPDX-License-Identifier: MIT
/*
 * lock_test: file locks held by the task survive dump and restore.
 *
 *  - locks: an flock() write lock, a POSIX (fcntl) write lock on a byte range and an OFD
 *    read lock on another range. After restore another process can take none of the
 *    conflicting locks and can take a lock outside the ranges; F_GETLK from that process
 *    reports the owner's PID for the POSIX lock; the task itself can still unlock, after
 *    which the other process gets the flock lock.
 *  - append_path: an O_APPEND fd keeps appending after a seek, an O_PATH fd stays O_PATH.
 *  - posix_map_shared, posix_map_private, posix_map_other_open: POSIX locks (a write lock on
 *    one range, a read lock on another) on a file the task also has mapped (MAP_SHARED,
 *    MAP_PRIVATE, or MAP_SHARED through another open of the file, closed since). Restore
 *    opens and closes fds of that file to map it, which must not drop the locks. After
 *    restore another process sees both ranges held by the restored PID, can share the read
 *    range but not write-lock it, and gets the write range once the task unlocks it; the
 *    mapping has the dumped content and is still that file.
 *  - posix_map_conflict: another process write-locks the range between dump and restore;
 *    restore must fail naming the lock, and leave no task behind.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cr.h"

CR_FIXTURE_LR(lock);

enum {
	P_FLOCK = 1 << 0,	/* the other process got the flock lock */
	P_POSIX = 1 << 1,	/* ... a POSIX write lock on [10, 15) */
	P_OFD = 1 << 2,		/* ... an OFD write lock on [100, 101) */
	P_FREE = 1 << 3,	/* ... a POSIX write lock on [50, 60) (free) */
	P_OWNER = 1 << 4,	/* F_GETLK named the victim as the owner of [10, 15) */
};

static char lpath[PATH_MAX], ppath[PATH_MAX];

/* What another process can lock now, as P_* bits (exit status of a child). */
static int probe(void)
{
	int status;
	pid_t c = fork();

	if (c == 0) {
		int bits = 0, l = open(lpath, O_RDWR), p = open(ppath, O_RDWR);
		struct flock f = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 10, .l_len = 5 };
		struct flock g = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 100, .l_len = 1 };
		struct flock h = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 50, .l_len = 10 };
		struct flock q = f;

		if (l < 0 || p < 0)
			_exit(255);
		if (!flock(l, LOCK_EX | LOCK_NB))
			bits |= P_FLOCK;
		if (!fcntl(p, F_SETLK, &f))
			bits |= P_POSIX;
		if (!fcntl(p, F_OFD_SETLK, &g))
			bits |= P_OFD;
		if (!fcntl(p, F_SETLK, &h))
			bits |= P_FREE;
		if (!fcntl(p, F_GETLK, &q) && q.l_type == F_WRLCK && q.l_pid == getppid())
			bits |= P_OWNER;
		_exit(bits);
	}
	if (c < 0 || waitpid(c, &status, 0) != c || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

static int victim_locks(void *arg)
{
	struct flock f = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 10, .l_len = 5 };
	struct flock g = { .l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 100, .l_len = 1 };
	int l, p, o, bits;

	(void)arg;
	snprintf(lpath, sizeof(lpath), "%s/flock", cr_victim_dir);
	snprintf(ppath, sizeof(ppath), "%s/posix", cr_victim_dir);
	l = open(lpath, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	p = open(ppath, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	o = open(ppath, O_RDWR | O_CLOEXEC);
	CR_SETUP(l >= 0 && p >= 0 && o >= 0, "open");
	CR_SETUP(!flock(l, LOCK_EX), "flock");
	CR_SETUP(!fcntl(p, F_SETLK, &f), "F_SETLK");
	CR_SETUP(!fcntl(o, F_OFD_SETLK, &g), "F_OFD_SETLK");
	bits = probe();
	CR_SETUP(bits == (P_FREE | P_OWNER), "probe before the dump: 0x%x", bits);

	cr_victim_ready_wait();

	bits = probe();
	CR_CHECK(bits >= 0 && !(bits & P_FLOCK), "another process took the flock lock");
	CR_CHECK(bits >= 0 && !(bits & P_POSIX), "another process took the POSIX range");
	CR_CHECK(bits >= 0 && !(bits & P_OFD), "another process took the OFD range");
	CR_CHECK(bits >= 0 && (bits & P_FREE), "another process could not lock a free range");
	CR_CHECK(bits >= 0 && (bits & P_OWNER), "F_GETLK does not name us as the owner (0x%x)",
		 bits);
	CR_CHECK(!flock(l, LOCK_UN), "LOCK_UN: %s", strerror(errno));
	bits = probe();
	CR_CHECK(bits >= 0 && (bits & P_FLOCK), "the flock lock is still held after LOCK_UN");
	return cr_victim_result();
}

CR_CASE(lock, locks, .victim = victim_locks);

static int victim_append_path(void *arg)
{
	char path[PATH_MAX], buf[8] = "";
	int a, p;

	(void)arg;
	snprintf(path, sizeof(path), "%s/append", cr_victim_dir);
	a = open(path, O_RDWR | O_CREAT | O_APPEND | O_TRUNC | O_CLOEXEC, 0644);
	p = open(cr_victim_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	CR_SETUP(a >= 0 && p >= 0 && write(a, "a", 1) == 1, "open/write");

	cr_victim_ready_wait();

	CR_CHECK(fcntl(a, F_GETFL) & O_APPEND, "O_APPEND lost");
	CR_CHECK(fcntl(p, F_GETFL) & O_PATH, "O_PATH lost");
	CR_CHECK(lseek(a, 0, SEEK_SET) == 0 && write(a, "b", 1) == 1, "write");
	CR_CHECK(pread(a, buf, sizeof(buf), 0) == 2 && !strcmp(buf, "ab"),
		 "an O_APPEND write after a seek did not append: '%s'", buf);
	CR_CHECK(faccessat(p, "append", F_OK, 0) == 0, "the O_PATH directory fd does not resolve");
	return cr_victim_result();
}

/* Not left running: its verification writes the file, which restore checks by size. */
CR_CASE(lock, append_path, .victim = victim_append_path, .no_leave = true);

#define PAGE 4096UL
#define MAP_PAGES 4
#define W_START 10	/* the write-locked range [10, 15) */
#define W_LEN 5
#define R_START (PAGE + 100)	/* the read-locked range, in the second page */
#define R_LEN 50
#define SEED 21

enum {
	M_WRITE = 1 << 0,	/* the other process got a write lock on the write range */
	M_OWNER = 1 << 1,	/* F_GETLK: that range is write-locked by the victim, exactly */
	M_READ_EXCL = 1 << 2,	/* ... a write lock on the read range */
	M_READ_SHARED = 1 << 3,	/* ... a read lock on the read range */
	M_READ_OWNER = 1 << 4,	/* F_GETLK: that range is read-locked by the victim, exactly */
	M_FREE = 1 << 5,	/* ... a write lock on [50, 60) (free) */
};

struct map_lock {
	int flags;		/* MAP_SHARED or MAP_PRIVATE */
	bool other_open;	/* mapped through another open of the file, closed before locking */
};

static bool held_by_parent(int fd, short type, off_t start, off_t len)
{
	struct flock q = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = start, .l_len = len };

	return !fcntl(fd, F_GETLK, &q) && q.l_type == type && q.l_pid == getppid() &&
	       q.l_start == start && q.l_len == len;
}

/* What another process can lock in mpath now, as M_* bits (exit status of a child). */
static int probe_map(const char *mpath)
{
	int status;
	pid_t c = fork();

	if (c == 0) {
		struct flock w = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = W_START,
				   .l_len = W_LEN };
		struct flock rx = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = R_START,
				    .l_len = R_LEN };
		struct flock rs = rx, f = w;
		int bits = 0, fd = open(mpath, O_RDWR);

		if (fd < 0)
			_exit(255);
		if (held_by_parent(fd, F_WRLCK, W_START, W_LEN))
			bits |= M_OWNER;
		if (held_by_parent(fd, F_RDLCK, R_START, R_LEN))
			bits |= M_READ_OWNER;
		if (!fcntl(fd, F_SETLK, &w))
			bits |= M_WRITE;
		if (!fcntl(fd, F_SETLK, &rx))
			bits |= M_READ_EXCL;
		rs.l_type = F_RDLCK;
		if (!fcntl(fd, F_SETLK, &rs))
			bits |= M_READ_SHARED;
		f.l_start = 50;
		f.l_len = 10;
		if (!fcntl(fd, F_SETLK, &f))
			bits |= M_FREE;
		_exit(bits);
	}
	if (c < 0 || waitpid(c, &status, 0) != c || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

static int victim_posix_map(void *arg)
{
	const struct map_lock *ml = arg;
	static unsigned char buf[MAP_PAGES * PAGE];
	static char mpath[PATH_MAX];
	struct flock w = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = W_START,
			   .l_len = W_LEN };
	struct flock r = { .l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = R_START,
			   .l_len = R_LEN };
	bool shared = ml->flags == MAP_SHARED;
	const int held = M_OWNER | M_READ_OWNER | M_READ_SHARED | M_FREE;
	bool wrote = !ml->other_open;	/* page 2 written through the mapping */
	unsigned char *m, b = 0;
	int fd, mfd, bits;
	long bad;

	snprintf(mpath, sizeof(mpath), "%s/mapped", cr_victim_dir);
	fd = open(mpath, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	CR_SETUP(fd >= 0, "create '%s'", mpath);
	cr_fill(buf, sizeof(buf), SEED);
	CR_SETUP(write(fd, buf, sizeof(buf)) == (ssize_t)sizeof(buf), "write");
	mfd = fd;
	if (ml->other_open) {
		mfd = open(mpath, O_RDONLY | O_CLOEXEC);
		CR_SETUP(mfd >= 0, "open '%s' read-only", mpath);
	}
	m = mmap(NULL, sizeof(buf), PROT_READ | (ml->other_open ? 0 : PROT_WRITE), ml->flags,
		 mfd, 0);
	CR_SETUP(m != MAP_FAILED, "mmap");
	/* Closed before the locks are taken: closing it would drop them. */
	if (mfd != fd)
		CR_SETUP(!close(mfd), "close");
	/* Page 2: through the file when shared, a private copy otherwise. */
	if (wrote)
		memset(m + 2 * PAGE + 200, 0x5A, 100);
	CR_SETUP(!fcntl(fd, F_SETLK, &w), "F_SETLK write");
	CR_SETUP(!fcntl(fd, F_SETLK, &r), "F_SETLK read");
	bits = probe_map(mpath);
	CR_SETUP(bits == held, "probe before the dump: 0x%x", bits);

	cr_victim_ready_wait();

	bits = probe_map(mpath);
	CR_CHECK(bits >= 0, "probe failed");
	CR_CHECK(!(bits & M_WRITE), "another process took the write-locked range (0x%x)", bits);
	CR_CHECK(bits & M_OWNER, "F_GETLK does not name us as the write lock's owner (0x%x)",
		 bits);
	CR_CHECK(!(bits & M_READ_EXCL), "another process write-locked the read-locked range");
	CR_CHECK(bits & M_READ_OWNER, "F_GETLK does not name us as the read lock's owner (0x%x)",
		 bits);
	CR_CHECK(bits & M_READ_SHARED, "another process could not share the read-locked range");
	CR_CHECK(bits & M_FREE, "another process could not lock a free range (0x%x)", bits);

	/* The mapping: the dumped content, and still that file (or a private copy of it). */
	if (wrote)
		memset(buf + 2 * PAGE + 200, 0x5A, 100);
	bad = cr_check_pattern(m, 2 * PAGE, SEED);
	CR_CHECK(bad < 0, "mapping differs from the file's content at %ld", bad);
	CR_CHECK(!memcmp(m + 2 * PAGE, buf + 2 * PAGE, PAGE),
		 "mapping page 2 differs from what was dumped");
	CR_CHECK(pread(fd, &b, 1, 2 * PAGE + 200) == 1 &&
		 b == (shared && wrote ? 0x5A : cr_pattern(2 * PAGE + 200, SEED)),
		 "the file has 0x%x at %lu", b, 2 * PAGE + 200);
	if (shared) {
		/* Page 3 is written by each verification: file -> mapping. */
		b = (unsigned char)(getpid() ^ 0x33);
		CR_CHECK(pwrite(fd, &b, 1, 3 * PAGE + 10) == 1, "pwrite");
		CR_CHECK(m[3 * PAGE + 10] == b, "a write to the file not seen in the mapping");
	}

	/* The write lock is ours: unlocking it frees the range for others. */
	w.l_type = F_UNLCK;
	CR_CHECK(!fcntl(fd, F_SETLK, &w), "F_UNLCK: %s", strerror(errno));
	bits = probe_map(mpath);
	CR_CHECK(bits >= 0 && (bits & M_WRITE), "the write range is still held after F_UNLCK");
	return cr_victim_result();
}

static const struct map_lock map_shared = { .flags = MAP_SHARED };
static const struct map_lock map_private = { .flags = MAP_PRIVATE };
static const struct map_lock map_other_open = { .flags = MAP_SHARED, .other_open = true };

CR_CASE(lock, posix_map_shared, .victim = victim_posix_map, .arg = (void *)&map_shared);
CR_CASE(lock, posix_map_private, .victim = victim_posix_map, .arg = (void *)&map_private);
CR_CASE(lock, posix_map_other_open, .victim = victim_posix_map,
	.arg = (void *)&map_other_open);

/* The runner takes the write range; it holds it until it exits, after the restore. */
static int take_range(struct cr_run *r)
{
	struct flock w = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = W_START,
			   .l_len = W_LEN };
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/mapped", r->env->dir);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0 || fcntl(fd, F_SETLK, &w))
		return cr_fail(r, "write-lock '%s': %s", path, strerror(errno));
	snprintf(r->restore_err, sizeof(r->restore_err), "POSIX write lock of fd");
	return 0;
}

CR_CASE(lock, posix_map_conflict, .victim = victim_posix_map, .arg = (void *)&map_shared,
	.between = take_range);

TEST_HARNESS_MAIN
