// SPDX-License-Identifier: MIT
/* Images over one stream socket: see stream.h. */
#define LOG_PREFIX "stream: "
#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "stream.h"

#define STREAM_PIPE_SIZE	(1 << 20)
#define STREAM_CHUNK		(1 << 30)	/* at most per sendfile()/splice() call */

static int stream_timeout_ms = 60000;
static int stream_cancel_fd = -1;
/* Frames of the caller and the PING thread never interleave. */
static pthread_mutex_t stream_send_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const type_names[] = {
	[STREAM_HELLO] = "HELLO", [STREAM_ROUND] = "ROUND", [STREAM_FILE] = "FILE",
	[STREAM_END] = "END", [STREAM_ACK] = "ACK", [STREAM_READY] = "READY",
	[STREAM_GO] = "GO", [STREAM_RUNNING] = "RUNNING", [STREAM_ENDED] = "ENDED",
	[STREAM_ERROR] = "ERROR", [STREAM_PING] = "PING",
};

static const char *type_name(unsigned type)
{
	return type >= STREAM_HELLO && type <= STREAM_TYPE_MAX ? type_names[type] : "unknown";
}

int stream_setup(int sk, int timeout_ms, int cancel_fd)
{
	int one = 1, fl = fcntl(sk, F_GETFL);

	if (fl < 0 || fcntl(sk, F_SETFL, fl | O_NONBLOCK) < 0) {
		int err = -errno;
		pr_perror("cannot make the connection non-blocking");
		return err;
	}
	stream_timeout_ms = timeout_ms > 0 ? timeout_ms : 60000;
	stream_cancel_fd = cancel_fd;
	(void)setsockopt(sk, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));

	int proto = 0;
	socklen_t len = sizeof(proto);
	if (getsockopt(sk, SOL_SOCKET, SO_PROTOCOL, &proto, &len) || proto != IPPROTO_TCP)
		return 0;
	/* A peer host that vanishes is seen within idle + intvl * cnt = 25 s. */
	int idle = 10, intvl = 5, cnt = 3;
	unsigned user_timeout = stream_timeout_ms;
	if (setsockopt(sk, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle)) ||
	    setsockopt(sk, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl)) ||
	    setsockopt(sk, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt)) ||
	    setsockopt(sk, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) ||
	    /* Data unacknowledged that long ends the connection (RFC 5482). */
	    setsockopt(sk, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, sizeof(user_timeout)))
		pr_debug("cannot set the TCP keepalive options: %s, ignoring", strerror(errno));
	return 0;
}

void stream_set_cancel_fd(int cancel_fd)
{
	stream_cancel_fd = cancel_fd;
}

/* Wait until sk is ready for events. what (NULL: quiet) names the step for messages. */
static int wait_io(int sk, short events, const char *what)
{
	struct pollfd p[2] = { { .fd = sk, .events = events }, { .fd = stream_cancel_fd, .events = POLLIN } };
	int n;

	do
		n = poll(p, stream_cancel_fd >= 0 ? 2 : 1, stream_timeout_ms);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		int err = -errno;
		if (what)
			pr_perror("cannot wait for the connection while %s", what);
		return err;
	}
	if (n == 0) {
		if (what)
			pr_err("nothing from the peer for %d s while %s", stream_timeout_ms / 1000, what);
		return -ETIMEDOUT;
	}
	if (stream_cancel_fd >= 0 && (p[1].revents & POLLIN)) {
		if (what)
			pr_err("interrupted while %s", what);
		return -EINTR;
	}
	return 0;
}

static int io_error(int err, const char *what)
{
	if (!what)
		return err;
	if (err == -EPIPE || err == -ECONNRESET)
		pr_err("the connection was lost while %s", what);
	else
		pr_errno(err, "connection error while %s", what);
	return err;
}

static int write_all(int sk, const void *buf, size_t len, const char *what)
{
	const char *p = buf;

	while (len) {
		ssize_t n = send(sk, p, len, MSG_NOSIGNAL);
		if (n > 0) {
			p += n;
			len -= n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			int err = wait_io(sk, POLLOUT, what);
			if (err)
				return err;
			continue;
		}
		return io_error(n < 0 ? -errno : -EPIPE, what);
	}
	return 0;
}

