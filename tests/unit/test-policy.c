/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <criterion/criterion.h>
#include <errno.h>
#include <linux/capability.h>
#include <string.h>

#include "macro.h"
#include "policy.h"

#define ROOT 0
#define ALICE 1000
#define BOB 1001
#define CAROL 1002
#define TTY 5
#define WHEEL 10
#define USERS 100
#define OTHER_GROUP 2000

#define DAEMON_PID 500
#define WATCHER_PID_A 600
#define WATCHER_PID_B 601
#define TARGET_PID 4242

#define BIT(c) (UINT64_C(1) << (c))
#define ALL_CAPS (BIT(CAP_LAST_CAP + 1) - 1)

#define ID4(x) { x, x, x, x }

typedef struct TestCaller {
        uid_t uid;
        gid_t gid;
        gid_t groups[4];
        size_t n_groups;
        uint64_t caps;
} TestCaller;

typedef struct TestTarget {
        pid_t pid; /* 0: TARGET_PID */
        uid_t uid[4];
        gid_t gid[4];
        uint64_t inh, prm, eff, amb, bnd;
        bool kthread, zombie;
} TestTarget;

typedef struct Row {
        const char *name;
        PolicyOp op;
        TestCaller caller;
        TestTarget target;
        bool frozen;
        uid_t frozen_by;
        bool streaming; /* frozen, restored lazily, memory streaming back */
        bool polkit;
        PolicyVerdict verdict;
        int error;
        const char *reason; /* NULL: not compared */
} Row;

#define C_ROOT { .uid = ROOT, .gid = ROOT }
#define C_ALICE { .uid = ALICE, .gid = ALICE, .groups = { WHEEL, USERS }, .n_groups = 2 }
#define C_ALICE_NOGROUPS { .uid = ALICE, .gid = ALICE }
#define C_ALICE_CAPS(c) { .uid = ALICE, .gid = ALICE, .groups = { WHEEL, USERS }, .n_groups = 2, .caps = (c) }
#define C_BOB { .uid = BOB, .gid = BOB }
#define C_CAROL { .uid = CAROL, .gid = CAROL }

#define T_USER(u) { .uid = ID4(u), .gid = ID4(u), .bnd = ALL_CAPS }
#define T_IDS(u0, u1, u2, u3, g0, g1, g2, g3) \
        { .uid = { u0, u1, u2, u3 }, .gid = { g0, g1, g2, g3 }, .bnd = ALL_CAPS }
#define T_ALICE_CAPS(i, p, e, a) \
        { .uid = ID4(ALICE), .gid = ID4(ALICE), .inh = (i), .prm = (p), .eff = (e), .amb = (a), \
          .bnd = ALL_CAPS }
#define T_ROOT { .uid = ID4(ROOT), .gid = ID4(ROOT), .prm = ALL_CAPS, .eff = ALL_CAPS, .bnd = ALL_CAPS }
#define T_PID(p, u) { .pid = (p), .uid = ID4(u), .gid = ID4(u), .bnd = ALL_CAPS }

#define ALLOW .verdict = POLICY_ALLOW, .error = 0
#define POLKIT .verdict = POLICY_ASK_POLKIT, .error = -EPERM
#define DENY(e) .verdict = POLICY_DENY, .error = (e)

#define R_UIDS .reason = "target's uids differ from the caller's uid"
#define R_GIDS .reason = "target's gids are not all in the caller's groups"
#define R_CAPS .reason = "target has capabilities the caller lacks"
#define R_OWNER .reason = "caller did not checkpoint it and does not own it"

#define CK POLICY_OP_CHECKPOINT
#define RS POLICY_OP_RESTORE
#define ST POLICY_OP_STATUS

