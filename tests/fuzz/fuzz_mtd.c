/* libFuzzer target: the Sentinel-2 L2A metadata reader, through
 * aw_profile_detect on <product>.SAFE/MTD_MSIL2A.xml.
 *
 * The .SAFE folder is built once per process: GRANULE/<granule>/IMG_DATA/
 * R10m and R20m hold empty band files named as ESA names them (the profile
 * only looks at their names), so detection gets past the band search and
 * reads the metadata file, which is the input. */
#include "fuzz_util.h"
#include <math.h>
#include <gdal.h>
#include <cpl_error.h>
#include "aralwatch/config.h"
#include "aralwatch/ctx.h"
#include "aralwatch/profile.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SAFE_NAME                                                              \
    "S2B_MSIL2A_20210122T133229_N0214_R081_T22HBD_20210122T155500.SAFE"
#define GRANULE_NAME "L2A_T22HBD_A020270_20210122T133224"
#define BAND_STEM    "T22HBD_20210122T133229_"

static char mtd_path[4096];

static void make_bands(const char *dir, const char *const *bands, int res)
{
    for (const char *const *b = bands; *b; b++) {
        char name[64], path[4096];
        int n = snprintf(name, sizeof name, BAND_STEM "%s_%dm.jp2", *b, res);
        if (n < 0 || (size_t)n >= sizeof name)
            abort();
        fz_join(path, sizeof path, dir, name);
        fz_write(path, NULL, 0);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    static const char *const r10[] = {"B02", "B03", "B04", "B08", NULL};
    static const char *const r20[] = {"B11", "B12", "SCL", NULL};
    GDALAllRegister();
    CPLSetErrorHandler(CPLQuietErrorHandler);
    const char *root = fz_scratch("fuzz_mtd");
    char safe[4096], gr[4096], g[4096], img[4096], res[4096];
    fz_join(safe, sizeof safe, root, SAFE_NAME);
    fz_mkdir(safe);
    fz_join(gr, sizeof gr, safe, "GRANULE");
    fz_mkdir(gr);
    fz_join(g, sizeof g, gr, GRANULE_NAME);
    fz_mkdir(g);
    fz_join(img, sizeof img, g, "IMG_DATA");
    fz_mkdir(img);
    fz_join(res, sizeof res, img, "R10m");
    fz_mkdir(res);
    make_bands(res, r10, 10);
    fz_join(res, sizeof res, img, "R20m");
    fz_mkdir(res);
    make_bands(res, r20, 20);
    fz_join(mtd_path, sizeof mtd_path, safe, "MTD_MSIL2A.xml");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_write(mtd_path, data, size);
    aw_ctx *ctx = aw_ctx_create();
    if (!ctx)
        return 0;
    aw_ctx_set_log_level(ctx, AW_LOG_ERROR);
    aw_scene_cfg sc;
    memset(&sc, 0, sizeof sc);
    sc.cloud_cover = (double)NAN;
    sc.sun_elevation = (double)NAN;
    sc.sun_azimuth = (double)NAN;
    aw_profile_detect(ctx, mtd_path, AW_SENSOR_AUTO, &sc);
    aw_scene_free(&sc);
    aw_ctx_destroy(ctx);
    return 0;
}
