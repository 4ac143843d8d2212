/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * memcr-bench: how fast memcrd checkpoints and restores, next to what the
 * machine itself can do.
 *
 * It measures the machine's limits first (memcpy, copying into freshly
 * mapped memory, writing and reading a file in the dump directory), starts
 * a private memcrd, then, for every combination of target size, target
 * threads and content, runs target processes through checkpoint, hold and
 * restore with the client library and has each target verify every byte
 * afterwards. It is a child subreaper, so the watchers memcrd starts become
 * its children: their CPU time and peak RSS come from wait4(); a sampling
 * thread reads memcrd's and the watcher's RSS from /proc meanwhile.
 *
 * What is measured is a list of metrics per run (Metric in bench.h); the
 * table shows medians through a list of columns (Column in bench-report.c).
 * Another way of restoring adds its metrics, a step in run_cycle()
 * (bench-cycle.c) and a column group.
 *
 * Here: the whole run. bench-args.c: options; bench-limits.c: the machine's
 * limits; bench-daemon.c: the private memcrd; bench-target.c: the target
 * processes; bench-cycle.c: one checkpoint, hold and restore; bench-proc.c:
 * /proc and the sampling thread; bench-metrics.c: metrics and statistics;
 * bench-format.c, bench-report.c: the tables and JSON; bench-requirements.c:
 * the requirements checked against the figures.
 */

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "bench-cycle.h"
#include "bench-daemon.h"
#include "bench-format.h"
#include "bench-limits.h"
#include "bench-proc.h"
#include "bench-report.h"
#include "bench-requirements.h"
#include "bench-target.h"
#include "bench.h"
#include "macro.h"
#include "time-util.h"

static void on_signal(int sig) {
        pid_t t = (pid_t) current_target;

        cancelled = 1;
        /* Whatever request is running fails fast once its target is gone. */
        if (t > 0)
                (void) kill(t, SIGKILL);
}

static int make_combos(Bench *b) {
        size_t n = arg_n_sizes * arg_n_threads * arg_n_contents * arg_n_reserves, k = 0;

        b->combos = calloc(n, sizeof(Combo));
        if (!b->combos)
                return -ENOMEM;
        for (size_t rv = 0; rv < arg_n_reserves; rv++)
                for (size_t s = 0; s < arg_n_sizes; s++)
                        for (size_t t = 0; t < arg_n_threads; t++)
                                for (size_t ct = 0; ct < arg_n_contents; ct++) {
                                        Combo *c = &b->combos[k++];
                                        *c = (Combo) {
                                                .size = arg_sizes[s],
                                                .reserve = arg_reserves[rv],
                                                .threads = arg_threads[t],
                                                .content = arg_contents[ct],
                                        };
                                        c->runs = calloc(arg_runs, sizeof(Run));
                                        if (!c->runs)
                                                return -ENOMEM;
                                }
        b->n_combos = n;
        return 0;
}

static void bench_done(Bench *b) {
        sampler_stop(&b->sampler);
        daemon_stop(b);
        remove_dirs(b);
        for (size_t i = 0; i < b->n_combos; i++)
                free(b->combos[i].runs);
        free(b->combos);
        free(b->dir);
        free(b->socket_path);
        free(b->runtime_dir);
        free(b->state_dir);
        free(b->log_path);
        free(b->dump_dir);
        free(b->memcrd_path);
        free(b->watcher_path);
        free(b->target_path);
        free(b->reserve_target_path);
}

