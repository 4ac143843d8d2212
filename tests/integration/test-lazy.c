/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * Lazy restore against real processes: the target runs again at once, its
 * memory streams back behind it, and whatever it does meanwhile (fork,
 * munmap, MADV_DONTNEED, read() into missing pages, signal handlers, exit)
 * sees exactly its own data.
 */

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fileio.h"
#include "lazy.h"
#include "log.h"
#include "macro.h"
#include "memcr.h"
#include "target-util.h"

static char dump_dir[64];

static void setup(void) {
        log_set_target(LOG_TARGET_STDERR);
        log_parse_environment();
        strcpy(dump_dir, "/dev/shm/memcr-lazy-XXXXXX");
        cr_assert_not_null(mkdtemp(dump_dir));
}

static void teardown(void) {
        target_kill_all();
        rmdir(dump_dir);
}

TestSuite(lazy, .init = setup, .fini = teardown, .timeout = 300);

static uint64_t now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000ULL + (uint64_t) ts.tv_nsec;
}

static Frozen *checkpoint(Target *t) {
        CheckpointOptions o = CHECKPOINT_OPTIONS_DEFAULT;
        Frozen *f = NULL;
        int r;

        o.dump_dir = dump_dir;
        r = memcr_checkpoint(t->pid, t->pidfd, &o, &f);
        cr_assert_eq(r, 0, "checkpoint failed: %s", strerror(-r));
        cr_assert_lt(proc_status_kb(t->pid, "RssAnon"), 1024);
        return f;
}

static LazyRestore *start(Frozen *f, bool fault_only) {
        LazyOptions o = { .userfaultfd_dev = -1, .fault_only = fault_only };
        LazyRestore *l = NULL;
        int dev, r;

        dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
        cr_assert_geq(dev, 0, "/dev/userfaultfd: %s", strerror(errno));
        o.userfaultfd_dev = dev;
        r = lazy_restore_start(f, &o, &l);
        close(dev);
        cr_assert_eq(r, 0, "lazy restore did not start: %s", strerror(-r));
        return l;
}

/* Serve the target until fn says stop (or forever: complete). Returns the
 * last lazy_restore_process() result. */
static int pump_until(LazyRestore *l, Target *t, bool (*fn)(Target *t, void *userdata), void *userdata,
                      unsigned timeout_ms) {
        uint64_t deadline = now_ns() + (uint64_t) timeout_ms * 1000000ULL;
        int r = 0;

        while (now_ns() < deadline) {
                struct pollfd p = { .fd = lazy_restore_fd(l), .events = POLLIN };
                (void) poll(&p, 1, 2);
                if (r == 0)
                        r = lazy_restore_process(l);
                if (r < 0)
                        return r;
                if (fn ? fn(t, userdata) : r == 1)
                        return r;
        }
        return -ETIMEDOUT;
}

/* A command to the target, served while it runs: its answer may need pages. */
typedef struct Command {
        char line[256];
        bool done;
} Command;

static bool answered(Target *t, void *userdata) {
        Command *c = userdata;
        struct pollfd p = { .fd = fileno(t->out), .events = POLLIN };

        if (poll(&p, 1, 0) <= 0)
                return false;
        if (!fgets(c->line, sizeof(c->line), t->out))
                c->line[0] = 0;
        c->line[strcspn(c->line, "\n")] = 0;
        c->done = true;
        return true;
}

static void command(LazyRestore *l, Target *t, const char *cmd, Command *c) {
        *c = (Command) {};
        cr_assert_eq(write(t->cmd_fd, cmd, strlen(cmd)), (ssize_t) strlen(cmd));
        cr_assert_eq(write(t->cmd_fd, "\n", 1), 1);
        int r = pump_until(l, t, answered, c, 60000);
        cr_assert(c->done, "no answer to '%s' (%s)", cmd, strerror(-r));
}

static void verify_while_streaming(LazyRestore *l, Target *t) {
        Command c;
        int st;

        command(l, t, "verify", &c);
        cr_assert(strncmp(c.line, "RESULT ok=1 ", 12) == 0, "verify: %s", c.line);
        /* As its tracer we may have collected its exit already. */
        pid_t p = waitpid(t->pid, &st, 0);
        cr_assert(p == t->pid || (p < 0 && errno == ECHILD));
        if (p == t->pid)
                cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        t->reaped = true;
}

