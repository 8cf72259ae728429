/* SPDX-License-Identifier: MIT */
#ifndef CKPT_SIGFRAME_H
#define CKPT_SIGFRAME_H

#include <stddef.h>
#include <stdint.h>

/* What a restored thread resumes with, in the kernel's terms. */
struct sigframe_regs {
	uint64_t r15, r14, r13, r12, bp, bx, r11, r10, r9, r8, ax, cx, dx, si, di;
	uint64_t ip, cs, flags, sp, ss;
	uint64_t blocked;
	uint64_t alt_sp, alt_size;
	uint32_t alt_flags;
	const uint8_t *xsave;	/* NT_X86_XSTATE regset, or NULL */
	size_t xsave_len;
	uint64_t xfeatures;	/* XCR0 of the dumping host, for the sw bytes if missing */
};

/* Bytes sigframe_build needs for a frame with this much xstate. */
size_t sigframe_size(size_t xsave_len);

/*
 * Write an rt_sigframe at buf, which will live at address `at` in the
 * task (at must be 64-byte aligned). Returns the address rt_sigreturn
 * expects the frame at, i.e. what %rsp - 8 must be when it is called.
 */
uint64_t sigframe_build(void *buf, uint64_t at, const struct sigframe_regs *r);

#endif
