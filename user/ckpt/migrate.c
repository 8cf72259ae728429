// SPDX-License-Identifier: MIT
/*
 * ckpt migrate and ckpt receive: live migration over one TCP connection.
 *
 * The source dumps rounds into a memdir (rounds 0, 1, ... as directories
 * of it: a full dump, then deltas with --prev-images ../K-1, all with
 * --leave-running and trackd's log) and streams each one (stream.h); the
 * destination stages them in its own memdir and builds the trees frozen
 * from round 0, then applies every delta to them (restore_frozen_*). The
 * final round is a dump that kills the tree only once the destination
 * says the copy runs: its before_kill hook streams the images, waits for
 * READY, sends GO and waits for RUNNING. Any failure before that thaws
 * the source, and the destination kills whatever it created.
 */
#define LOG_PREFIX "migrate: "
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "aio_inflight.h"
#include "ckpt.h"
#include "ctl.h"
#include "dump.h"
#include "infect.h"
#include "log.h"
#include "netlock.h"
#include "memdir.h"
#include "restore.h"
#include "stream.h"

#define MIGRATE_TIMEOUT_S	60
#define MIGRATE_MAX_ROUNDS	8
#define MIGRATE_DOWNTIME_MS	50
#define MIGRATE_MAX_ROOTS	1024

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

/* A signalfd that becomes readable when a held stop signal is pending (never read), or -errno. */
static int stop_signal_fd(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGQUIT);
	int fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (fd < 0) {
		fd = -errno;
		pr_perror("cannot create a signalfd for the stop signals");
	}
	return fd;
}

/* "host:port", "[v6]:port" or "v6:port" (the last colon) into host and port. */
static int split_addr(const char *arg, char *host, size_t hlen, char *port, size_t plen)
{
	const char *colon;
	size_t n;

	if (arg[0] == '[') {
		const char *end = strchr(arg, ']');
		if (!end || end[1] != ':')
			goto bad;
		n = end - arg - 1;
		colon = end + 1;
		if (n >= hlen)
			goto bad;
		memcpy(host, arg + 1, n);
	} else {
		colon = strrchr(arg, ':');
		if (!colon)
			goto bad;
		n = colon - arg;
		if (n >= hlen)
			goto bad;
		memcpy(host, arg, n);
	}
	host[n] = 0;
	if (!colon[1] || strlen(colon + 1) >= plen || strspn(colon + 1, "0123456789") != strlen(colon + 1))
		goto bad;
	snprintf(port, plen, "%s", colon + 1);
	return 0;
bad:
	fprintf(stderr, "ckpt: bad address '%s' (want HOST:PORT, IPv4:PORT or [IPv6]:PORT)\n", arg);
	return -EINVAL;
}

static void addr_str(const struct sockaddr *sa, socklen_t len, char *buf, size_t size)
{
	char h[NI_MAXHOST], p[NI_MAXSERV];

	if (getnameinfo(sa, len, h, sizeof(h), p, sizeof(p), NI_NUMERICHOST | NI_NUMERICSERV)) {
		snprintf(buf, size, "?");
		return;
	}
	snprintf(buf, size, sa->sa_family == AF_INET6 ? "[%s]:%s" : "%s:%s", h, p);
}

/* Connect to arg within timeout_ms (each address tried in turn). The socket or -errno (logged). */
static int net_connect(const char *arg, int timeout_ms, int cancel_fd)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG }, *res, *ai;
	char host[256], port[16];
	int err, sk = -1;

	if (split_addr(arg, host, sizeof(host), port, sizeof(port)))
		return -EINVAL;
	err = getaddrinfo(host, port, &hints, &res);
	if (err) {
		pr_err("cannot resolve '%s': %s", host, gai_strerror(err));
		return -EHOSTUNREACH;
	}
	err = -EHOSTUNREACH;
	for (ai = res; ai; ai = ai->ai_next) {
		sk = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
			    ai->ai_protocol);
		if (sk < 0) {
			err = -errno;
			continue;
		}
		if (connect(sk, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		if (errno == EINPROGRESS) {
			struct pollfd p[2] = { { .fd = sk, .events = POLLOUT },
					       { .fd = cancel_fd, .events = POLLIN } };
			int n, soerr = 0;
			socklen_t l = sizeof(soerr);
			do
				n = poll(p, 2, timeout_ms);
			while (n < 0 && errno == EINTR);
			if (n > 0 && (p[1].revents & POLLIN)) {
				pr_err("interrupted while connecting to '%s'", arg);
				close(sk);
				freeaddrinfo(res);
				return -EINTR;
			}
			if (n > 0 && !getsockopt(sk, SOL_SOCKET, SO_ERROR, &soerr, &l) && !soerr)
				break;
			err = n == 0 ? -ETIMEDOUT : soerr ? -soerr : -errno;
		} else {
			err = -errno;
		}
		close(sk);
		sk = -1;
	}
	freeaddrinfo(res);
	if (sk < 0)
		pr_errno(err, "cannot connect to '%s'", arg);
	return sk < 0 ? err : sk;
}

