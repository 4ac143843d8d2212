/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "watch.h"

/* Writes all memory of the frozen process back and lets it run; answers on
 * fd (if not negative), with note as the answer's message (may be NULL).
 * why says what asked for it. */
int watch_restore(Watch *w, int fd, const char *why, const char *note);

/* A restore that failed with r: the target was killed (fail-safe), or had
 * exited (-ESRCH). Logs that, drops the dump and the socket, and answers on
 * fd (if not negative). Returns r. */
int watch_restore_failed(Watch *w, int fd, int r, const char *why);
