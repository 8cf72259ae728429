# SPDX-License-Identifier: MIT
# selftests/<area>/<name>_test.c -> build/selftests/<area>/<name>_test, linked with the harness
# library (build/selftests/libselftest.a: selftests/lib/*.c). Not with libckpt.a: an area that
# needs it (codec unit tests) adds it as a prerequisite of its binaries in its own
# selftests/<area>/<area>.mk, e.g.
#	SELFTEST_BINS += $(B)/selftests/image/foo_test
#	$(B)/selftests/image/foo_test: $(B)/libckpt.a
#	$(B)/selftests/image/foo_test: SELFTEST_LDLIBS += $(PKG_LIBS)
# Any .a or .o prerequisite of a test binary is linked in, after the harness library (whose
# image helpers, cr_img.c, use libckpt.a). An area .mk may also give its own
# explicit rule for a binary. Every area directory with a settings file (timeout=N) and a
# config file (kernel options) is run by selftests/run_tests.sh.

SELFTEST_LIB_SRCS := $(wildcard selftests/lib/*.c)
SELFTEST_LIB_OBJS := $(patsubst %.c,$(B)/%.o,$(SELFTEST_LIB_SRCS))
SELFTEST_LIB      := $(B)/selftests/libselftest.a
SELFTEST_CFLAGS   := -Iselftests/lib -Iuser/lib -I$(B)/proto $(PKG_CFLAGS)
SELFTEST_LDLIBS   :=

SELFTEST_SRCS := $(wildcard selftests/*/*_test.c)
SELFTEST_BINS := $(patsubst selftests/%.c,$(B)/selftests/%,$(SELFTEST_SRCS))

# Other areas' fragments (e.g. selftests/image/image.mk) may append to SELFTEST_BINS.
-include $(wildcard selftests/*/*.mk)
SELFTEST_BINS := $(sort $(SELFTEST_BINS))

$(B)/selftests/lib/%.o: selftests/lib/%.c $(wildcard selftests/lib/*.h)
	$(call msg,CC,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $(SELFTEST_CFLAGS) -c -o $@ $<

$(SELFTEST_LIB): $(SELFTEST_LIB_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(B)/selftests/%: selftests/%.c $(SELFTEST_LIB) $(wildcard selftests/lib/*.h)
	$(call msg,CC,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $(SELFTEST_CFLAGS) $(LDFLAGS) -o $@ $< $(SELFTEST_LIB) \
		$(filter-out $(SELFTEST_LIB),$(filter %.o %.a,$^)) $(SELFTEST_LDLIBS)

selftests: $(SELFTEST_BINS)

run_tests: ckpt trackd selftests
	$(Q)B=$(B) selftests/run_tests.sh $(SELFTEST_BINS)

.PHONY: selftests run_tests
