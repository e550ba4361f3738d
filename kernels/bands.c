/* Band role names. */
#include <string.h>
#include "aralwatch/kernels.h"

static const char *const band_names[AW_BAND_COUNT] = {"blue", "green", "red",
                                                      "nir",  "swir1", "swir2"};

const char *aw_band_name(aw_band b)
{
    return (unsigned)b < AW_BAND_COUNT ? band_names[b] : "?";
}

int aw_band_from_name(const char *name)
{
    for (int b = 0; b < AW_BAND_COUNT; b++)
        if (strcmp(name, band_names[b]) == 0)
            return b;
    return -1;
}
