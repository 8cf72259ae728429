// SPDX-License-Identifier: MIT
#define LOG_PREFIX "trackd: "
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "changelog.h"
#include "ctl.h"
#include "daemon.h"
#include "dirty.h"
#include "infect.h"
#include "log.h"
#include "proc.h"
#include "track.h"
#include "wptrack.h"

/*
 * The ring is drained and the stats looked at this often: the tracker
 * wakes us only when the ring is an eighth full (track.h).
 */
#define DAEMON_TICK_MS	100

/* Scratch mappings remembered per process before it counts as changed: daemon_maps_note(). */
#define DAEMON_SCRATCH_MAX	8

/* A kernel-placed mapping made since the last arming, by thread pid. */
struct dscratch {
	pid_t pid;
	uint64_t start, end;
};

/* A tracked process as trackd knows it. */
struct dproc {
	pid_t tgid;
	pid_t ppid;
	int uffd;		/* its written-page tracking, or -1 */
	/*
	 * Since it was last armed, a mapping it can have that is not
	 * registered yet may have come (or the log cannot say): the next mark
	 * looks for them (wptrack_arm_new). Else the mark skips it, which
	 * saves the page-table walk of reading its smaps.
	 */
	bool maps_changed;
	size_t nr_scratch;	/* mappings made since, not unmapped yet */
	struct dscratch scratch[DAEMON_SCRATCH_MAX];
	char why[96];		/* why it has none */
};

struct daemon {
	const struct daemon_opts *o;
	struct track *track;
	struct cl_writer *log;
	int ctl, sigfd, ep;
	struct dproc *procs;
	size_t nr_procs, cap_procs;
	/* tgid -> index + 1 into procs; linear probing, a power of two, never full. */
	uint32_t *index;
	size_t index_cap;
	uint64_t next_seq;	/* the seq the next record gets */
	uint64_t records;	/* written by this run */
	uint64_t lost;		/* records reported lost by this run */
	struct track_stats seen;
	int err;		/* writing the log failed: stop */
	bool stop;
	int stop_sk;		/* the `trackd stop` waiting for the log to be closed */
	int spare_fd;		/* given up to turn a client away when fds run out */
	uint8_t *batch;		/* records copied out of the ring, each (u32 len, record) */
	size_t batch_len, batch_cap;
	int ready_fd;		/* daemon_opts.ready_fd until used */
	char boot_id[64];
};

static uint64_t daemon_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static void daemon_untrack(struct daemon *d, struct dproc *p, const char *why)
{
	if (p->uffd >= 0)
		close(p->uffd);
	p->uffd = -1;
	snprintf(p->why, sizeof(p->why), "%s", why);
}

static size_t daemon_slot(const struct daemon *d, pid_t tgid)
{
	return ((uint32_t)tgid * 2654435761u) & (d->index_cap - 1);
}

/* The index slot of tgid, or of the empty slot where it would go. */
static size_t daemon_probe(const struct daemon *d, pid_t tgid)
{
	size_t i = daemon_slot(d, tgid);

	while (d->index[i] && d->procs[d->index[i] - 1].tgid != tgid)
		i = (i + 1) & (d->index_cap - 1);
	return i;
}

static struct dproc *daemon_find(struct daemon *d, pid_t tgid)
{
	size_t i;

	if (!d->index_cap)
		return NULL;
	i = daemon_probe(d, tgid);
	return d->index[i] ? &d->procs[d->index[i] - 1] : NULL;
}

/* Keep the index at most half full. */
static int daemon_index_grow(struct daemon *d)
{
	size_t cap = d->index_cap ? 2 * d->index_cap : 256;
	uint32_t *old = d->index;

	if (2 * (d->nr_procs + 1) <= d->index_cap)
		return 0;
	d->index = calloc(cap, sizeof(*d->index));
	if (!d->index) {
		d->index = old;
		return -ENOMEM;
	}
	d->index_cap = cap;
	for (size_t i = 0; i < d->nr_procs; i++)
		d->index[daemon_probe(d, d->procs[i].tgid)] = i + 1;
	free(old);
	return 0;
}

static struct dproc *daemon_add(struct daemon *d, pid_t tgid, pid_t ppid)
{
	struct dproc *p = daemon_find(d, tgid);

	if (p) {
		/* A PID used again after an exit the log lost: a new process, nothing of the old. */
		if (p->ppid != ppid) {
			daemon_untrack(d, p, "not armed yet");
			*p = (struct dproc){ .tgid = tgid, .ppid = ppid, .uffd = -1, .maps_changed = true };
			snprintf(p->why, sizeof(p->why), "not armed yet");
		}
		return p;
	}
	if (daemon_index_grow(d))
		return NULL;
	if (d->nr_procs == d->cap_procs) {
		size_t cap = d->cap_procs ? 2 * d->cap_procs : 64;
		struct dproc *n = realloc(d->procs, cap * sizeof(*n));
		if (!n)
			return NULL;
		d->procs = n;
		d->cap_procs = cap;
	}
	p = &d->procs[d->nr_procs++];
	*p = (struct dproc){ .tgid = tgid, .ppid = ppid, .uffd = -1, .maps_changed = true };
	snprintf(p->why, sizeof(p->why), "not armed yet");
	d->index[daemon_probe(d, tgid)] = d->nr_procs;
	return p;
}

static void daemon_remove(struct daemon *d, pid_t tgid)
{
	struct dproc *p = daemon_find(d, tgid);
	size_t i, j, pos;

	if (!p)
		return;
	daemon_untrack(d, p, "exited");
	pos = p - d->procs;
	/* Out of the index, moving up what probed past it (no tombstones). */
	i = daemon_probe(d, tgid);
	d->index[i] = 0;
	for (j = (i + 1) & (d->index_cap - 1); d->index[j]; j = (j + 1) & (d->index_cap - 1)) {
		size_t home = daemon_slot(d, d->procs[d->index[j] - 1].tgid);
		/* j's entry may move to i unless its home lies cyclically in (i, j]. */
		if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
			d->index[i] = d->index[j];
			d->index[j] = 0;
			i = j;
		}
	}
	/* The last entry fills the hole in procs. */
	if (pos != --d->nr_procs) {
		d->procs[pos] = d->procs[d->nr_procs];
		d->index[daemon_probe(d, d->procs[pos].tgid)] = pos + 1;
	}
}

