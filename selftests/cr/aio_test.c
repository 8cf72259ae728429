// SPDX-License-Identifier: MIT
/*
 * aio_test: native AIO contexts (io_setup) survive dump and restore; io_uring is refused.
 *
 *   aio_rings         three contexts in the root and two in a child (forked before any
 *                     io_setup: a child inherits its parent's ring mappings, not the
 *                     contexts), of different sizes, with completions waiting in the ring
 *                     (one ring wrapped around its end, one empty after use). After restore
 *                     each ring is at the same address with the same size and nr, its
 *                     header's head and tail as dumped, the first waiting event readable in
 *                     user space (as libaio does), io_getevents() returns exactly the waiting
 *                     completions in order with their data, obj, res and res2, and a new
 *                     io_submit() completes.
 *   aio_inherited_refused  a child forked after io_setup maps the parent's ring but has no
 *                     context: the dump fails naming the ring and the child; both go on.
 *   aio_loop          reads, writes (O_DIRECT where the file system takes it) and fsyncs
 *                     in a loop, 8 requests in flight at any time, also while dumped; after
 *                     restore every completion (the waiting ones and new ones) is checked
 *                     against its request, then the loop drains and the file is compared.
 *   aio_poll_refused  an IOCB_CMD_POLL (POLLIN) on an empty pipe is in flight at dump time:
 *                     the dump waits its 5 s for it, then fails naming the context and the
 *                     number in flight; the victim goes on, and once it writes to the pipe
 *                     itself the poll completes.
 *   aio_poll_late     an IOCB_CMD_POLL on an empty pipe is in flight when the dump starts; a
 *                     helper outside the tree (it must run while the tree is frozen) writes
 *                     to the pipe 300 ms after it saw the victim seized. The dump waits for
 *                     the completion and succeeds; after restore io_getevents returns it with
 *                     its data, obj and POLLIN, and the pipe holds the helper's bytes.
 *   io_uring_refused  an io_uring instance with its rings mapped: the dump fails naming the
 *                     io_uring ring and the task; after it the instance still completes a read.
 *
 * Ring size and CPU count: io_setup(n) makes 2 * max(n, 4 * possible CPUs) + 2 slots,
 * rounded up to pages, so the same call gives other rings on hosts with other CPU counts.
 * num_possible_cpus() is fixed at boot (CPU affinity, cpusets and hotplug do not change
 * it), so a test cannot make this host count differently. What is simulated instead:
 * restore never repeats the program's request, it asks for what gives the dumped ring,
 * so rings whose size came from other requests (1, raised to this host's minimum; 128;
 * 1000) must come back with the same size and nr. A dumped ring smaller than this host's
 * minimum (dumped on fewer CPUs) is refused before any task is created (restore_mm.c).
 *
 * Completions are waited for with a timeout (io_getevents, io_uring_enter with
 * IORING_ENTER_GETEVENTS on a read of a regular file, which completes at once).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <linux/io_uring.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cr.h"

CR_FIXTURE_LR(aio);

static int data_file(const char *name, const char *text)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", cr_victim_dir, name);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	CR_SETUP(fd >= 0, "create '%s'", path);
	CR_SETUP(write(fd, text, strlen(text)) == (ssize_t)strlen(text), "write '%s'", path);
	return fd;
}

/* Submit a pread of len bytes at 0 of fd into buf, tagged with data. */
static int aio_read(aio_context_t ctx, int fd, char *buf, size_t len, uint64_t data)
{
	struct iocb cb = { .aio_data = data, .aio_lio_opcode = IOCB_CMD_PREAD, .aio_fildes = fd,
			   .aio_buf = (uint64_t)buf, .aio_nbytes = len };
	struct iocb *cbs[1] = { &cb };

	return syscall(SYS_io_submit, ctx, 1, cbs);
}

static int aio_wait(aio_context_t ctx, struct io_event *ev)
{
	struct timespec ts = { 5, 0 };

	return syscall(SYS_io_getevents, ctx, 1, 1, ev, &ts);
}

#define TEXT "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ+-"
#define MAX_WAIT 16
#define WAIT_MS 5000

