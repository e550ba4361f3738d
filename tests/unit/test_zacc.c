/* Unit tests for kernels/zacc.c: zone accumulators (count, fixed-point sum,
 * min, max, histogram percentiles) and their bit-exact merge.
 *
 * Percentile definition under test (kernels/zacc.c): rank r = p / 100 n;
 * k = first non-empty bin whose cumulative count C(k) >= r;
 * x = lo + (k + (r - C(k - 1)) / hist[k]) w, clamped to [min, max].
 * Oracle: the sorted value s[ceil(r) - 1] (s[0] for r = 0) lies in bin k, so
 * |x - s[ceil(r) - 1]| <= w. */
#include <stdlib.h>
#include <string.h>
#include "aw_test.h"
#include "aralwatch/kernels.h"

static void zacc_init_should_start_empty(void **state)
{
    (void)state;
    aw_zacc a;
    aw_zacc_init(&a, -1.0f, 1.0f);
    assert_int_equal(a.n, 0);
    assert_int_equal(a.sum_fx, 0);
    assert_true(isinf(a.min) && a.min > 0);
    assert_true(isinf(a.max) && a.max < 0);
    assert_close(a.lo, -1.0, 0.0);
    assert_close(a.hi, 1.0, 0.0);
    for (int k = 0; k < AW_ZACC_BINS; k++)
        assert_int_equal(a.hist[k], 0);
    assert_nan(aw_zacc_mean(&a));
    assert_nan(aw_zacc_percentile(&a, 50.0));
}

static void zacc_should_give_hand_computed_count_mean_min_and_max(void **state)
{
    (void)state;
    /* Masked in: 0.25 - 0.5 + 1.0 + 0.75 = 1.5, n = 4, mean 0.375;
     * sum_fx = 1.5 * 2^24 = 25165824 (all values exact in fixed point).
     * 0.3 is masked out. */
    const float v[] = {0.25f, -0.5f, 1.0f, 0.75f, 0.3f};
    const uint8_t mask[] = {1, 255, 1, 1, 0};
    aw_zacc a;
    aw_zacc_init(&a, -1.0f, 1.0f);
    aw_zacc_add(&a, v, mask, 5);
    assert_int_equal(a.n, 4);
    assert_int_equal(a.sum_fx, 25165824);
    assert_close(aw_zacc_mean(&a), 0.375, 0.0);
    assert_close(a.min, -0.5, 0.0);
    assert_close(a.max, 1.0, 0.0);
    uint64_t total = 0;
    for (int k = 0; k < AW_ZACC_BINS; k++)
        total += a.hist[k];
    assert_int_equal(total, 4);
    /* 1.0 = hi goes to the last bin; -0.5 to bin (0.5 / 2) * 2000 = 500. */
    assert_int_equal(a.hist[AW_ZACC_BINS - 1], 1);
    assert_int_equal(a.hist[500], 1);
}

static void zacc_should_skip_nan_and_infinite_values(void **state)
{
    (void)state;
    /* Finite: 0.5 and 0.25 -> n 2, mean 0.375, min 0.25, max 0.5. */
    const float v[] = {NAN, 0.5f, INFINITY, -INFINITY, 0.25f};
    aw_zacc a;
    aw_zacc_init(&a, -1.0f, 1.0f);
    aw_zacc_add(&a, v, NULL, 5);
    assert_int_equal(a.n, 2);
    assert_close(aw_zacc_mean(&a), 0.375, 0.0);
    assert_close(a.min, 0.25, 0.0);
    assert_close(a.max, 0.5, 0.0);
    uint64_t total = 0;
    for (int k = 0; k < AW_ZACC_BINS; k++)
        total += a.hist[k];
    assert_int_equal(total, 2);
}

static void zacc_mean_should_be_within_3e_8_of_the_exact_mean(void **state)
{
    (void)state;
    /* 0.1f = 0.100000001490116; * 2^24 = 1677721.625 -> 1677722, so the
     * stored value is 1677722 / 2^24 = 0.100000023841858, 2.2e-8 off. */
    const float one = 0.1f;
    aw_zacc a;
    aw_zacc_init(&a, -1.0f, 1.0f);
    aw_zacc_add(&a, &one, NULL, 1);
    assert_int_equal(a.sum_fx, 1677722);
    assert_close(aw_zacc_mean(&a), 1677722.0 / 16777216.0, 0.0);

    /* Random values: the mean stays within 2^-25 of the double mean. */
    float v[4096];
    uint32_t s = 31u;
    double exact = 0.0;
    for (int i = 0; i < 4096; i++) {
        v[i] = aw_lcg_uniform(&s, -1.0f, 1.0f);
        exact += (double)v[i];
    }
    exact /= 4096.0;
    aw_zacc_init(&a, -1.0f, 1.0f);
    aw_zacc_add(&a, v, NULL, 4096);
    assert_close(aw_zacc_mean(&a), exact, 3e-8);
}

static void
zacc_merge_of_two_halves_should_equal_adding_all_at_once(void **state)
{
    (void)state;
    enum { N = 10007, CUT = 3001 };
    static float v[N];
    static uint8_t mask[N];
    uint32_t s = 5u;
    for (int i = 0; i < N; i++) {
        v[i] = (aw_lcg_next(&s) >> 27) == 0
                   ? NAN
                   : aw_lcg_uniform(&s, -1.3f, 1.3f); /* some out of range */
        mask[i] = (aw_lcg_next(&s) >> 29) == 0 ? 0 : 255;
    }
    static aw_zacc all, lo_half, hi_half, rev;
    aw_zacc_init(&all, -1.0f, 1.0f);
    aw_zacc_add(&all, v, mask, N);

    aw_zacc_init(&lo_half, -1.0f, 1.0f);
    aw_zacc_init(&hi_half, -1.0f, 1.0f);
    aw_zacc_add(&lo_half, v, mask, CUT);
    aw_zacc_add(&hi_half, v + CUT, mask + CUT, N - CUT);

    /* Merge in the other order too. */
    rev = hi_half;
    aw_zacc_merge(&rev, &lo_half);
    aw_zacc_merge(&lo_half, &hi_half);

    assert_memory_equal(&all, &lo_half, sizeof all);
    assert_memory_equal(&all, &rev, sizeof all);
    assert_true(all.n > N / 2);
}

