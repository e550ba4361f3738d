/* The region grid: CRS, resolution and extent from the config, defaulting
 * to the first scene's native grid; the AOI mask; the true area of a pixel
 * in each row (projected: from the grid and the CRS's linear unit;
 * geographic: geodesic area on the CRS's ellipsoid, PROJ's geodesic.h). */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cpl_conv.h>
#include <cpl_string.h>
#include <gdal_alg.h>
#include <gdal_utils.h>
#include <geodesic.h>
#include <ogr_api.h>
#include "aralwatch/util.h"
#include "internal.h"

/* The first band file of a scene (reflectance roles in order, then QA). */
static const aw_band_src *first_band(const aw_scene_cfg *sc)
{
    for (int b = 0; b < AW_BAND_COUNT; b++)
        if (sc->bands[b].present)
            return &sc->bands[b];
    return sc->qa.present ? &sc->qa : NULL;
}

/* Read the polygons of a layer, transformed to dst. Returns a list of
 * geometries (owned) and their envelope in dst. */
static aw_status read_polygons(aw_ctx *ctx, const char *path,
                               const char *layer_name, OGRSpatialReferenceH dst,
                               OGRGeometryH **geoms, size_t *n_geoms,
                               double env[4])
{
    CPLErrorReset();
    GDALDatasetH ds =
        GDALOpenEx(path, GDAL_OF_VECTOR | GDAL_OF_READONLY, NULL, NULL, NULL);
    if (!ds)
        return aw_fail(ctx, AW_ERR_INPUT,
                       "%s: cannot open as a vector layer: %s", path,
                       aw_gdal_last_error());
    OGRLayerH lyr = layer_name ? GDALDatasetGetLayerByName(ds, layer_name)
                               : GDALDatasetGetLayer(ds, 0);
    if (!lyr) {
        GDALClose(ds);
        return aw_fail(ctx, AW_ERR_INPUT, "%s: no layer %s%s%s", path,
                       layer_name ? "'" : "", layer_name ? layer_name : "",
                       layer_name ? "'" : "(the file has no layer)");
    }
    OGRSpatialReferenceH src = OGR_L_GetSpatialRef(lyr);
    OGRSpatialReferenceH src4326 = NULL;
    if (!src) {
        /* GeoJSON without a crs member is WGS 84 by RFC 7946. */
        src4326 = OSRNewSpatialReference(NULL);
        OSRImportFromEPSG(src4326, 4326);
        src = src4326;
        aw_log(ctx, AW_LOG_WARN, "%s: layer has no CRS; assuming EPSG:4326",
               path);
    }
    OGRSpatialReferenceH srcc = OSRClone(src);
    OSRSetAxisMappingStrategy(srcc, OAMS_TRADITIONAL_GIS_ORDER);
    OGRCoordinateTransformationH ct = OCTNewCoordinateTransformation(srcc, dst);
    OSRDestroySpatialReference(srcc);
    if (src4326)
        OSRDestroySpatialReference(src4326);
    if (!ct) {
        GDALClose(ds);
        return aw_fail(ctx, AW_ERR_PROJ,
                       "%s: cannot transform to the grid CRS: %s", path,
                       aw_gdal_last_error());
    }
    size_t cap = 16, n = 0;
    OGRGeometryH *list = aw_calloc2(cap, sizeof *list);
    env[0] = env[1] = HUGE_VAL;
    env[2] = env[3] = -HUGE_VAL;
    aw_status st = AW_OK;
    OGR_L_ResetReading(lyr);
    OGRFeatureH f;
    while (list && (f = OGR_L_GetNextFeature(lyr)) != NULL) {
        OGRGeometryH g = OGR_F_GetGeometryRef(f);
        if (!g || OGR_G_IsEmpty(g)) {
            aw_log(ctx, AW_LOG_WARN,
                   "%s: feature %lld has no geometry; skipped", path,
                   (long long)OGR_F_GetFID(f));
            OGR_F_Destroy(f);
            continue;
        }
        OGRGeometryH c = OGR_G_Clone(g);
        OGR_F_Destroy(f);
        if (OGR_G_Transform(c, ct) != OGRERR_NONE) {
            OGR_G_DestroyGeometry(c);
            st = aw_fail(ctx, AW_ERR_PROJ,
                         "%s: a geometry cannot be transformed to the grid CRS",
                         path);
            break;
        }
        OGREnvelope e;
        OGR_G_GetEnvelope(c, &e);
        env[0] = fmin(env[0], e.MinX);
        env[1] = fmin(env[1], e.MinY);
        env[2] = fmax(env[2], e.MaxX);
        env[3] = fmax(env[3], e.MaxY);
        if (n == cap) {
            cap *= 2;
            OGRGeometryH *nl = realloc(list, cap * sizeof *nl);
            if (!nl) {
                OGR_G_DestroyGeometry(c);
                break;
            }
            list = nl;
        }
        list[n++] = c;
    }
    OCTDestroyCoordinateTransformation(ct);
    GDALClose(ds);
    if (!list)
        return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    if (st == AW_OK && n == 0)
        st = aw_fail(ctx, AW_ERR_INPUT, "%s: the layer has no polygon", path);
    if (st != AW_OK) {
        for (size_t i = 0; i < n; i++)
            OGR_G_DestroyGeometry(list[i]);
        free(list);
        return st;
    }
    *geoms = list;
    *n_geoms = n;
    return AW_OK;
}