/* The kernel's ring header (fs/aio.c struct aio_ring), then nr io_events. */
struct ring_hdr {
	uint32_t id, nr, head, tail, magic, compat, incompat, header_length;
};

/* One context and the reads whose completions wait in its ring. */
struct ctx_state {
	aio_context_t id;
	unsigned req, consumed, waiting, seed;
	uint32_t nr, head, tail;
	size_t len;
	struct iocb cbs[MAX_WAIT];
	char bufs[MAX_WAIT][80];
};

/* Size of the mapping at addr, from /proc/self/maps; 0 if none starts there. */
static size_t mapping_len(uint64_t addr)
{
	static char maps[1 << 16];
	char *l = maps;

	if (cr_read_file("/proc/self/maps", maps, sizeof(maps)) < 0)
		return 0;
	while (*l) {
		unsigned long long s, e;
		if (sscanf(l, "%llx-%llx", &s, &e) == 2 && s == addr && strstr(l, "/[aio]"))
			return e - s;
		l += strcspn(l, "\n");
		l += *l == '\n';
	}
	return 0;
}

/*
 * io_setup(req), then `consumed` reads completed and taken, then `waiting` reads of
 * k + 1 bytes at offset k left in the ring, tagged seed << 16 | k.
 */
static void ctx_setup(struct ctx_state *c, int fd)
{
	struct io_event ev;

	CR_SETUP(c->waiting <= MAX_WAIT, "%u waiting", c->waiting);
	CR_SETUP(!syscall(SYS_io_setup, c->req, &c->id), "io_setup(%u)", c->req);
	for (unsigned i = 0; i < c->consumed; i++) {
		CR_SETUP(aio_read(c->id, fd, c->bufs[0], 1, 0) == 1, "io_submit");
		CR_SETUP(aio_wait(c->id, &ev) == 1, "io_getevents");
	}
	for (unsigned k = 0; k < c->waiting; k++) {
		struct iocb *cbp = &c->cbs[k];
		c->cbs[k] = (struct iocb){ .aio_data = (uint64_t)c->seed << 16 | k,
					   .aio_lio_opcode = IOCB_CMD_PREAD, .aio_fildes = fd,
					   .aio_buf = (uint64_t)c->bufs[k], .aio_nbytes = k + 1,
					   .aio_offset = k };
		CR_SETUP(syscall(SYS_io_submit, c->id, 1, &cbp) == 1, "io_submit");
	}
	struct ring_hdr *h = (struct ring_hdr *)c->id;
	c->nr = h->nr;
	c->head = h->head;
	c->tail = h->tail;
	c->len = mapping_len(c->id);
	CR_SETUP(c->len && c->tail == (c->head + c->waiting) % c->nr, "ring %#llx: len %zu head %u tail %u",
		 (unsigned long long)c->id, c->len, c->head, c->tail);
}

