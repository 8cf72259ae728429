// SPDX-License-Identifier: MIT
/*
 * Unix sockets on restore, all of the dump's at once (the first time any
 * of them is needed), because a connection needs both of its ends and a
 * listener its clients:
 *  1. listeners, datagram sockets and unconnected sockets are created and
 *     bound (a stale socket file at the path is removed first, never a
 *     file of another kind); datagram sockets connected both ways are
 *     socketpairs;
 *  2. each connected stream or seqpacket pair is made by connect() and
 *     accept(): on its listener when the accepted end came from one of the
 *     dump, else on a temporary listener bound to the accepted end's name
 *     (the accepted socket keeps that name), else as a socketpair; then
 *     each end's queue is sent again from the other end;
 *  3. clients waiting in a listener's queue connect again, oldest first;
 *  4. datagram sockets connect, then their queued messages are sent again,
 *     each from its sender when the sender is a bound socket of the dump;
 *  5. buffer sizes, shutdowns, options and flags as dumped.
 * A relative name is bound from the directory it was bound in (the engine
 * changes its directory for that call only), so getsockname is unchanged.
 */
#define LOG_PREFIX "files: "
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "image.h"
#include "log.h"
#include "restore.h"

#define UNIX_ESTABLISHED	1	/* include/net/tcp_states.h */
#define UNIX_LISTEN		10
#define BIG_BUF			(64 << 20)

enum sk_op { SK_BIND, SK_CONNECT, SK_SENDTO };

static bool is_unix(const struct rst_ctx *ctx, size_t i)
{
	return ctx->files[i]->kind == FILE_KIND__FILE_UNIX && ctx->files[i]->unix_sk;
}

static const UnixSkEntry *find_sk(const struct rst_ctx *ctx, uint64_t ino, size_t *ret_idx)
{
	for (size_t i = 0; i < ctx->nr_files && ino; i++) {
		if (is_unix(ctx, i) && ctx->files[i]->unix_sk->ino == ino) {
			*ret_idx = i;
			return ctx->files[i]->unix_sk;
		}
	}
	return NULL;
}

/* A name for messages: the path, or '@' and the abstract name. */
static const char *name_str(const UnixSkEntry *u, char *buf, size_t size)
{
	const ProtobufCBinaryData *n = &u->name;

	if (!u->has_name || !n->len)
		snprintf(buf, size, "socket:[%llu]", (unsigned long long)u->ino);
	else if (n->data[0])
		snprintf(buf, size, "%.*s", (int)n->len, (const char *)n->data);
	else
		snprintf(buf, size, "@%.*s", (int)n->len - 1, (const char *)n->data + 1);
	return buf;
}

/* The socket file of a path name, from ckpt's directory. */
static void file_path(const UnixSkEntry *u, char *buf, size_t size)
{
	int len = strnlen((const char *)u->name.data, u->name.len);

	if (u->dir)
		snprintf(buf, size, "%s/%.*s", u->dir, len, (const char *)u->name.data);
	else
		snprintf(buf, size, "%.*s", len, (const char *)u->name.data);
}

/* bind(), connect() or sendto() the name of u, from its directory for a relative one. */
static int sk_at(enum sk_op op, int fd, const UnixSkEntry *u, const void *buf, size_t len)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	socklen_t alen = offsetof(struct sockaddr_un, sun_path) + u->name.len;
	int cwd = -1, r, err = 0;

	memcpy(a.sun_path, u->name.data, u->name.len);
	if (u->dir && u->name.data[0]) {
		cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (cwd < 0 || chdir(u->dir) < 0) {
			err = -errno;
			pr_perror("cannot enter '%s' to reach a relative unix socket name", u->dir);
			if (cwd >= 0)
				close(cwd);
			return err;
		}
	}
	if (op == SK_BIND)
		r = bind(fd, (struct sockaddr *)&a, alen);
	else if (op == SK_CONNECT)
		r = connect(fd, (struct sockaddr *)&a, alen);
	else
		r = sendto(fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&a, alen);
	if (r < 0)
		err = -errno;
	if (cwd >= 0) {
		if (fchdir(cwd) < 0 && !err)
			err = -errno;
		close(cwd);
	}
	return err;
}

/*
 * The path is taken: by the socket file the killed original left (no
 * socket is bound to it any more, so a connect is refused), which goes;
 * by anything else, which stays and fails the restore.
 */
