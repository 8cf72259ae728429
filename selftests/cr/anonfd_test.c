// SPDX-License-Identifier: MIT
/*
 * anonfd_test: files on anonymous inodes survive dump and restore.
 *
 *   eventfd        a counter above 2^32 in a non-blocking eventfd reads back whole, once; a
 *                  blocking EFD_SEMAPHORE one with 3 reads 1 three times and then is not
 *                  readable.
 *   signalfd       the mask (SIGUSR1, SIGRTMIN+1) and O_NONBLOCK come back; a signal of the mask
 *                  sent after restore is read with its value, one outside it is not.
 *   timerfd        unread ticks of a one-shot and of a periodic timer are read after restore; a
 *                  relative 400 ms timer fires within its remaining time (not before), a
 *                  CLOCK_REALTIME TFD_TIMER_ABSTIME one keeps its wall-clock deadline.
 *   epoll          registrations of a pipe, an eventfd (twice: through two dup'ed fds), a
 *                  pipe end registered as fd N whose fd N was then closed (the file lives on at
 *                  another fd), an idle pipe and a nested epoll come back with the same fd
 *                  numbers, events and data: epoll_wait returns exactly the ready ones, and
 *                  EPOLL_CTL_MOD through the registered fd number works.
 *   inotify        watches 1 and 3 (2 was removed) keep their numbers and masks; a file created
 *                  and one written after restore give events with those numbers.
 *   shared_fork    an eventfd and an epoll inherited by a child stay one description: a write by
 *                  the child is read by the parent through the epoll and the eventfd.
 *   pidfd_refused, userfaultfd_refused
 *                  the dump fails naming the kind, and the victim keeps working.
 *   hostile_*      files.img edited between dump and restore (an epoll watching itself, two
 *                  epolls watching each other, a bad timerfd clock, inotify watches out of
 *                  order, an eventfd counter out of range): the restore fails naming the file
 *                  and field and leaves nothing behind; hostile_control restores unedited.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cr.h"
#include "cr_img.h"
#include "files.pb-c.h"

CR_FIXTURE_LR(anonfd);

#define MS 1000000LL

static long long now_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static long long its_ns(const struct timespec *ts)
{
	return ts->tv_sec * 1000000000LL + ts->tv_nsec;
}

static bool readable(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLIN);
}

/*
 * The lines of /proc/self/fdinfo/FD starting with key, each cut before `cut` (what changes
 * across a restore, or NULL) with runs of blanks made one, sorted, into buf.
 */
static void fdinfo_lines(int fd, const char *key, const char *cut, char *buf, size_t len)
{
	char path[64], raw[8192], lines[64][160];
	int n = 0;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	buf[0] = 0;
	if (cr_read_file(path, raw, sizeof(raw)) <= 0)
		return;
	for (char *p = strstr(raw, key); p && n < 64; p = strstr(p + 1, key)) {
		char *end = strchr(p, '\n'), *c = cut ? strstr(p, cut) : NULL;
		int k = 0;
		if (!end)
			end = p + strlen(p);
		if (c && c < end)
			end = c;
		for (char *q = p; q < end && k < 159; q++)
			if (!((*q == ' ' || *q == '\t') && k && lines[n][k - 1] == ' '))
				lines[n][k++] = *q == '\t' ? ' ' : *q;
		lines[n++][k] = 0;
	}
	qsort(lines, n, sizeof(lines[0]), (int (*)(const void *, const void *))strcmp);
	for (int i = 0; i < n; i++)
		snprintf(buf + strlen(buf), len - strlen(buf), "%s|", lines[i]);
}

/* ---- eventfd ---- */

