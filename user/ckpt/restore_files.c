// SPDX-License-Identifier: MIT
#define LOG_PREFIX "files: "
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "ckpt.h"
#include "image.h"
#include "log.h"
#include "restore.h"
#include "restorer_abi.h"

#define REOPEN_FLAGS_MASK (O_ACCMODE | O_APPEND | O_NONBLOCK | O_DIRECT | O_NOATIME | O_SYNC | \
			   O_DSYNC | O_PATH | O_DIRECTORY | O_NOFOLLOW | O_LARGEFILE)

int restore_open_checked(const char *path, int flags, mode_t type)
{
	char proc[64];
	struct stat st;
	int pfd, fd, err;

	pfd = open(path, O_PATH | O_CLOEXEC);
	if (pfd < 0) {
		err = -errno;
		pr_perror("cannot open '%s'", path);
		return err;
	}
	if (fstat(pfd, &st) < 0 || (st.st_mode & S_IFMT) != type) {
		pr_err("'%s' is not the kind of file the image says (mode 0%o, expected 0%o)", path,
		       st.st_mode & S_IFMT, type);
		close(pfd);
		return -ESTALE;
	}
	if (flags & O_PATH)
		return pfd;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", pfd);
	/* The /proc link is a symlink: O_NOFOLLOW (kept in the file's flags) would refuse it. */
	fd = open(proc, (flags & ~O_NOFOLLOW) | O_CLOEXEC);
	err = -errno;
	close(pfd);
	if (fd < 0) {
		pr_errno(err, "cannot open '%s'", path);
		return err;
	}
	return fd;
}

/*
 * Under its old name, so that every fd and mapping of it shows "/path
 * (deleted)" again, then unlinked at once: a file that takes the name
 * meanwhile is never touched (O_EXCL, and the name must still be ours).
 * When another file has the name now (a library replaced by an upgrade,
 * say), a name next to it is used instead: the links then show that name.
 */
static int ghost_create(const GhostFileEntry *g)
{
	char path[PATH_MAX];
	struct stat st, ls;
	int fd = -1, err;

	snprintf(path, sizeof(path), "%s", g->path);
	for (int n = 0; fd < 0 && n < 100; n++) {
		if (n && snprintf(path, sizeof(path), "%s.ckpt-ghost-%d", g->path, n) >= (int)sizeof(path))
			break;
		fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0 && errno != EEXIST)
			break;
	}
	if (fd < 0) {
		err = -errno;
		pr_errno(err, "cannot recreate the deleted file '%s'", g->path);
		return err;
	}
	if (strcmp(path, g->path))
		pr_warn("the name of the deleted file '%s' is taken by another file now; it is recreated as '%s' (deleted)",
			g->path, path);
	errno = 0;
	if (fstat(fd, &st) < 0 || lstat(path, &ls) < 0 || st.st_dev != ls.st_dev ||
	    st.st_ino != ls.st_ino || unlink(path) < 0) {
		err = errno ? -errno : -ESTALE;
		pr_errno(err, "cannot unlink the recreated deleted file '%s'", path);
		close(fd);
		return err;
	}
	if (ftruncate(fd, g->size) < 0) {
		err = -errno;
		pr_perror("cannot size the deleted file '%s' to %llu bytes", g->path,
			  (unsigned long long)g->size);
		close(fd);
		return err;
	}
	return fd;
}

/* Once its data is in: owner, mode (after chown, which clears set-id bits), times. */
static int ghost_finish(const GhostFileEntry *g, int fd)
{
	struct timespec ts[2] = { { 0, UTIME_OMIT }, { 0, UTIME_OMIT } };

	if (g->has_atime_ns)
		ts[0] = (struct timespec){ g->atime_ns / 1000000000, g->atime_ns % 1000000000 };
	if (g->has_mtime_ns)
		ts[1] = (struct timespec){ g->mtime_ns / 1000000000, g->mtime_ns % 1000000000 };
	if (fchown(fd, g->uid, g->gid) < 0 || fchmod(fd, g->mode & 07777) < 0 ||
	    futimens(fd, ts) < 0) {
		int err = -errno;
		pr_perror("cannot set the owner, mode and times of the deleted file '%s'", g->path);
		return err;
	}
	return 0;
}

