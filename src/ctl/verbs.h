/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * memcrctl's commands. Each returns the exit status.
 */

typedef enum Operation {
        OP_CHECKPOINT,
        OP_RESTORE,
        OP_STATUS,
} Operation;

int verb_pids(Operation op, int argc, char *argv[]);
int verb_list(int argc, char *argv[]);
int verb_version(int argc, char *argv[]);
