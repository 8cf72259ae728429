// SPDX-License-Identifier: MIT
/* The only includer of the generated blob headers. */
#include "blob.h"
#include "parasite-blob.h"
#include "restorer-blob.h"

const void *blob_bytes(enum blob_id id)
{
	return id == BLOB_PARASITE ? parasite_blob : restorer_blob;
}

size_t blob_size(enum blob_id id)
{
	return id == BLOB_PARASITE ? PARASITE_BLOB_SIZE : RESTORER_BLOB_SIZE;
}

size_t blob_map_size(enum blob_id id)
{
	return (blob_size(id) + 4095) & ~4095ul;
}

uint64_t blob_sym_off(enum blob_id id, enum blob_sym sym)
{
	switch (sym) {
	case BLOB_SYM_ENTRY:
		return id == BLOB_PARASITE ? PARASITE_OFF_PARASITE_ENTRY : RESTORER_OFF_RESTORER_ENTRY;
	case BLOB_SYM_TRAP:
		return id == BLOB_PARASITE ? PARASITE_OFF_PARASITE_TRAP : RESTORER_OFF_RESTORER_TRAP;
	case BLOB_SYM_SYSCALL:
		return RESTORER_OFF_RESTORER_SYSCALL;
	}
	return 0;
}
