/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <stdbool.h>

#include "macro.h"
#include "parse.h"

static bool is_digit(char c) {
        return c >= '0' && c <= '9';
}

/* s in units of 1/per_sec seconds, rounded up. */
static int parse_seconds(const char *s, uint64_t per_sec, uint64_t *ret) {
        uint64_t sec = 0, nsec = 0, scale = 100000000, v, frac;
        bool digits = false, rest = false;

        for (; is_digit(*s); s++) {
                uint64_t d = (uint64_t) (*s - '0');

                digits = true;
                if (sec > UINT64_MAX / 10 || sec * 10 > UINT64_MAX - d)
                        return -ERANGE;
                sec = sec * 10 + d;
        }
        if (*s == '.')
                for (s++; is_digit(*s); s++) {
                        digits = true;
                        if (scale > 0) {
                                nsec += (uint64_t) (*s - '0') * scale;
                                scale /= 10;
                        } else if (*s != '0')
                                rest = true; /* beyond nanoseconds: only rounds up */
                }
        if (!digits || *s != '\0')
                return -EINVAL;

        if (sec > UINT64_MAX / per_sec)
                return -ERANGE;
        v = sec * per_sec;
        if (rest)
                nsec++;
        /* nsec <= 10^9 and per_sec <= 1000: no overflow */
        frac = (nsec * per_sec + 999999999) / 1000000000;
        if (v > UINT64_MAX - frac)
                return -ERANGE;
        *ret = v + frac;
        return 0;
}

int parse_seconds_to_msec(const char *s, uint64_t *ret) {
        return parse_seconds(s, 1000, ret);
}

int parse_seconds_to_sec(const char *s, uint64_t *ret) {
        return parse_seconds(s, 1, ret);
}
