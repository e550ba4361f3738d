/* Unit tests for the calendar helpers of pipeline/util.c used by the
 * baseline (period centres, NDVI windows) and the forecasts (days of a
 * trend, projected dates).
 *
 * Oracles: day numbers worked out by hand from 1970-01-01 (365-day years,
 * 366 in leap years), and a day-by-day walk through 1900-2100 that checks
 * the date after each one. */
#include <stdio.h>
#include <string.h>
#include "aw_test.h"
#include "aralwatch/util.h"

static void day_numbers_should_match_hand_counts(void **state)
{
    (void)state;
    assert_int_equal(aw_days_from_date("1970-01-01"), 0);
    assert_int_equal(aw_days_from_date("1970-12-31"), 364);
    assert_int_equal(aw_days_from_date("1971-01-01"), 365);
    /* 1972 is a leap year: 365 + 365 + 31 + 29 days before 1972-03-01. */
    assert_int_equal(aw_days_from_date("1972-03-01"), 790);
    /* 30 years, 7 of them leap (1972..1996): 30 * 365 + 7. */
    assert_int_equal(aw_days_from_date("2000-01-01"), 10957);
    /* 2000 is a leap year (divisible by 400): + 31 + 29. */
    assert_int_equal(aw_days_from_date("2000-03-01"), 11017);
    assert_int_equal(aw_days_from_date("1969-12-31"), -1);
    /* 1900 is not a leap year (divisible by 100, not 400). */
    assert_int_equal(
        aw_days_from_date("1900-03-01") - aw_days_from_date("1900-02-28"), 1);
}

static void dates_should_walk_day_by_day(void **state)
{
    (void)state;
    static const int mdays[12] = {31, 28, 31, 30, 31, 30,
                                  31, 31, 30, 31, 30, 31};
    long n = aw_days_from_date("1900-01-01");
    for (int y = 1900; y <= 2100; y++) {
        int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        for (int m = 1; m <= 12; m++) {
            int len = mdays[m - 1] + (m == 2 && leap);
            for (int d = 1; d <= len; d++, n++) {
                char want[40], got[11];
                snprintf(want, sizeof want, "%04d-%02d-%02d", y, m, d);
                aw_date_from_days(n, got);
                assert_string_equal(got, want);
                assert_int_equal(aw_days_from_date(want), n);
            }
        }
    }
}

static void dates_outside_four_digit_years_should_be_clamped(void **state)
{
    (void)state;
    char out[11];
    aw_date_from_days(aw_days_from_date("9999-12-31") + 1, out);
    assert_string_equal(out, "9999-12-31");
    aw_date_from_days(aw_days_from_date("0000-01-01") - 1, out);
    assert_string_equal(out, "0000-01-01");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(day_numbers_should_match_hand_counts),
        cmocka_unit_test(dates_should_walk_day_by_day),
        cmocka_unit_test(dates_outside_four_digit_years_should_be_clamped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
