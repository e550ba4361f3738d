/* Alert rule evaluation (pipeline-internal). */
#ifndef ARALWATCH_ALERTS_H
#define ARALWATCH_ALERTS_H

#include <jansson.h>
#include "aralwatch/pipeline.h"

struct sqlite3;

typedef struct aw_alert_input {
    const char *date;             /* YYYY-MM-DD */
    const char *const *scene_ids; /* the scenes the date's mosaic used */
    size_t n_scenes;
    struct sqlite3 *db; /* the catalog: the zones' series before `date`
                           (NULL: no history) */
} aw_alert_input;

/* What the evaluation of one date gives (JSON arrays, appended to). */
typedef struct aw_alert_out {
    json_t *alerts;    /* records issued on the date: new, update, cancel */
    json_t *notices;   /* insufficient data */
    json_t *active;    /* alerts still in force, not issued again */
    json_t *forecasts; /* projected crossings (never alerts) */
    json_t *states;    /* the level of every rule in every zone */
    size_t n_alerts;   /* records issued at watch level or above */
} aw_alert_out;

/* Highest level (0 watch, 1 warning, 2 alert) the value reaches under the
 * rule, or -1 for none (also for NaN). */
int aw_rule_level(const aw_rule_cfg *rule, double value);

/* Whether the rule selects the zone (by kind and/or id). */
int aw_rule_applies(const aw_rule_cfg *rule, const aw_zone *z);

const char *aw_level_name(int level);
const char *aw_zone_kind_name(aw_zone_kind k);

/* Evaluate every rule on every zone against its history (pipeline/alerts.c
 * explains the state machine). */
aw_status aw_alerts_eval(aw_ctx *ctx, const aw_config *cfg,
                         const aw_zones *zones, const aw_zone_stats *stats,
                         const aw_alert_input *in, aw_alert_out *out);

#endif
