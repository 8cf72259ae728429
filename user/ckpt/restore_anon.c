// SPDX-License-Identifier: MIT
/*
 * Files on anonymous inodes on restore: eventfd, signalfd, timerfd, epoll
 * and inotify, each created in the engine like every other file.
 */
#define LOG_PREFIX "files: "
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "image.h"
#include "log.h"
#include "restore.h"

/* fs/timerfd.c, with CONFIG_CHECKPOINT_RESTORE (uapi <linux/timerfd.h> since 5.x). */
#ifndef TFD_IOC_SET_TICKS
#define TFD_IOC_SET_TICKS _IOW('T', 0, uint64_t)
#endif

/* The kernel refuses deeper epoll nesting (fs/eventpoll.c EP_MAX_NESTS 4); more is a loop. */
#define EPOLL_MAX_DEPTH 6

static int open_eventfd(const FileEntry *e)
{
	uint64_t cnt = e->eventfd->counter;
	int fd;

	fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK | (e->eventfd->semaphore ? EFD_SEMAPHORE : 0));
	if (fd < 0)
		return -errno;
	/* eventfd() takes an int; a write adds any count up to 2^64 - 2. */
	if (cnt && write(fd, &cnt, sizeof(cnt)) != sizeof(cnt)) {
		int err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

static int open_signalfd(const FileEntry *e)
{
	sigset_t set;

	(void)sigemptyset(&set);
	for (int sig = 1; sig <= 64; sig++)
		if ((e->signalfd->sigmask >> (sig - 1)) & 1)
			(void)sigaddset(&set, sig);
	int fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);

	return fd < 0 ? -errno : fd;
}

static void ns_ts(uint64_t ns, struct timespec *ts)
{
	ts->tv_sec = ns / 1000000000ull;
	ts->tv_nsec = ns % 1000000000ull;
}

/*
 * A relative timer gets the time it had left at dump time (the time it
 * spent in the images does not count); a TFD_TIMER_ABSTIME one its
 * absolute expiration on its clock, so a wall-clock deadline stays one
 * (one that passed meanwhile fires at once, with its missed periods
 * counted as ticks by the kernel). Unread ticks are put back with
 * TFD_IOC_SET_TICKS after timerfd_settime(), which zeroes them.
 */
static int open_timerfd(const FileEntry *e)
{
	const TimerfdEntry *t = e->timerfd;
	struct itimerspec its = { 0 };
	int fd, flags = 0, err;

	fd = timerfd_create(t->clockid, TFD_CLOEXEC | TFD_NONBLOCK);
	if (fd < 0)
		return -errno;
	ns_ts(t->interval_ns, &its.it_interval);
	if ((t->flags & TFD_TIMER_ABSTIME) && t->has_expires_ns) {
		ns_ts(t->expires_ns, &its.it_value);
		flags = t->flags;
	} else {
		ns_ts(t->value_ns, &its.it_value);
	}
	if ((t->value_ns || t->has_expires_ns) && timerfd_settime(fd, flags, &its, NULL) < 0)
		goto err;
	if (t->ticks && ioctl(fd, TFD_IOC_SET_TICKS, &t->ticks) < 0)
		goto err;
	return fd;
err:
	err = -errno;
	close(fd);
	return err;
}

/*
 * Register src in ep under the fd number tfd, as the task did: the kernel
 * keys a registration by (file, fd) and the task's EPOLL_CTL_MOD/DEL name
 * that number. The engine's own fd tfd, if any, steps aside meanwhile.
 */
static int epoll_add_at(int ep, int tfd, int src, struct epoll_event *ev)
{
	int saved = -1, use = ep, fdfl = 0, err = 0;

	if (src != tfd) {
		saved = fcntl(tfd, F_DUPFD_CLOEXEC, 0);
		if (saved < 0 && errno != EBADF)
			return -errno;
		if (saved >= 0) {
			fdfl = fcntl(tfd, F_GETFD);
			if (ep == tfd)
				use = saved;
		}
		if (dup3(src, tfd, O_CLOEXEC) < 0) {
			err = -errno;
			goto out;
		}
	}
	if (epoll_ctl(use, EPOLL_CTL_ADD, tfd, ev) < 0)
		err = -errno;
	if (src == tfd)
		return err;
out:
	if (saved >= 0) {
		if (dup3(saved, tfd, fdfl & FD_CLOEXEC ? O_CLOEXEC : 0) < 0 && !err)
			err = -errno;
		close(saved);
	} else {
		close(tfd);
	}
	return err;
}

static int open_epoll(struct rst_ctx *ctx, size_t idx)
{
	static int depth;
	const EpollEntry *ep = ctx->files[idx]->epoll;
	int fd, err = 0;

	if (depth >= EPOLL_MAX_DEPTH)
		return img_bad_at("files.img", idx, "epoll.tfd.file_id",
				  "epoll files watch each other in a loop or too deeply");
	fd = epoll_create1(EPOLL_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		pr_perror("cannot create an epoll instance");
		return err;
	}
	depth++;
	for (size_t k = 0; k < ep->n_tfd && !err; k++) {
		const EpollTfdEntry *t = ep->tfd[k];
		struct epoll_event ev = { .events = t->events, .data.u64 = t->data };
		if (t->file_id >= ctx->nr_files || ctx->files[t->file_id]->id != t->file_id ||
		    t->file_id == idx) {
			err = img_bad_at("files.img", idx, "epoll.tfd.file_id", "%u is not another file",
					 t->file_id);
			break;
		}
		err = restore_files_open(ctx, t->file_id);
		if (err)
			break;
		err = epoll_add_at(fd, t->tfd, ctx->file_fds[t->file_id], &ev);
		if (err)
			pr_errno(err, "cannot add file %u as fd %u to epoll file %u", t->file_id, t->tfd,
				 ctx->files[idx]->id);
	}
	depth--;
	if (err) {
		close(fd);
		return err;
	}
	return fd;
}

