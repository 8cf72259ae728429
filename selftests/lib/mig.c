// SPDX-License-Identifier: MIT
/*
 * mig.c: destination namespaces and output watching for live-migration tests (see mig.h).
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mig.h"

#define MIG_MAX_ARGS	24
#define MIG_ARG_LEN	256
#define MIG_REPLY_MS	5000	/* bound of every request to an init */

enum mig_msg_type {
	MIG_REQ_SPAWN = 1,
	MIG_REQ_KILL,
	MIG_REQ_TASKS,
	MIG_REP,		/* reply to a request: err, pid (a pidfd may come along) */
	MIG_REP_TASKS,
	MIG_EV_EXIT,		/* the init reaped pid with status */
};

struct mig_msg {
	int type;
	int err;		/* 0 or -errno */
	pid_t pid;
	int arg;		/* signal of MIG_REQ_KILL, status of MIG_EV_EXIT */
};

struct mig_spawn_msg {
	struct mig_msg h;
	char tag[64];
	char fault[64];		/* empty: no CKPT_FAULT */
	int argc;
	char argv[MIG_MAX_ARGS][MIG_ARG_LEN];
};

struct mig_tasks_msg {
	struct mig_msg h;
	int nr;
	struct mig_task tasks[MIG_MAX_TASKS];
};

union mig_any_msg {
	struct mig_msg h;
	struct mig_spawn_msg spawn;
	struct mig_tasks_msg tasks;
};

static long mig_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

pid_t mig_pid_base(pid_t root, int k)
{
	char buf[32];
	long max = 32768, b;

	if (cr_read_file("/proc/sys/kernel/pid_max", buf, sizeof(buf)) > 0)
		max = strtol(buf, NULL, 10);
	b = (long)root - 5000 - 1000L * k;
	while (b < 300)
		b += max - 400;
	return b;
}

/* ---------------------------------------------------------------- the init */

