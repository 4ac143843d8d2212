/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * memcrd's authorizer: a verdict for every request, through its callback,
 * on real processes, and a watcher (a fake one, known to the registry)
 * never a target.
 */

#include "authorize.h"
#include "client.h"
#include "daemon-unit.h"

static UnitDaemon d;
static Client c;
static int verdict;
static char text[512];
static bool decided;

static void on_verdict(int error, const char *why, void *userdata) {
        cr_assert_eq(userdata, &c);
        cr_assert(!decided, "two verdicts");
        decided = true;
        verdict = error;
        snprintf(text, sizeof(text), "%s", why ?: "");
}

static void setup(void) {
        unit_daemon_setup(&d);
        c = (Client) {
                .manager = &d.m,
                .pidfd = -EBADF,
                .request_pidfd = -EBADF,
                .creds = { .pid = getpid(), .uid = 0, .gid = 0, .cap_effective = ~UINT64_C(0) },
        };
        decided = false;
        verdict = 1;
        text[0] = 0;
}

static void teardown(void) {
        unit_daemon_teardown(&d);
}

TestSuite(authorize, .init = setup, .fini = teardown, .timeout = 30);

static void decide(PolicyOp op, pid_t pid) {
        AuthRequest *a = NULL;
        int pidfd = pidfd_open_pid(pid);

        cr_assert_geq(pidfd, 0);
        cr_assert_eq(authorize(&c, op, pid, pidfd, on_verdict, &c, &a), 0);
        close(pidfd);
        /* Without polkit the rules decide at once. */
        cr_assert_null(a);
        cr_assert(decided, "no verdict");
}

Test(authorize, root_may_checkpoint_a_process) {
        pid_t target = unit_daemon_child(&d);

        decide(POLICY_OP_CHECKPOINT, target);
        cr_assert_eq(verdict, 0, "denied: %s", text);
        /* What was judged is what the watcher will hold the target to. */
        cr_assert_eq(c.target_identity.creds.pid, target);
}

Test(authorize, another_user_may_not_checkpoint_roots_process) {
        pid_t target = unit_daemon_child(&d);
        char expect[64];

        c.creds.uid = 65534;
        c.creds.gid = 65534;
        c.creds.cap_effective = 0;
        decide(POLICY_OP_CHECKPOINT, target);
        cr_assert_lt(verdict, 0);
        snprintf(expect, sizeof(expect), "checkpoint of %d denied: ", target);
        cr_assert_eq(strncmp(text, expect, strlen(expect)), 0, "%s", text);
}

/* A process the registry knows as the watcher of another is never a target,
 * whoever asks. */
Test(authorize, a_watcher_is_never_a_target) {
        pid_t target = unit_daemon_child(&d);
        pid_t watcher = unit_daemon_adopt(&d, fake_watcher_fork(d.dir, target, FAKE_WATCHER_FROZEN));
        int pidfd = pidfd_open_pid(target);
        Entry *e = NULL;

        cr_assert_eq(registry_add(&d.m.registry, target, pidfd, ENTRY_FROZEN, 0, &e), 0);
        close(pidfd);
        message_set_u32(&e->info, TAG_WATCHER_PID, (uint32_t) watcher);
        decide(POLICY_OP_CHECKPOINT, watcher);
        cr_assert_lt(verdict, 0);
        cr_assert_not_null(strstr(text, "a watcher process is never a target"), "%s", text);
}

Test(authorize, a_process_gone_is_denied) {
        pid_t target = unit_daemon_child(&d);
        AuthRequest *a = NULL;
        int pidfd = pidfd_open_pid(target);

        cr_assert_eq(kill(target, SIGKILL), 0);
        cr_assert_eq(waitpid(target, NULL, 0), target);
        d.n_children = 0;
        cr_assert_eq(authorize(&c, POLICY_OP_RESTORE, target, pidfd, on_verdict, &c, &a), 0);
        close(pidfd);
        cr_assert(decided);
        cr_assert_eq(verdict, -ESRCH, "%s", text);
        cr_assert_not_null(strstr(text, "no such process"), "%s", text);
}

Test(authorize, restore_of_a_process_that_is_not_frozen) {
        pid_t target = unit_daemon_child(&d);

        decide(POLICY_OP_RESTORE, target);
        /* The rules allow root, and say it is not frozen. */
        cr_assert_lt(verdict, 0);
        cr_assert_not_null(strstr(text, "restore of"), "%s", text);
}
