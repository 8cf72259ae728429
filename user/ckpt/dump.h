/* SPDX-License-Identifier: MIT */
#ifndef CKPT_DUMP_H
#define CKPT_DUMP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "core.pb-c.h"
#include "files.pb-c.h"
#include "mm.pb-c.h"
#include "infect.h"
#include "proc.h"

struct dump_opts {
	pid_t *roots;
	size_t nr_roots;
	const char *dir;
	bool leave_running;
	bool shell_job;
};

/* One process being dumped. */
struct dump_task {
	pid_t pid;
	struct infect_task it;
	struct proc_stat stat;
	struct proc_vma *vmas;		/* from smaps, before the parasite came */
	size_t nr_vmas;
	struct parasite_task_state pstate;
};

/* What the whole dump accumulates across tasks. */
struct dump_ctx {
	const struct dump_opts *opts;
	int dirfd;
	struct dump_task *tasks;
	size_t nr_tasks;
	/* files.img and pipes-data.img are per dump */
	FileEntry **files;
	size_t nr_files;
	PipeDataEntry **pipes;
	size_t nr_pipes;
	uint64_t pages_bytes;
};

/* dump_mm.c: mm-PID.img, pagemap-PID.img and pages-PID.img. */
int dump_mm(struct dump_ctx *ctx, struct dump_task *task);

/* dump_files.c: fdinfo-PID.img; files and pipe data go into ctx. */
int dump_files(struct dump_ctx *ctx, struct dump_task *task);
/* Write files.img and pipes-data.img; frees what ctx holds. */
int dump_files_write(struct dump_ctx *ctx);
void dump_files_free(struct dump_ctx *ctx);

#endif
