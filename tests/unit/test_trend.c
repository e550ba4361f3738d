/* Unit tests for kernels/trend.c: the normal quantile against known values,
 * Theil-Sen / Mann-Kendall on hand-computed series (no ties, ties in y, equal
 * t, ties in both), the slope's confidence interval worked out by hand,
 * failures, a brute-force oracle on random series, a cross-check against
 * scipy 1.10.1 (literals; scipy is not needed to run the tests), and
 * aw_trend_crossing on exact lines.
 *
 * Notation: m points used, N' pairwise slopes (pairs with distinct t), S =
 * sum_{i<j} sgn(t_j - t_i) sgn(y_j - y_i), z_c = z_{1-alpha/2}, C = z_c
 * sqrt(Var S), M1 = (N' - C) / 2, M2 = (N' + C) / 2, CI = [M1-th, (M2+1)-th]
 * smallest slope (1-based, interpolated, clamped to [1, N']). */
#include <stdlib.h>
#include <string.h>
#include "aw_test.h"
#include "aralwatch/timeseries.h"

#define Z975 1.959963984540054  /* Phi^-1(0.975), scipy norm.ppf */
#define Z95  1.6448536269514722 /* Phi^-1(0.95) */

#define WORK_MAX 1000 /* n (n - 1) / 2 for n <= 45 */

static void check_nan_trend(const aw_trend *tr)
{
    assert_nan(tr->slope);
    assert_nan(tr->intercept);
    assert_nan(tr->slope_lo);
    assert_nan(tr->slope_hi);
    assert_nan(tr->s);
    assert_nan(tr->var_s);
    assert_nan(tr->z);
    assert_nan(tr->p);
    assert_nan(tr->t_centre);
}

/* ---- aw_norm_quantile ---- */

static void norm_quantile_should_match_known_values(void **state)
{
    (void)state;
    /* The two values of the brief, to their 10 digits ... */
    assert_close(aw_norm_quantile(0.975), 1.959963985, 1e-9);
    assert_close(aw_norm_quantile(0.95), 1.644853627, 1e-9);
    /* ... and to full precision (scipy.stats.norm.ppf), which the Halley
     * refinement reaches: central region, both tails, far tails. */
    assert_close(aw_norm_quantile(0.975), Z975, 1e-13);
    assert_close(aw_norm_quantile(0.95), Z95, 1e-13);
    assert_close(aw_norm_quantile(0.025), -Z975, 1e-13);
    assert_close(aw_norm_quantile(0.5), 0.0, 1e-15);
    assert_close(aw_norm_quantile(0.99), 2.3263478740408408, 1e-13);
    assert_close(aw_norm_quantile(0.01), -2.3263478740408408, 1e-13);
    assert_close(aw_norm_quantile(0.999), 3.090232306167813, 1e-12);
    assert_close(aw_norm_quantile(1e-10), -6.361340902404056, 1e-11);
    assert_close(aw_norm_quantile(0.8413447460685429), 1.0, 1e-12);
    /* Edges. */
    assert_true(isinf(aw_norm_quantile(0.0)) && aw_norm_quantile(0.0) < 0);
    assert_true(isinf(aw_norm_quantile(1.0)) && aw_norm_quantile(1.0) > 0);
    assert_nan(aw_norm_quantile(-0.1));
    assert_nan(aw_norm_quantile(1.5));
    assert_nan(aw_norm_quantile((double)NAN));
}

static void norm_quantile_should_invert_the_normal_cdf(void **state)
{
    (void)state;
    /* Phi(x) = erfc(-x / sqrt 2) / 2; round trip over (0, 1). */
    for (int k = 1; k < 1000; k++) {
        double p = k / 1000.0;
        double x = aw_norm_quantile(p);
        assert_close(0.5 * erfc(-x / sqrt(2.0)), p, 1e-15);
    }
}

/* ---- aw_theil_sen: hand-computed series ---- */

