/* Config loader: YAML file -> validated, immutable aw_config.
 *
 * The file is read whole, parsed with libyaml's document API and then walked
 * against the version-1 schema (README.md "Config reference", commented
 * examples in configs/). Every problem is collected, not just the first:
 * each becomes one line "FILE:LINE: key.path: message", the lines are sorted
 * by line number and joined into the context's error message. Nothing of a
 * half-built config escapes: on any error it is destroyed and *out is left
 * alone.
 *
 * Each mapping is read in two steps: first its keys are matched against the
 * known names (unknown keys, duplicate keys and non-string keys are
 * reported there), then the values are read in schema order, so defaults
 * that depend on other keys (alerts.min_valid_fraction for the rules, a
 * scene's scale for its bands) do not depend on the order in the file.
 *
 * A key with a null value ("crs:", "crs: ~") counts as absent. */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <dirent.h>
#include <glob.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>
#include <cpl_error.h>
#include <gdal.h>
#include <ogr_api.h>
#include <ogr_srs_api.h>
#include "aralwatch/config.h"
#include "aralwatch/pipeline.h"
#include "aralwatch/profile.h"
#include "aralwatch/util.h"

#define MAX_REPORTED_ERRORS 50
/* Error text budget: the context keeps at most 16 KiB of message (50
 * unknown keys, each listing the known ones, take about 8). */
#define MAX_REPORT_BYTES 16000
#define MAX_CONFIG_BYTES ((size_t)16 << 20)
#define KEY_PATH_MAX     256
#define SHOWN_VALUE_MAX  40
#define NAME_LIST_MAX    512

/* ---- Names ---- */

static const char *const metric_names[AW_METRIC_COUNT] = {
    "water_area_km2",
    "water_fraction",
    "valid_fraction",
    "mean_ndvi",
    "mean_ndwi",
    "mean_mndwi",
    "water_area_pct_median",
    "lost_water_km2",
    "new_water_km2",
    "stressed_pct",
    "mean_vci",
    "ndvi_anomaly"};

/* The index a metric reads, or -1 when it needs only the water mask. */
static const int metric_index[AW_METRIC_COUNT] = {
    -1, -1, -1, AW_IDX_NDVI, AW_IDX_NDWI, AW_IDX_MNDWI,
    -1, -1, -1, AW_IDX_NDVI, AW_IDX_NDVI, AW_IDX_NDVI};

static const char *const resampling_names[] = {"nearest", "bilinear", "cubic",
                                               "average"};
static const char *const zone_kind_names[] = {"waterbody", "cropland", "other"};
static const char *const cmp_names[] = {"below", "above"};
static const char *const water_method_names[] = {"threshold", "otsu", "dswe",
                                                 "wofs"};
static const char *const sensor_names[] = {"auto", "generic", "landsat_c2_l2",
                                           "sentinel2_l2a"};
static const char *const mosaic_names[] = {"first", "least_cloud", "latest"};
static const char *const landsat_flag_names[] = {"dilated_cloud", "cirrus",
                                                 "cloud", "shadow", "snow"};
static const char *const confidence_names[] = {"none", "low", "medium", "high"};
static const char *const rule_type_names[] = {
    "water_shrinkage", "flood_expansion", "crop_stress", "custom"};
static const char *const compress_names[] = {"deflate", "zstd", "lzw", "none"};
static const char *const compress_values[] = {"DEFLATE", "ZSTD", "LZW", "NONE"};
static const char *const level_names[3] = {"watch", "warning", "alert"};
static const char *const period_names[] = {"month", "dekad"};

#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

const char *aw_metric_name(aw_metric m)
{
    return (unsigned)m < AW_METRIC_COUNT ? metric_names[m] : "?";
}

int aw_metric_from_name(const char *name)
{
    if (!name)
        return -1;
    for (int m = 0; m < AW_METRIC_COUNT; m++)
        if (strcmp(name, metric_names[m]) == 0)
            return m;
    return -1;
}

/* ---- Loader state ---- */

typedef struct cfg_error {
    int line;
    size_t seq; /* order of discovery, to keep the sort stable */
    char *text;
} cfg_error;

/* What the cross-field checks need to know about a scene. */
typedef struct scene_meta {
    int date_ok;
    int date_line;
    int id_given; /* 0: id is a default derived from a path */
    int id_line;
    int bands_ok;   /* the bands mapping was read */
    int from_inbox; /* found in an inbox: missing bands fail the scene at
                       run time instead of the config */
    int bands_line;
} scene_meta;

typedef struct rule_meta {
    int metric_ok;
    int metric_line;
    int id_line;
    int zones_line; /* line of the rule's zones list, 0 if none */
} rule_meta;

typedef struct loader {
    aw_ctx *ctx;      /* for product detection and inbox warnings */
    const char *file; /* config path as given, for messages */
    yaml_document_t *doc;
    aw_config *cfg;
    cfg_error *errs;
    size_t n_errs, cap_errs;
    int nomem;
    scene_meta *smeta;
    rule_meta *rmeta;
    int water_index_ok;
    const char *index_names[AW_IDX_COUNT];
    int net_line[16];      /* network paths seen (/vsicurl/...), checked */
    char net_key[16][128]; /* against allow_network once it is read */
    size_t n_net;
    char **layer_zone_ids; /* ids read from the zone layer, for the rules */
    size_t n_layer_zone_ids;
    int zone_layer_ok;
} loader;

/* A known key of a mapping and what the file gave for it. */
typedef struct field {
    const char *name;
    yaml_node_t *key; /* NULL: absent */
    yaml_node_t *val; /* NULL: absent or null */
} field;

/* ---- Errors ---- */

static void add_error(loader *L, int line, const char *path, const char *fmt,
                      ...) __attribute__((format(printf, 4, 5)));

static void add_error(loader *L, int line, const char *path, const char *fmt,
                      ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (L->n_errs == L->cap_errs) {
        size_t cap = L->cap_errs ? 2 * L->cap_errs : 16;
        cfg_error *e = realloc(L->errs, cap * sizeof *e);
        if (!e) {
            L->nomem = 1;
            return;
        }
        L->errs = e;
        L->cap_errs = cap;
    }
    char *text = aw_asprintf("%s:%d: %s: %s", L->file, line,
                             path[0] ? path : "(top level)", msg);
    if (!text) {
        L->nomem = 1;
        return;
    }
    L->errs[L->n_errs].line = line;
    L->errs[L->n_errs].seq = L->n_errs;
    L->errs[L->n_errs].text = text;
    L->n_errs++;
}

static int cmp_errors(const void *a, const void *b)
{
    const cfg_error *x = a, *y = b;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    return x->seq < y->seq ? -1 : (x->seq > y->seq);
}

/* Sort the collected errors by line and store them in ctx. */
static aw_status report_errors(aw_ctx *ctx, loader *L)
{
    qsort(L->errs, L->n_errs, sizeof *L->errs, cmp_errors);
    char *buf = malloc(MAX_REPORT_BYTES + 128);
    if (!buf)
        return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    size_t len = 0, shown = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < L->n_errs && shown < MAX_REPORTED_ERRORS; i++) {
        size_t n = strlen(L->errs[i].text);
        if (len + n + 1 > MAX_REPORT_BYTES)
            break;
        if (len)
            buf[len++] = '\n';
        memcpy(buf + len, L->errs[i].text, n + 1);
        len += n;
        shown++;
    }
    if (shown < L->n_errs)
        snprintf(buf + len, MAX_REPORT_BYTES + 128 - len,
                 "%s%s: %zu more errors not shown", len ? "\n" : "", L->file,
                 L->n_errs - shown);
    aw_status st = aw_fail(ctx, AW_ERR_CONFIG, "%s", buf);
    free(buf);
    return st;
}

/* ---- Key paths and suggestions ---- */

/* Append the pieces to buf (KEY_PATH_MAX bytes), truncating if needed. */
static void path_concat(char *buf, const char *a, const char *b, const char *c,
                        const char *d)
{
    const char *parts[4] = {a, b, c, d};
    size_t len = 0;
    for (int i = 0; i < 4; i++) {
        size_t n = strlen(parts[i]);
        if (n > KEY_PATH_MAX - 1 - len)
            n = KEY_PATH_MAX - 1 - len;
        memmove(buf + len, parts[i], n);
        len += n;
    }
    buf[len] = '\0';
}

static void key_path(char *buf, const char *parent, const char *key)
{
    path_concat(buf, parent, parent[0] ? "." : "", key, "");
}

static void item_path(char *buf, const char *parent, size_t i)
{
    char num[32];
    snprintf(num, sizeof num, "[%zu]", i);
    path_concat(buf, parent, num, "", "");
}

/* Optimal string alignment distance (Levenshtein plus transpositions);
 * SIZE_MAX for strings too long to bother. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return SIZE_MAX;
    size_t d[64][64];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = a[i - 1] != b[j - 1];
            size_t v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v)
                v = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < v)
                v = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] &&
                a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    }
    return d[la][lb];
}

/* The candidate closest to s within edit distance 2, or NULL. Very short
 * words need a closer match, so "foo" does not suggest "cog". */
static const char *closest(const char *s, const char *const *names, size_t n)
{
    const char *best = NULL;
    size_t best_d = 3;
    for (size_t i = 0; i < n; i++) {
        size_t d = edit_distance(s, names[i]);
        size_t longest =
            strlen(s) > strlen(names[i]) ? strlen(s) : strlen(names[i]);
        if (d < best_d && 2 * d < longest) {
            best = names[i];
            best_d = d;
        }
    }
    return best;
}

static void join_names(char *buf, size_t size, const char *const *names,
                       size_t n)
{
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && len < size; i++) {
        int w =
            snprintf(buf + len, size - len, "%s%s", i ? ", " : "", names[i]);
        if (w < 0)
            break;
        len += (size_t)w;
    }
}

/* ---- Nodes ---- */

static int line_of(const yaml_node_t *n)
{
    return n ? (int)n->start_mark.line + 1 : 1;
}

static yaml_node_t *node_at(const loader *L, int id)
{
    return yaml_document_get_node(L->doc, id);
}

static const char *text_of(const yaml_node_t *n)
{
    return (const char *)n->data.scalar.value;
}