static int ghost_write(const GhostFileEntry *g, int fd)
{
	if (g->has_data && g->data.len &&
	    pwrite(fd, g->data.data, g->data.len, g->off) != (ssize_t)g->data.len) {
		int err = errno ? -errno : -EIO;
		pr_errno(err, "cannot write %zu bytes at %llu of the deleted file '%s'", g->data.len,
			 (unsigned long long)g->off, g->path);
		return err;
	}
	return 0;
}

/* Every ghost of ghost-files.img, into ctx->ghosts. */
static int load_ghosts(struct rst_ctx *ctx)
{
	GhostFileEntry *first = NULL, *g;
	struct img *img;
	char name[64];
	int fd = -1, r, err = 0;

	img_name(IMG_GHOST, 0, name, sizeof(name));
	img = img_open(ctx->dirfd, IMG_GHOST, 0, O_RDONLY);
	if (!img) {
		err = -errno;
		if (err == -ENOENT)
			pr_err("the images name a deleted file, but %s is missing", name);
		return err;
	}
	while ((r = img_read(img, (void **)&g)) > 0) {
		if (first && first->id == g->id) {
			if (first->size != g->size || first->mode != g->mode || strcmp(first->path, g->path))
				err = img_bad_at(name, img_entry_index(img), "id",
						 "ghost %u changes its size, mode or path", g->id);
			if (!err)
				err = ghost_write(g, fd);
			img_free(img, g);
			if (err)
				break;
			continue;
		}
		if (first) {
			err = ghost_finish(first, fd);
			img_free(img, first);
			first = NULL;
			if (err) {
				img_free(img, g);
				break;
			}
		}
		first = g;
		for (size_t i = 0; i < ctx->nr_ghosts && !err; i++)
			if (ctx->ghosts[i].id == g->id)
				err = img_bad_at(name, img_entry_index(img), "id",
						 "ghost %u is listed twice", g->id);
		struct rst_ghost *ng = err ? NULL : realloc(ctx->ghosts, (ctx->nr_ghosts + 1) * sizeof(*ng));
		if (!ng) {
			err = err ? err : -ENOMEM;
			break;
		}
		ctx->ghosts = ng;
		fd = ghost_create(g);
		if (fd < 0) {
			err = fd;
			break;
		}
		ctx->ghosts[ctx->nr_ghosts++] = (struct rst_ghost){ g->id, fd };
		err = ghost_write(g, fd);
		if (err)
			break;
	}
	if (r < 0 && !err)
		err = r;
	if (first && !err)
		err = ghost_finish(first, fd);
	img_free(img, first);
	(void)img_close(img);
	if (!err && ctx->nr_ghosts)
		pr_debug("%zu deleted file(s) recreated", ctx->nr_ghosts);
	return err;
}

int restore_files_ghost(struct rst_ctx *ctx, uint32_t id, int flags)
{
	char proc[64];
	int fd, err;

	if (!ctx->ghosts_loaded) {
		ctx->ghosts_loaded = true;
		err = load_ghosts(ctx);
		if (err)
			return err;
	}
	for (size_t i = 0; i < ctx->nr_ghosts; i++) {
		if (ctx->ghosts[i].id != id)
			continue;
		/* The /proc link reopens the unlinked inode: a new description of the same file. */
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", ctx->ghosts[i].fd);
		fd = open(proc, (flags & ~(O_NOFOLLOW | O_CREAT | O_EXCL | O_TRUNC)) | O_CLOEXEC);
		if (fd < 0) {
			err = -errno;
			pr_perror("cannot open the recreated deleted file %u", id);
			return err;
		}
		return fd;
	}
	pr_err("deleted file %u is not in ghost-files.img", id);
	return -EINVAL;
}

