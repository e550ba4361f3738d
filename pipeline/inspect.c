/* `aralwatch inspect PATH`: what a raster, or every raster in a folder,
 * holds: driver, size, bands, data types, CRS, resolution, nodata, and the
 * footprint in longitude/latitude. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cpl_conv.h>
#include <cpl_string.h>
#include "aralwatch/config.h"
#include "aralwatch/profile.h"
#include "aralwatch/util.h"
#include "internal.h"

static void footprint(FILE *out, GDALDatasetH ds, const double gt[6],
                      const char *wkt)
{
    OGRSpatialReferenceH src = OSRNewSpatialReference(wkt);
    OGRSpatialReferenceH ll = OSRNewSpatialReference(NULL);
    OSRImportFromEPSG(ll, 4326);
    OSRSetAxisMappingStrategy(src, OAMS_TRADITIONAL_GIS_ORDER);
    OSRSetAxisMappingStrategy(ll, OAMS_TRADITIONAL_GIS_ORDER);
    OGRCoordinateTransformationH ct = OCTNewCoordinateTransformation(src, ll);
    int w = GDALGetRasterXSize(ds), h = GDALGetRasterYSize(ds);
    double px[4] = {0, w, w, 0}, py[4] = {0, 0, h, h};
    double x[4], y[4];
    for (int i = 0; i < 4; i++) {
        x[i] = gt[0] + px[i] * gt[1] + py[i] * gt[2];
        y[i] = gt[3] + px[i] * gt[4] + py[i] * gt[5];
    }
    int ok[4] = {0, 0, 0, 0};
    if (ct && OCTTransformEx(ct, 4, x, y, NULL, ok)) {
        fprintf(out, "  footprint:   ");
        static const char *const names[4] = {"UL", "UR", "LR", "LL"};
        for (int i = 0; i < 4; i++)
            fprintf(out, "%s(%.6f, %.6f)%s", names[i], x[i], y[i],
                    i < 3 ? " " : " lon/lat WGS 84\n");
    }
    else {
        fprintf(out, "  footprint:   (cannot transform to WGS 84)\n");
    }
    if (ct)
        OCTDestroyCoordinateTransformation(ct);
    OSRDestroySpatialReference(src);
    OSRDestroySpatialReference(ll);
}

static aw_status inspect_file(aw_ctx *ctx, const char *path, FILE *out)
{
    GDALDatasetH ds = NULL;
    aw_status st = aw_open_raster(ctx, path, &ds);
    if (st != AW_OK)
        return st;
    GDALDriverH drv = GDALGetDatasetDriver(ds);
    int w = GDALGetRasterXSize(ds), h = GDALGetRasterYSize(ds);
    int nb = GDALGetRasterCount(ds);
    fprintf(out, "%s\n", path);
    fprintf(out, "  driver:      %s (%s)\n", GDALGetDriverShortName(drv),
            GDALGetDriverLongName(drv));
    fprintf(out, "  size:        %d x %d pixels, %d band(s)\n", w, h, nb);
    const char *wkt = GDALGetProjectionRef(ds);
    double gt[6];
    int has_gt = GDALGetGeoTransform(ds, gt) == CE_None;
    if (wkt && wkt[0]) {
        OGRSpatialReferenceH srs = OSRNewSpatialReference(wkt);
        const char *name = OSRGetName(srs);
        const char *auth = OSRGetAuthorityName(srs, NULL);
        const char *code = OSRGetAuthorityCode(srs, NULL);
        char *unit = NULL;
        if (OSRIsGeographic(srs))
            OSRGetAngularUnits(srs, &unit);
        else
            OSRGetLinearUnits(srs, &unit);
        if (auth && code)
            fprintf(out, "  crs:         %s (%s:%s)\n",
                    name ? name : "(unnamed)", auth, code);
        else
            fprintf(out, "  crs:         %s\n", name ? name : "(unnamed)");
        if (has_gt)
            fprintf(out, "  resolution:  %.10g x %.10g %s\n", fabs(gt[1]),
                    fabs(gt[5]), unit ? unit : "");
        OSRDestroySpatialReference(srs);
    }
    else {
        fprintf(out, "  crs:         none (not georeferenced)\n");
    }
    if (has_gt) {
        fprintf(out, "  origin:      %.10g, %.10g%s\n", gt[0], gt[3],
                gt[2] != 0 || gt[4] != 0 ? " (rotated)" : "");
        if (wkt && wkt[0])
            footprint(out, ds, gt, wkt);
    }
    for (int b = 1; b <= nb; b++) {
        GDALRasterBandH band = GDALGetRasterBand(ds, b);
        int has_nd = 0, has_sc = 0, has_off = 0;
        double nd = GDALGetRasterNoDataValue(band, &has_nd);
        double sc = GDALGetRasterScale(band, &has_sc);
        double off = GDALGetRasterOffset(band, &has_off);
        const char *desc = GDALGetDescription(band);
        fprintf(out, "  band %d:      %s", b,
                GDALGetDataTypeName(GDALGetRasterDataType(band)));
        if (has_nd)
            fprintf(out, ", nodata %.10g", nd);
        else
            fputs(", no nodata", out);
        if ((has_sc && sc != 1) || (has_off && off != 0))
            fprintf(out, ", scale %.10g offset %.10g", sc, off);
        if (GDALGetRasterColorTable(band))
            fputs(", colour table", out);
        if (desc && desc[0])
            fprintf(out, ", \"%s\"", desc);
        fputc('\n', out);
    }
    GDALClose(ds);
    return AW_OK;
}

static int name_cmp(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static void print_band(FILE *out, const char *role, const aw_band_src *b)
{
    if (!b->present)
        return;
    GDALDatasetH ds = NULL;
    char res[64] = "";
    CPLPushErrorHandler(CPLQuietErrorHandler);
    ds = GDALOpen(b->path, GA_ReadOnly);
    CPLPopErrorHandler();
    double gt[6];
    if (ds && GDALGetGeoTransform(ds, gt) == CE_None)
        snprintf(res, sizeof res, ", %.10g m", fabs(gt[1]));
    if (ds)
        GDALClose(ds);
    fprintf(out, "    %-6s %s (band %d%s", role, b->path, b->band, res);
    if (strcmp(role, "qa") != 0)
        fprintf(out, ", reflectance = DN * %.10g + %.10g", b->scale, b->offset);
    if (b->has_nodata)
        fprintf(out, ", nodata %.10g", b->nodata);
    fputs(")\n", out);
}

static aw_status inspect_file(aw_ctx *ctx, const char *path, FILE *out);

/* The product as a sensor profile sees it, then each of its band files;
 * 1 when a product was recognised. */
