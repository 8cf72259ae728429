/* SPDX-License-Identifier: MIT */
#ifndef CKPT_DUMP_H
#define CKPT_DUMP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "core.pb-c.h"
#include "files.pb-c.h"
#include "pstree.pb-c.h"
#include "mm.pb-c.h"
#include "infect.h"
#include "proc.h"
#include "dirty.h"
#include "pagechain.h"
#include "image.h"

struct dump_opts {
	pid_t *roots;
	size_t nr_roots;
	const char *dir;
	bool leave_running;
	bool shell_job;
	bool ext_unix_sk;	/* datagram sockets may be connected to named sockets outside */
	const char *since_log;	/* --since-log: trackd's log directory */
	const char *prev_images;	/* --prev-images: the parent images, relative to dir or absolute */
	bool copy_frozen;	/* --copy-frozen: no copying after the thaw in a --leave-running round */
	bool verify_maps;	/* --verify-maps: check a reused mapping list against /proc */
	/*
	 * Without leave_running: called once the images are complete and on
	 * disk, the tree still frozen (for frozen_ns so far), just before it
	 * is killed. Non-zero fails the dump: the tree runs on as after any
	 * failure.
	 */
	int (*before_kill)(void *arg, uint64_t frozen_ns);
	void *before_kill_arg;
};

/* What a dump did, for callers that run it in process (ckpt migrate). */
struct dump_stats {
	uint64_t frozen_ns;	/* the freeze to the thaw (or, without leave_running, the kill) */
	uint64_t pages_bytes;	/* page data written */
	size_t nr_tasks;
	char net_lock[64];	/* the network lock left for the restore to lift, or "" */
};

/*
 * -t "10,20:30" into o->roots (malloc'ed, appended to); duplicates and
 * junk are usage errors, printed as "ckpt CMD: ...". 0 or -1.
 */
int dump_parse_roots(const char *cmd, const char *arg, struct dump_opts *o);

/*
 * A dump as `ckpt dump` runs it (retried on a passing state), in process.
 * The caller holds the stop signals (opts_hold_stop_signals). 0 or -errno
 * (logged); ret_stats (may be NULL) is written on success.
 */
int dump_run(struct dump_opts *o, struct dump_stats *ret_stats);

/* One thread of a frozen process; threads[0] of a task is its leader. */
struct dump_thread {
	struct infect_task *it;
	uint64_t clear_tid;		/* set_tid_address */
	uint64_t robust, robust_len;	/* set_robust_list */
	uint64_t alt_sp, alt_size;	/* sigaltstack */
	uint32_t alt_flags;
	char comm[64];
};

/* One process being dumped. */
struct dump_task {
	pid_t pid, ppid, pgid, sid;
	bool zombie;			/* then nothing but pstree.img describes it */
	int exit_status;		/* a zombie's wait status */
	bool frozen;			/* it and threads[] are seized */
	struct infect_task it;		/* the leader, which runs the parasite */
	struct dump_thread *threads;
	size_t nr_threads;
	struct proc_stat stat;
	struct proc_vma *vmas;		/* from smaps, before the parasite came */
	size_t nr_vmas;
	struct parasite_task_state pstate;
	bool child_subreaper;

	/* --since-log: the pages written since the last mark (scanned before the re-arm). */
	struct dirty_run *written;
	size_t nr_written;
	struct page_region *known;	/* what the harvest saw of them (dirty_scan_known) */
	size_t nr_known;
	/* --prev-images: how it differs from the parent images (dump_delta.c). */
	uint32_t delta_state;		/* DELTA_* */
	char reread[160];		/* why its memory is read whole, or "" */
	char unarmed[96];		/* trackd had no write tracking of it: why, or "" */
	struct dirty_run *touched;	/* mapped, unmapped, moved or discarded since (the log) */
	size_t nr_touched;
	bool maps_changed;		/* the log shows mapping changes: /proc is read again */
	bool maps_reused;		/* vmas were made from prev_mm, not read from /proc */
	bool regrouped;
	bool has_clone_flags;
	uint64_t clone_flags;
	MmEntry *prev_mm;		/* its mm-PID.img in the parent images, or NULL */
	struct dirty_run *prev_ok;	/* pages the parent images hold as they are now */
	size_t nr_prev_ok;
	uint64_t data_pages, prev_pages;
	/* Copying after the thaw: the pages file and the runs still to read into it. */
	int pages_fd;
	struct dump_copy_run *copy;
	size_t nr_copy, cap_copy;
};

