// SPDX-License-Identifier: MIT
/*
 * incr.c: trackd, victim commands, dumps and restores for incremental-dump tests (see
 * incr.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "incr.h"

long incr_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

void incr_fill_page(void *p, unsigned seed)
{
	cr_fill(p, INCR_PAGE_SIZE, seed);
	((unsigned char *)p)[0] = 0xa5;	/* never an all-zero page */
}

int incr_read_line(int fd, char *buf, size_t size, int ms)
{
	size_t len = 0;

	while (len < size - 1) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (ms >= 0 && poll(&p, 1, ms) <= 0)
			return -ETIMEDOUT;
		n = read(fd, buf + len, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (!n)
			return -EPIPE;
		if (buf[len] == '\n')
			break;
		len++;
	}
	buf[len] = 0;
	return 0;
}

int incr_wait_child(pid_t pid)
{
	int fd = syscall(SYS_pidfd_open, pid, 0), status = -ETIMEDOUT, ret;
	long deadline = incr_now_ms() + INCR_WAIT_MS;
	struct pollfd p = { .fd = fd, .events = POLLIN };

	if (fd < 0)
		return -errno;
	do
		ret = poll(&p, 1, deadline - incr_now_ms());
	while (ret < 0 && errno == EINTR && incr_now_ms() < deadline);
	if (ret == 1 && waitpid(pid, &status, 0) != pid)
		status = -errno;
	close(fd);
	return status;
}

bool incr_page_matches(const void *p, unsigned seed)
{
	static __thread unsigned char want[INCR_PAGE_SIZE];

	incr_fill_page(want, seed);
	return !memcmp(p, want, INCR_PAGE_SIZE);
}

/* ---------------------------------------------------------------- victim side */

/* Reads one command (up to EOF) from DIR/cmd; retries what a dump interrupts. */
static int victim_read_cmd(char *buf, size_t size)
{
	char path[PATH_MAX];
	size_t len = 0;
	int fd;

	snprintf(path, sizeof(path), "%s/cmd", cr_victim_dir);
	if (mkfifo(path, 0600) && errno != EEXIST)
		return -errno;
	do
		fd = open(path, O_RDONLY | O_CLOEXEC);
	while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return -errno;
	for (;;) {
		ssize_t n = read(fd, buf + len, size - 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += n;
		if (len == size - 1)
			break;
	}
	close(fd);
	buf[len] = 0;
	return 0;
}

static void victim_ack(const char *text)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/ack", cr_victim_dir);
	do
		fd = open(path, O_WRONLY | O_CLOEXEC);
	while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return;
	(void)!write(fd, text, strlen(text));
	close(fd);
}

int incr_victim_serve(incr_victim_cmd_fn fn, void *arg)
{
	char cmd[64], reply[256];

	for (;;) {
		int err = victim_read_cmd(cmd, sizeof(cmd));

		if (err) {
			dprintf(2, "victim: cannot read a command: %s\n", strerror(-err));
			return 2;
		}
		if (cmd[0] == 'v')
			return 0;
		fn(arg, cmd, reply, sizeof(reply));
		victim_ack(reply);
	}
}

/* ---------------------------------------------------------------- runner side */

void incr_path(struct cr_run *r, char *buf, const char *name)
{
	snprintf(buf, PATH_MAX, "%s/%s", r->env->dir, name);
}

int incr_reap(struct cr_run *r, pid_t pid, const char *what)
{
	int fd = syscall(SYS_pidfd_open, pid, 0), status;
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	if (fd < 0)
		return cr_fail(r, "%s %d: pidfd_open: %s", what, pid, strerror(errno));
	if (poll(&pfd, 1, INCR_WAIT_MS) <= 0) {
		close(fd);
		kill(pid, SIGKILL);
		(void)waitpid(pid, &status, 0);
		return cr_fail(r, "%s %d did not exit within %d ms (killed)", what, pid,
			       INCR_WAIT_MS);
	}
	close(fd);
	(void)waitpid(pid, &status, __WALL);
	cr_note(r, "%s %d exited (status 0x%x)", what, pid, status);
	return 0;
}

