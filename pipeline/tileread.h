/* Windows of a tiled or stripped GeoTIFF (DEFLATE or uncompressed)
 * decoded a tile per thread (pipeline/tileread.c); the mirror of
 * tilewrite.h. GDAL stays the reader of everything else, and of any
 * window this reader cannot serve. */
#ifndef ARALWATCH_TILEREAD_H
#define ARALWATCH_TILEREAD_H

#include <stddef.h>

typedef struct aw_tileread aw_tileread;

/* Sample types the reader decodes. */
typedef enum {
    AW_TR_U8,
    AW_TR_U16,
    AW_TR_I16,
    AW_TR_F32,
} aw_tr_type;

/* Open `path`'s first image when it is a GeoTIFF this reader decodes
 * exactly as GDAL would: native byte order, DEFLATE or no compression,
 * predictor 1, 2 (integers) or 3 (float32), `nbands` samples of `type`
 * per pixel, one sample per pixel or one plane per band, width x height
 * pixels. Otherwise NULL, with the reason in `why` (for the debug log). */
aw_tileread *aw_tileread_open(const char *path, int width, int height,
                              int nbands, aw_tr_type type, char *why,
                              size_t whylen);

/* How the samples become the caller's pixels: Float32 v -> NaN when
 * has_nd and v == (float)nd, else v * scale + offset; Float64 v -> NaN
 * when has_nd and v == nd, else v (the scale is not applied). */
typedef struct {
    int f64; /* 0: float out, 1: double out */
    int has_nd;
    double nd;
    float scale, offset;
} aw_tr_conv;

/* Band `band` (1-based), window x0, y0, w x h (inside the image), into
 * `out`: rows `stride` pixels apart. The inflate streams of the rows of
 * tiles the next window below may start in (the one this window ends
 * inside, and the one above when windows overlap by a halo) are kept,
 * suspended, with the rows the overlap covers, and the next window goes
 * on from there. threads: 0 =
 * OpenMP's default. Returns 0 when done; 1 when this reader cannot serve
 * the window (a missing or corrupt tile, a read error: read it with
 * GDAL, which reports what is wrong), with the reason in `why`; -1 out of
 * memory. */
int aw_tileread_window(aw_tileread *r, int band, int x0, int y0, int w, int h,
                       const aw_tr_conv *conv, void *out, size_t stride,
                       int threads, char *why, size_t whylen);

/* About the most the streams kept for the next window take: one per
 * tile of two rows of tiles across the image, per band, each keeping 64
 * rows (a halo of 32); 0 when uncompressed (a window reads just its
 * rows). For the budget (aw_tileread_set_budget). */
size_t aw_tileread_held_max(const aw_tileread *r);

/* The most all readers together hold in streams kept for the next
 * window (default: no limit). Streams that would go over it are not
 * kept: the next window inflates those tiles from the top again. */
void aw_tileread_set_budget(size_t bytes);

/* Bytes all readers hold now in streams kept for their next windows. */
size_t aw_tileread_held(void);

/* Rows of tiles inflated so far (a row of a tile counts once each time
 * it is inflated, also when skipped above a window). Read top to bottom
 * in strips, each tile's rows are inflated once, but for the first
 * strip that goes back over the last one's halo: that one inflates its
 * tiles again from their top, and the streams keep that many rows from
 * then on. */
size_t aw_tileread_rows_inflated(const aw_tileread *r);

/* The tiles the last window ended inside (also the image's last row of
 * tiles, whose padding rows no window reads) inflated to their end, for
 * their checksums, which a DEFLATE stream holds at its end: call when no
 * more windows come (a pass over the file is over), as damage in rows a
 * window has read is otherwise never seen. Meant for windows that come
 * down the image whole rows wide, as the pipeline's strips do: a tile that
 * an earlier window ended inside and a later one skipped is not
 * remembered. From their kept streams, or from their top when the budget
 * kept none; on threads; each tile once per reader (a later pass ending
 * inside it again costs nothing). 0, or 1 with why filled, or -1 (no
 * memory). The kept streams are spent. */
int aw_tileread_verify(aw_tileread *r, char *why, size_t whylen);

void aw_tileread_close(aw_tileread *r);

#endif
