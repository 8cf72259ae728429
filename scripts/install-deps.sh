#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Install the build and test dependencies of ckpt on Debian/Ubuntu.
# Idempotent: when nothing is missing, apt is not touched at all.
set -eu

pkgs=(
	make gcc binutils pkg-config
	libbpf-dev libelf-dev zlib1g-dev
	libprotobuf-c-dev protobuf-c-compiler
	libcap-dev
	clang llvm
	iproute2 util-linux procps time
	python3
	redis-server nftables
)

missing=()
for p in "${pkgs[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done
# bpftool is its own package on newer releases, part of linux-tools before.
if ! command -v bpftool >/dev/null 2>&1; then
	missing+=(bpftool)
fi
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing packages: ${missing[*]}; run as root" >&2
	exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Names this release does not know (bpftool on old ones) are not fatal.
avail=()
for p in "${missing[@]}"; do
	if apt-cache show "$p" >/dev/null 2>&1; then
		avail+=("$p")
	else
		echo "install-deps: package '$p' is not available here, skipping" >&2
	fi
done
[ ${#avail[@]} -eq 0 ] || apt-get install -y -qq --no-install-recommends "${avail[@]}" >/dev/null
