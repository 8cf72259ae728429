/* SPDX-License-Identifier: MIT */
/*
 * For C/R tests that rewrite a dump's images before restoring it. Uses the
 * image codec: a test including this links build/libckpt.a (see cr/cr.mk).
 */
#ifndef CKPT_SELFTEST_CR_IMG_H
#define CKPT_SELFTEST_CR_IMG_H

#include "cr.h"
#include "image.h"
#include "mm.pb-c.h"

/* The image directory of the run, opened; -1 after cr_fail(). */
int cr_img_dir(struct cr_run *r);

/* Load mm-PID.img, let fn change it (0, or cr_fail()), write it back. */
int cr_edit_mm(struct cr_run *r, pid_t pid, int (*fn)(struct cr_run *r, MmEntry *mm));

#endif
