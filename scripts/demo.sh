#!/bin/bash
# SPDX-License-Identifier: MIT
#
# make demo: watch a live workload with `trackd` (its changelog and which of
# its pages get written), checkpoint it incrementally (`ckpt dump --since-log`:
# a full dump, a delta, a final delta), restore the chain with
# `ckpt restore -d`, and show that it carries on from where it was: a small
# tree (a session leader, its worker child and the worker's counting thread,
# joined by a pipe) comes back with the same PIDs, TID, parents, group and
# session, and its counter and running checksum continue with no gap and no
# repeat.
#
# Then a live migration (`ckpt migrate` to a `ckpt receive`): a destination
# in network and PID namespaces of its own (a veth pair joins it to the host:
# 10.77.N.1/24 here, 10.77.N.2/24 there), and a busier tree: a root whose
# second thread forks a child every 100 ms (each lives 250 ms and exits with
# a code the root checks), a worker joined to the root by a pipe whose
# counting thread does one native AIO read (io_submit, then io_getevents for
# its event) every 20 ms tick. migrate copies it in pre-copy rounds while it
# runs; the destination keeps its copy frozen and applies each round; then the
# source is frozen for the last one, the copy resumes and only then does the
# source end. The tick log must go on with no gap and no repeat, now written
# from the destination's namespaces.
#
# Runs as root, as PID 1 of a new PID namespace (re-executes itself under
# `unshare -fp --mount-proc`): PID 1 of this machine never reaps orphans, so a
# dumped task's zombie would keep its PID, and a namespace init takes every
# task of the demo with it when it exits.
#
# Everything it starts (the namespaces, the veth pair, every process) goes
# when it ends, also on failure: its processes die with its PID namespace,
# the veth pair with the destination's network namespace. CKPT_DEMO_KEEP=1
# keeps its working directory (logs, images) for a look afterwards.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# `make demo B=DIR` builds into DIR (relative to the tree) and runs from there.
B=${B:-build}
[ "${B#/}" != "$B" ] || B="$ROOT/$B"
CKPT="$B/ckpt"
TRACKD="$B/trackd"
DEMO="$B/demo"
WORKLOAD="$DEMO/counter"
MIGLOAD="$DEMO/migload"

step() { printf '\n=== %s ===\n' "$*"; }
fail() { printf 'demo: FAIL: %s\n' "$*" >&2; exit 1; }

if [ "${CKPT_DEMO_INNER:-}" != 1 ]; then
	[ "$(id -u)" = 0 ] || fail "needs root (ptrace, clone3 set_tid)"
	[ -x "$CKPT" ] || fail "$CKPT not built (make ckpt)"
	[ -x "$TRACKD" ] || fail "$TRACKD not built (make trackd)"
	for c in unshare nsenter ip ps; do
		command -v $c >/dev/null ||
			fail "'$c' is missing (scripts/install-deps.sh installs util-linux, iproute2, procps)"
	done

	# The workload, a small process tree: a session leader and its worker
	# child, whose counting thread sends a counter and a running checksum,
	# kept only in memory, over a pipe; the leader prints one line per tick.
	# It closes every inherited fd above 2.
	mkdir -p "$DEMO"
	if [ ! -x "$WORKLOAD" ] || [ "$0" -nt "$WORKLOAD" ]; then
		"${CC:-gcc}" -O2 -Wall -pthread -o "$WORKLOAD" -x c - <<'EOF' || fail "cannot build the workload"
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static void *ticker(void *arg)
{
	struct timespec tick = { 0, 100 * 1000 * 1000 };
	unsigned long long n = 0, sum = 0;
	int fd = *(int *)arg;

	for (;;) {
		n++;
		sum = (sum * 31 + n) % 1000000007ULL;
		dprintf(fd, "thread %d tick %llu sum %llu\n", gettid(), n, sum);
		nanosleep(&tick, NULL);
	}
	return NULL;
}