/*
 * Read exactly len bytes. An end of stream before the first byte of a
 * frame (at_start) is the peer closing; anywhere else a truncated frame.
 */
static int read_all(int sk, void *buf, size_t len, bool at_start, const char *what)
{
	char *p = buf;
	size_t got = 0;

	while (got < len) {
		ssize_t n = recv(sk, p + got, len - got, 0);
		if (n > 0) {
			got += n;
			continue;
		}
		if (n == 0) {
			if (at_start && !got) {
				pr_err("the peer closed the connection while %s", what);
				return -ECONNRESET;
			}
			pr_err("the stream is truncated: it ends %zu bytes into %zu while %s", got, len,
			       what);
			return -EPROTO;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN) {
			int err = wait_io(sk, POLLIN, what);
			if (err)
				return err;
			continue;
		}
		return io_error(-errno, what);
	}
	return 0;
}

/* Send one frame with its name (or text); the caller holds the send lock. */
static int send_frame_locked(int sk, unsigned type, unsigned flags, uint64_t arg, const char *name,
			     size_t name_len, const char *what)
{
	char buf[sizeof(struct stream_frame) + STREAM_TEXT_MAX];
	struct stream_frame f = {
		.magic = htole32(STREAM_MAGIC),
		.type = htole16(type),
		.flags = htole16(flags),
		.name_len = htole32(name_len),
		.arg = htole64(arg),
	};

	if (name_len > STREAM_TEXT_MAX)
		name_len = STREAM_TEXT_MAX;
	f.name_len = htole32(name_len);
	memcpy(buf, &f, sizeof(f));
	if (name_len)
		memcpy(buf + sizeof(f), name, name_len);
	return write_all(sk, buf, sizeof(f) + name_len, what);
}

int stream_send_msg(int sk, enum stream_type type, uint64_t arg, const char *text)
{
	char what[64];
	int err;

	snprintf(what, sizeof(what), "sending %s", type_name(type));
	pthread_mutex_lock(&stream_send_lock);
	err = send_frame_locked(sk, type, 0, arg, text, text ? strlen(text) : 0, what);
	pthread_mutex_unlock(&stream_send_lock);
	return err;
}

int stream_send_error(int sk, int err, const char *text)
{
	pthread_mutex_lock(&stream_send_lock);
	int ret = send_frame_locked(sk, STREAM_ERROR, 0, err, text, strlen(text), NULL);
	pthread_mutex_unlock(&stream_send_lock);
	if (ret)
		pr_debug("the peer did not get our error '%s': %s", text, strerror(-ret));
	return ret;
}

int stream_check_name(const char *name, size_t len, const char *what)
{
	if (!len || len > STREAM_NAME_MAX) {
		pr_err("%s name length %zu is out of range (1-%d)", what, len, STREAM_NAME_MAX);
		return -EINVAL;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = name[i];
		if (c == '/' || c < 0x20 || c == 0x7f) {
			pr_err("%s name '%.*s' has a bad character (0x%02x) at %zu", what, (int)len,
			       name, c, i);
			return -EINVAL;
		}
	}
	if (memmem(name, len, "..", 2) || (len == 1 && name[0] == '.')) {
		pr_err("%s name '%.*s' is not a plain name ('.' or '..')", what, (int)len, name);
		return -EINVAL;
	}
	return 0;
}

/*
 * One frame header and its name or text into name (STREAM_TEXT_MAX + 1
 * bytes, NUL-terminated); every field checked. PINGs are skipped.
 */
