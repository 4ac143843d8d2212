/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Authorization of a request, before anything is done to the target:
 * the policy (policy.h), then polkit when the policy leaves it open, and
 * SELinux (the caller must be allowed to ptrace the target) when enabled.
 * Every decision is logged here; the verdict goes to a callback, and what
 * follows is the caller's business.
 */

#include <stdbool.h>
#include <sys/types.h>

#include "macro.h"
#include "manager.h"
#include "policy.h"

/* error 0: allowed (text NULL); < 0: denied, and text says why, for the
 * requester ("checkpoint of 42 denied: ..."). */
typedef void (*authorize_verdict_t)(int error, const char *text, void *userdata);

/* Capabilities and security label of a new client, from its pidfd/socket. */
int authorize_capture_peer(Manager *m, Client *c, int fd);

/* Decide op on pid (pinned by pidfd) for client c. The verdict may come
 * before this returns (then *ret is NULL), or later, from polkit (then
 * *ret is the request, to be cancelled if the client goes). */
int authorize(Client *c, PolicyOp op, pid_t pid, int pidfd, authorize_verdict_t cb, void *userdata,
              AuthRequest **ret);

AuthRequest *auth_request_cancel(AuthRequest *a);
DEFINE_TRIVIAL_CLEANUP_FUNC(AuthRequest *, auth_request_cancel);
