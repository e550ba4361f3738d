/* Checked allocation, strings, paths, SHA-256 (OpenSSL EVP) and atomic
 * file commits (temporary name, fsync, rename, fsync of the folder). */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* pwritev */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <openssl/evp.h>
#include "aralwatch/util.h"

void *aw_calloc2(size_t n, size_t size)
{
    if (n == 0 || size == 0)
        return calloc(1, 1);
    if (n > SIZE_MAX / size)
        return NULL;
    return calloc(n, size);
}

void *aw_malloc2(size_t n, size_t size)
{
    if (n == 0 || size == 0)
        return malloc(1);
    if (n > SIZE_MAX / size)
        return NULL;
    return malloc(n * size);
}

char *aw_strdup(const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

char *aw_asprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    char *s = malloc((size_t)n + 1);
    if (!s)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

char *aw_path_join(const char *dir, const char *name)
{
    if (!name)
        return NULL;
    if (name[0] == '/' || !dir || !dir[0] || strcmp(dir, ".") == 0)
        return aw_strdup(name);
    size_t dl = strlen(dir);
    if (dir[dl - 1] == '/')
        return aw_asprintf("%s%s", dir, name);
    return aw_asprintf("%s/%s", dir, name);
}

char *aw_path_dirname(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return aw_strdup(".");
    if (slash == path)
        return aw_strdup("/");
    size_t n = (size_t)(slash - path);
    char *d = malloc(n + 1);
    if (!d)
        return NULL;
    memcpy(d, path, n);
    d[n] = '\0';
    return d;
}

char *aw_path_basename(const char *path)
{
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/')
        n--;
    size_t start = n;
    while (start > 0 && path[start - 1] != '/')
        start--;
    char *b = malloc(n - start + 1);
    if (!b)
        return NULL;
    memcpy(b, path + start, n - start);
    b[n - start] = '\0';
    return b;
}

aw_status aw_mkdirs(aw_ctx *ctx, const char *path)
{
    char *p = aw_strdup(path);
    if (!p)
        return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST) {
            aw_status st =
                aw_fail(ctx, AW_ERR_IO, "cannot create folder %s: %s", p,
                        strerror(errno));
            free(p);
            return st;
        }
        *s = '/';
    }
    if (mkdir(p, 0777) != 0 && errno != EEXIST) {
        aw_status st = aw_fail(ctx, AW_ERR_IO, "cannot create folder %s: %s", p,
                               strerror(errno));
        free(p);
        return st;
    }
    struct stat sb;
    if (stat(p, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        aw_status st =
            aw_fail(ctx, AW_ERR_IO, "%s exists and is not a folder", p);
        free(p);
        return st;
    }
    free(p);
    return AW_OK;
}

static void to_hex(const unsigned char *md, unsigned n, char *hex)
{
    static const char digits[] = "0123456789abcdef";
    for (unsigned i = 0; i < n; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[2 * n] = '\0';
}

void aw_sha256_buf(const void *data, size_t n, char hex[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    EVP_Digest(data, n, md, &mdlen, EVP_sha256(), NULL);
    to_hex(md, mdlen, hex);
}

aw_status aw_sha256_file(aw_ctx *ctx, const char *path, char hex[65])
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return aw_fail(ctx, AW_ERR_INPUT, "%s: cannot open: %s", path,
                       strerror(errno));
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!md) {
        fclose(f);
        return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    }
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    unsigned char buf[1 << 16];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, f)) > 0)
        EVP_DigestUpdate(md, buf, got);
    int err = ferror(f);
    fclose(f);
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned outlen = 0;
    EVP_DigestFinal_ex(md, out, &outlen);
    EVP_MD_CTX_free(md);
    if (err)
        return aw_fail(ctx, AW_ERR_INPUT, "%s: read error", path);
    to_hex(out, outlen, hex);
    return AW_OK;
}

char *aw_tmp_name(const char *path)
{
    static unsigned counter; /* only the main thread writes files */
    counter++;
    return aw_asprintf("%s.tmp-%ld-%u", path, (long)getpid(), counter);
}

static aw_status fsync_dir_of(aw_ctx *ctx, const char *path)
{
    char *dir = aw_path_dirname(path);
    if (!dir)
        return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        (void)fsync(fd); /* best effort: some filesystems refuse */
        close(fd);
    }
    free(dir);
    return AW_OK;
}

aw_status aw_commit_file(aw_ctx *ctx, const char *tmp, const char *path)
{
    int fd = open(tmp, O_RDONLY);
    if (fd < 0)
        return aw_fail(ctx, AW_ERR_IO, "%s: cannot reopen for fsync: %s", tmp,
                       strerror(errno));
    if (fsync(fd) != 0) {
        int e = errno;
        close(fd);
        unlink(tmp);
        return aw_fail(ctx, AW_ERR_IO, "%s: fsync failed: %s", tmp,
                       strerror(e));
    }
    close(fd);
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return aw_fail(ctx, AW_ERR_IO, "cannot rename %s to %s: %s", tmp, path,
                       strerror(e));
    }
    return fsync_dir_of(ctx, path);
}

