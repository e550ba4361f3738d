/* Unit tests for kernels/otsu.c: aw_hist_add binning and thread
 * independence, and aw_otsu_threshold on hand-derived histograms, against a
 * brute-force oracle, and in its failure cases.
 *
 * Otsu: sigma_b^2(k) = w0 w1 (mu0 - mu1)^2 with class 0 = bins 0..k, bin
 * centres as values, threshold = lo + (k + 1) w, first k on ties. */
#include <stdlib.h>
#include <string.h>
#include <omp.h>
#include "aw_test.h"
#include "aralwatch/kernels.h"

/* ---- aw_hist_add ---- */

static void hist_add_should_bin_by_the_documented_edges(void **state)
{
    (void)state;
    /* 4 bins over [-1, 1], w = 0.5: [-1,-0.5) [-0.5,0) [0,0.5) [0.5,1]. */
    const float v[] = {-2.0f,     /* < lo        -> 0 */
                       -1.0f,     /* = lo        -> 0 */
                       -0.5f,     /* inner edge  -> 1 */
                       -0.25f,    /*             -> 1 */
                       0.0f,      /* inner edge  -> 2 */
                       0.5f,      /* inner edge  -> 3 */
                       0.999f,    /*             -> 3 */
                       1.0f,      /* = hi        -> 3 */
                       5.0f,      /* > hi        -> 3 */
                       NAN,       /* skipped */
                       INFINITY,  /* skipped */
                       -INFINITY, /* skipped */
                       0.25f};    /* valid == 0: skipped */
    const uint8_t valid[] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0};
    uint64_t hist[4] = {10, 0, 0, 0}; /* counts are added, not cleared */
    aw_hist_add(hist, 4, -1.0f, 1.0f, v, valid, 13);
    assert_int_equal(hist[0], 12);
    assert_int_equal(hist[1], 2);
    assert_int_equal(hist[2], 1);
    assert_int_equal(hist[3], 4);
}

static void hist_add_should_treat_a_null_mask_as_all_valid(void **state)
{
    (void)state;
    const float v[] = {0.1f, 0.6f, 0.7f};
    uint64_t hist[2] = {0, 0};
    aw_hist_add(hist, 2, 0.0f, 1.0f, v, NULL, 3);
    assert_int_equal(hist[0], 1);
    assert_int_equal(hist[1], 2);
}

static void check_hist_threads(int nbins, size_t n)
{
    float *v = malloc(n * sizeof(float));
    uint8_t *valid = malloc(n);
    uint64_t *h1 = calloc((size_t)nbins, sizeof(uint64_t));
    uint64_t *h4 = calloc((size_t)nbins, sizeof(uint64_t));
    assert_non_null(v);
    assert_non_null(valid);
    assert_non_null(h1);
    assert_non_null(h4);
    uint32_t s = 777u;
    for (size_t i = 0; i < n; i++) {
        v[i] = (aw_lcg_next(&s) >> 26) == 0 ? NAN
                                            : aw_lcg_uniform(&s, -1.2f, 1.2f);
        valid[i] = (aw_lcg_next(&s) >> 29) == 0 ? 0 : 255;
    }
    const int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    aw_hist_add(h1, nbins, -1.0f, 1.0f, v, valid, n);
    omp_set_num_threads(4);
    aw_hist_add(h4, nbins, -1.0f, 1.0f, v, valid, n);
    omp_set_num_threads(saved);
    assert_memory_equal(h1, h4, (size_t)nbins * sizeof(uint64_t));
    /* Every finite valid value is counted once. */
    uint64_t want = 0, got = 0;
    for (size_t i = 0; i < n; i++)
        want += valid[i] != 0 && isfinite(v[i]);
    for (int k = 0; k < nbins; k++)
        got += h4[k];
    assert_int_equal(got, want);
    free(v);
    free(valid);
    free(h1);
    free(h4);
}

static void
hist_add_should_give_the_same_counts_with_one_and_four_threads(void **state)
{
    (void)state;
    check_hist_threads(256, 100003);  /* per-thread stack histograms */
    check_hist_threads(5000, 100003); /* > 4096 bins: serial path */
}