static const Row rows[] = {
        /* Same user, other user. */
        { "same user", CK, C_ALICE, T_USER(ALICE), ALLOW },
        { "same user, polkit available", CK, C_ALICE, T_USER(ALICE), .polkit = true, ALLOW },
        { "same user, no supplementary groups", CK, C_ALICE_NOGROUPS, T_USER(ALICE), ALLOW },
        { "other user, polkit", CK, C_ALICE, T_USER(BOB), .polkit = true, POLKIT, R_UIDS },
        { "other user, no polkit", CK, C_ALICE, T_USER(BOB), DENY(-EPERM), R_UIDS },

        /* Setuid-ish targets: real uid is the caller's, others are not. */
        { "setuid root binary", CK, C_ALICE, T_IDS(ALICE, ROOT, ROOT, ROOT, ALICE, ALICE, ALICE, ALICE),
          .polkit = true, POLKIT, R_UIDS },
        { "effective uid differs", CK, C_ALICE, T_IDS(ALICE, BOB, ALICE, ALICE, ALICE, ALICE, ALICE, ALICE),
          DENY(-EPERM) },
        { "saved uid differs", CK, C_ALICE, T_IDS(ALICE, ALICE, ROOT, ALICE, ALICE, ALICE, ALICE, ALICE),
          DENY(-EPERM), R_UIDS },
        { "saved uid differs, polkit", CK, C_ALICE,
          T_IDS(ALICE, ALICE, BOB, ALICE, ALICE, ALICE, ALICE, ALICE),
          .polkit = true, POLKIT },
        { "fs uid differs", CK, C_ALICE, T_IDS(ALICE, ALICE, ALICE, BOB, ALICE, ALICE, ALICE, ALICE),
          DENY(-EPERM), R_UIDS },
        { "only real uid differs", CK, C_ALICE, T_IDS(BOB, ALICE, ALICE, ALICE, ALICE, ALICE, ALICE, ALICE),
          DENY(-EPERM) },

        /* Groups. */
        { "group mismatch", CK, C_ALICE, T_IDS(ALICE, ALICE, ALICE, ALICE, BOB, BOB, BOB, BOB), DENY(-EPERM),
          R_GIDS },
        { "group mismatch, polkit", CK, C_ALICE, T_IDS(ALICE, ALICE, ALICE, ALICE, BOB, BOB, BOB, BOB),
          .polkit = true, POLKIT },
        { "supplementary group users", CK, C_ALICE,
          T_IDS(ALICE, ALICE, ALICE, ALICE, USERS, USERS, USERS, USERS), ALLOW },
        { "supplementary group wheel", CK, C_ALICE,
          T_IDS(ALICE, ALICE, ALICE, ALICE, WHEEL, WHEEL, WHEEL, WHEEL), ALLOW },
        { "primary and supplementary groups mixed", CK, C_ALICE,
          T_IDS(ALICE, ALICE, ALICE, ALICE, ALICE, USERS, WHEEL, ALICE), ALLOW },
        { "primary gid in real/effective/fs only, saved differs", CK, C_ALICE,
          T_IDS(ALICE, ALICE, ALICE, ALICE, ALICE, ALICE, OTHER_GROUP, ALICE), DENY(-EPERM), R_GIDS },
        { "primary gid in effective/saved/fs only, real differs", CK, C_ALICE,
          T_IDS(ALICE, ALICE, ALICE, ALICE, OTHER_GROUP, ALICE, ALICE, ALICE), DENY(-EPERM) },
        { "primary gid in real/effective/saved only, fs differs", CK, C_ALICE,
          T_IDS(ALICE, ALICE, ALICE, ALICE, ALICE, ALICE, ALICE, OTHER_GROUP), .polkit = true, POLKIT },
        { "setgid tty binary", CK, C_ALICE, T_IDS(ALICE, ALICE, ALICE, ALICE, ALICE, TTY, TTY, TTY),
          DENY(-EPERM), R_GIDS },
        { "supplementary gid but caller has no groups", CK, C_ALICE_NOGROUPS,
          T_IDS(ALICE, ALICE, ALICE, ALICE, USERS, USERS, USERS, USERS), DENY(-EPERM), R_GIDS },

        /* Capabilities. */
        { "inheritable capability", CK, C_ALICE, T_ALICE_CAPS(BIT(CAP_NET_ADMIN), 0, 0, 0), DENY(-EPERM),
          R_CAPS },
        { "permitted capability", CK, C_ALICE, T_ALICE_CAPS(0, BIT(CAP_NET_ADMIN), 0, 0), DENY(-EPERM),
          R_CAPS },
        { "effective capability", CK, C_ALICE, T_ALICE_CAPS(0, 0, BIT(CAP_NET_ADMIN), 0), DENY(-EPERM),
          R_CAPS },
        { "effective capability, polkit", CK, C_ALICE, T_ALICE_CAPS(0, 0, BIT(CAP_SYS_PTRACE), 0),
          .polkit = true, POLKIT },
        { "ambient capability", CK, C_ALICE, T_ALICE_CAPS(0, 0, 0, BIT(CAP_NET_BIND_SERVICE)), DENY(-EPERM),
          R_CAPS },
        { "highest capability", CK, C_ALICE, T_ALICE_CAPS(0, BIT(CAP_LAST_CAP), 0, 0), DENY(-EPERM) },
        { "caller holds the permitted+effective capability", CK, C_ALICE_CAPS(BIT(CAP_NET_ADMIN)),
          T_ALICE_CAPS(0, BIT(CAP_NET_ADMIN), BIT(CAP_NET_ADMIN), 0), ALLOW },
        { "caller holds the inheritable capability", CK, C_ALICE_CAPS(BIT(CAP_NET_ADMIN)),
          T_ALICE_CAPS(BIT(CAP_NET_ADMIN), 0, 0, 0), ALLOW },
        { "caller holds the ambient capability", CK, C_ALICE_CAPS(BIT(CAP_NET_BIND_SERVICE)),
          T_ALICE_CAPS(0, 0, 0, BIT(CAP_NET_BIND_SERVICE)), ALLOW },
        { "caller holds one of two capabilities", CK, C_ALICE_CAPS(BIT(CAP_NET_ADMIN)),
          T_ALICE_CAPS(0, BIT(CAP_NET_ADMIN) | BIT(CAP_SYS_PTRACE), 0, 0), DENY(-EPERM), R_CAPS },
        { "caller holds a different capability", CK, C_ALICE_CAPS(BIT(CAP_SYS_PTRACE)),
          T_ALICE_CAPS(BIT(CAP_NET_ADMIN), 0, 0, 0), DENY(-EPERM) },
        { "uids differ before capabilities are looked at", CK, C_ALICE_CAPS(ALL_CAPS), T_ROOT,
          DENY(-EPERM), R_UIDS },
        { "full bounding set is not checked", CK, C_ALICE,
          { .uid = ID4(ALICE), .gid = ID4(ALICE), .bnd = UINT64_MAX }, ALLOW },
        { "empty bounding set", CK, C_ALICE, { .uid = ID4(ALICE), .gid = ID4(ALICE) }, ALLOW },

        /* Root caller. */
        { "root on other user", CK, C_ROOT, T_USER(BOB), ALLOW },
        { "root on setuid target", CK, C_ROOT, T_IDS(ALICE, ROOT, ROOT, ROOT, ALICE, ALICE, ALICE, ALICE),
          ALLOW },
        { "root on group mismatch", CK, C_ROOT, T_IDS(ALICE, ALICE, ALICE, ALICE, BOB, TTY, BOB, BOB),
          ALLOW },
        { "root on target with capabilities", CK, C_ROOT,
          T_ALICE_CAPS(BIT(CAP_NET_ADMIN), BIT(CAP_SYS_ADMIN), BIT(CAP_SYS_ADMIN), BIT(CAP_NET_RAW)), ALLOW },
        { "root on root target", CK, C_ROOT, T_ROOT, ALLOW },
        { "root on root target, polkit", CK, C_ROOT, T_ROOT, .polkit = true, ALLOW },

        /* Root target, ordinary caller. */
        { "root target, polkit", CK, C_ALICE, T_ROOT, .polkit = true, POLKIT, R_UIDS },
        { "root target, no polkit", CK, C_ALICE, T_ROOT, DENY(-EPERM) },

        /* Restore. */
        { "restore by checkpointing user", RS, C_ALICE, T_USER(BOB), .frozen = true, .frozen_by = ALICE,
          ALLOW },
        { "restore by owner", RS, C_BOB, T_USER(BOB), .frozen = true, .frozen_by = ROOT, ALLOW },
        { "restore by owner of a capable target", RS, C_BOB,
          { .uid = ID4(BOB), .gid = ID4(BOB), .prm = ALL_CAPS, .eff = ALL_CAPS }, .frozen = true,
          .frozen_by = ROOT, ALLOW },
        { "restore by third user, polkit", RS, C_CAROL, T_USER(BOB), .frozen = true, .frozen_by = ALICE,
          .polkit = true, POLKIT, R_OWNER },
        { "restore by third user, no polkit", RS, C_CAROL, T_USER(BOB), .frozen = true, .frozen_by = ALICE,
          DENY(-EPERM) },
        { "restore by root", RS, C_ROOT, T_USER(BOB), .frozen = true, .frozen_by = ALICE, ALLOW },
        { "restore by real uid only", RS, C_ALICE, T_IDS(ALICE, BOB, BOB, BOB, ALICE, ALICE, ALICE, ALICE),
          .frozen = true, .frozen_by = ROOT, .polkit = true, POLKIT },
        { "restore by effective uid only", RS, C_ALICE,
          T_IDS(BOB, ALICE, ALICE, ALICE, ALICE, ALICE, ALICE, ALICE), .frozen = true, .frozen_by = ROOT,
          DENY(-EPERM), R_OWNER },
        { "restore of a target that is not frozen", RS, C_ALICE, T_USER(ALICE), .polkit = true,
          DENY(-ENOENT) },
        { "restore of a target that is not frozen, by root", RS, C_ROOT, T_USER(ALICE), DENY(-ENOENT) },

        /* Status. */
        { "status by checkpointing user", ST, C_ALICE, T_USER(BOB), .frozen = true, .frozen_by = ALICE,
          ALLOW },
        { "status by owner", ST, C_BOB, T_USER(BOB), .frozen = true, .frozen_by = ALICE, ALLOW },
        { "status by third user, polkit", ST, C_CAROL, T_USER(BOB), .frozen = true, .frozen_by = ALICE,
          .polkit = true, POLKIT },
        { "status by third user, no polkit", ST, C_CAROL, T_USER(BOB), .frozen = true, .frozen_by = ALICE,
          DENY(-EPERM), R_OWNER },
        { "status by root", ST, C_ROOT, T_USER(BOB), .frozen = true, .frozen_by = ALICE, ALLOW },
        { "status of a target that is not frozen", ST, C_ALICE, T_USER(ALICE), DENY(-ENOENT) },

        /* Never a target. */
        { "PID 1 by root", CK, C_ROOT, T_PID(1, ROOT), DENY(-EINVAL) },
        { "PID 1 owned by the caller", CK, C_ALICE, T_PID(1, ALICE), .polkit = true, DENY(-EINVAL) },
        { "PID 1 restore by root", RS, C_ROOT, T_PID(1, ROOT), .frozen = true, .frozen_by = ROOT,
          DENY(-EINVAL) },
        { "kernel thread by root", CK, C_ROOT, { .uid = ID4(ROOT), .gid = ID4(ROOT), .kthread = true },
          DENY(-EINVAL) },
        { "kernel thread, polkit", CK, C_ALICE,
          { .uid = ID4(ROOT), .gid = ID4(ROOT), .prm = ALL_CAPS, .eff = ALL_CAPS, .kthread = true },
          .polkit = true, DENY(-EINVAL) },
        { "memcrd itself by root", CK, C_ROOT, T_PID(DAEMON_PID, ROOT), DENY(-EINVAL) },
        { "memcrd itself, status by root", ST, C_ROOT, T_PID(DAEMON_PID, ROOT), .frozen = true,
          .frozen_by = ROOT, DENY(-EINVAL) },
        { "watcher by root", CK, C_ROOT, T_PID(WATCHER_PID_A, ROOT), DENY(-EINVAL) },
        { "watcher owned by the caller", CK, C_ALICE, T_PID(WATCHER_PID_B, ALICE), .polkit = true,
          DENY(-EINVAL) },
        { "zombie by root", CK, C_ROOT, { .uid = ID4(ALICE), .gid = ID4(ALICE), .zombie = true },
          DENY(-ESRCH) },
        { "zombie by owner, polkit", CK, C_ALICE, { .uid = ID4(ALICE), .gid = ID4(ALICE), .zombie = true },
          .polkit = true, DENY(-ESRCH) },
        { "frozen zombie, restore by root", RS, C_ROOT,
          { .uid = ID4(ALICE), .gid = ID4(ALICE), .zombie = true }, .frozen = true, .frozen_by = ALICE,
          DENY(-ESRCH) },
        { "already frozen, by owner", CK, C_ALICE, T_USER(ALICE), .frozen = true, .frozen_by = ALICE,
          DENY(-EALREADY) },
        { "already frozen, by root", CK, C_ROOT, T_USER(ALICE), .frozen = true, .frozen_by = ALICE,
          DENY(-EALREADY) },
        /* Running again, its memory still streaming back: busy, not frozen. */
        { "streaming back, by owner", CK, C_ALICE, T_USER(ALICE), .frozen = true, .frozen_by = ALICE,
          .streaming = true, DENY(-EBUSY) },
        { "streaming back, by root", CK, C_ROOT, T_USER(ALICE), .frozen = true, .frozen_by = ALICE,
          .streaming = true, DENY(-EBUSY) },
        { "streaming back, third user, no polkit", CK, C_CAROL, T_USER(ALICE), .frozen = true,
          .frozen_by = ALICE, .streaming = true, DENY(-EPERM), R_UIDS },
        { "streaming back, status by owner", ST, C_ALICE, T_USER(ALICE), .frozen = true, .frozen_by = ALICE,
          .streaming = true, ALLOW },
        /* Whether another user's process is frozen is not told to those
         * who may not see it: the same denial either way. */
        { "already frozen, third user, polkit", CK, C_CAROL, T_USER(ALICE), .frozen = true,
          .frozen_by = ALICE, .polkit = true, POLKIT, R_UIDS },
        { "already frozen, third user, no polkit", CK, C_CAROL, T_USER(ALICE), .frozen = true,
          .frozen_by = ALICE, DENY(-EPERM), R_UIDS },
        { "status of another user's process that is not frozen", ST, C_BOB, T_USER(ALICE), DENY(-EPERM),
          R_OWNER },
        { "status of another user's process that is not frozen, polkit", ST, C_BOB, T_USER(ALICE),
          .polkit = true, POLKIT, R_OWNER },
        { "restore of another user's process that is not frozen", RS, C_BOB, T_USER(ALICE), DENY(-EPERM),
          R_OWNER },
        { "status of root's process that is not frozen", ST, C_ALICE, T_ROOT, DENY(-EPERM), R_OWNER },
        { "unknown operation", _POLICY_OP_MAX, C_ROOT, T_USER(ALICE), DENY(-EINVAL) },
};

