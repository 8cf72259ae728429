// SPDX-License-Identifier: MIT
/*
 * migrate-bench: what a live migration (ckpt migrate to ckpt receive) costs, against
 * stop-and-copy (ckpt dump, then ckpt restore) of the same workload.
 *
 * The workload (this binary re-executed as "migrate-bench --victim ..."): a session leader and
 * 7 children, 8 processes that share SIZE MiB of private anonymous memory equally, every page
 * filled with the shared pattern, then dirtied at DIRTY MB/s overall (each process writes one
 * word into its share of the pages, spread by a stride walk, at an eighth of the rate); the
 * leader forks a child every FORK ms, which exits after CHILD ms (0: at once) and is reaped.
 * Every process loops once per millisecond and keeps its progress in a slot of a status file
 * (fd 3, a regular file on the bench's tmpfs): an iteration count, and each gap between two
 * iterations longer than GAP_MIN_MS with its start (CLOCK_MONOTONIC, the same clock in every
 * PID namespace here) — the time the process did not run. It writes its slot with pwrite, so
 * the file keeps its size, as dump and restore want.
 *
 * For each size:
 *   migrate     the destination is `ckpt receive --listen 127.0.0.1:PORT -d` in a PID and mount
 *               namespace of its own (its PID 1 is a child of ours that reaps; /proc mounted
 *               there), so the source's PIDs are free in it; `ckpt migrate -t ROOT --to ...`
 *               from here, its output read line by line as it comes. Downtime: migrate's own
 *               figure ("migrated, downtime X ms") and the workload's: the longest gap of any
 *               process that ended after migrate printed its last pre-copy round (before that
 *               line every round's freeze was over). Also: migrate's wall time, the bytes of
 *               every round it printed, against the tree's RSS just before.
 *   stop-copy   a fresh workload of the same size: `ckpt dump -t ROOT -D DIR` (the full memory
 *               copied while frozen, then the tree killed), reaped, `ckpt restore -D DIR -d`;
 *               downtime: the longest gap that ended after the dump started.
 * After each, the driver checks that every process of the workload made progress.
 *
 * Images, status files and logs go to a private tmpfs under $TMPDIR, in a mount namespace of
 * our own, and go with it. The driver is a child subreaper: trackd's daemon, the workloads
 * and the destinations are reaped here, also when a step fails. Timing is reported, never
 * decides the exit status; only errors do.
 *
 *   migrate-bench [--sizes MIB,...] [--dirty MBS] [--fork-ms MS] [--child-ms MS] [-r RUNS]
 *                 [--prewarm GIB] [--log-dir DIR] [--ckpt PATH]
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "bench_pattern.h"

#define NPROC		8
#define SLOT		4096
#define MAX_GAPS	250	/* the last ones of each process; a slot stays in its page */
#define GAP_MIN_MS	5.0
#define SLOT_MAGIC	0x6d69677261746521ULL
#define STEP_TIMEOUT_MS	300000
#define MAX_SIZES	8
#define MAX_RUNS	9
#define SETTLE_MS	1500	/* the workload dirties at its rate before a step */
#define AFTER_MS	400	/* and runs this long after one before its status is read */
#define STRIDE		7919	/* odd: a walk over a power-of-two page count visits every page */

/* Aims from the issue. */
#define AIM_DOWNTIME_MS	50.0
#define AIM_SCALE	1.5	/* the largest size's downtime / the smallest's */
#define AIM_SENT_RSS	1.5	/* bytes sent / RSS */

struct gap {
	double start_ms, len_ms;
};

/* One process's slot in the status file. */
struct slot {
	uint64_t magic;
	int32_t idx, pid;
	uint64_t iters;
	uint32_t nr_gaps, pad;
	struct gap gaps[MAX_GAPS];	/* a ring: gap k at k % MAX_GAPS */
};
_Static_assert(sizeof(struct slot) <= SLOT, "a slot fits its page");

struct opts {
	long sizes[MAX_SIZES];
	int nr_sizes;
	double dirty_mbs;
	int fork_ms, child_ms;
	int runs;
	long prewarm_gib;
	const char *log_dir;	/* NULL: logs stay in the private tmpfs */
	char ckpt[PATH_MAX];
};

/* What one run of one size measured. */
struct result {
	/* migrate */
	double mig_downtime;	/* migrate's figure, ms */
	double mig_gap;		/* the workload's, ms */
	double mig_precopy_gap;	/* the longest gap during the pre-copy rounds, ms */
	double mig_wall;	/* ms */
	int rounds;		/* pre-copy rounds, the final one not counted */
	double sent;		/* bytes, every round */
	double rss;		/* bytes, the tree before the migration */
	/* stop-and-copy */
	double sc_gap;		/* ms */
	double sc_dump, sc_restore;	/* wall, ms */
	double sc_image;	/* bytes */
};

