// SPDX-License-Identifier: MIT
/*
 * share_test: what processes of one tree share stays shared after dump and restore.
 *
 *   shared_anon      a MAP_SHARED|MAP_ANONYMOUS region inherited by a child and a grandchild
 *                    keeps its contents (untouched pages read zero), is one object in all three
 *                    (same /proc/self/map_files inode and device, same name in maps), and a
 *                    write by any of them is seen by the other two.
 *   memfd_shared     the same for a MAP_SHARED mapping of a memfd whose fd was closed before
 *                    the dump; maps still names it "/memfd:NAME (deleted)".
 *   private_cow      MAP_PRIVATE|MAP_ANONYMOUS memory filled before fork, partly rewritten by
 *                    the child: each process gets exactly its own contents back and writes
 *                    stay private; pages neither rewrote are shared copy-on-write again
 *                    (the summed Pss of the region is not above its value before the dump;
 *                    both are printed as comments).
 *   shared_offset    one open file description inherited by a child and a grandchild stays
 *                    one (an offset moved by one is seen by all, kcmp(KCMP_FILE) says
 *                    identical); the same file opened separately in each stays separate.
 *   pipes_tree       pipes root->child and child->grandchild with queued data and ends
 *                    closed in some processes: the data arrives complete and in order, the
 *                    closed ends stay closed (EBADF) where they were, and the reader sees EOF
 *                    exactly when the last writer closes.
 *   closed_fds       fds 3..10 opened by the root, two children each closing another subset:
 *                    every process has exactly its own fd table back (the whole
 *                    /proc/self/fd, the harness' and this test's own fds included), and the
 *                    remaining pipe ends still connect the processes.
 *   socketpair_tree  (last: the engine may refuse sockets) AF_UNIX stream, datagram and
 *                    seqpacket socketpairs split between root and child with data queued both
 *                    ways: all of it arrives, message boundaries kept, and new messages flow.
 *
 * How a tree victim works: the root builds the shared state, forks the other processes (the
 * "nodes" of a topology table) and talks to each over a pair of pipes made before the fork
 * (fds >= 100): requests from the root, answers from the node. A node runs the case's
 * handler for each request and answers with the result and whether any of its CR_CHECKs
 * failed; its checks print their own lines to victim.out. The root says ready only when
 * every node has done its set-up, and on SIGUSR2 it drives the verification, collects every
 * node's verdict and reaps its children (each node reaps its own). Every wait is bounded.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cr.h"

#define PAGE		4096UL
#define IO_MS		4000	/* one request and its answer (the root has 10 s to verify) */
#define WAIT_MS		60000	/* a node waiting for the next request (> the runner's 50 s) */
#define CHAN_FD_MIN	100	/* the request/answer pipes live here, out of the cases' way */
#define MAX_NODES	4
#define NOTES		"notes.log"	/* in DIR: measurements, printed as comments */

CR_FIXTURE_LR(share);

/* ---------------------------------------------------------------- small helpers */

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

/* Waits until fd has events (or timeout); > 0 revents, 0 timeout, -1 error. EINTR (a signal,
 * or a restore that cannot resume poll) waits again for the time left. */
static int wait_fd(int fd, short events, long timeout_ms)
{
	long deadline = now_ms() + timeout_ms;

	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = events };
		long left = deadline - now_ms();
		int n;

		n = poll(&pfd, 1, left > 0 ? left : 0);
		if (n > 0)
			return pfd.revents;
		if (n == 0)
			return 0;
		if (errno != EINTR)
			return -1;
	}
}

/* Reads exactly n bytes within timeout_ms: 0, or -1 with errno (ETIMEDOUT, EPIPE at EOF). */
static int read_exact(int fd, void *buf, size_t n, long timeout_ms)
{
	long deadline = now_ms() + timeout_ms;
	size_t got = 0;

	while (got < n) {
		int ev = wait_fd(fd, POLLIN, deadline - now_ms());
		ssize_t r;

		if (ev < 0)
			return -1;
		if (ev == 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		r = read(fd, (char *)buf + got, n - got);
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r < 0)
			return -1;
		if (r == 0) {
			errno = EPIPE;
			return -1;
		}
		got += r;
	}
	return 0;
}

static int write_all(int fd, const void *buf, size_t n)
{
	size_t done = 0;

	while (done < n) {
		ssize_t w = write(fd, (const char *)buf + done, n - done);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		done += w;
	}
	return 0;
}

/* Moves fd to the lowest free number >= min. */
static int move_fd(int fd, int min)
{
	int n = fcntl(fd, F_DUPFD, min);

	CR_SETUP(n >= 0, "F_DUPFD %d >= %d", fd, min);
	close(fd);
	return n;
}

/* fd is closed: F_GETFD fails with EBADF. */
static bool fd_closed(int fd)
{
	return fcntl(fd, F_GETFD) < 0 && errno == EBADF;
}

static long queued(int fd)
{
	int n = -1;

	return ioctl(fd, FIONREAD, &n) ? -errno : n;
}

/* Bytes [off, off + 8) of a page filled by cr_fill(page, PAGE, seed), as a long. */
static long pattern_long(size_t off, unsigned seed)
{
	unsigned char b[sizeof(long)];
	long v;

	for (size_t k = 0; k < sizeof(b); k++)
		b[k] = cr_pattern(off + k, seed);
	memcpy(&v, b, sizeof(v));
	return v;
}

/* Creates DIR/name with size bytes of pattern seed; returns its path (static per call site). */
static void make_file(const char *name, size_t size, unsigned seed, char *path)
{
	static unsigned char buf[65536];
	int fd;

	CR_SETUP(size <= sizeof(buf), "file too big");
	snprintf(path, PATH_MAX, "%s/%s", cr_victim_dir, name);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	CR_SETUP(fd >= 0, "create '%s'", path);
	cr_fill(buf, size, seed);
	CR_SETUP(write(fd, buf, size) == (ssize_t)size, "write '%s'", path);
	close(fd);
}

/* /proc/self/stat field 22: changes when the process is recreated by a restore. */
static unsigned long long start_time(void)
{
	char buf[1024];
	const char *p;
	int field = 3;

	if (cr_read_file("/proc/self/stat", buf, sizeof(buf)) <= 0)
		return 0;
	p = strrchr(buf, ')');
	for (p = p ? p + 2 : NULL; p && field < 22; field++) {
		p = strchr(p, ' ');
		if (p)
			p++;
	}
	return p ? strtoull(p, NULL, 10) : 0;
}

/* Waits (bounded) for child pid to end, SIGKILLs it if it does not; 0 and its status, or -1
 * if it had to be killed or could not be waited for. */