static void run(const Row *row, bool polkit, PolicyDecision *ret) {
        gid_t groups[ELEMENTSOF(row->caller.groups)];
        CallerCreds caller = {
                .pid = 7777,
                .uid = row->caller.uid,
                .gid = row->caller.gid,
                .groups = row->caller.n_groups > 0 ? groups : NULL,
                .n_groups = row->caller.n_groups,
                .cap_effective = row->caller.caps,
        };
        ProcCreds target = {
                .pid = row->target.pid != 0 ? row->target.pid : TARGET_PID,
                .cap_inheritable = row->target.inh,
                .cap_permitted = row->target.prm,
                .cap_effective = row->target.eff,
                .cap_ambient = row->target.amb,
                .cap_bounding = row->target.bnd,
                .kernel_thread = row->target.kthread,
                .zombie = row->target.zombie,
                .comm = "target",
                .start_time = 12345,
        };
        PolicyInput in = {
                .op = row->op,
                .caller = &caller,
                .target = &target,
                .daemon_pid = DAEMON_PID,
                /* memcrd recognises its watchers (see manager_is_own_process()). */
                .own_process = row->target.pid == WATCHER_PID_A || row->target.pid == WATCHER_PID_B
                                       ? "a watcher process is never a target"
                                       : NULL,
                .target_frozen = row->frozen,
                .target_streaming = row->streaming,
                .frozen_by_uid = row->frozen_by,
                .polkit_available = polkit,
        };

        memcpy(groups, row->caller.groups, sizeof(groups));
        memcpy(target.uid, row->target.uid, sizeof(target.uid));
        memcpy(target.gid, row->target.gid, sizeof(target.gid));
        policy_decide(&in, ret);
}

