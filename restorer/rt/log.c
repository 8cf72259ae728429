// SPDX-License-Identifier: MIT
#include "rt.h"

#define BLOB_PREFIX ""

/*
 * Runtime state lives in .bss: the blob is copied into fresh anonymous
 * memory, so it starts zeroed, and there is one logger per blob instance.
 */
static int log_fd = -1;
static int log_level;
static char *log_buf;
static __u32 log_size;
static __u32 *log_len;

static unsigned long long log_start;

void rt_log_init_fd(int fd, int level, unsigned long long start_ns)
{
	log_fd = fd;
	log_level = level;
	log_buf = NULL;
	log_start = start_ns;
}

void rt_log_init_buf(char *buf, __u32 size, __u32 *len, int level)
{
	log_fd = -1;
	log_buf = buf;
	log_size = size;
	log_len = len;
	log_level = level;
}

static void put_num(char **p, char *end, unsigned long v, int base, int neg)
{
	char tmp[24];
	int n = 0;

	do {
		tmp[n++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	if (neg && *p < end)
		*(*p)++ = '-';
	while (n && *p < end)
		*(*p)++ = tmp[--n];
}

int rt_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
	char *p = buf, *end = buf + (size ? size - 1 : 0);

	for (; *fmt && p < end; fmt++) {
		if (*fmt != '%') {
			*p++ = *fmt;
			continue;
		}
		fmt++;
		int lng = 0;
		while (*fmt == 'l') {
			lng = 1;
			fmt++;
		}
		switch (*fmt) {
		case 'd':
		case 'i': {
			long v = lng ? va_arg(ap, long) : va_arg(ap, int);
			put_num(&p, end, v < 0 ? -(unsigned long)v : (unsigned long)v, 10, v < 0);
			break;
		}
		case 'u':
			put_num(&p, end, lng ? va_arg(ap, unsigned long) : va_arg(ap, unsigned int), 10, 0);
			break;
		case 'x':
			put_num(&p, end, lng ? va_arg(ap, unsigned long) : va_arg(ap, unsigned int), 16, 0);
			break;
		case 'p':
			if (p + 2 <= end) {
				*p++ = '0';
				*p++ = 'x';
			}
			put_num(&p, end, (unsigned long)va_arg(ap, void *), 16, 0);
			break;
		case 's': {
			const char *s = va_arg(ap, const char *);
			if (!s)
				s = "(null)";
			while (*s && p < end)
				*p++ = *s++;
			break;
		}
		case '%':
			*p++ = '%';
			break;
		default:
			if (!*fmt)
				goto out;
			*p++ = '?';
		}
	}
out:
	if (size)
		*p = 0;
	return p - buf;
}

int rt_snprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = rt_vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}

void rt_log(int level, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	if (level > log_level)
		return;
	n = 0;
	if (log_fd >= 0 && log_start) {
		struct {
			long sec, nsec;
		} ts;
		if (!sys_clock_gettime(1, &ts)) {	/* CLOCK_MONOTONIC */
			unsigned long long t = ts.sec * 1000000000ull + ts.nsec - log_start;
			unsigned long us = (t / 1000) % 1000000;
			unsigned long sec = t / 1000000000ull;
			n = rt_snprintf(line, sizeof(line), "(%s%lu.%s%lu) ", sec < 10 ? " " : "", sec,
					us < 10 ? "00000" : us < 100 ? "0000" : us < 1000 ? "000" :
					us < 10000 ? "00" : us < 100000 ? "0" : "", us);

		}
	}
	va_start(ap, fmt);
	n += rt_vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	if (log_fd >= 0) {
		sys_write(log_fd, line, n);
	} else if (log_buf && *log_len < log_size) {
		__u32 room = log_size - *log_len;
		if ((__u32)n > room)
			n = room;
		memcpy(log_buf + *log_len, line, n);
		*log_len += n;
	}
}
