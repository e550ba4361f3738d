/* Sensor profiles: turn a product as the provider delivers it into a scene
 * (band files per role, scale/offset, nodata, quality band, date and
 * metadata). See include/aralwatch/profile.h for the contract.
 *
 * Detection order for a folder (sensor auto):
 *   1. a *_MTL.txt -> Landsat: Collection 2 Level-2 (landsat_c2_l2) when the
 *      outermost group is LANDSAT_METADATA_FILE and PROCESSING_LEVEL starts
 *      with "L2", otherwise Level-1 read by the generic profile;
 *   2. Sentinel-2 L2A: a .SAFE layout (GRANULE/<g>/IMG_DATA/R10m ...), loose
 *      band files named as ESA names them, or a folder of cloud-archive COGs
 *      (B03.tif, SCL.tif);
 *   3. generic: the folder's only raster with 4 or more bands.
 * A file is read as an MTL (*_MTL.txt), as the MTD_MSIL2A.xml of a
 * Sentinel-2 product, or as a generic raster.
 *
 * Nothing is logged; every choice that changes the numbers (where the scale
 * and offset come from, bands found by name instead of by the metadata, a
 * quality band not used) goes into sc->offset_note, which ends up in the
 * run manifest. On failure the fields this file set are cleared again, so a
 * half-detected scene never escapes. */
#define _POSIX_C_SOURCE     200809L
#define _LARGEFILE64_SOURCE /* VSIStatBufL is a struct stat64 */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <cpl_error.h>
#include <cpl_minixml.h>
#include <cpl_string.h>
#include <cpl_vsi.h>
#include <cpl_conv.h>
#include <gdal.h>
#include "aralwatch/profile.h"
#include "aralwatch/util.h"
#include "internal.h"

#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))
#define PI_180      (3.14159265358979323846 / 180.0)
#define XML_DEPTH   64 /* deeper XML elements are not searched */

/* Sentinel-2 processing baseline 04.00 (BOA_ADD_OFFSET -1000) started with
 * the products sensed on this day. */
#define S2_PB04_DATE "2022-01-25"

/* ---- Sensor names ---- */

static const char *const sensor_names[] = {"auto", "generic", "landsat_c2_l2",
                                           "sentinel2_l2a"};

const char *aw_sensor_name(aw_sensor s)
{
    return (unsigned)s < COUNT_OF(sensor_names) ? sensor_names[s] : "?";
}

int aw_sensor_from_name(const char *name)
{
    if (!name)
        return -1;
    for (size_t i = 0; i < COUNT_OF(sensor_names); i++)
        if (strcmp(name, sensor_names[i]) == 0)
            return (int)i;
    return -1;
}

/* ---- Small helpers ---- */

static aw_status nomem(aw_ctx *ctx)
{
    return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
}

static int ends_with_ci(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcasecmp(s + n - k, suffix) == 0;
}

/* Through GDAL's virtual file system, so that a zipped SAFE
 * (/vsizip/...) reads like a folder. */
static int is_dir(const char *path)
{
    VSIStatBufL sb;
    return VSIStatL(path, &sb) == 0 && VSI_ISDIR(sb.st_mode);
}

static int is_file(const char *path)
{
    VSIStatBufL sb;
    return VSIStatL(path, &sb) == 0 && VSI_ISREG(sb.st_mode);
}

/* s[0..n) are all decimal digits (stops at a NUL, so never reads past
 * the end of s). */
static int is_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

static int digits_val(const char *s, size_t n)
{
    int v = 0;
    for (size_t i = 0; i < n; i++)
        v = 10 * v + (s[i] - '0');
    return v;
}

/* A whole string as a finite number. */
static int parse_double(const char *s, double *out)
{
    if (!s)
        return 0;
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno == ERANGE || !isfinite(v))
        return 0;
    while (*end == ' ' || *end == '\t')
        end++;
    if (*end)
        return 0;
    *out = v;
    return 1;
}

static int parse_int(const char *s, int *out)
{
    if (!s)
        return 0;
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || errno == ERANGE || *end || v < -2147483647L ||
        v > 2147483647L)
        return 0;
    *out = (int)v;
    return 1;
}

/* Replace *dst with a copy of s; a NULL s leaves *dst alone. -1 on no
 * memory. */
static int set_str(char **dst, const char *s)
{
    if (!s)
        return 0;
    char *c = aw_strdup(s);
    if (!c)
        return -1;
    free(*dst);
    *dst = c;
    return 0;
}

/* Base name of a path without its extension; heap string. */
static char *stem_of(const char *path)
{
    char *b = aw_path_basename(path);
    if (!b)
        return NULL;
    char *dot = strrchr(b, '.');
    if (dot && dot != b)
        *dot = '\0';
    return b;
}

/* " + v" or " - |v|" for formulas in notes. */
static const char *signed_term(char buf[40], double v)
{
    snprintf(buf, 40, " %c %.10g", v < 0 ? '-' : '+', fabs(v));
    return buf;
}

/* ---- Dates ---- */

static int is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int valid_ymd(int y, int m, int d)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30,
                                  31, 31, 30, 31, 30, 31};
    if (y < 1900 || y > 2999 || m < 1 || m > 12 || d < 1)
        return 0;
    return d <= mdays[m - 1] + (m == 2 && is_leap(y));
}

static int format_date(int y, int m, int d, char out[11])
{
    if (!valid_ymd(y, m, d))
        return 0;
    const int parts[3] = {y, m, d}, widths[3] = {4, 2, 2};
    char *o = out;
    for (int i = 0; i < 3; i++) {
        if (i)
            *o++ = '-';
        for (int k = widths[i] - 1, v = parts[i]; k >= 0; k--, v /= 10)
            o[k] = (char)('0' + v % 10);
        o += widths[i];
    }
    *o = '\0';
    return 1;
}

/* "YYYY-MM-DD" at the start of s. */
static int parse_iso_date(const char *s, char out[11])
{
    if (!s || !is_digits(s, 4) || s[4] != '-' || !is_digits(s + 5, 2) ||
        s[7] != '-' || !is_digits(s + 8, 2))
        return 0;
    return format_date(digits_val(s, 4), digits_val(s + 5, 2),
                       digits_val(s + 8, 2), out);
}

