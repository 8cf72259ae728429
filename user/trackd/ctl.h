/* SPDX-License-Identifier: MIT */
/*
 * The control socket of a running trackd: LOGDIR/trackd.sock, a
 * SOCK_SEQPACKET Unix socket. A request is one text message ("status",
 * "mark", "stop", "uffd TGID", "adopt TGID"); the answer is one message
 * whose first line is "ok" or "error: why", then the command's output.
 * "uffd TGID" answers with the process's userfaultfd attached (SCM_RIGHTS),
 * for the dump to register new mappings; "adopt TGID" comes with one
 * attached, created by the dump in a process it holds seized (trackd
 * cannot seize it then), and arms that unarmed process with it; "stop" is
 * answered once the log is closed. Only the daemon's own UID (or root) is
 * served.
 */
#ifndef CKPT_TRACKD_CTL_H
#define CKPT_TRACKD_CTL_H

#include <stddef.h>

#define CTL_SOCK	"trackd.sock"
#define CTL_LOCK	"trackd.lock"
#define CTL_MAX_MSG	(256 << 10)	/* an answer; longer lists are cut with "..." */

/*
 * Bind (listen) or connect the control socket in the log directory dirfd.
 * Paths go through /proc/self/fd/DIRFD, so a long LOGDIR is no problem.
 * Return the socket fd or -errno (logged).
 */
int ctl_listen(int dirfd);
int ctl_connect(int dirfd);

/*
 * Send msg (with fd attached when fd >= 0) on sk. 0 or -errno.
 */
int ctl_send(int sk, const char *msg, size_t len, int fd);

/*
 * Receive one message into buf (NUL-terminated, at most len - 1 bytes);
 * an attached fd goes to *ret_fd (-1 when none; ret_fd NULL closes any).
 * Returns the length or -errno.
 */
long ctl_recv(int sk, char *buf, size_t len, int *ret_fd);

#endif