int incr_trackd_run(struct cr_run *r, const char *tag, const char *const args[],
		    int *ret_status)
{
	char bin[PATH_MAX], out[PATH_MAX], cmd[1024] = "";
	const char *argv[16];
	int argc = 0, fd;
	pid_t pid;

	snprintf(bin, sizeof(bin), "%s", r->env->ckpt);
	snprintf(bin + strlen(dirname(bin)), sizeof(bin) - strlen(bin), "/trackd");
	if (access(bin, X_OK))
		return cr_fail(r, "no trackd binary at '%s'", bin);
	argv[argc++] = bin;
	for (int i = 0; args[i] && argc < 15; i++)
		argv[argc++] = args[i];
	argv[argc] = NULL;
	for (int i = 0; i < argc; i++)
		snprintf(cmd + strlen(cmd), sizeof(cmd) - strlen(cmd), " %s", argv[i]);
	cr_note(r, "run:%s", cmd);
	incr_path(r, out, tag);
	strncat(out, ".out", sizeof(out) - strlen(out) - 1);
	pid = fork();
	if (pid < 0)
		return cr_fail(r, "fork: %s", strerror(errno));
	if (!pid) {
		fd = open("/dev/null", O_RDONLY);
		dup2(fd, 0);
		fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		dup2(fd, 1);
		dup2(fd, 2);
		(void)close_range(3, ~0U, 0);
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	{
		int pfd = syscall(SYS_pidfd_open, pid, 0);
		struct pollfd p = { .fd = pfd, .events = POLLIN };

		if (pfd < 0 || poll(&p, 1, 10000) <= 0) {
			kill(pid, SIGKILL);
			(void)waitpid(pid, NULL, 0);
			if (pfd >= 0)
				close(pfd);
			return cr_fail(r, "trackd %s did not finish within 10 s (killed)", tag);
		}
		close(pfd);
	}
	if (waitpid(pid, ret_status, 0) != pid)
		return cr_fail(r, "waitpid trackd: %s", strerror(errno));
	cr_note(r, "trackd %s: status 0x%x", tag, *ret_status);
	return 0;
}

int incr_trackd_start(struct cr_run *r, struct incr *st, const pid_t *roots, int nr,
		      const char *logname)
{
	char list[128] = "", pidfile[PATH_MAX], dbg[PATH_MAX], buf[32];
	const char *args[] = { "-t", list, "-L", st->log, "-d", "--pidfile", pidfile, "-v4",
			       "-o", dbg, NULL };
	int status;

	for (int i = 0; i < nr; i++)
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%d", i ? "," : "",
			 roots[i]);
	incr_path(r, st->log, logname);
	incr_path(r, pidfile, "trackd.pid");
	incr_path(r, dbg, "trackd.log");
	unlink(pidfile);
	if (incr_trackd_run(r, "trackd", args, &status))
		return -1;
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		return cr_fail(r, "trackd -t %s -L %s -d failed: status 0x%x (see trackd.out)",
			       list, st->log, status);
	if (cr_read_file(pidfile, buf, sizeof(buf)) <= 0 || atoi(buf) <= 0)
		return cr_fail(r, "trackd wrote no pidfile");
	st->trackd = atoi(buf);
	cr_note(r, "trackd daemon %d on '%s'", st->trackd, st->log);
	return 0;
}

int incr_trackd_stop(struct cr_run *r, struct incr *st)
{
	const char *args[] = { "stop", "-L", st->log, NULL };
	pid_t pid = st->trackd;
	int status;

	if (!pid)
		return 0;
	st->trackd = 0;
	if (incr_trackd_run(r, "trackd-stop", args, &status)) {
		kill(pid, SIGKILL);
		return -1;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		kill(pid, SIGKILL);
		(void)incr_reap(r, pid, "trackd");
		return cr_fail(r, "trackd stop -L %s: status 0x%x", st->log, status);
	}
	return incr_reap(r, pid, "trackd");
}

