/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Shared by the files of lazy restore (lazy*.c) only. */

#include <pthread.h>
#include <stdatomic.h>
#include <sys/epoll.h>

#include "item-set.h"
#include "lazy-keeper.h"
#include "lazy.h"

#define LAZY_MAX_WORKERS 8
/* How much nicer than the rest of us the background workers are (the
 * fault-serving thread keeps our nice value). */
#define LAZY_WORKER_NICE 10

/* One address space being filled: the target's, or a child's forked while
 * pages were still streaming. */
typedef struct Space {
        int uffd;
        pid_t pid;
        ItemSet set;
        uint64_t epoch;           /* bumped whenever items move or vanish */
        _Atomic size_t cursor[2]; /* per priority: items before it are not pending */
        bool dead;
} Space;

typedef struct Retry {
        Space *space;
        uint64_t addr;
} Retry;

struct LazyRestore {
        Frozen *frozen; /* its dump, pidfd, memory descriptor; owned once the target runs */
        Dump *dump;
        pid_t pid;
        Tracee *tracee; /* every task followed (tags: their Space), once the target runs */
        bool kill_on_failure; /* starting: the target can no longer run without us */
        LazyKeeper keeper;    /* holds the target's userfaultfd should we die */

        pthread_rwlock_t lock; /* write: items change shape; read: copies */
        Space **spaces;
        size_t n_spaces;

        int epoll_fd;
        int timer_fd;

        pthread_t workers[LAZY_MAX_WORKERS];
        unsigned n_workers;
        _Atomic bool stop;
        _Atomic int fatal;
        pthread_mutex_t wait_lock;
        pthread_cond_t wait_cond;

        Retry *retries;          /* faults to serve again after the next events */
        size_t n_retries;
        DumpWorker fault_worker; /* for faults served on the caller's thread */
        uint8_t *fault_raw;

        _Atomic uint64_t done_bytes;
        _Atomic uint64_t faults;
        uint64_t total_bytes;
        usec_t started;
        usec_t running_at;
        usec_t complete_at;
        bool released;
        bool exited;      /* the target ended while we streamed */
        int exit_status;  /* as waitpid() reports it */
        usec_t exited_at;
};

/* lazy-uffd.c: the userfaultfd service. */
int lazy_add_space(LazyRestore *l, int uffd, pid_t pid, Space **ret);
/* Closing the userfaultfd unregisters every area registered with it. */
void lazy_space_close(LazyRestore *l, Space *s);
void lazy_spaces_free(LazyRestore *l);
/* Pages of the registered areas present before the target runs get the
 * dump's bytes now, and leave the list of pages to stream. */
int lazy_fill_present(LazyRestore *l, Space *s, const bool *registered);
/* Background copy threads. */
int lazy_start_workers(LazyRestore *l, unsigned n);
void lazy_stop_workers(LazyRestore *l);
/* Serve what the userfaultfds have pending. */
int lazy_serve(LazyRestore *l, const struct epoll_event *evs, int n);
/* The first fatal error stops everything. */
void lazy_fatal(LazyRestore *l, int error);