/* Append a record; a failed write stops the daemon (the log is its point). */
static int64_t daemon_log(struct daemon *d, ChangelogEntry *e)
{
	int64_t seq;

	if (d->err)
		return d->err;
	if (!e->ts_ns)
		e->ts_ns = daemon_now();
	seq = cl_append(d->log, e);
	if (seq < 0) {
		d->err = seq;
		d->stop = true;
		return seq;
	}
	d->records++;
	d->next_seq = seq + 1;
	return seq;
}

static int64_t daemon_log_tgids(struct daemon *d, uint32_t kind, const char *reason,
				uint64_t count, bool has_count)
{
	ChangelogEntry e = CHANGELOG_ENTRY__INIT;
	int32_t *tgids = malloc((d->nr_procs + 1) * sizeof(*tgids));
	int64_t seq;

	if (!tgids)
		return -ENOMEM;
	for (size_t i = 0; i < d->nr_procs; i++)
		tgids[i] = d->procs[i].tgid;
	e.kind = kind;
	e.n_tgids = d->nr_procs;
	e.tgids = tgids;
	e.reason = (char *)reason;
	e.has_count = has_count;
	e.count = count;
	seq = daemon_log(d, &e);
	free(tgids);
	return seq;
}

/* Every tracked process may have mappings not registered yet (records lost, a resync). */
static void daemon_maps_unknown(struct daemon *d)
{
	for (size_t i = 0; i < d->nr_procs; i++)
		d->procs[i].maps_changed = true;
}

/* p's mappings are as it was armed now: nothing made since. */
static void daemon_maps_armed(struct dproc *p)
{
	p->maps_changed = false;
	p->nr_scratch = 0;
}

/*
 * Whether the next mark must look for mappings of p not registered yet.
 * A new VMA lacks the uffd registration (VM_UFFD_WP is no flag mmap,
 * brk or shmat gives, and vma_merge does not join VMAs whose uffd
 * contexts differ), and so does one moved without UFFD_FEATURE_EVENT_REMAP
 * (mremap_userfaultfd_prep clears it), while a split keeps the flags of
 * the VMA split. So every MMAP, MREMAP, BRK (the grown heap is a VMA of
 * its own when it cannot merge with the registered one), SHMAT and
 * IO_SETUP counts, and so does an MPROTECT: wptrack_arm leaves PROT_NONE
 * mappings out, which an mprotect makes eligible (malloc arenas grow that
 * way).
 *
 * One exception keeps dumps from flagging every process: a mapping the
 * kernel placed (no MAP_FIXED, so it replaced nothing), protected only
 * within itself and unmapped exactly, all by one thread, leaves nothing
 * behind; the dump's parasite area is such a pair. The same thread makes
 * the records come in the order of the calls; another thread's mapping
 * in that range in between has a record of its own.
 *
 * Not counted: MUNMAP and MADVISE, which create no VMA. One case is left:
 * pieces of a MAP_NORESERVE reservation over 1 GiB (left out by
 * wptrack_arm) that a split makes small enough to track (munmap, mlock,
 * mbind... the last two have no record anyway) stay unregistered until
 * the next change, and count as written meanwhile, as any unregistered
 * mapping does: the dump stays right.
 */
static void daemon_maps_note(struct daemon *d, const struct track_event *ev)
{
	struct dproc *p = daemon_find(d, ev->tgid);
	uint64_t s = ev->start, e = ev->start + ev->len;

	if (!p || p->maps_changed)
		return;
	switch (ev->kind) {
	case TRACK_MMAP:
		if ((ev->flags & MAP_FIXED) || p->nr_scratch == DAEMON_SCRATCH_MAX || e <= s)
			break;
		p->scratch[p->nr_scratch++] = (struct dscratch){ ev->pid, s, e };
		return;
	case TRACK_MPROTECT:
		for (size_t i = 0; i < p->nr_scratch; i++)
			if (p->scratch[i].pid == ev->pid && p->scratch[i].start <= s &&
			    e <= p->scratch[i].end)
				return;
		break;
	case TRACK_MUNMAP:
		for (size_t i = 0; i < p->nr_scratch; i++) {
			if (p->scratch[i].pid == ev->pid && p->scratch[i].start == s &&
			    p->scratch[i].end == e) {
				p->scratch[i] = p->scratch[--p->nr_scratch];
				break;
			}
		}
		return;
	case TRACK_MREMAP:
	case TRACK_BRK:
	case TRACK_SHMAT:
	case TRACK_IO_SETUP:
		break;
	default:
		return;
	}
	p->maps_changed = true;
}