static void zacc_merge_should_accept_an_empty_accumulator(void **state)
{
    (void)state;
    const float v[] = {0.5f, -0.25f};
    static aw_zacc a, empty, before;
    aw_zacc_init(&a, -1.0f, 1.0f);
    aw_zacc_init(&empty, -1.0f, 1.0f);
    aw_zacc_add(&a, v, NULL, 2);
    before = a;
    aw_zacc_merge(&a, &empty);
    assert_memory_equal(&a, &before, sizeof a);
}

static void zacc_percentile_should_interpolate_inside_a_bin(void **state)
{
    (void)state;
    /* [0, 2000] with 2000 bins: w = 1, bin k = [k, k + 1).
     * Values 10.2, 10.7 (bin 10), 11.5 (bin 11), 13.9 (bin 13); n = 4.
     * p 25: r 1   -> bin 10, (1 - 0) / 2 = 0.5 -> 10.5
     * p 50: r 2   -> bin 10, (2 - 0) / 2 = 1   -> 11.0
     * p 60: r 2.4 -> bin 11, (2.4 - 2) / 1     -> 11.4
     * p 75: r 3   -> bin 11, (3 - 2) / 1 = 1   -> 12.0
     * p 0:  r 0   -> bin 10, 0 -> 10.0, clamped to min 10.2
     * p 100: r 4  -> bin 13, 1 -> 14.0, clamped to max 13.9 */
    const float v[] = {10.2f, 10.7f, 11.5f, 13.9f};
    aw_zacc a;
    aw_zacc_init(&a, 0.0f, 2000.0f);
    aw_zacc_add(&a, v, NULL, 4);
    assert_close(aw_zacc_percentile(&a, 25.0), 10.5, 1e-12);
    assert_close(aw_zacc_percentile(&a, 50.0), 11.0, 1e-12);
    assert_close(aw_zacc_percentile(&a, 60.0), 11.4, 1e-12);
    assert_close(aw_zacc_percentile(&a, 75.0), 12.0, 1e-12);
    assert_close(aw_zacc_percentile(&a, 0.0), 10.2f, 0.0);
    assert_close(aw_zacc_percentile(&a, 100.0), 13.9f, 0.0);
    /* p outside [0, 100] is clamped to it. */
    assert_close(aw_zacc_percentile(&a, -5.0), 10.2f, 0.0);
    assert_close(aw_zacc_percentile(&a, 150.0), 13.9f, 0.0);
}

static int cmp_float(const void *pa, const void *pb)
{
    float a = *(const float *)pa, b = *(const float *)pb;
    return (a > b) - (a < b);
}

static void zacc_percentile_should_match_a_sorted_array_oracle(void **state)
{
    (void)state;
    enum { N = 5000 };
    static float v[N], sorted[N];
    uint32_t s = 4242u;
    size_t m = 0;
    for (int i = 0; i < N; i++) {
        /* skewed values in [-1, 1): u^2 scaled, and ~1/32 NaN */
        float u = aw_lcg_uniform(&s, 0.0f, 1.0f);
        v[i] = (aw_lcg_next(&s) >> 27) == 0 ? NAN : 2.0f * u * u - 1.0f;
        if (!isnan(v[i]))
            sorted[m++] = v[i];
    }
    qsort(sorted, m, sizeof sorted[0], cmp_float);
    static aw_zacc a;
    aw_zacc_init(&a, -1.0f, 1.0f);
    aw_zacc_add(&a, v, NULL, N);
    assert_int_equal(a.n, m);

    const double w = 2.0 / AW_ZACC_BINS;
    const double ps[] = {0,  0.5, 1,  5,    10, 25, 33.3,
                         50, 60,  75, 90.1, 95, 99, 100};
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) {
        double r = ps[i] / 100.0 * (double)m;
        size_t j = r <= 0.0 ? 0 : (size_t)ceil(r) - 1;
        double got = aw_zacc_percentile(&a, ps[i]);
        if (!(fabs(got - (double)sorted[j]) <= w + 1e-12))
            fail_msg("p %.1f: got %.9g, oracle s[%zu] = %.9g, w = %g", ps[i],
                     got, j, (double)sorted[j], w);
    }
    assert_close(aw_zacc_percentile(&a, 0.0), sorted[0], 0.0);
    assert_close(aw_zacc_percentile(&a, 100.0), sorted[m - 1], 0.0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(zacc_init_should_start_empty),
        cmocka_unit_test(zacc_should_give_hand_computed_count_mean_min_and_max),
        cmocka_unit_test(zacc_should_skip_nan_and_infinite_values),
        cmocka_unit_test(zacc_mean_should_be_within_3e_8_of_the_exact_mean),
        cmocka_unit_test(
            zacc_merge_of_two_halves_should_equal_adding_all_at_once),
        cmocka_unit_test(zacc_merge_should_accept_an_empty_accumulator),
        cmocka_unit_test(zacc_percentile_should_interpolate_inside_a_bin),
        cmocka_unit_test(zacc_percentile_should_match_a_sorted_array_oracle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