Test(policy, table) {
        cr_assert_geq(ELEMENTSOF(rows), 45);

        for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
                const Row *row = &rows[i];
                PolicyDecision d, flipped;

                run(row, row->polkit, &d);
                cr_assert_eq(d.verdict, row->verdict, "%s: verdict %s, expected %s", row->name,
                             policy_verdict_to_string(d.verdict), policy_verdict_to_string(row->verdict));
                cr_assert_eq(d.error, row->error, "%s: error %i, expected %i", row->name, d.error,
                             row->error);
                if (d.verdict != POLICY_ALLOW)
                        cr_assert_not_null(d.reason, "%s: no reason", row->name);
                if (row->reason)
                        cr_assert_str_eq(d.reason, row->reason, "%s: reason \"%s\"", row->name, d.reason);

                /* Polkit being available or not never turns anything into
                 * ALLOW, and only changes the outcome of requests that
                 * rules 1 and 2 did not allow. */
                run(row, !row->polkit, &flipped);
                if (row->verdict == POLICY_ALLOW || row->error != -EPERM) {
                        cr_assert_eq(flipped.verdict, d.verdict, "%s: polkit changed the verdict", row->name);
                        cr_assert_eq(flipped.error, d.error, "%s: polkit changed the error", row->name);
                } else {
                        cr_assert_eq(flipped.verdict, row->polkit ? POLICY_DENY : POLICY_ASK_POLKIT,
                                     "%s: polkit flipped to %s", row->name,
                                     policy_verdict_to_string(flipped.verdict));
                        cr_assert_eq(flipped.error, -EPERM, "%s", row->name);
                        cr_assert_str_eq(flipped.reason, d.reason, "%s", row->name);
                }
        }

        cr_assert_str_eq(policy_verdict_to_string(POLICY_ALLOW), "allow");
        cr_assert_str_eq(policy_verdict_to_string(POLICY_DENY), "deny");
        cr_assert_str_eq(policy_verdict_to_string(POLICY_ASK_POLKIT), "ask-polkit");
        cr_assert_null(policy_verdict_to_string(_POLICY_VERDICT_MAX));
        cr_assert_str_eq(policy_op_to_string(POLICY_OP_RESTORE), "restore");
        cr_assert_null(policy_op_to_string(_POLICY_OP_MAX));
}

