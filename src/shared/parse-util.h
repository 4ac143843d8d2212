/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <sys/types.h>

/* A PID given as text (an argument, a line): decimal digits only, no sign or
 * blanks, 1 to INT32_MAX. 0, or -EINVAL (malformed) / -ERANGE (out of
 * range), *ret untouched then. */
int pid_from_string(const char *s, pid_t *ret);
