/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Small helpers in the spirit of systemd's macro.h: scope-based cleanup,
 * ownership transfer and a few arithmetic helpers. Everything here is
 * header-only and has no dependencies beyond libc.
 */

#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _pure_ __attribute__((pure))
#define _const_ __attribute__((const))
#define _noreturn_ __attribute__((noreturn))
#define _likely_(x) (__builtin_expect(!!(x), 1))
#define _unlikely_(x) (__builtin_expect(!!(x), 0))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _warn_unused_result_ __attribute__((warn_unused_result))

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))

#define XCONCATENATE(x, y) x##y
#define CONCATENATE(x, y) XCONCATENATE(x, y)
#define UNIQ_T(x, uniq) CONCATENATE(__unique_prefix_, CONCATENATE(x, uniq))
#define UNIQ __COUNTER__

#define MIN(a, b) __MIN(UNIQ, (a), UNIQ, (b))
#define __MIN(aq, a, bq, b)                                                                        \
        ({                                                                                         \
                const __typeof__(a) UNIQ_T(A, aq) = (a);                                           \
                const __typeof__(b) UNIQ_T(B, bq) = (b);                                           \
                UNIQ_T(A, aq) < UNIQ_T(B, bq) ? UNIQ_T(A, aq) : UNIQ_T(B, bq);                     \
        })
#define MAX(a, b) __MAX(UNIQ, (a), UNIQ, (b))
#define __MAX(aq, a, bq, b)                                                                        \
        ({                                                                                         \
                const __typeof__(a) UNIQ_T(A, aq) = (a);                                           \
                const __typeof__(b) UNIQ_T(B, bq) = (b);                                           \
                UNIQ_T(A, aq) > UNIQ_T(B, bq) ? UNIQ_T(A, aq) : UNIQ_T(B, bq);                     \
        })

#define ALIGN_TO(x, a) (((x) + (a) - 1) & ~((__typeof__(x)) (a) - 1))
#define ALIGN_DOWN(x, a) ((x) & ~((__typeof__(x)) (a) - 1))

/* Take ownership of a pointer or fd: return it and reset the variable. */
#define TAKE_GENERIC(var, type, nullvalue)                                                         \
        ({                                                                                         \
                type *_pvar_ = &(var);                                                             \
                type _var_ = *_pvar_;                                                              \
                type _nullvalue_ = nullvalue;                                                      \
                *_pvar_ = _nullvalue_;                                                             \
                _var_;                                                                             \
        })
#define TAKE_PTR(ptr) TAKE_GENERIC(ptr, __typeof__(ptr), NULL)
#define TAKE_FD(fd) TAKE_GENERIC(fd, int, -EBADF)

/* errno as a negative value, never 0 (for use right after a failed libc call). */
static inline int negative_errno(void) {
        assert(errno > 0);
        return -errno;
}

/* free() as an expression: always NULL (x = mfree(x), return mfree(x)). */
static inline void *mfree(void *p) {
        free(p);
        return NULL;
}

static inline void freep(void *p) {
        free(*(void **) p);
}
#define _cleanup_free_ _cleanup_(freep)

static inline int safe_close(int fd) {
        if (fd >= 0) {
                int saved = errno;
                (void) close(fd);
                errno = saved;
        }
        return -EBADF;
}

static inline void closep(int *fd) {
        *fd = safe_close(*fd);
}
#define _cleanup_close_ _cleanup_(closep)

static inline void fclosep(FILE **f) {
        if (*f)
                (void) fclose(*f);
}
#define _cleanup_fclose_ _cleanup_(fclosep)

#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)                                                    \
        static inline void func##p(type *p) {                                                      \
                if (*p)                                                                            \
                        func(*p);                                                                  \
        }

/* Close every fd in an array of n entries, set them to -EBADF. */
static inline void close_many(int *fds, size_t n) {
        for (size_t i = 0; i < n; i++)
                fds[i] = safe_close(fds[i]);
}

#define streq(a, b) (strcmp((a), (b)) == 0)
#define strneq(a, b, n) (strncmp((a), (b), (n)) == 0)

static inline const char *startswith(const char *s, const char *prefix) {
        size_t l = strlen(prefix);
        return strncmp(s, prefix, l) == 0 ? s + l : NULL;
}

#define RET_NERRNO(expr)                                                                           \
        ({                                                                                         \
                __typeof__(expr) _r_ = (expr);                                                     \
                _r_ < 0 ? negative_errno() : _r_;                                                  \
        })

#define USEC_PER_SEC ((uint64_t) 1000000ULL)
#define NSEC_PER_USEC ((uint64_t) 1000ULL)
#define USEC_PER_MSEC ((uint64_t) 1000ULL)
