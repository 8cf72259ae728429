// SPDX-License-Identifier: MIT
/*
 * migrate_test: live migration (`ckpt migrate` to `ckpt receive -d`) over loopback TCP. The
 * source is the runner's namespace (a fresh PID namespace, or the host's under a child
 * subreaper); every destination is a fresh PID + mount namespace of its own (mig.h), where
 * the source's PIDs are free.
 *
 * The victim: a root that ticks (about every millisecond) a counter into a pipe to its
 * child, which appends each value to DIR/progress; the root rewrites a few hot pages every
 * tick and checks the previous tick's values and one of its cold pages; a thread holds
 * GPR/x87/SSE/AVX values inside an asm block; the root has a file open at an offset, a
 * SIGHUP handler, SIGUSR1 and a queued SIGRTMIN+2 blocked and pending. On SIGUSR2 it stops
 * ticking and checks all of it, its PID, its thread's TID, its child's PID and parent, and
 * that its child saw every counter value once, in order. The runner checks DIR/progress the
 * same way (no gap, no repeat) across the move.
 *
 *  - moved, moved_ipv6: the tree moves (rounds, then the final round) over 127.0.0.1 or
 *    [::1]; the destination runs it with its PIDs, it keeps progressing there, verifies
 *    itself; the source tree is gone, and no trackd (migrate started its own) is left.
 *  - tcp_peer: the root holds a TCP connection (127.0.0.1) to a peer outside the tree, a
 *    child of the runner, that sends numbered lines all along, a few ahead, which the root
 *    checks and echoes. Within one network namespace the connection cannot move (the
 *    source's socket holds its addresses): the migration fails cleanly and the exchange
 *    goes on at the source (no reset, no gap or repeat either way).
 *  - churn: the same while the root forks short-lived children all the time (rounds with
 *    --downtime-target 0 and --max-rounds 6): each child the root reaps, before or after
 *    the move, has its own exit status.
 *  - recv_killed_round0 / recv_killed_mid / recv_killed_final / recv_fault_before_go: the
 *    destination dies (SIGKILL) as round 0 starts, after round 1 was applied, or within the
 *    final round (a relay between the two holds the stream once receive acknowledged round
 *    1, lets migrate freeze the tree for the final round, passes a few KiB of it, then
 *    receive is killed: it never gets the whole round, migrate never gets READY), or fails
 *    after GO (CKPT_FAULT=receive-before-go). migrate exits 1, the source tree is unharmed,
 *    progresses and verifies itself, the destination namespace is empty, no trackd is left.
 *  - pid_taken: the root's PID is taken at the destination (by ckpt receive): receive says
 *    so and applies nothing; migrate exits 1; the source runs on.
 *  - migrate_term_round0 / migrate_term_mid / migrate_killed_mid / migrate_fault_before_go:
 *    migrate gets SIGTERM while round 0 is dumped or later in the rounds, SIGKILL between
 *    two rounds (stopped first, while it holds no task of the tree), or fails before GO
 *    (CKPT_FAULT=migrate-before-go). receive exits 1 and its namespace is empty; the source
 *    runs on (not traced: ptrace lets go when the tracer dies) and verifies itself. After
 *    SIGTERM migrate stops its trackd; after SIGKILL that trackd stays attached, as the
 *    README says: it is then stopped with SIGTERM and must exit. (A SIGKILL while migrate
 *    holds the tree, inside a system call it made a task run, kills that task: not tested.)
 *  - migrate_term_after_go: a relay holds receive's RUNNING; once the copy runs at the
 *    destination, migrate gets SIGTERM, then RUNNING: the migration completes (a stop
 *    signal no longer cancels after GO), the source is gone, one copy ever ran.
 *  - twice: moved A to B, then at once from B (a `ckpt migrate` running in B) to C, a third
 *    namespace, where receive runs without -d: it says the tree runs, waits for the root and
 *    exits with its status; B is empty.
 *  - recv_corrupt_stream: a relay puts junk where round 1 should start (round 0 applied):
 *    receive names the bad frame, removes its frozen tree and exits 1; migrate fails; the
 *    source runs on.
 *  - no_destination: nothing listens at --to: migrate fails to connect, starts no trackd,
 *    and the tree is untouched.
 *  - garbage: receive gets a connection that sends an HTTP request, one that sends 10 bytes
 *    and closes, one that closes at once, and (with --timeout 1) one that stays silent:
 *    each time it exits 1 (not by a signal), saying what was wrong, and leaves nothing
 *    behind.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cr.h"
#include "incr.h"
#include "mig.h"

CR_FIXTURE(mig);

#define PG		INCR_PAGE_SIZE
#define COLD_PAGES	256
#define HOT_PAGES	8
#define CHILD_PAGES	16
#define DATA_LEN	8192
#define DATA_OFF	4321
#define RT_VALUE	77
#define TICK_NS		1000000L
#define KIDS_MAX	64
#define WAIT_MS		INCR_WAIT_MS
#define CKPT_MS		25000	/* bound of a whole migration */

/* ------------------------------------------------------------------ victim side */

/* A case's argument: the victim's and the flow's. */
struct vcfg {
	bool churn;		/* fork short-lived children all the time */
	bool ipv6;		/* over [::1] */
	bool tcp;		/* echo the lines of a peer outside the tree (mt_peer_port) */
	int how;		/* what a failure flow does (enum recv_end, enum mig_end) */
};

static struct {
	unsigned char *cold, *hot, *cmem;
	unsigned long n;		/* last counter value sent */
	pid_t pid, child, tid;
	int pipe_w, data_fd;
	unsigned mem_errors;
	pthread_t th;
	bool avx;
	uint32_t arrived;
	struct cr_regs in, out;
	pid_t kids[KIDS_MAX];
	unsigned kid_idx[KIDS_MAX];
	int nr_kids;
	unsigned forked, reaped;
	int sk;				/* the connection to the peer (cfg->tcp) */
	char line[64];			/* a line from the peer not complete yet */
	size_t line_len;
	unsigned long echoed;		/* the last line number echoed */
	bool sk_bad;			/* the connection failed (reported once) */
} v;

/* The peer's listening port on 127.0.0.1, set by the runner before it forks the victim. */
static unsigned short mt_peer_port;

static unsigned hot_seed(unsigned long n, unsigned i)
{
	return 0x400000u + (unsigned)(n % 100000) * HOT_PAGES + i;
}

static void v_on_hup(int sig)
{
}

static bool v_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		p += n;
		len -= n;
	}
	return true;
}

static ssize_t v_read_all(int fd, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, (char *)buf + got, len - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return got ? (ssize_t)got : n;
		got += n;
	}
	return got;
}

/* The progress child: appends every counter value it reads to DIR/progress; 0 means verify. */
static __attribute__((noreturn)) void v_child_main(int rfd)
{
	char path[PATH_MAX];
	unsigned long last = 0, n;
	pid_t self = getpid(), parent = getppid();
	int fd;

	snprintf(path, sizeof(path), "%s/progress", cr_victim_dir);
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	CR_SETUP(fd >= 0, "open '%s'", path);
	for (;;) {
		char line[32];
		int len;

		if (v_read_all(rfd, &n, sizeof(n)) != sizeof(n)) {
			dprintf(2, "victim child %d: the pipe from %d ended\n", self, parent);
			_exit(3);
		}
		if (!n)
			break;
		CR_CHECK(n == last + 1, "child: counter %lu after %lu", n, last);
		len = snprintf(line, sizeof(line), "%lu\n", n);
		CR_CHECK(v_write_all(fd, line, len), "child: write '%s': %s", path,
			 strerror(errno));
		last = n;
	}
	CR_CHECK(getpid() == self, "child: pid %d, was %d", getpid(), self);
	CR_CHECK(getppid() == parent, "child: parent %d, was %d", getppid(), parent);
	for (unsigned i = 0; i < CHILD_PAGES; i++)
		CR_CHECK(incr_page_matches(v.cmem + i * PG, 0x300000u + i),
			 "child: page %u differs", i);
	CR_CHECK(lseek(fd, 0, SEEK_CUR) >= 0, "child: progress fd: %s", strerror(errno));
	_exit(cr_victim_result());
}

static void *v_thread_main(void *arg)
{
	sigset_t usr2;
	pid_t tid = gettid();

	sigemptyset(&usr2);
	sigaddset(&usr2, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &usr2, NULL);
	v.tid = tid;
	cr_regs_hold(&v.in, &v.out, v.avx, &v.arrived);
	CR_CHECK(!cr_regs_compare(&v.in, &v.out, v.avx), "thread %d: register mismatches above",
		 tid);
	CR_CHECK(gettid() == tid, "thread: tid %d, was %d", gettid(), tid);
	return NULL;
}

