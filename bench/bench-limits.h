/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The machine's own limits, measured right before the targets run, to put
 * checkpoint and restore speeds in proportion. Rates in GiB/s, best of
 * LIMITS_TRIES attempts.
 */

#include <stdint.h>

/* The buffers and file measured: 1 GiB, or an eighth of the free memory
 * on a small machine (a set-top box), but not less than 64 MiB. */
#define LIMITS_BYTES_MAX ((uint64_t) 1 << 30)
#define LIMITS_BYTES_MIN ((uint64_t) 64 << 20)
#define LIMITS_TRIES 5
#define LIMITS_IO_SIZE ((size_t) 4 << 20)

typedef struct Limits {
        unsigned n_cpus;
        uint64_t bytes; /* size of each buffer and of the file */
        /* memcpy between two resident buffers, one thread */
        double memcpy_gibps;
        /* memcpy into memory mapped right before (page faults included) */
        double fresh_copy_gibps;          /* one thread */
        double fresh_copy_parallel_gibps; /* n_cpus threads, each its share */
        /* write() of LIMITS_IO_SIZE pieces into a new file in the dump directory */
        double write_gibps;
        /* read() of that file back into a resident buffer */
        double read_gibps;
        char fs_type[32]; /* of the dump directory */
} Limits;

int limits_measure(const char *dir, Limits *ret);
