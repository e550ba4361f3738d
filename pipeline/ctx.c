/* Run context: last error message and a levelled, timestamped logger. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "aralwatch/ctx.h"
#include "aralwatch/util.h"

#define AW_ERRMSG_MAX 16384

struct aw_ctx {
    aw_log_level level;
    aw_log_format format;
    char date[16], scene[256], stage[32];
    char errmsg[AW_ERRMSG_MAX];
    int rank; /* MPI rank shown in log lines; -1: single process */
};

aw_ctx *aw_ctx_create(void)
{
    aw_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return NULL;
    ctx->level = AW_LOG_INFO;
    ctx->rank = -1;
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

void aw_ctx_set_log_format(aw_ctx *ctx, aw_log_format format)
{
    ctx->format = format;
}

aw_log_format aw_ctx_log_format(const aw_ctx *ctx)
{
    return ctx->format;
}

void aw_ctx_set_scope(aw_ctx *ctx, const char *date, const char *scene,
                      const char *stage)
{
    snprintf(ctx->date, sizeof ctx->date, "%s", date ? date : "");
    snprintf(ctx->scene, sizeof ctx->scene, "%s", scene ? scene : "");
    snprintf(ctx->stage, sizeof ctx->stage, "%s",
             stage && stage[0] ? stage : "run");
}

static const char *json_level(aw_log_level level)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    return level >= AW_LOG_ERROR && level <= AW_LOG_DEBUG ? names[level] : "?";
}

void aw_vlog(aw_ctx *ctx, aw_log_level level, const char *fmt, va_list ap)
{
    if (level > ctx->level)
        return;
    char ts[21];
    aw_utc_now(ts);
    char line[4096];
    vsnprintf(line, sizeof line, fmt, ap);
    const char *stage = ctx->stage[0] ? ctx->stage : "run";
    if (ctx->format == AW_LOG_JSON) {
        json_t *o = json_object();
        json_object_set_new(o, "time", json_string(ts));
        json_object_set_new(o, "level", json_string(json_level(level)));
        json_object_set_new(o, "stage", json_string(stage));
        if (ctx->rank >= 0)
            json_object_set_new(o, "rank", json_integer(ctx->rank));
        if (ctx->date[0])
            json_object_set_new(o, "date", json_string(ctx->date));
        if (ctx->scene[0])
            json_object_set_new(o, "scene", json_string(ctx->scene));
        /* A message that is not valid UTF-8 (a file name) is kept with
         * its bytes replaced rather than lost. */
        json_t *m = json_string(line);
        if (!m) {
            for (char *c = line; *c; c++)
                if ((unsigned char)*c >= 0x80)
                    *c = '?';
            m = json_string(line);
        }
        json_object_set_new(o, "message", m);
        char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(o);
        if (text) {
            fprintf(stderr, "%s\n", text);
            free(text);
        }
        return;
    }
    char rank[24] = "";
    if (ctx->rank >= 0)
        snprintf(rank, sizeof rank, "rank %d ", ctx->rank);
    fprintf(stderr, "%s %s [%s%s%s%s%s%s] %s\n", ts, level_name(level), rank,
            stage, ctx->date[0] ? " " : "", ctx->date, ctx->scene[0] ? " " : "",
            ctx->scene, line);
}

void aw_ctx_set_rank(aw_ctx *ctx, int rank)
{
    ctx->rank = rank;
}

void aw_log(aw_ctx *ctx, aw_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    aw_vlog(ctx, level, fmt, ap);
    va_end(ap);
}
