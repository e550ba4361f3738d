/* Alert rules, first version: a zone metric compared with fixed thresholds
 * per level (watch / warning / alert), gated by a minimum valid fraction
 * below which the zone gets an "insufficient data" notice instead.
 *
 * Records carry the fields of DOMAIN.md §5.7 that apply without a baseline
 * or history. The rule engine is a pure evaluation (aw_rule_level) plus the
 * record builder, so baseline metrics, persistence and supersedes chains
 * (a later issue) add metrics and state without changing this shape. */
#include <math.h>
#include <string.h>
#include "aralwatch/util.h"
#include "aralwatch/version.h"
#include "alerts.h"

static const char *const level_names[3] = {"watch", "warning", "alert"};
/* CAP 1.2 severity for each level. */
static const char *const level_severity[3] = {"Minor", "Moderate", "Severe"};

const char *aw_level_name(int level)
{
    return level >= 0 && level < 3 ? level_names[level] : "none";
}

int aw_rule_level(const aw_rule_cfg *rule, double value)
{
    if (!isfinite(value))
        return -1;
    int level = -1;
    for (int l = 0; l < 3; l++) {
        if (!rule->has_level[l])
            continue;
        int hit = rule->cmp == AW_CMP_BELOW ? value < rule->level[l]
                                            : value > rule->level[l];
        if (hit)
            level = l;
    }
    return level;
}

int aw_rule_applies(const aw_rule_cfg *rule, const aw_zone *z)
{
    if (rule->kind_set && rule->kind != z->kind)
        return 0;
    if (rule->n_zone_ids == 0)
        return 1;
    for (size_t i = 0; i < rule->n_zone_ids; i++)
        if (strcmp(rule->zone_ids[i], z->id) == 0)
            return 1;
    return 0;
}

static const char *kind_name(aw_zone_kind k)
{
    switch (k) {
    case AW_ZONE_WATERBODY:
        return "waterbody";
    case AW_ZONE_CROPLAND:
        return "cropland";
    case AW_ZONE_OTHER:
        return "other";
    }
    return "other";
}

const char *aw_zone_kind_name(aw_zone_kind k)
{
    return kind_name(k);
}

