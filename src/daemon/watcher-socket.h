/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The socket a watcher serves its target on: WATCH_DIR/PID.sock. Nothing
 * here waits: a connection is made without blocking, or not at all.
 */

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

int watcher_socket_path(const char *watch_dir, pid_t pid, char *buf, size_t size);
/* A non-blocking connection to the watcher of pid; it must run as us (or
 * root). -ECONNREFUSED: nobody listens (yet); -EAGAIN: its backlog is full. */
int watcher_socket_connect(const char *watch_dir, pid_t pid);
/* Does somebody listen on the watcher socket of pid? */
bool watcher_socket_served(const char *watch_dir, pid_t pid);
/* A socket left by a watcher that died (nobody listens on it) is removed.
 * Returns true if there was one. */
bool watcher_socket_remove_stale(const char *watch_dir, pid_t pid);
