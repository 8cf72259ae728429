// SPDX-License-Identifier: MIT
/*
 * Image codec unit tests: valid images round-trip; truncated, bit-flipped
 * and hostile images are rejected with -EINVAL and a message naming the
 * file and the field, never a crash; `ckpt show` decodes a good directory
 * (text and JSON) and fails cleanly on a corrupt one.
 *
 * Everything that parses corrupt input runs in a forked child, so a crash
 * is reported as a failure instead of ending the run.
 */
#define LOG_PREFIX "image_test: "
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <protobuf-c/protobuf-c.h>

#include "core.pb-c.h"
#include "delta.pb-c.h"
#include "files.pb-c.h"
#include "inventory.pb-c.h"
#include "mm.pb-c.h"
#include "pagemap.pb-c.h"
#include "pstree.pb-c.h"

#include "crc32c.h"
#include "image.h"
#include "kerndat.h"
#include "log.h"

#define TEST_PID	1
#define TEST_PID_MAX	(1u << 22)	/* PID_MAX_LIMIT on 64-bit, as the codec checks */
#define TEST_DUMP_ID	"0123456789abcdef0123456789abcdef"
#define TEST_PARENT_ID	"fedcba9876543210fedcba9876543210"
#define CHILD_TIMEOUT	60	/* seconds for one forked check */
#define MAX_RESULTS	512

/* TAP: results are buffered so the plan can come first. */
static char *results[MAX_RESULTS];
static int nr_results, nr_failed;
static char tmpdir[PATH_MAX];
static char logpath[PATH_MAX];

static void tap(bool ok, const char *skip, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void tap(bool ok, const char *skip, const char *fmt, ...)
{
	char name[512], *line;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(name, sizeof(name), fmt, ap);
	va_end(ap);
	if (nr_results == MAX_RESULTS)
		return;
	if (asprintf(&line, "%s %d - %s%s%s", ok ? "ok" : "not ok", nr_results + 1, name,
		     skip ? " # SKIP " : "", skip ? skip : "") < 0)
		exit(1);
	results[nr_results++] = line;
	if (!ok)
		nr_failed++;
}

/* A diagnostic line, kept in order with the results. */
static void diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void diag(const char *fmt, ...)
{
	char msg[1024], *line;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (nr_results == MAX_RESULTS || asprintf(&line, "# %s", msg) < 0)
		return;
	/* Attach to the previous result so the numbering is unaffected. */
	if (nr_results) {
		char *both;
		if (asprintf(&both, "%s\n%s", results[nr_results - 1], line) >= 0) {
			free(results[nr_results - 1]);
			results[nr_results - 1] = both;
		}
	}
	free(line);
}

/*
 * Fixture: one valid set of entries of every kind, with the storage the
 * generated structs point into. fx_init() restores it after a mutation.
 */
struct fx {
	InventoryEntry inv;
	uint32_t root_pids[1];

	PstreeEntry ps[2];
	uint32_t ps_threads0[2], ps_threads1[1];

	CoreEntry core;
	TaskCoreEntry task;
	CredsEntry creds;
	uint32_t groups[2];
	RlimitEntry rl[2], *rlp[2];
	SigactionEntry sa[2], *sap[2];
	ItimerEntry it, *itp[1];
	SiginfoEntry shared_si, *shared_sip[1];
	uint8_t shared_si_data[128];
	ThreadCoreEntry th, *thp[1];
	UserRegsEntry regs;
	SigaltstackEntry alt;
	SiginfoEntry th_si, *th_sip[1];
	uint8_t th_si_data[128];
	uint8_t xsave[2440];	/* x87, SSE, AVX and PKRU: not a multiple of 64 */

	MmEntry mm;
	uint64_t auxv[4];
	VmaEntry vma[3], *vmap[3];
	MapFileEntry mf[2], *mfp[2];

	PagemapEntry pm[2];

	FileEntry file[3];
	RegFileEntry reg;
	PipeFileEntry pipe, fifo;

	FdinfoEntry fdi[2];

	PipeDataEntry pd;
	uint8_t pd_data[5];

	DeltaEntry delta[2];
	uint32_t delta_new[1], delta_gone[1];
	uint64_t delta_added[4], delta_removed[2], delta_changed[2], delta_touched[4];

	/* Valid parts no image holds until a case attaches them (ok_* below). */
	AioRingEntry aio[2], *aiop[2];
	uint8_t aio_events[64];
	ThreadCoreEntry th_light;	/* no xsave: small enough for 65536 copies */
	PosixTimerEntry pt[2], *ptp[2];
	InetSkEntry inet;
	struct sockaddr_in6 inet_local, inet_peer;
	uint8_t inet_sq[16];
	UnixSkEntry unx;
	ProtobufCBinaryData unx_queue[2], unx_from[2];
	uint64_t unx_pending[2];
	uint8_t unx_name[110], unx_from_name[110];
	EventfdEntry efd;
	SignalfdEntry sfd;
	TimerfdEntry tfd;
	EpollEntry ep;
	EpollTfdEntry ept, *eptp[1];
	InotifyEntry ino;
	InotifyWdEntry wd[2], *wdp[2];
	FileLockEntry lock[65], *lockp[65];
	GhostFileEntry ghost[2];
	uint8_t ghost_data[16];
	char str[4200];			/* a string of a chosen length */

	const ProtobufCMessage *msgs[IMG_NR_KINDS][3];
	int nr[IMG_NR_KINDS];
};

static void fx_siginfo(SiginfoEntry *e, uint8_t *data, int signo)
{
	siginfo_entry__init(e);
	memset(data, 0, 128);
	memcpy(data, &signo, sizeof(signo));
	e->siginfo.data = data;
	e->siginfo.len = 128;
}

static void fx_init_inventory(struct fx *f)
{
	inventory_entry__init(&f->inv);
	f->inv.format_version = IMG_FORMAT_VERSION;
	f->inv.kernel = (char *)"6.18.0-test";
	f->inv.machine = (char *)"x86_64";
	f->root_pids[0] = TEST_PID;
	f->inv.root_pids = f->root_pids;
	f->inv.n_root_pids = 1;
	f->inv.boot_id = (char *)"0f1e2d3c-\"quoted\"\\back\tslash";
	f->inv.has_page_size = 1;
	f->inv.page_size = 4096;
	f->inv.has_xsave_size = 1;
	f->inv.xsave_size = sizeof(f->xsave);
	f->inv.has_xfeatures = 1;
	f->inv.xfeatures = 0x207;
	f->inv.has_dump_time_ns = 1;
	f->inv.dump_time_ns = 0xfedcba9876543210ull;
	f->inv.ckpt_version = (char *)"test \xc3\xa9 \xff";	/* valid and invalid UTF-8 */
	f->inv.has_leave_running = 1;
	f->inv.leave_running = 1;
}

static void fx_init_pstree(struct fx *f)
{
	pstree_entry__init(&f->ps[0]);
	f->ps[0].pid = TEST_PID;
	f->ps[0].pgid = TEST_PID;
	f->ps[0].sid = TEST_PID;
	f->ps_threads0[0] = TEST_PID;
	f->ps_threads0[1] = 2;
	f->ps[0].threads = f->ps_threads0;
	f->ps[0].n_threads = 2;
	pstree_entry__init(&f->ps[1]);
	f->ps[1].pid = 3;
	f->ps[1].ppid = TEST_PID;
	f->ps[1].pgid = TEST_PID;
	f->ps[1].sid = TEST_PID;
	f->ps_threads1[0] = 3;
	f->ps[1].threads = f->ps_threads1;
	f->ps[1].n_threads = 1;
}

static void fx_init_core(struct fx *f)
{
	creds_entry__init(&f->creds);
	f->groups[0] = 0;
	f->groups[1] = 10;
	f->creds.groups = f->groups;
	f->creds.n_groups = 2;
	f->creds.cap_prm = f->creds.cap_eff = f->creds.cap_bnd = 0x1ffffffffffull;

	for (int i = 0; i < 2; i++) {
		rlimit_entry__init(&f->rl[i]);
		f->rlp[i] = &f->rl[i];
		sigaction_entry__init(&f->sa[i]);
		f->sap[i] = &f->sa[i];
	}
	f->rl[0].resource = RLIMIT_NOFILE;
	f->rl[0].cur = 1024;
	f->rl[0].max = 4096;
	f->rl[1].resource = RLIMIT_STACK;
	f->rl[1].cur = 8 << 20;
	f->rl[1].max = RLIM_INFINITY;
	f->sa[0].sig = SIGUSR1;
	f->sa[0].handler = 0x401000;
	f->sa[0].flags = 0x14000000;	/* SA_RESTORER | SA_RESTART */
	f->sa[0].restorer = 0x401100;
	f->sa[1].sig = SIGTERM;
	f->sa[1].handler = 1;		/* SIG_IGN */
	f->sa[1].mask = 1ull << (SIGUSR2 - 1);

	itimer_entry__init(&f->it);
	f->itp[0] = &f->it;
	f->it.value_us = 250000;
	f->it.interval_us = 1000000;

	fx_siginfo(&f->shared_si, f->shared_si_data, SIGUSR2);
	f->shared_sip[0] = &f->shared_si;

	task_core_entry__init(&f->task);
	f->task.comm = (char *)"victim";
	f->task.umask = 022;
	f->task.creds = &f->creds;
	f->task.rlimits = f->rlp;
	f->task.n_rlimits = 2;
	f->task.sigactions = f->sap;
	f->task.n_sigactions = 2;
	f->task.itimers = f->itp;
	f->task.n_itimers = 1;
	f->task.shared_pending = f->shared_sip;
	f->task.n_shared_pending = 1;
	f->task.dumpable = 1;
	f->task.timer_slack_ns = 50000;
	f->task.cwd = (char *)"/tmp";
	f->task.root = (char *)"/";

	user_regs_entry__init(&f->regs);
	f->regs.ip = 0x401234;
	f->regs.sp = 0x7ffcdeadbee0;
	f->regs.fs_base = 0x7f0012345740;
	f->regs.cs = 0x33;
	f->regs.ss = 0x2b;
	f->regs.flags = 0x246;
	f->regs.orig_ax = (uint64_t)-1;

	sigaltstack_entry__init(&f->alt);
	f->alt.sp = 0x7f0000100000;
	f->alt.size = 8192;
	f->alt.flags = SS_DISABLE;

	fx_siginfo(&f->th_si, f->th_si_data, SIGUSR1);
	f->th_sip[0] = &f->th_si;
	for (size_t i = 0; i < sizeof(f->xsave); i++)
		f->xsave[i] = i * 7;

	thread_core_entry__init(&f->th);
	f->thp[0] = &f->th;
	f->th.tid = TEST_PID;
	f->th.gpregs = &f->regs;
	f->th.has_xsave = 1;
	f->th.xsave.data = f->xsave;
	f->th.xsave.len = sizeof(f->xsave);
	f->th.altstack = &f->alt;
	f->th.pending = f->th_sip;
	f->th.n_pending = 1;
	f->th.comm = (char *)"victim";
	f->th.has_in_syscall = 1;
	f->th.in_syscall = 0;

	core_entry__init(&f->core);
	f->core.task = &f->task;
	f->core.threads = f->thp;
	f->core.n_threads = 1;
}

static void fx_init_mm(struct fx *f)
{
	static const char *const paths[] = { "/usr/bin/victim", "/lib/x86_64-linux-gnu/libc.so.6" };

	mm_entry__init(&f->mm);
	f->mm.start_code = 0x400000;
	f->mm.end_code = 0x401000;
	f->mm.start_data = 0x600000;
	f->mm.end_data = 0x601000;
	f->mm.start_brk = f->mm.brk = 0x602000;
	f->mm.start_stack = 0x7ffcdeadc000;
	f->mm.arg_start = 0x7ffcdeadd000;
	f->mm.arg_end = 0x7ffcdeadd010;
	f->mm.env_start = 0x7ffcdeadd010;
	f->mm.env_end = 0x7ffcdeadd100;
	f->auxv[0] = 6;		/* AT_PAGESZ */
	f->auxv[1] = 4096;
	f->auxv[2] = 0;		/* AT_NULL */
	f->auxv[3] = 0;
	f->mm.auxv = f->auxv;
	f->mm.n_auxv = 4;
	f->mm.has_exe_file_id = 1;
	f->mm.exe_file_id = 0;

	for (int i = 0; i < 2; i++) {
		map_file_entry__init(&f->mf[i]);
		f->mfp[i] = &f->mf[i];
		f->mf[i].id = i;
		f->mf[i].path = (char *)paths[i];
		f->mf[i].dev = 0x801;
		f->mf[i].ino = 1000 + i;
		f->mf[i].size = 20000;
		f->mf[i].mode = S_IFREG | 0755;
	}
	f->mm.files = f->mfp;
	f->mm.n_files = 2;

	for (int i = 0; i < 3; i++) {
		vma_entry__init(&f->vma[i]);
		f->vmap[i] = &f->vma[i];
	}
	f->vma[0].start = 0x400000;
	f->vma[0].end = 0x401000;
	f->vma[0].prot = PROT_READ | PROT_EXEC;
	f->vma[0].flags = MAP_PRIVATE;
	f->vma[0].kind = VMA_KIND_FILE_PRIVATE;
	f->vma[0].has_file_id = 1;
	f->vma[0].file_id = 0;
	f->vma[1].start = 0x600000;
	f->vma[1].end = 0x602000;
	f->vma[1].prot = PROT_READ | PROT_WRITE;
	f->vma[1].flags = MAP_PRIVATE | MAP_ANONYMOUS;
	f->vma[1].kind = VMA_KIND_ANON;
	f->vma[1].has_madv = 1;
	f->vma[1].madv = VMA_MADV_HUGEPAGE;
	f->vma[2].start = 0x7f0012340000;
	f->vma[2].end = 0x7f0012342000;
	f->vma[2].pgoff = 0x1000;
	f->vma[2].prot = PROT_READ;
	f->vma[2].flags = MAP_SHARED;
	f->vma[2].kind = VMA_KIND_FILE_SHARED;
	f->vma[2].has_file_id = 1;
	f->vma[2].file_id = 1;
	f->mm.vmas = f->vmap;
	f->mm.n_vmas = 3;
}

static void fx_init_rest(struct fx *f)
{
	for (int i = 0; i < 2; i++)
		pagemap_entry__init(&f->pm[i]);
	f->pm[0].vaddr = 0x600000;
	f->pm[0].nr_pages = 2;
	f->pm[0].has_flags = 1;
	f->pm[0].flags = PE_PRESENT;
	f->pm[1].vaddr = 0x7f0012340000;
	f->pm[1].nr_pages = 1;

	reg_file_entry__init(&f->reg);
	f->reg.path = (char *)"/tmp/data file 'one'";
	f->reg.pos = 5;
	f->reg.size = 100;
	f->reg.mode = S_IFREG | 0644;
	f->reg.dev = 0x801;
	f->reg.ino = 4242;
	pipe_file_entry__init(&f->pipe);
	f->pipe.pipe_id = 1234;
	pipe_file_entry__init(&f->fifo);
	f->fifo.pipe_id = 99;
	f->fifo.path = (char *)"/tmp/fifo";
	for (int i = 0; i < 3; i++) {
		file_entry__init(&f->file[i]);
		f->file[i].id = i + 1;
	}
	f->file[0].kind = FILE_KIND__FILE_REG;
	f->file[0].flags = O_RDWR | O_APPEND;
	f->file[0].reg = &f->reg;
	f->file[1].kind = FILE_KIND__FILE_PIPE;
	f->file[1].flags = O_WRONLY;
	f->file[1].pipe = &f->pipe;
	f->file[2].kind = FILE_KIND__FILE_FIFO;
	f->file[2].flags = O_RDONLY | O_NONBLOCK;
	f->file[2].pipe = &f->fifo;

	for (int i = 0; i < 2; i++) {
		fdinfo_entry__init(&f->fdi[i]);
		f->fdi[i].fd = i;
		f->fdi[i].id = i + 1;
	}
	f->fdi[1].cloexec = 1;

	pipe_data_entry__init(&f->pd);
	f->pd.pipe_id = 1234;
	f->pd.size = 65536;
	memcpy(f->pd_data, "hello", 5);
	f->pd.has_data = 1;
	f->pd.data.data = f->pd_data;
	f->pd.data.len = 5;
}

/* delta.img of an incremental dump: the root carried over, its child new since. */
static void fx_init_delta(struct fx *f)
{
	DeltaEntry *d = &f->delta[0];

	delta_entry__init(d);
	d->pid = TEST_PID;
	d->state = DELTA_SAME;
	d->has_ppid = 1;
	d->ppid = 0;
	f->delta_new[0] = 2;
	d->new_threads = f->delta_new;
	d->n_new_threads = 1;
	f->delta_gone[0] = 4;
	d->gone_threads = f->delta_gone;
	d->n_gone_threads = 1;
	/* sorted [start, end) pairs; the touched ones meet end to start */
	memcpy(f->delta_added, (uint64_t[]){ 0x400000, 0x401000, 0x500000, 0x502000 },
	       sizeof(f->delta_added));
	d->added = f->delta_added;
	d->n_added = 4;
	memcpy(f->delta_removed, (uint64_t[]){ 0x600000, 0x601000 }, sizeof(f->delta_removed));
	d->removed = f->delta_removed;
	d->n_removed = 2;
	memcpy(f->delta_changed, (uint64_t[]){ 0x700000, 0x710000 }, sizeof(f->delta_changed));
	d->changed = f->delta_changed;
	d->n_changed = 2;
	memcpy(f->delta_touched, (uint64_t[]){ 0x10000, 0x11000, 0x11000, 0x12000 },
	       sizeof(f->delta_touched));
	d->touched = f->delta_touched;
	d->n_touched = 4;
	d->has_maps_reused = 1;
	d->has_data_pages = 1;
	d->data_pages = 3;
	d->has_prev_pages = 1;
	d->prev_pages = 7;

	d = &f->delta[1];
	delta_entry__init(d);
	d->pid = 3;
	d->state = DELTA_NEW;
	d->has_ppid = 1;
	d->ppid = TEST_PID;
	d->has_clone_flags = 1;
	d->clone_flags = SIGCHLD;
	d->reread = (char *)"new since the parent images";
}

#define TIMERFD_MAX_NS	((uint64_t)INT64_MAX - 1000000000ull)

static void fx_init_extra(struct fx *f)
{
	for (int i = 0; i < 2; i++) {
		aio_ring_entry__init(&f->aio[i]);
		f->aiop[i] = &f->aio[i];
	}
	/* Just clear of vma[1] (ends at 0x602000) and vma[2] (starts at 0x7f0012340000). */
	f->aio[0].addr = 0x602000;
	f->aio[0].len = 4096;
	f->aio[0].nr = 127;		/* (4096 - 32) / 32: the kernel fills the pages */
	f->aio[0].head = 126;
	f->aio[0].tail = 1;		/* two events waiting, wrapping around */
	for (size_t i = 0; i < sizeof(f->aio_events); i++)
		f->aio_events[i] = i;
	f->aio[0].has_events = 1;
	f->aio[0].events.data = f->aio_events;
	f->aio[0].events.len = 64;
	f->aio[1].addr = 0x7f001233e000;
	f->aio[1].len = 8192;
	f->aio[1].nr = 255;

	f->th_light = f->th;
	f->th_light.has_xsave = 0;
	f->th_light.xsave.data = NULL;
	f->th_light.xsave.len = 0;
	f->th_light.pending = NULL;
	f->th_light.n_pending = 0;

	for (int i = 0; i < 2; i++) {
		posix_timer_entry__init(&f->pt[i]);
		f->ptp[i] = &f->pt[i];
	}
	f->pt[0].id = 0;
	f->pt[0].clock = CLOCK_MONOTONIC;
	f->pt[0].notify = SIGEV_SIGNAL | SIGEV_THREAD_ID;
	f->pt[0].signo = 64;
	f->pt[0].has_notify_tid = 1;
	f->pt[0].notify_tid = TEST_PID;
	f->pt[0].value_ns = (1ull << 60) - 1;
	f->pt[0].interval_ns = (1ull << 60) - 1;
	f->pt[0].overrun = INT32_MAX;
	f->pt[1].id = INT32_MAX;
	f->pt[1].clock = -14;		/* MAKE_PROCESS_CPUCLOCK(1, CPUCLOCK_SCHED) */
	f->pt[1].notify = SIGEV_NONE;

	inet_sk_entry__init(&f->inet);
	f->inet.family = AF_INET6;
	f->inet.type = SOCK_STREAM;
	f->inet.state = 1;		/* TCP_ESTABLISHED */
	f->inet_local.sin6_family = AF_INET6;
	f->inet_local.sin6_port = htons(8080);
	f->inet_local.sin6_addr = in6addr_loopback;
	f->inet_peer = f->inet_local;
	f->inet_peer.sin6_port = htons(40000);
	f->inet.has_local = f->inet.has_peer = 1;
	f->inet.local.data = (uint8_t *)&f->inet_local;
	f->inet.local.len = sizeof(f->inet_local);
	f->inet.peer.data = (uint8_t *)&f->inet_peer;
	f->inet.peer.len = sizeof(f->inet_peer);
	f->inet.has_snd_seq = f->inet.has_rcv_seq = 1;
	f->inet.snd_seq = 0xfffffff0;
	f->inet.rcv_seq = 12345;
	memcpy(f->inet_sq, "0123456789abcdef", 16);
	f->inet.has_send_queue = 1;
	f->inet.send_queue.data = f->inet_sq;
	f->inet.send_queue.len = 16;
	f->inet.has_unsent = 1;
	f->inet.unsent = 16;		/* all of it */
	f->inet.has_snd_wscale = f->inet.has_rcv_wscale = 1;
	f->inet.snd_wscale = f->inet.rcv_wscale = 14;

	/* A listening stream socket with the longest path name. */
	unix_sk_entry__init(&f->unx);
	f->unx.type = SOCK_STREAM;
	f->unx.ino = 100;
	f->unx.sndbuf = f->unx.rcvbuf = 212992;
	f->unx.has_state = 1;
	f->unx.state = 10;
	f->unx.has_backlog = 1;
	f->unx.backlog = 5;
	f->unx_pending[0] = 101;
	f->unx_pending[1] = 102;
	f->unx.pending = f->unx_pending;
	f->unx.n_pending = 2;
	memset(f->unx_name, 'n', sizeof(f->unx_name));
	f->unx_name[0] = '/';
	f->unx.has_name = 1;
	f->unx.name.data = f->unx_name;
	f->unx.name.len = 108;
	f->unx.has_mode = 1;
	f->unx.mode = S_IFSOCK | 0755;
	memset(f->unx_from_name, 'f', sizeof(f->unx_from_name));
	f->unx_from_name[0] = '/';
	f->unx_queue[0] = (ProtobufCBinaryData){ 5, (uint8_t *)"first" };
	f->unx_queue[1] = (ProtobufCBinaryData){ 6, (uint8_t *)"second" };
	f->unx_from[0] = (ProtobufCBinaryData){ 108, f->unx_from_name };
	f->unx_from[1] = (ProtobufCBinaryData){ 0, NULL };

	eventfd_entry__init(&f->efd);
	f->efd.counter = UINT64_MAX - 1;
	f->efd.semaphore = 1;
	signalfd_entry__init(&f->sfd);
	f->sfd.sigmask = 1ull << (SIGINT - 1);
	timerfd_entry__init(&f->tfd);
	f->tfd.clockid = 9;		/* CLOCK_BOOTTIME_ALARM */
	f->tfd.flags = 3;
	f->tfd.value_ns = f->tfd.interval_ns = TIMERFD_MAX_NS;
	f->tfd.has_expires_ns = 1;
	f->tfd.expires_ns = TIMERFD_MAX_NS;
	epoll_entry__init(&f->ep);
	epoll_tfd_entry__init(&f->ept);
	f->eptp[0] = &f->ept;
	f->ept.tfd = (1u << 20) - 1;
	f->ept.events = 1;
	f->ept.file_id = 1;
	f->ep.tfd = f->eptp;
	f->ep.n_tfd = 1;
	inotify_entry__init(&f->ino);
	for (int i = 0; i < 2; i++) {
		inotify_wd_entry__init(&f->wd[i]);
		f->wdp[i] = &f->wd[i];
		f->wd[i].path = (char *)"/tmp";
	}
	f->wd[0].wd = 1;
	f->wd[0].mask = 0x84000fff;	/* every bit allowed */
	f->wd[1].wd = 1u << 20;
	f->wd[1].mask = 0x1;
	f->ino.wd = f->wdp;
	f->ino.n_wd = 2;

	for (int i = 0; i < 65; i++) {
		file_lock_entry__init(&f->lock[i]);
		f->lockp[i] = &f->lock[i];
		f->lock[i].kind = 1 + i % 3;
		f->lock[i].write = i & 1;
		if (f->lock[i].kind != 1) {
			f->lock[i].has_start = f->lock[i].has_len = 1;
			f->lock[i].start = 10 * i;
			f->lock[i].len = 10;
		}
	}
	f->lock[1].start = 0;
	f->lock[1].len = INT64_MAX;	/* to the largest offset */
	f->lock[2].start = INT64_MAX;
	f->lock[2].len = 0;

	for (int i = 0; i < 2; i++) {
		ghost_file_entry__init(&f->ghost[i]);
		f->ghost[i].path = (char *)"/tmp/gone";
		f->ghost[i].size = 100;
		f->ghost[i].mode = S_IFREG | 0600;
		f->ghost[i].uid = 1000;
	}
	memcpy(f->ghost_data, "0123456789", 10);
	f->ghost[0].has_off = f->ghost[0].has_data = 1;
	f->ghost[0].off = 90;		/* the last 10 bytes */
	f->ghost[0].data.data = f->ghost_data;
	f->ghost[0].data.len = 10;
}

static void fx_init(struct fx *f)
{
	memset(f, 0, sizeof(*f));
	fx_init_inventory(f);
	fx_init_pstree(f);
	fx_init_core(f);
	fx_init_mm(f);
	fx_init_rest(f);
	fx_init_extra(f);
	fx_init_delta(f);

#define FX_ADD(kind, msg) (f->msgs[kind][f->nr[kind]++] = (const ProtobufCMessage *)(msg))
	FX_ADD(IMG_INVENTORY, &f->inv);
	FX_ADD(IMG_PSTREE, &f->ps[0]);
	FX_ADD(IMG_PSTREE, &f->ps[1]);
	FX_ADD(IMG_CORE, &f->core);
	FX_ADD(IMG_MM, &f->mm);
	FX_ADD(IMG_PAGEMAP, &f->pm[0]);
	FX_ADD(IMG_PAGEMAP, &f->pm[1]);
	FX_ADD(IMG_FILES, &f->file[0]);
	FX_ADD(IMG_FILES, &f->file[1]);
	FX_ADD(IMG_FILES, &f->file[2]);
	FX_ADD(IMG_FDINFO, &f->fdi[0]);
	FX_ADD(IMG_FDINFO, &f->fdi[1]);
	FX_ADD(IMG_PIPES_DATA, &f->pd);
	FX_ADD(IMG_DELTA, &f->delta[0]);
	FX_ADD(IMG_DELTA, &f->delta[1]);
#undef FX_ADD
}

static char *join(const char *dir, const char *name)
{
	char *p;

	if (asprintf(&p, "%s/%s", dir, name) < 0)
		exit(1);
	return p;
}

static int open_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0) {
		printf("Bail out! cannot open %s: %s\n", path, strerror(errno));
		exit(1);
	}
	return fd;
}

