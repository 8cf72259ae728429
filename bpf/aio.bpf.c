// SPDX-License-Identifier: (GPL-2.0-only OR MIT)
/*
 * aio.bpf.c: counts the native AIO requests in flight on each context of one
 * process. An iter/task program, attached with the target's TID in the link
 * (union bpf_iter_link_info task.tid, 6.1), so it runs for that task only;
 * user space reads its text (user/ckpt/aio_inflight.c):
 *
 *   cpus <n>                       once: per-CPU counters summed (CPUs 0..n-1)
 *   ctx <user_id hex> <in flight>  one per live context of the task's mm
 *   error ...                      what could not be read (the reader fails)
 *
 * fs/aio.c: every request holds a reference on ctx->reqs from aio_get_req()
 * (percpu_ref_get) to iocb_destroy() (percpu_ref_put), which runs after the
 * completion is in the ring. Besides the requests, a live context's reqs
 * holds two references: percpu_ref_init()'s initial one and the one
 * ioctx_alloc() takes for free_ioctx_users() ("free_ioctx_users() will drop
 * this"). So in flight = count - AIO_IDLE_REFS.
 *
 * lib/percpu-refcount.c: in percpu mode data->count starts at
 * PERCPU_COUNT_BIAS + 1 and gets/puts go to the per-CPU counter at
 * (percpu_count_ptr & ~__PERCPU_REF_ATOMIC_DEAD) on whichever CPU runs them;
 * the count is their sum plus data->count - PERCPU_COUNT_BIAS (all modulo
 * 2^64). In atomic mode (__PERCPU_REF_ATOMIC set) data->count alone is it.
 * The sum is read without stopping anyone: with the task frozen nothing is
 * submitted, completions only lower the count, so a read count is never
 * below the true count at the end of the read, and 0 in flight is exact.
 */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

/* include/linux/percpu-refcount.h */
#define AIO_PERCPU_REF_ATOMIC		1UL
#define AIO_PERCPU_REF_ATOMIC_DEAD	3UL
#define AIO_PERCPU_COUNT_BIAS		(1UL << 63)
/* The references of an idle live context (see above). */
#define AIO_IDLE_REFS			2
/* Bounds for the verifier; the user side checks the CPU count it got. */
#define AIO_MAX_CTX			4096
#define AIO_MAX_CPUS			8192

/*
 * per_cpu_ptr(p, cpu) is p + the CPU's offset (__per_cpu_offset[cpu] on
 * x86). bpf_per_cpu_ptr() would give it with a ksym like this_cpu_off, but
 * the kernel resolves a ksym's address through kallsyms, which lacks data
 * symbols without CONFIG_KALLSYMS_ALL ("ldimm64 failed to find the address
 * for kernel symbol"). A per-CPU array of our own shows the offsets instead:
 * its element's per-CPU pointer is bpf_array.pptrs[0] (kernel/bpf/arraymap.c),
 * and bpf_map_lookup_percpu_elem(map, key, cpu) returns per_cpu_ptr() of it
 * (NULL once cpu reaches nr_cpu_ids).
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} percpu_base SEC(".maps");

/*
 * The value of a pointer as a plain number: the verifier allows no
 * arithmetic on a map pointer, nor subtracting from a map value pointer,
 * so the bytes are copied out (ckpt runs privileged). 0 on failure.
 */
static __always_inline unsigned long addr_of(const void *p)
{
	unsigned long v = 0;

	bpf_probe_read_kernel(&v, sizeof(v), &p);
	return v;
}

/* The map's raw per-CPU pointer, or 0. */
static unsigned long percpu_base_ptr(void)
{
	unsigned long addr = addr_of(&percpu_base), pptr = 0;

	if (!addr)
		return 0;
	if (bpf_core_read(&pptr, sizeof(pptr), &((struct bpf_array *)addr)->pptrs[0]))
		return 0;
	return pptr;
}

/* The offset of cpu, or -1 past the last CPU. */
static long cpu_offset(unsigned long pptr, __u32 cpu)
{
	__u32 key = 0;
	void *p = bpf_map_lookup_percpu_elem(&percpu_base, &key, cpu);

	return p ? (long)(addr_of(p) - pptr) : -1;
}

