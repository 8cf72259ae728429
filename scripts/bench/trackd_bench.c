// SPDX-License-Identifier: MIT
/*
 * trackd-bench: what trackd costs the processes it watches and the ones it does not.
 *
 * A worker process runs one loop on request and reports its time; it runs under three
 * modes, in the same run, alternating:
 *   off        no trackd at all (the baseline)
 *   untracked  trackd attached to another, idle process: the worker is not tracked
 *   tracked    trackd attached to the worker (with written-page tracking armed)
 * Loops:
 *   fork-exit    fork, child _exit, waitpid                    (per-iteration cost)
 *   mmap-munmap  mmap 4 KiB anonymous + munmap                 (two records per iteration)
 *   first-write  one byte into each page of 256 MiB that was populated before trackd
 *                attached: with tracking armed each first write takes a write-protect fault
 * And one load scenario:
 *   event-rate   the tracked worker makes 50,000 mmap/munmap records per second for 2 s
 *                with the default ring; trackd's status must report no loss.
 *
 * Output: a BENCH line per result (scenario, metric, unit, median, spread, runs, kernel,
 * CPU), then a table with the slowdown of each mode against `off`. Nothing is asserted.
 *
 *   trackd-bench [-r RUNS] [-s SCENARIO[,...]] [-T TRACKD]
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define PAGE		4096ul
#define WRITE_LEN	(256ul << 20)
#define RATE		50000	/* records per second */
#define RATE_SECS	2
#define STEP_TIMEOUT_MS	60000	/* a trackd command */

enum mode { MODE_OFF, MODE_UNTRACKED, MODE_TRACKED, NR_MODES };
static const char *const mode_names[NR_MODES] = { "off", "untracked", "tracked" };

enum loop { LOOP_FORK, LOOP_MMAP, LOOP_WRITE, LOOP_RATE, NR_LOOPS };
static const struct {
	const char *name;
	long iters;
	const char *what;
} loops[NR_LOOPS] = {
	[LOOP_FORK] = { "fork-exit", 2000, "fork + _exit + waitpid" },
	[LOOP_MMAP] = { "mmap-munmap", 200000, "mmap 4 KiB + munmap" },
	[LOOP_WRITE] = { "first-write", WRITE_LEN / PAGE, "first write to a page" },
	[LOOP_RATE] = { "event-rate", (long)RATE * RATE_SECS / 2, "paced mmap + munmap" },
};

static char trackd[PATH_MAX] = "build/trackd";
static char tmpdir[PATH_MAX];
static int runs = 5;

