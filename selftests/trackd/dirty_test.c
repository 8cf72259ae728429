// SPDX-License-Identifier: MIT
/*
 * dirty_test: written-page tracking with userfaultfd async write-protect
 * and PAGEMAP_SCAN (user/lib/dirty.h, user/ckpt/wptrack.h).
 *
 * A forked target maps known regions and obeys commands over a socketpair
 * (write pages, read() into a page, discard, mremap, mprotect, map, fork).
 * The test takes a uffd out of it with wptrack_open, arms it with
 * wptrack_arm and checks every harvest exactly: the pages reported are
 * the pages written, no page more, no page less. Kernel behaviours this
 * relies on, and gaps the engine has to cover otherwise, are pinned down
 * here too (Linux 6.18): see the comments at each expectation.
 *
 * wptrack_open() must refuse, without seizing it, a process it cannot
 * track: one using userfaultfd itself (-EBUSY; a tracer already attached
 * shows that no seize was even tried) and one with a thread in
 * uninterruptible sleep, here a vfork parent (-EAGAIN at once, instead of
 * a seize timing out and leaving it traced).
 *
 * The test process is a child subreaper, so whatever a target forks is
 * reaped here; the teardown kills and reaps everything.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <ftw.h>
#include <grp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/aio_abi.h>
#include <linux/userfaultfd.h>

#include "harness.h"

#include "ckpt.h"
#include "dirty.h"
#include "kcompat.h"
#include "log.h"
#include "proc.h"
#include "wptrack.h"

#define PS		4096UL
#define IO_TIMEOUT_MS	10000
#define NR_THREADS	4

/* The target's regions. R_EXTRA is the last one made by OP_MAP or OP_MREMAP. */
enum region {
	R_ANON,		/* private anon rw: 0-31 written, 32-35 read (zero page), 36-63 untouched */
	R_SHARED,	/* shared anon rw: 0-7 written */
	R_FILE,		/* private file rw: 0-3 read, 4-5 written (COW), 6-15 untouched */
	R_RO,		/* private anon read-only: 0-3 read */
	R_NONE,		/* private anon PROT_NONE */
	R_SHFILE,	/* shared file rw: 0 written */
	R_HOT,		/* private anon rw: thread i writes page 2i (threads targets only) */
	R_THP,		/* 4 MiB, 2 MiB aligned, MADV_HUGEPAGE, all written (thp targets only) */
	R_EXTRA,
	R_NR,
};

static const int region_pages[R_NR] = {
	[R_ANON] = 64, [R_SHARED] = 16, [R_FILE] = 16, [R_RO] = 8, [R_NONE] = 4,
	[R_SHFILE] = 4, [R_HOT] = 8, [R_THP] = 1024,
};

enum own_uffd {
	OWN_NONE,
	OWN_FD,		/* the target holds a userfaultfd */
	OWN_REGISTERED,	/* a mapping of the target is registered, the uffd lives in a helper */
};

struct tgt_cfg {
	bool threads;
	bool thp;
	bool unpriv;	/* drop to uid/gid 65534 without capabilities */
	enum own_uffd own;
};

/* Sent once by the target when it is ready. */
struct layout {
	uint64_t addr[R_NR];
	int plain_uffd_errno;	/* unpriv: errno of userfaultfd() without USER_MODE_ONLY */
	pid_t helper;		/* OWN_REGISTERED: the process holding the uffd */
};

enum op {
	OP_PING = 1,
	OP_WRITE,	/* pages[] of region */
	OP_WRITE_STRIDE,	/* count pages of region from first, every prot-th */
	OP_READ_INTO,	/* read() len bytes from a pipe into page first of region at offset */
	OP_DONTNEED,	/* first, count */
	OP_MPROTECT,	/* first, count, prot */
	OP_MREMAP,	/* move first, count to a new place -> addr */
	OP_MAP,		/* count pages, private anon rw -> addr */
	OP_FORK,	/* the child writes page first of region (if >= 0), then waits -> pid */
	OP_THREADS_STOP,	/* the threads write their page once more and end */
	OP_VFORK,	/* vfork from the main thread, or (first) from a new one; see target_vfork() */
};

struct cmd {
	int op, region, first, count, prot, offset, len;
	int n, pages[32];
};

struct reply {
	int err;
	pid_t pid;
	uint64_t addr;
};

bool fault_injected(const char *point)
{
	const char *f = getenv("CKPT_FAULT");

	return f && !strcmp(f, point);
}

/* ---- the target ---- */

static char *regions[R_NR];
static atomic_int threads_stop;
static pthread_t threads[NR_THREADS];

static void *hot_thread(void *arg)
{
	volatile char *p = regions[R_HOT] + (long)arg * 2 * PS;
	char v = 0;

	while (!atomic_load(&threads_stop)) {
		*p = ++v;
		sched_yield();
	}
	*p = ++v;
	return NULL;
}

static char *map(int pages, int prot, int flags, int fd, off_t off)
{
	char *p = mmap(NULL, pages * PS, prot, flags, fd, off);

	return p == MAP_FAILED ? NULL : p;
}

static void touch_write(char *base, int first, int count, char v)
{
	for (int i = first; i < first + count; i++)
		*(volatile char *)(base + i * PS + 17) = v;
}

static void touch_read(char *base, int first, int count)
{
	for (int i = first; i < first + count; i++)
		(void)*(volatile char *)(base + i * PS);
}

static int target_own_uffd(const struct tgt_cfg *cfg, struct layout *lay)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = {
		.range = { (uint64_t)regions[R_ANON], region_pages[R_ANON] * PS },
		.mode = UFFDIO_REGISTER_MODE_WP,
	};
	int uffd = syscall(SYS_userfaultfd, O_CLOEXEC);
	pid_t pid;

	if (uffd < 0)
		return -errno;
	if (cfg->own == OWN_FD)
		return 0;
	if (ioctl(uffd, UFFDIO_API, &api) || ioctl(uffd, UFFDIO_REGISTER, &reg))
		return -errno;
	/* The helper keeps the uffd (and the registration) alive; ours goes. */
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		for (;;)
			pause();
	}
	close(uffd);
	lay->helper = pid;
	return 0;
}

