/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Lazy restore: the frozen process runs again at once and its memory streams
 * back behind it.
 *
 * A userfaultfd is created inside the target (by the parasite, from a
 * /dev/userfaultfd descriptor we hand in, or with userfaultfd(2)), every
 * dumped anonymous area is registered in missing mode, areas that cannot be
 * (private file mappings) are written back first, and the target resumes.
 * From then on a fault is answered with UFFDIO_COPY of the page's chunk
 * (verified first), while worker threads copy everything else in the
 * background, the areas holding the threads' stacks first.
 *
 * The target keeps running under ptrace (PTRACE_O_EXITKILL) until every page
 * is in: if we die, it dies rather than read zero-filled holes. Its fork,
 * mremap, madvise(MADV_DONTNEED) and munmap are followed through the
 * userfaultfd events: nothing is filled where it discarded memory, and a
 * child forked meanwhile is served like its parent (it is traced too).
 */

#include <stdint.h>

#include "memcr.h"

typedef struct LazyRestore LazyRestore;

typedef struct LazyOptions {
        int userfaultfd_dev; /* an open /dev/userfaultfd, or -1: userfaultfd(2) in the target */
        unsigned workers;    /* background copy threads, 0 = default */
        bool fault_only;     /* no background copy: pages come only when touched (tests) */
} LazyOptions;

typedef struct LazyProgress {
        uint64_t total_bytes;
        uint64_t done_bytes;     /* copied, or discarded by the target */
        uint64_t faults;         /* pages the target asked for */
        uint64_t spaces;         /* address spaces served (target and children) */
        usec_t running_usec;     /* request to target running */
        usec_t complete_usec;    /* request to fully resident (0 while streaming) */
        bool exited;             /* the target ended while its memory streamed back */
        int exit_status;         /* how, as waitpid() reports it */
        usec_t exited_usec;      /* when, after it ran again */
} LazyProgress;

/* Takes the target over from f (which must have its memory out) and lets it
 * run. On failure the target is still frozen in f (eager restore remains
 * possible) unless it was killed (then f no longer holds it). */
int lazy_restore_start(Frozen *f, const LazyOptions *o, LazyRestore **ret);

/* Poll this for input, then call lazy_restore_process(). */
int lazy_restore_fd(LazyRestore *l);

/* Serve what is pending. Returns 1 once every page is in (or the target is
 * gone) and the target has been released, 0 to be called again, or -errno
 * after the target had to be killed (a chunk failed verification, say). */
int lazy_restore_process(LazyRestore *l);

void lazy_restore_progress(LazyRestore *l, LazyProgress *ret);

/* A restore that did not complete kills the target (it must not run on
 * with pages missing). */
LazyRestore *lazy_restore_free(LazyRestore *l);
