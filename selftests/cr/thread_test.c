// SPDX-License-Identifier: MIT
/*
 * thread_test: a multi-threaded process survives dump and restore, every thread with its own
 * state. Only the main thread says ready (once every worker is in place) and gets the verify
 * request (the workers block SIGUSR2); it then releases the workers, which check themselves,
 * and joins them with a deadline.
 *
 *   counting16          16 threads count in a tight loop during the dump. After restore each
 *                       has its TID (gettid() before and after; /proc/self/task lists exactly
 *                       these), its counter is not lower than before the dump and keeps
 *                       increasing, and the counter in memory always equals the copy in the
 *                       thread's register (all threads frozen together: their registers and
 *                       the pages were saved at one instant).
 *   per_thread_state    each thread keeps its own blocked mask, sigaltstack (a SA_ONSTACK
 *                       handler runs on it; thread 0 has none), name (comm, PR_GET_NAME),
 *                       private pending signal with its siginfo (dequeued by that thread only),
 *                       robust list head (and the kernel still walks it: a thread that exits
 *                       holding a robust mutex leaves it EOWNERDEAD), fs/gs base and TLS,
 *                       clear_child_tid (PR_GET_TID_ADDRESS) and rseq registration (the same
 *                       area, and the kernel updates its cpu_id when the thread moves to
 *                       another CPU).
 *   regs_per_thread     the main thread and 3 workers each hold their own general-purpose,
 *                       SSE/AVX, MXCSR and x87 values in registers across the dump.
 *   clear_tid_join      threads running at dump time exit after restore and pthread_join()
 *                       returns, both a join begun after restore and one that was blocked
 *                       during the dump (the exit cleared clear_child_tid and woke the
 *                       futex); threads blocked in pthread_cond_wait() and in a raw FUTEX_WAIT
 *                       at dump time are woken after restore and finish (the FUTEX_WAIT was
 *                       restarted, never failed with EINTR).
 *   threads_and_signal  a process-wide signal sent after restore is handled exactly once, by
 *                       the one thread that has it unblocked, with its siginfo; a process-wide
 *                       signal blocked everywhere at dump time is still pending.
 *
 * Waits are bounded: setup waits by SETUP_MS, everything after the verify request by one
 * VERIFY_MS deadline (joins too). A worker waiting for its turn blocks in FUTEX_WAIT without
 * a timeout: the main thread always releases it before its bounded join.
 */
#include <asm/prctl.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/rseq.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "cr.h"

CR_FIXTURE_LR(thread);

#define SETUP_MS	5000	/* workers get in place before ready (the runner allows 10 s) */
#define VERIFY_MS	6000	/* all of the verification (the runner allows 10 s) */

#define SIGBIT(sig)	(1ULL << ((sig) - 1))

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

/* Evaluates cond until it holds or the CLOCK_MONOTONIC deadline (ms) passed; its last value. */
#define SPIN_UNTIL(cond, deadline)							\
	({										\
		bool ok_;								\
		while (!(ok_ = (cond)) && now_ms() < (deadline))			\
			(void)sched_yield();						\
		ok_;									\
	})