/* The record of one BPF event, with the fields its kind has (bpf/track.h). */
static void daemon_record(struct daemon *d, const struct track_event *ev, size_t len)
{
	ChangelogEntry e = CHANGELOG_ENTRY__INIT;
	char path[TRACK_PATH_MAX + 1];

	if (len < TRACK_EVENT_SIZE_NOPATH || !ev->kind || ev->kind >= TRACK_NR_KINDS) {
		pr_warn("a tracker record of %zu bytes, kind %u, makes no sense, ignoring", len,
			ev->kind);
		return;
	}
	e.ts_ns = ev->ts;
	e.kind = ev->kind;
	e.has_pid = e.has_tgid = e.has_ppid = true;
	e.pid = ev->pid;
	e.tgid = ev->tgid;
	e.ppid = ev->ppid;

	switch (ev->kind) {
	case TRACK_FORK:
		e.has_flags = e.has_arg0 = e.has_arg1 = true;
		e.flags = ev->flags;
		e.arg0 = ev->arg0;
		e.arg1 = ev->arg1;	/* 1: not followed (the kernel's map was full) */
		if (ev->pid == ev->tgid && !ev->arg1 && !daemon_add(d, ev->tgid, ev->ppid)) {
			d->err = -ENOMEM;
			d->stop = true;
		}
		break;
	case TRACK_EXIT:
		e.has_arg0 = e.has_arg1 = true;
		e.arg0 = ev->arg0;
		e.arg1 = ev->arg1;
		break;
	case TRACK_EXEC: {
		size_t n = len > TRACK_EVENT_SIZE_NOPATH ? len - TRACK_EVENT_SIZE_NOPATH : 0;
		if (n > TRACK_PATH_MAX)
			n = TRACK_PATH_MAX;
		memcpy(path, ev->path, n);
		path[n] = 0;
		e.path = path;
		e.has_arg0 = true;
		e.arg0 = ev->arg0;
		struct dproc *p = daemon_find(d, ev->tgid);
		if (p)
			daemon_untrack(d, p, "exec replaced its address space");
		break;
	}
	case TRACK_MREMAP:
		e.has_old_start = e.has_old_len = true;
		e.old_start = ev->old_start;
		e.old_len = ev->old_len;
		/* fallthrough */
	case TRACK_MMAP:
	case TRACK_SHMAT:
	case TRACK_IO_SETUP:
		e.has_dev = e.has_ino = e.has_pgoff = true;
		e.dev = ev->dev;
		e.ino = ev->ino;
		e.pgoff = ev->pgoff;
		/* fallthrough */
	case TRACK_MUNMAP:
	case TRACK_MPROTECT:
	case TRACK_BRK:
	case TRACK_MADVISE:
	case TRACK_SHMDT:
	case TRACK_IO_DESTROY:
		e.has_start = e.has_len = true;
		e.start = ev->start;
		e.len = ev->len;
		if (ev->kind == TRACK_MMAP || ev->kind == TRACK_MPROTECT) {
			e.has_prot = true;
			e.prot = ev->prot;
		}
		if (ev->kind == TRACK_MMAP || ev->kind == TRACK_MREMAP || ev->kind == TRACK_SHMAT) {
			e.has_flags = true;
			e.flags = ev->flags;
		}
		if (ev->kind == TRACK_MADVISE || ev->kind == TRACK_SHMAT ||
		    ev->kind == TRACK_IO_SETUP) {
			e.has_arg0 = true;
			e.arg0 = ev->arg0;
		}
		break;
	case TRACK_SETSID:
		e.has_arg0 = true;
		e.arg0 = ev->arg0;
		break;
	case TRACK_SETPGID:
		e.has_arg0 = e.has_arg1 = true;
		e.arg0 = ev->arg0;
		e.arg1 = ev->arg1;
		break;
	}
	daemon_log(d, &e);
	daemon_maps_note(d, ev);
	/* After its record: the last exit of a group takes the process out. */
	if (ev->kind == TRACK_EXIT && ev->arg1)
		daemon_remove(d, ev->tgid);
}

/*
 * The ring-buffer callback only copies the record out, so the ring's room
 * is given back at once; daemon_drain() logs the batch afterwards.
 */
static int daemon_on_event(void *data, const struct track_event *ev, size_t len)
{
	struct daemon *d = data;
	size_t need = sizeof(uint32_t) + len;

	if (len > sizeof(*ev))
		len = sizeof(*ev);
	if (d->batch_len + need > d->batch_cap) {
		size_t cap = d->batch_cap ? 2 * d->batch_cap : 1 << 16;
		while (cap < d->batch_len + need)
			cap *= 2;
		uint8_t *n = realloc(d->batch, cap);
		if (!n)
			return -ENOMEM;
		d->batch = n;
		d->batch_cap = cap;
	}
	uint32_t l = len;
	memcpy(d->batch + d->batch_len, &l, sizeof(l));
	memcpy(d->batch + d->batch_len + sizeof(l), ev, len);
	d->batch_len += sizeof(l) + len;
	return 0;
}

/* Everything the tracker sent so far into the log, then the loss check. Returns 0 or -errno. */
static void daemon_check_lost(struct daemon *d);
static int daemon_drain(struct daemon *d)
{
	int err = track_poll(d->track, 0);

	for (size_t off = 0; off < d->batch_len;) {
		struct track_event ev;
		uint32_t l;

		memcpy(&l, d->batch + off, sizeof(l));
		memset(&ev, 0, sizeof(ev));
		memcpy(&ev, d->batch + off + sizeof(l), l);
		daemon_record(d, &ev, l);
		off += sizeof(l) + l;
	}
	d->batch_len = 0;
	daemon_check_lost(d);
	return err < 0 && err != -EINTR ? err : 0;
}

