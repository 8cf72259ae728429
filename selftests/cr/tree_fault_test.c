// SPDX-License-Identifier: MIT
/*
 * tree_fault_test: failures on a whole tree, threads included. The victim:
 *
 *	R	the root (leads its session); a shared anonymous mapping every task uses
 *	  Z	an unreaped zombie child (exit 7)
 *	  A	wrote a message into a pipe whose read end only B holds
 *	  B	3 threads: its main thread and 2 workers that tick (futex wake + 1 ms nanosleep)
 *	    G	a grandchild
 *
 * Every task has a private memory pattern of its own. Asked to verify (SIGUSR2 from the
 * runner to R, passed on by each task to its children), each checks its PID, parent, group,
 * session and pattern, and the shared mapping's pattern; G then writes a mark into the
 * shared mapping, which R reads once G is gone (the mapping is still shared); B reads A's
 * message from the pipe, checks that it has exactly its 3 threads and that both workers
 * still tick; R checks Z's wait status. A task's verdict is its exit status, which its
 * parent waits for (bounded) and folds into its own.
 *
 *   dump_<point>      `ckpt dump` fails at <point> (CKPT_FAULT=<point> or signal:<point>):
 *                     non-zero exit naming the point, every task unharmed
 *                     (cr_check_unharmed_trees), no thread traced or stopped, and the tree
 *                     verifies.
 *   restore_<point>   after a good dump, `ckpt restore` fails at <point> (CKPT_FAULT=<point>,
 *                     or signal:<point> at restore-tree, -seized and -restorers): non-zero
 *                     exit (not killed by the signal) naming the point, no pid file, and once
 *                     ckpt is gone no PID or TID of the tree exists, not even as a zombie
 *                     (ckpt reaps what it made); then a plain restore from the same images
 *                     works and the tree verifies.
 *   hostile_<what>    the images of a non-root task are damaged: G's pages file one page
 *                     short; in pstree.img a child whose parent comes after it, one whose
 *                     parent does not exist, a TID listed twice, the zombie made a root;
 *                     core-B.img listing one thread less than pstree.img. The restore fails
 *                     naming the image file (and the field), leaving no task behind.
 *                     hostile_core_workers_rseq: both of B's workers have an rseq area the
 *                     kernel refuses, so two threads fail in the restorer at once; the
 *                     error names each worker's TID and carries the rseq message whole.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cr.h"
#include "cr_img.h"
#include "core.pb-c.h"
#include "pstree.pb-c.h"

CR_FIXTURE(tree_fault);

#define PAGE		4096UL
#define SETUP_MS	5000		/* the tree is set up within */
#define VERIFY_MS	8000		/* R's children report within (the runner allows 10 s) */
#define LEVEL_MS	2000		/* ...each level below 2 s sooner */
#define NR_WORKERS	2		/* B's threads besides its main thread */
#define NR_IDS		(5 + NR_WORKERS)	/* R Z A B G and B's workers */
#define PAT_SIZE	(3 * PAGE + 321)
#define SHM_PAT_SIZE	(3 * PAGE)
#define ZOMBIE_EXIT	7
#define G_MARK		0x6d61726bU
#define SHM_SEED	99

/* The shared anonymous mapping (MAP_SHARED, created by R before it forks). */
struct shared {
	uint32_t set_up;		/* A, B and G count themselves in when set up */
	uint32_t g_mark;		/* G writes G_MARK once asked to verify */
	pid_t g;			/* written by B */
	pid_t workers[NR_WORKERS];	/* written by B */
	unsigned char pat[SHM_PAT_SIZE] __attribute__((aligned(4096)));
};

/* A's message to B, queued in the pipe at dump time. */
struct msg {
	char tag[8];
	pid_t from;
};

static struct shared *shm;
static unsigned char pat[PAT_SIZE];	/* each task's own */
static int pipe_fds[2] = { -1, -1 };

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

