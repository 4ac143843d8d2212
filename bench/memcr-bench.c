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
 * What is measured is a list of metrics per run (Metric below); the table
 * shows medians through a list of columns (Column below). Another way of
 * restoring adds its metrics, a step in run_cycle() and a column group.
 */

#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

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

static const char *const content_names[_CONTENT_MAX] = {
        [CONTENT_RANDOM] = "random",
        [CONTENT_TEXT] = "text",
};

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

static const struct {
        const char *name;
        Unit unit;
} metrics[_METRIC_MAX] = {
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

static bool metric_is_lazy(size_t m) {
        return m >= METRIC_LAZY_REPLY_USEC && m <= METRIC_LAZY_ACCESS_MISSING;
}

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

static uint64_t *arg_sizes = NULL;
static size_t arg_n_sizes = 0;
static unsigned *arg_threads = NULL;
static size_t arg_n_threads = 0;
static Content *arg_contents = NULL;
static size_t arg_n_contents = 0;
static uint64_t *arg_reserves = NULL;
static size_t arg_n_reserves = 0;
static unsigned arg_runs = 5;
static const char *arg_dump_dir = NULL;
static const char *arg_codec = "none";
static bool arg_no_encrypt = false;
static bool arg_json = false;
static double arg_hold = 1.0;
static const char *arg_compare = NULL;
static const char *arg_compare_restore = NULL;
static bool arg_lazy = false;

static volatile sig_atomic_t cancelled = 0;
static volatile sig_atomic_t current_target = 0;

static void on_signal(int sig) {
        pid_t t = (pid_t) current_target;

        cancelled = 1;
        /* Whatever request is running fails fast once its target is gone. */
        if (t > 0)
                (void) kill(t, SIGKILL);
}

/* ---- formatting ---- */

static const char *fmt_bytes(char *buf, size_t size, double bytes) {
        static const char *const suffix[] = { "B", "K", "M", "G", "T" };
        unsigned i = 0;

        if (isnan(bytes))
                return "-";
        while (bytes >= 1024 && i + 1 < ELEMENTSOF(suffix)) {
                bytes /= 1024;
                i++;
        }
        if (i == 0)
                snprintf(buf, size, "%.0fB", bytes);
        else
                snprintf(buf, size, "%.1f%s", bytes, suffix[i]);
        return buf;
}

/* A size given on the command line, exactly: 256M, 1G, 64G. */
static const char *fmt_size(char *buf, size_t size, uint64_t bytes) {
        if (bytes >= GIB && bytes % GIB == 0)
                snprintf(buf, size, "%" PRIu64 "G", bytes / GIB);
        else if (bytes % MIB == 0)
                snprintf(buf, size, "%" PRIu64 "M", bytes / MIB);
        else
                snprintf(buf, size, "%" PRIu64 "B", bytes);
        return buf;
}

static const char *fmt_usec(char *buf, size_t size, double usec) {
        if (isnan(usec))
                return "-";
        if (usec < 10 * 1000.0)
                snprintf(buf, size, "%.1fms", usec / 1000.0);
        else if (usec < 1000 * 1000.0)
                snprintf(buf, size, "%.0fms", usec / 1000.0);
        else
                snprintf(buf, size, "%.2fs", usec / 1e6);
        return buf;
}

static const char *fmt_usec_fine(char *buf, size_t size, double usec) {
        if (isnan(usec))
                return "-";
        if (usec < 1000)
                snprintf(buf, size, "%.0fus", usec);
        else
                snprintf(buf, size, "%.1fms", usec / 1000);
        return buf;
}

static const char *fmt_rate(char *buf, size_t size, double gibps) {
        if (isnan(gibps))
                return "-";
        snprintf(buf, size, "%.2f", gibps);
        return buf;
}

static const char *fmt_pct(char *buf, size_t size, double part, double whole) {
        if (isnan(part) || isnan(whole) || whole <= 0)
                return "-";
        snprintf(buf, size, "%.0f%%", part / whole * 100.0);
        return buf;
}

static void json_string(FILE *f, const char *s) {
        fputc('"', f);
        for (; *s; s++) {
                unsigned char ch = (unsigned char) *s;
                if (ch == '"' || ch == '\\')
                        fprintf(f, "\\%c", ch);
                else if (ch < 0x20)
                        fprintf(f, "\\u%04x", ch);
                else
                        fputc(ch, f);
        }
        fputc('"', f);
}

static void json_number(FILE *f, double v, Unit u) {
        if (isnan(v))
                fputs("null", f);
        else if (u == UNIT_GIBPS || u == UNIT_RATIO)
                fprintf(f, "%.4f", v);
        else if (u == UNIT_USEC_FRACTION)
                fprintf(f, "%.3f", v);
        else
                fprintf(f, "%.0f", v);
}

/* ---- arguments ---- */

static int parse_size(const char *s, uint64_t *ret) {
        unsigned long long v;
        uint64_t factor = 1;
        char *end;

        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno != 0 || end == s)
                return -EINVAL;
        switch (*end) {
        case 'K':
        case 'k':
                factor = UINT64_C(1) << 10;
                end++;
                break;
        case 'M':
        case 'm':
                factor = MIB;
                end++;
                break;
        case 'G':
        case 'g':
                factor = GIB;
                end++;
                break;
        case 'T':
        case 't':
                factor = UINT64_C(1) << 40;
                end++;
                break;
        }
        if (streq(end, "iB") || streq(end, "B"))
                end += strlen(end);
        if (*end || v > UINT64_MAX / factor)
                return -EINVAL;
        *ret = (uint64_t) v * factor;
        return 0;
}

