#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Install the build and test dependencies of ckpt on Debian/Ubuntu.
# Idempotent: packages already present are not touched, and apt is not
# consulted at all when nothing is missing.
set -eu

pkgs=(
	make gcc pkg-config
	libbpf-dev libelf-dev zlib1g-dev
	libprotobuf-c-dev protobuf-c-compiler
	libcap-dev
	clang llvm
	iproute2 util-linux procps
)
# bpftool lives in its own package on newer releases, in linux-tools before.
if apt-cache show bpftool >/dev/null 2>&1 || ! command -v apt-cache >/dev/null; then
	pkgs+=(bpftool)
fi

missing=()
for p in "${pkgs[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing packages: ${missing[*]}; run as root" >&2
	exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