static void mig_init_send(int sk, const void *msg, size_t len, int fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { .iov_base = (void *)msg, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (fd >= 0) {
		struct cmsghdr *c;

		memset(cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf;
		mh.msg_controllen = sizeof(cbuf);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	while (sendmsg(sk, &mh, MSG_NOSIGNAL) < 0 && errno == EINTR)
		;
}

static __attribute__((noreturn)) void mig_init_exec(const char *dir, const char *ckpt,
						    const struct mig_spawn_msg *m, int outfd)
{
	char log[PATH_MAX];
	const char *argv[MIG_MAX_ARGS + 5];
	int argc = 0, fd;
	sigset_t none;

	snprintf(log, sizeof(log), "%s/%s.log", dir, m->tag);
	argv[argc++] = ckpt;
	for (int i = 0; i < m->argc && i < MIG_MAX_ARGS; i++)
		argv[argc++] = m->argv[i];
	argv[argc++] = "-v4";
	argv[argc++] = "-o";
	argv[argc++] = log;
	argv[argc] = NULL;
	if (m->fault[0])
		setenv("CKPT_FAULT", m->fault, 1);
	else
		unsetenv("CKPT_FAULT");
	fd = open("/dev/null", O_RDONLY);
	if (fd >= 0)
		dup2(fd, 0);
	dup2(outfd, 1);
	dup2(outfd, 2);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	(void)close_range(3, ~0U, 0);
	execv(argv[0], (char *const *)argv);
	dprintf(2, "cannot execute '%s': %s\n", argv[0], strerror(errno));
	_exit(127);
}

static void mig_init_spawn(int sk, const char *dir, const char *ckpt,
			   const struct mig_spawn_msg *m)
{
	struct mig_msg rep = { .type = MIG_REP };
	char out[PATH_MAX];
	int outfd, pidfd = -1;
	pid_t pid;

	snprintf(out, sizeof(out), "%s/%s.out", dir, m->tag);
	outfd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (outfd < 0) {
		rep.err = -errno;
		mig_init_send(sk, &rep, sizeof(rep), -1);
		return;
	}
	pid = fork();
	if (pid == 0)
		mig_init_exec(dir, ckpt, m, outfd);
	close(outfd);
	if (pid < 0) {
		rep.err = -errno;
	} else {
		rep.pid = pid;
		pidfd = syscall(SYS_pidfd_open, pid, 0);
		if (pidfd < 0)
			rep.err = -errno;
	}
	mig_init_send(sk, &rep, sizeof(rep), pidfd);
	if (pidfd >= 0)
		close(pidfd);
}

static void mig_init_tasks(int sk)
{
	static struct mig_tasks_msg rep;
	struct dirent *de;
	DIR *d;

	memset(&rep, 0, sizeof(rep));
	rep.h.type = MIG_REP_TASKS;
	d = opendir("/proc");
	if (!d) {
		rep.h.err = -errno;
		mig_init_send(sk, &rep, sizeof(rep), -1);
		return;
	}
	while ((de = readdir(d)) && rep.nr < MIG_MAX_TASKS) {
		char path[64], comm[32];
		pid_t pid;

		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		pid = atoi(de->d_name);
		if (pid == 1)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/comm", pid);
		if (cr_read_file(path, comm, sizeof(comm)) <= 0)
			continue;	/* gone meanwhile */
		comm[strcspn(comm, "\n")] = 0;
		rep.tasks[rep.nr].pid = pid;
		snprintf(rep.tasks[rep.nr].comm, sizeof(rep.tasks[rep.nr].comm), "%.15s", comm);
		rep.nr++;
	}
	closedir(d);
	mig_init_send(sk, &rep, sizeof(rep), -1);
}

/* Reaps every zombie child and reports it. */
static void mig_init_reap(int sk)
{
	for (;;) {
		struct mig_msg ev = { .type = MIG_EV_EXIT };
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG | __WALL);

		if (pid <= 0)
			return;
		ev.pid = pid;
		ev.arg = status;
		mig_init_send(sk, &ev, sizeof(ev), -1);
	}
}

/*
 * PID 1 of the new namespace: its own /proc, ns_last_pid at base, then requests until the
 * runner closes the socket. Signals from the runner's namespace other than SIGKILL do not
 * reach a PID 1 that has no handler for them, so nothing but the socket ends it.
 */
static __attribute__((noreturn)) void mig_init_main(int sk, const char *dir, const char *ckpt,
						    pid_t base)
{
	static union mig_any_msg m;
	char buf[32];
	sigset_t chld;
	int sfd, fd;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) {
		dprintf(2, "mig init: mount: %s\n", strerror(errno));
		_exit(2);
	}
	fd = open("/proc/sys/kernel/ns_last_pid", O_WRONLY | O_CLOEXEC);
	snprintf(buf, sizeof(buf), "%d", base);
	if (fd < 0 || write(fd, buf, strlen(buf)) < 0) {
		dprintf(2, "mig init: ns_last_pid: %s\n", strerror(errno));
		_exit(2);
	}
	close(fd);
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, NULL);
	sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0)
		_exit(2);
	for (;;) {
		struct pollfd p[2] = { { .fd = sk, .events = POLLIN },
				       { .fd = sfd, .events = POLLIN } };
		ssize_t n;

		if (poll(p, 2, -1) < 0 && errno != EINTR)
			_exit(2);
		if (p[1].revents) {
			struct signalfd_siginfo si;

			while (read(sfd, &si, sizeof(si)) > 0)
				;
			mig_init_reap(sk);
		}
		if (!p[0].revents)
			continue;
		n = recv(sk, &m, sizeof(m), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < (ssize_t)sizeof(m.h))
			_exit(0);	/* the runner is done (or gone): the namespace ends */
		switch (m.h.type) {
		case MIG_REQ_SPAWN:
			mig_init_spawn(sk, dir, ckpt, &m.spawn);
			break;
		case MIG_REQ_KILL: {
			struct mig_msg rep = { .type = MIG_REP, .pid = m.h.pid };

			rep.err = kill(m.h.pid, m.h.arg) < 0 ? -errno : 0;
			mig_init_send(sk, &rep, sizeof(rep), -1);
			break;
		}
		case MIG_REQ_TASKS:
			mig_init_tasks(sk);
			break;
		default: {
			struct mig_msg rep = { .type = MIG_REP, .err = -EINVAL };

			mig_init_send(sk, &rep, sizeof(rep), -1);
		}
		}
	}
}

/* ---------------------------------------------------------------- runner side */

