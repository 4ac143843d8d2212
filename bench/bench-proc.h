/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * What memcr-bench reads about processes from /proc: memory (VmRSS, VmHWM),
 * CPU time, children; and a thread that samples memcrd and the current
 * watcher every few milliseconds, so that peaks during a checkpoint are seen
 * even though the watcher is gone by the time the results are collected.
 */

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "time-util.h"

typedef struct ProcMem {
        uint64_t rss; /* VmRSS, bytes */
        uint64_t hwm; /* VmHWM, bytes */
} ProcMem;

int proc_mem(pid_t pid, ProcMem *ret);
/* utime + stime of all threads of pid, from /proc/PID/stat. */
int proc_cpu_usec(pid_t pid, usec_t *ret);
/* Time all CPUs together spent on anything but idling (steal included),
 * from /proc/stat. */
int proc_stat_busy_usec(usec_t *ret);
/* The 1-minute load average. */
int proc_loadavg(double *ret);
/* Reset VmHWM to the current VmRSS (clear_refs 5). */
int proc_reset_hwm(pid_t pid);
/* A child of this process (of any of its threads) named comm; 0 if none. */
pid_t proc_find_child(const char *comm);

typedef struct SamplerResult {
        uint64_t daemon_rss_max;  /* bytes; 0 if never read */
        uint64_t daemon_hwm_max;
        pid_t watcher_pid;        /* 0 if no watcher was seen */
        uint64_t watcher_rss_max; /* bytes */
        uint64_t watcher_hwm_max;
        unsigned watcher_samples;
} SamplerResult;

typedef struct Sampler {
        pthread_t thread;
        pthread_mutex_t lock;
        bool started;
        bool stop;
        usec_t interval;
        pid_t daemon_pid;
        /* Between sampler_begin() and sampler_watcher_done(): look for a
         * child called watcher_comm and follow it. */
        const char *watcher_comm;
        bool follow_watcher;
        SamplerResult cur;
} Sampler;

int sampler_start(Sampler *s, pid_t daemon_pid, const char *watcher_comm, usec_t interval);
void sampler_stop(Sampler *s);
/* Reset the maxima and follow the next watcher that appears. */
void sampler_begin(Sampler *s);
/* Stop looking at the watcher (before it is reaped: its PID may be reused). */
void sampler_watcher_done(Sampler *s);
/* The maxima since sampler_begin(). */
void sampler_get(Sampler *s, SamplerResult *ret);
