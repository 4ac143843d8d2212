/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>

#include "macro.h"
#include "policy.h"
#include "string-table.h"

static const char *const policy_op_table[_POLICY_OP_MAX] = {
        [POLICY_OP_CHECKPOINT] = "checkpoint",
        [POLICY_OP_RESTORE] = "restore",
        [POLICY_OP_STATUS] = "status",
};

static const char *const policy_verdict_table[_POLICY_VERDICT_MAX] = {
        [POLICY_ALLOW] = "allow",
        [POLICY_DENY] = "deny",
        [POLICY_ASK_POLKIT] = "ask-polkit",
};

DEFINE_STRING_TABLE_TO_STRING(policy_op, PolicyOp, NULL);
DEFINE_STRING_TABLE_TO_STRING(policy_verdict, PolicyVerdict, NULL);

static PolicyDecision decision(PolicyVerdict verdict, int error, const char *reason) {
        return (PolicyDecision) {
                .verdict = verdict,
                .reason = reason,
                .error = error,
        };
}

static bool caller_in_group(const CallerCreds *caller, gid_t gid) {
        if (gid == caller->gid)
                return true;
        for (size_t i = 0; i < caller->n_groups; i++)
                if (caller->groups[i] == gid)
                        return true;
        return false;
}

/* Rule 2 for checkpoint (CRIU's may_dump()). Returns NULL if allowed, else
 * the reason of the first check that failed. */
static const char *may_checkpoint(const CallerCreds *caller, const ProcCreds *target) {
        uint64_t target_caps;

        for (size_t i = 0; i < _PROC_ID_MAX; i++)
                if (target->uid[i] != caller->uid)
                        return "target's uids differ from the caller's uid";

        for (size_t i = 0; i < _PROC_ID_MAX; i++)
                if (!caller_in_group(caller, target->gid[i]))
                        return "target's gids are not all in the caller's groups";

        /* The bounding set is not compared: every process has a full
         * bounding set unless something dropped from it, so comparing it
         * would refuse nearly every target of an ordinary caller. It only
         * limits what the target could gain at a later execve(). */
        target_caps = target->cap_inheritable | target->cap_permitted | target->cap_effective |
                      target->cap_ambient;
        if (target_caps & ~caller->cap_effective)
                return "target has capabilities the caller lacks";

        return NULL;
}

/* Rule 2 for restore and status (CRIU's may_restore()): the user who
 * checkpointed the target, or its owner. */
static const char *may_restore(const PolicyInput *in) {
        const CallerCreds *caller = in->caller;
        const ProcCreds *target = in->target;

        if (in->target_frozen && caller->uid == in->frozen_by_uid)
                return NULL;
        if (caller->uid == target->uid[PROC_ID_REAL] && caller->uid == target->uid[PROC_ID_EFFECTIVE])
                return NULL;
        return "caller did not checkpoint it and does not own it";
}

/* f. For a caller who may know: is the target in the state the operation
 * needs? */
static PolicyDecision frozen_state(const PolicyInput *in, PolicyDecision allowed) {
        if (in->op == POLICY_OP_CHECKPOINT && in->target_frozen && in->target_streaming)
                return decision(POLICY_DENY, -EBUSY,
                                "target's memory is still streaming back from its lazy restore; try again once it "
                                "is all back");
        if (in->op == POLICY_OP_CHECKPOINT && in->target_frozen)
                return decision(POLICY_DENY, -EALREADY, "target is already checkpointed");
        if (in->op != POLICY_OP_CHECKPOINT && !in->target_frozen)
                return decision(POLICY_DENY, -ENOENT, "target is not checkpointed");
        return allowed;
}

static PolicyDecision decide(const PolicyInput *in) {
        const CallerCreds *caller = in->caller;
        const ProcCreds *target = in->target;
        const char *failed;

        /* A malformed request is refused rather than trusted. */
        if (!policy_op_to_string(in->op))
                return decision(POLICY_DENY, -EINVAL, "unknown operation");

        /* a. Never a target, whoever asks. */
        if (target->pid == 1)
                return decision(POLICY_DENY, -EINVAL, "PID 1 is never a target");
        if (target->pid <= 0)
                return decision(POLICY_DENY, -EINVAL, "invalid target pid");
        if (target->kernel_thread)
                return decision(POLICY_DENY, -EINVAL, "kernel threads are never a target");
        if (target->pid == in->daemon_pid)
                return decision(POLICY_DENY, -EINVAL, "the daemon itself is never a target");
        if (in->own_process)
                return decision(POLICY_DENY, -EINVAL, in->own_process);
        if (target->zombie)
                return decision(POLICY_DENY, -ESRCH, "target is a zombie");

        /* b. Rule 1. */
        if (caller->uid == 0)
                return frozen_state(in, decision(POLICY_ALLOW, 0, "caller is root"));

        /* c.-d. Rule 2. */
        if (in->op == POLICY_OP_CHECKPOINT)
                failed = may_checkpoint(caller, target);
        else
                failed = may_restore(in);
        if (!failed)
                return frozen_state(in, decision(POLICY_ALLOW, 0,
                                                 in->op == POLICY_OP_CHECKPOINT
                                                         ? "caller has the target's identity and capabilities"
                                                         : "caller checkpointed or owns the target"));

        /* e. Only polkit can allow more; whether the target is frozen is
         * told to those it authorizes. */
        if (in->polkit_available)
                return decision(POLICY_ASK_POLKIT, -EPERM, failed);
        return decision(POLICY_DENY, -EPERM, failed);
}

void policy_decide(const PolicyInput *in, PolicyDecision *ret) {
        assert(in);
        assert(in->caller);
        assert(in->target);
        assert(in->caller->n_groups == 0 || in->caller->groups);
        assert(ret);

        *ret = decide(in);
}
