// SPDX-License-Identifier: MIT
/*
 * signal_test: signal state survives dump and restore: every sigaction (handler, flags,
 * mask, restorer) and that the handlers still run as configured, the blocked mask, the
 * alternate stack (a SA_ONSTACK handler really runs on it), pending private signals with
 * their siginfo, pending shared signals.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

#include "cr.h"

CR_FIXTURE_LR(signal);

static volatile sig_atomic_t hits[NSIG];
static volatile sig_atomic_t nodefer_unblocked, mask_has_term, info_code, info_ok;
static volatile uintptr_t onstack_addr;

static void h_info(int sig, siginfo_t *si, void *uc)
{
	sigset_t cur;

	hits[sig]++;
	info_ok = si->si_signo == sig && si->si_pid == getpid();
	info_code = si->si_code;
	sigprocmask(SIG_BLOCK, NULL, &cur);
	mask_has_term = sigismember(&cur, SIGTERM) == 1;
}

static void h_nodefer(int sig)
{
	sigset_t cur;

	hits[sig]++;
	sigprocmask(SIG_BLOCK, NULL, &cur);
	nodefer_unblocked = sigismember(&cur, sig) == 0;
}

static void h_plain(int sig)
{
	char local;

	hits[sig]++;
	onstack_addr = (uintptr_t)&local;
}

static const struct {
	int sig;
	void *handler;
	int flags;
} acts[] = {
	{ SIGUSR1, (void *)h_info, SA_SIGINFO | SA_RESTART },
	{ SIGHUP, (void *)h_nodefer, SA_NODEFER },
	{ SIGPIPE, (void *)h_plain, SA_RESETHAND },
	{ SIGWINCH, (void *)h_plain, SA_ONSTACK | SA_RESTART },
	{ SIGALRM, (void *)h_plain, 0 },
};

static int victim_sigactions(void *arg)
{
	static struct sigaction before[NSIG], now;

	for (size_t i = 0; i < sizeof(acts) / sizeof(acts[0]); i++) {
		struct sigaction sa = { .sa_flags = acts[i].flags };

		if (acts[i].flags & SA_SIGINFO)
			sa.sa_sigaction = acts[i].handler;
		else
			sa.sa_handler = acts[i].handler;
		sigemptyset(&sa.sa_mask);
		sigaddset(&sa.sa_mask, SIGTERM);
		sigaddset(&sa.sa_mask, SIGRTMIN + (int)i);
		CR_SETUP(!sigaction(acts[i].sig, &sa, NULL), "sigaction %d", acts[i].sig);
	}
	CR_SETUP(signal(SIGINT, SIG_IGN) != SIG_ERR, "SIG_IGN");
	CR_SETUP(signal(SIGURG, SIG_IGN) != SIG_ERR, "SIG_IGN");
	for (int sig = 1; sig < NSIG; sig++)
		sigaction(sig, NULL, &before[sig]);

	cr_victim_ready_wait();

	for (int sig = 1; sig < NSIG; sig++) {
		memset(&now, 0, sizeof(now));
		if (sig == SIGKILL || sig == SIGSTOP || sigaction(sig, NULL, &now))
			continue;
		CR_CHECK(now.sa_handler == before[sig].sa_handler,
			 "signal %d: handler %p, expected %p", sig, (void *)now.sa_handler,
			 (void *)before[sig].sa_handler);
		CR_CHECK(now.sa_flags == before[sig].sa_flags, "signal %d: flags 0x%x, expected 0x%x",
			 sig, now.sa_flags, before[sig].sa_flags);
		for (int m = 1; m < NSIG; m++)
			if (sigismember(&now.sa_mask, m) != sigismember(&before[sig].sa_mask, m)) {
				CR_CHECK(0, "signal %d: sa_mask: signal %d %s", sig, m,
					 sigismember(&now.sa_mask, m) ? "added" : "lost");
				break;
			}
		CR_CHECK(now.sa_restorer == before[sig].sa_restorer,
			 "signal %d: restorer %p, expected %p", sig, (void *)now.sa_restorer,
			 (void *)before[sig].sa_restorer);
	}
	/* The handlers still run as configured. */
	raise(SIGUSR1);
	CR_CHECK(hits[SIGUSR1] == 1, "SIGUSR1 handler ran %d times", hits[SIGUSR1]);
	CR_CHECK(info_ok && info_code == SI_TKILL, "SA_SIGINFO: bad siginfo (code %d)", info_code);
	CR_CHECK(mask_has_term, "sa_mask not applied in the SIGUSR1 handler");
	raise(SIGHUP);
	CR_CHECK(hits[SIGHUP] == 1 && nodefer_unblocked, "SA_NODEFER handler: hits %d, "
		 "unblocked %d", hits[SIGHUP], nodefer_unblocked);
	raise(SIGPIPE);
	CR_CHECK(hits[SIGPIPE] == 1, "SIGPIPE handler ran %d times", hits[SIGPIPE]);
	sigaction(SIGPIPE, NULL, &now);
	CR_CHECK(now.sa_handler == SIG_DFL, "SA_RESETHAND did not reset the handler");
	raise(SIGALRM);
	CR_CHECK(hits[SIGALRM] == 1, "SIGALRM handler ran %d times", hits[SIGALRM]);
	raise(SIGINT);		/* ignored: we are still alive */
	return cr_victim_result();
}

