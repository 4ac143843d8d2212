/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * Operations that need a watcher: checkpoint (start a watcher, hand it the
 * job and the target's pidfd, wait for its answer) and restore (ask the
 * watcher that holds the target). memcrd never touches a target itself.
 */

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "client.h"
#include "fileio.h"
#include "log.h"
#include "macro.h"
#include "memcr-ids.h"
#include "pidfd-util.h"
#include "proc-creds.h"
#include "socket-util.h"

typedef enum OpType {
        OP_CHECKPOINT,
        OP_RESTORE,
        OP_REBUILD, /* asking a watcher found at start-up what it holds */
} OpType;

struct Operation {
        Manager *manager;
        OpType type;
        Client *client;          /* NULL once the client left */
        pid_t pid;
        int pidfd;
        uid_t caller_uid;
        pid_t caller_pid;
        Message request;
        bool compat;
        WatcherLaunch *launch;
        Conn *watcher;
        bool replied;            /* the client has its answer */
        bool finished;           /* outcome handled, free pending */
        sd_event_source *free_source;
        sd_event_source *lost_timer; /* the watcher is gone: waiting to see its process's fate */
        usec_t lost_at;
        usec_t started;
        Client **waiters;        /* restore requests waiting for this checkpoint */
        size_t n_waiters;
        Operation *next;
};

static const ConnCallbacks watcher_callbacks;

static const char *op_name(const Operation *op) {
        return op->type == OP_CHECKPOINT ? "checkpoint" : op->type == OP_RESTORE ? "restore" : "rebuild";
}

static Operation *operation_new(Manager *m, OpType type, Client *c, pid_t pid, int pidfd) {
        Operation *op = calloc(1, sizeof(Operation));

        if (!op)
                return NULL;
        op->manager = m;
        op->type = type;
        op->client = c;
        op->pid = pid;
        op->pidfd = pidfd >= 0 ? fcntl(pidfd, F_DUPFD_CLOEXEC, 3) : -EBADF;
        op->caller_uid = c ? client_uid(c) : (uid_t) -1;
        op->caller_pid = c ? client_pid(c) : 0;
        op->started = now_usec(CLOCK_MONOTONIC);
        op->next = m->operations;
        m->operations = op;
        m->n_operations++;
        if (c)
                c->op = op;
        return op;
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
        for (Operation **p = &m->operations; *p; p = &(*p)->next)
                if (*p == op) {
                        *p = op->next;
                        m->n_operations--;
                        break;
                }
        if (op->client && op->client->op == op)
                op->client->op = NULL;
        for (size_t i = 0; i < op->n_waiters; i++)
                if (op->waiters[i] && op->waiters[i]->op == op)
                        op->waiters[i]->op = NULL;
        Entry *e = registry_find(&m->registry, op->pid);
        if (e && e->op == op)
                e->op = NULL;
        free(op->waiters);
        sd_event_source_disable_unref(op->free_source);
        sd_event_source_disable_unref(op->lost_timer);
        watcher_launch_free(op->launch);
        conn_free(op->watcher);
        safe_close(op->pidfd);
        message_done(&op->request);
        free(op);
        manager_check_idle(m);
        return NULL;
}

/* Free on the next loop iteration: we may be inside the watcher
 * connection's callback. */
static void operation_schedule_free(Operation *op) {
        op->finished = true;
        if (op->watcher)
                (void) sd_event_source_set_enabled(op->watcher->io, SD_EVENT_OFF);
        if (!op->free_source && sd_event_add_defer(op->manager->event, &op->free_source, on_free_op, op) < 0)
                operation_free(op);
}

void operation_client_gone(Operation *op) {
        for (size_t i = 0; i < op->n_waiters; i++)
                if (op->waiters[i] && op->waiters[i]->op == op)
                        op->waiters[i] = NULL;
        if (!op->client)
                return;
        op->client = NULL;
        /* Nobody is waiting for this checkpoint any more: do not freeze a
         * process behind its requester's back. */
        if (op->type == OP_CHECKPOINT && op->watcher && !op->replied) {
                Message m = { .type = MSG_ABORT };
                message_set_u32(&m, TAG_PID, (uint32_t) op->pid);
                (void) conn_send(op->watcher, &m);
                message_done(&m);
                log_info("requester of the checkpoint of %i went away, abandoning it", op->pid);
        }
}

