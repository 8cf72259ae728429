// SPDX-License-Identifier: MIT
/*
 * job_test: jobs and their terminal, sessions and groups, and the exit status of a restore.
 *
 *  - shell_job: the victim's fds 0-2 are a pty slave (the runner keeps the master). A dump
 *    without --shell-job fails naming --shell-job and leaves the victim unharmed; with it,
 *    the dump works, and a restore with --shell-job whose own fds 0-2 are a new pty slave
 *    gives the task that terminal: fds 0-2 are ttys and fd 1 reaches the new master.
 *  - session_leader: the victim leads its session and group (the runner's setsid()); so does
 *    the restored task.
 *  - group_leader: a victim in the test's session (keep_session) leads a group of its own
 *    (setpgid(0, 0)); dumped and restored with --shell-job, it leads its group again and no
 *    session.
 *  - exit_status / killed_status: `ckpt restore` without -d exits with the restored task's
 *    exit code (7), or 128+15 when the task is killed by SIGTERM.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cr.h"

#define MARKER "ckpt-job-marker-"

CR_FIXTURE(job);

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

/* A new pty: master fd (non-blocking) and the slave's path. -1 on error (errno set). */
static int new_pty(char *slave, size_t size)
{
	int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	const char *name;

	if (m < 0)
		return -1;
	if (grantpt(m) || unlockpt(m) || !(name = ptsname(m))) {
		int err = errno;

		close(m);
		errno = err;
		return -1;
	}
	snprintf(slave, size, "%s", name);
	fcntl(m, F_SETFL, O_NONBLOCK);
	return m;
}

/* ---- --shell-job ---- */

static char old_slave[64];	/* set by the runner before the victim forks */

static int victim_tty(void *arg)
{
	static char msg[64], out[PATH_MAX];
	bool tty[3];
	ssize_t w;
	int fd, len;

	fd = open(old_slave, O_RDWR | O_NOCTTY);
	CR_SETUP(fd >= 0, "open '%s'", old_slave);
	for (int i = 0; i < 3; i++)
		CR_SETUP(dup2(fd, i) == i, "dup2");
	if (fd > 2)
		close(fd);
	for (int i = 0; i < 3; i++)
		CR_SETUP(isatty(i), "fd %d is not a tty", i);

	cr_victim_ready_wait();

	for (int i = 0; i < 3; i++)
		tty[i] = isatty(i);
	len = snprintf(msg, sizeof(msg), MARKER "%d\n", getpid());
	w = write(1, msg, len);
	/* Reports go to victim.out again, not to the terminal. */
	snprintf(out, sizeof(out), "%s/victim.out", cr_victim_dir);
	fd = open(out, O_WRONLY | O_APPEND);
	if (fd >= 0) {
		dup2(fd, 2);
		close(fd);
	}
	for (int i = 0; i < 3; i++)
		CR_CHECK(tty[i], "fd %d is not a terminal after restore", i);
	CR_CHECK(w == len, "write to fd 1: %zd of %d bytes", w, len);
	return cr_victim_result();
}

/* Reads the master (bounded) until it saw needle; the text read goes to buf. */
static bool read_master(int m, const char *needle, char *buf, size_t size)
{
	long deadline = now_ms() + 5000;
	size_t len = 0;

	buf[0] = 0;
	while (now_ms() < deadline && len < size - 1) {
		struct pollfd pfd = { .fd = m, .events = POLLIN };
		ssize_t n;

		if (strstr(buf, needle))
			return true;
		if (poll(&pfd, 1, deadline - now_ms()) <= 0)
			continue;
		n = read(m, buf + len, size - 1 - len);
		if (n <= 0) {
			if (n < 0 && errno == EAGAIN)
				continue;
			break;
		}
		len += n;
		buf[len] = 0;
	}
	return strstr(buf, needle) != NULL;
}

