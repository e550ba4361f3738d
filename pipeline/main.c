/* The aralwatch command line: run, validate, inspect.
 * Only this file turns statuses into exit codes (README "Exit codes"). */
#define _POSIX_C_SOURCE 200809L
#include <getopt.h>
#include <malloc.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <errno.h>
#include <stdarg.h>
#include <jansson.h>
#include "aralwatch/config.h"
#include "aralwatch/pipeline.h"
#include "aralwatch/report.h"
#include "aralwatch/util.h"
#include "aralwatch/version.h"
#include "baseline.h"
#include "par.h"

static const char *const main_usage =
    "usage: aralwatch [--version] [--help] <command> [options]\n"
    "\n"
    "Watch water bodies and cropland from multispectral satellite scenes.\n"
    "\n"
    "commands:\n"
    "  run       run the pipeline for the scenes a config names\n"
    "  reprocess run again dates the catalog has done\n"
    "  baseline  build or update the multi-year baseline\n"
    "  status    what the region's catalog knows\n"
    "  validate  check a config without reading any pixel\n"
    "  inspect   describe a raster or a scene folder\n"
    "  report    write the HTML report from a report document (JSON)\n"
    "\n"
    "'aralwatch <command> --help' describes a command.\n"
    "\n"
    "exit codes: 0 success; 2 usage error; 3 config error; 4 input error;\n"
    "5 processing/output failure; 6 some scenes failed, the others were\n"
    "written; 7 another run of the region holds its lock; 10 success and\n"
    "at least one alert raised; 1 internal error; 130 cancelled.\n";

static const char *const run_usage =
    "usage: aralwatch run --config FILE [--out DIR] [--threads N] [--quiet]\n"
    "                     [--verbose] [--log-format text|json]\n"
    "\n"
    "Run the pipeline for every scene in FILE: warp onto the region grid,\n"
    "mask, compute the indices and water classes, zone statistics and\n"
    "alerts, and write them under DIR/<region>/<YYYY-MM-DD>/.\n"
    "\n"
    "  -c, --config FILE  the YAML config (see configs/ and README)\n"
    "  -o, --out DIR      output folder (default: outputs.dir of the config)\n"
    "  -j, --threads N    worker threads (default: all cores)\n"
    "  -q, --quiet        no progress bar, only warnings and errors\n"
    "  -v, --verbose      debug log lines\n"
    "      --log-format F text (default): TIME LEVEL [stage date scene] "
    "message;\n"
    "                     json: one JSON object per line, for log collectors\n"
    "  -h, --help         this text\n"
    "\n"
    "A date whose inputs and config did not change since the catalog\n"
    "recorded it done is not processed again.\n"
    "\n"
    "exit codes: 0 success; 10 success with alerts; 6 some scenes failed;\n"
    "7 another run holds the region's lock; 3 config error; 4 input error;\n"
    "5 processing/output failure; 130 cancelled.\n";

static const char *const reprocess_usage =
    "usage: aralwatch reprocess --config FILE (--scene ID | --since DATE)\n"
    "                           [--out DIR] [--threads N] [--quiet] "
    "[--verbose]\n"
    "                           [--log-format text|json]\n"
    "\n"
    "Run again the dates the catalog has done: the date of scene ID, or\n"
    "every date from DATE (YYYY-MM-DD) on, then every other date that is\n"
    "not up to date. Their outputs are replaced atomically.\n"
    "\n"
    "exit codes: as for run.\n";

static const char *const baseline_usage =
    "usage: aralwatch baseline --config FILE [--from DATE] [--to DATE]\n"
    "                          [--out DIR] [--threads N] [--quiet] "
    "[--verbose]\n"
    "                          [--log-format text|json]\n"
    "\n"
    "Build or update the region's multi-year baseline from the dates\n"
    "between --from and --to (YYYY-MM-DD; default baseline.from and\n"
    "baseline.to of the config): runs the pipeline on those of them not\n"
    "done yet, then per period of the year (month or dekad) the water\n"
    "frequency and NDVI statistics per pixel and the zones' water area and\n"
    "NDVI statistics. Only the years whose dates changed are summarised\n"
    "again. Later runs compare every date with it.\n"
    "\n"
    "exit codes: as for run.\n";

