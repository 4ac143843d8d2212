/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <stdlib.h>

#include "item-set.h"
#include "macro.h"

/* For bsearch(): where the address *key is against item i. */
static int cmp_addr_item(const void *key, const void *i) {
        uint64_t addr = *(const uint64_t *) key;
        const Item *it = i;

        return addr < it->dest ? -1 : addr >= it->dest + it->len;
}

ssize_t item_set_find(const ItemSet *s, uint64_t addr) {
        const Item *it;

        if (s->n_items == 0)
                return -ENOENT;
        it = bsearch(&addr, s->items, s->n_items, sizeof(*it), cmp_addr_item);
        return it ? it - s->items : -ENOENT;
}

int item_set_reserve(ItemSet *s, size_t n) {
        Item *p = realloc(s->items, MAX(n, (size_t) 1) * sizeof(Item));
        if (!p)
                return -ENOMEM;
        s->items = p;
        return 0;
}

void item_set_append(ItemSet *s, uint64_t dest, uint32_t chunk, uint32_t offset, uint32_t len, uint8_t priority) {
        Item *it = &s->items[s->n_items++];

        *it = (Item) { .dest = dest, .chunk = chunk, .offset = offset, .len = len, .priority = priority };
        atomic_store(&it->state, ITEM_PENDING);
}

static int cmp_items(const void *a, const void *b) {
        const Item *x = a, *y = b;
        return x->dest < y->dest ? -1 : x->dest > y->dest;
}

void item_set_count(ItemSet *s) {
        size_t n = 0;
        for (size_t i = 0; i < s->n_items; i++)
                if (atomic_load(&s->items[i].state) != ITEM_DONE)
                        n++;
        atomic_store(&s->outstanding, n);
}

/* A copy of the part of it from dest on, len long, in the same state. */
static Item item_piece(const Item *it, uint64_t dest, uint64_t len) {
        Item p = { .dest = dest, .chunk = it->chunk, .offset = it->offset + (uint32_t) (dest - it->dest),
                   .len = (uint32_t) len, .priority = it->priority };
        atomic_store(&p.state, atomic_load(&it->state));
        return p;
}

int item_set_change(ItemSet *s, uint64_t start, uint64_t end, int64_t delta, uint64_t *ret_dropped) {
        size_t n = s->n_items;
        uint64_t dropped = 0;
        int r;

        /* Worst case every item is split in three. */
        r = item_set_reserve(s, n * 3 + 2);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                Item *it = &s->items[i];
                uint64_t a = it->dest, b = it->dest + it->len;
                uint64_t lo = MAX(a, start), hi = MIN(b, end);

                if (lo >= hi || atomic_load(&it->state) == ITEM_DONE)
                        continue;
                /* The part before and the part after stay as they are. */
                if (a < lo)
                        s->items[s->n_items++] = item_piece(it, a, lo - a);
                if (hi < b)
                        s->items[s->n_items++] = item_piece(it, hi, b - hi);
                /* The middle moves or goes. */
                it->offset += (uint32_t) (lo - a);
                it->len = (uint32_t) (hi - lo);
                it->dest = lo;
                if (delta != 0)
                        it->dest = (uint64_t) ((int64_t) it->dest + delta);
                else {
                        dropped += it->len;
                        atomic_store(&it->state, ITEM_DONE);
                }
        }
        /* Drop what is done (its pages are in place, or were let go), keep
         * the rest sorted. A done item must not stay: its address may now be
         * stale. */
        size_t k = 0;
        for (size_t i = 0; i < s->n_items; i++)
                if (atomic_load(&s->items[i].state) != ITEM_DONE)
                        s->items[k++] = s->items[i];
        s->n_items = k;
        qsort(s->items, s->n_items, sizeof(Item), cmp_items);
        item_set_count(s);
        s->split = true;
        *ret_dropped = dropped;
        return 0;
}

int item_set_cut(ItemSet *s, const PageRangeList *cut, uint64_t *ret_cut) {
        _cleanup_free_ Item *out = NULL;
        uint64_t bytes = 0;
        size_t n = 0, k = 0;

        *ret_cut = 0;
        if (cut->n == 0)
                return 0;
        /* Each range splits at most one item in two. */
        out = malloc((s->n_items + cut->n) * sizeof(Item));
        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < s->n_items; i++) {
                Item it = s->items[i];
                uint64_t end = it.dest + it.len;

                while (k < cut->n && cut->ranges[k].end <= it.dest)
                        k++;
                for (size_t j = k; j < cut->n && cut->ranges[j].start < end && it.len > 0; j++) {
                        uint64_t lo = MAX(cut->ranges[j].start, it.dest), hi = MIN(cut->ranges[j].end, end);

                        if (lo > it.dest) {
                                Item before = it;
                                before.len = (uint32_t) (lo - it.dest);
                                out[n++] = before;
                        }
                        bytes += hi - lo;
                        it.offset += (uint32_t) (hi - it.dest);
                        it.len = (uint32_t) (end - hi);
                        it.dest = hi;
                }
                if (it.len > 0)
                        out[n++] = it;
        }
        free(s->items);
        s->items = TAKE_PTR(out);
        s->n_items = n;
        item_set_count(s);
        s->split = true;
        *ret_cut = bytes;
        return 0;
}

int item_set_copy_outstanding(ItemSet *s, const ItemSet *from, uint64_t *ret_bytes) {
        uint64_t bytes = 0;
        int r;

        r = item_set_reserve(s, from->n_items);
        if (r < 0)
                return r;
        for (size_t i = 0; i < from->n_items; i++) {
                const Item *it = &from->items[i];
                if (atomic_load(&it->state) == ITEM_DONE)
                        continue;
                /* Busy in the parent means not yet there, in the child too. */
                s->items[s->n_items] = *it;
                atomic_store(&s->items[s->n_items].state, ITEM_PENDING);
                bytes += it->len;
                s->n_items++;
        }
        item_set_count(s);
        *ret_bytes = bytes;
        return 0;
}

void item_set_done(ItemSet *s) {
        s->items = mfree(s->items);
        s->n_items = 0;
}