static int recv_frame(int sk, struct stream_frame *f, char *name, const char *what)
{
	int err;

	for (;;) {
		err = read_all(sk, f, sizeof(*f), true, what);
		if (err)
			return err;
		f->magic = le32toh(f->magic);
		f->type = le16toh(f->type);
		f->flags = le16toh(f->flags);
		f->name_len = le32toh(f->name_len);
		f->reserved = le32toh(f->reserved);
		f->arg = le64toh(f->arg);
		if (f->magic != STREAM_MAGIC) {
			pr_err("bad frame magic 0x%08x (want 0x%08x: not a ckpt stream?) while %s",
			       f->magic, STREAM_MAGIC, what);
			return -EPROTO;
		}
		if (f->type < STREAM_HELLO || f->type > STREAM_TYPE_MAX) {
			pr_err("unknown frame type %u while %s", f->type, what);
			return -EPROTO;
		}
		if (f->reserved || (f->flags && f->type != STREAM_ROUND)) {
			pr_err("%s frame: reserved %u and flags 0x%x must be 0 while %s",
			       type_name(f->type), f->reserved, f->flags, what);
			return -EPROTO;
		}
		uint32_t max = f->type == STREAM_ERROR ? STREAM_TEXT_MAX :
			       f->type == STREAM_FILE || f->type == STREAM_ROUND ? STREAM_NAME_MAX : 0;
		if (f->name_len > max) {
			pr_err("%s frame: name_len %u is over %u while %s", type_name(f->type),
			       f->name_len, max, what);
			return -EPROTO;
		}
		err = read_all(sk, name, f->name_len, false, what);
		if (err)
			return err;
		name[f->name_len] = 0;
		if (f->type != STREAM_PING)
			return 0;
	}
}

/* The peer's ERROR frame: log its text (made printable) as the reason. */
static int peer_error(const struct stream_frame *f, char *text, const char *what)
{
	for (char *p = text; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p == 0x7f)
			*p = '?';
	pr_err("the peer failed (%s) while %s: %s", strerror((int)f->arg), what,
	       *text ? text : "no reason given");
	return -EREMOTEIO;
}

int stream_recv_msg(int sk, enum stream_type want, uint64_t *ret_arg)
{
	static char text[STREAM_TEXT_MAX + 1];
	struct stream_frame f;
	char what[64];
	int err;

	snprintf(what, sizeof(what), "waiting for %s", type_name(want));
	err = recv_frame(sk, &f, text, what);
	if (err)
		return err;
	if (f.type == STREAM_ERROR && want != STREAM_ERROR)
		return peer_error(&f, text, what);
	if (f.type != want) {
		pr_err("got a %s frame while %s", type_name(f.type), what);
		return -EPROTO;
	}
	if (ret_arg)
		*ret_arg = f.arg;
	return 0;
}

static int cmp_names(const void *a, const void *b)
{
	const char *x = *(char *const *)a, *y = *(char *const *)b;
	/* The inventory says a dump is complete: it goes last. */
	bool ix = !strcmp(x, "inventory.img"), iy = !strcmp(y, "inventory.img");

	if (ix != iy)
		return ix - iy;
	return strcmp(x, y);
}

static void free_names(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/* The regular files of dirfd, sorted (inventory.img last). Closes dirfd. */
static int list_files(int dirfd, const char *dir, char ***ret, size_t *ret_n)
{
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *d = fdopendir(dirfd);
	int err = 0;

	if (!d) {
		err = -errno;
		pr_perror("cannot list '%s'", dir);
		close(dirfd);
		return err;
	}
	while ((errno = 0, de = readdir(d))) {
		struct stat st;
		if (de->d_name[0] == '.' && (!de->d_name[1] || !strcmp(de->d_name, "..")))
			continue;
		if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			err = -errno;
			pr_perror("cannot stat '%s/%s'", dir, de->d_name);
			break;
		}
		if (!S_ISREG(st.st_mode)) {
			pr_warn("'%s/%s' is not a regular file, not sent", dir, de->d_name);
			continue;
		}
		if (n == cap) {
			char **nn = realloc(names, (cap = cap ? 2 * cap : 64) * sizeof(*names));
			if (!nn) {
				err = -ENOMEM;
				break;
			}
			names = nn;
		}
		if (!(names[n] = strdup(de->d_name))) {
			err = -ENOMEM;
			break;
		}
		n++;
	}
	if (!err && errno) {
		err = -errno;
		pr_perror("cannot list '%s'", dir);
	}
	closedir(d);
	if (!err && n > STREAM_FILES_MAX) {
		pr_err("'%s' has %zu files, more than a round may have (%d)", dir, n, STREAM_FILES_MAX);
		err = -E2BIG;
	}
	if (err) {
		if (err == -ENOMEM)
			pr_err("out of memory listing '%s'", dir);
		free_names(names, n);
		return err;
	}
	if (n)
		qsort(names, n, sizeof(*names), cmp_names);
	*ret = names;
	*ret_n = n;
	return 0;
}

