// SPDX-License-Identifier: MIT
/*
 * incr2_test: state that must survive an incremental chain: trackd, a full dump (i0), two
 * --leave-running deltas (i1, i2) and a final delta (i3) that kills the tree, then a restore
 * of i3 (which walks the chain). Before each delta the runner tells the victim to change
 * its state (step 1, 2, 3); after the restore the victim checks it is exactly as it was at
 * the final dump and that it keeps working.
 *
 *  - aio: a native AIO context with completed reads left in its ring; each step takes one
 *    (checked) and submits three more. After restore the ring header is as dumped, the
 *    waiting events come back in order with their data, obj, res and buffers, a new read
 *    completes and io_destroy() finds the context.
 *  - timers_signals: a periodic POSIX timer (re-armed in step 2) and a disarmed one, an
 *    ITIMER_REAL (re-armed in step 3), blocked pending signals (SIGUSR1 process-wide, SIGHUP
 *    for the thread, SIGRTMIN+1 queued once more each step with its value, SIGRTMIN+4 for
 *    the thread with a hand-made siginfo), the blocked mask (grown in step 1) and a handler
 *    (flags and mask changed in step 2). After restore all of it reads back, each signal
 *    comes exactly once per queued siginfo, the handler runs and the disarmed timer fires.
 *  - threads_fpu: four threads hold distinct GPR/x87/SSE/AVX values inside an asm block
 *    across each dump; each step releases them (they check their registers), each writes
 *    its own pages and takes new values. After restore the registers and pages are right.
 *  - mmap_churn: inside a reserved arena, anonymous and private file mappings (some pages
 *    COW'd) are mapped, unmapped, moved (mremap), re-protected and partly discarded
 *    (MADV_DONTNEED) step by step. After restore the arena's /proc/self/maps lines are the
 *    ones of the final dump and every page holds what the model says.
 *  - fork_exit: a tree of processes driven by commands over pipes: a child forks
 *    grandchildren (step 1), another child exits and is reaped and a new one is forked (step
 *    2), a grandchild execs /bin/sleep and the new child forks (step 3). After restore the
 *    tree (pids, ppids, children lists, comm) is the one of the final dump and each process
 *    checks its memory.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <linux/aio_abi.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cr.h"
#include "incr.h"

CR_FIXTURE(incr2);

#define PG		INCR_PAGE_SIZE
#define WAIT_MS		INCR_WAIT_MS
#define NR_STEPS	3	/* deltas after the full dump; the last one is final */

/* ------------------------------------------------------------------ shared helpers */

/* Waits (bounded) until pid's comm is want (with its newline); true if it became so. */
static bool wait_comm(pid_t pid, const char *want)
{
	char path[64], buf[64] = "";
	long deadline = incr_now_ms() + WAIT_MS;

	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	while (incr_now_ms() < deadline) {
		if (cr_read_file(path, buf, sizeof(buf)) > 0 && !strcmp(buf, want))
			return true;
		(void)poll(NULL, 0, 1);
	}
	return false;
}

/* ---- victim side: one command at a time from DIR/cmd, the reply to DIR/ack ---- */

/* A case's victim: builds its state, changes it on "s N", checks it on "v". */
struct incr2_ops {
	void (*setup)(void);				/* CR_SETUP()s */
	int (*step)(unsigned n, char *reply, size_t size);	/* 0, or -1 with reply set */
	void (*verify)(void);				/* CR_CHECK()s */
};

/* "s N": ops->step(N); any other command is an error. */
static void victim_do(void *arg, const char *cmd, char *reply, size_t size)
{
	const struct incr2_ops *ops = arg;

	snprintf(reply, size, "ok");
	if (cmd[0] != 's')
		snprintf(reply, size, "err unknown command '%s'", cmd);
	else if (!ops->step(strtoul(cmd + 1, NULL, 10), reply, size) && cr_victim_result())
		snprintf(reply, size, "err step%s: check failed (see victim.out)", cmd + 1);
}

/* The victim of every case: arg is its struct incr2_ops. */
static int victim_run(void *arg)
{
	const struct incr2_ops *ops = arg;
	int err;

	ops->setup();
	cr_victim_ready();
	err = incr_victim_serve(victim_do, arg);
	if (err)
		return err;
	/* The runner's SIGUSR2 follows "v": taken first, it interrupts none of the checks. */
	cr_victim_wait();
	ops->verify();
	return cr_victim_result();
}

/* ---- runner side: trackd, the rounds, the restore ---- */

/*
 * Delta i<n> on top of i<n-1> (the full dump i0 for n = 0), left running unless final;
 * after the final one the dumped tree is reaped.
 */
static int dump_round(struct cr_run *r, struct incr *st, pid_t pid, unsigned n, bool final)
{
	char dir[16], prev[16], tag[16];

	snprintf(dir, sizeof(dir), "i%u", n);
	snprintf(prev, sizeof(prev), "../i%u", n - 1);
	snprintf(tag, sizeof(tag), "d%u", n);
	return incr_dump(r, st, tag, pid, dir, n ? prev : NULL, !final, NULL);
}

/* trackd, i0, then "s N" + delta i<N> for each step, the last one final; restore; verify. */
static int rounds_body(struct cr_run *r, struct incr *st, pid_t v)
{
	char cmd[16], top[16];

	if (incr_trackd_start(r, st, &v, 1, "log") || dump_round(r, st, v, 0, false))
		return -1;
	for (unsigned n = 1; n <= NR_STEPS; n++) {
		snprintf(cmd, sizeof(cmd), "s %u", n);
		if (incr_cmd(r, st, v, cmd) || dump_round(r, st, v, n, n == NR_STEPS))
			return -1;
	}
	snprintf(top, sizeof(top), "i%u", NR_STEPS);
	return incr_finish(r, st, v, top, true);
}

/* The flow of every case; no trackd is left attached, whatever happened. */
static int flow_rounds(struct cr_run *r)
{
	return incr_flow(r, rounds_body);
}

#define INCR2_CASE(name, ops)								\
	CR_CASE(incr2, name, .victim = victim_run, .arg = (void *)&(ops),		\
		.flow = flow_rounds, .changing = true)

/* ------------------------------------------------------------------ aio */

#define AIO_REQS	16
#define AIO_FILE_LEN	512

/* The kernel's ring header (fs/aio.c struct aio_ring), then nr io_events. */
struct aio_ring_hdr {
	uint32_t id, nr, head, tail, magic, compat, incompat, header_length;
};

static struct {
	aio_context_t ctx;
	int fd;
	unsigned submitted, taken;	/* requests 0..submitted-1; taken ones left the ring */
	uint32_t nr, head, tail;	/* the ring header after the last step */
	struct iocb cbs[AIO_REQS];
	unsigned char bufs[AIO_REQS][64];
	unsigned char file[AIO_FILE_LEN];
} aio;

static size_t aio_len(unsigned k)
{
	return 8 + k * 5 % 57;
}

static uint64_t aio_data(unsigned k)
{
	return 0xa10000ULL | k;
}

