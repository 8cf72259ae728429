/* SPDX-License-Identifier: MIT */
#ifndef CKPT_RESTORE_H
#define CKPT_RESTORE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

#include "core.pb-c.h"
#include "files.pb-c.h"
#include "inventory.pb-c.h"
#include "mm.pb-c.h"
#include "pstree.pb-c.h"

#include "pagechain.h"
#include "restorer_abi.h"


struct restore_opts {
	const char *dir;
	bool keep_frozen;	/* --keep-frozen */
	const char *control;	/* --control SOCK */
	const char *fixup;	/* --fixup DIR */
	bool resume;		/* --resume */
	bool abort;		/* --abort */
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

/* A thread being restored, as the engine's event loop sees it. */
struct rst_thread {
	pid_t tid;
	bool at_trap;		/* stopped on the restorer's final int3 */
};

/* One process to restore, from its images to its running copy. */
struct rst_task {
	pid_t pid, ppid;
	pid_t pgid, sid;
	bool zombie;		/* recreated only to exit with zombie_status */
	uint32_t zombie_status;
	char comm[16];		/* a zombie's name */
	int exit_signal;	/* what its parent gets when it exits */
	int stop_signal;	/* stopped again by it once restored, or 0 */
	/* From pstree_check(): how fork, setsid and setpgid rebuild it. */
	int parent;
	bool early, sid_outside, pgid_outside;
	struct rst_thread *threads;	/* [0] is the leader */
	size_t nr_threads;
	size_t first_child, nr_children;	/* its children: ctx->children[first_child..] */
	CoreEntry *core;
	MmEntry *mm;
	/* Its pages through the image chain (chain_resolve): PE_PRESENT and PE_PARENT runs. */
	struct page_src *srcs;
	size_t nr_srcs;
	FdinfoEntry **fdinfo;
	size_t nr_fdinfo;

	/*
	 * Engine fds the restorer uses, moved to base.. in the child: [0] log,
	 * [1] the top level's pages, [2] exe, [3 + k] mapped file k, then the
	 * shared memory slots, then the pages files of the deeper chain levels
	 * its runs read from (level_slots).
	 */
	int *rfds;
	size_t nr_rfds;
	size_t *shm_slots;	/* rfds[3 + n_files + j] is ctx->shms[shm_slots[j]] */
	size_t nr_shm_slots;
	int *level_slots;	/* by chain level: its pages file's rfds index, or -1 */
	int fd_base;
	struct fd_plan *plan;
	size_t nr_plan;

	uint64_t pages_bytes;	/* bytes of page data it reads, from every level */
	/* Copy-on-write with the children (restore_mm_plan_cow), by mapping index. */
	uint64_t *premap;	/* where the mapping is before the restorer moves it, or 0 */
	bool *premap_fresh;	/* mapped here (else inherited from the parent) */
	uint64_t premap_area;	/* this task's own premap reservation */
	uint64_t premap_area_len;
	uint64_t region;	/* where the restorer lives in the task */
	size_t region_len;
	uint64_t stack_top;	/* the leader's restorer stack; the other threads' follow it */
	void *args;		/* struct restorer_args and its arrays */
	size_t args_len;

