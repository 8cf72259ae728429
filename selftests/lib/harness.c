// SPDX-License-Identifier: MIT
/*
 * harness.c: registration, the per-test child, the timeout and the TAP output of harness.h.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

static struct th_test *th_tests, **th_tests_tail = &th_tests;
static struct th_fixture *th_fixtures;
static int th_result_fd = -1;		/* test child -> main: the skip reason */
static char th_skip_reason[512];
static volatile sig_atomic_t th_stop;	/* main got SIGTERM/SIGINT/SIGHUP */

void th_register_test(struct th_test *t)
{
	*th_tests_tail = t;
	th_tests_tail = &t->next;
}

void th_register_fixture(struct th_fixture *f)
{
	f->next = th_fixtures;
	th_fixtures = f;
}

void th_register_variant(struct th_fixture *f, struct th_variant *v)
{
	struct th_variant **p = &f->variants;

	while (*p)
		p = &(*p)->next;
	*p = v;
}

/* Writes text as "# " comment lines, one write per line so that lines of processes sharing
 * stdout do not interleave. */
static void th_write_comment(const char *text)
{
	char line[1024];

	while (*text) {
		const char *nl = strchr(text, '\n');
		size_t len = nl ? (size_t)(nl - text) : strlen(text);
		int n;

		if (len > sizeof(line) - 4)
			len = sizeof(line) - 4;
		n = snprintf(line, sizeof(line), "# %.*s\n", (int)len, text);
		(void)!write(STDOUT_FILENO, line, n);
		text += len;
		if (*text == '\n')
			text++;
		else if (nl)
			text = nl + 1;
	}
}

