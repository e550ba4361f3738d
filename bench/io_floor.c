/* io_floor: the I/O floor of a raster product, measured with GDAL alone.
 *
 *   io_floor --threads N --json OUT.json --outdir DIR
 *            --in BAND.tif [--in ...] --ref PRODUCT.tif [--ref ...]
 *            [--zlevel 1..12]
 *
 * 1. Untimed: every --ref raster (an output of the program under test) is
 *    read fully into memory, with its data type, block size, compression,
 *    predictor, nodata, geotransform and CRS.
 * 2. Timed "decode": every --in raster is decoded completely, one strip of
 *    one block height by the full width per GDALRasterIO call (so GDAL
 *    3.6's multi-threaded GeoTIFF decoding, GDAL_NUM_THREADS, can work on
 *    the blocks of a strip in parallel), into a reused buffer.
 * 3. Timed "encode": every --ref raster is written again from memory to
 *    DIR/<name> as a tiled GeoTIFF with the same block size, compression,
 *    predictor and NUM_THREADS=N (and ZLEVEL, for DEFLATE, with --zlevel;
 *    otherwise GDAL's default), strip by strip, then closed.
 * 4. Timed "fsync": every written file and DIR are fsynced (the program
 *    under test fsyncs its outputs before publishing them).
 *
 * The JSON report holds the wall and CPU (user + system, all threads of
 * this process) seconds of each timed phase, and of the three together.
 * No pixel is computed: this is the least work any program must do to
 * turn these inputs into these outputs with these encoding options.
 *
 * Build: cc -O2 -o io_floor io_floor.c $(gdal-config --cflags --libs)
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <cpl_conv.h>
#include <cpl_string.h>
#include <gdal.h>

#define MAX_FILES 64

typedef struct {
    const char *path;
    char *out_path;
    int w, h, bx, by;
    GDALDataType type;
    int has_nodata;
    double nodata;
    double gt[6];
    char *wkt;
    char compress[32];
    char predictor[8];
    int n_overviews;
    void *pixels;
    size_t bytes;
} ref_raster;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

static void die(const char *what, const char *path)
{
    fprintf(stderr, "io_floor: %s %s: %s\n", what, path ? path : "",
            CPLGetLastErrorMsg());
    exit(1);
}

static void usage(void)
{
    fprintf(stderr, "usage: io_floor --threads N --json OUT.json --outdir DIR "
                    "--in BAND.tif [--in ...] --ref PRODUCT.tif [--ref ...] "
                    "[--zlevel 1..12]\n");
    exit(2);
}

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

static void load_ref(ref_raster *r, const char *outdir)
{
    GDALDatasetH ds = GDALOpen(r->path, GA_ReadOnly);
    if (!ds)
        die("cannot open reference", r->path);
    GDALRasterBandH b = GDALGetRasterBand(ds, 1);
    if (GDALGetRasterCount(ds) != 1) {
        fprintf(stderr, "io_floor: %s: only single-band references\n", r->path);
        exit(1);
    }
    r->w = GDALGetRasterXSize(ds);
    r->h = GDALGetRasterYSize(ds);
    GDALGetBlockSize(b, &r->bx, &r->by);
    r->type = GDALGetRasterDataType(b);
    r->nodata = GDALGetRasterNoDataValue(b, &r->has_nodata);
    if (GDALGetGeoTransform(ds, r->gt) != CE_None)
        die("no geotransform in", r->path);
    r->wkt = CPLStrdup(GDALGetProjectionRef(ds));
    const char *c = GDALGetMetadataItem(ds, "COMPRESSION", "IMAGE_STRUCTURE");
    snprintf(r->compress, sizeof r->compress, "%s", c ? c : "NONE");
    const char *p = GDALGetMetadataItem(ds, "PREDICTOR", "IMAGE_STRUCTURE");
    snprintf(r->predictor, sizeof r->predictor, "%s", p ? p : "1");
    r->n_overviews = GDALGetOverviewCount(b);
    int dsz = GDALGetDataTypeSizeBytes(r->type);
    r->bytes = (size_t)r->w * (size_t)r->h * (size_t)dsz;
    r->pixels = malloc(r->bytes);
    if (!r->pixels) {
        fprintf(stderr, "io_floor: out of memory for %s\n", r->path);
        exit(1);
    }
    if (GDALRasterIO(b, GF_Read, 0, 0, r->w, r->h, r->pixels, r->w, r->h,
                     r->type, 0, 0) != CE_None)
        die("cannot read reference", r->path);
    GDALClose(ds);
    size_t n = strlen(outdir) + strlen(base_name(r->path)) + 2;
    r->out_path = malloc(n);
    snprintf(r->out_path, n, "%s/%s", outdir, base_name(r->path));
}

/* Decode one input completely; returns the number of pixels. */
static double decode_input(const char *path, void **buf, size_t *cap)
{
    GDALDatasetH ds = GDALOpen(path, GA_ReadOnly);
    if (!ds)
        die("cannot open input", path);
    double pixels = 0;
    for (int bi = 1; bi <= GDALGetRasterCount(ds); bi++) {
        GDALRasterBandH b = GDALGetRasterBand(ds, bi);
        int w = GDALGetRasterBandXSize(b), h = GDALGetRasterBandYSize(b);
        int bx, by;
        GDALGetBlockSize(b, &bx, &by);
        GDALDataType t = GDALGetRasterDataType(b);
        size_t need =
            (size_t)w * (size_t)by * (size_t)GDALGetDataTypeSizeBytes(t);
        if (need > *cap) {
            free(*buf);
            *buf = malloc(need);
            if (!*buf) {
                fprintf(stderr, "io_floor: out of memory\n");
                exit(1);
            }
            *cap = need;
        }
        for (int y = 0; y < h; y += by) {
            int rows = h - y < by ? h - y : by;
            if (GDALRasterIO(b, GF_Read, 0, y, w, rows, *buf, w, rows, t, 0,
                             0) != CE_None)
                die("cannot decode", path);
        }
        pixels += (double)w * h;
    }
    GDALClose(ds);
    return pixels;
}

