// SPDX-License-Identifier: MIT
#define LOG_PREFIX "wptrack: "
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/userfaultfd.h>

#include "dirty.h"
#include "infect.h"
#include "kcompat.h"
#include "log.h"
#include "proc.h"
#include "wptrack.h"

/* The userfaultfd the target may hold: the fd check below looks for this link. */
#define UFFD_LINK "anon_inode:[userfaultfd]"

/* Bigger MAP_NORESERVE mappings are not armed: see wptrack_skip(). */
#define WPTRACK_NORESERVE_MAX (1ull << 30)

static int wptrack_check_fds(pid_t pid)
{
	char path[64], link[64];
	struct dirent *de;
	int err = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	d = opendir(path);
	if (!d) {
		err = -errno;
		pr_perror("cannot list the fds of %d", pid);
		return err;
	}
	while ((de = readdir(d))) {
		ssize_t len;

		if (de->d_name[0] == '.')
			continue;
		/* An fd closed meanwhile is no userfaultfd. */
		len = readlinkat(dirfd(d), de->d_name, link, sizeof(link) - 1);
		if (len < 0)
			continue;
		link[len] = 0;
		if (!strcmp(link, UFFD_LINK)) {
			pr_err("process %d uses userfaultfd itself (fd %s); not tracking its writes",
			       pid, de->d_name);
			err = -EBUSY;
			break;
		}
	}
	closedir(d);
	return err;
}

/*
 * A mapping registered with a userfaultfd (VmFlags um/uw/ui) belongs to a
 * uffd that may live in another process, or to an earlier tracker of ours
 * (the kernel refuses a second uffd on a VMA with EBUSY anyway).
 */
static int wptrack_check_vmas(pid_t pid)
{
	struct proc_vma *vmas;
	size_t n;
	int err = proc_parse_maps(pid, true, &vmas, &n);

	if (err) {
		pr_errno(err, "cannot read the mappings of %d", pid);
		return err;
	}
	for (size_t i = 0; i < n; i++) {
		if (vmas[i].vmflags & (PROC_VMF_UFFD | PROC_VMF_UFFD_WP)) {
			pr_err("mapping %#llx-%#llx of process %d is registered with a userfaultfd "
			       "(its own, or another tracker's); not tracking its writes",
			       (unsigned long long)vmas[i].start, (unsigned long long)vmas[i].end, pid);
			err = -EBUSY;
			break;
		}
	}
	free(vmas);
	return err;
}

/* userfaultfd() run by the task: the uffd's mm is the caller's. Returns its fd or -errno. */
static long wptrack_remote_uffd(struct infect_task *t)
{
	long fd;
	int err = infect_syscall(t, SYS_userfaultfd, &fd, O_CLOEXEC | O_NONBLOCK, 0, 0, 0, 0, 0);

	if (err)
		return err;
	/*
	 * With vm.unprivileged_userfaultfd = 0 a task without CAP_SYS_PTRACE
	 * may only create a uffd that handles user-mode faults. Async
	 * write-protect is resolved in the fault path before any uffd
	 * handler is consulted (do_wp_page, and the marker path for holes),
	 * so kernel writes (read() into the range) are still caught: measured
	 * on 6.18, and checked by selftests/trackd/dirty_test.
	 */
	if (fd == -EPERM) {
		pr_debug("%d: userfaultfd refused, retrying with UFFD_USER_MODE_ONLY", t->pid);
		err = infect_syscall(t, SYS_userfaultfd, &fd,
				     O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY, 0, 0, 0, 0, 0);
		if (err)
			return err;
	}
	return fd;
}

/* Whether pid uses userfaultfd itself: 0, -EBUSY (logged) or -errno (logged). */
static int wptrack_check_uffd(pid_t pid)
{
	int err = wptrack_check_fds(pid);

	if (!err)
		err = wptrack_check_vmas(pid);
	return err;
}

/* The uffd of seized t once wptrack_check_uffd() passed: our copy or -errno (logged). */
static int wptrack_take(struct infect_task *t)
{
	pid_t pid = t->pid;
	int err = 0, pidfd, uffd = -1;
	long rfd, ret;

	rfd = wptrack_remote_uffd(t);
	if (rfd < 0) {
		pr_errno((int)rfd, "cannot create a userfaultfd in %d", pid);
		return (int)rfd;
	}
	pidfd = syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0) {
		err = -errno;
		pr_perror("cannot open a pidfd for %d", pid);
	} else {
		/* pidfd_getfd sets FD_CLOEXEC on our copy. */
		uffd = syscall(SYS_pidfd_getfd, pidfd, (int)rfd, 0);
		if (uffd < 0) {
			err = -errno;
			pr_perror("cannot take fd %ld of %d", rfd, pid);
		}
		close(pidfd);
	}
	/* The task's copy goes whatever happened: a uffd in its table would be part of its state. */
	if (infect_syscall(t, SYS_close, &ret, rfd, 0, 0, 0, 0, 0) || ret) {
		pr_err("cannot close the userfaultfd %ld created in %d", rfd, pid);
		if (!err)
			err = -EIO;
	}
	if (err)
		goto err_close;

	err = dirty_uffd_api(uffd);
	if (err == -EOPNOTSUPP) {
		pr_err("cannot track the writes of %d: the kernel lacks userfaultfd async "
		       "write-protect (UFFD_FEATURE_WP_ASYNC, Linux 6.7)", pid);
		goto err_close;
	}
	if (err) {
		pr_errno(err, "cannot set up the userfaultfd taken from %d", pid);
		goto err_close;
	}
	pr_debug("%d: userfaultfd taken as fd %d", pid, uffd);
	return uffd;

