// SPDX-License-Identifier: MIT
/*
 * POSIX timers (timer_create). /proc/PID/timers (CONFIG_CHECKPOINT_RESTORE)
 * names each timer's ID, signal and sigev_value, notification and clock;
 * the remaining time, interval and overrun only the task can ask, so they
 * come from timer_gettime()/timer_getoverrun() run in the task as remote
 * system calls, answers in the parasite's scratch area.
 */
#define LOG_PREFIX "timers: "
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>

#include "dump.h"
#include "log.h"

#ifndef SIGEV_THREAD_ID
#define SIGEV_THREAD_ID 4
#endif

#define TIMERS_MAX 4096

/*
 * Clocks a timer can be recreated on by the restored leader. A CPU-time
 * clock is encoded negative (kernel MAKE_PROCESS_CPUCLOCK: ~pid << 3 |
 * per-thread bit 4 | type, pid 0 meaning the caller): a per-thread one
 * counts the thread that made the timer, which /proc does not name.
 */
static const char *clock_unsupported(int clk)
{
	if (clk == CLOCK_REALTIME || clk == CLOCK_MONOTONIC || clk == CLOCK_PROCESS_CPUTIME_ID ||
	    clk == CLOCK_BOOTTIME || clk == CLOCK_REALTIME_ALARM || clk == CLOCK_BOOTTIME_ALARM ||
	    clk == CLOCK_TAI)
		return NULL;
	if (clk == CLOCK_THREAD_CPUTIME_ID || (clk < 0 && (clk & 4)))
		return "the CPU-time clock of a thread";
	if (clk < 0 && (clk & 3) != 3)
		return NULL;
	return "a clock ckpt cannot recreate timers on";
}

static int parse_notify(const char *s, uint32_t *ret_notify, uint32_t *ret_tid)
{
	char kind[16], who[8];
	int id;

	if (sscanf(s, "%15[a-z]/%7[a-z].%d", kind, who, &id) != 3)
		return -EINVAL;
	if (!strcmp(kind, "signal"))
		*ret_notify = SIGEV_SIGNAL;
	else if (!strcmp(kind, "none"))
		*ret_notify = SIGEV_NONE;
	else if (!strcmp(kind, "thread"))
		*ret_notify = SIGEV_THREAD;
	else
		return -EINVAL;
	*ret_tid = 0;
	if (!strcmp(who, "tid")) {
		*ret_notify |= SIGEV_THREAD_ID;
		*ret_tid = id;
	}
	return 0;
}

static int add_timer(TaskCoreEntry *tc, PosixTimerEntry *t)
{
	PosixTimerEntry **n = realloc(tc->posix_timers, (tc->n_posix_timers + 1) * sizeof(*n));

	if (!n)
		return -ENOMEM;
	tc->posix_timers = n;
	n[tc->n_posix_timers++] = t;
	return 0;
}

/* The ID, signal, notification and clock of every timer, from /proc/PID/timers. */
static int parse_timers(struct dump_task *task, TaskCoreEntry *tc)
{
	char path[64], line[256];
	PosixTimerEntry *t = NULL;
	FILE *f;
	int err = 0;

	snprintf(path, sizeof(path), "/proc/%d/timers", task->pid);
	f = fopen(path, "re");
	if (!f) {
		err = -errno;
		pr_perror("cannot open %s", path);
		return err;
	}
	while (!err && fgets(line, sizeof(line), f)) {
		unsigned long long v;
		int n;

		if (sscanf(line, "ID: %d", &n) == 1) {
			if (tc->n_posix_timers >= TIMERS_MAX) {
				pr_err("task %d has more than %d POSIX timers", task->pid, TIMERS_MAX);
				err = -E2BIG;
				break;
			}
			t = calloc(1, sizeof(*t));
			if (!t) {
				err = -ENOMEM;
				break;
			}
			posix_timer_entry__init(t);
			t->id = n;
			err = add_timer(tc, t);
			if (err)
				free(t);
		} else if (t && sscanf(line, "signal: %d/%llx", &n, &v) == 2) {
			t->signo = n;
			t->sigval = v;
		} else if (t && !strncmp(line, "notify: ", 8)) {
			err = parse_notify(line + 8, &t->notify, &t->notify_tid);
			t->has_notify_tid = t->notify & SIGEV_THREAD_ID;
			if (err)
				pr_err("task %d: cannot parse '%.*s' in %s", task->pid,
				       (int)strcspn(line, "\n"), line, path);
		} else if (t && sscanf(line, "ClockID: %d", &n) == 1) {
			t->clock = n;
		}
	}
	if (!err && ferror(f)) {
		err = -EIO;
		pr_err("cannot read %s", path);
	}
	fclose(f);
	return err;
}

