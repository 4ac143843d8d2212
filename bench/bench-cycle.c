/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench-cycle.h"
#include "bench-proc.h"
#include "bench-target.h"
#include "bench.h"
#include "macro.h"
#include "memcr-client.h"
#include "time-util.h"

static int request(const Bench *b, bool checkpoint, bool lazy, pid_t pid, MemcrReply *reply, usec_t *ret_usec) {
        _cleanup_(memcr_client_freep) MemcrClient *c = NULL;
        MemcrClientOptions o = {
                .dump_dir = b->dump_dir,
                .codec = arg_codec,
                .timeout_msec = REQUEST_TIMEOUT_MSEC,
                .no_encrypt = arg_no_encrypt,
                .lazy = !checkpoint && lazy,
                .eager = !checkpoint && !lazy,
        };
        usec_t t0;
        int r;

        r = memcr_client_connect(b->socket_path, &c);
        if (r < 0) {
                fprintf(stderr, "memcr-bench: cannot connect to memcrd: %s\n", strerror(-r));
                return r;
        }
        t0 = now_usec(CLOCK_MONOTONIC);
        r = checkpoint ? memcr_client_checkpoint(c, pid, &o, reply) : memcr_client_restore(c, pid, &o, reply);
        *ret_usec = now_usec(CLOCK_MONOTONIC) - t0;
        if (r < 0) {
                fprintf(stderr, "memcr-bench: %s of %i: no answer from memcrd: %s\n",
                        checkpoint ? "checkpoint" : "restore", (int) pid, strerror(-r));
                return r;
        }
        if (reply->result != MEMCR_CLIENT_OK) {
                fprintf(stderr, "memcr-bench: %s of %i failed: %s%s%s\n", checkpoint ? "checkpoint" : "restore",
                        (int) pid, memcr_client_result_to_string(reply->result), reply->message[0] ? ": " : "",
                        reply->message);
                return -EIO;
        }
        return 0;
}

/* Wait for a watcher to exit (it is our child: we are its subreaper). */
static int reap(pid_t pid, struct rusage *ru) {
        usec_t deadline = now_usec(CLOCK_MONOTONIC) + WATCHER_EXIT_TIMEOUT;
        int st;

        for (;;) {
                pid_t k = wait4(pid, &st, WNOHANG, ru);
                if (k == pid)
                        return 0;
                if (k < 0 && errno != EINTR)
                        return -errno;
                if (now_usec(CLOCK_MONOTONIC) > deadline)
                        return -ETIMEDOUT;
                usleep_safe(USEC_PER_MSEC);
        }
}

static double tv_usec(const struct timeval *tv) {
        return (double) tv->tv_sec * 1e6 + (double) tv->tv_usec;
}

static double rate(double bytes, double usec) {
        return usec > 0 ? bytes / (double) GIB / (usec / 1e6) : NAN;
}

/* Replace {pid} and {dump_dir} in cmd. */
static char *expand(const char *cmd, pid_t pid, const char *dump_dir) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        if (!f)
                return NULL;
        for (const char *p = cmd; *p;) {
                if (startswith(p, "{pid}")) {
                        fprintf(f, "%i", (int) pid);
                        p += strlen("{pid}");
                } else if (startswith(p, "{dump_dir}")) {
                        fputs(dump_dir, f);
                        p += strlen("{dump_dir}");
                } else
                        fputc(*p++, f);
        }
        if (fclose(f) != 0) {
                free(buf);
                return NULL;
        }
        return buf;
}

static int run_shell(const char *cmd, usec_t *ret_usec) {
        usec_t t0 = now_usec(CLOCK_MONOTONIC);
        pid_t pid;
        int st;

        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                int null = open("/dev/null", O_RDWR | O_CLOEXEC);
                sigset_t none;

                if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0)
                        _exit(126);
                sigemptyset(&none);
                sigprocmask(SIG_SETMASK, &none, NULL);
                (void) signal(SIGPIPE, SIG_DFL);
                execl("/bin/sh", "sh", "-c", cmd, (char *) NULL);
                _exit(127);
        }
        while (waitpid(pid, &st, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        *ret_usec = now_usec(CLOCK_MONOTONIC) - t0;
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
                fprintf(stderr, "memcr-bench: '%s' failed (status 0x%x)\n", cmd, (unsigned) st);
                return -EIO;
        }
        return 0;
}

