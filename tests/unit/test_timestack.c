/* Unit tests for kernels/timestack.c: aw_stack_stats on hand-computed
 * pixels (odd and even counts, NaN gaps, the min_valid cut, std by hand, one
 * layer, all missing, NULL outputs, too many layers), against a brute-force
 * long double reference with 1 and 2 OpenMP threads; aw_wofs_frequency,
 * aw_occurrence_month_normalised, aw_vci and aw_zscore on hand values.
 *
 * Float outputs are computed in double and rounded once to float, so hand
 * values are checked to about 1e-6 relative. */
#include <stdlib.h>
#include <string.h>
#include <omp.h>
#include "aw_test.h"
#include "aralwatch/timeseries.h"

#define TOL 1e-6

/* Checks a float output against want (NaN in want means nodata). */
static void check_f(float got, double want)
{
    if (isnan(want))
        assert_nan(got);
    else
        assert_close(got, want, TOL * (1.0 + fabs(want)));
}

/* ---- aw_stack_stats: hand-computed pixels ---- */

/* 5 layers (years) x 6 pixels; N = NAN. */
#define N NAN
static const float hand_layers[5][6] = {
    /* px:  0     1     2     3         4     5 */
    {1.0f, 4.0f, 2.0f, N, N, 0.5f},  {2.0f, N, 8.0f, 7.0f, N, 0.25f},
    {3.0f, 1.0f, N, N, N, N},        {4.0f, 3.0f, 4.0f, N, N, N},
    {5.0f, N, 6.0f, INFINITY, N, N},
};
#undef N

typedef struct stats6 {
    float min[6], max[6], median[6], mean[6], std[6];
    uint16_t n_valid[6];
} stats6;

static void run_hand(int min_valid, stats6 *s)
{
    const float *layers[5];
    for (int k = 0; k < 5; k++)
        layers[k] = hand_layers[k];
    aw_stack_stats(layers, 5, 6, min_valid, s->min, s->max, s->median, s->mean,
                   s->std, s->n_valid);
}

static void
stack_stats_should_match_hand_computed_pixels_with_gaps(void **state)
{
    (void)state;
    stats6 s;
    run_hand(1, &s);

    /* px 0: 1 2 3 4 5 (odd count). mean 3; deviations -2 -1 0 1 2,
     * sum of squares 10, std = sqrt(10 / 4) = 1.58113883. */
    assert_int_equal(s.n_valid[0], 5);
    check_f(s.min[0], 1.0);
    check_f(s.max[0], 5.0);
    check_f(s.median[0], 3.0);
    check_f(s.mean[0], 3.0);
    check_f(s.std[0], 1.5811388300841898);

    /* px 1: 4 _ 1 3 _ -> {1, 3, 4} (odd, NaN gaps). mean 8/3; deviations
     * 4/3, -5/3, 1/3, squares 16/9 + 25/9 + 1/9 = 42/9, std =
     * sqrt(42/9 / 2) = sqrt(7/3) = 1.52752523. */
    assert_int_equal(s.n_valid[1], 3);
    check_f(s.min[1], 1.0);
    check_f(s.max[1], 4.0);
    check_f(s.median[1], 3.0);
    check_f(s.mean[1], 8.0 / 3.0);
    check_f(s.std[1], 1.5275252316519468);

    /* px 2: 2 8 _ 4 6 -> {2, 4, 6, 8} (even): median (4 + 6) / 2 = 5,
     * mean 5; deviations -3 -1 1 3, sum 20, std = sqrt(20 / 3) =
     * 2.58198890. */
    assert_int_equal(s.n_valid[2], 4);
    check_f(s.min[2], 2.0);
    check_f(s.max[2], 8.0);
    check_f(s.median[2], 5.0);
    check_f(s.mean[2], 5.0);
    check_f(s.std[2], 2.5819888974716112);

    /* px 3: _ 7 _ _ +Inf -> {7}: +Inf is missing, one value, std NaN. */
    assert_int_equal(s.n_valid[3], 1);
    check_f(s.min[3], 7.0);
    check_f(s.max[3], 7.0);
    check_f(s.median[3], 7.0);
    check_f(s.mean[3], 7.0);
    assert_nan(s.std[3]);

    /* px 4: all missing. */
    assert_int_equal(s.n_valid[4], 0);
    assert_nan(s.min[4]);
    assert_nan(s.max[4]);
    assert_nan(s.median[4]);
    assert_nan(s.mean[4]);
    assert_nan(s.std[4]);

    /* px 5: {0.5, 0.25}: median = mean = 0.375, std = |0.5 - 0.25| /
     * sqrt 2 = 0.1767767. */
    assert_int_equal(s.n_valid[5], 2);
    check_f(s.median[5], 0.375);
    check_f(s.mean[5], 0.375);
    check_f(s.std[5], 0.17677669529663687);
}

