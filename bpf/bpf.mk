# SPDX-License-Identifier: MIT
# bpf/<name>.bpf.c -> build/bpf/<name>.bpf.o (CO-RE, DWARF stripped, BTF kept) -> <name>.skel.h.
# vmlinux.h is dumped from the running kernel's BTF; it is never committed.
BPFTOOL   ?= bpftool
CLANG     ?= clang
LLVM_STRIP ?= llvm-strip
VMLINUX_BTF ?= /sys/kernel/btf/vmlinux
BPF_SRCS  := $(wildcard bpf/*.bpf.c)
BPF_OBJS  := $(patsubst bpf/%.bpf.c,$(B)/bpf/%.bpf.o,$(BPF_SRCS))
BPF_SKELS := $(patsubst bpf/%.bpf.c,$(B)/bpf/%.skel.h,$(BPF_SRCS))
VMLINUX_H := $(B)/bpf/vmlinux.h
BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_x86 -Wall -Wno-unused-parameter
ifneq ($(CI),)
BPF_CFLAGS += -Werror
endif

$(VMLINUX_H): $(VMLINUX_BTF)
	$(call msg,GEN,$@)
	@mkdir -p $(@D)
	$(Q)$(BPFTOOL) btf dump file $< format c >$@

$(B)/bpf/%.bpf.o: bpf/%.bpf.c $(wildcard bpf/*.h) $(VMLINUX_H)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -I$(B)/bpf -I. -c -o $@ $<
	$(Q)$(LLVM_STRIP) -g $@

$(B)/bpf/%.skel.h: $(B)/bpf/%.bpf.o
	$(call msg,GENSKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< >$@
