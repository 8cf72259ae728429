# SPDX-License-Identifier: MIT
# anonfd_test rewrites images between dump and restore (hostile cases): it links the codec.
$(B)/selftests/cr/anonfd_test: $(B)/libckpt.a $(PROTO_H) $(wildcard user/lib/*.h)
$(B)/selftests/cr/anonfd_test: SELFTEST_LDLIBS += $(PKG_LIBS)
