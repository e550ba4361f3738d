/* Temporary folders and small files for tests that need a file tree (config
 * loading, path resolution). The includer defines _XOPEN_SOURCE 700 (for
 * nftw and mkdtemp) before any system header. */
#ifndef AW_CONFIG_TEST_UTIL_H
#define AW_CONFIG_TEST_UTIL_H

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "aralwatch/util.h"

/* A new empty folder "$TMPDIR/aw_<tag>_XXXXXX"; heap string, NULL on
 * failure. */
static inline char *aw_test_mkdtemp(const char *tag)
{
    const char *tmp = getenv("TMPDIR");
    char *tmpl =
        aw_asprintf("%s/aw_%s_XXXXXX", tmp && tmp[0] ? tmp : "/tmp", tag);
    if (tmpl && !mkdtemp(tmpl)) {
        free(tmpl);
        return NULL;
    }
    return tmpl;
}

static inline int aw_test_rm_entry_(const char *path, const struct stat *sb,
                                    int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* rm -rf dir (does not follow symbolic links). */
static inline void aw_test_rmtree(const char *dir)
{
    if (dir)
        (void)nftw(dir, aw_test_rm_entry_, 16, FTW_DEPTH | FTW_PHYS);
}

/* mkdir -p dir/rel; 0 on success. */
static inline int aw_test_mkdirs(const char *dir, const char *rel)
{
    char *p = aw_path_join(dir, rel);
    if (!p)
        return -1;
    int rc = 0;
    for (char *s = p + 1; rc == 0; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char c = *s;
        *s = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST)
            rc = -1;
        *s = c;
        if (c == '\0')
            break;
    }
    free(p);
    return rc;
}

/* Write text to dir/rel, creating the folders on the way; returns the full
 * path (heap string) or NULL on failure. */
static inline char *aw_test_write(const char *dir, const char *rel,
                                  const char *text)
{
    char *path = aw_path_join(dir, rel);
    if (!path)
        return NULL;
    char *parent = aw_path_dirname(path);
    int ok = parent && aw_test_mkdirs(parent, "") == 0;
    free(parent);
    FILE *f = ok ? fopen(path, "wb") : NULL;
    if (!f) {
        free(path);
        return NULL;
    }
    size_t n = strlen(text);
    ok = fwrite(text, 1, n, f) == n;
    if (fclose(f) != 0)
        ok = 0;
    if (!ok) {
        free(path);
        return NULL;
    }
    return path;
}

/* An empty file dir/rel; 0 on success. */
static inline int aw_test_touch(const char *dir, const char *rel)
{
    char *p = aw_test_write(dir, rel, "");
    free(p);
    return p ? 0 : -1;
}

/* The whole content of a file (heap string), NULL on failure. */
static inline char *aw_test_read(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (cap - n - 1 == 0) {
            char *b = realloc(buf, 2 * cap);
            if (!b) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = b;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf)
        buf[n] = '\0';
    return buf;
}

#endif
