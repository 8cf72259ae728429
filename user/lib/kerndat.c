// SPDX-License-Identifier: MIT
#define LOG_PREFIX "kerndat: "
#include <dirent.h>
#include <elf.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <linux/kcmp.h>
#include <linux/sched.h>
#include <linux/userfaultfd.h>
#ifdef __x86_64__
#include <cpuid.h>
#endif

#include "kcompat.h"
#include "kerndat.h"
#include "log.h"

#define KD_COOKIE 0x636b707464617461ull	/* "ckptdata" */

_Static_assert(sizeof(struct pm_scan_arg) == 96, "pm_scan_arg is twelve u64");
_Static_assert(sizeof(struct page_region) == 24, "page_region is three u64");
_Static_assert(sizeof(struct procmap_query) == 104, "procmap_query layout");

static const struct {
	const char *name;
	const char *needs;
	bool required;
} kd_features[KD_NR_FEATURES] = {
	[KD_PTRACE_SEIZE] = { "PTRACE_SEIZE and PTRACE_INTERRUPT", "Linux 3.4", true },
	[KD_PTRACE_XSTATE] = { "PTRACE_GETREGSET NT_X86_XSTATE", "Linux 2.6.38, x86", true },
	[KD_PTRACE_SIGMASK] = { "PTRACE_GETSIGMASK", "Linux 3.11", true },
	[KD_PTRACE_PEEKSIGINFO] = { "PTRACE_PEEKSIGINFO", "Linux 3.10", true },
	[KD_PROCESS_VM_READV] = { "process_vm_readv", "Linux 3.2", true },
	[KD_PIDFD_GETFD] = { "pidfd_open and pidfd_getfd", "Linux 5.6", true },
	[KD_KCMP_FILE] = { "kcmp KCMP_FILE", "CONFIG_KCMP", true },
	[KD_MAP_FILES] = { "/proc/PID/map_files",
			   "CONFIG_CHECKPOINT_RESTORE and CAP_CHECKPOINT_RESTORE", true },
	[KD_CLONE3_SET_TID] = { "clone3 with set_tid", "Linux 5.5 and CAP_CHECKPOINT_RESTORE", true },
	[KD_PRCTL_MM_MAP] = { "PR_SET_MM_MAP", "Linux 3.18, CONFIG_CHECKPOINT_RESTORE", true },
	[KD_PAGEMAP_SCAN] = { "PAGEMAP_SCAN ioctl", "Linux 6.7", true },
	[KD_VDSO] = { "vDSO layout", "a vDSO", true },
	[KD_UFFD_WP_ASYNC] = { "userfaultfd WP_ASYNC", "Linux 6.7", false },
	[KD_BTF_VMLINUX] = { "BTF at /sys/kernel/btf/vmlinux", "CONFIG_DEBUG_INFO_BTF", false },
	[KD_TIMER_RESTORE_IDS] = { "PR_TIMER_CREATE_RESTORE_IDS (POSIX timers)", "Linux 6.15", false },
	[KD_TCP_REPAIR] = { "TCP_REPAIR (established TCP connections)", "Linux 3.5 and CAP_NET_ADMIN",
			    false },
	[KD_NFT] = { "nft (network lock during a TCP dump)", "the nftables package", false },
};

const char *kerndat_name(enum kerndat_feature f)
{
	return f < KD_NR_FEATURES ? kd_features[f].name : "?";
}

const char *kerndat_needs(enum kerndat_feature f)
{
	return f < KD_NR_FEATURES ? kd_features[f].needs : "?";
}

bool kerndat_required(enum kerndat_feature f)
{
	return f < KD_NR_FEATURES && kd_features[f].required;
}

/* Record a missing feature; errno is the failure of the step named by fmt. */
static void kd_missing(struct kerndat *kd, enum kerndat_feature f, const char *fmt, ...)
{
	va_list ap;

	kd->has[f] = false;
	va_start(ap, fmt);
	vsnprintf(kd->why[f], sizeof(kd->why[f]), fmt, ap);
	va_end(ap);
	pr_debug("%s: missing: %s", kd_features[f].name, kd->why[f]);
}