static void stack_stats_should_cut_pixels_below_min_valid(void **state)
{
    (void)state;
    stats6 s;
    run_hand(3, &s);
    /* n_valid 5, 3, 4 pass; 1, 0, 2 are cut: every float NaN, the count
     * still written. */
    const uint16_t want_n[6] = {5, 3, 4, 1, 0, 2};
    for (int i = 0; i < 6; i++) {
        assert_int_equal(s.n_valid[i], want_n[i]);
        if (want_n[i] >= 3) {
            assert_true(!isnan(s.mean[i]));
            continue;
        }
        assert_nan(s.min[i]);
        assert_nan(s.max[i]);
        assert_nan(s.median[i]);
        assert_nan(s.mean[i]);
        assert_nan(s.std[i]);
    }
    check_f(s.median[2], 5.0);
    check_f(s.std[1], 1.5275252316519468);

    /* min_valid 0 and negative behave as 1 (no statistic of nothing). */
    stats6 s0, s1;
    run_hand(0, &s0);
    run_hand(-3, &s1);
    run_hand(1, &s);
    assert_memory_equal(&s0, &s, sizeof s);
    assert_memory_equal(&s1, &s, sizeof s);
}

static void stack_stats_should_handle_a_single_layer(void **state)
{
    (void)state;
    const float l0[3] = {0.42f, NAN, -0.1f};
    const float *layers[1] = {l0};
    float mn[3], mx[3], med[3], mean[3], sd[3];
    uint16_t nv[3];
    aw_stack_stats(layers, 1, 3, 1, mn, mx, med, mean, sd, nv);
    assert_int_equal(nv[0], 1);
    assert_int_equal(nv[1], 0);
    assert_int_equal(nv[2], 1);
    for (int i = 0; i < 3; i += 2) {
        /* One value: min = max = median = mean = the value, exactly. */
        assert_true(mn[i] == l0[i]);
        assert_true(mx[i] == l0[i]);
        assert_true(med[i] == l0[i]);
        assert_true(mean[i] == l0[i]);
        assert_nan(sd[i]); /* n - 1 = 0 */
    }
    assert_nan(mn[1]);
    assert_nan(mean[1]);
}

static void stack_stats_should_skip_null_outputs(void **state)
{
    (void)state;
    stats6 all;
    run_hand(1, &all);
    const float *layers[5];
    for (int k = 0; k < 5; k++)
        layers[k] = hand_layers[k];
    float med[6], sd[6];
    uint16_t nv[6];
    aw_stack_stats(layers, 5, 6, 1, NULL, NULL, med, NULL, NULL, nv);
    assert_memory_equal(med, all.median, sizeof med);
    assert_memory_equal(nv, all.n_valid, sizeof nv);
    aw_stack_stats(layers, 5, 6, 1, NULL, NULL, NULL, NULL, sd, NULL);
    assert_memory_equal(sd, all.std, sizeof sd);
    /* Nothing wanted: must not crash. */
    aw_stack_stats(layers, 5, 6, 1, NULL, NULL, NULL, NULL, NULL, NULL);
}

