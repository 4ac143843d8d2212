/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "watch.h"

/* Lets the frozen process run at once and streams its memory back behind
 * it, answering on fd (if not negative) as soon as it runs; returns once
 * all of it is back or the process has ended. Where a lazy restore is not
 * possible, restores eagerly (and the answer says why). If the restore
 * fails once the process runs, the process is killed and the watcher
 * exits. */
int watch_restore_lazy(Watch *w, int fd);