/* Listen on arg ("*" or an empty host: every address); the socket or -errno (logged). */
static int net_listen(const char *arg, char *ret_addr, size_t len)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE }, *res, *ai;
	char host[256], port[16];
	int err, sk = -1, one = 1;

	if (split_addr(arg, host, sizeof(host), port, sizeof(port)))
		return -EINVAL;
	bool any = !host[0] || !strcmp(host, "*");
	if (any)
		hints.ai_family = AF_INET6;	/* [::] takes IPv4 too unless bindv6only */
	err = getaddrinfo(any ? NULL : host, port, &hints, &res);
	if (err && any) {
		hints.ai_family = AF_UNSPEC;
		err = getaddrinfo(NULL, port, &hints, &res);
	}
	if (err) {
		pr_err("cannot resolve '%s': %s", host, gai_strerror(err));
		return -EADDRNOTAVAIL;
	}
	err = -EADDRNOTAVAIL;
	for (ai = res; ai; ai = ai->ai_next) {
		sk = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (sk < 0) {
			err = -errno;
			continue;
		}
		(void)setsockopt(sk, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (!bind(sk, ai->ai_addr, ai->ai_addrlen) && !listen(sk, 1))
			break;
		err = -errno;
		close(sk);
		sk = -1;
	}
	freeaddrinfo(res);
	if (sk < 0) {
		pr_errno(err, "cannot listen on '%s'", arg);
		return err;
	}
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	if (getsockname(sk, (struct sockaddr *)&ss, &sl) == 0)
		addr_str((struct sockaddr *)&ss, sl, ret_addr, len);
	else
		snprintf(ret_addr, len, "%s", arg);
	return sk;
}

/*
 * Old rounds: only what a chain needs stays (chain_open reads every
 * level's inventory, chain_resolve its pagemaps and pages). Everything
 * else of a round below the top goes.
 */
static bool chain_file(const char *name)
{
	return !strcmp(name, "inventory.img") || !strncmp(name, "pagemap-", 8) ||
	       !strncmp(name, "pages-", 6);
}

/*
 * Drop what round dir no longer needs: every non-chain file (prune), and
 * with punch the data of its pages files, kept as holes of the same size
 * (the source's next delta reads parent pagemaps, never parent pages, but
 * checks each pages file's size).
 */
static void round_trim(int parent_dirfd, const char *dir, bool prune, bool punch)
{
	int fd = openat(parent_dirfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;

	if (!d) {
		if (fd >= 0)
			close(fd);
		pr_warn("cannot open '%s' to free its space, ignoring", dir);
		return;
	}
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if (!chain_file(de->d_name)) {
			if (prune && unlinkat(fd, de->d_name, 0) < 0)
				pr_warn("cannot remove '%s/%s': %s, ignoring", dir, de->d_name,
					strerror(errno));
			continue;
		}
		if (!punch || strncmp(de->d_name, "pages-", 6))
			continue;
		int f = openat(fd, de->d_name, O_WRONLY | O_CLOEXEC);
		struct stat st;
		if (f < 0 || fstat(f, &st) < 0 ||
		    (st.st_size && fallocate(f, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
					     st.st_size) < 0))
			pr_debug("cannot free '%s/%s': %s", dir, de->d_name, strerror(errno));
		if (f >= 0)
			close(f);
	}
	closedir(d);
}

/* ---------------------------------------------------------------- trackd */

/* One request to the trackd on dir; its answer (first line "ok") into buf. 0 or -errno. */
static int trackd_request(const char *dir, const char *req, char *buf, size_t len)
{
	int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	long n;

	if (dirfd < 0)
		return -errno;
	int sk = ctl_connect(dirfd);
	close(dirfd);
	if (sk < 0)
		return sk;
	n = ctl_send(sk, req, strlen(req), -1);
	if (!n)
		n = ctl_recv(sk, buf, len, NULL);
	close(sk);
	if (n < 0)
		return n;
	return strncmp(buf, "ok\n", 3) ? -EIO : 0;
}

/* "10,20:30" into pids (at most max); how many, or -1. */
static int parse_pids(const char *s, pid_t *pids, int max)
{
	int n = 0;

	while (*s) {
		char *end;
		long v = strtol(s, &end, 10);
		if (end == s || v <= 0 || n == max || (*end && *end != ',' && *end != ':'))
			return -1;
		pids[n++] = v;
		s = *end ? end + 1 : end;
	}
	return n;
}

/*
 * The trackd process pid, from its command line: its roots and log
 * directory (relative ones through its cwd). 0, or -ENOENT when it is no
 * tracking daemon (a client, or unreadable).
 */
