/* Quality decoding: Landsat Collection 2 QA_PIXEL, Sentinel-2 L2A SCL, and
 * dilation of a quality class by a disk (DOMAIN.md §2.2, §2.3).
 *
 * Landsat C2 QA_PIXEL (16 bit; USGS C2 L2 layout, also GEE's LC08_C02_L2
 * template and GeoscienceAustralia/wofs filters.py):
 *   bit 0 fill, 1 dilated cloud, 2 cirrus, 3 cloud, 4 cloud shadow, 5 snow,
 *   6 clear, 7 water, 8-9 cloud confidence, 10-11 cloud-shadow confidence,
 *   12-13 snow/ice confidence, 14-15 cirrus confidence (0 none, 1 low,
 *   2 medium, 3 high).
 * A pixel takes the first class that applies (aw_qa_policy in quality.h):
 *   fill                                                  -> NODATA
 *   masked dilated-cloud / cirrus / cloud flag, cloud
 *   confidence >= cloud_conf, cirrus conf. >= cirrus_conf -> CLOUD
 *   masked shadow flag, shadow conf. >= shadow_conf       -> SHADOW
 *   masked snow flag, snow conf. >= snow_conf             -> SNOW
 *   otherwise                                             -> VALID
 * A confidence threshold of 0 is not used. The QA value arrives as float64
 * (warped, nearest neighbour); NaN, values outside 0..65535 and non-integral
 * values (a QA band resampled with a non-nearest kernel) are not QA codes
 * and give NODATA.
 *
 * Sentinel-2 SCL: 0 no data, 1 saturated/defective, 2 dark area /
 * topographic shadow, 3 cloud shadow, 4 vegetation, 5 bare soil, 6 water,
 * 7 unclassified, 8 cloud medium probability, 9 cloud high probability,
 * 10 thin cirrus, 11 snow/ice. Class 0 is always NODATA; a class with its
 * bit in scl_mask maps to SHADOW (3), CLOUD (8, 9, 10), SNOW (11) or MASKED
 * (1, 2, 4-7); a class not in scl_mask is VALID. NaN, non-integral values
 * and values outside 0..11 are NODATA.
 *
 * Both decoders leave pixels whose cls is not AW_Q_VALID on entry as they
 * are, and are OpenMP-parallel over fixed chunks of pixels; each pixel is
 * independent, so the result does not depend on the thread count.
 *
 * Dilation (aw_dilate_class) grows a class by the disk dx^2 + dy^2 <= r^2
 * (WOfS dilates cloud shadow this way). Two passes over rows: first each
 * row's horizontal distance to the nearest `what` pixel (capped at 255) is
 * written to tmp; then a VALID pixel (x, y) becomes `what` when some row
 * y + dy within the disk has distance <= floor(sqrt(r^2 - dy^2)) at column
 * x. Cost O(r) per pixel. Radii >= 255 (beyond the 8-bit distance) use a
 * direct O(r^2) search over a copy in tmp. Both passes are parallel over
 * rows and read only the pass before, so the result is independent of the
 * thread count. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "aralwatch/quality.h"

#define QA_CHUNK ((size_t)65536)
/* Columns per block of the dilation's per-row hit buffer. */
#define DILATE_BLOCK 256
/* Largest radius the 8-bit row distances in tmp can represent exactly. */
#define DILATE_FAST_MAX 254

void aw_qa_policy_default(aw_qa_policy *p)
{
    p->landsat_flags = AW_QF_DEFAULT;
    p->cloud_conf = 0;
    p->shadow_conf = 0;
    p->snow_conf = 0;
    p->cirrus_conf = 0;
    /* SCL 0 no data, 1 saturated, 2 dark/topographic shadow, 3 cloud
     * shadow, 8/9 cloud medium/high, 10 cirrus, 11 snow. */
    p->scl_mask = (1u << 0) | (1u << 1) | (1u << 2) | (1u << 3) | (1u << 8) |
                  (1u << 9) | (1u << 10) | (1u << 11);
}

/* ---- Landsat C2 QA_PIXEL ---- */

/* 1 when a confidence field (0..3) reaches a threshold in use (> 0). */
static inline int conf_hit(unsigned conf, int thr)
{
    return thr > 0 && (int)conf >= thr;
}