static void theil_sen_should_ignore_an_outlier_in_a_hand_example(void **state)
{
    (void)state;
    /* t = 1..5, y = 1 2 3 4 10 (the last point an outlier).
     * Slopes (i<j): (1,2) 1, (1,3) 1, (1,4) 1, (1,5) 9/4, (2,3) 1, (2,4) 1,
     * (2,5) 8/3, (3,4) 1, (3,5) 7/2, (4,5) 6. N' = 10, sorted:
     *   1 1 1 1 1 1 2.25 2.6667 3.5 6 -> median (1 + 1) / 2 = 1 exactly.
     * Residuals y - t = 0 0 0 0 5 -> intercept 0. Median t = 3.
     * S: every pair rises, S = 10. No ties:
     *   Var S = 5 * 4 * 15 / 18 = 300 / 18 = 50 / 3 = 16.6667.
     * Z = (S - 1) / sqrt(Var S) = 9 / 4.0824829 = 2.2045407685.
     * p = erfc(Z / sqrt 2) = 0.0274863361 (two-sided; the literal below is
     * Python's math.erfc(2.2045407685048604 / math.sqrt(2))).
     * CI, alpha = 0.10: z_c = 1.6448536, C = 1.6448536 * 4.0824829 =
     *   6.7150868, M1 = (10 - 6.7150868) / 2 = 1.6424566 -> between the 1st
     *   and 2nd slope, both 1 -> slope_lo = 1;
     *   M2 + 1 = (10 + 6.7150868) / 2 + 1 = 9.3575434 -> 9th slope 3.5 +
     *   0.3575434 * (6 - 3.5) = 4.3938585 = slope_hi. */
    const double t[] = {1, 2, 3, 4, 5};
    const double y[] = {1, 2, 3, 4, 10};
    double work[10];
    aw_trend tr;
    assert_int_equal(aw_theil_sen(t, y, 5, 0.10, work, &tr), 0);
    assert_int_equal(tr.n, 5);
    assert_true(tr.slope == 1.0); /* exactly */
    assert_close(tr.intercept, 0.0, 1e-15);
    assert_close(tr.t_centre, 3.0, 0.0);
    assert_close(tr.s, 10.0, 0.0);
    assert_close(tr.var_s, 50.0 / 3.0, 1e-12);
    assert_close(tr.z, 2.2045407685048604, 1e-12);
    assert_close(tr.p, 0.027486336111510353, 1e-12);
    assert_close(tr.slope_lo, 1.0, 1e-12);
    const double c = Z95 * sqrt(50.0 / 3.0);
    assert_close(tr.slope_hi, 3.5 + ((10.0 + c) / 2.0 + 1.0 - 9.0) * 2.5,
                 1e-12);
    assert_close(tr.slope_hi, 4.3938585, 1e-6);

    /* alpha = 0.05: C = 1.959964 * 4.0824829 = 8.0015195, M1 = 0.9992403
     * -> clamped to rank 1 -> 1; M2 + 1 = 10.0007597 -> clamped to rank
     * N' = 10 -> 6. */
    assert_int_equal(aw_theil_sen(t, y, 5, 0.05, work, &tr), 0);
    assert_close(tr.slope_lo, 1.0, 0.0);
    assert_close(tr.slope_hi, 6.0, 0.0);
}

static void theil_sen_should_apply_the_tie_correction_for_tied_y(void **state)
{
    (void)state;
    /* t = 1..6, y = 1 2 2 3 3 3: tie groups in y of sizes 2 and 3.
     * Slopes (i<j):
     *   i=1: 1, 1/2, 2/3, 1/2, 2/5     i=2: 0, 1/2, 1/3, 1/4
     *   i=3: 1, 1/2, 1/3               i=4: 0, 0        i=5: 0
     * N' = 15, sorted: 0 0 0 0 .25 .3333 .3333 .4 .5 .5 .5 .5 .6667 1 1
     * -> slope = 8th = 0.4.
     * Residuals y - 0.4 t: .6 1.2 .8 1.4 1.0 .6 -> sorted .6 .6 .8 1.0 1.2
     * 1.4 -> intercept (0.8 + 1.0) / 2 = 0.9. Median t = 3.5.
     * S: i=1: +5; i=2: 0 +3; i=3: +3; i=4, 5: ties 0 -> S = 11.
     * Var S = [6 * 5 * 17 - 2 * 1 * 9 - 3 * 2 * 11] / 18 = (510 - 18 - 66)
     *   / 18 = 426 / 18 = 23.6667 (without the correction: 28.3333).
     * Z = 10 / sqrt(23.6667) = 2.0555661.
     * CI, alpha = 0.05: C = 1.959964 * 4.8648398 = 9.5349109,
     *   M1 = (15 - 9.5349109) / 2 = 2.7325446 -> between slopes 2 and 3,
     *   both 0 -> 0; M2 + 1 = 13.2674554 -> 13th 2/3 + 0.2674554 * (1 -
     *   2/3) = 0.7558185. */
    const double t[] = {1, 2, 3, 4, 5, 6};
    const double y[] = {1, 2, 2, 3, 3, 3};
    double work[15];
    aw_trend tr;
    assert_int_equal(aw_theil_sen(t, y, 6, 0.05, work, &tr), 0);
    assert_close(tr.slope, 0.4, 1e-15);
    assert_close(tr.intercept, 0.9, 1e-12);
    assert_close(tr.t_centre, 3.5, 0.0);
    assert_close(tr.s, 11.0, 0.0);
    assert_close(tr.var_s, 426.0 / 18.0, 1e-12);
    assert_close(tr.z, 10.0 / sqrt(426.0 / 18.0), 1e-12);
    assert_close(tr.z, 2.0555661, 1e-6);
    assert_close(tr.p, erfc(tr.z / sqrt(2.0)), 1e-15);
    assert_close(tr.slope_lo, 0.0, 1e-15);
    const double c = Z975 * sqrt(426.0 / 18.0);
    assert_close(tr.slope_hi, 2.0 / 3.0 + ((15.0 + c) / 2.0 + 1.0 - 13.0) / 3.0,
                 1e-12);
    assert_close(tr.slope_hi, 0.7558185, 1e-6);
}

