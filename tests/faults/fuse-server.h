/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * A FUSE file system served by a thread of the calling process (which needs
 * CAP_SYS_ADMIN to mount it). Files: "file" (4 KiB of zeros) and "exe" (the
 * bytes of the file given at start). Reads can be held unanswered, which keeps
 * the reader in an uninterruptible (killable) sleep.
 */

#include <stdbool.h>
#include <stddef.h>

typedef struct FuseServer FuseServer;

/* Mount on a new directory under /tmp; exe may be NULL. */
int fuse_server_start(const char *exe, FuseServer **ret);
const char *fuse_server_dir(const FuseServer *s);
/* From now on, keep READ requests unanswered. */
void fuse_server_hold(FuseServer *s, bool hold);
/* Wait until at least n READ requests are being held. */
int fuse_server_wait_held(FuseServer *s, size_t n, unsigned timeout_ms);
/* Answer every held READ and stop holding; returns how many there were. */
size_t fuse_server_release(FuseServer *s);
/* Abort the connection, unmount, free. */
void fuse_server_stop(FuseServer *s);