static void encode_ref(const ref_raster *r, int threads, int zlevel)
{
    GDALDriverH drv = GDALGetDriverByName("GTiff");
    char **o = NULL;
    char buf[32];
    o = CSLSetNameValue(o, "TILED", "YES");
    snprintf(buf, sizeof buf, "%d", r->bx);
    o = CSLSetNameValue(o, "BLOCKXSIZE", buf);
    snprintf(buf, sizeof buf, "%d", r->by);
    o = CSLSetNameValue(o, "BLOCKYSIZE", buf);
    o = CSLSetNameValue(o, "COMPRESS", r->compress);
    if (strcmp(r->compress, "NONE") != 0)
        o = CSLSetNameValue(o, "PREDICTOR", r->predictor);
    if (zlevel > 0 && strcmp(r->compress, "DEFLATE") == 0) {
        snprintf(buf, sizeof buf, "%d", zlevel);
        o = CSLSetNameValue(o, "ZLEVEL", buf);
    }
    snprintf(buf, sizeof buf, "%d", threads);
    o = CSLSetNameValue(o, "NUM_THREADS", buf);
    o = CSLSetNameValue(o, "BIGTIFF", "IF_SAFER");
    GDALDatasetH ds = GDALCreate(drv, r->out_path, r->w, r->h, 1, r->type, o);
    CSLDestroy(o);
    if (!ds)
        die("cannot create", r->out_path);
    GDALSetGeoTransform(ds, (double *)r->gt);
    GDALSetProjection(ds, r->wkt);
    GDALRasterBandH b = GDALGetRasterBand(ds, 1);
    if (r->has_nodata)
        GDALSetRasterNoDataValue(b, r->nodata);
    size_t row_bytes = (size_t)r->w * (size_t)GDALGetDataTypeSizeBytes(r->type);
    for (int y = 0; y < r->h; y += r->by) {
        int rows = r->h - y < r->by ? r->h - y : r->by;
        if (GDALRasterIO(b, GF_Write, 0, y, r->w, rows,
                         (char *)r->pixels + (size_t)y * row_bytes, r->w, rows,
                         r->type, 0, 0) != CE_None)
            die("cannot write", r->out_path);
    }
    CPLErrorReset();
    GDALClose(ds);
    if (CPLGetLastErrorType() == CE_Failure)
        die("cannot close", r->out_path);
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

static void fsync_path(const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0 || fsync(fd) != 0) {
        fprintf(stderr, "io_floor: fsync %s: %s\n", path, strerror(errno));
        exit(1);
    }
    close(fd);
}

/* An integer option's value in [lo, hi], or the usage and exit 2. */
static int int_arg(const char *opt, const char *s, long lo, long hi)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr,
                "io_floor: %s: expected an integer in %ld..%ld, "
                "got '%s'\n",
                opt, lo, hi, s);
        usage();
    }
    return (int)v;
}

