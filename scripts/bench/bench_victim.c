// SPDX-License-Identifier: MIT
/*
 * Benchmark victim: fills SIZE MiB of private anonymous memory with a pattern
 * that differs on every page (so no page is the zero page or a duplicate),
 * says "ready" on fd 3 and closes it (dump refuses pipes), then sleeps in
 * sigsuspend().  On SIGUSR2 it checks every word and exits 0 if the memory is
 * intact, 1 if not.
 *
 *   bench_victim SIZE_MIB    (fd 3: write end of the driver's ready pipe)
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bench_pattern.h"

static volatile sig_atomic_t check_requested;

static void on_usr2(int sig)
{
	check_requested = 1;
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_usr2, .sa_flags = SA_RESTART };
	sigset_t block, wait_mask;
	size_t len;
	uint64_t *mem;
	char c = 'r';

	if (argc != 2 || atol(argv[1]) <= 0) {
		fprintf(stderr, "usage: bench_victim SIZE_MIB\n");
		return 2;
	}
	len = (size_t)atol(argv[1]) << 20;

	sigemptyset(&block);
	sigaddset(&block, SIGUSR2);
	sigprocmask(SIG_BLOCK, &block, &wait_mask);
	sigdelset(&wait_mask, SIGUSR2);
	sigaction(SIGUSR2, &sa, NULL);

	mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return 3;
	bench_pattern_fill(mem, len);

	if (write(3, &c, 1) != 1)
		return 3;
	close(3);

	while (!check_requested)
		sigsuspend(&wait_mask);
	return bench_pattern_check(mem, len) ? 1 : 0;
}
