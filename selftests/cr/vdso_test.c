// SPDX-License-Identifier: MIT
/*
 * vdso_test: the vDSO keeps working when the image's vDSO layout is not the running
 * kernel's. The dump is rewritten (mm-PID.img, with the image codec) to look like one from
 * another kernel:
 *  - vvar_merged: [vvar] and [vvar_vclock] are one 6-page [vvar] entry;
 *  - vclock_dropped: there is no [vvar_vclock] entry (its pages are a hole);
 * and the restore must put this kernel's vDSO block so that [vdso] is where it was
 * (AT_SYSINFO_EHDR), with clock_gettime(CLOCK_MONOTONIC / CLOCK_REALTIME) and gettimeofday
 * through the vDSO (glibc's cached entry points and a fresh symbol lookup) agreeing with the
 * system calls and not going back in time.
 *  - collide: an anonymous mapping sits right below [vdso], where this kernel's vvar pages
 *    must go, and the image has no copy of the dumped vDSO: the restore fails naming the
 *    vDSO and leaves nothing behind;
 *  - collide_proxy: the same with the dumped vDSO copy kept: the restore proxies the old
 *    vDSO at its address and the calls still work.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "cr.h"
#include "cr_img.h"
#include "image.h"
#include "mm.pb-c.h"

#define PAGE 4096UL
/* The vDSO and a system call may disagree by the clocksource's granularity. */
#define SLACK_NS 1000000LL

CR_FIXTURE(vdso);

/* ---- victim side ---- */

typedef int (*vdso_clock_fn)(clockid_t, struct timespec *);
typedef int (*vdso_tod_fn)(struct timeval *, void *);

/* Address of a dynamic symbol of the ELF image mapped at base, or NULL. */
static void *elf_sym(uintptr_t base, const char *name)
{
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)base;
	const Elf64_Phdr *ph;
	const Elf64_Shdr *sh;
	uintptr_t load = 0;
	bool have_load = false;

	if (memcmp(eh->e_ident, ELFMAG, SELFMAG) || eh->e_ident[EI_CLASS] != ELFCLASS64)
		return NULL;
	ph = (const Elf64_Phdr *)(base + eh->e_phoff);
	for (int i = 0; i < eh->e_phnum; i++)
		if (ph[i].p_type == PT_LOAD && !have_load) {
			load = base - ph[i].p_vaddr + ph[i].p_offset;
			have_load = true;
		}
	if (!have_load || !eh->e_shoff)
		return NULL;
	sh = (const Elf64_Shdr *)(base + eh->e_shoff);
	for (int i = 0; i < eh->e_shnum; i++) {
		const Elf64_Sym *sym;
		const char *str;

		if (sh[i].sh_type != SHT_DYNSYM || sh[i].sh_link >= eh->e_shnum)
			continue;
		sym = (const Elf64_Sym *)(base + sh[i].sh_offset);
		str = (const char *)(base + sh[sh[i].sh_link].sh_offset);
		for (size_t k = 0; k < sh[i].sh_size / sizeof(*sym); k++)
			if (sym[k].st_shndx != SHN_UNDEF && !strcmp(str + sym[k].st_name, name))
				return (void *)(load + sym[k].st_value);
	}
	return NULL;
}

struct vlayout {
	uintptr_t vdso, vdso_end;
	long vvar_off, vclock_off;	/* start relative to [vdso]; 1 if absent */
	char at_ehdr[128];		/* the maps line of the mapping at AT_SYSINFO_EHDR */
};