static void ctx_check(struct ctx_state *c, int fd)
{
	struct ring_hdr *h = (struct ring_hdr *)c->id;
	struct io_event ev[MAX_WAIT + 1], *slots = (struct io_event *)(h + 1);
	struct timespec ts = { WAIT_MS / 1000, 0 };
	size_t len = mapping_len(c->id);
	long n;

	CR_CHECK(len == c->len, "ring %#llx: mapping of %zu bytes, was %zu", (unsigned long long)c->id,
		 len, c->len);
	if (len != c->len)
		return;
	CR_CHECK(h->nr == c->nr && h->head == c->head && h->tail == c->tail,
		 "ring %#llx: nr %u head %u tail %u, was %u %u %u", (unsigned long long)c->id, h->nr,
		 h->head, h->tail, c->nr, c->head, c->tail);
	/* A reader in user space (libaio) takes the event at head itself. */
	if (c->waiting)
		CR_CHECK(slots[h->head % h->nr].data == (uint64_t)c->seed << 16,
			 "ring %#llx: slot %u holds data %#llx", (unsigned long long)c->id, h->head,
			 (unsigned long long)slots[h->head % h->nr].data);
	memset(c->bufs, 0, sizeof(c->bufs));
	n = c->waiting ? syscall(SYS_io_getevents, c->id, c->waiting, MAX_WAIT + 1, ev, &ts) : 0;
	CR_CHECK(n == (long)c->waiting, "ring %#llx: io_getevents gave %ld of %u: %s",
		 (unsigned long long)c->id, n, c->waiting, strerror(errno));
	for (long k = 0; k < n && k < (long)c->waiting; k++)
		CR_CHECK(ev[k].data == ((uint64_t)c->seed << 16 | k) && ev[k].obj == (uint64_t)&c->cbs[k] &&
			 ev[k].res == k + 1 && ev[k].res2 == 0,
			 "ring %#llx event %ld: data %#llx obj %#llx res %lld res2 %lld",
			 (unsigned long long)c->id, k, (unsigned long long)ev[k].data,
			 (unsigned long long)ev[k].obj, (long long)ev[k].res, (long long)ev[k].res2);
	/* The contents were read before the dump: the buffers were cleared above on purpose. */
	CR_CHECK(h->head == h->tail, "ring %#llx: head %u tail %u after reading all",
		 (unsigned long long)c->id, h->head, h->tail);
	CR_CHECK(aio_read(c->id, fd, c->bufs[0], 5, 0x77) == 1, "ring %#llx: io_submit: %s",
		 (unsigned long long)c->id, strerror(errno));
	CR_CHECK(aio_wait(c->id, ev) == 1 && ev[0].data == 0x77 && ev[0].res == 5 &&
		 !memcmp(c->bufs[0], TEXT, 5), "ring %#llx: new read gave res %lld",
		 (unsigned long long)c->id, (long long)ev[0].res);
	/* io_destroy finds the context by the ring's id field, at the ring's address. */
	CR_CHECK(!syscall(SYS_io_destroy, c->id) && !mapping_len(c->id), "ring %#llx: io_destroy: %s",
		 (unsigned long long)c->id, strerror(errno));
}

/* Waits (bounded) until fd is readable; 1 if it is. */
static int wait_fd(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, ms) == 1;
}

static struct ctx_state root_ctx[3] = {
	/* Ring of 127 on 2 CPUs: 120 taken, 10 waiting wrap around its end. */
	{ .req = 1, .consumed = 120, .waiting = 10, .seed = 0xa },
	{ .req = 128, .waiting = 3, .seed = 0xb },
	{ .req = 1000, .consumed = 5, .seed = 0xc },
};
static struct ctx_state child_ctx[2] = {
	{ .req = 8, .waiting = 2, .seed = 0xd },
	{ .req = 300, .consumed = 1, .waiting = 4, .seed = 0xe },
};

static int victim_rings(void *arg)
{
	int fd = data_file("aio.dat", TEXT), ready[2], go[2];
	pid_t child;
	char c;

	CR_SETUP(!pipe(ready) && !pipe(go), "pipe");
	child = fork();
	CR_SETUP(child >= 0, "fork");
	if (!child) {
		close(ready[0]);
		close(go[1]);
		for (int i = 0; i < 2; i++)
			ctx_setup(&child_ctx[i], fd);
		CR_SETUP(write(ready[1], "R", 1) == 1, "report ready");
		/* Blocks until the root verifies (after restore). */
		if (read(go[0], &c, 1) != 1)
			_exit(3);
		for (int i = 0; i < 2; i++)
			ctx_check(&child_ctx[i], fd);
		_exit(cr_victim_result());
	}
	close(ready[1]);
	close(go[0]);
	for (int i = 0; i < 3; i++)
		ctx_setup(&root_ctx[i], fd);
	CR_SETUP(wait_fd(ready[0], WAIT_MS) && read(ready[0], &c, 1) == 1, "child set up");

	cr_victim_ready_wait();

	for (int i = 0; i < 3; i++)
		ctx_check(&root_ctx[i], fd);
	CR_CHECK(write(go[1], "G", 1) == 1, "wake the child");
	int pidfd = syscall(SYS_pidfd_open, child, 0), status = -1;
	CR_CHECK(pidfd >= 0 && wait_fd(pidfd, WAIT_MS) && waitpid(child, &status, 0) == child &&
		 WIFEXITED(status) && WEXITSTATUS(status) == 0,
		 "child %d: status %#x (its failures are in victim.out)", child, status);
	return cr_victim_result();
}

