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
 * Every run measures the baselines next to ckpt, so ratios compare figures
 * taken under the same conditions.  A restore whose memory does not verify
 * aborts the benchmark: it never prints a number.
 */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
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
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_pattern.h"

#define STEP_TIMEOUT_MS 120000

/* Aims from issue 2, "Speed". */
#define AIM_DUMP_RATIO    1.2
#define AIM_RESTORE_RATIO 1.0
#define AIM_RSS_MIB       64.0

enum metric {
	M_DUMP_MS,
	M_RESTORE_MS,
	M_FROZEN_MS,
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

static const struct {
	const char *name;
	const char *unit;
} metrics[M_NR] = {
	[M_DUMP_MS] = { "dump_time", "ms" },
	[M_RESTORE_MS] = { "restore_time", "ms" },
	[M_FROZEN_MS] = { "frozen_time", "ms" },
	[M_DUMP_GIBS] = { "dump_throughput", "GiB/s" },
	[M_RESTORE_GIBS] = { "restore_throughput", "GiB/s" },
	[M_IMAGE_MIB] = { "image_size", "MiB" },
	[M_DUMP_RSS_MIB] = { "dump_peak_rss", "MiB" },
	[M_RESTORE_RSS_MIB] = { "restore_peak_rss", "MiB" },
	[M_BASE_A_MS] = { "baseline_a_write_time", "ms" },
	[M_BASE_B_MS] = { "baseline_b_read_time", "ms" },
	[M_BASE_A_GIBS] = { "baseline_a_throughput", "GiB/s" },
	[M_BASE_B_GIBS] = { "baseline_b_throughput", "GiB/s" },
	[M_DUMP_RATIO] = { "dump_vs_baseline_a", "ratio" },
	[M_RESTORE_RATIO] = { "restore_vs_baseline_b", "ratio" },
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

struct bench {
	const struct opts *o;
	const char *name;
	size_t len;
	char tmp[PATH_MAX];	/* the private tmpfs */
	uint64_t *src;		/* the pattern, source of baseline a */
	pid_t victim;		/* live victim, killed on every exit path */
	double (*samples)[M_NR];
	int nr_samples;
	int iter;		/* run number, warm-ups included: names the logs */
};

struct scenario {
	const char *name;
	const char *desc;
	long size_mib;
	int (*run)(struct bench *b, double *ret_sample);
};

static char kernel_release[65];
static char cpu_model[128] = "unknown";

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static pid_t victim_pid;

static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "ckpt-bench: error: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	/* As namespace init our exit kills whatever is left; reap the victim anyway. */
	if (victim_pid > 0) {
		kill(victim_pid, SIGKILL);
		(void)waitpid(victim_pid, NULL, 0);
	}
	exit(1);
}

/* snprintf for paths; a path that does not fit is an error, not a surprise. */
static void path_fmt(char *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void path_fmt(char *out, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(out, PATH_MAX, fmt, ap);
	va_end(ap);
	if (n < 0 || n >= PATH_MAX)
		die("path too long: '%s...'", out);
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static double gib(size_t len)
{
	return (double)len / (1UL << 30);
}

static void read_host_info(void)
{
	struct utsname u;
	char line[512];
	FILE *f;

	if (uname(&u) == 0)
		snprintf(kernel_release, sizeof(kernel_release), "%s", u.release);
	f = fopen("/proc/cpuinfo", "r");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *colon = strchr(line, ':');

		if (strncmp(line, "model name", 10) || !colon)
			continue;
		colon += 1 + strspn(colon + 1, " \t");
		colon[strcspn(colon, "\n")] = '\0';
		snprintf(cpu_model, sizeof(cpu_model), "%s", colon);
		break;
	}
	fclose(f);
}

/*
 * Wait for a child of ours (or an orphan we inherited as init) with a bound:
 * a pidfd becomes readable when the task exits.
 */
static int wait_bounded(pid_t pid, int *ret_status, struct rusage *ret_ru, int timeout_ms)
{
	int pfd = syscall(SYS_pidfd_open, pid, 0);
	struct pollfd p;
	int status, n;

	if (pfd < 0)
		return -errno;
	p = (struct pollfd){ .fd = pfd, .events = POLLIN };
	do
		n = poll(&p, 1, timeout_ms);
	while (n < 0 && errno == EINTR);
	close(pfd);
	if (n == 0) {
		kill(pid, SIGKILL);
		(void)wait4(pid, NULL, 0, NULL);
		return -ETIMEDOUT;
	}
	while (wait4(pid, &status, 0, ret_ru) < 0)
		if (errno != EINTR)
			return -errno;
	*ret_status = status;
	return 0;
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
	double t0 = now_ms(), ms;
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
	err = wait_bounded(pid, &status, &ru, STEP_TIMEOUT_MS);
	ms = now_ms() - t0;
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
		die("pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
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
	err = wait_bounded(pid, &status, NULL, STEP_TIMEOUT_MS + 10000);
	if (err)
		die("waiting for the launcher of 'ckpt %s': %s", argv[1], strerror(-err));
	if (n <= 0 || !WIFEXITED(status) || WEXITSTATUS(status))
		die("could not run 'ckpt %s'", argv[1]);
	rep[n] = '\0';
	if (sscanf(rep, "%d %lf %ld", &cstatus, ret_ms, &rss_kib) != 3)
		die("bad launcher report '%s'", rep);
	if (!WIFEXITED(cstatus) || WEXITSTATUS(cstatus))
		die("'ckpt %s' failed (status 0x%x); keep its log with --log-dir", argv[1], cstatus);
	*ret_rss_mib = rss_kib / 1024.0;
}

static pid_t start_victim(struct bench *b)
{
	char size[32], c;
	int pfd[2], status;
	ssize_t n;
	pid_t pid;

	snprintf(size, sizeof(size), "%zu", b->len >> 20);
	if (pipe2(pfd, O_CLOEXEC) < 0)
		die("pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		victim_fds(pfd[1]);
		execl(b->o->victim, b->o->victim, size, (char *)NULL);
		_exit(127);
	}
	victim_pid = pid;
	close(pfd[1]);
	/* One byte once the memory is filled, then EOF once it closed fd 3. */
	n = read(pfd[0], &c, 1);
	if (n == 1)
		n = read(pfd[0], &c, 1);
	close(pfd[0]);
	if (n != 0) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			victim_pid = 0;
		die("victim %d did not get ready", pid);
	}
	return pid;
}

static void check_victim(struct bench *b, pid_t pid)
{
	int status, err;

	if (kill(pid, SIGUSR2) < 0)
		die("restored victim %d is gone: %s", pid, strerror(errno));
	err = wait_bounded(pid, &status, NULL, STEP_TIMEOUT_MS);
	if (err)
		die("waiting for restored victim %d: %s", pid, strerror(-err));
	victim_pid = 0;
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		die("restored victim %d failed its memory check (status 0x%x): restore is wrong",
		    pid, status);
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
		die("cannot open '%s': %s", dir, strerror(errno));
	while ((de = readdir(d)))
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISREG(st.st_mode))
			sum += st.st_size;
	closedir(d);
	return sum / (1 << 20);
}

static double log_frozen_ms(const char *log)
{
	char line[1024];
	double ms = -1;
	FILE *f = fopen(log, "r");

	if (!f)
		die("cannot open dump log '%s': %s", log, strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		char *p = strstr(line, "dump done:");

		if (p && (p = strstr(p, "frozen ")))
			ms = strtod(p + 7, NULL);
	}
	fclose(f);
	if (ms < 0)
		die("no 'dump done: ... frozen X ms' line in '%s' (needs -v3 or more)", log);
	return ms;
}

/* Baseline a: the same bytes from memory into a new tmpfs file with write(). */
static double baseline_write(struct bench *b, const char *file)
{
	const size_t chunk = 1 << 20;
	double t0 = now_ms();
	int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0)
		die("cannot create '%s': %s", file, strerror(errno));
	for (size_t off = 0; off < b->len;) {
		size_t n = b->len - off < chunk ? b->len - off : chunk;
		ssize_t w = write(fd, (char *)b->src + off, n);

		if (w <= 0)
			die("write '%s': %s", file, w < 0 ? strerror(errno) : "short");
		off += w;
	}
	close(fd);
	return now_ms() - t0;
}

