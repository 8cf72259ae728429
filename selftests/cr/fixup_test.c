// SPDX-License-Identifier: MIT
/*
 * fixup_test: incremental restore with fixups (`ckpt restore --keep-frozen`, `--fixup`,
 * `--resume`, `--abort`, all over `--control SOCK`).
 *
 * A victim tree is driven through rounds (commands over the FIFOs of incr.h), trackd
 * watches it, and the chain i0 (full), i1 ... iN (deltas, iN the final one, which kills
 * the tree) is dumped. Then the tree is built frozen from i0 and every delta is applied
 * to it in turn; after each step the runner checks the frozen tree against that step's
 * images: the processes of pstree.img and no other, each stopped (a zombie a zombie with
 * its status), parents, groups and sessions, every mapping of mm-PID.img in place with its
 * protection, none of the mappings the delta removed left, and every page `ckpt show
 * --pages --sums` lists holding that CRC-32C (read through /proc/PID/mem). After the
 * resume the server is gone, the roots are the runner's children (as after `restore -d`)
 * and the victim checks itself ("c": memory, children, zombies, threads, fds and offsets,
 * blocked and pending signals, SSE/AVX/x87/GPR values held by a thread across the chain,
 * the layout of its mapping arena). Then that tree is dumped (R1), the final images are
 * restored in full, checked and dumped again (R2), and R1 and R2 must be identical (every
 * image but the inventory, and every page's CRC; whether a page is shared copy-on-write
 * with the parent is left out, a documented limit, see fx_drop_flags()). Each victim ends blocked in a known
 * place (open() of the command FIFO, read() of a pipe), so both dumps see the same state;
 * the runner pins itself to one CPU before the restores so that the rseq areas the kernel
 * writes say the same CPU in both.
 *
 * Victim processes are "nodes" (see fx_do()): each has pages of its own and the pages it
 * inherited from its parent at fork, takes commands from its parent and answers them; a
 * command led by digit k goes to its child k.
 *
 * Cases: task_died (a child and a grandchild end and are reaped; --resume apart),
 * process_appeared (plain, own group, own session), thread_appeared (threads come in the
 * root and a child, one goes), new_task_children (a new process, its child in a session of
 * its own and that one's children, a thread, all in one round), mappings (added, removed,
 * moved with mremap, resized in place, re-protected, a file mapping replaced), new_groups
 * and new_sessions (existing processes call setpgid / setsid), pages (written by the task
 * and by the kernel, discarded), shared_memory (shared anonymous memory written by several
 * processes stays shared), fs_state (working directory, umask and personality changed after
 * i0, in the root, a child and one born in a fixup), exec (children exec, an exec'd one
 * forks), zombies (one appears and is reaped, one is born a zombie), orphans and
 * orphans_zombie (below a child subreaper root, a child ends, reaped or left a zombie, while
 * its child lives on and goes to the root), busy_rounds (a thread
 * writes all along, so the --leave-running rounds are copied while it runs), five_rounds,
 * top_only (keep-frozen on the top, --resume alone) and control (two full restores compare
 * equal: the comparison itself is exact). Failures: wrong_parent (fixups of i1 again, of i3
 * before i2, of the full i0, and a second keep-frozen are refused, the tree unchanged, then
 * the right fixups work), abort and server_killed (no task of the tree and no server left,
 * the socket refuses, the PIDs restore fully), hostile_images (overlapping mappings, a page
 * run outside every mapping, a short pages file, an unknown parent in pstree.img, flipped
 * bytes in delta.img and mm, a truncated core image, an empty directory: refused naming the
 * image, the tree unchanged).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cr.h"
#include "cr_img.h"
#include "incr.h"
#include "inventory.pb-c.h"
#include "pagemap.pb-c.h"
#include "pstree.pb-c.h"

CR_FIXTURE(fixup);

#define PG		INCR_PAGE_SIZE
#define WAIT_MS		INCR_WAIT_MS
#define FX_PAGES	8	/* a node's own pages */
#define FX_KIDS		8
#define FX_THREADS	4
#define FX_ARENA	64	/* pages of the root's mapping arena */
#define FX_FILE_PAGES	8	/* DIR/mm.dat, mapped privately into the arena */
#define FX_ZERO		0xffffffffu	/* the gen of a discarded page */
#define FX_KGEN		50	/* the gen of pages the kernel wrote (read() into them) */
#define FX_DATA_LEN	65536
#define FX_NODE_ARG	"--fx-node"	/* argv[1] of an exec'd node */
#define FX_MAX_ROUNDS	6

/* ------------------------------------------------------------------ victim side */

/* KID_GIVEN: handed over to the root ("H"), which commands it from then on */
enum { KID_LIVE = 1, KID_ZOMBIE, KID_REAPED, KID_GIVEN };

struct fx_kid {
	pid_t pid;
	int cmd_w, rep_r;
	int state;
	int code;		/* a zombie's exit code */
	bool execed;
	char comm[32];		/* its /proc/PID/comm when it was last seen alive */
};

struct fx_thread {
	pthread_t th;
	volatile pid_t tid;
	int cmd[2], rep[2];	/* it reads cmd[0] and answers on rep[1] */
};

static struct {
	struct fx_kid kids[FX_KIDS];
	int nr_kids;
	int cmd_r, rep_w;	/* from and to the parent; -1 in the root */
	pid_t parent;		/* as fork() saw it, or the subreaper that took it ("p") */
	pid_t pgid, sid;
	bool root, execed;
	bool subreaper;		/* PR_SET_CHILD_SUBREAPER ("r"; not inherited at fork) */
	unsigned char *own, *inh;
	unsigned gen[FX_PAGES];
	unsigned inh_gen[FX_PAGES];	/* the parent's gens when it forked us */
	pid_t inh_pid;		/* whose pages inh holds; 0: none */
	int data_fd;		/* the root's data file (inherited by its children), or -1 */
	off_t data_off;		/* the root's offset in it */
	struct fx_thread threads[FX_THREADS];
	int nr_threads;
	int fs_gen;		/* the last "C" (inherited at fork); 0: none */
} node = { .cmd_r = -1, .rep_w = -1, .data_fd = -1 };

static unsigned fx_seed(pid_t pid, unsigned i, unsigned gen)
{
	return (unsigned)pid * 1024 + i * 64 + gen;
}

static void fx_write_page(unsigned i, unsigned gen)
{
	node.gen[i] = gen;
	incr_fill_page(node.own + i * PG, fx_seed(getpid(), i, gen));
}

/* Maps and fills the node's own pages (gen 0). */
static int fx_fill(void)
{
	node.own = mmap(NULL, FX_PAGES * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			-1, 0);
	if (node.own == MAP_FAILED)
		return -errno;
	for (unsigned i = 0; i < FX_PAGES; i++)
		fx_write_page(i, 0);
	return 0;
}

/* Waits (bounded) until child pid exited, without reaping it: true if it did. */
static bool fx_wait_exited(pid_t pid)
{
	int fd = syscall(SYS_pidfd_open, pid, 0);
	struct pollfd p = { .fd = fd, .events = POLLIN };
	long deadline = incr_now_ms() + WAIT_MS;
	int ret;

	if (fd < 0)
		return false;
	do
		ret = poll(&p, 1, deadline - incr_now_ms());
	while (ret < 0 && errno == EINTR && incr_now_ms() < deadline);
	close(fd);
	return ret == 1;
}

static int fx_zcode(pid_t pid)
{
	return 10 + pid % 100;
}

static void fx_block_all(void)
{
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
}

/* ---- threads: each blocks in read() and answers 'c' (checks itself) until 'q' ---- */

static __thread pid_t fx_tls;

static void *fx_thread_main(void *arg)
{
	struct fx_thread *t = arg;
	unsigned char mine[512];
	char c;

	fx_block_all();
	fx_tls = gettid();
	cr_fill(mine, sizeof(mine), fx_tls);
	t->tid = fx_tls;
	for (;;) {
		ssize_t n = read(t->cmd[0], &c, 1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n != 1 || c == 'q')
			break;
		c = cr_check_pattern(mine, sizeof(mine), fx_tls) < 0 && fx_tls == gettid() &&
		    gettid() == t->tid ? 'y' : 'n';
		if (write(t->rep[1], &c, 1) != 1)
			break;
	}
	return NULL;
}

static int fx_thread_start(void)
{
	struct fx_thread *t = &node.threads[node.nr_threads];
	long deadline = incr_now_ms() + WAIT_MS;

	if (node.nr_threads == FX_THREADS)
		return -ENOSPC;
	t->tid = 0;
	if (pipe2(t->cmd, O_CLOEXEC))
		return -errno;
	if (pipe2(t->rep, O_CLOEXEC))
		return -errno;
	if (pthread_create(&t->th, NULL, fx_thread_main, t))
		return -EAGAIN;
	node.nr_threads++;
	while (!t->tid && incr_now_ms() < deadline)
		sched_yield();
	return t->tid ? 0 : -ETIMEDOUT;
}

static void fx_thread_close(struct fx_thread *t)
{
	close(t->cmd[0]);
	close(t->cmd[1]);
	close(t->rep[0]);
	close(t->rep[1]);
}

static int fx_thread_stop(void)
{
	struct fx_thread *t;

	if (!node.nr_threads)
		return -ENOENT;
	t = &node.threads[--node.nr_threads];
	if (write(t->cmd[1], "q", 1) != 1 || pthread_join(t->th, NULL))
		return -EIO;
	fx_thread_close(t);
	return 0;
}

/* ---- a thread holding known register values across the chain (x86-64) ---- */

static struct {
	bool started, avx;
	pthread_t th;
	uint32_t arrived, done;
	int bad;
	int block[2];		/* it ends blocked reading block[0] */
} fx_regs;

#ifdef __x86_64__
static void *fx_regs_main(void *arg)
{
	struct cr_regs in, out;
	char c;

	(void)arg;
	fx_block_all();
	cr_regs_init(&in, 0x5eed);
	cr_regs_hold(&in, &out, fx_regs.avx, &fx_regs.arrived);
	fx_regs.bad = cr_regs_compare(&in, &out, fx_regs.avx);
	__atomic_store_n(&fx_regs.done, 1, __ATOMIC_RELEASE);
	while (read(fx_regs.block[0], &c, 1) < 0 && errno == EINTR)
		;
	return NULL;
}
#endif

static int fx_regs_start(void)
{
#ifdef __x86_64__
	long deadline = incr_now_ms() + WAIT_MS;

	fx_regs.avx = cr_cpu_has_avx();
	if (pipe2(fx_regs.block, O_CLOEXEC) || pthread_create(&fx_regs.th, NULL, fx_regs_main, NULL))
		return -EAGAIN;
	fx_regs.started = true;
	while (!__atomic_load_n(&fx_regs.arrived, __ATOMIC_ACQUIRE) && incr_now_ms() < deadline)
		sched_yield();
	return fx_regs.arrived ? 0 : -ETIMEDOUT;
#else
	return 0;
#endif
}

/* Lets the thread go (it compares its registers) and takes its verdict. */
static void fx_regs_check(void)
{
	long deadline;

	if (!fx_regs.started)
		return;
	deadline = incr_now_ms() + WAIT_MS;
	cr_verify_requested = 1;
	while (!__atomic_load_n(&fx_regs.done, __ATOMIC_ACQUIRE) && incr_now_ms() < deadline)
		sched_yield();
	CR_CHECK(fx_regs.done, "the register thread did not leave its loop");
	CR_CHECK(!fx_regs.bad, "%d register(s) of the holding thread differ (see above)",
		 fx_regs.bad);
}

/* ---- shared anonymous memory: a header page (the seeds, a token), then data pages ---- */

#define FX_SHM_PAGES	4
#define FX_TOKEN	0x5eedc0deu

struct fx_shm_hdr {
	unsigned seed[FX_SHM_PAGES];
	unsigned token;
};

static unsigned char *fx_shm;	/* inherited by the children at fork; NULL after exec */

static int fx_shm_create(void)
{
	struct fx_shm_hdr *h;

	fx_shm = mmap(NULL, FX_SHM_PAGES * PG, PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (fx_shm == MAP_FAILED) {
		fx_shm = NULL;
		return -errno;
	}
	h = (struct fx_shm_hdr *)fx_shm;
	for (unsigned i = 1; i < FX_SHM_PAGES; i++) {
		h->seed[i] = 0x30000 + i;
		incr_fill_page(fx_shm + i * PG, h->seed[i]);
	}
	return 0;
}

/* "W a": data page 1 + a % 3 gets seed a (any process sharing the region). */
static int fx_shm_write(unsigned a)
{
	struct fx_shm_hdr *h = (struct fx_shm_hdr *)fx_shm;
	unsigned i = 1 + a % (FX_SHM_PAGES - 1);

	if (!fx_shm)
		return -EINVAL;
	h->seed[i] = 0x30000 + a * 16 + i;
	incr_fill_page(fx_shm + i * PG, h->seed[i]);
	return 0;
}

/* Every data page is what the header says; the token is the root's (sharing works). */
static void fx_shm_check(bool root)
{
	struct fx_shm_hdr *h = (struct fx_shm_hdr *)fx_shm;

	if (!fx_shm)
		return;
	for (unsigned i = 1; i < FX_SHM_PAGES; i++)
		CR_CHECK(incr_page_matches(fx_shm + i * PG, h->seed[i]),
			 "shared page %u differs from seed %#x", i, h->seed[i]);
	if (!root)
		CR_CHECK(h->token == FX_TOKEN, "shared token %#x: the root's write is not seen",
			 h->token);
}

/* ---- a thread that rewrites pages as fast as it can (rounds copied while it runs) ---- */

#define FX_BUSY_PAGES	32

static struct {
	pthread_t th;
	bool started;
	volatile int stop;
	unsigned char *mem;
	unsigned seed[FX_BUSY_PAGES];
	volatile unsigned long writes;
} fx_busy;

static void *fx_busy_main(void *arg)
{
	(void)arg;
	fx_block_all();
	for (unsigned long k = 0; !fx_busy.stop; k++) {
		unsigned pg = k % FX_BUSY_PAGES;

		fx_busy.seed[pg] = 0x900000 + k % 0x100000;
		incr_fill_page(fx_busy.mem + pg * PG, fx_busy.seed[pg]);
		fx_busy.writes = k + 1;
	}
	return NULL;
}

/* "b": the writer starts (and has written every page once); "B": it stops. */
static int fx_busy_cmd(bool start)
{
	long deadline = incr_now_ms() + WAIT_MS;

	if (start == fx_busy.started)
		return -EINVAL;
	if (!start) {
		fx_busy.stop = 1;
		fx_busy.started = false;
		return pthread_join(fx_busy.th, NULL) ? -EIO : 0;
	}
	fx_busy.mem = mmap(NULL, FX_BUSY_PAGES * PG, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (fx_busy.mem == MAP_FAILED || pthread_create(&fx_busy.th, NULL, fx_busy_main, NULL))
		return -EAGAIN;
	fx_busy.started = true;
	while (fx_busy.writes < 4 * FX_BUSY_PAGES && incr_now_ms() < deadline)
		sched_yield();
	return fx_busy.writes >= 4 * FX_BUSY_PAGES ? 0 : -ETIMEDOUT;
}

static void fx_busy_check(void)
{
	for (unsigned i = 0; fx_busy.mem && i < FX_BUSY_PAGES; i++)
		CR_CHECK(incr_page_matches(fx_busy.mem + i * PG, fx_busy.seed[i]),
			 "page %u the writer wrote last with seed %#x differs", i, fx_busy.seed[i]);
}

/* ---- the root's signal state ---- */

static void fx_on_sig(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)si;
	(void)uc;
}

static int fx_sig_rt(int n)
{
	return SIGRTMIN + n;
}

static int fx_signals_setup(void)
{
	struct sigaction sa = { .sa_sigaction = fx_on_sig, .sa_flags = SA_SIGINFO | SA_RESTART };
	sigset_t set;

	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, SIGQUIT);
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, fx_sig_rt(2));
	if (sigaction(SIGUSR1, &sa, NULL) || sigprocmask(SIG_BLOCK, &set, NULL) ||
	    kill(getpid(), SIGUSR1) || syscall(SYS_tgkill, getpid(), gettid(), fx_sig_rt(2)))
		return -errno;
	return 0;
}

