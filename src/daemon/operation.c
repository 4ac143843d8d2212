/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "list.h"
#include "log.h"
#include "macro.h"
#include "memcr-ids.h"
#include "operation.h"
#include "pidfd-util.h"
#include "watcher-exchange.h"
#include "watcher-socket.h"

typedef enum OpType {
        OP_CHECKPOINT,
        OP_RESTORE,
} OpType;

struct Operation {
        Manager *manager;
        OpType type;
        OperationRequester who;  /* who.on_reply NULL: nobody waits for the answer */
        pid_t pid;
        int pidfd;
        uid_t caller_uid;
        pid_t caller_pid;
        Message request;
        WatcherLaunch *launch;
        WatcherExchange *exchange;
        bool replied;            /* the requester has its answer */
        bool finished;           /* outcome handled, free pending */
        bool outcome_logged;     /* as the event that decided it (the watcher was lost) */
        sd_event_source *free_source;
        sd_event_source *lost_timer; /* the watcher is gone: waiting to see its process's fate */
        usec_t lost_at;
        usec_t started;
        OperationRequester *waiters; /* restore requests waiting for this checkpoint */
        size_t n_waiters;
        Operation *next;
};

static const char *op_name(const Operation *op) {
        return op->type == OP_CHECKPOINT ? "checkpoint" : "restore";
}

static void answer(const OperationRequester *who, MemcrResult result, int error, const char *text) {
        Message m = { .type = MSG_REPLY };

        message_set_result(&m, result, error, text);
        who->on_reply(&m, who->userdata);
        message_done(&m);
}

static Operation *operation_new(Manager *m, OpType type, const OperationRequester *who, pid_t pid, int pidfd) {
        Operation *op = calloc(1, sizeof(Operation));

        if (!op)
                return NULL;
        op->manager = m;
        op->type = type;
        op->who = *who;
        op->pid = pid;
        op->pidfd = pidfd >= 0 ? fcntl(pidfd, F_DUPFD_CLOEXEC, 3) : -EBADF;
        op->caller_uid = who->uid;
        op->caller_pid = who->pid;
        op->started = now_usec(CLOCK_MONOTONIC);
        LIST_PREPEND(next, m->operations, op);
        m->n_operations++;
        if (who->handle)
                *who->handle = op;
        return op;
}

/* The requester no longer waits for op (answered, or handed on). */
static void release_handle(const OperationRequester *who, Operation *op) {
        if (who->handle && *who->handle == op)
                *who->handle = NULL;
}

static int on_free_op(sd_event_source *s, void *userdata) {
        operation_free(userdata);
        return 0;
}

Operation *operation_free(Operation *op) {
        Manager *m;

        if (!op)
                return NULL;
        m = op->manager;
        LIST_REMOVE_COUNTED(next, m->operations, m->n_operations, op);
        registry_op_done(&m->registry, op->pid, op);
        release_handle(&op->who, op);
        for (size_t i = 0; i < op->n_waiters; i++)
                release_handle(&op->waiters[i], op);
        free(op->waiters);
        sd_event_source_disable_unref(op->free_source);
        sd_event_source_disable_unref(op->lost_timer);
        watcher_launch_free(op->launch);
        watcher_exchange_free(op->exchange);
        safe_close(op->pidfd);
        message_done(&op->request);
        return mfree(op);
}

/* Freed on the next loop iteration: callers up the stack may still use it. */
static void operation_schedule_free(Operation *op) {
        op->finished = true;
        if (!op->free_source && sd_event_add_defer(op->manager->event, &op->free_source, on_free_op, op) < 0)
                operation_free(op);
}

static void send_abort(Operation *op) {
        Message a = { .type = MSG_ABORT };

        message_set_u32(&a, TAG_PID, (uint32_t) op->pid);
        (void) watcher_exchange_send(op->exchange, &a);
        message_done(&a);
}

