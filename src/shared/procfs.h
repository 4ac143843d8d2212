/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Reading /proc: one place for the files memcr looks at. tid 0 means the
 * process (/proc/PID/NAME), otherwise the thread (/proc/PID/task/TID/NAME).
 * A process or thread that is gone yields -ESRCH. */

/* The whole of NAME, NUL-terminated, at most max bytes. */
int procfs_read(pid_t pid, pid_t tid, const char *name, size_t max, char **ret);

/* In the text of a status file: the value of field ("TracerPid", without the
 * colon) with leading blanks skipped, if a line starts with it; NULL if not. */
const char *procfs_status_find(const char *text, const char *field);

/* The first number (decimal) of a status field. -ENODATA if the kernel has no
 * such field, -EBADMSG if it holds no number. */
int procfs_status_u64(pid_t pid, pid_t tid, const char *field, uint64_t *ret);

/* Who traces the thread (TracerPid), 0 if nobody. */
int procfs_tracer(pid_t pid, pid_t tid, pid_t *ret);

/* From stat: the state letter and the parent (either may be NULL). */
int procfs_stat(pid_t pid, pid_t tid, char *ret_state, pid_t *ret_ppid);

/* The name (comm) without its newline; "?" and an error if unreadable. */
int procfs_comm(pid_t pid, pid_t tid, char *buf, size_t size);

/* The threads of pid (/proc/PID/task), or with pid 0 every process (/proc),
 * in directory order. */
int procfs_list(pid_t pid, pid_t **ret, size_t *ret_n);
