/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * What a caller is told of the frozen processes: the answers to list and
 * status, as messages, holding only what that caller may see.
 */

#include <sys/types.h>

#include "proc-creds.h"
#include "protocol.h"
#include "registry.h"

/* The status of e (a REPLY, result OK). */
void listing_status(const Entry *e, Message *reply);
/* Every process the caller may see: frozen (or streaming back), and those
 * restored lazily that ended while streaming. */
void listing_list(const Registry *r, const CallerCreds *caller, Message *reply);
/* pid is gone: if it ended after memcr restored it, and the caller may know,
 * the answer that says how (then true). */
bool listing_ended(const Registry *r, const CallerCreds *caller, pid_t pid, Message *reply);
