/* SPDX-License-Identifier: MIT */
#ifndef CKPT_CKPT_H
#define CKPT_CKPT_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define CKPT_VERSION "0.1"

/* One `ckpt COMMAND`: argv[0] is the command name. Returns the exit code. */
struct ckpt_cmd {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *usage;
	const char *help;
};

int cmd_check(int argc, char **argv);
int cmd_dump(int argc, char **argv);
int cmd_restore(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_migrate(int argc, char **argv);
int cmd_receive(int argc, char **argv);

/*
 * Parse the options every command shares (-v, -o). Returns 1 when the
 * option was one of them, 0 when not, -1 on a usage error (printed).
 */
int opts_common(int opt, const char *arg);

/*
 * CKPT_FAULT=<point>: true (and logged) when the named fault is requested,
 * or when a stop signal held by opts_hold_stop_signals() is pending: the
 * caller then fails and unwinds as for any error.
 */
bool fault_injected(const char *point);

/*
 * Hold SIGINT, SIGTERM, SIGHUP and SIGQUIT: dying with a task seized would
 * leave it stopped inside the parasite. They end the dump at its next
 * check point instead.
 */
void opts_hold_stop_signals(void);
/* Let them through again (after a restore: ckpt waits for the roots). */
void opts_release_stop_signals(void);

#endif
