/* report.html and the quicklook PNGs (include/aralwatch/report.h).
 *
 * The page is built in memory with a small string builder and written once,
 * atomically. Everything that comes from the document is HTML-escaped
 * (text and attribute values alike); CSS class names, colours and ids come
 * from fixed tables or counters here, never from the document. Charts are
 * inline SVG drawn on a fixed layout (AW_CHART_*), with nice axis ticks
 * (Heckbert 1990, "Nice numbers for graph labels", Graphics Gems) and a
 * proportional time axis with month ticks.
 *
 * Quicklooks read the input through GDAL (downsampled by GDALRasterIOEx
 * with average or mode resampling, in parts of output rows on several
 * threads when the raster has no overviews: read_resampled), colour it (a
 * linear stretch in C for true colour, GDALDEMProcessing color-relief for
 * ramps, the raster's own colour table for classes) and write the PNG with
 * GDALTranslate under a temporary name, renamed when complete. GDAL's .aux.xml
 * side-car is turned off while writing, so nothing but the PNG appears. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cpl_conv.h>
#include <cpl_error.h>
#include <cpl_string.h>
#include <cpl_vsi.h>
#include <gdal.h>
#include <gdal_utils.h>
#include <omp.h>
#include "aralwatch/report.h"
#include "aralwatch/util.h"
#include "aralwatch/version.h"
#include "internal.h"

/* ---- String builder ---------------------------------------------------- */

/* A growing NUL-terminated buffer; an allocation failure sets oom and
 * turns every later append into a no-op (checked once at the end). */
typedef struct sbuf {
    char *s;
    size_t n, cap;
    int oom;
} sbuf;