void operation_forget_requester(Operation *op, void *userdata) {
        for (size_t i = 0; i < op->n_waiters; i++)
                if (op->waiters[i].userdata == userdata) {
                        op->waiters[i].on_reply = NULL;
                        op->waiters[i].handle = NULL;
                }
        if (!op->who.on_reply || op->who.userdata != userdata)
                return;
        op->who.on_reply = NULL;
        op->who.handle = NULL;
        /* Nobody is waiting for this checkpoint any more: do not freeze a
         * process behind its requester's back. */
        if (op->type == OP_CHECKPOINT && op->exchange && !op->replied) {
                send_abort(op);
                log_info("requester of the checkpoint of %i went away, abandoning it", op->pid);
        }
}

static void log_outcome(Operation *op, const char *id, int level, int error, const Message *reply,
                        const char *text) {
        char rss_before[32] = "", rss_after[32] = "", dump[32] = "", dur[32];

        if (op->outcome_logged)
                return;

        if (reply && MESSAGE_HAS(reply, TAG_RSS_BEFORE))
                snprintf(rss_before, sizeof(rss_before), "%" PRIu64, reply->rss_before);
        if (reply && MESSAGE_HAS(reply, TAG_RSS_AFTER))
                snprintf(rss_after, sizeof(rss_after), "%" PRIu64, reply->rss_after);
        if (reply && MESSAGE_HAS(reply, TAG_DUMP_BYTES))
                snprintf(dump, sizeof(dump), "%" PRIu64, reply->dump_bytes);
        snprintf(dur, sizeof(dur), "%" PRIu64, now_usec(CLOCK_MONOTONIC) - op->started);

        log_struct_errno(level, error, text, MESSAGE_ID(id), LOG_FIELD("MEMCR_OP", "%s", op_name(op)),
                         LOG_FIELD("MEMCR_PID", "%i", (int) op->pid),
                         LOG_FIELD("MEMCR_RESULT", "%s",
                                   memcr_result_to_string(reply && MESSAGE_HAS(reply, TAG_RESULT)
                                                                  ? (MemcrResult) reply->result
                                                                  : memcr_result_from_errno(error))),
                         LOG_FIELD("MEMCR_CALLER_UID", "%u", op->caller_uid),
                         LOG_FIELD("MEMCR_CALLER_PID", "%i", (int) op->caller_pid),
                         LOG_FIELD("MEMCR_RSS_BEFORE", "%s", rss_before), LOG_FIELD("MEMCR_RSS_AFTER", "%s", rss_after),
                         LOG_FIELD("MEMCR_DUMP_BYTES", "%s", dump), LOG_FIELD("MEMCR_DURATION_USEC", "%s", dur),
                         NULL);
}

static void reply_to_requester(Operation *op, Message *reply) {
        OperationRequester who = op->who;

        op->replied = true;
        op->who.on_reply = NULL;
        release_handle(&who, op);
        if (who.on_reply)
                who.on_reply(reply, who.userdata);
}

/* A failure without an answer from the watcher: what went wrong, in words. */
static void fail(Operation *op, int error, const char *text) {
        Message m = { .type = MSG_REPLY };

        message_set_result(&m, memcr_result_from_errno(error), error, text);
        reply_to_requester(op, &m);
        message_done(&m);
}

/* The failure as logged and answered: the watcher's words, else ours. */
static void failure_text(const Operation *op, const Message *reply, int error, char *buf, size_t size) {
        if (reply && MESSAGE_HAS(reply, TAG_MESSAGE))
                snprintf(buf, size, "%s", reply->message);
        else
                snprintf(buf, size, "%s of %i failed: %s", op_name(op), op->pid, strerror(abs(error)));
}

static int reply_error(const Message *reply, int error) {
        return reply && MESSAGE_HAS(reply, TAG_ERRNO) ? -(int) reply->error : error;
}

static void start_waiting_restores(Operation *op, bool frozen);

