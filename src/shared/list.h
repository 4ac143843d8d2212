/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Singly linked lists: head points to the first item, each item to the next
 * through its member name (NULL at the end).
 */

#include <stdbool.h>

#define LIST_PREPEND(name, head, item)                                                             \
        do {                                                                                       \
                __typeof__(head) *_head_ = &(head), _item_ = (item);                               \
                _item_->name = *_head_;                                                            \
                *_head_ = _item_;                                                                  \
        } while (false)

/* Unlinks item; whether it was in the list. */
#define LIST_REMOVE(name, head, item)                                                              \
        ({                                                                                         \
                __typeof__(head) *_p_ = &(head), _item_ = (item);                                  \
                bool _found_ = false;                                                              \
                for (; *_p_; _p_ = &(*_p_)->name)                                                  \
                        if (*_p_ == _item_) {                                                      \
                                *_p_ = _item_->name;                                               \
                                _found_ = true;                                                    \
                                break;                                                             \
                        }                                                                          \
                _found_;                                                                           \
        })

/* Unlinks item from a list whose length is kept in counter, and counts it
 * out if it was there. */
#define LIST_REMOVE_COUNTED(name, head, counter, item)                                             \
        do {                                                                                       \
                if (LIST_REMOVE(name, head, item))                                                 \
                        (counter)--;                                                               \
        } while (false)
