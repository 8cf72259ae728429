// SPDX-License-Identifier: MIT
/*
 * `ckpt restore --keep-frozen --control SOCK`: a server that holds the
 * frozen trees (restore_frozen.c) and takes requests on a unix socket;
 * `ckpt restore --fixup DIR [--resume] | --resume | --abort --control
 * SOCK` are its clients. A request is one message, "F DIR", "FR DIR",
 * "R" or "A", with the client's stderr (SCM_RIGHTS), where the server
 * logs while it serves it; the answer is the request's result, an int32
 * (0 or -errno).
 */
#define LOG_PREFIX "restore: "
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ckpt.h"
#include "log.h"
#include "restore.h"

#define REQ_MAX (PATH_MAX + 8)

static int sock_addr(const char *path, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa->sun_path)) {
		pr_err("control socket path '%s' is too long (at most %zu bytes)", path,
		       sizeof(sa->sun_path) - 1);
		return -ENAMETOOLONG;
	}
	strcpy(sa->sun_path, path);
	return 0;
}

/* Bind the control socket; a stale one (nobody listening) is replaced. */
static int ctl_listen(const char *path)
{
	struct sockaddr_un sa;
	int fd, err = sock_addr(path, &sa);

	if (err)
		return err;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		err = -errno;
		if (err == -EADDRINUSE) {
			int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
			if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) < 0 &&
			    errno == ECONNREFUSED)
				unlink(path);
			if (probe >= 0)
				close(probe);
			err = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ? -errno : 0;
		}
		if (err) {
			pr_errno(err, "cannot bind the control socket '%s'%s", path,
				 err == -EADDRINUSE ? " (another server holds it)" : "");
			close(fd);
			return err;
		}
	}
	chmod(path, 0600);
	if (listen(fd, 4) < 0) {
		err = -errno;
		pr_perror("cannot listen on '%s'", path);
		close(fd);
		unlink(path);
		return err;
	}
	return fd;
}

/* One request: its text into req (NUL-terminated), the client's stderr into *ret_fd (or -1). */
static int ctl_recv(int c, char *req, size_t size, int *ret_fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { req, size - 1 };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			    .msg_controllen = sizeof(cbuf) };
	ssize_t n = recvmsg(c, &m, MSG_CMSG_CLOEXEC);

	*ret_fd = -1;
	if (n <= 0)
		return n < 0 ? -errno : -EPIPE;
	req[n] = 0;
	for (struct cmsghdr *h = CMSG_FIRSTHDR(&m); h; h = CMSG_NXTHDR(&m, h))
		if (h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS &&
		    h->cmsg_len == CMSG_LEN(sizeof(int)))
			memcpy(ret_fd, CMSG_DATA(h), sizeof(int));
	return 0;
}

/*
 * Serve until the trees run (resume) or are gone (abort, or a failure
 * that cannot leave them frozen). Returns the exit code.
 */
static int serve(struct rst_ctx *ctx, int lfd, const char *path)
{
	int saved_err = dup(STDERR_FILENO);

	for (;;) {
		char req[REQ_MAX];
		int cfd, c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0) {
			if (errno == EINTR)
				continue;
			pr_perror("accept on the control socket");
			restore_frozen_abort(ctx);
			unlink(path);
			return 1;
		}
		/* A client that says nothing must not hold the trees' server. */
		struct timeval tv = { 10, 0 };
		setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		int err = ctl_recv(c, req, sizeof(req), &cfd);
		if (!err && req[0] == 'F' && strncmp(req, req[1] == 'R' ? "FR /" : "F /", req[1] == 'R' ? 4 : 3))
			err = -EINVAL;	/* "F DIR" or "FR DIR", DIR absolute (the client resolves it) */
		if (err) {
			if (cfd >= 0)
				close(cfd);
			close(c);
			continue;
		}
		if (cfd >= 0)
			dup2(cfd, STDERR_FILENO);
		bool end = false;
		int32_t res = 0;
		if (req[0] == 'F') {
			const char *dir = req[1] == 'R' ? req + 3 : req + 2;
			res = restore_frozen_fixup(ctx, dir);
			if (res && ctx->lost) {
				restore_frozen_abort(ctx);
				end = true;
			}
		}
		if (!end && !res && (req[0] == 'R' || (req[0] == 'F' && req[1] == 'R'))) {
			res = restore_frozen_finish(ctx);
			if (res == -EAGAIN) {
				/* Refused before anything changed: still frozen. */
			} else if (res) {
				restore_frozen_abort(ctx);
			} else {
				restore_frozen_release(ctx);
				restore_frozen_free(ctx);
			}
			end = res != -EAGAIN;
		}
		if (req[0] == 'A') {
			pr_info("aborted: every task of the frozen trees is killed");
			restore_frozen_abort(ctx);
			end = true;
		} else if (req[0] != 'F' && req[0] != 'R') {
			pr_err("unknown request on the control socket");
			res = -EINVAL;
		}
		if (end)
			unlink(path);
		if (write(c, &res, sizeof(res)) != sizeof(res))
			pr_warn("the client went away before the answer");
		close(c);
		if (cfd >= 0) {
			dup2(saved_err, STDERR_FILENO);
			close(cfd);
		}
		if (end)
			return res ? 1 : 0;
	}
}

