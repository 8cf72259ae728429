// SPDX-License-Identifier: MIT
/*
 * aio_test: asynchronous I/O contexts ckpt does not dump yet are refused clearly, and the
 * victim goes on unharmed (same maps, fds and signals, not traced) with a working context.
 *
 *   aio_refused       a native AIO context (io_setup) with a completion waiting in its ring:
 *                     the dump fails naming the '/[aio]' ring mapping and the task; after it
 *                     io_getevents() still returns that completion and a new io_submit() works.
 *   io_uring_refused  an io_uring instance with its rings mapped: the dump fails naming the
 *                     io_uring ring and the task; after it the instance still completes a read.
 *
 * Completions are waited for with a timeout (io_getevents, io_uring_enter with
 * IORING_ENTER_GETEVENTS on a read of a regular file, which completes at once).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <linux/io_uring.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "cr.h"

CR_FIXTURE(aio);

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

static int victim_aio(void *arg)
{
	static char buf[2][16];
	aio_context_t ctx = 0;
	struct io_event ev;
	int fd = data_file("aio.dat", "aio payload");

	CR_SETUP(!syscall(SYS_io_setup, 32, &ctx), "io_setup");
	CR_SETUP(aio_read(ctx, fd, buf[0], 11, 0x11) == 1, "io_submit");

	cr_victim_ready_wait();

	/* The completion was waiting in the ring (a buffered read completes at submission). */
	CR_CHECK(aio_wait(ctx, &ev) == 1, "io_getevents: %s", strerror(errno));
	CR_CHECK(ev.data == 0x11 && ev.res == 11 && !memcmp(buf[0], "aio payload", 11),
		 "event data %#llx res %lld", (unsigned long long)ev.data, (long long)ev.res);
	CR_CHECK(aio_read(ctx, fd, buf[1], 3, 0x22) == 1, "io_submit after the dump: %s",
		 strerror(errno));
	CR_CHECK(aio_wait(ctx, &ev) == 1 && ev.data == 0x22 && ev.res == 3, "second read: %lld",
		 (long long)ev.res);
	return cr_victim_result();
}

CR_CASE(aio, aio_refused, .victim = victim_aio, .dump_err = "AIO ring");

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