static void log_outcome(Operation *op, const char *id, int level, int error, const Message *reply,
                        const char *text) {
        char rss_before[32] = "", rss_after[32] = "", dump[32] = "", dur[32];

        if (reply && MESSAGE_HAS(reply, TAG_RSS_BEFORE))
                snprintf(rss_before, sizeof(rss_before), "%" PRIu64, reply->rss_before);
        if (reply && MESSAGE_HAS(reply, TAG_RSS_AFTER))
                snprintf(rss_after, sizeof(rss_after), "%" PRIu64, reply->rss_after);
        if (reply && MESSAGE_HAS(reply, TAG_DUMP_BYTES))
                snprintf(dump, sizeof(dump), "%" PRIu64, reply->dump_bytes);
        snprintf(dur, sizeof(dur), "%" PRIu64, now_usec(CLOCK_MONOTONIC) - op->started);
        bool lazy = reply && reply->state && streq(reply->state, "streaming");
        char running[32] = "";
        if (lazy && MESSAGE_HAS(reply, TAG_DURATION_USEC))
                snprintf(running, sizeof(running), "%" PRIu64, reply->duration_usec);

        log_struct_errno(level, error, text, MESSAGE_ID(id), LOG_FIELD("MEMCR_OP", "%s", op_name(op)),
                         LOG_FIELD("MEMCR_RESTORE", "%s", lazy ? "lazy" : ""),
                         LOG_FIELD("MEMCR_RUNNING_USEC", "%s", running),
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

static void reply_to_client(Operation *op, Message *reply) {
        Client *c = op->client;

        op->replied = true;
        if (!c)
                return;
        client_reply_message(c, reply);
        client_request_done(c);
        op->client = NULL;
}

static void fail(Operation *op, int error, const char *text) {
        Message m = { .type = MSG_REPLY };

        message_set_u32(&m, TAG_RESULT, memcr_result_from_errno(error));
        message_set_u32(&m, TAG_ERRNO, (uint32_t) abs(error));
        (void) message_set_string(&m, TAG_MESSAGE, text);
        reply_to_client(op, &m);
        message_done(&m);
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
                reply_to_client(op, reply);
        } else {
                if (e)
                        registry_remove(&m->registry, e);
                if (reply && MESSAGE_HAS(reply, TAG_MESSAGE))
                        snprintf(text, sizeof(text), "%s", reply->message);
                else
                        snprintf(text, sizeof(text), "checkpoint of %i failed: %s", op->pid, strerror(abs(error)));
                log_outcome(op, MEMCR_MESSAGE_CHECKPOINT_FAILED, LOG_ERR,
                            reply && MESSAGE_HAS(reply, TAG_ERRNO) ? -(int) reply->error : error, reply, text);
                if (reply)
                        reply_to_client(op, reply);
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
        char text[512];

        if (op->finished)
                return;

        if (ok && e && reply->state && streq(reply->state, "streaming")) {
                /* Running again, its watcher still streaming its memory back:
                 * listed until the watcher is done. */
                e->state = ENTRY_STREAMING;
                (void) entry_set_info(e, reply);
                (void) entry_watch_watcher(e, (pid_t) reply->watcher_pid);
        } else if (ok || (reply && (reply->result == MEMCR_ERR_KILLED || reply->result == MEMCR_ERR_NO_PROCESS))) {
                if (e)
                        registry_remove(&m->registry, e);
                e = NULL;
        } else if (e)
                e->state = ENTRY_FROZEN; /* still held by its watcher */

        if (ok) {
                if (e && e->state == ENTRY_STREAMING)
                        snprintf(text, sizeof(text), "restored %i lazily: running, memory streaming back", op->pid);
                else
                        snprintf(text, sizeof(text), "restored %i", op->pid);
                log_outcome(op, MEMCR_MESSAGE_RESTORE_DONE, LOG_INFO, 0, reply, text);
                reply_to_client(op, reply);
        } else {
                if (reply && MESSAGE_HAS(reply, TAG_MESSAGE))
                        snprintf(text, sizeof(text), "%s", reply->message);
                else
                        snprintf(text, sizeof(text), "restore of %i failed: %s", op->pid, strerror(abs(error)));
                log_outcome(op,
                            reply && reply->result == MEMCR_ERR_KILLED ? MEMCR_MESSAGE_TARGET_KILLED
                                                                       : MEMCR_MESSAGE_RESTORE_FAILED,
                            LOG_ERR, reply && MESSAGE_HAS(reply, TAG_ERRNO) ? -(int) reply->error : error, reply,
                            text);
                if (reply)
                        reply_to_client(op, reply);
                else
                        fail(op, error, text);
        }
        operation_schedule_free(op);
}

static void rebuild_done(Operation *op, Message *reply) {
        Manager *m = op->manager;
        Entry *e = registry_find(&m->registry, op->pid);

        if (op->finished)
                return;

        if (reply && reply->result == MEMCR_OK) {
                if (e) {
                        e->state = reply->state && streq(reply->state, "streaming") ? ENTRY_STREAMING
                                                                                   : ENTRY_FROZEN;
                        if (MESSAGE_HAS(reply, TAG_CALLER_UID))
                                e->caller_uid = reply->caller_uid;
                        (void) entry_set_info(e, reply);
                        if (MESSAGE_HAS(reply, TAG_WATCHER_PID))
                                (void) entry_watch_watcher(e, (pid_t) reply->watcher_pid);
                }
                log_info("found %i frozen by an earlier memcrd (watcher %u)", op->pid, reply->watcher_pid);
        } else if (e)
                registry_remove(&m->registry, e);
        operation_schedule_free(op);
}

static int on_watcher_message(Conn *conn, Message *msg, void *userdata) {
        Operation *op = userdata;

        if (msg->type == MSG_PROGRESS) {
                if (op->client && client_wants_progress(op->client) && !op->client->compat)
                        (void) conn_send(op->client->conn, msg);
                return 0;
        }
        if (msg->type != MSG_REPLY)
                return -EBADMSG;

        switch (op->type) {
        case OP_CHECKPOINT:
                checkpoint_done(op, msg, 0);
                break;
        case OP_RESTORE:
                restore_done(op, msg, 0);
                break;
        case OP_REBUILD:
                rebuild_done(op, msg);
                break;
        }
        return -ECONNRESET; /* done with this connection */
}

static bool remove_stale_socket(Manager *m, pid_t pid);

/* The watcher went away without an answer: it died (or was killed). Once it
 * held the process, the kernel kills the process with it (PTRACE_O_EXITKILL),
 * a moment after the watcher's connection closes; say which happened. */
static void watcher_lost(Operation *op) {
        bool target_dead = op->pidfd < 0 || pidfd_is_alive(op->pidfd) == 0;
        Message m = { .type = MSG_REPLY };
        char text[256];

        (void) remove_stale_socket(op->manager, op->pid);
        if (op->type == OP_REBUILD) {
                /* Asked what it holds, it left without answering: it had just
                 * finished (a restore under way when we started), or died. */
                log_info("the watcher of %i went away without answering; forgetting %i", op->pid, op->pid);
                rebuild_done(op, NULL);
                return;
        }
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
                   LOG_FIELD("MEMCR_RESULT", "%s", target_dead ? "killed" : "failed"), NULL);

        message_set_u32(&m, TAG_RESULT, target_dead ? MEMCR_ERR_KILLED : MEMCR_ERR_FAILED);
        message_set_u32(&m, TAG_ERRNO, target_dead ? ESRCH : ECONNRESET);
        (void) message_set_string(&m, TAG_MESSAGE, text);
        switch (op->type) {
        case OP_CHECKPOINT:
                checkpoint_done(op, &m, 0);
                break;
        case OP_RESTORE:
                restore_done(op, &m, 0);
                break;
        case OP_REBUILD:
                break;
        }
        message_done(&m);
}

#define WATCHER_LOST_GRACE (500 * USEC_PER_MSEC)

static bool watcher_socket_served(Manager *m, pid_t pid);

/* A watcher dies in steps: its descriptors close (we see its connection
 * end, and its socket stop being served) and its process is killed with it
 * (when it held it); with several threads, in either order. Wait for both. */
static bool watcher_gone(Operation *op) {
        bool settled = op->type == OP_REBUILD || op->pidfd < 0 || pidfd_is_alive(op->pidfd) == 0;
        return settled && !watcher_socket_served(op->manager, op->pid);
}

static int on_lost_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Operation *op = userdata;

        if (op->finished)
                return 0;
        if (!watcher_gone(op) && now_usec(CLOCK_MONOTONIC) < op->lost_at + WATCHER_LOST_GRACE) {
                (void) sd_event_source_set_time_relative(s, 20 * USEC_PER_MSEC);
                (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
                return 0;
        }
        watcher_lost(op);
        return 0;
}

static void on_watcher_close(Conn *conn, int error, void *userdata) {
        Operation *op = userdata;

        if (op->finished || op->lost_timer)
                return;
        if (watcher_gone(op)) {
                watcher_lost(op);
                return;
        }
        op->lost_at = now_usec(CLOCK_MONOTONIC);
        if (sd_event_add_time_relative(op->manager->event, &op->lost_timer, CLOCK_MONOTONIC, 20 * USEC_PER_MSEC, 0,
                                       on_lost_timer, op) < 0)
                watcher_lost(op);
}

static void on_watcher_bad_frame(Conn *conn, int error, void *userdata) {
        log_warning_errno(error, "malformed message from the watcher of %i: %m", ((Operation *) userdata)->pid);
}

static const ConnCallbacks watcher_callbacks = {
        .on_message = on_watcher_message,
        .on_bad_frame = on_watcher_bad_frame,
        .on_close = on_watcher_close,
};

static int watcher_socket_path(Manager *m, pid_t pid, char *buf, size_t size) {
        int n = snprintf(buf, size, "%s/%i.sock", m->watch_dir, pid);
        return n < 0 || (size_t) n >= size ? -ENAMETOOLONG : 0;
}

/* Connect to the watcher of pid; it must run as us (or root). */
static int connect_watcher(Manager *m, pid_t pid, bool nonblock) {
        _cleanup_close_ int fd = -EBADF;
        char path[4096];
        struct ucred u;
        int r;

        r = watcher_socket_path(m, pid, path, sizeof(path));
        if (r < 0)
                return r;
        /* Right after bind() the socket may not listen yet: retry briefly. */
        for (int i = 0; i < 100; i++) {
                fd = unix_connect(path, nonblock ? SOCK_NONBLOCK : 0);
                if (fd != -ECONNREFUSED)
                        break;
                usleep_safe(2000);
        }
        if (fd < 0)
                return fd;
        r = getpeercred(fd, &u);
        if (r < 0)
                return r;
        if (u.uid != getuid() && u.uid != 0)
                return log_error_errno(-EPERM, "%s is served by uid %u, not by us: refusing it", path, u.uid);
        return TAKE_FD(fd);
}

static int attach_watcher(Operation *op, int fd) {
        int r;

        if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
                safe_close(fd);
                return -errno;
        }
        r = conn_new(op->manager->event, fd, false, &watcher_callbacks, op, &op->watcher);
        if (r < 0)
                safe_close(fd);
        return r;
}

