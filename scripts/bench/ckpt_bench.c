// SPDX-License-Identifier: MIT
/*
 * ckpt-bench: the benchmark driver run by `make bench`.
 *
 * Each scenario is setup / run / measure / report.  The driver makes itself
 * PID 1 of a new PID and mount namespace (this machine's PID 1 never reaps
 * orphans, and a namespace init takes every process of the run with it when
 * it goes), mounts /proc and a private tmpfs for the images and baselines,
 * touches and frees a few GiB first (memory is ballooned: the first touch of
 * freed memory is slow), then repeats warm-up + measured runs and prints one
 * machine-readable line per metric plus a short human summary.
 *
 * Scenarios come in three kinds: one process with a lot of memory (with
 * the write/read baselines, measured in every run next to ckpt, so ratios
 * compare figures taken under the same conditions), a tree of processes with
 * some memory each (per-task cost, at several sizes to see how it grows) and
 * one process with many threads.  A restore that does not verify (every
 * process back with its PID and parent, every thread with its TID, all memory
 * intact) aborts the benchmark: it never prints a number.
 */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "bench_pattern.h"
#include "bench_victim.h"

#define STEP_TIMEOUT_MS 120000

/* Aims from issue 2, "Speed"; the restore-time aim of a scenario is in its entry. */
#define AIM_DUMP_RATIO    1.2
#define AIM_RESTORE_RATIO 1.0
#define AIM_RSS_MIB       64.0

enum kind {
	K_MEM,		/* one process, one thread, a lot of memory; with baselines */
	K_TREE,		/* a tree of processes, some memory each */
	K_THREADS,	/* one process, many threads */
};
#define KM (1u << K_MEM)
#define KT (1u << K_TREE)
#define KH (1u << K_THREADS)

enum metric {
	M_DUMP_MS,
	M_RESTORE_MS,
	M_FROZEN_MS,
	M_FREEZE_MS,
	M_DUMP_TASK_MS,
	M_RESTORE_TASK_MS,
	M_FROZEN_TASK_MS,
	M_DUMP_GIBS,
	M_RESTORE_GIBS,
	M_IMAGE_MIB,
	M_DUMP_RSS_MIB,
	M_RESTORE_RSS_MIB,
	M_BASE_A_MS,
	M_BASE_B_MS,
	M_BASE_A_GIBS,
	M_BASE_B_GIBS,
	M_DUMP_RATIO,
	M_RESTORE_RATIO,
	M_NR,
};

/* kinds: the scenario kinds that report the metric. */
static const struct {
	const char *name;
	const char *unit;
	unsigned kinds;
} metrics[M_NR] = {
	[M_DUMP_MS] = { "dump_time", "ms", KM | KT | KH },
	[M_RESTORE_MS] = { "restore_time", "ms", KM | KT | KH },
	[M_FROZEN_MS] = { "frozen_time", "ms", KM | KT | KH },
	[M_FREEZE_MS] = { "freeze_time", "ms", KM | KT | KH },
	[M_DUMP_TASK_MS] = { "dump_time_per_task", "ms", KT },
	[M_RESTORE_TASK_MS] = { "restore_time_per_task", "ms", KT },
	[M_FROZEN_TASK_MS] = { "frozen_time_per_task", "ms", KT },
	[M_DUMP_GIBS] = { "dump_throughput", "GiB/s", KM | KT | KH },
	[M_RESTORE_GIBS] = { "restore_throughput", "GiB/s", KM | KT | KH },
	[M_IMAGE_MIB] = { "image_size", "MiB", KM | KT | KH },
	[M_DUMP_RSS_MIB] = { "dump_peak_rss", "MiB", KM | KT | KH },
	[M_RESTORE_RSS_MIB] = { "restore_peak_rss", "MiB", KM | KT | KH },
	[M_BASE_A_MS] = { "baseline_a_write_time", "ms", KM },
	[M_BASE_B_MS] = { "baseline_b_read_time", "ms", KM },
	[M_BASE_A_GIBS] = { "baseline_a_throughput", "GiB/s", KM },
	[M_BASE_B_GIBS] = { "baseline_b_throughput", "GiB/s", KM },
	[M_DUMP_RATIO] = { "dump_vs_baseline_a", "ratio", KM },
	[M_RESTORE_RATIO] = { "restore_vs_baseline_b", "ratio", KM },
};

struct opts {
	int runs;
	int warmup;
	long size_mib;		/* 0: the scenario's own size */
	long prewarm_gib;
	int verbosity;
	const char *log_dir;	/* NULL: logs stay in the private tmpfs */
	char ckpt[PATH_MAX];
	char victim[PATH_MAX];
};

struct scenario {
	const char *name;
	const char *desc;
	enum kind kind;
	long size_mib;		/* K_TREE: per process; otherwise in all */
	int kids, grandkids;	/* K_TREE: children of the root, children of each child */
	int threads;		/* K_THREADS: threads of the process, the main one included */
	double aim_restore_ms;	/* 0: no aim on the restore time */
};

/* What the victim of one run is: every process, and the threads of a K_THREADS one. */
struct victim {
	pid_t root;
	int nr;
	struct bench_ready procs[BENCH_TREE_SIZE(BENCH_TREE_MAX_KIDS, BENCH_TREE_MAX_KIDS)];
	int nr_tids;
	pid_t tids[BENCH_MAX_THREADS];
};

