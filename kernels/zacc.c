/* Zone accumulators: mergeable count, sum, min, max and histogram of one
 * variable within one zone (libvips hist_find_indexed style start / scan /
 * stop, with per-thread partials merged afterwards).
 *
 * Sum in fixed point: q(v) = llrint(v * 2^24) (round to nearest, ties to
 * even), sum_fx = sum q(v) in int64. Integer addition is associative, so any
 * split of the values into partial accumulators, merged in any order, gives
 * the same bits. mean = sum_fx / 2^24 / n; each q(v) / 2^24 is within 2^-25
 * (about 3e-8) of v, so the mean is within 3e-8 of the exact mean.
 * Range: |v| is clamped to 2^38 before conversion so llrint stays defined,
 * and sums are added modulo 2^64 (no signed-overflow UB); the sum is only
 * meaningful while |sum v| < 2^39 (about 5.5e11), far beyond what index
 * values over a zone reach.
 *
 * Histogram: AW_ZACC_BINS bins over [lo, hi] with the rule of aw_hist_add
 * (hist_bin.h): bin k covers [lo + k w, lo + (k + 1) w), w = (hi - lo) /
 * AW_ZACC_BINS, values < lo in bin 0, values >= hi in the last bin.
 *
 * Percentile definition. With n values, p in [0, 100] and rank r = p / 100 n,
 * the p-th percentile is the value x at which the cumulative count reaches r,
 * reading each bin's count as spread evenly across the bin:
 *   k      = the first bin with hist[k] > 0 and C(k) >= r, where C(k) is the
 *            count in bins 0..k,
 *   x      = lo + (k + (r - C(k - 1)) / hist[k]) w,
 *   result = x clamped to [min, max].
 * So p = 0 gives min and p = 100 gives max. For values inside [lo, hi) the
 * sorted value s[ceil(r) - 1] (s[0] for r = 0) lies in the same bin k, hence
 * |result - s[ceil(r) - 1]| <= w. Values outside [lo, hi) are piled into the
 * end bins, where only the clamp to [min, max] bounds the error. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "aralwatch/kernels.h"
#include "hist_bin.h"

#define FX_LIMIT 4611686018427387904.0 /* 2^62 = 2^38 * 2^24 */

static int64_t to_fixed(float v)
{
    double x = (double)v * AW_ZACC_FX_SCALE; /* exact: power-of-two scale */
    if (x > FX_LIMIT)
        x = FX_LIMIT;
    else if (x < -FX_LIMIT)
        x = -FX_LIMIT;
    return (int64_t)llrint(x);
}

/* a + b modulo 2^64: exact and order-independent, no signed overflow. */
static int64_t add_wrap(int64_t a, int64_t b)
{
    return (int64_t)((uint64_t)a + (uint64_t)b);
}

void aw_zacc_init(aw_zacc *a, float lo, float hi)
{
    memset(a, 0, sizeof *a); /* padding too, so memcmp of results works */
    a->n = 0;
    a->sum_fx = 0;
    a->min = INFINITY;
    a->max = -INFINITY;
    a->lo = lo;
    a->hi = hi;
}

void aw_zacc_add(aw_zacc *a, const float *v, const uint8_t *mask, size_t n)
{
    const double scale = hist_scale(AW_ZACC_BINS, a->lo, a->hi);
    uint64_t cnt = a->n;
    int64_t sum = a->sum_fx;
    float mn = a->min, mx = a->max;
    for (size_t i = 0; i < n; i++) {
        float x = v[i];
        if ((mask != NULL && mask[i] == 0) || !isfinite(x))
            continue;
        cnt++;
        sum = add_wrap(sum, to_fixed(x));
        mn = x < mn ? x : mn;
        mx = x > mx ? x : mx;
        a->hist[hist_bin(x, a->lo, a->hi, scale, AW_ZACC_BINS)]++;
    }
    a->n = cnt;
    a->sum_fx = sum;
    a->min = mn;
    a->max = mx;
}

void aw_zacc_merge(aw_zacc *dst, const aw_zacc *src)
{
    dst->n += src->n;
    dst->sum_fx = add_wrap(dst->sum_fx, src->sum_fx);
    dst->min = src->min < dst->min ? src->min : dst->min;
    dst->max = src->max > dst->max ? src->max : dst->max;
    for (int k = 0; k < AW_ZACC_BINS; k++)
        dst->hist[k] += src->hist[k];
}

double aw_zacc_mean(const aw_zacc *a)
{
    if (a->n == 0)
        return NAN;
    return (double)a->sum_fx / AW_ZACC_FX_SCALE / (double)a->n;
}

double aw_zacc_percentile(const aw_zacc *a, double p)
{
    if (a->n == 0 || isnan(p))
        return NAN;
    if (p < 0.0)
        p = 0.0;
    if (p > 100.0)
        p = 100.0;
    const double r = p / 100.0 * (double)a->n;
    const double w = ((double)a->hi - (double)a->lo) / AW_ZACC_BINS;

    uint64_t before = 0; /* C(k - 1) */
    int k = 0;
    for (; k < AW_ZACC_BINS; k++) {
        uint64_t c = a->hist[k];
        if (c > 0 && (double)(before + c) >= r)
            break;
        before += c;
    }
    double x;
    if (k == AW_ZACC_BINS) {
        x = (double)a->max; /* unreachable when hist sums to n */
    }
    else {
        double frac = (r - (double)before) / (double)a->hist[k];
        x = (double)a->lo + ((double)k + frac) * w;
    }
    if (x < (double)a->min)
        x = (double)a->min;
    if (x > (double)a->max)
        x = (double)a->max;
    return x;
}