static json_t *num_or_null(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static json_t *thresholds_json(const aw_rule_cfg *r, double min_valid)
{
    json_t *t = json_object();
    char text[256];
    size_t used =
        (size_t)snprintf(text, sizeof text, "%s %s", aw_metric_name(r->metric),
                         r->cmp == AW_CMP_BELOW ? "below" : "above");
    for (int l = 0; l < 3; l++) {
        if (!r->has_level[l])
            continue;
        json_object_set_new(t, level_names[l], json_real(r->level[l]));
        if (used < sizeof text)
            used += (size_t)snprintf(text + used, sizeof text - used, " %s %g",
                                     level_names[l], r->level[l]);
    }
    json_object_set_new(t, "rule", json_string(text));
    json_object_set_new(t, "min_valid_fraction", json_real(min_valid));
    return t;
}

aw_status aw_alerts_eval(aw_ctx *ctx, const aw_config *cfg,
                         const aw_zones *zones, const aw_zone_stats *stats,
                         const aw_alert_input *in, json_t *alerts,
                         json_t *notices, size_t *n_alerts)
{
    char created[21];
    aw_utc_now(created);
    *n_alerts = 0;
    for (size_t ri = 0; ri < cfg->n_rules; ri++) {
        const aw_rule_cfg *r = &cfg->rules[ri];
        double min_valid = r->min_valid_fraction;
        for (size_t zi = 0; zi < zones->n; zi++) {
            const aw_zone *z = &zones->z[zi];
            const aw_zone_stats *s = &stats[zi];
            if (!aw_rule_applies(r, z))
                continue;
            if (s->valid_fraction < min_valid) {
                json_t *n = json_object();
                json_object_set_new(n, "status",
                                    json_string("insufficient_data"));
                json_object_set_new(n, "rule_id", json_string(r->id));
                json_object_set_new(n, "type", json_string(r->type));
                json_object_set_new(n, "zone_id", json_string(z->id));
                json_object_set_new(n, "zone_name", json_string(z->name));
                json_object_set_new(n, "valid_fraction",
                                    json_real(s->valid_fraction));
                json_object_set_new(n, "min_valid_fraction",
                                    json_real(min_valid));
                json_object_set_new(
                    n, "message",
                    json_string("too little valid (cloud-free, covered) area "
                                "in the zone to judge this rule"));
                json_array_append_new(notices, n);
                continue;
            }
            double v = aw_metric_value(s, r->metric);
            int level = aw_rule_level(r, v);
            if (level < 0)
                continue;

            char key[1024], id[65];
            snprintf(key, sizeof key, "%s|%s|%s|%s|%s|%s", cfg->region_name,
                     z->id, r->id, in->date, r->type, AW_VERSION);
            aw_sha256_buf(key, strlen(key), id);
            id[32] = '\0';

            json_t *a = json_object();
            json_object_set_new(a, "alert_id", json_string(id));
            json_object_set_new(a, "supersedes", json_null());
            json_object_set_new(a, "status", json_string("new"));
            json_object_set_new(a, "type", json_string(r->type));
            json_object_set_new(a, "rule_id", json_string(r->id));
            json_object_set_new(a, "level", json_string(level_names[level]));
            json_object_set_new(a, "severity",
                                json_string(level_severity[level]));
            json_object_set_new(
                a, "certainty",
                json_string(s->valid_fraction >= 0.9 ? "Observed" : "Likely"));
            json_object_set_new(a, "region_id", json_string(cfg->region_name));
            json_object_set_new(a, "region_name",
                                json_string(cfg->region_name));
            json_object_set_new(a, "zone_id", json_string(z->id));
            json_object_set_new(a, "zone_name", json_string(z->name));
            json_object_set_new(a, "zone_kind",
                                json_string(kind_name(z->kind)));
            json_t *bb = json_array();
            for (int k = 0; k < 4; k++)
                json_array_append_new(bb, num_or_null(z->bbox_lonlat[k]));
            json_object_set_new(a, "geometry_bbox", bb);
            char ps[32], pe[32];
            snprintf(ps, sizeof ps, "%sT00:00:00Z", in->date);
            snprintf(pe, sizeof pe, "%sT23:59:59Z", in->date);
            json_object_set_new(a, "period_start", json_string(ps));
            json_object_set_new(a, "period_end", json_string(pe));
            json_t *m = json_object();
            json_object_set_new(m, "name",
                                json_string(aw_metric_name(r->metric)));
            json_object_set_new(m, "value", json_real(v));
            json_object_set_new(m, "threshold", json_real(r->level[level]));
            json_object_set_new(
                m, "comparison",
                json_string(r->cmp == AW_CMP_BELOW ? "below" : "above"));
            json_object_set_new(a, "metric", m);
            json_object_set_new(a, "valid_fraction",
                                json_real(s->valid_fraction));
            json_object_set_new(a, "zone_area_km2", json_real(z->area_km2));
            json_object_set_new(a, "n_scenes",
                                json_integer((json_int_t)in->n_scenes));
            json_object_set_new(a, "thresholds", thresholds_json(r, min_valid));
            json_t *inputs = json_array();
            for (size_t k = 0; k < in->n_scenes; k++)
                json_array_append_new(inputs, json_string(in->scene_ids[k]));
            json_object_set_new(a, "inputs", inputs);
            json_t *sw = json_object();
            json_object_set_new(sw, "name", json_string("aralwatch"));
            json_object_set_new(sw, "version", json_string(AW_VERSION));
            json_object_set_new(sw, "git_sha", json_string(AW_GIT_SHA));
            json_object_set_new(a, "software", sw);
            json_t *outs = json_array();
            json_array_append_new(outs, json_string("zones.json"));
            json_array_append_new(outs, json_string("water.tif"));
            json_object_set_new(a, "outputs", outs);
            json_object_set_new(a, "created", json_string(created));
            json_array_append_new(alerts, a);
            (*n_alerts)++;
        }
    }
    (void)ctx;
    return AW_OK;
}