CR_CASE(signal, sigactions, .victim = victim_sigactions);

static int victim_blocked(void *arg)
{
	sigset_t set, now;

	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGPIPE);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGRTMIN + 5);
	sigaddset(&set, SIGRTMAX);
	CR_SETUP(!sigprocmask(SIG_SETMASK, &set, NULL), "sigprocmask");

	cr_victim_ready_wait();

	sigprocmask(SIG_BLOCK, NULL, &now);
	for (int sig = 1; sig < NSIG; sig++)
		CR_CHECK(sigismember(&now, sig) == sigismember(&set, sig),
			 "signal %d is %sblocked", sig, sigismember(&now, sig) ? "" : "not ");
	return cr_victim_result();
}

CR_CASE(signal, blocked, .victim = victim_blocked);

static char altstack[64 * 1024] __attribute__((aligned(16)));

static int victim_altstack(void *arg)
{
	struct sigaction sa = { .sa_handler = h_plain, .sa_flags = SA_ONSTACK };
	stack_t ss = { .ss_sp = altstack, .ss_size = sizeof(altstack) }, now;

	CR_SETUP(!sigaltstack(&ss, NULL), "sigaltstack");
	sigemptyset(&sa.sa_mask);
	CR_SETUP(!sigaction(SIGWINCH, &sa, NULL), "sigaction");

	cr_victim_ready_wait();

	CR_CHECK(!sigaltstack(NULL, &now), "sigaltstack: %s", strerror(errno));
	CR_CHECK(now.ss_sp == altstack && now.ss_size == sizeof(altstack) && now.ss_flags == 0,
		 "sigaltstack sp %p size %zu flags 0x%x, expected %p %zu 0", now.ss_sp, now.ss_size,
		 now.ss_flags, (void *)altstack, sizeof(altstack));
	raise(SIGWINCH);
	CR_CHECK(hits[SIGWINCH] == 1, "SA_ONSTACK handler ran %d times", hits[SIGWINCH]);
	CR_CHECK(onstack_addr >= (uintptr_t)altstack &&
		 onstack_addr < (uintptr_t)altstack + sizeof(altstack),
		 "SA_ONSTACK handler ran at %#lx, not on the alternate stack %p",
		 (unsigned long)onstack_addr, (void *)altstack);
	return cr_victim_result();
}

CR_CASE(signal, altstack, .victim = victim_altstack);

/* ---- pending signals ---- */

static volatile sig_atomic_t got_count;
static volatile int got_sig[8], got_val[8], got_code[8];

static void h_record(int sig, siginfo_t *si, void *uc)
{
	if (got_count < 8) {
		got_sig[got_count] = sig;
		got_val[got_count] = si->si_value.sival_int;
		got_code[got_count] = si->si_code;
		got_count = got_count + 1;
	}
}

static bool mask_has(const char *hex, int sig)
{
	unsigned long long m = strtoull(hex, NULL, 16);

	return m & (1ULL << (sig - 1));
}

static int pending_check(const char *field, int sig, bool want)
{
	char status[4096], v[64] = "";

	if (cr_read_file("/proc/self/status", status, sizeof(status)) <= 0 ||
	    cr_status_field(status, field, v, sizeof(v)))
		return -1;
	CR_CHECK(mask_has(v, sig) == want, "%s %s: signal %d %spending", field, v, sig,
		 want ? "not " : "");
	return 0;
}

