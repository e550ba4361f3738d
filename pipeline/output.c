/* Writing one date's products: index COGs, water/quality/source class
 * rasters, zone statistics (CSV, JSON), alerts and the provenance manifest.
 *
 * Everything goes into a staging folder OUT/<region>/.<date>.partial-<pid>/;
 * the folder is renamed to OUT/<region>/<date>/ only when every file is
 * complete (an older folder of that date is moved aside first and removed
 * after the swap), so a reader never sees a half-written product set. */
#define _GNU_SOURCE /* renameat2 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <proj.h>
#include <cpl_conv.h>
#include <cpl_minixml.h>
#include <cpl_string.h>
#include <sqlite3.h>
#include "aralwatch/profile.h"
#include "aralwatch/util.h"
#include "aralwatch/version.h"
#include "alerts.h"
#include "baseline.h"
#include "internal.h"
#include "par.h"
#include "runwork.h"

static char **provenance(const run_state *rs, const date_work *w)
{
    char **md = NULL;
    md = CSLSetNameValue(md, "AW_SOFTWARE", "aralwatch " AW_VERSION);
    md = CSLSetNameValue(md, "AW_GIT_SHA", AW_GIT_SHA);
    md = CSLSetNameValue(md, "AW_REGION", rs->cfg->region_name);
    md = CSLSetNameValue(md, "AW_DATE", w->date);
    char ids[1024];
    size_t used = 0;
    ids[0] = '\0';
    for (size_t i = 0; i < w->n_sb && used < sizeof ids; i++) {
        if (w->sb[i].status != SCENE_USED)
            continue;
        int k = snprintf(ids + used, sizeof ids - used, "%s%s", used ? "," : "",
                         w->sb[i].sc->id);
        if (k > 0)
            used += (size_t)k;
    }
    md = CSLSetNameValue(md, "AW_SCENE_ID", ids);
    md = CSLSetNameValue(md, "AW_CONFIG_SHA256", rs->cfg->sha256);
    return md;
}

static void json_num(json_t *o, const char *k, double v)
{
    json_object_set_new(o, k, isfinite(v) ? json_real(v) : json_null());
}

static void csv_num(FILE *f, double v)
{
    if (isfinite(v))
        fprintf(f, ",%.9g", v);
    else
        fputs(",", f);
}

