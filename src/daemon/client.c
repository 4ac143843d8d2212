/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * Client connections: identity captured at accept, requests read and checked,
 * answered directly (list, status, version) or handed to an operation
 * (checkpoint, restore) after authorization.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "authorize.h"
#include "client.h"
#include "codec-name.h"
#include "config.h"
#include "listing.h"
#include "list.h"
#include "log.h"
#include "macro.h"
#include "memcr-ids.h"
#include "operation.h"
#include "pidfd-util.h"
#include "socket-util.h"

static const ConnCallbacks client_callbacks;

/* A connection over a limit is told so when it sends its request, or closed
 * after this long. */
#define REFUSED_TIMEOUT_USEC (2 * USEC_PER_SEC)

/* A status of a process whose memory streams back asks its watcher for the
 * progress, this long at most; then the last one known is told. */
#define REFRESH_TIMEOUT_USEC (1 * USEC_PER_SEC)

static int on_free(sd_event_source *s, void *userdata) {
        client_free(userdata);
        return 0;
}

/* Free on the next loop iteration: callbacks up the stack may still use it. */
static void client_forget_request(Client *c) {
        if (c->op)
                operation_forget_requester(c->op, c);
        c->op = NULL;
        c->auth = auth_request_cancel(c->auth);
        c->refresh = watcher_exchange_free(c->refresh);
        if (c->waiting)
                (void) LIST_REMOVE(next_waiting, c->manager->waiting, c);
        c->waiting = false;
        message_done(&c->request);
        c->request_pidfd = safe_close(c->request_pidfd);
}

static void client_schedule_free(Client *c) {
        if (c->free_source)
                return;
        client_forget_request(c);
        if (sd_event_add_defer(c->manager->event, &c->free_source, on_free, c) < 0)
                client_free(c);
}

Client *client_free(Client *c) {
        Manager *m;

        if (!c)
                return NULL;
        m = c->manager;
        client_forget_request(c);
        LIST_REMOVE_COUNTED(next, m->clients, m->n_clients, c);
        if (c->refusal && m->n_refused > 0)
                m->n_refused--;
        conn_free(c->conn);
        sd_event_source_disable_unref(c->timeout);
        sd_event_source_disable_unref(c->lifetime);
        sd_event_source_disable_unref(c->free_source);
        caller_creds_done(&c->creds);
        safe_close(c->pidfd);
        free(c->label);
        free(c->refusal);
        return mfree(c);
}

static int on_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        Client *c = userdata;

        log_debug("client %i: no complete request in time, closing", c->creds.pid);
        client_schedule_free(c);
        return 0;
}

static void arm_timeout(Client *c) {
        Manager *m = c->manager;
        usec_t t = c->refusal ? REFUSED_TIMEOUT_USEC : m->client_timeout;

        if (t == 0)
                return;
        if (!c->timeout)
                (void) sd_event_add_time_relative(m->event, &c->timeout, CLOCK_MONOTONIC, t, 0, on_timeout, c);
        else {
                (void) sd_event_source_set_time_relative(c->timeout, t);
                (void) sd_event_source_set_enabled(c->timeout, SD_EVENT_ONESHOT);
        }
}

/* The connection has lived as long as it may: closed now, or, while a
 * request of its own is being decided or carried out, once that is
 * answered. (Cutting it then would abandon a checkpoint half-way, or a
 * restore the caller waits for.) */
static int on_lifetime(sd_event_source *s, uint64_t usec, void *userdata) {
        Client *c = userdata;

        if (c->busy) {
                log_debug("client %i: connection lifetime over, closing it once its request is answered",
                          c->creds.pid);
                c->expired = true;
                return 0;
        }
        log_debug("client %i: connection lifetime over, closing", c->creds.pid);
        conn_close_after_flush(c->conn);
        return 0;
}

