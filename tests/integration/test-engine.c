/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * The engine against real processes: memcr-test-target fills its memory with
 * an address-dependent pattern; we checkpoint it, check what happened to its
 * memory from outside, restore it and let it verify every byte.
 */

#include <criterion/criterion.h>
#include <errno.h>
#include <criterion/logging.h>
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "lazy.h"
#include "memcr.h"
#include "target-util.h"

#define MiB (1024ULL * 1024ULL)

static char dump_dir[64];

static void setup(void) {
        log_set_target(LOG_TARGET_STDERR);
        log_parse_environment();
        strcpy(dump_dir, "/tmp/memcr-engine-XXXXXX");
        cr_assert_not_null(mkdtemp(dump_dir));
        /* World-writable (sticky) so the unprivileged-caller test can create its dump. */
        cr_assert_eq(chmod(dump_dir, 01777), 0);
}

static void teardown(void) {
        target_kill_all();
        rmdir(dump_dir);
}

TestSuite(engine, .init = setup, .fini = teardown, .timeout = 300);

static CheckpointOptions options(void) {
        CheckpointOptions o = CHECKPOINT_OPTIONS_DEFAULT;
        o.dump_dir = dump_dir;
        return o;
}

static Frozen *checkpoint(Target *t, const CheckpointOptions *o) {
        Frozen *f = NULL;
        int r = memcr_checkpoint(t->pid, t->pidfd, o, &f);
        cr_assert_eq(r, 0, "checkpoint of %d failed: %s", t->pid, strerror(-r));
        cr_assert_not_null(f);
        /* Frozen: seized by us, every thread in a tracing stop. */
        cr_assert_eq(proc_tracer(t->pid), getpid());
        cr_assert_eq(proc_state(t->pid), 't', "state %c", proc_state(t->pid));
        return f;
}

static void restore(Frozen *f) {
        RestoreStats rs = {};
        int r = memcr_restore(f, NULL, NULL, &rs);
        cr_assert_eq(r, 0, "restore failed: %s", strerror(-r));
        cr_assert_eq(proc_tracer(f->pid), 0, "still traced after restore");
        frozen_free(f);
}

/* After a checkpoint, hardly any private anonymous memory stays resident:
 * whatever does (beyond locked memory) was missed. */
static void assert_anon_gone(pid_t pid, uint64_t allowed_kb) {
        uint64_t anon = proc_status_kb(pid, "RssAnon");
        cr_assert_leq(anon, allowed_kb + 256, "RssAnon still %llu kB", (unsigned long long) anon);
}

static void assert_dropped(const Frozen *f) {
        const CheckpointStats *s = &f->stats;

        assert_anon_gone(f->pid, smaps_sum_kb(f->pid, "Rss", "lo"));
        cr_assert_gt(s->dumped_bytes, 0);
        cr_assert_geq(s->rss_before - MIN(s->rss_before, s->rss_after), s->dumped_bytes * 9 / 10,
                      "RSS %llu -> %llu, dumped %llu", (unsigned long long) s->rss_before,
                      (unsigned long long) s->rss_after, (unsigned long long) s->dumped_bytes);
}

static void assert_verified(Target *t, unsigned usr1, unsigned term) {
        TargetResult res = {};
        int status = -1;

        cr_assert_eq(target_verify(t, &res, &status), 0);
        cr_assert(res.ok, "target found %llu bad words", (unsigned long long) res.bad_words);
        cr_assert_eq(res.bad_words, 0);
        cr_assert_eq(status, 0);
        cr_assert_eq(res.usr1, usr1, "SIGUSR1 handled %u times, expected %u", res.usr1, usr1);
        cr_assert_eq(res.term, term, "SIGTERM handled %u times, expected %u", res.term, term);
        /* Without signals, an interrupted nanosleep must restart transparently;
         * with handlers running, EINTR is what the program asked for. */
        if (usr1 == 0 && term == 0)
                cr_assert_eq(res.eintr, 0, "nanosleep saw EINTR: syscall restart broken");
        target_stop(t);
}