static void kd_ok(struct kerndat *kd, enum kerndat_feature f)
{
	kd->has[f] = true;
	kd->why[f][0] = '\0';
}

/*
 * Everything that needs a second process in our image runs against one
 * child that blocks SIGUSR1, queues one to itself, reports ready and waits.
 */
struct kd_child {
	pid_t pid;
	int ready[2];	/* child -> parent: one byte once the signal is queued */
	int hold[2];	/* parent keeps the write end; the child reads until EOF */
	int child_fd;	/* hold[0] as numbered in the child, closed here */
	int shared;	/* /dev/null, open in both */
};

static volatile uint64_t kd_cookie;

static int kd_child_start(struct kd_child *c)
{
	char b;
	int err;

	c->ready[0] = c->ready[1] = c->hold[0] = c->hold[1] = -1;
	c->shared = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (c->shared < 0)
		return -errno;
	if (pipe2(c->ready, O_CLOEXEC) < 0 || pipe2(c->hold, O_CLOEXEC) < 0) {
		err = -errno;
		goto err_close;
	}
	c->child_fd = c->hold[0];
	c->pid = fork();
	if (c->pid < 0) {
		err = -errno;
		goto err_close;
	}
	if (c->pid == 0) {
		sigset_t set;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(c->hold[1]);
		close(c->ready[0]);
		sigemptyset(&set);
		sigaddset(&set, SIGUSR1);
		sigprocmask(SIG_BLOCK, &set, NULL);
		raise(SIGUSR1);
		kd_cookie = KD_COOKIE ^ (uint64_t)getpid();
		if (write(c->ready[1], "r", 1) != 1)
			_exit(1);
		/* A ptrace interrupt restarts read(); EOF means the parent is done. */
		while (read(c->hold[0], &b, 1) > 0)
			;
		_exit(0);
	}
	close(c->ready[1]);
	c->ready[1] = -1;
	close(c->hold[0]);
	c->hold[0] = -1;
	if (read(c->ready[0], &b, 1) != 1) {
		err = -EPIPE;
		kill(c->pid, SIGKILL);
		waitpid(c->pid, NULL, __WALL);
		goto err_close;
	}
	return 0;
err_close:
	for (int i = 0; i < 2; i++) {
		if (c->ready[i] >= 0)
			close(c->ready[i]);
		if (c->hold[i] >= 0)
			close(c->hold[i]);
	}
	close(c->shared);
	return err;
}

static void kd_child_stop(struct kd_child *c)
{
	kill(c->pid, SIGKILL);
	while (waitpid(c->pid, NULL, __WALL) < 0 && errno == EINTR)
		;
	close(c->ready[0]);
	close(c->hold[1]);
	close(c->shared);
}

/* Stop the child with SEIZE + INTERRUPT; true when it reached the stop. */
static bool kd_probe_seize(struct kerndat *kd, pid_t pid)
{
	int status;

	if (ptrace(PTRACE_SEIZE, pid, NULL, NULL) < 0) {
		kd_missing(kd, KD_PTRACE_SEIZE, "PTRACE_SEIZE: %s", strerror(errno));
		return false;
	}
	if (ptrace(PTRACE_INTERRUPT, pid, NULL, NULL) < 0) {
		kd_missing(kd, KD_PTRACE_SEIZE, "PTRACE_INTERRUPT: %s", strerror(errno));
		return false;
	}
	if (waitpid(pid, &status, __WALL) != pid) {
		kd_missing(kd, KD_PTRACE_SEIZE, "waitpid: %s", strerror(errno));
		return false;
	}
	/* A seized task stops for PTRACE_INTERRUPT with a PTRACE_EVENT_STOP group-stop. */
	if (!WIFSTOPPED(status) || (status >> 16) != PTRACE_EVENT_STOP) {
		kd_missing(kd, KD_PTRACE_SEIZE, "unexpected wait status 0x%x", status);
		return false;
	}
	kd_ok(kd, KD_PTRACE_SEIZE);
	return true;
}