/* Split a comma-separated list; calls parse for each item. */
static int parse_list(const char *s, const char *what, int (*parse)(const char *item, void *userdata),
                      void *userdata) {
        _cleanup_free_ char *copy = strdup(s);
        char *saveptr = NULL;
        int r;

        if (!copy)
                return -ENOMEM;
        for (char *item = strtok_r(copy, ",", &saveptr); item; item = strtok_r(NULL, ",", &saveptr)) {
                r = parse(item, userdata);
                if (r < 0) {
                        fprintf(stderr, "memcr-bench: invalid %s: %s\n", what, item);
                        return r;
                }
        }
        return 0;
}

static int add_size(const char *item, void *userdata) {
        bool zero_ok = userdata != NULL;
        uint64_t **list = zero_ok ? &arg_reserves : &arg_sizes;
        size_t *n = zero_ok ? &arg_n_reserves : &arg_n_sizes;
        uint64_t v, *p;
        int r;

        r = parse_size(item, &v);
        if (r < 0)
                return r;
        /* The targets take sizes in MiB. */
        if ((v == 0 && !zero_ok) || v % MIB != 0)
                return -EINVAL;
        p = realloc(*list, (*n + 1) * sizeof(uint64_t));
        if (!p)
                return -ENOMEM;
        p[(*n)++] = v;
        *list = p;
        return 0;
}

static int add_threads(const char *item, void *userdata) {
        unsigned long v;
        unsigned *p;
        char *end;

        errno = 0;
        v = strtoul(item, &end, 10);
        if (errno != 0 || end == item || *end || v == 0 || v > 1024)
                return -EINVAL;
        p = realloc(arg_threads, (arg_n_threads + 1) * sizeof(unsigned));
        if (!p)
                return -ENOMEM;
        p[arg_n_threads++] = (unsigned) v;
        arg_threads = p;
        return 0;
}

static int add_content(const char *item, void *userdata) {
        Content *p;

        for (int c = 0; c < _CONTENT_MAX; c++)
                if (streq(item, content_names[c])) {
                        p = realloc(arg_contents, (arg_n_contents + 1) * sizeof(Content));
                        if (!p)
                                return -ENOMEM;
                        p[arg_n_contents++] = (Content) c;
                        arg_contents = p;
                        return 0;
                }
        return -EINVAL;
}

