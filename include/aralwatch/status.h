/* aralwatch status codes and process exit codes.
 *
 * Library code returns an aw_status; only main() turns one into an exit
 * code (aw_exit_code). The exit codes are part of the public contract for
 * cron wrappers and are documented in README.md ("Exit codes"). */
#ifndef ARALWATCH_STATUS_H
#define ARALWATCH_STATUS_H

typedef enum aw_status {
    AW_OK = 0,
    AW_ERR_USAGE,     /* bad command line */
    AW_ERR_CONFIG,    /* config file invalid (names file, line, key) */
    AW_ERR_INPUT,     /* an input raster/vector is missing or unreadable */
    AW_ERR_IO,        /* writing an output failed */
    AW_ERR_NOMEM,     /* allocation failed or size overflow */
    AW_ERR_PROJ,      /* CRS or coordinate transformation failed */
    AW_ERR_CANCELLED, /* progress callback asked to stop */
    AW_ERR_LOCKED,    /* another run holds the region's lock */
    AW_ERR_INTERNAL   /* a bug: an invariant did not hold */
} aw_status;

/* Process exit codes (README.md "Exit codes"). */
enum {
    AW_EXIT_OK = 0,       /* success, no alert raised */
    AW_EXIT_INTERNAL = 1, /* unexpected internal error */
    AW_EXIT_USAGE = 2,    /* bad command line */
    AW_EXIT_CONFIG = 3,   /* config invalid; nothing was read or written */
    AW_EXIT_INPUT = 4,    /* input data unusable; nothing was written */
    AW_EXIT_PROCESS = 5,  /* processing or output failure */
    AW_EXIT_PARTIAL = 6,  /* some scenes failed, the others were written */
    AW_EXIT_LOCKED = 7,   /* another run of the same region is going on */
    AW_EXIT_ALERTS = 10,  /* success, and at least one alert was raised */
    AW_EXIT_CANCELLED = 130
};

/* Short English name of a status ("config error", ...). Never NULL. */
const char *aw_status_str(aw_status st);

/* The exit code main() returns for a failed status (AW_OK maps to 0). */
int aw_exit_code(aw_status st);

#endif