static int target_setup(const struct tgt_cfg *cfg, const char *dir, struct layout *lay)
{
	char path[PATH_MAX];
	aio_context_t aio = 0;
	char page[PS];
	int fd;

	memset(page, 'f', sizeof(page));
	snprintf(path, sizeof(path), "%s/file", dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	unlink(path);
	for (int i = 0; i < region_pages[R_FILE] + region_pages[R_SHFILE]; i++)
		if (write(fd, page, PS) != (ssize_t)PS)
			return -EIO;

	regions[R_ANON] = map(64, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	regions[R_SHARED] = map(16, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	regions[R_FILE] = map(16, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	regions[R_RO] = map(8, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	regions[R_NONE] = map(4, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	regions[R_SHFILE] = map(4, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 16 * PS);
	close(fd);
	for (int r = R_ANON; r <= R_SHFILE; r++)
		if (!regions[r])
			return -ENOMEM;
	touch_write(regions[R_ANON], 0, 32, 1);
	touch_read(regions[R_ANON], 32, 4);
	touch_write(regions[R_SHARED], 0, 8, 1);
	touch_read(regions[R_FILE], 0, 4);
	touch_write(regions[R_FILE], 4, 2, 1);
	touch_read(regions[R_RO], 0, 4);
	touch_write(regions[R_SHFILE], 0, 1, 1);
	/* An AIO ring: never registered, always read as written. */
	if (syscall(SYS_io_setup, 128, &aio))
		return -errno;

	if (cfg->thp) {
		char *raw = map(1024 + 512, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
				-1, 0);

		if (!raw)
			return -ENOMEM;
		regions[R_THP] = (char *)(((uintptr_t)raw + (2 << 20) - 1) & ~((2UL << 20) - 1));
		if (madvise(regions[R_THP], 4 << 20, MADV_HUGEPAGE))
			return -errno;
		touch_write(regions[R_THP], 0, 1024, 1);
	}
	if (cfg->threads) {
		regions[R_HOT] = map(8, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (!regions[R_HOT])
			return -ENOMEM;
		for (long i = 0; i < NR_THREADS; i++)
			if (pthread_create(&threads[i], NULL, hot_thread, (void *)i))
				return -EAGAIN;
	}
	if (cfg->own != OWN_NONE) {
		int err = target_own_uffd(cfg, lay);

		if (err)
			return err;
	}
	if (cfg->unpriv) {
		int uffd;

		if (setgroups(0, NULL) || setresgid(65534, 65534, 65534) ||
		    setresuid(65534, 65534, 65534))
			return -errno;
		/* A uid change made it non-dumpable; the test reads its /proc files. */
		prctl(PR_SET_DUMPABLE, 1);
		uffd = syscall(SYS_userfaultfd, O_CLOEXEC);
		lay->plain_uffd_errno = uffd < 0 ? errno : 0;
		if (uffd >= 0)
			close(uffd);
	}
	for (int r = 0; r < R_NR; r++)
		lay->addr[r] = (uintptr_t)regions[r];
	return 0;
}

static int target_fork(const struct cmd *c, int sk, pid_t *ret_pid)
{
	int p[2];
	char b;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC))
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(sk);
		if (c->region >= 0)
			touch_write(regions[c->region], c->first, 1, 7);
		(void)!write(p[1], "c", 1);
		for (;;)
			pause();
	}
	close(p[1]);
	if (read(p[0], &b, 1) != 1) {
		close(p[0]);
		return -EIO;
	}
	close(p[0]);
	*ret_pid = pid;
	return 0;
}

/*
 * The vfork child sends a reply of its own (err 1, its pid) and waits for any message on
 * the socket before it exits: until then the thread that vforked sleeps in
 * wait_for_vfork_done(), 'D' in /proc, and the main thread answers nothing.
 */
static int target_vfork(int sk)
{
	struct reply child = { .err = 1 };
	struct cmd c;
	pid_t pid;

	pid = vfork();
	if (pid == 0) {
		child.pid = getpid();
		if (send(sk, &child, sizeof(child), 0) == sizeof(child))
			(void)!recv(sk, &c, sizeof(c), 0);
		_exit(0);
	}
	if (pid < 0)
		return -errno;
	return waitpid(pid, NULL, 0) == pid ? 0 : -errno;
}

static void *vfork_thread(void *arg)
{
	return (void *)(long)target_vfork((int)(long)arg);
}

static int target_do(const struct cmd *c, int sk, struct reply *rep)
{
	char *base = c->region >= 0 && c->region < R_NR ? regions[c->region] : NULL;
	char buf[PS];
	int p[2];

	switch (c->op) {
	case OP_PING:
		return 0;
	case OP_WRITE:
		for (int i = 0; i < c->n; i++)
			touch_write(base, c->pages[i], 1, (char)(i + 2));
		return 0;
	case OP_WRITE_STRIDE:
		for (int i = 0; i < c->count; i++)
			touch_write(base, c->first + i * c->prot, 1, 3);
		return 0;
	case OP_READ_INTO:
		/* The kernel writes the page (copy_to_user), not the task. */
		memset(buf, 'r', sizeof(buf));
		if (pipe2(p, O_CLOEXEC))
			return -errno;
		if (write(p[1], buf, c->len) != c->len ||
		    read(p[0], base + c->first * PS + c->offset, c->len) != c->len) {
			close(p[0]);
			close(p[1]);
			return -EIO;
		}
		close(p[0]);
		close(p[1]);
		return 0;
	case OP_DONTNEED:
		return madvise(base + c->first * PS, c->count * PS, MADV_DONTNEED) ? -errno : 0;
	case OP_MPROTECT:
		return mprotect(base + c->first * PS, c->count * PS, c->prot) ? -errno : 0;
	case OP_MREMAP: {
		char *dst = map(c->count, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		char *to;

		if (!dst)
			return -ENOMEM;
		to = mremap(base + c->first * PS, c->count * PS, c->count * PS,
			    MREMAP_MAYMOVE | MREMAP_FIXED, dst);
		if (to == MAP_FAILED)
			return -errno;
		regions[R_EXTRA] = to;
		rep->addr = (uintptr_t)to;
		return 0;
	}
	case OP_MAP:
		regions[R_EXTRA] = map(c->count, PROT_READ | PROT_WRITE,
				       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		rep->addr = (uintptr_t)regions[R_EXTRA];
		return regions[R_EXTRA] ? 0 : -ENOMEM;
	case OP_FORK:
		return target_fork(c, sk, &rep->pid);
	case OP_THREADS_STOP:
		atomic_store(&threads_stop, 1);
		for (int i = 0; i < NR_THREADS; i++)
			pthread_join(threads[i], NULL);
		return 0;
	case OP_VFORK: {
		pthread_t th;
		void *ret;

		if (!c->first)
			return target_vfork(sk);
		if (pthread_create(&th, NULL, vfork_thread, (void *)(long)sk))
			return -EAGAIN;
		pthread_join(th, &ret);
		return (int)(long)ret;
	}
	}
	return -EINVAL;
}

static int target_main(int sk, const struct tgt_cfg *cfg, const char *dir)
{
	struct layout lay = { 0 };
	struct cmd c;
	int err;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (dup2(sk, 3) != 3)
		return 1;
	sk = 3;
	/* No stray fd of the test (or of its shell) in the target. */
	syscall(SYS_close_range, 4, ~0U, 0);
	err = target_setup(cfg, dir, &lay);
	if (err) {
		fprintf(stderr, "target setup: %s\n", strerror(-err));
		return 1;
	}
	if (send(sk, &lay, sizeof(lay), 0) != sizeof(lay))
		return 1;
	while (recv(sk, &c, sizeof(c), 0) == sizeof(c)) {
		struct reply rep = { 0 };

		rep.err = target_do(&c, sk, &rep);
		if (send(sk, &rep, sizeof(rep), 0) != sizeof(rep))
			return 1;
	}
	return 0;
}

/* ---- the test side ---- */

FIXTURE(wp) {
	char dir[256];
	char log[PATH_MAX];
	pid_t pid;
	int sk;
	struct layout lay;
	int uffd;
	struct dirty_run *armed;
	size_t n_armed;
};

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

FIXTURE_SETUP(wp)
{
	const char *tmp = getenv("TMPDIR");

	self->pid = -1;
	self->sk = -1;
	self->uffd = -1;
	ASSERT_EQ(0, prctl(PR_SET_CHILD_SUBREAPER, 1));
	snprintf(self->dir, sizeof(self->dir), "%s/dirty_test.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	ASSERT_TRUE(mkdtemp(self->dir) != NULL);
	snprintf(self->log, sizeof(self->log), "%s/log", self->dir);
	ASSERT_EQ(0, log_init(self->log, LOG_DEBUG));
}

/* The log of wptrack and dirty, as comments, when the test failed. */
static void dump_log(const char *path)
{
	char line[1024];
	FILE *f = fopen(path, "r");

	if (!f)
		return;
	while (fgets(line, sizeof(line), f))
		th_comment("log: %.*s", (int)strcspn(line, "\n"), line);
	fclose(f);
}

FIXTURE_TEARDOWN(wp)
{
	if (self->sk >= 0)
		close(self->sk);
	if (self->uffd >= 0)
		close(self->uffd);
	free(self->armed);
	if (self->pid > 0) {
		kill(self->pid, SIGKILL);
		waitpid(self->pid, NULL, 0);
	}
	/* Children of the target (fork, uffd helper) were reparented to us. */
	for (int round = 0; round < 16; round++) {
		pid_t pids[64];
		int n = th_children(pids, 64);

		for (int i = 0; i < n; i++)
			kill(pids[i], SIGKILL);
		for (int i = 0; i < n; i++)
			waitpid(pids[i], NULL, 0);
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		if (!n)
			break;
	}
	log_fini();
	if (_metadata->failed)
		dump_log(self->log);
	nftw(self->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static int recv_timeout(int sk, void *buf, size_t len)
{
	struct pollfd pfd = { .fd = sk, .events = POLLIN };
	int r = poll(&pfd, 1, IO_TIMEOUT_MS);

	if (r <= 0)
		return r ? -errno : -ETIMEDOUT;
	r = recv(sk, buf, len, 0);
	if (r < 0)
		return -errno;
	return (size_t)r == len ? 0 : -EPROTO;
}

static void tgt_start(struct th_meta *_metadata, FIXTURE_DATA(wp) *self, const struct tgt_cfg *cfg)
{
	int sk[2];

	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sk));
	fflush(stdout);
	self->pid = fork();
	ASSERT_LE(0, self->pid);
	if (self->pid == 0) {
		close(sk[0]);
		_exit(target_main(sk[1], cfg, self->dir));
	}
	close(sk[1]);
	self->sk = sk[0];
	ASSERT_EQ(0, recv_timeout(self->sk, &self->lay, sizeof(self->lay)));
}

static struct reply tgt_cmd(struct th_meta *_metadata, FIXTURE_DATA(wp) *self, struct cmd c)
{
	struct reply rep = { .err = -EIO };

	ASSERT_EQ(sizeof(c), send(self->sk, &c, sizeof(c), 0));
	ASSERT_EQ(0, recv_timeout(self->sk, &rep, sizeof(rep)));
	ASSERT_EQ(0, rep.err);
	return rep;
}

#define PAGES(...) .pages = { __VA_ARGS__ }, \
	.n = sizeof((int[]){ __VA_ARGS__ }) / sizeof(int)

/* Write pages of region r in the target. */
#define TGT_WRITE(r, ...) \
	tgt_cmd(_metadata, self, (struct cmd){ .op = OP_WRITE, .region = (r), PAGES(__VA_ARGS__) })

static void tgt_ping(struct th_meta *_metadata, FIXTURE_DATA(wp) *self)
{
	tgt_cmd(_metadata, self, (struct cmd){ .op = OP_PING });
}

/* wptrack_open + wptrack_arm, as trackd does. */
static void track(struct th_meta *_metadata, FIXTURE_DATA(wp) *self)
{
	self->uffd = wptrack_open(self->pid);
	ASSERT_LE(0, self->uffd);
	ASSERT_EQ(0, wptrack_arm(self->pid, self->uffd, &self->armed, &self->n_armed));
}

/*
 * Runs as pages of [base, base + pages): "1,5-7"; a run outside it shows
 * as "!start-end" so that any page too many is seen.
 */
static void runs_str(const struct dirty_run *r, size_t n, uint64_t base, int pages, char *buf,
		     size_t len)
{
	size_t off = 0;

	buf[0] = 0;
	for (size_t i = 0; i < n && off < len; i++) {
		const char *sep = off ? "," : "";

		if (r[i].start >= base && r[i].end <= base + pages * PS) {
			uint64_t a = (r[i].start - base) / PS, b = (r[i].end - base) / PS - 1;

			if (a == b)
				off += snprintf(buf + off, len - off, "%s%llu", sep,
						(unsigned long long)a);
			else
				off += snprintf(buf + off, len - off, "%s%llu-%llu", sep,
						(unsigned long long)a, (unsigned long long)b);
		} else {
			off += snprintf(buf + off, len - off, "%s!%#llx-%#llx", sep,
					(unsigned long long)r[i].start, (unsigned long long)r[i].end);
		}
	}
}

/* dirty_scan of pages of pid at base, as runs_str() text. */
static int scan_str(pid_t pid, uint64_t base, int pages, bool rearm, char *buf, size_t len)
{
	struct dirty_run range = { base, base + pages * PS }, *runs;
	size_t n;
	int err = dirty_scan(pid, &range, 1, rearm, &runs, &n);

	if (err)
		return err;
	runs_str(runs, n, base, pages, buf, len);
	if (!n && runs)
		err = -EPROTO;	/* the contract: NULL when nothing */
	free(runs);
	return err;
}

/* The harvest of region r of pid (at addr, pages long) must be exactly expect. */
#define EXPECT_SCAN_AT(pid, addr, pages, rearm, expect)					\
	do {										\
		static char got_[16384];						\
		ASSERT_EQ(0, scan_str(pid, addr, pages, rearm, got_, sizeof(got_)));	\
		ASSERT_STREQ(expect, got_);						\
	} while (0)
#define EXPECT_SCAN(r, rearm, expect)							\
	EXPECT_SCAN_AT(self->pid, self->lay.addr[r], region_pages[r], rearm, expect)

static bool runs_cover(const struct dirty_run *r, size_t n, uint64_t start, uint64_t end)
{
	for (size_t i = 0; i < n; i++)
		if (r[i].start <= start && end <= r[i].end)
			return true;
	return false;
}

static bool runs_overlap(const struct dirty_run *r, size_t n, uint64_t start, uint64_t end)
{
	for (size_t i = 0; i < n; i++)
		if (r[i].start < end && start < r[i].end)
			return true;
	return false;
}

/* "fd -> target" lines of pid's fd table; returns how many fds. */
static int fd_table(pid_t pid, char *buf, size_t len, bool *ret_uffd)
{
	char path[64], link[256];
	struct dirent **names;
	size_t off = 0;
	int n;

	*ret_uffd = false;
	buf[0] = 0;
	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	n = scandir(path, &names, NULL, versionsort);
	if (n < 0)
		return -errno;
	for (int i = 0; i < n; i++) {
		char fdpath[384];
		ssize_t l;

		if (names[i]->d_name[0] != '.') {
			snprintf(fdpath, sizeof(fdpath), "%s/%s", path, names[i]->d_name);
			l = readlink(fdpath, link, sizeof(link) - 1);
			link[l < 0 ? 0 : l] = 0;
			if (!strcmp(link, "anon_inode:[userfaultfd]"))
				*ret_uffd = true;
			if (off < len)
				off += snprintf(buf + off, len - off, "%s -> %s\n", names[i]->d_name,
						link);
		}
		free(names[i]);
	}
	free(names);
	return n - 2;
}

/* A field of /proc/PID/status ("State", "TracerPid"), or "?". */
static void status_field(pid_t pid, const char *field, char *buf, size_t len)
{
	char status[4096], *p;
	size_t fl = strlen(field);

	snprintf(buf, len, "?");
	if (proc_read_file(pid, "status", status, sizeof(status)) < 0)
		return;
	for (p = status; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (!strncmp(p, field, fl) && p[fl] == ':') {
			p += fl + 1;
			p += strspn(p, " \t");
			snprintf(buf, len, "%.*s", (int)strcspn(p, "\n"), p);
			return;
		}
	}
}

/* Not traced, not stopped (or stopped when stopped), and it answers. */
static void expect_unharmed(struct th_meta *_metadata, FIXTURE_DATA(wp) *self)
{
	char v[64];

	status_field(self->pid, "TracerPid", v, sizeof(v));
	ASSERT_STREQ("0", v);
	status_field(self->pid, "State", v, sizeof(v));
	ASSERT_TRUE(v[0] == 'R' || v[0] == 'S');
	tgt_ping(_metadata, self);
}

static bool log_contains(const char *path, const char *what)
{
	char buf[65536];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n < 0 ? 0 : n] = 0;
	return strstr(buf, what) != NULL;
}

/* Every page written between two harvests is reported, and only those. */
TEST_F(wp, rounds)
{
	tgt_start(_metadata, self, &(struct tgt_cfg){ 0 });
	track(_metadata, self);
	EXPECT_SCAN(R_ANON, true, "");

	/* Present pages, zero-page mappings, never-touched pages. */
	TGT_WRITE(R_ANON, 0, 1, 17, 31);
	EXPECT_SCAN(R_ANON, true, "0-1,17,31");
	EXPECT_SCAN(R_ANON, true, "");
	TGT_WRITE(R_ANON, 32, 33, 40, 41, 42, 63);
	EXPECT_SCAN(R_ANON, true, "32-33,40-42,63");
	EXPECT_SCAN(R_ANON, true, "");
	TGT_WRITE(R_ANON, 50, 0, 40, 32);
	EXPECT_SCAN(R_ANON, true, "0,32,40,50");
	EXPECT_SCAN(R_ANON, true, "");
	/* The other regions were left alone. */
	EXPECT_SCAN(R_SHARED, true, "");
	EXPECT_SCAN(R_FILE, true, "");
	EXPECT_SCAN(R_RO, true, "");
}

/* Without rearm a harvest changes nothing. */
TEST_F(wp, no_rearm)
{
	tgt_start(_metadata, self, &(struct tgt_cfg){ 0 });
	track(_metadata, self);
	TGT_WRITE(R_ANON, 3, 44);
	EXPECT_SCAN(R_ANON, false, "3,44");
	EXPECT_SCAN(R_ANON, false, "3,44");
	EXPECT_SCAN(R_ANON, true, "3,44");
	EXPECT_SCAN(R_ANON, false, "");
}

/* Several ranges in one call: sorted, merged, each range's own pages only. */
TEST_F(wp, many_ranges)
{
	uint64_t a = 0, s = 0;
	struct dirty_run ranges[2], *runs;
	size_t n;

	tgt_start(_metadata, self, &(struct tgt_cfg){ 0 });
	track(_metadata, self);
	TGT_WRITE(R_ANON, 10, 11, 12);
	TGT_WRITE(R_SHARED, 15);
	a = self->lay.addr[R_ANON];
	s = self->lay.addr[R_SHARED];
	ranges[0] = (struct dirty_run){ a + 11 * PS, a + 64 * PS };
	ranges[1] = (struct dirty_run){ s, s + 16 * PS };
	if (s < a) {
		ranges[1] = ranges[0];
		ranges[0] = (struct dirty_run){ s, s + 16 * PS };
	}
	ASSERT_EQ(0, dirty_scan(self->pid, ranges, 2, true, &runs, &n));
	ASSERT_EQ(2, n);
	EXPECT_EQ(2 * PS + PS, dirty_bytes(runs, n));
	ASSERT_TRUE(runs[0].start < runs[1].start);
	EXPECT_TRUE(runs_cover(runs, n, a + 11 * PS, a + 13 * PS));
	EXPECT_TRUE(runs_cover(runs, n, s + 15 * PS, s + 16 * PS));
	free(runs);
	/* Page 10 was outside the ranges: still reported, and only it. */
	EXPECT_SCAN(R_ANON, true, "10");
	/* Unsorted or overlapping ranges are refused. */
	ranges[1] = ranges[0];
	EXPECT_EQ(-EINVAL, dirty_scan(self->pid, ranges, 2, true, &runs, &n));
}

/* More runs than one PAGEMAP_SCAN output vector holds: the walk goes on from walk_end. */
TEST_F(wp, many_runs)
{
	static char want[16384];
	struct dirty_run range, *runs;
	struct reply rep;
	size_t n, off = 0;

	tgt_start(_metadata, self, &(struct tgt_cfg){ 0 });
	track(_metadata, self);
	rep = tgt_cmd(_metadata, self, (struct cmd){ .op = OP_MAP, .count = 4096 });
	range = (struct dirty_run){ rep.addr, rep.addr + 4096 * PS };
	ASSERT_EQ(0, dirty_register(self->uffd, range.start, range.end));
	ASSERT_EQ(0, dirty_scan(self->pid, &range, 1, true, &runs, &n));
	ASSERT_EQ(1, n);
	free(runs);
	tgt_cmd(_metadata, self, (struct cmd){ .op = OP_WRITE_STRIDE, .region = R_EXTRA,
		.first = 1, .count = 1500, .prot = 2 });
	for (int i = 0; i < 1500; i++)
		off += snprintf(want + off, sizeof(want) - off, "%s%d", i ? "," : "", 1 + 2 * i);
	/* No rearm first: the same answer twice, then the harvest, then nothing. */
	ASSERT_EQ(0, dirty_scan(self->pid, &range, 1, false, &runs, &n));
	EXPECT_EQ(1500, n);
	EXPECT_EQ(1500 * PS, dirty_bytes(runs, n));
	free(runs);
	EXPECT_SCAN_AT(self->pid, rep.addr, 4096, false, want);
	EXPECT_SCAN_AT(self->pid, rep.addr, 4096, true, want);
	EXPECT_SCAN_AT(self->pid, rep.addr, 4096, true, "");
}

/* Kernel writes through the page tables count: read() into the range. */
TEST_F(wp, kernel_write)
{
	tgt_start(_metadata, self, &(struct tgt_cfg){ 0 });
	track(_metadata, self);
	tgt_cmd(_metadata, self, (struct cmd){ .op = OP_READ_INTO, .region = R_ANON, .first = 5,
		.offset = 100, .len = 10 });
	tgt_cmd(_metadata, self, (struct cmd){ .op = OP_READ_INTO, .region = R_ANON, .first = 33,
		.offset = 4000, .len = 96 });
	tgt_cmd(_metadata, self, (struct cmd){ .op = OP_READ_INTO, .region = R_ANON, .first = 40,
		.len = PS });
	EXPECT_SCAN(R_ANON, true, "5,33,40");
	EXPECT_SCAN(R_ANON, true, "");
}

/* A discard of anonymous memory is a change (the page reads as zero now). */
TEST_F(wp, dontneed)
{
	tgt_start(_metadata, self, &(struct tgt_cfg){ 0 });
	track(_metadata, self);
	tgt_cmd(_metadata, self, (struct cmd){ .op = OP_DONTNEED, .region = R_ANON, .first = 2,
		.count = 3 });
	EXPECT_SCAN(R_ANON, true, "2-4");
	EXPECT_SCAN(R_ANON, true, "");
	/* Discarded and re-armed, the hole is clean; a first write there counts. */
	TGT_WRITE(R_ANON, 3);
	EXPECT_SCAN(R_ANON, true, "3");
	/*
	 * A never-touched page holds a uffd-wp marker once armed; the discard
	 * of anonymous memory drops markers too (zap_pte_range), so it reads
	 * as written although it stays zero (measured on 6.18). Same for a
	 * zero-page mapping.
	 */
	tgt_cmd(_metadata, self, (struct cmd){ .op = OP_DONTNEED, .region = R_ANON, .first = 33,
		.count = 1 });
	tgt_cmd(_metadata, self, (struct cmd){ .op = OP_DONTNEED, .region = R_ANON, .first = 50,
		.count = 2 });
	EXPECT_SCAN(R_ANON, true, "33,50-51");
	EXPECT_SCAN(R_ANON, true, "");
}

/* Mapped after arming, or left out by policy: read as written, populated or not. */
TEST_F(wp, never_registered)
{
	struct proc_vma *vmas;
	struct reply rep;
	size_t n;
	bool aio = false;

	tgt_start(_metadata, self, &(struct tgt_cfg){ 0 });
	track(_metadata, self);
	rep = tgt_cmd(_metadata, self, (struct cmd){ .op = OP_MAP, .count = 8 });
	TGT_WRITE(R_EXTRA, 1, 2);
	EXPECT_SCAN_AT(self->pid, rep.addr, 8, true, "0-7");
	EXPECT_SCAN_AT(self->pid, rep.addr, 8, true, "0-7");
	/* PROT_NONE and shared file mappings are not registered (wptrack_skip). */
	EXPECT_FALSE(runs_overlap(self->armed, self->n_armed, self->lay.addr[R_NONE],
				  self->lay.addr[R_NONE] + 4 * PS));
	EXPECT_SCAN(R_NONE, true, "0-3");
	EXPECT_FALSE(runs_overlap(self->armed, self->n_armed, self->lay.addr[R_SHFILE],
				  self->lay.addr[R_SHFILE] + 4 * PS));
	EXPECT_SCAN(R_SHFILE, true, "0-3");
	/* Neither are the AIO ring and the vDSO area. */
	ASSERT_EQ(0, proc_parse_maps(self->pid, false, &vmas, &n));
	for (size_t i = 0; i < n; i++) {
		const char *p = vmas[i].path;
		int pages = (vmas[i].end - vmas[i].start) / PS;
		char want[32];

		if (strcmp(p, "/[aio] (deleted)") && strcmp(p, "[vdso]") && strcmp(p, "[vvar]") &&
		    strcmp(p, "[vvar_vclock]"))
			continue;
		TH_LOG("%s: %d pages", p, pages);
		EXPECT_FALSE(runs_overlap(self->armed, self->n_armed, vmas[i].start, vmas[i].end));
		if (!strcmp(p, "/[aio] (deleted)")) {
			aio = true;
			snprintf(want, sizeof(want), pages > 1 ? "0-%d" : "0", pages - 1);
			EXPECT_SCAN_AT(self->pid, vmas[i].start, pages, true, want);
		}
	}
	free(vmas);
	EXPECT_TRUE(aio);
	/*
	 * Registered by hand, the new mapping still reads whole until armed:
	 * a none pte without a uffd-wp marker reads as written (6.18). The
	 * harvest with rearm puts markers there too.
	 */
	ASSERT_EQ(0, dirty_register(self->uffd, rep.addr, rep.addr + 8 * PS));
	EXPECT_SCAN_AT(self->pid, rep.addr, 8, false, "0-7");
	EXPECT_SCAN_AT(self->pid, rep.addr, 8, true, "0-7");
	EXPECT_SCAN_AT(self->pid, rep.addr, 8, true, "");
	TGT_WRITE(R_EXTRA, 4);
	EXPECT_SCAN_AT(self->pid, rep.addr, 8, true, "4");
}

/* mremap without UFFD_FEATURE_EVENT_REMAP drops the tracking of what it moves. */
TEST_F(wp, mremap)
{
	struct reply rep;

	tgt_start(_metadata, self, &(struct tgt_cfg){ 0 });
	track(_metadata, self);
	rep = tgt_cmd(_metadata, self, (struct cmd){ .op = OP_MREMAP, .region = R_ANON, .first = 8,
		.count = 8 });
	EXPECT_SCAN_AT(self->pid, rep.addr, 8, true, "0-7");
	EXPECT_SCAN_AT(self->pid, rep.addr, 8, true, "0-7");
	/* The old place is unmapped (not reported), the rest still tracked. */
	EXPECT_SCAN(R_ANON, true, "");
	TGT_WRITE(R_ANON, 20);
	EXPECT_SCAN(R_ANON, true, "20");
}

/*
 * A child forked by the target has no tracking (no UFFD_FEATURE_EVENT_FORK):
 * all of it reads as written. The parent keeps its tracking.
 */
TEST_F(wp, fork)
{
	struct reply rep;

	tgt_start(_metadata, self, &(struct tgt_cfg){ 0 });
	track(_metadata, self);
	rep = tgt_cmd(_metadata, self, (struct cmd){ .op = OP_FORK, .region = R_SHARED,
		.first = 3 });
	EXPECT_SCAN_AT(rep.pid, self->lay.addr[R_ANON], 64, true, "0-63");
	EXPECT_SCAN_AT(rep.pid, self->lay.addr[R_ANON], 64, true, "0-63");
	EXPECT_SCAN_AT(rep.pid, self->lay.addr[R_FILE], 16, false, "0-15");
	EXPECT_SCAN_AT(rep.pid, self->lay.addr[R_SHARED], 16, false, "0-15");
	/*
	 * The child wrote shared page 3 through its own page tables: the
	 * parent's do not see it (measured on 6.18). Shared memory is only
	 * tracked for writes through the tracked process's mappings; the
	 * engine must count any other process mapping it, or write(2) to a
	 * memfd, as a change of its own.
	 */
	EXPECT_SCAN(R_SHARED, true, "");
	EXPECT_SCAN(R_ANON, true, "");
	/* After the fork, a write in the parent is a COW fault: still caught. */
	TGT_WRITE(R_ANON, 7, 36);
	EXPECT_SCAN(R_ANON, true, "7,36");
}

/* Nothing of ours stays in the target: same fds, no userfaultfd. */
TEST_F(wp, no_uffd_left)
{
	static char before[8192], after[8192];
	bool uffd;
	int nb, na;

	tgt_start(_metadata, self, &(struct tgt_cfg){ 0 });
	nb = fd_table(self->pid, before, sizeof(before), &uffd);
	ASSERT_LE(0, nb);
	ASSERT_FALSE(uffd);
	track(_metadata, self);
	na = fd_table(self->pid, after, sizeof(after), &uffd);
	ASSERT_EQ(nb, na);
	ASSERT_FALSE(uffd);
	ASSERT_STREQ(before, after);
	expect_unharmed(_metadata, self);
	/* Ours is close-on-exec. */
	ASSERT_EQ(FD_CLOEXEC, fcntl(self->uffd, F_GETFD) & FD_CLOEXEC);
	/* Writes after the target's copy was closed are still tracked. */
	TGT_WRITE(R_ANON, 9);
	EXPECT_SCAN(R_ANON, true, "9");
}

/* What wptrack_arm registers, and that a second tracker is refused. */
TEST_F(wp, armed_ranges)
{
	static const enum region tracked[] = { R_ANON, R_SHARED, R_FILE, R_RO };
	int uffd2;

	tgt_start(_metadata, self, &(struct tgt_cfg){ 0 });
	track(_metadata, self);
	for (size_t i = 0; i < sizeof(tracked) / sizeof(tracked[0]); i++) {
		uint64_t a = self->lay.addr[tracked[i]];

		EXPECT_TRUE(runs_cover(self->armed, self->n_armed, a,
				       a + region_pages[tracked[i]] * PS));
	}
	for (size_t i = 0; i < self->n_armed; i++) {
		ASSERT_LT(self->armed[i].start, self->armed[i].end);
		if (i)
			ASSERT_LT(self->armed[i - 1].end, self->armed[i].start);
	}
	/* The target's mappings are now registered: a second tracker must not interfere. */
	uffd2 = wptrack_open(self->pid);
	if (uffd2 >= 0)
		close(uffd2);
	ASSERT_EQ(-EBUSY, uffd2);
	expect_unharmed(_metadata, self);
}

/* A read-only private mapping is registered; after mprotect its writes are caught. */
TEST_F(wp, read_only)
{
	tgt_start(_metadata, self, &(struct tgt_cfg){ 0 });
	track(_metadata, self);
	EXPECT_TRUE(runs_cover(self->armed, self->n_armed, self->lay.addr[R_RO],
			       self->lay.addr[R_RO] + 8 * PS));
	tgt_cmd(_metadata, self, (struct cmd){ .op = OP_MPROTECT, .region = R_RO, .first = 0,
		.count = 8, .prot = PROT_READ | PROT_WRITE });
	EXPECT_SCAN(R_RO, true, "");
	TGT_WRITE(R_RO, 2, 6);
	EXPECT_SCAN(R_RO, true, "2,6");
	EXPECT_SCAN(R_RO, true, "");
}

/*
 * Shared anonymous memory (shmem): the kernel accepts async WP there (with
 * UFFD_FEATURE_WP_HUGETLBFS_SHMEM) and writes through the target's own
 * mapping are caught exactly.
 */
TEST_F(wp, shared_anon)
{
	tgt_start(_metadata, self, &(struct tgt_cfg){ 0 });
	track(_metadata, self);
	EXPECT_TRUE(runs_cover(self->armed, self->n_armed, self->lay.addr[R_SHARED],
			       self->lay.addr[R_SHARED] + 16 * PS));
	TGT_WRITE(R_SHARED, 1, 9);
	EXPECT_SCAN(R_SHARED, true, "1,9");
	EXPECT_SCAN(R_SHARED, true, "");
	/*
	 * A discard of shmem only unmaps: the data stays in the shmem file and
	 * the kernel leaves a uffd-wp marker in the pte, so it is not a change
	 * (measured on 6.18), and indeed the contents are the same.
	 */
	tgt_cmd(_metadata, self, (struct cmd){ .op = OP_DONTNEED, .region = R_SHARED, .first = 0,
		.count = 2 });
	EXPECT_SCAN(R_SHARED, true, "");
	TGT_WRITE(R_SHARED, 0);
	EXPECT_SCAN(R_SHARED, true, "0");
}

/* Private file mappings are tracked: COW of file pages and first touches. */
TEST_F(wp, private_file)
{
	tgt_start(_metadata, self, &(struct tgt_cfg){ 0 });
	track(_metadata, self);
	EXPECT_TRUE(runs_cover(self->armed, self->n_armed, self->lay.addr[R_FILE],
			       self->lay.addr[R_FILE] + 16 * PS));
	/* 0: page-cache page mapped, 4: private copy already, 9: untouched. */
	TGT_WRITE(R_FILE, 0, 4, 9);
	EXPECT_SCAN(R_FILE, true, "0,4,9");
	EXPECT_SCAN(R_FILE, true, "");
	/*
	 * A GAP: MADV_DONTNEED of a private copy in a file mapping makes the
	 * page read the file's contents again, but for a file VMA the kernel
	 * keeps a uffd-wp marker in its place (zap_install_uffd_wp_if_needed),
	 * so the change is NOT reported (measured on 6.18). The engine must
	 * take the changelog's madvise record for such a range as a change.
	 */
	tgt_cmd(_metadata, self, (struct cmd){ .op = OP_DONTNEED, .region = R_FILE, .first = 4,
		.count = 1 });
	EXPECT_SCAN(R_FILE, true, "");
}

/* A process that uses userfaultfd itself is left alone. */
TEST_F(wp, own_uffd_fd)
{
	char want[64];
	int uffd;

	tgt_start(_metadata, self, &(struct tgt_cfg){ .own = OWN_FD });
	uffd = wptrack_open(self->pid);
	if (uffd >= 0)
		close(uffd);
	ASSERT_EQ(-EBUSY, uffd);
	snprintf(want, sizeof(want), "process %d uses userfaultfd itself", self->pid);
	EXPECT_TRUE(log_contains(self->log, want));
	expect_unharmed(_metadata, self);
}

/* ... also when only its registration shows (the uffd is held elsewhere). */
TEST_F(wp, own_uffd_registered)
{
	char want[64];
	bool has;
	char fds[4096];
	int uffd;

	tgt_start(_metadata, self, &(struct tgt_cfg){ .own = OWN_REGISTERED });
	ASSERT_LE(0, fd_table(self->pid, fds, sizeof(fds), &has));
	ASSERT_FALSE(has);
	uffd = wptrack_open(self->pid);
	if (uffd >= 0)
		close(uffd);
	ASSERT_EQ(-EBUSY, uffd);
	snprintf(want, sizeof(want), "of process %d is registered", self->pid);
	EXPECT_TRUE(log_contains(self->log, want));
	expect_unharmed(_metadata, self);
}

static long elapsed_ms(const struct timespec *since)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - since->tv_sec) * 1000 + (now.tv_nsec - since->tv_nsec) / 1000000;
}

/*
 * A helper PTRACE_SEIZEs pid (which does not stop it) and holds it until *ret_hold is
 * closed; when it exits the kernel detaches pid (exit_ptrace). Meanwhile a seize by anyone
 * else fails with EPERM. Returns the helper's pid, or -errno.
 */
static pid_t tracer_start(pid_t pid, int *ret_hold)
{
	int hold[2], ready[2], err = 0;
	struct pollfd p;
	pid_t helper;
	char b = 0;

	if (pipe2(hold, O_CLOEXEC))
		return -errno;
	if (pipe2(ready, O_CLOEXEC)) {
		err = -errno;
		goto out_hold;
	}
	helper = fork();
	if (helper < 0) {
		err = -errno;
		goto out_ready;
	}
	if (helper == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(hold[1]);
		b = ptrace(PTRACE_SEIZE, pid, NULL, NULL) ? (char)errno : 0;
		(void)!write(ready[1], &b, 1);
		(void)!read(hold[0], &b, 1);
		_exit(0);
	}
	p = (struct pollfd){ .fd = ready[0], .events = POLLIN };
	if (poll(&p, 1, IO_TIMEOUT_MS) != 1 || read(ready[0], &b, 1) != 1)
		err = -ETIMEDOUT;
	else if (b)
		err = -b;
	if (err) {
		kill(helper, SIGKILL);
		waitpid(helper, NULL, 0);
	}
out_ready:
	close(ready[0]);
	close(ready[1]);
	if (!err) {
		close(hold[0]);
		*ret_hold = hold[1];
		return helper;
	}
out_hold:
	close(hold[0]);
	close(hold[1]);
	return err;
}

/*
 * A process using userfaultfd is refused before anything is done to it: with another
 * tracer attached, a seize would fail with EPERM first.
 */
static void own_uffd_unseized(struct th_meta *_metadata, FIXTURE_DATA(wp) *self,
			      enum own_uffd own)
{
	struct timespec t0;
	char v[64], tracer[16];
	pid_t helper;
	int hold = -1, uffd, status;

	tgt_start(_metadata, self, &(struct tgt_cfg){ .own = own });
	helper = tracer_start(self->pid, &hold);
	ASSERT_LT(0, helper);
	snprintf(tracer, sizeof(tracer), "%d", helper);
	status_field(self->pid, "TracerPid", v, sizeof(v));
	ASSERT_STREQ(tracer, v);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	uffd = wptrack_open(self->pid);
	if (uffd >= 0)
		close(uffd);
	EXPECT_GT(1000, elapsed_ms(&t0));
	EXPECT_EQ(-EBUSY, uffd);
	EXPECT_FALSE(log_contains(self->log, "cannot seize"));
	status_field(self->pid, "TracerPid", v, sizeof(v));
	EXPECT_STREQ(tracer, v);

	close(hold);
	ASSERT_EQ(helper, waitpid(helper, &status, 0));
	ASSERT_EQ(0, status);
	expect_unharmed(_metadata, self);
}

TEST_F(wp, own_uffd_fd_unseized)
{
	own_uffd_unseized(_metadata, self, OWN_FD);
}

TEST_F(wp, own_uffd_registered_unseized)
{
	own_uffd_unseized(_metadata, self, OWN_REGISTERED);
}

/* The first thread of pid in uninterruptible sleep ('D'), or 0. */
static pid_t thread_in_d(pid_t pid)
{
	char path[64];
	struct dirent *de;
	pid_t found = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	d = opendir(path);
	while (d && !found && (de = readdir(d))) {
		struct proc_stat st;
		pid_t tid = atoi(de->d_name);

		if (tid > 0 && !proc_parse_stat(tid, &st) && st.state == 'D')
			found = tid;
	}
	if (d)
		closedir(d);
	return found;
}

/*
 * A target whose thread (the main one, or another) is a vfork parent waiting for its
 * child: refused at once with -EAGAIN, never traced, and trackable once the child is gone.
 */
static void vfork_refused(struct th_meta *_metadata, FIXTURE_DATA(wp) *self, bool in_thread)
{
	struct cmd c = { .op = OP_VFORK, .first = in_thread };
	struct reply child, rep;
	struct timespec t0;
	char want[128], v[64];
	pid_t blocked = 0;
	long deadline;
	int err;

	tgt_start(_metadata, self, &(struct tgt_cfg){ 0 });
	ASSERT_EQ(sizeof(c), send(self->sk, &c, sizeof(c), 0));
	ASSERT_EQ(0, recv_timeout(self->sk, &child, sizeof(child)));
	ASSERT_EQ(1, child.err);
	/*
	 * The parent goes to sleep in wait_for_vfork_done() about when the child runs; nothing
	 * signals that it did, hence the bounded look.
	 */
	deadline = time(NULL) + 5;
	while (!(blocked = thread_in_d(self->pid)) && time(NULL) <= deadline)
		(void)poll(NULL, 0, 1);
	ASSERT_LT(0, blocked);
	if (in_thread)
		ASSERT_NE(self->pid, blocked);
	else
		ASSERT_EQ(self->pid, blocked);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	err = wptrack_open(self->pid);
	if (err >= 0)
		close(err);
	/* A seize would have waited 10 s for the stop (infect.c's WAIT_MS). */
	EXPECT_GT(1000, elapsed_ms(&t0));
	ASSERT_EQ(-EAGAIN, err);
	snprintf(want, sizeof(want), "thread %d is in uninterruptible sleep (vfork or I/O); "
		 "try again later", blocked);
	EXPECT_TRUE(log_contains(self->log, want));
	EXPECT_FALSE(log_contains(self->log, "cannot seize"));
	status_field(self->pid, "TracerPid", v, sizeof(v));
	ASSERT_STREQ("0", v);
	EXPECT_EQ(blocked, thread_in_d(self->pid));

	/* Any message lets the child exit (it takes it); then the target answers OP_VFORK. */
	c = (struct cmd){ .op = OP_PING };
	ASSERT_EQ(sizeof(c), send(self->sk, &c, sizeof(c), 0));
	ASSERT_EQ(0, recv_timeout(self->sk, &rep, sizeof(rep)));
	ASSERT_EQ(0, rep.err);
	EXPECT_EQ(0, thread_in_d(self->pid));
	expect_unharmed(_metadata, self);
	track(_metadata, self);
	TGT_WRITE(R_ANON, 6, 50);
	EXPECT_SCAN(R_ANON, true, "6,50");
	expect_unharmed(_metadata, self);
}

TEST_F(wp, vfork_blocked)
{
	vfork_refused(_metadata, self, false);
}

TEST_F(wp, vfork_blocked_thread)
{
	vfork_refused(_metadata, self, true);
}

/* A failure after the seize leaves the target as it was. */
TEST_F(wp, fault_seize)
{
	static char before[8192], after[8192];
	bool uffd;
	int err;

	tgt_start(_metadata, self, &(struct tgt_cfg){ 0 });
	ASSERT_LE(0, fd_table(self->pid, before, sizeof(before), &uffd));
	setenv("CKPT_FAULT", "seize", 1);
	err = wptrack_open(self->pid);
	unsetenv("CKPT_FAULT");
	if (err >= 0)
		close(err);
	ASSERT_GT(0, err);
	ASSERT_LE(0, fd_table(self->pid, after, sizeof(after), &uffd));
	ASSERT_STREQ(before, after);
	expect_unharmed(_metadata, self);
}

/* Threads keep running and writing while the leader is seized. */
TEST_F(wp, threads)
{
	char v[64];

	tgt_start(_metadata, self, &(struct tgt_cfg){ .threads = true });
	track(_metadata, self);
	status_field(self->pid, "Threads", v, sizeof(v));
	ASSERT_STREQ("5", v);
	expect_unharmed(_metadata, self);
	/* Each thread writes its page once more after the stop request. */
	tgt_cmd(_metadata, self, (struct cmd){ .op = OP_THREADS_STOP });
	EXPECT_SCAN(R_HOT, true, "0,2,4,6");
	EXPECT_SCAN(R_HOT, true, "");
	TGT_WRITE(R_ANON, 12);
	EXPECT_SCAN(R_ANON, true, "12");
}

/* A stopped target stays stopped; tracking works on it and after SIGCONT. */
TEST_F(wp, stopped)
{
	long deadline;
	char v[64];
	int status;

	tgt_start(_metadata, self, &(struct tgt_cfg){ 0 });
	ASSERT_EQ(0, kill(self->pid, SIGSTOP));
	ASSERT_EQ(self->pid, waitpid(self->pid, &status, WUNTRACED));
	ASSERT_TRUE(WIFSTOPPED(status));
	track(_metadata, self);
	/*
	 * On detach the kernel puts the task back into its group stop
	 * (__ptrace_unlink re-arms JOBCTL_STOP_PENDING and wakes it), so it
	 * may be seen running for a moment; nothing signals its return to
	 * 'T', hence the bounded look.
	 */
	deadline = time(NULL) + 5;
	for (;;) {
		status_field(self->pid, "State", v, sizeof(v));
		if (v[0] == 'T' || time(NULL) > deadline)
			break;
		(void)poll(NULL, 0, 1);
	}
	ASSERT_EQ('T', v[0]);
	status_field(self->pid, "TracerPid", v, sizeof(v));
	ASSERT_STREQ("0", v);
	EXPECT_SCAN(R_ANON, true, "");
	ASSERT_EQ(0, kill(self->pid, SIGCONT));
	TGT_WRITE(R_ANON, 60);
	EXPECT_SCAN(R_ANON, true, "60");
	expect_unharmed(_metadata, self);
}

/*
 * A target without CAP_SYS_PTRACE cannot create a uffd for kernel faults
 * (vm.unprivileged_userfaultfd = 0): the uffd is made with
 * UFFD_USER_MODE_ONLY, and async WP still catches kernel writes.
 */
TEST_F(wp, unprivileged)
{
	tgt_start(_metadata, self, &(struct tgt_cfg){ .unpriv = true });
	if (self->lay.plain_uffd_errno != EPERM)
		SKIP(return, "an unprivileged userfaultfd() gives %s here, not EPERM: "
		     "no USER_MODE_ONLY fallback to test", strerror(self->lay.plain_uffd_errno));
	track(_metadata, self);
	EXPECT_TRUE(log_contains(self->log, "retrying with UFFD_USER_MODE_ONLY"));
	tgt_cmd(_metadata, self, (struct cmd){ .op = OP_READ_INTO, .region = R_ANON, .first = 5,
		.len = 64 });
	tgt_cmd(_metadata, self, (struct cmd){ .op = OP_READ_INTO, .region = R_ANON, .first = 40,
		.len = PS });
	TGT_WRITE(R_ANON, 7);
	EXPECT_SCAN(R_ANON, true, "5,7,40");
	EXPECT_SCAN(R_ANON, true, "");
	expect_unharmed(_metadata, self);
}

/*
 * Transparent huge pages: a write to an armed THP splits the PMD and only
 * the page written is reported; a discard of a whole THP reports all of it
 * (KERNEL-NOTES: older kernels lost this one; 6.18 reports it).
 */
TEST_F(wp, thp)
{
	struct page_region vec[8];
	struct pm_scan_arg arg = { .size = sizeof(arg), .vec_len = 8,
		.category_mask = PAGE_IS_HUGE, .return_mask = PAGE_IS_HUGE };
	char path[64];
	uint64_t base;
	long n;
	int fd;

	tgt_start(_metadata, self, &(struct tgt_cfg){ .thp = true });
	base = self->lay.addr[R_THP];
	snprintf(path, sizeof(path), "/proc/%d/pagemap", self->pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	ASSERT_LE(0, fd);
	arg.start = base;
	arg.end = base + (4 << 20);
	arg.vec = (uintptr_t)vec;
	n = ioctl(fd, PAGEMAP_SCAN, &arg);
	close(fd);
	ASSERT_LE(0, n);
	if (n != 1 || vec[0].start != base || vec[0].end != base + (4 << 20))
		SKIP(return, "the target got no transparent huge pages");
	track(_metadata, self);
	TGT_WRITE(R_THP, 5);
	EXPECT_SCAN(R_THP, true, "5");
	tgt_cmd(_metadata, self, (struct cmd){ .op = OP_DONTNEED, .region = R_THP, .first = 512,
		.count = 512 });
	EXPECT_SCAN(R_THP, true, "512-1023");
	EXPECT_SCAN(R_THP, true, "");
}

TEST_HARNESS_MAIN
