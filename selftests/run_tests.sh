#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs selftest binaries (arguments, or every executable under $B/selftests/<area>/), each
# under the timeout of selftests/<area>/settings (timeout=N), prints TAP 13 with each
# binary's own TAP as "# " comment lines, and ends with one line:
#   selftests: N passed, N failed, N skipped
# counting individual test cases. Exit 1 if any failed.
set -u

B=${B:-build}
here=$(cd "$(dirname "$0")" && pwd)

if [ $# -eq 0 ]; then
	set -- $(find "$B/selftests" -mindepth 2 -maxdepth 2 -type f -perm -u+x 2>/dev/null | sort)
fi

pass=0
fail=0
skip=0
n=0
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT INT TERM

echo "TAP version 13"
echo "1..$#"
for bin in "$@"; do
	n=$((n + 1))
	area=$(basename "$(dirname "$bin")")
	name=$(basename "$bin")
	timeout=120
	if [ -f "$here/$area/settings" ]; then
		t=$(sed -n 's/^timeout=\([0-9][0-9]*\)$/\1/p' "$here/$area/settings" | tail -n 1)
		[ -n "$t" ] && timeout=$t
	fi
	echo "# selftests: $area: $name (timeout ${timeout}s)"
	if [ ! -x "$bin" ]; then
		echo "not ok $n selftests: $area: $name # not built"
		fail=$((fail + 1))
		continue
	fi
	timeout --kill-after=10 "$timeout" "$bin" >"$tmp" 2>&1
	rc=$?
	sed 's/^/# /' "$tmp"

	plan=$(sed -n 's/^1\.\.\([0-9][0-9]*\)$/\1/p' "$tmp" | head -n 1)
	p=$(grep -c '^ok [0-9]' "$tmp")
	s=$(grep -c '^ok [0-9].* # SKIP' "$tmp")
	f=$(grep -c '^not ok [0-9]' "$tmp")
	p=$((p - s))
	seen=$((p + s + f))
	# Cases the binary never reported (it crashed or timed out) count as failed.
	if [ -n "$plan" ] && [ "$seen" -lt "$plan" ]; then
		echo "# $name: $((plan - seen)) planned case(s) not reported"
		f=$((f + plan - seen))
	fi
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1
	fi
	pass=$((pass + p))
	skip=$((skip + s))
	fail=$((fail + f))
	if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
		echo "not ok $n selftests: $area: $name # TIMEOUT ${timeout}s"
	elif [ "$f" -gt 0 ]; then
		echo "not ok $n selftests: $area: $name # exit=$rc"
	elif [ "$p" -eq 0 ] && [ "$s" -gt 0 ]; then
		echo "ok $n selftests: $area: $name # SKIP all $s case(s), reasons above"
	else
		echo "ok $n selftests: $area: $name"
	fi
done

echo "selftests: $pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
