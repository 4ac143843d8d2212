/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * What memcrctl prints about processes: the result of a checkpoint or a
 * restore, a status, the table of frozen processes, and the same as JSON.
 * Text from elsewhere (process names, memcrd's messages) is escaped for the
 * terminal. Out of memory here ends memcrctl with MEMCRCTL_EXIT_FAILED.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#include "memcr-client.h"

/* Whether the locale's character set is UTF-8: arrows and bullets, or ASCII. */
void show_set_utf8(bool b);

/* escape_for_terminal(), or exit. */
char *escape_or_oom(const char *s);

/* The fields of a process as JSON object members, without braces. */
void json_write_info(FILE *f, const MemcrProcessInfo *i);
void json_write_failure(pid_t pid, const char *result, int error, const char *message);

void print_checkpointed(const MemcrReply *reply);
void print_restored(const MemcrReply *reply);
void print_status(const MemcrProcessInfo *i);
/* The table of "memcrctl list", sorted by the caller; with a legend unless --no-legend. */
void print_table(const MemcrProcessInfo *list, size_t n);
