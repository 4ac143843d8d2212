/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "socket-util.h"
#include "watch-loop.h"

int watch_peer_allowed(int fd) {
        struct ucred u;
        int r;

        r = getpeercred(fd, &u);
        if (r < 0)
                return r;
        if (u.uid != getuid() && u.uid != 0)
                return log_warning_errno(-EPERM, "refusing connection from uid %u pid %i", u.uid, u.pid);
        return 0;
}

int watch_open_signalfd(void) {
        sigset_t mask;
        int fd;

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGCHLD);
        fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        return fd < 0 ? -errno : fd;
}

bool watch_read_signals(int sigfd) {
        struct signalfd_siginfo si;
        bool stop = false;

        while (read(sigfd, &si, sizeof(si)) == (ssize_t) sizeof(si))
                if (si.ssi_signo != SIGCHLD)
                        stop = true;
        return stop;
}

void watch_loop_exit(WatchLoop *loop, int result) {
        loop->done = true;
        loop->result = result;
}

static void request_done(WatchRequest *req) {
        close_many(req->fds, req->n_fds);
        message_done(&req->message);
        req->fd = safe_close(req->fd);
}

/* Takes the next connection on our socket, from a peer that may talk to us,
 * with time limits on its request and our answer; reads its request and
 * hands it to the loop's handler. */
static void serve(Watch *w, WatchLoop *loop) {
        struct timeval tv = { .tv_sec = REQUEST_TIMEOUT_SEC };
        _cleanup_(request_done) WatchRequest req = { .fd = -EBADF, .fds = { -EBADF } };

        req.fd = accept4(w->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (req.fd < 0 || watch_peer_allowed(req.fd) < 0)
                return;
        (void) setsockopt(req.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        (void) setsockopt(req.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        req.error = message_recv(req.fd, &req.message, req.fds, loop->request_fds, &req.n_fds);
        /* A connection that closed without a request is nothing. */
        if (req.error == -ECONNRESET)
                return;
        req.error = MIN(req.error, 0);
        loop->on_request(w, loop, &req);
}

static int wait_timeout(const WatchLoop *loop) {
        usec_t now;

        if (loop->deadline == USEC_INFINITY)
                return -1;
        now = now_usec(CLOCK_MONOTONIC);
        if (now >= loop->deadline)
                return -ETIMEDOUT;
        return (int) MIN((loop->deadline - now) / USEC_PER_MSEC + 1, (usec_t) INT32_MAX);
}

int watch_loop_run(Watch *w, WatchLoop *loop) {
        assert(loop->n_fds <= WATCH_LOOP_MAX_FDS && loop->request_fds <= 1);

        loop->done = false;
        for (;;) {
                struct pollfd p[WATCH_LOOP_MAX_FDS + 1] = { { .fd = w->listen_fd, .events = POLLIN } };
                unsigned ready = 0;
                int timeout, r;

                if (loop->prepare) {
                        loop->prepare(w, loop);
                        if (loop->done)
                                return 0;
                }
                timeout = wait_timeout(loop);
                if (timeout == -ETIMEDOUT)
                        return timeout;
                for (size_t i = 0; i < loop->n_fds; i++)
                        p[i + 1] = (struct pollfd) { .fd = loop->fds[i], .events = POLLIN };
                r = poll(p, loop->n_fds + 1, timeout);
                if (r < 0 && errno != EINTR)
                        return -errno;
                if (r <= 0)
                        continue;
                for (size_t i = 0; i < loop->n_fds; i++)
                        if (p[i + 1].revents)
                                ready |= 1u << i;
                if (loop->on_ready) {
                        loop->on_ready(w, loop, ready);
                        if (loop->done)
                                return 0;
                }
                if (p[0].revents) {
                        serve(w, loop);
                        if (loop->done)
                                return 0;
                }
        }
}