static int remove_stale(const UnixSkEntry *u)
{
	char path[PATH_MAX + 128];
	struct stat st;
	int probe, err;

	file_path(u, path, sizeof(path));
	if (lstat(path, &st) < 0)
		return -EADDRINUSE;
	if (!S_ISSOCK(st.st_mode)) {
		pr_err("cannot bind a unix socket to '%s': the path exists and is not a socket (mode 0%o); not removing it",
		       path, st.st_mode);
		return -EEXIST;
	}
	probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (probe < 0)
		return -errno;
	err = sk_at(SK_CONNECT, probe, u, NULL, 0);
	close(probe);
	if (err != -ECONNREFUSED) {
		pr_err("cannot bind a unix socket to '%s': a running socket is bound there", path);
		return -EADDRINUSE;
	}
	if (unlink(path) < 0) {
		err = -errno;
		pr_perror("cannot remove the stale socket file '%s'", path);
		return err;
	}
	pr_info("removed the stale socket file '%s'", path);
	return 0;
}

/* Bind fd to the name of u; a path gets the dumped mode and owner. */
static int sk_bind(int fd, const UnixSkEntry *u)
{
	char name[PATH_MAX + 128];
	int err;

	err = sk_at(SK_BIND, fd, u, NULL, 0);
	if (err == -EADDRINUSE && u->name.data[0]) {
		err = remove_stale(u);
		if (err)
			return err;
		err = sk_at(SK_BIND, fd, u, NULL, 0);
	}
	if (err) {
		pr_errno(err, "cannot bind a unix socket to '%s'", name_str(u, name, sizeof(name)));
		return err;
	}
	if (!u->name.data[0] || !u->has_mode)
		return 0;
	file_path(u, name, sizeof(name));
	if (chmod(name, u->mode & 07777) < 0 || lchown(name, u->uid, u->gid) < 0) {
		err = -errno;
		pr_perror("cannot give the socket file '%s' mode 0%o and owner %u:%u", name,
			  u->mode & 07777, u->uid, u->gid);
		return err;
	}
	return 0;
}

static int set_bufs(int fd, int snd, int rcv)
{
	/* The kernel doubles what it is given; getsockopt showed the doubled value. */
	snd /= 2;
	rcv /= 2;
	if ((snd && setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &snd, sizeof(snd)) < 0) ||
	    (rcv && setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof(rcv)) < 0))
		return -errno;
	return 0;
}

/* A new socket of u's type, with room for every queued message; bound if u is named. */
static int sk_new(const UnixSkEntry *u, bool bind_it)
{
	int fd = socket(AF_UNIX, u->type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), err;

	if (fd < 0) {
		err = -errno;
		pr_perror("cannot create a unix socket");
		return err;
	}
	err = set_bufs(fd, BIG_BUF, BIG_BUF);
	if (err)
		pr_errno(err, "cannot size a new unix socket");
	if (!err && bind_it && u->has_name)
		err = sk_bind(fd, u);
	if (err) {
		close(fd);
		return err;
	}
	return fd;
}

static int send_queue(int fd, const UnixSkEntry *to)
{
	for (size_t i = 0; i < to->n_queue; i++) {
		const ProtobufCBinaryData *m = &to->queue[i];
		size_t done = 0;
		/* A stream may take its bytes in several sends; a message goes whole. */
		do {
			ssize_t n = send(fd, m->data + done, m->len - done, MSG_DONTWAIT | MSG_NOSIGNAL);
			if (n < 0) {
				int err = -errno;
				pr_perror("cannot queue %zu bytes on socket:[%llu] again", m->len,
					  (unsigned long long)to->ino);
				return err;
			}
			done += n;
		} while (done < m->len && to->type != SOCK_DGRAM && to->type != SOCK_SEQPACKET);
	}
	return 0;
}

/* Entries x and y as the two ends of a new socketpair. */
static int make_socketpair(struct rst_ctx *ctx, size_t xi, size_t yi)
{
	int sv[2], err;

	if (socketpair(AF_UNIX, ctx->files[xi]->unix_sk->type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0,
		       sv) < 0) {
		err = -errno;
		pr_perror("cannot create a unix socket pair");
		return err;
	}
	ctx->file_fds[xi] = sv[0];
	ctx->file_fds[yi] = sv[1];
	err = set_bufs(sv[0], BIG_BUF, BIG_BUF);
	if (!err)
		err = set_bufs(sv[1], BIG_BUF, BIG_BUF);
	if (err)
		pr_errno(err, "cannot size a new unix socket pair");
	return err;
}