static const char *const status_usage =
    "usage: aralwatch status --config FILE [--out DIR]\n"
    "\n"
    "Print what the region's catalog (OUT/<region>/catalog.sqlite) knows:\n"
    "the last run, the dates done or failed, the scenes not used and why,\n"
    "the latest alert per zone, and the dates still to do.\n"
    "\n"
    "exit codes: 0; 4 no catalog yet; 3 config error.\n";

static const char *const validate_usage =
    "usage: aralwatch validate --config FILE\n"
    "\n"
    "Check a config completely (keys, types, ranges, dates, files) without\n"
    "reading any pixel. Every problem is reported as FILE:LINE: key: message.\n"
    "\n"
    "  -c, --config FILE  the YAML config\n"
    "  -h, --help         this text\n"
    "\n"
    "exit codes: 0 valid; 3 invalid; 2 usage error.\n";

static const char *const inspect_usage =
    "usage: aralwatch inspect PATH\n"
    "\n"
    "Describe a raster, or every raster in a folder: driver, size, bands,\n"
    "data types, CRS, resolution, nodata and footprint in lon/lat.\n"
    "\n"
    "  -h, --help  this text\n"
    "\n"
    "exit codes: 0 success; 4 nothing readable; 2 usage error.\n";

static const char *const report_usage =
    "usage: aralwatch report --data FILE.json --out FILE.html\n"
    "\n"
    "Write the HTML report of a report document: alerts (most severe\n"
    "first), insufficient-data notices, forecasts, the zone table, a chart\n"
    "per zone series and the quicklooks with their legends. The page is\n"
    "self-contained (inline CSS and SVG, images as data: URIs) and is\n"
    "written atomically. Quicklook paths in the document are relative to\n"
    "the folder of FILE.json.\n"
    "\n"
    "  -d, --data FILE  the report document (JSON)\n"
    "  -o, --out FILE   the HTML file to write\n"
    "  -h, --help       this text\n"
    "\n"
    "exit codes: 0 written; 4 the document is missing or not valid JSON\n"
    "(nothing is written); 5 the page could not be written; 2 usage error.\n";

static int usage_error(const char *usage, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int usage_error(const char *usage, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("aralwatch: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n\n%s", usage);
    return AW_EXIT_USAGE;
}

static int is_date(const char *s)
{
    int y, m, d;
    char tail;
    return strlen(s) == 10 &&
           sscanf(s, "%4d-%2d-%2d%c", &y, &m, &d, &tail) == 3 && m >= 1 &&
           m <= 12 && d >= 1 && d <= 31;
}

static int parse_threads(const char *s, int *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || !end || *end || v < 1 || v > 1024)
        return -1;
    *out = (int)v;
    return 0;
}

static int load_config(aw_ctx *ctx, const char *path, aw_config **cfg)
{
    aw_status st = aw_config_load(ctx, path, cfg);
    if (st != AW_OK) {
        /* One line per problem; in JSON each its own error event. */
        if (aw_ctx_log_format(ctx) == AW_LOG_JSON) {
            const char *m = aw_ctx_errmsg(ctx);
            while (*m) {
                const char *nl = strchr(m, '\n');
                int n = nl ? (int)(nl - m) : (int)strlen(m);
                if (n > 0)
                    aw_log(ctx, AW_LOG_ERROR, "%.*s", n, m);
                m += n + (nl != NULL);
            }
        }
        else {
            fprintf(stderr, "%s\n", aw_ctx_errmsg(ctx));
        }
        return aw_exit_code(st);
    }
    return 0;
}

