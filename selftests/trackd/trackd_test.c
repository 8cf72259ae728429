// SPDX-License-Identifier: MIT
/*
 * trackd_test: the trackd daemon end to end, as a user runs it.
 *
 *   workload          trackd -d attaches to a process W; W then forks four children (two
 *                     exit with known codes, one creates and ends a thread and calls
 *                     setpgid, one calls setsid and execs /bin/true), maps, unmaps,
 *                     protects, moves and discards known ranges, grows its heap, attaches
 *                     and detaches a SysV segment, sets up and destroys an AIO context,
 *                     and makes calls that fail. After `trackd mark` the log holds, per
 *                     task, exactly those records with their values (failed calls none);
 *                     the tasks the log says are alive are the tree /proc shows, and the
 *                     mappings it says W has agree with /proc/W/maps. W's written pages
 *                     are exactly what the kernel's scan reports (trackd armed it), and
 *                     W keeps no userfaultfd of ours. Host and PID-namespace variants
 *                     (in the latter, trackd and W run in a new PID namespace and the log
 *                     holds that namespace's PIDs).
 *   untracked         a process outside the tracked tree doing the same never appears.
 *   lost              with the smallest ring and trackd stopped (SIGSTOP), a burst of
 *                     mmap/munmap overflows the ring: a LOST record names W.
 *   kill9             trackd killed with SIGKILL leaves a readable log and no BPF program,
 *                     map or link; a new trackd on the same log appends a GAP and goes on
 *                     with the next seq.
 *   control           status names the tracked tasks; a second trackd on the same log is
 *                     refused; an idle client holds nobody up; "uffd W" hands out W's
 *                     userfaultfd; mark prints the seq of its MARK; stop writes STOP,
 *                     removes the socket and pidfile and the daemon exits 0; status fails.
 *   adopt             a child forked after trackd started, traced by the test (as a dump
 *                     holds it): mark stays fast and leaves it unarmed; "adopt C" with a
 *                     uffd C created itself arms it; adopt of an untracked, armed or bad
 *                     PID, without an fd or with one that is no uffd, is an error and
 *                     trackd keeps no fd of it; an fd sent with another request is dropped.
 *   zombie_child      a root's zombie child is not tracked (its exit is already past).
 *   dump_since_log    `ckpt dump --leave-running --since-log`: the inventory names the log
 *                     and the MARK taken while frozen, write tracking is re-armed (the next
 *                     scan gives exactly the pages written after the dump); a log of other
 *                     roots, or none, fails the dump and the task runs on.
 *   vfork_root        a root blocked in vfork: trackd starts at once, leaves it untraced and
 *                     unarmed, and a mark arms it once the vfork child is gone.
 *   mark_new_maps     a mark registers the mappings an armed process made since the last one
 *                     (VmFlags gain "uw", an ARMED record names them), PROT_NONE ones once an
 *                     mprotect opens them, and looks at nobody else's mappings: a range the
 *                     test unregistered behind trackd's back stays so across marks with no
 *                     mapping change, or only a mapping made and unmapped again (the dump's
 *                     parasite does that), and the next mapping made has it registered again;
 *                     the heap's growth is registered.
 *   errors            a missing root, a thread or a zombie as root, trackd inside the tree,
 *                     no -L, a bad ring size, status with no trackd, a corrupt log under
 *                     -d (its error shown by the parent): clear errors and exit codes, no
 *                     log left locked.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <linux/bpf.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/futex.h>
#include <linux/userfaultfd.h>

#include "changelog.h"
#include "image.h"
#include "inventory.pb-c.h"
#include "dirty.h"
#include "harness.h"

#define PAGE		4096ul
#define NR_KIDS		4
#define MAX_RECS	200000

static char trackd_bin[PATH_MAX + 32];
static char tmp_root[256];
static pid_t main_pid;

/* ------------------------------------------------------------------ helpers */