static int open_reg(struct rst_ctx *ctx, const FileEntry *e)
{
	const RegFileEntry *r = e->reg;
	struct stat st;
	int fd;

	if (r->has_ghost_id)
		fd = restore_files_ghost(ctx, r->ghost_id, (e->flags & REOPEN_FLAGS_MASK) | O_NOCTTY);
	else
		fd = restore_open_checked(r->path, (e->flags & REOPEN_FLAGS_MASK) | O_NOCTTY,
					  r->mode & S_IFMT);
	if (fd < 0)
		return fd;
	if (fstat(fd, &st) < 0) {
		int err = -errno;
		pr_perror("cannot stat '%s'", r->path);
		close(fd);
		return err;
	}
	if ((st.st_mode & S_IFMT) != (r->mode & S_IFMT) ||
	    (e->kind == FILE_KIND__FILE_REG && (st.st_mode & 07777) != (r->mode & 07777))) {
		pr_err("'%s' has mode 0%o, the dumped file had 0%o", r->path, st.st_mode, r->mode);
		goto bad;
	}
	if (e->kind == FILE_KIND__FILE_REG && S_ISREG(st.st_mode) && (uint64_t)st.st_size != r->size) {
		pr_err("'%s' has size %lld, the dumped file had %llu", r->path, (long long)st.st_size,
		       (unsigned long long)r->size);
		goto bad;
	}
	if (e->kind == FILE_KIND__FILE_CHR && r->has_rdev && st.st_rdev != r->rdev) {
		pr_err("'%s' is device %#llx, the dumped one was %#llx", r->path,
		       (unsigned long long)st.st_rdev, (unsigned long long)r->rdev);
		goto bad;
	}
	if (S_ISREG(st.st_mode) && !(e->flags & O_PATH) && lseek(fd, r->pos, SEEK_SET) < 0) {
		int err = -errno;
		pr_perror("cannot seek '%s' to %llu", r->path, (unsigned long long)r->pos);
		close(fd);
		return err;
	}
	return fd;
bad:
	close(fd);
	return -ESTALE;
}

static int open_tty(struct rst_ctx *ctx, const FileEntry *e)
{
	if (!ctx->opts->shell_job) {
		pr_err("file %u is the terminal '%s'; restore with --shell-job to attach it to this terminal",
		       e->id, e->reg->path);
		return -EINVAL;
	}
	for (int fd = 0; fd < 3; fd++) {
		if (!isatty(fd))
			continue;
		int nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
		if (nfd < 0)
			return -errno;
		return nfd;
	}
	pr_err("--shell-job: ckpt has no terminal on fds 0-2 to give to the restored task");
	return -ENOTTY;
}

static const PipeDataEntry *pipe_data(struct rst_ctx *ctx, uint64_t id)
{
	for (size_t i = 0; i < ctx->nr_pipes; i++)
		if (ctx->pipes[i]->pipe_id == id)
			return ctx->pipes[i];
	return NULL;
}

static int fill_pipe(int wfd, const PipeDataEntry *pd, uint64_t id)
{
	if (!pd)
		return 0;
	if (fcntl(wfd, F_SETPIPE_SZ, pd->size) < 0) {
		int err = -errno;
		pr_perror("cannot size pipe:[%llu] to %u bytes", (unsigned long long)id, pd->size);
		return err;
	}
	if (pd->has_data && pd->data.len &&
	    write(wfd, pd->data.data, pd->data.len) != (ssize_t)pd->data.len) {
		int err = -errno;
		pr_perror("cannot refill pipe:[%llu]", (unsigned long long)id);
		return err;
	}
	return 0;
}

/*
 * Open every end of one pipe (or FIFO) that the image has: the first read
 * and write descriptions get the two ends of a new pipe, any further one
 * is a fresh open of /proc/self/fd/N, which makes a new description.
 */
