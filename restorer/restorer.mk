# SPDX-License-Identifier: MIT
# The PIE blobs: restorer/{parasite,restore} + rt + arch stubs
#   -> build/restorer/<blob>.elf (checked: no relocations, no GOT)
#   -> build/restorer/<blob>.bin -> build/restorer/<blob>-blob.h
BLOB_CFLAGS := -O2 -g0 -std=gnu11 -Wall -Wextra -Wno-unused-parameter \
	-ffreestanding -fno-builtin -fpie -fvisibility=hidden -fno-stack-protector \
	-fno-asynchronous-unwind-tables -fno-unwind-tables -fno-exceptions \
	-fno-tree-loop-distribute-patterns -fno-jump-tables -fno-plt -fcf-protection=none \
	-mgeneral-regs-only -mno-red-zone -U_FORTIFY_SOURCE -D_FORTIFY_SOURCE=0 -nostdinc \
	-isystem $(shell $(CC) -print-file-name=include) -I/usr/include -I/usr/include/x86_64-linux-gnu \
	-Irestorer/include -I$(B)/restorer
BLOB_MAX_SIZE := 65536

# One run writes both files: the header is made with the .S, so that a
# parallel make never runs the generator twice at once.
$(B)/restorer/syscalls.S: restorer/rt/syscalls.tbl scripts/gen-syscalls.sh
	$(call msg,GEN,$@)
	@mkdir -p $(@D)
	$(Q)scripts/gen-syscalls.sh $< $(B)/restorer/syscalls.S $(B)/restorer/syscalls.h
$(B)/restorer/syscalls.h: $(B)/restorer/syscalls.S
	$(Q)test -f $@ || scripts/gen-syscalls.sh restorer/rt/syscalls.tbl $(B)/restorer/syscalls.S $@

RT_OBJS := $(B)/restorer/rt/string.o $(B)/restorer/rt/log.o $(B)/restorer/syscalls.o

$(B)/restorer/%.o: restorer/%.c $(B)/restorer/syscalls.h $(wildcard restorer/include/*.h)
	$(call msg,BLOBCC,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) $(BLOB_CFLAGS) -c -o $@ $<

$(B)/restorer/%.o: restorer/%.S
	$(call msg,BLOBAS,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) $(BLOB_CFLAGS) -c -o $@ $<

$(B)/restorer/syscalls.o: $(B)/restorer/syscalls.S
	$(call msg,BLOBAS,$@)
	$(Q)$(CC) $(BLOB_CFLAGS) -c -o $@ $<

PARASITE_OBJS := $(B)/restorer/arch/x86_64/parasite-head.o $(B)/restorer/parasite/parasite.o $(RT_OBJS)
RESTORER_OBJS := $(B)/restorer/arch/x86_64/restorer-head.o $(B)/restorer/restore/restorer.o $(RT_OBJS)

$(B)/restorer/parasite.elf: $(PARASITE_OBJS) restorer/blob.lds
	$(call msg,BLOBLD,$@)
	$(Q)$(LD) -pie --no-dynamic-linker -z noexecstack -T restorer/blob.lds \
		-e export_parasite_entry --require-defined=export_parasite_entry --no-warn-rwx-segments -o $@ $(PARASITE_OBJS)

$(B)/restorer/restorer.elf: $(RESTORER_OBJS) restorer/blob.lds
	$(call msg,BLOBLD,$@)
	$(Q)$(LD) -pie --no-dynamic-linker -z noexecstack -T restorer/blob.lds \
		-e export_restorer_entry --require-defined=export_restorer_entry --no-warn-rwx-segments -o $@ $(RESTORER_OBJS)

$(B)/restorer/%-blob.h: $(B)/restorer/%.elf scripts/gen-blob.sh
	$(call msg,GEN,$@)
	$(Q)NM=$(NM) OBJCOPY=$(OBJCOPY) scripts/gen-blob.sh $< $* $(BLOB_MAX_SIZE) $@

BLOB_HDRS := $(B)/restorer/parasite-blob.h $(B)/restorer/restorer-blob.h
blobs: $(BLOB_HDRS)
.PHONY: blobs
