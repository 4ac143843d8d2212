/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>
#include <time.h>

typedef uint64_t usec_t;
#define USEC_INFINITY ((usec_t) UINT64_MAX)

static inline usec_t now_usec(clockid_t clock) {
        struct timespec ts;
        clock_gettime(clock, &ts);
        return (usec_t) ts.tv_sec * 1000000ULL + (usec_t) ts.tv_nsec / 1000ULL;
}

static inline usec_t usec_add(usec_t a, usec_t b) {
        return a > USEC_INFINITY - b ? USEC_INFINITY : a + b;
}

/* Sleep for usec microseconds (EINTR is not an error: the caller re-checks). */
static inline void usleep_safe(usec_t usec) {
        struct timespec ts = { .tv_sec = (time_t) (usec / 1000000ULL),
                               .tv_nsec = (long) (usec % 1000000ULL) * 1000L };
        (void) nanosleep(&ts, NULL);
}
