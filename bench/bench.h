/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * What memcr-bench measures and how it is set up: the metrics of one run,
 * the combinations of target size, reservation, threads and content that
 * are run, the state of a benchmark, and the command line options.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "bench-limits.h"
#include "bench-proc.h"
#include "macro.h"
#include "memcr-client.h"
#include "time-util.h"

#define SAMPLE_INTERVAL (20 * USEC_PER_MSEC)
#define READY_TIMEOUT (600 * USEC_PER_SEC)
#define VERIFY_TIMEOUT (600 * USEC_PER_SEC)
#define DAEMON_START_TIMEOUT (10 * USEC_PER_SEC)
#define WATCHER_EXIT_TIMEOUT (30 * USEC_PER_SEC)
#define REQUEST_TIMEOUT_MSEC (30 * 60 * 1000)
#define LATENCY_SAMPLES 64 /* pages memcr-test-target's "latency" command reads */
#define MIB ((uint64_t) 1 << 20)
#define GIB ((uint64_t) 1 << 30)

DEFINE_TRIVIAL_CLEANUP_FUNC(MemcrClient *, memcr_client_free);

typedef enum Content {
        CONTENT_RANDOM, /* the target's default pattern: incompressible */
        CONTENT_TEXT,   /* --compressible: repeated text, one mixed word per 256 bytes */
        _CONTENT_MAX,
} Content;

extern const char *const content_names[_CONTENT_MAX];

typedef enum Unit {
        UNIT_USEC,
        UNIT_USEC_FRACTION, /* microseconds, with three decimals */
        UNIT_BYTES,
        UNIT_GIBPS,
        UNIT_RATIO,
        UNIT_COUNT,
} Unit;

typedef enum Metric {
        METRIC_TARGET_BYTES,           /* the target's own count of its data */
        METRIC_CHECKPOINT_USEC,        /* request to reply */
        METRIC_CHECKPOINT_ENGINE_USEC, /* as the watcher reports it */
        METRIC_HOLD_USEC,
        METRIC_RESTORE_USEC,           /* request to reply: the target runs */
        METRIC_RESTORE_ENGINE_USEC,
        METRIC_FROZEN_USEC,            /* checkpoint request to restore reply */
        METRIC_CHECKPOINT_GIBPS,       /* dump bytes / checkpoint time */
        METRIC_RESTORE_GIBPS,
        METRIC_RSS_BEFORE,
        METRIC_RSS_FROZEN,
        METRIC_RSS_RESTORED,
        METRIC_DUMP_BYTES,
        METRIC_DUMP_FILE_BYTES,
        METRIC_MEMCRD_CPU_USEC,        /* over the whole cycle */
        METRIC_MEMCRD_PEAK_RSS,        /* VmHWM, reset before the cycle */
        METRIC_MEMCRD_RSS_MAX,         /* sampled VmRSS */
        METRIC_WATCHER_USER_USEC,
        METRIC_WATCHER_SYS_USEC,
        METRIC_WATCHER_CPU_USEC,
        METRIC_WATCHER_CHECKPOINT_CPU_USEC, /* until the checkpoint reply, /proc/PID/stat */
        METRIC_WATCHER_RESTORE_CPU_USEC,    /* the rest */
        METRIC_WATCHER_MAXRSS,         /* ru_maxrss */
        METRIC_WATCHER_RSS_MAX,        /* sampled VmRSS */
        METRIC_WATCHER_SAMPLES,
        METRIC_OTHERS_LOAD,            /* CPU share of other processes during checkpoint and restore */
        METRIC_COMPARE_CHECKPOINT_USEC,
        METRIC_COMPARE_RESTORE_USEC,
        METRIC_COMPARE_CYCLE_USEC,     /* the other tool's checkpoint, hold and restore */
        /* --lazy: a second checkpoint of the same target, restored lazily */
        METRIC_LAZY_REPLY_USEC,        /* restore request to reply */
        METRIC_LAZY_RUNNING_USEC,      /* restore request to the target's first instruction (its own stamp) */
        METRIC_LAZY_RESIDENT_USEC,     /* restore request to the watcher's exit: every page back */
        METRIC_LAZY_ACCESS_USEC,       /* the target's first read of a missing page: median of the sample */
        METRIC_LAZY_ACCESS_MAX_USEC,   /* ... and the slowest */
        METRIC_LAZY_ACCESS_MISSING,    /* sampled pages that were still missing (of LATENCY_SAMPLES) */
        _METRIC_MAX,
} Metric;

typedef struct MetricInfo {
        const char *name;
        Unit unit;
} MetricInfo;

extern const MetricInfo metrics[_METRIC_MAX];

typedef struct Run {
        double v[_METRIC_MAX]; /* NAN: not measured */
} Run;

typedef struct Combo {
        uint64_t size;
        uint64_t reserve; /* 0: memcr-test-target, else reserve-target */
        unsigned threads;
        Content content;
        Run *runs;
        size_t n_runs;
        double med[_METRIC_MAX];
        double max[_METRIC_MAX];
} Combo;

typedef struct Bench {
        char *dir; /* private: socket, runtime and state directories, log */
        char *socket_path;
        char *runtime_dir;
        char *state_dir;
        char *log_path;
        char *dump_dir;
        bool own_dump_dir;
        char *memcrd_path;
        char *watcher_path;
        char watcher_comm[16];
        char *target_path;
        char *reserve_target_path;
        pid_t memcrd_pid;
        Sampler sampler;
        Limits limits;
        uint64_t memcrd_idle_rss;
        uint64_t memcrd_idle_rss_after;
        double load_start; /* 1-minute load average */
        double load_end;
        Combo *combos;
        size_t n_combos;
} Bench;

/* bench-metrics.c */
bool metric_is_lazy(size_t m);
/* Medians and maxima of the runs so far. */
void summarize(Combo *c);
/* The larger of the two watcher peak figures, over all runs. */
double watcher_peak_max(const Combo *c);
const Combo *find_combo(const Bench *b, uint64_t size, uint64_t reserve, unsigned threads, Content content);
/* Seconds per GiB dumped of a time metric. */
double per_gib(const Combo *c, Metric m);

/* bench-args.c: the command line */
extern uint64_t *arg_sizes;
extern size_t arg_n_sizes;
extern unsigned *arg_threads;
extern size_t arg_n_threads;
extern Content *arg_contents;
extern size_t arg_n_contents;
extern uint64_t *arg_reserves;
extern size_t arg_n_reserves;
extern unsigned arg_runs;
extern const char *arg_dump_dir;
extern const char *arg_codec;
extern bool arg_no_encrypt;
extern bool arg_json;
extern double arg_hold;
extern const char *arg_compare;
extern const char *arg_compare_restore;
extern bool arg_lazy;

int parse_argv(int argc, char *argv[]);
void args_free(void);