static struct opts o = { .sizes = { 256, 2048, 4096 }, .nr_sizes = 3, .dirty_mbs = 20,
			 .fork_ms = 100, .child_ms = 0, .runs = 1, .prewarm_gib = -1 };
static char self_exe[PATH_MAX];
static char tmp[PATH_MAX];	/* the private tmpfs */
static pid_t victim = -1;	/* the workload's root, here */
static pid_t dest = -1;		/* the destination's PID 1, here */
static pid_t migrate = -1;
static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
	interrupted = 1;
}

/* ---------------------------------------------------------------- the victim */

/* One of the 8: fill its share, mark itself ready, then loop until killed. */
static int victim_proc(int idx, int status_fd, size_t len, double dirty_bps, int fork_ms,
		       int child_ms)
{
	struct timespec ms1 = { 0, 1000 * 1000 };
	size_t npages = len / BENCH_PAGE, done = 0;
	double pages_per_ms = dirty_bps / NPROC / BENCH_PAGE / 1e3, t0, last, next_fork;
	struct slot s = { .magic = SLOT_MAGIC, .idx = idx, .pid = getpid() };
	off_t at = (off_t)idx * SLOT;
	uint64_t *mem;

	mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return 3;
	bench_pattern_fill(mem, len, idx);
	if (pwrite(status_fd, &s, sizeof(s), at) != sizeof(s))
		return 3;
	t0 = last = next_fork = bench_now_ms();
	for (;;) {
		double now = bench_now_ms();
		size_t target = (size_t)((now - t0) * pages_per_ms);
		bool dirty_slot = false;

		if (now - last > GAP_MIN_MS) {
			s.gaps[s.nr_gaps % MAX_GAPS] = (struct gap){ last, now - last };
			s.nr_gaps++;
			dirty_slot = true;
		}
		last = now;
		s.iters++;
		/* Behind after a freeze: catch up, but never more than a second's worth at once. */
		if (target > done + (size_t)(pages_per_ms * 1000) + 1)
			done = target - (size_t)(pages_per_ms * 1000) - 1;
		for (; done < target; done++) {
			uint64_t *w = &mem[(done * STRIDE % npages) * (BENCH_PAGE / sizeof(*mem))];

			*w = ~*w;
		}
		if (idx == 0 && fork_ms > 0 && now >= next_fork) {
			pid_t c = fork();

			if (c == 0) {
				if (child_ms > 0) {
					struct timespec life = { child_ms / 1000,
								 child_ms % 1000 * 1000000L };

					nanosleep(&life, NULL);
				}
				_exit(0);
			}
			next_fork += fork_ms;
			if (next_fork < now)
				next_fork = now + fork_ms;
		}
		/* The 7 others never exit: what is reaped here is a short-lived child. */
		if (idx == 0)
			while (waitpid(-1, NULL, WNOHANG) > 0)
				;
		if (dirty_slot || !(s.iters % 128))
			(void)!pwrite(status_fd, &s, dirty_slot ? sizeof(s) : 32, at);
		nanosleep(&ms1, NULL);
	}
}

static int victim_main(int argc, char **argv)
{
	size_t len;
	double dirty_bps;
	int fork_ms, child_ms;

	if (argc != 6)
		return 2;
	len = ((size_t)atol(argv[2]) << 20) / NPROC / BENCH_PAGE * BENCH_PAGE;
	dirty_bps = atof(argv[3]) * 1e6;
	fork_ms = atoi(argv[4]);
	child_ms = atoi(argv[5]);
	if (setsid() < 0)
		return 3;
	for (int i = 1; i < NPROC; i++) {
		pid_t c = fork();

		if (c < 0)
			return 3;
		if (c == 0)
			return victim_proc(i, 3, len, dirty_bps, 0, 0);
	}
	return victim_proc(0, 3, len, dirty_bps, fork_ms, child_ms);
}

/* ---------------------------------------------------------------- status file */

static int status_open(const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0 || ftruncate(fd, NPROC * SLOT))
		bench_die("cannot create '%s': %s", path, strerror(errno));
	return fd;
}

static void status_read(int fd, struct slot *s)
{
	for (int i = 0; i < NPROC; i++)
		if (pread(fd, &s[i], sizeof(s[i]), (off_t)i * SLOT) != sizeof(s[i]))
			bench_die("reading the status file: %s", strerror(errno));
}

/* The longest gap of any process that ended after t (ms); and the longest before into ret_before. */
static double status_gap_after(const struct slot *s, double t, double *ret_before)
{
	double best = 0, before = 0;

	for (int i = 0; i < NPROC; i++) {
		uint32_t n = s[i].nr_gaps, first = n > MAX_GAPS ? n - MAX_GAPS : 0;

		for (uint32_t k = first; k < n; k++) {
			const struct gap *g = &s[i].gaps[k % MAX_GAPS];

			if (g->start_ms + g->len_ms >= t)
				best = g->len_ms > best ? g->len_ms : best;
			else
				before = g->len_ms > before ? g->len_ms : before;
		}
	}
	if (ret_before)
		*ret_before = before;
	return best;
}

