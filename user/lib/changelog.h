/* SPDX-License-Identifier: MIT */
/*
 * The trackd changelog (proto/changelog.proto): an append-only file of
 * ChangelogEntry records with the image framing (magic, version, then
 * length + CRC-32C + message per record). Only trackd writes it. A
 * reader stops at a torn tail (a last record cut short or failing its
 * CRC) with a warning, and rejects a bad record followed by more data.
 */
#ifndef CKPT_CHANGELOG_H
#define CKPT_CHANGELOG_H

#include <stdbool.h>
#include <stdint.h>

#include "changelog.pb-c.h"

#define CHANGELOG_FILE		"changelog.img"
#define CHANGELOG_FORMAT	1
#define CHANGELOG_MAX_RECORD	(1u << 20)	/* no record is larger */

/* ChangelogEntry.kind. 1..15 are bpf/track.h's enum track_kind. */
enum cl_kind {
	CL_FORK = 1,
	CL_EXIT,
	CL_EXEC,
	CL_MMAP,
	CL_MUNMAP,
	CL_MREMAP,
	CL_MPROTECT,
	CL_BRK,
	CL_MADVISE,
	CL_SHMAT,
	CL_SHMDT,
	CL_IO_SETUP,
	CL_IO_DESTROY,
	CL_SETSID,
	CL_SETPGID,
	/* Written by trackd itself. */
	CL_START = 32,	/* header: format, roots, boot_id, realtime_ns, pidns_ino */
	CL_GAP,		/* trackd started again on this log: header fields; records may be
			 * missing before it, so every task counts as changed */
	CL_ATTACH,	/* a task found tracked at start (pid, tgid, ppid) */
	CL_LOST,	/* count records dropped; tgids affected (none: all) */
	CL_MARK,	/* a checkpoint marker (trackd mark); tgids tracked then */
	CL_ARMED,	/* tgid's ranges are under write tracking from here */
	CL_UNARMED,	/* tgid has no write tracking (reason): all its memory is dirty */
	CL_STOP,	/* trackd stopped cleanly; tgids still tracked */
	CL_KIND_MAX = CL_STOP,
};

/* "fork", "mmap", ... "stop"; "?" for an unknown kind. */
const char *cl_kind_name(uint32_t kind);

struct cl_writer;

/*
 * Open the log in directory dirfd for appending, creating it when missing.
 * An existing log is checked (magic, version, records); a torn tail is cut
 * off (warning with the byte count). *ret_next_seq is the seq the next
 * record gets (1 for a new log), *ret_clean whether the last record is a
 * STOP (false for a new log). NULL with errno set; logs why.
 */
struct cl_writer *cl_writer_open(int dirfd, uint64_t *ret_next_seq, bool *ret_clean);

/*
 * Append e (buffered), giving it the next seq (written into e->seq).
 * Returns the seq, or -errno (logged) once writing failed.
 */
int64_t cl_append(struct cl_writer *w, ChangelogEntry *e);

/* Write what is buffered; with sync, fdatasync too. 0 or -errno (logged). */
int cl_flush(struct cl_writer *w, bool sync);

/* Bytes in the log, flushed or not. */
uint64_t cl_size(const struct cl_writer *w);

/* Flush, fsync and close. 0 or -errno (logged). NULL-safe. */
int cl_writer_close(struct cl_writer *w);

struct cl_reader;

/*
 * Open the log in directory dirfd for reading (LOGDIR/changelog.img).
 * Checks magic and version. NULL with errno set; logs why.
 */
struct cl_reader *cl_reader_open(int dirfd);

/*
 * Next record: 1 with *ret set (free with cl_entry_free), 0 at the end
 * (a torn tail ends the log: warned once, see cl_reader_torn), or -EINVAL
 * for a corrupt record (logged naming the file, record and field). Every
 * record passes field checks: known kind, seq one more than the last,
 * lengths, ranges in pairs with start < end, tgids of a sane count.
 */
int cl_next(struct cl_reader *r, ChangelogEntry **ret);

/*
 * Go on reading at byte off of the log, where the record of seq starts
 * (what cl_size() said before the writer appended it). Nothing is checked
 * until cl_next(), which then expects exactly seq there (a wrong offset
 * gives -EINVAL, logged). 0 or -EINVAL for an offset inside the header.
 */
int cl_reader_seek(struct cl_reader *r, uint64_t off, uint64_t seq);

/*
 * Reading a log that trackd is still writing: the end, or a torn tail
 * (the writer in the middle of a record), is where it is for now, not
 * worth a warning, and the next cl_next() tries again from there.
 */
void cl_reader_follow(struct cl_reader *r);

/* Bytes of a torn tail the reader stopped at, 0 if none. */
uint64_t cl_reader_torn(const struct cl_reader *r);

const char *cl_reader_path(const struct cl_reader *r);

void cl_entry_free(ChangelogEntry *e);
void cl_reader_close(struct cl_reader *r);

#endif