static int reap(pid_t pid, int *status)
{
	int pidfd = syscall(SYS_pidfd_open, pid, 0), ret = 0;

	if (pidfd < 0 || wait_fd(pidfd, POLLIN, IO_MS) <= 0) {
		kill(pid, SIGKILL);
		ret = -1;
	}
	if (pidfd >= 0)
		close(pidfd);
	while (waitpid(pid, status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return ret;
}

/* ---------------------------------------------------------------- the tree of a victim */

struct topo {
	int parent;			/* index of the parent node; -1 for the root */
	const char *name;
};

struct msg {
	int op;
	int fails;			/* answer: a CR_CHECK of the node failed */
	long a, b, c, d;
};

enum {
	OP_HELLO = 1,			/* node -> root once it runs: a = its pid */
	OP_EXIT,			/* reap your children, answer your verdict, exit */
	OP_SETUP,			/* the node's part of the set-up, before ready */
	OP_CHECK,			/* verify the node's own state */
	OP_CASE,			/* first case-specific request */
};

struct node {
	const char *name;
	int parent;
	pid_t pid;
	int cmd[2];			/* pipe root -> node */
	int ans[2];			/* pipe node -> root */
	bool dead;			/* did not answer: no more requests */
};

typedef void (*node_fn)(const struct msg *req, struct msg *ans);

static struct node nodes[MAX_NODES];
static int nnodes;
static int me;				/* this process' node; 0 is the root */
static node_fn handler;

static bool below(int j, int i)
{
	for (j = nodes[j].parent; j >= 0; j = nodes[j].parent)
		if (j == i)
			return true;
	return false;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* Kills and reaps this node's children; returns how many did not end on their own. */
static int reap_kids(bool kill_first, bool check)
{
	int bad = 0;

	for (int j = 1; j < nnodes; j++) {
		int status = 0;

		if (nodes[j].parent != me || !nodes[j].pid)
			continue;
		if (kill_first)
			kill(nodes[j].pid, SIGKILL);
		if (reap(nodes[j].pid, &status) || !WIFEXITED(status)) {
			bad++;
			if (check)
				CR_CHECK(0, "%s (pid %d) did not exit in time or was killed "
					 "(status 0x%x)", nodes[j].name, nodes[j].pid, status);
		}
		nodes[j].pid = 0;
	}
	return bad;
}

static void fork_kids(void);

static __attribute__((noreturn)) void node_main(int i)
{
	struct msg hello = { .op = OP_HELLO, .a = getpid() };

	me = i;
	/* The ready pipe must be closed by the root alone. */
	if (cr_ready_fd >= 0)
		close(cr_ready_fd);
	cr_ready_fd = -1;
	for (int j = 1; j < nnodes; j++) {
		close_fd(&nodes[j].cmd[1]);
		close_fd(&nodes[j].ans[0]);
		if (j != i && !below(j, i)) {
			close_fd(&nodes[j].cmd[0]);
			close_fd(&nodes[j].ans[1]);
		}
		if (j != i)
			nodes[j].pid = 0;
	}
	fork_kids();
	for (int j = 1; j < nnodes; j++)
		if (j != i) {
			close_fd(&nodes[j].cmd[0]);
			close_fd(&nodes[j].ans[1]);
		}
	if (write_all(nodes[i].ans[1], &hello, sizeof(hello)))
		_exit(2);

	for (;;) {
		struct msg req, ans;

		if (read_exact(nodes[i].cmd[0], &req, sizeof(req), WAIT_MS)) {
			dprintf(2, "victim %d: %s: no request from the root: %s\n", getpid(),
				nodes[i].name, errno == EPIPE ? "it is gone" : strerror(errno));
			reap_kids(true, false);
			_exit(3);
		}
		memset(&ans, 0, sizeof(ans));
		ans.op = req.op;
		if (req.op == OP_EXIT)
			reap_kids(false, true);
		else
			handler(&req, &ans);
		ans.fails = cr_victim_result();
		if (write_all(nodes[i].ans[1], &ans, sizeof(ans))) {
			reap_kids(true, false);
			_exit(3);
		}
		if (req.op == OP_EXIT)
			_exit(ans.fails);
	}
}

/* Forks the direct children of this node. */
static void fork_kids(void)
{
	for (int j = 1; j < nnodes; j++) {
		pid_t pid;

		if (nodes[j].parent != me)
			continue;
		pid = fork();
		CR_SETUP(pid >= 0, "fork %s", nodes[j].name);
		if (pid == 0)
			node_main(j);
		nodes[j].pid = pid;
	}
}

/* In the root: makes the request pipes, forks the nodes of t[1..n-1], waits for each to run. */
static void tree_start(const struct topo *t, int n, node_fn fn)
{
	struct sigaction ign = { .sa_handler = SIG_IGN };

	CR_SETUP(n <= MAX_NODES && t[0].parent < 0, "bad topology");
	/* A node that died must not kill its writer with SIGPIPE. */
	CR_SETUP(!sigaction(SIGPIPE, &ign, NULL), "ignore SIGPIPE");
	handler = fn;
	nnodes = n;
	me = 0;
	nodes[0] = (struct node){ .name = t[0].name, .parent = -1, .pid = getpid(),
				  .cmd = { -1, -1 }, .ans = { -1, -1 } };
	for (int i = 1; i < n; i++) {
		struct node *nd = &nodes[i];

		CR_SETUP(t[i].parent >= 0 && t[i].parent < i, "bad topology");
		nd->name = t[i].name;
		nd->parent = t[i].parent;
		nd->dead = false;
		CR_SETUP(!pipe(nd->cmd) && !pipe(nd->ans), "pipe");
		for (int k = 0; k < 2; k++) {
			nd->cmd[k] = move_fd(nd->cmd[k], CHAN_FD_MIN);
			nd->ans[k] = move_fd(nd->ans[k], CHAN_FD_MIN);
		}
	}
	fork_kids();
	for (int i = 1; i < n; i++) {
		struct msg hello;

		close_fd(&nodes[i].cmd[0]);
		close_fd(&nodes[i].ans[1]);
		CR_SETUP(!read_exact(nodes[i].ans[0], &hello, sizeof(hello), IO_MS) &&
			 hello.op == OP_HELLO, "no hello from %s", nodes[i].name);
		if (nodes[i].parent == 0)
			CR_SETUP(hello.a == nodes[i].pid, "%s says it is %ld, fork said %d",
				 nodes[i].name, hello.a, nodes[i].pid);
		nodes[i].pid = hello.a;
	}
}

/* Runs request op on node i (in this process for the root); false if it did not answer. */
static bool node_op(int i, int op, long a, long b, long c, struct msg *ans)
{
	struct msg req = { .op = op, .a = a, .b = b, .c = c };

	memset(ans, 0, sizeof(*ans));
	ans->op = op;
	if (i == 0) {
		handler(&req, ans);
		return true;
	}
	if (nodes[i].dead)
		return false;
	if (write_all(nodes[i].cmd[1], &req, sizeof(req)) ||
	    read_exact(nodes[i].ans[0], ans, sizeof(*ans), IO_MS) || ans->op != op) {
		CR_CHECK(0, "%s (pid %d) did not answer request %d: %s (killed)", nodes[i].name,
			 nodes[i].pid, op, strerror(errno));
		/* killed now, so that its parent can reap it at once */
		kill(nodes[i].pid, SIGKILL);
		nodes[i].dead = true;
		return false;
	}
	return true;
}

/* Before ready: node i must do op without a failed check. */
static struct msg setup_op(int i, int op, long a, long b, long c)
{
	struct msg ans;

	CR_SETUP(node_op(i, op, a, b, c, &ans), "%s: request %d", nodes[i].name, op);
	CR_SETUP(!ans.fails, "%s: request %d failed a check (see above)", nodes[i].name, op);
	return ans;
}

/* OP_SETUP on every node in order, then ready; returns once the verification is asked for. */
static void tree_ready_wait(void)
{
	for (int i = 0; i < nnodes; i++)
		setup_op(i, OP_SETUP, 0, 0, 0);
	cr_victim_ready_wait();
}

/* Verification end: every node's verdict (deepest first, so that each parent can reap), then
 * the root's children reaped. Returns the victim's result. */
static int tree_finish(void)
{
	for (int i = nnodes - 1; i >= 1; i--) {
		struct msg ans;

		if (node_op(i, OP_EXIT, 0, 0, 0, &ans))
			CR_CHECK(!ans.fails, "%s (pid %d) found a mismatch (its lines are above)",
				 nodes[i].name, nodes[i].pid);
	}
	reap_kids(false, true);
	return cr_victim_result();
}

/* Runner side, before the restore: the harness reaped the dumped tree, or the left-running
 * root exited after reaping its children (each node reaps its own): nothing may be left. */
static int no_leftovers(struct cr_run *r)
{
	pid_t pids[16];
	int n = th_children(pids, 16);

	for (int k = 0; k < n; k++)
		cr_note(r, "leftover process %d", pids[k]);
	if (n)
		return cr_fail(r, "%d process(es) of the tree left before the restore (first %d)",
			       n, pids[0]);
	return 0;
}

static const struct topo chain3[] = { { -1, "root" }, { 0, "child" }, { 1, "grandchild" } };
static const struct topo pair2[] = { { -1, "root" }, { 0, "child" } };
static const struct topo fork3[] = { { -1, "root" }, { 0, "child1" }, { 0, "child2" } };

#define N(t) ((int)(sizeof(t) / sizeof(t[0])))

/* ---------------------------------------------------------------- shared_anon, memfd_shared */

#define SH_PAGES	1024			/* 4 MiB */
#define SH_LEN		(SH_PAGES * PAGE)
#define SH_UNTOUCHED(i)	((i) % 5 == 4)		/* never touched before the dump */
#define SH_MARK_PAGE	4			/* untouched; the writes after restore go here */
#define MEMFD_NAME	"ckpt-share"

enum { OP_SH_WRITE = OP_CASE, OP_SH_PEEK };

static unsigned char *sh;
static bool sh_memfd;
static char sh_name[256];			/* this process' maps name of the region */

/* Seed of page i: 100 + i, node k (k > 0) rewrote page 10 * k with seed 7000 + k before the
 * dump; -1: untouched (zero). */
static long sh_seed(size_t i)
{
	if (SH_UNTOUCHED(i))
		return -1;
	if (i % 10 == 0 && i / 10 >= 1 && i / 10 < (size_t)nnodes)
		return 7000 + i / 10;
	return 100 + i;
}

/* The region's path column in /proc/self/maps ("" if the region is not one vma). */
static void sh_maps_name(char *buf, size_t size)
{
	static char maps[65536];
	char key[64];
	const char *p;

	buf[0] = 0;
	if (cr_read_file("/proc/self/maps", maps, sizeof(maps)) <= 0)
		return;
	snprintf(key, sizeof(key), "%lx-%lx ", (unsigned long)sh, (unsigned long)sh + SH_LEN);
	for (p = maps; p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		int field = 0;

		if (strncmp(p, key, strlen(key)))
			continue;
		/* address perms offset dev inode path */
		while (*p && *p != '\n' && field < 5) {
			p += strcspn(p, " \n");
			p += strspn(p, " ");
			field++;
		}
		snprintf(buf, size, "%.*s", (int)strcspn(p, "\n"), p);
		return;
	}
}

/* Identity of the object behind the region: stat of its map_files link. */
static int sh_ident(struct stat *st)
{
	char path[80];

	snprintf(path, sizeof(path), "/proc/self/map_files/%lx-%lx", (unsigned long)sh,
		 (unsigned long)sh + SH_LEN);
	return stat(path, st) ? -errno : 0;
}

/* Checks this process' view. zeros: also read the untouched pages (not before the dump: a
 * read fault allocates a shmem page). */
static void sh_check(bool zeros)
{
	char name[256];

	for (size_t i = 0; i < SH_PAGES; i++) {
		long seed = sh_seed(i), bad;

		if (seed < 0) {
			if (zeros && !cr_all_zero(sh + i * PAGE, PAGE)) {
				CR_CHECK(0, "%s: untouched shared page %zu is not zero",
					 nodes[me].name, i);
				return;
			}
			continue;
		}
		bad = cr_check_pattern(sh + i * PAGE, PAGE, seed);
		if (bad >= 0) {
			CR_CHECK(0, "%s: shared page %zu differs at byte %ld (0x%02x, expected "
				 "0x%02x)", nodes[me].name, i, bad, sh[i * PAGE + bad],
				 cr_pattern(bad, seed));
			return;
		}
	}
	sh_maps_name(name, sizeof(name));
	CR_CHECK(!strcmp(name, sh_name), "%s: the region is '%s' in /proc/self/maps, was '%s'",
		 nodes[me].name, name, sh_name);
}

static void sh_handler(const struct msg *req, struct msg *ans)
{
	volatile long *word = (volatile long *)(sh + req->b);
	struct stat st;
	int err;

	switch (req->op) {
	case OP_SETUP:
		if (me)
			cr_fill(sh + 10 * me * PAGE, PAGE, 7000 + me);
		sh_maps_name(sh_name, sizeof(sh_name));
		if (sh_memfd)
			CR_CHECK(!strcmp(sh_name, "/memfd:" MEMFD_NAME " (deleted)"),
				 "memfd region named '%s' in maps", sh_name);
		/* and report the identity: */
		/* fall through */
	case OP_CHECK:
		if (req->op == OP_CHECK)
			sh_check(true);
		err = sh_ident(&st);
		CR_CHECK(!err, "%s: stat /proc/self/map_files of the region: %s", nodes[me].name,
			 strerror(-err));
		ans->a = err ? 0 : (long)st.st_ino;
		ans->b = err ? 0 : (long)st.st_dev;
		break;
	case OP_SH_WRITE:
		*word = req->a;
		break;
	case OP_SH_PEEK:
		ans->a = *word;
		break;
	}
}

static int victim_shared(void *arg)
{
	struct msg ans, root = { 0 };
	long val;

	sh_memfd = arg != NULL;
	if (sh_memfd) {
		int fd = memfd_create(MEMFD_NAME, 0);

		if (fd < 0 && errno == ENOSYS)
			CR_VICTIM_SKIP("no memfd_create");
		CR_SETUP(fd >= 0, "memfd_create");
		CR_SETUP(!ftruncate(fd, SH_LEN), "ftruncate");
		sh = mmap(NULL, SH_LEN, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		CR_SETUP(sh != MAP_FAILED, "mmap memfd");
		close(fd);			/* only the mapping holds it now */
	} else {
		sh = mmap(NULL, SH_LEN, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		CR_SETUP(sh != MAP_FAILED, "mmap");
	}
	for (size_t i = 0; i < SH_PAGES; i++)
		if (!SH_UNTOUCHED(i))
			cr_fill(sh + i * PAGE, PAGE, 100 + i);

	tree_start(chain3, N(chain3), sh_handler);
	for (int i = 0; i < nnodes; i++) {
		ans = setup_op(i, OP_SETUP, 0, 0, 0);
		if (!i)
			root = ans;
		CR_SETUP(ans.a == root.a && ans.b == root.b, "%s maps another object (%lx:%lx, "
			 "root %lx:%lx)", nodes[i].name, ans.b, ans.a, root.b, root.a);
	}
	/* Every node sees every node's set-up write. */
	sh_check(false);
	cr_victim_ready_wait();

	/* 1. contents (each process), one object in all */
	for (int i = 0; i < nnodes; i++) {
		if (!node_op(i, OP_CHECK, 0, 0, 0, &ans))
			continue;
		if (!i)
			root = ans;
		CR_CHECK(ans.a == root.a && ans.b == root.b, "%s: region is inode %ld dev 0x%lx, "
			 "the root's is inode %ld dev 0x%lx: no longer one object", nodes[i].name,
			 ans.a, ans.b, root.a, root.b);
	}
	/* 2. a write by each is seen by the others */
	for (int w = 0; w < nnodes; w++) {
		long off = SH_MARK_PAGE * PAGE + w * 64;

		val = 0x5ca1ab1e00L + w;
		if (!node_op(w, OP_SH_WRITE, val, off, 0, &ans))
			continue;
		for (int r = 0; r < nnodes; r++)
			if (r != w && node_op(r, OP_SH_PEEK, 0, off, 0, &ans))
				CR_CHECK(ans.a == val, "%s wrote 0x%lx at +0x%lx, %s reads 0x%lx",
					 nodes[w].name, val, off, nodes[r].name, ans.a);
	}
	return tree_finish();
}

CR_CASE(share, shared_anon, .victim = victim_shared, .between = no_leftovers);
CR_CASE(share, memfd_shared, .victim = victim_shared, .arg = "memfd", .between = no_leftovers);

/* ---------------------------------------------------------------- private_cow */

#define COW_PAGES	2048			/* 8 MiB */
#define COW_LEN		(COW_PAGES * PAGE)
#define COW_CHILD(i)	((i) % 8 == 0)		/* pages the child rewrites after fork */

enum { OP_COW_RSS = OP_CASE, OP_COW_WRITE, OP_COW_PEEK };

static unsigned char *cow;

static unsigned cow_seed(size_t i, int node)
{
	return node && COW_CHILD(i) ? 9000 + i : 300 + i;
}

static void cow_check(void)
{
	for (size_t i = 0; i < COW_PAGES; i++) {
		long bad = cr_check_pattern(cow + i * PAGE, PAGE, cow_seed(i, me));
		bool other;

		if (bad >= 0) {
			other = cr_check_pattern(cow + i * PAGE, PAGE, cow_seed(i, !me)) < 0;
			CR_CHECK(0, "%s: private page %zu differs at byte %ld (%s)", nodes[me].name,
				 i, bad, other ? "it has the other process' contents" :
				 "unknown contents");
			return;
		}
	}
}

/* Summed Rss and Pss (kB) of the smaps entries inside the region. */
static int cow_rss(long *rss, long *pss)
{
	static char text[1 << 20];
	unsigned long lo = (unsigned long)cow, hi = lo + COW_LEN;
	bool in = false;

	*rss = *pss = 0;
	if (cr_read_file("/proc/self/smaps", text, sizeof(text)) <= 0)
		return -1;
	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		unsigned long s, e;
		char perms[8];

		if (sscanf(p, "%lx-%lx %7s", &s, &e, perms) == 3)
			in = s >= lo && e <= hi;
		else if (in && !strncmp(p, "Rss:", 4))
			*rss += strtol(p + 4, NULL, 10);
		else if (in && !strncmp(p, "Pss:", 4))
			*pss += strtol(p + 4, NULL, 10);
	}
	return 0;
}

static void cow_handler(const struct msg *req, struct msg *ans)
{
	volatile long *word = (volatile long *)(cow + req->b);

	switch (req->op) {
	case OP_SETUP:
		if (me)
			for (size_t i = 0; i < COW_PAGES; i++)
				if (COW_CHILD(i))
					cr_fill(cow + i * PAGE, PAGE, cow_seed(i, me));
		/* fall through */
	case OP_CHECK:
		cow_check();
		break;
	case OP_COW_RSS:
		CR_CHECK(!cow_rss(&ans->a, &ans->b), "read /proc/self/smaps");
		break;
	case OP_COW_WRITE:
		*word = req->a;
		break;
	case OP_COW_PEEK:
		ans->a = *word;
		break;
	}
}

/* Writes the measurement to NOTES; returns the summed Pss in kB. */
static long cow_note(const char *when)
{
	char path[PATH_MAX];
	long rss = 0, pss = 0;
	struct msg ans;
	int fd;

	for (int i = 0; i < nnodes; i++)
		if (node_op(i, OP_COW_RSS, 0, 0, 0, &ans)) {
			rss += ans.a;
			pss += ans.b;
		}
	/* Not into victim.out: a left-running victim must not change a file it has open
	 * before the restore from its images, which checks the size. */
	snprintf(path, sizeof(path), "%s/" NOTES, cr_victim_dir);
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	CR_CHECK(fd >= 0, "open '%s': %s", path, strerror(errno));
	if (fd < 0)
		return pss;
	dprintf(fd, "private_cow %s: region Rss %ld kB, Pss %ld kB summed over %d processes "
		"(%lu kB each, %lu kB of it rewritten by the child; fully shared COW gives Pss "
		"%lu kB)\n", when, rss, pss, nnodes, COW_LEN / 1024, COW_LEN / 8 / 1024,
		(COW_LEN + COW_LEN / 8) / 1024);
	close(fd);
	return pss;
}

static int victim_private_cow(void *arg)
{
	unsigned long long started;
	unsigned char *base;
	struct msg ans;
	long off;

	/* PROT_NONE guards keep the region from merging with its neighbours. */
	base = mmap(NULL, COW_LEN + 2 * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CR_SETUP(base != MAP_FAILED, "mmap");
	cow = base + PAGE;
	CR_SETUP(!mprotect(cow, COW_LEN, PROT_READ | PROT_WRITE), "mprotect");
	for (size_t i = 0; i < COW_PAGES; i++)
		cr_fill(cow + i * PAGE, PAGE, cow_seed(i, 0));
	started = start_time();

	tree_start(pair2, N(pair2), cow_handler);
	for (int i = 0; i < nnodes; i++)
		setup_op(i, OP_SETUP, 0, 0, 0);
	long before = cow_note("before the dump");
	cr_victim_ready_wait();

	long after = cow_note(start_time() == started ?
			      "at the verification (left running, not restored)" : "after restore");
	/* Pages neither side rewrote are shared again, as they were (a page of slack). */
	CR_CHECK(after <= before + (long)(PAGE / 1024),
		 "the region takes Pss %ld kB after restore, %ld kB before: the copy-on-write "
		 "sharing with the child is lost", after, before);
	for (int i = 0; i < nnodes; i++)
		node_op(i, OP_CHECK, 0, 0, 0, &ans);

	/* The child writes a page it shares COW with the root: the root does not see it. */
	off = 1 * PAGE + 64;
	if (node_op(1, OP_COW_WRITE, 0x0c0ffee1L, off, 0, &ans) &&
	    node_op(1, OP_COW_PEEK, 0, off, 0, &ans)) {
		CR_CHECK(ans.a == 0x0c0ffee1L, "child does not read back its own write (0x%lx)",
			 ans.a);
		CR_CHECK(*(long *)(cow + off) == pattern_long(64, cow_seed(1, 0)),
			 "the child's write to private page 1 shows in the root (0x%lx)",
			 *(long *)(cow + off));
	}
	/* The root writes a COW-shared page and a page the child rewrote: the child sees
	 * neither. */
	for (size_t page = 2; page <= 8; page += 6) {
		off = page * PAGE + 64;
		*(volatile long *)(cow + off) = 0x0c0ffee2L;
		if (node_op(1, OP_COW_PEEK, 0, off, 0, &ans))
			CR_CHECK(ans.a == pattern_long(64, cow_seed(page, 1)),
				 "the root's write to private page %zu shows in the child (0x%lx)",
				 page, ans.a);
	}
	return tree_finish();
}

/* Passes or fails like any case; also prints the victim's Rss/Pss notes as comments (on a
 * failure, cr_run_case() prints them with the other logs). */
TEST_F(share, private_cow)
{
	static const struct cr_case c = { .victim = victim_private_cow, .between = no_leftovers };
	static char text[4096];
	char path[PATH_MAX];

	cr_run_case(_metadata, &self->env, &c);
	snprintf(path, sizeof(path), "%s/" NOTES, self->env.dir);
	if (cr_read_file(path, text, sizeof(text)) > 0)
		th_comment("%s", text);
}

/* ---------------------------------------------------------------- shared_offset */

#define OFF_FILE_LEN	65536
#define OFF_SEED	41

enum { OP_OFF_READ = OP_CASE, OP_OFF_SEEK, OP_OFF_GET, OP_OFF_SEEK_SEP };

static int off_fd;		/* opened once by the root before fork: one description */
static int sep_fd;		/* opened by each process itself */
static char off_path[PATH_MAX];

static long sep_pos(int node)
{
	return 11 * (node + 1);
}

static long kcmp_file(pid_t pid, int fd1, int fd2)
{
	return syscall(SYS_kcmp, getpid(), pid, KCMP_FILE, fd1, fd2);
}

static void off_handler(const struct msg *req, struct msg *ans)
{
	static unsigned char buf[4096];
	long pos;

	switch (req->op) {
	case OP_SETUP:
		if (me) {
			sep_fd = open(off_path, O_RDONLY);
			CR_CHECK(sep_fd >= 0, "open '%s': %s", off_path, strerror(errno));
		}
		CR_CHECK(lseek(sep_fd, sep_pos(me), SEEK_SET) == sep_pos(me), "lseek");
		break;
	case OP_OFF_READ:
		pos = lseek(off_fd, 0, SEEK_CUR);
		CR_CHECK(req->a <= (long)sizeof(buf) && read(off_fd, buf, req->a) == req->a,
			 "%s: read %ld bytes of the shared fd: %s", nodes[me].name, req->a,
			 strerror(errno));
		for (long k = 0; k < req->a; k++)
			if (buf[k] != cr_pattern(pos + k, OFF_SEED)) {
				CR_CHECK(0, "%s: shared fd read other data at offset %ld",
					 nodes[me].name, pos + k);
				break;
			}
		ans->a = lseek(off_fd, 0, SEEK_CUR);
		break;
	case OP_OFF_SEEK:
		ans->a = lseek(off_fd, req->a, SEEK_CUR);
		break;
	case OP_OFF_SEEK_SEP:
		ans->a = lseek(sep_fd, req->a, SEEK_SET);
		break;
	case OP_OFF_GET:
		ans->a = lseek(off_fd, 0, SEEK_CUR);
		ans->b = lseek(sep_fd, 0, SEEK_CUR);
		ans->c = sep_fd;
		break;
	}
}

/* Every node: the shared offset is want, its own file's offset is sep_want[node]. */
static void off_expect(long want, const long *sep_want, const char *when)
{
	struct msg ans;

	for (int i = 0; i < nnodes; i++) {
		if (!node_op(i, OP_OFF_GET, 0, 0, 0, &ans))
			continue;
		CR_CHECK(ans.a == want, "%s: %s: shared fd offset %ld, expected %ld", when,
			 nodes[i].name, ans.a, want);
		CR_CHECK(ans.b == sep_want[i], "%s: %s: its own fd's offset %ld, expected %ld",
			 when, nodes[i].name, ans.b, sep_want[i]);
	}
}

static int victim_shared_offset(void *arg)
{
	long sep_want[MAX_NODES];
	struct msg ans;
	long k;

	make_file("offset.dat", OFF_FILE_LEN, OFF_SEED, off_path);
	off_fd = open(off_path, O_RDONLY);
	CR_SETUP(off_fd >= 0, "open '%s'", off_path);
	tree_start(chain3, N(chain3), off_handler);
	sep_fd = open(off_path, O_RDONLY);	/* after the fork: the root's own */
	CR_SETUP(sep_fd >= 0, "open '%s'", off_path);
	for (int i = 0; i < nnodes; i++) {
		setup_op(i, OP_SETUP, 0, 0, 0);
		sep_want[i] = sep_pos(i);
	}
	/* Before the dump: the child reads, the grandchild seeks, the root sees both. */
	CR_SETUP(setup_op(1, OP_OFF_READ, 100, 0, 0).a == 100, "child read");
	CR_SETUP(lseek(off_fd, 0, SEEK_CUR) == 100, "root does not see the child's read");
	CR_SETUP(setup_op(2, OP_OFF_SEEK, 1000, 0, 0).a == 1100, "grandchild seek");
	CR_SETUP(lseek(off_fd, 0, SEEK_CUR) == 1100, "root does not see the grandchild's seek");
	k = kcmp_file(nodes[1].pid, off_fd, off_fd);
	if (k < 0 && errno == ENOSYS)
		CR_VICTIM_SKIP("no kcmp (CONFIG_KCMP)");
	CR_SETUP(k == 0, "kcmp(KCMP_FILE) says %ld before the dump", k);
	cr_victim_ready_wait();

	off_expect(1100, sep_want, "after restore");
	for (int i = 1; i < nnodes; i++) {
		if (!node_op(i, OP_OFF_GET, 0, 0, 0, &ans))
			continue;
		k = kcmp_file(nodes[i].pid, off_fd, off_fd);
		CR_CHECK(k == 0, "kcmp(KCMP_FILE) root fd %d vs %s fd %d: %ld (%s), expected 0 "
			 "(one file description)", off_fd, nodes[i].name, off_fd, k,
			 k < 0 ? strerror(errno) : "different");
		k = kcmp_file(nodes[i].pid, sep_fd, ans.c);
		CR_CHECK(k == 1 || k == 2, "kcmp(KCMP_FILE) root fd %d vs %s fd %ld (separate "
			 "opens): %ld, expected 1 or 2", sep_fd, nodes[i].name, ans.c, k);
	}
	/* The shared offset still moves for all. */
	if (node_op(1, OP_OFF_READ, 200, 0, 0, &ans))
		CR_CHECK(ans.a == 1300, "child's read left the offset at %ld, expected 1300",
			 ans.a);
	off_expect(1300, sep_want, "after the child read 200 bytes");
	if (node_op(2, OP_OFF_SEEK, 7, 0, 0, &ans))
		CR_CHECK(ans.a == 1307, "grandchild's seek gave %ld, expected 1307", ans.a);
	off_expect(1307, sep_want, "after the grandchild seeked");
	/* The separate ones do not. */
	sep_want[0] = 44;
	CR_CHECK(lseek(sep_fd, 44, SEEK_SET) == 44, "lseek");
	off_expect(1307, sep_want, "after the root moved its own fd");
	sep_want[1] = 55;
	if (node_op(1, OP_OFF_SEEK_SEP, 55, 0, 0, &ans))
		CR_CHECK(ans.a == 55, "lseek in the child");
	off_expect(1307, sep_want, "after the child moved its own fd");
	return tree_finish();
}

CR_CASE(share, shared_offset, .victim = victim_shared_offset, .between = no_leftovers);

/* ---------------------------------------------------------------- pipes_tree */

/*
 * p1: root -> child. The root closed the read end, the child the write end, the grandchild
 *     both. Queued: 3000 bytes (seed 51).
 * p2: child -> grandchild, and the root also holds a write end. The root and the child
 *     closed the read end, the grandchild the write end. Queued: 1000 bytes written by the
 *     root before fork (seed 53), then 4000 by the child (seed 52).
 */
#define P1_QUEUED	3000
#define P2_ROOT		1000
#define P2_CHILD	4000

enum { OP_P_READ = OP_CASE, OP_P_EOF, OP_P_WRITE_CLOSE };

static int p1[2], p2[2];

/* open[node][k]: fd k of p1r p1w p2r p2w is open in the node (after the set-up). */
static const bool pipe_open[3][4] = {
	{ false, true, false, true },		/* root */
	{ true, false, false, true },		/* child */
	{ false, false, true, false },		/* grandchild */
};

static int pipe_in(void)
{
	return me == 1 ? p1[0] : p2[0];
}

static void pipe_write(int fd, size_t n, unsigned seed)
{
	static unsigned char buf[8192];

	cr_fill(buf, n, seed);
	CR_CHECK(n <= sizeof(buf) && !write_all(fd, buf, n), "%s: write %zu bytes to fd %d: %s",
		 nodes[me].name, n, fd, strerror(errno));
}

static void pipe_handler(const struct msg *req, struct msg *ans)
{
	static unsigned char buf[8192];
	const int fds[4] = { p1[0], p1[1], p2[0], p2[1] };
	static const char *const what[4] = { "p1 read end", "p1 write end", "p2 read end",
					     "p2 write end" };
	long bad;
	int ev;

	switch (req->op) {
	case OP_SETUP:
		for (int k = 0; k < 4; k++)
			if (!pipe_open[me][k])
				close(fds[k]);
		if (me == 1)
			pipe_write(p2[1], P2_CHILD, 52);
		/* fall through */
	case OP_CHECK:
		for (int k = 0; k < 4; k++)
			CR_CHECK(pipe_open[me][k] != fd_closed(fds[k]), "%s: %s (fd %d) is %s, "
				 "expected %s", nodes[me].name, what[k], fds[k],
				 pipe_open[me][k] ? "closed" : "open",
				 pipe_open[me][k] ? "open" : "closed (EBADF)");
		break;
	case OP_P_READ:
		/* a bytes of seed b; answers what is queued after and whether EOF/data shows */
		if (req->a > (long)sizeof(buf) ||
		    read_exact(pipe_in(), buf, req->a, IO_MS / 2)) {
			CR_CHECK(0, "%s: read %ld bytes from fd %d: %s", nodes[me].name, req->a,
				 pipe_in(), strerror(errno));
			break;
		}
		bad = cr_check_pattern(buf, req->a, req->b);
		CR_CHECK(bad < 0, "%s: pipe data (seed %ld) differs at byte %ld", nodes[me].name,
			 req->b, bad);
		ans->a = queued(pipe_in());
		ev = wait_fd(pipe_in(), POLLIN, 0);
		ans->b = ev;
		break;
	case OP_P_EOF:
		ev = wait_fd(pipe_in(), POLLIN, IO_MS / 2);
		CR_CHECK(ev > 0 && read(pipe_in(), buf, 1) == 0, "%s: no EOF on fd %d (poll %d)",
			 nodes[me].name, pipe_in(), ev);
		break;
	case OP_P_WRITE_CLOSE:
		pipe_write(p2[1], req->a, req->b);
		CR_CHECK(!close(p2[1]), "close");
		break;
	}
}

/* Node i reads n bytes of seed; then q bytes must be queued and, if !q, EOF shown iff eof. */
static void pipe_read(int i, long n, long seed, long q, bool eof)
{
	struct msg ans;

	if (!node_op(i, OP_P_READ, n, seed, 0, &ans))
		return;
	CR_CHECK(ans.a == q, "%s: %ld bytes queued after reading %ld of seed %ld, expected %ld",
		 nodes[i].name, ans.a, n, seed, q);
	if (!q)
		CR_CHECK(!!ans.b == eof, "%s: pipe %s after reading everything (poll 0x%lx)",
			 nodes[i].name, eof ? "shows no EOF with no writer left" :
			 "readable though a writer is left", ans.b);
}

static int victim_pipes(void *arg)
{
	struct msg ans;

	CR_SETUP(!pipe(p1) && !pipe(p2), "pipe");
	pipe_write(p1[1], P1_QUEUED, 51);
	pipe_write(p2[1], P2_ROOT, 53);
	CR_SETUP(!cr_victim_result(), "queue pipe data");
	tree_start(chain3, N(chain3), pipe_handler);
	tree_ready_wait();

	for (int i = 0; i < nnodes; i++)
		node_op(i, OP_CHECK, 0, 0, 0, &ans);
	/* p1: the queued data, nothing more, no EOF while the root holds the write end */
	pipe_read(1, P1_QUEUED, 51, 0, false);
	pipe_write(p1[1], 200, 54);
	CR_CHECK(!close(p1[1]), "close");
	pipe_read(1, 200, 54, 0, true);
	node_op(1, OP_P_EOF, 0, 0, 0, &ans);
	/* p2: the root's bytes, then the child's; EOF only when the root closes too */
	pipe_read(2, P2_ROOT, 53, P2_CHILD, false);
	pipe_read(2, P2_CHILD, 52, 0, false);
	node_op(1, OP_P_WRITE_CLOSE, 100, 55, 0, &ans);
	pipe_read(2, 100, 55, 0, false);
	CR_CHECK(!close(p2[1]), "close");
	node_op(2, OP_P_EOF, 0, 0, 0, &ans);
	return tree_finish();
}

CR_CASE(share, pipes_tree, .victim = victim_pipes, .between = no_leftovers);

/* ---------------------------------------------------------------- closed_fds */

/* fds 3..10: file, /dev/null, pipe A (r, w), file, /dev/zero, pipe B (r, w). */
#define FD_FIRST	3
#define FD_LAST		10
#define MAX_FDS		64

enum { OP_FD_WRITE = OP_CASE, OP_FD_READ };

struct fd_list {
	int n;
	int fd[MAX_FDS];
	char what[MAX_FDS][96];
};

static struct fd_list fds_before;

/* closed[node]: bit k set = fd k closed by that node. */
static const unsigned fd_closed_by[3] = {
	0,
	1u << 3 | 1u << 6 | 1u << 9,			/* child1: keeps pipe A r, pipe B w */
	1u << 4 | 1u << 5 | 1u << 7 | 1u << 10,		/* child2: keeps pipe A w, pipe B r */
};

/* Every fd of this process with its target; pipes named by their order of first appearance
 * ("pipe#0", ...) since a restore makes new pipe inodes. */
static int list_fds(struct fd_list *l)
{
	ino_t pipes[MAX_FDS];
	int npipes = 0;
	struct dirent *de;
	DIR *d;

	l->n = 0;
	d = opendir("/proc/self/fd");
	if (!d)
		return -1;
	while ((de = readdir(d)) && l->n < MAX_FDS) {
		char link[64], target[96] = "";
		int fd = atoi(de->d_name);
		ssize_t len;

		if (de->d_name[0] == '.' || fd == dirfd(d))
			continue;
		snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
		len = readlink(link, target, sizeof(target) - 1);
		target[len > 0 ? len : 0] = 0;
		l->fd[l->n] = fd;
		snprintf(l->what[l->n], sizeof(l->what[0]), "%s", target);
		l->n++;
	}
	closedir(d);
	/* sort by fd (few entries) */
	for (int i = 1; i < l->n; i++)
		for (int j = i; j > 0 && l->fd[j - 1] > l->fd[j]; j--) {
			char tmp[96];
			int t = l->fd[j];

			l->fd[j] = l->fd[j - 1];
			l->fd[j - 1] = t;
			memcpy(tmp, l->what[j], sizeof(tmp));
			memcpy(l->what[j], l->what[j - 1], sizeof(tmp));
			memcpy(l->what[j - 1], tmp, sizeof(tmp));
		}
	for (int i = 0; i < l->n; i++) {
		ino_t ino;
		int k;

		if (sscanf(l->what[i], "pipe:[%lu]", &ino) != 1)
			continue;
		for (k = 0; k < npipes && pipes[k] != ino; k++)
			;
		if (k == npipes)
			pipes[npipes++] = ino;
		snprintf(l->what[i], sizeof(l->what[0]), "pipe#%d", k);
	}
	return 0;
}

static void fds_check(void)
{
	static struct fd_list now;
	int i = 0, j = 0;

	for (int fd = FD_FIRST; fd <= FD_LAST; fd++) {
		bool want_open = !(fd_closed_by[me] & 1u << fd);

		CR_CHECK(want_open != fd_closed(fd), "%s: fd %d is %s, expected %s", nodes[me].name,
			 fd, want_open ? "closed" : "open", want_open ? "open" : "closed (EBADF)");
	}
	if (list_fds(&now)) {
		CR_CHECK(0, "%s: list /proc/self/fd: %s", nodes[me].name, strerror(errno));
		return;
	}
	while (i < fds_before.n || j < now.n) {
		if (j >= now.n || (i < fds_before.n && fds_before.fd[i] < now.fd[j])) {
			CR_CHECK(0, "%s: fd %d ('%s') is gone", nodes[me].name, fds_before.fd[i],
				 fds_before.what[i]);
			i++;
		} else if (i >= fds_before.n || now.fd[j] < fds_before.fd[i]) {
			CR_CHECK(0, "%s: fd %d ('%s') appeared", nodes[me].name, now.fd[j],
				 now.what[j]);
			j++;
		} else {
			CR_CHECK(!strcmp(fds_before.what[i], now.what[j]), "%s: fd %d was '%s', "
				 "is '%s'", nodes[me].name, now.fd[j], fds_before.what[i],
				 now.what[j]);
			i++;
			j++;
		}
	}
}

static void fds_handler(const struct msg *req, struct msg *ans)
{
	char c = 0;

	switch (req->op) {
	case OP_SETUP:
		for (int fd = FD_FIRST; fd <= FD_LAST; fd++)
			if (fd_closed_by[me] & 1u << fd)
				CR_CHECK(!close(fd), "%s: close %d", nodes[me].name, fd);
		/* the root lists its fds once the ready pipe is closed */
		if (me)
			CR_CHECK(!list_fds(&fds_before), "list /proc/self/fd");
		break;
	case OP_CHECK:
		fds_check();
		break;
	case OP_FD_WRITE:
		c = (char)req->b;
		CR_CHECK(write(req->a, &c, 1) == 1, "%s: write to fd %ld: %s", nodes[me].name,
			 req->a, strerror(errno));
		break;
	case OP_FD_READ:
		CR_CHECK(!read_exact(req->a, &c, 1, IO_MS / 2) && c == (char)req->b,
			 "%s: fd %ld did not deliver '%c' (%s)", nodes[me].name, req->a,
			 (char)req->b, strerror(errno));
		break;
	}
}

static void place(int fd, int want)
{
	CR_SETUP(fd >= 0, "open fd %d", want);
	if (fd == want)
		return;
	CR_SETUP(dup2(fd, want) == want, "dup2 %d -> %d", fd, want);
	close(fd);
}

static int victim_closed_fds(void *arg)
{
	static char path_a[PATH_MAX], path_b[PATH_MAX];
	int pa[2], pb[2];
	struct msg ans;

	make_file("closed-a.dat", 100, 81, path_a);
	make_file("closed-b.dat", 200, 82, path_b);
	/* Free 3..10 of the ready pipe (the only other fd the victim has). */
	if (cr_ready_fd <= FD_LAST)
		cr_ready_fd = move_fd(cr_ready_fd, CHAN_FD_MIN * 2);
	for (int fd = FD_FIRST; fd <= FD_LAST; fd++)
		CR_SETUP(fd_closed(fd), "fd %d is already open", fd);
	place(open(path_a, O_RDONLY), 3);
	place(open("/dev/null", O_RDWR), 4);
	CR_SETUP(!pipe(pa), "pipe");
	place(pa[0], 5);
	place(pa[1], 6);
	place(open(path_b, O_RDWR), 7);
	place(open("/dev/zero", O_RDONLY), 8);
	CR_SETUP(!pipe(pb), "pipe");
	place(pb[0], 9);
	place(pb[1], 10);

	tree_start(fork3, N(fork3), fds_handler);
	for (int i = 0; i < nnodes; i++)
		setup_op(i, OP_SETUP, 0, 0, 0);
	cr_victim_ready();
	CR_SETUP(!list_fds(&fds_before), "list /proc/self/fd");
	cr_victim_wait();

	for (int i = 0; i < nnodes; i++)
		node_op(i, OP_CHECK, 0, 0, 0, &ans);
	/* The ends left open still connect: root -> child1 over A, child1 -> child2 over B. */
	node_op(0, OP_FD_WRITE, 6, 'x', 0, &ans);
	node_op(1, OP_FD_READ, 5, 'x', 0, &ans);
	node_op(1, OP_FD_WRITE, 10, 'y', 0, &ans);
	node_op(2, OP_FD_READ, 9, 'y', 0, &ans);
	return tree_finish();
}

CR_CASE(share, closed_fds, .victim = victim_closed_fds, .between = no_leftovers);

/* ---------------------------------------------------------------- socketpair_tree (last) */

#define SK_TYPES	3
#define SK_MAXMSG	4

enum { OP_SK_RECV = OP_CASE, OP_SK_ECHO };

static const int sk_type[SK_TYPES] = { SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET };
static const char *const sk_tname[SK_TYPES] = { "stream", "dgram", "seqpacket" };
/* Messages queued at dump time: [sender: 0 root, 1 child][socket][message], 0 ends. */
static const int sk_queued[2][SK_TYPES][SK_MAXMSG] = {
	{ { 3000 }, { 100, 250, 40 }, { 500, 1200 } },
	{ { 2000, 1000 }, { 60, 300 }, { 800, 10, 333 } },
};
/* Messages sent after restore, each way. */
static const int sk_fresh[SK_TYPES][SK_MAXMSG] = { { 7, 13 }, { 7, 13 }, { 7, 13 } };

static int sk[SK_TYPES][2];		/* the root keeps [0], the child [1] */

static unsigned sk_seed(int sender, int t, int m, bool fresh)
{
	return 600 + fresh * 300 + sender * 100 + t * 10 + m;
}

static void sk_send(int sender, const int sizes[SK_MAXMSG], int t, bool fresh)
{
	static unsigned char buf[4096];

	for (int m = 0; m < SK_MAXMSG && sizes[m]; m++) {
		cr_fill(buf, sizes[m], sk_seed(sender, t, m, fresh));
		CR_CHECK(send(sk[t][sender], buf, sizes[m], MSG_NOSIGNAL) == sizes[m],
			 "%s: send %d bytes on the %s socket: %s", nodes[me].name, sizes[m],
			 sk_tname[t], strerror(errno));
	}
}

/* Receives what the other side sent on socket t, exactly, then nothing more is queued. */
static void sk_recv(int sender, const int sizes[SK_MAXMSG], int t, bool fresh)
{
	static unsigned char buf[4096];
	int fd = sk[t][!sender];
	ssize_t n;
	long bad;

	for (int m = 0; m < SK_MAXMSG && sizes[m]; m++) {
		if (sk_type[t] == SOCK_STREAM) {
			CR_CHECK(!read_exact(fd, buf, sizes[m], IO_MS / 4), "%s: %s socket: "
				 "read %d bytes: %s", nodes[me].name, sk_tname[t], sizes[m],
				 strerror(errno));
			n = sizes[m];
		} else {
			n = -1;
			if (wait_fd(fd, POLLIN, IO_MS / 4) > 0)
				n = recv(fd, buf, sizeof(buf), MSG_TRUNC | MSG_DONTWAIT);
			CR_CHECK(n == sizes[m], "%s: %s socket: message %d is %zd bytes, expected "
				 "%d (%s)", nodes[me].name, sk_tname[t], m, n, sizes[m],
				 n < 0 ? strerror(errno) : "boundary lost");
		}
		if (n != sizes[m])
			return;
		bad = cr_check_pattern(buf, sizes[m], sk_seed(sender, t, m, fresh));
		CR_CHECK(bad < 0, "%s: %s socket: message %d differs at byte %ld", nodes[me].name,
			 sk_tname[t], m, bad);
	}
	n = recv(fd, buf, 1, MSG_DONTWAIT | MSG_PEEK);
	CR_CHECK(n < 0 && errno == EAGAIN, "%s: %s socket: more data than was sent (%zd)",
		 nodes[me].name, sk_tname[t], n);
}

static void sk_handler(const struct msg *req, struct msg *ans)
{
	switch (req->op) {
	case OP_SETUP:
		for (int t = 0; t < SK_TYPES; t++) {
			close(sk[t][!me]);
			sk[t][!me] = -1;
			sk_send(me, sk_queued[me][t], t, false);
		}
		break;
	case OP_SK_RECV:
		for (int t = 0; t < SK_TYPES; t++)
			sk_recv(!me, sk_queued[!me][t], t, false);
		break;
	case OP_SK_ECHO:
		/* the root's fresh messages in, the child's out */
		for (int t = 0; t < SK_TYPES; t++) {
			sk_recv(0, sk_fresh[t], t, true);
			sk_send(1, sk_fresh[t], t, true);
		}
		break;
	}
}

static int victim_socketpairs(void *arg)
{
	struct msg ans;

	for (int t = 0; t < SK_TYPES; t++)
		CR_SETUP(!socketpair(AF_UNIX, sk_type[t], 0, sk[t]), "socketpair %s",
			 sk_tname[t]);
	tree_start(pair2, N(pair2), sk_handler);
	tree_ready_wait();

	for (int i = 0; i < nnodes; i++)
		node_op(i, OP_SK_RECV, 0, 0, 0, &ans);
	for (int t = 0; t < SK_TYPES; t++)
		sk_send(0, sk_fresh[t], t, true);
	if (node_op(1, OP_SK_ECHO, 0, 0, 0, &ans))
		for (int t = 0; t < SK_TYPES; t++)
			sk_recv(1, sk_fresh[t], t, true);
	return tree_finish();
}

CR_CASE(share, socketpair_tree, .victim = victim_socketpairs, .between = no_leftovers);

TEST_HARNESS_MAIN
