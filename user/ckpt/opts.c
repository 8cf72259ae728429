// SPDX-License-Identifier: MIT
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "ckpt.h"
#include "log.h"

int opts_common(int opt, const char *arg)
{
	static int verbosity_bumped;
	char *end;

	switch (opt) {
	case 'v':
		if (!arg) {
			/* Each bare -v raises the level from the default by one. */
			log_set_level((verbosity_bumped++ ? log_get_level() : LOG_WARN) + 1);
			return 1;
		}
		long v = strtol(arg, &end, 10);
		if (*end || v < 0 || v > 4) {
			fprintf(stderr, "ckpt: bad verbosity '%s' (0-4)\n", arg);
			return -1;
		}
		log_set_level(v);
		return 1;
	case 'o':
		if (log_init(arg, log_get_level()))
			return -1;
		return 1;
	}
	return 0;
}

static const int stop_sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };

static void stop_signals_mask(int how)
{
	sigset_t set;

	sigemptyset(&set);
	for (size_t i = 0; i < sizeof(stop_sigs) / sizeof(stop_sigs[0]); i++)
		sigaddset(&set, stop_sigs[i]);
	sigprocmask(how, &set, NULL);
}

void opts_hold_stop_signals(void)
{
	stop_signals_mask(SIG_BLOCK);
}

void opts_release_stop_signals(void)
{
	stop_signals_mask(SIG_UNBLOCK);
}

/* A held stop signal arrived: say so once and make the caller unwind. */
static bool stop_requested(const char *point)
{
	static bool said;
	sigset_t pending;

	if (sigpending(&pending) < 0)
		return false;
	for (size_t i = 0; i < sizeof(stop_sigs) / sizeof(stop_sigs[0]); i++) {
		if (sigismember(&pending, stop_sigs[i])) {
			if (!said)
				pr_err("interrupted by %s at '%s'; undoing", strsignal(stop_sigs[i]), point);
			said = true;
			return true;
		}
	}
	return false;
}

bool fault_injected(const char *point)
{
	const char *f = getenv("CKPT_FAULT");

	/* CKPT_FAULT=signal:<point>: a SIGTERM arrives there, as from a user. */
	if (f && !strncmp(f, "signal:", 7) && !strcmp(f + 7, point))
		kill(getpid(), SIGTERM);	/* fatal unless held */
	if (stop_requested(point))
		return true;
	if (!f || strcmp(f, point))
		return false;
	pr_err("fault injected at '%s' (CKPT_FAULT)", point);
	return true;
}
