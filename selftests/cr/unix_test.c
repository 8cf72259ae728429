// SPDX-License-Identifier: MIT
/*
 * unix_test: named unix sockets, listeners and connections.
 *
 *  - bound: a stream, datagram and seqpacket socket each bound to a path (mode 0640, owner
 *    1234:1235), to an abstract name, and one stream socket bound to a relative path from
 *    the victim's directory; names, socket files, mode and owner are the same after restore.
 *    Between dump and restore the killed victim's socket files are still there (stale): the
 *    restore must replace them.
 *  - listen: stream and seqpacket listeners (a path and an abstract name) with two accepted
 *    connections each (data queued both ways, message boundaries) and two connections not
 *    accepted yet (one client bound to an abstract name, one unnamed): every name and peer
 *    name matches, the data arrives, accept() returns the waiting connections oldest first
 *    and they carry data both ways.
 *  - listener_closed: a stream connection accepted from a path listener that was then
 *    closed: both ends keep their names, data both ways.
 *  - dgram: a bound receiver holding messages from a bound sender of the dump, from an
 *    unnamed socket and from a socket connected to it: sizes, order and the bound sender's
 *    name come back; the connected socket keeps its peer and sends again. A socketpair with
 *    one end bound afterwards keeps its names and a message each way.
 *  - options: SO_PASSCRED, SO_RCVTIMEO, SO_SNDTIMEO (whole jiffies at any HZ), buffer sizes
 *    and O_NONBLOCK.
 *  - not_socket: a regular file put at a bound socket's path before the restore fails it
 *    clearly and stays untouched.
 *  - refused: a socket bound to a relative path from another directory than the cwd, a
 *    datagram socket connected to a socket outside the dump, a listener with a
 *    connection from outside the dump, a connection not accepted yet with data sent on it;
 *    each dump fails clearly and the victim goes on unharmed.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cr.h"

CR_FIXTURE_LR(unixsk);

#define IO_MS		5000
#define NTYPES		3

static const int types[NTYPES] = { SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET };
static const char *const tnames[NTYPES] = { "stream", "dgram", "seqpacket" };

/* A path in the test dir, or an abstract name unique to it (leading '@'). */
static socklen_t mkaddr(struct sockaddr_un *a, const char *name)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	if (name[0] == '@') {
		int n = snprintf(a->sun_path + 1, sizeof(a->sun_path) - 1, "ckpt-ut-%llx-%s",
				 (unsigned long long)cr_hash(cr_victim_dir, strlen(cr_victim_dir)),
				 name + 1);
		return offsetof(struct sockaddr_un, sun_path) + 1 + n;
	}
	if (name[0] == '.')
		snprintf(a->sun_path, sizeof(a->sun_path), "%s", name + 2);
	else
		snprintf(a->sun_path, sizeof(a->sun_path), "%s/%s", cr_victim_dir, name);
	return offsetof(struct sockaddr_un, sun_path) + strlen(a->sun_path) + 1;
}

static int sk_bound(int type, const char *name)
{
	struct sockaddr_un a;
	socklen_t len = mkaddr(&a, name);
	int s = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);

	CR_SETUP(s >= 0 && !bind(s, (struct sockaddr *)&a, len), "bind '%s'", name);
	return s;
}

static int sk_connect(int type, const char *bind_name, const char *to)
{
	struct sockaddr_un a;
	socklen_t len = mkaddr(&a, to);
	int s = bind_name ? sk_bound(type, bind_name) : socket(AF_UNIX, type | SOCK_CLOEXEC, 0);

	CR_SETUP(s >= 0 && !connect(s, (struct sockaddr *)&a, len), "connect to '%s'", to);
	return s;
}

/* getsockname (peer false) or getpeername of s is name (NULL: unnamed). */
static bool has_name(int s, bool peer, const char *name)
{
	struct sockaddr_un a, b;
	socklen_t la = name ? mkaddr(&a, name) : offsetof(struct sockaddr_un, sun_path);
	socklen_t lb = sizeof(b);

	memset(&b, 0, sizeof(b));
	if ((peer ? getpeername(s, (struct sockaddr *)&b, &lb) : getsockname(s, (struct sockaddr *)&b,
									      &lb)) < 0)
		return false;
	return la == lb && !memcmp(a.sun_path, b.sun_path, la - offsetof(struct sockaddr_un, sun_path));
}

