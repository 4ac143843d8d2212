/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <criterion/criterion.h>
#include <errno.h>

#include "macro.h"
#include "parse-util.h"

Test(parse_util, pid_accepts_decimal_digits_from_1_to_int32_max) {
        static const struct {
                const char *s;
                pid_t pid;
        } ok[] = { { "1", 1 }, { "004321", 4321 }, { "2147483647", 2147483647 } };

        for (size_t i = 0; i < ELEMENTSOF(ok); i++) {
                pid_t pid = 0;

                cr_assert_eq(pid_from_string(ok[i].s, &pid), 0, "\"%s\"", ok[i].s);
                cr_assert_eq(pid, ok[i].pid, "\"%s\": %d", ok[i].s, (int) pid);
        }
}

Test(parse_util, pid_refuses_anything_else_and_leaves_the_result) {
        const char *const malformed[] = { "", " 12", "+12", "-12", "12 ", "12\n", "0x10",
                                          "1x", "1e3", "1.5", "3-1234-998", "abc" };
        const char *const out_of_range[] = { "0", "000", "2147483648", "99999999999999999999999" };
        pid_t pid = 77;

        for (size_t i = 0; i < ELEMENTSOF(malformed); i++)
                cr_assert_eq(pid_from_string(malformed[i], &pid), -EINVAL, "\"%s\"", malformed[i]);
        for (size_t i = 0; i < ELEMENTSOF(out_of_range); i++)
                cr_assert_eq(pid_from_string(out_of_range[i], &pid), -ERANGE, "\"%s\"", out_of_range[i]);
        cr_assert_eq(pid, 77);
}
