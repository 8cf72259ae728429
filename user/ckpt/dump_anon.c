// SPDX-License-Identifier: MIT
/*
 * Files on anonymous inodes: eventfd, signalfd, timerfd, epoll and inotify,
 * read from /proc/PID/fdinfo (and a timerfd through ckpt's own copy of it).
 * Every other anon_inode kind is refused naming the task, fd and kind.
 */
#define LOG_PREFIX "files: "
#include <fcntl.h>
#include <linux/kcmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "dump.h"
#include "log.h"

/* What inotify_mark_user_mask() shows (fs/notify/inotify/inotify.h, INOTIFY_USER_MASK). */
#define ANON_INOTIFY_MASK (IN_ALL_EVENTS | IN_EXCL_UNLINK | IN_ONESHOT)

/* A kernel-internal dev_t (MAJOR << 20 | MINOR), as fdinfo prints sdev, for userspace. */
static dev_t kdev_to_dev(unsigned long kdev)
{
	return makedev(kdev >> 20, kdev & 0xfffff);
}

/* /proc/PID/fdinfo/FD whole, however long (an epoll or inotify set can be). */
static char *read_fdinfo(pid_t pid, int fd)
{
	char name[32];
	size_t len = 4096;

	snprintf(name, sizeof(name), "fdinfo/%d", fd);
	for (;;) {
		char *buf = malloc(len);
		ssize_t n;
		if (!buf)
			return NULL;
		n = proc_read_file(pid, name, buf, len);
		if (n < 0) {
			free(buf);
			errno = -n;
			return NULL;
		}
		if ((size_t)n < len - 1)
			return buf;
		free(buf);
		len *= 4;
	}
}

/* sscanf of the text after "key" in an fdinfo; true if every conversion matched. */
static bool fdinfo_scan(const char *buf, const char *key, const char *fmt, int nr, ...)
{
	const char *p = strstr(buf, key);
	va_list ap;
	int got;

	if (!p)
		return false;
	va_start(ap, nr);
	got = vsscanf(p + strlen(key), fmt, ap);
	va_end(ap);
	return got == nr;
}

static int dump_eventfd(pid_t pid, int fd, const char *fi, FileEntry *e)
{
	unsigned long long cnt;
	int sem;

	/* fs/eventfd.c eventfd_show_fdinfo(): the count in hex; the semaphore flag since 6.5. */
	if (!fdinfo_scan(fi, "eventfd-count:", "%llx", 1, &cnt) ||
	    !fdinfo_scan(fi, "eventfd-semaphore:", "%d", 1, &sem)) {
		pr_err("fd %d of %d: the eventfd's fdinfo lacks eventfd-count or eventfd-semaphore (kernel older than 6.5?)",
		       fd, pid);
		return -EOPNOTSUPP;
	}
	e->eventfd = malloc(sizeof(*e->eventfd));
	if (!e->eventfd)
		return -ENOMEM;
	eventfd_entry__init(e->eventfd);
	e->kind = FILE_KIND__FILE_EVENTFD;
	e->eventfd->counter = cnt;
	e->eventfd->semaphore = sem;
	return 0;
}

static int dump_signalfd(pid_t pid, int fd, const char *fi, FileEntry *e)
{
	unsigned long long mask;

	if (!fdinfo_scan(fi, "sigmask:", "%llx", 1, &mask)) {
		pr_err("fd %d of %d: no sigmask in the signalfd's fdinfo", fd, pid);
		return -EIO;
	}
	e->signalfd = malloc(sizeof(*e->signalfd));
	if (!e->signalfd)
		return -ENOMEM;
	signalfd_entry__init(e->signalfd);
	e->kind = FILE_KIND__FILE_SIGNALFD;
	e->signalfd->sigmask = mask;
	return 0;
}

static uint64_t ts_ns(unsigned long long sec, unsigned long long nsec)
{
	return sec * 1000000000ull + nsec;
}

/*
 * A periodic timerfd that expired is not re-armed until someone reads or
 * queries it (fs/timerfd.c: timerfd_read()/do_timerfd_gettime() call
 * hrtimer_forward_now() and add the missed periods to ctx->ticks), so its
 * fdinfo shows an it_value of 0 and too few ticks. timerfd_gettime() on
 * ckpt's copy of the file does that catching up without consuming any
 * tick; the fdinfo read right after it is exact unless the timer expired
 * again in between (armed, it_value 0): then once more.
 */