static int trackd_cmdline(pid_t pid, pid_t *roots, int *ret_n, char *dir, size_t len)
{
	char path[64], buf[8192];
	const char *tree = NULL, *log = NULL;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -ENOENT;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -ENOENT;
	buf[n] = 0;
	for (char *a = buf; a < buf + n; a += strlen(a) + 1) {
		char *next = a + strlen(a) + 1 < buf + n ? a + strlen(a) + 1 : NULL;
		if (!strcmp(a, "-t") || !strcmp(a, "--tree"))
			tree = next;
		else if (!strncmp(a, "--tree=", 7))
			tree = a + 7;
		else if (!strncmp(a, "-t", 2))
			tree = a + 2;
		else if (!strcmp(a, "-L") || !strcmp(a, "--log-dir"))
			log = next;
		else if (!strncmp(a, "--log-dir=", 10))
			log = a + 10;
		else if (!strncmp(a, "-L", 2))
			log = a + 2;
	}
	if (!tree || !log || (*ret_n = parse_pids(tree, roots, MIGRATE_MAX_ROOTS)) <= 0)
		return -ENOENT;
	if (log[0] == '/')
		snprintf(dir, len, "%s", log);
	else
		snprintf(dir, len, "/proc/%d/cwd/%s", pid, log);
	return 0;
}

/*
 * A trackd attached to exactly o's roots: its log directory into dir.
 * 1 found, 0 none, -errno when one tracks some of the roots with others
 * (logged: a second tracker could not arm them).
 */
static int trackd_find(const struct dump_opts *o, char *dir, size_t len)
{
	static pid_t roots[MIGRATE_MAX_ROOTS];
	DIR *d = opendir("/proc");
	struct dirent *de;
	int found = 0;

	if (!d) {
		pr_perror("cannot list /proc");
		return -errno;
	}
	while (!found && (de = readdir(d))) {
		char path[64], comm[32] = "", cand[PATH_MAX], ans[4096];
		pid_t pid = atoi(de->d_name);
		int n = 0, fd;
		if (pid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/comm", pid);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (read(fd, comm, sizeof(comm) - 1) <= 0)
			comm[0] = 0;
		close(fd);
		if (strcmp(comm, "trackd\n") || trackd_cmdline(pid, roots, &n, cand, sizeof(cand)))
			continue;
		/* Its PIDs are those of its PID namespace: only one in ours compares. */
		char ns[64] = "", own[64] = "";
		snprintf(path, sizeof(path), "/proc/%d/ns/pid", pid);
		if (readlink(path, ns, sizeof(ns) - 1) <= 0 ||
		    readlink("/proc/self/ns/pid", own, sizeof(own) - 1) <= 0 || strcmp(ns, own))
			continue;
		size_t common = 0;
		for (size_t i = 0; i < o->nr_roots; i++)
			for (int j = 0; j < n; j++)
				common += roots[j] == o->roots[i];
		if (!common)
			continue;
		if (common != o->nr_roots || (size_t)n != o->nr_roots) {
			pr_err("trackd %d tracks other roots along with some of these (log '%s'): migrate exactly its roots, or stop it",
			       pid, cand);
			found = -EBUSY;
			break;
		}
		/* The daemon, not a client or a trackd still starting: it answers. */
		if (trackd_request(cand, "status", ans, sizeof(ans)))
			continue;
		snprintf(dir, len, "%s", cand);
		pr_info("using trackd %d, log '%s'", pid, dir);
		found = 1;
	}
	closedir(d);
	return found;
}

/* The trackd binary next to ours, started as a daemon on o's roots with its log in dir. */
static int trackd_start(const struct dump_opts *o, const char *dir)
{
	char exe[PATH_MAX], roots[MIGRATE_MAX_ROOTS * 12] = "";
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 16);
	int status;
	size_t off = 0;

	if (n <= 0) {
		pr_perror("cannot read /proc/self/exe");
		return -ENOENT;
	}
	exe[n] = 0;
	char *slash = strrchr(exe, '/');
	snprintf(slash ? slash + 1 : exe, sizeof(exe) - (slash ? slash + 1 - exe : 0), "trackd");
	if (access(exe, X_OK) < 0) {
		pr_perror("no trackd next to ckpt ('%s'); start one and give --log-dir", exe);
		return -ENOENT;
	}
	for (size_t i = 0; i < o->nr_roots && off < sizeof(roots); i++)
		off += snprintf(roots + off, sizeof(roots) - off, "%s%d", i ? "," : "", o->roots[i]);
	pid_t pid = fork();
	if (pid < 0) {
		pr_perror("cannot fork trackd");
		return -errno;
	}
	if (!pid) {
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		execl(exe, "trackd", "-t", roots, "-L", dir, "-d", (char *)NULL);
		fprintf(stderr, "ckpt migrate: cannot run '%s': %s\n", exe, strerror(errno));
		_exit(127);
	}
	/* trackd -d returns once the daemon tracks (or failed, saying why on stderr). */
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			pr_perror("cannot wait for trackd");
			return -ECHILD;
		}
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		pr_err("trackd did not start on %s", roots);
		return -EIO;
	}
	pr_info("started trackd on %s, log '%s'", roots, dir);
	return 0;
}