/* Bounds of a raster in the CRS dst; 0 when it cannot be worked out (the
 * scene then fails on its own later). */
static int footprint(const char *path, OGRSpatialReferenceH dst, double out[4])
{
    CPLPushErrorHandler(CPLQuietErrorHandler);
    GDALDatasetH ds = GDALOpen(path, GA_ReadOnly);
    CPLPopErrorHandler();
    if (!ds)
        return 0;
    double gt[6];
    const char *wkt = GDALGetProjectionRef(ds);
    int ok = 0;
    if (GDALGetGeoTransform(ds, gt) == CE_None && wkt && wkt[0]) {
        int w = GDALGetRasterXSize(ds), h = GDALGetRasterYSize(ds);
        double in[4] = {
            fmin(gt[0], gt[0] + gt[1] * w), fmin(gt[3], gt[3] + gt[5] * h),
            fmax(gt[0], gt[0] + gt[1] * w), fmax(gt[3], gt[3] + gt[5] * h)};
        OGRSpatialReferenceH src = OSRNewSpatialReference(wkt);
        OSRSetAxisMappingStrategy(src, OAMS_TRADITIONAL_GIS_ORDER);
        OGRCoordinateTransformationH ct =
            OCTNewCoordinateTransformation(src, dst);
        ok = ct && OCTTransformBounds(ct, in[0], in[1], in[2], in[3], &out[0],
                                      &out[1], &out[2], &out[3], 21);
        if (ct)
            OCTDestroyCoordinateTransformation(ct);
        OSRDestroySpatialReference(src);
    }
    GDALClose(ds);
    return ok;
}

static double snap_down(double v, double anchor, double res)
{
    return anchor + floor((v - anchor) / res + 1e-9) * res;
}

static double snap_up(double v, double anchor, double res)
{
    return anchor + ceil((v - anchor) / res - 1e-9) * res;
}

/* Geodesic area of the pixel of `row` at the grid's central column. */
static double geodesic_cell_area(const aw_grid *grid, long row)
{
    double cx = grid->gt[0] + grid->gt[1] * (double)(grid->width / 2);
    double y0 = grid->gt[3] + grid->gt[5] * (double)row;
    double y1 = y0 + grid->gt[5];
    double x[4] = {cx, cx + grid->gt[1], cx + grid->gt[1], cx};
    double y[4] = {y0, y0, y1, y1};
    int ok[4] = {0, 0, 0, 0};
    if (!OCTTransformEx((OGRCoordinateTransformationH)grid->to_lonlat, 4, x, y,
                        NULL, ok) ||
        !ok[0] || !ok[1] || !ok[2] || !ok[3])
        return NAN;
    struct geod_geodesic g;
    geod_init(&g, grid->geod_a, grid->geod_f);
    double area = 0, perim = 0;
    /* x = longitude, y = latitude (traditional GIS order). */
    geod_polygonarea(&g, y, x, 4, &area, &perim);
    return fabs(area);
}

double aw_grid_cell_area(const aw_grid *grid, long row)
{
    if (row >= 0 && row < grid->height)
        return grid->row_area_m2[row];
    if (grid->area_geodesic)
        return geodesic_cell_area(grid, row);
    return grid->row_area_m2[0];
}

