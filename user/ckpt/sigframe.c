// SPDX-License-Identifier: MIT
/*
 * rt_sigframe for x86_64, as arch/x86/kernel/signal_64.c reads it back in
 * rt_sigreturn: the frame sits at %rsp - 8 (the handler's return address
 * was popped), the ucontext carries registers, blocked mask and
 * sigaltstack, and uc_mcontext.fpstate points at an XSAVE area whose
 * software-reserved bytes (magic1, sizes, features) plus a trailing magic2
 * tell the kernel to XRSTOR it whole (check_xstate_in_sigframe); without
 * them only the legacy FXSAVE part would come back.
 * Only kernel uapi headers here: glibc's struct sigcontext clashes.
 */
#include <asm/sigcontext.h>
#include <linux/types.h>
#include <string.h>

#include "sigframe.h"

#define UC_FP_XSTATE		0x1
#define UC_SIGCONTEXT_SS	0x2
#define UC_STRICT_RESTORE_SS	0x4
#define SW_BYTES_OFFSET		464	/* i387.sw_reserved in the FXSAVE area */
#define XSAVE_HDR_OFFSET	512

struct kstack {
	__u64 ss_sp;
	__s32 ss_flags;
	__u32 pad;
	__u64 ss_size;
};

struct kucontext {
	__u64 uc_flags;
	__u64 uc_link;
	struct kstack uc_stack;
	struct sigcontext uc_mcontext;
	__u64 uc_sigmask;
};

struct rt_sigframe {
	__u64 pretcode;
	struct kucontext uc;
	__u8 info[128];
};

_Static_assert(sizeof(struct sigcontext) == 256, "x86_64 sigcontext");
_Static_assert(sizeof(struct rt_sigframe) == 440, "rt_sigframe");

static size_t fp_offset(void)
{
	return (sizeof(struct rt_sigframe) + 63) & ~63ul;
}

size_t sigframe_size(size_t xsave_len)
{
	return fp_offset() + xsave_len + FP_XSTATE_MAGIC2_SIZE;
}

uint64_t sigframe_build(void *buf, uint64_t at, const struct sigframe_regs *r)
{
	struct rt_sigframe *f = buf;
	struct sigcontext *sc = &f->uc.uc_mcontext;

	memset(f, 0, sizeof(*f));
	f->uc.uc_flags = UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS;
	f->uc.uc_stack.ss_sp = r->alt_sp;
	f->uc.uc_stack.ss_size = r->alt_size;
	/* SS_ONSTACK is an answer of sigaltstack(), not a setting. */
	f->uc.uc_stack.ss_flags = r->alt_flags & ~1;
	f->uc.uc_sigmask = r->blocked;
	sc->r8 = r->r8;
	sc->r9 = r->r9;
	sc->r10 = r->r10;
	sc->r11 = r->r11;
	sc->r12 = r->r12;
	sc->r13 = r->r13;
	sc->r14 = r->r14;
	sc->r15 = r->r15;
	sc->rdi = r->di;
	sc->rsi = r->si;
	sc->rbp = r->bp;
	sc->rbx = r->bx;
	sc->rdx = r->dx;
	sc->rax = r->ax;
	sc->rcx = r->cx;
	sc->rsp = r->sp;
	sc->rip = r->ip;
	sc->eflags = r->flags;
	sc->cs = r->cs;
	sc->ss = r->ss;
	if (r->xsave && r->xsave_len >= XSAVE_HDR_OFFSET + 64) {
		uint8_t *fp = (uint8_t *)buf + fp_offset();
		struct _fpx_sw_bytes sw;
		__u32 magic2 = FP_XSTATE_MAGIC2;

		memcpy(fp, r->xsave, r->xsave_len);
		memcpy(&sw, fp + SW_BYTES_OFFSET, sizeof(sw));
		if (sw.magic1 != FP_XSTATE_MAGIC1) {
			__u64 hdr;
			memcpy(&hdr, fp + XSAVE_HDR_OFFSET, sizeof(hdr));
			sw.xfeatures = r->xfeatures ? r->xfeatures : (hdr | 3);
		}
		sw.magic1 = FP_XSTATE_MAGIC1;
		sw.xstate_size = r->xsave_len;
		sw.extended_size = r->xsave_len + FP_XSTATE_MAGIC2_SIZE;
		memcpy(fp + SW_BYTES_OFFSET, &sw, sizeof(sw));
		memcpy(fp + r->xsave_len, &magic2, sizeof(magic2));
		sc->fpstate = (void *)(uintptr_t)(at + fp_offset());
		f->uc.uc_flags |= UC_FP_XSTATE;
	}
	return at;
}
