// SPDX-License-Identifier: MIT
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

bool fault_injected(const char *point)
{
	const char *f = getenv("CKPT_FAULT");

	if (!f || strcmp(f, point))
		return false;
	pr_err("fault injected at '%s' (CKPT_FAULT)", point);
	return true;
}
