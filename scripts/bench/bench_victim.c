// SPDX-License-Identifier: MIT
/*
 * Benchmark victim.  Every form makes itself a session leader first (setsid:
 * ckpt refuses a task whose session or group leader is outside the dump), fills
 * private anonymous memory with a pattern that differs on every page (so no
 * page is the zero page or a duplicate), sends one ready record per process on
 * fd 3 and closes it (dump refuses pipes to the outside), then waits.  On
 * SIGUSR2 it verifies and exits 0 if everything is intact.
 *
 *   bench_victim SIZE_MIB
 *	one process, one thread; exit 0 if the memory is intact, 1 if not.
 *
 *   bench_victim tree KIDS GRANDKIDS SIZE_MIB
 *	a root with KIDS children with GRANDKIDS children each
 *	(1 + KIDS * (1 + GRANDKIDS) processes), each with SIZE_MIB of its own
 *	memory, filled with a pattern salted with its index in the tree.  Every
 *	process is forked before anyone fills memory, so no page is shared.  On
 *	SIGUSR2 each process passes the signal on to its children, checks its
 *	own memory and waits for its children: its exit status is the number of
 *	processes of its subtree that are missing or failed (capped at 255).
 *
 *   bench_victim threads NR SIZE_MIB
 *	one process with NR threads, the main thread included.  Each thread
 *	fills its own slice of SIZE_MIB with a pattern salted with its index,
 *	then counts: one increment every millisecond (a sleeping counter: busy
 *	threads on a 2-CPU machine would time the scheduler, not ckpt).  On
 *	SIGUSR2 the main thread checks that /proc/self/task holds exactly the
 *	TIDs of before, that every other thread's counter moves within 200 ms
 *	and that every slice is intact; the exit status is a mask of
 *	BENCH_THR_* bits.
 *
 * fd 3 is the write end of the driver's ready pipe.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_pattern.h"
#include "bench_victim.h"

static volatile sig_atomic_t check_requested;

static void on_usr2(int sig)
{
	check_requested = 1;
}

/* SIGUSR2 blocked (sigsuspend or the main thread's counting loop takes it), handler set. */
static void setup_signals(sigset_t *ret_wait_mask)
{
	struct sigaction sa = { .sa_handler = on_usr2, .sa_flags = SA_RESTART };
	sigset_t block;

	sigemptyset(&block);
	sigaddset(&block, SIGUSR2);
	sigprocmask(SIG_BLOCK, &block, ret_wait_mask);
	sigdelset(ret_wait_mask, SIGUSR2);
	sigaction(SIGUSR2, &sa, NULL);
}

static uint64_t *fill(size_t len, uint64_t salt)
{
	uint64_t *mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (mem == MAP_FAILED)
		_exit(3);
	bench_pattern_fill(mem, len, salt);
	return mem;
}

static void say_ready(void)
{
	struct bench_ready r = { .pid = getpid(), .ppid = getppid() };

	if (write(3, &r, sizeof(r)) != sizeof(r))
		_exit(3);
	close(3);
}

static void wait_check(const sigset_t *wait_mask)
{
	while (!check_requested)
		sigsuspend(wait_mask);
}

static int single_main(size_t len)
{
	sigset_t wait_mask;
	uint64_t *mem;

	setup_signals(&wait_mask);
	mem = fill(len, 0);
	say_ready();
	wait_check(&wait_mask);
	return bench_pattern_check(mem, len, 0) ? 1 : 0;
}

/* One process of the tree: its index (the pattern's salt) and its children. */
static int tree_node(int index, const pid_t *kids, int nr_kids, size_t len,
		     const sigset_t *wait_mask)
{
	uint64_t *mem = fill(len, index);
	int bad;

	say_ready();
	wait_check(wait_mask);
	for (int i = 0; i < nr_kids; i++)
		kill(kids[i], SIGUSR2);
	bad = bench_pattern_check(mem, len, index) ? 1 : 0;
	for (int i = 0; i < nr_kids; i++) {
		int status;
		pid_t r;

		do
			r = waitpid(kids[i], &status, 0);
		while (r < 0 && errno == EINTR);
		if (r != kids[i] || !WIFEXITED(status))
			bad++;		/* not our child any more, or killed */
		else
			bad += WEXITSTATUS(status);
	}
	return bad > 255 ? 255 : bad;
}

static int tree_main(int nr_kids, int nr_grandkids, size_t len)
{
	pid_t kids[BENCH_TREE_MAX_KIDS];
	sigset_t wait_mask;

	setup_signals(&wait_mask);
	for (int k = 0; k < nr_kids; k++) {
		int index = 1 + k * (1 + nr_grandkids);

		kids[k] = fork();
		if (kids[k] < 0)
			_exit(3);
		if (kids[k] > 0)
			continue;
		/* A child: fork its own children, then become a node. */
		pid_t gkids[BENCH_TREE_MAX_KIDS];

		for (int g = 0; g < nr_grandkids; g++) {
			gkids[g] = fork();
			if (gkids[g] < 0)
				_exit(3);
			if (gkids[g] == 0)
				_exit(tree_node(index + 1 + g, NULL, 0, len, &wait_mask));
		}
		_exit(tree_node(index, gkids, nr_grandkids, len, &wait_mask));
	}
	return tree_node(0, kids, nr_kids, len, &wait_mask);
}

