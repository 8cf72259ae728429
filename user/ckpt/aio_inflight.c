// SPDX-License-Identifier: MIT
/*
 * Runs bpf/aio.bpf.c on one process and parses what it prints (its header
 * comment has the format and the kernel facts behind the count). The
 * iterator link is made per call, parameterized with the process's TID
 * (6.1+); the object is loaded once and kept until aio_inflight_close().
 */
#define LOG_PREFIX "aio: "
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "aio.skel.h"
#include "aio_inflight.h"
#include "log.h"

#define AIO_OUT_MAX	(1 << 20)

static struct aio_bpf *skel;
static int open_err;		/* cached result of a failed open */
static unsigned int nr_possible;

static int aio_inflight_libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char *msg, *line, *save;

	if (LOG_DEBUG > log_get_level() || vasprintf(&msg, fmt, ap) < 0)
		return 0;
	/* Failures are reported once, by aio_inflight_open(); libbpf's details are debug. */
	for (line = strtok_r(msg, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		pr_debug("%s", line);
	free(msg);
	return 0;
}

/* CPUs 0..n-1 from /sys/devices/system/cpu/possible; the iterator sums exactly those. */
static int possible_cpus(unsigned int *ret_n)
{
	char buf[64] = "";
	unsigned int last;
	char end;
	FILE *f = fopen("/sys/devices/system/cpu/possible", "re");

	if (!f)
		return -errno;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = 0;
	fclose(f);
	if (!strcmp(buf, "0\n")) {
		*ret_n = 1;
		return 0;
	}
	if (sscanf(buf, "0-%u%c", &last, &end) != 2 || end != '\n')
		return -EOPNOTSUPP;
	*ret_n = last + 1;
	return 0;
}

int aio_inflight_open(void)
{
	struct aio_bpf *s;
	int err;

	if (skel)
		return 0;
	if (open_err)
		return open_err;
	libbpf_set_print(aio_inflight_libbpf_print);
	err = possible_cpus(&nr_possible);
	if (err) {
		pr_warn("cannot tell the possible CPUs: %s; AIO requests in flight cannot be counted",
			strerror(-err));
		goto err;
	}
	s = aio_bpf__open_and_load();
	if (!s) {
		err = -errno;
		pr_warn("cannot load the AIO BPF iterator: %s; AIO requests in flight cannot be counted",
			strerror(-err));
		goto err;
	}
	skel = s;
	return 0;
err:
	open_err = err ? err : -EINVAL;
	return open_err;
}

void aio_inflight_close(void)
{
	aio_bpf__destroy(skel);
	skel = NULL;
	open_err = 0;
}

/* The iterator's whole output for tid into a NUL-terminated malloc'd buffer. */
static int run_iter(pid_t tid, char **ret_out)
{
	union bpf_iter_link_info linfo = { .task.tid = tid };
	LIBBPF_OPTS(bpf_iter_attach_opts, opts, .link_info = &linfo, .link_info_len = sizeof(linfo));
	struct bpf_link *link;
	size_t len = 0, cap = 4096;
	char *out = malloc(cap);
	int fd = -1, err = 0;
	ssize_t n;

	if (!out)
		return -ENOMEM;
	link = bpf_program__attach_iter(skel->progs.iter_task_aio, &opts);
	if (!link) {
		err = -errno;
		pr_debug("cannot attach the AIO iterator to %d: %s", tid, strerror(-err));
		goto out;
	}
	fd = bpf_iter_create(bpf_link__fd(link));
	if (fd < 0) {
		err = -errno;
		pr_debug("cannot create the AIO iterator for %d: %s", tid, strerror(-err));
		goto out;
	}
	for (;;) {
		if (cap - len < 2) {
			char *o = cap < AIO_OUT_MAX ? realloc(out, cap * 2) : NULL;
			if (!o) {
				err = cap < AIO_OUT_MAX ? -ENOMEM : -E2BIG;
				goto out;
			}
			out = o;
			cap *= 2;
		}
		n = read(fd, out + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = -errno;
			pr_debug("cannot read the AIO iterator of %d: %s", tid, strerror(-err));
			goto out;
		}
		if (!n)
			break;
		len += n;
	}
	out[len] = 0;
out:
	if (fd >= 0)
		close(fd);
	bpf_link__destroy(link);
	if (err) {
		free(out);
		return err;
	}
	*ret_out = out;
	return 0;
}

int aio_inflight_list(pid_t pid, struct aio_inflight_ctx *ret, size_t max, size_t *ret_nr)
{
	char *out = NULL, *line, *save;
	size_t nr = 0;
	bool header = false;
	int err = aio_inflight_open();

	if (err)
		return err;
	err = run_iter(pid, &out);
	if (err)
		return err;
	for (line = strtok_r(out, "\n", &save); line && !err; line = strtok_r(NULL, "\n", &save)) {
		unsigned long long id;
		long long inflight;
		unsigned int cpus;
		int end = 0;

		if (!header) {
			if (sscanf(line, "cpus %u%n", &cpus, &end) != 1 || line[end] ||
			    cpus != nr_possible) {
				pr_debug("AIO iterator of %d: '%s', %u possible CPUs", pid, line,
					 nr_possible);
				err = -EPROTO;
			}
			header = true;
			continue;
		}
		if (sscanf(line, "ctx %llx %lld%n", &id, &inflight, &end) != 2 || line[end] ||
		    inflight < 0) {
			pr_debug("AIO iterator of %d: unexpected '%s'", pid, line);
			err = -EPROTO;
			break;
		}
		if (nr == max) {
			err = -E2BIG;
			break;
		}
		ret[nr].id = id;
		ret[nr].inflight = inflight;
		nr++;
	}
	/* No header: the task is gone (the iterator skips a TID it cannot find). */
	if (!err && !header)
		err = -ESRCH;
	free(out);
	if (!err)
		*ret_nr = nr;
	return err;
}