static void sb_putn(sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (n >= SIZE_MAX / 2 - b->n) {
        b->oom = 1;
        return;
    }
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 16384;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *p = realloc(b->s, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = '\0';
}

static void sb_put(sbuf *b, const char *s)
{
    sb_putn(b, s, strlen(s));
}

static void sb_printf(sbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void sb_printf(sbuf *b, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (k < 0) {
        b->oom = 1;
        return;
    }
    if ((size_t)k < sizeof small) {
        sb_putn(b, small, (size_t)k);
        return;
    }
    char *big = malloc((size_t)k + 1);
    if (!big) {
        b->oom = 1;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)k + 1, fmt, ap);
    va_end(ap);
    sb_putn(b, big, (size_t)k);
    free(big);
}

/* Text or attribute value: & < > " ' escaped; C0 control characters other
 * than tab and newline (not allowed in HTML text) become U+FFFD. */
static void sb_esc(sbuf *b, const char *s)
{
    const char *run = s;
    for (; *s; s++) {
        const char *rep = NULL;
        switch (*s) {
        case '&':
            rep = "&amp;";
            break;
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '"':
            rep = "&quot;";
            break;
        case '\'':
            rep = "&#39;";
            break;
        default:
            if ((unsigned char)*s < 0x20 && *s != '\t' && *s != '\n')
                rep = "\xEF\xBF\xBD";
            else if (*s == 0x7f)
                rep = "\xEF\xBF\xBD";
            break;
        }
        if (rep) {
            sb_putn(b, run, (size_t)(s - run));
            sb_put(b, rep);
            run = s + 1;
        }
    }
    sb_putn(b, run, (size_t)(s - run));
}

/* s escaped, or the literal fallback when s is NULL or empty. */
static void sb_text(sbuf *b, const char *s, const char *fallback)
{
    if (s && s[0])
        sb_esc(b, s);
    else
        sb_put(b, fallback);
}

static void sb_base64(sbuf *b, const unsigned char *p, size_t n)
{
    static const char tbl[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char out[1024];
    size_t k = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        out[k++] = tbl[v >> 18 & 63];
        out[k++] = tbl[v >> 12 & 63];
        out[k++] = i + 1 < n ? tbl[v >> 6 & 63] : '=';
        out[k++] = i + 2 < n ? tbl[v & 63] : '=';
        if (k + 4 > sizeof out) {
            sb_putn(b, out, k);
            k = 0;
        }
    }
    sb_putn(b, out, k);
}

/* ---- Reading the document ---------------------------------------------- */

static json_t *jget(const json_t *o, const char *key)
{
    return json_is_object(o) ? json_object_get(o, key) : NULL;
}

static const char *jstr(const json_t *o, const char *key)
{
    json_t *v = jget(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* 1 and *out when o[key] is a finite number. */
static int jnum(const json_t *o, const char *key, double *out)
{
    json_t *v = jget(o, key);
    if (!json_is_number(v))
        return 0;
    double d = json_number_value(v);
    if (!isfinite(d))
        return 0;
    *out = d;
    return 1;
}

/* The same for element i of an array. */
static int jnum_at(const json_t *a, size_t i, double *out)
{
    json_t *v = json_is_array(a) ? json_array_get(a, i) : NULL;
    if (!json_is_number(v))
        return 0;
    double d = json_number_value(v);
    if (!isfinite(d))
        return 0;
    *out = d;
    return 1;
}

static json_t *jarr(const json_t *o, const char *key)
{
    json_t *v = jget(o, key);
    return json_is_array(v) ? v : NULL;
}

static size_t jlen(const json_t *a)
{
    return json_is_array(a) ? json_array_size(a) : 0;
}

/* ---- Numbers and dates ------------------------------------------------- */

/* A number for people: 0-4 decimals by magnitude, trailing zeros dropped
 * ("62.1", "0.98", "1933.4", "12345"). */
static void fmt_num(char *buf, size_t n, double v)
{
    double a = fabs(v);
    if (a >= 1e9 || (a > 0 && a < 1e-4)) {
        snprintf(buf, n, "%.3g", v);
        return;
    }
    int dec = a >= 10000 ? 0 : a >= 100 ? 1 : a >= 1 ? 2 : a >= 0.01 ? 3 : 4;
    snprintf(buf, n, "%.*f", dec, v);
    if (strchr(buf, '.')) {
        size_t k = strlen(buf);
        while (k > 0 && buf[k - 1] == '0')
            buf[--k] = '\0';
        if (k > 0 && buf[k - 1] == '.')
            buf[--k] = '\0';
    }
    if (strcmp(buf, "-0") == 0)
        snprintf(buf, n, "0");
}

/* Number then unit ("62.1 %", "2.5 km²"), both escaped. */
static void sb_num_unit(sbuf *b, double v, const char *unit, int sign)
{
    char t[64];
    fmt_num(t, sizeof t, v);
    if (sign && v > 0)
        sb_put(b, "+");
    if (sign && t[0] == '-') {
        sb_put(b, "\xE2\x88\x92"); /* U+2212 minus sign */
        sb_put(b, t + 1);
    }
    else {
        sb_put(b, t);
    }
    if (unit && unit[0]) {
        sb_put(b, "\xC2\xA0"); /* no-break space */
        sb_esc(b, unit);
    }
}

static int days_in_month(int y, int m)
{
    static const int dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return dm[m - 1];
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant,
 * "chrono-Compatible Low-Level Date Algorithms"). */
static long days_from_civil(long y, int m, int d)
{
    y -= m <= 2;
    long era = (y >= 0 ? y : y - 399) / 400;
    long yoe = y - era * 400;
    long mp = (m + 9) % 12;
    long doy = (153 * mp + 2) / 5 + d - 1;
    long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(long z, int *y, int *m, int *d)
{
    z += 719468;
    long era = (z >= 0 ? z : z - 146096) / 146097;
    long doe = z - era * 146097;
    long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    long mp = (5 * doy + 2) / 153;
    long dd = doy - (153 * mp + 2) / 5 + 1;
    long mm = mp < 10 ? mp + 3 : mp - 9;
    *y = (int)(yoe + era * 400 + (mm <= 2));
    *m = (int)mm;
    *d = (int)dd;
}

/* "YYYY-MM-DD" (optionally followed by "T..." or " ...") -> day number. */
static int parse_date(const char *s, long *days)
{
    if (!s)
        return 0;
    for (int i = 0; i < 10; i++) {
        if (i == 4 || i == 7) {
            if (s[i] != '-')
                return 0;
        }
        else if (s[i] < '0' || s[i] > '9') {
            return 0;
        }
    }
    if (s[10] != '\0' && s[10] != 'T' && s[10] != ' ')
        return 0;
    int y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 +
            (s[3] - '0');
    int m = (s[5] - '0') * 10 + (s[6] - '0');
    int d = (s[8] - '0') * 10 + (s[9] - '0');
    if (m < 1 || m > 12 || d < 1 || d > days_in_month(y, m))
        return 0;
    *days = days_from_civil(y, m, d);
    return 1;
}

static void fmt_day(char buf[32], long day)
{
    int y, m, d;
    civil_from_days(day, &y, &m, &d);
    snprintf(buf, 32, "%04d-%02d-%02d", y % 10000, m, d);
}

/* ---- Vocabulary: levels, types, kinds ---------------------------------- */

typedef struct level_info {
    const char *key;   /* value in the document */
    const char *label; /* what people read */
    const char *css;   /* class suffix (b-<css>, c-<css>) */
    const char *line;  /* chart line colour */
    const char *text;  /* chart label colour (readable on white) */
    int rank;
} level_info;

static const level_info levels[] = {
    {"alert", "Alert", "alert", "#c62828", "#b71c1c", 3},
    {"warning", "Warning", "warning", "#ef6c00", "#b84a00", 2},
    {"watch", "Watch", "watch", "#e0a800", "#7a5c00", 1},
    {"none", "No alert", "none", "#2e7d32", "#2e7d32", 0},
    {"insufficient_data", "Insufficient data", "nodata", "#757575", "#555555",
     0},
};

static const level_info unknown_level = {"",        "Unknown", "unknown",
                                         "#999999", "#555555", 0};

static const level_info *level_of(const char *key)
{
    for (size_t i = 0; key && i < sizeof levels / sizeof levels[0]; i++)
        if (strcmp(levels[i].key, key) == 0)
            return &levels[i];
    return &unknown_level;
}

/* A level badge: colour and a text label, never colour alone. Unknown
 * levels show their (escaped) name. */
static void sb_badge(sbuf *b, const char *key)
{
    const level_info *l = level_of(key);
    sb_printf(b, "<span class=\"badge b-%s\">", l->css);
    if (l == &unknown_level)
        sb_text(b, key, "Unknown");
    else
        sb_put(b, l->label);
    sb_put(b, "</span>");
}

typedef struct name_label {
    const char *key, *label;
} name_label;

static const name_label alert_types[] = {
    {"water_shrinkage", "Water shrinkage"},
    {"flood_expansion", "Flood expansion"},
    {"crop_stress", "Crop stress"},
};

static const name_label zone_kinds[] = {
    {"waterbody", "Water body"},
    {"cropland", "Cropland"},
    {"other", "Other"},
};

static const name_label alert_statuses[] = {
    {"new", "New"},
    {"update", "Update"},
    {"cancel", "Cancelled: all clear"},
};

static void sb_label(sbuf *b, const name_label *t, size_t n, const char *key,
                     const char *fallback)
{
    for (size_t i = 0; key && i < n; i++) {
        if (strcmp(t[i].key, key) == 0) {
            sb_put(b, t[i].label);
            return;
        }
    }
    sb_text(b, key, fallback);
}

#define SB_LABEL(b, table, key, fb)                                            \
    sb_label(b, table, sizeof table / sizeof table[0], key, fb)

/* Metrics the pipeline writes, in the order the zone table shows them. */
typedef struct metric_info {
    const char *key, *label, *unit;
} metric_info;

static const metric_info metrics[] = {
    {"water_area_km2", "Water area", "km²"},
    {"water_area_pct_median", "Water area, % of baseline median", "%"},
    {"lost_water_km2", "Water lost", "km²"},
    {"new_water_km2", "New water", "km²"},
    {"water_fraction", "Water fraction", ""},
    {"vci_mean", "Mean VCI", ""},
    {"asi_pct", "Stressed cropland (VCI < 35)", "%"},
    {"ndvi_mean", "Mean NDVI", ""},
    {"crop_mean_ndvi", "Mean NDVI", ""},
};

static const metric_info *metric_of(const char *key)
{
    for (size_t i = 0; key && i < sizeof metrics / sizeof metrics[0]; i++)
        if (strcmp(metrics[i].key, key) == 0)
            return &metrics[i];
    return NULL;
}

/* ---- The report state -------------------------------------------------- */

typedef struct rep {
    aw_ctx *ctx;
    sbuf b;
    const json_t *doc;
    const char *base_dir; /* quicklook paths are relative to it */
    int n_charts, n_ramps;
} rep;

/* The zone object of zone_id, or NULL. */
static json_t *find_zone(const rep *r, const char *zone_id)
{
    json_t *zones = jarr(r->doc, "zones");
    for (size_t i = 0; zone_id && i < jlen(zones); i++) {
        json_t *z = json_array_get(zones, i);
        const char *id = jstr(z, "zone_id");
        if (id && strcmp(id, zone_id) == 0)
            return z;
    }
    return NULL;
}

/* Zone name, else the name the zone table knows, else the id. */
static void sb_zone_name(sbuf *b, const rep *r, const json_t *o)
{
    const char *name = jstr(o, "zone_name");
    const char *id = jstr(o, "zone_id");
    if (!name || !name[0])
        name = jstr(find_zone(r, id), "zone_name");
    sb_text(b, name && name[0] ? name : id, "(unnamed zone)");
}

/* A metric's label: the series label of the zone, else the known label,
 * else the name itself. */
static void sb_metric_label(sbuf *b, const rep *r, const char *zone_id,
                            const char *name)
{
    json_t *series = jarr(find_zone(r, zone_id), "series");
    for (size_t i = 0; name && i < jlen(series); i++) {
        json_t *s = json_array_get(series, i);
        const char *m = jstr(s, "metric"), *label = jstr(s, "label");
        if (m && label && label[0] && strcmp(m, name) == 0) {
            sb_esc(b, label);
            return;
        }
    }
    const metric_info *mi = metric_of(name);
    if (mi)
        sb_put(b, mi->label);
    else
        sb_text(b, name, "(metric)");
}

/* The unit of a zone's series of a metric, or NULL. */
static const char *series_unit(const rep *r, const char *zone_id,
                               const char *metric)
{
    json_t *series = jarr(find_zone(r, zone_id), "series");
    for (size_t i = 0; metric && i < jlen(series); i++) {
        json_t *s = json_array_get(series, i);
        const char *m = jstr(s, "metric");
        if (m && strcmp(m, metric) == 0)
            return jstr(s, "unit");
    }
    const metric_info *mi = metric_of(metric);
    return mi ? mi->unit : NULL;
}

/* ---- Page frame -------------------------------------------------------- */

static const char css[] =
    "*{box-sizing:border-box}\n"
    "html{-webkit-print-color-adjust:exact;print-color-adjust:exact}\n"
    "body{margin:0;font:15px/1.45 system-ui,-apple-system,\"Segoe UI\","
    "Roboto,\"Helvetica Neue\",Arial,sans-serif;color:#1b1b1b;"
    "background:#fff}\n"
    "header,nav,main,footer{max-width:1080px;margin:0 auto;padding:0 20px}\n"
    "header{padding-top:18px}\n"
    "h1{font-size:1.65em;margin:.2em 0 .3em}\n"
    "h2{font-size:1.3em;margin:1.6em 0 .6em;padding-bottom:.15em;"
    "border-bottom:2px solid #1b1b1b}\n"
    "h3{font-size:1.08em;margin:.15em 0 .35em}\n"
    "dl.meta,dl.facts{display:grid;grid-template-columns:max-content 1fr;"
    "gap:2px 16px;margin:.4em 0}\n"
    "dl.meta>div,dl.facts>div{display:contents}\n"
    "dt{font-weight:600;color:#444}\n"
    "dd{margin:0}\n"
    "nav{margin-top:.6em;padding-top:.4em;padding-bottom:.4em;"
    "border-top:1px solid #ccc;border-bottom:1px solid #ccc}\n"
    "nav a{margin-right:1.2em;color:#0b57a4}\n"
    ".summary{font-size:1.05em;margin:.6em 0}\n"
    ".empty{color:#555;font-style:italic}\n"
    ".badge{display:inline-block;padding:1px 8px;border-radius:3px;"
    "font-weight:700;font-size:.82em;letter-spacing:.04em;"
    "text-transform:uppercase;border:1px solid rgba(0,0,0,.25)}\n"
    ".b-alert{background:#c62828;color:#fff}\n"
    ".b-warning{background:#f57c00;color:#111}\n"
    ".b-watch{background:#fbc02d;color:#111}\n"
    ".b-none{background:#2e7d32;color:#fff}\n"
    ".b-nodata{background:#757575;color:#fff}\n"
    ".b-unknown{background:#ddd;color:#111}\n"
    ".b-forecast{background:#fff;color:#0b57a4;border:1px solid #0b57a4}\n"
    ".card{border:1px solid #bbb;border-left:10px solid #999;"
    "border-radius:4px;padding:10px 14px;margin:12px 0;break-inside:avoid}\n"
    ".c-alert{border-left-color:#c62828;background:#fdeceb}\n"
    ".c-warning{border-left-color:#f57c00;background:#fff3e0}\n"
    ".c-watch{border-left-color:#fbc02d;background:#fffbe6}\n"
    ".c-forecast{border-style:dashed;border-left:10px solid #0b57a4;"
    "background:#f3f7fc}\n"
    ".card-head{margin:0 0 .25em;color:#333}\n"
    ".card-head span+span{margin-left:.6em}\n"
    ".arrow{font-weight:700}\n"
    ".notices li{margin:.3em 0}\n"
    ".tablewrap{overflow-x:auto}\n"
    "table{border-collapse:collapse;width:100%;font-size:.92em}\n"
    "th,td{border-bottom:1px solid #ddd;padding:5px 8px;text-align:left;"
    "vertical-align:top}\n"
    "thead th{border-bottom:2px solid #888;background:#f4f4f4}\n"
    "td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}\n"
    "section.zone{margin-top:1.4em;break-inside:auto}\n"
    ".zone-meta{color:#444;margin:0 0 .5em}\n"
    "figure{margin:.6em 0 1.2em;break-inside:avoid}\n"
    "figcaption{font-weight:600;margin-bottom:.2em}\n"
    "svg.chart{display:block;width:100%;max-width:860px;height:auto}\n"
    ".note{color:#444;font-size:.9em;margin:.2em 0}\n"
    ".legend{font-size:.88em;color:#333;margin:.2em 0}\n"
    ".legend span.k{display:inline-block;width:22px;height:10px;"
    "margin:0 5px 0 12px;vertical-align:middle}\n"
    ".legend span.k:first-child{margin-left:0}\n"
    ".k-obs{border-top:2px solid #0b57a4}\n"
    ".k-band{background:#cfd8dc}\n"
    ".k-med{border-top:2px solid #546e7a}\n"
    ".k-gap{width:10px!important;height:10px!important;"
    "border:2px solid #0b57a4;border-radius:50%}\n"
    ".k-alert{border-top:2px dashed #c62828}\n"
    ".k-warning{border-top:2px dashed #ef6c00}\n"
    ".k-watch{border-top:2px dashed #e0a800}\n"
    ".qls{display:flex;flex-wrap:wrap;gap:24px}\n"
    ".ql{margin:0;flex:0 1 480px;max-width:100%}\n"
    ".ql img{display:block;width:100%;height:auto;"
    "border:1px solid #bbb;background:#fff}\n"
    ".ql figcaption{margin-top:.3em}\n"
    ".cls{white-space:nowrap;margin-right:14px}\n"
    ".swatch{display:inline-block;width:14px;height:14px;margin-right:5px;"
    "vertical-align:middle;border:1px solid #555}\n"
    ".sw-none{background:#fff;border-style:dashed}\n"
    ".nw,td.date{white-space:nowrap}\n"
    "footer{margin-top:2.5em;padding-top:.6em;padding-bottom:2em;"
    "border-top:1px solid #ccc;color:#555;font-size:.88em}\n"
    "code{font-size:.92em}\n"
    "@media print{body{font-size:10.5pt}nav{display:none}"
    "header,main,footer{max-width:none;padding:0}"
    "h2{break-after:avoid}a{color:inherit;text-decoration:none}}\n";

static void write_head(rep *r)
{
    sbuf *b = &r->b;
    const char *title = jstr(r->doc, "title");
    const char *region = jstr(r->doc, "region");
    sb_put(b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n"
              "<meta charset=\"utf-8\">\n"
              "<meta name=\"viewport\" content=\"width=device-width, "
              "initial-scale=1\">\n"
              "<meta name=\"generator\" content=\"aralwatch " AW_VERSION
              "\">\n<title>");
    if (title && title[0]) {
        sb_esc(b, title);
    }
    else {
        sb_put(b, "aralwatch report");
        if (region && region[0]) {
            sb_put(b, " \xE2\x80\x94 ");
            sb_esc(b, region);
        }
    }
    sb_put(b, "</title>\n<style>\n");
    sb_put(b, css);
    sb_put(b, "</style>\n</head>\n<body>\n");
}

static size_t count_level(const json_t *alerts, const char *key)
{
    size_t n = 0;
    for (size_t i = 0; i < jlen(alerts); i++) {
        const char *l = jstr(json_array_get(alerts, i), "level");
        if (l && strcmp(l, key) == 0)
            n++;
    }
    return n;
}

static void write_header(rep *r)
{
    sbuf *b = &r->b;
    const json_t *d = r->doc;
    const char *title = jstr(d, "title"), *region = jstr(d, "region");
    sb_put(b, "<header>\n<h1>");
    if (title && title[0]) {
        sb_esc(b, title);
    }
    else {
        sb_put(b, "aralwatch report");
        if (region && region[0]) {
            sb_put(b, " \xE2\x80\x94 ");
            sb_esc(b, region);
        }
    }
    sb_put(b, "</h1>\n<dl class=\"meta\">\n");

    sb_put(b, "<div><dt>Region</dt><dd>");
    sb_text(b, region, "\xE2\x80\x94");
    sb_put(b, "</dd></div>\n");

    json_t *run = jget(d, "run");
    json_t *dates = jarr(run, "dates");
    size_t nd = jlen(dates);
    sb_put(b, "<div><dt>Dates</dt><dd>");
    if (nd == 0) {
        sb_put(b, "none");
    }
    else if (nd <= 6) {
        for (size_t i = 0; i < nd; i++) {
            json_t *v = json_array_get(dates, i);
            if (i)
                sb_put(b, ", ");
            sb_text(b, json_is_string(v) ? json_string_value(v) : NULL, "?");
        }
    }
    else {
        json_t *v0 = json_array_get(dates, 0);
        json_t *v1 = json_array_get(dates, nd - 1);
        sb_text(b, json_is_string(v0) ? json_string_value(v0) : NULL, "?");
        sb_put(b, " \xE2\x80\xA6 ");
        sb_text(b, json_is_string(v1) ? json_string_value(v1) : NULL, "?");
        sb_printf(b, " (%zu dates)", nd);
    }
    sb_put(b, "</dd></div>\n");

    json_t *bl = jget(run, "baseline");
    sb_put(b, "<div><dt>Baseline</dt><dd>");
    const char *from = jstr(bl, "from"), *to = jstr(bl, "to");
    const char *period = jstr(bl, "period");
    double min_years;
    if (!from && !to && !period) {
        sb_put(b, "not stated");
    }
    else {
        sb_text(b, from, "?");
        sb_put(b, " to ");
        sb_text(b, to, "?");
        if (period && period[0]) {
            sb_put(b, ", by ");
            sb_esc(b, period);
        }
        if (jnum(bl, "min_years", &min_years)) {
            char t[64];
            fmt_num(t, sizeof t, min_years);
            sb_printf(b, ", at least %s years of data", t);
        }
    }
    sb_put(b, "</dd></div>\n");

    sb_put(b, "<div><dt>Generated</dt><dd>");
    sb_text(b, jstr(d, "generated"), "\xE2\x80\x94");
    sb_put(b, "</dd></div>\n");

    json_t *sw = jget(d, "software");
    sb_put(b, "<div><dt>Software</dt><dd>");
    const char *swn = jstr(sw, "name"), *swv = jstr(sw, "version");
    const char *sha = jstr(sw, "git_sha");
    if (!swn && !swv && !sha) {
        sb_put(b, "\xE2\x80\x94");
    }
    else {
        sb_text(b, swn, "aralwatch");
        if (swv && swv[0]) {
            sb_put(b, " ");
            sb_esc(b, swv);
        }
        if (sha && sha[0]) {
            sb_put(b, " (git <code>");
            sb_esc(b, sha);
            sb_put(b, "</code>)");
        }
    }
    sb_put(b, "</dd></div>\n</dl>\n");

    /* One sentence that says what the page holds. */
    json_t *alerts = jarr(d, "alerts");
    size_t na = jlen(alerts), nz = jlen(jarr(d, "zones"));
    size_t nn = jlen(jarr(d, "notices")), nf = jlen(jarr(d, "forecasts"));
    sb_put(b, "<p class=\"summary\">");
    if (na == 0 && nz == 0) {
        sb_put(b, "Nothing to report: no alerts were raised and the report "
                  "holds no zones.");
    }
    else {
        if (na == 0)
            sb_put(b, "<strong>No alerts.</strong>");
        else
            sb_printf(b,
                      "<strong>%zu alert%s</strong> (%zu alert, %zu warning, "
                      "%zu watch).",
                      na, na == 1 ? "" : "s", count_level(alerts, "alert"),
                      count_level(alerts, "warning"),
                      count_level(alerts, "watch"));
        sb_printf(b,
                  " %zu zone%s, %zu insufficient-data notice%s, %zu "
                  "forecast%s.",
                  nz, nz == 1 ? "" : "s", nn, nn == 1 ? "" : "s", nf,
                  nf == 1 ? "" : "s");
    }
    sb_put(b, "</p>\n</header>\n");
    sb_put(b, "<nav><a href=\"#alerts\">Alerts</a>");
    if (nn)
        sb_put(b, "<a href=\"#notices\">Notices</a>");
    if (nf)
        sb_put(b, "<a href=\"#forecasts\">Forecasts</a>");
    sb_put(b, "<a href=\"#zones\">Zones</a>");
    if (jlen(jarr(d, "quicklooks")))
        sb_put(b, "<a href=\"#quicklooks\">Quicklooks</a>");
    sb_put(b, "</nav>\n");
}

/* ---- Alerts ------------------------------------------------------------ */

typedef struct alert_ref {
    json_t *a;
    int rank;
    const char *zone; /* sort key: name, else id, else "" */
    size_t idx;
} alert_ref;

static int cmp_alerts(const void *pa, const void *pb)
{
    const alert_ref *a = pa, *b = pb;
    if (a->rank != b->rank)
        return a->rank > b->rank ? -1 : 1;
    int c = strcmp(a->zone, b->zone);
    if (c)
        return c;
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

static void write_alert(rep *r, const json_t *a, size_t k)
{
    sbuf *b = &r->b;
    const char *lvl = jstr(a, "level");
    const level_info *li = level_of(lvl);
    const char *zone_id = jstr(a, "zone_id");
    sb_printf(b,
              "<article class=\"card c-%s\" id=\"alert-%zu\" "
              "data-level=\"",
              li->css, k);
    sb_text(b, lvl, "");
    sb_put(b, "\" data-zone=\"");
    sb_text(b, zone_id, "");
    sb_put(b, "\">\n<p class=\"card-head\">");
    sb_badge(b, lvl);
    const char *sev = jstr(a, "severity");
    if (sev && sev[0]) {
        sb_put(b, "<span>Severity: ");
        sb_esc(b, sev);
        sb_put(b, "</span>");
    }
    sb_put(b, "<span>");
    SB_LABEL(b, alert_types, jstr(a, "type"), "Alert");
    sb_put(b, "</span>");
    const char *status = jstr(a, "status");
    if (status && status[0]) {
        sb_put(b, "<span>");
        SB_LABEL(b, alert_statuses, status, "");
        sb_put(b, "</span>");
    }
    sb_put(b, "</p>\n<h3>");
    const char *headline = jstr(a, "headline");
    if (headline && headline[0]) {
        sb_esc(b, headline);
    }
    else {
        SB_LABEL(b, alert_types, jstr(a, "type"), "Alert");
        sb_put(b, ": ");
        sb_zone_name(b, r, a);
    }
    sb_put(b, "</h3>\n<dl class=\"facts\">\n");

    sb_put(b, "<div><dt>Zone</dt><dd>");
    sb_zone_name(b, r, a);
    if (zone_id && zone_id[0]) {
        sb_put(b, " (<code>");
        sb_esc(b, zone_id);
        sb_put(b, "</code>)");
    }
    sb_put(b, "</dd></div>\n");

    json_t *m = jget(a, "metric");
    const char *unit = jstr(m, "unit");
    double value = NAN, base = NAN;
    int has_value = jnum(m, "value", &value);
    int has_base = jnum(m, "baseline_value", &base);
    sb_put(b, "<div><dt>Metric</dt><dd>");
    sb_metric_label(b, r, zone_id, jstr(m, "name"));
    sb_put(b, ": <strong>");
    if (has_value)
        sb_num_unit(b, value, unit, 0);
    else
        sb_put(b, "no value");
    sb_put(b, "</strong></dd></div>\n");
    if (has_base) {
        sb_put(b, "<div><dt>Baseline</dt><dd>");
        sb_num_unit(b, base, unit, 0);
        sb_put(b, "</dd></div>\n");
    }
    if (has_value && has_base) {
        sb_put(b, "<div><dt>Change from baseline</dt><dd>");
        sb_num_unit(b, value - base, unit, 1);
        if (base != 0 && !(unit && strcmp(unit, "%") == 0)) {
            double rel = 100.0 * (value - base) / fabs(base);
            sb_put(b, " (");
            sb_num_unit(b, fabs(rel) >= 10 ? round(rel) : rel, "%", 1);
            sb_put(b, ")");
        }
        sb_put(b, "</dd></div>\n");
    }

    json_t *t = jget(a, "tendency");
    const char *dir = jstr(t, "direction");
    double change = NAN, prev = NAN;
    int has_change = jnum(t, "change", &change);
    int has_prev = jnum(t, "previous_value", &prev);
    if (dir || has_change || has_prev) {
        /* The arrow shows which way the metric moved; the word says
         * whether that is worse or better. */
        const char *arrow = "\xE2\x96\xB6", *moved = "unchanged"; /* ▶ */
        if (has_change && change > 0) {
            arrow = "\xE2\x96\xB2"; /* ▲ */
            moved = "rising";
        }
        else if (has_change && change < 0) {
            arrow = "\xE2\x96\xBC"; /* ▼ */
            moved = "falling";
        }
        else if (!has_change) {
            arrow = "\xE2\x80\xA2"; /* • */
            moved = "change unknown";
        }
        sb_printf(b,
                  "<div><dt>Tendency</dt><dd><span class=\"arrow\" "
                  "aria-hidden=\"true\">%s</span> ",
                  arrow);
        if (dir && dir[0]) {
            sb_esc(b, dir);
            sb_put(b, ", ");
        }
        sb_put(b, moved);
        if (has_change) {
            sb_put(b, " ");
            sb_num_unit(b, change, unit, 1);
        }
        if (has_prev) {
            sb_put(b, " since the previous observation (");
            sb_num_unit(b, prev, unit, 0);
            sb_put(b, ")");
        }
        sb_put(b, "</dd></div>\n");
    }
    const char *onset = jstr(a, "onset");
    sb_put(b, "<div><dt>Onset</dt><dd>");
    sb_text(b, onset, "\xE2\x80\x94");
    sb_put(b, "</dd></div>\n");
    const char *date = jstr(a, "date");
    if (date && date[0]) {
        sb_put(b, "<div><dt>Observed</dt><dd>");
        sb_esc(b, date);
        sb_put(b, "</dd></div>\n");
    }
    const char *rule = jstr(a, "rule_id");
    if (rule && rule[0]) {
        sb_put(b, "<div><dt>Rule</dt><dd><code>");
        sb_esc(b, rule);
        sb_put(b, "</code></dd></div>\n");
    }
    const char *id = jstr(a, "alert_id"), *sup = jstr(a, "supersedes");
    if (id && id[0]) {
        sb_put(b, "<div><dt>Alert id</dt><dd><code>");
        sb_esc(b, id);
        sb_put(b, "</code>");
        if (sup && sup[0]) {
            sb_put(b, " (supersedes <code>");
            sb_esc(b, sup);
            sb_put(b, "</code>)");
        }
        sb_put(b, "</dd></div>\n");
    }
    sb_put(b, "</dl>\n</article>\n");
}

static aw_status write_alerts(rep *r)
{
    sbuf *b = &r->b;
    json_t *alerts = jarr(r->doc, "alerts");
    size_t n = jlen(alerts);
    sb_put(b, "<section id=\"alerts\">\n<h2>Alerts</h2>\n");
    alert_ref *refs = n ? aw_calloc2(n, sizeof *refs) : NULL;
    if (n && !refs)
        return aw_fail(r->ctx, AW_ERR_NOMEM, "out of memory");
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *a = json_array_get(alerts, i);
        if (!json_is_object(a))
            continue;
        const char *zone = jstr(a, "zone_name");
        if (!zone || !zone[0])
            zone = jstr(a, "zone_id");
        refs[m].a = a;
        refs[m].rank = level_of(jstr(a, "level"))->rank;
        refs[m].zone = zone ? zone : "";
        refs[m].idx = i;
        m++;
    }
    if (m == 0) {
        sb_put(b,
               "<p class=\"empty\">No alerts were raised in this run.</p>\n");
    }
    else {
        qsort(refs, m, sizeof *refs, cmp_alerts);
        sb_put(b, "<p class=\"note\">Most severe first: Alert, then Warning, "
                  "then Watch; within a level, by zone.</p>\n");
        for (size_t i = 0; i < m; i++)
            write_alert(r, refs[i].a, i);
    }
    free(refs);
    sb_put(b, "</section>\n");
    return AW_OK;
}

/* ---- Notices and forecasts --------------------------------------------- */

static void write_notices(rep *r)
{
    sbuf *b = &r->b;
    json_t *notices = jarr(r->doc, "notices");
    if (jlen(notices) == 0)
        return;
    sb_put(b, "<section id=\"notices\">\n<h2>Insufficient data</h2>\n"
              "<p class=\"note\">These zones could not be judged on this "
              "date (too little of them observed, no baseline for the "
              "period, or out of season; the reason is given). No alert is "
              "raised or cleared for them.</p>\n"
              "<ul class=\"notices\">\n");
    for (size_t i = 0; i < jlen(notices); i++) {
        json_t *o = json_array_get(notices, i);
        if (!json_is_object(o))
            continue;
        sb_put(b, "<li><strong>");
        sb_zone_name(b, r, o);
        sb_put(b, "</strong>");
        const char *rule = jstr(o, "rule_id");
        if (rule && rule[0]) {
            sb_put(b, " (rule <code>");
            sb_esc(b, rule);
            sb_put(b, "</code>)");
        }
        sb_put(b, ": ");
        const char *status = jstr(o, "status");
        if (!status || strcmp(status, "insufficient_data") == 0)
            sb_put(b, "insufficient data");
        else
            sb_esc(b, status);
        double vf;
        if (jnum(o, "valid_fraction", &vf)) {
            char t[64];
            fmt_num(t, sizeof t, 100.0 * vf);
            sb_printf(b, ", %s\xC2\xA0%% of the zone observed", t);
        }
        const char *msg = jstr(o, "message");
        if (msg && msg[0]) {
            sb_put(b, ". ");
            sb_esc(b, msg);
        }
        sb_put(b, "</li>\n");
    }
    sb_put(b, "</ul>\n</section>\n");
}

static void write_forecasts(rep *r)
{
    sbuf *b = &r->b;
    json_t *fcs = jarr(r->doc, "forecasts");
    if (jlen(fcs) == 0)
        return;
    sb_put(b, "<section id=\"forecasts\">\n<h2>Forecasts</h2>\n"
              "<p class=\"note\">A forecast is not an alert: it extends the "
              "recent trend of a metric to the date it would cross a level, "
              "if nothing changes.</p>\n");
    for (size_t i = 0; i < jlen(fcs); i++) {
        json_t *f = json_array_get(fcs, i);
        if (!json_is_object(f))
            continue;
        const char *zone_id = jstr(f, "zone_id"), *lvl = jstr(f, "level");
        const level_info *li = level_of(lvl);
        sb_printf(b,
                  "<article class=\"card c-forecast\" data-level=\"%s\">\n"
                  "<p class=\"card-head\"><span class=\"badge "
                  "b-forecast\">Forecast, not an alert</span>",
                  li->css);
        sb_put(b, "<span>level ");
        sb_badge(b, lvl);
        sb_put(b, "</span></p>\n<h3>");
        sb_zone_name(b, r, f);
        sb_put(b, ": ");
        sb_metric_label(b, r, zone_id, jstr(f, "metric"));
        double thr;
        sb_put(b, " may reach the ");
        if (li == &unknown_level)
            sb_text(b, lvl, "given");
        else
            sb_put(b, li->label);
        sb_put(b, " level");
        const char *unit = series_unit(r, zone_id, jstr(f, "metric"));
        if (jnum(f, "threshold", &thr)) {
            sb_put(b, " (");
            sb_num_unit(b, thr, unit, 0);
            sb_put(b, ")");
        }
        const char *pd = jstr(f, "projected_date");
        sb_put(b, " around <span class=\"nw\">");
        sb_text(b, pd, "an unknown date");
        sb_put(b, "</span></h3>\n<p>");
        const char *e = jstr(f, "earliest"), *l = jstr(f, "latest");
        if (e || l) {
            sb_put(b, "Uncertainty: between ");
            sb_text(b, e, "?");
            sb_put(b, " and ");
            sb_text(b, l, "?");
            sb_put(b, ". ");
        }
        double slope, p, nobs;
        int has_slope = jnum(f, "slope_per_day", &slope);
        int has_n = jnum(f, "n_obs", &nobs);
        if (has_slope || has_n) {
            sb_put(b, "Trend");
            if (has_n)
                sb_printf(b, " of the last %.0f observations", nobs);
            if (has_slope) {
                sb_put(b, ": ");
                sb_num_unit(b, slope, unit, 1);
                sb_put(b, " per day");
            }
            if (jnum(f, "p_value", &p))
                sb_printf(b, " (p = %.2g)", p);
            sb_put(b, ".");
        }
        sb_put(b, "</p>\n</article>\n");
    }
    sb_put(b, "</section>\n");
}

/* ---- Zone table -------------------------------------------------------- */

#define MAX_COLS 8

/* The metric columns: known metrics in their fixed order, then others in
 * the order first seen; valid_fraction has its own column. */
static size_t metric_columns(const rep *r, const char *cols[MAX_COLS])
{
    json_t *zones = jarr(r->doc, "zones");
    size_t n = 0;
    for (size_t k = 0; k < sizeof metrics / sizeof metrics[0]; k++) {
        for (size_t i = 0; i < jlen(zones) && n < MAX_COLS; i++) {
            json_t *ms =
                jget(jget(json_array_get(zones, i), "latest"), "metrics");
            if (json_is_number(jget(ms, metrics[k].key))) {
                cols[n++] = metrics[k].key;
                break;
            }
        }
    }
    for (size_t i = 0; i < jlen(zones) && n < MAX_COLS; i++) {
        json_t *ms = jget(jget(json_array_get(zones, i), "latest"), "metrics");
        if (!json_is_object(ms))
            continue;
        const char *key;
        json_t *v;
        json_object_foreach(ms, key, v)
        {
            if (n >= MAX_COLS)
                break;
            if (!json_is_number(v) || metric_of(key) ||
                strcmp(key, "valid_fraction") == 0)
                continue;
            size_t j = 0;
            while (j < n && strcmp(cols[j], key) != 0)
                j++;
            if (j == n)
                cols[n++] = key;
        }
    }
    return n;
}

static void write_zone_table(rep *r)
{
    sbuf *b = &r->b;
    json_t *zones = jarr(r->doc, "zones");
    sb_put(b, "<section id=\"zones\">\n<h2>Zones</h2>\n");
    if (jlen(zones) == 0) {
        sb_put(b, "<p class=\"empty\">This report holds no zones.</p>\n"
                  "</section>\n");
        return;
    }
    const char *cols[MAX_COLS];
    size_t nc = metric_columns(r, cols);
    sb_put(b, "<div class=\"tablewrap\">\n<table class=\"zones\">\n<thead>"
              "<tr><th>Zone</th><th>Kind</th><th class=\"num\">Area "
              "(km²)</th><th>Level</th><th>Date</th>");
    for (size_t c = 0; c < nc; c++) {
        const metric_info *mi = metric_of(cols[c]);
        sb_put(b, "<th class=\"num\">");
        if (mi) {
            sb_put(b, mi->label);
            if (mi->unit[0])
                sb_printf(b, " (%s)", mi->unit);
        }
        else {
            sb_esc(b, cols[c]);
        }
        sb_put(b, "</th>");
    }
    sb_put(b, "<th class=\"num\">Valid</th></tr></thead>\n<tbody>\n");
    for (size_t i = 0; i < jlen(zones); i++) {
        json_t *z = json_array_get(zones, i);
        if (!json_is_object(z))
            continue;
        json_t *latest = jget(z, "latest"), *ms = jget(latest, "metrics");
        sb_printf(b, "<tr><td><a href=\"#zone-%zu\">", i);
        sb_zone_name(b, r, z);
        sb_put(b, "</a></td><td>");
        SB_LABEL(b, zone_kinds, jstr(z, "kind"), "\xE2\x80\x94");
        sb_put(b, "</td><td class=\"num\">");
        double v;
        if (jnum(z, "area_km2", &v))
            sb_num_unit(b, v, NULL, 0);
        else
            sb_put(b, "\xE2\x80\x94");
        sb_put(b, "</td><td>");
        const char *lvl = jstr(z, "level");
        if (lvl)
            sb_badge(b, lvl);
        else
            sb_put(b, "\xE2\x80\x94");
        sb_put(b, "</td><td class=\"date\">");
        sb_text(b, jstr(latest, "date"), "\xE2\x80\x94");
        sb_put(b, "</td>");
        for (size_t c = 0; c < nc; c++) {
            sb_put(b, "<td class=\"num\">");
            if (jnum(ms, cols[c], &v))
                sb_num_unit(b, v, NULL, 0);
            else
                sb_put(b, "\xE2\x80\x94");
            sb_put(b, "</td>");
        }
        sb_put(b, "<td class=\"num\">");
        if (jnum(ms, "valid_fraction", &v)) {
            char t[64];
            fmt_num(t, sizeof t, 100.0 * v);
            sb_printf(b, "%s\xC2\xA0%%", t);
        }
        else {
            sb_put(b, "\xE2\x80\x94");
        }
        sb_put(b, "</td></tr>\n");
    }
    sb_put(b, "</tbody>\n</table>\n</div>\n</section>\n");
}

/* ---- Charts ------------------------------------------------------------ */

typedef struct obs {
    long day;
    double v;
    int has;
    size_t idx;
} obs;

typedef struct brow {
    long day;
    double lo, med, hi;
    int has_lo, has_med, has_hi;
    size_t idx;
} brow;

static int cmp_obs(const void *pa, const void *pb)
{
    const obs *a = pa, *b = pb;
    if (a->day != b->day)
        return a->day < b->day ? -1 : 1;
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

static int cmp_brow(const void *pa, const void *pb)
{
    const brow *a = pa, *b = pb;
    if (a->day != b->day)
        return a->day < b->day ? -1 : 1;
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

/* Heckbert's nice number: x rounded to 1, 2, 5 or 10 times a power of
 * ten. */
static double nice_num(double x)
{
    double e = floor(log10(x));
    double f = x / pow(10.0, e);
    double nf = f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10;
    return nf * pow(10.0, e);
}

typedef struct axis {
    double lo, hi, step;
    int decimals;
} axis;

/* Nice ticks (a step of 1, 2 or 5 times a power of ten, about four
 * intervals) covering [lo, hi] widened by margin times its range on each
 * side; 0 when the range is unusable. */
static int nice_axis(double lo, double hi, double margin, axis *a)
{
    if (!(hi > lo)) {
        double pad = lo == 0 ? 1 : fabs(lo) * 0.1;
        lo -= pad;
        hi += pad;
    }
    if (!isfinite(hi - lo) || hi - lo <= 0)
        return 0;
    double m = margin * (hi - lo);
    lo -= m;
    hi += m;
    double step = nice_num((hi - lo) / 4.0);
    if (!(step > 0) || !isfinite(step))
        return 0;
    a->lo = floor(lo / step) * step;
    a->hi = ceil(hi / step) * step;
    a->step = step;
    int dec = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    a->decimals = dec > 10 ? 10 : dec;
    return 1;
}

typedef struct geo {
    double left, top, right, bottom; /* plot area */
    double x0, x1;                   /* pixel range of the date domain */
    long d0, d1;                     /* date domain (days) */
    axis y;
} geo;

static double xpx(const geo *g, long day)
{
    return g->x0 +
           (double)(day - g->d0) / (double)(g->d1 - g->d0) * (g->x1 - g->x0);
}

static double ypx(const geo *g, double v)
{
    return g->bottom -
           (v - g->y.lo) / (g->y.hi - g->y.lo) * (g->bottom - g->top);
}

static const char *const month_abbr[12] = {"Jan", "Feb", "Mar", "Apr",
                                           "May", "Jun", "Jul", "Aug",
                                           "Sep", "Oct", "Nov", "Dec"};

static void chart_x_axis(sbuf *b, const geo *g)
{
    int y, m, d, y1, m1, d1;
    civil_from_days(g->d0, &y, &m, &d);
    civil_from_days(g->d1, &y1, &m1, &d1);
    if (d != 1 && ++m > 12) {
        m = 1;
        y++;
    }
    long months = (long)(y1 * 12 + m1) - (long)(y * 12 + m) + 1;
    int step = months <= 12   ? 1
               : months <= 24 ? 2
               : months <= 36 ? 3
               : months <= 72 ? 6
                              : 12 * (int)(1 + months / 120);
    int drawn = 0;
    double ty = g->bottom;
    sb_put(b, "<g class=\"x-axis\" font-size=\"11\" fill=\"#333\" "
              "text-anchor=\"middle\">\n");
    for (long day = days_from_civil(y, m, 1); day <= g->d1;) {
        int year_tick =
            step >= 12 ? (m == 1 && y % (step / 12) == 0) : (m - 1) % step == 0;
        if (year_tick) {
            double x = xpx(g, day);
            sb_printf(b,
                      "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                      "stroke=\"#e4e4e4\"/><line x1=\"%.1f\" y1=\"%.1f\" "
                      "x2=\"%.1f\" y2=\"%.1f\" stroke=\"#555\"/>",
                      x, g->top, x, ty, x, ty, x, ty + 5);
            if (step >= 12)
                sb_printf(b, "<text x=\"%.1f\" y=\"%.1f\">%d</text>\n", x,
                          ty + 18, y);
            else if (m == 1 || drawn == 0)
                sb_printf(b,
                          "<text x=\"%.1f\" y=\"%.1f\">%s</text><text "
                          "x=\"%.1f\" y=\"%.1f\">%d</text>\n",
                          x, ty + 18, month_abbr[m - 1], x, ty + 32, y);
            else
                sb_printf(b, "<text x=\"%.1f\" y=\"%.1f\">%s</text>\n", x,
                          ty + 18, month_abbr[m - 1]);
            drawn++;
        }
        if (++m > 12) {
            m = 1;
            y++;
        }
        day = days_from_civil(y, m, 1);
    }
    if (drawn == 0) {
        /* Less than a month: label both ends with full dates. */
        char t0[32], t1[32];
        fmt_day(t0, g->d0);
        fmt_day(t1, g->d1);
        sb_printf(b,
                  "<text x=\"%.1f\" y=\"%.1f\">%s</text><text x=\"%.1f\" "
                  "y=\"%.1f\">%s</text>\n",
                  g->x0, ty + 18, t0, g->x1, ty + 18, t1);
    }
    sb_put(b, "</g>\n");
}

static void chart_y_axis(sbuf *b, const geo *g)
{
    sb_put(b, "<g class=\"y-axis\" font-size=\"11\" fill=\"#333\" "
              "text-anchor=\"end\">\n");
    int n = (int)lround((g->y.hi - g->y.lo) / g->y.step);
    for (int i = 0; i <= n && i <= 40; i++) {
        double v = g->y.lo + i * g->y.step;
        if (fabs(v) < g->y.step * 1e-9)
            v = 0;
        double y = ypx(g, v);
        sb_printf(b,
                  "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                  "stroke=\"#e4e4e4\"/><text x=\"%.1f\" y=\"%.1f\" "
                  "data-value=\"%.*f\">%.*f</text>\n",
                  g->left, y, g->right, y, g->left - 6, y + 4, g->y.decimals, v,
                  g->y.decimals, v);
    }
    sb_put(b, "</g>\n");
}

typedef struct lvl_line {
    const level_info *li;
    double v, y, label_y;
} lvl_line;

/* Dashed horizontal lines at the levels, labelled at the right end; labels
 * closer than 13 units are pushed apart. Returns how many were drawn. */
static int chart_levels(sbuf *b, const geo *g, const json_t *lv)
{
    static const char *const keys[3] = {"watch", "warning", "alert"};
    lvl_line ll[3];
    int n = 0;
    for (int i = 0; i < 3; i++) {
        double v;
        if (!jnum(lv, keys[i], &v))
            continue;
        ll[n].li = level_of(keys[i]);
        ll[n].v = v;
        ll[n].y = ypx(g, v);
        ll[n].label_y = ll[n].y + 4;
        n++;
    }
    /* Sort by y (at most 3), then spread the labels. */
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && ll[j].y < ll[j - 1].y; j--) {
            lvl_line t = ll[j];
            ll[j] = ll[j - 1];
            ll[j - 1] = t;
        }
    for (int i = 1; i < n; i++)
        if (ll[i].label_y < ll[i - 1].label_y + 13)
            ll[i].label_y = ll[i - 1].label_y + 13;
    sb_put(b, "<g class=\"levels\" font-size=\"11\">\n");
    for (int i = 0; i < n; i++) {
        char t[64];
        fmt_num(t, sizeof t, ll[i].v);
        sb_printf(b,
                  "<line class=\"level\" data-level=\"%s\" x1=\"%.1f\" "
                  "y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                  "stroke-width=\"1.5\" stroke-dasharray=\"6 4\"/>"
                  "<text x=\"%.1f\" y=\"%.1f\" fill=\"%s\" "
                  "font-weight=\"600\">%s %s</text>\n",
                  ll[i].li->key, g->left, ll[i].y, g->right, ll[i].y,
                  ll[i].li->line, g->right + 6, ll[i].label_y, ll[i].li->text,
                  ll[i].li->label, t);
    }
    sb_put(b, "</g>\n");
    return n;
}

static void write_chart(rep *r, const json_t *s)
{
    sbuf *b = &r->b;
    json_t *pts = jarr(s, "points"), *bl = jarr(s, "baseline");
    json_t *lv = jget(s, "levels");
    const char *label = jstr(s, "label"), *unit = jstr(s, "unit");
    const char *metric = jstr(s, "metric"), *dirn = jstr(s, "direction");
    size_t np = jlen(pts), nb = jlen(bl);
    obs *o = np ? aw_calloc2(np, sizeof *o) : NULL;
    brow *br = nb ? aw_calloc2(nb, sizeof *br) : NULL;
    if ((np && !o) || (nb && !br)) {
        b->oom = 1;
        free(o);
        free(br);
        return;
    }
    size_t no = 0, nr = 0, nvalues = 0, ngaps = 0;
    long d0 = 0, d1 = 0;
    int have_day = 0, have_v = 0;
    double lo = 0, hi = 0;
#define TAKE_DAY(d)                                                            \
    do {                                                                       \
        if (!have_day || (d) < d0)                                             \
            d0 = (d);                                                          \
        if (!have_day || (d) > d1)                                             \
            d1 = (d);                                                          \
        have_day = 1;                                                          \
    } while (0)
#define TAKE_V(v)                                                              \
    do {                                                                       \
        if (!have_v || (v) < lo)                                               \
            lo = (v);                                                          \
        if (!have_v || (v) > hi)                                               \
            hi = (v);                                                          \
        have_v = 1;                                                            \
    } while (0)
    for (size_t i = 0; i < np; i++) {
        json_t *p = json_array_get(pts, i);
        json_t *dv = json_is_array(p) ? json_array_get(p, 0) : NULL;
        long day;
        if (!json_is_string(dv) || !parse_date(json_string_value(dv), &day))
            continue;
        o[no].day = day;
        o[no].idx = i;
        o[no].has = jnum_at(p, 1, &o[no].v);
        TAKE_DAY(day);
        if (o[no].has) {
            TAKE_V(o[no].v);
            nvalues++;
        }
        else {
            ngaps++;
        }
        no++;
    }
    for (size_t i = 0; i < nb; i++) {
        json_t *p = json_array_get(bl, i);
        json_t *dv = json_is_array(p) ? json_array_get(p, 0) : NULL;
        long day;
        if (!json_is_string(dv) || !parse_date(json_string_value(dv), &day))
            continue;
        brow *w = &br[nr++];
        w->day = day;
        w->idx = i;
        w->has_lo = jnum_at(p, 1, &w->lo);
        w->has_med = jnum_at(p, 2, &w->med);
        w->has_hi = jnum_at(p, 3, &w->hi);
        TAKE_DAY(day);
        if (w->has_lo)
            TAKE_V(w->lo);
        if (w->has_med)
            TAKE_V(w->med);
        if (w->has_hi)
            TAKE_V(w->hi);
    }
    static const char *const lkeys[3] = {"watch", "warning", "alert"};
    for (int i = 0; i < 3; i++) {
        double v;
        if (jnum(lv, lkeys[i], &v))
            TAKE_V(v);
    }
#undef TAKE_DAY
#undef TAKE_V

    r->n_charts++;
    sb_put(b, "<figure class=\"series\" data-metric=\"");
    sb_text(b, metric, "");
    sb_put(b, "\">\n<figcaption>");
    if (label && label[0])
        sb_esc(b, label);
    else if (metric_of(metric))
        sb_put(b, metric_of(metric)->label);
    else
        sb_text(b, metric, "Series");
    if (unit && unit[0]) {
        sb_put(b, " (");
        sb_esc(b, unit);
        sb_put(b, ")");
    }
    sb_put(b, "</figcaption>\n");

    geo g;
    memset(&g, 0, sizeof g);
    if (!have_day || !nice_axis(have_v ? lo : 0, have_v ? hi : 1, 0.03, &g.y)) {
        sb_put(b, "<p class=\"empty\">No observations to draw.</p>\n"
                  "</figure>\n");
        free(o);
        free(br);
        return;
    }
    if (no > 1)
        qsort(o, no, sizeof *o, cmp_obs);
    if (nr > 1)
        qsort(br, nr, sizeof *br, cmp_brow);
    if (d1 == d0) {
        d0 -= 15;
        d1 += 15;
    }
    g.left = AW_CHART_LEFT;
    g.top = AW_CHART_TOP;
    g.right = AW_CHART_RIGHT;
    g.bottom = AW_CHART_BOTTOM;
    g.x0 = g.left + 10;
    g.x1 = g.right - 10;
    g.d0 = d0;
    g.d1 = d1;
    char t0[32], t1[32];
    fmt_day(t0, d0);
    fmt_day(t1, d1);
    sb_printf(b,
              "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" "
              "viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\" role=\"img\" "
              "aria-labelledby=\"chart-%d-t\" data-plot=\"%.1f %.1f %.1f "
              "%.1f\" data-y-domain=\"%.17g %.17g\" data-x-domain=\"%s %s\" "
              "data-x-px=\"%.1f %.1f\">\n<title id=\"chart-%d-t\">",
              AW_CHART_WIDTH, AW_CHART_HEIGHT, AW_CHART_WIDTH, AW_CHART_HEIGHT,
              r->n_charts, g.left, g.top, g.right, g.bottom, g.y.lo, g.y.hi, t0,
              t1, g.x0, g.x1, r->n_charts);
    if (label && label[0])
        sb_esc(b, label);
    else
        sb_text(b, metric, "Series");
    sb_printf(b, ": %zu observation%s, %zu without enough data</title>\n",
              nvalues, nvalues == 1 ? "" : "s", ngaps);
    sb_printf(b,
              "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
              "fill=\"#fff\"/>\n",
              g.left, g.top, g.right - g.left, g.bottom - g.top);
    chart_y_axis(b, &g);
    chart_x_axis(b, &g);

    /* Baseline: the low-high band of each run of complete rows, then the
     * median line. */
    int drew_band = 0, drew_med = 0;
    sb_put(b, "<g class=\"baseline\">\n");
    for (size_t i = 0; i < nr;) {
        if (!(br[i].has_lo && br[i].has_hi)) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < nr && br[j].has_lo && br[j].has_hi)
            j++;
        if (j - i >= 2) {
            sb_put(b, "<polygon class=\"band\" fill=\"#cfd8dc\" "
                      "fill-opacity=\"0.8\" points=\"");
            for (size_t k = i; k < j; k++)
                sb_printf(b, "%s%.1f,%.1f", k > i ? " " : "",
                          xpx(&g, br[k].day), ypx(&g, br[k].hi));
            for (size_t k = j; k-- > i;)
                sb_printf(b, " %.1f,%.1f", xpx(&g, br[k].day),
                          ypx(&g, br[k].lo));
            sb_put(b, "\"/>\n");
            drew_band = 1;
        }
        i = j;
    }
    for (size_t i = 0; i < nr;) {
        if (!br[i].has_med) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < nr && br[j].has_med)
            j++;
        if (j - i >= 2) {
            sb_put(b, "<polyline class=\"median\" fill=\"none\" "
                      "stroke=\"#546e7a\" stroke-width=\"1.5\" points=\"");
            for (size_t k = i; k < j; k++)
                sb_printf(b, "%s%.1f,%.1f", k > i ? " " : "",
                          xpx(&g, br[k].day), ypx(&g, br[k].med));
            sb_put(b, "\"/>\n");
            drew_med = 1;
        }
        i = j;
    }
    sb_put(b, "</g>\n");
    int nlevels = chart_levels(b, &g, lv);

    /* Observations: a line through each run of values (a gap breaks it),
     * a filled marker per value, a hollow marker on the axis per gap. */
    sb_put(b, "<g class=\"observed\">\n");
    for (size_t i = 0; i < no;) {
        if (!o[i].has) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < no && o[j].has)
            j++;
        if (j - i >= 2) {
            sb_put(b,
                   "<polyline class=\"obs\" fill=\"none\" stroke=\"#0b57a4\" "
                   "stroke-width=\"2\" stroke-linejoin=\"round\" "
                   "points=\"");
            for (size_t k = i; k < j; k++)
                sb_printf(b, "%s%.1f,%.1f", k > i ? " " : "", xpx(&g, o[k].day),
                          ypx(&g, o[k].v));
            sb_put(b, "\"/>\n");
        }
        i = j;
    }
    for (size_t i = 0; i < no; i++) {
        char day[32], t[64];
        fmt_day(day, o[i].day);
        if (o[i].has) {
            fmt_num(t, sizeof t, o[i].v);
            sb_printf(b,
                      "<circle class=\"pt\" cx=\"%.1f\" cy=\"%.1f\" r=\"3.2\" "
                      "fill=\"#0b57a4\" data-date=\"%s\" "
                      "data-value=\"%.10g\"><title>%s: %s",
                      xpx(&g, o[i].day), ypx(&g, o[i].v), day, o[i].v, day, t);
            if (unit && unit[0]) {
                sb_put(b, " ");
                sb_esc(b, unit);
            }
            sb_put(b, "</title></circle>\n");
        }
        else {
            sb_printf(b,
                      "<circle class=\"gap\" cx=\"%.1f\" cy=\"%.1f\" "
                      "r=\"4\" fill=\"#fff\" stroke=\"#0b57a4\" "
                      "stroke-width=\"1.5\" data-date=\"%s\"><title>%s: "
                      "insufficient data</title></circle>\n",
                      xpx(&g, o[i].day), g.bottom, day, day);
        }
    }
    sb_put(b, "</g>\n");
    sb_printf(b,
              "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
              "fill=\"none\" stroke=\"#888\"/>\n</svg>\n",
              g.left, g.top, g.right - g.left, g.bottom - g.top);

    /* Legend, with only what the chart shows. */
    sb_put(b, "<p class=\"legend\">");
    if (nvalues)
        sb_put(b, "<span class=\"k k-obs\"></span>observed");
    if (drew_band)
        sb_put(b, "<span class=\"k k-band\"></span>baseline range");
    if (drew_med)
        sb_put(b, "<span class=\"k k-med\"></span>baseline median");
    if (ngaps)
        sb_put(b, "<span class=\"k k-gap\"></span>insufficient data");
    for (int i = nlevels ? 0 : 3; i < 3; i++) {
        double v;
        if (jnum(lv, lkeys[i], &v))
            sb_printf(b, "<span class=\"k k-%s\"></span>%s level", lkeys[i],
                      level_of(lkeys[i])->label);
    }
    sb_put(b, "</p>\n");
    if (dirn && (strcmp(dirn, "below") == 0 || strcmp(dirn, "above") == 0))
        sb_printf(b,
                  "<p class=\"note\">A level is reached when the value "
                  "%s it.</p>\n",
                  strcmp(dirn, "below") == 0 ? "falls below" : "rises above");
    sb_put(b, "</figure>\n");
    free(o);
    free(br);
}

static void write_zone_sections(rep *r)
{
    sbuf *b = &r->b;
    json_t *zones = jarr(r->doc, "zones");
    for (size_t i = 0; i < jlen(zones); i++) {
        json_t *z = json_array_get(zones, i);
        if (!json_is_object(z))
            continue;
        sb_printf(b,
                  "<section class=\"zone\" id=\"zone-%zu\" "
                  "data-zone-id=\"",
                  i);
        sb_text(b, jstr(z, "zone_id"), "");
        sb_put(b, "\">\n<h3>");
        sb_zone_name(b, r, z);
        const char *lvl = jstr(z, "level");
        if (lvl) {
            sb_put(b, " ");
            sb_badge(b, lvl);
        }
        sb_put(b, "</h3>\n<p class=\"zone-meta\">");
        SB_LABEL(b, zone_kinds, jstr(z, "kind"), "zone");
        double area;
        if (jnum(z, "area_km2", &area)) {
            sb_put(b, ", ");
            sb_num_unit(b, area, "km²", 0);
        }
        const char *id = jstr(z, "zone_id");
        if (id && id[0]) {
            sb_put(b, ", id <code>");
            sb_esc(b, id);
            sb_put(b, "</code>");
        }
        sb_put(b, "</p>\n");
        json_t *series = jarr(z, "series");
        size_t drawn = 0;
        for (size_t k = 0; k < jlen(series); k++) {
            json_t *s = json_array_get(series, k);
            if (!json_is_object(s))
                continue;
            write_chart(r, s);
            drawn++;
        }
        if (!drawn)
            sb_put(b, "<p class=\"empty\">No time series for this zone.</p>\n");
        sb_put(b, "</section>\n");
    }
}

/* ---- Quicklooks -------------------------------------------------------- */

const aw_ramp_stop aw_ramp_vci[] = {
    {0.0, 140, 81, 10},    /* dark brown: extreme stress */
    {25.0, 191, 129, 45},  /* brown */
    {50.0, 246, 222, 110}, /* yellow: fair */
    {75.0, 145, 200, 90},  /* light green */
    {100.0, 26, 140, 60},  /* green: good */
};
const size_t aw_ramp_vci_n = sizeof aw_ramp_vci / sizeof aw_ramp_vci[0];

/* The ramp legend: a gradient bar with nice tick labels. */
static void write_ramp_legend(rep *r, const json_t *lg)
{
    sbuf *b = &r->b;
    const char *ramp = jstr(lg, "ramp"), *label = jstr(lg, "label");
    const aw_ramp_stop *stops = NULL;
    size_t ns = 0;
    if (ramp && strcmp(ramp, "vci") == 0) {
        stops = aw_ramp_vci;
        ns = aw_ramp_vci_n;
    }
    double mn = stops ? stops[0].value : 0,
           mx = stops ? stops[ns - 1].value : 1;
    jnum(lg, "min", &mn);
    jnum(lg, "max", &mx);
    if (!stops || !(mx > mn)) {
        /* Unknown ramp: words only. */
        sb_put(b, "<p class=\"legend\">");
        sb_text(b, label, "Value");
        char a[64], c[64];
        fmt_num(a, sizeof a, mn);
        fmt_num(c, sizeof c, mx);
        sb_printf(b, ": %s to %s", a, c);
        if (ramp && ramp[0]) {
            sb_put(b, " (colour ramp ");
            sb_esc(b, ramp);
            sb_put(b, ")");
        }
        sb_put(b, "</p>\n");
        return;
    }
    int id = ++r->n_ramps;
    const double w = 300, x0 = 10, bar_y = 4, bar_h = 16;
    sb_printf(b,
              "<svg class=\"ramp\" xmlns=\"http://www.w3.org/2000/svg\" "
              "viewBox=\"0 0 %.0f 56\" width=\"%.0f\" height=\"56\" "
              "role=\"img\" aria-label=\"",
              w + 2 * x0 + 20, w + 2 * x0 + 20);
    sb_text(b, label, "Value");
    char a[64], c[64];
    fmt_num(a, sizeof a, mn);
    fmt_num(c, sizeof c, mx);
    sb_printf(b,
              " colour scale from %s to %s\">\n<defs><linearGradient "
              "id=\"ramp-%d\" x1=\"0\" y1=\"0\" x2=\"1\" y2=\"0\">",
              a, c, id);
    for (size_t i = 0; i < ns; i++) {
        double off = (stops[i].value - mn) / (mx - mn);
        off = off < 0 ? 0 : off > 1 ? 1 : off;
        sb_printf(b, "<stop offset=\"%.4f\" stop-color=\"#%02x%02x%02x\"/>",
                  off, stops[i].r, stops[i].g, stops[i].b);
    }
    sb_printf(b,
              "</linearGradient></defs>\n<rect x=\"%.1f\" y=\"%.1f\" "
              "width=\"%.1f\" height=\"%.1f\" fill=\"url(#ramp-%d)\" "
              "stroke=\"#555\"/>\n<g font-size=\"11\" fill=\"#333\" "
              "text-anchor=\"middle\">",
              x0, bar_y, w, bar_h, id);
    axis ax;
    if (nice_axis(mn, mx, 0, &ax)) {
        int n = (int)lround((ax.hi - ax.lo) / ax.step);
        for (int i = 0; i <= n && i <= 40; i++) {
            double v = ax.lo + i * ax.step;
            if (v < mn - 1e-9 * (mx - mn) || v > mx + 1e-9 * (mx - mn))
                continue;
            double x = x0 + (v - mn) / (mx - mn) * w;
            sb_printf(b,
                      "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                      "stroke=\"#555\"/><text x=\"%.1f\" y=\"%.1f\">%.*f"
                      "</text>",
                      x, bar_y + bar_h, x, bar_y + bar_h + 4, x,
                      bar_y + bar_h + 16, ax.decimals, fabs(v) < 1e-12 ? 0 : v);
        }
    }
    sb_printf(b,
              "</g>\n<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" "
              "fill=\"#333\">",
              x0, bar_y + bar_h + 32);
    sb_text(b, label, "");
    if (strcmp(ramp, "vci") == 0)
        sb_put(b, " (low: vegetation stress; high: good condition)");
    sb_put(b, "</text>\n</svg>\n");
}

/* "#rrggbb" only. */
static int is_hex_colour(const char *s)
{
    if (!s || s[0] != '#' || strlen(s) != 7)
        return 0;
    for (int i = 1; i < 7; i++) {
        char ch = s[i];
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') ||
              (ch >= 'A' && ch <= 'F')))
            return 0;
    }
    return 1;
}

