// SPDX-License-Identifier: MIT
/*
 * TCP and UDP sockets over IPv4 and IPv6. An established TCP connection is
 * read in TCP repair mode (Linux 3.5+, CAP_NET_ADMIN) through ckpt's own
 * copy of the socket (pidfd_getfd): sequence numbers, both queues (recv
 * with MSG_PEEK returns the queue chosen by TCP_REPAIR_QUEUE), the options
 * negotiated at the handshake, the window and the timestamp clock. The
 * socket stays in repair mode while the dump goes on; if the dump kills
 * the task, ckpt's copy is closed last, and a socket in repair mode closes
 * without a FIN or RST (tcp_close), so the peer sees nothing. Otherwise
 * repair mode is turned off again without a window probe.
 */
#define LOG_PREFIX "files: "
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/sockios.h>

#include "dump.h"
#include "log.h"
#include "proc.h"

static const char *const tcp_states[] = {
	[TCP_ESTABLISHED] = "ESTABLISHED", [TCP_SYN_SENT] = "SYN_SENT",
	[TCP_SYN_RECV] = "SYN_RECV", [TCP_FIN_WAIT1] = "FIN_WAIT1",
	[TCP_FIN_WAIT2] = "FIN_WAIT2", [TCP_TIME_WAIT] = "TIME_WAIT",
	[TCP_CLOSE] = "CLOSE", [TCP_CLOSE_WAIT] = "CLOSE_WAIT",
	[TCP_LAST_ACK] = "LAST_ACK", [TCP_LISTEN] = "LISTEN", [TCP_CLOSING] = "CLOSING",
};

static int getint(int sk, int level, int opt, int *ret)
{
	socklen_t len = sizeof(*ret);

	return getsockopt(sk, level, opt, ret, &len) < 0 ? -errno : 0;
}

static int set_bytes(ProtobufCBinaryData *b, protobuf_c_boolean *has, const void *data, size_t len)
{
	b->data = malloc(len ? len : 1);
	if (!b->data)
		return -ENOMEM;
	memcpy(b->data, data, len);
	b->len = len;
	*has = true;
	return 0;
}

/* Names of the socket, kept as sockaddr bytes; an unbound one has port 0. */
static int sock_names(int sk, InetSkEntry *e, bool peer)
{
	struct sockaddr_storage a;
	socklen_t len = sizeof(a);
	int err;

	if (getsockname(sk, (struct sockaddr *)&a, &len) < 0)
		return -errno;
	err = set_bytes(&e->local, &e->has_local, &a, len);
	if (err || !peer)
		return err;
	len = sizeof(a);
	if (getpeername(sk, (struct sockaddr *)&a, &len) < 0)
		return errno == ENOTCONN ? 0 : -errno;
	return set_bytes(&e->peer, &e->has_peer, &a, len);
}

/* One queue, read in repair mode: MSG_PEEK shows it without consuming it. */
static int peek_queue(int sk, int queue, size_t len, ProtobufCBinaryData *b,
		      protobuf_c_boolean *has)
{
	uint8_t *buf = malloc(len ? len : 1);
	int err = 0;

	if (!buf)
		return -ENOMEM;
	if (setsockopt(sk, SOL_TCP, TCP_REPAIR_QUEUE, &queue, sizeof(queue)) < 0) {
		err = -errno;
		goto out;
	}
	/* MSG_PEEK starts over from the head each time: one call must take it all. */
	if (len) {
		ssize_t n = recv(sk, buf, len, MSG_PEEK | MSG_DONTWAIT);
		if (n != (ssize_t)len) {
			err = n < 0 ? -errno : -EIO;
			goto out;
		}
	}
	b->data = buf;
	b->len = len;
	*has = true;
	return 0;
out:
	free(buf);
	return err;
}

/*
 * The datagrams waiting on a UDP socket, with their senders: MSG_PEEK
 * walked with SO_PEEK_OFF (udp_recvmsg honours it), the task's offset put
 * back afterwards.
 */