static void client_reply_message(Client *c, Message *reply) {
        if (c->compat) {
                int32_t v = reply->result == MEMCR_OK ? MEMCR_COMPAT_OK
                            : reply->result == MEMCR_ERR_NO_PROCESS || reply->result == MEMCR_ERR_NOT_FROZEN
                                    ? MEMCR_COMPAT_INVALID_PID
                                    : MEMCR_COMPAT_ERROR;
                (void) conn_send_raw(c->conn, &v, sizeof(v));
                return;
        }
        reply->type = MSG_REPLY;
        (void) conn_send(c->conn, reply);
}

static void client_reply(Client *c, MemcrResult result, int error, const char *message, const Message *info) {
        Message m = { .type = MSG_REPLY };

        if (info)
                (void) message_copy_fields(&m, info, MESSAGE_INFO_FIELDS);
        message_set_result(&m, result, error, message);
        client_reply_message(c, &m);
        message_done(&m);
}

/* The request in progress is answered: take the next one. */
static void client_request_done(Client *c) {
        if (!c->busy)
                return;
        c->busy = false;
        c->op = NULL;
        message_done(&c->request);
        c->request_pidfd = safe_close(c->request_pidfd);
        if (c->expired) {
                /* Its answer goes out, then the connection is closed. */
                conn_close_after_flush(c->conn);
                return;
        }
        arm_timeout(c);
        conn_pause(c->conn, false);
}

static void log_request(Client *c, const char *op, pid_t pid) {
        char text[160], of[32] = "";

        if (pid > 0)
                snprintf(of, sizeof(of), " of %i", (int) pid);
        snprintf(text, sizeof(text), "%s%s requested by uid %u (PID %i)", op, of, c->creds.uid, (int) c->creds.pid);
        log_struct(LOG_INFO, text, MESSAGE_ID(MEMCR_MESSAGE_REQUEST), LOG_FIELD("MEMCR_OP", "%s", op),
                   LOG_FIELD("MEMCR_PID", "%i", (int) pid),
                   LOG_FIELD("MEMCR_CALLER_UID", "%u", c->creds.uid),
                   LOG_FIELD("MEMCR_CALLER_PID", "%i", (int) c->creds.pid),
                   LOG_FIELD("MEMCR_PROTOCOL", "%s", c->compat ? "memcr" : "memcr1"), NULL);
}

static int parse_dump_dir(Client *c, const Message *req, const char **ret) {
        Manager *m = c->manager;

        if (!MESSAGE_HAS(req, TAG_DUMP_DIR)) {
                *ret = m->state_dir;
                return 0;
        }
        /* Only directories the administrator allowed, named exactly. */
        if (streq(req->dump_dir, m->state_dir)) {
                *ret = m->state_dir;
                return 0;
        }
        for (size_t i = 0; i < m->n_dump_dirs; i++)
                if (streq(req->dump_dir, m->dump_dirs[i])) {
                        *ret = m->dump_dirs[i];
                        return 0;
                }
        return -EACCES;
}

static int start_authorize(Client *c, PolicyOp op, int pidfd, const Message *req);

