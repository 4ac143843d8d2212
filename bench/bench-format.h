/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * How memcr-bench shows values: in its table (each returns "-" for NAN, or
 * buf) and in JSON.
 */

#include <stdint.h>
#include <stdio.h>

#include "bench.h"

/* 1.5G, 812.0M, 512B */
const char *fmt_bytes(char *buf, size_t size, double bytes);
/* A size given on the command line, exactly: 256M, 1G, 64G. */
const char *fmt_size(char *buf, size_t size, uint64_t bytes);
/* 3.2ms, 45ms, 1.25s */
const char *fmt_usec(char *buf, size_t size, double usec);
/* 850us, 3.2ms */
const char *fmt_usec_fine(char *buf, size_t size, double usec);
const char *fmt_rate(char *buf, size_t size, double gibps);
/* part as a percentage of whole */
const char *fmt_pct(char *buf, size_t size, double part, double whole);

void json_string(FILE *f, const char *s);
/* null for NAN */
void json_number(FILE *f, double v, Unit u);