static void theil_sen_should_skip_pairs_with_equal_t(void **state)
{
    (void)state;
    /* Two observations at t = 1 and two at t = 3:
     *   t = 1 1 2 3 3, y = 1 3 2 4 6.
     * Pairs (1,2) and (4,5) have equal t: no slope, and 0 in S.
     * Slopes: (1,3) 1, (1,4) 3/2, (1,5) 5/2, (2,3) -1, (2,4) 1/2, (2,5) 3/2,
     *   (3,4) 2, (3,5) 4. N' = 8, sorted -1 .5 1 1.5 1.5 2 2.5 4 ->
     *   slope = (1.5 + 1.5) / 2 = 1.5.
     * Residuals y - 1.5 t: -.5 1.5 -1 -.5 1.5 -> intercept -0.5. Median t 2.
     * S: (2,3) falls, the other 7 pairs with distinct t rise: S = 6.
     * Var S: ties in t, two groups of 2 (2 * 1 * 9 = 18 each); y untied, so
     *   the cross terms vanish: (5 * 4 * 15 - 36) / 18 = 264 / 18 = 14.6667.
     */
    const double t[] = {1, 1, 2, 3, 3};
    const double y[] = {1, 3, 2, 4, 6};
    double work[10];
    aw_trend tr;
    assert_int_equal(aw_theil_sen(t, y, 5, 0.05, work, &tr), 0);
    assert_close(tr.slope, 1.5, 0.0);
    assert_close(tr.intercept, -0.5, 1e-15);
    assert_close(tr.t_centre, 2.0, 0.0);
    assert_close(tr.s, 6.0, 0.0);
    assert_close(tr.var_s, 264.0 / 18.0, 1e-12);

    /* The order of the observations does not matter. */
    const double t2[] = {3, 2, 1, 3, 1};
    const double y2[] = {6, 2, 3, 4, 1};
    aw_trend tr2;
    assert_int_equal(aw_theil_sen(t2, y2, 5, 0.05, work, &tr2), 0);
    assert_memory_equal(&tr, &tr2, sizeof tr);
}

static void
theil_sen_should_use_the_full_variance_with_ties_in_t_and_y(void **state)
{
    (void)state;
    /* t = 1 1 1 2 3 4, y = 1 2 2 2 3 5: a group of 3 tied t (t = 1) and a
     * group of 3 tied y (y = 2). m = 6.
     * S: p1: 0 0 +1 +1 +1 = 3; p2: 0 (equal t) 0 (equal y) +1 +1 = 2;
     *    p3: 0 +1 +1 = 2; p4: +1 +1 = 2; p5: +1 -> S = 10.
     * Var S (Kendall): [6 * 5 * 17 - 3 * 2 * 11 - 3 * 2 * 11] / 18 = 378 / 18
     *   = 21; + (3 * 2 * 1)(3 * 2 * 1) / (9 * 6 * 5 * 4) = 36 / 1080 =
     *   1/30; + (3 * 2)(3 * 2) / (2 * 6 * 5) = 36 / 60 = 0.6. Total 649 / 30
     *   = 21.6333.
     * Slopes (distinct t): 1 1 4/3 | 0 1/2 1 | 0 1/2 1 | 1 3/2 | 2; N' =
     *   12, sorted 0 0 .5 .5 1 1 1 1 1 1.3333 1.5 2 -> slope 1.
     * Residuals y - t: 0 1 1 0 0 1 -> intercept 0.5. Median t 1.5. */
    const double t[] = {1, 1, 1, 2, 3, 4};
    const double y[] = {1, 2, 2, 2, 3, 5};
    double work[15];
    aw_trend tr;
    assert_int_equal(aw_theil_sen(t, y, 6, 0.05, work, &tr), 0);
    assert_close(tr.s, 10.0, 0.0);
    assert_close(tr.var_s, 649.0 / 30.0, 1e-12);
    assert_close(tr.slope, 1.0, 0.0);
    assert_close(tr.intercept, 0.5, 0.0);
    assert_close(tr.t_centre, 1.5, 0.0);
    assert_close(tr.z, 9.0 / sqrt(649.0 / 30.0), 1e-12);
}

