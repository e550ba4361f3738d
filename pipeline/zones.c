/* Zones: polygons from any OGR layer (GeoJSON, Shapefile, GeoPackage),
 * reprojected to the grid CRS and rasterised per zone (pixel centres inside
 * the polygon) over the zone's own window, kept as runs per row, so zones
 * may overlap.
 * Statistics use the mergeable accumulators of kernels/zacc.c: per-thread
 * partials merged exactly, so results do not depend on the thread count. */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>
#include <cpl_conv.h>
#include <gdal_alg.h>
#include <ogr_api.h>
#include "aralwatch/quality.h"
#include "aralwatch/util.h"
#include "internal.h"
#include "par.h"

static int kind_from_text(const char *s, aw_zone_kind *k)
{
    if (strcmp(s, "waterbody") == 0)
        *k = AW_ZONE_WATERBODY;
    else if (strcmp(s, "cropland") == 0)
        *k = AW_ZONE_CROPLAND;
    else if (strcmp(s, "other") == 0)
        *k = AW_ZONE_OTHER;
    else
        return -1;
    return 0;
}

static aw_status field_index(aw_ctx *ctx, OGRLayerH lyr, const char *path,
                             const char *field, const char *key, int *idx)
{
    OGRFeatureDefnH defn = OGR_L_GetLayerDefn(lyr);
    *idx = OGR_FD_GetFieldIndex(defn, field);
    if (*idx >= 0)
        return AW_OK;
    char list[1024] = "";
    size_t used = 0;
    for (int i = 0; i < OGR_FD_GetFieldCount(defn) && used < sizeof list - 64;
         i++) {
        int k = snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "",
                         OGR_Fld_GetNameRef(OGR_FD_GetFieldDefn(defn, i)));
        if (k > 0)
            used += (size_t)k;
    }
    return aw_fail(ctx, AW_ERR_CONFIG,
                   "%s: %s: field '%s' is not in the layer (fields: %s)", path,
                   key, field, list[0] ? list : "none");
}

/* GDAL's transformer from the grid CRS to the pixels of a zone's envelope
 * (GDALGenImgProjTransform applies the inverse geotransform so), with the
 * lines counted from the band's first row. */
typedef struct band_transform {
    double inv[6];
    double row0;
} band_transform;

#define ZONE_BAND_ROWS 512

static int band_transformer(void *arg, int dst_to_src, int n, double *x,
                            double *y, double *zc, int *ok)
{
    (void)zc;
    const band_transform *t = arg;
    for (int i = 0; i < n; i++) {
        if (dst_to_src) {
            /* pixel, line of the band -> georeferenced (not used by the
             * rasteriser; for completeness) */
            double px = x[i], ln = y[i] + t->row0;
            double det = t->inv[1] * t->inv[5] - t->inv[2] * t->inv[4];
            double gx =
                ((px - t->inv[0]) * t->inv[5] - (ln - t->inv[3]) * t->inv[2]) /
                det;
            double gy =
                ((ln - t->inv[3]) * t->inv[1] - (px - t->inv[0]) * t->inv[4]) /
                det;
            x[i] = gx;
            y[i] = gy;
        }
        else {
            double px = t->inv[0] + x[i] * t->inv[1] + y[i] * t->inv[2];
            double ln = t->inv[3] + x[i] * t->inv[4] + y[i] * t->inv[5];
            x[i] = px;
            y[i] = ln - t->row0;
        }
        ok[i] = 1;
    }
    return TRUE;
}

/* Rasterise geometry g (grid CRS) over its whole envelope on the grid's
 * lattice, which may stick out of the region: every pixel of the zone is
 * counted (n_pixels, area_km2) so that the part outside the region counts
 * as not observed; the runs kept are the part inside the grid. */