static void v_setup(const struct vcfg *cfg)
{
	struct sigaction sa = { .sa_handler = v_on_hup, .sa_flags = SA_RESTART | SA_NODEFER };
	unsigned char data[DATA_LEN];
	char path[PATH_MAX], buf[32];
	long deadline;
	sigset_t set;
	int fds[2], fd;

	v.pid = getpid();
	v.cold = mmap(NULL, COLD_PAGES * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		      -1, 0);
	v.hot = mmap(NULL, HOT_PAGES * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		     -1, 0);
	v.cmem = mmap(NULL, CHILD_PAGES * PG, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CR_SETUP(v.cold != MAP_FAILED && v.hot != MAP_FAILED && v.cmem != MAP_FAILED, "mmap");
	for (unsigned i = 0; i < COLD_PAGES; i++)
		incr_fill_page(v.cold + i * PG, 0x100000u + i);
	for (unsigned i = 0; i < HOT_PAGES; i++)
		incr_fill_page(v.hot + i * PG, hot_seed(0, i));

	/* A file open at an offset. */
	snprintf(path, sizeof(path), "%s/vdata", cr_victim_dir);
	v.data_fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	CR_SETUP(v.data_fd >= 0, "open '%s'", path);
	cr_fill(data, sizeof(data), 0x55);
	CR_SETUP(v_write_all(v.data_fd, data, sizeof(data)), "write '%s'", path);
	CR_SETUP(lseek(v.data_fd, DATA_OFF, SEEK_SET) == DATA_OFF, "lseek");

	/* Signal state: a handler with flags and mask, two blocked pending signals. */
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, SIGWINCH);
	CR_SETUP(!sigaction(SIGHUP, &sa, NULL), "sigaction");
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGRTMIN + 2);
	CR_SETUP(!sigprocmask(SIG_BLOCK, &set, NULL), "sigprocmask");

	/* The progress child, fed over a pipe; its own memory first. */
	for (unsigned i = 0; i < CHILD_PAGES; i++)
		incr_fill_page(v.cmem + i * PG, 0x300000u + i);
	CR_SETUP(!pipe2(fds, O_CLOEXEC), "pipe2");
	v.child = fork();
	CR_SETUP(v.child >= 0, "fork");
	if (!v.child) {
		close(fds[1]);
		v_child_main(fds[0]);
	}
	close(fds[0]);
	v.pipe_w = fds[1];
	snprintf(path, sizeof(path), "%s/child.pid", cr_victim_dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	snprintf(buf, sizeof(buf), "%d\n", v.child);
	CR_SETUP(fd >= 0 && v_write_all(fd, buf, strlen(buf)), "write '%s'", path);
	close(fd);

	CR_SETUP(!kill(v.pid, SIGUSR1), "kill SIGUSR1");
	CR_SETUP(!sigqueue(v.pid, SIGRTMIN + 2, (union sigval){ .sival_int = RT_VALUE }),
		 "sigqueue");

	if (cfg->tcp) {
		struct sockaddr_in sin = { .sin_family = AF_INET,
					   .sin_port = htons(mt_peer_port),
					   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };

		v.sk = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		CR_SETUP(v.sk >= 0 && !connect(v.sk, (struct sockaddr *)&sin, sizeof(sin)),
			 "connect to the peer at 127.0.0.1:%u", mt_peer_port);
	}

	/* The thread holding register values. */
	v.avx = cr_cpu_has_avx();
	cr_regs_init(&v.in, 0x4242);
	CR_SETUP(!pthread_create(&v.th, NULL, v_thread_main, NULL), "pthread_create");
	deadline = incr_now_ms() + WAIT_MS;
	while (!__atomic_load_n(&v.arrived, __ATOMIC_ACQUIRE) && incr_now_ms() < deadline)
		sched_yield();
	CR_SETUP(__atomic_load_n(&v.arrived, __ATOMIC_ACQUIRE), "the thread holds no values");
}

/* A memory check of the loop: reported, at most a few times. */
static void v_mem_check(bool ok, const char *what, unsigned i)
{
	if (ok)
		return;
	if (v.mem_errors++ < 4)
		CR_CHECK(0, "%s page %u differs at tick %lu", what, i, v.n);
}

/* Reaps the children that exited (not the progress child): each with its own status. */
static void v_reap_kids(void)
{
	for (;;) {
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG);
		int k;

		if (pid <= 0)
			return;
		if (pid == v.child) {
			CR_CHECK(0, "the progress child %d ended early (status 0x%x)", pid, status);
			v.child = 0;
			continue;
		}
		for (k = 0; k < v.nr_kids && v.kids[k] != pid; k++)
			;
		if (k == v.nr_kids) {
			CR_CHECK(0, "reaped %d, not a child of ours (status 0x%x)", pid, status);
			continue;
		}
		CR_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == (v.kid_idx[k] & 0x7f),
			 "child %d (#%u): status 0x%x, wanted exit %u", pid, v.kid_idx[k], status,
			 v.kid_idx[k] & 0x7f);
		v.kids[k] = v.kids[v.nr_kids - 1];
		v.kid_idx[k] = v.kid_idx[v.nr_kids - 1];
		v.nr_kids--;
		v.reaped++;
	}
}

/* A child that writes its own copy of a page, lives 0-6 ms and exits with its number. */
static void v_fork_kid(void)
{
	unsigned idx = v.forked;
	pid_t pid;

	if (v.nr_kids == KIDS_MAX)
		return;
	pid = fork();
	if (pid < 0) {
		CR_CHECK(0, "fork child #%u: %s", idx, strerror(errno));
		return;
	}
	if (!pid) {
		struct timespec ts = { 0, (idx % 4) * 2 * TICK_NS };

		incr_fill_page(v.hot, 0x200000u + idx);
		if (!incr_page_matches(v.hot, 0x200000u + idx))
			_exit(126);
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
		_exit(idx & 0x7f);
	}
	v.kids[v.nr_kids] = pid;
	v.kid_idx[v.nr_kids++] = idx;
	v.forked++;
}

/* A connection failure, reported once. */
static void v_sk_fail(const char *what, int err)
{
	if (!v.sk_bad)
		CR_CHECK(0, "connection to the peer, after line %lu: %s: %s", v.echoed, what,
			 err ? strerror(err) : "end of stream");
	v.sk_bad = true;
}

/*
 * Every complete line the peer sent ("N\n", N = 1, 2, 3, ...) is checked to follow the one
 * before and sent back as it is.
 */
static void v_echo(void)
{
	char buf[256];
	ssize_t n;

	if (v.sk_bad)
		return;
	n = recv(v.sk, buf, sizeof(buf), MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		v_sk_fail("recv", n < 0 ? errno : 0);
		return;
	}
	for (ssize_t i = 0; i < n; i++) {
		unsigned long k;
		char *end;

		if (buf[i] != '\n') {
			if (v.line_len == sizeof(v.line) - 1) {
				v_sk_fail("a line too long", EPROTO);
				return;
			}
			v.line[v.line_len++] = buf[i];
			continue;
		}
		v.line[v.line_len] = 0;
		k = strtoul(v.line, &end, 10);
		if (*end || k != v.echoed + 1) {
			if (!v.sk_bad)
				CR_CHECK(0, "the peer's line '%s' after %lu (gap or repeat)", v.line,
					 v.echoed);
			v.sk_bad = true;
			return;
		}
		v.line[v.line_len++] = '\n';
		if (!v_write_all(v.sk, v.line, v.line_len)) {
			v_sk_fail("send", errno);
			return;
		}
		v.echoed = k;
		v.line_len = 0;
	}
}

static void v_tick(const struct vcfg *cfg)
{
	struct timespec ts = { 0, TICK_NS };
	unsigned c;

	v.n++;
	if (!v_write_all(v.pipe_w, &v.n, sizeof(v.n))) {
		if (v.mem_errors++ < 4)
			CR_CHECK(0, "tick %lu: write to the progress child: %s", v.n,
				 strerror(errno));
		return;
	}
	for (unsigned i = 0; i < HOT_PAGES; i++) {
		v_mem_check(incr_page_matches(v.hot + i * PG, hot_seed(v.n - 1, i)), "hot", i);
		incr_fill_page(v.hot + i * PG, hot_seed(v.n, i));
	}
	c = v.n % COLD_PAGES;
	v_mem_check(incr_page_matches(v.cold + c * PG, 0x100000u + c), "cold", c);
	if (cfg->churn) {
		if (v.n % 3 == 0)
			v_fork_kid();
		v_reap_kids();
	}
	if (cfg->tcp)
		v_echo();
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR && !cr_verify_requested)
		;
}