static int flow_shell_job(struct cr_run *r)
{
	static struct cr_snap before;
	char new_slave[64], pidfile[PATH_MAX], spid[16], text[4096], needle[64], buf[64];
	const char *dump_args[] = { "dump", "-t", spid, "-D", r->imgdir, "--shell-job", NULL };
	const char *rst_args[] = { "restore", "-D", r->imgdir, "-d", "--shell-job", "--pidfile",
				   pidfile, NULL };
	int old_m, new_m, slave, status, ret;
	pid_t pid, ckpt;

	old_m = new_pty(old_slave, sizeof(old_slave));
	if (old_m < 0)
		return cr_skip(r, "no pty: %s", strerror(errno));
	if (cr_victim_start(r))
		return -1;
	pid = r->victim;
	snprintf(spid, sizeof(spid), "%d", pid);

	/* Without --shell-job: refused, victim unharmed. */
	if (cr_snapshot(r, pid, &before))
		return -1;
	if (cr_dump(r, "dump-noshell", pid, false, NULL, &status))
		return -1;
	if (cr_expect_failed(r, "dump-noshell", status, "--shell-job"))
		return -1;
	if (cr_check_unharmed(r, pid, &before))
		return -1;

	if (cr_ckpt(r, "dump", NULL, dump_args, &status) || cr_expect_ok(r, "dump", status))
		return -1;
	if (cr_reap_dumped(r, pid))
		return -1;

	/* Restore on another terminal: ckpt's own fds 0-2 are its slave. */
	new_m = new_pty(new_slave, sizeof(new_slave));
	if (new_m < 0)
		return cr_fail(r, "second pty: %s", strerror(errno));
	slave = open(new_slave, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (slave < 0)
		return cr_fail(r, "open '%s': %s", new_slave, strerror(errno));
	snprintf(pidfile, sizeof(pidfile), "%s/restore.pid", r->env->dir);
	cr_note(r, "old terminal %s, new terminal %s", old_slave, new_slave);
	ckpt = cr_ckpt_start(r, "restore", NULL, rst_args, slave);
	if (ckpt < 0)
		return -1;
	if (cr_ckpt_wait(r, "restore", ckpt, &status))
		return -1;
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		read_master(new_m, "\n", text, sizeof(text));
		return cr_fail(r, "ckpt restore --shell-job failed (status 0x%x): '%.*s'", status,
			       (int)strcspn(text, "\r\n"), text);
	}
	if (cr_read_file(pidfile, buf, sizeof(buf)) <= 0 || atoi(buf) != pid)
		return cr_fail(r, "restore --pidfile says '%s', expected %d", buf, pid);

	ret = cr_verify(r, pid, "restored");
	snprintf(needle, sizeof(needle), MARKER "%d", pid);
	if (!ret && !read_master(new_m, needle, text, sizeof(text)))
		ret = cr_fail(r, "the restored task's write to fd 1 did not reach the new "
			      "terminal's master (read '%.*s')", (int)strcspn(text, "\r\n"), text);
	/* ...and not the old one. */
	if (!ret && read(old_m, text, sizeof(text) - 1) > 0)
		ret = cr_fail(r, "the restored task wrote to the old terminal");
	close(slave);
	close(new_m);
	close(old_m);
	return ret;
}

CR_CASE(job, shell_job, .victim = victim_tty, .flow = flow_shell_job);

/* ---- sessions and process groups ---- */

static int victim_session(void *arg)
{
	pid_t me = getpid();

	CR_SETUP(getsid(0) == me && getpgrp() == me, "not a session leader");

	cr_victim_ready_wait();

	CR_CHECK(getsid(0) == getpid(), "session %d, expected to lead its own (%d)", getsid(0),
		 getpid());
	CR_CHECK(getpgrp() == getpid(), "process group %d, expected to lead its own (%d)",
		 getpgrp(), getpid());
	return cr_victim_result();
}

CR_CASE(job, session_leader, .victim = victim_session);

static int victim_group(void *arg)
{
	pid_t me = getpid();

	CR_SETUP(!setpgid(0, 0), "setpgid");
	CR_SETUP(getpgrp() == me && getsid(0) != me, "not a group leader only");

	cr_victim_ready_wait();

	CR_CHECK(getpgrp() == getpid(), "process group %d, expected to lead its own (%d)",
		 getpgrp(), getpid());
	CR_CHECK(getsid(0) != getpid(), "leads a session after restore, it only led a group");
	return cr_victim_result();
}

/* Its session leader is outside the dump: that takes --shell-job (tree_test checks the
 * refusal without it). */
CR_CASE(job, group_leader, .victim = victim_group, .keep_session = true, .shell_job = true);

/* ---- the exit status of `ckpt restore` without -d ---- */