/* The same kind of target through the other tool's command lines. */
static int compare_cycle(const Bench *b, const Combo *c, Run *run) {
        _cleanup_(target_done) Target t = TARGET_NULL;
        _cleanup_free_ char *cmd = NULL, *cmd_restore = NULL;
        usec_t u1, u2 = 0;
        int r;

        r = target_start(b, c, &t);
        if (r < 0)
                return r;
        cmd = expand(arg_compare, t.pid, b->dump_dir);
        if (!cmd)
                return -ENOMEM;
        r = run_shell(cmd, &u1);
        if (r < 0)
                return r;
        if (arg_compare_restore) {
                cmd_restore = expand(arg_compare_restore, t.pid, b->dump_dir);
                if (!cmd_restore)
                        return -ENOMEM;
                usleep_safe((usec_t) (arg_hold * 1e6));
                r = run_shell(cmd_restore, &u2);
                if (r < 0)
                        return r;
                run->v[METRIC_COMPARE_CHECKPOINT_USEC] = (double) u1;
                run->v[METRIC_COMPARE_RESTORE_USEC] = (double) u2;
                run->v[METRIC_COMPARE_CYCLE_USEC] = (double) u1 + (double) (usec_t) (arg_hold * 1e6) + (double) u2;
        } else
                run->v[METRIC_COMPARE_CYCLE_USEC] = (double) u1;
        r = target_verify(&t);
        if (r < 0)
                fprintf(stderr, "memcr-bench: the target of '%s' failed verification\n", cmd);
        return r;
}

/* CPU time of the machine and of the processes taking part, to tell how
 * much of the machine other processes took while we measured. */
typedef struct CpuSnap {
        usec_t at;
        usec_t busy;    /* all CPUs */
        usec_t ours;    /* this process, memcrd and the target */
        usec_t watcher;
        bool ok;
        bool watcher_ok;
} CpuSnap;

static void cpu_snap(const Bench *b, pid_t target, pid_t watcher, CpuSnap *ret) {
        struct rusage self;
        usec_t d = 0, t = 0;

        *ret = (CpuSnap) { .at = now_usec(CLOCK_MONOTONIC) };
        ret->ok = proc_stat_busy_usec(&ret->busy) >= 0 && getrusage(RUSAGE_SELF, &self) >= 0 &&
                  proc_cpu_usec(b->memcrd_pid, &d) >= 0 && proc_cpu_usec(target, &t) >= 0;
        if (ret->ok)
                ret->ours = (usec_t) (tv_usec(&self.ru_utime) + tv_usec(&self.ru_stime)) + d + t;
        ret->watcher_ok = watcher <= 0 || proc_cpu_usec(watcher, &ret->watcher) >= 0;
}

/* Busy CPU time between a and b that was not ours, as a share of the machine. */
static double others_load(const CpuSnap *a, const CpuSnap *b, unsigned n_cpus, double *capacity) {
        double busy = (double) b->busy - (double) a->busy;
        double ours = ((double) b->ours + (double) b->watcher) - ((double) a->ours + (double) a->watcher);

        *capacity += (double) (b->at - a->at) * n_cpus;
        return MAX(busy - ours, 0.0);
}

/* --lazy: checkpoint the same target again, hold, restore it lazily, and
 * measure while its memory streams back behind it. */