static int victim_pending_private(void *arg)
{
	struct sigaction sa = { .sa_sigaction = h_record, .sa_flags = SA_SIGINFO };
	int sig = SIGRTMIN + 1;
	sigset_t set;

	/* Block everything in the handler, or the next pending signal's frame would be
	 * stacked on top of this one and run first. */
	sigfillset(&sa.sa_mask);
	CR_SETUP(!sigaction(sig, &sa, NULL), "sigaction");
	CR_SETUP(!sigaction(SIGHUP, &sa, NULL), "sigaction");
	sigemptyset(&set);
	sigaddset(&set, sig);
	sigaddset(&set, SIGHUP);
	CR_SETUP(!sigprocmask(SIG_BLOCK, &set, NULL), "sigprocmask");
	for (int i = 0; i < 2; i++) {
		siginfo_t si = { .si_signo = sig, .si_code = SI_QUEUE, .si_pid = getpid(),
				 .si_uid = getuid() };

		si.si_value.sival_int = 111 * (i + 1);
		CR_SETUP(!syscall(SYS_rt_tgsigqueueinfo, getpid(), gettid(), sig, &si),
			 "rt_tgsigqueueinfo");
	}
	CR_SETUP(!syscall(SYS_tgkill, getpid(), gettid(), SIGHUP), "tgkill");

	cr_victim_ready_wait();

	pending_check("SigPnd", sig, true);
	pending_check("SigPnd", SIGHUP, true);
	pending_check("ShdPnd", sig, false);
	CR_CHECK(got_count == 0, "%d signals delivered while blocked", got_count);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	/* standard signals are delivered before real-time ones */
	CR_CHECK(got_count == 3, "%d pending signals delivered, expected 3", got_count);
	CR_CHECK(got_sig[0] == SIGHUP, "first delivered %d, expected SIGHUP", got_sig[0]);
	for (int i = 0; i < 2; i++)
		CR_CHECK(got_sig[i + 1] == sig && got_val[i + 1] == 111 * (i + 1) &&
			 got_code[i + 1] == SI_QUEUE,
			 "queued signal %d: sig %d value %d code %d, expected %d %d SI_QUEUE", i,
			 got_sig[i + 1], got_val[i + 1], got_code[i + 1], sig, 111 * (i + 1));
	return cr_victim_result();
}

CR_CASE(signal, pending_private, .victim = victim_pending_private);

static int victim_pending_shared(void *arg)
{
	struct sigaction sa = { .sa_sigaction = h_record, .sa_flags = SA_SIGINFO };
	int sig = SIGRTMIN + 2;
	sigset_t set;

	sigfillset(&sa.sa_mask);
	CR_SETUP(!sigaction(sig, &sa, NULL), "sigaction");
	sigemptyset(&set);
	sigaddset(&set, sig);
	CR_SETUP(!sigprocmask(SIG_BLOCK, &set, NULL), "sigprocmask");
	CR_SETUP(!sigqueue(getpid(), sig, (union sigval){ .sival_int = 333 }), "sigqueue");
	CR_SETUP(!sigqueue(getpid(), sig, (union sigval){ .sival_int = 444 }), "sigqueue");

	cr_victim_ready_wait();

	pending_check("ShdPnd", sig, true);
	pending_check("SigPnd", sig, false);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	CR_CHECK(got_count == 2, "%d shared signals delivered, expected 2", got_count);
	CR_CHECK(got_val[0] == 333 && got_val[1] == 444, "values %d, %d, expected 333, 444",
		 got_val[0], got_val[1]);
	CR_CHECK(got_code[0] == SI_QUEUE && got_code[1] == SI_QUEUE, "si_code %d, %d",
		 got_code[0], got_code[1]);
	return cr_victim_result();
}

CR_CASE(signal, pending_shared, .victim = victim_pending_shared);

/* ---- interval timers ---- */

#define TICK_SLACK_US 20000

static volatile sig_atomic_t alarms;

static void h_alarm(int sig)
{
	alarms = alarms + 1;
}

static long tv_us(const struct timeval *tv)
{
	return tv->tv_sec * 1000000L + tv->tv_usec;
}

