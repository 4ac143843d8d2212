/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>
#include <stdlib.h>

/* Room for need elements of size bytes in the array *p, which has room for
 * *allocated: when it is short, at least twice as much and at least min.
 * 0, or -ENOMEM with *p and *allocated as they were. */
int greedy_realloc(void **p, size_t *allocated, size_t need, size_t size, size_t min);

#define GREEDY_REALLOC(array, allocated, need, min)                                                \
        greedy_realloc((void **) &(array), &(allocated), (need), sizeof((array)[0]), (min))

/* One (or n) t, uninitialised: set with a compound literal. */
#define new(t, n) ((t *) reallocarray(NULL, (n), sizeof(t)))
