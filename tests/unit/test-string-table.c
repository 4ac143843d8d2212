/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <criterion/criterion.h>
#include <errno.h>

#include "string-table.h"

typedef enum Color {
        COLOR_RED,
        COLOR_GREEN,
        COLOR_BLUE, /* no name */
        COLOR_BLACK,
        _COLOR_MAX,
} Color;

static const char *const color_table[_COLOR_MAX] = {
        [COLOR_RED] = "red",
        [COLOR_GREEN] = "green",
        [COLOR_BLACK] = "black",
};

const char *color_to_string(Color c);
int color_from_string(const char *s);
DEFINE_STRING_TABLE_TO_STRING(color, Color, "unknown");
DEFINE_STRING_TABLE_FROM_STRING(color);

Test(string_table, names_and_values_both_ways) {
        cr_assert_str_eq(color_to_string(COLOR_RED), "red");
        cr_assert_str_eq(color_to_string(COLOR_BLACK), "black");
        cr_assert_eq(color_from_string("red"), COLOR_RED);
        cr_assert_eq(color_from_string("black"), COLOR_BLACK);
}

Test(string_table, what_has_no_name_gets_the_fallback_or_einval) {
        cr_assert_str_eq(color_to_string(COLOR_BLUE), "unknown");
        cr_assert_str_eq(color_to_string(_COLOR_MAX), "unknown");
        cr_assert_str_eq(color_to_string((Color) -1), "unknown");
        cr_assert_eq(color_from_string("blue"), -EINVAL);
        cr_assert_eq(color_from_string(""), -EINVAL);
        cr_assert_eq(color_from_string("Red"), -EINVAL);
}

Test(string_table, plain_lookups) {
        cr_assert_str_eq(string_table_to_string(color_table, _COLOR_MAX, COLOR_GREEN), "green");
        cr_assert_null(string_table_to_string(color_table, _COLOR_MAX, COLOR_BLUE));
        cr_assert_null(string_table_to_string(color_table, _COLOR_MAX, _COLOR_MAX));
        cr_assert_eq(string_table_from_string(color_table, _COLOR_MAX, "green"), COLOR_GREEN);
}
