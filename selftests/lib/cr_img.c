// SPDX-License-Identifier: MIT
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
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

int cr_edit_one(struct cr_run *r, enum img_kind kind, pid_t pid,
		int (*fn)(struct cr_run *r, void *msg, void *arg), void *arg)
{
	char name[64];
	void *msg;
	int dirfd, ret;

	img_name(kind, pid, name, sizeof(name));
	dirfd = cr_img_dir(r);
	if (dirfd < 0)
		return -1;
	if (img_load_one(dirfd, kind, pid, &msg)) {
		close(dirfd);
		return cr_fail(r, "cannot load %s", name);
	}
	ret = fn(r, msg, arg);
	if (!ret && img_store_one(dirfd, kind, pid, msg))
		ret = cr_fail(r, "cannot write %s", name);
	img_free_kind(kind, msg);
	close(dirfd);
	return ret;
}

struct cr_edit_mm_arg {
	int (*fn)(struct cr_run *r, MmEntry *mm);
};

static int cr_edit_mm_one(struct cr_run *r, void *msg, void *arg)
{
	return ((struct cr_edit_mm_arg *)arg)->fn(r, msg);
}

int cr_edit_mm(struct cr_run *r, pid_t pid, int (*fn)(struct cr_run *r, MmEntry *mm))
{
	struct cr_edit_mm_arg a = { .fn = fn };

	return cr_edit_one(r, IMG_MM, pid, cr_edit_mm_one, &a);
}

int cr_load_list(struct cr_run *r, enum img_kind kind, pid_t pid, void ***ret_list, size_t *ret_n)
{
	char name[64];
	int dirfd, err;

	img_name(kind, pid, name, sizeof(name));
	dirfd = cr_img_dir(r);
	if (dirfd < 0)
		return -1;
	err = img_load_all(dirfd, kind, pid, true, ret_list, ret_n);
	close(dirfd);
	if (err)
		return cr_fail(r, "cannot read %s: %s", name, strerror(-err));
	return 0;
}

void cr_free_list(enum img_kind kind, void **list, size_t n)
{
	img_free_all(kind, list, n);
}

int cr_edit_list(struct cr_run *r, enum img_kind kind, pid_t pid,
		 int (*fn)(struct cr_run *r, void **list, size_t n, void *arg), void *arg)
{
	struct img *img;
	void **list;
	char name[64];
	size_t n;
	int dirfd, ret, err;

	if (cr_load_list(r, kind, pid, &list, &n))
		return -1;
	ret = fn(r, list, n, arg);
	if (ret)
		goto out;
	img_name(kind, pid, name, sizeof(name));
	dirfd = cr_img_dir(r);
	if (dirfd < 0) {
		ret = -1;
		goto out;
	}
	img = img_open(dirfd, kind, pid, O_WRONLY);
	err = errno;
	close(dirfd);
	if (!img) {
		ret = cr_fail(r, "cannot create %s: %s", name, strerror(err));
		goto out;
	}
	for (size_t i = 0; i < n && !ret; i++)
		if (img_write(img, list[i]))
			ret = cr_fail(r, "cannot write entry %zu of %s", i, name);
	if (img_close(img) && !ret)
		ret = cr_fail(r, "cannot write %s", name);
out:
	cr_free_list(kind, list, n);
	return ret;
}
