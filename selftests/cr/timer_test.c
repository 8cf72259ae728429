// SPDX-License-Identifier: MIT
/*
 * timer_test: POSIX timers (timer_create) survive dump and restore with their IDs.
 *
 *   kinds     six timers, two deleted again so the IDs have gaps: SIGEV_SIGNAL on
 *             CLOCK_MONOTONIC (one-shot, 2 s), SIGEV_THREAD_ID aimed at a worker thread on
 *             CLOCK_REALTIME, SIGEV_NONE on CLOCK_BOOTTIME (100 s, every 7 s), a disarmed one on
 *             CLOCK_PROCESS_CPUTIME_ID, and a periodic one (every 10 s) with an overrun of 10.
 *             After restore /proc/self/timers lists the same timers (ID, signal and sigev_value,
 *             notification and its thread, clock), each reads back its remaining time and
 *             interval, timer_getoverrun() is 10 again, the signal timers fire once with
 *             si_code SI_TIMER, their si_timerid and si_value and si_overrun 0, the thread one
 *             in the worker, and a new timer gets an ID of its own.
 *   pending   a periodic timer's signal and a one-shot SIGEV_THREAD_ID timer's signal are
 *             queued (blocked) at dump time: after restore each is delivered exactly once with
 *             its siginfo (the periodic one's si_overrun counts the intervals since, as the
 *             kernel does), the one-shot timer is disarmed and the periodic one still runs.
 *   same_signal_rt, same_signal_std  one signal (SIGRTMIN + 7, or SIGUSR1, of which the
 *             kernel queues one at a time, timers' own excepted) for seven timers: four have it
 *             queued at dump time (one-shot on CLOCK_MONOTONIC, periodic on CLOCK_BOOTTIME
 *             aimed at the main thread, one-shot on the process CPU clock, one-shot aimed at a
 *             worker), two carry an overrun (10 on CLOCK_REALTIME, 3 on CLOCK_TAI aimed at the
 *             main thread), one is just armed, and a sigqueue()d signal of that number is
 *             queued too. The queued ones have the lower IDs. After restore the overruns are
 *             back, each queued siginfo comes exactly once (si_overrun 0), in its thread.
 *   thread_clock_refused  a timer on CLOCK_THREAD_CPUTIME_ID (which counts the thread that
 *             created it, a thread /proc does not name) is refused clearly, victim unharmed.
 *   hostile_* a dumped core image edited to aim a SIGEV_THREAD_ID timer at a thread the
 *             process does not have, to repeat an ID, to use a per-thread CPU clock or signal
 *             65, or to queue the signal of an armed one-shot timer: restore fails naming the
 *             image and the field, the PID stays free.
 *
 * Timers are made with the raw system calls: the IDs are the kernel's. No timer fires around
 * the dump (the harness compares pending signals in the leave-running variant); waits for an
 * expiry are sigtimedwait() with a timeout.
 */
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "cr.h"
#include "cr_img.h"
#include "image.h"
#include "core.pb-c.h"

CR_FIXTURE_LR(timer);

#define NSEC		1000000000LL
#define WAIT_S		5	/* longest wait for an expiry after restore */

/* The kernel's struct sigevent: glibc hides the thread ID field on some versions. */
struct ksigevent {
	union sigval value;
	int signo;
	int notify;
	int tid;
	int pad[11];
};

#ifndef SIGEV_THREAD_ID
#define SIGEV_THREAD_ID 4
#endif

static int ktimer_create(clockid_t clk, int notify, int signo, long val, pid_t tid, int *ret_id)
{
	struct ksigevent ev = { .value.sival_ptr = (void *)val, .signo = signo, .notify = notify,
				.tid = tid };

	return syscall(SYS_timer_create, clk, &ev, ret_id);
}

static int ktimer_settime(int id, int flags, long long value_ns, long long interval_ns)
{
	struct itimerspec its = {
		.it_interval = { interval_ns / NSEC, interval_ns % NSEC },
		.it_value = { value_ns / NSEC, value_ns % NSEC },
	};

	return syscall(SYS_timer_settime, id, flags, &its, NULL);
}