static void assert_check(Target *t) {
        TargetResult res = {};
        cr_assert_eq(target_check(t, &res), 0);
        cr_assert(res.ok, "target found %llu bad words", (unsigned long long) res.bad_words);
}

Test(engine, all_kinds_of_memory) {
        Target t;
        const char *args[] = { "--heap=16", "--mmap=64", "--threads=4", "--prot-none=1", "--readonly=1",
                               "--file-private=2", "--shared=2", "--memfd=2", "--mlock=64", "--thp=8", NULL };
        CheckpointOptions o = options();

        cr_assert_eq(target_start(&t, args), 0);
        uint64_t shared_before = smaps_sum_kb(t.pid, "Rss", "sh");
        uint64_t locked_before = smaps_sum_kb(t.pid, "Rss", "lo");
        cr_assert_geq(shared_before, 4096);
        cr_assert_geq(locked_before, 64);

        Frozen *f = checkpoint(&t, &o);
        assert_dropped(f);
        /* Private data: heap, mmap, PROT_NONE, read-only, dirtied half of the
         * private file mapping, THP area, four 64 KiB thread stack arrays. */
        cr_assert_geq(f->stats.dumped_bytes, (16 + 64 + 1 + 1 + 1 + 8) * MiB + 4 * 64 * 1024);
        /* Shared and locked memory are left alone. */
        cr_assert_eq(smaps_sum_kb(t.pid, "Rss", "sh"), shared_before);
        cr_assert_eq(smaps_sum_kb(t.pid, "Rss", "lo"), locked_before);
        cr_assert_eq(f->stats.n_threads, 5);
        cr_log_info("THP: target reported %llu kB, AnonHugePages before %llu kB, after %llu kB",
                    (unsigned long long) t.thp_kb, (unsigned long long) f->stats.thp_kb_before,
                    (unsigned long long) f->stats.thp_kb_after);
        if (t.thp_kb > 0)
                cr_assert_geq(f->stats.thp_kb_before, t.thp_kb);
        cr_assert_eq(f->stats.thp_kb_after, 0, "huge pages left after dropping");

        restore(f);
        assert_verified(&t, 0, 0);
}

Test(engine, one_gib) {
        Target t;
        const char *args[] = { "--mmap=1024", "--threads=4", NULL };
        CheckpointOptions o = options();

        cr_assert_eq(target_start(&t, args), 0);
        Frozen *f = checkpoint(&t, &o);
        assert_dropped(f);
        cr_assert_geq(f->stats.dumped_bytes, 1024 * MiB);
        cr_assert_lt(f->stats.rss_after, 64 * MiB);
        restore(f);
        assert_verified(&t, 0, 0);
}

Test(engine, signals_while_frozen_are_delivered_once) {
        Target t;
        const char *args[] = { "--heap=8", "--threads=4", NULL };
        CheckpointOptions o = options();

        cr_assert_eq(target_start(&t, args), 0);
        Frozen *f = checkpoint(&t, &o);
        cr_assert_eq(kill(t.pid, SIGUSR1), 0);
        cr_assert_eq(kill(t.pid, SIGTERM), 0);
        usleep(100 * 1000);
        cr_assert_eq(proc_state(t.pid), 't', "target ran while frozen");
        restore(f);
        assert_check(&t);
        assert_verified(&t, 1, 1);
}

/* The thread the engine runs its system calls and code in holds live
 * vector state (SVE on an aarch64 CPU that has it: a system call would zero
 * all of it but the low 128 bits of each Z register): after each restore,
 * every vector register holds what it held. */
Test(engine, vector_registers_survive) {
        const char *binary = getenv("MEMCR_VECTOR_TARGET");
        CheckpointOptions o = options();
        TargetResult res = {};
        Target t;
        int status = -1;

        cr_assert_not_null(binary, "MEMCR_VECTOR_TARGET is not set");
        cr_assert_eq(target_start_program(&t, binary, NULL, -1, -1, -1), 0);
        cr_log_info("%llu bytes of vector registers", (unsigned long long) t.bytes);
        usleep(50 * 1000);
        cr_assert_eq(target_check(&t, &res), 0);
        cr_assert(res.ok, "wrong before any checkpoint");
        for (int i = 0; i < 5; i++) {
                Frozen *f = checkpoint(&t, &o);
                restore(f);
                usleep(50 * 1000);
                cr_assert_eq(target_check(&t, &res), 0);
                cr_assert(res.ok, "cycle %d: %llu words of vector registers wrong after the restore (or the loop stopped)",
                          i, (unsigned long long) res.bad_words);
        }
        cr_assert_eq(target_verify(&t, &res, &status), 0);
        cr_assert_eq(status, 0);
        target_stop(&t);
}

