// SPDX-License-Identifier: MIT
/*
 * fault_test: failure safety. A dump that fails at any stage (CKPT_FAULT=<point>) leaves the
 * target running and unharmed: not traced, not stopped, same maps (parasite gone), same
 * signal state and fds, same memory and registers (the victim checks itself). Dumping a
 * missing PID fails cleanly. A restore whose PID is taken fails naming the PID and leaves
 * nothing behind; so does a restore from an empty directory.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cr.h"

CR_FIXTURE(fault);

#define MEM_SIZE (4UL << 20)

/* Memory with a pattern plus registers held in asm across the dump. */
static int victim_state(void *arg)
{
	unsigned char *m;
	uint64_t h;

	m = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CR_SETUP(m != MAP_FAILED, "mmap");
	for (size_t i = 0; i < MEM_SIZE; i++)
		m[i] = (unsigned char)(i * 13 + (i >> 12));
	h = cr_hash(m, MEM_SIZE);
#ifdef __x86_64__
	{
		static struct cr_regs in, out;
		bool avx = cr_cpu_has_avx();

		cr_regs_init(&in, 77);
		cr_regs_wait(&in, &out, avx);
		cr_regs_compare(&in, &out, avx);
	}
#else
	cr_victim_ready_wait();
#endif
	CR_CHECK(cr_hash(m, MEM_SIZE) == h, "memory checksum changed");
	return cr_victim_result();
}

#define FAULT_CASE(point)								\
	CR_CASE(fault, point, .victim = victim_state, .fault = #point)

FAULT_CASE(seize);
CR_CASE(fault, parasite_inject, .victim = victim_state, .fault = "parasite-inject");
CR_CASE(fault, parasite_cmd, .victim = victim_state, .fault = "parasite-cmd");
CR_CASE(fault, collect_mm, .victim = victim_state, .fault = "collect-mm");
CR_CASE(fault, dump_pages, .victim = victim_state, .fault = "dump-pages");
CR_CASE(fault, dump_files, .victim = victim_state, .fault = "dump-files");
CR_CASE(fault, write_images, .victim = victim_state, .fault = "write-images");
/* ckpt itself gets SIGTERM in the middle of a dump: it must undo, not die. */
CR_CASE(fault, sigterm_parasite, .victim = victim_state, .fault = "signal:parasite-cmd");
CR_CASE(fault, sigterm_pages, .victim = victim_state, .fault = "signal:dump-pages");
CR_CASE(fault, before_kill, .victim = victim_state, .fault = "before-kill");

/* ---- dump of a PID that does not exist ---- */

static int flow_missing_pid(struct cr_run *r)
{
	char spid[16];
	int status;
	pid_t pid;

	pid = fork();
	if (pid < 0)
		return cr_fail(r, "fork: %s", strerror(errno));
	if (pid == 0)
		_exit(0);
	waitpid(pid, NULL, 0);
	snprintf(spid, sizeof(spid), "%d", pid);
	if (cr_dump(r, "dump", pid, false, NULL, &status))
		return -1;
	if (cr_expect_failed(r, "dump", status, spid))
		return -1;
	if (cr_count_children())
		return cr_fail(r, "%d process(es) left after the failed dump", cr_count_children());
	return 0;
}

CR_CASE(fault, missing_pid, .flow = flow_missing_pid);

/* ---- restore when the PID is taken ---- */

static int victim_idle(void *arg)
{
	cr_victim_ready_wait();
	return 0;
}

static int flow_pid_taken(struct cr_run *r)
{
	pid_t pid, restored, again;
	char spid[16];
	int status;

	if (cr_victim_start(r))
		return -1;
	pid = r->victim;
	snprintf(spid, sizeof(spid), "%d", pid);
	if (cr_dump(r, "dump", pid, false, NULL, &status) || cr_expect_ok(r, "dump", status))
		return -1;
	if (cr_reap_dumped(r, pid))
		return -1;
	if (cr_restore(r, "restore", &status, &restored) || cr_expect_ok(r, "restore", status))
		return -1;
	if (restored != pid)
		return cr_fail(r, "restored as %d, expected %d", restored, pid);
	/* The PID is now taken by the restored task: a second restore must fail. */
	if (cr_restore(r, "restore2", &status, &again))
		return -1;
	if (cr_expect_failed(r, "restore2", status, spid))
		return -1;
	if (cr_count_children() != 1)
		return cr_fail(r, "%d children after the failed restore, expected only the first "
			       "restored task", cr_count_children());
	/* ...and leave the first one alone. */
	return cr_verify(r, pid, "first restored");
}

CR_CASE(fault, restore_pid_taken, .victim = victim_idle, .flow = flow_pid_taken);

/* ---- restore from a directory without images ---- */

static int flow_empty_dir(struct cr_run *r)
{
	pid_t pid;
	int status;

	if (mkdir(r->imgdir, 0700))
		return cr_fail(r, "mkdir '%s': %s", r->imgdir, strerror(errno));
	if (cr_restore(r, "restore", &status, &pid))
		return -1;
	if (cr_expect_failed(r, "restore", status, NULL))
		return -1;
	if (cr_count_children())
		return cr_fail(r, "%d process(es) left after the failed restore",
			       cr_count_children());
	return 0;
}

CR_CASE(fault, restore_empty_dir, .flow = flow_empty_dir);

TEST_HARNESS_MAIN