static void write_classes_legend(sbuf *b, const json_t *classes)
{
    sb_put(b, "<p class=\"legend classes\">");
    for (size_t i = 0; i < jlen(classes); i++) {
        json_t *c = json_array_get(classes, i);
        const char *col = jstr(c, "color");
        sb_put(b, "<span class=\"cls\">");
        if (is_hex_colour(col))
            sb_printf(b,
                      "<span class=\"swatch\" style=\"background:%s\">"
                      "</span>",
                      col);
        else
            sb_put(b, "<span class=\"swatch sw-none\"></span>");
        sb_text(b, jstr(c, "label"), "?");
        sb_put(b, "</span>");
    }
    sb_put(b, "</p>\n");
}

/* Read a whole file of at most max bytes; NULL with errno set (EFBIG when
 * larger). */
static unsigned char *slurp(const char *path, size_t max, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(f);
        errno = EINVAL;
        return NULL;
    }
    if (sb.st_size < 0 || (unsigned long long)sb.st_size > max) {
        fclose(f);
        errno = EFBIG;
        return NULL;
    }
    size_t len = (size_t)sb.st_size;
    unsigned char *p = malloc(len ? len : 1);
    if (!p) {
        fclose(f);
        errno = ENOMEM;
        return NULL;
    }
    size_t got = fread(p, 1, len, f);
    fclose(f);
    if (got != len) {
        free(p);
        errno = EIO;
        return NULL;
    }
    *n = len;
    return p;
}

