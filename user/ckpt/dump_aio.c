// SPDX-License-Identifier: MIT
/*
 * Native AIO contexts (io_setup). Each is a kernel ring mapped into the
 * task ('/[aio] (deleted)' in its maps), whose address is the context ID:
 * a 32-byte header (fs/aio.c struct aio_ring: id, nr, head, tail, magic,
 * features, header_length) then nr struct io_event slots. Completed events
 * wait between head and tail; the image keeps them, oldest first.
 *
 * Requests still in flight are the hard part: the kernel counts them
 * (percpu reqs_available, the reqs refcount) but shows the count nowhere,
 * io_getevents cannot tell "nothing in flight" from "nothing yet", and
 * io_cancel only knows cancellable requests. A frozen task submits
 * nothing new, so its rings can only fill up: dump waits (bounded) until
 * no ring's tail has moved for AIO_QUIET_MS. Buffered reads and writes
 * complete inside io_submit, so they are never in flight; fsync and
 * direct I/O finish within milliseconds on a working device. A request
 * that stays in flight longer than the quiet time without completing
 * (IOCB_CMD_POLL on an idle fd, a hung device) is not seen, and its
 * completion is lost on restore: that is the limit.
 */
#define LOG_PREFIX "aio: "
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>

#include "dump.h"
#include "image.h"
#include "log.h"

#define AIO_RING_MAGIC	0xa10a10a1
#define AIO_HDR		32
#define AIO_EVENT	32
#define AIO_QUIET_MS	50
#define AIO_WAIT_MS	5000

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

int dump_aio_collect(struct dump_task *task, MmEntry *mm)
{
	struct aio_hdr h;
	uint32_t *tails;
	uint64_t start = now_ms(), quiet = start;
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
	/* Until no tail moved for AIO_QUIET_MS (see the top of this file). */
	while (!err && now_ms() - quiet < AIO_QUIET_MS) {
		struct timespec step = { 0, 5 * 1000000 };
		nanosleep(&step, NULL);
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
