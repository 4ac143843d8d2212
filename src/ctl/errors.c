/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <string.h>

#include "errors.h"

int exit_code_from_result(int result) {
        switch (result) {
        case MEMCR_CLIENT_OK:
                return MEMCRCTL_EXIT_SUCCESS;
        case MEMCR_CLIENT_ERR_DENIED:
                return MEMCRCTL_EXIT_DENIED;
        case MEMCR_CLIENT_ERR_NO_PROCESS:
                return MEMCRCTL_EXIT_NO_PROCESS;
        case MEMCR_CLIENT_ERR_NOT_FROZEN:
                return MEMCRCTL_EXIT_NOT_FROZEN;
        case MEMCR_CLIENT_ERR_ALREADY_FROZEN:
                return MEMCRCTL_EXIT_ALREADY_FROZEN;
        case MEMCR_CLIENT_ERR_TIMEOUT:
                return MEMCRCTL_EXIT_TIMEOUT;
        default:
                return MEMCRCTL_EXIT_FAILED;
        }
}

bool errno_is_disconnect(int r) {
        switch (-r) {
        case ECONNRESET:
        case ECONNABORTED:
        case ECONNREFUSED:
        case ENOTCONN:
        case EPIPE:
                return true;
        default:
                return false;
        }
}

int exit_code_from_errno(int r) {
        if (errno_is_disconnect(r))
                return MEMCRCTL_EXIT_UNREACHABLE;
        switch (-r) {
        case EPERM:
        case EACCES:
                return MEMCRCTL_EXIT_DENIED;
        case ESRCH:
                return MEMCRCTL_EXIT_NO_PROCESS;
        case ETIME:
        case ETIMEDOUT:
                return MEMCRCTL_EXIT_TIMEOUT;
        default:
                return MEMCRCTL_EXIT_FAILED;
        }
}

static const char *result_description(int result) {
        switch (result) {
        case MEMCR_CLIENT_ERR_DENIED:
                return "Access denied";
        case MEMCR_CLIENT_ERR_NO_PROCESS:
                return "No such process";
        case MEMCR_CLIENT_ERR_NOT_FROZEN:
                return "Process is not frozen";
        case MEMCR_CLIENT_ERR_ALREADY_FROZEN:
                return "Process is already frozen";
        case MEMCR_CLIENT_ERR_INVALID:
                return "Invalid request";
        case MEMCR_CLIENT_ERR_BUSY:
                return "Another operation on the process is in progress";
        case MEMCR_CLIENT_ERR_TIMEOUT:
                return "Timed out";
        case MEMCR_CLIENT_ERR_KILLED:
                return "Process was killed";
        case MEMCR_CLIENT_ERR_UNSUPPORTED:
                return "Not supported";
        default:
                return "Operation failed";
        }
}

/* What went wrong according to a reply: memcrd's message, else its errno, else the result. */
const char *reply_error_text(const MemcrReply *reply) {
        if (reply->message[0])
                return reply->message;
        if (reply->error > 0)
                return strerror(reply->error);
        return result_description(reply->result);
}
