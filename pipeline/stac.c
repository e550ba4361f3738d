/* STAC 1.1.0 metadata of the products.
 *
 * aw_write_stac_item() describes one date folder as a STAC Item
 * (OUT/<region>/<date>/item.json); aw_write_stac_collection() lists every
 * date folder that holds an item.json in OUT/<region>/collection.json.
 *
 * The Item comes from the date's manifest (grid, scenes, quality counts,
 * water method, output checksums) and from the written rasters themselves
 * (data type, nodata, scale/offset, unit, sampling, COG layout), read back
 * with GDAL so that the Item says what the files hold. Field references:
 * stac-spec v1.1.0 item-spec, collection-spec, commons/common-metadata.md
 * and the asset roles of best-practices.md; the extensions projection
 * v2.0.0, raster v2.0.0, processing v1.2.0, eo v2.0.0 and file v2.1.0
 * (DOMAIN.md 6.3). An extension is declared in stac_extensions only when
 * one of its fields is written.
 *
 * Choices:
 * - geometry: the outline of the region grid, 20 segments per edge, in
 *   WGS 84 longitude/latitude, counter-clockwise (RFC 7946), 7 decimals
 *   (about 1 cm). bbox is rounded outwards, so it holds the geometry and
 *   GDAL's OCTTransformBounds of the grid. An outline that crosses the
 *   antimeridian is not split.
 * - datetime: the earliest acquisition time of the used scenes when every
 *   one of them has one on the product date, else null; start_datetime and
 *   end_datetime always span the product's UTC day.
 * - eo:cloud_cover, eo:snow_cover: shares (%) of the observed part of the
 *   mosaic (pixels inside the region that are not input nodata), as for
 *   scenes and zones.
 * - asset keys: the file name without ".tif", other dots turned into '_'
 *   (ndwi, water, water_aux_xml, zones_csv, manifest_json). Roles: index
 *   rasters and source.tif "data", water.tif "data" + "water-mask",
 *   valid.tif "data" + "data-mask", zone tables "data", alerts, manifest and
 *   GDAL side-cars "metadata".
 * - derived_from: one link per used scene, to the product it was read from
 *   (the file or folder its inputs share; the archive of /vsizip/ inputs;
 *   the .SAFE folder of Sentinel-2), as a file:// URI (remote inputs keep
 *   their URL).
 * - Numbers are written with 15 significant digits, so proj:transform
 *   gives back the grid's geotransform. */
#define _XOPEN_SOURCE 700 /* realpath, strndup, strncasecmp */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <jansson.h>
#include <cpl_conv.h>
#include <gdal.h>
#include <ogr_srs_api.h>
#include "aralwatch/util.h"
#include "internal.h"
#include "runwork.h"

#define STAC_VERSION  "1.1.0"
#define EDGE_SEGMENTS 20 /* 21 points per edge of the outline */

static const struct {
    const char *prefix;
    const char *schema;
} extensions[] = {
    {"proj", "https://stac-extensions.github.io/projection/v2.0.0/schema.json"},
    {"raster", "https://stac-extensions.github.io/raster/v2.0.0/schema.json"},
    {"processing",
     "https://stac-extensions.github.io/processing/v1.2.0/schema.json"},
    {"eo", "https://stac-extensions.github.io/eo/v2.0.0/schema.json"},
    {"file", "https://stac-extensions.github.io/file/v2.1.0/schema.json"},
};
#define N_EXTENSIONS (sizeof extensions / sizeof extensions[0])

/* The region grid as the manifest gives it. */
typedef struct stac_grid {
    double gt[6];
    long long width, height;
    double gsd_m; /* pixel size in metres; NaN for a geographic grid */
} stac_grid;

