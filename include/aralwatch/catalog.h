/* The catalog: an SQLite database (WAL mode) next to a region's outputs
 * that remembers every run, every date's inputs and status, every scene,
 * the zone metrics and the alerts. It is what makes nightly runs
 * idempotent (a date whose inputs and config did not change is not
 * processed again) and what later issues build time series on.
 *
 * Schema versions are migrations applied in order (PRAGMA user_version). */
#ifndef ARALWATCH_CATALOG_H
#define ARALWATCH_CATALOG_H

#include <stdint.h>
#include <stdio.h>
#include "aralwatch/ctx.h"

#define AW_CATALOG_SCHEMA 3

struct aw_catalog;
typedef struct aw_catalog aw_catalog;

/* Open (creating and migrating as needed) the catalog at path. */
aw_status aw_catalog_open(aw_ctx *ctx, const char *path, aw_catalog **out);
void aw_catalog_close(aw_catalog *cat); /* accepts NULL */

/* Schema version of an open catalog. */
int aw_catalog_schema(const aw_catalog *cat);

/* A run: inserted at the start, finished with its exit status. */
aw_status aw_catalog_run_begin(aw_ctx *ctx, aw_catalog *cat,
                               const char *config_path,
                               const char *config_sha256, int64_t *run_id);
aw_status aw_catalog_run_end(aw_ctx *ctx, aw_catalog *cat, int64_t run_id,
                             int exit_status);

/* The fingerprint stored for a date when it was last done, or "" (and 0)
 * when it was never done. */
aw_status aw_catalog_date_done(aw_ctx *ctx, aw_catalog *cat, const char *date,
                               char fingerprint[65], int *done);

/* Forget that dates were done, so the next run does them again: one date,
 * or every date >= since (either may be NULL). */
aw_status aw_catalog_forget(aw_ctx *ctx, aw_catalog *cat, const char *date,
                            const char *since);

/* Begin/commit the transaction that records one date's results. */
aw_status aw_catalog_begin(aw_ctx *ctx, aw_catalog *cat);
aw_status aw_catalog_commit(aw_ctx *ctx, aw_catalog *cat);
void aw_catalog_rollback(aw_catalog *cat);

aw_status aw_catalog_put_date(aw_ctx *ctx, aw_catalog *cat, int64_t run_id,
                              const char *date, const char *fingerprint,
                              const char *status);
/* A scene's row. footprint: a GeoJSON polygon in WGS 84 (or NULL);
 * checksums: a JSON array of its input files with their SHA-256. */
aw_status aw_catalog_put_scene(aw_ctx *ctx, aw_catalog *cat, int64_t run_id,
                               const char *id, const char *sensor,
                               const char *date, const char *product,
                               const char *status, const char *reason,
                               double valid_fraction, double cloud_pct,
                               const char *footprint, const char *checksums);

/* The checksum cache: the SHA-256 of a file last seen with this size and
 * modification time (nanoseconds). *found is 0 when the file is unknown or
 * has changed size or time since. */
aw_status aw_catalog_get_file(aw_ctx *ctx, aw_catalog *cat, const char *path,
                              long long size, long long mtime_ns,
                              char sha256[65], int *found);
aw_status aw_catalog_put_file(aw_ctx *ctx, aw_catalog *cat, const char *path,
                              long long size, long long mtime_ns,
                              const char *sha256);
aw_status aw_catalog_put_metric(aw_ctx *ctx, aw_catalog *cat, int64_t run_id,
                                const char *date, const char *zone_id,
                                const char *metric, double value);
aw_status aw_catalog_put_alert(aw_ctx *ctx, aw_catalog *cat, int64_t run_id,
                               const char *alert_id, const char *date,
                               const char *zone_id, const char *rule_id,
                               const char *level, const char *record_json);

/* Human summary for `aralwatch status`. */
aw_status aw_catalog_print_status(aw_ctx *ctx, aw_catalog *cat, FILE *out);

#endif
