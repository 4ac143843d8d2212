/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "macro.h"

uint64_t *arg_sizes = NULL;
size_t arg_n_sizes = 0;
unsigned *arg_threads = NULL;
size_t arg_n_threads = 0;
Content *arg_contents = NULL;
size_t arg_n_contents = 0;
uint64_t *arg_reserves = NULL;
size_t arg_n_reserves = 0;
unsigned arg_runs = 5;
const char *arg_dump_dir = NULL;
const char *arg_codec = "none";
bool arg_no_encrypt = false;
bool arg_json = false;
double arg_hold = 1.0;
const char *arg_compare = NULL;
const char *arg_compare_restore = NULL;
bool arg_lazy = false;

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

enum {
        ARG_SIZES = 0x100, ARG_THREADS, ARG_CONTENT, ARG_RESERVE, ARG_RUNS, ARG_HOLD,
        ARG_DUMP_DIR, ARG_COMPRESS, ARG_NO_ENCRYPT, ARG_JSON, ARG_COMPARE, ARG_COMPARE_RESTORE,
        ARG_LAZY,
};

/* The lists: each option replaces what an earlier one gave. */
static int parse_list_option(int c, const char *value) {
        switch (c) {
        case ARG_SIZES:
                arg_n_sizes = 0;
                return parse_list(value, "size", add_size, NULL);
        case ARG_THREADS:
                arg_n_threads = 0;
                return parse_list(value, "thread count", add_threads, NULL);
        case ARG_CONTENT:
                arg_n_contents = 0;
                return parse_list(value, "content", add_content, NULL);
        case ARG_RESERVE:
                arg_n_reserves = 0;
                return parse_list(value, "reservation", add_size, (void *) 1);
        default:
                return -EINVAL;
        }
}

static int parse_option(int c, const char *value) {
        switch (c) {
        case ARG_SIZES:
        case ARG_THREADS:
        case ARG_CONTENT:
        case ARG_RESERVE:
                return parse_list_option(c, value);
        case ARG_RUNS: {
                char *end;
                unsigned long v = strtoul(value, &end, 10);
                if (*end || end == value || v == 0 || v > 10000) {
                        fprintf(stderr, "memcr-bench: invalid run count: %s\n", value);
                        return -EINVAL;
                }
                arg_runs = (unsigned) v;
                return 0;
        }
        case ARG_HOLD: {
                char *end;
                arg_hold = strtod(value, &end);
                if (*end || end == value || !(arg_hold >= 0) || arg_hold > 3600) {
                        fprintf(stderr, "memcr-bench: invalid hold time: %s\n", value);
                        return -EINVAL;
                }
                return 0;
        }
        case ARG_DUMP_DIR:
                arg_dump_dir = value;
                return 0;
        case ARG_COMPRESS:
                if (!streq(value, "none") && !streq(value, "lz4") && !streq(value, "zstd")) {
                        fprintf(stderr, "memcr-bench: unknown compression: %s\n", value);
                        return -EINVAL;
                }
                arg_codec = value;
                return 0;
        case ARG_NO_ENCRYPT:
                arg_no_encrypt = true;
                return 0;
        case ARG_JSON:
                arg_json = true;
                return 0;
        case ARG_COMPARE:
                arg_compare = value;
                return 0;
        case ARG_COMPARE_RESTORE:
                arg_compare_restore = value;
                return 0;
        case ARG_LAZY:
                arg_lazy = true;
                return 0;
        default:
                return -EINVAL;
        }
}

/* Whether the options go together, and the defaults of what was not given. */
static int parse_defaults(void) {
        int r;

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

int parse_argv(int argc, char *argv[]) {
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

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                if (c == 'h') {
                        help();
                        exit(EXIT_SUCCESS);
                }
                r = parse_option(c, optarg);
                if (r < 0)
                        return r;
        }
        if (optind < argc) {
                fprintf(stderr, "memcr-bench: unexpected argument: %s\n", argv[optind]);
                return -EINVAL;
        }
        return parse_defaults();
}

void args_free(void) {
        free(arg_sizes);
        free(arg_threads);
        free(arg_contents);
        free(arg_reserves);
}
