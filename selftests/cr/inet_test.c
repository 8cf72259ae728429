// SPDX-License-Identifier: MIT
/*
 * inet_test: TCP and UDP sockets over IPv4 and IPv6.
 *
 *  - tcp_peer_outside: a server in the dump with two established connections to a peer
 *    outside it (a process that left the tree before the dump). At dump time the server has
 *    unread data from the peer and a full send queue, part of it never sent. After restore
 *    the peer, which never noticed, reads every byte of the stream in order, the server
 *    reads the data that was waiting, both directions go on, and the restored listener
 *    accepts a new connection on the same port. (Not left running: the original connection
 *    would end when the left-running server exits, before the restore.)
 *  - tcp_both_ends: a connection whose two ends are both in the dump, over IPv6, data
 *    queued both ways: all of it arrives after restore and new data flows.
 *  - udp: a bound UDP socket and one connected to it keep their addresses and exchange a
 *    datagram after restore; the datagrams waiting on the bound one at dump time come back
 *    in order with their senders (one in the dump, one closed since).
 *  - pending_refused: a listener with a connection not accepted yet (never, here) is refused
 *    clearly after the dump's retries, the tree unharmed: the listener takes new
 *    connections again.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cr.h"

CR_FIXTURE_LR(inet);

#define BIG		(4u << 20)
#define IO_MS		10000
#define PING		"ping-before-dump"

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

static unsigned char byte_at(size_t i)
{
	return (unsigned char)(i * 7 + (i >> 12));
}

/* Waits (bounded) for fd to be readable; true if it is. */
static bool wait_in(int fd, long ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, (int)ms) == 1;
}

/* Reads exactly len bytes (bounded), false on EOF, error or timeout. */
static bool read_full(int fd, void *buf, size_t len)
{
	long deadline = now_ms() + IO_MS;
	size_t got = 0;

	while (got < len) {
		long left = deadline - now_ms();
		if (left <= 0 || !wait_in(fd, left))
			return false;
		ssize_t n = read(fd, (char *)buf + got, len - got);
		if (n <= 0)
			return false;
		got += n;
	}
	return true;
}

static int listen_on(int family, struct sockaddr_storage *a, socklen_t *len)
{
	int l = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	memset(a, 0, sizeof(*a));
	if (family == AF_INET) {
		struct sockaddr_in *s = (void *)a;
		s->sin_family = AF_INET;
		s->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		*len = sizeof(*s);
	} else {
		struct sockaddr_in6 *s = (void *)a;
		s->sin6_family = AF_INET6;
		s->sin6_addr = in6addr_loopback;
		*len = sizeof(*s);
	}
	CR_SETUP(l >= 0 && !bind(l, (struct sockaddr *)a, *len) && !listen(l, 8) &&
		 !getsockname(l, (struct sockaddr *)a, len), "listen");
	return l;
}

