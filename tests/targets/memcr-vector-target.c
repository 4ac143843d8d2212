/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * A target whose main thread holds a pattern in every vector register and
 * checks it in a loop that makes no system call (arch/<cpu family>/
 * vector-regs.h says which registers: SVE on an aarch64 CPU that has it).
 * A checkpoint stops that thread with its vector state live, and it is the
 * thread the engine runs its system calls and code in: whatever of that
 * state the engine does not put back, the loop finds changed.
 *
 * Built with -mgeneral-regs-only, so that no compiled code of this file
 * touches a vector register; the other thread (stdin commands, in libc) may.
 *
 * Protocol (as memcr-test-target's, for tests/lib/target-util.c):
 *   READY pid=<pid> bytes=<vector bytes> thp_kb=0      once started
 *   "check\n" -> RESULT ok=<1: no wrong register seen and the loop ran on
 *                since the last command> bad_words=<wrong 8-byte words seen>
 *                usr1=0 usr2=0 term=0 eintr=0 regions=1
 *   "verify\n" -> the same line, then exit (status 1 if any was wrong)
 */

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vector-regs.h"

static size_t size;
static uint8_t *expect, *seen;
static atomic_uint_fast64_t checks, bad;

static void *commands(void *arg) {
        char line[64];
        uint64_t last = 0;

        (void) arg;
        while (fgets(line, sizeof(line), stdin)) {
                bool verify = strcmp(line, "verify\n") == 0;
                uint64_t now = atomic_load(&checks), wrong = atomic_load(&bad);

                if (!verify && strcmp(line, "check\n") != 0) {
                        fprintf(stderr, "vector target: unknown command %s", line);
                        exit(2);
                }
                printf("RESULT ok=%u bad_words=%llu usr1=0 usr2=0 term=0 eintr=0 regions=1\n",
                       (unsigned) (wrong == 0 && now > last), (unsigned long long) wrong);
                fflush(stdout);
                fprintf(stderr, "vector target: %s, %llu checks, %llu wrong words\n", vector_kind(),
                        (unsigned long long) now, (unsigned long long) wrong);
                last = now;
                if (verify)
                        exit(wrong == 0 ? 0 : 1);
        }
        exit(3);
}

int main(void) {
        pthread_t thread;

        size = vector_size();
        expect = malloc(size);
        seen = malloc(size);
        if (!expect || !seen)
                return 1;
        for (size_t i = 0; i < size; i++)
                expect[i] = (uint8_t) (i * 37 + 11 + i / 251);

        if (pthread_create(&thread, NULL, commands, NULL) != 0)
                return 1;
        printf("READY pid=%d bytes=%zu thp_kb=0\n", (int) getpid(), size);
        fflush(stdout);

        vector_load(expect);
        for (;;) {
                uint64_t wrong = 0;

                vector_save(seen);
                for (size_t i = 0; i < size; i += 8)
                        wrong += *(uint64_t *) (seen + i) != *(uint64_t *) (expect + i);
                if (wrong > 0) {
                        atomic_fetch_add(&bad, wrong);
                        vector_load(expect);
                }
                atomic_fetch_add(&checks, 1);
        }
}