CR_CASE(aio, aio_rings, .victim = victim_rings);

/* A child forked after io_setup maps its parent's ring without having the context. */
static int victim_inherited(void *arg)
{
	static struct ctx_state c = { .req = 4, .waiting = 1, .seed = 0xf };
	int fd = data_file("aio.dat", TEXT), go[2];
	pid_t child;
	char b;

	CR_SETUP(!pipe(go), "pipe");
	ctx_setup(&c, fd);
	child = fork();
	CR_SETUP(child >= 0, "fork");
	if (!child) {
		close(go[1]);
		_exit(read(go[0], &b, 1) == 1 ? 0 : 3);
	}
	close(go[0]);

	cr_victim_ready_wait();

	ctx_check(&c, fd);
	CR_CHECK(write(go[1], "G", 1) == 1, "wake the child");
	int pidfd = syscall(SYS_pidfd_open, child, 0), status = -1;
	CR_CHECK(pidfd >= 0 && wait_fd(pidfd, WAIT_MS) && waitpid(child, &status, 0) == child &&
		 WIFEXITED(status) && WEXITSTATUS(status) == 0, "child %d: status %#x", child, status);
	return cr_victim_result();
}

CR_CASE(aio, aio_inherited_refused, .victim = victim_inherited,
	.dump_err = "is not one of its contexts");

#define LOOP_DEPTH 8
#define LOOP_BLOCKS 64
#define LOOP_BLK 4096
#define LOOP_AFTER 300		/* completions checked after the restore before draining */

/* One request slot of the loop: slot s works on blocks s, s + DEPTH, ... */
struct loop_slot {
	struct iocb cb;
	uint64_t seq;		/* of the request in flight */
	int op;			/* 0 write, 1 read, 2 fsync */
	int block;
	uint32_t gen;		/* written, or expected by the read */
	int busy;
};

static struct loop_slot slots[LOOP_DEPTH];
static uint8_t bufs[LOOP_DEPTH][LOOP_BLK] __attribute__((aligned(4096)));
static uint8_t want[LOOP_BLK];
static uint32_t gens[LOOP_BLOCKS];

static void pattern(uint8_t *p, int block, uint32_t gen)
{
	cr_fill(p, LOOP_BLK, block * 100003u + gen);
}

static void loop_submit(aio_context_t ctx, int fd, int s)
{
	struct loop_slot *l = &slots[s];
	struct iocb *cbp = &l->cb;

	l->seq++;
	l->op = l->seq % 3;
	l->block = s + LOOP_DEPTH * (int)((l->seq / 3) % (LOOP_BLOCKS / LOOP_DEPTH));
	if (l->op == 0) {
		l->gen = ++gens[l->block];
		pattern(bufs[s], l->block, l->gen);
	} else {
		l->gen = gens[l->block];
		memset(bufs[s], 0, LOOP_BLK);
	}
	l->cb = (struct iocb){
		.aio_data = (uint64_t)s << 48 | l->seq, .aio_fildes = fd,
		.aio_lio_opcode = l->op == 0 ? IOCB_CMD_PWRITE : l->op == 1 ? IOCB_CMD_PREAD
									: IOCB_CMD_FSYNC,
		.aio_buf = l->op == 2 ? 0 : (uint64_t)bufs[s], .aio_nbytes = l->op == 2 ? 0 : LOOP_BLK,
		/* fsync takes no buffer, length or offset (aio_fsync: EINVAL). */
		.aio_offset = l->op == 2 ? 0 : (int64_t)l->block * LOOP_BLK,
	};
	long n = syscall(SYS_io_submit, ctx, 1, &cbp);
	CR_CHECK(n == 1, "io_submit slot %d: %ld (%s)", s, n, strerror(errno));
	l->busy = n == 1;
}

