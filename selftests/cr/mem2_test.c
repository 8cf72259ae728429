// SPDX-License-Identifier: MIT
/*
 * mem2_test: more of the address space and a stray fd.
 *  - shared_anon: 1 MiB MAP_SHARED|MAP_ANONYMOUS in one process; pages dropped with
 *    MADV_DONTNEED keep their data (it lives in shmem), never-touched pages read zero;
 *  - mlocked: mlock()ed and MAP_LOCKED mappings are locked again ("lo" in VmFlags);
 *  - madvise_flags: MADV_DONTFORK ("dc") and MADV_HUGEPAGE ("hg") are kept;
 *  - prot_none_data: a PROT_NONE region that had data gets it back after mprotect(PROT_READ);
 *  - file_private_ro: a private mapping of a file opened O_RDONLY (mode 0444), some pages
 *    written privately after mprotect(RW);
 *  - stray_null_fd: fd 10 is /dev/null opened through a bind mount in a mount namespace
 *    that is gone at dump time. Either dump and restore work (fd 10 is /dev/null again) or
 *    the engine refuses with one clear error line naming fd 10; runner.log says which.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cr.h"

#define PAGE 4096UL

CR_FIXTURE_LR(mem2);


/*
 * The permissions (perms: 8 bytes) and VmFlags of the mapping that holds addr, from
 * /proc/self/smaps. false if there is none.
 */
static bool smaps_of(const void *addr, char *perms, char *vmflags, size_t size)
{
	static char buf[512 * 1024];
	unsigned long a = (unsigned long)addr;
	const char *p;

	if (cr_read_file("/proc/self/smaps", buf, sizeof(buf)) <= 0)
		return false;
	for (p = buf; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		unsigned long s, e;
		char pm[8];
		const char *f;

		if (sscanf(p, "%lx-%lx %4s", &s, &e, pm) != 3 || a < s || a >= e)
			continue;
		if (perms)
			snprintf(perms, 8, "%.4s", pm);
		f = strstr(p, "\nVmFlags:");
		if (!f)
			return false;
		f += strlen("\nVmFlags:");
		while (*f == ' ')
			f++;
		snprintf(vmflags, size, "%.*s", (int)strcspn(f, "\n"), f);
		return true;
	}
	return false;
}

/* Whether the VmFlags of the mapping at addr have the two-letter flag. */
static bool has_vmflag(const void *addr, const char *flag, char *flags, size_t size)
{
	char padded[300];

	flags[0] = 0;
	if (!smaps_of(addr, NULL, flags, size))
		return false;
	snprintf(padded, sizeof(padded), " %s ", flags);
	return strstr(padded, flag) != NULL;
}

/* ---- shared anonymous memory ---- */

#define SHM_PAGES 256	/* 1 MiB */

static int victim_shared_anon(void *arg)
{
	static char flags[256], perms[8];
	unsigned char *m;
	long bad;

	m = mmap(NULL, SHM_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1,
		 0);
	CR_SETUP(m != MAP_FAILED, "mmap");
	/* Every fourth page never touched. */
	for (size_t i = 0; i < SHM_PAGES; i++)
		if (i % 4 != 3)
			cr_fill(m + i * PAGE, PAGE, 10 + i);
	/* Unmapped from the page tables, still in shmem. */
	CR_SETUP(!madvise(m + 64 * PAGE, 64 * PAGE, MADV_DONTNEED), "madvise");
	CR_SETUP(cr_check_pattern(m + 64 * PAGE, PAGE, 10 + 64) < 0, "MADV_DONTNEED dropped shmem data");
	CR_SETUP(!madvise(m + 192 * PAGE, 32 * PAGE, MADV_DONTNEED), "madvise");

	cr_victim_ready_wait();

	for (size_t i = 0; i < SHM_PAGES; i++) {
		if (i % 4 == 3) {
			if (!cr_all_zero(m + i * PAGE, PAGE)) {
				CR_CHECK(0, "never-touched shared page %zu is not zero", i);
				break;
			}
			continue;
		}
		bad = cr_check_pattern(m + i * PAGE, PAGE, 10 + i);
		if (bad >= 0) {
			CR_CHECK(0, "shared page %zu%s differs at byte %ld", i,
				 (i >= 64 && i < 128) || (i >= 192 && i < 224) ?
				 " (MADV_DONTNEED'd before the dump)" : "", bad);
			break;
		}
	}
	CR_CHECK(smaps_of(m, perms, flags, sizeof(flags)), "no mapping at %p", (void *)m);
	CR_CHECK(!strcmp(perms, "rw-s"), "shared mapping is '%s', not rw-s", perms);
	m[3 * PAGE] = 0x42;
	CR_CHECK(m[3 * PAGE] == 0x42, "store to the restored shared mapping lost");
	return cr_victim_result();
}

