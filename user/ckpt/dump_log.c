// SPDX-License-Identifier: MIT
#define LOG_PREFIX "dump: "
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "changelog.h"
#include "ctl.h"
#include "dirty.h"
#include "dump.h"
#include "log.h"
#include "proc.h"

/* Whether START e tracks as many roots as -t gave, each of them among its own. */
static bool dump_log_same_roots(const ChangelogEntry *e, const struct dump_opts *o)
{
	if (e->n_roots != o->nr_roots)
		return false;
	for (size_t i = 0; i < o->nr_roots; i++) {
		size_t j = 0;

		while (j < e->n_roots && e->roots[j] != o->roots[i])
			j++;
		if (j == e->n_roots)
			return false;
	}
	return true;
}

/* The log's START: the roots it tracks must be the dump's. */
static int dump_log_identity(struct dump_ctx *ctx, int dirfd)
{
	const struct dump_opts *o = ctx->opts;
	struct cl_reader *r = cl_reader_open(dirfd);
	ChangelogEntry *e = NULL;
	int err;

	if (!r)
		return -errno;
	err = cl_next(r, &e);
	if (err == 0) {
		pr_err("the changelog in '%s' is empty", o->since_log);
		err = -EINVAL;
	}
	if (err < 0)
		goto out;
	/* The reader checked that the first record is a START with roots and a boot ID. */
	if (!dump_log_same_roots(e, o)) {
		char list[256] = "";
		for (size_t j = 0, len = 0; j < e->n_roots && len < sizeof(list) - 16; j++)
			len += snprintf(list + len, sizeof(list) - len, "%s%d", j ? "," : "",
					e->roots[j]);
		pr_err("the changelog in '%s' tracks the roots %s, not the ones given to -t",
		       o->since_log, list);
		err = -EINVAL;
		goto out;
	}
	snprintf(ctx->log_boot_id, sizeof(ctx->log_boot_id), "%s", e->boot_id);
	ctx->log_start_ns = e->realtime_ns;
	err = 0;
out:
	cl_entry_free(e);
	cl_reader_close(r);
	return err;
}

/* `trackd mark` through the control socket: the MARK's seq. */
static int dump_log_request_mark(struct dump_ctx *ctx, int dirfd)
{
	char ans[256];
	int sk = ctl_connect(dirfd);
	long n;

	if (sk < 0) {
		pr_errno(sk, "no trackd runs on '%s'", ctx->opts->since_log);
		return sk;
	}
	n = ctl_send(sk, "mark", 4, -1);
	if (!n)
		n = ctl_recv(sk, ans, sizeof(ans), NULL);
	close(sk);
	if (n < 0) {
		pr_errno(n, "no answer from the trackd on '%s'", ctx->opts->since_log);
		return n;
	}
	if (strncmp(ans, "ok\n", 3)) {
		pr_err("the trackd on '%s' refused a mark: %s", ctx->opts->since_log, ans);
		return -EIO;
	}
	ctx->log_seq = strtoull(ans + 3, NULL, 10);
	return ctx->log_seq ? 0 : -EIO;
}

/*
 * Re-arm what is under tracking in pid: one scan with WP_MATCHING over
 * every mapping, its report dropped (this dump has the pages as they are).
 */
static int dump_log_rearm(pid_t pid)
{
	struct dirty_run *ranges, *runs = NULL;
	struct proc_vma *vmas;
	size_t n, nr = 0, k = 0;
	int err = proc_parse_maps(pid, false, &vmas, &n);

	if (err) {
		pr_errno(err, "cannot read the mappings of %d", pid);
		return err;
	}
	ranges = malloc((n + 1) * sizeof(*ranges));
	if (!ranges) {
		free(vmas);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		/* [vsyscall] lies above user space: pagemap has nothing there. */
		if (!strcmp(vmas[i].path, "[vsyscall]"))
			continue;
		ranges[k++] = (struct dirty_run){ vmas[i].start, vmas[i].end };
	}
	err = dirty_scan(pid, ranges, k, true, &runs, &nr);
	if (err)
		pr_errno(err, "cannot re-arm the write tracking of %d", pid);
	free(runs);
	free(ranges);
	free(vmas);
	return err;
}

int dump_log_mark(struct dump_ctx *ctx)
{
	int dirfd, err;

	dirfd = open(ctx->opts->since_log, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0) {
		err = -errno;
		pr_perror("cannot open the changelog directory '%s'", ctx->opts->since_log);
		return err;
	}
	err = dump_log_identity(ctx, dirfd);
	/* trackd registers what is new (it needs no ptrace for that) before the re-arm. */
	if (!err)
		err = dump_log_request_mark(ctx, dirfd);
	close(dirfd);
	for (size_t i = 0; !err && i < ctx->nr_tasks; i++)
		if (!ctx->tasks[i].zombie)
			err = dump_log_rearm(ctx->tasks[i].pid);
	if (!err)
		pr_info("changelog '%s': mark %llu, write tracking re-armed", ctx->opts->since_log,
			(unsigned long long)ctx->log_seq);
	return err;
}