/*
 * What a victim reads from /proc (times, counters) differs from one run to the next: it is
 * wiped after use, so that the memory of the two trees compared holds the same.
 */
static unsigned long long fx_status_mask(const char *key)
{
	char status[4096], val[64] = "";
	unsigned long long v = ~0ULL;

	if (cr_read_file("/proc/thread-self/status", status, sizeof(status)) > 0 &&
	    !cr_status_field(status, key, val, sizeof(val)))
		v = strtoull(val, NULL, 16);
	explicit_bzero(status, sizeof(status));
	return v;
}

static unsigned long long fx_bit(int sig)
{
	return 1ULL << (sig - 1);
}

/* Looked at, not taken: the tree stays as it is for the dump that follows. */
static void fx_signals_check(void)
{
	unsigned long long want_blk = fx_bit(SIGUSR1) | fx_bit(fx_sig_rt(2)), v;
	struct sigaction sa;

	v = fx_status_mask("SigBlk");
	CR_CHECK(v == want_blk, "SigBlk %llx, expected %llx", v, want_blk);
	v = fx_status_mask("ShdPnd");
	CR_CHECK(v == fx_bit(SIGUSR1), "ShdPnd %llx, expected %llx", v, fx_bit(SIGUSR1));
	v = fx_status_mask("SigPnd");
	CR_CHECK(v == fx_bit(fx_sig_rt(2)), "SigPnd %llx, expected %llx", v,
		 fx_bit(fx_sig_rt(2)));
	CR_CHECK(!sigaction(SIGUSR1, NULL, &sa) && sa.sa_sigaction == fx_on_sig &&
		 (sa.sa_flags & (SA_SIGINFO | SA_RESTART)) == (SA_SIGINFO | SA_RESTART) &&
		 sigismember(&sa.sa_mask, SIGQUIT) == 1, "SIGUSR1 handler %p flags %#x",
		 (void *)sa.sa_sigaction, sa.sa_flags);
}

/* ---- the root's mapping arena ---- */

enum { MM_HOLE, MM_ZERO, MM_DATA, MM_FILE };

static struct {
	unsigned char *at;
	int fd;
	struct {
		unsigned char kind, prot;
		unsigned val;	/* MM_DATA: its seed */
		int fidx;	/* the file's page under it, or -1 (anonymous) */
	} pg[FX_ARENA];
	char maps[8192];	/* the arena's lines of /proc/self/maps after the last change */
} mm = { .fd = -1 };

static unsigned char *mm_at(unsigned i)
{
	return mm.at + (size_t)i * PG;
}

struct mm_line {
	unsigned long start, end, off, inode;
	char perms[8], dev[16], path[256];
};

static int mm_put_line(char *buf, size_t size, size_t *len, const struct mm_line *l)
{
	int n;

	if (!l->end)
		return 0;
	n = snprintf(buf + *len, size - *len, "+%lu-+%lu %s %lx %s\n",
		     (l->start - (unsigned long)mm.at) / PG, (l->end - (unsigned long)mm.at) / PG,
		     l->perms, l->inode ? l->off : 0, l->inode ? l->path : "anon");
	if (n < 0 || (size_t)n >= size - *len)
		return -E2BIG;
	*len += n;
	return 0;
}

/*
 * The arena's lines of /proc/self/maps, offsets in pages; adjacent lines the kernel did
 * not merge (a restore may map a region in pieces) count as one.
 */
static int mm_read_maps(char *buf, size_t size)
{
	static char maps[65536];
	struct mm_line prev = {}, cur;
	size_t len = 0;

	buf[0] = 0;
	if (cr_read_file("/proc/self/maps", maps, sizeof(maps)) < 0)
		return -EIO;
	for (char *l = strtok(maps, "\n"); l; l = strtok(NULL, "\n")) {
		memset(&cur, 0, sizeof(cur));
		if (sscanf(l, "%lx-%lx %7s %lx %15s %lu %255s", &cur.start, &cur.end, cur.perms,
			   &cur.off, cur.dev, &cur.inode, cur.path) < 6)
			return -EINVAL;
		if (cur.start < (unsigned long)mm.at || cur.start >= (unsigned long)mm_at(FX_ARENA))
			continue;
		if (prev.end == cur.start && !strcmp(prev.perms, cur.perms) &&
		    prev.inode == cur.inode && !strcmp(prev.path, cur.path) &&
		    (!cur.inode || prev.off + (prev.end - prev.start) == cur.off)) {
			prev.end = cur.end;
			continue;
		}
		if (mm_put_line(buf, size, &len, &prev))
			return -E2BIG;
		prev = cur;
	}
	explicit_bzero(maps, sizeof(maps));
	return mm_put_line(buf, size, &len, &prev);
}

static void mm_set(unsigned from, unsigned n, int kind, int prot)
{
	for (unsigned i = from; i < from + n && i < FX_ARENA; i++) {
		mm.pg[i].kind = kind;
		mm.pg[i].prot = prot;
		mm.pg[i].fidx = -1;
	}
}

static unsigned mm_seed(unsigned i, unsigned gen)
{
	return 0x70000 + i * 64 + gen;
}

/*
 * "mA": the arena (PROT_NONE) and DIR/mm.dat; "ma P N": anonymous RW at page P; "mf P N":
 * the file privately (RW) at P; "mw P N G": write gen G; "mu P N": unmap; "mr P N Q M":
 * move [P, P+N) to Q, M pages long; "mg P N M": resize in place to M pages; "mp P N X":
 * protection X (PROT_* bits); "md P N":
 * discard (MADV_DONTNEED); "mk P": the kernel writes two pages at P (read() from a file).
 */