static void stack_stats_should_reject_more_than_stack_max_layers(void **state)
{
    (void)state;
    float one[2] = {1.0f, 2.0f};
    const float *layers[AW_STACK_MAX + 1];
    for (int k = 0; k < AW_STACK_MAX + 1; k++)
        layers[k] = one;
    float mean[2], med[2];
    uint16_t nv[2] = {99, 99};
    aw_stack_stats(layers, AW_STACK_MAX + 1, 2, 1, NULL, NULL, med, mean, NULL,
                   nv);
    assert_int_equal(nv[0], 0);
    assert_int_equal(nv[1], 0);
    assert_nan(mean[0]);
    assert_nan(med[1]);
    /* Exactly AW_STACK_MAX layers is fine: 64 values, median of an even
     * count. */
    aw_stack_stats(layers, AW_STACK_MAX, 2, 1, NULL, NULL, med, mean, NULL, nv);
    assert_int_equal(nv[0], AW_STACK_MAX);
    check_f(med[1], 2.0);
    check_f(mean[0], 1.0);
}

/* ---- aw_stack_stats: brute-force reference, 1 and 2 threads ---- */

static int cmp_ld(const void *a, const void *b)
{
    long double x = *(const long double *)a, y = *(const long double *)b;
    return (x > y) - (x < y);
}

/* Reference statistics of one pixel: sort + formulas in long double. */
static void reference_px(const float *const *layers, size_t nl, size_t i,
                         int min_valid, double out[5], int *nv)
{
    long double v[AW_STACK_MAX];
    size_t m = 0;
    for (size_t k = 0; k < nl; k++) {
        float x = layers[k][i];
        if (isfinite(x))
            v[m++] = (long double)x;
    }
    *nv = (int)m;
    for (int j = 0; j < 5; j++)
        out[j] = (double)NAN;
    if (m == 0 || (int)m < min_valid)
        return;
    qsort(v, m, sizeof v[0], cmp_ld);
    long double sum = 0.0L;
    for (size_t k = 0; k < m; k++)
        sum += v[k];
    long double mean = sum / (long double)m;
    long double ss = 0.0L;
    for (size_t k = 0; k < m; k++)
        ss += (v[k] - mean) * (v[k] - mean);
    out[0] = (double)v[0];
    out[1] = (double)v[m - 1];
    out[2] = (double)(float)(m % 2 ? v[m / 2] : (v[m / 2 - 1] + v[m / 2]) / 2);
    out[3] = (double)mean;
    out[4] = m >= 2 ? (double)sqrtl(ss / (long double)(m - 1)) : (double)NAN;
}

typedef struct stack_out {
    float *mn, *mx, *med, *mean, *sd;
    uint16_t *nv;
} stack_out;

static void stack_out_alloc(stack_out *o, size_t n)
{
    o->mn = malloc(n * sizeof(float));
    o->mx = malloc(n * sizeof(float));
    o->med = malloc(n * sizeof(float));
    o->mean = malloc(n * sizeof(float));
    o->sd = malloc(n * sizeof(float));
    o->nv = malloc(n * sizeof(uint16_t));
    assert_non_null(o->mn);
    assert_non_null(o->mx);
    assert_non_null(o->med);
    assert_non_null(o->mean);
    assert_non_null(o->sd);
    assert_non_null(o->nv);
}

static void stack_out_free(stack_out *o)
{
    free(o->mn);
    free(o->mx);
    free(o->med);
    free(o->mean);
    free(o->sd);
    free(o->nv);
}

