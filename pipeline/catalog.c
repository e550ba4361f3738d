/* The SQLite catalog (include/aralwatch/catalog.h).
 *
 * One database per region, in WAL mode so `aralwatch status` can read while
 * a run writes. Every write of a date's results is one transaction, so a
 * run killed at any point leaves the catalog as it was before that date:
 * the next run finds the date not done and does it again. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sqlite3.h>
#include "aralwatch/catalog.h"
#include "aralwatch/util.h"
#include "aralwatch/version.h"
#include "internal.h"

struct aw_catalog {
    sqlite3 *db;
    char *path;
    int schema;
};

/* Migrations, in order: migration[k] brings schema k to k + 1. */
static const char *const migrations[AW_CATALOG_SCHEMA] = {
    "CREATE TABLE runs ("
    "  id INTEGER PRIMARY KEY,"
    "  started TEXT NOT NULL, finished TEXT, exit_status INTEGER,"
    "  software TEXT NOT NULL, config_path TEXT, config_sha256 TEXT,"
    "  host TEXT, pid INTEGER);"
    "CREATE TABLE dates ("
    "  date TEXT PRIMARY KEY,"
    "  fingerprint TEXT NOT NULL, status TEXT NOT NULL,"
    "  run_id INTEGER REFERENCES runs(id), updated TEXT NOT NULL);"
    "CREATE TABLE scenes ("
    "  id TEXT PRIMARY KEY,"
    "  sensor TEXT, date TEXT, product TEXT, status TEXT NOT NULL,"
    "  reason TEXT, valid_fraction REAL, cloud_pct REAL,"
    "  run_id INTEGER REFERENCES runs(id), updated TEXT NOT NULL);"
    "CREATE TABLE zone_metrics ("
    "  date TEXT NOT NULL, zone_id TEXT NOT NULL, metric TEXT NOT NULL,"
    "  value REAL, run_id INTEGER REFERENCES runs(id),"
    "  PRIMARY KEY (date, zone_id, metric));"
    "CREATE TABLE alerts ("
    "  alert_id TEXT PRIMARY KEY,"
    "  date TEXT NOT NULL, zone_id TEXT NOT NULL, rule_id TEXT NOT NULL,"
    "  level TEXT NOT NULL, record TEXT NOT NULL,"
    "  run_id INTEGER REFERENCES runs(id));"
    "CREATE INDEX alerts_zone ON alerts (zone_id, date);",
    /* 1 -> 2: scene footprints and input checksums; a checksum cache so a
     * file whose time changed but whose content did not is not processed
     * again, and one whose content changed always is. */
    "ALTER TABLE scenes ADD COLUMN footprint TEXT;"
    "ALTER TABLE scenes ADD COLUMN checksums TEXT;"
    "CREATE TABLE files ("
    "  path TEXT PRIMARY KEY, size INTEGER NOT NULL,"
    "  mtime_ns INTEGER NOT NULL, sha256 TEXT NOT NULL,"
    "  checked TEXT NOT NULL);",
    /* 2 -> 3: baselines (yearly summaries, periods, zones), the state of
     * every alert rule per zone, and the forecasts. */
    "CREATE TABLE baseline_years ("
    "  year INTEGER NOT NULL, period TEXT NOT NULL,"
    "  fingerprint TEXT NOT NULL, n_dates INTEGER NOT NULL,"
    "  built TEXT NOT NULL, PRIMARY KEY (year, period));"
    "CREATE TABLE baseline_periods ("
    "  period TEXT PRIMARY KEY, from_date TEXT NOT NULL,"
    "  to_date TEXT NOT NULL, years TEXT NOT NULL,"
    "  n_years INTEGER NOT NULL, min_years INTEGER NOT NULL,"
    "  built TEXT NOT NULL);"
    "CREATE TABLE zone_baseline ("
    "  period TEXT NOT NULL, zone_id TEXT NOT NULL, metric TEXT NOT NULL,"
    "  n_obs INTEGER NOT NULL, n_years INTEGER NOT NULL,"
    "  median REAL, p10 REAL, p25 REAL, p75 REAL, p90 REAL,"
    "  mean REAL, std REAL, PRIMARY KEY (period, zone_id, metric));"
    "CREATE TABLE alert_state ("
    "  rule_id TEXT NOT NULL, zone_id TEXT NOT NULL, level TEXT NOT NULL,"
    "  onset TEXT, last_record TEXT, date TEXT NOT NULL,"
    "  run_id INTEGER REFERENCES runs(id), PRIMARY KEY (rule_id, zone_id));"
    "CREATE TABLE forecasts ("
    "  date TEXT NOT NULL, zone_id TEXT NOT NULL, rule_id TEXT NOT NULL,"
    "  level TEXT NOT NULL, projected TEXT, record TEXT NOT NULL,"
    "  run_id INTEGER REFERENCES runs(id),"
    "  PRIMARY KEY (date, zone_id, rule_id, level));"};