void th_comment(const char *fmt, ...)
{
	char buf[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	th_write_comment(buf);
}

static const char *th_base(const char *file)
{
	const char *s = strrchr(file, '/');

	return s ? s + 1 : file;
}

void th_log(struct th_meta *m, const char *file, int line, const char *fmt, ...)
{
	char buf[4096];
	va_list ap;
	int n;

	n = snprintf(buf, sizeof(buf), "%s:%d:%s: ", th_base(file), line, m->name);
	va_start(ap, fmt);
	vsnprintf(buf + n, sizeof(buf) - n, fmt, ap);
	va_end(ap);
	th_write_comment(buf);
}

void th_fail_cmp(struct th_meta *m, const char *file, int line, const char *what,
		 const char *exp_str, const char *seen_str, long long exp, long long seen)
{
	m->failed = true;
	th_comment("%s:%d:%s: expected %s (%lld) %s %s (%lld)", th_base(file), line, m->name,
		   exp_str, exp, what, seen_str, seen);
}

void th_fail_bool(struct th_meta *m, const char *file, int line, const char *cond, bool want)
{
	m->failed = true;
	th_comment("%s:%d:%s: expected %s to be %s", th_base(file), line, m->name, cond,
		   want ? "true" : "false");
}

void th_fail_str(struct th_meta *m, const char *file, int line, const char *what,
		 const char *exp_str, const char *seen_str, const char *exp, const char *seen)
{
	m->failed = true;
	th_comment("%s:%d:%s: expected %s ('%s') %s %s ('%s')", th_base(file), line, m->name,
		   exp_str, exp, what, seen_str, seen);
}

void th_set_skip(struct th_meta *m, const char *fmt, ...)
{
	va_list ap;

	m->skipped = true;
	va_start(ap, fmt);
	vsnprintf(th_skip_reason, sizeof(th_skip_reason), fmt, ap);
	va_end(ap);
}

void th_bail(struct th_meta *m)
{
	longjmp(m->env, 1);
}

/* Body of the test child: setup, test, teardown; never returns. */
static __attribute__((noreturn)) void th_child(struct th_test *t, struct th_variant *v,
					       const char *name)
{
	static struct th_meta meta;
	static void *self;
	volatile int stage = 0;
	int code;

	meta.name = name;
	self = t->fixture ? calloc(1, t->fixture->self_size ? t->fixture->self_size : 1) : NULL;
	if (t->fixture && !self) {
		th_comment("%s: out of memory", name);
		_exit(TH_EXIT_FAIL);
	}
	if (setjmp(meta.env) == 0) {
		if (t->fixture) {
			stage = 1;
			t->fixture->setup(&meta, self, v ? v->data : NULL);
		}
		if (!meta.failed && !meta.skipped) {
			stage = 2;
			t->fn(&meta, self, v ? v->data : NULL);
		}
	}
	if (t->fixture && stage >= 1 && !meta.teardown_done) {
		meta.teardown_done = true;
		if (setjmp(meta.env) == 0)
			t->fixture->teardown(&meta, self, v ? v->data : NULL);
	}
	if (meta.failed)
		code = TH_EXIT_FAIL;
	else if (meta.skipped)
		code = TH_EXIT_SKIP;
	else
		code = TH_EXIT_PASS;
	if (meta.skipped)
		(void)!write(th_result_fd, th_skip_reason, strlen(th_skip_reason));
	_exit(code);
}

static int th_comm(pid_t pid, char *buf, size_t size)
{
	char path[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = 0;
	buf[strcspn(buf, "\n")] = 0;
	return 0;
}

/* Children of ours from /proc: the live ones, or the zombies. */
static int th_scan_children(pid_t *pids, int max, bool zombies)
{
	pid_t self = getpid();
	struct dirent *de;
	int n = 0;
	DIR *d;

	d = opendir("/proc");
	if (!d)
		return 0;
	while ((de = readdir(d)) && n < max) {
		char path[300], buf[512], *p;
		pid_t pid = atoi(de->d_name), ppid;
		ssize_t len;
		char state;
		int fd;

		if (pid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		len = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (len <= 0)
			continue;
		buf[len] = 0;
		p = strrchr(buf, ')');
		if (!p || sscanf(p + 1, " %c %d", &state, &ppid) != 2)
			continue;
		if (ppid == self && (state == 'Z') == zombies)
			pids[n++] = pid;
	}
	closedir(d);
	return n;
}

int th_children(pid_t *pids, int max)
{
	return th_scan_children(pids, max, false);
}

int th_zombies(pid_t *pids, int max)
{
	return th_scan_children(pids, max, true);
}

/* Kills and reaps whatever the last test left behind (we are a child subreaper). */
static void th_sweep(const char *name)
{
	for (int round = 0; round < 64; round++) {
		pid_t pids[256];
		int n = th_children(pids, 256);

		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		if (!n)
			return;
		for (int i = 0; i < n; i++) {
			char comm[64] = "?";

			(void)th_comm(pids[i], comm, sizeof(comm));
			th_comment("%s: killing leftover process %d (%s)", name, pids[i], comm);
			kill(pids[i], SIGKILL);
		}
		for (int i = 0; i < n; i++)
			waitpid(pids[i], NULL, 0);
	}
}

static void th_on_signal(int sig)
{
	th_stop = sig;
}

static long th_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

/* Runs one test in a child; returns TH_EXIT_* and fills reason for skips. */
static int th_run_one(struct th_test *t, struct th_variant *v, const char *name, char *reason,
		      size_t reason_size, bool *ret_timeout)
{
	int fds[2], status = 0, pidfd, code;
	long deadline;
	ssize_t n;
	pid_t pid;

	*ret_timeout = false;
	reason[0] = 0;
	if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0) {
		th_comment("%s: pipe: %s", name, strerror(errno));
		return TH_EXIT_FAIL;
	}
	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		th_comment("%s: fork: %s", name, strerror(errno));
		close(fds[0]);
		close(fds[1]);
		return TH_EXIT_FAIL;
	}
	if (pid == 0) {
		struct sigaction sa = { .sa_handler = SIG_DFL };

		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGHUP, &sa, NULL);
		close(fds[0]);
		th_result_fd = fds[1];
		th_child(t, v, name);
	}
	setpgid(pid, pid);
	close(fds[1]);

	pidfd = syscall(SYS_pidfd_open, pid, 0);
	deadline = th_now_ms() + t->timeout * 1000L;
	while (pidfd >= 0 && !th_stop) {
		struct pollfd pfd = { .fd = pidfd, .events = POLLIN };
		long left = deadline - th_now_ms();
		int r;

		if (left <= 0) {
			*ret_timeout = true;
			break;
		}
		r = poll(&pfd, 1, left);
		if (r > 0)
			break;
		if (r < 0 && errno != EINTR)
			break;
	}
	if (*ret_timeout || th_stop) {
		kill(-pid, SIGKILL);
		kill(pid, SIGKILL);
	}
	if (pidfd >= 0)
		close(pidfd);
	waitpid(pid, &status, 0);
	kill(-pid, SIGKILL);	/* anything still in the test's process group */
	th_sweep(name);

	n = read(fds[0], reason, reason_size - 1);
	reason[n > 0 ? n : 0] = 0;
	close(fds[0]);

	if (*ret_timeout || th_stop)
		return TH_EXIT_FAIL;
	if (WIFEXITED(status)) {
		code = WEXITSTATUS(status);
		if (code == TH_EXIT_PASS || code == TH_EXIT_SKIP)
			return code;
		if (code != TH_EXIT_FAIL)
			th_comment("%s: test child exited with %d", name, code);
		return TH_EXIT_FAIL;
	}
	th_comment("%s: test child killed by signal %d (%s)", name, WTERMSIG(status),
		   strsignal(WTERMSIG(status)));
	return TH_EXIT_FAIL;
}

