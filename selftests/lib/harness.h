/* SPDX-License-Identifier: MIT */
/*
 * harness.h: a small test framework in the shape of the kernel's kselftest harness, written
 * for ckpt.
 *
 *	TEST(name) { ... }
 *	TEST_TIMEOUT(name, seconds) { ... }
 *	FIXTURE(f) { fields };
 *	FIXTURE_VARIANT(f) { fields };
 *	FIXTURE_VARIANT_ADD(f, v) { .field = ... };
 *	FIXTURE_SETUP(f) { self, variant }
 *	FIXTURE_TEARDOWN(f) { self, variant }
 *	TEST_F(f, name) { self, variant }
 *	TEST_F_TIMEOUT(f, name, seconds) { ... }
 *	TEST_HARNESS_MAIN
 *
 * Every test runs in its own forked child (own process group) with a timeout, 60 s unless
 * set. ASSERT_*() stops the test (the teardown still runs), EXPECT_*() records a failure and
 * goes on, SKIP(statement, fmt, ...) marks the test skipped and runs the statement (usually
 * `return`). A test child that exits with 4 is skipped, 0 passes, anything else fails.
 * Output is TAP 13 on stdout; diagnostics are "# " comment lines.
 *
 * The main process is a child subreaper: after each test it kills and reaps every process
 * the test left behind and says so in a comment.
 *
 * Options of the test binary: -l lists the tests, -t SUBSTR runs only the tests whose
 * full name (fixture.variant.test) contains SUBSTR (may be repeated).
 */
#ifndef SELFTESTS_HARNESS_H
#define SELFTESTS_HARNESS_H

#include <setjmp.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <sys/types.h>

#define TH_EXIT_PASS	0
#define TH_EXIT_FAIL	1
#define TH_EXIT_SKIP	4
#define TH_TIMEOUT_DEFAULT	60

struct th_meta {
	const char *name;	/* full test name */
	bool failed;
	bool skipped;
	bool teardown_done;
	int step;		/* bumped by every ASSERT/EXPECT, for messages */
	jmp_buf env;		/* ASSERT failures jump back to the harness */
};

struct th_fixture;
struct th_variant {
	const char *name;
	const void *data;
	struct th_variant *next;
};

typedef void (*th_setup_fn)(struct th_meta *_metadata, void *self, const void *variant);
typedef void (*th_test_fn)(struct th_meta *_metadata, void *self, const void *variant);

struct th_fixture {
	const char *name;
	size_t self_size;
	th_setup_fn setup;
	th_setup_fn teardown;
	struct th_variant *variants;
	struct th_fixture *next;
};

struct th_test {
	const char *name;
	struct th_fixture *fixture;	/* NULL for plain TEST() */
	th_test_fn fn;
	int timeout;
	struct th_test *next;
};

/* Registration (constructors) and the runner; see harness.c. */
void th_register_test(struct th_test *t);
void th_register_fixture(struct th_fixture *f);
void th_register_variant(struct th_fixture *f, struct th_variant *v);
int th_main(int argc, char **argv);

