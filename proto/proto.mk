# SPDX-License-Identifier: MIT
# proto/*.proto -> build/proto/*.pb-c.[ch]
PROTO_SRCS := $(wildcard proto/*.proto)
PROTO_C    := $(patsubst proto/%.proto,$(B)/proto/%.pb-c.c,$(PROTO_SRCS))
PROTO_H    := $(PROTO_C:.c=.h)
PROTO_OBJS := $(PROTO_C:.c=.o)

$(B)/proto/%.pb-c.c $(B)/proto/%.pb-c.h: proto/%.proto
	$(call msg,PROTOC,$<)
	@mkdir -p $(@D)
	$(Q)$(PROTOC_C) --proto_path=proto --c_out=$(B)/proto $<

$(B)/proto/%.pb-c.o: $(B)/proto/%.pb-c.c $(PROTO_H)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -Wno-missing-prototypes $(PKG_CFLAGS) -I$(B)/proto -c -o $@ $<