/* A FILE frame and the contents of name (open at fd); the caller holds the send lock. */
static int send_file_locked(int sk, int fd, const char *dir, const char *name, uint64_t *ret_size)
{
	char what[STREAM_NAME_MAX * 2 + 32];
	struct stat st;
	off_t off = 0;
	int err;

	snprintf(what, sizeof(what), "sending '%s/%s'", dir, name);
	if (fstat(fd, &st) < 0) {
		err = -errno;
		pr_perror("cannot stat '%s/%s'", dir, name);
		return err;
	}
	err = send_frame_locked(sk, STREAM_FILE, 0, st.st_size, name, strlen(name), what);
	while (!err && off < st.st_size) {
		size_t chunk = st.st_size - off > STREAM_CHUNK ? STREAM_CHUNK : st.st_size - off;
		ssize_t n = sendfile(sk, fd, &off, chunk);
		if (n > 0)
			continue;
		if (n == 0) {
			pr_err("'%s/%s' shrank while it was sent (%lld of %lld bytes)", dir, name,
			       (long long)off, (long long)st.st_size);
			return -EIO;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN)
			err = wait_io(sk, POLLOUT, what);
		else
			err = io_error(-errno, what);
	}
	if (!err)
		*ret_size = st.st_size;
	return err;
}

int stream_send_round(int sk, uint64_t round, uint32_t flags, int parent_dirfd, const char *dir,
		      struct stream_round *ret)
{
	struct stream_round r = { .round = round, .flags = flags };
	char what[STREAM_NAME_MAX + 32];
	char **names = NULL;
	size_t n = 0;
	int dirfd, err;

	if (stream_check_name(dir, strlen(dir), "round directory"))
		return -EINVAL;
	snprintf(r.dir, sizeof(r.dir), "%s", dir);
	dirfd = openat(parent_dirfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0) {
		err = -errno;
		pr_perror("cannot open '%s'", dir);
		return err;
	}
	int lfd = dup(dirfd);
	if (lfd < 0) {
		err = -errno;
		pr_perror("cannot dup the directory fd of '%s'", dir);
		close(dirfd);
		return err;
	}
	err = list_files(lfd, dir, &names, &n);
	if (err) {
		close(dirfd);
		return err;
	}
	snprintf(what, sizeof(what), "sending round %llu", (unsigned long long)round);
	pthread_mutex_lock(&stream_send_lock);
	err = send_frame_locked(sk, STREAM_ROUND, flags, round, dir, strlen(dir), what);
	for (size_t i = 0; i < n && !err; i++) {
		uint64_t size = 0;
		int fd = openat(dirfd, names[i], O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			err = -errno;
			pr_perror("cannot open '%s/%s'", dir, names[i]);
			break;
		}
		err = send_file_locked(sk, fd, dir, names[i], &size);
		close(fd);
		r.bytes += size;
		r.files++;
	}
	if (!err)
		err = send_frame_locked(sk, STREAM_END, 0, r.files, NULL, 0, what);
	pthread_mutex_unlock(&stream_send_lock);
	free_names(names, n);
	close(dirfd);
	if (!err && ret)
		*ret = r;
	return err;
}

/* Read size bytes of the file name from sk into fd by read() and write(). */
static int recv_copy(int sk, int fd, uint64_t size, const char *name, const char *what)
{
	static char buf[256 << 10];
	uint64_t done = 0;
	int err = 0;

	while (done < size && !err) {
		size_t want = size - done > sizeof(buf) ? sizeof(buf) : size - done;
		err = read_all(sk, buf, want, false, what);
		if (err)
			break;
		for (size_t w = 0; w < want && !err;) {
			ssize_t n = write(fd, buf + w, want - w);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				err = n < 0 ? -errno : -EIO;
				pr_errno(err, "cannot write '%s'", name);
			} else {
				w += n;
			}
		}
		done += want;
	}
	return err;
}