Test(engine, sigstop_then_sigcont_leaves_it_running) {
        Target t;
        const char *args[] = { "--heap=8", "--threads=4", NULL };
        CheckpointOptions o = options();

        cr_assert_eq(target_start(&t, args), 0);
        Frozen *f = checkpoint(&t, &o);
        cr_assert_eq(kill(t.pid, SIGSTOP), 0);
        cr_assert_eq(kill(t.pid, SIGCONT), 0);
        restore(f);
        usleep(100 * 1000);
        cr_assert_neq(proc_state(t.pid), 'T', "target stopped");
        assert_check(&t);
        assert_verified(&t, 0, 0);
}

Test(engine, sigstop_alone_leaves_it_stopped) {
        Target t;
        const char *args[] = { "--heap=8", "--threads=4", NULL };
        CheckpointOptions o = options();

        cr_assert_eq(target_start(&t, args), 0);
        Frozen *f = checkpoint(&t, &o);
        cr_assert_eq(kill(t.pid, SIGSTOP), 0);
        restore(f);
        usleep(100 * 1000);
        cr_assert_eq(proc_state(t.pid), 'T', "state %c, expected stopped", proc_state(t.pid));
        cr_assert_eq(kill(t.pid, SIGCONT), 0);
        assert_check(&t);
        assert_verified(&t, 0, 0);
}

Test(engine, stopped_before_checkpoint_stays_stopped) {
        Target t;
        const char *args[] = { "--heap=8", "--threads=4", NULL };
        CheckpointOptions o = options();

        cr_assert_eq(target_start(&t, args), 0);
        cr_assert_eq(kill(t.pid, SIGSTOP), 0);
        for (int i = 0; i < 100 && proc_state(t.pid) != 'T'; i++)
                usleep(10 * 1000);
        cr_assert_eq(proc_state(t.pid), 'T');
        Frozen *f = checkpoint(&t, &o);
        assert_dropped(f);
        restore(f);
        usleep(100 * 1000);
        cr_assert_eq(proc_state(t.pid), 'T', "state %c, expected stopped", proc_state(t.pid));
        cr_assert_eq(kill(t.pid, SIGCONT), 0);
        assert_verified(&t, 0, 0);
}

Test(engine, twenty_cycles) {
        Target t;
        const char *args[] = { "--heap=8", "--mmap=32", "--threads=4", "--prot-none=1", NULL };
        CheckpointOptions o = options();

        cr_assert_eq(target_start(&t, args), 0);
        for (int i = 0; i < 20; i++) {
                Frozen *f = checkpoint(&t, &o);
                assert_dropped(f);
                restore(f);
                assert_check(&t);
        }
        assert_verified(&t, 0, 0);
}

Test(engine, signal_storm_during_checkpoint_and_restore) {
        Target t;
        const char *args[] = { "--heap=32", "--threads=4", NULL };
        CheckpointOptions o = options();
        pid_t sender;
        int st;

        cr_assert_eq(target_start(&t, args), 0);
        sender = fork();
        cr_assert_geq(sender, 0);
        if (sender == 0) {
                for (;;) {
                        kill(t.pid, SIGUSR1);
                        usleep(200);
                }
        }
        for (int i = 0; i < 5; i++) {
                Frozen *f = checkpoint(&t, &o);
                restore(f);
                assert_check(&t);
        }
        kill(sender, SIGKILL);
        waitpid(sender, &st, 0);
        usleep(50 * 1000);

        TargetResult res = {};
        int status = -1;
        cr_assert_eq(target_verify(&t, &res, &status), 0);
        cr_assert(res.ok);
        cr_assert_eq(status, 0);
        cr_assert_gt(res.usr1, 0, "no SIGUSR1 was handled");
        cr_log_info("SIGUSR1 handled %u times during the storm", res.usr1);
        target_stop(&t);
}