#define MAX_IMAGE_BYTES (16u * 1024u * 1024u)

static void write_quicklook(rep *r, const json_t *q, size_t i)
{
    sbuf *b = &r->b;
    const char *title = jstr(q, "title"), *rel = jstr(q, "path");
    json_t *lg = jget(q, "legend");
    sb_printf(b, "<figure class=\"ql\" id=\"quicklook-%zu\">\n", i);
    const char *why = NULL;
    char *path = NULL;
    unsigned char *data = NULL;
    size_t n = 0;
    if (!rel || !rel[0])
        why = "no file named";
    else if (rel[0] == '/' || strstr(rel, "://") ||
             strncmp(rel, "data:", 5) == 0)
        why = "not a relative path (only files next to the report are "
              "embedded)";
    if (!why) {
        path = aw_path_join(r->base_dir, rel);
        if (!path) {
            b->oom = 1;
            return;
        }
        data = slurp(path, MAX_IMAGE_BYTES, &n);
        if (!data)
            why = errno == EFBIG ? "larger than 16 MiB" : strerror(errno);
    }
    const char *mime = NULL;
    if (data) {
        if (n >= 24 && memcmp(data, "\x89PNG\r\n\x1a\n", 8) == 0)
            mime = "image/png";
        else if (n >= 3 && data[0] == 0xFF && data[1] == 0xD8 &&
                 data[2] == 0xFF)
            mime = "image/jpeg";
        else
            why = "not a PNG or JPEG image";
    }
    if (mime) {
        sb_printf(b, "<img src=\"data:%s;base64,", mime);
        sb_base64(b, data, n);
        sb_put(b, "\" alt=\"");
        sb_text(b, title, "quicklook");
        sb_put(b, "\"");
        if (strcmp(mime, "image/png") == 0 &&
            memcmp(data + 12, "IHDR", 4) == 0) {
            unsigned long w = (unsigned long)data[16] << 24 |
                              (unsigned long)data[17] << 16 |
                              (unsigned long)data[18] << 8 | data[19];
            unsigned long h = (unsigned long)data[20] << 24 |
                              (unsigned long)data[21] << 16 |
                              (unsigned long)data[22] << 8 | data[23];
            if (w > 0 && h > 0 && w < 100000 && h < 100000)
                sb_printf(b, " width=\"%lu\" height=\"%lu\"", w, h);
        }
        sb_put(b, ">\n");
    }
    else {
        aw_log(r->ctx, AW_LOG_WARN, "report: quicklook %s: %s",
               path ? path : (rel ? rel : "(none)"), why);
        sb_put(b, "<p class=\"empty\">Image not available (");
        sb_text(b, rel, "no path");
        sb_put(b, ": ");
        sb_esc(b, why);
        sb_put(b, ").</p>\n");
    }
    sb_put(b, "<figcaption>");
    sb_text(b, title, "Quicklook");
    sb_put(b, "</figcaption>\n");
    if (json_is_object(lg)) {
        if (jstr(lg, "ramp"))
            write_ramp_legend(r, lg);
        else if (jarr(lg, "classes"))
            write_classes_legend(b, jarr(lg, "classes"));
    }
    sb_put(b, "</figure>\n");
    free(data);
    free(path);
}

