/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <sys/types.h>

#include "conn.h"
#include "macro.h"
#include "manager.h"
#include "proc-creds.h"
#include "watcher-exchange.h"

struct Client {
        Manager *manager;
        Conn *conn;
        CallerCreds creds;      /* SO_PEERCRED, SO_PEERGROUPS, capabilities: captured at accept */
        int pidfd;              /* SO_PEERPIDFD (or a verified pidfd_open) */
        uint64_t start_time;    /* of the caller process, for polkit */
        char *label;            /* SELinux context of the peer, if enabled */
        bool compat;            /* speaks memcr's own protocol */
        uint32_t flags;         /* of the request in progress */
        bool busy;              /* a request is in progress: no other is read */
        Message request;        /* the request in progress, while it waits (authorization, start-up) */
        int request_pidfd;      /* its target, pinned */
        Operation *op;          /* request in progress that outlives the handler */
        AuthRequest *auth;      /* authorization in progress */
        WatcherExchange *refresh; /* status: asking the watcher for its progress */
        bool waiting;           /* for the start-up to settle: in Manager.waiting */
        Client *next_waiting;
        /* The target of the request in progress as authorization saw it
         * (checkpoint): the watcher holds the target to it. */
        ProcIdentity target_identity;
        sd_event_source *timeout;
        sd_event_source *lifetime; /* --connection-lifetime */
        bool expired;           /* its lifetime is over: closed once its request is answered */
        char *refusal;          /* over a limit: its first request is answered with this, then it is closed */
        sd_event_source *free_source;
        Client *next;
};

/* Accept every connection waiting on the socket. */
int manager_accept(Manager *m);
Client *client_free(Client *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(Client *, client_free);
/* Requests that waited for the watchers found at start-up to answer go on. */
void client_resume_waiting(Manager *m);
