/* SPDX-License-Identifier: MIT */
#ifndef CKPT_RESTORE_H
#define CKPT_RESTORE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "core.pb-c.h"
#include "files.pb-c.h"
#include "inventory.pb-c.h"
#include "mm.pb-c.h"
#include "pagemap.pb-c.h"
#include "pstree.pb-c.h"

struct restore_opts {
	const char *dir;
	bool detach;
	bool shell_job;
	const char *pidfile;
};

/* A target fd and the engine fd it is a copy of. */
struct fd_plan {
	int target;
	int src;
	bool cloexec;
};

/* One process to restore, from its images to its running copy. */
struct rst_task {
	pid_t pid;
	pid_t pgid, sid;
	CoreEntry *core;
	MmEntry *mm;
	PagemapEntry **pagemap;
	size_t nr_pagemap;
	FdinfoEntry **fdinfo;
	size_t nr_fdinfo;

	/* Engine fds the restorer uses, moved to base.. in the child. */
	int *rfds;
	size_t nr_rfds;
	int fd_base;
	struct fd_plan *plan;
	size_t nr_plan;

	uint64_t pages_bytes;	/* size of the pages file */
	uint64_t region;	/* where the restorer lives in the task */
	size_t region_len;
	void *args;		/* struct restorer_args and its arrays */
	size_t args_len;
	pid_t child;
};

struct rst_ctx {
	const struct restore_opts *opts;
	int dirfd;
	InventoryEntry *inv;
	FileEntry **files;
	size_t nr_files;
	int *file_fds;		/* opened FileEntry, by index; -1 until opened */
	PipeDataEntry **pipes;
	size_t nr_pipes;
	struct rst_task *tasks;
	size_t nr_tasks;
};

/* restore_mm.c: check the mm images and build the restorer args. */
int restore_mm_prepare(struct rst_ctx *ctx, struct rst_task *t);
/* In the child: map the restorer and its args at the reserved place. */
int restore_mm_child(struct rst_task *t);

/*
 * Open a path named by an image only once it is known to be of the file
 * type `type` (S_IFREG, S_IFDIR, ...): O_PATH first, then a reopen through
 * /proc/self/fd. Opening a device node as root can have effects, so a
 * hostile image must not get that far. Returns the fd or -errno (logged).
 */
int restore_open_checked(const char *path, int flags, mode_t type);

/* restore_files.c: open every file of the task in the engine. */
int restore_files_prepare(struct rst_ctx *ctx, struct rst_task *t);
/* In the child: put the fds in place, and the restorer's fds at fd_base. */
int restore_files_child(struct rst_task *t);
void restore_files_close(struct rst_ctx *ctx);

#endif
