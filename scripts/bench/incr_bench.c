// SPDX-License-Identifier: MIT
/*
 * incr-bench: what an incremental dump costs against a full one.
 *
 * One victim process (this binary re-executed as "incr-bench --victim MIB PERMILLE") maps MIB
 * of private anonymous memory and fills it with the shared pattern (every page present, none
 * zero), then waits for orders.  On "dirty" (a SIGUSR1 from the driver carrying the round
 * number) it writes one word into exactly PERMILLE/1000 of its pages, one random page in each
 * stratum of 1000/PERMILLE pages (distinct, spread over the whole mapping, a fresh choice
 * every round), answers with a SIGUSR1 carrying the page count, and sits idle again.  A
 * signal and not a pipe: dump refuses pipes to the outside.
 *
 * The rounds, every dump with --leave-running:
 *   classic   ckpt dump, no --since-log: the whole memory copied while frozen
 *   full      trackd attached, then ckpt dump --since-log: the first of the chain, its pages
 *             copied after the thaw
 *   delta N   dirty, then ckpt dump --since-log --prev-images ../previous
 *   delta cf  one more with --copy-frozen (the delta's pages copied while frozen)
 * For each: wall time of the ckpt command (fork to reap), the frozen time (inventory
 * frozen_ns; a warning if the dump log's "frozen X ms" differs), the seizing time (the log's
 * "froze ... in X ms"), the pages-*.img bytes, the other images' bytes (metadata), and from
 * the log the pages written and taken from the parent images; with -v 4, where the frozen
 * time went, from the log's timestamps.  A memcpy bandwidth baseline is measured in the same
 * run.  A delta that wrote fewer pages than were dirtied gets a warning; timing never decides
 * the exit status, only errors do.
 *
 * Images and logs go to a private tmpfs under $TMPDIR, in a mount namespace of our own, and
 * go with it.  The driver is a child subreaper: trackd's daemon and the victim are reaped
 * here, also when a step fails.
 *
 *   incr-bench [--size MIB] [-r ROUNDS] [--permille N] [--prewarm GIB] [-v 3|4]
 *              [--log-dir DIR] [--ckpt PATH] [--trackd PATH]
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
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
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "bench_pattern.h"

#define STEP_TIMEOUT_MS	300000
#define MAX_ROUNDS	64
#define MEMCPY_LEN	(256ul << 20)

/* Aims from the issue. */
#define AIM_SIZE_RATIO	1.02	/* pages bytes / dirty bytes */
#define AIM_FROZEN_MS	10.0
#define AIM_SPEEDUP	20.0	/* full dump time / delta dump time */

struct opts {
	long size_mib;
	int rounds;
	int permille;
	long prewarm_gib;
	int verbosity;
	const char *log_dir;	/* NULL: logs stay in the private tmpfs */
	char ckpt[PATH_MAX];
	char trackd[PATH_MAX];
};

enum kind { R_CLASSIC, R_FULL, R_DELTA, R_DELTA_CF };

struct round {
	enum kind kind;
	char name[32];
	char dir[PATH_MAX];
	double wall_ms;
	double frozen_ms;	/* inventory frozen_ns */
	double freeze_ms;	/* seizing, from the log */
	uint64_t pages_bytes;	/* pages-*.img */
	uint64_t meta_bytes;	/* every other image */
	long dirty;		/* pages the victim wrote before this round; -1: none */
	long data_pages;	/* from the log; -1: not logged (not a delta) */
	long prev_pages;
	/* -v4: the frozen time split at the log's landmarks (ms); has_split when all were found. */
	bool has_split;
	double split_mark, split_plan, split_pages, split_rest;
};

static struct opts o = { .size_mib = 4096, .rounds = 5, .permille = 10, .prewarm_gib = -1,
			 .verbosity = 3 };
static char self_exe[PATH_MAX];
static char tmp[PATH_MAX];	/* the private tmpfs */
static char logdir[PATH_MAX];	/* trackd's */
static pid_t victim = -1;
static bool trackd_on;
static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
	interrupted = 1;
}