int mig_ns_start(struct cr_run *r, struct mig_ns *ns, const char *name, pid_t base)
{
	int sks[2];
	pid_t pid;

	memset(ns, 0, sizeof(*ns));
	ns->name = name;
	ns->sk = -1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sks) < 0)
		return cr_fail(r, "socketpair: %s", strerror(errno));
	pid = syscall(SYS_clone, CLONE_NEWPID | CLONE_NEWNS | SIGCHLD, NULL, NULL, NULL, 0UL);
	if (pid < 0) {
		close(sks[0]);
		close(sks[1]);
		return cr_fail(r, "cannot create the %s PID namespace: %s", name, strerror(errno));
	}
	if (pid == 0) {
		close(sks[0]);
		mig_init_main(sks[1], r->env->dir, r->env->ckpt, base);
	}
	close(sks[1]);
	ns->init = pid;
	ns->sk = sks[0];
	cr_note(r, "%s namespace: init %d, ns_last_pid %d", name, pid, base);
	return 0;
}

/*
 * Receives one message (bounded); an exit event is recorded in ns->exits, and returned only
 * if want_exit (else the next message is waited for). 0, -ETIMEDOUT or cr_fail().
 */
static int mig_ns_recv(struct cr_run *r, struct mig_ns *ns, union mig_any_msg *m, int *ret_fd,
		       long deadline, bool want_exit)
{
	for (;;) {
		char cbuf[CMSG_SPACE(sizeof(int))];
		struct iovec iov = { .iov_base = m, .iov_len = sizeof(*m) };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
				     .msg_controllen = sizeof(cbuf) };
		struct pollfd p = { .fd = ns->sk, .events = POLLIN };
		long left = deadline - mig_now_ms();
		struct cmsghdr *c;
		ssize_t n;

		if (ns->sk < 0)
			return cr_fail(r, "%s namespace: no init", ns->name);
		n = poll(&p, 1, left > 0 ? left : 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -ETIMEDOUT;
		n = recvmsg(ns->sk, &mh, MSG_CMSG_CLOEXEC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < (ssize_t)sizeof(m->h))
			return cr_fail(r, "%s namespace: its init is gone", ns->name);
		if (ret_fd)
			*ret_fd = -1;
		for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
			int fd;

			if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
				continue;
			memcpy(&fd, CMSG_DATA(c), sizeof(fd));
			if (ret_fd)
				*ret_fd = fd;
			else
				close(fd);
		}
		if (m->h.type != MIG_EV_EXIT)
			return 0;
		cr_note(r, "%s namespace: pid %d reaped (status 0x%x)", ns->name, m->h.pid,
			m->h.arg);
		if (ns->nr_exits < MIG_MAX_EXITS) {
			ns->exits[ns->nr_exits].pid = m->h.pid;
			ns->exits[ns->nr_exits].status = m->h.arg;
			ns->nr_exits++;
		}
		if (want_exit)
			return 0;
	}
}

/* Sends a request and waits (bounded) for its reply (type want). */
static int mig_ns_call(struct cr_run *r, struct mig_ns *ns, const void *req, size_t len,
		       union mig_any_msg *rep, int want, int *ret_fd)
{
	int ret;

	if (ns->sk < 0)
		return cr_fail(r, "%s namespace: no init", ns->name);
	if (send(ns->sk, req, len, MSG_NOSIGNAL) < 0)
		return cr_fail(r, "%s namespace: request: %s", ns->name, strerror(errno));
	ret = mig_ns_recv(r, ns, rep, ret_fd, mig_now_ms() + MIG_REPLY_MS, false);
	if (ret == -ETIMEDOUT)
		return cr_fail(r, "%s namespace: no reply from its init within %d ms", ns->name,
			       MIG_REPLY_MS);
	if (ret)
		return ret;
	if (rep->h.type != want)
		return cr_fail(r, "%s namespace: reply of type %d, wanted %d", ns->name,
			       rep->h.type, want);
	return 0;
}

