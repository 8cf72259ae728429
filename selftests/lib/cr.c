// SPDX-License-Identifier: MIT
/*
 * cr.c: the checkpoint/restore runner of cr.h: test side, runner side, victim side.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cr.h"

#define CR_RUNNER_TIMEOUT_MS	50000	/* < the harness' 60 s */
#define CR_READY_TIMEOUT_MS	10000
#define CR_CKPT_TIMEOUT_MS	20000
#define CR_VERIFY_TIMEOUT_MS	10000
#define CR_DEATH_TIMEOUT_MS	5000
#define CR_LOG_TAIL_LINES	80
#define CR_RESULT_MAGIC		0x43527231

struct cr_result {
	int magic;
	char err[2048];
	char skip[512];
};

volatile sig_atomic_t cr_verify_requested;
const char *cr_victim_dir;
int cr_ready_fd = -1;
int cr_victim_index;
static int cr_victim_failures;

static void cr_victim_install_usr2(void);

static long cr_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

static int cr_pidfd_open(pid_t pid)
{
	return syscall(SYS_pidfd_open, pid, 0);
}

/* Waits until the pidfd is readable (the process exited) or timeout; true if it exited. */
static bool cr_pidfd_wait(int pidfd, long timeout_ms)
{
	long deadline = cr_now_ms() + timeout_ms;

	for (;;) {
		struct pollfd pfd = { .fd = pidfd, .events = POLLIN };
		long left = deadline - cr_now_ms();
		int n;

		if (left < 0)
			left = 0;
		n = poll(&pfd, 1, left);
		if (n > 0)
			return true;
		if (n == 0)
			return false;
		if (errno != EINTR)
			return false;
	}
}

/* Waits for child pid with a timeout; SIGKILLs it on timeout. 0 and the status, or -ETIMEDOUT
 * (the child was killed and reaped), or -errno. */
static int cr_wait_child(pid_t pid, long timeout_ms, int *ret_status)
{
	int pidfd = cr_pidfd_open(pid), status, ret = 0;

	if (pidfd < 0)
		return -errno;
	if (!cr_pidfd_wait(pidfd, timeout_ms)) {
		kill(pid, SIGKILL);
		ret = -ETIMEDOUT;
	}
	close(pidfd);
	if (waitpid(pid, &status, 0) < 0)
		return -errno;
	if (!ret)
		*ret_status = status;
	return ret;
}

static void cr_describe_status(int status, char *buf, size_t size)
{
	if (WIFEXITED(status))
		snprintf(buf, size, "exit %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, size, "killed by signal %d (%s)", WTERMSIG(status),
			 strsignal(WTERMSIG(status)));
	else
		snprintf(buf, size, "status 0x%x", status);
}

ssize_t cr_read_file(const char *path, char *buf, size_t size)
{
	size_t len = 0;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while (len < size - 1) {
		ssize_t n = read(fd, buf + len, size - 1 - len);

		if (n < 0) {
			int err = -errno;

			close(fd);
			return err;
		}
		if (n == 0)
			break;
		len += n;
	}
	close(fd);
	buf[len] = 0;
	return len;
}