CR_CASE(mem2, shared_anon, .victim = victim_shared_anon);

/* ---- mlock ---- */

#define LOCK_PAGES 16

static int victim_mlocked(void *arg)
{
	static char flags[256];
	unsigned char *a, *b;
	long bad;

	a = mmap(NULL, LOCK_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		 0);
	CR_SETUP(a != MAP_FAILED, "mmap");
	cr_fill(a, LOCK_PAGES * PAGE, 20);
	if (mlock(a, LOCK_PAGES * PAGE))
		CR_VICTIM_SKIP("mlock: %s", strerror(errno));
	b = mmap(NULL, LOCK_PAGES * PAGE, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED, -1, 0);
	CR_SETUP(b != MAP_FAILED, "mmap MAP_LOCKED");
	cr_fill(b, LOCK_PAGES * PAGE, 21);
	CR_SETUP(has_vmflag(a, "lo", flags, sizeof(flags)), "mlock()ed mapping not 'lo': %s", flags);
	CR_SETUP(has_vmflag(b, "lo", flags, sizeof(flags)), "MAP_LOCKED mapping not 'lo': %s", flags);

	cr_victim_ready_wait();

	CR_CHECK(has_vmflag(a, "lo", flags, sizeof(flags)),
		 "mlock()ed mapping not locked after restore: VmFlags '%s'", flags);
	CR_CHECK(has_vmflag(b, "lo", flags, sizeof(flags)),
		 "MAP_LOCKED mapping not locked after restore: VmFlags '%s'", flags);
	bad = cr_check_pattern(a, LOCK_PAGES * PAGE, 20);
	CR_CHECK(bad < 0, "mlock()ed data differs at byte %ld", bad);
	bad = cr_check_pattern(b, LOCK_PAGES * PAGE, 21);
	CR_CHECK(bad < 0, "MAP_LOCKED data differs at byte %ld", bad);
	return cr_victim_result();
}

CR_CASE(mem2, mlocked, .victim = victim_mlocked);

/* ---- madvise flags ---- */

#define HUGE_SIZE (4UL << 20)