/* A process of the parent images: its mm and the pages they hold data for. */
struct dump_prev_proc {
	MmEntry *mm;
	struct dirty_run *data;
	size_t nr_data;
};

/* A run of pages copied after the thaw: task memory at addr to file_off. */
struct dump_copy_run {
	uint64_t addr, len, file_off;
	bool forced;			/* not readable by the task (PROT_NONE): via /proc/PID/mem */
};

/* A range of a shared memory object whose pages one task dumped. */
struct dump_shm_range {
	uint64_t shmid, pgoff, len;
};

/* What the whole dump accumulates across tasks. */
struct dump_ctx {
	const struct dump_opts *opts;
	int dirfd;
	struct dump_task *tasks;	/* pstree order: parents first */
	size_t nr_tasks, cap_tasks;
	int release_err;
	/* files.img and pipes-data.img are per dump */
	FileEntry **files;
	size_t nr_files;
	PipeDataEntry **pipes;
	size_t nr_pipes;
	struct dump_ghost *ghosts;	/* deleted files saved in ghost-files.img */
	size_t nr_ghosts;
	struct img *ghost_img;		/* open once the first one is seen */
	uint64_t pages_bytes;
	struct dump_shm_range *shm_dumped;
	size_t nr_shm_dumped;
	bool last_attempt;		/* a passing state is an error now, not a retry */
	bool retry;			/* this attempt failed on a passing state: try again */
	char net_lock[64];		/* the nftables table holding the peers off, or "" */
	/* --since-log: where this dump stands in the changelog (dump_log.c). */
	char log_boot_id[64];
	uint64_t log_start_ns, log_seq;
	uint64_t log_offset;		/* where this dump's MARK starts in the log */
	struct log_window *win;		/* dump_log.c: the window, read before and during the freeze */
	int log_dirfd;			/* the changelog directory (dump_log_open), or -1 */
	bool rearmed;			/* dump_log_rearm() began: a failure must be logged */
	char dump_id[33];
	/* --prev-images: the parent chain (level 0 is the parent). */
	struct chain prev;
	bool has_prev;
	char *prev_path;		/* as given, for the inventory */
	uint64_t prev_seq;
	bool log_gap;			/* the log has a GAP since the parent: everything is read whole */
	bool copy_after_thaw;		/* pages are read after release (dump_copy_deferred) */
	bool pages_torn;		/* and some changed meanwhile: inventory's pages_after_thaw */
	PstreeEntry **prev_tree;	/* the parent's pstree.img, sorted by PID */
	struct dump_prev_proc *prev_procs;	/* by prev_tree index, loaded before the freeze */
	struct dump_task **by_pid;	/* tasks sorted by PID, once the tree is frozen */
	size_t nr_prev_tree;
	struct img *delta_img;
	int *repair_sks;		/* our copies of TCP sockets held in repair mode */
	int *blocked_sks;		/* listeners dropping new SYNs during the dump */
	size_t nr_blocked_sks;
	size_t nr_repair_sks;
};

/* dump_tree.c: find and freeze every task of every root, in pstree order. */
int dump_tree_collect(struct dump_ctx *ctx);
/* Can restore rebuild the sessions and groups? Logs why not. */
int dump_tree_check(struct dump_ctx *ctx);
/* Detach from (or kill) every frozen task; errors go to ctx->release_err. */
void dump_tree_release(struct dump_ctx *ctx, bool kill_tasks);

/*
 * dump_timers.c: the task's POSIX timers into tc->posix_timers (free with
 * dump_timers_free()); a timer's queued signal leaves the pending lists of
 * tc and ths (the threads' entries, leader first). Logs; needs the parasite.
 */
int dump_timers(struct dump_task *task, TaskCoreEntry *tc, ThreadCoreEntry **ths);
void dump_timers_free(TaskCoreEntry *tc);