/* The end of a run in one line: scenes done/unchanged/skipped/failed,
 * alerts, and the time per stage. */
static void text_summary(const aw_run_result *r, double wall)
{
    fprintf(stderr,
            "aralwatch: %zu scene(s): %zu used, %zu unchanged, %zu skipped, "
            "%zu failed; %zu alert(s), %zu insufficient-data notice(s)\n",
            r->n_scenes, r->n_ok, r->n_unchanged, r->n_skipped, r->n_failed,
            r->n_alerts, r->n_notices);
    fprintf(stderr, "aralwatch: %.2f s:", wall);
    for (int k = 0; k < AW_RUN_STAGES; k++)
        fprintf(stderr, " %s %.2f%s", aw_run_stage_name(k), r->stage_seconds[k],
                k + 1 < AW_RUN_STAGES ? "," : "\n");
}

static void json_summary(aw_status st, const aw_run_result *r, int exit_code,
                         double wall, const char *error)
{
    char ts[21];
    aw_utc_now(ts);
    json_t *stages = json_object();
    for (int k = 0; k < AW_RUN_STAGES; k++)
        json_object_set_new(stages, aw_run_stage_name(k),
                            json_real(round(r->stage_seconds[k] * 1e3) / 1e3));
    json_t *o = json_pack(
        "{s:s, s:s, s:s, s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:f, s:o, "
        "s:i}",
        "time", ts, "level", st == AW_OK ? "info" : "error", "stage", "summary",
        "message", st == AW_OK ? "run finished" : error, "scenes",
        (json_int_t)r->n_scenes, "used", (json_int_t)r->n_ok, "unchanged",
        (json_int_t)r->n_unchanged, "skipped", (json_int_t)r->n_skipped,
        "failed", (json_int_t)r->n_failed, "alerts", (json_int_t)r->n_alerts,
        "notices", (json_int_t)r->n_notices, "seconds", round(wall * 1e3) / 1e3,
        "stage_seconds", stages, "exit_code", (json_int_t)exit_code);
    char *text = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    if (text)
        fprintf(stderr, "%s\n", text);
    free(text);
    json_decref(o);
}

/* run, reprocess (a run that first forgets some dates) and baseline (a
 * run over a date range, then the baseline built from it). */