static int handle_checkpoint(Client *c, const Message *req) {
        _cleanup_close_ int pidfd = -EBADF;
        pid_t pid = (pid_t) req->pid;
        const char *dir;
        char buf[256];
        int r;

        log_request(c, "checkpoint", pid);

        /* Over its limit, nobody needs to be asked (polkit) before the
         * answer; memcrd checks again when the checkpoint starts. */
        r = limits_check_frozen(c->manager, c->creds.uid, buf, sizeof(buf));
        if (r < 0) {
                limits_log(c->creds.uid, c->creds.pid, pid, "frozen", buf);
                client_reply(c, memcr_result_from_errno(r), r, buf, NULL);
                return 0;
        }

        if (MESSAGE_HAS(req, TAG_CODEC)) {
                r = codec_from_string(req->codec);
                if (r < 0 || !codec_supported((Codec) r)) {
                        snprintf(buf, sizeof(buf), "compression '%s' is not supported", req->codec);
                        client_reply(c, MEMCR_ERR_UNSUPPORTED, EOPNOTSUPP, buf, NULL);
                        return 0;
                }
        }
        if (parse_dump_dir(c, req, &dir) < 0) {
                snprintf(buf, sizeof(buf), "dump directory %s is not one memcrd allows", req->dump_dir);
                client_reply(c, MEMCR_ERR_DENIED, EACCES, buf, NULL);
                return 0;
        }

        pidfd = pidfd_open_pid(pid);
        if (pidfd < 0) {
                snprintf(buf, sizeof(buf), "no process %i", pid);
                client_reply(c, MEMCR_ERR_NO_PROCESS, ESRCH, buf, NULL);
                return 0;
        }

        return start_authorize(c, POLICY_OP_CHECKPOINT, TAKE_FD(pidfd), req);
}

static int handle_restore(Client *c, const Message *req) {
        pid_t pid = (pid_t) req->pid;
        int pidfd;
        char buf[256];

        log_request(c, "restore", pid);
        pidfd = pidfd_open_pid(pid);
        if (pidfd < 0) {
                snprintf(buf, sizeof(buf), "no process %i", pid);
                client_reply(c, MEMCR_ERR_NO_PROCESS, ESRCH, buf, NULL);
                return 0;
        }
        return start_authorize(c, POLICY_OP_RESTORE, pidfd, req);
}

static int handle_list(Client *c) {
        Message m = { .type = MSG_REPLY };

        log_request(c, "list", 0);
        listing_list(&c->manager->registry, &c->creds, &m);
        client_reply_message(c, &m);
        message_done(&m);
        return 0;
}

static int handle_status(Client *c, const Message *req) {
        pid_t pid = (pid_t) req->pid;
        _cleanup_close_ int pidfd = -EBADF;
        char buf[256];

        log_request(c, "status", pid);
        pidfd = pidfd_open_pid(pid);
        if (pidfd < 0 || (pidfd_is_alive(pidfd) == 0 && !registry_find(&c->manager->registry, pid))) {
                Message m = { .type = MSG_REPLY };

                /* Gone (or a zombie): if it ended after memcr restored it, say
                 * how (to those who may know). */
                if (listing_ended(&c->manager->registry, &c->creds, pid, &m)) {
                        client_reply_message(c, &m);
                        message_done(&m);
                        return 0;
                }
                if (pidfd < 0) {
                        snprintf(buf, sizeof(buf), "no process %i", pid);
                        client_reply(c, MEMCR_ERR_NO_PROCESS, ESRCH, buf, NULL);
                        return 0;
                }
        }
        return start_authorize(c, POLICY_OP_STATUS, TAKE_FD(pidfd), req);
}

static void client_status_reply(Client *c, Entry *e) {
        Message m = { .type = MSG_REPLY };

        listing_status(e, &m);
        client_reply_message(c, &m);
        message_done(&m);
}

static void on_operation_progress(Message *progress, void *userdata) {
        Client *c = userdata;

        if ((c->flags & REQUEST_FLAG_PROGRESS) && !c->compat)
                (void) conn_send(c->conn, progress);
}

static void on_operation_reply(Message *reply, void *userdata) {
        Client *c = userdata;

        c->op = NULL;
        client_reply_message(c, reply);
        client_request_done(c);
}

static void on_refresh_done(WatcherExchange *x, Message *reply, int error, void *userdata) {
        Client *c = userdata;
        pid_t pid = (pid_t) c->request.pid;
        Entry *e = registry_find(&c->manager->registry, pid);
        char text[128];

        c->refresh = watcher_exchange_free(c->refresh);
        if (reply && reply->result == MEMCR_OK && e)
                (void) entry_set_info(e, reply);
        else if (error == -ETIMEDOUT)
                log_warning("the watcher of %i did not tell its progress within 1 s; the status of %i is what it "
                            "said last",
                            pid, pid);
        if (e)
                client_status_reply(c, e);
        else {
                snprintf(text, sizeof(text), "%i is not frozen", pid);
                client_reply(c, MEMCR_ERR_NOT_FROZEN, ENOENT, text, NULL);
        }
        client_request_done(c);
}