/*
 * A connected stream or seqpacket pair x, y. The accepted end gets its
 * name from the listener it is accepted on, the client binds its own.
 */
static int build_pair(struct rst_ctx *ctx, size_t xi, size_t yi)
{
	const UnixSkEntry *x = ctx->files[xi]->unix_sk, *y = ctx->files[yi]->unix_sk;
	const UnixSkEntry *s, *c, *l = NULL;
	size_t si, ci, li;
	int lfd, tmp = -1, cfd = -1, afd = -1, err;
	char name[PATH_MAX];

	if (!x->has_name && !y->has_name && !x->has_listener && !y->has_listener)
		return make_socketpair(ctx, xi, yi);
	bool x_srv = x->has_listener || (!y->has_listener && x->has_name);
	si = x_srv ? xi : yi;
	ci = x_srv ? yi : xi;
	s = ctx->files[si]->unix_sk;
	c = ctx->files[ci]->unix_sk;
	if (s->has_listener) {
		l = find_sk(ctx, s->listener, &li);
		if (!l || l->state != UNIX_LISTEN || ctx->file_fds[li] < 0)
			return img_bad_at("files.img", si, "unix_sk.listener",
					  "socket:[%llu] names no listener socket:[%llu]",
					  (unsigned long long)s->ino, (unsigned long long)s->listener);
		lfd = ctx->file_fds[li];
	} else {
		/* The listener is gone: a temporary one with the name gives it. */
		tmp = sk_new(s, true);
		if (tmp < 0)
			return tmp;
		if (listen(tmp, 1) < 0) {
			err = -errno;
			pr_perror("cannot listen on '%s'", name_str(s, name, sizeof(name)));
			goto out;
		}
		l = s;
		lfd = tmp;
	}
	cfd = sk_new(c, true);
	if (cfd < 0) {
		err = cfd;
		goto out;
	}
	err = sk_at(SK_CONNECT, cfd, l, NULL, 0);
	if (err) {
		pr_errno(err, "cannot connect to '%s' again", name_str(l, name, sizeof(name)));
		goto out;
	}
	afd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (afd < 0) {
		err = -errno;
		pr_perror("cannot accept the connection to '%s' again", name_str(l, name, sizeof(name)));
		goto out;
	}
	err = set_bufs(afd, BIG_BUF, BIG_BUF);
	if (err) {
		pr_errno(err, "cannot size an accepted unix socket");
		goto out;
	}
	ctx->file_fds[si] = afd;
	ctx->file_fds[ci] = cfd;
	afd = cfd = -1;
out:
	if (tmp >= 0)
		close(tmp);
	if (cfd >= 0)
		close(cfd);
	if (afd >= 0)
		close(afd);
	return err;
}

/* Step 1: sockets that stand alone (and unnamed datagram pairs). */
static int build_single(struct rst_ctx *ctx, size_t i)
{
	const UnixSkEntry *u = ctx->files[i]->unix_sk, *p;
	char name[PATH_MAX];
	size_t pi = 0;
	int fd, err;

	p = find_sk(ctx, u->peer, &pi);
	if (u->type == SOCK_DGRAM && p && p->peer == u->ino && p->type == u->type) {
		/* Connected both ways: a socketpair, named afterwards if need be. */
		err = make_socketpair(ctx, i, pi);
		if (!err && u->has_name)
			err = sk_bind(ctx->file_fds[i], u);
		if (!err && p->has_name)
			err = sk_bind(ctx->file_fds[pi], p);
		return err;
	}
	if (u->type != SOCK_DGRAM && (u->state == UNIX_ESTABLISHED || (!u->has_state && u->peer)))
		return 0;	/* steps 2 and 3 */
	fd = sk_new(u, true);
	if (fd < 0)
		return fd;
	ctx->file_fds[i] = fd;
	if (u->state == UNIX_LISTEN && listen(fd, u->backlog) < 0) {
		err = -errno;
		pr_perror("cannot listen on '%s'", name_str(u, name, sizeof(name)));
		return err;
	}
	return 0;
}

