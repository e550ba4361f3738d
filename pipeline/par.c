/* The ranks of an MPI run; see par.h. With AW_HAVE_MPI the reductions are
 * MPI_Allreduce calls on exact integer data (sums modulo 2^64, min/max,
 * the zone accumulators' own merge as a user operation), so the result is
 * the same bits whatever the number of ranks and the order MPI combines
 * them in. */
#define _POSIX_C_SOURCE 200809L
#include "par.h"
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "aralwatch/util.h"
#ifdef AW_HAVE_MPI
#include <mpi.h>
#endif

#ifdef AW_HAVE_MPI
static int g_rank = 0, g_size = 1, g_inited = 0;
static MPI_Datatype g_zacc_type = MPI_DATATYPE_NULL;
static MPI_Op g_zacc_op = MPI_OP_NULL;

static void zacc_merge_op(void *in, void *inout, int *len, MPI_Datatype *dt)
{
    (void)dt;
    const aw_zacc *a = in;
    aw_zacc *b = inout;
    for (int i = 0; i < *len; i++)
        aw_zacc_merge(&b[i], &a[i]);
}

void aw_par_init(int *argc, char ***argv)
{
    int flag = 0;
    MPI_Initialized(&flag);
    if (!flag) {
        int provided = 0;
        MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
    }
    g_inited = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    /* Errors come back as codes (checked below) rather than killing the
     * job from inside the library without a word. */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Type_contiguous((int)sizeof(aw_zacc), MPI_BYTE, &g_zacc_type);
    MPI_Type_commit(&g_zacc_type);
    MPI_Op_create(zacc_merge_op, 1, &g_zacc_op);
}

void aw_par_finalize(void)
{
    if (!g_inited)
        return;
    if (g_zacc_op != MPI_OP_NULL)
        MPI_Op_free(&g_zacc_op);
    if (g_zacc_type != MPI_DATATYPE_NULL)
        MPI_Type_free(&g_zacc_type);
    int fin = 0;
    MPI_Finalized(&fin);
    if (!fin)
        MPI_Finalize();
    g_inited = 0;
}

int aw_par_rank(void)
{
    return g_rank;
}

int aw_par_size(void)
{
    return g_size;
}

/* An MPI call that fails leaves the ranks out of step: nothing sensible
 * can follow, so the job ends with the reason. */
static void check(int rc, const char *what)
{
    if (rc == MPI_SUCCESS)
        return;
    char err[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, err, &len);
    char msg[512];
    snprintf(msg, sizeof msg, "%s failed: %s", what, err);
    aw_par_abort(msg, AW_EXIT_PROCESS);
}

/* Large arrays go in pieces: MPI counts are int. */
#define CHUNK ((size_t)1 << 28)

void aw_par_bcast(void *buf, size_t n, int root)
{
    if (g_size < 2)
        return;
    for (size_t o = 0; o < n; o += CHUNK) {
        size_t k = n - o < CHUNK ? n - o : CHUNK;
        check(
            MPI_Bcast((char *)buf + o, (int)k, MPI_BYTE, root, MPI_COMM_WORLD),
            "MPI_Bcast");
    }
}

void aw_par_sum_u64(uint64_t *v, size_t n)
{
    if (g_size < 2)
        return;
    for (size_t o = 0; o < n; o += CHUNK / 8) {
        size_t k = n - o < CHUNK / 8 ? n - o : CHUNK / 8;
        check(MPI_Allreduce(MPI_IN_PLACE, v + o, (int)k, MPI_UINT64_T, MPI_SUM,
                            MPI_COMM_WORLD),
              "MPI_Allreduce (sum)");
    }
}

void aw_par_sum_i64(int64_t *v, size_t n)
{
    /* Two's complement: the unsigned sum modulo 2^64 is the signed sum,
     * without signed overflow. */
    aw_par_sum_u64((uint64_t *)(void *)v, n);
}

