// SPDX-License-Identifier: MIT
/*
 * Unix sockets: state, peer, name, socket file and accept queue come from
 * sock_diag, the queued messages from MSG_PEEK on our own copy of the
 * socket (pidfd_getfd), walked with SO_PEEK_OFF so that nothing is
 * consumed and message boundaries are seen; the task's peek offset is put
 * back afterwards. Once every fd is known, dump_unix_resolve() checks that
 * every socket a socket is connected to is in the dump.
 */
#define LOG_PREFIX "files: "
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <linux/sockios.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include "dump.h"
#include "log.h"

#ifndef SO_PEEK_OFF
#define SO_PEEK_OFF 42
#endif

/* The largest message a unix socket can hold is bounded by its buffers. */
/* Socket states as sock_diag reports them (include/net/tcp_states.h). */
#define TCP_ESTABLISHED_	1
#define TCP_CLOSE_		7
#define TCP_LISTEN_		10

#define PEEK_BUF (8u << 20)

#define UNIX_NAME_MAX	(sizeof(((struct sockaddr_un *)0)->sun_path))
#define UNIX_MAX_PENDING 4096

struct unix_diag {
	uint32_t state;
	uint32_t peer;
	uint8_t shutdown;
	size_t name_len;
	char name[UNIX_NAME_MAX];
	bool has_vfs;
	struct unix_diag_vfs vfs;
	uint32_t backlog;
	size_t nr_icons;
	uint32_t icons[UNIX_MAX_PENDING];
};

static int diag_fd = -1;

/* One sock_diag lookup by inode, in ckpt's network namespace. */
static int unix_diag(uint64_t ino, struct unix_diag *ret)
{
	struct {
		struct nlmsghdr nlh;
		struct unix_diag_req r;
	} req = {
		.nlh = { .nlmsg_len = sizeof(req), .nlmsg_type = SOCK_DIAG_BY_FAMILY,
			 .nlmsg_flags = NLM_F_REQUEST },
		.r = { .sdiag_family = AF_UNIX, .udiag_states = -1, .udiag_ino = ino,
		       .udiag_show = UDIAG_SHOW_PEER | UDIAG_SHOW_NAME | UDIAG_SHOW_VFS |
				     UDIAG_SHOW_ICONS | UDIAG_SHOW_RQLEN,
		       .udiag_cookie = { ~0u, ~0u } },
	};
	static union {
		struct nlmsghdr nlh;
		char buf[8192 + UNIX_MAX_PENDING * 4];
	} resp;

	if (diag_fd < 0) {
		diag_fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
		if (diag_fd < 0)
			return -errno;
	}
	if (send(diag_fd, &req, sizeof(req), 0) != sizeof(req))
		return -errno;
	ssize_t n = recv(diag_fd, &resp, sizeof(resp), 0);
	if (n < 0)
		return -errno;
	struct nlmsghdr *h = &resp.nlh;
	if (!NLMSG_OK(h, (size_t)n))
		return -EBADMSG;
	if (h->nlmsg_type == NLMSG_ERROR) {
		struct nlmsgerr *e = NLMSG_DATA(h);
		return e->error ? e->error : -ENOENT;
	}
	if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY || h->nlmsg_len < NLMSG_LENGTH(sizeof(struct unix_diag_msg)))
		return -EBADMSG;
	struct unix_diag_msg *m = NLMSG_DATA(h);
	memset(ret, 0, sizeof(*ret));
	ret->state = m->udiag_state;
	size_t len = h->nlmsg_len - NLMSG_LENGTH(sizeof(*m));
	struct nlattr *a = (struct nlattr *)(m + 1);
	while (len >= sizeof(*a) && a->nla_len >= sizeof(*a) && a->nla_len <= len) {
		void *data = a + 1;
		switch (a->nla_type) {
		case UNIX_DIAG_PEER:
			memcpy(&ret->peer, data, sizeof(ret->peer));
			break;
		case UNIX_DIAG_NAME:
			ret->name_len = a->nla_len - sizeof(*a);
			if (ret->name_len > UNIX_NAME_MAX)
				return -EBADMSG;
			memcpy(ret->name, data, ret->name_len);
			break;
		case UNIX_DIAG_VFS:
			ret->has_vfs = true;
			memcpy(&ret->vfs, data, sizeof(ret->vfs));
			break;
		case UNIX_DIAG_RQLEN:
			ret->backlog = ((struct unix_diag_rqlen *)data)->udiag_wqueue;
			break;
		case UNIX_DIAG_ICONS:
			ret->nr_icons = (a->nla_len - sizeof(*a)) / sizeof(uint32_t);
			if (ret->nr_icons > UNIX_MAX_PENDING)
				return -E2BIG;
			memcpy(ret->icons, data, ret->nr_icons * sizeof(uint32_t));
			break;
		case UNIX_DIAG_SHUTDOWN:
			ret->shutdown = *(uint8_t *)data;
			break;
		}
		size_t step = NLA_ALIGN(a->nla_len);
		if (step >= len)
			break;
		len -= step;
		a = (struct nlattr *)((char *)a + step);
	}
	return 0;
}

