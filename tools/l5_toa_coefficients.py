#!/usr/bin/python3
"""Scale and offset that turn the sample Landsat 5 TM DNs into top-of-atmosphere
reflectance, for configs/sample.yaml.

    rho = pi * L * d^2 / (ESUN * sin(sun_elevation)),  L = ML * DN + AL

so rho = DN * scale + offset with
    scale  = pi * d^2 * ML / (ESUN * sin(elev))
    offset = pi * d^2 * AL / (ESUN * sin(elev))

ML/AL (RADIANCE_MULT/ADD_BAND_n) and SUN_ELEVATION come from the scene's MTL;
ESUN for Landsat 5 TM from Chander, Markham & Helder (2009), Remote Sens.
Environ. 113, table 3; d from the usual cosine approximation of the
Earth-Sun distance for the acquisition day of year.
Run: tools/l5_toa_coefficients.py sample_rasters/landsat5_para/*_MTL.txt
"""
import math
import re
import sys
import datetime

ESUN = {1: 1983.0, 2: 1796.0, 3: 1536.0, 4: 1031.0, 5: 220.0, 7: 83.44}
ROLE = {1: "blue", 2: "green", 3: "red", 4: "nir", 5: "swir1", 7: "swir2"}


def main(path):
    text = open(path, "rb").read().decode("ascii", "replace")
    val = lambda k: re.search(r"\b%s = \"?([-0-9.T:Z]+)" % k, text).group(1)
    elev = float(val("SUN_ELEVATION"))
    date = datetime.date.fromisoformat(val("DATE_ACQUIRED"))
    doy = date.timetuple().tm_yday
    d = 1.0 - 0.01672 * math.cos(math.radians(0.9856 * (doy - 4)))
    k = math.pi * d * d / math.sin(math.radians(elev))
    print("# date %s doy %d d %.6f AU sun elevation %.8f" % (date, doy, d, elev))
    for b, esun in ESUN.items():
        ml = float(val("RADIANCE_MULT_BAND_%d" % b))
        al = float(val("RADIANCE_ADD_BAND_%d" % b))
        print("%-6s B%d scale: %.9g offset: %.9g" % (ROLE[b], b, k * ml / esun, k * al / esun))


if __name__ == "__main__":
    main(sys.argv[1])