static aw_status rasterise_zone(aw_ctx *ctx, const aw_grid *grid,
                                OGRGeometryH g, aw_zone *z)
{
    OGREnvelope e;
    OGR_G_GetEnvelope(g, &e);
    double res_x = grid->gt[1], res_y = -grid->gt[5];
    double fx0 = floor((e.MinX - grid->gt[0]) / res_x);
    double fx1 = ceil((e.MaxX - grid->gt[0]) / res_x);
    double fy0 = floor((grid->gt[3] - e.MaxY) / res_y);
    double fy1 = ceil((grid->gt[3] - e.MinY) / res_y);
    double fw = fx1 - fx0, fh = fy1 - fy0;
    if (!(fw >= 1 && fh >= 1)) {
        z->w = z->h = 0;
        return AW_OK;
    }
    if (fw * fh > 1e9 || fw > INT_MAX || fh > INT_MAX)
        return aw_fail(ctx, AW_ERR_INPUT,
                       "zone '%s' spans %.0f x %.0f pixels of the region grid; "
                       "use a zone layer at the scale of the region",
                       z->id, fw, fh);
    int fullw = (int)fw, fullh = (int)fh;
    long ox = (long)fx0, oy = (long)fy0;
    /* The part inside the grid. */
    long cx0 = ox > 0 ? ox : 0, cy0 = oy > 0 ? oy : 0;
    long cx1 = ox + fullw < grid->width ? ox + fullw : grid->width;
    long cy1 = oy + fullh < grid->height ? oy + fullh : grid->height;
    int inside = cx1 > cx0 && cy1 > cy0;
    z->w = z->h = 0;
    if (inside) {
        z->x0 = (int)cx0;
        z->y0 = (int)cy0;
        z->w = (int)(cx1 - cx0);
        z->h = (int)(cy1 - cy0);
        z->run_at = aw_calloc2((size_t)z->h + 1, sizeof *z->run_at);
        if (!z->run_at)
            return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    }
    /* The envelope is rasterised a band of rows at a time, so that only a
     * band is held. The transformer is GDAL's own for the whole
     * envelope (its inverse geotransform), then shifted by the band's first
     * row: a whole number, so every pixel centre is decided exactly as in
     * one pass over the envelope. */
    double gt[6] = {grid->gt[0] + (double)ox * res_x, res_x, 0,
                    grid->gt[3] - (double)oy * res_y, 0,     -res_y};
    band_transform bt;
    if (!GDALInvGeoTransform(gt, bt.inv)) {
        free(z->run_at);
        z->run_at = NULL;
        z->w = z->h = 0;
        return aw_fail(ctx, AW_ERR_INPUT, "zone '%s': grid not invertible",
                       z->id);
    }
    int rows = fullh < ZONE_BAND_ROWS ? fullh : ZONE_BAND_ROWS;
    uint8_t *buf = aw_malloc2((size_t)fullw * (size_t)rows, 1);
    size_t nruns = 0, cap = 0;
    aw_status st = buf ? AW_OK : aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    for (int r0 = 0; r0 < fullh && st == AW_OK; r0 += rows) {
        int nb = r0 + rows <= fullh ? rows : fullh - r0;
        bt.row0 = r0;
        GDALDatasetH mds = GDALCreate(GDALGetDriverByName("MEM"), "", fullw, nb,
                                      1, GDT_Byte, NULL);
        if (!mds) {
            st = aw_fail(ctx, AW_ERR_NOMEM, "cannot create in-memory raster");
            break;
        }
        int band = 1;
        double burn = 1;
        CPLErr err =
            GDALRasterizeGeometries(mds, 1, &band, 1, &g, band_transformer, &bt,
                                    &burn, NULL, NULL, NULL);
        if (err == CE_None)
            err = GDALRasterIO(GDALGetRasterBand(mds, 1), GF_Read, 0, 0, fullw,
                               nb, buf, fullw, nb, GDT_Byte, 0, 0);
        GDALClose(mds);
        if (err != CE_None) {
            st = aw_fail(ctx, AW_ERR_INPUT, "zone '%s': cannot rasterise: %s",
                         z->id, aw_gdal_last_error());
            break;
        }
        for (int r = 0; r < nb && st == AW_OK; r++) {
            const uint8_t *row = buf + (size_t)r * (size_t)fullw;
            long gy = oy + r0 + r;
            int64_t c = 0;
            for (int x = 0; x < fullw; x++)
                c += row[x] != 0;
            z->n_pixels += c;
            z->area_km2 += (double)c * aw_grid_cell_area(grid, gy) * 1e-6;
            if (!inside || gy < cy0 || gy >= cy1)
                continue;
            int zr = (int)(gy - cy0);
            z->run_at[zr] = nruns;
            const uint8_t *in = row + (cx0 - ox);
            for (int x = 0; x < z->w;) {
                if (!in[x]) {
                    x++;
                    continue;
                }
                int end = x;
                while (end < z->w && in[end])
                    end++;
                if (nruns == cap) {
                    size_t nc = cap ? 2 * cap : 64;
                    int32_t *nr = realloc(z->runs, 2 * nc * sizeof *nr);
                    if (!nr) {
                        st = aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
                        break;
                    }
                    z->runs = nr;
                    cap = nc;
                }
                z->runs[2 * nruns] = x;
                z->runs[2 * nruns + 1] = end;
                z->n_in_grid += end - x;
                nruns++;
                x = end;
            }
        }
    }
    free(buf);
    if (st == AW_OK && inside) {
        z->run_at[z->h] = nruns;
        if (!z->runs)
            z->runs = calloc(1, 2 * sizeof *z->runs);
        if (!z->runs)
            st = aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    }
    if (st != AW_OK) {
        free(z->runs);
        free(z->run_at);
        z->runs = NULL;
        z->run_at = NULL;
        z->w = z->h = 0;
    }
    return st;
}

