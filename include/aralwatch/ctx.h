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

/* Log one line: "<UTC time> <LEVEL> <message>" on stderr when level is at
 * or below the context's level. */
void aw_log(aw_ctx *ctx, aw_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void aw_vlog(aw_ctx *ctx, aw_log_level level, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

#endif