static void on_watcher_ready(int error, const char *why, void *userdata) {
        Operation *op = userdata;
        Message job = { .type = MSG_CHECKPOINT };
        int fd, r;

        op->launch = watcher_launch_free(op->launch);
        if (error < 0) {
                /* memcrd's failure, not a verdict on the caller: "failed"
                 * (or "timeout"), with what went wrong in words. */
                Message m = { .type = MSG_REPLY };
                char text[1024];

                snprintf(text, sizeof(text), "checkpoint of %i failed: could not start a watcher: %s", op->pid,
                         why ?: strerror(-error));
                message_set_u32(&m, TAG_RESULT, error == -ETIMEDOUT ? MEMCR_ERR_TIMEOUT : MEMCR_ERR_FAILED);
                message_set_u32(&m, TAG_ERRNO, (uint32_t) -error);
                (void) message_set_string(&m, TAG_MESSAGE, text);
                checkpoint_done(op, &m, 0);
                message_done(&m);
                return;
        }

        fd = connect_watcher(op->manager, op->pid, false);
        if (fd < 0) {
                checkpoint_done(op, NULL, fd);
                return;
        }
        r = message_copy_fields(&job, &op->request, ~UINT64_C(0));
        if (r >= 0) {
                message_set_u32(&job, TAG_CALLER_UID, op->caller_uid);
                if (!MESSAGE_HAS(&job, TAG_DUMP_DIR))
                        r = message_set_string(&job, TAG_DUMP_DIR, op->manager->state_dir);
                if (r >= 0 && !MESSAGE_HAS(&job, TAG_CODEC) && op->manager->default_codec)
                        r = message_set_string(&job, TAG_CODEC, op->manager->default_codec);
        }
        if (r >= 0)
                r = message_send(fd, &job, &op->pidfd, 1);
        message_done(&job);
        if (r >= 0)
                r = attach_watcher(op, fd);
        else
                safe_close(fd);
        if (r < 0) {
                checkpoint_done(op, NULL, r);
                return;
        }
        if (op->n_waiters > 0 || !op->client) {
                /* A restore came (or the requester left) while the watcher
                 * started: the checkpoint is abandoned before it begins. */
                Message a = { .type = MSG_ABORT };
                message_set_u32(&a, TAG_PID, (uint32_t) op->pid);
                (void) conn_send(op->watcher, &a);
                message_done(&a);
                log_info("%s while the watcher of %i started, abandoning the checkpoint",
                         op->client ? "a restore came" : "the requester went away", op->pid);
        }
}

