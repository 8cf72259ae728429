// SPDX-License-Identifier: MIT
/*
 * mem_test: the address space survives dump and restore: private anonymous memory (heap,
 * stack, mmap, untouched and discarded pages), private and shared file mappings,
 * MAP_GROWSDOWN, PROT_NONE guards, brk, the arg/env/auxv areas and mm fields, the vDSO, and
 * the whole /proc/self/maps layout.
 *
 * Victims keep what they compare in static buffers: nothing is allocated between the
 * "before" snapshot and the check, so the layout itself does not move.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "cr.h"

#define PAGE 4096UL

CR_FIXTURE_LR(mem);


/* ---- private anonymous memory ---- */

#define ANON_PAGES	8192	/* 32 MiB */
#define DROP_PAGES	256

static int victim_anon(void *arg)
{
	size_t heap_small = 100 * 1024, heap_big = 1 << 20;
	unsigned char *small, *big, *area, *drop;
	unsigned char stack_buf[64 * 1024];
	static unsigned char vec[ANON_PAGES];
	uint64_t h_area = 0, h2;
	long bad;

	small = malloc(heap_small);	/* brk heap */
	big = malloc(heap_big);		/* mmap'd by malloc */
	CR_SETUP(small && big, "malloc");
	cr_fill(small, heap_small, 1);
	cr_fill(big, heap_big, 2);
	cr_fill(stack_buf, sizeof(stack_buf), 3);

	/* Every third page is never touched. */
	area = mmap(NULL, ANON_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		    -1, 0);
	CR_SETUP(area != MAP_FAILED, "mmap");
	for (size_t i = 0; i < ANON_PAGES; i++)
		if (i % 3 != 2) {
			cr_fill(area + i * PAGE, PAGE, 100 + i);
			h_area ^= cr_hash(area + i * PAGE, PAGE) + i;
		}

	/* Touched, then the middle quarter discarded. */
	drop = mmap(NULL, DROP_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		    -1, 0);
	CR_SETUP(drop != MAP_FAILED, "mmap");
	cr_fill(drop, DROP_PAGES * PAGE, 4);
	CR_SETUP(!madvise(drop + 96 * PAGE, 64 * PAGE, MADV_DONTNEED), "madvise");

	cr_victim_ready_wait();

	/* Untouched pages must still be absent (restore writes only dumped pages)... */
	CR_CHECK(!mincore(area, ANON_PAGES * PAGE, vec), "mincore: %s", strerror(errno));
	for (size_t i = 2; i < ANON_PAGES; i += 3)
		if (vec[i] & 1) {
			CR_CHECK(0, "untouched anon page %zu is resident after restore", i);
			break;
		}
	/* ...and read zero. */
	for (size_t i = 2; i < ANON_PAGES; i += 3)
		if (!cr_all_zero(area + i * PAGE, PAGE)) {
			CR_CHECK(0, "untouched anon page %zu is not zero", i);
			break;
		}
	h2 = 0;
	for (size_t i = 0; i < ANON_PAGES; i++)
		if (i % 3 != 2)
			h2 ^= cr_hash(area + i * PAGE, PAGE) + i;
	CR_CHECK(h2 == h_area, "anon mmap checksum %llx, expected %llx", (unsigned long long)h2,
		 (unsigned long long)h_area);
	for (size_t i = 0; i < ANON_PAGES && h2 != h_area; i++)
		if (i % 3 != 2 && (bad = cr_check_pattern(area + i * PAGE, PAGE, 100 + i)) >= 0) {
			CR_CHECK(0, "anon page %zu differs at byte %ld", i, bad);
			break;
		}

	bad = cr_check_pattern(small, heap_small, 1);
	CR_CHECK(bad < 0, "brk heap block differs at byte %ld", bad);
	bad = cr_check_pattern(big, heap_big, 2);
	CR_CHECK(bad < 0, "mmap'd heap block differs at byte %ld", bad);
	bad = cr_check_pattern(stack_buf, sizeof(stack_buf), 3);
	CR_CHECK(bad < 0, "stack buffer differs at byte %ld", bad);

	bad = cr_check_pattern(drop, 96 * PAGE, 4);
	CR_CHECK(bad < 0, "kept part before the discarded pages differs at byte %ld", bad);
	CR_CHECK(cr_all_zero(drop + 96 * PAGE, 64 * PAGE), "MADV_DONTNEED pages not zero");
	for (size_t i = 160 * PAGE; i < DROP_PAGES * PAGE; i++)
		if (drop[i] != cr_pattern(i, 4)) {
			CR_CHECK(0, "kept part after the discarded pages differs at byte %zu", i);
			break;
		}
	/* Memory still usable. */
	area[2 * PAGE] = 1;
	CR_CHECK(area[2 * PAGE] == 1, "write to untouched page lost");
	return cr_victim_result();
}

