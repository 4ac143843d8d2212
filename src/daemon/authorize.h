/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Authorization of a request, before anything is done to the target:
 * the policy (policy.h), then polkit when the policy leaves it open, and
 * SELinux (the caller must be allowed to ptrace the target) when enabled.
 * Every decision is logged. An allowed request continues with its
 * operation; a denied one is answered with the reason.
 */

#include <stdbool.h>
#include <sys/types.h>

#include "manager.h"
#include "policy.h"
#include "protocol.h"

/* Capabilities and security label of a new client, from its pidfd/socket. */
int authorize_capture_peer(Manager *m, Client *c, int fd);

/* Decide op on pid (pinned by pidfd), then run it or answer the client. */
int authorize_then(Client *c, PolicyOp op, pid_t pid, int pidfd, const Message *req, bool compat);

void auth_request_cancel(AuthRequest *a);