/* "YYYYMMDD" at the start of s. */
static int parse_compact_date(const char *s, char out[11])
{
    if (!is_digits(s, 8))
        return 0;
    return format_date(digits_val(s, 4), digits_val(s + 4, 2),
                       digits_val(s + 6, 2), out);
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static long long days_from_civil(long long y, int m, int d)
{
    y -= m <= 2;
    long long era = (y >= 0 ? y : y - 399) / 400;
    long long yoe = y - era * 400;
    long long mp = (m + 9) % 12;
    long long doy = (153 * mp + 2) / 5 + d - 1;
    long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(long long z, int *y, int *m, int *d)
{
    z += 719468;
    long long era = (z >= 0 ? z : z - 146096) / 146097;
    long long doe = z - era * 146097;
    long long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    long long mp = (5 * doy + 2) / 153;
    long long dd = doy - (153 * mp + 2) / 5 + 1;
    long long mm = mp < 10 ? mp + 3 : mp - 9;
    *y = (int)(yoe + era * 400 + (mm <= 2));
    *m = (int)mm;
    *d = (int)dd;
}

/* "YYYY-MM-DDTHH:MM:SS[.fff][Z|+HH:MM|-HH:MM|+HHMM]" -> UTC
 * "YYYY-MM-DDTHH:MM:SSZ" (fractions dropped; no zone means UTC). */
static int parse_iso_datetime(const char *s, char out[32])
{
    char date[11];
    if (!parse_iso_date(s, date) || (s[10] != 'T' && s[10] != ' '))
        return 0;
    const char *t = s + 11;
    if (!is_digits(t, 2) || t[2] != ':' || !is_digits(t + 3, 2) ||
        t[5] != ':' || !is_digits(t + 6, 2))
        return 0;
    int h = digits_val(t, 2), mi = digits_val(t + 3, 2),
        se = digits_val(t + 6, 2);
    if (h > 23 || mi > 59 || se > 60)
        return 0;
    const char *z = t + 8;
    if (*z == '.') {
        z++;
        while (*z >= '0' && *z <= '9')
            z++;
    }
    long long off = 0;
    if (*z == 'Z' || *z == 'z') {
        z++;
    }
    else if (*z == '+' || *z == '-') {
        int sign = *z == '-' ? -1 : 1;
        z++;
        if (!is_digits(z, 2))
            return 0;
        int oh = digits_val(z, 2), om = 0;
        z += 2;
        if (*z == ':')
            z++;
        if (is_digits(z, 2)) {
            om = digits_val(z, 2);
            z += 2;
        }
        if (oh > 23 || om > 59)
            return 0;
        off = sign * (oh * 3600LL + om * 60LL);
    }
    if (*z)
        return 0;
    long long secs =
        days_from_civil(digits_val(date, 4), digits_val(date + 5, 2),
                        digits_val(date + 8, 2)) *
            86400LL +
        h * 3600LL + mi * 60LL + se - off;
    long long days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
    long long rem = secs - days * 86400;
    int y, m, d;
    civil_from_days(days, &y, &m, &d);
    if (!valid_ymd(y, m, d))
        return 0;
    snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02dZ", y, m, d,
             (int)(rem / 3600), (int)(rem / 60 % 60), (int)(rem % 60));
    return 1;
}

/* The first "YYYYMMDD" run of exactly 8 digits in name that is a valid
 * date. */
static int date_in_name(const char *name, char out[11])
{
    size_t n = strlen(name);
    for (size_t i = 0; i + 8 <= n; i++) {
        if (i > 0 && name[i - 1] >= '0' && name[i - 1] <= '9')
            continue;
        if (!is_digits(name + i, 8))
            continue;
        if (name[i + 8] >= '0' && name[i + 8] <= '9')
            continue;
        if (parse_compact_date(name + i, out))
            return 1;
    }
    return 0;
}

/* ---- Folder listings ---- */

typedef struct strlist {
    char **v;
    size_t n, cap;
} strlist;

static void strlist_free(strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

static int strlist_push(strlist *l, const char *s)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 32;
        char **v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return -1;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n] = aw_strdup(s);
    if (!l->v[l->n])
        return -1;
    l->n++;
    return 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The entries of a folder except hidden ones, sorted. */
static aw_status list_dir(aw_ctx *ctx, const char *dir, strlist *out)
{
    if (!is_dir(dir))
        return aw_fail(ctx, AW_ERR_INPUT, "%s: cannot list the folder", dir);
    char **entries = VSIReadDir(dir);
    for (char **e = entries; e && *e; e++) {
        if ((*e)[0] == '.')
            continue;
        if (strlist_push(out, *e) != 0) {
            CSLDestroy(entries);
            strlist_free(out);
            return nomem(ctx);
        }
    }
    CSLDestroy(entries);
    if (out->n > 1)
        qsort(out->v, out->n, sizeof *out->v, cmp_names);
    return AW_OK;
}

/* ---- Scene fields ---- */

/* Append "; text" (or text) to sc->offset_note. */
static aw_status note(aw_ctx *ctx, aw_scene_cfg *sc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static aw_status note(aw_ctx *ctx, aw_scene_cfg *sc, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    char *n = sc->offset_note ? aw_asprintf("%s; %s", sc->offset_note, buf)
                              : aw_strdup(buf);
    if (!n)
        return nomem(ctx);
    free(sc->offset_note);
    sc->offset_note = n;
    return AW_OK;
}

static aw_status set_band(aw_ctx *ctx, aw_band_src *b, char *path, int band,
                          double scale, double offset, int has_nodata,
                          double nodata)
{
    if (!path)
        return nomem(ctx);
    free(b->path);
    b->path = path;
    b->present = 1;
    b->band = band;
    b->scale = scale;
    b->offset = offset;
    b->has_nodata = has_nodata;
    b->nodata = has_nodata ? nodata : 0.0;
    return AW_OK;
}

static void set_date(aw_scene_cfg *sc, const char ymd[11])
{
    if (!sc->date[0])
        memcpy(sc->date, ymd, 11);
}

/* sc->id from the product id, else the base name of path without its
 * extension. */
static aw_status set_default_id(aw_ctx *ctx, aw_scene_cfg *sc, const char *path)
{
    if (sc->id)
        return AW_OK;
    sc->id = sc->product_id ? aw_strdup(sc->product_id) : stem_of(path);
    return sc->id ? AW_OK : nomem(ctx);
}

/* Undo what detection set (the caller's id and date stay). */
static void reset_scene(aw_scene_cfg *sc, int keep_id, int keep_date)
{
    for (int b = 0; b < AW_BAND_COUNT; b++) {
        free(sc->bands[b].path);
        memset(&sc->bands[b], 0, sizeof sc->bands[b]);
    }
    free(sc->qa.path);
    memset(&sc->qa, 0, sizeof sc->qa);
    if (!keep_id) {
        free(sc->id);
        sc->id = NULL;
    }
    if (!keep_date)
        sc->date[0] = '\0';
    sc->sensor = AW_SENSOR_AUTO;
    sc->qa_kind = AW_QA_NONE;
    sc->datetime[0] = '\0';
    char **strs[] = {&sc->platform, &sc->product_id, &sc->tile_id,
                     &sc->processing_baseline, &sc->offset_note};
    for (size_t i = 0; i < COUNT_OF(strs); i++) {
        free(*strs[i]);
        *strs[i] = NULL;
    }
    sc->cloud_cover = NAN;
    sc->sun_elevation = NAN;
    sc->sun_azimuth = NAN;
    sc->wrs_path = sc->wrs_row = 0;
}

/* ---- Landsat (MTL) ---- */

/* Band numbers of blue, green, red, nir, swir1, swir2. */
static const int oli_bands[AW_BAND_COUNT] = {2, 3, 4, 5, 6, 7};
static const int tm_bands[AW_BAND_COUNT] = {1, 2, 3, 4, 5, 7};

static const int *landsat_band_map(const char *spacecraft)
{
    if (!spacecraft)
        return NULL;
    if (strcmp(spacecraft, "LANDSAT_8") == 0 ||
        strcmp(spacecraft, "LANDSAT_9") == 0)
        return oli_bands;
    if (strcmp(spacecraft, "LANDSAT_4") == 0 ||
        strcmp(spacecraft, "LANDSAT_5") == 0 ||
        strcmp(spacecraft, "LANDSAT_7") == 0)
        return tm_bands;
    return NULL;
}

/* Date, time, platform, ids, cloud cover, sun elevation, WRS path/row. */
static aw_status landsat_meta(aw_ctx *ctx, const aw_mtl *m, const char *mtl,
                              aw_scene_cfg *sc)
{
    const char *key = "DATE_ACQUIRED";
    const char *d = aw_mtl_get(m, key);
    if (!d) {
        key = "ACQUISITION_DATE";
        d = aw_mtl_get(m, key);
    }
    if (d) {
        char ymd[11];
        if (!parse_iso_date(d, ymd) || d[10] != '\0')
            return aw_fail(ctx, AW_ERR_INPUT, "%s: %s '%s' is not a date", mtl,
                           key, d);
        set_date(sc, ymd);
        const char *tkey = "SCENE_CENTER_TIME";
        const char *t = aw_mtl_get(m, tkey);
        if (!t) {
            tkey = "SCENE_CENTER_SCAN_TIME";
            t = aw_mtl_get(m, tkey);
        }
        if (t) {
            char *iso = aw_asprintf("%sT%s", ymd, t);
            if (!iso)
                return nomem(ctx);
            int ok = parse_iso_datetime(iso, sc->datetime);
            free(iso);
            if (!ok)
                return aw_fail(ctx, AW_ERR_INPUT, "%s: %s '%s' is not a time",
                               mtl, tkey, t);
        }
    }
    const char *pid = aw_mtl_get(m, "LANDSAT_PRODUCT_ID");
    if (!pid)
        pid = aw_mtl_get(m, "LANDSAT_SCENE_ID");
    if (set_str(&sc->platform, aw_mtl_get(m, "SPACECRAFT_ID")) != 0 ||
        set_str(&sc->product_id, pid) != 0)
        return nomem(ctx);
    double v;
    if (parse_double(aw_mtl_get(m, "CLOUD_COVER"), &v) && v >= 0)
        sc->cloud_cover = v;
    if (parse_double(aw_mtl_get(m, "SUN_ELEVATION"), &v))
        sc->sun_elevation = v;
    if (parse_double(aw_mtl_get(m, "SUN_AZIMUTH"), &v))
        sc->sun_azimuth = v;
    int k;
    if (parse_int(aw_mtl_get(m, "WRS_PATH"), &k) && k > 0)
        sc->wrs_path = k;
    if (parse_int(aw_mtl_get(m, "WRS_ROW"), &k) && k > 0)
        sc->wrs_row = k;
    return AW_OK;
}

/* REFLECTANCE_MULT/ADD_BAND_n: 1 both found, 0 neither, error otherwise. */
static aw_status landsat_coef(aw_ctx *ctx, const aw_mtl *m, const char *mtl,
                              int n, double *mult, double *add, int *found)
{
    char km[64], ka[64];
    snprintf(km, sizeof km, "REFLECTANCE_MULT_BAND_%d", n);
    snprintf(ka, sizeof ka, "REFLECTANCE_ADD_BAND_%d", n);
    const char *sm = aw_mtl_get(m, km), *sa = aw_mtl_get(m, ka);
    *found = 0;
    if (!sm && !sa)
        return AW_OK;
    if (!sm || !sa)
        return aw_fail(ctx, AW_ERR_INPUT, "%s: has %s but no %s", mtl,
                       sm ? km : ka, sm ? ka : km);
    if (!parse_double(sm, mult))
        return aw_fail(ctx, AW_ERR_INPUT, "%s: %s '%s' is not a number", mtl,
                       km, sm);
    if (!parse_double(sa, add))
        return aw_fail(ctx, AW_ERR_INPUT, "%s: %s '%s' is not a number", mtl,
                       ka, sa);
    *found = 1;
    return AW_OK;
}

/* Landsat Collection 2 Level-2 surface reflectance. */
static aw_status landsat_c2_l2(aw_ctx *ctx, const aw_mtl *m, const char *mtl,
                               const char *dir, const int *map,
                               aw_scene_cfg *sc)
{
    double m0 = 0, a0 = 0;
    int same = 1, defaults = 0;
    for (int r = 0; r < AW_BAND_COUNT; r++) {
        char key[64];
        snprintf(key, sizeof key, "FILE_NAME_BAND_%d", map[r]);
        const char *name = aw_mtl_get(m, key);
        if (!name)
            return aw_fail(ctx, AW_ERR_INPUT, "%s: no %s (the %s band)", mtl,
                           key, aw_band_name((aw_band)r));
        char *path = aw_path_join(dir, name);
        if (!path)
            return nomem(ctx);
        if (!is_file(path)) {
            aw_status st = aw_fail(ctx, AW_ERR_INPUT, "%s: missing (%s in %s)",
                                   path, key, mtl);
            free(path);
            return st;
        }
        double mult = 2.75e-5, add = -0.2;
        int found;
        aw_status st = landsat_coef(ctx, m, mtl, map[r], &mult, &add, &found);
        if (st == AW_OK)
            st = set_band(ctx, &sc->bands[r], path, 1, mult, add, 1, 0.0);
        else
            free(path);
        if (st != AW_OK)
            return st;
        if (!found)
            defaults = 1;
        if (r == 0) {
            m0 = mult;
            a0 = add;
        }
        else if (mult != m0 || add != a0) {
            same = 0;
        }
    }
    const char *qkey = "FILE_NAME_QUALITY_L1_PIXEL";
    const char *qname = aw_mtl_get(m, qkey);
    if (!qname)
        return aw_fail(ctx, AW_ERR_INPUT, "%s: no %s (the QA_PIXEL band)", mtl,
                       qkey);
    char *qpath = aw_path_join(dir, qname);
    if (!qpath)
        return nomem(ctx);
    if (!is_file(qpath)) {
        aw_status st = aw_fail(ctx, AW_ERR_INPUT, "%s: missing (%s in %s)",
                               qpath, qkey, mtl);
        free(qpath);
        return st;
    }
    aw_status st = set_band(ctx, &sc->qa, qpath, 1, 1.0, 0.0, 0, 0.0);
    if (st != AW_OK)
        return st;
    sc->qa_kind = AW_QA_LANDSAT_C2;
    sc->sensor = AW_SENSOR_LANDSAT_C2_L2;
    if (defaults)
        return note(ctx, sc,
                    "surface reflectance = DN * 2.75e-05 - 0.2 (Collection 2 "
                    "Level-2 constants; REFLECTANCE_MULT/ADD_BAND_n missing "
                    "from the MTL)");
    char t[40];
    if (same)
        return note(ctx, sc,
                    "surface reflectance = DN * %.10g%s "
                    "(REFLECTANCE_MULT/ADD_BAND_n of the MTL)",
                    m0, signed_term(t, a0));
    return note(ctx, sc,
                "surface reflectance = DN * REFLECTANCE_MULT_BAND_n + "
                "REFLECTANCE_ADD_BAND_n (per band, from the MTL)");
}

/* The one file in names ending in "_B<n>.TIF" (any case), or NULL. */
static aw_status find_band_suffix(aw_ctx *ctx, const strlist *names,
                                  const char *dir, int n, const char **out)
{
    char suffix[32];
    snprintf(suffix, sizeof suffix, "_B%d.TIF", n);
    *out = NULL;
    for (size_t i = 0; i < names->n; i++) {
        if (!ends_with_ci(names->v[i], suffix))
            continue;
        if (*out)
            return aw_fail(ctx, AW_ERR_INPUT,
                           "%s: both %s and %s end in %s; keep one per band",
                           dir, *out, names->v[i], suffix);
        *out = names->v[i];
    }
    return AW_OK;
}

/* The file of Landsat band n: FILE_NAME_BAND_n when that file is in the
 * folder, else the folder's one *_B<n>.TIF. */
static aw_status landsat_l1_file(aw_ctx *ctx, const aw_mtl *m, const char *mtl,
                                 const char *dir, const strlist *names, int n,
                                 char **path, int *by_suffix)
{
    char key[64];
    snprintf(key, sizeof key, "FILE_NAME_BAND_%d", n);
    const char *name = aw_mtl_get(m, key);
    if (name) {
        *path = aw_path_join(dir, name);
        if (!*path)
            return nomem(ctx);
        if (is_file(*path))
            return AW_OK;
        free(*path);
        *path = NULL;
    }
    const char *found = NULL;
    aw_status st = find_band_suffix(ctx, names, dir, n, &found);
    if (st != AW_OK)
        return st;
    if (!found && name)
        return aw_fail(ctx, AW_ERR_INPUT,
                       "%s: no band %d file: %s in %s names %s, which is not "
                       "there, and no file ends in _B%d.TIF",
                       dir, n, key, mtl, name, n);
    if (!found)
        return aw_fail(ctx, AW_ERR_INPUT,
                       "%s: no band %d file (no %s in %s and no file ending "
                       "in _B%d.TIF)",
                       dir, n, key, mtl, n);
    *by_suffix = 1;
    *path = aw_path_join(dir, found);
    return *path ? AW_OK : nomem(ctx);
}

/* Landsat Level-1 (any collection), read by the generic profile: DN, or
 * top-of-atmosphere reflectance when the MTL has the coefficients. */
static aw_status landsat_l1(aw_ctx *ctx, const aw_mtl *m, const char *mtl,
                            const char *dir, const int *map, int c2,
                            aw_scene_cfg *sc)
{
    strlist names = {0};
    aw_status st = list_dir(ctx, dir, &names);
    if (st != AW_OK)
        return st;
    int by_suffix = 0, n_coef = 0;
    double mult[AW_BAND_COUNT] = {0}, add[AW_BAND_COUNT] = {0};
    char *paths[AW_BAND_COUNT] = {0};
    for (int r = 0; r < AW_BAND_COUNT && st == AW_OK; r++) {
        st = landsat_l1_file(ctx, m, mtl, dir, &names, map[r], &paths[r],
                             &by_suffix);
        int has = 0;
        if (st == AW_OK)
            st = landsat_coef(ctx, m, mtl, map[r], &mult[r], &add[r], &has);
        n_coef += has;
    }
    double elev = sc->sun_elevation;
    int toa = st == AW_OK && n_coef == AW_BAND_COUNT && isfinite(elev) &&
              elev > 0 && elev <= 90;
    int l8 = map == oli_bands;
    double s = toa ? sin(elev * PI_180) : 1.0;
    for (int r = 0; r < AW_BAND_COUNT && st == AW_OK; r++) {
        /* Level-1 fill is DN 0 for every Landsat (USGS); 255 in 8-bit TM/ETM+
         * is saturation, not fill. */
        st = set_band(ctx, &sc->bands[r], paths[r], 1, toa ? mult[r] / s : 1.0,
                      toa ? add[r] / s : 0.0, 1, 0.0);
        paths[r] = NULL;
    }
    for (int r = 0; r < AW_BAND_COUNT; r++)
        free(paths[r]);
    if (st == AW_OK && toa)
        st = note(ctx, sc,
                  "top-of-atmosphere reflectance = (REFLECTANCE_MULT_BAND_n "
                  "* DN + REFLECTANCE_ADD_BAND_n) / sin(SUN_ELEVATION "
                  "%.8g deg), from the MTL",
                  elev);
    else if (st == AW_OK)
        st = note(ctx, sc,
                  "DN as delivered (no reflectance coefficients in the MTL)");
    if (st == AW_OK && by_suffix)
        st = note(ctx, sc,
                  "band files found by their _B<n> suffix (the MTL's "
                  "FILE_NAME_BAND_n are not in the folder)");
    if (st == AW_OK && l8)
        st = note(ctx, sc, "nodata 0 (Level-1 fill)");
    /* Collection 2 Level-1 QA_PIXEL has the Level-2 bit layout. */
    const char *qname = c2 ? aw_mtl_get(m, "FILE_NAME_QUALITY_L1_PIXEL") : NULL;
    char *qpath = qname ? aw_path_join(dir, qname) : NULL;
    if (st == AW_OK && qname && !qpath)
        st = nomem(ctx);
    if (st == AW_OK && qpath && is_file(qpath)) {
        st = set_band(ctx, &sc->qa, qpath, 1, 1.0, 0.0, 0, 0.0);
        qpath = NULL;
        sc->qa_kind = AW_QA_LANDSAT_C2;
    }
    else if (st == AW_OK && c2) {
        st = note(ctx, sc, "no quality band (no QA_PIXEL file in the folder)");
    }
    else if (st == AW_OK) {
        st = note(ctx, sc,
                  "no quality band (the BQA of pre-collection and Collection "
                  "1 Level-1 has other bits than Collection 2 QA_PIXEL)");
    }
    free(qpath);
    strlist_free(&names);
    sc->sensor = AW_SENSOR_GENERIC;
    return st;
}

static aw_status landsat_product(aw_ctx *ctx, const char *mtl, const char *dir,
                                 aw_sensor sensor, aw_scene_cfg *sc)
{
    aw_mtl *m = NULL;
    aw_status st = aw_mtl_load(ctx, mtl, &m);
    if (st != AW_OK)
        return st;
    const char *top = aw_mtl_get(m, "GROUP");
    const char *level = aw_mtl_get(m, "PROCESSING_LEVEL");
    int c2 = top && strcmp(top, "LANDSAT_METADATA_FILE") == 0;
    int l2 = c2 && level && strncmp(level, "L2", 2) == 0;
    const char *craft = aw_mtl_get(m, "SPACECRAFT_ID");
    const int *map = landsat_band_map(craft);
    if (!top || (!c2 && strcmp(top, "L1_METADATA_FILE") != 0))
        st = aw_fail(ctx, AW_ERR_INPUT,
                     "%s: not a Landsat MTL (outermost GROUP is %s, expected "
                     "LANDSAT_METADATA_FILE or L1_METADATA_FILE)",
                     mtl, top ? top : "missing");
    else if (sensor == AW_SENSOR_LANDSAT_C2_L2 && !l2)
        st = aw_fail(ctx, AW_ERR_INPUT,
                     "%s: not a Collection 2 Level-2 product (PROCESSING_LEVEL "
                     "%s); use sensor auto or generic for Level-1",
                     mtl, level ? level : "missing");
    else if (sensor == AW_SENSOR_GENERIC && l2)
        st = aw_fail(ctx, AW_ERR_INPUT,
                     "%s: a Collection 2 Level-2 product; use sensor auto or "
                     "landsat_c2_l2, or map its bands in the config",
                     mtl);
    else if (!map)
        st = aw_fail(ctx, AW_ERR_INPUT,
                     "%s: SPACECRAFT_ID %s: no band map for this spacecraft "
                     "(Landsat 4, 5, 7, 8 and 9 are known); map the bands in "
                     "the config",
                     mtl, craft ? craft : "missing");
    if (st == AW_OK)
        st = landsat_meta(ctx, m, mtl, sc);
    if (st == AW_OK && l2)
        st = landsat_c2_l2(ctx, m, mtl, dir, map, sc);
    else if (st == AW_OK)
        st = landsat_l1(ctx, m, mtl, dir, map, c2, sc);
    aw_mtl_free(m);
    return st;
}

/* The folder's *_MTL.txt: NULL name when there is none. */
static aw_status find_mtl(aw_ctx *ctx, const char *dir, const strlist *names,
                          const char **out)
{
    *out = NULL;
    for (size_t i = 0; i < names->n; i++) {
        const char *n = names->v[i];
        if (!ends_with_ci(n, "_MTL.txt") && strcasecmp(n, "MTL.txt") != 0)
            continue;
        if (*out)
            return aw_fail(ctx, AW_ERR_INPUT,
                           "%s: several MTL files (%s, %s); point the scene "
                           "at one of them",
                           dir, *out, n);
        *out = n;
    }
    /* Collection 2 also ships the same metadata as _MTL.xml: used when
     * there is no _MTL.txt. */
    for (size_t i = 0; i < names->n && !*out; i++)
        if (ends_with_ci(names->v[i], "_MTL.xml"))
            *out = names->v[i];
    return AW_OK;
}

/* ---- XML (GDAL's minixml) ---- */

static const char *local_name(const char *name)
{
    const char *c = strrchr(name, ':');
    return c ? c + 1 : name;
}

static const CPLXMLNode *xml_find_from(const CPLXMLNode *first,
                                       const char *name, int depth)
{
    if (depth > XML_DEPTH)
        return NULL;
    for (const CPLXMLNode *n = first; n; n = n->psNext) {
        if (n->eType != CXT_Element || !n->pszValue)
            continue;
        if (strcmp(local_name(n->pszValue), name) == 0)
            return n;
        const CPLXMLNode *r = xml_find_from(n->psChild, name, depth + 1);
        if (r)
            return r;
    }
    return NULL;
}

/* The first element named `name` (namespace prefix ignored) at or below
 * the elements of the list starting at root, depth first. */
static const CPLXMLNode *xml_find(const CPLXMLNode *root, const char *name)
{
    return root ? xml_find_from(root, name, 0) : NULL;
}

/* An element's text, or NULL. */
static const char *xml_text(const CPLXMLNode *el)
{
    if (!el)
        return NULL;
    for (const CPLXMLNode *c = el->psChild; c; c = c->psNext)
        if (c->eType == CXT_Text && c->pszValue)
            return c->pszValue;
    return NULL;
}

static const char *xml_attr(const CPLXMLNode *el, const char *name)
{
    for (const CPLXMLNode *c = el->psChild; c; c = c->psNext)
        if (c->eType == CXT_Attribute && c->pszValue &&
            strcmp(local_name(c->pszValue), name) == 0)
            return xml_text(c);
    return NULL;
}

static const char *xml_value(const CPLXMLNode *root, const char *name)
{
    return xml_text(xml_find(root, name));
}

static aw_status xml_load(aw_ctx *ctx, const char *path, CPLXMLNode **out)
{
    CPLErrorReset();
    CPLPushErrorHandler(CPLQuietErrorHandler);
    *out = CPLParseXMLFile(path);
    CPLPopErrorHandler();
    if (!*out) {
        const char *why = CPLGetLastErrorMsg();
        return aw_fail(ctx, AW_ERR_INPUT, "%s: cannot parse the XML%s%s", path,
                       why && why[0] ? ": " : "", why ? why : "");
    }
    return AW_OK;
}

/* ---- Sentinel-2 L2A ---- */

enum { S2_SAFE = 1, S2_LOOSE, S2_COG };

/* ESA band order of BOA_ADD_OFFSET band_id. */
static const char *const s2_esa_bands[13] = {"B01", "B02", "B03", "B04", "B05",
                                             "B06", "B07", "B08", "B8A", "B09",
                                             "B10", "B11", "B12"};
/* blue green red nir swir1 swir2 -> ESA band id. */
static const int s2_role_id[AW_BAND_COUNT] = {1, 2, 3, 7, 11, 12};

/* A band file name as ESA writes it: [L2A_]T22HBD_20210122T133229_B03_10m.jp2
 */
typedef struct s2_name {
    char tile[6];   /* "22HBD" */
    char stamp[16]; /* "20210122T133229" */
    char band[4];   /* "B03", "B8A", "SCL" */
    int res;        /* metres */
} s2_name;

static int is_upper_alnum(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static int parse_s2_name(const char *name, s2_name *o)
{
    const char *s = name;
    if (strncmp(s, "L2A_", 4) == 0)
        s += 4;
    if (s[0] != 'T' || !is_digits(s + 1, 2))
        return 0;
    for (int i = 3; i < 6; i++)
        if (s[i] < 'A' || s[i] > 'Z')
            return 0;
    if (s[6] != '_' || !is_digits(s + 7, 8) || s[15] != 'T' ||
        !is_digits(s + 16, 6) || s[22] != '_')
        return 0;
    for (int i = 23; i < 26; i++)
        if (!is_upper_alnum(s[i]))
            return 0;
    if (s[26] != '_' || !is_digits(s + 27, 2) || s[29] != 'm' ||
        strcasecmp(s + 30, ".jp2") != 0)
        return 0;
    memcpy(o->tile, s + 1, 5);
    o->tile[5] = '\0';
    memcpy(o->stamp, s + 7, 15);
    o->stamp[15] = '\0';
    memcpy(o->band, s + 23, 3);
    o->band[3] = '\0';
    o->res = digits_val(s + 27, 2);
    return 1;
}

/* "S2B_MSIL2A_20210122T133229_N0214_R081_T22HBD_20210122T155500[.SAFE]". */
static int parse_safe_name(const char *name, char platform[4], char stamp[16],
                           char baseline[6], char tile[6])
{
    if (strncmp(name, "S2", 2) != 0 || name[2] < 'A' || name[2] > 'D' ||
        strncmp(name + 3, "_MSIL2A_", 8) != 0)
        return 0;
    const char *s = name + 11;
    if (!is_digits(s, 8) || s[8] != 'T' || !is_digits(s + 9, 6) ||
        s[15] != '_' || s[16] != 'N' || !is_digits(s + 17, 4) || s[21] != '_' ||
        s[22] != 'R' || !is_digits(s + 23, 3) || s[26] != '_' || s[27] != 'T' ||
        !is_digits(s + 28, 2))
        return 0;
    for (int i = 30; i < 33; i++)
        if (s[i] < 'A' || s[i] > 'Z')
            return 0;
    if (s[33] != '_')
        return 0;
    memcpy(platform, name, 3);
    platform[3] = '\0';
    memcpy(stamp, s, 15);
    stamp[15] = '\0';
    snprintf(baseline, 6, "%c%c.%c%c", s[17], s[18], s[19], s[20]);
    memcpy(tile, s + 28, 5);
    tile[5] = '\0';
    return 1;
}

/* sentinel-cogs item name "S2A_29RKH_20200219_0_L2A". */
static int parse_cog_name(const char *name, char platform[4], char tile[6],
                          char ymd[11])
{
    if (strncmp(name, "S2", 2) != 0 || name[2] < 'A' || name[2] > 'D' ||
        name[3] != '_' || !is_digits(name + 4, 2))
        return 0;
    for (int i = 6; i < 9; i++)
        if (name[i] < 'A' || name[i] > 'Z')
            return 0;
    if (name[9] != '_' || !parse_compact_date(name + 10, ymd) ||
        name[18] != '_')
        return 0;
    const char *s = name + 19;
    while (*s >= '0' && *s <= '9')
        s++;
    if (s == name + 19 || strcmp(s, "_L2A") != 0)
        return 0;
    memcpy(platform, name, 3);
    platform[3] = '\0';
    memcpy(tile, name + 4, 5);
    tile[5] = '\0';
    return 1;
}

static const char *s2_platform_name(const char code[4])
{
    if (strcmp(code, "S2A") == 0)
        return "Sentinel-2A";
    if (strcmp(code, "S2B") == 0)
        return "Sentinel-2B";
    if (strcmp(code, "S2C") == 0)
        return "Sentinel-2C";
    return "Sentinel-2D";
}

static int is_cog_band_name(const char *name, const char *band)
{
    size_t k = strlen(band);
    /* B03.tif (sentinel-cogs) or B03.jp2 (sentinel-s2-l2a on AWS). */
    return strncasecmp(name, band, k) == 0 &&
           (strcasecmp(name + k, ".tif") == 0 ||
            strcasecmp(name + k, ".tiff") == 0 ||
            strcasecmp(name + k, ".jp2") == 0);
}

static int has_s2_cog_files(const strlist *names)
{
    static const char *const bands[] = {"B01", "B02", "B03", "B04", "B05",
                                        "B06", "B07", "B08", "B8A", "B09",
                                        "B11", "B12", "SCL"};
    for (size_t i = 0; i < names->n; i++)
        for (size_t b = 0; b < COUNT_OF(bands); b++)
            if (is_cog_band_name(names->v[i], bands[b]))
                return 1;
    return 0;
}

/* Which Sentinel-2 form the folder is, or 0. */
static int s2_form(const char *dir, const strlist *names)
{
    char *g = aw_path_join(dir, "GRANULE");
    int safe = ends_with_ci(dir, ".SAFE") || ends_with_ci(dir, ".SAFE/") ||
               (g && is_dir(g));
    free(g);
    if (safe)
        return S2_SAFE;
    for (size_t i = 0; i < names->n; i++) {
        s2_name nm;
        if (strcmp(names->v[i], "MTD_MSIL2A.xml") == 0 ||
            parse_s2_name(names->v[i], &nm))
            return S2_LOOSE;
    }
    if (has_s2_cog_files(names))
        return S2_COG;
    return 0;
}

/* Where the band files of one product are looked for. */
typedef struct s2_files {
    int form;
    const char *res_dir[3]; /* SAFE: IMG_DATA/R10m, R20m, R60m (or NULL) */
    strlist res_names[3];
    const char *dir; /* LOOSE/COG: the folder */
    const strlist *names;
    s2_name first; /* first ESA band name parsed (tile, time) */
    int have_first;
} s2_files;

static const int s2_res[3] = {10, 20, 60};

/* Find band `code` trying the resolutions in prefs (metres, 0-ended).
 * *path is NULL when the band is not there. */
static aw_status s2_find_band(aw_ctx *ctx, s2_files *f, const char *code,
                              const int *prefs, char **path)
{
    *path = NULL;
    if (f->form == S2_COG) {
        const char *hit = NULL;
        for (size_t i = 0; i < f->names->n; i++) {
            if (!is_cog_band_name(f->names->v[i], code))
                continue;
            if (hit)
                return aw_fail(ctx, AW_ERR_INPUT,
                               "%s: both %s and %s hold band %s", f->dir, hit,
                               f->names->v[i], code);
            hit = f->names->v[i];
        }
        if (hit && !(*path = aw_path_join(f->dir, hit)))
            return nomem(ctx);
        return AW_OK;
    }
    for (const int *p = prefs; *p; p++) {
        const char *dir = f->dir;
        const strlist *names = f->names;
        if (f->form == S2_SAFE) {
            int k = *p == 10 ? 0 : *p == 20 ? 1 : 2;
            dir = f->res_dir[k];
            names = &f->res_names[k];
            if (!dir)
                continue;
        }
        const char *hit = NULL;
        for (size_t i = 0; i < names->n; i++) {
            s2_name nm;
            if (!parse_s2_name(names->v[i], &nm) || nm.res != *p ||
                strcmp(nm.band, code) != 0)
                continue;
            if (hit)
                return aw_fail(ctx, AW_ERR_INPUT,
                               "%s: both %s and %s hold band %s at %d m", dir,
                               hit, names->v[i], code, *p);
            hit = names->v[i];
            if (!f->have_first) {
                f->first = nm;
                f->have_first = 1;
            }
        }
        if (hit) {
            *path = aw_path_join(dir, hit);
            return *path ? AW_OK : nomem(ctx);
        }
    }
    return AW_OK;
}

/* Values read from MTD_MSIL2A.xml. */
typedef struct s2_mtd {
    double quant;
    int have_list; /* BOA_ADD_OFFSET_VALUES_LIST present */
    double add[13];
    int have_add[13];
} s2_mtd;

static aw_status s2_read_mtd(aw_ctx *ctx, const char *path, aw_scene_cfg *sc,
                             s2_mtd *md)
{
    CPLXMLNode *root = NULL;
    aw_status st = xml_load(ctx, path, &root);
    if (st != AW_OK)
        return st;
    const char *v = xml_value(root, "PRODUCT_START_TIME");
    if (!v)
        v = xml_value(root, "DATATAKE_SENSING_START");
    if (v) {
        if (!parse_iso_datetime(v, sc->datetime)) {
            st = aw_fail(ctx, AW_ERR_INPUT,
                         "%s: PRODUCT_START_TIME '%s' is not a date and time",
                         path, v);
            goto done;
        }
        char ymd[11];
        memcpy(ymd, sc->datetime, 10);
        ymd[10] = '\0';
        set_date(sc, ymd);
    }
    const char *pid = xml_value(root, "PRODUCT_URI");
    if (!pid)
        pid = xml_value(root, "PRODUCT_NAME");
    if (set_str(&sc->platform, xml_value(root, "SPACECRAFT_NAME")) != 0 ||
        set_str(&sc->product_id, pid) != 0 ||
        set_str(&sc->processing_baseline,
                xml_value(root, "PROCESSING_BASELINE")) != 0) {
        st = nomem(ctx);
        goto done;
    }
    if (sc->product_id && ends_with_ci(sc->product_id, ".SAFE"))
        sc->product_id[strlen(sc->product_id) - 5] = '\0';
    double d;
    if (parse_double(xml_value(root, "Cloud_Coverage_Assessment"), &d) &&
        d >= 0)
        sc->cloud_cover = d;
    md->quant = 10000.0;
    v = xml_value(root, "BOA_QUANTIFICATION_VALUE");
    if (v && (!parse_double(v, &md->quant) || md->quant <= 0)) {
        st = aw_fail(ctx, AW_ERR_INPUT,
                     "%s: BOA_QUANTIFICATION_VALUE '%s' is not a positive "
                     "number",
                     path, v);
        goto done;
    }
    const CPLXMLNode *list = xml_find(root, "BOA_ADD_OFFSET_VALUES_LIST");
    md->have_list = list != NULL;
    for (const CPLXMLNode *c = list ? list->psChild : NULL; c; c = c->psNext) {
        if (c->eType != CXT_Element || !c->pszValue ||
            strcmp(local_name(c->pszValue), "BOA_ADD_OFFSET") != 0)
            continue;
        const char *id = xml_attr(c, "band_id");
        const char *val = xml_text(c);
        int k;
        if (!parse_int(id, &k) || k < 0 || k > 12) {
            st = aw_fail(ctx, AW_ERR_INPUT,
                         "%s: BOA_ADD_OFFSET band_id '%s' is not 0..12", path,
                         id ? id : "missing");
            goto done;
        }
        if (!parse_double(val, &md->add[k])) {
            st = aw_fail(ctx, AW_ERR_INPUT,
                         "%s: BOA_ADD_OFFSET of band_id %d: '%s' is not a "
                         "number",
                         path, k, val ? val : "");
            goto done;
        }
        md->have_add[k] = 1;
    }
done:
    CPLDestroyXMLNode(root);
    return st;
}

/* SAFE: the IMG_DATA/R10m, R20m, R60m folders of the only granule. */
static aw_status s2_safe_dirs(aw_ctx *ctx, const char *dir, s2_files *f,
                              char *res_dirs[3])
{
    char *gdir = aw_path_join(dir, "GRANULE");
    strlist gr = {0};
    char *granule = NULL;
    aw_status st = gdir ? list_dir(ctx, gdir, &gr) : nomem(ctx);
    for (size_t i = 0; st == AW_OK && i < gr.n; i++) {
        char *p = aw_path_join(gdir, gr.v[i]);
        if (!p) {
            st = nomem(ctx);
        }
        else if (!is_dir(p)) {
            free(p);
        }
        else if (granule) {
            st = aw_fail(ctx, AW_ERR_INPUT,
                         "%s: several granules (%s, %s); this profile reads "
                         "single-tile products",
                         gdir, granule, p);
            free(p);
        }
        else {
            granule = p;
        }
    }
    if (st == AW_OK && !granule)
        st = aw_fail(ctx, AW_ERR_INPUT,
                     "%s: no granule folder (a .SAFE product keeps its bands "
                     "in GRANULE/<granule>/IMG_DATA)",
                     gdir);
    for (int k = 0; st == AW_OK && k < 3; k++) {
        char sub[32];
        snprintf(sub, sizeof sub, "IMG_DATA/R%dm", s2_res[k]);
        res_dirs[k] = aw_path_join(granule, sub);
        if (!res_dirs[k])
            st = nomem(ctx);
        else if (is_dir(res_dirs[k])) {
            f->res_dir[k] = res_dirs[k];
            st = list_dir(ctx, res_dirs[k], &f->res_names[k]);
        }
    }
    free(granule);
    free(gdir);
    strlist_free(&gr);
    return st;
}

/* What the product's names tell: tile, sensing time, platform, product id
 * and (SAFE names) the processing baseline. ymd gets the sensing date. */
typedef struct s2_naming {
    char code[4];     /* "S2B" */
    char stamp[16];   /* "20210122T133229" */
    char baseline[6]; /* "02.14" from N0214 */
    char tile[6];
    char ymd[11];
    int safe_named; /* the folder is named like an ESA product */
} s2_naming;

static aw_status s2_from_names(aw_ctx *ctx, const char *base, int form,
                               const s2_files *f, aw_scene_cfg *sc,
                               s2_naming *nm)
{
    nm->safe_named =
        parse_safe_name(base, nm->code, nm->stamp, nm->baseline, nm->tile);
    int cog_named = !nm->safe_named && form == S2_COG &&
                    parse_cog_name(base, nm->code, nm->tile, nm->ymd);
    if (f->have_first) {
        memcpy(nm->tile, f->first.tile, sizeof nm->tile);
        memcpy(nm->stamp, f->first.stamp, sizeof nm->stamp);
    }
    if (nm->stamp[0]) {
        char iso[32];
        const char *s = nm->stamp;
        snprintf(iso, sizeof iso, "%.4s-%.2s-%.2sT%.2s:%.2s:%.2sZ", s, s + 4,
                 s + 6, s + 9, s + 11, s + 13);
        if (parse_iso_datetime(iso, sc->datetime)) {
            memcpy(nm->ymd, sc->datetime, 10);
            nm->ymd[10] = '\0';
        }
    }
    if ((nm->tile[0] && set_str(&sc->tile_id, nm->tile) != 0) ||
        (nm->code[0] &&
         set_str(&sc->platform, s2_platform_name(nm->code)) != 0) ||
        ((nm->safe_named || cog_named) && set_str(&sc->product_id, base) != 0))
        return nomem(ctx);
    return AW_OK;
}

/* Offsets (DN units) of the six roles and the quantification value, from
 * MTD_MSIL2A.xml when there is one (it also fills the metadata), else from
 * the baseline in the product name, else from the sensing date. */
static aw_status s2_offsets(aw_ctx *ctx, const char *dir, aw_scene_cfg *sc,
                            char *const paths[AW_BAND_COUNT],
                            const s2_naming *nm, double off[AW_BAND_COUNT],
                            double *quant)
{
    char t[40];
    s2_mtd md = {.quant = 10000.0};
    char *mtd = aw_path_join(dir, "MTD_MSIL2A.xml");
    if (!mtd)
        return nomem(ctx);
    int have_mtd = is_file(mtd);
    aw_status st = have_mtd ? s2_read_mtd(ctx, mtd, sc, &md) : AW_OK;
    *quant = md.quant;
    double pbv = 0;
    if (st != AW_OK) {
        /* error set */
    }
    else if (have_mtd && md.have_list) {
        int same = 1, first = -1;
        for (int r = 0; r < AW_BAND_COUNT && st == AW_OK; r++) {
            int id = s2_role_id[r];
            if (!paths[r])
                continue;
            if (!md.have_add[id]) {
                st = aw_fail(ctx, AW_ERR_INPUT,
                             "%s: BOA_ADD_OFFSET_VALUES_LIST has no band_id "
                             "%d (%s)",
                             mtd, id, s2_esa_bands[id]);
                break;
            }
            off[r] = md.add[id];
            if (first < 0)
                first = r;
            else if (off[r] != off[first])
                same = 0;
        }
        if (st == AW_OK && same)
            st = note(ctx, sc,
                      "reflectance = (DN%s) / %.10g: BOA_ADD_OFFSET %.10g and "
                      "BOA_QUANTIFICATION_VALUE from MTD_MSIL2A.xml",
                      signed_term(t, off[first]), md.quant, off[first]);
        else if (st == AW_OK)
            st = note(ctx, sc,
                      "reflectance = (DN + BOA_ADD_OFFSET of the band) / "
                      "%.10g (BOA_QUANTIFICATION_VALUE), from MTD_MSIL2A.xml",
                      md.quant);
    }
    else if (have_mtd && parse_double(sc->processing_baseline, &pbv)) {
        double o = pbv >= 4.0 ? -1000.0 : 0.0;
        for (int r = 0; r < AW_BAND_COUNT; r++)
            off[r] = o;
        st = note(ctx, sc,
                  "reflectance = (DN%s) / %.10g (BOA_QUANTIFICATION_VALUE); "
                  "MTD_MSIL2A.xml has no BOA_ADD_OFFSET, so the offset "
                  "follows processing baseline %s (%s 04.00)",
                  signed_term(t, o), md.quant, sc->processing_baseline,
                  pbv >= 4.0 ? ">=" : "<");
    }
    else if (nm->safe_named && parse_double(nm->baseline, &pbv)) {
        double o = pbv >= 4.0 ? -1000.0 : 0.0;
        for (int r = 0; r < AW_BAND_COUNT; r++)
            off[r] = o;
        if (!sc->processing_baseline &&
            set_str(&sc->processing_baseline, nm->baseline) != 0)
            st = nomem(ctx);
        else
            st = note(ctx, sc,
                      "%s; reflectance = (DN%s) / %.10g from processing "
                      "baseline %s in the product name (%s 04.00)",
                      have_mtd ? "MTD_MSIL2A.xml has neither BOA_ADD_OFFSET "
                                 "nor PROCESSING_BASELINE"
                               : "no MTD_MSIL2A.xml",
                      signed_term(t, o), md.quant, nm->baseline,
                      pbv >= 4.0 ? ">=" : "<");
    }
    else {
        const char *when = nm->ymd[0] ? nm->ymd : sc->date;
        if (!when[0]) {
            st = aw_fail(ctx, AW_ERR_INPUT,
                         "%s: no MTD_MSIL2A.xml and no sensing date in the "
                         "file or folder names, so the Sentinel-2 offset "
                         "(processing baseline) is unknown; give the scene a "
                         "'date'",
                         dir);
        }
        else {
            int late = strcmp(when, S2_PB04_DATE) >= 0;
            double o = late ? -1000.0 : 0.0;
            for (int r = 0; r < AW_BAND_COUNT; r++)
                off[r] = o;
            st = note(ctx, sc,
                      "%s; processing baseline assumed from the date (%s is "
                      "%s %s): reflectance = (DN%s) / %.10g",
                      have_mtd ? "MTD_MSIL2A.xml has neither BOA_ADD_OFFSET "
                                 "nor PROCESSING_BASELINE"
                               : "no MTD_MSIL2A.xml",
                      when, late ? "on or after" : "before", S2_PB04_DATE,
                      signed_term(t, o), md.quant);
        }
    }
    free(mtd);
    return st;
}

static aw_status s2_product(aw_ctx *ctx, const char *dir, int form,
                            const strlist *names, aw_scene_cfg *sc)
{
    /* Blue green red nir at 10 m first, swir and SCL at 20 m. */
    static const int pref10[] = {10, 20, 60, 0};
    static const int pref_nir[] = {10, 0};
    static const int pref20[] = {20, 60, 0};
    static const char *const codes[AW_BAND_COUNT] = {"B02", "B03", "B04",
                                                     "B08", "B11", "B12"};
    static const int *const prefs[AW_BAND_COUNT] = {pref10,   pref10, pref10,
                                                    pref_nir, pref20, pref20};
    s2_files f = {.form = form, .dir = dir, .names = names};
    s2_naming nm = {0};
    char *res_dirs[3] = {0};
    char *paths[AW_BAND_COUNT] = {0};
    char *scl = NULL;
    double off[AW_BAND_COUNT] = {0}, quant = 10000.0;
    char missing[64] = "";
    int n_found = 0;
    aw_status st = AW_OK;
    char *base = aw_path_basename(dir);
    if (!base)
        return nomem(ctx);
    if (ends_with_ci(base, ".SAFE"))
        base[strlen(base) - 5] = '\0';

    if (form == S2_SAFE)
        st = s2_safe_dirs(ctx, dir, &f, res_dirs);
    for (int r = 0; r < AW_BAND_COUNT && st == AW_OK; r++) {
        st = s2_find_band(ctx, &f, codes[r], prefs[r], &paths[r]);
        if (st == AW_OK && paths[r]) {
            n_found++;
        }
        else if (st == AW_OK) {
            size_t len = strlen(missing);
            snprintf(missing + len, sizeof missing - len, "%s%s",
                     len ? ", " : "", codes[r]);
        }
    }
    if (st == AW_OK)
        st = s2_find_band(ctx, &f, "SCL", pref20, &scl);
    if (st == AW_OK && n_found == 0)
        st = aw_fail(ctx, AW_ERR_INPUT,
                     "%s: a Sentinel-2 L2A product without any of the band "
                     "files B02 B03 B04 B08 B11 B12",
                     dir);
    if (st == AW_OK)
        st = s2_from_names(ctx, base, form, &f, sc, &nm);
    if (st == AW_OK)
        st = s2_offsets(ctx, dir, sc, paths, &nm, off, &quant);
    if (st == AW_OK && nm.ymd[0])
        set_date(sc, nm.ymd); /* after the MTD's own date */
    for (int r = 0; r < AW_BAND_COUNT && st == AW_OK; r++) {
        if (!paths[r])
            continue;
        st = set_band(ctx, &sc->bands[r], paths[r], 1, 1.0 / quant,
                      off[r] / quant, 1, 0.0);
        paths[r] = NULL;
    }
    if (st == AW_OK && missing[0])
        st = note(ctx, sc, "no %s band file (not mapped)", missing);
    if (st == AW_OK && scl) {
        st = set_band(ctx, &sc->qa, scl, 1, 1.0, 0.0, 0, 0.0);
        scl = NULL;
        sc->qa_kind = AW_QA_S2_SCL;
    }
    else if (st == AW_OK) {
        st = note(ctx, sc, "no SCL band file: no quality mask");
    }
    sc->sensor = AW_SENSOR_SENTINEL2_L2A;
    if (st == AW_OK && !sc->id &&
        !(sc->id = aw_strdup(sc->product_id ? sc->product_id : base)))
        st = nomem(ctx);

    for (int r = 0; r < AW_BAND_COUNT; r++)
        free(paths[r]);
    free(scl);
    for (int k = 0; k < 3; k++) {
        free(res_dirs[k]);
        strlist_free(&f.res_names[k]);
    }
    free(base);
    return st;
}

/* ---- Generic rasters ---- */

static const char *const raster_exts[] = {".tif", ".tiff", ".jp2", ".img",
                                          ".vrt"};

static int has_raster_ext(const char *name)
{
    for (size_t i = 0; i < COUNT_OF(raster_exts); i++)
        if (ends_with_ci(name, raster_exts[i]))
            return 1;
    return 0;
}

static void gdal_ready(void)
{
    if (GDALGetDriverCount() == 0)
        GDALAllRegister();
}

/* Number of bands of a raster, 0 if it cannot be opened (quietly). */
static int raster_band_count(const char *path)
{
    CPLPushErrorHandler(CPLQuietErrorHandler);
    GDALDatasetH ds =
        GDALOpenEx(path, GDAL_OF_RASTER | GDAL_OF_READONLY, NULL, NULL, NULL);
    CPLPopErrorHandler();
    if (!ds)
        return 0;
    int n = GDALGetRasterCount(ds);
    GDALClose(ds);
    return n;
}

/* Where "_metadata" starts in a PlanetScope metadata XML's name:
 * <prefix>_metadata.xml or <prefix>_metadata_clip.xml (any case); NULL
 * for any other name. *sfx_len: 0, or 5 for "_clip". */
static const char *planet_md_at(const char *n, size_t *sfx_len)
{
    size_t len = strlen(n), k = strlen("_metadata");
    static const char *const tails[] = {".xml", "_clip.xml"};
    for (size_t t = 0; t < 2; t++) {
        size_t tl = strlen(tails[t]);
        if (len >= k + tl && ends_with_ci(n, tails[t]) &&
            strncasecmp(n + len - tl - k, "_metadata", k) == 0) {
            *sfx_len = t ? 5 : 0;
            return n + len - tl - k;
        }
    }
    return NULL;
}

/* A PlanetScope "<stem>_metadata.xml" (or "<stem>_metadata_clip.xml" for a
 * file whose name ends in _clip) next to file, whose <stem> starts the
 * file's own name: the longest such stem, the clip one first. NULL if
 * none. */
static char *planet_metadata(const char *file)
{
    char *dir = aw_path_dirname(file);
    char *stem = stem_of(file);
    char *best = NULL;
    size_t best_rank = 0;
    DIR *d = dir && stem ? opendir(dir) : NULL;
    struct dirent *e;
    size_t stl = stem ? strlen(stem) : 0;
    while (d && (e = readdir(d)) != NULL) {
        const char *n = e->d_name;
        size_t sfl = 0;
        const char *m = planet_md_at(n, &sfl);
        if (!m)
            continue;
        size_t sl = (size_t)(m - n);
        if (sl + sfl > stl || strncmp(stem, n, sl) != 0 ||
            (sfl && strncasecmp(stem + stl - sfl, "_clip", sfl) != 0))
            continue;
        size_t rank = 2 * sl + (sfl > 0);
        if (rank <= best_rank)
            continue;
        char *p = aw_path_join(dir, n);
        if (!p)
            continue;
        free(best);
        best = p;
        best_rank = rank;
    }
    if (d)
        closedir(d);
    free(dir);
    free(stem);
    return best;
}

/* The reflectanceCoefficient of every band of a PlanetScope metadata XML
 * (ps:bandSpecificMetadata: ps:bandNumber, ps:reflectanceCoefficient) into
 * the scales of the scene's bands (TOA reflectance = DN * coefficient):
 * all or none. Returns 1 if applied. */
static int planet_coefficients(const CPLXMLNode *root, aw_scene_cfg *sc)
{
    double coef[AW_BAND_COUNT] = {0};
    int n_bands = 0;
    for (int r = 0; r < AW_BAND_COUNT; r++)
        n_bands += sc->bands[r].present;
    const CPLXMLNode *first = xml_find(root, "bandSpecificMetadata");
    int found = 0;
    for (const CPLXMLNode *n = first; n; n = n->psNext) {
        if (n->eType != CXT_Element || !n->pszValue ||
            strcmp(local_name(n->pszValue), "bandSpecificMetadata") != 0)
            continue;
        double num, c;
        if (!parse_double(xml_value(n->psChild, "bandNumber"), &num) ||
            !parse_double(xml_value(n->psChild, "reflectanceCoefficient"),
                          &c) ||
            !(c > 0 && c < 1))
            return 0;
        for (int r = 0; r < AW_BAND_COUNT; r++)
            if (sc->bands[r].present && sc->bands[r].band == num &&
                coef[r] == 0) {
                coef[r] = c;
                found++;
            }
    }
    if (found != n_bands)
        return 0;
    for (int r = 0; r < AW_BAND_COUNT; r++)
        if (sc->bands[r].present)
            sc->bands[r].scale = coef[r];
    return 1;
}

/* Date and metadata from a PlanetScope metadata XML; 1 if a date was
 * found; with coefs, its reflectance coefficients applied (*toa 1). Problems
 * in this optional file only go into the note. */
static int planet_read(aw_ctx *ctx, const char *xml, aw_scene_cfg *sc,
                       int coefs, int *toa, aw_status *st)
{
    *toa = 0;
    CPLXMLNode *root = NULL;
    if (xml_load(ctx, xml, &root) != AW_OK) {
        aw_ctx_clear_error(ctx);
        *st = note(ctx, sc, "metadata XML unreadable, not used");
        return 0;
    }
    int got = 0;
    const char *v = xml_value(root, "acquisitionDateTime");
    if (v && parse_iso_datetime(v, sc->datetime)) {
        char ymd[11];
        memcpy(ymd, sc->datetime, 10);
        ymd[10] = '\0';
        set_date(sc, ymd);
        got = 1;
    }
    const CPLXMLNode *pf = xml_find(root, "Platform");
    const char *platform = pf ? xml_value(pf->psChild, "shortName") : NULL;
    const CPLXMLNode *md = xml_find(root, "EarthObservationMetaData");
    const char *ident = md ? xml_value(md->psChild, "identifier") : NULL;
    if (set_str(&sc->platform, platform) != 0 ||
        set_str(&sc->product_id, ident) != 0)
        *st = nomem(ctx);
    double d;
    if (parse_double(xml_value(root, "cloudCoverPercentage"), &d) && d >= 0)
        sc->cloud_cover = d;
    if (parse_double(xml_value(root, "illuminationElevationAngle"), &d))
        sc->sun_elevation = d;
    if (parse_double(xml_value(root, "illuminationAzimuthAngle"), &d))
        sc->sun_azimuth = d;
    *toa = coefs && planet_coefficients(root, sc);
    CPLDestroyXMLNode(root);
    return got;
}

/* A PlanetScope product's unusable data mask (<stem>_DN_udm.tif beside
 * <stem>.tif or <stem>_SR.tif) as its quality band: any bit set is masked (0
 * blackfill, 1 cloud, 2-6 missing or suspect data in a band), and a value with
 * bit 1 set is cloud. Without it, no quality mask. */
static aw_status planet_udm(aw_ctx *ctx, const char *dir, const char *base,
                            const char *sfx, aw_scene_cfg *sc)
{
    /* <base>_DN_udm<sfx>.tif (clipped bundles), else <base>_DN_udm.tif */
    char *udm = NULL;
    struct stat sb;
    for (int k = 0; k < 2; k++) {
        free(udm);
        udm = aw_asprintf("%s/%s_DN_udm%s.tif", dir, base, k ? "" : sfx);
        if (!udm)
            return nomem(ctx);
        if (stat(udm, &sb) == 0 && S_ISREG(sb.st_mode))
            break;
    }
    if (stat(udm, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        free(udm);
        return note(ctx, sc,
                    "no unusable data mask (_DN_udm.tif): no "
                    "quality mask");
    }
    double *cloud = calloc(128, sizeof *cloud);
    if (!cloud) {
        free(udm);
        return nomem(ctx);
    }
    size_t nc = 0;
    for (int v = 1; v < 256; v++)
        if (v & 2)
            cloud[nc++] = v;
    free(sc->qa_cloud_values);
    sc->qa_cloud_values = cloud;
    sc->n_qa_cloud_values = nc;
    sc->qa_mask_bits = 0xFF;
    sc->qa_kind = AW_QA_GENERIC;
    aw_status st = set_band(ctx, &sc->qa, udm, 1, 1.0, 0.0, 0, 0.0);
    if (st != AW_OK)
        return st;
    char *b = aw_path_basename(sc->qa.path);
    st = b ? note(ctx, sc,
                  "quality: %s (unusable data mask: any bit set is masked, "
                  "bit 1 cloud)",
                  b)
           : nomem(ctx);
    free(b);
    return st;
}

static aw_status generic_file(aw_ctx *ctx, const char *file, aw_scene_cfg *sc)
{
    gdal_ready();
    GDALDatasetH ds = NULL;
    aw_status st = aw_open_raster(ctx, file, &ds);
    if (st != AW_OK)
        return st;
    int nb = GDALGetRasterCount(ds);
    GDALDataType dtype =
        nb > 0 ? GDALGetRasterDataType(GDALGetRasterBand(ds, 1)) : GDT_Unknown;
    GDALClose(ds);
    if (nb != 4 && nb != 6)
        return aw_fail(ctx, AW_ERR_INPUT,
                       "%s: cannot guess the band map of %d bands; map them "
                       "in the config (scenes[].bands)",
                       file, nb);
    for (int r = 0; r < nb && st == AW_OK; r++)
        st = set_band(ctx, &sc->bands[r], aw_strdup(file), r + 1, 1.0, 0.0, 0,
                      0.0);
    if (st != AW_OK)
        return st;
    sc->sensor = AW_SENSOR_GENERIC;
    sc->qa_kind = AW_QA_NONE;
    if (nb == 4)
        st = note(ctx, sc,
                  "4 bands taken as blue, green, red, nir (PlanetScope order; "
                  "the file's colour interpretation is not used)");
    else
        st = note(ctx, sc,
                  "6 bands taken as blue, green, red, nir, swir1, swir2 "
                  "(Landsat TM/ETM+ bands 1 2 3 4 5 7); DN as delivered: "
                  "scale 1, offset 0");
    if (st != AW_OK)
        return st;

    char *xml = planet_metadata(file);
    int dated = 0, toa = 0;
    /* The XML's reflectanceCoefficient values are for its own analytic
     * (radiance) file: <stem>_metadata<sfx>.xml beside <stem><sfx>.tif
     * (<sfx>: "" or Planet's "_clip"). A surface reflectance file
     * (<stem>_SR<sfx>.tif, also _SR_harmonized ..., integers of
     * reflectance x 10000) shares the XML but not the coefficients. */
    char *fstem = stem_of(file);
    char *fdir = aw_path_dirname(file);
    char *xbase = xml ? aw_path_basename(xml) : NULL;
    if (!fstem || !fdir || (xml && !xbase))
        st = nomem(ctx);
    size_t fl = fstem ? strlen(fstem) : 0, pl = fl;
    char xsfx[64] = "";
    if (st == AW_OK && xbase) {
        size_t sfl = 0;
        const char *m = planet_md_at(xbase, &sfl);
        pl = m ? (size_t)(m - xbase) : fl;
        snprintf(xsfx, sizeof xsfx, "%s", sfl ? "_clip" : "");
    }
    else if (st == AW_OK && fstem) {
        /* No XML: the mask's base is the stem without _SR... and _clip. */
        if (fl > 5 && strcasecmp(fstem + fl - 5, "_clip") == 0) {
            snprintf(xsfx, sizeof xsfx, "_clip");
            pl = fl - 5;
        }
        const char *srp = strstr(fstem, "_SR");
        if (srp && (size_t)(srp - fstem) < pl &&
            (srp[3] == '\0' || srp[3] == '_'))
            pl = (size_t)(srp - fstem);
    }
    /* What the file's stem has between the XML's prefix and suffix. */
    size_t ml =
        st == AW_OK && fl >= pl + strlen(xsfx) ? fl - pl - strlen(xsfx) : 0;
    const char *mid = fstem ? fstem + pl : "";
    int own_xml = xbase && ml == 0;
    int sr = nb == 4 && xbase && ml >= 3 && strncmp(mid, "_SR", 3) == 0 &&
             (ml == 3 || mid[3] == '_') &&
             (dtype == GDT_UInt16 || dtype == GDT_Int16);
    if (st == AW_OK && fstem)
        fstem[pl] = '\0'; /* the UDM's base: the XML's prefix */
    if (st == AW_OK && sr) {
        for (int r = 0; r < nb; r++)
            sc->bands[r].scale = 1e-4;
        st = note(ctx, sc,
                  "surface reflectance = DN / 10000 (a PlanetScope _SR "
                  "file)");
    }
    if (xml && st == AW_OK) {
        dated = planet_read(ctx, xml, sc, own_xml && !sr, &toa, &st);
        if (st == AW_OK) {
            char *b = aw_path_basename(xml);
            st = !b      ? nomem(ctx)
                 : dated ? note(ctx, sc, "date from %s", b)
                         : note(ctx, sc, "%s has no acquisitionDateTime", b);
            if (st == AW_OK && toa)
                st = note(ctx, sc,
                          "top-of-atmosphere reflectance = DN * "
                          "reflectanceCoefficient of each band, from %s",
                          b);
            free(b);
        }
    }
    free(xml);
    if (st == AW_OK && nb == 4 && !toa && !sr)
        st = note(ctx, sc,
                  "DN as delivered: scale 1, offset 0 (no "
                  "reflectanceCoefficient for every band in a metadata "
                  "XML)");
    if (st == AW_OK && nb == 4)
        st = planet_udm(ctx, fdir, fstem, xsfx, sc);
    free(fstem);
    free(fdir);
    free(xbase);
    if (st == AW_OK && !dated) {
        char ymd[11];
        char *b = aw_path_basename(file);
        char *dir = aw_path_dirname(file);
        char *db = dir ? aw_path_basename(dir) : NULL;
        if (!b || !db)
            st = nomem(ctx);
        else if (date_in_name(b, ymd) || date_in_name(db, ymd)) {
            set_date(sc, ymd);
            st = note(ctx, sc, "date %s from the file or folder name", ymd);
        }
        free(b);
        free(dir);
        free(db);
    }
    if (st == AW_OK)
        st = set_default_id(ctx, sc, file);
    return st;
}

/* The folder's only raster of 4 or more bands; *found 0 if there is none. */
static aw_status generic_folder(aw_ctx *ctx, const char *dir,
                                const strlist *names, aw_scene_cfg *sc,
                                int *found)
{
    gdal_ready();
    const char *hit = NULL;
    *found = 0;
    for (size_t i = 0; i < names->n; i++) {
        if (!has_raster_ext(names->v[i]))
            continue;
        char *p = aw_path_join(dir, names->v[i]);
        if (!p)
            return nomem(ctx);
        int nb = is_file(p) ? raster_band_count(p) : 0;
        free(p);
        if (nb < 4)
            continue;
        if (hit)
            return aw_fail(ctx, AW_ERR_INPUT,
                           "%s: several rasters of 4 or more bands (%s, %s); "
                           "point the scene at one file",
                           dir, hit, names->v[i]);
        hit = names->v[i];
    }
    if (!hit)
        return AW_OK;
    *found = 1;
    char *p = aw_path_join(dir, hit);
    if (!p)
        return nomem(ctx);
    aw_status st = generic_file(ctx, p, sc);
    free(p);
    return st;
}

/* ---- Dispatch ---- */

static aw_status detect_dir(aw_ctx *ctx, const char *dir, aw_sensor sensor,
                            aw_scene_cfg *sc)
{
    strlist names = {0};
    aw_status st = list_dir(ctx, dir, &names);
    if (st != AW_OK)
        return st;
    const char *mtl = NULL;
    if (sensor != AW_SENSOR_SENTINEL2_L2A)
        st = find_mtl(ctx, dir, &names, &mtl);
    if (st != AW_OK)
        goto done;
    if (mtl) {
        char *p = aw_path_join(dir, mtl);
        st = p ? landsat_product(ctx, p, dir, sensor, sc) : nomem(ctx);
        free(p);
        if (st == AW_OK)
            st = set_default_id(ctx, sc, dir);
        goto done;
    }
    if (sensor == AW_SENSOR_LANDSAT_C2_L2) {
        st = aw_fail(ctx, AW_ERR_INPUT,
                     "%s: no *_MTL.txt in this folder (the landsat_c2_l2 "
                     "profile reads the product's MTL)",
                     dir);
        goto done;
    }
    int form = sensor == AW_SENSOR_GENERIC ? 0 : s2_form(dir, &names);
    if (form) {
        st = s2_product(ctx, dir, form, &names, sc);
        goto done;
    }
    if (sensor == AW_SENSOR_SENTINEL2_L2A) {
        st = aw_fail(ctx, AW_ERR_INPUT,
                     "%s: no Sentinel-2 L2A product here (no .SAFE layout, no "
                     "T<tile>_<time>_B<nn>_<res>m.jp2 files, no B<nn>.tif or "
                     "SCL.tif)",
                     dir);
        goto done;
    }
    int found = 0;
    st = generic_folder(ctx, dir, &names, sc, &found);
    if (st == AW_OK && !found)
        st = aw_fail(ctx, AW_ERR_INPUT,
                     "%s: no recognised product in this folder (no Landsat "
                     "*_MTL.txt, no Sentinel-2 SAFE/JP2/COG band files, no "
                     "single raster of 4 or more bands); map the bands in "
                     "the config (scenes[].bands)",
                     dir);
done:
    strlist_free(&names);
    return st;
}

static aw_status detect_file(aw_ctx *ctx, const char *path, aw_sensor sensor,
                             aw_scene_cfg *sc)
{
    char *base = aw_path_basename(path);
    char *dir = aw_path_dirname(path);
    aw_status st = AW_OK;
    if (!base || !dir) {
        st = nomem(ctx);
    }
    else if (ends_with_ci(base, "_MTL.txt") || ends_with_ci(base, "_MTL.xml") ||
             strcasecmp(base, "MTL.txt") == 0) {
        if (sensor == AW_SENSOR_SENTINEL2_L2A)
            st = aw_fail(ctx, AW_ERR_INPUT,
                         "%s: a Landsat MTL, not a Sentinel-2 product", path);
        else
            st = landsat_product(ctx, path, dir, sensor, sc);
        if (st == AW_OK)
            st = set_default_id(ctx, sc, path);
    }
    else if (strcmp(base, "MTD_MSIL2A.xml") == 0) {
        strlist names = {0};
        if (sensor == AW_SENSOR_GENERIC || sensor == AW_SENSOR_LANDSAT_C2_L2)
            st = aw_fail(ctx, AW_ERR_INPUT,
                         "%s: Sentinel-2 metadata; use sensor auto or "
                         "sentinel2_l2a",
                         path);
        else
            st = list_dir(ctx, dir, &names);
        if (st == AW_OK) {
            int form = s2_form(dir, &names);
            st = s2_product(ctx, dir, form == S2_SAFE ? S2_SAFE : S2_LOOSE,
                            &names, sc);
        }
        strlist_free(&names);
    }
    else if (sensor == AW_SENSOR_LANDSAT_C2_L2 ||
             sensor == AW_SENSOR_SENTINEL2_L2A) {
        st = aw_fail(ctx, AW_ERR_INPUT,
                     "%s: the %s profile reads a product folder (or its "
                     "metadata file), not a single band file",
                     path, aw_sensor_name(sensor));
    }
    else {
        st = generic_file(ctx, path, sc);
    }
    free(base);
    free(dir);
    return st;
}

/* A zipped product (Sentinel-2 delivers S2X_MSIL2A_..._.SAFE.zip): read
 * inside it through /vsizip/, the .SAFE folder when there is one, else the
 * zip's root as a folder. */
static aw_status detect_zip(aw_ctx *ctx, const char *path, aw_sensor sensor,
                            aw_scene_cfg *sc)
{
    char *cwd = path[0] == '/' ? NULL : CPLGetCurrentDir();
    char *abs = path[0] == '/' ? aw_strdup(path)
                               : aw_asprintf("%s/%s", cwd ? cwd : ".", path);
    CPLFree(cwd);
    char *root = abs ? aw_asprintf("/vsizip/%s", abs) : NULL;
    free(abs);
    if (!root)
        return nomem(ctx);
    strlist names = {0};
    aw_status st = list_dir(ctx, root, &names);
    if (st != AW_OK) {
        free(root);
        return aw_fail(ctx, AW_ERR_INPUT, "%s: not a zip file GDAL can read",
                       path);
    }
    const char *safe = NULL;
    for (size_t i = 0; i < names.n && !safe; i++)
        if (ends_with_ci(names.v[i], ".SAFE"))
            safe = names.v[i];
    /* No .SAFE: a zip holding one folder (a Landsat scene zipped with its
     * folder) is read from that folder, else from the zip's root. */
    const char *sub = safe;
    if (!sub && names.n == 1) {
        char *only = aw_path_join(root, names.v[0]);
        if (only && is_dir(only))
            sub = names.v[0];
        free(only);
    }
    char *dir = sub ? aw_path_join(root, sub) : aw_strdup(root);
    st = dir ? detect_dir(ctx, dir, sensor, sc) : nomem(ctx);
    if (st == AW_OK && !sc->id)
        st = set_default_id(ctx, sc, safe ? dir : path);
    free(dir);
    strlist_free(&names);
    free(root);
    return st;
}

aw_status aw_profile_detect(aw_ctx *ctx, const char *path, aw_sensor sensor,
                            aw_scene_cfg *sc)
{
    if (!path || !sc)
        return aw_fail(ctx, AW_ERR_INTERNAL,
                       "aw_profile_detect: NULL argument");
    if ((unsigned)sensor >= COUNT_OF(sensor_names))
        return aw_fail(ctx, AW_ERR_INTERNAL, "aw_profile_detect: bad sensor %d",
                       (int)sensor);
    int keep_id = sc->id != NULL, keep_date = sc->date[0] != '\0';
    sc->cloud_cover = NAN;
    sc->sun_elevation = NAN;
    sc->sun_azimuth = NAN;
    VSIStatBufL sb;
    aw_status st;
    if (VSIStatL(path, &sb) != 0)
        st = aw_fail(ctx, AW_ERR_INPUT, "%s: no such file or folder", path);
    else if (VSI_ISDIR(sb.st_mode))
        st = detect_dir(ctx, path, sensor, sc);
    else if (VSI_ISREG(sb.st_mode) && ends_with_ci(path, ".zip") &&
             strncmp(path, "/vsi", 4) != 0)
        st = detect_zip(ctx, path, sensor, sc);
    else if (VSI_ISREG(sb.st_mode))
        st = detect_file(ctx, path, sensor, sc);
    else
        st = aw_fail(ctx, AW_ERR_INPUT, "%s: not a file or folder", path);
    if (st != AW_OK)
        reset_scene(sc, keep_id, keep_date);
    return st;
}