/* ---- aw_otsu_threshold: hand-derived answers ---- */

static void otsu_should_split_between_two_separated_blocks(void **state)
{
    (void)state;
    /* 8 bins over [0, 8], w = 1, centres 0.5 .. 7.5.
     * counts: bins 1, 2 = 10 each; bins 5, 6 = 10 each.
     * k = 1: w0 = 1/4, mu0 = 1.5; w1 = 3/4, mu1 = (2.5 + 5.5 + 6.5) / 3
     *        = 4.8333; s = 0.1875 * 3.3333^2 = 2.0833
     * k = 2: w0 = w1 = 1/2, mu0 = 2, mu1 = 6; s = 0.25 * 16 = 4
     * k = 3, 4: bins 3 and 4 are empty, same sums, s = 4 (tie)
     * k = 5: mirror of k = 1, 2.0833; k = 0, 6: s smaller still.
     * First k with the maximum: k = 2 -> threshold lo + 3 w = 3. */
    const uint64_t hist[8] = {0, 10, 10, 0, 0, 10, 10, 0};
    float thr = -99.0f;
    assert_int_equal(aw_otsu_threshold(hist, 8, 0.0f, 8.0f, 0.01, &thr), 0);
    assert_close(thr, 3.0, 1e-6);
}

static void
otsu_should_find_the_unique_best_split_of_an_uneven_histogram(void **state)
{
    (void)state;
    /* 4 bins over [-1, 1], w = 0.5, centres -0.75, -0.25, 0.25, 0.75;
     * counts {6, 2, 0, 2}, N = 10.
     * k = 0: w0 0.6, mu0 -0.75; w1 0.4, mu1 (2 * -0.25 + 2 * 0.75) / 4
     *        = 0.25; s = 0.24 * 1.0^2 = 0.24
     * k = 1: w0 0.8, mu0 (6 * -0.75 + 2 * -0.25) / 8 = -0.625; w1 0.2,
     *        mu1 0.75; s = 0.16 * 1.375^2 = 0.3025
     * k = 2: bin 2 empty, same as k = 1 (tie, first wins)
     * Best k = 1 -> threshold -1 + 2 * 0.5 = 0. */
    const uint64_t hist[4] = {6, 2, 0, 2};
    float thr = -99.0f;
    assert_int_equal(aw_otsu_threshold(hist, 4, -1.0f, 1.0f, 0.0, &thr), 0);
    assert_close(thr, 0.0, 1e-7);
}

/* ---- aw_otsu_threshold: brute-force oracle ---- */

/* sigma_b^2 for split k, summing each class directly (no running sums). */
static double oracle_sigma(const uint64_t *h, int nbins, double lo, double w,
                           int k)
{
    double n0 = 0, n1 = 0, s0 = 0, s1 = 0;
    for (int i = 0; i < nbins; i++) {
        double x = lo + (i + 0.5) * w;
        if (i <= k) {
            n0 += (double)h[i];
            s0 += (double)h[i] * x;
        }
        else {
            n1 += (double)h[i];
            s1 += (double)h[i] * x;
        }
    }
    if (n0 == 0 || n1 == 0)
        return 0.0;
    double nt = n0 + n1;
    double d = s0 / n0 - s1 / n1;
    return (n0 / nt) * (n1 / nt) * d * d;
}

static void
otsu_should_match_a_brute_force_oracle_on_random_histograms(void **state)
{
    (void)state;
    const int nbins = 16;
    const double lo = -1.0, w = 2.0 / nbins;
    uint32_t s = 2024u;
    for (int trial = 0; trial < 200; trial++) {
        uint64_t h[16];
        for (int i = 0; i < nbins; i++) {
            uint32_t r = aw_lcg_next(&s) >> 16;
            h[i] = (r & 3u) == 0 ? 0 : r % 100u; /* some empty bins */
        }
        int best_k = -1;
        double best = 0.0;
        for (int k = 0; k < nbins - 1; k++) {
            double sg = oracle_sigma(h, nbins, lo, w, k);
            if (sg > best) {
                best = sg;
                best_k = k;
            }
        }
        float thr = -99.0f;
        int rc = aw_otsu_threshold(h, nbins, -1.0f, 1.0f, 0.0, &thr);
        if (best_k < 0) {
            assert_int_equal(rc, 1);
            continue;
        }
        assert_int_equal(rc, 0);
        int k = (int)lround(((double)thr - lo) / w) - 1;
        /* The split found reaches the maximum (to rounding) ... */
        assert_true(oracle_sigma(h, nbins, lo, w, k) >= best * (1 - 1e-12));
        /* ... and is the oracle's first maximiser. */
        assert_int_equal(k, best_k);
        assert_close(thr, lo + (best_k + 1) * w, 1e-6);
    }
}