static void cycle_with(Codec codec, Protection prot, PageScanMode mode) {
        Target t;
        const char *args[] = { "--heap=16", "--mmap=16", "--threads=2", "--file-private=2", NULL };
        CheckpointOptions o = options();

        if (!codec_supported(codec))
                cr_skip_test("codec %s not built in", codec_to_string(codec));
        o.codec = codec;
        o.protection = prot;
        o.scan_mode = mode;
        cr_assert_eq(target_start(&t, args), 0);
        Frozen *f = checkpoint(&t, &o);
        assert_dropped(f);
        restore(f);
        assert_verified(&t, 0, 0);
}

Test(engine, lz4_encrypted) {
        cycle_with(CODEC_LZ4, PROTECTION_ENCRYPT, PAGESCAN_AUTO);
}

Test(engine, zstd_authenticated) {
        cycle_with(CODEC_ZSTD, PROTECTION_AUTH, PAGESCAN_AUTO);
}

Test(engine, pagemap_fallback_finds_the_same_pages) {
        Target t;
        const char *args[] = { "--heap=16", "--mmap=16", "--threads=4", "--prot-none=1", "--readonly=1",
                               "--file-private=2", "--shared=1", "--memfd=1", "--thp=4", NULL };
        CheckpointOptions o = options();
        uint64_t scanned;

        cr_assert_eq(target_start(&t, args), 0);
        Frozen *f = checkpoint(&t, &o);
        scanned = f->stats.dumped_bytes;
        restore(f);
        assert_check(&t);

        o.scan_mode = PAGESCAN_PAGEMAP;
        f = checkpoint(&t, &o);
        cr_log_info("PAGEMAP_SCAN found %llu bytes, pagemap entries %llu bytes",
                    (unsigned long long) scanned, (unsigned long long) f->stats.dumped_bytes);
        /* The target ran between the two checkpoints (its threads may have
         * touched a few more stack or heap pages), so allow a little growth. */
        cr_assert_geq(f->stats.dumped_bytes, scanned - 64 * 1024);
        cr_assert_leq(f->stats.dumped_bytes, scanned + 256 * 1024);
        assert_dropped(f);
        restore(f);
        assert_verified(&t, 0, 0);
}

Test(engine, process_that_exited) {
        pid_t pid = fork();
        int pidfd;
        Frozen *f = NULL;

        cr_assert_geq(pid, 0);
        if (pid == 0)
                _exit(0);
        pidfd = (int) syscall(SYS_pidfd_open, pid, 0);
        cr_assert_geq(pidfd, 0);
        waitpid(pid, NULL, 0);

        CheckpointOptions o = options();
        cr_assert_eq(memcr_checkpoint(pid, pidfd, &o, &f), -ESRCH);
        cr_assert_null(f);
        cr_assert_eq(count_dir_entries(dump_dir), 0);
        close(pidfd);
}

static pid_t find_kernel_thread(void) {
        DIR *d = opendir("/proc");
        struct dirent *de;
        pid_t found = 0;

        while (d && (de = readdir(d)) && !found) {
                char path[300], buf[1024];
                pid_t pid = atoi(de->d_name);
                FILE *f;

                if (pid <= 1)
                        continue;
                snprintf(path, sizeof(path), "/proc/%d/stat", pid);
                f = fopen(path, "re");
                if (!f)
                        continue;
                if (fgets(buf, sizeof(buf), f)) {
                        char *p = strrchr(buf, ')');
                        unsigned long flags = 0;
                        /* state ppid pgrp session tty tpgid flags */
                        if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %lu", &flags) == 1 &&
                            (flags & 0x00200000))
                                found = pid;
                }
                fclose(f);
        }
        if (d)
                closedir(d);
        return found;
}

