/* SPDX-License-Identifier: MIT */
/*
 * Native AIO requests in flight, counted by the kernel-side iterator
 * bpf/aio.bpf.c (the kernel shows the count nowhere else). This file's
 * aio_inflight.c is the only includer of aio.skel.h.
 */
#ifndef CKPT_AIO_INFLIGHT_H
#define CKPT_AIO_INFLIGHT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* One live context of a process: its ID (the ring's address) and its requests in flight. */
struct aio_inflight_ctx {
	uint64_t id;
	uint64_t inflight;
};

/*
 * Load the iterator (once; later calls return the cached result). 0, or
 * -errno when BPF cannot count here (no BTF, no privilege, an unknown
 * kernel layout): then it warns once that in-flight requests cannot be
 * counted, and every aio_inflight_list() fails with the same error.
 */
int aio_inflight_open(void);

/*
 * The live contexts of process pid (as seen from ckpt's PID namespace),
 * at most max of them into ret, their number in *ret_nr. 0 or -errno
 * (-E2BIG if there are more than max); logs only at debug level.
 */
int aio_inflight_list(pid_t pid, struct aio_inflight_ctx *ret, size_t max, size_t *ret_nr);

/* Unload what aio_inflight_open() loaded; later calls load it anew. */
void aio_inflight_close(void);

#endif
