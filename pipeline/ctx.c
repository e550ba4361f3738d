/* Run context: last error message and a levelled, timestamped logger. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "aralwatch/ctx.h"
#include "aralwatch/util.h"

#define AW_ERRMSG_MAX 8192

struct aw_ctx {
    aw_log_level level;
    char errmsg[AW_ERRMSG_MAX];
};

aw_ctx *aw_ctx_create(void)
{
    aw_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return NULL;
    ctx->level = AW_LOG_INFO;
    return ctx;
}

void aw_ctx_destroy(aw_ctx *ctx)
{
    free(ctx);
}

void aw_ctx_set_log_level(aw_ctx *ctx, aw_log_level level)
{
    ctx->level = level;
}

aw_log_level aw_ctx_log_level(const aw_ctx *ctx)
{
    return ctx->level;
}

aw_status aw_fail(aw_ctx *ctx, aw_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->errmsg, sizeof ctx->errmsg, fmt, ap);
    va_end(ap);
    return st;
}

const char *aw_ctx_errmsg(const aw_ctx *ctx)
{
    return ctx->errmsg;
}

void aw_ctx_clear_error(aw_ctx *ctx)
{
    ctx->errmsg[0] = '\0';
}

static const char *level_name(aw_log_level level)
{
    switch (level) {
    case AW_LOG_ERROR:
        return "ERROR";
    case AW_LOG_WARN:
        return "WARN ";
    case AW_LOG_INFO:
        return "INFO ";
    case AW_LOG_DEBUG:
        return "DEBUG";
    }
    return "?";
}

void aw_vlog(aw_ctx *ctx, aw_log_level level, const char *fmt, va_list ap)
{
    if (level > ctx->level)
        return;
    char ts[21];
    aw_utc_now(ts);
    char line[4096];
    vsnprintf(line, sizeof line, fmt, ap);
    fprintf(stderr, "%s %s %s\n", ts, level_name(level), line);
}

void aw_log(aw_ctx *ctx, aw_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    aw_vlog(ctx, level, fmt, ap);
    va_end(ap);
}