static int victim_eventfd(void *arg)
{
	uint64_t big = 0x100000005ull, v = 0;
	int a, s, i;

	a = eventfd(0, EFD_NONBLOCK);
	s = eventfd(3, EFD_SEMAPHORE);
	CR_SETUP(a >= 0 && s >= 0, "eventfd");
	CR_SETUP(write(a, &big, 8) == 8, "write");

	cr_victim_ready_wait();

	CR_CHECK(fcntl(a, F_GETFL) & O_NONBLOCK, "fd %d lost O_NONBLOCK", a);
	CR_CHECK(!(fcntl(s, F_GETFL) & O_NONBLOCK), "fd %d became O_NONBLOCK", s);
	CR_CHECK(read(a, &v, 8) == 8 && v == big, "counter 0x%llx, expected 0x%llx",
		 (unsigned long long)v, (unsigned long long)big);
	CR_CHECK(read(a, &v, 8) < 0 && errno == EAGAIN, "a read counter is not zero");
	for (i = 0; i < 3; i++) {
		v = 0;
		CR_CHECK(readable(s, 0) && read(s, &v, 8) == 8 && v == 1,
			 "semaphore read %d gave %llu", i, (unsigned long long)v);
	}
	CR_CHECK(!readable(s, 0), "semaphore still readable after 3 reads");
	/* as dumped again, for the restore of the leave-running variant */
	big = 0x100000005ull;
	v = 3;
	CR_CHECK(write(a, &big, 8) == 8 && write(s, &v, 8) == 8, "write back");
	return cr_victim_result();
}

CR_CASE(anonfd, eventfd, .victim = victim_eventfd);

/* ---- signalfd ---- */

static int victim_signalfd(void *arg)
{
	struct signalfd_siginfo si;
	char before[256], after[256];
	union sigval val = { .sival_int = 4242 };
	sigset_t set;
	int fd;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGRTMIN + 1);
	CR_SETUP(!sigprocmask(SIG_BLOCK, &set, NULL), "sigprocmask");
	sigaddset(&set, SIGWINCH);
	CR_SETUP(!sigprocmask(SIG_BLOCK, &set, NULL), "sigprocmask");
	sigdelset(&set, SIGWINCH);
	fd = signalfd(-1, &set, SFD_NONBLOCK);
	CR_SETUP(fd >= 0, "signalfd");
	fdinfo_lines(fd, "sigmask:", NULL, before, sizeof(before));

	cr_victim_ready_wait();

	fdinfo_lines(fd, "sigmask:", NULL, after, sizeof(after));
	CR_CHECK(before[0] && !strcmp(before, after), "mask '%s', expected '%s'", after, before);
	CR_CHECK(fcntl(fd, F_GETFL) & O_NONBLOCK, "lost O_NONBLOCK");
	CR_CHECK(read(fd, &si, sizeof(si)) < 0 && errno == EAGAIN, "a signal was already there");
	CR_CHECK(!kill(getpid(), SIGWINCH), "kill");
	CR_CHECK(read(fd, &si, sizeof(si)) < 0 && errno == EAGAIN, "SIGWINCH is not in the mask");
	CR_CHECK(!sigqueue(getpid(), SIGRTMIN + 1, val), "sigqueue");
	CR_CHECK(read(fd, &si, sizeof(si)) == sizeof(si) && si.ssi_signo == (unsigned)SIGRTMIN + 1 &&
		 si.ssi_int == 4242, "signal %u value %d, expected %d 4242", si.ssi_signo, si.ssi_int,
		 SIGRTMIN + 1);
	CR_CHECK(!kill(getpid(), SIGUSR1), "kill");
	CR_CHECK(read(fd, &si, sizeof(si)) == sizeof(si) && si.ssi_signo == SIGUSR1,
		 "SIGUSR1 not read");
	/* leave SIGWINCH pending as it was not */
	sigemptyset(&set);
	sigaddset(&set, SIGWINCH);
	CR_CHECK(sigtimedwait(&set, NULL, &(struct timespec){ 0 }) == SIGWINCH, "SIGWINCH gone");
	return cr_victim_result();
}

CR_CASE(anonfd, signalfd, .victim = victim_signalfd);

/* ---- timerfd ---- */

