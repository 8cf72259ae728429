# SPDX-License-Identifier: MIT
# scripts/bench: the benchmark driver and its victim, built into build/bench/.
#   make bench                          every scenario, 1 warm-up + 5 measured runs
#   make bench BENCH_ARGS='-s dump-restore-1g -r 9'
#   then scripts/bench/redis_bench.sh (redis-server with ~1 GiB and a client; REDIS_RUNS=0 skips)
#   make bench BENCH_ARGS='-s tree-10,tree-25,tree-50'   the tree at three sizes
# Timing is reported, never asserted.

BENCH_DIR  := $(B)/bench
BENCH_ARGS ?=
BENCH_BINS := $(BENCH_DIR)/ckpt-bench $(BENCH_DIR)/bench_victim

BENCH_HDRS := scripts/bench/bench_pattern.h scripts/bench/bench_victim.h

$(BENCH_DIR)/ckpt-bench: scripts/bench/ckpt_bench.c $(BENCH_HDRS)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< -lm

# -pthread: the threads-* scenarios' victim.
$(BENCH_DIR)/bench_victim: scripts/bench/bench_victim.c $(BENCH_HDRS)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -pthread $(LDFLAGS) -o $@ $< -pthread

# REDIS_RUNS=0 skips the redis-1g scenario (scripts/bench/redis_bench.sh).
REDIS_RUNS ?= 3
bench: ckpt $(BENCH_BINS)
	$(Q)$(BENCH_DIR)/ckpt-bench $(BENCH_ARGS)
	$(Q)if [ "$(REDIS_RUNS)" != 0 ]; then scripts/bench/redis_bench.sh $(REDIS_RUNS); fi

.PHONY: bench
