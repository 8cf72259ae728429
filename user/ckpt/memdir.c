// SPDX-License-Identifier: MIT
/* A private directory in RAM: see memdir.h. */
#define LOG_PREFIX "memdir: "
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysinfo.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "memdir.h"

/* Where the helper mounts the tmpfs: the first directory that exists (in its copy of the tree). */
static const char *const mount_points[] = { "/tmp", "/mnt", "/run", "/var/tmp", "/srv" };
#define NR_MOUNT_POINTS (sizeof(mount_points) / sizeof(mount_points[0]))

/* What the helper reports: 0 and the mount point's index, or the step that failed and errno. */
struct memdir_status {
	int err;
	int step;		/* index into steps[] on error, mount point index on success */
};

static const char *const steps[] = {
	"set its parent-death signal", "unshare its mount namespace",
	"make its mounts private", "mount the tmpfs", "find a mount point",
};

static void helper_report(int sk, int err, int step)
{
	struct memdir_status st = { .err = err, .step = step };

	(void)!write(sk, &st, sizeof(st));
}

/* The helper: it holds the mount namespace until its owner closes sk or dies. */
static void __attribute__((noreturn)) helper_main(int sk, pid_t owner, uint64_t size)
{
	static const int quiet[] = { SIGINT, SIGQUIT, SIGHUP, SIGTERM, SIGTSTP, SIGTTIN, SIGTTOU };
	char opts[64];
	int step = 0, err = 0;
	char c;

	/* Its owner decides when it ends: a Ctrl-C for the owner is not for it. */
	for (size_t i = 0; i < sizeof(quiet) / sizeof(quiet[0]); i++)
		signal(quiet[i], SIG_IGN);
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		goto fail;
	/* The owner may have died before the line above: then nobody would kill us. */
	if (getppid() != owner)
		_exit(1);
	/* No fd of the owner's (a connection, a listening socket) lives on in here. */
	if (sk != 3) {
		if (dup2(sk, 3) < 0)
			goto fail;
		sk = 3;
	}
	(void)close_range(4, ~0u, 0);
	(void)close_range(0, 2, 0);
	step = 1;
	if (unshare(CLONE_NEWNS) < 0)
		goto fail;
	/* Nothing mounted here propagates back to the owner's namespace. */
	step = 2;
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		goto fail;
	step = 4;
	size_t mp = 0;
	for (; mp < NR_MOUNT_POINTS; mp++) {
		struct stat st;
		if (!lstat(mount_points[mp], &st) && S_ISDIR(st.st_mode))
			break;
	}
	if (mp == NR_MOUNT_POINTS) {
		errno = ENOENT;
		goto fail;
	}
	step = 3;
	snprintf(opts, sizeof(opts), "size=%llu,mode=0700", (unsigned long long)size);
	if (mount("ckpt-memdir", mount_points[mp], "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		  opts) < 0)
		goto fail;
	helper_report(sk, 0, mp);
	/* EOF: the owner closed its end or died (and PDEATHSIG comes too). */
	while (read(sk, &c, 1) < 0 && errno == EINTR)
		;
	_exit(0);
fail:
	err = errno;
	helper_report(sk, err, step);
	_exit(1);
}

static void reap(pid_t pid)
{
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

int memdir_open(uint64_t size, struct memdir *ret)
{
	struct memdir m = { .sk = -1, .dirfd = -1 };
	struct memdir_status st;
	pid_t owner = getpid();
	int sks[2], err;
	ssize_t n;

	if (!size) {
		struct sysinfo si;
		if (sysinfo(&si) < 0) {
			err = -errno;
			pr_perror("cannot read the size of RAM");
			return err;
		}
		size = (uint64_t)si.totalram * si.mem_unit / 2;
	}
	m.size = size;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sks) < 0) {
		err = -errno;
		pr_perror("cannot create a socket pair");
		return err;
	}
	m.pid = fork();
	if (m.pid < 0) {
		err = -errno;
		pr_perror("cannot fork the memdir helper");
		close(sks[0]);
		close(sks[1]);
		return err;
	}
	if (!m.pid) {
		close(sks[0]);
		helper_main(sks[1], owner, size);
	}
	close(sks[1]);
	m.sk = sks[0];
	do
		n = read(m.sk, &st, sizeof(st));
	while (n < 0 && errno == EINTR);
	if (n != sizeof(st)) {
		pr_err("the memdir helper %d died before it said how it went", m.pid);
		err = -ECHILD;
		goto err_helper;
	}
	if (st.err) {
		err = -st.err;
		pr_errno(err, "the memdir helper %d could not %s", m.pid,
			 st.step >= 0 && st.step < (int)(sizeof(steps) / sizeof(steps[0])) ?
				 steps[st.step] : "start");
		goto err_helper;
	}
	if (st.step < 0 || st.step >= (int)NR_MOUNT_POINTS) {
		pr_err("the memdir helper %d reported mount point %d", m.pid, st.step);
		err = -EPROTO;
		goto err_helper;
	}
	snprintf(m.path, sizeof(m.path), "/proc/%d/root%s", m.pid, mount_points[st.step]);
	m.dirfd = open(m.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (m.dirfd < 0) {
		err = -errno;
		pr_perror("cannot open the memdir '%s'", m.path);
		goto err_helper;
	}
	pr_debug("tmpfs of %llu MiB at '%s'", (unsigned long long)(size >> 20), m.path);
	*ret = m;
	return 0;
err_helper:
	kill(m.pid, SIGKILL);
	close(m.sk);
	reap(m.pid);
	return err;
}

void memdir_close(struct memdir *m)
{
	if (!m)
		return;
	if (m->dirfd >= 0)
		close(m->dirfd);
	m->dirfd = -1;
	if (m->sk >= 0)
		close(m->sk);
	m->sk = -1;
	if (m->pid > 0) {
		/* Closing the line ends it; the kill makes sure of it. */
		kill(m->pid, SIGKILL);
		reap(m->pid);
	}
	m->pid = 0;
}

uint64_t memdir_free_bytes(const struct memdir *m)
{
	struct statvfs sv;

	if (fstatvfs(m->dirfd, &sv) < 0)
		return 0;
	return (uint64_t)sv.f_bavail * sv.f_frsize;
}
