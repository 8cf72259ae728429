// SPDX-License-Identifier: MIT
/* Incremental restore: see restore.h. (Being written.) */
#define LOG_PREFIX "restore: "
#include <errno.h>

#include "log.h"
#include "restore.h"

int restore_frozen_start(struct restore_opts *o, struct rst_ctx **ret)
{
	(void)o;
	*ret = NULL;
	return -ENOSYS;
}

int restore_frozen_fixup(struct rst_ctx *ctx, const char *dir)
{
	(void)ctx;
	(void)dir;
	return -ENOSYS;
}

int restore_frozen_finish(struct rst_ctx *ctx)
{
	(void)ctx;
	return -ENOSYS;
}

void restore_frozen_release(struct rst_ctx *ctx)
{
	(void)ctx;
}

void restore_frozen_abort(struct rst_ctx *ctx)
{
	(void)ctx;
}

size_t restore_frozen_roots(const struct rst_ctx *ctx, pid_t *out, size_t max)
{
	(void)ctx;
	(void)out;
	(void)max;
	return 0;
}

void restore_frozen_free(struct rst_ctx *ctx)
{
	(void)ctx;
}
