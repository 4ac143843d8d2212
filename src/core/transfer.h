/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Moving page contents between a frozen target and its dump, chunk by chunk,
 * on several threads. The target's memory is accessed through its own
 * /proc/self/mem descriptor, which reaches PROT_NONE and read-only areas too.
 */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "dump.h"
#include "time-util.h"

/* Called on the caller's thread, every 200 ms and at start and end. A
 * negative return aborts a transfer to the dump (not one back into the
 * target: that cannot be abandoned halfway). */
typedef int (*transfer_progress_t)(uint64_t done, uint64_t total, void *userdata);

typedef struct TransferOptions {
        unsigned workers;  /* >= 1 */
        pid_t pid;         /* the target: process_vm_readv/writev where the area allows, 0 = never */
        usec_t deadline;   /* CLOCK_MONOTONIC, 0 = none */
        transfer_progress_t progress;
        void *userdata;
} TransferOptions;

/* Read every planned chunk from the target and store it in the dump. */
int transfer_to_dump(Dump *d, int mem_fd, const TransferOptions *o);

/* Load, verify and write every chunk back into the target. -EBADMSG if a
 * chunk fails verification. */
int transfer_from_dump(Dump *d, int mem_fd, const TransferOptions *o);

/* Write the listed chunks (in address order) into the stopped target as fast
 * as it can be done: it waits for them. Small chunks are gathered into one
 * process_vm_writev() where the area allows. */
int transfer_chunks_from_dump(Dump *d, int mem_fd, pid_t pid, const uint32_t *chunks, size_t n);

unsigned transfer_default_workers(void);
