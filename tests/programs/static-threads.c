/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A multi-threaded program linked statically against glibc, for
 * run-programs.sh. Every thread fills memory of its own with a known pattern
 * (a large malloc()ed region, many small allocations, thread-local arrays)
 * and keeps checking it, a slice at a time, together with its thread-local
 * state: its index and thread id in __thread variables, errno set before a
 * system call and found unchanged after it, pthread_self(). The main thread
 * adds .data and .bss arrays of its own.
 *
 * It answers on standard output, one line per request read from standard
 * input:
 *   (at start)  READY <digest>
 *   verify      OK <digest> ticks=<n>    every thread checked all of its
 *                                        memory again and ran on since
 *            or FAIL <reason>
 *   quit        BYE, and exits 0
 *
 * usage: static-threads [-t THREADS] [-m KIB_PER_THREAD] [-s SLEEP_USEC]
 */

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define TLS_WORDS 512
#define SMALL_CHUNKS 64
#define SMALL_WORDS 128
#define SLICE_WORDS 4096
#define BSS_WORDS (1u << 16)

typedef struct Worker {
        pthread_t self;
        unsigned idx;
        pid_t tid;
        uint64_t *region;
        size_t words;
        uint64_t *small[SMALL_CHUNKS];
        uint64_t digest; /* of the latest full check */
        _Atomic uint64_t ticks;
        _Atomic unsigned done_gen;
        _Atomic uint64_t bad;
        _Atomic bool failed;
        char why[160];
} Worker;

static __thread uint64_t tls_words[TLS_WORDS];
static __thread unsigned tls_idx = 0xdeadu;
static __thread pid_t tls_tid;
static __thread uint64_t tls_ticks;

static uint64_t bss_words[BSS_WORDS];
static uint64_t data_words[8] = {
        0x0123456789abcdefULL, 0xfedcba9876543210ULL, 0x1111111111111111ULL, 0x2222222222222222ULL,
        0x3333333333333333ULL, 0x4444444444444444ULL, 0x5555555555555555ULL, 0x6666666666666666ULL,
};
static const uint64_t data_expected[8] = {
        0x0123456789abcdefULL, 0xfedcba9876543210ULL, 0x1111111111111111ULL, 0x2222222222222222ULL,
        0x3333333333333333ULL, 0x4444444444444444ULL, 0x5555555555555555ULL, 0x6666666666666666ULL,
};

static Worker *workers;
static unsigned n_workers = 8;
static size_t kib_per_worker = 4096;
static long sleep_usec = 2000;
static _Atomic unsigned verify_gen;
static _Atomic unsigned n_ready;
static _Atomic bool stopping;

static uint64_t mix(uint64_t x) {
        x += 0x9e3779b97f4a7c15ULL;
        x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
        x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
        return x ^ (x >> 31);
}

static uint64_t pattern(unsigned idx, unsigned kind, size_t i) {
        return mix(((uint64_t) idx << 40) ^ ((uint64_t) kind << 32) ^ i);
}

static uint64_t fold(uint64_t digest, uint64_t word) {
        return mix(digest ^ word);
}