static aw_status row_areas(aw_ctx *ctx, OGRSpatialReferenceH srs, aw_grid *grid)
{
    grid->row_area_m2 = aw_calloc2((size_t)grid->height, sizeof(double));
    if (!grid->row_area_m2)
        return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    OGRSpatialReferenceH geo = OSRCloneGeogCS(srs);
    if (!geo)
        return aw_fail(ctx, AW_ERR_PROJ, "the grid CRS has no geographic CRS");
    OSRSetAxisMappingStrategy(geo, OAMS_TRADITIONAL_GIS_ORDER);
    OGRErr err = OGRERR_NONE;
    grid->geod_a = OSRGetSemiMajor(geo, &err);
    double invf = OSRGetInvFlattening(geo, &err);
    grid->geod_f = invf != 0.0 ? 1.0 / invf : 0.0;
    /* geod_polygonarea takes degrees: the geographic CRSs GDAL builds from
     * EPSG codes are all in degrees. */
    grid->to_lonlat = OCTNewCoordinateTransformation(srs, geo);
    OSRDestroySpatialReference(geo);
    if (!grid->to_lonlat)
        return aw_fail(ctx, AW_ERR_PROJ,
                       "cannot transform the grid CRS to longitude/latitude: "
                       "%s",
                       aw_gdal_last_error());
    grid->area_geodesic = grid->geographic;
    if (!grid->geographic) {
        double unit = OSRGetLinearUnits(srs, NULL); /* metres per unit */
        double nominal = fabs(grid->gt[1] * grid->gt[5]) * unit * unit;
        double centre = geodesic_cell_area(grid, grid->height / 2);
        if (isfinite(centre) && fabs(nominal / centre - 1.0) > 0.02) {
            grid->area_geodesic = 1;
            aw_log(ctx, AW_LOG_INFO,
                   "grid cells of %.6g m^2 cover %.6g m^2 of ground at the "
                   "region centre; areas use the geodesic cell area per row",
                   nominal, centre);
        }
        else {
            for (int r = 0; r < grid->height; r++)
                grid->row_area_m2[r] = nominal;
            return AW_OK;
        }
    }
    for (int r = 0; r < grid->height; r++) {
        grid->row_area_m2[r] = geodesic_cell_area(grid, r);
        if (!isfinite(grid->row_area_m2[r]))
            return aw_fail(ctx, AW_ERR_PROJ,
                           "cannot compute the area of grid row %d", r);
    }
    return AW_OK;
}

