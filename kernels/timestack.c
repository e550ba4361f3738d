/* Per-pixel kernels over time stacks: baseline statistics, WOfS frequency,
 * JRC month-normalised occurrence, VCI and standardised anomalies
 * (include/aralwatch/timeseries.h; DOMAIN.md §3.3, §3.5, §4.2, §4.4).
 *
 * aw_stack_stats works on blocks of STACK_BLOCK pixels. Per block, pass 1
 * runs over the layers and, for every pixel of the block, accumulates the
 * count of finite values, their sum (double), min and max in small arrays
 * on the stack; pass 2 (only when std is wanted) adds the squared
 * deviations from the mean, in double (the two-pass algorithm: no
 * cancellation of sum x^2 - n mean^2). Both inner loops run over the pixels
 * of one layer, contiguous in memory, as branch-free selects marked
 * `omp simd`. The median gathers a pixel's finite values into a stack array
 * of AW_STACK_MAX floats (write always, advance the index by "finite") and
 * insertion-sorts them; for <= 64 values that beats any O(n log n) sort.
 *
 * Thread independence: blocks are fixed (they do not depend on the thread
 * count), and each pixel's value comes from the same operations in the same
 * order (layer 0, 1, ...) whichever thread computes its block, so results are
 * bit-identical for any number of threads.
 *
 * Finite test: fabsf(x) <= FLT_MAX, false for NaN and +-Inf, as in
 * classify.c; it compiles to a compare, not a branch.
 *
 * Vectorisation (GCC 12, -O2, `omp simd`): the project keeps the default
 * -ftrapping-math, under which GCC will not if-convert a division or a
 * float <-> double conversion whose result is only used on one side of a
 * select (it sinks the operation into that branch, and a possibly trapping
 * operation cannot be executed unconditionally again). So every loop below
 * computes first and then tests the computed value itself: finite((double)x)
 * rather than finite(x) followed by (double)x; finite(w / c) rather than
 * c > 0 followed by w / c. Written that way, the per-layer loops of
 * aw_stack_stats and aw_occurrence_month_normalised and the element-wise
 * loops all vectorise (checked with -fopt-info-vec). The sqrt of the std is
 * left scalar (errno handling), once per pixel. */
#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include "aralwatch/kernels.h"
#include "aralwatch/timeseries.h"

#define STACK_BLOCK   ((size_t)256)   /* pixels per block of aw_stack_stats */
#define TS_CHUNK      ((size_t)65536) /* pixels per chunk, element-wise */
#define VCI_MIN_RANGE 1e-6            /* nmax - nmin <= this: VCI is NaN */

/* ---- aw_stack_stats ---- */

/* Pass 1 over pixels [i0, i0 + len) of every layer. */
static void stack_pass1(const float *const *layers, size_t n_layers, size_t i0,
                        size_t len, uint32_t *restrict cnt,
                        double *restrict sum, float *restrict mn,
                        float *restrict mx)
{
    for (size_t i = 0; i < len; i++) {
        cnt[i] = 0;
        sum[i] = 0.0;
        mn[i] = INFINITY;
        mx[i] = -INFINITY;
    }
    for (size_t k = 0; k < n_layers; k++) {
        const float *restrict x = layers[k] + i0;
        /* Two loops over the same (cached) row: GCC does not vectorise one
         * loop mixing the float/uint32 updates with the double sum. */
#pragma omp simd
        for (size_t i = 0; i < len; i++) {
            const float v = x[i];
            const int ok = fabsf(v) <= FLT_MAX;
            const float lo = ok ? v : INFINITY;
            const float hi = ok ? v : -INFINITY;
            cnt[i] += (uint32_t)ok;
            mn[i] = lo < mn[i] ? lo : mn[i];
            mx[i] = hi > mx[i] ? hi : mx[i];
        }
#pragma omp simd
        for (size_t i = 0; i < len; i++) {
            const double d = (double)x[i];
            sum[i] += fabs(d) <= DBL_MAX ? d : 0.0;
        }
    }
}

/* Pass 2: sum of squared deviations from mean[i] (finite values only; a
 * missing value is replaced by the mean, adding exactly 0). */
static void stack_pass2(const float *const *layers, size_t n_layers, size_t i0,
                        size_t len, const double *restrict mean,
                        double *restrict ss)
{
    for (size_t i = 0; i < len; i++)
        ss[i] = 0.0;
    for (size_t k = 0; k < n_layers; k++) {
        const float *restrict x = layers[k] + i0;
#pragma omp simd
        for (size_t i = 0; i < len; i++) {
            const double d = (double)x[i];
            const double e = (fabs(d) <= DBL_MAX ? d : mean[i]) - mean[i];
            ss[i] += e * e;
        }
    }
}