int main(int argc, char **argv)
{
    const char *ins[MAX_FILES], *json = NULL, *outdir = NULL;
    ref_raster refs[MAX_FILES];
    int n_in = 0, n_ref = 0, threads = 1, zlevel = 0;
    memset(refs, 0, sizeof refs);
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc)
            usage();
        if (strcmp(argv[i], "--in") == 0 && n_in < MAX_FILES)
            ins[n_in++] = argv[++i];
        else if (strcmp(argv[i], "--ref") == 0 && n_ref < MAX_FILES)
            refs[n_ref++].path = argv[++i];
        else if (strcmp(argv[i], "--threads") == 0)
            threads = int_arg("--threads", argv[++i], 1, 1024);
        else if (strcmp(argv[i], "--json") == 0)
            json = argv[++i];
        else if (strcmp(argv[i], "--outdir") == 0)
            outdir = argv[++i];
        else if (strcmp(argv[i], "--zlevel") == 0)
            zlevel = int_arg("--zlevel", argv[++i], 1, 12);
        else
            usage();
    }
    if (!json || !outdir || n_in == 0 || n_ref == 0 || threads < 1)
        usage();

    GDALAllRegister();
    char tbuf[16];
    snprintf(tbuf, sizeof tbuf, "%d", threads);
    /* Multi-threaded decoding of GeoTIFF strips (GDAL >= 3.6), unless the
     * caller set GDAL_NUM_THREADS. */
    if (!CPLGetConfigOption("GDAL_NUM_THREADS", NULL))
        CPLSetConfigOption("GDAL_NUM_THREADS", tbuf);

    double t0 = now_s();
    size_t ref_bytes = 0;
    for (int i = 0; i < n_ref; i++) {
        load_ref(&refs[i], outdir);
        ref_bytes += refs[i].bytes;
    }
    double preload = now_s() - t0;

    void *buf = NULL;
    size_t cap = 0;
    double in_px = 0;
    double w0 = now_s(), c0 = cpu_s();
    for (int i = 0; i < n_in; i++)
        in_px += decode_input(ins[i], &buf, &cap);
    double w1 = now_s(), c1 = cpu_s();
    for (int i = 0; i < n_ref; i++)
        encode_ref(&refs[i], threads, zlevel);
    double w2 = now_s(), c2 = cpu_s();
    for (int i = 0; i < n_ref; i++)
        fsync_path(refs[i].out_path);
    fsync_path(outdir);
    double w3 = now_s(), c3 = cpu_s();
    free(buf);

    FILE *f = fopen(json, "w");
    if (!f) {
        fprintf(stderr, "io_floor: cannot write %s: %s\n", json,
                strerror(errno));
        return 1;
    }
    fprintf(f, "{\n  \"threads\": %d,\n  \"gdal\": \"%s\",\n", threads,
            GDALVersionInfo("RELEASE_NAME"));
    fprintf(f, "  \"preload_s\": %.4f,\n  \"preload_bytes\": %zu,\n", preload,
            ref_bytes);
    fprintf(f, "  \"decode_wall_s\": %.4f,\n  \"decode_cpu_s\": %.4f,\n",
            w1 - w0, c1 - c0);
    fprintf(f, "  \"encode_wall_s\": %.4f,\n  \"encode_cpu_s\": %.4f,\n",
            w2 - w1, c2 - c1);
    fprintf(f, "  \"fsync_wall_s\": %.4f,\n", w3 - w2);
    fprintf(f, "  \"wall_s\": %.4f,\n  \"cpu_s\": %.4f,\n", w3 - w0, c3 - c0);
    fprintf(f, "  \"input_pixels\": %.0f,\n  \"inputs\": [", in_px);
    for (int i = 0; i < n_in; i++) {
        fputs(i ? ", " : "", f);
        json_str(f, ins[i]);
    }
    fprintf(f, "],\n  \"outputs\": [\n");
    for (int i = 0; i < n_ref; i++) {
        const ref_raster *r = &refs[i];
        fputs("    {\"ref\": ", f);
        json_str(f, r->path);
        fprintf(f,
                ", \"type\": \"%s\", \"size\": [%d, %d], "
                "\"block\": [%d, %d], \"compress\": \"%s\", \"predictor\": "
                "\"%s\", \"ref_overviews\": %d}%s\n",
                GDALGetDataTypeName(r->type), r->w, r->h, r->bx, r->by,
                r->compress, r->predictor, r->n_overviews,
                i + 1 < n_ref ? "," : "");
    }
    fprintf(f, "  ]\n}\n");
    fclose(f);
    for (int i = 0; i < n_ref; i++) {
        free(refs[i].pixels);
        free(refs[i].out_path);
        CPLFree(refs[i].wkt);
    }
    GDALDestroyDriverManager();
    return 0;
}