static int victim_madvise(void *arg)
{
	static char flags[256];
	unsigned char *dc, *hg, *raw;
	long bad;

	dc = mmap(NULL, 8 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CR_SETUP(dc != MAP_FAILED, "mmap");
	CR_SETUP(!madvise(dc, 8 * PAGE, MADV_DONTFORK), "MADV_DONTFORK");
	cr_fill(dc, 8 * PAGE, 30);
	/* 2 MiB aligned, so a huge page can back it. */
	raw = mmap(NULL, HUGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CR_SETUP(raw != MAP_FAILED, "mmap");
	hg = (unsigned char *)(((uintptr_t)raw + (2UL << 20) - 1) & ~((2UL << 20) - 1));
	if (hg > raw)
		CR_SETUP(!munmap(raw, hg - raw), "munmap");
	CR_SETUP(!munmap(hg + (2UL << 20), raw + HUGE_SIZE - (hg + (2UL << 20))), "munmap");
	if (madvise(hg, 2UL << 20, MADV_HUGEPAGE))
		CR_VICTIM_SKIP("MADV_HUGEPAGE: %s (no transparent huge pages)", strerror(errno));
	cr_fill(hg, 2UL << 20, 31);
	CR_SETUP(has_vmflag(dc, "dc", flags, sizeof(flags)), "no 'dc': %s", flags);
	CR_SETUP(has_vmflag(hg, "hg", flags, sizeof(flags)), "no 'hg': %s", flags);

	cr_victim_ready_wait();

	CR_CHECK(has_vmflag(dc, "dc", flags, sizeof(flags)),
		 "MADV_DONTFORK mapping lost 'dc': VmFlags '%s'", flags);
	CR_CHECK(has_vmflag(hg, "hg", flags, sizeof(flags)),
		 "MADV_HUGEPAGE mapping lost 'hg': VmFlags '%s'", flags);
	bad = cr_check_pattern(dc, 8 * PAGE, 30);
	CR_CHECK(bad < 0, "MADV_DONTFORK data differs at byte %ld", bad);
	bad = cr_check_pattern(hg, 2UL << 20, 31);
	CR_CHECK(bad < 0, "MADV_HUGEPAGE data differs at byte %ld", bad);
	return cr_victim_result();
}

CR_CASE(mem2, madvise_flags, .victim = victim_madvise);

/* ---- PROT_NONE over data ---- */

#define NONE_PAGES 16

static int victim_prot_none(void *arg)
{
	static char flags[256], perms[8];
	unsigned char *m;
	long bad;

	m = mmap(NULL, NONE_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		 0);
	CR_SETUP(m != MAP_FAILED, "mmap");
	cr_fill(m, NONE_PAGES * PAGE, 40);
	CR_SETUP(!mprotect(m, NONE_PAGES * PAGE, PROT_NONE), "mprotect");

	cr_victim_ready_wait();

	CR_CHECK(smaps_of(m, perms, flags, sizeof(flags)), "no mapping at %p", (void *)m);
	CR_CHECK(!strcmp(perms, "---p"), "mapping is '%s' after restore, not ---p", perms);
	CR_CHECK(!mprotect(m, NONE_PAGES * PAGE, PROT_READ), "mprotect: %s", strerror(errno));
	bad = cr_check_pattern(m, NONE_PAGES * PAGE, 40);
	CR_CHECK(bad < 0, "data under PROT_NONE differs at byte %ld (page %ld)", bad,
		 bad < 0 ? 0 : bad / (long)PAGE);
	return cr_victim_result();
}

CR_CASE(mem2, prot_none_data, .victim = victim_prot_none);

/* ---- private mapping of a read-only file ---- */

#define RO_PAGES 8

static int victim_file_private_ro(void *arg)
{
	static unsigned char file[RO_PAGES * PAGE], want[PAGE];
	static char path[PATH_MAX], flags[256], perms[8];
	unsigned char *m;
	int fd;

	snprintf(path, sizeof(path), "%s/ro.dat", cr_victim_dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0444);
	CR_SETUP(fd >= 0, "create '%s'", path);
	cr_fill(file, sizeof(file), 50);
	CR_SETUP(write(fd, file, sizeof(file)) == (ssize_t)sizeof(file), "write");
	close(fd);
	fd = open(path, O_RDONLY);
	CR_SETUP(fd >= 0, "open '%s'", path);
	m = mmap(NULL, RO_PAGES * PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
	CR_SETUP(m != MAP_FAILED, "mmap");
	close(fd);
	CR_SETUP(!mprotect(m, RO_PAGES * PAGE, PROT_READ | PROT_WRITE), "mprotect RW");
	memset(m + 2 * PAGE + 7, 0xB2, 100);
	memset(m + 5 * PAGE, 0xB5, PAGE);

	cr_victim_ready_wait();

	CR_CHECK(smaps_of(m, perms, flags, sizeof(flags)), "no mapping at %p", (void *)m);
	CR_CHECK(!strcmp(perms, "rw-p"), "mapping is '%s' after restore, not rw-p", perms);
	fd = open(path, O_RDONLY);
	CR_CHECK(fd >= 0, "open '%s': %s", path, strerror(errno));
	if (fd < 0)
		return cr_victim_result();
	CR_CHECK(pread(fd, file, sizeof(file), 0) == (ssize_t)sizeof(file), "pread");
	close(fd);
	CR_CHECK(cr_check_pattern(file, sizeof(file), 50) < 0, "the file changed on disk");
	for (int i = 0; i < RO_PAGES; i++) {
		memcpy(want, file + i * PAGE, PAGE);
		if (i == 2)
			memset(want + 7, 0xB2, 100);
		if (i == 5)
			memset(want, 0xB5, PAGE);
		CR_CHECK(!memcmp(m + i * PAGE, want, PAGE), "page %d: %s", i,
			 i == 2 || i == 5 ? "private modification lost" : "differs from the file");
	}
	m[0] = 0x77;
	CR_CHECK(m[0] == 0x77, "private store lost");
	return cr_victim_result();
}

CR_CASE(mem2, file_private_ro, .victim = victim_file_private_ro);

/* ---- fd 10: /dev/null through a bind mount of a mount namespace that is gone ---- */

#define STRAY_FD 10

/* A helper opens DIR/null, bind-mounted over by /dev/null in its own mount namespace. */
static int open_foreign_null(const char *path)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 }, c = 0;
	struct iovec iov = { &c, 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *cm;
	int sv[2], fd = -1, status;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		close(sv[0]);
		if (unshare(CLONE_NEWNS) ||
		    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
		    mount("/dev/null", path, NULL, MS_BIND, NULL))
			_exit(10 + errno % 100);
		fd = open(path, O_RDWR);
		if (fd < 0)
			_exit(3);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
		_exit(sendmsg(sv[1], &mh, 0) == 1 ? 0 : 4);
	}
	close(sv[1]);
	if (recvmsg(sv[0], &mh, 0) == 1 && (cm = CMSG_FIRSTHDR(&mh)) &&
	    cm->cmsg_type == SCM_RIGHTS)
		memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	close(sv[0]);
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status)) {
		if (fd >= 0)
			close(fd);
		errno = WIFEXITED(status) && WEXITSTATUS(status) >= 10 ?
			WEXITSTATUS(status) - 10 : EIO;
		return -1;
	}
	return fd;
}