int main(void)
{
	char line[256];
	pthread_t t;
	int p[2];

	syscall(SYS_close_range, 3, ~0U, 0);
	setsid();
	if (pipe(p))
		return 1;
	pid_t worker = fork();
	if (worker == 0) {
		close(p[0]);
		pthread_create(&t, NULL, ticker, &p[1]);
		pthread_join(t, NULL);
		return 0;
	}
	close(p[1]);
	FILE *in = fdopen(p[0], "r");
	while (fgets(line, sizeof(line), in))
		dprintf(1, "pid %d worker %d %s", getpid(), worker, line);
	return 0;
}
EOF
	fi
	# The migration's workload: a root (its main thread writes a line per
	# tick to stdout; its second thread forks a child every 100 ms, which
	# lives 250 ms and exits with a code the root checks when it reaps it)
	# and a worker, joined by a pipe, whose counting thread does one native
	# AIO read of the data file (argv[1]) per 20 ms tick and reaps its event.
	# The AIO context is the worker's and the worker never forks: a child
	# would inherit its ring's mapping without the context, which dump
	# refuses. Each line carries the tick's CLOCK_MONOTONIC time (the pause
	# the workload itself sees) and its network namespace.
	if [ ! -x "$MIGLOAD" ] || [ "$0" -nt "$MIGLOAD" ]; then
		"${CC:-gcc}" -O2 -Wall -pthread -o "$MIGLOAD" -x c - <<'EOF' || fail "cannot build the migration workload"
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TICK_MS 20
#define CHUNK 64		/* bytes per AIO read */
#define DATA_LEN (64 * CHUNK)	/* the data file */

static int data_fd, pipe_wr;
static atomic_ulong forks, reaped, bad_exits;

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* The data file's byte at off. */
static unsigned char data_byte(unsigned long off)
{
	return (off * 7 + 3) % 251;
}

/* migload --data FILE: write the data file. */
static int write_data(const char *path)
{
	unsigned char d[DATA_LEN];
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	for (unsigned long i = 0; i < DATA_LEN; i++)
		d[i] = data_byte(i);
	return fd < 0 || write(fd, d, DATA_LEN) != DATA_LEN || close(fd);
}

/* One request on the AIO context: read a chunk of the data file, reap its event, check it. */
static int aio_tick(aio_context_t ctx, unsigned long long n)
{
	unsigned char buf[CHUNK];
	unsigned long off = n % (DATA_LEN / CHUNK) * CHUNK;
	struct iocb cb = { .aio_data = n, .aio_lio_opcode = IOCB_CMD_PREAD, .aio_fildes = data_fd,
			   .aio_buf = (unsigned long)buf, .aio_nbytes = CHUNK, .aio_offset = off };
	struct iocb *cbs[1] = { &cb };
	struct io_event ev;

	if (syscall(SYS_io_submit, ctx, 1, cbs) != 1)
		return 0;
	while (syscall(SYS_io_getevents, ctx, 1, 1, &ev, NULL) != 1)
		if (errno != EINTR)
			return 0;
	if (ev.data != n || ev.res != CHUNK)
		return 0;
	for (int i = 0; i < CHUNK; i++)
		if (buf[i] != data_byte(off + i))
			return 0;
	return 1;
}

/* The worker's counting thread: one line per tick to the root, over the pipe. */
static void *ticker(void *arg)
{
	struct timespec tick = { 0, TICK_MS * 1000 * 1000 };
	unsigned long long n = 0, sum = 0, aio_ok = 0;
	aio_context_t ctx = 0;
	char ns[64];

	if (syscall(SYS_io_setup, 8, &ctx))
		return NULL;
	for (;;) {
		ssize_t l = readlink("/proc/thread-self/ns/net", ns, sizeof(ns) - 1);

		ns[l > 0 ? l : 0] = 0;
		n++;
		sum = (sum * 31 + n) % 1000000007ULL;
		aio_ok += aio_tick(ctx, n);
		dprintf(pipe_wr, "thread %d tick %llu sum %llu aio %llu ms %lld %s\n", gettid(), n, sum,
			aio_ok, now_ms(), ns);
		nanosleep(&tick, NULL);
	}
	return NULL;
}

/*
 * The root's second thread: a child every 100 ms that lives 250 ms and exits with a known code.
 * Not in the worker: a child would inherit its AIO ring's mapping without the context.
 */
static void *spawner(void *arg)
{
	struct timespec tick = { 0, 100 * 1000 * 1000 };
	struct { pid_t pid; int code; } kids[64] = { 0 };

	for (unsigned long k = 1;; k++) {
		int status, code = k % 100 + 1;
		pid_t pid = fork();

		if (pid == 0) {
			struct timespec life = { 0, 250 * 1000 * 1000 };

			nanosleep(&life, NULL);
			_exit(code);
		}
		if (pid > 0) {
			kids[k % 64].pid = pid;
			kids[k % 64].code = code;
			forks++;
		}
		nanosleep(&tick, NULL);
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
			int i;

			for (i = 0; i < 64 && kids[i].pid != pid; i++)
				;
			if (i == 64 || !WIFEXITED(status) || WEXITSTATUS(status) != kids[i].code)
				bad_exits++;
			else
				kids[i].pid = 0;
			reaped++;
		}
	}
}

