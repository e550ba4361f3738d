/* State of a run shared by pipeline/run.c (stages) and pipeline/output.c
 * (writers). Pipeline-internal. */
#ifndef ARALWATCH_RUNWORK_H
#define ARALWATCH_RUNWORK_H

#include <jansson.h>
#include "aralwatch/pipeline.h"
#include "aralwatch/quality.h"

enum {
    ST_INGEST = 0,
    ST_MASK,
    ST_MOSAIC,
    ST_INDICES,
    ST_CLASSIFY,
    ST_ZONES,
    ST_ALERTS,
    ST_WRITE,
    ST_COUNT
};
extern const char *const aw_stage_names[ST_COUNT];

enum { SCENE_USED = 0, SCENE_SKIPPED, SCENE_FAILED };

/* One scene of a date, on the region grid. */
typedef struct scene_buf {
    const aw_scene_cfg *sc;
    float *refl[AW_BAND_COUNT];
    uint8_t *qcls;             /* enum aw_qclass per pixel */
    uint8_t *edge;             /* 1: valid but within half a source pixel of the
                                  scene's coverage edge, where resampling had partial
                                  neighbours (a mosaic prefers another scene there) */
    uint8_t *qa_lut;           /* generic QA: the class of each value
                                  0..65535, made at its first strip */
    int64_t count[AW_Q_COUNT]; /* pixels per quality class */
    double valid_fraction;     /* valid / pixels inside the region */
    double cloud_pct, shadow_pct, snow_pct; /* of observed pixels */
    int status;                             /* SCENE_USED / SKIPPED / FAILED */
    aw_status failure;                      /* when FAILED */
    char *reason;                           /* when SKIPPED or FAILED */
    int64_t n_mosaic;                       /* pixels it gave to the mosaic */
    int order;   /* rank in the mosaic order, 0 = first */
    int edge_r;  /* radius of its coverage edge, grid pixels */
    int rows[2]; /* grid rows its footprint spans (work weights) */
    /* SHA-256 and size of each input (bands, then qa at AW_BAND_COUNT),
     * from the catalog's checksum cache; "" when not worked out. */
    char sha256[AW_BAND_COUNT + 1][65];
    long long bytes[AW_BAND_COUNT + 1];
    /* Why an input could not be read to its end while its checksum was
     * taken (a zip member failing its CRC): the scene fails with it
     * before any pixel, as GDAL may read such a member without an error.
     * NULL when none. */
    char *damaged;
} scene_buf;

/* Whether input b of a scene (a band, or its quality band at
 * AW_BAND_COUNT) is read for this config's products: only those are
 * checksummed, fingerprinted and listed as the date's inputs. */
static inline int aw_input_read(const aw_config *cfg, int b)
{
    return b >= AW_BAND_COUNT || ((aw_config_needed_bands(cfg) >> b) & 1u);
}

/* The output rasters of a date being written, strip by strip, into its
 * staging folder (pipeline/output.c). */
enum {
    OUT_INDEX,
    OUT_WATER,
    OUT_DSWE,
    OUT_WOFL,
    OUT_VALID,
    OUT_SOURCE,
    OUT_CHANGE,
    OUT_REFL
};
#define AW_MAX_WRITERS 16
typedef struct date_out {
    char *final, *stage, *old;
    struct aw_rwriter *wr[AW_MAX_WRITERS];
    int kind[AW_MAX_WRITERS], index[AW_MAX_WRITERS];
    char name[AW_MAX_WRITERS][64];
    size_t n_wr;
} date_out;

/* Everything computed for one date (one mosaic of its scenes). The pixel
 * buffers hold one strip of the region grid at a time. */
