/* Threshold classification of an index raster into water / not water.
 *
 *   cls[i] = AW_CLASS_NODATA (255)  where valid[i] == 0 or index[i] is not
 *                                   finite (NaN, +Inf, -Inf)
 *          = AW_WATER_YES (1)       where index[i] >  thr
 *          = AW_WATER_NO (0)        where index[i] <= thr
 * valid may be NULL (all valid). A pixel equal to the threshold is NO, as in
 * DSWE's "mndwi > 0.0124" style tests (DOMAIN.md §3.2). thr is typically a
 * fixed default (0 for MNDWI/AWEI) or the result of aw_otsu_threshold().
 *
 * OpenMP-parallel over fixed chunks of CLASSIFY_CHUNK pixels; each pixel is
 * independent, so the result does not depend on the thread count. The inner
 * loop is a branch-free select marked `omp simd`. */
#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include "aralwatch/kernels.h"

#define CLASSIFY_CHUNK ((size_t)65536)

/* Branch-free: bad is 1 for nodata, and bad * 255 | (x > thr) is 255 for
 * nodata (255 | 0 or 255 | 1) and 0 / 1 otherwise. */
static void classify_run(const float *restrict index,
                         const uint8_t *restrict valid, uint8_t *restrict cls,
                         size_t n, float thr)
{
    if (valid == NULL) {
#pragma omp simd
        for (size_t i = 0; i < n; i++) {
            float x = index[i];
            unsigned bad = (unsigned)!(fabsf(x) <= FLT_MAX);
            cls[i] = (uint8_t)((bad * AW_CLASS_NODATA) | (unsigned)(x > thr));
        }
    }
    else {
#pragma omp simd
        for (size_t i = 0; i < n; i++) {
            float x = index[i];
            unsigned bad =
                (unsigned)!(fabsf(x) <= FLT_MAX) | (unsigned)(valid[i] == 0);
            cls[i] = (uint8_t)((bad * AW_CLASS_NODATA) | (unsigned)(x > thr));
        }
    }
}

void aw_classify_threshold(const float *index, const uint8_t *valid,
                           uint8_t *cls, size_t n, float thr)
{
    size_t nchunks = (n + CLASSIFY_CHUNK - 1) / CLASSIFY_CHUNK;
#pragma omp parallel for schedule(static) if (nchunks > 1)
    for (size_t c = 0; c < nchunks; c++) {
        size_t i0 = c * CLASSIFY_CHUNK;
        size_t len = n - i0 < CLASSIFY_CHUNK ? n - i0 : CLASSIFY_CHUNK;
        classify_run(index + i0, valid != NULL ? valid + i0 : NULL, cls + i0,
                     len, thr);
    }
}