/* ---------------------------------------------------------------- the victim */

static uint64_t rng_next(uint64_t *s)
{
	/* splitmix64: any round number gives a well-mixed sequence. */
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void victim_answer(int n)
{
	if (sigqueue(getppid(), SIGUSR1, (union sigval){ .sival_int = n }))
		_exit(3);
}

/*
 * Writes nothing but the chosen pages between two orders (and its stack, in sigwaitinfo), so
 * the pages a delta must hold are the dirtied ones plus a handful.
 */
static int victim_main(size_t len, int permille)
{
	size_t pages = len / BENCH_PAGE, nr = pages * permille / 1000, stride;
	sigset_t set;
	uint64_t *mem;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	if (sigprocmask(SIG_BLOCK, &set, NULL) || setsid() < 0 || !nr)
		return 3;
	stride = pages / nr;
	mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return 3;
	bench_pattern_fill(mem, len, 0);
	victim_answer(0);
	for (;;) {
		siginfo_t si;
		uint64_t seed;

		/* The dump interrupts the wait (EINTR after a seize): wait again. */
		if (sigwaitinfo(&set, &si) < 0) {
			if (errno == EINTR)
				continue;
			return 3;
		}
		if (si.si_pid != getppid())
			continue;
		seed = (uint64_t)si.si_value.sival_int * 0x2545f4914f6cdd1dULL;
		for (size_t k = 0; k < nr; k++) {
			size_t p = k * stride + rng_next(&seed) % stride;
			uint64_t *w = &mem[p * (BENCH_PAGE / sizeof(*mem))];

			*w = ~*w;
		}
		victim_answer(nr);
	}
}

/* Wait for the victim's answer (SIGUSR1, blocked here): its value. */
static int victim_wait(int timeout_ms)
{
	struct timespec ts = { 1, 0 };	/* a dead victim is noticed within a second */
	double end = bench_now_ms() + timeout_ms;
	sigset_t set;
	siginfo_t si;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	for (;;) {
		int s = sigtimedwait(&set, &si, &ts);

		if (s == SIGUSR1 && si.si_pid == victim)
			return si.si_value.sival_int;
		if (interrupted)
			bench_die("interrupted");
		if (s < 0 && errno != EINTR && errno != EAGAIN)
			bench_die("waiting for the victim: %s", strerror(errno));
		if (waitpid(victim, NULL, WNOHANG) == victim) {
			victim = -1;
			bench_die("the victim died");
		}
		if (bench_now_ms() >= end)
			bench_die("the victim did not answer in %d ms", timeout_ms);
	}
}

static void victim_start(void)
{
	char mib[32], pm[32];

	snprintf(mib, sizeof(mib), "%ld", o.size_mib);
	snprintf(pm, sizeof(pm), "%d", o.permille);
	fflush(NULL);
	victim = fork();
	if (victim < 0)
		bench_die("fork: %s", strerror(errno));
	if (!victim) {
		int null = open("/dev/null", O_RDWR);

		/* Only 0-2, on /dev/null: dump refuses pipes to the outside. */
		if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0 ||
		    syscall(SYS_close_range, 3, ~0U, 0) < 0)
			_exit(127);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		execl(self_exe, self_exe, "--victim", mib, pm, (char *)NULL);
		_exit(127);
	}
	/* Filling 4 GiB takes a few seconds. */
	(void)victim_wait(STEP_TIMEOUT_MS);
}

static long victim_dirty(int round)
{
	if (sigqueue(victim, SIGUSR1, (union sigval){ .sival_int = round }))
		bench_die("signalling the victim: %s", strerror(errno));
	return victim_wait(STEP_TIMEOUT_MS);
}

/* ---------------------------------------------------------------- commands */

