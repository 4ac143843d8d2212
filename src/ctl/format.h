/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * How memcrctl shows values: sizes, durations, times, JSON strings, and text
 * from elsewhere (process names, memcrd's messages) made safe for a terminal.
 * Every format_* function writes into the caller's buffer, truncating if it
 * is too small, and returns it.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define FORMAT_BYTES_MAX 16
#define FORMAT_DURATION_MAX 64
#define FORMAT_TIMESPAN_MAX 64
#define FORMAT_TIMESTAMP_MAX 64

/* Binary units with one decimal, rounded to nearest: "512B", "4.0K", "812.0M", "1.2G". */
char *format_bytes(char *buf, size_t size, uint64_t bytes);

/* How long an operation took: "850us", "3.2ms", "0.52s", "1.43s", "2min 3.40s",
 * "1h 2min 3.40s". */
char *format_duration(char *buf, size_t size, uint64_t usec);

/* A coarse time span, the largest unit and the next one if not 0:
 * "350ms", "45s", "5min 3s", "1h", "2h 10min", "3d 4h". */
char *format_timespan(char *buf, size_t size, uint64_t usec);

/* CLOCK_REALTIME microseconds in local time: "2024-05-07 12:00:00". */
char *format_timestamp(char *buf, size_t size, uint64_t usec);
/* The same with weekday and zone: "Tue 2024-05-07 12:00:00 CEST". */
char *format_timestamp_long(char *buf, size_t size, uint64_t usec);

/* Write s as a JSON string literal, quotes included. Invalid UTF-8 becomes
 * U+FFFD; control characters, U+2028 and U+2029 are escaped. */
void json_write_string(FILE *f, const char *s);

/* s with everything a terminal could act on escaped: control characters
 * (C0, DEL, C1), backslash and bytes that are not valid UTF-8 become \xNN
 * (backslash becomes \\). Valid printable UTF-8 is kept. NULL on OOM. */
char *escape_for_terminal(const char *s);

/* Width of a valid UTF-8 string in columns, one per character. */
size_t utf8_width(const char *s);
