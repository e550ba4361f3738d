/* Pipeline-internal helpers shared by the files in pipeline/ (not installed).
 */
#ifndef ARALWATCH_PIPELINE_INTERNAL_H
#define ARALWATCH_PIPELINE_INTERNAL_H

#include <gdal.h>
#include <ogr_srs_api.h>
#include "aralwatch/pipeline.h"

/* One class of a class raster: value, name, RGBA colour. */
typedef struct aw_class_def {
    int value;
    const char *name;
    short r, g, b, a;
} aw_class_def;

/* The SQLite handle of an open catalog, for the pipeline's own queries
 * (baseline, alert history). */
struct sqlite3;
struct aw_catalog;
struct sqlite3 *aw_catalog_db(struct aw_catalog *cat);

/* Output encoding options from the config. */
typedef struct aw_write_opts {
    int cog;
    const char *compress; /* DEFLATE (when NULL), ZSTD, LZW, NONE */
    int level;            /* DEFLATE 1..12, ZSTD 1..22; 0: GDAL's default */
    int blocksize;
    int threads;
    /* MPI runs: 0 (a writer of its own), AW_SHARED_CREATE (the rank that
     * creates the shared strip file, every tile in place) or
     * AW_SHARED_ATTACH (a rank that writes its rows into its tiles). */
    int shared;
    /* Own-encoder files (see aw_rwriters_create) made later, several at
     * once, rather than at aw_rwriter_open. */
    int defer;
} aw_write_opts;
enum { AW_SHARED_CREATE = 1, AW_SHARED_ATTACH = 2 };

/* Open an input now (main thread), so reads from other threads find it
 * in the cache of open datasets and never change that cache. */
void aw_gdal_prime_input(aw_ctx *ctx, const char *path);

/* Close the input datasets kept open across the strips of a date. */
void aw_gdal_close_inputs(void);
/* After a pass over the inputs: the DEFLATE tiles of `path` that its
 * windows read only in part are inflated to their end and their checksums
 * checked (aw_tileread_verify); AW_ERR_INPUT naming the file and tile if
 * one does not match. Nothing for inputs GDAL decodes (it checks whole
 * blocks). */
aw_status aw_gdal_verify_input(aw_ctx *ctx, const char *path);

/* int16 encoding: nodata value; stored = round(value / scale). */
#define AW_INT16_NODATA (-32768)

/* A raster written in strips of rows (see gdal_io.c): open with its
 * metadata, write rows top to bottom (float for GDT_Float32 and GDT_Int16,
 * converted to int16 with `scale`; uint8 for GDT_Byte), close to finish
 * (COG made then) or abort to drop it. */
typedef struct aw_rwriter aw_rwriter;
aw_status aw_rwriter_open(aw_ctx *ctx, const char *path, const aw_grid *grid,
                          GDALDataType type, double scale,
                          const char *description, char **metadata,
                          const aw_class_def *classes, size_t n_classes,
                          int has_nodata, double nodata,
                          const aw_write_opts *wo, aw_rwriter **out);
aw_status aw_rwriter_rows(aw_ctx *ctx, aw_rwriter *w, int row0, int nrows,
                          const void *data);
/* The files of writers opened with wo.defer, made now on the threads:
 * making an empty COG is GDAL's CreateCopy checking every empty block of
 * the raster and its overviews, a twentieth of a second of one core per
 * 30 Mpx float32 raster, before the first strip. A writer given rows
 * first makes its own. */
aw_status aw_rwriters_create(aw_ctx *ctx, aw_rwriter *const *wr, size_t n);
aw_status aw_rwriter_close(aw_ctx *ctx, aw_rwriter *w);
/* Shared writers: this rank has written its rows (flushed to the
 * filesystem, file closed); then the rank given the raster closes it
 * (aw_rwriter_close encodes it) and the others abort theirs. */