/* Reporting helpers used by the macros; they print "# " comment lines. */
void th_log(struct th_meta *m, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void th_comment(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void th_fail_cmp(struct th_meta *m, const char *file, int line, const char *what,
		 const char *exp_str, const char *seen_str, long long exp, long long seen);
void th_fail_bool(struct th_meta *m, const char *file, int line, const char *cond, bool want);
void th_fail_str(struct th_meta *m, const char *file, int line, const char *what,
		 const char *exp_str, const char *seen_str, const char *exp, const char *seen);
void th_set_skip(struct th_meta *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
__attribute__((noreturn)) void th_bail(struct th_meta *m);

/* Plain tests. */
#define TEST(test_name) TEST_TIMEOUT(test_name, TH_TIMEOUT_DEFAULT)
#define TEST_TIMEOUT(test_name, secs)							\
	static void th_fn_##test_name(struct th_meta *_metadata, void *self_, const void *var_); \
	static struct th_test th_test_##test_name = {					\
		.name = #test_name, .fn = th_fn_##test_name, .timeout = (secs),			\
	};										\
	__attribute__((constructor)) static void th_reg_##test_name(void)			\
	{										\
		th_register_test(&th_test_##test_name);					\
	}										\
	static void th_fn_##test_name(struct th_meta *_metadata,				\
				 void *self_ __attribute__((unused)),			\
				 const void *var_ __attribute__((unused)))

/* Fixtures. */
#define FIXTURE_DATA(f) struct th_self_##f
#define FIXTURE(f)									\
	FIXTURE_DATA(f);								\
	struct th_variant_##f;								\
	static void th_setup_##f(struct th_meta *, FIXTURE_DATA(f) *,			\
				 const struct th_variant_##f *);			\
	static void th_teardown_##f(struct th_meta *, FIXTURE_DATA(f) *,		\
				    const struct th_variant_##f *);			\
	static struct th_fixture th_fixture_##f = {					\
		.name = #f,								\
		.setup = (th_setup_fn)th_setup_##f,					\
		.teardown = (th_setup_fn)th_teardown_##f,				\
	};										\
	__attribute__((constructor)) static void th_reg_fixture_##f(void)		\
	{										\
		th_register_fixture(&th_fixture_##f);					\
	}										\
	FIXTURE_DATA(f)

/*
 * FIXTURE_VARIANT_ADD must follow FIXTURE and FIXTURE_VARIANT. A fixture without variants runs
 * each of its tests once, with variant == NULL.
 */
#define FIXTURE_VARIANT(f) struct th_variant_##f

#define FIXTURE_VARIANT_ADD(f, v)							\
	static const struct th_variant_##f th_vdata_##f##_##v;				\
	static struct th_variant th_variant_##f##_##v = {				\
		.name = #v, .data = &th_vdata_##f##_##v,				\
	};										\
	__attribute__((constructor)) static void th_reg_variant_##f##_##v(void)		\
	{										\
		th_register_variant(&th_fixture_##f, &th_variant_##f##_##v);		\
	}										\
	static const struct th_variant_##f th_vdata_##f##_##v =

#define FIXTURE_SETUP(f)								\
	static void th_setup_##f(struct th_meta *_metadata __attribute__((unused)),	\
				 FIXTURE_DATA(f) *self __attribute__((unused)),		\
				 const struct th_variant_##f *variant __attribute__((unused)))

#define FIXTURE_TEARDOWN(f)								\
	static void th_teardown_##f(struct th_meta *_metadata __attribute__((unused)),	\
				    FIXTURE_DATA(f) *self __attribute__((unused)),	\
				    const struct th_variant_##f *variant __attribute__((unused)))

#define TEST_F(f, test_name) TEST_F_TIMEOUT(f, test_name, TH_TIMEOUT_DEFAULT)
#define TEST_F_TIMEOUT(f, test_name, secs)							\
	static void th_fn_##f##_##test_name(struct th_meta *, FIXTURE_DATA(f) *,		\
				       const struct th_variant_##f *);			\
	static struct th_test th_test_##f##_##test_name = {					\
		.name = #test_name, .fixture = &th_fixture_##f,				\
		.fn = (th_test_fn)th_fn_##f##_##test_name, .timeout = (secs),		\
	};										\
	__attribute__((constructor)) static void th_reg_##f##_##test_name(void)		\
	{										\
		th_fixture_##f.self_size = sizeof(FIXTURE_DATA(f));			\
		th_register_test(&th_test_##f##_##test_name);				\
	}										\
	static void th_fn_##f##_##test_name(struct th_meta *_metadata,			\
				       FIXTURE_DATA(f) *self __attribute__((unused)),	\
				       const struct th_variant_##f *variant __attribute__((unused)))

#define TEST_HARNESS_MAIN								\
	int main(int argc, char **argv)							\
	{										\
		return th_main(argc, argv);						\
	}

/* Messages. */
#define TH_LOG(fmt, ...) th_log(_metadata, __FILE__, __LINE__, fmt, ##__VA_ARGS__)

#define SKIP(statement, fmt, ...)							\
	do {										\
		th_set_skip(_metadata, fmt, ##__VA_ARGS__);				\
		statement;								\
	} while (0)

/*
 * Comparisons. Like kselftest, the expected value comes first. Both sides are evaluated once;
 * integers and pointers are printed as long long.
 */
#define TH_CMP(exp, seen, op, is_assert)						\
	do {										\
		__typeof__(exp) th_e_ = (exp);						\
		__typeof__(seen) th_s_ = (seen);					\
		_metadata->step++;							\
		_Pragma("GCC diagnostic push")						\
		_Pragma("GCC diagnostic ignored \"-Wsign-compare\"")			\
		_Pragma("GCC diagnostic ignored \"-Wtype-limits\"")			\
		if (!(th_e_ op th_s_)) {						\
			th_fail_cmp(_metadata, __FILE__, __LINE__, #op, #exp, #seen,	\
				    (long long)th_e_, (long long)th_s_);		\
			if (is_assert)							\
				th_bail(_metadata);					\
		}									\
		_Pragma("GCC diagnostic pop")						\
	} while (0)

#define TH_BOOL(cond, want, is_assert)							\
	do {										\
		bool th_c_ = !!(cond);							\
		_metadata->step++;							\
		if (th_c_ != (want)) {							\
			th_fail_bool(_metadata, __FILE__, __LINE__, #cond, want);	\
			if (is_assert)							\
				th_bail(_metadata);					\
		}									\
	} while (0)

#define TH_STR(exp, seen, want_eq, is_assert)						\
	do {										\
		const char *th_e_ = (exp), *th_s_ = (seen);				\
		_metadata->step++;							\
		if ((strcmp(th_e_, th_s_) == 0) != (want_eq)) {				\
			th_fail_str(_metadata, __FILE__, __LINE__, want_eq ? "==" : "!=", \
				    #exp, #seen, th_e_, th_s_);				\
			if (is_assert)							\
				th_bail(_metadata);					\
		}									\
	} while (0)

#define ASSERT_EQ(exp, seen)	TH_CMP(exp, seen, ==, 1)
#define ASSERT_NE(exp, seen)	TH_CMP(exp, seen, !=, 1)
#define ASSERT_LT(exp, seen)	TH_CMP(exp, seen, <, 1)
#define ASSERT_LE(exp, seen)	TH_CMP(exp, seen, <=, 1)
#define ASSERT_GT(exp, seen)	TH_CMP(exp, seen, >, 1)
#define ASSERT_GE(exp, seen)	TH_CMP(exp, seen, >=, 1)
#define ASSERT_TRUE(cond)	TH_BOOL(cond, true, 1)
#define ASSERT_FALSE(cond)	TH_BOOL(cond, false, 1)
#define ASSERT_STREQ(exp, seen)	TH_STR(exp, seen, true, 1)
#define ASSERT_STRNE(exp, seen)	TH_STR(exp, seen, false, 1)

#define EXPECT_EQ(exp, seen)	TH_CMP(exp, seen, ==, 0)
#define EXPECT_NE(exp, seen)	TH_CMP(exp, seen, !=, 0)
#define EXPECT_LT(exp, seen)	TH_CMP(exp, seen, <, 0)
#define EXPECT_LE(exp, seen)	TH_CMP(exp, seen, <=, 0)
#define EXPECT_GT(exp, seen)	TH_CMP(exp, seen, >, 0)
#define EXPECT_GE(exp, seen)	TH_CMP(exp, seen, >=, 0)
#define EXPECT_TRUE(cond)	TH_BOOL(cond, true, 0)
#define EXPECT_FALSE(cond)	TH_BOOL(cond, false, 0)
#define EXPECT_STREQ(exp, seen)	TH_STR(exp, seen, true, 0)
#define EXPECT_STRNE(exp, seen)	TH_STR(exp, seen, false, 0)

/*
 * Live (not zombie) children of the caller, at most max, found by scanning
 * every /proc/PID/stat (catches orphans just reparented to us). Returns how many.
 */
int th_children(pid_t *pids, int max);
/* Our zombie children (children exited, not reaped yet). */
int th_zombies(pid_t *pids, int max);

#endif /* SELFTESTS_HARNESS_H */
