/* SPDX-License-Identifier: MIT */
/* The blobs' runtime: no libc, no errno; sys_*() return -errno. */
#ifndef CKPT_RT_H
#define CKPT_RT_H

#include <linux/types.h>
#include <stddef.h>
#include <stdarg.h>

#include "syscalls.h"

#define RT_PAGE_SIZE 4096UL
#define rt_is_err(v) ((unsigned long)(v) >= (unsigned long)-4095)

void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);

/* %d %i %u %x %lx %ld %lu %s %p and %%, with an optional l; returns bytes written. */
int rt_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int rt_snprintf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/*
 * Logging: lines go either to an fd (restorer) or into a buffer the
 * engine reads back (parasite). rt_log_init picks one.
 */
/* start_ns: CLOCK_MONOTONIC origin for "(s.us)" stamps on fd lines, 0 for none. */
void rt_log_init_fd(int fd, int level, unsigned long long start_ns);
void rt_log_init_buf(char *buf, __u32 size, __u32 *len, int level);
void rt_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define rt_err(fmt, ...)   rt_log(1, "Error: " BLOB_PREFIX fmt "\n", ##__VA_ARGS__)
#define rt_info(fmt, ...)  rt_log(3, BLOB_PREFIX fmt "\n", ##__VA_ARGS__)
#define rt_debug(fmt, ...) rt_log(4, BLOB_PREFIX fmt "\n", ##__VA_ARGS__)

#endif
