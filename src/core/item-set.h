/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The pages of one address space still to be filled during a lazy restore:
 * a sorted set of disjoint intervals, each a piece of a dump chunk (dest,
 * the chunk, and where in the chunk dest's data starts). Pure bookkeeping:
 * no locking here (the caller holds what protects the set), no I/O.
 */

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "pagescan.h"

enum {
        ITEM_PENDING = 0,
        ITEM_BUSY = 1,
        ITEM_DONE = 2,
};

/* A piece of a chunk still to be put at dest. */
typedef struct Item {
        uint64_t dest;
        uint32_t chunk;
        uint32_t offset; /* of dest's data within the chunk */
        uint32_t len;
        _Atomic uint8_t state;
        uint8_t priority; /* 0 first */
} Item;

typedef struct ItemSet {
        Item *items; /* sorted by dest, never overlapping */
        size_t n_items;
        _Atomic size_t outstanding; /* items not DONE */
        bool split;                 /* a chunk may have several items */
} ItemSet;

/* The index of the item holding addr, or -ENOENT. */
ssize_t item_set_find(const ItemSet *s, uint64_t addr);

/* Room for n items in all. */
int item_set_reserve(ItemSet *s, size_t n);

/* Append an item (room reserved), pending. Items must come in address order. */
void item_set_append(ItemSet *s, uint64_t dest, uint32_t chunk, uint32_t offset, uint32_t len, uint8_t priority);

/* Recount the outstanding items. */
void item_set_count(ItemSet *s);

/* Cut [start, end) out of the outstanding items (the target discarded or
 * unmapped it), or, with delta != 0, move it by delta (mremap). Items are
 * split where the range cuts them; done items are dropped. *ret_dropped
 * gets the bytes let go. */
int item_set_change(ItemSet *s, uint64_t start, uint64_t end, int64_t delta, uint64_t *ret_dropped);

/* Take the sorted, disjoint ranges of cut out of the items in one pass (their
 * pages are in place already). *ret_cut gets the bytes cut. */
int item_set_cut(ItemSet *s, const PageRangeList *cut, uint64_t *ret_cut);

/* Copy the outstanding items of from into s (empty), all pending: *ret_bytes
 * gets their size. */
int item_set_copy_outstanding(ItemSet *s, const ItemSet *from, uint64_t *ret_bytes);

void item_set_done(ItemSet *s);
