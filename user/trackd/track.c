// SPDX-License-Identifier: MIT
/*
 * track.c: the loader of the BPF tracker (bpf/track.bpf.c) and the only
 * includer of track.skel.h.
 *
 * Classic tracepoints (syscalls:sys_exit_*) are attached by their perf event
 * ID, one PERF_TYPE_TRACEPOINT event with pid -1 on CPU 0 each: a BPF program
 * on a tracepoint event runs for every task on every CPU, whichever CPU the
 * event was opened on. libbpf's auto-attach reads the IDs from tracefs too,
 * but only from /sys/kernel/tracing or /sys/kernel/debug/tracing, and tracefs
 * is not always mounted: when it is not, a short-lived child mounts it in a
 * mount namespace of its own, reads the IDs and exits, so no mount is ever
 * visible to anyone else and none can be left behind.
 */
#define LOG_PREFIX "track: "
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/membarrier.h>
#include <linux/perf_event.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "log.h"
#include "track.h"
#include "track.skel.h"

#define TRACK_RING_DEFAULT	(4UL << 20)
#define TRACK_TRACKED_DEFAULT	65536
#define TRACK_LOST_DEFAULT	4096
#define TRACK_TRACEFS		"/sys/kernel/tracing"
#define TRACK_TP_SEC		"tracepoint/"
#define TRACK_TP_BTF_SEC	"tp_btf/"
/* The initial PID namespace's inode number: PROC_PID_INIT_INO, include/linux/proc_ns.h. */
#define TRACK_PID_INIT_INO	0xEFFFFFFCU
/* A kernel thread, in the flags of /proc/PID/stat: include/linux/sched.h. */
#define TRACK_PF_KTHREAD	0x00200000UL
#define TRACK_MAX_PROGS		32

struct track_prog {
	struct bpf_program *prog;
	int tp_id;		/* a classic tracepoint's perf event ID; 0 for the others */
	struct bpf_link *link;
};

struct track {
	struct track_bpf *skel;
	struct ring_buffer *rb;
	track_event_fn fn;
	void *data;
	int cb_ret;		/* the callback's nonzero return that stopped a poll */
	int nr_cpus;
	bool attached;
	size_t nr_progs;
	struct track_prog progs[];
};

/* libbpf's messages, one log line per line (a verifier log comes as one message). */
__attribute__((format(printf, 2, 0)))
static int track_libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	int ours = level == LIBBPF_WARN ? LOG_WARN : LOG_DEBUG;
	char *msg, *line, *save;

	if (ours > log_get_level() || vasprintf(&msg, fmt, ap) < 0)
		return 0;
	for (line = strtok_r(msg, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (level == LIBBPF_WARN)
			pr_warn("%s", line);
		else
			pr_debug("%s", line);
	}
	free(msg);
	return 0;
}

/*
 * Reads the whole file at path (relative to dir_fd) into buf, NUL-terminated: its length,
 * or -errno; -EFBIG when it does not fit in size - 1 bytes, rather than a silently shortened
 * text. Does not log.
 */
