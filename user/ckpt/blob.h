/* SPDX-License-Identifier: MIT */
#ifndef CKPT_BLOB_H
#define CKPT_BLOB_H

#include <stddef.h>
#include <stdint.h>

enum blob_id {
	BLOB_PARASITE,
	BLOB_RESTORER,
};

/* Offsets of the engine-visible symbols, from the start of the blob. */
enum blob_sym {
	BLOB_SYM_ENTRY,		/* export_*_entry */
	BLOB_SYM_TRAP,		/* the int3 the engine waits for */
	BLOB_SYM_SYSCALL,	/* a bare syscall instruction (restorer only) */
};

const void *blob_bytes(enum blob_id id);
size_t blob_size(enum blob_id id);
/* The blob rounded up to whole pages, as it is mapped. */
size_t blob_map_size(enum blob_id id);
uint64_t blob_sym_off(enum blob_id id, enum blob_sym sym);

#endif