/* The checkpoint is over, one way or the other. */
static void checkpoint_done(Operation *op, Message *reply, int error) {
        Manager *m = op->manager;
        Entry *e = registry_find(&m->registry, op->pid);
        bool ok = reply && reply->result == MEMCR_OK;
        char text[512];

        if (op->finished)
                return;

        if (ok) {
                if (e) {
                        e->state = ENTRY_FROZEN;
                        (void) entry_set_info(e, reply);
                        if (MESSAGE_HAS(reply, TAG_WATCHER_PID))
                                (void) entry_watch_watcher(e, (pid_t) reply->watcher_pid);
                }
                snprintf(text, sizeof(text), "checkpointed %i: RSS %" PRIu64 " -> %" PRIu64 " bytes, %" PRIu64
                         " bytes dumped", op->pid, reply->rss_before, reply->rss_after, reply->dump_bytes);
                log_outcome(op, MEMCR_MESSAGE_CHECKPOINT_DONE, LOG_INFO, 0, reply, text);
                reply_to_requester(op, reply);
        } else {
                if (e)
                        registry_remove(&m->registry, e);
                failure_text(op, reply, error, text, sizeof(text));
                log_outcome(op, MEMCR_MESSAGE_CHECKPOINT_FAILED, LOG_ERR, reply_error(reply, error), reply, text);
                if (reply)
                        reply_to_requester(op, reply);
                else
                        fail(op, error, text);
        }
        start_waiting_restores(op, ok);
        operation_schedule_free(op);
}

static void restore_done(Operation *op, Message *reply, int error) {
        Manager *m = op->manager;
        Entry *e = registry_find(&m->registry, op->pid);
        bool ok = reply && reply->result == MEMCR_OK;
        bool killed = reply && reply->result == MEMCR_ERR_KILLED;
        char text[512];

        if (op->finished)
                return;

        if (ok && e && reply->state && streq(reply->state, "streaming")) {
                /* Running again, its watcher still streaming its memory back:
                 * listed until the watcher is done. */
                e->state = ENTRY_STREAMING;
                (void) entry_set_info(e, reply);
                (void) entry_watch_watcher(e, (pid_t) reply->watcher_pid);
        } else if (ok || killed || (reply && reply->result == MEMCR_ERR_NO_PROCESS)) {
                if (e)
                        registry_remove(&m->registry, e);
                e = NULL;
        } else if (e)
                e->state = ENTRY_FROZEN; /* still held by its watcher */

        if (ok && e && e->state == ENTRY_STREAMING)
                /* The watcher logs it, with how long the process took to run. */
                log_debug("restored %i lazily: running, memory streaming back", op->pid);
        else if (ok) {
                snprintf(text, sizeof(text), "restored %i", op->pid);
                log_outcome(op, MEMCR_MESSAGE_RESTORE_DONE, LOG_INFO, 0, reply, text);
        } else if (killed)
                /* The watcher that killed it logs why. */
                log_debug("restore of %i ended with the process killed by its watcher", op->pid);
        else {
                failure_text(op, reply, error, text, sizeof(text));
                log_outcome(op, MEMCR_MESSAGE_RESTORE_FAILED, LOG_ERR, reply_error(reply, error), reply, text);
        }
        if (reply)
                reply_to_requester(op, reply);
        else {
                failure_text(op, reply, error, text, sizeof(text));
                fail(op, error, text);
        }
        operation_schedule_free(op);
}

static void op_done(Operation *op, Message *reply, int error) {
        if (op->type == OP_CHECKPOINT)
                checkpoint_done(op, reply, error);
        else
                restore_done(op, reply, error);
}

/* The watcher went away without an answer: it died (or was killed). Once it
 * held the process, the kernel kills the process with it (PTRACE_O_EXITKILL),
 * a moment after the watcher's connection closes; say which happened. */
static void watcher_lost(Operation *op) {
        bool target_dead = op->pidfd < 0 || pidfd_is_alive(op->pidfd) == 0;
        Message m = { .type = MSG_REPLY };
        char text[256];

        (void) watcher_socket_remove_stale(op->manager->watch_dir, op->pid);
        if (target_dead)
                snprintf(text, sizeof(text),
                         "the watcher of %i died during the %s; the kernel killed %i with it (fail-safe: it was "
                         "seized)",
                         op->pid, op_name(op), op->pid);
        else
                snprintf(text, sizeof(text), "the watcher of %i died during the %s, without an answer", op->pid,
                         op_name(op));
        log_struct(LOG_ERR, text, MESSAGE_ID(MEMCR_MESSAGE_WATCHER_LOST), LOG_FIELD("MEMCR_PID", "%i", (int) op->pid),
                   LOG_FIELD("MEMCR_OP", "%s", op_name(op)),
                   LOG_FIELD("MEMCR_RESULT", "%s", target_dead ? "killed" : "failed"),
                   LOG_FIELD("MEMCR_CALLER_UID", "%u", op->caller_uid),
                   LOG_FIELD("MEMCR_CALLER_PID", "%i", (int) op->caller_pid), NULL);
        op->outcome_logged = true; /* that is the outcome of the request */

        message_set_result(&m, target_dead ? MEMCR_ERR_KILLED : MEMCR_ERR_FAILED, target_dead ? ESRCH : ECONNRESET,
                           text);
        op_done(op, &m, 0);
        message_done(&m);
}

