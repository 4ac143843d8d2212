/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Starting a watcher for one target. Without systemd memcrd forks it (twice,
 * so it is nobody's child and survives memcrd); under systemd it is the unit
 * memcr-watch@PID.service. Where systemd does not start that unit for
 * memcrd's user (it asks polkit, which may be missing or masked), the
 * watcher is started through memcr-watch.socket instead: a socket only
 * memcrd's user may connect to, each connection of which systemd answers with
 * a watcher unit of its own (Accept=yes), no polkit involved. Either way the
 * watcher ends up listening on WATCH_DIR/PID.sock and the callback fires
 * (fork and socket mode: the watcher says so; systemd mode: the unit, which
 * is Type=notify, has started); memcrd then connects and hands over the job.
 */

#include <stdbool.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "macro.h"

typedef enum WatcherMode {
        WATCHER_MODE_AUTO,
        WATCHER_MODE_FORK,
        WATCHER_MODE_SYSTEMD,
        WATCHER_MODE_SOCKET,
        _WATCHER_MODE_MAX,
} WatcherMode;

/* error < 0: what went wrong, in words (never NULL then). */
typedef void (*watcher_ready_t)(int error, const char *text, void *userdata);

typedef struct WatcherLaunch WatcherLaunch;

typedef struct WatcherConfig {
        WatcherMode mode;
        const char *binary;    /* fork mode */
        const char *watch_dir;
        const char *spawn_socket; /* socket mode, and systemd mode when StartUnit is refused */
        sd_bus *bus;           /* systemd mode */
        struct rlimit nofile;  /* RLIMIT_NOFILE for watchers (fork mode): memcrd's, before it raised its own */
        /* systemd mode: StartUnit was refused once; use the spawn socket. */
        bool start_unit_refused;
        bool subscribed;       /* systemd mode: to systemd's signals (JobRemoved) */
} WatcherConfig;

int watcher_launch(sd_event *e, WatcherConfig *cfg, pid_t target, watcher_ready_t cb, void *userdata,
                   WatcherLaunch **ret);
WatcherLaunch *watcher_launch_free(WatcherLaunch *l);
DEFINE_TRIVIAL_CLEANUP_FUNC(WatcherLaunch *, watcher_launch_free);

const char *watcher_mode_to_string(WatcherMode m);
int watcher_mode_from_string(const char *s);
