/* SPDX-License-Identifier: MIT */
/*
 * Kernel UAPI newer than the installed 6.1 headers. Every definition is
 * guarded so a newer <linux/fs.h> or <linux/userfaultfd.h> wins; include
 * this after them.
 */
#ifndef CKPT_KCOMPAT_H
#define CKPT_KCOMPAT_H

#include <linux/fs.h>
#include <linux/ioctl.h>
#include <linux/types.h>
#include <linux/userfaultfd.h>

/* PAGEMAP_SCAN: ioctl on /proc/PID/pagemap (6.7). */
#ifndef PAGEMAP_SCAN
#define PAGEMAP_SCAN	_IOWR('f', 16, struct pm_scan_arg)

/* Page categories, reported in page_region.categories. */
#define PAGE_IS_WPALLOWED	(1 << 0)
#define PAGE_IS_WRITTEN		(1 << 1)
#define PAGE_IS_FILE		(1 << 2)
#define PAGE_IS_PRESENT		(1 << 3)
#define PAGE_IS_SWAPPED		(1 << 4)
#define PAGE_IS_PFNZERO		(1 << 5)
#define PAGE_IS_HUGE		(1 << 6)
#define PAGE_IS_SOFT_DIRTY	(1 << 7)

/* pm_scan_arg.flags */
#define PM_SCAN_WP_MATCHING	(1 << 0)	/* write-protect what matched, same walk */
#define PM_SCAN_CHECK_WPASYNC	(1 << 1)	/* fail on a VMA not registered for async WP */

struct page_region {
	__u64 start;
	__u64 end;
	__u64 categories;
};

struct pm_scan_arg {
	__u64 size;		/* sizeof(struct pm_scan_arg) */
	__u64 flags;
	__u64 start;
	__u64 end;
	__u64 walk_end;		/* out: where the walk stopped */
	__u64 vec;		/* struct page_region array */
	__u64 vec_len;
	__u64 max_pages;
	__u64 category_inverted;
	__u64 category_mask;
	__u64 category_anyof_mask;
	__u64 return_mask;
};
#endif

/* Guard-region markers (MADV_GUARD_INSTALL) got a category later than the ioctl. */
#ifndef PAGE_IS_GUARD
#define PAGE_IS_GUARD		(1 << 8)
#endif

/* userfaultfd features after 6.1 */
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED	(1 << 13)	/* 6.4 */
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC		(1 << 15)	/* 6.7 */
#endif

/* PROCMAP_QUERY: binary VMA lookup, ioctl on /proc/PID/maps (6.11). */
#ifndef PROCMAP_QUERY
#define PROCFS_IOCTL_MAGIC	'f'
#define PROCMAP_QUERY		_IOWR(PROCFS_IOCTL_MAGIC, 17, struct procmap_query)

enum procmap_query_flags {
	PROCMAP_QUERY_VMA_READABLE = 0x01,
	PROCMAP_QUERY_VMA_WRITABLE = 0x02,
	PROCMAP_QUERY_VMA_EXECUTABLE = 0x04,
	PROCMAP_QUERY_VMA_SHARED = 0x08,
	PROCMAP_QUERY_COVERING_OR_NEXT_VMA = 0x10,
	PROCMAP_QUERY_FILE_BACKED_VMA = 0x20,
};

struct procmap_query {
	__u64 size;		/* sizeof(struct procmap_query) */
	__u64 query_flags;	/* PROCMAP_QUERY_* */
	__u64 query_addr;
	__u64 vma_start;	/* out */
	__u64 vma_end;
	__u64 vma_flags;	/* out: PROCMAP_QUERY_VMA_* */
	__u64 vma_page_size;
	__u64 vma_offset;
	__u64 inode;
	__u32 dev_major;
	__u32 dev_minor;
	__u32 vma_name_size;	/* in: buffer size; out: name length + 1, 0 if none */
	__u32 build_id_size;
	__u64 vma_name_addr;
	__u64 build_id_addr;
};
#endif

#endif