static void v_verify(const struct vcfg *cfg)
{
	unsigned char data[DATA_LEN], want[DATA_LEN];
	struct timespec zero = { 0, 0 };
	struct sigaction sa;
	sigset_t set, one;
	siginfo_t si;
	unsigned long zero_n = 0;
	int status;

	CR_CHECK(getpid() == v.pid, "pid %d, was %d", getpid(), v.pid);
	/* The progress child: it checks the counters it got and itself. */
	CR_CHECK(v_write_all(v.pipe_w, &zero_n, sizeof(zero_n)), "write 0 to the child: %s",
		 strerror(errno));
	status = v.child ? incr_wait_child(v.child) : -ECHILD;
	CR_CHECK(status == 0, "progress child %d: status %d (see above)", v.child, status);
	CR_CHECK(!pthread_join(v.th, NULL), "pthread_join");
	if (cfg->churn) {
		v_reap_kids();
		while (v.nr_kids) {
			pid_t pid = v.kids[0];

			status = incr_wait_child(pid);
			CR_CHECK(status >= 0 && WIFEXITED(status) &&
				 WEXITSTATUS(status) == (v.kid_idx[0] & 0x7f),
				 "child %d (#%u): status %d, wanted exit %u", pid, v.kid_idx[0],
				 status, v.kid_idx[0] & 0x7f);
			v.kids[0] = v.kids[--v.nr_kids];
			v.kid_idx[0] = v.kid_idx[v.nr_kids];
			v.reaped++;
		}
		CR_CHECK(v.forked == v.reaped && v.forked > 0, "forked %u children, reaped %u",
			 v.forked, v.reaped);
		dprintf(1, "victim: %u children forked and reaped\n", v.forked);
	}
	for (unsigned i = 0; i < COLD_PAGES; i++)
		v_mem_check(incr_page_matches(v.cold + i * PG, 0x100000u + i), "cold", i);
	for (unsigned i = 0; i < HOT_PAGES; i++)
		v_mem_check(incr_page_matches(v.hot + i * PG, hot_seed(v.n, i)), "hot", i);

	CR_CHECK(lseek(v.data_fd, 0, SEEK_CUR) == DATA_OFF, "data fd offset %ld, want %d",
		 (long)lseek(v.data_fd, 0, SEEK_CUR), DATA_OFF);
	cr_fill(want, sizeof(want), 0x55);
	CR_CHECK(pread(v.data_fd, data, sizeof(data), 0) == sizeof(data) &&
		 !memcmp(data, want, sizeof(data)), "data file content differs");

	CR_CHECK(!sigaction(SIGHUP, NULL, &sa) && sa.sa_handler == v_on_hup &&
		 (sa.sa_flags & (SA_RESTART | SA_NODEFER)) == (SA_RESTART | SA_NODEFER) &&
		 sigismember(&sa.sa_mask, SIGWINCH), "SIGHUP action changed (flags 0x%x)",
		 (unsigned)sa.sa_flags);
	sigprocmask(SIG_BLOCK, NULL, &set);
	CR_CHECK(sigismember(&set, SIGUSR1) && sigismember(&set, SIGRTMIN + 2),
		 "SIGUSR1 / SIGRTMIN+2 no longer blocked");
	sigpending(&set);
	CR_CHECK(sigismember(&set, SIGUSR1) && sigismember(&set, SIGRTMIN + 2),
		 "SIGUSR1 / SIGRTMIN+2 no longer pending");
	sigemptyset(&one);
	sigaddset(&one, SIGRTMIN + 2);
	CR_CHECK(sigtimedwait(&one, &si, &zero) == SIGRTMIN + 2 &&
		 si.si_value.sival_int == RT_VALUE && si.si_pid == v.pid,
		 "SIGRTMIN+2: value %d, from %d", si.si_value.sival_int, si.si_pid);
	CR_CHECK(sigtimedwait(&one, &si, &zero) < 0 && errno == EAGAIN,
		 "SIGRTMIN+2 queued more than once");
	sigemptyset(&one);
	sigaddset(&one, SIGUSR1);
	CR_CHECK(sigtimedwait(&one, &si, &zero) == SIGUSR1, "SIGUSR1 not pending");
	if (cfg->tcp) {
		int err = -1;
		socklen_t len = sizeof(err);

		CR_CHECK(!v.sk_bad && v.echoed > 0, "%lu lines echoed, the connection %s", v.echoed,
			 v.sk_bad ? "failed (see above)" : "carried none");
		CR_CHECK(!getsockopt(v.sk, SOL_SOCKET, SO_ERROR, &err, &len) && !err,
			 "connection to the peer: SO_ERROR %d", err);
		dprintf(1, "victim: %lu lines of the peer echoed\n", v.echoed);
	}
	if (!v.avx)
		dprintf(1, "victim: no AVX, checked xmm only\n");
}

static int victim_main(void *arg)
{
	const struct vcfg *cfg = arg;

	v_setup(cfg);
	cr_victim_ready();
	while (!cr_verify_requested)
		v_tick(cfg);
	v_verify(cfg);
	return cr_victim_result();
}

static const struct vcfg plain_cfg = { .churn = false };
static const struct vcfg churn_cfg = { .churn = true };
static const struct vcfg ipv6_cfg = { .ipv6 = true };
static const struct vcfg tcp_cfg = { .tcp = true };

/* ------------------------------------------------------------------ runner side */

/* A flow's state; the cleanup at the end of every flow undoes all of it. */
struct mt {
	struct cr_run *r;
	pid_t victim, child;		/* root and progress child: same PIDs everywhere */
	struct cr_tree_snap before;	/* the source tree before the migration */
	bool snapped;
	struct mig_ns dst, dst2;
	pid_t recv;			/* ckpt receive in dst, 0 if none */
	int recv_fd;			/* its pidfd */
	char addr[160];
	pid_t mig;			/* ckpt migrate in the runner's namespace, 0 if none */
	pid_t proxy;			/* the relay between them (mt_proxy_start()), or 0 */
	int proxy_ctl;			/* its control socket */
	pid_t peer;			/* the TCP peer outside the tree (mt_peer_start()), or 0 */
	int peer_ctl;			/* its control socket */
};

static void mt_init(struct mt *m, struct cr_run *r)
{
	memset(m, 0, sizeof(*m));
	m->r = r;
	m->recv_fd = -1;
	m->proxy_ctl = -1;
	m->peer_ctl = -1;
	m->dst.sk = m->dst2.sk = -1;
}

/* Every process the flow started goes, whatever happened; trackd with SIGTERM. */
static void mt_cleanup(struct mt *m)
{
	if (m->mig > 0) {
		kill(m->mig, SIGCONT);
		kill(m->mig, SIGKILL);
		(void)waitpid(m->mig, NULL, 0);
	}
	if (m->recv_fd >= 0) {
		(void)syscall(SYS_pidfd_send_signal, m->recv_fd, SIGCONT, NULL, 0);
		close(m->recv_fd);
	}
	if (m->proxy_ctl >= 0)
		close(m->proxy_ctl);
	if (m->proxy > 0) {
		kill(m->proxy, SIGKILL);
		(void)waitpid(m->proxy, NULL, 0);
	}
	if (m->peer_ctl >= 0)
		close(m->peer_ctl);
	if (m->peer > 0) {
		kill(m->peer, SIGKILL);
		(void)waitpid(m->peer, NULL, 0);
	}
	mig_ns_stop(m->r, &m->dst2);
	mig_ns_stop(m->r, &m->dst);
	mig_trackd_stop_children(m->r);
	if (m->snapped)
		cr_snap_trees_free(&m->before);
}

/* The values DIR/progress holds: 1, 2, 3, ... with no gap or repeat; the last into *ret_n. */
static int mt_progress(struct mt *m, unsigned long *ret_n)
{
	static char text[1 << 22];
	char path[PATH_MAX];
	unsigned long last = 0;
	const char *p;
	ssize_t len;

	snprintf(path, sizeof(path), "%s/progress", m->r->env->dir);
	len = cr_read_file(path, text, sizeof(text));
	if (len == -ENOENT) {
		*ret_n = 0;	/* the child did not open it yet */
		return 0;
	}
	if (len < 0)
		return cr_fail(m->r, "read '%s': %s", path, strerror(-len));
	if (len == sizeof(text) - 1)
		return cr_fail(m->r, "'%s' is over %zu bytes", path, sizeof(text));
	for (p = text; *p;) {
		size_t l = strcspn(p, "\n");
		char *end;
		unsigned long n;

		if (p[l] != '\n')
			break;	/* a line being written */
		n = strtoul(p, &end, 10);
		if (end != p + l || n != last + 1)
			return cr_fail(m->r, "progress: '%.*s' after %lu (gap or repeat)", (int)l,
				       p, last);
		last = n;
		p += l + 1;
	}
	*ret_n = last;
	return 0;
}

/* Waits (bounded) until the victim's progress passed by more than `more` ticks. */
static int mt_wait_progress(struct mt *m, unsigned long more, const char *where)
{
	long deadline = incr_now_ms() + WAIT_MS;
	unsigned long start, now;

	if (mt_progress(m, &start))
		return -1;
	for (;;) {
		if (mt_progress(m, &now))
			return -1;
		if (now > start + more) {
			cr_note(m->r, "progress %s: %lu -> %lu", where, start, now);
			return 0;
		}
		if (incr_now_ms() > deadline)
			return cr_fail(m->r, "the tree makes no progress %s (stuck at %lu)", where,
				       now);
		/* The victim says nothing per tick: poll the file, bounded. */
		(void)poll(NULL, 0, 5);
	}
}

/* The victim started and ticking; its child's PID; the tree snapshotted (unless churning). */
static int mt_start(struct mt *m, bool snapshot)
{
	char path[PATH_MAX], buf[32];

	if (cr_victim_start(m->r))
		return -1;
	m->victim = m->r->victim;
	snprintf(path, sizeof(path), "%s/child.pid", m->r->env->dir);
	if (cr_read_file(path, buf, sizeof(buf)) <= 0 || atoi(buf) <= 0)
		return cr_fail(m->r, "the victim wrote no child.pid");
	m->child = atoi(buf);
	if (mt_wait_progress(m, 20, "before the migration"))
		return -1;
	if (snapshot) {
		if (cr_snapshot_trees(m->r, &m->victim, 1, &m->before))
			return -1;
		m->snapped = true;
	}
	return 0;
}

/*
 * ckpt receive --listen LISTEN [-d] in ns (tag), its address into m->addr. listen NULL means
 * 127.0.0.1:0.
 */
static int mt_recv_start_on(struct mt *m, struct mig_ns *ns, const char *tag, const char *fault,
			    const char *listen, bool detach)
{
	const char *args[] = { "receive", "--listen", listen ? listen : "127.0.0.1:0", "--timeout",
			       "20", detach ? "-d" : NULL, NULL };
	char line[160];

	if (m->recv_fd >= 0)
		close(m->recv_fd);
	m->recv_fd = -1;
	if (mig_ns_spawn(m->r, ns, tag, fault, args, &m->recv, &m->recv_fd) ||
	    mig_wait_line(m->r, tag, "listening on ", m->recv_fd, WAIT_MS, line, sizeof(line)))
		return -1;
	snprintf(m->addr, sizeof(m->addr), "%s", line + strlen("listening on "));
	return 0;
}