static void
stack_stats_should_match_a_reference_with_one_and_two_threads(void **state)
{
    (void)state;
    /* 4099 pixels = 16 full blocks of 256 + a partial one; 23 layers with
     * ~25 % NaN and a few +-Inf; values around an offset that changes per
     * pixel (up to 1000, where float spacing is 6e-5, so a one-pass
     * sum-of-squares variance would lose digits). */
    enum { NPX = 4099, NL = 23, MINV = 5 };
    float *data = malloc((size_t)NPX * NL * sizeof(float));
    assert_non_null(data);
    const float *layers[NL];
    uint32_t s = 31337u;
    for (int k = 0; k < NL; k++) {
        float *l = data + (size_t)k * NPX;
        layers[k] = l;
        for (int i = 0; i < NPX; i++) {
            uint32_t r = aw_lcg_next(&s) >> 24;
            float off = (float)(i % 7) * 166.0f;
            l[i] = r < 64    ? NAN
                   : r == 64 ? INFINITY
                   : r == 65 ? -INFINITY
                             : off + aw_lcg_uniform(&s, -1.0f, 1.0f);
        }
    }
    /* Some pixels with exactly MINV - 1 and MINV values. */
    for (int k = 0; k < NL; k++) {
        float *l = data + (size_t)k * NPX;
        l[10] = k < MINV - 1 ? 0.5f * (float)k : NAN;
        l[11] = k < MINV ? 0.25f * (float)k : NAN;
    }

    stack_out o1, o2;
    stack_out_alloc(&o1, NPX);
    stack_out_alloc(&o2, NPX);
    const int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    aw_stack_stats(layers, NL, NPX, MINV, o1.mn, o1.mx, o1.med, o1.mean, o1.sd,
                   o1.nv);
    omp_set_num_threads(2);
    aw_stack_stats(layers, NL, NPX, MINV, o2.mn, o2.mx, o2.med, o2.mean, o2.sd,
                   o2.nv);
    omp_set_num_threads(saved);

    /* Bit-identical whatever the thread count. */
    assert_memory_equal(o1.mn, o2.mn, NPX * sizeof(float));
    assert_memory_equal(o1.mx, o2.mx, NPX * sizeof(float));
    assert_memory_equal(o1.med, o2.med, NPX * sizeof(float));
    assert_memory_equal(o1.mean, o2.mean, NPX * sizeof(float));
    assert_memory_equal(o1.sd, o2.sd, NPX * sizeof(float));
    assert_memory_equal(o1.nv, o2.nv, NPX * sizeof(uint16_t));

    int cut = 0;
    for (size_t i = 0; i < NPX; i++) {
        double ref[5];
        int nv;
        reference_px(layers, NL, i, MINV, ref, &nv);
        assert_int_equal(o2.nv[i], nv);
        if (nv < MINV) {
            cut++;
            assert_nan(o2.mn[i]);
            assert_nan(o2.mean[i]);
            assert_nan(o2.med[i]);
            assert_nan(o2.sd[i]);
            continue;
        }
        /* min, max and the median are exact (one rounding of the same
         * exact value); mean and std within 2 float ulps. */
        assert_true((double)o2.mn[i] == ref[0]);
        assert_true((double)o2.mx[i] == ref[1]);
        assert_true((double)o2.med[i] == ref[2]);
        assert_close(o2.mean[i], ref[3], 2.4e-7 * fabs(ref[3]) + 1e-12);
        assert_close(o2.sd[i], ref[4], 2.4e-7 * fabs(ref[4]) + 1e-12);
    }
    assert_int_equal(o2.nv[10], MINV - 1);
    assert_int_equal(o2.nv[11], MINV);
    assert_true(cut >= 1);
    check_f(o2.med[11], 0.5); /* {0, .25, .5, .75, 1} */

    stack_out_free(&o1);
    stack_out_free(&o2);
    free(data);
}

/* ---- aw_wofs_frequency and aw_occurrence_month_normalised ---- */

static void wofs_frequency_should_divide_wet_by_clear(void **state)
{
    (void)state;
    const float clear[] = {10.0f, 0.0f, 4.0f, NAN, 5.0f, -1.0f, INFINITY, 7.0f};
    const float wet[] = {3.0f, 0.0f, 4.0f, 1.0f, NAN, 0.0f, 1.0f, 0.0f};
    const double want[] = {0.3, NAN, 1.0, NAN, NAN, NAN, NAN, 0.0};
    float freq[8];
    aw_wofs_frequency(clear, wet, 8, freq);
    for (int i = 0; i < 8; i++)
        check_f(freq[i], want[i]);
}

