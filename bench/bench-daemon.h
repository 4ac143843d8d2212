/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The private memcrd memcr-bench runs its targets through: where its
 * binaries are, its directories, starting and stopping it.
 */

#include "bench.h"

/* memcrd, memcr-watch and the targets, next to memcr-bench in the build tree. */
int find_binaries(Bench *b);
/* A private directory for memcrd's socket, state and log, and the dump directory. */
int make_dirs(Bench *b);
void remove_dirs(Bench *b);
void print_daemon_log(const Bench *b);
/* Start memcrd and wait until it answers. */
int daemon_start(Bench *b);
void daemon_stop(Bench *b);