/* ---------------------------------------------------------------- processes */

/* Reap whatever has ended (orphans come to us: we are a subreaper). */
static void reap_quiet(void)
{
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

static void kill_wait(pid_t *pid)
{
	if (*pid <= 0)
		return;
	kill(*pid, SIGKILL);
	while (waitpid(*pid, NULL, 0) < 0 && errno == EINTR)
		;
	*pid = -1;
}

/* The victim's tree, every process in it, by its session. */
static void victim_kill(void)
{
	if (victim <= 0)
		return;
	kill(-victim, SIGKILL);
	kill(victim, SIGKILL);
	/* Its children come to us; wait until none of the session is left. */
	for (int i = 0; i < 1000; i++) {
		if (kill(-victim, 0) < 0 && kill(victim, 0) < 0)
			break;
		(void)waitpid(-1, NULL, WNOHANG);
		usleep(2000);
	}
	reap_quiet();
	victim = -1;
}

static void cleanup(void)
{
	char cmd[PATH_MAX + 16];

	kill_wait(&migrate);
	kill_wait(&dest);
	victim_kill();
	/* trackd's daemon (migrate stops it) and anything else that came to us. */
	for (int i = 0; i < 500; i++) {
		pid_t p = waitpid(-1, NULL, WNOHANG);

		if (p < 0 && errno == ECHILD)
			break;
		if (p == 0)
			usleep(10000);
	}
	if (tmp[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'/*", tmp);
		(void)!system(cmd);
		(void)umount2(tmp, MNT_DETACH);
		(void)rmdir(tmp);
		tmp[0] = 0;
	}
}

static void check_interrupt(void)
{
	if (interrupted)
		bench_die("interrupted");
}

/* Start the workload of size_mib with status_fd as its fd 3; wait until all 8 are filled. */
static void victim_start(long size_mib, int status_fd)
{
	char sz[32], dirty[32], fork_ms[16], child_ms[16];
	struct slot s[NPROC];
	double end;

	snprintf(sz, sizeof(sz), "%ld", size_mib);
	snprintf(dirty, sizeof(dirty), "%g", o.dirty_mbs);
	snprintf(fork_ms, sizeof(fork_ms), "%d", o.fork_ms);
	snprintf(child_ms, sizeof(child_ms), "%d", o.child_ms);
	fflush(NULL);
	victim = fork();
	if (victim < 0)
		bench_die("fork: %s", strerror(errno));
	if (!victim) {
		int null = open("/dev/null", O_RDWR);

		/*
		 * 0-2 on /dev/null and the status file as 3: dump refuses pipes to the outside.
		 * dup2 onto itself would keep its close-on-exec flag: move it off first.
		 */
		if (status_fd < 4)
			status_fd = fcntl(status_fd, F_DUPFD_CLOEXEC, 4);
		if (null < 0 || status_fd < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 ||
		    dup2(null, 2) < 0 || dup2(status_fd, 3) < 0 ||
		    syscall(SYS_close_range, 4, ~0U, 0) < 0)
			_exit(127);
		execl(self_exe, self_exe, "--victim", sz, dirty, fork_ms, child_ms, (char *)NULL);
		_exit(127);
	}
	end = bench_now_ms() + STEP_TIMEOUT_MS;
	for (;;) {
		int ready = 0;

		status_read(status_fd, s);
		for (int i = 0; i < NPROC; i++)
			ready += s[i].magic == SLOT_MAGIC;
		if (ready == NPROC)
			break;
		check_interrupt();
		if (waitpid(victim, NULL, WNOHANG) == victim) {
			victim = -1;
			bench_die("the workload died while filling its memory");
		}
		if (bench_now_ms() > end)
			bench_die("the workload did not fill its memory in %d ms", STEP_TIMEOUT_MS);
		usleep(20000);
	}
}

/* The workload's RSS: every process of its slots, from smaps_rollup. */
static double victim_rss(const struct slot *s)
{
	double total = 0;

	for (int i = 0; i < NPROC; i++) {
		char path[64], line[256];
		unsigned long kb;
		FILE *f;

		snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", s[i].pid);
		f = fopen(path, "r");
		if (!f)
			bench_die("cannot open '%s': %s", path, strerror(errno));
		while (fgets(line, sizeof(line), f))
			if (sscanf(line, "Rss: %lu kB", &kb) == 1)
				total += kb * 1024.0;
		fclose(f);
	}
	return total;
}

/* Every process of the slots made progress since before[]. */
static void check_progress(const struct slot *before, const struct slot *after, const char *what)
{
	for (int i = 0; i < NPROC; i++)
		if (after[i].magic != SLOT_MAGIC || after[i].iters <= before[i].iters)
			bench_die("%s: process %d of the workload (PID %d) made no progress after it",
				  what, i, before[i].pid);
}

/* ---------------------------------------------------------------- destination */

/* A TCP port on 127.0.0.1 that is free now. */
static int free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t l = sizeof(a);
	int sk = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port;

	if (sk < 0 || bind(sk, (struct sockaddr *)&a, sizeof(a)) ||
	    getsockname(sk, (struct sockaddr *)&a, &l))
		bench_die("cannot find a free port: %s", strerror(errno));
	port = ntohs(a.sin_port);
	close(sk);
	return port;
}

/*
 * The destination: a child of ours in new PID and mount namespaces, its PID 1, with /proc of
 * that namespace; it runs `ckpt receive` (output into out) and reaps every orphan. When it is
 * killed, every task of its namespace goes with it.
 */
static void dest_start(const char *listen, const char *out, const char *log)
{
	double end;

	fflush(NULL);
	dest = syscall(SYS_clone, CLONE_NEWPID | CLONE_NEWNS | SIGCHLD, NULL, NULL, NULL, NULL);
	if (dest < 0)
		bench_die("cannot make a PID namespace: %s", strerror(errno));
	if (!dest) {
		pid_t recv;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
		    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL))
			_exit(126);
		recv = fork();
		if (recv == 0) {
			int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
			int null = open("/dev/null", O_RDONLY);
			sigset_t none;

			sigemptyset(&none);
			sigprocmask(SIG_SETMASK, &none, NULL);
			if (fd < 0 || null < 0 || dup2(null, 0) < 0 || dup2(fd, 1) < 0 ||
			    dup2(fd, 2) < 0 || syscall(SYS_close_range, 3, ~0U, 0) < 0)
				_exit(127);
			execl(o.ckpt, o.ckpt, "receive", "--listen", listen, "-d", "-v3", "-o", log,
			      (char *)NULL);
			_exit(127);
		}
		for (;;)
			if (wait(NULL) < 0 && errno == ECHILD)
				pause();
	}
	end = bench_now_ms() + 30000;
	for (;;) {
		char buf[4096] = "";
		int fd = open(out, O_RDONLY);

		if (fd >= 0) {
			(void)!read(fd, buf, sizeof(buf) - 1);
			close(fd);
		}
		if (strstr(buf, "listening on"))
			return;
		check_interrupt();
		if (waitpid(dest, NULL, WNOHANG) == dest) {
			dest = -1;
			bench_die("the destination ended before it listened: %s", buf);
		}
		if (bench_now_ms() > end || strstr(buf, "rror"))
			bench_die("ckpt receive did not listen on %s: %s", listen, buf);
		usleep(10000);
	}
}

