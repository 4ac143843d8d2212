/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * At start-up the watchers are the truth: every socket in the watchers'
 * directory is asked what it holds, and the registry is rebuilt from the
 * answers, as they come. A watcher that does not answer within the time
 * limit is forgotten (it keeps its process); one whose socket nobody
 * serves any more died while no memcrd was there to see it, and that is
 * reported.
 */

#include "manager.h"

typedef struct Rebuild Rebuild;

/* Ask every watcher found; answers come later, on the event loop. */
int rebuild_start(Manager *m);
Rebuild *rebuild_free(Rebuild *r);
