/* SPDX-License-Identifier: MIT */
/*
 * The memory pattern shared by the benchmark driver (baselines) and the
 * victim: every 64-bit word holds a mix of its page index and its offset, so
 * every page has distinct, non-zero content.  A salt (the process or thread
 * index in the multi-task scenarios) shifts the whole pattern, so memory that
 * came back in the wrong task does not verify; salt 0 is the plain pattern.
 */
#ifndef BENCH_PATTERN_H
#define BENCH_PATTERN_H

#include <stddef.h>
#include <stdint.h>

#define BENCH_PAGE 4096UL

static inline uint64_t bench_pattern_word(size_t page, size_t word, uint64_t salt)
{
	return (page + 1) * 0x9e3779b97f4a7c15ULL + word + salt * 0xbf58476d1ce4e5b9ULL;
}

static inline void bench_pattern_fill(uint64_t *mem, size_t len, uint64_t salt)
{
	size_t words = BENCH_PAGE / sizeof(uint64_t);

	for (size_t p = 0; p < len / BENCH_PAGE; p++)
		for (size_t w = 0; w < words; w++)
			mem[p * words + w] = bench_pattern_word(p, w, salt);
}

/* Number of pages whose content differs from the pattern. */
static inline size_t bench_pattern_check(const uint64_t *mem, size_t len, uint64_t salt)
{
	size_t words = BENCH_PAGE / sizeof(uint64_t);
	size_t bad = 0;

	for (size_t p = 0; p < len / BENCH_PAGE; p++) {
		for (size_t w = 0; w < words; w++) {
			if (mem[p * words + w] != bench_pattern_word(p, w, salt)) {
				bad++;
				break;
			}
		}
	}
	return bad;
}

#endif
