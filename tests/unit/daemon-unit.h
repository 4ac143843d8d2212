/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * memcrd's parts on a real event loop, against real processes and fake
 * watchers (daemon-util.h) at the other end of real sockets.
 */

#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon-util.h"
#include "macro.h"
#include "manager.h"
#include "pidfd-util.h"
#include "time-util.h"

typedef struct UnitDaemon {
        Manager m;
        char dir[64];
        pid_t children[8];
        size_t n_children;
} UnitDaemon;

static inline void unit_daemon_setup(UnitDaemon *d) {
        *d = (UnitDaemon) { .m.listen_fd = -EBADF };
        strcpy(d->dir, "/tmp/memcrd-unit-XXXXXX");
        cr_assert_not_null(mkdtemp(d->dir));
        cr_assert_eq(sd_event_new(&d->m.event), 0);
        d->m.watch_dir = strdup(d->dir);
        d->m.state_dir = strdup(d->dir);
        cr_assert(d->m.watch_dir && d->m.state_dir);
        d->m.registry.event = d->m.event;
        d->m.watcher_timeout = 300 * USEC_PER_MSEC;
        d->m.max_frozen = d->m.max_frozen_per_user = 16;
        d->m.max_clients = d->m.max_clients_per_user = 16;
        d->m.watcher.mode = WATCHER_MODE_FORK;
        d->m.watcher.watch_dir = d->m.watch_dir;
        d->m.watcher.nofile = (struct rlimit) { 1024, 1024 };
}

/* A process that only waits to be killed (a target, or a watcher stand-in). */
static inline pid_t unit_daemon_child(UnitDaemon *d) {
        pid_t pid = fork();

        cr_assert_geq(pid, 0);
        if (pid == 0) {
                for (;;)
                        pause();
        }
        cr_assert_lt(d->n_children, sizeof(d->children) / sizeof(d->children[0]));
        d->children[d->n_children++] = pid;
        return pid;
}

/* Remember a process (a fake watcher) to kill at the end. */
static inline pid_t unit_daemon_adopt(UnitDaemon *d, pid_t pid) {
        cr_assert_gt(pid, 0);
        d->children[d->n_children++] = pid;
        return pid;
}

static inline void unit_daemon_teardown(UnitDaemon *d) {
        char cmd[128];

        registry_clear(&d->m.registry);
        for (size_t i = 0; i < d->n_children; i++) {
                kill(d->children[i], SIGKILL);
                waitpid(d->children[i], NULL, 0);
        }
        sd_event_unref(d->m.event);
        free(d->m.watch_dir);
        free(d->m.state_dir);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d->dir);
        (void) system(cmd);
}

/* Run the loop until *done or max passed; the time it took. */
static inline usec_t unit_daemon_run_until(UnitDaemon *d, const bool *done, usec_t max) {
        usec_t start = now_usec(CLOCK_MONOTONIC);

        while (!*done && now_usec(CLOCK_MONOTONIC) < start + max)
                cr_assert_geq(sd_event_run(d->m.event, 10 * USEC_PER_MSEC), 0);
        return now_usec(CLOCK_MONOTONIC) - start;
}