static int daemon_pid_cmp(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * After lost records our list may miss forks and keep exited processes:
 * the kernel's map of tracked processes is the truth. A process found
 * there gets its parent from /proc (0 if gone meanwhile).
 */
static void daemon_resync(struct daemon *d)
{
	pid_t *live;
	size_t n;

	if (track_list(d->track, &live, &n))
		return;
	/* track_list is sorted: drop what it lacks, from the end (removal moves the last). */
	for (size_t i = d->nr_procs; i-- > 0;) {
		pid_t tgid = d->procs[i].tgid;
		if (!bsearch(&tgid, live, n, sizeof(*live), daemon_pid_cmp))
			daemon_remove(d, tgid);
	}
	for (size_t i = 0; i < n; i++) {
		struct proc_stat st;
		if (daemon_find(d, live[i]))
			continue;
		if (!daemon_add(d, live[i], proc_parse_stat(live[i], &st) ? 0 : st.ppid))
			break;
	}
	free(live);
}

/* Drops counted by the tracker since the last look become a LOST record. */
static void daemon_check_lost(struct daemon *d)
{
	struct track_stats st;
	pid_t *tgids = NULL;
	size_t n = 0;

	if (track_stats(d->track, &st))
		return;
	if (st.drops == d->seen.drops && st.tracked_full == d->seen.tracked_full)
		return;
	/* Without the names (none to be had), every process counts as affected. */
	int unnamed = track_take_lost(d->track, &tgids, &n);
	ChangelogEntry e = CHANGELOG_ENTRY__INIT;
	int32_t *list = NULL;
	uint64_t count = st.drops - d->seen.drops;
	bool all = st.lost_unnamed != d->seen.lost_unnamed || st.tracked_full != d->seen.tracked_full ||
		   unnamed;

	e.kind = CL_LOST;
	e.has_count = true;
	e.count = count;
	if (st.tracked_full != d->seen.tracked_full)
		e.reason = "a new process could not be tracked: the tracked-process map is full";
	else if (all)
		e.reason = "the event ring was full; too many tasks lost records to name them";
	else
		e.reason = "the event ring was full";
	if (!all && n) {
		list = malloc(n * sizeof(*list));
		if (!list) {
			all = true;
			e.reason = "the event ring was full; too many tasks lost records to name them";
		}
		for (size_t i = 0; list && i < n; i++)
			list[i] = tgids[i];
		e.n_tgids = list ? n : 0;
		e.tgids = list;
	}
	daemon_log(d, &e);
	pr_warn("%llu records lost (%s)", (unsigned long long)count, e.reason);
	/* Lost records may have made mappings, of the processes named or not: look at all. */
	daemon_maps_unknown(d);
	daemon_resync(d);
	d->lost += count;
	d->seen = st;
	free(list);
	free(tgids);
}

/* An ARMED record: tgid's runs are under write tracking from here. */
static void daemon_log_armed(struct daemon *d, pid_t tgid, const struct dirty_run *runs, size_t n)
{
	ChangelogEntry e = CHANGELOG_ENTRY__INIT;
	uint64_t *r = malloc((2 * n + 1) * sizeof(*r));

	if (!r) {
		d->err = -ENOMEM;
		d->stop = true;
		return;
	}
	for (size_t i = 0; i < n; i++) {
		r[2 * i] = runs[i].start;
		r[2 * i + 1] = runs[i].end;
	}
	e.kind = CL_ARMED;
	e.has_tgid = e.has_pid = true;
	e.tgid = e.pid = tgid;
	e.n_ranges = 2 * n;
	e.ranges = r;
	daemon_log(d, &e);
	free(r);
}

/*
 * The process's uffd, taken by a short-lived child of ours: ptrace ties a
 * tracee to its tracer until that one detaches or exits, and a seize that
 * times out (a thread entering uninterruptible sleep just then) cannot be
 * undone at once. The child's exit undoes it in every case, so trackd
 * itself never keeps a process traced. Returns the fd or -errno.
 */
static int daemon_take_uffd(pid_t pid)
{
	char msg[32];
	int sv[2], fd = -1, err;
	struct pollfd pfd;
	pid_t child;
	long n;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
		return -errno;
	child = fork();
	if (child < 0) {
		err = -errno;
		close(sv[0]);
		close(sv[1]);
		return err;
	}
	if (!child) {
		close(sv[0]);
		fd = wptrack_open(pid);
		n = snprintf(msg, sizeof(msg), "%d", fd < 0 ? fd : 0);
		(void)ctl_send(sv[1], msg, n, fd);
		_exit(0);
	}
	close(sv[1]);
	/* wptrack_open gives up on a seize after 10 s. */
	pfd = (struct pollfd){ .fd = sv[0], .events = POLLIN };
	if (poll(&pfd, 1, 15000) != 1) {
		kill(child, SIGKILL);
		err = -ETIMEDOUT;
	} else {
		n = ctl_recv(sv[0], msg, sizeof(msg), &fd);
		err = n <= 0 ? -EIO : (int)strtol(msg, NULL, 10);
		if (!err && fd < 0)
			err = -EIO;
		if (err && fd >= 0) {
			close(fd);
			fd = -1;
		}
	}
	close(sv[0]);
	while (waitpid(child, NULL, 0) < 0 && errno == EINTR)
		;
	return err ? err : fd;
}

/*
 * Arm p with uffd, a userfaultfd of its mm that becomes p's, or log why it
 * has none when uffd is -errno: ARMED or UNARMED says how it went. 0 or
 * -errno (the reason is in p->why).
 */
/* p has no written-page tracking, for why: an UNARMED record, and a warning unless expected. */
static void daemon_unarmed(struct daemon *d, struct dproc *p, const char *why, bool expected)
{
	ChangelogEntry e = CHANGELOG_ENTRY__INIT;

	daemon_untrack(d, p, why);
	e.has_tgid = e.has_pid = true;
	e.tgid = e.pid = p->tgid;
	e.kind = CL_UNARMED;
	e.reason = p->why;
	daemon_log(d, &e);
	if (expected)
		pr_info("%d has no written-page tracking yet (%s)", p->tgid, p->why);
	else
		pr_warn("%d has no written-page tracking (%s): its memory counts as written",
			p->tgid, p->why);
}

static int daemon_arm_uffd(struct daemon *d, struct dproc *p, int uffd)
{
	struct dirty_run *runs = NULL;
	size_t n = 0;
	int err = uffd;

	if (uffd < 0)
		goto fail;
	err = wptrack_arm(p->tgid, uffd, &runs, &n);
	if (err) {
		close(uffd);
		goto fail;
	}
	daemon_untrack(d, p, "");
	p->uffd = uffd;
	daemon_maps_armed(p);
	daemon_log_armed(d, p->tgid, runs, n);
	pr_info("%d: %zu ranges, %llu KiB under written-page tracking", p->tgid, n,
		(unsigned long long)dirty_bytes(runs, n) >> 10);
	free(runs);
	return 0;
fail:
	daemon_unarmed(d, p, strerror(-err), false);
	return err;
}

/*
 * Set up written-page tracking of one process. One that someone else traces
 * (a dump holding it seized) costs no time: its PTRACE_SEIZE fails with
 * EPERM at once (ptrace_attach, "already traced"), and the dump hands its
 * uffd over with "adopt".
 */
static void daemon_arm(struct daemon *d, struct dproc *p)
{
	struct proc_status st;

	/*
	 * Someone holds it under ptrace: a dump, most likely, which hands its
	 * tracking over with `adopt` next. A seize would only fail.
	 */
	if (!proc_parse_status(p->tgid, &st) && st.tracer) {
		char why[64];
		snprintf(why, sizeof(why), "held under ptrace by %d", st.tracer);
		daemon_unarmed(d, p, why, true);
		return;
	}
	(void)daemon_arm_uffd(d, p, daemon_take_uffd(p->tgid));
}

/*
 * "adopt TGID" with fd attached: the uffd of an unarmed process, created by a
 * dump that holds it seized (wptrack_take_seized()) while our own seize
 * cannot. fd is taken in every case. 0, or -errno with why filled in.
 */
static int daemon_adopt(struct daemon *d, const char *arg, int fd, char *why, size_t len)
{
	struct dproc *p = NULL;
	int err = -EINVAL;
	char *end;
	long tgid;

	errno = 0;
	tgid = strtol(arg, &end, 10);
	if (end == arg || *end || errno || tgid <= 0 || tgid > INT32_MAX)
		snprintf(why, len, "bad process '%s'", arg);
	else if (fd < 0)
		snprintf(why, len, "adopt needs a userfaultfd attached");
	else if (d->o->no_dirty)
		snprintf(why, len, "written-page tracking is off");
	else if (!(p = daemon_find(d, tgid)))
		snprintf(why, len, "%ld is not tracked", tgid);
	else if (p->uffd >= 0)
		snprintf(why, len, "%ld has written-page tracking already", tgid);
	else {
		err = daemon_arm_uffd(d, p, fd);
		if (err)
			snprintf(why, len, "cannot arm %ld: %s", tgid, p->why);
		return err;
	}
	if (fd >= 0)
		close(fd);
	return err;
}

/*
 * At a checkpoint: processes with no tracking (new ones, after exec) get
 * it, and armed ones get their mappings created or moved since registered.
 * Until this point those counted as entirely written (the log says why).
 */
static void daemon_arm_all(struct daemon *d)
{
	pid_t *tgids;
	size_t n;

	if (d->o->no_dirty || !d->nr_procs)
		return;
	/* A snapshot: records drained meanwhile add and remove processes. */
	n = d->nr_procs;
	tgids = malloc(n * sizeof(*tgids));
	if (!tgids)
		return;
	for (size_t i = 0; i < n; i++)
		tgids[i] = d->procs[i].tgid;
	for (size_t i = 0; i < n && !d->err; i++) {
		struct dirty_run *runs = NULL;
		struct dproc *p;
		size_t nr = 0;

		/* Seizing takes a while: keep the ring drained between processes. */
		(void)daemon_drain(d);
		p = daemon_find(d, tgids[i]);
		if (!p)
			continue;
		if (p->uffd < 0) {
			daemon_arm(d, p);
			continue;
		}
		/* No mapping made or moved since it was armed: nothing to look for. */
		if (!p->maps_changed && !p->nr_scratch)
			continue;
		/*
		 * No drain between the mappings read and this, so a record of a
		 * change after the read comes later and flags p again.
		 */
		if (wptrack_arm_new(p->tgid, p->uffd, &runs, &nr)) {
			pr_warn("%d: new mappings are not under written-page tracking, ignoring",
				p->tgid);
			continue;
		}
		daemon_maps_armed(p);
		if (nr)
			daemon_log_armed(d, p->tgid, runs, nr);
		free(runs);
	}
	free(tgids);
}

static pid_t daemon_tgid_of(pid_t pid)
{
	struct proc_status st;

	if (proc_parse_status(pid, &st))
		return -ESRCH;
	return st.tgid > 0 ? st.tgid : -EINVAL;
}

/* A whole /proc file, however long: malloc'ed and NUL-terminated, or NULL. */
static char *daemon_read_all(const char *path)
{
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap);
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || !buf)
		goto fail;
	for (;;) {
		if (len + 1 == cap) {
			char *n = realloc(buf, 2 * cap);
			if (!n)
				goto fail;
			buf = n;
			cap *= 2;
		}
		ssize_t r = read(fd, buf + len, cap - 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			goto fail;
		if (!r)
			break;
		len += r;
	}
	close(fd);
	buf[len] = 0;
	return buf;
fail:
	if (fd >= 0)
		close(fd);
	free(buf);
	return NULL;
}