/* Does somebody listen on the watcher socket of pid? */
static bool watcher_socket_served(Manager *m, pid_t pid) {
        char path[4096];
        int fd;

        if (watcher_socket_path(m, pid, path, sizeof(path)) < 0)
                return false;
        fd = unix_connect(path, SOCK_NONBLOCK);
        if (fd >= 0) {
                safe_close(fd);
                return true;
        }
        return fd == -EAGAIN; /* its backlog is full: served */
}

/* A socket left by a watcher that died: nobody listens on it any more.
 * Returns true if there was one. */
static bool remove_stale_socket(Manager *m, pid_t pid) {
        char path[4096];
        int fd;

        if (watcher_socket_path(m, pid, path, sizeof(path)) < 0)
                return false;
        fd = unix_connect(path, 0);
        if (fd >= 0) {
                safe_close(fd);
                return false;
        }
        if (fd != -ECONNREFUSED)
                return false;
        (void) unlink(path);
        return true;
}

int operation_checkpoint(Manager *m, Client *c, pid_t pid, int pidfd, const Message *req, bool compat) {
        Operation *op;
        Entry *e;
        int r;

        if (registry_find(&m->registry, pid)) {
                /* Another request got here first (while this one was being
                 * authorized, which may take a while with polkit). */
                char text[128];
                snprintf(text, sizeof(text), "%i is already being checkpointed or frozen", pid);
                client_reply(c, MEMCR_ERR_ALREADY_FROZEN, EALREADY, text, NULL);
                return 0;
        }
        if (c) {
                /* Checked when the request came; others may have been frozen
                 * for this user since (while polkit was asked). */
                char text[256];
                r = limits_check_frozen(m, client_uid(c), text, sizeof(text));
                if (r < 0) {
                        limits_log(client_uid(c), client_pid(c), pid, "frozen", text);
                        client_reply(c, memcr_result_from_errno(r), r, text, NULL);
                        return 0;
                }
        }
        op = operation_new(m, OP_CHECKPOINT, c, pid, pidfd);
        if (!op)
                return -ENOMEM;
        op->compat = compat;
        op->request.type = MSG_CHECKPOINT;
        r = message_copy_fields(&op->request, req, ~UINT64_C(0));
        if (r >= 0 && c) {
                char identity[PROC_IDENTITY_STRING_MAX];
                r = proc_identity_to_string(&c->target_identity, identity, sizeof(identity));
                if (r >= 0)
                        r = message_set_string(&op->request, TAG_AUTH_IDENTITY, identity);
        }
        if (r >= 0)
                r = registry_add(&m->registry, pid, pidfd, ENTRY_CHECKPOINTING, op->caller_uid, &e);
        if (r < 0) {
                op->client = NULL;
                if (c)
                        c->op = NULL;
                operation_free(op);
                return r;
        }
        e->op = op;

        remove_stale_socket(m, pid);
        r = watcher_launch(m->event, &m->watcher, pid, on_watcher_ready, op, &op->launch);
        if (r < 0) {
                char text[512];

                registry_remove(&m->registry, e);
                op->client = NULL;
                if (c)
                        c->op = NULL;
                operation_free(op);
                snprintf(text, sizeof(text), "checkpoint of %i failed: could not start a watcher: %s", pid,
                         strerror(-r));
                log_error("%s", text);
                client_reply(c, r == -ETIMEDOUT ? MEMCR_ERR_TIMEOUT : MEMCR_ERR_FAILED, r, text, NULL);
                return 0;
        }
        (void) sd_notifyf(false, "STATUS=Checkpointing %i", pid);
        return 0;
}