static int victim_timerfd(void *arg)
{
	struct itimerspec once = { .it_value = { 0, 1 * MS } };
	struct itimerspec per = { .it_value = { 0, 10 * MS }, .it_interval = { 0, 10 * MS } };
	struct itimerspec rel = { .it_value = { 0, 400 * MS } };
	struct itimerspec abs = { 0 }, cur;
	long long deadline, armed, t0, left;
	uint64_t ticks = 0;
	int t1, tp, tr, ta;

	t1 = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
	tp = timerfd_create(CLOCK_BOOTTIME, 0);
	tr = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
	ta = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK);
	CR_SETUP(t1 >= 0 && tp >= 0 && tr >= 0 && ta >= 0, "timerfd_create");
	armed = now_ns(CLOCK_BOOTTIME);
	CR_SETUP(!timerfd_settime(t1, 0, &once, NULL) && !timerfd_settime(tp, 0, &per, NULL),
		 "settime");
	deadline = now_ns(CLOCK_REALTIME) + 2000 * MS;
	abs.it_value.tv_sec = deadline / 1000000000LL;
	abs.it_value.tv_nsec = deadline % 1000000000LL;
	CR_SETUP(!timerfd_settime(ta, TFD_TIMER_ABSTIME, &abs, NULL), "settime abs");
	/* the one-shot fired, the periodic one at least 5 times: all unread */
	CR_SETUP(readable(t1, 2000) && readable(tp, 2000), "timers did not fire");
	while (now_ns(CLOCK_BOOTTIME) < armed + 60 * MS)
		CR_SETUP(!poll(NULL, 0, 10) || errno == EINTR, "poll");
	CR_SETUP(!timerfd_settime(tr, 0, &rel, NULL), "settime rel");

	cr_victim_ready_wait();

	t0 = now_ns(CLOCK_MONOTONIC);
	CR_CHECK(read(t1, &ticks, 8) == 8 && ticks == 1, "one-shot: %llu ticks, expected 1",
		 (unsigned long long)ticks);
	CR_CHECK(read(t1, &ticks, 8) < 0 && errno == EAGAIN, "one-shot fired twice");
	CR_CHECK(!timerfd_gettime(tp, &cur) && its_ns(&cur.it_interval) == 10 * MS &&
		 its_ns(&cur.it_value) > 0 && its_ns(&cur.it_value) <= 10 * MS,
		 "periodic: value %lld interval %lld", its_ns(&cur.it_value), its_ns(&cur.it_interval));
	/* on CLOCK_BOOTTIME the time in the images counts too; it cannot exceed the whole time */
	left = (now_ns(CLOCK_BOOTTIME) - armed) / (10 * MS) + 1;
	ticks = 0;
	CR_CHECK(read(tp, &ticks, 8) == 8 && ticks >= 5 && (long long)ticks <= left,
		 "periodic: %llu ticks, expected 5..%lld", (unsigned long long)ticks, left);
	CR_CHECK(!timerfd_gettime(tr, &cur), "gettime");
	left = its_ns(&cur.it_value);
	CR_CHECK(left > 0 && left <= 400 * MS, "relative timer: %lld ns left", left);
	CR_CHECK(!readable(tr, 0), "relative timer fired at once");
	CR_CHECK(readable(tr, 2000), "relative timer did not fire");
	t0 = now_ns(CLOCK_MONOTONIC) - t0;
	CR_CHECK(t0 >= left - 20 * MS && t0 <= left + 200 * MS,
		 "relative timer fired after %lld ms, %lld ms were left", t0 / MS, left / MS);
	CR_CHECK(!timerfd_gettime(ta, &cur), "gettime");
	left = deadline - now_ns(CLOCK_REALTIME);
	CR_CHECK(left <= 0 ? its_ns(&cur.it_value) == 0
			   : llabs(its_ns(&cur.it_value) - left) < 50 * MS,
		 "absolute timer: %lld ms left, the deadline is in %lld ms",
		 its_ns(&cur.it_value) / MS, left / MS);
	CR_CHECK(fcntl(t1, F_GETFL) & O_NONBLOCK && !(fcntl(tp, F_GETFL) & O_NONBLOCK),
		 "O_NONBLOCK not as created");
	return cr_victim_result();
}

