// SPDX-License-Identifier: MIT
/*
 * files_test: open files survive dump and restore: regular files (same file, flags,
 * offset, fd number), O_APPEND, FD_CLOEXEC, /dev/null and /dev/zero, directories, dup'ed
 * fds sharing one offset, a pipe and a FIFO with both ends in the task and buffered data;
 * restore refuses clearly when a file is gone or changed, and leaves no task behind.
 * Also: the images are private (dir 0700, files 0600).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "cr.h"

CR_FIXTURE_LR(files);

static void fill(unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(i * 7 + seed);
}

static int make_file(const char *name, size_t size, unsigned seed, char *ret_path)
{
	static unsigned char buf[16384];
	int fd;

	snprintf(ret_path, PATH_MAX, "%s/%s", cr_victim_dir, name);
	fd = open(ret_path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	CR_SETUP(fd >= 0, "create '%s'", ret_path);
	fill(buf, size, seed);
	CR_SETUP(write(fd, buf, size) == (ssize_t)size, "write");
	close(fd);
	return 0;
}

static bool same_file(int fd, const struct stat *st)
{
	struct stat now;

	return !fstat(fd, &now) && now.st_ino == st->st_ino && now.st_dev == st->st_dev;
}

/* ---- regular files ---- */

static int victim_regular(void *arg)
{
	static char path_rw[PATH_MAX], path_app[PATH_MAX];
	struct stat st_rw, st_app, now;
	unsigned char buf[100], want[100];
	int fd, app, flags;

	make_file("rw.dat", 8192, 1, path_rw);
	make_file("append.dat", 1000, 2, path_app);
	fd = open(path_rw, O_RDWR);
	CR_SETUP(fd >= 0, "open");
	CR_SETUP(dup2(fd, 57) == 57, "dup2");
	close(fd);
	CR_SETUP(lseek(57, 1234, SEEK_SET) == 1234, "lseek");
	CR_SETUP(!fstat(57, &st_rw), "fstat");
	app = open(path_app, O_WRONLY | O_APPEND);
	CR_SETUP(app >= 0, "open");
	CR_SETUP(lseek(app, 10, SEEK_SET) == 10, "lseek");
	CR_SETUP(!fstat(app, &st_app), "fstat");

	cr_victim_ready_wait();

	CR_CHECK(fcntl(57, F_GETFD) >= 0, "fd 57 is not open after restore");
	CR_CHECK(same_file(57, &st_rw), "fd 57 is not '%s'", path_rw);
	CR_CHECK(lseek(57, 0, SEEK_CUR) == 1234, "fd 57 offset %ld, expected 1234",
		 (long)lseek(57, 0, SEEK_CUR));
	flags = fcntl(57, F_GETFL);
	CR_CHECK((flags & O_ACCMODE) == O_RDWR, "fd 57 flags 0%o, expected O_RDWR", flags);
	fill(want, 100, 1);
	{
		static unsigned char all[8192];

		fill(all, sizeof(all), 1);
		memcpy(want, all + 1234, 100);
	}
	CR_CHECK(read(57, buf, 100) == 100 && !memcmp(buf, want, 100),
		 "read at offset 1234 returned other data");
	CR_CHECK(same_file(app, &st_app), "fd %d is not '%s'", app, path_app);
	flags = fcntl(app, F_GETFL);
	CR_CHECK((flags & O_APPEND) && (flags & O_ACCMODE) == O_WRONLY,
		 "fd %d flags 0%o, expected O_WRONLY|O_APPEND", app, flags);
	CR_CHECK(lseek(app, 0, SEEK_CUR) == 10, "O_APPEND fd offset %ld, expected 10",
		 (long)lseek(app, 0, SEEK_CUR));
	CR_CHECK(!fstat(app, &now), "fstat");
	CR_CHECK(write(app, "tail", 4) == 4, "write: %s", strerror(errno));
	CR_CHECK(lseek(app, 0, SEEK_CUR) == now.st_size + 4, "O_APPEND write did not go to the end");
	/* leave the file as dumped: the leave-running variant restores from it afterwards */
	CR_CHECK(!ftruncate(app, now.st_size), "ftruncate: %s", strerror(errno));
	return cr_victim_result();
}

