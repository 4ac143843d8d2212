/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "macro.h"
#include "pidfd-util.h"
#include "socket-util.h"

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif

/* A new AF_UNIX stream socket (flags: SOCK_NONBLOCK or 0), and the address
 * of path for it. */
static int unix_socket_for(const char *path, int flags, struct sockaddr_un *ret_sa, socklen_t *ret_len) {
        size_t l = strlen(path);
        int fd;

        if (l == 0 || l >= sizeof(ret_sa->sun_path))
                return -ENAMETOOLONG;
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | flags, 0);
        if (fd < 0)
                return -errno;
        *ret_sa = (struct sockaddr_un) { .sun_family = AF_UNIX };
        memcpy(ret_sa->sun_path, path, l);
        *ret_len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + l + 1);
        return fd;
}

int unix_connect(const char *path, int flags) {
        _cleanup_close_ int fd = -EBADF;
        struct sockaddr_un sa;
        socklen_t len;

        fd = unix_socket_for(path, flags, &sa, &len);
        if (fd < 0)
                return fd;
        if (connect(fd, (struct sockaddr *) &sa, len) < 0 && errno != EINPROGRESS)
                return -errno;
        return TAKE_FD(fd);
}

int unix_listen(const char *path, mode_t mode, gid_t gid, int backlog) {
        _cleanup_close_ int fd = -EBADF;
        struct sockaddr_un sa;
        socklen_t len;
        mode_t old;
        int r;

        fd = unix_socket_for(path, SOCK_NONBLOCK, &sa, &len);
        if (fd < 0)
                return fd;

        /* Replace a stale socket, never a live one or anything else. */
        struct stat st;
        if (lstat(path, &st) >= 0) {
                if (!S_ISSOCK(st.st_mode))
                        return -EEXIST;
                int c = unix_connect(path, 0);
                if (c >= 0) {
                        safe_close(c);
                        return -EADDRINUSE;
                }
                if (unlink(path) < 0 && errno != ENOENT)
                        return -errno;
        }

        old = umask(0777 & ~mode);
        r = bind(fd, (struct sockaddr *) &sa, len);
        umask(old);
        if (r < 0)
                return -errno;
        /* Owner and mode before listen(): nobody gets in while they are not
         * yet what they will be. */
        if (gid != (gid_t) -1 && chown(path, (uid_t) -1, gid) < 0)
                return -errno;
        if (chmod(path, mode) < 0)
                return -errno;
        if (listen(fd, backlog) < 0)
                return -errno;
        return TAKE_FD(fd);
}

int getpeercred(int fd, struct ucred *ret) {
        struct ucred u;
        socklen_t l = sizeof(u);

        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &u, &l) < 0)
                return -errno;
        if (l != sizeof(u) || u.pid <= 0)
                return -EIO;
        *ret = u;
        return 0;
}

int getpeergroups(int fd, gid_t **ret, size_t *ret_n) {
        socklen_t l = sizeof(gid_t) * 16;

        for (;;) {
                _cleanup_free_ gid_t *g = malloc(l);
                if (!g)
                        return -ENOMEM;
                if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, g, &l) >= 0) {
                        *ret_n = l / sizeof(gid_t);
                        *ret = TAKE_PTR(g);
                        return 0;
                }
                if (errno != ERANGE)
                        return -errno;
                /* l now holds the size needed. */
        }
}

int getpeerpidfd(int fd, const struct ucred *cred) {
        int pidfd;
        socklen_t l = sizeof(pidfd);
        struct ucred again;
        int r;

        if (getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &l) >= 0 && l == sizeof(pidfd))
                return pidfd;

        /* Older kernels: open the pid, then check the socket still names the
         * same peer pid and the process has not exited in between. */
        pidfd = pidfd_open_pid(cred->pid);
        if (pidfd < 0)
                return pidfd;
        r = getpeercred(fd, &again);
        if (r < 0 || again.pid != cred->pid || pidfd_is_alive(pidfd) <= 0) {
                safe_close(pidfd);
                return r < 0 ? r : -ESRCH;
        }
        return pidfd;
}

int socket_is_unix_stream(int fd) {
        int v;
        socklen_t l = sizeof(v);

        if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &v, &l) < 0)
                return -errno;
        if (v != AF_UNIX)
                return 0;
        l = sizeof(v);
        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &l) < 0)
                return -errno;
        return v == SOCK_STREAM;
}
