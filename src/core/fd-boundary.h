/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * A lazy restore puts privileged descriptors into the target's descriptor
 * table for a moment: the watcher's /dev/userfaultfd and the kernel-mode
 * userfaultfd made from it. Nobody else may be able to take them from there:
 * not a process sharing that table (clone(CLONE_FILES)), not a task of the
 * target that is not held stopped (an io_uring worker executes requests in
 * the target's table), and not a process of the target's user with
 * pidfd_getfd() (the target is made non-dumpable for the window).
 */

#include <stddef.h>

#include "tracee.h"

/* 0 if nobody but the held threads of t reaches its descriptor table; else
 * -EPERM with who does, in words, in reason. */
int fd_table_private(const Tracee *t, char *reason, size_t size);