static int victim_itimers(void *arg)
{
	struct sigaction sa = { .sa_handler = h_alarm, .sa_flags = SA_RESTART };
	struct itimerval real = { .it_interval = { 0, 0 }, .it_value = { 3, 0 } };
	struct itimerval virt = { .it_interval = { 7, 0 }, .it_value = { 500, 0 } };
	struct itimerval prof = { .it_interval = { 0, 250000 }, .it_value = { 400, 0 } };
	struct itimerval cur;
	sigset_t none;

	sigemptyset(&sa.sa_mask);
	CR_SETUP(!sigaction(SIGALRM, &sa, NULL), "sigaction");
	CR_SETUP(!setitimer(ITIMER_VIRTUAL, &virt, NULL), "setitimer virtual");
	CR_SETUP(!setitimer(ITIMER_PROF, &prof, NULL), "setitimer prof");
	CR_SETUP(!setitimer(ITIMER_REAL, &real, NULL), "setitimer real");

	cr_victim_ready_wait();

	CR_CHECK(!getitimer(ITIMER_VIRTUAL, &cur), "getitimer virtual");
	CR_CHECK(tv_us(&cur.it_interval) == 7000000, "virtual interval %ld us, expected 7 s",
		 tv_us(&cur.it_interval));
	/* CPU timers read back rounded up to the next tick. */
	CR_CHECK(tv_us(&cur.it_value) > 0 && tv_us(&cur.it_value) <= 500000000 + TICK_SLACK_US,
		 "virtual value %ld us, expected (0, 500 s]", tv_us(&cur.it_value));
	CR_CHECK(!getitimer(ITIMER_PROF, &cur), "getitimer prof");
	CR_CHECK(tv_us(&cur.it_interval) == 250000, "prof interval %ld us, expected 250 ms",
		 tv_us(&cur.it_interval));
	CR_CHECK(tv_us(&cur.it_value) > 0 && tv_us(&cur.it_value) <= 400000000 + TICK_SLACK_US,
		 "prof value %ld us, expected (0, 400 s]", tv_us(&cur.it_value));
	CR_CHECK(!getitimer(ITIMER_REAL, &cur), "getitimer real");
	CR_CHECK(alarms == 1 || (tv_us(&cur.it_value) > 0 && tv_us(&cur.it_value) <= 3000000),
		 "real timer value %ld us, expected (0, 3 s] or already fired", tv_us(&cur.it_value));
	/* The one-shot real timer must still fire, within its 3 s. */
	sigemptyset(&none);
	while (!alarms && tv_us(&cur.it_value) > 0) {
		sigsuspend(&none);
		getitimer(ITIMER_REAL, &cur);
	}
	CR_CHECK(alarms == 1, "SIGALRM fired %d times, expected once", (int)alarms);
	return cr_victim_result();
}

CR_CASE(signal, itimers, .victim = victim_itimers);

/* ---- SIGTRAP: ckpt's own int3 traps must not reset the task's action ---- */

static volatile sig_atomic_t traps;

static void h_trap(int sig)
{
	traps = traps + 1;
}

static int victim_trap_caught(void *arg)
{
	struct sigaction sa = { .sa_handler = h_trap, .sa_flags = SA_RESTART }, cur;

	sigemptyset(&sa.sa_mask);
	CR_SETUP(!sigaction(SIGTRAP, &sa, NULL), "sigaction");

	cr_victim_ready_wait();

	CR_CHECK(!sigaction(SIGTRAP, NULL, &cur) && cur.sa_handler == h_trap,
		 "SIGTRAP handler is %p, expected %p", (void *)cur.sa_handler, (void *)h_trap);
	raise(SIGTRAP);
	CR_CHECK(traps == 1, "SIGTRAP handler ran %d times, expected once", (int)traps);
	return cr_victim_result();
}

CR_CASE(signal, trap_caught, .victim = victim_trap_caught);

static int victim_trap_ignored(void *arg)
{
	struct sigaction cur;

	CR_SETUP(signal(SIGTRAP, SIG_IGN) != SIG_ERR, "signal");

	cr_victim_ready_wait();

	CR_CHECK(!sigaction(SIGTRAP, NULL, &cur) && cur.sa_handler == SIG_IGN,
		 "SIGTRAP action is %p, expected SIG_IGN", (void *)cur.sa_handler);
	raise(SIGTRAP);	/* kills the victim if the action was reset */
	return cr_victim_result();
}

CR_CASE(signal, trap_ignored, .victim = victim_trap_ignored);

TEST_HARNESS_MAIN
