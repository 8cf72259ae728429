/* SPDX-License-Identifier: MIT */
/*
 * Chains of images: an incremental dump (--prev-images) is a directory
 * whose inventory names its parent, down to a full dump. Only pages are
 * shared along a chain (PE_PREV pagemap entries: "the same process's
 * pages at the same addresses one level down"); every other image of the
 * top directory is complete.
 */
#ifndef CKPT_PAGECHAIN_H
#define CKPT_PAGECHAIN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "inventory.pb-c.h"

#define CHAIN_MAX_LEVELS 1024

/* An open chain: level 0 is the top (the directory named), n - 1 the full dump. */
struct chain {
	size_t n;
	int *dirfds;
	char **paths;		/* as reached (parent_images joined to its child's path), for messages */
	InventoryEntry **invs;	/* NULL at level 0 of chain_open_one() */
};

/*
 * Open the images at path (dirfd: already open, or -1 to open path) and
 * follow parent_images down to a dump without one, checking every link
 * before anything else uses the chain: the parent directory exists and
 * holds a complete dump (inventory.img), its dump_id is the child's
 * parent_dump_id, its changelog_seq the child's parent_changelog_seq, its
 * changelog identity (boot ID, start) and root PIDs the child's; no level
 * appears twice; at most CHAIN_MAX_LEVELS. A relative parent_images is
 * relative to the child's directory. 0 or -errno, logged naming the
 * directory and the inventory field that does not match. The chain owns
 * the fds (dirfd included) until chain_close().
 */
int chain_open(int dirfd, const char *path, struct chain *c);
/*
 * A chain of just the directory at dirfd, whose inventory is not read (it
 * may have none: `ckpt show` of images written by tests). Owns dirfd, even
 * on failure. 0 or -ENOMEM.
 */
int chain_open_one(int dirfd, const char *path, struct chain *c);
/* Closes the fds and frees everything; c is empty after it (NULL-safe on an empty chain). */
void chain_close(struct chain *c);

/* Where a run of a process's pages comes from. */
struct page_src {
	uint64_t vaddr, len;	/* page aligned */
	uint32_t level;		/* chain level whose pages file holds the data */
	uint32_t flags;		/* PE_PRESENT (data at off), or PE_PARENT (level 0 only: no data) */
	uint64_t off;		/* byte offset in that level's pages-PID.img */
};

/*
 * The pages of process pid through the chain, as one list sorted by
 * vaddr, disjoint, adjacent runs of the same source merged: the level-0
 * pagemap with each PE_PREV run replaced by what level 1 has at those
 * addresses, recursively. Errors (logged naming the level's directory,
 * file, entry and field): a pagemap out of order or overlapping; a
 * PE_PREV run with no level below, or a page of it that the level below
 * has no data for (absent there, or PE_PARENT there); a missing pagemap
 * one level down for a PE_PREV; a pages file whose size is not what its
 * pagemap describes. A process without pagemap-PID.img at level 0 has no
 * pages (0 runs): callers that need it check that themselves. Level 0's
 * pages file is checked against its pagemap always (it may be missing
 * when the pagemap has no data), a deeper level's when its data is used.
 * Error messages name level 0's files without a directory (the one the
 * user named), deeper levels' with theirs. *ret is malloc'ed (NULL when
 * n is 0). 0 or -errno.
 */
int chain_resolve(struct chain *c, pid_t pid, struct page_src **ret, size_t *ret_n);

/*
 * chain_resolve() given what level 1 resolves to (below: a previous
 * chain_resolve() of the directory at level 1, its levels one less): only
 * level 0's pagemap is read. For an incremental restore, which resolves
 * every new top against the one before.
 */
int chain_resolve_on(struct chain *c, pid_t pid, const struct page_src *below, size_t nbelow,
		     struct page_src **ret, size_t *ret_n);

/* pages-PID.img of level, opened O_RDONLY|O_CLOEXEC, or -errno (logged). */
int chain_pages_fd(struct chain *c, uint32_t level, pid_t pid);

#endif
