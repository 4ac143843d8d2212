/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * memcrd's operations against fake watchers: the answer a watcher gives,
 * or does not give, is what the requester is told, in time, and the event
 * loop goes on meanwhile.
 */

#include "daemon-unit.h"
#include "operation.h"

static UnitDaemon d;
static Message answer;
static bool answered;
static unsigned ticks;
static sd_event_source *ticker;

static void on_reply(Message *reply, void *userdata) {
        cr_assert(!answered, "answered twice");
        answered = true;
        answer.type = reply->type;
        cr_assert_eq(message_copy_fields(&answer, reply, ~UINT64_C(0)), 0);
}

static const OperationRequester who = {
        .on_reply = on_reply,
        .uid = 0,
        .pid = 1,
};

/* Something else that wants the event loop every 10 ms. */
static int on_tick(sd_event_source *s, uint64_t usec, void *userdata) {
        ticks++;
        (void) sd_event_source_set_time_relative(s, 10 * USEC_PER_MSEC);
        return sd_event_source_set_enabled(s, SD_EVENT_ON);
}

static void setup(void) {
        unit_daemon_setup(&d);
        answered = false;
        ticks = 0;
        answer = (Message) {};
        cr_assert_eq(sd_event_add_time_relative(d.m.event, &ticker, CLOCK_MONOTONIC, 10 * USEC_PER_MSEC, 0, on_tick,
                                                NULL),
                     0);
        cr_assert_eq(sd_event_source_set_enabled(ticker, SD_EVENT_ON), 0);
}

static void teardown(void) {
        while (d.m.operations)
                operation_free(d.m.operations);
        sd_event_source_disable_unref(ticker);
        message_done(&answer);
        unit_daemon_teardown(&d);
}

TestSuite(operation, .init = setup, .fini = teardown, .timeout = 30);

static pid_t frozen_target(void) {
        pid_t target = unit_daemon_child(&d);
        int pidfd = pidfd_open_pid(target);

        cr_assert_geq(pidfd, 0);
        cr_assert_eq(registry_add(&d.m.registry, target, pidfd, ENTRY_FROZEN, 0, NULL), 0);
        close(pidfd);
        return target;
}

static Operation *restore(pid_t target) {
        Operation *op = NULL;

        cr_assert_eq(operation_restore(&d.m, &who, target, &op), 0);
        return op;
}

Test(operation, restore_answered_by_the_watcher) {
        pid_t target = frozen_target();

        unit_daemon_adopt(&d, fake_watcher_fork(d.dir, target, FAKE_WATCHER_FROZEN));
        cr_assert_not_null(restore(target));
        cr_assert(!answered, "answered before the watcher did");
        cr_assert_eq(registry_find(&d.m.registry, target)->state, ENTRY_RESTORING);
        unit_daemon_run_until(&d, &answered, 2 * USEC_PER_SEC);
        cr_assert(answered);
        cr_assert_eq(answer.result, MEMCR_OK);
        cr_assert_null(registry_find(&d.m.registry, target), "still listed after its restore");
}

/* A watcher that takes the request and never answers: the restore ends
 * with a timeout when the time limit is over, the process is still held by
 * its watcher, and nothing else waited meanwhile. */
Test(operation, restore_a_silent_watcher_never_answers_ends_by_its_timer) {
        pid_t target = frozen_target();

        unit_daemon_adopt(&d, fake_watcher_fork(d.dir, target, FAKE_WATCHER_SILENT));
        cr_assert_not_null(restore(target));
        usec_t took = unit_daemon_run_until(&d, &answered, 3 * USEC_PER_SEC);
        cr_assert(answered);
        cr_assert_eq(answer.result, MEMCR_ERR_TIMEOUT, "result %s: %s", memcr_result_to_string(answer.result),
                     answer.message ?: "");
        cr_assert_not_null(strstr(answer.message, "did not answer within 0.3 s"), "%s", answer.message);
        cr_assert_geq(took, 280 * USEC_PER_MSEC);
        cr_assert_lt(took, 1500 * USEC_PER_MSEC);
        cr_assert_geq(ticks, 15, "the event loop ran %u times in %llu us", ticks, (unsigned long long) took);
        cr_assert_eq(registry_find(&d.m.registry, target)->state, ENTRY_FROZEN);
}

/* The watcher closes the connection without an answer while the process
 * lives on: the restore failed, the watcher is said to have died. */
Test(operation, restore_a_watcher_hanging_up_fails) {
        pid_t target = frozen_target();

        unit_daemon_adopt(&d, fake_watcher_fork(d.dir, target, FAKE_WATCHER_HANG_UP));
        cr_assert_not_null(restore(target));
        unit_daemon_run_until(&d, &answered, 3 * USEC_PER_SEC);
        cr_assert(answered);
        cr_assert_eq(answer.result, MEMCR_ERR_FAILED, "result %s", memcr_result_to_string(answer.result));
        cr_assert_not_null(strstr(answer.message, "died during the restore, without an answer"), "%s",
                           answer.message);
}

Test(operation, restore_without_a_watcher_is_answered_at_once) {
        pid_t target = frozen_target();

        cr_assert_null(restore(target));
        cr_assert(answered);
        cr_assert_eq(answer.result, MEMCR_ERR_NO_PROCESS, "result %s", memcr_result_to_string(answer.result));
        /* What becomes of it is for its exit (or its watcher's) to say. */
        cr_assert_eq(registry_find(&d.m.registry, target)->state, ENTRY_FROZEN);
}