/* ---- aw_otsu_threshold: failures ---- */

static void otsu_should_fail_on_an_empty_histogram(void **state)
{
    (void)state;
    const uint64_t hist[8] = {0};
    float thr = 42.0f;
    assert_int_equal(aw_otsu_threshold(hist, 8, -1.0f, 1.0f, 0.01, &thr), 1);
    assert_close(thr, 42.0, 0.0); /* untouched */
}

static void
otsu_should_fail_when_the_best_split_leaves_a_class_too_small(void **state)
{
    (void)state;
    /* 4 bins over [0, 4]: {1000, 0, 0, 5}. k = 0, 1, 2 tie (empty bins),
     * so k = 0 and threshold 1.0. The small class has 5 / 1005 = 0.4975 %. */
    const uint64_t hist[4] = {1000, 0, 0, 5};
    float thr = 42.0f;
    assert_int_equal(aw_otsu_threshold(hist, 4, 0.0f, 4.0f, 0.01, &thr), 1);
    assert_close(thr, 42.0, 0.0);
    /* 0.4975 % >= 0.4 %: accepted. */
    assert_int_equal(aw_otsu_threshold(hist, 4, 0.0f, 4.0f, 0.004, &thr), 0);
    assert_close(thr, 1.0, 1e-7);
}

static void otsu_should_fail_when_every_pixel_is_in_one_bin(void **state)
{
    (void)state;
    /* No split gives two non-empty classes, even with min_class_frac 0. */
    const uint64_t hist[4] = {0, 0, 50, 0};
    float thr = 42.0f;
    assert_int_equal(aw_otsu_threshold(hist, 4, 0.0f, 4.0f, 0.0, &thr), 1);
    assert_close(thr, 42.0, 0.0);
}

static void otsu_should_threshold_a_histogram_built_by_hist_add(void **state)
{
    (void)state;
    /* MNDWI-like bimodal sample: 600 land pixels around -0.4, 400 water
     * pixels around 0.5, 256 bins over [-1, 1]. The split falls between the
     * two modes. */
    float v[1000];
    uint32_t s = 99u;
    for (int i = 0; i < 1000; i++)
        v[i] = i < 600 ? aw_lcg_uniform(&s, -0.5f, -0.3f)
                       : aw_lcg_uniform(&s, 0.4f, 0.6f);
    uint64_t hist[256] = {0};
    aw_hist_add(hist, 256, -1.0f, 1.0f, v, NULL, 1000);
    float thr = 42.0f;
    assert_int_equal(aw_otsu_threshold(hist, 256, -1.0f, 1.0f, 0.01, &thr), 0);
    assert_true(thr > -0.3f);
    assert_true(thr <= 0.4f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hist_add_should_bin_by_the_documented_edges),
        cmocka_unit_test(hist_add_should_treat_a_null_mask_as_all_valid),
        cmocka_unit_test(
            hist_add_should_give_the_same_counts_with_one_and_four_threads),
        cmocka_unit_test(otsu_should_split_between_two_separated_blocks),
        cmocka_unit_test(
            otsu_should_find_the_unique_best_split_of_an_uneven_histogram),
        cmocka_unit_test(
            otsu_should_match_a_brute_force_oracle_on_random_histograms),
        cmocka_unit_test(otsu_should_fail_on_an_empty_histogram),
        cmocka_unit_test(
            otsu_should_fail_when_the_best_split_leaves_a_class_too_small),
        cmocka_unit_test(otsu_should_fail_when_every_pixel_is_in_one_bin),
        cmocka_unit_test(otsu_should_threshold_a_histogram_built_by_hist_add),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
