/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Test helper: run memcrd in a private directory (socket, runtime and state
 * directories under one temporary directory), talk to it.
 */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "protocol.h"

typedef struct Daemon {
        pid_t pid;
        char dir[64];
        char sock[128];
        char log[128];
        char runtime[128];
        char state[128];
        int held_fd; /* the listening socket held as systemd holds it, or -1 */
} Daemon;

/* Paths of the built programs: $MEMCRD, $MEMCR_WATCH, $MEMCRCTL. */
const char *memcrd_binary(void);

/* Create the directories (once) and start memcrd; extra args NULL-terminated.
 * With socket_activate, run it under systemd-socket-activate. */
int daemon_setup(Daemon *d);
int daemon_start(Daemon *d, bool socket_activate, const char *const *extra);
/* Start memcrd on a listening socket the test holds, the way systemd holds
 * it: a connection memcrd leaves in the backlog when it exits stays there
 * for the next memcrd started this way. */
int daemon_start_held(Daemon *d, const char *const *extra);
/* Signal it and wait for it to exit; returns its exit status (or 128+sig). */
int daemon_stop(Daemon *d, int sig);
/* Remove everything (after stopping). */
void daemon_cleanup(Daemon *d);

/* One request on a new connection; returns 0 if a reply came back. */
int daemon_request(const Daemon *d, uint16_t type, pid_t pid, uint32_t flags, Message *reply);
/* Same, on an existing connection. */
int daemon_request_fd(int fd, uint16_t type, pid_t pid, uint32_t flags, Message *reply);
int daemon_connect(const Daemon *d);

/* memcr's own protocol: {cmd, pid} -> int32 */
int compat_request(const Daemon *d, int32_t cmd, int32_t pid, int32_t *ret);

/* A sanitizer report (AddressSanitizer, LeakSanitizer, UBSan) in the log?
 * Copies the first such line to buf. */
bool daemon_log_sanitizer_report(const Daemon *d, char *buf, size_t size);

/* Does the daemon's log contain a line with every one of these substrings? */
bool daemon_log_has(const Daemon *d, const char *const *needles);

/* Send a request without waiting for its answer; daemon_recv() reads the
 * answer later (progress messages skipped). */
int daemon_send(int fd, const Message *req);
int daemon_recv(int fd, Message *reply);
/* One request (any fields) on a new connection. */
int daemon_request_msg(const Daemon *d, const Message *req, Message *reply);

/* A stand-in for memcr-watch, serving WATCH_DIR/PID.sock the way a watcher
 * that misbehaves would: the thing memcrd is tested against. */
typedef enum FakeWatcherMode {
        FAKE_WATCHER_SILENT,    /* accepts, reads, never answers */
        FAKE_WATCHER_FROZEN,    /* answers every request: OK, state "frozen" */
        FAKE_WATCHER_STREAMING, /* answers the first request: OK, "streaming"; then is silent */
        FAKE_WATCHER_HANG_UP,   /* accepts, reads, closes without an answer */
} FakeWatcherMode;

/* From $MEMCR_FAKE_WATCHER ("silent", "frozen", "streaming", "hang-up"). */
int fake_watcher_mode_from_env(FakeWatcherMode *ret);
/* Bind and listen on WATCH_DIR/PID.sock; returns the listening socket. */
int fake_watcher_listen(const char *watch_dir, pid_t pid);
/* Serve on the listening socket until memcrd hangs up on a connection it
 * got no answer on, or pid ends (or after 60 s); then exit. Never returns. */
_Noreturn void fake_watcher_serve(int listen_fd, pid_t pid, FakeWatcherMode mode);
/* Fork a fake watcher for pid; its PID, or -errno. */
pid_t fake_watcher_fork(const char *watch_dir, pid_t pid, FakeWatcherMode mode);
