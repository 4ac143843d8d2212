/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* A frozen target's lifetime, shared by checkpoint, restore and lazy restore. */

#include <stdlib.h>

#include "macro.h"
#include "memcr.h"
#include "procfs.h"

uint64_t proc_rss_bytes(pid_t pid) {
        uint64_t kib;

        return procfs_status_u64(pid, 0, "VmRSS", &kib) < 0 ? 0 : kib * 1024;
}

int memcr_kill(Frozen *f) {
        assert(f);

        if (f->tracee) {
                (void) tracee_kill(f->tracee);
                f->tracee = tracee_free(f->tracee);
        }
        f->memory_out = false;
        return 0;
}

Frozen *frozen_free(Frozen *f) {
        if (!f)
                return NULL;
        if (f->tracee) {
                if (f->memory_out)
                        /* Fail-safe: never let it run with pages missing. */
                        memcr_kill(f);
                else
                        f->tracee = tracee_free(f->tracee);
        }
        safe_close(f->mem_fd);
        safe_close(f->pagemap_fd);
        safe_close(f->pidfd);
        dump_free(f->dump);
        return mfree(f);
}