static void theil_sen_should_skip_missing_values(void **state)
{
    (void)state;
    /* The outlier example with NaN y and a NaN t inserted: same answer. */
    const double t[] = {1, 2, NAN, 3, 4, 4.5, 5};
    const double y[] = {1, 2, 7, 3, 4, NAN, 10};
    double work[21];
    aw_trend tr;
    assert_int_equal(aw_theil_sen(t, y, 7, 0.10, work, &tr), 0);
    assert_int_equal(tr.n, 5);
    assert_true(tr.slope == 1.0);
    assert_close(tr.s, 10.0, 0.0);
    assert_close(tr.var_s, 50.0 / 3.0, 1e-12);
    assert_close(tr.t_centre, 3.0, 0.0);
}

static void theil_sen_should_report_no_trend_in_constant_data(void **state)
{
    (void)state;
    /* All y tied: S = 0, Var S = 0 (the tie term cancels the first), Z = 0,
     * p = 1, every slope 0. */
    const double t[] = {1, 2, 3, 4};
    const double y[] = {5, 5, 5, 5};
    double work[6];
    aw_trend tr;
    assert_int_equal(aw_theil_sen(t, y, 4, 0.05, work, &tr), 0);
    assert_close(tr.s, 0.0, 0.0);
    assert_close(tr.var_s, 0.0, 0.0);
    assert_close(tr.z, 0.0, 0.0);
    assert_close(tr.p, 1.0, 0.0);
    assert_close(tr.slope, 0.0, 0.0);
    assert_close(tr.slope_lo, 0.0, 0.0);
    assert_close(tr.slope_hi, 0.0, 0.0);
    assert_close(tr.intercept, 5.0, 0.0);
}

static void theil_sen_should_fail_with_too_few_usable_points(void **state)
{
    (void)state;
    double work[6];
    aw_trend tr;
    /* 2 finite y. */
    const double t[] = {1, 2, 3, 4};
    const double y[] = {1, NAN, 2, INFINITY};
    assert_int_equal(aw_theil_sen(t, y, 4, 0.05, work, &tr), -1);
    assert_int_equal(tr.n, 2);
    check_nan_trend(&tr);
    assert_int_equal(aw_theil_sen(t, y, 0, 0.05, work, &tr), -1);
    assert_int_equal(tr.n, 0);
    /* Every t equal: no slope. */
    const double te[] = {5, 5, 5};
    const double ye[] = {1, 2, 3};
    assert_int_equal(aw_theil_sen(te, ye, 3, 0.05, work, &tr), -1);
    assert_int_equal(tr.n, 3);
    check_nan_trend(&tr);
}

static void
theil_sen_should_leave_the_interval_nan_for_a_bad_alpha(void **state)
{
    (void)state;
    const double t[] = {1, 2, 3, 4, 5};
    const double y[] = {1, 2, 3, 4, 10};
    double work[10];
    aw_trend tr;
    const double bad[] = {0.0, 1.0, -0.5, NAN};
    for (int k = 0; k < 4; k++) {
        assert_int_equal(aw_theil_sen(t, y, 5, bad[k], work, &tr), 0);
        assert_true(tr.slope == 1.0);
        assert_nan(tr.slope_lo);
        assert_nan(tr.slope_hi);
    }
}

/* ---- aw_theil_sen: brute-force oracle on random series ---- */

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median_of(double *v, size_t n)
{
    qsort(v, n, sizeof v[0], cmp_d);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Tie sums by sorting a copy and counting runs: a[0] = sum g (g-1) (2g+5),
 * a[1] = sum g (g-1) (g-2), a[2] = sum g (g-1). */
static void runs(const double *v, size_t n, double a[3])
{
    double *c = malloc(n * sizeof(double));
    assert_non_null(c);
    memcpy(c, v, n * sizeof(double));
    qsort(c, n, sizeof c[0], cmp_d);
    a[0] = a[1] = a[2] = 0.0;
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && c[j] == c[i])
            j++;
        double g = (double)(j - i);
        a[0] += g * (g - 1) * (2 * g + 5);
        a[1] += g * (g - 1) * (g - 2);
        a[2] += g * (g - 1);
        i = j;
    }
    free(c);
}

/* Value at 1-based, possibly fractional rank r of sorted v[0..n). */
static double rank_value(const double *v, size_t n, double r)
{
    if (r < 1)
        r = 1;
    if (r > (double)n)
        r = (double)n;
    size_t lo = (size_t)floor(r), hi = (size_t)ceil(r);
    return v[lo - 1] + (r - floor(r)) * (v[hi - 1] - v[lo - 1]);
}

