/* Status names and the status -> exit code mapping (README "Exit codes"). */
#include "aralwatch/status.h"

const char *aw_status_str(aw_status st)
{
    switch (st) {
    case AW_OK:
        return "success";
    case AW_ERR_USAGE:
        return "usage error";
    case AW_ERR_CONFIG:
        return "config error";
    case AW_ERR_INPUT:
        return "input error";
    case AW_ERR_IO:
        return "output error";
    case AW_ERR_NOMEM:
        return "out of memory";
    case AW_ERR_PROJ:
        return "projection error";
    case AW_ERR_CANCELLED:
        return "cancelled";
    case AW_ERR_LOCKED:
        return "locked";
    case AW_ERR_INTERNAL:
        return "internal error";
    }
    return "unknown status";
}

int aw_exit_code(aw_status st)
{
    switch (st) {
    case AW_OK:
        return AW_EXIT_OK;
    case AW_ERR_USAGE:
        return AW_EXIT_USAGE;
    case AW_ERR_CONFIG:
        return AW_EXIT_CONFIG;
    case AW_ERR_INPUT:
    case AW_ERR_PROJ:
        return AW_EXIT_INPUT;
    case AW_ERR_IO:
    case AW_ERR_NOMEM:
        return AW_EXIT_PROCESS;
    case AW_ERR_CANCELLED:
        return AW_EXIT_CANCELLED;
    case AW_ERR_LOCKED:
        return AW_EXIT_LOCKED;
    case AW_ERR_INTERNAL:
        return AW_EXIT_INTERNAL;
    }
    return AW_EXIT_INTERNAL;
}