static void fail(Worker *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(Worker *w, const char *fmt, ...) {
        va_list ap;

        atomic_fetch_add(&w->bad, 1);
        if (atomic_load(&w->failed))
                return;
        va_start(ap, fmt);
        vsnprintf(w->why, sizeof(w->why), fmt, ap);
        va_end(ap);
        atomic_store(&w->failed, true);
}

static size_t check_words(Worker *w, const char *what, const uint64_t *p, unsigned kind, size_t from,
                          size_t n, uint64_t *digest) {
        size_t bad = 0;

        for (size_t i = from; i < from + n; i++) {
                uint64_t want = pattern(w->idx, kind, i);
                if (p[i] != want) {
                        if (bad == 0)
                                fail(w, "thread %u: %s word %zu is %016" PRIx64 ", expected %016" PRIx64, w->idx,
                                     what, i, p[i], want);
                        bad++;
                }
                if (digest)
                        *digest = fold(*digest, p[i]);
        }
        return bad;
}

/* Its thread-local state, as it was set when the thread started. */
static void check_thread_state(Worker *w) {
        pid_t tid = (pid_t) syscall(SYS_gettid);

        if (tls_idx != w->idx)
                fail(w, "thread %u: its __thread index reads %u", w->idx, tls_idx);
        if (tls_tid != tid || w->tid != tid)
                fail(w, "thread %u: thread id %d, its __thread copy %d", w->idx, (int) tid, (int) tls_tid);
        if (!pthread_equal(pthread_self(), w->self))
                fail(w, "thread %u: pthread_self() changed", w->idx);
}

static uint64_t full_check(Worker *w) {
        uint64_t d = w->idx;

        check_thread_state(w);
        check_words(w, "region", w->region, 1, 0, w->words, &d);
        for (unsigned c = 0; c < SMALL_CHUNKS; c++)
                check_words(w, "small allocation", w->small[c], 2 + c, 0, SMALL_WORDS, &d);
        check_words(w, "__thread array", tls_words, 1000, 0, TLS_WORDS, &d);
        return d;
}

static void fill(Worker *w) {
        w->words = kib_per_worker * 1024 / sizeof(uint64_t);
        w->region = malloc(w->words * sizeof(uint64_t));
        if (!w->region) {
                fprintf(stderr, "out of memory\n");
                exit(EXIT_FAILURE);
        }
        for (size_t i = 0; i < w->words; i++)
                w->region[i] = pattern(w->idx, 1, i);
        for (unsigned c = 0; c < SMALL_CHUNKS; c++) {
                w->small[c] = malloc(SMALL_WORDS * sizeof(uint64_t));
                if (!w->small[c]) {
                        fprintf(stderr, "out of memory\n");
                        exit(EXIT_FAILURE);
                }
                for (size_t i = 0; i < SMALL_WORDS; i++)
                        w->small[c][i] = pattern(w->idx, 2 + c, i);
        }
        for (size_t i = 0; i < TLS_WORDS; i++)
                tls_words[i] = pattern(w->idx, 1000, i);
}

static void *worker_main(void *arg) {
        Worker *w = arg;
        size_t pos = 0;
        unsigned done = 0;

        tls_idx = w->idx;
        tls_tid = (pid_t) syscall(SYS_gettid);
        w->tid = tls_tid;
        w->self = pthread_self();
        fill(w);
        w->digest = full_check(w);
        atomic_fetch_add(&n_ready, 1);

        while (!atomic_load(&stopping)) {
                struct timespec ts = { .tv_sec = 0, .tv_nsec = sleep_usec * 1000 };
                size_t n = w->words - pos < SLICE_WORDS ? w->words - pos : SLICE_WORDS;
                unsigned gen;
                int want_errno = 1000 + (int) w->idx;

                check_words(w, "region", w->region, 1, pos, n, NULL);
                pos = pos + n >= w->words ? 0 : pos + n;
                check_thread_state(w);

                /* errno lives in the thread control block: a system call that
                 * succeeds leaves it alone. */
                errno = want_errno;
                if (nanosleep(&ts, NULL) == 0 && errno != want_errno)
                        fail(w, "thread %u: errno reads %d after a system call, expected %d", w->idx, errno,
                             want_errno);

                gen = atomic_load(&verify_gen);
                if (gen != done) {
                        w->digest = full_check(w);
                        done = gen;
                        atomic_store(&w->done_gen, gen);
                }
                tls_ticks++;
                atomic_store(&w->ticks, tls_ticks);
        }
        return NULL;
}

static uint64_t now_msec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

static uint64_t main_digest(Worker *m) {
        uint64_t d = 0;

        check_words(m, ".bss array", bss_words, 2000, 0, BSS_WORDS, &d);
        for (unsigned i = 0; i < 8; i++)
                if (data_words[i] != data_expected[i])
                        fail(m, ".data word %u is %016" PRIx64, i, data_words[i]);
        for (unsigned i = 0; i < n_workers; i++)
                d = fold(d, workers[i].digest);
        return d;
}

/* Asks every thread for a full check and waits (bounded) for all of them. */
static void verify(Worker *m) {
        unsigned gen = atomic_fetch_add(&verify_gen, 1) + 1;
        uint64_t *before = calloc(n_workers, sizeof(uint64_t));
        uint64_t deadline = now_msec() + 60000, ticks = 0, bad = 0;
        uint64_t d;

        if (!before) {
                printf("FAIL out of memory\n");
                return;
        }
        for (unsigned i = 0; i < n_workers; i++)
                before[i] = atomic_load(&workers[i].ticks);
        for (unsigned i = 0; i < n_workers; i++) {
                Worker *w = &workers[i];
                while (atomic_load(&w->done_gen) != gen || atomic_load(&w->ticks) <= before[i]) {
                        if (now_msec() > deadline) {
                                printf("FAIL thread %u (tid %d) did not answer within 60 s (ticks %" PRIu64 ")\n",
                                       i, (int) w->tid, atomic_load(&w->ticks));
                                free(before);
                                return;
                        }
                        usleep(1000);
                }
        }
        free(before);

        d = main_digest(m);
        for (unsigned i = 0; i < n_workers; i++) {
                ticks += atomic_load(&workers[i].ticks);
                bad += atomic_load(&workers[i].bad);
        }
        bad += atomic_load(&m->bad);
        if (bad > 0) {
                for (unsigned i = 0; i <= n_workers; i++) {
                        Worker *w = i < n_workers ? &workers[i] : m;
                        if (atomic_load(&w->failed)) {
                                printf("FAIL %" PRIu64 " bad checks; first: %s\n", bad, w->why);
                                return;
                        }
                }
                printf("FAIL %" PRIu64 " bad checks\n", bad);
                return;
        }
        printf("OK %016" PRIx64 " ticks=%" PRIu64 "\n", d, ticks);
}

int main(int argc, char **argv) {
        Worker m = { .idx = 0xffff };
        char line[128];
        int opt;

        while ((opt = getopt(argc, argv, "t:m:s:")) != -1) {
                switch (opt) {
                case 't':
                        n_workers = (unsigned) strtoul(optarg, NULL, 0);
                        break;
                case 'm':
                        kib_per_worker = strtoul(optarg, NULL, 0);
                        break;
                case 's':
                        sleep_usec = strtol(optarg, NULL, 0);
                        break;
                default:
                        fprintf(stderr, "usage: %s [-t THREADS] [-m KIB_PER_THREAD] [-s SLEEP_USEC]\n", argv[0]);
                        return 2;
                }
        }
        if (n_workers < 1 || kib_per_worker < 64 || sleep_usec < 1 || sleep_usec > 999999) {
                fprintf(stderr, "invalid arguments\n");
                return 2;
        }
        setvbuf(stdout, NULL, _IOLBF, 0);

        for (size_t i = 0; i < BSS_WORDS; i++)
                bss_words[i] = pattern(m.idx, 2000, i);

        workers = calloc(n_workers, sizeof(Worker));
        if (!workers)
                return 1;
        for (unsigned i = 0; i < n_workers; i++) {
                pthread_attr_t a;
                pthread_t t;
                int r;

                workers[i].idx = i;
                pthread_attr_init(&a);
                pthread_attr_setstacksize(&a, 256 * 1024);
                r = pthread_create(&t, &a, worker_main, &workers[i]);
                pthread_attr_destroy(&a);
                if (r != 0) {
                        fprintf(stderr, "pthread_create: %s\n", strerror(r));
                        return 1;
                }
        }
        while (atomic_load(&n_ready) < n_workers)
                usleep(1000);
        printf("READY %016" PRIx64 "\n", main_digest(&m));

        while (fgets(line, sizeof(line), stdin)) {
                line[strcspn(line, "\r\n")] = 0;
                if (strcmp(line, "verify") == 0)
                        verify(&m);
                else if (strcmp(line, "quit") == 0)
                        break;
                else
                        printf("FAIL unknown request '%s'\n", line);
        }
        atomic_store(&stopping, true);
        for (unsigned i = 0; i < n_workers; i++)
                pthread_join(workers[i].self, NULL);
        printf("BYE\n");
        return 0;
}