static void csv_text(FILE *f, const char *s)
{
    fputc(',', f);
    if (!strpbrk(s, ",\"\n\r")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static aw_status write_text(aw_ctx *ctx, const char *dir, const char *name,
                            const char *text)
{
    char *path = aw_path_join(dir, name);
    if (!path)
        return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    aw_status st = aw_write_file_atomic(ctx, path, text, strlen(text));
    free(path);
    return st;
}

aw_status aw_write_json_file(aw_ctx *ctx, const char *path, json_t *j)
{
    return aw_write_json_digits(ctx, path, j, 10);
}

aw_status aw_write_json_digits(aw_ctx *ctx, const char *path, json_t *j,
                               int digits)
{
    char *text =
        json_dumps(j, JSON_INDENT(2) | JSON_REAL_PRECISION((size_t)digits));
    if (!text)
        return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    size_t n = strlen(text);
    char *withnl = realloc(text, n + 2);
    if (!withnl) {
        free(text);
        return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    }
    withnl[n] = '\n';
    withnl[n + 1] = '\0';
    aw_status st = aw_write_file_atomic(ctx, path, withnl, n + 1);
    free(withnl);
    return st;
}

static aw_status write_json(aw_ctx *ctx, const char *dir, const char *name,
                            json_t *j)
{
    char *path = aw_path_join(dir, name);
    if (!path)
        return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    aw_status st = aw_write_json_file(ctx, path, j);
    free(path);
    return st;
}

static double pct(int64_t a, int64_t b)
{
    return b > 0 ? 100.0 * (double)a / (double)b : (double)NAN;
}

static aw_status write_zones(aw_ctx *ctx, run_state *rs, date_work *w,
                             const char *dir)
{
    const aw_config *cfg = rs->cfg;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    fputs("date,n_scenes,zone_id,zone_name,kind,zone_area_km2,n_pixels,"
          "n_valid,valid_fraction,cloud_pct,shadow_pct,snow_pct,nodata_pct,"
          "n_water,water_area_km2,water_fraction",
          f);
    for (int i = 0; i < AW_IDX_COUNT; i++) {
        if (!cfg->indices[i])
            continue;
        const char *nm = aw_index_get((aw_index)i)->name;
        fprintf(f, ",%s_mean,%s_min,%s_max,%s_p10,%s_p50,%s_p90", nm, nm, nm,
                nm, nm, nm);
    }
    fputs(",crop_mean_ndvi\n", f);

    json_t *root = json_object();
    json_object_set_new(root, "region", json_string(cfg->region_name));
    json_object_set_new(root, "date", json_string(w->date));
    json_object_set_new(root, "n_scenes", json_integer((json_int_t)w->n_used));
    json_object_set_new(root, "water_index",
                        json_string(aw_index_get(cfg->water_index)->name));
    json_num(root, "water_threshold", (double)w->water_threshold);
    json_t *arr = json_array();
    for (size_t zi = 0; zi < rs->zones.n; zi++) {
        const aw_zone *z = &rs->zones.z[zi];
        const aw_zone_stats *s = &w->stats[zi];
        /* Cloud, shadow and snow are shares of the observed part of the
         * zone (as for scenes); nodata is a share of the whole zone. */
        fputs(w->date, f);
        fprintf(f, ",%zu", w->n_used);
        csv_text(f, z->id);
        csv_text(f, z->name);
        csv_text(f, aw_zone_kind_name(z->kind));
        csv_num(f, z->area_km2);
        fprintf(f, ",%lld,%lld", (long long)s->n_pixels, (long long)s->n_valid);
        csv_num(f, s->valid_fraction);
        csv_num(f, pct(s->n_cloud, s->n_pixels - s->n_nodata));
        csv_num(f, pct(s->n_shadow, s->n_pixels - s->n_nodata));
        csv_num(f, pct(s->n_snow, s->n_pixels - s->n_nodata));
        csv_num(f, pct(s->n_nodata, s->n_pixels));
        fprintf(f, ",%lld", (long long)s->n_water);
        csv_num(f, s->water_area_km2);
        csv_num(f, s->water_fraction);

        json_t *o = json_object();
        json_object_set_new(o, "zone_id", json_string(z->id));
        json_object_set_new(o, "zone_name", json_string(z->name));
        json_object_set_new(o, "kind", json_string(aw_zone_kind_name(z->kind)));
        json_num(o, "zone_area_km2", z->area_km2);
        json_object_set_new(o, "n_pixels", json_integer(s->n_pixels));
        json_object_set_new(o, "n_valid", json_integer(s->n_valid));
        json_num(o, "valid_fraction", s->valid_fraction);
        json_num(o, "cloud_pct", pct(s->n_cloud, s->n_pixels - s->n_nodata));
        json_num(o, "shadow_pct", pct(s->n_shadow, s->n_pixels - s->n_nodata));
        json_num(o, "snow_pct", pct(s->n_snow, s->n_pixels - s->n_nodata));
        json_num(o, "nodata_pct", pct(s->n_nodata, s->n_pixels));
        json_object_set_new(o, "n_water", json_integer(s->n_water));
        json_num(o, "water_area_km2", s->water_area_km2);
        json_num(o, "water_fraction", s->water_fraction);
        json_t *ix = json_object();
        for (int i = 0; i < AW_IDX_COUNT; i++) {
            if (!cfg->indices[i])
                continue;
            csv_num(f, s->mean[i]);
            csv_num(f, s->min[i]);
            csv_num(f, s->max[i]);
            csv_num(f, s->p10[i]);
            csv_num(f, s->p50[i]);
            csv_num(f, s->p90[i]);
            json_t *io = json_object();
            json_num(io, "mean", s->mean[i]);
            json_num(io, "min", s->min[i]);
            json_num(io, "max", s->max[i]);
            json_num(io, "p10", s->p10[i]);
            json_num(io, "p50", s->p50[i]);
            json_num(io, "p90", s->p90[i]);
            json_object_set_new(ix, aw_index_get((aw_index)i)->name, io);
        }
        json_object_set_new(o, "indices", ix);
        double crop = z->kind == AW_ZONE_CROPLAND && cfg->indices[AW_IDX_NDVI]
                          ? s->mean[AW_IDX_NDVI]
                          : (double)NAN;
        csv_num(f, crop);
        fputc('\n', f);
        json_num(o, "crop_mean_ndvi", crop);
        json_array_append_new(arr, o);
    }
    json_object_set_new(root, "zones", arr);
    fclose(f);
    aw_status st = write_text(ctx, dir, "zones.csv", buf);
    free(buf);
    if (st == AW_OK)
        st = write_json(ctx, dir, "zones.json", root);
    json_decref(root);
    return st;
}

/* alerts.geojson: a feature per alert issued or in force, with its
 * zone's polygon in WGS 84 and the record (or the active summary) as
 * properties. */
static aw_status write_alerts_geojson(aw_ctx *ctx, run_state *rs, date_work *w,
                                      const char *dir)
{
    json_t *fc = json_object();
    json_t *feats = json_array();
    json_object_set_new(fc, "type", json_string("FeatureCollection"));
    json_t *lists[2] = {w->alerts, w->active};
    for (int l = 0; l < 2; l++) {
        size_t i;
        json_t *a;
        if (!lists[l])
            continue;
        json_array_foreach(lists[l], i, a)
        {
            const char *zid = json_string_value(json_object_get(a, "zone_id"));
            json_t *geom = NULL;
            for (size_t z = 0; zid && z < rs->zones.n && !geom; z++)
                if (strcmp(rs->zones.z[z].id, zid) == 0 &&
                    rs->zones.z[z].geojson)
                    geom = json_loads(rs->zones.z[z].geojson, 0, NULL);
            json_t *f = json_object();
            json_object_set_new(f, "type", json_string("Feature"));
            json_object_set_new(f, "geometry", geom ? geom : json_null());
            json_t *props = json_deep_copy(a);
            json_object_set_new(props, "in_force_only", json_boolean(l == 1));
            json_object_set_new(f, "properties", props);
            json_array_append_new(feats, f);
        }
    }
    json_object_set_new(fc, "features", feats);
    aw_status st = write_json(ctx, dir, "alerts.geojson", fc);
    json_decref(fc);
    return st;
}

static const char *jstr(const json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v ? v : "";
}

/* One CAP 1.2 message (OASIS Common Alerting Protocol, DOMAIN.md §5.6)
 * for an alert record, built and serialised with GDAL's XML tree (which
 * escapes). */
static aw_status write_cap(aw_ctx *ctx, run_state *rs, date_work *w,
                           const char *capdir, const json_t *a)
{
    const char *id = jstr(a, "alert_id");
    const char *status = jstr(a, "status");
    char sender[256], sent[32];
    snprintf(sender, sizeof sender, "aralwatch@%s", rs->cfg->region_name);
    /* CAP dateTime with an explicit offset. */
    snprintf(sent, sizeof sent, "%.19s+00:00", jstr(a, "created"));
    CPLXMLNode *root = CPLCreateXMLNode(NULL, CXT_Element, "alert");
    CPLAddXMLAttributeAndValue(root, "xmlns",
                               "urn:oasis:names:tc:emergency:cap:1.2");
    CPLCreateXMLElementAndValue(root, "identifier", id);
    CPLCreateXMLElementAndValue(root, "sender", sender);
    CPLCreateXMLElementAndValue(root, "sent", sent);
    CPLCreateXMLElementAndValue(root, "status", "Actual");
    CPLCreateXMLElementAndValue(root, "msgType",
                                strcmp(status, "new") == 0      ? "Alert"
                                : strcmp(status, "cancel") == 0 ? "Cancel"
                                                                : "Update");
    CPLCreateXMLElementAndValue(root, "scope", "Public");
    const char *sup = jstr(a, "supersedes");
    if (sup[0]) {
        /* references: sender,identifier,sent of the message replaced
         * (its record is in the catalog). */
        char ref[512], psent[32] = "";
        sqlite3_stmt *q = NULL;
        sqlite3 *db = aw_catalog_db(rs->catalog);
        if (sqlite3_prepare_v2(db,
                               "SELECT record FROM alerts WHERE alert_id = ?1",
                               -1, &q, NULL) == SQLITE_OK) {
            sqlite3_bind_text(q, 1, sup, -1, SQLITE_STATIC);
            if (sqlite3_step(q) == SQLITE_ROW) {
                json_t *prev = json_loads(
                    (const char *)sqlite3_column_text(q, 0), 0, NULL);
                snprintf(psent, sizeof psent, "%.19s+00:00",
                         jstr(prev, "created"));
                json_decref(prev);
            }
        }
        sqlite3_finalize(q);
        snprintf(ref, sizeof ref, "%s,%s,%s", sender, sup, psent);
        CPLCreateXMLElementAndValue(root, "references", ref);
    }
    CPLXMLNode *info = CPLCreateXMLNode(root, CXT_Element, "info");
    CPLCreateXMLElementAndValue(info, "language", "en");
    CPLCreateXMLElementAndValue(info, "category", "Env");
    CPLCreateXMLElementAndValue(info, "event", jstr(a, "type"));
    CPLCreateXMLElementAndValue(info, "urgency", "Expected");
    const char *sev = jstr(a, "severity");
    CPLCreateXMLElementAndValue(info, "severity", sev[0] ? sev : "Unknown");
    const char *cert = jstr(a, "certainty");
    CPLCreateXMLElementAndValue(info, "certainty", cert[0] ? cert : "Unknown");
    char onset[32];
    snprintf(onset, sizeof onset, "%.10sT00:00:00+00:00", jstr(a, "onset"));
    if (jstr(a, "onset")[0])
        CPLCreateXMLElementAndValue(info, "onset", onset);
    CPLCreateXMLElementAndValue(info, "senderName", "aralwatch " AW_VERSION);
    CPLCreateXMLElementAndValue(info, "headline", jstr(a, "headline"));
    char desc[1024];
    const json_t *m = json_object_get(a, "metric");
    snprintf(desc, sizeof desc,
             "%s on %s: %s = %.6g (rule %s, level %s). Zone %s (%s).",
             jstr(a, "type"), w->date, jstr(m, "name"),
             json_number_value(json_object_get(m, "value")), jstr(a, "rule_id"),
             jstr(a, "level"), jstr(a, "zone_name"), jstr(a, "zone_id"));
    CPLCreateXMLElementAndValue(info, "description", desc);
    CPLXMLNode *par = CPLCreateXMLNode(info, CXT_Element, "parameter");
    CPLCreateXMLElementAndValue(par, "valueName", "aralwatch_level");
    CPLCreateXMLElementAndValue(par, "value", jstr(a, "level"));
    CPLXMLNode *area = CPLCreateXMLNode(info, CXT_Element, "area");
    CPLCreateXMLElementAndValue(area, "areaDesc", jstr(a, "zone_name"));
    /* The zone's bounding box as a CAP polygon: "lat,lon" pairs, first =
     * last. */
    const json_t *bb = json_object_get(a, "geometry_bbox");
    double b[4];
    int ok = json_array_size(bb) == 4;
    for (int k = 0; ok && k < 4; k++) {
        b[k] = json_number_value(json_array_get(bb, (size_t)k));
        ok = json_is_number(json_array_get(bb, (size_t)k));
    }
    if (ok) {
        char poly[256];
        snprintf(poly, sizeof poly,
                 "%.6f,%.6f %.6f,%.6f %.6f,%.6f %.6f,%.6f %.6f,%.6f", b[1],
                 b[0], b[1], b[2], b[3], b[2], b[3], b[0], b[1], b[0]);
        CPLCreateXMLElementAndValue(area, "polygon", poly);
    }
    char *xml = CPLSerializeXMLTree(root);
    CPLDestroyXMLNode(root);
    char name[64];
    snprintf(name, sizeof name, "%s.xml", id);
    char *path = aw_path_join(capdir, name);
    aw_status st = AW_OK;
    if (!xml || !path)
        st = aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    else {
        static const char head[] =
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
        size_t n = strlen(head) + strlen(xml);
        char *doc = malloc(n + 1);
        if (!doc)
            st = aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
        else {
            memcpy(doc, head, strlen(head));
            memcpy(doc + strlen(head), xml, strlen(xml) + 1);
            st = aw_write_file_atomic(ctx, path, doc, n);
            free(doc);
        }
    }
    CPLFree(xml);
    free(path);
    return st;
}

static aw_status write_alerts(aw_ctx *ctx, run_state *rs, date_work *w,
                              const char *dir)
{
    json_t *root = json_object();
    json_object_set_new(root, "region", json_string(rs->cfg->region_name));
    json_object_set_new(root, "date", json_string(w->date));
    json_object_set(root, "alerts", w->alerts);
    json_object_set(root, "notices", w->notices);
    if (w->active)
        json_object_set(root, "active", w->active);
    if (w->forecasts)
        json_object_set(root, "forecasts", w->forecasts);
    aw_status st = write_json(ctx, dir, "alerts.json", root);
    json_decref(root);
    if (st == AW_OK && rs->zones.n)
        st = write_alerts_geojson(ctx, rs, w, dir);
    if (st == AW_OK && rs->cfg->cap && json_array_size(w->alerts)) {
        char *capdir = aw_path_join(dir, "cap");
        st = capdir ? aw_mkdirs(ctx, capdir)
                    : aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
        size_t i;
        json_t *a;
        json_array_foreach(w->alerts, i, a)
        {
            if (st != AW_OK)
                break;
            st = write_cap(ctx, rs, w, capdir, a);
        }
        free(capdir);
    }
    return st;
}

static const aw_class_def water_classes[] = {
    {AW_WATER_NO, "not water", 230, 220, 190, 255},
    {AW_WATER_YES, "water", 30, 90, 200, 255},
    {AW_CLASS_NODATA, "nodata", 0, 0, 0, 0},
};
static const aw_class_def dswe_classes[] = {
    {AW_DSWE_NOT_WATER, "not water", 230, 220, 190, 255},
    {AW_DSWE_HIGH, "water, high confidence", 0, 0, 255, 255},
    {AW_DSWE_MODERATE, "water, moderate confidence", 0, 128, 255, 255},
    {AW_DSWE_WETLAND, "potential wetland", 0, 200, 100, 255},
    {AW_DSWE_LOW, "low-confidence water or wetland", 150, 220, 150, 255},
    {AW_DSWE_MASKED, "masked: cloud, cloud shadow, snow or other", 255, 255,
     255, 255},
    {AW_DSWE_FILL, "fill", 0, 0, 0, 0},
};
static const aw_class_def valid_classes[] = {
    {AW_Q_OUTSIDE, "outside region", 0, 0, 0, 0},
    {AW_Q_VALID, "valid", 40, 160, 60, 255},
    {AW_Q_NODATA, "input nodata", 120, 120, 120, 255},
    {AW_Q_CLOUD, "cloud", 250, 250, 250, 255},
    {AW_Q_SHADOW, "cloud shadow", 60, 60, 60, 255},
    {AW_Q_SNOW, "snow or ice", 150, 220, 255, 255},
    {AW_Q_MASKED, "masked (other)", 230, 120, 40, 255},
};

/* "0:not water;1:water;255:nodata": the classes inside the TIFF itself
 * (GDAL_METADATA tag); GDAL keeps the category names in a .aux.xml side-car,
 * which QGIS reads too. */
static char **class_metadata(char **md, const aw_class_def *c, size_t n)
{
    char buf[1024];
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && used < sizeof buf; i++) {
        int k = snprintf(buf + used, sizeof buf - used, "%s%d:%s", i ? ";" : "",
                         c[i].value, c[i].name);
        if (k > 0)
            used += (size_t)k;
    }
    return CSLSetNameValue(md, "AW_CLASSES", buf);
}

/* List a GDAL side-car (.aux.xml) among the outputs when one was written. */
static void add_sidecar(json_t *outs, const char *dir, const char *name)
{
    char *p = aw_asprintf("%s/%s.aux.xml", dir, name);
    struct stat sb;
    if (p && stat(p, &sb) == 0) {
        char *n = aw_asprintf("%s.aux.xml", name);
        if (n)
            json_array_append_new(outs, json_string(n));
        free(n);
    }
    free(p);
}

/* The encoding of the outputs; in an MPI run the writers are shared: rank
 * 0 creates each raster's strip file, every rank writes its rows into it. */
static aw_write_opts write_opts(const run_state *rs)
{
    const aw_config *cfg = rs->cfg;
    aw_write_opts wo = {.cog = cfg->cog,
                        .compress = cfg->compress,
                        .level = cfg->level,
                        .blocksize = cfg->blocksize,
                        .threads = rs->threads};
    if (aw_par_size() > 1)
        wo.shared = aw_par_root() ? AW_SHARED_CREATE : AW_SHARED_ATTACH;
    else
        wo.defer = 1; /* made together (aw_rwriters_create) */
    return wo;
}

/* Open the writer of one output raster into the staging folder. */
static aw_status add_writer(aw_ctx *ctx, date_work *w, const char *name,
                            int kind, int index, aw_rwriter *wr)
{
    date_out *o = w->out;
    if (o->n_wr >= AW_MAX_WRITERS) {
        aw_rwriter_abort(wr);
        return aw_fail(ctx, AW_ERR_INTERNAL, "too many output rasters");
    }
    o->wr[o->n_wr] = wr;
    o->kind[o->n_wr] = kind;
    o->index[o->n_wr] = index;
    snprintf(o->name[o->n_wr], sizeof o->name[0], "%s", name);
    o->n_wr++;
    return AW_OK;
}

static aw_status open_class_writer(aw_ctx *ctx, run_state *rs, date_work *w,
                                   const char *name, int kind, const char *desc,
                                   char **extra_md, const aw_class_def *classes,
                                   size_t n_classes, int has_nodata, int nodata)
{
    const aw_config *cfg = rs->cfg;
    int bit = kind == OUT_VALID    ? AW_RASTER_VALID
              : kind == OUT_SOURCE ? AW_RASTER_SOURCE
              : kind == OUT_WOFL   ? AW_RASTER_WOFL
                                   : AW_RASTER_WATER;
    if (!((cfg->rasters | rs->opts->force_rasters) >> bit & 1u))
        return AW_OK; /* not asked for (outputs.rasters) */
    aw_write_opts wo = write_opts(rs);
    char *path = aw_path_join(w->out->stage, name);
    char **md = class_metadata(provenance(rs, w), classes, n_classes);
    for (char **e = extra_md; e && *e; e++)
        md = CSLAddString(md, *e);
    aw_rwriter *wr = NULL;
    aw_status st =
        path ? aw_rwriter_open(ctx, path, &rs->grid, GDT_Byte, 1.0, desc, md,
                               classes, n_classes, has_nodata, nodata, &wo, &wr)
             : aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    CSLDestroy(md);
    free(path);
    if (st == AW_OK)
        st = add_writer(ctx, w, name, kind, -1, wr);
    return st;
}

static const char *method_name(aw_water_method m)
{
    switch (m) {
    case AW_WATER_THRESHOLD:
        return "threshold";
    case AW_WATER_OTSU:
        return "otsu";
    case AW_WATER_DSWE:
        return "dswe";
    case AW_WATER_WOFS:
        return "wofs";
    }
    return "?";
}

/* Open a writer for every output raster of the date, with its metadata
 * (the water threshold is known before the pixels: Otsu's comes from a
 * histogram pass). */
/* Change against the baseline (baseline.c): water_change.tif and, with
 * NDVI, vci.tif, ndvi_anomaly.tif and ndvi_diff.tif. */
static aw_status open_change_writers(aw_ctx *ctx, run_state *rs, date_work *w)
{
    static const aw_class_def change_classes[] = {
        {0, "no change", 230, 220, 190, 255},
        {1, "lost water", 200, 60, 30, 255},
        {2, "new water", 40, 120, 230, 255},
        {AW_CLASS_NODATA, "not observed or no baseline", 0, 0, 0, 0},
    };
    const aw_config *cfg = rs->cfg;
    char desc[256];
    snprintf(desc, sizeof desc,
             "water change against the baseline: 1 lost (frequency >= %g, "
             "now dry), 2 new (frequency <= %g, now wet), 0 neither",
             cfg->lost_water_occurrence, cfg->new_water_occurrence);
    aw_write_opts wo = write_opts(rs);
    aw_status st = AW_OK;
    char *path = aw_path_join(w->out->stage, "water_change.tif");
    char **md = class_metadata(provenance(rs, w), change_classes, 4);
    aw_rwriter *wr = NULL;
    st = path ? aw_rwriter_open(ctx, path, &rs->grid, GDT_Byte, 1.0, desc, md,
                                change_classes, 4, 1, AW_CLASS_NODATA, &wo, &wr)
              : aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    CSLDestroy(md);
    free(path);
    if (st == AW_OK)
        st = add_writer(ctx, w, "water_change.tif", OUT_CHANGE, AW_BL_WCHANGE,
                        wr);
    if (!cfg->indices[AW_IDX_NDVI])
        return st;
    static const struct {
        const char *name, *desc;
        int which;
    } f[] = {
        {"vci.tif",
         "VCI = 100 * (NDVI - min) / (max - min) over the baseline years "
         "(Kogan 1995), not clamped",
         AW_BL_VCI},
        {"ndvi_anomaly.tif",
         "NDVI anomaly z = (NDVI - mean) / std over the baseline years",
         AW_BL_NDVI_Z},
        {"ndvi_diff.tif", "NDVI - baseline median NDVI", AW_BL_NDVI_DIFF},
    };
    for (size_t k = 0; k < sizeof f / sizeof f[0] && st == AW_OK; k++) {
        path = aw_path_join(w->out->stage, f[k].name);
        md = provenance(rs, w);
        wr = NULL;
        st = path ? aw_rwriter_open(ctx, path, &rs->grid, GDT_Float32, 1.0,
                                    f[k].desc, md, NULL, 0, 1, (double)NAN, &wo,
                                    &wr)
                  : aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
        CSLDestroy(md);
        free(path);
        if (st == AW_OK)
            st = add_writer(ctx, w, f[k].name, OUT_CHANGE, f[k].which, wr);
    }
    return st;
}

static aw_status open_rasters(aw_ctx *ctx, run_state *rs, date_work *w)
{
    const aw_config *cfg = rs->cfg;
    aw_write_opts wo = write_opts(rs);
    aw_status st = AW_OK;
    for (int i = 0; i < AW_IDX_COUNT && st == AW_OK; i++) {
        if (!cfg->indices[i] ||
            !((cfg->rasters | rs->opts->force_rasters) >> i & 1u))
            continue;
        const aw_index_info *info = aw_index_get((aw_index)i);
        char name[64], desc[512], upper[32];
        snprintf(name, sizeof name, "%s.tif", info->name);
        size_t k = 0;
        for (; info->name[k] && k < sizeof upper - 1; k++)
            upper[k] = (char)(info->name[k] >= 'a' && info->name[k] <= 'z'
                                  ? info->name[k] - 32
                                  : info->name[k]);
        upper[k] = '\0';
        /* EVI and SAVI carry constants: write the ones used. */
        char formula[256];
        const aw_index_params *ip = &cfg->index_params;
        if (i == AW_IDX_EVI)
            snprintf(formula, sizeof formula,
                     "%g * (nir - red) / (nir + %g * red - %g * blue + %g)",
                     (double)ip->evi_g, (double)ip->evi_c1, (double)ip->evi_c2,
                     (double)ip->evi_l);
        else if (i == AW_IDX_SAVI)
            snprintf(formula, sizeof formula,
                     "%g * (nir - red) / (nir + red + %g)",
                     1.0 + (double)ip->savi_l, (double)ip->savi_l);
        else
            snprintf(formula, sizeof formula, "%s", info->formula);
        snprintf(desc, sizeof desc, "%s = %s (%s)", upper, formula,
                 info->long_name);
        char *path = aw_path_join(w->out->stage, name);
        char **md = provenance(rs, w);
        md = CSLSetNameValue(md, "AW_INDEX", info->name);
        md = CSLSetNameValue(md, "AW_FORMULA", formula);
        /* int16: DN * scale, with the scale that keeps the index's range
         * (1e-4 up to +-3.2767, else 1e-3; EVI 1e-3, as it is unbounded
         * where its denominator nears 0); float32: the value, NaN. */
        double range =
            fmax(fabs((double)info->hist_lo), fabs((double)info->hist_hi));
        double scale = range <= 3.2767 && i != AW_IDX_EVI ? 1e-4 : 1e-3;
        aw_rwriter *wr = NULL;
        st = path ? aw_rwriter_open(
                        ctx, path, &rs->grid,
                        cfg->int16 ? GDT_Int16 : GDT_Float32,
                        cfg->int16 ? scale : 1.0, desc, md, NULL, 0, 1,
                        cfg->int16 ? (double)AW_INT16_NODATA : (double)NAN, &wo,
                        &wr)
                  : aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
        CSLDestroy(md);
        free(path);
        if (st == AW_OK)
            st = add_writer(ctx, w, name, OUT_INDEX, i, wr);
    }
    if (st != AW_OK)
        return st;

    /* water.tif: binary water for threshold/Otsu/WOfS, DSWE classes for
     * DSWE. */
    char desc[256], thr[64], **md = NULL;
    md = CSLSetNameValue(md, "AW_WATER_METHOD", method_name(cfg->water_method));
    if (cfg->water_method == AW_WATER_DSWE) {
        snprintf(desc, sizeof desc,
                 "water class: USGS DSWE (0 not water, 1 high, 2 moderate "
                 "confidence water, 3 potential wetland, 4 low confidence, 9 "
                 "masked, 255 fill)");
        st = open_class_writer(ctx, rs, w, "water.tif", OUT_DSWE, desc, md,
                               dswe_classes, 7, 1, AW_DSWE_FILL);
    }
    else {
        if (cfg->water_method == AW_WATER_WOFS) {
            snprintf(desc, sizeof desc,
                     "water class: WOfS decision tree (1 wet, 0 dry)");
        }
        else {
            snprintf(desc, sizeof desc, "water class: %s > %g (%s)",
                     aw_index_get(cfg->water_index)->name,
                     (double)w->water_threshold,
                     cfg->water_method == AW_WATER_OTSU
                         ? (w->otsu_fallback ? "Otsu failed, fixed threshold"
                                             : "Otsu threshold")
                         : "fixed threshold");
            snprintf(thr, sizeof thr, "%.9g", (double)w->water_threshold);
            md = CSLSetNameValue(md, "AW_WATER_INDEX",
                                 aw_index_get(cfg->water_index)->name);
            md = CSLSetNameValue(md, "AW_WATER_THRESHOLD", thr);
        }
        st = open_class_writer(ctx, rs, w, "water.tif", OUT_WATER, desc, md,
                               water_classes, 3, 1, AW_CLASS_NODATA);
    }
    CSLDestroy(md);
    if (st == AW_OK && cfg->water_method == AW_WATER_WOFS) {
        static const aw_class_def wofl_classes[] = {
            {0, "clear dry", 230, 220, 190, 255},
            {AW_WOFS_NODATA, "nodata", 0, 0, 0, 0},
            {AW_WOFS_NONCONTIGUOUS, "non-contiguous or masked", 200, 120, 40,
             255},
            {AW_WOFS_CLOUD_SHADOW, "cloud shadow", 60, 60, 60, 255},
            {AW_WOFS_CLOUD, "cloud", 250, 250, 250, 255},
            {AW_WOFS_WET, "clear wet", 30, 90, 200, 255},
        };
        st = open_class_writer(
            ctx, rs, w, "wofl.tif", OUT_WOFL,
            "WOfS flag byte: 1 nodata, 2 non-contiguous, 32 cloud shadow, 64 "
            "cloud, 128 wet (0 clear dry)",
            NULL, wofl_classes, 6, 0, 0);
    }
    if (st == AW_OK)
        st = open_class_writer(ctx, rs, w, "valid.tif", OUT_VALID,
                               "quality: 0 outside region, 1 valid, 2 input "
                               "nodata, 3 cloud, 4 cloud shadow, 5 snow, 6 "
                               "masked (other)",
                               NULL, valid_classes, 7, 0, 0);
    if (st == AW_OK) {
        /* source.tif: which scene every pixel of the mosaic came from. */
        aw_class_def *cls = aw_calloc2(w->n_sb + 1, sizeof *cls);
        if (!cls)
            return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
        cls[0] = (aw_class_def){0, "no source", 0, 0, 0, 0};
        for (size_t i = 0; i < w->n_sb; i++) {
            /* Distinct, stable colours from the scene's position. */
            unsigned h = (unsigned)(i * 97u + 31u);
            cls[i + 1] = (aw_class_def){(int)i + 1,
                                        w->sb[i].sc->id,
                                        (short)(60 + (h * 53u) % 190),
                                        (short)(60 + (h * 29u) % 190),
                                        (short)(60 + (h * 71u) % 190),
                                        255};
        }
        st = open_class_writer(ctx, rs, w, "source.tif", OUT_SOURCE,
                               "source scene of each mosaic pixel (category "
                               "names are the scene ids; 0 no source)",
                               NULL, cls, w->n_sb + 1, 1, 0);
        free(cls);
    }
    if (st == AW_OK && rs->bl_have)
        st = open_change_writers(ctx, rs, w);
    /* rgb: the mosaic's red, green and blue reflectance (true colour
     * quicklooks; not written unless outputs.rasters lists it). */
    static const struct {
        const char *name, *desc;
        int band;
    } rgb[] = {{"red.tif", "red reflectance of the mosaic", AW_BAND_RED},
               {"green.tif", "green reflectance of the mosaic", AW_BAND_GREEN},
               {"blue.tif", "blue reflectance of the mosaic", AW_BAND_BLUE}};
    for (size_t k = 0;
         k < 3 && st == AW_OK && (cfg->rasters >> AW_RASTER_RGB & 1u); k++) {
        char *path = aw_path_join(w->out->stage, rgb[k].name);
        char **rmd = provenance(rs, w);
        aw_rwriter *wr = NULL;
        st = path ? aw_rwriter_open(ctx, path, &rs->grid, GDT_Float32, 1.0,
                                    rgb[k].desc, rmd, NULL, 0, 1, (double)NAN,
                                    &wo, &wr)
                  : aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
        CSLDestroy(rmd);
        free(path);
        if (st == AW_OK)
            st = add_writer(ctx, w, rgb[k].name, OUT_REFL, rgb[k].band, wr);
    }
    return st;
}

static const void *strip_data(const run_state *rs, const date_work *w,
                              const date_out *o, size_t k, size_t off)
{
    switch (o->kind[k]) {
    case OUT_INDEX:
        return w->index[o->index[k]] + off;
    case OUT_WATER:
        return w->water + off;
    case OUT_DSWE:
        return w->dswe + off;
    case OUT_WOFL:
        return w->wofl + off;
    case OUT_VALID:
        return w->qcls + off;
    case OUT_SOURCE:
        return w->source + off;
    case OUT_CHANGE:
        return aw_bl_strip(rs->bl, o->index[k]);
    case OUT_REFL:
        return w->refl[o->index[k]] + off;
    default:
        return NULL;
    }
}

aw_status aw_date_rows(aw_ctx *ctx, run_state *rs, date_work *w, int row0,
                       int nrows, size_t off)
{
    date_out *o = w->out;
    double t0 = aw_now();
    aw_status st = AW_OK;
    for (size_t k = 0; k < o->n_wr && st == AW_OK; k++)
        st = aw_rwriter_rows(ctx, o->wr[k], row0, nrows,
                             strip_data(rs, w, o, k, off));
    w->t[ST_WRITE] += aw_now() - t0;
    return st;
}

static json_t *input_list(aw_ctx *ctx, const aw_config *cfg, const scene_buf *s,
                          aw_status *st)
{
    const aw_scene_cfg *sc = s->sc;
    json_t *arr = json_array();
    for (int b = 0; b <= AW_BAND_COUNT && *st == AW_OK; b++) {
        const aw_band_src *src = b < AW_BAND_COUNT ? &sc->bands[b] : &sc->qa;
        if (!src->present || !aw_input_read(cfg, b))
            continue;
        char hex[65];
        long long bytes = -1;
        /* Worked out for the date's fingerprint already, in most cases. */
        if (s->sha256[b][0] && s->bytes[b] >= 0) {
            memcpy(hex, s->sha256[b], sizeof hex);
            bytes = s->bytes[b];
        }
        else {
            *st = aw_sha256_vsi(ctx, src->path, hex, &bytes, NULL);
        }
        if (*st != AW_OK)
            break;
        json_t *o = json_object();
        json_object_set_new(
            o, "role",
            json_string(b < AW_BAND_COUNT ? aw_band_name((aw_band)b) : "qa"));
        json_object_set_new(o, "path", json_string(src->path));
        json_object_set_new(o, "band", json_integer(src->band));
        json_object_set_new(o, "sha256", json_string(hex));
        json_object_set_new(o, "bytes", json_integer((json_int_t)bytes));
        if (b < AW_BAND_COUNT) {
            json_object_set_new(o, "scale", json_real(src->scale));
            json_object_set_new(o, "offset", json_real(src->offset));
        }
        if (src->has_nodata)
            json_object_set_new(o, "nodata", json_real(src->nodata));
        json_array_append_new(arr, o);
    }
    return arr;
}

/* One auxiliary input (AOI, zones, DEM) with its checksum; a Shapefile
 * brings its side files. */
static void add_aux_input(aw_ctx *ctx, json_t *arr, const char *role,
                          const char *path, aw_status *st)
{
    if (!path || *st != AW_OK)
        return;
    static const char *const shp_parts[] = {"", ".shx", ".dbf", ".prj", ".cpg"};
    size_t n = strlen(path);
    int shp = n > 4 && strcmp(path + n - 4, ".shp") == 0;
    for (size_t k = 0; k < (shp ? 5u : 1u); k++) {
        char *p = k == 0
                      ? aw_strdup(path)
                      : aw_asprintf("%.*s%s", (int)(n - 4), path, shp_parts[k]);
        struct stat sb;
        if (p && (k == 0 || stat(p, &sb) == 0)) {
            char hex[65];
            *st = aw_sha256_file(ctx, p, hex);
            if (*st == AW_OK) {
                json_t *o = json_object();
                json_object_set_new(o, "role", json_string(role));
                json_object_set_new(o, "path", json_string(p));
                json_object_set_new(o, "sha256", json_string(hex));
                json_array_append_new(arr, o);
            }
        }
        free(p);
    }
}

static const char *const qclass_keys[AW_Q_COUNT] = {
    "outside", "valid", "nodata", "cloud", "shadow", "snow", "masked"};

json_t *aw_scene_json(const scene_buf *s)
{
    const aw_scene_cfg *sc = s->sc;
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(sc->id));
    json_object_set_new(o, "date", json_string(sc->date));
    json_object_set_new(o, "sensor", json_string(aw_sensor_name(sc->sensor)));
    static const char *const status[] = {"used", "skipped", "failed"};
    json_object_set_new(o, "status", json_string(status[s->status]));
    if (s->reason)
        json_object_set_new(o, "reason", json_string(s->reason));
    if (sc->datetime[0])
        json_object_set_new(o, "datetime", json_string(sc->datetime));
    if (sc->platform)
        json_object_set_new(o, "platform", json_string(sc->platform));
    if (sc->product_id)
        json_object_set_new(o, "product_id", json_string(sc->product_id));
    if (sc->tile_id)
        json_object_set_new(o, "tile_id", json_string(sc->tile_id));
    if (sc->wrs_path > 0) {
        json_object_set_new(o, "wrs_path", json_integer(sc->wrs_path));
        json_object_set_new(o, "wrs_row", json_integer(sc->wrs_row));
    }
    if (sc->processing_baseline)
        json_object_set_new(o, "processing_baseline",
                            json_string(sc->processing_baseline));
    json_num(o, "provider_cloud_cover_pct", sc->cloud_cover);
    json_num(o, "sun_elevation", sc->sun_elevation);
    if (sc->offset_note)
        json_object_set_new(o, "scale_offset", json_string(sc->offset_note));
    if (s->status != SCENE_FAILED) {
        json_t *px = json_object();
        for (int q = 0; q < AW_Q_COUNT; q++)
            json_object_set_new(px, qclass_keys[q], json_integer(s->count[q]));
        json_object_set_new(o, "pixels", px);
        json_num(o, "valid_fraction", s->valid_fraction);
        json_num(o, "cloud_pct", s->cloud_pct);
        json_num(o, "shadow_pct", s->shadow_pct);
        json_num(o, "snow_pct", s->snow_pct);
    }
    if (s->status == SCENE_USED) {
        json_object_set_new(o, "mosaic_rank", json_integer(s->order));
        json_object_set_new(o, "mosaic_pixels", json_integer(s->n_mosaic));
    }
    return o;
}

