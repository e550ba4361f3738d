/* Small helpers shared by the pipeline: checked allocation, strings, paths,
 * checksums, atomic file writes. No GDAL here either. */
#ifndef ARALWATCH_UTIL_H
#define ARALWATCH_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include "aralwatch/ctx.h"

/* calloc(n, size) that returns NULL when n * size overflows
 * (GDAL's VSIMalloc2). */
void *aw_calloc2(size_t n, size_t size);
/* malloc(n * size), NULL on overflow: for buffers written whole before
 * they are read. */
void *aw_malloc2(size_t n, size_t size);

/* strdup that returns NULL on NULL. */
char *aw_strdup(const char *s);

/* printf into a new heap string; NULL on no memory. */
char *aw_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Join dir and name unless name is absolute; new heap string. */
char *aw_path_join(const char *dir, const char *name);

/* Folder part of a path ("." when there is none); new heap string. */
char *aw_path_dirname(const char *path);

/* Last component of a path, without the folder; new heap string. */
char *aw_path_basename(const char *path);

/* mkdir -p. */
aw_status aw_mkdirs(aw_ctx *ctx, const char *path);

/* Hex SHA-256 (64 chars + NUL) of a file's bytes. */
aw_status aw_sha256_file(aw_ctx *ctx, const char *path, char hex[65]);

/* Hex SHA-256 of a buffer. */
void aw_sha256_buf(const void *data, size_t n, char hex[65]);

/* Write bytes to path atomically: a temporary name in the same folder,
 * fsync, rename. */
aw_status aw_write_file_atomic(aw_ctx *ctx, const char *path, const void *data,
                               size_t n);

/* A unique temporary name next to path ("<path>.tmp-<pid>-<n>"); new heap
 * string. */
char *aw_tmp_name(const char *path);

/* Rename tmp to path after fsync of the file and of the folder. */
aw_status aw_commit_file(aw_ctx *ctx, const char *tmp, const char *path);

/* fsync a file or folder by path (best effort: errors are ignored, as some
 * filesystems refuse fsync on folders). */
void aw_fsync_path(const char *path);

/* pread / pwrite of exactly n bytes at offset off, retried on EINTR and
 * short counts. 0, or -1 with errno set (EIO: the file ended first;
 * ENOSPC: nothing could be written). */
int aw_pread_full(int fd, void *buf, size_t n, uint64_t off);
int aw_pwrite_full(int fd, const void *buf, size_t n, uint64_t off);
/* pwritev of every byte of n buffers at offset off, as aw_pwrite_full
 * (iov is used up: its entries change on a short write). */
struct iovec;
int aw_pwritev_full(int fd, struct iovec *iov, int n, uint64_t off);

/* " (No space left on device: N KiB free ...)" when the file system of
 * path's folder has less than 1 MiB free, else "": for write errors whose
 * message (GDAL's) does not say why. Returns buf. */
const char *aw_disk_full_note(const char *path, char *buf, size_t n);

/* Cancellation: main() installs SIGINT/SIGTERM handlers that call
 * aw_request_cancel(); long loops poll aw_cancel_requested(). */
void aw_request_cancel(void);
int aw_cancel_requested(void);

/* Seconds since an arbitrary fixed point (monotonic clock). */
double aw_now(void);

/* Current UTC time as "YYYY-MM-DDTHH:MM:SSZ". */
void aw_utc_now(char buf[21]);

/* Days since 1970-01-01 of a "YYYY-MM-DD" date (proleptic Gregorian), and
 * back (years outside 0000-9999 are clamped to them). */
long aw_days_from_date(const char *ymd);

/* qsort comparator of doubles, ascending (NaN not expected). */
int aw_cmp_double(const void *a, const void *b);
void aw_date_from_days(long days, char out[11]);

#endif
