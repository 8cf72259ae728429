// SPDX-License-Identifier: MIT
/*
 * regs_test: registers survive dump and restore: general purpose, x87/SSE/AVX and MXCSR
 * held inside one asm block across the dump, PKRU, fs/gs base and TLS, a task caught in a
 * blocking read() (restarted, not failed with EINTR), a task in clock_nanosleep() (resumed
 * through the restart block) and a task busy in user space.
 */
#include <asm/prctl.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "cr.h"

CR_FIXTURE_LR(regs);

#ifdef __x86_64__

static bool cpu_has_pku(void)
{
	unsigned int a, b, c, d;

	asm volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(7), "c"(0));
	return c & (1u << 4);	/* OSPKE: the OS enabled PKRU */
}

static uint32_t rdpkru(void)
{
	uint32_t eax, edx;

	asm volatile("rdpkru" : "=a"(eax), "=d"(edx) : "c"(0));
	return eax;
}

static void wrpkru(uint32_t v)
{
	asm volatile("wrpkru" : : "a"(v), "c"(0), "d"(0) : "memory");
}

static int victim_fpu_gpr(void *arg)
{
	static struct cr_regs in, out;
	bool avx = cr_cpu_has_avx(), pku = cpu_has_pku();
	uint32_t pkru = 0;

	cr_regs_init(&in, 0x5eed);
	if (pku) {
		/* key 1: access and write disabled; no page uses it */
		pkru = rdpkru() | (3u << 2);
		wrpkru(pkru);
	}
	cr_regs_wait(&in, &out, avx);	/* says ready from inside the asm */
	cr_regs_compare(&in, &out, avx);
	if (pku)
		CR_CHECK(rdpkru() == pkru, "PKRU 0x%x, expected 0x%x", rdpkru(), pkru);
	if (!avx)
		dprintf(1, "victim: no AVX, checked xmm only\n");
	return cr_victim_result();
}

CR_CASE(regs, fpu_gpr, .victim = victim_fpu_gpr);

static __thread unsigned long tls_value = 0x1234;
static __thread char tls_buf[64];

static int victim_tls(void *arg)
{
	unsigned long fs = 0, gs = 0, fs_after = 0, gs_after = 0;
	void *addr = &tls_value;

	tls_value = 0xdeadbeefcafeULL;
	strcpy(tls_buf, "thread local");
	CR_SETUP(!syscall(SYS_arch_prctl, ARCH_GET_FS, &fs), "ARCH_GET_FS");
	CR_SETUP(!syscall(SYS_arch_prctl, ARCH_GET_GS, &gs), "ARCH_GET_GS");

	cr_victim_ready_wait();

	CR_CHECK(!syscall(SYS_arch_prctl, ARCH_GET_FS, &fs_after), "ARCH_GET_FS");
	CR_CHECK(!syscall(SYS_arch_prctl, ARCH_GET_GS, &gs_after), "ARCH_GET_GS");
	CR_CHECK(fs_after == fs, "fs_base 0x%lx, expected 0x%lx", fs_after, fs);
	CR_CHECK(gs_after == gs, "gs_base 0x%lx, expected 0x%lx", gs_after, gs);
	CR_CHECK((void *)&tls_value == addr, "TLS variable moved: %p, was %p",
		 (void *)&tls_value, addr);
	CR_CHECK(tls_value == 0xdeadbeefcafeULL, "TLS value 0x%lx", tls_value);
	CR_CHECK(!strcmp(tls_buf, "thread local"), "TLS buffer '%s'", tls_buf);
	return cr_victim_result();
}

CR_CASE(regs, tls, .victim = victim_tls);
#endif

/* ---- a task inside a blocking system call ---- */

static int restart_pipe[2] = { -1, -1 };

static void on_usr2_write(int sig)
{
	char c = 'x';

	cr_verify_requested = 1;
	(void)!write(restart_pipe[1], &c, 1);
}

static int victim_read_restart(void *arg)
{
	struct sigaction sa = { .sa_handler = on_usr2_write, .sa_flags = SA_RESTART };
	char c = 0;
	ssize_t n;

	CR_SETUP(!pipe(restart_pipe), "pipe");
	sigemptyset(&sa.sa_mask);
	CR_SETUP(!sigaction(SIGUSR2, &sa, NULL), "sigaction");

	cr_victim_ready();
	/* The runner dumps only once we sit in this read(). */
	n = read(restart_pipe[0], &c, 1);

	CR_CHECK(n == 1, "read() returned %zd (%s): the syscall was not restarted", n,
		 n < 0 ? strerror(errno) : "no data");
	CR_CHECK(c == 'x', "read() returned byte 0x%x, expected 'x' from the handler", c);
	CR_CHECK(cr_verify_requested, "read() returned before SIGUSR2");
	return cr_victim_result();
}

CR_CASE(regs, read_restart, .victim = victim_read_restart, .wait_blocked = true,
	.syscall_nr = SYS_read);

static void on_usr2_flag(int sig)
{
	cr_verify_requested = 1;
}

static int victim_sleep_restart(void *arg)
{
	struct sigaction sa = { .sa_handler = on_usr2_flag, .sa_flags = SA_RESTART };
	struct timespec req = { .tv_sec = 600 }, rem = { 0 }, t0, t1;
	int ret;

	sigemptyset(&sa.sa_mask);
	CR_SETUP(!sigaction(SIGUSR2, &sa, NULL), "sigaction");
	clock_gettime(CLOCK_MONOTONIC, &t0);

	cr_victim_ready();
	/* Interrupted by the dump, resumed through restart_syscall(); only SIGUSR2 ends it. */
	ret = clock_nanosleep(CLOCK_MONOTONIC, 0, &req, &rem);
	clock_gettime(CLOCK_MONOTONIC, &t1);

	CR_CHECK(ret == EINTR, "clock_nanosleep returned %d (%s), expected EINTR", ret,
		 strerror(ret));
	/* EINTR without our handler having run is what restart_syscall() returns when the
	 * restart block is empty: -ERESTART_RESTARTBLOCK was restored as is. */
	CR_CHECK(cr_verify_requested, "clock_nanosleep returned EINTR before SIGUSR2: the "
		 "interrupted sleep (-ERESTART_RESTARTBLOCK) was not resumed after restore");
	CR_CHECK(rem.tv_sec > 0 && rem.tv_sec <= 600, "remaining time %ld s", (long)rem.tv_sec);
	CR_CHECK(t1.tv_sec - t0.tv_sec < 300, "slept %ld s", (long)(t1.tv_sec - t0.tv_sec));
	return cr_victim_result();
}

CR_CASE(regs, sleep_restart, .victim = victim_sleep_restart, .wait_blocked = true,
	.syscall_nr = SYS_clock_nanosleep);

/* ---- a task running in user space ---- */

static int victim_busy(void *arg)
{
	volatile unsigned long counter = 0, shadow = 0;
	unsigned long at_ready;

	for (int i = 0; i < 1000; i++) {
		counter++;
		shadow += 3;
	}
	at_ready = counter;
	cr_victim_ready();
	while (!cr_verify_requested) {
		counter++;
		shadow += 3;
	}
	CR_CHECK(counter > at_ready, "counter %lu did not advance past %lu", counter, at_ready);
	CR_CHECK(shadow == counter * 3, "counter %lu and shadow %lu out of step", counter, shadow);
	return cr_victim_result();
}

CR_CASE(regs, busy, .victim = victim_busy);

TEST_HARNESS_MAIN