static int fx_write(int dirfd, const struct fx *f, enum img_kind kind)
{
	struct img *img = img_open(dirfd, kind, TEST_PID, O_WRONLY);
	int err = 0;

	if (!img)
		return -errno;
	for (int i = 0; i < f->nr[kind] && !err; i++)
		err = img_write(img, f->msgs[kind][i]);
	if (img_close(img) && !err)
		err = -EIO;
	return err;
}

/* Two pages of raw contents, as the pagemap's first entry says. */
static int write_pages(int dirfd)
{
	char buf[8192];
	int fd = openat(dirfd, "pages-1.img", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int err = 0;

	if (fd < 0)
		return -errno;
	memset(buf, 0x5a, sizeof(buf));
	if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
		err = -EIO;
	close(fd);
	return err;
}

static int write_file(int dirfd, const char *name, const void *data, size_t len)
{
	int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int err = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, data, len) != (ssize_t)len)
		err = -EIO;
	close(fd);
	return err;
}

static int read_file(int dirfd, const char *name, uint8_t **ret_buf, size_t *ret_len)
{
	struct stat st;
	uint8_t *buf;
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !(buf = malloc(st.st_size + 1))) {
		close(fd);
		return -ENOMEM;
	}
	if (read(fd, buf, st.st_size) != st.st_size) {
		free(buf);
		close(fd);
		return -EIO;
	}
	buf[st.st_size] = '\0';
	close(fd);
	*ret_buf = buf;
	*ret_len = st.st_size;
	return 0;
}

static bool msg_equal(const ProtobufCMessage *a, const ProtobufCMessage *b)
{
	size_t la = protobuf_c_message_get_packed_size(a);
	size_t lb = protobuf_c_message_get_packed_size(b);
	uint8_t *pa, *pb;
	bool eq;

	if (la != lb || a->descriptor != b->descriptor)
		return false;
	pa = malloc(la + 1);
	pb = malloc(lb + 1);
	if (!pa || !pb)
		exit(1);
	protobuf_c_message_pack(a, pa);
	protobuf_c_message_pack(b, pb);
	eq = !memcmp(pa, pb, la);
	free(pa);
	free(pb);
	return eq;
}

/*
 * Forked checks. The child writes a reason into shared memory and exits 0
 * (pass) or 1 (fail); a signal, including the alarm, is a failure.
 */
static char *child_msg;	/* MAP_SHARED, 4096 bytes */

static void child_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void child_fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(child_msg, 4096, fmt, ap);
	va_end(ap);
}