void aw_par_max_int(int *v, size_t n)
{
    if (g_size < 2 || n == 0)
        return;
    check(MPI_Allreduce(MPI_IN_PLACE, v, (int)n, MPI_INT, MPI_MAX,
                        MPI_COMM_WORLD),
          "MPI_Allreduce (max)");
}

void aw_par_merge_zacc(aw_zacc *a, size_t n)
{
    if (g_size < 2 || n == 0)
        return;
    check(MPI_Allreduce(MPI_IN_PLACE, a, (int)n, g_zacc_type, g_zacc_op,
                        MPI_COMM_WORLD),
          "MPI_Allreduce (zone accumulators)");
}

void aw_par_barrier(void)
{
    if (g_size < 2)
        return;
    check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
}

_Noreturn void aw_par_abort(const char *msg, int code)
{
    fprintf(stderr, "aralwatch: rank %d of %d: %s; aborting the job\n", g_rank,
            g_size, msg);
    fflush(stderr);
    if (g_inited)
        MPI_Abort(MPI_COMM_WORLD, code);
    exit(code);
}
#else
void aw_par_init(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
}

void aw_par_finalize(void)
{
}

int aw_par_rank(void)
{
    return 0;
}

int aw_par_size(void)
{
    return 1;
}

void aw_par_bcast(void *buf, size_t n, int root)
{
    (void)buf;
    (void)n;
    (void)root;
}

void aw_par_sum_u64(uint64_t *v, size_t n)
{
    (void)v;
    (void)n;
}

void aw_par_sum_i64(int64_t *v, size_t n)
{
    (void)v;
    (void)n;
}

void aw_par_max_int(int *v, size_t n)
{
    (void)v;
    (void)n;
}

void aw_par_merge_zacc(aw_zacc *a, size_t n)
{
    (void)a;
    (void)n;
}

void aw_par_barrier(void)
{
}

_Noreturn void aw_par_abort(const char *msg, int code)
{
    fprintf(stderr, "aralwatch: %s\n", msg);
    exit(code);
}
#endif

void aw_par_bcast_str(char **s, int root)
{
    if (aw_par_size() < 2)
        return;
    long long len = -1;
    if (aw_par_rank() == root)
        len = *s ? (long long)strlen(*s) : -1;
    aw_par_bcast(&len, sizeof len, root);
    if (aw_par_rank() == root) {
        if (len >= 0)
            aw_par_bcast(*s, (size_t)len, root);
        return;
    }
    free(*s);
    *s = NULL;
    if (len < 0)
        return;
    char *tmp = malloc((size_t)len + 1);
    if (!tmp)
        aw_par_abort("out of memory receiving a string", AW_EXIT_PROCESS);
    aw_par_bcast(tmp, (size_t)len, root);
    tmp[len] = '\0';
    *s = tmp;
}

aw_status aw_par_agree(aw_ctx *ctx, aw_status st)
{
    int size = aw_par_size();
    if (size < 2)
        return st;
    /* Lowest failing rank: max over ranks of (size - rank) where failed. */
    int who = st != AW_OK ? size - aw_par_rank() : 0;
    aw_par_max_int(&who, 1);
    if (who == 0)
        return AW_OK;
    int root = size - who;
    int code = (int)st;
    aw_par_bcast(&code, sizeof code, root);
    char *msg = aw_par_rank() == root ? aw_strdup(aw_ctx_errmsg(ctx)) : NULL;
    aw_par_bcast_str(&msg, root);
    if (aw_par_rank() != root)
        aw_fail(ctx, (aw_status)code, "rank %d: %s", root, msg ? msg : "?");
    free(msg);
    return (aw_status)code;
}

void aw_par_test_die(const char *where)
{
    const char *r = getenv("AW_MPI_TEST_DIE_RANK");
    if (!r || aw_par_size() < 2)
        return;
    const char *at = getenv("AW_MPI_TEST_DIE_AT");
    if (strcmp(at ? at : "strip", where) != 0)
        return;
    if (strtol(r, NULL, 10) == aw_par_rank())
        raise(SIGKILL);
}
