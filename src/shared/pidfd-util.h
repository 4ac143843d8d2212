/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

int pidfd_open_pid(pid_t pid);
/* The PID a pidfd refers to (from /proc/self/fdinfo), -ESRCH if it exited. */
int pidfd_get_pid(int pidfd, pid_t *ret);
/* 1 if the process is still running, 0 if it exited. */
int pidfd_is_alive(int pidfd);
int pidfd_signal(int pidfd, int sig);