static int mt_recv_start(struct mt *m, struct mig_ns *ns, const char *tag, const char *fault)
{
	return mt_recv_start_on(m, ns, tag, fault, NULL, true);
}

/* ckpt migrate -t victim --to m->addr --max-rounds R --downtime-target D, started. */
static int mt_mig_start(struct mt *m, const char *tag, const char *fault, int rounds,
			int downtime)
{
	char pid[16], mr[16], dt[16];
	const char *args[] = { "migrate", "-t", pid, "--to", m->addr, "--max-rounds", mr,
			       "--downtime-target", dt, "--timeout", "20", NULL };

	snprintf(pid, sizeof(pid), "%d", m->victim);
	snprintf(mr, sizeof(mr), "%d", rounds);
	snprintf(dt, sizeof(dt), "%d", downtime);
	m->mig = cr_ckpt_start(m->r, tag, fault, args, -1);
	return m->mig > 0 ? 0 : -1;
}

/* Waits for migrate (bounded); its wait status into *ret_status. */
static int mt_mig_wait(struct mt *m, const char *tag, int *ret_status)
{
	pid_t pid = m->mig;

	m->mig = 0;
	return cr_ckpt_wait(m->r, tag, pid, ret_status);
}

/* receive (tag) ended in the destination namespace with exit code `code`. */
static int mt_recv_exited(struct mt *m, struct mig_ns *ns, const char *tag, int code)
{
	int status;

	if (mig_ns_wait(m->r, ns, m->recv, CKPT_MS, &status))
		return -1;
	m->recv = 0;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != code)
		return cr_fail(m->r, "ckpt %s: status 0x%x, wanted exit %d (see %s.out)", tag,
			       status, code, tag);
	return 0;
}

/* After a migration: the source root was killed, and nothing of its tree is left here. */
static int mt_source_gone(struct mt *m)
{
	int pidfd = syscall(SYS_pidfd_open, m->victim, 0), status;
	struct pollfd p = { .fd = pidfd, .events = POLLIN };
	pid_t keep[3] = { m->dst.init, m->dst2.init, m->peer };

	if (pidfd < 0)
		return cr_fail(m->r, "source root %d: pidfd_open: %s", m->victim, strerror(errno));
	if (poll(&p, 1, WAIT_MS) <= 0) {
		close(pidfd);
		return cr_fail(m->r, "the source root %d still runs after the migration",
			       m->victim);
	}
	close(pidfd);
	if (waitpid(m->victim, &status, 0) != m->victim)
		return cr_fail(m->r, "reap the source root %d: %s", m->victim, strerror(errno));
	m->r->victim = 0;
	if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
		return cr_fail(m->r, "the source root %d ended with status 0x%x, not SIGKILL",
			       m->victim, status);
	return mig_wait_children_only(m->r, keep, 3, WAIT_MS,
				      "the tree migrated (and migrate stopped its trackd)");
}

/* After a failed migration: the source tree runs on as it was, progresses, verifies itself. */
static int mt_source_runs(struct mt *m)
{
	unsigned long n;

	if (mig_tree_traced(m->victim, 0))
		return cr_fail(m->r, "the source tree is still traced after the failed migration");
	if (m->snapped && cr_check_unharmed_trees(m->r, &m->before))
		return -1;
	if (mt_wait_progress(m, 50, "on the source after the failed migration") ||
	    cr_verify(m->r, m->victim, "source") || mt_progress(m, &n))
		return -1;
	cr_note(m->r, "source verified, progress %lu", n);
	return 0;
}

/*
 * The migrated tree runs in ns: its processes are there, it progresses and verifies itself.
 * Its verdict is the exit status of the root, or with a receive that did not detach
 * (recv_tag not NULL), that of receive, which waits for the root.
 */
static int mt_dest_runs(struct mt *m, struct mig_ns *ns, const char *recv_tag)
{
	struct mig_task tasks[MIG_MAX_TASKS];
	bool root = false, child = false;
	pid_t waiter = recv_tag ? m->recv : m->victim;
	unsigned long n;
	int nr, status;

	nr = mig_ns_tasks(m->r, ns, tasks, MIG_MAX_TASKS);
	if (nr < 0)
		return -1;
	for (int i = 0; i < nr; i++) {
		root |= tasks[i].pid == m->victim;
		child |= tasks[i].pid == m->child;
	}
	if (!root || !child)
		return cr_fail(m->r, "the %s namespace lacks the %s %d", ns->name,
			       root ? "progress child" : "root", root ? m->child : m->victim);
	if (mt_wait_progress(m, 50, "at the destination"))
		return -1;
	if (mig_ns_kill(m->r, ns, m->victim, SIGUSR2))
		return cr_fail(m->r, "cannot signal the migrated root %d", m->victim);
	if (mig_ns_wait(m->r, ns, waiter, WAIT_MS * 2, &status))
		return -1;
	if (recv_tag)
		m->recv = 0;
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		return cr_fail(m->r, "the migrated root %d: %s status 0x%x (see victim.out)",
			       m->victim, recv_tag ? "ckpt receive's" : "its", status);
	if (mt_progress(m, &n))
		return -1;
	cr_note(m->r, "migrated tree verified, progress %lu", n);
	return mig_ns_wait_empty(m->r, ns, WAIT_MS, "the migrated tree ended");
}

/* The end of every failed migration: nothing at the destination, no trackd, the source runs. */
static int mt_failed_clean(struct mt *m, const char *mtag, int mstatus, int trackd_left)
{
	pid_t keep[4] = { m->victim, m->child, m->dst.init, m->peer };
	long deadline = incr_now_ms() + WAIT_MS;
	pid_t tr[4];
	int n;

	if (mig_ns_wait_empty(m->r, &m->dst, WAIT_MS, "the migration failed"))
		return -1;
	/*
	 * migrate's `trackd stop` returns once the daemon closed its log: the daemon may still
	 * be exiting. Nothing tells the runner when: poll, bounded.
	 */
	while ((n = mig_trackd_children(tr, 4)) > trackd_left && incr_now_ms() < deadline)
		(void)poll(NULL, 0, 5);
	if (n != trackd_left)
		return cr_fail(m->r, "%d trackd left after migrate ended (status 0x%x), wanted %d",
			       n, mstatus, trackd_left);
	if (n) {
		for (int i = 0; i < n; i++) {
			int pidfd = syscall(SYS_pidfd_open, tr[i], 0), status;
			struct pollfd p = { .fd = pidfd, .events = POLLIN };

			kill(tr[i], SIGTERM);
			if (pidfd < 0 || poll(&p, 1, WAIT_MS) <= 0) {
				if (pidfd >= 0)
					close(pidfd);
				return cr_fail(m->r, "trackd %d did not exit on SIGTERM", tr[i]);
			}
			close(pidfd);
			(void)waitpid(tr[i], &status, 0);
			cr_note(m->r, "trackd %d left by ckpt %s exited on SIGTERM (status 0x%x)",
				tr[i], mtag, status);
		}
	}
	if (mig_wait_children_only(m->r, keep, m->peer > 0 ? 4 : 3, WAIT_MS, "the migration failed"))
		return -1;
	return mt_source_runs(m);
}

/* ---- flows ---- */

static int mt_status_ok(struct mt *m, const char *tag, int status)
{
	if (cr_expect_ok(m->r, tag, status))
		return -1;
	return cr_expect_output(m->r, tag, "migrated, downtime");
}

/* A -> dst (receive listening on listen): migrate with rounds/downtime must succeed. */
static int mt_move(struct mt *m, const char *listen, int rounds, int downtime)
{
	int status;

	if (mig_ns_start(m->r, &m->dst, "destination", mig_pid_base(m->victim, 0)) ||
	    mt_recv_start_on(m, &m->dst, "recv", NULL, listen, true) ||
	    mt_mig_start(m, "migrate", NULL, rounds, downtime) ||
	    mt_mig_wait(m, "migrate", &status) || mt_status_ok(m, "migrate", status) ||
	    mt_recv_exited(m, &m->dst, "recv", 0) ||
	    cr_expect_output(m->r, "recv", "running: 1 root(s)"))
		return -1;
	return mt_source_gone(m);
}

static int flow_moved(struct cr_run *r)
{
	const struct vcfg *cfg = r->c->arg;
	struct mt m;
	int ret;

	mt_init(&m, r);
	ret = mt_start(&m, false);
	if (!ret)
		ret = mt_move(&m, cfg->ipv6 ? "[::1]:0" : NULL, cfg->churn ? 6 : 3,
			      cfg->churn ? 0 : 50);
	if (!ret)
		ret = mt_dest_runs(&m, &m.dst, NULL);
	mt_cleanup(&m);
	return ret;
}

CR_CASE(mig, moved, .victim = victim_main, .arg = (void *)&plain_cfg, .flow = flow_moved,
	.changing = true);
CR_CASE(mig, churn, .victim = victim_main, .arg = (void *)&churn_cfg, .flow = flow_moved,
	.changing = true);
CR_CASE(mig, moved_ipv6, .victim = victim_main, .arg = (void *)&ipv6_cfg, .flow = flow_moved,
	.changing = true);