CR_CASE(files, regular, .victim = victim_regular);

/* ---- an fd above the restoring ckpt's soft fd limit ---- */

static int victim_high_fd(void *arg)
{
	struct rlimit lim = { 4096, 4096 }, now;
	int fd;

	CR_SETUP(!setrlimit(RLIMIT_NOFILE, &lim), "setrlimit");
	fd = open("/dev/zero", O_RDONLY);
	CR_SETUP(fd >= 0 && dup2(fd, 3000) == 3000, "dup2 to 3000");
	close(fd);

	cr_victim_ready_wait();

	char c = 1;
	CR_CHECK(read(3000, &c, 1) == 1 && c == 0, "fd 3000 does not read /dev/zero");
	CR_CHECK(!getrlimit(RLIMIT_NOFILE, &now) && now.rlim_cur == 4096,
		 "RLIMIT_NOFILE soft %llu, expected 4096", (unsigned long long)now.rlim_cur);
	return cr_victim_result();
}

/* ckpt restore inherits a soft fd limit far below the task's fd. */
static int between_low_limit(struct cr_run *r)
{
	struct rlimit lim;

	if (getrlimit(RLIMIT_NOFILE, &lim))
		return cr_fail(r, "getrlimit: %s", strerror(errno));
	lim.rlim_cur = 64;
	if (setrlimit(RLIMIT_NOFILE, &lim))
		return cr_fail(r, "setrlimit: %s", strerror(errno));
	return 0;
}

CR_CASE(files, high_fd, .victim = victim_high_fd, .between = between_low_limit);

static int victim_cloexec(void *arg)
{
	static char path[PATH_MAX];
	int a, b;

	make_file("cloexec.dat", 100, 3, path);
	a = open(path, O_RDONLY | O_CLOEXEC);
	b = open(path, O_RDONLY);
	CR_SETUP(a >= 0 && b >= 0, "open");

	cr_victim_ready_wait();

	CR_CHECK(fcntl(a, F_GETFD) == FD_CLOEXEC, "fd %d lost FD_CLOEXEC (%d)", a,
		 fcntl(a, F_GETFD));
	CR_CHECK(fcntl(b, F_GETFD) == 0, "fd %d gained FD_CLOEXEC (%d)", b, fcntl(b, F_GETFD));
	CR_CHECK((fcntl(a, F_GETFL) & O_ACCMODE) == O_RDONLY, "fd %d not O_RDONLY", a);
	return cr_victim_result();
}

CR_CASE(files, cloexec, .victim = victim_cloexec);

static int victim_devices(void *arg)
{
	unsigned char buf[4096];
	struct stat st;
	int null, zero;

	null = open("/dev/null", O_RDWR);
	zero = open("/dev/zero", O_RDONLY);
	CR_SETUP(null >= 0 && zero >= 0, "open devices");

	cr_victim_ready_wait();

	CR_CHECK(!fstat(null, &st) && S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3),
		 "fd %d is not /dev/null", null);
	CR_CHECK(write(null, "x", 1) == 1 && read(null, buf, 1) == 0, "/dev/null misbehaves");
	CR_CHECK(!fstat(zero, &st) && S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 5),
		 "fd %d is not /dev/zero", zero);
	memset(buf, 0xff, sizeof(buf));
	CR_CHECK(read(zero, buf, sizeof(buf)) == sizeof(buf), "read /dev/zero");
	for (size_t i = 0; i < sizeof(buf); i++)
		if (buf[i]) {
			CR_CHECK(0, "/dev/zero gave 0x%x at %zu", buf[i], i);
			break;
		}
	CR_CHECK(!fstat(0, &st) && st.st_rdev == makedev(1, 3), "stdin is not /dev/null");
	return cr_victim_result();
}

CR_CASE(files, devices, .victim = victim_devices);