/* Every message queued on sk, oldest first, into u->queue. */
static int peek_queue(int sk, pid_t pid, int fd, UnixSkEntry *u)
{
	int off, zero = 0, err = 0;
	socklen_t olen = sizeof(off);
	uint8_t *buf;

	if (getsockopt(sk, SOL_SOCKET, SO_PEEK_OFF, &off, &olen) < 0 ||
	    setsockopt(sk, SOL_SOCKET, SO_PEEK_OFF, &zero, sizeof(zero)) < 0) {
		err = -errno;
		pr_perror("cannot set a peek offset on fd %d of %d", fd, pid);
		return err;
	}
	buf = mmap(NULL, PEEK_BUF, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED) {
		err = -errno;
		goto out;
	}
	for (;;) {
		char cbuf[CMSG_SPACE(sizeof(int) * 16) + CMSG_SPACE(sizeof(struct ucred))];
		struct sockaddr_un from;
		struct iovec iov = { buf, PEEK_BUF };
		struct msghdr mh = { .msg_name = &from, .msg_namelen = sizeof(from),
				     .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
				     .msg_controllen = sizeof(cbuf) };
		ssize_t n = recvmsg(sk, &mh, MSG_PEEK | MSG_DONTWAIT | MSG_TRUNC | MSG_CMSG_CLOEXEC);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n < 0) {
			err = -errno;
			pr_perror("cannot read the queue of fd %d of %d", fd, pid);
			break;
		}
		/* SCM_RIGHTS on peek installs copies of the fds in ckpt: close them, refuse. */
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
				int *fds = (int *)CMSG_DATA(c);
				for (size_t k = 0; k < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); k++)
					close(fds[k]);
				err = -EOPNOTSUPP;
			}
		}
		if (err || (mh.msg_flags & MSG_CTRUNC)) {
			pr_err("fd %d of %d: a message in the socket's queue carries file descriptors (SCM_RIGHTS); not supported yet",
			       fd, pid);
			err = -EOPNOTSUPP;
			break;
		}
		if ((size_t)n > PEEK_BUF) {
			pr_err("fd %d of %d: a queued message of %zd bytes is too large", fd, pid, n);
			err = -E2BIG;
			break;
		}
		if (n == 0 && u->type == SOCK_STREAM)
			break;
		ProtobufCBinaryData *q = realloc(u->queue, (u->n_queue + 1) * sizeof(*q));
		if (!q) {
			err = -ENOMEM;
			break;
		}
		u->queue = q;
		if (u->type == SOCK_STREAM && u->n_queue) {
			/* A stream is one byte sequence: append. */
			uint8_t *d = realloc(q[0].data, q[0].len + n);
			if (!d) {
				err = -ENOMEM;
				break;
			}
			memcpy(d + q[0].len, buf, n);
			q[0].data = d;
			q[0].len += n;
			continue;
		}
		q[u->n_queue].data = malloc(n ? n : 1);
		if (!q[u->n_queue].data) {
			err = -ENOMEM;
			break;
		}
		memcpy(q[u->n_queue].data, buf, n);
		q[u->n_queue].len = n;
		u->n_queue++;
		if (u->type != SOCK_DGRAM)
			continue;
		/* Who sent it: restore sends it again from there when it can. */
		ProtobufCBinaryData *f = realloc(u->queue_from, u->n_queue * sizeof(*f));
		if (!f) {
			err = -ENOMEM;
			break;
		}
		u->queue_from = f;
		u->n_queue_from = u->n_queue;
		size_t flen = mh.msg_namelen > offsetof(struct sockaddr_un, sun_path)
				      ? mh.msg_namelen - offsetof(struct sockaddr_un, sun_path) : 0;
		f[u->n_queue - 1].len = flen;
		f[u->n_queue - 1].data = malloc(flen ? flen : 1);
		if (!f[u->n_queue - 1].data) {
			f[u->n_queue - 1].len = 0;
			err = -ENOMEM;
			break;
		}
		memcpy(f[u->n_queue - 1].data, from.sun_path, flen);
	}
	munmap(buf, PEEK_BUF);