Test(operation, restore_of_what_is_not_frozen) {
        cr_assert_null(restore(getpid()));
        cr_assert(answered);
        cr_assert_eq(answer.result, MEMCR_ERR_NOT_FROZEN);
}

/* A checkpoint: the watcher is started (a fake one, as memcr-watch would
 * be), says it is ready, takes the job and never answers. */
Test(operation, checkpoint_a_silent_watcher_ends_by_its_timer) {
        const char *fake = getenv("MEMCR_FAKE_WATCHER_BIN");
        pid_t target = unit_daemon_child(&d);
        Message req = { .type = MSG_CHECKPOINT };
        Operation *op = NULL;
        int pidfd = pidfd_open_pid(target);

        cr_assert_not_null(fake, "MEMCR_FAKE_WATCHER_BIN is not set");
        cr_assert_geq(pidfd, 0);
        setenv("MEMCR_FAKE_WATCHER", "silent", 1);
        d.m.watcher.binary = fake;
        message_set_u32(&req, TAG_PID, (uint32_t) target);
        cr_assert_eq(operation_checkpoint(&d.m, &who, target, pidfd, &req, NULL, &op), 0);
        message_done(&req);
        close(pidfd);
        cr_assert_not_null(op);
        cr_assert_eq(registry_find(&d.m.registry, target)->state, ENTRY_CHECKPOINTING);
        unit_daemon_run_until(&d, &answered, 5 * USEC_PER_SEC);
        cr_assert(answered);
        cr_assert_eq(answer.result, MEMCR_ERR_TIMEOUT, "result %s: %s", memcr_result_to_string(answer.result),
                     answer.message ?: "");
        cr_assert_not_null(strstr(answer.message, "checkpoint of"), "%s", answer.message);
        cr_assert_null(registry_find(&d.m.registry, target));
}

/* A checkpoint whose watcher does not start: said in words. */
Test(operation, checkpoint_without_a_watcher_program) {
        pid_t target = unit_daemon_child(&d);
        Message req = { .type = MSG_CHECKPOINT };
        Operation *op = NULL;
        int pidfd = pidfd_open_pid(target);

        d.m.watcher.binary = "/nonexistent/memcr-watch";
        message_set_u32(&req, TAG_PID, (uint32_t) target);
        cr_assert_eq(operation_checkpoint(&d.m, &who, target, pidfd, &req, NULL, &op), 0);
        message_done(&req);
        close(pidfd);
        unit_daemon_run_until(&d, &answered, 5 * USEC_PER_SEC);
        cr_assert(answered);
        cr_assert_eq(answer.result, MEMCR_ERR_FAILED, "result %s", memcr_result_to_string(answer.result));
        cr_assert_not_null(strstr(answer.message, "could not start a watcher"), "%s", answer.message);
        cr_assert_null(registry_find(&d.m.registry, target));
}

static Message restored;
static bool restore_answered;

static void on_restore_reply(Message *reply, void *userdata) {
        restore_answered = true;
        restored.type = reply->type;
        cr_assert_eq(message_copy_fields(&restored, reply, ~UINT64_C(0)), 0);
}

/* A restore that comes while the checkpoint is under way waits for it, and
 * then gets an operation of its own: the requester's handle follows. */
Test(operation, restore_during_a_checkpoint_waits_for_it) {
        const char *fake = getenv("MEMCR_FAKE_WATCHER_BIN");
        pid_t target = unit_daemon_child(&d);
        Message req = { .type = MSG_CHECKPOINT };
        Operation *checkpoint = NULL, *handle = NULL;
        OperationRequester restorer = { .on_reply = on_restore_reply, .userdata = &restored, .handle = &handle };
        int pidfd = pidfd_open_pid(target);

        cr_assert_not_null(fake, "MEMCR_FAKE_WATCHER_BIN is not set");
        setenv("MEMCR_FAKE_WATCHER", "frozen", 1);
        d.m.watcher.binary = fake;
        d.m.watcher_timeout = 5 * USEC_PER_SEC;
        message_set_u32(&req, TAG_PID, (uint32_t) target);
        cr_assert_eq(operation_checkpoint(&d.m, &who, target, pidfd, &req, NULL, &checkpoint), 0);
        message_done(&req);
        close(pidfd);
        cr_assert_not_null(checkpoint);

        Operation *ret = NULL;
        cr_assert_eq(operation_restore(&d.m, &restorer, target, &ret), 0);
        cr_assert_eq(ret, checkpoint);
        cr_assert_eq(handle, checkpoint, "the restore waits for the checkpoint");

        unit_daemon_run_until(&d, &answered, 5 * USEC_PER_SEC);
        cr_assert(answered);
        cr_assert_eq(answer.result, MEMCR_OK, "checkpoint: %s", memcr_result_to_string(answer.result));
        cr_assert_neq(handle, checkpoint, "the restore's handle still names the checkpoint");
        unit_daemon_run_until(&d, &restore_answered, 5 * USEC_PER_SEC);
        cr_assert(restore_answered);
        cr_assert_eq(restored.result, MEMCR_OK, "restore: %s", memcr_result_to_string(restored.result));
        cr_assert_null(handle);
        cr_assert_null(registry_find(&d.m.registry, target));
        message_done(&restored);
}