struct bench {
	const struct opts *o;
	const struct scenario *sc;
	const char *name;
	size_t len;		/* the victim's SIZE_MIB argument, in bytes */
	size_t total;		/* memory of all its processes */
	int nr_procs;		/* processes of the victim */
	int nr_threads;		/* threads of all of them */
	char tmp[PATH_MAX];	/* the private tmpfs */
	uint64_t *src;		/* K_MEM: the pattern, source of baseline a */
	struct victim v;
	double (*samples)[M_NR];
	int nr_samples;
	int iter;		/* run number, warm-ups included: names the logs */
};

static pid_t victim_pid;

/* bench_die(): as namespace init our exit kills whatever is left; reap the victim anyway. */
static void kill_victim(void)
{
	if (victim_pid > 0) {
		kill(victim_pid, SIGKILL);
		(void)waitpid(victim_pid, NULL, 0);
	}
}

static double gib(size_t len)
{
	return (double)len / (1UL << 30);
}

/*
 * The victim's fds: /dev/null on 0-2, the ready pipe on 3, nothing else
 * (dump refuses pipes to the outside, and this machine's shells may leak
 * stray fds).
 */
static void victim_fds(int ready_fd)
{
	int null = open("/dev/null", O_RDWR);

	if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0)
		_exit(127);
	/* dup2() onto itself would keep O_CLOEXEC. */
	if (ready_fd == 3 ? fcntl(3, F_SETFD, 0) < 0 : dup2(ready_fd, 3) < 0)
		_exit(127);
	if (syscall(SYS_close_range, 4, ~0U, 0) < 0)
		_exit(127);
}

/*
 * ckpt runs under a launcher: this binary re-executed as
 * "ckpt-bench --spawn ARGV...", which forks ckpt, times it and reports on fd 3.
 * Why not fork ckpt from here: exec records the peak RSS of the mm it
 * replaces into the new program's ru_maxrss (fs/exec.c, exec_mmap() ->
 * setmax_mm_hiwater_rss()), and a fork of this driver carries its baseline
 * buffer and the prewarm high-water mark.  A fork of the fresh launcher is
 * small, so ckpt's ru_maxrss is ckpt's own.
 */
