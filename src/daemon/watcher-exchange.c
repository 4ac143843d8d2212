/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "alloc-util.h"
#include "conn.h"
#include "log.h"
#include "macro.h"
#include "watcher-exchange.h"
#include "watcher-socket.h"

/* Right after bind() a socket may not listen yet: connecting is retried
 * every 2 ms, for 200 ms at most (a full backlog: until the time limit). */
#define CONNECT_RETRY_USEC (2 * USEC_PER_MSEC)
#define CONNECT_REFUSED_MAX 100

struct WatcherExchange {
        sd_event *event;
        char *watch_dir;
        pid_t pid;
        Message request;
        int pass_fd;
        Message queued;          /* sent once connected (type 0: none) */
        unsigned refused;
        Conn *conn;
        sd_event_source *retry;
        sd_event_source *timer;
        const WatcherExchangeCallbacks *cb;
        void *userdata;
        bool done;
};

static const ConnCallbacks exchange_conn_callbacks;

static void finish(WatcherExchange *x, Message *reply, int error) {
        if (x->done)
                return;
        x->done = true;
        (void) sd_event_source_set_enabled(x->timer, SD_EVENT_OFF);
        (void) sd_event_source_set_enabled(x->retry, SD_EVENT_OFF);
        if (x->conn)
                (void) sd_event_source_set_enabled(x->conn->io, SD_EVENT_OFF);
        x->cb->on_done(x, reply, error, x->userdata);
}

static int on_message(Conn *c, Message *m, void *userdata) {
        WatcherExchange *x = userdata;

        if (m->type == MSG_PROGRESS) {
                if (x->cb->on_progress)
                        x->cb->on_progress(x, m, x->userdata);
                return 0;
        }
        if (m->type != MSG_REPLY)
                return -EBADMSG;
        finish(x, m, 0);
        return -ECONNRESET; /* done with this connection */
}

static void on_bad_frame(Conn *c, int error, void *userdata) {
        WatcherExchange *x = userdata;
        log_warning_errno(error, "malformed message from the watcher of %i: %m", x->pid);
}

static void on_close(Conn *c, int error, void *userdata) {
        finish(userdata, NULL, error < 0 ? error : -ECONNRESET);
}

static const ConnCallbacks exchange_conn_callbacks = {
        .on_message = on_message,
        .on_bad_frame = on_bad_frame,
        .on_close = on_close,
};

static int send_request(WatcherExchange *x, int fd) {
        int r;

        r = message_send(fd, &x->request, x->pass_fd >= 0 ? &x->pass_fd : NULL, x->pass_fd >= 0 ? 1 : 0);
        if (r < 0) {
                safe_close(fd);
                return r;
        }
        x->pass_fd = safe_close(x->pass_fd);
        r = conn_new(x->event, fd, false, &exchange_conn_callbacks, x, &x->conn);
        if (r < 0) {
                safe_close(fd);
                return r;
        }
        if (x->queued.type != 0)
                (void) conn_send(x->conn, &x->queued);
        return 0;
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata);

/* 0: connected and sent, 1: try again later, < 0: failed. */
static int try_connect(WatcherExchange *x) {
        int fd = watcher_socket_connect(x->watch_dir, x->pid);

        if (fd == -EAGAIN || (fd == -ECONNREFUSED && ++x->refused < CONNECT_REFUSED_MAX)) {
                if (!x->retry)
                        return sd_event_add_time_relative(x->event, &x->retry, CLOCK_MONOTONIC, CONNECT_RETRY_USEC,
                                                          0, on_retry, x) < 0 ? -ENOMEM : 1;
                (void) sd_event_source_set_time_relative(x->retry, CONNECT_RETRY_USEC);
                (void) sd_event_source_set_enabled(x->retry, SD_EVENT_ONESHOT);
                return 1;
        }
        if (fd < 0)
                return fd;
        return send_request(x, fd);
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        WatcherExchange *x = userdata;
        int r = try_connect(x);

        if (r < 0)
                finish(x, NULL, r);
        return 0;
}

static int on_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        finish(userdata, NULL, -ETIMEDOUT);
        return 0;
}

int watcher_exchange_start(sd_event *e, const char *watch_dir, pid_t pid, const Message *request, int pass_fd,
                           usec_t timeout, const WatcherExchangeCallbacks *cb, void *userdata,
                           WatcherExchange **ret) {
        _cleanup_(watcher_exchange_freep) WatcherExchange *x = NULL;
        int r;

        x = new(WatcherExchange, 1);
        if (!x)
                return -ENOMEM;
        *x = (WatcherExchange) { .event = e, .pid = pid, .cb = cb, .userdata = userdata,
                                 .pass_fd = pass_fd >= 0 ? fcntl(pass_fd, F_DUPFD_CLOEXEC, 3) : -EBADF,
                                 .watch_dir = strdup(watch_dir), .request.type = request->type };
        r = !x->watch_dir || (pass_fd >= 0 && x->pass_fd < 0) ? -ENOMEM
                                                               : message_copy_fields(&x->request, request, ~UINT64_C(0));
        if (r >= 0)
                r = sd_event_add_time_relative(e, &x->timer, CLOCK_MONOTONIC, timeout, 0, on_timeout, x);
        if (r >= 0)
                r = try_connect(x);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(x);
        return 0;
}

int watcher_exchange_send(WatcherExchange *x, const Message *m) {
        /* Also once the exchange is over: a last word (an abort) before
         * hanging up. */
        if (x->conn)
                return conn_send(x->conn, m);
        if (x->done)
                return -ECONNRESET;
        message_done(&x->queued);
        x->queued.type = m->type;
        return message_copy_fields(&x->queued, m, ~UINT64_C(0));
}

WatcherExchange *watcher_exchange_free(WatcherExchange *x) {
        if (!x)
                return NULL;
        conn_free(x->conn);
        sd_event_source_disable_unref(x->retry);
        sd_event_source_disable_unref(x->timer);
        safe_close(x->pass_fd);
        message_done(&x->request);
        message_done(&x->queued);
        free(x->watch_dir);
        return mfree(x);
}
