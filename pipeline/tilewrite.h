/* A tiled DEFLATE or ZSTD GeoTIFF, made empty by GDAL (SPARSE_OK), filled
 * with tiles compressed a tile per thread (pipeline/tilewrite.c). */
#ifndef ARALWATCH_TILEWRITE_H
#define ARALWATCH_TILEWRITE_H

#include <stdarg.h>
#include <stddef.h>
#include <tiffio.h>
#include "aralwatch/ctx.h"

/* A libtiff warning handler (TIFFOpenOptionsSetWarningHandlerExtR) that
 * drops them: unknown-tag notices of GeoTIFF files. Also tileread.c's. */
int aw_tiff_no_warning(TIFF *tif, void *user, const char *module,
                       const char *fmt, va_list ap);

typedef struct aw_tilewriter aw_tilewriter;

/* Take over `path`, an empty tiled GeoTIFF of width x height pixels in
 * tiles of bx x by, px bytes per pixel (1 and 2 with predictor 2, 4
 * (float32) with predictor 3), compressed with the file's codec as libtiff
 * would. level: GDAL's ZLEVEL for DEFLATE (1..12; 0, its default: 6) or
 * ZSTD_LEVEL for ZSTD (1..22; 0, its default: 9). threads: 0 = OpenMP's
 * default. */
aw_status aw_tilewriter_open(aw_ctx *ctx, const char *path, int width,
                             int height, int bx, int by, size_t px, int pred,
                             int level, int threads, aw_tilewriter **out);

/* The same for `path`, an empty COG made by GDAL's COG driver (SPARSE_OK:
 * every directory written, no tile), with its overviews: they are made
 * from the rows as GDAL makes them, cascading from each level to the next
 * (nearest: byte classes, GDAL's NEAREST; otherwise GDAL's AVERAGE of
 * float32 with NaN as nodata or of int16 with -32768), and the tiles are laid
 * out at close as GDAL's COG driver lays them out. The compressed tiles wait in
 * `path`.tiles, unlinked at once. */
aw_status aw_tilewriter_open_cog(aw_ctx *ctx, const char *path, int width,
                                 int height, int bx, int by, size_t px,
                                 int pred, int level, int threads, int nearest,
                                 aw_tilewriter **out);

/* Rows row0..row0+nrows (in order, top to bottom) of px-byte pixels. */
aw_status aw_tilewriter_rows(aw_ctx *ctx, aw_tilewriter *t, int row0, int nrows,
                             const void *data);

/* Write the directory and close (frees t, also on failure). */
aw_status aw_tilewriter_close(aw_ctx *ctx, aw_tilewriter *t);

/* Close without finishing (the caller removes the file). */
void aw_tilewriter_abort(aw_tilewriter *t);

#endif