static int lazy_cycle(const Bench *b, Target *t, Run *run) {
        unsigned long long sampled, missing, median_ns, max_ns, bad;
        MemcrReply ck = {}, rs = {};
        uint64_t resumed_ns;
        unsigned seen, pauses;
        usec_t u, t0;
        char line[256];
        int r;

        r = target_stamp(t, &resumed_ns, &seen);
        if (r < 0)
                return r;
        r = request(b, true, false, t->pid, &ck, &u);
        if (r < 0)
                return r;
        usleep_safe((usec_t) (arg_hold * 1e6));

        t0 = now_usec(CLOCK_MONOTONIC);
        r = request(b, false, true, t->pid, &rs, &u);
        if (r < 0)
                return r;
        run->v[METRIC_LAZY_REPLY_USEC] = (double) u;

        /* At once, while pages are still on their way. */
        r = write_all(t->in_fd, "latency mmap\n");
        if (r >= 0)
                r = target_read_line(t, "LATENCY ", VERIFY_TIMEOUT, line, sizeof(line));
        if (r < 0) {
                fprintf(stderr, "memcr-bench: target %i gave no latency figures: %s\n", (int) t->pid,
                        strerror(-r));
                return r;
        }
        if (sscanf(line, "LATENCY sampled=%llu missing=%llu median_ns=%llu max_ns=%llu bad=%llu", &sampled,
                   &missing, &median_ns, &max_ns, &bad) != 5) {
                fprintf(stderr, "memcr-bench: target %i: unexpected answer: %s\n", (int) t->pid, line);
                return -EBADMSG;
        }
        if (bad > 0) {
                fprintf(stderr, "memcr-bench: VERIFICATION FAILED while streaming: %s\n", line);
                return -EBADMSG;
        }
        run->v[METRIC_LAZY_ACCESS_MISSING] = (double) missing;
        if (missing > 0) {
                run->v[METRIC_LAZY_ACCESS_USEC] = (double) median_ns / 1000;
                run->v[METRIC_LAZY_ACCESS_MAX_USEC] = (double) max_ns / 1000;
        }

        r = target_stamp(t, &resumed_ns, &pauses);
        if (r < 0)
                return r;
        if (pauses > seen && resumed_ns / 1000 >= t0)
                run->v[METRIC_LAZY_RUNNING_USEC] = (double) (resumed_ns / 1000 - t0);
        else
                fprintf(stderr, "memcr-bench: target %i did not notice its pause (hold it longer than 50 ms)\n",
                        (int) t->pid);

        /* Every page is back when the watcher is gone. */
        if (ck.info.watcher_pid > 0) {
                r = reap(ck.info.watcher_pid, NULL);
                if (r < 0) {
                        fprintf(stderr, "memcr-bench: cannot collect watcher %i: %s\n", (int) ck.info.watcher_pid,
                                strerror(-r));
                        return r;
                }
                run->v[METRIC_LAZY_RESIDENT_USEC] = (double) (now_usec(CLOCK_MONOTONIC) - t0);
        }
        return 0;
}

/* The watcher's CPU time and peak RSS once it has exited after the restore;
 * s1 is from the checkpoint reply, s3 from the restore reply. */
static void collect_watcher(pid_t watcher, const CpuSnap *s1, CpuSnap *s3, Run *run) {
        struct rusage ru = {};
        int r;

        r = reap(watcher, &ru);
        if (r < 0) {
                fprintf(stderr, "memcr-bench: cannot collect watcher %i: %s\n", (int) watcher, strerror(-r));
                return;
        }
        run->v[METRIC_WATCHER_USER_USEC] = tv_usec(&ru.ru_utime);
        run->v[METRIC_WATCHER_SYS_USEC] = tv_usec(&ru.ru_stime);
        run->v[METRIC_WATCHER_CPU_USEC] = tv_usec(&ru.ru_utime) + tv_usec(&ru.ru_stime);
        run->v[METRIC_WATCHER_MAXRSS] = (double) ru.ru_maxrss * 1024;
        if (s1->watcher_ok) {
                run->v[METRIC_WATCHER_CHECKPOINT_CPU_USEC] = (double) s1->watcher;
                run->v[METRIC_WATCHER_RESTORE_CPU_USEC] =
                        MAX(run->v[METRIC_WATCHER_CPU_USEC] - (double) s1->watcher, 0.0);
        }
        /* Gone before it could be read: its total is the latest figure. */
        if (!s3->watcher_ok) {
                s3->watcher = (usec_t) run->v[METRIC_WATCHER_CPU_USEC];
                s3->watcher_ok = true;
        }
}