static int inspect_product(aw_ctx *ctx, const char *path, FILE *out)
{
    aw_scene_cfg sc;
    memset(&sc, 0, sizeof sc);
    sc.cloud_cover = NAN;
    sc.sun_elevation = NAN;
    sc.sun_azimuth = NAN;
    if (aw_profile_detect(ctx, path, AW_SENSOR_AUTO, &sc) != AW_OK) {
        /* Say why a folder or archive is not a product (a damaged MTL, a
         * bad date...), then describe its rasters. */
        struct stat sb;
        size_t n = strlen(path);
        if ((stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) ||
            (n > 4 && strcmp(path + n - 4, ".zip") == 0))
            fprintf(out, "product %s\n  not recognised: %s\n", path,
                    aw_ctx_errmsg(ctx));
        aw_scene_free(&sc);
        aw_ctx_clear_error(ctx);
        return 0;
    }
    static const char *const qa_names[] = {"none", "generic", "QA_PIXEL",
                                           "SCL"};
    fprintf(out, "product %s\n", path);
    fprintf(out, "  sensor:      %s\n", aw_sensor_name(sc.sensor));
    fprintf(out, "  id:          %s\n", sc.id ? sc.id : "");
    if (sc.platform)
        fprintf(out, "  platform:    %s\n", sc.platform);
    fprintf(out, "  date:        %s%s%s\n", sc.date[0] ? sc.date : "unknown",
            sc.datetime[0] ? "  " : "", sc.datetime);
    if (sc.wrs_path > 0)
        fprintf(out, "  wrs:         path %d row %d\n", sc.wrs_path,
                sc.wrs_row);
    if (sc.tile_id)
        fprintf(out, "  tile:        %s\n", sc.tile_id);
    if (sc.processing_baseline)
        fprintf(out, "  baseline:    %s\n", sc.processing_baseline);
    if (isfinite(sc.cloud_cover))
        fprintf(out, "  cloud cover: %.2f %% (provider)\n", sc.cloud_cover);
    if (isfinite(sc.sun_elevation))
        fprintf(out, "  sun elev.:   %.4f deg\n", sc.sun_elevation);
    fprintf(out, "  quality:     %s\n", qa_names[sc.qa_kind]);
    if (sc.offset_note)
        fprintf(out, "  scale/offset: %s\n", sc.offset_note);
    fputs("  bands:\n", out);
    for (int b = 0; b < AW_BAND_COUNT; b++)
        print_band(out, aw_band_name((aw_band)b), &sc.bands[b]);
    print_band(out, "qa", &sc.qa);
    /* Each file once (a multi-band file serves several roles). */
    for (int b = 0; b <= AW_BAND_COUNT; b++) {
        const aw_band_src *src = b < AW_BAND_COUNT ? &sc.bands[b] : &sc.qa;
        if (!src->present)
            continue;
        int seen = 0;
        for (int k = 0; k < b && !seen; k++)
            seen =
                sc.bands[k].present && strcmp(sc.bands[k].path, src->path) == 0;
        if (!seen && inspect_file(ctx, src->path, out) != AW_OK)
            fprintf(out, "%s\n  error:       %s\n", src->path,
                    aw_ctx_errmsg(ctx));
    }
    aw_scene_free(&sc);
    return 1;
}