sqlite3 *aw_catalog_db(aw_catalog *cat)
{
    return cat->db;
}

static aw_status db_fail(aw_ctx *ctx, aw_catalog *cat, const char *what)
{
    return aw_fail(ctx, AW_ERR_IO, "%s: catalog %s: %s", cat->path, what,
                   sqlite3_errmsg(cat->db));
}

static aw_status exec(aw_ctx *ctx, aw_catalog *cat, const char *sql)
{
    char *err = NULL;
    if (sqlite3_exec(cat->db, sql, NULL, NULL, &err) == SQLITE_OK)
        return AW_OK;
    aw_status st = aw_fail(ctx, AW_ERR_IO, "%s: catalog: %s", cat->path,
                           err ? err : "error");
    sqlite3_free(err);
    return st;
}

aw_status aw_catalog_open(aw_ctx *ctx, const char *path, aw_catalog **out)
{
    aw_catalog *cat = calloc(1, sizeof *cat);
    if (!cat || !(cat->path = aw_strdup(path))) {
        free(cat);
        return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    }
    aw_status st = AW_OK;
    if (sqlite3_open_v2(path, &cat->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                        NULL) != SQLITE_OK) {
        st = db_fail(ctx, cat, "cannot open");
        goto done;
    }
    sqlite3_busy_timeout(cat->db, 10000);
    st = exec(ctx, cat,
              "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
              " PRAGMA foreign_keys=ON;");
    if (st != AW_OK)
        goto done;
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(cat->db, "PRAGMA user_version", -1, &q, NULL) !=
            SQLITE_OK ||
        sqlite3_step(q) != SQLITE_ROW) {
        sqlite3_finalize(q);
        st = db_fail(ctx, cat, "cannot read the schema version");
        goto done;
    }
    cat->schema = sqlite3_column_int(q, 0);
    sqlite3_finalize(q);
    if (cat->schema > AW_CATALOG_SCHEMA) {
        st = aw_fail(ctx, AW_ERR_IO,
                     "%s: catalog schema %d is newer than this aralwatch "
                     "(%d); use a newer version",
                     path, cat->schema, AW_CATALOG_SCHEMA);
        goto done;
    }
    /* Each migration and its version bump in one transaction. */
    while (cat->schema < AW_CATALOG_SCHEMA && st == AW_OK) {
        char bump[64];
        snprintf(bump, sizeof bump, "PRAGMA user_version=%d;", cat->schema + 1);
        st = exec(ctx, cat, "BEGIN IMMEDIATE;");
        if (st == AW_OK)
            st = exec(ctx, cat, migrations[cat->schema]);
        if (st == AW_OK)
            st = exec(ctx, cat, bump);
        if (st == AW_OK)
            st = exec(ctx, cat, "COMMIT;");
        else
            sqlite3_exec(cat->db, "ROLLBACK;", NULL, NULL, NULL);
        if (st == AW_OK)
            cat->schema++;
    }
done:
    if (st != AW_OK) {
        aw_catalog_close(cat);
        return st;
    }
    *out = cat;
    return AW_OK;
}

void aw_catalog_close(aw_catalog *cat)
{
    if (!cat)
        return;
    sqlite3_close(cat->db);
    free(cat->path);
    free(cat);
}

int aw_catalog_schema(const aw_catalog *cat)
{
    return cat->schema;
}

/* A value bound to a statement parameter. */
typedef struct val {
    char type; /* 's' text (NULL: SQL NULL), 'd' double, 'i' int64 */
    const char *s;
    double d;
    int64_t i;
} val;

