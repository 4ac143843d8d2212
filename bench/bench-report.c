/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <inttypes.h>
#include <stdio.h>

#include "bench-format.h"
#include "bench-report.h"
#include "bench.h"
#include "macro.h"

const char *combo_label(char *buf, size_t size, const Combo *c) {
        char s[32], rsv[32];

        fmt_size(s, sizeof(s), c->size);
        if (c->reserve > 0)
                snprintf(buf, size, "%s (of %s reserved) thr=%u %s", s, fmt_size(rsv, sizeof(rsv), c->reserve),
                         c->threads, content_names[c->content]);
        else
                snprintf(buf, size, "%s thr=%u %s", s, c->threads, content_names[c->content]);
        return buf;
}

static void json_combo_fields(FILE *f, const Combo *c) {
        fprintf(f, "\"size\":%" PRIu64 ",\"reserve\":%" PRIu64 ",\"threads\":%u,\"content\":", c->size, c->reserve,
                c->threads);
        json_string(f, content_names[c->content]);
        fputs(",\"codec\":", f);
        json_string(f, arg_codec);
        fprintf(f, ",\"encrypt\":%s", arg_no_encrypt ? "false" : "true");
}

static void json_metrics(FILE *f, const double *v) {
        for (size_t m = 0; m < _METRIC_MAX; m++) {
                if (!arg_compare && (m == METRIC_COMPARE_CHECKPOINT_USEC || m == METRIC_COMPARE_RESTORE_USEC ||
                                     m == METRIC_COMPARE_CYCLE_USEC))
                        continue;
                if (!arg_lazy && metric_is_lazy(m))
                        continue;
                fprintf(f, ",\"%s\":", metrics[m].name);
                json_number(f, v[m], metrics[m].unit);
        }
}

void json_run(const Combo *c, size_t idx) {
        fputs("{\"type\":\"run\",", stdout);
        json_combo_fields(stdout, c);
        fprintf(stdout, ",\"run\":%zu", idx + 1);
        json_metrics(stdout, c->runs[idx].v);
        fputs("}\n", stdout);
        fflush(stdout);
}

void json_summary(const Bench *b, const Combo *c) {
        const Limits *l = &b->limits;
        const double *m = c->med;

        fputs("{\"type\":\"summary\",", stdout);
        json_combo_fields(stdout, c);
        fprintf(stdout, ",\"runs\":%zu", c->n_runs);
        json_metrics(stdout, m);
        fputs(",\"checkpoint_of_write\":", stdout);
        json_number(stdout, m[METRIC_CHECKPOINT_GIBPS] / l->write_gibps, UNIT_RATIO);
        fputs(",\"restore_of_memcpy\":", stdout);
        json_number(stdout, m[METRIC_RESTORE_GIBPS] / l->memcpy_gibps, UNIT_RATIO);
        fputs(",\"restore_of_fresh_copy\":", stdout);
        json_number(stdout, m[METRIC_RESTORE_GIBPS] / l->fresh_copy_gibps, UNIT_RATIO);
        fputs(",\"restore_of_fresh_copy_parallel\":", stdout);
        json_number(stdout, m[METRIC_RESTORE_GIBPS] / l->fresh_copy_parallel_gibps, UNIT_RATIO);
        fputs(",\"watcher_peak_rss_max\":", stdout);
        json_number(stdout, watcher_peak_max(c), UNIT_BYTES);
        if (arg_compare) {
                fputs(",\"compare_cycle_ratio\":", stdout);
                json_number(stdout, m[METRIC_COMPARE_CYCLE_USEC] / m[METRIC_FROZEN_USEC], UNIT_RATIO);
                if (arg_compare_restore) {
                        fputs(",\"compare_checkpoint_ratio\":", stdout);
                        json_number(stdout, m[METRIC_COMPARE_CHECKPOINT_USEC] / m[METRIC_CHECKPOINT_USEC],
                                    UNIT_RATIO);
                        fputs(",\"compare_restore_ratio\":", stdout);
                        json_number(stdout, m[METRIC_COMPARE_RESTORE_USEC] / m[METRIC_RESTORE_USEC], UNIT_RATIO);
                }
        }
        fputs("}\n", stdout);
        fflush(stdout);
}

