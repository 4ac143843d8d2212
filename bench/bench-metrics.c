/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <math.h>
#include <stdlib.h>

#include "bench.h"
#include "macro.h"

const char *const content_names[_CONTENT_MAX] = {
        [CONTENT_RANDOM] = "random",
        [CONTENT_TEXT] = "text",
};

const MetricInfo metrics[_METRIC_MAX] = {
        [METRIC_TARGET_BYTES] = { "target_bytes", UNIT_BYTES },
        [METRIC_CHECKPOINT_USEC] = { "checkpoint_usec", UNIT_USEC },
        [METRIC_CHECKPOINT_ENGINE_USEC] = { "checkpoint_engine_usec", UNIT_USEC },
        [METRIC_HOLD_USEC] = { "hold_usec", UNIT_USEC },
        [METRIC_RESTORE_USEC] = { "restore_usec", UNIT_USEC },
        [METRIC_RESTORE_ENGINE_USEC] = { "restore_engine_usec", UNIT_USEC },
        [METRIC_FROZEN_USEC] = { "frozen_usec", UNIT_USEC },
        [METRIC_CHECKPOINT_GIBPS] = { "checkpoint_gibps", UNIT_GIBPS },
        [METRIC_RESTORE_GIBPS] = { "restore_gibps", UNIT_GIBPS },
        [METRIC_RSS_BEFORE] = { "rss_before", UNIT_BYTES },
        [METRIC_RSS_FROZEN] = { "rss_frozen", UNIT_BYTES },
        [METRIC_RSS_RESTORED] = { "rss_restored", UNIT_BYTES },
        [METRIC_DUMP_BYTES] = { "dump_bytes", UNIT_BYTES },
        [METRIC_DUMP_FILE_BYTES] = { "dump_file_bytes", UNIT_BYTES },
        [METRIC_MEMCRD_CPU_USEC] = { "memcrd_cpu_usec", UNIT_USEC },
        [METRIC_MEMCRD_PEAK_RSS] = { "memcrd_peak_rss", UNIT_BYTES },
        [METRIC_MEMCRD_RSS_MAX] = { "memcrd_rss_max_sampled", UNIT_BYTES },
        [METRIC_WATCHER_USER_USEC] = { "watcher_user_usec", UNIT_USEC },
        [METRIC_WATCHER_SYS_USEC] = { "watcher_sys_usec", UNIT_USEC },
        [METRIC_WATCHER_CPU_USEC] = { "watcher_cpu_usec", UNIT_USEC },
        [METRIC_WATCHER_CHECKPOINT_CPU_USEC] = { "watcher_checkpoint_cpu_usec", UNIT_USEC },
        [METRIC_WATCHER_RESTORE_CPU_USEC] = { "watcher_restore_cpu_usec", UNIT_USEC },
        [METRIC_WATCHER_MAXRSS] = { "watcher_maxrss", UNIT_BYTES },
        [METRIC_WATCHER_RSS_MAX] = { "watcher_rss_max_sampled", UNIT_BYTES },
        [METRIC_WATCHER_SAMPLES] = { "watcher_samples", UNIT_COUNT },
        [METRIC_OTHERS_LOAD] = { "others_load", UNIT_RATIO },
        [METRIC_COMPARE_CHECKPOINT_USEC] = { "compare_checkpoint_usec", UNIT_USEC },
        [METRIC_COMPARE_RESTORE_USEC] = { "compare_restore_usec", UNIT_USEC },
        [METRIC_COMPARE_CYCLE_USEC] = { "compare_cycle_usec", UNIT_USEC },
        [METRIC_LAZY_REPLY_USEC] = { "lazy_reply_usec", UNIT_USEC },
        [METRIC_LAZY_RUNNING_USEC] = { "lazy_running_usec", UNIT_USEC },
        [METRIC_LAZY_RESIDENT_USEC] = { "lazy_resident_usec", UNIT_USEC },
        [METRIC_LAZY_ACCESS_USEC] = { "lazy_first_access_usec", UNIT_USEC_FRACTION },
        [METRIC_LAZY_ACCESS_MAX_USEC] = { "lazy_first_access_max_usec", UNIT_USEC_FRACTION },
        [METRIC_LAZY_ACCESS_MISSING] = { "lazy_first_access_missing", UNIT_COUNT },
};

bool metric_is_lazy(size_t m) {
        return m >= METRIC_LAZY_REPLY_USEC && m <= METRIC_LAZY_ACCESS_MISSING;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;
        return x < y ? -1 : x > y;
}

void summarize(Combo *c) {
        _cleanup_free_ double *v = calloc(MAX(c->n_runs, (size_t) 1), sizeof(double));

        for (size_t m = 0; m < _METRIC_MAX; m++) {
                size_t n = 0;

                c->med[m] = c->max[m] = NAN;
                if (!v)
                        continue;
                for (size_t i = 0; i < c->n_runs; i++)
                        if (!isnan(c->runs[i].v[m]))
                                v[n++] = c->runs[i].v[m];
                if (n == 0)
                        continue;
                qsort(v, n, sizeof(double), cmp_double);
                c->med[m] = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
                c->max[m] = v[n - 1];
        }
}

/* The larger of the two watcher peak figures, over all runs. */
double watcher_peak_max(const Combo *c) {
        double a = c->max[METRIC_WATCHER_MAXRSS], s = c->max[METRIC_WATCHER_RSS_MAX];
        return isnan(a) ? s : isnan(s) ? a : MAX(a, s);
}

const Combo *find_combo(const Bench *b, uint64_t size, uint64_t reserve, unsigned threads, Content content) {
        for (size_t i = 0; i < b->n_combos; i++) {
                const Combo *c = &b->combos[i];
                if (c->size == size && c->reserve == reserve && c->threads == threads && c->content == content)
                        return c;
        }
        return NULL;
}

double per_gib(const Combo *c, Metric m) {
        return c->med[m] / 1e6 / (c->med[METRIC_DUMP_BYTES] / (double) GIB);
}