static uint32_t load32(const uint32_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static long futex(uint32_t *uaddr, int op, uint32_t val)
{
	return syscall(SYS_futex, uaddr, op, val, NULL, NULL, 0);
}

/* A one-shot gate: a worker waits in FUTEX_WAIT (no timeout) until the main thread opens it. */
struct gate {
	uint32_t open;
};

static void gate_open(struct gate *g)
{
	__atomic_store_n(&g->open, 1, __ATOMIC_RELEASE);
	CR_CHECK(futex(&g->open, FUTEX_WAKE_PRIVATE, INT_MAX) >= 0, "FUTEX_WAKE: %s",
		 strerror(errno));
}

/* 0 once the gate is open, -1 (reported) if FUTEX_WAIT failed. */
static int gate_wait(struct gate *g)
{
	while (!load32(&g->open)) {
		if (futex(&g->open, FUTEX_WAIT_PRIVATE, 0) && errno != EAGAIN && errno != EINTR) {
			CR_CHECK(0, "thread %d: FUTEX_WAIT: %s", gettid(), strerror(errno));
			return -1;
		}
	}
	return 0;
}

/* pthread_create() with SIGUSR2 blocked in the new thread: the verify request is the main
 * thread's. The thread inherits the rest of the caller's mask. */
static void spawn(pthread_t *t, void *(*fn)(void *), void *arg)
{
	sigset_t usr2, old;

	sigemptyset(&usr2);
	sigaddset(&usr2, SIGUSR2);
	errno = pthread_sigmask(SIG_BLOCK, &usr2, &old);
	CR_SETUP(!errno, "pthread_sigmask");
	errno = pthread_create(t, NULL, fn, arg);
	CR_SETUP(!errno, "pthread_create");
	errno = pthread_sigmask(SIG_SETMASK, &old, NULL);
	CR_SETUP(!errno, "pthread_sigmask");
}

/* pthread_join() that gives up at the deadline; false (reported) if the thread did not end. */
static bool join_by(pthread_t t, void **ret, long deadline, const char *what, pid_t tid)
{
	struct timespec ts = { .tv_sec = deadline / 1000, .tv_nsec = deadline % 1000 * 1000000 };
	int err = pthread_clockjoin_np(t, ret, CLOCK_MONOTONIC, &ts);

	CR_CHECK(!err, "joining %s (tid %d): %s", what, tid, strerror(err));
	return !err;
}

/* True if thread tid of this process sleeps in system call nr. */
static bool in_syscall(pid_t tid, long nr)
{
	char path[64], buf[256];

	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", tid);
	return cr_read_file(path, buf, sizeof(buf)) > 0 && buf[0] >= '0' && buf[0] <= '9' &&
	       strtol(buf, NULL, 10) == nr;
}

/* The pending mask `key` (SigPnd: the thread's own, ShdPnd: the process') seen by thread tid. */
static int pending_mask(pid_t tid, const char *key, uint64_t *mask)
{
	char path[64], status[4096], v[64];

	snprintf(path, sizeof(path), "/proc/self/task/%d/status", tid);
	if (cr_read_file(path, status, sizeof(status)) <= 0 ||
	    cr_status_field(status, key, v, sizeof(v)))
		return -1;
	*mask = strtoull(v, NULL, 16);
	return 0;
}

/* The process consists of the main thread and exactly these n threads. */
static void check_tasks(const pid_t *tids, int n)
{
	bool seen[64] = { false }, main_seen = false;
	struct dirent *de;
	DIR *d;

	d = opendir("/proc/self/task");
	CR_CHECK(d, "opendir /proc/self/task: %s", strerror(errno));
	if (!d)
		return;
	while ((de = readdir(d))) {
		pid_t tid = atoi(de->d_name);
		int i;

		if (de->d_name[0] == '.')
			continue;
		if (tid == getpid()) {
			main_seen = true;
			continue;
		}
		for (i = 0; i < n && tids[i] != tid; i++)
			;
		CR_CHECK(i < n, "unexpected thread %d in /proc/self/task", tid);
		if (i < n)
			seen[i] = true;
	}
	closedir(d);
	CR_CHECK(main_seen, "main thread %d not in /proc/self/task", getpid());
	for (int i = 0; i < n; i++)
		CR_CHECK(seen[i], "thread %d (tid %d) is missing from /proc/self/task", i, tids[i]);
}

/* ---- counting16 ---- */

#define NCOUNT 16

static struct counter {
	uint64_t n;			/* written by its thread only */
	bool diverged;			/* the thread found n != its register copy */
	uint64_t mem, reg;		/* the first such pair */
	pid_t tid_before, tid_after;
} __attribute__((aligned(64))) counters[NCOUNT];
static uint32_t count_started, count_stop;

static void *count_thread(void *arg)
{
	struct counter *c = arg;
	uint64_t v = 0;

	c->tid_before = gettid();
	__atomic_fetch_add(&count_started, 1, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&count_stop, __ATOMIC_RELAXED)) {
		uint64_t m = __atomic_load_n(&c->n, __ATOMIC_RELAXED);

		if (m != v && !c->diverged) {
			c->mem = m;
			c->reg = v;
			c->diverged = true;
		}
		__atomic_store_n(&c->n, ++v, __ATOMIC_RELAXED);
		/* Register-only work, most of an iteration: frozen here, the thread has n == v
		 * in memory and in its register; a stale n in the images shows at the next load. */
		for (unsigned int k = 0; k < 64; k++)
			asm volatile("" : "+r"(k));
	}
	c->tid_after = gettid();
	return NULL;
}

static uint64_t count_of(int i)
{
	return __atomic_load_n(&counters[i].n, __ATOMIC_RELAXED);
}

static int victim_counting16(void *arg)
{
	static pthread_t th[NCOUNT];
	uint64_t before[NCOUNT];
	pid_t tids[NCOUNT];
	long deadline;

	for (int i = 0; i < NCOUNT; i++)
		spawn(&th[i], count_thread, &counters[i]);
	deadline = now_ms() + SETUP_MS;
	CR_SETUP(SPIN_UNTIL(load32(&count_started) == NCOUNT, deadline),
		 "%u of %d threads started", load32(&count_started), NCOUNT);
	for (int i = 0; i < NCOUNT; i++) {
		CR_SETUP(SPIN_UNTIL(count_of(i) > 0, deadline), "thread %d does not count", i);
		tids[i] = counters[i].tid_before;
	}
	for (int i = 0; i < NCOUNT; i++)
		before[i] = count_of(i);

	cr_victim_ready_wait();

	deadline = now_ms() + VERIFY_MS;
	check_tasks(tids, NCOUNT);
	for (int i = 0; i < NCOUNT; i++) {
		uint64_t n = count_of(i);

		CR_CHECK(n >= before[i], "thread %d (tid %d): counter %llu, lower than %llu before "
			 "the dump", i, tids[i], (unsigned long long)n,
			 (unsigned long long)before[i]);
		CR_CHECK(SPIN_UNTIL(count_of(i) > n, deadline),
			 "thread %d (tid %d): counter stuck at %llu", i, tids[i],
			 (unsigned long long)n);
	}
	__atomic_store_n(&count_stop, 1, __ATOMIC_RELAXED);
	for (int i = 0; i < NCOUNT; i++) {
		struct counter *c = &counters[i];

		if (!join_by(th[i], NULL, deadline, "a counting thread", tids[i]))
			continue;
		CR_CHECK(c->tid_after == c->tid_before, "thread %d: gettid() %d, was %d", i,
			 c->tid_after, c->tid_before);
		CR_CHECK(!c->diverged, "thread %d (tid %d): counter %llu in memory but %llu in its "
			 "register: pages and registers not saved at one instant", i, tids[i],
			 (unsigned long long)c->mem, (unsigned long long)c->reg);
	}
	return cr_victim_result();
}

CR_CASE(thread, counting16, .victim = victim_counting16);

/* ---- per_thread_state ---- */

#define NSTATE		4
#define STATE_SIG(i)	(SIGRTMIN + 4 + (i))	/* queued to thread i; blocked by all */
#define STATE_VALUE(i)	(0x5100 + (i))		/* its si_value */
#define ALTSTACK_SIZE(i) (32768 + 4096 * (i))	/* thread 0 has no alternate stack */
#define ROBUST_THREAD	1			/* exits holding robust_mutex */