static int restore_now(Manager *m, Client *c, pid_t pid, Entry *e, bool compat) {
        Message req = { .type = MSG_RESTORE };
        Operation *op;
        int fd, r;

        op = operation_new(m, OP_RESTORE, c, pid, e->pidfd);
        if (!op)
                return -ENOMEM;
        op->compat = compat;
        e->state = ENTRY_RESTORING;
        e->op = op;

        fd = connect_watcher(m, pid, false);
        if (fd < 0) {
                restore_done(op, NULL, fd == -ECONNREFUSED || fd == -ENOENT ? -ESRCH : fd);
                return 0;
        }
        message_set_u32(&req, TAG_PID, (uint32_t) pid);
        /* How: as the request says, else memcrd's default (the watcher adds
         * the process's own default from its checkpoint). */
        uint32_t flags = c ? c->flags & (REQUEST_FLAG_LAZY | REQUEST_FLAG_EAGER) : 0;
        if (flags == 0 && m->lazy_restore)
                flags = REQUEST_FLAG_LAZY;
        if (flags != 0)
                message_set_u32(&req, TAG_FLAGS, flags);
        r = message_send(fd, &req, NULL, 0);
        message_done(&req);
        if (r >= 0)
                r = attach_watcher(op, fd);
        else
                safe_close(fd);
        if (r < 0)
                restore_done(op, NULL, r);
        return 0;
}