typedef struct date_work {
    const char *date;
    scene_buf *sb;
    size_t n_sb;
    size_t n_used;
    float *refl[AW_BAND_COUNT];
    uint8_t *qcls;   /* mosaic quality classes (valid.tif) */
    uint8_t *valid;  /* 255 where qcls == AW_Q_VALID, else 0 */
    uint8_t *source; /* 1-based position in sb of the chosen scene, 0 none */
    float *index[AW_IDX_COUNT];
    uint8_t *water; /* binary: AW_WATER_YES / NO / AW_CLASS_NODATA */
    uint8_t *dswe;  /* DSWE classes (method dswe) */
    uint8_t *wofl;  /* WOfS flag byte (method wofs) */
    float water_threshold;
    int otsu_fallback;
    double sun_azimuth, sun_elevation; /* of the DSWE hillshade, or NaN */
    int dn_warning;                    /* DSWE/WOfS ran on bands still in DN */
    const char *method_name;           /* "DSWE" / "WOfS" for messages */
    int64_t count[AW_Q_COUNT];
    aw_zone_stats *stats;
    json_t *alerts, *notices, *active, *forecasts, *states;
    size_t n_alerts;
    double t[ST_COUNT];
    date_out *out;           /* open while the strips are written */
    size_t *order;           /* used scenes (indices into sb), mosaic order */
    uint64_t *hist;          /* Otsu: water index histogram of the date */
    struct aw_zones_run *zr; /* zone accumulators over the strips */
    int row_lo, row_hi;      /* this rank's rows of the grid (MPI) */
} date_work;

typedef struct run_state {
    const aw_config *cfg;
    const aw_run_opts *opts;
    aw_grid grid;
    aw_aoi aoi_geoms; /* the AOI; each strip rasterises it (aoi) */
    uint8_t *aoi;     /* a strip view's AOI mask */
    aw_zones zones;
    char *region_dir;
    int threads;
    size_t date_i, n_dates;
    struct aw_catalog *catalog;
    int64_t run_id;
    struct aw_bl *bl; /* the region's baseline, NULL when none */
    int bl_have;      /* the date being processed has a baseline */
} run_state;

/* Write the outputs of a date into OUT/<region>/<date>/ through a staging
 * folder (pipeline/output.c): open the rasters' writers, write each strip
 * (rows row0..row0+nrows of the grid, from the date's strip buffers at
 * pixel offset off), then finish (zone tables, alerts, manifest, STAC, the
 * swap into place) or abort (nothing left behind). */
aw_status aw_date_open(aw_ctx *ctx, run_state *rs, date_work *w);
aw_status aw_date_rows(aw_ctx *ctx, run_state *rs, date_work *w, int row0,
                       int nrows, size_t off);
/* MPI runs (collective): every rank's rows are written; encode each
 * raster on one rank. Then rank 0 calls aw_date_finish, the others
 * aw_date_abort (which leaves rank 0's staging folder alone). */
aw_status aw_date_close_rasters(aw_ctx *ctx, run_state *rs, date_work *w);
aw_status aw_date_finish(aw_ctx *ctx, run_state *rs, date_work *w);
void aw_date_abort(date_work *w);

/* Remove what killed runs left in the region folder. */
void aw_sweep_stale(aw_ctx *ctx, const char *region_dir);

/* Write a JSON document atomically. */
aw_status aw_write_json_file(aw_ctx *ctx, const char *path, json_t *j);
/* The same with JSON_REAL_PRECISION(digits). */
aw_status aw_write_json_digits(aw_ctx *ctx, const char *path, json_t *j,
                               int digits);

/* The run's report (pipeline/runreport.c): report.json and report.html in
 * the region folder, from the catalog and what the run did. */
typedef struct aw_run_report_in {
    json_t *dates;           /* the dates the run processed */
    json_t *alerts;          /* the records it issued */
    json_t *notices;         /* of the latest date it processed */
    json_t *forecasts;       /* of the latest date it processed */
    const char *latest_date; /* NULL: none */
} aw_run_report_in;
aw_status aw_run_report(aw_ctx *ctx, const run_state *rs,
                        const aw_run_report_in *in);

/* JSON record of a scene: profile metadata, quality counts, status. */
json_t *aw_scene_json(const scene_buf *s);

#endif
