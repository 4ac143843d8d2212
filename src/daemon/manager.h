/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <sys/types.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "conn.h"
#include "policy.h"
#include "registry.h"
#include "time-util.h"
#include "watcher-launch.h"

typedef struct Client Client;
typedef struct Operation Operation;
typedef struct AuthRequest AuthRequest;

typedef struct Manager {
        sd_event *event;
        sd_bus *bus;                 /* system bus: polkit, systemd (may be NULL) */
        int listen_fd;
        sd_event_source *listen_source;
        bool socket_activated;

        char *runtime_dir;
        char *watch_dir;             /* runtime_dir/watch: the watchers' sockets (0700) */
        char *state_dir;             /* default dump directory (0700) */
        char **dump_dirs;            /* every dump directory a request may name */
        size_t n_dump_dirs;
        char *default_codec;

        WatcherConfig watcher;
        char *watcher_binary;

        usec_t idle_timeout;         /* 0: never exit on idle */
        sd_event_source *idle_timer;
        usec_t client_timeout;       /* a connection must send a request within this */
        unsigned max_clients;
        bool polkit;                 /* ask polkit when the rules do not decide */
        bool lazy_restore;           /* restore lazily unless a request says otherwise */
        bool selinux;

        Client *clients;
        unsigned n_clients;
        Operation *operations;
        unsigned n_operations;
        Registry registry;
} Manager;

/* client.c */
int manager_accept(Manager *m);
void manager_check_idle(Manager *m);
Client *client_free(Client *c);

/* operation.c */
int operation_checkpoint(Manager *m, Client *c, pid_t pid, int pidfd, const Message *req, bool compat);
int operation_restore(Manager *m, Client *c, pid_t pid, Entry *e, const Message *req, bool compat);
void operation_client_gone(Operation *op);
Operation *operation_free(Operation *op);
int manager_rebuild(Manager *m);
void manager_on_target_exit(Entry *e, void *userdata);
void manager_on_watcher_exit(Entry *e, void *userdata);
void entry_refresh(Manager *m, Entry *e);

/* reply helpers (client.c) */
void client_reply(Client *c, MemcrResult result, int error, const char *message, const Message *info);
void client_reply_message(Client *c, Message *reply);
void client_request_done(Client *c);
uid_t client_uid(const Client *c);
pid_t client_pid(const Client *c);
bool client_wants_progress(const Client *c);