void json_limits(const Bench *b) {
        const Limits *l = &b->limits;

        fprintf(stdout,
                "{\"type\":\"limits\",\"cpus\":%u,\"memcpy_gibps\":%.4f,\"fresh_copy_gibps\":%.4f,"
                "\"fresh_copy_parallel_gibps\":%.4f,\"write_gibps\":%.4f,\"read_gibps\":%.4f,"
                "\"limits_bytes\":%" PRIu64 ",\"io_size\":%zu,\"dump_dir\":",
                l->n_cpus, l->memcpy_gibps, l->fresh_copy_gibps, l->fresh_copy_parallel_gibps, l->write_gibps,
                l->read_gibps, l->bytes, LIMITS_IO_SIZE);
        json_string(stdout, b->dump_dir);
        fputs(",\"fs\":", stdout);
        json_string(stdout, l->fs_type);
        fprintf(stdout, ",\"memcrd_idle_rss\":%" PRIu64 ",\"loadavg\":%.2f}\n", b->memcrd_idle_rss,
                b->load_start);
        fflush(stdout);
}

typedef enum ColumnGroup {
        COLUMNS_BASE = 1 << 0,
        COLUMNS_COMPARE = 1 << 1,       /* --compare */
        COLUMNS_COMPARE_SPLIT = 1 << 2, /* --compare with --compare-restore */
} ColumnGroup;

typedef struct Column {
        const char *header;
        int width;
        ColumnGroup group;
        const char *(*format)(const Bench *b, const Combo *c, char *buf, size_t size);
} Column;

static const char *col_size(const Bench *b, const Combo *c, char *buf, size_t size) {
        return fmt_size(buf, size, c->size);
}

static const char *col_reserve(const Bench *b, const Combo *c, char *buf, size_t size) {
        return c->reserve > 0 ? fmt_size(buf, size, c->reserve) : "-";
}

static const char *col_threads(const Bench *b, const Combo *c, char *buf, size_t size) {
        snprintf(buf, size, "%u", c->threads);
        return buf;
}

static const char *col_content(const Bench *b, const Combo *c, char *buf, size_t size) {
        return content_names[c->content];
}

static const char *col_checkpoint(const Bench *b, const Combo *c, char *buf, size_t size) {
        return fmt_usec(buf, size, c->med[METRIC_CHECKPOINT_USEC]);
}

static const char *col_checkpoint_rate(const Bench *b, const Combo *c, char *buf, size_t size) {
        return fmt_rate(buf, size, c->med[METRIC_CHECKPOINT_GIBPS]);
}

static const char *col_checkpoint_of_write(const Bench *b, const Combo *c, char *buf, size_t size) {
        return fmt_pct(buf, size, c->med[METRIC_CHECKPOINT_GIBPS], b->limits.write_gibps);
}

static const char *col_restore(const Bench *b, const Combo *c, char *buf, size_t size) {
        return fmt_usec(buf, size, c->med[METRIC_RESTORE_USEC]);
}

static const char *col_restore_rate(const Bench *b, const Combo *c, char *buf, size_t size) {
        return fmt_rate(buf, size, c->med[METRIC_RESTORE_GIBPS]);
}

static const char *col_restore_of_memcpy(const Bench *b, const Combo *c, char *buf, size_t size) {
        return fmt_pct(buf, size, c->med[METRIC_RESTORE_GIBPS], b->limits.memcpy_gibps);
}

static const char *col_restore_of_fresh(const Bench *b, const Combo *c, char *buf, size_t size) {
        return fmt_pct(buf, size, c->med[METRIC_RESTORE_GIBPS], b->limits.fresh_copy_gibps);
}