static struct tstate {
	int idx;
	pthread_t th;
	pid_t tid;
	struct gate go;
	/* as the thread saw them before the dump */
	sigset_t mask;
	stack_t ss;
	char name[16];
	struct robust_list_head *robust;
	size_t robust_len;
	unsigned long fs, gs;
	unsigned long *tls_addr;
	int *tid_addr;
	struct rseq *rseq;		/* glibc's rseq area of the thread */
	int rseq_probe;			/* errno of registering it again: EBUSY */
} tstates[NSTATE];

static char altstacks[NSTATE][ALTSTACK_SIZE(NSTATE)] __attribute__((aligned(64)));
static __thread unsigned long tls_mark;
static __thread volatile uintptr_t onstack_at;
static volatile sig_atomic_t stray_signals;
static pthread_mutex_t robust_mutex;
static uint32_t state_arrived;
static int cpu_a = -1, cpu_b = -1;		/* two CPUs the victim may run on */
static cpu_set_t cpus_allowed;

static void h_onstack(int sig)
{
	char local;

	onstack_at = (uintptr_t)&local;
}

static void h_stray(int sig)
{
	stray_signals = stray_signals + 1;
}

static struct rseq *rseq_area(void)
{
	return (struct rseq *)((char *)__builtin_thread_pointer() + __rseq_offset);
}

/* Registers rs again as the thread's rseq area: EBUSY means it is registered there, with
 * glibc's length and signature. 0 means it was not registered at all (now it is). */
static int rseq_probe(struct rseq *rs)
{
	uint32_t len = __rseq_size < 32 ? 32 : __rseq_size;

	return syscall(SYS_rseq, rs, len, 0, RSEQ_SIG) ? errno : 0;
}

static void check_rseq(struct tstate *t)
{
	struct rseq *rs = rseq_area();
	int i = t->idx, err;

	CR_CHECK(rs == t->rseq, "thread %d: rseq area at %p, was %p", i, (void *)rs,
		 (void *)t->rseq);
	err = rseq_probe(rs);
	CR_CHECK(err == EBUSY, "thread %d: rseq area %p not registered as before: "
		 "registering it again gives %s (%s)", i, (void *)rs,
		 err ? strerror(err) : "success",
		 !err ? "it was not registered" :
		 err == EPERM ? "registered with another signature than RSEQ_SIG" :
		 err == EINVAL ? "registered elsewhere or with another length" : "?");
	/* Moved to another CPU, the thread must find it in its rseq area on return. */
	for (int k = 0; k < 2; k++) {
		int cpu = k ? cpu_b : cpu_a;
		unsigned int now = ~0U;
		cpu_set_t one;

		CPU_ZERO(&one);
		CPU_SET(cpu, &one);
		if (sched_setaffinity(0, sizeof(one), &one)) {
			CR_CHECK(0, "thread %d: sched_setaffinity(CPU %d): %s", i, cpu,
				 strerror(errno));
			break;
		}
		CR_CHECK(!syscall(SYS_getcpu, &now, NULL, NULL) && now == (unsigned int)cpu,
			 "thread %d: on CPU %u after pinning it to CPU %d", i, now, cpu);
		now = __atomic_load_n(&rs->cpu_id, __ATOMIC_RELAXED);
		CR_CHECK(now == (unsigned int)cpu, "thread %d: rseq cpu_id %d on CPU %d: the "
			 "kernel does not update the thread's rseq area", i, (int)now, cpu);
	}
	CR_CHECK(!sched_setaffinity(0, sizeof(cpus_allowed), &cpus_allowed),
		 "thread %d: sched_setaffinity: %s", i, strerror(errno));
}