static bool run_forked(int (*fn)(void *), void *arg, char *why, size_t len)
{
	int status, devnull;
	pid_t pid;

	child_msg[0] = '\0';
	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		snprintf(why, len, "fork: %s", strerror(errno));
		return false;
	}
	if (pid == 0) {
		/* Errors also go to stderr; the log file is what is checked. */
		devnull = open("/dev/null", O_WRONLY);
		if (devnull >= 0)
			dup2(devnull, STDERR_FILENO);
		alarm(CHILD_TIMEOUT);
		_exit(fn(arg) ? 1 : 0);
	}
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			snprintf(why, len, "waitpid: %s", strerror(errno));
			return false;
		}
	}
	if (WIFSIGNALED(status)) {
		snprintf(why, len, "crashed with signal %d (%s)%s%s", WTERMSIG(status),
			 strsignal(WTERMSIG(status)), child_msg[0] ? ", last: " : "", child_msg);
		return false;
	}
	snprintf(why, len, "%s", child_msg);
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* Start a fresh log in the child; returns 0 or -errno. */
static int log_restart(void)
{
	int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0)
		return -errno;
	close(fd);
	log_fini();
	return log_init(logpath, LOG_WARN);
}

/*
 * Read every entry of an image. Returns 0 when it decoded to the end, the
 * -EINVAL of a rejection, or another negative value for an unexpected result.
 */
static int read_all(int dirfd, enum img_kind kind, int *ret_entries)
{
	struct img *img = img_open(dirfd, kind, TEST_PID, O_RDONLY);
	void *msg;
	int ret, n = 0;

	if (!img)
		return -errno;
	while ((ret = img_read(img, &msg)) > 0) {
		/* It passed the field checks; make sure it is a whole message. */
		if (!protobuf_c_message_check(msg))
			ret = -EBADMSG;
		img_free(img, msg);
		if (ret < 0)
			break;
		n++;
	}
	img_close(img);
	if (ret_entries)
		*ret_entries = n;
	return ret;
}

/* Round trip: what img_read returns packs to the same bytes as what was written. */
struct roundtrip_arg {
	int dirfd;
	const struct fx *f;
	enum img_kind kind;
};

static int roundtrip_child(void *p)
{
	const struct roundtrip_arg *a = p;
	struct img *img = img_open(a->dirfd, a->kind, TEST_PID, O_RDONLY);
	void *msg;
	int ret, n = 0;

	if (!img) {
		child_fail("img_open: %s", strerror(errno));
		return 1;
	}
	while ((ret = img_read(img, &msg)) > 0) {
		if (n >= a->f->nr[a->kind]) {
			child_fail("more entries than written");
			return 1;
		}
		if (!msg_equal(msg, a->f->msgs[a->kind][n])) {
			child_fail("entry %d differs", n);
			return 1;
		}
		img_free(img, msg);
		n++;
	}
	img_close(img);
	if (ret < 0) {
		child_fail("img_read: %s", strerror(-ret));
		return 1;
	}
	if (n != a->f->nr[a->kind]) {
		child_fail("read %d entries, wrote %d", n, a->f->nr[a->kind]);
		return 1;
	}
	return 0;
}

/* The xstate regset of this CPU, as dump will save it, must pass the checks. */
static void test_host_xsave(int dirfd, struct fx *f)
{
	struct kerndat kd;
	struct roundtrip_arg a = { dirfd, f, IMG_CORE };
	uint8_t *xsave;
	char why[4200];
	bool ok;

	if (kerndat_probe(&kd) || !kd.has[KD_PTRACE_XSTATE] || !kd.xsave_size) {
		tap(true, "PTRACE_GETREGSET NT_X86_XSTATE unavailable",
		    "core with this CPU's xsave size is accepted");
		return;
	}
	xsave = calloc(1, kd.xsave_size);
	if (!xsave)
		exit(1);
	fx_init(f);
	f->th.xsave.data = xsave;
	f->th.xsave.len = kd.xsave_size;
	ok = !fx_write(dirfd, f, IMG_CORE) && run_forked(roundtrip_child, &a, why, sizeof(why));
	tap(ok, NULL, "core with this CPU's xsave size (%u bytes) is accepted", kd.xsave_size);
	if (!ok)
		diag("%s", why);
	fx_init(f);
	fx_write(dirfd, f, IMG_CORE);
	free(xsave);
}

/* Corruptions of one image: every truncation, every flipped byte. */
struct mangle_arg {
	int dirfd;
	enum img_kind kind;
	const uint8_t *orig;
	size_t len;
	size_t flip_end;	/* flip bytes [0, flip_end) */
	bool truncate;
	int accepted;		/* out via child_msg: how many decoded fine */
};

static int mangle_check(const struct mangle_arg *a, const char *what, size_t off, unsigned int x)
{
	int ret = read_all(a->dirfd, a->kind, NULL);

	if (ret == 0 || ret == -EINVAL)
		return ret;
	child_fail("%s at offset %zu (xor 0x%02x): unexpected result %d (%s)", what, off, x, ret,
		   strerror(-ret));
	return 1;
}

static int mangle_child(void *p)
{
	static const uint8_t masks[] = { 0x01, 0x80, 0xff, 0x7f };
	const struct mangle_arg *a = p;
	char name[64];
	uint8_t *buf = malloc(a->len);
	int fd, ret, accepted = 0, rejected = 0;

	img_name(a->kind, TEST_PID, name, sizeof(name));
	if (!buf || log_restart())
		return 1;
	/* Only rejections are logged; keep the log small. */
	log_fini();
	log_init("/dev/null", LOG_ERR);
	fd = openat(a->dirfd, name, O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		child_fail("open %s: %s", name, strerror(errno));
		return 1;
	}
	if (a->truncate) {
		for (size_t len = 0; len < a->len; len++) {
			snprintf(child_msg, 4096, "truncated to %zu bytes", len);
			if (ftruncate(fd, 0) || pwrite(fd, a->orig, len, 0) != (ssize_t)len)
				return 1;
			ret = mangle_check(a, "truncated", len, 0);
			if (ret > 0)
				return 1;
			ret ? rejected++ : accepted++;
		}
	} else {
		memcpy(buf, a->orig, a->len);
		if (ftruncate(fd, 0) || pwrite(fd, buf, a->len, 0) != (ssize_t)a->len)
			return 1;
		for (size_t off = 0; off < a->flip_end; off++) {
			for (size_t m = 0; m < sizeof(masks); m++) {
				snprintf(child_msg, 4096, "byte %zu xor 0x%02x", off, masks[m]);
				buf[off] = a->orig[off] ^ masks[m];
				if (pwrite(fd, buf + off, 1, off) != 1)
					return 1;
				ret = mangle_check(a, "flipped", off, masks[m]);
				if (ret > 0)
					return 1;
				ret ? rejected++ : accepted++;
			}
			buf[off] = a->orig[off];
			if (pwrite(fd, buf + off, 1, off) != 1)
				return 1;
		}
	}
	close(fd);
	free(buf);
	snprintf(child_msg, 4096, "%d rejected, %d decoded to valid entries", rejected, accepted);
	return 0;
}

static void test_mangle(int dirfd, enum img_kind kind, bool truncate, bool header_and_first)
{
	struct mangle_arg a = { .dirfd = dirfd, .kind = kind, .truncate = truncate };
	char name[64], why[4200];
	uint8_t *orig;
	size_t len;
	bool ok;

	img_name(kind, TEST_PID, name, sizeof(name));
	if (read_file(dirfd, name, &orig, &len)) {
		tap(false, NULL, "%s %s: cannot read the image", truncate ? "truncate" : "flip", name);
		return;
	}
	a.orig = orig;
	a.len = len;
	a.flip_end = len;
	if (header_and_first && len >= 12) {
		uint32_t elen;
		memcpy(&elen, orig + 8, 4);
		a.flip_end = 12 + elen < len ? 12 + elen : len;
	}
	ok = run_forked(mangle_child, &a, why, sizeof(why));
	if (truncate)
		tap(ok, NULL, "%s truncated at every length (%zu) rejected or valid", name, len);
	else
		tap(ok, NULL, "%s with a byte flipped at each of %zu offsets rejected or valid", name,
		    a.flip_end);
	diag("%s", why);
	/* The fuzzing rewrote the file; put the original back. */
	write_file(dirfd, name, orig, len);
	free(orig);
}

/* Raw edits of an image's bytes: expect a rejection whose log names file and field. */
struct raw_arg {
	int dirfd;
	enum img_kind kind;
	const char *expect;	/* a substring of the logged error */
	bool at_open;		/* rejected by img_open rather than img_read */
};

static int expect_log(const char *file, const char *expect)
{
	uint8_t *log;
	size_t len;
	int dirfd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int ret = 1;

	if (dirfd < 0 || read_file(dirfd, logpath + 1, &log, &len)) {
		child_fail("cannot read the log");
		goto out;
	}
	if (!strstr((char *)log, file))
		child_fail("the error does not name the file '%s': %.300s", file, log);
	else if (!strstr((char *)log, expect))
		child_fail("the error does not name '%s': %.300s", expect, log);
	else
		ret = 0;
	if (!ret) {
		/* Pass the message up for the TAP diagnostics. */
		char *line = strstr((char *)log, "Error"), *nl;

		if (line && (nl = strchr(line, '\n')))
			*nl = '\0';
		child_fail("%.300s", line ? line : "");
	}
	free(log);
out:
	if (dirfd >= 0)
		close(dirfd);
	return ret;
}

static int raw_child(void *p)
{
	const struct raw_arg *a = p;
	char name[64];
	struct img *img;
	void *msg;
	int ret;

	img_name(a->kind, TEST_PID, name, sizeof(name));
	if (log_restart()) {
		child_fail("cannot start the log");
		return 1;
	}
	img = img_open(a->dirfd, a->kind, TEST_PID, O_RDONLY);
	if (!img) {
		if (errno != EINVAL) {
			child_fail("img_open: %s, expected EINVAL", strerror(errno));
			return 1;
		}
		if (!a->at_open) {
			child_fail("rejected by img_open, not by a field check");
			return 1;
		}
		return expect_log(name, a->expect);
	}
	while ((ret = img_read(img, &msg)) > 0)
		img_free(img, msg);
	img_close(img);
	if (ret != -EINVAL) {
		child_fail("read returned %d, expected -EINVAL", ret);
		return 1;
	}
	return expect_log(name, a->expect);
}

static void test_rejected(int dirfd, enum img_kind kind, const char *expect, bool at_open,
			  const char *what)
{
	struct raw_arg a = { dirfd, kind, expect, at_open };
	char why[4200];
	bool ok = run_forked(raw_child, &a, why, sizeof(why));

	tap(ok, NULL, "%s rejected, the error names the file and '%s'", what, expect);
	if (why[0])
		diag("%s", why);
}

/* Rewrite one image with a mutated fixture, check it is rejected, restore it. */
typedef void (*mutate_fn)(struct fx *f);

static void mut_vma_reversed(struct fx *f)
{
	f->vma[1].start = 0x602000;
	f->vma[1].end = 0x600000;
}

static void mut_vma_unaligned(struct fx *f)
{
	f->vma[1].start = 0x600010;
}

static void mut_vma_overlap(struct fx *f)
{
	f->vma[1].start = 0x400000;
}

static void mut_vma_too_high(struct fx *f)
{
	f->vma[2].end = 1ull << 48;
}

static void mut_vma_file_id(struct fx *f)
{
	f->vma[0].file_id = 7;
}

static void mut_vma_no_file_id(struct fx *f)
{
	f->vma[2].has_file_id = 0;
}

static void mut_exe_file_id(struct fx *f)
{
	f->mm.exe_file_id = 2;
}

static void mut_mm_files_id(struct fx *f)
{
	f->mf[1].id = 5;
}

static void mut_auxv_odd(struct fx *f)
{
	f->mm.n_auxv = 3;
}

static void mut_nr_pages(struct fx *f)
{
	f->pm[1].vaddr = 0x7ffffff00000;
	f->pm[1].nr_pages = 0xffffffff;
}

static void mut_nr_pages_zero(struct fx *f)
{
	f->pm[0].nr_pages = 0;
}

static void mut_siginfo_size(struct fx *f)
{
	f->th_si.siginfo.len = 100;
}

static void mut_shared_siginfo_sig(struct fx *f)
{
	int sig = SIGKILL;

	memcpy(f->shared_si_data, &sig, sizeof(sig));
}

static void mut_sig0(struct fx *f)
{
	f->sa[1].sig = 0;
}

static void mut_sig65(struct fx *f)
{
	f->sa[1].sig = 65;
}

static void mut_sigkill(struct fx *f)
{
	f->sa[0].sig = SIGKILL;
}

static void mut_rlimit(struct fx *f)
{
	f->rl[1].resource = 99;
}

static void mut_rlimit_cur(struct fx *f)
{
	f->rl[0].cur = 5000;
}

static void mut_xsave_odd(struct fx *f)
{
	f->th.xsave.len = 2439;
}

static void mut_comm_long(struct fx *f)
{
	f->task.comm = (char *)"a-comm-of-sixteen";
}

static void mut_cwd_relative(struct fx *f)
{
	f->task.cwd = (char *)"tmp";
}

static void mut_no_threads(struct fx *f)
{
	f->core.n_threads = 0;
}

static void mut_pstree_leader(struct fx *f)
{
	f->ps_threads0[0] = 2;
	f->ps_threads0[1] = TEST_PID;
}

static void mut_pstree_pid(struct fx *f)
{
	f->ps[1].pid = 1u << 23;
}

static void mut_fd(struct fx *f)
{
	f->fdi[1].fd = 1u << 30;
}

static void mut_root_pids(struct fx *f)
{
	f->inv.n_root_pids = 0;
}

static void mut_page_size(struct fx *f)
{
	f->inv.page_size = 65536;
}

static void mut_file_kind(struct fx *f)
{
	f->file[1].kind = 99;
}

static void mut_file_no_reg(struct fx *f)
{
	f->file[0].reg = NULL;
}

static void mut_fifo_path(struct fx *f)
{
	f->fifo.path = NULL;
}

static void mut_pipe_data(struct fx *f)
{
	static uint8_t big[5000];

	f->pd.size = 4096;
	f->pd.data.data = big;
	f->pd.data.len = sizeof(big);
}

/* A string of len copies of c (a lowercase letter, digit or '_'). */
static char *fx_str(struct fx *f, size_t len, char c)
{
	memset(f->str, c, len);
	f->str[len] = '\0';
	return f->str;
}

/* Valid additions: each is a valid image on its own, and the base of hostile variants. */
static void ok_aio(struct fx *f)
{
	f->mm.aio_rings = f->aiop;
	f->mm.n_aio_rings = 2;
}

static void ok_aio_biggest(struct fx *f)
{
	/* The largest ring nr <= 1<<24 allows: 512 MiB, clear of every mapping. */
	f->aio[1].addr = 0x100000000000ull;
	f->aio[1].nr = (1u << 24) - 1;
	f->aio[1].len = 32 + 32ull * f->aio[1].nr;
	f->mm.aio_rings = &f->aiop[1];
	f->mm.n_aio_rings = 1;
}

static void ok_aio_top(struct fx *f)
{
	ok_aio(f);
	f->aio[1].addr = IMG_TASK_SIZE - 8192;	/* ends at the top of user space */
}

static void ok_shm(struct fx *f)
{
	f->vma[1].kind = VMA_KIND_SHARED_ANON;
	f->vma[1].flags = MAP_SHARED | MAP_ANONYMOUS;
	f->vma[1].has_shmid = 1;
	f->vma[1].shmid = 77;
	f->vma[1].has_shm_size = 1;
	f->vma[1].shm_size = 1ull << 46;
	f->vma[1].memfd = fx_str(f, 249, 'm');
	f->vma[1].name = (char *)"shm-name";
	f->vma[1].has_shm_pages_elsewhere = 1;
	f->vma[1].shm_pages_elsewhere = 1;
}