static const WatcherExchangeCallbacks refresh_callbacks = {
        .on_done = on_refresh_done,
};

/* A status: as the registry has it, but of a process whose memory streams
 * back, with the progress its watcher tells. */
static void status_now(Client *c, pid_t pid) {
        Manager *m = c->manager;
        Entry *e = registry_find(&m->registry, pid);
        Message req = { .type = MSG_STATUS };
        char text[128];

        if (!e) {
                /* Restored (or never frozen) while polkit was asked. */
                snprintf(text, sizeof(text), "%i is not frozen", pid);
                client_reply(c, MEMCR_ERR_NOT_FROZEN, ENOENT, text, NULL);
                return;
        }
        message_set_u32(&req, TAG_PID, (uint32_t) pid);
        if (e->state != ENTRY_STREAMING ||
            watcher_exchange_start(m->event, m->watch_dir, pid, &req, -EBADF, REFRESH_TIMEOUT_USEC,
                                   &refresh_callbacks, c, &c->refresh) < 0)
                client_status_reply(c, e);
        message_done(&req);
}

/* Authorized: do it. */
static int dispatch(Client *c, PolicyOp op) {
        Manager *m = c->manager;
        pid_t pid = (pid_t) c->request.pid;
        OperationRequester who = {
                .on_progress = on_operation_progress,
                .on_reply = on_operation_reply,
                .userdata = c,
                .handle = &c->op,
                .uid = c->creds.uid,
                .pid = c->creds.pid,
                .flags = c->flags,
        };
        char identity[PROC_IDENTITY_STRING_MAX];
        int r;

        switch (op) {
        case POLICY_OP_CHECKPOINT:
                /* Nobody would be told, and nobody waits for the process to
                 * be frozen: it is not. (A requester that only stopped
                 * writing still waits for its answer.) */
                if (conn_peer_gone(c->conn)) {
                        log_info("requester of the checkpoint of %i went away before it began; not starting it",
                                 pid);
                        return 0;
                }
                r = proc_identity_to_string(&c->target_identity, identity, sizeof(identity));
                if (r < 0)
                        return r;
                return operation_checkpoint(m, &who, pid, c->request_pidfd, &c->request, identity, &c->op);
        case POLICY_OP_RESTORE:
                return operation_restore(m, &who, pid, &c->op);
        case POLICY_OP_STATUS:
                status_now(c, pid);
                return 0;
        default:
                return -EINVAL;
        }
}

static bool request_pending(const Client *c) {
        return c->op || c->auth || c->refresh;
}

static void on_verdict(int error, const char *text, void *userdata) {
        Client *c = userdata;
        PolicyOp op = c->request.type == MSG_CHECKPOINT ? POLICY_OP_CHECKPOINT
                      : c->request.type == MSG_RESTORE  ? POLICY_OP_RESTORE
                                                        : POLICY_OP_STATUS;
        int r;

        c->auth = NULL;
        if (error < 0)
                client_reply(c, memcr_result_from_errno(error), error, text, NULL);
        else if ((r = dispatch(c, op)) < 0) {
                char buf[256];
                snprintf(buf, sizeof(buf), "%s of %i failed: %s", policy_op_to_string(op), (pid_t) c->request.pid,
                         strerror(-r));
                log_error("%s", buf);
                client_reply(c, memcr_result_from_errno(r), r, buf, NULL);
        }
        if (!request_pending(c))
                client_request_done(c);
}