int run_cycle(Bench *b, const Combo *c, Run *ret) {
        _cleanup_(target_done) Target t = TARGET_NULL;
        Run run;
        MemcrReply ck = {}, rs = {};
        SamplerResult sr;
        usec_t ck_usec, rs_usec, t0, hold0, hold1, cpu0 = 0, cpu1 = 0;
        CpuSnap s0, s1, s2, s3;
        double others, capacity = 0;
        bool have_cpu;
        ProcMem dm;
        int r;

        for (size_t i = 0; i < _METRIC_MAX; i++)
                run.v[i] = NAN;

        r = target_start(b, c, &t);
        if (r < 0)
                return r;
        run.v[METRIC_TARGET_BYTES] = (double) t.bytes;

        (void) proc_reset_hwm(b->memcrd_pid);
        have_cpu = proc_cpu_usec(b->memcrd_pid, &cpu0) >= 0;
        sampler_begin(&b->sampler);

        cpu_snap(b, t.pid, 0, &s0);
        t0 = now_usec(CLOCK_MONOTONIC);
        r = request(b, true, false, t.pid, &ck, &ck_usec);
        if (r < 0)
                return r;
        cpu_snap(b, t.pid, ck.info.watcher_pid, &s1);
        hold0 = now_usec(CLOCK_MONOTONIC);
        usleep_safe((usec_t) (arg_hold * 1e6));
        hold1 = now_usec(CLOCK_MONOTONIC);
        cpu_snap(b, t.pid, ck.info.watcher_pid, &s2);
        r = request(b, false, false, t.pid, &rs, &rs_usec);
        if (r < 0)
                return r;
        run.v[METRIC_FROZEN_USEC] = (double) (now_usec(CLOCK_MONOTONIC) - t0);
        cpu_snap(b, t.pid, ck.info.watcher_pid, &s3);
        run.v[METRIC_HOLD_USEC] = (double) (hold1 - hold0);

        /* The watcher exits after the restore: stop sampling it before its PID can be reused. */
        sampler_watcher_done(&b->sampler);
        sampler_get(&b->sampler, &sr);
        if (ck.info.watcher_pid > 0 && sr.watcher_pid > 0 && sr.watcher_pid != ck.info.watcher_pid)
                fprintf(stderr, "memcr-bench: sampled watcher %i, but memcrd named %i\n", (int) sr.watcher_pid,
                        (int) ck.info.watcher_pid);
        if (ck.info.watcher_pid > 0)
                collect_watcher(ck.info.watcher_pid, &s1, &s3, &run);
        if (s0.ok && s1.ok && s2.ok && s3.ok && s1.watcher_ok && s2.watcher_ok && s3.watcher_ok) {
                others = others_load(&s0, &s1, b->limits.n_cpus, &capacity) +
                         others_load(&s2, &s3, b->limits.n_cpus, &capacity);
                if (capacity > 0)
                        run.v[METRIC_OTHERS_LOAD] = others / capacity;
        }
        if (sr.watcher_samples > 0)
                run.v[METRIC_WATCHER_RSS_MAX] = (double) sr.watcher_rss_max;
        run.v[METRIC_WATCHER_SAMPLES] = sr.watcher_samples;
        if (sr.daemon_rss_max > 0)
                run.v[METRIC_MEMCRD_RSS_MAX] = (double) sr.daemon_rss_max;
        if (have_cpu && proc_cpu_usec(b->memcrd_pid, &cpu1) >= 0)
                run.v[METRIC_MEMCRD_CPU_USEC] = (double) (cpu1 - cpu0);
        if (proc_mem(b->memcrd_pid, &dm) >= 0)
                run.v[METRIC_MEMCRD_PEAK_RSS] = (double) MAX(dm.hwm, sr.daemon_hwm_max);

        run.v[METRIC_CHECKPOINT_USEC] = (double) ck_usec;
        run.v[METRIC_CHECKPOINT_ENGINE_USEC] = (double) ck.info.duration_usec;
        run.v[METRIC_RESTORE_USEC] = (double) rs_usec;
        run.v[METRIC_RESTORE_ENGINE_USEC] = (double) rs.info.duration_usec;
        run.v[METRIC_RSS_BEFORE] = (double) ck.info.rss_before;
        run.v[METRIC_RSS_FROZEN] = (double) ck.info.rss_after;
        run.v[METRIC_RSS_RESTORED] = (double) rs.info.rss_after;
        run.v[METRIC_DUMP_BYTES] = (double) ck.info.dump_bytes;
        run.v[METRIC_DUMP_FILE_BYTES] = (double) ck.info.dump_file_bytes;
        run.v[METRIC_CHECKPOINT_GIBPS] = rate((double) ck.info.dump_bytes, (double) ck_usec);
        run.v[METRIC_RESTORE_GIBPS] = rate((double) ck.info.dump_bytes, (double) rs_usec);

        if (arg_lazy && c->reserve == 0) {
                r = lazy_cycle(b, &t, &run);
                if (r < 0)
                        return r;
        }

        r = target_verify(&t);
        if (r < 0)
                return r;

        if (arg_compare) {
                r = compare_cycle(b, c, &run);
                if (r < 0)
                        return r;
        }
        *ret = run;
        return 0;
}
