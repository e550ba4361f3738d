/* Shared helpers for the cmocka unit tests.
 *
 * cmocka 1.1.5 (Debian 12) has assert_float_equal but no
 * assert_double_equal, so floating-point checks go through assert_close().
 * The LCG gives the same pseudo-random data on every platform (Numerical
 * Recipes constants), for serial-equals-parallel and oracle tests. */
#ifndef AW_TEST_H
#define AW_TEST_H

#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

static inline void aw_assert_close_(double a, double b, double tol,
                                    const char *ea, const char *eb,
                                    const char *file, int line)
{
    if (!(fabs(a - b) <= tol)) {
        print_error("%s = %.10g, %s = %.10g, |diff| = %.3g > tol %.3g\n", ea, a,
                    eb, b, fabs(a - b), tol);
        _fail(file, line);
    }
}

static inline void aw_assert_not_close_(double a, double b, double tol,
                                        const char *ea, const char *eb,
                                        const char *file, int line)
{
    if (!(fabs(a - b) > tol)) {
        print_error("%s = %.10g should differ from %s = %.10g by > %.3g\n", ea,
                    a, eb, b, tol);
        _fail(file, line);
    }
}

static inline void aw_assert_nan_(double a, const char *ea, const char *file,
                                  int line)
{
    if (!isnan(a)) {
        print_error("%s = %.10g, expected NaN\n", ea, a);
        _fail(file, line);
    }
}

/* |a - b| <= tol; fails on NaN. */
#define assert_close(a, b, tol)                                                \
    aw_assert_close_((double)(a), (double)(b), (double)(tol), #a, #b,          \
                     __FILE__, __LINE__)
/* |a - b| > tol. */
#define assert_not_close(a, b, tol)                                            \
    aw_assert_not_close_((double)(a), (double)(b), (double)(tol), #a, #b,      \
                         __FILE__, __LINE__)
#define assert_nan(a) aw_assert_nan_((double)(a), #a, __FILE__, __LINE__)

/* 32-bit LCG: s = 1664525 s + 1013904223 (mod 2^32). */
static inline uint32_t aw_lcg_next(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s;
}

/* Uniform float in [lo, hi) from the top 24 bits. */
static inline float aw_lcg_uniform(uint32_t *s, float lo, float hi)
{
    float u = (float)(aw_lcg_next(s) >> 8) * (1.0f / 16777216.0f);
    return lo + (hi - lo) * u;
}

#endif