enum { MODE_RUN, MODE_REPROCESS, MODE_BASELINE };
static int run_command(aw_ctx *ctx, int argc, char **argv, int mode)
{
    int reprocess = mode == MODE_REPROCESS;
    const char *from = NULL, *to = NULL;
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"out", required_argument, NULL, 'o'},
        {"threads", required_argument, NULL, 'j'},
        {"quiet", no_argument, NULL, 'q'},
        {"verbose", no_argument, NULL, 'v'},
        {"scene", required_argument, NULL, 's'},
        {"since", required_argument, NULL, 'S'},
        {"log-format", required_argument, NULL, 'L'},
        {"from", required_argument, NULL, 'F'},
        {"to", required_argument, NULL, 'T'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const char *usage = mode == MODE_REPROCESS  ? reprocess_usage
                        : mode == MODE_BASELINE ? baseline_usage
                                                : run_usage;
    const char *config = NULL;
    aw_run_opts ro;
    memset(&ro, 0, sizeof ro);
    int verbose = 0, json_log = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:o:j:qvh", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config = optarg;
            break;
        case 'o':
            ro.out_dir = optarg;
            break;
        case 'j':
            if (parse_threads(optarg, &ro.threads) != 0)
                return usage_error(usage,
                                   "--threads takes a whole number from 1 to "
                                   "1024, not '%s'",
                                   optarg);
            break;
        case 'q':
            ro.quiet = 1;
            break;
        case 'v':
            verbose = 1;
            break;
        case 's':
        case 'S':
            if (!reprocess)
                return usage_error(usage, "%s", "unknown option");
            if (c == 's')
                ro.reprocess_scene = optarg;
            else if (!is_date(optarg))
                return usage_error(usage, "--since takes YYYY-MM-DD, not '%s'",
                                   optarg);
            else
                ro.reprocess_since = optarg;
            break;
        case 'F':
        case 'T':
            if (mode != MODE_BASELINE)
                return usage_error(usage, "%s", "unknown option");
            if (!is_date(optarg))
                return usage_error(usage, "--%s takes YYYY-MM-DD, not '%s'",
                                   c == 'F' ? "from" : "to", optarg);
            if (c == 'F')
                from = optarg;
            else
                to = optarg;
            break;
        case 'L':
            if (strcmp(optarg, "json") == 0)
                json_log = 1;
            else if (strcmp(optarg, "text") != 0)
                return usage_error(
                    usage, "--log-format takes text or json, not '%s'", optarg);
            break;
        case 'h':
            fputs(usage, stdout);
            return AW_EXIT_OK;
        default:
            return usage_error(usage, "%s", "unknown option");
        }
    }
    if (optind < argc)
        return usage_error(usage, "unexpected argument '%s'", argv[optind]);
    if (!config)
        return usage_error(usage, "%s", "needs --config FILE");
    if (reprocess && !ro.reprocess_scene == !ro.reprocess_since)
        return usage_error(usage, "%s",
                           "reprocess needs one of --scene ID or --since DATE");
    if (json_log)
        aw_ctx_set_log_format(ctx, AW_LOG_JSON);
    ro.progress_bar =
        !ro.quiet && !verbose && !json_log && isatty(STDERR_FILENO);
    aw_ctx_set_log_level(ctx, verbose                       ? AW_LOG_DEBUG
                              : ro.quiet || ro.progress_bar ? AW_LOG_WARN
                                                            : AW_LOG_INFO);
    aw_config *cfg = NULL;
    double t0 = aw_now();
    aw_ctx_set_scope(ctx, NULL, NULL, "config");
    int rc = load_config(ctx, config, &cfg);
    /* MPI: every rank loaded it, or the job stops here on every rank. */
    if (aw_par_size() > 1) {
        int worst = rc;
        aw_par_max_int(&worst, 1);
        if (worst && !rc) {
            aw_config_destroy(cfg);
            rc = worst;
        }
    }
    if (rc)
        return rc;
    aw_ctx_set_scope(ctx, NULL, NULL, "run");
    aw_run_result res;
    aw_status st;
    if (mode == MODE_BASELINE) {
        aw_baseline_opts bo = {ro, from, to};
        st = aw_baseline_build(ctx, cfg, &bo, &res);
    }
    else
        st = aw_run(ctx, cfg, &ro, &res);
    aw_config_destroy(cfg);
    rc = aw_run_exit_code(st, &res);
    /* In an MPI run rank 0 speaks for the job. */
    if (!aw_par_root())
        return rc;
    if (st != AW_OK && !json_log)
        fprintf(stderr, "aralwatch: %s: %s\n", aw_status_str(st),
                aw_ctx_errmsg(ctx));
    if (json_log)
        json_summary(st, &res, rc, aw_now() - t0, aw_ctx_errmsg(ctx));
    else if (st == AW_OK && !ro.quiet)
        text_summary(&res, aw_now() - t0);
    return rc;
}

static int cmd_run(aw_ctx *ctx, int argc, char **argv)
{
    return run_command(ctx, argc, argv, MODE_RUN);
}

static int cmd_baseline(aw_ctx *ctx, int argc, char **argv)
{
    return run_command(ctx, argc, argv, MODE_BASELINE);
}

static int cmd_reprocess(aw_ctx *ctx, int argc, char **argv)
{
    return run_command(ctx, argc, argv, MODE_REPROCESS);
}

