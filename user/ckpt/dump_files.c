// SPDX-License-Identifier: MIT
#define LOG_PREFIX "files: "
#include <dirent.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "ckpt.h"
#include "dump.h"
#include "image.h"
#include "log.h"

/* Where each FileEntry came from, to find fds sharing one open file description. */
static struct dump_file_origin *origins;

static int kcmp_file(pid_t p1, int fd1, pid_t p2, int fd2)
{
	return syscall(SYS_kcmp, p1, p2, KCMP_FILE, fd1, fd2);
}

static bool is_tty(const struct stat *st)
{
	unsigned maj = major(st->st_rdev);

	return S_ISCHR(st->st_mode) && ((maj >= 136 && maj <= 143) || maj == 4 ||
					(maj == 5 && minor(st->st_rdev) <= 2));
}

int dump_files_getfd(pid_t pid, int fd)
{
	int pidfd, copy, err;

	pidfd = syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0)
		return -errno;
	copy = syscall(SYS_pidfd_getfd, pidfd, fd, 0);
	err = -errno;
	close(pidfd);
	return copy < 0 ? err : copy;
}

static int add_pipe_data(struct dump_ctx *ctx, pid_t pid, int fd, uint64_t pipe_id)
{
	PipeDataEntry *e;
	int tfd, p[2] = { -1, -1 }, err = 0, queued = 0;

	for (size_t i = 0; i < ctx->nr_pipes; i++)
		if (ctx->pipes[i]->pipe_id == pipe_id)
			return 0;
	tfd = dump_files_getfd(pid, fd);
	if (tfd < 0) {
		pr_errno(tfd, "cannot get fd %d of %d to read its pipe", fd, pid);
		return tfd;
	}
	e = calloc(1, sizeof(*e));
	if (!e) {
		err = -ENOMEM;
		goto out;
	}
	pipe_data_entry__init(e);
	e->pipe_id = pipe_id;
	e->size = fcntl(tfd, F_GETPIPE_SZ);
	PipeDataEntry **np = realloc(ctx->pipes, (ctx->nr_pipes + 1) * sizeof(*np));
	if (!np) {
		free(e);
		err = -ENOMEM;
		goto out;
	}
	ctx->pipes = np;
	ctx->pipes[ctx->nr_pipes++] = e;
	if (ioctl(tfd, FIONREAD, &queued) < 0 || queued <= 0)
		goto out;
	/* tee() copies the queued bytes without consuming them. */
	if (pipe2(p, O_CLOEXEC) < 0 || fcntl(p[1], F_SETPIPE_SZ, e->size) < 0) {
		err = -errno;
		pr_perror("cannot make a pipe to copy pipe:[%llu]", (unsigned long long)pipe_id);
		goto out;
	}
	ssize_t n = tee(tfd, p[1], queued, SPLICE_F_NONBLOCK);
	if (n != queued) {
		err = n < 0 ? -errno : -EIO;
		pr_errno(err, "cannot copy %d queued bytes of pipe:[%llu]", queued,
			 (unsigned long long)pipe_id);
		goto out;
	}
	e->data.data = malloc(queued);
	if (!e->data.data) {
		err = -ENOMEM;
		goto out;
	}
	e->has_data = true;
	if (read(p[0], e->data.data, queued) != queued) {
		err = -EIO;
		goto out;
	}
	e->data.len = queued;
	pr_debug("pipe:[%llu]: %d bytes queued", (unsigned long long)pipe_id, queued);
out:
	if (p[0] >= 0) {
		close(p[0]);
		close(p[1]);
	}
	close(tfd);
	return err;
}

static uint64_t ts_ns(const struct timespec *ts)
{
	return ts->tv_sec * 1000000000ull + ts->tv_nsec;
}

/* One entry of ghost g: its metadata and, with len, the bytes at off. */
static int write_ghost_entry(struct img *img, GhostFileEntry *g, uint64_t off, void *buf, size_t len)
{
	g->has_off = g->has_data = len != 0;
	g->off = off;
	g->data.data = buf;
	g->data.len = len;
	return img_write(img, g);
}

/*
 * The data extents only (SEEK_DATA/SEEK_HOLE, on our own description so
 * the task's offset stays): restore leaves the rest as holes.
 */