static json_t *manifest(aw_ctx *ctx, run_state *rs, date_work *w, json_t *outs,
                        aw_status *st)
{
    const aw_config *cfg = rs->cfg;
    json_t *m = json_object();
    char now[21];
    aw_utc_now(now);
    json_t *sw = json_object();
    json_object_set_new(sw, "name", json_string("aralwatch"));
    json_object_set_new(sw, "version", json_string(AW_VERSION));
    json_object_set_new(sw, "git_sha", json_string(AW_GIT_SHA));
    json_object_set_new(sw, "gdal",
                        json_string(GDALVersionInfo("RELEASE_NAME")));
    json_object_set_new(sw, "proj", json_string(proj_info().version));
    json_object_set_new(m, "software", sw);
    json_object_set_new(m, "created", json_string(now));
    json_t *c = json_object();
    json_object_set_new(c, "path", json_string(cfg->path));
    json_object_set_new(c, "sha256", json_string(cfg->sha256));
    json_object_set_new(m, "config", c);
    json_t *g = json_object();
    json_object_set_new(g, "name", json_string(cfg->region_name));
    json_object_set_new(g, "crs_wkt", json_string(rs->grid.wkt));
    json_t *gt = json_array();
    for (int i = 0; i < 6; i++)
        json_array_append_new(gt, json_real(rs->grid.gt[i]));
    json_object_set_new(g, "geotransform", gt);
    json_object_set_new(g, "width", json_integer(rs->grid.width));
    json_object_set_new(g, "height", json_integer(rs->grid.height));
    json_object_set_new(m, "region", g);
    json_object_set_new(m, "date", json_string(w->date));
    static const char *const orders[] = {"first", "least_cloud", "latest"};
    json_object_set_new(m, "mosaic_order",
                        json_string(orders[cfg->mosaic_order]));
    json_t *scenes = json_array();
    for (size_t i = 0; i < w->n_sb && *st == AW_OK; i++) {
        json_t *o = aw_scene_json(&w->sb[i]);
        if (w->sb[i].status == SCENE_USED)
            json_object_set_new(o, "inputs",
                                input_list(ctx, cfg, &w->sb[i], st));
        json_array_append_new(scenes, o);
    }
    json_object_set_new(m, "scenes", scenes);
    json_t *aux = json_array();
    add_aux_input(ctx, aux, "aoi", cfg->aoi_path, st);
    add_aux_input(ctx, aux, "zones", cfg->zones_path, st);
    add_aux_input(ctx, aux, "dem", cfg->dem_path, st);
    json_object_set_new(m, "aux_inputs", aux);
    json_t *px = json_object();
    for (int q = 0; q < AW_Q_COUNT; q++)
        json_object_set_new(px, qclass_keys[q], json_integer(w->count[q]));
    json_object_set_new(m, "pixels", px);
    json_t *wa = json_object();
    json_object_set_new(wa, "method",
                        json_string(method_name(cfg->water_method)));
    if (cfg->water_method == AW_WATER_THRESHOLD ||
        cfg->water_method == AW_WATER_OTSU) {
        json_object_set_new(wa, "index",
                            json_string(aw_index_get(cfg->water_index)->name));
        json_object_set_new(wa, "threshold",
                            json_real((double)w->water_threshold));
        json_object_set_new(wa, "otsu_fallback",
                            json_boolean(w->otsu_fallback));
    }
    if (w->dn_warning)
        json_object_set_new(
            wa, "warning",
            json_string("a scene's bands are in DN (scale 1, offset 0): the "
                        "absolute reflectance thresholds of this method do "
                        "not apply"));
    if (cfg->water_method == AW_WATER_DSWE) {
        json_object_set_new(wa, "terrain_filter",
                            json_boolean(cfg->dem_path != NULL));
        if (cfg->dem_path) {
            json_num(wa, "hillshade_sun_azimuth", w->sun_azimuth);
            json_num(wa, "hillshade_sun_elevation", w->sun_elevation);
        }
    }
    json_object_set_new(m, "water", wa);
    json_object_set_new(m, "threads", json_integer(rs->threads));
    /* MPI runs: the ranks that shared the date (the timings are rank 0's). */
    json_object_set_new(m, "mpi_ranks", json_integer(aw_par_size()));
    json_t *t = json_object();
    double total = 0;
    for (int i = 0; i < ST_COUNT; i++) {
        json_object_set_new(t, aw_stage_names[i], json_real(w->t[i]));
        total += w->t[i];
    }
    json_object_set_new(t, "total", json_real(total));
    json_object_set_new(m, "timings_s", t);
    json_object_set_new(m, "outputs", outs);
    return m;
}