int main(int argc, char **argv)
{
	char line[512];
	pthread_t t;
	int p[2];

	if (argc == 3 && !strcmp(argv[1], "--data"))
		return write_data(argv[2]);
	if (argc != 2)
		return 2;
	syscall(SYS_close_range, 3, ~0U, 0);
	setsid();
	data_fd = open(argv[1], O_RDONLY);
	if (data_fd < 0 || pipe(p))
		return 1;
	pid_t worker = fork();
	if (worker == 0) {
		close(p[0]);
		pipe_wr = p[1];
		if (pthread_create(&t, NULL, ticker, NULL))
			return 1;
		pthread_join(t, NULL);
		return 1;
	}
	close(p[1]);
	if (pthread_create(&t, NULL, spawner, NULL))
		return 1;
	FILE *in = fdopen(p[0], "r");
	while (fgets(line, sizeof(line), in))
		dprintf(1, "pid %d worker %d forks %lu exits %lu bad %lu %s", getpid(), worker, forks,
			reaped, bad_exits, line);
	return 0;
}
EOF
	fi
	exec env CKPT_DEMO_INNER=1 CKPT_DEMO_ID=$$ unshare -fp --mount-proc "$0" "$@"
fi

# From here on we are PID 1 of the demo's PID namespace.
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ckpt-demo.XXXXXX")
IMG="$WORK/img.2"
LOG="$WORK/counter.log"
TLOG="$WORK/changelog"
PID=
# The migration act: the source root, the destination (the `unshare` whose
# child is its PID namespace's init), the holder of its network namespace,
# and the host's end of the veth pair.
MPID=
DEST=
HOLDER=
VETH=

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
		kill -KILL "$PID" 2>/dev/null || true
	fi
	"$TRACKD" stop -L "$TLOG" >/dev/null 2>&1 || true
	# unshare --kill-child: its child, the destination's init, gets SIGKILL
	# when unshare dies, and every task of that PID namespace with it (a
	# forking unshare ignores SIGTERM).
	if [ -n "$DEST" ]; then
		kill -KILL "$DEST" 2>/dev/null || true
		{ wait "$DEST"; } 2>/dev/null || true
	fi
	# A tree that did not leave (a failed migration runs on here): its session.
	if [ -n "$MPID" ]; then
		kill -KILL -- -"$MPID" 2>/dev/null || true
	fi
	if [ -n "$HOLDER" ]; then
		kill -KILL "$HOLDER" 2>/dev/null || true
		{ wait "$HOLDER"; } 2>/dev/null || true
	fi
	# Gone with the destination's network namespace, unless something holds it.
	if [ -n "$VETH" ] && ip link show "$VETH" >/dev/null 2>&1; then
		ip link del "$VETH" 2>/dev/null || true
	fi
	if [ -n "${CKPT_DEMO_KEEP:-}" ]; then
		echo "demo: kept $WORK (CKPT_DEMO_KEEP)"
	else
		rm -rf "$WORK"
	fi
	if [ $rc = 0 ]; then
		printf '\ndemo: PASS\n'
	else
		printf '\ndemo: FAIL (exit %d)\n' "$rc" >&2
	fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Last tick number in the log.
last_tick() { awk '{ t = $8 } END { print t + 0 }' "$LOG"; }

# The workload's tree: its processes and threads.
show_tree() { ps -eLo pid,tid,ppid,pgid,sid,stat,comm | awk 'NR == 1 || $7 == "counter"'; }

# Wait (bounded) until the log has more than $1 ticks.
wait_ticks() {
	local want=$1 i
	for ((i = 0; i < 100; i++)); do
		[ "$(last_tick)" -gt "$want" ] && return 0
		sleep 0.05
	done
	fail "the workload stopped ticking (log has $(last_tick) ticks, wanted more than $want)"
}

step "1. start the workload"
"$WORKLOAD" >"$LOG" 2>&1 </dev/null &
PID=$!
echo "workload PID $PID, log $LOG"
wait_ticks 10
tail -n 3 "$LOG"
show_tree | tee "$WORK/tree.before"