static int dump_timerfd(pid_t pid, int fd, FileEntry *e)
{
	unsigned long long vs, vns, is, ins, ticks;
	unsigned clockid, flags;
	int tfd, err = 0, tries;
	struct timespec now;
	char *fi = NULL;

	tfd = dump_files_getfd(pid, fd);
	if (tfd < 0) {
		pr_errno(tfd, "cannot get timerfd %d of %d", fd, pid);
		return tfd;
	}
	for (tries = 0; tries < 100; tries++) {
		struct itimerspec its;
		if (timerfd_gettime(tfd, &its) < 0) {
			err = -errno;
			pr_perror("cannot read timerfd %d of %d", fd, pid);
			goto out;
		}
		free(fi);
		fi = read_fdinfo(pid, fd);
		if (!fi || !fdinfo_scan(fi, "clockid:", "%u", 1, &clockid) ||
		    !fdinfo_scan(fi, "ticks:", "%llu", 1, &ticks) ||
		    !fdinfo_scan(fi, "settime flags:", "%o", 1, &flags) ||
		    !fdinfo_scan(fi, "it_value:", " (%llu, %llu)", 2, &vs, &vns) ||
		    !fdinfo_scan(fi, "it_interval:", " (%llu, %llu)", 2, &is, &ins)) {
			err = fi ? -EIO : -errno;
			pr_errno(err, "cannot parse the fdinfo of timerfd %d of %d", fd, pid);
			goto out;
		}
		if (vs || vns || !(is || ins))
			break;
	}
	if (clock_gettime(clockid, &now) < 0) {
		err = -errno;
		pr_perror("fd %d of %d: cannot read clock %u of the timerfd", fd, pid, clockid);
		goto out;
	}
	e->timerfd = malloc(sizeof(*e->timerfd));
	if (!e->timerfd) {
		err = -ENOMEM;
		goto out;
	}
	timerfd_entry__init(e->timerfd);
	e->kind = FILE_KIND__FILE_TIMERFD;
	e->timerfd->clockid = clockid;
	e->timerfd->flags = flags;
	e->timerfd->value_ns = ts_ns(vs, vns);
	e->timerfd->interval_ns = ts_ns(is, ins);
	/* Still 0 after the retries: armed and due right now. */
	if (!e->timerfd->value_ns && e->timerfd->interval_ns)
		e->timerfd->value_ns = 1;
	e->timerfd->ticks = ticks;
	if ((flags & TFD_TIMER_ABSTIME) && e->timerfd->value_ns) {
		e->timerfd->has_expires_ns = true;
		e->timerfd->expires_ns = ts_ns(now.tv_sec, now.tv_nsec) + e->timerfd->value_ns;
	}
	pr_debug("fd %d of %d: timerfd clock %u value %llu interval %llu ticks %llu", fd, pid,
		 clockid, (unsigned long long)e->timerfd->value_ns,
		 (unsigned long long)e->timerfd->interval_ns, ticks);
out:
	free(fi);
	close(tfd);
	return err;
}

/* Targets are found once every fd is known: dump_anon_resolve(). */
static int dump_epoll(pid_t pid, int fd, const char *fi, FileEntry *e)
{
	EpollEntry *ep;
	const char *p;

	ep = calloc(1, sizeof(*ep));
	if (!ep)
		return -ENOMEM;
	epoll_entry__init(ep);
	e->kind = FILE_KIND__FILE_EPOLL;
	e->epoll = ep;
	/* fs/eventpoll.c ep_show_fdinfo(): one line per registration, in the kernel's rbtree order. */
	for (p = fi; (p = strstr(p, "tfd:")); p++) {
		unsigned long long data, ino;
		unsigned events, sdev;
		int tfd;
		if (sscanf(p, "tfd: %d events: %x data: %llx pos:%*d ino:%llx sdev:%x", &tfd, &events,
			   &data, &ino, &sdev) != 5 || tfd < 0) {
			pr_err("fd %d of %d: cannot parse the epoll line '%.60s'", fd, pid, p);
			return -EIO;
		}
		EpollTfdEntry **nt = realloc(ep->tfd, (ep->n_tfd + 1) * sizeof(*nt));
		if (!nt)
			return -ENOMEM;
		ep->tfd = nt;
		EpollTfdEntry *t = malloc(sizeof(*t));
		if (!t)
			return -ENOMEM;
		epoll_tfd_entry__init(t);
		t->tfd = tfd;
		t->events = events;
		t->data = data;
		t->has_ino = t->has_dev = true;
		t->ino = ino;
		t->dev = kdev_to_dev(sdev);
		ep->tfd[ep->n_tfd++] = t;
	}
	return 0;
}