static int spawn_main(char **argv)
{
	struct rusage ru;
	double t0 = bench_now_ms(), ms;
	int status, err;
	pid_t pid;

	pid = fork();
	if (pid < 0)
		return 127;
	if (pid == 0) {
		if (syscall(SYS_close_range, 3, ~0U, 0) < 0)
			_exit(127);
		execv(argv[0], argv);
		fprintf(stderr, "ckpt-bench: cannot run '%s': %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	err = bench_wait(pid, &status, &ru, STEP_TIMEOUT_MS);
	ms = bench_now_ms() - t0;
	if (err) {
		fprintf(stderr, "ckpt-bench: waiting for '%s %s': %s\n", argv[0], argv[1],
			strerror(-err));
		return 1;
	}
	dprintf(3, "%d %.6f %ld\n", status, ms, ru.ru_maxrss);
	return 0;
}

static char self_exe[PATH_MAX];

/* Run ckpt with argv: wall time (fork to reap) and its own peak RSS. */
static void run_ckpt(struct bench *b, const char *const argv[], double *ret_ms,
		     double *ret_rss_mib)
{
	const char *largv[16] = { self_exe, "--spawn" };
	char rep[128];
	int pfd[2], status, cstatus, err;
	long rss_kib;
	ssize_t n;
	pid_t pid;

	for (int i = 0; argv[i]; i++) {
		assert(i + 3 < 16);
		largv[i + 2] = argv[i];
	}
	if (pipe2(pfd, O_CLOEXEC) < 0)
		bench_die("pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		bench_die("fork: %s", strerror(errno));
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);

		if (null < 0 || dup2(null, 0) < 0 || dup2(pfd[1], 3) < 0 ||
		    syscall(SYS_close_range, 4, ~0U, 0) < 0)
			_exit(127);
		execv(self_exe, (char *const *)largv);
		_exit(127);
	}
	close(pfd[1]);
	n = read(pfd[0], rep, sizeof(rep) - 1);
	close(pfd[0]);
	err = bench_wait(pid, &status, NULL, STEP_TIMEOUT_MS + 10000);
	if (err)
		bench_die("waiting for the launcher of 'ckpt %s': %s", argv[1], strerror(-err));
	if (n <= 0 || !WIFEXITED(status) || WEXITSTATUS(status))
		bench_die("could not run 'ckpt %s'", argv[1]);
	rep[n] = '\0';
	if (sscanf(rep, "%d %lf %ld", &cstatus, ret_ms, &rss_kib) != 3)
		bench_die("bad launcher report '%s'", rep);
	if (!WIFEXITED(cstatus) || WEXITSTATUS(cstatus))
		bench_die("'ckpt %s' failed (status 0x%x); keep its log with --log-dir", argv[1], cstatus);
	*ret_rss_mib = rss_kib / 1024.0;
}

/* The victim's command line for this scenario. */
static void victim_argv(struct bench *b, char args[3][32], const char *argv[7])
{
	const struct scenario *sc = b->sc;
	int n = 0;

	argv[n++] = b->o->victim;
	if (sc->kind == K_TREE) {
		argv[n++] = "tree";
		snprintf(args[0], sizeof(args[0]), "%d", sc->kids);
		snprintf(args[1], sizeof(args[1]), "%d", sc->grandkids);
		argv[n++] = args[0];
		argv[n++] = args[1];
	} else if (sc->kind == K_THREADS) {
		argv[n++] = "threads";
		snprintf(args[0], sizeof(args[0]), "%d", sc->threads);
		argv[n++] = args[0];
	}
	snprintf(args[2], sizeof(args[2]), "%zu", b->len >> 20);
	argv[n++] = args[2];
	argv[n] = NULL;
}

/* Every TID of pid, sorted; the count. */
static int list_tids(pid_t pid, pid_t *tids, int max)
{
	char path[64];
	struct dirent *de;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	d = opendir(path);
	if (!d)
		bench_die("cannot list the threads of %d: %s", pid, strerror(errno));
	while ((de = readdir(d))) {
		pid_t tid = atoi(de->d_name);

		if (tid <= 0)
			continue;
		if (n == max)
			bench_die("task %d has more than %d threads", pid, max);
		tids[n++] = tid;
	}
	closedir(d);
	for (int i = 1; i < n; i++)
		for (int k = i; k > 0 && tids[k - 1] > tids[k]; k--) {
			pid_t t = tids[k];

			tids[k] = tids[k - 1];
			tids[k - 1] = t;
		}
	return n;
}

/*
 * Start the victim and wait until every one of its processes sent its ready
 * record and closed fd 3 (EOF).  Fills b->v.
 */
static void start_victim(struct bench *b)
{
	struct victim *v = &b->v;
	char args[3][32], buf[sizeof(v->procs) + 1];
	const char *argv[7];
	size_t got = 0;
	double deadline;
	int pfd[2];
	pid_t pid;

	victim_argv(b, args, argv);
	if (pipe2(pfd, O_CLOEXEC) < 0)
		bench_die("pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		bench_die("fork: %s", strerror(errno));
	if (pid == 0) {
		victim_fds(pfd[1]);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	victim_pid = pid;
	close(pfd[1]);
	/* One record per process once its memory is filled, then EOF once all closed fd 3. */
	deadline = bench_now_ms() + STEP_TIMEOUT_MS;
	for (;;) {
		struct pollfd p = { .fd = pfd[0], .events = POLLIN };
		int left = deadline - bench_now_ms();
		ssize_t n;

		if (left <= 0 || poll(&p, 1, left) == 0)
			bench_die("victim %d did not get ready within %d s", pid, STEP_TIMEOUT_MS / 1000);
		n = read(pfd[0], buf + got, sizeof(buf) - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			bench_die("reading the victim's ready pipe: %s", strerror(errno));
		if (n == 0)
			break;
		got += n;
		if (got == sizeof(buf))
			bench_die("victim %d sent too many ready records", pid);
	}
	close(pfd[0]);
	memset(v, 0, sizeof(*v));
	v->root = pid;
	v->nr = got / sizeof(v->procs[0]);
	memcpy(v->procs, buf, v->nr * sizeof(v->procs[0]));
	if (got % sizeof(v->procs[0]) || v->nr != b->nr_procs)
		bench_die("victim %d did not get ready: %d of %d processes reported", pid, v->nr,
		    b->nr_procs);
	if (b->sc->kind == K_THREADS) {
		v->nr_tids = list_tids(pid, v->tids, BENCH_MAX_THREADS);
		if (v->nr_tids != b->nr_threads)
			bench_die("victim %d has %d threads, expected %d", pid, v->nr_tids, b->nr_threads);
	}
}

/*
 * After the dump killed the victim: reap all of it so that every PID is free
 * for the restore.  Orphans come to us (namespace init); nothing else of ours
 * is alive at this point.
 */
static void reap_victim(struct bench *b)
{
	const struct victim *v = &b->v;
	struct timespec ms = { 0, 1000 * 1000 };
	double deadline = bench_now_ms() + STEP_TIMEOUT_MS;

	for (;;) {
		int left = 0;

		while (waitpid(-1, NULL, WNOHANG | __WALL) > 0)
			;
		for (int i = 0; i < v->nr; i++)
			left += kill(v->procs[i].pid, 0) == 0;
		if (!left)
			break;
		if (bench_now_ms() > deadline)
			bench_die("%d process(es) of victim %d did not die after dump", left, v->root);
		nanosleep(&ms, NULL);
	}
	victim_pid = 0;
}

/* Parent and state of pid from /proc/PID/stat; false if it does not exist. */
static bool proc_ppid(pid_t pid, pid_t *ret_ppid, char *ret_state)
{
	char path[64], buf[512], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	p = strrchr(buf, ')');
	return p && sscanf(p + 1, " %c %d", ret_state, ret_ppid) == 2;
}

/*
 * The restored victim: every process back with its PID and parent, every
 * thread with its TID, then SIGUSR2 and its own verdict on its memory (and,
 * for threads, on its counters).
 */
static void check_victim(struct bench *b)
{
	const struct victim *v = &b->v;
	int status, err, code;

	for (int i = 0; i < v->nr; i++) {
		const struct bench_ready *r = &v->procs[i];
		pid_t ppid;
		char state;

		if (!proc_ppid(r->pid, &ppid, &state))
			bench_die("restored process %d is missing: restore is wrong", r->pid);
		if (state == 'Z' || state == 'X' || ppid != r->ppid)
			bench_die("restored process %d is in state %c with parent %d (dumped: parent %d): "
			    "restore is wrong", r->pid, state, ppid, r->ppid);
	}
	if (b->sc->kind == K_THREADS) {
		pid_t tids[BENCH_MAX_THREADS];
		int n = list_tids(v->root, tids, BENCH_MAX_THREADS);

		if (n != v->nr_tids || memcmp(tids, v->tids, n * sizeof(tids[0])))
			bench_die("restored process %d has %d threads, not the %d dumped TIDs: restore is wrong",
			    v->root, n, v->nr_tids);
	}
	if (kill(v->root, SIGUSR2) < 0)
		bench_die("restored victim %d is gone: %s", v->root, strerror(errno));
	err = bench_wait(v->root, &status, NULL, STEP_TIMEOUT_MS);
	if (err)
		bench_die("waiting for restored victim %d: %s", v->root, strerror(-err));
	victim_pid = 0;
	if (!WIFEXITED(status))
		bench_die("restored victim %d was killed by signal %d during its check: restore is wrong",
		    v->root, WTERMSIG(status));
	code = WEXITSTATUS(status);
	if (!code)
		return;
	if (b->sc->kind == K_TREE)
		bench_die("%d of the %d restored processes of victim %d failed their memory check or "
		    "were missing: restore is wrong", code, v->nr, v->root);
	if (b->sc->kind == K_THREADS)
		bench_die("restored victim %d failed its check:%s%s%s (status %d): restore is wrong", v->root,
		    code & BENCH_THR_BAD_MEMORY ? " memory differs" : "",
		    code & BENCH_THR_BAD_THREADS ? " threads differ" : "",
		    code & BENCH_THR_NOT_COUNTING ? " a thread does not count" : "", code);
	bench_die("restored victim %d failed its memory check (status %d): restore is wrong", v->root,
	    code);
}

static void rm_tree(const char *dir)
{
	struct dirent *de;
	DIR *d = opendir(dir);

	if (!d)
		return;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			(void)unlinkat(dirfd(d), de->d_name, 0);
	closedir(d);
	(void)rmdir(dir);
}

/* Bytes of the regular files in dir, in MiB (st_size: images are not sparse). */
static double dir_size_mib(const char *dir)
{
	struct dirent *de;
	struct stat st;
	double sum = 0;
	DIR *d = opendir(dir);

	if (!d)
		bench_die("cannot open '%s': %s", dir, strerror(errno));
	while ((de = readdir(d)))
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISREG(st.st_mode))
			sum += st.st_size;
	closedir(d);
	return sum / (1 << 20);
}

/*
 * From the dump log: the "froze N process(es), M thread(s), Z zombie(s) in X
 * ms" line gives the freeze time, and its counts must be the whole victim;
 * the "dump done: ... frozen X ms" line gives how long the tasks stayed
 * stopped (the frozen time).
 */
static void check_dump_log(struct bench *b, const char *log, double *s)
{
	long procs = -1, threads = -1, zombies = -1;
	double frozen = -1, freeze = -1;
	char line[1024];
	FILE *f = fopen(log, "r");

	if (!f)
		bench_die("cannot open dump log '%s': %s", log, strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		char *p = strstr(line, "dump done:");
		long np, nt, nz;
		double ms;

		if (p && (p = strstr(p, "frozen ")))
			frozen = strtod(p + 7, NULL);
		/* Only the summary matches; -v4 also logs "PID: froze N threads". */
		p = strstr(line, "froze ");
		if (p && sscanf(p, "froze %ld process(es), %ld thread(s), %ld zombie(s) in %lf ms",
				&np, &nt, &nz, &ms) == 4) {
			procs = np;
			threads = nt;
			zombies = nz;
			freeze = ms;
		}
	}
	fclose(f);
	if (frozen < 0 || freeze < 0)
		bench_die("no 'froze ... in X ms' or 'dump done: ... frozen X ms' line in '%s' "
		    "(needs -v3 or more)", log);
	if (procs != b->nr_procs || threads != b->nr_threads || zombies != 0)
		bench_die("the dump froze %ld process(es), %ld thread(s), %ld zombie(s); the victim has "
		    "%d, %d, 0 (log '%s')", procs, threads, zombies, b->nr_procs, b->nr_threads, log);
	s[M_FROZEN_MS] = frozen;
	s[M_FREEZE_MS] = freeze;
}

/* Baseline a: the same bytes from memory into a new tmpfs file with write(). */
static double baseline_write(struct bench *b, const char *file)
{
	const size_t chunk = 1 << 20;
	double t0 = bench_now_ms();
	int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0)
		bench_die("cannot create '%s': %s", file, strerror(errno));
	for (size_t off = 0; off < b->len;) {
		size_t n = b->len - off < chunk ? b->len - off : chunk;
		ssize_t w = write(fd, (char *)b->src + off, n);

		if (w <= 0)
			bench_die("write '%s': %s", file, w < 0 ? strerror(errno) : "short");
		off += w;
	}
	close(fd);
	return bench_now_ms() - t0;
}

/* Baseline b: read it back into freshly mapped anonymous memory, one thread. */
static double baseline_read(struct bench *b, const char *file)
{
	const size_t chunk = 1 << 20;
	double t0 = bench_now_ms(), t;
	char *dst;
	int fd;

	dst = mmap(NULL, b->len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (dst == MAP_FAILED)
		bench_die("mmap %zu bytes: %s", b->len, strerror(errno));
	fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		bench_die("cannot open '%s': %s", file, strerror(errno));
	for (size_t off = 0; off < b->len;) {
		size_t n = b->len - off < chunk ? b->len - off : chunk;
		ssize_t r = read(fd, dst + off, n);

		if (r <= 0)
			bench_die("read '%s': %s", file, r < 0 ? strerror(errno) : "short");
		off += r;
	}
	close(fd);
	t = bench_now_ms() - t0;
	if (bench_pattern_check((uint64_t *)dst, b->len, 0))
		bench_die("baseline b read back wrong data");
	munmap(dst, b->len);
	return t;
}

/* One run: [baselines,] victim, dump, reap, restore, verify. */
static void run_once(struct bench *b, double *s)
{
	char dir[PATH_MAX], base[PATH_MAX], dlog[PATH_MAX], rlog[PATH_MAX], pidf[PATH_MAX];
	char pid_s[16], vopt[8], got[32];
	const char *logs = b->o->log_dir ? b->o->log_dir : b->tmp;
	int n = b->iter;
	pid_t rpid;
	FILE *f;

	bench_path_fmt(dir, "%s/img", b->tmp);
	bench_path_fmt(base, "%s/baseline", b->tmp);
	bench_path_fmt(pidf, "%s/restore.pid", b->tmp);
	bench_path_fmt(dlog, "%s/%s-dump-%d.log", logs, b->name, n);
	bench_path_fmt(rlog, "%s/%s-restore-%d.log", logs, b->name, n);
	snprintf(vopt, sizeof(vopt), "-v%d", b->o->verbosity);

	if (b->sc->kind == K_MEM) {
		s[M_BASE_A_MS] = baseline_write(b, base);
		s[M_BASE_B_MS] = baseline_read(b, base);
		unlink(base);
	}

	start_victim(b);
	snprintf(pid_s, sizeof(pid_s), "%d", b->v.root);

	/* -t ROOT: the whole tree and every thread; no --shell-job, the victim has its session. */
	const char *const dump[] = { b->o->ckpt, "dump", "-t", pid_s, "-D", dir, vopt, "-o", dlog, NULL };
	run_ckpt(b, dump, &s[M_DUMP_MS], &s[M_DUMP_RSS_MIB]);
	/* Dump killed it; reap it all so the PIDs are free for restore. */
	reap_victim(b);
	check_dump_log(b, dlog, s);
	s[M_IMAGE_MIB] = dir_size_mib(dir);

	const char *const rst[] = { b->o->ckpt, "restore", "-D", dir, "-d", "--pidfile", pidf,
			vopt, "-o", rlog, NULL };
	run_ckpt(b, rst, &s[M_RESTORE_MS], &s[M_RESTORE_RSS_MIB]);
	victim_pid = b->v.root;
	f = fopen(pidf, "r");
	if (!f || !fgets(got, sizeof(got), f))
		bench_die("no pidfile '%s' after restore", pidf);
	fclose(f);
	unlink(pidf);
	rpid = atoi(got);
	if (rpid != b->v.root)
		bench_die("restored root has PID %d, dumped %d", rpid, b->v.root);
	check_victim(b);
	rm_tree(dir);

	s[M_DUMP_TASK_MS] = s[M_DUMP_MS] / b->nr_procs;
	s[M_RESTORE_TASK_MS] = s[M_RESTORE_MS] / b->nr_procs;
	s[M_FROZEN_TASK_MS] = s[M_FROZEN_MS] / b->nr_procs;
	s[M_DUMP_GIBS] = gib(b->total) / (s[M_DUMP_MS] / 1e3);
	s[M_RESTORE_GIBS] = gib(b->total) / (s[M_RESTORE_MS] / 1e3);
	if (b->sc->kind == K_MEM) {
		s[M_BASE_A_GIBS] = gib(b->len) / (s[M_BASE_A_MS] / 1e3);
		s[M_BASE_B_GIBS] = gib(b->len) / (s[M_BASE_B_MS] / 1e3);
		s[M_DUMP_RATIO] = s[M_DUMP_MS] / s[M_BASE_A_MS];
		s[M_RESTORE_RATIO] = s[M_RESTORE_MS] / s[M_BASE_B_MS];
	}
}

static const struct scenario scenarios[] = {
	{ "dump-restore-1g", "dump + restore of 1 GiB of touched anonymous memory to tmpfs",
	  K_MEM, .size_mib = 1024 },
	{ "dump-restore-256m", "the same with 256 MiB (peak RSS must not grow with the target)",
	  K_MEM, .size_mib = 256 },
	{ "tree-10", "a tree of 10 processes (1 + 3 children + 2 grandchildren each), 10 MiB each",
	  K_TREE, .size_mib = 10, .kids = 3, .grandkids = 2 },
	{ "tree-25", "the same with 25 processes (1 + 4 + 4 * 5)", K_TREE, .size_mib = 10,
	  .kids = 4, .grandkids = 5 },
	{ "tree-50", "the same with 50 processes (1 + 7 + 7 * 6); aim: restore under 0.5 s",
	  K_TREE, .size_mib = 10, .kids = 7, .grandkids = 6, .aim_restore_ms = 500 },
	{ "threads-16", "one process with 16 counting threads, 64 MiB (4 MiB per thread)",
	  K_THREADS, .size_mib = 64, .threads = 16 },
};
#define NR_SCENARIOS (sizeof(scenarios) / sizeof(scenarios[0]))

static struct bench_stat stat_of(struct bench *b, enum metric m)
{
	double v[b->nr_samples];

	for (int i = 0; i < b->nr_samples; i++)
		v[i] = b->samples[i][m];
	return bench_stat_of(v, b->nr_samples);
}

/* Medians of the tree scenarios that ran, for the scaling summary at the end. */
static struct {
	const char *name;
	int procs;
	double dump, restore, frozen;
} tree_results[NR_SCENARIOS];
static int nr_tree_results;

static void report(struct bench *b)
{
	const struct scenario *sc = b->sc;
	struct bench_stat st[M_NR];
	bool rss_ok;

	for (int m = 0; m < M_NR; m++) {
		if (!(metrics[m].kinds & (1u << sc->kind)))
			continue;
		st[m] = stat_of(b, m);
		printf("BENCH scenario=%s metric=%s unit=%s median=%.4g spread=%.4g runs=%d "
		       "kernel=%s cpu=\"%s\"\n",
		       b->name, metrics[m].name, metrics[m].unit, st[m].median,
		       st[m].max - st[m].min, b->nr_samples, bench_kernel, bench_cpu);
	}
	rss_ok = st[M_DUMP_RSS_MIB].max < AIM_RSS_MIB && st[M_RESTORE_RSS_MIB].max < AIM_RSS_MIB;

#define ROW(label, m, fmt) \
	printf("  %-22s " fmt " [" fmt " .. " fmt "] %s\n", label, st[m].median, st[m].min, \
	       st[m].max, metrics[m].unit)
	if (sc->kind == K_TREE)
		printf("\n%s: %d processes x %zu MiB (%zu MiB), median [min .. max] of %d runs\n",
		       b->name, b->nr_procs, b->len >> 20, b->total >> 20, b->nr_samples);
	else if (sc->kind == K_THREADS)
		printf("\n%s: 1 process, %d threads, %zu MiB, median [min .. max] of %d runs\n",
		       b->name, b->nr_threads, b->len >> 20, b->nr_samples);
	else
		printf("\n%s: %zu MiB, median [min .. max] of %d runs\n", b->name, b->len >> 20,
		       b->nr_samples);
	ROW("dump", M_DUMP_MS, "%8.1f");
	if (sc->kind == K_MEM)
		ROW("  baseline a (write)", M_BASE_A_MS, "%8.1f");
	ROW("restore -d", M_RESTORE_MS, "%8.1f");
	if (sc->kind == K_MEM)
		ROW("  baseline b (read)", M_BASE_B_MS, "%8.1f");
	ROW("frozen", M_FROZEN_MS, "%8.1f");
	ROW("  of which freezing", M_FREEZE_MS, "%8.1f");
	if (sc->kind == K_TREE) {
		ROW("dump per task", M_DUMP_TASK_MS, "%8.2f");
		ROW("restore per task", M_RESTORE_TASK_MS, "%8.2f");
		ROW("frozen per task", M_FROZEN_TASK_MS, "%8.2f");
	}
	ROW("dump throughput", M_DUMP_GIBS, "%8.2f");
	ROW("restore throughput", M_RESTORE_GIBS, "%8.2f");
	ROW("image size", M_IMAGE_MIB, "%8.1f");
	ROW("ckpt dump peak RSS", M_DUMP_RSS_MIB, "%8.1f");
	ROW("ckpt restore peak RSS", M_RESTORE_RSS_MIB, "%8.1f");
#undef ROW
	if (sc->kind == K_MEM) {
		printf("  dump / baseline a     %6.2fx   aim <= %.1fx: %s\n", st[M_DUMP_RATIO].median,
		       AIM_DUMP_RATIO, st[M_DUMP_RATIO].median <= AIM_DUMP_RATIO ? "met" : "MISSED");
		printf("  restore / baseline b  %6.2fx   aim <= %.1fx: %s\n",
		       st[M_RESTORE_RATIO].median, AIM_RESTORE_RATIO,
		       st[M_RESTORE_RATIO].median <= AIM_RESTORE_RATIO ? "met" : "MISSED");
	}
	if (sc->aim_restore_ms)
		printf("  restore -d            %6.1f ms  aim < %.0f ms: %s\n", st[M_RESTORE_MS].median,
		       sc->aim_restore_ms,
		       st[M_RESTORE_MS].median < sc->aim_restore_ms ? "met" : "MISSED");
	printf("  peak RSS (worst run)  %6.1f / %.1f MiB   aim < %.0f MiB: %s\n\n",
	       st[M_DUMP_RSS_MIB].max, st[M_RESTORE_RSS_MIB].max, AIM_RSS_MIB,
	       rss_ok ? "met" : "MISSED");
	if (sc->kind == K_TREE)
		tree_results[nr_tree_results++] = (typeof(tree_results[0])){
			b->name, b->nr_procs, st[M_DUMP_MS].median, st[M_RESTORE_MS].median,
			st[M_FROZEN_MS].median,
		};
	fflush(stdout);
}

/* Least-squares line y = a + b * x through the points. */
static void fit_line(const double *x, const double *y, int n, double *ret_a, double *ret_b)
{
	double sx = 0, sy = 0, sxx = 0, sxy = 0;

	for (int i = 0; i < n; i++) {
		sx += x[i];
		sy += y[i];
		sxx += x[i] * x[i];
		sxy += x[i] * y[i];
	}
	*ret_b = (n * sxy - sx * sy) / (n * sxx - sx * sx);
	*ret_a = (sy - *ret_b * sx) / n;
}

/*
 * The tree sizes side by side: per-task time at each size, and a line
 * through the medians (fixed part + marginal cost per task).  Linear growth
 * shows as a flat per-task time once the fixed part is small, and as points
 * close to the line.
 */
static void report_tree_scaling(void)
{
	double x[NR_SCENARIOS], y[3][NR_SCENARIOS], fa[3], fb[3];
	static const char *const what[3] = { "dump", "restore", "frozen" };
	int n = nr_tree_results;

	if (n < 2)
		return;
	printf("tree scaling (medians; per task = time / processes):\n");
	printf("  %-10s %9s %9s %11s %9s %10s %9s\n", "processes", "dump ms", "per task",
	       "restore ms", "per task", "frozen ms", "per task");
	for (int i = 0; i < n; i++) {
		x[i] = tree_results[i].procs;
		y[0][i] = tree_results[i].dump;
		y[1][i] = tree_results[i].restore;
		y[2][i] = tree_results[i].frozen;
		printf("  %-10d %9.1f %9.2f %11.1f %9.2f %10.1f %9.2f\n", tree_results[i].procs,
		       y[0][i], y[0][i] / x[i], y[1][i], y[1][i] / x[i], y[2][i], y[2][i] / x[i]);
	}
	for (int k = 0; k < 3; k++) {
		double worst = 0;

		fit_line(x, y[k], n, &fa[k], &fb[k]);
		for (int i = 0; i < n; i++) {
			double fit = fa[k] + fb[k] * x[i];
			double dev = fabs(y[k][i] - fit) / fit;

			worst = dev > worst ? dev : worst;
		}
		printf("  %-8s ~ %6.1f ms + %5.2f ms per task (furthest point %.0f%% off the line)\n",
		       what[k], fa[k], fb[k], worst * 100);
	}
	printf("\n");
	fflush(stdout);
}

/* Setup: the victim's shape and memory. */
static void setup(struct bench *b, const struct opts *o, const struct scenario *sc)
{
	b->o = o;
	b->sc = sc;
	b->name = sc->name;
	b->len = (size_t)(o->size_mib ? o->size_mib : sc->size_mib) << 20;
	b->nr_procs = sc->kind == K_TREE ? BENCH_TREE_SIZE(sc->kids, sc->grandkids) : 1;
	b->nr_threads = sc->kind == K_THREADS ? sc->threads : b->nr_procs;
	b->total = b->len * (sc->kind == K_TREE ? b->nr_procs : 1);
	if (sc->kind == K_THREADS)	/* each thread fills whole pages of its slice */
		b->total = b->len / sc->threads / BENCH_PAGE * BENCH_PAGE * sc->threads;
}

static void run_scenario(const struct opts *o, const struct scenario *sc, const char *tmp)
{
	struct bench b = {};
	int total = o->warmup + o->runs;

	setup(&b, o, sc);
	snprintf(b.tmp, sizeof(b.tmp), "%s", tmp);
	b.samples = calloc(total, sizeof(*b.samples));
	if (!b.samples)
		bench_die("out of memory for %s", sc->name);
	if (sc->kind == K_MEM) {
		b.src = mmap(NULL, b.len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (b.src == MAP_FAILED)
			bench_die("out of memory for %s", sc->name);
		bench_pattern_fill(b.src, b.len, 0);
	}

	for (int i = 0; i < total; i++) {
		double *s = b.samples[b.nr_samples];
		bool warm = i < o->warmup;
		char base[64] = "";

		/* Freed memory drifts back to the host: re-touch before every run. */
		bench_prewarm(o->prewarm_gib);
		b.iter = i;
		run_once(&b, s);
		if (sc->kind == K_MEM)
			snprintf(base, sizeof(base), ", base a/b %.1f/%.1f ms", s[M_BASE_A_MS],
				 s[M_BASE_B_MS]);
		fprintf(stderr, "  %s %s %d/%d: dump %.1f ms, restore %.1f ms, frozen %.1f ms "
			"(freezing %.1f), rss %.1f/%.1f MiB%s\n",
			sc->name, warm ? "warm-up" : "run", warm ? i + 1 : i - o->warmup + 1,
			warm ? o->warmup : o->runs, s[M_DUMP_MS], s[M_RESTORE_MS], s[M_FROZEN_MS],
			s[M_FREEZE_MS], s[M_DUMP_RSS_MIB], s[M_RESTORE_RSS_MIB], base);
		if (!warm)
			b.nr_samples++;
	}
	report(&b);
	if (b.src)
		munmap(b.src, b.len);
	free(b.samples);
}

/* PID 1 of the new namespaces: mounts, then the scenarios. */
static int bench_init(const struct opts *o, const bool *selected, const char *tmp)
{
	size_t most = 0;
	char size[64];

	/* Our own mount namespace, so the parent can remove the mount point after us. */
	if (unshare(CLONE_NEWNS) < 0)
		bench_die("cannot create a mount namespace: %s", strerror(errno));
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		bench_die("cannot make mounts private: %s", strerror(errno));
	if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		bench_die("cannot mount /proc: %s", strerror(errno));
	/* Room for 4 times the largest victim (images, baseline file, logs). */
	for (size_t i = 0; i < NR_SCENARIOS; i++) {
		struct bench b = {};

		setup(&b, o, &scenarios[i]);
		if (selected[i] && b.total > most)
			most = b.total;
	}
	snprintf(size, sizeof(size), "size=%zum,mode=0700", 4 * (most >> 20) + 64);
	if (mount("tmpfs", tmp, "tmpfs", MS_NOSUID | MS_NODEV, size) < 0)
		bench_die("cannot mount tmpfs on '%s': %s", tmp, strerror(errno));

	fprintf(stderr, "ckpt-bench: %s, kernel %s, CPU %s, %ld CPUs; prewarm %ld GiB\n", o->ckpt,
		bench_kernel, bench_cpu, sysconf(_SC_NPROCESSORS_ONLN), o->prewarm_gib);
	bench_prewarm(o->prewarm_gib);
	for (size_t i = 0; i < NR_SCENARIOS; i++)
		if (selected[i])
			run_scenario(o, &scenarios[i], tmp);
	report_tree_scaling();
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: ckpt-bench [-s NAME[,NAME...]] [-r RUNS] [-w WARMUP] [--size MIB]\n"
		"                  [--prewarm GIB] [-v N] [--log-dir DIR] [--ckpt PATH] [-l]\n"
		"  -s, --scenario   scenarios to run (default: all, see -l)\n"
		"  -r, --runs       measured runs per scenario (default 5)\n"
		"  -w, --warmup     unmeasured runs first (default 1)\n"
		"      --size       override the scenario's memory size, MiB (tree-*: per\n"
		"                   process; threads-*: in all)\n"
		"      --prewarm    GiB to touch and free before the scenarios and before\n"
		"                   every run (ballooned memory; default 4)\n"
		"  -v, --verbosity  ckpt log level, at least 3 (default 3)\n"
		"      --log-dir    keep ckpt's logs there (default: the private tmpfs)\n"
		"      --ckpt       ckpt binary (default: ../ckpt next to this driver)\n"
		"  -l, --list       list the scenarios\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "scenario", required_argument, NULL, 's' },
		{ "runs", required_argument, NULL, 'r' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "size", required_argument, NULL, 'S' },
		{ "prewarm", required_argument, NULL, 'P' },
		{ "verbosity", required_argument, NULL, 'v' },
		{ "log-dir", required_argument, NULL, 'L' },
		{ "ckpt", required_argument, NULL, 'C' },
		{ "list", no_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	struct opts o = { .runs = 5, .warmup = 1, .prewarm_gib = 4, .verbosity = 3 };
	bool selected[NR_SCENARIOS] = {}, any = false;
	char tmp[] = "/tmp/ckpt-bench.XXXXXX";
	int c, status;
	pid_t init;

	if (argc > 2 && !strcmp(argv[1], "--spawn"))
		return spawn_main(argv + 2);
	bench_prog = "ckpt-bench";
	bench_on_die = kill_victim;
	bench_self_relative(self_exe, "ckpt-bench");
	bench_self_relative(o.ckpt, "../ckpt");
	bench_self_relative(o.victim, "bench_victim");
	while ((c = getopt_long(argc, argv, "s:r:w:v:lh", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			for (char *t = strtok(optarg, ","); t; t = strtok(NULL, ",")) {
				size_t i;

				for (i = 0; i < NR_SCENARIOS; i++)
					if (!strcmp(t, scenarios[i].name))
						break;
				if (i == NR_SCENARIOS) {
					fprintf(stderr, "ckpt-bench: unknown scenario '%s' (see -l)\n", t);
					return 2;
				}
				selected[i] = any = true;
			}
			break;
		case 'r':
			o.runs = atoi(optarg);
			break;
		case 'w':
			o.warmup = atoi(optarg);
			break;
		case 'S':
			o.size_mib = atol(optarg);
			break;
		case 'P':
			o.prewarm_gib = atol(optarg);
			break;
		case 'v':
			o.verbosity = atoi(optarg);
			break;
		case 'L':
			o.log_dir = optarg;
			break;
		case 'C':
			if (!realpath(optarg, o.ckpt)) {
				fprintf(stderr, "ckpt-bench: '%s': %s\n", optarg, strerror(errno));
				return 2;
			}
			break;
		case 'l':
			for (size_t i = 0; i < NR_SCENARIOS; i++)
				printf("%-20s %s\n", scenarios[i].name, scenarios[i].desc);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc || o.runs < 1 || o.warmup < 0 || o.size_mib < 0 || o.prewarm_gib < 0 ||
	    o.verbosity < 3 || o.verbosity > 4) {
		usage(stderr);
		return 2;
	}
	if (!any)
		for (size_t i = 0; i < NR_SCENARIOS; i++)
			selected[i] = true;
	if (access(o.ckpt, X_OK) || access(o.victim, X_OK)) {
		fprintf(stderr, "ckpt-bench: need '%s' and '%s' (make bench builds them)\n", o.ckpt,
			o.victim);
		return 2;
	}
	bench_host_info();
	if (!mkdtemp(tmp)) {
		fprintf(stderr, "ckpt-bench: mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	if (unshare(CLONE_NEWPID) < 0) {
		fprintf(stderr, "ckpt-bench: cannot create a PID namespace: %s (run as root)\n",
			strerror(errno));
		rmdir(tmp);
		return 1;
	}
	fflush(stdout);
	init = fork();
	if (init < 0) {
		fprintf(stderr, "ckpt-bench: fork: %s\n", strerror(errno));
		rmdir(tmp);
		return 1;
	}
	if (init == 0) {
		/* If we are interrupted, the namespace goes and takes its tasks along. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		exit(bench_init(&o, selected, tmp));
	}
	while (waitpid(init, &status, 0) < 0 && errno == EINTR)
		;
	rmdir(tmp);
	if (WIFSIGNALED(status)) {
		fprintf(stderr, "ckpt-bench: killed by signal %d\n", WTERMSIG(status));
		return 1;
	}
	return WEXITSTATUS(status);
}
