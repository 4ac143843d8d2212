/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * D-Bus errors, said in words. An error from the bus is reported by its name
 * and message: never turned into an errno, whose text would say something
 * else ("org.freedesktop.systemd1.UnitMasked" is ERFKILL, "Operation not
 * possible due to RF-kill").
 */

#include <stdbool.h>
#include <stddef.h>
#include <systemd/sd-bus.h>

/* Did a call fail because its service is not there and cannot be started
 * (not installed, masked, failed to start)? */
bool bus_error_is_unavailable(const sd_bus_error *e);

/* Why a call to polkit (org.freedesktop.PolicyKit1) failed:
 *   "polkit is not available (org.freedesktop.PolicyKit1 not activatable): MESSAGE"
 *   "polkit did not answer in time (NAME): MESSAGE"
 *   "polkit failed (NAME): MESSAGE" */
void polkit_error_describe(const sd_bus_error *e, char *buf, size_t size);

/* "NAME: MESSAGE" (or just the name). */
void bus_error_describe(const sd_bus_error *e, char *buf, size_t size);
