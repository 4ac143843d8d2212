/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>

#include "string-table.h"

const char *string_table_to_string(const char *const *table, size_t n, size_t i) {
        return i < n ? table[i] : NULL;
}

int string_table_from_string(const char *const *table, size_t n, const char *s) {
        assert(s);

        for (size_t i = 0; i < n; i++)
                if (table[i] && streq(table[i], s))
                        return (int) i;
        return -EINVAL;
}