err_close:
	if (uffd >= 0)
		close(uffd);
	return err;
}

int wptrack_take_seized(struct infect_task *t)
{
	int err = wptrack_check_uffd(t->pid);

	return err ? err : wptrack_take(t);
}

/* The thread-group leader of pid (pid itself when it is one). */
static pid_t wptrack_tgid(pid_t pid)
{
	struct proc_status st;

	return proc_parse_status(pid, &st) || st.tgid <= 0 ? pid : st.tgid;
}

/* The state letter of thread tid (field 3 of its stat), '\0' when it is gone, or -errno. */
static int wptrack_thread_state(pid_t tid)
{
	struct proc_stat st;
	int err = proc_parse_stat(tid, &st);

	if (err == -ENOENT || err == -ESRCH)
		return 0;
	return err ? err : (unsigned char)st.state;
}

/*
 * A thread in uninterruptible sleep ('D') cannot take PTRACE_INTERRUPT's stop before it
 * wakes up: the interrupt only wakes interruptible sleeps (ptrace_trap_notify ->
 * signal_wake_up_state). A vfork parent waits for its child in TASK_KILLABLE, which reads as
 * 'D' too (wait_for_vfork_done), for as long as the child likes. Seizing such a process
 * would time out in infect_seize with the task still traced (a detach needs a stopped
 * tracee), so it is refused here: -EAGAIN (logged), 0, or -errno (logged).
 *
 * A thread may still enter such a sleep between this look and the seize, which then
 * times out as before.
 */
static int wptrack_check_threads(pid_t pid)
{
	char path[64];
	struct dirent *de;
	int err = 0, state;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	d = opendir(path);
	if (!d) {
		err = -errno;
		pr_perror("cannot list the threads of %d", pid);
		return err;
	}
	while ((de = readdir(d))) {
		pid_t tid = atoi(de->d_name);

		if (tid <= 0)
			continue;
		state = wptrack_thread_state(tid);
		if (state < 0) {
			err = state;
			pr_errno(err, "cannot read the state of thread %d of %d", tid, pid);
			break;
		}
		if (state == 'D') {
			pr_err("cannot track the writes of %d now: thread %d is in uninterruptible "
			       "sleep (vfork or I/O); try again later", pid, tid);
			err = -EAGAIN;
			break;
		}
	}
	closedir(d);
	return err;
}

/*
 * Everything that refuses a process is looked at before it is seized, so a refused one
 * is never stopped. The checks are not repeated while the leader is seized: its other
 * threads run on meanwhile, so that would not close the window. A mapping registered with
 * a uffd of its own in between makes wptrack_arm() fail with EBUSY; a uffd it creates in
 * between and registers only later is missed (its registration then fails with EBUSY).
 */
int wptrack_open(pid_t pid)
{
	struct infect_task t;
	pid_t leader = wptrack_tgid(pid);
	int err, uffd;

	err = wptrack_check_threads(leader);
	if (!err)
		err = wptrack_check_uffd(leader);
	if (err)
		return err;
	err = infect_init();
	if (err) {
		pr_errno(err, "cannot prepare to seize %d", leader);
		return err;
	}
	/* infect_seize logs, and leaves the task as it was on failure. */
	err = infect_seize(leader, &t);
	if (err)
		return err;
	uffd = wptrack_take(&t);
	err = infect_release(&t, false);
	if (err && uffd >= 0) {
		/* infect_release said why; the task is not left as we found it. */
		close(uffd);
		return err;
	}
	return uffd;
}

/*
 * Why the mapping v is not registered, or NULL. Private mappings are
 * registered whatever their protection (PROT_NONE aside): the kernel
 * accepts read-only private anonymous and file mappings (6.18), and an
 * mprotect that makes them writable then needs no new registration.
 * Shared memory is registered when it is shmem (its pages are the
 * process's state); a shared file mapping's pages are the file's.
 */