static void help(void) {
        printf("memcr-bench [OPTIONS]\n\n"
               "Checkpoint and restore targets through a private memcrd and compare the\n"
               "speeds with the machine's memory and file system bandwidth. Runs as root.\n\n"
               "  -h --help               show this help\n"
               "     --sizes=LIST         target sizes (K, M, G suffixes) [256M,1G,4G]\n"
               "     --threads=LIST       worker threads of the target [1,4]\n"
               "     --content=LIST       random (incompressible), text (compressible) [random,text]\n"
               "     --reserve=LIST       0: memcr-test-target; SIZE: reserve-target with SIZE of\n"
               "                          address space reserved and the target size touched [0]\n"
               "     --runs=N             cycles per combination [5]\n"
               "     --hold=SEC           time frozen between checkpoint and restore [1]\n"
               "     --dump-dir=DIR       dump directory (mode 0700) [a new directory in /dev/shm]\n"
               "     --compress=CODEC     none, lz4, zstd [none]\n"
               "     --no-encrypt         authenticate the dump but do not encrypt it\n"
               "     --json               one JSON object per line: limits, runs, summaries\n"
               "     --compare=CMD        also time CMD on the same targets; {pid} and {dump_dir}\n"
               "                          are replaced. Alone, CMD checkpoints, holds and restores\n"
               "                          (e.g. memcr-cycle --dump-dir={dump_dir} --hold=1 {pid})\n"
               "     --compare-restore=CMD  with --compare: CMD checkpoints, this restores\n"
               "     --lazy               after each eager cycle, checkpoint the same target again\n"
               "                          and restore it lazily: time to running, time to fully\n"
               "                          resident, first-access latency while streaming\n\n"
               "Binaries are found relative to this one in the build tree; $MEMCRD,\n"
               "$MEMCR_WATCH and $MEMCR_TEST_TARGET override.\n");
}

static int parse_argv(int argc, char *argv[]) {
        enum {
                ARG_SIZES = 0x100, ARG_THREADS, ARG_CONTENT, ARG_RESERVE, ARG_RUNS, ARG_HOLD,
                ARG_DUMP_DIR, ARG_COMPRESS, ARG_NO_ENCRYPT, ARG_JSON, ARG_COMPARE, ARG_COMPARE_RESTORE,
                ARG_LAZY,
        };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "sizes", required_argument, NULL, ARG_SIZES },
                { "threads", required_argument, NULL, ARG_THREADS },
                { "content", required_argument, NULL, ARG_CONTENT },
                { "reserve", required_argument, NULL, ARG_RESERVE },
                { "runs", required_argument, NULL, ARG_RUNS },
                { "hold", required_argument, NULL, ARG_HOLD },
                { "dump-dir", required_argument, NULL, ARG_DUMP_DIR },
                { "compress", required_argument, NULL, ARG_COMPRESS },
                { "no-encrypt", no_argument, NULL, ARG_NO_ENCRYPT },
                { "json", no_argument, NULL, ARG_JSON },
                { "compare", required_argument, NULL, ARG_COMPARE },
                { "compare-restore", required_argument, NULL, ARG_COMPARE_RESTORE },
                { "lazy", no_argument, NULL, ARG_LAZY },
                {}
        };
        int c, r;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        exit(EXIT_SUCCESS);
                case ARG_SIZES:
                        arg_n_sizes = 0;
                        r = parse_list(optarg, "size", add_size, NULL);
                        if (r < 0)
                                return r;
                        break;
                case ARG_THREADS:
                        arg_n_threads = 0;
                        r = parse_list(optarg, "thread count", add_threads, NULL);
                        if (r < 0)
                                return r;
                        break;
                case ARG_CONTENT:
                        arg_n_contents = 0;
                        r = parse_list(optarg, "content", add_content, NULL);
                        if (r < 0)
                                return r;
                        break;
                case ARG_RESERVE:
                        arg_n_reserves = 0;
                        r = parse_list(optarg, "reservation", add_size, (void *) 1);
                        if (r < 0)
                                return r;
                        break;
                case ARG_RUNS: {
                        char *end;
                        unsigned long v = strtoul(optarg, &end, 10);
                        if (*end || end == optarg || v == 0 || v > 10000) {
                                fprintf(stderr, "memcr-bench: invalid run count: %s\n", optarg);
                                return -EINVAL;
                        }
                        arg_runs = (unsigned) v;
                        break;
                }
                case ARG_HOLD: {
                        char *end;
                        arg_hold = strtod(optarg, &end);
                        if (*end || end == optarg || !(arg_hold >= 0) || arg_hold > 3600) {
                                fprintf(stderr, "memcr-bench: invalid hold time: %s\n", optarg);
                                return -EINVAL;
                        }
                        break;
                }
                case ARG_DUMP_DIR:
                        arg_dump_dir = optarg;
                        break;
                case ARG_COMPRESS:
                        if (!streq(optarg, "none") && !streq(optarg, "lz4") && !streq(optarg, "zstd")) {
                                fprintf(stderr, "memcr-bench: unknown compression: %s\n", optarg);
                                return -EINVAL;
                        }
                        arg_codec = optarg;
                        break;
                case ARG_NO_ENCRYPT:
                        arg_no_encrypt = true;
                        break;
                case ARG_JSON:
                        arg_json = true;
                        break;
                case ARG_COMPARE:
                        arg_compare = optarg;
                        break;
                case ARG_COMPARE_RESTORE:
                        arg_compare_restore = optarg;
                        break;
                case ARG_LAZY:
                        arg_lazy = true;
                        break;
                default:
                        return -EINVAL;
                }
        if (optind < argc) {
                fprintf(stderr, "memcr-bench: unexpected argument: %s\n", argv[optind]);
                return -EINVAL;
        }
        if (arg_compare_restore && !arg_compare) {
                fprintf(stderr, "memcr-bench: --compare-restore needs --compare\n");
                return -EINVAL;
        }

        if (arg_n_sizes == 0) {
                r = parse_list("256M,1G,4G", "size", add_size, NULL);
                if (r < 0)
                        return r;
        }
        if (arg_n_threads == 0) {
                r = parse_list("1,4", "thread count", add_threads, NULL);
                if (r < 0)
                        return r;
        }
        if (arg_n_contents == 0) {
                r = parse_list("random,text", "content", add_content, NULL);
                if (r < 0)
                        return r;
        }
        if (arg_n_reserves == 0) {
                r = parse_list("0", "reservation", add_size, (void *) 1);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < arg_n_reserves; i++)
                for (size_t j = 0; j < arg_n_sizes; j++)
                        if (arg_reserves[i] > 0 && arg_reserves[i] < arg_sizes[j]) {
                                fprintf(stderr, "memcr-bench: a reservation must hold the target size\n");
                                return -EINVAL;
                        }
        return 0;
}

