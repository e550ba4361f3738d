/* The pipeline: grid, ingest/warp, zones, alerts, outputs, and the run that
 * strings them together. Every GDAL/OGR/PROJ call of the project lives in
 * pipeline/ behind these functions. */
#ifndef ARALWATCH_PIPELINE_H
#define ARALWATCH_PIPELINE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "aralwatch/config.h"
#include "aralwatch/ctx.h"

/* The region grid every input is warped onto. North-up. */
typedef struct aw_grid {
    char *wkt;    /* target CRS as WKT */
    double gt[6]; /* GDAL geotransform */
    int width, height;
    int geographic; /* 1 when the CRS is geographic (degrees) */
    /* True area of one pixel in each row, m^2. Projected grids use the
     * nominal cell area (pixel size in metres squared) unless that is more
     * than 2 % off the cell's geodesic area at the grid centre (Web
     * Mercator at mid-latitudes, say); then, and for geographic grids, each
     * row gets the geodesic area of a cell at the grid's central column on
     * the CRS's ellipsoid (PROJ geodesic.h). */
    double *row_area_m2;
    int area_geodesic;     /* 1 when row areas are geodesic */
    double geod_a, geod_f; /* ellipsoid of the CRS */
    void *to_lonlat;       /* OGRCoordinateTransformationH grid -> lon/lat */
} aw_grid;

/* Area of one pixel of row `row` (which may lie outside the grid, for
 * zones that stick out of the region), m^2. */
double aw_grid_cell_area(const aw_grid *grid, long row);

/* The AOI polygons in the grid's CRS (none: the whole grid). */
typedef struct aw_aoi {
    void **geoms; /* OGRGeometryH */
    size_t n;
} aw_aoi;

/* Build the grid from the config (CRS, resolution, AOI or bbox, defaulting
 * to the first scene's native grid), and the AOI (aw_aoi_free). */
aw_status aw_grid_build(aw_ctx *ctx, const aw_config *cfg, aw_grid *grid,
                        aw_aoi *aoi);
void aw_aoi_free(aw_aoi *aoi);

/* The AOI mask on `grid` (a whole region grid or one strip of it): 255
 * inside (pixel centre), 0 outside; all 255 without an AOI. */
aw_status aw_aoi_mask(aw_ctx *ctx, const aw_aoi *aoi, const aw_grid *grid,
                      uint8_t *mask);
void aw_grid_free(aw_grid *grid);

/* Warp band `src` onto the grid as float64 (QA) or float32 (reflectance).
 * Pixels that are nodata in the source or not covered are NaN. The float32
 * variant applies reflectance = DN * scale + offset. *out is malloc'd. */
aw_status aw_warp_band_f32(aw_ctx *ctx, const aw_band_src *src,
                           const aw_grid *grid, aw_resampling rs, int threads,
                           float **out);
aw_status aw_warp_band_f64(aw_ctx *ctx, const aw_band_src *src,
                           const aw_grid *grid, aw_resampling rs, int threads,
                           double **out);

/* One zone on the grid: the pixel window it covers and its pixels there. */
typedef struct aw_zone {
    char *id;
    char *name;
    aw_zone_kind kind;
    int x0, y0, w, h; /* window on the grid (w or h 0: no pixel) */
    /* Inside the polygon (pixel centre), row by row over the window: row
     * r's runs are columns runs[2k] to runs[2k+1] - 1 (relative to x0)
     * for k from run_at[r] to run_at[r+1] - 1. Runs, not a mask: a lake's
     * window can be most of the grid, and what is kept for the whole run
     * must not grow with it. */
    int32_t *runs;
    size_t *run_at;        /* h + 1 entries */
    double bbox_lonlat[4]; /* lon_min, lat_min, lon_max, lat_max */
    char *geojson;         /* the polygon in WGS 84 (lon, lat) as a
                              GeoJSON geometry, NULL if empty */
    double area_km2;       /* polygon area on the grid (sum of pixel areas) */
    int64_t n_pixels;      /* pixel centres inside the zone on the grid's
                              lattice, also outside the region */
    int64_t n_in_grid;     /* of those, inside the region grid */
} aw_zone;

typedef struct aw_zones {
    aw_zone *z;
    size_t n;
} aw_zones;

/* Read the zone layer, reproject to the grid CRS and rasterise each zone
 * (pixel centres inside the polygon). */
aw_status aw_zones_load(aw_ctx *ctx, const aw_config *cfg, const aw_grid *grid,
                        aw_zones *zones);
void aw_zones_free(aw_zones *zones);

/* Statistics of one zone on one date. */
typedef struct aw_zone_stats {
    int64_t n_pixels, n_valid, n_water;
    int64_t n_cloud, n_shadow, n_snow, n_nodata; /* quality classes */
    double valid_fraction; /* n_valid / n_pixels (0 if no pixels) */
    double water_fraction; /* n_water / n_valid (NaN if none valid) */
    double water_area_km2; /* sum of true pixel areas of water pixels */
    double valid_area_km2;
    /* per index: mean, min, max, p10, p50, p90 (NaN when no valid pixel) */
    int has_index[AW_IDX_COUNT];
    double mean[AW_IDX_COUNT], min[AW_IDX_COUNT], max[AW_IDX_COUNT];
    double p10[AW_IDX_COUNT], p50[AW_IDX_COUNT], p90[AW_IDX_COUNT];
    /* Against the baseline of the date's period (pipeline/change.c); all
     * NaN when there is none. */
    int has_baseline;
    double water_filled_km2;    /* water seen + expected water (baseline
                                   frequency x area) where not seen */
    double baseline_median_km2; /* the zone's baseline median for the period */
    double water_pct_median;    /* water_filled_km2 / baseline median x 100 */
    double lost_km2, new_km2;   /* lost and new water */
    double stressed_pct;        /* % of pixels with a VCI that are < stress */
    double mean_vci, mean_ndvi_z;
    int64_t n_vci; /* valid pixels with a VCI */
} aw_zone_stats;