Test(engine, kernel_thread_is_refused) {
        pid_t kt = find_kernel_thread();
        Frozen *f = NULL;
        int pidfd, r;

        if (kt <= 0)
                cr_skip_test("no kernel thread visible");
        pidfd = (int) syscall(SYS_pidfd_open, kt, 0);
        cr_assert_geq(pidfd, 0);
        CheckpointOptions o = options();
        r = memcr_checkpoint(kt, pidfd, &o, &f);
        cr_assert_eq(r, -EPERM, "kernel thread %d: %s", kt, strerror(-r));
        cr_assert_eq(proc_tracer(kt), 0);
        cr_assert_eq(count_dir_entries(dump_dir), 0);
        close(pidfd);
}

Test(engine, process_we_may_not_trace) {
        Target t;
        const char *args[] = { "--heap=8", "--threads=2", NULL };
        pid_t child;
        int st;

        cr_assert_eq(target_start(&t, args), 0);
        child = fork();
        cr_assert_geq(child, 0);
        if (child == 0) {
                Frozen *f = NULL;
                CheckpointOptions o = options();
                if (setresgid(65534, 65534, 65534) < 0 || setresuid(65534, 65534, 65534) < 0)
                        _exit(100);
                int r = memcr_checkpoint(t.pid, t.pidfd, &o, &f);
                _exit(r == -EPERM ? 0 : 101);
        }
        cr_assert_eq(waitpid(child, &st, 0), child);
        cr_assert(WIFEXITED(st));
        cr_assert_eq(WEXITSTATUS(st), 0, "unprivileged checkpoint was not refused with EPERM");
        cr_assert_eq(proc_tracer(t.pid), 0);
        cr_assert_eq(count_dir_entries(dump_dir), 0);
        assert_verified(&t, 0, 0);
}

static int kill_on_first_progress(uint64_t done, uint64_t total, void *userdata) {
        Target *t = userdata;
        kill(t->pid, SIGKILL);
        return 0;
}

static int abort_halfway(uint64_t done, uint64_t total, void *userdata) {
        return done > 0 ? -ECANCELED : 0;
}

Test(engine, aborted_checkpoint_leaves_target_intact) {
        Target t;
        const char *args[] = { "--mmap=512", "--threads=4", NULL };
        CheckpointOptions o = options();
        Frozen *f = NULL;
        unsigned fds_before;
        int r;

        cr_assert_eq(target_start(&t, args), 0);
        uint64_t rss = proc_status_kb(t.pid, "RssAnon");
        fds_before = count_own_fds();
        o.progress = abort_halfway;
        o.workers = 1;
        o.chunk_size = 64 * 1024;
        r = memcr_checkpoint(t.pid, t.pidfd, &o, &f);
        cr_assert_eq(r, -ECANCELED, "expected ECANCELED, got %s", strerror(-r));
        cr_assert_null(f);
        cr_assert_eq(count_own_fds(), fds_before, "descriptors leaked");
        cr_assert_eq(count_dir_entries(dump_dir), 0);
        cr_assert_eq(proc_tracer(t.pid), 0);
        cr_assert_geq(proc_status_kb(t.pid, "RssAnon"), rss - 1024, "memory was dropped");
        assert_check(&t);
        assert_verified(&t, 0, 0);
}

static int deadline_passes(uint64_t done, uint64_t total, void *userdata) {
        return 0;
}

Test(engine, checkpoint_past_its_deadline_is_aborted) {
        Target t;
        const char *args[] = { "--mmap=256", "--threads=2", NULL };
        CheckpointOptions o = options();
        Frozen *f = NULL;
        int r;

        cr_assert_eq(target_start(&t, args), 0);
        o.progress = deadline_passes;
        o.deadline = now_usec(CLOCK_MONOTONIC) + 1; /* already over when pages move */
        r = memcr_checkpoint(t.pid, t.pidfd, &o, &f);
        cr_assert_eq(r, -ETIME, "expected ETIME, got %s", strerror(-r));
        cr_assert_eq(proc_tracer(t.pid), 0);
        assert_verified(&t, 0, 0);
}

