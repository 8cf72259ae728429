// SPDX-License-Identifier: MIT
/*
 * churn_test: a tree that keeps changing while it is frozen and dumped.
 *
 *  - churn: one child forks and reaps short-lived children as fast as it can (each exits
 *    with 7), another creates and joins threads as fast as it can. The dump must catch the
 *    tree in one consistent state whatever moment it comes (a child just forked, one
 *    exiting, a thread being born or dying): it must not fail, and after restore both
 *    keep going (their counters advance), every reaped child exited with 7, and both
 *    stop cleanly when asked.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cr.h"

CR_FIXTURE_LR(churn);

#define WARMUP		50	/* forks and threads done before the dump */
#define PROGRESS	20	/* more of each after restore */
#define WAIT_MS		5000

struct churn {
	long forks, threads;
	int stop, bad;
};

static struct churn *sh;

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

static long load(long *p)
{
	return __atomic_load_n(p, __ATOMIC_SEQ_CST);
}

/* Waits (bounded) until both counters reach their marks. */
static bool reach(long forks, long threads)
{
	long deadline = now_ms() + WAIT_MS;

	while (load(&sh->forks) < forks || load(&sh->threads) < threads) {
		if (now_ms() > deadline)
			return false;
		sched_yield();
	}
	return true;
}

static void __attribute__((noreturn)) forker(void)
{
	while (!__atomic_load_n(&sh->stop, __ATOMIC_SEQ_CST)) {
		int status;
		pid_t p = fork();

		if (p == 0)
			_exit(7);
		if (p < 0 || waitpid(p, &status, 0) != p || !WIFEXITED(status) ||
		    WEXITSTATUS(status) != 7)
			__atomic_store_n(&sh->bad, 1, __ATOMIC_SEQ_CST);
		__atomic_add_fetch(&sh->forks, 1, __ATOMIC_SEQ_CST);
	}
	_exit(0);
}

static void *nothing(void *arg)
{
	return arg;
}

static void __attribute__((noreturn)) spinner(void)
{
	while (!__atomic_load_n(&sh->stop, __ATOMIC_SEQ_CST)) {
		pthread_t t;

		if (pthread_create(&t, NULL, nothing, NULL) || pthread_join(t, NULL))
			__atomic_store_n(&sh->bad, 2, __ATOMIC_SEQ_CST);
		__atomic_add_fetch(&sh->threads, 1, __ATOMIC_SEQ_CST);
	}
	_exit(0);
}

static int reap(pid_t pid, const char *what)
{
	long deadline = now_ms() + WAIT_MS;
	int status;
	pid_t r;

	while ((r = waitpid(pid, &status, WNOHANG)) == 0 && now_ms() < deadline)
		sched_yield();
	CR_CHECK(r == pid, "the %s %d did not stop (waitpid: %d, %s)", what, pid, r,
		 r < 0 ? strerror(errno) : "still running");
	if (r == pid)
		CR_CHECK(WIFEXITED(status) && !WEXITSTATUS(status), "the %s exited with status 0x%x",
			 what, status);
	return 0;
}

static int victim_churn(void *arg)
{
	pid_t f, s;
	long forks, threads;

	(void)arg;
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CR_SETUP(sh != MAP_FAILED, "mmap");
	f = fork();
	CR_SETUP(f >= 0, "fork");
	if (f == 0)
		forker();
	s = fork();
	CR_SETUP(s >= 0, "fork");
	if (s == 0)
		spinner();
	CR_SETUP(reach(WARMUP, WARMUP), "the churn did not start (%ld forks, %ld threads)",
		 sh->forks, sh->threads);

	cr_victim_ready_wait();

	forks = load(&sh->forks);
	threads = load(&sh->threads);
	CR_CHECK(reach(forks + PROGRESS, threads + PROGRESS),
		 "the churn stopped after restore: %ld forks (from %ld), %ld threads (from %ld)",
		 load(&sh->forks), forks, load(&sh->threads), threads);
	__atomic_store_n(&sh->stop, 1, __ATOMIC_SEQ_CST);
	reap(f, "forker");
	reap(s, "thread spinner");
	CR_CHECK(!sh->bad, "a churned child or thread went wrong (%d)", sh->bad);
	return cr_victim_result();
}

CR_CASE(churn, churn, .victim = victim_churn, .changing = true);
TEST_HARNESS_MAIN
