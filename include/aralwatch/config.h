/* The run configuration (YAML), parsed and validated completely before any
 * pixel is read. The result is immutable; every path in it is already
 * resolved against the config file's folder.
 *
 * The YAML schema is documented in README.md ("Config reference") and by the
 * commented examples in configs/. Unknown keys, duplicate keys, wrong types
 * and out-of-range values are errors whose message names the config file,
 * the line and the key path, e.g.
 *   configs/sample.yaml:14: scenes[0].bands.red.scale: expected a number,
 *   got 'abc' */
#ifndef ARALWATCH_CONFIG_H
#define ARALWATCH_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include "aralwatch/ctx.h"
#include "aralwatch/kernels.h"
#include "aralwatch/quality.h"

#define AW_CONFIG_VERSION 1

/* One input band of a scene. */
typedef struct aw_band_src {
    int present;  /* 0 when the role is not mapped */
    char *path;   /* resolved file path */
    int band;     /* 1-based band number in that file (default 1) */
    double scale; /* reflectance = DN * scale + offset */
    double offset;
    int has_nodata; /* 1 if nodata below overrides the file's own */
    double nodata;
    int line; /* config line of this band's entry, for messages */
} aw_band_src;

typedef enum aw_resampling {
    AW_RESAMPLE_NEAREST = 0,
    AW_RESAMPLE_BILINEAR,
    AW_RESAMPLE_CUBIC,
    AW_RESAMPLE_AVERAGE
} aw_resampling;

/* Sensor profile of a scene (include/aralwatch/profile.h). */
typedef enum aw_sensor {
    AW_SENSOR_AUTO = 0, /* detect from the files */
    AW_SENSOR_GENERIC,
    AW_SENSOR_LANDSAT_C2_L2,
    AW_SENSOR_SENTINEL2_L2A
} aw_sensor;

/* How the quality band is decoded. */
typedef enum aw_qa_kind {
    AW_QA_NONE = 0,
    AW_QA_GENERIC,    /* qa_mask bits/values from the config */
    AW_QA_LANDSAT_C2, /* QA_PIXEL bits (aw_qa_landsat_c2) */
    AW_QA_S2_SCL      /* Sentinel-2 scene classification (aw_qa_s2_scl) */
} aw_qa_kind;

typedef struct aw_scene_cfg {
    char *id;           /* default: the folder or first band file's base name */
    char date[11];      /* YYYY-MM-DD, a real calendar date */
    aw_sensor sensor;   /* resolved profile (never AUTO after loading) */
    aw_qa_kind qa_kind; /* how `qa` is decoded */
    /* Metadata from the product (NaN / NULL / "" when unknown). All strings
     * are heap-allocated and freed by aw_config_destroy. */
    char datetime[32];         /* acquisition time, ISO 8601 UTC */
    char *platform;            /* e.g. LANDSAT_8, Sentinel-2B */
    char *product_id;          /* provider's product / scene id */
    double cloud_cover;        /* provider's cloud cover, % */
    double sun_elevation;      /* degrees */
    double sun_azimuth;        /* degrees clockwise from north */
    int wrs_path, wrs_row;     /* Landsat; 0 when unknown */
    char *tile_id;             /* Sentinel-2 MGRS tile, e.g. 22HBD */
    char *processing_baseline; /* Sentinel-2, e.g. "02.14" */
    char *offset_note;         /* how scale/offset were chosen, for the
                                  manifest (e.g. "BOA_ADD_OFFSET -1000 from
                                  MTD_MSIL2A.xml") */
    char *dir; /* resolved folder the band files are relative to, or
                  NULL */
    aw_band_src bands[AW_BAND_COUNT];
    aw_band_src qa; /* optional quality band (nearest resampling) */
    /* A QA pixel is masked when (qa & qa_mask_bits) != 0 or its value is in
     * qa_mask_values. */
    uint64_t qa_mask_bits;
    double *qa_mask_values;
    size_t n_qa_mask_values;
    /* Of the masked values, those that are cloud and cloud shadow: the
     * pixel is then classed (and dilated, and counted) as cloud or shadow
     * rather than "masked (other)". Also masked when not in values. */
    double *qa_cloud_values, *qa_shadow_values;
    size_t n_qa_cloud_values, n_qa_shadow_values;
    int line;
} aw_scene_cfg;

typedef enum aw_water_method {
    AW_WATER_THRESHOLD = 0,
    AW_WATER_OTSU,
    AW_WATER_DSWE, /* USGS DSWE classes; water = classes 1 and 2 */
    AW_WATER_WOFS  /* WOfS decision tree; water = wet */
} aw_water_method;

