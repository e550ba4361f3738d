/* Sensor profiles: recognise a product as the provider delivers it and
 * describe it as a scene (band files per role, scale/offset, nodata, quality
 * band, date and metadata), so a config needs no band map.
 *
 * Profiles (DOMAIN.md §1-§2):
 * - Landsat 8/9 Collection 2 Level-2: a folder holding *_MTL.txt (or the
 *   MTL file itself); bands SR_B2..SR_B7 -> blue, green, red, nir, swir1,
 *   swir2; QA_PIXEL; reflectance = DN * 2.75e-5 - 0.2 (from the MTL's
 *   REFLECTANCE_MULT/ADD_BAND_n when present); nodata 0.
 * - Sentinel-2 L2A: a .SAFE folder (JP2 under GRANULE/<g>/IMG_DATA/R10m and
 *   R20m), a folder of loose band files named as ESA names them
 *   (T22HBD_20210122T133229_B03_10m.jp2) or as the cloud archives do
 *   (B03.tif, SCL.tif in a folder named like S2A_29RKH_20200219_0_L2A);
 *   B02 B03 B04 B08 B11 B12 -> blue green red nir swir1 swir2, SCL quality;
 *   reflectance = (DN + BOA_ADD_OFFSET) / QUANTIFICATION_VALUE from
 *   MTD_MSIL2A.xml when present; without it: offset 0 before processing
 *   baseline 04.00 (sensing date before 2022-01-25), -1000 from then on;
 *   nodata 0.
 * - Generic: any other raster(s), with the documented default band map
 *   (see aw_profile_detect) or the config's map.
 *
 * Metadata files are read with libc/GDAL (CPLParseXMLFile for XML); the MTL
 * reader is a strict "KEY = VALUE" / GROUP parser (aw_mtl_*). */
#ifndef ARALWATCH_PROFILE_H
#define ARALWATCH_PROFILE_H

#include <stddef.h>
#include "aralwatch/config.h"
#include "aralwatch/ctx.h"

/* ---- Landsat MTL (ODL text) ---- */
typedef struct aw_mtl aw_mtl;
/* Parse an MTL file. Lines are "KEY = VALUE", "GROUP = NAME",
 * "END_GROUP = NAME" and "END"; values may be quoted. NUL padding after END
 * is ignored. Errors name the file and line. */
aw_status aw_mtl_load(aw_ctx *ctx, const char *path, aw_mtl **out);
/* Value of the first KEY anywhere (quotes removed), or NULL. Owned by mtl. */
const char *aw_mtl_get(const aw_mtl *mtl, const char *key);
void aw_mtl_free(aw_mtl *mtl);

/* Fill `sc` (already zeroed; sc->dir may be set) from the product at
 * `path`. `sensor` is AW_SENSOR_AUTO or a forced profile. Sets sc->sensor,
 * the band sources, qa and qa_kind, sc->date (unless already set),
 * sc->datetime, sc->id (unless set) and the metadata fields. Returns
 * AW_ERR_INPUT with a message naming the path when nothing is recognised
 * or a file the profile needs is missing. */
aw_status aw_profile_detect(aw_ctx *ctx, const char *path, aw_sensor sensor,
                            aw_scene_cfg *sc);

/* Name of a sensor profile ("landsat_c2_l2", "sentinel2_l2a", "generic",
 * "auto"). */
const char *aw_sensor_name(aw_sensor s);
int aw_sensor_from_name(const char *name); /* -1 if unknown */

#endif