CR_CASE(anonfd, timerfd, .victim = victim_timerfd);

/* ---- epoll ---- */

static int victim_epoll(void *arg)
{
	struct epoll_event ev, out[16];
	char before[2048], after[2048];
	int ep, inner, p[2], q[2], idle[2], e, ea, eb, gone, n;
	uint64_t one = 1;
	unsigned seen = 0;

	CR_SETUP(!pipe(p) && !pipe(q) && !pipe(idle), "pipe");
	CR_SETUP(write(p[1], "x", 1) == 1, "write");
	e = eventfd(1, 0);
	ea = eventfd(0, 0);
	CR_SETUP(e >= 0 && ea >= 0, "eventfd");
	eb = dup(ea);
	ep = epoll_create1(EPOLL_CLOEXEC);
	inner = epoll_create1(0);
	CR_SETUP(ep >= 0 && inner >= 0 && eb >= 0, "epoll_create1");
#define ADD(epfd, fd, evs, d)								\
	do {										\
		ev = (struct epoll_event){ .events = (evs), .data.u64 = (d) };		\
		CR_SETUP(!epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev), "add %d", fd);	\
	} while (0)
	ADD(ep, p[0], EPOLLIN, 0x1111);
	ADD(ep, e, EPOLLIN | EPOLLOUT, 0x2222);
	ADD(ep, ea, EPOLLOUT, 0x3333);
	ADD(ep, eb, EPOLLOUT, 0x4444);
	/* q[1] registered as fd gone, then moved: fd gone is closed, the file stays registered */
	gone = q[1];
	ADD(ep, gone, EPOLLOUT, 0x5555);
	q[1] = fcntl(gone, F_DUPFD, 40);
	CR_SETUP(q[1] >= 0 && !close(gone), "move");
	ADD(inner, e, EPOLLIN, 0x7777);
	ADD(ep, inner, EPOLLIN, 0x6666);
	ADD(ep, idle[0], EPOLLIN, 0x8888);
	fdinfo_lines(ep, "tfd:", "pos:", before, sizeof(before));

	cr_victim_ready_wait();

	fdinfo_lines(ep, "tfd:", "pos:", after, sizeof(after));
	CR_CHECK(!strcmp(before, after), "registrations:\n  %s\nexpected:\n  %s", after, before);
	n = epoll_wait(ep, out, 16, 0);
	CR_CHECK(n == 6, "epoll_wait returned %d events, expected 6", n);
	for (int i = 0; i < n; i++) {
		static const struct { uint64_t data; uint32_t events; } want[] = {
			{ 0x1111, EPOLLIN }, { 0x2222, EPOLLIN | EPOLLOUT }, { 0x3333, EPOLLOUT },
			{ 0x4444, EPOLLOUT }, { 0x5555, EPOLLOUT }, { 0x6666, EPOLLIN },
		};
		int k;
		for (k = 0; k < 6 && want[k].data != out[i].data.u64; k++)
			;
		CR_CHECK(k < 6 && out[i].events == want[k].events && !(seen & (1u << k)),
			 "event data 0x%llx events 0x%x unexpected",
			 (unsigned long long)out[i].data.u64, out[i].events);
		if (k < 6)
			seen |= 1u << k;
	}
	n = epoll_wait(inner, out, 16, 0);
	CR_CHECK(n == 1 && out[0].data.u64 == 0x7777, "inner epoll: %d events", n);
	ev = (struct epoll_event){ .events = EPOLLIN, .data.u64 = 0x1112 };
	CR_CHECK(!epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &ev), "EPOLL_CTL_MOD of fd %d: %s", p[0],
		 strerror(errno));
	CR_CHECK(epoll_wait(ep, out, 1, 0) >= 0, "epoll_wait");
	ev.data.u64 = 0x1111;
	CR_CHECK(!epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &ev), "EPOLL_CTL_MOD back");
	CR_CHECK(epoll_ctl(ep, EPOLL_CTL_DEL, gone, NULL) < 0 && errno == EBADF,
		 "fd %d should be closed", gone);
	/* the watched files still work: the closed-but-registered one too */
	CR_CHECK(write(q[1], "y", 1) == 1 && readable(q[0], 0), "moved pipe end broken");
	CR_CHECK(read(q[0], &one, 1) == 1, "read");
	return cr_victim_result();
}