static const char *col_restore_of_fresh_parallel(const Bench *b, const Combo *c, char *buf, size_t size) {
        return fmt_pct(buf, size, c->med[METRIC_RESTORE_GIBPS], b->limits.fresh_copy_parallel_gibps);
}

static const char *col_frozen(const Bench *b, const Combo *c, char *buf, size_t size) {
        return fmt_usec(buf, size, c->med[METRIC_FROZEN_USEC]);
}

static const char *col_rss(const Bench *b, const Combo *c, char *buf, size_t size) {
        char x[32], y[32];

        snprintf(buf, size, "%s->%s", fmt_bytes(x, sizeof(x), c->med[METRIC_RSS_BEFORE]),
                 fmt_bytes(y, sizeof(y), c->med[METRIC_RSS_FROZEN]));
        return buf;
}

static const char *col_dump(const Bench *b, const Combo *c, char *buf, size_t size) {
        return fmt_bytes(buf, size, c->med[METRIC_DUMP_FILE_BYTES]);
}

static const char *col_memcrd_cpu(const Bench *b, const Combo *c, char *buf, size_t size) {
        return fmt_usec(buf, size, c->med[METRIC_MEMCRD_CPU_USEC]);
}

static const char *col_watcher_cpu(const Bench *b, const Combo *c, char *buf, size_t size) {
        return fmt_usec(buf, size, c->med[METRIC_WATCHER_CPU_USEC]);
}

static const char *col_memcrd_peak(const Bench *b, const Combo *c, char *buf, size_t size) {
        return fmt_bytes(buf, size, c->med[METRIC_MEMCRD_PEAK_RSS]);
}

static const char *col_watcher_peak(const Bench *b, const Combo *c, char *buf, size_t size) {
        char x[32], y[32];

        snprintf(buf, size, "%s/%s", fmt_bytes(x, sizeof(x), c->med[METRIC_WATCHER_MAXRSS]),
                 fmt_bytes(y, sizeof(y), c->med[METRIC_WATCHER_RSS_MAX]));
        return buf;
}

static const char *col_others(const Bench *b, const Combo *c, char *buf, size_t size) {
        return fmt_pct(buf, size, c->med[METRIC_OTHERS_LOAD], 1.0);
}

static const char *col_compare_cycle(const Bench *b, const Combo *c, char *buf, size_t size) {
        return fmt_usec(buf, size, c->med[METRIC_COMPARE_CYCLE_USEC]);
}

static const char *col_compare_cycle_ratio(const Bench *b, const Combo *c, char *buf, size_t size) {
        snprintf(buf, size, "%.2f", c->med[METRIC_COMPARE_CYCLE_USEC] / c->med[METRIC_FROZEN_USEC]);
        return buf;
}

static const char *col_compare_checkpoint(const Bench *b, const Combo *c, char *buf, size_t size) {
        return fmt_usec(buf, size, c->med[METRIC_COMPARE_CHECKPOINT_USEC]);
}

static const char *col_compare_checkpoint_ratio(const Bench *b, const Combo *c, char *buf, size_t size) {
        snprintf(buf, size, "%.2f", c->med[METRIC_COMPARE_CHECKPOINT_USEC] / c->med[METRIC_CHECKPOINT_USEC]);
        return buf;
}

static const char *col_compare_restore(const Bench *b, const Combo *c, char *buf, size_t size) {
        return fmt_usec(buf, size, c->med[METRIC_COMPARE_RESTORE_USEC]);
}

static const char *col_compare_restore_ratio(const Bench *b, const Combo *c, char *buf, size_t size) {
        snprintf(buf, size, "%.2f", c->med[METRIC_COMPARE_RESTORE_USEC] / c->med[METRIC_RESTORE_USEC]);
        return buf;
}