static bool wait_in(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, IO_MS) == 1;
}

/* One message (or stream chunk) of n bytes with seed; false on error. */
static bool put(int s, size_t n, unsigned seed)
{
	static unsigned char buf[8192];

	cr_fill(buf, n, seed);
	return send(s, buf, n, MSG_NOSIGNAL) == (ssize_t)n;
}

/* The next message (stream: the next n bytes) is n bytes with seed. */
static bool get(int s, int type, size_t n, unsigned seed)
{
	static unsigned char buf[8192];
	size_t got = 0;

	do {
		if (!wait_in(s))
			return false;
		ssize_t r = recv(s, buf + got, type == SOCK_STREAM ? n - got : sizeof(buf),
				 MSG_DONTWAIT);
		if (r <= 0 || (type != SOCK_STREAM && (size_t)r != n))
			return false;
		got += r;
	} while (got < n);
	return cr_check_pattern(buf, n, seed) < 0;
}

static bool empty(int s)
{
	char c;

	return recv(s, &c, 1, MSG_DONTWAIT | MSG_PEEK) < 0 && errno == EAGAIN;
}

/* ---- bound ---- */

static int victim_bound(void *arg)
{
	static const char *const paths[NTYPES] = { "b0.sock", "b1.sock", "b2.sock" };
	static const char *const abst[NTYPES] = { "@b0", "@b1", "@b2" };
	int ps[NTYPES], as[NTYPES], rel;
	char path[256];
	struct stat st;

	(void)arg;
	for (int t = 0; t < NTYPES; t++) {
		ps[t] = sk_bound(types[t], paths[t]);
		as[t] = sk_bound(types[t], abst[t]);
		snprintf(path, sizeof(path), "%s/%s", cr_victim_dir, paths[t]);
		CR_SETUP(!chmod(path, 0640) && !chown(path, 1234, 1235), "chmod '%s'", path);
	}
	CR_SETUP(!chdir(cr_victim_dir), "chdir");
	rel = sk_bound(SOCK_STREAM, "./rel.sock");

	cr_victim_ready_wait();

	for (int t = 0; t < NTYPES; t++) {
		CR_CHECK(has_name(ps[t], false, paths[t]), "%s: path name lost", tnames[t]);
		CR_CHECK(has_name(as[t], false, abst[t]), "%s: abstract name lost", tnames[t]);
		snprintf(path, sizeof(path), "%s/%s", cr_victim_dir, paths[t]);
		CR_CHECK(!lstat(path, &st) && S_ISSOCK(st.st_mode) && (st.st_mode & 07777) == 0640 &&
			 st.st_uid == 1234 && st.st_gid == 1235,
			 "%s: socket file mode 0%o owner %u:%u", tnames[t], st.st_mode, st.st_uid,
			 st.st_gid);
	}
	CR_CHECK(has_name(rel, false, "./rel.sock"), "the relative name changed");
	/* The path leads to the restored socket: a datagram sent to it arrives. */
	struct sockaddr_un a;
	socklen_t len = mkaddr(&a, paths[1]);
	int c = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	char x;
	CR_CHECK(sendto(c, "x", 1, 0, (struct sockaddr *)&a, len) == 1 && wait_in(ps[1]) &&
		 recv(ps[1], &x, 1, 0) == 1, "send to the bound path: %s", strerror(errno));
	close(c);
	return cr_victim_result();
}

/* The killed victim's socket files are still there: the restore has to replace them. */
static int between_stale(struct cr_run *r)
{
	char path[PATH_MAX];
	struct stat st;

	snprintf(path, sizeof(path), "%s/b0.sock", r->env->dir);
	if (lstat(path, &st) < 0 || !S_ISSOCK(st.st_mode))
		return cr_fail(r, "no stale socket file at '%s' before the restore", path);
	return 0;
}

CR_CASE(unixsk, bound, .victim = victim_bound, .between = between_stale);

/* ---- not a socket at the path ---- */