static void read_layout(uintptr_t ehdr, struct vlayout *l)
{
	static char maps[65536];
	char *line, *save = NULL;
	uintptr_t vvar = 0, vclock = 0;

	memset(l, 0, sizeof(*l));
	if (cr_read_file("/proc/self/maps", maps, sizeof(maps)) <= 0)
		return;
	for (line = strtok_r(maps, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		unsigned long s, e;

		if (sscanf(line, "%lx-%lx", &s, &e) != 2)
			continue;
		if (strstr(line, "[vdso]")) {
			l->vdso = s;
			l->vdso_end = e;
		} else if (strstr(line, "[vvar_vclock]")) {
			vclock = s;
		} else if (strstr(line, "[vvar]")) {
			vvar = s;
		}
		if (s <= ehdr && ehdr < e)
			snprintf(l->at_ehdr, sizeof(l->at_ehdr), "%s", line);
	}
	l->vvar_off = vvar ? (long)(vvar - l->vdso) : 1;
	l->vclock_off = vclock ? (long)(vclock - l->vdso) : 1;
}

static long long ts_ns(const struct timespec *t)
{
	return t->tv_sec * 1000000000LL + t->tv_nsec;
}

static long long tv_ns(const struct timeval *t)
{
	return t->tv_sec * 1000000000LL + t->tv_usec * 1000LL;
}

static long long sys_clock(clockid_t id)
{
	struct timespec t;

	syscall(SYS_clock_gettime, id, &t);
	return ts_ns(&t);
}

/* One clock read through fn (or glibc when fn is NULL), bracketed by system calls. */
static void check_clock(const char *what, clockid_t id, vdso_clock_fn fn, long long before)
{
	struct timespec t = { 0 };
	long long lo, hi, v;
	int ret;

	lo = sys_clock(id);
	ret = fn ? fn(id, &t) : clock_gettime(id, &t);
	hi = sys_clock(id);
	v = ts_ns(&t);
	CR_CHECK(ret == 0, "%s: returned %d", what, ret);
	CR_CHECK(v >= before, "%s: %lld ns, before the dump it was %lld", what, v, before);
	CR_CHECK(v >= lo - SLACK_NS && v <= hi + SLACK_NS,
		 "%s: %lld ns, the system call says %lld..%lld", what, v, lo, hi);
}

static void check_tod(const char *what, vdso_tod_fn fn, long long before)
{
	struct timeval tv = { 0 };
	long long lo, hi, v;
	int ret;

	lo = sys_clock(CLOCK_REALTIME);
	ret = fn ? fn(&tv, NULL) : gettimeofday(&tv, NULL);
	hi = sys_clock(CLOCK_REALTIME);
	v = tv_ns(&tv);
	CR_CHECK(ret == 0, "%s: returned %d", what, ret);
	CR_CHECK(v >= before - 1000, "%s: %lld ns, before the dump it was %lld", what, v, before);
	CR_CHECK(v >= lo - SLACK_NS - 1000 && v <= hi + SLACK_NS,
		 "%s: %lld ns, the system call says %lld..%lld", what, v, lo, hi);
}

/* arg: 1 when the restore is expected to proxy the old vDSO. */
static int victim_vdso(void *arg)
{
	bool proxy = arg != NULL;
	static struct vlayout before, after;
	static char info[PATH_MAX];
	struct timespec mono0, real0;
	struct timeval tv0;
	vdso_clock_fn cg;
	vdso_tod_fn tod;
	uintptr_t ehdr;
	void *spare;
	int fd;

	ehdr = getauxval(AT_SYSINFO_EHDR);
	if (!ehdr)
		CR_VICTIM_SKIP("no vDSO (AT_SYSINFO_EHDR is 0)");
	read_layout(ehdr, &before);
	CR_SETUP(before.vdso == ehdr, "[vdso] at %#lx, AT_SYSINFO_EHDR %#lx",
		 (unsigned long)before.vdso, (unsigned long)ehdr);
	cg = (vdso_clock_fn)elf_sym(ehdr, "__vdso_clock_gettime");
	tod = (vdso_tod_fn)elf_sym(ehdr, "__vdso_gettimeofday");
	CR_SETUP(cg && tod, "vDSO symbols not found");
	CR_SETUP(!cg(CLOCK_MONOTONIC, &mono0) && !cg(CLOCK_REALTIME, &real0), "vDSO clock_gettime");
	CR_SETUP(!tod(&tv0, NULL), "vDSO gettimeofday");

	/* Two untouched pages the runner may move in the image (collide cases). */
	spare = mmap(NULL, 2 * PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CR_SETUP(spare != MAP_FAILED, "mmap");
	snprintf(info, sizeof(info), "%s/info", cr_victim_dir);
	fd = open(info, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	CR_SETUP(fd >= 0 && dprintf(fd, "%lx\n", (unsigned long)spare) > 0, "write info");
	close(fd);

	cr_victim_ready_wait();

	read_layout(ehdr, &after);
	CR_CHECK(after.at_ehdr[0], "nothing mapped at AT_SYSINFO_EHDR %#lx", (unsigned long)ehdr);
	CR_CHECK(!memcmp((void *)ehdr, ELFMAG, SELFMAG), "no ELF header at AT_SYSINFO_EHDR");
	if (!proxy) {
		CR_CHECK(after.vdso == ehdr, "[vdso] at %#lx after restore, AT_SYSINFO_EHDR %#lx",
			 (unsigned long)after.vdso, (unsigned long)ehdr);
		CR_CHECK(after.vdso_end - after.vdso == before.vdso_end - before.vdso,
			 "[vdso] is %lu bytes, was %lu", (unsigned long)(after.vdso_end - after.vdso),
			 (unsigned long)(before.vdso_end - before.vdso));
		CR_CHECK(after.vvar_off == before.vvar_off && after.vclock_off == before.vclock_off,
			 "vvar pages at [vdso]%+ld/%+ld, this kernel puts them at %+ld/%+ld",
			 after.vvar_off, after.vclock_off, before.vvar_off, before.vclock_off);
	} else {
		CR_CHECK(strstr(after.at_ehdr, " r-xp ") != NULL,
			 "the proxy at AT_SYSINFO_EHDR is not r-x: '%s'", after.at_ehdr);
		CR_CHECK(after.vdso && after.vdso != ehdr,
			 "this kernel's [vdso] should be elsewhere, it is at %#lx",
			 (unsigned long)after.vdso);
	}
	/* glibc's entry points, cached at startup... */
	check_clock("clock_gettime(CLOCK_MONOTONIC)", CLOCK_MONOTONIC, NULL, ts_ns(&mono0));
	check_clock("clock_gettime(CLOCK_REALTIME)", CLOCK_REALTIME, NULL, ts_ns(&real0));
	check_tod("gettimeofday", NULL, tv_ns(&tv0));
	/* ...the pointers resolved before the dump... */
	check_clock("__vdso_clock_gettime(CLOCK_MONOTONIC)", CLOCK_MONOTONIC, cg, ts_ns(&mono0));
	check_clock("__vdso_clock_gettime(CLOCK_REALTIME)", CLOCK_REALTIME, cg, ts_ns(&real0));
	check_tod("__vdso_gettimeofday", tod, tv_ns(&tv0));
	/* ...and a fresh lookup through the ELF at AT_SYSINFO_EHDR. */
	cg = (vdso_clock_fn)elf_sym(ehdr, "__vdso_clock_gettime");
	tod = (vdso_tod_fn)elf_sym(ehdr, "__vdso_gettimeofday");
	CR_CHECK(cg && tod, "vDSO symbols not found at AT_SYSINFO_EHDR after restore");
	if (cg && tod) {
		check_clock("looked-up clock_gettime(CLOCK_MONOTONIC)", CLOCK_MONOTONIC, cg,
			    ts_ns(&mono0));
		check_tod("looked-up gettimeofday", tod, tv_ns(&tv0));
	}
	return cr_victim_result();
}

/* ---- runner side ---- */

static pid_t dumped;

/* Indexes of [vvar], [vvar_vclock] and [vdso] in the image: 0, or cr_skip/cr_fail. */
static int find_vdso(struct cr_run *r, MmEntry *mm, size_t *vvar, size_t *vclock, size_t *vdso)
{
	size_t nvvar = 0;

	*vdso = mm->n_vmas;
	for (size_t i = 0; i < mm->n_vmas; i++)
		if (mm->vmas[i]->kind == VMA_KIND_VDSO)
			*vdso = i;
	if (*vdso == mm->n_vmas)
		return cr_fail(r, "the image has no [vdso] entry");
	for (size_t i = 0; i < mm->n_vmas; i++)
		if (mm->vmas[i]->kind == VMA_KIND_VVAR)
			nvvar++;
	/* This kernel: [vvar] 4 pages, [vvar_vclock] 2 pages, right below [vdso]. */
	if (nvvar != 2 || *vdso < 2 || mm->vmas[*vdso - 1]->kind != VMA_KIND_VVAR ||
	    mm->vmas[*vdso - 2]->kind != VMA_KIND_VVAR ||
	    mm->vmas[*vdso - 1]->end != mm->vmas[*vdso]->start ||
	    mm->vmas[*vdso - 2]->end != mm->vmas[*vdso - 1]->start)
		return cr_skip(r, "this kernel's vDSO is not [vvar][vvar_vclock][vdso]");
	*vvar = *vdso - 2;
	*vclock = *vdso - 1;
	return 0;
}

static void drop_vma(MmEntry *mm, size_t i)
{
	protobuf_c_message_free_unpacked(&mm->vmas[i]->base, NULL);
	memmove(&mm->vmas[i], &mm->vmas[i + 1], (mm->n_vmas - i - 1) * sizeof(mm->vmas[0]));
	mm->n_vmas--;
}

static int merge_vvar(struct cr_run *r, MmEntry *mm)
{
	size_t vvar, vclock, vdso;

	if (find_vdso(r, mm, &vvar, &vclock, &vdso))
		return -1;
	cr_note(r, "image: [vvar] %#llx-%#llx and [vvar_vclock] -%#llx merged",
		(unsigned long long)mm->vmas[vvar]->start, (unsigned long long)mm->vmas[vvar]->end,
		(unsigned long long)mm->vmas[vclock]->end);
	mm->vmas[vvar]->end = mm->vmas[vclock]->end;
	drop_vma(mm, vclock);
	return 0;
}

static int between_merged(struct cr_run *r)
{
	return cr_edit_mm(r, dumped, merge_vvar);
}

static int drop_vclock(struct cr_run *r, MmEntry *mm)
{
	size_t vvar, vclock, vdso;

	if (find_vdso(r, mm, &vvar, &vclock, &vdso))
		return -1;
	cr_note(r, "image: [vvar_vclock] %#llx-%#llx dropped",
		(unsigned long long)mm->vmas[vclock]->start, (unsigned long long)mm->vmas[vclock]->end);
	drop_vma(mm, vclock);
	return 0;
}

static int between_dropped(struct cr_run *r)
{
	return cr_edit_mm(r, dumped, drop_vclock);
}

static bool keep_vdso_image;

static int vma_cmp(const void *a, const void *b)
{
	const VmaEntry *x = *(VmaEntry *const *)a, *y = *(VmaEntry *const *)b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/* The victim's spare mapping takes the place of [vvar_vclock], right below [vdso]. */
static int collide(struct cr_run *r, MmEntry *mm)
{
	char path[PATH_MAX + 16], buf[64];
	size_t vvar, vclock, vdso, spare;
	unsigned long addr;
	uint64_t at;

	snprintf(path, sizeof(path), "%s/info", r->env->dir);
	if (cr_read_file(path, buf, sizeof(buf)) <= 0 || sscanf(buf, "%lx", &addr) != 1)
		return cr_fail(r, "cannot read the victim's %s", path);
	if (find_vdso(r, mm, &vvar, &vclock, &vdso))
		return -1;
	at = mm->vmas[vdso]->start - 2 * PAGE;
	drop_vma(mm, vclock);
	for (spare = 0; spare < mm->n_vmas; spare++)
		if (mm->vmas[spare]->start == addr)
			break;
	if (spare == mm->n_vmas || mm->vmas[spare]->end != addr + 2 * PAGE ||
	    mm->vmas[spare]->kind != VMA_KIND_ANON)
		return cr_fail(r, "the victim's spare mapping %#lx is not in the image", addr);
	cr_note(r, "image: [vvar_vclock] dropped, anon %#lx-%#lx moved to %#llx-%#llx%s", addr,
		addr + 2 * PAGE, (unsigned long long)at, (unsigned long long)(at + 2 * PAGE),
		keep_vdso_image ? "" : ", dumped vDSO copy removed");
	mm->vmas[spare]->start = at;
	mm->vmas[spare]->end = at + 2 * PAGE;
	qsort(mm->vmas, mm->n_vmas, sizeof(mm->vmas[0]), vma_cmp);
	if (!keep_vdso_image) {
		mm->has_vdso_image = false;
		snprintf(r->restore_err, sizeof(r->restore_err), "vDSO");
	} else if (!mm->has_vdso_image) {
		return cr_skip(r, "the dump has no copy of the vDSO to proxy");
	}
	return 0;
}

static int between_collide(struct cr_run *r)
{
	keep_vdso_image = false;
	return cr_edit_mm(r, dumped, collide);
}

static int between_collide_proxy(struct cr_run *r)
{
	keep_vdso_image = true;
	return cr_edit_mm(r, dumped, collide);
}

/* Dump, rewrite (`between`), restore; a failed restore must leave nothing behind. */
static int prepare_vdso(struct cr_run *r, pid_t pid)
{
	dumped = pid;
	return 0;
}

static int flow_vdso(struct cr_run *r)
{
	return cr_flow_restore_edited(r, prepare_vdso, NULL);
}

CR_CASE(vdso, control, .victim = victim_vdso, .flow = flow_vdso);
CR_CASE(vdso, vvar_merged, .victim = victim_vdso, .flow = flow_vdso, .between = between_merged);
CR_CASE(vdso, vclock_dropped, .victim = victim_vdso, .flow = flow_vdso,
	.between = between_dropped);
CR_CASE(vdso, collide, .victim = victim_vdso, .flow = flow_vdso, .between = between_collide);
CR_CASE(vdso, collide_proxy, .victim = victim_vdso, .arg = (void *)1, .flow = flow_vdso,
	.between = between_collide_proxy);

TEST_HARNESS_MAIN