static bool is_dev_null(int fd)
{
	struct stat st;

	return !fstat(fd, &st) && S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3);
}

static int victim_stray_fd(void *arg)
{
	static char path[PATH_MAX];
	struct stat st;
	char c;
	int fd;

	snprintf(path, sizeof(path), "%s/null", cr_victim_dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	CR_SETUP(fd >= 0, "create '%s'", path);
	close(fd);
	fd = open_foreign_null(path);
	if (fd < 0 && (errno == EPERM || errno == EINVAL))
		CR_VICTIM_SKIP("cannot bind-mount in a new mount namespace: %s", strerror(errno));
	CR_SETUP(fd >= 0, "open /dev/null through a foreign bind mount");
	CR_SETUP(dup2(fd, STRAY_FD) == STRAY_FD, "dup2");
	close(fd);
	CR_SETUP(is_dev_null(STRAY_FD), "fd %d is not /dev/null", STRAY_FD);
	/* Here, the path is the plain file: the bind mount is not in our namespace. */
	CR_SETUP(!stat(path, &st) && S_ISREG(st.st_mode), "'%s' is not a regular file here", path);

	cr_victim_ready_wait();

	CR_CHECK(is_dev_null(STRAY_FD), "fd %d is not /dev/null (1:3) after restore", STRAY_FD);
	CR_CHECK(write(STRAY_FD, "x", 1) == 1, "write to fd %d: %s", STRAY_FD, strerror(errno));
	CR_CHECK(read(STRAY_FD, &c, 1) == 0, "read from fd %d is not EOF", STRAY_FD);
	return cr_victim_result();
}

/* The error line of ckpt call `tag` that names fd 10, or cr_fail(). */
static int expect_fd_error(struct cr_run *r, const char *tag, int status)
{
	char path[PATH_MAX + 16], text[8192], needle[16], *line, *save = NULL;
	int lines = 0;

	snprintf(needle, sizeof(needle), "fd %d", STRAY_FD);
	if (cr_expect_failed(r, tag, status, needle))
		return -1;
	snprintf(path, sizeof(path), "%s/%s.out", r->env->dir, tag);
	if (cr_read_file(path, text, sizeof(text)) <= 0)
		return cr_fail(r, "no output from ckpt %s", tag);
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		if (strstr(line, "Error") && strstr(line, needle)) {
			cr_note(r, "RESULT: ckpt %s refuses: %s", tag, line);
			lines++;
		}
	if (lines != 1)
		return cr_fail(r, "ckpt %s: %d error lines name %s, expected one", tag, lines, needle);
	return 0;
}

static int flow_stray_fd(struct cr_run *r)
{
	static struct cr_snap before;
	pid_t pid, restored;
	int status, left;

	if (cr_victim_start(r))
		return -1;
	pid = r->victim;
	if (cr_snapshot(r, pid, &before))
		return -1;
	if (cr_dump(r, "dump", pid, false, NULL, &status))
		return -1;
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		if (expect_fd_error(r, "dump", status) || cr_check_unharmed(r, pid, &before))
			return -1;
		return cr_verify(r, pid, "dump-refused");
	}
	if (cr_reap_dumped(r, pid))
		return -1;
	if (cr_restore(r, "restore", &status, &restored))
		return -1;
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		if (expect_fd_error(r, "restore", status) ||
		    cr_expect_pid_free(r, pid, "restore failed"))
			return -1;
		left = cr_count_children();
		if (left)
			return cr_fail(r, "%d process(es) left after the failed restore", left);
		return 0;
	}
	if (restored != pid)
		return cr_fail(r, "restored as %d, expected %d", restored, pid);
	if (cr_verify(r, pid, "restored"))
		return -1;
	cr_note(r, "RESULT: dump and restore of the foreign /dev/null fd worked");
	return 0;
}

CR_CASE(mem2, stray_null_fd, .victim = victim_stray_fd, .flow = flow_stray_fd);

TEST_HARNESS_MAIN