static int connect_to(const struct sockaddr_storage *a, socklen_t len)
{
	int c = socket(a->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (c < 0 || connect(c, (const struct sockaddr *)a, len) < 0)
		return -1;
	return c;
}

/* ---- a server in the dump, its peer outside ---- */

/* The peer: data on A, control on B; reads A only once told to, checks every byte. */
static void __attribute__((noreturn)) peer_main(int l, const struct sockaddr_storage *a,
						socklen_t len)
{
	unsigned char *buf = malloc(BIG);
	char c = 'F';
	int da, ctl;

	alarm(60);
	close(l);
	/* Its own session: the server's session ID must be free to restore the server. */
	setsid();
	da = connect_to(a, len);
	ctl = connect_to(a, len);
	if (da < 0 || ctl < 0 || !buf || write(da, PING, strlen(PING)) != (ssize_t)strlen(PING))
		_exit(1);
	/* "go" comes after the restore (or after the left-running dump). */
	if (!read_full(ctl, &c, 1) || c != 'G')
		_exit(2);
	c = read_full(da, buf, BIG) ? 'K' : 'R';
	for (size_t i = 0; c == 'K' && i < BIG; i++)
		if (buf[i] != byte_at(i))
			c = 'B';
	/* A new connection to the restored listener. */
	int third = connect_to(a, len);
	if (third < 0 || write(third, "C", 1) != 1)
		c = c == 'K' ? 'N' : c;
	if (write(ctl, &c, 1) != 1)
		_exit(3);
	(void)read_full(ctl, &c, 1);	/* 'Q', or EOF */
	_exit(0);
}

static int victim_tcp_peer(void *arg)
{
	struct sockaddr_storage a;
	unsigned char *buf = malloc(BIG);
	char ping[sizeof(PING)] = "", c;
	socklen_t len;
	size_t sent = 0;
	int l, da, ctl, inq = 0;
	pid_t p;

	(void)arg;
	CR_SETUP(buf, "malloc");
	for (size_t i = 0; i < BIG; i++)
		buf[i] = byte_at(i);
	l = listen_on(AF_INET, &a, &len);
	p = fork();
	CR_SETUP(p >= 0, "fork");
	if (p == 0) {
		/* Out of the tree: the runner adopts the peer when this child exits. */
		if (fork() == 0)
			peer_main(l, &a, len);
		_exit(0);
	}
	CR_SETUP(waitpid(p, NULL, 0) == p, "waitpid");
	da = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	ctl = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	CR_SETUP(da >= 0 && ctl >= 0, "accept");
	/* The peer's ping waits unread; our stream fills every buffer on the way. */
	for (long deadline = now_ms() + IO_MS; inq < (int)strlen(PING); ) {
		CR_SETUP(now_ms() < deadline, "the ping did not arrive");
		wait_in(da, 100);
		ioctl(da, FIONREAD, &inq);
	}
	CR_SETUP(!fcntl(da, F_SETFL, O_NONBLOCK), "O_NONBLOCK");
	for (;;) {
		ssize_t n = write(da, buf + sent, BIG - sent);
		if (n <= 0)
			break;
		sent += n;
	}
	CR_SETUP(sent < BIG, "the peer took all %u bytes; nothing would be queued", BIG);
	CR_SETUP(!fcntl(da, F_SETFL, 0), "blocking again");

	cr_victim_ready_wait();

	CR_CHECK(read_full(da, ping, strlen(PING)) && !strcmp(ping, PING),
		 "the data waiting in the restored receive queue is '%s', not '" PING "'", ping);
	CR_CHECK(write(ctl, "G", 1) == 1, "control write: %s", strerror(errno));
	while (sent < BIG) {
		ssize_t n = write(da, buf + sent, BIG - sent);
		if (n <= 0) {
			CR_CHECK(0, "writing the rest of the stream: %s", strerror(errno));
			break;
		}
		sent += n;
	}
	int third = wait_in(l, IO_MS) ? accept4(l, NULL, NULL, SOCK_CLOEXEC) : -1;
	CR_CHECK(third >= 0, "the restored listener accepted nothing");
	if (third >= 0)
		CR_CHECK(read_full(third, &c, 1) && c == 'C', "new connection data");
	CR_CHECK(read_full(ctl, &c, 1), "no verdict from the peer");
	CR_CHECK(c == 'K', "the peer says '%c' (R: short stream, B: bad byte, N: no new connection)",
		 c);
	(void)!write(ctl, "Q", 1);
	return cr_victim_result();
}

CR_CASE(inet, tcp_peer_outside, .victim = victim_tcp_peer, .no_leave = true);

/* ---- both ends in the dump, IPv6 ---- */

static int victim_tcp_both(void *arg)
{
	struct sockaddr_storage a;
	char x[64] = "", y[64] = "";
	socklen_t len;
	int l, c, s;

	(void)arg;
	l = listen_on(AF_INET6, &a, &len);
	c = connect_to(&a, len);
	s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	CR_SETUP(c >= 0 && s >= 0, "connect/accept");
	CR_SETUP(write(c, "to-server", 9) == 9 && write(s, "to-client", 9) == 9, "write");
	CR_SETUP(wait_in(c, IO_MS) && wait_in(s, IO_MS), "queued data did not arrive");

	cr_victim_ready_wait();

	CR_CHECK(read_full(s, x, 9) && !strcmp(x, "to-server"), "server read '%s'", x);
	CR_CHECK(read_full(c, y, 9) && !strcmp(y, "to-client"), "client read '%s'", y);
	memset(x, 0, sizeof(x));
	CR_CHECK(write(c, "after", 5) == 5 && read_full(s, x, 5) && !strcmp(x, "after"),
		 "new data after restore: '%s'", x);
	return cr_victim_result();
}

/* Not left running: when the original exits its connection ends in TIME_WAIT on the
 * listener's port, and listen() on a port in TIME_WAIT is refused (EADDRINUSE). */
CR_CASE(inet, tcp_both_ends, .victim = victim_tcp_both, .no_leave = true);

/* ---- UDP ---- */

static int victim_udp(void *arg)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_in b1, b2, p1, p2, gone = a, from;
	socklen_t len = sizeof(a);
	char buf[16] = "";
	int r, s, t;

	(void)arg;
	r = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	t = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	CR_SETUP(r >= 0 && s >= 0 && t >= 0 && !bind(r, (void *)&a, sizeof(a)) &&
		 !getsockname(r, (void *)&a, &len) && !connect(s, (void *)&a, sizeof(a)), "udp");
	len = sizeof(b1);
	CR_SETUP(!getsockname(s, (void *)&b1, &len), "getsockname");
	len = sizeof(p1);
	CR_SETUP(!getpeername(s, (void *)&p1, &len), "getpeername");
	/* Datagrams waiting on r: two from s (in the dump), one from a sender since closed. */
	len = sizeof(gone);
	CR_SETUP(!bind(t, (void *)&gone, sizeof(gone)) && !getsockname(t, (void *)&gone, &len),
		 "bind t");
	CR_SETUP(send(s, "one", 3, 0) == 3 && sendto(t, "two", 3, 0, (void *)&a, sizeof(a)) == 3 &&
		 send(s, "three", 5, 0) == 5 && !close(t), "queue datagrams");
	CR_SETUP(wait_in(r, IO_MS), "the datagrams did not arrive");

	cr_victim_ready_wait();

	static const char *const want[] = { "one", "two", "three" };
	for (int k = 0; k < 3; k++) {
		memset(buf, 0, sizeof(buf));
		len = sizeof(from);
		ssize_t n = wait_in(r, IO_MS) ? recvfrom(r, buf, sizeof(buf) - 1, MSG_DONTWAIT,
							  (void *)&from, &len) : -1;
		const struct sockaddr_in *sender = k == 1 ? &gone : &b1;
		CR_CHECK(n == (ssize_t)strlen(want[k]) && !strcmp(buf, want[k]),
			 "waiting datagram %d is '%s', expected '%s'", k, buf, want[k]);
		CR_CHECK(from.sin_port == sender->sin_port, "datagram %d came from port %u, not %u", k,
			 ntohs(from.sin_port), ntohs(sender->sin_port));
	}
	memset(buf, 0, sizeof(buf));

	len = sizeof(b2);
	CR_CHECK(!getsockname(s, (void *)&b2, &len) && !memcmp(&b1, &b2, sizeof(b1)),
		 "the connected socket's local address changed");
	len = sizeof(p2);
	CR_CHECK(!getpeername(s, (void *)&p2, &len) && !memcmp(&p1, &p2, sizeof(p1)),
		 "the connected socket's peer changed");
	CR_CHECK(send(s, "dgram", 5, 0) == 5, "send: %s", strerror(errno));
	CR_CHECK(wait_in(r, IO_MS) && recv(r, buf, sizeof(buf), 0) == 5 && !strcmp(buf, "dgram"),
		 "the bound socket received '%s'", buf);
	return cr_victim_result();
}

CR_CASE(inet, udp, .victim = victim_udp);

/* ---- refused: a connection waiting in the listener's accept queue ---- */

static int victim_pending(void *arg)
{
	struct sockaddr_storage a;
	socklen_t len;
	int l, c;

	(void)arg;
	l = listen_on(AF_INET, &a, &len);
	c = connect_to(&a, len);
	CR_SETUP(c >= 0 && wait_in(l, IO_MS), "connect");

	cr_victim_ready_wait();

	int s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	CR_CHECK(s >= 0, "the pending connection is gone: %s", strerror(errno));
	/* The failed dump held new connections off: they must come through again. */
	int c2 = connect_to(&a, len);
	CR_CHECK(c2 >= 0 && wait_in(l, IO_MS) && accept4(l, NULL, NULL, SOCK_CLOEXEC) >= 0,
		 "the listener takes no new connection after the failed dump");
	return cr_victim_result();
}

CR_CASE(inet, pending_refused, .victim = victim_pending, .dump_err = "not accepted yet");

TEST_HARNESS_MAIN
