/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Holding the frozen process: requests, stop signals, its maximum frozen
 * time, and its death. */

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "memcr-ids.h"
#include "protocol.h"
#include "tracee.h"
#include "watch-hold.h"
#include "watch-loop.h"
#include "watch-restore.h"
#include "watch-stream.h"

enum {
        HOLD_PIDFD,
        HOLD_SIGNALS,
        HOLD_TIMER,
        _HOLD_FDS,
};

/* Every thread is held in a stop, so only SIGKILL can have made one exit.
 * Its exit is ours (the tracer's) to collect: until we do, the process stays
 * a zombie and its pidfd says nothing. Peek without collecting. */
bool watch_target_dying(Watch *w) {
        siginfo_t si = {};

        if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT | __WALL) >= 0 && si.si_pid > 0 &&
            (si.si_code == CLD_EXITED || si.si_code == CLD_KILLED || si.si_code == CLD_DUMPED))
                return true;
        return w->frozen && w->frozen->tracee && tracee_is_dead(w->frozen->tracee);
}

int watch_give_back(Watch *w, int error, const char *what) {
        char why[256], text[384];

        snprintf(why, sizeof(why), "the watcher could not hold it: %s: %s", what, strerror(-error));
        snprintf(text, sizeof(text), "cannot hold the frozen process; restoring it: process %i (%s), %s: %s", w->pid,
                 w->comm, what, strerror(-error));
        log_struct_errno(LOG_ERR, error, text, LOG_FIELD("MEMCR_PID", "%i", w->pid),
                         LOG_FIELD("MEMCR_OP", "%s", "hold"), LOG_FIELD("MEMCR_REASON", "%s", why),
                         LOG_FIELD("MEMCR_CALLER_UID", "%u", w->caller_uid),
                         LOG_FIELD("MEMCR_WATCHER_PID", "%i", (int) getpid()), NULL);
        return watch_restore(w, -EBADF, why, NULL);
}

static void hold_on_ready(Watch *w, WatchLoop *loop, unsigned ready) {
        char text[256];

        if ((ready & (1u << HOLD_SIGNALS)) && watch_read_signals(loop->fds[HOLD_SIGNALS]) && !watch_target_dying(w)) {
                watch_loop_exit(loop, watch_restore(w, -EBADF, "stop requested", NULL));
                return;
        }
        if ((ready & (1u << HOLD_PIDFD)) || watch_target_dying(w)) {
                snprintf(text, sizeof(text),
                         "frozen process %i (%s) was killed while frozen (by SIGKILL: nothing else ends a held "
                         "process); its dump is dropped",
                         w->pid, w->comm);
                log_struct(LOG_ERR, text, MESSAGE_ID(MEMCR_MESSAGE_TARGET_EXITED), LOG_FIELD("MEMCR_PID", "%i", w->pid),
                           LOG_FIELD("MEMCR_OP", "%s", "hold"), LOG_FIELD("MEMCR_RESULT", "%s", memcr_result_to_string(memcr_result_from_errno(-ESRCH))),
                           LOG_FIELD("MEMCR_REASON", "%s", "killed"), LOG_FIELD("MEMCR_CALLER_UID", "%u", w->caller_uid),
                           LOG_FIELD("MEMCR_WATCHER_PID", "%i", (int) getpid()), NULL);
                /* Collects its threads (the fail-safe kill finds it dead already). */
                w->frozen = frozen_free(w->frozen);
                watch_loop_exit(loop, -ESRCH);
                return;
        }
        if (ready & (1u << HOLD_TIMER)) {
                log_info("process %i (%s) has been frozen for %" PRIu64 " s, its maximum frozen time; restoring it",
                         w->pid, w->comm, w->max_frozen_sec);
                watch_loop_exit(loop, watch_restore(w, -EBADF, "maximum frozen time reached", NULL));
        }
}

static void hold_on_request(Watch *w, WatchLoop *loop, WatchRequest *req) {
        const Message *m = &req->message;
        uint32_t flags;
        bool lazy;
        int r;

        if (req->error < 0)
                return;
        switch (m->type) {
        case MSG_STATUS:
        case MSG_LIST:
                watch_reply(req->fd, MEMCR_OK, 0, NULL, w, true);
                break;
        case MSG_RESTORE:
                flags = MESSAGE_HAS(m, TAG_FLAGS) ? m->flags : 0;
                lazy = (flags & REQUEST_FLAG_LAZY) || (w->lazy_default && !(flags & REQUEST_FLAG_EAGER));
                message_done(&req->message);
                r = lazy ? watch_restore_lazy(w, req->fd) : watch_restore(w, req->fd, "requested", NULL);
                watch_loop_exit(loop, r);
                break;
        case MSG_CHECKPOINT:
                watch_reply(req->fd, MEMCR_ERR_ALREADY_FROZEN, EALREADY, "already frozen", w, true);
                break;
        default:
                watch_reply(req->fd, MEMCR_ERR_INVALID, EINVAL, "not a watcher request", NULL, false);
        }
}

int watch_hold(Watch *w) {
        _cleanup_close_ int sigfd = watch_open_signalfd(), timerfd = -EBADF;
        int r;

        if (sigfd < 0)
                return watch_give_back(w, sigfd, "signalfd");
        timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
        if (timerfd < 0)
                return watch_give_back(w, -errno, "timerfd_create");
        if (w->max_frozen_sec > 0) {
                /* At most MEMCR_MAX_FROZEN_SEC (the job was checked): fits. */
                struct itimerspec its = { .it_value.tv_sec = (time_t) MIN(w->max_frozen_sec, MEMCR_MAX_FROZEN_SEC) };
                if (timerfd_settime(timerfd, 0, &its, NULL) < 0)
                        return watch_give_back(w, -errno, "timerfd_settime for the maximum frozen time");
        }

        WatchLoop loop = {
                .fds = { [HOLD_PIDFD] = w->pidfd, [HOLD_SIGNALS] = sigfd, [HOLD_TIMER] = timerfd },
                .n_fds = _HOLD_FDS,
                .deadline = USEC_INFINITY,
                .on_ready = hold_on_ready,
                .on_request = hold_on_request,
        };
        r = watch_loop_run(w, &loop);
        if (r < 0)
                return watch_give_back(w, r, "poll");
        return loop.result;
}
