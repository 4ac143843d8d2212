/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <sys/socket.h>
#include <sys/types.h>

/* A stream socket bound to path (an existing stale socket is replaced if
 * nobody listens on it; -EADDRINUSE if somebody does), mode applied. */
/* Bound to path (a stale socket there is replaced), given to group gid
 * ((gid_t) -1: left alone) with mode, then listening. */
int unix_listen(const char *path, mode_t mode, gid_t gid, int backlog);
/* Connect to path; flags e.g. SOCK_NONBLOCK. */
int unix_connect(const char *path, int flags);

int getpeercred(int fd, struct ucred *ret);
/* Supplementary groups of the peer (SO_PEERGROUPS); *ret allocated. */
int getpeergroups(int fd, gid_t **ret, size_t *ret_n);
/* A pidfd for the peer: SO_PEERPIDFD where the kernel has it, otherwise
 * pidfd_open() of SO_PEERCRED's pid verified to still be the peer. */
int getpeerpidfd(int fd, const struct ucred *cred);

/* Is fd an AF_UNIX stream socket? */
int socket_is_unix_stream(int fd);
