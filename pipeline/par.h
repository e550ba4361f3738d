/* The ranks of an MPI run (pipeline/par.c). Built with -DAW_MPI=ON, the
 * binary runs under mpirun/srun as N cooperating processes; without it
 * (the default) every function here is the single-process trivial one:
 * one rank, reductions that change nothing.
 *
 * Every function marked collective must be called by every rank in the
 * same order; the pipeline only calls them at points every rank reaches
 * (after each pass of a date, not inside a failure branch). */
#ifndef ARALWATCH_PAR_H
#define ARALWATCH_PAR_H

#include <stddef.h>
#include <stdint.h>
#include "aralwatch/ctx.h"
#include "aralwatch/kernels.h"

/* MPI_Init_thread (funneled: OpenMP threads never call MPI) and its end.
 * Idempotent; a no-op without MPI. */
void aw_par_init(int *argc, char ***argv);
void aw_par_finalize(void);

int aw_par_rank(void); /* 0 without MPI */
int aw_par_size(void); /* 1 without MPI */
static inline int aw_par_root(void)
{
    return aw_par_rank() == 0;
}

/* Collective: every rank gives its status; all get AW_OK when every rank
 * had AW_OK, else the status of the lowest failing rank, whose message
 * every other rank receives as "rank N: <message>". So a failure on one
 * rank never leaves the others waiting. */
aw_status aw_par_agree(aw_ctx *ctx, aw_status st);

/* Collective: n bytes from root to every rank. */
void aw_par_bcast(void *buf, size_t n, int root);
/* Collective: root's string (may be NULL) into *s on every other rank
 * (freed and replaced there; NULL on out of memory). */
void aw_par_bcast_str(char **s, int root);

/* Collective, in place on every rank: element-wise sum of int64 (modulo
 * 2^64, exact and order-free), max of int, and the merge of zone
 * accumulators (aw_zacc_merge, the merge used between threads). */
void aw_par_sum_i64(int64_t *v, size_t n);
void aw_par_sum_u64(uint64_t *v, size_t n);
void aw_par_max_int(int *v, size_t n);
void aw_par_merge_zacc(aw_zacc *a, size_t n);

/* Collective: wait for every rank. */
void aw_par_barrier(void);

/* Stop the whole job now (a rank cannot go on and cannot tell the others
 * in step): message on stderr, then MPI_Abort. Without MPI: exit(code).
 * Only main.c and the test hook call it, never library code paths. */
_Noreturn void aw_par_abort(const char *msg, int code);

/* Test hook: when AW_MPI_TEST_DIE_RANK=N is set, rank N kills itself
 * with SIGKILL at `where` == AW_MPI_TEST_DIE_AT (default "strip"), to
 * test that a dead rank aborts the job instead of hanging it. */
void aw_par_test_die(const char *where);

#endif