static int victim_one_bound(void *arg)
{
	(void)arg;
	int s = sk_bound(SOCK_STREAM, "ns.sock");

	cr_victim_ready_wait();
	CR_CHECK(has_name(s, false, "ns.sock"), "name lost");
	return cr_victim_result();
}

static int between_regular(struct cr_run *r)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/ns.sock", r->env->dir);
	(void)unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, "keep", 4) != 4)
		return cr_fail(r, "cannot create '%s'", path);
	close(fd);
	snprintf(r->restore_err, sizeof(r->restore_err), "is not a socket");
	return 0;
}

static int check_regular_kept(struct cr_run *r)
{
	char path[PATH_MAX], buf[8] = "";
	struct stat st;

	snprintf(path, sizeof(path), "%s/ns.sock", r->env->dir);
	if (lstat(path, &st) < 0 || !S_ISREG(st.st_mode) || cr_read_file(path, buf, sizeof(buf)) != 4 ||
	    strcmp(buf, "keep"))
		return cr_fail(r, "the regular file at '%s' was touched", path);
	return 0;
}

static int flow_not_socket(struct cr_run *r)
{
	int ret = cr_flow_default(r);

	return ret ? ret : check_regular_kept(r);
}

CR_CASE(unixsk, not_socket, .victim = victim_one_bound, .between = between_regular,
	.flow = flow_not_socket);

/* ---- listeners ---- */

#define NACC	2

static int victim_listen(void *arg)
{
	static const char *const lname[2][2] = { { "l0.sock", "@l0" }, { "l2.sock", "@l2" } };
	static const char *const cname[2][2] = { { "@c0", "@c1" }, { "@c2", "@c3" } };
	int l[2][2], acc[2][2][NACC], cli[2][2][NACC], pend[2][2][2];

	(void)arg;
	for (int t = 0; t < 2; t++) {
		int type = t ? SOCK_SEQPACKET : SOCK_STREAM;
		for (int n = 0; n < 2; n++) {
			l[t][n] = sk_bound(type, lname[t][n]);
			CR_SETUP(!listen(l[t][n], 7), "listen");
			for (int k = 0; k < NACC; k++) {
				/* the first client binds a name of its own */
				char nm[32];
				unsigned seed = t * 100 + n * 10 + k;
				snprintf(nm, sizeof(nm), "@k%d%d", t, n);
				cli[t][n][k] = sk_connect(type, k ? NULL : nm, lname[t][n]);
				acc[t][n][k] = accept4(l[t][n], NULL, NULL, SOCK_CLOEXEC);
				CR_SETUP(acc[t][n][k] >= 0, "accept");
				CR_SETUP(put(cli[t][n][k], 100 + k, seed) && put(cli[t][n][k], 50, seed + 1) &&
					 put(acc[t][n][k], 70, seed + 2), "send");
			}
			pend[t][n][0] = sk_connect(type, cname[t][n], lname[t][n]);
			pend[t][n][1] = sk_connect(type, NULL, lname[t][n]);
		}
	}

	cr_victim_ready_wait();

	for (int t = 0; t < 2; t++) {
		int type = t ? SOCK_SEQPACKET : SOCK_STREAM;
		for (int n = 0; n < 2; n++) {
			const char *what = lname[t][n];
			CR_CHECK(has_name(l[t][n], false, what), "%s: listener name", what);
			for (int k = 0; k < NACC; k++) {
				char nm[32];
				unsigned seed = t * 100 + n * 10 + k;
				snprintf(nm, sizeof(nm), "@k%d%d", t, n);
				CR_CHECK(has_name(acc[t][n][k], false, what) &&
					 has_name(acc[t][n][k], true, k ? NULL : nm) &&
					 has_name(cli[t][n][k], true, what) &&
					 has_name(cli[t][n][k], false, k ? NULL : nm),
					 "%s: connection %d names", what, k);
				CR_CHECK(get(acc[t][n][k], type, 100 + k, seed) &&
					 get(acc[t][n][k], type, 50, seed + 1),
					 "%s: connection %d: client's messages", what, k);
				CR_CHECK(get(cli[t][n][k], type, 70, seed + 2),
					 "%s: connection %d: server's message", what, k);
				CR_CHECK(empty(acc[t][n][k]) && empty(cli[t][n][k]),
					 "%s: connection %d: more data than sent", what, k);
			}
			for (int k = 0; k < 2; k++) {
				int a = wait_in(l[t][n]) ? accept4(l[t][n], NULL, NULL, SOCK_CLOEXEC) : -1;
				CR_CHECK(a >= 0, "%s: waiting connection %d not accepted: %s", what, k,
					 strerror(errno));
				if (a < 0)
					continue;
				CR_CHECK(has_name(a, true, k ? NULL : cname[t][n]) &&
					 has_name(pend[t][n][k], true, what),
					 "%s: waiting connection %d has other names (order?)", what, k);
				CR_CHECK(put(pend[t][n][k], 33, 7) && get(a, type, 33, 7) &&
					 put(a, 44, 8) && get(pend[t][n][k], type, 44, 8),
					 "%s: waiting connection %d: no data", what, k);
				close(a);
			}
		}
	}
	return cr_victim_result();
}

