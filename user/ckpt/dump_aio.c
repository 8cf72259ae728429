// SPDX-License-Identifier: MIT
/*
 * Native AIO contexts (io_setup). Each is a kernel ring mapped into the
 * task ('/[aio] (deleted)' in its maps), whose address is the context ID:
 * a 32-byte header (fs/aio.c struct aio_ring: id, nr, head, tail, magic,
 * features, header_length) then nr struct io_event slots. Completed events
 * wait between head and tail; the image keeps them, oldest first.
 *
 * Requests still in flight must complete before the ring is read, or
 * their completions are lost. The kernel counts them (each holds a
 * reference on the context's reqs refcount) but shows the count nowhere,
 * io_getevents cannot tell "nothing in flight" from "nothing yet", and
 * io_cancel only knows cancellable requests. So a BPF iterator reads the
 * refcount (aio_inflight.c, bpf/aio.bpf.c) and dump waits, bounded by
 * AIO_WAIT_MS, until every context of the frozen task has none in
 * flight: a frozen task submits nothing new, so the count only falls. A
 * request still in flight then (IOCB_CMD_POLL on an idle fd, a hung
 * device) fails the dump, naming the context.
 *
 * Where BPF cannot count (no BTF, no privilege), dump falls back to
 * waiting until no ring's tail has moved for AIO_QUIET_MS, with a
 * warning: a request that stays in flight longer than that without
 * completing is then not seen, and its completion is lost on restore.
 */
#define LOG_PREFIX "aio: "
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>

#include "aio_inflight.h"
#include "dump.h"
#include "image.h"
#include "log.h"

#define AIO_RING_MAGIC	0xa10a10a1
#define AIO_HDR		32
#define AIO_EVENT	32
#define AIO_QUIET_MS	50
#define AIO_WAIT_MS	5000
#define AIO_POLL_MS	2
#define AIO_MAX_CTX	4096

struct aio_hdr {
	uint32_t id, nr, head, tail, magic, compat, incompat, header_length;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ull + ts.tv_nsec / 1000000;
}

bool dump_aio_is_ring(const struct proc_vma *v)
{
	return !strcmp(v->path, "/[aio] (deleted)");
}

/* Record the ring mapped at v; dump_aio_collect() fills it in. */
int dump_aio_add(MmEntry *mm, const struct proc_vma *v)
{
	AioRingEntry **n = realloc(mm->aio_rings, (mm->n_aio_rings + 1) * sizeof(*n));
	AioRingEntry *r;

	if (!n)
		return -ENOMEM;
	mm->aio_rings = n;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	aio_ring_entry__init(r);
	r->addr = v->start;
	r->len = v->end - v->start;
	mm->aio_rings[mm->n_aio_rings++] = r;
	return 0;
}

static int read_hdr(struct dump_task *task, const AioRingEntry *r, struct aio_hdr *h)
{
	int err = infect_read(&task->it, h, r->addr, sizeof(*h));

	if (err) {
		pr_errno(err, "cannot read the AIO ring %#llx of %d", (unsigned long long)r->addr,
			 task->pid);
		return err;
	}
	if (h->magic != AIO_RING_MAGIC || h->header_length != AIO_HDR || h->incompat ||
	    h->nr < 2 || (r->len - AIO_HDR) / AIO_EVENT != h->nr || h->head >= h->nr ||
	    h->tail >= h->nr) {
		pr_err("the AIO ring %#llx of %d (%llu bytes) is not one ckpt knows: magic %#x, nr %u, head %u, tail %u",
		       (unsigned long long)r->addr, task->pid, (unsigned long long)r->len, h->magic,
		       h->nr, h->head, h->tail);
		return -EOPNOTSUPP;
	}
	return 0;
}

/*
 * A ring mapping is a context of this task only if the kernel finds it
 * by that ID: io_getevents(id, 0, 0) reads nothing and returns 0 for a
 * live context, EINVAL for e.g. a ring mapping without its context.
 */
static int check_live(struct dump_task *task, const AioRingEntry *r)
{
	long ret;
	int err = infect_syscall(&task->it, SYS_io_getevents, &ret, r->addr, 0, 0, 0, 0, 0);

	if (!err)
		err = ret;
	if (err == -EINVAL) {
		pr_err("the AIO ring %#llx of %d is not one of its contexts (a mapping inherited by fork?); not supported",
		       (unsigned long long)r->addr, task->pid);
		return -EOPNOTSUPP;
	}
	if (err)
		pr_errno(err, "cannot check the AIO context %#llx of %d", (unsigned long long)r->addr,
			 task->pid);
	return err;
}

/* The events between head and tail, which may wrap around the end of the ring. */
static int read_events(struct dump_task *task, AioRingEntry *r, const struct aio_hdr *h)
{
	uint32_t n = (h->tail + h->nr - h->head) % h->nr, first = h->nr - h->head;
	uint64_t slots = r->addr + AIO_HDR;
	int err = 0;

	r->nr = h->nr;
	r->head = h->head;
	r->tail = h->tail;
	if (!n)
		return 0;
	if (first > n)
		first = n;
	r->events.data = malloc((size_t)n * AIO_EVENT);
	if (!r->events.data)
		return -ENOMEM;
	r->has_events = true;
	r->events.len = (size_t)n * AIO_EVENT;
	err = infect_read(&task->it, r->events.data, slots + (uint64_t)h->head * AIO_EVENT,
			  (size_t)first * AIO_EVENT);
	if (!err && n > first)
		err = infect_read(&task->it, r->events.data + (size_t)first * AIO_EVENT, slots,
				  (size_t)(n - first) * AIO_EVENT);
	if (err)
		pr_errno(err, "cannot read the events of the AIO ring %#llx of %d",
			 (unsigned long long)r->addr, task->pid);
	return err;
}

