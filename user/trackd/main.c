// SPDX-License-Identifier: MIT
#define LOG_PREFIX "trackd: "
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctl.h"
#include "daemon.h"
#include "log.h"

#define MAX_ROOTS 1024

static void usage(FILE *f)
{
	fprintf(f,
		"usage: trackd -t PID[,PID...] -L LOGDIR [-d] [--pidfile FILE] [options]\n"
		"       trackd status -L LOGDIR      tracked tasks, records, losses, log size\n"
		"       trackd mark -L LOGDIR        write a checkpoint marker, print its seq\n"
		"       trackd stop -L LOGDIR        detach everything, close the log\n"
		"\n"
		"Attaches to the process trees under each PID (following every descendant)\n"
		"and appends how they change to LOGDIR/changelog.img (read it with\n"
		"`ckpt show --log LOGDIR`).\n"
		"\n"
		"options:\n"
		"  -t, --tree PID[,PID...]  roots to track, with all their descendants\n"
		"  -L, --log-dir DIR        the changelog directory (created if missing)\n"
		"  -d, --daemon             detach once tracking runs\n"
		"      --pidfile FILE       write the daemon's PID to FILE\n"
		"      --ring-size BYTES    the kernel event ring (power of two, default 4 MiB)\n"
		"      --no-dirty           no written-page tracking (userfaultfd)\n"
		"  -v[N], --verbosity[=N]   log level 0-4 (default 2); each -v adds one\n"
		"  -o, --log-file FILE      write the log to FILE (default with -d:\n"
		"                           LOGDIR/trackd.log)\n"
		"  -h, --help               this text\n");
}

static int parse_roots(const char *arg, pid_t *roots, size_t *n)
{
	const char *p = arg;

	while (*p) {
		char *end;
		long v = strtol(p, &end, 10);
		if (end == p || v <= 0 || v > (1 << 22) || (*end && *end != ',' && *end != ':')) {
			fprintf(stderr, "trackd: bad PID list '%s'\n", arg);
			return -EINVAL;
		}
		if (*n == MAX_ROOTS) {
			fprintf(stderr, "trackd: more than %d roots\n", MAX_ROOTS);
			return -EINVAL;
		}
		roots[(*n)++] = v;
		p = *end ? end + 1 : end;
	}
	return *n ? 0 : -EINVAL;
}

/* The log directory's fd or -errno (logged). */
static int open_logdir(const char *dir, bool create)
{
	int fd, err;

	if (create && mkdir(dir, 0700) && errno != EEXIST) {
		err = -errno;
		pr_perror("cannot create '%s'", dir);
		return err;
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		pr_perror("cannot open '%s'", dir);
		return err;
	}
	return fd;
}

/* status, mark, stop: one request to the running daemon, its answer on stdout. */
static int client(const char *cmd, const char *dir)
{
	static char buf[CTL_MAX_MSG + 1];
	int dirfd, sk;
	long n;

	dirfd = open_logdir(dir, false);
	if (dirfd < 0)
		return 1;
	sk = ctl_connect(dirfd);
	close(dirfd);
	if (sk < 0) {
		fprintf(stderr, "trackd: no trackd runs on '%s': %s\n", dir, strerror(-sk));
		return 1;
	}
	n = ctl_send(sk, cmd, strlen(cmd), -1);
	if (!n)
		n = ctl_recv(sk, buf, sizeof(buf), NULL);
	if (n < 0) {
		fprintf(stderr, "trackd: no answer from the trackd on '%s': %s\n", dir,
			strerror(-n));
		close(sk);
		return 1;
	}
	close(sk);
	if (strncmp(buf, "ok\n", 3)) {
		fprintf(stderr, "trackd: %s", buf);
		return 1;
	}
	fputs(buf + 3, stdout);
	return 0;
}

/*
 * The lock says one trackd per log directory. It is taken before
 * daemonizing and inherited by the daemon (flock locks follow the open
 * file), so a second trackd fails at once.
 */
static int take_lock(int dirfd, const char *dir)
{
	char buf[32] = "";
	int fd, err;

	fd = openat(dirfd, CTL_LOCK, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		err = -errno;
		pr_perror("cannot open '%s/%s'", dir, CTL_LOCK);
		return err;
	}
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		(void)!pread(fd, buf, sizeof(buf) - 1, 0);
		buf[strcspn(buf, "\n")] = 0;
		pr_err("'%s' is already tracked by trackd %s", dir, *buf ? buf : "(unknown pid)");
		close(fd);
		return -EBUSY;
	}
	return fd;
}

static void write_lock_pid(int fd)
{
	char buf[32];
	int len = snprintf(buf, sizeof(buf), "%d\n", getpid());

	if (ftruncate(fd, 0) || pwrite(fd, buf, len, 0) != len)
		pr_warn("cannot write the PID into the lock file, ignoring");
}

/* The daemon failed: its error lines, written to logfile from start on. */
static void show_errors(const char *logfile, off_t start)
{
	char line[4096];
	FILE *f;

	if (!logfile || !(f = fopen(logfile, "r")))
		return;
	if (!fseeko(f, start, SEEK_SET))
		while (fgets(line, sizeof(line), f))
			if (strstr(line, "Error: "))
				fprintf(stderr, "trackd: %s", strstr(line, "Error: ") + 7);
	fclose(f);
}