/* Children of every thread of tgid, from /proc/TGID/task/TID/children. */
static int daemon_children(pid_t tgid, pid_t **ret, size_t *ret_n)
{
	char path[300];
	pid_t *list = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *dir;

	snprintf(path, sizeof(path), "/proc/%d/task", tgid);
	dir = opendir(path);
	if (!dir)
		return -errno;
	while ((de = readdir(dir))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/children", tgid, de->d_name);
		char *buf = daemon_read_all(path);
		if (!buf)
			continue;
		for (char *s = buf, *end; *s; s = end) {
			long v = strtol(s, &end, 10);
			if (end == s)
				break;
			if (n == cap) {
				cap = cap ? 2 * cap : 16;
				pid_t *nl = realloc(list, cap * sizeof(*nl));
				if (!nl) {
					free(buf);
					free(list);
					closedir(dir);
					return -ENOMEM;
				}
				list = nl;
			}
			list[n++] = v;
		}
		free(buf);
	}
	closedir(dir);
	*ret = list;
	*ret_n = n;
	return 0;
}

/*
 * Whether tgid still runs. A zombie, or a process gone between the listing
 * and track_add(), had its exit before it was tracked: nothing would ever
 * take its PID out of the kernel's map again.
 */
static bool daemon_alive(pid_t tgid)
{
	struct proc_stat st;

	return !proc_parse_stat(tgid, &st) && st.state != 'Z' && st.state != 'X';
}

static bool daemon_is_root(const struct daemon_opts *o, pid_t pid)
{
	for (size_t i = 0; i < o->nr_roots; i++)
		if (o->roots[i] == pid)
			return true;
	return false;
}