aw_status aw_inspect(aw_ctx *ctx, const char *path, FILE *out)
{
    struct stat sb;
    if (stat(path, &sb) != 0)
        return aw_fail(ctx, AW_ERR_INPUT, "%s: no such file or folder", path);
    if (inspect_product(ctx, path, out))
        return AW_OK;
    if (!S_ISDIR(sb.st_mode))
        return inspect_file(ctx, path, out);
    struct dirent **list = NULL;
    int n = scandir(path, &list, NULL, name_cmp);
    if (n < 0)
        return aw_fail(ctx, AW_ERR_INPUT, "%s: cannot list the folder", path);
    int shown = 0;
    for (int i = 0; i < n; i++) {
        const char *nm = list[i]->d_name;
        char *p = nm[0] == '.' ? NULL : aw_path_join(path, nm);
        struct stat eb;
        if (p && stat(p, &eb) == 0 && S_ISREG(eb.st_mode)) {
            /* Only what GDAL identifies as a raster; text and XML side-cars
             * are skipped quietly. */
            CPLPushErrorHandler(CPLQuietErrorHandler);
            GDALDriverH d = GDALIdentifyDriverEx(p, GDAL_OF_RASTER, NULL, NULL);
            CPLPopErrorHandler();
            if (d) {
                if (inspect_file(ctx, p, out) == AW_OK)
                    shown++;
                else
                    fprintf(out, "%s\n  error:       %s\n", p,
                            aw_ctx_errmsg(ctx));
            }
        }
        free(p);
        free(list[i]);
    }
    free(list);
    if (shown == 0)
        return aw_fail(ctx, AW_ERR_INPUT, "%s: no raster GDAL can read", path);
    return AW_OK;
}