aw_status aw_zones_load(aw_ctx *ctx, const aw_config *cfg, const aw_grid *grid,
                        aw_zones *zones)
{
    memset(zones, 0, sizeof *zones);
    if (!cfg->zones_path)
        return AW_OK;
    const char *path = cfg->zones_path;
    CPLErrorReset();
    GDALDatasetH ds =
        GDALOpenEx(path, GDAL_OF_VECTOR | GDAL_OF_READONLY, NULL, NULL, NULL);
    if (!ds)
        return aw_fail(ctx, AW_ERR_INPUT,
                       "%s: zones.file: cannot open as a vector layer: %s",
                       path, aw_gdal_last_error());
    OGRLayerH lyr = cfg->zones_layer
                        ? GDALDatasetGetLayerByName(ds, cfg->zones_layer)
                        : GDALDatasetGetLayer(ds, 0);
    aw_status st = AW_OK;
    OGRCoordinateTransformationH ct = NULL, ct_ll = NULL;
    OGRSpatialReferenceH gsrs = NULL, wgs84 = NULL, lsrs = NULL;
    if (!lyr) {
        st = aw_fail(ctx, AW_ERR_CONFIG, "%s: zones.layer: no layer '%s'", path,
                     cfg->zones_layer ? cfg->zones_layer : "(first)");
        goto done;
    }
    int id_i = -1, name_i = -1, kind_i = -1;
    st = field_index(ctx, lyr, path, cfg->zones_id_field, "zones.id_field",
                     &id_i);
    if (st == AW_OK && cfg->zones_name_field)
        st = field_index(ctx, lyr, path, cfg->zones_name_field,
                         "zones.name_field", &name_i);
    if (st == AW_OK && cfg->zones_kind_field)
        st = field_index(ctx, lyr, path, cfg->zones_kind_field,
                         "zones.kind_field", &kind_i);
    if (st != AW_OK)
        goto done;

    gsrs = OSRNewSpatialReference(grid->wkt);
    OSRSetAxisMappingStrategy(gsrs, OAMS_TRADITIONAL_GIS_ORDER);
    wgs84 = OSRNewSpatialReference(NULL);
    OSRImportFromEPSG(wgs84, 4326);
    OSRSetAxisMappingStrategy(wgs84, OAMS_TRADITIONAL_GIS_ORDER);
    if (OGR_L_GetSpatialRef(lyr)) {
        lsrs = OSRClone(OGR_L_GetSpatialRef(lyr));
    }
    else {
        lsrs = OSRClone(wgs84);
        aw_log(ctx, AW_LOG_WARN,
               "%s: zone layer has no CRS; assuming EPSG:4326", path);
    }
    OSRSetAxisMappingStrategy(lsrs, OAMS_TRADITIONAL_GIS_ORDER);
    ct = OCTNewCoordinateTransformation(lsrs, gsrs);
    ct_ll = OCTNewCoordinateTransformation(lsrs, wgs84);
    if (!ct || !ct_ll) {
        st = aw_fail(ctx, AW_ERR_PROJ,
                     "%s: cannot transform zones to the grid CRS: %s", path,
                     aw_gdal_last_error());
        goto done;
    }

    GIntBig nf = OGR_L_GetFeatureCount(lyr, TRUE);
    zones->z = aw_calloc2(nf > 0 ? (size_t)nf : 1, sizeof *zones->z);
    if (!zones->z) {
        st = aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
        goto done;
    }
    OGR_L_ResetReading(lyr);
    OGRFeatureH f;
    while (st == AW_OK && (f = OGR_L_GetNextFeature(lyr)) != NULL) {
        if (zones->n >= (size_t)nf) {
            OGR_F_Destroy(f);
            break;
        }
        aw_zone *z = &zones->z[zones->n];
        long long fid = (long long)OGR_F_GetFID(f);
        if (!OGR_F_IsFieldSetAndNotNull(f, id_i) ||
            !OGR_F_GetFieldAsString(f, id_i)[0]) {
            st = aw_fail(ctx, AW_ERR_INPUT, "%s: feature %lld has no %s", path,
                         fid, cfg->zones_id_field);
            OGR_F_Destroy(f);
            break;
        }
        z->id = aw_strdup(OGR_F_GetFieldAsString(f, id_i));
        z->name =
            aw_strdup(name_i >= 0 ? OGR_F_GetFieldAsString(f, name_i) : z->id);
        zones->n++;
        for (size_t i = 0; i + 1 < zones->n; i++) {
            if (strcmp(zones->z[i].id, z->id) == 0) {
                st = aw_fail(
                    ctx, AW_ERR_INPUT,
                    "%s: zone id '%s' appears twice (%s must be unique)", path,
                    z->id, cfg->zones_id_field);
                break;
            }
        }
        z->kind = cfg->zones_kind;
        if (st == AW_OK && kind_i >= 0) {
            const char *k = OGR_F_GetFieldAsString(f, kind_i);
            if (kind_from_text(k, &z->kind) != 0)
                st = aw_fail(ctx, AW_ERR_INPUT,
                             "%s: zone '%s': %s is '%s'; expected waterbody, "
                             "cropland or other",
                             path, z->id, cfg->zones_kind_field, k);
        }
        OGRGeometryH g0 = OGR_F_GetGeometryRef(f);
        if (st == AW_OK && (!g0 || OGR_G_IsEmpty(g0))) {
            aw_log(ctx, AW_LOG_WARN,
                   "%s: zone '%s' has an empty geometry; it covers no pixel",
                   path, z->id);
        }
        else if (st == AW_OK) {
            OGRGeometryH g = OGR_G_Clone(g0);
            if (!OGR_G_IsValid(g)) {
                OGRGeometryH v = OGR_G_MakeValid(g);
                aw_log(ctx, AW_LOG_WARN,
                       "%s: zone '%s' has an invalid geometry; %s", path, z->id,
                       v ? "repaired with MakeValid" : "used as is");
                if (v) {
                    OGR_G_DestroyGeometry(g);
                    g = v;
                }
            }
            /* Its outline in lon/lat for alerts.geojson and CAP. */
            OGRGeometryH ll = OGR_G_Clone(g);
            if (ll && OGR_G_Transform(ll, ct_ll) == OGRERR_NONE) {
                char *opts[] = {"COORDINATE_PRECISION=7", NULL};
                char *js = OGR_G_ExportToJsonEx(ll, opts);
                z->geojson = js ? aw_strdup(js) : NULL;
                CPLFree(js);
            }
            if (ll)
                OGR_G_DestroyGeometry(ll);
            OGREnvelope e;
            OGR_G_GetEnvelope(g, &e);
            if (!OCTTransformBounds(ct_ll, e.MinX, e.MinY, e.MaxX, e.MaxY,
                                    &z->bbox_lonlat[0], &z->bbox_lonlat[1],
                                    &z->bbox_lonlat[2], &z->bbox_lonlat[3], 21))
                for (int i = 0; i < 4; i++)
                    z->bbox_lonlat[i] = NAN;
            if (OGR_G_Transform(g, ct) != OGRERR_NONE)
                st = aw_fail(ctx, AW_ERR_PROJ,
                             "%s: zone '%s' cannot be transformed to the grid "
                             "CRS",
                             path, z->id);
            else
                st = rasterise_zone(ctx, grid, g, z);
            OGR_G_DestroyGeometry(g);
        }
        OGR_F_Destroy(f);
        if (st == AW_OK && z->n_in_grid == 0)
            aw_log(ctx, AW_LOG_WARN,
                   "zone '%s' covers no pixel centre of the region grid",
                   z->id);
        else if (st == AW_OK && z->n_in_grid < z->n_pixels)
            aw_log(ctx, AW_LOG_WARN,
                   "zone '%s': %.1f %% of it lies outside the region; that "
                   "part counts as not observed",
                   z->id,
                   100.0 * (double)(z->n_pixels - z->n_in_grid) /
                       (double)z->n_pixels);
    }
done:
    if (ct)
        OCTDestroyCoordinateTransformation(ct);
    if (ct_ll)
        OCTDestroyCoordinateTransformation(ct_ll);
    if (gsrs)
        OSRDestroySpatialReference(gsrs);
    if (wgs84)
        OSRDestroySpatialReference(wgs84);
    if (lsrs)
        OSRDestroySpatialReference(lsrs);
    GDALClose(ds);
    if (st != AW_OK)
        aw_zones_free(zones);
    return st;
}

