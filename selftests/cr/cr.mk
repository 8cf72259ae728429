# SPDX-License-Identifier: MIT
# selftests/cr: C/R tests that rewrite images between dump and restore use the image codec,
# so they link build/libckpt.a (and need the generated build/proto/*.pb-c.h).
CR_CODEC_TESTS := $(B)/selftests/cr/image_restore_test $(B)/selftests/cr/vdso_test \
		  $(B)/selftests/cr/tree_fault_test $(B)/selftests/cr/fixup_test

$(CR_CODEC_TESTS): $(B)/libckpt.a $(PROTO_H) $(wildcard user/lib/*.h)
$(CR_CODEC_TESTS): SELFTEST_LDLIBS += $(PKG_LIBS)
$(B)/selftests/lib/cr_img.o: $(PROTO_H)