/* Read size bytes of the file name from sk into fd: socket -> pipe -> file. */
static int recv_file(int sk, int fd, uint64_t size, const char *name)
{
	char what[STREAM_NAME_MAX + 32];
	uint64_t done = 0;
	int p[2], err = 0;

	snprintf(what, sizeof(what), "receiving '%.*s'", STREAM_NAME_MAX, name);
	if (!size)
		return 0;
	if (pipe2(p, O_CLOEXEC) < 0)
		return recv_copy(sk, fd, size, name, what);
	int psize = fcntl(p[1], F_SETPIPE_SZ, STREAM_PIPE_SIZE);
	if (psize < 0)
		psize = fcntl(p[1], F_GETPIPE_SZ);
	if (psize <= 0)
		psize = 65536;
	while (done < size && !err) {
		size_t want = size - done > (uint64_t)psize ? (size_t)psize : size - done;
		ssize_t n = splice(sk, NULL, p[1], NULL, want, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n == 0) {
			pr_err("the stream is truncated: it ends %llu bytes into %llu of file '%s'",
			       (unsigned long long)done, (unsigned long long)size, name);
			err = -EPROTO;
			break;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				err = wait_io(sk, POLLIN, what);
				continue;
			}
			if (errno == EINVAL && !done) {
				/* No splice from this socket or into this file: copy. */
				close(p[0]);
				close(p[1]);
				return recv_copy(sk, fd, size, name, what);
			}
			err = io_error(-errno, what);
			break;
		}
		done += n;
		while (n > 0) {
			ssize_t m = splice(p[0], NULL, fd, NULL, n, SPLICE_F_MOVE);
			if (m < 0 && errno == EINTR)
				continue;
			if (m <= 0) {
				err = m < 0 ? -errno : -EIO;
				pr_errno(err, "cannot write '%s'", name);
				break;
			}
			n -= m;
		}
	}
	close(p[0]);
	close(p[1]);
	return err;
}