static void kd_probe_regs(struct kerndat *kd, pid_t pid)
{
	static uint8_t xbuf[1 << 16];
	struct iovec iov = { xbuf, sizeof(xbuf) };
	struct __ptrace_peeksiginfo_args pa = { .off = 0, .flags = 0, .nr = 1 };
	siginfo_t si;
	uint64_t mask = 0;
	long n;

	if (ptrace(PTRACE_GETREGSET, pid, (void *)NT_X86_XSTATE, &iov) < 0) {
		kd_missing(kd, KD_PTRACE_XSTATE, "PTRACE_GETREGSET: %s", strerror(errno));
	} else {
		kd->xsave_size = iov.iov_len;
		kd_ok(kd, KD_PTRACE_XSTATE);
	}

	if (ptrace(PTRACE_GETSIGMASK, pid, (void *)sizeof(mask), &mask) < 0)
		kd_missing(kd, KD_PTRACE_SIGMASK, "PTRACE_GETSIGMASK: %s", strerror(errno));
	else if (!(mask & (1ull << (SIGUSR1 - 1))))
		kd_missing(kd, KD_PTRACE_SIGMASK, "mask 0x%" PRIx64 " lacks the blocked SIGUSR1",
			   mask);
	else
		kd_ok(kd, KD_PTRACE_SIGMASK);

	/* The child queued one SIGUSR1 on its private queue. */
	n = ptrace(PTRACE_PEEKSIGINFO, pid, &pa, &si);
	if (n < 0)
		kd_missing(kd, KD_PTRACE_PEEKSIGINFO, "PTRACE_PEEKSIGINFO: %s", strerror(errno));
	else if (n != 1 || si.si_signo != SIGUSR1)
		kd_missing(kd, KD_PTRACE_PEEKSIGINFO, "peeked %ld signals, expected one SIGUSR1", n);
	else
		kd_ok(kd, KD_PTRACE_PEEKSIGINFO);
}

static void kd_probe_vm_readv(struct kerndat *kd, pid_t pid)
{
	uint64_t v = 0;
	struct iovec local = { &v, sizeof(v) };
	struct iovec remote = { (void *)&kd_cookie, sizeof(v) };
	ssize_t n;

	n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
	if (n < 0)
		kd_missing(kd, KD_PROCESS_VM_READV, "process_vm_readv: %s", strerror(errno));
	else if (n != sizeof(v) || v != (KD_COOKIE ^ (uint64_t)pid))
		kd_missing(kd, KD_PROCESS_VM_READV, "read back the wrong data");
	else
		kd_ok(kd, KD_PROCESS_VM_READV);
}

/* kcmp on the file both share; pidfd_getfd on the pipe end only the child has. */
static void kd_probe_fds(struct kerndat *kd, struct kd_child *c)
{
	struct stat a, b;
	int pidfd, fd;
	long r;

	r = syscall(SYS_kcmp, getpid(), c->pid, KCMP_FILE, c->shared, c->shared);
	if (r < 0)
		kd_missing(kd, KD_KCMP_FILE, "kcmp: %s", strerror(errno));
	else if (r != 0)
		kd_missing(kd, KD_KCMP_FILE, "an inherited file compares as %ld, not 0", r);
	else
		kd_ok(kd, KD_KCMP_FILE);

	pidfd = syscall(SYS_pidfd_open, c->pid, 0);
	if (pidfd < 0) {
		kd_missing(kd, KD_PIDFD_GETFD, "pidfd_open: %s", strerror(errno));
		return;
	}
	fd = syscall(SYS_pidfd_getfd, pidfd, c->child_fd, 0);
	if (fd < 0) {
		kd_missing(kd, KD_PIDFD_GETFD, "pidfd_getfd: %s", strerror(errno));
	} else if (fstat(fd, &a) < 0 || fstat(c->hold[1], &b) < 0 || a.st_ino != b.st_ino ||
		   a.st_dev != b.st_dev) {
		kd_missing(kd, KD_PIDFD_GETFD, "took a different file");
	} else {
		kd_ok(kd, KD_PIDFD_GETFD);
	}
	if (fd >= 0)
		close(fd);
	close(pidfd);
}

