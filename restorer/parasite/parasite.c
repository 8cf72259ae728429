// SPDX-License-Identifier: MIT
/*
 * The parasite runs inside a seized task during dump, on its own stack in
 * its own mapping, with every signal blocked by the engine. It only reads
 * state that the kernel shows to the task itself; it changes nothing.
 */
#include <linux/prctl.h>

#include "parasite_abi.h"
#include "rt.h"

#define BLOB_PREFIX "parasite: "

static int dump_task(struct parasite_task_state *st)
{
	long ret;

	for (int sig = 1; sig <= 64; sig++) {
		if (sig == 9 || sig == 19)	/* SIGKILL, SIGSTOP have no action */
			continue;
		ret = sys_rt_sigaction(sig, NULL, &st->sigactions[sig - 1], 8);
		if (ret) {
			rt_err("rt_sigaction(%d) failed: %ld", sig, ret);
			return ret;
		}
	}
	for (int which = 0; which < 3; which++) {
		ret = sys_getitimer(which, &st->itimers[which]);
		if (ret) {
			rt_err("getitimer(%d) failed: %ld", which, ret);
			return ret;
		}
	}
	ret = sys_sigaltstack(NULL, &st->altstack);
	if (ret) {
		rt_err("sigaltstack failed: %ld", ret);
		return ret;
	}
	for (int res = 0; res < 16; res++) {
		ret = sys_prlimit64(0, res, NULL, st->rlimits[res]);
		if (ret) {
			rt_err("prlimit64(%d) failed: %ld", res, ret);
			return ret;
		}
	}
	/* brk(0) fails by design and returns the current break. */
	st->brk = sys_brk(0);
	ret = sys_prctl(PR_GET_PDEATHSIG, (unsigned long)&st->pdeathsig, 0, 0, 0);
	if (ret) {
		rt_err("PR_GET_PDEATHSIG failed: %ld", ret);
		return ret;
	}
	st->dumpable = sys_prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
	if (st->dumpable < 0)
		return st->dumpable;
	st->securebits = sys_prctl(PR_GET_SECUREBITS, 0, 0, 0, 0);
	if (st->securebits < 0)
		return st->securebits;
	rt_debug("task state collected, brk %lx", (unsigned long)st->brk);
	return 0;
}

long parasite_service(struct parasite_args *args);
long parasite_service(struct parasite_args *args)
{
	long ret;

	if (args->magic != PARASITE_MAGIC || args->version != PARASITE_ABI_VERSION)
		return args->ret = -22;
	args->log_len = 0;
	rt_log_init_buf(args->log, PARASITE_LOG_SIZE, &args->log_len, args->log_level);
	switch (args->cmd) {
	case PARASITE_CMD_DUMP_TASK:
		ret = dump_task(&args->task);
		break;
	default:
		rt_err("unknown command %u", args->cmd);
		ret = -22;
	}
	args->ret = ret;
	return ret;
}
