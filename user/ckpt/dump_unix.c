// SPDX-License-Identifier: MIT
/*
 * Unnamed connected unix sockets (socketpair): the peer comes from
 * sock_diag, the queued messages from MSG_PEEK on our own copy of the
 * socket (pidfd_getfd), walked with SO_PEEK_OFF so that nothing is
 * consumed and message boundaries are seen; the task's peek offset is put
 * back afterwards.
 */
#define LOG_PREFIX "files: "
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dump.h"
#include "log.h"

#ifndef SO_PEEK_OFF
#define SO_PEEK_OFF 42
#endif

/* The largest message a unix socket can hold is bounded by its buffers. */
#define PEEK_BUF (8u << 20)

struct unix_diag {
	uint32_t state;
	uint32_t peer;
	bool named;
	uint8_t shutdown;
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
		       .udiag_show = UDIAG_SHOW_PEER | UDIAG_SHOW_NAME,
		       .udiag_cookie = { ~0u, ~0u } },
	};
	union {
		struct nlmsghdr nlh;
		char buf[8192];
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
			ret->named = a->nla_len > sizeof(*a);
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
		char cbuf[CMSG_SPACE(sizeof(int) * 16)];
		struct iovec iov = { buf, PEEK_BUF };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
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

int dump_unix_socket(pid_t pid, int fd, uint64_t ino, UnixSkEntry **ret)
{
	struct unix_diag d;
	int sk, type, domain, err;
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
		pr_err("fd %d of %d is a socket of family %d; only unix socket pairs are supported yet",
		       fd, pid, domain);
		err = -EOPNOTSUPP;
		goto out;
	}
	err = unix_diag(ino, &d);
	if (err) {
		pr_errno(err, "cannot query unix socket %llu (fd %d of %d) with sock_diag",
			 (unsigned long long)ino, fd, pid);
		goto out;
	}
	if (d.named || !d.peer || d.state != 1 /* TCP_ESTABLISHED */) {
		pr_err("fd %d of %d is a unix socket that is %s; only connected pairs of unnamed sockets are supported yet",
		       fd, pid, d.named ? "bound to an address" : !d.peer ? "not connected" : "listening");
		err = -EOPNOTSUPP;
		goto out;
	}
	u = calloc(1, sizeof(*u));
	if (!u) {
		err = -ENOMEM;
		goto out;
	}
	unix_sk_entry__init(u);
	u->type = type;
	u->ino = ino;
	u->peer = d.peer;
	u->has_shutdown = true;
	u->shutdown = d.shutdown;
	int v;
	len = sizeof(v);
	if (getsockopt(sk, SOL_SOCKET, SO_SNDBUF, &v, &len) == 0)
		u->sndbuf = v;
	len = sizeof(v);
	if (getsockopt(sk, SOL_SOCKET, SO_RCVBUF, &v, &len) == 0)
		u->rcvbuf = v;
	err = peek_queue(sk, pid, fd, u);
out:
	close(sk);
	if (err) {
		dump_unix_free(u);
		return err;
	}
	*ret = u;
	return 0;
}

void dump_unix_free(UnixSkEntry *u)
{
	if (!u)
		return;
	for (size_t i = 0; i < u->n_queue; i++)
		free(u->queue[i].data);
	free(u->queue);
	free(u);
}
