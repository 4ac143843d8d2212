/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Host side of the parasite: map it into a seized target, run its commands,
 * take the descriptors it opens (pidfd_getfd), and cure the target.
 */

#include <stddef.h>
#include <stdint.h>

#include "macro.h"
#include "parasite-abi.h"
#include "tracee.h"

typedef struct Parasite {
        Tracee *tracee; /* not owned */
        uint64_t code_addr;
        size_t code_size;
        uint64_t data_addr;
        int remote_sock; /* the parasite's own socket end, inside the target */
        int fds[_PARASITE_FD_MAX]; /* our copies: sock, mem, pagemap, smaps */
} Parasite;

/* Prepare the executor, map and start the parasite, take its descriptors.
 * On failure the target is cured before returning. */
int parasite_infect(Tracee *t, Parasite **ret);
/* Same, with PARASITE_INIT_* flags (PARASITE_INIT_NO_MEM: mem and pagemap
 * descriptors are not needed). */
int parasite_infect_full(Tracee *t, uint64_t init_flags, Parasite **ret);

/* madvise() ranges inside the target; *ret_done = number of ranges done. */
int parasite_madvise(Parasite *p, const struct parasite_range *ranges, size_t n, int advice,
                     size_t *ret_done);

/* Hand a descriptor of ours to the target; returns its number there. */
int parasite_send_fd(Parasite *p, int fd, int *ret_remote_fd);

/* Create a userfaultfd inside the target (from dev_fd, our /dev/userfaultfd
 * descriptor, or with userfaultfd(2) if dev_fd < 0) and return our copy. */
int parasite_userfaultfd(Parasite *p, int dev_fd, int *ret_fd);

/* Close a descriptor inside the target. */
int parasite_close_remote(Parasite *p, int remote_fd);

/* Unmap the parasite, close what it left open in the target, and put the
 * executor's registers, extended state and signal mask back. The target
 * stays seized and stopped. Our descriptors stay open (parasite_take_fd). */
int parasite_cure(Parasite *p);

int parasite_take_fd(Parasite *p, int which);

Parasite *parasite_free(Parasite *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(Parasite *, parasite_free);
#define _cleanup_parasite_ __attribute__((cleanup(parasite_freep)))