aw_status aw_rwriter_detach(aw_ctx *ctx, aw_rwriter *w);
/* Bytes per pixel of the raster a writer writes. */
int aw_rwriter_pixel_bytes(const aw_rwriter *w);
/* Free a shared writer another rank encodes, leaving its files. */
void aw_rwriter_forget(aw_rwriter *w);
void aw_rwriter_abort(aw_rwriter *w); /* accepts NULL */

/* AW_OK when the raster's footprint overlaps the grid's extent, else
 * AW_ERR_INPUT naming the file (checked before any pixel is warped);
 * rows (may be NULL) gets the grid rows [rows[0], rows[1]) it spans. */
aw_status aw_check_overlap(aw_ctx *ctx, const aw_band_src *src,
                           const aw_grid *grid, int rows[2]);

/* Size of one pixel of src expressed in pixels of the grid (the larger of
 * the two axes; 1 when it cannot be worked out). */
double aw_src_pixel_in_grid(const aw_band_src *src, const aw_grid *grid);

/* Percent slope and hillshade (0..255, sun at the given azimuth and
 * elevation) of a DEM warped onto the grid (bilinear), with GDAL's DEM
 * processing; NaN where the DEM has no data. */
aw_status aw_dem_terrain(aw_ctx *ctx, const char *dem_path, const aw_grid *grid,
                         double sun_azimuth, double sun_elevation, int threads,
                         float **slope_pct, float **hillshade);

/* SHA-256 and size of a file, also inside GDAL virtual paths (/vsizip/
 * of a zipped product). A file that opens but cannot be read to its end
 * (a zip member failing its CRC or inflate, a short read) is AW_ERR_INPUT
 * with *damaged set (damaged may be NULL). */
aw_status aw_sha256_vsi(aw_ctx *ctx, const char *path, char hex[65],
                        long long *bytes, int *damaged);

/* Outline of a scene's raster as a GeoJSON polygon in WGS 84
 * (longitude, latitude); NULL when it cannot be worked out. Caller frees. */
char *aw_scene_footprint(const aw_scene_cfg *sc);

/* Size and modification time (nanoseconds; whole seconds inside
 * /vsizip/) of a file; -1 when it cannot be read. */
int aw_file_signature(const char *path, long long *size, long long *mtime_ns);

/* Open a raster read-only with a message naming the file on failure. */
aw_status aw_open_raster(aw_ctx *ctx, const char *path, GDALDatasetH *ds);

/* The last GDAL error message, or "" (thread-local in GDAL). */
const char *aw_gdal_last_error(void);
/* Around a read that GDAL may decode on its own threads: a mark taken
 * before it (resets this thread's last error), and after it this thread's
 * last error or, if empty, GDAL's last failure on any thread since the
 * mark ("" if none). */
unsigned long aw_gdal_error_mark(void);
const char *aw_gdal_error_since(unsigned long mark);

/* A spatial reference from a user string (EPSG:n, WKT, PROJ), axis order
 * forced to x=easting/longitude. NULL with an error in ctx on failure. */
OGRSpatialReferenceH aw_srs_from_user(aw_ctx *ctx, const char *text,
                                      const char *what);

/* Transform the box [xmin, ymin, xmax, ymax] from src to dst (densified
 * edges). */
aw_status aw_transform_bounds(aw_ctx *ctx, OGRSpatialReferenceH src,
                              OGRSpatialReferenceH dst, const double in[4],
                              double out[4]);

/* STAC 1.1.0 metadata (pipeline/stac.c). aw_write_stac_item writes
 * dir/item.json for the date folder dir from its manifest (jansson object,
 * borrowed) and the rasters already written in dir; run after
 * manifest.json. aw_write_stac_collection (re)writes
 * region_dir/collection.json atomically, linking every date folder of
 * region_dir that holds an item.json, with the union of their bboxes and
 * dates as extent. */
struct json_t;
aw_status aw_write_stac_item(aw_ctx *ctx, const char *dir,
                             struct json_t *manifest);
aw_status aw_write_stac_collection(aw_ctx *ctx, const char *region_dir,
                                   const char *region_name);

#endif