/* ---- a TCP connection to a peer outside the tree ---- */

#define MT_PEER_WINDOW	4	/* lines the peer sends ahead of the echoes */
#define MT_PEER_STALL_MS CKPT_MS	/* the longest the echoes may stop (a migration) */

/*
 * The peer (a child of the runner, outside the tree): accepts the victim's connection and
 * sends "N\n" for N = 1, 2, 3, ..., MT_PEER_WINDOW lines ahead of the echoes, each of which
 * must be the next line. Each byte on its control socket gets a line back: to 'n', "ok N"
 * (N lines echoed so far) while all is well; to 'q', which first stops the sending and
 * takes the echoes still due, "ok N" for good; after any failure, "err WHAT". It keeps the
 * connection open until the control socket closes.
 */
static __attribute__((noreturn)) void mt_peer_main(int ls, int ctl)
{
	struct pollfd lp = { .fd = ls, .events = POLLIN };
	unsigned long sent = 0, echoed = 0;
	char in[64], verdict[200] = "";
	bool stopping = false;
	size_t in_len = 0;
	long last_echo;
	int sk;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	sk = poll(&lp, 1, WAIT_MS) == 1 ? accept4(ls, NULL, NULL, SOCK_CLOEXEC) : -1;
	close(ls);
	if (sk < 0)
		snprintf(verdict, sizeof(verdict), "err no connection from the victim");
	last_echo = incr_now_ms();
	while (!verdict[0]) {
		struct pollfd p[2] = { { .fd = ctl, .events = POLLIN },
				       { .fd = sk, .events = POLLIN } };
		char buf[256], c;
		long left;
		ssize_t n;

		while (!stopping && sent < echoed + MT_PEER_WINDOW) {
			char line[32];
			int len = snprintf(line, sizeof(line), "%lu\n", sent + 1);

			if (!v_write_all(sk, line, len)) {
				snprintf(verdict, sizeof(verdict), "err send of line %lu: %s",
					 sent + 1, strerror(errno));
				break;
			}
			sent++;
		}
		if (verdict[0])
			break;
		if (stopping && echoed == sent) {
			snprintf(verdict, sizeof(verdict), "ok %lu", echoed);
			if (dprintf(ctl, "%s\n", verdict) < 0)
				_exit(0);
			break;
		}
		left = last_echo + MT_PEER_STALL_MS - incr_now_ms();
		if (left <= 0) {
			snprintf(verdict, sizeof(verdict), "err no echo for %d ms after line %lu",
				 MT_PEER_STALL_MS, echoed);
			break;
		}
		if (poll(p, 2, left) < 0)
			continue;
		if (p[0].revents) {
			if (read(ctl, &c, 1) != 1)
				_exit(0);
			if (c == 'q')
				stopping = true;
			else if (dprintf(ctl, "ok %lu\n", echoed) < 0)
				_exit(0);
		}
		if (!p[1].revents)
			continue;
		n = read(sk, buf, sizeof(buf));
		if (n <= 0) {
			snprintf(verdict, sizeof(verdict), "err after echo %lu: %s", echoed,
				 n ? strerror(errno) : "end of stream");
			break;
		}
		for (ssize_t i = 0; i < n && !verdict[0]; i++) {
			char *end;

			if (buf[i] != '\n' && in_len < sizeof(in) - 1) {
				in[in_len++] = buf[i];
				continue;
			}
			in[in_len] = 0;
			in_len = 0;
			if (strtoul(in, &end, 10) != echoed + 1 || *end || echoed + 1 > sent)
				snprintf(verdict, sizeof(verdict),
					 "err echo '%.32s' after %lu (%lu sent): gap or repeat", in,
					 echoed, sent);
			else
				echoed++;
		}
		last_echo = incr_now_ms();
	}
	/* A failure is told on every request from now on; a verdict given stays. */
	for (;;) {
		char c;

		if (read(ctl, &c, 1) != 1 || dprintf(ctl, "%s\n", verdict) < 0)
			_exit(0);
	}
}

/*
 * Forks the peer, listening on 127.0.0.1 (mt_peer_port) for the victim to be forked next.
 * 0 or cr_fail().
 */
static int mt_peer_start(struct mt *m)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sin);
	int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), sv[2];

	if (ls < 0 || bind(ls, (struct sockaddr *)&sin, sizeof(sin)) || listen(ls, 1) ||
	    getsockname(ls, (struct sockaddr *)&sin, &len)) {
		int err = errno;

		if (ls >= 0)
			close(ls);
		return cr_fail(m->r, "the peer's listener: %s", strerror(err));
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) {
		close(ls);
		return cr_fail(m->r, "socketpair: %s", strerror(errno));
	}
	m->peer = fork();
	if (!m->peer) {
		close(sv[0]);
		mt_peer_main(ls, sv[1]);
	}
	close(ls);
	close(sv[1]);
	m->peer_ctl = sv[0];
	if (m->peer < 0) {
		m->peer = 0;
		return cr_fail(m->r, "fork the peer: %s", strerror(errno));
	}
	mt_peer_port = ntohs(sin.sin_port);
	cr_note(m->r, "TCP peer %d listens on 127.0.0.1:%u", m->peer, mt_peer_port);
	return 0;
}

/* Sends c ('n' or 'q') to the peer; the lines echoed into *ret_n, or cr_fail(). */
static int mt_peer_ask(struct mt *m, char c, unsigned long *ret_n)
{
	long deadline = incr_now_ms() + (c == 'q' ? MT_PEER_STALL_MS : 0) + WAIT_MS;
	char line[200];
	size_t len = 0;

	if (write(m->peer_ctl, &c, 1) != 1)
		return cr_fail(m->r, "the TCP peer's control socket: %s", strerror(errno));
	while (len < sizeof(line) - 1) {
		struct pollfd p = { .fd = m->peer_ctl, .events = POLLIN };
		long left = deadline - incr_now_ms();

		if (left <= 0 || poll(&p, 1, left) != 1 || read(m->peer_ctl, line + len, 1) != 1)
			return cr_fail(m->r, "no answer from the TCP peer to '%c'", c);
		if (line[len] == '\n')
			break;
		len++;
	}
	line[len] = 0;
	if (strncmp(line, "ok ", 3))
		return cr_fail(m->r, "the TCP peer: %s", line);
	*ret_n = strtoul(line + 3, NULL, 10);
	return 0;
}

/* Waits (bounded) until the peer got more than `more` echoes; how many into *ret_n. */
static int mt_peer_wait(struct mt *m, unsigned long more, const char *where,
			unsigned long *ret_n)
{
	long deadline = incr_now_ms() + WAIT_MS;
	unsigned long start, now;

	if (mt_peer_ask(m, 'n', &start))
		return -1;
	for (;;) {
		if (mt_peer_ask(m, 'n', &now))
			return -1;
		if (now > start + more) {
			cr_note(m->r, "TCP echoes %s: %lu -> %lu", where, start, now);
			*ret_n = now;
			return 0;
		}
		if (incr_now_ms() > deadline)
			return cr_fail(m->r, "the TCP exchange makes no progress %s (stuck at %lu)",
				       where, now);
		/* The peer says nothing per line: ask again, bounded. */
		(void)poll(NULL, 0, 5);
	}
}

/*
 * tcp_peer: the tree holds a connection to the peer, which exchanges lines with it all
 * along. The destination shares the source's network namespace, where the source's
 * socket holds the connection's address pair until the source ends, so the destination
 * cannot recreate it (README: TCP moves between hosts or network namespaces): the
 * migration must fail cleanly, and nothing may be lost: the source runs on, its
 * connection going on from where it was, both ways, never out of repair mode too late
 * (a recv would fail), and the destination holds nothing.
 */
static int flow_tcp_peer(struct cr_run *r)
{
	unsigned long before = 0, failed = 0, after = 0;
	struct mt m;
	int ret, status = 0;

	mt_init(&m, r);
	ret = mt_peer_start(&m);
	if (!ret)
		ret = mt_start(&m, false);
	if (!ret)
		ret = mt_peer_wait(&m, 100, "before the migration", &before);
	if (!ret)
		ret = mig_ns_start(m.r, &m.dst, "destination", mig_pid_base(m.victim, 0));
	if (!ret)
		ret = mt_recv_start_on(&m, &m.dst, "recv", NULL, NULL, true);
	if (!ret)
		ret = mt_mig_start(&m, "migrate", NULL, 3, 50);
	if (!ret)
		ret = mt_mig_wait(&m, "migrate", &status);
	if (!ret)
		ret = cr_expect_failed(r, "migrate", status, "Cannot assign requested address");
	if (!ret)
		ret = mt_recv_exited(&m, &m.dst, "recv", 1);
	/* The exchange first: the clean-up check ends the victim once it verified itself. */
	if (!ret)
		ret = mt_peer_ask(&m, 'n', &failed);
	if (!ret)
		ret = mt_peer_wait(&m, 200, "after the failed migration", &after);
	if (!ret)
		ret = mt_peer_ask(&m, 'q', &after);
	if (!ret)
		ret = mt_failed_clean(&m, "migrate", status, 0);
	if (!ret)
		cr_note(r, "TCP peer: %lu lines echoed before the migration, %lu when it had "
			"failed, %lu in all", before, failed, after);
	mt_cleanup(&m);
	return ret;
}

CR_CASE(mig, tcp_peer, .victim = victim_main, .arg = (void *)&tcp_cfg, .flow = flow_tcp_peer,
	.changing = true);

