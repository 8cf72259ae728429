/* SPDX-License-Identifier: MIT */
/* The vDSO's exported functions, read from an in-memory image of it. */
#ifndef CKPT_VDSO_H
#define CKPT_VDSO_H

#include <stddef.h>
#include <stdint.h>

#define VDSO_MAX_SYMS 32
#define VDSO_MAX_SIZE (64 * 1024)

struct vdso_sym {
	char name[40];
	uint64_t off;	/* from the start of the image */
	uint64_t size;
};

/*
 * Parse the dynamic symbol table of a vDSO image of len bytes (which may
 * come from an image file: everything is bounds-checked). Returns the
 * number of function symbols stored in syms, or -EINVAL. Does not log.
 */
int vdso_symbols(const uint8_t *img, size_t len, struct vdso_sym *syms, int max);

/* The symbol called name, or NULL. */
const struct vdso_sym *vdso_find(const struct vdso_sym *syms, int n, const char *name);

#endif
