// SPDX-License-Identifier: MIT
/*
 * bpf_test: the BPF tracker (bpf/track.bpf.c) through its loader (user/trackd/track.h), without
 * the trackd daemon. A victim is forked first (so it holds no BPF fd), blocks on a pipe while
 * the test loads the tracker, adds the victim and attaches, then runs a known sequence; the
 * test waits for it (and for everything it started) to exit and drains the ring. Records are
 * then matched one for one, per thread in order, with every field; nothing else may arrive.
 *
 *   sequence              fork of three grandchildren (exit codes 11, 12, 13), one of which
 *                         setpgid()s itself and one of which runs a thread that mmaps a page;
 *                         setsid; anonymous and file mmap (dev/ino/pgoff as fstat says);
 *                         munmap; a moving mremap; mprotect; pkey_mprotect; brk growth and
 *                         shrink; madvise DONTNEED (WILLNEED is not logged); shmat/shmdt and
 *                         io_setup/io_destroy (length and file as /proc/self/maps says); failing
 *                         setpgid, munmap, mmap and mprotect (nothing logged); execve of
 *                         /bin/true (then the loader's mappings, one of them libc). Afterwards
 *                         no tgid of the tree is tracked, the counters say exactly what arrived,
 *                         nothing was dropped.
 *   failed_calls          a tracked process whose calls of every tracked syscall all fail:
 *                         only its exit is logged.
 *   untracked             an untracked process runs the whole sequence, then a tracked one
 *                         forks, mmaps, munmaps, setsid()s: only the tracked tree appears.
 *   child_pidns           the victim is PID 1 of a new PID namespace and forks a child there:
 *                         both are reported with their PIDs in the test's namespace; the child
 *                         is tracked while it lives and not after.
 *   thread_exec           a non-leader thread execs: the old leader's exit (not group-dead, exit
 *                         code 0), then the exec with the thread's old TID; a child in a new PID
 *                         namespace is reported with its outer PID.
 *   thread_exec_nested    the same with the tracker itself PID 1 of a new PID namespace (level 1,
 *                         numbers read from struct pid instead of the current-task fast path).
 *   thread_exec_container the same again in a mount namespace with a /proc of the new PID
 *                         namespace: user space cannot tell the level, the tracker finds it.
 *   tracked_full          `tracked` holds one entry: a fork is logged with arg1 1 (not
 *                         followed), the insert failure is counted, the child is not followed.
 *   overflow              a 4096-byte ring and nobody reading: a burst of mmap/munmap drops
 *                         records; sent + dropped is exactly what was done, the victim is named
 *                         in `lost` once, and the ring holds what was counted as sent.
 *   overflow_lost_full    the same with room for one tgid in `lost`: a second victim's drops are
 *                         all counted as unnamed.
 *   poll_stop             a callback's nonzero return stops track_poll() and is returned; the
 *                         next poll delivers the rest, none twice.
 *   madvise_guard         MADV_GUARD_INSTALL (which discards the range's pages) and
 *                         MADV_GUARD_REMOVE are logged, MADV_COLD is not; skipped only when
 *                         the kernel refuses GUARD_INSTALL with EINVAL (before 6.13).
 *   add_del               track_add/del/has on the map, bad arguments.
 *   tracefs_private       in a mount namespace without tracefs on /sys/kernel/tracing, the
 *                         tracker still attaches the syscall tracepoints and records arrive;
 *                         no tracefs mount and no temporary directory is left.
 *   close_leaves_nothing  after track_close() none of the tracker's programs, links or maps
 *                         exists, and the process has exactly the fds it had before.
 *   detach                track_detach() while a tracked process waits between two series of
 *                         calls: no link or perf event is left, a second call is a no-op; the
 *                         process then maps, unmaps, forks and exits unseen, while the records
 *                         of the first series, sent before and never polled, are all delivered;
 *                         `tracked` is frozen (track_list still names the exited process).
 *   list                  track_list follows track_add/del, a fork (the child is listed while
 *                         it lives) and the exits (nothing is left); a thousand added tgids come
 *                         back sorted.
 *
 * Every wait is bounded (WAIT_MS on a pidfd, then the victim is killed); no sleeps.
 */
#define LOG_PREFIX "bpf_test: "
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/aio_abi.h>
#include <linux/capability.h>
#include <linux/membarrier.h>

#include <bpf/bpf.h>

#include "harness.h"
#include "log.h"
#include "proc.h"
#include "track.h"

#define WAIT_MS		10000		/* for any process of a test to exit */
#define MAX_RECORDS	8192
#define BURST		200		/* mmap + munmap pairs of an overflow victim */
#define TRUE_PATH	"/bin/true"
#define LIBC_PATH	"/lib/x86_64-linux-gnu/libc.so.6"
#define PIDFD_THREAD_FLAG	O_EXCL	/* PIDFD_THREAD (6.9): a pidfd for one thread */
/* Guard regions (6.13), include/uapi/asm-generic/mman-common.h; not in every libc yet. */
#define GUARD_INSTALL	102
#define GUARD_REMOVE	103
#define THREAD_FLAGS	(CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | \
			 CLONE_SYSVSEM | CLONE_PARENT_SETTID)
#define MEM_KINDS	(1U << TRACK_MMAP | 1U << TRACK_MUNMAP | 1U << TRACK_MPROTECT | \
			 1U << TRACK_BRK | 1U << TRACK_MADVISE)

/* What victims tell the test: set up in a shared mapping before the first fork. */
struct shared {
	int fail_line, fail_errno;	/* the first victim step that went wrong */
	pid_t g[3];			/* grandchildren */
	pid_t t;			/* the thread (CLONE_PARENT_SETTID) */
	pid_t w;			/* a child in a nested PID namespace */
	int pkey, shmid;
	int guard_errno;		/* of a MADV_GUARD_INSTALL that failed */
	uint64_t anon, file_map, reserve, moved, shm, aio, thread_map, w_map;
	uint64_t brk_cur, brk_new;
	size_t maps_len, status_len;
	char maps[1 << 16];		/* /proc/self/maps with the shm and AIO ring mapped */
	char status[4096];		/* /proc/self/status of a child in a nested namespace */
};

static struct shared *sh;
static long pg;
static int file_fd = -1;		/* 4 pages, mapped by the sequence */
static char thread_stack[1 << 16] __attribute__((aligned(16)));
static int hold_fd[2] = { -1, -1 }, ready_fd[2] = { -1, -1 };

/* A victim step failed: note where, and exit with 100 (nothing else is logged in a victim). */
#define V_CHECK(cond)									\
	do {										\
		if (!(cond)) {								\
			if (!sh->fail_line) {						\
				sh->fail_errno = errno;					\
				sh->fail_line = __LINE__;				\
			}								\
			_exit(100);							\
		}									\
	} while (0)

struct rec_log {
	int n;
	struct track_event ev[MAX_RECORDS];
	size_t len[MAX_RECORDS];
};

static int rec_collect(void *data, const struct track_event *e, size_t len)
{
	struct rec_log *log = data;

	if (log->n == MAX_RECORDS)
		return -ENOSPC;
	memset(&log->ev[log->n], 0, sizeof(log->ev[0]));
	memcpy(&log->ev[log->n], e, len < sizeof(*e) ? len : sizeof(*e));
	log->len[log->n++] = len;
	return 0;
}

FIXTURE(track) {
	struct track *t;
	struct rec_log *log;
	pid_t victims[4];
	int nr_victims;
	char file_path[PATH_MAX];
	char tmp_dir[PATH_MAX + 8];	/* a TMPDIR of tracefs_private's, removed if left */
};

static bool have_cap(int cap)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2] = { 0 };

	if (syscall(SYS_capget, &h, d))
		return false;
	return d[cap / 32].effective & (1U << (cap % 32));
}

FIXTURE_SETUP(track)
{
	const char *tmp = getenv("TMPDIR");

	/* BPF tracing programs, namespaces, mounts: all of it needs CAP_SYS_ADMIN. */
	if (!have_cap(CAP_SYS_ADMIN))
		SKIP(return, "needs CAP_SYS_ADMIN");
	pg = sysconf(_SC_PAGESIZE);
	log_init(NULL, LOG_WARN);
	self->log = calloc(1, sizeof(*self->log));
	ASSERT_NE(NULL, self->log);
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, sh);
	snprintf(self->file_path, sizeof(self->file_path), "%s/bpf_test.XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	file_fd = mkstemp(self->file_path);
	ASSERT_LE(0, file_fd);
	ASSERT_EQ(0, ftruncate(file_fd, 4 * pg));
}