static const char *wptrack_skip(const struct proc_vma *v)
{
	const char *p = v->path;

	if (!strcmp(p, "[vdso]") || !strcmp(p, "[vvar]") || !strcmp(p, "[vvar_vclock]") ||
	    !strcmp(p, "[vsyscall]"))
		return "the kernel's vDSO area";
	/* The kernel writes completions without going through the page tables. */
	if (!strcmp(p, "/[aio] (deleted)"))
		return "an AIO ring";
	if (v->vmflags & (PROC_VMF_PFNMAP | PROC_VMF_IO))
		return "device memory";
	if (v->shared) {
		if (!strcmp(p, "/dev/zero (deleted)") || !strncmp(p, "/memfd:", 7) ||
		    !strncmp(p, "[anon_shmem:", 12) || !strncmp(p, "/SYSV", 5))
			return NULL;
		return "a shared file mapping";
	}
	/*
	 * Arming puts a uffd-wp marker into every never-touched page, page
	 * tables included (2 MiB per GiB): an address-space reservation would
	 * cost them for all of its size. PROT_NONE ones (guard pages, heap
	 * reservations) change only after an mprotect; big MAP_NORESERVE ones
	 * (sanitizer shadows, terabytes) are left out too, while glibc's
	 * MAP_NORESERVE thread arenas (64 MiB at most) are tracked.
	 * Unregistered, they read as written.
	 */
	if (!(v->prot & (PROT_READ | PROT_WRITE | PROT_EXEC)))
		return "no access (PROT_NONE)";
	if ((v->vmflags & PROC_VMF_NORESERVE) && v->end - v->start > WPTRACK_NORESERVE_MAX)
		return "a big MAP_NORESERVE reservation";
	return NULL;
}

static void wptrack_unregister(int uffd, const struct dirty_run *runs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct uffdio_range r = { .start = runs[i].start, .len = runs[i].end - runs[i].start };

		(void)ioctl(uffd, UFFDIO_UNREGISTER, &r);
	}
}

/* Register and arm the mappings wptrack_skip() takes; with only_new, those not registered yet. */
static int wptrack_arm_vmas(pid_t pid, int uffd, bool only_new, struct dirty_run **ret_armed,
			    size_t *ret_n)
{
	struct dirty_run *armed = NULL, *junk = NULL;
	size_t n, n_armed = 0, n_junk;
	struct proc_vma *vmas;
	int err;

	err = proc_parse_maps(pid, true, &vmas, &n);
	if (err) {
		pr_errno(err, "cannot read the mappings of %d", pid);
		return err;
	}
	if (n) {
		armed = malloc(n * sizeof(*armed));
		if (!armed) {
			err = -ENOMEM;
			goto err_free;
		}
	}
	for (size_t i = 0; i < n; i++) {
		const struct proc_vma *v = &vmas[i];
		const char *why = wptrack_skip(v);

		if (why) {
			pr_debug("%d: not tracking %#llx-%#llx '%s': %s", pid,
				 (unsigned long long)v->start, (unsigned long long)v->end, v->path, why);
			continue;
		}
		/* uw: registered already, by our uffd (the process has none of its own). */
		if (only_new && (v->vmflags & PROC_VMF_UFFD_WP))
			continue;
		err = dirty_register(uffd, v->start, v->end);
		if (err == -EINVAL) {
			pr_debug("%d: the kernel cannot track %#llx-%#llx '%s'; it counts as written",
				 pid, (unsigned long long)v->start, (unsigned long long)v->end, v->path);
			continue;
		}
		if (err == -EBUSY) {
			pr_err("mapping %#llx-%#llx of %d is registered with another userfaultfd",
			       (unsigned long long)v->start, (unsigned long long)v->end, pid);
			goto err_unregister;
		}
		if (err) {
			pr_errno(err, "cannot register %#llx-%#llx of %d for write tracking",
				 (unsigned long long)v->start, (unsigned long long)v->end, pid);
			goto err_unregister;
		}
		if (n_armed && armed[n_armed - 1].end == v->start) {
			armed[n_armed - 1].end = v->end;
		} else {
			armed[n_armed].start = v->start;
			armed[n_armed].end = v->end;
			n_armed++;
		}
	}
	err = dirty_scan(pid, armed, n_armed, true, &junk, &n_junk);
	if (err) {
		pr_errno(err, "cannot arm write tracking in %d", pid);
		goto err_unregister;
	}
	free(junk);
	free(vmas);
	pr_debug("%d: %zu ranges armed, %llu KiB", pid, n_armed,
		 (unsigned long long)(dirty_bytes(armed, n_armed) >> 10));
	if (!n_armed) {
		free(armed);
		armed = NULL;
	}
	*ret_armed = armed;
	*ret_n = n_armed;
	return 0;

err_unregister:
	wptrack_unregister(uffd, armed, n_armed);
err_free:
	free(armed);
	free(vmas);
	return err;
}

int wptrack_arm(pid_t pid, int uffd, struct dirty_run **ret_armed, size_t *ret_n)
{
	return wptrack_arm_vmas(pid, uffd, false, ret_armed, ret_n);
}

int wptrack_arm_new(pid_t pid, int uffd, struct dirty_run **ret_armed, size_t *ret_n)
{
	return wptrack_arm_vmas(pid, uffd, true, ret_armed, ret_n);
}
