// SPDX-License-Identifier: MIT
/* Unix sockets on restore: both ends of a socket pair at once. */
#define LOG_PREFIX "files: "
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "image.h"
#include "log.h"
#include "restore.h"

static int send_queue(int fd, const UnixSkEntry *to, uint64_t id)
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
					  (unsigned long long)id);
				return err;
			}
			done += n;
		} while (done < m->len && to->type == SOCK_STREAM);
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

static int set_shutdown(int fd, uint32_t how, uint32_t peer_how)
{
	/* A shutdown of one end also marks the peer's other direction. */
	if ((how & 2) && shutdown(fd, SHUT_WR) < 0)
		return -errno;
	if ((how & 1) && !(peer_how & 2) && shutdown(fd, SHUT_RD) < 0)
		return -errno;
	return 0;
}

/*
 * Both ends of a socket pair at once: a new socketpair, each end's queue
 * sent again from the other end (one send per message keeps the
 * boundaries), then the buffer sizes and shutdowns as dumped.
 */
int restore_unix_open(struct rst_ctx *ctx, size_t idx)
{
	const FileEntry *e = ctx->files[idx];
	const UnixSkEntry *u = e->unix_sk, *pu = NULL;
	size_t peer = 0;
	int sv[2], big = 64 << 20, err;

	for (size_t i = 0; i < ctx->nr_files && !pu; i++) {
		const FileEntry *o = ctx->files[i];
		if (o->kind == FILE_KIND__FILE_UNIX && o->unix_sk->ino == u->peer && i != idx) {
			pu = o->unix_sk;
			peer = i;
		}
	}
	if (!pu || pu->peer != u->ino || pu->type != u->type)
		return img_bad_at("files.img", idx, "unix_sk.peer",
				  "socket:[%llu] has no matching peer socket:[%llu]",
				  (unsigned long long)u->ino, (unsigned long long)u->peer);
	if (socketpair(AF_UNIX, u->type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0) {
		err = -errno;
		pr_perror("cannot create a unix socket pair");
		return err;
	}
	err = set_bufs(sv[0], big, big);
	if (!err)
		err = set_bufs(sv[1], big, big);
	if (!err)
		err = send_queue(sv[1], u, u->ino);
	if (!err)
		err = send_queue(sv[0], pu, pu->ino);
	if (!err)
		err = set_bufs(sv[0], u->sndbuf, u->rcvbuf);
	if (!err)
		err = set_bufs(sv[1], pu->sndbuf, pu->rcvbuf);
	if (!err)
		err = set_shutdown(sv[0], u->shutdown, pu->shutdown);
	if (!err)
		err = set_shutdown(sv[1], pu->shutdown, u->shutdown);
	if (!err && (fcntl(sv[0], F_SETFL, e->flags & O_NONBLOCK) < 0 ||
		     fcntl(sv[1], F_SETFL, ctx->files[peer]->flags & O_NONBLOCK) < 0))
		err = -errno;
	if (err) {
		pr_errno(err, "cannot rebuild the unix socket pair socket:[%llu]",
			 (unsigned long long)u->ino);
		close(sv[0]);
		close(sv[1]);
		return err;
	}
	ctx->file_fds[idx] = sv[0];
	ctx->file_fds[peer] = sv[1];
	return 0;
}

