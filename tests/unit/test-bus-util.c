/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * D-Bus errors in words: a missing or failed polkit is named as such,
 * never turned into an errno whose text says something else.
 */

#include <criterion/criterion.h>
#include <string.h>

#include "bus-util.h"

static void describe(const char *name, const char *message, char *buf, size_t size) {
        sd_bus_error e = SD_BUS_ERROR_MAKE_CONST(name, message);
        polkit_error_describe(&e, buf, size);
}

Test(bus_util, polkit_not_installed) {
        char buf[512];

        describe(SD_BUS_ERROR_SERVICE_UNKNOWN,
                 "The name org.freedesktop.PolicyKit1 was not provided by any .service files", buf, sizeof(buf));
        cr_assert_str_eq(buf, "polkit is not available (org.freedesktop.PolicyKit1 not activatable): The name "
                              "org.freedesktop.PolicyKit1 was not provided by any .service files");
        describe(SD_BUS_ERROR_NAME_HAS_NO_OWNER, "no owner", buf, sizeof(buf));
        cr_assert(strncmp(buf, "polkit is not available (org.freedesktop.PolicyKit1 not activatable): ", 70) == 0,
                  "%s", buf);
}

/* Masked: dbus-daemon asks systemd to start polkit.service, which refuses
 * with org.freedesktop.systemd1.UnitMasked; as an errno that is ERFKILL,
 * "Operation not possible due to RF-kill". */
Test(bus_util, polkit_masked) {
        char buf[512];

        describe("org.freedesktop.systemd1.UnitMasked", "Unit polkit.service is masked.", buf, sizeof(buf));
        cr_assert_str_eq(buf, "polkit is not available (org.freedesktop.PolicyKit1 not activatable): Unit "
                              "polkit.service is masked.");
        cr_assert_null(strstr(buf, "RF-kill"));
        describe("org.freedesktop.DBus.Error.Spawn.ChildExited", "Process exited with status 1", buf, sizeof(buf));
        cr_assert(strstr(buf, "polkit is not available") == buf, "%s", buf);
}

Test(bus_util, polkit_failed_or_slow) {
        char buf[512];

        describe(SD_BUS_ERROR_NO_REPLY, "Connection timed out", buf, sizeof(buf));
        cr_assert_str_eq(buf, "polkit did not answer in time (org.freedesktop.DBus.Error.NoReply): Connection timed out");
        describe("org.freedesktop.PolicyKit1.Error.Failed", "Action org.memcr.manage-other is not registered", buf,
                 sizeof(buf));
        cr_assert_str_eq(buf, "polkit failed (org.freedesktop.PolicyKit1.Error.Failed): Action "
                              "org.memcr.manage-other is not registered");
        describe(SD_BUS_ERROR_ACCESS_DENIED, NULL, buf, sizeof(buf));
        cr_assert_str_eq(buf, "polkit failed (org.freedesktop.DBus.Error.AccessDenied): no details");
}

Test(bus_util, describe) {
        sd_bus_error e = SD_BUS_ERROR_MAKE_CONST("org.freedesktop.systemd1.UnitMasked", "Unit polkit.service is masked.");
        sd_bus_error bare = SD_BUS_ERROR_MAKE_CONST("org.example.Error", NULL);
        char buf[256];

        bus_error_describe(&e, buf, sizeof(buf));
        cr_assert_str_eq(buf, "org.freedesktop.systemd1.UnitMasked: Unit polkit.service is masked.");
        bus_error_describe(&bare, buf, sizeof(buf));
        cr_assert_str_eq(buf, "org.example.Error");
        cr_assert(bus_error_is_unavailable(&e));
        cr_assert(!bus_error_is_unavailable(&bare));
}