/*
 * -d: fork twice (the daemon is no session leader and no child of the
 * caller) and wait until the daemon says it tracks or failed.
 */
static int daemonize(struct daemon_opts *o, int *ret_is_parent)
{
	int p[2], status, err;
	pid_t child;

	if (pipe2(p, O_CLOEXEC)) {
		err = -errno;
		pr_perror("cannot create a pipe");
		return err;
	}
	child = fork();
	if (child < 0) {
		err = -errno;
		pr_perror("cannot fork the daemon");
		close(p[0]);
		close(p[1]);
		return err;
	}
	if (child) {
		char c = '1';
		close(p[1]);
		(void)waitpid(child, &status, 0);
		if (read(p[0], &c, 1) != 1)
			c = '1';
		close(p[0]);
		*ret_is_parent = 1;
		return c == '0' ? 0 : -EIO;
	}
	close(p[0]);
	if (setsid() < 0)
		_exit(1);
	child = fork();
	if (child < 0)
		_exit(1);
	if (child)
		_exit(0);
	int null = open("/dev/null", O_RDWR);
	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		if (null > 2)
			close(null);
	}
	o->ready_fd = p[1];
	*ret_is_parent = 0;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "tree", required_argument, NULL, 't' },
		{ "log-dir", required_argument, NULL, 'L' },
		{ "daemon", no_argument, NULL, 'd' },
		{ "pidfile", required_argument, NULL, 'P' },
		{ "ring-size", required_argument, NULL, 'R' },
		{ "no-dirty", no_argument, NULL, 'N' },
		{ "verbosity", optional_argument, NULL, 'v' },
		{ "log-file", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	static pid_t roots[MAX_ROOTS];
	struct daemon_opts o = { .roots = roots, .ready_fd = -1, .lock_fd = -1 };
	const char *cmd = NULL, *dir = NULL, *logfile = NULL;
	int level = LOG_WARN, bumped = 0, opt, ret;
	bool daemon = false;
	char *end;

	signal(SIGPIPE, SIG_IGN);
	if (argc > 1 && (!strcmp(argv[1], "status") || !strcmp(argv[1], "mark") ||
			 !strcmp(argv[1], "stop"))) {
		cmd = argv[1];
		argv++;
		argc--;
	}
	while ((opt = getopt_long(argc, argv, "t:L:dv::o:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 't':
			if (parse_roots(optarg, roots, &o.nr_roots))
				return 2;
			break;
		case 'L':
			dir = optarg;
			break;
		case 'd':
			daemon = true;
			break;
		case 'P':
			o.pidfile = optarg;
			break;
		case 'R':
			o.ring_size = strtoull(optarg, &end, 0);
			if (*end || o.ring_size < 4096 || (o.ring_size & (o.ring_size - 1))) {
				fprintf(stderr, "trackd: --ring-size must be a power of two >= 4096\n");
				return 2;
			}
			break;
		case 'N':
			o.no_dirty = true;
			break;
		case 'v':
			if (optarg) {
				level = strtol(optarg, &end, 10);
				if (*end || level < 0 || level > 4) {
					fprintf(stderr, "trackd: bad verbosity '%s' (0-4)\n", optarg);
					return 2;
				}
			} else {
				level = (bumped++ ? level : LOG_WARN) + 1;
			}
			break;
		case 'o':
			logfile = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc || !dir) {
		fprintf(stderr, "trackd: %s\n", !dir ? "-L LOGDIR is required" : "stray arguments");
		usage(stderr);
		return 2;
	}
	log_init(NULL, level);
	if (cmd) {
		if (o.nr_roots || daemon || o.pidfile) {
			fprintf(stderr, "trackd: %s takes only -L LOGDIR\n", cmd);
			return 2;
		}
		return client(cmd, dir);
	}
	if (!o.nr_roots) {
		fprintf(stderr, "trackd: -t PID[,PID...] is required\n");
		usage(stderr);
		return 2;
	}

	/* Bad roots are reported here, on the terminal, even with -d. */
	if (daemon_check_roots(&o))
		return 1;
	o.logdir = dir;
	o.dirfd = open_logdir(dir, true);
	if (o.dirfd < 0)
		return 1;
	o.lock_fd = take_lock(o.dirfd, dir);
	if (o.lock_fd < 0)
		return 1;
	if (!logfile && daemon) {
		static char path[4096];
		snprintf(path, sizeof(path), "%s/trackd.log", dir);
		logfile = path;
	}
	if (daemon) {
		struct stat st;
		off_t start = logfile && !stat(logfile, &st) ? st.st_size : 0;
		int is_parent = 0;
		ret = daemonize(&o, &is_parent);
		if (is_parent) {
			if (ret) {
				show_errors(logfile, start);
				fprintf(stderr, "trackd: tracking did not start (log: %s)\n",
					logfile ? logfile : "none");
			}
			return ret ? 1 : 0;
		}
		if (ret)
			_exit(1);
	}
	write_lock_pid(o.lock_fd);
	if (log_init(logfile, level)) {
		fprintf(stderr, "trackd: cannot open the log file '%s'\n", logfile);
		return 1;
	}
	ret = daemon_run(&o);	/* closes the lock */
	log_fini();
	close(o.dirfd);
	return ret;
}