static int run(Bench *b) {
        size_t total, done = 0;
        ProcMem m;
        int r;

        if (geteuid() != 0) {
                fprintf(stderr, "memcr-bench: must run as root (memcrd is started with --polkit=no)\n");
                return -EPERM;
        }
        /* Watchers are double-forked by memcrd: with this they are reparented to us. */
        if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
                return -errno;

        r = find_binaries(b);
        if (r < 0)
                return r;
        r = make_dirs(b);
        if (r < 0) {
                fprintf(stderr, "memcr-bench: cannot create directories: %s\n", strerror(-r));
                return r;
        }
        r = make_combos(b);
        if (r < 0)
                return r;

        r = daemon_start(b);
        if (r < 0)
                return r;
        /* The kernel names a process after the first 15 bytes of its file name. */
        snprintf(b->watcher_comm, sizeof(b->watcher_comm), "%s", basename(b->watcher_path));
        r = sampler_start(&b->sampler, b->memcrd_pid, b->watcher_comm, SAMPLE_INTERVAL);
        if (r < 0)
                return r;

        fprintf(stderr, "memcr-bench: measuring the machine's limits in %s\n", b->dump_dir);
        r = limits_measure(b->dump_dir, &b->limits);
        if (r < 0) {
                fprintf(stderr, "memcr-bench: measuring limits failed: %s\n", strerror(-r));
                return r;
        }
        /* memcrd has been idle all this time. */
        if (proc_mem(b->memcrd_pid, &m) >= 0)
                b->memcrd_idle_rss = m.rss;
        (void) proc_loadavg(&b->load_start);
        if (arg_json)
                json_limits(b);
        else
                print_limits(b);

        total = b->n_combos * arg_runs;
        for (size_t k = 0; k < b->n_combos && !cancelled; k++) {
                Combo *c = &b->combos[k];
                char label[128], x[32], y[32];

                combo_label(label, sizeof(label), c);
                for (unsigned i = 0; i < arg_runs && !cancelled; i++) {
                        Run *rn = &c->runs[i];

                        r = run_cycle(b, c, rn);
                        if (r < 0 && cancelled)
                                break;
                        if (r < 0) {
                                fprintf(stderr, "memcr-bench: %s, run %u failed; stopping\n", label, i + 1);
                                print_daemon_log(b);
                                return r;
                        }
                        c->n_runs++;
                        done++;
                        fprintf(stderr, "memcr-bench: [%zu/%zu] %s run %u: checkpoint %s, restore %s", done,
                                total, label, i + 1, fmt_usec(x, sizeof(x), rn->v[METRIC_CHECKPOINT_USEC]),
                                fmt_usec(y, sizeof(y), rn->v[METRIC_RESTORE_USEC]));
                        if (arg_lazy && c->reserve == 0)
                                fprintf(stderr, "; lazy: running after %s, fully resident after %s",
                                        fmt_usec_fine(x, sizeof(x), rn->v[METRIC_LAZY_RUNNING_USEC]),
                                        fmt_usec(y, sizeof(y), rn->v[METRIC_LAZY_RESIDENT_USEC]));
                        fputc('\n', stderr);
                        if (arg_json)
                                json_run(c, i);
                }
                summarize(c);
                if (arg_json)
                        json_summary(b, c);
        }
        if (cancelled) {
                fprintf(stderr, "memcr-bench: interrupted\n");
                return -ECANCELED;
        }

        /* Let memcrd settle after the last operation. */
        usleep_safe(200 * USEC_PER_MSEC);
        if (proc_mem(b->memcrd_pid, &m) >= 0)
                b->memcrd_idle_rss_after = m.rss;
        (void) proc_loadavg(&b->load_end);
        if (arg_json)
                fprintf(stdout,
                        "{\"type\":\"daemon\",\"memcrd_idle_rss\":%" PRIu64 ",\"memcrd_idle_rss_after\":%" PRIu64
                        ",\"loadavg\":%.2f}\n",
                        b->memcrd_idle_rss, b->memcrd_idle_rss_after, b->load_end);
        else {
                print_table(b);
                if (arg_lazy)
                        print_lazy_table(b);
        }
        check_requirements(b);
        return 0;
}

int main(int argc, char *argv[]) {
        struct sigaction sa = { .sa_handler = on_signal };
        Bench b = {};
        int r;

        r = parse_argv(argc, argv);
        if (r < 0)
                return EXIT_FAILURE;

        sigemptyset(&sa.sa_mask);
        (void) sigaction(SIGINT, &sa, NULL);
        (void) sigaction(SIGTERM, &sa, NULL);
        (void) signal(SIGPIPE, SIG_IGN);

        r = run(&b);
        bench_done(&b);
        args_free();
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