CR_CASE(mem, anon, .victim = victim_anon);

/* The same through the dump's fallback copy path (no pipes in the task). */
static int flow_no_splice(struct cr_run *r)
{
	setenv("CKPT_NO_SPLICE", "1", 1);
	return cr_flow_default(r);
}

CR_CASE(mem, anon_copy_path, .victim = victim_anon, .flow = flow_no_splice);

/* ---- file mappings ---- */

#define FILE_PAGES 8

static int make_file(const char *name, unsigned seed, char *ret_path)
{
	static unsigned char buf[FILE_PAGES * PAGE];
	int fd;

	snprintf(ret_path, PATH_MAX, "%s/%s", cr_victim_dir, name);
	fd = open(ret_path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	CR_SETUP(fd >= 0, "create '%s'", ret_path);
	cr_fill(buf, sizeof(buf), seed);
	CR_SETUP(write(fd, buf, sizeof(buf)) == (ssize_t)sizeof(buf), "write");
	return fd;
}

static int victim_file_private(void *arg)
{
	static unsigned char file[FILE_PAGES * PAGE];
	static char path[PATH_MAX];
	unsigned char *m;
	int fd, i;

	fd = make_file("private.dat", 5, path);
	m = mmap(NULL, FILE_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	CR_SETUP(m != MAP_FAILED, "mmap");
	close(fd);
	/* Read every page (page cache mapped), modify pages 1 and 5 (private copies). */
	for (i = 0; i < FILE_PAGES; i++)
		CR_SETUP(m[i * PAGE] == cr_pattern(i * PAGE, 5), "file content");
	memset(m + 1 * PAGE + 100, 0xA1, 1000);
	memset(m + 5 * PAGE, 0xA5, PAGE);

	cr_victim_ready_wait();

	fd = open(path, O_RDONLY);
	CR_CHECK(fd >= 0, "open '%s': %s", path, strerror(errno));
	if (fd < 0)
		return cr_victim_result();
	CR_CHECK(pread(fd, file, sizeof(file), 0) == (ssize_t)sizeof(file), "pread");
	close(fd);
	for (i = 0; i < FILE_PAGES; i++) {
		unsigned char want[PAGE];

		memcpy(want, file + i * PAGE, PAGE);
		if (i == 1)
			memset(want + 100, 0xA1, 1000);
		if (i == 5)
			memset(want, 0xA5, PAGE);
		CR_CHECK(!memcmp(m + i * PAGE, want, PAGE), "private file page %d: %s", i,
			 (i == 1 || i == 5) ? "private modification lost" : "differs from the file");
	}
	CR_CHECK(cr_check_pattern(file, sizeof(file), 5) < 0, "file changed on disk");
	return cr_victim_result();
}

CR_CASE(mem, file_private, .victim = victim_file_private);

static int victim_file_shared(void *arg)
{
	static unsigned char file[FILE_PAGES * PAGE];
	static char path[PATH_MAX];
	unsigned char *m;
	int fd;

	fd = make_file("shared.dat", 6, path);
	close(fd);
	fd = open(path, O_RDWR);
	CR_SETUP(fd >= 0, "open");
	m = mmap(NULL, FILE_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CR_SETUP(m != MAP_FAILED, "mmap");
	close(fd);
	memset(m + 2 * PAGE, 0x5A, 300);	/* lands in the file */

	cr_victim_ready_wait();

	fd = open(path, O_RDWR);
	CR_CHECK(fd >= 0, "open '%s': %s", path, strerror(errno));
	if (fd < 0)
		return cr_victim_result();
	CR_CHECK(pread(fd, file, sizeof(file), 0) == (ssize_t)sizeof(file), "pread");
	CR_CHECK(!memcmp(m, file, 7 * PAGE), "shared mapping differs from the file");
	for (int i = 0; i < 300; i++)
		if (m[2 * PAGE + i] != 0x5A) {
			CR_CHECK(0, "write through the shared mapping lost at byte %d", i);
			break;
		}
	/* Page 7 is written by each verification: mapping -> file, file -> mapping. */
	m[7 * PAGE + 10] = (unsigned char)(getpid() ^ 0x77);
	CR_CHECK(pread(fd, file, 16, 7 * PAGE) == 16, "pread");
	CR_CHECK(file[10] == m[7 * PAGE + 10], "store through the restored MAP_SHARED mapping "
		 "not seen in the file (0x%x vs 0x%x)", file[10], m[7 * PAGE + 10]);
	file[0] = 0xEE;
	CR_CHECK(pwrite(fd, file, 1, 7 * PAGE + 20) == 1, "pwrite");
	CR_CHECK(m[7 * PAGE + 20] == 0xEE, "pwrite to the file not seen in the mapping");
	close(fd);
	return cr_victim_result();
}

CR_CASE(mem, file_shared, .victim = victim_file_shared);

/* ---- /proc/self/maps helpers ---- */

struct vma {
	unsigned long start, end, off;
	char perms[8];
	char path[256];
};

/* Parses maps text into v[]; returns the count. */
static int parse_maps(const char *text, struct vma *v, int max)
{
	int n = 0;

	while (*text && n < max) {
		int pos = 0;

		memset(&v[n], 0, sizeof(v[n]));
		if (sscanf(text, "%lx-%lx %7s %lx %*s %*s%n", &v[n].start, &v[n].end, v[n].perms,
			   &v[n].off, &pos) >= 4) {
			const char *p = text + pos;
			size_t len;

			while (*p == ' ')
				p++;
			len = strcspn(p, "\n");
			if (len >= sizeof(v[n].path))
				len = sizeof(v[n].path) - 1;
			memcpy(v[n].path, p, len);
			n++;
		}
		text = strchr(text, '\n');
		if (!text)
			break;
		text++;
	}
	return n;
}

static const struct vma *find_vma(const struct vma *v, int n, unsigned long addr)
{
	for (int i = 0; i < n; i++)
		if (addr >= v[i].start && addr < v[i].end)
			return &v[i];
	return NULL;
}

/* VmFlags of the smaps entry starting at addr. */
static int smaps_flags(unsigned long addr, char *buf, size_t size)
{
	static char text[1 << 20];
	char key[32];
	const char *p;

	if (cr_read_file("/proc/self/smaps", text, sizeof(text)) <= 0)
		return -1;
	snprintf(key, sizeof(key), "%lx-", addr);
	for (p = text; p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (strncmp(p, key, strlen(key)))
			continue;
		p = strstr(p, "VmFlags:");
		if (!p)
			return -1;
		p += 8;
		snprintf(buf, size, "%.*s", (int)strcspn(p, "\n"), p);
		return 0;
	}
	return -1;
}

/* ---- MAP_GROWSDOWN and PROT_NONE guards ---- */

static int victim_growsdown_guard(void *arg)
{
	static char maps[65536], flags[256];
	static struct vma v[512];
	unsigned char *gd, *three;
	const struct vma *e;
	int n;

	gd = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN, -1, 0);
	CR_SETUP(gd != MAP_FAILED, "mmap MAP_GROWSDOWN");
	cr_fill(gd, 4 * PAGE, 7);

	/* rw- | --- | rw- : a guard page between two mappings */
	three = mmap(NULL, 3 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CR_SETUP(three != MAP_FAILED, "mmap");
	cr_fill(three, 3 * PAGE, 8);
	CR_SETUP(!mprotect(three + PAGE, PAGE, PROT_NONE), "mprotect");

	cr_victim_ready_wait();

	CR_CHECK(cr_check_pattern(gd, 4 * PAGE, 7) < 0, "MAP_GROWSDOWN contents differ");
	CR_CHECK(cr_check_pattern(three, PAGE, 8) < 0, "page below the guard differs");
	for (size_t i = 2 * PAGE; i < 3 * PAGE; i++)
		if (three[i] != cr_pattern(i, 8)) {
			CR_CHECK(0, "page above the guard differs at %zu", i - 2 * PAGE);
			break;
		}
	CR_CHECK(cr_read_file("/proc/self/maps", maps, sizeof(maps)) > 0, "read maps");
	n = parse_maps(maps, v, 512);
	e = find_vma(v, n, (unsigned long)three + PAGE);
	CR_CHECK(e && !strcmp(e->perms, "---p") && e->start == (unsigned long)three + PAGE &&
		 e->end == (unsigned long)three + 2 * PAGE,
		 "guard page: %s %lx-%lx, expected ---p %p-%p", e ? e->perms : "missing",
		 e ? e->start : 0, e ? e->end : 0, three + PAGE, three + 2 * PAGE);
	e = find_vma(v, n, (unsigned long)three);
	CR_CHECK(e && !strcmp(e->perms, "rw-p"), "below guard: %s", e ? e->perms : "missing");
	e = find_vma(v, n, (unsigned long)gd);
	CR_CHECK(e && e->end == (unsigned long)gd + 4 * PAGE && !strcmp(e->perms, "rw-p"),
		 "MAP_GROWSDOWN vma %s %lx-%lx", e ? e->perms : "missing", e ? e->start : 0,
		 e ? e->end : 0);
	if (e) {
		CR_CHECK(!smaps_flags(e->start, flags, sizeof(flags)), "smaps entry missing");
		CR_CHECK(strstr(flags, " gd") != NULL, "MAP_GROWSDOWN vma lost VM_GROWSDOWN "
			 "(VmFlags:%s)", flags);
	}
	return cr_victim_result();
}

CR_CASE(mem, growsdown_guard, .victim = victim_growsdown_guard);

/* ---- brk ---- */

static int victim_brk(void *arg)
{
	unsigned char *start, *end, *more;
	size_t len = 40 * PAGE + 123;

	start = sbrk(0);
	CR_SETUP(sbrk(len) == start, "sbrk");
	end = sbrk(0);
	cr_fill(start, len, 9);

	cr_victim_ready_wait();

	CR_CHECK(sbrk(0) == end, "sbrk(0) %p, expected %p", sbrk(0), end);
	CR_CHECK(cr_check_pattern(start, len, 9) < 0, "brk area contents differ at %ld",
		 cr_check_pattern(start, len, 9));
	more = sbrk(8 * PAGE);
	CR_CHECK(more == end, "sbrk(+8 pages) returned %p, expected %p", more, end);
	if (more == end) {
		memset(more, 0x42, 8 * PAGE);
		CR_CHECK(more[8 * PAGE - 1] == 0x42, "grown brk not writable");
		CR_CHECK(sbrk(0) == end + 8 * PAGE, "brk did not move");
	}
	return cr_victim_result();
}

CR_CASE(mem, brk, .victim = victim_brk);

/* ---- arg/env/auxv areas and mm fields ---- */

/* Fields 26-28 (start_code end_code start_stack) and 45-51 (start_data .. env_end). */
static int stat_mm_fields(unsigned long *f)
{
	static char buf[4096];
	const char *p;
	int field = 3, k = 0;

	if (cr_read_file("/proc/self/stat", buf, sizeof(buf)) <= 0)
		return -1;
	p = strrchr(buf, ')');
	if (!p)
		return -1;
	p += 2;			/* field 3 */
	while (*p && field <= 51) {
		if ((field >= 26 && field <= 28) || (field >= 45 && field <= 51))
			f[k++] = strtoul(p, NULL, 10);
		p = strchr(p, ' ');
		if (!p)
			break;
		p++;
		field++;
	}
	return k == 10 ? 0 : -1;
}

extern char **environ;

static int victim_args_auxv(void *arg)
{
	static char cmdline[8192], env[65536], auxv[4096], now[65536];
	static unsigned long stat_before[10], stat_now[10];
	static const char *const stat_names[] = {
		"start_code", "end_code", "start_stack", "start_data", "end_data",
		"start_brk", "arg_start", "arg_end", "env_start", "env_end",
	};
	ssize_t cmd_len, env_len, auxv_len, n;
	unsigned char rnd[16];
	uint64_t env_hash = 0;
	unsigned long pagesz;

	cmd_len = cr_read_file("/proc/self/cmdline", cmdline, sizeof(cmdline));
	env_len = cr_read_file("/proc/self/environ", env, sizeof(env));
	auxv_len = cr_read_file("/proc/self/auxv", auxv, sizeof(auxv));
	CR_SETUP(cmd_len > 0 && env_len >= 0 && auxv_len > 0, "read /proc/self files");
	memcpy(rnd, (void *)getauxval(AT_RANDOM), 16);
	pagesz = getauxval(AT_PAGESZ);
	for (char **e = environ; *e; e++)
		env_hash ^= cr_hash(*e, strlen(*e)) + (e - environ);
	CR_SETUP(!stat_mm_fields(stat_before), "parse /proc/self/stat");

	cr_victim_ready_wait();

	n = cr_read_file("/proc/self/cmdline", now, sizeof(now));
	CR_CHECK(n == cmd_len && !memcmp(now, cmdline, n), "/proc/self/cmdline changed");
	n = cr_read_file("/proc/self/environ", now, sizeof(now));
	CR_CHECK(n == env_len && !memcmp(now, env, n), "/proc/self/environ changed");
	n = cr_read_file("/proc/self/auxv", now, sizeof(now));
	CR_CHECK(n == auxv_len && !memcmp(now, auxv, n), "/proc/self/auxv changed");
	CR_CHECK(!memcmp(rnd, (void *)getauxval(AT_RANDOM), 16), "AT_RANDOM bytes changed");
	CR_CHECK(getauxval(AT_PAGESZ) == pagesz, "AT_PAGESZ %lu", getauxval(AT_PAGESZ));
	{
		uint64_t h = 0;

		for (char **e = environ; *e; e++)
			h ^= cr_hash(*e, strlen(*e)) + (e - environ);
		CR_CHECK(h == env_hash, "environ strings changed");
	}
	CR_CHECK(!stat_mm_fields(stat_now), "parse /proc/self/stat");
	for (int i = 0; i < 10; i++)
		CR_CHECK(stat_now[i] == stat_before[i], "/proc/self/stat %s 0x%lx, expected 0x%lx",
			 stat_names[i], stat_now[i], stat_before[i]);
	return cr_victim_result();
}

CR_CASE(mem, args_auxv, .victim = victim_args_auxv);

/* ---- vDSO ---- */

static long ts_ns(const struct timespec *t)
{
	return t->tv_sec * 1000000000L + t->tv_nsec;
}

static int victim_vdso(void *arg)
{
	static char maps[65536];
	static struct vma v[512];
	struct timespec before, sys1, vd, sys2, rt_sys, rt_vd;
	unsigned long vdso_start = 0, vdso_end = 0, ehdr;
	int n;

	CR_SETUP(cr_read_file("/proc/self/maps", maps, sizeof(maps)) > 0, "read maps");
	n = parse_maps(maps, v, 512);
	for (int i = 0; i < n; i++)
		if (!strcmp(v[i].path, "[vdso]")) {
			vdso_start = v[i].start;
			vdso_end = v[i].end;
		}
	ehdr = getauxval(AT_SYSINFO_EHDR);
	if (!vdso_start || !ehdr)
		CR_VICTIM_SKIP("no vDSO in this process");
	clock_gettime(CLOCK_MONOTONIC, &before);

	cr_victim_ready_wait();

	/* glibc calls the vDSO at the address it found at start-up. */
	syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &sys1);
	clock_gettime(CLOCK_MONOTONIC, &vd);
	syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &sys2);
	CR_CHECK(ts_ns(&vd) >= ts_ns(&before), "CLOCK_MONOTONIC went back: %ld < %ld",
		 ts_ns(&vd), ts_ns(&before));
	CR_CHECK(ts_ns(&sys1) <= ts_ns(&vd) && ts_ns(&vd) <= ts_ns(&sys2),
		 "vDSO CLOCK_MONOTONIC %ld not between syscalls %ld and %ld", ts_ns(&vd),
		 ts_ns(&sys1), ts_ns(&sys2));
	syscall(SYS_clock_gettime, CLOCK_REALTIME, &rt_sys);
	clock_gettime(CLOCK_REALTIME, &rt_vd);
	CR_CHECK(ts_ns(&rt_vd) >= ts_ns(&rt_sys) && ts_ns(&rt_vd) - ts_ns(&rt_sys) < 1000000000L,
		 "vDSO CLOCK_REALTIME %ld vs syscall %ld", ts_ns(&rt_vd), ts_ns(&rt_sys));

	CR_CHECK(cr_read_file("/proc/self/maps", maps, sizeof(maps)) > 0, "read maps");
	n = parse_maps(maps, v, 512);
	{
		unsigned long s = 0, e = 0;
		bool vvar = false;

		for (int i = 0; i < n; i++) {
			if (!strcmp(v[i].path, "[vdso]")) {
				s = v[i].start;
				e = v[i].end;
			}
			if (!strcmp(v[i].path, "[vvar]"))
				vvar = true;
		}
		CR_CHECK(s == vdso_start && e == vdso_end, "[vdso] at %lx-%lx, was %lx-%lx", s, e,
			 vdso_start, vdso_end);
		CR_CHECK(vvar, "no [vvar] after restore");
	}
	CR_CHECK(getauxval(AT_SYSINFO_EHDR) == vdso_start, "AT_SYSINFO_EHDR %lx, [vdso] %lx",
		 getauxval(AT_SYSINFO_EHDR), vdso_start);
	CR_CHECK(!memcmp((void *)vdso_start, "\177ELF", 4), "[vdso] does not start with an ELF header");
	return cr_victim_result();
}

CR_CASE(mem, vdso, .victim = victim_vdso);

/* ---- whole layout ---- */

static bool skip_vma(const struct vma *v)
{
	return !strcmp(v->path, "[vsyscall]");
}

/* Read-only private mappings (code, rodata, relro) never change: checksum them. */
static bool hashed_vma(const struct vma *v)
{
	return v->perms[0] == 'r' && v->perms[1] != 'w' && strcmp(v->path, "[vvar]") &&
	       strcmp(v->path, "[vvar_vclock]") && strcmp(v->path, "[vsyscall]");
}

static int victim_layout(void *arg)
{
	static char maps_before[65536], maps_now[65536];
	static struct vma before[512], now[512];
	static uint64_t hashes[512];
	int nb, nn, i, j;

	CR_SETUP(cr_read_file("/proc/self/maps", maps_before, sizeof(maps_before)) > 0, "maps");
	nb = parse_maps(maps_before, before, 512);
	for (i = 0; i < nb; i++)
		if (hashed_vma(&before[i]))
			hashes[i] = cr_hash((void *)before[i].start, before[i].end - before[i].start);

	cr_victim_ready_wait();

	CR_CHECK(cr_read_file("/proc/self/maps", maps_now, sizeof(maps_now)) > 0, "maps");
	nn = parse_maps(maps_now, now, 512);
	for (i = 0, j = 0; i < nb || j < nn;) {
		if (i < nb && skip_vma(&before[i])) {
			i++;
			continue;
		}
		if (j < nn && skip_vma(&now[j])) {
			j++;
			continue;
		}
		if (i >= nb || j >= nn) {
			CR_CHECK(0, "%s vma %lx-%lx %s %s", i < nb ? "missing" : "extra",
				 i < nb ? before[i].start : now[j].start,
				 i < nb ? before[i].end : now[j].end,
				 i < nb ? before[i].perms : now[j].perms,
				 i < nb ? before[i].path : now[j].path);
			i++;
			j++;
			continue;
		}
		CR_CHECK(before[i].start == now[j].start && before[i].end == now[j].end &&
			 !strcmp(before[i].perms, now[j].perms) && before[i].off == now[j].off &&
			 !strcmp(before[i].path, now[j].path),
			 "vma %lx-%lx %s %lx '%s' is now %lx-%lx %s %lx '%s'", before[i].start,
			 before[i].end, before[i].perms, before[i].off, before[i].path,
			 now[j].start, now[j].end, now[j].perms, now[j].off, now[j].path);
		i++;
		j++;
	}
	for (i = 0; i < nb; i++) {
		uint64_t h;

		if (!hashed_vma(&before[i]) || !find_vma(now, nn, before[i].start))
			continue;
		h = cr_hash((void *)before[i].start, before[i].end - before[i].start);
		CR_CHECK(h == hashes[i], "read-only vma %lx-%lx '%s' contents changed",
			 before[i].start, before[i].end, before[i].path);
	}
	return cr_victim_result();
}

CR_CASE(mem, layout, .victim = victim_layout);

TEST_HARNESS_MAIN