int incr_cmd(struct cr_run *r, struct incr *st, pid_t victim, const char *cmd)
{
	char cmdp[PATH_MAX], ackp[PATH_MAX];
	long deadline = incr_now_ms() + INCR_WAIT_MS;
	int afd = -1, cfd;
	size_t len = 0;

	incr_path(r, cmdp, "cmd");
	incr_path(r, ackp, "ack");
	if ((mkfifo(cmdp, 0600) && errno != EEXIST) || (mkfifo(ackp, 0600) && errno != EEXIST))
		return cr_fail(r, "mkfifo: %s", strerror(errno));
	if (cmd[0] != 'v') {
		afd = open(ackp, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
		if (afd < 0)
			return cr_fail(r, "open '%s': %s", ackp, strerror(errno));
	}
	/* The victim opens the FIFO when it waits for a command: nothing signals it. */
	while ((cfd = open(cmdp, O_WRONLY | O_NONBLOCK | O_CLOEXEC)) < 0) {
		if (errno != ENXIO || incr_now_ms() > deadline || kill(victim, 0)) {
			if (afd >= 0)
				close(afd);
			return cr_fail(r, "victim %d does not take command '%s' (%s)", victim, cmd,
				       strerror(errno));
		}
		(void)poll(NULL, 0, 1);
	}
	cr_note(r, "command '%s' to %d", cmd, victim);
	if (write(cfd, cmd, strlen(cmd)) != (ssize_t)strlen(cmd)) {
		close(cfd);
		if (afd >= 0)
			close(afd);
		return cr_fail(r, "write command: %s", strerror(errno));
	}
	close(cfd);
	if (afd < 0)
		return 0;
	st->info[0] = 0;
	for (;;) {
		struct pollfd pfd = { .fd = afd, .events = POLLIN };
		long left = deadline - incr_now_ms();
		ssize_t n;

		if (left <= 0 || poll(&pfd, 1, left) <= 0) {
			close(afd);
			return cr_fail(r, "no reply from victim %d to '%s' within %d ms", victim,
				       cmd, INCR_WAIT_MS);
		}
		n = read(afd, st->info + len, sizeof(st->info) - 1 - len);
		if (n < 0 && errno == EAGAIN)
			continue;
		if (n <= 0 && len)
			break;
		if (n <= 0) {
			/* POLLHUP before any byte: not possible without a writer; wait on. */
			(void)poll(NULL, 0, 1);
			continue;
		}
		len += n;
		st->info[len] = 0;
	}
	close(afd);
	cr_note(r, "reply: %s", st->info);
	if (strncmp(st->info, "ok", 2))
		return cr_fail(r, "victim %d: command '%s': %s", victim, cmd, st->info);
	return 0;
}

int incr_dump(struct cr_run *r, struct incr *st, const char *tag, pid_t pid, const char *dir,
	      const char *prev, bool leave, const char *flag)
{
	const char *extra[8] = { "--since-log", st->log };
	int n = 2, status;

	if (prev) {
		extra[n++] = "--prev-images";
		extra[n++] = prev;
	}
	if (flag)
		extra[n++] = flag;
	extra[n] = NULL;
	incr_path(r, r->imgdir, dir);
	if (cr_dump_pids_extra(r, tag, &pid, 1, leave, extra, NULL, &status) ||
	    cr_expect_ok(r, tag, status))
		return -1;
	if (!leave && cr_reap_dumped(r, pid))
		return -1;
	return 0;
}

int incr_restore(struct cr_run *r, pid_t victim, const char *dir, const char *tag)
{
	pid_t restored;
	int status;

	incr_path(r, r->imgdir, dir);
	if (cr_restore(r, tag, &status, &restored) || cr_expect_ok(r, tag, status))
		return -1;
	if (restored != victim)
		return cr_fail(r, "restored as %d, expected %d", restored, victim);
	return 0;
}

int incr_finish(struct cr_run *r, struct incr *st, pid_t victim, const char *dir,
		bool serves)
{
	if (incr_trackd_stop(r, st) || incr_restore(r, victim, dir, "restore"))
		return -1;
	if (serves && incr_cmd(r, st, victim, "v"))
		return -1;
	return cr_verify(r, victim, "restored");
}

int incr_flow(struct cr_run *r, incr_body_fn body)
{
	struct incr st = {};
	int ret;

	if (cr_victim_start(r))
		return -1;
	ret = body(r, &st, r->victim);
	if (incr_trackd_stop(r, &st))
		ret = -1;
	return ret;
}