/* Reads of request k: aio_len(k) bytes at offset 7k into bufs[k]. */
static int aio_submit(unsigned count)
{
	for (unsigned i = 0; i < count; i++) {
		unsigned k = aio.submitted;
		struct iocb *cb = &aio.cbs[k];

		if (k == AIO_REQS)
			return -ENOSPC;
		*cb = (struct iocb){ .aio_data = aio_data(k), .aio_lio_opcode = IOCB_CMD_PREAD,
				     .aio_fildes = aio.fd, .aio_buf = (uint64_t)aio.bufs[k],
				     .aio_nbytes = aio_len(k), .aio_offset = 7 * k };
		if (syscall(SYS_io_submit, aio.ctx, 1, &cb) != 1)
			return -errno;
		aio.submitted++;
	}
	return 0;
}

/* The ring header; the completions of all submitted requests must be in (bounded wait). */
static bool aio_ring_settled(void)
{
	struct aio_ring_hdr *h = (struct aio_ring_hdr *)aio.ctx;
	long deadline = incr_now_ms() + WAIT_MS;

	while ((h->tail + h->nr - h->head) % h->nr != aio.submitted - aio.taken &&
	       incr_now_ms() < deadline)
		(void)poll(NULL, 0, 1);
	aio.nr = h->nr;
	aio.head = h->head;
	aio.tail = h->tail;
	return (aio.tail + aio.nr - aio.head) % aio.nr == aio.submitted - aio.taken;
}

/* io_getevents for count completions; each must be the next request's, with its data. */
static void aio_take(unsigned count, const char *when)
{
	struct io_event ev[AIO_REQS];
	struct timespec ts = { WAIT_MS / 1000, 0 };
	long n = syscall(SYS_io_getevents, aio.ctx, count, count, ev, &ts);

	CR_CHECK(n == (long)count, "%s: io_getevents gave %ld of %u: %s", when, n, count,
		 strerror(errno));
	for (long i = 0; i < n; i++) {
		unsigned k = aio.taken++;

		CR_CHECK(ev[i].data == aio_data(k) && ev[i].obj == (uint64_t)&aio.cbs[k] &&
			 ev[i].res == (int64_t)aio_len(k) && !ev[i].res2,
			 "%s: event %ld: data %#llx obj %#llx res %lld res2 %lld, expected request %u",
			 when, i, (unsigned long long)ev[i].data, (unsigned long long)ev[i].obj,
			 (long long)ev[i].res, (long long)ev[i].res2, k);
		CR_CHECK(!memcmp(aio.bufs[k], aio.file + 7 * k, aio_len(k)),
			 "%s: buffer of request %u does not hold the file's bytes", when, k);
	}
}

static void aio_setup(void)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/aio.dat", cr_victim_dir);
	aio.fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	CR_SETUP(aio.fd >= 0, "create '%s'", path);
	cr_fill(aio.file, sizeof(aio.file), 0xa10);
	CR_SETUP(write(aio.fd, aio.file, sizeof(aio.file)) == (ssize_t)sizeof(aio.file), "write");
	CR_SETUP(!syscall(SYS_io_setup, 32, &aio.ctx), "io_setup");
	CR_SETUP(!aio_submit(5), "io_submit");
	aio_take(1, "setup");
	CR_SETUP(aio_ring_settled() && !cr_victim_result(), "ring after set-up");
}

static int aio_step(unsigned n, char *reply, size_t size)
{
	int err;

	(void)n;
	aio_take(1, "step");
	err = aio_submit(3);
	if (err || !aio_ring_settled()) {
		snprintf(reply, size, "err io_submit: %s, ring head %u tail %u of %u",
			 strerror(-err), aio.head, aio.tail, aio.nr);
		return -1;
	}
	return 0;
}

static void aio_verify(void)
{
	struct aio_ring_hdr *h = (struct aio_ring_hdr *)aio.ctx;
	struct io_event *slots = (struct io_event *)(h + 1);
	unsigned waiting = aio.submitted - aio.taken;

	CR_CHECK(waiting == 10, "%u completions waiting at the final dump, expected 10", waiting);
	CR_CHECK(h->nr == aio.nr && h->head == aio.head && h->tail == aio.tail,
		 "ring %#llx: nr %u head %u tail %u, was %u %u %u", (unsigned long long)aio.ctx,
		 h->nr, h->head, h->tail, aio.nr, aio.head, aio.tail);
	/* A reader in user space (libaio) takes the event at head itself. */
	CR_CHECK(slots[h->head % h->nr].data == aio_data(aio.taken),
		 "ring slot %u holds data %#llx", h->head,
		 (unsigned long long)slots[h->head % h->nr].data);
	aio_take(waiting, "after restore");
	CR_CHECK(h->head == h->tail, "head %u tail %u after taking all", h->head, h->tail);
	CR_CHECK(!aio_submit(1), "new io_submit: %s", strerror(errno));
	aio_take(1, "new request");
	CR_CHECK(!syscall(SYS_io_destroy, aio.ctx), "io_destroy: %s", strerror(errno));
}

static const struct incr2_ops aio_ops = { aio_setup, aio_step, aio_verify };

INCR2_CASE(aio, aio_ops);

/* ------------------------------------------------------------------ timers_signals */

#ifndef SA_RESTORER
#define SA_RESTORER	0x04000000	/* set by libc on every sigaction() */
#endif

#define TS_NR_RT1	(NR_STEPS + 2)	/* SIGRTMIN+1 siginfos queued */

static struct {
	int tid_a, tid_b;		/* kernel timer IDs: A periodic, B disarmed */
	struct itimerspec a;		/* A as last armed */
	long a_armed, it_armed;		/* incr_now_ms() when A and the itimer were armed */
	struct itimerval it;		/* ITIMER_REAL as last set */
	int nr_rt1;			/* SIGRTMIN+1 siginfos queued (values 100, 101, ...) */
	int handler_flags;		/* SIGRTMIN+5: flags and mask as last set */
	sigset_t handler_mask;
	sigset_t blocked;		/* the mask at the final step */
	volatile sig_atomic_t handled, handled_value;
} ts;

static int sig_rt(int n)
{
	return SIGRTMIN + n;
}

static void ts_handler(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	ts.handled++;
	if (sig == sig_rt(5))
		ts.handled_value = si->si_value.sival_int;
}

static int ts_timer_create(clockid_t clock, int signo, int value, int *ret_id)
{
	struct sigevent sev = { .sigev_notify = SIGEV_SIGNAL, .sigev_signo = signo,
				.sigev_value.sival_int = value };
	int id;

	if (syscall(SYS_timer_create, clock, &sev, &id))
		return -errno;
	*ret_id = id;
	return 0;
}

static int ts_arm_a(time_t value, time_t interval)
{
	ts.a = (struct itimerspec){ .it_value = { value, 0 }, .it_interval = { interval, 0 } };
	ts.a_armed = incr_now_ms();
	return syscall(SYS_timer_settime, ts.tid_a, 0, &ts.a, NULL) ? -errno : 0;
}