/* Median of the finite values of pixel i (there is at least one). */
static float stack_median(const float *const *layers, size_t n_layers, size_t i)
{
    float buf[AW_STACK_MAX];
    size_t m = 0;
    for (size_t k = 0; k < n_layers; k++) {
        const float v = layers[k][i];
        buf[m] = v; /* m <= k < n_layers <= AW_STACK_MAX */
        m += (size_t)(fabsf(v) <= FLT_MAX);
    }
    for (size_t a = 1; a < m; a++) {
        const float v = buf[a];
        size_t b = a;
        while (b > 0 && buf[b - 1] > v) {
            buf[b] = buf[b - 1];
            b--;
        }
        buf[b] = v;
    }
    if (m % 2 == 1)
        return buf[m / 2];
    return (float)(((double)buf[m / 2 - 1] + (double)buf[m / 2]) * 0.5);
}

/* One block of pixels [i0, i0 + len), len <= STACK_BLOCK. */
static void stack_block(const float *const *layers, size_t n_layers, size_t i0,
                        size_t len, uint32_t need, float *min, float *max,
                        float *median, float *mean, float *std,
                        uint16_t *n_valid)
{
    uint32_t cnt[STACK_BLOCK];
    double avg[STACK_BLOCK]; /* the sum, then the mean (NaN for no value) */
    double ss[STACK_BLOCK];
    float mn[STACK_BLOCK], mx[STACK_BLOCK];
    const float nodata = AW_NODATA_F32;

    stack_pass1(layers, n_layers, i0, len, cnt, avg, mn, mx);
#pragma omp simd
    for (size_t i = 0; i < len; i++)
        avg[i] = avg[i] / (double)cnt[i]; /* 0 / 0 = NaN for no value */

    if (n_valid != NULL) {
        for (size_t i = 0; i < len; i++)
            n_valid[i0 + i] = (uint16_t)cnt[i];
    }
    if (min != NULL) {
#pragma omp simd
        for (size_t i = 0; i < len; i++)
            min[i0 + i] = cnt[i] >= need ? mn[i] : nodata;
    }
    if (max != NULL) {
#pragma omp simd
        for (size_t i = 0; i < len; i++)
            max[i0 + i] = cnt[i] >= need ? mx[i] : nodata;
    }
    if (mean != NULL) {
#pragma omp simd
        for (size_t i = 0; i < len; i++) {
            const float mf = (float)avg[i];
            const int ok = (cnt[i] >= need) & (fabsf(mf) <= FLT_MAX);
            mean[i0 + i] = ok ? mf : nodata;
        }
    }
    if (std != NULL) {
        stack_pass2(layers, n_layers, i0, len, avg, ss);
        for (size_t i = 0; i < len; i++) {
            const int ok = cnt[i] >= need && cnt[i] >= 2;
            const double dof = (double)(ok ? cnt[i] - 1u : 1u);
            const double sd = sqrt(ss[i] / dof);
            std[i0 + i] = ok ? (float)sd : nodata;
        }
    }
    if (median != NULL) {
        for (size_t i = 0; i < len; i++)
            median[i0 + i] = cnt[i] >= need
                                 ? stack_median(layers, n_layers, i0 + i)
                                 : nodata;
    }
}

void aw_stack_stats(const float *const *layers, size_t n_layers, size_t n_px,
                    int min_valid, float *min, float *max, float *median,
                    float *mean, float *std, uint16_t *n_valid)
{
    /* More layers than the median buffer holds: a caller error, made
     * visible as n_valid = 0 and NaN everywhere (no layer is read). */
    const size_t nl = n_layers <= AW_STACK_MAX ? n_layers : 0;
    const uint32_t need = min_valid > 1 ? (uint32_t)min_valid : 1u;
    const size_t nblocks = (n_px + STACK_BLOCK - 1) / STACK_BLOCK;
#pragma omp parallel for schedule(static) if (nblocks > 1)
    for (size_t b = 0; b < nblocks; b++) {
        const size_t i0 = b * STACK_BLOCK;
        const size_t len = n_px - i0 < STACK_BLOCK ? n_px - i0 : STACK_BLOCK;
        stack_block(layers, nl, i0, len, need, min, max, median, mean, std,
                    n_valid);
    }
}

/* ---- aw_wofs_frequency ---- */

static void frequency_run(const float *restrict clear,
                          const float *restrict wet, float *restrict freq,
                          size_t n)
{
    const float nodata = AW_NODATA_F32;
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        const float c = clear[i], w = wet[i];
        const float f = w / c; /* NaN or +-Inf for bad c or w */
        const int ok = (c > 0.0f) & (c <= FLT_MAX) & (fabsf(f) <= FLT_MAX);
        freq[i] = ok ? f : nodata;
    }
}