#define TXT(x) ((val){'s', (x), 0.0, 0})
#define DBL(x) ((val){'d', NULL, (x), 0})
#define INT(x) ((val){'i', NULL, 0.0, (x)})

static aw_status prepare(aw_ctx *ctx, aw_catalog *cat, const char *sql,
                         const val *v, size_t n, sqlite3_stmt **out)
{
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(cat->db, sql, -1, &q, NULL) != SQLITE_OK)
        return db_fail(ctx, cat, "prepare");
    for (size_t k = 0; k < n; k++) {
        int i = (int)k + 1, rc;
        if (v[k].type == 'd')
            rc = sqlite3_bind_double(q, i, v[k].d);
        else if (v[k].type == 'i')
            rc = sqlite3_bind_int64(q, i, v[k].i);
        else if (v[k].s)
            rc = sqlite3_bind_text(q, i, v[k].s, -1, SQLITE_TRANSIENT);
        else
            rc = sqlite3_bind_null(q, i);
        if (rc != SQLITE_OK) {
            sqlite3_finalize(q);
            return db_fail(ctx, cat, "bind");
        }
    }
    *out = q;
    return AW_OK;
}

static aw_status write_sql(aw_ctx *ctx, aw_catalog *cat, const char *sql,
                           const val *v, size_t n)
{
    sqlite3_stmt *q = NULL;
    aw_status st = prepare(ctx, cat, sql, v, n, &q);
    if (st != AW_OK)
        return st;
    int rc = sqlite3_step(q);
    sqlite3_finalize(q);
    return rc == SQLITE_DONE ? AW_OK : db_fail(ctx, cat, "write");
}

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

aw_status aw_catalog_run_begin(aw_ctx *ctx, aw_catalog *cat,
                               const char *config_path,
                               const char *config_sha256, int64_t *run_id)
{
    char now[21], host[256] = "";
    aw_utc_now(now);
    (void)gethostname(host, sizeof host - 1);
    val v[] = {TXT(now),         TXT("aralwatch " AW_VERSION),
               TXT(config_path), TXT(config_sha256),
               TXT(host),        INT((int64_t)getpid())};
    aw_status st = write_sql(ctx, cat,
                             "INSERT INTO runs (started, software, "
                             "config_path, config_sha256, host, pid) "
                             "VALUES (?, ?, ?, ?, ?, ?)",
                             v, N_OF(v));
    if (st == AW_OK)
        *run_id = (int64_t)sqlite3_last_insert_rowid(cat->db);
    return st;
}

aw_status aw_catalog_run_end(aw_ctx *ctx, aw_catalog *cat, int64_t run_id,
                             int exit_status)
{
    char now[21];
    aw_utc_now(now);
    val v[] = {TXT(now), INT(exit_status), INT(run_id)};
    return write_sql(ctx, cat,
                     "UPDATE runs SET finished = ?, exit_status = ? WHERE "
                     "id = ?",
                     v, N_OF(v));
}

aw_status aw_catalog_date_done(aw_ctx *ctx, aw_catalog *cat, const char *date,
                               char fingerprint[65], int *done)
{
    val v[] = {TXT(date)};
    sqlite3_stmt *q = NULL;
    aw_status st = prepare(ctx, cat,
                           "SELECT fingerprint FROM dates WHERE date = ? AND "
                           "status = 'done'",
                           v, N_OF(v), &q);
    if (st != AW_OK)
        return st;
    int rc = sqlite3_step(q);
    *done = rc == SQLITE_ROW;
    fingerprint[0] = '\0';
    if (*done) {
        const unsigned char *t = sqlite3_column_text(q, 0);
        snprintf(fingerprint, 65, "%s", t ? (const char *)t : "");
    }
    sqlite3_finalize(q);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return db_fail(ctx, cat, "read");
    return AW_OK;
}

aw_status aw_catalog_forget(aw_ctx *ctx, aw_catalog *cat, const char *date,
                            const char *since)
{
    val v[] = {TXT(date), TXT(since)};
    return write_sql(ctx, cat,
                     "DELETE FROM dates WHERE date = ?1 OR (?2 IS NOT NULL "
                     "AND date >= ?2)",
                     v, N_OF(v));
}