/* One entry of a tree being removed, depth first: a folder (also one
 * that could not be read: rmdir says why) after what is in it. */
static int remove_one(const char *path, const struct stat *sb, int flag,
                      struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    int dir = flag == FTW_DP || flag == FTW_DNR;
    return (dir ? rmdir(path) : unlink(path)) != 0 ? errno : 0;
}

/* A staging or old date folder and everything in it (cap/ is a folder);
 * 0, or the errno of the first file that could not be removed. A folder
 * that is not there is removed. */
static int remove_tree(const char *dir)
{
    struct stat sb;
    if (lstat(dir, &sb) != 0 && errno == ENOENT)
        return 0;
    int e = nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
    return e < 0 ? errno : e;
}

/* remove_tree, with a warning naming the folder if it fails. */
static void remove_or_warn(aw_ctx *ctx, const char *dir)
{
    int e = remove_tree(dir);
    if (e)
        aw_log(ctx, AW_LOG_WARN, "cannot remove %s: %s", dir, strerror(e));
}

/* Remove staging folders (".<date>.partial-<pid>", ".<date>.old-<pid>")
 * left by runs that were killed: their pid no longer exists. An ".old"
 * folder whose date folder is missing (killed between the two renames of
 * the fallback swap) is renamed back. */
void aw_sweep_stale(aw_ctx *ctx, const char *region_dir)
{
    DIR *d = opendir(region_dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *nm = e->d_name;
        const char *tag = strstr(nm, ".partial-");
        int is_old = 0;
        if (!tag) {
            tag = strstr(nm, ".old-");
            is_old = tag != NULL;
        }
        if (nm[0] != '.' || !tag)
            continue;
        const char *pid_text = strchr(tag + 1, '-') + 1;
        char *end = NULL;
        long pid = strtol(pid_text, &end, 10);
        /* The caller holds the region's lock, and only a lock holder
         * stages a date: whatever its process, a staging folder not ours
         * is a killed run's (even if that process has not been reaped
         * yet, as an MPI rank's may not have been when mpirun returns). */
        if (!end || *end || pid <= 0 || (pid_t)pid == getpid())
            continue;
        char *path = aw_path_join(region_dir, nm);
        char date[16] = "";
        size_t dl = (size_t)(tag - (nm + 1));
        if (dl < sizeof date) {
            memcpy(date, nm + 1, dl);
            date[dl] = '\0';
        }
        char *final = date[0] ? aw_path_join(region_dir, date) : NULL;
        struct stat sb;
        if (path && is_old && final && stat(final, &sb) != 0 &&
            rename(path, final) == 0) {
            aw_log(ctx, AW_LOG_WARN, "restored %s from an interrupted run",
                   final);
        }
        else if (path) {
            int err = remove_tree(path);
            if (err)
                aw_log(ctx, AW_LOG_WARN,
                       "cannot remove %s left by killed run %ld: %s", path, pid,
                       strerror(err));
            else
                aw_log(ctx, AW_LOG_WARN, "removed %s left by killed run %ld",
                       path, pid);
        }
        free(path);
        free(final);
    }
    closedir(d);
}