static void trackd_start(void)
{
	char pid[16], out[4096];
	const char *argv[] = { o.trackd, "-t", pid, "-L", logdir, "-d", NULL };

	snprintf(pid, sizeof(pid), "%d", victim);
	trackd_on = true;	/* even a failed start may have left a daemon */
	if (bench_run(argv, out, sizeof(out), STEP_TIMEOUT_MS, NULL))
		bench_die("trackd -t %s -L %s -d: %s", pid, logdir, out);
}

static void trackd_stop(void)
{
	const char *argv[] = { o.trackd, "stop", "-L", logdir, NULL };
	char out[4096];

	if (!trackd_on)
		return;
	trackd_on = false;
	if (bench_run(argv, out, sizeof(out), STEP_TIMEOUT_MS, NULL))
		bench_die("trackd stop -L %s: %s", logdir, out);
}

/* Everything we started, stopped and reaped; the tmpfs emptied. */
static void cleanup(void)
{
	char cmd[PATH_MAX + 16];

	if (trackd_on) {
		const char *argv[] = { o.trackd, "stop", "-L", logdir, NULL };
		char out[4096];

		trackd_on = false;
		if (bench_run(argv, out, sizeof(out), STEP_TIMEOUT_MS, NULL))
			fprintf(stderr, "incr-bench: trackd stop -L %s: %s", logdir, out);
	}
	if (victim > 0) {
		kill(victim, SIGKILL);
		(void)waitpid(victim, NULL, 0);
		victim = -1;
	}
	/* The daemon was reparented to us (a subreaper) and exits after answering its stop. */
	while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
		;
	if (tmp[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'/*", tmp);
		(void)!system(cmd);
		(void)umount2(tmp, MNT_DETACH);
		(void)rmdir(tmp);
	}
}

/* ---------------------------------------------------------------- measuring */

static void image_sizes(struct round *r)
{
	DIR *d = opendir(r->dir);
	struct dirent *de;

	if (!d)
		bench_die("cannot open '%s': %s", r->dir, strerror(errno));
	r->pages_bytes = r->meta_bytes = 0;
	while ((de = readdir(d))) {
		struct stat st;

		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) || !S_ISREG(st.st_mode))
			continue;
		if (!strncmp(de->d_name, "pages-", 6))
			r->pages_bytes += st.st_size;
		else
			r->meta_bytes += st.st_size;
	}
	closedir(d);
}

/* A log line's timestamp "( 0.012345) ...", seconds; -1 without. */
static double log_time(const char *line)
{
	double t;

	return sscanf(line, "( %lf)", &t) == 1 ? t : -1;
}

/*
 * The seizing time, the frozen time and the page counts from the -v3 log; at -v4 also where
 * the frozen time went: from the seize to the changelog mark (the written pages harvested,
 * trackd's mark), from there to the parasite being in (a delta's plan against the parent
 * images), to the pages planned (the page scan; a classic dump copies them here), and the
 * rest until the thaw (remaining images, re-arming, the parasite's removal).
 */