CR_CASE(anonfd, epoll, .victim = victim_epoll);

/* ---- inotify ---- */

static int victim_inotify(void *arg)
{
	static char dir[PATH_MAX], file[PATH_MAX], other[PATH_MAX], made[PATH_MAX];
	char before[1024], after[1024];
	union {
		struct inotify_event ev;
		char buf[4096];
	} u;
	int in, wd1, wd2, wd3, fd;
	bool created = false, modified = false;
	ssize_t n;

	snprintf(dir, sizeof(dir), "%s/watched", cr_victim_dir);
	snprintf(file, sizeof(file), "%s/watched/file", cr_victim_dir);
	snprintf(other, sizeof(other), "%s/other", cr_victim_dir);
	snprintf(made, sizeof(made), "%s/watched/made", cr_victim_dir);
	CR_SETUP(!mkdir(dir, 0755) || errno == EEXIST, "mkdir");
	CR_SETUP(!mkdir(other, 0755) || errno == EEXIST, "mkdir");
	fd = open(file, O_WRONLY | O_CREAT, 0644);
	CR_SETUP(fd >= 0, "create");
	close(fd);
	in = inotify_init1(IN_NONBLOCK);
	CR_SETUP(in >= 0, "inotify_init1");
	wd1 = inotify_add_watch(in, dir, IN_CREATE | IN_DELETE);
	wd2 = inotify_add_watch(in, other, IN_ALL_EVENTS);
	CR_SETUP(wd1 == 1 && wd2 == 2 && !inotify_rm_watch(in, wd2), "watches");
	wd3 = inotify_add_watch(in, file, IN_MODIFY | IN_EXCL_UNLINK);
	CR_SETUP(wd3 == 3, "watch 3");
	while (read(in, &u, sizeof(u)) > 0)
		;
	fdinfo_lines(in, "inotify wd:", NULL, before, sizeof(before));

	cr_victim_ready_wait();

	fdinfo_lines(in, "inotify wd:", NULL, after, sizeof(after));
	CR_CHECK(before[0] && !strcmp(before, after), "watches:\n  %s\nexpected:\n  %s", after,
		 before);
	CR_CHECK(read(in, &u, sizeof(u)) < 0 && errno == EAGAIN, "events queued after restore");
	(void)unlink(made);
	while (read(in, &u, sizeof(u)) > 0)
		;
	fd = open(made, O_WRONLY | O_CREAT | O_EXCL, 0644);
	CR_CHECK(fd >= 0, "create '%s'", made);
	close(fd);
	fd = open(file, O_WRONLY);
	CR_CHECK(fd >= 0 && write(fd, "z", 1) == 1, "write '%s'", file);
	close(fd);
	while ((n = read(in, &u, sizeof(u))) > 0) {
		for (char *p = u.buf; p < u.buf + n;) {
			struct inotify_event *e = (struct inotify_event *)p;
			created |= e->wd == wd1 && (e->mask & IN_CREATE) && !strcmp(e->name, "made");
			modified |= e->wd == wd3 && (e->mask & IN_MODIFY);
			CR_CHECK(e->wd == wd1 || e->wd == wd3, "event for watch %d", e->wd);
			p += sizeof(*e) + e->len;
		}
	}
	CR_CHECK(created, "no IN_CREATE on watch %d", wd1);
	CR_CHECK(modified, "no IN_MODIFY on watch %d", wd3);
	wd2 = inotify_add_watch(in, other, IN_ALL_EVENTS);
	CR_CHECK(wd2 > wd3, "a new watch got %d", wd2);
	CR_CHECK(!inotify_rm_watch(in, wd2), "rm");
	return cr_victim_result();
}

