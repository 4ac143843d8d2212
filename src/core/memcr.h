/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The engine: freeze a process, move its private memory into a dump and drop
 * it from RAM; later write every page back and let the process run.
 *
 * A Frozen object holds the target seized (all threads in a ptrace stop) for
 * as long as it exists. Freeing a Frozen whose memory is still out kills the
 * target: it must never run with pages missing.
 */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "codec.h"
#include "cipher.h"
#include "dump.h"
#include "macro.h"
#include "pagescan.h"
#include "proc-creds.h"
#include "time-util.h"
#include "tracee.h"

/* Progress of a transfer; during checkpoint a negative return aborts it
 * (the target then resumes unharmed and memcr_checkpoint returns that value). */
typedef int (*memcr_progress_t)(uint64_t done, uint64_t total, void *userdata);

typedef struct CheckpointOptions {
        const char *dump_dir;      /* where the unnamed dump file is created */
        Codec codec;
        int level;                 /* codec level, 0 = default */
        Protection protection;     /* PROTECTION_ENCRYPT (default) or PROTECTION_AUTH */
        size_t chunk_size;         /* 0 = default */
        unsigned workers;          /* 0 = one per CPU, at most 4 */
        usec_t stop_timeout;       /* for threads to stop when seized; 0 = 2 s */
        usec_t deadline;           /* CLOCK_MONOTONIC, abort after; 0 = none */
        PageScanMode scan_mode;
        memcr_progress_t progress;
        void *userdata;
        /* If set: the target must still be this, once every thread is
         * stopped (else -EPERM, target untouched). */
        const ProcIdentity *identity;
        char *reason;              /* if set, why a checkpoint was refused (-EPERM), in words */
        size_t reason_size;
} CheckpointOptions;

#define CHECKPOINT_OPTIONS_DEFAULT                                                                 \
        ((CheckpointOptions) { .dump_dir = "/var/tmp", .protection = PROTECTION_ENCRYPT })

typedef struct CheckpointStats {
        uint64_t rss_before;      /* bytes */
        uint64_t rss_after;
        uint64_t dumped_bytes;    /* raw page bytes */
        uint64_t dump_file_bytes; /* size of the dump file */
        uint64_t n_regions;
        uint64_t n_ranges;
        uint64_t n_threads;
        uint64_t thp_kb_before;
        uint64_t thp_kb_after;
        usec_t frozen_at;         /* CLOCK_REALTIME */
        usec_t duration;          /* request to frozen-and-dropped */
        usec_t freeze_duration;   /* seize done to cure done */
} CheckpointStats;

typedef struct RestoreStats {
        uint64_t restored_bytes;
        uint64_t rss_after;
        usec_t duration;
} RestoreStats;

typedef struct Frozen {
        pid_t pid;
        int pidfd;                /* owned */
        Tracee *tracee;
        int mem_fd;               /* the target's /proc/self/mem, opened by itself */
        int pagemap_fd;           /* and its /proc/self/pagemap */
        Dump *dump;
        bool memory_out;          /* pages dropped: must be restored before release */
        bool group_stopped;
        CheckpointStats stats;
        unsigned workers;
        char no_lazy[192];        /* why a lazy restore is impossible, or "" */
        PageScanMode scan_mode;   /* as the checkpoint was asked to scan */
} Frozen;

/* Checkpoint pid (pidfd pins it). On failure the target runs on unharmed
 * (or, if it died meanwhile, is gone) and nothing is left behind. */
int memcr_checkpoint(pid_t pid, int pidfd, const CheckpointOptions *o, Frozen **ret);

/* Write everything back and release the target. On success f no longer
 * holds the target (free it). If the dump fails verification, the target
 * is killed and -EBADMSG returned. Other failures: -errno, target killed
 * if its memory could not be put back. */
int memcr_restore(Frozen *f, memcr_progress_t progress, void *userdata, RestoreStats *ret);

/* Kill the target (fail-safe) and forget it. */
int memcr_kill(Frozen *f);

Frozen *frozen_free(Frozen *f);
DEFINE_TRIVIAL_CLEANUP_FUNC(Frozen *, frozen_free);
#define _cleanup_frozen_ __attribute__((cleanup(frozen_freep)))

/* VmRSS of pid in bytes, 0 if unknown. */
uint64_t proc_rss_bytes(pid_t pid);