/* ---- paths and directories ---- */

static int find_binary(const char *env, const char *self_dir, const char *rel, char **ret) {
        const char *e = env ? getenv(env) : NULL;
        char *p;

        if (e && *e)
                p = strdup(e);
        else if (asprintf(&p, "%s/%s", self_dir, rel) < 0)
                p = NULL;
        if (!p)
                return -ENOMEM;
        if (access(p, X_OK) < 0) {
                int r = -errno;
                fprintf(stderr, "memcr-bench: %s: %s\n", p, strerror(-r));
                if (env)
                        fprintf(stderr, "memcr-bench: build the whole tree (with -Dtests=true for the target), "
                                        "or name the binary in $%s\n", env);
                free(p);
                return r;
        }
        *ret = p;
        return 0;
}

static int find_binaries(Bench *b) {
        char self[4096], *slash;
        ssize_t n;
        int r;

        n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        if (n < 0)
                return -errno;
        self[n] = 0;
        slash = strrchr(self, '/');
        if (!slash)
                return -EINVAL;
        *slash = 0;

        /* bench/ sits next to src/ and tests/ in the build tree. */
        r = find_binary("MEMCRD", self, "../src/daemon/memcrd", &b->memcrd_path);
        if (r >= 0)
                r = find_binary("MEMCR_WATCH", self, "../src/watch/memcr-watch", &b->watcher_path);
        if (r >= 0)
                r = find_binary("MEMCR_TEST_TARGET", self, "../tests/targets/memcr-test-target", &b->target_path);
        if (r >= 0)
                r = find_binary(NULL, self, "reserve-target", &b->reserve_target_path);
        return r;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) remove(path);
        return 0;
}

static int make_dirs(Bench *b) {
        char tmpl[] = "/tmp/memcr-bench.XXXXXX";

        if (!mkdtemp(tmpl))
                return -errno;
        b->dir = strdup(tmpl);
        if (!b->dir)
                return -ENOMEM;
        if (asprintf(&b->socket_path, "%s/memcr.sock", b->dir) < 0 ||
            asprintf(&b->runtime_dir, "%s/run", b->dir) < 0 || asprintf(&b->state_dir, "%s/state", b->dir) < 0 ||
            asprintf(&b->log_path, "%s/memcrd.log", b->dir) < 0)
                return -ENOMEM;
        if (mkdir(b->runtime_dir, 0700) < 0 || mkdir(b->state_dir, 0700) < 0)
                return -errno;

        if (arg_dump_dir) {
                b->dump_dir = realpath(arg_dump_dir, NULL);
                if (!b->dump_dir)
                        return -errno;
        } else {
                char dump[] = "/dev/shm/memcr-bench.XXXXXX";
                if (!mkdtemp(dump))
                        return -errno;
                b->dump_dir = strdup(dump);
                if (!b->dump_dir)
                        return -ENOMEM;
                b->own_dump_dir = true;
        }
        return 0;
}