static int is_null(const yaml_node_t *n)
{
    if (!n)
        return 1;
    if (n->type != YAML_SCALAR_NODE ||
        n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return 0;
    const char *s = text_of(n);
    return !s[0] || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 ||
           strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0;
}

static void type_error(loader *L, const yaml_node_t *n, const char *path,
                       const char *expected)
{
    if (n->type == YAML_MAPPING_NODE) {
        add_error(L, line_of(n), path, "expected %s, got a mapping", expected);
    }
    else if (n->type == YAML_SEQUENCE_NODE) {
        add_error(L, line_of(n), path, "expected %s, got a list", expected);
    }
    else if (n->type == YAML_SCALAR_NODE) {
        const char *s = text_of(n);
        size_t len = strlen(s);
        if (is_null(n))
            add_error(L, line_of(n), path, "expected %s, got nothing",
                      expected);
        else if (len > SHOWN_VALUE_MAX)
            add_error(L, line_of(n), path, "expected %s, got '%.*s...'",
                      expected, SHOWN_VALUE_MAX, s);
        else
            add_error(L, line_of(n), path, "expected %s, got '%s'", expected,
                      s);
    }
    else {
        add_error(L, line_of(n), path, "expected %s", expected);
    }
}

/* The text of a scalar without embedded NUL bytes, or NULL after reporting
 * that n is not what was expected. */
static const char *scalar(loader *L, const yaml_node_t *n, const char *path,
                          const char *expected)
{
    if (n->type != YAML_SCALAR_NODE) {
        type_error(L, n, path, expected);
        return NULL;
    }
    const char *s = text_of(n);
    if (strlen(s) != n->data.scalar.length) {
        add_error(L, line_of(n), path,
                  "expected %s, got text with a NUL "
                  "character",
                  expected);
        return NULL;
    }
    return s;
}

/* Match the keys of mapping n against f[0..nf). 0 if n is not a mapping. */
static int read_mapping(loader *L, yaml_node_t *n, const char *path, field *f,
                        size_t nf)
{
    if (n->type != YAML_MAPPING_NODE) {
        type_error(L, n, path, "a mapping");
        return 0;
    }
    for (yaml_node_pair_t *pr = n->data.mapping.pairs.start;
         pr < n->data.mapping.pairs.top; pr++) {
        yaml_node_t *k = node_at(L, pr->key);
        yaml_node_t *v = node_at(L, pr->value);
        if (!k || !v)
            continue;
        if (k->type != YAML_SCALAR_NODE ||
            strlen(text_of(k)) != k->data.scalar.length) {
            add_error(L, line_of(k), path, "keys must be plain strings");
            continue;
        }
        const char *name = text_of(k);
        char kp[KEY_PATH_MAX];
        key_path(kp, path, name);
        size_t i = 0;
        while (i < nf && strcmp(f[i].name, name) != 0)
            i++;
        if (i == nf) {
            const char *names[16];
            size_t nn = nf < 16 ? nf : 16;
            for (size_t j = 0; j < nn; j++)
                names[j] = f[j].name;
            const char *near = closest(name, names, nn);
            if (near) {
                add_error(L, line_of(k), kp,
                          "unknown key '%s'; did you mean '%s'?", name, near);
            }
            else {
                char list[NAME_LIST_MAX];
                join_names(list, sizeof list, names, nn);
                add_error(L, line_of(k), kp,
                          "unknown key '%s' (known keys: %s)", name, list);
            }
            continue;
        }
        if (f[i].key) {
            add_error(L, line_of(k), kp,
                      "duplicate key '%s' (first given at line %d)", name,
                      line_of(f[i].key));
            continue;
        }
        f[i].key = k;
        f[i].val = is_null(v) ? NULL : v;
    }
    return 1;
}

/* Report a required key that is absent or has no value. 1 if present. */
static int require(loader *L, const yaml_node_t *map, const char *path,
                   const field *f)
{
    if (f->val)
        return 1;
    char kp[KEY_PATH_MAX];
    key_path(kp, path, f->name);
    if (f->key)
        add_error(L, line_of(f->key), kp, "required key '%s' has no value",
                  f->name);
    else
        add_error(L, line_of(map), kp, "required key '%s' is missing", f->name);
    return 0;
}

/* ---- Typed values ---- */

static int get_string(loader *L, const yaml_node_t *n, const char *path,
                      char **out)
{
    const char *s = scalar(L, n, path, "a string");
    if (!s)
        return 0;
    if (!s[0]) {
        add_error(L, line_of(n), path, "must not be empty");
        return 0;
    }
    char *d = aw_strdup(s);
    if (!d) {
        L->nomem = 1;
        return 0;
    }
    free(*out);
    *out = d;
    return 1;
}

static int is_nan_text(const char *s)
{
    static const char *const nans[] = {".nan", ".NaN", ".NAN",
                                       "nan",  "NaN",  "NAN"};
    for (size_t i = 0; i < COUNT_OF(nans); i++)
        if (strcmp(s, nans[i]) == 0)
            return 1;
    return 0;
}

/* A finite number (or NaN when allow_nan, written nan or .nan). */
static int get_number(loader *L, const yaml_node_t *n, const char *path,
                      int allow_nan, double *out)
{
    const char *s = scalar(L, n, path, "a number");
    if (!s)
        return 0;
    if (allow_nan && is_nan_text(s)) {
        *out = (double)NAN;
        return 1;
    }
    char *end = NULL;
    double v = 0.0;
    if (s[0] && !isspace((unsigned char)s[0])) {
        errno = 0;
        v = strtod(s, &end);
    }
    if (!end || end == s || *end != '\0' || !isfinite(v)) {
        type_error(L, n, path, "a number");
        return 0;
    }
    *out = v;
    return 1;
}

/* An integer in [lo, hi]. */
static int get_int(loader *L, const yaml_node_t *n, const char *path,
                   long long lo, long long hi, int *out)
{
    const char *s = scalar(L, n, path, "an integer");
    if (!s)
        return 0;
    char *end = NULL;
    long long v = 0;
    if (s[0] && !isspace((unsigned char)s[0])) {
        errno = 0;
        v = strtoll(s, &end, 10);
    }
    if (!end || end == s || *end != '\0') {
        type_error(L, n, path, "an integer");
        return 0;
    }
    if (errno == ERANGE || v < lo || v > hi) {
        add_error(L, line_of(n), path, "must be between %lld and %lld, got %s",
                  lo, hi, s);
        return 0;
    }
    *out = (int)v;
    return 1;
}

static int get_bool(loader *L, const yaml_node_t *n, const char *path, int *out)
{
    static const char *const yes[] = {"true", "True", "TRUE",
                                      "yes",  "Yes",  "YES"};
    static const char *const no[] = {"false", "False", "FALSE",
                                     "no",    "No",    "NO"};
    const char *s = scalar(L, n, path, "true or false");
    if (!s)
        return 0;
    for (size_t i = 0; i < COUNT_OF(yes); i++) {
        if (strcmp(s, yes[i]) == 0) {
            *out = 1;
            return 1;
        }
        if (strcmp(s, no[i]) == 0) {
            *out = 0;
            return 1;
        }
    }
    type_error(L, n, path, "true or false");
    return 0;
}

static int equal_nocase(const char *a, const char *b)
{
    for (; *a && *b; a++, b++)
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
            return 0;
    return *a == *b;
}

/* One of names[0..n); what names the kind of value in messages. */
static int get_enum(loader *L, const yaml_node_t *n, const char *path,
                    const char *what, const char *const *names, size_t count,
                    int nocase, int *out)
{
    char expected[64];
    snprintf(expected, sizeof expected, "a %s name", what);
    const char *s = scalar(L, n, path, expected);
    if (!s)
        return 0;
    for (size_t i = 0; i < count; i++) {
        if (nocase ? equal_nocase(s, names[i]) : strcmp(s, names[i]) == 0) {
            *out = (int)i;
            return 1;
        }
    }
    char list[NAME_LIST_MAX];
    join_names(list, sizeof list, names, count);
    const char *near = closest(s, names, count);
    if (near)
        add_error(L, line_of(n), path,
                  "unknown %s '%.*s'; did you mean '%s'? (valid: %s)", what,
                  SHOWN_VALUE_MAX, s, near, list);
    else
        add_error(L, line_of(n), path, "unknown %s '%.*s' (valid: %s)", what,
                  SHOWN_VALUE_MAX, s, list);
    return 0;
}

static int get_fraction(loader *L, const yaml_node_t *n, const char *path,
                        double *out)
{
    double v;
    if (!get_number(L, n, path, 0, &v))
        return 0;
    if (v < 0.0 || v > 1.0) {
        add_error(L, line_of(n), path, "must be between 0 and 1, got %s",
                  text_of(n));
        return 0;
    }
    *out = v;
    return 1;
}

static int get_float(loader *L, const yaml_node_t *n, const char *path,
                     float *out)
{
    double v;
    if (!get_number(L, n, path, 0, &v))
        return 0;
    if (fabs(v) > (double)FLT_MAX) {
        add_error(L, line_of(n), path, "%s is out of range", text_of(n));
        return 0;
    }
    *out = (float)v;
    return 1;
}

/* ---- Paths ---- */

/* What a referenced path must be. WANT_UNCHECKED: nothing (a band file of a
 * scene whose folder is missing, already reported). */
enum { WANT_ANY, WANT_FILE, WANT_DIR, WANT_UNCHECKED };

/* base/name unless name is absolute; NULL on no memory. */
static char *resolve(loader *L, const char *base, const char *name)
{
    char *r = aw_path_join(base, name);
    if (!r)
        L->nomem = 1;
    return r;
}

/* Check that a referenced path exists. GDAL virtual paths (/vsizip/...,
 * /vsicurl/...) are left to GDAL. */
static int check_path(loader *L, const yaml_node_t *n, const char *path,
                      const char *resolved, int want)
{
    if (strncmp(resolved, "/vsi", 4) == 0) {
        /* GDAL virtual paths are left to GDAL, but those that reach the
         * network need allow_network: true (checked after parsing). */
        static const char *const net[] = {"curl", "s3",    "gs",   "az",
                                          "oss",  "swift", "hdfs", "http"};
        for (size_t i = 0; i < COUNT_OF(net); i++) {
            if (strncmp(resolved + 4, net[i], strlen(net[i])) == 0 &&
                L->n_net < COUNT_OF(L->net_line)) {
                L->net_line[L->n_net] = line_of(n);
                snprintf(L->net_key[L->n_net], sizeof L->net_key[0], "%s",
                         path);
                L->n_net++;
                break;
            }
        }
        return 1;
    }
    if (want == WANT_UNCHECKED)
        return 1;
    struct stat sb;
    if (stat(resolved, &sb) != 0) {
        int e = errno;
        if (e == ENOENT || e == ENOTDIR)
            add_error(L, line_of(n), path, "%s not found: %s",
                      want == WANT_DIR ? "folder" : "file", resolved);
        else
            add_error(L, line_of(n), path, "cannot access %s: %s", resolved,
                      strerror(e));
        return 0;
    }
    if (want == WANT_DIR && !S_ISDIR(sb.st_mode)) {
        add_error(L, line_of(n), path, "not a folder: %s", resolved);
        return 0;
    }
    if (want == WANT_FILE && S_ISDIR(sb.st_mode)) {
        add_error(L, line_of(n), path, "is a folder, not a file: %s", resolved);
        return 0;
    }
    if (access(resolved, R_OK) != 0) {
        int e = errno;
        add_error(L, line_of(n), path, "cannot read %s: %s", resolved,
                  strerror(e));
        return 0;
    }
    return 1;
}

/* A path value, resolved against base and checked to exist: 0 when the
 * value itself is bad, 1 when the path exists, 2 when it does not (reported
 * too). */
static int get_path(loader *L, const yaml_node_t *n, const char *path,
                    const char *base, int want, char **out)
{
    char *raw = NULL;
    if (!get_string(L, n, path, &raw))
        return 0;
    char *r = resolve(L, base, raw);
    free(raw);
    if (!r)
        return 0;
    free(*out);
    *out = r;
    return check_path(L, n, path, r, want) ? 1 : 2;
}

/* ---- Dates ---- */

static int days_in_month(int y, int m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30,
                                 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return days[m - 1];
}

static int get_date(loader *L, const yaml_node_t *n, const char *path,
                    char out[11])
{
    const char *s = scalar(L, n, path, "a date YYYY-MM-DD");
    if (!s)
        return 0;
    int shape = strlen(s) == 10 && s[4] == '-' && s[7] == '-';
    for (int i = 0; shape && i < 10; i++)
        if (i != 4 && i != 7 && !isdigit((unsigned char)s[i]))
            shape = 0;
    if (!shape) {
        type_error(L, n, path, "a date YYYY-MM-DD");
        return 0;
    }
    int y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 +
            (s[3] - '0');
    int m = (s[5] - '0') * 10 + (s[6] - '0');
    int d = (s[8] - '0') * 10 + (s[9] - '0');
    if (y < 1 || m < 1 || m > 12 || d < 1 || d > days_in_month(y, m)) {
        add_error(L, line_of(n), path, "'%s' is not a real calendar date", s);
        return 0;
    }
    memcpy(out, s, 10);
    out[10] = '\0';
    return 1;
}

/* ---- Sections ---- */

static int valid_region_name(const char *s)
{
    if (strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
        return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_' && *s != '.' && *s != '-')
            return 0;
    return 1;
}

static void parse_bbox(loader *L, const yaml_node_t *n, const char *path)
{
    aw_config *cfg = L->cfg;
    if (n->type != YAML_SEQUENCE_NODE) {
        type_error(L, n, path, "a list [xmin, ymin, xmax, ymax]");
        return;
    }
    size_t count =
        (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    if (count != 4) {
        add_error(L, line_of(n), path,
                  "expected 4 numbers [xmin, ymin, xmax, ymax], got %zu",
                  count);
        return;
    }
    int ok = 1;
    for (size_t i = 0; i < 4; i++) {
        char ip[KEY_PATH_MAX];
        item_path(ip, path, i);
        yaml_node_t *it = node_at(L, n->data.sequence.items.start[i]);
        if (!it || !get_number(L, it, ip, 0, &cfg->bbox[i]))
            ok = 0;
    }
    if (!ok)
        return;
    if (cfg->bbox[0] >= cfg->bbox[2])
        add_error(L, line_of(n), path, "xmin (%g) must be less than xmax (%g)",
                  cfg->bbox[0], cfg->bbox[2]);
    else if (cfg->bbox[1] >= cfg->bbox[3])
        add_error(L, line_of(n), path, "ymin (%g) must be less than ymax (%g)",
                  cfg->bbox[1], cfg->bbox[3]);
    else
        cfg->has_bbox = 1;
}

/* ---- Checks that ask GDAL/OGR (CRS strings, vector layers) ---- */

static void ensure_gdal(void)
{
    if (GDALGetDriverCount() == 0)
        GDALAllRegister();
}

/* The CRS text must be something PROJ/GDAL understands. */
static void check_crs(loader *L, const yaml_node_t *n, const char *path,
                      const char *text)
{
    ensure_gdal();
    OGRSpatialReferenceH srs = OSRNewSpatialReference(NULL);
    CPLPushErrorHandler(CPLQuietErrorHandler);
    CPLErrorReset();
    OGRErr e = OSRSetFromUserInput(srs, text);
    char why[512];
    snprintf(why, sizeof why, "%s", CPLGetLastErrorMsg());
    CPLPopErrorHandler();
    OSRDestroySpatialReference(srs);
    if (e != OGRERR_NONE)
        add_error(L, line_of(n), path, "not a CRS GDAL/PROJ knows: '%s'%s%s",
                  text, why[0] ? ": " : "", why);
}

/* Open a vector layer; reports at n/path and returns NULL on failure. The
 * dataset is returned in *ds for the caller to close. */
static OGRLayerH open_layer(loader *L, const yaml_node_t *n, const char *path,
                            const char *file, const char *layer,
                            GDALDatasetH *ds)
{
    ensure_gdal();
    CPLPushErrorHandler(CPLQuietErrorHandler);
    *ds = GDALOpenEx(file, GDAL_OF_VECTOR | GDAL_OF_READONLY, NULL, NULL, NULL);
    CPLPopErrorHandler();
    if (!*ds) {
        add_error(L, line_of(n), path,
                  "%s is not a vector layer GDAL/OGR can "
                  "read",
                  file);
        return NULL;
    }
    OGRLayerH lyr = layer ? GDALDatasetGetLayerByName(*ds, layer)
                          : GDALDatasetGetLayer(*ds, 0);
    if (!lyr)
        add_error(L, line_of(n), path, "%s has no layer %s%s%s", file,
                  layer ? "'" : "", layer ? layer : "(it is empty)",
                  layer ? "'" : "");
    return lyr;
}

static void check_field(loader *L, const yaml_node_t *n, const char *path,
                        OGRLayerH lyr, const char *file, const char *name)
{
    OGRFeatureDefnH defn = OGR_L_GetLayerDefn(lyr);
    if (OGR_FD_GetFieldIndex(defn, name) >= 0)
        return;
    char list[512] = "";
    size_t used = 0;
    for (int i = 0; i < OGR_FD_GetFieldCount(defn) && used < sizeof list; i++) {
        int k = snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "",
                         OGR_Fld_GetNameRef(OGR_FD_GetFieldDefn(defn, i)));
        if (k > 0)
            used += (size_t)k;
    }
    add_error(L, line_of(n), path, "field '%s' is not in %s (fields: %s)", name,
              file, list[0] ? list : "none");
}

static void parse_region(loader *L, yaml_node_t *n, const char *path)
{
    enum { NAME, CRS, RES, AOI, AOI_LAYER, BBOX, BBOX_CRS, GRID, N };
    field f[N] = {{.name = "name"},       {.name = "crs"},
                  {.name = "resolution"}, {.name = "aoi"},
                  {.name = "aoi_layer"},  {.name = "bbox"},
                  {.name = "bbox_crs"},   {.name = "grid"}};
    if (!read_mapping(L, n, path, f, N))
        return;
    aw_config *cfg = L->cfg;
    char kp[KEY_PATH_MAX];

    if (require(L, n, path, &f[NAME])) {
        key_path(kp, path, "name");
        if (get_string(L, f[NAME].val, kp, &cfg->region_name) &&
            !valid_region_name(cfg->region_name))
            add_error(L, line_of(f[NAME].val), kp,
                      "'%s' is not a valid folder name: use only letters, "
                      "digits, '_', '.' and '-'",
                      cfg->region_name);
    }
    if (f[CRS].val) {
        key_path(kp, path, "crs");
        if (get_string(L, f[CRS].val, kp, &cfg->crs))
            check_crs(L, f[CRS].val, kp, cfg->crs);
    }
    if (f[GRID].val) {
        static const char *const grid_names[] = {"fixed", "per_date"};
        key_path(kp, path, "grid");
        int v = 0;
        if (get_enum(L, f[GRID].val, kp, "grid", grid_names,
                     COUNT_OF(grid_names), 0, &v))
            cfg->grid_per_date = v;
        if (v == 1 && (f[AOI].val || f[BBOX].val))
            add_error(L, line_of(f[GRID].val), kp,
                      "'per_date' takes each date's extent from its scenes; "
                      "it cannot be combined with 'aoi' or 'bbox'");
    }
    if (f[RES].val) {
        key_path(kp, path, "resolution");
        double v;
        if (get_number(L, f[RES].val, kp, 0, &v)) {
            if (v > 0.0) {
                cfg->resolution = v;
                cfg->has_resolution = 1;
            }
            else {
                add_error(L, line_of(f[RES].val), kp,
                          "must be greater than 0, got %s",
                          text_of(f[RES].val));
            }
        }
    }
    if (f[AOI].val) {
        key_path(kp, path, "aoi");
        get_path(L, f[AOI].val, kp, cfg->dir, WANT_ANY, &cfg->aoi_path);
    }
    if (f[AOI_LAYER].val) {
        key_path(kp, path, "aoi_layer");
        if (get_string(L, f[AOI_LAYER].val, kp, &cfg->aoi_layer) && !f[AOI].val)
            add_error(L, line_of(f[AOI_LAYER].key), kp,
                      "'aoi_layer' is only allowed together with 'aoi'");
    }
    if (f[AOI].val && cfg->aoi_path && access(cfg->aoi_path, R_OK) == 0) {
        key_path(kp, path, "aoi");
        GDALDatasetH ds = NULL;
        OGRLayerH lyr =
            open_layer(L, f[AOI].val, kp, cfg->aoi_path, cfg->aoi_layer, &ds);
        if (lyr && OGR_L_GetFeatureCount(lyr, TRUE) == 0)
            add_error(L, line_of(f[AOI].val), kp, "%s has no feature",
                      cfg->aoi_path);
        if (ds)
            GDALClose(ds);
    }
    if (f[BBOX].val) {
        key_path(kp, path, "bbox");
        if (f[AOI].val)
            add_error(L, line_of(f[BBOX].key), kp,
                      "'aoi' and 'bbox' cannot both be given (aoi at line "
                      "%d); choose one",
                      line_of(f[AOI].key));
        parse_bbox(L, f[BBOX].val, kp);
    }
    if (f[BBOX_CRS].val) {
        key_path(kp, path, "bbox_crs");
        if (get_string(L, f[BBOX_CRS].val, kp, &cfg->bbox_crs)) {
            if (!f[BBOX].val)
                add_error(L, line_of(f[BBOX_CRS].key), kp,
                          "'bbox_crs' is only allowed together with 'bbox'");
            else
                check_crs(L, f[BBOX_CRS].val, kp, cfg->bbox_crs);
        }
    }
}

/* Scene-wide defaults for its bands. */
typedef struct band_defaults {
    double scale, offset;
    int has_nodata;
    double nodata;
} band_defaults;

static void parse_scale(loader *L, const yaml_node_t *n, const char *path,
                        double *out)
{
    double v;
    if (!get_number(L, n, path, 0, &v))
        return;
    if (v == 0.0)
        add_error(L, line_of(n), path, "must not be 0");
    else
        *out = v;
}

/* One entry of scenes[i].bands: a file name or {file, band, scale, offset,
 * nodata}. want: WANT_FILE, or WANT_UNCHECKED when the scene folder is
 * missing. */
static void parse_band(loader *L, const yaml_node_t *key, yaml_node_t *n,
                       const char *path, const char *base, int want,
                       const band_defaults *def, aw_band_src *dst)
{
    dst->band = 1;
    dst->scale = def->scale;
    dst->offset = def->offset;
    dst->has_nodata = def->has_nodata;
    dst->nodata = def->nodata;
    dst->line = line_of(key);
    if (n->type == YAML_SCALAR_NODE) {
        if (get_path(L, n, path, base, want, &dst->path))
            dst->present = 1;
        return;
    }
    if (n->type != YAML_MAPPING_NODE) {
        type_error(L, n, path, "a file name or a mapping");
        return;
    }
    enum { FILE_, BAND, SCALE, OFFSET, NODATA, N };
    field f[N] = {{.name = "file"},
                  {.name = "band"},
                  {.name = "scale"},
                  {.name = "offset"},
                  {.name = "nodata"}};
    read_mapping(L, n, path, f, N);
    char kp[KEY_PATH_MAX];
    if (require(L, n, path, &f[FILE_])) {
        key_path(kp, path, "file");
        if (get_path(L, f[FILE_].val, kp, base, want, &dst->path))
            dst->present = 1;
    }
    if (f[BAND].val) {
        key_path(kp, path, "band");
        get_int(L, f[BAND].val, kp, 1, 65535, &dst->band);
    }
    if (f[SCALE].val) {
        key_path(kp, path, "scale");
        parse_scale(L, f[SCALE].val, kp, &dst->scale);
    }
    if (f[OFFSET].val) {
        key_path(kp, path, "offset");
        get_number(L, f[OFFSET].val, kp, 0, &dst->offset);
    }
    if (f[NODATA].val) {
        key_path(kp, path, "nodata");
        if (get_number(L, f[NODATA].val, kp, 1, &dst->nodata))
            dst->has_nodata = 1;
    }
}

/* scenes[i].bands. *first_file is the file of the first entry in file
 * order, for the default scene id. */
static void parse_bands(loader *L, yaml_node_t *n, const char *path,
                        const char *base, int want, const band_defaults *def,
                        aw_scene_cfg *sc, const char **first_file)
{
    enum { N = AW_BAND_COUNT + 1 };
    field f[N];
    for (int b = 0; b < AW_BAND_COUNT; b++)
        f[b] = (field){.name = aw_band_name((aw_band)b)};
    f[AW_BAND_COUNT] = (field){.name = "qa"};
    if (!read_mapping(L, n, path, f, N))
        return;
    size_t first_index = SIZE_MAX;
    for (int b = 0; b < N; b++) {
        if (!f[b].val)
            continue;
        char kp[KEY_PATH_MAX];
        key_path(kp, path, f[b].name);
        aw_band_src *dst = b < AW_BAND_COUNT ? &sc->bands[b] : &sc->qa;
        /* Scene scale/offset/nodata apply to reflectance bands only: a QA
         * band holds bit flags. */
        band_defaults qa_def = {1.0, 0.0, 0, 0.0};
        parse_band(L, f[b].key, f[b].val, kp, base, want,
                   b < AW_BAND_COUNT ? def : &qa_def, dst);
        if (dst->present && f[b].key->start_mark.index < first_index) {
            first_index = f[b].key->start_mark.index;
            *first_file = dst->path;
        }
    }
}

/* A YAML list of numbers into a new array. */
static void parse_number_list(loader *L, const yaml_node_t *s, const char *kp,
                              double **out, size_t *n_out)
{
    char ip[KEY_PATH_MAX];
    if (s->type != YAML_SEQUENCE_NODE) {
        type_error(L, s, kp, "a list of numbers");
        return;
    }
    size_t count =
        (size_t)(s->data.sequence.items.top - s->data.sequence.items.start);
    *out = aw_calloc2(count ? count : 1, sizeof(double));
    if (!*out) {
        L->nomem = 1;
        return;
    }
    for (size_t i = 0; i < count; i++) {
        item_path(ip, kp, i);
        yaml_node_t *in = node_at(L, s->data.sequence.items.start[i]);
        double v;
        if (in && get_number(L, in, ip, 0, &v))
            (*out)[(*n_out)++] = v;
    }
}

static void parse_qa_mask(loader *L, yaml_node_t *n, const char *path,
                          aw_scene_cfg *sc)
{
    enum { BITS, VALUES, CLOUD, SHADOW, N };
    field f[N] = {{.name = "bits"},
                  {.name = "values"},
                  {.name = "cloud"},
                  {.name = "shadow"}};
    if (!read_mapping(L, n, path, f, N))
        return;
    char kp[KEY_PATH_MAX], ip[KEY_PATH_MAX];
    if (f[BITS].val) {
        key_path(kp, path, "bits");
        const yaml_node_t *s = f[BITS].val;
        if (s->type != YAML_SEQUENCE_NODE) {
            type_error(L, s, kp, "a list of bit numbers");
        }
        else {
            for (yaml_node_item_t *it = s->data.sequence.items.start;
                 it < s->data.sequence.items.top; it++) {
                item_path(ip, kp, (size_t)(it - s->data.sequence.items.start));
                yaml_node_t *in = node_at(L, *it);
                int bit;
                if (in && get_int(L, in, ip, 0, 63, &bit))
                    sc->qa_mask_bits |= (uint64_t)1 << bit;
            }
        }
    }
    if (f[VALUES].val) {
        key_path(kp, path, "values");
        parse_number_list(L, f[VALUES].val, kp, &sc->qa_mask_values,
                          &sc->n_qa_mask_values);
    }
    if (f[CLOUD].val) {
        key_path(kp, path, "cloud");
        parse_number_list(L, f[CLOUD].val, kp, &sc->qa_cloud_values,
                          &sc->n_qa_cloud_values);
    }
    if (f[SHADOW].val) {
        key_path(kp, path, "shadow");
        parse_number_list(L, f[SHADOW].val, kp, &sc->qa_shadow_values,
                          &sc->n_qa_shadow_values);
    }
}

/* Fill a scene from its product (sensor profile), reporting a failure at
 * `line` under key path `kp`. */
static int detect_product(loader *L, const char *product, aw_sensor sensor,
                          aw_scene_cfg *sc, int line, const char *kp)
{
    aw_ctx_clear_error(L->ctx);
    aw_status st = aw_profile_detect(L->ctx, product, sensor, sc);
    if (st == AW_ERR_NOMEM) {
        L->nomem = 1;
        return 0;
    }
    if (st != AW_OK) {
        add_error(L, line, kp, "%s", aw_ctx_errmsg(L->ctx));
        return 0;
    }
    return 1;
}

static void parse_scene(loader *L, yaml_node_t *n, const char *path,
                        aw_scene_cfg *sc, scene_meta *sm)
{
    aw_config *cfg = L->cfg;
    sc->line = line_of(n);
    sm->id_line = line_of(n);
    enum { ID, DATE, PATH, SENSOR, SCALE, OFFSET, NODATA, BANDS, QA_MASK, N };
    field f[N] = {{.name = "id"},     {.name = "date"},  {.name = "path"},
                  {.name = "sensor"}, {.name = "scale"}, {.name = "offset"},
                  {.name = "nodata"}, {.name = "bands"}, {.name = "qa_mask"}};
    if (!read_mapping(L, n, path, f, N))
        return;
    char kp[KEY_PATH_MAX];

    if (f[ID].val) {
        key_path(kp, path, "id");
        sm->id_given = get_string(L, f[ID].val, kp, &sc->id);
        sm->id_line = line_of(f[ID].val);
    }
    /* A scene with a band map is generic; without one, its product is
     * recognised by a sensor profile (sensor: auto by default). */
    int sensor = f[BANDS].val ? AW_SENSOR_GENERIC : AW_SENSOR_AUTO;
    int sensor_ok = 1;
    if (f[SENSOR].val) {
        key_path(kp, path, "sensor");
        sensor_ok = get_enum(L, f[SENSOR].val, kp, "sensor", sensor_names,
                             COUNT_OF(sensor_names), 0, &sensor);
        if (sensor_ok && f[BANDS].val && sensor != AW_SENSOR_GENERIC) {
            add_error(L, line_of(f[SENSOR].val), kp,
                      "a band map ('bands') goes with sensor 'generic'; the "
                      "%s profile finds its bands itself",
                      sensor_names[sensor]);
            sensor_ok = 0;
        }
    }
    int profile = sensor != AW_SENSOR_GENERIC;
    if (f[DATE].val) {
        key_path(kp, path, "date");
        sm->date_ok = get_date(L, f[DATE].val, kp, sc->date);
        sm->date_line = line_of(f[DATE].val);
    }
    else if (!profile) {
        require(L, n, path, &f[DATE]);
    }
    int dir_ok = 0;
    char *product = NULL;
    if (f[PATH].val) {
        key_path(kp, path, "path");
        if (profile)
            dir_ok =
                get_path(L, f[PATH].val, kp, cfg->dir, WANT_ANY, &product) == 1;
        else
            dir_ok =
                get_path(L, f[PATH].val, kp, cfg->dir, WANT_DIR, &sc->dir) == 1;
    }
    else if (profile) {
        add_error(L, line_of(n), path,
                  "needs 'path' (the product folder or file) or a band map "
                  "('bands')");
    }
    band_defaults def = {1.0, 0.0, 0, 0.0};
    int has_scale = 0, has_offset = 0;
    if (f[SCALE].val) {
        key_path(kp, path, "scale");
        has_scale = 1;
        parse_scale(L, f[SCALE].val, kp, &def.scale);
    }
    if (f[OFFSET].val) {
        key_path(kp, path, "offset");
        has_offset = get_number(L, f[OFFSET].val, kp, 0, &def.offset);
    }
    if (f[NODATA].val) {
        key_path(kp, path, "nodata");
        if (get_number(L, f[NODATA].val, kp, 1, &def.nodata))
            def.has_nodata = 1;
    }
    const char *first_file = NULL;
    if (!profile && require(L, n, path, &f[BANDS])) {
        key_path(kp, path, "bands");
        sm->bands_line = line_of(f[BANDS].key);
        sm->bands_ok = f[BANDS].val->type == YAML_MAPPING_NODE;
        /* Band files of a missing scene folder would only repeat that
         * error. */
        int want = f[PATH].val && !dir_ok ? WANT_UNCHECKED : WANT_FILE;
        parse_bands(L, f[BANDS].val, kp, sc->dir ? sc->dir : cfg->dir, want,
                    &def, sc, &first_file);
        sc->sensor = AW_SENSOR_GENERIC;
        if (sc->qa.present)
            sc->qa_kind = AW_QA_GENERIC;
    }
    if (profile && dir_ok && sensor_ok) {
        key_path(kp, path, "path");
        int line = line_of(f[PATH].val);
        if (detect_product(L, product, (aw_sensor)sensor, sc, line, kp)) {
            sm->bands_ok = 1;
            sm->bands_line = line;
            /* The config may correct a product's scale/offset/nodata (e.g.
             * an archive that pre-applied the Sentinel-2 offset). */
            for (int b = 0; b < AW_BAND_COUNT; b++) {
                aw_band_src *bs = &sc->bands[b];
                if (!bs->present)
                    continue;
                if (has_scale)
                    bs->scale = def.scale;
                if (has_offset)
                    bs->offset = def.offset;
                if (def.has_nodata) {
                    bs->has_nodata = 1;
                    bs->nodata = def.nodata;
                }
            }
            if (has_scale || has_offset || def.has_nodata) {
                char *note = aw_asprintf(
                    "%s; scale/offset/nodata overridden by the config",
                    sc->offset_note ? sc->offset_note : "");
                free(sc->offset_note);
                sc->offset_note = note;
            }
            if (!f[DATE].val && sc->date[0])
                sm->date_ok = 1;
            sm->date_line = line;
            if (!f[DATE].val && !sc->date[0])
                add_error(L, line, kp,
                          "no acquisition date in the product's metadata or "
                          "name; give the scene a 'date'");
        }
    }
    free(product);
    if (f[QA_MASK].val) {
        key_path(kp, path, "qa_mask");
        parse_qa_mask(L, f[QA_MASK].val, kp, sc);
        /* qa.line is set when a qa entry was given, even a broken one. */
        if (!profile && !sc->qa.line && (sm->bands_ok || !f[BANDS].val))
            add_error(L, line_of(f[QA_MASK].key), kp,
                      "'qa_mask' needs a 'qa' band in %s.bands", path);
        if (profile)
            add_error(L, line_of(f[QA_MASK].key), kp,
                      "'qa_mask' is for generic scenes; the quality band of "
                      "a sensor profile is set under 'quality'");
    }
    if (!sc->id) {
        const char *from = sc->dir ? sc->dir : first_file;
        sc->id = from ? aw_path_basename(from) : aw_asprintf("%s", path);
        if (!sc->id)
            L->nomem = 1;
    }
}

static void parse_scenes(loader *L, yaml_node_t *n, const char *path)
{
    aw_config *cfg = L->cfg;
    if (n->type != YAML_SEQUENCE_NODE) {
        type_error(L, n, path, "a list of scenes");
        return;
    }
    size_t count =
        (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    if (count == 0) {
        add_error(L, line_of(n), path, "needs at least one scene");
        return;
    }
    cfg->scenes = aw_calloc2(count, sizeof *cfg->scenes);
    L->smeta = aw_calloc2(count, sizeof *L->smeta);
    if (!cfg->scenes || !L->smeta) {
        L->nomem = 1;
        return;
    }
    cfg->n_scenes = count;
    for (size_t i = 0; i < count; i++) {
        cfg->scenes[i].cloud_cover = NAN;
        cfg->scenes[i].sun_elevation = NAN;
        cfg->scenes[i].sun_azimuth = NAN;
    }
    for (size_t i = 0; i < count; i++) {
        char ip[KEY_PATH_MAX];
        item_path(ip, path, i);
        yaml_node_t *it = node_at(L, n->data.sequence.items.start[i]);
        if (it)
            parse_scene(L, it, ip, &cfg->scenes[i], &L->smeta[i]);
    }
}

void aw_scene_free(aw_scene_cfg *sc)
{
    free(sc->id);
    free(sc->dir);
    for (int b = 0; b < AW_BAND_COUNT; b++)
        free(sc->bands[b].path);
    free(sc->qa.path);
    free(sc->qa_mask_values);
    free(sc->qa_cloud_values);
    free(sc->qa_shadow_values);
    free(sc->platform);
    free(sc->product_id);
    free(sc->tile_id);
    free(sc->processing_baseline);
    free(sc->offset_note);
}

static int name_cmp(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

/* Append one scene (zeroed, metadata unknown) to the config; NULL on no
 * memory. */
static aw_scene_cfg *append_scene(loader *L)
{
    aw_config *cfg = L->cfg;
    size_t n = cfg->n_scenes + 1;
    aw_scene_cfg *sc = realloc(cfg->scenes, n * sizeof *sc);
    if (!sc) {
        L->nomem = 1;
        return NULL;
    }
    cfg->scenes = sc;
    scene_meta *sm = realloc(L->smeta, n * sizeof *sm);
    if (!sm) {
        L->nomem = 1;
        return NULL;
    }
    L->smeta = sm;
    memset(&cfg->scenes[n - 1], 0, sizeof cfg->scenes[n - 1]);
    memset(&L->smeta[n - 1], 0, sizeof L->smeta[n - 1]);
    cfg->scenes[n - 1].cloud_cover = NAN;
    cfg->scenes[n - 1].sun_elevation = NAN;
    cfg->scenes[n - 1].sun_azimuth = NAN;
    cfg->n_scenes = n;
    return &cfg->scenes[n - 1];
}

/* What a delivered product looks like: a folder, an archive, or a
 * metadata or raster file. A README or checksum file is not one. */
static int looks_like_product(const char *path)
{
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
        return 1;
    static const char *const ends[] = {".zip",  "_MTL.txt", "_MTL.xml",
                                       ".SAFE", ".xml",     ".tif",
                                       ".tiff", ".jp2",     ".TIF"};
    size_t n = strlen(path);
    for (size_t i = 0; i < COUNT_OF(ends); i++) {
        size_t k = strlen(ends[i]);
        if (n >= k && strcasecmp(path + n - k, ends[i]) == 0)
            return 1;
    }
    return 0;
}

static void record_reject(loader *L, const char *path, const char *why)
{
    aw_config *cfg = L->cfg;
    size_t n = cfg->n_inbox_rejects + 1;
    char **p = realloc(cfg->inbox_rejects, n * sizeof *p);
    if (p)
        cfg->inbox_rejects = p;
    char **r = p ? realloc(cfg->inbox_reject_reasons, n * sizeof *r) : NULL;
    if (r)
        cfg->inbox_reject_reasons = r;
    char *a = aw_strdup(path), *b = aw_strdup(why);
    if (!p || !r || !a || !b) {
        free(a);
        free(b);
        L->nomem = 1;
        return;
    }
    cfg->inbox_rejects[n - 1] = a;
    cfg->inbox_reject_reasons[n - 1] = b;
    cfg->n_inbox_rejects = n;
}

/* Every entry of an inbox folder that a sensor profile recognises becomes a
 * scene; entries that look like products but cannot be read are recorded
 * (the run reports them as failed); anything else is logged and left
 * alone. */
static void consider_product(loader *L, const char *p, int line)
{
    aw_scene_cfg tmp;
    memset(&tmp, 0, sizeof tmp);
    tmp.cloud_cover = NAN;
    tmp.sun_elevation = NAN;
    tmp.sun_azimuth = NAN;
    aw_ctx_clear_error(L->ctx);
    aw_status st = aw_profile_detect(L->ctx, p, AW_SENSOR_AUTO, &tmp);
    char *why = NULL;
    if (st == AW_OK && !tmp.date[0]) {
        why = aw_asprintf("%s: no acquisition date in its metadata or "
                          "name",
                          p);
        st = AW_ERR_INPUT;
    }
    else if (st != AW_OK && st != AW_ERR_NOMEM) {
        why = aw_strdup(aw_ctx_errmsg(L->ctx));
    }
    if (st == AW_ERR_NOMEM)
        L->nomem = 1;
    /* The same product twice (a .SAFE next to its own .zip): the
     * first one found is kept. */
    for (size_t k = 0; st == AW_OK && k < L->cfg->n_scenes; k++) {
        if (L->cfg->scenes[k].id && tmp.id &&
            strcmp(L->cfg->scenes[k].id, tmp.id) == 0) {
            aw_log(L->ctx, AW_LOG_WARN,
                   "inbox: %s is product %s again; not used twice", p, tmp.id);
            st = AW_ERR_INPUT;
        }
    }
    if (why && looks_like_product(p)) {
        /* Damaged or unreadable products are not dropped quietly:
         * the run records them as failed. */
        aw_log(L->ctx, AW_LOG_WARN, "inbox: cannot read %s", why);
        record_reject(L, p, why);
    }
    else if (why) {
        aw_log(L->ctx, AW_LOG_INFO, "inbox: not a product: %s", why);
    }
    free(why);
    aw_scene_cfg *sc = st == AW_OK ? append_scene(L) : NULL;
    if (sc) {
        *sc = tmp;
        sc->line = line;
        scene_meta *sm = &L->smeta[L->cfg->n_scenes - 1];
        sm->date_ok = sm->bands_ok = sm->from_inbox = 1;
        sm->date_line = sm->bands_line = sm->id_line = line;
    }
    else {
        aw_scene_free(&tmp);
    }
}

static void scan_inbox(loader *L, const char *dir, int line, const char *kp)
{
    struct dirent **list = NULL;
    int n = scandir(dir, &list, NULL, name_cmp);
    if (n < 0) {
        add_error(L, line, kp, "cannot list the inbox folder %s: %s", dir,
                  strerror(errno));
        return;
    }
    for (int i = 0; i < n; i++) {
        const char *nm = list[i]->d_name;
        char *p = nm[0] == '.' ? NULL : resolve(L, dir, nm);
        if (p)
            consider_product(L, p, line);
        free(p);
        free(list[i]);
    }
    free(list);
}

/* An inbox entry with a wildcard is a glob(3) pattern (never a shell)
 * whose matches are the products themselves, in sorted order; hidden
 * names only match a pattern that spells out the dot. A pattern matching
 * nothing is an empty night, not an error. */
/* A folder on the way of a pattern that does not exist is no match; one
 * that cannot be read stops the pattern with an error. */
static int glob_error(const char *path, int err)
{
    (void)path;
    return err != ENOENT && err != ENOTDIR;
}

static void scan_glob(loader *L, const char *pattern, int line, const char *kp)
{
    glob_t g;
    memset(&g, 0, sizeof g);
    int rc = glob(pattern, 0, glob_error, &g);
    if (rc == GLOB_NOMATCH) {
        aw_log(L->ctx, AW_LOG_INFO, "inbox: %s matches nothing", pattern);
    }
    else if (rc == GLOB_NOSPACE) {
        L->nomem = 1;
    }
    else if (rc != 0) {
        add_error(L, line, kp, "cannot read a folder of pattern %s: %s",
                  pattern, strerror(errno));
    }
    else {
        for (size_t i = 0; i < g.gl_pathc; i++)
            consider_product(L, g.gl_pathv[i], line);
    }
    globfree(&g);
}

static void parse_inbox(loader *L, const yaml_node_t *n, const char *path)
{
    aw_config *cfg = L->cfg;
    if (n->type != YAML_SEQUENCE_NODE) {
        type_error(L, n, path, "a list of folders and glob patterns");
        return;
    }
    size_t count =
        (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    cfg->inbox = aw_calloc2(count ? count : 1, sizeof *cfg->inbox);
    if (!cfg->inbox) {
        L->nomem = 1;
        return;
    }
    for (size_t i = 0; i < count; i++) {
        char ip[KEY_PATH_MAX];
        item_path(ip, path, i);
        yaml_node_t *it = node_at(L, n->data.sequence.items.start[i]);
        char *dir = NULL;
        int pattern = it && it->type == YAML_SCALAR_NODE &&
                      strpbrk((const char *)it->data.scalar.value, "*?[");
        if (pattern && get_path(L, it, ip, cfg->dir, WANT_UNCHECKED, &dir) == 1)
            scan_glob(L, dir, line_of(it), ip);
        else if (!pattern && it &&
                 get_path(L, it, ip, cfg->dir, WANT_DIR, &dir) == 1)
            scan_inbox(L, dir, line_of(it), ip);
        if (dir)
            cfg->inbox[cfg->n_inbox++] = dir;
    }
}

static void parse_name_set(loader *L, const yaml_node_t *n, const char *path,
                           const char *what, const char *const *names,
                           size_t n_names, unsigned *out)
{
    if (n->type != YAML_SEQUENCE_NODE) {
        type_error(L, n, path, "a list");
        return;
    }
    unsigned set = 0;
    for (yaml_node_item_t *it = n->data.sequence.items.start;
         it < n->data.sequence.items.top; it++) {
        char ip[KEY_PATH_MAX];
        item_path(ip, path, (size_t)(it - n->data.sequence.items.start));
        int v;
        yaml_node_t *e = node_at(L, *it);
        if (e && get_enum(L, e, ip, what, names, n_names, 0, &v))
            set |= 1u << v;
    }
    *out = set;
}

static void parse_quality(loader *L, yaml_node_t *n, const char *path)
{
    aw_config *cfg = L->cfg;
    enum {
        LMASK,
        CLOUDC,
        SHADOWC,
        SNOWC,
        CIRRUSC,
        SCL,
        DCLOUD,
        DSHADOW,
        MINVALID,
        N
    };
    field f[N] = {{.name = "landsat_mask"},      {.name = "cloud_confidence"},
                  {.name = "shadow_confidence"}, {.name = "snow_confidence"},
                  {.name = "cirrus_confidence"}, {.name = "scl_mask"},
                  {.name = "dilate_cloud_px"},   {.name = "dilate_shadow_px"},
                  {.name = "min_valid_fraction"}};
    if (!read_mapping(L, n, path, f, N))
        return;
    char kp[KEY_PATH_MAX];
    if (f[LMASK].val) {
        key_path(kp, path, "landsat_mask");
        parse_name_set(L, f[LMASK].val, kp, "flag", landsat_flag_names,
                       COUNT_OF(landsat_flag_names),
                       &cfg->qa_policy.landsat_flags);
    }
    int *conf[4] = {&cfg->qa_policy.cloud_conf, &cfg->qa_policy.shadow_conf,
                    &cfg->qa_policy.snow_conf, &cfg->qa_policy.cirrus_conf};
    for (int i = 0; i < 4; i++) {
        if (!f[CLOUDC + i].val)
            continue;
        key_path(kp, path, f[CLOUDC + i].name);
        int v;
        if (get_enum(L, f[CLOUDC + i].val, kp, "confidence", confidence_names,
                     COUNT_OF(confidence_names), 0, &v))
            *conf[i] = v;
    }
    if (f[SCL].val) {
        key_path(kp, path, "scl_mask");
        if (f[SCL].val->type != YAML_SEQUENCE_NODE) {
            type_error(L, f[SCL].val, kp, "a list of SCL classes 0..11");
        }
        else {
            unsigned set = 0;
            yaml_node_t *seq = f[SCL].val;
            for (yaml_node_item_t *it = seq->data.sequence.items.start;
                 it < seq->data.sequence.items.top; it++) {
                char ip[KEY_PATH_MAX];
                item_path(ip, kp,
                          (size_t)(it - seq->data.sequence.items.start));
                int v;
                yaml_node_t *e = node_at(L, *it);
                if (e && get_int(L, e, ip, 0, 11, &v))
                    set |= 1u << v;
            }
            cfg->qa_policy.scl_mask = set;
        }
    }
    if (f[DCLOUD].val) {
        key_path(kp, path, "dilate_cloud_px");
        get_int(L, f[DCLOUD].val, kp, 0, 100, &cfg->dilate_cloud_px);
    }
    if (f[DSHADOW].val) {
        key_path(kp, path, "dilate_shadow_px");
        get_int(L, f[DSHADOW].val, kp, 0, 100, &cfg->dilate_shadow_px);
    }
    if (f[MINVALID].val) {
        key_path(kp, path, "min_valid_fraction");
        get_fraction(L, f[MINVALID].val, kp, &cfg->min_valid_fraction);
    }
}

static void parse_mosaic(loader *L, yaml_node_t *n, const char *path)
{
    enum { ORDER, N };
    field f[N] = {{.name = "order"}};
    if (!read_mapping(L, n, path, f, N))
        return;
    if (f[ORDER].val) {
        char kp[KEY_PATH_MAX];
        key_path(kp, path, "order");
        int v;
        if (get_enum(L, f[ORDER].val, kp, "order", mosaic_names,
                     COUNT_OF(mosaic_names), 0, &v))
            L->cfg->mosaic_order = (aw_mosaic_order)v;
    }
}

static void parse_indices(loader *L, const yaml_node_t *n, const char *path)
{
    aw_config *cfg = L->cfg;
    if (n->type != YAML_SEQUENCE_NODE) {
        type_error(L, n, path, "a list of index names");
        return;
    }
    int seen_line[AW_IDX_COUNT] = {0};
    for (int i = 0; i < AW_IDX_COUNT; i++)
        cfg->indices[i] = 0;
    for (yaml_node_item_t *it = n->data.sequence.items.start;
         it < n->data.sequence.items.top; it++) {
        char ip[KEY_PATH_MAX];
        item_path(ip, path, (size_t)(it - n->data.sequence.items.start));
        yaml_node_t *in = node_at(L, *it);
        int idx;
        if (!in || !get_enum(L, in, ip, "index", L->index_names, AW_IDX_COUNT,
                             0, &idx))
            continue;
        if (seen_line[idx]) {
            add_error(L, line_of(in), ip,
                      "index '%s' is listed twice (first at line %d)",
                      L->index_names[idx], seen_line[idx]);
            continue;
        }
        seen_line[idx] = line_of(in);
        cfg->indices[idx] = 1;
    }
}

static void parse_index_params(loader *L, yaml_node_t *n, const char *path)
{
    aw_index_params *ip = &L->cfg->index_params;
    enum { SAVI_L, EVI_G, EVI_C1, EVI_C2, EVI_L, N };
    field f[N] = {{.name = "savi_l"},
                  {.name = "evi_g"},
                  {.name = "evi_c1"},
                  {.name = "evi_c2"},
                  {.name = "evi_l"}};
    float *dst[N] = {&ip->savi_l, &ip->evi_g, &ip->evi_c1, &ip->evi_c2,
                     &ip->evi_l};
    if (!read_mapping(L, n, path, f, N))
        return;
    for (int i = 0; i < N; i++) {
        if (!f[i].val)
            continue;
        char kp[KEY_PATH_MAX];
        key_path(kp, path, f[i].name);
        get_float(L, f[i].val, kp, dst[i]);
    }
}

static void parse_resampling(loader *L, yaml_node_t *n, const char *path)
{
    enum { REFL, QA, N };
    field f[N] = {{.name = "reflectance"}, {.name = "qa"}};
    aw_resampling *dst[N] = {&L->cfg->resample_reflectance,
                             &L->cfg->resample_qa};
    if (!read_mapping(L, n, path, f, N))
        return;
    for (int i = 0; i < N; i++) {
        if (!f[i].val)
            continue;
        char kp[KEY_PATH_MAX];
        key_path(kp, path, f[i].name);
        int v;
        if (!get_enum(L, f[i].val, kp, "resampling", resampling_names,
                      COUNT_OF(resampling_names), 0, &v))
            continue;
        /* Quality values are codes and bit fields: interpolating them
         * invents codes. */
        if (i == QA && v != AW_RESAMPLE_NEAREST) {
            add_error(L, line_of(f[i].val), kp,
                      "quality bands can only be resampled with 'nearest' "
                      "(their values are codes and bit flags)");
            continue;
        }
        *dst[i] = (aw_resampling)v;
    }
}

static void parse_water(loader *L, yaml_node_t *n, const char *path)
{
    aw_config *cfg = L->cfg;
    enum { INDEX, METHOD, THRESHOLD, BINS, MINFRAC, N };
    field f[N] = {{.name = "index"},
                  {.name = "method"},
                  {.name = "threshold"},
                  {.name = "otsu_bins"},
                  {.name = "otsu_min_class_fraction"}};
    if (!read_mapping(L, n, path, f, N))
        return;
    char kp[KEY_PATH_MAX];
    int v;
    if (f[INDEX].val) {
        key_path(kp, path, "index");
        L->water_index_ok = get_enum(L, f[INDEX].val, kp, "index",
                                     L->index_names, AW_IDX_COUNT, 0, &v);
        if (L->water_index_ok)
            cfg->water_index = (aw_index)v;
    }
    if (f[METHOD].val) {
        key_path(kp, path, "method");
        if (get_enum(L, f[METHOD].val, kp, "method", water_method_names,
                     COUNT_OF(water_method_names), 0, &v))
            cfg->water_method = (aw_water_method)v;
    }
    if (f[THRESHOLD].val) {
        key_path(kp, path, "threshold");
        get_number(L, f[THRESHOLD].val, kp, 0, &cfg->water_threshold);
    }
    if (f[BINS].val) {
        key_path(kp, path, "otsu_bins");
        get_int(L, f[BINS].val, kp, 16, 4096, &cfg->otsu_bins);
    }
    if (f[MINFRAC].val) {
        key_path(kp, path, "otsu_min_class_fraction");
        double d;
        if (get_number(L, f[MINFRAC].val, kp, 0, &d)) {
            if (d > 0.0 && d < 0.5)
                cfg->otsu_min_class_fraction = d;
            else
                add_error(L, line_of(f[MINFRAC].val), kp,
                          "must be greater than 0 and less than 0.5, got %s",
                          text_of(f[MINFRAC].val));
        }
    }
}

static void parse_zones(loader *L, yaml_node_t *n, const char *path)
{
    aw_config *cfg = L->cfg;
    enum { FILE_, LAYER, ID_FIELD, NAME_FIELD, KIND_FIELD, KIND, N };
    field f[N] = {{.name = "file"},       {.name = "layer"},
                  {.name = "id_field"},   {.name = "name_field"},
                  {.name = "kind_field"}, {.name = "kind"}};
    if (!read_mapping(L, n, path, f, N))
        return;
    char kp[KEY_PATH_MAX];
    if (require(L, n, path, &f[FILE_])) {
        key_path(kp, path, "file");
        get_path(L, f[FILE_].val, kp, cfg->dir, WANT_ANY, &cfg->zones_path);
    }
    if (f[LAYER].val) {
        key_path(kp, path, "layer");
        get_string(L, f[LAYER].val, kp, &cfg->zones_layer);
    }
    if (require(L, n, path, &f[ID_FIELD])) {
        key_path(kp, path, "id_field");
        get_string(L, f[ID_FIELD].val, kp, &cfg->zones_id_field);
    }
    if (f[NAME_FIELD].val) {
        key_path(kp, path, "name_field");
        get_string(L, f[NAME_FIELD].val, kp, &cfg->zones_name_field);
    }
    if (f[KIND_FIELD].val) {
        key_path(kp, path, "kind_field");
        get_string(L, f[KIND_FIELD].val, kp, &cfg->zones_kind_field);
    }
    if (f[KIND].val) {
        key_path(kp, path, "kind");
        int v;
        if (get_enum(L, f[KIND].val, kp, "zone kind", zone_kind_names,
                     COUNT_OF(zone_kind_names), 0, &v))
            cfg->zones_kind = (aw_zone_kind)v;
        if (f[KIND_FIELD].val)
            add_error(L, line_of(f[KIND].key), kp,
                      "give either 'kind' or 'kind_field' (line %d), not "
                      "both",
                      line_of(f[KIND_FIELD].key));
    }
    /* The layer and its fields exist, and its zone ids are known to check
     * the alert rules against. */
    if (!cfg->zones_path || access(cfg->zones_path, R_OK) != 0)
        return;
    key_path(kp, path, "file");
    GDALDatasetH ds = NULL;
    OGRLayerH lyr =
        open_layer(L, f[FILE_].val, kp, cfg->zones_path, cfg->zones_layer, &ds);
    if (lyr) {
        const struct {
            int i;
            const char *v;
        } fields[] = {{ID_FIELD, cfg->zones_id_field},
                      {NAME_FIELD, cfg->zones_name_field},
                      {KIND_FIELD, cfg->zones_kind_field}};
        int id_ok = 1;
        for (size_t k = 0; k < COUNT_OF(fields); k++) {
            if (!fields[k].v || !f[fields[k].i].val)
                continue;
            key_path(kp, path, f[fields[k].i].name);
            OGRFeatureDefnH defn = OGR_L_GetLayerDefn(lyr);
            if (OGR_FD_GetFieldIndex(defn, fields[k].v) < 0) {
                check_field(L, f[fields[k].i].val, kp, lyr, cfg->zones_path,
                            fields[k].v);
                if (fields[k].i == ID_FIELD)
                    id_ok = 0;
            }
        }
        if (id_ok && cfg->zones_id_field) {
            int fi = OGR_FD_GetFieldIndex(OGR_L_GetLayerDefn(lyr),
                                          cfg->zones_id_field);
            GIntBig nf = OGR_L_GetFeatureCount(lyr, TRUE);
            L->layer_zone_ids =
                aw_calloc2(nf > 0 ? (size_t)nf : 1, sizeof(char *));
            if (!L->layer_zone_ids) {
                L->nomem = 1;
            }
            else {
                OGR_L_ResetReading(lyr);
                OGRFeatureH ft;
                while ((ft = OGR_L_GetNextFeature(lyr)) != NULL) {
                    if ((GIntBig)L->n_layer_zone_ids < nf)
                        L->layer_zone_ids[L->n_layer_zone_ids++] =
                            aw_strdup(OGR_F_GetFieldAsString(ft, fi));
                    OGR_F_Destroy(ft);
                }
                L->zone_layer_ok = 1;
            }
        }
    }
    if (ds)
        GDALClose(ds);
}

/* Every zone id a rule names must be in the zone layer. */
static void check_rule_zones(loader *L)
{
    const aw_config *cfg = L->cfg;
    for (size_t i = 0; i < cfg->n_rules; i++) {
        const aw_rule_cfg *r = &cfg->rules[i];
        for (size_t j = 0; j < r->n_zone_ids; j++) {
            int found = 0;
            for (size_t k = 0; k < L->n_layer_zone_ids && !found; k++)
                found = L->layer_zone_ids[k] &&
                        strcmp(L->layer_zone_ids[k], r->zone_ids[j]) == 0;
            if (found)
                continue;
            char kp[KEY_PATH_MAX];
            snprintf(kp, sizeof kp, "alerts.rules[%zu].zones[%zu]", i, j);
            const char *near =
                closest(r->zone_ids[j], (const char *const *)L->layer_zone_ids,
                        L->n_layer_zone_ids);
            add_error(L, L->rmeta[i].zones_line, kp, "no zone '%s' in %s%s%s%s",
                      r->zone_ids[j], cfg->zones_path,
                      near ? "; did you mean '" : "", near ? near : "",
                      near ? "'?" : "");
        }
    }
}

static void parse_rule_zones(loader *L, const yaml_node_t *n, const char *path,
                             aw_rule_cfg *r)
{
    if (n->type != YAML_SEQUENCE_NODE) {
        type_error(L, n, path, "a list of zone ids");
        return;
    }
    size_t count =
        (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    r->zone_ids = aw_calloc2(count, sizeof *r->zone_ids);
    if (!r->zone_ids) {
        L->nomem = 1;
        return;
    }
    for (size_t i = 0; i < count; i++) {
        char ip[KEY_PATH_MAX];
        item_path(ip, path, i);
        yaml_node_t *in = node_at(L, n->data.sequence.items.start[i]);
        char *id = NULL;
        if (in && get_string(L, in, ip, &id))
            r->zone_ids[r->n_zone_ids++] = id;
    }
}

/* Levels must be strictly monotonic in the direction of the comparison. */
static void check_levels(loader *L, const aw_rule_cfg *r, const char *path,
                         yaml_node_t *const lnode[3])
{
    int prev = -1;
    for (int i = 0; i < 3; i++) {
        if (!r->has_level[i])
            continue;
        if (prev >= 0) {
            int ok = r->cmp == AW_CMP_BELOW ? r->level[i] < r->level[prev]
                                            : r->level[i] > r->level[prev];
            if (!ok) {
                char kp[KEY_PATH_MAX];
                key_path(kp, path, level_names[i]);
                add_error(L, line_of(lnode[i]), kp,
                          "with 'when: %s' the levels must strictly %s "
                          "(watch %s warning %s alert), but %s is %g and "
                          "%s is %g",
                          cmp_names[r->cmp],
                          r->cmp == AW_CMP_BELOW ? "decrease" : "increase",
                          r->cmp == AW_CMP_BELOW ? ">" : "<",
                          r->cmp == AW_CMP_BELOW ? ">" : "<", level_names[prev],
                          r->level[prev], level_names[i], r->level[i]);
            }
        }
        prev = i;
    }
}

static void parse_rule(loader *L, yaml_node_t *n, const char *path,
                       aw_rule_cfg *r, rule_meta *rm)
{
    r->line = line_of(n);
    r->min_valid_fraction = L->cfg->alerts_min_valid_fraction;
    r->persistence = L->cfg->alerts_persistence;
    r->hysteresis = L->cfg->alerts_hysteresis;
    enum {
        ID,
        TYPE,
        METRIC,
        WHEN,
        WATCH,
        WARNING,
        ALERT,
        KIND,
        ZONES,
        MVF,
        PERSIST,
        HYST,
        N
    };
    field f[N] = {{.name = "id"},          {.name = "type"},
                  {.name = "metric"},      {.name = "when"},
                  {.name = "watch"},       {.name = "warning"},
                  {.name = "alert"},       {.name = "kind"},
                  {.name = "zones"},       {.name = "min_valid_fraction"},
                  {.name = "persistence"}, {.name = "hysteresis"}};
    if (!read_mapping(L, n, path, f, N))
        return;
    char kp[KEY_PATH_MAX];
    int v;
    if (require(L, n, path, &f[ID])) {
        key_path(kp, path, "id");
        get_string(L, f[ID].val, kp, &r->id);
        rm->id_line = line_of(f[ID].val);
    }
    if (require(L, n, path, &f[TYPE])) {
        key_path(kp, path, "type");
        if (get_enum(L, f[TYPE].val, kp, "alert type", rule_type_names,
                     COUNT_OF(rule_type_names), 0, &v)) {
            r->type = aw_strdup(rule_type_names[v]);
            if (!r->type)
                L->nomem = 1;
        }
    }
    if (require(L, n, path, &f[METRIC])) {
        key_path(kp, path, "metric");
        rm->metric_line = line_of(f[METRIC].val);
        rm->metric_ok = get_enum(L, f[METRIC].val, kp, "metric", metric_names,
                                 AW_METRIC_COUNT, 0, &v);
        if (rm->metric_ok)
            r->metric = (aw_metric)v;
    }
    int when_ok = 0;
    if (require(L, n, path, &f[WHEN])) {
        key_path(kp, path, "when");
        when_ok = get_enum(L, f[WHEN].val, kp, "comparison", cmp_names,
                           COUNT_OF(cmp_names), 0, &v);
        if (when_ok)
            r->cmp = (aw_cmp)v;
    }
    yaml_node_t *lnode[3] = {f[WATCH].val, f[WARNING].val, f[ALERT].val};
    int any_level = 0, levels_ok = 1;
    for (int i = 0; i < 3; i++) {
        if (!lnode[i])
            continue;
        any_level = 1;
        key_path(kp, path, level_names[i]);
        if (get_number(L, lnode[i], kp, 0, &r->level[i]))
            r->has_level[i] = 1;
        else
            levels_ok = 0;
    }
    if (!any_level)
        add_error(L, line_of(n), path,
                  "needs at least one of 'watch', 'warning', 'alert'");
    else if (levels_ok && when_ok)
        check_levels(L, r, path, lnode);
    if (f[KIND].val) {
        key_path(kp, path, "kind");
        if (get_enum(L, f[KIND].val, kp, "zone kind", zone_kind_names,
                     COUNT_OF(zone_kind_names), 0, &v)) {
            r->kind = (aw_zone_kind)v;
            r->kind_set = 1;
        }
    }
    if (f[ZONES].val) {
        key_path(kp, path, "zones");
        parse_rule_zones(L, f[ZONES].val, kp, r);
        rm->zones_line = line_of(f[ZONES].val);
    }
    if (f[MVF].val) {
        key_path(kp, path, "min_valid_fraction");
        get_fraction(L, f[MVF].val, kp, &r->min_valid_fraction);
    }
    if (f[PERSIST].val) {
        key_path(kp, path, "persistence");
        get_int(L, f[PERSIST].val, kp, 1, 100, &r->persistence);
    }
    if (f[HYST].val) {
        key_path(kp, path, "hysteresis");
        get_fraction(L, f[HYST].val, kp, &r->hysteresis);
    }
}

static void parse_rules(loader *L, const yaml_node_t *n, const char *path)
{
    aw_config *cfg = L->cfg;
    if (n->type != YAML_SEQUENCE_NODE) {
        type_error(L, n, path, "a list of rules");
        return;
    }
    size_t count =
        (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    cfg->rules = aw_calloc2(count, sizeof *cfg->rules);
    L->rmeta = aw_calloc2(count, sizeof *L->rmeta);
    if (!cfg->rules || !L->rmeta) {
        L->nomem = 1;
        return;
    }
    cfg->n_rules = count;
    for (size_t i = 0; i < count; i++) {
        char ip[KEY_PATH_MAX];
        item_path(ip, path, i);
        yaml_node_t *it = node_at(L, n->data.sequence.items.start[i]);
        if (!it)
            continue;
        parse_rule(L, it, ip, &cfg->rules[i], &L->rmeta[i]);
        if (!cfg->rules[i].id)
            continue;
        for (size_t j = 0; j < i; j++) {
            if (cfg->rules[j].id &&
                strcmp(cfg->rules[j].id, cfg->rules[i].id) == 0) {
                char kp[KEY_PATH_MAX];
                key_path(kp, ip, "id");
                add_error(L, L->rmeta[i].id_line, kp,
                          "duplicate rule id '%s' (also %s[%zu], line %d)",
                          cfg->rules[i].id, path, j, L->rmeta[j].id_line);
                break;
            }
        }
    }
}

static void parse_alerts(loader *L, yaml_node_t *n, const char *path)
{
    enum { MVF, PERSIST, HYST, RULES, N };
    field f[N] = {{.name = "min_valid_fraction"},
                  {.name = "persistence"},
                  {.name = "hysteresis"},
                  {.name = "rules"}};
    if (!read_mapping(L, n, path, f, N))
        return;
    char kp[KEY_PATH_MAX];
    if (f[MVF].val) {
        key_path(kp, path, "min_valid_fraction");
        get_fraction(L, f[MVF].val, kp, &L->cfg->alerts_min_valid_fraction);
    }
    if (f[PERSIST].val) {
        key_path(kp, path, "persistence");
        get_int(L, f[PERSIST].val, kp, 1, 100, &L->cfg->alerts_persistence);
    }
    if (f[HYST].val) {
        key_path(kp, path, "hysteresis");
        get_fraction(L, f[HYST].val, kp, &L->cfg->alerts_hysteresis);
    }
    if (f[RULES].val) {
        key_path(kp, path, "rules");
        parse_rules(L, f[RULES].val, kp);
    }
}

static void parse_baseline(loader *L, yaml_node_t *n, const char *path)
{
    aw_config *cfg = L->cfg;
    enum {
        PERIOD,
        FROM,
        TO,
        MINY,
        MVF,
        LOST,
        NEW,
        STRESS,
        SEASON,
        VCIRANGE,
        N
    };
    field f[N] = {{.name = "period"},
                  {.name = "from"},
                  {.name = "to"},
                  {.name = "min_years"},
                  {.name = "min_valid_fraction"},
                  {.name = "lost_water_occurrence"},
                  {.name = "new_water_occurrence"},
                  {.name = "stress_vci"},
                  {.name = "season_ndvi"},
                  {.name = "vci_min_range"}};
    if (!read_mapping(L, n, path, f, N))
        return;
    char kp[KEY_PATH_MAX];
    int v;
    if (f[PERIOD].val) {
        key_path(kp, path, "period");
        if (get_enum(L, f[PERIOD].val, kp, "period", period_names,
                     COUNT_OF(period_names), 0, &v))
            cfg->baseline_period = (aw_period)v;
    }
    if (f[FROM].val) {
        key_path(kp, path, "from");
        get_date(L, f[FROM].val, kp, cfg->baseline_from);
    }
    if (f[TO].val) {
        key_path(kp, path, "to");
        get_date(L, f[TO].val, kp, cfg->baseline_to);
    }
    if (cfg->baseline_from[0] && cfg->baseline_to[0] &&
        strcmp(cfg->baseline_from, cfg->baseline_to) > 0)
        add_error(L, line_of(f[TO].val), "baseline.to",
                  "%s is before baseline.from %s", cfg->baseline_to,
                  cfg->baseline_from);
    if (f[MINY].val) {
        key_path(kp, path, "min_years");
        get_int(L, f[MINY].val, kp, 1, 64, &cfg->baseline_min_years);
    }
    if (f[MVF].val) {
        key_path(kp, path, "min_valid_fraction");
        get_fraction(L, f[MVF].val, kp, &cfg->baseline_min_valid_fraction);
    }
    if (f[LOST].val) {
        key_path(kp, path, "lost_water_occurrence");
        get_fraction(L, f[LOST].val, kp, &cfg->lost_water_occurrence);
    }
    if (f[NEW].val) {
        key_path(kp, path, "new_water_occurrence");
        get_fraction(L, f[NEW].val, kp, &cfg->new_water_occurrence);
    }
    if (f[SEASON].val) {
        key_path(kp, path, "season_ndvi");
        if (get_number(L, f[SEASON].val, kp, 0, &cfg->season_ndvi) &&
            (cfg->season_ndvi < -1 || cfg->season_ndvi > 1))
            add_error(L, line_of(f[SEASON].val), kp,
                      "must be an NDVI between -1 and 1, got %g",
                      cfg->season_ndvi);
    }
    if (f[VCIRANGE].val) {
        key_path(kp, path, "vci_min_range");
        if (get_number(L, f[VCIRANGE].val, kp, 0, &cfg->vci_min_range) &&
            (cfg->vci_min_range < 0 || cfg->vci_min_range > 2))
            add_error(L, line_of(f[VCIRANGE].val), kp,
                      "must be an NDVI range between 0 and 2, got %g",
                      cfg->vci_min_range);
    }
    if (f[STRESS].val) {
        key_path(kp, path, "stress_vci");
        if (get_number(L, f[STRESS].val, kp, 0, &cfg->stress_vci) &&
            (cfg->stress_vci <= 0 || cfg->stress_vci >= 100))
            add_error(L, line_of(f[STRESS].val), kp,
                      "must be between 0 and 100 (exclusive), got %g",
                      cfg->stress_vci);
    }
}

static void parse_forecast(loader *L, yaml_node_t *n, const char *path)
{
    aw_config *cfg = L->cfg;
    enum { OBS, MINOBS, ALPHA, HORIZON, N };
    field f[N] = {{.name = "observations"},
                  {.name = "min_observations"},
                  {.name = "alpha"},
                  {.name = "horizon_days"}};
    if (!read_mapping(L, n, path, f, N))
        return;
    char kp[KEY_PATH_MAX];
    if (f[OBS].val) {
        key_path(kp, path, "observations");
        get_int(L, f[OBS].val, kp, 3, 1000, &cfg->forecast_observations);
    }
    if (f[MINOBS].val) {
        key_path(kp, path, "min_observations");
        get_int(L, f[MINOBS].val, kp, 3, 1000, &cfg->forecast_min_observations);
    }
    if (cfg->forecast_min_observations > cfg->forecast_observations)
        add_error(L, line_of(n), path,
                  "min_observations (%d) is more than observations (%d)",
                  cfg->forecast_min_observations, cfg->forecast_observations);
    if (f[ALPHA].val) {
        key_path(kp, path, "alpha");
        if (get_number(L, f[ALPHA].val, kp, 0, &cfg->forecast_alpha) &&
            (cfg->forecast_alpha <= 0 || cfg->forecast_alpha >= 0.5))
            add_error(L, line_of(f[ALPHA].val), kp,
                      "must be between 0 and 0.5 (exclusive), got %g",
                      cfg->forecast_alpha);
    }
    if (f[HORIZON].val) {
        key_path(kp, path, "horizon_days");
        get_int(L, f[HORIZON].val, kp, 1, 3660, &cfg->forecast_horizon_days);
    }
}

static void parse_outputs(loader *L, yaml_node_t *n, const char *path)
{
    aw_config *cfg = L->cfg;
    enum {
        DIR,
        COG,
        COMPRESS,
        LEVEL,
        BLOCKSIZE,
        OVERWRITE,
        ENCODING,
        RASTERS,
        CAP,
        N
    };
    field f[N] = {
        {.name = "dir"},      {.name = "cog"},       {.name = "compress"},
        {.name = "level"},    {.name = "blocksize"}, {.name = "overwrite"},
        {.name = "encoding"}, {.name = "rasters"},   {.name = "cap"}};
    if (!read_mapping(L, n, path, f, N))
        return;
    char kp[KEY_PATH_MAX];
    if (f[DIR].val) {
        key_path(kp, path, "dir");
        char *raw = NULL;
        if (get_string(L, f[DIR].val, kp, &raw)) {
            char *r = resolve(L, cfg->dir, raw);
            if (r) {
                free(cfg->out_dir);
                cfg->out_dir = r;
            }
        }
        free(raw);
    }
    if (f[COG].val) {
        key_path(kp, path, "cog");
        get_bool(L, f[COG].val, kp, &cfg->cog);
    }
    int compress = 1; /* compress_names index (zstd by default); -1: given,
                         but not valid */
    if (f[COMPRESS].val) {
        key_path(kp, path, "compress");
        int v;
        compress = -1;
        if (get_enum(L, f[COMPRESS].val, kp, "compression", compress_names,
                     COUNT_OF(compress_names), 1, &v)) {
            compress = v;
            char *c = aw_strdup(compress_values[v]);
            if (c) {
                free(cfg->compress);
                cfg->compress = c;
            }
            else {
                L->nomem = 1;
            }
        }
    }
    if (f[LEVEL].val && compress >= 0) {
        /* GDAL's ZLEVEL (libdeflate: 1..12) and ZSTD_LEVEL (1..22); LZW
         * and no compression have none. Checked against the compression
         * given here or the default (zstd); not against one that is
         * itself an error. */
        key_path(kp, path, "level");
        const char *c = compress_names[compress];
        int max = strcmp(c, "deflate") == 0 ? 12
                  : strcmp(c, "zstd") == 0  ? 22
                                            : 0;
        int v;
        if (max == 0)
            add_error(L, line_of(f[LEVEL].val), kp,
                      "compression '%s' has no level (only deflate and zstd "
                      "do)",
                      c);
        else if (get_int(L, f[LEVEL].val, kp, 1, max, &v))
            cfg->level = v;
    }
    if (f[BLOCKSIZE].val) {
        key_path(kp, path, "blocksize");
        int v;
        if (get_int(L, f[BLOCKSIZE].val, kp, 16, 4096, &v)) {
            if (v % 16 == 0)
                cfg->blocksize = v;
            else
                add_error(L, line_of(f[BLOCKSIZE].val), kp,
                          "must be a multiple of 16, got %d", v);
        }
    }
    if (f[OVERWRITE].val) {
        key_path(kp, path, "overwrite");
        get_bool(L, f[OVERWRITE].val, kp, &cfg->overwrite);
    }
    if (f[CAP].val) {
        key_path(kp, path, "cap");
        get_bool(L, f[CAP].val, kp, &cfg->cap);
    }
    if (f[ENCODING].val) {
        static const char *const enc[] = {"float32", "int16"};
        key_path(kp, path, "encoding");
        int v;
        if (get_enum(L, f[ENCODING].val, kp, "encoding", enc, COUNT_OF(enc), 1,
                     &v))
            cfg->int16 = v == 1;
    }
    if (f[RASTERS].val) {
        /* index names, then the class rasters, in AW_RASTER_* order */
        const char *names[AW_RASTER_COUNT];
        for (int i = 0; i < AW_IDX_COUNT; i++)
            names[i] = aw_index_get((aw_index)i)->name;
        names[AW_RASTER_WATER] = "water";
        names[AW_RASTER_VALID] = "valid";
        names[AW_RASTER_SOURCE] = "source";
        names[AW_RASTER_WOFL] = "wofl";
        names[AW_RASTER_RGB] = "rgb";
        key_path(kp, path, "rasters");
        parse_name_set(L, f[RASTERS].val, kp, "raster", names, AW_RASTER_COUNT,
                       &cfg->rasters);
        for (int i = 0; i < AW_IDX_COUNT; i++)
            if ((cfg->rasters >> i & 1u) && !cfg->indices[i])
                add_error(L, line_of(f[RASTERS].val), kp,
                          "'%s' is not computed: add it to indices", names[i]);
    }
}

/* ---- Cross-field checks ---- */

static void check_rule_indices(loader *L)
{
    const aw_config *cfg = L->cfg;
    for (size_t i = 0; i < cfg->n_rules; i++) {
        if (!L->rmeta[i].metric_ok)
            continue;
        int idx = metric_index[cfg->rules[i].metric];
        if (idx < 0 || cfg->indices[idx])
            continue;
        char kp[KEY_PATH_MAX], ip[KEY_PATH_MAX];
        item_path(ip, "alerts.rules", i);
        key_path(kp, ip, "metric");
        add_error(L, L->rmeta[i].metric_line, kp, "%s needs '%s' in indices",
                  metric_names[cfg->rules[i].metric], L->index_names[idx]);
    }
}

static void check_scene_bands(loader *L)
{
    const aw_config *cfg = L->cfg;
    unsigned needed = 0;
    for (int i = 0; i < AW_IDX_COUNT; i++)
        if (cfg->indices[i] ||
            (L->water_index_ok && i == (int)cfg->water_index))
            needed |= aw_index_get((aw_index)i)->bands;
    int class_method = cfg->water_method == AW_WATER_DSWE ||
                       cfg->water_method == AW_WATER_WOFS;
    if (class_method)
        needed |= (1u << AW_BAND_COUNT) - 1u;
    if (cfg->rasters >> AW_RASTER_RGB & 1u)
        needed |= 1u << AW_BAND_RED | 1u << AW_BAND_GREEN | 1u << AW_BAND_BLUE;
    for (size_t s = 0; s < cfg->n_scenes; s++) {
        const aw_scene_cfg *sc = &cfg->scenes[s];
        if (!L->smeta[s].bands_ok || L->smeta[s].from_inbox)
            continue;
        for (int b = 0; b < AW_BAND_COUNT; b++) {
            /* A role whose entry is there but broken is reported already
             * (its line is set). */
            if (!(needed & (1u << b)) || sc->bands[b].present ||
                sc->bands[b].line)
                continue;
            char users[NAME_LIST_MAX];
            size_t len = 0;
            users[0] = '\0';
            for (int i = 0; i < AW_IDX_COUNT; i++) {
                int water = L->water_index_ok && i == (int)cfg->water_index;
                if (!(cfg->indices[i] || water) ||
                    !(aw_index_get((aw_index)i)->bands & (1u << b)))
                    continue;
                int w =
                    snprintf(users + len, sizeof users - len, "%s%s%s",
                             len ? ", " : "", L->index_names[i],
                             water && !cfg->indices[i] ? " (water index)" : "");
                if (w > 0 && (size_t)w < sizeof users - len)
                    len += (size_t)w;
            }
            if (class_method && len + 32 < sizeof users) {
                int w = snprintf(users + len, sizeof users - len,
                                 "%swater method %s", len ? ", " : "",
                                 water_method_names[cfg->water_method]);
                if (w > 0)
                    len += (size_t)w;
            }
            char kp[KEY_PATH_MAX], ip[KEY_PATH_MAX];
            item_path(ip, "scenes", s);
            key_path(kp, ip, "bands");
            add_error(L, L->smeta[s].bands_line, kp,
                      "scene '%s' has no '%s' band, needed by %s",
                      sc->id ? sc->id : "?", aw_band_name((aw_band)b), users);
        }
    }
}

static void check_scene_uniqueness(loader *L)
{
    const aw_config *cfg = L->cfg;
    for (size_t i = 0; i < cfg->n_scenes; i++) {
        const aw_scene_cfg *a = &cfg->scenes[i];
        for (size_t j = 0; j < i && a->id; j++) {
            if (!cfg->scenes[j].id || strcmp(cfg->scenes[j].id, a->id))
                continue;
            char kp[KEY_PATH_MAX];
            if (L->smeta[i].id_given) {
                snprintf(kp, sizeof kp, "scenes[%zu].id", i);
                add_error(L, L->smeta[i].id_line, kp,
                          "duplicate scene id '%s' (also scenes[%zu], line "
                          "%d)",
                          a->id, j, L->smeta[j].id_line);
            }
            else {
                snprintf(kp, sizeof kp, "scenes[%zu]", i);
                add_error(L, L->smeta[i].id_line, kp,
                          "default scene id '%s' is already used by "
                          "scenes[%zu] (line %d); give each scene an 'id'",
                          a->id, j, L->smeta[j].id_line);
            }
            break;
        }
    }
}

/* ---- Top level ---- */

static void set_defaults(aw_config *cfg)
{
    cfg->version = 0;
    cfg->resample_reflectance = AW_RESAMPLE_BILINEAR;
    cfg->resample_qa = AW_RESAMPLE_NEAREST;
    for (int i = 0; i < AW_IDX_COUNT; i++)
        cfg->indices[i] = 0;
    cfg->indices[AW_IDX_NDWI] = 1;
    cfg->indices[AW_IDX_MNDWI] = 1;
    cfg->indices[AW_IDX_NDVI] = 1;
    aw_index_params_default(&cfg->index_params);
    cfg->water_index = AW_IDX_MNDWI;
    cfg->water_method = AW_WATER_THRESHOLD;
    cfg->water_threshold = 0.0;
    cfg->otsu_bins = 256;
    cfg->otsu_min_class_fraction = 0.01;
    cfg->zones_kind = AW_ZONE_OTHER;
    cfg->alerts_min_valid_fraction = 0.5;
    cfg->alerts_persistence = 2;
    cfg->alerts_hysteresis = 0.05;
    cfg->baseline_period = AW_PERIOD_MONTH;
    cfg->baseline_min_years = 5;
    cfg->baseline_min_valid_fraction = 0.8;
    cfg->lost_water_occurrence = 0.75;
    cfg->new_water_occurrence = 0.10;
    cfg->stress_vci = 35.0;
    cfg->season_ndvi = 0.25;
    cfg->vci_min_range = 0.05;
    cfg->forecast_observations = 12;
    cfg->forecast_min_observations = 6;
    cfg->forecast_alpha = 0.05;
    cfg->forecast_horizon_days = 365;
    cfg->cog = 1;
    cfg->blocksize = 256;
    cfg->overwrite = 1;
    cfg->rasters = ((1u << AW_RASTER_COUNT) - 1u) & ~(1u << AW_RASTER_RGB);
    aw_qa_policy_default(&cfg->qa_policy);
    cfg->mosaic_order = AW_MOSAIC_LEAST_CLOUD;
}

static void parse_root(loader *L, yaml_node_t *root)
{
    aw_config *cfg = L->cfg;
    enum {
        VERSION,
        REGION,
        SCENES,
        INDICES,
        INDEX_PARAMS,
        RESAMPLING,
        WATER,
        ZONES,
        ALERTS,
        OUTPUTS,
        INBOX,
        QUALITY,
        MOSAIC,
        DEM,
        ALLOW_NETWORK,
        BASELINE,
        FORECAST,
        N
    };
    field f[N] = {{.name = "version"},       {.name = "region"},
                  {.name = "scenes"},        {.name = "indices"},
                  {.name = "index_params"},  {.name = "resampling"},
                  {.name = "water"},         {.name = "zones"},
                  {.name = "alerts"},        {.name = "outputs"},
                  {.name = "inbox"},         {.name = "quality"},
                  {.name = "mosaic"},        {.name = "dem"},
                  {.name = "allow_network"}, {.name = "baseline"},
                  {.name = "forecast"}};
    if (!read_mapping(L, root, "", f, N))
        return;
    if (require(L, root, "", &f[VERSION])) {
        int v;
        if (get_int(L, f[VERSION].val, "version", INT32_MIN, INT32_MAX, &v)) {
            cfg->version = v;
            if (v != AW_CONFIG_VERSION)
                add_error(L, line_of(f[VERSION].val), "version",
                          "unsupported config version %d (this build reads "
                          "version %d)",
                          v, AW_CONFIG_VERSION);
        }
    }
    /* Read first: whether GDAL may reach the network while the scenes and
     * vector files below are opened. */
    int allow_net = 0;
    if (f[ALLOW_NETWORK].val)
        get_bool(L, f[ALLOW_NETWORK].val, "allow_network", &allow_net);
    cfg->allow_network = allow_net;
    aw_gdal_allow_network(allow_net);
    if (require(L, root, "", &f[REGION]))
        parse_region(L, f[REGION].val, "region");
    if (f[SCENES].val || !f[INBOX].val) {
        if (require(L, root, "", &f[SCENES]))
            parse_scenes(L, f[SCENES].val, "scenes");
    }
    if (f[INBOX].val) {
        parse_inbox(L, f[INBOX].val, "inbox");
        /* An inbox with no scene is valid: `run` says so and does
         * nothing (a night without deliveries). */
    }
    if (f[QUALITY].val)
        parse_quality(L, f[QUALITY].val, "quality");
    if (f[MOSAIC].val)
        parse_mosaic(L, f[MOSAIC].val, "mosaic");
    if (f[DEM].val)
        get_path(L, f[DEM].val, "dem", cfg->dir, WANT_FILE, &cfg->dem_path);
    if (f[INDICES].val)
        parse_indices(L, f[INDICES].val, "indices");
    if (f[INDEX_PARAMS].val)
        parse_index_params(L, f[INDEX_PARAMS].val, "index_params");
    if (f[RESAMPLING].val)
        parse_resampling(L, f[RESAMPLING].val, "resampling");
    if (f[WATER].val)
        parse_water(L, f[WATER].val, "water");
    if (f[ZONES].val)
        parse_zones(L, f[ZONES].val, "zones");
    if (f[BASELINE].val)
        parse_baseline(L, f[BASELINE].val, "baseline");
    if (f[FORECAST].val)
        parse_forecast(L, f[FORECAST].val, "forecast");
    if (f[ALERTS].val)
        parse_alerts(L, f[ALERTS].val, "alerts");
    if (f[OUTPUTS].val)
        parse_outputs(L, f[OUTPUTS].val, "outputs");

    for (size_t i = 0; i < L->n_net && !allow_net; i++)
        add_error(L, L->net_line[i], L->net_key[i],
                  "a network path (GDAL /vsicurl/, /vsis3/...); set "
                  "'allow_network: true' to read over the network");
    if (cfg->rules)
        check_rule_indices(L);
    if (cfg->rules && L->zone_layer_ok)
        check_rule_zones(L);
    if (cfg->scenes)
        check_scene_bands(L);
    if (cfg->scenes)
        check_scene_uniqueness(L);
}

/* Read a whole file; on failure sets ctx's error and returns NULL. */
static unsigned char *read_config_file(aw_ctx *ctx, const char *path,
                                       size_t *len, aw_status *st)
{
    struct stat sb;
    if (stat(path, &sb) != 0) {
        *st = aw_fail(ctx, AW_ERR_CONFIG, "%s: cannot open config file: %s",
                      path, strerror(errno));
        return NULL;
    }
    if (!S_ISREG(sb.st_mode)) {
        *st = aw_fail(ctx, AW_ERR_CONFIG,
                      "%s: cannot open config file: not a regular file", path);
        return NULL;
    }
    if ((uintmax_t)sb.st_size > MAX_CONFIG_BYTES) {
        *st = aw_fail(ctx, AW_ERR_CONFIG,
                      "%s: config file is too large (%jd bytes)", path,
                      (intmax_t)sb.st_size);
        return NULL;
    }
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        *st = aw_fail(ctx, AW_ERR_CONFIG, "%s: cannot open config file: %s",
                      path, strerror(errno));
        return NULL;
    }
    size_t cap = (size_t)sb.st_size + 1, n = 0;
    unsigned char *buf = malloc(cap);
    if (!buf) {
        fclose(fp);
        *st = aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
        return NULL;
    }
    size_t got;
    while (n < cap && (got = fread(buf + n, 1, cap - n, fp)) > 0)
        n += got;
    int bad = ferror(fp) || (n == cap && fgetc(fp) != EOF);
    fclose(fp);
    if (bad) {
        free(buf);
        *st = aw_fail(ctx, AW_ERR_CONFIG, "%s: cannot read config file", path);
        return NULL;
    }
    *len = n;
    return buf;
}

static int count_lines(const unsigned char *buf, size_t len, size_t offset)
{
    int line = 1;
    for (size_t i = 0; i < offset && i < len; i++)
        if (buf[i] == '\n')
            line++;
    return line;
}

static aw_status syntax_error(aw_ctx *ctx, const char *path,
                              const yaml_parser_t *yp, const unsigned char *buf,
                              size_t len)
{
    if (yp->error == YAML_MEMORY_ERROR)
        return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    const char *problem = yp->problem ? yp->problem : "invalid YAML";
    if (yp->error == YAML_READER_ERROR)
        return aw_fail(ctx, AW_ERR_CONFIG, "%s:%d: YAML syntax error: %s", path,
                       count_lines(buf, len, yp->problem_offset), problem);
    int line = (int)yp->problem_mark.line + 1;
    if (yp->context)
        return aw_fail(
            ctx, AW_ERR_CONFIG, "%s:%d: YAML syntax error: %s (%s at line %d)",
            path, line, problem, yp->context, (int)yp->context_mark.line + 1);
    return aw_fail(ctx, AW_ERR_CONFIG, "%s:%d: YAML syntax error: %s", path,
                   line, problem);
}

/* Parse buf into doc; a second document in the stream is an error. */
static aw_status load_document(aw_ctx *ctx, const char *path,
                               const unsigned char *buf, size_t len,
                               yaml_document_t *doc)
{
    yaml_parser_t yp;
    if (!yaml_parser_initialize(&yp))
        return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    yaml_parser_set_input_string(&yp, buf, len);
    if (!yaml_parser_load(&yp, doc)) {
        aw_status st = syntax_error(ctx, path, &yp, buf, len);
        yaml_parser_delete(&yp);
        return st;
    }
    aw_status st = AW_OK;
    if (yaml_document_get_root_node(doc)) {
        yaml_document_t next;
        if (!yaml_parser_load(&yp, &next)) {
            st = syntax_error(ctx, path, &yp, buf, len);
        }
        else {
            yaml_node_t *root = yaml_document_get_root_node(&next);
            if (root)
                st = aw_fail(ctx, AW_ERR_CONFIG,
                             "%s:%d: only one YAML document is allowed", path,
                             line_of(root));
            yaml_document_delete(&next);
        }
    }
    if (st != AW_OK)
        yaml_document_delete(doc);
    yaml_parser_delete(&yp);
    return st;
}

void aw_config_destroy(aw_config *cfg)
{
    if (!cfg)
        return;
    free(cfg->path);
    free(cfg->dir);
    free(cfg->region_name);
    free(cfg->crs);
    free(cfg->aoi_path);
    free(cfg->aoi_layer);
    free(cfg->bbox_crs);
    for (size_t i = 0; i < cfg->n_scenes; i++)
        aw_scene_free(&cfg->scenes[i]);
    free(cfg->scenes);
    for (size_t i = 0; i < cfg->n_inbox; i++)
        free(cfg->inbox[i]);
    free(cfg->inbox);
    for (size_t i = 0; i < cfg->n_inbox_rejects; i++) {
        free(cfg->inbox_rejects[i]);
        free(cfg->inbox_reject_reasons[i]);
    }
    free(cfg->inbox_rejects);
    free(cfg->inbox_reject_reasons);
    free(cfg->dem_path);
    free(cfg->zones_path);
    free(cfg->zones_layer);
    free(cfg->zones_id_field);
    free(cfg->zones_name_field);
    free(cfg->zones_kind_field);
    for (size_t i = 0; i < cfg->n_rules; i++) {
        aw_rule_cfg *r = &cfg->rules[i];
        free(r->id);
        free(r->type);
        for (size_t j = 0; j < r->n_zone_ids; j++)
            free(r->zone_ids[j]);
        free(r->zone_ids);
    }
    free(cfg->rules);
    free(cfg->out_dir);
    free(cfg->compress);
    free(cfg);
}

unsigned aw_config_needed_bands(const aw_config *cfg)
{
    unsigned bands = 0;
    if (!cfg)
        return 0;
    for (int i = 0; i < AW_IDX_COUNT; i++)
        if (cfg->indices[i])
            bands |= aw_index_get((aw_index)i)->bands;
    if ((unsigned)cfg->water_index < AW_IDX_COUNT)
        bands |= aw_index_get(cfg->water_index)->bands;
    if (cfg->water_method == AW_WATER_DSWE ||
        cfg->water_method == AW_WATER_WOFS)
        bands |= (1u << AW_BAND_COUNT) - 1u; /* all six */
    if (cfg->rasters >> AW_RASTER_RGB & 1u)
        bands |= 1u << AW_BAND_RED | 1u << AW_BAND_GREEN | 1u << AW_BAND_BLUE;
    return bands;
}

aw_status aw_config_load(aw_ctx *ctx, const char *path, aw_config **out)
{
    if (!path || !out)
        return aw_fail(ctx, AW_ERR_INTERNAL, "aw_config_load: NULL argument");
    aw_status st = AW_OK;
    size_t len = 0;
    unsigned char *buf = read_config_file(ctx, path, &len, &st);
    if (!buf)
        return st;
    yaml_document_t doc;
    st = load_document(ctx, path, buf, len, &doc);
    if (st != AW_OK) {
        free(buf);
        return st;
    }

    loader L = {.ctx = ctx, .file = path, .doc = &doc, .water_index_ok = 1};
    for (int i = 0; i < AW_IDX_COUNT; i++)
        L.index_names[i] = aw_index_get((aw_index)i)->name;
    aw_config *cfg = calloc(1, sizeof *cfg);
    if (!cfg) {
        st = aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
        goto done;
    }
    L.cfg = cfg;
    set_defaults(cfg);
    cfg->path = aw_strdup(path);
    cfg->dir = aw_path_dirname(path);
    if (cfg->dir)
        cfg->out_dir = aw_path_join(cfg->dir, "out");
    cfg->compress = aw_strdup("ZSTD");
    cfg->bbox_crs = aw_strdup("EPSG:4326");
    if (!cfg->path || !cfg->dir || !cfg->out_dir || !cfg->compress ||
        !cfg->bbox_crs) {
        st = aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
        goto done;
    }
    st = aw_sha256_file(ctx, path, cfg->sha256);
    if (st != AW_OK) {
        st = aw_fail(ctx, AW_ERR_CONFIG, "%s: cannot read config file", path);
        goto done;
    }

    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root)
        add_error(&L, 1, "", "the config file is empty");
    else
        parse_root(&L, root);
    /* ZSTD without a level: 1, not GDAL's 9. On the real scenes level 9
     * takes 5.6 to 7 times the CPU for index rasters 0.2 to 1.6 % smaller
     * (bench/levels.py). DEFLATE without one keeps GDAL's 6 (0 here). */
    if (cfg->level == 0 && cfg->compress && strcmp(cfg->compress, "ZSTD") == 0)
        cfg->level = 1;

    if (L.nomem)
        st = aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    else if (L.n_errs)
        st = report_errors(ctx, &L);
    else
        st = AW_OK;

done:
    for (size_t i = 0; i < L.n_errs; i++)
        free(L.errs[i].text);
    free(L.errs);
    free(L.smeta);
    free(L.rmeta);
    for (size_t i = 0; i < L.n_layer_zone_ids; i++)
        free(L.layer_zone_ids[i]);
    free(L.layer_zone_ids);
    yaml_document_delete(&doc);
    free(buf);
    if (st == AW_OK)
        *out = cfg;
    else
        aw_config_destroy(cfg);
    return st;
}