static void ok_cow_parent(struct fx *f)
{
	f->vma[1].has_cow_parent = 1;
	f->vma[1].cow_parent = 1;
}

static void ok_mm_ghost(struct fx *f)
{
	f->mf[1].has_ghost_id = 1;
	f->mf[1].ghost_id = 3;
}

static void ok_pagemap_parent(struct fx *f)
{
	f->pm[0].flags = PE_PARENT;
}

static void ok_inet(struct fx *f)
{
	f->file[1].kind = FILE_KIND__FILE_INET;
	f->file[1].flags = O_RDWR;
	f->file[1].pipe = NULL;
	f->file[1].inet_sk = &f->inet;
}

static void ok_udp(struct fx *f)
{
	static struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = 53 };

	ok_inet(f);
	f->inet.family = AF_INET;
	f->inet.type = SOCK_DGRAM;
	f->inet.state = 1;	/* a connected UDP socket has no sequence numbers */
	f->inet.local.data = f->inet.peer.data = (uint8_t *)&sin;
	f->inet.local.len = f->inet.peer.len = sizeof(sin);
	f->inet.has_snd_seq = f->inet.has_rcv_seq = 0;
	f->inet.has_unsent = f->inet.has_send_queue = 0;
	f->inet.has_snd_wscale = f->inet.has_rcv_wscale = 0;
}

static void ok_unix_listen(struct fx *f)
{
	f->file[1].kind = FILE_KIND__FILE_UNIX;
	f->file[1].flags = O_RDWR;
	f->file[1].pipe = NULL;
	f->file[1].unix_sk = &f->unx;
}

static void ok_unix_dgram(struct fx *f)
{
	ok_unix_listen(f);
	f->unx.type = SOCK_DGRAM;
	f->unx.ino = 200;
	f->unx.peer = 201;
	f->unx.state = 1;
	f->unx.has_backlog = 0;
	f->unx.pending = NULL;
	f->unx.n_pending = 0;
	f->unx.queue = f->unx_queue;
	f->unx.n_queue = 2;
	f->unx.queue_from = f->unx_from;
	f->unx.n_queue_from = 2;
	f->unx.dir = (char *)"/tmp";
	f->unx.name.data = (uint8_t *)"sock";
	f->unx.name.len = 4;
	f->unx.has_shutdown = 1;
	f->unx.shutdown = 3;
}

static void ok_eventfd_timerfd(struct fx *f)
{
	f->file[1].kind = FILE_KIND__FILE_EVENTFD;
	f->file[1].pipe = NULL;
	f->file[1].eventfd = &f->efd;
	f->file[2].kind = FILE_KIND__FILE_TIMERFD;
	f->file[2].pipe = NULL;
	f->file[2].timerfd = &f->tfd;
}

static void ok_epoll_inotify(struct fx *f)
{
	f->file[1].kind = FILE_KIND__FILE_EPOLL;
	f->file[1].pipe = NULL;
	f->file[1].epoll = &f->ep;
	f->file[2].kind = FILE_KIND__FILE_INOTIFY;
	f->file[2].pipe = NULL;
	f->file[2].inotify = &f->ino;
}

static void ok_signalfd(struct fx *f)
{
	f->file[1].kind = FILE_KIND__FILE_SIGNALFD;
	f->file[1].pipe = NULL;
	f->file[1].signalfd = &f->sfd;
}

static void ok_reg_ghost(struct fx *f)
{
	f->reg.has_ghost_id = 1;
	f->reg.ghost_id = 0;
}

static void ok_ghost(struct fx *f)
{
	f->msgs[IMG_GHOST][0] = (const ProtobufCMessage *)&f->ghost[0];
	f->msgs[IMG_GHOST][1] = (const ProtobufCMessage *)&f->ghost[1];
	f->nr[IMG_GHOST] = 2;
}

static void ok_ghost_biggest(struct fx *f)
{
	static uint8_t big[IMG_GHOST_MAX_DATA + 1];

	ok_ghost(f);
	f->ghost[0].size = IMG_GHOST_MAX_SIZE;
	f->ghost[0].off = IMG_GHOST_MAX_SIZE - IMG_GHOST_MAX_DATA;
	f->ghost[0].data.data = big;
	f->ghost[0].data.len = IMG_GHOST_MAX_DATA;
	f->ghost[0].id = (1u << 20) - 1;
	f->ghost[1].path = fx_str(f, 4095, 'p');
	f->str[0] = '/';
}

static void ok_locks(struct fx *f)
{
	f->fdi[0].locks = f->lockp;
	f->fdi[0].n_locks = 3;
}

static void ok_locks_64(struct fx *f)
{
	f->fdi[0].locks = f->lockp;
	f->fdi[0].n_locks = 64;
}

static void ok_core_extra(struct fx *f)
{
	f->task.has_stop_signal = 1;
	f->task.stop_signal = SIGTTOU;
	f->task.has_child_subreaper = 1;
	f->task.child_subreaper = 1;
	f->th.has_robust_list = 1;
	f->th.robust_list = 0x7f0012345750;
	f->th.has_robust_len = 1;
	f->th.robust_len = 4096;
	f->task.posix_timers = f->ptp;
	f->task.n_posix_timers = 2;
}

static void ok_timer_fired(struct fx *f)
{
	ok_core_extra(f);
	f->pt[0].value_ns = 0;
	f->pt[0].interval_ns = 0;	/* a one-shot that fired, its signal queued */
	f->pt[0].has_signal_pending = 1;
	f->pt[0].signal_pending = 1;
	f->pt[1].clock = CLOCK_TAI;
	f->pt[1].notify = SIGEV_THREAD;
	f->pt[1].signo = 1;
}

static ThreadCoreEntry *many_threads[65537];

static void core_threads(struct fx *f, size_t n)
{
	for (size_t i = 0; i < n; i++)
		many_threads[i] = &f->th_light;
	f->core.threads = many_threads;
	f->core.n_threads = n;
}

static void ok_core_threads(struct fx *f)
{
	core_threads(f, 65536);
}

static uint32_t many_tids[65537];

static void pstree_threads(struct fx *f, size_t n)
{
	for (size_t i = 0; i < n; i++)
		many_tids[i] = TEST_PID + i;
	f->ps[0].threads = many_tids;
	f->ps[0].n_threads = n;
}

static void ok_pstree_threads(struct fx *f)
{
	pstree_threads(f, 65536);
}

static void ok_zombie(struct fx *f)
{
	f->ps[1].has_zombie_status = 1;
	f->ps[1].zombie_status = 0xffff;
	f->ps[1].comm = (char *)"fifteen-bytes-z";
}

static void ok_net_lock(struct fx *f)
{
	f->inv.net_lock = fx_str(f, 63, 'a');
	memcpy(f->inv.net_lock, "ckpt_lock_0123456789", 20);
}

/* An incremental dump's inventory: its own ID, its parent's directory, ID and seq. */
static void ok_inv_delta(struct fx *f)
{
	f->inv.dump_id = (char *)TEST_DUMP_ID;
	f->inv.parent_images = (char *)"../i0";
	f->inv.parent_dump_id = (char *)TEST_PARENT_ID;
	f->inv.has_parent_changelog_seq = 1;
	f->inv.parent_changelog_seq = 41;
	f->inv.has_changelog_seq = 1;
	f->inv.changelog_seq = 42;
	f->inv.has_pages_after_thaw = 1;
	f->inv.pages_after_thaw = 1;
}

static void ok_inv_parent_long(struct fx *f)
{
	ok_inv_delta(f);
	f->inv.parent_images = fx_str(f, PATH_MAX - 1, 'p');
	f->inv.parent_images[0] = '/';
}

static void ok_pagemap_prev(struct fx *f)
{
	f->pm[0].flags = PE_PREV;
}

static void ok_delta_limits(struct fx *f)
{
	f->delta[1].pid = TEST_PID_MAX - 1;
	f->delta[1].state = DELTA_EXECED;
	f->delta[1].ppid = TEST_PID_MAX - 1;
	f->delta_new[0] = TEST_PID_MAX - 1;
	f->delta_added[2] = IMG_TASK_SIZE - 4096;
	f->delta_added[3] = IMG_TASK_SIZE;	/* ends at the top of user space */
	f->delta[1].reread = fx_str(f, 4096, 'r');
}

static void ok_delta_exited(struct fx *f)
{
	f->delta[1].state = DELTA_EXITED;
	f->delta[1].has_ppid = 0;
	f->delta[1].has_clone_flags = 0;
	f->delta[1].reread = NULL;
}

static const struct valid {
	const char *what;
	enum img_kind kind;
	mutate_fn mutate;
} valids[] = {
	{ "mm with two AIO rings just clear of mappings", IMG_MM, ok_aio },
	{ "mm with an AIO ring of 2^24-1 events", IMG_MM, ok_aio_biggest },
	{ "mm with an AIO ring at the top of user space", IMG_MM, ok_aio_top },
	{ "mm with a shared anonymous mapping (memfd name of 249 bytes, shm_size 2^46)", IMG_MM, ok_shm },
	{ "mm with a cow_parent mapping", IMG_MM, ok_cow_parent },
	{ "mm with a deleted map file", IMG_MM, ok_mm_ghost },
	{ "pagemap with a PE_PARENT run", IMG_PAGEMAP, ok_pagemap_parent },
	{ "established TCPv6 socket (unsent = send queue, wscale 14)", IMG_FILES, ok_inet },
	{ "connected UDPv4 socket without sequence numbers", IMG_FILES, ok_udp },
	{ "listening unix socket with a 108-byte name", IMG_FILES, ok_unix_listen },
	{ "unix datagram socket with queue, senders and dir", IMG_FILES, ok_unix_dgram },
	{ "eventfd and timerfd at their limits", IMG_FILES, ok_eventfd_timerfd },
	{ "epoll and inotify at their limits", IMG_FILES, ok_epoll_inotify },
	{ "signalfd", IMG_FILES, ok_signalfd },
	{ "deleted regular file", IMG_FILES, ok_reg_ghost },
	{ "ghost file of two entries", IMG_GHOST, ok_ghost },
	{ "ghost file of the largest size, extent, id and path", IMG_GHOST, ok_ghost_biggest },
	{ "fd with flock, POSIX and OFD locks at the range limits", IMG_FDINFO, ok_locks },
	{ "fd with 64 locks", IMG_FDINFO, ok_locks_64 },
	{ "core with stop signal, subreaper, robust list and posix timers", IMG_CORE, ok_core_extra },
	{ "core with a fired one-shot timer's signal pending", IMG_CORE, ok_timer_fired },
	{ "core with 65536 threads", IMG_CORE, ok_core_threads },
	{ "pstree with 65536 threads", IMG_PSTREE, ok_pstree_threads },
	{ "pstree with a zombie (status 0xffff, comm of 15)", IMG_PSTREE, ok_zombie },
	{ "inventory with a net_lock name of 63 bytes", IMG_INVENTORY, ok_net_lock },
	{ "inventory of a delta (dump ID, parent dir, ID and seq, pages_after_thaw)",
	  IMG_INVENTORY, ok_inv_delta },
	{ "inventory of a delta with an absolute parent_images of 4095 bytes", IMG_INVENTORY,
	  ok_inv_parent_long },
	{ "pagemap with a PE_PREV run", IMG_PAGEMAP, ok_pagemap_prev },
	{ "delta with PID, ppid, TID and a range at their limits, reread of 4096 bytes", IMG_DELTA,
	  ok_delta_limits },
	{ "delta with an exited process", IMG_DELTA, ok_delta_exited },
};

static void test_valid(int dirfd, struct fx *f, const struct valid *v)
{
	struct roundtrip_arg a = { dirfd, f, v->kind };
	char why[4200];
	bool ok;

	fx_init(f);
	v->mutate(f);
	ok = !fx_write(dirfd, f, v->kind) && run_forked(roundtrip_child, &a, why, sizeof(why));
	tap(ok, NULL, "%s reads back equal", v->what);
	if (!ok)
		diag("%s", why);
	fx_init(f);
	fx_write(dirfd, f, v->kind);
}

/* Hostile variants of the valid additions. */
static void mut_aio_in_vma(struct fx *f)
{
	ok_aio(f);
	f->aio[0].addr = 0x601000;
}

static void mut_aio_into_next_vma(struct fx *f)
{
	ok_aio(f);
	f->aio[1].addr += 4096;
}

static void mut_aio_unsorted(struct fx *f)
{
	ok_aio(f);
	f->aiop[0] = &f->aio[1];
	f->aiop[1] = &f->aio[0];
}

static void mut_aio_overlap(struct fx *f)
{
	ok_aio(f);
	f->aio[1].addr = 0x602000;
}

static void mut_aio_unaligned(struct fx *f)
{
	ok_aio(f);
	f->aio[0].addr = 0x602010;
}

static void mut_aio_past_top(struct fx *f)
{
	ok_aio(f);
	f->aio[1].addr = IMG_TASK_SIZE - 4096;
}

static void mut_aio_nr(struct fx *f)
{
	ok_aio(f);
	f->aio[0].nr = 126;	/* 4096 bytes hold 127 */
}

static void mut_aio_len(struct fx *f)
{
	ok_aio(f);
	f->aio[1].len = 4096;
}

static void mut_aio_nr_zero(struct fx *f)
{
	ok_aio(f);
	f->aio[0].nr = 0;
	f->aio[0].head = f->aio[0].tail = 0;
}

static void mut_aio_too_big(struct fx *f)
{
	ok_aio_biggest(f);
	f->aio[1].nr += 128;	/* the next whole-page size, above 1<<24 */
	f->aio[1].len = 32 + 32ull * f->aio[1].nr;
}

static void mut_aio_head(struct fx *f)
{
	ok_aio(f);
	f->aio[1].head = 255;
}

static void mut_aio_tail(struct fx *f)
{
	ok_aio(f);
	f->aio[0].tail = 127;
}

static void mut_aio_events_short(struct fx *f)
{
	ok_aio(f);
	f->aio[0].events.len = 32;
}

static void mut_aio_events_extra(struct fx *f)
{
	ok_aio(f);
	f->aio[1].has_events = 1;
	f->aio[1].events.data = f->aio_events;
	f->aio[1].events.len = 32;
}

static void mut_aio_count(struct fx *f)
{
	static AioRingEntry *many[65537];

	for (size_t i = 0; i < 65537; i++)
		many[i] = &f->aio[1];
	f->mm.aio_rings = many;
	f->mm.n_aio_rings = 65537;
}

static void mut_shm_no_shmid(struct fx *f)
{
	ok_shm(f);
	f->vma[1].has_shmid = 0;
}

static void mut_shm_size(struct fx *f)
{
	ok_shm(f);
	f->vma[1].shm_size = (1ull << 46) + 1;
}

static void mut_memfd_long(struct fx *f)
{
	ok_shm(f);
	f->vma[1].memfd = fx_str(f, 250, 'm');
}

static void mut_memfd_slash(struct fx *f)
{
	ok_shm(f);
	f->vma[1].memfd = (char *)"a/b";
}

static void mut_memfd_private(struct fx *f)
{
	f->vma[1].memfd = (char *)"private";
}

static void mut_mm_ghost_dir(struct fx *f)
{
	ok_mm_ghost(f);
	f->mf[1].mode = S_IFDIR | 0755;
}

static void mut_pagemap_both(struct fx *f)
{
	f->pm[0].flags = PE_PRESENT | PE_PARENT;
}