void aw_date_abort(date_work *w)
{
    date_out *o = w->out;
    if (!o)
        return;
    for (size_t k = 0; k < o->n_wr; k++)
        aw_rwriter_abort(o->wr[k]);
    /* In an MPI run the staging folder is rank 0's. */
    if (o->stage && aw_par_root())
        remove_tree(o->stage);
    free(o->stage);
    free(o->final);
    free(o->old);
    free(o);
    w->out = NULL;
}

static aw_status date_open_root(aw_ctx *ctx, run_state *rs, date_work *w);

/* Collective in an MPI run: rank 0 makes the staging folder and the
 * rasters' shared files, then the other ranks open them for their rows. */
aw_status aw_date_open(aw_ctx *ctx, run_state *rs, date_work *w)
{
    if (aw_par_size() < 2)
        return date_open_root(ctx, rs, w);
    double t0 = aw_now();
    aw_status st = aw_par_root() ? date_open_root(ctx, rs, w) : AW_OK;
    st = aw_par_agree(ctx, st);
    if (st != AW_OK) {
        aw_date_abort(w);
        return st;
    }
    char *stage = aw_par_root() ? aw_strdup(w->out->stage) : NULL;
    aw_par_bcast_str(&stage, 0);
    if (!aw_par_root()) {
        date_out *o = calloc(1, sizeof *o);
        w->out = o;
        if (!o || !stage) {
            free(stage);
            st = aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
        }
        else {
            o->stage = stage;
            st = open_rasters(ctx, rs, w);
        }
    }
    else
        free(stage);
    st = aw_par_agree(ctx, st);
    if (st != AW_OK)
        aw_date_abort(w);
    w->t[ST_WRITE] += aw_now() - t0;
    return st;
}