static void occurrence_should_average_the_months_with_data(void **state)
{
    (void)state;
    /* 3 months x 4 pixels:
     * px 0: 0.2, 0.4, 0.9   -> 1.5 / 3 = 0.5
     * px 1: _, 0.75, _      -> 0.75 (one month)
     * px 2: 1.0, _, 0.0     -> 0.5
     * px 3: no month        -> NaN */
    const float m0[] = {0.2f, NAN, 1.0f, NAN};
    const float m1[] = {0.4f, 0.75f, NAN, NAN};
    const float m2[] = {0.9f, NAN, 0.0f, NAN};
    const float *months[3] = {m0, m1, m2};
    float occ[4];
    aw_occurrence_month_normalised(months, 3, 4, occ);
    check_f(occ[0], 0.5);
    check_f(occ[1], 0.75);
    check_f(occ[2], 0.5);
    assert_nan(occ[3]);
    aw_occurrence_month_normalised(months, 0, 4, occ);
    assert_nan(occ[0]);
}

static void occurrence_should_remove_the_clear_sky_season_bias(void **state)
{
    (void)state;
    /* Pekel et al. 2016: a lake dry in the clear summer (30 clear
     * observations, 0 wet) and full in the cloudy spring (2 clear, 2 wet).
     * Pooled: 2 / 32 = 0.0625. Month-normalised: (0 + 1) / 2 = 0.5. A
     * third month without clear observations does not count. */
    const float clear_summer = 30.0f, wet_summer = 0.0f;
    const float clear_spring = 2.0f, wet_spring = 2.0f;
    const float clear_winter = 0.0f, wet_winter = 0.0f;
    float f_summer, f_spring, f_winter;
    aw_wofs_frequency(&clear_summer, &wet_summer, 1, &f_summer);
    aw_wofs_frequency(&clear_spring, &wet_spring, 1, &f_spring);
    aw_wofs_frequency(&clear_winter, &wet_winter, 1, &f_winter);
    const float *months[3] = {&f_summer, &f_spring, &f_winter};
    float occ;
    aw_occurrence_month_normalised(months, 3, 1, &occ);
    check_f(occ, 0.5);

    float pooled_clear = 32.0f, pooled_wet = 2.0f, pooled;
    aw_wofs_frequency(&pooled_clear, &pooled_wet, 1, &pooled);
    check_f(pooled, 0.0625);
}

static void occurrence_should_be_thread_independent_on_many_pixels(void **state)
{
    (void)state;
    enum { NPX = 70001, NM = 12 };
    float *data = malloc((size_t)NPX * NM * sizeof(float));
    float *o1 = malloc(NPX * sizeof(float)), *o2 = malloc(NPX * sizeof(float));
    assert_non_null(data);
    assert_non_null(o1);
    assert_non_null(o2);
    const float *months[NM];
    uint32_t s = 4242u;
    for (int m = 0; m < NM; m++) {
        float *l = data + (size_t)m * NPX;
        months[m] = l;
        for (int i = 0; i < NPX; i++)
            l[i] = (aw_lcg_next(&s) >> 29) == 0 ? NAN
                                                : aw_lcg_uniform(&s, 0.f, 1.f);
    }
    const int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    aw_occurrence_month_normalised(months, NM, NPX, o1);
    omp_set_num_threads(2);
    aw_occurrence_month_normalised(months, NM, NPX, o2);
    omp_set_num_threads(saved);
    assert_memory_equal(o1, o2, NPX * sizeof(float));
    for (int i = 0; i < NPX; i += 97) {
        double sum = 0.0;
        int c = 0;
        for (int m = 0; m < NM; m++) {
            if (isfinite(months[m][i])) {
                sum += (double)months[m][i];
                c++;
            }
        }
        check_f(o2[i], c > 0 ? sum / c : (double)NAN);
    }
    free(data);
    free(o1);
    free(o2);
}

