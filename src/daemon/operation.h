/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Operations that need a watcher: checkpoint (start a watcher, hand it the
 * job and the target's pidfd, wait for its answer) and restore (ask the
 * watcher that holds the target). memcrd never touches a target itself.
 * Who asked is known only through its callbacks: an operation answers its
 * requester, and knows nothing of connections or authorization.
 */

#include <stdbool.h>
#include <sys/types.h>

#include "manager.h"

typedef struct OperationRequester {
        /* Progress of the work, from the watcher (optional). */
        void (*on_progress)(Message *progress, void *userdata);
        /* The answer to the request (a REPLY). Called once; it may come
         * before operation_checkpoint()/operation_restore() return. */
        void (*on_reply)(Message *reply, void *userdata);
        void *userdata;
        /* Where the requester keeps the operation that will answer it (or
         * NULL): kept up to date (a restore that waited for a checkpoint
         * gets an operation of its own), and NULL once answered. */
        Operation **handle;
        uid_t uid;        /* the caller */
        pid_t pid;
        uint32_t flags;   /* REQUEST_FLAG_* of its request */
} OperationRequester;

/* Checkpoint pid (pinned by pidfd) as req asks. auth_identity: the target as
 * authorization saw it (the watcher holds it to that). *ret: the operation
 * that will answer, or NULL if the answer was given already. */
int operation_checkpoint(Manager *m, const OperationRequester *who, pid_t pid, int pidfd, const Message *req,
                         const char *auth_identity, Operation **ret);
/* Restore pid (or wait for its checkpoint to end, then restore it). */
int operation_restore(Manager *m, const OperationRequester *who, pid_t pid, Operation **ret);
/* The requester (the one with this userdata) left: nobody gets an answer. */
void operation_forget_requester(Operation *op, void *userdata);
Operation *operation_free(Operation *op);