static int ts_set_itimer(time_t value, time_t interval)
{
	ts.it = (struct itimerval){ .it_value = { value, 0 }, .it_interval = { interval, 0 } };
	ts.it_armed = incr_now_ms();
	return setitimer(ITIMER_REAL, &ts.it, NULL) ? -errno : 0;
}

static int ts_set_handler(int flags, const int *mask_sigs)
{
	struct sigaction sa = { .sa_sigaction = ts_handler, .sa_flags = flags };

	sigemptyset(&sa.sa_mask);
	for (; *mask_sigs; mask_sigs++)
		sigaddset(&sa.sa_mask, *mask_sigs);
	ts.handler_flags = flags;
	ts.handler_mask = sa.sa_mask;
	return sigaction(sig_rt(5), &sa, NULL) ? -errno : 0;
}

static int ts_queue_rt1(void)
{
	union sigval v = { .sival_int = 100 + ts.nr_rt1 };

	if (sigqueue(getpid(), sig_rt(1), v))
		return -errno;
	ts.nr_rt1++;
	return 0;
}

/* SIGRTMIN+4 for this thread only, with a siginfo of our own making. */
static int ts_queue_rt4(void)
{
	siginfo_t si = { .si_signo = sig_rt(4), .si_code = SI_QUEUE };

	si.si_pid = getpid();
	si.si_uid = getuid();
	si.si_value.sival_int = 0x4444;
	return syscall(SYS_rt_tgsigqueueinfo, getpid(), gettid(), sig_rt(4), &si) ? -errno : 0;
}

static void ts_setup(void)
{
	static const int mask1[] = { SIGTERM, 0 };
	const int block[] = { SIGUSR1, SIGHUP, sig_rt(1), sig_rt(4), sig_rt(6), sig_rt(7) };
	sigset_t set;

	sigemptyset(&set);
	for (size_t i = 0; i < sizeof(block) / sizeof(block[0]); i++)
		sigaddset(&set, block[i]);
	CR_SETUP(!sigprocmask(SIG_BLOCK, &set, NULL), "sigprocmask");
	CR_SETUP(!ts_timer_create(CLOCK_MONOTONIC, sig_rt(6), 0xa, &ts.tid_a), "timer A");
	CR_SETUP(!ts_timer_create(CLOCK_REALTIME, sig_rt(7), 0xb, &ts.tid_b), "timer B");
	CR_SETUP(!ts_arm_a(30, 7), "arm timer A");
	CR_SETUP(!ts_set_itimer(60, 0), "setitimer");
	CR_SETUP(!ts_set_handler(SA_SIGINFO | SA_RESTART, mask1), "sigaction");
	CR_SETUP(!kill(getpid(), SIGUSR1), "kill SIGUSR1");
	CR_SETUP(!syscall(SYS_tgkill, getpid(), gettid(), SIGHUP), "tgkill SIGHUP");
	CR_SETUP(!ts_queue_rt1() && !ts_queue_rt1(), "sigqueue");
	CR_SETUP(!ts_queue_rt4(), "rt_tgsigqueueinfo");
}

static int ts_step(unsigned n, char *reply, size_t size)
{
	static const int mask2[] = { SIGTERM, SIGQUIT, 0 };
	struct itimerspec on = { .it_value = { 20, 0 } }, off = {};
	sigset_t more;
	int err = 0;

	switch (n) {
	case 1:
		/* B armed and disarmed again; SIGWINCH blocked too */
		sigemptyset(&more);
		sigaddset(&more, SIGWINCH);
		if (syscall(SYS_timer_settime, ts.tid_b, 0, &on, NULL) ||
		    syscall(SYS_timer_settime, ts.tid_b, 0, &off, NULL) ||
		    sigprocmask(SIG_BLOCK, &more, NULL))
			err = -errno;
		break;
	case 2:
		err = ts_arm_a(40, 9);
		if (!err)
			err = ts_set_handler(SA_SIGINFO | SA_RESTART | SA_NODEFER, mask2);
		break;
	case 3:
		err = ts_set_itimer(50, 20);
		break;
	}
	if (!err)
		err = ts_queue_rt1();
	sigprocmask(SIG_BLOCK, NULL, &ts.blocked);
	if (err) {
		snprintf(reply, size, "err step %u: %s", n, strerror(-err));
		return -1;
	}
	return 0;
}

/* Remaining time (ms) must be in (0, set], and at least set - elapsed - 2 s. */
static void ts_check_left(const char *what, long left_ms, long set_ms, long armed)
{
	long low = set_ms - (incr_now_ms() - armed) - 2000;

	CR_CHECK(left_ms > 0 && left_ms <= set_ms && left_ms >= low,
		 "%s: %ld ms left, expected %ld..%ld", what, left_ms, low, set_ms);
}

static long ts_ms(const struct timespec *t)
{
	return t->tv_sec * 1000L + t->tv_nsec / 1000000;
}

/* Mask of signals from a "Key:" line of /proc/thread-self/status. */
static unsigned long long ts_status_mask(const char *key)
{
	static char status[4096];
	char val[64] = "";

	if (cr_read_file("/proc/thread-self/status", status, sizeof(status)) < 0 ||
	    cr_status_field(status, key, val, sizeof(val)))
		return ~0ULL;
	return strtoull(val, NULL, 16);
}

static unsigned long long ts_bit(int sig)
{
	return 1ULL << (sig - 1);
}

/* Takes every queued sig (blocked) with sigtimedwait; values: what si_value each must carry. */
static void ts_take(int sig, int code, const int *values, int nr)
{
	struct timespec zero = {};
	siginfo_t si;
	sigset_t set;
	int i;

	sigemptyset(&set);
	sigaddset(&set, sig);
	/* The raw call: glibc's sigtimedwait() reports SI_TKILL as SI_USER. */
	for (i = 0; syscall(SYS_rt_sigtimedwait, &set, &si, &zero, _NSIG / 8) == sig; i++) {
		CR_CHECK(i < nr, "signal %d: siginfo %d, only %d queued", sig, i + 1, nr);
		if (i >= nr)
			continue;
		CR_CHECK(si.si_code == code && si.si_pid == getpid() && si.si_uid == getuid(),
			 "signal %d #%d: code %d pid %d uid %d, expected %d %d %d", sig, i,
			 si.si_code, si.si_pid, si.si_uid, code, getpid(), getuid());
		if (values)
			CR_CHECK(si.si_value.sival_int == values[i],
				 "signal %d #%d: value %d, expected %d", sig, i,
				 si.si_value.sival_int, values[i]);
	}
	CR_CHECK(i == nr, "signal %d: %d siginfo(s), expected %d", sig, i, nr);
}