/* Compute the statistics of every zone. index[i] is NULL for indices not
 * computed; water is the binary water raster (AW_WATER_YES = water); qcls
 * the per-pixel quality classes (enum aw_qclass; valid = AW_Q_VALID). */
aw_status aw_zones_stats(aw_ctx *ctx, const aw_zones *zones,
                         const aw_grid *grid,
                         const float *const index[AW_IDX_COUNT],
                         const uint8_t *water, const uint8_t *qcls,
                         aw_zone_stats *stats);

/* The same, strip by strip of the grid: begin, then the rows of every
 * strip top to bottom (arrays starting at grid row row0), then end. The
 * results are bit for bit those of aw_zones_stats. */
typedef struct aw_zones_run aw_zones_run;
aw_status aw_zones_run_begin(aw_ctx *ctx, const aw_zones *zones,
                             const int has_index[AW_IDX_COUNT],
                             aw_zones_run **out);
aw_status aw_zones_run_rows(aw_ctx *ctx, const aw_zones *zones, aw_zones_run *r,
                            const aw_grid *grid, int row0, int nrows,
                            const float *const index[AW_IDX_COUNT],
                            const uint8_t *water, const uint8_t *qcls);
/* MPI runs (collective): add up every rank's accumulators, exactly (row
 * counts are summed, index accumulators merged with aw_zacc_merge), so
 * each rank holds the whole grid's. No-op in a single process. */
void aw_zones_run_reduce(aw_zones_run *r);
void aw_zones_run_end(const aw_zones *zones, const aw_zones_run *r,
                      const aw_grid *grid, aw_zone_stats *stats);
void aw_zones_run_free(aw_zones_run *r); /* accepts NULL */

/* Value of a rule metric from zone statistics (NaN if not available). */
double aw_metric_value(const aw_zone_stats *s, aw_metric m);

/* Options of `aralwatch run` that are not in the config. */
typedef struct aw_run_opts {
    const char *out_dir; /* overrides outputs.dir when not NULL */
    int threads;         /* 0 = all cores */
    int quiet;           /* no progress, warnings and errors only */
    int progress_bar;    /* 1 = GDAL-style progress bar on stderr */
    /* reprocess: dates to do again even when the catalog has them done */
    const char *reprocess_scene; /* the date of this scene id */
    const char *reprocess_since; /* every date >= this YYYY-MM-DD */
    /* Only the dates in [date_from, date_to] (either may be NULL). */
    const char *date_from, *date_to;
    unsigned force_rasters; /* outputs.rasters bits written in any case */
    int no_baseline;        /* do not compare with the baseline */
} aw_run_opts;

/* What a run did, for main() to choose the exit code. */
#define AW_RUN_STAGES 8

typedef struct aw_run_result {
    size_t n_scenes, n_ok, n_failed, n_skipped;
    size_t n_unchanged; /* scenes of dates already done with the same inputs
                           and config (no work) */
    aw_status first_failure; /* status of the first failed scene */
    size_t n_alerts;         /* alert records at watch level or above */
    size_t n_notices;        /* insufficient-data notices */
    /* Seconds spent per stage over all dates, in the order of
     * aw_run_stage_name (ingest, mask, mosaic, indices, classify, zones,
     * alerts, write). */
    double stage_seconds[AW_RUN_STAGES];
} aw_run_result;

/* Name of stage k < AW_RUN_STAGES of aw_run_result.stage_seconds. */
const char *aw_run_stage_name(int k);

aw_status aw_run(aw_ctx *ctx, const aw_config *cfg, const aw_run_opts *opts,
                 aw_run_result *result);

/* The process exit code for a run (README "Exit codes"). */
int aw_run_exit_code(aw_status st, const aw_run_result *r);

/* `aralwatch status`: what the region's catalog knows. */
aw_status aw_status_report(aw_ctx *ctx, const aw_config *cfg,
                           const char *out_dir, FILE *out);

/* Describe a raster file or every raster in a folder on `out`. */
aw_status aw_inspect(aw_ctx *ctx, const char *path, FILE *out);

/* GDAL set-up: register drivers, route CPL errors into the log of ctx,
 * turn off network access. Call once from main(). */
void aw_gdal_init(aw_ctx *ctx);

/* Whether GDAL may reach the network (/vsicurl/, /vsis3/ and the other
 * network file systems, and HTTP fetches by drivers such as WMS or a
 * GeoJSON URL). aw_gdal_init turns it off; the config's allow_network
 * turns it on. */
void aw_gdal_allow_network(int allow);
void aw_gdal_cleanup(void);

#endif