void aw_zones_free(aw_zones *zones)
{
    if (!zones)
        return;
    for (size_t i = 0; i < zones->n; i++) {
        free(zones->z[i].id);
        free(zones->z[i].name);
        free(zones->z[i].runs);
        free(zones->z[i].run_at);
        free(zones->z[i].geojson);
    }
    free(zones->z);
    memset(zones, 0, sizeof *zones);
}

/* Zone statistics are accumulated strip by strip of the region grid.
 * Per zone and row of its window: valid, water and quality-class counts
 * (summed in row order at the end); per index: an exact integer
 * accumulator (kernels/zacc.c) that merges in any order to the same bits.
 * So any thread count and any strip height give the same results. */
typedef struct zone_run {
    int64_t *vrow, *wrow, *qrow; /* h rows; qrow: cloud, shadow, snow, nodata */
    size_t h;
    aw_zacc acc[AW_IDX_COUNT];
} zone_run;

struct aw_zones_run {
    size_t n;
    zone_run *z;
    int has_index[AW_IDX_COUNT];
};

void aw_zones_run_free(aw_zones_run *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++) {
        free(r->z[i].vrow);
        free(r->z[i].wrow);
        free(r->z[i].qrow);
    }
    free(r->z);
    free(r);
}

aw_status aw_zones_run_begin(aw_ctx *ctx, const aw_zones *zones,
                             const int has_index[AW_IDX_COUNT],
                             aw_zones_run **out)
{
    aw_zones_run *r = calloc(1, sizeof *r);
    if (!r || !(r->z = aw_calloc2(zones->n ? zones->n : 1, sizeof *r->z))) {
        free(r);
        return aw_fail(ctx, AW_ERR_NOMEM, "out of memory (zone statistics)");
    }
    r->n = zones->n;
    memcpy(r->has_index, has_index, sizeof r->has_index);
    for (size_t k = 0; k < zones->n; k++) {
        const aw_zone *z = &zones->z[k];
        zone_run *zr = &r->z[k];
        size_t h = z->w && z->h ? (size_t)z->h : 1;
        zr->h = h;
        zr->vrow = aw_calloc2(h, sizeof *zr->vrow);
        zr->wrow = aw_calloc2(h, sizeof *zr->wrow);
        zr->qrow = aw_calloc2(h * 4, sizeof *zr->qrow);
        if (!zr->vrow || !zr->wrow || !zr->qrow) {
            aw_zones_run_free(r);
            return aw_fail(ctx, AW_ERR_NOMEM,
                           "out of memory (zone statistics)");
        }
        for (int i = 0; i < AW_IDX_COUNT; i++)
            aw_zacc_init(&zr->acc[i], aw_index_get((aw_index)i)->hist_lo,
                         aw_index_get((aw_index)i)->hist_hi);
    }
    *out = r;
    return AW_OK;
}