static void pause_ms(long ms)
{
	struct timespec step = { 0, ms * 1000000 };

	nanosleep(&step, NULL);
}

/* Fallback without BPF: until no tail moved for AIO_QUIET_MS (see the top of this file). */
static int wait_quiet(struct dump_task *task, MmEntry *mm, uint32_t *tails)
{
	uint64_t start = now_ms(), quiet = start;
	struct aio_hdr h;
	int err = 0;

	while (!err && now_ms() - quiet < AIO_QUIET_MS) {
		pause_ms(5);
		for (size_t i = 0; i < mm->n_aio_rings && !err; i++) {
			err = read_hdr(task, mm->aio_rings[i], &h);
			if (err || h.tail == tails[i])
				continue;
			tails[i] = h.tail;
			quiet = now_ms();
			if (quiet - start < AIO_WAIT_MS)
				continue;
			pr_err("AIO context %#llx of %d: requests still completing after %d ms; not dumped",
			       (unsigned long long)mm->aio_rings[i]->addr, task->pid, AIO_WAIT_MS);
			err = -EBUSY;
		}
	}
	return err;
}

/*
 * Until no context of the task has a request in flight, polling the
 * kernel's count every AIO_POLL_MS, for at most AIO_WAIT_MS.
 */
static int wait_idle(struct dump_task *task, MmEntry *mm)
{
	struct aio_inflight_ctx *ctxs = calloc(AIO_MAX_CTX, sizeof(*ctxs));
	uint64_t start = now_ms(), busy_id = 0, busy = 0;
	size_t nr;
	int err;

	if (!ctxs)
		return -ENOMEM;
	for (;;) {
		err = aio_inflight_list(task->pid, ctxs, AIO_MAX_CTX, &nr);
		if (err) {
			pr_errno(err, "cannot count the AIO requests in flight of %d", task->pid);
			break;
		}
		busy = 0;
		for (size_t i = 0; i < mm->n_aio_rings && !err; i++) {
			uint64_t id = mm->aio_rings[i]->addr;
			size_t k = 0;

			while (k < nr && ctxs[k].id != id)
				k++;
			if (k == nr) {
				pr_err("AIO context %#llx of %d is not among its contexts the kernel lists",
				       (unsigned long long)id, task->pid);
				err = -EPROTO;
			}
		}
		/* Every context counts, also one whose ring was unmapped. */
		for (size_t k = 0; k < nr && !busy; k++) {
			busy = ctxs[k].inflight;
			busy_id = ctxs[k].id;
		}
		if (err || !busy)
			break;
		if (now_ms() - start >= AIO_WAIT_MS) {
			pr_err("AIO context %#llx of %d has %llu requests in flight after %d s",
			       (unsigned long long)busy_id, task->pid, (unsigned long long)busy,
			       AIO_WAIT_MS / 1000);
			err = -EBUSY;
			break;
		}
		pause_ms(AIO_POLL_MS);
	}
	if (!err)
		pr_debug("%d: no AIO request in flight after %llu ms", task->pid,
			 (unsigned long long)(now_ms() - start));
	free(ctxs);
	return err;
}

int dump_aio_collect(struct dump_task *task, MmEntry *mm)
{
	struct aio_hdr h;
	uint32_t *tails;
	int err = 0;

	if (!mm->n_aio_rings)
		return 0;
	tails = calloc(mm->n_aio_rings, sizeof(*tails));
	if (!tails)
		return -ENOMEM;
	for (size_t i = 0; i < mm->n_aio_rings && !err; i++) {
		err = check_live(task, mm->aio_rings[i]);
		if (!err)
			err = read_hdr(task, mm->aio_rings[i], &h);
		if (!err)
			tails[i] = h.tail;
	}
	if (!err)
		err = aio_inflight_open() ? wait_quiet(task, mm, tails) : wait_idle(task, mm);
	/* The task is frozen: nothing moves head; a late completion only moves tail. */
	for (size_t i = 0; i < mm->n_aio_rings && !err; i++) {
		AioRingEntry *r = mm->aio_rings[i];
		err = read_hdr(task, r, &h);
		if (!err)
			err = read_events(task, r, &h);
		if (!err)
			err = read_hdr(task, r, &h);
		if (!err && h.tail != r->tail) {
			pr_err("AIO context %#llx of %d: a request completed while it was read; not dumped",
			       (unsigned long long)r->addr, task->pid);
			err = -EBUSY;
		}
		if (!err)
			pr_info("%d: AIO context %#llx, %u events, %zu waiting", task->pid,
				(unsigned long long)r->addr, r->nr, r->events.len / AIO_EVENT);
	}
	free(tails);
	return err;
}

void dump_aio_free(MmEntry *mm)
{
	for (size_t i = 0; i < mm->n_aio_rings; i++) {
		free(mm->aio_rings[i]->events.data);
		free(mm->aio_rings[i]);
	}
	free(mm->aio_rings);
	mm->aio_rings = NULL;
	mm->n_aio_rings = 0;
}
