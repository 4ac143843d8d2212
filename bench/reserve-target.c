/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * reserve-target: a process that reserves a lot of address space and uses
 * little of it, as runtimes with large heaps or guard areas do.
 *
 * It maps --reserve=MIB of anonymous memory (MAP_NORESERVE), fills the first
 * --touch=MIB with the pattern of pattern.h (--compressible: its text
 * variant), starts --threads=N threads that sleep in a loop, writes
 *
 *   READY pid=PID bytes=TOUCHED reserved=RESERVED
 *
 * and reads commands from stdin, as memcr-test-target does:
 *
 *   verify   stop the threads, check the touched part, count resident pages
 *            in the untouched part, print a RESULT line, exit 0 if the
 *            touched part is intact and 1 otherwise
 *   exit     exit 0 without checking
 *
 * End of file on stdin exits with status 2, start-up errors with status 3.
 */

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "pattern.h"

#define EXIT_CORRUPT 1
#define EXIT_EOF 2
#define EXIT_STARTUP 3
#define MAX_THREADS 1024
#define SEED UINT64_C(0x7265736572766564)

static uint64_t arg_reserve = UINT64_C(64) << 30;
static uint64_t arg_touch = UINT64_C(64) << 20;
static unsigned arg_threads = 0;

static atomic_bool threads_stop;

static void *sleeper(void *userdata) {
        const struct timespec ts = { .tv_nsec = 10 * 1000 * 1000 };

        while (!atomic_load(&threads_stop))
                (void) nanosleep(&ts, NULL);
        return NULL;
}

static int parse_mib(const char *s, uint64_t *ret) {
        unsigned long long v;
        char *end;

        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno != 0 || end == s || *end || v == 0 || v > (UINT64_MAX >> 21))
                return -EINVAL;
        *ret = (uint64_t) v << 20;
        return 0;
}

static int parse_argv(int argc, char *argv[]) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "reserve", required_argument, NULL, 'r' },
                { "touch", required_argument, NULL, 't' },
                { "threads", required_argument, NULL, 'n' },
                { "compressible", no_argument, NULL, 'c' },
                {}
        };
        int c;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        printf("%s [--reserve=MIB] [--touch=MIB] [--threads=N] [--compressible]\n"
                               "Commands on stdin: verify, exit\n",
                               argv[0]);
                        return 0;
                case 'r':
                        if (parse_mib(optarg, &arg_reserve) < 0) {
                                fprintf(stderr, "reserve-target: invalid --reserve: %s\n", optarg);
                                return -EINVAL;
                        }
                        break;
                case 't':
                        if (parse_mib(optarg, &arg_touch) < 0) {
                                fprintf(stderr, "reserve-target: invalid --touch: %s\n", optarg);
                                return -EINVAL;
                        }
                        break;
                case 'n': {
                        char *end;
                        unsigned long v = strtoul(optarg, &end, 10);
                        if (*end || end == optarg || v > MAX_THREADS) {
                                fprintf(stderr, "reserve-target: invalid --threads: %s\n", optarg);
                                return -EINVAL;
                        }
                        arg_threads = (unsigned) v;
                        break;
                }
                case 'c':
                        pattern_compressible = true;
                        break;
                default:
                        return -EINVAL;
                }
        if (optind < argc || arg_touch > arg_reserve) {
                fprintf(stderr, "reserve-target: bad arguments\n");
                return -EINVAL;
        }
        return 1;
}

/* Pages of [p, p+size) that are resident. */
static int count_resident(uint8_t *p, size_t size, uint64_t *ret) {
        const size_t page = (size_t) getpagesize(), step = (size_t) 1 << 30;
        unsigned char *vec;
        uint64_t n = 0;

        vec = malloc(step / page);
        if (!vec)
                return -ENOMEM;
        for (size_t off = 0; off < size; off += step) {
                size_t len = size - off < step ? size - off : step;
                if (mincore(p + off, len, vec) < 0) {
                        free(vec);
                        return -errno;
                }
                for (size_t i = 0; i < len / page; i++)
                        n += vec[i] & 1;
        }
        free(vec);
        *ret = n;
        return 0;
}

int main(int argc, char *argv[]) {
        pthread_t threads[MAX_THREADS];
        uint64_t resident = 0;
        size_t bad, first;
        uint8_t *p;
        char line[64];
        int r;

        r = parse_argv(argc, argv);
        if (r <= 0)
                return r < 0 ? EXIT_STARTUP : EXIT_SUCCESS;

        p = mmap(NULL, arg_reserve, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) {
                fprintf(stderr, "reserve-target: mmap() of %" PRIu64 " bytes failed: %m\n", arg_reserve);
                return EXIT_STARTUP;
        }
        pattern_fill(p, arg_touch, SEED);

        for (unsigned i = 0; i < arg_threads; i++)
                if (pthread_create(&threads[i], NULL, sleeper, NULL) != 0) {
                        fprintf(stderr, "reserve-target: cannot start thread %u\n", i);
                        return EXIT_STARTUP;
                }

        printf("READY pid=%d bytes=%" PRIu64 " reserved=%" PRIu64 "\n", (int) getpid(), arg_touch, arg_reserve);
        fflush(stdout);

        while (fgets(line, sizeof(line), stdin)) {
                line[strcspn(line, "\r\n")] = 0;
                if (strcmp(line, "exit") == 0)
                        return EXIT_SUCCESS;
                if (strcmp(line, "verify") != 0) {
                        if (line[0])
                                fprintf(stderr, "reserve-target: unknown command '%s'\n", line);
                        continue;
                }

                atomic_store(&threads_stop, true);
                for (unsigned i = 0; i < arg_threads; i++)
                        pthread_join(threads[i], NULL);
                bad = pattern_check(p, arg_touch, SEED, &first);
                if (bad > 0)
                        fprintf(stderr, "BAD region=touched first_bad=%zu bad_words=%zu\n", first, bad);
                r = count_resident(p + arg_touch, arg_reserve - arg_touch, &resident);
                if (r < 0)
                        fprintf(stderr, "reserve-target: mincore() failed: %s\n", strerror(-r));
                printf("RESULT ok=%d bad_words=%zu untouched_resident_pages=%" PRIu64 "\n", bad == 0, bad,
                       resident);
                fflush(stdout);
                return bad == 0 ? EXIT_SUCCESS : EXIT_CORRUPT;
        }
        fprintf(stderr, "reserve-target: end of file on stdin\n");
        return EXIT_EOF;
}
