/* libFuzzer target: the Landsat MTL reader (aw_mtl_load / aw_mtl_get).
 *
 * An input whose first byte is '<' is saved as LC08_FUZZ_MTL.xml, which
 * aw_mtl_load reads as a Collection 2 _MTL.xml (XML rewritten into the
 * text form, then parsed); any other input is saved as LC08_FUZZ_MTL.txt
 * and parsed as the ODL text directly. The seeds of both kinds are the
 * files as USGS ships them, with nothing prepended. */
#include "fuzz_util.h"
#include <gdal.h>
#include <cpl_error.h>
#include "aralwatch/ctx.h"
#include "aralwatch/profile.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char txt_path[4096], xml_path[4096];
static volatile size_t sink;

/* Keys the Landsat profile looks up, and a few that are rarely present. */
static const char *const keys[] = {"GROUP",
                                   "DATE_ACQUIRED",
                                   "SCENE_CENTER_TIME",
                                   "SPACECRAFT_ID",
                                   "LANDSAT_PRODUCT_ID",
                                   "WRS_PATH",
                                   "WRS_ROW",
                                   "CLOUD_COVER",
                                   "SUN_ELEVATION",
                                   "SUN_AZIMUTH",
                                   "REFLECTANCE_MULT_BAND_2",
                                   "REFLECTANCE_ADD_BAND_7",
                                   "FILE_NAME_BAND_2",
                                   "FILE_NAME_QUALITY_L1_PIXEL",
                                   "END_GROUP",
                                   "END",
                                   ""};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    GDALAllRegister();
    CPLSetErrorHandler(CPLQuietErrorHandler);
    const char *root = fz_scratch("fuzz_mtl");
    fz_join(txt_path, sizeof txt_path, root, "LC08_FUZZ_MTL.txt");
    fz_join(xml_path, sizeof xml_path, root, "LC08_FUZZ_MTL.xml");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = size > 0 && data[0] == '<' ? xml_path : txt_path;
    fz_write(path, data, size);
    aw_ctx *ctx = aw_ctx_create();
    if (!ctx)
        return 0;
    aw_ctx_set_log_level(ctx, AW_LOG_ERROR);
    aw_mtl *mtl = NULL;
    if (aw_mtl_load(ctx, path, &mtl) == AW_OK) {
        /* Touch every byte of every value found, so a value pointing
         * outside the buffer shows up under ASan. */
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
            const char *v = aw_mtl_get(mtl, keys[i]);
            if (v)
                sink += strlen(v);
        }
    }
    aw_mtl_free(mtl);
    aw_ctx_destroy(ctx);
    return 0;
}
