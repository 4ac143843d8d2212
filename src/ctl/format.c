/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "format.h"
#include "macro.h"

char *format_bytes(char *buf, size_t size, uint64_t bytes) {
        static const struct {
                const char *suffix;
                uint64_t factor;
        } table[] = {
                { "E", UINT64_C(1) << 60 }, { "P", UINT64_C(1) << 50 }, { "T", UINT64_C(1) << 40 },
                { "G", UINT64_C(1) << 30 }, { "M", UINT64_C(1) << 20 }, { "K", UINT64_C(1) << 10 },
        };

        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                uint64_t units, tenths;

                if (bytes < table[i].factor)
                        continue;

                /* Round to the nearest tenth; the remainder is below 2^60, times 10 fits. */
                units = bytes / table[i].factor;
                tenths = (bytes % table[i].factor * 10 + table[i].factor / 2) / table[i].factor;
                if (tenths == 10) {
                        units++;
                        tenths = 0;
                }
                /* 1023.95K and up: 1.0M */
                if (units == 1024 && i > 0) {
                        units = 1;
                        i--;
                }
                snprintf(buf, size, "%" PRIu64 ".%" PRIu64 "%s", units, tenths, table[i].suffix);
                return buf;
        }
        snprintf(buf, size, "%" PRIu64 "B", bytes);
        return buf;
}

char *format_duration(char *buf, size_t size, uint64_t usec) {
        uint64_t sec = usec / USEC_PER_SEC, centi = usec % USEC_PER_SEC / 10000;

        if (usec < USEC_PER_MSEC)
                snprintf(buf, size, "%" PRIu64 "us", usec);
        else if (usec < 10 * USEC_PER_MSEC)
                snprintf(buf, size, "%" PRIu64 ".%" PRIu64 "ms", usec / USEC_PER_MSEC,
                         usec % USEC_PER_MSEC / 100);
        else if (sec < 60)
                snprintf(buf, size, "%" PRIu64 ".%02" PRIu64 "s", sec, centi);
        else if (sec < 3600)
                snprintf(buf, size, "%" PRIu64 "min %" PRIu64 ".%02" PRIu64 "s", sec / 60, sec % 60,
                         centi);
        else
                snprintf(buf, size, "%" PRIu64 "h %" PRIu64 "min %" PRIu64 ".%02" PRIu64 "s",
                         sec / 3600, sec % 3600 / 60, sec % 60, centi);
        return buf;
}

char *format_timespan(char *buf, size_t size, uint64_t usec) {
        static const struct {
                const char *suffix;
                uint64_t usec;
        } units[] = {
                { "d", 24 * 3600 * USEC_PER_SEC },
                { "h", 3600 * USEC_PER_SEC },
                { "min", 60 * USEC_PER_SEC },
                { "s", USEC_PER_SEC },
                { "ms", USEC_PER_MSEC },
        };
        size_t i;

        if (usec < USEC_PER_MSEC) {
                snprintf(buf, size, "%" PRIu64 "us", usec);
                return buf;
        }
        for (i = 0; i < ELEMENTSOF(units) - 1; i++)
                if (usec >= units[i].usec)
                        break;

        uint64_t first = usec / units[i].usec;
        uint64_t second = i + 1 < ELEMENTSOF(units) ? usec % units[i].usec / units[i + 1].usec : 0;

        /* Milliseconds only when nothing larger is shown. */
        if (second > 0 && !streq(units[i + 1].suffix, "ms"))
                snprintf(buf, size, "%" PRIu64 "%s %" PRIu64 "%s", first, units[i].suffix, second,
                         units[i + 1].suffix);
        else
                snprintf(buf, size, "%" PRIu64 "%s", first, units[i].suffix);
        return buf;
}

