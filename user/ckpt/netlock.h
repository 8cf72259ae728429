/* SPDX-License-Identifier: MIT */
#ifndef CKPT_NETLOCK_H
#define CKPT_NETLOCK_H

#include <stdbool.h>
#include <stddef.h>

#include "files.pb-c.h"

/*
 * Drop incoming packets to the TCP sockets (listeners, established) among
 * files, in a new nftables table `name`. 0 when locked, 1 when there was
 * nothing to lock, -ENOENT without nft (warned), other -errno (logged).
 */
int netlock_lock(FileEntry **files, size_t nr, const char *name);
/* Delete the table. 0 or -errno (a warning is logged). */
int netlock_unlock(const char *name);
/* Whether the table is there (quietly). */
bool netlock_exists(const char *name);

#endif
