// SPDX-License-Identifier: MIT
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "ckpt.h"
#include "log.h"

static const struct ckpt_cmd cmds[] = {
	{ "check", cmd_check, "check [-v]", "check the kernel features ckpt needs" },
	{ "dump", cmd_dump, "dump -t PID[,PID...] -D DIR [--leave-running] [--shell-job]",
	  "checkpoint process trees into DIR" },
	{ "restore", cmd_restore, "restore -D DIR [-d] [--pidfile FILE] [--shell-job]",
	  "restore the trees saved in DIR" },
	{ "restore", cmd_restore, "restore -D DIR --keep-frozen --control SOCK",
	  "build them frozen; then --fixup DIR, --resume, --abort" },
	{ "migrate", cmd_migrate,
	  "migrate -t PID[,PID...] --to ADDR:PORT [--max-rounds N] [OPTIONS]",
	  "move live trees to a `ckpt receive` over one TCP connection" },
	{ "receive", cmd_receive, "receive --listen ADDR:PORT [-d] [--pidfile FILE]",
	  "the destination of a `ckpt migrate`: restore the trees it sends" },
	{ "show", cmd_show, "show DIR|FILE|--log LOGDIR [--pages [--sums]] [--since SEQ] [--json]",
	  "decode images, list saved pages or trackd's changelog" },
};

static void usage(FILE *f)
{
	fprintf(f, "usage: ckpt COMMAND [OPTIONS]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		fprintf(f, "  %-70s %s\n", cmds[i].usage, cmds[i].help);
	fprintf(f, "\ncommon options:\n"
		   "  -v[N], --verbosity[=N]  log level 0-4 (default 2); each -v adds one\n"
		   "  -o, --log-file FILE     write the log to FILE (errors still go to stderr)\n"
		   "  -h, --help              this text\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	/* A closed stdout or log pipe is an error to report, not a reason to die. */
	signal(SIGPIPE, SIG_IGN);
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (!strcmp(argv[1], cmds[i].name)) {
			log_init(NULL, LOG_WARN);
			int ret = cmds[i].fn(argc - 1, argv + 1);
			log_fini();
			return ret;
		}
	}
	fprintf(stderr, "ckpt: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