static void start_waiting_restores(Operation *op, bool frozen) {
        Manager *m = op->manager;

        for (size_t i = 0; i < op->n_waiters; i++) {
                Client *c = op->waiters[i];
                Entry *e;

                if (!c)
                        continue;
                c->op = NULL;
                e = registry_find(&m->registry, op->pid);
                if (frozen && e)
                        (void) restore_now(m, c, op->pid, e, c->compat);
                else {
                        /* The checkpoint was abandoned: the process runs. */
                        char text[128];
                        snprintf(text, sizeof(text), "checkpoint of %i abandoned; it is running", op->pid);
                        client_reply(c, MEMCR_OK, 0, text, NULL);
                        client_request_done(c);
                }
        }
        op->n_waiters = 0;
}

int operation_restore(Manager *m, Client *c, pid_t pid, Entry *e, const Message *req, bool compat) {
        char text[128];

        if (!e) {
                snprintf(text, sizeof(text), "%i is not frozen", pid);
                client_reply(c, MEMCR_ERR_NOT_FROZEN, ENOENT, text, NULL);
                return 0;
        }
        switch (e->state) {
        case ENTRY_STREAMING:
                snprintf(text, sizeof(text), "%i runs already; its memory is still streaming back", pid);
                client_reply(c, MEMCR_ERR_BUSY, EBUSY, text, NULL);
                return 0;
        case ENTRY_RESTORING:
                snprintf(text, sizeof(text), "%i is already being restored", pid);
                client_reply(c, MEMCR_ERR_BUSY, EBUSY, text, NULL);
                return 0;
        case ENTRY_CHECKPOINTING: {
                /* A restore aborts a checkpoint in progress (as memcr does) and
                 * is answered once the watcher has let go or finished. */
                Operation *op = e->op;
                Client **w;

                if (!op || op->type == OP_REBUILD) {
                        snprintf(text, sizeof(text), "%i is busy, try again", pid);
                        client_reply(c, MEMCR_ERR_BUSY, EBUSY, text, NULL);
                        return 0;
                }
                w = realloc(op->waiters, (op->n_waiters + 1) * sizeof(Client *));
                if (!w)
                        return -ENOMEM;
                op->waiters = w;
                op->waiters[op->n_waiters++] = c;
                c->op = op;
                if (op->watcher && op->n_waiters == 1) {
                        Message a = { .type = MSG_ABORT };
                        message_set_u32(&a, TAG_PID, (uint32_t) pid);
                        (void) conn_send(op->watcher, &a);
                        message_done(&a);
                }
                return 0;
        }
        case ENTRY_FROZEN:
        default:
                return restore_now(m, c, pid, e, compat);
        }
}

void manager_on_target_exit(Entry *e, void *userdata) {
        Manager *m = userdata;
        char text[256];
        bool watcher_died;

        if (e->op)
                return; /* the operation finds out itself */
        if (e->state == ENTRY_STREAMING)
                return; /* it was running: its watcher saw how it ended, and tells at its exit */
        /* A watcher that died left its socket behind (nobody listens); one
         * that saw its process killed cleans up and exits by itself. */
        watcher_died = remove_stale_socket(m, e->pid);
        if (watcher_died)
                snprintf(text, sizeof(text),
                         "frozen process %i is gone: its watcher died, and the kernel killed it with it (fail-safe: "
                         "its memory was in the dump)",
                         e->pid);
        else
                snprintf(text, sizeof(text), "frozen process %i is gone: it was killed while frozen", e->pid);
        log_struct(LOG_WARNING, text, MESSAGE_ID(MEMCR_MESSAGE_TARGET_EXITED), LOG_FIELD("MEMCR_PID", "%i", (int) e->pid),
                   LOG_FIELD("MEMCR_CALLER_UID", "%u", e->caller_uid),
                   LOG_FIELD("MEMCR_REASON", "%s", watcher_died ? "watcher-died" : "killed"), NULL);
        registry_remove(&m->registry, e);
        manager_check_idle(m);
}

/* The watcher holding e exited. With an operation under way, the operation
 * finds out; a target that died is for manager_on_target_exit(). Otherwise
 * the watcher let the process go by itself: stopped (SIGTERM, systemctl stop),
 * its maximum frozen time reached, or its streaming done. */
/* A lazily restored process ended while its watcher streamed its memory
 * back: the watcher said how (and logged it) in WATCH_DIR/PID.ended. Keep
 * that for status and list. */