/* Checks one completion against its slot; 0 if it matches. */
static int loop_complete(const struct io_event *ev)
{
	int s = ev->data >> 48;
	struct loop_slot *l = s < LOOP_DEPTH ? &slots[s] : NULL;

	if (!l || !l->busy || (ev->data & 0xffffffffffffull) != l->seq || ev->obj != (uint64_t)&l->cb ||
	    ev->res != (l->op == 2 ? 0 : LOOP_BLK) || ev->res2) {
		CR_CHECK(0, "completion data %#llx obj %#llx res %lld res2 %lld matches no request",
			 (unsigned long long)ev->data, (unsigned long long)ev->obj,
			 (long long)ev->res, (long long)ev->res2);
		return -1;
	}
	l->busy = 0;
	if (l->op == 1) {
		pattern(want, l->block, l->gen);
		CR_CHECK(!memcmp(bufs[s], want, LOOP_BLK), "read of block %d (gen %u) differs",
			 l->block, l->gen);
	}
	return 0;
}

/* Takes the completions there are (waiting up to 1 s for one); their count or -1. */
static int loop_reap(aio_context_t ctx, int fd, int resubmit)
{
	struct io_event ev[LOOP_DEPTH];
	struct timespec ts = { 1, 0 };
	long n = syscall(SYS_io_getevents, ctx, 1, LOOP_DEPTH, ev, &ts);

	if (n < 0 && errno == EINTR)
		return 0;
	CR_CHECK(n >= 0, "io_getevents: %s", strerror(errno));
	for (long i = 0; i < n; i++) {
		if (loop_complete(&ev[i]))
			return -1;
		if (resubmit)
			loop_submit(ctx, fd, ev[i].data >> 48);
	}
	return n;
}

static int victim_loop(void *arg)
{
	char path[PATH_MAX];
	aio_context_t ctx = 0;
	int fd, done = 0, busy = 0;

	snprintf(path, sizeof(path), "%s/loop.dat", cr_victim_dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_DIRECT, 0600);
	if (fd < 0 && errno == EINVAL)
		fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	CR_SETUP(fd >= 0, "open '%s'", path);
	for (int b = 0; b < LOOP_BLOCKS; b++) {
		gens[b] = 1;
		pattern(bufs[0], b, 1);
		CR_SETUP(pwrite(fd, bufs[0], LOOP_BLK, (off_t)b * LOOP_BLK) == LOOP_BLK, "fill");
	}
	CR_SETUP(!syscall(SYS_io_setup, 2 * LOOP_DEPTH, &ctx), "io_setup");
	for (int s = 0; s < LOOP_DEPTH; s++)
		loop_submit(ctx, fd, s);
	for (int i = 0; i < 100; i++)
		CR_SETUP(loop_reap(ctx, fd, 1) >= 0, "loop before the dump");

	/* Dumped somewhere in here, with requests in flight or waiting in the ring. */
	cr_victim_ready();
	while (!cr_verify_requested && cr_victim_result() == 0)
		if (loop_reap(ctx, fd, 1) < 0)
			break;

	while (done < LOOP_AFTER && cr_victim_result() == 0) {
		int n = loop_reap(ctx, fd, 1);
		if (n <= 0) {
			CR_CHECK(n == 0, "loop after the restore");
			break;
		}
		done += n;
	}
	for (int tries = 0; tries < 10 && cr_victim_result() == 0; tries++) {
		busy = 0;
		for (int s = 0; s < LOOP_DEPTH; s++)
			busy += slots[s].busy;
		if (!busy)
			break;
		loop_reap(ctx, fd, 0);
	}
	CR_CHECK(!busy, "%d requests never completed", busy);
	for (int b = 0; b < LOOP_BLOCKS && cr_victim_result() == 0; b++) {
		pattern(want, b, gens[b]);
		CR_CHECK(pread(fd, bufs[0], LOOP_BLK, (off_t)b * LOOP_BLK) == LOOP_BLK &&
			 !memcmp(bufs[0], want, LOOP_BLK), "block %d is not generation %u", b, gens[b]);
	}
	return cr_victim_result();
}

/* Not left running: the original keeps writing the file after the dump, which the restored
 * copy then reads as it was at dump time. */
CR_CASE(aio, aio_loop, .victim = victim_loop, .no_leave = true);