#define WATCHER_LOST_GRACE (500 * USEC_PER_MSEC)
#define WATCHER_LOST_POLL (20 * USEC_PER_MSEC)

/* A watcher dies in steps: its descriptors close (we see its connection
 * end, and its socket stop being served) and its process is killed with it
 * (when it held it); with several threads, in either order. Wait for both. */
static bool watcher_gone(Operation *op) {
        bool settled = op->pidfd < 0 || pidfd_is_alive(op->pidfd) == 0;
        return settled && !watcher_socket_served(op->manager->watch_dir, op->pid);
}

static int on_lost_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Operation *op = userdata;

        if (op->finished)
                return 0;
        if (!watcher_gone(op) && now_usec(CLOCK_MONOTONIC) < op->lost_at + WATCHER_LOST_GRACE) {
                (void) sd_event_source_set_time_relative(s, WATCHER_LOST_POLL);
                (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
                return 0;
        }
        watcher_lost(op);
        return 0;
}

static void on_connection_lost(Operation *op) {
        if (op->finished || op->lost_timer)
                return;
        if (watcher_gone(op)) {
                watcher_lost(op);
                return;
        }
        op->lost_at = now_usec(CLOCK_MONOTONIC);
        if (sd_event_add_time_relative(op->manager->event, &op->lost_timer, CLOCK_MONOTONIC, WATCHER_LOST_POLL, 0,
                                       on_lost_timer, op) < 0)
                watcher_lost(op);
}

/* No answer within the time limit: the watcher is alive (its connection is
 * open) but stuck, or slower than anything memcrd waits for. */
static void watcher_timed_out(Operation *op) {
        Message m = { .type = MSG_REPLY };
        char text[256];

        /* A checkpoint it may still be doing is abandoned. */
        if (op->type == OP_CHECKPOINT)
                send_abort(op);
        snprintf(text, sizeof(text), "%s of %i failed: its watcher did not answer within %g s", op_name(op),
                 op->pid, (double) op->manager->watcher_timeout / USEC_PER_SEC);
        message_set_result(&m, MEMCR_ERR_TIMEOUT, ETIMEDOUT, text);
        op_done(op, &m, 0);
        message_done(&m);
}

static void on_exchange_progress(WatcherExchange *x, Message *progress, void *userdata) {
        Operation *op = userdata;

        if (op->who.on_reply && op->who.on_progress)
                op->who.on_progress(progress, op->who.userdata);
}

static void on_exchange_done(WatcherExchange *x, Message *reply, int error, void *userdata) {
        Operation *op = userdata;

        if (reply)
                op_done(op, reply, 0);
        else if (error == -ECONNRESET)
                on_connection_lost(op);
        else if (error == -ETIMEDOUT)
                watcher_timed_out(op);
        else if (op->type == OP_RESTORE && (error == -ECONNREFUSED || error == -ENOENT))
                op_done(op, NULL, -ESRCH); /* nobody holds it any more */
        else
                op_done(op, NULL, error);
}

static const WatcherExchangeCallbacks exchange_callbacks = {
        .on_progress = on_exchange_progress,
        .on_done = on_exchange_done,
};