static void remove_dirs(Bench *b) {
        if (b->dir)
                (void) nftw(b->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        /* Dumps are unnamed files: the directory is empty. */
        if (b->own_dump_dir && b->dump_dir)
                (void) rmdir(b->dump_dir);
}

/* ---- memcrd ---- */

static void print_daemon_log(const Bench *b) {
        _cleanup_fclose_ FILE *f = fopen(b->log_path, "re");
        char line[4096];

        if (!f)
                return;
        fprintf(stderr, "memcr-bench: memcrd's log (%s):\n", b->log_path);
        while (fgets(line, sizeof(line), f))
                fprintf(stderr, "  %s", line);
}

static int daemon_start(Bench *b) {
        _cleanup_free_ char *a_listen = NULL, *a_runtime = NULL, *a_state = NULL, *a_dump = NULL,
                *a_watcher = NULL, *a_codec = NULL;
        usec_t deadline;
        pid_t pid;

        if (asprintf(&a_listen, "--listen=%s", b->socket_path) < 0 ||
            asprintf(&a_runtime, "--runtime-dir=%s", b->runtime_dir) < 0 ||
            asprintf(&a_state, "--state-dir=%s", b->state_dir) < 0 ||
            asprintf(&a_dump, "--allow-dump-dir=%s", b->dump_dir) < 0 ||
            asprintf(&a_watcher, "--watcher=%s", b->watcher_path) < 0 ||
            asprintf(&a_codec, "--compress=%s", arg_codec) < 0)
                return -ENOMEM;

        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                const char *argv[] = { b->memcrd_path, a_listen, a_runtime, a_state, a_dump, a_watcher,
                                       a_codec, "--polkit=no", "--idle-timeout=0", "--watchers=fork", NULL };
                int fd = open(b->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
                int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
                sigset_t none;

                if (fd < 0 || null < 0 || dup2(null, 0) < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
                        _exit(126);
                sigemptyset(&none);
                sigprocmask(SIG_SETMASK, &none, NULL);
                (void) signal(SIGPIPE, SIG_DFL);
                /* Log to the file; the watchers it starts are ours to reap, not systemd's. */
                unsetenv("JOURNAL_STREAM");
                unsetenv("INVOCATION_ID");
                unsetenv("NOTIFY_SOCKET");
                unsetenv("LISTEN_FDS");
                unsetenv("LISTEN_PID");
                execv(argv[0], (char **) argv);
                _exit(127);
        }
        b->memcrd_pid = pid;

        deadline = now_usec(CLOCK_MONOTONIC) + DAEMON_START_TIMEOUT;
        for (;;) {
                _cleanup_(memcr_client_freep) MemcrClient *c = NULL;
                char version[64];

                if (memcr_client_connect(b->socket_path, &c) >= 0 &&
                    memcr_client_version(c, version, sizeof(version)) >= 0)
                        return 0;
                if (waitpid(pid, NULL, WNOHANG) == pid) {
                        b->memcrd_pid = 0;
                        fprintf(stderr, "memcr-bench: memcrd exited at start\n");
                        print_daemon_log(b);
                        return -ECHILD;
                }
                if (now_usec(CLOCK_MONOTONIC) > deadline) {
                        fprintf(stderr, "memcr-bench: memcrd does not answer on %s\n", b->socket_path);
                        print_daemon_log(b);
                        return -ETIMEDOUT;
                }
                usleep_safe(10 * USEC_PER_MSEC);
        }
}

static void daemon_stop(Bench *b) {
        if (b->memcrd_pid <= 0)
                return;
        (void) kill(b->memcrd_pid, SIGTERM);
        while (waitpid(b->memcrd_pid, NULL, 0) < 0 && errno == EINTR)
                ;
        b->memcrd_pid = 0;
}

/* ---- targets ---- */

typedef struct Target {
        pid_t pid;
        int in_fd;  /* its stdin */
        int out_fd; /* its stdout */
        char buf[4096];
        size_t n;
        uint64_t bytes;
} Target;

#define TARGET_NULL ((Target) { .in_fd = -EBADF, .out_fd = -EBADF })

static void target_done(Target *t) {
        if (t->pid > 0) {
                (void) kill(t->pid, SIGKILL);
                while (waitpid(t->pid, NULL, 0) < 0 && errno == EINTR)
                        ;
        }
        if (current_target == t->pid)
                current_target = 0;
        safe_close(t->in_fd);
        safe_close(t->out_fd);
        *t = TARGET_NULL;
}

/* The next line of the target's output that starts with prefix. */
static int target_read_line(Target *t, const char *prefix, usec_t timeout, char *line, size_t size) {
        usec_t deadline = now_usec(CLOCK_MONOTONIC) + timeout;

        for (;;) {
                char *nl = memchr(t->buf, '\n', t->n);
                struct pollfd p = { .fd = t->out_fd, .events = POLLIN };
                usec_t now;
                ssize_t k;

                if (nl) {
                        size_t len = (size_t) (nl - t->buf);
                        bool match = len >= strlen(prefix) && strneq(t->buf, prefix, strlen(prefix));

                        if (match)
                                snprintf(line, size, "%.*s", (int) len, t->buf);
                        memmove(t->buf, nl + 1, t->n - len - 1);
                        t->n -= len + 1;
                        if (match)
                                return 0;
                        continue;
                }
                if (t->n == sizeof(t->buf))
                        t->n = 0; /* an overlong line: drop it */

                now = now_usec(CLOCK_MONOTONIC);
                if (now >= deadline)
                        return -ETIMEDOUT;
                if (poll(&p, 1, (int) ((deadline - now) / USEC_PER_MSEC) + 1) < 0) {
                        if (errno == EINTR && !cancelled)
                                continue;
                        return errno == EINTR ? -ECANCELED : -errno;
                }
                if (!(p.revents & (POLLIN | POLLHUP | POLLERR)))
                        continue;
                k = read(t->out_fd, t->buf + t->n, sizeof(t->buf) - t->n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                if (k == 0)
                        return -EPIPE;
                t->n += (size_t) k;
        }
}

static int target_start(const Bench *b, const Combo *c, Target *ret) {
        _cleanup_(target_done) Target t = TARGET_NULL;
        char a1[64], a2[64], a3[64], line[512];
        const char *argv[8];
        int in[2] = { -EBADF, -EBADF }, out[2] = { -EBADF, -EBADF };
        const char *p;
        size_t n = 0;
        int r;

        if (c->reserve == 0) {
                argv[n++] = b->target_path;
                snprintf(a1, sizeof(a1), "--mmap=%" PRIu64, c->size / MIB);
                argv[n++] = a1;
        } else {
                argv[n++] = b->reserve_target_path;
                snprintf(a1, sizeof(a1), "--reserve=%" PRIu64, c->reserve / MIB);
                snprintf(a2, sizeof(a2), "--touch=%" PRIu64, c->size / MIB);
                argv[n++] = a1;
                argv[n++] = a2;
        }
        snprintf(a3, sizeof(a3), "--threads=%u", c->threads);
        argv[n++] = a3;
        if (c->content == CONTENT_TEXT)
                argv[n++] = "--compressible";
        if (arg_lazy && c->reserve == 0)
                argv[n++] = "--stamp"; /* it notes when it runs again after a pause */
        argv[n] = NULL;

        if (pipe2(in, O_CLOEXEC) < 0)
                return -errno;
        if (pipe2(out, O_CLOEXEC) < 0) {
                r = -errno;
                close_many(in, 2);
                return r;
        }
        t.pid = fork();
        if (t.pid < 0) {
                r = -errno;
                close_many(in, 2);
                close_many(out, 2);
                return r;
        }
        if (t.pid == 0) {
                sigset_t none;

                if (dup2(in[0], 0) < 0 || dup2(out[1], 1) < 0)
                        _exit(126);
                sigemptyset(&none);
                sigprocmask(SIG_SETMASK, &none, NULL);
                (void) signal(SIGPIPE, SIG_DFL);
                execv(argv[0], (char **) argv);
                _exit(127);
        }
        current_target = t.pid;
        t.in_fd = TAKE_FD(in[1]);
        t.out_fd = TAKE_FD(out[0]);
        close_many(in, 2);
        close_many(out, 2);

        r = target_read_line(&t, "READY ", READY_TIMEOUT, line, sizeof(line));
        if (r < 0) {
                fprintf(stderr, "memcr-bench: %s did not get ready: %s\n", argv[0], strerror(-r));
                return r;
        }
        p = strstr(line, " pid=");
        if (!p || atoi(p + 5) != t.pid)
                return -EBADMSG;
        p = strstr(line, " bytes=");
        t.bytes = p ? strtoull(p + 7, NULL, 10) : 0;

        *ret = t;
        t = TARGET_NULL;
        return 0;
}

static int write_all(int fd, const char *s) {
        size_t n = strlen(s);

        while (n > 0) {
                ssize_t k = write(fd, s, n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                s += k;
                n -= (size_t) k;
        }
        return 0;
}

/* Have the target check every byte; it exits 0 if all is intact. */
static int target_verify(Target *t) {
        char line[512] = "";
        const char *p;
        int r, st = 0;

        r = write_all(t->in_fd, "verify\n");
        if (r >= 0)
                r = target_read_line(t, "RESULT ", VERIFY_TIMEOUT, line, sizeof(line));
        if (r < 0) {
                fprintf(stderr, "memcr-bench: target %i gave no verification result: %s\n", (int) t->pid,
                        strerror(-r));
                return r;
        }
        while (waitpid(t->pid, &st, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        if (current_target == t->pid)
                current_target = 0;
        t->pid = 0;
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
                fprintf(stderr, "memcr-bench: VERIFICATION FAILED: %s\n", line);
                return -EBADMSG;
        }
        /* reserve-target: restore must not have populated what was never touched. */
        p = strstr(line, " untouched_resident_pages=");
        if (p && strtoull(p + strlen(" untouched_resident_pages="), NULL, 10) > 0)
                fprintf(stderr, "memcr-bench: warning: %s\n", line);
        return 0;
}

/* ---- one cycle ---- */

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

/* When the target last came back from a pause, and how many it noticed. */
static int target_stamp(Target *t, uint64_t *ret_resumed_ns, unsigned *ret_pauses) {
        unsigned long long ns;
        char line[256];
        unsigned n;
        int r;

        r = write_all(t->in_fd, "stamp\n");
        if (r >= 0)
                r = target_read_line(t, "STAMP ", VERIFY_TIMEOUT, line, sizeof(line));
        if (r < 0) {
                fprintf(stderr, "memcr-bench: target %i gave no time stamp: %s\n", (int) t->pid, strerror(-r));
                return r;
        }
        if (sscanf(line, "STAMP resumed_ns=%llu pauses=%u", &ns, &n) != 2) {
                fprintf(stderr, "memcr-bench: target %i: unexpected answer: %s\n", (int) t->pid, line);
                return -EBADMSG;
        }
        *ret_resumed_ns = ns;
        *ret_pauses = n;
        return 0;
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

static int run_cycle(Bench *b, const Combo *c, Run *ret) {
        _cleanup_(target_done) Target t = TARGET_NULL;
        Run run;
        MemcrReply ck = {}, rs = {};
        SamplerResult sr;
        struct rusage ru = {};
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
        if (ck.info.watcher_pid > 0) {
                r = reap(ck.info.watcher_pid, &ru);
                if (r < 0)
                        fprintf(stderr, "memcr-bench: cannot collect watcher %i: %s\n", (int) ck.info.watcher_pid,
                                strerror(-r));
                else {
                        run.v[METRIC_WATCHER_USER_USEC] = tv_usec(&ru.ru_utime);
                        run.v[METRIC_WATCHER_SYS_USEC] = tv_usec(&ru.ru_stime);
                        run.v[METRIC_WATCHER_CPU_USEC] = tv_usec(&ru.ru_utime) + tv_usec(&ru.ru_stime);
                        run.v[METRIC_WATCHER_MAXRSS] = (double) ru.ru_maxrss * 1024;
                        if (s1.watcher_ok) {
                                run.v[METRIC_WATCHER_CHECKPOINT_CPU_USEC] = (double) s1.watcher;
                                run.v[METRIC_WATCHER_RESTORE_CPU_USEC] =
                                        MAX(run.v[METRIC_WATCHER_CPU_USEC] - (double) s1.watcher, 0.0);
                        }
                        /* Gone before it could be read: its total is the latest figure. */
                        if (!s3.watcher_ok) {
                                s3.watcher = (usec_t) run.v[METRIC_WATCHER_CPU_USEC];
                                s3.watcher_ok = true;
                        }
                }
        }
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

/* ---- statistics ---- */

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;
        return x < y ? -1 : x > y;
}

static void summarize(Combo *c) {
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
static double watcher_peak_max(const Combo *c) {
        double a = c->max[METRIC_WATCHER_MAXRSS], s = c->max[METRIC_WATCHER_RSS_MAX];
        return isnan(a) ? s : isnan(s) ? a : MAX(a, s);
}

/* ---- output ---- */

static const char *combo_label(char *buf, size_t size, const Combo *c) {
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

static void json_run(const Combo *c, size_t idx) {
        fputs("{\"type\":\"run\",", stdout);
        json_combo_fields(stdout, c);
        fprintf(stdout, ",\"run\":%zu", idx + 1);
        json_metrics(stdout, c->runs[idx].v);
        fputs("}\n", stdout);
        fflush(stdout);
}

static void json_summary(const Bench *b, const Combo *c) {
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

static void json_limits(const Bench *b) {
        const Limits *l = &b->limits;

        fprintf(stdout,
                "{\"type\":\"limits\",\"cpus\":%u,\"memcpy_gibps\":%.4f,\"fresh_copy_gibps\":%.4f,"
                "\"fresh_copy_parallel_gibps\":%.4f,\"write_gibps\":%.4f,\"read_gibps\":%.4f,"
                "\"limits_bytes\":%" PRIu64 ",\"io_size\":%zu,\"dump_dir\":",
                l->n_cpus, l->memcpy_gibps, l->fresh_copy_gibps, l->fresh_copy_parallel_gibps, l->write_gibps,
                l->read_gibps, LIMITS_BYTES, LIMITS_IO_SIZE);
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

static void print_limits(const Bench *b) {
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

static void print_table(const Bench *b) {
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

static void print_lazy_table(const Bench *b) {
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

/* ---- requirements ---- */

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

static const Combo *find_combo(const Bench *b, uint64_t size, uint64_t reserve, unsigned threads, Content content) {
        for (size_t i = 0; i < b->n_combos; i++) {
                const Combo *c = &b->combos[i];
                if (c->size == size && c->reserve == reserve && c->threads == threads && c->content == content)
                        return c;
        }
        return NULL;
}

static double per_gib(const Combo *c, Metric m) {
        return c->med[m] / 1e6 / (c->med[METRIC_DUMP_BYTES] / (double) GIB);
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

static void check_requirements(const Bench *b) {
        const Limits *l = &b->limits;
        bool plain = streq(arg_codec, "none") && arg_no_encrypt;
        char label[128], x[32], y[32], z[32], w[32];

        if (!arg_json)
                printf("\nrequirements (from this run):\n");

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

        /* Thread counts against the smallest one. */
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

        if (arg_n_sizes >= 2)
                for (size_t t = 0; t < arg_n_threads; t++)
                        for (size_t ct = 0; ct < arg_n_contents; ct++)
                                check_linear(b, arg_threads[t], arg_contents[ct]);

        /* A big reservation against the plain target of the same size. */
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

        {
                double idle = (double) MAX(b->memcrd_idle_rss, b->memcrd_idle_rss_after);
                requirement("memcrd_idle_rss", "memcrd", idle / (double) MIB, 4, idle < 4.0 * MIB,
                            "idle RSS %s at start, %s after the runs (needs < 4 MiB)",
                            fmt_bytes(x, sizeof(x), (double) b->memcrd_idle_rss),
                            fmt_bytes(y, sizeof(y), (double) b->memcrd_idle_rss_after));
        }

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
        fflush(stdout);
}

/* ---- main ---- */

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
        free(arg_sizes);
        free(arg_threads);
        free(arg_contents);
        free(arg_reserves);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