static int peek_datagrams(int sk, InetSkEntry *e)
{
	static uint8_t buf[65536];
	int off, zero = 0, err = 0;
	socklen_t olen = sizeof(off);

	if (getsockopt(sk, SOL_SOCKET, SO_PEEK_OFF, &off, &olen) < 0 ||
	    setsockopt(sk, SOL_SOCKET, SO_PEEK_OFF, &zero, sizeof(zero)) < 0)
		return -errno;
	for (size_t n = 0; n < 4096 && !err; n++) {
		struct sockaddr_storage from;
		struct iovec iov = { buf, sizeof(buf) };
		struct msghdr mh = { .msg_name = &from, .msg_namelen = sizeof(from), .msg_iov = &iov,
				     .msg_iovlen = 1 };
		ssize_t got = recvmsg(sk, &mh, MSG_PEEK | MSG_DONTWAIT);
		if (got < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				err = -errno;
			break;
		}
		ProtobufCBinaryData *q = realloc(e->queue, (e->n_queue + 1) * sizeof(*q));
		ProtobufCBinaryData *f = q ? realloc(e->queue_from, (e->n_queue_from + 1) * sizeof(*f)) : NULL;
		if (q)
			e->queue = q;
		if (f)
			e->queue_from = f;
		if (!q || !f) {
			err = -ENOMEM;
			break;
		}
		q[e->n_queue].data = malloc(got ? got : 1);
		f[e->n_queue_from].data = malloc(mh.msg_namelen ? mh.msg_namelen : 1);
		if (!q[e->n_queue].data || !f[e->n_queue_from].data) {
			free(q[e->n_queue].data);
			free(f[e->n_queue_from].data);
			err = -ENOMEM;
			break;
		}
		memcpy(q[e->n_queue].data, buf, got);
		q[e->n_queue++].len = got;
		memcpy(f[e->n_queue_from].data, &from, mh.msg_namelen);
		f[e->n_queue_from++].len = mh.msg_namelen;
	}
	if (setsockopt(sk, SOL_SOCKET, SO_PEEK_OFF, &off, sizeof(off)) < 0 && !err)
		err = -errno;
	return err;
}

static int dump_tcp_established(struct dump_ctx *ctx, int sk, pid_t pid, int fd, InetSkEntry *e)
{
	struct tcp_info ti;
	struct tcp_repair_window w;
	socklen_t len = sizeof(ti);
	int on = 1, seq, inq = 0, outq = 0, unsent = 0, mss = 0, ts = 0, err;
	int queue;

	if (getsockopt(sk, SOL_TCP, TCP_INFO, &ti, &len) < 0)
		return -errno;
	if (ioctl(sk, SIOCINQ, &inq) < 0 || ioctl(sk, SIOCOUTQ, &outq) < 0 ||
	    ioctl(sk, SIOCOUTQNSD, &unsent) < 0)
		return -errno;
	/* Kept from now on: dump_inet_done() takes it out of repair mode, whatever fails. */
	err = dump_inet_keep(ctx, sk);
	if (err)
		return err;
	if (setsockopt(sk, SOL_TCP, TCP_REPAIR, &on, sizeof(on)) < 0) {
		err = -errno;
		pr_perror("cannot put the TCP connection of fd %d of %d in repair mode", fd, pid);
		return err;
	}
	queue = TCP_RECV_QUEUE;
	err = setsockopt(sk, SOL_TCP, TCP_REPAIR_QUEUE, &queue, sizeof(queue)) < 0 ? -errno : 0;
	if (!err)
		err = getint(sk, SOL_TCP, TCP_QUEUE_SEQ, &seq);
	if (err)
		return err;
	e->has_rcv_seq = true;
	e->rcv_seq = seq;
	queue = TCP_SEND_QUEUE;
	err = setsockopt(sk, SOL_TCP, TCP_REPAIR_QUEUE, &queue, sizeof(queue)) < 0 ? -errno : 0;
	if (!err)
		err = getint(sk, SOL_TCP, TCP_QUEUE_SEQ, &seq);
	if (err)
		return err;
	e->has_snd_seq = true;
	e->snd_seq = seq;
	err = peek_queue(sk, TCP_RECV_QUEUE, inq, &e->recv_queue, &e->has_recv_queue);
	if (!err)
		err = peek_queue(sk, TCP_SEND_QUEUE, outq, &e->send_queue, &e->has_send_queue);
	if (err) {
		pr_errno(err, "cannot read the queues of the TCP connection of fd %d of %d", fd, pid);
		return err;
	}
	e->has_unsent = true;
	e->unsent = unsent;
	if (!getint(sk, SOL_TCP, TCP_MAXSEG, &mss)) {
		e->has_mss = true;
		e->mss = mss;
	}
	e->has_sack = e->has_timestamps = true;
	e->sack = ti.tcpi_options & TCPI_OPT_SACK;
	e->timestamps = ti.tcpi_options & TCPI_OPT_TIMESTAMPS;
	if (ti.tcpi_options & TCPI_OPT_WSCALE) {
		e->has_snd_wscale = e->has_rcv_wscale = true;
		e->snd_wscale = ti.tcpi_snd_wscale;
		e->rcv_wscale = ti.tcpi_rcv_wscale;
	}
	if (e->timestamps && !getint(sk, SOL_TCP, TCP_TIMESTAMP, &ts)) {
		e->has_tsval = true;
		e->tsval = ts;
	}
	len = sizeof(w);
	if (getsockopt(sk, SOL_TCP, TCP_REPAIR_WINDOW, &w, &len) == 0) {
		e->has_snd_wl1 = e->has_snd_wnd = e->has_max_window = true;
		e->has_rcv_wnd = e->has_rcv_wup = true;
		e->snd_wl1 = w.snd_wl1;
		e->snd_wnd = w.snd_wnd;
		e->max_window = w.max_window;
		e->rcv_wnd = w.rcv_wnd;
		e->rcv_wup = w.rcv_wup;
	}
	return 0;
}