static const Column columns[] = {
        { "size", 5, COLUMNS_BASE, col_size },
        { "resv", 4, COLUMNS_BASE, col_reserve },
        { "thr", 3, COLUMNS_BASE, col_threads },
        { "content", 7, COLUMNS_BASE, col_content },
        { "checkpoint", 10, COLUMNS_BASE, col_checkpoint },
        { "ckpt GiB/s", 10, COLUMNS_BASE, col_checkpoint_rate },
        { "%write", 6, COLUMNS_BASE, col_checkpoint_of_write },
        { "restore", 8, COLUMNS_BASE, col_restore },
        { "rest GiB/s", 10, COLUMNS_BASE, col_restore_rate },
        { "%memcpy", 7, COLUMNS_BASE, col_restore_of_memcpy },
        { "%fresh", 6, COLUMNS_BASE, col_restore_of_fresh },
        { "%freshN", 7, COLUMNS_BASE, col_restore_of_fresh_parallel },
        { "frozen", 7, COLUMNS_BASE, col_frozen },
        { "rss before->after", 17, COLUMNS_BASE, col_rss },
        { "dump", 7, COLUMNS_BASE, col_dump },
        { "memcrd cpu", 10, COLUMNS_BASE, col_memcrd_cpu },
        { "watcher cpu", 11, COLUMNS_BASE, col_watcher_cpu },
        { "memcrd peak", 11, COLUMNS_BASE, col_memcrd_peak },
        { "watcher peak", 13, COLUMNS_BASE, col_watcher_peak },
        { "others", 6, COLUMNS_BASE, col_others },
        { "other ckpt", 10, COLUMNS_COMPARE_SPLIT, col_compare_checkpoint },
        { "x ours", 6, COLUMNS_COMPARE_SPLIT, col_compare_checkpoint_ratio },
        { "other rest", 10, COLUMNS_COMPARE_SPLIT, col_compare_restore },
        { "x ours", 6, COLUMNS_COMPARE_SPLIT, col_compare_restore_ratio },
        { "other cycle", 11, COLUMNS_COMPARE, col_compare_cycle },
        { "x ours", 6, COLUMNS_COMPARE, col_compare_cycle_ratio },
};

static unsigned column_groups(void) {
        unsigned g = COLUMNS_BASE;

        if (arg_compare)
                g |= COLUMNS_COMPARE;
        if (arg_compare_restore)
                g |= COLUMNS_COMPARE_SPLIT;
        return g;
}

void print_limits(const Bench *b) {
        const Limits *l = &b->limits;
        char x[32];

        printf("machine: %u CPUs; memcpy %.2f GiB/s; copy into fresh memory %.2f GiB/s (1 thread), "
               "%.2f GiB/s (%u threads)\n",
               l->n_cpus, l->memcpy_gibps, l->fresh_copy_gibps, l->fresh_copy_parallel_gibps, l->n_cpus);
        printf("dump directory %s (%s): write %.2f GiB/s, read %.2f GiB/s (%zu MiB write()/pread() calls)\n",
               b->dump_dir, l->fs_type, l->write_gibps, l->read_gibps, LIMITS_IO_SIZE / (size_t) MIB);
        printf("memcrd idle RSS %s; load average %.2f\n", fmt_bytes(x, sizeof(x), (double) b->memcrd_idle_rss),
               b->load_start);
        fflush(stdout);
}

