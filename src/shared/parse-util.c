/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "parse-util.h"

int pid_from_string(const char *s, pid_t *ret) {
        unsigned long long v;
        char *end;

        if (*s < '0' || *s > '9') /* no sign, no blanks (strtoull() takes both) */
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (*end)
                return -EINVAL;
        if (errno == ERANGE || v == 0 || v > INT32_MAX)
                return -ERANGE;
        *ret = (pid_t) v;
        return 0;
}