static void ts_verify(void)
{
	struct itimerspec a, b;
	struct itimerval it;
	struct sigaction sa;
	sigset_t cur;
	int rt1[TS_NR_RT1], rt4 = 0x4444;
	unsigned long long shd, prv;
	struct timespec two = { 2, 0 };
	siginfo_t si;

	/* the mask */
	sigprocmask(SIG_BLOCK, NULL, &cur);
	for (int s = 1; s <= 64; s++)
		CR_CHECK(sigismember(&cur, s) == sigismember(&ts.blocked, s),
			 "signal %d: blocked %d, was %d", s, sigismember(&cur, s),
			 sigismember(&ts.blocked, s));
	/* pending: process-wide and this thread's own */
	shd = ts_status_mask("ShdPnd");
	prv = ts_status_mask("SigPnd");
	CR_CHECK(shd == (ts_bit(SIGUSR1) | ts_bit(sig_rt(1))), "ShdPnd %llx, expected %llx", shd,
		 ts_bit(SIGUSR1) | ts_bit(sig_rt(1)));
	CR_CHECK(prv == (ts_bit(SIGHUP) | ts_bit(sig_rt(4))), "SigPnd %llx, expected %llx", prv,
		 ts_bit(SIGHUP) | ts_bit(sig_rt(4)));
	/* timers: IDs, A's interval and time left, B disarmed, the itimer */
	CR_CHECK(!syscall(SYS_timer_gettime, ts.tid_a, &a), "timer A (%d): %s", ts.tid_a,
		 strerror(errno));
	CR_CHECK(!syscall(SYS_timer_gettime, ts.tid_b, &b), "timer B (%d): %s", ts.tid_b,
		 strerror(errno));
	CR_CHECK(a.it_interval.tv_sec == ts.a.it_interval.tv_sec && !a.it_interval.tv_nsec,
		 "timer A: interval %ld.%09ld, expected %ld", (long)a.it_interval.tv_sec,
		 a.it_interval.tv_nsec, (long)ts.a.it_interval.tv_sec);
	ts_check_left("timer A", ts_ms(&a.it_value), ts_ms(&ts.a.it_value), ts.a_armed);
	CR_CHECK(!b.it_value.tv_sec && !b.it_value.tv_nsec && !b.it_interval.tv_sec &&
		 !b.it_interval.tv_nsec, "timer B is armed: %ld s every %ld s",
		 (long)b.it_value.tv_sec, (long)b.it_interval.tv_sec);
	CR_CHECK(syscall(SYS_timer_getoverrun, ts.tid_a) == 0, "timer A: overrun");
	CR_CHECK(!getitimer(ITIMER_REAL, &it), "getitimer");
	CR_CHECK(it.it_interval.tv_sec == ts.it.it_interval.tv_sec && !it.it_interval.tv_usec,
		 "itimer: interval %ld s, expected %ld", (long)it.it_interval.tv_sec,
		 (long)ts.it.it_interval.tv_sec);
	ts_check_left("itimer", it.it_value.tv_sec * 1000L + it.it_value.tv_usec / 1000,
		      ts.it.it_value.tv_sec * 1000L, ts.it_armed);
	/* the handler */
	CR_CHECK(!sigaction(sig_rt(5), NULL, &sa), "sigaction");
	CR_CHECK(sa.sa_sigaction == ts_handler, "handler %p, expected %p",
		 (void *)sa.sa_sigaction, (void *)ts_handler);
	CR_CHECK((sa.sa_flags & ~SA_RESTORER) == ts.handler_flags, "handler flags %#x, expected %#x",
		 sa.sa_flags & ~SA_RESTORER, ts.handler_flags);
	for (int s = 1; s <= 64; s++)
		CR_CHECK(sigismember(&sa.sa_mask, s) == sigismember(&ts.handler_mask, s),
			 "handler mask: signal %d %d, expected %d", s, sigismember(&sa.sa_mask, s),
			 sigismember(&ts.handler_mask, s));
	/* each queued siginfo exactly once */
	for (int i = 0; i < TS_NR_RT1; i++)
		rt1[i] = 100 + i;
	CR_CHECK(ts.nr_rt1 == TS_NR_RT1, "%d SIGRTMIN+1 queued, expected %d", ts.nr_rt1,
		 TS_NR_RT1);
	ts_take(SIGUSR1, SI_USER, NULL, 1);
	ts_take(SIGHUP, SI_TKILL, NULL, 1);
	ts_take(sig_rt(1), SI_QUEUE, rt1, ts.nr_rt1);
	ts_take(sig_rt(4), SI_QUEUE, &rt4, 1);
	/* it keeps working: the handler runs, B fires */
	CR_CHECK(!sigqueue(getpid(), sig_rt(5), (union sigval){ .sival_int = 55 }) &&
		 ts.handled == 1 && ts.handled_value == 55, "handler: ran %d times, value %d",
		 (int)ts.handled, (int)ts.handled_value);
	b = (struct itimerspec){ .it_value = { 0, 1000000 } };
	CR_CHECK(!syscall(SYS_timer_settime, ts.tid_b, 0, &b, NULL), "arm timer B: %s",
		 strerror(errno));
	sigemptyset(&cur);
	sigaddset(&cur, sig_rt(7));
	CR_CHECK(sigtimedwait(&cur, &si, &two) == sig_rt(7) && si.si_code == SI_TIMER &&
		 si.si_value.sival_int == 0xb, "timer B did not fire (code %d value %#x)",
		 si.si_code, si.si_value.sival_int);
}

static const struct incr2_ops ts_ops = { ts_setup, ts_step, ts_verify };

INCR2_CASE(timers_signals, ts_ops);

/* ------------------------------------------------------------------ threads_fpu */

#ifdef __x86_64__
#define FPU_THREADS	4
#define FPU_PAGES	8	/* per thread; step n writes pages 2n and 2n+1 */
#define FPU_FINAL	(NR_STEPS + 1)

static struct fpu_thread {
	pthread_t th;
	int idx;
	pid_t tid;
	unsigned char *mem;
	unsigned seeds[FPU_PAGES];
} fpu[FPU_THREADS];
static bool fpu_avx;
static uint32_t fpu_arrived, fpu_released, fpu_go;