static void write_quicklooks(rep *r)
{
    sbuf *b = &r->b;
    json_t *qs = jarr(r->doc, "quicklooks");
    if (jlen(qs) == 0)
        return;
    sb_put(b, "<section id=\"quicklooks\">\n<h2>Quicklooks</h2>\n"
              "<div class=\"qls\">\n");
    for (size_t i = 0; i < jlen(qs); i++) {
        json_t *q = json_array_get(qs, i);
        if (json_is_object(q))
            write_quicklook(r, q, i);
    }
    sb_put(b, "</div>\n</section>\n");
}

/* ---- The page ---------------------------------------------------------- */

aw_status aw_report_write(aw_ctx *ctx, const json_t *data, const char *base_dir,
                          const char *path)
{
    if (!json_is_object(data))
        return aw_fail(ctx, AW_ERR_INPUT,
                       "%s: the report document is not a JSON object", path);
    rep r;
    memset(&r, 0, sizeof r);
    r.ctx = ctx;
    r.doc = data;
    char *dir = base_dir ? NULL : aw_path_dirname(path);
    r.base_dir = base_dir ? base_dir : dir;
    if (!r.base_dir)
        return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    write_head(&r);
    write_header(&r);
    sb_put(&r.b, "<main>\n");
    aw_status st = write_alerts(&r);
    if (st == AW_OK) {
        write_notices(&r);
        write_forecasts(&r);
        write_zone_table(&r);
        write_zone_sections(&r);
        write_quicklooks(&r);
        sb_put(&r.b, "</main>\n<footer>\n<p>Levels, from least to most "
                     "severe: Watch, Warning, Alert; each is named in words, "
                     "colour only repeats it. Charts show the observed value, "
                     "the baseline range and median of the same period of "
                     "the year, and the levels as dashed lines. Written by "
                     "aralwatch " AW_VERSION ".</p>\n</footer>\n</body>\n"
                     "</html>\n");
        if (r.b.oom)
            st = aw_fail(ctx, AW_ERR_NOMEM, "out of memory writing %s", path);
        else
            st = aw_write_file_atomic(ctx, path, r.b.s, r.b.n);
    }
    free(r.b.s);
    free(dir);
    return st;
}

