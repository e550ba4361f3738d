/* Helpers shared by the libFuzzer targets in tests/fuzz: a private scratch
 * folder per fuzzer process (under $TMPDIR, default /tmp), removed at exit,
 * and writing one input into a file there. */
#ifndef AW_FUZZ_UTIL_H
#define AW_FUZZ_UTIL_H

#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char fz_root[4096];

static inline int fz_rm_entry(const char *path, const struct stat *sb, int flag,
                              struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static inline void fz_cleanup(void)
{
    if (fz_root[0])
        nftw(fz_root, fz_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Create the scratch folder once; aborts when that is impossible (the
 * fuzzer cannot do anything useful then). */
static inline const char *fz_scratch(const char *name)
{
    if (fz_root[0])
        return fz_root;
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !tmp[0])
        tmp = "/tmp";
    int n = snprintf(fz_root, sizeof fz_root, "%s/aw_%s.XXXXXX", tmp, name);
    if (n < 0 || (size_t)n >= sizeof fz_root || !mkdtemp(fz_root)) {
        perror("fuzz: cannot create a scratch folder");
        abort();
    }
    atexit(fz_cleanup);
    return fz_root;
}

/* dst = a/b; aborts when it does not fit. */
static inline void fz_join(char *dst, size_t cap, const char *a, const char *b)
{
    int n = snprintf(dst, cap, "%s/%s", a, b);
    if (n < 0 || (size_t)n >= cap) {
        fputs("fuzz: path too long\n", stderr);
        abort();
    }
}

static inline void fz_mkdir(const char *path)
{
    if (mkdir(path, 0700) != 0) {
        perror(path);
        abort();
    }
}

/* Replace the file at path with exactly data[0..size); aborts on an I/O
 * error, which is the harness's fault, not the input's. */
static inline void fz_write(const char *path, const uint8_t *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
        perror(path);
        abort();
    }
}

#endif