static void trackd_stop(const char *dir)
{
	char ans[4096];
	int err = trackd_request(dir, "stop", ans, sizeof(ans));

	/* It may have ended with the last tracked process. */
	if (err)
		pr_debug("trackd on '%s' did not answer 'stop': %s", dir, strerror(-err));
}

/* ---------------------------------------------------------------- source */

struct mig {
	struct dump_opts dump;
	const char *to;
	int max_rounds;
	unsigned downtime_ms;
	int timeout_ms;
	const char *log_dir;
	char own_log[PATH_MAX];		/* a trackd we started, stopped at the end */
	char dir[PATH_MAX];		/* the round's -D */
	char prev[32];
	struct memdir md;
	int sk;
	int sigfd;
	uint64_t round;
	/* The final round's hook. */
	bool hook_failed;		/* and said why */
	bool go_sent;			/* the destination may run the tree from here on */
	bool running;			/* and says it does */
	uint64_t downtime_ns;
	struct stream_round final;
};

static void send_error(struct mig *m, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Tell the destination why we stop (best effort: it may be the one that failed). */
static void send_error(struct mig *m, int err, const char *fmt, ...)
{
	char text[512];
	va_list ap;

	if (m->sk < 0)
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	stream_set_cancel_fd(-1);
	(void)stream_send_error(m->sk, err < 0 ? -err : err ? err : EIO, text);
}

/*
 * The final dump's before_kill: the tree is frozen and its images
 * complete. Stream them, let the destination finish, and say go; the
 * source dies only when the destination says its copy runs.
 */
static int final_hook(void *arg, uint64_t frozen_ns)
{
	struct mig *m = arg;
	uint64_t t0 = mono_ns();
	char name[32];
	int err;

	stream_ping_stop();
	snprintf(name, sizeof(name), "%llu", (unsigned long long)m->round);
	err = stream_send_round(m->sk, m->round, STREAM_F_DELTA | STREAM_F_FINAL, m->md.dirfd, name,
				&m->final);
	if (!err)
		err = stream_recv_msg(m->sk, STREAM_READY, NULL);
	if (!err && fault_injected("migrate-before-go"))
		err = -EIO;
	if (err) {
		pr_err("the final round did not complete on the destination: the tree runs on here");
		m->hook_failed = true;
		return err;
	}
	/*
	 * From GO on the destination may let its copy run: a stop signal no
	 * longer cancels; only a missing RUNNING (timeout, lost connection)
	 * makes the source run on.
	 */
	stream_set_cancel_fd(-1);
	err = stream_send_msg(m->sk, STREAM_GO, 0, NULL);
	m->go_sent = !err;
	if (!err)
		err = stream_recv_msg(m->sk, STREAM_RUNNING, NULL);
	m->hook_failed = err != 0;
	if (err == -EREMOTEIO) {
		pr_err("the destination failed after GO: the tree runs on here");
		return err;
	}
	if (err) {
		pr_err("no RUNNING from the destination after GO: the tree runs on here; check that the destination did not start it too");
		return err;
	}
	m->running = true;
	m->downtime_ns = frozen_ns + (mono_ns() - t0);
	return 0;
}

static int do_migrate(struct mig *m)
{
	struct stream_round sent;
	struct dump_stats st;
	uint64_t cum_bytes = 0, cum_send_ns = 0, prev_start = 0;
	char name[32];
	int err;

	m->sigfd = stop_signal_fd();
	if (m->sigfd < 0)
		return m->sigfd;
	err = memdir_open(0, &m->md);
	if (err)
		return err;
	m->sk = net_connect(m->to, m->timeout_ms, m->sigfd);
	if (m->sk < 0)
		return m->sk;
	err = stream_setup(m->sk, m->timeout_ms, m->sigfd);
	if (!err)
		err = stream_send_msg(m->sk, STREAM_HELLO, STREAM_VERSION, NULL);
	uint64_t version = 0;
	if (!err)
		err = stream_recv_msg(m->sk, STREAM_HELLO, &version);
	if (!err && version != STREAM_VERSION) {
		pr_err("the destination speaks stream version %llu, we %d",
		       (unsigned long long)version, STREAM_VERSION);
		err = -EPROTO;
	}
	if (err)
		return err;
	/* The destination is there: now attach the tracker (the dumps need it from round 0). */
	if (!m->log_dir) {
		static char found[PATH_MAX];
		err = trackd_find(&m->dump, found, sizeof(found));
		if (err < 0) {
			send_error(m, err, "the source's tree is tracked by another trackd");
			return err;
		}
		if (err) {
			m->log_dir = found;
		} else {
			/* Ours, in the memdir: it goes with the images. */
			snprintf(m->own_log, sizeof(m->own_log), "%s/trackd", m->md.path);
			err = trackd_start(&m->dump, m->own_log);
			if (err) {
				m->own_log[0] = 0;
				send_error(m, err, "the source cannot start trackd");
				return err;
			}
			m->log_dir = m->own_log;
		}
	}
	m->dump.since_log = m->log_dir;
	printf("migrating to %s\n", m->to);
	fflush(stdout);

	m->dump.leave_running = true;
	for (m->round = 0; m->round < (uint64_t)m->max_rounds;) {
		snprintf(name, sizeof(name), "%llu", (unsigned long long)m->round);
		snprintf(m->dir, sizeof(m->dir), "%s/%s", m->md.path, name);
		m->dump.dir = m->dir;
		m->dump.prev_images = NULL;
		if (m->round) {
			snprintf(m->prev, sizeof(m->prev), "../%llu", (unsigned long long)m->round - 1);
			m->dump.prev_images = m->prev;
		}
		uint64_t t0 = mono_ns();
		err = stream_ping_start(m->sk);
		if (!err)
			err = dump_run(&m->dump, &st);
		stream_ping_stop();
		if (err) {
			pr_err("the dump of round %llu failed; the tree runs on", (unsigned long long)m->round);
			send_error(m, err, "the source's dump of round %llu failed", (unsigned long long)m->round);
			return err;
		}
		uint64_t t1 = mono_ns();
		err = stream_send_round(m->sk, m->round, m->round ? STREAM_F_DELTA : 0, m->md.dirfd, name,
					&sent);
		uint64_t t2 = mono_ns();
		if (!err) {
			uint64_t acked = 0;
			err = stream_recv_msg(m->sk, STREAM_ACK, &acked);
			if (!err && acked != m->round) {
				pr_err("the destination acknowledged round %llu for round %llu",
				       (unsigned long long)acked, (unsigned long long)m->round);
				err = -EPROTO;
			}
		}
		if (err) {
			pr_err("round %llu did not reach the destination; the tree runs on",
			       (unsigned long long)m->round);
			send_error(m, err, "round %llu failed on the source", (unsigned long long)m->round);
			return err;
		}
		uint64_t t3 = mono_ns();
		cum_bytes += sent.bytes;
		cum_send_ns += t2 - t1;
		double tput = cum_send_ns ? cum_bytes / (cum_send_ns / 1e9) : 0;	/* bytes/s */
		/* Pages written per second since the previous round's dump began. */
		double dirty = m->round && t0 > prev_start ? st.pages_bytes / ((t0 - prev_start) / 1e9) : 0;
		/*
		 * A final round now would take about: this round's freeze, its
		 * bytes at the throughput so far, and the destination's turn
		 * (what ACK took after the last byte).
		 */
		double est_ms = st.frozen_ns / 1e6 + (tput > 0 ? sent.bytes / tput * 1e3 : 0) +
				(t3 - t2) / 1e6;
		printf("round %llu: %llu bytes (%u files) in %.0f ms, dirty %.1f MB/s, estimated downtime %.0f ms\n",
		       (unsigned long long)m->round, (unsigned long long)sent.bytes, sent.files,
		       (t3 - t0) / 1e6, dirty / 1e6, est_ms);
		fflush(stdout);
		prev_start = t0;
		/* The data is on the destination now; the next delta needs only the chain. */
		round_trim(m->md.dirfd, name, false, true);
		if (m->round) {
			snprintf(name, sizeof(name), "%llu", (unsigned long long)m->round - 1);
			round_trim(m->md.dirfd, name, true, false);
		}
		/* A delta small enough: the next round is the final one. */
		if (m->round++ >= 1 && est_ms <= m->downtime_ms)
			break;
	}
	snprintf(m->dir, sizeof(m->dir), "%s/%llu", m->md.path, (unsigned long long)m->round);
	snprintf(m->prev, sizeof(m->prev), "../%llu", (unsigned long long)m->round - 1);
	m->dump.dir = m->dir;
	m->dump.prev_images = m->prev;
	m->dump.leave_running = false;
	m->dump.before_kill = final_hook;
	m->dump.before_kill_arg = m;
	err = stream_ping_start(m->sk);
	if (!err)
		err = dump_run(&m->dump, &st);
	stream_ping_stop();
	if (!m->running) {
		if (!m->go_sent)
			send_error(m, err, "the source's final round failed");
		if (!m->hook_failed)
			pr_err("the final dump failed; the tree runs on here");
		return err ? err : -EIO;
	}
	/* The destination runs the tree: say whether ours is gone. */
	stream_set_cancel_fd(-1);
	if (stream_send_msg(m->sk, STREAM_ENDED, err ? -err : 0, NULL))
		pr_warn("the destination did not get ENDED, ignoring");
	if (err) {
		pr_err("the tree runs on the destination, but ending it here failed: check it");
		return err;
	}
	/*
	 * The peers of the tree's TCP connections were held off here; the
	 * destination lifted that lock if it is this host, else it is ours to
	 * lift: the sockets it held are gone with the tree.
	 */
	if (st.net_lock[0] && netlock_exists(st.net_lock))
		netlock_unlock(st.net_lock);
	printf("final round %llu: %llu bytes (%u files); migrated, downtime %.1f ms\n",
	       (unsigned long long)m->round, (unsigned long long)m->final.bytes, m->final.files,
	       m->downtime_ns / 1e6);
	fflush(stdout);
	return 0;
}

static void usage_migrate(FILE *f)
{
	fprintf(f, "usage: ckpt migrate -t PID[,PID...] --to ADDR:PORT [--max-rounds N] [--downtime-target MS]\n"
		   "                    [--log-dir LOGDIR] [--timeout SEC] [--shell-job] [--ext-unix-sk]\n"
		   "                    [-v[N]] [-o LOG]\n");
}

/* A positive integer option, at most max; -1 (printed) when not. */
static long parse_num(const char *cmd, const char *opt, const char *arg, long min, long max)
{
	char *end;
	long v = strtol(arg, &end, 10);

	if (end == arg || *end || v < min || v > max) {
		fprintf(stderr, "ckpt %s: bad %s '%s' (%ld-%ld)\n", cmd, opt, arg, min, max);
		return -1;
	}
	return v;
}

int cmd_migrate(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "tree", required_argument, NULL, 't' },
		{ "to", required_argument, NULL, 'T' },
		{ "max-rounds", required_argument, NULL, 'M' },
		{ "downtime-target", required_argument, NULL, 'W' },
		{ "log-dir", required_argument, NULL, 'L' },
		{ "timeout", required_argument, NULL, 'O' },
		{ "shell-job", no_argument, NULL, 'j' },
		{ "ext-unix-sk", no_argument, NULL, 'X' },
		{ "verbosity", optional_argument, NULL, 'v' },
		{ "log-file", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	struct mig m = { .max_rounds = MIGRATE_MAX_ROUNDS, .downtime_ms = MIGRATE_DOWNTIME_MS,
			 .timeout_ms = MIGRATE_TIMEOUT_S * 1000, .sk = -1, .sigfd = -1,
			 .md = { .sk = -1, .dirfd = -1 } };
	int opt, ret = 2;
	long v;

	while ((opt = getopt_long(argc, argv, "t:L:jv::o:h", lopts, NULL)) != -1) {
		switch (opts_common(opt, optarg)) {
		case 1:
			continue;
		case -1:
			goto out;
		}
		switch (opt) {
		case 't':
			if (dump_parse_roots("migrate", optarg, &m.dump))
				goto out;
			break;
		case 'T':
			m.to = optarg;
			break;
		case 'M':
			if ((v = parse_num("migrate", "--max-rounds", optarg, 1, 1000)) < 0)
				goto out;
			m.max_rounds = v;
			break;
		case 'W':
			if ((v = parse_num("migrate", "--downtime-target", optarg, 0, 3600000)) < 0)
				goto out;
			m.downtime_ms = v;
			break;
		case 'L':
			m.log_dir = optarg;
			break;
		case 'O':
			if ((v = parse_num("migrate", "--timeout", optarg, 1, 86400)) < 0)
				goto out;
			m.timeout_ms = v * 1000;
			break;
		case 'j':
			m.dump.shell_job = true;
			break;
		case 'X':
			m.dump.ext_unix_sk = true;
			break;
		case 'h':
			usage_migrate(stdout);
			ret = 0;
			goto out;
		default:
			goto out;
		}
	}
	if (!m.dump.nr_roots || !m.to || optind != argc) {
		usage_migrate(stderr);
		goto out;
	}
	char host[256], port[16];
	if (split_addr(m.to, host, sizeof(host), port, sizeof(port)))
		goto out;
	opts_hold_stop_signals();
	ret = do_migrate(&m) ? 1 : 0;
	/* The AIO iterator stayed loaded from round to round (dump_aio.c). */
	aio_inflight_close();
	stream_ping_stop();
	if (m.sk >= 0)
		close(m.sk);
	if (m.own_log[0])
		trackd_stop(m.own_log);
	memdir_close(&m.md);
	if (m.sigfd >= 0)
		close(m.sigfd);
out:
	free(m.dump.roots);
	return ret;
}

/* ---------------------------------------------------------------- destination */

struct recv {
	struct restore_opts ro;
	const char *listen;
	const char *pidfile;
	int timeout_ms;
	struct memdir md;
	int sk;
	int sigfd;
	struct rst_ctx *ctx;
	char dir[PATH_MAX];
};

/* Tell the source why this side gives up. */
static void recv_error(struct recv *r, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void recv_error(struct recv *r, int err, const char *fmt, ...)
{
	char text[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (r->sk < 0)
		return;
	stream_set_cancel_fd(-1);
	(void)stream_send_error(r->sk, err < 0 ? -err : err, text);
}

/* Accept one connection on ls (a stop signal ends the wait). The socket or -errno (logged). */
static int accept_one(int ls, int sigfd)
{
	struct pollfd p[2] = { { .fd = ls, .events = POLLIN }, { .fd = sigfd, .events = POLLIN } };
	int n;

	do
		n = poll(p, 2, -1);
	while (n < 0 && errno == EINTR);
	if (n > 0 && (p[1].revents & POLLIN)) {
		pr_err("interrupted while waiting for the source");
		return -EINTR;
	}
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int sk = accept4(ls, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);
	if (sk < 0) {
		int err = -errno;
		pr_perror("cannot accept a connection");
		return err;
	}
	char peer[128];
	addr_str((struct sockaddr *)&ss, sl, peer, sizeof(peer));
	printf("connection from %s\n", peer);
	fflush(stdout);
	return sk;
}

/* Apply round rd (its directory under the memdir) to the frozen trees. */
static int recv_apply(struct recv *r, const struct stream_round *rd)
{
	int err;

	snprintf(r->dir, sizeof(r->dir), "%s/%s", r->md.path, rd->dir);
	err = stream_ping_start(r->sk);
	if (err)
		return err;
	if (!rd->round) {
		r->ro.dir = r->dir;
		err = restore_frozen_start(&r->ro, &r->ctx);
		if (err)
			r->ctx = NULL;
	} else {
		err = restore_frozen_fixup(r->ctx, r->dir);
	}
	if (!err && (rd->flags & STREAM_F_FINAL))
		err = restore_frozen_finish(r->ctx);
	stream_ping_stop();
	return err;
}

/* The rounds until the final one is in place and the source said go. */
static int recv_rounds(struct recv *r)
{
	struct stream_round rd;
	char prev[STREAM_NAME_MAX + 1] = "";
	int err;

	for (uint64_t k = 0;; k++) {
		struct stream_limits lim = { .max_files = STREAM_FILES_MAX };
		/* Whatever the tmpfs can take, less a margin for the directory itself. */
		uint64_t room = memdir_free_bytes(&r->md);
		lim.max_round = lim.max_file = room > (1 << 20) ? room - (1 << 20) : 0;
		uint64_t t0 = mono_ns();
		err = stream_recv_round(r->sk, r->md.dirfd, &lim, &rd);
		if (err) {
			pr_err("round %llu was not received", (unsigned long long)k);
			return err;
		}
		if (rd.round != k || !(rd.flags & STREAM_F_DELTA) != !k) {
			pr_err("ROUND frame: round %llu%s where round %llu%s was due",
			       (unsigned long long)rd.round, rd.flags & STREAM_F_DELTA ? " (delta)" : "",
			       (unsigned long long)k, k ? " (delta)" : "");
			recv_error(r, EPROTO, "round %llu out of order", (unsigned long long)rd.round);
			return -EPROTO;
		}
		uint64_t t1 = mono_ns();
		err = recv_apply(r, &rd);
		uint64_t t2 = mono_ns();
		if (err) {
			pr_errno(err, "cannot apply round %llu", (unsigned long long)k);
			recv_error(r, err, "the destination cannot apply round %llu: %s",
				   (unsigned long long)k, strerror(-err));
			return err;
		}
		printf("round %llu%s: %llu bytes (%u files) received in %.0f ms, applied in %.0f ms\n",
		       (unsigned long long)k, rd.flags & STREAM_F_FINAL ? " (final)" : "",
		       (unsigned long long)rd.bytes, rd.files, (t1 - t0) / 1e6, (t2 - t1) / 1e6);
		fflush(stdout);
		/* In memory now: an older round keeps only what the chain needs. */
		if (prev[0])
			round_trim(r->md.dirfd, prev, true, false);
		snprintf(prev, sizeof(prev), "%s", rd.dir);
		if (rd.flags & STREAM_F_FINAL)
			break;
		err = stream_send_msg(r->sk, STREAM_ACK, k, NULL);
		if (err)
			return err;
	}
	err = stream_send_msg(r->sk, STREAM_READY, 0, NULL);
	if (!err)
		err = stream_recv_msg(r->sk, STREAM_GO, NULL);
	if (!err && fault_injected("receive-before-go"))
		err = -EIO;
	return err;
}

static int do_receive(struct recv *r)
{
	char addr[160];
	pid_t roots[MIGRATE_MAX_ROOTS];
	size_t nr_roots;
	int ls, err, ret = 0;

	struct rlimit nofile;
	if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
		nofile.rlim_cur = nofile.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &nofile) < 0)
			pr_warn("cannot raise the fd limit to %llu: %s, ignoring",
				(unsigned long long)nofile.rlim_max, strerror(errno));
	}
	r->sigfd = stop_signal_fd();
	if (r->sigfd < 0)
		return r->sigfd;
	err = infect_init();
	if (!err)
		err = memdir_open(0, &r->md);
	if (err)
		return err;
	ls = net_listen(r->listen, addr, sizeof(addr));
	if (ls < 0)
		return ls;
	printf("listening on %s\n", addr);
	fflush(stdout);
	r->sk = accept_one(ls, r->sigfd);
	close(ls);
	if (r->sk < 0)
		return r->sk;
	uint64_t version = 0;
	err = stream_setup(r->sk, r->timeout_ms, r->sigfd);
	if (!err)
		err = stream_recv_msg(r->sk, STREAM_HELLO, &version);
	if (!err && version != STREAM_VERSION) {
		pr_err("the source speaks stream version %llu, we %d", (unsigned long long)version,
		       STREAM_VERSION);
		recv_error(r, EPROTO, "the destination speaks stream version %d", STREAM_VERSION);
		err = -EPROTO;
	}
	if (!err)
		err = stream_send_msg(r->sk, STREAM_HELLO, STREAM_VERSION, NULL);
	if (err)
		return err;
	/* Whatever the restore leaves orphaned while it builds is ours to reap. */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
		err = -errno;
		pr_perror("cannot become a child subreaper");
		recv_error(r, err, "the destination cannot become a child subreaper");
		return err;
	}
	err = recv_rounds(r);
	nr_roots = r->ctx ? restore_frozen_roots(r->ctx, roots, MIGRATE_MAX_ROOTS) : 0;
	if (!err && r->pidfile && nr_roots)
		err = restore_write_pidfile(r->pidfile, roots[0]);
	if (err) {
		recv_error(r, err, "the destination failed before the tree ran");
		if (r->ctx)
			restore_frozen_abort(r->ctx);
		r->ctx = NULL;
		prctl(PR_SET_CHILD_SUBREAPER, 0);
		pr_err("migration failed; every task restored here is gone");
		return err;
	}
	/* Orphans of the restored trees go where they would have gone. */
	prctl(PR_SET_CHILD_SUBREAPER, 0);
	restore_frozen_release(r->ctx);
	stream_set_cancel_fd(-1);
	err = stream_send_msg(r->sk, STREAM_RUNNING, 0, NULL);
	uint64_t ended = 0;
	if (!err)
		err = stream_recv_msg(r->sk, STREAM_ENDED, &ended);
	if (err)
		pr_warn("the source did not confirm that it ended its tree: check it");
	else if (ended)
		pr_warn("the source could not end its tree: %s; check it", strerror((int)ended));
	printf("running: %zu root(s)%s\n", nr_roots, nr_roots ? "" : " (none reported)");
	fflush(stdout);
	opts_release_stop_signals();
	if (!r->ro.detach)
		ret = restore_wait_roots(roots, nr_roots);
	restore_frozen_free(r->ctx);
	r->ctx = NULL;
	return ret;
}