aw_status aw_report_from_json_file(aw_ctx *ctx, const char *json_path,
                                   const char *html_path)
{
    json_error_t err;
    json_t *doc = json_load_file(json_path, JSON_REJECT_DUPLICATES, &err);
    if (!doc) {
        if (err.line > 0)
            return aw_fail(ctx, AW_ERR_INPUT,
                           "%s:%d:%d: not a valid report document: %s",
                           json_path, err.line, err.column, err.text);
        return aw_fail(ctx, AW_ERR_INPUT, "%s: cannot read: %s", json_path,
                       err.text);
    }
    if (!json_is_object(doc)) {
        json_decref(doc);
        return aw_fail(ctx, AW_ERR_INPUT,
                       "%s: not a valid report document: a JSON object is "
                       "expected",
                       json_path);
    }
    char *dir = aw_path_dirname(json_path);
    aw_status st = dir ? aw_report_write(ctx, doc, dir, html_path)
                       : aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    free(dir);
    json_decref(doc);
    return st;
}

/* ---- Quicklook rendering ----------------------------------------------- */

/* Output size: the long side at most max_size, never enlarged. */
static void out_size(int w, int h, int max_size, int *ow, int *oh)
{
    *ow = w;
    *oh = h;
    int longest = w > h ? w : h;
    if (max_size > 0 && longest > max_size) {
        double s = (double)max_size / (double)longest;
        long x = lround((double)w * s), y = lround((double)h * s);
        *ow = x < 1 ? 1 : (int)x;
        *oh = y < 1 ? 1 : (int)y;
    }
}

