// SPDX-License-Identifier: MIT
/*
 * incr_test: incremental dumps (trackd + `ckpt dump --since-log [--prev-images]`).
 *
 *  - exact: a victim driven step by step (commands over FIFOs in the test dir, replies on
 *    another) writes known pages, has the kernel write two (read() into them), maps a
 *    region, unmaps one, starts and ends a thread, forks a child that fills memory, moves
 *    it to a group of its own, lets it exec, kills it, discards pages, moves a region
 *    (mremap). After each --leave-running delta, the pages with data in that level inside
 *    the victim's own regions are exactly the ones it wrote or mapped (a few outside:
 *    stack, libc), discarded or moved-away pages are never taken from the parent images,
 *    and delta.img says SAME / NEW / EXECED / EXITED, new and gone threads, regrouped,
 *    added / removed / touched ranges. --verify-maps on an unchanged victim passes with
 *    maps_reused, an mprotect clears it. A --leave-running top image is refused by
 *    restore; the final delta restores and the victim checks its memory (a shared
 *    anonymous region, written every round, included).
 *  - same_moment: victim stopped; a --copy-frozen delta and a plain full dump taken right
 *    after list the same pages with the same CRC-32C sums; the final delta restores, and
 *    so does the --copy-frozen round (stopped, as it was).
 *  - chain10: ten deltas (--prev-images relative to -D, absolute, relative to the working
 *    directory), restore of the top, the victim checks itself; the top lists only the last
 *    round's pages as its own.
 *  - broken_chain: a missing middle parent, a missing grand-parent and a foreign parent
 *    fail before any task is created, naming the directory or parent_dump_id; then the
 *    intact chain restores.
 *  - dump_errors: --prev-images without --since-log, a log of other roots, prev images of
 *    another tree, prev images taken with another changelog: each fails clearly, leaves
 *    no complete-looking dump, and the victims are unharmed. A new trackd run on the same
 *    log directory is no error: the delta re-reads the process, naming the GAP.
 *  - tree_files: a tree (children, a thread, a pipe with data in flight, a file with an
 *    offset) survives full + delta + final delta.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cr.h"
#include "incr.h"
#include "run.h"

CR_FIXTURE(incr);

#define PG		INCR_PAGE_SIZE
#define A_PAGES		256
#define B_PAGES		16
#define C_PAGES		32
#define D_PAGES		8
#define W_PER_ROUND	5
#define OUTSIDE_MAX	48	/* data pages of a delta outside the test's regions */
#define S_PAGES		8	/* shared anonymous */
#define WAIT_MS		INCR_WAIT_MS

/* ------------------------------------------------------------------ victim side */

static unsigned char *reg_a, *reg_b, *reg_c, *reg_s;
static unsigned seed_a[A_PAGES], seed_s[S_PAGES];
static pid_t child_pid;
static int child_wfd = -1;
static bool execed;

/* Page j of the pages written in round n (1-based): distinct for j < W_PER_ROUND. */
static unsigned round_page(unsigned n, unsigned j)
{
	return (n * 11 + j * 29) % A_PAGES;
}

