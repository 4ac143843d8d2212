/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <criterion/criterion.h>

#include "list.h"

typedef struct Node Node;
struct Node {
        int id;
        Node *next, *next_other;
};

Test(list, prepend_puts_items_first) {
        Node a = { .id = 1 }, b = { .id = 2 }, c = { .id = 3 };
        Node *head = NULL, *other = NULL;

        LIST_PREPEND(next, head, &a);
        LIST_PREPEND(next, head, &b);
        LIST_PREPEND(next, head, &c);
        cr_assert_eq(head, &c);
        cr_assert_eq(c.next, &b);
        cr_assert_eq(b.next, &a);
        cr_assert_null(a.next);

        /* A second list through another member leaves the first alone. */
        LIST_PREPEND(next_other, other, &b);
        cr_assert_eq(other, &b);
        cr_assert_null(b.next_other);
        cr_assert_eq(b.next, &a);
}

Test(list, remove_unlinks_wherever_the_item_is) {
        Node a = { .id = 1 }, b = { .id = 2 }, c = { .id = 3 }, stranger = { .id = 4 };
        Node *head = NULL;

        LIST_PREPEND(next, head, &a);
        LIST_PREPEND(next, head, &b);
        LIST_PREPEND(next, head, &c);

        cr_assert(LIST_REMOVE(next, head, &b)); /* the middle */
        cr_assert_eq(head, &c);
        cr_assert_eq(c.next, &a);
        cr_assert_not(LIST_REMOVE(next, head, &b));
        cr_assert_not(LIST_REMOVE(next, head, &stranger));
        cr_assert(LIST_REMOVE(next, head, &c)); /* the first */
        cr_assert_eq(head, &a);
        cr_assert(LIST_REMOVE(next, head, &a)); /* the last one */
        cr_assert_null(head);
        cr_assert_not(LIST_REMOVE(next, head, &a));
}

Test(list, remove_counted_counts_out_only_what_was_there) {
        Node a = { .id = 1 }, b = { .id = 2 }, stranger = { .id = 3 };
        Node *head = NULL;
        unsigned n = 2;

        LIST_PREPEND(next, head, &a);
        LIST_PREPEND(next, head, &b);
        LIST_REMOVE_COUNTED(next, head, n, &stranger);
        cr_assert_eq(n, 2);
        LIST_REMOVE_COUNTED(next, head, n, &a);
        cr_assert_eq(n, 1);
        cr_assert_eq(head, &b);
        cr_assert_null(b.next);
        LIST_REMOVE_COUNTED(next, head, n, &a);
        cr_assert_eq(n, 1);
        LIST_REMOVE_COUNTED(next, head, n, &b);
        cr_assert_eq(n, 0);
        cr_assert_null(head);
}