int dump_inet_socket(struct dump_ctx *ctx, pid_t pid, int fd, int domain, InetSkEntry **ret)
{
	InetSkEntry *e = calloc(1, sizeof(*e));
	int sk, type, proto, v, err;

	if (!e)
		return -ENOMEM;
	inet_sk_entry__init(e);
	sk = dump_files_getfd(pid, fd);
	if (sk < 0) {
		err = -errno;
		pr_perror("cannot get socket fd %d of %d", fd, pid);
		goto fail;
	}
	err = getint(sk, SOL_SOCKET, SO_TYPE, &type);
	if (!err)
		err = getint(sk, SOL_SOCKET, SO_PROTOCOL, &proto);
	if (err)
		goto fail;
	e->family = domain;
	e->type = type;
	if (!((type == SOCK_STREAM && proto == IPPROTO_TCP) || (type == SOCK_DGRAM && proto == IPPROTO_UDP))) {
		pr_err("fd %d of %d is an %s socket of type %d, protocol %d; only TCP and UDP are supported",
		       fd, pid, domain == AF_INET ? "IPv4" : "IPv6", type, proto);
		err = -EOPNOTSUPP;
		goto fail;
	}
	e->has_reuseaddr = e->has_reuseport = e->has_sndbuf = e->has_rcvbuf = true;
	if (!getint(sk, SOL_SOCKET, SO_REUSEADDR, &v))
		e->reuseaddr = v;
	if (!getint(sk, SOL_SOCKET, SO_REUSEPORT, &v))
		e->reuseport = v;
	if (!getint(sk, SOL_SOCKET, SO_SNDBUF, &v))
		e->sndbuf = v;
	if (!getint(sk, SOL_SOCKET, SO_RCVBUF, &v))
		e->rcvbuf = v;
	if (domain == AF_INET6 && !getint(sk, SOL_IPV6, IPV6_V6ONLY, &v)) {
		e->has_v6only = true;
		e->v6only = v;
	}
	e->has_keepalive = true;
	if (!getint(sk, SOL_SOCKET, SO_KEEPALIVE, &v))
		e->keepalive = v;
	if (type == SOCK_DGRAM) {
		int inq = 0;
		e->state = TCP_CLOSE;
		err = sock_names(sk, e, true);
		if (err)
			goto fail;
		if (e->has_peer)
			e->state = TCP_ESTABLISHED;
		if (ioctl(sk, SIOCINQ, &inq) == 0 && inq) {
			err = peek_datagrams(sk, e);
			if (err) {
				pr_errno(err, "cannot read the datagrams waiting on fd %d of %d", fd, pid);
				goto fail;
			}
		}
		goto out;
	}
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	if (getsockopt(sk, SOL_TCP, TCP_INFO, &ti, &len) < 0) {
		err = -errno;
		goto fail;
	}
	e->state = ti.tcpi_state;
	e->has_nodelay = true;
	if (!getint(sk, SOL_TCP, TCP_NODELAY, &v))
		e->nodelay = v;
	switch (ti.tcpi_state) {
	case TCP_CLOSE:
		err = sock_names(sk, e, false);
		break;
	case TCP_LISTEN:
		/* tcp_get_info: for a listener, unacked is the accept queue, sacked its limit. */
		if (ti.tcpi_unacked) {
			/* Usually a moment: the caller lets the task run and tries again. */
			if (ctx->last_attempt)
				pr_err("fd %d of %d is a TCP listener with %u connection(s) not accepted yet; not supported yet",
				       fd, pid, ti.tcpi_unacked);
			else
				pr_info("fd %d of %d: a TCP listener with %u connection(s) not accepted yet",
					fd, pid, ti.tcpi_unacked);
			err = ctx->last_attempt ? -EOPNOTSUPP : -EAGAIN;
			ctx->retry = !ctx->last_attempt;
			break;
		}
		e->has_backlog = true;
		e->backlog = ti.tcpi_sacked;
		err = sock_names(sk, e, false);
		break;
	case TCP_ESTABLISHED:
		err = sock_names(sk, e, true);
		if (!err)
			err = dump_tcp_established(ctx, sk, pid, fd, e);
		break;
	default:
		pr_err("fd %d of %d is a TCP socket in state %s; not supported yet", fd, pid,
		       ti.tcpi_state < sizeof(tcp_states) / sizeof(tcp_states[0]) &&
				       tcp_states[ti.tcpi_state] ? tcp_states[ti.tcpi_state] : "?");
		err = -EOPNOTSUPP;
	}
	if (err)
		goto fail;
out:
	if (sk >= 0)
		close(sk);
	*ret = e;
	return 0;
fail:
	if (err && err != -EOPNOTSUPP && err != -EAGAIN)
		pr_errno(err, "cannot dump socket fd %d of %d", fd, pid);
	if (sk >= 0)
		close(sk);
	dump_inet_free(e);
	return err;
}

