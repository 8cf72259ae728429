# SPDX-License-Identifier: MIT
# selftests/trackd: written-page tracking (dirty_test).
#   dirty_test    links the engine's wptrack/infect/blob objects and libckpt.a
$(B)/selftests/trackd/dirty_test: $(B)/user/ckpt/infect.o $(B)/user/ckpt/blob.o \
		$(B)/user/ckpt/wptrack.o $(B)/libckpt.a $(PROTO_H)
$(B)/selftests/trackd/dirty_test: SELFTEST_CFLAGS += -Iuser/ckpt -Irestorer/include -I$(B)/restorer
$(B)/selftests/trackd/dirty_test: SELFTEST_LDLIBS += $(PKG_LIBS)