aw_status aw_grid_build(aw_ctx *ctx, const aw_config *cfg, aw_grid *grid,
                        aw_aoi *aoi_out)
{
    memset(grid, 0, sizeof *grid);
    memset(aoi_out, 0, sizeof *aoi_out);
    aw_status st = AW_OK;
    GDALDatasetH first = NULL;
    OGRSpatialReferenceH tsrs = NULL, fsrs = NULL;
    OGRGeometryH *aoi = NULL;
    size_t n_aoi = 0;

    /* The first scene that opens with georeferencing anchors the defaults
     * (CRS, resolution, extent, pixel alignment). A scene that does not
     * open is skipped here; it fails on its own later. */
    const aw_band_src *fb = NULL;
    double fgt[6];
    const char *fwkt = NULL;
    char why[1024] = "";
    for (size_t i = 0; i < cfg->n_scenes && !first; i++) {
        const aw_band_src *b = first_band(&cfg->scenes[i]);
        if (!b)
            continue;
        aw_ctx_clear_error(ctx);
        if (aw_open_raster(ctx, b->path, &first) != AW_OK) {
            if (!why[0])
                snprintf(why, sizeof why, "%s", aw_ctx_errmsg(ctx));
            continue;
        }
        fwkt = GDALGetProjectionRef(first);
        if (GDALGetGeoTransform(first, fgt) != CE_None || !fwkt || !fwkt[0]) {
            if (!why[0])
                snprintf(why, sizeof why, "%s: has no geotransform or no CRS",
                         b->path);
            GDALClose(first);
            first = NULL;
            continue;
        }
        fb = b;
    }
    if (!first) {
        st = aw_fail(ctx, AW_ERR_INPUT,
                     "%s: no scene opens with georeferencing (geotransform "
                     "and CRS), so the region grid has nothing to default "
                     "to; first problem: %s",
                     cfg->path, why);
        goto done;
    }
    fsrs = OSRNewSpatialReference(fwkt);
    OSRSetAxisMappingStrategy(fsrs, OAMS_TRADITIONAL_GIS_ORDER);
    if (cfg->crs) {
        tsrs = aw_srs_from_user(ctx, cfg->crs, "region.crs");
        if (!tsrs) {
            st = AW_ERR_CONFIG;
            goto done;
        }
    }
    else {
        tsrs = OSRClone(fsrs);
        OSRSetAxisMappingStrategy(tsrs, OAMS_TRADITIONAL_GIS_ORDER);
    }
    int same_crs = OSRIsSame(tsrs, fsrs);
    int north_up = fgt[2] == 0.0 && fgt[4] == 0.0 && fgt[5] < 0.0;

    /* Native grid of the first scene expressed in the target CRS. */
    /* Pixel size: square unless the first scene's native pixels are not
     * (and no resolution is configured). */
    double nat[4], res, res_y, anchor_x = 0, anchor_y = 0;
    if (same_crs && north_up) {
        int w = GDALGetRasterXSize(first), h = GDALGetRasterYSize(first);
        nat[0] = fgt[0];
        nat[3] = fgt[3];
        nat[2] = fgt[0] + fgt[1] * w;
        nat[1] = fgt[3] + fgt[5] * h;
        res = fgt[1];
        res_y = -fgt[5];
    }
    else {
        char *twkt = NULL;
        OSRExportToWkt(tsrs, &twkt);
        void *tr = GDALCreateGenImgProjTransformer(first, NULL, NULL, twkt,
                                                   FALSE, 0, 1);
        double sgt[6];
        int sw = 0, sh = 0;
        int ok = tr && GDALSuggestedWarpOutput(first, GDALGenImgProjTransform,
                                               tr, sgt, &sw, &sh) == CE_None;
        if (tr)
            GDALDestroyGenImgProjTransformer(tr);
        CPLFree(twkt);
        if (!ok) {
            st = aw_fail(ctx, AW_ERR_PROJ,
                         "%s: cannot express its extent in region.crs: %s",
                         fb->path, aw_gdal_last_error());
            goto done;
        }
        nat[0] = sgt[0];
        nat[3] = sgt[3];
        nat[2] = sgt[0] + sgt[1] * sw;
        nat[1] = sgt[3] + sgt[5] * sh;
        res = sgt[1];
        res_y = -sgt[5];
    }
    if (cfg->has_resolution)
        res = res_y = cfg->resolution;
    /* Keep the first scene's pixel alignment when the grid is its own, so
     * the default grid does not resample it by a fraction of a pixel. */
    if (same_crs && north_up && fabs(res - fgt[1]) < 1e-9 * fabs(res) &&
        fabs(fabs(fgt[5]) - res_y) < 1e-9 * res_y) {
        anchor_x = fmod(fgt[0], res);
        anchor_y = fmod(fgt[3], res_y);
    }

    double ext[4];
    if (cfg->aoi_path) {
        st = read_polygons(ctx, cfg->aoi_path, cfg->aoi_layer, tsrs, &aoi,
                           &n_aoi, ext);
        if (st != AW_OK)
            goto done;
    }
    else if (cfg->has_bbox) {
        OGRSpatialReferenceH bsrs =
            aw_srs_from_user(ctx, cfg->bbox_crs ? cfg->bbox_crs : "EPSG:4326",
                             "region.bbox_crs");
        if (!bsrs) {
            st = AW_ERR_CONFIG;
            goto done;
        }
        st = aw_transform_bounds(ctx, bsrs, tsrs, cfg->bbox, ext);
        OSRDestroySpatialReference(bsrs);
        if (st != AW_OK)
            goto done;
    }
    else {
        memcpy(ext, nat, sizeof ext);
        /* per_date: the union of the date's scenes, so a mosaic of
         * adjacent tiles keeps all of them (the first scene still sets the
         * CRS, resolution and pixel alignment). */
        for (size_t i = 0; cfg->grid_per_date && i < cfg->n_scenes; i++) {
            const aw_band_src *b = first_band(&cfg->scenes[i]);
            double fp[4];
            if (b && b != fb && footprint(b->path, tsrs, fp)) {
                ext[0] = fmin(ext[0], fp[0]);
                ext[1] = fmin(ext[1], fp[1]);
                ext[2] = fmax(ext[2], fp[2]);
                ext[3] = fmax(ext[3], fp[3]);
            }
        }
    }

    double xmin = snap_down(ext[0], anchor_x, res);
    double xmax = snap_up(ext[2], anchor_x, res);
    double ymin = snap_down(ext[1], anchor_y, res_y);
    double ymax = snap_up(ext[3], anchor_y, res_y);
    double wd = (xmax - xmin) / res, hd = (ymax - ymin) / res_y;
    if (!(wd >= 1 && hd >= 1) || wd > INT_MAX / 2 || hd > INT_MAX / 2 ||
        wd * hd > 4e9) {
        st = aw_fail(ctx, AW_ERR_CONFIG,
                     "%s: the region grid would be %.0f x %.0f pixels at "
                     "resolution %g; check region.resolution and the extent",
                     cfg->path, wd, hd, res);
        goto done;
    }
    grid->width = (int)lround(wd);
    grid->height = (int)lround(hd);
    grid->gt[0] = xmin;
    grid->gt[1] = res;
    grid->gt[2] = 0;
    grid->gt[3] = ymax;
    grid->gt[4] = 0;
    grid->gt[5] = -res_y;
    grid->geographic = OSRIsGeographic(tsrs) ? 1 : 0;
    char *wkt = NULL;
    const char *wkt_opts[] = {"FORMAT=WKT2_2019", NULL};
    OSRExportToWktEx(tsrs, &wkt, wkt_opts);
    grid->wkt = aw_strdup(wkt);
    CPLFree(wkt);

    if (!grid->wkt) {
        st = aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
        goto done;
    }
    st = row_areas(ctx, tsrs, grid);

done:
    if (st == AW_OK && n_aoi > 0) {
        /* Kept in the grid's CRS: each strip rasterises its own rows. */
        aoi_out->geoms = (void **)aoi;
        aoi_out->n = n_aoi;
        aoi = NULL;
        n_aoi = 0;
    }
    for (size_t i = 0; i < n_aoi; i++)
        OGR_G_DestroyGeometry(aoi[i]);
    free(aoi);
    if (tsrs)
        OSRDestroySpatialReference(tsrs);
    if (fsrs)
        OSRDestroySpatialReference(fsrs);
    if (first)
        GDALClose(first);
    if (st != AW_OK) {
        aw_grid_free(grid);
        return st;
    }
    return AW_OK;
}

