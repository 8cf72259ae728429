# SPDX-License-Identifier: MIT
# scripts/bench: the benchmark driver and its victim, built into build/bench/.
#   make bench                          every scenario, 1 warm-up + 5 measured runs
#   make bench BENCH_ARGS='-s dump-restore-1g -r 9'
#   then build/bench/trackd-bench (trackd's cost: fork, mmap, first writes, 50k records/s)
#   then build/bench/incr-bench (incremental dumps of 4 GiB, 1% dirtied per round;
#   make bench INCR_BENCH_ARGS='--size 256' for a quick one)
#   then build/bench/migrate-bench (live migration of 8 processes at 256 MiB, 2 GiB and 4 GiB
#   against stop-and-copy; make bench MIGRATE_BENCH_ARGS='--sizes 256' for a quick one)
#   then scripts/bench/redis_bench.sh (redis-server with ~1 GiB and a client; REDIS_RUNS=0 skips)
#   make bench BENCH_ARGS='-s tree-10,tree-25,tree-50'   the tree at three sizes
# Timing is reported, never asserted.

BENCH_DIR  := $(B)/bench
BENCH_ARGS ?=
BENCH_BINS := $(BENCH_DIR)/ckpt-bench $(BENCH_DIR)/bench_victim $(BENCH_DIR)/trackd-bench \
	      $(BENCH_DIR)/incr-bench $(BENCH_DIR)/migrate-bench

BENCH_HDRS := scripts/bench/bench_pattern.h scripts/bench/bench_victim.h
# What the drivers share (bench.h).
BENCH_LIB  := $(BENCH_DIR)/bench.o

$(BENCH_LIB): scripts/bench/bench.c scripts/bench/bench.h scripts/bench/bench_pattern.h
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -c -o $@ $<

$(BENCH_DIR)/ckpt-bench: scripts/bench/ckpt_bench.c $(BENCH_LIB) scripts/bench/bench.h $(BENCH_HDRS)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BENCH_LIB) -lm

# trackd's cost for tracked and untracked processes: make bench TRACKD_BENCH_ARGS='-r 9'
TRACKD_BENCH_ARGS ?=
$(BENCH_DIR)/trackd-bench: scripts/bench/trackd_bench.c $(BENCH_LIB) scripts/bench/bench.h
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BENCH_LIB)

# Full against incremental dumps: make bench INCR_BENCH_ARGS='--size 256 -r 3'
INCR_BENCH_ARGS ?=
$(BENCH_DIR)/incr-bench: scripts/bench/incr_bench.c $(BENCH_LIB) scripts/bench/bench.h \
			 scripts/bench/bench_pattern.h
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BENCH_LIB)

# Live migration against stop-and-copy: make bench MIGRATE_BENCH_ARGS='--sizes 256 -r 3'
MIGRATE_BENCH_ARGS ?=
$(BENCH_DIR)/migrate-bench: scripts/bench/migrate_bench.c $(BENCH_LIB) scripts/bench/bench.h \
			    scripts/bench/bench_pattern.h
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BENCH_LIB)

# -pthread: the threads-* scenarios' victim.
$(BENCH_DIR)/bench_victim: scripts/bench/bench_victim.c $(BENCH_HDRS)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -pthread $(LDFLAGS) -o $@ $< -pthread

# REDIS_RUNS=0 skips the redis-1g scenario (scripts/bench/redis_bench.sh).
REDIS_RUNS ?= 3
bench: ckpt trackd $(BENCH_BINS)
	$(Q)$(BENCH_DIR)/ckpt-bench $(BENCH_ARGS)
	$(Q)$(BENCH_DIR)/trackd-bench -T $(B)/trackd $(TRACKD_BENCH_ARGS)
	$(Q)$(BENCH_DIR)/incr-bench $(INCR_BENCH_ARGS)
	$(Q)$(BENCH_DIR)/migrate-bench $(MIGRATE_BENCH_ARGS)
	$(Q)if [ "$(REDIS_RUNS)" != 0 ]; then scripts/bench/redis_bench.sh $(REDIS_RUNS); fi

.PHONY: bench