/* ---------------------------------------------------------------- steps */

/* A file's contents into buf (NUL-terminated, truncated); "" when it cannot be read. */
static void slurp(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY);
	ssize_t n = fd >= 0 ? read(fd, buf, len - 1) : -1;

	buf[n > 0 ? n : 0] = 0;
	if (fd >= 0)
		close(fd);
}

/*
 * ckpt migrate -t ROOT --to ADDR, its output read as it comes: every round's bytes, the time
 * the last pre-copy round's line came (ret_last_round), migrate's downtime, its wall time.
 */
static void run_migrate(const char *to, const char *log, struct result *r, double *ret_last_round)
{
	char root[16], buf[65536], line[1024];
	size_t got = 0, ll = 0;
	int p[2], status, err;
	double t0;

	snprintf(root, sizeof(root), "%d", victim);
	if (pipe2(p, O_CLOEXEC))
		bench_die("pipe: %s", strerror(errno));
	fflush(NULL);
	t0 = bench_now_ms();
	migrate = fork();
	if (migrate < 0)
		bench_die("fork: %s", strerror(errno));
	if (!migrate) {
		int null = open("/dev/null", O_RDONLY);

		if (null < 0 || dup2(null, 0) < 0 || dup2(p[1], 1) < 0 || dup2(p[1], 2) < 0 ||
		    syscall(SYS_close_range, 3, ~0U, 0) < 0)
			_exit(127);
		execl(o.ckpt, o.ckpt, "migrate", "-t", root, "--to", to, "-v3", "-o", log,
		      (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	r->rounds = 0;
	r->sent = 0;
	r->mig_downtime = -1;
	*ret_last_round = t0;
	for (;;) {
		char c;
		ssize_t n = read(p[0], &c, 1);

		if (n < 0 && errno == EINTR) {
			check_interrupt();
			continue;
		}
		if (n <= 0)
			break;
		if (got + 1 < sizeof(buf))
			buf[got++] = c;
		if (c != '\n') {
			if (ll + 1 < sizeof(line))
				line[ll++] = c;
			continue;
		}
		line[ll] = 0;
		ll = 0;
		unsigned long long k, bytes;
		double ms;
		if (sscanf(line, "round %llu: %llu bytes", &k, &bytes) == 2) {
			*ret_last_round = bench_now_ms();
			r->rounds++;
			r->sent += bytes;
			fprintf(stderr, "    %s\n", line);
		} else if (sscanf(line, "final round %llu: %llu bytes", &k, &bytes) == 2) {
			char *d = strstr(line, "downtime ");

			r->sent += bytes;
			if (d && sscanf(d, "downtime %lf", &ms) == 1)
				r->mig_downtime = ms;
			fprintf(stderr, "    %s\n", line);
		}
	}
	buf[got] = 0;
	close(p[0]);
	err = bench_wait(migrate, &status, NULL, STEP_TIMEOUT_MS);
	migrate = -1;
	r->mig_wall = bench_now_ms() - t0;
	if (err || !WIFEXITED(status) || WEXITSTATUS(status))
		bench_die("ckpt migrate -t %s --to %s failed (log '%s'):\n%s", root, to, log, buf);
	if (r->mig_downtime < 0)
		bench_die("no 'migrated, downtime X ms' from ckpt migrate:\n%s", buf);
}

static double dir_bytes(const char *dir)
{
	char cmd[PATH_MAX + 32], out[64] = "";
	FILE *f;

	snprintf(cmd, sizeof(cmd), "du -sb '%s'", dir);
	f = popen(cmd, "r");
	if (!f || !fgets(out, sizeof(out), f))
		bench_die("du '%s' failed", dir);
	pclose(f);
	return atof(out);
}

static void step_migrate(long size_mib, int run, struct result *r)
{
	char status_path[PATH_MAX], out[PATH_MAX], rlog[PATH_MAX], mlog[PATH_MAX], to[64];
	char buf[16384];
	struct slot before[NPROC], after[NPROC];
	const char *ld = o.log_dir ? o.log_dir : tmp;
	double last_round;
	int fd;

	bench_path_fmt(status_path, "%s/status-mig-%ld-%d", tmp, size_mib, run);
	bench_path_fmt(out, "%s/receive-%ld-%d.out", ld, size_mib, run);
	bench_path_fmt(rlog, "%s/receive-%ld-%d.log", ld, size_mib, run);
	bench_path_fmt(mlog, "%s/migrate-%ld-%d.log", ld, size_mib, run);
	snprintf(to, sizeof(to), "127.0.0.1:%d", free_port());
	fd = status_open(status_path);
	victim_start(size_mib, fd);
	usleep(SETTLE_MS * 1000);
	check_interrupt();
	status_read(fd, before);
	r->rss = victim_rss(before);
	dest_start(to, out, rlog);
	fprintf(stderr, "  migrate: %d processes, RSS %.0f MiB, to %s\n", NPROC, r->rss / 1048576.0,
		to);
	run_migrate(to, mlog, r, &last_round);
	/* The source's tree was killed by migrate's final dump: reap it here. */
	for (int i = 0; i < 500 && kill(-victim, 0) == 0; i++) {
		reap_quiet();
		usleep(2000);
	}
	reap_quiet();
	if (kill(-victim, 0) == 0)
		bench_die("the source's tree is still here after ckpt migrate");
	victim = -1;
	usleep(AFTER_MS * 1000);
	status_read(fd, after);
	check_progress(before, after, "migrate");
	r->mig_gap = status_gap_after(after, last_round, &r->mig_precopy_gap);
	slurp(out, buf, sizeof(buf));
	if (!strstr(buf, "running:"))
		bench_die("ckpt receive did not say 'running:' (log '%s'):\n%s", rlog, buf);
	kill_wait(&dest);
	reap_quiet();
	close(fd);
	fprintf(stderr, "  migrate: %d pre-copy rounds + final, %.1f MiB sent in %.0f ms; downtime "
		"%.1f ms (migrate), %.1f ms (the workload's longest pause; pre-copy rounds: %.1f ms)\n",
		r->rounds, r->sent / 1048576.0, r->mig_wall, r->mig_downtime, r->mig_gap,
		r->mig_precopy_gap);
}

static void step_stop_copy(long size_mib, int run, struct result *r)
{
	char status_path[PATH_MAX], dir[PATH_MAX], dlog[PATH_MAX], rlog[PATH_MAX], root[16];
	char out[8192];
	struct slot before[NPROC], after[NPROC];
	const char *ld = o.log_dir ? o.log_dir : tmp;
	pid_t root_pid;
	double t0;
	int fd;

	bench_path_fmt(status_path, "%s/status-sc-%ld-%d", tmp, size_mib, run);
	bench_path_fmt(dir, "%s/sc-%ld-%d", tmp, size_mib, run);
	bench_path_fmt(dlog, "%s/dump-%ld-%d.log", ld, size_mib, run);
	bench_path_fmt(rlog, "%s/restore-%ld-%d.log", ld, size_mib, run);
	fd = status_open(status_path);
	victim_start(size_mib, fd);
	usleep(SETTLE_MS * 1000);
	check_interrupt();
	status_read(fd, before);
	root_pid = victim;
	snprintf(root, sizeof(root), "%d", root_pid);

	const char *dump[] = { o.ckpt, "dump", "-t", root, "-D", dir, "-v3", "-o", dlog, NULL };
	t0 = bench_now_ms();
	if (bench_run(dump, out, sizeof(out), STEP_TIMEOUT_MS, &r->sc_dump))
		bench_die("ckpt dump -t %s -D %s failed (log '%s'): %s", root, dir, dlog, out);
	/* Killed by the dump: every PID of it must be free before the restore. */
	for (int i = 0; i < 1000 && (kill(-root_pid, 0) == 0 || kill(root_pid, 0) == 0); i++) {
		reap_quiet();
		usleep(1000);
	}
	reap_quiet();
	if (kill(-root_pid, 0) == 0)
		bench_die("the dumped tree is still here after ckpt dump");
	victim = -1;
	r->sc_image = dir_bytes(dir);

	const char *restore[] = { o.ckpt, "restore", "-D", dir, "-d", "-v3", "-o", rlog, NULL };
	if (bench_run(restore, out, sizeof(out), STEP_TIMEOUT_MS, &r->sc_restore))
		bench_die("ckpt restore -D %s failed (log '%s'): %s", dir, rlog, out);
	victim = root_pid;	/* restored with its PID, reparented to us */
	usleep(AFTER_MS * 1000);
	status_read(fd, after);
	check_progress(before, after, "stop-and-copy");
	r->sc_gap = status_gap_after(after, t0, NULL);
	victim_kill();
	close(fd);
	{
		char cmd[PATH_MAX + 16];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd))
			bench_die("could not remove '%s'", dir);
	}
	fprintf(stderr, "  stop-and-copy: dump %.0f ms, restore %.0f ms, images %.1f MiB; downtime "
		"%.1f ms (the workload's longest pause)\n", r->sc_dump, r->sc_restore,
		r->sc_image / 1048576.0, r->sc_gap);
}

/* ---------------------------------------------------------------- report */

struct summary {
	long size;
	struct bench_stat downtime, gap, wall, sent_rss, sc_gap;
	double sent, rss;
	double rounds;
};

static struct summary summarize(long size, struct result *rs, int n)
{
	double v[MAX_RUNS];
	struct summary s = { .size = size };
	char scenario[32];

#define STAT(field, scale) ({ for (int i = 0; i < n; i++) v[i] = rs[i].field * (scale); \
			      bench_stat_of(v, n); })
	snprintf(scenario, sizeof(scenario), "migrate-%ldm", size);
	s.downtime = STAT(mig_downtime, 1);
	s.gap = STAT(mig_gap, 1);
	s.wall = STAT(mig_wall, 1);
	s.sc_gap = STAT(sc_gap, 1);
	for (int i = 0; i < n; i++)
		v[i] = rs[i].sent / rs[i].rss;
	s.sent_rss = bench_stat_of(v, n);
	s.sent = STAT(sent, 1.0 / 1048576).median;
	s.rss = STAT(rss, 1.0 / 1048576).median;
	s.rounds = STAT(rounds, 1).median;

	bench_line(scenario, "downtime", "ms", s.downtime, n);
	bench_line(scenario, "downtime_workload", "ms", s.gap, n);
	bench_line(scenario, "precopy_pause_workload", "ms", STAT(mig_precopy_gap, 1), n);
	bench_line(scenario, "total_time", "ms", s.wall, n);
	bench_line(scenario, "precopy_rounds", "count", STAT(rounds, 1), n);
	bench_line(scenario, "bytes_sent", "MiB", STAT(sent, 1.0 / 1048576), n);
	bench_line(scenario, "rss", "MiB", STAT(rss, 1.0 / 1048576), n);
	bench_line(scenario, "sent_vs_rss", "ratio", s.sent_rss, n);
	bench_line(scenario, "stop_copy_downtime_workload", "ms", s.sc_gap, n);
	bench_line(scenario, "stop_copy_dump_time", "ms", STAT(sc_dump, 1), n);
	bench_line(scenario, "stop_copy_restore_time", "ms", STAT(sc_restore, 1), n);
	bench_line(scenario, "stop_copy_image_size", "MiB", STAT(sc_image, 1.0 / 1048576), n);
