/* SPDX-License-Identifier: MIT */
#ifndef CKPT_IMAGE_H
#define CKPT_IMAGE_H

#include <stdbool.h>
#include <stdint.h>

/*
 * Image files. Each is a 32-bit magic naming its kind, a 32-bit format
 * version, then entries, each a 32-bit little-endian length, a CRC-32C of
 * the length and message bytes, and a protobuf message of the kind's type. Page contents live in flat pages-PID.img
 * files with no header, so they can be written and read page-aligned.
 */

#define IMG_FORMAT_VERSION	1
#define IMG_PAGE_SIZE		4096ull
#define IMG_TASK_SIZE		((1ull << 47) - IMG_PAGE_SIZE)	/* x86_64 4-level user space top */
#define IMG_MAX_ENTRY		(64u << 20)	/* no single entry is larger */
#define IMG_MAX_FILE		(1u << 30)	/* a metadata image, not pages */
#define IMG_GHOST_MAX_SIZE	(64ull << 20)	/* a deleted file whose contents the dump saves */
#define IMG_GHOST_MAX_DATA	(4u << 20)	/* bytes of it in one GhostFileEntry */

enum img_kind {
	IMG_INVENTORY,
	IMG_PSTREE,
	IMG_CORE,
	IMG_MM,
	IMG_PAGEMAP,
	IMG_FILES,
	IMG_FDINFO,
	IMG_PIPES_DATA,
	IMG_GHOST,
	IMG_DELTA,
	IMG_NR_KINDS,
	IMG_PAGES = IMG_NR_KINDS,	/* raw, no codec */
};

/* VmaEntry.kind */
enum {
	VMA_KIND_ANON = 1,		/* private anonymous: heap, stacks, mmaps */
	VMA_KIND_FILE_PRIVATE = 2,	/* MAP_PRIVATE of a file */
	VMA_KIND_FILE_SHARED = 3,	/* MAP_SHARED of a file, restored by reference */
	VMA_KIND_SHARED_ANON = 4,	/* MAP_SHARED|MAP_ANONYMOUS, contents dumped */
	VMA_KIND_VDSO = 5,		/* [vdso]: provided by the running kernel */
	VMA_KIND_VVAR = 6,		/* [vvar], [vvar_vclock]: likewise */
};

/* VmaEntry.madv: advice to re-apply after mapping */
enum {
	VMA_MADV_HUGEPAGE = 1 << 0,
	VMA_MADV_NOHUGEPAGE = 1 << 1,
	VMA_MADV_DONTDUMP = 1 << 2,
	VMA_MADV_DONTFORK = 1 << 3,
	VMA_MADV_WIPEONFORK = 1 << 4,
};

/* PagemapEntry.flags */
enum {
	PE_PRESENT = 1 << 0,	/* the pages are in this dump's pages file */
	/*
	 * The pages are the parent's, still shared copy-on-write since a
	 * fork (same page frame at dump time): no data here, the restored
	 * child inherits them from its restored parent.
	 */
	PE_PARENT = 1 << 1,
	/*
	 * Incremental dump: the pages are unchanged since the parent images
	 * (InventoryEntry.parent_images): the same process's pages at the same
	 * addresses there, which must hold data for each of them.
	 */
	PE_PREV = 1 << 2,
};

/* DeltaEntry.state */
enum {
	DELTA_SAME = 1,		/* in both, its address space carried over */
	DELTA_NEW = 2,		/* not in the parent images: read whole */
	DELTA_EXITED = 3,	/* in the parent images only */
	DELTA_EXECED = 4,	/* in both, but it exec'ed since: read whole */
};

/* A dump ID as InventoryEntry.dump_id holds it: 32 lower-case hex digits. */
bool dump_id_ok(const char *id);

struct img;

/* Name of the image file for a kind and PID (ignored for per-dump kinds). */
void img_name(enum img_kind kind, int pid, char *buf, size_t len);

/*
 * Open an image in the directory dirfd. O_WRONLY creates it (0600,
 * truncating); O_RDONLY reads it whole and checks magic and version.
 * Returns NULL with errno set; logs the reason with the file name.
 * On O_RDONLY, ENOENT is not logged: callers decide whether it matters.
 */
struct img *img_open(int dirfd, enum img_kind kind, int pid, int flags);

/* Append one message of the image's type. 0 or -errno (logged). */
int img_write(struct img *img, const void *msg);

/*
 * Read the next message. Returns 1 with *ret_msg set, 0 at the end of the
 * file, or -EINVAL for a corrupt entry (logged naming file, entry, field).
 * Every entry passes the kind's field checks before it is returned.
 */
int img_read(struct img *img, void **ret_msg);

/* Read the single entry of a one-entry image; a missing entry is an error. */
int img_read_one(struct img *img, void **ret_msg);

void img_free(struct img *img, void *msg);

/* Flush and close. Returns 0 or -errno of a failed write (logged). */
int img_close(struct img *img);

/*
 * With defer, img_close() (and the dump's pages files) skip their fsync:
 * the caller syncs everything at once (syncfs) before it writes what
 * says the images are complete.
 */
void img_defer_sync(bool defer);
bool img_sync_deferred(void);

const char *img_path(const struct img *img);
int img_entry_index(const struct img *img);

/* Convenience: create the image with msg as its only entry. 0 or -errno (logged). */
int img_store_one(int dirfd, enum img_kind kind, int pid, const void *msg);
/* Convenience: open, read the only entry, close. */
int img_load_one(int dirfd, enum img_kind kind, int pid, void **ret_msg);
void img_free_kind(enum img_kind kind, void *msg);
/*
 * Convenience: every entry of an image into a malloc'ed array. A missing
 * image is an empty list unless `must` (then -ENOENT, logged like every
 * bad entry). Free with img_free_all().
 */
int img_load_all(int dirfd, enum img_kind kind, int pid, bool must, void ***ret, size_t *ret_n);
void img_free_all(enum img_kind kind, void **list, size_t n);

/*
 * Report a bad field of the entry just read: "FILE: entry N: field F: ...".
 * Returns -EINVAL so a caller can write `return img_bad(...)`.
 */
int img_bad(const struct img *img, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* The same for cross-checks done after the image is closed. */
int img_bad_at(const char *file, int entry, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Kind metadata, for `ckpt show`. */
enum img_kind img_kind_of_name(const char *name, int *ret_pid);
const char *img_kind_name(enum img_kind kind);
const void *img_kind_descriptor(enum img_kind kind);	/* ProtobufCMessageDescriptor */

#endif