/* The request waits for its verdict (and then, for what it asks) in c. */
static int start_authorize(Client *c, PolicyOp op, int pidfd, const Message *req) {
        Message copy = { .type = req->type };
        int r;

        r = message_copy_fields(&copy, req, ~UINT64_C(0));
        if (r < 0) {
                message_done(&copy);
                safe_close(pidfd);
                return r;
        }
        message_done(&c->request);
        c->request = copy;
        safe_close(c->request_pidfd);
        c->request_pidfd = pidfd;
        return authorize(c, op, (pid_t) req->pid, pidfd, on_verdict, c, &c->auth);
}

static void log_bad_request(Client *c, const char *what, const char *reason) {
        char text[384];

        snprintf(text, sizeof(text), "%s from uid %u (PID %i): %s", what, c->creds.uid, (int) c->creds.pid, reason);
        log_struct(LOG_NOTICE, text, MESSAGE_ID(MEMCR_MESSAGE_BAD_REQUEST),
                   LOG_FIELD("MEMCR_CALLER_UID", "%u", c->creds.uid),
                   LOG_FIELD("MEMCR_CALLER_PID", "%i", (int) c->creds.pid), LOG_FIELD("MEMCR_REASON", "%s", reason),
                   NULL);
}

/* At start-up, what is frozen is known once the watchers found have
 * answered: a request about it waits for that (a second at most). */
static bool wait_for_registry(Client *c, const Message *req) {
        Manager *m = c->manager;
        int r;

        if (manager_registry_settled(m) || (req->type != MSG_LIST && req->type != MSG_STATUS && req->type != MSG_RESTORE))
                return false;
        message_done(&c->request);
        c->request.type = req->type;
        r = message_copy_fields(&c->request, req, ~UINT64_C(0));
        if (r < 0)
                return false;
        LIST_PREPEND(next_waiting, m->waiting, c);
        c->waiting = true;
        return true;
}

static int handle_request(Client *c, Message *req) {
        Message m = { .type = MSG_REPLY };

        if (wait_for_registry(c, req))
                return 0;
        switch (req->type) {
        case MSG_CHECKPOINT:
                /* Who froze it, and what was authorized, are ours to say, not
                 * the client's. */
                req->present &= ~((UINT64_C(1) << TAG_CALLER_UID) | (UINT64_C(1) << TAG_AUTH_IDENTITY));
                return handle_checkpoint(c, req);
        case MSG_RESTORE:
                return handle_restore(c, req);
        case MSG_LIST:
                return handle_list(c);
        case MSG_STATUS:
                return handle_status(c, req);
        case MSG_VERSION:
                message_set_u32(&m, TAG_RESULT, MEMCR_OK);
                (void) message_set_string(&m, TAG_VERSION, VERSION);
                client_reply_message(c, &m);
                message_done(&m);
                return 0;
        default:
                log_bad_request(c, "request of a type clients may not send", message_type_to_string(req->type));
                client_reply(c, MEMCR_ERR_INVALID, EINVAL, "not a request", NULL);
                return -EBADMSG;
        }
}

/* One request at a time: no more input until this one is answered. */
static void request_begin(Client *c, uint32_t flags) {
        conn_pause(c->conn, true);
        c->busy = true;
        c->flags = flags;
        if (c->timeout)
                (void) sd_event_source_set_enabled(c->timeout, SD_EVENT_OFF);
}

static int request_run(Client *c, Message *req) {
        int r = handle_request(c, req);

        if (r < 0)
                return r;
        if (!request_pending(c) && !c->waiting)
                client_request_done(c);
        return 0;
}

void client_resume_waiting(Manager *m) {
        while (m->waiting) {
                Client *c = m->waiting;
                Message req = c->request;

                m->waiting = c->next_waiting;
                c->next_waiting = NULL;
                c->waiting = false;
                c->request = (Message) {};
                if (request_run(c, &req) < 0)
                        conn_close_after_flush(c->conn);
                message_done(&req);
        }
}