uint64_t cr_hash(const void *p, size_t n)
{
	const unsigned char *c = p;
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < n; i++) {
		h ^= c[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

int cr_status_field(const char *status, const char *key, char *buf, size_t size)
{
	size_t klen = strlen(key);
	const char *p = status;

	while (p && *p) {
		if (!strncmp(p, key, klen) && p[klen] == ':') {
			const char *v = p + klen + 1;
			size_t len;

			while (*v == ' ' || *v == '\t')
				v++;
			len = strcspn(v, "\n");
			if (len >= size)
				len = size - 1;
			memcpy(buf, v, len);
			buf[len] = 0;
			return 0;
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return -ENOENT;
}

static bool cr_contains_nocase(const char *hay, const char *needle)
{
	size_t n = strlen(needle);

	for (; *hay; hay++)
		if (!strncasecmp(hay, needle, n))
			return true;
	return !n;
}

/* ---------------------------------------------------------------- runner side */

void cr_note(struct cr_run *r, const char *fmt, ...)
{
	char buf[2048];
	va_list ap;
	int n;

	n = snprintf(buf, sizeof(buf), "[%ld] ", cr_now_ms() % 1000000);
	va_start(ap, fmt);
	n += vsnprintf(buf + n, sizeof(buf) - n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	buf[n++] = '\n';
	if (r->logfd >= 0)
		(void)!write(r->logfd, buf, n);
}

int cr_fail(struct cr_run *r, const char *fmt, ...)
{
	char buf[sizeof(r->err)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	cr_note(r, "FAIL: %s", buf);
	if (!r->err[0])
		snprintf(r->err, sizeof(r->err), "%s", buf);
	return -1;
}

int cr_skip(struct cr_run *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->skip, sizeof(r->skip), fmt, ap);
	va_end(ap);
	cr_note(r, "SKIP: %s", r->skip);
	return -1;
}

static void cr_path(const struct cr_run *r, char *buf, size_t size, const char *name,
		    const char *ext)
{
	snprintf(buf, size, "%s/%s%s", r->env->dir, name, ext ? ext : "");
}

/* First line of DIR/<tag>.out, for messages. */
static void cr_first_line(struct cr_run *r, const char *tag, char *buf, size_t size)
{
	char path[PATH_MAX], text[4096];
	ssize_t n;

	cr_path(r, path, sizeof(path), tag, ".out");
	n = cr_read_file(path, text, sizeof(text));
	if (n <= 0) {
		snprintf(buf, size, "(no output)");
		return;
	}
	snprintf(buf, size, "'%.*s'", (int)strcspn(text, "\n"), text);
}

/* Only the victim itself says ready: a child it forks must not keep the pipe open. */
static void cr_victim_forked(void)
{
	if (cr_ready_fd >= 0)
		close(cr_ready_fd);
	cr_ready_fd = -1;
}

static __attribute__((noreturn)) void cr_victim_main(struct cr_run *r, cr_victim_fn fn, void *arg,
						     bool keep_session, int ready_fd)
{
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	int fd, rc, setsid_err = 0;
	char path[PATH_MAX];
	sigset_t none;

	/* Lead a session and group of our own: leaders outside a dump need --shell-job. */
	if (!keep_session && setsid() < 0)
		setsid_err = errno;
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			(void)sigaction(sig, &dfl, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);

	/* A stray inherited fd breaks dumps: keep only the ready pipe. */
	if (ready_fd > 3)
		(void)close_range(3, ready_fd - 1, 0);
	(void)close_range(ready_fd + 1, ~0U, 0);

	fd = open("/dev/null", O_RDWR);
	if (fd < 0 || dup2(fd, 0) < 0)
		_exit(2);
	if (fd > 2)
		close(fd);
	cr_path(r, path, sizeof(path), "victim", ".out");
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
		_exit(2);
	if (fd > 2)
		close(fd);
	if (setsid_err) {
		dprintf(2, "victim %d: setsid: %s\n", getpid(), strerror(setsid_err));
		_exit(2);
	}
	cr_ready_fd = ready_fd;
	cr_victim_dir = r->env->dir;
	cr_victim_index = r->nr_victims;
	if (pthread_atfork(NULL, NULL, cr_victim_forked)) {
		dprintf(2, "victim %d: pthread_atfork failed\n", getpid());
		_exit(2);
	}

	cr_victim_install_usr2();
	rc = fn(arg);
	if (cr_ready_fd >= 0) {
		dprintf(2, "victim: returned %d without saying ready\n", rc);
		_exit(rc ? rc : 3);
	}
	_exit(rc);
}

int cr_victim_start(struct cr_run *r)
{
	pid_t pid;

	if (cr_victim_spawn(r, r->c->victim, r->c->arg, r->c->keep_session, &pid))
		return -1;
	r->victim = pid;
	return 0;
}

int cr_victim_spawn(struct cr_run *r, cr_victim_fn fn, void *arg, bool keep_session,
		    pid_t *ret_pid)
{
	int fds[2], pidfd, status;
	long deadline;
	bool got_byte = false;
	pid_t pid;

	if (r->nr_victims >= CR_MAX_VICTIMS)
		return cr_fail(r, "more than %d victims", CR_MAX_VICTIMS);
	if (pipe(fds) < 0)
		return cr_fail(r, "pipe: %s", strerror(errno));
	fcntl(fds[0], F_SETFD, FD_CLOEXEC);
	pid = fork();
	if (pid < 0)
		return cr_fail(r, "fork victim: %s", strerror(errno));
	if (pid == 0) {
		close(fds[0]);
		cr_victim_main(r, fn, arg, keep_session, fds[1]);
	}
	close(fds[1]);
	r->victims[r->nr_victims++] = pid;
	*ret_pid = pid;
	cr_note(r, "victim pid %d started%s", pid, keep_session ? " (in the test's session)" : "");

	pidfd = cr_pidfd_open(pid);
	if (pidfd < 0) {
		close(fds[0]);
		return cr_fail(r, "pidfd_open(%d): %s", pid, strerror(errno));
	}
	deadline = cr_now_ms() + CR_READY_TIMEOUT_MS;
	for (;;) {
		struct pollfd pfd[2] = {
			{ .fd = fds[0], .events = POLLIN },
			{ .fd = pidfd, .events = POLLIN },
		};
		long left = deadline - cr_now_ms();
		char c;
		ssize_t n;

		if (left <= 0) {
			close(fds[0]);
			close(pidfd);
			return cr_fail(r, "victim %d not ready within %d ms (%s)", pid,
				       CR_READY_TIMEOUT_MS,
				       got_byte ? "said ready but kept the pipe open" : "no ready byte");
		}
		if (poll(pfd, 2, left) < 0 && errno != EINTR)
			break;
		if (pfd[0].revents) {
			n = read(fds[0], &c, 1);
			if (n == 1) {
				got_byte = true;
				continue;
			}
			if (n == 0 && got_byte) {
				close(fds[0]);
				close(pidfd);
				cr_note(r, "victim %d ready", pid);
				return 0;
			}
			if (n == 0) {
				/* closed without the byte: it died or gave up */
				pfd[1].revents = POLLIN;
			}
		}
		if (pfd[1].revents) {
			char what[128], text[512] = "";
			ssize_t m;

			close(fds[0]);
			close(pidfd);
			if (waitpid(pid, &status, 0) < 0)
				return cr_fail(r, "victim %d vanished: %s", pid, strerror(errno));
			cr_path(r, text, sizeof(text), "victim", ".out");
			{
				char path[PATH_MAX];

				snprintf(path, sizeof(path), "%s", text);
				m = cr_read_file(path, text, sizeof(text));
				if (m < 0)
					text[0] = 0;
			}
			text[strcspn(text, "\n")] = 0;
			if (WIFEXITED(status) && WEXITSTATUS(status) == 4 && text[0])
				return cr_skip(r, "%s", text);
			cr_describe_status(status, what, sizeof(what));
			return cr_fail(r, "victim died before ready: %s: %s", what, text);
		}
	}
	close(fds[0]);
	close(pidfd);
	return cr_fail(r, "poll: %s", strerror(errno));
}

int cr_wait_syscall(struct cr_run *r, pid_t pid, long nr)
{
	long deadline = cr_now_ms() + 5000;
	char path[64], buf[256];

	snprintf(path, sizeof(path), "/proc/%d/syscall", pid);
	while (cr_now_ms() < deadline) {
		/* Nothing signals "entered the syscall": poll /proc with a bounded deadline. */
		/* A call the kernel resumes through restart_syscall() counts as the same. */
		long now;
		if (cr_read_file(path, buf, sizeof(buf)) > 0 && isdigit((unsigned char)buf[0]) &&
		    ((now = strtol(buf, NULL, 10)) == nr || now == SYS_restart_syscall)) {
			cr_note(r, "victim %d blocked in syscall %ld", pid, nr);
			return 0;
		}
		(void)poll(NULL, 0, 2);
	}
	return cr_fail(r, "victim %d not blocked in syscall %ld within 5 s ('%.*s')", pid, nr,
		       (int)strcspn(buf, "\n"), buf);
}

pid_t cr_ckpt_start(struct cr_run *r, const char *tag, const char *fault,
		    const char *const args[], int stdio_fd)
{
	char out[PATH_MAX], log[PATH_MAX], cmd[1024] = "";
	const char *argv[32];
	int argc = 0;
	pid_t pid;

	cr_path(r, out, sizeof(out), tag, ".out");
	cr_path(r, log, sizeof(log), tag, ".log");
	argv[argc++] = r->env->ckpt;
	for (int i = 0; args[i] && argc < 26; i++)
		argv[argc++] = args[i];
	argv[argc++] = "-v4";
	argv[argc++] = "-o";
	argv[argc++] = log;
	argv[argc] = NULL;
	for (int i = 0; i < argc; i++) {
		strncat(cmd, i ? " " : "", sizeof(cmd) - strlen(cmd) - 1);
		strncat(cmd, argv[i], sizeof(cmd) - strlen(cmd) - 1);
	}
	cr_note(r, "run: %s%s%s%s", fault ? "CKPT_FAULT=" : "", fault ? fault : "",
		fault ? " " : "", cmd);
	if (stdio_fd >= 0)
		cr_note(r, "(stdio on the given fd)");

	pid = fork();
	if (pid < 0)
		return cr_fail(r, "fork: %s", strerror(errno));
	if (pid == 0) {
		int fd;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (fault)
			setenv("CKPT_FAULT", fault, 1);
		else
			unsetenv("CKPT_FAULT");
		if (stdio_fd >= 0) {
			for (fd = 0; fd < 3; fd++)
				if (stdio_fd != fd)
					dup2(stdio_fd, fd);
				else
					fcntl(fd, F_SETFD, 0);
		} else {
			fd = open("/dev/null", O_RDONLY);
			if (fd >= 0)
				dup2(fd, 0);
			fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
			if (fd >= 0) {
				dup2(fd, 1);
				dup2(fd, 2);
			}
		}
		(void)close_range(3, ~0U, 0);
		execv(argv[0], (char *const *)argv);
		dprintf(2, "cannot execute '%s': %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	return pid;
}

int cr_ckpt_wait(struct cr_run *r, const char *tag, pid_t pid, int *ret_status)
{
	char what[128];
	int status, ret;

	ret = cr_wait_child(pid, CR_CKPT_TIMEOUT_MS, &status);
	if (ret == -ETIMEDOUT)
		return cr_fail(r, "ckpt %s did not finish within %d s (killed)", tag,
			       CR_CKPT_TIMEOUT_MS / 1000);
	if (ret < 0)
		return cr_fail(r, "waiting for ckpt %s: %s", tag, strerror(-ret));
	cr_describe_status(status, what, sizeof(what));
	cr_note(r, "ckpt %s: %s", tag, what);
	*ret_status = status;
	return 0;
}

int cr_ckpt(struct cr_run *r, const char *tag, const char *fault, const char *const args[],
	    int *ret_status)
{
	pid_t pid = cr_ckpt_start(r, tag, fault, args, -1);

	if (pid < 0)
		return -1;
	return cr_ckpt_wait(r, tag, pid, ret_status);
}

/* Children of every thread of pid, appended to pids[*n] (bounded by max). */
static int cr_children_of(pid_t pid, pid_t *pids, int *n, int max)
{
	char path[64], buf[4096];
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	d = opendir(path);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		char *p, *end;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%.16s/children", pid, de->d_name);
		if (cr_read_file(path, buf, sizeof(buf)) < 0)
			continue;	/* the thread is gone */
		for (p = buf; *p && *n < max; p = end) {
			long v = strtol(p, &end, 10);

			if (end == p)
				break;
			pids[(*n)++] = v;
		}
	}
	closedir(d);
	return 0;
}

int cr_tree(pid_t pid, pid_t *pids, int max)
{
	int n = 0, err;

	if (max < 1)
		return 0;
	pids[n++] = pid;
	err = cr_children_of(pid, pids, &n, max);
	if (err)
		return err;
	/* Breadth first: pids[] is its own queue. */
	for (int i = 1; i < n; i++)
		cr_children_of(pids[i], pids, &n, max);
	return n;
}

/* Remembers the tasks of the trees about to be dumped, with a pidfd each. */
static void cr_record_dumped(struct cr_run *r, const pid_t *roots, int nr)
{
	for (int i = 0; i < r->nr_dumped; i++)
		if (r->dumped[i].pidfd >= 0)
			close(r->dumped[i].pidfd);
	r->nr_dumped = 0;
	for (int i = 0; i < nr; i++) {
		pid_t pids[CR_MAX_TASKS];
		int n = cr_tree(roots[i], pids, CR_MAX_TASKS - r->nr_dumped);

		for (int j = 0; j < n; j++) {
			struct cr_task *t = &r->dumped[r->nr_dumped++];

			t->pid = pids[j];
			t->root = roots[i];
			t->pidfd = cr_pidfd_open(pids[j]);
		}
		if (n > 1)
			cr_note(r, "tree of %d: %d tasks", roots[i], n);
	}
	/* Children of the runner outside every tree (a peer that left it) are not dumped. */
	pid_t kids[CR_MAX_TASKS];
	int nk = th_children(kids, CR_MAX_TASKS);
	r->nr_outside = 0;
	for (int k = 0; k < nk && r->nr_outside < CR_MAX_VICTIMS; k++) {
		bool in = false;
		for (int i = 0; i < nr; i++)
			in |= kids[k] == roots[i];
		for (int i = 0; i < r->nr_dumped && !in; i++)
			in |= kids[k] == r->dumped[i].pid;
		if (!in)
			r->outside[r->nr_outside++] = kids[k];
	}
}

int cr_dump_pids(struct cr_run *r, const char *tag, const pid_t *pids, int nr, bool leave_running,
		 const char *fault, int *ret_status)
{
	return cr_dump_pids_extra(r, tag, pids, nr, leave_running, NULL, fault, ret_status);
}

int cr_dump_pids_extra(struct cr_run *r, const char *tag, const pid_t *pids, int nr,
		       bool leave_running, const char *const extra[], const char *fault,
		       int *ret_status)
{
	char list[CR_MAX_VICTIMS * 12 + 1] = "";
	const char *args[24] = { "dump", "-t", list, "-D", r->imgdir };
	int argc = 5;

	if (nr < 1 || nr > CR_MAX_VICTIMS)
		return cr_fail(r, "cr_dump_pids: %d PIDs", nr);
	for (int i = 0; i < nr; i++)
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%d", i ? "," : "",
			 pids[i]);
	if (leave_running)
		args[argc++] = "--leave-running";
	if (r->c->shell_job)
		args[argc++] = "--shell-job";
	if (r->c->ext_unix_sk)
		args[argc++] = "--ext-unix-sk";
	for (int i = 0; extra && extra[i] && argc < 23; i++)
		args[argc++] = extra[i];
	args[argc] = NULL;
	cr_record_dumped(r, pids, nr);
	return cr_ckpt(r, tag, fault, args, ret_status);
}

int cr_dump(struct cr_run *r, const char *tag, pid_t pid, bool leave_running, const char *fault,
	    int *ret_status)
{
	return cr_dump_pids(r, tag, &pid, 1, leave_running, fault, ret_status);
}

int cr_restore(struct cr_run *r, const char *tag, int *ret_status, pid_t *ret_pid)
{
	char pidfile[PATH_MAX], buf[64];
	const char *args[] = { "restore", "-D", r->imgdir, "-d", "--pidfile", pidfile,
			       r->c->shell_job ? "--shell-job" : NULL, NULL };
	int ret;

	cr_path(r, pidfile, sizeof(pidfile), tag, ".pid");
	unlink(pidfile);
	ret = cr_ckpt(r, tag, NULL, args, ret_status);
	if (ret)
		return ret;
	*ret_pid = 0;
	if (cr_read_file(pidfile, buf, sizeof(buf)) > 0)
		*ret_pid = atoi(buf);
	return 0;
}

int cr_expect_ok(struct cr_run *r, const char *tag, int status)
{
	char what[128], line[512];

	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	cr_describe_status(status, what, sizeof(what));
	cr_first_line(r, tag, line, sizeof(line));
	return cr_fail(r, "ckpt %s failed: %s: %s", tag, what, line);
}

int cr_expect_failed(struct cr_run *r, const char *tag, int status, const char *needle)
{
	char path[PATH_MAX], text[8192], what[128];
	ssize_t n;

	cr_describe_status(status, what, sizeof(what));
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return cr_fail(r, "ckpt %s succeeded but must fail%s%s%s", tag,
			       needle ? " (with '" : "", needle ? needle : "", needle ? "')" : "");
	if (!WIFEXITED(status))
		return cr_fail(r, "ckpt %s crashed instead of failing cleanly: %s", tag, what);
	cr_path(r, path, sizeof(path), tag, ".out");
	n = cr_read_file(path, text, sizeof(text));
	if (n <= 0)
		return cr_fail(r, "ckpt %s failed (%s) without an error message on stderr", tag,
			       what);
	if (needle && !cr_contains_nocase(text, needle)) {
		char line[512];

		cr_first_line(r, tag, line, sizeof(line));
		return cr_fail(r, "ckpt %s failed (%s) but its error does not mention '%s': %s",
			       tag, what, needle, line);
	}
	return 0;
}

int cr_expect_output(struct cr_run *r, const char *tag, const char *needle)
{
	char path[PATH_MAX], text[8192], line[512];
	ssize_t n;

	cr_path(r, path, sizeof(path), tag, ".out");
	n = cr_read_file(path, text, sizeof(text));
	if (n < 0)
		return cr_fail(r, "ckpt %s: no output file: %s", tag, strerror(-n));
	if (cr_contains_nocase(text, needle))
		return 0;
	cr_first_line(r, tag, line, sizeof(line));
	return cr_fail(r, "ckpt %s: its output does not mention '%s': %s", tag, needle, line);
}

int cr_verify(struct cr_run *r, pid_t pid, const char *what)
{
	char desc[128];
	int status, ret;

	cr_note(r, "verify %s victim %d", what, pid);
	/*
	 * A victim that waits in a given syscall must be back in it, or the
	 * SIGUSR2 could land just before it re-enters the call and be lost
	 * as a wake-up (a sleep is not woken by a handler that already ran).
	 */
	if (r->c->wait_blocked && cr_wait_syscall(r, pid, r->c->syscall_nr))
		return -1;
	if (kill(pid, SIGUSR2) < 0)
		return cr_fail(r, "%s victim %d: cannot send SIGUSR2: %s", what, pid,
			       strerror(errno));
	ret = cr_wait_child(pid, CR_VERIFY_TIMEOUT_MS, &status);
	if (ret == -ETIMEDOUT)
		return cr_fail(r, "%s victim %d did not exit within %d s after SIGUSR2 (killed)",
			       what, pid, CR_VERIFY_TIMEOUT_MS / 1000);
	if (ret == -ECHILD)
		return cr_fail(r, "%s victim %d is not a child of the runner", what, pid);
	if (ret < 0)
		return cr_fail(r, "%s victim %d: wait: %s", what, pid, strerror(-ret));
	if (pid == r->victim)
		r->victim = 0;
	cr_describe_status(status, desc, sizeof(desc));
	cr_note(r, "%s victim %d: %s", what, pid, desc);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 1)
		return cr_fail(r, "%s victim %d: state mismatch after restore (see victim.out)",
			       what, pid);
	return cr_fail(r, "%s victim %d: %s (see victim.out)", what, pid, desc);
}

/*
 * Reaps task t of the tree of a dumped root. It was killed with the rest: once its pidfd
 * says it exited, its parent (an earlier entry, parents come first) has exited too, which
 * made it the runner's child: as subreaper or PID 1, the runner inherits it.
 */
static int cr_reap_task(struct cr_run *r, struct cr_task *t, long deadline)
{
	long left = deadline - cr_now_ms();
	char path[64], buf[2048], state[64] = "?";
	int status;

	if (t->pidfd >= 0 && !cr_pidfd_wait(t->pidfd, left > 0 ? left : 0)) {
		snprintf(path, sizeof(path), "/proc/%d/status", t->pid);
		if (cr_read_file(path, buf, sizeof(buf)) > 0)
			cr_status_field(buf, "State", state, sizeof(state));
		kill(t->pid, SIGKILL);
		return cr_fail(r, "task %d of the tree of %d still alive %d s after the dump "
			       "(State: %s; killed)", t->pid, t->root, CR_DEATH_TIMEOUT_MS / 1000,
			       state);
	}
	for (;;) {
		pid_t got = waitpid(t->pid, &status, WNOHANG);

		if (got == t->pid) {
			cr_note(r, "dumped task %d reaped (status 0x%x)", t->pid, status);
			return 0;
		}
		if (got < 0 && errno == ECHILD && kill(t->pid, 0) < 0 && errno == ESRCH)
			return 0;	/* somebody else reaped it */
		if (got < 0 && errno != ECHILD)
			return cr_fail(r, "wait for dumped task %d: %s", t->pid, strerror(errno));
		if (cr_now_ms() > deadline)
			return cr_fail(r, "dead task %d of the tree of %d never became the "
				       "runner's child", t->pid, t->root);
		/* Not expected (see above); nothing signals it: poll, bounded. */
		(void)poll(NULL, 0, 2);
	}
}

/*
 * Tasks born into the dumped trees after they were recorded (a child forked just
 * before the freeze) die with them too, and come to the runner as orphans: any
 * child of the runner that is not a victim is such a task. Waits (bounded) for
 * each to die and reaps it, so that its PID is free for the restore.
 */
static int cr_reap_unrecorded(struct cr_run *r, long deadline)
{
	for (;;) {
		pid_t pids[64];
		int n, left = 0;

		/* Victims are reaped by their own cr_reap_dumped() call. */
		n = th_zombies(pids, 64);
		for (int i = 0; i < n; i++) {
			bool victim = false;
			for (int k = 0; k < r->nr_victims; k++)
				victim |= pids[i] == r->victims[k];
			if (!victim)
				(void)waitpid(pids[i], NULL, WNOHANG | __WALL);
		}
		n = th_children(pids, 64);
		for (int i = 0; i < n; i++) {
			bool victim = false;
			for (int k = 0; k < r->nr_victims; k++)
				victim |= pids[i] == r->victims[k];
			for (int k = 0; k < r->nr_outside; k++)
				victim |= pids[i] == r->outside[k];
			left += !victim;
		}
		if (!left)
			return 0;
		if (cr_now_ms() > deadline)
			return cr_fail(r, "%d task(s) of the dumped trees still alive after the dump",
				       left);
		struct timespec ms = { 0, 1000 * 1000 };
		nanosleep(&ms, NULL);
	}
}

int cr_reap_dumped(struct cr_run *r, pid_t pid)
{
	long deadline;
	int status, ret;

	ret = cr_wait_child(pid, CR_DEATH_TIMEOUT_MS, &status);
	if (ret == -ETIMEDOUT)
		return cr_fail(r, "victim %d still alive %d s after the dump (killed)", pid,
			       CR_DEATH_TIMEOUT_MS / 1000);
	if (ret < 0)
		return cr_fail(r, "wait for dumped victim %d: %s", pid, strerror(-ret));
	if (pid == r->victim)
		r->victim = 0;
	cr_note(r, "dumped victim %d reaped (status 0x%x)", pid, status);

	deadline = cr_now_ms() + CR_DEATH_TIMEOUT_MS;
	for (int i = 0; i < r->nr_dumped; i++) {
		struct cr_task *t = &r->dumped[i];

		if (t->root != pid)
			continue;
		if (t->pid != pid && cr_reap_task(r, t, deadline))
			return -1;
		if (t->pidfd >= 0)
			close(t->pidfd);
		t->pidfd = -1;
	}
	return cr_reap_unrecorded(r, deadline);
}

static void cr_reap_zombies(void)
{
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

int cr_expect_pid_free(struct cr_run *r, pid_t pid, const char *why)
{
	char path[64], buf[2048], state[64] = "?";

	cr_reap_zombies();
	if (kill(pid, 0) < 0 && errno == ESRCH)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	if (cr_read_file(path, buf, sizeof(buf)) > 0)
		cr_status_field(buf, "State", state, sizeof(state));
	return cr_fail(r, "%s, but pid %d exists (State: %s)", why, pid, state);
}

int cr_count_children(void)
{
	pid_t pids[64];

	cr_reap_zombies();
	return th_children(pids, 64);
}

static void cr_kill_children(struct cr_run *r)
{
	for (int round = 0; round < 16; round++) {
		pid_t pids[64];
		int n;

		cr_reap_zombies();
		n = th_children(pids, 64);
		if (!n)
			return;
		for (int i = 0; i < n; i++) {
			cr_note(r, "killing leftover child %d", pids[i]);
			kill(pids[i], SIGKILL);
		}
		for (int i = 0; i < n; i++)
			waitpid(pids[i], NULL, 0);
	}
}

int cr_snapshot(struct cr_run *r, pid_t pid, struct cr_snap *s)
{
	static const char *const keys[] = { "SigPnd", "ShdPnd", "SigBlk", "SigIgn", "SigCgt" };
	char path[300], status[4096], v[64];
	struct dirent *de;
	size_t len = 0;
	ssize_t ret;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	ret = cr_read_file(path, status, sizeof(status));
	if (ret < 0)
		return cr_fail(r, "read %s: %s", path, strerror(-ret));
	s->state = !cr_status_field(status, "State", v, sizeof(v)) ? v[0] : '?';
	s->tracer = !cr_status_field(status, "TracerPid", v, sizeof(v)) ? atoi(v) : -1;
	s->maps[0] = s->sig[0] = s->fds[0] = 0;
	if (s->state == 'Z' || s->state == 'X')
		return 0;	/* nothing more to see */
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		v[0] = 0;
		cr_status_field(status, keys[i], v, sizeof(v));
		/*
		 * cr_victim_wait() blocks SIGUSR2 except inside sigsuspend(): whether SigBlk
		 * shows it depends on the moment (the victim just said ready, say), so it is
		 * left out.
		 */
		if (!strcmp(keys[i], "SigBlk"))
			snprintf(v, sizeof(v), "%016llx",
				 strtoull(v, NULL, 16) & ~(1ULL << (SIGUSR2 - 1)));
		len += snprintf(s->sig + len, sizeof(s->sig) - len, "%s:%s ", keys[i], v);
	}
	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	ret = cr_read_file(path, s->maps, sizeof(s->maps));
	if (ret < 0)
		return cr_fail(r, "read %s: %s", path, strerror(-ret));
	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	d = opendir(path);
	if (!d)
		return cr_fail(r, "open %s: %s", path, strerror(errno));
	len = 0;
	while ((de = readdir(d))) {
		char link[300], target[256];
		ssize_t n;

		if (de->d_name[0] == '.')
			continue;
		snprintf(link, sizeof(link), "/proc/%d/fd/%s", pid, de->d_name);
		n = readlink(link, target, sizeof(target) - 1);
		target[n > 0 ? n : 0] = 0;
		len += snprintf(s->fds + len, sizeof(s->fds) - len, "%s->%s\n", de->d_name, target);
		if (len >= sizeof(s->fds))
			break;
	}
	closedir(d);
	return 0;
}

/* Name of the first line that differs, for messages. */
static void cr_first_diff(const char *a, const char *b, char *buf, size_t size)
{
	while (*a && *b) {
		size_t la = strcspn(a, "\n"), lb = strcspn(b, "\n");

		if (la != lb || memcmp(a, b, la)) {
			snprintf(buf, size, "before '%.*s', after '%.*s'", (int)la, a, (int)lb, b);
			return;
		}
		a += la + (a[la] == '\n');
		b += lb + (b[lb] == '\n');
	}
	snprintf(buf, size, "before '%.*s', after '%.*s'", (int)strcspn(a, "\n"), a,
		 (int)strcspn(b, "\n"), b);
}

/* Running (R, S, D, I), stopped (T), traced (t) or dead (Z, X). */
static char cr_state_class(char state)
{
	switch (state) {
	case 'T':
	case 't':
		return state;
	case 'Z':
	case 'X':
		return 'Z';
	default:
		return 'R';
	}
}

/* The first way now differs from before (into buf), or false. */
static bool cr_snap_differs(const struct cr_snap *before, const struct cr_snap *now, char *buf,
			    size_t size)
{
	char diff[1024];

	if (now->tracer)
		snprintf(buf, size, "still traced after the dump (TracerPid %d)", now->tracer);
	else if (cr_state_class(now->state) != cr_state_class(before->state))
		snprintf(buf, size, "in state '%c' after the dump, '%c' before", now->state,
			 before->state);
	else if (strcmp(before->maps, now->maps)) {
		cr_first_diff(before->maps, now->maps, diff, sizeof(diff));
		snprintf(buf, size, "/proc/PID/maps changed by the dump: %s", diff);
	} else if (strcmp(before->sig, now->sig)) {
		snprintf(buf, size, "signal state changed by the dump: before '%s', after '%s'",
			 before->sig, now->sig);
	} else if (strcmp(before->fds, now->fds)) {
		cr_first_diff(before->fds, now->fds, diff, sizeof(diff));
		snprintf(buf, size, "fd table changed by the dump: %s", diff);
	} else {
		return false;
	}
	return true;
}

int cr_check_unharmed(struct cr_run *r, pid_t pid, const struct cr_snap *before)
{
	static struct cr_snap now;
	long deadline = cr_now_ms() + 2000;
	char path[64], status[64], diff[1536];

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	if (cr_read_file(path, status, sizeof(status)) < 0)
		return cr_fail(r, "victim %d is gone after the dump", pid);
	/*
	 * A task ckpt just let go may not be back yet in the group stop it was in, for one.
	 * Give it time, bounded; nothing signals it.
	 */
	for (;;) {
		if (cr_snapshot(r, pid, &now))
			return -1;
		if (!cr_snap_differs(before, &now, diff, sizeof(diff)))
			break;
		if (cr_now_ms() > deadline)
			return cr_fail(r, "victim %d: %s", pid, diff);
		(void)poll(NULL, 0, 2);
	}
	cr_note(r, "victim %d unharmed (State %c)", pid, now.state);
	return 0;
}

int cr_snapshot_trees(struct cr_run *r, const pid_t *roots, int nr, struct cr_tree_snap *s)
{
	s->nr = 0;
	s->snaps = NULL;
	for (int i = 0; i < nr; i++) {
		int n = cr_tree(roots[i], s->pids + s->nr, CR_MAX_TASKS - s->nr);

		if (n < 0)
			return cr_fail(r, "victim %d: /proc/%d/task: %s", roots[i], roots[i],
				       strerror(-n));
		s->nr += n;
	}
	s->snaps = calloc(s->nr, sizeof(*s->snaps));
	if (!s->snaps)
		return cr_fail(r, "no memory for %d snapshots", s->nr);
	for (int i = 0; i < s->nr; i++)
		if (cr_snapshot(r, s->pids[i], &s->snaps[i]))
			return -1;
	return 0;
}

int cr_check_unharmed_trees(struct cr_run *r, const struct cr_tree_snap *before)
{
	for (int i = 0; i < before->nr; i++)
		if (cr_check_unharmed(r, before->pids[i], &before->snaps[i]))
			return -1;
	return 0;
}

void cr_snap_trees_free(struct cr_tree_snap *s)
{
	free(s->snaps);
	s->snaps = NULL;
	s->nr = 0;
}

int cr_check_image_modes(struct cr_run *r)
{
	struct dirent *de;
	struct stat st;
	int files = 0;
	DIR *d;

	if (stat(r->imgdir, &st) < 0)
		return cr_fail(r, "image dir '%s': %s", r->imgdir, strerror(errno));
	if ((st.st_mode & 07777) != 0700)
		return cr_fail(r, "image dir '%s' has mode %04o, not 0700", r->imgdir,
			       st.st_mode & 07777);
	d = opendir(r->imgdir);
	if (!d)
		return cr_fail(r, "image dir '%s': %s", r->imgdir, strerror(errno));
	while ((de = readdir(d))) {
		char path[PATH_MAX + 300];

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", r->imgdir, de->d_name);
		if (lstat(path, &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		files++;
		if ((st.st_mode & 07777) != 0600) {
			closedir(d);
			return cr_fail(r, "image file '%s' has mode %04o, not 0600", de->d_name,
				       st.st_mode & 07777);
		}
	}
	closedir(d);
	if (!files)
		return cr_fail(r, "image dir '%s' holds no image file", r->imgdir);
	return 0;
}

/* Runs the case's default flow on the victims; 0 or -1. */
static int cr_flow_default_on(struct cr_run *r, const pid_t *victims, int nr,
			      struct cr_tree_snap *before)
{
	const struct cr_case *c = r->c;
	bool expect_fail = c->fault || c->dump_err;
	bool leave = r->env->leave_running && !c->no_leave && !expect_fail;
	pid_t restored;
	int status;

	if (c->wait_blocked)
		for (int i = 0; i < nr; i++)
			if (cr_wait_syscall(r, victims[i], c->syscall_nr))
				return -1;
	bool compare = (leave || expect_fail) && !c->changing;

	if (compare && cr_snapshot_trees(r, victims, nr, before))
		return -1;

	if (cr_dump_pids(r, "dump", victims, nr, leave, c->fault, &status))
		return -1;
	if (expect_fail) {
		if (cr_expect_failed(r, "dump", status, c->dump_err))
			return -1;
		if (compare && cr_check_unharmed_trees(r, before))
			return -1;
		for (int i = 0; i < nr; i++)
			if (cr_verify(r, victims[i], "dump-failed"))
				return -1;
		return 0;
	}
	if (cr_expect_ok(r, "dump", status))
		return -1;
	if (leave) {
		if (compare && cr_check_unharmed_trees(r, before))
			return -1;
		for (int i = 0; i < nr; i++)
			if (cr_verify(r, victims[i], "left-running"))
				return -1;
	} else {
		for (int i = 0; i < nr; i++)
			if (cr_reap_dumped(r, victims[i]))
				return -1;
	}

	if (c->between && c->between(r))
		return -1;

	if (cr_restore(r, "restore", &status, &restored))
		return -1;
	if (r->restore_err[0]) {
		if (cr_expect_failed(r, "restore", status, r->restore_err))
			return -1;
		for (int i = 0; i < nr; i++)
			if (cr_expect_pid_free(r, victims[i], "restore failed"))
				return -1;
		return 0;
	}
	if (cr_expect_ok(r, "restore", status))
		return -1;
	if (restored != victims[0])
		return cr_fail(r, "restore --pidfile says %d, expected the (first) dumped pid %d",
			       restored, victims[0]);
	for (int i = 0; i < nr; i++)
		if (cr_verify(r, victims[i], "restored"))
			return -1;
	return 0;
}

int cr_flow_default(struct cr_run *r)
{
	int nr = r->c->nr_victims > 0 ? r->c->nr_victims : 1, ret;
	static struct cr_tree_snap before;
	pid_t victims[CR_MAX_VICTIMS];

	if (nr > CR_MAX_VICTIMS)
		return cr_fail(r, "nr_victims %d > %d", nr, CR_MAX_VICTIMS);
	for (int i = 0; i < nr; i++) {
		if (cr_victim_start(r))
			return -1;
		victims[i] = r->victim;
	}
	r->victim = victims[0];
	ret = cr_flow_default_on(r, victims, nr, &before);
	cr_snap_trees_free(&before);
	return ret;
}

static __attribute__((noreturn)) void cr_runner_main(const struct cr_env *env,
						     const struct cr_case *c, int result_fd)
{
	static struct cr_run r;
	static struct cr_result res;
	char path[PATH_MAX];
	int ret;

	r.env = env;
	r.c = c;
	r.logfd = -1;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	snprintf(path, sizeof(path), "%s/runner.log", env->dir);
	r.logfd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	snprintf(r.imgdir, sizeof(r.imgdir), "%s/img", env->dir);
	cr_note(&r, "runner pid %d (%s mode)%s", getpid(),
		env->mode == CR_MODE_PIDNS ? "pidns" : "host",
		env->leave_running ? ", leave-running" : "");

	if (env->mode == CR_MODE_PIDNS) {
		if (mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
			ret = cr_fail(&r, "make / rprivate: %s", strerror(errno));
			goto out;
		}
		if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) {
			ret = cr_fail(&r, "mount proc: %s", strerror(errno));
			goto out;
		}
	} else if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
		ret = cr_fail(&r, "PR_SET_CHILD_SUBREAPER: %s", strerror(errno));
		goto out;
	}
	if (chdir(env->dir) < 0) {
		ret = cr_fail(&r, "chdir '%s': %s", env->dir, strerror(errno));
		goto out;
	}
	ret = (c->flow ? c->flow : cr_flow_default)(&r);
	if (!ret && r.err[0])
		ret = -1;
	cr_note(&r, "flow %s", ret ? "failed" : "passed");
out:
	cr_kill_children(&r);
	res.magic = CR_RESULT_MAGIC;
	snprintf(res.err, sizeof(res.err), "%s", r.err);
	snprintf(res.skip, sizeof(res.skip), "%s", r.skip);
	if (ret && !res.err[0] && !res.skip[0])
		snprintf(res.err, sizeof(res.err), "runner flow failed without a message");
	(void)!write(result_fd, &res, sizeof(res));
	_exit(0);
}

/* ---------------------------------------------------------------- test side */

void cr_env_setup(struct th_meta *_metadata, struct cr_env *env, enum cr_mode mode,
		  bool leave_running)
{
	const char *tmp = getenv("TMPDIR"), *ckpt = getenv("CKPT");
	char exe[PATH_MAX], cand[PATH_MAX + 16];
	ssize_t n;

	env->mode = mode;
	env->leave_running = leave_running;
	snprintf(env->dir, sizeof(env->dir), "%s/ckpt-st.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	ASSERT_TRUE(mkdtemp(env->dir) != NULL);

	if (ckpt && *ckpt) {
		snprintf(cand, sizeof(cand), "%s", ckpt);
	} else {
		n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		ASSERT_LT(0, n);
		exe[n] = 0;
		snprintf(cand, sizeof(cand), "%s/../../ckpt", dirname(exe));
	}
	if (!realpath(cand, env->ckpt) || access(env->ckpt, X_OK)) {
		TH_LOG("no ckpt binary at '%s' (set CKPT or run 'make ckpt')", cand);
		ASSERT_TRUE(0);
	}
}

static int cr_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)remove(path);
	return 0;
}

void cr_env_teardown(struct th_meta *_metadata, struct cr_env *env)
{
	const char *keep = getenv("CR_KEEP");

	if (!env->dir[0])
		return;
	if (keep && *keep && strcmp(keep, "0")) {
		TH_LOG("kept %s", env->dir);
		return;
	}
	nftw(env->dir, cr_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Prints the tail of DIR/name as comments. */
static void cr_print_log(const struct cr_env *env, const char *name)
{
	static char text[262144];
	char path[PATH_MAX + 64];
	const char *p;
	ssize_t n;
	int lines = 0;

	snprintf(path, sizeof(path), "%s/%s", env->dir, name);
	n = cr_read_file(path, text, sizeof(text));
	if (n <= 0)
		return;
	for (p = text + n; p > text; p--)
		if (p[-1] == '\n' && p != text + n && ++lines > CR_LOG_TAIL_LINES)
			break;
	th_comment("---- %s%s ----", name, p > text ? " (tail)" : "");
	th_comment("%s", p);
}

static void cr_print_logs(const struct cr_env *env)
{
	static const char *const first[] = { "runner.log", "victim.out" };
	struct dirent *de;
	DIR *d;

	for (size_t i = 0; i < sizeof(first) / sizeof(first[0]); i++)
		cr_print_log(env, first[i]);
	d = opendir(env->dir);
	if (!d)
		return;
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);

		if (len > 4 && (!strcmp(de->d_name + len - 4, ".out") ||
				!strcmp(de->d_name + len - 4, ".log")) &&
		    strcmp(de->d_name, "runner.log") && strcmp(de->d_name, "victim.out"))
			cr_print_log(env, de->d_name);
	}
	closedir(d);
}

void cr_run_case(struct th_meta *_metadata, struct cr_env *env, const struct cr_case *c)
{
	static struct cr_result res;
	int fds[2], status = 0, ret;
	size_t got = 0;
	pid_t pid;

	ASSERT_EQ(0, pipe2(fds, O_CLOEXEC));
	fflush(NULL);
	if (env->mode == CR_MODE_PIDNS)
		pid = syscall(SYS_clone, CLONE_NEWPID | CLONE_NEWNS | SIGCHLD, NULL, NULL, NULL,
			      0UL);
	else
		pid = fork();
	if (pid < 0 && env->mode == CR_MODE_PIDNS && (errno == EPERM || errno == EINVAL))
		SKIP(return, "cannot create a PID namespace: %s", strerror(errno));
	ASSERT_LE(0, pid);
	if (pid == 0) {
		close(fds[0]);
		cr_runner_main(env, c, fds[1]);
	}
	close(fds[1]);

	ret = cr_wait_child(pid, CR_RUNNER_TIMEOUT_MS, &status);
	memset(&res, 0, sizeof(res));
	while (got < sizeof(res)) {
		ssize_t n = read(fds[0], (char *)&res + got, sizeof(res) - got);

		if (n <= 0)
			break;
		got += n;
	}
	close(fds[0]);

	if (ret == -ETIMEDOUT)
		snprintf(res.err, sizeof(res.err), "runner timed out after %d s (killed)",
			 CR_RUNNER_TIMEOUT_MS / 1000);
	else if (got != sizeof(res) || res.magic != CR_RESULT_MAGIC) {
		char what[128];

		cr_describe_status(status, what, sizeof(what));
		snprintf(res.err, sizeof(res.err), "runner died without a result: %s", what);
	}
	if (res.skip[0] && !res.err[0])
		SKIP(return, "%s", res.skip);
	if (res.err[0]) {
		TH_LOG("%s", res.err);
		cr_print_logs(env);
		_metadata->failed = true;
		th_bail(_metadata);
	}
}

/* ---------------------------------------------------------------- victim side */

static void cr_on_usr2(int sig)
{
	cr_verify_requested = 1;
}

static void cr_victim_install_usr2(void)
{
	struct sigaction sa = { .sa_handler = cr_on_usr2, .sa_flags = SA_RESTART };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR2, &sa, NULL);
}

void cr_victim_ready(void)
{
	char c = 'R';

	if (cr_ready_fd < 0)
		return;
	(void)!write(cr_ready_fd, &c, 1);
	close(cr_ready_fd);
	cr_ready_fd = -1;
}

void cr_victim_wait(void)
{
	sigset_t usr2, old;

	sigemptyset(&usr2);
	sigaddset(&usr2, SIGUSR2);
	sigprocmask(SIG_BLOCK, &usr2, &old);
	sigdelset(&old, SIGUSR2);
	while (!cr_verify_requested)
		sigsuspend(&old);
	sigprocmask(SIG_SETMASK, &old, NULL);
}

void cr_victim_ready_wait(void)
{
	cr_victim_ready();
	cr_victim_wait();
}

int cr_victim_result(void)
{
	return cr_victim_failures ? 1 : 0;
}

static void cr_victim_vreport(const char *tag, const char *file, int line, const char *cond,
			      const char *fmt, va_list ap)
{
	char buf[1024];
	int n;

	n = snprintf(buf, sizeof(buf), "victim %d: %s%s:%d: %s: ", getpid(), tag,
		     basename((char *)file), line, cond);
	n += vsnprintf(buf + n, sizeof(buf) - n - 1, fmt, ap);
	if (n > (int)sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	buf[n++] = '\n';
	(void)!write(2, buf, n);
}

void cr_victim_fail(const char *file, int line, const char *cond, const char *fmt, ...)
{
	va_list ap;

	cr_victim_failures++;
	va_start(ap, fmt);
	cr_victim_vreport("", file, line, cond, fmt, ap);
	va_end(ap);
}

void cr_victim_abort(int code, const char *file, int line, const char *cond, const char *fmt, ...)
{
	char msg[768];
	int err = errno;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (code == 4)
		dprintf(2, "%s\n", msg);
	else
		dprintf(2, "victim %d: setup %s:%d: %s: %s (errno %d %s)\n", getpid(),
			basename((char *)file), line, cond, msg, err, strerror(err));
	_exit(code);
}

#ifdef __x86_64__
bool cr_cpu_has_avx(void)
{
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx");
}

struct cr_regs_io {
	struct cr_regs in;
	struct cr_regs out;
	const volatile sig_atomic_t *flag;
	uint32_t *arrived;		/* NULL: say ready on fd instead */
	int fd;
	char byte;
	uint32_t mxcsr_saved;
	uint16_t fcw_saved;
};

void cr_regs_x87(struct cr_regs *r)
{
	uint16_t saved;

	asm volatile("fnstcw %[saved]\n\t"
		     "fldcw %[fcw]\n\t"
		     "fldpi\n\t"
		     "fld1\n\t"
		     "fldl2t\n\t"
		     "fstpt %[st0]\n\t"
		     "fstpt %[st1]\n\t"
		     "fstpt %[st2]\n\t"
		     "fldcw %[saved]\n\t"
		     : [saved] "=m"(saved), [st0] "=m"(r->st[0]), [st1] "=m"(r->st[1]),
		       [st2] "=m"(r->st[2])
		     : [fcw] "m"(r->fcw));
}

void cr_regs_init(struct cr_regs *in, unsigned seed)
{
	memset(in, 0, sizeof(*in));
	for (int i = 0; i < 7; i++)
		in->gpr[i] = 0x0101010101010101ULL * (uint64_t)(i + 1) ^ ((uint64_t)seed << 32) ^ seed;
	for (int i = 0; i < 16; i++)
		for (int j = 0; j < 32; j++)
			in->vec[i][j] = (uint8_t)(seed * 31 + i * 37 + j * 11 + 1);
	/* round toward zero, flush-to-zero, denormals-are-zero, all exceptions masked */
	in->mxcsr = 0x1f80 | 0x6000 | 0x8000 | 0x0040;
	/* x87: round toward zero, 64-bit precision, exceptions masked */
	in->fcw = 0x0f7f;
	cr_regs_x87(in);
}

#define CR_REGS_ASM(LOAD, STORE)							\
	asm volatile(									\
		"stmxcsr %c[mxs](%%r8)\n\t"						\
		"fnstcw %c[fcws](%%r8)\n\t"						\
		LOAD									\
		"ldmxcsr %c[mxin](%%r8)\n\t"						\
		"fldcw %c[fcwin](%%r8)\n\t"						\
		"fldpi\n\t"								\
		"fld1\n\t"								\
		"fldl2t\n\t"								\
		"mov %c[gin]+0(%%r8), %%rbx\n\t"					\
		"mov %c[gin]+8(%%r8), %%r9\n\t"						\
		"mov %c[gin]+16(%%r8), %%r10\n\t"					\
		"mov %c[gin]+24(%%r8), %%r12\n\t"					\
		"mov %c[gin]+32(%%r8), %%r13\n\t"					\
		"mov %c[gin]+40(%%r8), %%r14\n\t"					\
		"mov %c[gin]+48(%%r8), %%r15\n\t"					\
		/* ready: lock-increment *arrived, or without it write(fd, &byte, 1);	\
		 * close(fd). Syscalls keep every register loaded above (they clobber	\
		 * rax, rcx, r11 only). */						\
		"mov %c[arrived](%%r8), %%rax\n\t"					\
		"test %%rax, %%rax\n\t"							\
		"jz 2f\n\t"								\
		"lock incl (%%rax)\n\t"							\
		"jmp 3f\n\t"								\
		"2: mov $1, %%eax\n\t"							\
		"mov %c[fd](%%r8), %%edi\n\t"						\
		"lea %c[byte](%%r8), %%rsi\n\t"						\
		"mov $1, %%edx\n\t"							\
		"syscall\n\t"								\
		"mov $3, %%eax\n\t"							\
		"mov %c[fd](%%r8), %%edi\n\t"						\
		"syscall\n\t"								\
		"3: mov %c[flag](%%r8), %%rax\n\t"					\
		"1: pause\n\t"								\
		"cmpl $0, (%%rax)\n\t"							\
		"je 1b\n\t"								\
		"mov %%rbx, %c[gout]+0(%%r8)\n\t"					\
		"mov %%r9, %c[gout]+8(%%r8)\n\t"					\
		"mov %%r10, %c[gout]+16(%%r8)\n\t"					\
		"mov %%r12, %c[gout]+24(%%r8)\n\t"					\
		"mov %%r13, %c[gout]+32(%%r8)\n\t"					\
		"mov %%r14, %c[gout]+40(%%r8)\n\t"					\
		"mov %%r15, %c[gout]+48(%%r8)\n\t"					\
		STORE									\
		"stmxcsr %c[mxout](%%r8)\n\t"						\
		"fnstcw %c[fcwout](%%r8)\n\t"						\
		"fstpt %c[st]+0(%%r8)\n\t"						\
		"fstpt %c[st]+10(%%r8)\n\t"						\
		"fstpt %c[st]+20(%%r8)\n\t"						\
		"ldmxcsr %c[mxs](%%r8)\n\t"						\
		"fldcw %c[fcws](%%r8)\n\t"						\
		:									\
		: "r"(io),								\
		  [vin] "i"(offsetof(struct cr_regs_io, in.vec)),			\
		  [vout] "i"(offsetof(struct cr_regs_io, out.vec)),			\
		  [gin] "i"(offsetof(struct cr_regs_io, in.gpr)),			\
		  [gout] "i"(offsetof(struct cr_regs_io, out.gpr)),			\
		  [mxin] "i"(offsetof(struct cr_regs_io, in.mxcsr)),			\
		  [mxout] "i"(offsetof(struct cr_regs_io, out.mxcsr)),			\
		  [mxs] "i"(offsetof(struct cr_regs_io, mxcsr_saved)),			\
		  [fcwin] "i"(offsetof(struct cr_regs_io, in.fcw)),			\
		  [fcwout] "i"(offsetof(struct cr_regs_io, out.fcw)),			\
		  [fcws] "i"(offsetof(struct cr_regs_io, fcw_saved)),			\
		  [st] "i"(offsetof(struct cr_regs_io, out.st)),			\
		  [fd] "i"(offsetof(struct cr_regs_io, fd)),				\
		  [byte] "i"(offsetof(struct cr_regs_io, byte)),			\
		  [arrived] "i"(offsetof(struct cr_regs_io, arrived)),			\
		  [flag] "i"(offsetof(struct cr_regs_io, flag))				\
		: "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "r9", "r10", "r11", "r12",	\
		  "r13", "r14", "r15", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5",	\
		  "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13",	\
		  "xmm14", "xmm15", "memory", "cc")

#define CR_V16(M, ins)									\
	M(ins, 0) M(ins, 1) M(ins, 2) M(ins, 3) M(ins, 4) M(ins, 5) M(ins, 6) M(ins, 7)	\
	M(ins, 8) M(ins, 9) M(ins, 10) M(ins, 11) M(ins, 12) M(ins, 13) M(ins, 14) M(ins, 15)

#define CR_YLOAD(ins, n)  ins " %c[vin]+32*" #n "(%%r8), %%ymm" #n "\n\t"
#define CR_YSTORE(ins, n) ins " %%ymm" #n ", %c[vout]+32*" #n "(%%r8)\n\t"
#define CR_XLOAD(ins, n)  ins " %c[vin]+32*" #n "(%%r8), %%xmm" #n "\n\t"
#define CR_XSTORE(ins, n) ins " %%xmm" #n ", %c[vout]+32*" #n "(%%r8)\n\t"

void cr_regs_hold(const struct cr_regs *in, struct cr_regs *out, bool avx, uint32_t *arrived)
{
	/* On the caller's stack: each thread of a victim may hold its own values at once. */
	struct cr_regs_io iobuf;
	register struct cr_regs_io *io asm("r8") = &iobuf;

	memset(&iobuf, 0, sizeof(iobuf));
	iobuf.in = *in;
	iobuf.flag = &cr_verify_requested;
	iobuf.arrived = arrived;
	iobuf.fd = arrived ? -1 : cr_ready_fd;
	iobuf.byte = 'R';
	if (avx) {
		CR_REGS_ASM(CR_V16(CR_YLOAD, "vmovdqu"), CR_V16(CR_YSTORE, "vmovdqu") "vzeroupper\n\t");
	} else {
		CR_REGS_ASM(CR_V16(CR_XLOAD, "movdqu"), CR_V16(CR_XSTORE, "movdqu"));
	}
	if (!arrived)
		cr_ready_fd = -1;
	*out = iobuf.out;
}

void cr_regs_wait(const struct cr_regs *in, struct cr_regs *out, bool avx)
{
	cr_regs_hold(in, out, avx, NULL);
}

int cr_regs_compare(const struct cr_regs *in, const struct cr_regs *out, bool avx)
{
	static const char *const gname[] = { "rbx", "r9", "r10", "r12", "r13", "r14", "r15" };
	int before = cr_victim_failures;
	size_t vlen = avx ? 32 : 16;

	for (int i = 0; i < 7; i++)
		CR_CHECK(in->gpr[i] == out->gpr[i], "%s: 0x%llx, expected 0x%llx", gname[i],
			 (unsigned long long)out->gpr[i], (unsigned long long)in->gpr[i]);
	for (int i = 0; i < 16; i++) {
		if (!memcmp(in->vec[i], out->vec[i], vlen))
			continue;
		for (size_t j = 0; j < vlen; j++)
			if (in->vec[i][j] != out->vec[i][j]) {
				CR_CHECK(0, "%s%d byte %zu: 0x%02x, expected 0x%02x",
					 avx ? "ymm" : "xmm", i, j, out->vec[i][j], in->vec[i][j]);
				break;
			}
	}
	CR_CHECK(in->mxcsr == out->mxcsr, "mxcsr 0x%x, expected 0x%x", out->mxcsr, in->mxcsr);
	CR_CHECK(in->fcw == out->fcw, "x87 control word 0x%x, expected 0x%x", out->fcw, in->fcw);
	for (int i = 0; i < 3; i++)
		CR_CHECK(!memcmp(in->st[i], out->st[i], 10), "x87 st(%d) differs", i);
	return cr_victim_failures - before;
}
#endif

int cr_flow_restore_edited(struct cr_run *r, int (*prepare)(struct cr_run *r, pid_t dumped),
			   const char *field)
{
	pid_t dumped, restored;
	int status, left;

	if (cr_victim_start(r))
		return -1;
	dumped = r->victim;
	if (cr_dump(r, "dump", dumped, false, NULL, &status) || cr_expect_ok(r, "dump", status))
		return -1;
	if (cr_reap_dumped(r, dumped) || (prepare && prepare(r, dumped)))
		return -1;
	if (r->c->between && r->c->between(r))
		return -1;
	if (cr_restore(r, "restore", &status, &restored))
		return -1;
	if (!r->restore_err[0]) {
		if (cr_expect_ok(r, "restore", status))
			return -1;
		if (restored != dumped)
			return cr_fail(r, "restored as %d, expected %d", restored, dumped);
		return cr_verify(r, dumped, "restored");
	}
	if (cr_expect_failed(r, "restore", status, r->restore_err))
		return -1;
	if (field && field[0] && cr_expect_output(r, "restore", field))
		return -1;
	if (cr_expect_pid_free(r, dumped, "restore failed"))
		return -1;
	left = cr_count_children();
	if (left)
		return cr_fail(r, "%d process(es) left after the failed restore", left);
	return 0;
}

unsigned char cr_pattern(size_t i, unsigned seed)
{
	return (unsigned char)((i * 131 + seed * 7 + (i >> 12)) ^ (i >> 9));
}

void cr_fill(void *p, size_t n, unsigned seed)
{
	unsigned char *c = p;

	for (size_t i = 0; i < n; i++)
		c[i] = cr_pattern(i, seed);
}

long cr_check_pattern(const void *p, size_t n, unsigned seed)
{
	const unsigned char *c = p;

	for (size_t i = 0; i < n; i++)
		if (c[i] != cr_pattern(i, seed))
			return i;
	return -1;
}

bool cr_all_zero(const void *p, size_t n)
{
	const unsigned char *c = p;

	for (size_t i = 0; i < n; i++)
		if (c[i])
			return false;
	return true;
}