/* Which observation a same-date mosaic keeps per pixel (among the clearest:
 * valid beats cloud/shadow/snow/masked beats nodata). */
typedef enum aw_mosaic_order {
    AW_MOSAIC_FIRST = 0,   /* the first scene in config/inbox order */
    AW_MOSAIC_LEAST_CLOUD, /* the scene with the lowest cloud fraction over
                              the region */
    AW_MOSAIC_LATEST       /* the latest acquisition time */
} aw_mosaic_order;

typedef enum aw_zone_kind {
    AW_ZONE_WATERBODY = 0,
    AW_ZONE_CROPLAND,
    AW_ZONE_OTHER
} aw_zone_kind;

typedef enum aw_cmp { AW_CMP_BELOW = 0, AW_CMP_ABOVE } aw_cmp;

/* Zone metrics an alert rule may test (names as in zones.csv). */
typedef enum aw_metric {
    AW_METRIC_WATER_AREA_KM2 = 0,
    AW_METRIC_WATER_FRACTION,
    AW_METRIC_VALID_FRACTION,
    AW_METRIC_MEAN_NDVI,
    AW_METRIC_MEAN_NDWI,
    AW_METRIC_MEAN_MNDWI,
    /* Against the baseline of the date's period of the year (NaN without
     * one): */
    AW_METRIC_WATER_AREA_PCT_MEDIAN, /* gap-filled water area, % of the
                                        zone's baseline median */
    AW_METRIC_LOST_WATER_KM2,        /* occurrence >= lost level, now dry */
    AW_METRIC_NEW_WATER_KM2,         /* occurrence <= new level, now wet */
    AW_METRIC_STRESSED_PCT,          /* % of valid pixels with VCI < stress */
    AW_METRIC_MEAN_VCI,
    AW_METRIC_NDVI_ANOMALY, /* mean NDVI z-score */
    AW_METRIC_COUNT
} aw_metric;
const char *aw_metric_name(aw_metric m);
int aw_metric_from_name(const char *name); /* -1 if unknown */

typedef struct aw_rule_cfg {
    char *id;   /* unique rule id */
    char *type; /* alert type: water_shrinkage | flood_expansion |
                   crop_stress | custom */
    aw_metric metric;
    aw_cmp cmp; /* below: alert when value < threshold */
    /* Thresholds per level; has_level[i] says whether level i is set.
     * Levels: 0 watch, 1 warning, 2 alert. For "below" they must decrease
     * watch > warning > alert; for "above" increase. At least one is set. */
    int has_level[3];
    double level[3];
    /* Which zones: by kind (kind_set) and/or by explicit ids. Neither set
     * means every zone. */
    int kind_set;
    aw_zone_kind kind;
    char **zone_ids;
    size_t n_zone_ids;
    double min_valid_fraction; /* default: alerts.min_valid_fraction */
    int persistence;           /* default: alerts.persistence */
    double hysteresis;         /* default: alerts.hysteresis */
    int line;
} aw_rule_cfg;

/* Period of the year a baseline is kept for. */
typedef enum aw_period { AW_PERIOD_MONTH = 0, AW_PERIOD_DEKAD } aw_period;

