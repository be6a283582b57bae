/*
 * tap.h - the assertion macros of Tessera's unit tests.
 *
 * Each check prints "ok N - what" or "not ok N - what (file:line)" and a
 * failing check makes the program exit 1 at the end (tap_done), so one run
 * shows every failure.  CHECK_FATAL stops at once where going on would
 * crash; REQUIRE is a silent step that stops the program when it fails.
 * Every C unit test asserts with these (the protocol tests' harness,
 * t/nfs/tharness.h, prints the same TAP lines).
 */
#ifndef T_TAP_H
#define T_TAP_H

#include <stdio.h>
#include <stdlib.h>

#include "t/unit/tproc.h"

static int tap_n, tap_failed;

#define CHECK(cond, ...)                                                       \
	do {                                                                   \
		int tap_ok = !!(cond);                                         \
		tap_n++;                                                       \
		if (!tap_ok)                                                   \
			tap_failed++;                                          \
		printf("%sok %d - ", tap_ok ? "" : "not ", tap_n);             \
		printf(__VA_ARGS__);                                           \
		if (!tap_ok)                                                   \
			printf(" (%s:%d: %s)", __FILE__, __LINE__, #cond);     \
		printf("\n");                                                  \
		fflush(stdout);                                                \
	} while (0)

#define CHECK_FATAL(cond, ...)                                                 \
	do {                                                                   \
		int tap_before = tap_failed;                                   \
		CHECK(cond, __VA_ARGS__);                                      \
		if (tap_failed != tap_before) {                                \
			printf("Bail out!\n");                                 \
			exit(1);                                               \
		}                                                              \
	} while (0)

/* A step that may run thousands of times (every entry of every page of
 * a listing), or that the rest of the test depends on: silent while it
 * holds; when it fails, "not ok" with the condition and where, then
 * "Bail out!" and exit 1.  Follow the REQUIREs that make up one
 * behaviour with PASSED(what) for its "ok" line. */
#define REQUIRE(cond)                                                          \
	do {                                                                   \
		if (!(cond)) {                                                 \
			printf("not ok %d - %s (%s:%d)\nBail out!\n", ++tap_n, \
			       #cond, __FILE__, __LINE__);                     \
			fflush(stdout);                                        \
			exit(1);                                               \
		}                                                              \
	} while (0)
#define PASSED(...) CHECK(1, __VA_ARGS__)

/* Compare two integers and show both on failure. */
#define CHECK_EQ(a, b, ...)                                                    \
	do {                                                                   \
		long long tap_a = (long long)(a), tap_b = (long long)(b);      \
		CHECK(tap_a == tap_b, __VA_ARGS__);                            \
		if (tap_a != tap_b)                                            \
			printf("#   got %lld, expected %lld\n", tap_a, tap_b); \
	} while (0)

/* Remove the test's temporary directory dir and all in it (a failure
 * is only a comment). */
static inline void
tap_rm_rf(const char *dir)
{
	char cmd[4200];

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		printf("# cannot remove %s\n", dir);
}

/* Count n checks as skipped (TAP "# SKIP"), e.g. when not root. */
#define SKIP(n, why)                                                           \
	do {                                                                   \
		for (int tap_i = 0; tap_i < (n); tap_i++)                      \
			printf("ok %d # SKIP %s\n", ++tap_n, (why));           \
		fflush(stdout);                                                \
	} while (0)

static inline int
tap_done(void)
{
	printf("1..%d\n", tap_n);
	if (tap_failed)
		printf("# %d of %d checks failed\n", tap_failed, tap_n);
	return tap_failed ? 1 : 0;
}

#endif
