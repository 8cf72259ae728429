# SPDX-License-Identifier: MIT
# selftests/trackd: the BPF tracker, written-page tracking, and trackd end to end.
#   bpf_test      links user/trackd/track.o (the skeleton's only includer) and libbpf
#   dirty_test    links the engine's wptrack/infect/blob objects and libckpt.a
#   trackd_test   runs build/trackd and reads the changelog with libckpt.a's reader
$(B)/selftests/trackd/bpf_test: $(B)/user/trackd/track.o $(B)/libckpt.a
$(B)/selftests/trackd/bpf_test: SELFTEST_CFLAGS += -I. -Iuser/trackd
$(B)/selftests/trackd/bpf_test: SELFTEST_LDLIBS += $(PKG_LIBS) $(BPF_PKG_LIBS)

$(B)/selftests/trackd/dirty_test: $(TRACKD_ENGINE) $(B)/libckpt.a $(PROTO_H)
$(B)/selftests/trackd/dirty_test: SELFTEST_CFLAGS += -Iuser/ckpt -Irestorer/include -I$(B)/restorer
$(B)/selftests/trackd/dirty_test: SELFTEST_LDLIBS += $(PKG_LIBS)

$(B)/selftests/trackd/trackd_test: $(B)/libckpt.a $(PROTO_H)
$(B)/selftests/trackd/trackd_test: SELFTEST_CFLAGS += -I. -I$(B)/proto
$(B)/selftests/trackd/trackd_test: SELFTEST_LDLIBS += $(PKG_LIBS)