/* Baseline b: read it back into freshly mapped anonymous memory, one thread. */
static double baseline_read(struct bench *b, const char *file)
{
	const size_t chunk = 1 << 20;
	double t0 = now_ms(), t;
	char *dst;
	int fd;

	dst = mmap(NULL, b->len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (dst == MAP_FAILED)
		die("mmap %zu bytes: %s", b->len, strerror(errno));
	fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		die("cannot open '%s': %s", file, strerror(errno));
	for (size_t off = 0; off < b->len;) {
		size_t n = b->len - off < chunk ? b->len - off : chunk;
		ssize_t r = read(fd, dst + off, n);

		if (r <= 0)
			die("read '%s': %s", file, r < 0 ? strerror(errno) : "short");
		off += r;
	}
	close(fd);
	t = now_ms() - t0;
	if (bench_pattern_check((uint64_t *)dst, b->len))
		die("baseline b read back wrong data");
	munmap(dst, b->len);
	return t;
}

static int run_dump_restore(struct bench *b, double *s)
{
	char dir[PATH_MAX], base[PATH_MAX], dlog[PATH_MAX], rlog[PATH_MAX], pidf[PATH_MAX];
	char pid_s[16], vopt[8], got[32];
	int status, n = b->iter;
	const char *logs = b->o->log_dir ? b->o->log_dir : b->tmp;
	pid_t pid, rpid;
	FILE *f;

	path_fmt(dir, "%s/img", b->tmp);
	path_fmt(base, "%s/baseline", b->tmp);
	path_fmt(pidf, "%s/restore.pid", b->tmp);
	path_fmt(dlog, "%s/%s-dump-%d.log", logs, b->name, n);
	path_fmt(rlog, "%s/%s-restore-%d.log", logs, b->name, n);
	snprintf(vopt, sizeof(vopt), "-v%d", b->o->verbosity);

	s[M_BASE_A_MS] = baseline_write(b, base);
	s[M_BASE_B_MS] = baseline_read(b, base);
	unlink(base);

	pid = start_victim(b);
	snprintf(pid_s, sizeof(pid_s), "%d", pid);

	const char *const dump[] = { b->o->ckpt, "dump", "-t", pid_s, "-D", dir, vopt, "-o", dlog, NULL };
	run_ckpt(b, dump, &s[M_DUMP_MS], &s[M_DUMP_RSS_MIB]);
	/* Dump killed it; reap it so the PID is free for restore. */
	if (wait_bounded(pid, &status, NULL, STEP_TIMEOUT_MS) < 0)
		die("victim %d did not die after dump", pid);
	victim_pid = 0;
	s[M_FROZEN_MS] = log_frozen_ms(dlog);
	s[M_IMAGE_MIB] = dir_size_mib(dir);

	const char *const rst[] = { b->o->ckpt, "restore", "-D", dir, "-d", "--pidfile", pidf,
			vopt, "-o", rlog, NULL };
	run_ckpt(b, rst, &s[M_RESTORE_MS], &s[M_RESTORE_RSS_MIB]);
	victim_pid = pid;
	f = fopen(pidf, "r");
	if (!f || !fgets(got, sizeof(got), f))
		die("no pidfile '%s' after restore", pidf);
	fclose(f);
	unlink(pidf);
	rpid = atoi(got);
	if (rpid != pid)
		die("restored task has PID %d, dumped %d", rpid, pid);
	check_victim(b, pid);
	rm_tree(dir);

	s[M_DUMP_GIBS] = gib(b->len) / (s[M_DUMP_MS] / 1e3);
	s[M_RESTORE_GIBS] = gib(b->len) / (s[M_RESTORE_MS] / 1e3);
	s[M_BASE_A_GIBS] = gib(b->len) / (s[M_BASE_A_MS] / 1e3);
	s[M_BASE_B_GIBS] = gib(b->len) / (s[M_BASE_B_MS] / 1e3);
	s[M_DUMP_RATIO] = s[M_DUMP_MS] / s[M_BASE_A_MS];
	s[M_RESTORE_RATIO] = s[M_RESTORE_MS] / s[M_BASE_B_MS];
	return 0;
}

static const struct scenario scenarios[] = {
	{ "dump-restore-1g", "dump + restore of 1 GiB of touched anonymous memory to tmpfs",
	  1024, run_dump_restore },
	{ "dump-restore-256m", "the same with 256 MiB (peak RSS must not grow with the target)",
	  256, run_dump_restore },
};
#define NR_SCENARIOS (sizeof(scenarios) / sizeof(scenarios[0]))

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

struct stat_ {
	double median, min, max;
};

static struct stat_ stat_of(struct bench *b, enum metric m)
{
	double v[b->nr_samples];
	int n = b->nr_samples;

	for (int i = 0; i < n; i++)
		v[i] = b->samples[i][m];
	qsort(v, n, sizeof(v[0]), cmp_double);
	return (struct stat_){
		.median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2,
		.min = v[0],
		.max = v[n - 1],
	};
}

static void report(struct bench *b)
{
	struct stat_ st[M_NR];
	bool dump_ok, rst_ok, rss_ok;

	for (int m = 0; m < M_NR; m++) {
		st[m] = stat_of(b, m);
		printf("BENCH scenario=%s metric=%s unit=%s median=%.4g spread=%.4g runs=%d "
		       "kernel=%s cpu=\"%s\"\n",
		       b->name, metrics[m].name, metrics[m].unit, st[m].median,
		       st[m].max - st[m].min, b->nr_samples, kernel_release, cpu_model);
	}
	dump_ok = st[M_DUMP_RATIO].median <= AIM_DUMP_RATIO;
	rst_ok = st[M_RESTORE_RATIO].median <= AIM_RESTORE_RATIO;
	rss_ok = st[M_DUMP_RSS_MIB].max < AIM_RSS_MIB && st[M_RESTORE_RSS_MIB].max < AIM_RSS_MIB;

#define ROW(label, m, fmt) \
	printf("  %-22s " fmt " [" fmt " .. " fmt "] %s\n", label, st[m].median, st[m].min, \
	       st[m].max, metrics[m].unit)
	printf("\n%s: %zu MiB, median [min .. max] of %d runs\n", b->name, b->len >> 20,
	       b->nr_samples);
	ROW("dump", M_DUMP_MS, "%8.1f");
	ROW("  baseline a (write)", M_BASE_A_MS, "%8.1f");
	ROW("restore -d", M_RESTORE_MS, "%8.1f");
	ROW("  baseline b (read)", M_BASE_B_MS, "%8.1f");
	ROW("frozen", M_FROZEN_MS, "%8.1f");
	ROW("dump throughput", M_DUMP_GIBS, "%8.2f");
	ROW("restore throughput", M_RESTORE_GIBS, "%8.2f");
	ROW("image size", M_IMAGE_MIB, "%8.1f");
	ROW("ckpt dump peak RSS", M_DUMP_RSS_MIB, "%8.1f");
	ROW("ckpt restore peak RSS", M_RESTORE_RSS_MIB, "%8.1f");
#undef ROW
	printf("  dump / baseline a     %6.2fx   aim <= %.1fx: %s\n", st[M_DUMP_RATIO].median,
	       AIM_DUMP_RATIO, dump_ok ? "met" : "MISSED");
	printf("  restore / baseline b  %6.2fx   aim <= %.1fx: %s\n", st[M_RESTORE_RATIO].median,
	       AIM_RESTORE_RATIO, rst_ok ? "met" : "MISSED");
	printf("  peak RSS (worst run)  %6.1f / %.1f MiB   aim < %.0f MiB: %s\n\n",
	       st[M_DUMP_RSS_MIB].max, st[M_RESTORE_RSS_MIB].max, AIM_RSS_MIB,
	       rss_ok ? "met" : "MISSED");
	fflush(stdout);
}

static void prewarm(long gib_)
{
	size_t len = (size_t)gib_ << 30;
	char *p;

	if (!len)
		return;
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		die("prewarm: mmap %ld GiB: %s", gib_, strerror(errno));
	for (size_t off = 0; off < len; off += BENCH_PAGE)
		p[off] = 1;
	munmap(p, len);
}

static void run_scenario(const struct opts *o, const struct scenario *sc, const char *tmp)
{
	struct bench b = { .o = o, .name = sc->name };
	int total = o->warmup + o->runs;

	b.len = (size_t)(o->size_mib ? o->size_mib : sc->size_mib) << 20;
	snprintf(b.tmp, sizeof(b.tmp), "%s", tmp);
	b.src = mmap(NULL, b.len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	b.samples = calloc(total, sizeof(*b.samples));
	if (b.src == MAP_FAILED || !b.samples)
		die("out of memory for %s", sc->name);
	bench_pattern_fill(b.src, b.len);

	for (int i = 0; i < total; i++) {
		double *s = b.samples[b.nr_samples];
		bool warm = i < o->warmup;

		/* Freed memory drifts back to the host: re-touch before every run. */
		prewarm(o->prewarm_gib);
		b.iter = i;
		sc->run(&b, s);
		fprintf(stderr, "  %s %s %d/%d: dump %.1f ms (base a %.1f), restore %.1f ms "
			"(base b %.1f), frozen %.1f ms, rss %.1f/%.1f MiB\n",
			sc->name, warm ? "warm-up" : "run", warm ? i + 1 : i - o->warmup + 1,
			warm ? o->warmup : o->runs, s[M_DUMP_MS], s[M_BASE_A_MS], s[M_RESTORE_MS],
			s[M_BASE_B_MS], s[M_FROZEN_MS], s[M_DUMP_RSS_MIB], s[M_RESTORE_RSS_MIB]);
		if (!warm)
			b.nr_samples++;
	}
	report(&b);
	munmap(b.src, b.len);
	free(b.samples);
}

/* PID 1 of the new namespaces: mounts, then the scenarios. */
static int bench_init(const struct opts *o, const bool *selected, const char *tmp)
{
	char size[64];

	/* Our own mount namespace, so the parent can remove the mount point after us. */
	if (unshare(CLONE_NEWNS) < 0)
		die("cannot create a mount namespace: %s", strerror(errno));
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		die("cannot make mounts private: %s", strerror(errno));
	if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		die("cannot mount /proc: %s", strerror(errno));
	snprintf(size, sizeof(size), "size=%ldm,mode=0700", 4 * (o->size_mib ? o->size_mib : 1024));
	if (mount("tmpfs", tmp, "tmpfs", MS_NOSUID | MS_NODEV, size) < 0)
		die("cannot mount tmpfs on '%s': %s", tmp, strerror(errno));

	fprintf(stderr, "ckpt-bench: %s, kernel %s, CPU %s, %ld CPUs; prewarm %ld GiB\n", o->ckpt,
		kernel_release, cpu_model, sysconf(_SC_NPROCESSORS_ONLN), o->prewarm_gib);
	prewarm(o->prewarm_gib);
	for (size_t i = 0; i < NR_SCENARIOS; i++)
		if (selected[i])
			run_scenario(o, &scenarios[i], tmp);
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
		"      --size       override the scenario's memory size, MiB\n"
		"      --prewarm    GiB to touch and free before the scenarios and before\n"
		"                   every run (ballooned memory; default 4)\n"
		"  -v, --verbosity  ckpt log level, at least 3 (default 3)\n"
		"      --log-dir    keep ckpt's logs there (default: the private tmpfs)\n"
		"      --ckpt       ckpt binary (default: ../ckpt next to this driver)\n"
		"  -l, --list       list the scenarios\n");
}

static void self_relative(char *out, const char *rel)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;

	if (n < 0)
		die("readlink /proc/self/exe: %s", strerror(errno));
	self[n] = '\0';
	slash = strrchr(self, '/');
	*slash = '\0';
	path_fmt(out, "%s/%s", self, rel);
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
	self_relative(self_exe, "ckpt-bench");
	self_relative(o.ckpt, "../ckpt");
	self_relative(o.victim, "bench_victim");
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
	read_host_info();
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
