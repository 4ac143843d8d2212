/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "format.h"
#include "parse.h"
#include "macro.h"

#define MIB (UINT64_C(1) << 20)
#define GIB (UINT64_C(1) << 30)

static void check_bytes(uint64_t v, const char *expected) {
        char buf[FORMAT_BYTES_MAX];
        cr_assert_str_eq(format_bytes(buf, sizeof(buf), v), expected, "%llu", (unsigned long long) v);
}

Test(format, bytes) {
        check_bytes(0, "0B");
        check_bytes(1, "1B");
        check_bytes(1023, "1023B");
        check_bytes(1024, "1.0K");
        check_bytes(1536, "1.5K");
        check_bytes(1022 * 1024 + 900, "1022.9K");
        check_bytes(1024 * 1024 - 52, "1023.9K");
        check_bytes(1024 * 1024 - 51, "1.0M"); /* never 1024.0K */
        check_bytes(1126, "1.1K");             /* 1.0996 */
        check_bytes(812 * MIB, "812.0M");
        check_bytes(1258291, "1.2M");
        check_bytes(828899328, "790.5M");
        check_bytes(GIB + GIB / 5, "1.2G");
        check_bytes(UINT64_C(2899102924), "2.7G");
        check_bytes(UINT64_C(2845415833), "2.6G"); /* 2.65 - 1 byte */
        check_bytes(UINT64_C(1) << 40, "1.0T");
        check_bytes(UINT64_C(1) << 50, "1.0P");
        check_bytes(UINT64_MAX, "16.0E");
}

static void check_duration(uint64_t usec, const char *expected) {
        char buf[FORMAT_DURATION_MAX];
        cr_assert_str_eq(format_duration(buf, sizeof(buf), usec), expected, "%llu",
                         (unsigned long long) usec);
}

Test(format, duration) {
        check_duration(0, "0us");
        check_duration(850, "850us");
        check_duration(3250, "3.2ms");
        check_duration(10000, "0.01s");
        check_duration(520000, "0.52s");
        check_duration(1430000, "1.43s");
        check_duration(59999999, "59.99s");
        check_duration(123400000, "2min 3.40s");
        check_duration(3723400000, "1h 2min 3.40s");
}

static void check_timespan(uint64_t usec, const char *expected) {
        char buf[FORMAT_TIMESPAN_MAX];
        cr_assert_str_eq(format_timespan(buf, sizeof(buf), usec), expected, "%llu",
                         (unsigned long long) usec);
}

Test(format, timespan) {
        const uint64_t s = 1000000;

        check_timespan(500, "500us");
        check_timespan(350000, "350ms");
        check_timespan(45 * s, "45s");
        check_timespan(45 * s + 350000, "45s");
        check_timespan(303 * s, "5min 3s");
        check_timespan(3600 * s, "1h");
        check_timespan(3605 * s, "1h");
        check_timespan(2 * 3600 * s + 600 * s, "2h 10min");
        check_timespan(3 * 86400 * s + 4 * 3600 * s + 59 * s, "3d 4h");
        check_timespan(UINT64_MAX, "213503982d 8h");
}

Test(format, timestamp) {
        char buf[FORMAT_TIMESTAMP_MAX];

        setenv("TZ", "UTC", 1);
        tzset();
        cr_assert_str_eq(format_timestamp(buf, sizeof(buf), UINT64_C(1715083200000000)),
                         "2024-05-07 12:00:00");
        cr_assert_str_eq(format_timestamp(buf, sizeof(buf), UINT64_C(1715083201999999)),
                         "2024-05-07 12:00:01");
        cr_assert_str_eq(format_timestamp_long(buf, sizeof(buf), UINT64_C(1715083200000000)),
                         "Tue 2024-05-07 12:00:00 UTC");
        /* Too small a buffer: truncated, still terminated. */
        cr_assert_eq(strlen(format_timestamp(buf, 5, UINT64_C(1715083200000000))), 4);
}

static char *json(const char *s) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        cr_assert_not_null(f);
        json_write_string(f, s);
        cr_assert_eq(fclose(f), 0);
        return buf;
}

static void check_json(const char *s, const char *expected) {
        _cleanup_free_ char *j = json(s);
        cr_assert_str_eq(j, expected);
}