/* receive without -d says its tree runs, then stays to wait for it. */
static int mt_wait_line_recv2(struct mt *m)
{
	return mig_wait_line(m->r, "recv2", "running: 1 root(s)", m->recv_fd, WAIT_MS, NULL, 0);
}

static int flow_twice(struct cr_run *r)
{
	char pid[16];
	const char *args[] = { "migrate", "-t", pid, "--to", NULL, "--max-rounds", "3",
			       "--timeout", "20", NULL };
	pid_t mig2;
	struct mt m;
	int ret, status;

	mt_init(&m, r);
	ret = mt_start(&m, false);
	if (!ret)
		ret = mt_move(&m, NULL, 2, 50);
	if (!ret)
		ret = mt_wait_progress(&m, 20, "in the first destination");
	if (!ret)
		ret = mig_ns_start(r, &m.dst2, "second destination", mig_pid_base(m.victim, 3));
	/* receive in the second namespace (waiting for the root); migrate runs in the first. */
	if (!ret)
		ret = mt_recv_start_on(&m, &m.dst2, "recv2", NULL, NULL, false);
	if (!ret) {
		snprintf(pid, sizeof(pid), "%d", m.victim);
		args[4] = m.addr;
		ret = mig_ns_spawn(r, &m.dst, "migrate2", NULL, args, &mig2, NULL);
	}
	if (!ret)
		ret = mig_ns_wait(r, &m.dst, mig2, CKPT_MS, &status);
	if (!ret && (!WIFEXITED(status) || WEXITSTATUS(status)))
		ret = cr_fail(r, "ckpt migrate2 (in the first destination): status 0x%x", status);
	if (!ret)
		ret = cr_expect_output(r, "migrate2", "migrated, downtime");
	if (!ret)
		ret = mig_ns_wait_empty(r, &m.dst, WAIT_MS,
					"the tree moved on to the second destination");
	if (!ret)
		ret = mt_wait_line_recv2(&m);
	if (!ret)
		ret = mt_dest_runs(&m, &m.dst2, "recv2");
	mt_cleanup(&m);
	return ret;
}

CR_CASE(mig, twice, .victim = victim_main, .arg = (void *)&plain_cfg, .flow = flow_twice,
	.changing = true);

/* ---- the destination fails ---- */

/*
 * The root's PID is taken at the destination (by ckpt receive itself): receive refuses
 * round 0 before it creates any task, saying which PID; migrate fails; the source runs on.
 */
static int flow_pid_taken(struct cr_run *r)
{
	char needle[32];
	struct mt m;
	int ret, status = 0;

	mt_init(&m, r);
	ret = mt_start(&m, true);
	if (!ret)
		ret = mig_ns_start(r, &m.dst, "destination", m.victim - 1);
	if (!ret)
		ret = mt_recv_start(&m, &m.dst, "recv", NULL);
	if (!ret && m.recv != m.victim)
		ret = cr_fail(r, "receive is %d at the destination, not %d", m.recv, m.victim);
	if (!ret)
		ret = mt_mig_start(&m, "migrate", NULL, 3, 50);
	if (!ret)
		ret = mt_mig_wait(&m, "migrate", &status);
	if (!ret)
		ret = cr_expect_failed(r, "migrate", status, NULL);
	if (!ret)
		ret = mt_recv_exited(&m, &m.dst, "recv", 1);
	snprintf(needle, sizeof(needle), "PID %d ", m.victim);
	if (!ret)
		ret = cr_expect_output(r, "recv", needle);
	if (!ret && mig_has_line(r, "recv", "round 0"))
		ret = cr_fail(r, "receive applied round 0 though the root's PID is taken");
	if (!ret)
		ret = mt_failed_clean(&m, "migrate", status, 0);
	mt_cleanup(&m);
	return ret;
}

CR_CASE(mig, pid_taken, .victim = victim_main, .arg = (void *)&plain_cfg,
	.flow = flow_pid_taken, .changing = true);

enum recv_end {
	RECV_KILL_ROUND0,
	RECV_KILL_MID,
	RECV_KILL_FINAL,
	RECV_FAULT_GO,
	RECV_CORRUPT,
};

/*
 * The relay between migrate and receive: it passes everything until receive has sent
 * hold_after bytes (HELLO, ACK 0, ACK 1, READY...: 24 bytes each, the frame header), says
 * 'h' on its control socket, and then, by mode:
 *  - HOLD: passes nothing more either way; on 'f' it passes up to MT_PROXY_MORE more bytes
 *    from migrate and says 'h' again;
 *  - HOLD_BACK: passes nothing more from receive (everything from migrate); on 'f' it
 *    passes everything again;
 *  - CORRUPT: writes junk to receive where migrate's next frame would start, then passes
 *    nothing more from migrate (everything from receive).
 * It ends when the control socket closes (or either side does), and so closes both
 * connections.
 */
#define MT_PROXY_MORE	8192

enum mt_relay {
	MT_RELAY_HOLD,
	MT_RELAY_HOLD_BACK,
	MT_RELAY_CORRUPT,
};

static bool mt_proxy_pass(int from, int to, size_t max, size_t *ret_n)
{
	char buf[65536];
	ssize_t n = read(from, buf, max < sizeof(buf) ? max : sizeof(buf));

	if (n <= 0 || !v_write_all(to, buf, n))
		return false;
	*ret_n = n;
	return true;
}

static __attribute__((noreturn)) void mt_proxy_main(int ls, int ctl, const char *to,
						    size_t hold_after, enum mt_relay mode)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	size_t back = 0, allow = SIZE_MAX, n;
	int a, b;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	sin.sin_port = htons(atoi(strrchr(to, ':') + 1));
	a = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
	b = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (a < 0 || b < 0 || connect(b, (struct sockaddr *)&sin, sizeof(sin)) < 0)
		_exit(2);
	for (;;) {
		struct pollfd p[3] = { { .fd = ctl, .events = POLLIN },
				       { .fd = allow ? a : -1, .events = POLLIN },
				       { .fd = back < hold_after ? b : -1, .events = POLLIN } };
		char c;

		if (poll(p, 3, -1) < 0 && errno != EINTR)
			_exit(2);
		if (p[0].revents) {
			if (read(ctl, &c, 1) != 1)
				_exit(0);
			if (c == 'f' && mode == MT_RELAY_HOLD_BACK)
				hold_after = SIZE_MAX;
			else if (c == 'f')
				allow = MT_PROXY_MORE;
		}
		if (p[1].revents) {
			if (!mt_proxy_pass(a, b, allow, &n))
				_exit(0);
			if (allow != SIZE_MAX && !(allow -= n))
				(void)!write(ctl, "h", 1);
		}
		if (p[2].revents) {
			if (!mt_proxy_pass(b, a, hold_after - back, &n))
				_exit(0);
			back += n;
			if (back >= hold_after && mode == MT_RELAY_CORRUPT) {
				char junk[64];

				/* Junk where the next frame starts; receive's answer passes. */
				memset(junk, 0xa5, sizeof(junk));
				if (!v_write_all(b, junk, sizeof(junk)))
					_exit(0);
				allow = 0;
				hold_after = SIZE_MAX;
				(void)!write(ctl, "h", 1);
			} else if (back >= hold_after) {
				if (mode == MT_RELAY_HOLD)
					allow = 0;
				(void)!write(ctl, "h", 1);
			}
		}
	}
}

/* Starts the relay to m->addr; m->addr becomes the relay's own address. */
static int mt_proxy_start(struct mt *m, size_t hold_after, enum mt_relay mode)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sin);
	int ls, ctl[2];

	ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (ls < 0 || bind(ls, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(ls, 1) < 0 ||
	    getsockname(ls, (struct sockaddr *)&sin, &len) < 0 ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ctl) < 0) {
		int err = errno;

		if (ls >= 0)
			close(ls);
		return cr_fail(m->r, "relay socket: %s", strerror(err));
	}
	m->proxy = fork();
	if (m->proxy < 0) {
		close(ls);
		close(ctl[0]);
		close(ctl[1]);
		return cr_fail(m->r, "fork: %s", strerror(errno));
	}
	if (!m->proxy) {
		close(ctl[0]);
		mt_proxy_main(ls, ctl[1], m->addr, hold_after, mode);
	}
	close(ls);
	close(ctl[1]);
	m->proxy_ctl = ctl[0];
	cr_note(m->r, "relay %d on 127.0.0.1:%d to %s", m->proxy, ntohs(sin.sin_port), m->addr);
	snprintf(m->addr, sizeof(m->addr), "127.0.0.1:%d", ntohs(sin.sin_port));
	return 0;
}

/* Once migrate ended, the relay ends (bounded) and is reaped. 0 or cr_fail(). */
static int mt_proxy_end(struct mt *m)
{
	int pidfd = syscall(SYS_pidfd_open, m->proxy, 0);
	struct pollfd p = { .fd = pidfd, .events = POLLIN };

	if (m->proxy_ctl >= 0)
		close(m->proxy_ctl);
	m->proxy_ctl = -1;
	if (pidfd < 0 || poll(&p, 1, WAIT_MS) <= 0) {
		if (pidfd >= 0)
			close(pidfd);
		return cr_fail(m->r, "the relay %d did not end with the connections", m->proxy);
	}
	close(pidfd);
	if (waitpid(m->proxy, NULL, 0) == m->proxy)
		m->proxy = 0;
	return 0;
}

