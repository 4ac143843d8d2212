/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * One exchange with a watcher, on the event loop: connect to its socket
 * (retried briefly while it is not listening yet), send one request (with a
 * descriptor, for a checkpoint job), pass on its progress, deliver its
 * answer. Nothing waits: the time limit is a timer, and a watcher that never
 * answers ends its exchange with -ETIMEDOUT, whatever else is going on.
 */

#include <stdbool.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "macro.h"
#include "protocol.h"
#include "time-util.h"

typedef struct WatcherExchange WatcherExchange;

typedef struct WatcherExchangeCallbacks {
        /* A MSG_PROGRESS from the watcher (optional). */
        void (*on_progress)(WatcherExchange *x, Message *progress, void *userdata);
        /* The end, called once: the watcher's answer (reply), or why there is
         * none (error): -ENOENT/-ECONNREFUSED nobody serves the socket,
         * -ECONNRESET the watcher closed the connection, -ETIMEDOUT no answer
         * within the time limit, or another failure. The exchange may be
         * freed from here. */
        void (*on_done)(WatcherExchange *x, Message *reply, int error, void *userdata);
} WatcherExchangeCallbacks;

/* pass_fd: a descriptor sent along with the request (or -EBADF). */
int watcher_exchange_start(sd_event *e, const char *watch_dir, pid_t pid, const Message *request, int pass_fd,
                           usec_t timeout, const WatcherExchangeCallbacks *cb, void *userdata,
                           WatcherExchange **ret);
/* Another message for the watcher (an abort): sent once connected; after
 * the end, sent if the connection is still there. */
int watcher_exchange_send(WatcherExchange *x, const Message *m);
WatcherExchange *watcher_exchange_free(WatcherExchange *x);
DEFINE_TRIVIAL_CLEANUP_FUNC(WatcherExchange *, watcher_exchange_free);