static uint32_t load32(const uint32_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

/* Shared futex (not _PRIVATE): the counters of the shared mapping cross processes. */
static void count_up(uint32_t *p)
{
	__atomic_add_fetch(p, 1, __ATOMIC_RELEASE);
	(void)syscall(SYS_futex, p, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

/* Waits until *p >= want or the deadline; true if it got there. */
static bool wait_count(uint32_t *p, uint32_t want, long deadline)
{
	uint32_t v;

	while ((v = load32(p)) < want) {
		long left = deadline - now_ms();
		struct timespec ts;

		if (left <= 0)
			return false;
		ts.tv_sec = left / 1000;
		ts.tv_nsec = left % 1000 * 1000000L;
		(void)syscall(SYS_futex, p, FUTEX_WAIT, v, &ts, NULL, 0);
	}
	return true;
}

/* Forks a child that runs fn(arg) with no signal blocked and exits with its result. */
static pid_t spawn(int (*fn)(void *), void *arg)
{
	pid_t pid = fork();

	CR_SETUP(pid >= 0, "fork");
	if (pid == 0) {
		sigset_t none;

		sigemptyset(&none);
		CR_SETUP(!sigprocmask(SIG_SETMASK, &none, NULL), "sigprocmask");
		_exit(fn(arg));
	}
	return pid;
}

/* Waits (bounded) until child pid exited; true if it did. Does not reap it. */
static bool wait_exited(pid_t pid, long deadline)
{
	int pidfd = syscall(SYS_pidfd_open, pid, 0), ret;
	struct pollfd pfd = { .fd = pidfd, .events = POLLIN };
	long left;

	if (pidfd < 0)
		return false;
	do {
		left = deadline - now_ms();
		ret = poll(&pfd, 1, left > 0 ? left : 0);
	} while (ret < 0 && errno == EINTR);
	close(pidfd);
	return ret == 1;
}

/* Reaps child pid (bounded; killed if late), which must exit 0: it checked out. */
static void reap_kid(pid_t pid, const char *what, long deadline)
{
	int status = 0;

	if (!wait_exited(pid, deadline)) {
		CR_CHECK(0, "%s %d did not exit in time (killed)", what, pid);
		kill(pid, SIGKILL);
	}
	if (waitpid(pid, &status, 0) != pid) {
		CR_CHECK(0, "waitpid %s %d: %s", what, pid, strerror(errno));
		return;
	}
	CR_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		 "%s %d: wait status 0x%x (its own report is above)", what, pid, status);
}

/* What every task checks about itself. */
struct self {
	pid_t pid, ppid, pgid, sid;
	unsigned seed;
};

static void self_record(struct self *s, unsigned seed)
{
	s->pid = getpid();
	s->ppid = getppid();
	s->pgid = getpgrp();
	s->sid = getsid(0);
	s->seed = seed;
	cr_fill(pat, sizeof(pat), seed);
}

static void self_check(const struct self *s, const char *who)
{
	long off = cr_check_pattern(pat, sizeof(pat), s->seed);

	CR_CHECK(getpid() == s->pid, "%s: getpid() %d, expected %d", who, getpid(), s->pid);
	CR_CHECK(getppid() == s->ppid, "%s: parent %d, expected %d", who, getppid(), s->ppid);
	CR_CHECK(getpgrp() == s->pgid, "%s: group %d, expected %d", who, getpgrp(), s->pgid);
	CR_CHECK(getsid(0) == s->sid, "%s: session %d, expected %d", who, getsid(0), s->sid);
	CR_CHECK(off < 0, "%s: private pattern differs at byte %ld", who, off);
	off = cr_check_pattern(shm->pat, sizeof(shm->pat), SHM_SEED);
	CR_CHECK(off < 0, "%s: shared mapping's pattern differs at byte %ld", who, off);
}

/* ---- the tasks ---- */

static int z_main(void *arg)
{
	return ZOMBIE_EXIT;
}

static int g_main(void *arg)
{
	static struct self s;

	self_record(&s, 4);
	count_up(&shm->set_up);
	cr_victim_wait();
	self_check(&s, "G");
	__atomic_store_n(&shm->g_mark, G_MARK, __ATOMIC_RELEASE);
	return cr_victim_result();
}

static int a_main(void *arg)
{
	static struct self s;
	struct msg m = { .tag = "from A", .from = getpid() };

	close(pipe_fds[0]);
	CR_SETUP(write(pipe_fds[1], &m, sizeof(m)) == sizeof(m), "write to B");
	self_record(&s, 2);
	count_up(&shm->set_up);
	cr_victim_wait();
	self_check(&s, "A");
	close(pipe_fds[1]);
	return cr_victim_result();
}

static struct worker {
	pthread_t th;
	pid_t tid;
	uint32_t ticks;
} workers[NR_WORKERS];
static uint32_t workers_stop;

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct timespec ms = { 0, 1000000L };

	w->tid = gettid();
	while (!load32(&workers_stop)) {
		count_up(&w->ticks);
		(void)nanosleep(&ms, NULL);
	}
	return NULL;
}

/* B's threads are exactly its main thread and its workers. */
static void check_threads(void)
{
	int seen = 0, n = 0;
	struct dirent *de;
	DIR *d = opendir("/proc/self/task");

	CR_CHECK(d, "B: opendir /proc/self/task: %s", strerror(errno));
	if (!d)
		return;
	while ((de = readdir(d))) {
		pid_t tid = atoi(de->d_name);

		if (de->d_name[0] == '.')
			continue;
		n++;
		if (tid == getpid())
			continue;
		for (int i = 0; i < NR_WORKERS; i++)
			if (workers[i].tid == tid)
				seen++;
	}
	closedir(d);
	CR_CHECK(n == 1 + NR_WORKERS && seen == NR_WORKERS,
		 "B: %d threads, %d of its %d workers among them", n, seen, NR_WORKERS);
}

static int b_main(void *arg)
{
	pid_t a = (pid_t)(long)arg;		/* the writer of the pipe */
	static struct self s;
	sigset_t usr2, old;
	struct msg m = { .from = 0 };
	struct pollfd pfd;
	pid_t g;
	long deadline;
	ssize_t n;

	close(pipe_fds[1]);
	/* G first: fork from a process that has one thread. */
	g = spawn(g_main, NULL);
	shm->g = g;
	/* The verify request is the main thread's: workers start with SIGUSR2 blocked. */
	sigemptyset(&usr2);
	sigaddset(&usr2, SIGUSR2);
	CR_SETUP(!pthread_sigmask(SIG_BLOCK, &usr2, &old), "pthread_sigmask");
	for (int i = 0; i < NR_WORKERS; i++) {
		errno = pthread_create(&workers[i].th, NULL, worker_main, &workers[i]);
		CR_SETUP(!errno, "pthread_create");
	}
	CR_SETUP(!pthread_sigmask(SIG_SETMASK, &old, NULL), "pthread_sigmask");
	deadline = now_ms() + SETUP_MS;
	for (int i = 0; i < NR_WORKERS; i++) {
		CR_SETUP(wait_count(&workers[i].ticks, 1, deadline), "worker %d does not tick", i);
		shm->workers[i] = workers[i].tid;
	}
	self_record(&s, 3);
	count_up(&shm->set_up);

	cr_victim_wait();
	deadline = now_ms() + VERIFY_MS - LEVEL_MS;
	CR_CHECK(!kill(g, SIGUSR2), "B: SIGUSR2 to G %d: %s", g, strerror(errno));
	self_check(&s, "B");
	check_threads();
	for (int i = 0; i < NR_WORKERS; i++) {
		uint32_t t = load32(&workers[i].ticks);

		CR_CHECK(wait_count(&workers[i].ticks, t + 1, deadline),
			 "B: worker %d (tid %d) does not run: ticks stay at %u", i,
			 workers[i].tid, t);
	}
	/* A's message, queued in the pipe since before the dump. */
	pfd = (struct pollfd){ .fd = pipe_fds[0], .events = POLLIN };
	n = poll(&pfd, 1, deadline - now_ms() > 0 ? deadline - now_ms() : 0) == 1 ?
	    read(pipe_fds[0], &m, sizeof(m)) : -1;
	CR_CHECK(n == sizeof(m) && !strcmp(m.tag, "from A") && m.from == a,
		 "B: pipe message: read %zd bytes '%.8s' from %d, expected '%s' from A %d", n,
		 m.tag, m.from, "from A", a);
	__atomic_store_n(&workers_stop, 1, __ATOMIC_RELEASE);
	for (int i = 0; i < NR_WORKERS; i++) {
		struct timespec ts = { deadline / 1000, deadline % 1000 * 1000000L };
		int err = pthread_clockjoin_np(workers[i].th, NULL, CLOCK_MONOTONIC, &ts);

		CR_CHECK(!err, "B: joining worker %d (tid %d): %s", i, workers[i].tid,
			 strerror(err));
	}
	reap_kid(g, "G", deadline);
	return cr_victim_result();
}

static int victim_tree(void *arg)
{
	static struct self s;
	char path[PATH_MAX];
	pid_t z, a, b;
	long deadline;
	int fd, status = 0;

	shm = mmap(NULL, sizeof(*shm), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CR_SETUP(shm != MAP_FAILED, "mmap shared");
	cr_fill(shm->pat, sizeof(shm->pat), SHM_SEED);
	CR_SETUP(!pipe(pipe_fds), "pipe");

	z = spawn(z_main, NULL);
	a = spawn(a_main, NULL);
	b = spawn(b_main, (void *)(long)a);
	close(pipe_fds[0]);
	close(pipe_fds[1]);
	deadline = now_ms() + SETUP_MS;
	CR_SETUP(wait_count(&shm->set_up, 3, deadline), "%u of A, B, G set up in time",
		 load32(&shm->set_up));
	CR_SETUP(wait_exited(z, deadline), "Z %d did not exit", z);
	self_record(&s, 1);

	/* For the runner: which PID is which. */
	snprintf(path, sizeof(path), "%s/tree.info", cr_victim_dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	CR_SETUP(fd >= 0, "create %s", path);
	CR_SETUP(dprintf(fd, "%d %d %d %d %d", getpid(), z, a, b, shm->g) > 0, "write");
	for (int i = 0; i < NR_WORKERS; i++)
		CR_SETUP(dprintf(fd, " %d", shm->workers[i]) > 0, "write");
	close(fd);

	cr_victim_ready_wait();
	deadline = now_ms() + VERIFY_MS;
	CR_CHECK(!kill(a, SIGUSR2), "R: SIGUSR2 to A %d: %s", a, strerror(errno));
	CR_CHECK(!kill(b, SIGUSR2), "R: SIGUSR2 to B %d: %s", b, strerror(errno));
	self_check(&s, "R");
	CR_CHECK(waitpid(z, &status, WNOHANG) == z && WIFEXITED(status) &&
		 WEXITSTATUS(status) == ZOMBIE_EXIT, "R: zombie %d: waitpid: %s, status 0x%x", z,
		 strerror(errno), status);
	reap_kid(a, "A", deadline);
	reap_kid(b, "B", deadline);
	/* G wrote it after the restore: the mapping is one object across the tree. */
	CR_CHECK(load32(&shm->g_mark) == G_MARK, "R: G's mark in the shared mapping is %#x",
		 load32(&shm->g_mark));
	return cr_victim_result();
}

/* ---- runner side ---- */

enum { ID_R, ID_Z, ID_A, ID_B, ID_G, ID_W0 };

_Static_assert(NR_WORKERS == 2, "id_names names two workers");
static pid_t ids[NR_IDS];		/* see tree.info */
static const char *const id_names[NR_IDS] = { "R", "Z", "A", "B", "G", "B's worker 0",
					      "B's worker 1" };

static int read_info(struct cr_run *r)
{
	char path[PATH_MAX + 16], buf[256], *p = buf, *end;

	snprintf(path, sizeof(path), "%s/tree.info", r->env->dir);
	if (cr_read_file(path, buf, sizeof(buf)) <= 0)
		return cr_fail(r, "cannot read the victim's %s", path);
	for (int i = 0; i < NR_IDS; i++, p = end) {
		ids[i] = strtol(p, &end, 10);
		if (end == p || ids[i] <= 0)
			return cr_fail(r, "%s: bad entry %d in '%s'", path, i, buf);
	}
	cr_note(r, "tree: R %d Z %d A %d B %d G %d, B's workers %d %d", ids[ID_R], ids[ID_Z],
		ids[ID_A], ids[ID_B], ids[ID_G], ids[ID_W0], ids[ID_W0 + 1]);
	return 0;
}

/* The point a fault names: "signal:x" -> "x". */
static const char *point_of(const char *fault)
{
	return strncmp(fault, "signal:", 7) ? fault : fault + 7;
}

/* Every thread of every live task of the victim's tree is neither traced nor stopped, and
 * B still has its workers. */
static int check_threads_free(struct cr_run *r)
{
	static const int procs[] = { ID_R, ID_A, ID_B, ID_G };

	for (size_t i = 0; i < sizeof(procs) / sizeof(procs[0]); i++) {
		pid_t pid = ids[procs[i]];
		char path[64];
		struct dirent *de;
		int n = 0;
		DIR *d;

		snprintf(path, sizeof(path), "/proc/%d/task", pid);
		d = opendir(path);
		if (!d)
			return cr_fail(r, "%s %d: %s: %s", id_names[procs[i]], pid, path,
				       strerror(errno));
		while ((de = readdir(d))) {
			char spath[300], status[4096], state[32] = "?", tracer[32] = "?";

			if (de->d_name[0] == '.')
				continue;
			n++;
			snprintf(spath, sizeof(spath), "/proc/%d/task/%s/status", pid, de->d_name);
			if (cr_read_file(spath, status, sizeof(status)) <= 0)
				continue;	/* the thread is gone: counted below */
			cr_status_field(status, "State", state, sizeof(state));
			cr_status_field(status, "TracerPid", tracer, sizeof(tracer));
			if (strcmp(tracer, "0") || state[0] == 't' || state[0] == 'T') {
				closedir(d);
				return cr_fail(r, "thread %s of %s %d after the failed dump: "
					       "State %s, TracerPid %s", de->d_name,
					       id_names[procs[i]], pid, state, tracer);
			}
		}
		closedir(d);
		if (n != (pid == ids[ID_B] ? 1 + NR_WORKERS : 1))
			return cr_fail(r, "%s %d has %d threads after the failed dump",
				       id_names[procs[i]], pid, n);
	}
	cr_note(r, "no thread of the tree traced or stopped");
	return 0;
}

/*
 * After a failed restore, with ckpt gone: no PID or TID of the tree exists, not even as a
 * zombie (ckpt reaps what it created); then (cr_expect_pid_free, which reaps first) they
 * are free, and the runner has no child left.
 */
static int expect_tree_gone(struct cr_run *r, const char *tag)
{
	char path[PATH_MAX], left_behind[1024] = "";
	size_t len = 0;
	int left;

	for (int i = 0; i < NR_IDS; i++) {
		char spath[64], status[2048], state[64] = "?", ppid[32] = "?", tracer[32] = "?";

		if (kill(ids[i], 0) < 0 && errno == ESRCH)
			continue;
		snprintf(spath, sizeof(spath), "/proc/%d/status", ids[i]);
		if (cr_read_file(spath, status, sizeof(status)) > 0) {
			cr_status_field(status, "State", state, sizeof(state));
			cr_status_field(status, "PPid", ppid, sizeof(ppid));
			cr_status_field(status, "TracerPid", tracer, sizeof(tracer));
		}
		len += snprintf(left_behind + len, sizeof(left_behind) - len,
				"%s%s %d (State: %s, PPid %s, TracerPid %s)", len ? "; " : "",
				id_names[i], ids[i], state, ppid, tracer);
		if (len >= sizeof(left_behind))
			break;
	}
	if (len)
		return cr_fail(r, "ckpt %s failed and exited, but left behind: %s", tag,
			       left_behind);
	for (int i = 0; i < NR_IDS; i++)
		if (cr_expect_pid_free(r, ids[i], "the restore failed"))
			return -1;
	left = cr_count_children();
	if (left)
		return cr_fail(r, "%d process(es) left after ckpt %s failed", left, tag);
	snprintf(path, sizeof(path), "%s/%s.pid", r->env->dir, tag);
	if (!access(path, F_OK))
		return cr_fail(r, "ckpt %s failed but wrote the pid file %s", tag, path);
	return 0;
}

/* Starts the victim and dumps its tree, which is killed and reaped. */
static int dump_tree(struct cr_run *r)
{
	pid_t root;
	int status;

	if (cr_victim_start(r) || read_info(r))
		return -1;
	root = r->victim;
	if (cr_dump(r, "dump", root, false, NULL, &status) || cr_expect_ok(r, "dump", status))
		return -1;
	if (r->nr_dumped != 5)
		return cr_fail(r, "the dump recorded %d tasks in the tree, expected 5",
			       r->nr_dumped);
	return cr_reap_dumped(r, root);
}

/* ckpt restore -D img -d --pidfile DIR/<tag>.pid with CKPT_FAULT=fault (may be NULL). */
static int restore_with(struct cr_run *r, const char *tag, const char *fault, int *status)
{
	char pidfile[PATH_MAX];
	const char *args[] = { "restore", "-D", r->imgdir, "-d", "--pidfile", pidfile, NULL };

	snprintf(pidfile, sizeof(pidfile), "%s/%s.pid", r->env->dir, tag);
	unlink(pidfile);
	return cr_ckpt(r, tag, fault, args, status);
}

/* ---- a failed dump ---- */

static int flow_dump_fault(struct cr_run *r)
{
	static struct cr_tree_snap before;
	const char *fault = r->c->fault;
	int status, ret = -1;

	if (cr_victim_start(r) || read_info(r))
		return -1;
	if (cr_snapshot_trees(r, &r->victim, 1, &before))
		goto out;
	if (before.nr != 5) {
		cr_fail(r, "the tree of %d has %d tasks, expected 5", r->victim, before.nr);
		goto out;
	}
	if (cr_dump(r, "dump", r->victim, false, fault, &status) ||
	    cr_expect_failed(r, "dump", status, point_of(fault)) ||
	    cr_check_unharmed_trees(r, &before) || check_threads_free(r) ||
	    cr_verify(r, r->victim, "dump-failed"))
		goto out;
	ret = 0;
out:
	cr_snap_trees_free(&before);
	return ret;
}

#define DUMP_CASE(name, point)								\
	CR_CASE(tree_fault, dump_##name, .victim = victim_tree, .flow = flow_dump_fault,	\
		.fault = point)

DUMP_CASE(seize, "seize");
DUMP_CASE(parasite_inject, "parasite-inject");
DUMP_CASE(parasite_cmd, "parasite-cmd");
DUMP_CASE(collect_mm, "collect-mm");
DUMP_CASE(dump_pages, "dump-pages");
DUMP_CASE(dump_files, "dump-files");
DUMP_CASE(write_images, "write-images");
DUMP_CASE(before_kill, "before-kill");
DUMP_CASE(sigterm_seize, "signal:seize");
DUMP_CASE(sigterm_dump_pages, "signal:dump-pages");
DUMP_CASE(sigterm_write_images, "signal:write-images");

/* ---- a failed restore, then a good one from the same images ---- */

static int flow_restore_fault(struct cr_run *r)
{
	const char *fault = r->c->fault;
	pid_t root, restored;
	int status, bad;

	if (dump_tree(r))
		return -1;
	root = ids[ID_R];
	if (restore_with(r, "restore-fault", fault, &status))
		return -1;
	/* Both, whatever the first says: a crash is reported, what it left is logged. */
	bad = cr_expect_failed(r, "restore-fault", status, point_of(fault));
	if (expect_tree_gone(r, "restore-fault") || bad)
		return -1;
	if (cr_restore(r, "restore", &status, &restored) || cr_expect_ok(r, "restore", status))
		return -1;
	if (restored != root)
		return cr_fail(r, "restored as %d, expected %d", restored, root);
	return cr_verify(r, root, "restored after a failed restore");
}

#define RESTORE_CASE(name, point)							\
	CR_CASE(tree_fault, restore_##name, .victim = victim_tree,			\
		.flow = flow_restore_fault, .fault = point)

RESTORE_CASE(tree, "restore-tree");
RESTORE_CASE(seized, "restore-seized");
RESTORE_CASE(restorers, "restore-restorers");
RESTORE_CASE(finish, "restore-finish");
RESTORE_CASE(sigterm_tree, "signal:restore-tree");
RESTORE_CASE(sigterm_seized, "signal:restore-seized");
RESTORE_CASE(sigterm_restorers, "signal:restore-restorers");

/* ---- damaged images of a non-root task ---- */

static char field[64];		/* the error names this field too, if set */

static void expect_error(struct cr_run *r, enum img_kind kind, pid_t pid, const char *f)
{
	char name[64];

	img_name(kind, pid, name, sizeof(name));
	snprintf(r->restore_err, sizeof(r->restore_err), "%s", name);
	if (f)
		snprintf(field, sizeof(field), "field '%s'", f);
	else
		field[0] = 0;
}

static int flow_hostile(struct cr_run *r)
{
	int status;

	if (dump_tree(r) || r->c->between(r))
		return -1;
	if (restore_with(r, "restore", NULL, &status) ||
	    cr_expect_failed(r, "restore", status, r->restore_err) ||
	    (field[0] && cr_expect_output(r, "restore", field)))
		return -1;
	return expect_tree_gone(r, "restore");
}

#define HOSTILE_CASE(name, fn)								\
	CR_CASE(tree_fault, hostile_##name, .victim = victim_tree, .flow = flow_hostile,	\
		.between = fn)

/* G's pages file one page short. */
static int truncate_g_pages(struct cr_run *r)
{
	char name[64], path[PATH_MAX + 64];
	struct stat st;

	img_name(IMG_PAGES, ids[ID_G], name, sizeof(name));
	snprintf(path, sizeof(path), "%s/%s", r->imgdir, name);
	if (stat(path, &st) < 0)
		return cr_fail(r, "stat '%s': %s", path, strerror(errno));
	if (st.st_size < (off_t)(PAT_SIZE / PAGE * PAGE))
		return cr_fail(r, "'%s' holds %lld bytes, less than G's pattern", path,
			       (long long)st.st_size);
	if (truncate(path, st.st_size - PAGE) < 0)
		return cr_fail(r, "truncate '%s': %s", path, strerror(errno));
	expect_error(r, IMG_PAGES, ids[ID_G], NULL);
	return 0;
}

HOSTILE_CASE(pages_truncated_grandchild, truncate_g_pages);

/* pstree.img edits: the entry of PID `pid` changed by how. */
enum pstree_edit { PARENT_AFTER, PARENT_MISSING, TID_TWICE, ZOMBIE_ROOT };

static PstreeEntry *pstree_find(void **list, size_t n, pid_t pid)
{
	for (size_t i = 0; i < n; i++)
		if (((PstreeEntry *)list[i])->pid == (uint32_t)pid)
			return list[i];
	return NULL;
}

static int edit_pstree(struct cr_run *r, void **list, size_t n, void *arg)
{
	enum pstree_edit how = (enum pstree_edit)(long)arg;
	PstreeEntry *a = pstree_find(list, n, ids[ID_A]), *b = pstree_find(list, n, ids[ID_B]),
		    *g = pstree_find(list, n, ids[ID_G]), *z = pstree_find(list, n, ids[ID_Z]);
	size_t ia = 0, ig = 0;

	if (!a || !b || !g || !z || n != 5)
		return cr_fail(r, "pstree.img: %zu entries, A/B/G/Z %s", n,
			       a && b && g && z ? "found" : "not all found");
	for (size_t i = 0; i < n; i++) {
		if (list[i] == a)
			ia = i;
		if (list[i] == g)
			ig = i;
	}
	switch (how) {
	case PARENT_AFTER:
		if (ig < ia)
			return cr_fail(r, "pstree.img lists G before A");
		a->ppid = ids[ID_G];
		expect_error(r, IMG_PSTREE, 0, "ppid");
		break;
	case PARENT_MISSING: {
		pid_t p = (1 << 22) - 1;	/* the largest PID the codec takes */

		for (int i = 0; i < NR_IDS; i++)
			if (ids[i] == p)
				p--;
		g->ppid = p;
		expect_error(r, IMG_PSTREE, 0, "ppid");
		break;
	}
	case TID_TWICE:
		if (b->n_threads != 1 + NR_WORKERS)
			return cr_fail(r, "pstree.img: B has %zu threads", b->n_threads);
		b->threads[NR_WORKERS] = ids[ID_G];
		expect_error(r, IMG_PSTREE, 0, "threads");
		break;
	case ZOMBIE_ROOT:
		if (!z->has_zombie_status)
			return cr_fail(r, "pstree.img: Z %d is not a zombie", ids[ID_Z]);
		z->ppid = 0;
		expect_error(r, IMG_PSTREE, 0, "zombie_status");
		break;
	}
	return 0;
}

#define PSTREE_EDIT(name, how)								\
	static int name(struct cr_run *r)						\
	{										\
		return cr_edit_list(r, IMG_PSTREE, 0, edit_pstree, (void *)(long)(how));	\
	}

PSTREE_EDIT(parent_after, PARENT_AFTER)
PSTREE_EDIT(parent_missing, PARENT_MISSING)
PSTREE_EDIT(tid_twice, TID_TWICE)
PSTREE_EDIT(zombie_root, ZOMBIE_ROOT)

HOSTILE_CASE(pstree_parent_after_child, parent_after);
HOSTILE_CASE(pstree_parent_missing, parent_missing);
HOSTILE_CASE(pstree_tid_twice, tid_twice);
HOSTILE_CASE(pstree_zombie_root, zombie_root);

/* core-B.img lists one thread less than pstree.img. */
static int drop_thread(struct cr_run *r, void *msg, void *arg)
{
	CoreEntry *core = msg;

	if (core->n_threads != 1 + NR_WORKERS)
		return cr_fail(r, "core-%d.img: %zu threads, expected %d", ids[ID_B],
			       core->n_threads, 1 + NR_WORKERS);
	core->n_threads--;
	thread_core_entry__free_unpacked(core->threads[core->n_threads], NULL);
	core->threads[core->n_threads] = NULL;
	expect_error(r, IMG_CORE, ids[ID_B], "threads");
	return 0;
}

static int core_threads(struct cr_run *r)
{
	return cr_edit_one(r, IMG_CORE, ids[ID_B], drop_thread, NULL);
}

HOSTILE_CASE(core_thread_count, core_threads);

/*
 * Both of B's workers get an rseq area the kernel refuses (not 32-byte aligned: EINVAL), so
 * they fail in the restorer at about the same time. The restore names each of them, and the
 * one message that reaches the engine in full is the rseq one.
 */
#define BAD_RSEQ	0x1008UL

static int misalign_rseq(struct cr_run *r, void *msg, void *arg)
{
	CoreEntry *core = msg;

	(void)arg;
	if (core->n_threads != 1 + NR_WORKERS)
		return cr_fail(r, "core-%d.img: %zu threads, expected %d", ids[ID_B],
			       core->n_threads, 1 + NR_WORKERS);
	for (size_t k = 1; k < core->n_threads; k++) {
		ThreadCoreEntry *th = core->threads[k];

		if (!th->rseq) {
			th->rseq = malloc(sizeof(*th->rseq));
			if (!th->rseq)
				return cr_fail(r, "out of memory");
			rseq_entry__init(th->rseq);
		}
		th->rseq->ptr = BAD_RSEQ;
		th->rseq->len = 32;
		th->rseq->sig = 0x53053053;
	}
	snprintf(r->restore_err, sizeof(r->restore_err), "registering rseq at %lx", BAD_RSEQ);
	field[0] = 0;
	return 0;
}

static int workers_rseq(struct cr_run *r)
{
	return cr_edit_one(r, IMG_CORE, ids[ID_B], misalign_rseq, NULL);
}

static int flow_workers_fail(struct cr_run *r)
{
	char needle[64];
	int status;

	if (dump_tree(r) || workers_rseq(r))
		return -1;
	if (restore_with(r, "restore", NULL, &status) ||
	    cr_expect_failed(r, "restore", status, r->restore_err))
		return -1;
	for (int i = 0; i < NR_WORKERS; i++) {
		snprintf(needle, sizeof(needle), "(thread %d)", ids[ID_W0 + i]);
		if (cr_expect_output(r, "restore", needle))
			return -1;
	}
	return expect_tree_gone(r, "restore");
}

CR_CASE(tree_fault, hostile_core_workers_rseq, .victim = victim_tree, .flow = flow_workers_fail);

TEST_HARNESS_MAIN
