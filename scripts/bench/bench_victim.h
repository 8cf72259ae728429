/* SPDX-License-Identifier: MIT */
/*
 * What the benchmark victim tells the driver: one ready record per process,
 * written in one write() to fd 3 (atomic on a pipe) once that process's
 * memory is filled, after which the process closes fd 3.  The driver reads
 * records until EOF, so EOF means every process of the victim is in place.
 */
#ifndef BENCH_VICTIM_H
#define BENCH_VICTIM_H

#include <stdint.h>

struct bench_ready {
	int32_t pid;
	int32_t ppid;
};

/* A tree victim: the root, its children, their children. */
#define BENCH_TREE_MAX_KIDS 16
#define BENCH_TREE_SIZE(kids, grandkids) (1 + (kids) * (1 + (grandkids)))

/* A threads victim: at most this many threads. */
#define BENCH_MAX_THREADS 256

/* Threads victim exit status bits (0: everything verified). */
#define BENCH_THR_BAD_MEMORY  1
#define BENCH_THR_BAD_THREADS 2	/* /proc/self/task is not the dumped set of TIDs */
#define BENCH_THR_NOT_COUNTING 4	/* a thread's counter did not move after restore */

#endif