static void streaming_ended(Manager *m, Entry *e) {
        _cleanup_free_ char *text = NULL;
        char path[4096], state[32] = "ended";
        const char *p;

        snprintf(path, sizeof(path), "%s/%i.ended", m->watch_dir, e->pid);
        /* Its first line is the short state, the second the whole story. */
        if (read_full_file(path, 1024, &text, NULL) >= 0 && (p = strchr(text, '\n'))) {
                (void) unlink(path);
                snprintf(state, sizeof(state), "%.*s", (int) (p - text), text);
                memmove(text, p + 1, strlen(p + 1) + 1);
        } else {
                bool watcher_died = remove_stale_socket(m, e->pid);
                char buf[384];

                /* Without a word from the watcher: it died (and took the
                 * process along), or it had let the process go, all memory
                 * back, just before the process ended. */
                snprintf(buf, sizeof(buf),
                         watcher_died ? "process %i ended while its memory streamed back: its watcher died, and the "
                                        "kernel killed it with it (fail-safe: memory was missing)"
                                      : "process %i ended right after its lazy restore completed; how is not known",
                         e->pid);
                log_struct(LOG_WARNING, buf, MESSAGE_ID(MEMCR_MESSAGE_RESTORED_DIED),
                           LOG_FIELD("MEMCR_PID", "%i", (int) e->pid), LOG_FIELD("MEMCR_OP", "%s", "restore"),
                           LOG_FIELD("MEMCR_RESTORE", "%s", "lazy"),
                           LOG_FIELD("MEMCR_EXIT", "%s", watcher_died ? "killed with its watcher" : "unknown"),
                           LOG_FIELD("MEMCR_EXITED_USEC", "%s", "unknown"),
                           LOG_FIELD("MEMCR_CALLER_UID", "%u", e->caller_uid), NULL);
                text = strdup(buf);
                snprintf(state, sizeof(state), watcher_died ? "killed" : "ended");
        }
        registry_add_ended(&m->registry, e, state, text ?: "ended");
        registry_remove(&m->registry, e);
        manager_check_idle(m);
}

void manager_on_watcher_exit(Entry *e, void *userdata) {
        Manager *m = userdata;
        char text[256];

        if (e->op)
                return;
        if (e->state == ENTRY_STREAMING && pidfd_is_alive(e->pidfd) <= 0) {
                streaming_ended(m, e);
                return;
        }
        if (pidfd_is_alive(e->pidfd) <= 0)
                return;
        snprintf(text, sizeof(text), "%i %s by its watcher", e->pid,
                 e->state == ENTRY_STREAMING ? "is fully back in memory, released" : "was restored");
        log_struct(LOG_INFO, text, LOG_FIELD("MEMCR_PID", "%i", (int) e->pid), LOG_FIELD("MEMCR_OP", "%s", "restore"),
                   LOG_FIELD("MEMCR_RESULT", "%s", "ok"), LOG_FIELD("MEMCR_CALLER_UID", "%u", e->caller_uid),
                   LOG_FIELD("MEMCR_REASON", "%s", "watcher"), NULL);
        registry_remove(&m->registry, e);
        manager_check_idle(m);
}

/* A streaming entry's progress, asked from its watcher (briefly blocking). */
void entry_refresh(Manager *m, Entry *e) {
        Message req = { .type = MSG_STATUS }, reply = {};
        struct timeval tv = { .tv_sec = 1 };
        int fd;

        if (e->state != ENTRY_STREAMING)
                return;
        fd = connect_watcher(m, e->pid, false);
        if (fd < 0)
                return;
        (void) setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        message_set_u32(&req, TAG_PID, (uint32_t) e->pid);
        if (message_send(fd, &req, NULL, 0) >= 0 && message_recv(fd, &reply, NULL, 0, NULL) >= 0 &&
            reply.result == MEMCR_OK)
                (void) entry_set_info(e, &reply);
        message_done(&req);
        message_done(&reply);
        safe_close(fd);
}

/* Did process pid start after the moment given (CLOCK_REALTIME, usec)? */
static bool started_after(pid_t pid, usec_t when) {
        ProcCreds pc;
        long hz = sysconf(_SC_CLK_TCK);
        usec_t boot, started;

        if (proc_creds_read(pid, &pc) < 0 || hz <= 0)
                return false;
        boot = now_usec(CLOCK_REALTIME) - now_usec(CLOCK_BOOTTIME);
        started = boot + pc.start_time * USEC_PER_SEC / (usec_t) hz;
        /* Clock ticks are coarse: a second of slack. */
        return started > when + USEC_PER_SEC;
}

