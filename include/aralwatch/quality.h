/* Quality and water-class kernels: QA decoding (Landsat C2 QA_PIXEL,
 * Sentinel-2 SCL), mask dilation, DSWE and WOfS (DOMAIN.md §2, §3.2, §3.3).
 * Pure C like kernels.h: libc, libm, OpenMP only; no allocation, no I/O. */
#ifndef ARALWATCH_QUALITY_H
#define ARALWATCH_QUALITY_H

#include <stddef.h>
#include <stdint.h>
#include "aralwatch/kernels.h"

/* Per-pixel quality class; also the values written to valid.tif. */
enum aw_qclass {
    AW_Q_OUTSIDE = 0, /* outside the region / AOI */
    AW_Q_VALID = 1,   /* clear, usable observation */
    AW_Q_NODATA = 2,  /* fill, nodata in a band, or no coverage */
    AW_Q_CLOUD = 3,   /* cloud, dilated cloud or cirrus */
    AW_Q_SHADOW = 4,  /* cloud shadow */
    AW_Q_SNOW = 5,    /* snow / ice */
    AW_Q_MASKED = 6   /* masked for another reason (saturated, dark area,
                         SCL unclassified when asked, generic QA mask) */
};
#define AW_Q_COUNT 7

/* Landsat Collection 2 QA_PIXEL flags that can be masked (DOMAIN.md §2.2). */
enum {
    AW_QF_DILATED_CLOUD = 1u << 0, /* bit 1 */
    AW_QF_CIRRUS = 1u << 1,        /* bit 2 */
    AW_QF_CLOUD = 1u << 2,         /* bit 3 */
    AW_QF_SHADOW = 1u << 3,        /* bit 4 */
    AW_QF_SNOW = 1u << 4           /* bit 5 */
};
#define AW_QF_DEFAULT                                                          \
    (AW_QF_DILATED_CLOUD | AW_QF_CIRRUS | AW_QF_CLOUD | AW_QF_SHADOW |         \
     AW_QF_SNOW)

/* What to mask. Landsat: a pixel is classified by the first that applies of
 * fill (bit 0) -> NODATA; a masked cloud flag (dilated cloud, cloud, cirrus)
 * or cloud confidence (bits 8-9) >= cloud_conf, or cirrus confidence (bits
 * 14-15) >= cirrus_conf -> CLOUD; masked shadow flag or shadow confidence
 * (bits 10-11) >= shadow_conf -> SHADOW; masked snow flag or snow confidence
 * (bits 12-13) >= snow_conf -> SNOW; else VALID. A confidence threshold of
 * 0 means "not used" (1 low, 2 medium, 3 high).
 * Sentinel-2 SCL: class 0 -> NODATA; classes with their bit set in
 * scl_mask are masked as 3 -> SHADOW, 8/9/10 -> CLOUD, 11 -> SNOW, any
 * other -> MASKED; classes not in scl_mask are VALID. Values > 11 or NaN
 * -> NODATA. */
typedef struct aw_qa_policy {
    unsigned landsat_flags; /* AW_QF_* set to mask; AW_QF_DEFAULT */
    int cloud_conf, shadow_conf, snow_conf, cirrus_conf; /* 0 = unused */
    unsigned scl_mask; /* bit k set = mask SCL class k; default
                          {0,1,2,3,8,9,10,11} */
} aw_qa_policy;
void aw_qa_policy_default(aw_qa_policy *p);

/* Classify n QA values (float64 as warped; NaN = no data) into aw_qclass.
 * Pixels whose cls is already not AW_Q_VALID are left as they are, so the
 * caller can fill cls with OUTSIDE/NODATA first. */
void aw_qa_landsat_c2(const double *qa, uint8_t *cls, size_t n,
                      const aw_qa_policy *p);
void aw_qa_s2_scl(const double *scl, uint8_t *cls, size_t n,
                  const aw_qa_policy *p);

/* Grow every pixel of class `what` by a disk of radius r pixels
 * (dx^2 + dy^2 <= r^2, as WOfS dilates shadow): pixels within the disk that
 * are AW_Q_VALID become `what`; other classes are left alone. tmp must hold
 * rows * cols bytes (scratch). r <= 0 does nothing. */
void aw_dilate_class(uint8_t *cls, uint8_t *tmp, size_t rows, size_t cols,
                     uint8_t what, int r);

/* ---- DSWE (USGS Dynamic Surface Water Extent, DOMAIN.md §3.2) ---- */
/* DSWE output classes. */
enum {
    AW_DSWE_NOT_WATER = 0,
    AW_DSWE_HIGH = 1,     /* water, high confidence */
    AW_DSWE_MODERATE = 2, /* water, moderate confidence */
    AW_DSWE_WETLAND = 3,  /* potential wetland */
    AW_DSWE_LOW = 4,      /* low-confidence water or wetland */
    AW_DSWE_MASKED = 9,   /* cloud, cloud shadow, snow (or other masked) */
    AW_DSWE_FILL = 255
};
/* Recode of the 5-test diagnostic, index = t1 | t2<<1 | t3<<2 | t4<<3 |
 * t5<<4. */
extern const uint8_t aw_dswe_lut[32];

/* The five tests for one pixel of reflectance on a 0..1 scale (scaled by
 * 10000 inside for the absolute thresholds); returns the 5-bit index. */
unsigned aw_dswe_tests(float blue, float green, float red, float nir,
                       float swir1, float swir2);

/* DSWE class per pixel: VALID -> aw_dswe_lut[tests] (255 if a band is not
 * finite); CLOUD/SHADOW/SNOW/MASKED -> 9; OUTSIDE/NODATA -> 255. */
void aw_dswe(const float *const bands[AW_BAND_COUNT], const uint8_t *qcls,
             uint8_t *out, size_t n);

/* Optional terrain filter (band "dswe_pshsccss"): percent slope >= 30
 * zeroes classes 1-2, >= 20 zeroes 3, >= 10 zeroes 4; hillshade <= 110
 * (0..255) zeroes any water class. NaN slope/hillshade leaves the class. */
void aw_dswe_terrain(uint8_t *cls, const float *slope_pct,
                     const float *hillshade, size_t n);

/* ---- WOfS (Water Observations from Space, DOMAIN.md §3.3) ---- */
enum {
    AW_WOFS_NODATA = 1,
    AW_WOFS_NONCONTIGUOUS = 2,
    AW_WOFS_LOW_SOLAR = 4,
    AW_WOFS_TERRAIN_SHADOW = 8,
    AW_WOFS_HIGH_SLOPE = 16,
    AW_WOFS_CLOUD_SHADOW = 32,
    AW_WOFS_CLOUD = 64,
    AW_WOFS_WET = 128
};
/* The decision tree on one pixel, bands in reflectance x 10000 (b1 blue,
 * b2 green, b3 red, b4 nir, b5 swir1, b7 swir2): 128 wet or 0 dry. */
uint8_t aw_wofs_tree(float b1, float b2, float b3, float b4, float b5,
                     float b7);

/* WOFL flag byte per pixel from reflectance on a 0..1 scale and the
 * quality classes: OUTSIDE/NODATA -> 1 (exactly, as wofls.py forces);
 * a band not finite -> 2; CLOUD -> 64; SHADOW -> 32; SNOW/MASKED -> 2;
 * VALID -> aw_wofs_tree(bands * 10000). */
void aw_wofs(const float *const bands[AW_BAND_COUNT], const uint8_t *qcls,
             uint8_t *flags, size_t n);

#endif