int mig_ns_spawn(struct cr_run *r, struct mig_ns *ns, const char *tag, const char *fault,
		 const char *const args[], pid_t *ret_pid, int *ret_pidfd)
{
	static struct mig_spawn_msg req;
	static union mig_any_msg rep;
	char cmd[1024] = "";
	int fd = -1;

	memset(&req, 0, sizeof(req));
	req.h.type = MIG_REQ_SPAWN;
	snprintf(req.tag, sizeof(req.tag), "%s", tag);
	snprintf(req.fault, sizeof(req.fault), "%s", fault ? fault : "");
	for (int i = 0; args[i] && req.argc < MIG_MAX_ARGS; i++) {
		snprintf(req.argv[req.argc++], MIG_ARG_LEN, "%s", args[i]);
		snprintf(cmd + strlen(cmd), sizeof(cmd) - strlen(cmd), " %s", args[i]);
	}
	cr_note(r, "run in the %s namespace: %s%s%sckpt%s", ns->name, fault ? "CKPT_FAULT=" : "",
		fault ? fault : "", fault ? " " : "", cmd);
	if (mig_ns_call(r, ns, &req, sizeof(req), &rep, MIG_REP, &fd))
		return -1;
	if (rep.h.err) {
		if (fd >= 0)
			close(fd);
		return cr_fail(r, "%s namespace: cannot start ckpt %s: %s", ns->name, tag,
			       strerror(-rep.h.err));
	}
	cr_note(r, "ckpt %s: pid %d in the %s namespace", tag, rep.h.pid, ns->name);
	*ret_pid = rep.h.pid;
	if (ret_pidfd)
		*ret_pidfd = fd;
	else if (fd >= 0)
		close(fd);
	return 0;
}

int mig_ns_kill(struct cr_run *r, struct mig_ns *ns, pid_t pid, int sig)
{
	struct mig_msg req = { .type = MIG_REQ_KILL, .pid = pid, .arg = sig };
	static union mig_any_msg rep;

	cr_note(r, "%s namespace: signal %d to pid %d", ns->name, sig, pid);
	if (mig_ns_call(r, ns, &req, sizeof(req), &rep, MIG_REP, NULL))
		return -EIO;
	return rep.h.err;
}

int mig_ns_wait(struct cr_run *r, struct mig_ns *ns, pid_t pid, long timeout_ms, int *ret_status)
{
	long deadline = mig_now_ms() + timeout_ms;
	static union mig_any_msg m;

	for (;;) {
		int ret;

		for (int i = 0; i < ns->nr_exits; i++) {
			if (ns->exits[i].pid != pid)
				continue;
			*ret_status = ns->exits[i].status;
			/* Taken: a later process with this PID is another one. */
			ns->exits[i] = ns->exits[--ns->nr_exits];
			return 0;
		}
		ret = mig_ns_recv(r, ns, &m, NULL, deadline, true);
		if (ret == -ETIMEDOUT)
			return cr_fail(r, "%s namespace: pid %d did not exit within %ld ms",
				       ns->name, pid, timeout_ms);
		if (ret)
			return ret;
		if (m.h.type != MIG_EV_EXIT)
			cr_note(r, "%s namespace: unexpected message %d", ns->name, m.h.type);
	}
}

int mig_ns_tasks(struct cr_run *r, struct mig_ns *ns, struct mig_task *tasks, int max)
{
	struct mig_msg req = { .type = MIG_REQ_TASKS };
	static union mig_any_msg rep;
	int n;

	if (mig_ns_call(r, ns, &req, sizeof(req), &rep, MIG_REP_TASKS, NULL))
		return -1;
	if (rep.h.err)
		return cr_fail(r, "%s namespace: cannot list its processes: %s", ns->name,
			       strerror(-rep.h.err));
	n = rep.tasks.nr < max ? rep.tasks.nr : max;
	memcpy(tasks, rep.tasks.tasks, n * sizeof(*tasks));
	return n;
}

int mig_ns_wait_empty(struct cr_run *r, struct mig_ns *ns, long timeout_ms, const char *why)
{
	long deadline = mig_now_ms() + timeout_ms;
	struct mig_task tasks[MIG_MAX_TASKS];

	for (;;) {
		char list[512] = "";
		int n = mig_ns_tasks(r, ns, tasks, MIG_MAX_TASKS);

		if (n < 0)
			return -1;
		if (!n) {
			cr_note(r, "%s namespace: empty (%s)", ns->name, why);
			return 0;
		}
		if (mig_now_ms() > deadline) {
			for (int i = 0; i < n; i++)
				snprintf(list + strlen(list), sizeof(list) - strlen(list),
					 " %d (%s)", tasks[i].pid, tasks[i].comm);
			return cr_fail(r, "%s, but the %s namespace still holds%s", why, ns->name,
				       list);
		}
		/* Exits there are reported, but not the end of a process that is not ours. */
		(void)poll(NULL, 0, 5);
	}
}