static void finish(LazyRestore *l, Target *t) {
        LazyProgress p;
        int r = pump_until(l, t, NULL, NULL, 120000);
        cr_assert_eq(r, 1, "lazy restore did not complete: %d", r);
        lazy_restore_progress(l, &p);
        cr_log_info("running after %llu us, fully resident after %llu us, %llu faults, %llu address spaces",
                    (unsigned long long) p.running_usec, (unsigned long long) p.complete_usec,
                    (unsigned long long) p.faults, (unsigned long long) p.spaces);
        lazy_restore_free(l);
}

#if defined(__SANITIZE_ADDRESS__)
/* Instrumented, everything takes a few times longer: only a sanity bound. */
#define RESUME_LIMIT_MS 50
#else
#define RESUME_LIMIT_MS 10
#endif

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y;
}

/* From the restore request to the first instruction the target runs, as the
 * target itself saw it (a thread that notices the end of every long pause).
 * Three cycles, the median counts. */
static void resumes_within_10ms(const char *mmap_arg) {
        const char *args[] = { mmap_arg, "--heap=64", "--threads=4", "--prot-none=1", "--readonly=1",
                               "--file-private=2", "--stamp", NULL };
        uint64_t delays[3];
        unsigned seen = 0;
        Target t;
        Command c;

        cr_assert_eq(target_start(&t, args), 0);
        for (int cycle = 0; cycle < 3; cycle++) {
                unsigned long long resumed = 0;
                unsigned pauses = seen;
                uint64_t requested;

                Frozen *f = checkpoint(&t);
                usleep(100 * 1000); /* frozen long enough for the target to notice the pause */

                requested = now_ns();
                LazyRestore *l = start(f, false);
                /* The stamp thread notices the pause when it next runs. */
                for (uint64_t until = now_ns() + 5000000000ULL; pauses == seen && now_ns() < until;) {
                        (void) pump_until(l, &t, NULL, NULL, 1);
                        command(l, &t, "stamp", &c);
                        cr_assert_eq(sscanf(c.line, "STAMP resumed_ns=%llu pauses=%u", &resumed, &pauses), 2,
                                     "%s", c.line);
                }
                cr_assert_gt(pauses, seen, "the target did not notice it was frozen: %s", c.line);
                seen = pauses;
                cr_assert_geq(resumed, requested);
                delays[cycle] = resumed - requested;
                cr_log_info("%s: request to first instruction %.3f ms", mmap_arg, (double) delays[cycle] / 1e6);

                if (cycle < 2) {
                        command(l, &t, "check", &c);
                        cr_assert(strncmp(c.line, "RESULT ok=1 ", 12) == 0, "check: %s", c.line);
                        cr_assert_eq(pump_until(l, &t, NULL, NULL, 120000), 1);
                        lazy_restore_free(l);
                        continue;
                }
                verify_while_streaming(l, &t);
                finish(l, &t);
        }
        qsort(delays, 3, sizeof(uint64_t), cmp_u64);
        cr_assert_leq(delays[1], RESUME_LIMIT_MS * 1000000ULL, "median %.3f ms from request to running",
                      (double) delays[1] / 1e6);
        target_stop(&t);
}

Test(lazy, one_gib_resumes_within_10ms) {
        resumes_within_10ms("--mmap=1024");
}

Test(lazy, four_gib_resumes_within_10ms, .timeout = 600) {
        resumes_within_10ms("--mmap=4096");
}

Test(lazy, target_changes_its_memory_while_streaming) {
        const char *args[] = { "--heap=16", "--mmap=32", "--scratch=16", "--threads=4", NULL };
        Target t;
        Command c;

        cr_assert_eq(target_start(&t, args), 0);
        Frozen *f = checkpoint(&t);
        /* Pages come only when touched: everything below meets missing pages. */
        LazyRestore *l = start(f, true);

        command(l, &t, "fork-check", &c);
        cr_assert_str_eq(c.line, "FORK ok=1", "the child saw wrong memory: %s", c.line);

        cr_assert_eq(kill(t.pid, SIGUSR2), 0);
        usleep(20 * 1000);
        command(l, &t, "probe", &c);
        cr_assert_str_eq(c.line, "PROBE ok=1 bad=0", "a signal handler saw wrong memory");

        command(l, &t, "pipe-read scratch", &c);
        cr_assert_str_eq(c.line, "PIPE ok=1 errno=0", "read() into a missing page failed");

        command(l, &t, "unmap mmap", &c);
        cr_assert_str_eq(c.line, "OK unmap mmap");
        command(l, &t, "dontneed scratch", &c);
        cr_assert_str_eq(c.line, "OK dontneed scratch");
        command(l, &t, "check", &c);
        cr_assert(strncmp(c.line, "RESULT ok=1 ", 12) == 0, "%s", c.line);

        /* Nothing was refilled where the target let memory go. */
        verify_while_streaming(l, &t);
        finish(l, &t);
        target_stop(&t);
}