static void state_check(struct tstate *t)
{
	struct timespec zero = { 0 };
	struct robust_list_head *robust = NULL;
	char path[64], comm[64] = "", name[16] = "";
	uint64_t pnd;
	size_t robust_len = 0;
	unsigned long fs = 0, gs = 0;
	int *tid_addr = NULL, i = t->idx, sig;
	sigset_t mask, all;
	siginfo_t si;
	stack_t ss;

	CR_CHECK(gettid() == t->tid, "thread %d: gettid() %d, was %d", i, gettid(), t->tid);

	CR_CHECK(!pthread_sigmask(SIG_BLOCK, NULL, &mask), "pthread_sigmask");
	for (int s = 1; s < NSIG; s++)
		CR_CHECK(sigismember(&mask, s) == sigismember(&t->mask, s),
			 "thread %d: signal %d is %sblocked", i, s,
			 sigismember(&mask, s) ? "" : "not ");

	CR_CHECK(!sigaltstack(NULL, &ss), "sigaltstack: %s", strerror(errno));
	CR_CHECK(ss.ss_sp == t->ss.ss_sp && ss.ss_size == t->ss.ss_size &&
		 ss.ss_flags == t->ss.ss_flags, "thread %d: sigaltstack %p size %zu flags %#x, "
		 "expected %p %zu %#x", i, ss.ss_sp, ss.ss_size, ss.ss_flags, t->ss.ss_sp,
		 t->ss.ss_size, t->ss.ss_flags);
	onstack_at = 0;
	CR_CHECK(!raise(SIGWINCH), "raise: %s", strerror(errno));
	if (t->ss.ss_flags & SS_DISABLE)
		CR_CHECK(onstack_at && (onstack_at < (uintptr_t)altstacks ||
					onstack_at >= (uintptr_t)altstacks + sizeof(altstacks)),
			 "thread %d: SA_ONSTACK handler ran at %#lx, on another thread's "
			 "alternate stack", i, (unsigned long)onstack_at);
	else
		CR_CHECK(onstack_at >= (uintptr_t)t->ss.ss_sp &&
			 onstack_at < (uintptr_t)t->ss.ss_sp + t->ss.ss_size,
			 "thread %d: SA_ONSTACK handler ran at %#lx, not on its alternate stack %p",
			 i, (unsigned long)onstack_at, t->ss.ss_sp);

	snprintf(path, sizeof(path), "/proc/self/task/%d/comm", t->tid);
	CR_CHECK(cr_read_file(path, comm, sizeof(comm)) > 0, "read %s", path);
	comm[strcspn(comm, "\n")] = 0;
	CR_CHECK(!strcmp(comm, t->name), "thread %d: comm '%s', expected '%s'", i, comm, t->name);
	CR_CHECK(!prctl(PR_GET_NAME, name), "PR_GET_NAME: %s", strerror(errno));
	CR_CHECK(!strcmp(name, t->name), "thread %d: PR_GET_NAME '%s', expected '%s'", i, name,
		 t->name);

	/* Its private signal is pending for it and for no other thread. */
	CR_CHECK(!pending_mask(t->tid, "SigPnd", &pnd), "thread %d: no SigPnd", i);
	for (int j = 0; j < NSTATE; j++)
		CR_CHECK(!(pnd & SIGBIT(STATE_SIG(j))) == (j != i), "thread %d: signal %d (of "
			 "thread %d) %spending for it (SigPnd %llx)", i, STATE_SIG(j), j,
			 j == i ? "not " : "", (unsigned long long)pnd);
	sigemptyset(&all);
	for (int j = 0; j < NSTATE; j++)
		sigaddset(&all, STATE_SIG(j));
	memset(&si, 0, sizeof(si));
	sig = sigtimedwait(&all, &si, &zero);
	CR_CHECK(sig == STATE_SIG(i), "thread %d: sigtimedwait: %d (%s), expected signal %d", i,
		 sig, sig < 0 ? strerror(errno) : "", STATE_SIG(i));
	CR_CHECK(sig < 0 || (si.si_code == SI_QUEUE && si.si_pid == getpid() &&
			     si.si_value.sival_int == STATE_VALUE(i)),
		 "thread %d: siginfo code %d pid %d value %#x, expected SI_QUEUE %d %#x", i,
		 si.si_code, si.si_pid, si.si_value.sival_int, getpid(), STATE_VALUE(i));
	sig = sigtimedwait(&all, &si, &zero);
	CR_CHECK(sig < 0 && errno == EAGAIN, "thread %d: signal %d also pending", i, sig);

	CR_CHECK(!syscall(SYS_get_robust_list, 0, &robust, &robust_len), "get_robust_list: %s",
		 strerror(errno));
	CR_CHECK(robust == t->robust && robust_len == t->robust_len, "thread %d: robust list "
		 "%p len %zu, expected %p %zu", i, (void *)robust, robust_len, (void *)t->robust,
		 t->robust_len);

	CR_CHECK(!syscall(SYS_arch_prctl, ARCH_GET_FS, &fs), "ARCH_GET_FS: %s", strerror(errno));
	CR_CHECK(!syscall(SYS_arch_prctl, ARCH_GET_GS, &gs), "ARCH_GET_GS: %s", strerror(errno));
	CR_CHECK(fs == t->fs, "thread %d: fs base %#lx, expected %#lx", i, fs, t->fs);
	CR_CHECK(gs == t->gs, "thread %d: gs base %#lx, expected %#lx", i, gs, t->gs);
	CR_CHECK(&tls_mark == t->tls_addr && tls_mark == 0x7e550000UL + i,
		 "thread %d: TLS variable at %p = %#lx, expected %p = %#lx", i, (void *)&tls_mark,
		 tls_mark, (void *)t->tls_addr, 0x7e550000UL + i);

	CR_CHECK(!prctl(PR_GET_TID_ADDRESS, &tid_addr), "PR_GET_TID_ADDRESS: %s", strerror(errno));
	CR_CHECK(tid_addr == t->tid_addr, "thread %d: clear_child_tid %p, expected %p", i,
		 (void *)tid_addr, (void *)t->tid_addr);

	check_rseq(t);
}

static void *state_thread(void *arg)
{
	struct tstate *t = arg;
	int i = t->idx;
	sigset_t own;

	t->tid = gettid();
	/* SIGUSR2 and every STATE_SIG come blocked from the main thread; add a set of its own */
	sigemptyset(&own);
	sigaddset(&own, SIGRTMIN + 10 + i);
	if (i & 1)
		sigaddset(&own, SIGHUP);
	if (i & 2)
		sigaddset(&own, SIGTERM);
	errno = pthread_sigmask(SIG_BLOCK, &own, NULL);
	CR_SETUP(!errno, "pthread_sigmask");
	errno = pthread_sigmask(SIG_BLOCK, NULL, &t->mask);
	CR_SETUP(!errno, "pthread_sigmask");
	if (i > 0) {
		stack_t ss = { .ss_sp = altstacks[i], .ss_size = ALTSTACK_SIZE(i) };

		CR_SETUP(!sigaltstack(&ss, NULL), "sigaltstack");
	}
	CR_SETUP(!sigaltstack(NULL, &t->ss), "sigaltstack");
	snprintf(t->name, sizeof(t->name), "crthread-%d", i);
	errno = pthread_setname_np(pthread_self(), t->name);
	CR_SETUP(!errno, "pthread_setname_np");
	CR_SETUP(!syscall(SYS_get_robust_list, 0, &t->robust, &t->robust_len), "get_robust_list");
	tls_mark = 0x7e550000UL + i;
	t->tls_addr = &tls_mark;
	CR_SETUP(!syscall(SYS_arch_prctl, ARCH_GET_FS, &t->fs), "ARCH_GET_FS");
	CR_SETUP(!syscall(SYS_arch_prctl, ARCH_GET_GS, &t->gs), "ARCH_GET_GS");
	CR_SETUP(!prctl(PR_GET_TID_ADDRESS, &t->tid_addr), "PR_GET_TID_ADDRESS");
	t->rseq = rseq_area();
	t->rseq_probe = rseq_probe(t->rseq);
	if (i == ROBUST_THREAD) {
		errno = pthread_mutex_lock(&robust_mutex);
		CR_SETUP(!errno, "pthread_mutex_lock");
	}
	__atomic_fetch_add(&state_arrived, 1, __ATOMIC_RELEASE);

	if (!gate_wait(&t->go))
		state_check(t);
	/* thread ROBUST_THREAD exits holding robust_mutex */
	return NULL;
}