void aw_wofs_frequency(const float *clear, const float *wet, size_t n,
                       float *freq)
{
    const size_t nchunks = (n + TS_CHUNK - 1) / TS_CHUNK;
#pragma omp parallel for schedule(static) if (nchunks > 1)
    for (size_t c = 0; c < nchunks; c++) {
        const size_t i0 = c * TS_CHUNK;
        const size_t len = n - i0 < TS_CHUNK ? n - i0 : TS_CHUNK;
        frequency_run(clear + i0, wet + i0, freq + i0, len);
    }
}

/* ---- aw_occurrence_month_normalised ---- */

static void occurrence_block(const float *const *freq_by_month, size_t n_months,
                             size_t i0, size_t len, float *restrict occ)
{
    double sum[STACK_BLOCK];
    uint32_t cnt[STACK_BLOCK];
    const float nodata = AW_NODATA_F32;
    for (size_t i = 0; i < len; i++) {
        sum[i] = 0.0;
        cnt[i] = 0;
    }
    for (size_t m = 0; m < n_months; m++) {
        const float *restrict x = freq_by_month[m] + i0;
#pragma omp simd
        for (size_t i = 0; i < len; i++)
            cnt[i] += (uint32_t)(fabsf(x[i]) <= FLT_MAX);
#pragma omp simd
        for (size_t i = 0; i < len; i++) {
            const double d = (double)x[i];
            sum[i] += fabs(d) <= DBL_MAX ? d : 0.0;
        }
    }
#pragma omp simd
    for (size_t i = 0; i < len; i++) {
        const float o = (float)(sum[i] / (double)cnt[i]); /* 0 / 0: NaN */
        occ[i] = fabsf(o) <= FLT_MAX ? o : nodata;
    }
}

void aw_occurrence_month_normalised(const float *const *freq_by_month,
                                    size_t n_months, size_t n, float *occ)
{
    const size_t nblocks = (n + STACK_BLOCK - 1) / STACK_BLOCK;
#pragma omp parallel for schedule(static) if (nblocks > 1)
    for (size_t b = 0; b < nblocks; b++) {
        const size_t i0 = b * STACK_BLOCK;
        const size_t len = n - i0 < STACK_BLOCK ? n - i0 : STACK_BLOCK;
        occurrence_block(freq_by_month, n_months, i0, len, occ + i0);
    }
}

/* ---- aw_vci ---- */

static void vci_run(const float *restrict ndvi, const float *restrict nmin,
                    const float *restrict nmax, float *restrict vci, size_t n)
{
    const float nodata = AW_NODATA_F32;
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        const double x = (double)ndvi[i], lo = (double)nmin[i],
                     hi = (double)nmax[i];
        const double range = hi - lo;
        const float v = (float)(100.0 * (x - lo) / range);
        const int ok = (fabs(x) <= DBL_MAX) & (fabs(lo) <= DBL_MAX) &
                       (fabs(hi) <= DBL_MAX) & (range > VCI_MIN_RANGE) &
                       (fabsf(v) <= FLT_MAX);
        vci[i] = ok ? v : nodata;
    }
}

void aw_vci(const float *ndvi, const float *nmin, const float *nmax, size_t n,
            float *vci)
{
    const size_t nchunks = (n + TS_CHUNK - 1) / TS_CHUNK;
#pragma omp parallel for schedule(static) if (nchunks > 1)
    for (size_t c = 0; c < nchunks; c++) {
        const size_t i0 = c * TS_CHUNK;
        const size_t len = n - i0 < TS_CHUNK ? n - i0 : TS_CHUNK;
        vci_run(ndvi + i0, nmin + i0, nmax + i0, vci + i0, len);
    }
}

/* ---- aw_zscore ---- */

static void zscore_run(const float *restrict x, const float *restrict mean,
                       const float *restrict std, float *restrict z, size_t n)
{
    const float nodata = AW_NODATA_F32;
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        const double v = (double)x[i], m = (double)mean[i], s = (double)std[i];
        const float zz = (float)((v - m) / s);
        const int ok = (fabs(v) <= DBL_MAX) & (fabs(m) <= DBL_MAX) & (s > 0.0) &
                       (s <= DBL_MAX) & (fabsf(zz) <= FLT_MAX);
        z[i] = ok ? zz : nodata;
    }
}

void aw_zscore(const float *x, const float *mean, const float *std, size_t n,
               float *z)
{
    const size_t nchunks = (n + TS_CHUNK - 1) / TS_CHUNK;
#pragma omp parallel for schedule(static) if (nchunks > 1)
    for (size_t c = 0; c < nchunks; c++) {
        const size_t i0 = c * TS_CHUNK;
        const size_t len = n - i0 < TS_CHUNK ? n - i0 : TS_CHUNK;
        zscore_run(x + i0, mean + i0, std + i0, z + i0, len);
    }
}