FIXTURE_TEARDOWN(track)
{
	for (int i = 0; i < self->nr_victims; i++) {
		if (self->victims[i] > 0) {
			kill(self->victims[i], SIGKILL);
			waitpid(self->victims[i], NULL, 0);
		}
	}
	track_close(self->t);
	self->t = NULL;
	if (file_fd >= 0) {
		close(file_fd);
		unlink(self->file_path);
	}
	if (self->tmp_dir[0])
		(void)rmdir(self->tmp_dir);
	free(self->log);
}

/* Waits up to WAIT_MS for pid (a child) to exit; its wait status, or -1 after killing it. */
static int wait_exit(pid_t pid)
{
	struct pollfd p = { .events = POLLIN };
	int status;

	p.fd = syscall(SYS_pidfd_open, pid, 0);
	if (p.fd < 0 || poll(&p, 1, WAIT_MS) != 1)
		kill(pid, SIGKILL);
	if (p.fd >= 0)
		close(p.fd);
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return status;
}

/*
 * Starts fn in a child (clone with extra_flags | SIGCHLD) that waits for a byte on a pipe
 * first; *ret_go is the pipe's write end. Children die with the test.
 */
static pid_t victim_start(void (*fn)(void), unsigned long extra_flags, int *ret_go)
{
	int p[2];
	pid_t pid;
	char b;

	if (pipe2(p, O_CLOEXEC))
		return -1;
	pid = syscall(SYS_clone, extra_flags | SIGCHLD, 0, NULL, NULL, 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(p[1]);
		if (read(p[0], &b, 1) != 1)
			_exit(101);
		close(p[0]);
		fn();
		_exit(0);
	}
	close(p[0]);
	if (pid < 0) {
		close(p[1]);
		return -1;
	}
	*ret_go = p[1];
	return pid;
}

static void fixture_victim(FIXTURE_DATA(track) *self, pid_t pid)
{
	self->victims[self->nr_victims++] = pid;
}

/* The victim has exited: it is no longer teardown's to kill. */
static void fixture_reaped(FIXTURE_DATA(track) *self, pid_t pid)
{
	for (int i = 0; i < self->nr_victims; i++)
		if (self->victims[i] == pid)
			self->victims[i] = 0;
}

/*
 * Opens the tracker into self->t. Privilege is checked by the fixture (a
 * named skip); with it, failing to load is a failure: BPF is required here.
 */
static bool open_tracker(struct th_meta *_metadata, FIXTURE_DATA(track) *self,
			 const struct track_opts *opts)
{
	self->t = track_open(opts, rec_collect, self->log);
	if (!self->t)
		TH_LOG("cannot load the tracker: %s", strerror(errno));
	ASSERT_NE(NULL, self->t);
	return true;
}

static void go(struct th_meta *_metadata, int fd)
{
	ASSERT_EQ(1, write(fd, "g", 1));
	close(fd);
}

/* Waits for the victim to exit; checks its status (and reports a failed victim step). */
static void victim_done(struct th_meta *_metadata, FIXTURE_DATA(track) *self, pid_t pid,
			int want_status)
{
	int status = wait_exit(pid);

	fixture_reaped(self, pid);
	if (sh->fail_line)
		TH_LOG("victim step at line %d failed: %s", sh->fail_line,
		       strerror(sh->fail_errno));
	ASSERT_EQ(want_status, status);
}

/* /bin/true is a required tool on this machine: its absence fails the test. */
static void need_true(struct th_meta *_metadata)
{
	int ret = access(TRUE_PATH, X_OK);

	if (ret)
		TH_LOG("no %s (a required tool): %s", TRUE_PATH, strerror(errno));
	ASSERT_EQ(0, ret);
}

/* Starts fn as a victim (see victim_start) that the teardown kills if it is left. */
static pid_t victim_add(struct th_meta *_metadata, FIXTURE_DATA(track) *self, void (*fn)(void),
			unsigned long extra_flags, int *ret_go)
{
	pid_t pid = victim_start(fn, extra_flags, ret_go);

	ASSERT_LT(0, pid);
	fixture_victim(self, pid);
	return pid;
}

/* Tracks pid, attaches the tracker and lets the victim go (fd from victim_start). */
static void track_go(struct th_meta *_metadata, FIXTURE_DATA(track) *self, pid_t pid, int fd)
{
	ASSERT_EQ(0, track_add(self->t, pid));
	ASSERT_EQ(0, track_attach(self->t));
	go(_metadata, fd);
}

/*
 * Starts fn as a tracked victim of a fresh tracker (default options), lets it run and waits
 * for it to exit with want_status (victim_done). The ring is not read yet.
 */
static pid_t run_tracked(struct th_meta *_metadata, FIXTURE_DATA(track) *self, void (*fn)(void),
			 int want_status)
{
	int fd;
	pid_t pid = victim_add(_metadata, self, fn, 0, &fd);

	if (open_tracker(_metadata, self, NULL))
		track_go(_metadata, self, pid, fd);
	victim_done(_metadata, self, pid, want_status);
	return pid;
}

/* Waits for the victim (victim_done), then drains the ring into self->log. */
static void done_poll(struct th_meta *_metadata, FIXTURE_DATA(track) *self, pid_t pid,
		      int want_status)
{
	victim_done(_metadata, self, pid, want_status);
	ASSERT_LE(0, track_poll(self->t, 0));
}

/* Both pipes of a victim that says ready (ready_fd) and waits (hold_fd). */
static void hold_pipes(struct th_meta *_metadata)
{
	ASSERT_EQ(0, pipe2(hold_fd, O_CLOEXEC));
	ASSERT_EQ(0, pipe2(ready_fd, O_CLOEXEC));
}

/* Waits up to WAIT_MS for the victim's byte on ready_fd. */
static void wait_ready(struct th_meta *_metadata)
{
	struct pollfd p = { .fd = ready_fd[0], .events = POLLIN };
	char b;

	ASSERT_EQ(1, poll(&p, 1, WAIT_MS));
	ASSERT_EQ(1, read(ready_fd[0], &b, 1));
}

static const char *kind_name(unsigned kind)
{
	static const char *names[] = {
		[TRACK_FORK] = "fork", [TRACK_EXIT] = "exit", [TRACK_EXEC] = "exec",
		[TRACK_MMAP] = "mmap", [TRACK_MUNMAP] = "munmap", [TRACK_MREMAP] = "mremap",
		[TRACK_MPROTECT] = "mprotect", [TRACK_BRK] = "brk", [TRACK_MADVISE] = "madvise",
		[TRACK_SHMAT] = "shmat", [TRACK_SHMDT] = "shmdt", [TRACK_IO_SETUP] = "io_setup",
		[TRACK_IO_DESTROY] = "io_destroy", [TRACK_SETSID] = "setsid",
		[TRACK_SETPGID] = "setpgid",
	};

	return kind < TRACK_NR_KINDS && names[kind] ? names[kind] : "?";
}

static char *ev_str(const struct track_event *e, char *buf, size_t size)
{
	snprintf(buf, size, "%s pid %d tgid %d ppid %d start %#llx len %#llx prot %#llx "
		 "flags %#llx old %#llx+%#llx dev %#llx ino %llu pgoff %llu arg0 %lld arg1 %lld"
		 "%s%.64s",
		 kind_name(e->kind), e->pid, e->tgid, e->ppid, (unsigned long long)e->start,
		 (unsigned long long)e->len, (unsigned long long)e->prot,
		 (unsigned long long)e->flags, (unsigned long long)e->old_start,
		 (unsigned long long)e->old_len, (unsigned long long)e->dev,
		 (unsigned long long)e->ino, (unsigned long long)e->pgoff, (long long)e->arg0,
		 (long long)e->arg1, e->kind == TRACK_EXEC ? " path " : "",
		 e->kind == TRACK_EXEC ? e->path : "");
	return buf;
}

/* An expected record; mem_any: any number (even 0) of memory records of pid, remembered. */
struct exp {
	struct track_event e;
	bool mem_any;
};

struct expect {
	int n;
	struct exp x[64];
	int any_first, any_n;		/* where the records of the last mem_any went */
};

