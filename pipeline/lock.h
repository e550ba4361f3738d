/* Region lock (pipeline-internal). */
#ifndef ARALWATCH_LOCK_H
#define ARALWATCH_LOCK_H

#include "aralwatch/ctx.h"

/* Take the region's run lock or fail with AW_ERR_LOCKED naming the
 * holder. */
aw_status aw_lock_acquire(aw_ctx *ctx, const char *region_dir, int *fd_out);
void aw_lock_release(int fd);

#endif