static uint8_t landsat_px(double q, const aw_qa_policy *p)
{
    if (!(q >= 0.0 && q <= 65535.0) || q != floor(q))
        return AW_Q_NODATA; /* NaN, out of range or not an integer code */
    unsigned v = (unsigned)q;
    unsigned f = p->landsat_flags;
    if (v & 1u)
        return AW_Q_NODATA; /* bit 0 fill */

    unsigned dilated = (v >> 1) & 1u, cirrus = (v >> 2) & 1u;
    unsigned cloud = (v >> 3) & 1u, shadow = (v >> 4) & 1u;
    unsigned snow = (v >> 5) & 1u;
    unsigned cloud_c = (v >> 8) & 3u, shadow_c = (v >> 10) & 3u;
    unsigned snow_c = (v >> 12) & 3u, cirrus_c = (v >> 14) & 3u;

    if ((dilated && (f & AW_QF_DILATED_CLOUD)) ||
        (cirrus && (f & AW_QF_CIRRUS)) || (cloud && (f & AW_QF_CLOUD)) ||
        conf_hit(cloud_c, p->cloud_conf) || conf_hit(cirrus_c, p->cirrus_conf))
        return AW_Q_CLOUD;
    if ((shadow && (f & AW_QF_SHADOW)) || conf_hit(shadow_c, p->shadow_conf))
        return AW_Q_SHADOW;
    if ((snow && (f & AW_QF_SNOW)) || conf_hit(snow_c, p->snow_conf))
        return AW_Q_SNOW;
    return AW_Q_VALID;
}

static void landsat_run(const double *qa, uint8_t *cls, size_t n,
                        const aw_qa_policy *p)
{
    for (size_t i = 0; i < n; i++)
        if (cls[i] == AW_Q_VALID)
            cls[i] = landsat_px(qa[i], p);
}

void aw_qa_landsat_c2(const double *qa, uint8_t *cls, size_t n,
                      const aw_qa_policy *p)
{
    aw_qa_policy defaults;
    if (p == NULL) {
        aw_qa_policy_default(&defaults);
        p = &defaults;
    }
    size_t nchunks = (n + QA_CHUNK - 1) / QA_CHUNK;
#pragma omp parallel for schedule(static) if (nchunks > 1)
    for (size_t c = 0; c < nchunks; c++) {
        size_t i0 = c * QA_CHUNK;
        size_t len = n - i0 < QA_CHUNK ? n - i0 : QA_CHUNK;
        landsat_run(qa + i0, cls + i0, len, p);
    }
}

/* ---- Sentinel-2 SCL ---- */

static uint8_t scl_px(double s, unsigned mask)
{
    if (!(s >= 0.0 && s <= 11.0) || s != floor(s))
        return AW_Q_NODATA; /* NaN, out of range or not a class */
    unsigned k = (unsigned)s;
    if (k == 0)
        return AW_Q_NODATA;
    if (!(mask & (1u << k)))
        return AW_Q_VALID;
    switch (k) {
    case 3:
        return AW_Q_SHADOW;
    case 8:
    case 9:
    case 10:
        return AW_Q_CLOUD;
    case 11:
        return AW_Q_SNOW;
    default:
        return AW_Q_MASKED;
    }
}

static void scl_run(const double *scl, uint8_t *cls, size_t n, unsigned mask)
{
    for (size_t i = 0; i < n; i++)
        if (cls[i] == AW_Q_VALID)
            cls[i] = scl_px(scl[i], mask);
}

void aw_qa_s2_scl(const double *scl, uint8_t *cls, size_t n,
                  const aw_qa_policy *p)
{
    aw_qa_policy defaults;
    if (p == NULL) {
        aw_qa_policy_default(&defaults);
        p = &defaults;
    }
    const unsigned mask = p->scl_mask;
    size_t nchunks = (n + QA_CHUNK - 1) / QA_CHUNK;
#pragma omp parallel for schedule(static) if (nchunks > 1)
    for (size_t c = 0; c < nchunks; c++) {
        size_t i0 = c * QA_CHUNK;
        size_t len = n - i0 < QA_CHUNK ? n - i0 : QA_CHUNK;
        scl_run(scl + i0, cls + i0, len, mask);
    }
}

/* ---- Dilation by a disk ---- */

/* floor(sqrt(v)) for v >= 0, exact for every v below 2^62. */
static long long isqrt_ll(long long v)
{
    long long w = (long long)sqrt((double)v);
    while (w > 0 && w * w > v)
        w--;
    while ((w + 1) * (w + 1) <= v)
        w++;
    return w;
}

/* tmp row = horizontal distance from each pixel to the nearest `what`
 * pixel of the same row, 255 meaning 255 or more (or none). */