static void parse_log(struct round *r, const char *log, double *ret_log_frozen)
{
	double t_froze = -1, t_mark = -1, t_par = -1, t_pages = -1;
	char line[1024];
	FILE *f = fopen(log, "r");

	if (!f)
		bench_die("cannot open the dump log '%s': %s", log, strerror(errno));
	r->freeze_ms = -1;
	*ret_log_frozen = -1;
	r->data_pages = r->prev_pages = -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long data, prev;
		long np, nt, nz;
		double ms;
		char *p;

		if ((p = strstr(line, "dump done:")) && (p = strstr(p, "frozen ")))
			*ret_log_frozen = strtod(p + 7, NULL);
		p = strstr(line, "froze ");
		if (p && sscanf(p, "froze %ld process(es), %ld thread(s), %ld zombie(s) in %lf ms",
				&np, &nt, &nz, &ms) == 4) {
			if (np != 1 || nt != 1 || nz)
				bench_die("the dump froze %ld process(es), %ld thread(s), %ld zombie(s), "
				    "not the victim alone (log '%s')", np, nt, nz, log);
			r->freeze_ms = ms;
			t_froze = log_time(line);
		}
		if (strstr(line, "dump: changelog '") && strstr(line, "': mark "))
			t_mark = log_time(line);
		if (strstr(line, ": parasite at ") && t_par < 0)
			t_par = log_time(line);
		if (strstr(line, "mm: ") && strstr(line, " bytes of pages"))
			t_pages = log_time(line);
		/* "mm: PID: N pages written, M taken from the parent images" */
		for (p = strstr(line, ": "); p; p = strstr(p + 2, ": ")) {
			if (sscanf(p, ": %llu pages written, %llu taken from the parent images",
				   &data, &prev) == 2) {
				r->data_pages = data;
				r->prev_pages = prev;
			}
		}
	}
	fclose(f);
	if (r->freeze_ms < 0 || *ret_log_frozen < 0)
		bench_die("no 'froze ... in X ms' or 'dump done: ... frozen X ms' line in '%s'", log);
	/* A classic dump has no mark: its parasite comes right after the seize. */
	if (t_mark < 0 && r->kind == R_CLASSIC)
		t_mark = t_froze;
	r->has_split = t_froze >= 0 && t_mark >= t_froze && t_par >= t_mark && t_pages >= t_par;
	if (r->has_split) {
		double thaw = t_froze - r->freeze_ms / 1e3 + *ret_log_frozen / 1e3;

		r->split_mark = (t_mark - t_froze) * 1e3;
		r->split_plan = (t_par - t_mark) * 1e3;
		r->split_pages = (t_pages - t_par) * 1e3;
		r->split_rest = (thaw - t_pages) * 1e3;
	}
}

/* frozen_ns from `ckpt show DIR/inventory.img`. */
static double inventory_frozen_ms(const struct round *r)
{
	char inv[PATH_MAX], out[16384], *p;
	const char *argv[] = { o.ckpt, "show", inv, NULL };

	bench_path_fmt(inv, "%s/inventory.img", r->dir);
	if (bench_run(argv, out, sizeof(out), STEP_TIMEOUT_MS, NULL))
		bench_die("ckpt show %s: %s", inv, out);
	p = strstr(out, "frozen_ns");
	if (!p)
		bench_die("no frozen_ns in '%s':\n%s", inv, out);
	p += strcspn(p, "0123456789");
	return strtod(p, NULL) / 1e6;
}

static void dump(struct round *r, const char *prev)
{
	char pid[16], log[PATH_MAX], vopt[8], out[8192];
	const char *argv[20] = { o.ckpt, "dump", "-t", pid, "-D", r->dir, "--leave-running",
				 vopt, "-o", log };
	int n = 10;
	double log_frozen;

	snprintf(pid, sizeof(pid), "%d", victim);
	snprintf(vopt, sizeof(vopt), "-v%d", o.verbosity);
	bench_path_fmt(r->dir, "%s/%s", tmp, r->name);
	bench_path_fmt(log, "%s/%s.log", o.log_dir ? o.log_dir : tmp, r->name);
	if (r->kind != R_CLASSIC) {
		argv[n++] = "--since-log";
		argv[n++] = logdir;
	}
	if (prev) {
		argv[n++] = "--prev-images";
		argv[n++] = prev;
	}
	if (r->kind == R_DELTA_CF)
		argv[n++] = "--copy-frozen";
	argv[n] = NULL;
	if (bench_run(argv, out, sizeof(out), STEP_TIMEOUT_MS, &r->wall_ms))
		bench_die("ckpt dump into '%s' failed (log '%s'): %s", r->dir, log, out);
	if (interrupted)
		bench_die("interrupted");
	image_sizes(r);
	parse_log(r, log, &log_frozen);
	r->frozen_ms = inventory_frozen_ms(r);
	if (log_frozen - r->frozen_ms > 0.01 || r->frozen_ms - log_frozen > 0.01)
		fprintf(stderr, "incr-bench: warning: %s: inventory frozen_ns says %.3f ms, the log "
			"%.3f ms\n", r->name, r->frozen_ms, log_frozen);
	if (r->dirty >= 0 && r->data_pages < r->dirty)
		fprintf(stderr, "incr-bench: warning: %s: the delta wrote %ld pages, %ld were "
			"dirtied since the previous dump\n", r->name, r->data_pages, r->dirty);
	if (r->data_pages >= 0 && (uint64_t)r->data_pages * BENCH_PAGE != r->pages_bytes)
		fprintf(stderr, "incr-bench: warning: %s: %ld pages written but the pages files "
			"hold %llu bytes\n", r->name, r->data_pages,
			(unsigned long long)r->pages_bytes);
	fprintf(stderr, "  %-10s dump %8.1f ms, frozen %7.2f ms, %10.2f MiB of pages\n", r->name,
		r->wall_ms, r->frozen_ms, r->pages_bytes / 1048576.0);
}

