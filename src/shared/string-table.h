/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Names of the values of an enum, in a table indexed by them (NAME_table),
 * and the lookups both ways.
 */

#include <stddef.h>

#include "macro.h"

/* table[i], or NULL past the end. */
const char *string_table_to_string(const char *const *table, size_t n, size_t i);
/* The index of s in table, or -EINVAL. */
int string_table_from_string(const char *const *table, size_t n, const char *s);

/* const char *NAME_to_string(type i): the name of i, or fallback. */
#define DEFINE_STRING_TABLE_TO_STRING(name, type, fallback)                                        \
        const char *name##_to_string(type i) {                                                     \
                return string_table_to_string(name##_table, ELEMENTSOF(name##_table), (size_t) i) \
                        ?: (fallback);                                                             \
        }

/* int NAME_from_string(const char *s): the value named s, or -EINVAL. */
#define DEFINE_STRING_TABLE_FROM_STRING(name)                                                      \
        int name##_from_string(const char *s) {                                                    \
                return string_table_from_string(name##_table, ELEMENTSOF(name##_table), s);        \
        }
