/* SPDX-License-Identifier: MIT */
/*
 * Written-page tracking without soft-dirty: userfaultfd write-protection
 * in async mode, harvested and re-armed with PAGEMAP_SCAN (kernel 6.7+).
 * A page under tracking reads "written" once something wrote it (user
 * space, the kernel through the page tables, a discard) since it was last
 * armed. The uffd itself is created inside the target (user/ckpt/wptrack.c).
 * These helpers log only at debug level.
 */
#ifndef CKPT_DIRTY_H
#define CKPT_DIRTY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "kcompat.h"

/* [start, end), page aligned. */
struct dirty_run {
	uint64_t start;
	uint64_t end;
};

/*
 * UFFDIO_API on a fresh uffd: async write-protect (WP_ASYNC, which the
 * kernel pairs with WP_UNPOPULATED), plus shmem/hugetlbfs WP when offered.
 * 0, -EOPNOTSUPP when the kernel lacks WP_ASYNC, or -errno.
 */
int dirty_uffd_api(int uffd);

/*
 * Register [start, end) of the uffd's mm for write-protect tracking. The
 * pages are not armed yet (dirty_scan with rearm does it). -EINVAL: the
 * kernel cannot track this mapping (AIO ring, VM_PFNMAP, ...).
 */
int dirty_register(int uffd, uint64_t start, uint64_t end);

/*
 * The engine's harvest: the pages of pid (or of an open /proc/PID/pagemap)
 * written within ranges (page aligned, sorted, not overlapping) since they
 * were last armed. A page not under tracking (never registered, moved by
 * mremap, of a process forked since) reads as written: copy it whole. With
 * rearm, what is reported is write-protected again in the same walk, so a
 * write after the scan shows up in the next one. *ret is malloc'ed, sorted
 * and merged (NULL when nothing); *ret_n its length. 0 or -errno.
 * Unmapped parts of ranges are not reported. Not seen at all (Linux 6.18,
 * pinned by selftests/trackd/dirty_test): writes to shared memory through
 * another process's mapping or write(2), and MADV_DONTNEED of a private
 * copy in a file mapping (the page reads the file again).
 */
int dirty_scan(pid_t pid, const struct dirty_run *ranges, size_t n, bool rearm,
	       struct dirty_run **ret, size_t *ret_n);
int dirty_scan_fd(int pagemap_fd, const struct dirty_run *ranges, size_t n, bool rearm,
		  struct dirty_run **ret, size_t *ret_n);

/* What dirty_scan_known() tells of each written page: PAGE_IS_PRESENT, _SWAPPED, _PFNZERO. */
#define DIRTY_KNOWN (PAGE_IS_PRESENT | PAGE_IS_SWAPPED | PAGE_IS_PFNZERO)
/*
 * dirty_scan_fd, and *ret_known (malloc'ed, sorted; ret_known may be
 * NULL) gets what the same walk saw of the written pages under tracking:
 * page_regions whose categories are DIRTY_KNOWN bits (none: discarded, no
 * data), at no extra walk (finding PAGE_IS_FILE would cost one: a written
 * page of a file mapping is anonymous unless a discard gave it back).
 * Written pages not under tracking (reported whole) are not in it.
 */
int dirty_scan_known(int pagemap_fd, const struct dirty_run *ranges, size_t n, bool rearm,
		     struct dirty_run **ret, size_t *ret_n, struct page_region **ret_known,
		     size_t *ret_nk);

/* Total bytes of runs. */
uint64_t dirty_bytes(const struct dirty_run *runs, size_t n);

#endif