/* Opening a map_files entry is what dump does for deleted and unreachable files. */
static void kd_probe_map_files(struct kerndat *kd, pid_t pid)
{
	char path[64];
	struct dirent *de;
	DIR *d;
	int fd = -1;

	snprintf(path, sizeof(path), "/proc/%d/map_files", pid);
	d = opendir(path);
	if (!d) {
		kd_missing(kd, KD_MAP_FILES, "opendir %s: %s", path, strerror(errno));
		return;
	}
	errno = 0;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		fd = openat(dirfd(d), de->d_name, O_RDONLY | O_CLOEXEC);
		break;
	}
	if (!de)
		kd_missing(kd, KD_MAP_FILES, "no entry in %s: %s", path,
			   errno ? strerror(errno) : "empty");
	else if (fd < 0)
		kd_missing(kd, KD_MAP_FILES, "open %s/%.40s: %s", path, de->d_name, strerror(errno));
	else
		kd_ok(kd, KD_MAP_FILES);
	if (fd >= 0)
		close(fd);
	closedir(d);
}

static int kd_probe_child(struct kerndat *kd)
{
	struct kd_child c;
	int err;

	err = kd_child_start(&c);
	if (err)
		return err;
	kd_probe_vm_readv(kd, c.pid);
	kd_probe_fds(kd, &c);
	kd_probe_map_files(kd, c.pid);
	if (kd_probe_seize(kd, c.pid)) {
		kd_probe_regs(kd, c.pid);
	} else {
		const char *why = "needs PTRACE_SEIZE";
		snprintf(kd->why[KD_PTRACE_XSTATE], sizeof(kd->why[0]), "%s", why);
		snprintf(kd->why[KD_PTRACE_SIGMASK], sizeof(kd->why[0]), "%s", why);
		snprintf(kd->why[KD_PTRACE_PEEKSIGINFO], sizeof(kd->why[0]), "%s", why);
	}
	kd_child_stop(&c);
	return 0;
}

static long kd_read_long(const char *path)
{
	char buf[32];
	long v = -1;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	if (n > 0) {
		buf[n] = '\0';
		v = strtol(buf, NULL, 10);
	}
	close(fd);
	return v;
}

/*
 * Ask for a PID well past the last one handed out. EEXIST still proves the
 * kernel honoured set_tid (it checked the PID we asked for), and EPERM means
 * no CAP_CHECKPOINT_RESTORE over our PID namespace.
 */