aw_status aw_catalog_begin(aw_ctx *ctx, aw_catalog *cat)
{
    return exec(ctx, cat, "BEGIN IMMEDIATE;");
}

aw_status aw_catalog_commit(aw_ctx *ctx, aw_catalog *cat)
{
    return exec(ctx, cat, "COMMIT;");
}

void aw_catalog_rollback(aw_catalog *cat)
{
    sqlite3_exec(cat->db, "ROLLBACK;", NULL, NULL, NULL);
}

aw_status aw_catalog_put_date(aw_ctx *ctx, aw_catalog *cat, int64_t run_id,
                              const char *date, const char *fingerprint,
                              const char *status)
{
    char now[21];
    aw_utc_now(now);
    /* A date done again replaces what it had: metrics it no longer has
     * (NaN now) must not survive from the last time, nor its alerts and
     * forecasts. */
    val d[] = {TXT(date)};
    static const char *const clear[] = {
        "DELETE FROM zone_metrics WHERE date = ?",
        "DELETE FROM alerts WHERE date = ?",
        "DELETE FROM forecasts WHERE date = ?"};
    for (size_t i = 0; i < N_OF(clear); i++) {
        aw_status st = write_sql(ctx, cat, clear[i], d, N_OF(d));
        if (st != AW_OK)
            return st;
    }
    val v[] = {TXT(date), TXT(fingerprint), TXT(status), INT(run_id), TXT(now)};
    return write_sql(ctx, cat,
                     "INSERT OR REPLACE INTO dates (date, fingerprint, "
                     "status, run_id, updated) VALUES (?, ?, ?, ?, ?)",
                     v, N_OF(v));
}

aw_status aw_catalog_put_scene(aw_ctx *ctx, aw_catalog *cat, int64_t run_id,
                               const char *id, const char *sensor,
                               const char *date, const char *product,
                               const char *status, const char *reason,
                               double valid_fraction, double cloud_pct,
                               const char *footprint, const char *checksums)
{
    char now[21];
    aw_utc_now(now);
    val v[] = {TXT(id),     TXT(sensor), TXT(date),           TXT(product),
               TXT(status), TXT(reason), DBL(valid_fraction), DBL(cloud_pct),
               INT(run_id), TXT(now),    TXT(footprint),      TXT(checksums)};
    return write_sql(ctx, cat,
                     "INSERT OR REPLACE INTO scenes (id, sensor, date, "
                     "product, status, reason, valid_fraction, cloud_pct, "
                     "run_id, updated, footprint, checksums) VALUES (?, ?, ?, "
                     "?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     v, N_OF(v));
}

aw_status aw_catalog_get_file(aw_ctx *ctx, aw_catalog *cat, const char *path,
                              long long size, long long mtime_ns,
                              char sha256[65], int *found)
{
    val v[] = {TXT(path), INT(size), INT(mtime_ns)};
    sqlite3_stmt *q = NULL;
    aw_status st = prepare(ctx, cat,
                           "SELECT sha256 FROM files WHERE path = ? AND size = "
                           "? AND mtime_ns = ?",
                           v, N_OF(v), &q);
    if (st != AW_OK)
        return st;
    int rc = sqlite3_step(q);
    const unsigned char *t =
        rc == SQLITE_ROW ? sqlite3_column_text(q, 0) : NULL;
    *found = t && strlen((const char *)t) == 64;
    snprintf(sha256, 65, "%s", *found ? (const char *)t : "");
    sqlite3_finalize(q);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return db_fail(ctx, cat, "read");
    return AW_OK;
}

aw_status aw_catalog_put_file(aw_ctx *ctx, aw_catalog *cat, const char *path,
                              long long size, long long mtime_ns,
                              const char *sha256)
{
    char now[21];
    aw_utc_now(now);
    val v[] = {TXT(path), INT(size), INT(mtime_ns), TXT(sha256), TXT(now)};
    return write_sql(ctx, cat,
                     "INSERT OR REPLACE INTO files (path, size, mtime_ns, "
                     "sha256, checked) VALUES (?, ?, ?, ?, ?)",
                     v, N_OF(v));
}

aw_status aw_catalog_put_metric(aw_ctx *ctx, aw_catalog *cat, int64_t run_id,
                                const char *date, const char *zone_id,
                                const char *metric, double value)
{
    val v[] = {TXT(date), TXT(zone_id), TXT(metric), DBL(value), INT(run_id)};
    return write_sql(ctx, cat,
                     "INSERT OR REPLACE INTO zone_metrics (date, zone_id, "
                     "metric, value, run_id) VALUES (?, ?, ?, ?, ?)",
                     v, N_OF(v));
}

aw_status aw_catalog_put_alert(aw_ctx *ctx, aw_catalog *cat, int64_t run_id,
                               const char *alert_id, const char *date,
                               const char *zone_id, const char *rule_id,
                               const char *level, const char *record_json)
{
    val v[] = {TXT(alert_id), TXT(date),        TXT(zone_id), TXT(rule_id),
               TXT(level),    TXT(record_json), INT(run_id)};
    return write_sql(ctx, cat,
                     "INSERT OR REPLACE INTO alerts (alert_id, date, "
                     "zone_id, rule_id, level, record, run_id) VALUES (?, ?, "
                     "?, ?, ?, ?, ?)",
                     v, N_OF(v));
}

static aw_status print_rows(aw_ctx *ctx, aw_catalog *cat, FILE *out,
                            const char *title, const char *sql)
{
    sqlite3_stmt *q = NULL;
    aw_status st = prepare(ctx, cat, sql, NULL, 0, &q);
    if (st != AW_OK)
        return st;
    fprintf(out, "%s\n", title);
    int rc, rows = 0;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        fputs("  ", out);
        for (int c = 0; c < sqlite3_column_count(q); c++) {
            const unsigned char *t = sqlite3_column_text(q, c);
            fprintf(out, "%s%s", c ? "  " : "", t ? (const char *)t : "-");
        }
        fputc('\n', out);
        rows++;
    }
    if (!rows)
        fputs("  (none)\n", out);
    sqlite3_finalize(q);
    return rc == SQLITE_DONE ? AW_OK : db_fail(ctx, cat, "read");
}