step "2. watch it: trackd -t $PID -L $TLOG -d"
"$TRACKD" -t "$PID" -L "$TLOG" -d -v3 || fail "trackd"
T0=$(last_tick)
wait_ticks $((T0 + 5))
MARK=$("$TRACKD" mark -L "$TLOG") || fail "trackd mark"
echo "trackd mark: record $MARK"
"$TRACKD" status -L "$TLOG" | sed 's/^/  /'
echo "the changelog so far (ckpt show --log $TLOG):"
"$CKPT" show --log "$TLOG" | cut -c1-150 | sed 's/^/  /'
echo "(trackd stays attached through the dump: the tracked tree is dumped as it is)"

# One dump: its "dump done" line and, for a delta, what it wrote and referred.
dump_step() {
	local name=$1
	shift
	echo "\$ ckpt dump $*"
	"$CKPT" dump "$@" -v3 -o "$WORK/$name.log" || {
		cat "$WORK/$name.log" >&2
		fail "ckpt dump ($name)"
	}
	grep -E 'dump done|pages written' "$WORK/$name.log" | sed 's/^([ 0-9.]*) /  /'
}

step "3. checkpoint it incrementally: a full dump, a delta, a final delta"
echo "(--since-log: each dump is a position in trackd's changelog; --leave-running"
echo " rounds copy the pages after the tree runs again; the final one kills it)"
dump_step img.0 -t "$PID" -D "$WORK/img.0" --leave-running --since-log "$TLOG"
wait_ticks $(($(last_tick) + 5))
dump_step img.1 -t "$PID" -D "$WORK/img.1" --leave-running --since-log "$TLOG" --prev-images ../img.0
wait_ticks $(($(last_tick) + 5))
dump_step img.2 -t "$PID" -D "$IMG" --since-log "$TLOG" --prev-images ../img.1
# dump kills the tree; reap it so its PIDs are free again (the worker is
# reparented to this shell, PID 1 here, which reaps it).
{ wait "$PID"; } 2>/dev/null || true
WORKER=$(awk 'NR == 1 { print $4 }' "$LOG")
for ((i = 0; i < 100; i++)); do
	kill -0 "$WORKER" 2>/dev/null || break
	sleep 0.05
done
kill -0 "$PID" 2>/dev/null && fail "PID $PID still alive after dump"
kill -0 "$WORKER" 2>/dev/null && fail "worker $WORKER still alive after dump"
BEFORE=$(last_tick)
echo "workload is gone; its log stops at tick $BEFORE"
sleep 0.5
[ "$(last_tick)" = "$BEFORE" ] || fail "the log grew after the dump"

# Give the tracker's last records a moment to drain into the log.
"$TRACKD" mark -L "$TLOG" >/dev/null || fail "trackd mark"
"$TRACKD" stop -L "$TLOG" >/dev/null || fail "trackd stop"
echo "what trackd saw since its mark (the dump's injected calls, then the exits):"
"$CKPT" show --log "$TLOG" --since "$MARK" | cut -c1-150 | tail -n 14 | sed 's/^/  /'

step "4. the images: the final delta and its chain"
du -sh "$WORK"/img.* | sed 's/^/  /'
echo "how each process differs from img.1 (ckpt show $IMG/delta.img):"
"$CKPT" show "$IMG/delta.img" | sed 's/^/  /'
echo "where the pages of img.2 are (ckpt show $IMG --pages | head):"
"$CKPT" show "$IMG" --pages >"$WORK/pages.txt" || fail "ckpt show --pages"
head -n 12 "$WORK/pages.txt" | sed 's/^/  /'

step "5. restore it, walking the chain: ckpt restore -D $IMG -d"
"$CKPT" restore -D "$IMG" -d --pidfile "$WORK/pid" -v3 -o "$WORK/restore.log" || {
	cat "$WORK/restore.log" >&2
	fail "ckpt restore"
}
NEWPID=$(cat "$WORK/pid")
echo "restored as PID $NEWPID (dumped as $PID)"
[ "$NEWPID" = "$PID" ] || fail "restored with PID $NEWPID, dumped with PID $PID"
kill -0 "$PID" 2>/dev/null || fail "restored task $PID is not running"
show_tree | tee "$WORK/tree.after"
# Same PIDs, TIDs, parents, groups and sessions (the state column may differ).
diff <(awk '{ print $1, $2, $3, $4, $5, $7 }' "$WORK/tree.before") \
     <(awk '{ print $1, $2, $3, $4, $5, $7 }' "$WORK/tree.after") ||
	fail "the restored tree differs from the dumped one"