static ssize_t track_read_file(int dir_fd, const char *path, char *buf, size_t size)
{
	size_t len = 0;
	ssize_t n;
	int fd, err = 0;
	char more;

	fd = openat(dir_fd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* /proc and tracefs files may come in several reads: up to end of file. */
	for (;;) {
		if (len < size - 1)
			n = read(fd, buf + len, size - 1 - len);
		else
			n = read(fd, &more, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			err = -errno;
		else if (n > 0 && len == size - 1)
			err = -EFBIG;
		if (n <= 0 || err)
			break;
		len += n;
	}
	close(fd);
	if (err)
		return err;
	buf[len] = 0;
	return len;
}

/*
 * Whether /proc belongs to the initial PID namespace: its PID 2 is then kthreadd, a kernel
 * thread (PF_KTHREAD in the flags, field 9 of stat; readable without ptrace access). In any
 * other namespace PID 2 is a user process, if any.
 */
static bool track_proc_is_initial(void)
{
	char buf[4096], *p;
	unsigned long flags;
	ssize_t n;

	n = track_read_file(AT_FDCWD, "/proc/2/stat", buf, sizeof(buf));
	if (n == -EFBIG)
		pr_warn("'/proc/2/stat' is longer than %zu bytes: taking /proc as another PID "
			"namespace's", sizeof(buf) - 1);
	if (n <= 0)
		return false;
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %lu", &flags) != 1) {
		pr_warn("cannot parse '/proc/2/stat': taking /proc as another PID namespace's");
		return false;
	}
	return flags & TRACK_PF_KTHREAD;
}

/*
 * The caller's PID namespace: its inode number, and its level counted from
 * the NSpid line of /proc/self/status (one PID per level, from the namespace
 * of the /proc mount down). That is the absolute level only when /proc
 * belongs to the initial namespace; in a container with a /proc of its own
 * the level is TRACK_PIDNS_LEVEL_UNKNOWN and the tracker finds it.
 */
static int track_pidns(__u32 *ret_ino, __u32 *ret_level)
{
	char buf[16384], *p;
	struct stat self;
	int err, nr = 0;
	ssize_t n;

	if (stat("/proc/self/ns/pid", &self)) {
		err = -errno;
		pr_perror("cannot stat '/proc/self/ns/pid'");
		return err;
	}
	if (self.st_ino == TRACK_PID_INIT_INO) {
		*ret_ino = self.st_ino;
		*ret_level = 0;
		return 0;
	}
	if (!track_proc_is_initial()) {
		pr_debug("/proc is not the initial PID namespace's: the level of %lu is left to "
			 "the tracker", (unsigned long)self.st_ino);
		*ret_ino = self.st_ino;
		*ret_level = TRACK_PIDNS_LEVEL_UNKNOWN;
		return 0;
	}
	/* Groups: lists every supplementary group: a big buffer, and a clear error past it. */
	n = track_read_file(AT_FDCWD, "/proc/self/status", buf, sizeof(buf));
	if (n < 0) {
		pr_errno((int)n, "cannot read '/proc/self/status'%s",
			 n == -EFBIG ? " (longer than the buffer)" : "");
		return n;
	}
	p = strstr(buf, "\nNSpid:");
	if (p) {
		for (p += strlen("\nNSpid:"); ; nr++) {
			p += strspn(p, " \t");
			if (!*p || *p == '\n')
				break;
			p += strcspn(p, " \t\n");
		}
	}
	if (nr < 2) {
		pr_err("no NSpid line of a nested PID namespace in '/proc/self/status'");
		return -ENOTSUP;
	}
	*ret_ino = self.st_ino;
	*ret_level = nr - 1;
	return 0;
}

/*
 * The perf event ID in events_fd/<category>/<name>/id ("syscalls/sys_exit_mmap/id" for the
 * program in "tracepoint/syscalls/sys_exit_mmap"), or -errno: -EFBIG for a file longer than
 * an ID, -EINVAL for one that is not a positive decimal int and a newline. Does not log
 * (it runs in a child too): the caller names the program.
 */
static int track_read_tp_id(int events_fd, const struct track_prog *p)
{
	const char *sec = bpf_program__section_name(p->prog);
	char path[256], buf[32], *end;
	ssize_t n;
	long id;

	if ((size_t)snprintf(path, sizeof(path), "%s/id", sec + strlen(TRACK_TP_SEC)) >=
	    sizeof(path))
		return -ENAMETOOLONG;
	n = track_read_file(events_fd, path, buf, sizeof(buf));
	if (n < 0)
		return n;
	errno = 0;
	id = strtol(buf, &end, 10);
	if (errno || end == buf || strcmp(end, "\n") || id <= 0 || id > INT_MAX)
		return -EINVAL;
	return id;
}

static int track_read_tp_ids(struct track *t, int events_fd, int *ids)
{
	size_t n = 0;

	for (size_t i = 0; i < t->nr_progs; i++)
		if (t->progs[i].tp_id)
			ids[n++] = track_read_tp_id(events_fd, &t->progs[i]);
	return n;
}

/* The child of track_tp_ids_private(): never returns. */
static __attribute__((noreturn)) void track_tp_ids_child(struct track *t, const char *dir, int fd)
{
	int ids[TRACK_MAX_PROGS], events_fd;
	size_t n, len;

	/* Private first: a copied mount in a shared peer group would propagate back. */
	if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL)) {
		pr_perror("cannot make a private mount namespace");
		_exit(1);
	}
	if (mount("tracefs", dir, "tracefs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL)) {
		pr_perror("cannot mount tracefs on '%s'", dir);
		_exit(1);
	}
	events_fd = openat(AT_FDCWD, dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (events_fd >= 0) {
		int fd_root = events_fd;

		events_fd = openat(fd_root, "events", O_PATH | O_DIRECTORY | O_CLOEXEC);
		close(fd_root);
	}
	if (events_fd < 0) {
		pr_perror("cannot open '%s/events'", dir);
		_exit(1);
	}
	n = track_read_tp_ids(t, events_fd, ids);
	close(events_fd);
	(void)umount2(dir, MNT_DETACH);
	len = n * sizeof(ids[0]);
	_exit(write(fd, ids, len) == (ssize_t)len ? 0 : 1);
}

/* The IDs read in a child, from tracefs mounted on a temporary directory in its own namespace. */
static int track_tp_ids_private(struct track *t, int *ids, size_t n)
{
	const char *tmp = getenv("TMPDIR");
	char dir[PATH_MAX];
	int fds[2], status = 0, err = 0;
	size_t len = n * sizeof(ids[0]);
	ssize_t got;
	pid_t pid;

	if ((size_t)snprintf(dir, sizeof(dir), "%s/trackd-tracefs.XXXXXX",
			     tmp && *tmp ? tmp : "/tmp") >= sizeof(dir)) {
		pr_err("TMPDIR '%s' is too long for a tracefs mount point", tmp);
		return -ENAMETOOLONG;
	}
	if (!mkdtemp(dir)) {
		err = -errno;
		pr_perror("cannot create a directory for tracefs in '%s'", dir);
		return err;
	}
	if (pipe2(fds, O_CLOEXEC)) {
		err = -errno;
		pr_perror("cannot create a pipe");
		goto out_rmdir;
	}
	pid = fork();
	if (pid < 0) {
		err = -errno;
		pr_perror("cannot fork to read tracepoint IDs");
		close(fds[0]);
		close(fds[1]);
		goto out_rmdir;
	}
	if (pid == 0) {
		close(fds[0]);
		track_tp_ids_child(t, dir, fds[1]);
	}
	close(fds[1]);
	/* The child wrote them at once (less than PIPE_BUF: atomic); a short count is its failure. */
	got = 0;
	while ((size_t)got < len) {
		ssize_t n = read(fds[0], (char *)ids + got, len - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += n;
	}
	close(fds[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if ((size_t)got != len || !WIFEXITED(status) || WEXITSTATUS(status)) {
		pr_err("cannot read tracepoint IDs from a private tracefs mount (%zd of %zu bytes, "
		       "child status 0x%x)", got, len, status);
		err = -EIO;
	}
out_rmdir:
	if (rmdir(dir))
		pr_warn("cannot remove '%s': %s, ignoring", dir, strerror(errno));
	return err;
}

/* Resolves the perf event ID of every classic tracepoint program. */
static int track_tp_ids(struct track *t)
{
	int ids[TRACK_MAX_PROGS], events_fd, err = 0;
	size_t n = 0, k = 0;

	for (size_t i = 0; i < t->nr_progs; i++)
		n += t->progs[i].tp_id != 0;
	if (!n)
		return 0;
	events_fd = open(TRACK_TRACEFS "/events", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (events_fd >= 0) {
		track_read_tp_ids(t, events_fd, ids);
		close(events_fd);
	} else if (errno == ENOENT) {
		pr_debug("no tracefs on '%s', mounting a private one", TRACK_TRACEFS);
		err = track_tp_ids_private(t, ids, n);
		if (err)
			return err;
	} else {
		err = -errno;
		pr_perror("cannot open '%s'", TRACK_TRACEFS "/events");
		return err;
	}
	for (size_t i = 0; i < t->nr_progs; i++) {
		struct track_prog *p = &t->progs[i];

		if (!p->tp_id)
			continue;
		if (ids[k] < 0) {
			pr_errno(ids[k], "cannot read the tracepoint ID of '%s'",
				 bpf_program__section_name(p->prog));
			return ids[k];
		}
		p->tp_id = ids[k++];
	}
	return 0;
}

/*
 * BTF tracepoints the kernel lacks: sched_prepare_exec (6.10) only helps to
 * report an exec's old TID from a nested namespace, it can go; any other is
 * needed.
 */
static int track_probe_btf(struct track *t)
{
	struct btf *vmlinux = btf__load_vmlinux_btf();
	char name[128];
	int err = 0;

	if (!vmlinux) {
		err = -errno;
		pr_errno(err, "cannot load the kernel's BTF");
		return err;
	}
	for (size_t i = 0; i < t->nr_progs && !err; i++) {
		struct bpf_program *prog = t->progs[i].prog;
		const char *sec = bpf_program__section_name(prog);

		if (strncmp(sec, TRACK_TP_BTF_SEC, strlen(TRACK_TP_BTF_SEC)))
			continue;
		if ((size_t)snprintf(name, sizeof(name), "btf_trace_%s",
				     sec + strlen(TRACK_TP_BTF_SEC)) >= sizeof(name)) {
			pr_err("cannot look tracepoint '%s' up: its name is too long", sec);
			err = -ENAMETOOLONG;
			break;
		}
		if (btf__find_by_name_kind(vmlinux, name, BTF_KIND_TYPEDEF) >= 0)
			continue;
		if (prog == t->skel->progs.tp_btf_sched_prepare_exec) {
			pr_warn("no tracepoint '%s': an exec's old TID is reported only in the "
				"initial PID namespace, ignoring", sec);
			bpf_program__set_autoload(prog, false);
		} else {
			pr_err("no tracepoint '%s' in this kernel", sec);
			err = -ENOTSUP;
		}
	}
	btf__free(vmlinux);
	return err;
}

static int track_ring_cb(void *ctx, void *data, size_t len)
{
	struct track *t = ctx;
	int ret;

	if (len < TRACK_EVENT_SIZE_NOPATH) {
		pr_warn("record of %zu bytes, ignoring", len);
		return 0;
	}
	ret = t->fn(t->data, data, len);
	if (ret) {
		t->cb_ret = ret;
		return -ECANCELED;	/* libbpf stops on a negative return only */
	}
	return 0;
}

struct track *track_open(const struct track_opts *opts, track_event_fn fn, void *data)
{
	size_t ring = opts && opts->ring_size ? opts->ring_size : TRACK_RING_DEFAULT;
	size_t max_tracked = opts && opts->max_tracked ? opts->max_tracked : TRACK_TRACKED_DEFAULT;
	size_t max_lost = opts && opts->max_lost ? opts->max_lost : TRACK_LOST_DEFAULT;
	long page = sysconf(_SC_PAGESIZE);
	struct bpf_program *prog;
	struct track_bpf *skel;
	struct track *t = NULL;
	__u32 ino, level;
	size_t n = 0;
	int err;

	libbpf_set_print(track_libbpf_print);
	if (!fn || ring < (size_t)page || (ring & (ring - 1)) || max_tracked > UINT32_MAX ||
	    max_lost > UINT32_MAX) {
		pr_err("bad options: ring of %zu bytes, %zu tracked, %zu lost", ring, max_tracked,
		       max_lost);
		errno = EINVAL;
		return NULL;
	}
	err = track_pidns(&ino, &level);
	if (err)
		goto err_close;

	skel = track_bpf__open();
	if (!skel) {
		err = -errno;
		pr_errno(err, "cannot open the BPF object");
		goto err_close;
	}
	bpf_object__for_each_program(prog, skel->obj)
		n++;
	assert(n <= TRACK_MAX_PROGS);
	t = calloc(1, sizeof(*t) + n * sizeof(t->progs[0]));
	if (!t) {
		err = -ENOMEM;
		pr_err("out of memory");
		track_bpf__destroy(skel);
		goto err_close;
	}
	t->skel = skel;
	t->fn = fn;
	t->data = data;
	t->nr_progs = n;
	n = 0;
	bpf_object__for_each_program(prog, skel->obj) {
		t->progs[n].prog = prog;
		/* Marks a classic tracepoint until track_tp_ids() puts the ID there. */
		t->progs[n++].tp_id = !strncmp(bpf_program__section_name(prog), TRACK_TP_SEC,
					       strlen(TRACK_TP_SEC));
	}
	t->nr_cpus = libbpf_num_possible_cpus();
	if (t->nr_cpus <= 0) {
		err = t->nr_cpus ? t->nr_cpus : -EINVAL;
		pr_errno(err, "cannot count the possible CPUs");
		goto err_close;
	}

	skel->rodata->cfg_pidns_ino = ino;
	skel->rodata->cfg_pidns_level = level;
	skel->rodata->cfg_page_size = page;
	/* An eighth of the ring: the daemon's timer drains it long before it fills. */
	skel->rodata->cfg_wakeup_bytes = ring / 8;
	err = bpf_map__set_max_entries(skel->maps.events, ring);
	if (!err)
		err = bpf_map__set_max_entries(skel->maps.tracked, max_tracked);
	if (!err)
		err = bpf_map__set_max_entries(skel->maps.lost, max_lost);
	if (err) {
		pr_errno(err, "cannot size the maps");
		goto err_close;
	}
	err = track_probe_btf(t);
	if (err)
		goto err_close;
	err = track_tp_ids(t);
	if (err)
		goto err_close;
	err = track_bpf__load(skel);
	if (err) {
		pr_errno(err, "cannot load the BPF programs");
		goto err_close;
	}
	t->rb = ring_buffer__new(bpf_map__fd(skel->maps.events), track_ring_cb, t, NULL);
	if (!t->rb) {
		err = -errno;
		pr_errno(err, "cannot set up the ring buffer");
		goto err_close;
	}
	pr_debug("loaded for PID namespace %u at level %d, ring of %zu bytes", ino, (int)level,
		 ring);
	return t;
err_close:
	track_close(t);
	errno = -err;
	return NULL;
}

int track_add(struct track *t, pid_t tgid)
{
	__s32 key = tgid;
	__u8 one = 1;

	if (tgid <= 0)
		return -EINVAL;
	return bpf_map__update_elem(t->skel->maps.tracked, &key, sizeof(key), &one, sizeof(one),
				    BPF_ANY);
}

int track_del(struct track *t, pid_t tgid)
{
	__s32 key = tgid;

	return bpf_map__delete_elem(t->skel->maps.tracked, &key, sizeof(key), 0);
}

bool track_has(struct track *t, pid_t tgid)
{
	__s32 key = tgid;
	__u8 val;

	return !bpf_map__lookup_elem(t->skel->maps.tracked, &key, sizeof(key), &val, sizeof(val),
				     0);
}

/* Destroys every link (a classic tracepoint's owns its perf event); whether there was one. */
static bool track_unlink(struct track *t)
{
	bool any = false;

	for (size_t i = 0; i < t->nr_progs; i++) {
		any |= t->progs[i].link != NULL;
		bpf_link__destroy(t->progs[i].link);
		t->progs[i].link = NULL;
	}
	t->attached = false;
	return any;
}

/*
 * Once its link is closed a program is out of its hook's array (the link's release runs
 * before close() returns), but a run that had fetched the array may still be going: the
 * hooks run programs under rcu_read_lock() with preemption off, which is why the kernel
 * frees a detached raw tracepoint link only after an RCU grace period. membarrier's
 * MEMBARRIER_CMD_GLOBAL is synchronize_rcu() (kernel/sched/membarrier.c): once it returns,
 * every record a program reserved is committed or discarded.
 */
int track_detach(struct track *t)
{
	if (!track_unlink(t))
		return 0;
	if (syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0))
		pr_warn("cannot wait for running programs to finish: %s; a last record may "
			"arrive later, ignoring", strerror(errno));
	return 0;
}

/* A classic tracepoint: its perf event, which the link owns (and closes) from then on. */
static int track_attach_tp(struct track_prog *p)
{
	struct perf_event_attr attr = {
		.type = PERF_TYPE_TRACEPOINT,
		.size = sizeof(attr),
		.config = p->tp_id,
		.sample_period = 1,
		.wakeup_events = 1,
	};
	int pfd, err;

	pfd = syscall(SYS_perf_event_open, &attr, -1, 0, -1, PERF_FLAG_FD_CLOEXEC);
	if (pfd < 0) {
		err = -errno;
		pr_perror("cannot open a perf event for '%s'", bpf_program__section_name(p->prog));
		return err;
	}
	p->link = bpf_program__attach_perf_event(p->prog, pfd);
	if (!p->link) {
		err = -errno;
		close(pfd);
		pr_errno(err, "cannot attach '%s'", bpf_program__section_name(p->prog));
		return err;
	}
	return 0;
}

int track_attach(struct track *t)
{
	int err;

	if (t->attached)
		return -EALREADY;
	for (size_t i = 0; i < t->nr_progs; i++) {
		struct track_prog *p = &t->progs[i];

		if (!bpf_program__autoload(p->prog))
			continue;
		if (p->tp_id) {
			err = track_attach_tp(p);
			if (err)
				goto err_detach;
			continue;
		}
		p->link = bpf_program__attach(p->prog);
		if (!p->link) {
			err = -errno;
			pr_errno(err, "cannot attach '%s'", bpf_program__section_name(p->prog));
			goto err_detach;
		}
	}
	t->attached = true;
	return 0;
err_detach:
	(void)track_unlink(t);
	return err;
}

int track_fd(struct track *t)
{
	return ring_buffer__epoll_fd(t->rb);
}

int track_poll(struct track *t, int timeout_ms)
{
	int n = 0, m;

	t->cb_ret = 0;
	if (timeout_ms) {
		n = ring_buffer__poll(t->rb, timeout_ms);
		if (t->cb_ret)
			return t->cb_ret;
		if (n < 0)
			return n;
	}
	/* Whatever the wake-up did not cover: poll only reads the rings epoll reported. */
	m = ring_buffer__consume(t->rb);
	if (t->cb_ret)
		return t->cb_ret;
	if (m < 0)
		return m;
	return n + m;
}

int track_stats(struct track *t, struct track_stats *ret)
{
	uint64_t sum[TRACK_STAT_NR] = { 0 };
	__u64 *vals;
	int err = 0;

	vals = calloc(t->nr_cpus, sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	for (__u32 i = 0; i < TRACK_STAT_NR && !err; i++) {
		err = bpf_map__lookup_elem(t->skel->maps.stats, &i, sizeof(i), vals,
					   t->nr_cpus * sizeof(*vals), 0);
		for (int c = 0; c < t->nr_cpus && !err; c++)
			sum[i] += vals[c];
	}
	free(vals);
	if (err)
		return err;
	ret->events = sum[TRACK_STAT_EVENTS];
	ret->drops = sum[TRACK_STAT_DROPS];
	ret->tracked_full = sum[TRACK_STAT_TRACKED_FULL];
	ret->lost_unnamed = sum[TRACK_STAT_LOST_UNNAMED];
	return 0;
}

int track_take_lost(struct track *t, pid_t **ret, size_t *ret_n)
{
	struct bpf_map *map = t->skel->maps.lost;
	size_t max = bpf_map__max_entries(map), n = 0;
	__s32 key, *prev = NULL;
	pid_t *tgids;
	int err = 0;

	tgids = calloc(max ? max : 1, sizeof(*tgids));
	if (!tgids)
		return -ENOMEM;
	/* The BPF side only adds keys, so a walk without deleting sees each once. */
	while (n < max) {
		err = bpf_map__get_next_key(map, prev, &key, sizeof(key));
		if (err)
			break;
		tgids[n++] = key;
		prev = &key;
	}
	if (err && err != -ENOENT) {
		free(tgids);
		return err;
	}
	for (size_t i = 0; i < n; i++) {
		key = tgids[i];
		err = bpf_map__delete_elem(map, &key, sizeof(key), 0);
		if (err && err != -ENOENT) {
			free(tgids);
			return err;
		}
	}
	*ret = tgids;
	*ret_n = n;
	return 0;
}

static int track_cmp_pid(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;

	return (x > y) - (x < y);
}

/*
 * A batch lookup walks the hash map bucket by bucket, each copied whole under its lock: a
 * key the tracker inserts or deletes meanwhile is seen once or not at all, never twice
 * (bpf_map_get_next_key() restarts from the first bucket when its key was deleted). A
 * bucket that does not fit in what is left of the array stops the batch (-ENOSPC when
 * nothing was copied): the array grows and the walk goes on from that bucket.
 */
int track_list(struct track *t, pid_t **ret, size_t *ret_n)
{
	int fd = bpf_map__fd(t->skel->maps.tracked);
	size_t cap = bpf_map__max_entries(t->skel->maps.tracked), n = 0;
	pid_t *keys = NULL, *k;
	__u8 *vals = NULL, *v;
	__u32 batch, count;
	bool grow = true;
	void *in = NULL;
	int err;

	_Static_assert(sizeof(pid_t) == sizeof(__s32), "the keys of `tracked` are pid_t");
	for (;;) {
		if (grow) {
			size_t want = keys ? 2 * cap : cap;

			k = realloc(keys, want * sizeof(*keys));
			if (k)
				keys = k;
			v = realloc(vals, want * sizeof(*vals));
			if (v)
				vals = v;
			if (!k || !v) {
				err = -ENOMEM;
				goto out;
			}
			cap = want;
		}
		count = cap - n;
		err = bpf_map_lookup_batch(fd, in, &batch, keys + n, vals + n, &count, NULL);
		if (err && err != -ENOENT && err != -ENOSPC)
			goto out;
		n += count;
		if (err == -ENOENT)
			break;
		in = &batch;
		/* -ENOSPC: the next bucket holds more keys than there is room left for. */
		grow = err == -ENOSPC || n == cap;
	}
	qsort(keys, n, sizeof(*keys), track_cmp_pid);
	*ret = keys;
	*ret_n = n;
	keys = NULL;
	err = 0;
out:
	free(keys);
	free(vals);
	return err;
}

void track_close(struct track *t)
{
	if (!t)
		return;
	ring_buffer__free(t->rb);
	(void)track_unlink(t);
	track_bpf__destroy(t->skel);
	free(t);
}