void aw_aoi_free(aw_aoi *aoi)
{
    for (size_t i = 0; i < aoi->n; i++)
        OGR_G_DestroyGeometry((OGRGeometryH)aoi->geoms[i]);
    free(aoi->geoms);
    memset(aoi, 0, sizeof *aoi);
}

aw_status aw_aoi_mask(aw_ctx *ctx, const aw_aoi *aoi, const aw_grid *grid,
                      uint8_t *mask)
{
    size_t npx = (size_t)grid->width * (size_t)grid->height;
    if (aoi->n == 0) {
        memset(mask, 255, npx);
        return AW_OK;
    }
    GDALDriverH mdrv = GDALGetDriverByName("MEM");
    GDALDatasetH mds =
        GDALCreate(mdrv, "", grid->width, grid->height, 1, GDT_Byte, NULL);
    if (!mds)
        return aw_fail(ctx, AW_ERR_NOMEM, "out of memory (AOI mask)");
    GDALSetGeoTransform(mds, (double *)(uintptr_t)grid->gt);
    GDALSetProjection(mds, grid->wkt);
    int band = 1;
    double *burn = aw_calloc2(aoi->n, sizeof *burn);
    for (size_t i = 0; burn && i < aoi->n; i++)
        burn[i] = 255;
    CPLErr e = burn ? GDALRasterizeGeometries(mds, 1, &band, (int)aoi->n,
                                              (OGRGeometryH *)aoi->geoms, NULL,
                                              NULL, burn, NULL, NULL, NULL)
                    : CE_Failure;
    if (e == CE_None)
        e = GDALRasterIO(GDALGetRasterBand(mds, 1), GF_Read, 0, 0, grid->width,
                         grid->height, mask, grid->width, grid->height,
                         GDT_Byte, 0, 0);
    free(burn);
    GDALClose(mds);
    if (e != CE_None)
        return aw_fail(ctx, AW_ERR_INPUT, "cannot rasterise the AOI: %s",
                       aw_gdal_last_error());
    return AW_OK;
}

void aw_grid_free(aw_grid *grid)
{
    if (!grid)
        return;
    if (grid->to_lonlat)
        OCTDestroyCoordinateTransformation(
            (OGRCoordinateTransformationH)grid->to_lonlat);
    free(grid->wkt);
    free(grid->row_area_m2);
    memset(grid, 0, sizeof *grid);
}