static void find_trackd(void)
{
	const char *env = getenv("TRACKD");
	char self[PATH_MAX];
	ssize_t n;

	if (env) {
		snprintf(trackd_bin, sizeof(trackd_bin), "%s", env);
		return;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	self[n > 0 ? n : 0] = 0;
	*strrchr(self, '/') = 0;
	snprintf(trackd_bin, sizeof(trackd_bin), "%s/../../trackd", self);
}

/*
 * Runs argv[0] with argv (NULL-terminated); its stdout+stderr into out (as much as len - 1
 * holds). Returns its exit code, 128 + the signal that killed it, or -1.
 */
static int run_capture(const char *const *argv, char *out, size_t len)
{
	int p[2], status;
	size_t got = 0;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC))
		return -1;
	fflush(NULL);
	pid = fork();
	if (!pid) {
		dup2(p[1], 1);
		dup2(p[1], 2);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(p[1]);
	for (ssize_t n; got + 1 < len && (n = read(p[0], out + got, len - got - 1)) > 0;)
		got += n;
	out[got] = 0;
	close(p[0]);
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Run trackd with args (NULL-terminated); its stdout+stderr into out. Returns the exit code. */
static int run_trackd(char *out, size_t len, ...)
{
	const char *argv[32] = { trackd_bin };
	int argc = 1;
	va_list ap;

	va_start(ap, len);
	while (argc < 31 && (argv[argc] = va_arg(ap, const char *)))
		argc++;
	va_end(ap);
	argv[argc] = NULL;
	return run_capture(argv, out, len);
}

static void mkdtemp_in(char *buf, size_t len, const char *what)
{
	snprintf(buf, len, "%s/%s.XXXXXX", tmp_root, what);
	if (!mkdtemp(buf)) {
		perror("mkdtemp");
		exit(1);
	}
}

static pid_t read_pidfile(const char *path)
{
	char buf[32] = "";
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return -1;
	(void)!read(fd, buf, sizeof(buf) - 1);
	close(fd);
	return atoi(buf);
}

/* The log as an array of records (at most MAX_RECS). */
struct log {
	ChangelogEntry **r;
	size_t n;
	uint64_t torn;
};

static int log_load(const char *dir, struct log *l)
{
	int dirfd = open(dir, O_RDONLY | O_DIRECTORY);
	struct cl_reader *r;
	ChangelogEntry *e;
	int ret = 0;

	memset(l, 0, sizeof(*l));
	if (dirfd < 0)
		return -errno;
	r = cl_reader_open(dirfd);
	close(dirfd);
	if (!r)
		return -errno;
	l->r = calloc(MAX_RECS, sizeof(*l->r));
	while (l->n < MAX_RECS && (ret = cl_next(r, &e)) == 1)
		l->r[l->n++] = e;
	l->torn = cl_reader_torn(r);
	cl_reader_close(r);
	return ret < 0 ? ret : 0;
}

static void log_free(struct log *l)
{
	for (size_t i = 0; i < l->n; i++)
		cl_entry_free(l->r[i]);
	free(l->r);
}

static void log_print(const struct log *l, size_t from)
{
	for (size_t i = from; i < l->n; i++) {
		const ChangelogEntry *e = l->r[i];
		th_comment("  %llu %s pid %d tgid %d ppid %d start %#llx len %#llx prot %llx flags %#llx old %#llx/%#llx arg0 %lld arg1 %lld%s%s",
			   (unsigned long long)e->seq, cl_kind_name(e->kind), e->pid, e->tgid, e->ppid,
			   (unsigned long long)e->start, (unsigned long long)e->len,
			   (unsigned long long)e->prot, (unsigned long long)e->flags,
			   (unsigned long long)e->old_start, (unsigned long long)e->old_len,
			   (long long)e->arg0, (long long)e->arg1, e->path ? " path " : "",
			   e->path ? e->path : "");
	}
}

static bool has_tgid(const ChangelogEntry *e, pid_t tgid)
{
	for (size_t i = 0; i < e->n_tgids; i++)
		if (e->tgids[i] == tgid)
			return true;
	return false;
}

/* ------------------------------------------------------------------ the workload */

/* What W tells the test, through a shared page. */
struct report {
	pid_t w, kids[NR_KIDS], thread;
	uint64_t a, b, c, c2, shm, aio, brk_end, start_brk;
	int shmid;
	dev_t file_dev;
	ino_t file_ino;
	uint64_t data;		/* a region W writes pages of on request */
	int written[16];	/* page indexes of data written */
	int nr_written;
	char err[256];
};

#define DATA_PAGES 64

static volatile uint32_t thread_tid;

static int thread_fn(void *arg)
{
	syscall(SYS_exit, 0);
	return 0;
}

static int thread_fn_wait(void *arg)
{
	for (;;)
		pause();
	return 0;
}

static void must(bool ok, struct report *rep, const char *what)
{
	if (!ok && !rep->err[0]) {
		snprintf(rep->err, sizeof(rep->err), "%s: %s", what, strerror(errno));
	}
}

/* Kid 2: a thread that ends, then setpgid; kid 3: setsid, exec. */
static void kid_main(int slot, struct report *rep, char *stack)
{
	if (slot == 2) {
		thread_tid = 1;
		pid_t t = clone(thread_fn, stack + 64 * 1024,
				CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD |
					CLONE_SYSVSEM | CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID,
				NULL, &thread_tid, NULL, &thread_tid);
		if (t > 0) {
			rep->thread = t;
			while (thread_tid)
				syscall(SYS_futex, &thread_tid, FUTEX_WAIT, thread_tid, NULL, NULL, 0);
		}
		(void)setpgid(0, 0);
		for (;;)
			pause();
	}
	(void)setsid();
	execl("/bin/true", "true", (char *)NULL);
	_exit(127);
}

/*
 * W: set everything up that needs memory (so the tracked part allocates
 * nothing behind our back), say ready, wait for go, do the known sequence,
 * say done; then wait for a request to write pages, then for the end.
 */
static void workload(struct report *rep, int cmd, int ack, const char *file)
{
	char c;
	int fd = open(file, O_RDWR | O_CREAT | O_TRUNC, 0600);
	char *stack = mmap(NULL, 64 * 1024, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *hole = mmap(NULL, 16 * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *data = mmap(NULL, DATA_PAGES * PAGE, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	struct stat st;
	aio_context_t ctx = 0;

	must(fd >= 0 && !ftruncate(fd, 2 * PAGE) && !fstat(fd, &st), rep, "test file");
	rep->file_dev = st.st_dev;
	rep->file_ino = st.st_ino;
	rep->shmid = shmget(IPC_PRIVATE, 2 * PAGE, IPC_CREAT | 0600);
	must(rep->shmid >= 0, rep, "shmget");
	rep->brk_end = syscall(SYS_brk, 0) + 2 * PAGE;
	rep->data = (uint64_t)data;
	rep->w = getpid();
	(void)!write(ack, "r", 1);
	if (read(cmd, &c, 1) != 1)
		_exit(1);

	for (int i = 0; i < NR_KIDS; i++) {
		pid_t pid = fork();
		if (!pid) {
			if (i < 2)
				_exit(10 + i);
			kid_main(i, rep, stack);
		}
		rep->kids[i] = pid;
	}
	rep->a = (uint64_t)mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	rep->b = (uint64_t)mmap(NULL, 2 * PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
	rep->c = (uint64_t)mmap(NULL, 8 * PAGE, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	must(munmap((void *)rep->a, 4 * PAGE) == 0, rep, "munmap a");
	must(mprotect((void *)rep->c, 8 * PAGE, PROT_READ) == 0, rep, "mprotect c");
	rep->c2 = (uint64_t)mremap((void *)rep->c, 8 * PAGE, 16 * PAGE,
				   MREMAP_MAYMOVE | MREMAP_FIXED, hole);
	must(rep->c2 == (uint64_t)hole, rep, "mremap c");
	must(madvise((void *)rep->c2, 4 * PAGE, MADV_DONTNEED) == 0, rep, "madvise");
	must(madvise((void *)rep->c2, 4 * PAGE, MADV_WILLNEED) == 0, rep, "madvise willneed");
	must(munmap((void *)rep->b, 2 * PAGE) == 0, rep, "munmap b");
	must((uint64_t)syscall(SYS_brk, rep->brk_end) == rep->brk_end, rep, "brk");
	rep->shm = (uint64_t)shmat(rep->shmid, NULL, 0);
	must(rep->shm != (uint64_t)-1 && shmdt((void *)rep->shm) == 0, rep, "shmat/shmdt");
	must(syscall(SYS_io_setup, 4, &ctx) == 0, rep, "io_setup");
	rep->aio = ctx;
	must(syscall(SYS_io_destroy, ctx) == 0, rep, "io_destroy");
	/* Calls that fail change nothing and log nothing. */
	must(munmap((void *)(rep->c2 + 1), PAGE) < 0, rep, "unaligned munmap failed");
	must(mprotect((void *)rep->a, PAGE, PROT_READ) < 0, rep, "mprotect of a hole failed");
	must(mmap(NULL, PAGE, PROT_READ, MAP_SHARED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) ==
		     MAP_FAILED, rep, "bad mmap failed");
	for (int i = 0; i < NR_KIDS; i++)
		if (i != 2)
			(void)waitpid(rep->kids[i], NULL, 0);
	(void)!write(ack, "d", 1);

	/* Pages to write, one request. */
	if (read(cmd, &c, 1) != 1)
		_exit(0);
	for (int i = 0; i < rep->nr_written; i++)
		data[rep->written[i] * PAGE] = 1;
	(void)!write(ack, "w", 1);
	while (read(cmd, &c, 1) == 1)
		;
	_exit(0);
}


/* ------------------------------------------------------------------ checks */

static int nfail;

#define CHECK(cond, fmt, ...)                                                             \
	do {                                                                              \
		if (!(cond)) {                                                            \
			th_comment("FAIL %s:%d: " fmt, __FILE__, __LINE__, ##__VA_ARGS__); \
			nfail++;                                                          \
		}                                                                         \
	} while (0)

/* The tracker's records (not trackd's own) about one task, in log order. */
static size_t task_records(const struct log *l, size_t upto, pid_t pid, const ChangelogEntry **out,
			   size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < upto && n < max; i++)
		if (l->r[i]->kind < CL_START && l->r[i]->pid == pid)
			out[n++] = l->r[i];
	return n;
}

static bool is_mm_kind(uint32_t k)
{
	return k >= CL_MMAP && k <= CL_IO_DESTROY;
}

/* One expected record: its kind and the fields that must match (the m_ ones set). */
struct want {
	uint32_t kind;
	long long start, len, prot, flags, old_start, old_len, arg0, arg1;
	bool m_start, m_len, m_prot, m_flags, m_old_start, m_old_len, m_arg0, m_arg1;
};

#define W(k, ...) { .kind = k, __VA_ARGS__ }
#define S(f, v) .f = (long long)(v), .m_##f = true

static void match(const char *who, const ChangelogEntry **got, size_t n, const struct want *w,
		  size_t nw)
{
	CHECK(n == nw, "%s: %zu records, want %zu", who, n, nw);
	for (size_t i = 0; i < n && i < nw; i++) {
		const ChangelogEntry *e = got[i];
		CHECK(e->kind == w[i].kind, "%s #%zu: %s, want %s", who, i, cl_kind_name(e->kind),
		      cl_kind_name(w[i].kind));
#define F(f)                                                                                 \
	CHECK(!w[i].m_##f || (long long)e->f == w[i].f, "%s #%zu %s: " #f " %#llx, want %#llx", \
	      who, i, cl_kind_name(e->kind), (long long)e->f, w[i].f)
		F(start);
		F(len);
		F(prot);
		F(flags);
		F(old_start);
		F(old_len);
		F(arg0);
		F(arg1);
#undef F
	}
}

/*
 * Kill and reap every child, including orphans reparented to us while we
 * kill (we are a subreaper): scan again until none is left.
 */
static void kill_reap_all(void)
{
	for (int tries = 0; tries < 10000; tries++) {
		pid_t pids[256];
		int n = th_children(pids, 256);

		for (int i = 0; i < n; i++)
			kill(pids[i], SIGKILL);
		pid_t r = waitpid(-1, NULL, WNOHANG);
		if (r < 0 && errno == ECHILD)
			return;
		if (r == 0)
			usleep(1000);
	}
}

struct wl {
	struct report *rep;
	int cmd, ack;
	pid_t w;
	char dir[PATH_MAX];
	char file[PATH_MAX];
};

/* Start W and wait until it is set up. */
static int wl_start(struct wl *wl, const char *dir)
{
	int cmd[2], ack[2];
	char c;

	snprintf(wl->dir, sizeof(wl->dir), "%s", dir);
	snprintf(wl->file, sizeof(wl->file), "%s/w.dat", dir);
	wl->rep = mmap(NULL, sizeof(*wl->rep), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (wl->rep == MAP_FAILED || pipe2(cmd, O_CLOEXEC) || pipe2(ack, O_CLOEXEC))
		return -1;
	fflush(NULL);
	wl->w = fork();
	if (wl->w < 0)
		return -1;
	if (!wl->w) {
		close(cmd[1]);
		close(ack[0]);
		workload(wl->rep, cmd[0], ack[1], wl->file);
	}
	close(cmd[0]);
	close(ack[1]);
	wl->cmd = cmd[1];
	wl->ack = ack[0];
	if (read(wl->ack, &c, 1) != 1 || c != 'r')
		return -1;
	return 0;
}

static int wl_step(struct wl *wl, char cmd, char want)
{
	char c;

	if (write(wl->cmd, &cmd, 1) != 1 || read(wl->ack, &c, 1) != 1 || c != want)
		return -1;
	return 0;
}

static int start_trackd(const char *dir, pid_t root, const char *extra)
{
	char out[4096], pidfile[PATH_MAX], logf[PATH_MAX], roots[32];
	int ret;

	snprintf(pidfile, sizeof(pidfile), "%s/trackd.pid", dir);
	snprintf(logf, sizeof(logf), "%s/trackd.debug", dir);
	snprintf(roots, sizeof(roots), "%d", root);
	ret = extra ? run_trackd(out, sizeof(out), "-t", roots, "-L", dir, "-d", "--pidfile",
				 pidfile, "-v4", "-o", logf, extra, NULL)
		    : run_trackd(out, sizeof(out), "-t", roots, "-L", dir, "-d", "--pidfile",
				 pidfile, "-v4", "-o", logf, NULL);
	if (ret) {
		th_comment("trackd -t %d -L %s failed (%d): %s", root, dir, ret, out);
		return -1;
	}
	return read_pidfile(pidfile);
}

static long long trackd_cmd(const char *cmd, const char *dir, char *out, size_t len)
{
	int ret = run_trackd(out, len, cmd, "-L", dir, NULL);

	if (ret) {
		th_comment("trackd %s -L %s: exit %d: %s", cmd, dir, ret, out);
		return -1;
	}
	return strtoll(out, NULL, 10);
}

/* How many fds of pid link to something naming what (with, true) or not (false). */
static int count_fds(pid_t pid, const char *what, bool with)
{
	char path[64], link[256];
	int count = 0;

	for (int fd = 0; fd < 4096; fd++) {
		snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, fd);
		ssize_t n = readlink(path, link, sizeof(link) - 1);
		if (n <= 0)
			continue;
		link[n] = 0;
		count += !strstr(link, what) != with;
	}
	return count;
}

static bool has_uffd(pid_t pid)
{
	return count_fds(pid, "userfaultfd", true) > 0;
}

/*
 * The whole workload case; runs in the test process or as PID 1 of a new
 * PID namespace. Returns the number of failed checks.
 */
static int workload_case(const char *dir)
{
	const ChangelogEntry *got[4096];
	char out[8192];
	struct wl wl;
	struct log l;
	long long mark;
	size_t upto = 0, n;
	pid_t daemon;

	nfail = 0;
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	if (wl_start(&wl, dir)) {
		th_comment("FAIL: the workload did not start");
		return 1;
	}
	struct report *rep = wl.rep;
	daemon = start_trackd(dir, wl.w, NULL);
	CHECK(daemon > 0, "trackd started");
	if (daemon <= 0)
		goto out;
	CHECK(!wl_step(&wl, 'g', 'd'), "the workload ran");
	CHECK(!rep->err[0], "workload: %s", rep->err);
	mark = trackd_cmd("mark", dir, out, sizeof(out));
	CHECK(mark > 0, "mark gave a seq");
	CHECK(!has_uffd(wl.w), "W has no userfaultfd in its fd table");

	/* The range moved by mremap lost its tracking; the mark registered it again. */
	struct dirty_run moved = { rep->c2, rep->c2 + 16 * PAGE }, *mruns = NULL;
	size_t nm = 0;
	CHECK(!dirty_scan(wl.w, &moved, 1, false, &mruns, &nm) && nm == 0,
	      "the moved range is under tracking after the mark: %zu runs", nm);
	free(mruns);

	/* Written pages, exactly (W's data was populated and armed at attach). */
	struct dirty_run range = { rep->data, rep->data + DATA_PAGES * PAGE }, *runs = NULL;
	size_t nr = 0;
	CHECK(!dirty_scan(wl.w, &range, 1, true, &runs, &nr) && nr == 0,
	      "no page of data written since attach: %zu runs", nr);
	free(runs);
	int pages[] = { 3, 7, 8, 40 };
	rep->nr_written = 4;
	memcpy(rep->written, pages, sizeof(pages));
	CHECK(!wl_step(&wl, 'w', 'w'), "W wrote its pages");
	runs = NULL;
	nr = 0;
	CHECK(!dirty_scan(wl.w, &range, 1, true, &runs, &nr), "scan");
	CHECK(nr == 3 && runs[0].start == rep->data + 3 * PAGE &&
		      runs[0].end == rep->data + 4 * PAGE && runs[1].start == rep->data + 7 * PAGE &&
		      runs[1].end == rep->data + 9 * PAGE && runs[2].start == rep->data + 40 * PAGE &&
		      runs[2].end == rep->data + 41 * PAGE,
	      "written runs: %zu, want pages 3, 7-8, 40", nr);
	free(runs);
	runs = NULL;
	CHECK(!dirty_scan(wl.w, &range, 1, true, &runs, &nr) && nr == 0, "re-armed: %zu runs", nr);
	free(runs);

	CHECK(!log_load(dir, &l), "the log reads");
	while (upto < l.n && (long long)l.r[upto]->seq <= mark)
		upto++;
	CHECK(upto > 0 && l.r[upto - 1]->kind == CL_MARK, "the mark is in the log");
	CHECK(l.n && l.r[0]->kind == CL_START && l.r[0]->n_roots == 1 &&
		      l.r[0]->roots[0] == wl.w, "START names the root");

	/* Per task, exactly what it did. */
	n = task_records(&l, upto, wl.w, got, 4096);
	struct want ww[] = {
		W(CL_MMAP, S(start, rep->a), S(len, 4 * PAGE), S(prot, PROT_READ | PROT_WRITE),
		  S(flags, MAP_PRIVATE | MAP_ANONYMOUS)),
		W(CL_MMAP, S(start, rep->b), S(len, 2 * PAGE), S(prot, PROT_READ),
		  S(flags, MAP_PRIVATE)),
		W(CL_MMAP, S(start, rep->c), S(len, 8 * PAGE), S(prot, PROT_READ | PROT_WRITE)),
		W(CL_MUNMAP, S(start, rep->a), S(len, 4 * PAGE)),
		W(CL_MPROTECT, S(start, rep->c), S(len, 8 * PAGE), S(prot, PROT_READ)),
		W(CL_MREMAP, S(old_start, rep->c), S(old_len, 8 * PAGE), S(start, rep->c2),
		  S(len, 16 * PAGE), S(flags, MREMAP_MAYMOVE | MREMAP_FIXED)),
		W(CL_MADVISE, S(start, rep->c2), S(len, 4 * PAGE), S(arg0, MADV_DONTNEED)),
		W(CL_MUNMAP, S(start, rep->b), S(len, 2 * PAGE)),
		W(CL_BRK),
		W(CL_SHMAT, S(start, rep->shm), S(len, 2 * PAGE), S(arg0, rep->shmid)),
		W(CL_SHMDT, S(start, rep->shm)),
		W(CL_IO_SETUP, S(start, rep->aio), S(arg0, 4)),
		W(CL_IO_DESTROY, S(start, rep->aio)),
	};
	match("W", got, n, ww, sizeof(ww) / sizeof(ww[0]));
	if (n == sizeof(ww) / sizeof(ww[0])) {
		CHECK(got[1]->dev == rep->file_dev && got[1]->ino == rep->file_ino &&
			      got[1]->pgoff == 0, "mmap of the file names it: dev %llx ino %llu",
		      (unsigned long long)got[1]->dev, (unsigned long long)got[1]->ino);
		CHECK(got[0]->ino == 0, "an anonymous mmap names no file");
		CHECK(got[8]->start + got[8]->len == rep->brk_end, "brk ends at %#llx, want %#llx",
		      (unsigned long long)(got[8]->start + got[8]->len),
		      (unsigned long long)rep->brk_end);
		CHECK(got[11]->len >= PAGE && got[11]->len % PAGE == 0, "AIO ring length %llu",
		      (unsigned long long)got[11]->len);
	}
	for (int i = 0; i < 2; i++) {
		char who[16];
		struct want wk[] = {
			W(CL_FORK, S(arg0, wl.w)),
			W(CL_EXIT, S(arg0, (10 + i) << 8), S(arg1, 1)),
		};
		snprintf(who, sizeof(who), "kid%d", i);
		n = task_records(&l, upto, rep->kids[i], got, 4096);
		match(who, got, n, wk, 2);
		if (n)
			CHECK(got[0]->ppid == wl.w && got[0]->tgid == rep->kids[i] &&
				      !(got[0]->flags & CLONE_THREAD), "%s: fork from W", who);
	}
	struct want wk2[] = { W(CL_FORK, S(arg0, wl.w)), W(CL_SETPGID, S(arg0, 0), S(arg1, 0)) };
	n = task_records(&l, upto, rep->kids[2], got, 4096);
	match("kid2", got, n, wk2, 2);
	struct want wt[] = { W(CL_FORK, S(arg0, rep->kids[2])), W(CL_EXIT, S(arg1, 0)) };
	n = task_records(&l, upto, rep->thread, got, 4096);
	match("kid2's thread", got, n, wt, 2);
	if (n)
		CHECK(got[0]->tgid == rep->kids[2] && (got[0]->flags & CLONE_THREAD),
		      "the thread is one: tgid %d flags %#llx", got[0]->tgid,
		      (unsigned long long)got[0]->flags);
	/* kid3: fork, setsid, exec, then whatever the loader maps, then exit 0. */
	n = task_records(&l, upto, rep->kids[3], got, 4096);
	CHECK(n >= 4, "kid3: %zu records", n);
	if (n >= 4) {
		struct want wk3[] = { W(CL_FORK, S(arg0, wl.w)), W(CL_SETSID, S(arg0, rep->kids[3])),
				      W(CL_EXEC, S(arg0, rep->kids[3])) };
		match("kid3", got, 3, wk3, 3);
		CHECK(got[2]->path && !strcmp(got[2]->path, "/bin/true"), "exec path '%s'",
		      got[2]->path ? got[2]->path : "");
		for (size_t i = 3; i + 1 < n; i++)
			CHECK(is_mm_kind(got[i]->kind), "kid3 after exec: %s",
			      cl_kind_name(got[i]->kind));
		CHECK(got[n - 1]->kind == CL_EXIT && got[n - 1]->arg0 == 0 && got[n - 1]->arg1 == 1,
		      "kid3 ends with exit 0");
	}
	/* Nobody else appears. */
	for (size_t i = 0; i < upto; i++) {
		const ChangelogEntry *e = l.r[i];
		bool known = e->pid == wl.w || e->pid == rep->thread;
		for (int k = 0; k < NR_KIDS; k++)
			known |= e->pid == rep->kids[k];
		if (e->kind < CL_START)
			CHECK(known, "a record about task %d", e->pid);
	}
	/* The live tasks by the log are the tree by /proc. */
	pid_t live[64];
	int nlive = 0;
	for (size_t i = 0; i < upto; i++) {
		const ChangelogEntry *e = l.r[i];
		if ((e->kind == CL_ATTACH || (e->kind == CL_FORK && e->pid == e->tgid)) && nlive < 64)
			live[nlive++] = e->tgid;
		if (e->kind == CL_EXIT && e->arg1)
			for (int k = 0; k < nlive; k++)
				if (live[k] == e->tgid)
					live[k--] = live[--nlive];
	}
	const ChangelogEntry *m = l.r[upto - 1];
	CHECK(nlive == 2 && m->n_tgids == 2 && has_tgid(m, wl.w) && has_tgid(m, rep->kids[2]),
	      "live by the log: %d, the mark lists %zu", nlive, m->n_tgids);
	char kids[256], path[64];
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", wl.w, wl.w);
	int fd = open(path, O_RDONLY);
	ssize_t kl = fd >= 0 ? read(fd, kids, sizeof(kids) - 1) : -1;
	kids[kl > 0 ? kl : 0] = 0;
	if (fd >= 0)
		close(fd);
	char *rest;
	CHECK(strtol(kids, &rest, 10) == rep->kids[2] && strspn(rest, " \n") == strlen(rest),
	      "/proc says W's children are '%s'", kids);
	/* The mappings agree with /proc/W/maps. */
	char maps[65536];
	snprintf(path, sizeof(path), "/proc/%d/maps", wl.w);
	fd = open(path, O_RDONLY);
	ssize_t ml = fd >= 0 ? read(fd, maps, sizeof(maps) - 1) : -1;
	maps[ml > 0 ? ml : 0] = 0;
	if (fd >= 0)
		close(fd);
	char line[64];
	snprintf(line, sizeof(line), "%llx-%llx r--p", (unsigned long long)rep->c2,
		 (unsigned long long)rep->c2 + 16 * PAGE);
	CHECK(strstr(maps, line), "maps has the moved range '%s'", line);
	snprintf(line, sizeof(line), "\n%llx-", (unsigned long long)rep->b);
	CHECK(!strstr(maps, line), "maps has no file mapping at %#llx",
	      (unsigned long long)rep->b);
	/* Armed at attach: W's ARMED record covers its data. */
	bool armed = false;
	for (size_t i = 0; i < upto; i++) {
		const ChangelogEntry *e = l.r[i];
		if (e->kind == CL_ARMED && e->tgid == wl.w)
			for (size_t k = 0; k + 1 < e->n_ranges; k += 2)
				armed |= e->ranges[k] <= rep->data &&
					 e->ranges[k + 1] >= rep->data + DATA_PAGES * PAGE;
	}
	CHECK(armed, "W's data range is under tracking by the log");
	bool rearmed = false;
	for (size_t i = upto; i < l.n; i++) {
		const ChangelogEntry *e = l.r[i];
		if (e->kind == CL_ARMED && e->tgid == wl.w)
			for (size_t k = 0; k + 1 < e->n_ranges; k += 2)
				rearmed |= e->ranges[k] == rep->c2 &&
					   e->ranges[k + 1] == rep->c2 + 16 * PAGE;
	}
	CHECK(rearmed, "after the mark, an ARMED record gives W's moved range");
	if (nfail)
		log_print(&l, 0);
	log_free(&l);

	CHECK(trackd_cmd("stop", dir, out, sizeof(out)) > mark, "stop");
	CHECK(!log_load(dir, &l) && l.n && l.r[l.n - 1]->kind == CL_STOP, "the log ends with STOP");
	log_free(&l);
out:
	kill_reap_all();
	return nfail;
}

TEST_TIMEOUT(workload_host, 120)
{
	char dir[PATH_MAX];

	mkdtemp_in(dir, sizeof(dir), "workload");
	EXPECT_EQ(0, workload_case(dir));
}

TEST_TIMEOUT(workload_pidns, 120)
{
	char dir[PATH_MAX];
	int status;
	pid_t pid;

	mkdtemp_in(dir, sizeof(dir), "workload-ns");
	fflush(NULL);
	pid = syscall(SYS_clone, CLONE_NEWPID | CLONE_NEWNS | SIGCHLD, NULL, NULL, NULL, 0UL);
	ASSERT_LE(0, pid);
	if (!pid) {
		if (mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
		    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL)) {
			th_comment("FAIL: cannot mount /proc in the new namespace: %s",
				   strerror(errno));
			_exit(1);
		}
		int ret = workload_case(dir);
		fflush(NULL);
		_exit(ret ? 1 : 0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* A process that waits for one byte, then does n mmap/munmap pairs and forks a child. */
static pid_t busy_proc(int *ret_cmd, int *ret_ack, int n)
{
	int cmd[2], ack[2];
	char c;
	pid_t pid;

	if (pipe2(cmd, O_CLOEXEC) || pipe2(ack, O_CLOEXEC))
		return -1;
	fflush(NULL);
	pid = fork();
	if (!pid) {
		close(cmd[1]);
		close(ack[0]);
		if (read(cmd[0], &c, 1) != 1)
			_exit(1);
		for (int i = 0; i < n; i++) {
			void *p = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (p != MAP_FAILED)
				munmap(p, PAGE);
		}
		pid_t k = fork();
		if (!k)
			_exit(0);
		(void)waitpid(k, NULL, 0);
		(void)!write(ack[1], "d", 1);
		while (read(cmd[0], &c, 1) == 1)
			;
		_exit(0);
	}
	close(cmd[0]);
	close(ack[1]);
	if (pid > 0) {
		*ret_cmd = cmd[1];
		*ret_ack = ack[0];
	}
	return pid;
}

static int busy_go(int cmd, int ack)
{
	char c = 'g';

	return write(cmd, &c, 1) == 1 && read(ack, &c, 1) == 1 ? 0 : -1;
}

TEST_TIMEOUT(untracked, 60)
{
	char dir[PATH_MAX], out[4096];
	int tcmd, tack, ucmd, uack;
	struct log l;

	prctl(PR_SET_CHILD_SUBREAPER, 1);
	mkdtemp_in(dir, sizeof(dir), "untracked");
	pid_t t = busy_proc(&tcmd, &tack, 3);
	pid_t u = busy_proc(&ucmd, &uack, 50);
	ASSERT_LT(0, t);
	ASSERT_LT(0, u);
	ASSERT_LT(0, start_trackd(dir, t, "--no-dirty"));
	ASSERT_EQ(0, busy_go(ucmd, uack));
	ASSERT_EQ(0, busy_go(tcmd, tack));
	long long mark = trackd_cmd("mark", dir, out, sizeof(out));
	ASSERT_LT(0, mark);
	ASSERT_EQ(0, log_load(dir, &l));
	size_t mine = 0;
	for (size_t i = 0; i < l.n; i++) {
		const ChangelogEntry *e = l.r[i];
		if (e->kind >= CL_START)
			continue;
		EXPECT_TRUE(e->tgid == t || e->ppid == t);
		EXPECT_NE(u, e->tgid);
		EXPECT_NE(u, e->ppid);
		mine += e->tgid == t;
	}
	/* 3 mmap + 3 munmap, and the child's fork (tgid: the child, ppid t) and exit. */
	EXPECT_EQ(6, mine);
	log_free(&l);
	EXPECT_LT(0, trackd_cmd("stop", dir, out, sizeof(out)));
	kill_reap_all();
}

TEST_TIMEOUT(lost, 90)
{
	char dir[PATH_MAX], out[4096];
	int cmd, ack;
	struct log l;

	prctl(PR_SET_CHILD_SUBREAPER, 1);
	mkdtemp_in(dir, sizeof(dir), "lost");
	pid_t w = busy_proc(&cmd, &ack, 20000);
	ASSERT_LT(0, w);
	pid_t d = start_trackd(dir, w, "--ring-size=4096");
	ASSERT_LT(0, d);
	/* trackd cannot consume while stopped: the ring overflows. */
	ASSERT_EQ(0, kill(d, SIGSTOP));
	ASSERT_EQ(0, busy_go(cmd, ack));
	ASSERT_EQ(0, kill(d, SIGCONT));
	long long mark = trackd_cmd("mark", dir, out, sizeof(out));
	ASSERT_LT(0, mark);
	ASSERT_EQ(0, trackd_cmd("status", dir, out, sizeof(out)));
	char *lost = strstr(out, "\nlost ");
	ASSERT_TRUE(lost != NULL);
	EXPECT_LT(0, atoll(lost + 6));
	ASSERT_EQ(0, log_load(dir, &l));
	uint64_t total = 0, recs = 0;
	bool named = false;
	for (size_t i = 0; i < l.n; i++) {
		const ChangelogEntry *e = l.r[i];
		if (e->kind == CL_LOST) {
			total += e->count;
			named |= has_tgid(e, w) || !e->n_tgids;
		}
		recs += e->kind == CL_MMAP || e->kind == CL_MUNMAP;
	}
	TH_LOG("%llu records lost, %llu mmap/munmap records kept", (unsigned long long)total,
	       (unsigned long long)recs);
	EXPECT_LT(0, total);
	EXPECT_TRUE(named);
	/* Nothing vanishes silently: kept + lost covers all 40000 (plus fork/exit). */
	EXPECT_LE(40000, recs + total);
	log_free(&l);
	EXPECT_LT(0, trackd_cmd("stop", dir, out, sizeof(out)));
	kill_reap_all();
}

/* IDs of every BPF object of one kind. */
static int bpf_ids(int cmd, uint32_t *ids, int max)
{
	union bpf_attr a;
	uint32_t id = 0;
	int n = 0;

	for (;;) {
		memset(&a, 0, sizeof(a));
		a.start_id = id;
		if (syscall(SYS_bpf, cmd, &a, sizeof(a)))
			break;
		id = a.next_id;
		if (n < max)
			ids[n++] = id;
	}
	return n;
}

static int bpf_new_ids(int cmd, const uint32_t *before, int nb, uint32_t *ret, int max)
{
	uint32_t now[4096];
	int n = bpf_ids(cmd, now, 4096), k = 0;

	for (int i = 0; i < n; i++) {
		bool old = false;
		for (int j = 0; j < nb; j++)
			old |= now[i] == before[j];
		if (!old && k < max)
			ret[k++] = now[i];
	}
	return k;
}

TEST_TIMEOUT(kill9, 90)
{
	static const int cmds[3] = { BPF_PROG_GET_NEXT_ID, BPF_MAP_GET_NEXT_ID,
				     BPF_LINK_GET_NEXT_ID };
	static uint32_t before[3][4096], during[3][4096], after[3][4096];
	int nb[3], nd[3], na[3];
	char dir[PATH_MAX], out[4096];
	int cmd, ack, status;
	struct log l;

	prctl(PR_SET_CHILD_SUBREAPER, 1);
	mkdtemp_in(dir, sizeof(dir), "kill9");
	for (int k = 0; k < 3; k++)
		nb[k] = bpf_ids(cmds[k], before[k], 4096);
	pid_t w = busy_proc(&cmd, &ack, 100);
	ASSERT_LT(0, w);
	pid_t d = start_trackd(dir, w, NULL);
	ASSERT_LT(0, d);
	for (int k = 0; k < 3; k++)
		nd[k] = bpf_new_ids(cmds[k], before[k], nb[k], during[k], 4096);
	EXPECT_LT(0, nd[0]);
	EXPECT_LT(0, nd[1]);
	ASSERT_EQ(0, busy_go(cmd, ack));
	long long mark = trackd_cmd("mark", dir, out, sizeof(out));
	ASSERT_LT(0, mark);
	ASSERT_EQ(0, kill(d, SIGKILL));
	ASSERT_EQ(d, waitpid(d, &status, 0));
	/* The kernel frees them once the last fd is gone, a little later. */
	for (int tries = 0; tries < 300; tries++) {
		int left = 0;
		for (int k = 0; k < 3; k++) {
			na[k] = bpf_new_ids(cmds[k], before[k], nb[k], after[k], 4096);
			for (int i = 0; i < na[k]; i++)
				for (int j = 0; j < nd[k]; j++)
					left += after[k][i] == during[k][j];
		}
		if (!left)
			break;
		ASSERT_LT(tries, 299);
		usleep(10000);
	}
	ASSERT_EQ(0, log_load(dir, &l));
	ASSERT_LT(0, l.n);
	uint64_t last = l.r[l.n - 1]->seq;
	EXPECT_LE((uint64_t)mark, last);
	log_free(&l);

	/* Again on the same log: a GAP, then on with the next seq. */
	d = start_trackd(dir, w, NULL);
	ASSERT_LT(0, d);
	long long mark2 = trackd_cmd("mark", dir, out, sizeof(out));
	EXPECT_LT(0, trackd_cmd("stop", dir, out, sizeof(out)));
	ASSERT_EQ(0, log_load(dir, &l));
	size_t starts = 0, gaps = 0;
	for (size_t i = 0; i < l.n; i++) {
		starts += l.r[i]->kind == CL_START;
		if (l.r[i]->kind == CL_GAP) {
			gaps++;
			EXPECT_EQ(last + 1, l.r[i]->seq);
			EXPECT_TRUE(l.r[i]->reason && strstr(l.r[i]->reason, "not stop cleanly"));
		}
		if (l.r[i]->kind == CL_MARK && l.r[i]->seq > last)
			EXPECT_EQ((uint64_t)mark2, l.r[i]->seq);
	}
	EXPECT_EQ(1, starts);
	EXPECT_EQ(1, gaps);
	EXPECT_EQ(CL_STOP, l.r[l.n - 1]->kind);
	log_free(&l);
	kill_reap_all();
}

TEST_TIMEOUT(control, 60)
{
	char dir[PATH_MAX], out[8192], path[PATH_MAX + 32], roots[32];
	int cmd, ack, status;
	struct log l;
	struct stat st;

	prctl(PR_SET_CHILD_SUBREAPER, 1);
	mkdtemp_in(dir, sizeof(dir), "control");
	pid_t w = busy_proc(&cmd, &ack, 1);
	ASSERT_LT(0, w);
	pid_t d = start_trackd(dir, w, NULL);
	ASSERT_LT(0, d);
	ASSERT_EQ(0, busy_go(cmd, ack));

	ASSERT_EQ(0, run_trackd(out, sizeof(out), "status", "-L", dir, NULL));
	char want[64];
	snprintf(want, sizeof(want), "\ntracked 1 %d\n", w);
	EXPECT_TRUE(strstr(out, want) != NULL);
	snprintf(want, sizeof(want), "pid %d\n", d);
	EXPECT_TRUE(!strncmp(out, want, strlen(want)));
	snprintf(want, sizeof(want), "\narmed 1 %d\n", w);
	EXPECT_TRUE(strstr(out, want) != NULL);
	if (!strstr(out, want))
		TH_LOG("status: %s", out);

	snprintf(roots, sizeof(roots), "%d", w);
	EXPECT_EQ(1, run_trackd(out, sizeof(out), "-t", roots, "-L", dir, NULL));
	EXPECT_TRUE(strstr(out, "already tracked by trackd") != NULL);

	/* A client that connects and says nothing does not hold the others up. */
	int idle = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	ASSERT_LT(snprintf(sun.sun_path, sizeof(sun.sun_path), "%.80s/trackd.sock", dir), 100);
	ASSERT_EQ(0, connect(idle, (struct sockaddr *)&sun, sizeof(sun)));
	EXPECT_EQ(0, run_trackd(out, sizeof(out), "status", "-L", dir, NULL));
	close(idle);

	/* "uffd TGID" hands out W's userfaultfd (for the dump to register new mappings). */
	int c = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	ASSERT_EQ(0, connect(c, (struct sockaddr *)&sun, sizeof(sun)));
	char req[32], ans[256], link[64], cbuf[CMSG_SPACE(sizeof(int))];
	int n = snprintf(req, sizeof(req), "uffd %d", w), ufd = -1;
	ASSERT_EQ(n, send(c, req, n, 0));
	struct iovec iov = { ans, sizeof(ans) - 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	ssize_t got = recvmsg(c, &mh, MSG_CMSG_CLOEXEC);
	ASSERT_LT(0, got);
	ans[got] = 0;
	EXPECT_STREQ("ok\n", ans);
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	if (cm && cm->cmsg_type == SCM_RIGHTS)
		memcpy(&ufd, CMSG_DATA(cm), sizeof(int));
	ASSERT_LE(0, ufd);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", ufd);
	ssize_t ll = readlink(path, link, sizeof(link) - 1);
	link[ll > 0 ? ll : 0] = 0;
	EXPECT_STREQ("anon_inode:[userfaultfd]", link);
	close(ufd);
	close(c);
	/* And a process it does not track is an error. */
	c = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	ASSERT_EQ(0, connect(c, (struct sockaddr *)&sun, sizeof(sun)));
	n = snprintf(req, sizeof(req), "uffd %d", getpid());
	ASSERT_EQ(n, send(c, req, n, 0));
	got = recv(c, ans, sizeof(ans) - 1, 0);
	ASSERT_LT(0, got);
	ans[got] = 0;
	EXPECT_TRUE(strstr(ans, "is not tracked") != NULL);
	close(c);

	long long m1 = trackd_cmd("mark", dir, out, sizeof(out));
	long long m2 = trackd_cmd("mark", dir, out, sizeof(out));
	EXPECT_LT(0, m1);
	EXPECT_LT(m1, m2);
	long long stop = trackd_cmd("stop", dir, out, sizeof(out));
	EXPECT_LT(m2, stop);
	/* stop returns once the log is closed; the daemon is gone right after. */
	ASSERT_EQ(d, waitpid(d, &status, 0));
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	snprintf(path, sizeof(path), "%s/trackd.sock", dir);
	EXPECT_NE(0, stat(path, &st));
	snprintf(path, sizeof(path), "%s/trackd.pid", dir);
	EXPECT_NE(0, stat(path, &st));
	EXPECT_EQ(1, run_trackd(out, sizeof(out), "status", "-L", dir, NULL));
	EXPECT_TRUE(strstr(out, "no trackd runs on") != NULL);

	ASSERT_EQ(0, log_load(dir, &l));
	EXPECT_EQ(0, l.torn);
	bool saw1 = false, saw2 = false;
	for (size_t i = 0; i < l.n; i++) {
		saw1 |= l.r[i]->kind == CL_MARK && (long long)l.r[i]->seq == m1;
		saw2 |= l.r[i]->kind == CL_MARK && (long long)l.r[i]->seq == m2;
	}
	EXPECT_TRUE(saw1 && saw2);
	EXPECT_EQ(CL_STOP, l.r[l.n - 1]->kind);
	EXPECT_EQ(stop, (long long)l.r[l.n - 1]->seq);
	log_free(&l);
	kill_reap_all();
}

/* Send msg with fd attached (none when fd < 0); the answer into ans. Returns its length. */
static ssize_t ctl_request(const char *dir, const char *msg, int fd, char *ans, size_t len)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct iovec iov = { (void *)msg, strlen(msg) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t got = -1;
	int c;

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%.80s/trackd.sock", dir);
	c = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (c < 0)
		return -1;
	if (fd >= 0) {
		mh.msg_control = cbuf;
		mh.msg_controllen = sizeof(cbuf);
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	}
	if (!connect(c, (struct sockaddr *)&sun, sizeof(sun)) && sendmsg(c, &mh, 0) >= 0)
		got = recv(c, ans, len - 1, 0);
	ans[got > 0 ? got : 0] = 0;
	close(c);
	return got;
}

/* trackd's fds other than sockets (a client's is closed just after its answer). */
static int daemon_fds(pid_t d)
{
	return count_fds(d, "socket:", false);
}

static int tracer_of(pid_t pid);

/*
 * A process forked after trackd started and held traced (as by a dump) cannot be
 * seized by trackd: mark leaves it unarmed at once, and "adopt" arms it with a
 * uffd made in it. Every refused adopt closes the fd it came with.
 */
TEST_TIMEOUT(adopt, 60)
{
	char dir[PATH_MAX], out[8192], want[64], req[64], ans[512];
	char cbuf[CMSG_SPACE(sizeof(int))];
	int sv[2], go[2], ufd = -1;
	struct timespec t0, t1;
	pid_t c = 0;
	struct log l;

	prctl(PR_SET_CHILD_SUBREAPER, 1);
	mkdtemp_in(dir, sizeof(dir), "adopt");
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv));
	ASSERT_EQ(0, pipe2(go, O_CLOEXEC));
	fflush(NULL);
	pid_t w = fork();
	if (!w) {
		char x;
		close(sv[0]);
		close(go[1]);
		if (read(go[0], &x, 1) != 1)
			_exit(1);
		if (!fork()) {
			/* C: a uffd of its own mm, handed to the test, its copy closed. */
			pid_t self = getpid();
			int u = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
			if (u < 0 || dirty_uffd_api(u))
				_exit(1);
			struct iovec iov = { &self, sizeof(self) };
			struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
					     .msg_controllen = sizeof(cbuf) };
			struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
			cm->cmsg_level = SOL_SOCKET;
			cm->cmsg_type = SCM_RIGHTS;
			cm->cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(cm), &u, sizeof(int));
			if (sendmsg(sv[1], &mh, 0) < 0)
				_exit(1);
			/* Then word that its copy is gone. */
			close(u);
			(void)!write(sv[1], "c", 1);
			close(sv[1]);
			for (;;)
				pause();
		}
		for (;;)
			pause();
	}
	ASSERT_LT(0, w);
	close(sv[1]);
	close(go[0]);
	pid_t d = start_trackd(dir, w, NULL);
	ASSERT_LT(0, d);
	ASSERT_EQ(1, write(go[1], "g", 1));
	struct iovec iov = { &c, sizeof(c) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	ASSERT_EQ((ssize_t)sizeof(c), recvmsg(sv[0], &mh, MSG_CMSG_CLOEXEC));
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	if (cm && cm->cmsg_type == SCM_RIGHTS)
		memcpy(&ufd, CMSG_DATA(cm), sizeof(int));
	ASSERT_LE(0, ufd);
	ASSERT_LT(0, c);
	ASSERT_EQ(1, read(sv[0], req, sizeof(req)));
	EXPECT_FALSE(has_uffd(c));

	/* Seized and stopped by us: trackd's seize fails at once, and the mark does not wait. */
	int status;
	ASSERT_EQ(0, ptrace(PTRACE_SEIZE, c, NULL, 0));
	ASSERT_EQ(0, ptrace(PTRACE_INTERRUPT, c, NULL, 0));
	ASSERT_EQ(c, waitpid(c, &status, __WALL));
	EXPECT_TRUE(WIFSTOPPED(status));
	EXPECT_EQ(getpid(), tracer_of(c));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	EXPECT_LT(0, trackd_cmd("mark", dir, out, sizeof(out)));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	TH_LOG("mark with a traced unarmed process: %ld ms", ms);
	EXPECT_LT(ms, 1000);
	ASSERT_EQ(0, run_trackd(out, sizeof(out), "status", "-L", dir, NULL));
	snprintf(want, sizeof(want), "\narmed 1 %d\n", w);
	EXPECT_TRUE(strstr(out, want) != NULL);
	snprintf(want, sizeof(want), "\nunarmed %d ", c);
	EXPECT_TRUE(strstr(out, want) != NULL);
	if (!strstr(out, want))
		TH_LOG("status: %s", out);

	/* Refused requests: an error each, and trackd keeps none of the fds. */
	int base = daemon_fds(d), null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	ASSERT_LT(0, base);
	ASSERT_LE(0, null);
	snprintf(req, sizeof(req), "adopt %d", getpid());
	EXPECT_LT(0, ctl_request(dir, req, ufd, ans, sizeof(ans)));
	EXPECT_TRUE(strstr(ans, "error: ") == ans && strstr(ans, "is not tracked"));
	snprintf(req, sizeof(req), "adopt %d", c);
	EXPECT_LT(0, ctl_request(dir, req, -1, ans, sizeof(ans)));
	EXPECT_TRUE(strstr(ans, "error: ") == ans && strstr(ans, "needs a userfaultfd"));
	snprintf(req, sizeof(req), "adopt %d", w);
	EXPECT_LT(0, ctl_request(dir, req, ufd, ans, sizeof(ans)));
	EXPECT_TRUE(strstr(ans, "error: ") == ans && strstr(ans, "tracking already"));
	EXPECT_LT(0, ctl_request(dir, "adopt 12x", ufd, ans, sizeof(ans)));
	EXPECT_TRUE(strstr(ans, "error: bad process '12x'") == ans);
	/* Not a uffd: arming fails, C stays unarmed. */
	snprintf(req, sizeof(req), "adopt %d", c);
	EXPECT_LT(0, ctl_request(dir, req, null, ans, sizeof(ans)));
	EXPECT_TRUE(strstr(ans, "error: cannot arm") == ans);
	if (strstr(ans, "error: cannot arm") != ans)
		TH_LOG("adopt /dev/null: %s", ans);
	/* Another request with an fd: served, the fd dropped; an empty one too, unanswered. */
	EXPECT_LT(0, ctl_request(dir, "status", ufd, ans, sizeof(ans)));
	EXPECT_TRUE(!strncmp(ans, "ok\n", 3));
	EXPECT_EQ(0, ctl_request(dir, "", ufd, ans, sizeof(ans)));
	EXPECT_EQ(base, daemon_fds(d));

	/* The uffd C made: C is armed, still traced by us, and holds no uffd itself. */
	EXPECT_LT(0, ctl_request(dir, req, ufd, ans, sizeof(ans)));
	EXPECT_STREQ("ok\n", ans);
	close(ufd);
	EXPECT_EQ(base + 1, daemon_fds(d));
	EXPECT_EQ(getpid(), tracer_of(c));
	EXPECT_FALSE(has_uffd(c));
	ASSERT_EQ(0, run_trackd(out, sizeof(out), "status", "-L", dir, NULL));
	snprintf(want, sizeof(want), "\narmed 2 ");
	EXPECT_TRUE(strstr(out, want) != NULL);
	if (!strstr(out, want))
		TH_LOG("status: %s", out);
	/* Armed already now. */
	EXPECT_LT(0, ctl_request(dir, req, null, ans, sizeof(ans)));
	EXPECT_TRUE(strstr(ans, "tracking already") != NULL);
	EXPECT_EQ(base + 1, daemon_fds(d));
	close(null);
	EXPECT_LT(0, trackd_cmd("stop", dir, out, sizeof(out)));

	ASSERT_EQ(0, log_load(dir, &l));
	int unarmed = 0, armed = 0;
	for (size_t i = 0; i < l.n; i++) {
		unarmed += l.r[i]->kind == CL_UNARMED && l.r[i]->tgid == c;
		armed += l.r[i]->kind == CL_ARMED && l.r[i]->tgid == c;
	}
	EXPECT_EQ(2, unarmed);	/* the mark's seize, the /dev/null adopt */
	EXPECT_EQ(1, armed);
	log_free(&l);
	close(sv[0]);
	close(go[1]);
	kill_reap_all();
}

TEST_TIMEOUT(errors, 60)
{
	char dir[PATH_MAX], out[8192], tid[32];
	int cmd, ack;

	prctl(PR_SET_CHILD_SUBREAPER, 1);
	mkdtemp_in(dir, sizeof(dir), "errors");
	EXPECT_EQ(1, run_trackd(out, sizeof(out), "-t", "4194000", "-L", dir, NULL));
	EXPECT_TRUE(strstr(out, "no process 4194000 to track") != NULL);
	EXPECT_EQ(2, run_trackd(out, sizeof(out), "-t", "1", NULL));
	EXPECT_TRUE(strstr(out, "-L LOGDIR is required") != NULL);
	EXPECT_EQ(2, run_trackd(out, sizeof(out), "-t", "x1", "-L", dir, NULL));
	EXPECT_EQ(2, run_trackd(out, sizeof(out), "-t", "1", "-L", dir, "--ring-size=5000", NULL));
	EXPECT_EQ(1, run_trackd(out, sizeof(out), "mark", "-L", dir, NULL));
	EXPECT_TRUE(strstr(out, "no trackd runs on") != NULL);

	pid_t w = busy_proc(&cmd, &ack, 1);
	ASSERT_LT(0, w);
	snprintf(tid, sizeof(tid), "%d,%d", w, w);
	EXPECT_EQ(1, run_trackd(out, sizeof(out), "-t", tid, "-L", dir, NULL));
	EXPECT_TRUE(strstr(out, "given twice") != NULL);
	if (!strstr(out, "given twice"))
		TH_LOG("%s", out);
	/* A thread is no root. */
	int tp[2];
	ASSERT_EQ(0, pipe(tp));
	pid_t tw = fork();
	if (!tw) {
		static char stack[16384];
		thread_tid = 0;
		pid_t t = clone(thread_fn_wait, stack + sizeof(stack),
				CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD |
					CLONE_SYSVSEM, NULL);
		(void)!write(tp[1], &t, sizeof(t));
		for (;;)
			pause();
	}
	pid_t t = 0;
	ASSERT_EQ((ssize_t)sizeof(t), read(tp[0], &t, sizeof(t)));
	ASSERT_LT(0, t);
	snprintf(tid, sizeof(tid), "%d", t);
	EXPECT_EQ(1, run_trackd(out, sizeof(out), "-t", tid, "-L", dir, NULL));
	EXPECT_TRUE(strstr(out, "is a thread of") != NULL);
	if (!strstr(out, "is a thread of"))
		TH_LOG("%s", out);
	/* trackd in the tree it would track (the test is its parent). */
	char self[32];
	snprintf(self, sizeof(self), "%d", getpid());
	EXPECT_EQ(1, run_trackd(out, sizeof(out), "-t", self, "-L", dir, NULL));
	EXPECT_TRUE(strstr(out, "trackd itself is in the tree") != NULL);
	if (!strstr(out, "trackd itself is in the tree"))
		TH_LOG("%s", out);
	/* A zombie root. */
	pid_t z = fork();
	if (!z)
		_exit(0);
	ASSERT_LT(0, z);
	siginfo_t si;
	ASSERT_EQ(0, waitid(P_PID, z, &si, WEXITED | WNOWAIT));
	snprintf(tid, sizeof(tid), "%d", z);
	EXPECT_EQ(1, run_trackd(out, sizeof(out), "-t", tid, "-L", dir, NULL));
	EXPECT_TRUE(strstr(out, "is a zombie") != NULL);
	(void)waitpid(z, NULL, 0);
	/* After the failures the log directory is free again. */
	EXPECT_LT(0, start_trackd(dir, w, NULL));
	EXPECT_LT(0, trackd_cmd("stop", dir, out, sizeof(out)));

	/* A failure inside the daemon (-d) is told on the terminal, and frees the lock at once. */
	char bad[PATH_MAX], file[PATH_MAX + 32];
	mkdtemp_in(bad, sizeof(bad), "badlog");
	snprintf(file, sizeof(file), "%s/changelog.img", bad);
	int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ASSERT_LE(0, fd);
	ASSERT_EQ(16, write(fd, "not a changelog!", 16));
	close(fd);
	snprintf(tid, sizeof(tid), "%d", w);
	for (int i = 0; i < 2; i++) {
		EXPECT_EQ(1, run_trackd(out, sizeof(out), "-t", tid, "-L", bad, "-d", NULL));
		EXPECT_TRUE(strstr(out, "changelog.img") != NULL && strstr(out, "magic") != NULL);
		EXPECT_TRUE(strstr(out, "already tracked") == NULL);
		if (!strstr(out, "magic"))
			TH_LOG("%s", out);
	}
	kill_reap_all();
}

TEST_TIMEOUT(zombie_child, 60)
{
	char dir[PATH_MAX], out[8192], want[64];
	int p[2], status;
	struct log l;

	prctl(PR_SET_CHILD_SUBREAPER, 1);
	mkdtemp_in(dir, sizeof(dir), "zombie");
	ASSERT_EQ(0, pipe2(p, O_CLOEXEC));
	/* A root with a zombie child: the zombie is not tracked (its exit is past). */
	pid_t r = fork();
	if (!r) {
		pid_t k = fork();
		if (!k)
			_exit(0);
		siginfo_t si;
		(void)waitid(P_PID, k, &si, WEXITED | WNOWAIT);
		(void)!write(p[1], &k, sizeof(k));
		for (;;)
			pause();
	}
	pid_t k = 0;
	ASSERT_EQ((ssize_t)sizeof(k), read(p[0], &k, sizeof(k)));
	ASSERT_LT(0, start_trackd(dir, r, "--no-dirty"));
	ASSERT_EQ(0, run_trackd(out, sizeof(out), "status", "-L", dir, NULL));
	snprintf(want, sizeof(want), "\ntracked 1 %d\n", r);
	EXPECT_TRUE(strstr(out, want) != NULL);
	if (!strstr(out, want))
		TH_LOG("status: %s", out);
	EXPECT_LT(0, trackd_cmd("stop", dir, out, sizeof(out)));
	ASSERT_EQ(0, log_load(dir, &l));
	for (size_t i = 0; i < l.n; i++)
		EXPECT_NE(k, l.r[i]->tgid);
	log_free(&l);
	kill(r, SIGKILL);
	(void)waitpid(r, &status, 0);
	kill_reap_all();
}

/* The state letter of /proc/PID/stat, or 0. */
static char proc_state(pid_t pid)
{
	char path[64], st[512], *q;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY);
	n = fd >= 0 ? read(fd, st, sizeof(st) - 1) : -1;
	if (fd >= 0)
		close(fd);
	st[n > 0 ? n : 0] = 0;
	q = strrchr(st, ')');
	return q && q[1] == ' ' ? q[2] : 0;
}

static int tracer_of(pid_t pid)
{
	char path[64], buf[4096], *p;
	int fd, n;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = 0;
	p = strstr(buf, "TracerPid:");
	return p ? atoi(p + 10) : -1;
}

/*
 * A root blocked in vfork cannot be seized: trackd starts at once anyway,
 * the root is left untraced and unarmed, and a mark arms it once it runs.
 */
TEST_TIMEOUT(vfork_root, 60)
{
	char dir[PATH_MAX], out[8192], want[64];
	int p[2], ready[2];
	struct timespec t0, t1;

	prctl(PR_SET_CHILD_SUBREAPER, 1);
	mkdtemp_in(dir, sizeof(dir), "vfork");
	ASSERT_EQ(0, pipe2(p, O_CLOEXEC));
	ASSERT_EQ(0, pipe2(ready, O_CLOEXEC));
	pid_t r = fork();
	if (!r) {
		char c;
		close(p[1]);
		close(ready[0]);
		/* The vfork child shares our memory: it only reads and exits. */
		if (vfork() == 0) {
			(void)!write(ready[1], "v", 1);
			(void)!read(p[0], &c, 1);
			_exit(0);
		}
		for (;;)
			pause();
	}
	close(ready[1]);
	char c;
	ASSERT_EQ(1, read(ready[0], &c, 1));
	/* Until the parent sleeps in vfork. */
	for (int i = 0; i < 1000 && proc_state(r) != 'D'; i++)
		usleep(1000);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ASSERT_LT(0, start_trackd(dir, r, NULL));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	EXPECT_LT(t1.tv_sec - t0.tv_sec, 5);
	EXPECT_EQ(0, tracer_of(r));
	ASSERT_EQ(0, run_trackd(out, sizeof(out), "status", "-L", dir, NULL));
	snprintf(want, sizeof(want), "\nunarmed %d ", r);
	EXPECT_TRUE(strstr(out, want) != NULL);
	if (!strstr(out, want))
		TH_LOG("status: %s", out);
	/* The vfork child exits; the next mark arms the parent. */
	ASSERT_EQ(1, write(p[1], "x", 1));
	for (int i = 0; i < 1000 && tracer_of(r) == 0 && proc_state(r) != 'S'; i++)
		usleep(1000);
	EXPECT_LT(0, trackd_cmd("mark", dir, out, sizeof(out)));
	ASSERT_EQ(0, run_trackd(out, sizeof(out), "status", "-L", dir, NULL));
	snprintf(want, sizeof(want), "\narmed 1 %d\n", r);
	EXPECT_TRUE(strstr(out, want) != NULL);
	if (!strstr(out, want))
		TH_LOG("status: %s", out);
	EXPECT_EQ(0, tracer_of(r));
	EXPECT_LT(0, trackd_cmd("stop", dir, out, sizeof(out)));
	kill_reap_all();
}

/* Run ckpt (next to trackd) with args; output into out. Returns its exit code. */
static int run_ckpt_cmd(char *out, size_t len, const char *const *args)
{
	char ckpt[PATH_MAX + 32], *slash;
	const char *argv[16];
	int argc = 0;

	snprintf(ckpt, sizeof(ckpt), "%s", getenv("CKPT") ? getenv("CKPT") : trackd_bin);
	if (!getenv("CKPT")) {
		slash = strrchr(ckpt, '/');
		snprintf(slash + 1, sizeof(ckpt) - (slash + 1 - ckpt), "ckpt");
	}
	argv[argc++] = ckpt;
	while (argc < 15 && *args)
		argv[argc++] = *args++;
	argv[argc] = NULL;
	return run_capture(argv, out, len);
}

/* What the dump_since_log victim shares with the test. */
struct slv {
	uint64_t region;
	volatile int written;
};

/* Populates 64 pages, then writes pages 5 and 9 at each SIGUSR1. No fd leads outside. */
static void since_log_victim(struct slv *sh)
{
	sigset_t set;
	int null = open("/dev/null", O_RDWR);

	dup2(null, 0);
	dup2(null, 1);
	dup2(null, 2);
	syscall(SYS_close_range, 3, ~0U, 0);
	setsid();
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, NULL);
	char *r = mmap(NULL, DATA_PAGES * PAGE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	memset(r, 1, DATA_PAGES * PAGE);
	sh->region = (uint64_t)r;
	for (;;) {
		if (sigwaitinfo(&set, NULL) != SIGUSR1)
			continue;
		r[5 * PAGE] += 1;
		r[9 * PAGE] += 1;
		sh->written++;
	}
}

static bool wait_written(struct slv *sh, int want)
{
	for (int i = 0; i < 5000 && sh->written < want; i++)
		usleep(1000);
	return sh->written >= want;
}

/*
 * `ckpt dump --since-log`: the inventory names the log and the MARK taken
 * while the tree was frozen, and write tracking is re-armed by the dump:
 * the next scan reports exactly what was written after it. A log of other
 * roots, or none, fails the dump and the task runs on.
 */
TEST_TIMEOUT(dump_since_log, 90)
{
	char dir[PATH_MAX], log1[PATH_MAX + 16], log2[PATH_MAX + 16], img[PATH_MAX + 16];
	char out[16384], pid_s[32];
	struct log l;

	prctl(PR_SET_CHILD_SUBREAPER, 1);
	mkdtemp_in(dir, sizeof(dir), "sincelog");
	snprintf(log1, sizeof(log1), "%s/log1", dir);
	snprintf(log2, sizeof(log2), "%s/log2", dir);
	snprintf(img, sizeof(img), "%s/img", dir);
	struct slv *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
			      -1, 0);
	ASSERT_NE(MAP_FAILED, sh);
	fflush(NULL);
	pid_t v = fork();
	if (!v)
		since_log_victim(sh);
	ASSERT_LT(0, v);
	for (int i = 0; i < 5000 && !sh->region; i++)
		usleep(1000);
	ASSERT_NE(0, sh->region);
	ASSERT_LT(0, start_trackd(log1, v, NULL));
	snprintf(pid_s, sizeof(pid_s), "%d", v);

	/* A log of another tree, and no log at all: refused, the task runs on. */
	int ocmd, oack;
	pid_t other = busy_proc(&ocmd, &oack, 1);
	ASSERT_LT(0, other);
	ASSERT_LT(0, start_trackd(log2, other, "--no-dirty"));
	EXPECT_EQ(1, run_ckpt_cmd(out, sizeof(out), (const char *const[]){ "dump", "-t", pid_s,
		  "-D", img, "--leave-running", "--since-log", log2, NULL }));
	EXPECT_TRUE(strstr(out, "tracks the roots") != NULL);
	EXPECT_EQ(1, run_ckpt_cmd(out, sizeof(out), (const char *const[]){ "dump", "-t", pid_s,
		  "-D", img, "--leave-running", "--since-log", "/nonexistent/log", NULL }));
	EXPECT_TRUE(strstr(out, "cannot open the changelog directory") != NULL);
	ASSERT_EQ(0, kill(v, SIGUSR1));
	ASSERT_TRUE(wait_written(sh, 1));

	ASSERT_EQ(0, run_ckpt_cmd(out, sizeof(out), (const char *const[]){ "dump", "-t", pid_s,
		  "-D", img, "--leave-running", "--since-log", log1, NULL }));
	/* The inventory names the log and its MARK. */
	int dfd = open(img, O_RDONLY | O_DIRECTORY);
	InventoryEntry *inv = NULL;
	ASSERT_EQ(0, img_load_one(dfd, IMG_INVENTORY, 0, (void **)&inv));
	close(dfd);
	ASSERT_EQ(0, log_load(log1, &l));
	uint64_t mark = 0;
	for (size_t i = 0; i < l.n; i++)
		if (l.r[i]->kind == CL_MARK)
			mark = l.r[i]->seq;
	EXPECT_TRUE(inv->has_changelog_seq && inv->changelog_seq == mark && mark);
	EXPECT_TRUE(inv->changelog_boot_id && !strcmp(inv->changelog_boot_id, l.r[0]->boot_id));
	EXPECT_TRUE(inv->has_changelog_start_ns &&
		    inv->changelog_start_ns == l.r[0]->realtime_ns);
	img_free_kind(IMG_INVENTORY, inv);
	log_free(&l);

	/* Re-armed by the dump: nothing written since, then exactly pages 5 and 9. */
	struct dirty_run range = { sh->region, sh->region + DATA_PAGES * PAGE }, *runs = NULL;
	size_t nr = 0;
	EXPECT_EQ(0, dirty_scan(v, &range, 1, false, &runs, &nr));
	EXPECT_EQ(0, nr);
	free(runs);
	ASSERT_EQ(0, kill(v, SIGUSR1));
	ASSERT_TRUE(wait_written(sh, 2));
	runs = NULL;
	EXPECT_EQ(0, dirty_scan(v, &range, 1, true, &runs, &nr));
	EXPECT_EQ(2, nr);
	if (nr == 2) {
		EXPECT_EQ(sh->region + 5 * PAGE, runs[0].start);
		EXPECT_EQ(sh->region + 6 * PAGE, runs[0].end);
		EXPECT_EQ(sh->region + 9 * PAGE, runs[1].start);
		EXPECT_EQ(sh->region + 10 * PAGE, runs[1].end);
	}
	free(runs);
	EXPECT_LT(0, trackd_cmd("stop", log1, out, sizeof(out)));
	EXPECT_LT(0, trackd_cmd("stop", log2, out, sizeof(out)));
	kill_reap_all();
}

/* ------------------------------------------------------------------ mark_new_maps */

#define NM_PAGES 16

/* What M tells the test, through a shared page. */
struct nm_report {
	uint64_t a, b, z, brk_end;
};

/* M: maps A, then on each command byte does one thing and acks with it. */
static void nm_main(struct nm_report *rep, int cmd, int ack)
{
	size_t len = NM_PAGES * PAGE;
	char c;

	rep->a = (uint64_t)mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
				-1, 0);
	memset((void *)rep->a, 1, len);
	(void)!write(ack, "r", 1);
	while (read(cmd, &c, 1) == 1) {
		void *p;
		switch (c) {
		case 's':	/* a scratch mapping, as the dump's parasite makes */
			p = mmap(NULL, len + PAGE, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (p == MAP_FAILED || mprotect(p, 2 * PAGE, PROT_READ) ||
			    munmap(p, len + PAGE))
				c = '!';
			break;
		case 'n':
			p = mmap(NULL, len, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (p == MAP_FAILED)
				c = '!';
			else
				memset(p, 2, len);
			rep->b = (uint64_t)p;
			break;
		case 'z':
			p = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			rep->z = (uint64_t)p;
			if (p == MAP_FAILED)
				c = '!';
			break;
		case 'p':
			if (mprotect((void *)rep->z, len, PROT_READ | PROT_WRITE))
				c = '!';
			else
				memset((void *)rep->z, 3, len);
			break;
		case 'b':	/* the heap grows past what was armed */
			p = sbrk(len);
			if (p == (void *)-1)
				c = '!';
			else
				memset(p, 4, len);
			rep->brk_end = (uint64_t)p + len;
			break;
		}
		(void)!write(ack, &c, 1);
	}
	_exit(0);
}

/* Whether the mapping of pid holding addr is registered for write-protect: 1, 0, or -1 (none). */
static int vma_uw(pid_t pid, uint64_t addr)
{
	char path[64], line[512];
	bool in = false;
	int ret = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/smaps", pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long s, e;
		/* A mapping's first line: no field name ("Rss:", "AnonHugePages:") reads so. */
		if (sscanf(line, "%llx-%llx ", &s, &e) == 2) {
			in = s <= addr && addr < e;
			continue;
		}
		if (in && !strncmp(line, "VmFlags:", 8)) {
			ret = strstr(line, " uw") != NULL;
			break;
		}
	}
	fclose(f);
	return ret;
}

/* ARMED records of tgid after seq: how many, and whether one covers [s, e). */
static int armed_after(const char *dir, uint64_t seq, pid_t tgid, uint64_t s, uint64_t e,
		       bool *ret_covers)
{
	struct log l;
	int n = 0;

	*ret_covers = false;
	if (log_load(dir, &l))
		return -1;
	for (size_t i = 0; i < l.n; i++) {
		const ChangelogEntry *r = l.r[i];
		if (r->seq <= seq || r->kind != CL_ARMED || r->tgid != tgid)
			continue;
		n++;
		for (size_t j = 0; j + 1 < r->n_ranges; j += 2)
			if (r->ranges[j] <= s && e <= r->ranges[j + 1])
				*ret_covers = true;
	}
	log_free(&l);
	return n;
}

/* tgid's userfaultfd, from trackd ("uffd TGID"), or -1. */
static int trackd_uffd(const char *dir, pid_t tgid)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char req[32], ans[256], cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { ans, sizeof(ans) - 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	int c, n, ufd = -1;

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%.80s/trackd.sock", dir);
	c = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (c < 0)
		return -1;
	n = snprintf(req, sizeof(req), "uffd %d", tgid);
	if (!connect(c, (struct sockaddr *)&sun, sizeof(sun)) && send(c, req, n, 0) == n &&
	    recvmsg(c, &mh, MSG_CMSG_CLOEXEC) > 0) {
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
		if (cm && cm->cmsg_type == SCM_RIGHTS)
			memcpy(&ufd, CMSG_DATA(cm), sizeof(int));
	}
	close(c);
	return ufd;
}

/* A mark through trackd in dir: its seq, which must come after prev. */
static long long mark_after(struct th_meta *_metadata, const char *dir, long long prev)
{
	char out[4096];
	long long seq = trackd_cmd("mark", dir, out, sizeof(out));

	ASSERT_LT(prev, seq);
	return seq;
}

/* The mark seq armed tgid's one new range [start, start + len), and covered it. */
static void expect_armed_one(struct th_meta *_metadata, const char *dir, long long seq,
			     pid_t tgid, uint64_t start, uint64_t len)
{
	bool covers;

	EXPECT_EQ(1, armed_after(dir, seq, tgid, start, start + len, &covers));
	EXPECT_TRUE(covers);
}

TEST_TIMEOUT(mark_new_maps, 60)
{
	char dir[PATH_MAX], out[4096], c;
	uint64_t len = NM_PAGES * PAGE;
	int cmd[2], ack[2], ufd;
	bool covers;

	prctl(PR_SET_CHILD_SUBREAPER, 1);
	mkdtemp_in(dir, sizeof(dir), "mark-new-maps");
	struct nm_report *rep = mmap(NULL, sizeof(*rep), PROT_READ | PROT_WRITE,
				     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, (void *)rep);
	ASSERT_EQ(0, pipe2(cmd, O_CLOEXEC));
	ASSERT_EQ(0, pipe2(ack, O_CLOEXEC));
	fflush(NULL);
	pid_t m = fork();
	if (!m) {
		close(cmd[1]);
		close(ack[0]);
		nm_main(rep, cmd[0], ack[1]);
	}
	ASSERT_LT(0, m);
	close(cmd[0]);
	close(ack[1]);
	ASSERT_EQ(1, read(ack[0], &c, 1));
	ASSERT_EQ('r', c);
#define NM_STEP(x)                                                                        \
	do {                                                                              \
		c = (x);                                                                  \
		ASSERT_EQ(1, write(cmd[1], &c, 1));                                       \
		ASSERT_EQ(1, read(ack[0], &c, 1));                                        \
		ASSERT_EQ((x), c);                                                        \
	} while (0)

	/* Armed at start; a mark with no mapping change since adds nothing. */
	ASSERT_LT(0, start_trackd(dir, m, NULL));
	EXPECT_EQ(1, vma_uw(m, rep->a));
	long long m1 = mark_after(_metadata, dir, 0);
	EXPECT_EQ(0, armed_after(dir, m1, m, 0, 0, &covers));

	/*
	 * A unregistered behind trackd's back, which has no record of it: a
	 * mark that reads M's mappings registers A again, one that skips M
	 * does not.
	 */
	ufd = trackd_uffd(dir, m);
	ASSERT_LE(0, ufd);
	struct uffdio_range r = { .start = rep->a, .len = len };
	ASSERT_EQ(0, ioctl(ufd, UFFDIO_UNREGISTER, &r));
	close(ufd);
	ASSERT_EQ(0, vma_uw(m, rep->a));
	long long m2 = mark_after(_metadata, dir, m1);
	EXPECT_EQ(0, vma_uw(m, rep->a));
	EXPECT_EQ(0, armed_after(dir, m2, m, 0, 0, &covers));

	/* A mapping made and unmapped again by one thread left nothing to register. */
	NM_STEP('s');
	long long m3 = mark_after(_metadata, dir, m2);
	EXPECT_EQ(0, vma_uw(m, rep->a));
	EXPECT_EQ(0, armed_after(dir, m3, m, 0, 0, &covers));

	/* A new mapping: the next mark registers it (and reads all of M's mappings). */
	NM_STEP('n');
	EXPECT_EQ(0, vma_uw(m, rep->b));
	long long m4 = mark_after(_metadata, dir, m3);
	EXPECT_EQ(1, vma_uw(m, rep->b));
	EXPECT_EQ(1, vma_uw(m, rep->a));
	expect_armed_one(_metadata, dir, m4, m, rep->b, len);

	/* PROT_NONE is left out, until an mprotect opens it. */
	NM_STEP('z');
	long long m5 = mark_after(_metadata, dir, m4);
	EXPECT_EQ(0, vma_uw(m, rep->z));
	NM_STEP('p');
	long long m6 = mark_after(_metadata, dir, m5);
	EXPECT_EQ(1, vma_uw(m, rep->z));
	expect_armed_one(_metadata, dir, m6, m, rep->z, len);

	/* The heap's growth is registered too. */
	NM_STEP('b');
	mark_after(_metadata, dir, m6);
	EXPECT_EQ(1, vma_uw(m, rep->brk_end - 1));
#undef NM_STEP

	EXPECT_LT(0, trackd_cmd("stop", dir, out, sizeof(out)));
	close(cmd[1]);
	close(ack[0]);
	kill_reap_all();
}

static void setup_tmp(void) __attribute__((constructor));
static void setup_tmp(void)
{
	const char *t = getenv("TMPDIR");

	find_trackd();
	main_pid = getpid();
	snprintf(tmp_root, sizeof(tmp_root), "%s/trackd-test.XXXXXX", t ? t : "/tmp");
	if (!mkdtemp(tmp_root)) {
		perror("mkdtemp");
		exit(1);
	}
}

static void cleanup_tmp(void) __attribute__((destructor));
static void cleanup_tmp(void)
{
	char cmd[PATH_MAX + 16];

	if (getenv("TRACKD_KEEP") || !tmp_root[0] || getpid() != main_pid)
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp_root);
	(void)!system(cmd);
}

TEST_HARNESS_MAIN