/* Collective in an MPI run: every rank has written its rows; each raster
 * is then encoded by one rank (several at once, balanced by size),
 * and the writers are gone from every rank. aw_date_finish (rank 0) then
 * lists them. */
aw_status aw_date_close_rasters(aw_ctx *ctx, run_state *rs, date_work *w)
{
    (void)rs;
    double t0 = aw_now();
    date_out *o = w->out;
    aw_status st = AW_OK;
    for (size_t k = 0; k < o->n_wr && st == AW_OK; k++)
        st = aw_rwriter_detach(ctx, o->wr[k]);
    st = aw_par_agree(ctx, st);
    int size = aw_par_size(), rank = aw_par_rank();
    /* Who encodes which raster: the largest first, each to the rank with
     * the least bytes so far (the same on every rank). */
    int owner[AW_MAX_WRITERS];
    double load[AW_MAX_WRITERS] = {0}, cost[AW_MAX_WRITERS];
    int order[AW_MAX_WRITERS];
    for (size_t k = 0; k < o->n_wr; k++) {
        cost[k] = (double)aw_rwriter_pixel_bytes(o->wr[k]);
        order[k] = (int)k;
    }
    for (size_t a = 1; a < o->n_wr; a++) /* insertion sort, stable */
        for (size_t b = a; b > 0 && cost[order[b]] > cost[order[b - 1]]; b--) {
            int t = order[b];
            order[b] = order[b - 1];
            order[b - 1] = t;
        }
    for (size_t i = 0; i < o->n_wr; i++) {
        int best = 0;
        for (int r = 1; r < size && r < AW_MAX_WRITERS; r++)
            if (load[r] < load[best])
                best = r;
        owner[order[i]] = best;
        load[best] += cost[order[i]];
    }
    for (size_t k = 0; k < o->n_wr; k++) {
        aw_rwriter *wr = o->wr[k];
        o->wr[k] = NULL;
        if (owner[k] != rank)
            aw_rwriter_forget(wr); /* another rank's to encode */
        else if (st == AW_OK)
            st = aw_rwriter_close(ctx, wr);
        else
            aw_rwriter_abort(wr);
    }
    st = aw_par_agree(ctx, st);
    w->t[ST_WRITE] += aw_now() - t0;
    return st;
}

