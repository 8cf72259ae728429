/* SPDX-License-Identifier: MIT */
/*
 * The shape of a process tree and whether fork, setsid and setpgid can
 * build it again. Dump checks before it writes anything; restore checks
 * pstree.img before it creates any task.
 */
#ifndef CKPT_PSTREE_H
#define CKPT_PSTREE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct pstree_node {
	pid_t pid, ppid, pgid, sid;	/* ppid 0: a root */
	bool zombie;
	/* Filled in by pstree_check(). */
	int parent;		/* index of the parent, -1 for a root */
	pid_t inherited_sid;	/* the session it is forked into; 0: ckpt's */
	bool early;		/* forked by its parent before the parent's setsid */
	bool sid_outside;	/* leaders outside the dump: ckpt's session / group */
	bool pgid_outside;
};

struct pstree_err {
	size_t idx;		/* the node that is wrong */
	const char *field;	/* "ppid", "sid", "pgid", "pid" */
	char msg[256];
};

/*
 * Nodes are in pstree order (every parent before its children). A session
 * must be led by the task itself or inherited through fork; a group must
 * be led by the task itself or by a task of the dump in the same session.
 * A leader outside the dump is allowed only with outside_ok (--shell-job):
 * on restore such a task joins ckpt's session or group. Returns 0, or
 * -EINVAL with *ret_err filled.
 */
int pstree_check(struct pstree_node *n, size_t nr, bool outside_ok, struct pstree_err *ret_err);

#endif
