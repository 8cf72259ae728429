// SPDX-License-Identifier: MIT
#define LOG_PREFIX "proc: "
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "log.h"
#include "proc.h"

static void proc_path(pid_t pid, const char *name, char *buf, size_t len)
{
	if (pid)
		snprintf(buf, len, "/proc/%d/%s", pid, name);
	else
		snprintf(buf, len, "/proc/self/%s", name);
}

ssize_t proc_read_file(pid_t pid, const char *name, char *buf, size_t len)
{
	char path[64];
	ssize_t n, done = 0;
	int fd;

	proc_path(pid, name, path, sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		pr_debug("cannot open %s: %s", path, strerror(errno));
		return -errno;
	}
	while ((size_t)done < len - 1) {
		n = read(fd, buf + done, len - 1 - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int err = -errno;
			close(fd);
			return err;
		}
		if (n == 0)
			break;
		done += n;
	}
	close(fd);
	buf[done] = 0;
	return done;
}

int proc_readlink(pid_t pid, const char *name, char *buf, size_t len)
{
	char path[64];
	ssize_t n;

	proc_path(pid, name, path, sizeof(path));
	n = readlink(path, buf, len - 1);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	return 0;
}

static uint32_t parse_vmflags(const char *s)
{
	static const struct {
		char name[3];
		uint32_t bit;
	} map[] = {
		{ "gd", PROC_VMF_GROWSDOWN }, { "hg", PROC_VMF_HUGEPAGE }, { "nh", PROC_VMF_NOHUGEPAGE },
		{ "dd", PROC_VMF_DONTDUMP }, { "dc", PROC_VMF_DONTCOPY }, { "wf", PROC_VMF_WIPEONFORK },
		{ "lo", PROC_VMF_LOCKED }, { "pf", PROC_VMF_PFNMAP }, { "io", PROC_VMF_IO },
		{ "um", PROC_VMF_UFFD }, { "uw", PROC_VMF_UFFD_WP }, { "ui", PROC_VMF_UFFD },
		{ "sh", PROC_VMF_SHARED }, { "nr", PROC_VMF_NORESERVE },
	};
	uint32_t flags = 0;

	while (*s) {
		while (*s == ' ')
			s++;
		if (!s[0] || !s[1])
			break;
		for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
			if (s[0] == map[i].name[0] && s[1] == map[i].name[1])
				flags |= map[i].bit;
		s += 2;
	}
	return flags;
}

int proc_parse_maps(pid_t pid, bool smaps, struct proc_vma **ret, size_t *ret_n)
{
	char path[64], line[PATH_MAX + 256];
	struct proc_vma *v = NULL, *cur = NULL;
	size_t n = 0, cap = 0;
	FILE *f;

	proc_path(pid, smaps ? "smaps" : "maps", path, sizeof(path));
	f = fopen(path, "re");
	if (!f) {
		pr_debug("cannot open %s: %s", path, strerror(errno));
		return -errno;
	}
	while (fgets(line, sizeof(line), f)) {
		unsigned long long start, end, pgoff, ino;
		unsigned maj, min;
		char perms[8];
		int pos = 0;

		if (sscanf(line, "%llx-%llx %7s %llx %x:%x %llu %n", &start, &end, perms, &pgoff,
			   &maj, &min, &ino, &pos) == 7) {
			if (n == cap) {
				cap = cap ? cap * 2 : 64;
				struct proc_vma *nv = realloc(v, cap * sizeof(*v));
				if (!nv) {
					fclose(f);
					free(v);
					return -ENOMEM;
				}
				v = nv;
			}
			cur = &v[n++];
			memset(cur, 0, sizeof(*cur));
			cur->start = start;
			cur->end = end;
			cur->pgoff = pgoff;
			cur->dev_major = maj;
			cur->dev_minor = min;
			cur->ino = ino;
			cur->prot = (perms[0] == 'r' ? PROT_READ : 0) | (perms[1] == 'w' ? PROT_WRITE : 0) |
				    (perms[2] == 'x' ? PROT_EXEC : 0);
			cur->shared = perms[3] == 's';
			size_t len = strlen(line + pos);
			if (len && line[pos + len - 1] == '\n')
				line[pos + --len] = 0;
			snprintf(cur->path, sizeof(cur->path), "%s", line + pos);
			continue;
		}
		if (cur && !strncmp(line, "VmFlags:", 8))
			cur->vmflags = parse_vmflags(line + 8);
	}
	fclose(f);
	*ret = v;
	*ret_n = n;
	return 0;
}