void mig_ns_stop(struct cr_run *r, struct mig_ns *ns)
{
	struct mig_task tasks[MIG_MAX_TASKS];
	int status;

	if (ns->sk >= 0) {
		int n = mig_ns_tasks(r, ns, tasks, MIG_MAX_TASKS);

		/* A trackd detaches its programs on SIGTERM; SIGKILL would only drop them. */
		for (int i = 0; i < n; i++) {
			if (strcmp(tasks[i].comm, "trackd"))
				continue;
			cr_note(r, "%s namespace: trackd %d left, stopping it", ns->name,
				tasks[i].pid);
			if (!mig_ns_kill(r, ns, tasks[i].pid, SIGTERM))
				(void)mig_ns_wait(r, ns, tasks[i].pid, 5000, &status);
		}
		close(ns->sk);
		ns->sk = -1;
	}
	if (ns->init > 0) {
		int pidfd = syscall(SYS_pidfd_open, ns->init, 0);
		struct pollfd p = { .fd = pidfd, .events = POLLIN };

		if (pidfd < 0 || poll(&p, 1, 5000) <= 0) {
			cr_note(r, "%s namespace: init %d does not exit, killing it", ns->name,
				ns->init);
			kill(ns->init, SIGKILL);
		}
		if (pidfd >= 0)
			close(pidfd);
		(void)waitpid(ns->init, &status, 0);
		cr_note(r, "%s namespace: init %d ended", ns->name, ns->init);
		ns->init = 0;
	}
}

/* ---------------------------------------------------------------- output, tasks */

/* The first line of text that starts with prefix into line (if not NULL); whether found. */
static bool mig_find_line(const char *text, const char *prefix, char *line, size_t size)
{
	size_t plen = strlen(prefix);

	for (const char *p = text; *p;) {
		size_t len = strcspn(p, "\n");

		/* Only whole lines: the writer may be in the middle of one. */
		if (p[len] == '\n' && len >= plen && !strncmp(p, prefix, plen)) {
			if (line)
				snprintf(line, size, "%.*s", (int)len, p);
			return true;
		}
		p += len + (p[len] == '\n');
	}
	return false;
}

static bool mig_out_has(struct cr_run *r, const char *tag, const char *prefix, char *line,
			size_t size)
{
	static char text[65536];
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s.out", r->env->dir, tag);
	if (cr_read_file(path, text, sizeof(text)) <= 0)
		return false;
	return mig_find_line(text, prefix, line, size);
}

bool mig_has_line(struct cr_run *r, const char *tag, const char *prefix)
{
	return mig_out_has(r, tag, prefix, NULL, 0);
}

int mig_wait_line(struct cr_run *r, const char *tag, const char *prefix, int pidfd,
		  long timeout_ms, char *line, size_t size)
{
	long deadline = mig_now_ms() + timeout_ms;
	int ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK), ret = 0;
	bool exited = false;

	/* The directory: the file may not exist yet. */
	if (ifd < 0 || inotify_add_watch(ifd, r->env->dir, IN_MODIFY | IN_CREATE) < 0) {
		ret = cr_fail(r, "inotify on '%s': %s", r->env->dir, strerror(errno));
		goto out;
	}
	for (;;) {
		struct pollfd p[2] = { { .fd = ifd, .events = POLLIN },
				       { .fd = pidfd, .events = POLLIN } };
		char ev[4096];
		long left;

		if (mig_out_has(r, tag, prefix, line, size)) {
			cr_note(r, "ckpt %s said '%s'", tag, prefix);
			break;
		}
		left = deadline - mig_now_ms();
		if (exited || left <= 0) {
			ret = cr_fail(r, "no line '%s' from ckpt %s %s", prefix, tag,
				      exited ? "before it exited" : "in time");
			break;
		}
		if (poll(p, pidfd >= 0 ? 2 : 1, left) < 0 && errno != EINTR) {
			ret = cr_fail(r, "poll: %s", strerror(errno));
			break;
		}
		while (read(ifd, ev, sizeof(ev)) > 0)
			;
		exited = pidfd >= 0 && p[1].revents;
	}
out:
	if (ifd >= 0)
		close(ifd);
	return ret;
}