static int cmd_status(aw_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"out", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const char *config = NULL, *out = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config = optarg;
            break;
        case 'o':
            out = optarg;
            break;
        case 'h':
            fputs(status_usage, stdout);
            return AW_EXIT_OK;
        default:
            return usage_error(status_usage, "%s", "unknown option");
        }
    }
    if (optind < argc || !config)
        return usage_error(status_usage, "%s", "status needs --config FILE");
    aw_ctx_set_log_level(ctx, AW_LOG_WARN);
    aw_config *cfg = NULL;
    int rc = load_config(ctx, config, &cfg);
    if (rc)
        return rc;
    aw_status st = aw_status_report(ctx, cfg, out, stdout);
    aw_config_destroy(cfg);
    if (st != AW_OK) {
        fprintf(stderr, "aralwatch: %s\n", aw_ctx_errmsg(ctx));
        return aw_exit_code(st);
    }
    return AW_EXIT_OK;
}

static int cmd_validate(aw_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const char *config = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config = optarg;
            break;
        case 'h':
            fputs(validate_usage, stdout);
            return AW_EXIT_OK;
        default:
            return usage_error(validate_usage, "%s", "unknown option");
        }
    }
    if (optind < argc)
        return usage_error(validate_usage, "unexpected argument '%s'",
                           argv[optind]);
    if (!config)
        return usage_error(validate_usage, "%s",
                           "validate needs --config FILE");
    aw_config *cfg = NULL;
    int rc = load_config(ctx, config, &cfg);
    if (rc)
        return rc;
    /* What `run` checks before any pixel: the region grid (its size) and
     * the zones on it (ids unique and set, kinds known, geometries), so a
     * config that validates does not fail there. Not for per-date grids,
     * which come from each date's scenes. */
    if (!cfg->grid_per_date && cfg->n_scenes > 0) {
        aw_grid grid;
        aw_aoi aoi;
        aw_zones zones;
        memset(&grid, 0, sizeof grid);
        memset(&aoi, 0, sizeof aoi);
        memset(&zones, 0, sizeof zones);
        aw_ctx_set_log_level(ctx, AW_LOG_WARN);
        aw_status st = aw_grid_build(ctx, cfg, &grid, &aoi);
        if (st == AW_OK)
            st = aw_zones_load(ctx, cfg, &grid, &zones);
        aw_zones_free(&zones);
        aw_grid_free(&grid);
        aw_aoi_free(&aoi);
        if (st != AW_OK) {
            fprintf(stderr, "%s\n", aw_ctx_errmsg(ctx));
            aw_config_destroy(cfg);
            return aw_exit_code(st);
        }
    }
    printf("%s: valid (region %s, %zu scene(s), %zu rule(s))\n", config,
           cfg->region_name, cfg->n_scenes, cfg->n_rules);
    aw_config_destroy(cfg);
    return AW_EXIT_OK;
}

static int cmd_inspect(aw_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {{"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'h':
            fputs(inspect_usage, stdout);
            return AW_EXIT_OK;
        default:
            return usage_error(inspect_usage, "%s", "unknown option");
        }
    }
    if (optind != argc - 1)
        return usage_error(inspect_usage, "%s", "inspect takes one PATH");
    aw_status st = aw_inspect(ctx, argv[optind], stdout);
    if (st != AW_OK) {
        fprintf(stderr, "aralwatch: %s\n", aw_ctx_errmsg(ctx));
        return aw_exit_code(st);
    }
    return AW_EXIT_OK;
}

