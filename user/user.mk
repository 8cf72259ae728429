# SPDX-License-Identifier: MIT
# user/lib -> build/libckpt.a; user/ckpt -> build/ckpt
LIB_SRCS  := $(wildcard user/lib/*.c)
LIB_OBJS  := $(patsubst %.c,$(B)/%.o,$(LIB_SRCS))
CKPT_SRCS := $(wildcard user/ckpt/*.c)
CKPT_OBJS := $(patsubst %.c,$(B)/%.o,$(CKPT_SRCS))
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

$(B)/ckpt: $(CKPT_OBJS) $(B)/libckpt.a
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $(CKPT_OBJS) $(B)/libckpt.a $(PKG_LIBS)

ckpt: $(B)/ckpt
.PHONY: ckpt
