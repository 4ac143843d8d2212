/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

#include "watch.h"

/* Serves requests while the target is frozen. Returns once it is restored
 * (on request, on a stop request, when its maximum frozen time is up) or
 * gone (-ESRCH). */
int watch_hold(Watch *w);

/* The watcher cannot hold the target as it should (a set-up step failed
 * after the checkpoint, or its loop broke): the memory is safe in the dump,
 * so it is written back and the target runs on. Only a dump that fails
 * verification kills (see watch_restore_failed()). */
int watch_give_back(Watch *w, int error, const char *what);

/* Has a thread of the frozen target exited? */
bool watch_target_dying(Watch *w);