/*
 * Hold new connections off a listener while the tree is frozen: a socket
 * filter that drops everything runs on a listener's incoming SYNs
 * (tcp_v4_rcv / tcp_v6_rcv: tcp_filter on the listening socket), so the
 * kernel completes no handshake the dump would miss; the client sends its
 * SYN again a second later, to the restored listener. A listener that has
 * a filter of the task's own is left alone.
 */
static int block_listener(struct dump_ctx *ctx, int sk)
{
	struct sock_filter drop = BPF_STMT(BPF_RET | BPF_K, 0);
	struct sock_fprog prog = { .len = 1, .filter = &drop };
	socklen_t len = 0;
	int *n;

	if (getsockopt(sk, SOL_SOCKET, SO_GET_FILTER, NULL, &len) == 0 && len)
		return 0;
	if (setsockopt(sk, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) < 0)
		return -errno;
	n = realloc(ctx->blocked_sks, (ctx->nr_blocked_sks + 1) * sizeof(*n));
	if (n)
		ctx->blocked_sks = n;
	int keep = n ? dup(sk) : -1;
	if (keep < 0) {
		int err = n ? -errno : -ENOMEM, unused = 0;
		setsockopt(sk, SOL_SOCKET, SO_DETACH_FILTER, &unused, sizeof(unused));
		return err;
	}
	ctx->blocked_sks[ctx->nr_blocked_sks] = keep;
	ctx->nr_blocked_sks++;
	return 0;
}

