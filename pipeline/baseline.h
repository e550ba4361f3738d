/* Multi-year baselines and change against them (pipeline/baseline.c).
 * Pipeline-internal.
 *
 * Layout under OUT/<region>/baseline/:
 *   years/<YYYY>-<PP>/{clear,wet,ndvi_mean}.tif  one year's summary of a
 *       period of the year (the unit of incremental updates)
 *   <PP>/{clear_count,wet_count,frequency,ndvi_min,ndvi_max,ndvi_median,
 *         ndvi_mean,ndvi_std,ndvi_years}.tif      the baseline of a period
 *   occurrence.tif      month (period) normalised water occurrence, %
 *   zones.json          per zone and period: water area and NDVI statistics
 * PP is m01..m12 (month) or d01..d36 (dekad). */
#ifndef ARALWATCH_BASELINE_H
#define ARALWATCH_BASELINE_H

#include <stdint.h>
#include "aralwatch/pipeline.h"

#define AW_PERIOD_NAME_MAX 8

/* Number of periods in a year, the 0-based period of a YYYY-MM-DD date,
 * and a period's name ("m07", "d19"). */
int aw_period_count(aw_period p);
int aw_period_of(aw_period p, const char *date);
void aw_period_name(aw_period p, int k, char out[AW_PERIOD_NAME_MAX]);

/* The baseline seen by a run: the zone medians of every period, and for
 * the date being processed, the open rasters of its period. */
typedef struct aw_bl aw_bl;

/* Load what exists of the region's baseline (NULL *out, AW_OK, when there
 * is none). */
struct run_state;
struct date_work;
aw_status aw_bl_open(aw_ctx *ctx, const struct run_state *rs, aw_bl **out);
void aw_bl_close(aw_bl *bl); /* accepts NULL */

/* Per date: open its period's rasters (1 in *have when there is a
 * baseline for it), then per strip compute the change rasters of the core
 * rows and accumulate the zones, then fill the zone statistics. */
aw_status aw_bl_date_begin(aw_ctx *ctx, aw_bl *bl, const struct run_state *rs,
                           const char *date, int *have);
aw_status aw_bl_rows(aw_ctx *ctx, aw_bl *bl, const struct run_state *rs,
                     struct date_work *w, int row0, int nrows, size_t off);
/* MPI runs (collective): add up the ranks' zone accumulators (exact). */
void aw_bl_reduce(aw_bl *bl);
void aw_bl_date_end(aw_bl *bl, const struct run_state *rs,
                    aw_zone_stats *stats);

/* The change rasters of the last strip (its core rows, from row 0):
 * water_change (uint8: 0 no change, 1 lost water, 2 new water, 255 not
 * observed or no baseline), VCI, NDVI z-score and NDVI - median (float,
 * NaN nodata). */
enum { AW_BL_WCHANGE, AW_BL_VCI, AW_BL_NDVI_Z, AW_BL_NDVI_DIFF };
const void *aw_bl_strip(const aw_bl *bl, int which);

/* Options of `aralwatch baseline`. */
typedef struct aw_baseline_opts {
    aw_run_opts run;  /* out_dir, threads, quiet ... */
    const char *from; /* NULL: baseline.from */
    const char *to;   /* NULL: baseline.to */
} aw_baseline_opts;

/* `aralwatch baseline`: run the pipeline over the dates in [from, to]
 * (dates already done are not done again), then build or update the
 * yearly summaries whose dates changed, the period baselines and the zone
 * baselines. */
aw_status aw_baseline_build(aw_ctx *ctx, const aw_config *cfg,
                            const aw_baseline_opts *o, aw_run_result *rr);

#endif