CR_CASE(unixsk, listen, .victim = victim_listen);

/* ---- a connection whose listener is gone ---- */

static int victim_listener_closed(void *arg)
{
	int l, c, a;

	(void)arg;
	l = sk_bound(SOCK_STREAM, "gone.sock");
	CR_SETUP(!listen(l, 1), "listen");
	c = sk_connect(SOCK_STREAM, NULL, "gone.sock");
	a = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	CR_SETUP(a >= 0 && put(c, 300, 1) && put(a, 200, 2), "accept");
	close(l);

	cr_victim_ready_wait();

	CR_CHECK(has_name(a, false, "gone.sock") && has_name(a, true, NULL) &&
		 has_name(c, true, "gone.sock") && has_name(c, false, NULL), "names changed");
	CR_CHECK(get(a, SOCK_STREAM, 300, 1) && get(c, SOCK_STREAM, 200, 2), "queued data");
	CR_CHECK(put(c, 10, 3) && get(a, SOCK_STREAM, 10, 3), "new data");
	return cr_victim_result();
}

CR_CASE(unixsk, listener_closed, .victim = victim_listener_closed);

/* ---- datagrams ---- */

static int victim_dgram(void *arg)
{
	struct sockaddr_un ra, from;
	socklen_t rlen, flen;
	int r, s, u, c;
	char buf[512];

	(void)arg;
	r = sk_bound(SOCK_DGRAM, "r.sock");
	s = sk_bound(SOCK_DGRAM, "@sender");
	u = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	c = sk_connect(SOCK_DGRAM, NULL, "r.sock");
	rlen = mkaddr(&ra, "r.sock");
	CR_SETUP(sendto(s, buf, 10, 0, (struct sockaddr *)&ra, rlen) == 10 &&
		 sendto(u, buf, 20, 0, (struct sockaddr *)&ra, rlen) == 20 &&
		 send(c, buf, 30, 0) == 30 &&
		 sendto(s, buf, 40, 0, (struct sockaddr *)&ra, rlen) == 40, "send");
	close(u);
	/* A socketpair with one end named afterwards, a message queued each way. */
	int sp[2];
	struct sockaddr_un spa;
	socklen_t splen = mkaddr(&spa, "@sp");
	CR_SETUP(!socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sp) &&
		 !bind(sp[0], (struct sockaddr *)&spa, splen) && put(sp[0], 11, 1) &&
		 put(sp[1], 12, 2), "named socketpair");

	cr_victim_ready_wait();

	CR_CHECK(has_name(sp[0], false, "@sp") && has_name(sp[1], true, "@sp") &&
		 has_name(sp[1], false, NULL), "the named socketpair's names changed");
	CR_CHECK(get(sp[1], SOCK_DGRAM, 11, 1) && get(sp[0], SOCK_DGRAM, 12, 2) && empty(sp[0]) &&
		 empty(sp[1]), "the named socketpair's messages");

	static const int size[4] = { 10, 20, 30, 40 };
	static const char *const sender[4] = { "@sender", NULL, NULL, "@sender" };
	for (int m = 0; m < 4; m++) {
		flen = sizeof(from);
		ssize_t n = wait_in(r) ? recvfrom(r, buf, sizeof(buf), MSG_DONTWAIT,
						  (struct sockaddr *)&from, &flen) : -1;
		CR_CHECK(n == size[m], "message %d is %zd bytes, expected %d", m, n, size[m]);
		struct sockaddr_un want;
		/* An unnamed sender gives no address at all. */
		socklen_t wlen = sender[m] ? mkaddr(&want, sender[m]) : 0;
		CR_CHECK(flen == wlen && (!wlen || !memcmp(from.sun_path, want.sun_path,
							   wlen - offsetof(struct sockaddr_un, sun_path))),
			 "message %d: sender's name changed", m);
	}
	CR_CHECK(empty(r), "more messages than sent");
	CR_CHECK(has_name(c, true, "r.sock") && has_name(r, false, "r.sock") &&
		 has_name(s, false, "@sender"), "names changed");
	CR_CHECK(send(c, buf, 5, 0) == 5 && wait_in(r) && recv(r, buf, sizeof(buf), 0) == 5,
		 "the connected socket cannot send again");
	return cr_victim_result();
}