static void *map_anon(size_t pages)
{
	void *p = mmap(NULL, pages * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		       -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static void __attribute__((noreturn)) child_main(int rfd)
{
	unsigned char *d = map_anon(D_PAGES);
	char c;

	if (!d)
		_exit(2);
	for (unsigned i = 0; i < D_PAGES; i++)
		incr_fill_page(d + i * PG, 9000 + i);
	/* 'g': a process group of its own; 'e': become sleep(1); EOF: check and exit */
	for (;;) {
		ssize_t n = read(rfd, &c, 1);

		if (n == 0)
			break;
		if (n == 1 && c == 'g')
			(void)setpgid(0, 0);
		if (n == 1 && c == 'e') {
			execl("/bin/sleep", "sleep", "1000", (char *)NULL);
			_exit(3);
		}
	}
	for (unsigned i = 0; i < D_PAGES; i++)
		if (!incr_page_matches(d + i * PG, 9000 + i))
			_exit(1);
	_exit(0);
}

/* The verify request (SIGUSR2) is for the main thread: the others block it. */
static void thread_block_usr2(void)
{
	sigset_t usr2;

	sigemptyset(&usr2);
	sigaddset(&usr2, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &usr2, NULL);
}

static pthread_t thr;
static volatile pid_t thr_tid;
static int thr_pipe[2] = { -1, -1 };

/* A thread that blocks in read() until its pipe says go. */
static void *thr_main(void *arg)
{
	char c;

	(void)arg;
	thread_block_usr2();
	thr_tid = gettid();
	while (read(thr_pipe[0], &c, 1) < 0 && errno == EINTR)
		;
	return NULL;
}

static pthread_t busy_thr;
static volatile int busy_stop;
static volatile unsigned long busy_writes;

/* Rewrites the pages of A one after the other, as fast as it can, until told to stop. */
static void *busy_main(void *arg)
{
	(void)arg;
	thread_block_usr2();
	for (unsigned long k = 0; !busy_stop; k++) {
		unsigned pg = (k * 7) % A_PAGES;

		seed_a[pg] = 500000 + k % 400000;
		incr_fill_page(reg_a + pg * PG, seed_a[pg]);
		busy_writes = k + 1;
	}
	return NULL;
}

/* One command; the reply for the ack. *arg (bool) is set once C is unmapped. */
static void victim_do(void *arg, const char *cmd, char *reply, size_t size)
{
	unsigned n;
	int p[2], status;

	snprintf(reply, size, "ok");
	switch (cmd[0]) {
	case 'w':
		n = strtoul(cmd + 1, NULL, 10);
		for (unsigned j = 0; j < W_PER_ROUND; j++) {
			unsigned pg = round_page(n, j);

			seed_a[pg] = 100000 * n + pg;
			incr_fill_page(reg_a + pg * PG, seed_a[pg]);
		}
		if (reg_s) {
			seed_s[n % S_PAGES] = 200000 * n;
			incr_fill_page(reg_s + (n % S_PAGES) * PG, seed_s[n % S_PAGES]);
		}
		break;
	case 'k': {
		/* pages 50 and 51 of A written by the kernel (read() from a file) */
		static unsigned char buf[2 * PG];
		char path[PATH_MAX];
		int fd;

		for (unsigned i = 0; i < 2; i++)
			incr_fill_page(buf + i * PG, 300000 + i);
		snprintf(path, sizeof(path), "%s/kdata", cr_victim_dir);
		fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0 || pwrite(fd, buf, sizeof(buf), 0) != (ssize_t)sizeof(buf) ||
		    pread(fd, reg_a + 50 * PG, sizeof(buf), 0) != (ssize_t)sizeof(buf)) {
			snprintf(reply, size, "err kdata: %s", strerror(errno));
			if (fd >= 0)
				close(fd);
			return;
		}
		close(fd);
		seed_a[50] = 300000;
		seed_a[51] = 300001;
		break;
	}
	case 'm':
		reg_b = map_anon(B_PAGES);
		if (!reg_b) {
			snprintf(reply, size, "err mmap: %s", strerror(errno));
			return;
		}
		for (unsigned i = 0; i < B_PAGES; i++)
			incr_fill_page(reg_b + i * PG, 7000 + i);
		break;
	case 'u':
		if (munmap(reg_c, C_PAGES * PG)) {
			snprintf(reply, size, "err munmap: %s", strerror(errno));
			return;
		}
		*(bool *)arg = true;
		break;
	case 'f':
		if (pipe2(p, O_CLOEXEC)) {
			snprintf(reply, size, "err pipe: %s", strerror(errno));
			return;
		}
		child_pid = fork();
		if (child_pid < 0) {
			snprintf(reply, size, "err fork: %s", strerror(errno));
			return;
		}
		if (!child_pid) {
			close(p[1]);
			child_main(p[0]);
		}
		close(p[0]);
		child_wfd = p[1];
		/* The child must have filled its memory before the ack: it then blocks in
		 * read(); nothing else signals it, so watch its wchan (bounded). */
		{
			char path[64], wchan[64] = "";
			long deadline = time(NULL) + 5;

			snprintf(path, sizeof(path), "/proc/%d/wchan", child_pid);
			while (time(NULL) < deadline &&
			       !(cr_read_file(path, wchan, sizeof(wchan)) > 0 &&
				 strstr(wchan, "pipe_read")))
				(void)poll(NULL, 0, 1);
			if (!strstr(wchan, "pipe_read")) {
				snprintf(reply, size, "err child %d not blocked ('%s')", child_pid,
					 wchan);
				return;
			}
		}
		break;
	case 'g':
	case 'e': {
		char path[64], buf[1024], want[32];
		long deadline = time(NULL) + 5;
		bool done = false;

		if (write(child_wfd, cmd, 1) != 1) {
			snprintf(reply, size, "err write to child: %s", strerror(errno));
			return;
		}
		/* Nothing says it is done: watch /proc (bounded). */
		snprintf(path, sizeof(path), "/proc/%d/%s", child_pid,
			 cmd[0] == 'g' ? "stat" : "comm");
		snprintf(want, sizeof(want), cmd[0] == 'g' ? ") S %d %d " : "sleep\n", getpid(),
			 child_pid);
		while (!done && time(NULL) < deadline) {
			done = cr_read_file(path, buf, sizeof(buf)) > 0 &&
			       (cmd[0] == 'g' ? (strstr(buf, want) != NULL) : !strcmp(buf, want));
			if (!done)
				(void)poll(NULL, 0, 1);
		}
		if (!done) {
			snprintf(reply, size, "err child %d did not do '%c': '%.64s'", child_pid,
				 cmd[0], buf);
			return;
		}
		if (cmd[0] == 'e') {
			/* its read end went with the exec: a lone write end cannot be dumped */
			execed = true;
			close(child_wfd);
			child_wfd = -1;
		}
		break;
	}
	case 'x':
		if (child_wfd >= 0)
			close(child_wfd);
		child_wfd = -1;
		if (execed)
			kill(child_pid, SIGKILL);
		if (waitpid(child_pid, &status, 0) != child_pid ||
		    (execed ? !WIFSIGNALED(status) : !WIFEXITED(status) || WEXITSTATUS(status))) {
			snprintf(reply, size, "err child %d: status 0x%x", child_pid, status);
			return;
		}
		break;
	case 'd':
		if (madvise(reg_a + 200 * PG, 4 * PG, MADV_DONTNEED)) {
			snprintf(reply, size, "err madvise: %s", strerror(errno));
			return;
		}
		for (unsigned i = 200; i < 204; i++)
			seed_a[i] = 0;
		break;
	case 'r': {
		void *to = mmap(NULL, B_PAGES * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (to == MAP_FAILED ||
		    mremap(reg_b, B_PAGES * PG, B_PAGES * PG, MREMAP_MAYMOVE | MREMAP_FIXED, to) !=
			    to) {
			snprintf(reply, size, "err mremap: %s", strerror(errno));
			return;
		}
		reg_b = to;
		break;
	}
	case 'p':
		if (mprotect(reg_a + 128 * PG, 16 * PG, PROT_READ)) {
			snprintf(reply, size, "err mprotect: %s", strerror(errno));
			return;
		}
		break;
	case 't': {
		long deadline = time(NULL) + 5;

		if (pipe2(thr_pipe, O_CLOEXEC) || pthread_create(&thr, NULL, thr_main, NULL)) {
			snprintf(reply, size, "err thread: %s", strerror(errno));
			return;
		}
		while (!thr_tid && time(NULL) < deadline)
			sched_yield();
		break;
	}
	case 'T':
		if (write(thr_pipe[1], "x", 1) != 1 || pthread_join(thr, NULL)) {
			snprintf(reply, size, "err thread join");
			return;
		}
		close(thr_pipe[0]);
		close(thr_pipe[1]);
		break;
	case 'b': {
		long deadline = time(NULL) + 5;

		if (pthread_create(&busy_thr, NULL, busy_main, NULL)) {
			snprintf(reply, size, "err busy thread");
			return;
		}
		while (busy_writes < 1000 && time(NULL) < deadline)
			sched_yield();
		break;
	}
	case 'B':
		busy_stop = 1;
		pthread_join(busy_thr, NULL);
		snprintf(reply, size, "ok writes=%lu", busy_writes);
		return;
	case 'n':
		break;
	default:
		snprintf(reply, size, "err unknown command '%s'", cmd);
		return;
	}
	snprintf(reply, size, "ok A=%lx B=%lx C=%lx child=%d tid=%d", (unsigned long)reg_a,
		 (unsigned long)reg_b, (unsigned long)reg_c, child_pid, thr_tid);
}

static void victim_verify(bool c_unmapped)
{
	unsigned char vec[C_PAGES];

	for (unsigned i = 0; i < A_PAGES; i++)
		if (seed_a[i])
			CR_CHECK(incr_page_matches(reg_a + i * PG, seed_a[i]), "page %u of A differs",
				 i);
		else
			CR_CHECK(cr_all_zero(reg_a + i * PG, PG),
				 "page %u of A, discarded, is not zero", i);
	for (unsigned i = 0; reg_b && i < B_PAGES; i++)
		CR_CHECK(incr_page_matches(reg_b + i * PG, 7000 + i), "page %u of B differs", i);
	for (unsigned i = 0; i < S_PAGES; i++)
		CR_CHECK(incr_page_matches(reg_s + i * PG, seed_s[i]),
			 "page %u of S (shared) differs", i);
	if (c_unmapped)
		CR_CHECK(mincore(reg_c, C_PAGES * PG, vec) < 0 && errno == ENOMEM,
			 "the unmapped region C is mapped again");
	else
		for (unsigned i = 0; i < C_PAGES; i++)
			CR_CHECK(incr_page_matches(reg_c + i * PG, 5000 + i), "page %u of C differs",
				 i);
	if (child_wfd >= 0) {
		int status;

		close(child_wfd);
		CR_CHECK(waitpid(child_pid, &status, 0) == child_pid && WIFEXITED(status) &&
			 !WEXITSTATUS(status), "child %d: memory lost (status 0x%x)", child_pid,
			 status);
	}
}

/* Regions A and C filled, then commands until 'v' (verify and exit). */
static int victim_steps(void *arg)
{
	bool unmapped = false;
	int err;

	(void)arg;
	reg_a = map_anon(A_PAGES);
	reg_c = map_anon(C_PAGES);
	reg_s = mmap(NULL, S_PAGES * PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1,
		     0);
	CR_SETUP(reg_a && reg_c && reg_s != MAP_FAILED, "mmap");
	for (unsigned i = 0; i < S_PAGES; i++) {
		seed_s[i] = 8000 + i;
		incr_fill_page(reg_s + i * PG, seed_s[i]);
	}
	for (unsigned i = 0; i < A_PAGES; i++) {
		seed_a[i] = 1000 + i;
		incr_fill_page(reg_a + i * PG, seed_a[i]);
	}
	for (unsigned i = 0; i < C_PAGES; i++)
		incr_fill_page(reg_c + i * PG, 5000 + i);
	cr_victim_ready();
	err = incr_victim_serve(victim_do, &unmapped);
	if (err)
		return err;
	victim_verify(unmapped);
	return cr_victim_result();
}

/* A plain victim: memory filled, waits for SIGUSR2, checks it. */
static int victim_plain(void *arg)
{
	(void)arg;
	reg_a = map_anon(A_PAGES);
	CR_SETUP(reg_a, "mmap");
	for (unsigned i = 0; i < A_PAGES; i++)
		incr_fill_page(reg_a + i * PG, 3000 + i);
	cr_victim_ready_wait();
	for (unsigned i = 0; i < A_PAGES; i++)
		CR_CHECK(incr_page_matches(reg_a + i * PG, 3000 + i), "page %u differs", i);
	return cr_victim_result();
}

/* ---- tree and files ---- */

#define TREE_PIPE_BYTES	3000
#define TREE_FILE_OFF	1234

static volatile unsigned long tree_counter;
static volatile int tree_stop;

static void *tree_thread(void *arg)
{
	(void)arg;
	/* The main thread sleeps in sigsuspend() for the verify request. */
	thread_block_usr2();
	while (!tree_stop) {
		tree_counter++;
		if (!(tree_counter & 0xfffff))
			sched_yield();
	}
	return NULL;
}

static int tree_child(unsigned seed, int wfd)
{
	unsigned char *m = map_anon(8);

	if (!m)
		return 2;
	for (unsigned i = 0; i < 8; i++)
		incr_fill_page(m + i * PG, seed + i);
	if (wfd >= 0) {
		unsigned char buf[TREE_PIPE_BYTES];

		cr_fill(buf, sizeof(buf), seed);
		if (write(wfd, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
			return 2;
		close(wfd);
	}
	cr_victim_wait();
	for (unsigned i = 0; i < 8; i++)
		CR_CHECK(incr_page_matches(m + i * PG, seed + i), "child page %u differs", i);
	return cr_victim_result();
}

static int victim_tree(void *arg)
{
	char path[PATH_MAX], buf[TREE_PIPE_BYTES + 10];
	pid_t kids[2];
	pthread_t th;
	int p[2], fd, status;
	unsigned long seen;

	(void)arg;
	reg_a = map_anon(64);
	CR_SETUP(reg_a, "mmap");
	for (unsigned i = 0; i < 64; i++)
		incr_fill_page(reg_a + i * PG, 4000 + i);
	snprintf(path, sizeof(path), "%s/tree.dat", cr_victim_dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	CR_SETUP(fd >= 0, "open");
	cr_fill(buf, sizeof(buf), 77);
	CR_SETUP(write(fd, buf, 2 * TREE_FILE_OFF) == 2 * TREE_FILE_OFF, "write");
	CR_SETUP(lseek(fd, TREE_FILE_OFF, SEEK_SET) == TREE_FILE_OFF, "lseek");
	CR_SETUP(!pipe(p), "pipe");
	for (int i = 0; i < 2; i++) {
		kids[i] = fork();
		CR_SETUP(kids[i] >= 0, "fork");
		if (!kids[i]) {
			close(p[0]);
			close(fd);
			_exit(tree_child(6000 + 100 * i, i == 0 ? p[1] : -1));
		}
	}
	close(p[1]);
	CR_SETUP(!pthread_create(&th, NULL, tree_thread, NULL), "pthread_create");
	/* The pipe's data is in flight once the first child wrote it all. */
	{
		int avail = 0;
		long deadline = time(NULL) + 5;

		while (time(NULL) < deadline) {
			struct pollfd pfd = { .fd = p[0], .events = POLLIN };

			if (poll(&pfd, 1, 100) > 0 && !ioctl(p[0], FIONREAD, &avail) &&
			    avail == TREE_PIPE_BYTES)
				break;
		}
		CR_SETUP(avail == TREE_PIPE_BYTES, "pipe holds %d bytes", avail);
	}
	cr_victim_ready_wait();

	seen = tree_counter;
	for (int i = 0; i < 2; i++)
		kill(kids[i], SIGUSR2);
	{
		unsigned char want[TREE_PIPE_BYTES];
		ssize_t n = 0, r;

		while (n < TREE_PIPE_BYTES && (r = read(p[0], buf + n, TREE_PIPE_BYTES - n)) > 0)
			n += r;
		cr_fill(want, sizeof(want), 6000);
		CR_CHECK(n == TREE_PIPE_BYTES && !memcmp(buf, want, n),
			 "pipe data lost (%zd bytes)", n);
		CR_CHECK(read(p[0], buf, 1) == 0, "pipe not at EOF");
	}
	CR_CHECK(lseek(fd, 0, SEEK_CUR) == TREE_FILE_OFF, "file offset %ld",
		 (long)lseek(fd, 0, SEEK_CUR));
	for (unsigned i = 0; i < 64; i++)
		CR_CHECK(incr_page_matches(reg_a + i * PG, 4000 + i), "page %u differs", i);
	for (int i = 0; i < 2; i++) {
		CR_CHECK(waitpid(kids[i], &status, 0) == kids[i], "child %d lost", kids[i]);
		CR_CHECK(WIFEXITED(status) && !WEXITSTATUS(status), "child %d: status 0x%x",
			 kids[i], status);
	}
	{
		long deadline = time(NULL) + 5;

		while (tree_counter == seen && time(NULL) < deadline)
			sched_yield();
		CR_CHECK(tree_counter != seen, "the thread does not run after restore");
	}
	tree_stop = 1;
	pthread_join(th, NULL);
	return cr_victim_result();
}

/* ------------------------------------------------------------------ runner side */

/*
 * What the steps victim's last reply said: its regions' addresses, its child and thread
 * (one runner process per case: it starts zeroed).
 */
static struct {
	unsigned long a, b, c;
	pid_t child;
	pid_t tid;
} steps;

/* incr_cmd() to the steps victim; the addresses and pids of its reply go into steps. */
static int steps_cmd(struct cr_run *r, struct incr *st, pid_t victim, const char *cmd)
{
	char *p;

	if (incr_cmd(r, st, victim, cmd))
		return -1;
	if (cmd[0] == 'v')
		return 0;
	if ((p = strstr(st->info, "A=")))
		steps.a = strtoul(p + 2, NULL, 16);
	if ((p = strstr(st->info, "B=")))
		steps.b = strtoul(p + 2, NULL, 16);
	if ((p = strstr(st->info, "C=")))
		steps.c = strtoul(p + 2, NULL, 16);
	if ((p = strstr(st->info, "child=")))
		steps.child = atoi(p + 6);
	if ((p = strstr(st->info, "tid=")))
		steps.tid = atoi(p + 4);
	return 0;
}

/*
 * Command cmd (if not NULL) to the steps victim, then the dump of v into DIR/dir on top of
 * prev (a full one without), tagged dir with a 'd' for its leading 'i'.
 */
static int incr_round(struct cr_run *r, struct incr *st, pid_t v, const char *cmd,
		      const char *dir, const char *prev, bool leave)
{
	char tag[32];

	snprintf(tag, sizeof(tag), "d%s", dir + 1);
	if (cmd && steps_cmd(r, st, v, cmd))
		return -1;
	return incr_dump(r, st, tag, v, dir, prev, leave, NULL);
}

/* trackd on v with DIR/log, then the full dump "i0" the chain starts from, left running. */
static int incr_begin(struct cr_run *r, struct incr *st, pid_t v)
{
	if (incr_trackd_start(r, st, &v, 1, "log"))
		return -1;
	return incr_round(r, st, v, NULL, "i0", NULL, true);
}

/* Output of ckpt show ... into a malloc'ed string (NULL after cr_fail()). */
static char *incr_show(struct cr_run *r, const char *tag, const char *const args[])
{
	char out[PATH_MAX];
	struct stat sb;
	char *text;
	int status;

	if (cr_ckpt(r, tag, NULL, args, &status) || cr_expect_ok(r, tag, status))
		return NULL;
	incr_path(r, out, tag);
	strncat(out, ".out", sizeof(out) - strlen(out) - 1);
	if (stat(out, &sb)) {
		cr_fail(r, "%s: %s", out, strerror(errno));
		return NULL;
	}
	text = malloc(sb.st_size + 1);
	if (!text || cr_read_file(out, text, sb.st_size + 1) < 0) {
		free(text);
		cr_fail(r, "cannot read '%s'", out);
		return NULL;
	}
	return text;
}

/* The text of `ckpt show DIR/dir --pages` (malloc'ed) or NULL. */
static char *incr_show_pages(struct cr_run *r, const char *dir)
{
	char path[PATH_MAX], tag[64];
	const char *args[] = { "show", path, "--pages", NULL };

	incr_path(r, path, dir);
	snprintf(tag, sizeof(tag), "show-%s", dir);
	return incr_show(r, tag, args);
}

struct region {
	const char *name;
	unsigned long start;
	unsigned pages;
	pid_t pid;
	unsigned char want[A_PAGES];	/* 1: data in this level expected */
	unsigned char seen[A_PAGES];
};

/*
 * `ckpt show DIR --pages`: for each region, the pages with data in this level (lines
 * without "level N") must be exactly the wanted ones; pages of pid outside every region
 * at most OUTSIDE_MAX.
 */
static int incr_check_level(struct cr_run *r, const char *dir, pid_t pid, struct region *rg,
			    int nr)
{
	unsigned long outside = 0;
	char *text = incr_show_pages(r, dir), *line;
	int ret = 0;

	if (!text)
		return -1;
	for (int i = 0; i < nr; i++)
		memset(rg[i].seen, 0, sizeof(rg[i].seen));
	for (line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		unsigned long s, e, npg;
		char kind[16];
		unsigned p;

		if (sscanf(line, "%u 0x%lx-0x%lx %lu pages %15s", &p, &s, &e, &npg, kind) != 5)
			continue;
		if (strcmp(kind, "data") || strstr(line, "level"))
			continue;
		for (unsigned long a = s; a < e; a += PG) {
			bool in = false;

			for (int i = 0; i < nr; i++) {
				if (rg[i].pid != (pid_t)p || a < rg[i].start ||
				    a >= rg[i].start + rg[i].pages * PG)
					continue;
				rg[i].seen[(a - rg[i].start) / PG] = 1;
				in = true;
			}
			if (!in && (pid_t)p == pid)
				outside++;
		}
	}
	free(text);
	for (int i = 0; i < nr && !ret; i++) {
		for (unsigned k = 0; k < rg[i].pages; k++) {
			if (rg[i].seen[k] == rg[i].want[k])
				continue;
			ret = cr_fail(r, "%s: page %u of region %s (%#lx) %s data in this level",
				      dir, k, rg[i].name, rg[i].start + k * PG,
				      rg[i].want[k] ? "has no" : "has");
			break;
		}
	}
	if (!ret && outside > OUTSIDE_MAX)
		ret = cr_fail(r, "%s: %lu data pages of %d outside the test's regions (at most %d)",
			      dir, outside, pid, OUTSIDE_MAX);
	if (!ret)
		cr_note(r, "%s: regions exact, %lu other data pages", dir, outside);
	return ret;
}

/*
 * No line of pid's listing covers a page of [start, start + pages * PG): at all (any),
 * or with "level N" (taken from the parent images).
 */
static int incr_check_uncovered(struct cr_run *r, const char *dir, pid_t pid,
				unsigned long start, unsigned pages, bool any)
{
	unsigned long end = start + pages * PG;
	char *text = incr_show_pages(r, dir), *line;
	int ret = 0;

	if (!text)
		return -1;
	for (line = strtok(text, "\n"); line && !ret; line = strtok(NULL, "\n")) {
		unsigned long s, e, npg;
		unsigned p;

		if (sscanf(line, "%u 0x%lx-0x%lx %lu", &p, &s, &e, &npg) != 4 || (pid_t)p != pid ||
		    e <= start || s >= end)
			continue;
		if (any || strstr(line, "level"))
			ret = cr_fail(r, "%s: %#lx-%#lx must not be listed%s: '%s'", dir, start, end,
				      any ? "" : " from the parent images", line);
	}
	free(text);
	return ret;
}

/* A new process: none of its pages refers to the parent images, its own are listed. */
static int incr_check_fresh(struct cr_run *r, const char *dir, pid_t pid, unsigned long min)
{
	char key[32], *text = incr_show_pages(r, dir), *line;
	unsigned long own = 0;
	int ret = 0;

	snprintf(key, sizeof(key), "%d ", pid);
	if (!text)
		return -1;
	for (line = strtok(text, "\n"); line && !ret; line = strtok(NULL, "\n")) {
		unsigned long s, e, npg;

		if (strncmp(line, key, strlen(key)))
			continue;
		if (strstr(line, "level"))
			ret = cr_fail(r, "%s: new process %d has pages of the parent images: '%s'",
				      dir, pid, line);
		else if (sscanf(line + strlen(key), "0x%lx-0x%lx %lu pages data", &s, &e, &npg) == 3)
			own += npg;
	}
	free(text);
	if (!ret && own < min)
		ret = cr_fail(r, "%s: new process %d lists %lu data pages of its own, fewer than %lu",
			      dir, pid, own, min);
	return ret;
}

/* `ckpt show DIR/what [opt] --json` prints one valid JSON value. */
static int incr_check_json(struct cr_run *r, const char *what, const char *opt)
{
	char path[PATH_MAX];
	const char *args[] = { "show", path, "--json", opt, NULL };
	char *text;
	int ret = 0;

	incr_path(r, path, what);
	text = incr_show(r, "show-json", args);
	if (!text)
		return -1;
	if (!run_json_valid(text))
		ret = cr_fail(r, "ckpt show %s --json%s%s: not valid JSON: '%.200s'", what,
			      opt ? " " : "", opt ? opt : "", text);
	free(text);
	return ret;
}

/*
 * The entry of pid in `ckpt show DIR/dir/delta.img`, from its "pid: N" line to the next
 * entry, into buf: 0, or cr_fail() when there is none.
 */
static int incr_delta_entry(struct cr_run *r, const char *dir, pid_t pid, char *buf,
			    size_t size)
{
	char path[PATH_MAX], tag[64], key[32];
	const char *args[] = { "show", path, NULL };
	char *text, *p, *end;
	int ret = 0;

	incr_path(r, path, dir);
	strncat(path, "/delta.img", sizeof(path) - strlen(path) - 1);
	snprintf(tag, sizeof(tag), "delta-%s", dir);
	text = incr_show(r, tag, args);
	if (!text)
		return -1;
	snprintf(key, sizeof(key), "pid: %d\n", pid);
	for (p = text; (p = strstr(p, "pid: ")); p++)
		if (!strncmp(p, key, strlen(key)) && (p == text || p[-1] != 'p'))
			break;
	if (p) {
		end = strstr(p + 1, "\npid: ");
		snprintf(buf, size, "%.*s", end ? (int)(end - p) : (int)strlen(p), p);
	} else {
		ret = cr_fail(r, "%s/delta.img has no entry for %d", dir, pid);
	}
	free(text);
	return ret;
}

/* Whether dir's inventory says its pages changed while they were copied after the thaw: 1, 0, -1. */
static int incr_torn(struct cr_run *r, const char *dir)
{
	char path[PATH_MAX], tag[64];
	const char *args[] = { "show", path, NULL };
	char *text;
	bool has;

	incr_path(r, path, dir);
	strncat(path, "/inventory.img", sizeof(path) - strlen(path) - 1);
	snprintf(tag, sizeof(tag), "inventory-%s", dir);
	text = incr_show(r, tag, args);
	if (!text)
		return -1;
	has = strstr(text, "pages_after_thaw: true") != NULL;
	free(text);
	return has;
}

static int incr_expect_torn(struct cr_run *r, const char *dir, bool torn)
{
	int has = incr_torn(r, dir);

	if (has < 0)
		return -1;
	if (has != torn)
		return cr_fail(r, "%s/inventory.img: pages_after_thaw %s, expected %s", dir,
			       has ? "true" : "unset", torn ? "true" : "unset");
	return 0;
}

static int incr_expect_delta(struct cr_run *r, const char *dir, pid_t pid, const char *const want[])
{
	char entry[8192];

	if (incr_delta_entry(r, dir, pid, entry, sizeof(entry)))
		return -1;
	for (int i = 0; want[i]; i++) {
		/* "field: a, b": the pair a, b in the list of the line of field */
		const char *colon = strchr(want[i], ':'), *line, *pair;
		char key[64];

		if (!colon || !strchr(colon, ',')) {
			if (!strstr(entry, want[i]))
				return cr_fail(r, "%s/delta.img, entry of %d: no '%s' in '%s'", dir,
					       pid, want[i], entry);
			continue;
		}
		snprintf(key, sizeof(key), "%.*s: [", (int)(colon - want[i]), want[i]);
		pair = colon + 2;
		line = strstr(entry, key);
		if (!line || !memmem(line, strcspn(line, "\n"), pair, strlen(pair)))
			return cr_fail(r, "%s/delta.img, entry of %d: no range '%s' in '%s'", dir,
				       pid, want[i], entry);
	}
	return 0;
}

static int incr_expect_no_delta(struct cr_run *r, const char *dir, pid_t pid, const char *field)
{
	char entry[8192];

	if (incr_delta_entry(r, dir, pid, entry, sizeof(entry)))
		return -1;
	if (strstr(entry, field))
		return cr_fail(r, "%s/delta.img, entry of %d: '%s' unexpected: '%s'", dir, pid,
			       field, entry);
	return 0;
}

/* The states of a process in delta.img. */
enum { DELTA_SAME = 1, DELTA_NEW, DELTA_EXITED, DELTA_EXECED };

/* pid's entry in DIR/dir/delta.img says state, and line if not NULL. */
static int incr_expect_state(struct cr_run *r, const char *dir, pid_t pid, int state,
			     const char *line)
{
	static const char *const names[] = { "?", "same", "new", "exited", "execed" };
	char want_state[32];
	const char *const want[] = { want_state, line, NULL };

	snprintf(want_state, sizeof(want_state), "state: %s (%d)", names[state], state);
	return incr_expect_delta(r, dir, pid, want);
}

/* The regions' pages in this level are exact; v's entry says SAME, and line if not NULL. */
static int incr_check_same(struct cr_run *r, const char *dir, pid_t v, struct region *rg, int nr,
			   const char *line)
{
	if (incr_check_level(r, dir, v, rg, nr) ||
	    incr_expect_state(r, dir, v, DELTA_SAME, line))
		return -1;
	return 0;
}

static void region_set(struct region *rg, const char *name, pid_t pid, unsigned long start,
		       unsigned pages)
{
	memset(rg, 0, sizeof(*rg));
	rg->name = name;
	rg->pid = pid;
	rg->start = start;
	rg->pages = pages;
}

/* A restore that must fail saying needle, before any task is created. */
static int incr_restore_refused(struct cr_run *r, pid_t victim, const char *dir,
				const char *needle, const char *tag)
{
	pid_t restored;
	int status, left;

	incr_path(r, r->imgdir, dir);
	if (cr_restore(r, tag, &status, &restored) || cr_expect_failed(r, tag, status, needle))
		return -1;
	if (cr_expect_pid_free(r, victim, "restore failed"))
		return -1;
	left = cr_count_children();
	if (left)
		return cr_fail(r, "%d process(es) left after the failed restore", left);
	return 0;
}

/* ---- the flows ---- */

/* ---- exact ---- */

static int flow_exact_body(struct cr_run *r, struct incr *st, pid_t v)
{
	static struct region rg[4];
	const char *const s_notreused[] = { "maps_reused: false", NULL };
	char want[64], ent[128], add[64], rem[64];
	const char *const s_moved[] = { "state: same (1)", add, rem, NULL };
	unsigned long old_b;

	if (incr_begin(r, st, v) || steps_cmd(r, st, v, "n"))
		return -1;

	/* (a) known pages written */
	if (incr_round(r, st, v, "w 1", "i1", "../i0", true))
		return -1;
	region_set(&rg[0], "A", v, steps.a, A_PAGES);
	region_set(&rg[1], "C", v, steps.c, C_PAGES);
	for (unsigned j = 0; j < W_PER_ROUND; j++)
		rg[0].want[round_page(1, j)] = 1;
	if (incr_check_same(r, "i1", v, rg, 2, NULL) || incr_check_json(r, "i1", "--pages") ||
	    incr_check_json(r, "i1/delta.img", NULL))
		return -1;

	/* pages the kernel wrote (read() into A) */
	if (incr_round(r, st, v, "k", "i1k", "../i1", true))
		return -1;
	region_set(&rg[0], "A", v, steps.a, A_PAGES);
	rg[0].want[50] = rg[0].want[51] = 1;
	if (incr_check_level(r, "i1k", v, rg, 2))
		return -1;

	/* (b) a new mapping */
	if (incr_round(r, st, v, "m", "i2", "../i1k", true))
		return -1;
	region_set(&rg[0], "A", v, steps.a, A_PAGES);
	region_set(&rg[2], "B", v, steps.b, B_PAGES);
	memset(rg[2].want, 1, B_PAGES);
	snprintf(want, sizeof(want), "added: %#lx, %#lx", steps.b, steps.b + B_PAGES * PG);
	if (incr_check_same(r, "i2", v, rg, 3, want))
		return -1;

	/* (c) an unmapped region: rg[1] (C) is gone, nothing may be listed there */
	if (incr_round(r, st, v, "u", "i3", "../i2", true))
		return -1;
	region_set(&rg[2], "B", v, steps.b, B_PAGES);
	snprintf(want, sizeof(want), "removed: %#lx, %#lx", steps.c, steps.c + C_PAGES * PG);
	if (incr_check_same(r, "i3", v, rg, 3, want))
		return -1;

	/* a thread comes, then goes */
	if (incr_round(r, st, v, "t", "i3t", "../i3", true))
		return -1;
	snprintf(ent, sizeof(ent), "new_threads: [%d]", steps.tid);
	if (incr_check_same(r, "i3t", v, rg, 3, ent) ||
	    incr_round(r, st, v, "T", "i3T", "../i3t", true))
		return -1;
	snprintf(ent, sizeof(ent), "gone_threads: [%d]", steps.tid);
	if (incr_check_same(r, "i3T", v, rg, 3, ent))
		return -1;

	/* (d) a new child with memory of its own */
	if (incr_round(r, st, v, "f", "i4", "../i3T", true))
		return -1;
	snprintf(ent, sizeof(ent), "ppid: %d", v);
	if (incr_check_level(r, "i4", v, rg, 3) ||
	    incr_check_fresh(r, "i4", steps.child, D_PAGES) ||
	    incr_expect_state(r, "i4", steps.child, DELTA_NEW, ent) ||
	    incr_expect_state(r, "i4", v, DELTA_SAME, NULL))
		return -1;

	/* the child, adopted by the last round, is tracked now: carried over, not re-read */
	if (incr_round(r, st, v, "n", "i4b", "../i4", true) ||
	    incr_expect_state(r, "i4b", steps.child, DELTA_SAME, NULL) ||
	    incr_expect_no_delta(r, "i4b", steps.child, "reread"))
		return -1;

	/* the child moves to a process group of its own */
	if (incr_round(r, st, v, "g", "i4g", "../i4b", true) ||
	    incr_expect_state(r, "i4g", steps.child, DELTA_SAME, "regrouped: true"))
		return -1;

	/* the child execs: read whole, nothing from the parent images */
	if (incr_round(r, st, v, "e", "i4e", "../i4g", true) ||
	    incr_expect_state(r, "i4e", steps.child, DELTA_EXECED, NULL) ||
	    incr_check_fresh(r, "i4e", steps.child, 1))
		return -1;

	/* (e) the child exits */
	if (incr_round(r, st, v, "x", "i5", "../i4e", true) || incr_check_level(r, "i5", v, rg, 3) ||
	    incr_expect_state(r, "i5", steps.child, DELTA_EXITED, NULL))
		return -1;

	/* discarded pages: holes now, never the parent images' data */
	if (incr_round(r, st, v, "d", "i5b", "../i5", true))
		return -1;
	snprintf(want, sizeof(want), "touched: %#lx, %#lx", steps.a + 200 * PG, steps.a + 204 * PG);
	if (incr_check_same(r, "i5b", v, rg, 3, want) ||
	    incr_check_uncovered(r, "i5b", v, steps.a + 200 * PG, 4, false))
		return -1;

	/* B moved (mremap): all its pages copied at the new place, nothing at the old */
	old_b = steps.b;
	if (incr_round(r, st, v, "r", "i5c", "../i5b", true))
		return -1;
	if (steps.b == old_b)
		return cr_fail(r, "mremap did not move B");
	region_set(&rg[0], "A", v, steps.a, A_PAGES);
	region_set(&rg[1], "C", v, steps.c, 0);	/* B may be where C was */
	region_set(&rg[2], "B", v, steps.b, B_PAGES);
	memset(rg[2].want, 1, B_PAGES);
	snprintf(add, sizeof(add), "added: %#lx, %#lx", steps.b, steps.b + B_PAGES * PG);
	snprintf(rem, sizeof(rem), "removed: %#lx, %#lx", old_b, old_b + B_PAGES * PG);
	if (incr_check_level(r, "i5c", v, rg, 3) ||
	    incr_check_uncovered(r, "i5c", v, old_b, B_PAGES, true) ||
	    incr_expect_delta(r, "i5c", v, s_moved))
		return -1;
	region_set(&rg[2], "B", v, steps.b, B_PAGES);

	/* --verify-maps: nothing changed, then an mprotect */
	if (steps_cmd(r, st, v, "n") ||
	    incr_dump(r, st, "d6", v, "i6", "../i5c", true, "--verify-maps") ||
	    incr_check_same(r, "i6", v, rg, 3, "maps_reused: true"))
		return -1;
	if (steps_cmd(r, st, v, "p") ||
	    incr_dump(r, st, "d7", v, "i7", "../i6", true, "--verify-maps") ||
	    incr_expect_delta(r, "i7", v, s_notreused))
		return -1;

	/* the final delta, frozen; the tree is killed (round 3 misses the read-only pages) */
	if (incr_round(r, st, v, "w 3", "i8", "../i7", false) || incr_trackd_stop(r, st))
		return -1;
	/*
	 * The victim waits idle between rounds: what a --leave-running round
	 * copied after the thaw did not change meanwhile, so its images are exact.
	 */
	if (incr_expect_torn(r, "i5", false) || incr_expect_torn(r, "i7", false))
		return -1;
	return incr_finish(r, st, v, "i8", true);
}

static int flow_exact(struct cr_run *r)
{
	return incr_flow(r, flow_exact_body);
}

CR_CASE(incr, exact, .victim = victim_steps, .flow = flow_exact, .changing = true);

/* ---- same moment ---- */

/* Strips " level N" and returns the number of lines. */
static int incr_norm_sums(char *text)
{
	int lines = 0;
	char *w = text;

	for (char *p = text; *p;) {
		size_t len = strcspn(p, "\n");
		char *lv = memmem(p, len, " level ", 7);
		size_t keep = lv ? (size_t)(lv - p) : len;

		memmove(w, p, keep);
		w += keep;
		*w++ = '\n';
		lines++;
		p += len + (p[len] == '\n');
	}
	*w = 0;
	return lines;
}

static int wait_state(struct cr_run *r, pid_t pid, char want)
{
	long deadline = incr_now_ms() + WAIT_MS;
	char path[64], buf[2048], state[32] = "?";

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	while (incr_now_ms() < deadline) {
		if (cr_read_file(path, buf, sizeof(buf)) > 0 &&
		    !cr_status_field(buf, "State", state, sizeof(state)) && state[0] == want)
			return 0;
		(void)poll(NULL, 0, 1);
	}
	return cr_fail(r, "victim %d not in state %c (%s)", pid, want, state);
}

static int flow_same_body(struct cr_run *r, struct incr *st, pid_t v)
{
	char pd[PATH_MAX], pf[PATH_MAX];
	const char *a1[] = { "show", pd, "--pages", "--sums", NULL };
	const char *a2[] = { "show", pf, "--pages", "--sums", NULL };
	char *t1, *t2;
	int status, n1, n2, ret = 0;

	if (incr_begin(r, st, v) || steps_cmd(r, st, v, "w 1") || steps_cmd(r, st, v, "m"))
		return -1;
	if (kill(v, SIGSTOP) || wait_state(r, v, 'T'))
		return -1;
	if (incr_dump(r, st, "d1", v, "i1", "../i0", true, "--copy-frozen"))
		return -1;
	incr_path(r, r->imgdir, "full");
	if (cr_dump(r, "dfull", v, true, NULL, &status) || cr_expect_ok(r, "dfull", status))
		return -1;
	if (wait_state(r, v, 'T'))
		return -1;
	incr_path(r, pd, "i1");
	incr_path(r, pf, "full");
	t1 = incr_show(r, "sums-i1", a1);
	t2 = incr_show(r, "sums-full", a2);
	if (!t1 || !t2) {
		free(t1);
		free(t2);
		return -1;
	}
	n1 = incr_norm_sums(t1);
	n2 = incr_norm_sums(t2);
	if (strcmp(t1, t2)) {
		char *p = t1, *q = t2;

		while (*p && *p == *q)
			p++, q++;
		while (p > t1 && p[-1] != '\n')
			p--, q--;
		ret = cr_fail(r, "page listings differ (%d and %d lines): delta '%.*s', full '%.*s'",
			      n1, n2, (int)strcspn(p, "\n"), p, (int)strcspn(q, "\n"), q);
	} else if (n1 < A_PAGES + B_PAGES) {
		ret = cr_fail(r, "page listing of %d lines, fewer than the test's pages", n1);
	} else {
		cr_note(r, "listings equal: %d pages", n1);
	}
	free(t1);
	free(t2);
	if (ret || kill(v, SIGCONT))
		return -1;
	if (incr_round(r, st, v, "w 2", "i2", "../i1", false) || incr_finish(r, st, v, "i2", true))
		return -1;
	/*
	 * A --copy-frozen round is a restore point of its own: the victim as it was then,
	 * stopped by SIGSTOP.
	 */
	if (incr_restore(r, v, "i1", "restore-i1") || wait_state(r, v, 'T') || kill(v, SIGCONT) ||
	    steps_cmd(r, st, v, "v"))
		return -1;
	return cr_verify(r, v, "restored from i1");
}

static int flow_same(struct cr_run *r)
{
	return incr_flow(r, flow_same_body);
}

CR_CASE(incr, same_moment, .victim = victim_steps, .flow = flow_same, .changing = true);

/* ---- chain of 10 ---- */

static int flow_chain_body(struct cr_run *r, struct incr *st, pid_t v)
{
	char dir[16], prev[PATH_MAX], cmd[16];
	static struct region rg[1];

	/* The runner's working directory holds the images: --prev-images i3 finds them there too. */
	if (chdir(r->env->dir))
		return cr_fail(r, "chdir '%s': %s", r->env->dir, strerror(errno));
	if (incr_begin(r, st, v))
		return -1;
	for (int n = 1; n <= 10; n++) {
		snprintf(cmd, sizeof(cmd), "w %d", n);
		snprintf(dir, sizeof(dir), "i%d", n);
		/* relative to -D, absolute, and relative to the working directory, in turn */
		if (n % 3 == 1)
			snprintf(prev, sizeof(prev), "../i%d", n - 1);
		else if (n % 3 == 2)
			snprintf(prev, sizeof(prev), "%s/i%d", r->env->dir, n - 1);
		else
			snprintf(prev, sizeof(prev), "i%d", n - 1);
		if (incr_round(r, st, v, cmd, dir, prev, n < 10))
			return -1;
	}
	/* the top lists only round 10's pages as its own */
	region_set(&rg[0], "A", v, steps.a, A_PAGES);
	for (unsigned j = 0; j < W_PER_ROUND; j++)
		rg[0].want[round_page(10, j)] = 1;
	if (incr_check_level(r, "i10", v, rg, 1))
		return -1;
	return incr_finish(r, st, v, "i10", true);
}

static int flow_chain(struct cr_run *r)
{
	return incr_flow(r, flow_chain_body);
}

CR_CASE(incr, chain10, .victim = victim_steps, .flow = flow_chain, .changing = true);

/* ---- busy: rounds copied after the thaw while a thread keeps writing ---- */

static int flow_busy_body(struct cr_run *r, struct incr *st, pid_t v)
{
	char dir[16], prev[16];

	if (incr_trackd_start(r, st, &v, 1, "log") || steps_cmd(r, st, v, "b") ||
	    incr_round(r, st, v, NULL, "i0", NULL, true))
		return -1;
	for (int n = 1; n <= 6; n++) {
		snprintf(dir, sizeof(dir), "i%d", n);
		snprintf(prev, sizeof(prev), "../i%d", n - 1);
		/* the last round is the final one: the writer stops first */
		if (incr_round(r, st, v, n == 6 ? "B" : NULL, dir, prev, n < 6))
			return -1;
	}
	/*
	 * The writer runs on after each thaw: a round whose copy it overlapped
	 * (its inventory says so) is a pre-copy round's, refused as the top of
	 * a chain. (Whether it overlapped this copy is up to the scheduler.)
	 */
	for (int n = 1; n <= 5; n++) {
		snprintf(dir, sizeof(dir), "i%d", n);
		int torn = incr_torn(r, dir);
		if (torn < 0 || (torn && (incr_trackd_stop(r, st) ||
					  incr_restore_refused(r, v, dir, "while the tree ran", "restore-lr"))))
			return -1;
		if (torn)
			break;
	}
	return incr_finish(r, st, v, "i6", true);
}

static int flow_busy(struct cr_run *r)
{
	return incr_flow(r, flow_busy_body);
}

CR_CASE(incr, busy, .victim = victim_steps, .flow = flow_busy, .changing = true);

/* ---- broken chain ---- */

static int incr_rename(struct cr_run *r, const char *from, const char *to)
{
	char a[PATH_MAX], b[PATH_MAX];

	incr_path(r, a, from);
	incr_path(r, b, to);
	if (rename(a, b))
		return cr_fail(r, "rename '%s' '%s': %s", a, b, strerror(errno));
	return 0;
}

static int flow_broken_body(struct cr_run *r, struct incr *st, pid_t v)
{
	if (incr_trackd_start(r, st, &v, 1, "log") ||
	    incr_dump(r, st, "dother", v, "other", NULL, true, NULL) ||
	    incr_round(r, st, v, NULL, "i0", NULL, true) ||
	    incr_round(r, st, v, "w 1", "i1", "../i0", true) ||
	    incr_round(r, st, v, "w 2", "i2", "../i1", false) || incr_trackd_stop(r, st))
		return -1;
	/* the middle parent is missing */
	if (incr_rename(r, "i1", "i1.away") ||
	    incr_restore_refused(r, v, "i2", "i1'", "restore-nomid") ||
	    incr_rename(r, "i1.away", "i1"))
		return -1;
	/* the grand-parent is missing */
	if (incr_rename(r, "i0", "i0.away") ||
	    incr_restore_refused(r, v, "i2", "i0'", "restore-nofirst") ||
	    incr_rename(r, "i0.away", "i0"))
		return -1;
	/* a foreign parent: another dump of the same tree and log */
	if (incr_rename(r, "i1", "i1.real") || incr_rename(r, "other", "i1") ||
	    incr_restore_refused(r, v, "i2", "parent_dump_id", "restore-foreign") ||
	    incr_rename(r, "i1", "other") || incr_rename(r, "i1.real", "i1"))
		return -1;
	return incr_finish(r, st, v, "i2", true);
}

static int flow_broken(struct cr_run *r)
{
	return incr_flow(r, flow_broken_body);
}

CR_CASE(incr, broken_chain, .victim = victim_steps, .flow = flow_broken, .changing = true);

/* ---- dump errors ---- */

/* A dump that must fail with needle (and exit code code, if not 0), victims unharmed. */
static int incr_dump_refused(struct cr_run *r, const char *tag, pid_t pid, const char *const extra[],
			     const char *fault, int code, const char *needle, const pid_t *roots,
			     int nr)
{
	static struct cr_tree_snap before;
	int status, ret = -1;

	if (cr_snapshot_trees(r, roots, nr, &before))
		goto out;
	incr_path(r, r->imgdir, tag);
	if (cr_dump_pids_extra(r, tag, &pid, 1, true, extra, fault, &status) ||
	    cr_expect_failed(r, tag, status, needle))
		goto out;
	if (code && WEXITSTATUS(status) != code) {
		cr_fail(r, "ckpt %s exited %d, expected %d", tag, WEXITSTATUS(status), code);
		goto out;
	}
	{
		char inv[PATH_MAX + 16];

		snprintf(inv, sizeof(inv), "%s/inventory.img", r->imgdir);
		if (!access(inv, F_OK)) {
			cr_fail(r, "ckpt %s failed but left '%s', a dump that looks complete", tag,
				inv);
			goto out;
		}
	}
	ret = cr_check_unharmed_trees(r, &before);
out:
	cr_snap_trees_free(&before);
	return ret;
}

static int flow_errors_body(struct cr_run *r, struct incr *st, pid_t v, pid_t w)
{
	char prev[PATH_MAX];
	const pid_t both[] = { v, w };
	const char *const e_noslog[] = { "--prev-images", prev, NULL };
	const char *const e_other[] = { "--since-log", st->log, NULL };
	const char *const e_tree[] = { "--since-log", st->log, "--prev-images", prev, NULL };
	const char *const e_log[] = { "--since-log", st->log, "--prev-images", prev, NULL };
	const char *const s_gap[] = { "state: same (1)", "reread: ", "GAP", NULL };
	const char *const s_lost[] = { "state: same (1)", "reread: ", "records were lost", NULL };

	incr_path(r, prev, "i0");
	if (incr_begin(r, st, v))
		return -1;
	if (incr_dump_refused(r, "e-noslog", v, e_noslog, NULL, 2, "--since-log", both, 2))
		return -1;
	/* the log tracks v, not w */
	if (incr_dump_refused(r, "e-roots", w, e_other, NULL, 0, "roots", both, 2))
		return -1;
	/* prev images of another tree (v's), with w's own log */
	if (incr_trackd_stop(r, st) || incr_trackd_start(r, st, &w, 1, "log-w") ||
	    incr_dump(r, st, "dw0", w, "w0", NULL, true, NULL) ||
	    incr_dump_refused(r, "e-tree", w, e_tree, NULL, 0, "not a root", both, 2))
		return -1;
	/* prev images of v taken with another changelog (another log directory) */
	if (incr_trackd_stop(r, st) || incr_trackd_start(r, st, &v, 1, "log-v2") ||
	    incr_dump_refused(r, "e-log", v, e_log, NULL, 0, "were not taken with the changelog", both,
			      2))
		return -1;
	/*
	 * Not an error: another trackd run on the same log directory continues it after a
	 * GAP; the delta re-reads v in full and says why.
	 */
	if (incr_trackd_stop(r, st) || incr_trackd_start(r, st, &v, 1, "log") ||
	    incr_dump(r, st, "dgap", v, "gap", "../i0", true, NULL) ||
	    incr_expect_delta(r, "gap", v, s_gap))
		return -1;
	/*
	 * A dump that fails after re-arming the write tracking took written pages
	 * that are in no images: the log says so, and the next delta against the
	 * same parent reads v whole.
	 */
	incr_path(r, prev, "gap");
	if (incr_dump_refused(r, "e-rearm", v, e_log, "after-rearm", 0, "after-rearm", both, 2) ||
	    incr_dump(r, st, "dlost", v, "lost", "../gap", true, NULL) ||
	    incr_expect_delta(r, "lost", v, s_lost))
		return -1;
	if (incr_trackd_stop(r, st))
		return -1;
	if (cr_verify(r, v, "dump-failed") || cr_verify(r, w, "dump-failed"))
		return -1;
	return 0;
}

static int flow_errors(struct cr_run *r)
{
	static struct incr st;
	pid_t v, w;
	int ret;

	if (cr_victim_spawn(r, victim_plain, NULL, false, &v) ||
	    cr_victim_spawn(r, victim_plain, NULL, false, &w))
		return -1;
	r->victim = v;
	ret = flow_errors_body(r, &st, v, w);
	if (incr_trackd_stop(r, &st))
		ret = -1;
	return ret;
}

CR_CASE(incr, dump_errors, .flow = flow_errors);

/* ---- tree and files ---- */

static int flow_tree_body(struct cr_run *r, struct incr *st, pid_t v)
{
	if (incr_begin(r, st, v) || incr_round(r, st, v, NULL, "i1", "../i0", true) ||
	    incr_round(r, st, v, NULL, "i2", "../i1", false))
		return -1;
	return incr_finish(r, st, v, "i2", false);
}

static int flow_tree(struct cr_run *r)
{
	return incr_flow(r, flow_tree_body);
}

CR_CASE(incr, tree_files, .victim = victim_tree, .flow = flow_tree, .changing = true);

TEST_HARNESS_MAIN