static int mm_cmd(const char *cmd)
{
	unsigned a = 0, b = 0, c = 0, d = 0;
	char op = cmd[1];
	void *p;

	sscanf(cmd + 2, "%u %u %u %u", &a, &b, &c, &d);
	if (op != 'A' && (!mm.at || a + b > FX_ARENA || c + d > FX_ARENA))
		return -EINVAL;
	switch (op) {
	case 'A': {
		char path[PATH_MAX];
		static unsigned char page[PG];

		snprintf(path, sizeof(path), "%s/mm.dat", cr_victim_dir);
		mm.fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (mm.fd < 0)
			return -errno;
		for (unsigned j = 0; j < FX_FILE_PAGES; j++) {
			incr_fill_page(page, 7000 + j);
			if (write(mm.fd, page, PG) != (ssize_t)PG)
				return -EIO;
		}
		mm.at = mmap(NULL, FX_ARENA * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (mm.at == MAP_FAILED)
			return -errno;
		mm_set(0, FX_ARENA, MM_ZERO, PROT_NONE);
		break;
	}
	case 'a':
		p = mmap(mm_at(a), b * PG, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		if (p == MAP_FAILED)
			return -errno;
		mm_set(a, b, MM_ZERO, PROT_READ | PROT_WRITE);
		break;
	case 'f':
		if (b > FX_FILE_PAGES)
			return -EINVAL;
		p = mmap(mm_at(a), b * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, mm.fd,
			 0);
		if (p == MAP_FAILED)
			return -errno;
		mm_set(a, b, MM_FILE, PROT_READ | PROT_WRITE);
		for (unsigned i = 0; i < b; i++)
			mm.pg[a + i].fidx = i;
		break;
	case 'w':
		for (unsigned i = a; i < a + b; i++) {
			if (!(mm.pg[i].prot & PROT_WRITE))
				return -EACCES;
			mm.pg[i].kind = MM_DATA;
			mm.pg[i].val = mm_seed(i, c);
			incr_fill_page(mm_at(i), mm.pg[i].val);
		}
		break;
	case 'u':
		if (munmap(mm_at(a), b * PG))
			return -errno;
		mm_set(a, b, MM_HOLE, PROT_NONE);
		break;
	case 'r': {
		unsigned char kinds[FX_ARENA], prots[FX_ARENA];
		unsigned vals[FX_ARENA];
		int fidx[FX_ARENA];

		p = mremap(mm_at(a), b * PG, d * PG, MREMAP_MAYMOVE | MREMAP_FIXED, mm_at(c));
		if (p == MAP_FAILED)
			return -errno;
		for (unsigned i = 0; i < b; i++) {
			kinds[i] = mm.pg[a + i].kind;
			prots[i] = mm.pg[a + i].prot;
			vals[i] = mm.pg[a + i].val;
			fidx[i] = mm.pg[a + i].fidx;
		}
		mm_set(a, b, MM_HOLE, PROT_NONE);
		for (unsigned i = 0; i < d; i++) {
			mm.pg[c + i].kind = i < b ? kinds[i] : MM_ZERO;
			mm.pg[c + i].prot = prots[i < b ? i : b - 1];
			mm.pg[c + i].val = i < b ? vals[i] : 0;
			mm.pg[c + i].fidx = i < b ? fidx[i] : -1;
		}
		break;
	}
	case 'g':
		/* grown or shrunk in place, to c pages */
		if (mremap(mm_at(a), b * PG, c * PG, 0) == MAP_FAILED)
			return -errno;
		for (unsigned i = b; i < c; i++) {
			mm.pg[a + i] = mm.pg[a + b - 1];
			mm.pg[a + i].kind = MM_ZERO;
			mm.pg[a + i].fidx = -1;
		}
		if (c < b)
			mm_set(a + c, b - c, MM_HOLE, PROT_NONE);
		break;
	case 'p':
		if (mprotect(mm_at(a), b * PG, c))
			return -errno;
		for (unsigned i = a; i < a + b; i++)
			mm.pg[i].prot = c;
		break;
	case 'd':
		if (madvise(mm_at(a), b * PG, MADV_DONTNEED))
			return -errno;
		for (unsigned i = a; i < a + b; i++)
			mm.pg[i].kind = mm.pg[i].fidx >= 0 ? MM_FILE : MM_ZERO;
		break;
	case 'k': {
		static unsigned char buf[2 * PG];
		char path[PATH_MAX];
		int fd;

		for (unsigned i = 0; i < 2; i++)
			incr_fill_page(buf + i * PG, mm_seed(a + i, FX_KGEN));
		snprintf(path, sizeof(path), "%s/kdata-%d", cr_victim_dir, getpid());
		fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0)
			return -errno;
		if (pwrite(fd, buf, sizeof(buf), 0) != (ssize_t)sizeof(buf) ||
		    pread(fd, mm_at(a), sizeof(buf), 0) != (ssize_t)sizeof(buf)) {
			close(fd);
			return -EIO;
		}
		close(fd);
		for (unsigned i = a; i < a + 2; i++) {
			mm.pg[i].kind = MM_DATA;
			mm.pg[i].val = mm_seed(i, FX_KGEN);
		}
		break;
	}
	default:
		return -EINVAL;
	}
	return mm_read_maps(mm.maps, sizeof(mm.maps));
}

/* Pages are read through /proc/self/mem: unreadable ones too, and no mapping changes. */
static void mm_check(void)
{
	static char maps[sizeof(mm.maps)], page[PG], want[PG];
	unsigned char vec;
	int memfd;

	if (!mm.at)
		return;
	CR_CHECK(!mm_read_maps(maps, sizeof(maps)), "read maps");
	if (strcmp(maps, mm.maps)) {
		size_t i = 0;

		while (maps[i] == mm.maps[i])
			i++;
		while (i && maps[i - 1] != '\n')
			i--;
		CR_CHECK(0, "arena maps differ from line '%.80s': '%.80s' at the dump", maps + i,
			 mm.maps + i);
		dprintf(2, "victim %d: arena now:\n%sat the dump:\n%s", getpid(), maps, mm.maps);
	}
	memfd = open("/proc/self/mem", O_RDONLY | O_CLOEXEC);
	CR_CHECK(memfd >= 0, "open /proc/self/mem: %s", strerror(errno));
	for (unsigned i = 0; i < FX_ARENA && memfd >= 0; i++) {
		if (mm.pg[i].kind == MM_HOLE) {
			CR_CHECK(mincore(mm_at(i), PG, &vec) < 0 && errno == ENOMEM,
				 "arena page %u: unmapped at the dump, mapped now", i);
			continue;
		}
		if (pread(memfd, page, PG, (off_t)(unsigned long)mm_at(i)) != (ssize_t)PG) {
			CR_CHECK(0, "arena page %u: read: %s", i, strerror(errno));
			continue;
		}
		switch (mm.pg[i].kind) {
		case MM_ZERO:
			CR_CHECK(cr_all_zero(page, PG), "arena page %u is not zero", i);
			break;
		case MM_DATA:
			CR_CHECK(incr_page_matches(page, mm.pg[i].val), "arena page %u: not data %#x",
				 i, mm.pg[i].val);
			break;
		case MM_FILE:
			incr_fill_page(want, 7000 + mm.pg[i].fidx);
			CR_CHECK(!memcmp(page, want, PG), "arena page %u: not file page %d", i,
				 mm.pg[i].fidx);
			break;
		}
	}
	if (memfd >= 0)
		close(memfd);
}

/* ---- working directory, umask, personality ("C n") ---- */

#define FX_FS_GENS	3	/* the runner makes DIR/wd1 .. DIR/wd3 */

static mode_t fx_fs_umask(int gen)
{
	return gen == 1 ? 027 : gen == 2 ? 077 : 007;
}

static unsigned long fx_fs_persona(int gen)
{
	/* UNAME26 on even gens: the last personality set must win, not any earlier one */
	return PER_LINUX | ADDR_NO_RANDOMIZE | (gen % 2 ? 0 : UNAME26);
}

static void fx_fs_dir(char *buf, size_t size, int gen)
{
	snprintf(buf, size, "%s/wd%d", cr_victim_dir, gen);
}

/* "C n": into DIR/wdn, with umask and personality of gen n. */
static int fx_fs_set(int gen)
{
	char dir[PATH_MAX];

	if (gen < 1 || gen > FX_FS_GENS)
		return -EINVAL;
	fx_fs_dir(dir, sizeof(dir), gen);
	if (chdir(dir))
		return -errno;
	umask(fx_fs_umask(gen));
	if (personality(fx_fs_persona(gen)) < 0)
		return -errno;
	node.fs_gen = gen;
	return 0;
}

/* What "C" set last is still there (umask read from /proc: umask() would change it). */
static void fx_fs_check(void)
{
	char cwd[PATH_MAX] = "", want[PATH_MAX], status[4096], val[32] = "";
	unsigned long pers = personality(0xffffffff);
	unsigned long mask = ~0UL;

	if (!node.fs_gen)
		return;
	fx_fs_dir(want, sizeof(want), node.fs_gen);
	CR_CHECK(getcwd(cwd, sizeof(cwd)) && !strcmp(cwd, want),
		 "working directory '%s', expected '%s'", cwd, want);
	if (cr_read_file("/proc/self/status", status, sizeof(status)) > 0 &&
	    !cr_status_field(status, "Umask", val, sizeof(val)))
		mask = strtoul(val, NULL, 8);
	explicit_bzero(status, sizeof(status));
	CR_CHECK(mask == fx_fs_umask(node.fs_gen), "umask %#lo, expected %#o", mask,
		 fx_fs_umask(node.fs_gen));
	CR_CHECK(pers == fx_fs_persona(node.fs_gen), "personality %#lx, expected %#lx", pers,
		 fx_fs_persona(node.fs_gen));
	explicit_bzero(cwd, sizeof(cwd));
}

/* ---- a node's check: non-destructive (the tree is dumped again afterwards) ---- */

static void fx_do(const char *cmd, char *reply, size_t size);

static void fx_check_pages(void)
{
	for (unsigned i = 0; i < FX_PAGES; i++) {
		if (node.gen[i] == FX_ZERO)
			CR_CHECK(cr_all_zero(node.own + i * PG, PG), "own page %u is not zero", i);
		else
			CR_CHECK(incr_page_matches(node.own + i * PG,
						   fx_seed(getpid(), i, node.gen[i])),
				 "own page %u (gen %u) differs", i, node.gen[i]);
	}
	for (unsigned i = 0; node.inh_pid && i < FX_PAGES; i++) {
		if (node.inh_gen[i] == FX_ZERO)
			CR_CHECK(cr_all_zero(node.inh + i * PG, PG), "inherited page %u is not zero",
				 i);
		else
			CR_CHECK(incr_page_matches(node.inh + i * PG,
						   fx_seed(node.inh_pid, i, node.inh_gen[i])),
				 "page %u inherited from %d (gen %u) differs", i, node.inh_pid,
				 node.inh_gen[i]);
	}
}

static void fx_check_fds(void)
{
	char link[64], target[PATH_MAX], want[PATH_MAX];
	ssize_t n;

	if (node.data_fd < 0)
		return;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", node.data_fd);
	snprintf(want, sizeof(want), "%s/data.dat", cr_victim_dir);
	n = readlink(link, target, sizeof(target) - 1);
	target[n > 0 ? n : 0] = 0;
	CR_CHECK(!strcmp(target, want), "fd %d is '%s', expected '%s'", node.data_fd, target, want);
	CR_CHECK(fcntl(node.data_fd, F_GETFD) == FD_CLOEXEC, "fd %d: close-on-exec lost",
		 node.data_fd);
	if (node.root)
		CR_CHECK(lseek(node.data_fd, 0, SEEK_CUR) == node.data_off,
			 "fd %d at offset %lld, expected %lld", node.data_fd,
			 (long long)lseek(node.data_fd, 0, SEEK_CUR), (long long)node.data_off);
	else
		CR_CHECK(syscall(SYS_kcmp, getpid(), node.parent, KCMP_FILE, node.data_fd,
				 node.data_fd) == 0,
			 "fd %d is not the open file of the parent %d any more", node.data_fd,
			 node.parent);
}

static void fx_check_threads(void)
{
	char path[64];
	int tasks = 0;

	for (int i = 0; i < node.nr_threads; i++) {
		struct fx_thread *t = &node.threads[i];
		struct pollfd p = { .fd = t->rep[0], .events = POLLIN };
		char c = 'n';

		snprintf(path, sizeof(path), "/proc/self/task/%d", t->tid);
		CR_CHECK(!access(path, F_OK), "thread %d is gone", t->tid);
		CR_CHECK(write(t->cmd[1], "c", 1) == 1 && poll(&p, 1, WAIT_MS) == 1 &&
			 read(t->rep[0], &c, 1) == 1 && c == 'y',
			 "thread %d: no good answer ('%c')", t->tid, c);
	}
	{
		char buf[4096], val[32];

		if (cr_read_file("/proc/self/status", buf, sizeof(buf)) > 0 &&
		    !cr_status_field(buf, "Threads", val, sizeof(val)))
			tasks = atoi(val);
		explicit_bzero(buf, sizeof(buf));
	}
	CR_CHECK(tasks == 1 + node.nr_threads + fx_regs.started + fx_busy.started,
		 "%d threads, expected %d", tasks,
		 1 + node.nr_threads + fx_regs.started + fx_busy.started);
}

/* /proc/PID/stat: state, parent; 0 or -errno. */
static int fx_stat(pid_t pid, char *state, pid_t *ppid)
{
	char path[64], buf[1024], *p;
	int ret;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (cr_read_file(path, buf, sizeof(buf)) <= 0)
		return -ENOENT;
	p = strrchr(buf, ')');
	ret = p && sscanf(p + 2, "%c %d", state, ppid) == 2 ? 0 : -EINVAL;
	explicit_bzero(buf, sizeof(buf));
	return ret;
}

static void fx_check_kids(void)
{
	for (int i = 0; i < node.nr_kids; i++) {
		struct fx_kid *k = &node.kids[i];
		siginfo_t si = {};
		char reply[256], state = '?';
		pid_t ppid = 0;
		int ret;

		switch (k->state) {
		case KID_LIVE:
			ret = fx_stat(k->pid, &state, &ppid);
			CR_CHECK(!ret && ppid == getpid() && state != 'Z',
				 "child %d: state %c parent %d", k->pid, state, ppid);
			if (ret)
				break;
			snprintf(reply, sizeof(reply), "%dc", i);
			fx_do(reply, reply, sizeof(reply));
			CR_CHECK(!strncmp(reply, "ok", 2), "child %d: %s", k->pid, reply);
			break;
		case KID_ZOMBIE: {
			char path[64], comm[32] = "";

			snprintf(path, sizeof(path), "/proc/%d/comm", k->pid);
			cr_read_file(path, comm, sizeof(comm));
			CR_CHECK(!strcmp(comm, k->comm), "zombie child %d: comm '%.*s', it was '%.*s'",
				 k->pid, (int)strcspn(comm, "\n"), comm, (int)strcspn(k->comm, "\n"),
				 k->comm);
			ret = waitid(P_PID, k->pid, &si, WEXITED | WNOHANG | WNOWAIT);
			CR_CHECK(!ret && si.si_pid == k->pid && si.si_code == CLD_EXITED &&
				 si.si_status == k->code,
				 "zombie child %d: waitid %d (%s), pid %d code %d status %d, expected "
				 "exit %d", k->pid, ret, ret ? strerror(errno) : "-", si.si_pid,
				 si.si_code, si.si_status, k->code);
			break;
		}
		case KID_REAPED:
			ret = waitid(P_PID, k->pid, &si, WEXITED | WNOHANG | WNOWAIT);
			CR_CHECK(ret < 0 && errno == ECHILD, "reaped child %d is back (%d)", k->pid,
				 ret);
			break;
		}
	}
}

/*
 * Clears the stack below the caller: what the checks left there (the time stamps of
 * bounded waits) is not part of the state the two trees compared must share.
 */
static void __attribute__((noinline)) fx_scrub_stack(void)
{
	char junk[65536];

	explicit_bzero(junk, sizeof(junk));
}

static void fx_check(char *reply, size_t size)
{
	int before = cr_victim_result();

	fx_check_pages();
	fx_check_fds();
	fx_check_threads();
	fx_fs_check();
	if (node.cmd_r >= 0)
		CR_CHECK(getppid() == node.parent, "parent %d, was %d", getppid(), node.parent);
	{
		int sub = -1;

		CR_CHECK(!prctl(PR_GET_CHILD_SUBREAPER, &sub) && sub == node.subreaper,
			 "child subreaper %d, was %d", sub, node.subreaper);
	}
	CR_CHECK(getpgid(0) == node.pgid && getsid(0) == node.sid, "group %d session %d, was %d %d",
		 getpgid(0), getsid(0), node.pgid, node.sid);
	if (node.execed) {
		char comm[32] = "";

		cr_read_file("/proc/self/comm", comm, sizeof(comm));
		CR_CHECK(!strcmp(comm, "fx-execed\n"), "comm '%s' after the exec", comm);
	}
	if (node.root && fx_shm)
		((struct fx_shm_hdr *)fx_shm)->token = FX_TOKEN;
	fx_shm_check(node.root);
	if (node.root) {
		fx_signals_check();
		mm_check();
		fx_busy_check();
		fx_regs_check();
	}
	fx_check_kids();
	if (node.root && fx_shm)
		((struct fx_shm_hdr *)fx_shm)->token = 0;
	fx_scrub_stack();
	if (cr_victim_result() && !before)
		snprintf(reply, size, "err %d: check failed (see victim.out)", getpid());
	else if (cr_victim_result())
		snprintf(reply, size, "err %d: an earlier check failed", getpid());
	else
		snprintf(reply, size, "ok %d checked", getpid());
}

/* ---- commands ---- */

static void __attribute__((noreturn)) fx_node_loop(void);

/* In a new child: only its own pipes to the parent stay open. */
static void fx_forked(int cmd_r, int rep_w, pid_t parent, char how)
{
	for (int i = 0; i < node.nr_kids; i++) {
		struct fx_kid *k = &node.kids[i];

		if (k->state == KID_LIVE) {
			close(k->cmd_w);
			close(k->rep_r);
		}
	}
	for (int i = 0; i < node.nr_threads; i++)
		fx_thread_close(&node.threads[i]);
	if (fx_regs.started) {
		close(fx_regs.block[0]);
		close(fx_regs.block[1]);
	}
	if (node.cmd_r >= 0) {
		close(node.cmd_r);
		close(node.rep_w);
	}
	if (mm.fd >= 0)
		close(mm.fd);
	memset(&fx_regs, 0, sizeof(fx_regs));
	fx_busy.started = false;
	memset(node.kids, 0, sizeof(node.kids));
	node.nr_kids = 0;
	node.nr_threads = 0;
	node.root = false;
	node.subreaper = false;
	node.cmd_r = cmd_r;
	node.rep_w = rep_w;
	node.parent = parent;
	/* the parent's pages as they are now stay (copy-on-write); what it inherited goes */
	if (node.inh)
		munmap(node.inh, FX_PAGES * PG);
	node.inh = node.own;
	node.inh_pid = parent;
	memcpy(node.inh_gen, node.gen, sizeof(node.gen));
	if (how == 'g')
		(void)setpgid(0, 0);
	else if (how == 's')
		(void)setsid();
	node.pgid = getpgid(0);
	node.sid = getsid(0);
	if (fx_fill())
		_exit(2);
	if (mm.at)
		munmap(mm.at, FX_ARENA * PG);
	memset(&mm, 0, sizeof(mm));
	mm.fd = -1;
	fx_node_loop();
}

/* "f", "g" (own group), "s" (own session): a child node; the reply names it. */
static void fx_kid_comm(struct fx_kid *k)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/comm", k->pid);
	if (cr_read_file(path, k->comm, sizeof(k->comm)) <= 0)
		k->comm[0] = 0;
}

static int fx_fork(char how, char *reply, size_t size)
{
	int cmd[2], rep[2];
	struct fx_kid *k;
	pid_t pid, parent = getpid();
	char line[64];

	if (node.nr_kids == FX_KIDS)
		return -ENOSPC;
	if (pipe2(cmd, O_CLOEXEC))
		return -errno;
	if (pipe2(rep, O_CLOEXEC)) {
		close(cmd[0]);
		close(cmd[1]);
		return -errno;
	}
	pid = fork();
	if (pid < 0)
		return -errno;
	if (!pid) {
		close(cmd[1]);
		close(rep[0]);
		fx_forked(cmd[0], rep[1], parent, how);
	}
	close(cmd[0]);
	close(rep[1]);
	k = &node.kids[node.nr_kids++];
	*k = (struct fx_kid){ .pid = pid, .cmd_w = cmd[1], .rep_r = rep[0], .state = KID_LIVE };
	/* it answers once it filled its pages */
	if (incr_read_line(k->rep_r, line, sizeof(line), WAIT_MS) || strncmp(line, "ok", 2))
		return -ETIMEDOUT;
	fx_kid_comm(k);
	snprintf(reply, size, "ok %d", pid);
	return 0;
}

static void fx_kid_close(struct fx_kid *k)
{
	close(k->cmd_w);
	close(k->rep_r);
	k->cmd_w = k->rep_r = -1;
}

/* cmd to child i, its reply into reply; "x" and "z" end it, "e" makes it exec. */
static void fx_forward(int i, const char *cmd, char *reply, size_t size)
{
	struct fx_kid *k = &node.kids[i];
	char line[64];
	int status, err;

	if (i >= node.nr_kids || k->state != KID_LIVE) {
		snprintf(reply, size, "err %d: no child %d to take '%s'", getpid(), i, cmd);
		return;
	}
	snprintf(line, sizeof(line), "%s\n", cmd);
	if (write(k->cmd_w, line, strlen(line)) != (ssize_t)strlen(line)) {
		snprintf(reply, size, "err %d: write to child %d: %s", getpid(), k->pid,
			 strerror(errno));
		return;
	}
	err = incr_read_line(k->rep_r, reply, size, WAIT_MS);
	if (err) {
		snprintf(reply, size, "err %d: no reply from child %d to '%s': %s", getpid(), k->pid,
			 cmd, strerror(-err));
		return;
	}
	if (!strcmp(cmd, "x")) {
		fx_kid_close(k);
		if (!fx_wait_exited(k->pid) || waitpid(k->pid, &status, 0) != k->pid ||
		    !WIFEXITED(status) || WEXITSTATUS(status))
			snprintf(reply, size, "err child %d did not exit 0", k->pid);
		k->state = KID_REAPED;
	} else if (!strcmp(cmd, "z")) {
		fx_kid_close(k);
		k->state = KID_ZOMBIE;
		k->code = fx_zcode(k->pid);
		if (!fx_wait_exited(k->pid))
			snprintf(reply, size, "err child %d did not exit", k->pid);
	} else if (!strcmp(cmd, "e")) {
		k->execed = true;
		fx_kid_comm(k);
	}
}

