/* The run context: error state and logging.
 *
 * Like PROJ's PJ_CONTEXT, the context carries the last error message and the
 * log sink, so no global error state exists. A context is used by one thread
 * at a time; kernels never see it. */
#ifndef ARALWATCH_CTX_H
#define ARALWATCH_CTX_H

#include <stdarg.h>
#include "aralwatch/status.h"

typedef enum aw_log_level {
    AW_LOG_ERROR = 0,
    AW_LOG_WARN = 1,
    AW_LOG_INFO = 2,
    AW_LOG_DEBUG = 3
} aw_log_level;

struct aw_ctx;
typedef struct aw_ctx aw_ctx;

/* Create a context logging to stderr at AW_LOG_INFO. NULL on no memory. */
aw_ctx *aw_ctx_create(void);
void aw_ctx_destroy(aw_ctx *ctx); /* accepts NULL */

void aw_ctx_set_log_level(aw_ctx *ctx, aw_log_level level);
aw_log_level aw_ctx_log_level(const aw_ctx *ctx);

/* Store a formatted error message in ctx and return st, so call sites read
 * `return aw_fail(ctx, AW_ERR_INPUT, "%s: band %d missing", path, b);`.
 * A later aw_fail replaces the message. */
aw_status aw_fail(aw_ctx *ctx, aw_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The message of the last aw_fail, or "" if none. Owned by ctx. */
const char *aw_ctx_errmsg(const aw_ctx *ctx);
void aw_ctx_clear_error(aw_ctx *ctx);

/* Log lines are text (default) or one JSON object per line, for log
 * collectors (`--log-format json`). */
typedef enum aw_log_format { AW_LOG_TEXT = 0, AW_LOG_JSON = 1 } aw_log_format;
void aw_ctx_set_log_format(aw_ctx *ctx, aw_log_format format);
/* MPI runs: the rank every log line names (-1, the default: none). */
void aw_ctx_set_rank(aw_ctx *ctx, int rank);
aw_log_format aw_ctx_log_format(const aw_ctx *ctx);

/* What the following log lines are about: the date, the scene id and the
 * stage (NULL or "" for none; stage defaults to "run"). Copied. */
void aw_ctx_set_scope(aw_ctx *ctx, const char *date, const char *scene,
                      const char *stage);

/* Log one event on stderr when level is at or below the context's level.
 * Text: "<UTC time> <LEVEL> [<stage> <date> <scene>] <message>";
 * JSON: {"time", "level", "stage", "date", "scene", "message"} (absent
 * scope fields omitted). */
void aw_log(aw_ctx *ctx, aw_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void aw_vlog(aw_ctx *ctx, aw_log_level level, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

#endif
