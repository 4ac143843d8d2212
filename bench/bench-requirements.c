/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <math.h>
#include <stdarg.h>
#include <stdio.h>

#include "bench-format.h"
#include "bench-report.h"
#include "bench-requirements.h"
#include "bench.h"
#include "macro.h"

_printf_(6, 7) static void requirement(const char *name, const char *what, double value, double limit, bool met,
                        const char *fmt, ...) {
        char text[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(text, sizeof(text), fmt, ap);
        va_end(ap);

        if (arg_json) {
                fputs("{\"type\":\"requirement\",\"name\":", stdout);
                json_string(stdout, name);
                fputs(",\"what\":", stdout);
                json_string(stdout, what);
                fputs(",\"value\":", stdout);
                json_number(stdout, value, UNIT_RATIO);
                fputs(",\"limit\":", stdout);
                json_number(stdout, limit, UNIT_RATIO);
                fprintf(stdout, ",\"met\":%s,\"detail\":", met ? "true" : "false");
                json_string(stdout, text);
                fputs("}\n", stdout);
        } else
                printf("  %-8s %s: %s\n", met ? "met" : "NOT MET", what, text);
}

/* Time per GiB at each size against the largest size; the watcher's CPU
 * time per GiB alongside, which other load on the machine disturbs less. */
static void check_linear(const Bench *b, unsigned threads, Content content) {
        const Combo *big = NULL;
        char detail[512] = "", label[64], x[32];
        size_t len = 0;
        double worst = 0;

        for (size_t s = 0; s < arg_n_sizes; s++) {
                const Combo *c = find_combo(b, arg_sizes[s], 0, threads, content);
                if (c && (!big || c->size > big->size))
                        big = c;
        }
        if (!big)
                return;
        for (size_t s = 0; s < arg_n_sizes; s++) {
                const Combo *c = find_combo(b, arg_sizes[s], 0, threads, content);
                double ck, rs;

                if (!c)
                        continue;
                ck = per_gib(c, METRIC_CHECKPOINT_USEC);
                rs = per_gib(c, METRIC_RESTORE_USEC);
                worst = MAX(worst, MAX(fabs(ck / per_gib(big, METRIC_CHECKPOINT_USEC) - 1),
                                       fabs(rs / per_gib(big, METRIC_RESTORE_USEC) - 1)));
                if (len < sizeof(detail))
                        len += (size_t) snprintf(detail + len, sizeof(detail) - len,
                                                 "%s%s: %.3f/%.3f s (watcher cpu %.3f s)", len ? ", " : "",
                                                 fmt_size(x, sizeof(x), c->size), ck, rs,
                                                 per_gib(c, METRIC_WATCHER_CPU_USEC));
        }
        snprintf(label, sizeof(label), "thr=%u %s", threads, content_names[content]);
        requirement("linear", label, worst, 0.2, worst <= 0.2,
                    "checkpoint/restore seconds per GiB %s; largest deviation from %s: %.0f%% (needs within 20%%)",
                    detail, fmt_size(x, sizeof(x), big->size), worst * 100);
}

/* Checkpoint against the write bandwidth, restore against memcpy: 1 GiB, plain dumps. */
static void check_bandwidth(const Bench *b) {
        const Limits *l = &b->limits;
        bool plain = streq(arg_codec, "none") && arg_no_encrypt;
        char label[128];

        for (size_t i = 0; i < b->n_combos; i++) {
                const Combo *c = &b->combos[i];
                double v;

                if (!plain || c->size != GIB || c->reserve != 0 || c->content != CONTENT_RANDOM)
                        continue;
                combo_label(label, sizeof(label), c);
                v = c->med[METRIC_CHECKPOINT_GIBPS] / l->write_gibps;
                requirement("checkpoint_of_write", label, v, 0.5, v >= 0.5,
                            "checkpoint %.2f GiB/s = %.0f%% of write bandwidth %.2f GiB/s (needs >= 50%%)",
                            c->med[METRIC_CHECKPOINT_GIBPS], v * 100, l->write_gibps);
                v = c->med[METRIC_RESTORE_GIBPS] / l->memcpy_gibps;
                requirement("restore_of_memcpy", label, v, 0.4, v >= 0.4,
                            "restore %.2f GiB/s = %.0f%% of memcpy %.2f GiB/s (needs >= 40%%; fresh-copy %.2f / "
                            "%.2f GiB/s)",
                            c->med[METRIC_RESTORE_GIBPS], v * 100, l->memcpy_gibps, l->fresh_copy_gibps,
                            l->fresh_copy_parallel_gibps);
        }
}

/* Thread counts against the smallest one. */
static void check_threads(const Bench *b) {
        char label[128], x[32], y[32], z[32], w[32];

        for (size_t i = 0; i < b->n_combos; i++) {
                const Combo *c = &b->combos[i], *base;
                unsigned t_min = arg_threads[0];

                for (size_t k = 1; k < arg_n_threads; k++)
                        t_min = MIN(t_min, arg_threads[k]);
                if (c->threads == t_min)
                        continue;
                base = find_combo(b, c->size, c->reserve, t_min, c->content);
                if (!base)
                        continue;
                combo_label(label, sizeof(label), c);
                double ck = c->med[METRIC_CHECKPOINT_USEC] / base->med[METRIC_CHECKPOINT_USEC] - 1;
                double rs = c->med[METRIC_RESTORE_USEC] / base->med[METRIC_RESTORE_USEC] - 1;
                double worst = MAX(fabs(ck), fabs(rs));
                requirement("threads", label, worst, 0.2, worst <= 0.2,
                            "vs %u thread(s): checkpoint %+.0f%% (%s vs %s), restore %+.0f%% (%s vs %s) "
                            "(needs within 20%%)",
                            t_min, ck * 100, fmt_usec(x, sizeof(x), c->med[METRIC_CHECKPOINT_USEC]),
                            fmt_usec(y, sizeof(y), base->med[METRIC_CHECKPOINT_USEC]), rs * 100,
                            fmt_usec(z, sizeof(z), c->med[METRIC_RESTORE_USEC]),
                            fmt_usec(w, sizeof(w), base->med[METRIC_RESTORE_USEC]));
        }
}

/* A big reservation against the plain target of the same size. */
static void check_reserve(const Bench *b) {
        char label[128], x[32];

        for (size_t i = 0; i < b->n_combos; i++) {
                const Combo *c = &b->combos[i], *base;

                if (c->reserve == 0)
                        continue;
                base = find_combo(b, c->size, 0, c->threads, c->content);
                if (!base)
                        continue;
                combo_label(label, sizeof(label), c);
                double ck = c->med[METRIC_CHECKPOINT_USEC] / base->med[METRIC_CHECKPOINT_USEC];
                double rs = c->med[METRIC_RESTORE_USEC] / base->med[METRIC_RESTORE_USEC];
                requirement("reserve", label, MAX(ck, rs), 2, MAX(ck, rs) <= 2,
                            "checkpoint %.2fx, restore %.2fx the plain %s target (needs <= 2x)", ck, rs,
                            fmt_size(x, sizeof(x), c->size));
        }
}

/* memcrd idle, and the watcher of a big target. */
static void check_memory(const Bench *b) {
        double idle = (double) MAX(b->memcrd_idle_rss, b->memcrd_idle_rss_after);
        char label[128], x[32], y[32], z[32];

        requirement("memcrd_idle_rss", "memcrd", idle / (double) MIB, 4, idle < 4.0 * MIB,
                    "idle RSS %s at start, %s after the runs (needs < 4 MiB)",
                    fmt_bytes(x, sizeof(x), (double) b->memcrd_idle_rss),
                    fmt_bytes(y, sizeof(y), (double) b->memcrd_idle_rss_after));

        for (size_t i = 0; i < b->n_combos; i++) {
                const Combo *c = &b->combos[i];
                double peak = watcher_peak_max(c);

                if (c->size < 4 * GIB || isnan(peak))
                        continue;
                combo_label(label, sizeof(label), c);
                requirement("watcher_rss", label, peak / (double) MIB, 16, peak < 16.0 * MIB,
                            "watcher peak RSS %s (largest of ru_maxrss %s and sampled VmRSS %s over the runs) "
                            "(needs < 16 MiB)",
                            fmt_bytes(x, sizeof(x), peak), fmt_bytes(y, sizeof(y), c->max[METRIC_WATCHER_MAXRSS]),
                            fmt_bytes(z, sizeof(z), c->max[METRIC_WATCHER_RSS_MAX]));
        }
}

/* --lazy: how soon the target runs again. */
static void check_lazy(const Bench *b) {
        char label[128], x[32], y[32];

        for (size_t i = 0; i < b->n_combos; i++) {
                const Combo *c = &b->combos[i];
                double v = c->med[METRIC_LAZY_RUNNING_USEC];

                if (!arg_lazy || isnan(v))
                        continue;
                combo_label(label, sizeof(label), c);
                requirement("lazy_running", label, v / 1000, 10, v <= 10000,
                            "lazy restore: running %.1f ms after the request (median; slowest %.1f ms), fully "
                            "resident after %s; eager restore %s (needs <= 10 ms)",
                            v / 1000, c->max[METRIC_LAZY_RUNNING_USEC] / 1000,
                            fmt_usec(x, sizeof(x), c->med[METRIC_LAZY_RESIDENT_USEC]),
                            fmt_usec(y, sizeof(y), c->med[METRIC_RESTORE_USEC]));
        }
}

/* lz4 on compressible content. */
static void check_lz4(const Bench *b) {
        char label[128], x[32], y[32];

        for (size_t i = 0; i < b->n_combos; i++) {
                const Combo *c = &b->combos[i];
                double v = c->med[METRIC_CHECKPOINT_GIBPS];

                if (!streq(arg_codec, "lz4") || c->content != CONTENT_TEXT)
                        continue;
                combo_label(label, sizeof(label), c);
                requirement("lz4", label, v, 1, v >= 1,
                            "lz4 checkpoint %.2f GiB/s, dump %s for %s of data, %s (needs >= 1 GiB/s)", v,
                            fmt_bytes(x, sizeof(x), c->med[METRIC_DUMP_FILE_BYTES]),
                            fmt_bytes(y, sizeof(y), c->med[METRIC_DUMP_BYTES]),
                            arg_no_encrypt ? "not encrypted" : "encrypted");
        }
}

void check_requirements(const Bench *b) {
        if (!arg_json)
                printf("\nrequirements (from this run):\n");

        check_bandwidth(b);
        check_threads(b);
        if (arg_n_sizes >= 2)
                for (size_t t = 0; t < arg_n_threads; t++)
                        for (size_t ct = 0; ct < arg_n_contents; ct++)
                                check_linear(b, arg_threads[t], arg_contents[ct]);
        check_reserve(b);
        check_memory(b);
        check_lazy(b);
        check_lz4(b);
        fflush(stdout);
}