/*
 * Mounts of the file system dev in ckpt's mount namespace, whole ones
 * first; opened for reading, as open_by_handle_at() takes no O_PATH fd.
 */
static int open_mounts(dev_t dev, int *fds, int max)
{
	char line[4096];
	int n = 0;
	FILE *f = fopen("/proc/self/mountinfo", "re");

	if (!f)
		return -errno;
	for (int pass = 0; pass < 2; pass++) {
		rewind(f);
		while (n < max && fgets(line, sizeof(line), f)) {
			unsigned maj, min;
			char root[PATH_MAX], mnt[PATH_MAX];
			if (sscanf(line, "%*d %*d %u:%u %4095s %4095s", &maj, &min, root, mnt) != 4 ||
			    makedev(maj, min) != dev || (strcmp(root, "/") == 0) != (pass == 0))
				continue;
			int mfd = open(mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (mfd >= 0)
				fds[n++] = mfd;
		}
	}
	fclose(f);
	return n;
}

/* The path of the inode a watch is on, through its file handle (needs CAP_DAC_READ_SEARCH). */
static int watch_path(pid_t pid, int fd, InotifyWdEntry *w, unsigned type, const char *hex,
		      unsigned bytes)
{
	struct file_handle *fh;
	int mfds[16], nm, err = -ENOENT;

	if (bytes > MAX_HANDLE_SZ || strlen(hex) < bytes * 2) {
		pr_err("fd %d of %d: inotify watch %u has a bad file handle", fd, pid, w->wd);
		return -EIO;
	}
	fh = malloc(sizeof(*fh) + bytes);
	if (!fh)
		return -ENOMEM;
	fh->handle_bytes = bytes;
	fh->handle_type = type;
	for (unsigned i = 0; i < bytes; i++)
		sscanf(hex + 2 * i, "%2hhx", &fh->f_handle[i]);
	nm = open_mounts(w->dev, mfds, 16);
	for (int i = 0; i < nm; i++) {
		char proc[64], path[PATH_MAX];
		struct stat st;
		int ifd = open_by_handle_at(mfds[i], fh, O_PATH | O_CLOEXEC);
		ssize_t n;
		if (ifd < 0) {
			err = -errno;
			continue;
		}
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", ifd);
		n = readlink(proc, path, sizeof(path) - 1);
		close(ifd);
		if (n <= 0)
			continue;
		path[n] = 0;
		if (path[0] == '/' && stat(path, &st) == 0 && st.st_ino == w->ino &&
		    st.st_dev == w->dev) {
			w->path = strdup(path);
			err = w->path ? 0 : -ENOMEM;
			break;
		}
	}
	for (int i = 0; i < nm; i++)
		close(mfds[i]);
	free(fh);
	if (err)
		pr_errno(err, "fd %d of %d: inotify watch %u is on inode %llu that has no path from here (deleted, or another mount namespace?); not supported",
			 fd, pid, w->wd, (unsigned long long)w->ino);
	return err;
}

static int wd_cmp(const void *a, const void *b)
{
	const InotifyWdEntry *x = *(InotifyWdEntry *const *)a, *y = *(InotifyWdEntry *const *)b;

	return x->wd < y->wd ? -1 : x->wd > y->wd;
}

static int dump_inotify(pid_t pid, int fd, const char *fi, FileEntry *e)
{
	InotifyEntry *in;
	const char *p;
	int err;

	in = calloc(1, sizeof(*in));
	if (!in)
		return -ENOMEM;
	inotify_entry__init(in);
	e->kind = FILE_KIND__FILE_INOTIFY;
	e->inotify = in;
	/* fs/notify/fdinfo.c inotify_fdinfo(): every number is hex. */
	for (p = fi; (p = strstr(p, "inotify wd:")); p++) {
		unsigned wd, sdev, mask, ign, bytes, type;
		unsigned long long ino;
		char hex[2 * 128 + 1];
		if (sscanf(p, "inotify wd:%x ino:%llx sdev:%x mask:%x ignored_mask:%x fhandle-bytes:%x fhandle-type:%x f_handle:%256s",
			   &wd, &ino, &sdev, &mask, &ign, &bytes, &type, hex) != 8) {
			pr_err("fd %d of %d: cannot parse the inotify line '%.60s' (no file handle: a file system that cannot export one?)",
			       fd, pid, p);
			return -EOPNOTSUPP;
		}
		InotifyWdEntry **nw = realloc(in->wd, (in->n_wd + 1) * sizeof(*nw));
		if (!nw)
			return -ENOMEM;
		in->wd = nw;
		InotifyWdEntry *w = calloc(1, sizeof(*w));
		if (!w)
			return -ENOMEM;
		inotify_wd_entry__init(w);
		in->wd[in->n_wd++] = w;
		w->wd = wd;
		w->mask = mask & ANON_INOTIFY_MASK;
		w->ino = ino;
		w->dev = kdev_to_dev(sdev);
		w->path = NULL;
		err = watch_path(pid, fd, w, type, hex, bytes);
		if (err)
			return err;
	}
	qsort(in->wd, in->n_wd, sizeof(*in->wd), wd_cmp);
	return 0;
}

int dump_anon_file(pid_t pid, int fd, const char *link, FileEntry *e)
{
	const char *kind = link + strlen("anon_inode:");
	char *fi;
	int err;

	if (!strcmp(kind, "[timerfd]"))
		return dump_timerfd(pid, fd, e);
	if (strcmp(kind, "[eventfd]") && strcmp(kind, "[signalfd]") && strcmp(kind, "[eventpoll]") &&
	    strcmp(kind, "inotify")) {
		pr_err("fd %d of %d is '%s', a file kind not supported yet", fd, pid, link);
		return -EOPNOTSUPP;
	}
	fi = read_fdinfo(pid, fd);
	if (!fi) {
		err = -errno;
		pr_perror("cannot read fdinfo %d of %d", fd, pid);
		return err;
	}
	if (!strcmp(kind, "[eventfd]"))
		err = dump_eventfd(pid, fd, fi, e);
	else if (!strcmp(kind, "[signalfd]"))
		err = dump_signalfd(pid, fd, fi, e);
	else if (!strcmp(kind, "[eventpoll]"))
		err = dump_epoll(pid, fd, fi, e);
	else
		err = dump_inotify(pid, fd, fi, e);
	free(fi);
	return err;
}

/*
 * Which file of the dump each epoll registration watches. The kernel keys
 * a registration by (file, fd number at EPOLL_CTL_ADD); that fd may have
 * been closed or may now hold another file, so the number says nothing.
 * kcmp(KCMP_EPOLL_TFD) compares a task's fd with the file behind the
 * toff-th registration of that number (kernel/kcmp.c, CONFIG_CHECKPOINT_RESTORE),
 * and every open file description of the dump has an fd in some task.
 */
int dump_anon_resolve(struct dump_ctx *ctx, const struct dump_file_origin *origins)
{
	for (size_t i = 0; i < ctx->nr_files; i++) {
		const EpollEntry *ep = ctx->files[i]->epoll;
		if (ctx->files[i]->kind != FILE_KIND__FILE_EPOLL)
			continue;
		for (size_t k = 0; k < ep->n_tfd; k++) {
			EpollTfdEntry *t = ep->tfd[k];
			struct kcmp_epoll_slot slot = { .efd = origins[i].fd, .tfd = t->tfd };
			bool found = false;
			for (size_t j = 0; j < k; j++)
				slot.toff += ep->tfd[j]->tfd == t->tfd;
			for (size_t j = 0; j < ctx->nr_files && !found; j++) {
				const struct dump_file_origin *o = &origins[j];
				if (o->ino != t->ino || o->dev != t->dev)
					continue;
				found = syscall(SYS_kcmp, o->pid, origins[i].pid, KCMP_EPOLL_TFD, o->fd,
						(unsigned long)&slot) == 0;
				if (found)
					t->file_id = ctx->files[j]->id;
			}
			if (!found) {
				pr_err("epoll fd %d of %d watches a file added as fd %u (inode %llu) that no task of the dump has open; not supported",
				       origins[i].fd, origins[i].pid, t->tfd, (unsigned long long)t->ino);
				return -EOPNOTSUPP;
			}
		}
	}
	return 0;
}

void dump_anon_free(FileEntry *e)
{
	free(e->eventfd);
	free(e->signalfd);
	free(e->timerfd);
	if (e->epoll) {
		for (size_t i = 0; i < e->epoll->n_tfd; i++)
			free(e->epoll->tfd[i]);
		free(e->epoll->tfd);
		free(e->epoll);
	}
	if (e->inotify) {
		for (size_t i = 0; i < e->inotify->n_wd; i++) {
			free(e->inotify->wd[i]->path);
			free(e->inotify->wd[i]);
		}
		free(e->inotify->wd);
		free(e->inotify);
	}
}
