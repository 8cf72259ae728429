// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "pstree.h"

struct pid_idx {
	pid_t pid;
	size_t idx;
};

static int pid_idx_cmp(const void *a, const void *b)
{
	const struct pid_idx *x = a, *y = b;

	return (x->pid > y->pid) - (x->pid < y->pid);
}

static long find(const struct pid_idx *ix, size_t nr, pid_t pid)
{
	struct pid_idx key = { pid, 0 };
	const struct pid_idx *r = bsearch(&key, ix, nr, sizeof(*ix), pid_idx_cmp);

	return r ? (long)r->idx : -1;
}

static int bad(struct pstree_err *e, size_t idx, const char *field, const char *fmt, ...)
{
	va_list ap;

	e->idx = idx;
	e->field = field;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

int pstree_check(struct pstree_node *n, size_t nr, bool outside_ok, struct pstree_err *e)
{
	struct pid_idx *ix = malloc((nr + 1) * sizeof(*ix));
	int err = 0;

	if (!ix)
		return -ENOMEM;
	for (size_t i = 0; i < nr; i++)
		ix[i] = (struct pid_idx){ n[i].pid, i };
	qsort(ix, nr, sizeof(*ix), pid_idx_cmp);
	for (size_t i = 1; i < nr; i++)
		if (ix[i].pid == ix[i - 1].pid) {
			err = bad(e, ix[i].idx, "pid", "PID %d is listed twice", ix[i].pid);
			goto out;
		}

	for (size_t i = 0; i < nr && !err; i++) {
		struct pstree_node *t = &n[i];
		long p = t->ppid ? find(ix, nr, t->ppid) : -1;

		if (t->ppid && p < 0) {
			err = bad(e, i, "ppid", "the parent %d of task %d is not in the tree", t->ppid,
				  t->pid);
			break;
		}
		if (t->ppid && (size_t)p >= i) {
			err = bad(e, i, "ppid", "the parent %d of task %d is not listed before it",
				  t->ppid, t->pid);
			break;
		}
		if (p >= 0 && n[p].zombie) {
			err = bad(e, i, "ppid", "the parent %d of task %d is a zombie", t->ppid, t->pid);
			break;
		}
		t->parent = p;

		/* Sessions: 0 stands for any session outside the dump (ckpt's on restore). */
		pid_t sid = find(ix, nr, t->sid) >= 0 ? t->sid : 0;
		t->sid_outside = !sid;
		t->inherited_sid = p < 0 ? 0 : n[p].sid_outside ? 0 : n[p].sid;
		t->early = false;
		if (!sid && !outside_ok) {
			err = bad(e, i, "sid",
				  "the session leader %d of task %d is not in the dump; --shell-job puts such tasks into ckpt's session",
				  t->sid, t->pid);
			break;
		}
		if (t->sid == t->pid) {
			if (t->pgid != t->pid)
				err = bad(e, i, "pgid", "session leader %d is in process group %d", t->pid,
					  t->pgid);
		} else if (sid != t->inherited_sid) {
			/* A session leader may have forked this child before its setsid. */
			if (p >= 0 && n[p].sid == n[p].pid && n[p].inherited_sid == sid)
				t->early = true;
			else
				err = bad(e, i, "sid",
					  "task %d cannot be put back into session %d: it is not the session of its parent %d",
					  t->pid, t->sid, t->ppid);
		}
		if (err)
			break;

		/* Groups. */
		if (t->pgid == t->pid)
			continue;
		long l = find(ix, nr, t->pgid);
		t->pgid_outside = l < 0;
		if (l < 0) {
			if (!outside_ok)
				err = bad(e, i, "pgid",
					  "the process group leader %d of task %d is not in the dump; --shell-job puts such tasks into ckpt's group",
					  t->pgid, t->pid);
			else if (sid)
				err = bad(e, i, "pgid",
					  "task %d is in process group %d from outside the dump but in session %d of the dump",
					  t->pid, t->pgid, t->sid);
		} else if (n[l].pgid != n[l].pid) {
			err = bad(e, i, "pgid",
				  "process group %d of task %d has no leader: task %d moved to group %d; not supported",
				  t->pgid, t->pid, n[l].pid, n[l].pgid);
		} else if (n[l].sid != t->sid) {
			err = bad(e, i, "pgid", "task %d is in group %d of another session (%d, not %d)",
				  t->pid, t->pgid, n[l].sid, t->sid);
		}
	}
out:
	free(ix);
	return err;
}