int mig_tree_traced(pid_t root, pid_t tracer)
{
	pid_t pids[CR_MAX_TASKS];
	int n = cr_tree(root, pids, CR_MAX_TASKS), traced = 0;

	for (int i = 0; i < n; i++) {
		char path[64];
		struct dirent *de;
		DIR *d;

		snprintf(path, sizeof(path), "/proc/%d/task", pids[i]);
		d = opendir(path);
		if (!d)
			continue;
		while ((de = readdir(d))) {
			char spath[300], status[4096], v[32];
			pid_t t;

			if (de->d_name[0] == '.')
				continue;
			snprintf(spath, sizeof(spath), "/proc/%d/task/%s/status", pids[i],
				 de->d_name);
			if (cr_read_file(spath, status, sizeof(status)) <= 0 ||
			    cr_status_field(status, "TracerPid", v, sizeof(v)))
				continue;
			t = atoi(v);
			if (t && (!tracer || t == tracer))
				traced++;
		}
		closedir(d);
	}
	return traced;
}

int mig_wait_stopped(struct cr_run *r, pid_t pid, const char *what)
{
	long deadline = mig_now_ms() + 5000;
	char path[64], status[4096], v[64] = "?";

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	while (mig_now_ms() < deadline) {
		if (cr_read_file(path, status, sizeof(status)) <= 0)
			return cr_fail(r, "%s %d is gone", what, pid);
		if (!cr_status_field(status, "State", v, sizeof(v)) && v[0] == 'T')
			return 0;
		/* Nothing tells a third process that a stop took effect: poll, bounded. */
		(void)poll(NULL, 0, 1);
	}
	return cr_fail(r, "%s %d not stopped within 5 s (State: %s)", what, pid, v);
}

int mig_trackd_children(pid_t *pids, int max)
{
	pid_t all[256];
	int n = th_children(all, 256), k = 0;

	for (int i = 0; i < n && k < max; i++) {
		char path[64], comm[32];

		snprintf(path, sizeof(path), "/proc/%d/comm", all[i]);
		if (cr_read_file(path, comm, sizeof(comm)) > 0 && !strcmp(comm, "trackd\n"))
			pids[k++] = all[i];
	}
	return k;
}

int mig_trackd_stop_children(struct cr_run *r)
{
	pid_t pids[16];
	int n = mig_trackd_children(pids, 16);

	for (int i = 0; i < n; i++) {
		int pidfd = syscall(SYS_pidfd_open, pids[i], 0);
		struct pollfd p = { .fd = pidfd, .events = POLLIN };

		cr_note(r, "trackd %d: SIGTERM", pids[i]);
		kill(pids[i], SIGTERM);
		if (pidfd < 0 || poll(&p, 1, 5000) <= 0) {
			cr_note(r, "trackd %d did not exit on SIGTERM, killing it", pids[i]);
			kill(pids[i], SIGKILL);
		}
		if (pidfd >= 0)
			close(pidfd);
		(void)waitpid(pids[i], NULL, 0);
	}
	return n;
}

int mig_wait_children_only(struct cr_run *r, const pid_t *keep, int nr, long timeout_ms,
			   const char *why)
{
	long deadline = mig_now_ms() + timeout_ms;

	for (;;) {
		pid_t pids[64];
		char list[512] = "";
		int n, other = 0;

		while (waitpid(-1, NULL, WNOHANG | __WALL) > 0)
			;
		n = th_children(pids, 64);
		for (int i = 0; i < n; i++) {
			bool kept = false;
			char path[64], comm[32] = "?";

			for (int k = 0; k < nr; k++)
				kept |= pids[i] == keep[k];
			if (kept)
				continue;
			other++;
			snprintf(path, sizeof(path), "/proc/%d/comm", pids[i]);
			if (cr_read_file(path, comm, sizeof(comm)) > 0)
				comm[strcspn(comm, "\n")] = 0;
			snprintf(list + strlen(list), sizeof(list) - strlen(list), " %d (%s)",
				 pids[i], comm);
		}
		if (!other)
			return 0;
		if (mig_now_ms() > deadline)
			return cr_fail(r, "%s, but the runner still has%s", why, list);
		/* A dying process becomes a zombie without telling the runner's poll. */
		(void)poll(NULL, 0, 5);
	}
}