static int save_ghost(struct img *img, int fd, GhostFileEntry *g, const char *what)
{
	uint64_t off = 0;
	char *buf;
	int err;

	err = write_ghost_entry(img, g, 0, NULL, 0);
	if (err)
		return err;
	buf = malloc(IMG_GHOST_MAX_DATA);
	if (!buf)
		return -ENOMEM;
	while (off < g->size) {
		off_t data = lseek(fd, off, SEEK_DATA), hole;
		if (data < 0 && errno == ENXIO)
			break;
		hole = data < 0 ? -1 : lseek(fd, data, SEEK_HOLE);
		if (hole < 0) {
			err = -errno;
			pr_perror("%s: cannot find the data of the deleted file '%s'", what, g->path);
			break;
		}
		if ((uint64_t)hole > g->size)
			hole = g->size;
		for (off = data; off < (uint64_t)hole && !err;) {
			size_t len = (uint64_t)hole - off > IMG_GHOST_MAX_DATA ? IMG_GHOST_MAX_DATA
										: hole - off;
			ssize_t n = pread(fd, buf, len, off);
			if (n <= 0) {
				err = n < 0 ? -errno : -EIO;
				pr_errno(err, "%s: cannot read the deleted file '%s' at %llu", what,
					 g->path, (unsigned long long)off);
				break;
			}
			err = write_ghost_entry(img, g, off, buf, n);
			off += n;
		}
		if (err)
			break;
	}
	free(buf);
	return err;
}

int dump_files_ghost(struct dump_ctx *ctx, const char *proc, const char *what, const char *path,
		     const struct stat *st)
{
	GhostFileEntry g = GHOST_FILE_ENTRY__INIT;
	struct dump_ghost *ng;
	int fd, err;

	for (size_t i = 0; i < ctx->nr_ghosts; i++)
		if (ctx->ghosts[i].dev == st->st_dev && ctx->ghosts[i].ino == st->st_ino)
			return ctx->ghosts[i].id;
	if ((uint64_t)st->st_size > IMG_GHOST_MAX_SIZE) {
		pr_err("%s: the deleted file '%s' has %lld bytes, too large to save (the limit is %llu MiB)",
		       what, path, (long long)st->st_size, IMG_GHOST_MAX_SIZE >> 20);
		return -EFBIG;
	}
	ng = realloc(ctx->ghosts, (ctx->nr_ghosts + 1) * sizeof(*ng));
	if (!ng)
		return -ENOMEM;
	ctx->ghosts = ng;
	if (!ctx->ghost_img) {
		ctx->ghost_img = img_open(ctx->dirfd, IMG_GHOST, 0, O_WRONLY);
		if (!ctx->ghost_img)
			return -errno;
	}
	fd = open(proc, O_RDONLY | O_CLOEXEC | O_NOATIME);
	if (fd < 0 && errno == EPERM)
		fd = open(proc, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		pr_perror("%s: cannot open the deleted file '%s'", what, path);
		return err;
	}
	g.id = ctx->nr_ghosts;
	g.path = (char *)path;
	g.size = st->st_size;
	g.mode = st->st_mode;
	g.uid = st->st_uid;
	g.gid = st->st_gid;
	g.has_atime_ns = g.has_mtime_ns = true;
	g.atime_ns = ts_ns(&st->st_atim);
	g.mtime_ns = ts_ns(&st->st_mtim);
	err = save_ghost(ctx->ghost_img, fd, &g, what);
	close(fd);
	if (err)
		return err;
	ctx->ghosts[ctx->nr_ghosts++] = (struct dump_ghost){ st->st_dev, st->st_ino, g.id };
	pr_debug("%s: deleted file '%s' (%lld bytes) is ghost %u", what, path,
		 (long long)st->st_size, g.id);
	return g.id;
}

/* A path for character device rdev: /dev/char/MAJ:MIN, else a node in /dev. */
static int find_chrdev(dev_t rdev, char *buf, size_t len)
{
	char link[64];
	struct dirent *de;
	struct stat st;
	DIR *d;

	snprintf(link, sizeof(link), "/dev/char/%u:%u", major(rdev), minor(rdev));
	if (realpath(link, buf) && stat(buf, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == rdev)
		return 0;
	d = opendir("/dev");
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		snprintf(buf, len, "/dev/%s", de->d_name);
		if (de->d_type == DT_CHR && stat(buf, &st) == 0 && S_ISCHR(st.st_mode) &&
		    st.st_rdev == rdev) {
			closedir(d);
			return 0;
		}
	}
	closedir(d);
	return -ENOENT;
}

/*
 * The path /proc shows for an fd must lead back to the same file, or the
 * restore would open something else: a file opened in another mount
 * namespace shows a path that means nothing here. A character device can
 * still be named by its number.
 */