/* "e" in the child: the test binary again, as a node on the same pipes (no reply here). */
static void fx_exec_self(char *reply, size_t size)
{
	char exe[PATH_MAX], a_cmd[16], a_rep[16], a_parent[16];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (node.nr_kids || node.nr_threads || n <= 0) {
		snprintf(reply, size, "err %d: cannot exec with children or threads", getpid());
		return;
	}
	exe[n] = 0;
	snprintf(a_cmd, sizeof(a_cmd), "%d", node.cmd_r);
	snprintf(a_rep, sizeof(a_rep), "%d", node.rep_w);
	snprintf(a_parent, sizeof(a_parent), "%d", node.parent);
	fcntl(node.cmd_r, F_SETFD, 0);
	fcntl(node.rep_w, F_SETFD, 0);
	execl(exe, "fx-node", FX_NODE_ARG, a_cmd, a_rep, a_parent, cr_victim_dir, (char *)NULL);
	snprintf(reply, size, "err %d: exec '%s': %s", getpid(), exe, strerror(errno));
}

/* "H j" in a node: its child j goes to the root; the reply names the child and its pipe ends. */
static int fx_hand_over(unsigned j, char *reply, size_t size)
{
	struct fx_kid *k = &node.kids[j];

	if (j >= (unsigned)node.nr_kids || k->state != KID_LIVE)
		return -ECHILD;
	snprintf(reply, size, "ok %d %d %d", k->pid, k->cmd_w, k->rep_r);
	k->state = KID_GIVEN;
	return 0;
}

/*
 * "O i j" in the root: child j of its child i becomes the root's next child to command,
 * its pipe ends duplicated out of child i with pidfd_getfd() (the same open files, as if
 * inherited). Once child i ends, the orphan is the root's child indeed (a subreaper, "r");
 * it learns so with "p".
 */
static int fx_adopt(const char *cmd, char *reply, size_t size)
{
	unsigned i, j;
	int cmd_w, rep_r, pidfd, w = -1, r = -1, err = 0;
	char line[64], ans[256];
	struct fx_kid *k;
	pid_t pid;

	if (!node.root || sscanf(cmd + 1, "%u %u", &i, &j) != 2 || i >= (unsigned)node.nr_kids ||
	    node.nr_kids == FX_KIDS)
		return -EINVAL;
	snprintf(line, sizeof(line), "H %u", j);
	fx_forward(i, line, ans, sizeof(ans));
	if (sscanf(ans, "ok %d %d %d", &pid, &cmd_w, &rep_r) != 3)
		return -EPROTO;
	pidfd = syscall(SYS_pidfd_open, node.kids[i].pid, 0);
	if (pidfd < 0)
		return -errno;
	w = syscall(SYS_pidfd_getfd, pidfd, cmd_w, 0);
	if (w >= 0)
		r = syscall(SYS_pidfd_getfd, pidfd, rep_r, 0);
	if (w < 0 || r < 0) {
		err = -errno;
		if (w >= 0)
			close(w);
	}
	close(pidfd);
	if (err)
		return err;
	k = &node.kids[node.nr_kids++];
	*k = (struct fx_kid){ .pid = pid, .cmd_w = w, .rep_r = r, .state = KID_LIVE };
	fx_kid_comm(k);
	snprintf(reply, size, "ok %d", pid);
	return 0;
}

static void fx_do(const char *cmd, char *reply, size_t size)
{
	unsigned a = 0;
	int err = 0;

	if (cmd[0] >= '0' && cmd[0] <= '9') {
		fx_forward(cmd[0] - '0', cmd + 1, reply, size);
		return;
	}
	snprintf(reply, size, "ok");
	switch (cmd[0]) {
	case 'f':
	case 'g':
	case 's':
		err = fx_fork(cmd[0], reply, size);
		break;
	case 'R': {
		struct fx_kid *k = &node.kids[cmd[1] - '0'];
		int status;

		if (cmd[1] < '0' || cmd[1] - '0' >= node.nr_kids || k->state != KID_ZOMBIE) {
			err = -ECHILD;
			break;
		}
		if (waitpid(k->pid, &status, WNOHANG) != k->pid || !WIFEXITED(status) ||
		    WEXITSTATUS(status) != k->code)
			err = -ECHILD;
		k->state = KID_REAPED;
		break;
	}
	case 'w':
		/* gen a: pages a % FX_PAGES and (3a + 1) % FX_PAGES */
		a = strtoul(cmd + 1, NULL, 10);
		if (!a || a >= FX_KGEN)
			err = -EINVAL;
		else {
			fx_write_page(a % FX_PAGES, a);
			fx_write_page((3 * a + 1) % FX_PAGES, a);
		}
		break;
	case 'd':
		/* pages 6 and 7 discarded */
		if (madvise(node.own + 6 * PG, 2 * PG, MADV_DONTNEED))
			err = -errno;
		node.gen[6] = node.gen[7] = FX_ZERO;
		break;
	case 'k': {
		/* pages 4 and 5 written by the kernel */
		static unsigned char buf[2 * PG];
		char path[PATH_MAX];
		int fd;

		incr_fill_page(buf, fx_seed(getpid(), 4, FX_KGEN));
		incr_fill_page(buf + PG, fx_seed(getpid(), 5, FX_KGEN));
		snprintf(path, sizeof(path), "%s/kown-%d", cr_victim_dir, getpid());
		fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0 || pwrite(fd, buf, sizeof(buf), 0) != (ssize_t)sizeof(buf) ||
		    pread(fd, node.own + 4 * PG, sizeof(buf), 0) != (ssize_t)sizeof(buf))
			err = -EIO;
		if (fd >= 0)
			close(fd);
		node.gen[4] = node.gen[5] = FX_KGEN;
		break;
	}
	case 't':
		err = fx_thread_start();
		break;
	case 'T':
		err = fx_thread_stop();
		break;
	case 'h':
		err = node.root && !fx_regs.started ? fx_regs_start() : -EINVAL;
		break;
	case 'o':
		node.data_off = strtol(cmd + 1, NULL, 10);
		if (!node.root || lseek(node.data_fd, node.data_off, SEEK_SET) != node.data_off)
			err = -EINVAL;
		break;
	case 'm':
		err = node.root ? mm_cmd(cmd) : -EINVAL;
		break;
	case 'S':
		err = node.root && !fx_shm ? fx_shm_create() : -EINVAL;
		break;
	case 'b':
	case 'B':
		err = node.root ? fx_busy_cmd(cmd[0] == 'b') : -EINVAL;
		break;
	case 'P':
		/* a group of its own, or a session of its own (not a group leader yet) */
		if (node.root || (cmd[1] == 's' ? setsid() < 0 : setpgid(0, 0) < 0))
			err = node.root ? -EINVAL : -errno;
		node.pgid = getpgid(0);
		node.sid = getsid(0);
		break;
	case 'W':
		err = fx_shm_write(strtoul(cmd + 1, NULL, 10));
		break;
	case 'C':
		err = fx_fs_set(atoi(cmd + 1));
		break;
	case 'r':
		if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0))
			err = -errno;
		else
			node.subreaper = true;
		break;
	case 'H':
		err = fx_hand_over(strtoul(cmd + 1, NULL, 10), reply, size);
		break;
	case 'O':
		err = fx_adopt(cmd, reply, size);
		break;
	case 'p':
		/* its parent ended: the subreaper above took it */
		if (node.root || getppid() == node.parent)
			err = -EINVAL;
		else
			node.parent = getppid();
		break;
	case 'c':
		fx_check(reply, size);
		return;
	case 'e':
		fx_exec_self(reply, size);
		return;
	default:
		snprintf(reply, size, "err %d: unknown command '%s'", getpid(), cmd);
		return;
	}
	if (err)
		snprintf(reply, size, "err %d: '%s': %s", getpid(), cmd, strerror(-err));
}

static void fx_reply(const char *reply)
{
	char line[300];

	snprintf(line, sizeof(line), "%s\n", reply);
	if (write(node.rep_w, line, strlen(line)) != (ssize_t)strlen(line))
		_exit(2);
}

static void __attribute__((noreturn)) fx_node_loop(void)
{
	char cmd[64], reply[256];

	fx_reply("ok");
	for (;;) {
		int err = incr_read_line(node.cmd_r, cmd, sizeof(cmd), -1);

		if (err)
			_exit(err == -EPIPE ? 0 : 2);
		if (!strcmp(cmd, "x") || !strcmp(cmd, "z")) {
			fx_reply("ok");
			_exit(cmd[0] == 'x' ? 0 : fx_zcode(getpid()));
		}
		fx_do(cmd, reply, sizeof(reply));
		fx_reply(reply);
	}
}

/* An exec'd node: argv is FX_NODE_ARG, its pipes, its parent, the test dir. */
static void __attribute__((noreturn)) fx_exec_main(char **argv)
{
	node.cmd_r = atoi(argv[2]);
	node.rep_w = atoi(argv[3]);
	node.parent = atoi(argv[4]);
	node.execed = true;
	node.pgid = getpgid(0);
	node.sid = getsid(0);
	cr_victim_dir = argv[5];
	fcntl(node.cmd_r, F_SETFD, FD_CLOEXEC);
	fcntl(node.rep_w, F_SETFD, FD_CLOEXEC);
	prctl(PR_SET_NAME, "fx-execed");
	if (fx_fill())
		_exit(2);
	fx_node_loop();
}

/* What a case does: commands before ready, then those of each round. */
struct fx_script {
	const char *const *setup;
	const char *const *rounds[FX_MAX_ROUNDS + 1];	/* NULL after the last */
};

enum fx_mode {
	FX_FIXUP,	/* keep-frozen i0, fixups i1 .. iN (iN with --resume) */
	FX_CONTROL,	/* two full restores of iN: the comparison itself is exact */
	FX_TOP_ONLY,	/* keep-frozen iN, then --resume alone */
};

struct fx_case {
	const struct fx_script *script;
	enum fx_mode mode;
	bool resume_apart;	/* the last fixup without --resume, then --resume alone */
	bool fs_dirs;		/* the runner makes the directories "C" changes into */
};

static void fx_serve(void *arg, const char *cmd, char *reply, size_t size)
{
	(void)arg;
	fx_do(cmd, reply, size);
}

/* The root: a node talking to the runner over the FIFOs of incr.h. */
static int fx_victim(void *arg)
{
	const struct fx_case *c = arg;
	const struct fx_script *s;
	char path[PATH_MAX], reply[256];
	static unsigned char blk[FX_DATA_LEN];

	s = c->script;
	node.root = true;
	node.parent = getppid();
	node.pgid = getpgid(0);
	node.sid = getsid(0);
	CR_SETUP(!fx_fill(), "mmap");
	snprintf(path, sizeof(path), "%s/data.dat", cr_victim_dir);
	node.data_fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	CR_SETUP(node.data_fd >= 0, "create '%s'", path);
	cr_fill(blk, sizeof(blk), 0xda);
	CR_SETUP(write(node.data_fd, blk, sizeof(blk)) == (ssize_t)sizeof(blk), "write");
	node.data_off = 1234;
	CR_SETUP(lseek(node.data_fd, node.data_off, SEEK_SET) == node.data_off, "lseek");
	CR_SETUP(!fx_signals_setup(), "signals");
	for (int i = 0; s->setup && s->setup[i]; i++) {
		fx_do(s->setup[i], reply, sizeof(reply));
		CR_SETUP(!strncmp(reply, "ok", 2), "set-up command '%s': %s", s->setup[i], reply);
	}
	cr_victim_ready();
	return incr_victim_serve(fx_serve, NULL) ? 2 : cr_victim_result();
}

/* ------------------------------------------------------------------ runner side */

static char fx_sock[PATH_MAX];	/* DIR/ctl */
static pid_t fx_server;		/* the process holding the frozen tree, once seen */
static pid_t fx_root;		/* the root of the frozen tree */
static struct incr fx_st;

static uint32_t fx_crc32c(const unsigned char *p, size_t n)
{
	uint32_t crc = ~0u;

	while (n--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82f63b78u & -(crc & 1));
	}
	return ~crc;
}

/* Output of ckpt args (which must succeed) into a malloc'ed string; NULL after cr_fail(). */
static char *fx_show(struct cr_run *r, const char *tag, const char *const args[])
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

/* `ckpt show DIR/dir --pages --sums` (malloc'ed) or NULL. */
static char *fx_show_sums(struct cr_run *r, const char *dir)
{
	char path[PATH_MAX], tag[64];
	const char *args[] = { "show", path, "--pages", "--sums", NULL };

	incr_path(r, path, dir);
	snprintf(tag, sizeof(tag), "sums-%s", dir);
	return fx_show(r, tag, args);
}

/* Every entry of DIR/dir/pstree.img; free with cr_free_list(IMG_PSTREE, ...). */
static int fx_pstree(struct cr_run *r, const char *dir, PstreeEntry ***ret, size_t *ret_n)
{
	char saved[PATH_MAX];
	int err;

	memcpy(saved, r->imgdir, sizeof(saved));
	incr_path(r, r->imgdir, dir);
	err = cr_load_list(r, IMG_PSTREE, 0, (void ***)ret, ret_n);
	memcpy(r->imgdir, saved, sizeof(saved));
	return err;
}

static MmEntry *fx_load_mm(struct cr_run *r, const char *dir, pid_t pid)
{
	char path[PATH_MAX];
	void *mm = NULL;
	int fd;

	incr_path(r, path, dir);
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || img_load_one(fd, IMG_MM, pid, &mm)) {
		cr_fail(r, "cannot load %s/mm-%d.img", dir, pid);
		mm = NULL;
	}
	if (fd >= 0)
		close(fd);
	return mm;
}

/* /proc/PID/stat: state, parent, group, session, exit code; 0 or -ENOENT. */
static int fx_proc_stat(pid_t pid, char *state, pid_t *ppid, pid_t *pgid, pid_t *sid, int *code)
{
	char path[64], buf[1024], *p;
	int field = 3;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (cr_read_file(path, buf, sizeof(buf)) <= 0)
		return -ENOENT;
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 2, "%c %d %d %d", state, ppid, pgid, sid) != 4)
		return -EINVAL;
	/* exit_code is field 52, the last one */
	*code = 0;
	for (p += 2; *p; p++)
		if (*p == ' ' && ++field == 52)
			*code = atoi(p + 1);
	return 0;
}

static pid_t fx_tracer(pid_t pid)
{
	char path[64], buf[2048], val[32];

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	if (cr_read_file(path, buf, sizeof(buf)) <= 0 ||
	    cr_status_field(buf, "TracerPid", val, sizeof(val)))
		return -1;
	return atoi(val);
}

static bool fx_is_vdso(const VmaEntry *v)
{
	return v->kind == VMA_KIND_VDSO || v->kind == VMA_KIND_VVAR;
}