/* Step 3: the clients in listener li's accept queue, oldest first. */
static int build_pending(struct rst_ctx *ctx, size_t li)
{
	const UnixSkEntry *l = ctx->files[li]->unix_sk;
	char name[PATH_MAX];

	for (size_t k = 0; k < l->n_pending; k++) {
		const UnixSkEntry *c;
		size_t ci;
		int fd, err;
		c = find_sk(ctx, l->pending[k], &ci);
		if (!c || c->type != l->type || ctx->file_fds[ci] >= 0)
			return img_bad_at("files.img", li, "unix_sk.pending",
					  "client socket:[%llu] is not a free socket of the dump",
					  (unsigned long long)l->pending[k]);
		fd = sk_new(c, true);
		if (fd < 0)
			return fd;
		ctx->file_fds[ci] = fd;
		err = sk_at(SK_CONNECT, fd, l, NULL, 0);
		if (err) {
			pr_errno(err, "cannot queue a connection on '%s' again",
				 name_str(l, name, sizeof(name)));
			return err;
		}
	}
	return 0;
}

/* Step 4: connect a datagram socket to its peer, unless a socketpair did. */
static int dgram_connect(struct rst_ctx *ctx, size_t i)
{
	const UnixSkEntry *u = ctx->files[i]->unix_sk, *p;
	char name[PATH_MAX];
	size_t pi = 0;
	int err;

	if (!u->peer)
		return 0;
	if (u->external) {
		/* Outside the dump: its name again (it is the daemon's to keep alive). */
		UnixSkEntry ext = *u;
		ext.name = u->peer_name;
		ext.dir = NULL;
		err = sk_at(SK_CONNECT, ctx->file_fds[i], &ext, NULL, 0);
		if (err)
			pr_warn("cannot connect a datagram socket to '%s' outside the dump again: %s; it stays unconnected",
				name_str(&ext, name, sizeof(name)), strerror(-err));
		return 0;
	}
	p = find_sk(ctx, u->peer, &pi);
	if (!p)
		return img_bad_at("files.img", i, "unix_sk.peer", "socket:[%llu] is not in the dump",
				  (unsigned long long)u->peer);
	if (p->peer == u->ino)
		return 0;	/* a socketpair */
	if (!p->has_name)
		return img_bad_at("files.img", i, "unix_sk.peer",
				  "connected to the unnamed socket:[%llu]", (unsigned long long)u->peer);
	err = sk_at(SK_CONNECT, ctx->file_fds[i], p, NULL, 0);
	if (err)
		pr_errno(err, "cannot connect a datagram socket to '%s' again",
			 name_str(p, name, sizeof(name)));
	return err;
}

/*
 * Step 4: the messages queued on datagram socket i, each sent again from
 * the bound socket of the dump that sent it; a message from elsewhere
 * comes from the receiver's peer when it is connected back, else from an
 * unnamed socket (its sender's name is lost).
 */
