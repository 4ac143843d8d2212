/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>

#include "alloc-util.h"
#include "macro.h"

Test(alloc_util, greedy_realloc_starts_at_min_then_doubles) {
        _cleanup_free_ uint64_t *a = NULL;
        size_t allocated = 0;

        cr_assert_eq(GREEDY_REALLOC(a, allocated, 1, 16), 0);
        cr_assert_not_null(a);
        cr_assert_eq(allocated, 16);
        a[15] = 15;

        /* Room enough: nothing moves. */
        uint64_t *before = a;
        cr_assert_eq(GREEDY_REALLOC(a, allocated, 16, 16), 0);
        cr_assert_eq(a, before);
        cr_assert_eq(allocated, 16);

        cr_assert_eq(GREEDY_REALLOC(a, allocated, 17, 16), 0);
        cr_assert_eq(allocated, 32);
        cr_assert_eq(a[15], 15);

        /* More than twice as much asked for: that much. */
        cr_assert_eq(GREEDY_REALLOC(a, allocated, 100, 16), 0);
        cr_assert_eq(allocated, 100);
        a[99] = 99;
}

Test(alloc_util, greedy_realloc_refuses_what_cannot_be_counted) {
        _cleanup_free_ uint64_t *a = NULL;
        size_t allocated = 0;

        cr_assert_eq(GREEDY_REALLOC(a, allocated, 4, 4), 0);
        a[3] = 3;
        cr_assert_eq(GREEDY_REALLOC(a, allocated, SIZE_MAX / 4, 4), -ENOMEM);
        cr_assert_eq(allocated, 4);
        cr_assert_eq(a[3], 3);
}
