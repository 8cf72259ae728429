/* SPDX-License-Identifier: MIT */
/*
 * For C/R tests that rewrite a dump's images before restoring it. Uses the
 * image codec: a test including this links build/libckpt.a (see cr/cr.mk).
 */
#ifndef CKPT_SELFTEST_CR_IMG_H
#define CKPT_SELFTEST_CR_IMG_H

#include <stddef.h>

#include "cr.h"
#include "image.h"
#include "mm.pb-c.h"

/* The image directory of the run, opened; -1 after cr_fail(). */
int cr_img_dir(struct cr_run *r);

/* Load the one-entry image `kind` of pid (core, mm...), let fn change the message (0, or
 * cr_fail()), write it back. */
int cr_edit_one(struct cr_run *r, enum img_kind kind, pid_t pid,
		int (*fn)(struct cr_run *r, void *msg, void *arg), void *arg);

/* Load mm-PID.img, let fn change it (0, or cr_fail()), write it back. */
int cr_edit_mm(struct cr_run *r, pid_t pid, int (*fn)(struct cr_run *r, MmEntry *mm));

/* Every entry of the list image `kind` of pid into *ret_list (pid is ignored for per-dump
 * kinds): 0, or cr_fail(). Free with cr_free_list(). */
int cr_load_list(struct cr_run *r, enum img_kind kind, pid_t pid, void ***ret_list, size_t *ret_n);
void cr_free_list(enum img_kind kind, void **list, size_t n);

/* Load every entry of the list image `kind` of pid (pstree, pagemap, fdinfo...; pid is
 * ignored for per-dump kinds), let fn change them in place or reorder them (0, or
 * cr_fail()), write them back in the new order. */
int cr_edit_list(struct cr_run *r, enum img_kind kind, pid_t pid,
		 int (*fn)(struct cr_run *r, void **list, size_t n, void *arg), void *arg);

#endif
