/*
 * testutil.h -- what the Check suites share.  Each tests/test_*.c file
 * defines one `Suite *suite_NAME(void)` and lists it in check_main.c.
 */
#ifndef HLR_TESTUTIL_H
#define HLR_TESTUTIL_H

#include <check.h>
#include <hlr/hlr.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* Assert a status, printing the library's message when it differs. */
#define ck_assert_status(expr, want)                                                                             \
    do {                                                                                                         \
        hlr_status st_ = (expr);                                                                                 \
        ck_assert_msg(st_ == (want), "%s returned %d (%s), expected %d; last error: %s", #expr, (int)st_,        \
                      hlr_strerror(st_), (int)(want), hlr_last_error());                                         \
    } while (0)

#define ck_assert_ok(expr) ck_assert_status(expr, HLR_OK)

/* Assert |got - want| <= atol + rtol * |want|, naming both numbers. */
#define ck_assert_close(got, want, rtol, atol)                                                                   \
    do {                                                                                                         \
        double g_ = (double)(got), w_ = (double)(want);                                                          \
        ck_assert_msg(fabs(g_ - w_) <= (atol) + (rtol)*fabs(w_), "%s = %.9g, expected %.9g (%s)", #got, g_, w_,  \
                      #want);                                                                                    \
    } while (0)

/* Assert that the last error message contains a fragment. */
#define ck_assert_error_mentions(fragment)                                                                       \
    ck_assert_msg(strstr(hlr_last_error(), (fragment)) != NULL, "last error \"%s\" does not mention \"%s\"",     \
                  hlr_last_error(), (fragment))

/* A deterministic generator for test data (not the library's). */
static inline float test_rand(unsigned long long *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((*s >> 40) & 0xFFFFFF) / 16777216.0f; /* [0, 1) */
}

static inline void test_fill(float *x, long n, unsigned long long seed, float lo, float hi)
{
    for (long i = 0; i < n; i++)
        x[i] = lo + (hi - lo) * test_rand(&seed);
}

#endif