/* Submit an IOCB_CMD_POLL for POLLIN on fd, tagged with data. */
static int aio_poll(aio_context_t ctx, struct iocb *cb, int fd, uint64_t data)
{
	struct iocb *cbs[1] = { cb };

	*cb = (struct iocb){ .aio_data = data, .aio_lio_opcode = IOCB_CMD_POLL, .aio_fildes = fd,
			     .aio_buf = POLLIN };
	return syscall(SYS_io_submit, ctx, 1, cbs);
}

/* Checks that the one completion of ctx is the poll cb, readable. */
static void poll_check(aio_context_t ctx, struct iocb *cb, uint64_t data)
{
	struct io_event ev[2];
	struct timespec ts = { WAIT_MS / 1000, 0 };
	long n = syscall(SYS_io_getevents, ctx, 1, 2, ev, &ts);

	CR_CHECK(n == 1, "io_getevents gave %ld: %s", n, strerror(errno));
	if (n == 1)
		CR_CHECK(ev[0].data == data && ev[0].obj == (uint64_t)cb && (ev[0].res & POLLIN) &&
			 ev[0].res2 == 0, "poll completion: data %#llx obj %#llx res %#llx res2 %lld",
			 (unsigned long long)ev[0].data, (unsigned long long)ev[0].obj,
			 (unsigned long long)ev[0].res, (long long)ev[0].res2);
}

/* Nothing completed on ctx yet (a zero-timeout io_getevents). */
static void poll_pending(aio_context_t ctx)
{
	struct io_event ev;
	struct timespec ts = { 0, 0 };
	long n = syscall(SYS_io_getevents, ctx, 1, 1, &ev, &ts);

	CR_CHECK(n == 0, "io_getevents before any data gave %ld (%s)", n, strerror(errno));
}

static int victim_poll_refused(void *arg)
{
	static struct iocb cb;
	aio_context_t ctx = 0;
	int p[2];
	char buf[8];

	CR_SETUP(!pipe(p), "pipe");
	CR_SETUP(!syscall(SYS_io_setup, 4, &ctx), "io_setup");
	CR_SETUP(aio_poll(ctx, &cb, p[0], 0x5011) == 1, "io_submit poll");

	cr_victim_ready_wait();

	poll_pending(ctx);
	CR_CHECK(write(p[1], "x", 1) == 1, "write to the pipe");
	poll_check(ctx, &cb, 0x5011);
	CR_CHECK(read(p[0], buf, sizeof(buf)) == 1 && buf[0] == 'x', "read the pipe");
	CR_CHECK(!syscall(SYS_io_destroy, ctx), "io_destroy: %s", strerror(errno));
	return cr_victim_result();
}

/* The dump message names the context (its address, which varies) and the count. */
CR_CASE(aio, aio_poll_refused, .victim = victim_poll_refused,
	.dump_err = "has 1 requests in flight after 5 s");

#define LATE_DELAY_MS	300
#define LATE_DATA	"late data"

/* 1 once pid is seized (a TracerPid), 0 if not within ms. */
static int wait_traced(pid_t pid, int ms)
{
	char path[64], status[4096], *t;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	for (int i = 0; i < ms; i++) {
		struct timespec step = { 0, 1000 * 1000 };

		if (cr_read_file(path, status, sizeof(status)) < 0)
			return 0;
		t = strstr(status, "TracerPid:");
		if (t && atoi(t + 10) > 0)
			return 1;
		nanosleep(&step, NULL);
	}
	return 0;
}

/*
 * A helper outside the victim's tree (forked twice, so it is the runner's orphan: the
 * dump freezes every task of the tree, which could then write nothing). It writes to
 * wfd LATE_DELAY_MS after it saw pid seized, or gives up after WAIT_MS.
 */
static void late_writer(pid_t pid, int wfd)
{
	pid_t mid = fork(), got;
	int status;

	CR_SETUP(mid >= 0, "fork");
	if (!mid) {
		if (fork() == 0) {
			struct timespec delay = { 0, LATE_DELAY_MS * 1000 * 1000 };

			/* Not in the victim's session, whose ID restore needs free. */
			(void)setsid();
			if (!wait_traced(pid, WAIT_MS))
				_exit(3);
			nanosleep(&delay, NULL);
			_exit(write(wfd, LATE_DATA, strlen(LATE_DATA)) == (ssize_t)strlen(LATE_DATA) ? 0 : 3);
		}
		_exit(0);
	}
	got = waitpid(mid, &status, 0);
	CR_SETUP(got == mid && WIFEXITED(status) && !WEXITSTATUS(status), "helper fork");
}

