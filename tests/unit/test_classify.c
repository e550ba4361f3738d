/* Unit tests for kernels/classify.c: threshold classification into
 * AW_WATER_YES (index > thr), AW_WATER_NO (index <= thr) and
 * AW_CLASS_NODATA (invalid or non-finite), and thread independence. */
#include <stdlib.h>
#include <string.h>
#include <omp.h>
#include "aw_test.h"
#include "aralwatch/kernels.h"

static void classify_should_follow_hand_values(void **state)
{
    (void)state;
    /* thr 0.1:
     *  0.5  > 0.1        -> 1
     * -0.2 <= 0.1        -> 0
     *  0.1 == thr        -> 0 (equal is not water)
     *  0.2  > 0.1        -> 1
     *  NaN               -> 255
     * +Inf               -> 255
     * -Inf               -> 255
     *  0.3, valid == 0   -> 255
     *  0.3, valid == 1   -> 1 (any non-zero is valid) */
    const float idx[] = {0.5f,     -0.2f,     0.1f, 0.2f, NAN,
                         INFINITY, -INFINITY, 0.3f, 0.3f};
    const uint8_t valid[] = {255, 255, 255, 255, 255, 255, 255, 0, 1};
    const uint8_t want[] = {1, 0, 0, 1, 255, 255, 255, 255, 1};
    uint8_t cls[9];
    memset(cls, 7, sizeof cls);
    aw_classify_threshold(idx, valid, cls, 9, 0.1f);
    assert_memory_equal(cls, want, sizeof want);
}

static void classify_should_treat_a_null_mask_as_all_valid(void **state)
{
    (void)state;
    /* thr 0: 0 -> 0, -0.0 -> 0, 1e-7 -> 1, -1e-7 -> 0, NaN -> 255 */
    const float idx[] = {0.0f, -0.0f, 1e-7f, -1e-7f, NAN};
    const uint8_t want[] = {0, 0, 1, 0, 255};
    uint8_t cls[5];
    aw_classify_threshold(idx, NULL, cls, 5, 0.0f);
    assert_memory_equal(cls, want, sizeof want);
}

static void
classify_should_give_the_same_classes_with_one_and_four_threads(void **state)
{
    (void)state;
    const size_t n = 300007; /* several 64 Ki chunks plus a partial one */
    float *idx = malloc(n * sizeof(float));
    uint8_t *valid = malloc(n);
    uint8_t *one = malloc(n);
    uint8_t *four = malloc(n);
    assert_non_null(idx);
    assert_non_null(valid);
    assert_non_null(one);
    assert_non_null(four);
    uint32_t s = 8u;
    for (size_t i = 0; i < n; i++) {
        idx[i] = (aw_lcg_next(&s) >> 26) == 0 ? NAN
                                              : aw_lcg_uniform(&s, -1.0f, 1.0f);
        valid[i] = (aw_lcg_next(&s) >> 29) == 0 ? 0 : 255;
    }
    const int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    aw_classify_threshold(idx, valid, one, n, 0.05f);
    omp_set_num_threads(4);
    aw_classify_threshold(idx, valid, four, n, 0.05f);
    omp_set_num_threads(saved);
    assert_memory_equal(one, four, n);
    /* Spot-check against the rule, pixel by pixel. */
    for (size_t i = 0; i < n; i++) {
        uint8_t want = (valid[i] == 0 || !isfinite(idx[i])) ? 255
                       : idx[i] > 0.05f                     ? 1
                                                            : 0;
        if (four[i] != want)
            fail_msg("pixel %zu: got %u, want %u", i, four[i], want);
    }
    free(idx);
    free(valid);
    free(one);
    free(four);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(classify_should_follow_hand_values),
        cmocka_unit_test(classify_should_treat_a_null_mask_as_all_valid),
        cmocka_unit_test(
            classify_should_give_the_same_classes_with_one_and_four_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