static void on_watcher_ready(int error, const char *why, void *userdata) {
        Operation *op = userdata;
        Manager *m = op->manager;
        Message job = { .type = MSG_CHECKPOINT };
        int r;

        op->launch = watcher_launch_free(op->launch);
        if (error < 0) {
                /* memcrd's failure, not a verdict on the caller: "failed"
                 * (or "timeout"), with what went wrong in words. */
                Message reply = { .type = MSG_REPLY };
                char text[1024];

                snprintf(text, sizeof(text), "checkpoint of %i failed: could not start a watcher: %s", op->pid,
                         why ?: strerror(-error));
                message_set_result(&reply, error == -ETIMEDOUT ? MEMCR_ERR_TIMEOUT : MEMCR_ERR_FAILED, error, text);
                checkpoint_done(op, &reply, 0);
                message_done(&reply);
                return;
        }

        r = message_copy_fields(&job, &op->request, ~UINT64_C(0));
        if (r >= 0) {
                message_set_u32(&job, TAG_CALLER_UID, op->caller_uid);
                if (!MESSAGE_HAS(&job, TAG_DUMP_DIR))
                        r = message_set_string(&job, TAG_DUMP_DIR, m->state_dir);
                if (r >= 0 && !MESSAGE_HAS(&job, TAG_CODEC) && m->default_codec)
                        r = message_set_string(&job, TAG_CODEC, m->default_codec);
        }
        if (r >= 0)
                r = watcher_exchange_start(m->event, m->watch_dir, op->pid, &job, op->pidfd, m->watcher_timeout,
                                           &exchange_callbacks, op, &op->exchange);
        message_done(&job);
        if (r < 0) {
                checkpoint_done(op, NULL, r);
                return;
        }
        if (op->n_waiters > 0 || !op->who.on_reply) {
                /* A restore came (or the requester left) while the watcher
                 * started: the checkpoint is abandoned before it begins. */
                send_abort(op);
                log_info("%s while the watcher of %i started, abandoning the checkpoint",
                         op->who.on_reply ? "a restore came" : "the requester went away", op->pid);
        }
}

int operation_checkpoint(Manager *m, const OperationRequester *who, pid_t pid, int pidfd, const Message *req,
                         const char *auth_identity, Operation **ret) {
        Operation *op;
        char text[512];
        Entry *e;
        int r;

        *ret = NULL;
        e = registry_find(&m->registry, pid);
        if (e && (e->state == ENTRY_STREAMING || e->state == ENTRY_RESTORING)) {
                /* Running again (or about to), but its watcher still holds
                 * what it needs to finish: checkpointed again after that. */
                snprintf(text, sizeof(text),
                         e->state == ENTRY_STREAMING
                                 ? "%i runs again, but its memory is still streaming back from its lazy restore; "
                                   "try again once it is all back"
                                 : "%i is being restored; try again once it runs",
                         pid);
                answer(who, MEMCR_ERR_BUSY, EBUSY, text);
                return 0;
        }
        if (e) {
                /* Another request got here first (while this one was being
                 * authorized, which may take a while with polkit). */
                snprintf(text, sizeof(text), "%i is already being checkpointed or frozen", pid);
                answer(who, MEMCR_ERR_ALREADY_FROZEN, EALREADY, text);
                return 0;
        }
        /* Checked when the request came; others may have been frozen for
         * this user since (while polkit was asked). */
        r = limits_check_frozen(m, who->uid, text, sizeof(text));
        if (r < 0) {
                limits_log(who->uid, who->pid, pid, "frozen", text);
                answer(who, memcr_result_from_errno(r), r, text);
                return 0;
        }
        op = operation_new(m, OP_CHECKPOINT, who, pid, pidfd);
        if (!op)
                return -ENOMEM;
        op->request.type = MSG_CHECKPOINT;
        r = message_copy_fields(&op->request, req, ~UINT64_C(0));
        if (r >= 0 && auth_identity)
                r = message_set_string(&op->request, TAG_AUTH_IDENTITY, auth_identity);
        if (r >= 0)
                r = registry_add(&m->registry, pid, pidfd, ENTRY_CHECKPOINTING, op->caller_uid, &e);
        if (r < 0) {
                operation_free(op);
                return r;
        }
        e->op = op;

        (void) watcher_socket_remove_stale(m->watch_dir, pid);
        r = watcher_launch(m->event, &m->watcher, pid, on_watcher_ready, op, &op->launch);
        if (r < 0) {
                registry_remove(&m->registry, e);
                operation_free(op);
                snprintf(text, sizeof(text), "checkpoint of %i failed: could not start a watcher: %s", pid,
                         strerror(-r));
                log_error("%s", text);
                answer(who, r == -ETIMEDOUT ? MEMCR_ERR_TIMEOUT : MEMCR_ERR_FAILED, r, text);
                return 0;
        }
        (void) sd_notifyf(false, "STATUS=Checkpointing %i", pid);
        *ret = op;
        return 0;
}