/* timer_gettime() and timer_getoverrun() of timer t in the task. */
static int timer_state(struct dump_task *task, PosixTimerEntry *t)
{
	struct itimerspec its;
	long ret;
	int err;

	err = infect_syscall_out(&task->it, &task->it, SYS_timer_gettime, t->id, &its, sizeof(its));
	if (!err)
		err = infect_syscall(&task->it, SYS_timer_getoverrun, &ret, t->id, 0, 0, 0, 0, 0);
	if (!err && ret < 0)
		err = ret;
	if (err) {
		pr_errno(err, "cannot read POSIX timer %u of %d", t->id, task->pid);
		return err;
	}
	t->overrun = ret;
	t->value_ns = its.it_value.tv_sec * 1000000000ull + its.it_value.tv_nsec;
	t->interval_ns = its.it_interval.tv_sec * 1000000000ull + its.it_interval.tv_nsec;
	return 0;
}

/*
 * A timer's queued signal (si_code SI_TIMER, its ID in si_timerid) is
 * the kernel's own sigqueue of that timer, which computes si_overrun when
 * it is delivered: it is not kept as a siginfo but as signal_pending, and
 * restore has the timer queue it again.
 */
static void take_pending(PosixTimerEntry *t, SiginfoEntry **l, size_t *n)
{
	for (size_t i = 0; i < *n; i++) {
		siginfo_t si;
		memcpy(&si, l[i]->siginfo.data, sizeof(si));
		if (si.si_code != SI_TIMER || si.si_timerid != (int)t->id || si.si_signo != (int)t->signo)
			continue;
		free(l[i]);
		memmove(&l[i], &l[i + 1], (*n - i - 1) * sizeof(*l));
		(*n)--;
		t->has_signal_pending = true;
		t->signal_pending = true;
		return;
	}
}

static int timer_cmp(const void *a, const void *b)
{
	const PosixTimerEntry *x = *(PosixTimerEntry *const *)a, *y = *(PosixTimerEntry *const *)b;

	return x->id < y->id ? -1 : x->id > y->id;
}

int dump_timers(struct dump_task *task, TaskCoreEntry *tc, ThreadCoreEntry **ths)
{
	int err = parse_timers(task, tc);

	/* The kernel lists the newest first; the image keeps them by ID. */
	if (!err && tc->n_posix_timers)
		qsort(tc->posix_timers, tc->n_posix_timers, sizeof(*tc->posix_timers), timer_cmp);

	for (size_t i = 0; !err && i < tc->n_posix_timers; i++) {
		PosixTimerEntry *t = tc->posix_timers[i];
		const char *why = clock_unsupported(t->clock);
		if (why) {
			pr_err("POSIX timer %u of %d uses %s (clock %d); not supported yet", t->id,
			       task->pid, why, t->clock);
			return -EOPNOTSUPP;
		}
		err = timer_state(task, t);
		if (err)
			return err;
		if (!(t->notify & SIGEV_THREAD_ID)) {
			take_pending(t, tc->shared_pending, &tc->n_shared_pending);
			continue;
		}
		size_t k = 0;
		while (k < task->nr_threads && ths[k]->tid != t->notify_tid)
			k++;
		if (k == task->nr_threads) {
			pr_err("POSIX timer %u of %d signals thread %u, which is not one of its threads",
			       t->id, task->pid, t->notify_tid);
			return -ESRCH;
		}
		take_pending(t, ths[k]->pending, &ths[k]->n_pending);
	}
	if (!err && tc->n_posix_timers)
		pr_info("%d: %zu POSIX timer(s)", task->pid, tc->n_posix_timers);
	return err;
}

void dump_timers_free(TaskCoreEntry *tc)
{
	for (size_t i = 0; i < tc->n_posix_timers; i++)
		free(tc->posix_timers[i]);
	free(tc->posix_timers);
	tc->posix_timers = NULL;
	tc->n_posix_timers = 0;
}