void print_table(const Bench *b) {
        unsigned groups = column_groups();
        char buf[128], x[32];

        printf("\n");
        for (size_t i = 0; i < ELEMENTSOF(columns); i++)
                if (columns[i].group & groups)
                        printf("%s%*s", i > 0 ? "  " : "", columns[i].width, columns[i].header);
        printf("\n");
        for (size_t k = 0; k < b->n_combos; k++) {
                const Combo *c = &b->combos[k];

                for (size_t i = 0; i < ELEMENTSOF(columns); i++)
                        if (columns[i].group & groups)
                                printf("%s%*s", i > 0 ? "  " : "", columns[i].width,
                                       columns[i].format(b, c, buf, sizeof(buf)));
                printf("\n");
        }
        printf("\nmedians of %u runs; codec %s, %s; hold %.1f s; memcrd idle RSS %s at start, %s after;\n"
               "load average %.2f at start, %.2f at the end\n",
               arg_runs, arg_codec, arg_no_encrypt ? "not encrypted (authenticated)" : "encrypted", arg_hold,
               fmt_bytes(buf, sizeof(buf), (double) b->memcrd_idle_rss),
               fmt_bytes(x, sizeof(x), (double) b->memcrd_idle_rss_after), b->load_start, b->load_end);
        printf("checkpoint, restore: request to reply; GiB/s: dumped bytes by that time; %%write: of the\n"
               "write bandwidth; %%memcpy, %%fresh, %%freshN: of memcpy and of copying into fresh memory\n"
               "(1 thread, %u threads); frozen: checkpoint request to restore reply, hold included;\n"
               "rss: target before checkpoint and frozen; dump: file size; cpu: user+system (memcrd:\n"
               "/proc/PID/stat, in clock ticks; watcher: wait4);\n"
               "peak: memcrd VmHWM, watcher ru_maxrss/sampled VmRSS; others: CPU share taken by other\n"
               "processes during checkpoint and restore\n",
               b->limits.n_cpus);
        if (arg_compare)
                printf("other: '%s'%s%s%s; x ours: other time / ours%s\n", arg_compare,
                       arg_compare_restore ? ", then '" : "", arg_compare_restore ?: "",
                       arg_compare_restore ? "'" : "",
                       arg_compare_restore ? "" : " (ours: checkpoint + hold + restore)");
        fflush(stdout);
}

void print_lazy_table(const Bench *b) {
        char x[7][32];

        printf("\nlazy restore (the same targets, checkpointed again after the eager cycle):\n\n");
        printf("%5s  %3s  %7s  %13s  %10s  %10s  %13s  %12s  %12s  %7s\n", "size", "thr", "content",
               "eager restore", "lazy reply", "running", "fully resident", "first access", "slowest", "missing");
        for (size_t k = 0; k < b->n_combos; k++) {
                const Combo *c = &b->combos[k];

                if (c->reserve > 0)
                        continue;
                printf("%5s  %3u  %7s  %13s  %10s  %10s  %14s  %12s  %12s  %4.0f/%d\n",
                       fmt_size(x[0], sizeof(x[0]), c->size), c->threads, content_names[c->content],
                       fmt_usec(x[1], sizeof(x[1]), c->med[METRIC_RESTORE_USEC]),
                       fmt_usec_fine(x[2], sizeof(x[2]), c->med[METRIC_LAZY_REPLY_USEC]),
                       fmt_usec_fine(x[3], sizeof(x[3]), c->med[METRIC_LAZY_RUNNING_USEC]),
                       fmt_usec(x[4], sizeof(x[4]), c->med[METRIC_LAZY_RESIDENT_USEC]),
                       fmt_usec_fine(x[5], sizeof(x[5]), c->med[METRIC_LAZY_ACCESS_USEC]),
                       fmt_usec_fine(x[6], sizeof(x[6]), c->max[METRIC_LAZY_ACCESS_MAX_USEC]),
                       c->med[METRIC_LAZY_ACCESS_MISSING], LATENCY_SAMPLES);
        }
        printf("\nmedians of %u runs; eager restore: request to reply (the target runs after the last page);\n"
               "lazy reply: request to reply; running: request to the first instruction the target ran\n"
               "(its own time stamp); fully resident: request to the watcher's exit; first access: the\n"
               "target's first read of a page not yet back (median over the missing pages of %d sampled\n"
               "across its memory right after the reply; slowest: over all runs); missing: how many of the\n"
               "sampled pages were not yet back\n",
               arg_runs, LATENCY_SAMPLES);
        fflush(stdout);
}