static int check_path(struct dump_task *task, int fd, char *path, size_t len, const struct stat *st)
{
	struct stat ps;

	if (stat(path, &ps) == 0 && (ps.st_mode & S_IFMT) == (st->st_mode & S_IFMT) &&
	    (S_ISCHR(st->st_mode) ? ps.st_rdev == st->st_rdev
				  : ps.st_dev == st->st_dev && ps.st_ino == st->st_ino))
		return 0;
	if (S_ISCHR(st->st_mode)) {
		char real[PATH_MAX];
		if (find_chrdev(st->st_rdev, real, sizeof(real)) == 0) {
			pr_info("fd %d of %d: '%s' is not the device here; using '%s'", fd, task->pid,
				path, real);
			snprintf(path, len, "%s", real);
			return 0;
		}
	}
	pr_err("fd %d of %d: '%s' does not lead to the open file from here (opened in another mount namespace?); not supported",
	       fd, task->pid, path);
	return -EOPNOTSUPP;
}

/* Find the FileEntry for this fd, or make one. Returns its id or -errno. */
static int file_for_fd(struct dump_ctx *ctx, struct dump_task *task, int fd)
{
	char path[PATH_MAX], link[64];
	struct proc_fdinfo fi;
	struct stat st;
	FileEntry *e;
	int err;

	snprintf(link, sizeof(link), "fd/%d", fd);
	err = proc_readlink(task->pid, link, path, sizeof(path));
	if (!err) {
		snprintf(link, sizeof(link), "/proc/%d/fd/%d", task->pid, fd);
		if (stat(link, &st) < 0)
			err = -errno;
	}
	if (!err)
		err = proc_parse_fdinfo(task->pid, fd, &fi);
	if (err) {
		pr_errno(err, "cannot inspect fd %d of %d", fd, task->pid);
		return err;
	}
	for (size_t i = 0; i < ctx->nr_files; i++) {
		struct dump_file_origin *o = &origins[i];
		if (o->dev == st.st_dev && o->ino == st.st_ino &&
		    kcmp_file(o->pid, o->fd, task->pid, fd) == 0)
			return ctx->files[i]->id;
	}

	e = calloc(1, sizeof(*e) + sizeof(RegFileEntry) + sizeof(PipeFileEntry));
	if (!e)
		return -ENOMEM;
	file_entry__init(e);
	e->id = ctx->nr_files;
	e->flags = fi.flags & ~O_CLOEXEC;
	if (S_ISSOCK(st.st_mode)) {
		int domain = dump_unix_domain(task->pid, fd);
		if (domain == AF_INET || domain == AF_INET6) {
			e->kind = FILE_KIND__FILE_INET;
			err = dump_inet_socket(ctx, task->pid, fd, domain, &e->inet_sk);
		} else {
			e->kind = FILE_KIND__FILE_UNIX;
			err = dump_unix_socket(task->pid, fd, st.st_ino, &e->unix_sk);
		}
	} else if (!strncmp(path, "anon_inode:", 11)) {
		err = dump_anon_file(task->pid, fd, path, e);
	} else if (S_ISFIFO(st.st_mode)) {
		PipeFileEntry *p = (PipeFileEntry *)((RegFileEntry *)(e + 1) + 1);
		pipe_file_entry__init(p);
		p->pipe_id = st.st_ino;
		e->pipe = p;
		if (!strncmp(path, "pipe:", 5)) {
			e->kind = FILE_KIND__FILE_PIPE;
		} else {
			e->kind = FILE_KIND__FILE_FIFO;
			p->path = strdup(path);
		}
		if ((fi.flags & O_ACCMODE) != O_WRONLY)
			err = add_pipe_data(ctx, task->pid, fd, st.st_ino);
	} else if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode) || S_ISCHR(st.st_mode)) {
		RegFileEntry *r = (RegFileEntry *)(e + 1);
		reg_file_entry__init(r);
		e->reg = r;
		size_t plen = strlen(path);
		bool deleted = plen > 10 && !strcmp(path + plen - 10, " (deleted)");
		if (deleted && S_ISREG(st.st_mode) && st.st_nlink == 0 && path[0] == '/' &&
		    strncmp(path, "/memfd:", 7)) {
			char what[64];
			path[plen - 10] = '\0';
			snprintf(what, sizeof(what), "fd %d of %d", fd, task->pid);
			err = dump_files_ghost(ctx, link, what, path, &st);
			if (err >= 0) {
				r->has_ghost_id = true;
				r->ghost_id = err;
				err = 0;
			}
		} else if (path[0] != '/' || deleted) {
			pr_err("fd %d of %d: '%s' is %s; not supported yet", fd, task->pid, path,
			       !strncmp(path, "/memfd:", 7) ? "a memfd" :
			       deleted && st.st_nlink ? "deleted but still linked elsewhere" :
			       deleted ? "deleted and not a regular file" : "a file with no path");
			err = -EOPNOTSUPP;
		} else {
			err = check_path(task, fd, path, sizeof(path), &st);
		}
		if (is_tty(&st) && !ctx->opts->shell_job) {
			pr_err("fd %d of %d is the terminal '%s'; use --shell-job to dump a job attached to a terminal",
			       fd, task->pid, path);
			err = -EOPNOTSUPP;
		}
		e->kind = is_tty(&st) ? FILE_KIND__FILE_TTY
				      : S_ISCHR(st.st_mode) ? FILE_KIND__FILE_CHR : FILE_KIND__FILE_REG;
		r->path = strdup(path);
		r->pos = fi.pos;
		r->size = st.st_size;
		r->mode = st.st_mode;
		r->dev = st.st_dev;
		r->ino = st.st_ino;
		r->has_rdev = S_ISCHR(st.st_mode);
		r->rdev = st.st_rdev;
	} else {
		pr_err("fd %d of %d ('%s', mode 0%o) is a file kind not supported yet", fd, task->pid,
		       path, st.st_mode);
		err = -EOPNOTSUPP;
	}
	FileEntry **nf = realloc(ctx->files, (ctx->nr_files + 1) * sizeof(*nf));
	struct dump_file_origin *no = realloc(origins, (ctx->nr_files + 1) * sizeof(*no));
	if (nf)
		ctx->files = nf;
	if (no)
		origins = no;
	if (!nf || !no) {
		free(e);
		return -ENOMEM;
	}
	ctx->files[ctx->nr_files] = e;
	origins[ctx->nr_files] = (struct dump_file_origin){ task->pid, fd, st.st_dev, st.st_ino };
	ctx->nr_files++;
	return err ? err : (int)e->id;
}