static void mut_pagemap_unknown(struct fx *f)
{
	f->pm[1].has_flags = 1;
	f->pm[1].flags = 8;	/* 4 is PE_PREV now */
}

static void mut_pagemap_zero(struct fx *f)
{
	f->pm[0].flags = 0;
}

static void mut_inet_missing(struct fx *f)
{
	ok_inet(f);
	f->file[1].inet_sk = NULL;
}

static void mut_inet_family(struct fx *f)
{
	ok_inet(f);
	f->inet.family = AF_UNIX;
}

static void mut_inet_type(struct fx *f)
{
	ok_inet(f);
	f->inet.type = SOCK_RAW;
}

static void mut_inet_local_len(struct fx *f)
{
	ok_inet(f);
	f->inet.local.len = sizeof(struct sockaddr_in);	/* for an IPv6 socket */
}

static void mut_inet_peer_len(struct fx *f)
{
	ok_inet(f);
	f->inet.peer.len = sizeof(struct sockaddr_in6) + 1;
}

static void mut_inet_peer_family(struct fx *f)
{
	ok_inet(f);
	f->inet_peer.sin6_family = AF_INET;
}

static void mut_inet_no_seq(struct fx *f)
{
	ok_inet(f);
	f->inet.has_rcv_seq = 0;
}

static void mut_inet_no_peer(struct fx *f)
{
	ok_inet(f);
	f->inet.has_peer = 0;
}

static void mut_inet_unsent(struct fx *f)
{
	ok_inet(f);
	f->inet.unsent = 17;
}

static void mut_inet_unsent_no_queue(struct fx *f)
{
	ok_inet(f);
	f->inet.has_send_queue = 0;
}

static void mut_inet_snd_wscale(struct fx *f)
{
	ok_inet(f);
	f->inet.snd_wscale = 15;
}

static void mut_inet_rcv_wscale(struct fx *f)
{
	ok_inet(f);
	f->inet.rcv_wscale = 15;
}

static void mut_unix_name_long(struct fx *f)
{
	ok_unix_listen(f);
	f->unx.name.len = 109;
}

static void mut_unix_name_empty(struct fx *f)
{
	ok_unix_listen(f);
	f->unx.name.len = 0;
}

static void mut_unix_state(struct fx *f)
{
	ok_unix_listen(f);
	f->unx.state = 2;	/* TCP_SYN_SENT */
}

static void mut_unix_pending_not_listening(struct fx *f)
{
	ok_unix_listen(f);
	f->unx.state = 1;
}

static void mut_unix_mode(struct fx *f)
{
	ok_unix_listen(f);
	f->unx.mode = S_IFREG | 0755;
}

static void mut_unix_type(struct fx *f)
{
	ok_unix_listen(f);
	f->unx.type = SOCK_RAW;
}

static void mut_unix_self_peer(struct fx *f)
{
	ok_unix_listen(f);
	f->unx.peer = f->unx.ino;
}

static void mut_unix_stream_queues(struct fx *f)
{
	ok_unix_listen(f);
	f->unx.queue = f->unx_queue;
	f->unx.n_queue = 2;
}

static void mut_unix_dgram_listen(struct fx *f)
{
	ok_unix_dgram(f);
	f->unx.state = 10;
}

static void mut_unix_from_count(struct fx *f)
{
	ok_unix_dgram(f);
	f->unx.n_queue_from = 1;
}

static void mut_unix_from_long(struct fx *f)
{
	ok_unix_dgram(f);
	f->unx_from[0].len = 109;
}

static void mut_unix_dir_relative(struct fx *f)
{
	ok_unix_dgram(f);
	f->unx.dir = (char *)"tmp";
}

static void mut_unix_dir_abstract(struct fx *f)
{
	ok_unix_dgram(f);
	f->unx.name.data = (uint8_t *)"\0abs";
}

static void mut_unix_dir_no_name(struct fx *f)
{
	ok_unix_dgram(f);
	f->unx.has_name = 0;
}

static void mut_unix_shutdown(struct fx *f)
{
	ok_unix_dgram(f);
	f->unx.shutdown = 4;
}

static void mut_eventfd_max(struct fx *f)
{
	ok_eventfd_timerfd(f);
	f->efd.counter = UINT64_MAX;
}

static void mut_eventfd_missing(struct fx *f)
{
	ok_eventfd_timerfd(f);
	f->file[1].eventfd = NULL;
}

static void mut_signalfd_missing(struct fx *f)
{
	ok_signalfd(f);
	f->file[1].signalfd = NULL;
}

static void mut_timerfd_missing(struct fx *f)
{
	ok_eventfd_timerfd(f);
	f->file[2].timerfd = NULL;
}

static void mut_timerfd_clock(struct fx *f)
{
	ok_eventfd_timerfd(f);
	f->tfd.clockid = CLOCK_PROCESS_CPUTIME_ID;
}

static void mut_timerfd_flags(struct fx *f)
{
	ok_eventfd_timerfd(f);
	f->tfd.flags = 4;
}

static void mut_timerfd_value(struct fx *f)
{
	ok_eventfd_timerfd(f);
	f->tfd.value_ns = TIMERFD_MAX_NS + 1;
}

static void mut_timerfd_interval(struct fx *f)
{
	ok_eventfd_timerfd(f);
	f->tfd.interval_ns = TIMERFD_MAX_NS + 1;
}

static void mut_timerfd_expires(struct fx *f)
{
	ok_eventfd_timerfd(f);
	f->tfd.expires_ns = UINT64_MAX;
}

static void mut_epoll_missing(struct fx *f)
{
	ok_epoll_inotify(f);
	f->file[1].epoll = NULL;
}

static void mut_epoll_tfd(struct fx *f)
{
	ok_epoll_inotify(f);
	f->ept.tfd = 1u << 20;
}

static void mut_epoll_self(struct fx *f)
{
	ok_epoll_inotify(f);
	f->ept.file_id = f->file[1].id;
}

static void mut_inotify_missing(struct fx *f)
{
	ok_epoll_inotify(f);
	f->file[2].inotify = NULL;
}

static void mut_inotify_wd_zero(struct fx *f)
{
	ok_epoll_inotify(f);
	f->wd[0].wd = 0;
}

static void mut_inotify_wd_high(struct fx *f)
{
	ok_epoll_inotify(f);
	f->wd[1].wd = (1u << 20) + 1;
}

static void mut_inotify_wd_order(struct fx *f)
{
	ok_epoll_inotify(f);
	f->wd[1].wd = 1;
}

static void mut_inotify_path(struct fx *f)
{
	ok_epoll_inotify(f);
	f->wd[1].path = (char *)"tmp";
}

static void mut_inotify_mask_none(struct fx *f)
{
	ok_epoll_inotify(f);
	f->wd[1].mask = 0x80000000;	/* IN_ONESHOT and no event */
}

static void mut_inotify_mask_bit(struct fx *f)
{
	ok_epoll_inotify(f);
	f->wd[1].mask = 0x1001;
}

static void mut_reg_ghost_dir(struct fx *f)
{
	ok_reg_ghost(f);
	f->reg.mode = S_IFDIR | 0755;
}

static void mut_reg_ghost_chr(struct fx *f)
{
	ok_reg_ghost(f);
	f->file[0].kind = FILE_KIND__FILE_CHR;
}

static void mut_ghost_id(struct fx *f)
{
	ok_ghost(f);
	f->ghost[1].id = 1u << 20;
}

static void mut_ghost_relative(struct fx *f)
{
	ok_ghost(f);
	f->ghost[0].path = (char *)"tmp/gone";
}

static void mut_ghost_path_long(struct fx *f)
{
	ok_ghost(f);
	f->ghost[1].path = fx_str(f, 4096, 'p');
	f->str[0] = '/';
}

static void mut_ghost_dir(struct fx *f)
{
	ok_ghost(f);
	f->ghost[0].mode = S_IFDIR | 0700;
}

static void mut_ghost_mode_bits(struct fx *f)
{
	ok_ghost(f);
	f->ghost[0].mode = S_IFREG | 0600 | (1u << 16);
}

static void mut_ghost_size(struct fx *f)
{
	ok_ghost(f);
	f->ghost[1].size = IMG_GHOST_MAX_SIZE + 1;
}

static void mut_ghost_data_no_off(struct fx *f)
{
	ok_ghost(f);
	f->ghost[0].has_off = 0;
}

static void mut_ghost_off_no_data(struct fx *f)
{
	ok_ghost(f);
	f->ghost[1].has_off = 1;
	f->ghost[1].off = 0;
}

static void mut_ghost_past_end(struct fx *f)
{
	ok_ghost(f);
	f->ghost[0].off = 91;
}

static void mut_ghost_off_beyond(struct fx *f)
{
	ok_ghost(f);
	f->ghost[0].off = 101;
	f->ghost[0].data.len = 0;
}

static void mut_ghost_extent_big(struct fx *f)
{
	ok_ghost_biggest(f);
	f->ghost[0].off--;
	f->ghost[0].data.len++;	/* still inside the file, one byte over the extent limit */
}

static void mut_lock_kind0(struct fx *f)
{
	ok_locks(f);
	f->lock[0].kind = 0;
}

static void mut_lock_kind4(struct fx *f)
{
	ok_locks(f);
	f->lock[2].kind = 4;
}

static void mut_lock_start(struct fx *f)
{
	ok_locks(f);
	f->lock[2].start = (uint64_t)INT64_MAX + 1;
}

static void mut_lock_len(struct fx *f)
{
	ok_locks(f);
	f->lock[1].len = (uint64_t)INT64_MAX + 1;
}

static void mut_lock_end(struct fx *f)
{
	ok_locks(f);
	f->lock[1].start = 1;	/* 1 + INT64_MAX */
}

static void mut_lock_count(struct fx *f)
{
	f->fdi[0].locks = f->lockp;
	f->fdi[0].n_locks = 65;
}

static void mut_stop_sigcont(struct fx *f)
{
	ok_core_extra(f);
	f->task.stop_signal = SIGCONT;
}

static void mut_stop_sigkill(struct fx *f)
{
	ok_core_extra(f);
	f->task.stop_signal = SIGKILL;
}

static void mut_robust_len(struct fx *f)
{
	ok_core_extra(f);
	f->th.robust_len = 4097;
}

static void mut_core_threads(struct fx *f)
{
	core_threads(f, 65537);
}

static void mut_timer_count(struct fx *f)
{
	static PosixTimerEntry *many[4097];

	ok_core_extra(f);
	for (size_t i = 0; i < 4097; i++)
		many[i] = &f->pt[1];
	f->task.posix_timers = many;
	f->task.n_posix_timers = 4097;
}

static void mut_timer_id_order(struct fx *f)
{
	ok_core_extra(f);
	f->pt[1].id = 0;
}

static void mut_timer_id_range(struct fx *f)
{
	ok_core_extra(f);
	f->pt[1].id = (uint32_t)INT32_MAX + 1;
}

static void mut_timer_clock_coarse(struct fx *f)
{
	ok_core_extra(f);
	f->pt[0].clock = CLOCK_REALTIME_COARSE;
}

static void mut_timer_clock_thread(struct fx *f)
{
	ok_core_extra(f);
	f->pt[1].clock = -14 | 4;	/* a per-thread CPU clock */
}

static void mut_timer_clock_max(struct fx *f)
{
	ok_core_extra(f);
	f->pt[1].clock = -16 | 3;	/* CPUCLOCK_MAX */
}

static void mut_timer_notify(struct fx *f)
{
	ok_core_extra(f);
	f->pt[0].notify = SIGEV_NONE | SIGEV_THREAD_ID;	/* SIGEV_SIGNAL is 0 */
}

static void mut_timer_signo0(struct fx *f)
{
	ok_core_extra(f);
	f->pt[0].signo = 0;
}

static void mut_timer_signo65(struct fx *f)
{
	ok_core_extra(f);
	f->pt[0].signo = 65;
}

static void mut_timer_no_tid(struct fx *f)
{
	ok_core_extra(f);
	f->pt[0].notify_tid = 2;	/* not a thread of the core */
}

static void mut_timer_stray_tid(struct fx *f)
{
	ok_core_extra(f);
	f->pt[1].has_notify_tid = 1;
	f->pt[1].notify_tid = TEST_PID;
}

static void mut_timer_value(struct fx *f)
{
	ok_core_extra(f);
	f->pt[0].value_ns = 1ull << 60;
}

static void mut_timer_interval(struct fx *f)
{
	ok_core_extra(f);
	f->pt[0].interval_ns = 1ull << 60;
}

static void mut_timer_overrun(struct fx *f)
{
	ok_core_extra(f);
	f->pt[0].overrun = (uint32_t)INT32_MAX + 1;
}

static void mut_timer_pending_none(struct fx *f)
{
	ok_core_extra(f);
	f->pt[1].has_signal_pending = 1;
	f->pt[1].signal_pending = 1;
}

static void mut_timer_pending_armed(struct fx *f)
{
	ok_timer_fired(f);
	f->pt[0].value_ns = 1000;	/* an armed one-shot has not fired */
}

static void mut_zombie_status(struct fx *f)
{
	ok_zombie(f);
	f->ps[1].zombie_status = 0x10000;
}

static void mut_zombie_comm(struct fx *f)
{
	ok_zombie(f);
	f->ps[1].comm = (char *)"sixteen-bytes-zz";
}

static void mut_zombie_threads(struct fx *f)
{
	f->ps[0].has_zombie_status = 1;
}

static void mut_pstree_threads(struct fx *f)
{
	pstree_threads(f, 65537);
}

static void mut_net_lock_empty(struct fx *f)
{
	f->inv.net_lock = (char *)"";
}

static void mut_net_lock_long(struct fx *f)
{
	f->inv.net_lock = fx_str(f, 64, 'a');
}

static void mut_net_lock_upper(struct fx *f)
{
	f->inv.net_lock = (char *)"ckpt_Lock";
}

static void mut_net_lock_dash(struct fx *f)
{
	f->inv.net_lock = (char *)"ckpt-lock";
}

static void mut_net_lock_space(struct fx *f)
{
	f->inv.net_lock = (char *)"ckpt lock";
}

static void mut_dump_id_short(struct fx *f)
{
	f->inv.dump_id = (char *)"0123456789abcdef0123456789abcde";
}

static void mut_dump_id_long(struct fx *f)
{
	f->inv.dump_id = (char *)TEST_DUMP_ID "0";
}

static void mut_dump_id_empty(struct fx *f)
{
	f->inv.dump_id = (char *)"";
}

static void mut_dump_id_upper(struct fx *f)
{
	f->inv.dump_id = (char *)"0123456789ABCDEF0123456789abcdef";
}

static void mut_dump_id_nonhex(struct fx *f)
{
	f->inv.dump_id = (char *)"0123456789abcdefg123456789abcdef";
}

static void mut_dump_id_uuid(struct fx *f)
{
	f->inv.dump_id = (char *)"01234567-89ab-cdef-0123-456789abcdef";
}

static void mut_parent_empty(struct fx *f)
{
	ok_inv_delta(f);
	f->inv.parent_images = (char *)"";
}

static void mut_parent_too_long(struct fx *f)
{
	ok_inv_delta(f);
	f->inv.parent_images = fx_str(f, PATH_MAX, 'p');
}

static void mut_parent_no_id(struct fx *f)
{
	ok_inv_delta(f);
	f->inv.parent_dump_id = NULL;
}

