/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Helpers of the fault suite: looking at memcrd, its watchers and their
 * targets from outside (/proc), private mounts, and the suite's summary.
 */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "daemon-util.h"
#include "target-util.h"

/* MEMCR_SLOW_TESTS=1 (meson -Dslow-tests=true): full counts. */
bool faults_slow(void);

/* Microseconds on CLOCK_MONOTONIC. */
uint64_t mono_usec(void);

/* The summary: every case records its outcome (from its own process); the
 * runner prints the collected records at the end. */
void summary_init(void);
void summary_record(const char *name, const char *outcome, unsigned targets_verified, uint64_t bytes_verified);
void summary_print(unsigned failed);

/* A mount namespace of our own (mounts vanish with the test process). */
int private_mounts(void);
int mount_tmpfs(const char *dir, const char *size);
/* Bytes used on the file system holding path. */
uint64_t fs_used_bytes(const char *path);

/* The memcr-watch process serving target for this daemon, 0 if none. */
pid_t find_watcher(const Daemon *d, pid_t target);
/* Number of memcr-watch processes of this daemon. */
unsigned count_watchers(const Daemon *d);
/* Size of the (unnamed) file the watcher has open in dir, -1 if none. */
int64_t watcher_dump_size(pid_t watcher, const char *dir);
/* Path (/proc/W/fd/N) of that file; 0 or -ENOENT. */
int watcher_dump_path(pid_t watcher, const char *dir, char *buf, size_t size);
/* Number of descriptors, in any process, of files in dir. */
unsigned count_open_files_in(const char *dir);

/* The text of /proc/PID/maps (free() it), NULL if gone. */
char *maps_read(pid_t pid);
/* Anonymous executable mappings (what the parasite looks like). */
unsigned count_anon_exec_mappings(pid_t pid);
/* Threads of pid with a tracer. */
unsigned count_traced_threads(pid_t pid);

/* Resource use of a process: open descriptors, threads, VmRSS in kB. */
unsigned proc_fd_count(pid_t pid);
unsigned proc_thread_count(pid_t pid);

/* The state letter of pid, 0 if gone or reaped. */
char proc_state_of(pid_t pid);
