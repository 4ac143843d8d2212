/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * memcr-bench's results: the machine's limits, the table of medians, the
 * lazy restore table, or the same as JSON objects, one per line.
 */

#include <stddef.h>

#include "bench.h"

/* "1G thr=4 random", "64M (of 64G reserved) thr=1 text" */
const char *combo_label(char *buf, size_t size, const Combo *c);

void json_limits(const Bench *b);
void json_run(const Combo *c, size_t idx);
void json_summary(const Bench *b, const Combo *c);

void print_limits(const Bench *b);
void print_table(const Bench *b);
void print_lazy_table(const Bench *b);