/* dump_mm.c: mm-PID.img, pagemap-PID.img and pages-PID.img. */
int dump_mm(struct dump_ctx *ctx, struct dump_task *task);

/*
 * dump_aio.c: native AIO contexts. dump_aio_add() records the ring mapped
 * at v in mm->aio_rings; dump_aio_collect() waits (bounded) for requests
 * in flight and reads every ring's state and waiting events (logs; needs
 * the task seized). dump_aio_free() frees what they allocated.
 */
bool dump_aio_is_ring(const struct proc_vma *v);
int dump_aio_add(MmEntry *mm, const struct proc_vma *v);
int dump_aio_collect(struct dump_task *task, MmEntry *mm);
void dump_aio_free(MmEntry *mm);

/* dump_files.c: fdinfo-PID.img; files and pipe data go into ctx. */
int dump_files(struct dump_ctx *ctx, struct dump_task *task);
/* ckpt's own copy of fd of pid (pidfd_getfd), or -errno; does not log. */
int dump_files_getfd(pid_t pid, int fd);

/* A deleted file saved in ghost-files.img: one per inode across the dump. */
struct dump_ghost {
	dev_t dev;
	ino_t ino;
	uint32_t id;
};

struct stat;
/*
 * A deleted regular file (st_nlink 0), reachable as `proc` (/proc/PID/fd/N
 * or /proc/PID/map_files/A-B; opened anew, so the task's offset stays): its
 * contents, holes kept, go to ghost-files.img once per inode. `what` names
 * its user for messages ("fd 5 of 123"), `path` is its old name. Refuses
 * files above IMG_GHOST_MAX_SIZE. Returns the ghost id or -errno (logged).
 */
int dump_files_ghost(struct dump_ctx *ctx, const char *proc, const char *what, const char *path,
		     const struct stat *st);
/*
 * dump_inet.c: a TCP or UDP socket (domain AF_INET or AF_INET6). An
 * established TCP connection stays in repair mode through ckpt's copy,
 * kept in ctx, until dump_inet_done(): killed true leaves it to close
 * silently, false takes it out of repair mode.
 */
int dump_inet_socket(struct dump_ctx *ctx, pid_t pid, int fd, int domain, InetSkEntry **ret);
/* Hold a copy of sk until dump_inet_done() (which takes it out of repair mode). */
int dump_inet_keep(struct dump_ctx *ctx, int sk);
/*
 * 0, or -EAGAIN (-EOPNOTSUPP on the last attempt, logged) when a TCP
 * listener of the dump has connections the task has not accepted: the
 * kernel completes handshakes while the task is frozen, and such a
 * connection would be lost. With block, every listener also drops new
 * SYNs until dump_inet_done() (the clients send them again).
 */
int dump_inet_check_listeners(struct dump_ctx *ctx, bool block);
void dump_inet_done(struct dump_ctx *ctx, bool killed);
void dump_inet_free(InetSkEntry *e);

/* dump_unix.c: a unix socket: name, state, peer, accept queue and queued messages. */
/* The address family of a task's socket fd, or -1. */
int dump_unix_domain(pid_t pid, int fd);
int dump_unix_socket(pid_t pid, int fd, uint64_t ino, UnixSkEntry **ret);
void dump_unix_free(UnixSkEntry *u);

/* Where a FileEntry came from: an fd of a task holding that open file description. */
struct dump_file_origin {
	pid_t pid;
	int fd;
	dev_t dev;
	ino_t ino;
};

/*
 * dump_anon.c: an anon_inode file (eventfd, signalfd, timerfd, epoll,
 * inotify) of fd `fd` of pid, whose /proc link is `link`, into e's kind
 * and message. Other anon_inode kinds are refused (logged, -EOPNOTSUPP).
 */
int dump_anon_file(pid_t pid, int fd, const char *link, FileEntry *e);
/* Once every task's fds are known: the file behind each epoll registration. Logs. */
int dump_anon_resolve(struct dump_ctx *ctx, const struct dump_file_origin *origins);
/*
 * Once every fd is known: every socket a unix socket is connected to, and
 * every client waiting in a listener's queue, must be in the dump; marks
 * accepted ends with their listener. 0 or -errno (logged).
 */
