/* SPDX-License-Identifier: MIT */
/*
 * A private directory in RAM, for images that must not touch a disk: a
 * helper child unshares its mount namespace, mounts a tmpfs there and
 * waits. The owner reaches the tmpfs as /proc/HELPER/root/MNT (path) and
 * through dirfd; nobody else sees it in their mount tree. The helper dies
 * with its owner (PR_SET_PDEATHSIG) or at memdir_close(), and the tmpfs
 * with it once the last fd into it is closed. Only the helper changes
 * namespace: the owner and anything it forks stay where they are.
 */
#ifndef CKPT_MEMDIR_H
#define CKPT_MEMDIR_H

#include <stdint.h>
#include <sys/types.h>

struct memdir {
	pid_t pid;		/* the helper, 0 when closed */
	int sk;			/* our end of its life line: it exits when this closes */
	int dirfd;		/* the tmpfs root, O_DIRECTORY */
	uint64_t size;		/* the tmpfs size limit in bytes */
	char path[64];		/* "/proc/PID/root/MNT" */
};

/*
 * Start the helper and mount a tmpfs of at most size bytes (0: half of
 * RAM). Needs CAP_SYS_ADMIN (-EPERM otherwise). 0 or -errno (logged).
 * ret is written only on success.
 */
int memdir_open(uint64_t size, struct memdir *ret);
/* End the helper (and so the tmpfs) and reap it; NULL-safe, idempotent. */
void memdir_close(struct memdir *m);
/* Bytes the tmpfs can still take, or 0 on error. */
uint64_t memdir_free_bytes(const struct memdir *m);

#endif
