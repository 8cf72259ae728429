/* SPDX-License-Identifier: MIT */
/*
 * Setting up written-page tracking (user/lib/dirty.h) for a process: the
 * userfaultfd is created by the process itself, through a remote system
 * call while it is seized, taken out with pidfd_getfd and closed in the
 * process again, so no fd of ours stays in its table. Used by trackd at
 * attach time and by the dump at each checkpoint.
 */
#ifndef CKPT_WPTRACK_H
#define CKPT_WPTRACK_H

#include <stddef.h>
#include <sys/types.h>

#include "dirty.h"
#include "infect.h"

/*
 * Create a uffd inside process pid and return our copy (API done, O_CLOEXEC),
 * or -errno (logged): look at it first, then seize its thread-group leader
 * (after infect_init()), take, release. A process that already uses
 * userfaultfd (an fd of that kind, or a mapping registered with one) is
 * refused without seizing anything: -EBUSY and a message naming it (tracking
 * must never interfere), and -EAGAIN when one of its
 * threads is in uninterruptible sleep ('D': a vfork parent waiting for its
 * child, or I/O), which cannot take the seize's stop (try again later).
 * The process runs on, or stays stopped, as before, whatever happened.
 */
int wptrack_open(pid_t pid);

/*
 * The same for t, a thread-group leader the caller has seized already
 * (infect_seize(), the dump's seize): refused with -EBUSY and a message
 * when the process uses userfaultfd itself, else the uffd is created in
 * it, taken and closed there again. Returns our copy (API done,
 * O_CLOEXEC) or -errno (logged). t stays seized; its registers are put
 * back on infect_release() as after any remote call.
 */
int wptrack_take_seized(struct infect_task *t);

/*
 * Register every mapping of pid that can be written and tracked (private
 * mappings, read-only ones included, and shmem; not shared file mappings,
 * the vDSO area, AIO rings, device memory, PROT_NONE or MAP_NORESERVE
 * reservations over 1 GiB) with uffd, and arm it. *ret_armed gets the
 * ranges now under tracking (malloc'ed, sorted, merged; NULL when none); a
 * mapping left out, or refused by the kernel (debug log), counts as always
 * written. On failure nothing stays registered. 0 or -errno (logged).
 */
int wptrack_arm(pid_t pid, int uffd, struct dirty_run **ret_armed, size_t *ret_n);

/*
 * The same for the mappings of an armed process that are not registered
 * yet (created or moved since): VMAs without VmFlags "uw". What was armed
 * before keeps its written pages. *ret_armed gets only the new ranges.
 */
int wptrack_arm_new(pid_t pid, int uffd, struct dirty_run **ret_armed, size_t *ret_n);

#endif
