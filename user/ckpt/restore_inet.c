// SPDX-License-Identifier: MIT
/*
 * TCP and UDP sockets on restore, made in the engine like every file. An
 * established connection is rebuilt in TCP repair mode: with repair on,
 * bind may take a port in use (SK_FORCE_REUSE) and connect() moves the
 * socket straight to ESTABLISHED without a handshake; the queues are set
 * by TCP_QUEUE_SEQ and then filled with send() (into the receive queue, or
 * into the send queue as if already sent). Leaving repair mode sends a
 * window probe, so the peer acknowledges and both sides are in step. Bytes
 * the dumped socket had never sent are sent normally afterwards.
 */
#define LOG_PREFIX "files: "
#include <fcntl.h>


#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "image.h"
#include "log.h"
#include "restore.h"

static int setint(int sk, int level, int opt, int v)
{
	return setsockopt(sk, level, opt, &v, sizeof(v)) < 0 ? -errno : 0;
}

static bool bound(const InetSkEntry *e)
{
	if (!e->has_local)
		return false;
	if (e->family == AF_INET && e->local.len >= sizeof(struct sockaddr_in))
		return ((const struct sockaddr_in *)e->local.data)->sin_port != 0;
	if (e->family == AF_INET6 && e->local.len >= sizeof(struct sockaddr_in6))
		return ((const struct sockaddr_in6 *)e->local.data)->sin6_port != 0;
	return false;
}

static int send_all(int sk, const uint8_t *p, size_t len, int flags)
{
	while (len) {
		ssize_t n = send(sk, p, len, flags | MSG_NOSIGNAL);
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		len -= n;
	}
	return 0;
}

static int repair_queue(int sk, int queue, uint32_t seq)
{
	int err = setint(sk, SOL_TCP, TCP_REPAIR_QUEUE, queue);

	return err ? err : setint(sk, SOL_TCP, TCP_QUEUE_SEQ, seq);
}

static int restore_established(int sk, const InetSkEntry *e)
{
	size_t sendq = e->has_send_queue ? e->send_queue.len : 0;
	size_t recvq = e->has_recv_queue ? e->recv_queue.len : 0;
	size_t unsent = e->has_unsent ? e->unsent : 0;
	struct tcp_repair_opt opts[4];
	int n = 0, err;

	if (unsent > sendq)
		return -EINVAL;
	err = setint(sk, SOL_TCP, TCP_REPAIR, TCP_REPAIR_ON);
	/* The queues start where the dumped ones started: their ends minus their bytes. */
	if (!err)
		err = repair_queue(sk, TCP_SEND_QUEUE, e->snd_seq - sendq);
	if (!err)
		err = repair_queue(sk, TCP_RECV_QUEUE, e->rcv_seq - recvq);
	if (!err && bind(sk, (const struct sockaddr *)e->local.data, e->local.len) < 0)
		err = -errno;
	if (!err && connect(sk, (const struct sockaddr *)e->peer.data, e->peer.len) < 0)
		err = -errno;
	if (err)
		return err;
	if (e->has_mss)
		opts[n++] = (struct tcp_repair_opt){ TCPOPT_MAXSEG, e->mss };
	if (e->has_snd_wscale)
		opts[n++] = (struct tcp_repair_opt){ TCPOPT_WINDOW, e->snd_wscale | e->rcv_wscale << 16 };
	if (e->has_sack && e->sack)
		opts[n++] = (struct tcp_repair_opt){ TCPOPT_SACK_PERMITTED, 0 };
	if (e->has_timestamps && e->timestamps)
		opts[n++] = (struct tcp_repair_opt){ TCPOPT_TIMESTAMP, 0 };
	if (n && setsockopt(sk, SOL_TCP, TCP_REPAIR_OPTIONS, opts, n * sizeof(opts[0])) < 0)
		return -errno;
	if (e->has_tsval && (err = setint(sk, SOL_TCP, TCP_TIMESTAMP, e->tsval)))
		return err;
	err = setint(sk, SOL_TCP, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE);
	if (!err && recvq)
		err = send_all(sk, e->recv_queue.data, recvq, 0);
	if (!err)
		err = setint(sk, SOL_TCP, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE);
	if (!err && sendq - unsent)
		err = send_all(sk, e->send_queue.data, sendq - unsent, 0);
	if (err)
		return err;
	if (e->has_snd_wl1) {
		struct tcp_repair_window w = { e->snd_wl1, e->snd_wnd, e->max_window, e->rcv_wnd,
					       e->rcv_wup };
		if (setsockopt(sk, SOL_TCP, TCP_REPAIR_WINDOW, &w, sizeof(w)) < 0)
			return -errno;
	}
	/* Repair mode stays on until every task is restored (restore_inet_finish). */
	return 0;
}