static aw_status date_open_root(aw_ctx *ctx, run_state *rs, date_work *w)
{
    double t0 = aw_now();
    aw_status st = AW_OK;
    date_out *o = calloc(1, sizeof *o);
    if (!o)
        return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    w->out = o;
    o->final = aw_asprintf("%s/%s", rs->region_dir, w->date);
    o->stage = aw_asprintf("%s/.%s.partial-%ld", rs->region_dir, w->date,
                           (long)getpid());
    o->old =
        aw_asprintf("%s/.%s.old-%ld", rs->region_dir, w->date, (long)getpid());
    if (!o->final || !o->stage || !o->old) {
        st = aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
        goto done;
    }
    struct stat sb;
    if (!rs->cfg->overwrite && stat(o->final, &sb) == 0) {
        st = aw_fail(ctx, AW_ERR_IO, "%s exists and outputs.overwrite is false",
                     o->final);
        goto done;
    }
    st = aw_mkdirs(ctx, rs->region_dir);
    if (st != AW_OK)
        goto done;
    remove_tree(o->stage); /* a leftover from a killed run with our pid */
    if (mkdir(o->stage, 0777) != 0) {
        st = aw_fail(ctx, AW_ERR_IO, "cannot create %s: %s", o->stage,
                     strerror(errno));
        goto done;
    }
    st = open_rasters(ctx, rs, w);
    if (st == AW_OK)
        st = aw_rwriters_create(ctx, o->wr, o->n_wr);
done:
    if (st != AW_OK)
        aw_date_abort(w);
    w->t[ST_WRITE] += aw_now() - t0;
    return st;
}

/* A file's checksum and size for the manifest, and the file on disk
 * (fsync) before its folder is published. Any thread. */
static void sum_file(const char *path, char hex[65], long long *bytes,
                     int *sync_err)
{
    aw_ctx *tc = aw_ctx_create();
    struct stat ob;
    *bytes = -1;
    if (path && tc && aw_sha256_file(tc, path, hex) == AW_OK &&
        stat(path, &ob) == 0)
        *bytes = (long long)ob.st_size;
    int fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    if (fd >= 0) {
        if (fsync(fd) != 0 && errno != EINVAL && errno != EROFS)
            *sync_err = errno;
        close(fd);
    }
    if (tc)
        aw_ctx_destroy(tc);
}

/* The rasters' checksums, each taken on a thread of its own as soon as the
 * raster is closed, while the next one is closed (its last tiles
 * compressed, a COG laid out from its spool): taken after all of them,
 * they were a third of a second of the bench's default product with one
 * core idle. Those still waiting when the last raster is closed are
 * shared with the closing thread (sum_queue_join): with the worker alone,
 * the bench's last two float32 COGs kept one core idle for a quarter of
 * a second. */
typedef struct {
    pthread_t thread;
    int running;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t ready;   /* rasters closed, in order */
    size_t claimed; /* of those, taken by a thread to sum */
    int no_more;    /* no more will come (sum_queue_join) */
    char **path;    /* per raster */
    char (*hex)[65];
    long long *bytes;
    int *sync_err;
    unsigned char *summed; /* read after the join */
    size_t n;
} sum_queue;

/* Sums the rasters ready and not taken yet, one at a time; with `wait`
 * (the worker), waits for more until no more will come. */
static void sum_some(sum_queue *q, int wait)
{
    for (;;) {
        pthread_mutex_lock(&q->mu);
        while (wait && q->claimed >= q->ready && !q->no_more)
            pthread_cond_wait(&q->cv, &q->mu);
        size_t k = q->claimed;
        int more = k < q->ready;
        if (more)
            q->claimed++;
        pthread_mutex_unlock(&q->mu);
        if (!more)
            return;
        sum_file(q->path[k], q->hex[k], &q->bytes[k], &q->sync_err[k]);
        q->summed[k] = 1;
    }
}

static void *sum_worker(void *arg)
{
    sum_some(arg, 1);
    return NULL;
}

/* Hands the next raster (closed; its path taken over, NULL when it could
 * not be made: no checksum) to the worker. */
static void sum_queue_push(sum_queue *q, char *path)
{
    if (!q->running || q->ready >= q->n) {
        free(path);
        return;
    }
    pthread_mutex_lock(&q->mu);
    q->path[q->ready++] = path;
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

/* Starts the worker; without it (no memory, no thread) every checksum is
 * taken after the rasters, as before. */
static void sum_queue_start(sum_queue *q, size_t n)
{
    memset(q, 0, sizeof *q);
    q->n = n;
    q->path = calloc(n ? n : 1, sizeof *q->path);
    q->hex = calloc(n ? n : 1, sizeof *q->hex);
    q->bytes = calloc(n ? n : 1, sizeof *q->bytes);
    q->sync_err = calloc(n ? n : 1, sizeof *q->sync_err);
    q->summed = calloc(n ? n : 1, 1);
    if (!q->path || !q->hex || !q->bytes || !q->sync_err || !q->summed)
        return;
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cv, NULL);
    q->running = pthread_create(&q->thread, NULL, sum_worker, q) == 0;
    if (!q->running) {
        pthread_mutex_destroy(&q->mu);
        pthread_cond_destroy(&q->cv);
    }
}