static int cmd_report(aw_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {{"data", required_argument, NULL, 'd'},
                                         {"out", required_argument, NULL, 'o'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *data = NULL, *out = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "d:o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            data = optarg;
            break;
        case 'o':
            out = optarg;
            break;
        case 'h':
            fputs(report_usage, stdout);
            return AW_EXIT_OK;
        default:
            return usage_error(report_usage, "%s", "unknown option");
        }
    }
    if (optind < argc)
        return usage_error(report_usage, "unexpected argument '%s'",
                           argv[optind]);
    if (!data || !out)
        return usage_error(report_usage, "%s",
                           "report needs --data FILE.json and --out FILE.html");
    if (strcmp(data, out) == 0)
        return usage_error(report_usage, "%s",
                           "--out would overwrite the --data file");
    aw_status st = aw_report_from_json_file(ctx, data, out);
    if (st != AW_OK) {
        fprintf(stderr, "aralwatch: %s\n", aw_ctx_errmsg(ctx));
        return aw_exit_code(st);
    }
    return AW_EXIT_OK;
}

static void on_signal(int sig)
{
    (void)sig;
    aw_request_cancel();
}

/* SIGINT/SIGTERM ask the run to stop at the next check: the date being
 * written is abandoned (its staging folder removed) and aralwatch exits
 * 130. A second signal kills at once (SA_RESETHAND). */
static void install_signal_handlers(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = (int)SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

static int main_rank(int argc, char **argv);

int main(int argc, char **argv)
{
    /* A run allocates and frees the same strip buffers (megabytes each)
     * for every strip: keep them in the heap instead of mapping fresh
     * pages each time, which costs a page fault per 4 KiB (some 5 % of a
     * run). Freed memory above 128 MiB still goes back to the system. */
    mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
    mallopt(M_TRIM_THRESHOLD, 128 * 1024 * 1024);
    /* Under mpirun/srun (MPI build): one of N ranks. A no-op otherwise. */
    aw_par_init(&argc, &argv);
    int rc = main_rank(argc, argv);
    if (aw_par_size() > 1) {
        /* Every rank exits with rank 0's code, so the job's is that. */
        aw_par_bcast(&rc, sizeof rc, 0);
    }
    aw_par_finalize();
    return rc;
}

static int main_rank(int argc, char **argv)
{
    if (argc < 2) {
        fputs(main_usage, stderr);
        return AW_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 ||
        strcmp(cmd, "help") == 0) {
        fputs(main_usage, stdout);
        return AW_EXIT_OK;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
#ifdef AW_HAVE_MPI
        printf("aralwatch %s (git %s, MPI)\n", AW_VERSION, AW_GIT_SHA);
#else
        printf("aralwatch %s (git %s)\n", AW_VERSION, AW_GIT_SHA);
#endif
        return AW_EXIT_OK;
    }
    int (*fn)(aw_ctx *, int, char **) = NULL;
    if (strcmp(cmd, "run") == 0)
        fn = cmd_run;
    else if (strcmp(cmd, "validate") == 0)
        fn = cmd_validate;
    else if (strcmp(cmd, "inspect") == 0)
        fn = cmd_inspect;
    else if (strcmp(cmd, "status") == 0)
        fn = cmd_status;
    else if (strcmp(cmd, "reprocess") == 0)
        fn = cmd_reprocess;
    else if (strcmp(cmd, "report") == 0)
        fn = cmd_report;
    else if (strcmp(cmd, "baseline") == 0)
        fn = cmd_baseline;
    if (!fn)
        return usage_error(main_usage, "unknown command '%s'", cmd);

    aw_ctx *ctx = aw_ctx_create();
    if (!ctx) {
        fputs("aralwatch: out of memory\n", stderr);
        return AW_EXIT_PROCESS;
    }
    aw_gdal_init(ctx);
    install_signal_handlers();
    int rc = AW_EXIT_OK;
    if (aw_par_size() > 1)
        aw_ctx_set_rank(ctx, aw_par_rank());
    /* Only run, reprocess and baseline share work across MPI ranks; the
     * other commands are done by rank 0. */
    if (aw_par_root() || fn == cmd_run || fn == cmd_reprocess ||
        fn == cmd_baseline)
        rc = fn(ctx, argc - 1, argv + 1);
    aw_gdal_cleanup();
    aw_ctx_destroy(ctx);
    return rc;
}