/* Whether [s, e) is covered by mappings of mm. */
static bool fx_covered(const MmEntry *mm, uint64_t s, uint64_t e)
{
	for (size_t i = 0; i < mm->n_vmas && s < e; i++) {
		const VmaEntry *v = mm->vmas[i];

		if (v->start <= s && s < v->end)
			s = v->end;
	}
	return s >= e;
}

struct fx_line {
	unsigned long start, end;
	char perms[8], path[256];
};

static int fx_read_maps(pid_t pid, struct fx_line *lines, int max)
{
	static char text[262144];
	char path[64];
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	if (cr_read_file(path, text, sizeof(text)) < 0)
		return -ENOENT;
	for (char *l = strtok(text, "\n"); l && n < max; l = strtok(NULL, "\n")) {
		unsigned long off, ino;
		char dev[16];

		lines[n].path[0] = 0;
		if (sscanf(l, "%lx-%lx %7s %lx %15s %lu %255s", &lines[n].start, &lines[n].end,
			   lines[n].perms, &off, dev, &ino, lines[n].path) >= 6)
			n++;
	}
	return n;
}

/*
 * The frozen pid's mappings against mm-PID.img of dir: every mapping there with its
 * protection (and private or shared), and nothing left of the mappings of prev (the
 * images before, NULL for none) that dir no longer has.
 */
static int fx_check_maps(struct cr_run *r, const char *dir, pid_t pid, const MmEntry *mm,
			 const MmEntry *prev)
{
	static struct fx_line lines[4096];
	int n = fx_read_maps(pid, lines, 4096);

	if (n < 0)
		return cr_fail(r, "%s: no /proc/%d/maps while frozen", dir, pid);
	for (size_t i = 0; i < mm->n_vmas; i++) {
		const VmaEntry *v = mm->vmas[i];
		bool shared = v->kind == VMA_KIND_FILE_SHARED || v->kind == VMA_KIND_SHARED_ANON;
		char want[8];
		uint64_t a = v->start;

		if (fx_is_vdso(v))
			continue;
		snprintf(want, sizeof(want), "%c%c%c%c", v->prot & PROT_READ ? 'r' : '-',
			 v->prot & PROT_WRITE ? 'w' : '-', v->prot & PROT_EXEC ? 'x' : '-',
			 shared ? 's' : 'p');
		while (a < v->end) {
			int k;

			for (k = 0; k < n; k++)
				if (lines[k].start <= a && a < lines[k].end)
					break;
			if (k == n)
				return cr_fail(r, "%s: frozen %d lacks %#llx (mapping %#llx-%#llx %s "
					       "of mm-%d.img)", dir, pid, (unsigned long long)a,
					       (unsigned long long)v->start,
					       (unsigned long long)v->end, want, pid);
			if (strcmp(lines[k].perms, want))
				return cr_fail(r, "%s: frozen %d has %lx-%lx %s, mm-%d.img says "
					       "%#llx-%#llx %s", dir, pid, lines[k].start,
					       lines[k].end, lines[k].perms, pid,
					       (unsigned long long)v->start,
					       (unsigned long long)v->end, want);
			a = lines[k].end;
		}
	}
	for (int k = 0; prev && k < n; k++) {
		for (size_t i = 0; i < prev->n_vmas; i++) {
			const VmaEntry *p = prev->vmas[i];
			uint64_t s = p->start > lines[k].start ? p->start : lines[k].start;
			uint64_t e = p->end < lines[k].end ? p->end : lines[k].end;

			if (fx_is_vdso(p) || s >= e || fx_covered(mm, s, e))
				continue;
			return cr_fail(r, "%s: frozen %d still maps %lx-%lx %s '%s' (the images "
				       "before had %#llx-%#llx there, these have nothing)", dir,
				       pid, lines[k].start, lines[k].end, lines[k].perms,
				       lines[k].path, (unsigned long long)p->start,
				       (unsigned long long)p->end);
		}
	}
	return 0;
}

static bool fx_in_tree(PstreeEntry **tree, size_t n, pid_t pid, bool *zombie)
{
	for (size_t i = 0; i < n; i++)
		if ((pid_t)tree[i]->pid == pid) {
			if (zombie)
				*zombie = tree[i]->has_zombie_status;
			return true;
		}
	return false;
}

/* Whether the inventory of dir says its pages changed while they were copied: 1, 0, -1. */
static int fx_torn(struct cr_run *r, const char *dir)
{
	char path[PATH_MAX];
	InventoryEntry *inv;
	int fd, torn;

	incr_path(r, path, dir);
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || img_load_one(fd, IMG_INVENTORY, 0, (void **)&inv)) {
		if (fd >= 0)
			close(fd);
		return cr_fail(r, "cannot load %s/inventory.img", dir);
	}
	torn = inv->has_pages_after_thaw && inv->pages_after_thaw;
	img_free_kind(IMG_INVENTORY, inv);
	close(fd);
	return torn;
}

/* Every page `ckpt show --pages --sums` lists for dir holds that CRC in the frozen task. */
static int fx_check_sums(struct cr_run *r, const char *dir, PstreeEntry **tree, size_t nr)
{
	static unsigned char page[PG];
	char *text = fx_show_sums(r, dir), *line;
	unsigned long pages = 0, bad = 0;
	char first[160] = "";
	pid_t memfd_pid = 0;
	int memfd = -1;

	if (!text)
		return -1;
	for (line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		char flag[16], sum[16];
		unsigned long addr;
		bool zombie;
		pid_t pid;

		if (sscanf(line, "%d 0x%lx %15s %15s", &pid, &addr, flag, sum) != 4 ||
		    !strcmp(sum, "-") || !fx_in_tree(tree, nr, pid, &zombie) || zombie)
			continue;
		if (pid != memfd_pid) {
			char path[64];

			if (memfd >= 0)
				close(memfd);
			snprintf(path, sizeof(path), "/proc/%d/mem", pid);
			memfd = open(path, O_RDONLY | O_CLOEXEC);
			memfd_pid = pid;
		}
		pages++;
		if (memfd < 0 || pread(memfd, page, PG, (off_t)addr) != (ssize_t)PG) {
			if (!bad++)
				snprintf(first, sizeof(first), "%d %#lx: unreadable (%s)", pid, addr,
					 strerror(errno));
			continue;
		}
		if (fx_crc32c(page, PG) != strtoul(sum, NULL, 16) && !bad++)
			snprintf(first, sizeof(first), "%d %#lx: crc %08x, the images say %s (%s)",
				 pid, addr, fx_crc32c(page, PG), sum, flag);
	}
	if (memfd >= 0)
		close(memfd);
	free(text);
	if (bad)
		return cr_fail(r, "%s: %lu of %lu pages differ in the frozen tree, first %s", dir,
			       bad, pages, first);
	cr_note(r, "%s: the %lu pages listed are in place", dir, pages);
	return 0;
}

/*
 * The frozen tree of root against the images of dir (prev: the images before, or NULL):
 * its processes are exactly those of pstree.img, stopped (zombies zombies with their exit
 * status), with their parents, groups and sessions, mappings and pages.
 */
static int fx_check_frozen(struct cr_run *r, const char *dir, const char *prev, pid_t root)
{
	PstreeEntry **tree = NULL;
	size_t nr = 0;
	pid_t pids[CR_MAX_TASKS];
	int n, ret = -1;

	if (fx_pstree(r, dir, &tree, &nr))
		return -1;
	for (size_t i = 0; i < nr; i++) {
		PstreeEntry *e = tree[i];
		pid_t ppid, pgid, sid;
		char state;
		int code;

		if (fx_proc_stat(e->pid, &state, &ppid, &pgid, &sid, &code)) {
			cr_fail(r, "%s: process %u of pstree.img does not exist in the frozen tree",
				dir, e->pid);
			goto out;
		}
		if (e->has_zombie_status ? state != 'Z' || (unsigned)code != e->zombie_status :
		    state != 't' && state != 'T') {
			cr_fail(r, "%s: process %u is in state %c (exit code %#x) in the frozen tree, "
				"expected %s (%#x)", dir, e->pid, state, code,
				e->has_zombie_status ? "a zombie" : "stopped",
				e->has_zombie_status ? e->zombie_status : 0);
			goto out;
		}
		if (e->has_zombie_status && e->comm) {
			char path[64], comm[32] = "";

			snprintf(path, sizeof(path), "/proc/%u/comm", e->pid);
			cr_read_file(path, comm, sizeof(comm));
			comm[strcspn(comm, "\n")] = 0;
			if (strcmp(comm, e->comm)) {
				cr_fail(r, "%s: zombie %u is called '%s' in the frozen tree, '%s' in "
					"pstree.img", dir, e->pid, comm, e->comm);
				goto out;
			}
		}
		if ((e->ppid && (pid_t)e->ppid != ppid) || (pid_t)e->pgid != pgid ||
		    (pid_t)e->sid != sid) {
			cr_fail(r, "%s: process %u: parent %d group %d session %d, pstree.img says "
				"%u %u %u", dir, e->pid, ppid, pgid, sid, e->ppid, e->pgid, e->sid);
			goto out;
		}
		if (!e->has_zombie_status) {
			MmEntry *mm = fx_load_mm(r, dir, e->pid), *pm = NULL;
			bool was_zombie;

			if (!mm)
				goto out;
			if (prev) {
				PstreeEntry **pt;
				size_t pn;

				if (fx_pstree(r, prev, &pt, &pn)) {
					img_free_kind(IMG_MM, mm);
					goto out;
				}
				if (fx_in_tree(pt, pn, e->pid, &was_zombie) && !was_zombie)
					pm = fx_load_mm(r, prev, e->pid);
				cr_free_list(IMG_PSTREE, (void **)pt, pn);
			}
			n = fx_check_maps(r, dir, e->pid, mm, pm);
			img_free_kind(IMG_MM, mm);
			if (pm)
				img_free_kind(IMG_MM, pm);
			if (n)
				goto out;
		}
	}
	n = cr_tree(root, pids, CR_MAX_TASKS);
	for (int i = 0; i < n; i++)
		if (!fx_in_tree(tree, nr, pids[i], NULL)) {
			cr_fail(r, "%s: process %d is in the frozen tree but not in pstree.img", dir,
				pids[i]);
			goto out;
		}
	if (n != (int)nr) {
		cr_fail(r, "%s: %d processes in the frozen tree of %d, pstree.img has %zu", dir, n,
			root, nr);
		goto out;
	}
	n = fx_torn(r, dir);
	if (n < 0)
		goto out;
	/*
	 * A round whose pages changed while they were copied is no exact picture of
	 * memory (the next delta carries what changed): only its layout is checked.
	 */
	ret = n ? 0 : fx_check_sums(r, dir, tree, nr);
	if (!ret && n)
		cr_note(r, "%s: pages copied while the tree ran, not compared", dir);
	if (!ret)
		cr_note(r, "%s: the frozen tree (%zu processes) is the images'", dir, nr);
out:
	cr_free_list(IMG_PSTREE, (void **)tree, nr);
	return ret;
}

/* What the frozen tree of root looks like from outside: to see that a refusal left it. */
static int fx_snapshot(struct cr_run *r, pid_t root, char *buf, size_t size)
{
	pid_t pids[CR_MAX_TASKS];
	int n = cr_tree(root, pids, CR_MAX_TASKS);
	size_t len = 0;
	static char maps[65536];

	if (n <= 0)
		return cr_fail(r, "no frozen tree at %d", root);
	for (int i = 0; i < n; i++) {
		pid_t ppid, pgid, sid;
		char state = '?', path[64];
		int code = 0;

		fx_proc_stat(pids[i], &state, &ppid, &pgid, &sid, &code);
		snprintf(path, sizeof(path), "/proc/%d/maps", pids[i]);
		if (cr_read_file(path, maps, sizeof(maps)) < 0)
			maps[0] = 0;
		len += snprintf(buf + len, size - len, "%d %c %d %d %d %d tracer %d\n%s", pids[i],
				state, ppid, pgid, sid, code, fx_tracer(pids[i]), maps);
		if (len >= size)
			return cr_fail(r, "snapshot of the tree of %d too large", root);
	}
	return 0;
}

static int fx_expect_same(struct cr_run *r, const char *before, const char *after,
			  const char *why)
{
	const char *a = before, *b = after;

	if (!strcmp(a, b))
		return 0;
	while (*a && *a == *b)
		a++, b++;
	while (a > before && a[-1] != '\n')
		a--, b--;
	return cr_fail(r, "%s changed the frozen tree: '%.*s' became '%.*s'", why,
		       (int)strcspn(a, "\n"), a, (int)strcspn(b, "\n"), b);
}

/* ---- the commands of an incremental restore ---- */

static int fx_ckpt(struct cr_run *r, const char *tag, const char *const args[], bool ok)
{
	int status;

	if (cr_ckpt(r, tag, NULL, args, &status))
		return -1;
	return ok ? cr_expect_ok(r, tag, status) : 0;
}

/*
 * restore -D dir --keep-frozen --control SOCK --pidfile DIR/frozen.pid (written once the
 * tree runs, see fx_check_released()); the server is the root's tracer.
 */
static int fx_keep_frozen(struct cr_run *r, const char *dir, pid_t root)
{
	char tag[64], pidfile[PATH_MAX];
	struct stat st = {};
	const char *args[] = { "restore", "-D", dir, "--keep-frozen", "--control", fx_sock,
			       "--pidfile", pidfile, NULL };

	snprintf(tag, sizeof(tag), "frozen-%s", dir);
	incr_path(r, pidfile, "frozen.pid");
	unlink(pidfile);
	if (fx_ckpt(r, tag, args, true))
		return -1;
	if (stat(fx_sock, &st) || !S_ISSOCK(st.st_mode) || (st.st_mode & 0777) != 0600)
		return cr_fail(r, "control socket '%s': %s, mode %o (a socket of mode 0600 "
			       "expected)", fx_sock, strerror(errno), st.st_mode);
	fx_root = root;
	fx_server = fx_tracer(root);
	if (fx_server <= 0)
		return cr_fail(r, "after --keep-frozen, root %d has no tracer (TracerPid %d)", root,
			       fx_server);
	cr_note(r, "frozen tree of %d held by %d", root, fx_server);
	return 0;
}

/* restore --fixup dir [--resume] --control SOCK, which must succeed. */
static int fx_fixup(struct cr_run *r, const char *dir, bool resume)
{
	const char *args[] = { "restore", "--fixup", dir, "--control", fx_sock,
			       resume ? "--resume" : NULL, NULL };
	const char *base = strrchr(dir, '/') ? strrchr(dir, '/') + 1 : dir;
	char tag[64];

	snprintf(tag, sizeof(tag), "fixup-%.16s%s", base, resume ? "-resume" : "");
	return fx_ckpt(r, tag, args, true);
}

static int fx_resume(struct cr_run *r)
{
	const char *args[] = { "restore", "--resume", "--control", fx_sock, NULL };

	return fx_ckpt(r, "resume", args, true);
}

