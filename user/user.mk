# SPDX-License-Identifier: MIT
# user/lib -> build/libckpt.a; user/ckpt -> build/ckpt; user/trackd -> build/trackd
LIB_SRCS  := $(wildcard user/lib/*.c)
LIB_OBJS  := $(patsubst %.c,$(B)/%.o,$(LIB_SRCS))
CKPT_SRCS := $(wildcard user/ckpt/*.c)
CKPT_OBJS := $(patsubst %.c,$(B)/%.o,$(CKPT_SRCS))
TRACKD_SRCS := $(wildcard user/trackd/*.c)
TRACKD_OBJS := $(patsubst %.c,$(B)/%.o,$(TRACKD_SRCS))
# trackd sets up written-page tracking from inside targets with the engine's infection code.
TRACKD_ENGINE := $(B)/user/ckpt/infect.o $(B)/user/ckpt/blob.o $(B)/user/ckpt/wptrack.o
BPF_PKG_CFLAGS := $(shell pkg-config --cflags libbpf 2>/dev/null)
BPF_PKG_LIBS   := $(shell pkg-config --libs libbpf 2>/dev/null || echo -lbpf) -lelf -lz
USER_INC  := -Iuser/lib -Iuser/ckpt -Irestorer/include -I$(B)/proto -I$(B)/restorer $(PKG_CFLAGS)

$(B)/user/%.o: user/%.c $(PROTO_H) $(wildcard user/lib/*.h user/ckpt/*.h restorer/include/*.h)
	$(call msg,CC,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $(USER_INC) -c -o $@ $<

# blob.c embeds the blobs: it is the only includer of the generated headers.
$(B)/user/ckpt/blob.o: $(BLOB_HDRS)

$(B)/libckpt.a: $(LIB_OBJS) $(PROTO_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

# aio_inflight.c is the only includer of aio.skel.h (bpf/aio.bpf.c).
$(B)/user/ckpt/aio_inflight.o: USER_INC += -I$(B)/bpf $(BPF_PKG_CFLAGS)
$(B)/user/ckpt/aio_inflight.o: $(B)/bpf/aio.skel.h

# dump_log.c asks trackd for a mark through trackd's control protocol (ctl.c); migrate.c finds,
# asks and stops a trackd through it.
$(B)/user/ckpt/dump_log.o: USER_INC += -Iuser/trackd
$(B)/user/ckpt/dump_log.o: user/trackd/ctl.h
$(B)/user/ckpt/migrate.o: USER_INC += -Iuser/trackd
$(B)/user/ckpt/migrate.o: user/trackd/ctl.h

$(B)/ckpt: $(CKPT_OBJS) $(B)/user/trackd/ctl.o $(B)/libckpt.a
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $(CKPT_OBJS) $(B)/user/trackd/ctl.o $(B)/libckpt.a $(PKG_LIBS) \
		$(BPF_PKG_LIBS)

# -I. for bpf/*.h (records shared with the BPF side), $(B)/bpf for the skeletons.
$(TRACKD_OBJS): USER_INC += -I. -Iuser/trackd -I$(B)/bpf $(BPF_PKG_CFLAGS)
$(TRACKD_OBJS): $(BPF_SKELS) $(wildcard user/trackd/*.h bpf/*.h)

# opts.o: CKPT_FAULT points (fault_injected) of the engine code.
$(B)/trackd: $(TRACKD_OBJS) $(TRACKD_ENGINE) $(B)/user/ckpt/opts.o $(B)/libckpt.a
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $(TRACKD_OBJS) $(TRACKD_ENGINE) $(B)/user/ckpt/opts.o \
		$(B)/libckpt.a $(PKG_LIBS) $(BPF_PKG_LIBS)

ckpt: $(B)/ckpt
trackd: $(B)/trackd
.PHONY: ckpt trackd
