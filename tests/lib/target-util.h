/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Test helper: start memcr-test-target as a child with its stdin/stdout on
 * pipes, wait for READY, send commands, read RESULT lines.
 */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

typedef struct Target {
        pid_t pid;
        int pidfd;
        int cmd_fd;   /* its stdin */
        FILE *out;    /* its stdout */
        uint64_t bytes;
        uint64_t thp_kb;
        bool reaped;
        int exit_status;
} Target;

typedef struct TargetResult {
        bool ok;
        uint64_t bad_words;
        unsigned usr1, usr2, term, eintr, regions;
} TargetResult;

/* Path of memcr-test-target: $MEMCR_TEST_TARGET. */
const char *target_binary(void);

/* Start the target with extra arguments (NULL-terminated), wait for READY.
 * uid/gid >= 0: run it as that user. */
int target_start(Target *t, const char *const *args);
int target_start_as(Target *t, const char *const *args, int uid, int gid);
/* Also keep one capability (ambient, so it survives exec), -1 for none. */
int target_start_full(Target *t, const char *const *args, int uid, int gid, int ambient_cap);
/* Another program that speaks the same protocol (memcr-vector-target). */
int target_start_program(Target *t, const char *binary, const char *const *args, int uid, int gid,
                         int ambient_cap);

/* Any command; the one line it answers goes to line. */
int target_command(Target *t, const char *cmd, char *line, size_t size);

/* "check": verify regions, keep running. */
int target_check(Target *t, TargetResult *ret);
/* "verify": verify everything, read exit status; returns 0 if it ran. */
int target_verify(Target *t, TargetResult *ret, int *ret_exit_status);

/* SIGKILL every target this process started (test teardown). */
void target_kill_all(void);

/* Kill and reap. */
void target_stop(Target *t);

/* Process state letter from /proc/PID/stat ('R', 'S', 'T', 't', 'Z', ...). */
char proc_state(pid_t pid);
/* TracerPid from /proc/PID/status. */
int proc_tracer(pid_t pid);
/* Sum of a field (kB) over smaps entries whose VmFlags contain flag (or all if NULL). */
uint64_t smaps_sum_kb(pid_t pid, const char *field, const char *vmflag);
/* A "Name:   N kB" field of /proc/PID/status, in kB (0 if missing). */
uint64_t proc_status_kb(pid_t pid, const char *field);
/* Number of open fds of this process. */
unsigned count_own_fds(void);
/* Number of entries in a directory (not . and ..). */
int count_dir_entries(const char *path);

/* Start exe (NULL: the test target) with args and extra environment entries
 * (NAME=VALUE, NULL-terminated, may be NULL). With wait_ready, wait for its
 * READY line; otherwise return right after the fork and call
 * target_wait_ready() later. */
int target_spawn(Target *t, const char *exe, const char *const *args, const char *const *env, bool wait_ready);
/* Read the READY line (again, after the target executed itself anew). */
int target_wait_ready(Target *t);