static bool th_selected(const char *name, char **filters, int nfilters)
{
	if (!nfilters)
		return true;
	for (int i = 0; i < nfilters; i++)
		if (strstr(name, filters[i]))
			return true;
	return false;
}

static void th_full_name(char *buf, size_t size, struct th_test *t, struct th_variant *v)
{
	if (!t->fixture)
		snprintf(buf, size, "%s", t->name);
	else if (!v)
		snprintf(buf, size, "%s.%s", t->fixture->name, t->name);
	else
		snprintf(buf, size, "%s.%s.%s", t->fixture->name, v->name, t->name);
}

/* Calls fn for every (test, variant) pair that passes the filters; returns how many. */
static int th_for_each(char **filters, int nfilters,
		       void (*fn)(struct th_test *, struct th_variant *, const char *, void *),
		       void *arg)
{
	int count = 0;

	for (struct th_test *t = th_tests; t; t = t->next) {
		struct th_variant *v = t->fixture ? t->fixture->variants : NULL;

		do {
			char name[256];

			th_full_name(name, sizeof(name), t, v);
			if (th_selected(name, filters, nfilters)) {
				if (fn)
					fn(t, v, name, arg);
				count++;
			}
			v = v ? v->next : NULL;
		} while (v);
	}
	return count;
}

struct th_totals {
	int index, pass, fail, skip;
};

static void th_run_cb(struct th_test *t, struct th_variant *v, const char *name, void *arg)
{
	struct th_totals *tot = arg;
	char reason[512];
	bool timeout;
	int code;

	tot->index++;
	if (th_stop) {
		printf("not ok %d %s # interrupted\n", tot->index, name);
		tot->fail++;
		return;
	}
	printf("# RUN %s\n", name);
	fflush(stdout);
	code = th_run_one(t, v, name, reason, sizeof(reason), &timeout);
	if (timeout)
		th_comment("%s: timed out after %d s", name, t->timeout);
	switch (code) {
	case TH_EXIT_PASS:
		printf("ok %d %s\n", tot->index, name);
		tot->pass++;
		break;
	case TH_EXIT_SKIP:
		/* A skip must say why; one that does not is a bug in the test. */
		if (!reason[0]) {
			printf("not ok %d %s # skipped without a reason\n", tot->index, name);
			tot->fail++;
			break;
		}
		printf("ok %d %s # SKIP %s\n", tot->index, name, reason);
		tot->skip++;
		break;
	default:
		printf("not ok %d %s%s\n", tot->index, name, timeout ? " # TIMEOUT" : "");
		tot->fail++;
		break;
	}
	fflush(stdout);
}

static void th_list_cb(struct th_test *t, struct th_variant *v, const char *name, void *arg)
{
	printf("%s\n", name);
}

int th_main(int argc, char **argv)
{
	struct th_totals tot = { 0 };
	struct sigaction sa = { .sa_handler = th_on_signal, .sa_flags = SA_RESTART };
	char *filters[64];
	int nfilters = 0, opt, total;
	bool list = false;

	while ((opt = getopt(argc, argv, "lt:h")) != -1) {
		switch (opt) {
		case 'l':
			list = true;
			break;
		case 't':
			if (nfilters < 64)
				filters[nfilters++] = optarg;
			break;
		default:
			fprintf(stderr, "usage: %s [-l] [-t SUBSTR]...\n", argv[0]);
			return 2;
		}
	}
	if (list) {
		th_for_each(filters, nfilters, th_list_cb, NULL);
		return 0;
	}

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		th_comment("PR_SET_CHILD_SUBREAPER: %s, leftovers may escape", strerror(errno));
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	total = th_for_each(filters, nfilters, NULL, NULL);
	printf("TAP version 13\n1..%d\n", total);
	th_for_each(filters, nfilters, th_run_cb, &tot);
	printf("# totals: pass:%d fail:%d skip:%d\n", tot.pass, tot.fail, tot.skip);
	fflush(stdout);
	if (tot.fail)
		return 1;
	return 0;
}