static struct track_event *exp_add(struct expect *x, unsigned kind, pid_t pid, pid_t tgid,
				   pid_t ppid)
{
	struct exp *p = &x->x[x->n++];

	assert(x->n <= 64);
	memset(p, 0, sizeof(*p));
	p->e.kind = kind;
	p->e.pid = pid;
	p->e.tgid = tgid;
	p->e.ppid = ppid;
	return &p->e;
}

static void exp_mem_any(struct expect *x, pid_t pid)
{
	exp_add(x, 0, pid, 0, 0);
	x->x[x->n - 1].mem_any = true;
}

/* An expected record of kind over [start, start + len). */
static struct track_event *exp_range(struct expect *x, unsigned kind, pid_t pid, pid_t tgid,
				     pid_t ppid, uint64_t start, uint64_t len)
{
	struct track_event *e = exp_add(x, kind, pid, tgid, ppid);

	e->start = start;
	e->len = len;
	return e;
}

/* An expected mmap of [start, start + len) with prot and flags. */
static struct track_event *exp_mmap(struct expect *x, pid_t pid, pid_t tgid, pid_t ppid,
				    uint64_t start, uint64_t len, int prot, int flags)
{
	struct track_event *e = exp_range(x, TRACK_MMAP, pid, tgid, ppid, start, len);

	e->prot = prot;
	e->flags = flags;
	return e;
}

/* An expected exit with its wait status; last: the thread group died with it. */
static void exp_exit(struct expect *x, pid_t pid, pid_t tgid, pid_t ppid, int status, bool last)
{
	struct track_event *e = exp_add(x, TRACK_EXIT, pid, tgid, ppid);

	e->arg0 = status;
	e->arg1 = last;
}

/* victim_small's own records: a page mapped and unmapped, setsid, exit 6 (me: its parent). */
static void exp_small(struct expect *x, pid_t c, pid_t me)
{
	exp_mmap(x, c, c, me, sh->anon, pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS);
	exp_range(x, TRACK_MUNMAP, c, c, me, sh->anon, pg);
	exp_add(x, TRACK_SETSID, c, c, me)->arg0 = c;
	exp_exit(x, c, c, me, 6 << 8, true);
}

/* victim_small's child: forked by c, exit 5. */
static void exp_small_child(struct expect *x, pid_t c)
{
	exp_add(x, TRACK_FORK, sh->g[0], sh->g[0], c)->arg0 = c;
	exp_exit(x, sh->g[0], sh->g[0], c, 5 << 8, true);
}

static bool ev_equal(const struct track_event *a, const struct track_event *b)
{
	return a->kind == b->kind && a->pid == b->pid && a->tgid == b->tgid && a->ppid == b->ppid &&
	       a->start == b->start && a->len == b->len && a->prot == b->prot &&
	       a->flags == b->flags && a->old_start == b->old_start && a->old_len == b->old_len &&
	       a->dev == b->dev && a->ino == b->ino && a->pgoff == b->pgoff &&
	       a->arg0 == b->arg0 && a->arg1 == b->arg1 &&
	       (a->kind != TRACK_EXEC || !strcmp(a->path, b->path));
}

/*
 * Matches the log against x: for each pid, its records in ring order are exactly its expected
 * ones in order (every field, the record's length, time never going back); no other record.
 */
static void expect_log(struct th_meta *_metadata, const struct rec_log *log, struct expect *x)
{
	pid_t pids[64];
	int cursor[64], nr_pids = 0, used = 0;
	char a[512], b[512];

	for (int i = 0; i < x->n; i++) {
		const struct track_event *want = &x->x[i].e;
		int k, j;

		for (k = 0; k < nr_pids && pids[k] != want->pid; k++)
			;
		if (k == nr_pids) {
			pids[nr_pids] = want->pid;
			cursor[nr_pids++] = -1;
		}
		for (j = cursor[k] + 1; j < log->n && log->ev[j].pid != want->pid; j++)
			;
		if (x->x[i].mem_any) {
			x->any_first = j;
			x->any_n = 0;
			while (j < log->n && log->ev[j].pid == want->pid &&
			       (MEM_KINDS >> log->ev[j].kind & 1)) {
				x->any_n++;
				used++;
				cursor[k] = j;
				for (j++; j < log->n && log->ev[j].pid != want->pid; j++)
					;
			}
			continue;
		}
		if (j == log->n) {
			TH_LOG("missing record %d: %s", i, ev_str(want, a, sizeof(a)));
			EXPECT_TRUE(false);
			continue;
		}
		if (cursor[k] >= 0 && log->ev[j].ts < log->ev[cursor[k]].ts) {
			TH_LOG("record %d of pid %d goes back in time", j, want->pid);
			EXPECT_TRUE(false);
		}
		cursor[k] = j;
		used++;
		EXPECT_EQ(want->kind == TRACK_EXEC ? sizeof(*want) : TRACK_EVENT_SIZE_NOPATH,
			  log->len[j]);
		if (!ev_equal(want, &log->ev[j])) {
			TH_LOG("record %d: want %s", j, ev_str(want, a, sizeof(a)));
			TH_LOG("record %d: got  %s", j, ev_str(&log->ev[j], b, sizeof(b)));
			EXPECT_TRUE(false);
		}
	}
	if (used != log->n) {
		TH_LOG("%d records, %d expected; the first unexpected ones:", log->n, used);
		for (int j = 0, shown = 0; j < log->n && shown < 8; j++) {
			bool matched = false;

			for (int k = 0; k < nr_pids; k++)
				matched |= pids[k] == log->ev[j].pid && j <= cursor[k];
			if (!matched) {
				TH_LOG("  %d: %s", j, ev_str(&log->ev[j], a, sizeof(a)));
				shown++;
			}
		}
	}
	EXPECT_EQ(used, log->n);
}

static void expect_stats(struct th_meta *_metadata, struct track *t, uint64_t events,
			 uint64_t drops, uint64_t tracked_full, uint64_t lost_unnamed)
{
	struct track_stats st;

	ASSERT_EQ(0, track_stats(t, &st));
	EXPECT_EQ(events, st.events);
	EXPECT_EQ(drops, st.drops);
	EXPECT_EQ(tracked_full, st.tracked_full);
	EXPECT_EQ(lost_unnamed, st.lost_unnamed);
}

/* The line of /proc/PID/maps text starting at addr: its end, st_dev and inode. */
static bool maps_find(const char *maps, uint64_t addr, uint64_t *ret_end, uint64_t *ret_dev,
		      uint64_t *ret_ino)
{
	for (const char *l = maps; *l; ) {
		unsigned long long s, e, off, ino;
		unsigned maj, min;

		if (sscanf(l, "%llx-%llx %*s %llx %x:%x %llu", &s, &e, &off, &maj, &min,
			   &ino) == 6 && s == addr) {
			*ret_end = e;
			*ret_dev = makedev(maj, min);
			*ret_ino = ino;
			return true;
		}
		l += strcspn(l, "\n");
		l += *l == '\n';
	}
	return false;
}

static void copy_file(const char *path, char *buf, size_t size, size_t *ret_len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t len = 0;
	ssize_t n;

	V_CHECK(fd >= 0);
	while (len < size - 1 && (n = read(fd, buf + len, size - 1 - len)) > 0)
		len += n;
	buf[len] = 0;
	close(fd);
	*ret_len = len;
}

/* The sequence victim and its descendants. */