struct thread {
	pthread_t handle;
	pid_t tid;
	uint64_t count;		/* written by its thread only, read with __atomic */
	uint64_t *mem;
	size_t len;
};

static struct thread threads[BENCH_MAX_THREADS];
static int nr_threads;
static int nr_filled;		/* threads whose slice is filled */

/*
 * With somewhere to put the time left, a sleep caught by the dump resumes
 * after restore for what was left (without, ckpt makes it return EINTR).
 */
static void tick(struct thread *t)
{
	struct timespec ms = { 0, 1000 * 1000 }, rem;

	__atomic_add_fetch(&t->count, 1, __ATOMIC_RELAXED);
	nanosleep(&ms, &rem);
}

static void fill_slice(struct thread *t)
{
	t->tid = gettid();
	bench_pattern_fill(t->mem, t->len, t - threads);
	__atomic_add_fetch(&nr_filled, 1, __ATOMIC_SEQ_CST);
}

static void *thread_main(void *arg)
{
	struct thread *t = arg;

	fill_slice(t);
	for (;;)
		tick(t);
	return NULL;
}

static bool tid_known(pid_t tid)
{
	for (int i = 0; i < nr_threads; i++)
		if (threads[i].tid == tid)
			return true;
	return false;
}

/* /proc/self/task is exactly the recorded TIDs. */
static bool same_threads(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *de;
	int seen = 0;
	bool ok = d != NULL;

	while (ok && (de = readdir(d))) {
		pid_t tid = atoi(de->d_name);

		if (tid <= 0)
			continue;
		ok = tid_known(tid);
		seen++;
	}
	if (d)
		closedir(d);
	return ok && seen == nr_threads;
}

static int threads_check(void)
{
	struct timespec step = { 0, 10 * 1000 * 1000 };
	uint64_t before[BENCH_MAX_THREADS];
	int ret = 0, moved = 0;

	if (!same_threads())
		ret |= BENCH_THR_BAD_THREADS;
	for (int i = 1; i < nr_threads; i++)
		before[i] = __atomic_load_n(&threads[i].count, __ATOMIC_RELAXED);
	for (int n = 0; n < 20 && moved < nr_threads - 1; n++) {
		nanosleep(&step, NULL);
		moved = 0;
		for (int i = 1; i < nr_threads; i++)
			moved += __atomic_load_n(&threads[i].count, __ATOMIC_RELAXED) != before[i];
	}
	if (moved < nr_threads - 1)
		ret |= BENCH_THR_NOT_COUNTING;
	for (int i = 0; i < nr_threads; i++)
		if (bench_pattern_check(threads[i].mem, threads[i].len, i))
			ret |= BENCH_THR_BAD_MEMORY;
	return ret;
}

static int threads_main(int nr, size_t len)
{
	size_t slice = len / nr / BENCH_PAGE * BENCH_PAGE;
	struct timespec ms = { 0, 1000 * 1000 };
	sigset_t wait_mask;
	uint64_t *mem;

	setup_signals(&wait_mask);
	mem = mmap(NULL, slice * nr, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return 3;
	nr_threads = nr;
	for (int i = 0; i < nr; i++)
		threads[i] = (struct thread){ .mem = mem + i * slice / sizeof(*mem), .len = slice };
	/* The workers inherit the blocked SIGUSR2: the verify request is the main thread's. */
	for (int i = 1; i < nr; i++)
		if (pthread_create(&threads[i].handle, NULL, thread_main, &threads[i]))
			return 3;
	fill_slice(&threads[0]);
	while (__atomic_load_n(&nr_filled, __ATOMIC_SEQ_CST) < nr)
		nanosleep(&ms, NULL);
	say_ready();
	pthread_sigmask(SIG_SETMASK, &wait_mask, NULL);
	/* The main thread counts too; SIGUSR2 cuts its sleep short. */
	while (!check_requested)
		tick(&threads[0]);
	return threads_check();
}

static long arg_long(const char *s, long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return -1;
	return v;
}

static int usage(void)
{
	fprintf(stderr, "usage: bench_victim SIZE_MIB\n"
			"       bench_victim tree KIDS GRANDKIDS SIZE_MIB\n"
			"       bench_victim threads NR SIZE_MIB\n");
	return 2;
}

int main(int argc, char **argv)
{
	long size, a, b;

	/* Its own session and group: the dump then holds both leaders. */
	if (setsid() < 0)
		return 3;
	if (argc == 2 && (size = arg_long(argv[1], 1, 1L << 20)) > 0)
		return single_main((size_t)size << 20);
	if (argc == 5 && !strcmp(argv[1], "tree") &&
	    (a = arg_long(argv[2], 0, BENCH_TREE_MAX_KIDS)) >= 0 &&
	    (b = arg_long(argv[3], 0, BENCH_TREE_MAX_KIDS)) >= 0 &&
	    (size = arg_long(argv[4], 1, 1L << 20)) > 0)
		return tree_main(a, b, (size_t)size << 20);
	if (argc == 4 && !strcmp(argv[1], "threads") &&
	    (a = arg_long(argv[2], 1, BENCH_MAX_THREADS)) > 0 &&
	    (size = arg_long(argv[3], 1, 1L << 20)) > 0)
		return threads_main(a, (size_t)size << 20);
	return usage();
}