static Operation *restore_now(Manager *m, const OperationRequester *who, pid_t pid, Entry *e) {
        Message req = { .type = MSG_RESTORE };
        Operation *op;
        int r;

        op = operation_new(m, OP_RESTORE, who, pid, e->pidfd);
        if (!op) {
                answer(who, MEMCR_ERR_FAILED, ENOMEM, "out of memory");
                return NULL;
        }
        e->state = ENTRY_RESTORING;
        e->op = op;

        message_set_u32(&req, TAG_PID, (uint32_t) pid);
        /* How: as the request says, else memcrd's default (the watcher adds
         * the process's own default from its checkpoint). */
        uint32_t flags = who->flags & (REQUEST_FLAG_LAZY | REQUEST_FLAG_EAGER);
        if (flags == 0 && m->lazy_restore)
                flags = REQUEST_FLAG_LAZY;
        if (flags != 0)
                message_set_u32(&req, TAG_FLAGS, flags);
        r = watcher_exchange_start(m->event, m->watch_dir, pid, &req, -EBADF, m->watcher_timeout,
                                   &exchange_callbacks, op, &op->exchange);
        message_done(&req);
        if (r < 0) {
                restore_done(op, NULL, r == -ECONNREFUSED || r == -ENOENT ? -ESRCH : r);
                return NULL;
        }
        return op;
}

static void start_waiting_restores(Operation *op, bool frozen) {
        Manager *m = op->manager;

        for (size_t i = 0; i < op->n_waiters; i++) {
                OperationRequester *w = &op->waiters[i];
                Entry *e = registry_find(&m->registry, op->pid);
                char text[128];

                release_handle(w, op);
                if (!w->on_reply)
                        continue;
                if (frozen && e)
                        (void) restore_now(m, w, op->pid, e);
                else {
                        /* The checkpoint was abandoned: the process runs. */
                        snprintf(text, sizeof(text), "checkpoint of %i abandoned; it is running", op->pid);
                        answer(w, MEMCR_OK, 0, text);
                }
        }
        op->n_waiters = 0;
}

/* A restore aborts a checkpoint in progress (as memcr does) and is answered
 * once the watcher has let go or finished. */
static int wait_for_checkpoint(Operation *op, const OperationRequester *who) {
        OperationRequester *w;

        w = realloc(op->waiters, (op->n_waiters + 1) * sizeof(OperationRequester));
        if (!w)
                return -ENOMEM;
        op->waiters = w;
        op->waiters[op->n_waiters++] = *who;
        if (who->handle)
                *who->handle = op;
        if (op->exchange && op->n_waiters == 1)
                send_abort(op);
        return 0;
}

int operation_restore(Manager *m, const OperationRequester *who, pid_t pid, Operation **ret) {
        Entry *e = registry_find(&m->registry, pid);
        char text[128];
        int r;

        *ret = NULL;
        if (!e) {
                snprintf(text, sizeof(text), "%i is not frozen", pid);
                answer(who, MEMCR_ERR_NOT_FROZEN, ENOENT, text);
                return 0;
        }
        switch (e->state) {
        case ENTRY_STREAMING:
                snprintf(text, sizeof(text), "%i runs already; its memory is still streaming back", pid);
                answer(who, MEMCR_ERR_BUSY, EBUSY, text);
                return 0;
        case ENTRY_RESTORING:
                snprintf(text, sizeof(text), "%i is already being restored", pid);
                answer(who, MEMCR_ERR_BUSY, EBUSY, text);
                return 0;
        case ENTRY_CHECKPOINTING:
                if (!e->op || e->rebuilding) {
                        snprintf(text, sizeof(text), "%i is busy, try again", pid);
                        answer(who, MEMCR_ERR_BUSY, EBUSY, text);
                        return 0;
                }
                r = wait_for_checkpoint(e->op, who);
                if (r < 0)
                        return r;
                *ret = e->op;
                return 0;
        case ENTRY_FROZEN:
        default:
                *ret = restore_now(m, who, pid, e);
                return 0;
        }
}
