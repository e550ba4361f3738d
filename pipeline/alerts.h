/* Alert rule evaluation (pipeline-internal). */
#ifndef ARALWATCH_ALERTS_H
#define ARALWATCH_ALERTS_H

#include <jansson.h>
#include "aralwatch/pipeline.h"

typedef struct aw_alert_input {
    const char *date;             /* YYYY-MM-DD */
    const char *const *scene_ids; /* the scenes the date's mosaic used */
    size_t n_scenes;
} aw_alert_input;

/* Highest level (0 watch, 1 warning, 2 alert) the value reaches under the
 * rule, or -1 for none (also for NaN). */
int aw_rule_level(const aw_rule_cfg *rule, double value);

/* Whether the rule selects the zone (by kind and/or id). */
int aw_rule_applies(const aw_rule_cfg *rule, const aw_zone *z);

const char *aw_level_name(int level);
const char *aw_zone_kind_name(aw_zone_kind k);

/* Evaluate every rule on every zone; append alert records to `alerts` and
 * insufficient-data notices to `notices` (JSON arrays). */
aw_status aw_alerts_eval(aw_ctx *ctx, const aw_config *cfg,
                         const aw_zones *zones, const aw_zone_stats *stats,
                         const aw_alert_input *in, json_t *alerts,
                         json_t *notices, size_t *n_alerts);

#endif
