/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "alloc-util.h"
#include "bus-util.h"
#include "log.h"
#include "macro.h"
#include "pidfd-util.h"
#include "socket-util.h"
#include "string-table.h"
#include "watcher-launch.h"

#define READY_TIMEOUT (10 * USEC_PER_SEC)

struct WatcherLaunch {
        WatcherConfig *cfg;
        pid_t target;
        int pipe_fd;             /* fork mode: a pipe; socket mode: the connection to the spawn socket */
        sd_event_source *pipe_source;
        pid_t child;             /* fork mode: the intermediate child, until reaped */
        int child_pidfd;
        sd_event_source *child_source;
        sd_event_source *timer;
        sd_bus_slot *slot;       /* systemd mode: StartUnit */
        sd_bus_slot *match;      /* systemd mode: JobRemoved of the unit */
        char unit[64];           /* systemd mode: memcr-watch@PID.service */
        char *job;               /* systemd mode: the start job's object path */
        char *early_job, *early_result; /* a job of the unit that ended before StartUnit answered */
        char *unit_error;        /* systemd mode: why StartUnit failed, before the spawn socket was tried */
        watcher_ready_t cb;
        void *userdata;
        bool done;
};

static const char *const watcher_mode_table[_WATCHER_MODE_MAX] = {
        [WATCHER_MODE_AUTO] = "auto",
        [WATCHER_MODE_FORK] = "fork",
        [WATCHER_MODE_SYSTEMD] = "systemd",
        [WATCHER_MODE_SOCKET] = "socket",
};

DEFINE_STRING_TABLE_TO_STRING(watcher_mode, WatcherMode, NULL);
DEFINE_STRING_TABLE_FROM_STRING(watcher_mode);

static void finish(WatcherLaunch *l, int error, const char *text) {
        char buf[768];

        if (l->done)
                return;
        l->done = true;
        l->pipe_source = sd_event_source_disable_unref(l->pipe_source);
        l->timer = sd_event_source_disable_unref(l->timer);
        l->slot = sd_bus_slot_unref(l->slot);
        l->match = sd_bus_slot_unref(l->match);
        if (error < 0 && !text)
                text = strerror(-error);
        if (error < 0 && l->unit_error) {
                /* Both ways failed: say both. */
                snprintf(buf, sizeof(buf), "%s; and through %s: %s", l->unit_error, l->cfg->spawn_socket, text);
                text = buf;
        }
        l->cb(error, text, l->userdata);
}

static int on_pipe(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        WatcherLaunch *l = userdata;
        char c = 0;
        ssize_t k = read(fd, &c, 1);

        if (k < 0 && (errno == EAGAIN || errno == EINTR))
                return 0;
        if (k == 1 && c == 'R')
                finish(l, 0, NULL);
        else
                finish(l, -EIO, "the watcher exited before it was ready (see its log)");
        return 0;
}

static int on_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        WatcherLaunch *l = userdata;
        finish(l, -ETIMEDOUT, "the watcher did not get ready within 10 s");
        return 0;
}

static void reap_child(WatcherLaunch *l, int options) {
        int st = 0;

        if (l->child <= 0 || waitpid(l->child, &st, options) != l->child)
                return;
        l->child = 0;
        l->child_source = sd_event_source_disable_unref(l->child_source);
        l->child_pidfd = safe_close(l->child_pidfd);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
                finish(l, -ECHILD, NULL);
}

/* The intermediate child exits right away; reaped when it has. */
static int on_child(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        reap_child(userdata, WNOHANG);
        return 0;
}