/* Band 1 of `path` (w x h pixels, open as ds) read as ow x oh pixels of
 * `type` with resampling alg. GDAL downsamples a whole-raster read on one
 * thread, so a raster without overviews (with them GDAL reads a small
 * overview, and splitting would shift the parts' windows in it) is read
 * in up to 8 parts of output rows, on as many threads, each part through
 * its own handle of the file (a dataset serves one thread at a time).
 * The parts only start at output rows whose source row is a whole number
 * (j * h / oh), so each part's source window is the rows the whole read
 * gives those output rows, and they are the same parts whatever the
 * number of threads: the image does not depend on --threads
 * (tests/unit/test_quicklook.c). If a part fails, the whole read runs on
 * ds, so GDAL's message is this thread's. */
#define AW_QL_PARTS 8
static CPLErr read_resampled(GDALDatasetH ds, const char *path, int w, int h,
                             int ow, int oh, GDALDataType type,
                             GDALRIOResampleAlg alg, void *out)
{
    size_t esz = (size_t)GDALGetDataTypeSizeBytes(type);
    GDALRasterBandH band = GDALGetRasterBand(ds, 1);
    /* Part boundaries: the allowed output row nearest each eighth. */
    int cut[AW_QL_PARTS + 1], parts = 0;
    cut[0] = 0;
    if (GDALGetOverviewCount(band) == 0 && oh >= 2 * AW_QL_PARTS) {
        for (int k = 1; k < AW_QL_PARTS; k++) {
            int target = (int)((long)oh * k / AW_QL_PARTS), best = -1;
            for (int j = cut[parts] + 1; j < oh; j++)
                if ((long long)j * h % oh == 0 &&
                    (best < 0 || abs(j - target) < abs(best - target)))
                    best = j;
            if (best > cut[parts])
                cut[++parts] = best;
        }
    }
    cut[++parts] = oh;
    int failed = parts < 2;
    int nth = omp_in_parallel() ? 1 : omp_get_max_threads();
    nth = nth < parts ? nth : parts;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nth > 0 ? nth : 1)   \
    reduction(|                                                                \
              : failed)
    for (int k = 0; k < (parts > 1 ? parts : 0); k++) {
        int j0 = cut[k], j1 = cut[k + 1];
        GDALDatasetH d = GDALOpenEx(path, GDAL_OF_RASTER | GDAL_OF_READONLY,
                                    NULL, NULL, NULL);
        if (!d) {
            failed = 1;
            continue;
        }
        GDALRasterIOExtraArg ea;
        INIT_RASTERIO_EXTRA_ARG(ea);
        ea.eResampleAlg = alg;
        int y0 = (int)((long long)j0 * h / oh);
        int y1 = (int)((long long)j1 * h / oh);
        CPLPushErrorHandler(CPLQuietErrorHandler);
        CPLErr e =
            GDALRasterIOEx(GDALGetRasterBand(d, 1), GF_Read, 0, y0, w, y1 - y0,
                           (char *)out + (size_t)j0 * (size_t)ow * esz, ow,
                           j1 - j0, type, 0, 0, &ea);
        CPLPopErrorHandler();
        failed |= e != CE_None;
        GDALClose(d);
    }
    if (!failed)
        return CE_None;
    GDALRasterIOExtraArg ea;
    INIT_RASTERIO_EXTRA_ARG(ea);
    ea.eResampleAlg = alg;
    CPLErrorReset();
    return GDALRasterIOEx(band, GF_Read, 0, 0, w, h, out, ow, oh, type, 0, 0,
                          &ea);
}

/* Band 1 of ds as float, resampled to ow x oh with alg; no-data pixels
 * (NaN, infinities, the band's nodata value) set in *invalid (1 = no
 * data). */
static aw_status read_float(aw_ctx *ctx, GDALDatasetH ds, const char *path,
                            int ow, int oh, GDALRIOResampleAlg alg, float **out,
                            unsigned char **invalid)
{
    size_t n = (size_t)ow * (size_t)oh;
    float *buf = aw_calloc2(n, sizeof *buf);
    unsigned char *bad = aw_calloc2(n, 1);
    if (!buf || !bad) {
        free(buf);
        free(bad);
        return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    }
    GDALRasterBandH band = GDALGetRasterBand(ds, 1);
    CPLErr e =
        read_resampled(ds, path, GDALGetRasterXSize(ds), GDALGetRasterYSize(ds),
                       ow, oh, GDT_Float32, alg, buf);
    if (e != CE_None) {
        free(buf);
        free(bad);
        return aw_fail(ctx, AW_ERR_INPUT, "%s: cannot read band 1: %s", path,
                       aw_gdal_last_error());
    }
    int has_nd = 0;
    double nd = GDALGetRasterNoDataValue(band, &has_nd);
    /* The pixels were read as float: compare with the nodata value as a
     * float (a value float cannot hold matches nothing). */
    has_nd = has_nd && isfinite(nd) && fabs(nd) <= (double)FLT_MAX;
    float ndf = has_nd ? (float)nd : 0.0f;
    for (size_t i = 0; i < n; i++)
        bad[i] =
            (unsigned char)(!isfinite(buf[i]) || (has_nd && buf[i] == ndf));
    *out = buf;
    *invalid = bad;
    return AW_OK;
}

/* GDALTranslate src to a PNG (extra gdal_translate arguments in args),
 * under a temporary name renamed when complete; no .aux.xml side-car. */
static aw_status translate_png(aw_ctx *ctx, GDALDatasetH src,
                               const char *const *args, size_t n_args,
                               const char *what, const char *png)
{
    char *tmp = aw_tmp_name(png);
    char **argv = CSLAddString(NULL, "-of");
    argv = CSLAddString(argv, "PNG");
    for (size_t i = 0; i < n_args; i++)
        argv = CSLAddString(argv, args[i]);
    GDALTranslateOptions *opt = GDALTranslateOptionsNew(argv, NULL);
    CSLDestroy(argv);
    if (!tmp || !opt) {
        free(tmp);
        GDALTranslateOptionsFree(opt);
        return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    }
    CPLSetThreadLocalConfigOption("GDAL_PAM_ENABLED", "NO");
    CPLErrorReset();
    int usage = 0;
    GDALDatasetH out = GDALTranslate(tmp, src, opt, &usage);
    GDALTranslateOptionsFree(opt);
    if (out)
        GDALClose(out); /* the PNG is complete when this returns */
    int failed = !out || CPLGetLastErrorType() == CE_Failure;
    CPLSetThreadLocalConfigOption("GDAL_PAM_ENABLED", NULL);
    aw_status st;
    if (failed) {
        st = aw_fail(ctx, AW_ERR_IO, "%s: cannot write the PNG of %s: %s", png,
                     what, aw_gdal_last_error());
        VSIUnlink(tmp);
    }
    else {
        st = aw_commit_file(ctx, tmp, png);
    }
    free(tmp);
    return st;
}

/* Band-sequential bytes (4 planes of w x h: red, green, blue, alpha) as an
 * RGBA PNG. */
static aw_status write_rgba_png(aw_ctx *ctx, unsigned char *planes, int w,
                                int h, const char *what, const char *png)
{
    GDALDriverH mem_drv = GDALGetDriverByName("MEM");
    GDALDatasetH mem =
        mem_drv ? GDALCreate(mem_drv, "", w, h, 4, GDT_Byte, NULL) : NULL;
    if (!mem)
        return aw_fail(ctx, AW_ERR_NOMEM, "%s: cannot create an image: %s", png,
                       aw_gdal_last_error());
    static const GDALColorInterp ci[4] = {GCI_RedBand, GCI_GreenBand,
                                          GCI_BlueBand, GCI_AlphaBand};
    size_t plane = (size_t)w * (size_t)h;
    CPLErr e = CE_None;
    for (int k = 0; k < 4 && e == CE_None; k++) {
        GDALRasterBandH band = GDALGetRasterBand(mem, k + 1);
        GDALSetRasterColorInterpretation(band, ci[k]);
        e = GDALRasterIO(band, GF_Write, 0, 0, w, h, planes + (size_t)k * plane,
                         w, h, GDT_Byte, 0, 0);
    }
    aw_status st = e == CE_None ? translate_png(ctx, mem, NULL, 0, what, png)
                                : aw_fail(ctx, AW_ERR_NOMEM,
                                          "%s: cannot fill the image", png);
    GDALClose(mem);
    return st;
}