CR_CASE(anonfd, inotify, .victim = victim_inotify);

/* ---- one description shared across a fork ---- */

static int victim_shared_fork(void *arg)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 0xabc }, out;
	int e, ep, go[2], status;
	uint64_t v = 0;
	pid_t child;
	char c;

	e = eventfd(0, EFD_NONBLOCK);
	ep = epoll_create1(0);
	CR_SETUP(e >= 0 && ep >= 0 && !epoll_ctl(ep, EPOLL_CTL_ADD, e, &ev), "epoll");
	CR_SETUP(!pipe(go), "pipe");
	child = fork();
	CR_SETUP(child >= 0, "fork");
	if (child == 0) {
		close(go[1]);
		if (cr_ready_fd >= 0)
			close(cr_ready_fd);
		/* waits for the parent's word, after the restore */
		while (read(go[0], &c, 1) < 0 && errno == EINTR)
			;
		v = 7;
		_exit(write(e, &v, 8) == 8 ? 0 : 1);
	}
	close(go[0]);

	cr_victim_ready_wait();

	CR_CHECK(write(go[1], "g", 1) == 1, "wake the child");
	CR_CHECK(waitpid(child, &status, 0) == child && WIFEXITED(status) && !WEXITSTATUS(status),
		 "child failed: status 0x%x", status);
	CR_CHECK(epoll_wait(ep, &out, 1, 2000) == 1 && out.data.u64 == 0xabc,
		 "the child's write is not seen through the parent's epoll");
	CR_CHECK(read(e, &v, 8) == 8 && v == 7, "parent read %llu, expected 7",
		 (unsigned long long)v);
	return cr_victim_result();
}

CR_CASE(anonfd, shared_fork, .victim = victim_shared_fork, .no_leave = true);

/* ---- refused kinds ---- */

static int victim_pidfd(void *arg)
{
	int fd = syscall(SYS_pidfd_open, getpid(), 0);

	CR_SETUP(fd >= 0, "pidfd_open");
	cr_victim_ready_wait();
	CR_CHECK(!syscall(SYS_pidfd_send_signal, fd, 0, NULL, 0), "pidfd unusable: %s",
		 strerror(errno));
	return cr_victim_result();
}

CR_CASE(anonfd, pidfd_refused, .victim = victim_pidfd, .dump_err = "anon_inode:[pidfd]");

static int victim_userfaultfd(void *arg)
{
	int fd = syscall(SYS_userfaultfd, O_CLOEXEC);

	CR_SETUP(fd >= 0, "userfaultfd: %s", strerror(errno));
	cr_victim_ready_wait();
	CR_CHECK(fcntl(fd, F_GETFD) >= 0, "userfaultfd closed");
	return cr_victim_result();
}

CR_CASE(anonfd, userfaultfd_refused, .victim = victim_userfaultfd,
	.dump_err = "anon_inode:[userfaultfd]");

/* ---- hostile images ---- */

static int victim_hostile(void *arg)
{
	struct epoll_event ev = { .events = EPOLLIN };
	int outer, inner, e, t, in;

	e = eventfd(2, 0);
	t = timerfd_create(CLOCK_MONOTONIC, 0);
	in = inotify_init1(0);
	outer = epoll_create1(0);
	inner = epoll_create1(0);
	CR_SETUP(e >= 0 && t >= 0 && in >= 0 && outer >= 0 && inner >= 0, "create");
	CR_SETUP(!epoll_ctl(inner, EPOLL_CTL_ADD, e, &ev) &&
		 !epoll_ctl(outer, EPOLL_CTL_ADD, inner, &ev), "epoll_ctl");
	CR_SETUP(inotify_add_watch(in, cr_victim_dir, IN_CREATE) == 1 &&
		 inotify_add_watch(in, "/", IN_DELETE) == 2, "inotify_add_watch");

	cr_victim_ready_wait();

	CR_CHECK(readable(outer, 0), "nested epoll not readable");
	return cr_victim_result();
}