/* A watcher's socket that nobody serves, found at start-up: the watcher
 * died while no memcrd was there to see it (killed, say, while memcrd had
 * exited when idle). Say what became of its process, which memcrd never
 * heard of again: a watcher that dies holding a process with its memory
 * out takes it along (PTRACE_O_EXITKILL). */
static void report_stale_watcher(Manager *m, pid_t pid, const char *path) {
        _cleanup_close_ int pidfd = pidfd_open_pid(pid);
        struct stat st;
        usec_t created = 0;
        char text[384];

        if (lstat(path, &st) >= 0)
                created = (usec_t) st.st_mtim.tv_sec * USEC_PER_SEC + (usec_t) st.st_mtim.tv_nsec / 1000;
        if (pidfd >= 0 && pidfd_is_alive(pidfd) > 0 && (created == 0 || !started_after(pid, created))) {
                snprintf(text, sizeof(text),
                         "the watcher of %i died while memcrd was not running, before it held the process or "
                         "after letting it go: %i runs on",
                         pid, pid);
                log_struct(LOG_WARNING, text, MESSAGE_ID(MEMCR_MESSAGE_WATCHER_LOST),
                           LOG_FIELD("MEMCR_PID", "%i", (int) pid), LOG_FIELD("MEMCR_OP", "%s", "rebuild"),
                           LOG_FIELD("MEMCR_RESULT", "%s", "failed"), NULL);
                return;
        }
        snprintf(text, sizeof(text),
                 "the watcher of %i died while memcrd was not running (its socket was left behind): the process "
                 "it held is gone, the kernel killed it with its watcher (fail-safe: its memory was in the dump)",
                 pid);
        log_struct(LOG_WARNING, text, MESSAGE_ID(MEMCR_MESSAGE_TARGET_EXITED),
                   LOG_FIELD("MEMCR_PID", "%i", (int) pid), LOG_FIELD("MEMCR_OP", "%s", "rebuild"),
                   LOG_FIELD("MEMCR_REASON", "%s", "watcher-died"), NULL);
}

/* Ask every watcher in the runtime directory what it holds. */
int manager_rebuild(Manager *m) {
        DIR *d = opendir(m->watch_dir);
        struct dirent *de;

        if (!d)
                return log_error_errno(-errno, "cannot open %s: %m", m->watch_dir);
        while ((de = readdir(d))) {
                _cleanup_close_ int pidfd = -EBADF;
                Message req = { .type = MSG_STATUS };
                Operation *op;
                char *end;
                long pid;
                int fd, r;

                pid = strtol(de->d_name, &end, 10);
                if (pid <= 0 || pid > INT32_MAX || !streq(end, ".sock"))
                        continue;
                pidfd = pidfd_open_pid((pid_t) pid);
                fd = connect_watcher(m, (pid_t) pid, false);
                if (fd < 0 || pidfd < 0) {
                        if (fd == -ECONNREFUSED) {
                                char path[4096];
                                if (watcher_socket_path(m, (pid_t) pid, path, sizeof(path)) >= 0) {
                                        report_stale_watcher(m, (pid_t) pid, path);
                                        (void) unlink(path);
                                }
                        }
                        safe_close(fd);
                        continue;
                }
                op = operation_new(m, OP_REBUILD, NULL, (pid_t) pid, pidfd);
                if (!op) {
                        safe_close(fd);
                        break;
                }
                r = registry_add(&m->registry, (pid_t) pid, pidfd, ENTRY_CHECKPOINTING, (uid_t) -1, NULL);
                if (r >= 0) {
                        registry_find(&m->registry, (pid_t) pid)->op = op;
                        message_set_u32(&req, TAG_PID, (uint32_t) pid);
                        r = message_send(fd, &req, NULL, 0);
                }
                message_done(&req);
                if (r >= 0) {
                        /* A watcher that holds its process answers at once; one
                         * still checkpointing answers when done (asynchronously). */
                        struct pollfd p = { .fd = fd, .events = POLLIN };
                        if (poll(&p, 1, 1000) > 0) {
                                Message reply = {};
                                if (message_recv(fd, &reply, NULL, 0, NULL) >= 0)
                                        rebuild_done(op, &reply);
                                else
                                        rebuild_done(op, NULL);
                                message_done(&reply);
                                safe_close(fd);
                                continue;
                        }
                        r = attach_watcher(op, fd);
                } else
                        safe_close(fd);
                if (r < 0) {
                        Entry *e = registry_find(&m->registry, (pid_t) pid);
                        if (e)
                                registry_remove(&m->registry, e);
                        operation_free(op);
                }
        }
        closedir(d);
        return 0;
}
