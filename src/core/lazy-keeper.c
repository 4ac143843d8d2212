/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The keeper of a lazy restore's userfaultfd (see lazy-keeper.h). */

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lazy-keeper.h"
#include "macro.h"

/* How long a keeper whose owner died waits for the target to die: the
 * owner's exit kills it right after closing its descriptors. */
#define KEEPER_GRACE_MS 10000

/* Close every descriptor but keep[0..2] (async-signal-safe: after fork). */
static void close_all_but(int keep[3]) {
        int k[3] = { keep[0], keep[1], keep[2] };
        unsigned from = 3;

        for (int i = 0; i < 3; i++)
                for (int j = i + 1; j < 3; j++)
                        if (k[j] < k[i]) {
                                int t = k[i];
                                k[i] = k[j];
                                k[j] = t;
                        }
        for (int i = 0; i < 3; i++) {
                if ((unsigned) k[i] > from)
                        (void) close_range(from, (unsigned) k[i] - 1, 0);
                if ((unsigned) k[i] >= from)
                        from = (unsigned) k[i] + 1;
        }
        (void) close_range(from, ~0U, 0);
}

_Noreturn static void keeper_run(int sock, int done, int pidfd) {
        struct pollfd p[2] = { { .fd = done, .events = POLLIN }, { .fd = pidfd, .events = POLLIN } };
        int keep[3] = { sock, done, pidfd };
        sigset_t all;

        /* Only SIGKILL ends it; what it holds is in sock's queue, never read. */
        sigfillset(&all);
        (void) sigprocmask(SIG_SETMASK, &all, NULL);
        (void) prctl(PR_SET_NAME, "memcr-keeper", 0, 0, 0);
        close_all_but(keep);
        for (;;) {
                char c;
                ssize_t n;

                if (poll(p, 2, -1) < 0)
                        continue;
                if (p[1].revents)
                        _exit(0); /* the target is dead */
                if (!p[0].revents)
                        continue;
                n = read(done, &c, 1);
                if (n > 0)
                        _exit(0); /* the restore is over */
                if (n < 0)
                        continue;
                /* Our owner is gone without a word: its exit kills the target
                 * next. Hold on until it is dead. */
                (void) poll(&p[1], 1, KEEPER_GRACE_MS);
                _exit(0);
        }
}

int lazy_keeper_start(int target_pidfd, int uffd, LazyKeeper *ret) {
        _cleanup_close_ int s0 = -EBADF, s1 = -EBADF, d0 = -EBADF, d1 = -EBADF;
        int sv[2], pp[2], st, r;
        pid_t child;

        if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) < 0)
                return -errno;
        s0 = sv[0];
        s1 = sv[1];
        /* A socket rather than a pipe: telling a keeper that has gone
         * already (the target died) must not raise SIGPIPE. */
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pp) < 0)
                return -errno;
        d0 = pp[0];
        d1 = pp[1];

        /* Twice: the keeper is nobody's child of ours, so that no waitid() of
         * ours ever sees it, and it needs no reaping. */
        child = fork();
        if (child < 0)
                return -errno;
        if (child == 0) {
                pid_t keeper = fork();
                if (keeper == 0)
                        keeper_run(s1, d0, target_pidfd);
                _exit(keeper < 0 ? 1 : 0);
        }
        if (waitpid(child, &st, 0) != child)
                return -errno;
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
                return -ECHILD;

        *ret = (LazyKeeper) { .sock = TAKE_FD(s0), .done = TAKE_FD(d1) };
        r = lazy_keeper_hold(ret, uffd);
        if (r < 0) {
                lazy_keeper_stop(ret); /* let it go */
                return r;
        }
        return 0;
}

int lazy_keeper_hold(LazyKeeper *k, int fd) {
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int))];
        } control = {};
        char byte = 'u';
        struct iovec iov = { &byte, 1 };
        struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control,
                              .msg_controllen = sizeof(control) };
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);

        if (k->sock < 0)
                return -EBADF;
        /* In flight from here on: a reference only the keeper's socket holds
         * besides ours. */
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof(int));
        if (sendmsg(k->sock, &msg, MSG_NOSIGNAL | MSG_DONTWAIT) != 1)
                return -errno; /* said by the caller */
        return 0;
}

void lazy_keeper_stop(LazyKeeper *k) {
        if (k->done >= 0)
                (void) send(k->done, "d", 1, MSG_NOSIGNAL);
        k->done = safe_close(k->done);
        k->sock = safe_close(k->sock);
}