aw_status aw_write_file_atomic(aw_ctx *ctx, const char *path, const void *data,
                               size_t n)
{
    char *tmp = aw_tmp_name(path);
    if (!tmp)
        return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        aw_status st = aw_fail(ctx, AW_ERR_IO, "%s: cannot create: %s", tmp,
                               strerror(errno));
        free(tmp);
        return st;
    }
    size_t put = fwrite(data, 1, n, f);
    int bad = put != n || fflush(f) != 0;
    int e = errno;
    if (fclose(f) != 0)
        bad = 1;
    if (bad) {
        unlink(tmp);
        aw_status st =
            aw_fail(ctx, AW_ERR_IO, "%s: write failed: %s", path, strerror(e));
        free(tmp);
        return st;
    }
    aw_status st = aw_commit_file(ctx, tmp, path);
    free(tmp);
    return st;
}

void aw_fsync_path(const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return;
    (void)fsync(fd);
    close(fd);
}

/* The only process-wide state: written by a signal handler. */
static volatile sig_atomic_t cancel_flag;

void aw_request_cancel(void)
{
    cancel_flag = 1;
}

int aw_cancel_requested(void)
{
    return cancel_flag != 0;
}

double aw_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void aw_utc_now(char buf[21])
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, 21, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

const char *aw_disk_full_note(const char *path, char *buf, size_t n)
{
    buf[0] = '\0';
    char *dir = aw_strdup(path);
    if (!dir)
        return buf;
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir)
        *slash = '\0';
    struct statvfs vb;
    if (statvfs(dir, &vb) == 0) {
        unsigned long long avail =
            (unsigned long long)vb.f_bavail * (unsigned long long)vb.f_frsize;
        if (avail < (1ull << 20))
            snprintf(buf, n,
                     " (No space left on device: %llu KiB free on the file "
                     "system of %s)",
                     avail / 1024, dir);
    }
    free(dir);
    return buf;
}

/* Days since 1970-01-01 of a YYYY-MM-DD date (proleptic Gregorian; H.
 * Hinnant's days_from_civil). */
long aw_days_from_date(const char *d)
{
    long y = (d[0] - '0') * 1000 + (d[1] - '0') * 100 + (d[2] - '0') * 10 +
             (d[3] - '0');
    long m = (d[5] - '0') * 10 + (d[6] - '0');
    long dd = (d[8] - '0') * 10 + (d[9] - '0');
    y -= m <= 2;
    long era = (y >= 0 ? y : y - 399) / 400;
    long yoe = y - era * 400;
    long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + dd - 1;
    long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void aw_date_from_days(long z, char out[11])
{
    z += 719468;
    long era = (z >= 0 ? z : z - 146096) / 146097;
    long doe = z - era * 146097;
    long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long y = yoe + era * 400;
    long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    long mp = (5 * doy + 2) / 153;
    long d = doy - (153 * mp + 2) / 5 + 1;
    long m = mp + (mp < 10 ? 3 : -9);
    y += m <= 2;
    if (y < 0 || y > 9999) {
        snprintf(out, 11, "%s", y < 0 ? "0000-01-01" : "9999-12-31");
        return;
    }
    snprintf(out, 11, "%04u-%02u-%02u", (unsigned)y % 10000u,
             (unsigned)m % 100u, (unsigned)d % 100u);
}

int aw_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int aw_pread_full(int fd, void *buf, size_t n, uint64_t off)
{
    char *p = buf;
    while (n > 0) {
        ssize_t k = pread(fd, p, n, (off_t)off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            if (k == 0)
                errno = EIO;
            return -1;
        }
        p += k;
        n -= (size_t)k;
        off += (uint64_t)k;
    }
    return 0;
}

int aw_pwritev_full(int fd, struct iovec *iov, int n, uint64_t off)
{
    while (n > 0) {
        ssize_t k = pwritev(fd, iov, n, (off_t)off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            if (k == 0)
                errno = ENOSPC;
            return -1;
        }
        off += (uint64_t)k;
        /* Past what went out: whole buffers, then part of the next. */
        while (n > 0 && (size_t)k >= iov->iov_len) {
            k -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + k;
            iov->iov_len -= (size_t)k;
        }
    }
    return 0;
}

int aw_pwrite_full(int fd, const void *buf, size_t n, uint64_t off)
{
    struct iovec one = {(void *)(uintptr_t)buf, n};
    return n ? aw_pwritev_full(fd, &one, 1, off) : 0;
}
