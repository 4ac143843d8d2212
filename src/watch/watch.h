/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * memcr-watch: what it knows about the one process it holds, its restore
 * socket, and the answers and outcomes it gives (watch.c).
 */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "memcr.h"
#include "protocol.h"

#define REQUEST_TIMEOUT_SEC 10

typedef struct Watch {
        pid_t pid;
        int pidfd;
        int listen_fd;
        const char *runtime_dir;
        char *socket_path; /* NULL once given up */
        Frozen *frozen;
        uid_t caller_uid;
        uid_t target_uid;
        char comm[64];
        uint64_t max_frozen_sec;
        char codec[16];
        bool encrypted;
        bool lazy_default; /* restore lazily unless asked otherwise */
        bool stopped_before_job;
        /* job connection while checkpointing */
        int job_fd;
        bool want_progress;
} Watch;

/* Give up the restore socket. Done before the last answer is sent, so that
 * whoever reads it may start a new watcher for the same PID right away: a
 * watcher that unlinked its path after answering could race with the next
 * one binding it. */
void watch_release_socket(Watch *w);

/* The fields that say which process this is and who holds it, in state. */
void watch_message_set_process(Message *m, const Watch *w, const char *state);

/* Answer a request: result, error and message; with_stats adds what is
 * known about the frozen process (status, list, checkpoint done). */
void watch_reply(int fd, MemcrResult result, int error, const char *message, const Watch *w, bool with_stats);

/* The journal record of an outcome this watcher decided (op "hold" or
 * "restore"), with message id id and the sentence what. */
void watch_log_outcome(const Watch *w, const char *op, int r, const char *id, const char *what);
