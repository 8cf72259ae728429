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

/* The pipes of PARASITE_CMD_PIPES, for later PARASITE_CMD_VMSPLICE calls. */
static struct parasite_pipes pipes;

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

static int make_pipes(struct parasite_pipes *p)
{
	long ret;

	if (p->nr > PARASITE_MAX_PIPES)
		return -22;
	p->size = PARASITE_PIPE_SIZE;
	for (__u32 i = 0; i < p->nr; i++) {
		p->fds[i][0] = p->fds[i][1] = -1;
		ret = sys_pipe2(p->fds[i], 02000000);	/* O_CLOEXEC */
		if (ret) {
			rt_err("pipe2 failed: %ld", ret);
			return ret;
		}
		ret = sys_fcntl(p->fds[i][1], 1031, PARASITE_PIPE_SIZE);	/* F_SETPIPE_SZ */
		if (ret < 0) {
			rt_err("F_SETPIPE_SZ failed: %ld", ret);
			return ret;
		}
	}
	return 0;
}

/*
 * vmsplice puts references to the task's pages into the pipes, no copy;
 * the task is frozen, so they do not change before the engine reads them.
 */
static int do_vmsplice(const struct parasite_pipes *p, const struct parasite_vmsplice *v)
{
	struct {
		unsigned long base, len;
	} iov;

	if (v->nr > PARASITE_MAX_IOVS)
		return -22;
	for (__u32 i = 0; i < v->nr; i++) {
		if (v->iov[i].pipe >= p->nr)
			return -22;
		iov.base = v->iov[i].addr;
		iov.len = v->iov[i].len;
		while (iov.len) {
			long ret = sys_vmsplice(p->fds[v->iov[i].pipe][1], &iov, 1, 2);	/* NONBLOCK */
			if (ret <= 0) {
				rt_err("vmsplice of %lx+%lu failed: %ld", iov.base, iov.len, ret);
				return ret ? ret : -5;
			}
			iov.base += ret;
			iov.len -= ret;
		}
	}
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
	case PARASITE_CMD_PIPES:
		ret = make_pipes(&args->pipes);
		if (!ret)
			pipes = args->pipes;
		break;
	case PARASITE_CMD_VMSPLICE:
		ret = do_vmsplice(&pipes, &args->vmsplice);
		break;
	default:
		rt_err("unknown command %u", args->cmd);
		ret = -22;
	}
	args->ret = ret;
	return ret;
}
