/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The watcher's one event loop. Whatever phase it is in (waiting for its
 * job, holding the process, streaming its memory back), it waits on its
 * restore socket and on a few descriptors of that phase (a signalfd, the
 * target's pidfd, a timer, the lazy restore's descriptor). A connection from
 * a peer that may talk to it is accepted, its request read and handed to the
 * phase's handler.
 */

#include <stdbool.h>
#include <stddef.h>

#include "protocol.h"
#include "time-util.h"
#include "watch.h"

#define WATCH_LOOP_MAX_FDS 3

/* A request on the restore socket. A handler may take the connection, the
 * message or the descriptors (leaving -EBADF or an empty message behind);
 * what it leaves is closed and freed after it. */
typedef struct WatchRequest {
        int fd;
        int error; /* why no request could be read from the connection, or 0 */
        Message message;
        int fds[1];
        size_t n_fds;
} WatchRequest;

typedef struct WatchLoop WatchLoop;
struct WatchLoop {
        int fds[WATCH_LOOP_MAX_FDS]; /* waited on besides the socket (negative: ignored) */
        size_t n_fds;
        size_t request_fds; /* how many descriptors a request may carry (0 or 1) */
        usec_t deadline;    /* CLOCK_MONOTONIC, USEC_INFINITY for none */
        void *userdata;
        /* Before each wait; may be NULL. */
        void (*prepare)(Watch *w, WatchLoop *loop);
        /* After each wait, before a request is served: bit i of ready is
         * set if fds[i] is readable. */
        void (*on_ready)(Watch *w, WatchLoop *loop, unsigned ready);
        void (*on_request)(Watch *w, WatchLoop *loop, WatchRequest *req);
        /* set by watch_loop_exit() */
        bool done;
        int result;
};

/* Ends the loop once the handler returns; result is for its caller. */
void watch_loop_exit(WatchLoop *loop, int result);

/* Runs until a handler calls watch_loop_exit() (then 0, and the handler's
 * result in loop->result), the deadline passes (-ETIMEDOUT), or poll()
 * fails (-errno). */
int watch_loop_run(Watch *w, WatchLoop *loop);

/* Only memcrd (our own user) or root may talk to a watcher. */
int watch_peer_allowed(int fd);

/* The signals the loop takes from a signalfd (SIGTERM, SIGINT, and SIGCHLD,
 * with which the kernel announces a traced thread's exit; main() blocks
 * them). */
int watch_open_signalfd(void);

/* Reads every pending signal: true if one of them asks us to stop. */
bool watch_read_signals(int sigfd);