/* Rows [row0, row0 + nrows) of the grid of one zone; the strip arrays
 * start at grid row row0. */
static aw_status zone_rows(aw_ctx *ctx, const aw_zone *z, zone_run *zr,
                           const aw_grid *grid, int row0, int nrows,
                           const float *const index[AW_IDX_COUNT],
                           const uint8_t *water, const uint8_t *qcls)
{
    if (z->w == 0 || z->h == 0)
        return AW_OK;
    int a = z->y0 > row0 ? z->y0 : row0;
    int b = z->y0 + z->h < row0 + nrows ? z->y0 + z->h : row0 + nrows;
    if (a >= b)
        return AW_OK;
    int nth = omp_get_max_threads();
    size_t w = (size_t)z->w;
    aw_zacc *acc = aw_calloc2((size_t)nth * AW_IDX_COUNT, sizeof *acc);
    uint8_t *tmp = aw_calloc2((size_t)nth * w, 2);
    if (!acc || !tmp) {
        free(acc);
        free(tmp);
        return aw_fail(ctx, AW_ERR_NOMEM, "out of memory (zone statistics)");
    }
    for (int t = 0; t < nth; t++)
        for (int i = 0; i < AW_IDX_COUNT; i++)
            aw_zacc_init(&acc[(size_t)t * AW_IDX_COUNT + (size_t)i],
                         aw_index_get((aw_index)i)->hist_lo,
                         aw_index_get((aw_index)i)->hist_hi);
#pragma omp parallel num_threads(nth)
    {
        int t = omp_get_thread_num();
        uint8_t *m = tmp + (size_t)t * 2 * w;
        uint8_t *zm = m + w; /* the zone's row, from its runs */
        aw_zacc *my = acc + (size_t)t * AW_IDX_COUNT;
#pragma omp for schedule(static)
        for (int gy = a; gy < b; gy++) {
            size_t r = (size_t)(gy - z->y0);
            size_t off =
                (size_t)(gy - row0) * (size_t)grid->width + (size_t)z->x0;
            memset(zm, 0, w);
            for (size_t k = z->run_at[r]; k < z->run_at[r + 1]; k++)
                memset(zm + z->runs[2 * k], 1,
                       (size_t)(z->runs[2 * k + 1] - z->runs[2 * k]));
            int64_t nv = 0, nw = 0, nc = 0, ns = 0, nn = 0, nd = 0;
            for (size_t x = 0; x < w; x++) {
                uint8_t q = qcls[off + x];
                uint8_t inz = zm[x] != 0;
                uint8_t in = (uint8_t)(inz && q == AW_Q_VALID);
                m[x] = in;
                nv += in;
                nw += in && water[off + x] == AW_WATER_YES;
                nc += inz && q == AW_Q_CLOUD;
                ns += inz && q == AW_Q_SHADOW;
                nn += inz && q == AW_Q_SNOW;
                nd += inz && (q == AW_Q_NODATA || q == AW_Q_OUTSIDE);
            }
            zr->vrow[r] = nv;
            zr->wrow[r] = nw;
            zr->qrow[4 * r] = nc;
            zr->qrow[4 * r + 1] = ns;
            zr->qrow[4 * r + 2] = nn;
            zr->qrow[4 * r + 3] = nd;
            for (int i = 0; i < AW_IDX_COUNT; i++)
                if (index[i])
                    aw_zacc_add(&my[i], index[i] + off, m, w);
        }
    }
    for (int t = 0; t < nth; t++)
        for (int i = 0; i < AW_IDX_COUNT; i++)
            aw_zacc_merge(&zr->acc[i],
                          &acc[(size_t)t * AW_IDX_COUNT + (size_t)i]);
    free(acc);
    free(tmp);
    return AW_OK;
}