static int victim_per_thread_state(void *arg)
{
	struct sigaction onstack = { .sa_handler = h_onstack, .sa_flags = SA_ONSTACK };
	struct sigaction stray = { .sa_handler = h_stray };
	char comm[64] = "", comm_now[64] = "";
	pid_t tids[NSTATE], me = getpid();
	pthread_mutexattr_t ma;
	uint64_t pnd, shd;
	struct timespec ts;
	sigset_t block;
	long deadline;
	int err;

	sigemptyset(&onstack.sa_mask);
	sigemptyset(&stray.sa_mask);
	CR_SETUP(!sigaction(SIGWINCH, &onstack, NULL), "sigaction");
	sigemptyset(&block);
	for (int i = 0; i < NSTATE; i++) {
		CR_SETUP(!sigaction(STATE_SIG(i), &stray, NULL), "sigaction");
		sigaddset(&block, STATE_SIG(i));
	}
	CR_SETUP(!sigprocmask(SIG_BLOCK, &block, NULL), "sigprocmask");
	errno = pthread_mutexattr_init(&ma);
	CR_SETUP(!errno, "pthread_mutexattr_init");
	errno = pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
	CR_SETUP(!errno, "pthread_mutexattr_setrobust");
	errno = pthread_mutex_init(&robust_mutex, &ma);
	CR_SETUP(!errno, "pthread_mutex_init");
	CR_SETUP(!sched_getaffinity(0, sizeof(cpus_allowed), &cpus_allowed), "sched_getaffinity");
	for (int c = 0; c < CPU_SETSIZE && cpu_b < 0; c++)
		if (CPU_ISSET(c, &cpus_allowed))
			*(cpu_a < 0 ? &cpu_a : &cpu_b) = c;
	if (cpu_b < 0)
		CR_VICTIM_SKIP("one CPU only: a thread's rseq cpu_id cannot be seen to follow it");
	if (!__rseq_size)
		CR_VICTIM_SKIP("glibc registered no rseq area (tunable glibc.pthread.rseq=0?)");
	CR_SETUP(cr_read_file("/proc/self/comm", comm, sizeof(comm)) > 0, "read /proc/self/comm");

	for (int i = 0; i < NSTATE; i++) {
		tstates[i].idx = i;
		spawn(&tstates[i].th, state_thread, &tstates[i]);
	}
	deadline = now_ms() + SETUP_MS;
	CR_SETUP(SPIN_UNTIL(load32(&state_arrived) == NSTATE, deadline), "%u of %d threads ready",
		 load32(&state_arrived), NSTATE);
	for (int i = 0; i < NSTATE; i++)
		CR_SETUP(tstates[i].rseq_probe == EBUSY,
			 "thread %d: registering glibc's rseq area again gives %s, not EBUSY", i,
			 strerror(tstates[i].rseq_probe));
	/* A private signal for each thread, sent by the main thread to that thread only. */
	for (int i = 0; i < NSTATE; i++) {
		siginfo_t si = { .si_signo = STATE_SIG(i), .si_code = SI_QUEUE, .si_pid = me,
				 .si_uid = getuid() };

		tids[i] = tstates[i].tid;
		si.si_value.sival_int = STATE_VALUE(i);
		CR_SETUP(!syscall(SYS_rt_tgsigqueueinfo, me, tids[i], STATE_SIG(i), &si),
			 "rt_tgsigqueueinfo");
		CR_SETUP(!pending_mask(tids[i], "SigPnd", &pnd) && (pnd & SIGBIT(STATE_SIG(i))),
			 "signal %d not pending for thread %d", STATE_SIG(i), i);
	}

	cr_victim_ready_wait();

	deadline = now_ms() + VERIFY_MS;
	check_tasks(tids, NSTATE);
	/* One at a time: each checks itself (and moves across CPUs) alone. */
	for (int i = 0; i < NSTATE; i++) {
		gate_open(&tstates[i].go);
		join_by(tstates[i].th, NULL, deadline, "a per_thread_state thread", tids[i]);
	}
	/* The kernel walked the robust list of the thread that exited holding the mutex. */
	ts.tv_sec = deadline / 1000;
	ts.tv_nsec = deadline % 1000 * 1000000;
	err = pthread_mutex_clocklock(&robust_mutex, CLOCK_MONOTONIC, &ts);
	CR_CHECK(err == EOWNERDEAD, "locking the robust mutex thread %d exited holding: %s, "
		 "expected EOWNERDEAD (its robust list was not walked at exit)", ROBUST_THREAD,
		 err ? strerror(err) : "success");
	if (err == EOWNERDEAD) {
		CR_CHECK(!pthread_mutex_consistent(&robust_mutex), "pthread_mutex_consistent");
		CR_CHECK(!pthread_mutex_unlock(&robust_mutex), "pthread_mutex_unlock");
	}
	CR_CHECK(!stray_signals, "%d thread-directed signals delivered to a handler",
		 (int)stray_signals);
	if (!pending_mask(me, "SigPnd", &pnd) && !pending_mask(me, "ShdPnd", &shd))
		for (int i = 0; i < NSTATE; i++)
			CR_CHECK(!((pnd | shd) & SIGBIT(STATE_SIG(i))), "signal %d of thread %d "
				 "pending for the main thread or the process (SigPnd %llx ShdPnd "
				 "%llx)", STATE_SIG(i), i, (unsigned long long)pnd,
				 (unsigned long long)shd);
	CR_CHECK(cr_read_file("/proc/self/comm", comm_now, sizeof(comm_now)) > 0 &&
		 !strcmp(comm, comm_now), "main thread comm '%s', was '%s'", comm_now, comm);
	return cr_victim_result();
}