/* Every pipe must have its reader and its writer inside the dump. */
static int check_pipes(struct dump_ctx *ctx)
{
	for (size_t i = 0; i < ctx->nr_files; i++) {
		FileEntry *e = ctx->files[i];
		bool r = false, w = false;
		if (e->kind != FILE_KIND__FILE_PIPE && e->kind != FILE_KIND__FILE_FIFO)
			continue;
		for (size_t k = 0; k < ctx->nr_files; k++) {
			FileEntry *o = ctx->files[k];
			if (!o->pipe || o->pipe->pipe_id != e->pipe->pipe_id)
				continue;
			r |= (o->flags & O_ACCMODE) != O_WRONLY;
			w |= (o->flags & O_ACCMODE) != O_RDONLY;
		}
		if (!r || !w) {
			pr_err("fd %d of %d is %s pipe:[%llu] whose %s end is outside the dump; not supported yet",
			       origins[i].fd, origins[i].pid, r ? "the read end of" : "the write end of",
			       (unsigned long long)e->pipe->pipe_id, r ? "write" : "read");
			return -EOPNOTSUPP;
		}
	}
	return 0;
}

/* Every socket a unix socket is connected to must be inside the dump. */
static int check_unix(struct dump_ctx *ctx)
{
	return dump_unix_resolve(ctx, origins);
}