int restore_server(struct restore_opts *o)
{
	struct rst_ctx *ctx;
	int ready[2], lfd, err;

	lfd = ctl_listen(o->control);
	if (lfd < 0)
		return 1;
	if (pipe2(ready, O_CLOEXEC) < 0) {
		pr_perror("pipe");
		return 1;
	}
	/* The server lives on after this command returns: it holds the trees. */
	pid_t pid = fork();
	if (pid < 0) {
		pr_perror("cannot fork the restore server");
		return 1;
	}
	if (pid > 0) {
		int32_t st = -EPIPE;
		close(ready[1]);
		close(lfd);
		if (read(ready[0], &st, sizeof(st)) != sizeof(st))
			st = -EPIPE;
		if (st == -EPIPE) {
			/* It died before it could tell. */
			waitpid(pid, NULL, 0);
			pr_err("the restore server died");
		}
		return st ? 1 : 0;
	}
	close(ready[0]);
	opts_hold_stop_signals();
	err = restore_frozen_start(o, &ctx);
	int32_t st = err;
	if (write(ready[1], &st, sizeof(st)) != sizeof(st))
		err = err ? err : -EPIPE;
	close(ready[1]);
	if (err) {
		unlink(o->control);
		_exit(1);
	}
	pr_info("frozen; waiting for fixups on '%s'", o->control);
	/* The command's terminal is the caller's: from now on only requests log there. */
	int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (null >= 0) {
		dup2(null, STDERR_FILENO);
		close(null);
	}
	_exit(serve(ctx, lfd, o->control));
}

int restore_client(struct restore_opts *o)
{
	char req[REQ_MAX], abs[PATH_MAX];
	char cbuf[CMSG_SPACE(sizeof(int))] = {};
	struct sockaddr_un sa;
	int fd, err = sock_addr(o->control, &sa);
	int32_t res;

	if (err)
		return 1;
	if (o->abort)
		snprintf(req, sizeof(req), "A");
	else if (o->fixup) {
		if (!realpath(o->fixup, abs)) {
			pr_perror("cannot find the images '%s'", o->fixup);
			return 1;
		}
		snprintf(req, sizeof(req), "%s %s", o->resume ? "FR" : "F", abs);
	} else {
		snprintf(req, sizeof(req), "R");
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		pr_perror("cannot reach the restore server at '%s'", o->control);
		return 1;
	}
	int efd = STDERR_FILENO;
	struct iovec iov = { req, strlen(req) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			    .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *h = CMSG_FIRSTHDR(&m);
	h->cmsg_level = SOL_SOCKET;
	h->cmsg_type = SCM_RIGHTS;
	h->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(h), &efd, sizeof(int));
	if (sendmsg(fd, &m, 0) < 0) {
		pr_perror("cannot send the request to '%s'", o->control);
		close(fd);
		return 1;
	}
	ssize_t n = read(fd, &res, sizeof(res));
	close(fd);
	if (n != sizeof(res)) {
		pr_err("the restore server at '%s' went away without an answer", o->control);
		return 1;
	}
	if (res)
		pr_err("%s failed: %s", o->abort ? "abort" : o->fixup ? "fixup" : "resume", strerror(-res));
	return res ? 1 : 0;
}
