// SPDX-License-Identifier: MIT
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "bench_pattern.h"

const char *bench_prog = "bench";
void (*bench_on_die)(void);
char bench_kernel[65] = "unknown", bench_cpu[128] = "unknown";

void bench_die(const char *fmt, ...)
{
	void (*on_die)(void) = bench_on_die;
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "%s: error: ", bench_prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	/* Once: a failure while stopping things ends here. */
	bench_on_die = NULL;
	if (on_die)
		on_die();
	exit(1);
}

double bench_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

void bench_host_info(void)
{
	struct utsname u;
	char line[512];
	FILE *f;

	if (!uname(&u))
		snprintf(bench_kernel, sizeof(bench_kernel), "%s", u.release);
	f = fopen("/proc/cpuinfo", "r");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *colon = strchr(line, ':');

		if (strncmp(line, "model name", 10) || !colon)
			continue;
		colon += 1 + strspn(colon + 1, " \t");
		colon[strcspn(colon, "\n")] = 0;
		snprintf(bench_cpu, sizeof(bench_cpu), "%s", colon);
		break;
	}
	fclose(f);
}

void bench_path_fmt(char *out, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(out, PATH_MAX, fmt, ap);
	va_end(ap);
	if (n < 0 || n >= PATH_MAX)
		bench_die("path too long: '%s...'", out);
}

void bench_self_relative(char *out, const char *rel)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n < 0)
		bench_die("readlink /proc/self/exe: %s", strerror(errno));
	self[n] = 0;
	*strrchr(self, '/') = 0;
	bench_path_fmt(out, "%s/%s", self, rel);
}

void bench_prewarm(long gib)
{
	size_t len = (size_t)gib << 30;
	char *p;

	if (!len)
		return;
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		bench_die("prewarm: mmap %ld GiB: %s", gib, strerror(errno));
	for (size_t off = 0; off < len; off += BENCH_PAGE)
		p[off] = 1;
	munmap(p, len);
}

int bench_wait(pid_t pid, int *ret_status, struct rusage *ret_ru, int timeout_ms)
{
	/* A pidfd becomes readable when the task exits. */
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

int bench_run(const char *const argv[], char *out, size_t len, int timeout_ms, double *ret_ms)
{
	double t0 = bench_now_ms();
	int p[2], status, err;
	size_t got = 0;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC))
		bench_die("pipe: %s", strerror(errno));
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		bench_die("fork: %s", strerror(errno));
	if (!pid) {
		int null = open("/dev/null", O_RDONLY);

		if (null < 0 || dup2(null, 0) < 0 || dup2(p[1], 1) < 0 || dup2(p[1], 2) < 0 ||
		    syscall(SYS_close_range, 3, ~0U, 0) < 0)
			_exit(127);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(p[1]);
	for (ssize_t n; got + 1 < len && (n = read(p[0], out + got, len - got - 1)) > 0;)
		got += n;
	out[got] = 0;
	close(p[0]);
	err = bench_wait(pid, &status, NULL, timeout_ms);
	if (err && err != -ETIMEDOUT)
		bench_die("waiting for %s: %s", argv[0], strerror(-err));
	if (ret_ms)
		*ret_ms = bench_now_ms() - t0;
	if (err)
		return 128 + SIGKILL;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

struct bench_stat bench_stat_of(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return (struct bench_stat){
		.median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2,
		.min = v[0],
		.max = v[n - 1],
	};
}

struct bench_stat bench_stat_one(double v)
{
	return (struct bench_stat){ v, v, v };
}

void bench_line(const char *scenario, const char *metric, const char *unit, struct bench_stat s,
		int runs)
{
	printf("BENCH scenario=%s metric=%s unit=%s median=%.4g spread=%.4g min=%.4g runs=%d "
	       "kernel=%s cpu=\"%s\"\n", scenario, metric, unit, s.median, s.max - s.min, s.min,
	       runs, bench_kernel, bench_cpu);
}