static int open_pipe(struct rst_ctx *ctx, size_t idx)
{
	const FileEntry *e = ctx->files[idx];
	uint64_t id = e->pipe->pipe_id;
	int p[2], err = 0, holder = -1;

	if (e->kind == FILE_KIND__FILE_PIPE) {
		if (pipe2(p, O_CLOEXEC) < 0) {
			err = -errno;
			pr_perror("cannot create a pipe");
			return err;
		}
	} else {
		/* O_RDWR never blocks on a FIFO and keeps both ends open meanwhile. */
		holder = restore_open_checked(e->pipe->path, O_RDWR | O_NONBLOCK, S_IFIFO);
		if (holder < 0)
			return holder;
		char proc[64];
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", holder);
		p[0] = open(proc, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
		p[1] = open(proc, O_WRONLY | O_CLOEXEC | O_NONBLOCK);
		if (p[0] < 0 || p[1] < 0) {
			err = -errno;
			pr_perror("cannot open the FIFO '%s'", e->pipe->path);
			goto out;
		}
	}
	err = fill_pipe(p[1], pipe_data(ctx, id), id);
	if (err)
		goto out;
	bool used[2] = { false, false };
	for (size_t i = idx; i < ctx->nr_files; i++) {
		const FileEntry *o = ctx->files[i];
		if (!o->pipe || o->pipe->pipe_id != id || o->kind != e->kind)
			continue;
		int acc = o->flags & O_ACCMODE;
		int end = acc == O_WRONLY ? 1 : 0;
		int fd;
		if (acc == O_RDWR) {
			char path[64];
			snprintf(path, sizeof(path), "/proc/self/fd/%d", p[0]);
			fd = open(path, O_RDWR | O_CLOEXEC | O_NONBLOCK);
		} else if (!used[end]) {
			fd = p[end];
			used[end] = true;
		} else {
			char path[64];
			snprintf(path, sizeof(path), "/proc/self/fd/%d", p[end]);
			fd = open(path, acc | O_CLOEXEC | O_NONBLOCK);
		}
		if (fd < 0) {
			err = -errno;
			pr_perror("cannot reopen pipe:[%llu]", (unsigned long long)id);
			goto out;
		}
		if (fcntl(fd, F_SETFL, o->flags & (O_NONBLOCK | O_DIRECT)) < 0) {
			err = -errno;
			pr_perror("cannot set flags of pipe:[%llu]", (unsigned long long)id);
			goto out;
		}
		ctx->file_fds[i] = fd;
	}
out:
	for (int k = 0; k < 2; k++) {
		bool taken = false;
		for (size_t i = idx; i < ctx->nr_files; i++)
			taken |= ctx->file_fds[i] == p[k];
		if (!taken && p[k] >= 0)
			close(p[k]);
	}
	if (holder >= 0)
		close(holder);
	return err;
}

int restore_files_open(struct rst_ctx *ctx, size_t idx)
{
	const FileEntry *e = ctx->files[idx];
	int fd;

	if (ctx->file_fds[idx] >= 0)
		return 0;
	switch (e->kind) {
	case FILE_KIND__FILE_REG:
	case FILE_KIND__FILE_CHR:
		fd = open_reg(ctx, e);
		break;
	case FILE_KIND__FILE_TTY:
		fd = open_tty(ctx, e);
		break;
	case FILE_KIND__FILE_PIPE:
	case FILE_KIND__FILE_FIFO:
		return open_pipe(ctx, idx);
	case FILE_KIND__FILE_EVENTFD:
	case FILE_KIND__FILE_SIGNALFD:
	case FILE_KIND__FILE_TIMERFD:
	case FILE_KIND__FILE_EPOLL:
	case FILE_KIND__FILE_INOTIFY:
		return restore_anon_open(ctx, idx);
	case FILE_KIND__FILE_UNIX:
		return restore_unix_open(ctx, idx);
	case FILE_KIND__FILE_INET:
		fd = restore_inet_open(e);
		break;
	default:
		pr_err("file %u has unknown kind %d", e->id, e->kind);
		return -EINVAL;
	}
	if (fd < 0)
		return fd;
	ctx->file_fds[idx] = fd;
	return 0;
}

/*
 * The flock and OFD locks of an fd: they belong to the open file
 * description, so the engine takes them on its copy (the task inherits
 * the description). POSIX locks belong to the process: the restorer takes
 * them (restore_files_posix_locks). Non-blocking: a lock someone else
 * holds now is an error.
 */
static int take_locks(int fd, const FdinfoEntry *fe)
{
	for (size_t i = 0; i < fe->n_locks; i++) {
		const FileLockEntry *l = fe->locks[i];
		int r;
		if (l->kind == 2)
			continue;
		if (l->kind == 1) {
			r = flock(fd, (l->write ? LOCK_EX : LOCK_SH) | LOCK_NB);
		} else {
			struct flock f = { .l_type = l->write ? F_WRLCK : F_RDLCK, .l_whence = SEEK_SET,
					   .l_start = l->start, .l_len = l->len };
			r = fcntl(fd, F_OFD_SETLK, &f);
		}
		if (r < 0) {
			int err = -errno;
			pr_perror("cannot take the %s %s lock of fd %u again",
				  l->kind == 1 ? "flock" : "OFD", l->write ? "write" : "read",
				  fe->fd);
			return err;
		}
	}
	return 0;
}

/*
 * Taken by the restorer as its last step, not by the task before it runs:
 * the restorer opens and closes fds of the files it maps, and closing any
 * fd of an inode drops the process's POSIX locks on it (filp_flush ->
 * locks_remove_posix, fs/locks.c).
 */
size_t restore_files_posix_locks(const struct rst_task *t, struct restorer_lock *out)
{
	size_t n = 0;

	for (size_t i = 0; i < t->nr_fdinfo; i++) {
		const FdinfoEntry *fe = t->fdinfo[i];
		for (size_t k = 0; k < fe->n_locks; k++) {
			const FileLockEntry *l = fe->locks[k];
			if (l->kind != 2)
				continue;
			if (out)
				out[n] = (struct restorer_lock){
					.fd = (int32_t)fe->fd,
					.write = l->write,
					.start = (int64_t)l->start,
					.len = (int64_t)l->len,
				};
			n++;
		}
	}
	return n;
}

int restore_files_prepare(struct rst_ctx *ctx, struct rst_task *t)
{
	int err;

	t->plan = calloc(t->nr_fdinfo ? t->nr_fdinfo : 1, sizeof(*t->plan));
	if (!t->plan)
		return -ENOMEM;
	char name[64];

	img_name(IMG_FDINFO, t->pid, name, sizeof(name));
	for (size_t i = 0; i < t->nr_fdinfo; i++) {
		const FdinfoEntry *fe = t->fdinfo[i];
		if (fe->id >= ctx->nr_files || ctx->files[fe->id]->id != fe->id)
			return img_bad_at(name, i, "id", "fd %u names file %u, files.img has %zu",
					  fe->fd, fe->id, ctx->nr_files);
		/* The dump writes fds in increasing order: duplicates are caught in O(n). */
		if (i && fe->fd <= t->fdinfo[i - 1]->fd)
			return img_bad_at(name, i, "fd", "fd %u is listed twice or out of order", fe->fd);
		err = restore_files_open(ctx, fe->id);
		if (err)
			return err;
		err = take_locks(ctx->file_fds[fe->id], fe);
		if (err)
			return err;
		t->plan[t->nr_plan++] =
			(struct fd_plan){ fe->fd, ctx->file_fds[fe->id], fe->cloexec };
	}
	return 0;
}

void restore_files_close(struct rst_ctx *ctx)
{
	for (size_t i = 0; ctx->file_fds && i < ctx->nr_files; i++)
		if (ctx->file_fds[i] >= 0)
			close(ctx->file_fds[i]);
	for (size_t i = 0; i < ctx->nr_ghosts; i++)
		close(ctx->ghosts[i].fd);
	free(ctx->ghosts);
	ctx->ghosts = NULL;
	ctx->nr_ghosts = 0;
}

static int max_open_fd(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int max = 2;

	if (!d)
		return -errno;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.' && atoi(de->d_name) > max)
			max = atoi(de->d_name);
	closedir(d);
	return max;
}

/*
 * In the child: the restorer's fds go to fd_base.. and the task's fds to
 * their numbers; nothing else stays open. Copies are made above every
 * open fd first, so no placement can clobber a source.
 */
int restore_files_child(struct rst_task *t)
{
	size_t n = t->nr_rfds + t->nr_plan;
	int tmp[n ? n : 1], hi = max_open_fd();

	if (hi < 0) {
		pr_errno(hi, "cannot list the fds of the new task %d", t->pid);
		return hi;
	}
	hi++;
	if (hi < t->fd_base + (int)t->nr_rfds)
		hi = t->fd_base + t->nr_rfds;
	for (size_t i = 0; i < n; i++) {
		int src = i < t->nr_rfds ? t->rfds[i] : t->plan[i - t->nr_rfds].src;
		tmp[i] = fcntl(src, F_DUPFD, hi);
		if (tmp[i] < 0) {
			pr_perror("cannot move fd %d above %d", src, hi);
			return -errno;
		}
	}
	if (syscall(SYS_close_range, 0, hi - 1, 0) < 0) {
		pr_perror("cannot close the fds of the new task %d", t->pid);
		return -errno;
	}
	for (size_t i = 0; i < t->nr_rfds; i++) {
		if (dup2(tmp[i], t->fd_base + i) < 0) {
			pr_perror("cannot place ckpt's fd %zu at %zu in %d", i, t->fd_base + i, t->pid);
			return -errno;
		}
	}
	/* Our log goes where the restorer will look for it. */
	log_set_fd(t->fd_base);
	for (size_t i = 0; i < t->nr_plan; i++) {
		int fd = t->plan[i].target;
		if (dup2(tmp[t->nr_rfds + i], fd) < 0 ||
		    fcntl(fd, F_SETFD, t->plan[i].cloexec ? FD_CLOEXEC : 0) < 0) {
			pr_perror("cannot place fd %d", fd);
			return -errno;
		}
	}
	if (syscall(SYS_close_range, t->fd_base + t->nr_rfds, ~0u, 0) < 0) {
		pr_perror("cannot close the temporary fds of %d", t->pid);
		return -errno;
	}
	return 0;
}