static void row_distance(const uint8_t *restrict c, uint8_t *restrict d,
                         size_t cols, uint8_t what)
{
    unsigned run = 255;
    for (size_t x = 0; x < cols; x++) {
        run = c[x] == what ? 0u : (run < 255u ? run + 1u : 255u);
        d[x] = (uint8_t)run;
    }
    run = 255;
    for (size_t x = cols; x-- > 0;) {
        run = c[x] == what ? 0u : (run < 255u ? run + 1u : 255u);
        if (run < d[x])
            d[x] = (uint8_t)run;
    }
}

/* Row y of the O(r) pass: reads the row distances in dist, writes cls. */
static void dilate_row_fast(uint8_t *restrict cls, const uint8_t *dist,
                            size_t rows, size_t cols, size_t y, uint8_t what,
                            long long r)
{
    uint8_t hit[DILATE_BLOCK];
    long long ylo = (long long)y - r < 0 ? 0 : (long long)y - r;
    long long yhi = (long long)y + r > (long long)rows - 1 ? (long long)rows - 1
                                                           : (long long)y + r;
    uint8_t *crow = cls + y * cols;
    for (size_t x0 = 0; x0 < cols; x0 += DILATE_BLOCK) {
        size_t len = cols - x0 < DILATE_BLOCK ? cols - x0 : DILATE_BLOCK;
        memset(hit, 0, len);
        for (long long yy = ylo; yy <= yhi; yy++) {
            long long dy = yy - (long long)y;
            /* w <= r <= DILATE_FAST_MAX, so it fits the distance scale. */
            unsigned w = (unsigned)isqrt_ll(r * r - dy * dy);
            const uint8_t *drow = dist + (size_t)yy * cols + x0;
#pragma omp simd
            for (size_t x = 0; x < len; x++)
                hit[x] |= (uint8_t)(drow[x] <= w);
        }
        for (size_t x = 0; x < len; x++)
            if (hit[x] && crow[x0 + x] == AW_Q_VALID)
                crow[x0 + x] = what;
    }
}

/* Row y of the direct pass: src is a copy of the classes before dilation. */
static void dilate_row_direct(uint8_t *restrict cls, const uint8_t *src,
                              size_t rows, size_t cols, size_t y, uint8_t what,
                              long long r)
{
    long long ylo = (long long)y - r < 0 ? 0 : (long long)y - r;
    long long yhi = (long long)y + r > (long long)rows - 1 ? (long long)rows - 1
                                                           : (long long)y + r;
    uint8_t *crow = cls + y * cols;
    for (size_t x = 0; x < cols; x++) {
        if (crow[x] != AW_Q_VALID)
            continue;
        int found = 0;
        for (long long yy = ylo; yy <= yhi && !found; yy++) {
            long long dy = yy - (long long)y;
            long long w = isqrt_ll(r * r - dy * dy);
            long long xlo = (long long)x - w < 0 ? 0 : (long long)x - w;
            long long xhi = (long long)x + w > (long long)cols - 1
                                ? (long long)cols - 1
                                : (long long)x + w;
            const uint8_t *srow = src + (size_t)yy * cols;
            for (long long xx = xlo; xx <= xhi; xx++) {
                if (srow[xx] == what) {
                    found = 1;
                    break;
                }
            }
        }
        if (found)
            crow[x] = what;
    }
}

void aw_dilate_class(uint8_t *cls, uint8_t *tmp, size_t rows, size_t cols,
                     uint8_t what, int r)
{
    if (r <= 0 || rows == 0 || cols == 0 || what == AW_Q_VALID)
        return;
    /* A disk of radius rows + cols already covers the whole grid. */
    long long rr = r;
    if ((size_t)rr > rows + cols)
        rr = (long long)(rows + cols);

    if (rr <= DILATE_FAST_MAX) {
#pragma omp parallel
        {
#pragma omp for schedule(static)
            for (size_t y = 0; y < rows; y++)
                row_distance(cls + y * cols, tmp + y * cols, cols, what);
                /* implicit barrier: every row distance is written */
#pragma omp for schedule(static)
            for (size_t y = 0; y < rows; y++)
                dilate_row_fast(cls, tmp, rows, cols, y, what, rr);
        }
    }
    else {
        memcpy(tmp, cls, rows * cols);
#pragma omp parallel for schedule(static)
        for (size_t y = 0; y < rows; y++)
            dilate_row_direct(cls, tmp, rows, cols, y, what, rr);
    }
}