static unsigned char stretch(float v, double lo, double hi)
{
    double t = ((double)v - lo) / (hi - lo);
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    return (unsigned char)lround(1.0 + t * 254.0);
}

aw_status aw_quicklook_rgb(aw_ctx *ctx, const char *red, const char *green,
                           const char *blue, double lo, double hi, int max_size,
                           const char *png)
{
    if (!isfinite(lo) || !isfinite(hi) || !(hi > lo))
        return aw_fail(ctx, AW_ERR_USAGE,
                       "%s: quicklook stretch needs lo < hi (got %g, %g)", png,
                       lo, hi);
    const char *paths[3] = {red, green, blue};
    GDALDatasetH ds[3] = {NULL, NULL, NULL};
    float *v[3] = {NULL, NULL, NULL};
    unsigned char *bad[3] = {NULL, NULL, NULL};
    unsigned char *planes = NULL;
    aw_status st = AW_OK;
    int w = 0, h = 0, ow = 0, oh = 0;
    for (int k = 0; k < 3 && st == AW_OK; k++) {
        st = aw_open_raster(ctx, paths[k], &ds[k]);
        if (st != AW_OK)
            break;
        int bw = GDALGetRasterXSize(ds[k]), bh = GDALGetRasterYSize(ds[k]);
        if (k == 0) {
            w = bw;
            h = bh;
        }
        else if (bw != w || bh != h) {
            st = aw_fail(ctx, AW_ERR_INPUT,
                         "%s is %d x %d pixels but %s is %d x %d", paths[k], bw,
                         bh, paths[0], w, h);
        }
    }
    if (st == AW_OK) {
        out_size(w, h, max_size, &ow, &oh);
        for (int k = 0; k < 3 && st == AW_OK; k++)
            st = read_float(ctx, ds[k], paths[k], ow, oh, GRIORA_Average, &v[k],
                            &bad[k]);
    }
    size_t n = (size_t)ow * (size_t)oh;
    if (st == AW_OK) {
        planes = aw_calloc2(n, 4);
        if (!planes)
            st = aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    }
    if (st == AW_OK) {
        for (size_t i = 0; i < n; i++) {
            if (bad[0][i] || bad[1][i] || bad[2][i])
                continue; /* 0, 0, 0, alpha 0 */
            for (int k = 0; k < 3; k++)
                planes[(size_t)k * n + i] = stretch(v[k][i], lo, hi);
            planes[3 * n + i] = 255;
        }
        st = write_rgba_png(ctx, planes, ow, oh, red, png);
    }
    for (int k = 0; k < 3; k++) {
        if (ds[k])
            GDALClose(ds[k]);
        free(v[k]);
        free(bad[k]);
    }
    free(planes);
    return st;
}

aw_status aw_quicklook_classes(aw_ctx *ctx, const char *class_tif, int max_size,
                               const char *png)
{
    GDALDatasetH ds = NULL;
    aw_status st = aw_open_raster(ctx, class_tif, &ds);
    if (st != AW_OK)
        return st;
    GDALRasterBandH band = GDALGetRasterBand(ds, 1);
    GDALDataType type = GDALGetRasterDataType(band);
    if (type != GDT_Byte) {
        GDALClose(ds);
        return aw_fail(ctx, AW_ERR_INPUT,
                       "%s: not a uint8 class raster (band 1 is %s)", class_tif,
                       GDALGetDataTypeName(type));
    }
    int w = GDALGetRasterXSize(ds), h = GDALGetRasterYSize(ds), ow, oh;
    out_size(w, h, max_size, &ow, &oh);
    /* Band 1 with its colour table and nodata; downsampled to the most
     * frequent class, never to a blend of classes. With overviews (a COG)
     * gdal_translate reads them, quickly. */
    if (GDALGetOverviewCount(band) > 0) {
        char sw[24], sh[24];
        snprintf(sw, sizeof sw, "%d", ow);
        snprintf(sh, sizeof sh, "%d", oh);
        const char *const args[] = {"-b", "1",  "-outsize", sw,
                                    sh,   "-r", "mode"};
        st = translate_png(ctx, ds, args, sizeof args / sizeof args[0],
                           class_tif, png);
        GDALClose(ds);
        return st;
    }
    /* Without, GDAL would read and resample the whole raster on one
     * thread: read_resampled shares it out. */
    unsigned char *v = aw_calloc2((size_t)ow * (size_t)oh, 1);
    GDALDriverH mem_drv = GDALGetDriverByName("MEM");
    GDALDatasetH mem = v && mem_drv
                           ? GDALCreate(mem_drv, "", ow, oh, 1, GDT_Byte, NULL)
                           : NULL;
    if (!mem) {
        free(v);
        GDALClose(ds);
        return aw_fail(ctx, AW_ERR_NOMEM, "%s: cannot create an image", png);
    }
    if (read_resampled(ds, class_tif, w, h, ow, oh, GDT_Byte, GRIORA_Mode, v) !=
        CE_None) {
        st = aw_fail(ctx, AW_ERR_INPUT, "%s: cannot read band 1: %s", class_tif,
                     aw_gdal_last_error());
    }
    else {
        GDALRasterBandH mb = GDALGetRasterBand(mem, 1);
        GDALColorTableH ct = GDALGetRasterColorTable(band);
        int has_nd = 0;
        double nd = GDALGetRasterNoDataValue(band, &has_nd);
        if (ct)
            GDALSetRasterColorTable(mb, ct);
        if (has_nd)
            GDALSetRasterNoDataValue(mb, nd);
        st = GDALRasterIO(mb, GF_Write, 0, 0, ow, oh, v, ow, oh, GDT_Byte, 0,
                          0) == CE_None
                 ? translate_png(ctx, mem, NULL, 0, class_tif, png)
                 : aw_fail(ctx, AW_ERR_NOMEM, "%s: cannot fill the image", png);
    }
    GDALClose(mem);
    free(v);
    GDALClose(ds);
    return st;
}

/* The ramp as a color-relief colour file in GDAL's in-memory file system
 * ("value r g b a" per line); the name is returned (heap), NULL on no
 * memory. */
static char *ramp_color_file(const aw_ramp_stop *stops, size_t n_stops,
                             const void *tag)
{
    sbuf cf;
    memset(&cf, 0, sizeof cf);
    for (size_t i = 0; i < n_stops; i++)
        sb_printf(&cf, "%.17g %d %d %d 255\n", stops[i].value, stops[i].r,
                  stops[i].g, stops[i].b);
    char *name = aw_asprintf("/vsimem/aw_ramp_%ld_%lx.txt", (long)getpid(),
                             (unsigned long)(uintptr_t)tag);
    VSILFILE *fp = name && !cf.oom ? VSIFOpenL(name, "wb") : NULL;
    int ok = fp && VSIFWriteL(cf.s, 1, cf.n, fp) == cf.n;
    if (fp && VSIFCloseL(fp) != 0)
        ok = 0;
    free(cf.s);
    if (!ok && name) {
        VSIUnlink(name);
        free(name);
        name = NULL;
    }
    return name;
}

/* Colour w x h floats through the ramp with GDALDEMProcessing
 * color-relief into 4 band-sequential byte planes (RGBA). */
static aw_status color_relief(aw_ctx *ctx, float *v, int w, int h,
                              const aw_ramp_stop *stops, size_t n_stops,
                              unsigned char *planes, const char *png)
{
    GDALDriverH mem_drv = GDALGetDriverByName("MEM");
    GDALDatasetH src =
        mem_drv ? GDALCreate(mem_drv, "", w, h, 1, GDT_Float32, NULL) : NULL;
    if (!src || GDALRasterIO(GDALGetRasterBand(src, 1), GF_Write, 0, 0, w, h, v,
                             w, h, GDT_Float32, 0, 0) != CE_None) {
        if (src)
            GDALClose(src);
        return aw_fail(ctx, AW_ERR_NOMEM, "%s: cannot create an image: %s", png,
                       aw_gdal_last_error());
    }
    char *cfile = ramp_color_file(stops, n_stops, v);
    char **argv = CSLAddString(NULL, "-of");
    argv = CSLAddString(argv, "MEM");
    argv = CSLAddString(argv, "-alpha");
    GDALDEMProcessingOptions *opt = GDALDEMProcessingOptionsNew(argv, NULL);
    CSLDestroy(argv);
    int usage = 0;
    CPLErrorReset();
    GDALDatasetH rgba =
        cfile && opt
            ? GDALDEMProcessing("", src, "color-relief", cfile, opt, &usage)
            : NULL;
    GDALDEMProcessingOptionsFree(opt);
    aw_status st = AW_OK;
    if (!cfile || !opt)
        st = aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    else if (!rgba || GDALGetRasterCount(rgba) != 4)
        st = aw_fail(ctx, AW_ERR_INTERNAL, "%s: color-relief failed: %s", png,
                     aw_gdal_last_error());
    size_t plane = (size_t)w * (size_t)h;
    for (int k = 0; k < 4 && st == AW_OK; k++)
        if (GDALRasterIO(GDALGetRasterBand(rgba, k + 1), GF_Read, 0, 0, w, h,
                         planes + (size_t)k * plane, w, h, GDT_Byte, 0,
                         0) != CE_None)
            st = aw_fail(ctx, AW_ERR_INTERNAL, "%s: color-relief failed: %s",
                         png, aw_gdal_last_error());
    if (rgba)
        GDALClose(rgba);
    GDALClose(src);
    if (cfile)
        VSIUnlink(cfile);
    free(cfile);
    return st;
}

aw_status aw_quicklook_ramp(aw_ctx *ctx, const char *float_tif,
                            const aw_ramp_stop *stops, size_t n_stops,
                            int max_size, const char *png)
{
    if (!stops || n_stops == 0)
        return aw_fail(ctx, AW_ERR_USAGE, "%s: a colour ramp needs stops", png);
    for (size_t i = 0; i < n_stops; i++)
        if (!isfinite(stops[i].value) ||
            (i > 0 && stops[i].value < stops[i - 1].value))
            return aw_fail(ctx, AW_ERR_USAGE,
                           "%s: colour ramp stops must be finite and in "
                           "increasing order",
                           png);
    GDALDatasetH ds = NULL;
    aw_status st = aw_open_raster(ctx, float_tif, &ds);
    if (st != AW_OK)
        return st;
    int ow, oh;
    out_size(GDALGetRasterXSize(ds), GDALGetRasterYSize(ds), max_size, &ow,
             &oh);
    float *v = NULL;
    unsigned char *bad = NULL, *planes = NULL;
    st = read_float(ctx, ds, float_tif, ow, oh, GRIORA_Average, &v, &bad);
    GDALClose(ds);
    size_t n = (size_t)ow * (size_t)oh;
    if (st == AW_OK) {
        planes = aw_calloc2(n, 4);
        if (!planes)
            st = aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    }
    if (st == AW_OK) {
        /* No-data pixels take the first stop's value here, so color-relief
         * sees only numbers, and are made transparent afterwards. */
        double first =
            fmax(-(double)FLT_MAX, fmin((double)FLT_MAX, stops[0].value));
        for (size_t i = 0; i < n; i++)
            if (bad[i])
                v[i] = (float)first;
        st = color_relief(ctx, v, ow, oh, stops, n_stops, planes, png);
    }
    if (st == AW_OK) {
        for (size_t i = 0; i < n; i++)
            if (bad[i])
                for (int k = 0; k < 4; k++)
                    planes[(size_t)k * n + i] = 0;
        st = write_rgba_png(ctx, planes, ow, oh, float_tif, png);
    }
    free(planes);
    free(v);
    free(bad);
    return st;
}