step "6. it carries on from where it was"
wait_ticks $((BEFORE + 10))
grep -n -A 3 "tick $BEFORE sum" "$LOG" | sed 's/^/  /'
# Every line: the same PID, tick = previous + 1, and the checksum recomputed
# here: a restore that lost or replayed state breaks one of them.
awk -v pid="$PID" '
	NR == 1 { worker = $4; thread = $6 }
	$2 != pid || $4 != worker || $6 != thread {
		printf "line %d: pid %s worker %s thread %s, expected %s %s %s\n", NR, $2, $4, $6,
		       pid, worker, thread; bad = 1; exit
	}
	$8 != NR { printf "line %d: tick %s, expected %d (gap or repeat)\n", NR, $8, NR; bad = 1; exit }
	{ sum = (sum * 31 + NR) % 1000000007 }
	$10 != sum { printf "line %d: sum %s, expected %d\n", NR, $10, sum; bad = 1; exit }
	END { exit bad }
' "$LOG" || fail "the log is not one unbroken sequence"
echo "ticks 1..$(last_tick): same PIDs and TID, no gap, no repeat, checksums match (dumped at tick $BEFORE)"

step "7. stop it and clean up"
kill -TERM "$PID"
for ((i = 0; i < 100; i++)); do
	kill -0 "$PID" 2>/dev/null || break
	sleep 0.05
done
kill -0 "$PID" 2>/dev/null && fail "workload $PID did not stop"
echo "workload $PID stopped"
PID=

# ---------------------------------------------------------------- live migration

MLOG="$WORK/migload.log"
DATA="$WORK/migload.data"
PORT=7707

# Last tick number in the migration's log.
mig_last_tick() { awk '{ t = $14 } END { print t + 0 }' "$MLOG"; }

# Wait (bounded) until the migration's log has more than $1 ticks.
mig_wait_ticks() {
	local want=$1 i
	for ((i = 0; i < 200; i++)); do
		[ "$(mig_last_tick)" -gt "$want" ] && return 0
		sleep 0.05
	done
	fail "the migration's workload stopped ticking (log has $(mig_last_tick) ticks, wanted more than $want)"
}

# The root and worker of the migration's workload, every thread, in the PID
# namespace of the process $1 (empty: ours); without the short-lived children.
mig_tree() {
	local in=()
	[ -z "${1:-}" ] || in=(nsenter -t "$1" -p -m)
	"${in[@]}" ps -eLo pid,tid,ppid,pgid,sid,stat,comm |
		awk -v r="$MPID" -v w="$MWORKER" 'NR == 1 || $1 == r || $1 == w'
}

step "8. live migration: a destination in network and PID namespaces of its own"
# A free /24 for the veth pair, 10.77.N.0/24 (another demo may hold one).
NET=
for n in $(seq 0 255); do
	if ! ip -4 -o addr show | grep -q " 10\.77\.$n\."; then
		NET=10.77.$n
		break
	fi
done
[ -n "$NET" ] || fail "no free 10.77.N.0/24 for the veth pair"
SRC_ADDR=$NET.1
DST_ADDR=$NET.2
ID=${CKPT_DEMO_ID:-$RANDOM}
# The network namespace, held by a sleep; the veth pair between it and ours.
unshare -n sleep infinity &
HOLDER=$!
for ((i = 0; i < 100; i++)); do
	[ "$(readlink "/proc/$HOLDER/ns/net" 2>/dev/null)" != "$(readlink /proc/self/ns/net)" ] && break
	sleep 0.02
done
SRC_NS=$(readlink /proc/self/ns/net)
DST_NS=$(readlink "/proc/$HOLDER/ns/net")
[ "$DST_NS" != "$SRC_NS" ] || fail "the destination's network namespace did not come up"
VETH=ckdemo${ID}h
ip link add "$VETH" type veth peer name "ckdemo${ID}d" netns "$HOLDER" || fail "ip link add $VETH"
ip addr add "$SRC_ADDR/24" dev "$VETH"
ip link set "$VETH" up
nsenter -t "$HOLDER" -n ip addr add "$DST_ADDR/24" dev "ckdemo${ID}d"
nsenter -t "$HOLDER" -n ip link set "ckdemo${ID}d" up
nsenter -t "$HOLDER" -n ip link set lo up
echo "host:        $SRC_NS  $VETH $SRC_ADDR/24"
echo "destination: $DST_NS  ckdemo${ID}d $DST_ADDR/24"

