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
        char *watcher_socket;

        usec_t idle_timeout;         /* 0: never exit on idle */
        sd_event_source *idle_timer;
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
        Registry registry;
} Manager;

/* client.c */
int manager_accept(Manager *m);
void manager_check_idle(Manager *m);
Client *client_free(Client *c);

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