CR_CASE(thread, per_thread_state, .victim = victim_per_thread_state);

/* ---- regs_per_thread ---- */

#ifdef __x86_64__
#define NREGS 3

struct regs_io {
	struct cr_regs in, out;
	pid_t tid_before, tid_after;
};

static uint32_t regs_arrived;
static bool regs_avx;

/* Values of task i: its own GPR and vector patterns, and its own rounding modes. */
static void regs_init(struct cr_regs *in, int i)
{
	cr_regs_init(in, 0x7700 + i);
	in->mxcsr = 0x1f80 | (i & 3) << 13 | (i & 1 ? 0x8040 : 0);	/* RC, FTZ + DAZ */
	in->fcw = 0x037f | (i & 3) << 10;				/* RC */
	cr_regs_x87(in);
}

/* A worker holds its values like the main thread, counting itself in regs_arrived. */
static void *regs_thread(void *arg)
{
	struct regs_io *p = arg;

	p->tid_before = gettid();
	cr_regs_hold(&p->in, &p->out, regs_avx, &regs_arrived);
	p->tid_after = gettid();
	return NULL;
}

static int victim_regs_per_thread(void *arg)
{
	static struct regs_io io[NREGS];
	static struct cr_regs main_in, main_out;
	static pthread_t th[NREGS];
	long deadline;

	regs_avx = cr_cpu_has_avx();
	for (int i = 0; i < NREGS; i++) {
		regs_init(&io[i].in, i);
		spawn(&th[i], regs_thread, &io[i]);
	}
	regs_init(&main_in, NREGS);
	deadline = now_ms() + SETUP_MS;
	CR_SETUP(SPIN_UNTIL(load32(&regs_arrived) == NREGS, deadline),
		 "%u of %d threads in their loop", load32(&regs_arrived), NREGS);

	/* Says ready from inside the asm, holding the main thread's own values. */
	cr_regs_wait(&main_in, &main_out, regs_avx);

	deadline = now_ms() + VERIFY_MS;
	CR_CHECK(!cr_regs_compare(&main_in, &main_out, regs_avx),
		 "main thread: register mismatches above");
	for (int i = 0; i < NREGS; i++) {
		if (!join_by(th[i], NULL, deadline, "a register thread", io[i].tid_before))
			continue;
		CR_CHECK(io[i].tid_after == io[i].tid_before, "thread %d: gettid() %d, was %d", i,
			 io[i].tid_after, io[i].tid_before);
		CR_CHECK(!cr_regs_compare(&io[i].in, &io[i].out, regs_avx),
			 "thread %d (tid %d): register mismatches above", i, io[i].tid_before);
	}
	if (!regs_avx)
		dprintf(1, "victim: no AVX, checked xmm only\n");
	return cr_victim_result();
}

CR_CASE(thread, regs_per_thread, .victim = victim_regs_per_thread);
#endif

/* ---- clear_tid_join ---- */

/* Runs in user space at dump time; exits once released after restore. */
static struct spinner {
	pthread_t th;
	pid_t tid;
	uint32_t started, release;
	int *tid_addr_before, *tid_addr_after;
} spin1, spin2;

/* Blocked in pthread_join(spin2) at dump time. */
static struct joiner {
	pthread_t th;
	pid_t tid;
	int err;
	void *ret;
} joiner;

static pthread_mutex_t cond_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static uint32_t cond_waiting, cond_go, cond_saw_go;
static uint32_t futex_word, futex_eintr;
static int futex_err;
static pid_t cond_tid, futex_tid;

static void *spin_thread(void *arg)
{
	struct spinner *s = arg;

	s->tid = gettid();
	CR_SETUP(!prctl(PR_GET_TID_ADDRESS, &s->tid_addr_before), "PR_GET_TID_ADDRESS");
	__atomic_store_n(&s->started, 1, __ATOMIC_RELEASE);
	while (!load32(&s->release))
		__builtin_ia32_pause();
	CR_CHECK(!prctl(PR_GET_TID_ADDRESS, &s->tid_addr_after), "PR_GET_TID_ADDRESS: %s",
		 strerror(errno));
	return s;
}

static void *join_thread(void *arg)
{
	joiner.tid = gettid();
	joiner.err = pthread_join(spin2.th, &joiner.ret);
	return NULL;
}

static void *cond_thread(void *arg)
{
	int err;

	cond_tid = gettid();
	errno = pthread_mutex_lock(&cond_mutex);
	CR_SETUP(!errno, "pthread_mutex_lock");
	__atomic_store_n(&cond_waiting, 1, __ATOMIC_RELEASE);
	while (!cond_go) {
		err = pthread_cond_wait(&cond, &cond_mutex);
		CR_CHECK(!err, "pthread_cond_wait: %s", strerror(err));
		if (err)
			break;
	}
	cond_saw_go = cond_go;
	errno = pthread_mutex_unlock(&cond_mutex);
	CR_CHECK(!errno, "pthread_mutex_unlock: %s", strerror(errno));
	return &cond_tid;
}