/* Does any TCP listener of a task of the dump hold connections not accepted yet? */
int dump_inet_check_listeners(struct dump_ctx *ctx, bool block)
{
	for (size_t i = 0; i < ctx->nr_tasks; i++) {
		struct dump_task *t = &ctx->tasks[i];
		char path[64];
		struct dirent *de;
		DIR *d;
		if (t->zombie)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/fd", t->pid);
		d = opendir(path);
		if (!d)
			return -errno;
		while ((de = readdir(d))) {
			char link[64], target[64];
			int fd = atoi(de->d_name), v = 0;
			if (de->d_name[0] == '.')
				continue;
			snprintf(link, sizeof(link), "fd/%d", fd);
			if (proc_readlink(t->pid, link, target, sizeof(target)) || strncmp(target, "socket:", 7))
				continue;
			int sk = dump_files_getfd(t->pid, fd);
			struct tcp_info ti;
			socklen_t len = sizeof(ti);
			bool listener = sk >= 0 && !getint(sk, SOL_SOCKET, SO_ACCEPTCONN, &v) && v &&
					!getint(sk, SOL_SOCKET, SO_PROTOCOL, &v) && v == IPPROTO_TCP;
			int err = listener && block ? block_listener(ctx, sk) : 0;
			bool pending = listener && !getsockopt(sk, SOL_TCP, TCP_INFO, &ti, &len) &&
				       ti.tcpi_unacked;
			if (sk >= 0)
				close(sk);
			if (err) {
				closedir(d);
				pr_errno(err, "cannot hold new connections off fd %d of %d", fd, t->pid);
				return err;
			}
			if (pending) {
				closedir(d);
				if (ctx->last_attempt) {
					pr_err("fd %d of %d is a TCP listener with connection(s) not accepted yet; not supported yet",
					       fd, t->pid);
					return -EOPNOTSUPP;
				}
				pr_info("fd %d of %d: a TCP listener with connection(s) not accepted yet",
					fd, t->pid);
				ctx->retry = true;
				return -EAGAIN;
			}
		}
		closedir(d);
	}
	return 0;
}

int dump_inet_keep(struct dump_ctx *ctx, int sk)
{
	int *n = realloc(ctx->repair_sks, (ctx->nr_repair_sks + 1) * sizeof(*n));
	int keep;

	if (!n)
		return -ENOMEM;
	ctx->repair_sks = n;
	keep = fcntl(sk, F_DUPFD_CLOEXEC, 0);
	if (keep < 0)
		return -errno;
	ctx->repair_sks[ctx->nr_repair_sks++] = keep;
	return 0;
}

void dump_inet_done(struct dump_ctx *ctx, bool killed)
{
	int off = TCP_REPAIR_OFF_NO_WP;

	for (size_t i = 0; i < ctx->nr_blocked_sks; i++) {
		int unused = 0;
		/* The option length must hold an int, though the value is unused. */
		if (!killed && setsockopt(ctx->blocked_sks[i], SOL_SOCKET, SO_DETACH_FILTER, &unused,
					  sizeof(unused)) < 0)
			pr_perror("cannot let new connections reach a listener again");
		close(ctx->blocked_sks[i]);
	}
	free(ctx->blocked_sks);
	ctx->blocked_sks = NULL;
	ctx->nr_blocked_sks = 0;

	for (size_t i = 0; i < ctx->nr_repair_sks; i++) {
		/* The task runs on: the connection goes on as if nothing happened. */
		if (!killed && setsockopt(ctx->repair_sks[i], SOL_TCP, TCP_REPAIR, &off, sizeof(off)) < 0)
			pr_perror("cannot take a TCP connection out of repair mode");
		close(ctx->repair_sks[i]);
	}
	free(ctx->repair_sks);
	ctx->repair_sks = NULL;
	ctx->nr_repair_sks = 0;
}

void dump_inet_free(InetSkEntry *e)
{
	if (!e)
		return;
	free(e->local.data);
	free(e->peer.data);
	free(e->send_queue.data);
	free(e->recv_queue.data);
	for (size_t i = 0; i < e->n_queue; i++)
		free(e->queue[i].data);
	for (size_t i = 0; i < e->n_queue_from; i++)
		free(e->queue_from[i].data);
	free(e->queue);
	free(e->queue_from);
	free(e);
}