int daemon_check_roots(const struct daemon_opts *o)
{
	char self[32] = "";

	/*
	 * PIDs come from /proc and the tracker reports them in trackd's own
	 * PID namespace: the two must be the same one.
	 */
	if (readlink("/proc/self", self, sizeof(self) - 1) <= 0 || atoi(self) != getpid()) {
		pr_err("/proc belongs to another PID namespace than trackd's (it says %d is '%s'): "
		       "mount a /proc for trackd's namespace", getpid(), self);
		return -EINVAL;
	}
	for (size_t i = 0; i < o->nr_roots; i++) {
		pid_t tgid = daemon_tgid_of(o->roots[i]);
		if (tgid < 0) {
			pr_err("no process %d to track", o->roots[i]);
			return -ESRCH;
		}
		if (tgid != o->roots[i]) {
			pr_err("%d is a thread of %d: give the process", o->roots[i], tgid);
			return -EINVAL;
		}
		if (!daemon_alive(tgid)) {
			pr_err("process %d is a zombie: nothing to track", tgid);
			return -ESRCH;
		}
		if (tgid == getpid()) {
			pr_err("trackd cannot track itself");
			return -EINVAL;
		}
		for (size_t j = 0; j < i; j++) {
			if (o->roots[j] == tgid) {
				pr_err("root %d is given twice", tgid);
				return -EINVAL;
			}
		}
	}
	return 0;
}

/*
 * The roots and every descendant: tracked in the kernel first, so nothing
 * forked from here on is missed, then recorded as ATTACH in tree order.
 */
static int daemon_attach_trees(struct daemon *d)
{
	const struct daemon_opts *o = d->o;
	int err;

	for (size_t i = 0; i < o->nr_roots; i++) {
		pid_t tgid = o->roots[i];
		err = track_add(d->track, tgid);
		if (err) {
			pr_errno(err, "cannot track %d", tgid);
			return err;
		}
	}
	err = track_attach(d->track);
	if (err)
		return err;

	/* Breadth first from the roots; d->procs grows as the queue. */
	for (size_t i = 0; i < o->nr_roots; i++) {
		struct proc_stat st;
		if (proc_parse_stat(o->roots[i], &st)) {
			pr_err("process %d is gone", o->roots[i]);
			return -ESRCH;
		}
		if (daemon_find(d, o->roots[i])) {
			pr_err("root %d is a descendant of another root", o->roots[i]);
			return -EINVAL;
		}
		if (!daemon_add(d, o->roots[i], st.ppid))
			return -ENOMEM;
		for (size_t q = d->nr_procs - 1; q < d->nr_procs; q++) {
			pid_t *kids = NULL;
			size_t nk = 0;
			if (daemon_children(d->procs[q].tgid, &kids, &nk))
				continue;	/* it exited meanwhile: its EXIT record comes */
			for (size_t k = 0; k < nk; k++) {
				if (daemon_is_root(o, kids[k])) {
					pr_err("root %d is a descendant of root %d", kids[k],
					       o->roots[i]);
					free(kids);
					return -EINVAL;
				}
				if (kids[k] == getpid()) {
					pr_err("trackd itself is in the tree of root %d: run it outside",
					       o->roots[i]);
					free(kids);
					return -EINVAL;
				}
				if (daemon_find(d, kids[k]))
					continue;
				err = track_add(d->track, kids[k]);
				if (!err && !daemon_alive(kids[k])) {
					(void)track_del(d->track, kids[k]);
					continue;
				}
				if (err || !daemon_add(d, kids[k], d->procs[q].tgid)) {
					free(kids);
					pr_errno(err ? err : -ENOMEM, "cannot track %d", kids[k]);
					return err ? err : -ENOMEM;
				}
			}
			free(kids);
		}
	}
	for (size_t i = 0; i < d->nr_procs; i++) {
		ChangelogEntry e = CHANGELOG_ENTRY__INIT;
		e.kind = CL_ATTACH;
		e.has_pid = e.has_tgid = e.has_ppid = true;
		e.pid = e.tgid = d->procs[i].tgid;
		e.ppid = d->procs[i].ppid;
		daemon_log(d, &e);
	}
	return d->err;
}

static int daemon_header(struct daemon *d, bool fresh, bool clean)
{
	ChangelogEntry e = CHANGELOG_ENTRY__INIT;
	struct timespec rt, mono;
	struct stat st;
	int32_t *roots;

	roots = malloc(d->o->nr_roots * sizeof(*roots));
	if (!roots)
		return -ENOMEM;
	for (size_t i = 0; i < d->o->nr_roots; i++)
		roots[i] = d->o->roots[i];
	clock_gettime(CLOCK_REALTIME, &rt);
	clock_gettime(CLOCK_MONOTONIC, &mono);
	e.kind = fresh ? CL_START : CL_GAP;
	e.ts_ns = mono.tv_sec * 1000000000ull + mono.tv_nsec;
	e.has_format = true;
	e.format = CHANGELOG_FORMAT;
	e.n_roots = d->o->nr_roots;
	e.roots = roots;
	e.boot_id = d->boot_id;
	e.has_realtime_ns = true;
	e.realtime_ns = rt.tv_sec * 1000000000ull + rt.tv_nsec;
	e.has_pidns_ino = !stat("/proc/self/ns/pid", &st);
	e.pidns_ino = st.st_ino;
	if (!fresh)
		e.reason = clean ? "trackd started again after a clean stop: changes meanwhile are unknown"
				 : "trackd did not stop cleanly: records may be missing";
	daemon_log(d, &e);
	free(roots);
	return d->err;
}