static int victim_directory(void *arg)
{
	static char dir[PATH_MAX], path[PATH_MAX + 16];
	struct stat st;
	char buf[16] = "";
	int dfd, fd;

	snprintf(dir, sizeof(dir), "%s/sub", cr_victim_dir);
	CR_SETUP(!mkdir(dir, 0755), "mkdir");
	snprintf(path, sizeof(path), "%s/inner", dir);
	fd = open(path, O_CREAT | O_WRONLY, 0644);
	CR_SETUP(fd >= 0 && write(fd, "inner-data", 10) == 10, "create");
	close(fd);
	dfd = open(dir, O_RDONLY | O_DIRECTORY);
	CR_SETUP(dfd >= 0 && !fstat(dfd, &st), "open dir");

	cr_victim_ready_wait();

	CR_CHECK(same_file(dfd, &st), "directory fd %d is another file", dfd);
	fd = openat(dfd, "inner", O_RDONLY);
	CR_CHECK(fd >= 0, "openat(dirfd, 'inner'): %s", strerror(errno));
	if (fd >= 0) {
		CR_CHECK(read(fd, buf, 10) == 10 && !memcmp(buf, "inner-data", 10),
			 "inner file content '%s'", buf);
		close(fd);
	}
	return cr_victim_result();
}

CR_CASE(files, directory, .victim = victim_directory);

static int victim_dup_offset(void *arg)
{
	static char path[PATH_MAX];
	int a, b, c;

	make_file("dup.dat", 4096, 4, path);
	a = open(path, O_RDWR);
	CR_SETUP(a >= 0, "open");
	b = dup(a);
	c = open(path, O_RDONLY);
	CR_SETUP(b >= 0 && c >= 0, "dup/open");
	CR_SETUP(lseek(a, 100, SEEK_SET) == 100 && lseek(c, 7, SEEK_SET) == 7, "lseek");

	cr_victim_ready_wait();

	CR_CHECK(lseek(b, 0, SEEK_CUR) == 100, "dup'ed fd offset %ld, expected 100",
		 (long)lseek(b, 0, SEEK_CUR));
	CR_CHECK(lseek(a, 500, SEEK_SET) == 500, "lseek");
	CR_CHECK(lseek(b, 0, SEEK_CUR) == 500, "dup'ed fds no longer share the offset (%ld)",
		 (long)lseek(b, 0, SEEK_CUR));
	CR_CHECK(lseek(c, 0, SEEK_CUR) == 7, "separately opened fd offset %ld, expected 7",
		 (long)lseek(c, 0, SEEK_CUR));
	return cr_victim_result();
}

CR_CASE(files, dup_offset, .victim = victim_dup_offset);

/* ---- pipes and FIFOs ---- */

static int victim_pipe(void *arg)
{
	unsigned char data[1000], buf[1000];
	struct stat s0, s1;
	int p[2], queued = -1;

	CR_SETUP(!pipe(p), "pipe");
	CR_SETUP(fcntl(p[0], F_SETPIPE_SZ, 128 * 1024) == 128 * 1024, "F_SETPIPE_SZ");
	fill(data, sizeof(data), 5);
	CR_SETUP(write(p[1], data, sizeof(data)) == sizeof(data), "write");

	cr_victim_ready_wait();

	CR_CHECK(!fstat(p[0], &s0) && !fstat(p[1], &s1) && S_ISFIFO(s0.st_mode) &&
		 s0.st_ino == s1.st_ino, "fds %d and %d are not the ends of one pipe", p[0], p[1]);
	CR_CHECK(fcntl(p[0], F_GETPIPE_SZ) == 128 * 1024, "pipe size %d, expected 131072",
		 fcntl(p[0], F_GETPIPE_SZ));
	CR_CHECK(!ioctl(p[0], FIONREAD, &queued) && queued == 1000, "%d bytes queued, "
		 "expected 1000", queued);
	CR_CHECK((fcntl(p[0], F_GETFL) & O_ACCMODE) == O_RDONLY &&
		 (fcntl(p[1], F_GETFL) & O_ACCMODE) == O_WRONLY, "pipe end modes swapped");
	if (queued == 1000) {
		CR_CHECK(read(p[0], buf, sizeof(buf)) == sizeof(buf) && !memcmp(buf, data, 1000),
			 "pipe data differs");
	}
	CR_CHECK(write(p[1], "ping", 4) == 4 && read(p[0], buf, 4) == 4 && !memcmp(buf, "ping", 4),
		 "pipe no longer carries data");
	return cr_victim_result();
}