static void *futex_thread(void *arg)
{
	futex_tid = gettid();
	while (!load32(&futex_word)) {
		if (!futex(&futex_word, FUTEX_WAIT_PRIVATE, 0) || errno == EAGAIN)
			continue;
		if (errno != EINTR) {
			futex_err = errno;
			break;
		}
		futex_eintr++;
	}
	return &futex_tid;
}

static int victim_clear_tid_join(void *arg)
{
	pthread_t cond_th, futex_th;
	pid_t tids[5];
	long deadline;
	void *ret;
	long woken;

	spawn(&spin1.th, spin_thread, &spin1);
	spawn(&spin2.th, spin_thread, &spin2);
	deadline = now_ms() + SETUP_MS;
	CR_SETUP(SPIN_UNTIL(load32(&spin1.started) && load32(&spin2.started), deadline),
		 "the spinning threads did not start");
	spawn(&joiner.th, join_thread, NULL);
	spawn(&cond_th, cond_thread, NULL);
	spawn(&futex_th, futex_thread, NULL);
	/* The three others sleep in FUTEX_WAIT before the dump. */
	CR_SETUP(SPIN_UNTIL(load32(&cond_waiting), deadline), "no pthread_cond_wait()");
	CR_SETUP(SPIN_UNTIL(in_syscall(joiner.tid, SYS_futex), deadline),
		 "the joining thread is not blocked in pthread_join()");
	CR_SETUP(SPIN_UNTIL(in_syscall(cond_tid, SYS_futex), deadline),
		 "the condition variable waiter is not blocked in pthread_cond_wait()");
	CR_SETUP(SPIN_UNTIL(in_syscall(futex_tid, SYS_futex), deadline),
		 "the futex waiter is not blocked in FUTEX_WAIT");
	tids[0] = spin1.tid;
	tids[1] = spin2.tid;
	tids[2] = joiner.tid;
	tids[3] = cond_tid;
	tids[4] = futex_tid;

	cr_victim_ready_wait();

	deadline = now_ms() + VERIFY_MS;
	check_tasks(tids, 5);

	/* pthread_cond_wait() since before the dump: signalled now, it returns. */
	errno = pthread_mutex_lock(&cond_mutex);
	CR_CHECK(!errno, "pthread_mutex_lock: %s", strerror(errno));
	cond_go = 1;
	errno = pthread_cond_signal(&cond);
	CR_CHECK(!errno, "pthread_cond_signal: %s", strerror(errno));
	errno = pthread_mutex_unlock(&cond_mutex);
	CR_CHECK(!errno, "pthread_mutex_unlock: %s", strerror(errno));
	if (join_by(cond_th, &ret, deadline, "the pthread_cond_wait() thread", cond_tid))
		CR_CHECK(ret == &cond_tid && cond_saw_go, "the pthread_cond_wait() thread returned "
			 "%p (saw the condition: %u)", ret, cond_saw_go);

	/* A raw FUTEX_WAIT since before the dump: woken now. */
	__atomic_store_n(&futex_word, 1, __ATOMIC_RELEASE);
	woken = futex(&futex_word, FUTEX_WAKE_PRIVATE, INT_MAX);
	CR_CHECK(woken >= 0, "FUTEX_WAKE: %s", strerror(errno));
	if (join_by(futex_th, &ret, deadline, "the FUTEX_WAIT thread", futex_tid)) {
		CR_CHECK(ret == &futex_tid && !futex_err, "the FUTEX_WAIT thread returned %p, "
			 "FUTEX_WAIT failed: %s", ret, futex_err ? strerror(futex_err) : "no");
		CR_CHECK(!futex_eintr, "FUTEX_WAIT without a timeout failed with EINTR %u "
			 "time(s): the interrupted call was not restarted", futex_eintr);
	}

	/* Running at dump time, exits now: its exit clears and wakes clear_child_tid. */
	__atomic_store_n(&spin1.release, 1, __ATOMIC_RELEASE);
	if (join_by(spin1.th, &ret, deadline, "a thread running at dump time (pthread_join() "
		    "after restore)", spin1.tid))
		CR_CHECK(ret == &spin1, "the first running thread returned %p", ret);
	CR_CHECK(spin1.tid_addr_after == spin1.tid_addr_before, "the first running thread: "
		 "clear_child_tid %p, was %p", (void *)spin1.tid_addr_after,
		 (void *)spin1.tid_addr_before);

	/* The same, joined by a thread that was blocked in pthread_join() during the dump. */
	__atomic_store_n(&spin2.release, 1, __ATOMIC_RELEASE);
	if (join_by(joiner.th, NULL, deadline, "the thread blocked in pthread_join() at dump "
		    "time", joiner.tid))
		CR_CHECK(!joiner.err && joiner.ret == &spin2, "its pthread_join(): %s, returned %p",
			 strerror(joiner.err), joiner.ret);
	CR_CHECK(spin2.tid_addr_after == spin2.tid_addr_before, "the second running thread: "
		 "clear_child_tid %p, was %p", (void *)spin2.tid_addr_after,
		 (void *)spin2.tid_addr_before);
	return cr_victim_result();
}

CR_CASE(thread, clear_tid_join, .victim = victim_clear_tid_join);

/* ---- threads_and_signal ---- */

#define NSIGT		4
#define SIGT_TARGET	2		/* the one thread with SIGUSR1 unblocked */
#define SHARED_SIG	(SIGRTMIN + 7)	/* process-wide, blocked by all, pending at dump */

static struct sigt {
	pthread_t th;
	pid_t tid;
	struct gate go;
} sigts[NSIGT];
static uint32_t sigt_arrived, usr1_count, usr1_seen;
static pid_t usr1_tid;
static int usr1_code, usr1_value, usr1_pid;

