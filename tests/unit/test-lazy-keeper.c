/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * The keeper of a lazy restore's userfaultfds: what it was given stays
 * referenced until it is told the restore is over, or, once its owner is
 * gone without a word, until the target is dead. Pipes stand in for the
 * userfaultfds here: the read end sees end-of-file only once the last
 * reference to the write end is gone.
 */

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lazy-keeper.h"
#include "pidfd-util.h"

#define N_CHILDREN 100

static pid_t sleeper(void) {
        pid_t p = fork();

        cr_assert_geq(p, 0);
        if (p == 0) {
                pause();
                _exit(0);
        }
        return p;
}

/* A pipe whose write end is only in the keeper's hands once we close ours:
 * returns the read end. */
static int give(LazyKeeper *k, bool first, int target_pidfd) {
        int p[2];

        cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
        if (first)
                cr_assert_eq(lazy_keeper_start(target_pidfd, p[1], k), 0);
        else
                cr_assert_eq(lazy_keeper_hold(k, p[1]), 0);
        close(p[1]);
        return p[0];
}

/* Does the read end see end-of-file within ms? */
static bool ends_within(int fd, int ms) {
        struct pollfd p = { .fd = fd, .events = POLLIN };

        return poll(&p, 1, ms) == 1 && (p.revents & POLLHUP);
}

Test(lazy_keeper, holds_every_descriptor_until_told) {
        pid_t target = sleeper();
        int pidfd = pidfd_open_pid(target);
        LazyKeeper k = LAZY_KEEPER_NULL;
        int ends[1 + N_CHILDREN];

        cr_assert_geq(pidfd, 0);
        ends[0] = give(&k, true, pidfd);
        /* As many as a target may fork while its memory streams back. */
        for (int i = 1; i <= N_CHILDREN; i++)
                ends[i] = give(&k, false, pidfd);
        for (int i = 0; i <= N_CHILDREN; i++)
                cr_assert_not(ends_within(ends[i], i == 0 ? 200 : 0), "descriptor %i let go too early", i);

        lazy_keeper_stop(&k);
        for (int i = 0; i <= N_CHILDREN; i++)
                cr_assert(ends_within(ends[i], 5000), "descriptor %i still held after the restore was over", i);
        kill(target, SIGKILL);
        waitpid(target, NULL, 0);
}

Test(lazy_keeper, owner_gone_holds_until_the_target_dies) {
        pid_t target = sleeper();
        int pidfd = pidfd_open_pid(target), p[2], q[2], sync[2];
        char c;

        cr_assert_geq(pidfd, 0);
        cr_assert_eq(pipe(p), 0);
        cr_assert_eq(pipe(q), 0);
        cr_assert_eq(pipe(sync), 0);
        /* The owner hands both write ends over and is killed without a word. */
        pid_t owner = fork();
        cr_assert_geq(owner, 0);
        if (owner == 0) {
                LazyKeeper k = LAZY_KEEPER_NULL;
                close(p[0]);
                close(q[0]);
                if (lazy_keeper_start(pidfd, p[1], &k) < 0 || lazy_keeper_hold(&k, q[1]) < 0)
                        _exit(1);
                (void) !write(sync[1], "x", 1);
                pause();
                _exit(0);
        }
        close(p[1]);
        close(q[1]);
        close(sync[1]);
        cr_assert_eq(read(sync[0], &c, 1), 1, "the owner could not start its keeper");
        cr_assert_eq(kill(owner, SIGKILL), 0);
        cr_assert_eq(waitpid(owner, NULL, 0), owner);

        int ends[2] = { p[0], q[0] };
        for (int i = 0; i < 2; i++)
                cr_assert_not(ends_within(ends[i], 300), "descriptor %i let go while the target lives", i);
        kill(target, SIGKILL);
        waitpid(target, NULL, 0);
        for (int i = 0; i < 2; i++)
                cr_assert(ends_within(ends[i], 5000), "descriptor %i still held after the target died", i);
}