static int on_message(Conn *conn, Message *req, void *userdata) {
        Client *c = userdata;
        char buf[256];
        int r;

        if (c->refusal) {
                client_reply(c, MEMCR_ERR_BUSY, EUSERS, c->refusal, NULL);
                return -EUSERS; /* closed once the answer is out */
        }
        request_begin(c, MESSAGE_HAS(req, TAG_FLAGS) ? req->flags : 0);

        /* Well-formed, but asking for what nothing can do. */
        r = request_check_values(req, buf, sizeof(buf));
        if (r < 0) {
                log_bad_request(c, "request with a value out of range", buf);
                client_reply(c, MEMCR_ERR_INVALID, -r, buf, NULL);
                client_request_done(c);
                return 0;
        }
        return request_run(c, req);
}

static int on_compat(Conn *conn, int32_t cmd, int32_t pid, void *userdata) {
        Client *c = userdata;
        Message req = { .type = cmd == MEMCR_COMPAT_CHECKPOINT ? MSG_CHECKPOINT : MSG_RESTORE };
        int r;

        c->compat = true;
        if (c->refusal) {
                int32_t v = MEMCR_COMPAT_ERROR;
                (void) conn_send_raw(conn, &v, sizeof(v));
                return -EUSERS;
        }
        request_begin(c, 0);
        if (pid <= 0) {
                int32_t v = MEMCR_COMPAT_INVALID_PID;
                (void) conn_send_raw(conn, &v, sizeof(v));
                client_request_done(c);
                return 0;
        }
        message_set_u32(&req, TAG_PID, (uint32_t) pid);
        r = request_run(c, &req);
        message_done(&req);
        return r;
}

static void on_bad_frame(Conn *conn, int error, void *userdata) {
        Client *c = userdata;

        log_bad_request(c, "malformed request, closing the connection", strerror(-error));
        if (!c->compat)
                client_reply(c, MEMCR_ERR_INVALID, -error, "malformed request", NULL);
}

static void on_close(Conn *conn, int error, void *userdata) {
        client_schedule_free(userdata);
}

static const ConnCallbacks client_callbacks = {
        .on_message = on_message,
        .on_bad_frame = on_bad_frame,
        .on_compat = on_compat,
        .on_close = on_close,
};

/* Refusals of connections are logged at most once a second. */
static void log_refusal(Manager *m, const struct ucred *u, const char *text) {
        usec_t now = now_usec(CLOCK_MONOTONIC);
        char buf[320];

        if (m->limit_logged != 0 && now < m->limit_logged + USEC_PER_SEC) {
                m->limit_unlogged++;
                return;
        }
        if (m->limit_unlogged > 0)
                snprintf(buf, sizeof(buf), "%s (and %u more connections refused)", text, m->limit_unlogged);
        else
                snprintf(buf, sizeof(buf), "%s", text);
        m->limit_logged = now;
        m->limit_unlogged = 0;
        limits_log(u->uid, u->pid, 0, "connections", buf);
}

/* Connections of uid whose peers have closed them, while the loop has not
 * got to their hangups or to freeing them yet (a client that just let go of
 * many connections, then opened one): they no longer count against a limit.
 * Called from the listening socket's handler, never from a client's own. */
static unsigned forget_gone_clients(Manager *m, uid_t uid) {
        unsigned n = 0;
        Client *next;

        for (Client *c = m->clients; c; c = next) {
                next = c->next;
                if (c->creds.uid != uid || c->refusal)
                        continue;
                /* Closed and about to be freed, or closed by the peer. */
                if (!c->free_source && !conn_peer_gone(c->conn))
                        continue;
                client_free(c);
                n++;
        }
        return n;
}