static void mut_parent_no_seq(struct fx *f)
{
	ok_inv_delta(f);
	f->inv.has_parent_changelog_seq = 0;
}

static void mut_parent_id_only(struct fx *f)
{
	ok_inv_delta(f);
	f->inv.parent_images = NULL;
	f->inv.has_parent_changelog_seq = 0;
}

static void mut_parent_seq_only(struct fx *f)
{
	ok_inv_delta(f);
	f->inv.parent_images = NULL;
	f->inv.parent_dump_id = NULL;
}

static void mut_parent_id_upper(struct fx *f)
{
	ok_inv_delta(f);
	f->inv.parent_dump_id = (char *)"FEDCBA9876543210FEDCBA9876543210";
}

static void mut_parent_id_short(struct fx *f)
{
	ok_inv_delta(f);
	f->inv.parent_dump_id = (char *)"fedcba98";
}

static void mut_parent_id_empty(struct fx *f)
{
	ok_inv_delta(f);
	f->inv.parent_dump_id = (char *)"";
}

static void mut_parent_seq_equal(struct fx *f)
{
	ok_inv_delta(f);
	f->inv.parent_changelog_seq = f->inv.changelog_seq;
}

static void mut_parent_seq_above(struct fx *f)
{
	ok_inv_delta(f);
	f->inv.parent_changelog_seq = UINT64_MAX;
}

static void mut_parent_own_seq_missing(struct fx *f)
{
	ok_inv_delta(f);
	f->inv.has_changelog_seq = 0;
}

static void mut_delta_pid0(struct fx *f)
{
	f->delta[0].pid = 0;
}

static void mut_delta_pid_max(struct fx *f)
{
	f->delta[1].pid = TEST_PID_MAX;
}

static void mut_delta_state0(struct fx *f)
{
	f->delta[0].state = 0;
}

static void mut_delta_state5(struct fx *f)
{
	f->delta[1].state = DELTA_EXECED + 1;
}

static void mut_delta_state_huge(struct fx *f)
{
	f->delta[1].state = UINT32_MAX;
}

static void mut_delta_ppid(struct fx *f)
{
	f->delta[1].ppid = TEST_PID_MAX;
}

static void mut_delta_new_tid0(struct fx *f)
{
	f->delta_new[0] = 0;
}

static void mut_delta_new_tid_max(struct fx *f)
{
	f->delta_new[0] = TEST_PID_MAX;
}

static void mut_delta_gone_tid0(struct fx *f)
{
	f->delta_gone[0] = 0;
}

static void mut_delta_gone_tid_max(struct fx *f)
{
	f->delta_gone[0] = UINT32_MAX;
}

static void mut_delta_added_odd(struct fx *f)
{
	f->delta[0].n_added = 3;
}

static void mut_delta_added_unsorted(struct fx *f)
{
	memcpy(f->delta_added, (uint64_t[]){ 0x500000, 0x502000, 0x400000, 0x401000 },
	       sizeof(f->delta_added));
}

static void mut_delta_added_overlap(struct fx *f)
{
	f->delta_added[2] = 0x400800;
}

static void mut_delta_removed_reversed(struct fx *f)
{
	f->delta_removed[0] = 0x602000;
}

static void mut_delta_removed_odd(struct fx *f)
{
	f->delta[0].n_removed = 1;
}

static void mut_delta_changed_empty(struct fx *f)
{
	f->delta_changed[1] = f->delta_changed[0];
}

static void mut_delta_touched_past_top(struct fx *f)
{
	f->delta_touched[3] = IMG_TASK_SIZE + 1;
}

static void mut_delta_touched_unsorted(struct fx *f)
{
	f->delta_touched[2] = 0x10800;
}

static void mut_delta_reread_long(struct fx *f)
{
	f->delta[1].reread = fx_str(f, 4097, 'r');
}

static void mut_pagemap_prev_present(struct fx *f)
{
	f->pm[0].flags = PE_PREV | PE_PRESENT;
}

static void mut_pagemap_prev_parent(struct fx *f)
{
	f->pm[0].flags = PE_PREV | PE_PARENT;
}

