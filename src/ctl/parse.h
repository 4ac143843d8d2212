/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Parsing of memcrctl's arguments. Nothing here depends on the locale.
 * Functions return 0 or -EINVAL (malformed) / -ERANGE (out of range), and
 * leave *ret untouched on failure.
 */

#include <stdint.h>

/* Seconds as a decimal number with an optional fraction ("30", "1.5", ".25",
 * "2."), in milliseconds or whole seconds, rounded up. */
int parse_seconds_to_msec(const char *s, uint64_t *ret);
int parse_seconds_to_sec(const char *s, uint64_t *ret);