/* restore --fixup dir --control SOCK, which must fail saying needle (if not NULL). */
static int fx_fixup_refused(struct cr_run *r, const char *tag, const char *dir, const char *needle)
{
	const char *args[] = { "restore", "--fixup", dir, "--control", fx_sock, NULL };
	int status;

	if (cr_ckpt(r, tag, NULL, args, &status) || cr_expect_failed(r, tag, status, needle))
		return -1;
	if (WEXITSTATUS(status) != 1)
		return cr_fail(r, "ckpt %s exited %d, expected 1", tag, WEXITSTATUS(status));
	return 0;
}

/* Reaps the server if it is gone (it is the runner's child once the command returned). */
static bool fx_server_gone(void)
{
	if (!fx_server)
		return true;
	(void)waitpid(fx_server, NULL, WNOHANG);
	if (kill(fx_server, 0) && errno == ESRCH) {
		fx_server = 0;
		return true;
	}
	return false;
}

/*
 * On any failure: the server goes, and with it the tree it holds (PTRACE_O_EXITKILL),
 * which is waited for (bounded) so that the runner does not find it dying.
 */
static void fx_kill_server(struct cr_run *r)
{
	pid_t pids[CR_MAX_TASKS];
	int n = fx_root > 0 ? cr_tree(fx_root, pids, CR_MAX_TASKS) : 0;
	long deadline = incr_now_ms() + WAIT_MS;

	if (!fx_server || fx_server_gone())
		return;
	cr_note(r, "killing the server %d", fx_server);
	kill(fx_server, SIGKILL);
	(void)waitpid(fx_server, NULL, 0);
	fx_server = 0;
	for (int i = 0; i < n; i++)
		while ((!kill(pids[i], 0) || errno != ESRCH) && incr_now_ms() < deadline) {
			while (waitpid(-1, NULL, WNOHANG | __WALL) > 0)
				;
			(void)poll(NULL, 0, 1);
		}
}

/*
 * After the resume: the server is gone and the roots are the runner's children, not
 * traced (as after `restore -d`), and the pidfile of --keep-frozen names the root.
 * Nothing signals it: watch /proc, bounded.
 */
static int fx_check_released(struct cr_run *r, pid_t root)
{
	long deadline = incr_now_ms() + WAIT_MS;
	pid_t ppid = 0, pgid, sid, tracer = -1;
	char state = '?', pidfile[PATH_MAX], buf[32] = "";
	int code;

	incr_path(r, pidfile, "frozen.pid");
	if (cr_read_file(pidfile, buf, sizeof(buf)) <= 0 || atoi(buf) != root)
		return cr_fail(r, "after the resume, the --pidfile of --keep-frozen says '%.*s', "
			       "expected %d", (int)strcspn(buf, "\n"), buf, root);
	while (incr_now_ms() < deadline) {
		tracer = fx_tracer(root);
		if (!fx_proc_stat(root, &state, &ppid, &pgid, &sid, &code) && ppid == getpid() &&
		    !tracer && fx_server_gone() && state != 't' && state != 'T')
			return 0;
		(void)poll(NULL, 0, 2);
	}
	return cr_fail(r, "after the resume, root %d: state %c parent %d (runner %d), tracer %d, "
		       "server %d %s", root, state, ppid, getpid(), tracer, fx_server,
		       fx_server_gone() ? "gone" : "still there");
}

/* Waits (bounded) until none of pids exists; reaps what comes to the runner. */
static int fx_expect_gone(struct cr_run *r, const pid_t *pids, int n, const char *why)
{
	long deadline = incr_now_ms() + WAIT_MS;

	for (;;) {
		int left = 0, which = 0;

		while (waitpid(-1, NULL, WNOHANG | __WALL) > 0)
			;
		for (int i = 0; i < n; i++)
			if (!kill(pids[i], 0) || errno != ESRCH) {
				left++;
				which = pids[i];
			}
		if (!left)
			return 0;
		if (incr_now_ms() > deadline) {
			char state = '?';
			pid_t ppid = 0, pgid, sid;
			int code;

			fx_proc_stat(which, &state, &ppid, &pgid, &sid, &code);
			return cr_fail(r, "%s, but %d task(s) are left, e.g. %d (state %c, parent %d)",
				       why, left, which, state, ppid);
		}
		(void)poll(NULL, 0, 2);
	}
}

/* Kills the tree of root (a child of the runner) and reaps it. */
static int fx_end_tree(struct cr_run *r, pid_t root)
{
	pid_t pids[CR_MAX_TASKS];
	int n = cr_tree(root, pids, CR_MAX_TASKS);

	for (int i = 0; i < n; i++)
		kill(pids[i], SIGKILL);
	if (r->victim == root)
		r->victim = 0;
	return n > 0 ? fx_expect_gone(r, pids, n, "the tree was killed") : 0;
}

/* ---- the chain ---- */

static int fx_nr_rounds(const struct fx_script *s)
{
	int n = 0;

	while (n < FX_MAX_ROUNDS && s->rounds[n])
		n++;
	return n;
}

static void fx_dir(char *buf, size_t size, int k)
{
	snprintf(buf, size, "i%d", k);
}

/* trackd, i0, then each round's commands and its delta (the last one final); trackd stops. */
static int fx_chain(struct cr_run *r, pid_t v, const struct fx_script *s)
{
	int n = fx_nr_rounds(s);
	char dir[16], prev[16], tag[16];

	if (incr_trackd_start(r, &fx_st, &v, 1, "log") ||
	    incr_dump(r, &fx_st, "d0", v, "i0", NULL, true, NULL))
		return -1;
	for (int k = 1; k <= n; k++) {
		for (int j = 0; s->rounds[k - 1][j]; j++)
			if (incr_cmd(r, &fx_st, v, s->rounds[k - 1][j]))
				return -1;
		fx_dir(dir, sizeof(dir), k);
		snprintf(prev, sizeof(prev), "../i%d", k - 1);
		snprintf(tag, sizeof(tag), "d%d", k);
		if (incr_dump(r, &fx_st, tag, v, dir, prev, k < n, NULL))
			return -1;
	}
	return incr_trackd_stop(r, &fx_st);
}

/*
 * Every task the restores create runs on the runner's CPU: rseq areas (which the kernel
 * writes) then say the same in both trees that are compared.
 */
static int fx_pin(struct cr_run *r)
{
	int cpu = sched_getcpu();
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu < 0 ? 0 : cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		return cr_fail(r, "sched_setaffinity: %s", strerror(errno));
	return 0;
}

/* keep-frozen i0, each delta applied (checked frozen after each), resumed at iN. */
static int fx_frozen_path(struct cr_run *r, pid_t v, const struct fx_case *c, int n)
{
	char dir[PATH_MAX], prev[16];

	if (c->mode == FX_TOP_ONLY) {
		fx_dir(dir, sizeof(dir), n);
		if (fx_keep_frozen(r, dir, v) || fx_check_frozen(r, dir, NULL, v) || fx_resume(r))
			return -1;
		return fx_check_released(r, v);
	}
	if (fx_keep_frozen(r, "i0", v) || fx_check_frozen(r, "i0", NULL, v))
		return -1;
	for (int k = 1; k <= n; k++) {
		bool resume = k == n && !c->resume_apart;

		/* relative to the working directory (DIR) and absolute, in turn */
		if (k % 2)
			fx_dir(dir, sizeof(dir), k);
		else
			snprintf(dir, sizeof(dir), "%s/i%d", r->env->dir, k);
		fx_dir(prev, sizeof(prev), k - 1);
		if (fx_fixup(r, dir, resume))
			return -1;
		if (!resume) {
			char top[16];

			fx_dir(top, sizeof(top), k);
			if (fx_check_frozen(r, top, prev, v))
				return -1;
		}
	}
	if (c->resume_apart && fx_resume(r))
		return -1;
	return fx_check_released(r, v);
}

/* The victim checks itself (it answers "ok" or what is wrong). */
static int fx_victim_check(struct cr_run *r, pid_t v)
{
	return incr_cmd(r, &fx_st, v, "c");
}

/*
 * Waits (bounded) until every thread of the tree of root is blocked where it stays: in
 * read() (nodes, threads) or in open() of the command FIFO (the root's main thread).
 * The answer to "c" comes before the victim gets there.
 */
static int fx_wait_quiet(struct cr_run *r, pid_t root)
{
	long deadline = incr_now_ms() + WAIT_MS;
	pid_t pids[CR_MAX_TASKS];
	int n = cr_tree(root, pids, CR_MAX_TASKS);

	for (int i = 0; i < n; i++) {
		char path[300], buf[256] = "";
		struct dirent *de;
		DIR *d;

		snprintf(path, sizeof(path), "/proc/%d/task", pids[i]);
		d = opendir(path);
		while (d && (de = readdir(d))) {
			long nr = -1;

			if (de->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "/proc/%d/task/%.16s/syscall", pids[i],
				 de->d_name);
			/* nothing signals it: poll /proc, bounded */
			while (incr_now_ms() < deadline) {
				pid_t ppid, pgid, sid;
				char state = '?';
				int code;

				if (fx_proc_stat(pids[i], &state, &ppid, &pgid, &sid, &code) ||
				    state == 'Z' || cr_read_file(path, buf, sizeof(buf)) <= 0)
					break;
				nr = strtol(buf, NULL, 10);
				if ((buf[0] >= '0' && buf[0] <= '9') &&
				    (nr == SYS_read || nr == SYS_openat))
					break;
				(void)poll(NULL, 0, 1);
			}
			if (incr_now_ms() >= deadline) {
				closedir(d);
				return cr_fail(r, "task %s of %d not blocked in read or open: '%.*s'",
					       de->d_name, pids[i], (int)strcspn(buf, "\n"), buf);
			}
		}
		if (d)
			closedir(d);
	}
	return 0;
}

/* ckpt dump -t v -D DIR/dir (the tree is killed and reaped). */
static int fx_dump_final(struct cr_run *r, pid_t v, const char *dir, const char *tag)
{
	int status;

	if (fx_wait_quiet(r, v))
		return -1;
	incr_path(r, r->imgdir, dir);
	if (cr_dump(r, tag, v, false, NULL, &status) || cr_expect_ok(r, tag, status))
		return -1;
	return cr_reap_dumped(r, v);
}

/*
 * Pipe IDs are inode numbers, new for every pipe a restore makes: each becomes its rank
 * of first appearance ("pipe_id: #N").
 */
static void fx_renumber_pipes(char *text)
{
	static unsigned long ids[1024];
	char *p = text, num[32];
	int nr = 0;

	while ((p = strstr(p, "pipe_id: "))) {
		char *v = p + 9, *end;
		unsigned long id = strtoul(v, &end, 10);
		int k;

		for (k = 0; k < nr && ids[k] != id; k++)
			;
		if (k == nr && nr < 1024)
			ids[nr++] = id;
		snprintf(num, sizeof(num), "#%d", k);
		if (strlen(num) > (size_t)(end - v))
			break;	/* never: an inode number has more digits than its rank */
		memcpy(v, num, strlen(num));
		memmove(v + strlen(num), end, strlen(end) + 1);
		p = v;
	}
}


/*
 * "PID ADDR data|parent CRC" lines become "PID ADDR CRC". A documented limit of the
 * incremental restore (README, "Not supported yet"): some pages a process shares
 * copy-on-write with its parent come back as its own copies (memory, not contents,
 * differs).
 */
static void fx_drop_flags(char *text)
{
	char *w = text;

	for (char *p = text; *p;) {
		size_t len = strcspn(p, "\n");
		char *sp1 = memchr(p, ' ', len), *sp2 = NULL, *sp3 = NULL;

		if (sp1)
			sp2 = memchr(sp1 + 1, ' ', len - (sp1 + 1 - p));
		if (sp2)
			sp3 = memchr(sp2 + 1, ' ', len - (sp2 + 1 - p));
		if (sp3) {
			memmove(w, p, sp2 - p);
			w += sp2 - p;
			memmove(w, sp3, p + len - sp3);
			w += p + len - sp3;
		} else {
			memmove(w, p, len);
			w += len;
		}
		*w++ = '\n';
		p += len + (p[len] == '\n');
	}
	*w = 0;
}

/* Drops the "    vmas[N]:" blocks: fx_compare_vmas() compares the mappings. */
static void fx_drop_vmas(char *text)
{
	bool in = false;
	char *w = text;

	for (char *p = text; *p;) {
		size_t len = strcspn(p, "\n");

		if (!strncmp(p, "    vmas[", 9))
			in = true;
		else if (strncmp(p, "      ", 6))
			in = false;
		if (!in) {
			memmove(w, p, len);
			w += len;
			*w++ = '\n';
		}
		p += len + (p[len] == '\n');
	}
	*w = 0;
}

/* Whether b continues a like a second mmap() of the same kind of anonymous memory would. */
static bool fx_vma_joins(const VmaEntry *a, const VmaEntry *b)
{
	return a->end == b->start && a->kind == VMA_KIND_ANON && b->kind == VMA_KIND_ANON &&
	       a->prot == b->prot && a->flags == b->flags && a->madv == b->madv &&
	       !a->name && !b->name;
}

/*
 * Shared memory IDs are inode numbers, new for every restore: one ID of a must always go
 * with the same one of b (the same objects shared by the same mappings).
 */
static struct {
	uint64_t a, b;
} fx_shm_ids[256];
static int fx_nr_shm_ids;

static bool fx_shm_same(uint64_t a, uint64_t b)
{
	for (int i = 0; i < fx_nr_shm_ids; i++)
		if (fx_shm_ids[i].a == a || fx_shm_ids[i].b == b)
			return fx_shm_ids[i].a == a && fx_shm_ids[i].b == b;
	if (fx_nr_shm_ids < 256) {
		fx_shm_ids[fx_nr_shm_ids].a = a;
		fx_shm_ids[fx_nr_shm_ids++].b = b;
	}
	return true;
}

static int fx_vma_cmp(const VmaEntry *a, const VmaEntry *b, uint64_t a_end, uint64_t b_end)
{
	return a->start != b->start || a_end != b_end || a->pgoff != b->pgoff ||
	       a->prot != b->prot || a->flags != b->flags || a->kind != b->kind ||
	       a->has_file_id != b->has_file_id || a->file_id != b->file_id ||
	       a->madv != b->madv || a->has_shmid != b->has_shmid ||
	       (a->has_shmid && !fx_shm_same(a->shmid, b->shmid)) ||
	       ((a->name || b->name) && (!a->name || !b->name || strcmp(a->name, b->name)));
}

/* Where the mapping at i ends, with the ones joining it when merge is set. */
static uint64_t fx_run_end(const MmEntry *mm, size_t i, bool merge)
{
	while (merge && i + 1 < mm->n_vmas && fx_vma_joins(mm->vmas[i], mm->vmas[i + 1]))
		i++;
	return mm->vmas[i]->end;
}

static const char *fx_prot(uint32_t prot)
{
	static const char *const names[] = { "---", "r--", "-w-", "rw-", "--x", "r-x", "-wx",
					     "rwx" };

	return names[prot & 7];
}