static bool same_addr(const ProtobufCBinaryData *a, const ProtobufCBinaryData *b)
{
	return a->len == b->len && !memcmp(a->data, b->data, a->len);
}

/* Where to send to reach a socket bound to local: a wildcard address becomes loopback. */
static socklen_t reach(const InetSkEntry *e, struct sockaddr_storage *to)
{
	memcpy(to, e->local.data, e->local.len);
	if (e->family == AF_INET) {
		struct sockaddr_in *s = (struct sockaddr_in *)to;
		if (s->sin_addr.s_addr == htonl(INADDR_ANY))
			s->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	} else {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)to;
		if (IN6_IS_ADDR_UNSPECIFIED(&s->sin6_addr))
			s->sin6_addr = in6addr_loopback;
	}
	return e->local.len;
}

/*
 * The datagrams that waited on UDP socket i, sent again in order from
 * their senders' addresses: from the restored socket bound there if it is
 * in the dump, else from a socket of ours bound there for the moment
 * (IP_FREEBIND, reuse). A sender whose address is taken by a socket
 * outside the dump cannot be impersonated: that datagram is lost, with a
 * warning (UDP may lose datagrams).
 */
static void udp_refill(struct rst_ctx *ctx, size_t i)
{
	const InetSkEntry *e = ctx->files[i]->inet_sk;
	struct sockaddr_storage to;
	socklen_t tolen;

	if (!e->has_local || e->n_queue != e->n_queue_from)
		return;
	tolen = reach(e, &to);
	for (size_t k = 0; k < e->n_queue; k++) {
		const ProtobufCBinaryData *from = &e->queue_from[k];
		int s = -1, own = -1;
		for (size_t j = 0; j < ctx->nr_files && s < 0; j++) {
			const FileEntry *o = ctx->files[j];
			if (o->kind == FILE_KIND__FILE_INET && o->inet_sk->type == SOCK_DGRAM &&
			    o->inet_sk->has_local && same_addr(&o->inet_sk->local, from) &&
			    ctx->file_fds[j] >= 0)
				s = ctx->file_fds[j];
		}
		if (s < 0 && from->len >= sizeof(sa_family_t)) {
			own = socket(e->family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
			if (own >= 0 && (setint(own, SOL_SOCKET, SO_REUSEADDR, 1) ||
					 setint(own, SOL_SOCKET, SO_REUSEPORT, 1) ||
					 setint(own, e->family == AF_INET ? SOL_IP : SOL_IPV6,
						e->family == AF_INET ? IP_FREEBIND : IPV6_FREEBIND, 1) ||
					 bind(own, (const struct sockaddr *)from->data, from->len) < 0)) {
				close(own);
				own = -1;
			}
			s = own;
		}
		if (s < 0 || sendto(s, e->queue[k].data, e->queue[k].len, MSG_DONTWAIT,
				    (struct sockaddr *)&to, tolen) != (ssize_t)e->queue[k].len)
			pr_warn("a datagram of %zu bytes that waited on UDP file %u is lost: its sender's address is taken",
				e->queue[k].len, ctx->files[i]->id);
		if (own >= 0)
			close(own);
	}
}

/*
 * Every task is restored: connections leave repair mode (the window probe
 * tells the peer where we are) and send what the dumped socket had not
 * sent yet. Until now a failed restore could close them without a trace.
 */
int restore_inet_finish(struct rst_ctx *ctx)
{
	for (size_t i = 0; i < ctx->nr_files; i++) {
		const FileEntry *f = ctx->files[i];
		const InetSkEntry *e = f->inet_sk;
		int sk = ctx->file_fds[i], err;
		if (f->kind == FILE_KIND__FILE_INET && e->type == SOCK_DGRAM && e->n_queue && sk >= 0)
			udp_refill(ctx, i);
		if (f->kind != FILE_KIND__FILE_INET || e->type != SOCK_STREAM ||
		    e->state != TCP_ESTABLISHED || sk < 0)
			continue;
		size_t unsent = e->has_unsent ? e->unsent : 0;
		err = setint(sk, SOL_TCP, TCP_REPAIR, TCP_REPAIR_OFF);
		if (!err && unsent)
			err = send_all(sk, e->send_queue.data + e->send_queue.len - unsent, unsent,
				       MSG_DONTWAIT);
		if (err) {
			pr_errno(err, "cannot resume the TCP connection of file %u", f->id);
			return err;
		}
	}
	return 0;
}

int restore_inet_open(const FileEntry *f)
{
	const InetSkEntry *e = f->inet_sk;
	int sk = socket(e->family, e->type | SOCK_CLOEXEC, 0), err = 0;

	if (sk < 0) {
		err = -errno;
		pr_perror("cannot create a socket (family %u, type %u)", e->family, e->type);
		return err;
	}
	if (e->has_v6only && e->family == AF_INET6)
		err = setint(sk, SOL_IPV6, IPV6_V6ONLY, e->v6only);
	/* The kernel doubles what it is given; getsockopt showed the doubled value. */
	if (!err && e->has_sndbuf && e->sndbuf)
		err = setint(sk, SOL_SOCKET, SO_SNDBUFFORCE, e->sndbuf / 2);
	if (!err && e->has_rcvbuf && e->rcvbuf)
		err = setint(sk, SOL_SOCKET, SO_RCVBUFFORCE, e->rcvbuf / 2);
	if (!err && e->has_keepalive)
		err = setint(sk, SOL_SOCKET, SO_KEEPALIVE, e->keepalive);
	if (!err && e->has_reuseport)
		err = setint(sk, SOL_SOCKET, SO_REUSEPORT, e->reuseport);
	if (!err && e->has_nodelay && e->type == SOCK_STREAM)
		err = setint(sk, SOL_TCP, TCP_NODELAY, e->nodelay);
	if (err)
		goto fail;
	if (e->type == SOCK_STREAM && e->state == TCP_ESTABLISHED) {
		err = restore_established(sk, e);
	} else {
		/*
		 * The dumped task's connections on this port may linger in
		 * TIME_WAIT, whose sockets did not allow reuse: bind a TCP
		 * socket in repair mode (SK_FORCE_REUSE). listen() checks the
		 * port again without it: with SO_REUSEADDR it passes TIME_WAIT
		 * sockets that allowed reuse (those of a listener that set
		 * SO_REUSEADDR), others still fail (EADDRINUSE).
		 */
		bool tcp = e->type == SOCK_STREAM;
		err = setint(sk, SOL_SOCKET, SO_REUSEADDR, 1);
		if (!err && tcp && bound(e))
			err = setint(sk, SOL_TCP, TCP_REPAIR, TCP_REPAIR_ON);
		if (!err && bound(e) &&
		    bind(sk, (const struct sockaddr *)e->local.data, e->local.len) < 0)
			err = -errno;
		/* Repair mode can only be left in state CLOSE: before listen(). */
		if (!err && tcp && bound(e))
			err = setint(sk, SOL_TCP, TCP_REPAIR, TCP_REPAIR_OFF_NO_WP);
		/* Leaving repair mode cleared sk_reuse: TIME_WAIT that allows reuse needs it. */
		if (!err)
			err = setint(sk, SOL_SOCKET, SO_REUSEADDR, 1);
		if (!err && e->state == TCP_LISTEN && listen(sk, e->has_backlog ? e->backlog : 128) < 0)
			err = -errno;
		if (!err && e->type == SOCK_DGRAM && e->has_peer &&
		    connect(sk, (const struct sockaddr *)e->peer.data, e->peer.len) < 0)
			err = -errno;
		if (!err)
			err = setint(sk, SOL_SOCKET, SO_REUSEADDR, e->has_reuseaddr && e->reuseaddr);
	}
	if (!err && fcntl(sk, F_SETFL, f->flags & O_NONBLOCK) < 0)
		err = -errno;
	if (!err)
		return sk;
fail:
	pr_errno(err, "cannot restore the %s %s socket of file %u",
		 e->family == AF_INET ? "IPv4" : "IPv6", e->type == SOCK_STREAM ? "TCP" : "UDP", f->id);
	close(sk);
	return err;
}