static const char *jstr(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static json_t *jnum(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

/* Nodata as STAC 1.1 writes it: a number, or "nan", "inf", "-inf". */
static json_t *jnodata(double v)
{
    if (isnan(v))
        return json_string("nan");
    if (isinf(v))
        return json_string(v > 0 ? "inf" : "-inf");
    if (v == floor(v) && fabs(v) < 9e15)
        return json_integer((json_int_t)v);
    return json_real(v);
}

static json_t *jstrings(const char *a, const char *b)
{
    json_t *arr = json_array();
    json_array_append_new(arr, json_string(a));
    if (b)
        json_array_append_new(arr, json_string(b));
    return arr;
}

static double round7(double v)
{
    return round(v * 1e7) / 1e7;
}

/* Write a document atomically (temporary name, fsync, rename). */
/* Mark in *used the extensions whose prefix some key under j carries. */
static void used_extensions(json_t *j, unsigned *used)
{
    if (json_is_object(j)) {
        const char *key;
        json_t *v;
        json_object_foreach(j, key, v)
        {
            const char *colon = strchr(key, ':');
            for (size_t e = 0; colon && e < N_EXTENSIONS; e++) {
                size_t n = strlen(extensions[e].prefix);
                if ((size_t)(colon - key) == n &&
                    strncmp(key, extensions[e].prefix, n) == 0)
                    *used |= 1u << e;
            }
            used_extensions(v, used);
        }
    }
    else if (json_is_array(j)) {
        size_t i;
        json_t *v;
        json_array_foreach(j, i, v)
        {
            used_extensions(v, used);
        }
    }
}

/* ---- the scenes' products, for derived_from links ---------------------- */

/* Where a GDAL path's bytes live: the archive of a /vsizip/, /vsitar/ or
 * /vsigzip/ path, the URL behind /vsicurl/, s3:// and gs:// for /vsis3/
 * and /vsigs/; a plain path as it is. New heap string. */
static char *physical_path(const char *p)
{
    static const struct {
        const char *vsi, *scheme;
    } remote[] = {
        {"/vsicurl/", ""}, {"/vsis3/", "s3://"}, {"/vsigs/", "gs://"}};
    for (size_t i = 0; i < sizeof remote / sizeof remote[0]; i++) {
        size_t n = strlen(remote[i].vsi);
        if (strncmp(p, remote[i].vsi, n) == 0)
            return aw_asprintf("%s%s", remote[i].scheme, p + n);
    }
    static const char *const archives[] = {"/vsizip/", "/vsitar/", "/vsigzip/"};
    for (size_t i = 0; i < sizeof archives / sizeof archives[0]; i++) {
        size_t n = strlen(archives[i]);
        if (strncmp(p, archives[i], n) != 0)
            continue;
        const char *rest = p + n;
        const char *close = rest[0] == '{' ? strchr(rest, '}') : NULL;
        if (close) /* /vsizip/{/path/to/a.zip}/inner */
            return strndup(rest + 1, (size_t)(close - rest - 1));
        /* The first prefix of the path that is a regular file. */
        char *copy = aw_strdup(rest);
        if (!copy || !copy[0])
            return copy;
        for (char *s = copy + 1;; s++) {
            if (*s != '/' && *s != '\0')
                continue;
            char c = *s;
            *s = '\0';
            struct stat sb;
            if (stat(copy, &sb) == 0 && S_ISREG(sb.st_mode))
                return copy;
            *s = c;
            if (c == '\0')
                break;
        }
        return copy;
    }
    return aw_strdup(p);
}

/* Shorten a to the longest folder (or the whole path) it shares with b. */
static void common_folder(char *a, const char *b)
{
    size_t k = 0, last = 0;
    while (a[k] && a[k] == b[k]) {
        if (a[k] == '/')
            last = k;
        k++;
    }
    if (a[k] == '\0' && (b[k] == '\0' || b[k] == '/'))
        return; /* a is b, or a folder of b */
    if (b[k] == '\0' && a[k] == '/')
        last = k; /* b is a folder of a */
    if (last == 0)
        last = a[0] == '/' ? 1 : 0; /* only the root is shared */
    a[last] = '\0';
}

/* file:// URI of an absolute path, percent-encoding all but unreserved
 * characters and '/'. */
static char *file_uri(const char *path)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(path);
    if (n > (SIZE_MAX - 16) / 3)
        return NULL;
    char *out = malloc(7 + 3 * n + 1);
    if (!out)
        return NULL;
    memcpy(out, "file://", 7);
    size_t o = 7;
    for (const unsigned char *s = (const unsigned char *)path; *s; s++) {
        unsigned char c = *s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
            (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
            c == '~' || c == '/') {
            out[o++] = (char)c;
        }
        else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
    return out;
}

/* The href of the product a used scene was read from (see the file
 * comment); NULL when its inputs list no path or on no memory. */
static char *scene_product_href(json_t *inputs)
{
    char *common = NULL;
    size_t i;
    json_t *in;
    json_array_foreach(inputs, i, in)
    {
        const char *p = jstr(in, "path");
        if (!p)
            continue;
        char *phys = physical_path(p);
        if (!phys) {
            free(common);
            return NULL;
        }
        if (!common) {
            common = phys;
            continue;
        }
        common_folder(common, phys);
        free(phys);
    }
    if (!common || !common[0]) {
        free(common);
        return NULL;
    }
    if (strstr(common, "://"))
        return common; /* a URL */
    /* Sentinel-2: the .SAFE folder is the product, not its IMG_DATA. */
    for (char *s = common; *s; s++) {
        if (*s == '/' && s - common >= 5 &&
            strncasecmp(s - 5, ".SAFE", 5) == 0) {
            *s = '\0';
            break;
        }
    }
    char resolved[PATH_MAX];
    char *abs = NULL;
    if (realpath(common, resolved))
        abs = aw_strdup(resolved);
    else if (common[0] == '/')
        abs = aw_strdup(common);
    else {
        char cwd[PATH_MAX];
        abs = getcwd(cwd, sizeof cwd) ? aw_path_join(cwd, common) : NULL;
    }
    free(common);
    char *uri = abs ? file_uri(abs) : NULL;
    free(abs);
    return uri;
}

/* ---- platform names ---------------------------------------------------- */

/* "LANDSAT_8" -> "landsat-8", "Sentinel-2B" -> "sentinel-2b" (the STAC
 * convention: lower case, words joined by '-'). */
static void platform_name(const char *in, char *out, size_t n)
{
    size_t k = 0;
    for (; in[k] && k + 1 < n; k++) {
        char c = in[k];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        else if (c == '_' || c == ' ')
            c = '-';
        out[k] = c;
    }
    out[k] = '\0';
}

static const char *constellation_of(const char *platform)
{
    return strncmp(platform, "sentinel-2", 10) == 0 ? "sentinel-2" : NULL;
}

/* Instruments of a platform (NULL-terminated), NULL when not known. */
static const char *const *instruments_of(const char *platform)
{
    static const char *const tm[] = {"tm", NULL};
    static const char *const etm[] = {"etm+", NULL};
    static const char *const oli[] = {"oli", "tirs", NULL};
    static const char *const msi[] = {"msi", NULL};
    if (strcmp(platform, "landsat-4") == 0 ||
        strcmp(platform, "landsat-5") == 0)
        return tm;
    if (strcmp(platform, "landsat-7") == 0)
        return etm;
    if (strcmp(platform, "landsat-8") == 0 ||
        strcmp(platform, "landsat-9") == 0)
        return oli;
    if (strncmp(platform, "sentinel-2", 10) == 0)
        return msi;
    return NULL;
}

static void append_unique(json_t *arr, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        if (strcmp(json_string_value(v), s) == 0)
            return;
    }
    json_array_append_new(arr, json_string(s));
}

/* ---- geometry ---------------------------------------------------------- */

/* The grid's outline as a GeoJSON Polygon in WGS 84 (lon, lat), its bbox,
 * and the projection fields (proj:code or proj:wkt2, proj:bbox) into
 * props. */
static aw_status footprint(aw_ctx *ctx, const char *wkt, stac_grid *g,
                           json_t *props, json_t **geometry, json_t **bbox)
{
    aw_status st = AW_OK;
    enum { NPTS = 4 * EDGE_SEGMENTS + 1 };
    double x[NPTS], y[NPTS];
    OGRSpatialReferenceH src = OSRNewSpatialReference(wkt);
    OGRSpatialReferenceH dst = OSRNewSpatialReference(NULL);
    OGRCoordinateTransformationH ct = NULL;
    char *wkt2 = NULL;
    if (!src || !dst) {
        st =
            aw_fail(ctx, AW_ERR_PROJ, "STAC item: the grid CRS is unusable: %s",
                    aw_gdal_last_error());
        goto done;
    }
    OSRImportFromEPSG(dst, 4326);
    OSRSetAxisMappingStrategy(src, OAMS_TRADITIONAL_GIS_ORDER);
    OSRSetAxisMappingStrategy(dst, OAMS_TRADITIONAL_GIS_ORDER);

    const char *auth = OSRGetAuthorityName(src, NULL);
    const char *code = OSRGetAuthorityCode(src, NULL);
    if (auth && code && strcmp(auth, "EPSG") == 0) {
        char *epsg = aw_asprintf("EPSG:%s", code);
        json_object_set_new(props, "proj:code",
                            epsg ? json_string(epsg) : json_null());
        free(epsg);
    }
    else {
        const char *const opts[] = {"FORMAT=WKT2_2019", "MULTILINE=NO", NULL};
        json_object_set_new(props, "proj:code", json_null());
        if (OSRExportToWktEx(src, &wkt2, opts) == OGRERR_NONE && wkt2)
            json_object_set_new(props, "proj:wkt2", json_string(wkt2));
    }
    g->gsd_m = (double)NAN;
    if (OSRIsProjected(src)) {
        double unit = OSRGetLinearUnits(src, NULL);
        g->gsd_m = sqrt(fabs(g->gt[1] * g->gt[5] - g->gt[2] * g->gt[4])) * unit;
    }

    /* Pixel corners in the order top-left, bottom-left, bottom-right,
     * top-right: counter-clockwise on a north-up grid. */
    const double w = (double)g->width, h = (double)g->height;
    const double pc[4] = {0, 0, w, w}, pr[4] = {0, h, h, 0};
    double pmin[2] = {HUGE_VAL, HUGE_VAL}, pmax[2] = {-HUGE_VAL, -HUGE_VAL};
    int k = 0;
    for (int e = 0; e < 4; e++) {
        for (int s = 0; s < EDGE_SEGMENTS; s++, k++) {
            double t = (double)s / EDGE_SEGMENTS;
            double c = pc[e] + (pc[(e + 1) % 4] - pc[e]) * t;
            double r = pr[e] + (pr[(e + 1) % 4] - pr[e]) * t;
            x[k] = g->gt[0] + c * g->gt[1] + r * g->gt[2];
            y[k] = g->gt[3] + c * g->gt[4] + r * g->gt[5];
            pmin[0] = fmin(pmin[0], x[k]);
            pmax[0] = fmax(pmax[0], x[k]);
            pmin[1] = fmin(pmin[1], y[k]);
            pmax[1] = fmax(pmax[1], y[k]);
        }
    }
    x[k] = x[0];
    y[k] = y[0];
    json_t *pb = json_array();
    json_array_append_new(pb, json_real(pmin[0]));
    json_array_append_new(pb, json_real(pmin[1]));
    json_array_append_new(pb, json_real(pmax[0]));
    json_array_append_new(pb, json_real(pmax[1]));
    json_object_set_new(props, "proj:bbox", pb);

    ct = OCTNewCoordinateTransformation(src, dst);
    if (!ct || !OCTTransform(ct, NPTS, x, y, NULL)) {
        st = aw_fail(ctx, AW_ERR_PROJ,
                     "STAC item: cannot transform the grid outline to WGS 84: "
                     "%s",
                     aw_gdal_last_error());
        goto done;
    }
    /* Keep the ring counter-clockwise (RFC 7946) whatever the grid's axes. */
    double area2 = 0;
    for (int i = 0; i + 1 < NPTS; i++)
        area2 += x[i] * y[i + 1] - x[i + 1] * y[i];
    double lo[2] = {HUGE_VAL, HUGE_VAL}, hi[2] = {-HUGE_VAL, -HUGE_VAL};
    json_t *ring = json_array();
    for (int i = 0; i < NPTS; i++) {
        int j = area2 < 0 ? NPTS - 1 - i : i;
        json_t *pt = json_array();
        json_array_append_new(pt, json_real(round7(x[j])));
        json_array_append_new(pt, json_real(round7(y[j])));
        json_array_append_new(ring, pt);
        lo[0] = fmin(lo[0], x[j]);
        hi[0] = fmax(hi[0], x[j]);
        lo[1] = fmin(lo[1], y[j]);
        hi[1] = fmax(hi[1], y[j]);
    }
    /* Also hold GDAL's own densified transform of the bounds. */
    double tb[4];
    if (OCTTransformBounds(ct, pmin[0], pmin[1], pmax[0], pmax[1], &tb[0],
                           &tb[1], &tb[2], &tb[3], 21) &&
        tb[0] <= tb[2]) {
        lo[0] = fmin(lo[0], tb[0]);
        lo[1] = fmin(lo[1], tb[1]);
        hi[0] = fmax(hi[0], tb[2]);
        hi[1] = fmax(hi[1], tb[3]);
    }
    json_t *coords = json_array();
    json_array_append_new(coords, ring);
    *geometry = json_object();
    json_object_set_new(*geometry, "type", json_string("Polygon"));
    json_object_set_new(*geometry, "coordinates", coords);
    *bbox = json_array();
    json_array_append_new(*bbox, json_real(floor(lo[0] * 1e7) / 1e7));
    json_array_append_new(*bbox, json_real(floor(lo[1] * 1e7) / 1e7));
    json_array_append_new(*bbox, json_real(ceil(hi[0] * 1e7) / 1e7));
    json_array_append_new(*bbox, json_real(ceil(hi[1] * 1e7) / 1e7));
done:
    CPLFree(wkt2);
    if (ct)
        OCTDestroyCoordinateTransformation(ct);
    if (src)
        OSRDestroySpatialReference(src);
    if (dst)
        OSRDestroySpatialReference(dst);
    return st;
}

/* ---- assets ------------------------------------------------------------ */

static const char *stac_data_type(GDALDataType t)
{
    static const struct {
        GDALDataType t;
        const char *name;
    } types[] = {
        {GDT_Byte, "uint8"},        {GDT_UInt16, "uint16"},
        {GDT_Int16, "int16"},       {GDT_UInt32, "uint32"},
        {GDT_Int32, "int32"},       {GDT_UInt64, "uint64"},
        {GDT_Int64, "int64"},       {GDT_Float32, "float32"},
        {GDT_Float64, "float64"},   {GDT_CInt16, "cint16"},
        {GDT_CInt32, "cint32"},     {GDT_CFloat32, "cfloat32"},
        {GDT_CFloat64, "cfloat64"},
    };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (types[i].t == t)
            return types[i].name;
    return "other";
}

/* Title and second role of the class rasters; other rasters are indices. */
static const struct {
    const char *stem, *title, *role;
} class_rasters[] = {
    {"water", "Water classes", "water-mask"},
    {"valid", "Pixel quality classes", "data-mask"},
    {"source", "Source scene of each pixel", NULL},
    {"wofl", "WOfS water observation flags", NULL},
};

/* Media type, role and title of the files that are not rasters. */
static const struct {
    const char *file, *type, *role, *title;
} other_files[] = {
    {"zones.csv", "text/csv", "data", "Zone statistics (CSV)"},
    {"zones.json", "application/json", "data", "Zone statistics (JSON)"},
    {"alerts.json", "application/json", "metadata",
     "Alerts and insufficient-data notices"},
    {"manifest.json", "application/json", "metadata",
     "Provenance manifest: scenes, inputs with SHA-256, software, grid, "
     "timings"},
};

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Asset key of a file: the name without ".tif", other dots as '_'. */
static char *asset_key(const char *file)
{
    char *key = aw_strdup(file);
    if (!key)
        return NULL;
    size_t n = strlen(key);
    if (ends_with(key, ".tif"))
        key[n - 4] = '\0';
    for (char *s = key; *s; s++)
        if (*s == '.')
            *s = '_';
    return key;
}

/* Fill a raster asset from the file: media type, bands (name, description,
 * data_type, nodata, unit, raster:scale/offset, raster:sampling,
 * raster:spatial_resolution), and proj:shape/proj:transform when its grid
 * is not the Item's. *is_index is set for float rasters that are not class
 * rasters. */
static aw_status raster_asset(aw_ctx *ctx, const char *path, const char *stem,
                              const stac_grid *g, json_t *asset, int *is_index)
{
    GDALDatasetH ds = NULL;
    aw_status st = aw_open_raster(ctx, path, &ds);
    if (st != AW_OK)
        return st;
    const char *layout = GDALGetMetadataItem(ds, "LAYOUT", "IMAGE_STRUCTURE");
    int cog = layout && strcmp(layout, "COG") == 0;
    json_object_set_new(asset, "type",
                        json_string(cog ? "image/tiff; application=geotiff; "
                                          "profile=cloud-optimized"
                                        : "image/tiff; application=geotiff"));

    const char *title = NULL, *role2 = NULL;
    for (size_t i = 0; i < sizeof class_rasters / sizeof class_rasters[0]; i++)
        if (strcmp(stem, class_rasters[i].stem) == 0) {
            title = class_rasters[i].title;
            role2 = class_rasters[i].role;
        }
    char upper[64];
    if (!title) {
        size_t k = 0;
        for (; stem[k] && k + 1 < sizeof upper; k++)
            upper[k] =
                (char)(stem[k] >= 'a' && stem[k] <= 'z' ? stem[k] - 'a' + 'A'
                                                        : stem[k]);
        upper[k] = '\0';
        char *t = aw_asprintf("%s index", upper);
        json_object_set_new(asset, "title", json_string(t ? t : stem));
        free(t);
    }
    else {
        json_object_set_new(asset, "title", json_string(title));
    }
    json_object_set_new(asset, "roles", jstrings("data", role2));

    double gt[6];
    int w = GDALGetRasterXSize(ds), h = GDALGetRasterYSize(ds);
    int has_gt = GDALGetGeoTransform(ds, gt) == CE_None;
    int same = w == g->width && h == g->height && has_gt;
    for (int i = 0; same && i < 6; i++)
        same = fabs(gt[i] - g->gt[i]) <= 1e-9 * fmax(1.0, fabs(g->gt[i]));
    if (!same) {
        json_t *shape = json_array();
        json_array_append_new(shape, json_integer(h));
        json_array_append_new(shape, json_integer(w));
        json_object_set_new(asset, "proj:shape", shape);
        if (has_gt) {
            static const int order[6] = {1, 2, 0, 4, 5, 3};
            json_t *tr = json_array();
            for (int i = 0; i < 6; i++)
                json_array_append_new(tr, json_real(gt[order[i]]));
            json_object_set_new(asset, "proj:transform", tr);
        }
    }

    /* Read at once: later GDAL calls may free the metadata string. */
    const char *aop = GDALGetMetadataItem(ds, "AREA_OR_POINT", NULL);
    const char *sampling = !aop                            ? NULL
                           : strcasecmp(aop, "Point") == 0 ? "point"
                           : strcasecmp(aop, "Area") == 0  ? "area"
                                                           : NULL;
    json_t *bands = json_array();
    int nb = GDALGetRasterCount(ds);
    int is_float = 0;
    for (int b = 1; b <= nb; b++) {
        GDALRasterBandH band = GDALGetRasterBand(ds, b);
        json_t *o = json_object();
        char *name = nb == 1 ? aw_strdup(stem) : aw_asprintf("%s_%d", stem, b);
        json_object_set_new(o, "name", json_string(name ? name : stem));
        free(name);
        const char *desc = GDALGetDescription(band);
        if (desc && desc[0])
            json_object_set_new(o, "description", json_string(desc));
        GDALDataType dt = GDALGetRasterDataType(band);
        is_float |= dt == GDT_Float32 || dt == GDT_Float64;
        json_object_set_new(o, "data_type", json_string(stac_data_type(dt)));
        int ok = 0;
        double nodata = GDALGetRasterNoDataValue(band, &ok);
        if (ok)
            json_object_set_new(o, "nodata", jnodata(nodata));
        const char *unit = GDALGetRasterUnitType(band);
        if (unit && unit[0])
            json_object_set_new(o, "unit", json_string(unit));
        int has_scale = 0, has_offset = 0;
        double scale = GDALGetRasterScale(band, &has_scale);
        double offset = GDALGetRasterOffset(band, &has_offset);
        if ((has_scale && scale != 1.0) || (has_offset && offset != 0.0)) {
            json_object_set_new(o, "raster:scale", jnum(scale));
            json_object_set_new(o, "raster:offset", jnum(offset));
        }
        if (sampling)
            json_object_set_new(o, "raster:sampling", json_string(sampling));
        if (isfinite(g->gsd_m))
            json_object_set_new(o, "raster:spatial_resolution",
                                json_real(g->gsd_m));
        json_array_append_new(bands, o);
    }
    json_object_set_new(asset, "bands", bands);
    *is_index = is_float && !title;
    GDALClose(ds); /* read-only: nothing to flush */
    return AW_OK;
}

/* One asset per file listed in the manifest's outputs, then manifest.json.
 * The names of the index rasters go to *indices (comma-separated). */
static aw_status build_assets(aw_ctx *ctx, const char *dir, json_t *outputs,
                              const stac_grid *g, json_t *assets,
                              char **indices)
{
    aw_status st = AW_OK;
    json_t *all = json_deep_copy(outputs);
    json_t *mf = json_object();
    json_object_set_new(mf, "file", json_string("manifest.json"));
    json_array_append_new(all, mf);
    char *manifest_path = aw_path_join(dir, "manifest.json");
    char hex[65];
    struct stat sb;
    if (manifest_path && aw_sha256_file(ctx, manifest_path, hex) == AW_OK &&
        stat(manifest_path, &sb) == 0) {
        json_object_set_new(mf, "sha256", json_string(hex));
        json_object_set_new(mf, "bytes", json_integer(sb.st_size));
    }
    free(manifest_path);

    size_t i;
    json_t *out;
    json_array_foreach(all, i, out)
    {
        const char *file = jstr(out, "file");
        if (!file)
            continue;
        char *key = asset_key(file);
        char *href = aw_asprintf("./%s", file);
        char *path = aw_path_join(dir, file);
        json_t *a = json_object();
        if (!key || !href || !path) {
            st = aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
        }
        else {
            json_object_set_new(a, "href", json_string(href));
            if (ends_with(file, ".tif")) {
                int is_index = 0;
                st = raster_asset(ctx, path, key, g, a, &is_index);
                if (st == AW_OK && is_index) {
                    char *joined = *indices
                                       ? aw_asprintf("%s, %s", *indices, key)
                                       : aw_strdup(key);
                    free(*indices);
                    *indices = joined;
                }
            }
            else if (ends_with(file, ".aux.xml")) {
                char *t = aw_asprintf("GDAL side-car of %.*s (class names)",
                                      (int)(strlen(file) - 8), file);
                json_object_set_new(a, "type", json_string("application/xml"));
                json_object_set_new(a, "title", json_string(t ? t : file));
                json_object_set_new(a, "roles", jstrings("metadata", NULL));
                free(t);
            }
            else {
                size_t k = 0, n = sizeof other_files / sizeof other_files[0];
                while (k < n && strcmp(other_files[k].file, file) != 0)
                    k++;
                const char *type = k < n ? other_files[k].type
                                   : ends_with(file, ".json")
                                       ? "application/json"
                                   : ends_with(file, ".csv") ? "text/csv"
                                                             : NULL;
                if (type)
                    json_object_set_new(a, "type", json_string(type));
                json_object_set_new(
                    a, "title",
                    json_string(k < n ? other_files[k].title : file));
                json_object_set_new(
                    a, "roles",
                    jstrings(k < n ? other_files[k].role : "metadata", NULL));
            }
            const char *sha = jstr(out, "sha256");
            json_t *bytes = json_object_get(out, "bytes");
            if (sha) {
                char *mh = aw_asprintf("1220%s", sha); /* multihash sha2-256 */
                json_object_set_new(a, "file:checksum",
                                    mh ? json_string(mh) : json_null());
                free(mh);
            }
            if (json_is_integer(bytes))
                json_object_set_new(a, "file:size",
                                    json_integer(json_integer_value(bytes)));
            json_object_set_new(assets, key, a);
            a = NULL;
        }
        json_decref(a);
        free(key);
        free(href);
        free(path);
        if (st != AW_OK)
            break;
    }
    json_decref(all);
    return st;
}

/* ---- the Item ---------------------------------------------------------- */

/* processing:expression and the water part of processing:lineage. */
static char *water_text(json_t *water)
{
    const char *method = jstr(water, "method");
    const char *index = jstr(water, "index");
    json_t *thr = json_object_get(water, "threshold");
    if (!method)
        return aw_strdup("unknown water method");
    if (strcmp(method, "dswe") == 0)
        return aw_asprintf(
            "USGS DSWE decision rules (classes 1 high and 2 moderate "
            "confidence are water)%s",
            json_is_true(json_object_get(water, "terrain_filter"))
                ? ", with the DEM terrain filter"
                : "");
    if (strcmp(method, "wofs") == 0)
        return aw_strdup("WOfS decision tree (wet observations are water)");
    const char *how = strcmp(method, "otsu") != 0 ? "fixed threshold"
                      : json_is_true(json_object_get(water, "otsu_fallback"))
                          ? "Otsu found no split; fixed threshold"
                          : "Otsu threshold of the date's histogram";
    return aw_asprintf("water = %s > %.9g (%s)", index ? index : "?",
                       json_number_value(thr), how);
}

/* The used scenes: derived_from links, acquisition time, platforms. */
static aw_status scene_fields(aw_ctx *ctx, json_t *scenes, const char *date,
                              json_t *links, json_t *props, char **ids,
                              size_t *n_used)
{
    char earliest[32] = "";
    int all_timed = 1;
    char first_platform[64] = "";
    const char *constellation = NULL;
    int same_platform = 1, same_constellation = 1;
    json_t *instruments = json_array();
    size_t i;
    json_t *s;
    *n_used = 0;
    json_array_foreach(scenes, i, s)
    {
        const char *status = jstr(s, "status");
        const char *id = jstr(s, "id");
        if (!status || strcmp(status, "used") != 0 || !id)
            continue;
        (*n_used)++;
        char *joined = *ids ? aw_asprintf("%s, %s", *ids, id) : aw_strdup(id);
        free(*ids);
        *ids = joined;
        char *href = scene_product_href(json_object_get(s, "inputs"));
        if (href) {
            json_t *l = json_object();
            json_object_set_new(l, "rel", json_string("derived_from"));
            json_object_set_new(l, "href", json_string(href));
            json_object_set_new(l, "title", json_string(id));
            json_array_append_new(links, l);
        }
        else {
            aw_log(ctx, AW_LOG_WARN,
                   "STAC item: scene %s lists no input path; no derived_from "
                   "link",
                   id);
        }
        free(href);
        const char *dt = jstr(s, "datetime");
        if (dt && strlen(dt) < sizeof earliest && strncmp(dt, date, 10) == 0) {
            if (!earliest[0] || strcmp(dt, earliest) < 0)
                snprintf(earliest, sizeof earliest, "%s", dt);
        }
        else {
            all_timed = 0;
        }
        const char *pf = jstr(s, "platform");
        char name[64] = "";
        if (pf)
            platform_name(pf, name, sizeof name);
        if (*n_used == 1)
            snprintf(first_platform, sizeof first_platform, "%s", name);
        else if (strcmp(first_platform, name) != 0)
            same_platform = 0;
        const char *c = name[0] ? constellation_of(name) : NULL;
        if (*n_used == 1)
            constellation = c;
        else if (!c || !constellation || strcmp(c, constellation) != 0)
            same_constellation = 0;
        const char *const *ins = name[0] ? instruments_of(name) : NULL;
        for (size_t k = 0; ins && ins[k]; k++)
            append_unique(instruments, ins[k]);
    }
    if (!*ids)
        *ids = aw_strdup("none");
    json_object_set_new(props, "datetime",
                        all_timed && earliest[0] ? json_string(earliest)
                                                 : json_null());
    if (same_platform && first_platform[0])
        json_object_set_new(props, "platform", json_string(first_platform));
    if (same_constellation && constellation)
        json_object_set_new(props, "constellation", json_string(constellation));
    if (json_array_size(instruments) > 0)
        json_object_set_new(props, "instruments", instruments);
    else
        json_decref(instruments);
    return *ids ? AW_OK : aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
}

/* eo:cloud_cover and eo:snow_cover of the mosaic (see the file comment). */
static void cover_fields(json_t *pixels, json_t *props)
{
    long long total = 0;
    const char *key;
    json_t *v;
    json_object_foreach(pixels, key, v)
    {
        total += json_integer_value(v);
    }
    long long observed =
        total - json_integer_value(json_object_get(pixels, "outside")) -
        json_integer_value(json_object_get(pixels, "nodata"));
    if (observed <= 0)
        return;
    double cloud = (double)json_integer_value(json_object_get(pixels, "cloud"));
    double snow = (double)json_integer_value(json_object_get(pixels, "snow"));
    json_object_set_new(props, "eo:cloud_cover",
                        json_real(100.0 * cloud / (double)observed));
    json_object_set_new(props, "eo:snow_cover",
                        json_real(100.0 * snow / (double)observed));
}

aw_status aw_write_stac_item(aw_ctx *ctx, const char *dir, json_t *m)
{
    aw_status st = AW_OK;
    json_t *region = json_object_get(m, "region");
    json_t *gtj = json_object_get(region, "geotransform");
    const char *name = jstr(region, "name");
    const char *wkt = jstr(region, "crs_wkt");
    const char *date = jstr(m, "date");
    const char *created = jstr(m, "created");
    json_t *sw = json_object_get(m, "software");
    const char *version = jstr(sw, "version");
    if (!name || !wkt || !date || strlen(date) != 10 || !created || !version ||
        json_array_size(gtj) != 6 ||
        !json_is_integer(json_object_get(region, "width")) ||
        !json_is_integer(json_object_get(region, "height")))
        return aw_fail(ctx, AW_ERR_INTERNAL,
                       "STAC item: the manifest in %s lacks the region grid, "
                       "date or software",
                       dir);
    stac_grid g;
    memset(&g, 0, sizeof g);
    for (size_t i = 0; i < 6; i++)
        g.gt[i] = json_number_value(json_array_get(gtj, i));
    g.width = json_integer_value(json_object_get(region, "width"));
    g.height = json_integer_value(json_object_get(region, "height"));

    json_t *item = json_object();
    json_t *exts = json_array();
    json_t *props = json_object();
    json_t *links = json_array();
    json_t *assets = json_object();
    json_t *geometry = NULL, *bbox = NULL;
    char *id = aw_asprintf("%s_%s", name, date);
    char *title = aw_asprintf("%s %s", name, date);
    char *ids = NULL, *indices = NULL, *water = NULL, *lineage = NULL;
    char *path = aw_path_join(dir, "item.json");
    if (!id || !title || !path) {
        st = aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
        goto done;
    }

    /* Properties, in the order a reader looks for them. */
    json_object_set_new(props, "title", json_string(title));
    json_object_set_new(props, "datetime", json_null()); /* set below */
    char day[32];
    snprintf(day, sizeof day, "%sT00:00:00Z", date);
    json_object_set_new(props, "start_datetime", json_string(day));
    snprintf(day, sizeof day, "%sT23:59:59Z", date);
    json_object_set_new(props, "end_datetime", json_string(day));
    json_object_set_new(props, "created", json_string(created));
    size_t n_used = 0;
    st = scene_fields(ctx, json_object_get(m, "scenes"), date, links, props,
                      &ids, &n_used);
    if (st != AW_OK)
        goto done;
    st = footprint(ctx, wkt, &g, props, &geometry, &bbox);
    if (st != AW_OK)
        goto done;
    if (isfinite(g.gsd_m))
        json_object_set_new(props, "gsd", json_real(g.gsd_m));
    cover_fields(json_object_get(m, "pixels"), props);
    json_t *shape = json_array();
    json_array_append_new(shape, json_integer(g.height));
    json_array_append_new(shape, json_integer(g.width));
    json_object_set_new(props, "proj:shape", shape);
    /* STAC order a, b, c, d, e, f of x = a col + b row + c,
     * y = d col + e row + f. */
    static const int order[6] = {1, 2, 0, 4, 5, 3};
    json_t *tr = json_array();
    for (int i = 0; i < 6; i++)
        json_array_append_new(tr, json_real(g.gt[order[i]]));
    json_object_set_new(props, "proj:transform", tr);

    st = build_assets(ctx, dir, json_object_get(m, "outputs"), &g, assets,
                      &indices);
    if (st != AW_OK)
        goto done;

    json_t *wa = json_object_get(m, "water");
    water = water_text(wa);
    const char *order_name = jstr(m, "mosaic_order");
    lineage = aw_asprintf(
        "Mosaic of %zu scene(s) (%s) acquired on %s, warped onto the %s "
        "region grid and combined per pixel in '%s' mosaic order. Nodata, "
        "cloud, cloud shadow and snow were masked from each scene's quality "
        "band; the spectral indices (%s) were computed per pixel from the "
        "scaled reflectance; water was classified with %s. Zone "
        "statistics and alerts come from the classified mosaic. The inputs "
        "and their SHA-256 checksums are listed in manifest.json.",
        n_used, ids, date, name, order_name ? order_name : "?",
        indices ? indices : "none", water ? water : "?");
    if (!water || !lineage) {
        st = aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
        goto done;
    }
    json_t *software = json_object();
    const char *git = jstr(sw, "git_sha");
    char *full = git && strcmp(git, "unknown") != 0
                     ? aw_asprintf("%s+%s", version, git)
                     : aw_strdup(version);
    json_object_set_new(software, "aralwatch",
                        json_string(full ? full : version));
    free(full);
    if (jstr(sw, "gdal"))
        json_object_set_new(software, "GDAL", json_string(jstr(sw, "gdal")));
    if (jstr(sw, "proj"))
        json_object_set_new(software, "PROJ", json_string(jstr(sw, "proj")));
    json_object_set_new(props, "processing:software", software);
    json_object_set_new(props, "processing:version", json_string(version));
    json_object_set_new(props, "processing:level", json_string("L3"));
    json_object_set_new(props, "processing:datetime", json_string(created));
    json_object_set_new(props, "processing:lineage", json_string(lineage));
    json_t *expr = json_object();
    json_object_set_new(expr, "format", json_string("text"));
    json_object_set_new(expr, "expression", json_string(water));
    json_object_set_new(props, "processing:expression", expr);

    /* Structural links: the region's collection.json one folder up. */
    static const char *const up[] = {"collection", "parent", "root"};
    for (size_t i = 0; i < 3; i++) {
        json_t *l = json_object();
        json_object_set_new(l, "rel", json_string(up[i]));
        json_object_set_new(l, "href", json_string("../collection.json"));
        json_object_set_new(l, "type", json_string("application/json"));
        json_object_set_new(l, "title", json_string(name));
        json_array_insert_new(links, i, l);
    }

    json_object_set_new(item, "type", json_string("Feature"));
    json_object_set_new(item, "stac_version", json_string(STAC_VERSION));
    json_object_set(item, "stac_extensions", exts);
    json_object_set_new(item, "id", json_string(id));
    json_object_set_new(item, "collection", json_string(name));
    json_object_set_new(item, "geometry", geometry);
    json_object_set_new(item, "bbox", bbox);
    geometry = bbox = NULL;
    json_object_set(item, "properties", props);
    json_object_set(item, "links", links);
    json_object_set(item, "assets", assets);
    unsigned used = 0;
    used_extensions(props, &used);
    used_extensions(assets, &used);
    for (size_t e = 0; e < N_EXTENSIONS; e++)
        if (used & (1u << e))
            json_array_append_new(exts, json_string(extensions[e].schema));
    st = aw_write_json_digits(ctx, path, item, 15);
done:
    json_decref(item);
    json_decref(exts);
    json_decref(props);
    json_decref(links);
    json_decref(assets);
    json_decref(geometry);
    json_decref(bbox);
    free(id);
    free(title);
    free(ids);
    free(indices);
    free(water);
    free(lineage);
    free(path);
    return st;
}

/* ---- the Collection ---------------------------------------------------- */

static int is_date_name(const char *s)
{
    static const char pattern[] = "dddd-dd-dd";
    for (size_t i = 0; i < sizeof pattern - 1; i++) {
        if (pattern[i] == 'd' ? !(s[i] >= '0' && s[i] <= '9') : s[i] != '-')
            return 0;
    }
    return s[sizeof pattern - 1] == '\0';
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The date folders of region_dir, sorted. */
static aw_status list_dates(aw_ctx *ctx, const char *region_dir, char ***out,
                            size_t *n_out)
{
    DIR *d = opendir(region_dir);
    if (!d)
        return aw_fail(ctx, AW_ERR_IO, "cannot list %s: %s", region_dir,
                       strerror(errno));
    char **v = NULL;
    size_t n = 0, cap = 0;
    aw_status st = AW_OK;
    struct dirent *e;
    while (st == AW_OK && (e = readdir(d)) != NULL) {
        if (!is_date_name(e->d_name))
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            char **nv = realloc(v, cap * sizeof *nv);
            if (!nv) {
                st = aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
                break;
            }
            v = nv;
        }
        v[n] = aw_strdup(e->d_name);
        if (!v[n])
            st = aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
        else
            n++;
    }
    closedir(d);
    if (st != AW_OK) {
        for (size_t i = 0; i < n; i++)
            free(v[i]);
        free(v);
        return st;
    }
    if (n > 1)
        qsort(v, n, sizeof *v, cmp_str);
    *out = v;
    *n_out = n;
    return AW_OK;
}

aw_status aw_write_stac_collection(aw_ctx *ctx, const char *region_dir,
                                   const char *region_name)
{
    char **dates = NULL;
    size_t n_dates = 0;
    aw_status st = list_dates(ctx, region_dir, &dates, &n_dates);
    if (st != AW_OK)
        return st;
    json_t *links = json_array();
    double lo[2] = {HUGE_VAL, HUGE_VAL}, hi[2] = {-HUGE_VAL, -HUGE_VAL};
    char t0[32] = "", t1[32] = "";
    size_t n_items = 0;
    json_t *root = json_object();
    json_object_set_new(root, "rel", json_string("root"));
    json_object_set_new(root, "href", json_string("./collection.json"));
    json_object_set_new(root, "type", json_string("application/json"));
    json_object_set_new(root, "title", json_string(region_name));
    json_array_append_new(links, root);
    for (size_t i = 0; i < n_dates && st == AW_OK; i++) {
        char *rel = aw_asprintf("%s/item.json", dates[i]);
        char *path = rel ? aw_path_join(region_dir, rel) : NULL;
        if (!path) {
            st = aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
            free(rel);
            break;
        }
        struct stat sb;
        json_error_t jerr;
        json_t *it =
            stat(path, &sb) == 0 ? json_load_file(path, 0, &jerr) : NULL;
        json_t *bbox = json_object_get(it, "bbox");
        json_t *props = json_object_get(it, "properties");
        const char *start = jstr(props, "start_datetime");
        const char *end = jstr(props, "end_datetime");
        if (!start)
            start = jstr(props, "datetime");
        if (!end)
            end = jstr(props, "datetime");
        if (it && json_array_size(bbox) == 4 && start && end &&
            strlen(start) < sizeof t0 && strlen(end) < sizeof t1) {
            for (size_t k = 0; k < 2; k++) {
                lo[k] = fmin(lo[k], json_number_value(json_array_get(bbox, k)));
                hi[k] =
                    fmax(hi[k], json_number_value(json_array_get(bbox, k + 2)));
            }
            if (!t0[0] || strcmp(start, t0) < 0)
                snprintf(t0, sizeof t0, "%s", start);
            if (!t1[0] || strcmp(end, t1) > 0)
                snprintf(t1, sizeof t1, "%s", end);
            char *href = aw_asprintf("./%s", rel);
            const char *ititle = jstr(props, "title");
            json_t *l = json_object();
            json_object_set_new(l, "rel", json_string("item"));
            json_object_set_new(l, "href", json_string(href ? href : rel));
            json_object_set_new(l, "type", json_string("application/geo+json"));
            json_object_set_new(l, "title",
                                json_string(ititle ? ititle : dates[i]));
            json_array_append_new(links, l);
            free(href);
            n_items++;
        }
        else if (stat(path, &sb) == 0) {
            aw_log(ctx, AW_LOG_WARN,
                   "%s: not a readable STAC item, left out of "
                   "collection.json",
                   path);
        }
        json_decref(it);
        free(rel);
        free(path);
    }
    for (size_t i = 0; i < n_dates; i++)
        free(dates[i]);
    free(dates);
    if (st != AW_OK || n_items == 0) {
        json_decref(links);
        return st;
    }

    json_t *c = json_object();
    json_object_set_new(c, "type", json_string("Collection"));
    json_object_set_new(c, "stac_version", json_string(STAC_VERSION));
    json_object_set_new(c, "stac_extensions", json_array());
    json_object_set_new(c, "id", json_string(region_name));
    json_object_set_new(c, "title", json_string(region_name));
    char *desc = aw_asprintf(
        "aralwatch products of region %s: per date, a mosaic of the "
        "date's scenes with water and vegetation indices, water classes, "
        "pixel quality, zone statistics, alerts and a provenance manifest.",
        region_name);
    json_object_set_new(c, "description",
                        json_string(desc ? desc : region_name));
    free(desc);
    json_t *kw = json_array();
    json_array_append_new(kw, json_string("surface water"));
    json_array_append_new(kw, json_string("cropland"));
    json_array_append_new(kw, json_string("spectral indices"));
    json_object_set_new(c, "keywords", kw);
    /* Not an SPDX licence: the products inherit the terms of their inputs
     * and of whoever runs the pipeline. */
    json_object_set_new(c, "license", json_string("other"));
    json_t *bb = json_array();
    json_array_append_new(bb, json_real(lo[0]));
    json_array_append_new(bb, json_real(lo[1]));
    json_array_append_new(bb, json_real(hi[0]));
    json_array_append_new(bb, json_real(hi[1]));
    json_t *bboxes = json_array();
    json_array_append_new(bboxes, bb);
    json_t *spatial = json_object();
    json_object_set_new(spatial, "bbox", bboxes);
    json_t *iv = json_array();
    json_array_append_new(iv, json_string(t0));
    json_array_append_new(iv, json_string(t1));
    json_t *ivs = json_array();
    json_array_append_new(ivs, iv);
    json_t *temporal = json_object();
    json_object_set_new(temporal, "interval", ivs);
    json_t *extent = json_object();
    json_object_set_new(extent, "spatial", spatial);
    json_object_set_new(extent, "temporal", temporal);
    json_object_set_new(c, "extent", extent);
    json_object_set_new(c, "links", links);
    char *path = aw_path_join(region_dir, "collection.json");
    st = path ? aw_write_json_digits(ctx, path, c, 15)
              : aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    free(path);
    json_decref(c);
    return st;
}