static const struct hostile {
	const char *what;
	enum img_kind kind;
	mutate_fn mutate;
	const char *field;
} hostiles[] = {
	{ "vma start > end", IMG_MM, mut_vma_reversed, "field 'vmas.end'" },
	{ "unaligned vma", IMG_MM, mut_vma_unaligned, "field 'vmas.start/end/pgoff'" },
	{ "overlapping vmas", IMG_MM, mut_vma_overlap, "field 'vmas.start'" },
	{ "vma above the user address space", IMG_MM, mut_vma_too_high, "field 'vmas.end'" },
	{ "vma file_id out of range", IMG_MM, mut_vma_file_id, "field 'vmas.file_id'" },
	{ "file vma without file_id", IMG_MM, mut_vma_no_file_id, "field 'vmas.file_id'" },
	{ "exe_file_id out of range", IMG_MM, mut_exe_file_id, "field 'exe_file_id'" },
	{ "map file id not its index", IMG_MM, mut_mm_files_id, "field 'files.id'" },
	{ "odd auxv", IMG_MM, mut_auxv_odd, "field 'auxv'" },
	{ "nr_pages overflow", IMG_PAGEMAP, mut_nr_pages, "field 'nr_pages'" },
	{ "nr_pages 0", IMG_PAGEMAP, mut_nr_pages_zero, "field 'nr_pages'" },
	{ "siginfo of the wrong size", IMG_CORE, mut_siginfo_size, "field 'threads.pending'" },
	{ "queued SIGKILL", IMG_CORE, mut_shared_siginfo_sig, "field 'task.shared_pending'" },
	{ "sigaction for signal 0", IMG_CORE, mut_sig0, "field 'task.sigactions.sig'" },
	{ "sigaction for signal 65", IMG_CORE, mut_sig65, "field 'task.sigactions.sig'" },
	{ "sigaction for SIGKILL", IMG_CORE, mut_sigkill, "field 'task.sigactions.sig'" },
	{ "rlimit resource 99", IMG_CORE, mut_rlimit, "field 'task.rlimits.resource'" },
	{ "rlimit cur above max", IMG_CORE, mut_rlimit_cur, "field 'task.rlimits.cur'" },
	{ "xsave of odd size", IMG_CORE, mut_xsave_odd, "field 'threads.xsave'" },
	{ "comm of 17 bytes", IMG_CORE, mut_comm_long, "field 'task.comm'" },
	{ "relative cwd", IMG_CORE, mut_cwd_relative, "field 'task.cwd/root'" },
	{ "core without threads", IMG_CORE, mut_no_threads, "field 'threads'" },
	{ "pstree threads not starting with the leader", IMG_PSTREE, mut_pstree_leader,
	  "field 'threads'" },
	{ "pstree pid above PID_MAX_LIMIT", IMG_PSTREE, mut_pstree_pid, "field 'pid'" },
	{ "fd 1<<30", IMG_FDINFO, mut_fd, "field 'fd'" },
	{ "inventory without root", IMG_INVENTORY, mut_root_pids, "field 'root_pids'" },
	{ "inventory page size 64K", IMG_INVENTORY, mut_page_size, "field 'page_size'" },
	{ "file kind 99", IMG_FILES, mut_file_kind, "field 'kind'" },
	{ "regular file without reg", IMG_FILES, mut_file_no_reg, "field 'reg'" },
	{ "FIFO without path", IMG_FILES, mut_fifo_path, "field 'pipe.path'" },
	{ "pipe data larger than the pipe", IMG_PIPES_DATA, mut_pipe_data, "field 'data'" },
	{ "AIO ring inside a mapping", IMG_MM, mut_aio_in_vma, "field 'aio_rings.addr'" },
	{ "AIO ring running one page into the next mapping", IMG_MM, mut_aio_into_next_vma,
	  "field 'aio_rings.addr'" },
	{ "AIO rings out of order", IMG_MM, mut_aio_unsorted, "field 'aio_rings.addr'" },
	{ "overlapping AIO rings", IMG_MM, mut_aio_overlap, "field 'aio_rings.addr'" },
	{ "unaligned AIO ring", IMG_MM, mut_aio_unaligned, "field 'aio_rings.addr'" },
	{ "AIO ring past the top of user space", IMG_MM, mut_aio_past_top, "field 'aio_rings.addr'" },
	{ "AIO ring nr not filling its pages", IMG_MM, mut_aio_nr, "field 'aio_rings.nr/len'" },
	{ "AIO ring len short of its nr", IMG_MM, mut_aio_len, "field 'aio_rings.nr/len'" },
	{ "AIO ring of 0 events", IMG_MM, mut_aio_nr_zero, "field 'aio_rings.nr/len'" },
	{ "AIO ring above 2^24 events", IMG_MM, mut_aio_too_big, "field 'aio_rings.nr/len'" },
	{ "AIO ring head = nr", IMG_MM, mut_aio_head, "field 'aio_rings.head/tail'" },
	{ "AIO ring tail = nr", IMG_MM, mut_aio_tail, "field 'aio_rings.head/tail'" },
	{ "AIO events short of (tail - head) mod nr", IMG_MM, mut_aio_events_short,
	  "field 'aio_rings.events'" },
	{ "AIO events on an empty ring", IMG_MM, mut_aio_events_extra, "field 'aio_rings.events'" },
	{ "65537 AIO rings", IMG_MM, mut_aio_count, "field 'aio_rings'" },
	{ "shared anonymous mapping without shmid", IMG_MM, mut_shm_no_shmid, "field 'vmas.shmid'" },
	{ "shm_size 2^46 + 1", IMG_MM, mut_shm_size, "field 'vmas.shm_size'" },
	{ "memfd name of 250 bytes", IMG_MM, mut_memfd_long, "field 'vmas.memfd'" },
	{ "memfd name with a slash", IMG_MM, mut_memfd_slash, "field 'vmas.memfd'" },
	{ "memfd name on a private mapping", IMG_MM, mut_memfd_private, "field 'vmas.memfd'" },
	{ "deleted map file that is a directory", IMG_MM, mut_mm_ghost_dir, "field 'files.ghost_id'" },
	{ "pagemap flags PE_PRESENT|PE_PARENT", IMG_PAGEMAP, mut_pagemap_both, "field 'flags'" },
	{ "pagemap flags 8", IMG_PAGEMAP, mut_pagemap_unknown, "field 'flags'" },
	{ "pagemap flags 0", IMG_PAGEMAP, mut_pagemap_zero, "field 'flags'" },
	{ "FILE_INET without inet_sk", IMG_FILES, mut_inet_missing, "field 'inet_sk':" },
	{ "inet socket of family AF_UNIX", IMG_FILES, mut_inet_family, "field 'inet_sk.family'" },
	{ "inet socket of type SOCK_RAW", IMG_FILES, mut_inet_type, "field 'inet_sk.type'" },
	{ "IPv6 socket with a sockaddr_in local address", IMG_FILES, mut_inet_local_len,
	  "field 'inet_sk.local/peer'" },
	{ "IPv6 peer address one byte long", IMG_FILES, mut_inet_peer_len, "field 'inet_sk.local/peer'" },
	{ "IPv6 socket with an AF_INET peer", IMG_FILES, mut_inet_peer_family,
	  "field 'inet_sk.local/peer'" },
	{ "established TCP without rcv_seq", IMG_FILES, mut_inet_no_seq, "field 'inet_sk':" },
	{ "established TCP without peer", IMG_FILES, mut_inet_no_peer, "field 'inet_sk':" },
	{ "TCP unsent one byte over the send queue", IMG_FILES, mut_inet_unsent, "field 'inet_sk.unsent'" },
	{ "TCP unsent without a send queue", IMG_FILES, mut_inet_unsent_no_queue,
	  "field 'inet_sk.unsent'" },
	{ "TCP snd_wscale 15", IMG_FILES, mut_inet_snd_wscale, "field 'inet_sk.snd_wscale/rcv_wscale'" },
	{ "TCP rcv_wscale 15", IMG_FILES, mut_inet_rcv_wscale, "field 'inet_sk.snd_wscale/rcv_wscale'" },
	{ "unix name of 109 bytes", IMG_FILES, mut_unix_name_long, "field 'unix_sk.name'" },
	{ "unix name of 0 bytes", IMG_FILES, mut_unix_name_empty, "field 'unix_sk.name'" },
	{ "unix state 2", IMG_FILES, mut_unix_state, "field 'unix_sk.state'" },
	{ "unix pending connections on a connected socket", IMG_FILES, mut_unix_pending_not_listening,
	  "field 'unix_sk.pending'" },
	{ "unix socket file mode of a regular file", IMG_FILES, mut_unix_mode, "field 'unix_sk.mode'" },
	{ "unix socket of type SOCK_RAW", IMG_FILES, mut_unix_type, "field 'unix_sk.type'" },
	{ "unix socket its own peer", IMG_FILES, mut_unix_self_peer, "field 'unix_sk.peer'" },
	{ "unix stream socket with two queues", IMG_FILES, mut_unix_stream_queues, "field 'unix_sk.queue'" },
	{ "listening unix datagram socket", IMG_FILES, mut_unix_dgram_listen, "field 'unix_sk.state'" },
	{ "unix senders fewer than messages", IMG_FILES, mut_unix_from_count, "field 'unix_sk.queue_from'" },
	{ "unix sender name of 109 bytes", IMG_FILES, mut_unix_from_long, "field 'unix_sk.queue_from'" },
	{ "unix relative dir", IMG_FILES, mut_unix_dir_relative, "field 'unix_sk.dir'" },
	{ "unix dir with an abstract name", IMG_FILES, mut_unix_dir_abstract, "field 'unix_sk.dir'" },
	{ "unix dir without a name", IMG_FILES, mut_unix_dir_no_name, "field 'unix_sk.dir'" },
	{ "unix shutdown 4", IMG_FILES, mut_unix_shutdown, "field 'unix_sk.shutdown'" },
	{ "eventfd counter UINT64_MAX", IMG_FILES, mut_eventfd_max, "field 'eventfd.counter'" },
	{ "FILE_EVENTFD without eventfd", IMG_FILES, mut_eventfd_missing, "field 'eventfd'" },
	{ "FILE_SIGNALFD without signalfd", IMG_FILES, mut_signalfd_missing, "field 'signalfd'" },
	{ "FILE_TIMERFD without timerfd", IMG_FILES, mut_timerfd_missing, "field 'timerfd'" },
	{ "timerfd on CLOCK_PROCESS_CPUTIME_ID", IMG_FILES, mut_timerfd_clock, "field 'timerfd.clockid'" },
	{ "timerfd flags 4", IMG_FILES, mut_timerfd_flags, "field 'timerfd.flags'" },
	{ "timerfd value one ns past a timespec", IMG_FILES, mut_timerfd_value, "field 'timerfd.value_ns'" },
	{ "timerfd interval one ns past a timespec", IMG_FILES, mut_timerfd_interval,
	  "field 'timerfd.value_ns'" },
	{ "timerfd expires UINT64_MAX", IMG_FILES, mut_timerfd_expires, "field 'timerfd.value_ns'" },
	{ "FILE_EPOLL without epoll", IMG_FILES, mut_epoll_missing, "field 'epoll'" },
	{ "epoll registration of fd 1<<20", IMG_FILES, mut_epoll_tfd, "field 'epoll.tfd.tfd'" },
	{ "epoll watching itself", IMG_FILES, mut_epoll_self, "field 'epoll.tfd.file_id'" },
	{ "FILE_INOTIFY without inotify", IMG_FILES, mut_inotify_missing, "field 'inotify'" },
	{ "inotify wd 0", IMG_FILES, mut_inotify_wd_zero, "field 'inotify.wd.wd'" },
	{ "inotify wd 2^20 + 1", IMG_FILES, mut_inotify_wd_high, "field 'inotify.wd.wd'" },
	{ "inotify wds not increasing", IMG_FILES, mut_inotify_wd_order, "field 'inotify.wd.wd'" },
	{ "inotify relative path", IMG_FILES, mut_inotify_path, "field 'inotify.wd.path'" },
	{ "inotify mask without events", IMG_FILES, mut_inotify_mask_none, "field 'inotify.wd.mask'" },
	{ "inotify mask with bit 0x1000", IMG_FILES, mut_inotify_mask_bit, "field 'inotify.wd.mask'" },
	{ "deleted file that is a directory", IMG_FILES, mut_reg_ghost_dir, "field 'reg.ghost_id'" },
	{ "deleted character device", IMG_FILES, mut_reg_ghost_chr, "field 'reg.ghost_id'" },
	{ "ghost id 2^20", IMG_GHOST, mut_ghost_id, "field 'id'" },
	{ "ghost relative path", IMG_GHOST, mut_ghost_relative, "field 'path'" },
	{ "ghost path of 4096 bytes", IMG_GHOST, mut_ghost_path_long, "field 'path'" },
	{ "ghost directory", IMG_GHOST, mut_ghost_dir, "field 'mode'" },
	{ "ghost mode with bits above S_IFMT", IMG_GHOST, mut_ghost_mode_bits, "field 'mode'" },
	{ "ghost size one over the limit", IMG_GHOST, mut_ghost_size, "field 'size'" },
	{ "ghost data without off", IMG_GHOST, mut_ghost_data_no_off, "field 'off'" },
	{ "ghost off without data", IMG_GHOST, mut_ghost_off_no_data, "field 'off'" },
	{ "ghost data one byte past the end", IMG_GHOST, mut_ghost_past_end, "field 'data'" },
	{ "ghost off past the size", IMG_GHOST, mut_ghost_off_beyond, "field 'data'" },
	{ "ghost extent one byte over the limit", IMG_GHOST, mut_ghost_extent_big, "field 'data'" },
	{ "lock kind 0", IMG_FDINFO, mut_lock_kind0, "field 'locks.kind'" },
	{ "lock kind 4", IMG_FDINFO, mut_lock_kind4, "field 'locks.kind'" },
	{ "lock start INT64_MAX + 1", IMG_FDINFO, mut_lock_start, "field 'locks.start/len'" },
	{ "lock len INT64_MAX + 1", IMG_FDINFO, mut_lock_len, "field 'locks.start/len'" },
	{ "lock ending at INT64_MAX + 1", IMG_FDINFO, mut_lock_end, "field 'locks.start/len'" },
	{ "65 locks on one fd", IMG_FDINFO, mut_lock_count, "field 'locks'" },
	{ "stop signal SIGCONT", IMG_CORE, mut_stop_sigcont, "field 'task.stop_signal'" },
	{ "stop signal SIGKILL", IMG_CORE, mut_stop_sigkill, "field 'task.stop_signal'" },
	{ "robust_len 4097", IMG_CORE, mut_robust_len, "field 'threads.robust_len'" },
	{ "core with 65537 threads", IMG_CORE, mut_core_threads, "field 'threads':" },
	{ "4097 posix timers", IMG_CORE, mut_timer_count, "field 'task.posix_timers'" },
	{ "posix timer ids not increasing", IMG_CORE, mut_timer_id_order, "field 'task.posix_timers.id'" },
	{ "posix timer id above INT32_MAX", IMG_CORE, mut_timer_id_range, "field 'task.posix_timers.id'" },
	{ "posix timer on CLOCK_REALTIME_COARSE", IMG_CORE, mut_timer_clock_coarse,
	  "field 'task.posix_timers.clock'" },
	{ "posix timer on a thread CPU clock", IMG_CORE, mut_timer_clock_thread,
	  "field 'task.posix_timers.clock'" },
	{ "posix timer on CPU clock type 3", IMG_CORE, mut_timer_clock_max,
	  "field 'task.posix_timers.clock'" },
	{ "posix timer notify SIGEV_NONE|SIGEV_THREAD_ID", IMG_CORE, mut_timer_notify,
	  "field 'task.posix_timers.notify'" },
	{ "posix timer signal 0", IMG_CORE, mut_timer_signo0, "field 'task.posix_timers.signo'" },
	{ "posix timer signal 65", IMG_CORE, mut_timer_signo65, "field 'task.posix_timers.signo'" },
	{ "posix timer for a thread not in the core", IMG_CORE, mut_timer_no_tid,
	  "field 'task.posix_timers.notify_tid'" },
	{ "posix timer notify_tid without SIGEV_THREAD_ID", IMG_CORE, mut_timer_stray_tid,
	  "field 'task.posix_timers.notify_tid'" },
	{ "posix timer value 2^60", IMG_CORE, mut_timer_value, "field 'task.posix_timers.value_ns'" },
	{ "posix timer interval 2^60", IMG_CORE, mut_timer_interval, "field 'task.posix_timers.value_ns'" },
	{ "posix timer overrun INT32_MAX + 1", IMG_CORE, mut_timer_overrun,
	  "field 'task.posix_timers.overrun'" },
	{ "SIGEV_NONE timer with its signal pending", IMG_CORE, mut_timer_pending_none,
	  "field 'task.posix_timers.signal_pending'" },
	{ "armed one-shot timer with its signal pending", IMG_CORE, mut_timer_pending_armed,
	  "field 'task.posix_timers.signal_pending'" },
	{ "zombie status 0x10000", IMG_PSTREE, mut_zombie_status, "field 'zombie_status'" },
	{ "zombie comm of 16 bytes", IMG_PSTREE, mut_zombie_comm, "field 'comm'" },
	{ "zombie with two threads", IMG_PSTREE, mut_zombie_threads, "field 'threads':" },
	{ "pstree with 65537 threads", IMG_PSTREE, mut_pstree_threads, "field 'threads':" },
	{ "empty net_lock", IMG_INVENTORY, mut_net_lock_empty, "field 'net_lock'" },
	{ "net_lock of 64 bytes", IMG_INVENTORY, mut_net_lock_long, "field 'net_lock'" },
	{ "net_lock with an uppercase letter", IMG_INVENTORY, mut_net_lock_upper, "field 'net_lock'" },
	{ "net_lock with a dash", IMG_INVENTORY, mut_net_lock_dash, "field 'net_lock'" },
	{ "net_lock with a space", IMG_INVENTORY, mut_net_lock_space, "field 'net_lock'" },
	{ "dump_id of 31 hex digits", IMG_INVENTORY, mut_dump_id_short, "field 'dump_id'" },
	{ "dump_id of 33 hex digits", IMG_INVENTORY, mut_dump_id_long, "field 'dump_id'" },
	{ "empty dump_id", IMG_INVENTORY, mut_dump_id_empty, "field 'dump_id'" },
	{ "dump_id in upper case", IMG_INVENTORY, mut_dump_id_upper, "field 'dump_id'" },
	{ "dump_id with a 'g'", IMG_INVENTORY, mut_dump_id_nonhex, "field 'dump_id'" },
	{ "dump_id in UUID form", IMG_INVENTORY, mut_dump_id_uuid, "field 'dump_id'" },
	{ "empty parent_images", IMG_INVENTORY, mut_parent_empty, "field 'parent_images'" },
	{ "parent_images of 4096 bytes", IMG_INVENTORY, mut_parent_too_long,
	  "field 'parent_images'" },
	{ "parent_images without parent_dump_id", IMG_INVENTORY, mut_parent_no_id,
	  "field 'parent_images'" },
	{ "parent_images without parent_changelog_seq", IMG_INVENTORY, mut_parent_no_seq,
	  "field 'parent_images'" },
	{ "parent_dump_id without parent_images", IMG_INVENTORY, mut_parent_id_only,
	  "field 'parent_images'" },
	{ "parent_changelog_seq without parent_images", IMG_INVENTORY, mut_parent_seq_only,
	  "field 'parent_images'" },
	{ "parent_dump_id in upper case", IMG_INVENTORY, mut_parent_id_upper,
	  "field 'parent_dump_id'" },
	{ "parent_dump_id of 8 hex digits", IMG_INVENTORY, mut_parent_id_short,
	  "field 'parent_dump_id'" },
	{ "empty parent_dump_id", IMG_INVENTORY, mut_parent_id_empty, "field 'parent_dump_id'" },
	{ "parent_changelog_seq equal to the delta's seq", IMG_INVENTORY, mut_parent_seq_equal,
	  "field 'parent_changelog_seq'" },
	{ "parent_changelog_seq UINT64_MAX, above the delta's seq", IMG_INVENTORY,
	  mut_parent_seq_above, "field 'parent_changelog_seq'" },
	{ "delta inventory without changelog_seq", IMG_INVENTORY, mut_parent_own_seq_missing,
	  "field 'parent_changelog_seq'" },
	{ "delta pid 0", IMG_DELTA, mut_delta_pid0, "field 'pid'" },
	{ "delta pid PID_MAX_LIMIT", IMG_DELTA, mut_delta_pid_max, "field 'pid'" },
	{ "delta state 0", IMG_DELTA, mut_delta_state0, "field 'state'" },
	{ "delta state 5", IMG_DELTA, mut_delta_state5, "field 'state'" },
	{ "delta state UINT32_MAX", IMG_DELTA, mut_delta_state_huge, "field 'state'" },
	{ "delta ppid PID_MAX_LIMIT", IMG_DELTA, mut_delta_ppid, "field 'ppid'" },
	{ "delta new thread 0", IMG_DELTA, mut_delta_new_tid0, "field 'new_threads'" },
	{ "delta new thread PID_MAX_LIMIT", IMG_DELTA, mut_delta_new_tid_max,
	  "field 'new_threads'" },
	{ "delta gone thread 0", IMG_DELTA, mut_delta_gone_tid0, "field 'gone_threads'" },
	{ "delta gone thread UINT32_MAX", IMG_DELTA, mut_delta_gone_tid_max,
	  "field 'gone_threads'" },
	{ "delta added of odd length", IMG_DELTA, mut_delta_added_odd, "field 'added'" },
	{ "delta added out of order", IMG_DELTA, mut_delta_added_unsorted, "field 'added'" },
	{ "delta added overlapping", IMG_DELTA, mut_delta_added_overlap, "field 'added'" },
	{ "delta removed start > end", IMG_DELTA, mut_delta_removed_reversed, "field 'removed'" },
	{ "delta removed of odd length", IMG_DELTA, mut_delta_removed_odd, "field 'removed'" },
	{ "delta changed start = end", IMG_DELTA, mut_delta_changed_empty, "field 'changed'" },
	{ "delta touched past the top of user space", IMG_DELTA, mut_delta_touched_past_top,
	  "field 'touched'" },
	{ "delta touched out of order", IMG_DELTA, mut_delta_touched_unsorted, "field 'touched'" },
	{ "delta reread of 4097 bytes", IMG_DELTA, mut_delta_reread_long, "field 'reread'" },
	{ "pagemap flags PE_PREV|PE_PRESENT", IMG_PAGEMAP, mut_pagemap_prev_present,
	  "field 'flags'" },
	{ "pagemap flags PE_PREV|PE_PARENT", IMG_PAGEMAP, mut_pagemap_prev_parent,
	  "field 'flags'" },
};

static void test_hostile(int dirfd, struct fx *f, const struct hostile *h)
{
	fx_init(f);
	h->mutate(f);
	if (fx_write(dirfd, f, h->kind)) {
		tap(false, NULL, "%s: cannot write the image", h->what);
		fx_init(f);
		return;
	}
	test_rejected(dirfd, h->kind, h->field, false, h->what);
	fx_init(f);
	fx_write(dirfd, f, h->kind);
}

/* Header and length-prefix damage, done on the bytes. */
static void test_raw(int dirfd, struct fx *f)
{
	char name[64];
	uint8_t *orig, *buf;
	size_t len;
	uint32_t v;

	img_name(IMG_PSTREE, TEST_PID, name, sizeof(name));
	if (read_file(dirfd, name, &orig, &len) || !(buf = malloc(len + 16))) {
		tap(false, NULL, "raw damage: cannot read %s", name);
		return;
	}

	memcpy(buf, orig, len);
	buf[0] ^= 0x20;
	write_file(dirfd, name, buf, len);
	test_rejected(dirfd, IMG_PSTREE, "field 'magic'", true, "wrong magic");

	memcpy(buf, orig, len);
	v = IMG_FORMAT_VERSION + 1;
	memcpy(buf + 4, &v, 4);
	write_file(dirfd, name, buf, len);
	test_rejected(dirfd, IMG_PSTREE, "field 'version'", true, "wrong version");

	memcpy(buf, orig, len);
	v = 0xffffffff;
	memcpy(buf + 8, &v, 4);
	write_file(dirfd, name, buf, len);
	test_rejected(dirfd, IMG_PSTREE, "length 4294967295", false, "entry length 0xffffffff");

	memcpy(buf, orig, len);
	v = len - 12 + 1;
	memcpy(buf + 8, &v, 4);
	write_file(dirfd, name, buf, len);
	test_rejected(dirfd, IMG_PSTREE, "runs past the end", false, "entry length just past EOF");

	/* The last entry's length says one byte more than is left. */
	memcpy(buf, orig, len);
	write_file(dirfd, name, buf, len - 1);
	test_rejected(dirfd, IMG_PSTREE, "runs past the end", false, "last entry cut by one byte");

	memcpy(buf, orig, len);
	memcpy(buf + len, "\x01\x00", 2);
	write_file(dirfd, name, buf, len + 2);
	test_rejected(dirfd, IMG_PSTREE, "truncated length", false, "trailing partial length");

	/* One flipped bit inside a message that still decodes: only the checksum tells. */
	memcpy(buf, orig, len);
	buf[len - 1] ^= 0x01;
	write_file(dirfd, name, buf, len);
	test_rejected(dirfd, IMG_PSTREE, "checksum mismatch", false, "flipped bit in a message");

	write_file(dirfd, name, buf, 5);
	test_rejected(dirfd, IMG_PSTREE, "truncated header", true, "5-byte file");

	/* A length of 3 over bytes that are no message, with a valid checksum. */
	memcpy(buf, orig, 8);
	memcpy(buf + 8, "\x03\x00\x00\x00", 4);
	memcpy(buf + 16, "\xff\xff\xff", 3);
	v = crc32c(crc32c(0, buf + 8, 4), buf + 16, 3);
	memcpy(buf + 12, &v, 4);
	write_file(dirfd, name, buf, 19);
	test_rejected(dirfd, IMG_PSTREE, "malformed PstreeEntry", false, "garbage entry");

	write_file(dirfd, name, orig, len);
	free(buf);
	free(orig);
	(void)f;
}

/*
 * A dump_id of 32 bytes on the wire with a NUL as its 17th: C sees 16 hex digits. The
 * codec cannot write it, so the byte is patched and the entry's checksum recomputed.
 */
