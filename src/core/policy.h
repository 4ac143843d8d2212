/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Who may checkpoint, restore or query which process. A pure function of
 * its input: every identity is read beforehand (see proc-creds.h), nothing
 * here touches the system.
 *
 * The rules mirror CRIU's may_dump()/may_restore() (criu/security.c):
 *
 *   a. Never a target, whoever asks: PID 1, kernel threads, the daemon
 *      itself, its watchers and anything else running memcr's programs,
 *      zombies.
 *   b. Rule 1: a caller with uid 0 may do anything else.
 *   c. Rule 2, checkpoint: the caller has every uid of the target, every gid
 *      of the target is among the caller's groups, and the target holds no
 *      capability the caller does not hold.
 *   d. Rule 2, restore and status: the caller checkpointed the target or
 *      owns it (real and effective uid).
 *   e. Anything else is up to polkit if it is available, else denied.
 *   f. Only then, for a caller allowed so far: checkpoint of a frozen target
 *      and restore/status of a target that is not frozen are refused. A
 *      caller who may not see a process learns nothing of its state: the
 *      answer is the same denial whether memcr holds it or not.
 */

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "proc-creds.h"

typedef enum PolicyOp {
        POLICY_OP_CHECKPOINT,
        POLICY_OP_RESTORE,
        POLICY_OP_STATUS,
        _POLICY_OP_MAX,
} PolicyOp;

typedef enum PolicyVerdict {
        POLICY_ALLOW,
        POLICY_DENY,
        POLICY_ASK_POLKIT,
        _POLICY_VERDICT_MAX,
} PolicyVerdict;

typedef struct PolicyInput {
        PolicyOp op;
        const CallerCreds *caller;
        const ProcCreds *target;
        pid_t daemon_pid;            /* the daemon itself */
        /* Not NULL if the target is one of memcr's own processes (a watcher,
         * or anything running memcr's programs): why it is never a target. */
        const char *own_process;
        bool target_frozen;          /* a watcher already holds the target */
        bool target_streaming;       /* ... running again, its memory streaming back (lazy restore) */
        uid_t frozen_by_uid;         /* uid of the caller that checkpointed it (if target_frozen) */
        bool polkit_available;       /* false: whatever rules 1 and 2 do not allow is denied */
} PolicyInput;

typedef struct PolicyDecision {
        PolicyVerdict verdict;
        /* Static text a user can read: why the request is allowed, denied or
         * needs authorization. Never NULL. */
        const char *reason;
        /* 0 for POLICY_ALLOW. For POLICY_DENY: -EINVAL (never a target),
         * -ESRCH (zombie), -EPERM (not allowed), and for a caller the rules
         * allow: -EALREADY (checkpoint of a frozen target), -ENOENT
         * (restore/status of a target that is not frozen). For
         * POLICY_ASK_POLKIT: -EPERM, the error to report if polkit does not
         * authorize the request (whoever it does authorize is told about a
         * frozen or not frozen target only then). */
        int error;
} PolicyDecision;

void policy_decide(const PolicyInput *in, PolicyDecision *ret);

/* "checkpoint", "restore", "status"; NULL if out of range. */
const char *policy_op_to_string(PolicyOp op);
/* "allow", "deny", "ask-polkit"; NULL if out of range. */
const char *policy_verdict_to_string(PolicyVerdict v);
