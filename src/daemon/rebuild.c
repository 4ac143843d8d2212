/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "list.h"
#include "log.h"
#include "macro.h"
#include "memcr-ids.h"
#include "pidfd-util.h"
#include "proc-creds.h"
#include "rebuild.h"
#include "watcher-exchange.h"
#include "watcher-socket.h"

struct Rebuild {
        Manager *manager;
        pid_t pid;
        WatcherExchange *exchange;
        Rebuild *next;
};

Rebuild *rebuild_free(Rebuild *r) {
        Manager *m;

        if (!r)
                return NULL;
        m = r->manager;
        LIST_REMOVE_COUNTED(next, m->rebuilds, m->n_rebuilds, r);
        registry_op_done(&m->registry, r->pid, r);
        watcher_exchange_free(r->exchange);
        return mfree(r);
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
 * out takes it along (PTRACE_O_EXITKILL). The socket is removed. */
static void report_stale_watcher(Manager *m, pid_t pid) {
        _cleanup_close_ int pidfd = pidfd_open_pid(pid);
        char path[4096], text[384];
        struct stat st;
        usec_t created = 0;

        if (watcher_socket_path(m->watch_dir, pid, path, sizeof(path)) < 0)
                return;
        if (lstat(path, &st) >= 0)
                created = (usec_t) st.st_mtim.tv_sec * USEC_PER_SEC + (usec_t) st.st_mtim.tv_nsec / 1000;
        (void) unlink(path);
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

static void found(Manager *m, Entry *e, const Message *reply) {
        e->op = NULL;
        e->rebuilding = false;
        e->state = reply->state && streq(reply->state, "streaming") ? ENTRY_STREAMING : ENTRY_FROZEN;
        if (MESSAGE_HAS(reply, TAG_CALLER_UID))
                e->caller_uid = reply->caller_uid;
        (void) entry_set_info(e, reply);
        if (MESSAGE_HAS(reply, TAG_WATCHER_PID))
                (void) entry_watch_watcher(e, (pid_t) reply->watcher_pid);
        log_info("found %i frozen by an earlier memcrd (watcher %u)", e->pid, reply->watcher_pid);
}

static void on_answer(WatcherExchange *x, Message *reply, int error, void *userdata) {
        Rebuild *r = userdata;
        Manager *m = r->manager;
        Entry *e = registry_find(&m->registry, r->pid);

        if (reply && reply->result == MEMCR_OK && e) {
                found(m, e, reply);
                rebuild_free(r);
                return;
        }
        if (error == -ECONNRESET) {
                /* Asked what it holds, it left without answering: it had just
                 * finished (a restore under way when we started), or died. */
                (void) watcher_socket_remove_stale(m->watch_dir, r->pid);
                log_info("the watcher of %i went away without answering; forgetting %i", r->pid, r->pid);
        } else if (error == -ECONNREFUSED)
                report_stale_watcher(m, r->pid);
        else if (error == -ETIMEDOUT)
                log_warning("the watcher of %i did not say within %g s what it holds; forgetting %i (if it holds "
                            "%i, it keeps it)",
                            r->pid, (double) m->watcher_timeout / USEC_PER_SEC, r->pid, r->pid);
        else if (error < 0)
                log_warning_errno(error, "cannot ask the watcher of %i what it holds: %m; forgetting %i", r->pid,
                                  r->pid);
        if (e)
                registry_remove(&m->registry, e);
        rebuild_free(r);
}

static const WatcherExchangeCallbacks rebuild_callbacks = {
        .on_done = on_answer,
};

/* A watcher that holds its process answers at once; one still
 * checkpointing answers when done. */
static int rebuild_one(Manager *m, pid_t pid) {
        _cleanup_close_ int pidfd = pidfd_open_pid(pid);
        Message req = { .type = MSG_STATUS };
        Rebuild *r;
        Entry *e;
        int k;

        if (pidfd < 0) {
                if (!watcher_socket_served(m->watch_dir, pid))
                        report_stale_watcher(m, pid);
                return 0;
        }
        r = calloc(1, sizeof(Rebuild));
        if (!r)
                return -ENOMEM;
        r->manager = m;
        r->pid = pid;
        LIST_PREPEND(next, m->rebuilds, r);
        m->n_rebuilds++;
        k = registry_add(&m->registry, pid, pidfd, ENTRY_CHECKPOINTING, (uid_t) -1, &e);
        if (k < 0) {
                rebuild_free(r);
                return k;
        }
        e->op = r;
        e->rebuilding = true;
        message_set_u32(&req, TAG_PID, (uint32_t) pid);
        k = watcher_exchange_start(m->event, m->watch_dir, pid, &req, -EBADF, m->watcher_timeout,
                                   &rebuild_callbacks, r, &r->exchange);
        message_done(&req);
        if (k == -ECONNREFUSED)
                report_stale_watcher(m, pid);
        if (k < 0) {
                registry_remove(&m->registry, e);
                rebuild_free(r);
        }
        return 0;
}

int rebuild_start(Manager *m) {
        DIR *d = opendir(m->watch_dir);
        struct dirent *de;

        if (!d)
                return log_error_errno(-errno, "cannot open %s: %m", m->watch_dir);
        while ((de = readdir(d))) {
                char *end;
                long pid = strtol(de->d_name, &end, 10);

                if (pid <= 0 || pid > INT32_MAX || !streq(end, ".sock") || registry_find(&m->registry, (pid_t) pid))
                        continue;
                if (rebuild_one(m, (pid_t) pid) < 0)
                        break;
        }
        closedir(d);
        return 0;
}