/* One control request. The answer is "ok\n..." or "error: ...". */
static void daemon_serve(struct daemon *d, int sk)
{
	char req[256], why[320], *out;
	size_t cap = CTL_MAX_MSG, len = 0;
	struct ucred cr;
	socklen_t crlen = sizeof(cr);
	int fd = -1, in_fd = -1;
	long n;

	if (getsockopt(sk, SOL_SOCKET, SO_PEERCRED, &cr, &crlen) ||
	    (cr.uid != 0 && cr.uid != geteuid())) {
		(void)ctl_send(sk, "error: not allowed\n", 19, -1);
		return;
	}
	n = ctl_recv(sk, req, sizeof(req), &in_fd);
	if (n == -EMSGSIZE)
		(void)ctl_send(sk, "error: request too long\n", 24, -1);
	if (n < 0)
		return;
	req[strcspn(req, "\n")] = 0;
	/* Only "adopt" takes an fd; any other (an empty message's too) is dropped here. */
	if (in_fd >= 0 && strncmp(req, "adopt ", 6)) {
		close(in_fd);
		in_fd = -1;
	}
	if (!n)
		return;
	out = malloc(cap);
	if (!out) {
		if (in_fd >= 0)
			close(in_fd);
		return;
	}
#define OUT(...)                                                                   \
	do {                                                                       \
		if (len < cap)                                                     \
			len += snprintf(out + len, cap - len, __VA_ARGS__);        \
		if (len > cap)                                                     \
			len = cap;                                                 \
	} while (0)

	if (!strcmp(req, "lost")) {
		/*
		 * A dump re-armed the write tracking and then failed: the pages
		 * it took are in no images, so every process counts as changed.
		 */
		ChangelogEntry e = CHANGELOG_ENTRY__INIT;
		e.kind = CL_LOST;
		e.has_count = true;
		e.reason = "a dump re-armed the written-page tracking and then failed";
		int64_t seq = daemon_log(d, &e);
		int err = d->err ? d->err : cl_flush(d->log, false);
		if (seq < 0 || err)
			OUT("error: cannot write the log: %s\n", strerror(-(seq < 0 ? seq : err)));
		else
			OUT("ok\n%lld\n", (long long)seq);
	} else if (!strcmp(req, "status")) {
		struct track_stats st = {};
		size_t armed = 0;
		bool cut = false;
		(void)track_stats(d->track, &st);
		OUT("ok\npid %d\nlogdir %s\nroots", getpid(), d->o->logdir);
		for (size_t i = 0; i < d->o->nr_roots; i++)
			OUT("%s%d", i ? "," : " ", d->o->roots[i]);
		OUT("\nseq %llu\nrecords %llu\nlog_bytes %llu\nevents %llu\nlost %llu\n"
		    "drops %llu\ntracked %zu",
		    (unsigned long long)d->next_seq - 1, (unsigned long long)d->records,
		    (unsigned long long)cl_size(d->log), (unsigned long long)st.events,
		    (unsigned long long)d->lost, (unsigned long long)st.drops, d->nr_procs);
		for (size_t i = 0; i < d->nr_procs; i++)
			armed += d->procs[i].uffd >= 0;
		/* Long lists are cut so the answer stays one message. */
		for (size_t i = 0; i < d->nr_procs; i++)
			if (len < cap / 4)
				OUT(" %d", d->procs[i].tgid);
			else if (i == d->nr_procs - 1)
				OUT(" ...");
		OUT("\narmed %zu", armed);
		for (size_t i = 0; i < d->nr_procs; i++)
			if (d->procs[i].uffd >= 0 && len < cap / 2)
				OUT(" %d", d->procs[i].tgid);
			else if (d->procs[i].uffd >= 0)
				cut = true;
		OUT("%s\n", cut ? " ..." : "");
		cut = false;
		for (size_t i = 0; i < d->nr_procs; i++)
			if (d->procs[i].uffd < 0 && len > cap - 256)
				cut = true;
			else if (d->procs[i].uffd < 0)
				OUT("unarmed %d %s\n", d->procs[i].tgid,
				    d->o->no_dirty ? "written-page tracking is off" : d->procs[i].why);
		if (cut)
			OUT("unarmed ...\n");
	} else if (!strcmp(req, "mark") || !strcmp(req, "mark offset")) {
		/* Everything the tracker sent before the mark comes before it. */
		(void)daemon_drain(d);
		/* `mark offset` (the dump's): where the MARK starts in the log too. */
		uint64_t at = cl_size(d->log);
		int64_t seq = daemon_log_tgids(d, CL_MARK, NULL, 0, false);
		daemon_arm_all(d);
		/* Written for the dump to read; not synced (a lost mark only fails a later delta, clearly). */
		int err = d->err ? d->err : cl_flush(d->log, false);
		if (seq < 0 || err)
			OUT("error: cannot write the log: %s\n", strerror(-(seq < 0 ? seq : err)));
		else if (req[4])
			OUT("ok\n%lld %llu\n", (long long)seq, (unsigned long long)at);
		else
			OUT("ok\n%lld\n", (long long)seq);
	} else if (!strcmp(req, "stop")) {
		/* Answered once the log is closed and the tracker is gone. */
		if (d->stop_sk < 0) {
			d->stop = true;
			d->stop_sk = sk;
			free(out);
			return;
		}
		OUT("error: already stopping\n");
	} else if (!strncmp(req, "uffd ", 5)) {
		pid_t tgid = strtol(req + 5, NULL, 10);
		struct dproc *p = daemon_find(d, tgid);
		if (!p)
			OUT("error: %d is not tracked\n", tgid);
		else if (p->uffd < 0)
			OUT("error: %d has no written-page tracking: %s\n", tgid, p->why);
		else {
			OUT("ok\n");
			fd = p->uffd;
		}
	} else if (!strncmp(req, "adopt ", 6)) {
		if (daemon_adopt(d, req + 6, in_fd, why, sizeof(why)))
			OUT("error: %s\n", why);
		else
			OUT("ok\n");
	} else {
		OUT("error: unknown request '%s'\n", req);
	}
#undef OUT
	(void)ctl_send(sk, out, len, fd);
	free(out);
}

/*
 * One client per turn of the loop, so the ring is drained between clients,
 * and a client that does not speak within 100 ms is dropped: a slow or
 * idle client costs the tracking little.
 */