static uint32_t load32(const uint32_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

/* Spins (bounded) until *p >= want. */
static bool fpu_wait(const uint32_t *p, uint32_t want)
{
	long deadline = incr_now_ms() + WAIT_MS;

	while (load32(p) < want && incr_now_ms() < deadline)
		sched_yield();
	return load32(p) >= want;
}

/* Values of thread t in round n: its own patterns and its own rounding modes. */
static void fpu_regs(struct cr_regs *in, int t, unsigned n)
{
	cr_regs_init(in, 0x1000 * (t + 1) + n);
	in->mxcsr = 0x1f80 | (t & 3) << 13 | (t & 1 ? 0x8040 : 0);	/* RC, FTZ + DAZ */
	in->fcw = 0x037f | (t & 3) << 10;				/* RC */
	cr_regs_x87(in);
}

/*
 * Round n: hold the round's values in the registers (counted in fpu_arrived) until
 * cr_verify_requested, check them (counted in fpu_released), wait for the go of the
 * next round, write the next round's pages.
 */
static void *fpu_main(void *arg)
{
	struct fpu_thread *t = arg;
	sigset_t usr2;

	sigemptyset(&usr2);
	sigaddset(&usr2, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &usr2, NULL);
	t->tid = gettid();
	for (unsigned n = 0;; n++) {
		struct cr_regs in, out;

		fpu_regs(&in, t->idx, n);
		cr_regs_hold(&in, &out, fpu_avx, &fpu_arrived);
		CR_CHECK(!cr_regs_compare(&in, &out, fpu_avx),
			 "thread %d (tid %d) round %u: register mismatches above", t->idx, t->tid, n);
		__atomic_add_fetch(&fpu_released, 1, __ATOMIC_RELEASE);
		if (!fpu_wait(&fpu_go, n + 1)) {
			CR_CHECK(0, "thread %d: no go for round %u", t->idx, n + 1);
			return NULL;
		}
		if (load32(&fpu_go) == FPU_FINAL)
			return NULL;
		for (unsigned i = 2 * (n + 1); i < 2 * (n + 2) && i < FPU_PAGES; i++) {
			t->seeds[i] = 0x10000 * (t->idx + 1) + 0x100 * (n + 1) + i;
			incr_fill_page(t->mem + i * PG, t->seeds[i]);
		}
	}
}

/* Releases the threads from round n - 1 and (unless final) waits until they hold round n. */
static int fpu_release(unsigned n, char *reply, size_t size)
{
	cr_verify_requested = 1;
	if (!fpu_wait(&fpu_released, FPU_THREADS * n)) {
		snprintf(reply, size, "err %u of %u threads left round %u", load32(&fpu_released),
			 FPU_THREADS * n, n - 1);
		return -1;
	}
	cr_verify_requested = 0;
	__atomic_store_n(&fpu_go, n, __ATOMIC_RELEASE);
	if (n < FPU_FINAL && !fpu_wait(&fpu_arrived, FPU_THREADS * (n + 1))) {
		snprintf(reply, size, "err %u of %u threads hold round %u", load32(&fpu_arrived),
			 FPU_THREADS * (n + 1), n);
		return -1;
	}
	return 0;
}

static void fpu_setup(void)
{
	fpu_avx = cr_cpu_has_avx();
	for (int t = 0; t < FPU_THREADS; t++) {
		fpu[t].idx = t;
		fpu[t].mem = mmap(NULL, FPU_PAGES * PG, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		CR_SETUP(fpu[t].mem != MAP_FAILED, "mmap");
		for (unsigned i = 0; i < FPU_PAGES; i++) {
			fpu[t].seeds[i] = 0x10000 * (t + 1) + i;
			incr_fill_page(fpu[t].mem + i * PG, fpu[t].seeds[i]);
		}
		CR_SETUP(!pthread_create(&fpu[t].th, NULL, fpu_main, &fpu[t]), "pthread_create");
	}
	CR_SETUP(fpu_wait(&fpu_arrived, FPU_THREADS), "%u of %d threads hold their values",
		 load32(&fpu_arrived), FPU_THREADS);
}

static int fpu_step(unsigned n, char *reply, size_t size)
{
	return fpu_release(n, reply, size);
}

static void fpu_verify(void)
{
	char reply[128];
	pid_t tids[FPU_THREADS];

	for (int t = 0; t < FPU_THREADS; t++)
		tids[t] = fpu[t].tid;
	CR_CHECK(!fpu_release(FPU_FINAL, reply, sizeof(reply)), "%s", reply);
	for (int t = 0; t < FPU_THREADS; t++) {
		CR_CHECK(!pthread_join(fpu[t].th, NULL), "join thread %d", t);
		CR_CHECK(fpu[t].tid == tids[t], "thread %d: tid %d, was %d", t, fpu[t].tid, tids[t]);
		for (unsigned i = 0; i < FPU_PAGES; i++)
			CR_CHECK(incr_page_matches(fpu[t].mem + i * PG, fpu[t].seeds[i]),
				 "thread %d: page %u differs (seed %#x)", t, i, fpu[t].seeds[i]);
		CR_CHECK(fpu[t].seeds[2 * NR_STEPS] != 0x10000u * (t + 1) + 2 * NR_STEPS,
			 "thread %d did not write its last step's pages", t);
	}
	if (!fpu_avx)
		dprintf(1, "victim: no AVX, checked xmm only\n");
}

static const struct incr2_ops fpu_ops = { fpu_setup, fpu_step, fpu_verify };

INCR2_CASE(threads_fpu, fpu_ops);
#endif

/* ------------------------------------------------------------------ mmap_churn */

#define MM_PAGES	64	/* the arena, reserved PROT_NONE; every mapping goes in it */
#define MM_FILE_PAGES	16

enum mm_kind { MM_HOLE, MM_ZERO, MM_DATA, MM_FILE };

/* What page i of the arena must be: the model the steps keep up to date. */
static struct mm_page {
	enum mm_kind kind;
	unsigned val;			/* seed (DATA) or page of the file (FILE) */
	int prot;
	int file_pg;			/* -1, or the file page a private file page maps */
} mm_model[MM_PAGES];
static unsigned char *mm_arena;
static int mm_fd;
static char mm_maps[8192];		/* the arena's /proc/self/maps lines at the last step */

static unsigned char *mm_at(unsigned i)
{
	return mm_arena + i * PG;
}

static void mm_set(unsigned i, unsigned n, enum mm_kind kind, int prot)
{
	for (unsigned j = i; j < i + n; j++)
		mm_model[j] = (struct mm_page){ .kind = kind, .prot = prot, .file_pg = -1 };
}

static int mm_anon(unsigned i, unsigned n)
{
	if (mmap(mm_at(i), n * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
		 -1, 0) == MAP_FAILED)
		return -errno;
	mm_set(i, n, MM_ZERO, PROT_READ | PROT_WRITE);
	return 0;
}

/* Pages [i, i + n) map file pages [0, n) privately. */
static int mm_file(unsigned i, unsigned n)
{
	if (mmap(mm_at(i), n * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, mm_fd, 0) ==
	    MAP_FAILED)
		return -errno;
	for (unsigned j = 0; j < n; j++)
		mm_model[i + j] = (struct mm_page){ .kind = MM_FILE, .val = j,
						    .prot = PROT_READ | PROT_WRITE, .file_pg = j };
	return 0;
}

static void mm_write(unsigned i, unsigned seed)
{
	incr_fill_page(mm_at(i), seed);
	mm_model[i].kind = MM_DATA;
	mm_model[i].val = seed;
}

static int mm_unmap(unsigned i, unsigned n)
{
	if (munmap(mm_at(i), n * PG))
		return -errno;
	mm_set(i, n, MM_HOLE, PROT_NONE);
	return 0;
}

static int mm_protect(unsigned i, unsigned n, int prot)
{
	if (mprotect(mm_at(i), n * PG, prot))
		return -errno;
	for (unsigned j = i; j < i + n; j++)
		mm_model[j].prot = prot;
	return 0;
}

/* Anonymous pages read back zero, private file pages the file's again. */
static int mm_discard(unsigned i, unsigned n)
{
	if (madvise(mm_at(i), n * PG, MADV_DONTNEED))
		return -errno;
	for (unsigned j = i; j < i + n; j++) {
		mm_model[j].kind = mm_model[j].file_pg < 0 ? MM_ZERO : MM_FILE;
		mm_model[j].val = mm_model[j].file_pg;
	}
	return 0;
}

/* mremap of [from, from + n) to [to, to + m), m >= n, the rest of the new part zero. */
static int mm_move(unsigned from, unsigned n, unsigned to, unsigned m)
{
	struct mm_page tmp[MM_PAGES];

	if (mremap(mm_at(from), n * PG, m * PG, MREMAP_MAYMOVE | MREMAP_FIXED, mm_at(to)) ==
	    MAP_FAILED)
		return -errno;
	memcpy(tmp, mm_model + from, n * sizeof(tmp[0]));
	mm_set(from, n, MM_HOLE, PROT_NONE);
	memcpy(mm_model + to, tmp, n * sizeof(tmp[0]));
	mm_set(to + n, m - n, MM_ZERO, tmp[n - 1].prot);
	return 0;
}

struct mm_line {
	unsigned long start, end, off, inode;
	char perms[8], dev[16], path[PATH_MAX];
};

static int mm_put_line(char *buf, size_t size, size_t *len, const struct mm_line *m)
{
	if (!m->end)
		return 0;
	*len += snprintf(buf + *len, size - *len, "%lx-%lx %s %08lx %s %lu %s\n", m->start,
			 m->end, m->perms, m->off, m->dev, m->inode, m->path);
	return *len < size ? 0 : -E2BIG;
}

/*
 * The lines of /proc/self/maps that start inside the arena, into buf. Neighbours that
 * differ only in how the kernel split them (same protection, same file at consecutive
 * offsets, or both anonymous) are one line: whether the kernel merges two VMAs depends
 * on their history (anon_vma, pgoff), which a restore does not repeat.
 */
static int mm_read_maps(char *buf, size_t size)
{
	static char maps[1 << 16];
	static struct mm_line prev, cur;
	size_t len = 0;

	if (cr_read_file("/proc/self/maps", maps, sizeof(maps)) < 0)
		return -errno;
	buf[0] = 0;
	memset(&prev, 0, sizeof(prev));
	for (char *l = strtok(maps, "\n"); l; l = strtok(NULL, "\n")) {
		memset(&cur, 0, sizeof(cur));
		if (sscanf(l, "%lx-%lx %7s %lx %15s %lu %4095s", &cur.start, &cur.end, cur.perms,
			   &cur.off, cur.dev, &cur.inode, cur.path) < 6)
			return -EINVAL;
		if (cur.start < (unsigned long)mm_arena || cur.start >= (unsigned long)mm_at(MM_PAGES))
			continue;
		if (prev.end == cur.start && !strcmp(prev.perms, cur.perms) &&
		    !strcmp(prev.dev, cur.dev) && prev.inode == cur.inode &&
		    !strcmp(prev.path, cur.path) &&
		    (!cur.inode || prev.off + (prev.end - prev.start) == cur.off)) {
			prev.end = cur.end;
			continue;
		}
		if (mm_put_line(buf, size, &len, &prev))
			return -E2BIG;
		prev = cur;
	}
	return mm_put_line(buf, size, &len, &prev);
}

static void mm_setup(void)
{
	char path[PATH_MAX];
	static unsigned char page[PG];

	snprintf(path, sizeof(path), "%s/mm.dat", cr_victim_dir);
	mm_fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	CR_SETUP(mm_fd >= 0, "create '%s'", path);
	for (unsigned j = 0; j < MM_FILE_PAGES; j++) {
		incr_fill_page(page, 7000 + j);
		CR_SETUP(write(mm_fd, page, PG) == (ssize_t)PG, "write");
	}
	mm_arena = mmap(NULL, MM_PAGES * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CR_SETUP(mm_arena != MAP_FAILED, "mmap arena");
	mm_set(0, MM_PAGES, MM_ZERO, PROT_NONE);
	/* A: anon [0, 16); F: the file privately at [20, 36), pages 1 and 3 COW'd */
	CR_SETUP(!mm_anon(0, 16) && !mm_file(20, MM_FILE_PAGES), "mmap");
	for (unsigned i = 0; i < 16; i++)
		mm_write(i, 100 + i);
	mm_write(21, 200);
	mm_write(23, 201);
}

static int mm_step(unsigned n, char *reply, size_t size)
{
	int err = 0;

	switch (n) {
	case 1:
		/* B: anon [40, 48); A shrinks to [0, 12), [4, 8) read-only, [8, 10) discarded;
		 * F page 5 COW'd */
		err = mm_anon(40, 8);
		for (unsigned i = 40; !err && i < 48; i++)
			mm_write(i, 300 + i);
		if (!err)
			err = mm_unmap(12, 4);
		if (!err)
			err = mm_protect(4, 4, PROT_READ);
		if (!err)
			err = mm_discard(8, 2);
		if (!err)
			mm_write(25, 202);
		break;
	case 2:
		/* B grows to 12 pages, moved to [50, 62); F page 10 read-only, COW'd page 3
		 * discarded (the file's again), page 7 COW'd */
		err = mm_move(40, 8, 50, 12);
		for (unsigned i = 58; !err && i < 62; i++)
			mm_write(i, 400 + i);
		if (!err)
			err = mm_protect(30, 1, PROT_READ);
		if (!err)
			err = mm_discard(23, 1);
		if (!err)
			mm_write(27, 203);
		break;
	case 3:
		/* C: anon [36, 40) written, then PROT_NONE; A's [0, 4) moved into its hole at
		 * [12, 16); more writes to A and B */
		err = mm_anon(36, 4);
		for (unsigned i = 36; !err && i < 40; i++)
			mm_write(i, 500 + i);
		if (!err)
			err = mm_protect(36, 4, PROT_NONE);
		if (!err)
			err = mm_move(0, 4, 12, 4);
		if (!err) {
			mm_write(10, 600);
			mm_write(52, 601);
		}
		break;
	}
	if (!err)
		err = mm_read_maps(mm_maps, sizeof(mm_maps));
	if (err) {
		snprintf(reply, size, "err step %u: %s", n, strerror(-err));
		return -1;
	}
	return 0;
}

static void mm_verify(void)
{
	static char maps[sizeof(mm_maps)], want[PG];
	unsigned char vec;

	CR_CHECK(!mm_read_maps(maps, sizeof(maps)), "read maps");
	if (strcmp(maps, mm_maps)) {
		/* the first line that differs, and the whole lists in victim.out */
		size_t i = 0;

		while (maps[i] == mm_maps[i])
			i++;
		while (i && maps[i - 1] != '\n')
			i--;
		CR_CHECK(0, "arena maps differ from line '%.80s': '%.80s' at the dump", maps + i,
			 mm_maps + i);
		dprintf(1, "victim: arena after restore:\n%sat the final dump:\n%s", maps, mm_maps);
	}
	for (unsigned i = 0; i < MM_PAGES; i++) {
		const struct mm_page *p = &mm_model[i];
		const unsigned char *at = mm_at(i);

		if (p->kind == MM_HOLE) {
			CR_CHECK(mincore((void *)at, PG, &vec) < 0 && errno == ENOMEM,
				 "arena page %u: unmapped at the dump, mapped now", i);
			continue;
		}
		/* The maps matched: unreadable pages are made readable to look at them. */
		if (!(p->prot & PROT_READ) && mprotect((void *)at, PG, PROT_READ)) {
			CR_CHECK(0, "arena page %u: mprotect: %s", i, strerror(errno));
			continue;
		}
		switch (p->kind) {
		case MM_ZERO:
			CR_CHECK(cr_all_zero(at, PG), "arena page %u is not zero", i);
			break;
		case MM_DATA:
			CR_CHECK(incr_page_matches(at, p->val), "arena page %u: data %u differs", i,
				 p->val);
			break;
		case MM_FILE:
			incr_fill_page(want, 7000 + p->val);
			CR_CHECK(!memcmp(at, want, PG), "arena page %u: not file page %u", i,
				 p->val);
			break;
		case MM_HOLE:
			break;
		}
	}
	/* it keeps working: a write to A, an unmap */
	mm_write(10, 700);
	CR_CHECK(incr_page_matches(mm_at(10), 700) && !mm_unmap(50, 12), "A or B after restore");
}

static const struct incr2_ops mm_ops = { mm_setup, mm_step, mm_verify };

INCR2_CASE(mmap_churn, mm_ops);

/* ------------------------------------------------------------------ fork_exit */

/*
 * Every process of the tree is a node: its pages hold a pattern of its pid, it takes
 * commands (a line) from its parent and answers with one. "f": fork a child node, answer
 * its pid; "x": exit 0; "e": exec /bin/sleep; a command led by digit i goes to child i.
 * EOF: check the pages and getppid(), end the children (an exec'd one is killed), exit
 * with the verdict.
 */
#define TREE_KIDS	4
#define TREE_PAGES	4

struct tree_kid {
	pid_t pid;			/* 0: gone */
	int cmd_w, rep_r;
	bool execed;
};

static struct {
	struct tree_kid kids[TREE_KIDS];
	int nr_kids;
	int cmd_r, rep_w;		/* -1 in the root */
	pid_t parent;			/* as fork() saw it */
	unsigned char *mem;
} node = { .cmd_r = -1, .rep_w = -1 };

static int tree_fill(void)
{
	node.mem = mmap(NULL, TREE_PAGES * PG, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (node.mem == MAP_FAILED)
		return -errno;
	for (unsigned i = 0; i < TREE_PAGES; i++)
		incr_fill_page(node.mem + i * PG, getpid() * 16 + i);
	return 0;
}

static void tree_close_kid(struct tree_kid *k)
{
	if (k->cmd_w >= 0)
		close(k->cmd_w);
	if (k->rep_r >= 0)
		close(k->rep_r);
	k->cmd_w = k->rep_r = -1;
}

/* Checks its own pages and parent, then ends its children and checks how they ended. */
static void tree_check_self(void)
{
	for (unsigned i = 0; i < TREE_PAGES; i++)
		CR_CHECK(incr_page_matches(node.mem + i * PG, getpid() * 16 + i),
			 "process %d: page %u differs", getpid(), i);
	if (node.cmd_r >= 0)
		CR_CHECK(getppid() == node.parent, "process %d: parent %d, was %d", getpid(),
			 getppid(), node.parent);
	for (int i = 0; i < node.nr_kids; i++) {
		struct tree_kid *k = &node.kids[i];
		int status;

		if (!k->pid)
			continue;
		if (k->execed)
			kill(k->pid, SIGKILL);
		tree_close_kid(k);
		status = incr_wait_child(k->pid);
		CR_CHECK(status >= 0 && (k->execed ? WIFSIGNALED(status) :
					 WIFEXITED(status) && !WEXITSTATUS(status)),
			 "process %d: child %d: status %#x (its failures are in victim.out)", getpid(),
			 k->pid, status);
		k->pid = 0;
	}
}

static void __attribute__((noreturn)) tree_node_main(void);

static int tree_fork(char *reply, size_t size)
{
	int cmd[2], rep[2];
	struct tree_kid *k;
	pid_t pid, parent = getpid();

	if (node.nr_kids == TREE_KIDS)
		return -ENOSPC;
	if (pipe2(cmd, O_CLOEXEC))
		return -errno;
	if (pipe2(rep, O_CLOEXEC)) {
		close(cmd[0]);
		close(cmd[1]);
		return -errno;
	}
	pid = fork();
	if (pid < 0)
		return -errno;
	if (!pid) {
		/* The parent's other pipes are not this node's. */
		for (int i = 0; i < node.nr_kids; i++)
			tree_close_kid(&node.kids[i]);
		if (node.rep_w >= 0) {
			close(node.cmd_r);
			close(node.rep_w);
		}
		close(cmd[1]);
		close(rep[0]);
		node.nr_kids = 0;
		node.cmd_r = cmd[0];
		node.rep_w = rep[1];
		node.parent = parent;
		tree_node_main();
	}
	close(cmd[0]);
	close(rep[1]);
	k = &node.kids[node.nr_kids++];
	*k = (struct tree_kid){ .pid = pid, .cmd_w = cmd[1], .rep_r = rep[0] };
	snprintf(reply, size, "ok %d", pid);
	return 0;
}


/* cmd to child i; after "x" it is reaped, after "e" it must become sleep. */
static void tree_forward(int i, const char *cmd, char *reply, size_t size)
{
	struct tree_kid *k = &node.kids[i];
	char line[64];
	int status, err;

	if (i >= node.nr_kids || !k->pid || k->execed) {
		snprintf(reply, size, "err %d: no child %d to take '%s'", getpid(), i, cmd);
		return;
	}
	snprintf(line, sizeof(line), "%s\n", cmd);
	if (write(k->cmd_w, line, strlen(line)) != (ssize_t)strlen(line)) {
		snprintf(reply, size, "err %d: write to child %d: %s", getpid(), k->pid,
			 strerror(errno));
		return;
	}
	err = incr_read_line(k->rep_r, reply, size, WAIT_MS);
	if (err) {
		snprintf(reply, size, "err %d: no reply from child %d: %s", getpid(), k->pid,
			 strerror(-err));
		return;
	}
	if (!strcmp(cmd, "x")) {
		tree_close_kid(k);
		if (waitpid(k->pid, &status, 0) != k->pid || !WIFEXITED(status) ||
		    WEXITSTATUS(status))
			snprintf(reply, size, "err child %d: status %#x", k->pid, status);
		k->pid = 0;
	} else if (!strcmp(cmd, "e")) {
		tree_close_kid(k);
		k->execed = true;
		if (!wait_comm(k->pid, "sleep\n"))
			snprintf(reply, size, "err child %d did not exec", k->pid);
	}
}

static void tree_do(const char *cmd, char *reply, size_t size)
{
	int err = 0;

	if (cmd[0] >= '0' && cmd[0] <= '9') {
		tree_forward(cmd[0] - '0', cmd + 1, reply, size);
		return;
	}
	snprintf(reply, size, "ok");
	if (!strcmp(cmd, "f"))
		err = tree_fork(reply, size);
	else
		snprintf(reply, size, "err %d: unknown command '%s'", getpid(), cmd);
	if (err)
		snprintf(reply, size, "err %d: fork: %s", getpid(), strerror(-err));
}

static void __attribute__((noreturn)) tree_node_main(void)
{
	char cmd[64], reply[128];

	if (tree_fill())
		_exit(2);
	for (;;) {
		int err = incr_read_line(node.cmd_r, cmd, sizeof(cmd), -1);

		if (err == -EPIPE)
			break;
		if (err)
			_exit(2);
		if (!strcmp(cmd, "x") || !strcmp(cmd, "e")) {
			snprintf(reply, sizeof(reply), "ok\n");
			if (write(node.rep_w, reply, strlen(reply)) < 0)
				_exit(2);
			if (cmd[0] == 'x')
				_exit(0);
			execl("/bin/sleep", "sleep", "1000", (char *)NULL);
			_exit(3);
		}
		tree_do(cmd, reply, sizeof(reply) - 1);
		strcat(reply, "\n");
		if (write(node.rep_w, reply, strlen(reply)) < 0)
			_exit(2);
	}
	tree_check_self();
	_exit(cr_victim_result());
}

/* Runs the tree commands in turn (in the root). */
static int tree_run(const char *const cmds[], char *reply, size_t size)
{
	for (; *cmds; cmds++) {
		tree_do(*cmds, reply, size);
		if (strncmp(reply, "ok", 2))
			return -1;
	}
	return 0;
}

/* The pids of pid's children from /proc, into kids (sorted); how many. */
static int tree_children(pid_t pid, pid_t *kids, int max)
{
	char path[64], buf[512];
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", pid, pid);
	if (cr_read_file(path, buf, sizeof(buf)) < 0)
		return -1;
	for (char *s = strtok(buf, " \n"); s && n < max; s = strtok(NULL, " \n"))
		kids[n++] = atoi(s);
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && kids[j - 1] > kids[j]; j--) {
			pid_t t = kids[j];

			kids[j] = kids[j - 1];
			kids[j - 1] = t;
		}
	return n;
}

static int cmp_pid(const void *a, const void *b)
{
	return *(const pid_t *)a - *(const pid_t *)b;
}

/* The tree at the final dump: pid, parent, comm. */
static struct tree_want {
	pid_t pid, ppid;
	char comm[32];
} tree_want[16];
static int tree_nr_want;

/* Records the live tree under pid (parents from /proc) into tree_want. */
static int tree_record(pid_t pid, pid_t ppid)
{
	char path[64];
	pid_t kids[16];
	int n;

	if (tree_nr_want == 16)
		return -ENOSPC;
	tree_want[tree_nr_want].pid = pid;
	tree_want[tree_nr_want].ppid = ppid;
	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	if (cr_read_file(path, tree_want[tree_nr_want].comm, sizeof(tree_want[0].comm)) <= 0)
		return -ENOENT;
	tree_nr_want++;
	n = tree_children(pid, kids, 16);
	if (n < 0)
		return -ENOENT;
	for (int i = 0; i < n; i++)
		if (tree_record(kids[i], pid))
			return -ENOENT;
	return 0;
}

static void tree_setup(void)
{
	static const char *const cmds[] = { "f", "f", NULL };
	char reply[128];

	node.parent = getppid();
	CR_SETUP(!tree_fill(), "mmap");
	CR_SETUP(!tree_run(cmds, reply, sizeof(reply)), "%s", reply);
}

static int tree_step(unsigned n, char *reply, size_t size)
{
	/* step 1: child 0 forks two; 2: child 1 exits, the root forks child 2; 3: child 0's
	 * first exec's, child 2 forks */
	static const char *const step1[] = { "0f", "0f", NULL }, *const step2[] = { "1x", "f", NULL },
				 *const step3[] = { "00e", "2f", NULL };
	static const char *const *const steps[] = { NULL, step1, step2, step3 };
	int err;

	if (tree_run(steps[n], reply, size))
		return -1;
	tree_nr_want = 0;
	err = tree_record(getpid(), -1);	/* the root's parent is not dumped */
	if (err) {
		snprintf(reply, size, "err tree at step %u: %s", n, strerror(-err));
		return -1;
	}
	snprintf(reply, size, "ok %d processes", tree_nr_want);
	return 0;
}

static void tree_verify(void)
{
	char path[64], comm[32];

	CR_CHECK(tree_nr_want == 6, "%d processes at the final dump, expected 6", tree_nr_want);
	for (int i = 0; i < tree_nr_want; i++) {
		const struct tree_want *w = &tree_want[i];
		pid_t want[16], got[16];
		int nw = 0, ng;
		char stat[512], *p;

		snprintf(path, sizeof(path), "/proc/%d/stat", w->pid);
		p = cr_read_file(path, stat, sizeof(stat)) > 0 ? strrchr(stat, ')') : NULL;
		CR_CHECK(p && (w->ppid < 0 || atoi(p + 4) == w->ppid), "process %d: parent %d, was %d", w->pid,
			 p ? atoi(p + 4) : -1, w->ppid);
		snprintf(path, sizeof(path), "/proc/%d/comm", w->pid);
		CR_CHECK(cr_read_file(path, comm, sizeof(comm)) > 0 && !strcmp(comm, w->comm),
			 "process %d: comm '%s', was '%s'", w->pid, comm, w->comm);
		for (int j = 0; j < tree_nr_want; j++)
			if (tree_want[j].ppid == w->pid && j != i)
				want[nw++] = tree_want[j].pid;
		qsort(want, nw, sizeof(want[0]), cmp_pid);
		ng = tree_children(w->pid, got, 16);
		CR_CHECK(ng == nw && !memcmp(got, want, nw * sizeof(want[0])),
			 "process %d: %d children (first %d), expected %d (first %d)", w->pid, ng,
			 ng > 0 ? got[0] : 0, nw, nw ? want[0] : 0);
	}
	/* the root's own checks end the tree: every node checks itself */
	tree_check_self();
	/* it keeps working: a new child (which would inherit the failures counted so far) */
	if (!cr_victim_result()) {
		char reply[128];
		static const char *const cmds[] = { "f", NULL };

		CR_CHECK(!tree_run(cmds, reply, sizeof(reply)), "fork after restore: %s", reply);
		tree_check_self();
	}
}

static const struct incr2_ops tree_ops = { tree_setup, tree_step, tree_verify };

INCR2_CASE(fork_exit, tree_ops);

TEST_HARNESS_MAIN