/* ---- aw_vci and aw_zscore ---- */

static void vci_should_scale_between_baseline_min_and_max(void **state)
{
    (void)state;
    /* VCI = 100 (ndvi - min) / (max - min):
     * px 0: 100 * 0.3 / 0.6 = 50
     * px 1: 100 * -0.1 / 0.6 = -16.667 (below the baseline minimum: a
     *       record low, NOT clamped to 0)
     * px 2: 100 * 0.7 / 0.6 = 116.667 (record high, not clamped to 100)
     * px 3: max == min -> NaN;  px 4: NaN NDVI -> NaN
     * px 5: max - min = 5e-7 <= 1e-6 -> NaN;  px 6: max < min -> NaN
     * px 7: NaN min -> NaN;  px 8: max - min = 1e-3 -> 100 * 0.5e-3 / 1e-3
     *       = 50 (a narrow but real range). */
    const float ndvi[] = {0.5f, 0.1f, 0.9f, 0.3f,   NAN,
                          0.3f, 0.3f, 0.3f, 0.3005f};
    const float nmin[] = {0.2f, 0.2f, 0.2f, 0.3f, 0.2f, 0.3f, 0.4f, NAN, 0.3f};
    const float nmax[] = {0.8f,       0.8f, 0.8f, 0.3f,  0.8f,
                          0.3000005f, 0.2f, 0.8f, 0.301f};
    float vci[9];
    aw_vci(ndvi, nmin, nmax, 9, vci);
    /* float inputs carry ~3e-8 representation error: tolerance 1e-4 on
     * 0..100 (1e-2 for px 8, whose range is 1e-3 wide). */
    assert_close(vci[0], 50.0, 1e-4);
    assert_close(vci[1], -100.0 / 6.0, 1e-4);
    assert_close(vci[2], 700.0 / 6.0, 1e-4);
    assert_nan(vci[3]);
    assert_nan(vci[4]);
    assert_nan(vci[5]);
    assert_nan(vci[6]);
    assert_nan(vci[7]);
    assert_close(vci[8], 50.0, 1e-2);
}

static void zscore_should_standardise_and_reject_bad_std(void **state)
{
    (void)state;
    const float x[] = {3.0f, 1.0f, 5.0f, 2.0f, NAN, 2.0f, 2.5f, INFINITY};
    const float mean[] = {2.0f, 2.0f, 2.0f, 2.0f, 2.0f, 2.0f, NAN, 2.0f};
    const float sd[] = {0.5f, 0.5f, 0.0f, -1.0f, 1.0f, NAN, 1.0f, 1.0f};
    const double want[] = {2.0, -2.0, NAN, NAN, NAN, NAN, NAN, NAN};
    float z[8];
    aw_zscore(x, mean, sd, 8, z);
    for (int i = 0; i < 8; i++)
        check_f(z[i], want[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(
            stack_stats_should_match_hand_computed_pixels_with_gaps),
        cmocka_unit_test(stack_stats_should_cut_pixels_below_min_valid),
        cmocka_unit_test(stack_stats_should_handle_a_single_layer),
        cmocka_unit_test(stack_stats_should_skip_null_outputs),
        cmocka_unit_test(stack_stats_should_reject_more_than_stack_max_layers),
        cmocka_unit_test(
            stack_stats_should_match_a_reference_with_one_and_two_threads),
        cmocka_unit_test(wofs_frequency_should_divide_wet_by_clear),
        cmocka_unit_test(occurrence_should_average_the_months_with_data),
        cmocka_unit_test(occurrence_should_remove_the_clear_sky_season_bias),
        cmocka_unit_test(
            occurrence_should_be_thread_independent_on_many_pixels),
        cmocka_unit_test(vci_should_scale_between_baseline_min_and_max),
        cmocka_unit_test(zscore_should_standardise_and_reject_bad_std),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