#undef STAT
	return s;
}

static void report(struct summary *ss, int n)
{
	bool down_ok = true, ratio_ok = true;

	printf("\nmigrate-bench: %d processes, %.0f MB/s dirtied overall, a fork every %d ms "
	       "(the child exits %s); loopback TCP; median of %d run(s)\n", NPROC, o.dirty_mbs,
	       o.fork_ms, o.child_ms ? "after a while" : "at once", o.runs);
	printf("  %-8s %8s %10s %10s %10s %9s %9s %8s %11s\n", "size", "rounds", "downtime",
	       "(workload)", "total", "sent MiB", "RSS MiB", "sent/RSS", "stop&copy");
	for (int i = 0; i < n; i++) {
		printf("  %5ld MiB %7.1f %8.1f ms %7.1f ms %7.0f ms %9.1f %9.1f %7.3fx %8.0f ms\n",
		       ss[i].size, ss[i].rounds, ss[i].downtime.median, ss[i].gap.median,
		       ss[i].wall.median, ss[i].sent, ss[i].rss, ss[i].sent_rss.median,
		       ss[i].sc_gap.median);
		down_ok &= ss[i].downtime.max < AIM_DOWNTIME_MS && ss[i].gap.max < AIM_DOWNTIME_MS;
		ratio_ok &= ss[i].sent_rss.max < AIM_SENT_RSS;
	}
	printf("  downtime < %.0f ms (migrate's figure and the workload's pause): %s\n",
	       AIM_DOWNTIME_MS, down_ok ? "met" : "MISSED");
	printf("  bytes sent < %.1fx RSS: %s\n", AIM_SENT_RSS, ratio_ok ? "met" : "MISSED");
	if (n >= 2) {
		struct summary *lo = &ss[0], *hi = &ss[0];

		for (int i = 1; i < n; i++) {
			lo = ss[i].size < lo->size ? &ss[i] : lo;
			hi = ss[i].size > hi->size ? &ss[i] : hi;
		}
		double r1 = hi->downtime.median / lo->downtime.median;
		double r2 = hi->gap.median / lo->gap.median;
		char scenario[64];

		snprintf(scenario, sizeof(scenario), "migrate-%ldm-vs-%ldm", hi->size, lo->size);
		bench_line(scenario, "downtime_ratio", "ratio", bench_stat_one(r1), 1);
		bench_line(scenario, "downtime_workload_ratio", "ratio", bench_stat_one(r2), 1);
		printf("  downtime %ld MiB / %ld MiB: %.2fx (workload's pause: %.2fx)   aim <= %.1fx: "
		       "%s\n", hi->size, lo->size, r1, r2, AIM_SCALE,
		       r1 <= AIM_SCALE && r2 <= AIM_SCALE ? "met" : "MISSED");
		printf("  stop-and-copy downtime %ld MiB / %ld MiB: %.2fx; live migration's "
		       "downtime against stop-and-copy's at %ld MiB: %.3fx\n", hi->size, lo->size,
		       hi->sc_gap.median / lo->sc_gap.median, hi->size,
		       hi->gap.median / hi->sc_gap.median);
	}
	fflush(stdout);
}