static void h_usr1(int sig, siginfo_t *si, void *uc)
{
	if (__atomic_fetch_add(&usr1_count, 1, __ATOMIC_ACQ_REL))
		return;
	usr1_tid = gettid();
	usr1_code = si->si_code;
	usr1_value = si->si_value.sival_int;
	usr1_pid = si->si_pid;
	__atomic_store_n(&usr1_seen, 1, __ATOMIC_RELEASE);	/* the fields above are set */
}

static void *sigt_thread(void *arg)
{
	struct sigt *t = arg;

	t->tid = gettid();
	if (t == &sigts[SIGT_TARGET]) {
		sigset_t usr1;

		sigemptyset(&usr1);
		sigaddset(&usr1, SIGUSR1);
		errno = pthread_sigmask(SIG_UNBLOCK, &usr1, NULL);
		CR_SETUP(!errno, "pthread_sigmask");
	}
	__atomic_fetch_add(&sigt_arrived, 1, __ATOMIC_RELEASE);
	gate_wait(&t->go);	/* SIGUSR1 interrupts the target's wait, which restarts */
	return NULL;
}

static int victim_threads_and_signal(void *arg)
{
	struct sigaction sa = { .sa_sigaction = h_usr1, .sa_flags = SA_SIGINFO | SA_RESTART };
	struct sigaction stray = { .sa_handler = h_stray };
	struct timespec zero = { 0 };
	pid_t tids[NSIGT], me = getpid();
	uint64_t shd;
	sigset_t set;
	siginfo_t si;
	long deadline;
	int sig;

	sigemptyset(&sa.sa_mask);
	sigemptyset(&stray.sa_mask);
	CR_SETUP(!sigaction(SIGUSR1, &sa, NULL), "sigaction");
	CR_SETUP(!sigaction(SHARED_SIG, &stray, NULL), "sigaction");
	/* Blocked in the main thread and, inherited, in every worker but the target. */
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SHARED_SIG);
	CR_SETUP(!sigprocmask(SIG_BLOCK, &set, NULL), "sigprocmask");
	for (int i = 0; i < NSIGT; i++)
		spawn(&sigts[i].th, sigt_thread, &sigts[i]);
	deadline = now_ms() + SETUP_MS;
	CR_SETUP(SPIN_UNTIL(load32(&sigt_arrived) == NSIGT, deadline), "%u of %d threads ready",
		 load32(&sigt_arrived), NSIGT);
	for (int i = 0; i < NSIGT; i++)
		tids[i] = sigts[i].tid;
	CR_SETUP(!sigqueue(me, SHARED_SIG, (union sigval){ .sival_int = 0x77 }), "sigqueue");
	CR_SETUP(!pending_mask(me, "ShdPnd", &shd) && (shd & SIGBIT(SHARED_SIG)),
		 "signal %d not pending for the process", SHARED_SIG);

	cr_victim_ready_wait();

	deadline = now_ms() + VERIFY_MS;
	check_tasks(tids, NSIGT);

	/* Pending for the process since before the dump. */
	CR_CHECK(!pending_mask(me, "ShdPnd", &shd) && (shd & SIGBIT(SHARED_SIG)),
		 "process-wide signal %d no longer pending (ShdPnd %llx)", SHARED_SIG,
		 (unsigned long long)shd);
	sigemptyset(&set);
	sigaddset(&set, SHARED_SIG);
	memset(&si, 0, sizeof(si));
	sig = sigtimedwait(&set, &si, &zero);
	CR_CHECK(sig == SHARED_SIG && si.si_code == SI_QUEUE && si.si_value.sival_int == 0x77 &&
		 si.si_pid == me, "process-wide signal: sigtimedwait %d (%s), code %d value %#x "
		 "pid %d, expected %d SI_QUEUE 0x77 %d", sig, sig < 0 ? strerror(errno) : "ok",
		 si.si_code, si.si_value.sival_int, si.si_pid, SHARED_SIG, me);

	/* Sent now: only the target thread may take it. */
	CR_CHECK(!sigqueue(me, SIGUSR1, (union sigval){ .sival_int = 0x5151 }), "sigqueue: %s",
		 strerror(errno));
	CR_CHECK(SPIN_UNTIL(load32(&usr1_seen), deadline), "SIGUSR1 sent to the process "
		 "was not handled: thread %d (tid %d) has it unblocked", SIGT_TARGET,
		 tids[SIGT_TARGET]);
	if (load32(&usr1_seen)) {
		CR_CHECK(usr1_tid == tids[SIGT_TARGET], "SIGUSR1 handled by tid %d (main %d), "
			 "expected tid %d, the only thread with it unblocked", usr1_tid, me,
			 tids[SIGT_TARGET]);
		CR_CHECK(usr1_code == SI_QUEUE && usr1_value == 0x5151 && usr1_pid == me,
			 "SIGUSR1 siginfo: code %d value %#x pid %d", usr1_code, usr1_value,
			 usr1_pid);
	}
	for (int i = 0; i < NSIGT; i++) {
		gate_open(&sigts[i].go);
		join_by(sigts[i].th, NULL, deadline, "a threads_and_signal thread", tids[i]);
	}
	CR_CHECK(load32(&usr1_count) == 1, "SIGUSR1 handled %u times, expected once",
		 load32(&usr1_count));
	CR_CHECK(!sigpending(&set) && !sigismember(&set, SIGUSR1), "SIGUSR1 still pending");
	CR_CHECK(!stray_signals, "the blocked process-wide signal %d reached a handler",
		 SHARED_SIG);
	return cr_victim_result();
}

CR_CASE(thread, threads_and_signal, .victim = victim_threads_and_signal);

TEST_HARNESS_MAIN
