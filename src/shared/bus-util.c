/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <stdio.h>
#include <string.h>

#include "bus-util.h"
#include "macro.h"

static bool has_prefix(const char *s, const char *prefix) {
        return s && strncmp(s, prefix, strlen(prefix)) == 0;
}

bool bus_error_is_unavailable(const sd_bus_error *e) {
        if (!e || !e->name)
                return false;
        return streq(e->name, SD_BUS_ERROR_SERVICE_UNKNOWN) || streq(e->name, SD_BUS_ERROR_NAME_HAS_NO_OWNER) ||
               /* dbus-daemon could not start it ... */
               has_prefix(e->name, "org.freedesktop.DBus.Error.Spawn.") ||
               /* ... or systemd did not (activation through a unit: masked,
                * not found, failed). */
               has_prefix(e->name, "org.freedesktop.systemd1.");
}

void bus_error_describe(const sd_bus_error *e, char *buf, size_t size) {
        if (!e || !e->name) {
                snprintf(buf, size, "an unnamed D-Bus error");
                return;
        }
        if (e->message && e->message[0])
                snprintf(buf, size, "%s: %s", e->name, e->message);
        else
                snprintf(buf, size, "%s", e->name);
}

void polkit_error_describe(const sd_bus_error *e, char *buf, size_t size) {
        const char *name = e && e->name ? e->name : "?";
        const char *message = e && e->message && e->message[0] ? e->message : "no details";

        if (bus_error_is_unavailable(e))
                snprintf(buf, size, "polkit is not available (org.freedesktop.PolicyKit1 not activatable): %s",
                         message);
        else if (streq(name, SD_BUS_ERROR_NO_REPLY) || streq(name, SD_BUS_ERROR_TIMEOUT))
                snprintf(buf, size, "polkit did not answer in time (%s): %s", name, message);
        else
                snprintf(buf, size, "polkit failed (%s): %s", name, message);
}