Test(format, json_string_escaping) {
        check_json("", "\"\"");
        check_json("firefox", "\"firefox\"");
        check_json("say \"hi\"", "\"say \\\"hi\\\"\"");
        check_json("C:\\path", "\"C:\\\\path\"");
        check_json("a\nb\rc\td\be\ff", "\"a\\nb\\rc\\td\\be\\ff\"");
        check_json("\x01\x1f\x7f", "\"\\u0001\\u001f\\u007f\"");
        check_json("esc\033[2J", "\"esc\\u001b[2J\"");
        check_json("/tmp", "\"/tmp\""); /* no escaping of / */
        /* valid UTF-8 passes */
        check_json("caf\xc3\xa9 \xe2\x86\x92 \xf0\x9f\x90\xa7",
                   "\"caf\xc3\xa9 \xe2\x86\x92 \xf0\x9f\x90\xa7\"");
        /* line and paragraph separators are escaped */
        check_json("\xe2\x80\xa8\xe2\x80\xa9", "\"\\u2028\\u2029\"");
        /* invalid UTF-8 becomes U+FFFD, byte by byte */
        check_json("a\xff" "b", "\"a\\ufffdb\"");
        check_json("\xc3", "\"\\ufffd\"");                   /* truncated */
        check_json("\xc0\xaf", "\"\\ufffd\\ufffd\"");        /* overlong */
        check_json("\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\""); /* surrogate */
        check_json("\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\""); /* > U+10FFFF */
        check_json("\x80", "\"\\ufffd\"");                   /* lone continuation */
}

static void check_escape(const char *s, const char *expected, size_t width) {
        _cleanup_free_ char *e = escape_for_terminal(s);

        cr_assert_not_null(e);
        cr_assert_str_eq(e, expected);
        cr_assert_eq(utf8_width(e), width, "%s: width %zu", e, utf8_width(e));
}

Test(format, terminal_escaping) {
        check_escape("firefox", "firefox", 7);
        check_escape("", "", 0);
        check_escape("evil\033[2J", "evil\\x1b[2J", 11);
        check_escape("a\nb", "a\\x0ab", 6);
        check_escape("back\\slash", "back\\\\slash", 11);
        check_escape("del\x7f", "del\\x7f", 7);
        check_escape("caf\xc3\xa9", "caf\xc3\xa9", 4);
        check_escape("\xe2\x86\x92", "\xe2\x86\x92", 1);
        /* C1 control U+009B (CSI), encoded in UTF-8 */
        check_escape("x\xc2\x9b" "1m", "x\\xc2\\x9b1m", 11);
        check_escape("bad\xff", "bad\\xff", 7);
        check_escape("\xc3(", "\\xc3(", 5);
}

Test(parse, seconds) {
        uint64_t v = 4711;

        cr_assert_eq(parse_seconds_to_msec("30", &v), 0);
        cr_assert_eq(v, 30000);
        cr_assert_eq(parse_seconds_to_msec("2.5", &v), 0);
        cr_assert_eq(v, 2500);
        cr_assert_eq(parse_seconds_to_msec(".25", &v), 0);
        cr_assert_eq(v, 250);
        cr_assert_eq(parse_seconds_to_msec("2.", &v), 0);
        cr_assert_eq(v, 2000);
        cr_assert_eq(parse_seconds_to_msec("0", &v), 0);
        cr_assert_eq(v, 0);
        /* rounded up */
        cr_assert_eq(parse_seconds_to_msec("0.0001", &v), 0);
        cr_assert_eq(v, 1);
        cr_assert_eq(parse_seconds_to_msec("1.0015", &v), 0);
        cr_assert_eq(v, 1002);
        cr_assert_eq(parse_seconds_to_msec("0.0010000000001", &v), 0);
        cr_assert_eq(v, 2);
        cr_assert_eq(parse_seconds_to_msec("0.001000000000", &v), 0);
        cr_assert_eq(v, 1);
        cr_assert_eq(parse_seconds_to_sec("3600", &v), 0);
        cr_assert_eq(v, 3600);
        cr_assert_eq(parse_seconds_to_sec("0.1", &v), 0);
        cr_assert_eq(v, 1);
        cr_assert_eq(parse_seconds_to_sec("18446744073709551615", &v), 0);
        cr_assert_eq(v, UINT64_MAX);

        v = 4711;
        cr_assert_eq(parse_seconds_to_sec("18446744073709551616", &v), -ERANGE);
        cr_assert_eq(parse_seconds_to_sec("18446744073709551615.5", &v), -ERANGE);
        cr_assert_eq(parse_seconds_to_msec("18446744073709552", &v), -ERANGE);
        cr_assert_eq(parse_seconds_to_msec("", &v), -EINVAL);
        cr_assert_eq(parse_seconds_to_msec(".", &v), -EINVAL);
        cr_assert_eq(parse_seconds_to_msec("-1", &v), -EINVAL);
        cr_assert_eq(parse_seconds_to_msec("+1", &v), -EINVAL);
        cr_assert_eq(parse_seconds_to_msec("1e3", &v), -EINVAL);
        cr_assert_eq(parse_seconds_to_msec("1,5", &v), -EINVAL);
        cr_assert_eq(parse_seconds_to_msec("inf", &v), -EINVAL);
        cr_assert_eq(parse_seconds_to_msec("nan", &v), -EINVAL);
        cr_assert_eq(parse_seconds_to_msec("5s", &v), -EINVAL);
        cr_assert_eq(parse_seconds_to_msec(" 5", &v), -EINVAL);
        cr_assert_eq(parse_seconds_to_msec("1.2.3", &v), -EINVAL);
        cr_assert_eq(v, 4711);
}