#define EXIT_AFTER_VERIFY 7
#define STATE_SIZE (256UL << 10)

static int victim_exit(void *arg)
{
	unsigned char *m;
	uint64_t h;

	m = mmap(NULL, STATE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CR_SETUP(m != MAP_FAILED, "mmap");
	for (size_t i = 0; i < STATE_SIZE; i++)
		m[i] = (unsigned char)(i * 7 + 3);
	h = cr_hash(m, STATE_SIZE);

	cr_victim_ready_wait();

	CR_CHECK(cr_hash(m, STATE_SIZE) == h, "memory checksum changed");
	return cr_victim_result() ? 1 : EXIT_AFTER_VERIFY;
}

/* Waits (bounded) until ckpt wrote the pid file and the task is no longer traced. */
static int wait_running(struct cr_run *r, pid_t ckpt, const char *pidfile, pid_t want)
{
	long deadline = now_ms() + 10000;
	char buf[4096], tracer[32] = "?";

	while (now_ms() < deadline) {
		siginfo_t si = { 0 };
		char path[64];

		if (!waitid(P_PID, ckpt, &si, WEXITED | WNOHANG | WNOWAIT) && si.si_pid == ckpt)
			return cr_fail(r, "ckpt restore exited (code %d) before the task ran",
				       si.si_status);
		if (cr_read_file(pidfile, buf, sizeof(buf)) > 0) {
			if (atoi(buf) != want)
				return cr_fail(r, "restore --pidfile says '%s', expected %d", buf,
					       want);
			snprintf(path, sizeof(path), "/proc/%d/status", want);
			if (cr_read_file(path, buf, sizeof(buf)) > 0 &&
			    !cr_status_field(buf, "TracerPid", tracer, sizeof(tracer)) &&
			    !strcmp(tracer, "0"))
				return 0;
		}
		/* Nothing signals "detached": poll with a bounded deadline. */
		(void)poll(NULL, 0, 2);
	}
	return cr_fail(r, "restored task %d not running untraced within 10 s (TracerPid %s)", want,
		       tracer);
}

static int flow_exit_status(struct cr_run *r)
{
	int sig = (int)(long)r->c->arg == 0 ? SIGUSR2 : SIGTERM;
	int want = sig == SIGUSR2 ? EXIT_AFTER_VERIFY : 128 + SIGTERM;
	char pidfile[PATH_MAX];
	const char *args[] = { "restore", "-D", r->imgdir, "--pidfile", pidfile, NULL };
	int status, left;
	pid_t pid, ckpt;

	if (cr_victim_start(r))
		return -1;
	pid = r->victim;
	if (cr_dump(r, "dump", pid, false, NULL, &status) || cr_expect_ok(r, "dump", status))
		return -1;
	if (cr_reap_dumped(r, pid))
		return -1;
	snprintf(pidfile, sizeof(pidfile), "%s/restore.pid", r->env->dir);
	ckpt = cr_ckpt_start(r, "restore", NULL, args, -1);
	if (ckpt < 0)
		return -1;
	if (wait_running(r, ckpt, pidfile, pid))
		return -1;
	cr_note(r, "sending %s to the restored task %d", strsignal(sig), pid);
	if (kill(pid, sig) < 0)
		return cr_fail(r, "kill %d: %s", pid, strerror(errno));
	if (cr_ckpt_wait(r, "restore", ckpt, &status))
		return -1;
	if (!WIFEXITED(status))
		return cr_fail(r, "ckpt restore did not exit normally (status 0x%x)", status);
	if (WEXITSTATUS(status) != want)
		return cr_fail(r, "ckpt restore exited %d, expected the task's status %d%s",
			       WEXITSTATUS(status), want,
			       WEXITSTATUS(status) == 1 && sig == SIGUSR2 ?
			       " (1: the victim found a mismatch, see victim.out)" : "");
	if (cr_expect_pid_free(r, pid, "ckpt restore returned"))
		return -1;
	left = cr_count_children();
	if (left)
		return cr_fail(r, "%d process(es) left after ckpt restore returned", left);
	return 0;
}

CR_CASE(job, exit_status, .victim = victim_exit, .flow = flow_exit_status, .arg = (void *)0);
CR_CASE(job, killed_status, .victim = victim_exit, .flow = flow_exit_status, .arg = (void *)1);

TEST_HARNESS_MAIN