/* Returns -1 like aw_theil_sen when there is no fit (alpha = 0.05). */
static int oracle(const double *t, const double *y, size_t n, aw_trend *r)
{
    double *tt = malloc(n * sizeof(double) + 1);
    double *yy = malloc(n * sizeof(double) + 1);
    double *sl = malloc(n * n * sizeof(double) + 1);
    assert_non_null(tt);
    assert_non_null(yy);
    assert_non_null(sl);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (isfinite(t[i]) && isfinite(y[i])) {
            tt[m] = t[i];
            yy[m] = y[i];
            m++;
        }
    }
    r->n = m;
    size_t np = 0;
    double s = 0;
    for (size_t i = 0; i < m; i++) {
        for (size_t j = i + 1; j < m; j++) {
            double prod = (tt[j] - tt[i]) * (yy[j] - yy[i]);
            s += prod > 0 ? 1 : prod < 0 ? -1 : 0;
            if (tt[i] != tt[j])
                sl[np++] = (yy[j] - yy[i]) / (tt[j] - tt[i]);
        }
    }
    int rc = -1;
    if (m >= 3 && np > 0) {
        double u[3], v[3];
        runs(yy, m, u);
        runs(tt, m, v);
        double md = (double)m;
        r->s = s;
        r->var_s = (md * (md - 1) * (2 * md + 5) - u[0] - v[0]) / 18 +
                   u[1] * v[1] / (9 * md * (md - 1) * (md - 2)) +
                   u[2] * v[2] / (2 * md * (md - 1));
        r->z = s > 0   ? (s - 1) / sqrt(r->var_s)
               : s < 0 ? (s + 1) / sqrt(r->var_s)
                       : 0.0;
        r->p = erfc(fabs(r->z) / sqrt(2.0));
        r->slope = median_of(sl, np); /* sorts sl */
        double c = Z975 * sqrt(r->var_s);
        r->slope_lo = rank_value(sl, np, ((double)np - c) / 2);
        r->slope_hi = rank_value(sl, np, ((double)np + c) / 2 + 1);
        for (size_t i = 0; i < m; i++)
            sl[i] = yy[i] - r->slope * tt[i];
        r->intercept = median_of(sl, m);
        r->t_centre = median_of(tt, m);
        rc = 0;
    }
    free(tt);
    free(yy);
    free(sl);
    return rc;
}

static void theil_sen_should_match_a_brute_force_oracle(void **state)
{
    (void)state;
    uint32_t s = 20261128u;
    double t[45], y[45], work[WORK_MAX];
    int fits = 0;
    for (int trial = 0; trial < 400; trial++) {
        size_t n = 1 + (aw_lcg_next(&s) >> 8) % 45;
        int tied = trial % 2; /* integer y: many ties */
        double tv = 1990.0;
        for (size_t i = 0; i < n; i++) {
            uint32_t r = aw_lcg_next(&s) >> 24;
            tv += r < 40 ? 0.0 : r < 200 ? 1.0 : 2.0; /* equal t */
            t[i] = r == 255 ? (double)NAN : tv;
            double noise = (double)aw_lcg_uniform(&s, -3.0f, 3.0f);
            double v = 100.0 - 0.7 * (tv - 1990.0) + noise;
            y[i] = (aw_lcg_next(&s) >> 28) == 0 ? (double)NAN
                   : tied                       ? round(v / 2)
                                                : v;
        }
        /* Shuffle: the input order must not matter. */
        for (size_t i = n; i > 1; i--) {
            size_t j = (aw_lcg_next(&s) >> 8) % i;
            double a = t[i - 1], b = y[i - 1];
            t[i - 1] = t[j];
            y[i - 1] = y[j];
            t[j] = a;
            y[j] = b;
        }
        aw_trend got, want = {0};
        int rc = aw_theil_sen(t, y, n, 0.05, work, &got);
        int rc_want = oracle(t, y, n, &want);
        assert_int_equal(rc, rc_want);
        assert_int_equal(got.n, want.n);
        if (rc != 0)
            continue;
        fits++;
        const double tol = 1e-9;
        assert_close(got.s, want.s, 0.0);
        assert_close(got.var_s, want.var_s, tol * want.var_s);
        assert_close(got.z, want.z, tol);
        assert_close(got.p, want.p, tol);
        assert_close(got.slope, want.slope, tol);
        assert_close(got.slope_lo, want.slope_lo, tol);
        assert_close(got.slope_hi, want.slope_hi, tol);
        assert_close(got.intercept, want.intercept, tol * 100);
        assert_close(got.t_centre, want.t_centre, 0.0);
        assert_true(got.slope_lo <= got.slope && got.slope <= got.slope_hi);
    }
    assert_true(fits > 300);
}

/* ---- Cross-check against scipy ---- */

/* Expected values below were computed ONCE by hand with Debian's
 * python3-scipy 1.10.1 (not needed to run this test):
 *   scipy.stats.theilslopes(y, t, conf, method="joint")
 *       -> (slope, intercept, low_slope, high_slope)
 *   scipy.stats.kendalltau(t, y, method="asymptotic") -> (tau_b, p)
 * kendalltau's p has no continuity correction: it equals
 * erfc(|S| / sqrt(Var S) / sqrt 2) with the same Var S as ours (ties in t
 * and y included). theilslopes rounds the CI ranks to the nearest order
 * statistic (low = round(M1)-th, high = (round(M2) + 1)-th) where we
 * interpolate, and its Var S omits the t-y tie cross terms, so its bounds
 * are checked as the order statistic next to ours. */