CR_CASE(unixsk, dgram, .victim = victim_dgram);

/* ---- options ---- */

static int victim_options(void *arg)
{
	struct timeval rt = { 3, 500000 }, st = { 7, 0 }, tv;
	int sv[2], one = 1, v, buf = 300000;
	socklen_t len;

	(void)arg;
	CR_SETUP(!socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv), "socketpair");
	CR_SETUP(!setsockopt(sv[0], SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) &&
		 !setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &rt, sizeof(rt)) &&
		 !setsockopt(sv[0], SOL_SOCKET, SO_SNDTIMEO, &st, sizeof(st)) &&
		 !setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf)), "setsockopt");
	int sb0;
	len = sizeof(sb0);
	CR_SETUP(!getsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sb0, &len), "getsockopt");

	cr_victim_ready_wait();

	len = sizeof(v);
	CR_CHECK(!getsockopt(sv[0], SOL_SOCKET, SO_PASSCRED, &v, &len) && v, "SO_PASSCRED lost");
	len = sizeof(v);
	CR_CHECK(!getsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &v, &len) && !v, "SO_PASSCRED appeared");
	len = sizeof(tv);
	CR_CHECK(!getsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, &len) && tv.tv_sec == 3 &&
		 tv.tv_usec == 500000, "SO_RCVTIMEO is %ld.%06ld", (long)tv.tv_sec, (long)tv.tv_usec);
	len = sizeof(tv);
	CR_CHECK(!getsockopt(sv[0], SOL_SOCKET, SO_SNDTIMEO, &tv, &len) && tv.tv_sec == 7 &&
		 !tv.tv_usec, "SO_SNDTIMEO is %ld.%06ld", (long)tv.tv_sec, (long)tv.tv_usec);
	len = sizeof(v);
	CR_CHECK(!getsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &v, &len) && v == sb0,
		 "SO_SNDBUF is %d, was %d", v, sb0);
	CR_CHECK(fcntl(sv[0], F_GETFL) & O_NONBLOCK, "O_NONBLOCK lost");
	return cr_victim_result();
}

CR_CASE(unixsk, options, .victim = victim_options);

/* ---- refused ---- */

static int victim_moved(void *arg)
{
	(void)arg;
	CR_SETUP(!chdir(cr_victim_dir), "chdir");
	int s = sk_bound(SOCK_STREAM, "./moved.sock");

	CR_SETUP(!chdir("/"), "chdir /");
	cr_victim_ready_wait();
	CR_CHECK(has_name(s, false, "./moved.sock"), "the name changed");
	return cr_victim_result();
}

/* A relative name no longer relative to the cwd: where would it be bound? */
CR_CASE(unixsk, relative_moved_refused, .victim = victim_moved,
	.dump_err = "no longer its socket file");

enum { OUT_DGRAM, OUT_PENDING, OUT_ECHO };

/*
 * A process outside the victim's tree (forked by a child that exits) holding a socket:
 * OUT_DGRAM binds @out (the victim connects to it), OUT_PENDING connects to the victim's
 * @lsn. It says ready on a pipe and exits when the victim's end closes, or after IO_MS * 6.
 */
