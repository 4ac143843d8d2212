/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fileio.h"
#include "macro.h"
#include "pidfd-util.h"

int pidfd_open_pid(pid_t pid) {
        int fd;

        if (pid <= 0)
                return -EINVAL;
        fd = (int) syscall(SYS_pidfd_open, pid, 0);
        if (fd < 0)
                return -errno;
        return fd;
}

int pidfd_get_pid(int pidfd, pid_t *ret) {
        _cleanup_free_ char *buf = NULL;
        char path[64];
        const char *p;
        long v;
        int r;

        snprintf(path, sizeof(path), "/proc/self/fdinfo/%i", pidfd);
        r = read_full_file(path, 16 * 1024, &buf, NULL);
        if (r < 0)
                return r;
        p = strstr(buf, "\nPid:");
        if (!p)
                return -ENOTTY; /* not a pidfd */
        v = strtol(p + 5, NULL, 10);
        if (v == -1)
                return -ESRCH;
        if (v <= 0)
                return -EREMOTE; /* not visible in our pid namespace */
        *ret = (pid_t) v;
        return 0;
}

int pidfd_is_alive(int pidfd) {
        struct pollfd p = { .fd = pidfd, .events = POLLIN };
        int r = poll(&p, 1, 0);
        if (r < 0)
                return -errno;
        return r == 0;
}

int pidfd_signal(int pidfd, int sig) {
        if (syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) < 0)
                return -errno;
        return 0;
}
