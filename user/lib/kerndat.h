/* SPDX-License-Identifier: MIT */
#ifndef CKPT_KERNDAT_H
#define CKPT_KERNDAT_H

#include <stdbool.h>
#include <stdint.h>

/*
 * Kernel features ckpt uses, probed once by trying each call for real on
 * a child or on the caller itself (never inferred from the version).
 */
enum kerndat_feature {
	KD_PTRACE_SEIZE,	/* PTRACE_SEIZE + PTRACE_INTERRUPT */
	KD_PTRACE_XSTATE,	/* PTRACE_GETREGSET NT_X86_XSTATE */
	KD_PTRACE_SIGMASK,	/* PTRACE_GETSIGMASK */
	KD_PTRACE_PEEKSIGINFO,
	KD_PROCESS_VM_READV,
	KD_PIDFD_GETFD,		/* pidfd_open + pidfd_getfd */
	KD_KCMP_FILE,
	KD_MAP_FILES,		/* /proc/PID/map_files entries can be opened */
	KD_CLONE3_SET_TID,
	KD_PRCTL_MM_MAP,	/* PR_SET_MM_MAP with our struct prctl_mm_map */
	KD_PAGEMAP_SCAN,
	KD_VDSO,		/* [vdso] found in /proc/self/maps */
	KD_UFFD_WP_ASYNC,	/* optional */
	KD_BTF_VMLINUX,		/* optional */
	KD_TIMER_RESTORE_IDS,	/* optional: PR_TIMER_CREATE_RESTORE_IDS, for POSIX timers */
	KD_TCP_REPAIR,		/* optional: TCP_REPAIR, for established connections */
	KD_NFT,			/* optional: the nft command, for the network lock */
	KD_NR_FEATURES,
};

struct kerndat {
	bool has[KD_NR_FEATURES];
	char why[KD_NR_FEATURES][96];	/* the failing step, when !has */
	uint32_t xsave_size;		/* NT_X86_XSTATE regset bytes; 0 if unknown */
	uint64_t xcr0;			/* XCR0 via xgetbv; 0 without OSXSAVE */
	uint64_t uffd_features;		/* UFFDIO_API features the kernel offers */
	/* vDSO area sizes in bytes; 0 when the mapping is absent. */
	uint64_t vvar_size;
	uint64_t vvar_vclock_size;	/* split from [vvar] in 6.13 */
	uint64_t vdso_size;
};

/*
 * Fill *kd. Missing features are recorded with a reason, not returned:
 * the result is 0, or -errno when probing itself was impossible (no fork,
 * no memory). Logs at debug level only.
 */
int kerndat_probe(struct kerndat *kd);

/* XCR0, the state components the kernel enabled; 0 without OSXSAVE. No probing. */
uint64_t kerndat_xcr0(void);
/* Bytes of the standard-format XSAVE area for those components (CPUID 0xd.0 EBX). */
uint32_t kerndat_xsave_area(void);

const char *kerndat_name(enum kerndat_feature f);
/* The kernel that brought the feature, e.g. "Linux 6.7", or a config option. */
const char *kerndat_needs(enum kerndat_feature f);
bool kerndat_required(enum kerndat_feature f);

#endif