/* Waits (bounded) for the relay's 'h'; true if it came. */
static bool mt_proxy_held(struct mt *m, long timeout_ms)
{
	struct pollfd p = { .fd = m->proxy_ctl, .events = POLLIN };
	char c;

	return poll(&p, 1, timeout_ms) == 1 && read(m->proxy_ctl, &c, 1) == 1 && c == 'h';
}

/*
 * Within the final round: once receive acknowledged round 1, the relay holds everything;
 * migrate freezes the tree for the final round (and cannot get READY); the relay passes
 * the start of the final round to receive, which is killed while it receives the rest.
 * Closing the relay then ends migrate's connection.
 */
static int mt_kill_recv_final(struct mt *m)
{
	long deadline = incr_now_ms() + WAIT_MS;

	if (!mt_proxy_held(m, CKPT_MS))
		return cr_fail(m->r, "the relay never saw receive acknowledge round 1");
	while (!mig_tree_traced(m->victim, m->mig)) {
		if (incr_now_ms() > deadline)
			return cr_fail(m->r, "migrate did not freeze the tree for the final round");
		/* Nothing says when ckpt seizes a task: poll, bounded. */
		(void)poll(NULL, 0, 1);
	}
	cr_note(m->r, "the tree is frozen for the final round, the relay holds it");
	if (write(m->proxy_ctl, "f", 1) != 1 || !mt_proxy_held(m, WAIT_MS))
		return cr_fail(m->r, "the relay did not pass %d bytes of the final round",
			       MT_PROXY_MORE);
	if (mig_has_line(m->r, "recv", "round 2"))
		return cr_fail(m->r, "receive has the final round, though the relay held it");
	if (syscall(SYS_pidfd_send_signal, m->recv_fd, SIGKILL, NULL, 0))
		return cr_fail(m->r, "cannot kill receive: %s", strerror(errno));
	close(m->proxy_ctl);
	m->proxy_ctl = -1;
	return 0;
}

static int flow_recv_fails(struct cr_run *r)
{
	enum recv_end how = ((const struct vcfg *)r->c->arg)->how;
	bool killed = how != RECV_FAULT_GO && how != RECV_CORRUPT;
	struct mt m;
	int ret, status = 0;

	mt_init(&m, r);
	ret = mt_start(&m, true);
	if (!ret)
		ret = mig_ns_start(r, &m.dst, "destination", mig_pid_base(m.victim, 0));
	if (!ret)
		ret = mt_recv_start(&m, &m.dst, "recv", killed ? NULL : "receive-before-go");
	if (!ret && how == RECV_KILL_FINAL)
		ret = mt_proxy_start(&m, 3 * 24, MT_RELAY_HOLD);
	/* Junk where round 1 starts, once round 0 is applied (HELLO and ACK 0 came back). */
	if (!ret && how == RECV_CORRUPT)
		ret = mt_proxy_start(&m, 2 * 24, MT_RELAY_CORRUPT);
	if (!ret)
		ret = mt_mig_start(&m, "migrate", NULL,
				   how == RECV_KILL_FINAL || how == RECV_FAULT_GO ? 2 : 100, 0);
	if (ret)
		goto out;
	switch (how) {
	case RECV_KILL_ROUND0:
		ret = mig_wait_line(r, "recv", "connection from", m.recv_fd, WAIT_MS, NULL, 0);
		break;
	case RECV_KILL_MID:
		ret = mig_wait_line(r, "recv", "round 1:", m.recv_fd, CKPT_MS, NULL, 0);
		break;
	case RECV_KILL_FINAL:
		ret = mt_kill_recv_final(&m);
		break;
	case RECV_CORRUPT:
		if (!mt_proxy_held(&m, CKPT_MS))
			ret = cr_fail(r, "the relay never saw receive acknowledge round 0");
		break;
	case RECV_FAULT_GO:
		break;
	}
	if (!ret && (how == RECV_KILL_ROUND0 || how == RECV_KILL_MID))
		(void)syscall(SYS_pidfd_send_signal, m.recv_fd, SIGKILL, NULL, 0);
	if (!ret)
		ret = mt_mig_wait(&m, "migrate", &status);
	if (!ret && m.proxy)
		ret = mt_proxy_end(&m);
	if (!ret)
		ret = cr_expect_failed(r, "migrate", status,
				       how == RECV_FAULT_GO ? "destination failed after GO" :
				       how == RECV_KILL_FINAL ? "final round did not complete" :
				       how == RECV_CORRUPT ? "round 1" : NULL);
	if (!ret && killed) {
		int rstatus;

		if (!mig_ns_wait(r, &m.dst, m.recv, WAIT_MS, &rstatus) &&
		    !(WIFSIGNALED(rstatus) && WTERMSIG(rstatus) == SIGKILL))
			ret = cr_fail(r, "receive: status 0x%x, wanted SIGKILL", rstatus);
		m.recv = 0;
	} else if (!ret) {
		ret = mt_recv_exited(&m, &m.dst, "recv", 1);
		if (!ret && how == RECV_CORRUPT)
			ret = cr_expect_output(r, "recv", "bad frame magic");
	}
	if (!ret)
		ret = mt_failed_clean(&m, "migrate", status, 0);
out:
	mt_cleanup(&m);
	return ret;
}

static const struct vcfg arg_recv_kill_round0 = { .how = RECV_KILL_ROUND0 };
static const struct vcfg arg_recv_kill_mid = { .how = RECV_KILL_MID };
static const struct vcfg arg_recv_kill_final = { .how = RECV_KILL_FINAL };
static const struct vcfg arg_recv_fault_go = { .how = RECV_FAULT_GO };
static const struct vcfg arg_recv_corrupt = { .how = RECV_CORRUPT };

CR_CASE(mig, recv_killed_round0, .victim = victim_main, .flow = flow_recv_fails,
	.arg = (void *)&arg_recv_kill_round0, .changing = true);
CR_CASE(mig, recv_killed_mid, .victim = victim_main, .flow = flow_recv_fails,
	.arg = (void *)&arg_recv_kill_mid, .changing = true);
CR_CASE(mig, recv_killed_final, .victim = victim_main, .flow = flow_recv_fails,
	.arg = (void *)&arg_recv_kill_final, .changing = true);
CR_CASE(mig, recv_fault_before_go, .victim = victim_main, .flow = flow_recv_fails,
	.arg = (void *)&arg_recv_fault_go, .changing = true);
CR_CASE(mig, recv_corrupt_stream, .victim = victim_main, .flow = flow_recv_fails,
	.arg = (void *)&arg_recv_corrupt, .changing = true);

/*
 * SIGTERM to migrate after GO: the relay holds receive's RUNNING; once the copy runs at the
 * destination (its progress goes on, though the source is frozen), migrate gets SIGTERM,
 * then RUNNING. From GO on a stop signal must not cancel: the migration completes, the
 * source is gone, and only one copy ever ran (DIR/progress has no repeat).
 */
static int flow_term_after_go(struct cr_run *r)
{
	struct mt m;
	int ret, status = 0;

	mt_init(&m, r);
	ret = mt_start(&m, false);
	if (!ret)
		ret = mig_ns_start(r, &m.dst, "destination", mig_pid_base(m.victim, 0));
	if (!ret)
		ret = mt_recv_start(&m, &m.dst, "recv", NULL);
	/* HELLO, ACK 0, ACK 1, READY from receive pass; RUNNING is held. */
	if (!ret)
		ret = mt_proxy_start(&m, 4 * 24, MT_RELAY_HOLD_BACK);
	if (!ret)
		ret = mt_mig_start(&m, "migrate", NULL, 2, 0);
	if (!ret && !mt_proxy_held(&m, CKPT_MS))
		ret = cr_fail(r, "the relay never saw receive say READY");
	if (!ret)
		ret = mt_wait_progress(&m, 20, "at the destination before RUNNING reached migrate");
	if (!ret && mig_has_line(r, "migrate", "final round"))
		ret = cr_fail(r, "migrate finished though RUNNING was held");
	if (!ret) {
		cr_note(r, "SIGTERM to migrate after GO, then RUNNING");
		kill(m.mig, SIGTERM);
		if (write(m.proxy_ctl, "f", 1) != 1)
			ret = cr_fail(r, "relay: %s", strerror(errno));
	}
	if (!ret)
		ret = mt_mig_wait(&m, "migrate", &status);
	if (!ret)
		ret = mt_status_ok(&m, "migrate", status);
	if (!ret)
		ret = mt_recv_exited(&m, &m.dst, "recv", 0);
	if (!ret && m.proxy)
		ret = mt_proxy_end(&m);
	if (!ret)
		ret = mt_source_gone(&m);
	if (!ret)
		ret = mt_dest_runs(&m, &m.dst, NULL);
	mt_cleanup(&m);
	return ret;
}

CR_CASE(mig, migrate_term_after_go, .victim = victim_main, .arg = (void *)&plain_cfg,
	.flow = flow_term_after_go, .changing = true);

/* ---- the source's migrate fails ---- */

enum mig_end {
	MIG_TERM_ROUND0,
	MIG_TERM_MID,
	MIG_KILL_MID,
	MIG_FAULT_GO,
};

/* Stops migrate at a moment it holds no task of the tree (between two rounds); bounded. */
static int mt_stop_mig_idle(struct mt *m)
{
	for (int tries = 0; tries < 500; tries++) {
		kill(m->mig, SIGSTOP);
		if (mig_wait_stopped(m->r, m->mig, "ckpt migrate"))
			return -1;
		if (!mig_tree_traced(m->victim, m->mig)) {
			cr_note(m->r, "migrate stopped between rounds (try %d)", tries);
			return 0;
		}
		kill(m->mig, SIGCONT);
		/* It holds the tree now: let it go on for a moment. */
		(void)poll(NULL, 0, 3);
	}
	return cr_fail(m->r, "migrate never stopped while it held no task of the tree");
}

