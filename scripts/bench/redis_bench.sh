#!/bin/bash
# SPDX-License-Identifier: MIT
#
# redis-1g: dump and restore of a redis-server holding about 1 GiB of data
# while a client keeps sending PING on one connection; the downtime is the
# longest gap between two replies the client sees (its connection survives:
# TCP repair plus the network lock). Run by `make bench` after ckpt-bench;
# prints one BENCH line per metric like the main driver. Timing is reported,
# never asserted. Needs redis-server (scripts/install-deps.sh) and python3.
#
#   scripts/bench/redis_bench.sh [RUNS]     (default 3)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CKPT="$ROOT/build/ckpt"
RUNS=${1:-3}

if [ "${REDIS_BENCH_INNER:-}" != 1 ]; then
	command -v redis-server >/dev/null || { echo "redis_bench: redis-server missing (scripts/install-deps.sh)" >&2; exit 1; }
	exec env REDIS_BENCH_INNER=1 unshare -fp --mount-proc "$0" "$@"
fi

W=$(mktemp -d /tmp/ckpt-redis-bench.XXXXXX)
# Images on tmpfs, as in the main driver: the disk would be what is measured.
mount -t tmpfs -o size=3g tmpfs "$W"
PORT=$((20000 + RANDOM % 20000))
trap 'pkill -KILL -f "redis-server.*:$PORT" 2>/dev/null || true; umount "$W" 2>/dev/null; rm -rf "$W"' EXIT

ms() { date +%s%3N; }

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

dump_ms=() rst_ms=() down_ms=() img_mib=() rss_mib=()
for ((run = 1; run <= RUNS; run++)); do
	rm -rf "$W/img" "$W/data"; mkdir -p "$W/data"
	setsid redis-server --port "$PORT" --bind 127.0.0.1 --save "" --appendonly no --enable-debug-command yes \
		--dir "$W/data" --logfile "$W/redis.log" </dev/null >/dev/null 2>&1 251>&- 255>&- &
	PID=$!
	for ((i = 0; i < 200; i++)); do
		redis-cli -p "$PORT" ping >/dev/null 2>&1 && break
		sleep 0.05
	done
	# About 1 GiB: 1M keys of 1000 bytes.
	redis-cli -p "$PORT" debug populate 1000000 key 1000 >/dev/null
	rss=$(awk '/^VmRSS/ { print int($2 / 1024) }' /proc/$PID/status)
	# The client: PING on one connection until told to stop; reports the longest gap.
	python3 - "$PORT" "$W/stop" >"$W/client.out" <<'PY' &
import socket, sys, time, os
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.settimeout(30)
last = time.monotonic(); gap = 0.0; n = 0
while not os.path.exists(sys.argv[2]):
    s.sendall(b"PING\r\n")
    if s.recv(64) != b"+PONG\r\n":
        print("bad reply"); sys.exit(1)
    now = time.monotonic(); gap = max(gap, now - last); last = now; n += 1
print("%d %.1f" % (n, gap * 1000))
PY
	CLIENT=$!
	sleep 0.5
	t0=$(ms)
	"$CKPT" dump -t "$PID" -D "$W/img" -o "$W/dump.log" -v3
	t1=$(ms)
	wait "$PID" 2>/dev/null || true
	t2=$(ms)
	"$CKPT" restore -D "$W/img" -d -o "$W/restore.log" -v3
	t3=$(ms)
	sleep 0.5
	touch "$W/stop"
	wait "$CLIENT"
	rm -f "$W/stop"
	read -r pings gap <"$W/client.out"
	keys=$(redis-cli -p "$PORT" dbsize)
	[ "$keys" = 1000000 ] || { echo "redis_bench: $keys keys after restore, not 1000000 (client: $pings $gap)" >&2; cat "$W/restore.log" "$W/dump.log" >&2; exit 1; }
	img=$(du -sm "$W/img" | awk '{ print $1 }')
	echo "  redis-1g run $run/$RUNS: rss $rss MiB, dump $((t1 - t0)) ms, restore $((t3 - t2)) ms, client downtime $gap ms ($pings pings)"
	dump_ms+=($((t1 - t0))) rst_ms+=($((t3 - t2))) down_ms+=("$gap") img_mib+=("$img") rss_mib+=("$rss")
	redis-cli -p "$PORT" shutdown nosave >/dev/null 2>&1 || true
	wait 2>/dev/null || true
done

kernel=$(uname -r)
cpu=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)
report() {
	local metric=$1 unit=$2; shift 2
	local med min max
	med=$(printf '%s\n' "$@" | median)
	min=$(printf '%s\n' "$@" | sort -n | head -1)
	max=$(printf '%s\n' "$@" | sort -n | tail -1)
	echo "BENCH scenario=redis-1g metric=$metric unit=$unit median=$med spread=$min..$max runs=$RUNS kernel=$kernel cpu=\"$cpu\""
}
report redis_rss MiB "${rss_mib[@]}"
report dump_time ms "${dump_ms[@]}"
report restore_time ms "${rst_ms[@]}"
report client_downtime ms "${down_ms[@]}"
report image_size MiB "${img_mib[@]}"
