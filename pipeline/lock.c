/* One run per region at a time: an advisory lock (flock) on
 * OUT/<region>/.aralwatch.lock. The kernel drops the lock when its holder
 * dies, however it dies, so a stale lock never blocks the next night; the
 * file's text (pid, host, start time) only serves to name the holder. */
#define _DEFAULT_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>
#include "aralwatch/util.h"
#include "lock.h"

aw_status aw_lock_acquire(aw_ctx *ctx, const char *region_dir, int *fd_out)
{
    char *path = aw_path_join(region_dir, ".aralwatch.lock");
    if (!path)
        return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) {
        aw_status st = aw_fail(ctx, AW_ERR_IO, "%s: cannot open the lock: %s",
                               path, strerror(errno));
        free(path);
        return st;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        char holder[256] = "";
        ssize_t n = pread(fd, holder, sizeof holder - 1, 0);
        holder[n > 0 ? n : 0] = '\0';
        char *nl = strchr(holder, '\n');
        if (nl)
            *nl = '\0';
        close(fd);
        aw_status st = aw_fail(ctx, AW_ERR_LOCKED,
                               "another aralwatch run holds %s (%s); not "
                               "starting a second one",
                               path, holder[0] ? holder : "holder unknown");
        free(path);
        return st;
    }
    char host[128] = "", now[21], text[256];
    (void)gethostname(host, sizeof host - 1);
    aw_utc_now(now);
    int len = snprintf(text, sizeof text, "pid %ld on %s since %s\n",
                       (long)getpid(), host, now);
    if (ftruncate(fd, 0) != 0 || pwrite(fd, text, (size_t)len, 0) != len)
        aw_log(ctx, AW_LOG_WARN, "%s: cannot record the lock holder", path);
    free(path);
    *fd_out = fd;
    return AW_OK;
}

void aw_lock_release(int fd)
{
    if (fd >= 0)
        close(fd); /* releases the flock */
}