	/* Held frozen (restore_frozen.c). */
	int pidfd_slot;		/* the task's fd of ckpt's pidfd */
	int memfd;		/* its /proc/PID/mem, or -1 */
	struct user_regs_struct *regs;	/* at its stop: the base of every remote system call */
	struct restorer_range *vdso_parts;	/* its vDSO block's mappings, where they are now */
	uint32_t nr_vdso_parts;
	const MmEntry *cur_mm;	/* the layout it has now (a fixup changes it to mm) */
	const struct page_src *cur_srcs;	/* what its memory holds now */
	size_t nr_cur_srcs;
	bool fresh;		/* forked by the fixup under way */
};

/* A shared memory object (shared anonymous or memfd), one per shmid. */
struct rst_shm {
	uint64_t shmid;
	uint64_t size;
	const char *memfd;	/* memfd name, or NULL for shared anonymous memory */
	int fd;
};

/* A deleted file recreated from ghost-files.img (and unlinked again): fd keeps it. */
struct rst_ghost {
	uint32_t id;
	int fd;
};

struct rst_ctx {
	struct restore_opts *opts;
	int dirfd;
	InventoryEntry *inv;
	struct chain chain;	/* the images and their parents (level 0: a dup of dirfd) */
	FileEntry **files;
	size_t nr_files;
	int *file_fds;		/* opened FileEntry, by index; -1 until opened */
	PipeDataEntry **pipes;
	size_t nr_pipes;
	struct rst_ghost *ghosts;	/* loaded when a file or mapping first names one */
	size_t nr_ghosts;
	bool ghosts_loaded;
	struct rst_task *tasks;	/* pstree order: parents first */
	size_t nr_tasks;
	/*
	 * Task indexes grouped by parent (see rst_task.first_child); within a
	 * group in pstree order, which is the order the children are forked in.
	 */
	size_t *children;
	struct rst_tid *tids;	/* threads of the live (not zombie) tasks, by TID */
	size_t nr_tids;
	struct rst_shm *shms;
	size_t nr_shms;
	struct rst_shared *shm;	/* shared with the new tasks until they run */
	size_t shm_len;
	pid_t own_pgid, own_sid;	/* ckpt's, for leaders outside the dump */
	/* An incremental restore (restore_frozen.c). */
	bool frozen_round;	/* the restorers stop with the memory in place (keep_frozen) */
	bool mm_kept;		/* the final round: the memory is in place already */
	int engine_pidfd;	/* a pidfd of ckpt, which the tasks take fds through */
	struct rst_ctx *prev;	/* during a fixup: the frozen trees as they are */
	bool lost;		/* a fixup failed half way: the trees are killed */
};

/*
 * restore.c, for restore_frozen.c: the steps of a restore.
 */
int restore_load_images(struct rst_ctx *ctx);
/* Open ctx->opts->dir, load and check its images, open files, plan every restorer. */
int restore_prepare(struct rst_ctx *ctx);
int restore_build(struct rst_ctx *ctx);
int restore_run_restorers(struct rst_ctx *ctx);
int restore_finish_task(struct rst_task *t);
int restore_step_syscall(pid_t pid, const char *what);
void restore_kill_tasks(struct rst_ctx *ctx);
void restore_release_tasks(struct rst_ctx *ctx);
void restore_unlock_network(const InventoryEntry *inv);
int restore_write_pidfile(const char *path, pid_t pid);
/* Wait for the roots (children of ckpt); the first one's exit code (128 + N: killed by N). */
int restore_wait_roots(const pid_t *roots, size_t n);
void restore_free_ctx(struct rst_ctx *ctx);

/* restore_mm.c: check the mm images and build the restorer args. */
int restore_mm_prepare(struct rst_ctx *ctx, struct rst_task *t);
/*
 * The same for a task whose memory is in place (ctx->mm_kept): no
 * mappings or pages to read, its fds taken from ckpt (restorer_getfd),
 * the region placed clear of the image and of busy[] (what the task has
 * mapped besides the image: its current restorer region, its vDSO).
 */
int restore_mm_prepare_kept(struct rst_ctx *ctx, struct rst_task *t,
			    const struct restorer_range *busy, size_t nr_busy);
/* An fd of ckpt for mapped file idx of mm (opened checked, as the restorer maps it); -errno. */
int restore_mm_open_file(struct rst_ctx *ctx, const MmEntry *mm, size_t idx);
/*
 * Where this kernel's vDSO block goes for t's image (0: nowhere) and its
 * parts there; -errno when only a proxy of the dumped vDSO would do.
 */
int restore_mm_plan_vdso(struct rst_task *t, uint64_t *ret_at, struct restorer_range *parts,
			 uint32_t *ret_n);
/*
 * Create every shared memory object the mappings of all tasks name, once,
 * so that each mapping of it maps the same object again.
 */
int restore_mm_shm_prepare(struct rst_ctx *ctx);
/* Plan which private mappings parents share with their children (all tasks). */
int restore_mm_plan_cow(struct rst_ctx *ctx);
/* In the new task, before it forks its children: map and fill its premaps. */
int restore_mm_premap(struct rst_task *t);
void restore_mm_shm_close(struct rst_ctx *ctx);
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
/* Open files.img entry idx into ctx->file_fds[idx] unless it is open. 0 or -errno (logged). */
int restore_files_open(struct rst_ctx *ctx, size_t idx);
/*
 * A new open file description, with open flags `flags`, of the deleted
 * file ghost `id`. On first use every ghost of ghost-files.img is created
 * under its old name (which must be free), filled, and unlinked. Returns
 * the fd or -errno (logged).
 */
int restore_files_ghost(struct rst_ctx *ctx, uint32_t id, int flags);
/* In the child: put the fds in place, and the restorer's fds at fd_base. */
int restore_files_child(struct rst_task *t);
/*
 * The POSIX locks of t's fds, which the restorer takes: written to out
 * unless it is NULL; returns how many.
 */
size_t restore_files_posix_locks(const struct rst_task *t, struct restorer_lock *out);
/* Close the engine's file fds and ghosts. */
void restore_files_close(struct rst_ctx *ctx);

/* restore_inet.c: a TCP or UDP socket; the fd or -errno (logged). */
int restore_inet_open(const FileEntry *f);
/* Once every task is restored: connections out of repair mode. */
int restore_inet_finish(struct rst_ctx *ctx);

/*
 * restore_unix.c: every unix socket of files.img at once (connections need
 * both ends, listeners their waiting clients) the first time one (idx) is
 * needed, into ctx->file_fds. 0 or -errno (logged).
 */
int restore_unix_open(struct rst_ctx *ctx, size_t idx);

/* restore_anon.c: an eventfd, signalfd, timerfd, epoll or inotify file, into ctx->file_fds. */
int restore_anon_open(struct rst_ctx *ctx, size_t idx);

/*
 * restore_frozen.c: an incremental restore. The trees of a dump are built
 * with their memory in place and held frozen (every task stopped under
 * the engine's ptrace); each later delta of the same chain is applied to
 * them (tasks that died are killed, new ones forked by their restored
 * parent with their PIDs, mappings and changed pages updated); the final
 * step puts registers, fds, signals and timers of the last images in
 * place. The result is that of a full restore of the last images.
 * All return 0 or -errno (logged); on failure the trees stay frozen as
 * they were unless said otherwise, and restore_frozen_abort() ends them.
 */
/* Build the trees of o->dir and hold them frozen; *ret owns them. */
int restore_frozen_start(struct restore_opts *o, struct rst_ctx **ret);
/* Apply the delta in dir, whose parent images are the current top, to the frozen trees. */
int restore_frozen_fixup(struct rst_ctx *ctx, const char *dir);
/* The final state of the top images in place; every task still stopped (ready to run). */
int restore_frozen_finish(struct rst_ctx *ctx);
/* After restore_frozen_finish(): let every task run. */
void restore_frozen_release(struct rst_ctx *ctx);
/* Kill every task created, whatever the stage; frees ctx. */
void restore_frozen_abort(struct rst_ctx *ctx);
/* The root PIDs (tasks forked by the engine) into out, at most max; how many it wrote. */
size_t restore_frozen_roots(const struct rst_ctx *ctx, pid_t *out, size_t max);
/* Free ctx after restore_frozen_release(). */
void restore_frozen_free(struct rst_ctx *ctx);

/* restore_ctl.c: --keep-frozen --control SOCK (a server), and its clients. Exit codes. */
int restore_server(struct restore_opts *o);
int restore_client(struct restore_opts *o);

#endif