Test(engine, target_killed_during_checkpoint) {
        Target t;
        const char *args[] = { "--mmap=256", "--threads=4", NULL };
        CheckpointOptions o = options();
        Frozen *f = NULL;
        unsigned fds_before;
        int r;

        cr_assert_eq(target_start(&t, args), 0);
        fds_before = count_own_fds();
        o.progress = kill_on_first_progress;
        o.userdata = &t;
        r = memcr_checkpoint(t.pid, t.pidfd, &o, &f);
        cr_assert_eq(r, -ESRCH, "expected ESRCH, got %s", strerror(-r));
        cr_assert_null(f);
        cr_assert_eq(count_own_fds(), fds_before, "descriptors leaked");
        cr_assert_eq(count_dir_entries(dump_dir), 0);
        /* Gone, and not held by us. */
        struct pollfd pfd = { .fd = t.pidfd, .events = POLLIN };
        cr_assert_eq(poll(&pfd, 1, 1000), 1, "target still alive");
        (void) waitpid(t.pid, NULL, WNOHANG);
        t.reaped = true;
        char state = proc_state(t.pid);
        cr_assert(state == 0 || state == 'Z', "target in state %c", state);
        target_stop(&t);
}

/* The process named by a request exits and its PID is given to another
 * process before the seize: the newcomer must not be touched. */
Test(engine, recycled_pid_is_not_touched) {
        const char *args[] = { "--heap=8", "--threads=2", NULL };
        CheckpointOptions o = options();
        Frozen *f = NULL;
        Target t = { .pid = -1 };
        pid_t victim;
        int pidfd, r;

        victim = fork();
        cr_assert_geq(victim, 0);
        if (victim == 0) {
                pause();
                _exit(0);
        }
        pidfd = (int) syscall(SYS_pidfd_open, victim, 0);
        cr_assert_geq(pidfd, 0);
        cr_assert_eq(kill(victim, SIGKILL), 0);
        cr_assert_eq(waitpid(victim, NULL, 0), victim);

        /* Hand the PID out again: the next fork gets ns_last_pid + 1. */
        for (int attempt = 0; attempt < 50; attempt++) {
                FILE *ns = fopen("/proc/sys/kernel/ns_last_pid", "we");
                if (!ns)
                        cr_skip_test("cannot set ns_last_pid: %s", strerror(errno));
                fprintf(ns, "%d", victim - 1);
                fclose(ns);
                cr_assert_eq(target_start(&t, args), 0);
                if (t.pid == victim)
                        break;
                target_stop(&t);
                t.pid = -1;
        }
        if (t.pid != victim)
                cr_skip_test("could not recycle PID %d", victim);

        r = memcr_checkpoint(victim, pidfd, &o, &f);
        cr_assert_eq(r, -ESRCH, "checkpoint of a recycled PID returned %s", strerror(-r));
        cr_assert_null(f);
        cr_assert_eq(proc_tracer(t.pid), 0, "the new process was seized");
        cr_assert_eq(count_dir_entries(dump_dir), 0);
        close(pidfd);
        assert_check(&t);
        assert_verified(&t, 0, 0);
}

/* A large mapping with few pages written, spread over it: the dump holds
 * about those pages, and both page scanners find the same ones. */
static void sparse(const char *size_arg, const char *pages_arg, uint64_t pages) {
        const char *args[] = { size_arg, pages_arg, "--heap=4", "--threads=2", NULL };
        const PageScanMode modes[] = { PAGESCAN_AUTO, PAGESCAN_PAGEMAP };
        CheckpointOptions o = options();
        uint64_t found[2] = {};
        Target t;

        cr_assert_eq(target_start(&t, args), 0);
        for (size_t i = 0; i < ELEMENTSOF(modes); i++) {
                o.scan_mode = modes[i];
                Frozen *f = checkpoint(&t, &o);
                found[i] = f->stats.dumped_bytes;
                cr_log_info("%s %s: %llu bytes in %llu ranges", size_arg, pages_arg,
                            (unsigned long long) f->stats.dumped_bytes, (unsigned long long) f->stats.n_ranges);
                /* The written pages, the heap, stacks and a little more; not the
                 * mapping's size. */
                cr_assert_geq(f->stats.dumped_bytes, pages * (uint64_t) getpagesize() + 4 * MiB);
                cr_assert_leq(f->stats.dumped_bytes, pages * (uint64_t) getpagesize() + 16 * MiB);
                cr_assert_geq(f->stats.n_ranges, pages);
                assert_dropped(f);
                restore(f);
                assert_check(&t);
        }
        cr_assert_leq(found[0] > found[1] ? found[0] - found[1] : found[1] - found[0], 256 * 1024,
                      "PAGEMAP_SCAN found %llu bytes, pagemap entries %llu", (unsigned long long) found[0],
                      (unsigned long long) found[1]);
        assert_verified(&t, 0, 0);
}