static void outsider(int mode)
{
	int p[2], sk;
	char c;
	pid_t pid;

	CR_SETUP(!pipe2(p, O_CLOEXEC), "pipe");
	pid = fork();
	CR_SETUP(pid >= 0, "fork");
	if (!pid) {
		if (fork())
			_exit(0);
		close(p[0]);
		/* Its own session: the victim's session ID must be free for the restore. */
		setsid();
		sk = mode == OUT_DGRAM ? sk_bound(SOCK_DGRAM, "@out")
		     : mode == OUT_ECHO ? sk_bound(SOCK_DGRAM, "@echo")
					: sk_connect(SOCK_STREAM, NULL, "@lsn");
		(void)!write(p[1], "r", 1);
		close(p[1]);
		/* OUT_ECHO: every datagram goes back to "@back" until it is quiet for long. */
		for (;;) {
			struct pollfd pf = { .fd = sk, .events = POLLIN };
			char m[64];
			if (poll(&pf, 1, IO_MS * 6) != 1 || mode != OUT_ECHO)
				break;
			ssize_t n = recv(sk, m, sizeof(m), 0);
			struct sockaddr_un b;
			socklen_t blen = mkaddr(&b, "@back");
			if (n > 0)
				(void)sendto(sk, m, n, 0, (struct sockaddr *)&b, blen);
		}
		_exit(0);
	}
	close(p[1]);
	CR_SETUP(waitpid(pid, NULL, 0) == pid && read(p[0], &c, 1) == 1, "outsider");
	close(p[0]);
}

static int victim_dgram_outside(void *arg)
{
	(void)arg;
	outsider(OUT_DGRAM);
	int s = sk_connect(SOCK_DGRAM, NULL, "@out");

	cr_victim_ready_wait();
	CR_CHECK(has_name(s, true, "@out"), "the peer changed");
	return cr_victim_result();
}

CR_CASE(unixsk, dgram_outside_refused, .victim = victim_dgram_outside,
	.dump_err = "outside the dump");

/* With --ext-unix-sk: connected to "@echo" outside the dump again, messages flow both ways. */
static int victim_dgram_external(void *arg)
{
	char m[64] = "";
	(void)arg;
	outsider(OUT_ECHO);
	int back = sk_bound(SOCK_DGRAM, "@back");
	int s = sk_connect(SOCK_DGRAM, NULL, "@echo");

	cr_victim_ready_wait();
	CR_CHECK(has_name(s, true, "@echo"), "the peer changed");
	CR_CHECK(send(s, "ping-ext", 8, 0) == 8, "send to the outside socket: %s", strerror(errno));
	struct pollfd pf = { .fd = back, .events = POLLIN };
	CR_CHECK(poll(&pf, 1, IO_MS) == 1 && recv(back, m, sizeof(m) - 1, 0) == 8 &&
		 !strcmp(m, "ping-ext"), "no echo from the outside socket ('%s')", m);
	return cr_victim_result();
}

CR_CASE(unixsk, dgram_external, .victim = victim_dgram_external, .ext_unix_sk = true);

static int victim_pending_outside(void *arg)
{
	(void)arg;
	int l = sk_bound(SOCK_STREAM, "@lsn");

	CR_SETUP(!listen(l, 4), "listen");
	outsider(OUT_PENDING);
	cr_victim_ready_wait();
	int a = accept4(l, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	CR_CHECK(a >= 0, "the waiting connection is gone: %s", strerror(errno));
	return cr_victim_result();
}

CR_CASE(unixsk, pending_outside_refused, .victim = victim_pending_outside,
	.dump_err = "outside the dump");

static int victim_pending_data(void *arg)
{
	(void)arg;
	int l = sk_bound(SOCK_STREAM, "@pd");

	CR_SETUP(!listen(l, 4), "listen");
	int c = sk_connect(SOCK_STREAM, NULL, "@pd");
	CR_SETUP(put(c, 64, 9), "send");
	cr_victim_ready_wait();
	int a = accept4(l, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	CR_CHECK(a >= 0 && get(a, SOCK_STREAM, 64, 9), "the waiting connection lost its data");
	return cr_victim_result();
}

CR_CASE(unixsk, pending_data_refused, .victim = victim_pending_data,
	.dump_err = "not accepted yet");

TEST_HARNESS_MAIN
