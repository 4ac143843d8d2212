/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * While a lazy restore streams, the target runs with areas registered with
 * our userfaultfd; if we die, the kernel closes our descriptors before it
 * kills the tasks we trace (PTRACE_O_EXITKILL acts after the files are
 * gone). Closing the last reference to the userfaultfd unregisters its
 * areas, and a thread that waited for a missing page would then get a zero
 * page and run on with it before its SIGKILL lands.
 *
 * The keeper is a small process of its own (not our child: nobody of ours
 * waits for it) that holds a reference to the userfaultfd, in flight in a
 * socket only it has, until either we say the restore is over or, when we
 * are gone without a word, the target has died (or a grace period passed).
 */

typedef struct LazyKeeper {
        int sock; /* ours: what we send here stays in flight to the keeper */
        int done; /* ours: a byte, or its closing, tells the keeper */
} LazyKeeper;

#define LAZY_KEEPER_NULL ((LazyKeeper) { .sock = -1, .done = -1 })

/* Start a keeper for the target behind target_pidfd and give it uffd. The
 * keeper holds what it was given until it is told the restore is over, or
 * until the target is dead once we are gone: the target's children that
 * we trace die with it (PTRACE_O_EXITKILL). */
int lazy_keeper_start(int target_pidfd, int uffd, LazyKeeper *ret);

/* Give the keeper one more descriptor to hold (the userfaultfd of a child
 * the target forked while its memory streamed back). */
int lazy_keeper_hold(LazyKeeper *k, int fd);

/* The restore is over (done, or the target killed): the keeper lets go. */
void lazy_keeper_stop(LazyKeeper *k);