/* ---------------------------------------------------------------- driver */

/* A private tmpfs under $TMPDIR in a mount namespace of ours: it goes when we do. */
static void setup_tmpfs(long max_mib)
{
	char opts[64];

	bench_path_fmt(tmp, "%s/migrate-bench.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(tmp)) {
		tmp[0] = 0;
		bench_die("mkdtemp: %s", strerror(errno));
	}
	if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL)) {
		rmdir(tmp);
		tmp[0] = 0;
		bench_die("cannot make a mount namespace: %s (run as root)", strerror(errno));
	}
	/* One stop-and-copy image at a time, and the logs. */
	snprintf(opts, sizeof(opts), "size=%ldm,mode=0700", max_mib + max_mib / 8 + 512);
	if (mount("migrate-bench", tmp, "tmpfs", 0, opts)) {
		rmdir(tmp);
		tmp[0] = 0;
		bench_die("mount tmpfs: %s", strerror(errno));
	}
}

/* MemAvailable in MiB, -1 if unknown. */
static long mem_available_mib(void)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemAvailable: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb < 0 ? -1 : kb / 1024;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: migrate-bench [--sizes MIB,...] [--dirty MBS] [--fork-ms MS] [--child-ms MS]\n"
		   "                     [-r RUNS] [--prewarm GIB] [--log-dir DIR] [--ckpt PATH]\n"
		   "  --sizes     the workload's memory, in total over its %d processes (default "
		   "256,2048,4096)\n"
		   "  --dirty     MB/s the workload writes, overall (default 20)\n"
		   "  --fork-ms   a fork (and an exit) every MS (default 100; 0: none)\n"
		   "  --child-ms  how long each such child lives (default 0: it exits at once)\n"
		   "  -r          runs per size (default 1, at most %d)\n"
		   "  --prewarm   GiB to touch and free first (default: 3 times the largest size)\n"
		   "  --log-dir   keep ckpt's logs there\n", NPROC, MAX_RUNS);
}

