/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * memcrd's view of the processes it froze: one entry per target, from the
 * moment a checkpoint starts until the target is restored or gone. The
 * watchers are the truth (their sockets live in the runtime directory); this
 * list is rebuilt from them when memcrd starts.
 */

#include <stdbool.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "protocol.h"
#include "time-util.h"

typedef enum EntryState {
        ENTRY_CHECKPOINTING,
        ENTRY_FROZEN,
        ENTRY_RESTORING,
        ENTRY_STREAMING, /* running again, memory streaming back (lazy restore) */
        _ENTRY_STATE_MAX,
} EntryState;

typedef struct Entry Entry;
typedef struct Registry Registry;

struct Entry {
        Registry *registry;
        pid_t pid;
        int pidfd;                  /* notices the target's exit */
        sd_event_source *exit_source;
        int watcher_pidfd;          /* notices the watcher's exit */
        sd_event_source *watcher_source;
        sd_event_source *settle_source; /* after the watcher's exit, see registry.c */
        EntryState state;
        uid_t caller_uid;           /* who checkpointed it */
        Message info;               /* last status reported by the watcher */
        void *op;                   /* operation in progress on it, if any */
        bool rebuilding;            /* op: asking its watcher what it holds (start-up) */
        Entry *next;
};

/* A process restored lazily that ended while memcr still watched it: kept
 * for a while so that status and list can say how. */
typedef struct Ended {
        pid_t pid;
        uid_t caller_uid;
        uid_t target_uid; /* (uid_t) -1 if unknown */
        uint64_t at;      /* CLOCK_REALTIME */
        char comm[64];
        char state[32];   /* "died (SIGSEGV)", "exited (status 0)" */
        char text[384];   /* the whole story, as logged */
} Ended;

#define REGISTRY_ENDED_MAX 64
#define REGISTRY_ENDED_KEEP_USEC (3600 * USEC_PER_SEC)

struct Registry {
        sd_event *event;
        Entry *entries;
        size_t n_entries;
        Ended ended[REGISTRY_ENDED_MAX]; /* a ring, newest at ended_next - 1 */
        size_t n_ended, ended_next;
        /* Called when a target exits while we track it (frozen: the watcher
         * lost it, or it was killed). */
        void (*on_exit)(Entry *e, void *userdata);
        /* Called when the watcher holding a target exits. */
        void (*on_watcher_exit)(Entry *e, void *userdata);
        void *userdata;
};

Entry *registry_find(Registry *r, pid_t pid);
/* op (an operation or a rebuild) is over: the entry of pid, if op was under
 * way on it, has none now. */
void registry_op_done(Registry *r, pid_t pid, const void *op);
/* pidfd is duplicated. */
int registry_add(Registry *r, pid_t pid, int pidfd, EntryState state, uid_t caller_uid, Entry **ret);
void registry_remove(Registry *r, Entry *e);
void registry_clear(Registry *r);
const char *entry_state_to_string(EntryState s);
/* Remember how e's process ended (then remove e yourself). */
void registry_add_ended(Registry *r, const Entry *e, const char *state, const char *text);
/* The latest record of pid that is not too old, or NULL. */
const Ended *registry_find_ended(const Registry *r, pid_t pid);
/* Follow the watcher's life (its PID from a status reply it just sent). */
int entry_watch_watcher(Entry *e, pid_t watcher);
/* Copy the watcher's status (a REPLY message) into the entry. */
int entry_set_info(Entry *e, const Message *reply);