struct cpu_sum {
	unsigned long pptr;		/* percpu_base_ptr() */
	unsigned long base;		/* percpu_count_ptr without the flag bits */
	unsigned long sum;
	unsigned int nr_cpus;
};

static long add_cpu(__u32 cpu, void *data)
{
	struct cpu_sum *s = data;
	long off = cpu_offset(s->pptr, cpu);
	unsigned long v = 0;

	if (off == -1)
		return 1;
	if (bpf_probe_read_kernel(&v, sizeof(v), (void *)(s->base + off)))
		return 1;
	s->sum += v;
	s->nr_cpus = cpu + 1;
	return 0;
}

struct cpu_count {
	unsigned long pptr;
	unsigned int n;
};

/* Counts the CPUs there are (nr_cpu_ids), for the header line. */
static long count_cpu(__u32 cpu, void *data)
{
	struct cpu_count *c = data;

	if (cpu_offset(c->pptr, cpu) == -1)
		return 1;
	c->n = cpu + 1;
	return 0;
}

struct ctx_walk {
	struct seq_file *seq;
	struct kioctx_table *table;
	unsigned long pptr;
	unsigned int nr;
	unsigned int nr_cpus;
};

static long show_ctx(__u32 i, void *data)
{
	struct ctx_walk *w = data;
	struct kioctx_table *table = w->table;
	struct kioctx *ctx = NULL;
	struct percpu_ref_data *rd;
	struct cpu_sum s = {};
	unsigned long ptr, count, user_id;
	long inflight;

	if (i >= w->nr)
		return 1;
	if (bpf_core_read(&ctx, sizeof(ctx), &table->table[i]) || !ctx)
		return 0;
	/* A dying context (io_destroy) has left the table already, or is about to. */
	if (BPF_CORE_READ(ctx, dead.counter))
		return 0;
	user_id = BPF_CORE_READ(ctx, user_id);
	ptr = BPF_CORE_READ(ctx, reqs.percpu_count_ptr);
	rd = BPF_CORE_READ(ctx, reqs.data);
	count = BPF_CORE_READ(rd, count.counter);
	if (!(ptr & AIO_PERCPU_REF_ATOMIC)) {
		s.pptr = w->pptr;
		s.base = ptr & ~AIO_PERCPU_REF_ATOMIC_DEAD;
		bpf_loop(AIO_MAX_CPUS, add_cpu, &s, 0);
		if (s.nr_cpus != w->nr_cpus) {
			BPF_SEQ_PRINTF(w->seq, "error %lx unreadable\n", user_id);
			return 0;
		}
		count = count - AIO_PERCPU_COUNT_BIAS + s.sum;
	}
	inflight = (long)count - AIO_IDLE_REFS;
	BPF_SEQ_PRINTF(w->seq, "ctx %lx %ld\n", user_id, inflight);
	return 0;
}

SEC("iter/task")
int iter_task_aio(struct bpf_iter__task *it)
{
	struct seq_file *seq = it->meta->seq;
	struct task_struct *task = it->task;
	struct ctx_walk w = { .seq = seq };
	struct cpu_count cpus = {};
	struct kioctx_table *table;
	struct mm_struct *mm;

	/* Called once more with no task at the end of the walk. */
	if (!task)
		return 0;
	cpus.pptr = w.pptr = percpu_base_ptr();
	if (!w.pptr) {
		BPF_SEQ_PRINTF(seq, "error percpu\n");
		return 0;
	}
	bpf_loop(AIO_MAX_CPUS, count_cpu, &cpus, 0);
	w.nr_cpus = cpus.n;
	BPF_SEQ_PRINTF(seq, "cpus %u\n", w.nr_cpus);
	mm = BPF_CORE_READ(task, mm);
	if (!mm)
		return 0;
	/* RCU-protected; an iter/task program runs under rcu_read_lock(). */
	table = BPF_CORE_READ(mm, ioctx_table);
	if (!table)
		return 0;
	w.table = table;
	w.nr = BPF_CORE_READ(table, nr);
	bpf_loop(AIO_MAX_CTX, show_ctx, &w, 0);
	if (w.nr > AIO_MAX_CTX)
		BPF_SEQ_PRINTF(seq, "error %u contexts\n", w.nr);
	return 0;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