static void rm_dir(const char *dir)
{
	char cmd[PATH_MAX + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd))
		bench_die("could not remove '%s'", dir);
}

/* Best of 3 memcpy's of 256 MiB between two touched buffers, GiB/s. */
static double memcpy_gibs(void)
{
	char *src = mmap(NULL, 2 * MEMCPY_LEN, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), *dst = src + MEMCPY_LEN;
	double best = 1e30;

	if (src == MAP_FAILED)
		bench_die("mmap: %s", strerror(errno));
	bench_pattern_fill((uint64_t *)src, MEMCPY_LEN, 0);
	memset(dst, 1, MEMCPY_LEN);
	for (int i = 0; i < 3; i++) {
		double t0 = bench_now_ms(), t;

		memcpy(dst, src, MEMCPY_LEN);
		__asm__ volatile("" : : "r"(dst) : "memory");
		t = bench_now_ms() - t0;
		best = t < best ? t : best;
	}
	munmap(src, 2 * MEMCPY_LEN);
	return (double)MEMCPY_LEN / (1ul << 30) / (best / 1e3);
}

/* ---------------------------------------------------------------- report */

static void report(struct round *rs, int nr, double gibs)
{
	double v[MAX_ROUNDS], dirty_bytes = 0;
	struct bench_stat ratio, frozen, wall, meta, pages;
	struct round *full = &rs[1], *classic = &rs[0];
	char scenario[32];
	int nd = 0;

	snprintf(scenario, sizeof(scenario), "incr-%ldm", o.size_mib);
	printf("\n%s: one process, %ld MiB, %.1f%% of its pages dirtied before each delta, "
	       "images on tmpfs\n", scenario, o.size_mib, o.permille / 10.0);
	printf("memcpy baseline: %.2f GiB/s (256 MiB, best of 3)\n\n", gibs);
	printf("%-9s %9s %9s %8s %11s %9s %8s %8s %8s %7s\n", "round", "dump ms", "frozen ms",
	       "seize ms", "pages MiB", "meta KiB", "dirtied", "written", "parent", "size");
	for (int i = 0; i < nr; i++) {
		struct round *r = &rs[i];

		printf("%-9s %9.1f %9.2f %8.2f %11.2f %9.1f", r->name, r->wall_ms, r->frozen_ms,
		       r->freeze_ms, r->pages_bytes / 1048576.0, r->meta_bytes / 1024.0);
		if (r->dirty >= 0)
			printf(" %8ld %8ld %8ld %6.4fx\n", r->dirty, r->data_pages, r->prev_pages,
			       (double)r->pages_bytes / (r->dirty * BENCH_PAGE));
		else
			printf(" %8s %8s %8s %7s\n", "-", "-", "-", "-");
	}
	printf("(dirtied: pages the victim wrote since the previous dump; written / parent: the "
	       "delta's\n pages in its own pages file / taken from the parent images; size: pages "
	       "bytes / dirtied bytes)\n\n");
	if (rs[nr - 1].has_split) {
		printf("where the frozen time went (ms, from the -v4 log's timestamps):\n");
		printf("%-9s %9s %8s %9s %9s %9s %9s\n", "round", "frozen", "seize", "to mark",
		       "plan", "pages", "rest");
		for (int i = 0; i < nr; i++)
			if (rs[i].has_split)
				printf("%-9s %9.2f %8.2f %9.2f %9.2f %9.2f %9.2f\n", rs[i].name,
				       rs[i].frozen_ms, rs[i].freeze_ms, rs[i].split_mark,
				       rs[i].split_plan, rs[i].split_pages, rs[i].split_rest);
		printf("(to mark: harvest of the written pages and trackd's mark; plan: to the parasite "
		       "being in,\n a delta's plan against its parent images; pages: the page scan, "
		       "and the copy when frozen;\n rest: other images, re-arm, parasite removal)\n\n");
	}

	for (int i = 2; i < nr; i++)
		if (rs[i].kind == R_DELTA)
			v[nd++] = (double)rs[i].pages_bytes / (rs[i].dirty * BENCH_PAGE);
	ratio = bench_stat_of(v, nd);
	nd = 0;
	for (int i = 2; i < nr; i++)
		if (rs[i].kind == R_DELTA)
			v[nd++] = rs[i].frozen_ms;
	frozen = bench_stat_of(v, nd);
	nd = 0;
	for (int i = 2; i < nr; i++)
		if (rs[i].kind == R_DELTA)
			v[nd++] = rs[i].wall_ms;
	wall = bench_stat_of(v, nd);
	nd = 0;
	for (int i = 2; i < nr; i++)
		if (rs[i].kind == R_DELTA)
			v[nd++] = rs[i].meta_bytes / 1024.0;
	meta = bench_stat_of(v, nd);
	nd = 0;
	for (int i = 2; i < nr; i++)
		if (rs[i].kind == R_DELTA) {
			dirty_bytes = rs[i].dirty * BENCH_PAGE;
			v[nd++] = rs[i].pages_bytes / 1048576.0;
		}
	pages = bench_stat_of(v, nd);

	bench_line(scenario, "memcpy_throughput", "GiB/s", bench_stat_one(gibs), 1);
	bench_line(scenario, "classic_dump_time", "ms", bench_stat_one(classic->wall_ms), 1);
	bench_line(scenario, "classic_frozen_time", "ms", bench_stat_one(classic->frozen_ms), 1);
	bench_line(scenario, "full_dump_time", "ms", bench_stat_one(full->wall_ms), 1);
	bench_line(scenario, "full_frozen_time", "ms", bench_stat_one(full->frozen_ms), 1);
	bench_line(scenario, "delta_dump_time", "ms", wall, nd);
	bench_line(scenario, "delta_frozen_time", "ms", frozen, nd);
	bench_line(scenario, "delta_pages_size", "MiB", pages, nd);
	bench_line(scenario, "delta_meta_size", "KiB", meta, nd);
	bench_line(scenario, "delta_size_vs_dirty", "ratio", ratio, nd);
	bench_line(scenario, "full_vs_delta_time", "ratio",
		   bench_stat_one(full->wall_ms / wall.median), nd);
	if (rs[nr - 1].kind == R_DELTA_CF)
		bench_line(scenario, "delta_copy_frozen_frozen_time", "ms",
			   bench_stat_one(rs[nr - 1].frozen_ms), 1);

	printf("\nmedian [min .. max] of %d delta rounds:\n", nd);
	printf("  delta pages %.2f MiB [%.2f .. %.2f] for %.2f MiB dirtied, + %.1f KiB of other "
	       "images\n", pages.median, pages.min, pages.max, dirty_bytes / 1048576.0,
	       meta.median);
	printf("  size / dirtied  %.4fx [%.4f .. %.4f]   aim <= %.2fx: %s\n", ratio.median,
	       ratio.min, ratio.max, AIM_SIZE_RATIO, ratio.max <= AIM_SIZE_RATIO ? "met" : "MISSED");
	printf("  frozen %.2f ms [%.2f .. %.2f] (full --since-log round: %.2f ms)   aim < %.0f ms: "
	       "%s\n", frozen.median, frozen.min, frozen.max, full->frozen_ms, AIM_FROZEN_MS,
	       frozen.max < AIM_FROZEN_MS && full->frozen_ms < AIM_FROZEN_MS ? "met" :
	       frozen.median < AIM_FROZEN_MS ? "MISSED (the full round or one delta)" : "MISSED");
	printf("  dump %.1f ms [%.1f .. %.1f] against %.1f ms full (%.1f ms classic): %.1fx "
	       "faster (%.1fx)   aim >= %.0fx: %s\n", wall.median, wall.min, wall.max,
	       full->wall_ms, classic->wall_ms, full->wall_ms / wall.median,
	       classic->wall_ms / wall.median, AIM_SPEEDUP,
	       full->wall_ms / wall.median >= AIM_SPEEDUP ? "met" : "MISSED");
	printf("  at memcpy speed: the dirtied bytes %.1f ms, the whole memory %.1f ms\n",
	       dirty_bytes / (1ul << 30) / gibs * 1e3,
	       (double)(o.size_mib << 20) / (1ul << 30) / gibs * 1e3);
	fflush(stdout);
}