static int launch_fork(sd_event *e, const WatcherConfig *cfg, WatcherLaunch *l) {
        int p[2];
        pid_t child;
        int r;

        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;

        child = fork();
        if (child < 0) {
                safe_close(p[0]);
                safe_close(p[1]);
                return -errno;
        }
        if (child == 0) {
                char pid_arg[32], fd_arg[32], dir_arg[4096];
                sigset_t none;
                pid_t g;

                /* Detach twice: the watcher is nobody's child and outlives us. */
                (void) setsid();
                g = fork();
                if (g != 0)
                        _exit(g < 0 ? EXIT_FAILURE : EXIT_SUCCESS);

                sigemptyset(&none);
                sigprocmask(SIG_SETMASK, &none, NULL);
                (void) setrlimit(RLIMIT_NOFILE, &cfg->nofile);
                for (int sig = 1; sig < _NSIG; sig++)
                        (void) signal(sig, SIG_DFL);
                if (fcntl(p[1], F_SETFD, 0) < 0)
                        _exit(EXIT_FAILURE);
                (void) syscall(SYS_close_range, 3U, (unsigned) p[1] - 1, 0U);
                (void) syscall(SYS_close_range, (unsigned) p[1] + 1, ~0U, 0U);
                snprintf(pid_arg, sizeof(pid_arg), "--pid=%i", l->target);
                snprintf(fd_arg, sizeof(fd_arg), "--ready-fd=%i", p[1]);
                snprintf(dir_arg, sizeof(dir_arg), "--runtime-dir=%s", cfg->watch_dir);
                execl(cfg->binary, cfg->binary, pid_arg, dir_arg, fd_arg, (char *) NULL);
                _exit(127);
        }
        safe_close(p[1]);
        l->child = child;
        l->pipe_fd = p[0];
        l->child_pidfd = pidfd_open_pid(child);
        if (l->child_pidfd < 0)
                return l->child_pidfd; /* reaped by watcher_launch_free() */
        r = sd_event_add_io(e, &l->child_source, l->child_pidfd, EPOLLIN, on_child, l);
        if (r < 0)
                return r;
        return sd_event_add_io(e, &l->pipe_source, l->pipe_fd, EPOLLIN, on_pipe, l);
}

/* One connection to the spawn socket is one watcher: systemd starts a unit
 * for it (memcr-watch.socket, Accept=yes) and passes it the connection, on
 * which it is told its PID and says when it is ready. */
static int launch_socket(sd_event *e, const WatcherConfig *cfg, WatcherLaunch *l) {
        _cleanup_close_ int fd = -EBADF;
        struct ucred u;
        char line[32];
        int n, r;

        if (!cfg->spawn_socket)
                return -ENOENT;
        fd = unix_connect(cfg->spawn_socket, SOCK_NONBLOCK);
        if (fd < 0)
                return fd;
        /* Served by systemd (root), or by whoever memcrd runs as. */
        r = getpeercred(fd, &u);
        if (r < 0)
                return r;
        if (u.uid != 0 && u.uid != getuid())
                return -EPERM;
        n = snprintf(line, sizeof(line), "%i\n", l->target);
        if (send(fd, line, (size_t) n, MSG_NOSIGNAL | MSG_DONTWAIT) != n)
                return errno > 0 ? -errno : -EIO;
        r = sd_event_add_io(e, &l->pipe_source, fd, EPOLLIN, on_pipe, l);
        if (r < 0)
                return r;
        l->pipe_fd = TAKE_FD(fd);
        return 0;
}

/* The unit is Type=notify: its start job is done once the watcher said
 * READY=1, which it does when it listens on its socket. */
static void job_finished(WatcherLaunch *l, const char *result) {
        char text[256];

        if (streq(result, "done")) {
                finish(l, 0, NULL);
                return;
        }
        snprintf(text, sizeof(text), "memcr-watch@%i.service did not start (job result: %s; see its log)", l->target,
                 result);
        finish(l, -EIO, text);
}

static int on_job_removed(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        WatcherLaunch *l = userdata;
        const char *path, *unit, *result;
        uint32_t id;

        if (sd_bus_message_read(m, "uoss", &id, &path, &unit, &result) < 0)
                return 0;
        if (!streq(unit, l->unit))
                return 0;
        if (!l->job) {
                /* StartUnit has not answered yet: which job is ours is not
                 * known; keep it for then. */
                free(l->early_job);
                free(l->early_result);
                l->early_job = strdup(path);
                l->early_result = strdup(result);
                return 0;
        }
        if (streq(path, l->job))
                job_finished(l, result);
        return 0;
}

static int on_start_unit(sd_bus_message *m, void *userdata, sd_bus_error *error);

