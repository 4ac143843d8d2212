/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "alloc-util.h"
#include "macro.h"

int greedy_realloc(void **p, size_t *allocated, size_t need, size_t size, size_t min) {
        size_t a;
        void *q;

        assert(size > 0);
        if (need <= *allocated)
                return 0;
        a = MAX(MAX(need, min), *allocated * 2);
        if (a > SIZE_MAX / size)
                return -ENOMEM;
        q = realloc(*p, a * size);
        if (!q)
                return -ENOMEM;
        *p = q;
        *allocated = a;
        return 0;
}
