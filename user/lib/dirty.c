// SPDX-License-Identifier: MIT
#define LOG_PREFIX "dirty: "
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/userfaultfd.h>

#include "dirty.h"
#include "kcompat.h"
#include "log.h"

/* page_regions per PAGEMAP_SCAN call; a walk that fills them goes on from walk_end. */
#define DIRTY_VEC 512

struct dirty_out {
	struct dirty_run *runs;
	size_t n, cap;
	/* The first walk's regions with their PRESENT/SWAPPED bits, when asked for. */
	struct page_region *known;
	size_t nk, capk;
};

int dirty_uffd_api(int uffd)
{
	/*
	 * WP_HUGETLBFS_SHMEM is needed to register shmem and hugetlbfs; ask
	 * for it, then without it. A refused UFFDIO_API leaves the context
	 * uninitialised (the features are only committed on success), so the
	 * second try is allowed.
	 */
	static const uint64_t tries[] = {
		UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED |
			UFFD_FEATURE_WP_HUGETLBFS_SHMEM,
		UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED,
	};

	for (size_t i = 0; i < sizeof(tries) / sizeof(tries[0]); i++) {
		struct uffdio_api api = { .api = UFFD_API, .features = tries[i] };

		if (ioctl(uffd, UFFDIO_API, &api) == 0) {
			pr_debug("uffd %d: features %#llx", uffd, (unsigned long long)api.features);
			return 0;
		}
		if (errno != EINVAL) {
			int err = -errno;
			pr_debug("UFFDIO_API on uffd %d: %s", uffd, strerror(-err));
			return err;
		}
	}
	pr_debug("uffd %d: the kernel offers no async write-protect", uffd);
	return -EOPNOTSUPP;
}

int dirty_register(int uffd, uint64_t start, uint64_t end)
{
	struct uffdio_register reg = {
		.range = { .start = start, .len = end - start },
		.mode = UFFDIO_REGISTER_MODE_WP,
	};

	if (ioctl(uffd, UFFDIO_REGISTER, &reg) < 0) {
		int err = -errno;
		pr_debug("cannot register %#llx-%#llx for write-protect: %s",
			 (unsigned long long)start, (unsigned long long)end, strerror(-err));
		return err;
	}
	return 0;
}

static int dirty_out_add(struct dirty_out *o, uint64_t start, uint64_t end)
{
	if (o->n && o->runs[o->n - 1].end == start) {
		o->runs[o->n - 1].end = end;
		return 0;
	}
	if (o->n == o->cap) {
		size_t cap = o->cap ? o->cap * 2 : 64;
		struct dirty_run *r = realloc(o->runs, cap * sizeof(*r));

		if (!r)
			return -ENOMEM;
		o->runs = r;
		o->cap = cap;
	}
	o->runs[o->n].start = start;
	o->runs[o->n].end = end;
	o->n++;
	return 0;
}

/*
 * One PAGEMAP_SCAN walk over [start, end), going on from walk_end while the
 * output vector comes back full. Pages whose categories, xor inverted,
 * have every bit of mask set are added to o.
 */
