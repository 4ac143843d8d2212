/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The target processes: memcr-test-target or reserve-target, started on a
 * pipe for commands and one for answers; they verify their own memory.
 */

#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "bench.h"
#include "time-util.h"

typedef struct Target {
        pid_t pid;
        int in_fd;  /* its stdin */
        int out_fd; /* its stdout */
        char buf[4096];
        size_t n;
        uint64_t bytes;
} Target;

#define TARGET_NULL ((Target) { .in_fd = -EBADF, .out_fd = -EBADF })

/* Set by SIGINT and SIGTERM. */
extern volatile sig_atomic_t cancelled;
/* The target running now, killed on SIGINT and SIGTERM. */
extern volatile sig_atomic_t current_target;

/* Kill the target if it still runs and close its pipes. */
void target_done(Target *t);
/* The next line of the target's output that starts with prefix. */
int target_read_line(Target *t, const char *prefix, usec_t timeout, char *line, size_t size);
/* Start a target for c and wait until it is ready. */
int target_start(const Bench *b, const Combo *c, Target *ret);
int write_all(int fd, const char *s);
/* Have the target check every byte; it exits 0 if all is intact. */
int target_verify(Target *t);
/* When the target last came back from a pause, and how many it noticed. */
int target_stamp(Target *t, uint64_t *ret_resumed_ns, unsigned *ret_pauses);