/* For every caller that the rules do not allow, a restore or status request
 * gets the same answer whether the target is frozen or not; and so does a
 * checkpoint request. */
Test(policy, frozen_state_is_not_told_to_others) {
        static const TestCaller callers[] = { C_BOB, C_CAROL, C_ALICE_NOGROUPS };
        static const TestTarget targets[] = { T_USER(ROOT), T_USER(ALICE), T_ROOT };
        static const PolicyOp ops[] = { CK, RS, ST };

        for (size_t o = 0; o < ELEMENTSOF(ops); o++)
                for (size_t i = 0; i < ELEMENTSOF(callers); i++)
                        for (size_t t = 0; t < ELEMENTSOF(targets); t++)
                                for (int polkit = 0; polkit <= 1; polkit++) {
                                        Row frozen = { "frozen", ops[o], callers[i], targets[t], .frozen = true,
                                                       .frozen_by = ROOT, .polkit = polkit };
                                        Row running = frozen;
                                        PolicyDecision a, b;

                                        running.frozen = false;
                                        run(&frozen, polkit, &a);
                                        run(&running, polkit, &b);
                                        if (a.verdict == POLICY_ALLOW || b.verdict == POLICY_ALLOW)
                                                continue; /* the caller may see it */
                                        if (a.error != -EPERM && b.error != -EPERM)
                                                continue;
                                        cr_assert_eq(a.verdict, b.verdict, "op %d caller %zu target %zu: %s / %s",
                                                     ops[o], i, t, policy_verdict_to_string(a.verdict),
                                                     policy_verdict_to_string(b.verdict));
                                        cr_assert_eq(a.error, b.error, "op %d caller %zu target %zu: %d / %d",
                                                     ops[o], i, t, a.error, b.error);
                                        cr_assert_str_eq(a.reason, b.reason);
                                }
}
