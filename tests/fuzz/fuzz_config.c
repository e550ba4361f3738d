/* libFuzzer target: the YAML run configuration loader (aw_config_load).
 *
 * The input is written to <scratch>/configs/fuzz.yaml; <scratch>/
 * sample_rasters links to the repository's sample_rasters, so the relative
 * paths of the seed configs (../sample_rasters/...) resolve and the fuzzer
 * reaches scene, inbox, AOI and zone validation, not only "file not
 * found". The loader only reads: nothing is written next to the config. */
#include "fuzz_util.h"
#include <gdal.h>
#include <cpl_error.h>
#include "aralwatch/config.h"
#include "aralwatch/ctx.h"

#ifndef AW_FUZZ_SOURCE_DIR
#error "AW_FUZZ_SOURCE_DIR (the repository root) must be defined"
#endif

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char cfg_path[4096];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    GDALAllRegister();
    CPLSetErrorHandler(CPLQuietErrorHandler);
    const char *root = fz_scratch("fuzz_config");
    char dir[4096], link[4096];
    fz_join(dir, sizeof dir, root, "configs");
    fz_mkdir(dir);
    fz_join(link, sizeof link, root, "sample_rasters");
    if (symlink(AW_FUZZ_SOURCE_DIR "/sample_rasters", link) != 0) {
        perror(link);
        abort();
    }
    fz_join(cfg_path, sizeof cfg_path, dir, "fuzz.yaml");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_write(cfg_path, data, size);
    aw_ctx *ctx = aw_ctx_create();
    if (!ctx)
        return 0;
    aw_ctx_set_log_level(ctx, AW_LOG_ERROR);
    aw_config *cfg = NULL;
    if (aw_config_load(ctx, cfg_path, &cfg) == AW_OK && !cfg)
        abort(); /* success must hand back a config */
    aw_config_destroy(cfg);
    aw_ctx_destroy(ctx);
    return 0;
}