/* ---------------------------------------------------------------- driver */

/* A private tmpfs under $TMPDIR in a mount namespace of ours: it goes when we do. */
static void setup_tmpfs(void)
{
	char opts[64];

	bench_path_fmt(tmp, "%s/incr-bench.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(tmp)) {
		tmp[0] = 0;
		bench_die("mkdtemp: %s", strerror(errno));
	}
	if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL)) {
		rmdir(tmp);
		tmp[0] = 0;
		bench_die("cannot make a mount namespace: %s (run as root)", strerror(errno));
	}
	/* Two full dumps never coexist: one full image, the deltas, the logs. */
	snprintf(opts, sizeof(opts), "size=%ldm,mode=0700",
		 o.size_mib + o.size_mib * o.permille / 1000 * (o.rounds + 1) + 1024);
	if (mount("incr-bench", tmp, "tmpfs", 0, opts)) {
		rmdir(tmp);
		tmp[0] = 0;
		bench_die("mount tmpfs: %s", strerror(errno));
	}
	bench_path_fmt(logdir, "%s/changelog", tmp);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: incr-bench [--size MIB] [-r ROUNDS] [--permille N] [--prewarm GIB]\n"
		   "                  [-v 3|4] [--log-dir DIR] [--ckpt PATH] [--trackd PATH]\n"
		   "  --size      the victim's memory (default 4096 MiB)\n"
		   "  -r          delta rounds (default 5, at most %d)\n"
		   "  --permille  pages dirtied before each delta, per thousand (default 10)\n"
		   "  --prewarm   GiB to touch and free first (default: twice the size + 1)\n"
		   "  -v          ckpt's log level (default 3)\n"
		   "  --log-dir   keep ckpt's logs there\n", MAX_ROUNDS - 3);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "size", required_argument, NULL, 'S' },
		{ "rounds", required_argument, NULL, 'r' },
		{ "permille", required_argument, NULL, 'p' },
		{ "prewarm", required_argument, NULL, 'P' },
		{ "verbosity", required_argument, NULL, 'v' },
		{ "log-dir", required_argument, NULL, 'L' },
		{ "ckpt", required_argument, NULL, 'C' },
		{ "trackd", required_argument, NULL, 'T' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	struct round rs[MAX_ROUNDS] = {};
	sigset_t usr1;
	double gibs;
	int c, nr = 0;

	if (argc == 4 && !strcmp(argv[1], "--victim"))
		return victim_main((size_t)atol(argv[2]) << 20, atoi(argv[3]));
	bench_prog = "incr-bench";
	bench_on_die = cleanup;
	bench_self_relative(self_exe, "incr-bench");
	bench_self_relative(o.ckpt, "../ckpt");
	bench_self_relative(o.trackd, "../trackd");
	while ((c = getopt_long(argc, argv, "r:v:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'S':
			o.size_mib = atol(optarg);
			break;
		case 'r':
			o.rounds = atoi(optarg);
			break;
		case 'p':
			o.permille = atoi(optarg);
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
			snprintf(o.ckpt, sizeof(o.ckpt), "%s", optarg);
			break;
		case 'T':
			snprintf(o.trackd, sizeof(o.trackd), "%s", optarg);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc || o.size_mib < 16 || o.rounds < 1 || o.rounds > MAX_ROUNDS - 3 ||
	    o.permille < 1 || o.permille > 1000 || o.prewarm_gib < -1 || o.verbosity < 3 ||
	    o.verbosity > 4) {
		usage(stderr);
		return 2;
	}
	if (access(o.ckpt, X_OK) || access(o.trackd, X_OK)) {
		fprintf(stderr, "incr-bench: need '%s' and '%s' (make bench builds them)\n", o.ckpt,
			o.trackd);
		return 2;
	}
	/*
	 * Freed memory goes back to the host on this VM and its next first touch is slow: cover
	 * the victim and a full image (a classic dump first-touching its 4 GiB of tmpfs ran at
	 * half the speed of one into memory touched before).
	 */
	if (o.prewarm_gib < 0)
		o.prewarm_gib = (2 * o.size_mib + 1023) / 1024 + 1;
	bench_host_info();
	/* The victim's answers; and trackd's daemon comes back to us. */
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	sigprocmask(SIG_BLOCK, &usr1, NULL);
	/* Ctrl-C ends the step under way and cleans up: no trackd left attached. */
	sigaction(SIGINT, &(struct sigaction){ .sa_handler = on_interrupt, .sa_flags = SA_RESTART },
		  NULL);
	sigaction(SIGTERM, &(struct sigaction){ .sa_handler = on_interrupt, .sa_flags = SA_RESTART },
		  NULL);
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	setup_tmpfs();

	fprintf(stderr, "incr-bench: %s, kernel %s, CPU %s, %ld CPUs; %ld MiB, %d delta rounds, "
		"prewarm %ld GiB\n", o.ckpt, bench_kernel, bench_cpu,
		sysconf(_SC_NPROCESSORS_ONLN), o.size_mib, o.rounds, o.prewarm_gib);
	bench_prewarm(o.prewarm_gib);
	gibs = memcpy_gibs();
	victim_start();

	/* The classic frozen copy, before trackd attaches; its images are not needed after. */
	rs[nr] = (struct round){ .kind = R_CLASSIC, .name = "classic", .dirty = -1 };
	dump(&rs[nr++], NULL);
	rm_dir(rs[0].dir);

	trackd_start();
	rs[nr] = (struct round){ .kind = R_FULL, .name = "full", .dirty = -1 };
	dump(&rs[nr++], NULL);
	for (int i = 1; i <= o.rounds + 1; i++) {
		struct round *r = &rs[nr];
		char prev[PATH_MAX];

		*r = (struct round){ .kind = i <= o.rounds ? R_DELTA : R_DELTA_CF };
		snprintf(r->name, sizeof(r->name), i <= o.rounds ? "delta%d" : "delta-cf", i);
		bench_path_fmt(prev, "../%s", rs[nr - 1].name);
		r->dirty = victim_dirty(i);
		dump(r, prev);
		nr++;
	}
	trackd_stop();
	kill(victim, SIGKILL);
	(void)waitpid(victim, NULL, 0);
	victim = -1;

	report(rs, nr, gibs);
	cleanup();
	return 0;
}
