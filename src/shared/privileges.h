/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>
#include <sys/types.h>

/*
 * Least privilege for memcrd and its watchers: keep CAP_SYS_PTRACE (if we
 * have it) and nothing else, in every set including the ambient one (so a
 * watcher we execute keeps it too), drop the rest of the bounding set where
 * we may, verify the result, and set PR_SET_NO_NEW_PRIVS.
 */
int privileges_drop_to_ptrace(void);

/* Effective capability mask of this process (for tests and logging). */
int privileges_effective(uint64_t *ret);

/* A directory only its owner can use: owned by our effective uid (or root)
 * and no permission bits for group or others. -EPERM with a log line if not. */
int private_dir_check(const char *path);