static int launch_unit(sd_event *e, WatcherConfig *cfg, WatcherLaunch *l) {
        int r;

        snprintf(l->unit, sizeof(l->unit), "memcr-watch@%i.service", l->target);
        /* (Not matched on the unit's name, arg2: sd-bus does not match an
         * argument that follows one that is not a string.) */
        r = sd_bus_match_signal_async(cfg->bus, &l->match, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                                      "org.freedesktop.systemd1.Manager", "JobRemoved", on_job_removed, NULL, l);
        if (r < 0)
                return r;
        /* systemd sends JobRemoved to subscribers only. */
        if (!l->cfg->subscribed) {
                r = sd_bus_call_method_async(cfg->bus, NULL, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                                             "org.freedesktop.systemd1.Manager", "Subscribe", NULL, NULL, NULL);
                if (r < 0)
                        return r;
                l->cfg->subscribed = true;
        }
        /* StartUnit (not a transient unit): polkit sees the unit name, so the
         * memcr user can be allowed to start these units and nothing else. */
        return sd_bus_call_method_async(cfg->bus, &l->slot, "org.freedesktop.systemd1",
                                        "/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager",
                                        "StartUnit", on_start_unit, l, "ss", l->unit, "replace");
}

/* systemd asks polkit whether memcrd's user may start the unit: without
 * polkit (not installed, masked, failed) it may not. The spawn socket needs
 * nobody's consent. */
static void start_unit_refused(WatcherLaunch *l, const sd_bus_error *e) {
        char what[384], text[512];
        int r;

        l->match = sd_bus_slot_unref(l->match);
        bus_error_describe(e, what, sizeof(what));
        snprintf(text, sizeof(text), "systemd did not start memcr-watch@%i.service for memcrd (%s)", l->target, what);
        l->unit_error = strdup(text);
        if (!l->unit_error) {
                finish(l, -ENOMEM, NULL);
                return;
        }
        if (!l->cfg->spawn_socket) {
                finish(l, -EIO, text);
                return;
        }
        log_notice("%s; starting watchers through %s from now on", text, l->cfg->spawn_socket);
        l->cfg->start_unit_refused = true;
        r = launch_socket(sd_event_source_get_event(l->timer), l->cfg, l);
        if (r < 0)
                finish(l, r, strerror(-r));
}

static int on_start_unit(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        WatcherLaunch *l = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(m);
        const char *job;

        l->slot = sd_bus_slot_unref(l->slot);
        if (e) {
                start_unit_refused(l, e);
                return 0;
        }
        if (sd_bus_message_read(m, "o", &job) < 0 || !(l->job = strdup(job))) {
                finish(l, -EBADMSG, "systemd's answer to StartUnit could not be read");
                return 0;
        }
        if (l->early_job && streq(l->early_job, l->job))
                job_finished(l, l->early_result ?: "");
        return 0;
}

int watcher_launch(sd_event *e, WatcherConfig *cfg, pid_t target, watcher_ready_t cb, void *userdata,
                   WatcherLaunch **ret) {
        _cleanup_(watcher_launch_freep) WatcherLaunch *l = NULL;
        int r;

        l = new(WatcherLaunch, 1);
        if (!l)
                return -ENOMEM;
        *l = (WatcherLaunch) { .cfg = cfg, .target = target, .cb = cb, .userdata = userdata, .pipe_fd = -EBADF,
                               .child_pidfd = -EBADF };

        r = sd_event_add_time_relative(e, &l->timer, CLOCK_MONOTONIC, READY_TIMEOUT, 0, on_timeout, l);
        if (r >= 0)
                switch (cfg->mode) {
                case WATCHER_MODE_SYSTEMD:
                        r = cfg->start_unit_refused && cfg->spawn_socket ? launch_socket(e, cfg, l)
                                                                         : launch_unit(e, cfg, l);
                        break;
                case WATCHER_MODE_SOCKET:
                        r = launch_socket(e, cfg, l);
                        break;
                default:
                        r = launch_fork(e, cfg, l);
                }
        if (r < 0)
                return r;
        *ret = TAKE_PTR(l);
        return 0;
}

WatcherLaunch *watcher_launch_free(WatcherLaunch *l) {
        if (!l)
                return NULL;
        sd_event_source_disable_unref(l->pipe_source);
        sd_event_source_disable_unref(l->child_source);
        if (l->child > 0) {
                /* Given up before it exited by itself: end it, so that the
                 * wait is over at once. */
                (void) kill(l->child, SIGKILL);
                (void) waitpid(l->child, NULL, 0);
        }
        safe_close(l->child_pidfd);
        sd_event_source_disable_unref(l->timer);
        sd_bus_slot_unref(l->slot);
        sd_bus_slot_unref(l->match);
        safe_close(l->pipe_fd);
        free(l->job);
        free(l->early_job);
        free(l->early_result);
        free(l->unit_error);
        return mfree(l);
}