int proc_parse_stat(pid_t pid, struct proc_stat *st)
{
	char buf[4096], *p, *q;
	unsigned long long f[64] = { 0 };
	ssize_t n = proc_read_file(pid, "stat", buf, sizeof(buf));
	int i;

	if (n < 0)
		return n;
	p = strchr(buf, '(');
	q = strrchr(buf, ')');
	if (!p || !q || q < p)
		return -EINVAL;
	memset(st, 0, sizeof(*st));
	snprintf(st->comm, sizeof(st->comm), "%.*s", (int)(q - p - 1), p + 1);
	p = q + 2;
	st->state = *p;
	p += 2;
	/* Field 4 onwards. */
	for (i = 4; i < 64 && *p; i++) {
		char *end;
		f[i] = strtoull(p, &end, 10);
		if (end == p)
			break;
		p = end;
		while (*p == ' ')
			p++;
	}
	if (i < 52)
		return -EINVAL;
	st->ppid = f[4];
	st->pgid = f[5];
	st->sid = f[6];
	st->num_threads = f[20];
	st->flags = f[9];
	st->start_code = f[26];
	st->end_code = f[27];
	st->start_stack = f[28];
	st->exit_signal = f[38];
	st->start_data = f[45];
	st->end_data = f[46];
	st->start_brk = f[47];
	st->arg_start = f[48];
	st->arg_end = f[49];
	st->env_start = f[50];
	st->env_end = f[51];
	st->exit_code = i > 52 ? (int)f[52] : 0;
	return 0;
}

int proc_parse_status(pid_t pid, struct proc_status *st)
{
	char buf[16384];
	ssize_t n = proc_read_file(pid, "status", buf, sizeof(buf));
	char *line, *save;

	if (n < 0)
		return n;
	memset(st, 0, sizeof(*st));
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (sscanf(line, "Uid: %u %u %u %u", &st->uid[0], &st->uid[1], &st->uid[2], &st->uid[3]) == 4)
			continue;
		if (sscanf(line, "Gid: %u %u %u %u", &st->gid[0], &st->gid[1], &st->gid[2], &st->gid[3]) == 4)
			continue;
		if (!strncmp(line, "Groups:", 7)) {
			char *p = line + 7, *end;
			for (;;) {
				unsigned long g = strtoul(p, &end, 10);
				if (end == p)
					break;
				if (st->nr_groups < 256)
					st->groups[st->nr_groups] = g;
				st->nr_groups++;
				p = end;
			}
			continue;
		}
		if (sscanf(line, "CapInh: %" SCNx64, &st->cap_inh) == 1 ||
		    sscanf(line, "CapPrm: %" SCNx64, &st->cap_prm) == 1 ||
		    sscanf(line, "CapEff: %" SCNx64, &st->cap_eff) == 1 ||
		    sscanf(line, "CapBnd: %" SCNx64, &st->cap_bnd) == 1 ||
		    sscanf(line, "CapAmb: %" SCNx64, &st->cap_amb) == 1 ||
		    sscanf(line, "Umask: %o", &st->umask) == 1 ||
		    sscanf(line, "NoNewPrivs: %d", &st->no_new_privs) == 1 ||
		    sscanf(line, "Seccomp: %d", &st->seccomp) == 1 ||
		    sscanf(line, "Seccomp_filters: %d", &st->seccomp_filters) == 1 ||
		    sscanf(line, "Threads: %d", &st->threads) == 1 ||
		    sscanf(line, "Tgid: %d", &st->tgid) == 1 ||
		    sscanf(line, "TracerPid: %d", &st->tracer) == 1 ||
		    sscanf(line, "SigPnd: %" SCNx64, &st->sig_pnd) == 1 ||
		    sscanf(line, "ShdPnd: %" SCNx64, &st->shd_pnd) == 1 ||
		    sscanf(line, "SigIgn: %" SCNx64, &st->sig_ign) == 1)
			continue;
	}
	return 0;
}

int proc_parse_fdinfo(pid_t pid, int fd, struct proc_fdinfo *fi)
{
	char name[32], buf[4096];
	ssize_t n;
	char *p;

	snprintf(name, sizeof(name), "fdinfo/%d", fd);
	n = proc_read_file(pid, name, buf, sizeof(buf));
	if (n < 0)
		return n;
	memset(fi, 0, sizeof(*fi));
	p = strstr(buf, "pos:");
	if (p)
		fi->pos = strtoull(p + 4, NULL, 10);
	p = strstr(buf, "flags:");
	if (p)
		fi->flags = strtoul(p + 6, NULL, 8);
	p = strstr(buf, "mnt_id:");
	if (p)
		fi->mnt_id = strtol(p + 7, NULL, 10);
	/* "lock:\t1: POSIX  ADVISORY  WRITE 1234 00:16:123 0 EOF" */
	for (p = strstr(buf, "lock:"); p; p = strstr(p + 5, "lock:")) {
		struct proc_lock *l = &fi->locks[fi->nr_locks < PROC_MAX_LOCKS ? fi->nr_locks : 0];
		char end[32];
		int id, lpid;
		unsigned maj, min;
		unsigned long ino;
		if (sscanf(p, "lock: %d: %15s %15s %15s %d %x:%x:%lu %" SCNu64 " %31s", &id, l->kind,
			   l->mode, l->access, &lpid, &maj, &min, &ino, &l->start, end) != 10)
			return -EINVAL;
		l->end = strcmp(end, "EOF") ? strtoull(end, NULL, 10) : UINT64_MAX;
		fi->nr_locks++;
	}
	return 0;
}
