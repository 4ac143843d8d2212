/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Starting a watcher for one target. Without systemd memcrd forks it (twice,
 * so it is nobody's child and survives memcrd); under systemd it is the unit
 * memcr-watch@PID.service. Either way the watcher ends up listening on
 * WATCH_DIR/PID.sock and the callback fires; memcrd then connects and hands
 * over the job.
 */

#include <sys/types.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

typedef enum WatcherMode {
        WATCHER_MODE_AUTO,
        WATCHER_MODE_FORK,
        WATCHER_MODE_SYSTEMD,
        _WATCHER_MODE_MAX,
} WatcherMode;

typedef void (*watcher_ready_t)(int error, void *userdata);

typedef struct WatcherLaunch WatcherLaunch;

typedef struct WatcherConfig {
        WatcherMode mode;
        const char *binary;    /* fork mode */
        const char *watch_dir;
        sd_bus *bus;           /* systemd mode */
} WatcherConfig;

int watcher_launch(sd_event *e, const WatcherConfig *cfg, pid_t target, watcher_ready_t cb, void *userdata,
                   WatcherLaunch **ret);
WatcherLaunch *watcher_launch_free(WatcherLaunch *l);

/* Ask the watcher's unit to stop (systemd mode); no-op in fork mode. */
int watcher_stop_unit(const WatcherConfig *cfg, pid_t target);

const char *watcher_mode_to_string(WatcherMode m);
int watcher_mode_from_string(const char *s);