aw_status aw_zones_run_rows(aw_ctx *ctx, const aw_zones *zones, aw_zones_run *r,
                            const aw_grid *grid, int row0, int nrows,
                            const float *const index[AW_IDX_COUNT],
                            const uint8_t *water, const uint8_t *qcls)
{
    for (size_t k = 0; k < zones->n; k++) {
        aw_status st = zone_rows(ctx, &zones->z[k], &r->z[k], grid, row0, nrows,
                                 index, water, qcls);
        if (st != AW_OK)
            return st;
    }
    return AW_OK;
}

void aw_zones_run_reduce(aw_zones_run *r)
{
    if (aw_par_size() < 2)
        return;
    for (size_t k = 0; k < r->n; k++) {
        zone_run *zr = &r->z[k];
        aw_par_sum_i64(zr->vrow, zr->h);
        aw_par_sum_i64(zr->wrow, zr->h);
        aw_par_sum_i64(zr->qrow, 4 * zr->h);
        for (int i = 0; i < AW_IDX_COUNT; i++)
            if (r->has_index[i]) /* 16 KiB each: only the indices run */
                aw_par_merge_zacc(&zr->acc[i], 1);
    }
}

void aw_zones_run_end(const aw_zones *zones, const aw_zones_run *r,
                      const aw_grid *grid, aw_zone_stats *stats)
{
    for (size_t k = 0; k < zones->n; k++) {
        const aw_zone *z = &zones->z[k];
        const zone_run *zr = &r->z[k];
        aw_zone_stats *s = &stats[k];
        memset(s, 0, sizeof *s);
        s->n_pixels = z->n_pixels;
        for (int i = 0; i < AW_IDX_COUNT; i++) {
            s->has_index[i] = r->has_index[i];
            s->mean[i] = s->min[i] = s->max[i] = NAN;
            s->p10[i] = s->p50[i] = s->p90[i] = NAN;
        }
        s->water_fraction = NAN;
        if (z->w == 0 || z->h == 0) {
            s->n_nodata = z->n_pixels; /* all of it outside the region */
            continue;
        }
        for (size_t row = 0; row < (size_t)z->h; row++) {
            double a = aw_grid_cell_area(grid, (long)z->y0 + (long)row) * 1e-6;
            s->n_valid += zr->vrow[row];
            s->n_water += zr->wrow[row];
            s->n_cloud += zr->qrow[4 * row];
            s->n_shadow += zr->qrow[4 * row + 1];
            s->n_snow += zr->qrow[4 * row + 2];
            s->n_nodata += zr->qrow[4 * row + 3];
            s->water_area_km2 += (double)zr->wrow[row] * a;
            s->valid_area_km2 += (double)zr->vrow[row] * a;
        }
        s->n_nodata += z->n_pixels - z->n_in_grid; /* outside the region */
        for (int i = 0; i < AW_IDX_COUNT; i++) {
            const aw_zacc *acc = &zr->acc[i];
            if (!r->has_index[i] || acc->n == 0)
                continue;
            s->mean[i] = aw_zacc_mean(acc);
            s->min[i] = (double)acc->min;
            s->max[i] = (double)acc->max;
            s->p10[i] = aw_zacc_percentile(acc, 10);
            s->p50[i] = aw_zacc_percentile(acc, 50);
            s->p90[i] = aw_zacc_percentile(acc, 90);
        }
        s->valid_fraction =
            s->n_pixels ? (double)s->n_valid / (double)s->n_pixels : 0.0;
        s->water_fraction =
            s->n_valid ? (double)s->n_water / (double)s->n_valid : (double)NAN;
    }
}

