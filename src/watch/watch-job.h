/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "watch.h"

/* Waits for memcrd's checkpoint job (the first request on the restore
 * socket, with the target's pidfd), checkpoints the target as it says, and
 * answers it. 0 once the target is frozen (in w->frozen); -errno if not, the
 * target left as it was; -ECANCELED (and w->stopped_before_job) if the
 * watcher was stopped before a job came. */
int watch_checkpoint(Watch *w);