static int dgram_queue(struct rst_ctx *ctx, size_t i)
{
	const UnixSkEntry *r = ctx->files[i]->unix_sk, *p;
	char name[PATH_MAX];
	int tmp = -1, err = 0;
	size_t pi = 0;

	p = find_sk(ctx, r->peer, &pi);
	for (size_t m = 0; m < r->n_queue && !err; m++) {
		const ProtobufCBinaryData *from = m < r->n_queue_from ? &r->queue_from[m] : NULL;
		const ProtobufCBinaryData *msg = &r->queue[m];
		const UnixSkEntry *s = NULL;
		int sfd = -1;
		for (size_t k = 0; k < ctx->nr_files && from && from->len && !s; k++) {
			const UnixSkEntry *o = ctx->files[k]->unix_sk;
			if (is_unix(ctx, k) && o->type == SOCK_DGRAM && o->has_name &&
			    o->name.len == from->len && !memcmp(o->name.data, from->data, from->len)) {
				s = o;
				sfd = ctx->file_fds[k];
			}
		}
		if (from && from->len && !s)
			pr_warn("socket:[%llu]: a queued message from '%.*s', which is not in the dump, is queued again without its sender's name",
				(unsigned long long)r->ino, (int)from->len, (const char *)from->data);
		if (!s && p && p->peer == r->ino) {
			s = p;
			sfd = ctx->file_fds[pi];
		}
		if (!s) {
			if (tmp < 0)
				tmp = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
			if (tmp < 0 || set_bufs(tmp, BIG_BUF, BIG_BUF) < 0) {
				err = -errno;
				pr_perror("cannot create a unix socket");
				break;
			}
			sfd = tmp;
		}
		if (s && s->peer == r->ino) {
			if (send(sfd, msg->data, msg->len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
				err = -errno;
		} else if (r->has_name) {
			err = sk_at(SK_SENDTO, sfd, r, msg->data, msg->len);
		} else {
			return img_bad_at("files.img", i, "unix_sk.queue",
					  "messages queued on an unnamed socket nobody is connected to");
		}
		if (err)
			pr_errno(err, "cannot queue a message of %zu bytes on '%s' again", msg->len,
				 name_str(r, name, sizeof(name)));
	}
	if (tmp >= 0)
		close(tmp);
	return err;
}

static int set_shutdown(int fd, uint32_t how, uint32_t peer_how)
{
	/* A shutdown of one end also marks the peer's other direction. */
	if ((how & 2) && shutdown(fd, SHUT_WR) < 0)
		return -errno;
	if ((how & 1) && !(peer_how & 2) && shutdown(fd, SHUT_RD) < 0)
		return -errno;
	return 0;
}

/* Step 5: what the program set on the socket. */
static int finish(struct rst_ctx *ctx, size_t i)
{
	const FileEntry *e = ctx->files[i];
	const UnixSkEntry *u = e->unix_sk, *p;
	int fd = ctx->file_fds[i], one = 1, err;
	size_t pi = 0;

	p = find_sk(ctx, u->peer, &pi);
	err = set_bufs(fd, u->sndbuf, u->rcvbuf);
	if (!err && u->state != UNIX_LISTEN && u->shutdown)
		err = set_shutdown(fd, u->shutdown, p ? p->shutdown : 0);
	if (!err && u->passcred && setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0)
		err = -errno;
	for (int k = 0; k < 2 && !err; k++) {
		uint64_t us = k ? u->sndtimeo : u->rcvtimeo;
		struct timeval tv = { .tv_sec = us / 1000000, .tv_usec = us % 1000000 };
		if (us && setsockopt(fd, SOL_SOCKET, k ? SO_SNDTIMEO : SO_RCVTIMEO, &tv, sizeof(tv)) < 0)
			err = -errno;
	}
	if (!err && fcntl(fd, F_SETFL, e->flags & O_NONBLOCK) < 0)
		err = -errno;
	if (err)
		pr_errno(err, "cannot set the options of socket:[%llu]", (unsigned long long)u->ino);
	return err;
}

static int build_all(struct rst_ctx *ctx)
{
	int err = 0;

	for (size_t i = 0; i < ctx->nr_files && !err; i++)
		if (is_unix(ctx, i) && ctx->file_fds[i] < 0)
			err = build_single(ctx, i);
	for (size_t i = 0; i < ctx->nr_files && !err; i++) {
		const UnixSkEntry *u = ctx->files[i]->unix_sk, *p;
		size_t pi = 0;
		if (!is_unix(ctx, i) || ctx->file_fds[i] >= 0 || !u->peer)
			continue;
		p = find_sk(ctx, u->peer, &pi);
		if (!p || p->peer != u->ino || p->type != u->type || ctx->file_fds[pi] >= 0)
			return img_bad_at("files.img", i, "unix_sk.peer",
					  "socket:[%llu] has no matching peer socket:[%llu]",
					  (unsigned long long)u->ino, (unsigned long long)u->peer);
		err = build_pair(ctx, i, pi);
		if (!err)
			err = send_queue(ctx->file_fds[pi], u);
		if (!err)
			err = send_queue(ctx->file_fds[i], p);
	}
	for (size_t i = 0; i < ctx->nr_files && !err; i++)
		if (is_unix(ctx, i) && ctx->files[i]->unix_sk->n_pending)
			err = build_pending(ctx, i);
	for (size_t i = 0; i < ctx->nr_files && !err; i++) {
		if (!is_unix(ctx, i))
			continue;
		if (ctx->file_fds[i] < 0)
			return img_bad_at("files.img", i, "unix_sk",
					  "socket:[%llu] is connected to nothing of the dump",
					  (unsigned long long)ctx->files[i]->unix_sk->ino);
		if (ctx->files[i]->unix_sk->type == SOCK_DGRAM)
			err = dgram_connect(ctx, i);
	}
	for (size_t i = 0; i < ctx->nr_files && !err; i++)
		if (is_unix(ctx, i) && ctx->files[i]->unix_sk->type == SOCK_DGRAM)
			err = dgram_queue(ctx, i);
	for (size_t i = 0; i < ctx->nr_files && !err; i++)
		if (is_unix(ctx, i))
			err = finish(ctx, i);
	return err;
}

int restore_unix_open(struct rst_ctx *ctx, size_t idx)
{
	if (ctx->file_fds[idx] >= 0)
		return 0;
	/* Every unix socket of the dump at once: afterwards none is left to open. */
	return build_all(ctx);
}