static void daemon_accept(struct daemon *d)
{
	struct timeval tv = { 0, 100000 };
	int sk, buf = 1 << 20;

	sk = accept4(d->ctl, NULL, NULL, SOCK_CLOEXEC);
	if (sk < 0) {
		if (errno == EMFILE || errno == ENFILE) {
			/* Out of fds (one uffd per process): free the spare one to refuse the client. */
			if (d->spare_fd >= 0)
				close(d->spare_fd);
			sk = accept4(d->ctl, NULL, NULL, SOCK_CLOEXEC);
			if (sk >= 0)
				close(sk);
			d->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
			pr_warn("out of file descriptors: a control client was turned away");
		}
		return;
	}
	(void)setsockopt(sk, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(sk, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	/* A status answer may be large; one message must fit the send buffer. */
	if (setsockopt(sk, SOL_SOCKET, SO_SNDBUFFORCE, &buf, sizeof(buf)))
		(void)setsockopt(sk, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
	daemon_serve(d, sk);
	if (sk != d->stop_sk)
		close(sk);
}

static int daemon_signals(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, NULL))
		return -errno;
	return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

static int daemon_pidfile(const char *path)
{
	char buf[32];
	int fd, len;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		pr_perror("cannot create the pidfile '%s'", path);
		return -errno;
	}
	len = snprintf(buf, sizeof(buf), "%d\n", getpid());
	if (write(fd, buf, len) != len) {
		pr_perror("cannot write the pidfile '%s'", path);
		close(fd);
		return -EIO;
	}
	close(fd);
	return 0;
}

static void daemon_ready(struct daemon *d, const char *msg)
{
	if (d->ready_fd < 0)
		return;
	(void)!write(d->ready_fd, msg, strlen(msg));
	close(d->ready_fd);
	d->ready_fd = -1;
}

/* As many fds as the hard limit allows: one uffd per tracked process. */
static void daemon_raise_nofile(void)
{
	struct rlimit rl;

	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int daemon_run(const struct daemon_opts *o)
{
	struct daemon d = { .o = o, .ctl = -1, .sigfd = -1, .ep = -1, .stop_sk = -1 };

	d.spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	d.ready_fd = o->ready_fd;
	struct track_opts topts = { .ring_size = o->ring_size };
	bool clean = false, fresh;
	int err, ret = 1;

	if (daemon_check_roots(o))
		goto out;
	daemon_raise_nofile();
	if (proc_read_file(0, "../sys/kernel/random/boot_id", d.boot_id, sizeof(d.boot_id)) > 0)
		d.boot_id[strcspn(d.boot_id, "\n")] = 0;
	d.sigfd = daemon_signals();
	if (d.sigfd < 0) {
		pr_errno(d.sigfd, "cannot set up signal handling");
		goto out;
	}
	err = infect_init();
	if (err)
		goto out;
	d.log = cl_writer_open(o->dirfd, &d.next_seq, &clean);
	if (!d.log)
		goto out;
	fresh = d.next_seq == 1;
	d.track = track_open(&topts, daemon_on_event, &d);
	if (!d.track)
		goto out;
	if (daemon_header(&d, fresh, clean))
		goto out;
	err = daemon_attach_trees(&d);
	if (err)
		goto out_log;
	daemon_arm_all(&d);
	if (cl_flush(d.log, true))
		goto out;
	d.ctl = ctl_listen(o->dirfd);
	if (d.ctl < 0)
		goto out_log;
	if (o->pidfile && daemon_pidfile(o->pidfile))
		goto out_log;

	d.ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLIN };
	int fds[3] = { track_fd(d.track), d.ctl, d.sigfd };
	for (int i = 0; i < 3; i++) {
		ev.data.fd = fds[i];
		if (d.ep < 0 || epoll_ctl(d.ep, EPOLL_CTL_ADD, fds[i], &ev)) {
			pr_perror("cannot set up the event loop");
			goto out_log;
		}
	}
	pr_info("tracking %zu processes, log '%s/%s'", d.nr_procs, o->logdir, CHANGELOG_FILE);
	daemon_ready(&d, "0");

	while (!d.stop) {
		struct epoll_event evs[4];
		int n = epoll_wait(d.ep, evs, 4, DAEMON_TICK_MS);
		if (n < 0 && errno != EINTR) {
			d.err = -errno;
			pr_perror("epoll_wait");
			break;
		}
		err = daemon_drain(&d);
		if (err) {
			pr_errno(err, "cannot read the tracker's records");
			d.err = err;
			break;
		}
		for (int i = 0; i < n; i++) {
			if (evs[i].data.fd == d.ctl)
				daemon_accept(&d);
			else if (evs[i].data.fd == d.sigfd) {
				struct signalfd_siginfo si;
				if (read(d.sigfd, &si, sizeof(si)) == sizeof(si)) {
					pr_info("stopping on signal %u", si.ssi_signo);
					d.stop = true;
				}
			}
		}
		if (!d.err && cl_flush(d.log, false))
			break;
	}
	/*
	 * No program runs after the detach, so the drain below sees every
	 * record the tracker sent: whatever came before the stop is in the
	 * log, then STOP.
	 */
	(void)track_detach(d.track);
	(void)daemon_drain(&d);
	if (!d.err && daemon_log_tgids(&d, CL_STOP, NULL, 0, false) >= 0 &&
	    !cl_flush(d.log, true))
		ret = 0;
	goto out;

out_log:
	/* Attaching failed: the log says so and stays usable for the next start. */
	(void)daemon_log_tgids(&d, CL_STOP, "attaching failed", 0, false);
out:
	for (size_t i = 0; i < d.nr_procs; i++)
		daemon_untrack(&d, &d.procs[i], "");
	free(d.procs);
	free(d.index);
	free(d.batch);
	track_close(d.track);
	if (d.ctl >= 0) {
		close(d.ctl);
		(void)unlinkat(o->dirfd, CTL_SOCK, 0);
	}
	if (o->pidfile && d.ctl >= 0)
		(void)unlink(o->pidfile);
	if (cl_writer_close(d.log))
		ret = 1;
	if (o->lock_fd >= 0)
		close(o->lock_fd);
	if (ret)
		daemon_ready(&d, "1");
	if (d.stop_sk >= 0) {
		char msg[64];
		int len = ret ? snprintf(msg, sizeof(msg), "error: the log could not be closed\n")
			      : snprintf(msg, sizeof(msg), "ok\n%llu\n",
					 (unsigned long long)d.next_seq - 1);
		(void)ctl_send(d.stop_sk, msg, len, -1);
		close(d.stop_sk);
	}
	if (d.ep >= 0)
		close(d.ep);
	if (d.sigfd >= 0)
		close(d.sigfd);
	if (d.spare_fd >= 0)
		close(d.spare_fd);
	return ret;
}
