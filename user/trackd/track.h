/* SPDX-License-Identifier: MIT */
/*
 * The BPF tracker (bpf/track.bpf.c) seen from trackd: load, fill the map
 * of tracked processes, attach, and hand each record to a callback. This
 * file's track.c is the only includer of track.skel.h.
 */
#ifndef CKPT_TRACKD_TRACK_H
#define CKPT_TRACKD_TRACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <linux/types.h>

#include "bpf/track.h"	/* struct track_event; the build adds -I. */

struct track;

struct track_opts {
	size_t ring_size;	/* bytes, a power of two >= 4096; 0: the default (4 MiB) */
	size_t max_tracked;	/* entries of `tracked`; 0: the default (65536) */
	size_t max_lost;	/* entries of `lost`; 0: the default (4096) */
};

/*
 * Callback for one record. The record is only valid during the call;
 * len is what the tracker sent (TRACK_EVENT_SIZE_NOPATH for all kinds but
 * TRACK_EXEC). A nonzero return stops track_poll() and is returned by it.
 */
typedef int (*track_event_fn)(void *data, const struct track_event *e, size_t len);

/*
 * Open and load the tracker for PIDs as seen from the caller's PID
 * namespace. The classic syscall tracepoints are found by their IDs in
 * /sys/kernel/tracing/events; when no tracefs is mounted there, a child
 * mounts one in a private mount namespace to read them (nothing is left
 * mounted). Nothing is attached yet. Returns NULL with errno set; logs why
 * (libbpf's messages go to our log, as warnings or debug lines).
 */
struct track *track_open(const struct track_opts *opts, track_event_fn fn, void *data);

/* Add a process (tgid) to the tracked set, or remove it. 0 or -errno. */
int track_add(struct track *t, pid_t tgid);
int track_del(struct track *t, pid_t tgid);

/* Attach every program. 0 or -errno (logged). */
int track_attach(struct track *t);

/*
 * An fd to poll for records (epoll-able). It becomes readable only once an
 * eighth of the ring is filled: the caller must also call track_poll() on
 * a timer (every 100 ms keeps the default ring far from full at 50,000
 * records per second).
 */
int track_fd(struct track *t);

/*
 * Consume every record waiting, calling fn for each, at most timeout_ms
 * (0: do not wait, -1: wait). Returns the number of records, or the
 * callback's nonzero value (the record it was called for counts as
 * consumed), or -errno (-EINTR on a signal); does not log.
 */
int track_poll(struct track *t, int timeout_ms);

struct track_stats {
	uint64_t events;	/* sums of the per-CPU counters */
	uint64_t drops;
	uint64_t tracked_full;
	uint64_t lost_unnamed;
};

int track_stats(struct track *t, struct track_stats *ret);

/*
 * Take the tgids noted in `lost` since the last call (removing them):
 * *ret is malloc'ed, *ret_n entries. 0 or -errno.
 */
int track_take_lost(struct track *t, pid_t **ret, size_t *ret_n);

/* Whether tgid is in the tracked set now. */
bool track_has(struct track *t, pid_t tgid);

/*
 * Every tgid in the in-kernel tracked set now (the roots added and the
 * processes they created since, less those gone): *ret is malloc'ed,
 * sorted, *ret_n entries (an empty set gives an allocation with none).
 * A process created or gone during the walk may be in it or not. 0 or
 * -errno; does not log.
 */
int track_list(struct track *t, pid_t **ret, size_t *ret_n);

/*
 * Detach every program (destroy its link and perf event) and wait for an
 * RCU grace period, so that when it returns no program runs any more and
 * every record one of them sent is in the ring. The maps and the ring stay:
 * track_poll(t, 0) drains what was sent (no wake-up of track_fd() need
 * announce it), track_stats(), track_take_lost() and track_list() read
 * what was counted.
 * The tracked set is frozen from then on: nobody adds forks or removes
 * exits. Idempotent (also before track_attach()); track_close() still
 * frees everything. Returns 0: a grace period that cannot be waited for
 * (membarrier(2) refused) is logged as a warning.
 */
int track_detach(struct track *t);

/* Detach and free everything: no program, map or link is left. NULL-safe. */
void track_close(struct track *t);

#endif