/* Tells the worker that no more will come, sums what it has not taken
 * yet beside it, and waits for it. Which rasters were summed: q->summed. */
static void sum_queue_join(sum_queue *q)
{
    if (!q->running)
        return;
    pthread_mutex_lock(&q->mu);
    q->no_more = 1;
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
    sum_some(q, 0);
    pthread_join(q->thread, NULL);
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->cv);
    q->running = 0;
}

static void sum_queue_free(sum_queue *q)
{
    for (size_t k = 0; q->path && k < q->n; k++)
        free(q->path[k]);
    free(q->path);
    free(q->hex);
    free(q->bytes);
    free(q->sync_err);
    free(q->summed);
}

aw_status aw_date_finish(aw_ctx *ctx, run_state *rs, date_work *w)
{
    double t0 = aw_now();
    date_out *dout = w->out;
    aw_status st = AW_OK;
    struct stat sb;
    const char *stage = dout->stage, *final = dout->final, *old = dout->old;
    json_t *outs = json_array();
    if (!outs) {
        aw_date_abort(w);
        return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    }
    /* Finish every raster (a COG is made now), then list it; its checksum
     * is taken while the next one is finished. */
    size_t n_wr = dout->n_wr;
    size_t raster_at[AW_MAX_WRITERS]; /* its place in outs */
    sum_queue q;
    sum_queue_start(&q, n_wr);
    for (size_t k = 0; k < n_wr; k++) {
        aw_rwriter *wr = dout->wr[k];
        dout->wr[k] = NULL;
        if (!wr)
            ; /* encoded already (aw_date_close_rasters) */
        else if (st == AW_OK)
            st = aw_rwriter_close(ctx, wr);
        else
            aw_rwriter_abort(wr);
        if (st == AW_OK)
            sum_queue_push(&q, aw_path_join(stage, dout->name[k]));
        raster_at[k] = json_array_size(outs);
        json_array_append_new(outs, json_string(dout->name[k]));
        if (dout->kind[k] != OUT_INDEX)
            add_sidecar(outs, stage, dout->name[k]);
    }
    dout->n_wr = 0;
    if (st == AW_OK) {
        st = write_zones(ctx, rs, w, stage);
        json_array_append_new(outs, json_string("zones.csv"));
        json_array_append_new(outs, json_string("zones.json"));
    }
    if (st == AW_OK) {
        st = write_alerts(ctx, rs, w, stage);
        json_array_append_new(outs, json_string("alerts.json"));
        if (rs->zones.n)
            json_array_append_new(outs, json_string("alerts.geojson"));
        size_t i;
        json_t *a;
        if (rs->cfg->cap && w->alerts)
            json_array_foreach(w->alerts, i, a)
            {
                char name[80];
                snprintf(name, sizeof name, "cap/%s.xml",
                         json_string_value(json_object_get(a, "alert_id")));
                json_array_append_new(outs, json_string(name));
            }
    }
    if (st == AW_OK) {
        /* Checksums of every other output, for the manifest, and each file
         * on disk (fsync) before the folder is published: a file per
         * thread, beside the rasters' worker. */
        json_t *listed = json_array();
        size_t nout = json_array_size(outs);
        char(*hexes)[65] = aw_calloc2(nout ? nout : 1, sizeof *hexes);
        long long *sizes = aw_calloc2(nout ? nout : 1, sizeof *sizes);
        int *sync_err = aw_calloc2(nout ? nout : 1, sizeof *sync_err);
        unsigned char *by_worker = aw_calloc2(nout ? nout : 1, 1);
        if (!hexes || !sizes || !sync_err || !by_worker)
            st = aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
        else {
            for (size_t k = 0; k < n_wr && q.running; k++)
                by_worker[raster_at[k]] = 1;
#pragma omp parallel for schedule(dynamic, 1) if (nout > 1)
            for (size_t k = 0; k < nout; k++) {
                if (by_worker[k])
                    continue;
                char *p = aw_path_join(
                    stage, json_string_value(json_array_get(outs, k)));
                sum_file(p, hexes[k], &sizes[k], &sync_err[k]);
                free(p);
            }
            sum_queue_join(&q);
            for (size_t k = 0; k < n_wr; k++) {
                if (!by_worker[raster_at[k]])
                    continue;
                size_t i = raster_at[k];
                if (q.summed[k]) {
                    memcpy(hexes[i], q.hex[k], sizeof hexes[i]);
                    sizes[i] = q.bytes[k];
                    sync_err[i] = q.sync_err[k];
                }
                else if (st == AW_OK) {
                    /* Every raster handed over is summed by the join: a
                     * manifest without its checksum is a bug to see. */
                    st = aw_fail(ctx, AW_ERR_INTERNAL,
                                 "%s/%s: checksum not taken", stage,
                                 dout->name[k]);
                }
            }
            for (size_t k = 0; k < nout && st == AW_OK; k++) {
                const char *name = json_string_value(json_array_get(outs, k));
                if (sync_err[k]) {
                    char note[256];
                    st = aw_fail(ctx, AW_ERR_IO, "%s/%s: fsync failed: %s%s",
                                 stage, name, strerror(sync_err[k]),
                                 aw_disk_full_note(stage, note, sizeof note));
                    break;
                }
                json_t *o = json_object();
                json_object_set_new(o, "file", json_string(name));
                if (sizes[k] >= 0) {
                    json_object_set_new(o, "sha256", json_string(hexes[k]));
                    json_object_set_new(o, "bytes", json_integer(sizes[k]));
                }
                json_array_append_new(listed, o);
            }
        }
        free(sync_err);
        free(hexes);
        free(sizes);
        free(by_worker);
        /* The manifest records the write stage up to itself. */
        w->t[ST_WRITE] += aw_now() - t0;
        t0 = aw_now();
        json_t *m = manifest(ctx, rs, w, listed, &st);
        if (st == AW_OK)
            st = write_json(ctx, stage, "manifest.json", m);
        if (st == AW_OK)
            st = aw_write_stac_item(ctx, stage, m);
        json_decref(m);
    }
    if (st != AW_OK)
        goto done;
    aw_fsync_path(stage);
    /* Swap the complete folder in: atomically exchanged with an existing
     * one (RENAME_EXCHANGE), so the date folder never goes missing; on a
     * filesystem without exchange, moved aside first. */
    if (stat(final, &sb) == 0) {
        if (renameat2(AT_FDCWD, stage, AT_FDCWD, final, RENAME_EXCHANGE) == 0) {
            remove_or_warn(ctx, stage); /* now the previous products */
        }
        else if (errno == EINVAL || errno == ENOSYS || errno == ENOTSUP) {
            remove_or_warn(ctx, old);
            if (rename(final, old) != 0) {
                st = aw_fail(ctx, AW_ERR_IO, "cannot move %s aside: %s", final,
                             strerror(errno));
                goto done;
            }
            if (rename(stage, final) != 0) {
                st = aw_fail(ctx, AW_ERR_IO, "cannot rename %s to %s: %s",
                             stage, final, strerror(errno));
                rename(old, final);
                goto done;
            }
            remove_or_warn(ctx, old);
        }
        else {
            st = aw_fail(ctx, AW_ERR_IO, "cannot exchange %s and %s: %s", stage,
                         final, strerror(errno));
            goto done;
        }
    }
    else if (rename(stage, final) != 0) {
        st = aw_fail(ctx, AW_ERR_IO, "cannot rename %s to %s: %s", stage, final,
                     strerror(errno));
        goto done;
    }
    aw_fsync_path(rs->region_dir);
    aw_log(ctx, AW_LOG_INFO, "%s: wrote %s", w->date, final);
    st = aw_write_stac_collection(ctx, rs->region_dir, rs->cfg->region_name);
done:
    sum_queue_join(&q);
    sum_queue_free(&q);
    json_decref(outs);
    if (st == AW_OK) {
        free(dout->stage);
        dout->stage = NULL; /* in place: nothing to remove */
    }
    aw_date_abort(w);
    w->t[ST_WRITE] += aw_now() - t0;
    return st;
}