static void usage_receive(FILE *f)
{
	fprintf(f, "usage: ckpt receive --listen ADDR:PORT [-d] [--pidfile FILE] [--shell-job] [--timeout SEC]\n"
		   "                    [-v[N]] [-o LOG]\n");
}

int cmd_receive(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "restore-detached", no_argument, NULL, 'd' },
		{ "detach", no_argument, NULL, 'd' },
		{ "pidfile", required_argument, NULL, 'p' },
		{ "shell-job", no_argument, NULL, 'j' },
		{ "timeout", required_argument, NULL, 'O' },
		{ "verbosity", optional_argument, NULL, 'v' },
		{ "log-file", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	struct recv r = { .timeout_ms = MIGRATE_TIMEOUT_S * 1000, .sk = -1, .sigfd = -1,
			  .md = { .sk = -1, .dirfd = -1 } };
	int opt, ret;
	long v;

	while ((opt = getopt_long(argc, argv, "l:dp:jv::o:h", lopts, NULL)) != -1) {
		switch (opts_common(opt, optarg)) {
		case 1:
			continue;
		case -1:
			return 2;
		}
		switch (opt) {
		case 'l':
			r.listen = optarg;
			break;
		case 'd':
			r.ro.detach = true;
			break;
		case 'p':
			r.pidfile = optarg;
			break;
		case 'j':
			r.ro.shell_job = true;
			break;
		case 'O':
			if ((v = parse_num("receive", "--timeout", optarg, 1, 86400)) < 0)
				return 2;
			r.timeout_ms = v * 1000;
			break;
		case 'h':
			usage_receive(stdout);
			return 0;
		default:
			return 2;
		}
	}
	if (!r.listen || optind != argc) {
		usage_receive(stderr);
		return 2;
	}
	char host[256], port[16];
	if (split_addr(r.listen, host, sizeof(host), port, sizeof(port)))
		return 2;
	/* Dying with tasks half built would leave them to EXITKILL and PDEATHSIG. */
	opts_hold_stop_signals();
	ret = do_receive(&r);
	stream_ping_stop();
	if (r.sk >= 0)
		close(r.sk);
	memdir_close(&r.md);
	if (r.sigfd >= 0)
		close(r.sigfd);
	return ret < 0 ? 1 : ret;
}