static void kd_probe_clone3(struct kerndat *kd)
{
	long last = kd_read_long("/proc/sys/kernel/ns_last_pid");
	long max = kd_read_long("/proc/sys/kernel/pid_max");
	struct clone_args args;
	pid_t tid, pid;
	int status;

	if (last < 0 || max <= 0) {
		kd_missing(kd, KD_CLONE3_SET_TID, "cannot read ns_last_pid/pid_max");
		return;
	}
	tid = last + 97;
	if (tid >= max)
		tid = 301 + (last % 97);
	memset(&args, 0, sizeof(args));
	args.exit_signal = SIGCHLD;
	args.set_tid = (uintptr_t)&tid;
	args.set_tid_size = 1;
	pid = syscall(SYS_clone3, &args, sizeof(args));
	if (pid == 0)
		_exit(0);
	if (pid < 0) {
		if (errno == EEXIST) {
			kd_ok(kd, KD_CLONE3_SET_TID);
			return;
		}
		kd_missing(kd, KD_CLONE3_SET_TID, "clone3 set_tid=%d: %s", tid, strerror(errno));
		return;
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (pid != tid)
		kd_missing(kd, KD_CLONE3_SET_TID, "asked for PID %d, got %d", tid, pid);
	else
		kd_ok(kd, KD_CLONE3_SET_TID);
}

/* The size check is what restore relies on: our struct must be the kernel's. */
static void kd_probe_mm_map(struct kerndat *kd)
{
	unsigned int size = 0;

	if (prctl(PR_SET_MM, PR_SET_MM_MAP_SIZE, (unsigned long)&size, 0, 0) < 0)
		kd_missing(kd, KD_PRCTL_MM_MAP, "PR_SET_MM_MAP_SIZE: %s", strerror(errno));
	else if (size != sizeof(struct prctl_mm_map))
		kd_missing(kd, KD_PRCTL_MM_MAP, "kernel struct is %u bytes, ours %zu", size,
			   sizeof(struct prctl_mm_map));
	else
		kd_ok(kd, KD_PRCTL_MM_MAP);
}

/* Scan four pages of our own, one touched: exactly one present region. */
static void kd_probe_pagemap_scan(struct kerndat *kd)
{
	struct page_region vec[4];
	struct pm_scan_arg arg;
	long ps = sysconf(_SC_PAGESIZE);
	char *p;
	int fd, n;

	p = mmap(NULL, 4 * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		kd_missing(kd, KD_PAGEMAP_SCAN, "mmap: %s", strerror(errno));
		return;
	}
	p[ps] = 1;
	fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		kd_missing(kd, KD_PAGEMAP_SCAN, "open /proc/self/pagemap: %s", strerror(errno));
		goto out;
	}
	memset(&arg, 0, sizeof(arg));
	arg.size = sizeof(arg);
	arg.start = (uintptr_t)p;
	arg.end = (uintptr_t)p + 4 * ps;
	arg.vec = (uintptr_t)vec;
	arg.vec_len = 4;
	arg.category_mask = PAGE_IS_PRESENT;
	arg.return_mask = PAGE_IS_PRESENT;
	n = ioctl(fd, PAGEMAP_SCAN, &arg);
	if (n < 0)
		kd_missing(kd, KD_PAGEMAP_SCAN, "ioctl: %s", strerror(errno));
	else if (n != 1 || vec[0].start != (uintptr_t)p + ps || vec[0].end != (uintptr_t)p + 2 * ps)
		kd_missing(kd, KD_PAGEMAP_SCAN, "reported %d regions for one touched page", n);
	else
		kd_ok(kd, KD_PAGEMAP_SCAN);
	close(fd);
out:
	munmap(p, 4 * ps);
}

static void kd_probe_uffd(struct kerndat *kd)
{
	struct uffdio_api api = { .api = UFFD_API };
	int fd;

	/* UFFD_USER_MODE_ONLY (5.11) passes vm.unprivileged_userfaultfd=0. */
	fd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
	if (fd < 0)
		fd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		kd_missing(kd, KD_UFFD_WP_ASYNC, "userfaultfd: %s", strerror(errno));
		return;
	}
	/* A uffd takes UFFDIO_API once; asking for an unknown feature is EINVAL. */
	api.features = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED;
	if (ioctl(fd, UFFDIO_API, &api) < 0)
		kd_missing(kd, KD_UFFD_WP_ASYNC, "UFFDIO_API WP_ASYNC: %s", strerror(errno));
	else
		kd_ok(kd, KD_UFFD_WP_ASYNC);
	kd->uffd_features = api.features;
	close(fd);
}

static void kd_probe_btf(struct kerndat *kd)
{
	struct stat st;

	if (stat("/sys/kernel/btf/vmlinux", &st) < 0)
		kd_missing(kd, KD_BTF_VMLINUX, "stat: %s", strerror(errno));
	else if (access("/sys/kernel/btf/vmlinux", R_OK) < 0)
		kd_missing(kd, KD_BTF_VMLINUX, "access: %s", strerror(errno));
	else
		kd_ok(kd, KD_BTF_VMLINUX);
}

