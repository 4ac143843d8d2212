/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * memcrd's registry: a frozen process's exit and its watcher's are noticed
 * on the event loop, and told apart.
 */

#include "daemon-unit.h"

static UnitDaemon d;
static unsigned target_exits, watcher_exits;
static bool event_seen;

static void on_target_exit(Entry *e, void *userdata) {
        target_exits++;
        event_seen = true;
        registry_remove(e->registry, e);
}

static void on_watcher_exit(Entry *e, void *userdata) {
        watcher_exits++;
        event_seen = true;
}

static void setup(void) {
        unit_daemon_setup(&d);
        d.m.registry.on_exit = on_target_exit;
        d.m.registry.on_watcher_exit = on_watcher_exit;
        target_exits = watcher_exits = 0;
        event_seen = false;
}

static void teardown(void) {
        unit_daemon_teardown(&d);
}

TestSuite(registry, .init = setup, .fini = teardown, .timeout = 30);

static Entry *add(pid_t pid) {
        int pidfd = pidfd_open_pid(pid);
        Entry *e = NULL;

        cr_assert_geq(pidfd, 0);
        cr_assert_eq(registry_add(&d.m.registry, pid, pidfd, ENTRY_FROZEN, 1000, &e), 0);
        close(pidfd);
        cr_assert_eq(registry_find(&d.m.registry, pid), e);
        return e;
}

Test(registry, target_exit_is_noticed) {
        pid_t target = unit_daemon_child(&d);

        add(target);
        cr_assert_eq(kill(target, SIGKILL), 0);
        unit_daemon_run_until(&d, &event_seen, 2 * USEC_PER_SEC);
        cr_assert_eq(target_exits, 1);
        cr_assert_eq(watcher_exits, 0);
        cr_assert_null(registry_find(&d.m.registry, target));
        cr_assert_eq(d.m.registry.n_entries, 0);
}

/* A watcher that lets its process go: told once the moment in which a
 * watcher's death would have taken the process along has passed. */
Test(registry, watcher_exit_is_told_after_it_settled) {
        pid_t target = unit_daemon_child(&d);
        pid_t watcher = unit_daemon_adopt(&d, fake_watcher_fork(d.dir, target, FAKE_WATCHER_FROZEN));
        Entry *e = add(target);

        cr_assert_eq(entry_watch_watcher(e, watcher), 0);
        cr_assert_eq(kill(watcher, SIGKILL), 0);
        usec_t took = unit_daemon_run_until(&d, &event_seen, 2 * USEC_PER_SEC);
        cr_assert_eq(watcher_exits, 1);
        cr_assert_eq(target_exits, 0);
        cr_assert_geq(took, 200 * USEC_PER_MSEC, "told after %llu us, before it settled", (unsigned long long) took);
}

/* A watcher that dies takes its process along: that is the target's exit,
 * and nothing is said of the watcher's. */
Test(registry, watcher_and_target_dying_together_is_the_target_exit) {
        pid_t target = unit_daemon_child(&d);
        pid_t watcher = unit_daemon_adopt(&d, fake_watcher_fork(d.dir, target, FAKE_WATCHER_FROZEN));
        Entry *e = add(target);
        bool never = false;

        cr_assert_eq(entry_watch_watcher(e, watcher), 0);
        cr_assert_eq(kill(watcher, SIGKILL), 0);
        cr_assert_eq(kill(target, SIGKILL), 0);
        unit_daemon_run_until(&d, &never, 600 * USEC_PER_MSEC);
        cr_assert_eq(target_exits, 1);
        cr_assert_eq(watcher_exits, 0);
}

Test(registry, info_and_ended_records) {
        pid_t target = unit_daemon_child(&d);
        Entry *e = add(target);
        Message reply = { .type = MSG_REPLY };

        message_set_u32(&reply, TAG_RESULT, MEMCR_OK);
        message_set_u32(&reply, TAG_UID, 1234);
        (void) message_set_string(&reply, TAG_COMM, "sleeper");
        cr_assert_eq(entry_set_info(e, &reply), 0);
        message_done(&reply);
        cr_assert_str_eq(e->info.comm, "sleeper");

        registry_add_ended(&d.m.registry, e, "died (SIGSEGV)", "it crashed");
        const Ended *x = registry_find_ended(&d.m.registry, target);
        cr_assert_not_null(x);
        cr_assert_str_eq(x->state, "died (SIGSEGV)");
        cr_assert_str_eq(x->comm, "sleeper");
        cr_assert_eq(x->target_uid, 1234);
        cr_assert_eq(x->caller_uid, 1000);
        cr_assert_null(registry_find_ended(&d.m.registry, target + 1));
        cr_assert_str_eq(entry_state_to_string(e->state), "frozen");
}

/* An operation that is over lets go of the entry it was under way on, and
 * only of that one. */
Test(registry, an_operation_done_lets_go_of_its_entry) {
        pid_t target = unit_daemon_child(&d);
        Entry *e = add(target);
        int op, other;

        e->op = &op;
        e->rebuilding = true;
        registry_op_done(&d.m.registry, target, &other);
        cr_assert_eq(e->op, &op);
        cr_assert(e->rebuilding);
        registry_op_done(&d.m.registry, target + 1, &op);
        cr_assert_eq(e->op, &op);
        registry_op_done(&d.m.registry, target, &op);
        cr_assert_null(e->op);
        cr_assert_not(e->rebuilding);
}