CR_CASE(files, pipe, .victim = victim_pipe);

static int victim_fifo(void *arg)
{
	static char path[PATH_MAX];
	unsigned char data[300], buf[300];
	struct stat st, now;
	int fd, queued = -1;

	snprintf(path, sizeof(path), "%s/fifo", cr_victim_dir);
	CR_SETUP(!mkfifo(path, 0600), "mkfifo");
	fd = open(path, O_RDWR);
	CR_SETUP(fd >= 0, "open fifo");
	fill(data, sizeof(data), 6);
	CR_SETUP(write(fd, data, sizeof(data)) == sizeof(data), "write");
	CR_SETUP(!stat(path, &st), "stat");

	cr_victim_ready_wait();

	CR_CHECK(!fstat(fd, &now) && S_ISFIFO(now.st_mode) && now.st_ino == st.st_ino,
		 "fd %d is not the FIFO '%s'", fd, path);
	CR_CHECK((fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDWR, "FIFO fd not O_RDWR");
	CR_CHECK(!ioctl(fd, FIONREAD, &queued) && queued == 300, "%d bytes queued in the FIFO, "
		 "expected 300", queued);
	if (queued == 300)
		CR_CHECK(read(fd, buf, sizeof(buf)) == sizeof(buf) && !memcmp(buf, data, 300),
			 "FIFO data differs");
	return cr_victim_result();
}

CR_CASE(files, fifo, .victim = victim_fifo);

/* ---- restore refuses when a file is gone or changed ---- */

static int victim_open_file(void *arg)
{
	static char path[PATH_MAX];
	int fd;

	make_file((const char *)arg, 4096, 7, path);
	fd = open(path, O_RDWR);
	CR_SETUP(fd >= 0, "open");
	CR_SETUP(lseek(fd, 99, SEEK_SET) == 99, "lseek");

	cr_victim_ready_wait();

	CR_CHECK(lseek(fd, 0, SEEK_CUR) == 99, "offset %ld", (long)lseek(fd, 0, SEEK_CUR));
	return cr_victim_result();
}

static int remove_file(struct cr_run *r)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/gone.dat", r->env->dir);
	if (unlink(path))
		return cr_fail(r, "unlink '%s': %s", path, strerror(errno));
	/* restore must fail naming the file, and leave no task behind */
	snprintf(r->restore_err, sizeof(r->restore_err), "%s", path);
	return 0;
}

CR_CASE(files, file_gone, .victim = victim_open_file, .arg = "gone.dat",
	.between = remove_file);

static int grow_file(struct cr_run *r)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/changed.dat", r->env->dir);
	fd = open(path, O_WRONLY | O_APPEND);
	if (fd < 0 || write(fd, "more", 4) != 4)
		return cr_fail(r, "append to '%s': %s", path, strerror(errno));
	close(fd);
	snprintf(r->restore_err, sizeof(r->restore_err), "%s", path);
	return 0;
}

CR_CASE(files, file_size_changed, .victim = victim_open_file, .arg = "changed.dat",
	.between = grow_file);

/* ---- image privacy ---- */

static int victim_idle(void *arg)
{
	cr_victim_ready_wait();
	return 0;
}

static int flow_image_modes(struct cr_run *r)
{
	pid_t pid;
	int status;

	if (cr_victim_start(r))
		return -1;
	pid = r->victim;
	if (cr_dump(r, "dump", pid, false, NULL, &status) || cr_expect_ok(r, "dump", status))
		return -1;
	if (cr_check_image_modes(r) || cr_reap_dumped(r, pid))
		return -1;
	if (cr_restore(r, "restore", &status, &pid) || cr_expect_ok(r, "restore", status))
		return -1;
	return cr_verify(r, pid, "restored");
}

CR_CASE(files, image_modes, .victim = victim_idle, .flow = flow_image_modes);

TEST_HARNESS_MAIN
