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
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
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

TEST_HARNESS_MAIN