# The destination: a new PID namespace (the source's PIDs are free there) in
# that network namespace, whose init is a shell that reaps orphans; ckpt
# receive is its child. Its output goes to receive.out.
nsenter -t "$HOLDER" -n unshare -fp --kill-child --mount-proc \
	bash -c '"$1" receive --listen "$2" -v3 -o "$3/receive.log"; echo "receive exited $?"
		 while :; do sleep 1; done' receive "$CKPT" "$DST_ADDR:$PORT" "$WORK" \
	>"$WORK/receive.out" 2>&1 </dev/null &
DEST=$!
for ((i = 0; i < 200; i++)); do
	grep -q '^listening on' "$WORK/receive.out" && break
	grep -q 'receive exited' "$WORK/receive.out" && break
	sleep 0.05
done
grep -q '^listening on' "$WORK/receive.out" || {
	cat "$WORK/receive.out" "$WORK/receive.log" >&2 2>/dev/null
	fail "ckpt receive did not listen on $DST_ADDR:$PORT"
}
DINIT=$(cat "/proc/$DEST/task/$DEST/children" 2>/dev/null | awk '{ print $1 }')
[ -n "$DINIT" ] || fail "no init in the destination's PID namespace"
echo "\$ ckpt receive --listen $DST_ADDR:$PORT   (in there, PID 2 of its PID namespace)"
sed 's/^/  /' "$WORK/receive.out"

step "9. start the migration's workload on the host"
"$MIGLOAD" --data "$DATA" || fail "cannot write $DATA"
"$MIGLOAD" "$DATA" >"$MLOG" 2>&1 </dev/null &
MPID=$!
# It ends on the host by SIGKILL (migrate's final dump): not a job to report.
disown "$MPID"
mig_wait_ticks 25
MWORKER=$(awk 'NR == 1 { print $4 }' "$MLOG")
echo "root $MPID (a thread forks a child every 100 ms), worker $MWORKER (a thread ticks every 20 ms: an AIO read, a line over the pipe)"
tail -n 2 "$MLOG" | sed 's/^/  /'
mig_tree | tee "$WORK/mig.before" | sed 's/^/  /'
echo "and the children of the moment:"
ps -o pid,ppid,stat,comm --ppid "$MPID" | sed 's/^/  /'

step "10. migrate it: ckpt migrate -t $MPID --to $DST_ADDR:$PORT"
T_START=$(mig_last_tick)
"$CKPT" migrate -t "$MPID" --to "$DST_ADDR:$PORT" -v3 -o "$WORK/migrate.log" \
	>"$WORK/migrate.out" 2>&1 || MRC=$?
sed 's/^/  /' "$WORK/migrate.out"
if [ "${MRC:-0}" != 0 ]; then
	echo "migrate's log:" >&2
	tail -n 30 "$WORK/migrate.log" >&2
	echo "receive's output and log:" >&2
	cat "$WORK/receive.out" >&2
	tail -n 30 "$WORK/receive.log" >&2
	fail "ckpt migrate exited ${MRC}"
fi
T_END=$(mig_last_tick)
echo "the destination said:"
sed 's/^/  /' "$WORK/receive.out"
DOWNTIME=$(sed -n 's/.*migrated, downtime \([0-9.]*\) ms.*/\1/p' "$WORK/migrate.out")
ROUNDS=$(grep -c '^round ' "$WORK/migrate.out" || true)
[ -n "$DOWNTIME" ] || fail "no 'migrated, downtime X ms' line from ckpt migrate"

step "11. the tree runs on in the destination"
# The source is gone: no task here has its PID in our PID namespace.
for ((i = 0; i < 100; i++)); do
	[ -d "/proc/$MPID" ] && [ "$(readlink "/proc/$MPID/ns/pid")" = "$(readlink /proc/self/ns/pid)" ] ||
		break
	sleep 0.05
done
[ -d "/proc/$MPID" ] && [ "$(readlink "/proc/$MPID/ns/pid")" = "$(readlink /proc/self/ns/pid)" ] &&
	fail "the source's root $MPID still runs on the host"