aw_status aw_catalog_print_status(aw_ctx *ctx, aw_catalog *cat, FILE *out)
{
    fprintf(out, "catalog %s (schema %d)\n", cat->path, cat->schema);
    aw_status st = print_rows(
        ctx, cat, out, "last run (started, finished, exit status, software):",
        "SELECT started, finished, exit_status, software FROM runs ORDER BY "
        "id DESC LIMIT 1");
    if (st == AW_OK)
        st = print_rows(ctx, cat, out, "dates (date, status, updated):",
                        "SELECT date, status, updated FROM dates ORDER BY "
                        "date");
    if (st == AW_OK)
        st = print_rows(ctx, cat, out,
                        "scenes not used (id, date, status, reason):",
                        "SELECT id, date, status, reason FROM scenes WHERE "
                        "status != 'used' ORDER BY date, id");
    if (st == AW_OK)
        st = print_rows(ctx, cat, out,
                        "latest alert per zone (zone, date, rule, level):",
                        "SELECT zone_id, date, rule_id, level FROM alerts a "
                        "WHERE date = (SELECT MAX(date) FROM alerts b WHERE "
                        "b.zone_id = a.zone_id) ORDER BY zone_id, rule_id");
    if (st == AW_OK)
        st = print_rows(ctx, cat, out,
                        "alerts in force (zone, rule, level, since, as of):",
                        "SELECT zone_id, rule_id, level, onset, date FROM "
                        "alert_state WHERE level != 'none' ORDER BY zone_id, "
                        "rule_id");
    if (st == AW_OK)
        st = print_rows(ctx, cat, out,
                        "forecasts of the latest date (zone, rule, level, "
                        "projected date):",
                        "SELECT zone_id, rule_id, level, projected FROM "
                        "forecasts WHERE date = (SELECT MAX(date) FROM "
                        "dates WHERE status = 'done') ORDER BY zone_id, "
                        "rule_id, level");
    if (st == AW_OK)
        st = print_rows(ctx, cat, out,
                        "baseline periods (period, from, to, years):",
                        "SELECT period, from_date, to_date, years FROM "
                        "baseline_periods ORDER BY period");
    return st;
}
