/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <poll.h>
#include <stdlib.h>

#include "log.h"
#include "macro.h"
#include "memcr.h"
#include "transfer.h"

static bool process_alive(int pidfd) {
        struct pollfd p = { .fd = pidfd, .events = POLLIN };
        return poll(&p, 1, 0) == 0;
}

/* Killed by someone else? Its memory is gone a moment before its threads
 * are zombies, so a failed transfer may see the one before the other. */
static bool target_died(Frozen *f) {
        for (int i = 0; i < 100; i++) {
                if (!process_alive(f->pidfd) || tracee_is_dead(f->tracee))
                        return true;
                usleep_safe(USEC_PER_MSEC);
        }
        return false;
}

int memcr_restore(Frozen *f, memcr_progress_t progress, void *userdata, RestoreStats *ret) {
        usec_t t0 = now_usec(CLOCK_MONOTONIC);
        RestoreStats stats = {};
        int r;

        assert(f);

        if (!f->tracee)
                return -ESRCH;
        if (!process_alive(f->pidfd)) {
                /* Died while frozen (SIGKILL): nothing to put back. */
                for (size_t i = 0; i < f->tracee->n_threads; i++)
                        f->tracee->threads[i].gone = true;
                f->tracee = tracee_free(f->tracee);
                f->memory_out = false;
                return -ESRCH;
        }

        if (f->memory_out) {
                TransferOptions o = {
                        .workers = f->workers,
                        .pid = f->pid,
                        .progress = progress,
                        .userdata = userdata,
                };

                r = dump_check_file(f->dump);
                if (r < 0) {
                        log_debug_errno(r, "dump of %i failed verification, killing it: %m", f->pid);
                        memcr_kill(f);
                        return r;
                }
                r = transfer_from_dump(f->dump, f->mem_fd, &o);
                if (r < 0) {
                        bool died = target_died(f);

                        log_debug_errno(r, "restoring %i failed, killing it: %m", f->pid);
                        memcr_kill(f);
                        return died ? -ESRCH : r;
                }
                stats.restored_bytes = f->dump->header.raw_bytes;
                f->memory_out = false;
        }

        r = tracee_detach(f->tracee);
        f->tracee = tracee_free(f->tracee);
        if (r < 0)
                return r;

        stats.rss_after = proc_rss_bytes(f->pid);
        stats.duration = now_usec(CLOCK_MONOTONIC) - t0;
        if (ret)
                *ret = stats;
        return 0;
}