mig_wait_ticks $((T_END + 30))
mig_tree "$DINIT" | tee "$WORK/mig.after" | sed 's/^/  /'
# Same PIDs, TIDs, groups and sessions (the root's parent is now ckpt receive).
diff <(awk '{ print $1, $2, $4, $5, $7 }' "$WORK/mig.before") \
     <(awk '{ print $1, $2, $4, $5, $7 }' "$WORK/mig.after") ||
	fail "the migrated tree differs from the source's"
echo "and the children of the moment, forked there:"
nsenter -t "$DINIT" -p -m ps -o pid,ppid,stat,comm --ppid "$MPID" | sed 's/^/  /'

step "12. its log goes on: no gap, no repeat, every AIO read and child checked"
# pid R worker W forks F exits E bad B thread T tick N sum S aio A ms M net:[X]
awk -v src="$SRC_NS" -v dst="$DST_NS" '
	NR == 1 { root = $2; worker = $4; thread = $12 }
	$2 != root || $4 != worker || $12 != thread {
		printf "line %d: pid %s worker %s thread %s, expected %s %s %s\n", NR, $2, $4,
		       $12, root, worker, thread; bad = 1; exit
	}
	$14 != NR { printf "line %d: tick %s, expected %d (gap or repeat)\n", NR, $14, NR; bad = 1; exit }
	{ sum = (sum * 31 + NR) % 1000000007 }
	$16 != sum { printf "line %d: sum %s, expected %d\n", NR, $16, sum; bad = 1; exit }
	$18 != $14 { printf "line %d: %s good AIO reads in %s ticks\n", NR, $18, $14; bad = 1; exit }
	$10 != 0 { printf "line %d: %s children exited with a wrong status\n", NR, $10; bad = 1; exit }
	$6 < forks || $8 < exits { printf "line %d: fork or exit count went back\n", NR; bad = 1; exit }
	$21 != src && $21 != dst { printf "line %d: network namespace %s\n", NR, $21; bad = 1; exit }
	$21 == src && moved { printf "line %d: back in the source\n", NR; bad = 1; exit }
	$21 == dst && !moved { moved = NR; gap = $20 - ms; f0 = $6; e0 = $8 }
	NR > 1 && $20 - ms > maxgap { maxgap = $20 - ms; maxat = NR }
	{ forks = $6; exits = $8; ms = $20 }
	END {
		if (bad)
			exit 1
		if (!moved) { print "the log never moved to the destination"; exit 1 }
		if (forks <= f0 || exits <= e0) {
			printf "no child forked or reaped after the move (forks %d, exits %d)\n", forks, exits
			exit 1
		}
		printf "ticks 1..%d, one line each; on the destination from tick %d on\n", NR, moved
		printf "the workload'"'"'s own clock: ticks %d and %d were %d ms apart (ticks every 20 ms; longest gap %d ms, at tick %d)\n",
		       moved - 1, moved, gap, maxgap, maxat
		printf "children: %d forked and %d reaped on the host, %d and %d since on the destination, none with a wrong exit status\n",
		       f0, e0, forks - f0, exits - e0
	}
' "$MLOG" >"$WORK/check.out" || {
	cat "$WORK/check.out" >&2
	fail "the migration's log is not one unbroken sequence"
}
MOVED=$(awk -v dst="$DST_NS" '$21 == dst { print NR; exit }' "$MLOG")
sed -n "$((MOVED - 2)),$((MOVED + 1))p" "$MLOG" | cut -c1-160 | sed 's/^/  /'
sed 's/^/  /' "$WORK/check.out"
echo
echo "migration: $ROUNDS pre-copy round(s) while it ran, then the final one; downtime $DOWNTIME ms (ckpt migrate)"
echo "migration: PASS"

step "13. stop it and clean up"
# The destination's PID namespace goes with its init (unshare --kill-child).
kill -KILL "$DEST"
{ wait "$DEST"; } 2>/dev/null || true
DEST=
kill -KILL "$HOLDER"
{ wait "$HOLDER"; } 2>/dev/null || true
HOLDER=
for ((i = 0; i < 100; i++)); do
	ip link show "$VETH" >/dev/null 2>&1 || break
	sleep 0.05
done
ip link show "$VETH" >/dev/null 2>&1 && fail "veth $VETH is still there"
VETH=
MPID=
echo "the destination's namespaces and the veth pair are gone"