static void test_dump_id_nul(int dirfd, struct fx *f)
{
	char name[64];
	uint8_t *buf, *at;
	size_t len;
	uint32_t elen, sum;

	fx_init(f);
	f->inv.dump_id = (char *)"0123456789abcdefX123456789abcdef";
	img_name(IMG_INVENTORY, TEST_PID, name, sizeof(name));
	if (fx_write(dirfd, f, IMG_INVENTORY) || read_file(dirfd, name, &buf, &len) || len < 16 ||
	    !(at = memmem(buf, len, "fX1", 3))) {
		tap(false, NULL, "dump_id with a NUL inside: cannot write the image");
		goto out;
	}
	at[1] = '\0';
	memcpy(&elen, buf + 8, 4);
	sum = crc32c(crc32c(0, buf + 8, 4), buf + 16, elen);
	memcpy(buf + 12, &sum, 4);
	write_file(dirfd, name, buf, len);
	free(buf);
	test_rejected(dirfd, IMG_INVENTORY, "field 'dump_id'", false, "dump_id with a NUL inside");
out:
	fx_init(f);
	fx_write(dirfd, f, IMG_INVENTORY);
}

/* `ckpt show`, run as a command with its output in files. */
static char ckpt_bin[PATH_MAX];

static int run_cmd(char *const argv[], const char *out, const char *err)
{
	int status;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int e = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (o < 0 || e < 0)
			_exit(127);
		dup2(o, STDOUT_FILENO);
		dup2(e, STDERR_FILENO);
		alarm(CHILD_TIMEOUT);	/* survives exec */
		execv(argv[0], argv);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

static bool find_ckpt(void)
{
	const char *env = getenv("CKPT");
	char self[PATH_MAX], *p;
	ssize_t n;

	if (env) {
		snprintf(ckpt_bin, sizeof(ckpt_bin), "%s", env);
		return access(ckpt_bin, X_OK) == 0;
	}
	/* build/selftests/image/image_test -> build/ckpt */
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n < 0)
		return false;
	self[n] = '\0';
	for (int i = 0; i < 3 && (p = strrchr(self, '/')); i++)
		*p = '\0';
	snprintf(ckpt_bin, sizeof(ckpt_bin), "%.4000s/ckpt", self);
	return access(ckpt_bin, X_OK) == 0;
}

static const char *find_python(void)
{
	static char path[PATH_MAX];
	const char *env = getenv("PATH");
	char *dirs, *dir, *save;

	if (!env)
		return NULL;
	dirs = strdup(env);
	for (dir = strtok_r(dirs, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
		snprintf(path, sizeof(path), "%.4000s/python3", dir);
		if (access(path, X_OK) == 0) {
			free(dirs);
			return path;
		}
	}
	free(dirs);
	return NULL;
}

/* A JSON check: valid per json.tool, plus a few facts about the document. */
static const char json_check[] =
	"import json, sys\n"
	"d = json.load(open(sys.argv[1], encoding='utf-8'))\n"
	"imgs = d['images']\n"
	"assert imgs[0]['file'] == 'inventory.img', imgs[0]\n"
	"assert imgs[1]['file'] == 'pstree.img', imgs[1]\n"
	"by = {i['file']: i for i in imgs}\n"
	"assert by['pages-1.img'] == {'file': 'pages-1.img', 'kind': 'pages', 'size': 8192, 'pages': 2}\n"
	"assert 'skipped' in by['notes.txt']\n"
	"inv = by['inventory.img']['entries'][0]\n"
	"assert inv['dump_time_ns'] == 0xfedcba9876543210, inv\n"
	"assert inv['boot_id'] == '0f1e2d3c-\"quoted\"\\\\back\\tslash', inv\n"
	"core = by['core-1.img']['entries'][0]\n"
	"assert len(core['threads'][0]['xsave']) == 4880\n"
	"assert core['threads'][0]['gpregs']['ip'] == 0x401234\n"
	"assert by['files.img']['entries'][1]['kind'] == 'FILE_PIPE'\n"
	"assert len(by['mm-1.img']['entries'][0]['vmas']) == 3\n";

static bool file_has(const char *path, const char *needle)
{
	int dirfd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	uint8_t *buf;
	size_t len;
	bool found = false;

	if (dirfd < 0)
		return false;
	if (!read_file(dirfd, path + 1, &buf, &len)) {
		found = strstr((char *)buf, needle) != NULL;
		free(buf);
	}
	close(dirfd);
	return found;
}

static void test_show(const char *good, const char *bad)
{
	char *out = join(tmpdir, "show.out"), *err = join(tmpdir, "show.err");
	char *badmm = join(bad, "mm-1.img");
	const char *py = find_python();
	int rc;

	if (!find_ckpt()) {
		const char *why = "build/ckpt is not built (set CKPT=path)";
		tap(true, why, "ckpt show: good dir, text");
		tap(true, why, "ckpt show: good dir, --json");
		tap(true, why, "ckpt show: good dir, JSON validates");
		tap(true, why, "ckpt show: corrupt mm-1.img exits 1 naming the field");
		tap(true, why, "ckpt show: corrupt dir, --json exits 1 with valid JSON");
		tap(true, why, "ckpt show: usage errors exit 2");
		goto out;
	}

	char *text[] = { ckpt_bin, (char *)"show", (char *)good, NULL };
	rc = run_cmd(text, out, err);
	tap(rc == 0 && file_has(out, "inventory.img: inventory") && file_has(out, "vmas[2]:") &&
	    file_has(out, "start: 0x400000") && file_has(out, "prot: r-x") &&
	    file_has(out, "kind: FILE_PIPE") && file_has(out, "... (2440 bytes)") &&
	    file_has(out, "notes.txt: skipped"),
	    NULL, "ckpt show: good dir, text");
	if (rc)
		diag("exit %d", rc);

	char *json[] = { ckpt_bin, (char *)"show", (char *)good, (char *)"--json", NULL };
	rc = run_cmd(json, out, err);
	tap(rc == 0, NULL, "ckpt show: good dir, --json");
	if (!py) {
		/* scripts/install-deps.sh installs python3: its absence is a failure. */
		tap(false, NULL, "ckpt show: good dir, JSON validates (python3 not found in PATH)");
	} else {
		char *tool[] = { (char *)py, (char *)"-m", (char *)"json.tool", out, NULL };
		char *facts[] = { (char *)py, (char *)"-c", (char *)json_check, out, NULL };
		char *pyout = join(tmpdir, "py.out"), *pyerr = join(tmpdir, "py.err");
		int rc1 = run_cmd(tool, pyout, pyerr);
		int rc2 = rc1 ? -1 : run_cmd(facts, pyout, pyerr);

		tap(rc1 == 0 && rc2 == 0, NULL, "ckpt show: good dir, JSON validates");
		if (rc1 || rc2)
			diag("json.tool exit %d, checks exit %d (see %s)", rc1, rc2, pyerr);
		free(pyout);
		free(pyerr);
	}

	char *one[] = { ckpt_bin, (char *)"show", badmm, NULL };
	rc = run_cmd(one, out, err);
	tap(rc == 1 && file_has(err, "mm-1.img") && file_has(err, "vmas.start"), NULL,
	    "ckpt show: corrupt mm-1.img exits 1 naming the field");
	if (rc != 1)
		diag("exit %d", rc);

	char *badjson[] = { ckpt_bin, (char *)"show", "--json", (char *)bad, NULL };
	rc = run_cmd(badjson, out, err);
	if (py) {
		char *tool[] = { (char *)py, (char *)"-m", (char *)"json.tool", out, NULL };
		char *pyout = join(tmpdir, "py.out"), *pyerr = join(tmpdir, "py.err");
		int rc1 = run_cmd(tool, pyout, pyerr);

		tap(rc == 1 && rc1 == 0 && file_has(err, "task.sigactions.sig"), NULL,
		    "ckpt show: corrupt dir, --json exits 1 with valid JSON");
		if (rc != 1 || rc1)
			diag("show exit %d, json.tool exit %d", rc, rc1);
		free(pyout);
		free(pyerr);
	} else {
		tap(rc == 1, NULL, "ckpt show: corrupt dir, --json exits 1 (JSON not validated: "
		    "no python3)");
	}

	char *noarg[] = { ckpt_bin, (char *)"show", NULL };
	char *badopt[] = { ckpt_bin, (char *)"show", (char *)"--bogus", (char *)good, NULL };
	char *two[] = { ckpt_bin, (char *)"show", (char *)good, (char *)good, NULL };
	int r1 = run_cmd(noarg, out, err), r2 = run_cmd(badopt, out, err);
	int r3 = run_cmd(two, out, err);

	tap(r1 == 2 && r2 == 2 && r3 == 2, NULL, "ckpt show: usage errors exit 2");
	if (r1 != 2 || r2 != 2 || r3 != 2)
		diag("exits %d %d %d", r1, r2, r3);
out:
	free(out);
	free(err);
	free(badmm);
}

/*
 * `ckpt show` of an incremental dump's images with hostile new fields, one file or the
 * whole (corrupt) directory, text or JSON: exit 1, stderr naming the file and the field.
 */
static const struct show_hostile {
	const char *what;
	enum img_kind kind;
	mutate_fn mutate;
	const char *field;
	bool whole_dir, json;
} show_hostiles[] = {
	/* what, image, mutation, field, whole directory, --json */
	{ "dump_id in upper case", IMG_INVENTORY, mut_dump_id_upper, "field 'dump_id'", false,
	  false },
	{ "parent_images without parent_dump_id", IMG_INVENTORY, mut_parent_no_id,
	  "field 'parent_images'", false, false },
	{ "malformed parent_dump_id", IMG_INVENTORY, mut_parent_id_short, "field 'parent_dump_id'",
	  false, true },
	{ "parent_changelog_seq equal to the delta's seq", IMG_INVENTORY, mut_parent_seq_equal,
	  "field 'parent_changelog_seq'", true, false },
	{ "delta state 5", IMG_DELTA, mut_delta_state5, "field 'state'", false, false },
	{ "delta added out of order", IMG_DELTA, mut_delta_added_unsorted, "field 'added'", false,
	  true },
	{ "delta reread of 4097 bytes", IMG_DELTA, mut_delta_reread_long, "field 'reread'", true,
	  false },
	{ "delta gone thread 0", IMG_DELTA, mut_delta_gone_tid0, "field 'gone_threads'", true,
	  true },
};

static void test_show_hostile(int dirfd, const char *dir, struct fx *f,
			      const struct show_hostile *h)
{
	char *out = join(tmpdir, "show.out"), *err = join(tmpdir, "show.err"), name[64], *path;
	char *argv[5] = { ckpt_bin, (char *)"show" };
	int argc = 2, rc;

	img_name(h->kind, TEST_PID, name, sizeof(name));
	path = h->whole_dir ? strdup(dir) : join(dir, name);
	if (!path)
		exit(1);
	if (h->json)
		argv[argc++] = (char *)"--json";
	argv[argc++] = path;
	argv[argc] = NULL;
	fx_init(f);
	h->mutate(f);
	if (fx_write(dirfd, f, h->kind)) {
		tap(false, NULL, "ckpt show: %s: cannot write the image", h->what);
	} else if (!find_ckpt()) {
		tap(true, "build/ckpt is not built (set CKPT=path)", "ckpt show: %s", h->what);
	} else {
		rc = run_cmd(argv, out, err);
		tap(rc == 1 && file_has(err, name) && file_has(err, h->field), NULL,
		    "ckpt show%s %s with %s: exits 1 naming %s and %s", h->json ? " --json" : "",
		    h->whole_dir ? "of the directory" : name, h->what, name, h->field);
		if (rc != 1)
			diag("exit %d%s", rc, rc > 128 ? " (killed by a signal)" : "");
	}
	fx_init(f);
	fx_write(dirfd, f, h->kind);
	free(path);
	free(out);
	free(err);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)remove(path);
	return 0;
}

int main(int argc, char **argv)
{
	static struct fx f;
	char *good, *bad;
	char why[4200];
	int gfd, bfd;

	snprintf(tmpdir, sizeof(tmpdir), "%s/ckpt-image-test.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(tmpdir)) {
		printf("Bail out! mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	snprintf(logpath, sizeof(logpath), "%.4000s/test.log", tmpdir);
	child_msg = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (child_msg == MAP_FAILED) {
		printf("Bail out! mmap: %s\n", strerror(errno));
		return 1;
	}
	good = join(tmpdir, "good");
	bad = join(tmpdir, "bad");
	if (mkdir(good, 0700) || mkdir(bad, 0700)) {
		printf("Bail out! mkdir: %s\n", strerror(errno));
		return 1;
	}
	gfd = open_dir(good);
	bfd = open_dir(bad);
	log_init(logpath, LOG_WARN);

	/* Valid images of every kind, written and read back. */
	fx_init(&f);
	for (int k = 0; k < IMG_NR_KINDS; k++) {
		int err = fx_write(gfd, &f, k);
		tap(!err, NULL, "write a valid %s image", img_kind_name(k));
		if (err)
			diag("img_write: %s", strerror(-err));
	}
	tap(!write_pages(gfd) && !write_file(gfd, "notes.txt", "hi\n", 3), NULL,
	    "write pages-1.img and a stray file");
	for (int k = 0; k < IMG_NR_KINDS; k++) {
		struct roundtrip_arg a = { gfd, &f, k };
		bool ok = run_forked(roundtrip_child, &a, why, sizeof(why));
		tap(ok, NULL, "%s image reads back equal", img_kind_name(k));
		if (!ok)
			diag("%s", why);
	}

	/* The same set in the bad dir, then damaged in place. */
	for (int k = 0; k < IMG_NR_KINDS; k++)
		fx_write(bfd, &f, k);
	test_host_xsave(bfd, &f);
	for (int k = 0; k < IMG_NR_KINDS; k++)
		test_mangle(bfd, k, true, false);
	test_mangle(bfd, IMG_PSTREE, false, true);
	for (int k = 0; k < IMG_NR_KINDS; k++)
		if (k != IMG_PSTREE)
			test_mangle(bfd, k, false, false);
	test_raw(bfd, &f);
	test_dump_id_nul(bfd, &f);
	for (size_t i = 0; i < sizeof(valids) / sizeof(valids[0]); i++)
		test_valid(bfd, &f, &valids[i]);
	for (size_t i = 0; i < sizeof(hostiles) / sizeof(hostiles[0]); i++)
		test_hostile(bfd, &f, &hostiles[i]);

	/* Leave two corrupt images for `ckpt show`. */
	fx_init(&f);
	mut_vma_overlap(&f);
	fx_write(bfd, &f, IMG_MM);
	fx_init(&f);
	mut_sig65(&f);
	fx_write(bfd, &f, IMG_CORE);
	test_show(good, bad);
	for (size_t i = 0; i < sizeof(show_hostiles) / sizeof(show_hostiles[0]); i++)
		test_show_hostile(bfd, bad, &f, &show_hostiles[i]);

	printf("TAP version 13\n1..%d\n", nr_results);
	for (int i = 0; i < nr_results; i++) {
		printf("%s\n", results[i]);
		free(results[i]);
	}
	printf("# %d passed, %d failed\n", nr_results - nr_failed, nr_failed);

	log_fini();
	close(gfd);
	close(bfd);
	if (!getenv("KEEP_TMP"))
		nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	else
		printf("# images kept in %s\n", tmpdir);
	free(good);
	free(bad);
	return nr_failed ? 1 : 0;
}