/* The mappings of pid in the fixup path (a) and the full restore (b); 0 or cr_fail(). */
static int fx_compare_mm(struct cr_run *r, pid_t pid, const MmEntry *a, const MmEntry *b,
			 bool merge)
{
	size_t i = 0, j = 0;

	if (!merge && a->n_vmas != b->n_vmas) {
		while (i < a->n_vmas && i < b->n_vmas &&
		       !fx_vma_cmp(a->vmas[i], b->vmas[i], a->vmas[i]->end, b->vmas[i]->end))
			i++;
		return cr_fail(r, "mm-%d.img: %zu mappings in the fixup path, %zu in the full "
			       "restore; first difference at %#llx (adjacent anonymous mappings "
			       "the images keep apart came back as one?)", pid, a->n_vmas,
			       b->n_vmas, i < a->n_vmas ? (unsigned long long)a->vmas[i]->start : 0);
	}
	while (i < a->n_vmas || j < b->n_vmas) {
		const VmaEntry *va, *vb;
		uint64_t ae, be;

		if (i == a->n_vmas || j == b->n_vmas)
			return cr_fail(r, "mm-%d.img: a mapping at %#llx only in the %s", pid,
				       (unsigned long long)(i < a->n_vmas ? a->vmas[i]->start :
							    b->vmas[j]->start),
				       i < a->n_vmas ? "fixup path" : "full restore");
		va = a->vmas[i];
		vb = b->vmas[j];
		ae = fx_run_end(a, i, merge);
		be = fx_run_end(b, j, merge);
		if (fx_vma_cmp(va, vb, ae, be))
			return cr_fail(r, "mm-%d.img: mapping %#llx-%#llx %s kind %u in the fixup "
				       "path, %#llx-%#llx %s kind %u in the full restore", pid,
				       (unsigned long long)va->start, (unsigned long long)ae,
				       fx_prot(va->prot), va->kind, (unsigned long long)vb->start,
				       (unsigned long long)be, fx_prot(vb->prot), vb->kind);
		while (i < a->n_vmas && a->vmas[i]->start < ae)
			i++;
		while (j < b->n_vmas && b->vmas[j]->start < be)
			j++;
	}
	return 0;
}

/*
 * The mappings of every live process of d1 and d2. With merge, adjacent anonymous
 * mappings alike count as one (the kernel merges or keeps them apart depending on their
 * history, which a program does not see); without, the lists must be the same entry for
 * entry, as /proc/PID/maps shows them.
 */
static int fx_compare_vmas(struct cr_run *r, const char *d1, const char *d2, bool merge)
{
	PstreeEntry **tree = NULL;
	size_t nr = 0;
	int ret = 0;

	if (fx_pstree(r, d1, &tree, &nr))
		return -1;
	fx_nr_shm_ids = 0;
	for (size_t t = 0; t < nr && !ret; t++) {
		MmEntry *a, *b;

		if (tree[t]->has_zombie_status)
			continue;
		a = fx_load_mm(r, d1, tree[t]->pid);
		b = a ? fx_load_mm(r, d2, tree[t]->pid) : NULL;
		ret = a && b ? fx_compare_mm(r, tree[t]->pid, a, b, merge) : -1;
		if (a)
			img_free_kind(IMG_MM, a);
		if (b)
			img_free_kind(IMG_MM, b);
	}
	cr_free_list(IMG_PSTREE, (void **)tree, nr);
	return ret;
}

/* Text of `ckpt show DIR/dir`, without the inventory (dump IDs and times) and pages. */
static char *fx_show_all(struct cr_run *r, const char *dir)
{
	char path[PATH_MAX], tag[64];
	const char *args[] = { "show", path, NULL };
	char *text, *w, *p;
	bool skip = false;

	incr_path(r, path, dir);
	snprintf(tag, sizeof(tag), "show-%s", dir);
	text = fx_show(r, tag, args);
	if (!text)
		return NULL;
	for (p = w = text; *p;) {
		size_t len = strcspn(p, "\n");

		/*
		 * A section starts at column 0: "<file>: ...". The pages are compared by
		 * their sums: how they are laid out in pagemaps and pages files depends on
		 * copy-on-write sharing (see fx_drop_flags()).
		 */
		if (len && *p != ' ')
			skip = !strncmp(p, "inventory.img", 13) || !strncmp(p, "pagemap-", 8) ||
			       !strncmp(p, "pages-", 6);
		if (!skip) {
			memmove(w, p, len);
			w += len;
			*w++ = '\n';
		}
		p += len + (p[len] == '\n');
	}
	*w = 0;
	fx_renumber_pipes(text);
	fx_drop_vmas(text);
	return text;
}

/* The first line where a and b differ, with the section it is in, into cr_fail(). */
static int fx_diff(struct cr_run *r, const char *what, const char *a, const char *b)
{
	const char *sec = a, *pa = a, *pb = b;
	int line = 1;

	while (*pa && *pb) {
		size_t la = strcspn(pa, "\n"), lb = strcspn(pb, "\n");

		if (la != lb || memcmp(pa, pb, la))
			break;
		if (la && *pa != ' ')
			sec = pa;
		pa += la + (pa[la] == '\n');
		pb += lb + (pb[lb] == '\n');
		line++;
	}
	if (!*pa && !*pb)
		return 0;
	return cr_fail(r, "%s differ at line %d (in '%.*s'): fixup path '%.*s', full restore '%.*s'",
		       what, line, (int)strcspn(sec, "\n"), sec, (int)strcspn(pa, "\n"), pa,
		       (int)strcspn(pb, "\n"), pb);
}

/* R1 and R2: every image but the inventory, and every page's sum. */
static int fx_compare(struct cr_run *r, const char *d1, const char *d2)
{
	char *a = fx_show_all(r, d1), *b = a ? fx_show_all(r, d2) : NULL;
	int ret = -1;

	if (!a || !b || fx_diff(r, "the images", a, b) || fx_compare_vmas(r, d1, d2, true))
		goto out;
	free(a);
	free(b);
	a = fx_show_sums(r, d1);
	b = a ? fx_show_sums(r, d2) : NULL;
	if (!a || !b)
		goto out;
	fx_drop_flags(a);
	fx_drop_flags(b);
	/*
	 * Adjacent anonymous mappings alike may come back merged where a full
	 * restore keeps them apart (README: the kernel merges mappings a fixup
	 * maps next to each other); a program cannot tell.
	 */
	if (fx_diff(r, "the page sums", a, b))
		goto out;
	cr_note(r, "%s and %s are identical", d1, d2);
	ret = 0;
out:
	free(a);
	free(b);
	return ret;
}

/* The flow of every success case. */
static int fx_flow_ok(struct cr_run *r)
{
	const struct fx_case *c = r->c->arg;
	int n = fx_nr_rounds(c->script), ret = -1;
	char top[16];
	pid_t v;

	incr_path(r, fx_sock, "ctl");
	for (int k = 1; c->fs_dirs && k <= FX_FS_GENS; k++) {
		char dir[PATH_MAX + 16];

		snprintf(dir, sizeof(dir), "%s/wd%d", r->env->dir, k);
		if (mkdir(dir, 0700))
			return cr_fail(r, "mkdir '%s': %s", dir, strerror(errno));
	}
	if (cr_victim_start(r))
		return -1;
	v = r->victim;
	fx_dir(top, sizeof(top), n);
	if (fx_chain(r, v, c->script) || fx_pin(r))
		goto out;
	if (c->mode == FX_CONTROL ? incr_restore(r, v, top, "restore-1") :
	    fx_frozen_path(r, v, c, n))
		goto out;
	if (fx_victim_check(r, v) || fx_dump_final(r, v, "r1", "dr1"))
		goto out;
	if (incr_restore(r, v, top, "restore-full") || fx_victim_check(r, v) ||
	    fx_dump_final(r, v, "r2", "dr2"))
		goto out;
	ret = fx_compare(r, "r1", "r2");
out:
	if (incr_trackd_stop(r, &fx_st))
		ret = -1;
	fx_kill_server(r);
	return ret;
}

#define FX_CASE(name, ...)								\
	static const struct fx_case fx_case_##name = { __VA_ARGS__ };			\
	CR_CASE(fixup, name, .victim = fx_victim, .arg = (void *)&fx_case_##name,	\
		.flow = fx_flow_ok, .changing = true)

#define FX_CMDS(...) ((const char *const[]){ __VA_ARGS__, NULL })

/* 1. tasks die: a child (reaped), a grandchild (reaped by its parent); --resume apart */
static const struct fx_script s_died = {
	.setup = FX_CMDS("f", "f", "0f", "0f", "h"),
	.rounds = { FX_CMDS("1x"), FX_CMDS("00x", "w 2"), FX_CMDS("0w 3") },
};
FX_CASE(task_died, .script = &s_died, .resume_apart = true);

/* 2a. processes appear: plain, in a group of their own, in a session of their own */
static const struct fx_script s_proc = {
	.setup = FX_CMDS("f", "w 1"),
	.rounds = { FX_CMDS("f", "g", "s", "0w 2"), FX_CMDS("3w 4", "2f", "w 5") },
};
FX_CASE(process_appeared, .script = &s_proc);

/* 2b. threads appear (in the root and in a child), one goes */
static const struct fx_script s_thread = {
	.setup = FX_CMDS("f", "t", "h"),
	.rounds = { FX_CMDS("t", "0t", "0t"), FX_CMDS("T", "0t", "w 3") },
};
FX_CASE(thread_appeared, .script = &s_thread);

/* 3. a new child, its child (in a session of its own) and that one's child, all at once */
static const struct fx_script s_grand = {
	.setup = FX_CMDS("w 1"),
	.rounds = { FX_CMDS("f", "0s", "00f", "00g", "000w 2", "0t"), FX_CMDS("0f", "001w 3") },
};
FX_CASE(new_task_children, .script = &s_grand);

/* 4. mappings added, removed, moved, re-protected (a round each) */
static const struct fx_script s_maps = {
	.setup = FX_CMDS("mA", "ma 0 16", "mw 0 16 1", "mf 20 8", "mw 21 1 1"),
	.rounds = { FX_CMDS("ma 40 8", "mw 40 8 2"), FX_CMDS("mu 12 4", "mu 24 2"),
		    FX_CMDS("mr 40 8 50 10", "mw 58 2 3", "mr 0 4 12 4"),
		    FX_CMDS("mp 4 4 1", "mp 20 2 0", "mp 50 2 5"),
		    FX_CMDS("ma 30 2", "mw 30 2 4", "mu 32 2", "mg 30 2 4", "mw 33 1 5"),
		    FX_CMDS("mu 20 2", "ma 20 2", "mw 20 2 6", "mg 50 10 6", "md 4 1") },
};
FX_CASE(mappings, .script = &s_maps);

/* existing processes move to process groups of their own */
static const struct fx_script s_regroup = {
	.setup = FX_CMDS("f", "f", "0f", "0f"),
	.rounds = { FX_CMDS("0P"), FX_CMDS("01P", "f", "2P"), FX_CMDS("1P", "w 3") },
};
FX_CASE(new_groups, .script = &s_regroup);

/* existing processes (not group leaders) start sessions of their own */
static const struct fx_script s_resession = {
	.setup = FX_CMDS("f", "f", "0f", "0f"),
	.rounds = { FX_CMDS("1Ps"), FX_CMDS("01Ps", "f"), FX_CMDS("00Ps", "w 3") },
};
FX_CASE(new_sessions, .script = &s_resession);

/* 5. pages changed: written, written by the kernel, discarded, in the root and a child */
static const struct fx_script s_pages = {
	.setup = FX_CMDS("f", "mA", "ma 0 32", "mw 0 32 1", "h"),
	.rounds = { FX_CMDS("w 1", "0w 1", "mw 3 2 2"), FX_CMDS("k", "0k", "md 10 4", "mk 16"),
		    FX_CMDS("w 3", "0d", "mw 10 1 3", "0w 3") },
};
FX_CASE(pages, .script = &s_pages);

/* shared anonymous memory written by the root and children, new children sharing it */
static const struct fx_script s_shm = {
	.setup = FX_CMDS("S", "f", "W 1"),
	.rounds = { FX_CMDS("W 2", "0W 3", "f"), FX_CMDS("1W 4", "0f"), FX_CMDS("00W 5", "W 6") },
};
FX_CASE(shared_memory, .script = &s_shm);

/*
 * a thread rewrites pages all along: the --leave-running rounds (the full one too) are
 * copied while it writes (their inventories may say so) and still serve as fixups; it
 * stops before the final round
 */
static const struct fx_script s_busy = {
	.setup = FX_CMDS("b", "f"),
	.rounds = { FX_CMDS("w 1"), FX_CMDS("0w 2"), FX_CMDS("f"), FX_CMDS("B", "w 4") },
};
FX_CASE(busy_rounds, .script = &s_busy);

/*
 * the working directory, umask and personality change after i0: the root's in two rounds,
 * a child's in the last one only, and a child born in a fixup inherits the root's
 */
static const struct fx_script s_fs = {
	.setup = FX_CMDS("f", "w 1"),
	.rounds = { FX_CMDS("C 1", "0w 1"), FX_CMDS("C 2", "f", "w 2"),
		    FX_CMDS("0C 3", "1w 3") },
};
FX_CASE(fs_state, .script = &s_fs, .fs_dirs = true);

/* 6. exec: a child execs, another execs and the first one forks */
static const struct fx_script s_exec = {
	.setup = FX_CMDS("f", "f"),
	.rounds = { FX_CMDS("0e"), FX_CMDS("1e", "0f", "0w 2"), FX_CMDS("00w 2", "1w 3") },
};
FX_CASE(exec, .script = &s_exec);

/* 7. zombies: one appears, is reaped; another appears; a child born and dead as a zombie */
static const struct fx_script s_zombie = {
	.setup = FX_CMDS("f", "f", "f"),
	.rounds = { FX_CMDS("0z"), FX_CMDS("R0", "1z", "f", "3z"), FX_CMDS("2f", "20z", "w 3") },
};
FX_CASE(zombies, .script = &s_zombie);

/*
 * 7b. orphans: the root is a child subreaper; its child A ends (reaped) while A's child B
 * (with a child of its own) lives on, B goes to the root. A frozen task whose parent a
 * fixup ends must neither die with it nor go elsewhere than the subreaper.
 */
static const struct fx_script s_orphans = {
	.setup = FX_CMDS("r", "f", "0f", "0w 1", "00w 2", "00f"),
	.rounds = { FX_CMDS("00w 3", "f"), FX_CMDS("O 0 0", "0x", "2p", "2w 4", "20w 5"),
		    FX_CMDS("2w 6", "w 6") },
};
FX_CASE(orphans, .script = &s_orphans);

/* the same with A left a zombie (not reaped by the root) while B lives on and forks */
static const struct fx_script s_orphans_zombie = {
	.setup = FX_CMDS("r", "f", "0f", "0w 1", "00w 2"),
	.rounds = { FX_CMDS("O 0 0", "0z", "1p", "1w 3"), FX_CMDS("1w 4", "1f") },
};
FX_CASE(orphans_zombie, .script = &s_orphans_zombie);