static int victim_poll_late(void *arg)
{
	static struct iocb cb;
	aio_context_t ctx = 0;
	int p[2];
	char buf[32] = "";

	CR_SETUP(!pipe(p), "pipe");
	CR_SETUP(!syscall(SYS_io_setup, 4, &ctx), "io_setup");
	CR_SETUP(aio_poll(ctx, &cb, p[0], 0x1a7e) == 1, "io_submit poll");
	late_writer(getpid(), p[1]);

	cr_victim_ready_wait();

	poll_check(ctx, &cb, 0x1a7e);
	CR_CHECK(wait_fd(p[0], WAIT_MS) && read(p[0], buf, sizeof(buf) - 1) == strlen(LATE_DATA) &&
		 !strcmp(buf, LATE_DATA), "the pipe holds '%s'", buf);
	CR_CHECK(!syscall(SYS_io_destroy, ctx), "io_destroy: %s", strerror(errno));
	return cr_victim_result();
}

CR_CASE(aio, aio_poll_late, .victim = victim_poll_late);

static int victim_io_uring(void *arg)
{
	struct io_uring_params p = {};
	static char buf[16];
	int fd = data_file("uring.dat", "uring payload");
	int ring = syscall(SYS_io_uring_setup, 4, &p);

	if (ring < 0 && (errno == ENOSYS || errno == EPERM))
		CR_VICTIM_SKIP("io_uring is not available: %s", strerror(errno));
	CR_SETUP(ring >= 0, "io_uring_setup");
	size_t sq_len = p.sq_off.array + p.sq_entries * sizeof(uint32_t);
	size_t cq_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
	size_t len = sq_len > cq_len ? sq_len : cq_len;
	char *sq = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring,
			IORING_OFF_SQ_RING);
	struct io_uring_sqe *sqes = mmap(NULL, p.sq_entries * sizeof(*sqes), PROT_READ | PROT_WRITE,
					 MAP_SHARED | MAP_POPULATE, ring, IORING_OFF_SQES);
	CR_SETUP(sq != MAP_FAILED && sqes != MAP_FAILED, "mmap the io_uring rings");
	/* A kernel with a single mmap for both rings (IORING_FEAT_SINGLE_MMAP) gives cq = sq. */
	char *cq = sq;

	cr_victim_ready_wait();

	uint32_t *tail = (uint32_t *)(sq + p.sq_off.tail), *mask = (uint32_t *)(sq + p.sq_off.ring_mask);
	uint32_t *array = (uint32_t *)(sq + p.sq_off.array), t = *tail;
	memset(&sqes[0], 0, sizeof(sqes[0]));
	sqes[0].opcode = IORING_OP_READ;
	sqes[0].fd = fd;
	sqes[0].addr = (uint64_t)buf;
	sqes[0].len = 13;
	sqes[0].user_data = 0x33;
	array[t & *mask] = 0;
	__atomic_store_n(tail, t + 1, __ATOMIC_RELEASE);
	int n = syscall(SYS_io_uring_enter, ring, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0);
	CR_CHECK(n == 1, "io_uring_enter: %d (%s)", n, strerror(errno));
	uint32_t head = *(uint32_t *)(cq + p.cq_off.head);
	struct io_uring_cqe *cqe = (struct io_uring_cqe *)(cq + p.cq_off.cqes) +
				   (head & *(uint32_t *)(cq + p.cq_off.ring_mask));
	CR_CHECK(head != __atomic_load_n((uint32_t *)(cq + p.cq_off.tail), __ATOMIC_ACQUIRE) &&
		 cqe->user_data == 0x33 && cqe->res == 13 && !memcmp(buf, "uring payload", 13),
		 "io_uring read: user_data %#llx res %d", (unsigned long long)cqe->user_data, cqe->res);
	return cr_victim_result();
}

CR_CASE(aio, io_uring_refused, .victim = victim_io_uring, .dump_err = "io_uring ring");

TEST_HARNESS_MAIN
