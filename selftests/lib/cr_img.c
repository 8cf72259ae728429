// SPDX-License-Identifier: MIT
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "cr_img.h"

int cr_img_dir(struct cr_run *r)
{
	int fd = open(r->imgdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		cr_fail(r, "open '%s': %s", r->imgdir, strerror(errno));
	return fd;
}

int cr_edit_mm(struct cr_run *r, pid_t pid, int (*fn)(struct cr_run *r, MmEntry *mm))
{
	MmEntry *mm;
	int dirfd, ret;

	dirfd = cr_img_dir(r);
	if (dirfd < 0)
		return -1;
	if (img_load_one(dirfd, IMG_MM, pid, (void **)&mm)) {
		close(dirfd);
		return cr_fail(r, "cannot load mm-%d.img", pid);
	}
	ret = fn(r, mm);
	if (!ret && img_store_one(dirfd, IMG_MM, pid, mm))
		ret = cr_fail(r, "cannot write mm-%d.img", pid);
	img_free_kind(IMG_MM, mm);
	close(dirfd);
	return ret;
}