Test(lazy, target_exits_while_streaming) {
        const char *args[] = { "--mmap=64", "--threads=2", NULL };
        Target t;
        int st;

        cr_assert_eq(target_start(&t, args), 0);
        Frozen *f = checkpoint(&t);
        LazyRestore *l = start(f, true);
        cr_assert_eq(write(t.cmd_fd, "exit\n", 5), 5);
        cr_assert_eq(pump_until(l, &t, NULL, NULL, 30000), 1);
        lazy_restore_free(l);
        /* As its tracer we may have collected its exit already. */
        pid_t p = waitpid(t.pid, &st, 0);
        cr_assert(p == t.pid || (p < 0 && errno == ECHILD));
        if (p == t.pid)
                cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %x", st);
        cr_assert_eq(proc_state(t.pid), 0, "target still there");
        t.reaped = true;
        target_stop(&t);
}

Test(lazy, tracer_killed_while_streaming_kills_the_target) {
        const char *args[] = { "--mmap=64", "--threads=2", NULL };
        Target t;
        int p[2], st;
        char c;

        cr_assert_eq(target_start(&t, args), 0);
        cr_assert_eq(pipe(p), 0);
        pid_t tracer = fork();
        cr_assert_geq(tracer, 0);
        if (tracer == 0) {
                Frozen *f = checkpoint(&t);
                LazyRestore *l = start(f, true);
                (void) l;
                (void) !write(p[1], "x", 1);
                pause(); /* holds the target, serves nothing */
                _exit(0);
        }
        cr_assert_eq(read(p[0], &c, 1), 1);
        /* The target runs with almost all its memory missing: make it touch
         * some, then kill its server. */
        cr_assert_eq(write(t.cmd_fd, "check\n", 6), 6);
        usleep(50 * 1000);
        cr_assert_eq(kill(tracer, SIGKILL), 0);
        cr_assert_eq(waitpid(tracer, NULL, 0), tracer);
        cr_assert_eq(waitpid(t.pid, &st, 0), t.pid);
        cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "target was not killed (status %x)", st);
        t.reaped = true;
        target_stop(&t);
}

Test(lazy, tampered_chunk_kills_the_target) {
        const char *args[] = { "--mmap=64", "--threads=2", NULL };
        Target t;
        int st;

        cr_assert_eq(target_start(&t, args), 0);
        Frozen *f = checkpoint(&t);
        Dump *d = f->dump;
        LazyRestore *l = start(f, true);

        /* Damage every chunk on disk after the restore began. */
        for (size_t i = 0; i < d->n_chunks; i++) {
                uint8_t b;
                off_t off = (off_t) d->chunks[i].offset + d->chunks[i].stored_len / 2;
                cr_assert_eq(pread_full(d->fd, &b, 1, off), 0);
                b ^= 0x40;
                cr_assert_eq(pwrite_full(d->fd, &b, 1, off), 0);
        }
        cr_assert_eq(write(t.cmd_fd, "check\n", 6), 6);
        int r = pump_until(l, &t, NULL, NULL, 30000);
        cr_assert_eq(r, -EBADMSG, "expected EBADMSG, got %d", r);
        lazy_restore_free(l);
        /* As its tracer we collected its end already, or its parent (we are
         * both) gets it now. */
        pid_t p = waitpid(t.pid, &st, 0);
        cr_assert(p == t.pid || (p < 0 && errno == ECHILD));
        if (p == t.pid)
                cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "target was not killed (status %x)", st);
        cr_assert_eq(proc_state(t.pid), 0, "target still there");
        t.reaped = true;
        target_stop(&t);
}

Test(lazy, twenty_cycles) {
        const char *args[] = { "--heap=16", "--mmap=32", "--threads=4", "--prot-none=1", NULL };
        Target t;
        Command c;

        cr_assert_eq(target_start(&t, args), 0);
        for (int i = 0; i < 20; i++) {
                Frozen *f = checkpoint(&t);
                LazyRestore *l = start(f, false);
                command(l, &t, "check", &c);
                cr_assert(strncmp(c.line, "RESULT ok=1 ", 12) == 0, "cycle %d: %s", i, c.line);
                cr_assert_eq(pump_until(l, &t, NULL, NULL, 60000), 1);
                lazy_restore_free(l);
                cr_assert_eq(proc_tracer(t.pid), 0);
        }
        TargetResult res = {};
        int status = -1;
        cr_assert_eq(target_verify(&t, &res, &status), 0);
        cr_assert(res.ok);
        cr_assert_eq(status, 0);
        target_stop(&t);
}