typedef struct scipy_case {
    const double *t, *y;
    size_t n;
    double alpha;
    double slope, intercept, low, high; /* theilslopes */
    double tau_b, p;                    /* kendalltau */
    double lo_other, hi_other;          /* order statistics on our other side */
    double tied_t, tied_y;              /* pairs with equal t, with equal y */
} scipy_case;

static void check_scipy_case(const scipy_case *c)
{
    double work[WORK_MAX];
    aw_trend tr;
    assert_int_equal(aw_theil_sen(c->t, c->y, c->n, c->alpha, work, &tr), 0);
    assert_close(tr.slope, c->slope, 1e-12 * (1 + fabs(c->slope)));
    assert_close(tr.intercept, c->intercept, 1e-12 * (1 + fabs(c->intercept)));
    /* tau_b = S / sqrt((n0 - n1)(n0 - n2)), n0 = m (m - 1) / 2 pairs, n1
     * and n2 the pairs tied in t and in y. */
    const double n0 = (double)tr.n * (double)(tr.n - 1) / 2.0;
    assert_close(tr.s / sqrt((n0 - c->tied_t) * (n0 - c->tied_y)), c->tau_b,
                 1e-12);
    assert_close(erfc(fabs(tr.s) / sqrt(tr.var_s) / sqrt(2.0)), c->p,
                 1e-12 * c->p + 1e-15);
    /* Our interpolated bounds lie between scipy's order statistic and the
     * neighbouring one. */
    double a = c->low < c->lo_other ? c->low : c->lo_other;
    double b = c->low < c->lo_other ? c->lo_other : c->low;
    assert_true(tr.slope_lo >= a - 1e-12 && tr.slope_lo <= b + 1e-12);
    a = c->high < c->hi_other ? c->high : c->hi_other;
    b = c->high < c->hi_other ? c->hi_other : c->high;
    assert_true(tr.slope_hi >= a - 1e-12 && tr.slope_hi <= b + 1e-12);
}

