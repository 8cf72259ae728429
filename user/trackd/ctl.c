// SPDX-License-Identifier: MIT
#define LOG_PREFIX "ctl: "
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctl.h"
#include "log.h"

static int ctl_addr(int dirfd, struct sockaddr_un *sun)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (snprintf(sun->sun_path, sizeof(sun->sun_path), "/proc/self/fd/%d/%s", dirfd,
		     CTL_SOCK) >= (int)sizeof(sun->sun_path))
		return -ENAMETOOLONG;
	return 0;
}

int ctl_listen(int dirfd)
{
	struct sockaddr_un sun;
	int sk, err;

	err = ctl_addr(dirfd, &sun);
	if (err)
		return err;
	sk = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (sk < 0) {
		err = -errno;
		pr_perror("cannot create the control socket");
		return err;
	}
	/* The lock file says nobody else runs here: a socket left by a crash is stale. */
	(void)unlinkat(dirfd, CTL_SOCK, 0);
	if (bind(sk, (struct sockaddr *)&sun, sizeof(sun)) || listen(sk, 16)) {
		err = -errno;
		pr_perror("cannot listen on the control socket '%s'", CTL_SOCK);
		close(sk);
		return err;
	}
	return sk;
}

int ctl_connect(int dirfd)
{
	struct sockaddr_un sun;
	int sk, err;

	err = ctl_addr(dirfd, &sun);
	if (err)
		return err;
	sk = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (sk < 0)
		return -errno;
	if (connect(sk, (struct sockaddr *)&sun, sizeof(sun))) {
		err = -errno;
		close(sk);
		return err;
	}
	return sk;
}

int ctl_send(int sk, const char *msg, size_t len, int fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { (void *)msg, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (fd >= 0) {
		memset(&u, 0, sizeof(u));
		mh.msg_control = u.buf;
		mh.msg_controllen = sizeof(u.buf);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	ssize_t n = sendmsg(sk, &mh, MSG_NOSIGNAL);

	if (n < 0)
		return -errno;
	return n == (ssize_t)len ? 0 : -EIO;
}

long ctl_recv(int sk, char *buf, size_t len, int *ret_fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { buf, len - 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			     .msg_controllen = sizeof(u.buf) };
	int fd = -1;
	ssize_t n;

	n = recvmsg(sk, &mh, MSG_CMSG_CLOEXEC);
	if (n < 0)
		return -errno;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
		    c->cmsg_len == CMSG_LEN(sizeof(int)))
			memcpy(&fd, CMSG_DATA(c), sizeof(int));
	}
	if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
		if (fd >= 0)
			close(fd);
		return -EMSGSIZE;
	}
	buf[n] = 0;
	if (ret_fd)
		*ret_fd = fd;
	else if (fd >= 0)
		close(fd);
	return n;
}