/* Remove dir under parent_dirfd and every file in it (what a failed round left). */
static void remove_round(int parent_dirfd, const char *dir)
{
	int fd = openat(parent_dirfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;

	if (!d) {
		if (fd >= 0)
			close(fd);
	} else {
		while ((de = readdir(d)))
			if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
				(void)unlinkat(fd, de->d_name, 0);
		closedir(d);
	}
	if (unlinkat(parent_dirfd, dir, AT_REMOVEDIR) < 0 && errno != ENOENT)
		pr_warn("cannot remove '%s' after a failed round: %s, ignoring", dir, strerror(errno));
}

int stream_recv_round(int sk, int parent_dirfd, const struct stream_limits *lim,
		      struct stream_round *ret)
{
	static char name[STREAM_TEXT_MAX + 1];
	struct stream_round r = {};
	struct stream_frame f;
	char what[64];
	int dirfd, err;

	err = recv_frame(sk, &f, name, "waiting for a round");
	if (err)
		return err;
	if (f.type == STREAM_ERROR)
		return peer_error(&f, name, "waiting for a round");
	if (f.type != STREAM_ROUND) {
		pr_err("got a %s frame while waiting for a ROUND", type_name(f.type));
		return -EPROTO;
	}
	if (f.flags & ~STREAM_F_ALL) {
		pr_err("ROUND frame: unknown flags 0x%x", f.flags & ~STREAM_F_ALL);
		return -EPROTO;
	}
	if (stream_check_name(name, f.name_len, "ROUND frame: directory"))
		return -EPROTO;
	r.round = f.arg;
	r.flags = f.flags;
	memcpy(r.dir, name, f.name_len + 1);
	snprintf(what, sizeof(what), "receiving round %llu", (unsigned long long)r.round);
	if (mkdirat(parent_dirfd, r.dir, 0700) < 0) {
		err = -errno;
		pr_perror("cannot create the directory '%s' of round %llu", r.dir,
			  (unsigned long long)r.round);
		return err;
	}
	dirfd = openat(parent_dirfd, r.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0) {
		err = -errno;
		pr_perror("cannot open '%s'", r.dir);
		goto err_remove;
	}
	for (;;) {
		err = recv_frame(sk, &f, name, what);
		if (err)
			break;
		if (f.type == STREAM_END) {
			if (f.arg != r.files) {
				pr_err("END frame: %llu files announced, %u received in round %llu",
				       (unsigned long long)f.arg, r.files, (unsigned long long)r.round);
				err = -EPROTO;
			}
			break;
		}
		if (f.type == STREAM_ERROR) {
			err = peer_error(&f, name, what);
			break;
		}
		if (f.type != STREAM_FILE) {
			pr_err("got a %s frame while %s", type_name(f.type), what);
			err = -EPROTO;
			break;
		}
		err = stream_check_name(name, f.name_len, "FILE frame: file");
		if (err) {
			err = -EPROTO;
			break;
		}
		if (r.files >= lim->max_files) {
			pr_err("FILE frame: round %llu has more than %u files", (unsigned long long)r.round,
			       lim->max_files);
			err = -E2BIG;
			break;
		}
		if (f.arg > lim->max_file || f.arg > lim->max_round - r.bytes) {
			pr_err("FILE frame: size %llu of '%s' is over what is accepted (%llu per file, %llu left for round %llu)",
			       (unsigned long long)f.arg, name, (unsigned long long)lim->max_file,
			       (unsigned long long)(lim->max_round - r.bytes),
			       (unsigned long long)r.round);
			err = -EFBIG;
			break;
		}
		int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0) {
			err = -errno;
			if (err == -EEXIST)
				pr_err("FILE frame: '%s' comes twice in round %llu", name,
				       (unsigned long long)r.round);
			else
				pr_perror("cannot create '%s/%s'", r.dir, name);
			break;
		}
		err = recv_file(sk, fd, f.arg, name);
		close(fd);
		if (err)
			break;
		r.bytes += f.arg;
		r.files++;
	}
	close(dirfd);
	if (!err) {
		if (ret)
			*ret = r;
		return 0;
	}
err_remove:
	remove_round(parent_dirfd, r.dir);
	return err;
}

static pthread_t ping_thread;
static int ping_stop_fd = -1;
static int ping_sk = -1;

static void *ping_main(void *arg)
{
	struct pollfd p = { .fd = ping_stop_fd, .events = POLLIN };
	/* Four PINGs within the timeout: one late or lost packet is no silence. */
	int every = stream_timeout_ms / 4 < STREAM_PING_MS ? stream_timeout_ms / 4 : STREAM_PING_MS;

	(void)arg;
	while (poll(&p, 1, every) == 0) {
		pthread_mutex_lock(&stream_send_lock);
		/* Quiet: a broken connection is reported by the caller's next step. */
		int err = send_frame_locked(ping_sk, STREAM_PING, 0, 0, NULL, 0, NULL);
		pthread_mutex_unlock(&stream_send_lock);
		if (err)
			break;
	}
	return NULL;
}

int stream_ping_start(int sk)
{
	sigset_t all, old;
	int err;

	if (ping_stop_fd >= 0)
		return 0;
	ping_stop_fd = eventfd(0, EFD_CLOEXEC);
	if (ping_stop_fd < 0) {
		err = -errno;
		pr_perror("cannot create an eventfd");
		return err;
	}
	ping_sk = sk;
	/* Signals are the main thread's business. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = -pthread_create(&ping_thread, NULL, ping_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		pr_errno(err, "cannot start the keepalive thread");
		close(ping_stop_fd);
		ping_stop_fd = -1;
	}
	return err;
}

void stream_ping_stop(void)
{
	uint64_t one = 1;

	if (ping_stop_fd < 0)
		return;
	(void)!write(ping_stop_fd, &one, sizeof(one));
	pthread_join(ping_thread, NULL);
	close(ping_stop_fd);
	ping_stop_fd = -1;
}