static char field[64];

static FileEntry *find_kind(void **list, size_t n, FileKind kind, int nth)
{
	for (size_t i = 0; i < n; i++)
		if (((FileEntry *)list[i])->kind == kind && nth-- == 0)
			return list[i];
	return NULL;
}

/* arg: which edit. Each names the field the restore must report. */
static int edit_files(struct cr_run *r, void **list, size_t n, void *arg)
{
	const char *what = arg;
	FileEntry *a = find_kind(list, n, FILE_KIND__FILE_EPOLL, 0);
	FileEntry *b = find_kind(list, n, FILE_KIND__FILE_EPOLL, 1);
	FileEntry *f;

	if (!strcmp(what, "epoll_self") && a && a->epoll->n_tfd) {
		a->epoll->tfd[0]->file_id = a->id;
		snprintf(field, sizeof(field), "epoll.tfd.file_id");
	} else if (!strcmp(what, "epoll_loop") && a && b && a->epoll->n_tfd && b->epoll->n_tfd) {
		/* the one watching the eventfd now watches the other epoll, which watches it */
		FileEntry *in = a->epoll->tfd[0]->file_id == b->id ? b : a;
		in->epoll->tfd[0]->file_id = in == a ? b->id : a->id;
		snprintf(field, sizeof(field), "epoll.tfd.file_id");
	} else if (!strcmp(what, "timerfd_clock") && (f = find_kind(list, n, FILE_KIND__FILE_TIMERFD, 0))) {
		f->timerfd->clockid = 42;
		snprintf(field, sizeof(field), "timerfd.clockid");
	} else if (!strcmp(what, "inotify_order") &&
		   (f = find_kind(list, n, FILE_KIND__FILE_INOTIFY, 0)) && f->inotify->n_wd == 2) {
		InotifyWdEntry *w = f->inotify->wd[0];
		f->inotify->wd[0] = f->inotify->wd[1];
		f->inotify->wd[1] = w;
		snprintf(field, sizeof(field), "inotify.wd.wd");
	} else if (!strcmp(what, "eventfd_max") && (f = find_kind(list, n, FILE_KIND__FILE_EVENTFD, 0))) {
		f->eventfd->counter = UINT64_MAX;
		snprintf(field, sizeof(field), "eventfd.counter");
	} else {
		return cr_fail(r, "files.img lacks what edit '%s' needs", what);
	}
	snprintf(r->restore_err, sizeof(r->restore_err), "files.img");
	return 0;
}

#define HOSTILE(name)									\
	static int between_##name(struct cr_run *r)					\
	{										\
		return cr_edit_list(r, IMG_FILES, 0, edit_files, #name);		\
	}										\
	static int flow_##name(struct cr_run *r)					\
	{										\
		return cr_flow_restore_edited(r, NULL, field);				\
	}										\
	CR_CASE(anonfd, hostile_##name, .victim = victim_hostile, .flow = flow_##name,	\
		.between = between_##name, .no_leave = true)

static int flow_control(struct cr_run *r)
{
	return cr_flow_restore_edited(r, NULL, NULL);
}

CR_CASE(anonfd, hostile_control, .victim = victim_hostile, .flow = flow_control, .no_leave = true);
HOSTILE(epoll_self);
HOSTILE(epoll_loop);
HOSTILE(timerfd_clock);
HOSTILE(inotify_order);
HOSTILE(eventfd_max);

TEST_HARNESS_MAIN
