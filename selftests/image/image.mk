# SPDX-License-Identifier: MIT
# selftests/image: image codec unit tests, linked against build/libckpt.a.
SELFTEST_BINS += $(B)/selftests/image/image_test

$(B)/selftests/image/image_test: selftests/image/image_test.c $(B)/libckpt.a $(PROTO_H) \
		$(wildcard user/lib/*.h)
	$(call msg,CC,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $(USER_INC) -o $@ $< $(B)/libckpt.a $(PKG_LIBS)