static void ktimer_get(int id, long long *value_ns, long long *interval_ns)
{
	struct itimerspec its = {};

	CR_CHECK(!syscall(SYS_timer_gettime, id, &its), "timer_gettime(%d): %s", id, strerror(errno));
	*value_ns = its.it_value.tv_sec * NSEC + its.it_value.tv_nsec;
	*interval_ns = its.it_interval.tv_sec * NSEC + its.it_interval.tv_nsec;
}

static long long now_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return ts.tv_sec * NSEC + ts.tv_nsec;
}

static void block(int sig)
{
	sigset_t s;

	sigemptyset(&s);
	sigaddset(&s, sig);
	CR_SETUP(!pthread_sigmask(SIG_BLOCK, &s, NULL), "pthread_sigmask");
}

/* sigtimedwait() for sig, at most secs; the signal number, or -errno. */
static int wait_sig(int sig, int secs, siginfo_t *si)
{
	struct timespec ts = { secs, 0 };
	sigset_t s;
	int ret;

	sigemptyset(&s);
	sigaddset(&s, sig);
	memset(si, 0, sizeof(*si));
	ret = sigtimedwait(&s, si, &ts);
	return ret < 0 ? -errno : ret;
}

static void check_timer_si(const siginfo_t *si, int ret, int sig, int id, long val, const char *what)
{
	CR_CHECK(ret == sig, "%s: waiting for signal %d gave %d (%s)", what, sig, ret,
		 ret < 0 ? strerror(-ret) : "");
	if (ret != sig)
		return;
	CR_CHECK(si->si_code == SI_TIMER, "%s: si_code %d, expected SI_TIMER", what, si->si_code);
	CR_CHECK(si->si_timerid == id, "%s: si_timerid %d, expected %d", what, si->si_timerid, id);
	CR_CHECK(si->si_value.sival_ptr == (void *)val, "%s: si_value %p, expected %#lx", what,
		 si->si_value.sival_ptr, val);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* /proc/self/timers as one line per timer, sorted (the kernel's listing order is its own). */
static void timers_text(char *out, size_t len)
{
	static char buf[16384];
	char *blocks[64], *p, *save;
	int n = 0;

	out[0] = 0;
	if (cr_read_file("/proc/self/timers", buf, sizeof(buf)) < 0)
		return;
	for (p = strtok_r(buf, "\n", &save); p; p = strtok_r(NULL, "\n", &save)) {
		if (!strncmp(p, "ID:", 3) && n < 64)
			blocks[n++] = p;
		else if (n)
			p[-1] = '|';	/* join the timer's lines */
	}
	qsort(blocks, n, sizeof(*blocks), cmp_str);
	for (int i = 0; i < n; i++)
		snprintf(out + strlen(out), len - strlen(out), "%s\n", blocks[i]);
}

/* ---- kinds ---- */

static volatile pid_t worker_tid;
static volatile int worker_go, worker_ret;
static siginfo_t worker_si;

static void *worker(void *arg)
{
	worker_tid = gettid();
	while (!__atomic_load_n(&worker_go, __ATOMIC_ACQUIRE))
		syscall(SYS_futex, &worker_go, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
	worker_ret = wait_sig(SIGRTMIN + 2, WAIT_S, &worker_si);
	return NULL;
}

static int victim_kinds(void *arg)
{
	static char before[8192], after[8192];
	int id[6], extra, overrun_id;
	long long v, iv;
	pthread_t th;
	siginfo_t si;

	/* The worker inherits these blocked (and SIGUSR2, the verify request, is the main's). */
	block(SIGRTMIN + 1);
	block(SIGRTMIN + 2);
	block(SIGRTMIN + 3);
	block(SIGRTMIN + 4);
	block(SIGUSR2);
	CR_SETUP(!pthread_create(&th, NULL, worker, NULL), "pthread_create");
	sigset_t usr2;
	sigemptyset(&usr2);
	sigaddset(&usr2, SIGUSR2);
	pthread_sigmask(SIG_UNBLOCK, &usr2, NULL);
	for (int i = 0; i < 1000000 && !worker_tid; i++)
		sched_yield();
	CR_SETUP(worker_tid, "worker did not start");

	CR_SETUP(!ktimer_create(CLOCK_MONOTONIC, SIGEV_SIGNAL, SIGRTMIN + 1, 0xa0, 0, &id[0]), "t0");
	CR_SETUP(!ktimer_create(CLOCK_MONOTONIC, SIGEV_SIGNAL, SIGRTMIN + 1, 0xa1, 0, &id[1]), "t1");
	CR_SETUP(!ktimer_create(CLOCK_REALTIME, SIGEV_THREAD_ID, SIGRTMIN + 2, 0xa2, worker_tid,
				&id[2]), "t2");
	CR_SETUP(!ktimer_create(CLOCK_MONOTONIC, SIGEV_SIGNAL, SIGRTMIN + 1, 0xa3, 0, &id[3]), "t3");
	CR_SETUP(!ktimer_create(CLOCK_BOOTTIME, SIGEV_NONE, 0, 0xa4, 0, &id[4]), "t4");
	CR_SETUP(!ktimer_create(CLOCK_PROCESS_CPUTIME_ID, SIGEV_SIGNAL, SIGRTMIN + 4, 0xa5, 0, &id[5]),
		 "t5");
	CR_SETUP(!syscall(SYS_timer_delete, id[1]) && !syscall(SYS_timer_delete, id[3]), "timer_delete");
	CR_SETUP(!ktimer_settime(id[0], 0, 2 * NSEC, 0), "arm t0");
	CR_SETUP(!ktimer_settime(id[2], 0, 2 * NSEC, 30 * NSEC), "arm t2");
	CR_SETUP(!ktimer_settime(id[4], 0, 100 * NSEC, 7 * NSEC), "arm t4");
	/*
	 * An overrun of 10: the first expiry 105 s ago, every 10 s. The one signal is taken
	 * now; the next expiry is 5 s away, after the dump.
	 */
	CR_SETUP(!ktimer_create(CLOCK_REALTIME, SIGEV_SIGNAL, SIGRTMIN + 3, 0xa6, 0, &overrun_id),
		 "overrun timer");
	CR_SETUP(!ktimer_settime(overrun_id, TIMER_ABSTIME, now_ns(CLOCK_REALTIME) - 105 * NSEC,
				 10 * NSEC), "arm overrun timer");
	CR_SETUP(wait_sig(SIGRTMIN + 3, WAIT_S, &si) == SIGRTMIN + 3, "overrun timer did not fire");
	CR_SETUP(si.si_overrun == 10 && syscall(SYS_timer_getoverrun, overrun_id) == 10,
		 "overrun %d, expected 10", si.si_overrun);
	timers_text(before, sizeof(before));

	cr_victim_ready_wait();

	timers_text(after, sizeof(after));
	CR_CHECK(!strcmp(before, after), "/proc/self/timers:\n%s\nexpected:\n%s", after, before);
	ktimer_get(id[0], &v, &iv);
	CR_CHECK(v > 0 && v <= 2 * NSEC && iv == 0, "t0: value %lld interval %lld", v, iv);
	ktimer_get(id[2], &v, &iv);
	CR_CHECK(v > 0 && v <= 2 * NSEC && iv == 30 * NSEC, "t2: value %lld interval %lld", v, iv);
	ktimer_get(id[4], &v, &iv);
	CR_CHECK(v > 90 * NSEC && v <= 100 * NSEC && iv == 7 * NSEC, "t4: value %lld interval %lld",
		 v, iv);
	ktimer_get(id[5], &v, &iv);
	CR_CHECK(v == 0 && iv == 0, "t5: value %lld interval %lld", v, iv);
	ktimer_get(overrun_id, &v, &iv);
	CR_CHECK(v > 0 && v <= 5 * NSEC && iv == 10 * NSEC, "overrun timer: value %lld interval %lld",
		 v, iv);
	int ovr = syscall(SYS_timer_getoverrun, overrun_id);
	CR_CHECK(ovr == 10, "timer_getoverrun %d, expected 10", ovr);
	for (int i = 1; i <= 3; i += 2)
		CR_CHECK(syscall(SYS_timer_gettime, id[i], &(struct itimerspec){}) < 0 && errno == EINVAL,
			 "deleted timer %d exists", id[i]);

	/* Both fire within their 2 s, once each, t2 in the worker. */
	__atomic_store_n(&worker_go, 1, __ATOMIC_RELEASE);
	syscall(SYS_futex, &worker_go, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
	int ret = wait_sig(SIGRTMIN + 1, WAIT_S, &si);
	check_timer_si(&si, ret, SIGRTMIN + 1, id[0], 0xa0, "t0");
	CR_CHECK(si.si_overrun == 0, "t0: si_overrun %d", si.si_overrun);
	CR_CHECK(!pthread_join(th, NULL), "pthread_join");
	check_timer_si(&worker_si, worker_ret, SIGRTMIN + 2, id[2], 0xa2, "t2 in the worker");
	CR_CHECK(worker_si.si_overrun == 0, "t2: si_overrun %d", worker_si.si_overrun);
	ret = wait_sig(SIGRTMIN + 1, 0, &si);
	CR_CHECK(ret == -EAGAIN, "t0 fired twice (%d)", ret);

	/* A new timer gets an ID of its own. */
	CR_CHECK(!ktimer_create(CLOCK_MONOTONIC, SIGEV_NONE, 0, 0, 0, &extra), "new timer: %s",
		 strerror(errno));
	for (int i = 0; i < 6; i++)
		CR_CHECK(extra != id[i] || i == 1 || i == 3, "new timer got the ID %d of timer %d",
			 extra, i);
	CR_CHECK(extra != overrun_id, "new timer got the ID %d of the overrun timer", extra);
	return cr_victim_result();
}

CR_CASE(timer, kinds, .victim = victim_kinds);

/* ---- signals queued at dump time ---- */

static int victim_pending(void *arg)
{
	int periodic, oneshot;
	long long v, iv;
	sigset_t pend;
	siginfo_t si;

	block(SIGRTMIN + 5);
	block(SIGRTMIN + 6);
	CR_SETUP(!ktimer_create(CLOCK_MONOTONIC, SIGEV_SIGNAL, SIGRTMIN + 5, 0xb0, 0, &periodic),
		 "periodic");
	CR_SETUP(!ktimer_create(CLOCK_MONOTONIC, SIGEV_THREAD_ID, SIGRTMIN + 6, 0xb1, gettid(),
				&oneshot), "one-shot");
	CR_SETUP(!ktimer_settime(periodic, 0, 1000000, 3 * NSEC), "arm periodic");
	CR_SETUP(!ktimer_settime(oneshot, 0, 1000000, 0), "arm one-shot");
	/* Both expire 1 ms from now; give them 50 ms (time to pass, not a synchronisation). */
	clock_nanosleep(CLOCK_MONOTONIC, 0, &(struct timespec){ 0, 50000000 }, NULL);
	CR_SETUP(!sigpending(&pend) && sigismember(&pend, SIGRTMIN + 5) &&
		 sigismember(&pend, SIGRTMIN + 6), "timer signals not pending");

	cr_victim_ready_wait();

	int ret = wait_sig(SIGRTMIN + 5, WAIT_S, &si);
	check_timer_si(&si, ret, SIGRTMIN + 5, periodic, 0xb0, "periodic");
	CR_CHECK(si.si_overrun >= 0 && si.si_overrun < 100, "periodic: si_overrun %d", si.si_overrun);
	ret = wait_sig(SIGRTMIN + 5, 0, &si);
	CR_CHECK(ret == -EAGAIN, "periodic timer's signal queued twice (%d)", ret);
	ret = wait_sig(SIGRTMIN + 6, WAIT_S, &si);
	check_timer_si(&si, ret, SIGRTMIN + 6, oneshot, 0xb1, "one-shot");
	CR_CHECK(si.si_overrun == 0, "one-shot: si_overrun %d", si.si_overrun);
	ret = wait_sig(SIGRTMIN + 6, 0, &si);
	CR_CHECK(ret == -EAGAIN, "one-shot timer's signal queued twice (%d)", ret);
	ktimer_get(oneshot, &v, &iv);
	CR_CHECK(v == 0 && iv == 0, "one-shot: value %lld interval %lld", v, iv);
	ktimer_get(periodic, &v, &iv);
	CR_CHECK(v > 0 && v <= 3 * NSEC && iv == 3 * NSEC, "periodic: value %lld interval %lld", v, iv);
	return cr_victim_result();
}

CR_CASE(timer, pending, .victim = victim_pending);

/* ---- one signal shared by timers with a queued signal and timers with an overrun ---- */

enum { SAME_ONCE, SAME_TID, SAME_CPU, SAME_WORKER, SAME_REAL, SAME_TAI, SAME_PLAIN, SAME_NR };

static const char *const same_name[SAME_NR] = {
	[SAME_ONCE] = "one-shot", [SAME_TID] = "periodic to the main thread",
	[SAME_CPU] = "process CPU clock", [SAME_WORKER] = "one-shot to the worker",
	[SAME_REAL] = "overrun (realtime)", [SAME_TAI] = "overrun (TAI, to the main thread)",
	[SAME_PLAIN] = "plain",
};

static int same_sig;
static int same_id[SAME_NR];
static volatile int same_go;
static volatile pid_t same_worker_tid;
static siginfo_t same_worker_si[2];
static int same_worker_ret[2];

/* The worker takes its one signal, then makes sure there is no second one (not even shared). */
static void *same_worker(void *arg)
{
	same_worker_tid = gettid();
	while (!__atomic_load_n(&same_go, __ATOMIC_ACQUIRE))
		syscall(SYS_futex, &same_go, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
	same_worker_ret[0] = wait_sig(same_sig, WAIT_S, &same_worker_si[0]);
	same_worker_ret[1] = wait_sig(same_sig, 0, &same_worker_si[1]);
	return NULL;
}

/* Arms timer i to expire first `ago` ns in the past, every `every` ns, and takes its signal. */
static void same_overrun(int i, clockid_t clk, long long ago, long long every, int expect)
{
	siginfo_t si;

	CR_SETUP(!ktimer_settime(same_id[i], TIMER_ABSTIME, now_ns(clk) - ago, every), "arm %s",
		 same_name[i]);
	CR_SETUP(wait_sig(same_sig, WAIT_S, &si) == same_sig && si.si_timerid == same_id[i],
		 "%s did not fire (timer %d)", same_name[i], si.si_timerid);
	CR_SETUP(si.si_overrun == expect && syscall(SYS_timer_getoverrun, same_id[i]) == expect,
		 "%s: overrun %d, expected %d", same_name[i], si.si_overrun, expect);
}

/*
 * The queued timers get the lower IDs: restore creates the timers in ID order, and it used
 * to take the signal of a queued one for the expiry that gives an overrun back.
 */
static int victim_same_signal(void *arg)
{
	static char before[8192], after[8192];
	int seen[SAME_NR] = { 0 }, queued = 0;
	long long v, iv;
	pthread_t th;
	siginfo_t si;
	sigset_t pend;

	same_sig = arg ? SIGUSR1 : SIGRTMIN + 7;
	block(same_sig);
	block(SIGUSR2);
	CR_SETUP(!pthread_create(&th, NULL, same_worker, NULL), "pthread_create");
	sigset_t usr2;
	sigemptyset(&usr2);
	sigaddset(&usr2, SIGUSR2);
	pthread_sigmask(SIG_UNBLOCK, &usr2, NULL);
	for (int i = 0; i < 1000000 && !same_worker_tid; i++)
		sched_yield();
	CR_SETUP(same_worker_tid, "worker did not start");

	static const struct {
		clockid_t clk;
		int notify;
	} kind[SAME_NR] = {
		[SAME_ONCE] = { CLOCK_MONOTONIC, SIGEV_SIGNAL },
		[SAME_TID] = { CLOCK_BOOTTIME, SIGEV_THREAD_ID },
		[SAME_CPU] = { CLOCK_PROCESS_CPUTIME_ID, SIGEV_SIGNAL },
		[SAME_WORKER] = { CLOCK_REALTIME, SIGEV_THREAD_ID },
		[SAME_REAL] = { CLOCK_REALTIME, SIGEV_SIGNAL },
		[SAME_TAI] = { CLOCK_TAI, SIGEV_THREAD_ID },
		[SAME_PLAIN] = { CLOCK_MONOTONIC, SIGEV_SIGNAL },
	};
	for (int i = 0; i < SAME_NR; i++)
		CR_SETUP(!ktimer_create(kind[i].clk, kind[i].notify, same_sig, 0xc0 + i,
					i == SAME_WORKER ? same_worker_tid : gettid(), &same_id[i]),
			 "create %s", same_name[i]);
	CR_SETUP(same_id[SAME_WORKER] < same_id[SAME_REAL], "IDs in creation order");

	/* The overruns first, while nothing else is queued: the first expiries are long past. */
	same_overrun(SAME_REAL, CLOCK_REALTIME, 1005 * NSEC, 100 * NSEC, 10);
	same_overrun(SAME_TAI, CLOCK_TAI, 185 * NSEC, 60 * NSEC, 3);
	CR_SETUP(!ktimer_settime(same_id[SAME_PLAIN], 0, 200 * NSEC, 30 * NSEC), "arm plain");
	CR_SETUP(!sigqueue(getpid(), same_sig, (union sigval){ .sival_int = 0x5a }), "sigqueue");
	CR_SETUP(!ktimer_settime(same_id[SAME_ONCE], 0, 1000000, 0), "arm one-shot");
	CR_SETUP(!ktimer_settime(same_id[SAME_TID], 0, 1000000, 50 * NSEC), "arm periodic");
	CR_SETUP(!ktimer_settime(same_id[SAME_WORKER], 0, 1000000, 0), "arm worker's");
	CR_SETUP(!ktimer_settime(same_id[SAME_CPU], 0, 1000000, 0), "arm CPU clock");
	/* 1 ms of CPU time, bounded by 5 s of wall time. */
	long long end = now_ns(CLOCK_MONOTONIC) + 5 * NSEC;
	do
		ktimer_get(same_id[SAME_CPU], &v, &iv);
	while (v && now_ns(CLOCK_MONOTONIC) < end);
	CR_SETUP(!v, "the CPU-clock timer did not expire");
	/* The other three expire 1 ms from now: 50 ms (time to pass, not a synchronisation). */
	clock_nanosleep(CLOCK_MONOTONIC, 0, &(struct timespec){ 0, 50000000 }, NULL);
	ktimer_get(same_id[SAME_ONCE], &v, &iv);
	CR_SETUP(!v, "the one-shot timer did not expire");
	CR_SETUP(!sigpending(&pend) && sigismember(&pend, same_sig), "timer signals not pending");
	timers_text(before, sizeof(before));

	cr_victim_ready_wait();

	timers_text(after, sizeof(after));
	CR_CHECK(!strcmp(before, after), "/proc/self/timers:\n%s\nexpected:\n%s", after, before);
	int ovr = syscall(SYS_timer_getoverrun, same_id[SAME_REAL]);
	CR_CHECK(ovr == 10, "%s: timer_getoverrun %d, expected 10", same_name[SAME_REAL], ovr);
	ovr = syscall(SYS_timer_getoverrun, same_id[SAME_TAI]);
	CR_CHECK(ovr == 3, "%s: timer_getoverrun %d, expected 3", same_name[SAME_TAI], ovr);
	ktimer_get(same_id[SAME_REAL], &v, &iv);
	CR_CHECK(v > 0 && v <= 95 * NSEC && iv == 100 * NSEC, "%s: value %lld interval %lld",
		 same_name[SAME_REAL], v, iv);
	ktimer_get(same_id[SAME_TAI], &v, &iv);
	CR_CHECK(v > 0 && v <= 55 * NSEC && iv == 60 * NSEC, "%s: value %lld interval %lld",
		 same_name[SAME_TAI], v, iv);
	ktimer_get(same_id[SAME_PLAIN], &v, &iv);
	CR_CHECK(v > 100 * NSEC && v <= 200 * NSEC && iv == 30 * NSEC,
		 "plain: value %lld interval %lld", v, iv);

	/* The main thread's four (its own queue first, then the process's), each once. */
	for (int n = 0; n < 4; n++) {
		int ret = wait_sig(same_sig, WAIT_S, &si);
		CR_CHECK(ret == same_sig, "signal %d of 4: %d (%s)", n + 1, ret,
			 ret < 0 ? strerror(-ret) : "");
		if (ret != same_sig)
			break;
		if (si.si_code == SI_QUEUE) {
			CR_CHECK(si.si_value.sival_int == 0x5a, "sigqueue()d: si_value %d",
				 si.si_value.sival_int);
			queued++;
			continue;
		}
		int i = 0;
		while (i < SAME_NR && (si.si_code != SI_TIMER || si.si_timerid != same_id[i]))
			i++;
		CR_CHECK(i < SAME_NR, "si_code %d si_timerid %d: not one of the timers", si.si_code,
			 si.si_timerid);
		if (i == SAME_NR)
			continue;
		seen[i]++;
		check_timer_si(&si, ret, same_sig, same_id[i], 0xc0 + i, same_name[i]);
		CR_CHECK(si.si_overrun == 0, "%s: si_overrun %d", same_name[i], si.si_overrun);
	}
	int ret = wait_sig(same_sig, 0, &si);
	CR_CHECK(ret == -EAGAIN, "a fifth signal: si_code %d si_timerid %d", si.si_code,
		 si.si_timerid);
	CR_CHECK(queued == 1, "the sigqueue()d signal came %d times", queued);
	for (int i = 0; i < SAME_NR; i++)
		CR_CHECK(seen[i] == (i == SAME_ONCE || i == SAME_TID || i == SAME_CPU),
			 "%s: its signal came %d times", same_name[i], seen[i]);

	__atomic_store_n(&same_go, 1, __ATOMIC_RELEASE);
	syscall(SYS_futex, &same_go, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
	CR_CHECK(!pthread_join(th, NULL), "pthread_join");
	check_timer_si(&same_worker_si[0], same_worker_ret[0], same_sig, same_id[SAME_WORKER],
		       0xc0 + SAME_WORKER, same_name[SAME_WORKER]);
	CR_CHECK(same_worker_si[0].si_overrun == 0, "worker's: si_overrun %d",
		 same_worker_si[0].si_overrun);
	CR_CHECK(same_worker_ret[1] == -EAGAIN, "the worker got a second signal: si_code %d "
		 "si_timerid %d", same_worker_si[1].si_code, same_worker_si[1].si_timerid);

	/* The periodic one runs on; the delivery made its overrun that of this signal. */
	ktimer_get(same_id[SAME_TID], &v, &iv);
	CR_CHECK(v > 0 && v <= 50 * NSEC && iv == 50 * NSEC, "%s: value %lld interval %lld",
		 same_name[SAME_TID], v, iv);
	ovr = syscall(SYS_timer_getoverrun, same_id[SAME_TID]);
	CR_CHECK(ovr == 0, "%s: timer_getoverrun %d", same_name[SAME_TID], ovr);
	for (int i = 0; i < SAME_NR; i++) {
		if (i == SAME_TID || i == SAME_REAL || i == SAME_TAI || i == SAME_PLAIN)
			continue;
		ktimer_get(same_id[i], &v, &iv);
		CR_CHECK(v == 0 && iv == 0, "%s: value %lld interval %lld", same_name[i], v, iv);
	}
	return cr_victim_result();
}

CR_CASE(timer, same_signal_rt, .victim = victim_same_signal, .arg = NULL);
CR_CASE(timer, same_signal_std, .victim = victim_same_signal, .arg = (void *)1);

/* ---- refused ---- */

static int victim_thread_clock(void *arg)
{
	int id;

	CR_SETUP(!ktimer_create(CLOCK_THREAD_CPUTIME_ID, SIGEV_NONE, 0, 0, 0, &id), "timer_create");
	CR_SETUP(!ktimer_settime(id, 0, 1000 * NSEC, 0), "timer_settime");

	cr_victim_ready_wait();
	return cr_victim_result();
}

CR_CASE(timer, thread_clock_refused, .victim = victim_thread_clock, .dump_err = "CPU-time clock of a thread");

/* ---- hostile images ---- */

static char hostile_field[64];

static int victim_two_timers(void *arg)
{
	int a, b;

	CR_SETUP(!ktimer_create(CLOCK_MONOTONIC, SIGEV_SIGNAL, SIGRTMIN + 1, 1, 0, &a), "timer a");
	CR_SETUP(!ktimer_create(CLOCK_MONOTONIC, SIGEV_THREAD_ID, SIGRTMIN + 2, 2, gettid(), &b),
		 "timer b");
	CR_SETUP(!ktimer_settime(b, 0, 1000 * NSEC, 0), "arm b");

	cr_victim_ready_wait();
	return cr_victim_result();
}

enum { BAD_TID, BAD_ID_ORDER, BAD_CLOCK, BAD_SIGNO, BAD_PENDING };

static int corrupt_timers(struct cr_run *r, void *msg, void *arg)
{
	TaskCoreEntry *t = ((CoreEntry *)msg)->task;
	static const char *const fields[] = {
		[BAD_TID] = "task.posix_timers.notify_tid", [BAD_ID_ORDER] = "task.posix_timers.id",
		[BAD_CLOCK] = "task.posix_timers.clock", [BAD_SIGNO] = "task.posix_timers.signo",
		[BAD_PENDING] = "task.posix_timers.signal_pending",
	};
	int what = (int)(long)arg;

	if (t->n_posix_timers != 2 || !t->posix_timers[1]->has_notify_tid)
		return cr_fail(r, "the dump has %zu timers, expected 2 (one SIGEV_THREAD_ID)",
			       t->n_posix_timers);
	switch (what) {
	case BAD_TID:		/* a thread of no one, or of another process */
		t->posix_timers[1]->notify_tid += 100000;
		break;
	case BAD_ID_ORDER:	/* the same ID twice */
		t->posix_timers[1]->id = t->posix_timers[0]->id;
		break;
	case BAD_CLOCK:		/* CLOCK_THREAD_CPUTIME_ID, encoded per-thread */
		t->posix_timers[0]->clock = -2;
		break;
	case BAD_SIGNO:
		t->posix_timers[0]->signo = 65;
		break;
	case BAD_PENDING:	/* a one-shot timer still armed cannot have a queued signal */
		t->posix_timers[1]->has_signal_pending = true;
		t->posix_timers[1]->signal_pending = true;
		break;
	}
	snprintf(hostile_field, sizeof(hostile_field), "%s", fields[what]);
	return 0;
}

static int prepare_hostile(struct cr_run *r, pid_t pid)
{
	img_name(IMG_CORE, pid, r->restore_err, sizeof(r->restore_err));
	return cr_edit_one(r, IMG_CORE, pid, corrupt_timers, (void *)r->c->arg);
}

static int flow_hostile(struct cr_run *r)
{
	return cr_flow_restore_edited(r, prepare_hostile, hostile_field);
}

#define HOSTILE_CASE(name, what)								\
	CR_CASE(timer, name, .victim = victim_two_timers, .arg = (void *)(what),		\
		.flow = flow_hostile, .no_leave = true)

HOSTILE_CASE(hostile_thread, BAD_TID);
HOSTILE_CASE(hostile_id, BAD_ID_ORDER);
HOSTILE_CASE(hostile_clock, BAD_CLOCK);
HOSTILE_CASE(hostile_signo, BAD_SIGNO);
HOSTILE_CASE(hostile_pending, BAD_PENDING);

TEST_HARNESS_MAIN
