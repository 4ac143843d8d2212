/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>

#include "item-set.h"

#define K 4096ULL

/* Three chunks of 4 pages at 0x10000, 0x20000, 0x30000 (chunks 0, 1, 2). */
static void make_set(ItemSet *s) {
        *s = (ItemSet) {};
        cr_assert_eq(item_set_reserve(s, 3), 0);
        for (uint32_t c = 0; c < 3; c++)
                item_set_append(s, 0x10000 * (c + 1), c, 0, 4 * K, c == 1 ? 0 : 1);
        item_set_count(s);
}

/* Every item of s, in order, as dest, chunk, offset, len. */
static void assert_items(const ItemSet *s, const uint64_t (*want)[4], size_t n) {
        cr_assert_eq(s->n_items, n, "%zu items, want %zu", s->n_items, n);
        for (size_t i = 0; i < n; i++) {
                cr_expect_eq(s->items[i].dest, want[i][0], "item %zu at 0x%llx", i,
                             (unsigned long long) s->items[i].dest);
                cr_expect_eq(s->items[i].chunk, want[i][1], "item %zu chunk", i);
                cr_expect_eq(s->items[i].offset, want[i][2], "item %zu offset", i);
                cr_expect_eq(s->items[i].len, want[i][3], "item %zu len", i);
        }
}

Test(item_set, find) {
        ItemSet s;

        make_set(&s);
        cr_assert_eq(atomic_load(&s.outstanding), 3);
        cr_expect_eq(item_set_find(&s, 0x10000), 0);
        cr_expect_eq(item_set_find(&s, 0x13fff), 0);
        cr_expect_eq(item_set_find(&s, 0x14000), -ENOENT);
        cr_expect_eq(item_set_find(&s, 0x23000), 1);
        cr_expect_eq(item_set_find(&s, 0x30000), 2);
        cr_expect_eq(item_set_find(&s, 0xffff), -ENOENT);
        cr_expect_eq(item_set_find(&s, 0x40000), -ENOENT);
        cr_expect_eq(s.items[1].priority, 0);
        item_set_done(&s);
}

Test(item_set, discard_splits_and_drops) {
        ItemSet s;
        uint64_t dropped;

        make_set(&s);
        /* The middle two pages of chunk 0, and chunk 2 whole. */
        cr_assert_eq(item_set_change(&s, 0x11000, 0x13000, 0, &dropped), 0);
        cr_expect_eq(dropped, 2 * K);
        cr_assert_eq(item_set_change(&s, 0x30000, 0x40000, 0, &dropped), 0);
        cr_expect_eq(dropped, 4 * K);
        const uint64_t want[][4] = {
                { 0x10000, 0, 0, K },
                { 0x13000, 0, 3 * K, K },
                { 0x20000, 1, 0, 4 * K },
        };
        assert_items(&s, want, 3);
        cr_expect_eq(atomic_load(&s.outstanding), 3);
        cr_expect(s.split);
        cr_expect_eq(item_set_find(&s, 0x11000), -ENOENT);
        item_set_done(&s);
}

Test(item_set, move_keeps_data_and_order) {
        ItemSet s;
        uint64_t dropped;

        make_set(&s);
        /* mremap of the last two pages of chunk 1 below everything. */
        cr_assert_eq(item_set_change(&s, 0x22000, 0x24000, -0x21000, &dropped), 0);
        cr_expect_eq(dropped, 0);
        const uint64_t want[][4] = {
                { 0x1000, 1, 2 * K, 2 * K },
                { 0x10000, 0, 0, 4 * K },
                { 0x20000, 1, 0, 2 * K },
                { 0x30000, 2, 0, 4 * K },
        };
        assert_items(&s, want, 4);
        cr_expect_eq(atomic_load(&s.outstanding), 4);
        item_set_done(&s);
}

Test(item_set, done_items_leave_on_change) {
        ItemSet s;
        uint64_t dropped;

        make_set(&s);
        atomic_store(&s.items[0].state, ITEM_DONE);
        atomic_store(&s.items[2].state, ITEM_BUSY);
        item_set_count(&s);
        cr_expect_eq(atomic_load(&s.outstanding), 2);
        /* A change elsewhere drops the done item; the busy one stays busy. */
        cr_assert_eq(item_set_change(&s, 0x50000, 0x60000, 0, &dropped), 0);
        cr_expect_eq(dropped, 0);
        cr_assert_eq(s.n_items, 2);
        cr_expect_eq(s.items[0].dest, 0x20000);
        cr_expect_eq(atomic_load(&s.items[1].state), ITEM_BUSY);
        item_set_done(&s);
}

Test(item_set, cut_ranges) {
        PageRangeList cut = {};
        ItemSet s;
        uint64_t bytes;

        make_set(&s);
        /* Across the end of chunk 0 and the start of chunk 1, and one page
         * in the middle of chunk 2. */
        cr_assert_eq(page_range_list_add(&cut, 0x13000, 0x21000, 0), 0);
        cr_assert_eq(page_range_list_add(&cut, 0x31000, 0x32000, 0), 0);
        cr_assert_eq(item_set_cut(&s, &cut, &bytes), 0);
        cr_expect_eq(bytes, 3 * K);
        const uint64_t want[][4] = {
                { 0x10000, 0, 0, 3 * K },
                { 0x21000, 1, K, 3 * K },
                { 0x30000, 2, 0, K },
                { 0x32000, 2, 2 * K, 2 * K },
        };
        assert_items(&s, want, 4);
        cr_expect_eq(atomic_load(&s.outstanding), 4);
        page_range_list_done(&cut);
        item_set_done(&s);
}

Test(item_set, copy_outstanding) {
        ItemSet s, child = {};
        uint64_t bytes;

        make_set(&s);
        atomic_store(&s.items[0].state, ITEM_DONE);
        atomic_store(&s.items[1].state, ITEM_BUSY);
        cr_assert_eq(item_set_copy_outstanding(&child, &s, &bytes), 0);
        cr_expect_eq(bytes, 8 * K);
        cr_assert_eq(child.n_items, 2);
        cr_expect_eq(child.items[0].dest, 0x20000);
        cr_expect_eq(atomic_load(&child.items[0].state), ITEM_PENDING);
        cr_expect_eq(atomic_load(&child.outstanding), 2);
        item_set_done(&child);
        item_set_done(&s);
}