static int parse_sizes(const char *arg)
{
	char *end;

	o.nr_sizes = 0;
	for (const char *p = arg; *p;) {
		long v = strtol(p, &end, 10);

		if (end == p || v < 64 || o.nr_sizes == MAX_SIZES || (*end && *end != ','))
			return -1;
		o.sizes[o.nr_sizes++] = v;
		p = *end ? end + 1 : end;
	}
	return o.nr_sizes ? 0 : -1;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "sizes", required_argument, NULL, 'S' },
		{ "dirty", required_argument, NULL, 'D' },
		{ "fork-ms", required_argument, NULL, 'F' },
		{ "child-ms", required_argument, NULL, 'c' },
		{ "runs", required_argument, NULL, 'r' },
		{ "prewarm", required_argument, NULL, 'P' },
		{ "log-dir", required_argument, NULL, 'L' },
		{ "ckpt", required_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	static struct result rs[MAX_SIZES][MAX_RUNS];
	struct summary ss[MAX_SIZES];
	char trackd[PATH_MAX], *slash;
	long max_mib = 0;
	int c, ns = 0;

	if (argc >= 2 && !strcmp(argv[1], "--victim"))
		return victim_main(argc, argv);
	bench_prog = "migrate-bench";
	bench_on_die = cleanup;
	bench_self_relative(self_exe, "migrate-bench");
	bench_self_relative(o.ckpt, "../ckpt");
	while ((c = getopt_long(argc, argv, "r:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'S':
			if (parse_sizes(optarg)) {
				usage(stderr);
				return 2;
			}
			break;
		case 'D':
			o.dirty_mbs = atof(optarg);
			break;
		case 'F':
			o.fork_ms = atoi(optarg);
			break;
		case 'c':
			o.child_ms = atoi(optarg);
			break;
		case 'r':
			o.runs = atoi(optarg);
			break;
		case 'P':
			o.prewarm_gib = atol(optarg);
			break;
		case 'L':
			o.log_dir = optarg;
			break;
		case 'C':
			snprintf(o.ckpt, sizeof(o.ckpt), "%s", optarg);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc || o.dirty_mbs < 0 || o.fork_ms < 0 || o.child_ms < 0 || o.runs < 1 ||
	    o.runs > MAX_RUNS || o.prewarm_gib < -1) {
		usage(stderr);
		return 2;
	}
	/* migrate runs the trackd next to the ckpt binary. */
	snprintf(trackd, sizeof(trackd), "%s", o.ckpt);
	slash = strrchr(trackd, '/');
	snprintf(slash ? slash + 1 : trackd, sizeof(trackd) - (slash ? slash + 1 - trackd : 0),
		 "trackd");
	if (access(o.ckpt, X_OK) || access(trackd, X_OK)) {
		fprintf(stderr, "migrate-bench: need '%s' and '%s' next to it (make bench builds "
			"them)\n", o.ckpt, trackd);
		return 2;
	}
	for (int i = 0; i < o.nr_sizes; i++)
		max_mib = o.sizes[i] > max_mib ? o.sizes[i] : max_mib;
	if (o.prewarm_gib < 0)
		o.prewarm_gib = (3 * max_mib + 1023) / 1024;
	bench_host_info();
	sigaction(SIGINT, &(struct sigaction){ .sa_handler = on_interrupt }, NULL);
	sigaction(SIGTERM, &(struct sigaction){ .sa_handler = on_interrupt }, NULL);
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	setup_tmpfs(max_mib);

	fprintf(stderr, "migrate-bench: %s, kernel %s, CPU %s, %ld CPUs; sizes", o.ckpt,
		bench_kernel, bench_cpu, sysconf(_SC_NPROCESSORS_ONLN));
	for (int i = 0; i < o.nr_sizes; i++)
		fprintf(stderr, "%s%ld", i ? "," : " ", o.sizes[i]);
	fprintf(stderr, " MiB, %d run(s) each, prewarm %ld GiB\n", o.runs, o.prewarm_gib);
	bench_prewarm(o.prewarm_gib);

	for (int i = 0; i < o.nr_sizes; i++) {
		long need = 4 * o.sizes[i] + 1024, avail = mem_available_mib();

		/* Source, its round 0, the destination's copy of it and the restored tree. */
		if (avail >= 0 && avail < need) {
			fprintf(stderr, "migrate-bench: %ld MiB: skipped, %ld MiB available, about %ld "
				"needed\n", o.sizes[i], avail, need);
			continue;
		}
		for (int k = 0; k < o.runs; k++) {
			fprintf(stderr, "%ld MiB, run %d:\n", o.sizes[i], k + 1);
			step_migrate(o.sizes[i], k, &rs[i][k]);
			step_stop_copy(o.sizes[i], k, &rs[i][k]);
		}
		ss[ns++] = summarize(o.sizes[i], rs[i], o.runs);
	}
	if (!ns)
		bench_die("every size was skipped");
	report(ss, ns);
	cleanup();
	return 0;
}