int dump_unix_resolve(struct dump_ctx *ctx, const struct dump_file_origin *origins);
void dump_anon_free(FileEntry *e);

/* Write files.img and pipes-data.img, close ghost-files.img; frees what ctx holds. */
int dump_files_write(struct dump_ctx *ctx);
void dump_files_free(struct dump_ctx *ctx);

/*
 * --since-log, first thing once the tree is frozen: check that trackd's
 * log at opts->since_log tracks exactly the dumped roots (and is the one
 * of the parent images), harvest every process's written pages
 * (task->written; re-armed by dump_log_rearm() at the end), have trackd write a MARK (its seq and the log's
 * identity go to ctx for the inventory) and register what is new, hand
 * trackd the write tracking of processes it could not seize, and with
 * parent images read the log window since their mark into the tasks.
 * 0 or -errno (logged).
 */
int dump_log_mark(struct dump_ctx *ctx);
/*
 * Before the freeze: check the log's identity (roots, and that of the
 * parent images) and read the window since the parent's mark as far as
 * it goes, so that little is left to read frozen. dump_log_close() frees
 * what it keeps. 0 or -errno (logged).
 */
int dump_log_open(struct dump_ctx *ctx);
void dump_log_close(struct dump_ctx *ctx);
/*
 * The dump fails after dump_log_rearm() began: have trackd write a LOST
 * naming nobody (every process counts as changed), so that a later delta
 * against older images still copies what this one took. 0 or -errno (logged).
 */
int dump_log_forget(struct dump_ctx *ctx);
/* Once the images are complete, still frozen: re-arm the write tracking. */
int dump_log_rearm(struct dump_ctx *ctx);

/*
 * dump_delta.c, --prev-images. dump_delta_open(): before anything is
 * frozen, open and check the parent chain. dump_delta_plan(): once the log
 * window (parent's mark, this mark] is read, per task: its state, its
 * parent mm and the pages the parent holds data for. dump_delta_maps():
 * task->vmas, from prev_mm when the log shows no mapping change (checked
 * against /proc with --verify-maps), else from /proc; then task->prev_ok,
 * the pages to refer to the parent. delta.img: dump_delta_begin() opens it
 * with the processes gone, dump_delta_task() adds one (dump_mm calls it
 * with the new mm), dump_delta_write() adds the zombies and closes it.
 * dump_delta_close() frees everything of the above (also --since-log's
 * written runs). 0 or -errno (logged).
 */
int dump_delta_open(struct dump_ctx *ctx);
/* The task of PID pid (zombies too), or NULL; indexes the frozen tree at first use. */
struct dump_task *dump_task_by_pid(struct dump_ctx *ctx, pid_t pid);
int dump_delta_plan(struct dump_ctx *ctx);
/* t's mm in the parent images (before or after dump_delta_plan() took it), or NULL. */
const MmEntry *dump_delta_prev_mm(struct dump_ctx *ctx, const struct dump_task *t);
int dump_delta_maps(struct dump_ctx *ctx, struct dump_task *task);
int dump_delta_begin(struct dump_ctx *ctx);
int dump_delta_task(struct dump_ctx *ctx, struct dump_task *task, const MmEntry *mm);
int dump_delta_write(struct dump_ctx *ctx);
void dump_delta_close(struct dump_ctx *ctx);

/* dump_mm.c: after the thaw, read the pages dump_mm left to copy. 0 or -errno (logged). */
int dump_copy_deferred(struct dump_ctx *ctx);
void dump_copy_free(struct dump_ctx *ctx);

/*
 * Sorted, merged run lists (dump_delta.c): *ret gets a op b, malloc'ed
 * (NULL when empty). 0 or -ENOMEM.
 */
int runs_intersect(const struct dirty_run *a, size_t na, const struct dirty_run *b, size_t nb,
		   struct dirty_run **ret, size_t *ret_n);
int runs_subtract(const struct dirty_run *a, size_t na, const struct dirty_run *b, size_t nb,
		  struct dirty_run **ret, size_t *ret_n);
/* Sort and merge in place; returns the new length. */
size_t runs_normalize(struct dirty_run *r, size_t n);

#endif
