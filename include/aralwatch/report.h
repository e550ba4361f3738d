/* report.html, the page people read before they open a GeoTIFF, and the
 * quicklook PNGs it shows.
 *
 * The report is one self-contained HTML file: inline CSS, inline SVG charts
 * drawn here, quicklook images embedded as data: URIs. It loads nothing
 * from the network and needs no JavaScript; it prints.
 *
 * The report document (the JSON the pipeline builds; every field may be
 * missing or null, and every string is HTML-escaped):
 *
 *   title, region, generated, software {name, version, git_sha},
 *   run {dates [], baseline {from, to, period, min_years}},
 *   alerts [{alert_id, supersedes, status, level, severity, type, rule_id,
 *            zone_id, zone_name, date, metric {name, value, baseline_value,
 *            unit}, tendency {direction, previous_value, change}, onset,
 *            headline}],
 *   notices [{zone_id, rule_id, status, valid_fraction, message}],
 *   forecasts [{zone_id, zone_name, rule_id, metric, level, threshold,
 *               slope_per_day, p_value, n_obs, projected_date, earliest,
 *               latest}],
 *   zones [{zone_id, zone_name, kind, area_km2, level,
 *           latest {date, metrics {name: number}},
 *           series [{metric, label, unit, points [[date, value|null]],
 *                    baseline [[date, low, median, high]],
 *                    levels {watch, warning, alert}, direction}]}],
 *   quicklooks [{title, path, legend null | {ramp, min, max, label}
 *                                        | {classes [{label, color}]}}]
 *
 * Dates are "YYYY-MM-DD". Chart geometry is fixed (AW_CHART_* below), so
 * a reader of the page can map a value to its pixel: every chart <svg>
 * carries data-plot="left top right bottom" (viewBox units),
 * data-y-domain="min max" and data-x-domain="first-date last-date"; y
 * grows downwards, y(v) = bottom - (v - min) / (max - min) * (bottom -
 * top), and x is proportional to the day number. */
#ifndef ARALWATCH_REPORT_H
#define ARALWATCH_REPORT_H

#include <stddef.h>
#include <jansson.h>
#include "aralwatch/ctx.h"

/* Chart layout in SVG viewBox units. */
#define AW_CHART_WIDTH  720
#define AW_CHART_HEIGHT 260
#define AW_CHART_LEFT   64
#define AW_CHART_RIGHT  612 /* room on the right for the level labels */
#define AW_CHART_TOP    14
#define AW_CHART_BOTTOM 214

/* Write the report for the document `data` (borrowed; schema above) to
 * `path`, atomically (temporary name + rename). Quicklook paths in `data`
 * are relative to `base_dir` (NULL = the folder of `path`); a quicklook
 * that is missing, not a PNG or JPEG, an absolute path or a URL is shown as
 * a note (and logged as a warning), never fetched. AW_ERR_INPUT when data
 * is not a JSON object, AW_ERR_IO when the file cannot be written. */
aw_status aw_report_write(aw_ctx *ctx, const json_t *data, const char *base_dir,
                          const char *path);

/* Read the report document from json_path and write html_path
 * (`aralwatch report`). Quicklook paths are relative to the folder of
 * json_path. A file that is missing or not valid JSON is AW_ERR_INPUT with
 * a message naming the file (and line and column), and nothing is
 * written. */
aw_status aw_report_from_json_file(aw_ctx *ctx, const char *json_path,
                                   const char *html_path);

/* Quicklooks: small PNGs rendered with GDAL and written atomically. The
 * long side is at most max_size pixels (0 or less: the raster's own size;
 * never enlarged). Inputs that cannot be read are AW_ERR_INPUT naming the
 * file, and no PNG is written. */

/* True colour from three single-band float reflectance rasters of one size
 * (NaN or the band's nodata value = no data), stretched linearly from lo
 * (-> 1) to hi (-> 255), clipped. An RGBA PNG: a pixel with no data in any
 * band is 0, 0, 0 with alpha 0; every other pixel has alpha 255. */
aw_status aw_quicklook_rgb(aw_ctx *ctx, const char *red, const char *green,
                           const char *blue, double lo, double hi, int max_size,
                           const char *png);

/* A uint8 class raster with a colour table (water.tif, valid.tif) as a
 * paletted PNG with the same colour table; entries with alpha < 255 (and
 * the nodata value) become transparent through the PNG's tRNS chunk.
 * Downsampling takes the most frequent class (mode). */
aw_status aw_quicklook_classes(aw_ctx *ctx, const char *class_tif, int max_size,
                               const char *png);

/* One stop of a colour ramp; stops are in increasing value order. */
typedef struct aw_ramp_stop {
    double value;
    unsigned char r, g, b;
} aw_ramp_stop;

/* A float raster as an RGBA PNG through a colour ramp (GDALDEMProcessing
 * color-relief: linear between stops, the end colours beyond them). NaN,
 * infinities and the band's nodata value get alpha 0 (colour 0, 0, 0);
 * everything else alpha 255. Downsampling averages. */
aw_status aw_quicklook_ramp(aw_ctx *ctx, const char *float_tif,
                            const aw_ramp_stop *stops, size_t n_stops,
                            int max_size, const char *png);

/* VCI 0..100 (Kogan 1995): brown (stress, 0) -> yellow (fair, 50) ->
 * green (good, 100). The report draws the same ramp for a legend whose
 * "ramp" is "vci". */
extern const aw_ramp_stop aw_ramp_vci[];
extern const size_t aw_ramp_vci_n;

#endif
