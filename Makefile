# SPDX-License-Identifier: MIT
# ckpt: top-level build. Every output goes under build/.
#   make            build ckpt and the selftests
#   make check      install missing packages, build, run every selftest
#   make demo       install missing packages, build, checkpoint and restore a live workload, migrate one live
#   make bench      run the benchmarks in scripts/bench/
#   make install    install ckpt and trackd into $(DESTDIR)$(PREFIX)/sbin

.DELETE_ON_ERROR:
# Generated files are kept, so a rebuild does not recompile everything.
.SECONDARY:
.SUFFIXES:

B        := build
PREFIX   ?= /usr/local
CC       ?= gcc
LD       ?= ld
OBJCOPY  ?= objcopy
NM       ?= nm
PROTOC_C ?= protoc-c
PKG      := libprotobuf-c libcap
PKG_CFLAGS := $(shell pkg-config --cflags $(PKG) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKG) 2>/dev/null)

WARN     := -Wall -Wextra -Wno-unused-parameter -Wmissing-prototypes -Wstrict-prototypes
ifneq ($(CI),)
WARN     += -Werror
endif
CFLAGS   ?= -O2 -g
override CFLAGS += $(WARN) -std=gnu11 -D_GNU_SOURCE
LDFLAGS  ?=

ifeq ($(V),1)
Q :=
msg :=
else
Q := @
msg = @printf '  %-8s %s\n' $(1) $(2);
endif

all: ckpt trackd selftests

include proto/proto.mk
include bpf/bpf.mk
include restorer/restorer.mk
include user/user.mk
include selftests/selftests.mk
include scripts/bench/bench.mk

deps:
	$(Q)scripts/install-deps.sh

check: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)$(MAKE) --no-print-directory run_tests

demo: deps
	$(Q)$(MAKE) --no-print-directory ckpt trackd
	$(Q)scripts/demo.sh

install: ckpt trackd
	install -D -m 0755 $(B)/ckpt $(DESTDIR)$(PREFIX)/sbin/ckpt
	install -D -m 0755 $(B)/trackd $(DESTDIR)$(PREFIX)/sbin/trackd

clean:
	rm -rf $(B)

.PHONY: all deps check demo install clean
