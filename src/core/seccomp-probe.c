/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fileio.h"
#include "log.h"
#include "macro.h"
#include "parasite.h"
#include "procfs.h"
#include "seccomp-probe.h"

/* Seccomp mode of one thread (/proc/PID/task/TID/status): 0 none, 1 strict,
 * 2 filter; -errno if unknown. */
static int thread_seccomp_mode(pid_t pid, pid_t tid) {
        uint64_t mode;
        int r;

        r = procfs_status_u64(pid, tid, "Seccomp", &mode);
        if (r == -ENODATA)
                return 0; /* a kernel without seccomp */
        return r < 0 ? r : (int) mode;
}

/* Everything memcr asks of a target, in the copy: the parasite's two
 * mappings, its start (socketpair, openat, close), madvise(), receiving a
 * descriptor (recvmsg) and the userfaultfd ioctl on it, and the cure. What
 * fails, fails as it would in the target. */
static int run_sequence(Tracee *child, const char **ret_step, int *ret_lazy_error) {
        _cleanup_close_ int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
        _cleanup_parasite_ Parasite *p = NULL;
        int fd = -EBADF, r;

        *ret_step = "mmap, socketpair, openat or close";
        r = parasite_infect(child, &p);
        if (r < 0)
                return r;
        *ret_step = "madvise";
        struct parasite_range range = { .start = p->data_addr + PARASITE_DATA_SIZE - (uint64_t) getpagesize(),
                                        .len = (uint64_t) getpagesize() };
        /* The last page of its data area: the top of its stack, which it does
         * not need back. */
        r = parasite_madvise(p, &range, 1, MADV_DONTNEED, NULL);
        if (r < 0)
                return r;
        if (devnull < 0)
                return -errno;
        /* Only a lazy restore needs these: refused, the process can still be
         * parked and restored eagerly. /dev/null is no userfaultfd device:
         * ENOTTY says the ioctl ran. */
        *ret_step = "prctl, recvmsg or ioctl";
        uint64_t args[6] = { PR_GET_DUMPABLE };
        int64_t v = 0;
        r = tracee_syscall(child, SYS_prctl, args, &v);
        if (r >= 0 && v < 0 && v >= -4095)
                r = (int) v;
        if (r >= 0) {
                r = parasite_userfaultfd(p, devnull, &fd);
                safe_close(fd);
        }
        if (r == -ESRCH)
                return r;
        *ret_lazy_error = r < 0 && r != -ENOTTY && r != -EINVAL ? r : 0;
        *ret_step = "munmap";
        return parasite_cure(p);
}

int seccomp_probe(Tracee *t, char *reason, size_t size, char *lazy_reason, size_t lazy_size) {
        _cleanup_(tracee_freep) Tracee *child = NULL;
        const char *step = "clone";
        int mode, lazy_error = 0, r;
        pid_t pid;

        mode = thread_seccomp_mode(t->pid, t->threads[t->exec].tid);
        if (mode < 0)
                return mode;
        if (mode == 0)
                return 0;
        if (mode == 1) {
                snprintf(reason, size, "it runs in seccomp strict mode, which allows no system call memcr needs");
                return -EPERM;
        }

        log_debug("%i runs under a seccomp filter: trying what memcr needs in a copy of it first", t->pid);
        r = tracee_prepare_exec(t);
        if (r < 0)
                return r;
        r = tracee_fork(t, &pid);
        if (r == -ESRCH)
                return r; /* the filter killed the target for clone(): nothing left to protect */
        if (r < 0) {
                snprintf(reason, size, "its seccomp filter or its limits refused to let it fork a copy to test "
                         "the filter on (clone: %s)", strerror(-r));
                return r == -EPERM || r == -EACCES ? -EPERM : r;
        }
        r = tracee_adopt_child(pid, &child);
        if (r < 0)
                return r;

        r = run_sequence(child, &step, &lazy_error);
        if (r != -ESRCH)
                (void) tracee_exit(child);
        if (r < 0) {
                /* Whatever failed in the copy fails in the target too. */
                if (r == -ESRCH)
                        snprintf(reason, size, "its seccomp filter kills it for a system call memcr runs inside it "
                                 "(%s)", step);
                else
                        snprintf(reason, size, "its seccomp filter refuses a system call memcr runs inside it (%s: "
                                 "%s)", step, strerror(-r));
                return log_debug_errno(-EPERM, "%i: %s", t->pid, reason);
        }
        if (lazy_error < 0) {
                snprintf(lazy_reason, lazy_size,
                         "its seccomp filter refuses a system call a lazy restore runs inside it (prctl, recvmsg or "
                         "ioctl: %s)",
                         strerror(-lazy_error));
                log_debug("%i: %s", t->pid, lazy_reason);
        } else
                log_debug("%i: its seccomp filter allows what memcr needs", t->pid);
        return 0;
}
