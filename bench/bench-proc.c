/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench-proc.h"
#include "macro.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(DIR *, closedir);

/* Read a small /proc file into buf (NUL-terminated). */
static int read_small(const char *path, char *buf, size_t size) {
        _cleanup_close_ int fd = -EBADF;
        size_t n = 0;

        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        while (n < size - 1) {
                ssize_t k = read(fd, buf + n, size - 1 - n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                n += (size_t) k;
        }
        buf[n] = 0;
        return 0;
}

static uint64_t status_kb(const char *status, const char *field) {
        const char *p = strstr(status, field);

        return p ? strtoull(p + strlen(field), NULL, 10) * 1024 : 0;
}

int proc_mem(pid_t pid, ProcMem *ret) {
        char path[64], buf[8192];
        int r;

        snprintf(path, sizeof(path), "/proc/%i/status", (int) pid);
        r = read_small(path, buf, sizeof(buf));
        if (r < 0)
                return r;
        /* A zombie has no memory lines. */
        if (!strstr(buf, "\nVmRSS:"))
                return -ESRCH;
        *ret = (ProcMem) {
                .rss = status_kb(buf, "\nVmRSS:"),
                .hwm = status_kb(buf, "\nVmHWM:"),
        };
        return 0;
}

int proc_cpu_usec(pid_t pid, usec_t *ret) {
        unsigned long long utime, stime;
        char path[64], buf[4096];
        const char *p;
        long tck;
        int r;

        snprintf(path, sizeof(path), "/proc/%i/stat", (int) pid);
        r = read_small(path, buf, sizeof(buf));
        if (r < 0)
                return r;
        /* comm may hold spaces and parentheses: fields start after the last ')'. */
        p = strrchr(buf, ')');
        if (!p)
                return -EBADMSG;
        /* state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime stime */
        if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2)
                return -EBADMSG;
        tck = sysconf(_SC_CLK_TCK);
        if (tck <= 0)
                return -EINVAL;
        *ret = (usec_t) (utime + stime) * USEC_PER_SEC / (usec_t) tck;
        return 0;
}

int proc_stat_busy_usec(usec_t *ret) {
        unsigned long long v[8] = {};
        char buf[512];
        long tck;
        int r;

        r = read_small("/proc/stat", buf, sizeof(buf));
        if (r < 0)
                return r;
        /* cpu  user nice system idle iowait irq softirq steal */
        if (sscanf(buf, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                   &v[6], &v[7]) != 8)
                return -EBADMSG;
        tck = sysconf(_SC_CLK_TCK);
        if (tck <= 0)
                return -EINVAL;
        *ret = (usec_t) (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) * USEC_PER_SEC / (usec_t) tck;
        return 0;
}

int proc_loadavg(double *ret) {
        char buf[256];
        int r;

        r = read_small("/proc/loadavg", buf, sizeof(buf));
        if (r < 0)
                return r;
        if (sscanf(buf, "%lf", ret) != 1)
                return -EBADMSG;
        return 0;
}

int proc_reset_hwm(pid_t pid) {
        _cleanup_close_ int fd = -EBADF;
        char path[64];

        snprintf(path, sizeof(path), "/proc/%i/clear_refs", (int) pid);
        fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (write(fd, "5", 1) != 1)
                return -errno;
        return 0;
}

static bool comm_is(pid_t pid, const char *comm) {
        char path[64], buf[64];

        snprintf(path, sizeof(path), "/proc/%i/comm", (int) pid);
        if (read_small(path, buf, sizeof(buf)) < 0)
                return false;
        buf[strcspn(buf, "\n")] = 0;
        return streq(buf, comm);
}

pid_t proc_find_child(const char *comm) {
        _cleanup_(closedirp) DIR *d = NULL;
        struct dirent *de;

        /* Orphans we reap are children of whichever thread the kernel picked. */
        d = opendir("/proc/self/task");
        if (!d)
                return 0;
        while ((de = readdir(d))) {
                char path[300], buf[4096];
                char *p, *end;

                if (de->d_name[0] == '.')
                        continue;
                snprintf(path, sizeof(path), "/proc/self/task/%s/children", de->d_name);
                if (read_small(path, buf, sizeof(buf)) < 0)
                        continue;
                for (p = buf;; p = end) {
                        long v = strtol(p, &end, 10);
                        if (end == p)
                                break;
                        if (v > 0 && comm_is((pid_t) v, comm))
                                return (pid_t) v;
                }
        }
        return 0;
}

static void sample(Sampler *s) {
        ProcMem m;

        pthread_mutex_lock(&s->lock);
        if (s->daemon_pid > 0 && proc_mem(s->daemon_pid, &m) >= 0) {
                s->cur.daemon_rss_max = MAX(s->cur.daemon_rss_max, m.rss);
                s->cur.daemon_hwm_max = MAX(s->cur.daemon_hwm_max, m.hwm);
        }
        if (s->follow_watcher) {
                if (s->cur.watcher_pid == 0)
                        s->cur.watcher_pid = proc_find_child(s->watcher_comm);
                if (s->cur.watcher_pid > 0 && proc_mem(s->cur.watcher_pid, &m) >= 0) {
                        s->cur.watcher_rss_max = MAX(s->cur.watcher_rss_max, m.rss);
                        s->cur.watcher_hwm_max = MAX(s->cur.watcher_hwm_max, m.hwm);
                        s->cur.watcher_samples++;
                }
        }
        pthread_mutex_unlock(&s->lock);
}

static void *sampler_thread(void *userdata) {
        Sampler *s = userdata;
        struct timespec next;

        clock_gettime(CLOCK_MONOTONIC, &next);
        for (;;) {
                bool stop;

                pthread_mutex_lock(&s->lock);
                stop = s->stop;
                pthread_mutex_unlock(&s->lock);
                if (stop)
                        break;
                sample(s);

                /* Fixed rate, not fixed gaps: a slow read does not shift later samples. */
                next.tv_nsec += (long) (s->interval * NSEC_PER_USEC);
                while (next.tv_nsec >= 1000000000L) {
                        next.tv_sec++;
                        next.tv_nsec -= 1000000000L;
                }
                while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR)
                        ;
        }
        return NULL;
}

int sampler_start(Sampler *s, pid_t daemon_pid, const char *watcher_comm, usec_t interval) {
        int r;

        *s = (Sampler) {
                .interval = interval,
                .daemon_pid = daemon_pid,
                .watcher_comm = watcher_comm,
        };
        pthread_mutex_init(&s->lock, NULL);
        r = pthread_create(&s->thread, NULL, sampler_thread, s);
        if (r != 0) {
                pthread_mutex_destroy(&s->lock);
                return -r;
        }
        s->started = true;
        return 0;
}

void sampler_stop(Sampler *s) {
        if (!s->started)
                return;
        pthread_mutex_lock(&s->lock);
        s->stop = true;
        pthread_mutex_unlock(&s->lock);
        pthread_join(s->thread, NULL);
        pthread_mutex_destroy(&s->lock);
        s->started = false;
}

void sampler_begin(Sampler *s) {
        pthread_mutex_lock(&s->lock);
        s->cur = (SamplerResult) {};
        s->follow_watcher = true;
        pthread_mutex_unlock(&s->lock);
}

void sampler_watcher_done(Sampler *s) {
        pthread_mutex_lock(&s->lock);
        s->follow_watcher = false;
        pthread_mutex_unlock(&s->lock);
}

void sampler_get(Sampler *s, SamplerResult *ret) {
        pthread_mutex_lock(&s->lock);
        *ret = s->cur;
        pthread_mutex_unlock(&s->lock);
}
