/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "socket-util.h"
#include "watcher-socket.h"

int watcher_socket_path(const char *watch_dir, pid_t pid, char *buf, size_t size) {
        int n = snprintf(buf, size, "%s/%i.sock", watch_dir, pid);
        return n < 0 || (size_t) n >= size ? -ENAMETOOLONG : 0;
}

int watcher_socket_connect(const char *watch_dir, pid_t pid) {
        _cleanup_close_ int fd = -EBADF;
        char path[4096];
        struct ucred u;
        int r;

        r = watcher_socket_path(watch_dir, pid, path, sizeof(path));
        if (r < 0)
                return r;
        fd = unix_connect(path, SOCK_NONBLOCK);
        if (fd < 0)
                return fd;
        r = getpeercred(fd, &u);
        if (r < 0)
                return r;
        if (u.uid != getuid() && u.uid != 0)
                return log_error_errno(-EPERM, "%s is served by uid %u, not by us: refusing it", path, u.uid);
        return TAKE_FD(fd);
}

/* Connect and hang up at once: 0 somebody listens, -ECONNREFUSED nobody
 * does, -EAGAIN its backlog is full (served), or another error. */
static int probe(const char *watch_dir, pid_t pid, char *path, size_t size) {
        int fd;

        if (watcher_socket_path(watch_dir, pid, path, size) < 0)
                return -ENAMETOOLONG;
        fd = unix_connect(path, SOCK_NONBLOCK);
        if (fd < 0)
                return fd;
        safe_close(fd);
        return 0;
}

bool watcher_socket_served(const char *watch_dir, pid_t pid) {
        char path[4096];
        int r = probe(watch_dir, pid, path, sizeof(path));

        return r == 0 || r == -EAGAIN;
}

bool watcher_socket_remove_stale(const char *watch_dir, pid_t pid) {
        char path[4096];

        if (probe(watch_dir, pid, path, sizeof(path)) != -ECONNREFUSED)
                return false;
        (void) unlink(path);
        return true;
}