aw_status aw_zones_stats(aw_ctx *ctx, const aw_zones *zones,
                         const aw_grid *grid,
                         const float *const index[AW_IDX_COUNT],
                         const uint8_t *water, const uint8_t *qcls,
                         aw_zone_stats *stats)
{
    int has[AW_IDX_COUNT];
    for (int i = 0; i < AW_IDX_COUNT; i++)
        has[i] = index[i] != NULL;
    aw_zones_run *r = NULL;
    aw_status st = aw_zones_run_begin(ctx, zones, has, &r);
    if (st == AW_OK)
        st = aw_zones_run_rows(ctx, zones, r, grid, 0, grid->height, index,
                               water, qcls);
    if (st == AW_OK)
        aw_zones_run_end(zones, r, grid, stats);
    aw_zones_run_free(r);
    return st;
}

double aw_metric_value(const aw_zone_stats *s, aw_metric m)
{
    switch (m) {
    case AW_METRIC_WATER_AREA_KM2:
        return s->water_area_km2;
    case AW_METRIC_WATER_FRACTION:
        return s->water_fraction;
    case AW_METRIC_VALID_FRACTION:
        return s->valid_fraction;
    case AW_METRIC_MEAN_NDVI:
        return s->has_index[AW_IDX_NDVI] ? s->mean[AW_IDX_NDVI] : (double)NAN;
    case AW_METRIC_MEAN_NDWI:
        return s->has_index[AW_IDX_NDWI] ? s->mean[AW_IDX_NDWI] : (double)NAN;
    case AW_METRIC_MEAN_MNDWI:
        return s->has_index[AW_IDX_MNDWI] ? s->mean[AW_IDX_MNDWI] : (double)NAN;
    case AW_METRIC_WATER_AREA_PCT_MEDIAN:
        return s->has_baseline ? s->water_pct_median : (double)NAN;
    case AW_METRIC_LOST_WATER_KM2:
        return s->has_baseline ? s->lost_km2 : (double)NAN;
    case AW_METRIC_NEW_WATER_KM2:
        return s->has_baseline ? s->new_km2 : (double)NAN;
    case AW_METRIC_STRESSED_PCT:
        return s->has_baseline ? s->stressed_pct : (double)NAN;
    case AW_METRIC_MEAN_VCI:
        return s->has_baseline ? s->mean_vci : (double)NAN;
    case AW_METRIC_NDVI_ANOMALY:
        return s->has_baseline ? s->mean_ndvi_z : (double)NAN;
    case AW_METRIC_COUNT:
        break;
    }
    return NAN;
}
