/* SPDX-License-Identifier: MIT */
/*
 * Images over one stream socket (`ckpt migrate` to `ckpt receive`).
 *
 * Everything is a frame: a fixed 24-byte header (struct stream_frame,
 * little-endian), then name_len bytes of name or text, then, for a FILE
 * frame only, arg bytes of file contents. A round is
 *
 *	ROUND (arg: round number, flags: STREAM_F_*, name: its directory)
 *	FILE  (arg: size, name: file name, then the bytes), one per file
 *	END   (arg: how many FILE frames)
 *
 * and the control messages are single frames: HELLO (arg: STREAM_VERSION,
 * both ways first), ACK (arg: the round applied), READY, GO, RUNNING,
 * ENDED (arg: 0 or the errno the source ended with), ERROR (arg: errno,
 * name: why) and PING (a busy peer is alive; skipped by every reader).
 *
 * Every function here logs its own errors, naming the frame and field.
 * Waits are bounded by the timeout of stream_setup() (no progress for
 * that long is -ETIMEDOUT) and end at once (-EINTR) when the cancel fd
 * given to stream_setup() becomes readable.
 */
#ifndef CKPT_STREAM_H
#define CKPT_STREAM_H

#include <stdbool.h>
#include <stdint.h>

#define STREAM_MAGIC	0x474d4b43u	/* "CKMG" */
#define STREAM_VERSION	1
#define STREAM_NAME_MAX	255		/* a file or directory name */
#define STREAM_TEXT_MAX	4096		/* an ERROR's text */
#define STREAM_FILES_MAX 65536		/* FILE frames in one round */
#define STREAM_PING_MS	5000		/* how often a busy peer says it is alive, at most */

enum stream_type {
	STREAM_HELLO = 1,
	STREAM_ROUND,
	STREAM_FILE,
	STREAM_END,
	STREAM_ACK,
	STREAM_READY,
	STREAM_GO,
	STREAM_RUNNING,
	STREAM_ENDED,
	STREAM_ERROR,
	STREAM_PING,
	STREAM_TYPE_MAX = STREAM_PING,
};

/* ROUND flags. */
#define STREAM_F_DELTA	0x1	/* a delta of the previous round's images */
#define STREAM_F_FINAL	0x2	/* the last round: the source is frozen */
#define STREAM_F_ALL	(STREAM_F_DELTA | STREAM_F_FINAL)

/* The frame header as it goes on the wire (every field little-endian). */
struct stream_frame {
	uint32_t magic;
	uint16_t type;
	uint16_t flags;		/* ROUND only, else 0 */
	uint32_t name_len;
	uint32_t reserved;	/* 0 */
	uint64_t arg;
};
_Static_assert(sizeof(struct stream_frame) == 24, "stream_frame is 24 bytes on the wire");

/* What a receiver accepts in one round. */
struct stream_limits {
	uint64_t max_file;	/* bytes in one file */
	uint64_t max_round;	/* bytes in all files of the round */
	uint32_t max_files;	/* at most STREAM_FILES_MAX */
};

/* A round sent or received. */
struct stream_round {
	uint64_t round;
	uint32_t flags;
	char dir[STREAM_NAME_MAX + 1];
	uint64_t bytes;		/* file contents */
	uint32_t files;
};

/*
 * Make sk non-blocking, set keepalive (and TCP_NODELAY, TCP_USER_TIMEOUT
 * on TCP), and remember timeout_ms and cancel_fd (-1: none) for every
 * wait on it from here on. 0 or -errno.
 */
int stream_setup(int sk, int timeout_ms, int cancel_fd);
/* Stop (-1) or start watching a cancel fd again from here on. */
void stream_set_cancel_fd(int cancel_fd);

/* A control frame: arg and, for ERROR, text (may be NULL). */
int stream_send_msg(int sk, enum stream_type type, uint64_t arg, const char *text);
/* An ERROR frame with err (positive errno) and text, best effort: failures log at debug level. */
int stream_send_error(int sk, int err, const char *text);
/*
 * Wait for a frame of type want (PINGs skipped) and return its arg in
 * *ret_arg (may be NULL). An ERROR frame instead is logged with the
 * peer's text and gives -EREMOTEIO; anything else is -EPROTO.
 */
int stream_recv_msg(int sk, enum stream_type want, uint64_t *ret_arg);

/*
 * Send every regular file of dir (under parent_dirfd) as round `round`
 * named dir, with flags. Big files go by sendfile(). ret (may be NULL)
 * gets what was sent.
 */
int stream_send_round(int sk, uint64_t round, uint32_t flags, int parent_dirfd, const char *dir,
		      struct stream_round *ret);
/*
 * Receive one round into a new directory (0700, files 0600) under
 * parent_dirfd, named as the ROUND frame says; bytes go socket -> pipe
 * -> file by splice(). On failure the directory and what was received
 * into it are removed. PINGs before the ROUND are skipped; an ERROR
 * frame is -EREMOTEIO (logged with the peer's text).
 */
int stream_recv_round(int sk, int parent_dirfd, const struct stream_limits *lim,
		      struct stream_round *ret);

/*
 * While the caller is busy (a dump, a restore step), a thread sends a
 * PING on sk every STREAM_PING_MS, or a quarter of the timeout if less, so that the peer's timeout measures
 * silence, not work. One at a time; stop is idempotent. Sending is
 * serialized with the caller's frames. 0 or -errno.
 */
int stream_ping_start(int sk);
void stream_ping_stop(void);

/* Name checks shared with the receiver: 0 or -EINVAL (logged, naming what). */
int stream_check_name(const char *name, size_t len, const char *what);

#endif
