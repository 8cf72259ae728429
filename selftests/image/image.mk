# SPDX-License-Identifier: MIT
# selftests/image: image codec unit tests, linked against build/libckpt.a.
SELFTEST_BINS += $(B)/selftests/image/image_test

$(B)/selftests/image/image_test: selftests/image/image_test.c $(B)/libckpt.a $(PROTO_H) \
		$(wildcard user/lib/*.h)
	$(call msg,CC,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $(USER_INC) -o $@ $< $(B)/libckpt.a $(PKG_LIBS)

# changelog_test: the trackd changelog codec (harness-based) and `ckpt show --log`, which it runs
# from build/ckpt (or $CKPT).
SELFTEST_BINS += $(B)/selftests/image/changelog_test

$(B)/selftests/image/changelog_test: selftests/image/changelog_test.c $(SELFTEST_LIB) \
		$(B)/libckpt.a $(PROTO_H) $(wildcard selftests/lib/*.h user/lib/*.h)
	$(call msg,CC,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $(SELFTEST_CFLAGS) $(USER_INC) $(LDFLAGS) -o $@ $< $(SELFTEST_LIB) \
		$(B)/libckpt.a $(PKG_LIBS)

# pages_test: `ckpt show DIR --pages` on dumps written with the codec (harness-based); it runs
# build/ckpt (or $CKPT).
SELFTEST_BINS += $(B)/selftests/image/pages_test

$(B)/selftests/image/pages_test: $(B)/libckpt.a $(PROTO_H) $(wildcard user/lib/*.h)
$(B)/selftests/image/pages_test: SELFTEST_LDLIBS += $(PKG_LIBS)

# stream_test: the migration stream and the memdir (user/ckpt/stream.c, memdir.c, linked in;
# harness-based).
SELFTEST_BINS += $(B)/selftests/image/stream_test

$(B)/selftests/image/stream_test: $(B)/user/ckpt/stream.o $(B)/user/ckpt/memdir.o $(B)/libckpt.a \
		user/ckpt/stream.h user/ckpt/memdir.h
$(B)/selftests/image/stream_test: SELFTEST_CFLAGS += -Iuser/ckpt
$(B)/selftests/image/stream_test: SELFTEST_LDLIBS += $(PKG_LIBS)