/* A directory or file ckpt can watch to use up watch descriptors: not one the instance watches. */
static int placeholder(struct rst_ctx *ctx, const InotifyEntry *in, char *path, size_t len)
{
	struct stat st;

	snprintf(path, len, "/proc/self/fd/%d", ctx->dirfd);
	for (int c = 0; c < 2; c++, snprintf(path, len, "/")) {
		bool used = false;
		if (stat(path, &st) < 0)
			continue;
		for (size_t i = 0; i < in->n_wd; i++)
			used |= in->wd[i]->ino == st.st_ino && in->wd[i]->dev == st.st_dev;
		if (!used)
			return 0;
	}
	return -ENOENT;
}

/*
 * Watch descriptors keep their numbers. The kernel hands them out with
 * idr_alloc_cyclic() from 1 (fs/notify/inotify/inotify_user.c
 * inotify_add_to_idr()): each new watch gets the next number after the last
 * one given, so watches are added in wd order and each gap is used up by a
 * placeholder watch removed at once. The IN_IGNORED events those removals
 * queue are read away at the end (and with them any event that came in
 * during the restore; events queued at dump time are not kept).
 */
static int open_inotify(struct rst_ctx *ctx, size_t idx)
{
	const InotifyEntry *in = ctx->files[idx]->inotify;
	char ph[64], buf[4096];
	uint32_t next = 1;
	int fd, err = 0;

	fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (fd < 0) {
		err = -errno;
		pr_perror("cannot create an inotify instance");
		return err;
	}
	if (in->n_wd && in->wd[in->n_wd - 1]->wd > 1 && placeholder(ctx, in, ph, sizeof(ph))) {
		pr_err("inotify file %u: no directory to use up watch numbers with", ctx->files[idx]->id);
		err = -ENOENT;
		goto out;
	}
	for (size_t i = 0; i < in->n_wd && !err; i++) {
		const InotifyWdEntry *w = in->wd[i];
		struct stat st;
		int wd;
		while (next < w->wd) {
			wd = inotify_add_watch(fd, ph, IN_ATTRIB);
			if (wd < 0 || (uint32_t)wd != next || inotify_rm_watch(fd, wd) < 0) {
				err = wd < 0 ? -errno : -EEXIST;
				pr_errno(err, "inotify file %u: cannot skip watch number %u",
					 ctx->files[idx]->id, next);
				goto out;
			}
			next++;
		}
		if (stat(w->path, &st) == 0 && (st.st_ino != w->ino || st.st_dev != w->dev))
			pr_warn("inotify file %u: '%s' is another file than at dump time; watching it",
				ctx->files[idx]->id, w->path);
		wd = inotify_add_watch(fd, w->path, w->mask);
		if (wd < 0) {
			err = -errno;
			pr_perror("inotify file %u: cannot watch '%s' again", ctx->files[idx]->id, w->path);
		} else if ((uint32_t)wd != w->wd) {
			pr_err("inotify file %u: '%s' got watch %d, not %u (the same file as another watch?)",
			       ctx->files[idx]->id, w->path, wd, w->wd);
			err = -EEXIST;
		}
		next = w->wd + 1;
	}
	while (!err && read(fd, buf, sizeof(buf)) > 0)
		;
out:
	if (err) {
		close(fd);
		return err;
	}
	return fd;
}

int restore_anon_open(struct rst_ctx *ctx, size_t idx)
{
	const FileEntry *e = ctx->files[idx];
	const char *what = "";
	int fd;

	switch (e->kind) {
	case FILE_KIND__FILE_EVENTFD:
		what = "eventfd";
		fd = open_eventfd(e);
		break;
	case FILE_KIND__FILE_SIGNALFD:
		what = "signalfd";
		fd = open_signalfd(e);
		break;
	case FILE_KIND__FILE_TIMERFD:
		what = "timerfd";
		fd = open_timerfd(e);
		break;
	case FILE_KIND__FILE_EPOLL:
		fd = open_epoll(ctx, idx);
		break;
	case FILE_KIND__FILE_INOTIFY:
		fd = open_inotify(ctx, idx);
		break;
	default:
		pr_err("file %u has unknown kind %d", e->id, e->kind);
		return -EINVAL;
	}
	if (fd < 0) {
		if (*what)
			pr_errno(fd, "cannot recreate the %s of file %u", what, e->id);
		return fd;
	}
	if (fcntl(fd, F_SETFL, e->flags & O_NONBLOCK) < 0) {
		int err = -errno;
		pr_perror("cannot set the flags of file %u", e->id);
		close(fd);
		return err;
	}
	ctx->file_fds[idx] = fd;
	return 0;
}