typedef struct aw_config {
    char *path;      /* config file as given */
    char *dir;       /* its folder; relative paths resolve against it */
    char sha256[65]; /* hex SHA-256 of the config file bytes */
    int version;     /* must be AW_CONFIG_VERSION */

    /* region */
    char *region_name; /* [A-Za-z0-9_.-]+, used as a folder name */
    char *crs;         /* user string (EPSG:32622, WKT, PROJ); NULL = first
                          scene's */
    int has_resolution;
    double resolution; /* grid units; 0/absent = first scene's */
    char *aoi_path;    /* polygon layer, any CRS; NULL if absent */
    char *aoi_layer;   /* NULL = first layer */
    int has_bbox;
    double bbox[4]; /* xmin, ymin, xmax, ymax in bbox_crs */
    char *bbox_crs; /* default EPSG:4326 */
    /* region.grid: 1 (per_date) gives every date its own grid (CRS,
     * resolution and alignment of its first scene, extent over all its
     * scenes), for inboxes of scenes from anywhere; 0 (fixed, default) one
     * grid for all dates. */
    int grid_per_date;
    int allow_network; /* GDAL may read over the network (allow_network) */

    aw_scene_cfg *scenes;
    size_t n_scenes;

    /* inbox folders: every product found in them became a scene above */
    char **inbox;
    size_t n_inbox;
    /* Inbox entries that look like products but no profile could read
     * (path and reason): the run records them as failed scenes. */
    char **inbox_rejects;
    char **inbox_reject_reasons;
    size_t n_inbox_rejects;

    /* quality */
    aw_qa_policy qa_policy;       /* defaults: aw_qa_policy_default */
    int dilate_cloud_px;          /* 0 */
    int dilate_shadow_px;         /* 0 */
    double min_valid_fraction;    /* of the region's covered pixels; a scene
                                     below it is skipped (default 0) */
    aw_mosaic_order mosaic_order; /* default least_cloud */
    char *dem_path;               /* optional DEM for the DSWE terrain filter */

    aw_resampling resample_reflectance; /* default bilinear */
    aw_resampling resample_qa;          /* default nearest */

    int indices[AW_IDX_COUNT]; /* 1 = write this index */
    aw_index_params index_params;

    /* water classification */
    aw_index water_index; /* default mndwi */
    aw_water_method water_method;
    double water_threshold;         /* threshold method, and Otsu fallback */
    int otsu_bins;                  /* default 256 */
    double otsu_min_class_fraction; /* default 0.01 */

    /* zones */
    char *zones_path;        /* NULL if no zones */
    char *zones_layer;       /* NULL = first layer */
    char *zones_id_field;    /* required with zones */
    char *zones_name_field;  /* optional */
    char *zones_kind_field;  /* optional: per-feature kind */
    aw_zone_kind zones_kind; /* kind for all features when no field */

    /* baseline (README "Baseline") */
    aw_period baseline_period;          /* month */
    char baseline_from[11];             /* default range of `aralwatch */
    char baseline_to[11];               /* baseline`; "" when not set */
    int baseline_min_years;             /* 5: fewer valid years = nodata */
    double baseline_min_valid_fraction; /* 0.8: zone observations kept */
    double lost_water_occurrence;       /* 0.75 */
    double new_water_occurrence;        /* 0.10 */
    double stress_vci;                  /* 35 (Kogan 1995; FAO ASIS) */
    double season_ndvi;   /* 0.25: VCI counts where the baseline median NDVI
                             reaches it (the growing season) */
    double vci_min_range; /* 0.05: ... and where the baseline NDVI max - min
                             is at least this (else min and max are noise) */

    /* alerts */
    double alerts_min_valid_fraction; /* default 0.5 */
    int alerts_persistence;           /* 2 consecutive valid observations */
    double alerts_hysteresis;         /* 0.05 of the threshold (relative) */
    /* early warning (README "Forecasts") */
    int forecast_observations;     /* 12: the last N valid observations */
    int forecast_min_observations; /* 6 */
    double forecast_alpha;         /* 0.05 */
    int forecast_horizon_days;     /* 365 */
    aw_rule_cfg *rules;
    size_t n_rules;

    /* outputs */
    char *out_dir;    /* default "out" next to the config */
    int cog;          /* 1 (default): Cloud-Optimized GeoTIFF */
    char *compress;   /* ZSTD (default), DEFLATE, LZW, NONE */
    int level;        /* compression level: ZSTD 1..22 (1 when not
                         given), DEFLATE 1..12 (0 when not given: GDAL's
                         default, 6) */
    int blocksize;    /* 256 default; multiple of 16 */
    int overwrite;    /* 1 (default): replace existing outputs */
    int cap;          /* 1: a CAP 1.2 XML per alert record (cap/) */
    int int16;        /* encoding int16: index = DN * scale (1e-4, or 1e-3 for
                         indices beyond +-3.27), nodata -32768; 0: float32 */
    unsigned rasters; /* which rasters to write: bit i < AW_IDX_COUNT the
                         index i, then AW_RASTER_WATER.. (default all but
                         rgb) */
} aw_config;

enum {
    AW_RASTER_WATER = AW_IDX_COUNT,
    AW_RASTER_VALID,
    AW_RASTER_SOURCE,
    AW_RASTER_WOFL,
    AW_RASTER_RGB, /* red.tif, green.tif, blue.tif: mosaic reflectance
                      (not written unless listed) */
    AW_RASTER_COUNT
};

/* Load and validate a config file. On AW_OK *out owns a new config; on
 * failure *out is untouched and aw_ctx_errmsg(ctx) holds every problem found
 * (one per line, "FILE:LINE: key.path: message"), up to a cap. Checks that
 * every referenced file exists. Does not open rasters. */
aw_status aw_config_load(aw_ctx *ctx, const char *path, aw_config **out);
void aw_config_destroy(aw_config *cfg); /* accepts NULL */

/* Free what one scene owns (paths, metadata strings), not the struct. */
void aw_scene_free(aw_scene_cfg *sc);

/* The set of bands the config needs for its indices and water index. */
unsigned aw_config_needed_bands(const aw_config *cfg);

#endif
