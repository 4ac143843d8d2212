/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "conn.h"
#include "macro.h"
#include "policy.h"
#include "registry.h"
#include "time-util.h"
#include "watcher-launch.h"

typedef struct Client Client;
typedef struct Operation Operation;
typedef struct AuthRequest AuthRequest;
typedef struct Rebuild Rebuild;

/* What the command line says. */
typedef struct ManagerConfig {
        const char *listen;
        const char *socket_group;
        mode_t socket_mode;
        const char *runtime_dir;
        const char *state_dir;
        char **dump_dirs;
        size_t n_dump_dirs;
        const char *codec;
        double idle_timeout;          /* < 0: 30 s when socket-activated, else never */
        double client_timeout;
        double connection_lifetime;
        double watcher_timeout;
        unsigned max_clients;
        unsigned max_clients_per_user;
        unsigned max_frozen;
        unsigned max_frozen_per_user;
        WatcherMode watchers;
        const char *watcher_binary;
        const char *watcher_socket;
        int polkit;                   /* < 0: when a bus exists */
        bool lazy_restore;
} ManagerConfig;

typedef struct Manager {
        sd_event *event;
        sd_bus *bus;                 /* system bus: polkit, systemd (may be NULL) */
        int listen_fd;
        sd_event_source *listen_source;
        bool socket_activated;
        char *listen_path;           /* bound by us (--listen): removed at exit */

        char *runtime_dir;
        char *watch_dir;             /* runtime_dir/watch: the watchers' sockets (0700) */
        char *state_dir;             /* default dump directory (0700) */
        char **dump_dirs;            /* every dump directory a request may name */
        size_t n_dump_dirs;
        char *default_codec;

        WatcherConfig watcher;
        char *watcher_binary;
        char *watcher_socket;
        usec_t watcher_timeout;      /* a watcher must answer a job or a question within this */

        usec_t idle_timeout;         /* 0: never exit on idle */
        sd_event_source *idle_timer;
        sd_event_source *idle_check; /* after every event: idle now? */
        bool idle;
        usec_t client_timeout;       /* a connection must send a request within this */
        usec_t connection_lifetime;  /* a connection is closed after this, between requests (0: never) */
        unsigned max_clients;        /* connections of all users but root, together */
        unsigned max_clients_per_user; /* connections of any one user, root included */
        unsigned max_frozen;         /* processes frozen for all users but root, together */
        unsigned max_frozen_per_user; /* processes frozen for any one user, root included */
        bool polkit;                 /* ask polkit when the rules do not decide */
        bool lazy_restore;           /* restore lazily unless a request says otherwise */
        bool selinux;

        Client *clients;
        unsigned n_clients;
        unsigned n_refused;          /* of them: only there to be told they are over a limit */
        sd_event_source *accept_retry; /* accepting paused: out of descriptors */
        usec_t limit_logged;         /* last refusal of a connection logged (rate limit) */
        unsigned limit_unlogged;     /* refusals since, not logged */

        /* memcr's own programs (memcrd, memcr-watch): their processes are
         * never a target, whoever asks and whatever they are doing. */
        struct {
                dev_t dev;
                ino_t ino;
        } own_binaries[8];
        size_t n_own_binaries;
        Operation *operations;
        unsigned n_operations;
        Rebuild *rebuilds;           /* watchers found at start-up, not answered yet */
        unsigned n_rebuilds;
        sd_event_source *rebuild_grace; /* until it fires, requests about frozen processes wait for them */
        Client *waiting;             /* such requests */
        Registry registry;
} Manager;

int manager_new(const ManagerConfig *cfg, Manager **ret);
Manager *manager_free(Manager *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Manager *, manager_free);
int manager_startup(Manager *m, const ManagerConfig *cfg);
int manager_run(Manager *m);

/* Has every watcher found at start-up answered (or its grace passed)? */
static inline bool manager_registry_settled(const Manager *m) {
        return m->n_rebuilds == 0 || !m->rebuild_grace;
}

/* limits.c */
/* May uid open another connection? 0, or -EUSERS with a sentence in buf. */
int limits_check_connection(Manager *m, uid_t uid, char *buf, size_t size);
/* May uid have another process frozen? 0, or -EUSERS with a sentence in buf. */
int limits_check_frozen(Manager *m, uid_t uid, char *buf, size_t size);
/* May another connection over a limit be kept until it is told so? */
bool limits_may_refuse(Manager *m);
/* Log that a limit refused a request (MEMCR_MESSAGE_LIMIT); pid 0: none. */
void limits_log(uid_t uid, pid_t caller_pid, pid_t pid, const char *limit, const char *text);
/* Descriptors the limits may need at most. */
unsigned limits_descriptors_needed(const Manager *m);
/* Is pid memcrd, a watcher, or a process running one of memcr's programs?
 * Then it is never a target; *ret_reason says which. */
bool manager_is_own_process(Manager *m, const ProcCreds *target, const char **ret_reason);
int manager_add_own_binary(Manager *m, const char *path);