static void kd_probe_vdso(struct kerndat *kd)
{
	char line[512];
	FILE *f = fopen("/proc/self/maps", "re");

	if (!f) {
		kd_missing(kd, KD_VDSO, "open /proc/self/maps: %s", strerror(errno));
		return;
	}
	while (fgets(line, sizeof(line), f)) {
		unsigned long long start, end;
		char name[64] = "";

		if (sscanf(line, "%llx-%llx %*s %*s %*s %*s %63s", &start, &end, name) < 2)
			continue;
		if (!strcmp(name, "[vvar]"))
			kd->vvar_size += end - start;
		else if (!strcmp(name, "[vvar_vclock]"))
			kd->vvar_vclock_size += end - start;
		else if (!strcmp(name, "[vdso]"))
			kd->vdso_size += end - start;
	}
	fclose(f);
	if (!kd->vdso_size)
		kd_missing(kd, KD_VDSO, "no [vdso] in /proc/self/maps");
	else
		kd_ok(kd, KD_VDSO);
}

#ifdef __x86_64__
uint64_t kerndat_xcr0(void)
{
	unsigned int a, b, c, d;

	/* CPUID.1:ECX.OSXSAVE[bit 27]: the OS enabled XSAVE, so xgetbv works. */
	if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27)))
		return 0;
	__asm__ volatile("xgetbv" : "=a"(a), "=d"(d) : "c"(0));
	return ((uint64_t)d << 32) | a;
}

uint32_t kerndat_xsave_area(void)
{
	unsigned int a, b, c, d;

	if (!kerndat_xcr0() || !__get_cpuid_count(0xd, 0, &a, &b, &c, &d))
		return 0;
	return b;
}
#else
uint64_t kerndat_xcr0(void)
{
	return 0;
}

uint32_t kerndat_xsave_area(void)
{
	return 0;
}
#endif

#define PR_TIMER_CREATE_RESTORE_IDS 77	/* include/uapi/linux/prctl.h, 6.15 */
#define PR_TIMER_CREATE_RESTORE_IDS_GET 2

static void kd_probe_timer_ids(struct kerndat *kd)
{
	if (prctl(PR_TIMER_CREATE_RESTORE_IDS, PR_TIMER_CREATE_RESTORE_IDS_GET, 0, 0, 0) < 0)
		kd_missing(kd, KD_TIMER_RESTORE_IDS, "prctl: %s", strerror(errno));
	else
		kd_ok(kd, KD_TIMER_RESTORE_IDS);
}

static void kd_probe_tcp_repair(struct kerndat *kd)
{
	int sk = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), on = 1;

	if (sk < 0 || setsockopt(sk, SOL_TCP, TCP_REPAIR, &on, sizeof(on)) < 0)
		kd_missing(kd, KD_TCP_REPAIR, "TCP_REPAIR: %s", strerror(errno));
	else
		kd_ok(kd, KD_TCP_REPAIR);
	if (sk >= 0)
		close(sk);
}

static void kd_probe_nft(struct kerndat *kd)
{
	static const char *const paths[] = { "/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft" };

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		if (!access(paths[i], X_OK)) {
			kd_ok(kd, KD_NFT);
			return;
		}
	}
	kd_missing(kd, KD_NFT, "no nft in /usr/sbin, /sbin, /usr/bin");
}

int kerndat_probe(struct kerndat *kd)
{
	int err;

	memset(kd, 0, sizeof(*kd));
	kd->xcr0 = kerndat_xcr0();
	err = kd_probe_child(kd);
	if (err) {
		pr_debug("cannot start the probe child: %s", strerror(-err));
		return err;
	}
	kd_probe_clone3(kd);
	kd_probe_mm_map(kd);
	kd_probe_pagemap_scan(kd);
	kd_probe_uffd(kd);
	kd_probe_btf(kd);
	kd_probe_vdso(kd);
	kd_probe_timer_ids(kd);
	kd_probe_tcp_repair(kd);
	kd_probe_nft(kd);
	return 0;
}