static int flow_mig_fails(struct cr_run *r)
{
	enum mig_end how = ((const struct vcfg *)r->c->arg)->how;
	struct mt m;
	int ret, status = 0;

	mt_init(&m, r);
	ret = mt_start(&m, true);
	if (!ret)
		ret = mig_ns_start(r, &m.dst, "destination", mig_pid_base(m.victim, 0));
	if (!ret)
		ret = mt_recv_start(&m, &m.dst, "recv", NULL);
	if (!ret)
		ret = mt_mig_start(&m, "migrate", how == MIG_FAULT_GO ? "migrate-before-go" : NULL,
				   how == MIG_FAULT_GO ? 2 : 100, 0);
	if (ret)
		goto out;
	switch (how) {
	case MIG_TERM_ROUND0: {
		long deadline = incr_now_ms() + WAIT_MS;

		ret = mig_wait_line(r, "recv", "connection from", m.recv_fd, WAIT_MS, NULL, 0);
		/* Best within the dump of round 0: once the tree is frozen by migrate. */
		while (!ret && !mig_tree_traced(m.victim, m.mig) && incr_now_ms() < deadline &&
		       !mig_has_line(r, "migrate", "round 0:"))
			(void)poll(NULL, 0, 1);
		cr_note(r, "SIGTERM to migrate (%s)",
			mig_tree_traced(m.victim, m.mig) ? "tree frozen" : "tree not frozen");
		if (!ret)
			kill(m.mig, SIGTERM);
		break;
	}
	case MIG_TERM_MID:
		ret = mig_wait_line(r, "migrate", "round 1:", -1, CKPT_MS, NULL, 0);
		if (!ret)
			kill(m.mig, SIGTERM);
		break;
	case MIG_KILL_MID:
		ret = mig_wait_line(r, "migrate", "round 1:", -1, CKPT_MS, NULL, 0);
		if (!ret)
			ret = mt_stop_mig_idle(&m);
		if (!ret) {
			kill(m.mig, SIGKILL);
			kill(m.mig, SIGCONT);
		}
		break;
	case MIG_FAULT_GO:
		break;
	}
	if (!ret)
		ret = mt_mig_wait(&m, "migrate", &status);
	if (!ret && how == MIG_KILL_MID && !(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL))
		ret = cr_fail(r, "migrate: status 0x%x, wanted SIGKILL", status);
	if (!ret && how != MIG_KILL_MID)
		ret = cr_expect_failed(r, "migrate", status, NULL);
	if (!ret)
		ret = mt_recv_exited(&m, &m.dst, "recv", 1);
	if (!ret)
		ret = cr_expect_output(r, "recv", "every task restored here is gone");
	if (!ret)
		ret = mt_failed_clean(&m, "migrate", status, how == MIG_KILL_MID ? 1 : 0);
out:
	mt_cleanup(&m);
	return ret;
}

static const struct vcfg arg_mig_term_round0 = { .how = MIG_TERM_ROUND0 };
static const struct vcfg arg_mig_term_mid = { .how = MIG_TERM_MID };
static const struct vcfg arg_mig_kill_mid = { .how = MIG_KILL_MID };
static const struct vcfg arg_mig_fault_go = { .how = MIG_FAULT_GO };

CR_CASE(mig, migrate_term_round0, .victim = victim_main, .flow = flow_mig_fails,
	.arg = (void *)&arg_mig_term_round0, .changing = true);
CR_CASE(mig, migrate_term_mid, .victim = victim_main, .flow = flow_mig_fails,
	.arg = (void *)&arg_mig_term_mid, .changing = true);
CR_CASE(mig, migrate_killed_mid, .victim = victim_main, .flow = flow_mig_fails,
	.arg = (void *)&arg_mig_kill_mid, .changing = true);
CR_CASE(mig, migrate_fault_before_go, .victim = victim_main, .flow = flow_mig_fails,
	.arg = (void *)&arg_mig_fault_go, .changing = true);

/*
 * Nothing listens at the destination: migrate fails to connect, starts no trackd, and the
 * tree is untouched.
 */
static int flow_no_destination(struct cr_run *r)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sin);
	pid_t tr[4];
	struct mt m;
	int ret, status = 0, sk;

	mt_init(&m, r);
	ret = mt_start(&m, true);
	/* A port that is bound (no one else takes it) but not listening: refused. */
	sk = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (!ret && (sk < 0 || bind(sk, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
		     getsockname(sk, (struct sockaddr *)&sin, &len) < 0))
		ret = cr_fail(r, "socket: %s", strerror(errno));
	snprintf(m.addr, sizeof(m.addr), "127.0.0.1:%d", ntohs(sin.sin_port));
	if (!ret)
		ret = mt_mig_start(&m, "migrate", NULL, 3, 50);
	if (!ret)
		ret = mt_mig_wait(&m, "migrate", &status);
	if (!ret)
		ret = cr_expect_failed(r, "migrate", status, "cannot connect");
	if (!ret && mig_trackd_children(tr, 4))
		ret = cr_fail(r, "migrate started a trackd without a destination");
	if (!ret)
		ret = mt_source_runs(&m);
	if (sk >= 0)
		close(sk);
	mt_cleanup(&m);
	return ret;
}

CR_CASE(mig, no_destination, .victim = victim_main, .arg = (void *)&plain_cfg,
	.flow = flow_no_destination, .changing = true);

/* ---- bad input ---- */

/* Connects to addr ("127.0.0.1:PORT"), sends len bytes of data, closes. */
static int mt_send_raw(struct cr_run *r, const char *addr, const void *data, size_t len)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	const char *colon = strrchr(addr, ':');
	int sk;

	if (!colon)
		return cr_fail(r, "bad address '%s'", addr);
	sin.sin_port = htons(atoi(colon + 1));
	sk = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (sk < 0 || connect(sk, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
		int err = errno;

		if (sk >= 0)
			close(sk);
		return cr_fail(r, "connect to '%s': %s", addr, strerror(err));
	}
	if (len && send(sk, data, len, MSG_NOSIGNAL) != (ssize_t)len) {
		close(sk);
		return cr_fail(r, "send to '%s': %s", addr, strerror(errno));
	}
	shutdown(sk, SHUT_WR);
	close(sk);
	return 0;
}

/* receive --timeout 1 with a connection that says nothing: it gives up, saying so. */
static int mt_silent_peer(struct mt *m)
{
	const char *args[] = { "receive", "--listen", "127.0.0.1:0", "-d", "--timeout", "1", NULL };
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	char line[160];
	int sk = -1, ret;

	if (m->recv_fd >= 0)
		close(m->recv_fd);
	m->recv_fd = -1;
	ret = mig_ns_spawn(m->r, &m->dst, "recv-silent", NULL, args, &m->recv, &m->recv_fd);
	if (!ret)
		ret = mig_wait_line(m->r, "recv-silent", "listening on ", m->recv_fd, WAIT_MS, line,
				    sizeof(line));
	if (!ret) {
		sin.sin_port = htons(atoi(strrchr(line, ':') + 1));
		sk = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (sk < 0 || connect(sk, (struct sockaddr *)&sin, sizeof(sin)) < 0)
			ret = cr_fail(m->r, "connect to '%s': %s", line, strerror(errno));
	}
	/* The connection stays open, silent, until receive gave up. */
	if (!ret)
		ret = mt_recv_exited(m, &m->dst, "recv-silent", 1);
	if (!ret)
		ret = cr_expect_output(m->r, "recv-silent", "nothing from the peer for 1 s");
	if (!ret)
		ret = mig_ns_wait_empty(m->r, &m->dst, WAIT_MS, "receive gave up");
	if (sk >= 0)
		close(sk);
	return ret;
}

static int flow_garbage(struct cr_run *r)
{
	static const char http[] = "GET / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: test\r\n\r\n";
	static const struct {
		const char *tag, *data, *needle;
		size_t len;
	} inputs[] = {
		{ "recv-http", http, "bad frame magic", sizeof(http) - 1 },
		{ "recv-short", "0123456789", "truncated", 10 },
		{ "recv-empty", "", "closed the connection", 0 },
	};
	struct mt m;
	int ret;

	mt_init(&m, r);
	ret = mig_ns_start(r, &m.dst, "destination", mig_pid_base(getpid() + 1000, 0));
	for (size_t i = 0; !ret && i < sizeof(inputs) / sizeof(inputs[0]); i++) {
		ret = mt_recv_start(&m, &m.dst, inputs[i].tag, NULL);
		if (!ret)
			ret = mt_send_raw(r, m.addr, inputs[i].data, inputs[i].len);
		if (!ret)
			ret = mt_recv_exited(&m, &m.dst, inputs[i].tag, 1);
		if (!ret)
			ret = cr_expect_output(r, inputs[i].tag, inputs[i].needle);
		if (!ret)
			ret = mig_ns_wait_empty(r, &m.dst, WAIT_MS, "receive rejected the input");
	}
	if (!ret)
		ret = mt_silent_peer(&m);
	mt_cleanup(&m);
	return ret;
}

CR_CASE(mig, garbage, .flow = flow_garbage);

TEST_HARNESS_MAIN