static int thread_mmap(void *arg)
{
	sh->thread_map = syscall(SYS_mmap, NULL, pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return 0;
}

/* Starts thread_mmap in a thread and waits until the thread is gone. */
static void run_thread(void)
{
	struct pollfd p = { .events = POLLIN };
	pid_t tid;

	tid = clone(thread_mmap, thread_stack + sizeof(thread_stack), THREAD_FLAGS, NULL, &sh->t);
	V_CHECK(tid > 0 && tid == sh->t);
	p.fd = syscall(SYS_pidfd_open, tid, PIDFD_THREAD_FLAG);
	V_CHECK(p.fd >= 0);
	V_CHECK(poll(&p, 1, WAIT_MS) == 1);
	close(p.fd);
}

static void grandchild(int i)
{
	if (i == 0)
		V_CHECK(setpgid(0, 0) == 0);
	if (i == 1)
		run_thread();
	_exit(11 + i);
}

static void victim_sequence(void)
{
	static char *argv[] = { "true", NULL }, *envp[] = { NULL };
	aio_context_t ctx = 0;
	int status;

	V_CHECK(setsid() == getpid());
	V_CHECK(setpgid(0, 0) < 0);			/* a session leader: EPERM */
	for (int i = 0; i < 3; i++) {
		pid_t pid = syscall(SYS_clone, SIGCHLD, 0, NULL, NULL, 0);

		V_CHECK(pid >= 0);
		if (pid == 0)
			grandchild(i);
		sh->g[i] = pid;
	}
	for (int i = 0; i < 3; i++) {
		V_CHECK(waitpid(sh->g[i], &status, 0) == sh->g[i]);
		V_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 11 + i);
	}

	sh->anon = (uint64_t)mmap(NULL, 4 * pg, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	V_CHECK(sh->anon != (uint64_t)MAP_FAILED);
	sh->file_map = (uint64_t)mmap(NULL, 2 * pg, PROT_READ, MAP_SHARED, file_fd, pg);
	V_CHECK(sh->file_map != (uint64_t)MAP_FAILED);
	V_CHECK(munmap((void *)(sh->anon + 3 * pg), pg) == 0);
	V_CHECK(munmap((void *)(sh->anon + 1), pg) < 0);		/* unaligned */
	V_CHECK(mmap(NULL, pg, PROT_READ, MAP_ANONYMOUS, -1, 0) == MAP_FAILED);	/* no type */
	V_CHECK(mprotect((void *)(sh->anon + 1), pg, PROT_READ) < 0);
	sh->reserve = (uint64_t)mmap(NULL, 4 * pg, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	V_CHECK(sh->reserve != (uint64_t)MAP_FAILED);
	sh->moved = (uint64_t)mremap((void *)sh->file_map, 2 * pg, 2 * pg,
				     MREMAP_MAYMOVE | MREMAP_FIXED, (void *)(sh->reserve + pg));
	V_CHECK(sh->moved == sh->reserve + pg);
	V_CHECK(mprotect((void *)sh->anon, pg, PROT_READ) == 0);
	sh->pkey = syscall(SYS_pkey_alloc, 0, 0);
	if (sh->pkey < 0)
		sh->pkey = -1;	/* no protection keys: pkey_mprotect with -1 is mprotect */
	V_CHECK(syscall(SYS_pkey_mprotect, sh->anon + pg, pg, PROT_READ | PROT_WRITE,
			sh->pkey) == 0);
	if (sh->pkey >= 0)
		V_CHECK(syscall(SYS_pkey_free, sh->pkey) == 0);

	/* Raw brk: glibc's sbrk() may ask brk(0) first, which is not a change. */
	sh->brk_cur = syscall(SYS_brk, 0);
	sh->brk_new = sh->brk_cur + 3 * pg + 100;
	V_CHECK((uint64_t)syscall(SYS_brk, sh->brk_new) == sh->brk_new);
	V_CHECK((uint64_t)syscall(SYS_brk, sh->brk_cur) == sh->brk_cur);

	V_CHECK(madvise((void *)(sh->anon + 2 * pg), pg, MADV_DONTNEED) == 0);
	V_CHECK(madvise((void *)sh->anon, pg, MADV_WILLNEED) == 0);

	sh->shmid = shmget(IPC_PRIVATE, 2 * pg + 100, IPC_CREAT | 0600);
	V_CHECK(sh->shmid >= 0);
	sh->shm = (uint64_t)shmat(sh->shmid, NULL, SHM_RDONLY);
	/* Removed at once: it lives on while attached and never outlives us. */
	V_CHECK(shmctl(sh->shmid, IPC_RMID, NULL) == 0);
	V_CHECK(sh->shm != (uint64_t)-1);
	V_CHECK(syscall(SYS_io_setup, 16, &ctx) == 0);
	sh->aio = ctx;
	copy_file("/proc/self/maps", sh->maps, sizeof(sh->maps), &sh->maps_len);
	V_CHECK(syscall(SYS_io_destroy, ctx) == 0);
	V_CHECK(shmdt((void *)sh->shm) == 0);

	execve(TRUE_PATH, argv, envp);
	V_CHECK(false);
}

TEST_F(track, sequence)
{
	pid_t me = getpid(), c, *g = sh->g;
	uint64_t end, dev, ino;
	struct proc_stat ps;
	struct expect x = { 0 };
	struct track_event *e;
	struct stat st, libc;
	pid_t *lost;
	size_t nr_lost;
	int fd;

	need_true(_metadata);
	ASSERT_EQ(0, fstat(file_fd, &st));
	c = victim_add(_metadata, self, victim_sequence, 0, &fd);
	/* A fork: the same start_brk as ours, fixed since our exec. */
	ASSERT_EQ(0, proc_parse_stat(c, &ps));
	if (!open_tracker(_metadata, self, NULL))
		return;
	track_go(_metadata, self, c, fd);
	done_poll(_metadata, self, c, 0);

	for (int i = 0; i < 3; i++) {
		exp_add(&x, TRACK_FORK, g[i], g[i], c)->arg0 = c;
		if (i == 0)
			exp_add(&x, TRACK_SETPGID, g[i], g[i], c);	/* setpgid(0, 0) */
		exp_exit(&x, g[i], g[i], c, (11 + i) << 8, true);
	}
	e = exp_add(&x, TRACK_FORK, sh->t, g[1], c);
	e->flags = THREAD_FLAGS;
	e->arg0 = g[1];
	exp_mmap(&x, sh->t, g[1], c, sh->thread_map, pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS);
	exp_add(&x, TRACK_EXIT, sh->t, g[1], c);	/* exit code 0, not the last thread */

	exp_add(&x, TRACK_SETSID, c, c, me)->arg0 = c;
	exp_mmap(&x, c, c, me, sh->anon, 4 * pg, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS);
	e = exp_mmap(&x, c, c, me, sh->file_map, 2 * pg, PROT_READ, MAP_SHARED);
	e->dev = st.st_dev;
	e->ino = st.st_ino;
	e->pgoff = 1;
	exp_range(&x, TRACK_MUNMAP, c, c, me, sh->anon + 3 * pg, pg);
	exp_mmap(&x, c, c, me, sh->reserve, 4 * pg, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS);
	e = exp_range(&x, TRACK_MREMAP, c, c, me, sh->reserve + pg, 2 * pg);
	e->old_start = sh->file_map;
	e->old_len = 2 * pg;
	e->flags = MREMAP_MAYMOVE | MREMAP_FIXED;
	e->dev = st.st_dev;
	e->ino = st.st_ino;
	e->pgoff = 1;
	e = exp_range(&x, TRACK_MPROTECT, c, c, me, sh->anon, pg);
	e->prot = PROT_READ;
	e->arg0 = -1;
	e = exp_range(&x, TRACK_MPROTECT, c, c, me, sh->anon + pg, pg);
	e->prot = PROT_READ | PROT_WRITE;
	e->arg0 = sh->pkey;
	exp_range(&x, TRACK_BRK, c, c, me, ps.start_brk, sh->brk_new - ps.start_brk);
	exp_range(&x, TRACK_BRK, c, c, me, ps.start_brk, sh->brk_cur - ps.start_brk);
	exp_range(&x, TRACK_MADVISE, c, c, me, sh->anon + 2 * pg, pg)->arg0 = MADV_DONTNEED;
	e = exp_add(&x, TRACK_SHMAT, c, c, me);
	e->start = sh->shm;
	e->flags = SHM_RDONLY;
	e->arg0 = sh->shmid;
	EXPECT_TRUE(maps_find(sh->maps, sh->shm, &end, &dev, &ino));
	e->len = end - sh->shm;
	e->dev = dev;
	e->ino = ino;
	EXPECT_EQ(3 * pg, e->len);
	e = exp_add(&x, TRACK_IO_SETUP, c, c, me);
	e->start = sh->aio;
	e->arg0 = 16;
	EXPECT_TRUE(maps_find(sh->maps, sh->aio, &end, &dev, &ino));
	e->len = end - sh->aio;
	e->dev = dev;
	e->ino = ino;
	exp_add(&x, TRACK_IO_DESTROY, c, c, me)->start = sh->aio;
	exp_add(&x, TRACK_SHMDT, c, c, me)->start = sh->shm;
	e = exp_add(&x, TRACK_EXEC, c, c, me);
	e->arg0 = c;
	strcpy(e->path, TRUE_PATH);
	exp_mem_any(&x, c);
	exp_exit(&x, c, c, me, 0, true);
	expect_log(_metadata, self->log, &x);

	/* The loader mapped libc: a file mapping reported with its inode. */
	EXPECT_LT(0, x.any_n);
	if (stat(LIBC_PATH, &libc) == 0) {
		bool found = false;

		for (int j = x.any_first; j < self->log->n; j++) {
			const struct track_event *r = &self->log->ev[j];

			found |= r->pid == c && r->kind == TRACK_MMAP && r->ino == libc.st_ino &&
				 r->dev == libc.st_dev;
		}
		EXPECT_TRUE(found);
	} else {
		TH_LOG("no %s: the loader's libc mapping is not looked for", LIBC_PATH);
	}

	EXPECT_FALSE(track_has(self->t, c));
	for (int i = 0; i < 3; i++)
		EXPECT_FALSE(track_has(self->t, g[i]));
	expect_stats(_metadata, self->t, self->log->n, 0, 0, 0);
	ASSERT_EQ(0, track_take_lost(self->t, &lost, &nr_lost));
	EXPECT_EQ(0, nr_lost);
	free(lost);
}

static void victim_failing(void)
{
	static char *argv[] = { "x", NULL }, *envp[] = { NULL };
	aio_context_t ctx = 0;
	void *m;

	m = mmap(NULL, pg, PROT_READ, MAP_ANONYMOUS, -1, 0);
	V_CHECK(m == MAP_FAILED);
	m = mmap(NULL, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	V_CHECK(m == MAP_FAILED);
	V_CHECK(munmap((void *)(1UL << 20 | 1), pg) < 0);
	V_CHECK(mremap((void *)(1UL << 20 | 1), pg, 2 * pg, 0) == MAP_FAILED);
	V_CHECK(mprotect((void *)(1UL << 20 | 1), pg, PROT_READ) < 0);
	V_CHECK(syscall(SYS_pkey_mprotect, 1UL << 20, pg, PROT_READ, 1000) < 0);
	V_CHECK(syscall(SYS_brk, 1UL << 12) != 1UL << 12);	/* below the data segment */
	V_CHECK(madvise((void *)(1UL << 20 | 1), pg, MADV_DONTNEED) < 0);
	V_CHECK(shmat(-1, NULL, 0) == (void *)-1);
	V_CHECK(shmdt((void *)(1UL << 20 | 1)) < 0);
	V_CHECK(syscall(SYS_io_setup, 0, &ctx) < 0);
	V_CHECK(syscall(SYS_io_destroy, 12345) < 0);
	V_CHECK(setpgid(-1, 0) < 0);
	V_CHECK(setpgid(0, 0) == 0);				/* the group leader now... */
	V_CHECK(setsid() < 0);				/* ...cannot start a session */
	V_CHECK(execve("/nonexistent/x", argv, envp) < 0);
	_exit(7);
}

TEST_F(track, failed_calls)
{
	pid_t me = getpid(), c;
	struct expect x = { 0 };

	c = run_tracked(_metadata, self, victim_failing, 7 << 8);
	ASSERT_LE(0, track_poll(self->t, 0));
	exp_add(&x, TRACK_SETPGID, c, c, me);	/* the one that worked, setpgid(0, 0) */
	exp_exit(&x, c, c, me, 7 << 8, true);
	expect_log(_metadata, self->log, &x);
}

/* In a victim: forks a child (into sh->g[0]) that exits 5 and reaps it. */
static void fork_exit5(void)
{
	int status;
	pid_t pid;

	pid = syscall(SYS_clone, SIGCHLD, 0, NULL, NULL, 0);
	V_CHECK(pid >= 0);
	if (pid == 0)
		_exit(5);
	sh->g[0] = pid;
	V_CHECK(waitpid(pid, &status, 0) == pid && status == 5 << 8);
}

/* fork (child exits 5), mmap, munmap, setsid, exit 6. */
static void victim_small(void)
{
	void *m;

	fork_exit5();
	m = mmap(NULL, pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	V_CHECK(m != MAP_FAILED);
	sh->anon = (uint64_t)m;
	V_CHECK(munmap(m, pg) == 0);
	V_CHECK(setsid() == getpid());
	_exit(6);
}

TEST_F(track, untracked)
{
	pid_t me = getpid(), a, b, b_tree[5];
	struct expect x = { 0 };
	int fd_a, fd_b;

	need_true(_metadata);
	a = victim_add(_metadata, self, victim_small, 0, &fd_a);
	b = victim_add(_metadata, self, victim_sequence, 0, &fd_b);
	if (!open_tracker(_metadata, self, NULL))
		return;
	ASSERT_EQ(0, track_add(self->t, a));
	ASSERT_EQ(0, track_attach(self->t));
	/* One after the other: the shared page holds one victim's results at a time. */
	go(_metadata, fd_b);
	victim_done(_metadata, self, b, 0);
	b_tree[0] = b;
	memcpy(&b_tree[1], sh->g, sizeof(sh->g));
	b_tree[4] = sh->t;
	go(_metadata, fd_a);
	done_poll(_metadata, self, a, 6 << 8);

	exp_small_child(&x, a);
	exp_small(&x, a, me);
	expect_log(_metadata, self->log, &x);
	for (int i = 0; i < 5; i++) {
		for (int j = 0; j < self->log->n; j++)
			EXPECT_NE(b_tree[i], self->log->ev[j].pid);
		EXPECT_FALSE(track_has(self->t, b_tree[i]));
	}
}

/* Parses "NSpid:\tOUTER\t..." of a status text; 0 if absent. */
static pid_t nspid_outer(const char *status)
{
	const char *p = strstr(status, "\nNSpid:");

	return p ? atoi(p + strlen("\nNSpid:")) : 0;
}

/* The first PID of our own NSpid line: the PID /proc's namespace sees us as. */
static pid_t nspid_outer_self(void)
{
	char status[4096];
	size_t len;

	copy_file("/proc/self/status", status, sizeof(status), &len);
	return nspid_outer(status);
}

/* PID 1 of a new namespace: a child that says ready, waits, mmaps, exits 21; then exit 20. */
static void victim_ns_init(void)
{
	int status;
	pid_t pid;
	char b;
	void *m;

	pid = syscall(SYS_clone, SIGCHLD, 0, NULL, NULL, 0);
	V_CHECK(pid >= 0);
	if (pid == 0) {
		/* Our /proc is the test's: NSpid starts with the PID it sees. */
		copy_file("/proc/self/status", sh->status, sizeof(sh->status), &sh->status_len);
		V_CHECK(write(ready_fd[1], "r", 1) == 1);
		V_CHECK(read(hold_fd[0], &b, 1) == 1);
		m = mmap(NULL, pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		V_CHECK(m != MAP_FAILED);
		sh->w_map = (uint64_t)m;
		_exit(21);
	}
	V_CHECK(pid == 2);
	V_CHECK(waitpid(pid, &status, 0) == pid && status == 21 << 8);
	m = mmap(NULL, pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	V_CHECK(m != MAP_FAILED);
	sh->anon = (uint64_t)m;
	_exit(20);
}

TEST_F(track, child_pidns)
{
	pid_t me = getpid(), c, w;
	struct expect x = { 0 };
	int fd;

	hold_pipes(_metadata);
	c = victim_add(_metadata, self, victim_ns_init, CLONE_NEWPID, &fd);
	if (!open_tracker(_metadata, self, NULL))
		return;
	track_go(_metadata, self, c, fd);
	wait_ready(_metadata);
	w = nspid_outer(sh->status);
	ASSERT_LT(0, w);
	EXPECT_NE(2, w);
	EXPECT_TRUE(track_has(self->t, w));
	ASSERT_EQ(1, write(hold_fd[1], "h", 1));
	victim_done(_metadata, self, c, 20 << 8);
	EXPECT_FALSE(track_has(self->t, w));
	EXPECT_FALSE(track_has(self->t, c));
	ASSERT_LE(0, track_poll(self->t, 0));

	exp_add(&x, TRACK_FORK, w, w, c)->arg0 = c;
	exp_mmap(&x, w, w, c, sh->w_map, pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS);
	exp_exit(&x, w, w, c, 21 << 8, true);
	exp_mmap(&x, c, c, me, sh->anon, pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS);
	exp_exit(&x, c, c, me, 20 << 8, true);
	expect_log(_metadata, self->log, &x);
}

static int thread_exec(void *arg)
{
	static char *argv[] = { "true", NULL }, *envp[] = { NULL };

	execve(TRUE_PATH, argv, envp);
	sh->fail_line = __LINE__;
	sh->fail_errno = errno;
	syscall(SYS_exit_group, 100);
	return 0;
}

/*
 * A child in a new PID namespace (mmaps a page, exits 31), then a thread that execs
 * /bin/true while the main thread blocks for good.
 */
static void victim_thread_exec(void)
{
	int status;
	pid_t pid;
	char b;

	pid = syscall(SYS_clone, CLONE_NEWPID | SIGCHLD, 0, NULL, NULL, 0);
	V_CHECK(pid >= 0);
	if (pid == 0) {
		void *m = mmap(NULL, pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		V_CHECK(m != MAP_FAILED);
		sh->w_map = (uint64_t)m;
		_exit(31);
	}
	sh->w = pid;
	V_CHECK(waitpid(pid, &status, 0) == pid && status == 31 << 8);
	V_CHECK(clone(thread_exec, thread_stack + sizeof(thread_stack), THREAD_FLAGS, NULL,
		      &sh->t) > 0);
	/* Killed by the exec; hold_fd is never written. */
	(void)read(hold_fd[0], &b, 1);
	sh->fail_line = __LINE__;
	_exit(100);
}

static void thread_exec_body(struct th_meta *_metadata, FIXTURE_DATA(track) *self)
{
	pid_t me = getpid(), v;
	struct expect x = { 0 };
	struct track_event *e;

	need_true(_metadata);
	ASSERT_EQ(0, pipe2(hold_fd, O_CLOEXEC));
	v = run_tracked(_metadata, self, victim_thread_exec, 0);
	ASSERT_LE(0, track_poll(self->t, 0));

	e = exp_add(&x, TRACK_FORK, sh->w, sh->w, v);
	e->flags = CLONE_NEWPID;
	e->arg0 = v;
	exp_mmap(&x, sh->w, sh->w, v, sh->w_map, pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS);
	exp_exit(&x, sh->w, sh->w, v, 31 << 8, true);
	e = exp_add(&x, TRACK_FORK, sh->t, v, me);
	e->flags = THREAD_FLAGS;
	e->arg0 = v;
	/* de_thread() kills the leader: exit code 0 during an exec, not the last thread. */
	exp_add(&x, TRACK_EXIT, v, v, me);
	e = exp_add(&x, TRACK_EXEC, v, v, me);
	e->arg0 = sh->t;
	strcpy(e->path, TRUE_PATH);
	exp_mem_any(&x, v);
	exp_exit(&x, v, v, me, 0, true);
	expect_log(_metadata, self->log, &x);
	EXPECT_FALSE(track_has(self->t, v));
}

TEST_F(track, thread_exec)
{
	thread_exec_body(_metadata, self);
}

/*
 * Runs thread_exec_body() as PID 1 of a new PID namespace, in a copy of this test child: its
 * ASSERTs end it through the harness (teardown, exit code) as they would end us. own_proc: in
 * a mount namespace of its own too, with a /proc of the new PID namespace (a container).
 */
static void thread_exec_in_pidns(struct th_meta *_metadata, FIXTURE_DATA(track) *self,
				 bool own_proc)
{
	unsigned long flags = CLONE_NEWPID | (own_proc ? CLONE_NEWNS : 0);
	int status;
	pid_t pid;

	pid = syscall(SYS_clone, flags | SIGCHLD, 0, NULL, NULL, 0);
	ASSERT_LE(0, pid);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		ASSERT_EQ(1, getpid());
		if (own_proc) {
			ASSERT_EQ(0, mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL));
			ASSERT_EQ(0, mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
					   NULL));
			ASSERT_EQ(1, nspid_outer_self());
		}
		thread_exec_body(_metadata, self);
		return;
	}
	status = wait_exit(pid);
	ASSERT_TRUE(WIFEXITED(status));
	if (WEXITSTATUS(status) == TH_EXIT_SKIP)
		_metadata->skipped = true;	/* the child gave the reason */
	else
		EXPECT_EQ(TH_EXIT_PASS, WEXITSTATUS(status));
}

TEST_F(track, thread_exec_nested)
{
	thread_exec_in_pidns(_metadata, self, false);
}

TEST_F(track, thread_exec_container)
{
	thread_exec_in_pidns(_metadata, self, true);
}

/* Lists `tracked`: how many, the first max of them in out; asserts sorted and unique. */
static size_t list_tracked(struct th_meta *_metadata, struct track *t, pid_t *out, size_t max)
{
	pid_t *tgids;
	size_t n;

	ASSERT_EQ(0, track_list(t, &tgids, &n));
	ASSERT_NE(NULL, tgids);
	for (size_t i = 0; i < n; i++) {
		if (i)
			EXPECT_LT(tgids[i - 1], tgids[i]);
		if (i < max)
			out[i] = tgids[i];
	}
	free(tgids);
	return n;
}

TEST_F(track, tracked_full)
{
	struct track_opts opts = { .max_tracked = 1 };
	pid_t me = getpid(), c;
	struct expect x = { 0 };
	struct track_event *e;
	int fd;

	c = victim_add(_metadata, self, victim_small, 0, &fd);
	if (!open_tracker(_metadata, self, &opts))
		return;
	ASSERT_EQ(0, track_add(self->t, c));
	ASSERT_EQ(-E2BIG, track_add(self->t, c + 100000));
	ASSERT_EQ(0, track_attach(self->t));
	go(_metadata, fd);
	done_poll(_metadata, self, c, 6 << 8);

	/* The child's fork is logged and says so; the child itself (its exit) is not followed. */
	e = exp_add(&x, TRACK_FORK, sh->g[0], sh->g[0], c);
	e->arg0 = c;
	e->arg1 = 1;
	exp_small(&x, c, me);
	expect_log(_metadata, self->log, &x);
	expect_stats(_metadata, self->t, self->log->n, 0, 1, 0);
	EXPECT_EQ(0, list_tracked(_metadata, self->t, NULL, 0));
}

static void victim_burst(void)
{
	for (int i = 0; i < BURST; i++) {
		void *m = mmap(NULL, pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		V_CHECK(m != MAP_FAILED);
		V_CHECK(munmap(m, pg) == 0);
	}
	_exit(0);
}

/* Takes the tgids in `lost`: how many, the first max of them in out. */
static size_t take_lost(struct th_meta *_metadata, struct track *t, pid_t *out, size_t max)
{
	pid_t *lost;
	size_t n;

	ASSERT_EQ(0, track_take_lost(t, &lost, &n));
	for (size_t i = 0; i < n && i < max; i++)
		out[i] = lost[i];
	free(lost);
	return n;
}

static void overflow_body(struct th_meta *_metadata, FIXTURE_DATA(track) *self, bool lost_full)
{
	struct track_opts opts = { .ring_size = 4096, .max_lost = lost_full ? 1 : 0 };
	const uint64_t per_victim = 2 * BURST + 1;	/* and the exit */
	int nr = lost_full ? 2 : 1, fd[2];
	struct track_stats st;
	pid_t v[2], lost[4];
	int got = 0;

	for (int i = 0; i < nr; i++)
		v[i] = victim_add(_metadata, self, victim_burst, 0, &fd[i]);
	if (!open_tracker(_metadata, self, &opts))
		return;
	for (int i = 0; i < nr; i++)
		ASSERT_EQ(0, track_add(self->t, v[i]));
	ASSERT_EQ(0, track_attach(self->t));
	for (int i = 0; i < nr; i++) {
		go(_metadata, fd[i]);
		victim_done(_metadata, self, v[i], 0);
	}

	ASSERT_EQ(0, track_stats(self->t, &st));
	TH_LOG("%llu records sent, %llu dropped, %llu unnamed", (unsigned long long)st.events,
	       (unsigned long long)st.drops, (unsigned long long)st.lost_unnamed);
	EXPECT_EQ(nr * per_victim, st.events + st.drops);
	EXPECT_LT(0, st.events);
	EXPECT_LT(0, st.drops);
	EXPECT_EQ(0, st.tracked_full);
	ASSERT_EQ(1, take_lost(_metadata, self->t, lost, 4));
	EXPECT_EQ(v[0], lost[0]);
	EXPECT_EQ(0, take_lost(_metadata, self->t, lost, 4));
	/* The ring was full before the second victim started: all of its records are unnamed. */
	EXPECT_EQ(lost_full ? per_victim : 0, st.lost_unnamed);

	got = track_poll(self->t, 0);
	EXPECT_EQ(st.events, got);
	EXPECT_EQ(got, self->log->n);
	/* What got through is the start of the burst, in order. */
	for (int j = 0; j < self->log->n; j++) {
		EXPECT_EQ(v[0], self->log->ev[j].pid);
		EXPECT_EQ(j % 2 ? TRACK_MUNMAP : TRACK_MMAP, self->log->ev[j].kind);
	}
}

TEST_F(track, overflow)
{
	overflow_body(_metadata, self, false);
}

TEST_F(track, overflow_lost_full)
{
	overflow_body(_metadata, self, true);
}

static int stop_at;

static int rec_stop(void *data, const struct track_event *e, size_t len)
{
	struct rec_log *log = data;

	rec_collect(data, e, len);
	return log->n == stop_at ? 7 : 0;
}

TEST_F(track, poll_stop)
{
	pid_t c;
	int fd;

	c = victim_add(_metadata, self, victim_burst, 0, &fd);
	self->t = track_open(NULL, rec_stop, self->log);
	if (!self->t)
		TH_LOG("cannot load the tracker: %s", strerror(errno));
	ASSERT_NE(NULL, self->t);
	track_go(_metadata, self, c, fd);
	victim_done(_metadata, self, c, 0);

	stop_at = 2;
	ASSERT_EQ(7, track_poll(self->t, 0));
	ASSERT_EQ(2, self->log->n);
	stop_at = -1;
	/* The rest, with a timeout: records are waiting, so this does not block. */
	ASSERT_EQ(2 * BURST + 1 - 2, track_poll(self->t, 1000));
	ASSERT_EQ(2 * BURST + 1, self->log->n);
	for (int j = 0; j < self->log->n - 1; j++)
		EXPECT_EQ(j % 2 ? TRACK_MUNMAP : TRACK_MMAP, self->log->ev[j].kind);
	EXPECT_EQ(TRACK_EXIT, self->log->ev[self->log->n - 1].kind);
	EXPECT_EQ(0, track_poll(self->t, 0));
}

/* Maps 4 pages, guards the middle two (their contents go), removes the guards; exit 8. */
static void victim_guard(void)
{
	char *m = mmap(NULL, 4 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	V_CHECK(m != MAP_FAILED);
	sh->anon = (uint64_t)m;
	memset(m, 1, 4 * pg);
	if (madvise(m + pg, 2 * pg, GUARD_INSTALL)) {
		V_CHECK(errno == EINVAL);
		sh->guard_errno = errno;
		_exit(8);
	}
	V_CHECK(madvise(m + pg, 2 * pg, GUARD_REMOVE) == 0);
	/* Discarded by the install: zero-fill now, the neighbours untouched. */
	V_CHECK(m[pg] == 0 && m[3 * pg - 1] == 0 && m[0] == 1 && m[3 * pg] == 1);
	V_CHECK(madvise(m, pg, MADV_COLD) == 0);
	_exit(8);
}

TEST_F(track, madvise_guard)
{
	pid_t me = getpid(), c;
	struct expect x = { 0 };

	c = run_tracked(_metadata, self, victim_guard, 8 << 8);
	if (sh->guard_errno == EINVAL)
		SKIP(return, "MADV_GUARD_INSTALL: %s (guard regions came in 6.13)",
		     strerror(sh->guard_errno));
	ASSERT_LE(0, track_poll(self->t, 0));

	exp_mmap(&x, c, c, me, sh->anon, 4 * pg, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS);
	exp_range(&x, TRACK_MADVISE, c, c, me, sh->anon + pg, 2 * pg)->arg0 = GUARD_INSTALL;
	exp_range(&x, TRACK_MADVISE, c, c, me, sh->anon + pg, 2 * pg)->arg0 = GUARD_REMOVE;
	exp_exit(&x, c, c, me, 8 << 8, true);
	expect_log(_metadata, self->log, &x);
}

TEST_F(track, add_del)
{
	struct track_opts bad = { .ring_size = 5000 };
	struct pollfd p = { .events = POLLIN };

	if (!open_tracker(_metadata, self, NULL))
		return;
	EXPECT_FALSE(track_has(self->t, getpid()));
	ASSERT_EQ(0, track_add(self->t, getpid()));
	EXPECT_TRUE(track_has(self->t, getpid()));
	ASSERT_EQ(0, track_add(self->t, getpid()));
	EXPECT_EQ(0, track_del(self->t, getpid()));
	EXPECT_FALSE(track_has(self->t, getpid()));
	EXPECT_EQ(-ENOENT, track_del(self->t, getpid()));
	EXPECT_EQ(-EINVAL, track_add(self->t, 0));
	EXPECT_EQ(-EINVAL, track_add(self->t, -5));
	p.fd = track_fd(self->t);
	ASSERT_LE(0, p.fd);
	EXPECT_EQ(0, poll(&p, 1, 0));
	EXPECT_EQ(0, track_poll(self->t, 0));
	EXPECT_EQ(0, track_poll(self->t, 10));
	/* A ring size that is not a power of two (its error message is not shown). */
	log_set_level(0);
	EXPECT_EQ(NULL, track_open(&bad, rec_collect, self->log));
	EXPECT_EQ(EINVAL, errno);
	log_set_level(LOG_WARN);
}

static bool has_tracefs_mount(void)
{
	char buf[1 << 16];
	size_t len;
	int fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return true;
	for (len = 0; len < sizeof(buf) - 1; len += n) {
		n = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (n <= 0)
			break;
	}
	close(fd);
	buf[len] = 0;
	return strstr(buf, " - tracefs ") != NULL;
}

static int dir_entries(const char *path)
{
	struct dirent *de;
	int n = 0;
	DIR *d = opendir(path);

	if (!d)
		return -1;
	while ((de = readdir(d)))
		n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
	closedir(d);
	return n;
}

TEST_F(track, tracefs_private)
{
	char *dir = self->tmp_dir;
	struct expect x = { 0 };
	pid_t me = getpid(), c;
	int fd;

	ASSERT_EQ(0, unshare(CLONE_NEWNS));
	ASSERT_EQ(0, mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL));
	while (umount2("/sys/kernel/tracing", MNT_DETACH) == 0)
		;
	ASSERT_NE(0, access("/sys/kernel/tracing/events", F_OK));
	ASSERT_FALSE(has_tracefs_mount());
	snprintf(dir, sizeof(self->tmp_dir), "%s.d", self->file_path);
	ASSERT_EQ(0, mkdir(dir, 0700));
	ASSERT_EQ(0, setenv("TMPDIR", dir, 1));

	c = victim_add(_metadata, self, victim_small, 0, &fd);
	if (!open_tracker(_metadata, self, NULL))
		return;
	EXPECT_FALSE(has_tracefs_mount());
	EXPECT_EQ(0, dir_entries(dir));
	EXPECT_EQ(0, rmdir(dir));
	track_go(_metadata, self, c, fd);
	done_poll(_metadata, self, c, 6 << 8);

	exp_small_child(&x, c);
	exp_small(&x, c, me);
	expect_log(_metadata, self->log, &x);
}

static int dir_fds(void)
{
	return dir_entries("/proc/self/fd");
}

struct bpf_objs {
	int nr_progs, nr_maps, nr_links;
	__u32 progs[64], maps[64], links[64];
};

static void ids_add(__u32 *ids, int *n, __u32 id)
{
	for (int i = 0; i < *n; i++)
		if (ids[i] == id)
			return;
	if (*n < 64)
		ids[(*n)++] = id;
}

/* The BPF programs, maps and links this process holds an fd of, from their fdinfo. */
static void bpf_objs_held(struct bpf_objs *o)
{
	struct dirent *de;
	DIR *d = opendir("/proc/self/fd");

	memset(o, 0, sizeof(*o));
	while (d && (de = readdir(d))) {
		char path[300], buf[1024], *l;
		ssize_t n;
		int fd;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/fdinfo/%s", de->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		buf[n > 0 ? n : 0] = 0;
		/* A link's fdinfo names its program too: links first. */
		if ((l = strstr(buf, "link_id:")))
			ids_add(o->links, &o->nr_links, atoi(l + strlen("link_id:")));
		else if ((l = strstr(buf, "prog_id:")))
			ids_add(o->progs, &o->nr_progs, atoi(l + strlen("prog_id:")));
		else if ((l = strstr(buf, "map_id:")))
			ids_add(o->maps, &o->nr_maps, atoi(l + strlen("map_id:")));
	}
	if (d)
		closedir(d);
}

/*
 * Whether none of ids can be opened any more. A program drops its maps from an RCU
 * callback after it is freed: each round waits for a grace period in the kernel.
 */
static bool all_gone(int (*get_fd)(__u32), const __u32 *ids, int n)
{
	for (int round = 0; round < 100; round++) {
		int left = 0;

		for (int i = 0; i < n; i++) {
			int fd = get_fd(ids[i]);

			if (fd >= 0) {
				close(fd);
				left++;
			}
		}
		if (!left)
			return true;
		(void)syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0);
	}
	return false;
}

TEST_F(track, close_leaves_nothing)
{
	struct bpf_objs before, held;
	int fds;

	bpf_objs_held(&before);
	ASSERT_EQ(0, before.nr_progs + before.nr_maps + before.nr_links);
	fds = dir_fds();
	if (!open_tracker(_metadata, self, NULL))
		return;
	ASSERT_EQ(0, track_attach(self->t));
	bpf_objs_held(&held);
	TH_LOG("%d programs, %d maps, %d links", held.nr_progs, held.nr_maps, held.nr_links);
	EXPECT_EQ(17, held.nr_progs);
	EXPECT_EQ(17, held.nr_links);
	EXPECT_LE(5, held.nr_maps);

	track_close(self->t);
	self->t = NULL;
	EXPECT_EQ(fds, dir_fds());
	EXPECT_TRUE(all_gone(bpf_link_get_fd_by_id, held.links, held.nr_links));
	EXPECT_TRUE(all_gone(bpf_prog_get_fd_by_id, held.progs, held.nr_progs));
	EXPECT_TRUE(all_gone(bpf_map_get_fd_by_id, held.maps, held.nr_maps));
}

/* How many perf event fds this process holds. */
static int perf_fds(void)
{
	struct dirent *de;
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	while (d && (de = readdir(d))) {
		char link[64];
		ssize_t len = readlinkat(dirfd(d), de->d_name, link, sizeof(link) - 1);

		if (len < 0)
			continue;
		link[len] = 0;
		n += !strcmp(link, "anon_inode:[perf_event]");
	}
	if (d)
		closedir(d);
	return n;
}

/*
 * mmap + munmap a page, say ready, wait; then 16 more pairs and a fork (child exits 5) that
 * nobody is to see; exit 9.
 */
static void victim_detach(void)
{
	char b;
	void *m;

	m = mmap(NULL, pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	V_CHECK(m != MAP_FAILED);
	sh->anon = (uint64_t)m;
	V_CHECK(munmap(m, pg) == 0);
	V_CHECK(write(ready_fd[1], "r", 1) == 1);
	V_CHECK(read(hold_fd[0], &b, 1) == 1);
	for (int i = 0; i < 16; i++) {
		m = mmap(NULL, pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		V_CHECK(m != MAP_FAILED);
		V_CHECK(munmap(m, pg) == 0);
	}
	fork_exit5();
	_exit(9);
}

TEST_F(track, detach)
{
	struct bpf_objs attached, detached;
	pid_t me = getpid(), c, listed[4];
	struct expect x = { 0 };
	int fd;

	hold_pipes(_metadata);
	c = victim_add(_metadata, self, victim_detach, 0, &fd);
	if (!open_tracker(_metadata, self, NULL))
		return;
	/* Nothing attached yet: nothing to do. */
	EXPECT_EQ(0, track_detach(self->t));
	ASSERT_EQ(0, track_add(self->t, c));
	ASSERT_EQ(0, track_attach(self->t));
	bpf_objs_held(&attached);
	EXPECT_EQ(17, attached.nr_links);
	EXPECT_LT(0, perf_fds());
	go(_metadata, fd);
	wait_ready(_metadata);

	ASSERT_EQ(0, track_detach(self->t));
	bpf_objs_held(&detached);
	EXPECT_EQ(0, detached.nr_links);
	EXPECT_EQ(0, perf_fds());
	EXPECT_EQ(attached.nr_maps, detached.nr_maps);
	EXPECT_EQ(0, track_detach(self->t));
	ASSERT_EQ(1, write(hold_fd[1], "h", 1));
	victim_done(_metadata, self, c, 9 << 8);

	/* Sent before the detach, read only now: all there, and nothing from after it. */
	ASSERT_EQ(2, track_poll(self->t, 0));
	exp_mmap(&x, c, c, me, sh->anon, pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS);
	exp_range(&x, TRACK_MUNMAP, c, c, me, sh->anon, pg);
	expect_log(_metadata, self->log, &x);
	EXPECT_EQ(0, track_poll(self->t, 0));
	expect_stats(_metadata, self->t, 2, 0, 0, 0);
	/* Nobody saw the exit or the fork: the set is as the detach left it. */
	ASSERT_EQ(1, list_tracked(_metadata, self->t, listed, 4));
	EXPECT_EQ(c, listed[0]);
	EXPECT_FALSE(track_has(self->t, sh->g[0]));
}

/* A child that sets sh->w, says ready and waits (exit 21); then exit 20. */
static void victim_hold_child(void)
{
	int status;
	pid_t pid;
	char b;

	pid = syscall(SYS_clone, SIGCHLD, 0, NULL, NULL, 0);
	V_CHECK(pid >= 0);
	if (pid == 0) {
		sh->w = getpid();
		V_CHECK(write(ready_fd[1], "r", 1) == 1);
		V_CHECK(read(hold_fd[0], &b, 1) == 1);
		_exit(21);
	}
	V_CHECK(waitpid(pid, &status, 0) == pid && status == 21 << 8);
	_exit(20);
}

TEST_F(track, list)
{
	pid_t c, d, want[2], got[1100];
	int fd, fd_d;
	size_t n;

	hold_pipes(_metadata);
	c = victim_add(_metadata, self, victim_hold_child, 0, &fd);
	/* Never let go: killed by the teardown. */
	d = victim_add(_metadata, self, victim_small, 0, &fd_d);
	if (!open_tracker(_metadata, self, NULL))
		return;
	EXPECT_EQ(0, list_tracked(_metadata, self->t, got, 0));
	ASSERT_EQ(0, track_add(self->t, c));
	ASSERT_EQ(0, track_add(self->t, d));
	want[0] = c < d ? c : d;
	want[1] = c < d ? d : c;
	ASSERT_EQ(2, list_tracked(_metadata, self->t, got, 2));
	EXPECT_EQ(want[0], got[0]);
	EXPECT_EQ(want[1], got[1]);
	ASSERT_EQ(0, track_del(self->t, d));
	ASSERT_EQ(1, list_tracked(_metadata, self->t, got, 1));
	EXPECT_EQ(c, got[0]);

	ASSERT_EQ(0, track_attach(self->t));
	go(_metadata, fd);
	wait_ready(_metadata);
	want[0] = c < sh->w ? c : sh->w;
	want[1] = c < sh->w ? sh->w : c;
	ASSERT_EQ(2, list_tracked(_metadata, self->t, got, 2));
	EXPECT_EQ(want[0], got[0]);
	EXPECT_EQ(want[1], got[1]);
	ASSERT_EQ(1, write(hold_fd[1], "h", 1));
	victim_done(_metadata, self, c, 20 << 8);
	EXPECT_EQ(0, list_tracked(_metadata, self->t, got, 0));
	ASSERT_EQ(0, track_detach(self->t));

	/* Above any pid_max (PID_MAX_LIMIT is 2^22), in reverse order. */
	for (int i = 0; i < 1000; i++)
		ASSERT_EQ(0, track_add(self->t, (1 << 22) + 1000 - i));
	n = list_tracked(_metadata, self->t, got, 1100);
	ASSERT_EQ(1000, n);
	for (int i = 0; i < 1000; i++)
		EXPECT_EQ((1 << 22) + 1 + i, got[i]);
	close(fd_d);
}

TEST_HARNESS_MAIN