Test(engine, sparse_768_pages_in_one_gib) {
        sparse("--sparse=1024", "--sparse-pages=768", 768);
}

Test(engine, sparse_16k_pages_in_eight_gib) {
        sparse("--sparse=8192", "--sparse-pages=16384", 16384);
}

/* A target whose seccomp filter refuses, or kills it for, a system call
 * memcr runs inside it: refused with a reason that names the filter, and
 * left running as it was, never traced. */
static void refused_by_seccomp(const char *filter) {
        const char *args[] = { "--heap=4", "--threads=2", filter, NULL };
        CheckpointOptions o = options();
        char reason[256] = "";
        Frozen *f = NULL;
        Target t;
        int r;

        o.reason = reason;
        o.reason_size = sizeof(reason);
        cr_assert_eq(target_start(&t, args), 0);
        r = memcr_checkpoint(t.pid, t.pidfd, &o, &f);
        cr_assert_eq(r, -EPERM, "%s: checkpoint returned %s", filter, strerror(-r));
        cr_assert_null(f);
        cr_log_info("%s: %s", filter, reason);
        cr_assert_not_null(strstr(reason, "seccomp filter"), "reason: '%s'", reason);
        cr_assert_eq(proc_tracer(t.pid), 0);
        /* Every byte checked while it runs on (its own exit path may call
         * what its filter kills it for). */
        assert_check(&t);
        target_stop(&t);
}

Test(engine, seccomp_kill_on_socketpair_is_refused) {
        refused_by_seccomp("--seccomp=kill:socketpair");
}

Test(engine, seccomp_errno_on_socketpair_is_refused) {
        refused_by_seccomp("--seccomp=errno:socketpair");
}

Test(engine, seccomp_kill_on_madvise_is_refused) {
        refused_by_seccomp("--seccomp=kill:madvise");
}

Test(engine, seccomp_trap_on_socketpair_is_refused) {
        refused_by_seccomp("--seccomp=trap:socketpair");
}

/* A filter that refuses only what memcr does not need: parked and restored
 * as any other process. One that refuses only what a lazy restore needs:
 * parked, and a lazy restore says why it is not possible (still frozen). */
Test(engine, seccomp_filter_that_allows_memcr) {
        const char *args[] = { "--heap=8", "--threads=2", "--seccomp=kill:reboot", NULL };
        CheckpointOptions o = options();
        Target t;

        cr_assert_eq(target_start(&t, args), 0);
        Frozen *f = checkpoint(&t, &o);
        assert_dropped(f);
        cr_assert_str_empty(f->no_lazy);
        restore(f);
        assert_verified(&t, 0, 0);
}

Test(engine, seccomp_filter_that_refuses_only_lazy_restore) {
        const char *args[] = { "--heap=8", "--threads=2", "--seccomp=errno:ioctl", NULL };
        CheckpointOptions o = options();
        LazyOptions lo = { .userfaultfd_dev = -1 };
        LazyRestore *l = NULL;
        Target t;

        cr_assert_eq(target_start(&t, args), 0);
        Frozen *f = checkpoint(&t, &o);
        assert_dropped(f);
        cr_assert_not_null(strstr(f->no_lazy, "seccomp"), "no_lazy: '%s'", f->no_lazy);
        cr_assert_eq(lazy_restore_start(f, &lo, &l), -EPERM);
        cr_assert_null(l);
        cr_assert_eq(proc_state(t.pid), 't', "no longer frozen");
        restore(f);
        assert_verified(&t, 0, 0);
}