static char *format_timestamp_internal(char *buf, size_t size, uint64_t usec, bool long_form) {
        time_t t = (time_t) (usec / USEC_PER_SEC);
        struct tm tm;
        size_t n;

        assert(size > 0);
        if (!localtime_r(&t, &tm))
                n = 0;
        else if (long_form)
                n = strftime(buf, size, "%a %Y-%m-%d %H:%M:%S %Z", &tm);
        else
                n = strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm);
        if (n == 0)
                snprintf(buf, size, "@%" PRIu64, usec / USEC_PER_SEC);
        return buf;
}

char *format_timestamp(char *buf, size_t size, uint64_t usec) {
        return format_timestamp_internal(buf, size, usec, false);
}

char *format_timestamp_long(char *buf, size_t size, uint64_t usec) {
        return format_timestamp_internal(buf, size, usec, true);
}

/* Length of the valid UTF-8 sequence at s (1-4), its code point in *ret;
 * 0 if s does not start one (overlong forms, surrogates and values beyond
 * U+10FFFF are invalid). */
static size_t utf8_decode(const char *s, uint32_t *ret) {
        const uint8_t *p = (const uint8_t *) s;
        uint32_t c, min;
        size_t n;

        if (p[0] < 0x80) {
                *ret = p[0];
                return 1;
        }
        if ((p[0] & 0xe0) == 0xc0) {
                n = 2;
                c = p[0] & 0x1f;
                min = 0x80;
        } else if ((p[0] & 0xf0) == 0xe0) {
                n = 3;
                c = p[0] & 0x0f;
                min = 0x800;
        } else if ((p[0] & 0xf8) == 0xf0) {
                n = 4;
                c = p[0] & 0x07;
                min = 0x10000;
        } else
                return 0;

        for (size_t i = 1; i < n; i++) {
                if ((p[i] & 0xc0) != 0x80) /* also stops at the terminating NUL */
                        return 0;
                c = (c << 6) | (p[i] & 0x3f);
        }
        if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
                return 0;
        *ret = c;
        return n;
}

/* The characters JSON writes as a backslash and one more character. */
static const char *const json_escapes[] = {
        ['"'] = "\\\"", ['\\'] = "\\\\", ['\b'] = "\\b", ['\f'] = "\\f",
        ['\n'] = "\\n", ['\r'] = "\\r", ['\t'] = "\\t",
};

void json_write_string(FILE *f, const char *s) {
        fputc('"', f);
        while (*s) {
                uint32_t c;
                size_t n = utf8_decode(s, &c);

                if (n == 0) {
                        fputs("\\ufffd", f);
                        s++;
                        continue;
                }
                if (c < ELEMENTSOF(json_escapes) && json_escapes[c])
                        fputs(json_escapes[c], f);
                else if (c < 0x20 || c == 0x7f || c == 0x2028 || c == 0x2029)
                        fprintf(f, "\\u%04" PRIx32, c);
                else
                        fwrite(s, 1, n, f);
                s += n;
        }
        fputc('"', f);
}

char *escape_for_terminal(const char *s) {
        /* Every byte becomes at most 4. */
        size_t l = strlen(s);
        char *buf, *t;

        if (l > (SIZE_MAX - 1) / 4)
                return NULL;
        buf = malloc(l * 4 + 1);
        if (!buf)
                return NULL;

        t = buf;
        while (*s) {
                uint32_t c;
                size_t n = utf8_decode(s, &c);

                if (n == 1 && c == '\\') {
                        *t++ = '\\';
                        *t++ = '\\';
                } else if (n > 0 && c >= 0x20 && !(c >= 0x7f && c < 0xa0)) {
                        memcpy(t, s, n);
                        t += n;
                } else {
                        /* A control character: all its bytes; invalid UTF-8: one byte,
                         * then look again at the next. */
                        for (size_t i = 0; i < MAX(n, (size_t) 1); i++)
                                t += sprintf(t, "\\x%02x", (uint8_t) s[i]);
                }
                s += MAX(n, (size_t) 1);
        }
        *t = '\0';
        return buf;
}

size_t utf8_width(const char *s) {
        size_t w = 0;

        for (; *s; s++)
                if (((uint8_t) *s & 0xc0) != 0x80)
                        w++;
        return w;
}