static void theil_sen_should_agree_with_scipy(void **state)
{
    (void)state;
    /* 1. The outlier example, 90 % CI. Ranks 1.6425 and 9.3575: scipy
     *    takes the 2nd (1) and 9th (3.5) slopes; we interpolate to 1 and
     *    4.3938585 (the 10th slope is 6). tau_b = 1 (0.9999999999999999). */
    static const double t1[] = {1, 2, 3, 4, 5};
    static const double y1[] = {1, 2, 3, 4, 10};
    /* 2. Ties in y. Ranks 2.7325 and 13.2675: scipy 3rd (0) and 13th
     *    (2/3); ours 0 and 0.7558185 (the 14th slope is 1). */
    static const double t2[] = {1, 2, 3, 4, 5, 6};
    static const double y2[] = {1, 2, 2, 3, 3, 3};
    /* 3. Equal t. Ranks 0.247 and 8.753, both clamped: -1 and 4. */
    static const double t3[] = {1, 1, 2, 3, 3};
    static const double y3[] = {1, 3, 2, 4, 6};
    /* 4. Ties in t and y: our Var S = 21.6333 (cross terms), scipy's Sen
     *    (1968) eq. 2.6 variance 21. scipy: 2nd (0) and 11th (1.5) slopes;
     *    ours 0 and 1.7790288 (rank 11.558, the 12th slope is 2). */
    static const double t4[] = {1, 1, 1, 2, 3, 4};
    static const double y4[] = {1, 2, 2, 2, 3, 5};
    /* 5. An Aral-like lake area (km^2) with 2023 missing (NaN here; scipy
     *    was given the 11 finite points). N' = 55, ranks 14.912 and 41.088:
     *    scipy the 15th (-210.333) and 41st (-146.2) slopes; ours
     *    -210.5902818 and -145.9731512 (14th -213.25, 42nd -143.625). */
    static const double t5[] = {2013, 2014, 2015, 2016, 2017, 2018,
                                2019, 2020, 2021, 2022, 2023, 2024};
    static const double y5[] = {8251, 7902, 8120, 7644, 7398, 7520,
                                7013, 6875, 7102, 6540, NAN,  6233};
    const scipy_case cases[] = {
        {t1, y1, 5, 0.10, 1.0, 0.0, 1.0, 3.5, 0.9999999999999999,
         0.014305878435429648, 1.0, 6.0, 0, 0},
        {t2, y2, 6, 0.05, 0.4, 0.8999999999999999, 0.0, 0.6666666666666666,
         0.8563488385776752, 0.023751657448104438, 0.0, 1.0, 0, 4},
        {t3, y3, 5, 0.05, 1.5, -0.5, -1.0, 4.0, 0.6708203932499368,
         0.11718508719813801, -1.0, 4.0, 2, 0},
        {t4, y4, 6, 0.05, 1.0, 0.5, 0.0, 1.5, 0.8333333333333335,
         0.03155528564269614, 0.0, 2.0, 3, 3},
        {t5, y5, 12, 0.05, -174.33333333333334, 359083.6666666667,
         -210.33333333333334, -146.2, -0.8545454545454545,
         0.0002532556429228068, -213.25, -143.625, 0, 0},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
        check_scipy_case(&cases[k]);

    /* Exact values of ours where scipy differs only by rounding. */
    double work[WORK_MAX];
    aw_trend tr;
    assert_int_equal(aw_theil_sen(t5, y5, 12, 0.05, work, &tr), 0);
    assert_int_equal(tr.n, 11);
    assert_close(tr.s, -47.0, 0.0);
    assert_close(tr.var_s, 165.0, 1e-12);
    assert_close(tr.z, -46.0 / sqrt(165.0), 1e-12);
    assert_close(tr.slope_lo, -210.590281789702, 1e-9);
    assert_close(tr.slope_hi, -145.97315121994882, 1e-9);
    assert_close(tr.t_centre, 2018.0, 0.0);
    assert_int_equal(aw_theil_sen(t4, y4, 6, 0.05, work, &tr), 0);
    assert_close(tr.slope_hi, 1.7790288385948188, 1e-12);

    /* When does the lake fall below 5000 km^2, seen from 2024?
     * Central: (5000 - 359083.667) / -174.333 = 2031.07. CI lines pivot at
     * (2018, 359083.667 - 174.333 * 2018 = 7279): steep -210.59 ->
     * 2018 + 2279 / 210.59 = 2028.82; shallow -145.97 -> 2033.61. */
    double tc, te, tl;
    assert_int_equal(aw_theil_sen(t5, y5, 12, 0.05, work, &tr), 0);
    assert_int_equal(aw_trend_crossing(&tr, 2024.0, 5000.0, &tc, &te, &tl), 1);
    const double yc = tr.intercept + tr.slope * 2018.0;
    assert_close(tc, (5000.0 - tr.intercept) / tr.slope, 1e-9);
    assert_close(tc, 2031.07, 0.01);
    assert_close(te, 2018.0 + (5000.0 - yc) / tr.slope_lo, 1e-9);
    assert_close(tl, 2018.0 + (5000.0 - yc) / tr.slope_hi, 1e-9);
    assert_true(te < tc && tc < tl);
}

/* ---- aw_trend_crossing ---- */

static void
crossing_should_find_where_an_exact_line_meets_a_threshold(void **state)
{
    (void)state;
    /* y = 100 - 2 t observed at t = 0..10: every pairwise slope is -2
     * exactly, intercept 100, CI [-2, -2], centre t = 5 (y = 90). It
     * reaches 50 at t = (50 - 100) / -2 = 25, and so do both CI lines:
     * 5 + (50 - 90) / -2 = 25. */
    double t[11], y[11], work[55];
    for (int i = 0; i <= 10; i++) {
        t[i] = i;
        y[i] = 100.0 - 2.0 * i;
    }
    aw_trend tr;
    assert_int_equal(aw_theil_sen(t, y, 11, 0.05, work, &tr), 0);
    assert_true(tr.slope == -2.0);
    assert_true(tr.intercept == 100.0);
    assert_true(tr.slope_lo == -2.0 && tr.slope_hi == -2.0);
    /* S = -55 (every pair falls), Var S = 11 * 10 * 27 / 18 = 165,
     * Z = -54 / sqrt(165) = -4.2039, p = 2.6e-5. */
    assert_close(tr.s, -55.0, 0.0);
    assert_close(tr.var_s, 165.0, 1e-12);
    assert_close(tr.z, -54.0 / sqrt(165.0), 1e-12);
    assert_true(tr.p < 1e-4);

    double tc = 0, te = 0, tl = 0;
    assert_int_equal(aw_trend_crossing(&tr, 10.0, 50.0, &tc, &te, &tl), 1);
    assert_close(tc, 25.0, 1e-12);
    assert_close(te, 25.0, 1e-12);
    assert_close(tl, 25.0, 1e-12);
    /* From t = 0 too (t_from before the crossing is all that matters). */
    assert_int_equal(aw_trend_crossing(&tr, 0.0, 50.0, &tc, NULL, NULL), 1);
    assert_close(tc, 25.0, 1e-12);

    /* Moving away: 150 lies behind a falling line (crossed at t = -25). */
    assert_int_equal(aw_trend_crossing(&tr, 10.0, 150.0, &tc, &te, &tl), 0);
    assert_nan(tc);
    assert_nan(te);
    assert_nan(tl);
    /* Already beyond: 95 was crossed at t = 2.5 < 10. */
    assert_int_equal(aw_trend_crossing(&tr, 10.0, 95.0, &tc, &te, &tl), 0);
    assert_nan(tc);
    /* Exactly at the threshold at t_from: not ahead. */
    assert_int_equal(aw_trend_crossing(&tr, 25.0, 50.0, &tc, &te, &tl), 0);
}

static void crossing_should_pivot_the_ci_slopes_at_the_centre(void **state)
{
    (void)state;
    /* Falling: y = 100 - 2 t, CI [-4, -1], centre t = 5, y_c = 90.
     * Threshold 50 (gap -40): central 25; steep -4 -> 5 + 10 = 15 (early);
     * shallow -1 -> 5 + 40 = 45 (late). */
    aw_trend tr = {.n = 11,
                   .slope = -2.0,
                   .intercept = 100.0,
                   .slope_lo = -4.0,
                   .slope_hi = -1.0,
                   .t_centre = 5.0};
    double tc, te, tl;
    assert_int_equal(aw_trend_crossing(&tr, 10.0, 50.0, &tc, &te, &tl), 1);
    assert_close(tc, 25.0, 1e-12);
    assert_close(te, 15.0, 1e-12);
    assert_close(tl, 45.0, 1e-12);
    /* t_early may lie before t_from: the interval admits a crossing
     * already past (not clamped). */
    assert_int_equal(aw_trend_crossing(&tr, 20.0, 50.0, &tc, &te, &tl), 1);
    assert_close(te, 15.0, 1e-12);

    /* A CI slope of 0, or one pointing away (not significant): t_late
     * = +Inf. */
    tr.slope_hi = 0.0;
    assert_int_equal(aw_trend_crossing(&tr, 10.0, 50.0, &tc, &te, &tl), 1);
    assert_close(te, 15.0, 1e-12);
    assert_true(isinf(tl) && tl > 0);
    tr.slope_hi = 0.5;
    assert_int_equal(aw_trend_crossing(&tr, 10.0, 50.0, &tc, &te, &tl), 1);
    assert_true(isinf(tl) && tl > 0);

    /* Rising: y = 2 t, CI [1, 4], centre 5 (y_c = 10), threshold 50:
     * central 25; steep 4 -> 5 + 40 / 4 = 15 (early); 1 -> 45 (late). */
    aw_trend up = {.n = 11,
                   .slope = 2.0,
                   .intercept = 0.0,
                   .slope_lo = 1.0,
                   .slope_hi = 4.0,
                   .t_centre = 5.0};
    assert_int_equal(aw_trend_crossing(&up, 5.0, 50.0, &tc, &te, &tl), 1);
    assert_close(tc, 25.0, 1e-12);
    assert_close(te, 15.0, 1e-12);
    assert_close(tl, 45.0, 1e-12);
    up.slope_lo = -1.0;
    assert_int_equal(aw_trend_crossing(&up, 5.0, 50.0, &tc, &te, &tl), 1);
    assert_close(te, 15.0, 1e-12);
    assert_true(isinf(tl) && tl > 0);

    /* Flat or failed fits: no crossing. */
    up.slope = 0.0;
    assert_int_equal(aw_trend_crossing(&up, 5.0, 50.0, &tc, &te, &tl), 0);
    up.slope = (double)NAN;
    assert_int_equal(aw_trend_crossing(&up, 5.0, 50.0, &tc, &te, &tl), 0);
    assert_nan(tc);
    /* NULL outputs are allowed. */
    assert_int_equal(aw_trend_crossing(&tr, 10.0, 50.0, NULL, NULL, NULL), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(norm_quantile_should_match_known_values),
        cmocka_unit_test(norm_quantile_should_invert_the_normal_cdf),
        cmocka_unit_test(theil_sen_should_ignore_an_outlier_in_a_hand_example),
        cmocka_unit_test(theil_sen_should_apply_the_tie_correction_for_tied_y),
        cmocka_unit_test(theil_sen_should_skip_pairs_with_equal_t),
        cmocka_unit_test(
            theil_sen_should_use_the_full_variance_with_ties_in_t_and_y),
        cmocka_unit_test(theil_sen_should_skip_missing_values),
        cmocka_unit_test(theil_sen_should_report_no_trend_in_constant_data),
        cmocka_unit_test(theil_sen_should_fail_with_too_few_usable_points),
        cmocka_unit_test(
            theil_sen_should_leave_the_interval_nan_for_a_bad_alpha),
        cmocka_unit_test(theil_sen_should_match_a_brute_force_oracle),
        cmocka_unit_test(theil_sen_should_agree_with_scipy),
        cmocka_unit_test(
            crossing_should_find_where_an_exact_line_meets_a_threshold),
        cmocka_unit_test(crossing_should_pivot_the_ci_slopes_at_the_centre),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