static int dirty_known_add(struct dirty_out *o, const struct page_region *r)
{
	if (o->nk == o->capk) {
		size_t cap = o->capk ? o->capk * 2 : 64;
		struct page_region *n = realloc(o->known, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		o->known = n;
		o->capk = cap;
	}
	o->known[o->nk] = *r;
	o->known[o->nk++].categories &= DIRTY_KNOWN;
	return 0;
}

static int dirty_walk(int fd, uint64_t start, uint64_t end, uint64_t flags, uint64_t inverted,
		      uint64_t mask, struct page_region *vec, struct dirty_out *o, bool known)
{
	while (start < end) {
		struct pm_scan_arg arg = {
			.size = sizeof(arg),
			.flags = flags,
			.start = start,
			.end = end,
			.vec = (uintptr_t)vec,
			.vec_len = DIRTY_VEC,
			.category_inverted = inverted,
			.category_mask = mask,
			.return_mask = mask | (known ? DIRTY_KNOWN : 0),
		};
		long n = ioctl(fd, PAGEMAP_SCAN, &arg);

		if (n < 0) {
			int err = errno == ENOTTY ? -EOPNOTSUPP : -errno;
			pr_debug("PAGEMAP_SCAN %#llx-%#llx (flags %#llx, mask %#llx): %s",
				 (unsigned long long)start, (unsigned long long)end,
				 (unsigned long long)flags, (unsigned long long)mask, strerror(-err));
			return err;
		}
		for (long i = 0; i < n; i++) {
			int err = dirty_out_add(o, vec[i].start, vec[i].end);

			if (!err && known)
				err = dirty_known_add(o, &vec[i]);
			if (err)
				return err;
		}
		/* walk_end is end once the walk is complete; anything else must advance. */
		if (arg.walk_end <= start || arg.walk_end > end) {
			pr_debug("PAGEMAP_SCAN %#llx-%#llx stopped at %#llx", (unsigned long long)start,
				 (unsigned long long)end, (unsigned long long)arg.walk_end);
			return -EIO;
		}
		start = arg.walk_end;
	}
	return 0;
}

static int dirty_run_cmp(const void *a, const void *b)
{
	const struct dirty_run *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/* Sort and merge overlapping or touching runs in place. */
static void dirty_out_merge(struct dirty_out *o)
{
	size_t k = 0;

	if (!o->n)
		return;
	qsort(o->runs, o->n, sizeof(*o->runs), dirty_run_cmp);
	for (size_t i = 1; i < o->n; i++) {
		if (o->runs[i].start <= o->runs[k].end) {
			if (o->runs[i].end > o->runs[k].end)
				o->runs[k].end = o->runs[i].end;
		} else {
			o->runs[++k] = o->runs[i];
		}
	}
	o->n = k + 1;
}

int dirty_scan_fd(int pagemap_fd, const struct dirty_run *ranges, size_t n, bool rearm,
		  struct dirty_run **ret, size_t *ret_n)
{
	return dirty_scan_known(pagemap_fd, ranges, n, rearm, ret, ret_n, NULL, NULL);
}

int dirty_scan_known(int pagemap_fd, const struct dirty_run *ranges, size_t n, bool rearm,
		     struct dirty_run **ret, size_t *ret_n, struct page_region **ret_known,
		     size_t *ret_nk)
{
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	struct dirty_out o = { 0 };
	struct page_region *vec;
	int err = 0;

	for (size_t i = 0; i < n; i++) {
		if (ranges[i].start >= ranges[i].end || (ranges[i].start | ranges[i].end) & (page - 1) ||
		    (i && ranges[i].start < ranges[i - 1].end)) {
			pr_debug("bad scan range %zu: %#llx-%#llx", i,
				 (unsigned long long)ranges[i].start, (unsigned long long)ranges[i].end);
			return -EINVAL;
		}
	}
	vec = malloc(DIRTY_VEC * sizeof(*vec));
	if (!vec)
		return -ENOMEM;
	for (size_t i = 0; i < n && !err; i++) {
		/*
		 * Under tracking, WRITTEN means "present and not uffd-wp
		 * protected", or a none pte without a uffd-wp marker: a page
		 * never armed, or discarded (MADV_DONTNEED on anonymous memory
		 * drops the marker with the page). Arming with WP_MATCHING puts
		 * a marker into every such hole (WP_UNPOPULATED), so a
		 * never-touched page reads clean from then on. Measured on 6.18.
		 * WPALLOWED in the mask keeps VMAs without async WP out: there
		 * every page reads WRITTEN, populated or not. WP_MATCHING skips
		 * those VMAs silently (CHECK_WPASYNC would fail with EPERM after
		 * re-arming the VMAs before, losing their reports).
		 */
		err = dirty_walk(pagemap_fd, ranges[i].start, ranges[i].end,
				 rearm ? PM_SCAN_WP_MATCHING : 0, 0,
				 PAGE_IS_WRITTEN | PAGE_IS_WPALLOWED, vec, &o, ret_known != NULL);
		/*
		 * What is mapped but not under tracking (never registered, moved
		 * by mremap, inherited through fork, refused by the kernel) must
		 * be copied whole. Unmapped gaps and VM_PFNMAP VMAs are not
		 * walked, so they are not reported. This walk comes second: a VMA
		 * that mremap moves away from a tracked range between the two
		 * walks has been harvested at its old place and is found here at
		 * its new one.
		 */
		if (!err)
			err = dirty_walk(pagemap_fd, ranges[i].start, ranges[i].end, 0,
					 PAGE_IS_WPALLOWED, PAGE_IS_WPALLOWED, vec, &o, false);
	}
	free(vec);
	if (err) {
		free(o.runs);
		free(o.known);
		return err;
	}
	if (ret_known) {
		*ret_known = o.known;
		*ret_nk = o.nk;
	}
	dirty_out_merge(&o);
	if (!o.n) {
		free(o.runs);
		o.runs = NULL;
	}
	*ret = o.runs;
	*ret_n = o.n;
	return 0;
}

int dirty_scan(pid_t pid, const struct dirty_run *ranges, size_t n, bool rearm,
	       struct dirty_run **ret, size_t *ret_n)
{
	char path[64];
	int fd, err;

	snprintf(path, sizeof(path), "/proc/%d/pagemap", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		pr_debug("cannot open %s: %s", path, strerror(-err));
		return err;
	}
	err = dirty_scan_fd(fd, ranges, n, rearm, ret, ret_n);
	close(fd);
	return err;
}

uint64_t dirty_bytes(const struct dirty_run *runs, size_t n)
{
	uint64_t sum = 0;

	for (size_t i = 0; i < n; i++)
		sum += runs[i].end - runs[i].start;
	return sum;
}