/* 8. five fixups in a row, each changing the tree, threads, mappings and pages */
static const struct fx_script s_five = {
	.setup = FX_CMDS("f", "t", "mA", "ma 0 8", "mw 0 8 1", "h"),
	.rounds = { FX_CMDS("f", "w 1", "o 4000"), FX_CMDS("1x", "0f", "mw 2 2 2"),
		    FX_CMDS("0t", "ma 20 4", "mw 20 4 3", "o 100"),
		    FX_CMDS("00z", "mp 20 2 1", "f", "t"), FX_CMDS("w 5", "0T", "mu 4 2", "2w 5") },
};
FX_CASE(five_rounds, .script = &s_five);

/* keep-frozen on the top of the chain, then --resume alone */
FX_CASE(top_only, .script = &s_five, .mode = FX_TOP_ONLY);

/* control: two full restores of the same images compare equal (the comparison is exact) */
FX_CASE(control, .script = &s_five, .mode = FX_CONTROL);

/* ---- failures ---- */

/* A tree that grows and shrinks: i1 and i3 fork, i2 ends a task and writes pages. */
static const struct fx_script s_fail = {
	.setup = FX_CMDS("f", "w 1"),
	.rounds = { FX_CMDS("f", "0f", "w 2"), FX_CMDS("1x", "00w 3", "w 3"), FX_CMDS("f", "w 4") },
};

static const struct fx_case fx_case_fail = { .script = &s_fail };

/* The flows of the failure cases start alike: the chain, keep-frozen i0, fixup i1. */
static int fx_fail_start(struct cr_run *r, pid_t *ret_v)
{
	pid_t v;

	incr_path(r, fx_sock, "ctl");
	if (cr_victim_start(r))
		return -1;
	v = r->victim;
	*ret_v = v;
	if (fx_chain(r, v, &s_fail) || fx_keep_frozen(r, "i0", v) ||
	    fx_check_frozen(r, "i0", NULL, v) || fx_fixup(r, "i1", false) ||
	    fx_check_frozen(r, "i1", "i0", v))
		return -1;
	return 0;
}

/* The rest of the chain applied, the victim checks itself, the tree ends. */
static int fx_fail_finish(struct cr_run *r, pid_t v)
{
	if (fx_fixup(r, "i2", false) || fx_check_frozen(r, "i2", "i1", v) ||
	    fx_fixup(r, "i3", true) || fx_check_released(r, v) || fx_victim_check(r, v))
		return -1;
	return fx_end_tree(r, v);
}

static char fx_before[1 << 20], fx_after[1 << 20];

/* The frozen tree is as fx_before says, still held by the same server. */
static int fx_unchanged(struct cr_run *r, pid_t v, const char *why)
{
	if (fx_snapshot(r, v, fx_after, sizeof(fx_after)) ||
	    fx_expect_same(r, fx_before, fx_after, why))
		return -1;
	if (fx_tracer(v) != fx_server)
		return cr_fail(r, "%s: the root %d is traced by %d, not the server %d any more", why,
			       v, fx_tracer(v), fx_server);
	return 0;
}

/*
 * 9a. Fixups whose parent is not the current top (i1 again, i3 which skips i2, the full
 * dump i0) and a second keep-frozen on the same socket and PIDs are refused, the frozen
 * tree stays as it was; then the right fixups and the resume work.
 */
static int fx_flow_wrong_parent(struct cr_run *r)
{
	const char *again[] = { "restore", "-D", "i0", "--keep-frozen", "--control", fx_sock, NULL };
	int status, ret = -1;
	pid_t v;

	if (fx_fail_start(r, &v) || fx_snapshot(r, v, fx_before, sizeof(fx_before)))
		goto out;
	if (fx_fixup_refused(r, "refused-i1", "i1", NULL) || fx_unchanged(r, v, "fixup i1 again") ||
	    fx_fixup_refused(r, "refused-i3", "i3", NULL) || fx_unchanged(r, v, "fixup i3") ||
	    fx_fixup_refused(r, "refused-i0", "i0", NULL) || fx_unchanged(r, v, "fixup i0"))
		goto out;
	if (cr_ckpt(r, "frozen-again", NULL, again, &status) ||
	    cr_expect_failed(r, "frozen-again", status, NULL) ||
	    fx_unchanged(r, v, "a second keep-frozen") || fx_check_frozen(r, "i1", "i0", v))
		goto out;
	ret = fx_fail_finish(r, v);
out:
	if (incr_trackd_stop(r, &fx_st))
		ret = -1;
	fx_kill_server(r);
	return ret;
}

CR_CASE(fixup, wrong_parent, .victim = fx_victim, .arg = (void *)&fx_case_fail,
	.flow = fx_flow_wrong_parent, .changing = true);

/*
 * 9b/c. --abort, or the server killed (SIGKILL), while frozen after a fixup that forked
 * tasks: every task of the tree and the server are gone (their PIDs free, nothing left
 * under the runner), a later fixup on the socket fails cleanly, and the final images
 * restore in full with the same PIDs.
 */
static int fx_flow_end(struct cr_run *r, bool kill_server)
{
	PstreeEntry **tree = NULL;
	size_t nr = 0;
	pid_t pids[CR_MAX_TASKS], v;
	int n = 0, left, ret = -1;

	if (fx_fail_start(r, &v) || fx_pstree(r, "i1", &tree, &nr))
		goto out;
	for (size_t i = 0; i < nr && n < CR_MAX_TASKS; i++)
		pids[n++] = tree[i]->pid;
	if (kill_server) {
		cr_note(r, "SIGKILL to the server %d", fx_server);
		kill(fx_server, SIGKILL);
		(void)waitpid(fx_server, NULL, 0);
		fx_server = 0;
	} else {
		const char *args[] = { "restore", "--abort", "--control", fx_sock, NULL };

		if (fx_ckpt(r, "abort", args, true))
			goto out;
	}
	if (fx_expect_gone(r, pids, n, kill_server ? "the server was killed" : "--abort returned"))
		goto out;
	{
		long deadline = incr_now_ms() + WAIT_MS;

		while (!fx_server_gone() && incr_now_ms() < deadline)
			(void)poll(NULL, 0, 2);
		if (!fx_server_gone()) {
			cr_fail(r, "the server %d is still there after --abort", fx_server);
			goto out;
		}
	}
	left = cr_count_children();
	if (left) {
		cr_fail(r, "%d process(es) left under the runner", left);
		goto out;
	}
	if (fx_fixup_refused(r, "fixup-gone", "i2", NULL))
		goto out;
	if (incr_restore(r, v, "i3", "restore-full") || fx_victim_check(r, v))
		goto out;
	ret = fx_end_tree(r, v);
out:
	cr_free_list(IMG_PSTREE, (void **)tree, nr);
	if (incr_trackd_stop(r, &fx_st))
		ret = -1;
	fx_kill_server(r);
	return ret;
}

static int fx_flow_abort(struct cr_run *r)
{
	return fx_flow_end(r, false);
}

static int fx_flow_server_killed(struct cr_run *r)
{
	return fx_flow_end(r, true);
}

CR_CASE(fixup, abort, .victim = fx_victim, .arg = (void *)&fx_case_fail,
	.flow = fx_flow_abort, .changing = true);
CR_CASE(fixup, server_killed, .victim = fx_victim, .arg = (void *)&fx_case_fail,
	.flow = fx_flow_server_killed, .changing = true);

/* ---- 9d. hostile images: a copy of i2 ("bad") damaged one way at a time ---- */

static int fx_copy_dir(struct cr_run *r, const char *from, const char *to)
{
	char src[PATH_MAX], dst[PATH_MAX], a[PATH_MAX + 300], b[PATH_MAX + 300];
	static char buf[1 << 16];
	struct dirent *de;
	DIR *d;

	incr_path(r, src, from);
	incr_path(r, dst, to);
	d = opendir(dst);
	if (d) {
		while ((de = readdir(d)))
			if (de->d_name[0] != '.') {
				snprintf(b, sizeof(b), "%s/%s", dst, de->d_name);
				unlink(b);
			}
		closedir(d);
	} else if (mkdir(dst, 0700)) {
		return cr_fail(r, "mkdir '%s': %s", dst, strerror(errno));
	}
	d = opendir(src);
	if (!d)
		return cr_fail(r, "opendir '%s': %s", src, strerror(errno));
	while ((de = readdir(d))) {
		int in, out;
		ssize_t n;

		if (de->d_name[0] == '.')
			continue;
		snprintf(a, sizeof(a), "%s/%s", src, de->d_name);
		snprintf(b, sizeof(b), "%s/%s", dst, de->d_name);
		in = open(a, O_RDONLY | O_CLOEXEC);
		out = open(b, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		while (in >= 0 && out >= 0 && (n = read(in, buf, sizeof(buf))) > 0)
			if (write(out, buf, n) != n)
				break;
		if (in >= 0)
			close(in);
		if (out >= 0)
			close(out);
		if (in < 0 || out < 0) {
			closedir(d);
			return cr_fail(r, "copy '%s': %s", a, strerror(errno));
		}
	}
	closedir(d);
	return 0;
}

static pid_t fx_hostile_root;
static char fx_needle[64];

static int fx_bad_overlap(struct cr_run *r, MmEntry *mm)
{
	for (size_t i = 0; i + 1 < mm->n_vmas; i++)
		if (!fx_is_vdso(mm->vmas[i]) && !fx_is_vdso(mm->vmas[i + 1])) {
			mm->vmas[i]->end = mm->vmas[i + 1]->start + PG;
			return 0;
		}
	return cr_fail(r, "no two mappings to overlap");
}

static int fx_bad_run(struct cr_run *r, void **list, size_t n, void *arg)
{
	PagemapEntry **pm = (PagemapEntry **)list;

	(void)arg;
	if (!n)
		return cr_fail(r, "empty pagemap");
	pm[0]->vaddr = PG;	/* below every mapping, still sorted */
	return 0;
}

static int fx_bad_ppid(struct cr_run *r, void **list, size_t n, void *arg)
{
	PstreeEntry **t = (PstreeEntry **)list;

	(void)arg;
	if (n < 2)
		return cr_fail(r, "pstree of %zu entries", n);
	t[n - 1]->ppid = 99999;
	return 0;
}

/* Truncates (by a page, to half with half) or flips the middle byte of DIR/bad/name. */
static int fx_bad_file(struct cr_run *r, const char *name, bool flip)
{
	char path[PATH_MAX + 64];
	unsigned char c;
	struct stat st;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", r->imgdir, name);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) || st.st_size < 2) {
		if (fd >= 0)
			close(fd);
		return cr_fail(r, "'%s' missing or empty", path);
	}
	if (flip) {
		if (pread(fd, &c, 1, st.st_size / 2) != 1 ||
		    (c ^= 0xff, pwrite(fd, &c, 1, st.st_size / 2) != 1)) {
			close(fd);
			return cr_fail(r, "flip a byte of '%s': %s", path, strerror(errno));
		}
	} else if (ftruncate(fd, st.st_size >= (off_t)PG ? st.st_size - (off_t)PG :
						       st.st_size / 2)) {
		close(fd);
		return cr_fail(r, "truncate '%s': %s", path, strerror(errno));
	}
	close(fd);
	return 0;
}

/* Damage number k of DIR/bad (r->imgdir); its name and what the refusal must name. */
static int fx_damage(struct cr_run *r, int k, const char **ret_what)
{
	pid_t v = fx_hostile_root;
	char name[64];

	switch (k) {
	case 0:
		*ret_what = "overlapping mappings";
		img_name(IMG_MM, v, fx_needle, sizeof(fx_needle));
		return cr_edit_mm(r, v, fx_bad_overlap);
	case 1:
		*ret_what = "a page run outside every mapping";
		img_name(IMG_PAGEMAP, v, fx_needle, sizeof(fx_needle));
		return cr_edit_list(r, IMG_PAGEMAP, v, fx_bad_run, NULL);
	case 2:
		*ret_what = "a pages file a page short";
		img_name(IMG_PAGES, v, name, sizeof(name));
		snprintf(fx_needle, sizeof(fx_needle), "%s", name);
		return fx_bad_file(r, name, false);
	case 3:
		*ret_what = "a process whose parent is not in the tree";
		img_name(IMG_PSTREE, 0, fx_needle, sizeof(fx_needle));
		return cr_edit_list(r, IMG_PSTREE, 0, fx_bad_ppid, NULL);
	case 4:
		*ret_what = "a flipped byte in delta.img";
		img_name(IMG_DELTA, 0, fx_needle, sizeof(fx_needle));
		return fx_bad_file(r, fx_needle, true);
	case 5:
		*ret_what = "a truncated core image";
		img_name(IMG_CORE, v, fx_needle, sizeof(fx_needle));
		return fx_bad_file(r, fx_needle, false);
	case 6:
		*ret_what = "a flipped byte in mm";
		img_name(IMG_MM, v, fx_needle, sizeof(fx_needle));
		return fx_bad_file(r, fx_needle, true);
	}
	return 1;
}

static int fx_flow_hostile(struct cr_run *r)
{
	char empty[PATH_MAX];
	int ret = -1, err;
	pid_t v;

	if (fx_fail_start(r, &v) || fx_snapshot(r, v, fx_before, sizeof(fx_before)))
		goto out;
	fx_hostile_root = v;
	for (int k = 0;; k++) {
		const char *what = "?";
		char tag[32];

		if (fx_copy_dir(r, "i2", "bad"))
			goto out;
		incr_path(r, r->imgdir, "bad");
		err = fx_damage(r, k, &what);
		if (err > 0)
			break;
		if (err)
			goto out;
		cr_note(r, "bad: %s", what);
		snprintf(tag, sizeof(tag), "hostile-%d", k);
		if (fx_fixup_refused(r, tag, "bad", fx_needle) || fx_unchanged(r, v, what))
			goto out;
	}
	/* not images at all */
	incr_path(r, empty, "empty");
	if (mkdir(empty, 0700)) {
		cr_fail(r, "mkdir '%s': %s", empty, strerror(errno));
		goto out;
	}
	if (fx_fixup_refused(r, "hostile-empty", "empty", "inventory") ||
	    fx_unchanged(r, v, "an empty directory") || fx_check_frozen(r, "i1", "i0", v))
		goto out;
	ret = fx_fail_finish(r, v);
out:
	if (incr_trackd_stop(r, &fx_st))
		ret = -1;
	fx_kill_server(r);
	return ret;
}

CR_CASE(fixup, hostile_images, .victim = fx_victim, .arg = (void *)&fx_case_fail,
	.flow = fx_flow_hostile, .changing = true);

int main(int argc, char **argv)
{
	if (argc == 6 && !strcmp(argv[1], FX_NODE_ARG))
		fx_exec_main(argv);
	return th_main(argc, argv);
}
