/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * How memcrctl tells a failure: its exit status (see memcrctl.c) and the
 * text of a reply that is not a success.
 */

#include <stdbool.h>

#include "memcr-client.h"

enum {
        MEMCRCTL_EXIT_SUCCESS = 0,
        MEMCRCTL_EXIT_FAILED = 1,
        MEMCRCTL_EXIT_USAGE = 2,
        MEMCRCTL_EXIT_DENIED = 3,
        MEMCRCTL_EXIT_NO_PROCESS = 4,
        MEMCRCTL_EXIT_NOT_FROZEN = 5,
        MEMCRCTL_EXIT_ALREADY_FROZEN = 6,
        MEMCRCTL_EXIT_UNREACHABLE = 7,
        MEMCRCTL_EXIT_TIMEOUT = 8,
};

/* The exit status of a reply's result. */
int exit_code_from_result(int result);
/* Whether -errno r means the connection to memcrd is gone. */
bool errno_is_disconnect(int r);
/* The exit status of a request that got no reply. */
int exit_code_from_errno(int r);
/* What went wrong according to a reply: memcrd's message, else its errno, else the result. */
const char *reply_error_text(const MemcrReply *reply);