/* bench_die(): workers and a trackd of ours go too; we lead our own group. */
static void kill_group(void)
{
	kill(0, SIGKILL);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

/* ---------------------------------------------------------------- the worker */

struct worker {
	pid_t pid;
	int cmd, ans;
};

/*
 * A small worker runs the fork and mmap loops (a fork copies the page
 * tables, so a big worker would measure that); the big one has the region
 * the first-write loop writes, populated before any trackd attaches so
 * tracking arms it whole.
 */
static void worker_main(int cmd, int ans, bool big)
{
	char *region = NULL;
	unsigned char c;

	if (big) {
		region = mmap(NULL, WRITE_LEN, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
		if (region == MAP_FAILED)
			_exit(1);
		memset(region, 1, WRITE_LEN);
	}
	while (read(cmd, &c, 1) == 1) {
		uint64_t t0 = now_ns();
		long n = loops[c].iters;

		switch (c) {
		case LOOP_FORK:
			for (long i = 0; i < n; i++) {
				pid_t p = fork();
				if (!p)
					_exit(0);
				(void)waitpid(p, NULL, 0);
			}
			break;
		case LOOP_MMAP:
			for (long i = 0; i < n; i++) {
				void *p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE,
					       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
				munmap(p, PAGE);
			}
			break;
		case LOOP_WRITE:
			if (!region)
				_exit(1);
			for (long i = 0; i < n; i++)
				((volatile char *)region)[i * PAGE] += 1;
			break;
		case LOOP_RATE: {
			/* 1 ms slices of RATE / 1000 records each, on schedule. */
			long per_ms = RATE / 1000 / 2;
			for (long ms = 0; ms < RATE_SECS * 1000; ms++) {
				for (long i = 0; i < per_ms; i++) {
					void *p = mmap(NULL, PAGE, PROT_READ,
						       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
					munmap(p, PAGE);
				}
				uint64_t due = t0 + (ms + 1) * 1000000ull;
				while (now_ns() < due) {
					struct timespec ts = { 0, 200000 };
					nanosleep(&ts, NULL);
				}
			}
			break;
		}
		}
		uint64_t dt = now_ns() - t0;
		if (write(ans, &dt, sizeof(dt)) != sizeof(dt))
			_exit(1);
	}
	_exit(0);
}

static struct worker worker_start(bool big)
{
	int cmd[2], ans[2];
	struct worker w;

	if (pipe2(cmd, O_CLOEXEC) || pipe2(ans, O_CLOEXEC))
		bench_die("pipe: %s", strerror(errno));
	fflush(NULL);
	w.pid = fork();
	if (w.pid < 0)
		bench_die("fork: %s", strerror(errno));
	if (!w.pid) {
		/* Only its own two ends: another worker's write end would keep its pipe open. */
		if (dup2(cmd[0], 3) < 0 || dup2(ans[1], 4) < 0)
			_exit(1);
		syscall(SYS_close_range, 5, ~0U, 0);
		worker_main(3, 4, big);
	}
	close(cmd[0]);
	close(ans[1]);
	w.cmd = cmd[1];
	w.ans = ans[0];
	return w;
}

static double worker_run(struct worker *w, enum loop l)
{
	unsigned char c = l;
	uint64_t dt;

	if (write(w->cmd, &c, 1) != 1 || read(w->ans, &dt, sizeof(dt)) != sizeof(dt))
		bench_die("the worker died");
	return (double)dt / loops[l].iters;	/* ns per iteration */
}

static void worker_stop(struct worker *w)
{
	close(w->cmd);
	close(w->ans);
	(void)waitpid(w->pid, NULL, 0);
}

/* ---------------------------------------------------------------- trackd */

static void trackd_start(pid_t root, const char *dir)
{
	char pid[16], out[4096];
	const char *argv[] = { trackd, "-t", pid, "-L", dir, "-d", NULL };

	snprintf(pid, sizeof(pid), "%d", root);
	if (bench_run(argv, out, sizeof(out), STEP_TIMEOUT_MS, NULL))
		bench_die("trackd -t %s -L %s: %s", pid, dir, out);
}

/* Stops it; returns the records it reported lost. */
static long long trackd_stop(const char *dir)
{
	char out[16384];
	const char *status[] = { trackd, "status", "-L", dir, NULL };
	const char *stop[] = { trackd, "stop", "-L", dir, NULL };
	long long lost = -1;

	if (bench_run(status, out, sizeof(out), STEP_TIMEOUT_MS, NULL))
		bench_die("trackd status -L %s: %s", dir, out);
	char *p = strstr(out, "\nlost ");
	if (p)
		lost = atoll(p + 6);
	if (bench_run(stop, out, sizeof(out), STEP_TIMEOUT_MS, NULL))
		bench_die("trackd stop -L %s: %s", dir, out);
	/* The daemon was reparented to us (a subreaper): reap it. */
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	return lost;
}

/* ---------------------------------------------------------------- driver */

static void bench_loop(enum loop l, struct worker *w, pid_t idle)
{
	double v[NR_MODES][64], med[NR_MODES];
	char dir[PATH_MAX + 16];

	/* Warm-up, then the modes interleaved run by run so drift hits all alike. */
	(void)worker_run(w, l);
	for (int r = 0; r < runs; r++) {
		for (int m = 0; m < NR_MODES; m++) {
			snprintf(dir, sizeof(dir), "%s/%s-%s-%d", tmpdir, loops[l].name,
				 mode_names[m], r);
			/*
			 * Pages write-protected by an earlier tracked run stay so after
			 * trackd left, until written once: do that outside the timing.
			 */
			if (l == LOOP_WRITE && m != MODE_TRACKED)
				(void)worker_run(w, l);
			if (m != MODE_OFF)
				trackd_start(m == MODE_TRACKED ? w->pid : idle, dir);
			v[m][r] = worker_run(w, l);
			if (m != MODE_OFF)
				(void)trackd_stop(dir);
		}
	}
	printf("\n%s: %s, %ld iterations, ns per iteration, median [min .. max] of %d runs\n",
	       loops[l].name, loops[l].what, loops[l].iters, runs);
	for (int m = 0; m < NR_MODES; m++) {
		/* sorts v[m]: v[MODE_OFF][0] is the best run of off */
		struct bench_stat s = bench_stat_of(v[m], runs);
		double lo = s.min;

		med[m] = s.median;
		bench_line(loops[l].name, mode_names[m], "ns", s, runs);
		printf("  %-10s %10.1f [%.1f .. %.1f]", mode_names[m], med[m], lo, s.max);
		/* Noise here only adds time: the best runs' ratio is shown too. */
		if (m != MODE_OFF)
			printf("   %+6.1f%% vs off (medians), %+6.1f%% (best runs)",
			       100 * (med[m] / med[MODE_OFF] - 1), 100 * (lo / v[MODE_OFF][0] - 1));
		printf("\n");
	}
	if (l == LOOP_WRITE)
		printf("  a first write under tracking costs %.2f us more\n",
		       (med[MODE_TRACKED] - med[MODE_OFF]) / 1000);
	else
		printf("  aim: untracked < +2%%, tracked < +5%%: %s, %s\n",
		       med[MODE_UNTRACKED] <= 1.02 * med[MODE_OFF] ? "met" : "MISSED",
		       med[MODE_TRACKED] <= 1.05 * med[MODE_OFF] ? "met" : "MISSED");
	fflush(stdout);
}

static void bench_rate(struct worker *w)
{
	char dir[PATH_MAX + 16];
	long long lost[64], worst = 0;

	for (int r = 0; r < runs; r++) {
		snprintf(dir, sizeof(dir), "%s/rate-%d", tmpdir, r);
		trackd_start(w->pid, dir);
		(void)worker_run(w, LOOP_RATE);
		lost[r] = trackd_stop(dir);
		if (lost[r] < 0)
			bench_die("trackd status gave no loss count");
		if (lost[r] > worst)
			worst = lost[r];
	}
	printf("\nevent-rate: %d records/s for %d s into the default ring, %d runs\n", RATE,
	       RATE_SECS, runs);
	printf("BENCH scenario=event-rate metric=lost unit=records median=%lld spread=0 runs=%d "
	       "kernel=%s cpu=\"%s\"\n", worst, runs, bench_kernel, bench_cpu);
	printf("  records lost (worst run) %lld   aim: none: %s\n", worst, worst ? "MISSED" : "met");
	fflush(stdout);
}

int main(int argc, char **argv)
{
	bool want[NR_LOOPS] = { true, true, true, true };
	struct worker w, big, idle;
	int opt;

	bench_prog = "trackd-bench";
	while ((opt = getopt(argc, argv, "r:s:T:h")) != -1) {
		switch (opt) {
		case 'r':
			runs = atoi(optarg);
			if (runs < 1 || runs > 64)
				bench_die("-r: 1 to 64 runs");
			break;
		case 's':
			memset(want, 0, sizeof(want));
			for (char *s = strtok(optarg, ","); s; s = strtok(NULL, ",")) {
				int l;
				for (l = 0; l < NR_LOOPS && strcmp(s, loops[l].name); l++)
					;
				if (l == NR_LOOPS)
					bench_die("no scenario '%s'", s);
				want[l] = true;
			}
			break;
		case 'T':
			snprintf(trackd, sizeof(trackd), "%s", optarg);
			break;
		default:
			fprintf(stderr, "usage: trackd-bench [-r RUNS] [-s fork-exit,mmap-munmap,"
					"first-write,event-rate] [-T TRACKD]\n");
			return opt == 'h' ? 0 : 2;
		}
	}
	if (access(trackd, X_OK))
		bench_die("no trackd at '%s' (make trackd, or -T)", trackd);
	bench_host_info();
	setpgid(0, 0);
	bench_on_die = kill_group;
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	snprintf(tmpdir, sizeof(tmpdir), "%s/trackd-bench.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(tmpdir))
		bench_die("mkdtemp: %s", strerror(errno));

	printf("trackd-bench: %d runs per mode, kernel %s, %s\n", runs, bench_kernel, bench_cpu);
	w = worker_start(false);
	big = worker_start(true);
	idle = worker_start(false);
	for (int l = 0; l < LOOP_RATE; l++)
		if (want[l])
			bench_loop(l, l == LOOP_WRITE ? &big : &w, idle.pid);
	if (want[LOOP_RATE])
		bench_rate(&w);
	worker_stop(&w);
	worker_stop(&big);
	worker_stop(&idle);
	/* Daemons reparented to us (a subreaper) that ended after their stop was answered. */
	while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
		;

	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	(void)!system(cmd);
	return 0;
}