out:
	if (setsockopt(sk, SOL_SOCKET, SO_PEEK_OFF, &off, sizeof(off)) < 0 && !err) {
		err = -errno;
		pr_perror("cannot put back the peek offset of fd %d of %d", fd, pid);
	}
	return err;
}

int dump_unix_domain(pid_t pid, int fd)
{
	int sk = dump_files_getfd(pid, fd), domain = -1;
	socklen_t len = sizeof(domain);

	if (sk >= 0 && getsockopt(sk, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0)
		domain = -1;
	if (sk >= 0)
		close(sk);
	return domain;
}

/* A name for messages: the path, or '@' and the abstract name. */
static const char *name_str(const uint8_t *name, size_t len, char *buf, size_t size)
{
	if (!len)
		snprintf(buf, size, "(unnamed)");
	else if (name[0])
		snprintf(buf, size, "%.*s", (int)len, (const char *)name);
	else
		snprintf(buf, size, "@%.*s", (int)len - 1, (const char *)name + 1);
	return buf;
}

/*
 * A path name must still lead to the socket's file (UNIX_DIAG_VFS; its
 * device is the kernel's dev_t, MAJOR << 20 | MINOR). A relative name is
 * resolved against the task's current directory, which must be the one
 * it was bound in.
 */
static int path_info(pid_t pid, int fd, const struct unix_diag *d, UnixSkEntry *u)
{
	char path[PATH_MAX + UNIX_NAME_MAX + 2], cwd[PATH_MAX], link[64];
	struct stat st;
	int err;

	if (d->name[0] != '/') {
		snprintf(link, sizeof(link), "/proc/%d/cwd", pid);
		ssize_t n = readlink(link, cwd, sizeof(cwd) - 1);
		if (n < 0) {
			err = -errno;
			pr_perror("cannot read the current directory of %d", pid);
			return err;
		}
		cwd[n] = 0;
		u->dir = strdup(cwd);
		if (!u->dir)
			return -ENOMEM;
		snprintf(path, sizeof(path), "%s/%.*s", cwd, (int)d->name_len, d->name);
	} else {
		snprintf(path, sizeof(path), "%.*s", (int)d->name_len, d->name);
	}
	if (!d->has_vfs || lstat(path, &st) < 0 || !S_ISSOCK(st.st_mode) ||
	    st.st_ino != d->vfs.udiag_vfs_ino ||
	    st.st_dev != makedev(d->vfs.udiag_vfs_dev >> 20, d->vfs.udiag_vfs_dev & 0xfffff)) {
		pr_err("fd %d of %d is a unix socket bound to '%s', which is no longer its socket file (removed, replaced%s); not supported",
		       fd, pid, path, u->dir ? ", or bound relative to another directory" : "");
		return -EOPNOTSUPP;
	}
	u->has_mode = u->has_uid = u->has_gid = true;
	u->mode = st.st_mode;
	u->uid = st.st_uid;
	u->gid = st.st_gid;
	return 0;
}

int dump_unix_socket(pid_t pid, int fd, uint64_t ino, UnixSkEntry **ret)
{
	struct unix_diag *d = NULL;
	int sk, type, domain, err, v;
	socklen_t len = sizeof(int);
	UnixSkEntry *u = NULL;

	sk = dump_files_getfd(pid, fd);
	if (sk < 0) {
		err = -errno;
		pr_perror("cannot get socket fd %d of %d", fd, pid);
		return err;
	}
	if (getsockopt(sk, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0 ||
	    getsockopt(sk, SOL_SOCKET, SO_TYPE, &type, &len) < 0) {
		err = -errno;
		pr_perror("cannot inspect socket fd %d of %d", fd, pid);
		goto out;
	}
	if (domain != AF_UNIX) {
		pr_err("fd %d of %d is a socket of family %d; not supported yet", fd, pid, domain);
		err = -EOPNOTSUPP;
		goto out;
	}
	d = malloc(sizeof(*d));
	u = calloc(1, sizeof(*u));
	if (!d || !u) {
		err = -ENOMEM;
		goto out;
	}
	err = unix_diag(ino, d);
	if (err) {
		pr_errno(err, "cannot query unix socket %llu (fd %d of %d) with sock_diag",
			 (unsigned long long)ino, fd, pid);
		goto out;
	}
	if (d->state != TCP_ESTABLISHED_ && d->state != TCP_CLOSE_ && d->state != TCP_LISTEN_) {
		pr_err("fd %d of %d is a unix socket in state %u; not supported", fd, pid, d->state);
		err = -EOPNOTSUPP;
		goto out;
	}
	unix_sk_entry__init(u);
	u->type = type;
	u->ino = ino;
	u->peer = d->peer;
	u->has_shutdown = true;
	u->shutdown = d->shutdown;
	u->has_state = true;
	u->state = d->state;
	if (d->name_len) {
		u->has_name = true;
		u->name.len = d->name_len;
		u->name.data = malloc(d->name_len);
		if (!u->name.data) {
			err = -ENOMEM;
			goto out;
		}
		memcpy(u->name.data, d->name, d->name_len);
		if (d->name[0]) {
			err = path_info(pid, fd, d, u);
			if (err)
				goto out;
		}
	}
	if (d->state == TCP_LISTEN_) {
		u->has_backlog = true;
		u->backlog = d->backlog;
		u->pending = malloc((d->nr_icons ? d->nr_icons : 1) * sizeof(*u->pending));
		if (!u->pending) {
			err = -ENOMEM;
			goto out;
		}
		for (size_t i = 0; i < d->nr_icons; i++)
			u->pending[i] = d->icons[i];
		u->n_pending = d->nr_icons;
	}
	if (d->peer) {
		struct unix_diag *pd = malloc(sizeof(*pd));
		if (pd && unix_diag(d->peer, pd) == 0 && pd->name_len) {
			u->peer_name.data = malloc(pd->name_len);
			if (u->peer_name.data) {
				memcpy(u->peer_name.data, pd->name, pd->name_len);
				u->peer_name.len = pd->name_len;
				u->has_peer_name = true;
			}
		}
		free(pd);
	}
	len = sizeof(v);
	if (getsockopt(sk, SOL_SOCKET, SO_SNDBUF, &v, &len) == 0)
		u->sndbuf = v;
	len = sizeof(v);
	if (getsockopt(sk, SOL_SOCKET, SO_RCVBUF, &v, &len) == 0)
		u->rcvbuf = v;
	len = sizeof(v);
	if (getsockopt(sk, SOL_SOCKET, SO_PASSCRED, &v, &len) == 0 && v)
		u->has_passcred = u->passcred = true;
	for (int k = 0; k < 2; k++) {
		struct timeval tv;
		len = sizeof(tv);
		if (getsockopt(sk, SOL_SOCKET, k ? SO_SNDTIMEO : SO_RCVTIMEO, &tv, &len) < 0 ||
		    (!tv.tv_sec && !tv.tv_usec))
			continue;
		uint64_t us = (uint64_t)tv.tv_sec * 1000000 + tv.tv_usec;
		if (k) {
			u->has_sndtimeo = true;
			u->sndtimeo = us;
		} else {
			u->has_rcvtimeo = true;
			u->rcvtimeo = us;
		}
	}
	if (ioctl(sk, SIOCOUTQ, &v) == 0 && v > 0) {
		u->has_outq = true;
		u->outq = v;
	}
	/* A listener's queue holds connections, not data; an unconnected stream has none. */
	if (d->state == TCP_ESTABLISHED_ || type == SOCK_DGRAM)
		err = peek_queue(sk, pid, fd, u);
out:
	close(sk);
	free(d);
	if (err) {
		dump_unix_free(u);
		return err;
	}
	*ret = u;
	return 0;
}

static const UnixSkEntry *find_sk(struct dump_ctx *ctx, uint64_t ino, size_t *ret_idx)
{
	for (size_t i = 0; i < ctx->nr_files && ino; i++) {
		const UnixSkEntry *u = ctx->files[i]->unix_sk;
		if (ctx->files[i]->kind == FILE_KIND__FILE_UNIX && u && u->ino == ino) {
			if (ret_idx)
				*ret_idx = i;
			return u;
		}
	}
	return NULL;
}

static bool same_name(const UnixSkEntry *a, const UnixSkEntry *b)
{
	return a->has_name && b->has_name && a->name.len == b->name.len &&
	       !memcmp(a->name.data, b->name.data, a->name.len) &&
	       !strcmp(a->dir ? a->dir : "", b->dir ? b->dir : "");
}

/* The listener of the dump whose accept queue holds client ino, or NULL. */
static const UnixSkEntry *pending_on(struct dump_ctx *ctx, uint64_t ino)
{
	for (size_t i = 0; i < ctx->nr_files; i++) {
		const UnixSkEntry *l = ctx->files[i]->unix_sk;
		if (ctx->files[i]->kind != FILE_KIND__FILE_UNIX || !l)
			continue;
		for (size_t k = 0; k < l->n_pending; k++)
			if (l->pending[k] == ino)
				return l;
	}
	return NULL;
}

int dump_unix_resolve(struct dump_ctx *ctx, const struct dump_file_origin *origins)
{
	char n1[UNIX_NAME_MAX + 2], n2[UNIX_NAME_MAX + 2];

	for (size_t i = 0; i < ctx->nr_files; i++) {
		UnixSkEntry *u = ctx->files[i]->unix_sk;
		pid_t pid = origins[i].pid;
		int fd = origins[i].fd;
		if (ctx->files[i]->kind != FILE_KIND__FILE_UNIX || !u)
			continue;
		const char *name = name_str(u->name.data, u->name.len, n1, sizeof(n1));
		const char *pname = name_str(u->peer_name.data, u->peer_name.len, n2, sizeof(n2));
		for (size_t k = 0; k < u->n_pending; k++) {
			if (!find_sk(ctx, u->pending[k], NULL)) {
				pr_err("fd %d of %d is unix socket '%s' listening with a connection not accepted yet from socket:[%llu], which is outside the dump; not supported",
				       fd, pid, name, (unsigned long long)u->pending[k]);
				return -EOPNOTSUPP;
			}
		}
		/* A datagram socket something connected to is ESTABLISHED too (Linux 5.15+). */
		if (u->state == TCP_LISTEN_ ||
		    (!u->peer && (u->state == TCP_CLOSE_ || u->type == SOCK_DGRAM)))
			continue;
		const UnixSkEntry *p = find_sk(ctx, u->peer, NULL);
		if (u->type != SOCK_DGRAM && !u->peer) {
			const UnixSkEntry *l = pending_on(ctx, u->ino);
			if (!l) {
				pr_err("fd %d of %d is a connected unix socket '%s' whose peer was closed; not supported yet",
				       fd, pid, name);
				return -EOPNOTSUPP;
			}
			if (u->outq) {
				pr_err("fd %d of %d: unix socket '%s' has sent data on a connection '%s' has not accepted yet, which cannot be read without accepting it; not supported",
				       fd, pid, name, name_str(l->name.data, l->name.len, n2, sizeof(n2)));
				return -EOPNOTSUPP;
			}
			continue;
		}
		if (!p && u->type == SOCK_DGRAM && ctx->opts->ext_unix_sk && u->has_peer_name &&
		    u->peer_name.len) {
			/* /dev/log and the like: the restore connects to the name again. */
			u->has_external = u->external = true;
			pr_info("fd %d of %d: datagram socket connected to '%s' outside the dump (--ext-unix-sk)",
				fd, pid, pname);
			continue;
		}
		if (!p) {
			pr_err("fd %d of %d is a unix socket '%s' connected to '%s' (socket:[%llu]) outside the dump; not supported%s",
			       fd, pid, name, pname, (unsigned long long)u->peer,
			       u->type == SOCK_DGRAM ? " (--ext-unix-sk connects a datagram socket to a named one again)" : "");
			return -EOPNOTSUPP;
		}
		if (u->type == SOCK_DGRAM) {
			if (p->peer != u->ino && !p->has_name) {
				pr_err("fd %d of %d is a unix datagram socket connected to an unnamed socket:[%llu] that is not connected back; not supported",
				       fd, pid, (unsigned long long)u->peer);
				return -EOPNOTSUPP;
			}
			continue;
		}
		/* An accepted end carries the name of its listener. */
		for (size_t k = 0; k < ctx->nr_files && u->has_name; k++) {
			const UnixSkEntry *l = ctx->files[k]->unix_sk;
			if (ctx->files[k]->kind == FILE_KIND__FILE_UNIX && l &&
			    l->state == TCP_LISTEN_ && l->type == u->type && same_name(l, u)) {
				u->has_listener = true;
				u->listener = l->ino;
			}
		}
	}
	return 0;
}

void dump_unix_free(UnixSkEntry *u)
{
	if (!u)
		return;
	for (size_t i = 0; i < u->n_queue; i++)
		free(u->queue[i].data);
	free(u->queue);
	for (size_t i = 0; i < u->n_queue_from; i++)
		free(u->queue_from[i].data);
	free(u->queue_from);
	free(u->name.data);
	free(u->peer_name.data);
	free(u->dir);
	free(u->pending);
	free(u);
}