static int fd_cmp(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

/*
 * Locks held through an fd, from its fdinfo: flock and OFD locks of its
 * open file description, POSIX locks of the task on its inode. Leases,
 * delegations and mandatory locks are refused.
 */
static int collect_locks(pid_t pid, int fd, const struct proc_fdinfo *fi, FileLockEntry *locks,
			 FileLockEntry **lp)
{
	if (fi->nr_locks > PROC_MAX_LOCKS) {
		pr_err("fd %d of %d holds %d locks; more than %d are not supported", fd, pid,
		       fi->nr_locks, PROC_MAX_LOCKS);
		return -EOPNOTSUPP;
	}
	for (int k = 0; k < fi->nr_locks; k++) {
		const struct proc_lock *l = &fi->locks[k];
		FileLockEntry *e = &locks[k];
		file_lock_entry__init(e);
		e->kind = !strcmp(l->kind, "FLOCK") ? 1 : !strcmp(l->kind, "POSIX") ? 2 :
			  !strcmp(l->kind, "OFDLCK") ? 3 : 0;
		if (!e->kind || strcmp(l->mode, "ADVISORY") ||
		    (strcmp(l->access, "READ") && strcmp(l->access, "WRITE"))) {
			pr_err("fd %d of %d holds a %s %s %s lock; not supported", fd, pid, l->kind,
			       l->mode, l->access);
			return -EOPNOTSUPP;
		}
		e->write = !strcmp(l->access, "WRITE");
		if (e->kind != 1) {
			e->has_start = e->has_len = true;
			e->start = l->start;
			e->len = l->end == UINT64_MAX ? 0 : l->end - l->start + 1;
		}
		lp[k] = e;
	}
	return 0;
}

int dump_files(struct dump_ctx *ctx, struct dump_task *task)
{
	char path[64];
	struct dirent *de;
	int *fds = NULL, nr = 0, err = 0;
	struct img *img;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", task->pid);
	d = opendir(path);
	if (!d) {
		err = -errno;
		pr_perror("cannot list the fds of %d", task->pid);
		return err;
	}
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		int *nf = realloc(fds, (nr + 1) * sizeof(*nf));
		if (!nf) {
			err = -ENOMEM;
			break;
		}
		fds = nf;
		fds[nr++] = atoi(de->d_name);
	}
	closedir(d);
	if (err)
		goto out;
	qsort(fds, nr, sizeof(*fds), fd_cmp);
	img = img_open(ctx->dirfd, IMG_FDINFO, task->pid, O_WRONLY);
	if (!img) {
		err = -errno;
		goto out;
	}
	for (int i = 0; i < nr && !err; i++) {
		FdinfoEntry fe = FDINFO_ENTRY__INIT;
		struct proc_fdinfo fi;
		int id = file_for_fd(ctx, task, fds[i]);
		if (id < 0) {
			err = id;
			break;
		}
		err = proc_parse_fdinfo(task->pid, fds[i], &fi);
		if (err) {
			pr_errno(err, "cannot read fdinfo %d of %d", fds[i], task->pid);
			break;
		}
		fe.fd = fds[i];
		fe.id = id;
		fe.cloexec = fi.flags & O_CLOEXEC;
		FileLockEntry locks[PROC_MAX_LOCKS], *lp[PROC_MAX_LOCKS];
		err = collect_locks(task->pid, fds[i], &fi, locks, lp);
		if (err)
			break;
		fe.locks = lp;
		fe.n_locks = fi.nr_locks;
		err = img_write(img, &fe);
	}
	int cerr = img_close(img);
	if (!err)
		err = cerr;
out:
	free(fds);
	return err;
}

int dump_files_write(struct dump_ctx *ctx)
{
	struct img *img;
	int err, cerr;

	/* Only now is every task's fd table known. */
	err = check_pipes(ctx);
	if (!err)
		err = check_unix(ctx);
	if (!err)
		err = dump_anon_resolve(ctx, origins);
	if (err)
		return err;
	img = img_open(ctx->dirfd, IMG_FILES, 0, O_WRONLY);
	if (!img)
		return -errno;
	for (size_t i = 0; i < ctx->nr_files && !err; i++)
		err = img_write(img, ctx->files[i]);
	cerr = img_close(img);
	if (err || cerr)
		return err ? err : cerr;
	img = img_open(ctx->dirfd, IMG_PIPES_DATA, 0, O_WRONLY);
	if (!img)
		return -errno;
	for (size_t i = 0; i < ctx->nr_pipes && !err; i++)
		err = img_write(img, ctx->pipes[i]);
	cerr = img_close(img);
	if (!err)
		err = cerr;
	cerr = img_close(ctx->ghost_img);
	ctx->ghost_img = NULL;
	return err ? err : cerr;
}

void dump_files_free(struct dump_ctx *ctx)
{
	for (size_t i = 0; i < ctx->nr_files; i++) {
		FileEntry *e = ctx->files[i];
		if (e->reg)
			free(e->reg->path);
		if (e->pipe)
			free(e->pipe->path);
		dump_unix_free(e->unix_sk);
		dump_anon_free(e);
		dump_inet_free(e->inet_sk);
		free(e);
	}
	free(ctx->files);
	for (size_t i = 0; i < ctx->nr_pipes; i++) {
		free(ctx->pipes[i]->data.data);
		free(ctx->pipes[i]);
	}
	free(ctx->pipes);
	if (ctx->ghost_img)
		(void)img_close(ctx->ghost_img);
	free(ctx->ghosts);
	ctx->ghost_img = NULL;
	ctx->ghosts = NULL;
	ctx->nr_ghosts = 0;
	free(origins);
	origins = NULL;
	ctx->files = NULL;
	ctx->pipes = NULL;
	ctx->nr_files = ctx->nr_pipes = 0;
}