static int client_new(Manager *m, int fd) {
        _cleanup_close_ int cfd = fd;
        struct ucred u;
        char refusal[256];
        _cleanup_(client_freep) Client *c = NULL;
        int r;

        r = getpeercred(cfd, &u);
        if (r < 0)
                return log_debug_errno(r, "cannot identify a connecting peer: %m");

        r = limits_check_connection(m, u.uid, refusal, sizeof(refusal));
        if (r < 0 && forget_gone_clients(m, u.uid) > 0)
                r = limits_check_connection(m, u.uid, refusal, sizeof(refusal));
        if (r < 0) {
                log_refusal(m, &u, refusal);
                /* Kept (a few of them, briefly) to be told why, else closed. */
                if (!limits_may_refuse(m))
                        return r;
        }

        c = calloc(1, sizeof(Client));
        if (!c)
                return -ENOMEM;
        c->manager = m;
        c->pidfd = -EBADF;
        c->request_pidfd = -EBADF;
        c->creds.pid = u.pid;
        c->creds.uid = u.uid;
        c->creds.gid = u.gid;
        if (r < 0) {
                c->refusal = strdup(refusal);
                if (!c->refusal)
                        return -ENOMEM;
                m->n_refused++;
        } else {
                r = getpeergroups(cfd, &c->creds.groups, &c->creds.n_groups);
                if (r < 0)
                        log_debug_errno(r, "no supplementary groups of %i: %m", u.pid);
                /* Pin the caller: its capabilities are read through this, and
                 * polkit is given it, so a recycled PID can never stand in
                 * for the caller. */
                c->pidfd = getpeerpidfd(cfd, &u);
                if (c->pidfd < 0)
                        log_debug_errno(c->pidfd, "no pidfd for peer %i: %m", u.pid);
                r = authorize_capture_peer(m, c, cfd);
                if (r < 0)
                        return r;
                if (m->connection_lifetime > 0) {
                        r = sd_event_add_time_relative(m->event, &c->lifetime, CLOCK_MONOTONIC,
                                                       m->connection_lifetime, 0, on_lifetime, c);
                        if (r < 0)
                                return r;
                }
        }

        r = conn_new(m->event, cfd, true, &client_callbacks, c, &c->conn);
        if (r < 0)
                return r;
        TAKE_FD(cfd);
        LIST_PREPEND(next, m->clients, c);
        m->n_clients++;
        arm_timeout(c);
        TAKE_PTR(c);
        return 0;
}

static int on_accept_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;

        (void) sd_event_source_set_enabled(m->listen_source, SD_EVENT_ON);
        (void) manager_accept(m);
        return 0;
}

/* Out of descriptors (or memory): the connection waits in the backlog.
 * Stop looking at the socket for a moment, rather than spin on it. */
static void pause_accepting(Manager *m, int error) {
        log_warning_errno(error, "cannot accept connections: %m; trying again in 100 ms");
        (void) sd_event_source_set_enabled(m->listen_source, SD_EVENT_OFF);
        if (!m->accept_retry) {
                if (sd_event_add_time_relative(m->event, &m->accept_retry, CLOCK_MONOTONIC, 100 * USEC_PER_MSEC,
                                               0, on_accept_retry, m) < 0)
                        (void) sd_event_source_set_enabled(m->listen_source, SD_EVENT_ON);
                return;
        }
        (void) sd_event_source_set_time_relative(m->accept_retry, 100 * USEC_PER_MSEC);
        (void) sd_event_source_set_enabled(m->accept_retry, SD_EVENT_ONESHOT);
}

int manager_accept(Manager *m) {
        for (;;) {
                int fd = accept4(m->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
                int r;

                if (fd < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                return 0;
                        if (errno == ECONNABORTED)
                                continue;
                        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                                pause_accepting(m, -errno);
                                return 0;
                        }
                        return log_warning_errno(-errno, "accept failed: %m");
                }
                r = client_new(m, fd);
                if (r < 0)
                        log_debug_errno(r, "dropping a connection: %m");
        }
}
