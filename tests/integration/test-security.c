/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * Who may do what, with real processes and real (numeric) users, and what a
 * dump on disk gives away: nobody gains anything through memcrd that they
 * could not already do.
 */

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon-util.h"
#include "dump.h"
#include "fileio.h"
#include "macro.h"
#include "target-util.h"

#define ALICE 4242
#define BOB 4343
#define SOCKET_GROUP 7777 /* may connect to memcrd */
#define EXTRA_GROUP 5555

static Daemon d;
static pid_t bus_pid; /* a bus without polkit (see bus_without_polkit()) */

static void setup(void) {
        const char *const extra[] = { "--socket-group=7777", NULL };
        cr_assert_eq(daemon_setup(&d), 0);
        cr_assert_eq(daemon_start(&d, false, extra), 0, "memcrd did not start (see %s)", d.log);
}

static void teardown(void) {
        char report[512];

        target_kill_all();
        if (d.pid > 0)
                daemon_stop(&d, SIGTERM);
        if (bus_pid > 0) {
                kill(bus_pid, SIGTERM);
                waitpid(bus_pid, NULL, 0);
                bus_pid = 0;
        }
        bool clean = !daemon_log_sanitizer_report(&d, report, sizeof(report));
        daemon_cleanup(&d);
        cr_assert(clean, "sanitizer report in memcrd's log: %s", report);
}

TestSuite(security, .init = setup, .fini = teardown, .timeout = 300);

static const char *const small[] = { "--heap=8", "--mmap=8", "--threads=2", NULL };

/* A request made by a process with exactly these credentials. Returns the
 * MemcrResult, or -1 if no reply came. */
static bool in_own_user_namespace = false;

static int request_as(uid_t uid, gid_t gid, const gid_t *groups, size_t n_groups, uint16_t type, pid_t pid) {
        int p[2], st, result = -1;
        pid_t child;

        cr_assert_eq(pipe(p), 0);
        child = fork();
        cr_assert_geq(child, 0);
        if (child == 0) {
                Message m = {};
                int32_t v = -1;
                close(p[0]);
                if (setgroups(n_groups, groups) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0)
                        _exit(1);
                /* There it holds every capability, over its namespace. */
                if (in_own_user_namespace && unshare(CLONE_NEWUSER) < 0)
                        _exit(2);
                if (daemon_request(&d, type, pid, 0, &m) >= 0)
                        v = (int32_t) m.result;
                (void) !write(p[1], &v, sizeof(v));
                _exit(0);
        }
        close(p[1]);
        cr_assert_eq(read(p[0], &result, sizeof(result)), (ssize_t) sizeof(result));
        close(p[0]);
        cr_assert_eq(waitpid(child, &st, 0), child);
        return result;
}

/* The same, with the answer's text (what memcrctl would print) in text. */
static int request_as_text(uid_t uid, uint16_t type, pid_t pid, char *text, size_t size) {
        const gid_t groups[] = { SOCKET_GROUP };
        int p[2], st, result = -1;
        ssize_t k, got = 0;
        pid_t child;

        cr_assert_eq(pipe(p), 0);
        child = fork();
        cr_assert_geq(child, 0);
        if (child == 0) {
                Message m = {};
                int32_t v = -1;
                close(p[0]);
                if (setgroups(uid == 0 ? 0 : 1, groups) < 0 || setresgid(uid, uid, uid) < 0 ||
                    setresuid(uid, uid, uid) < 0)
                        _exit(1);
                if (daemon_request(&d, type, pid, 0, &m) >= 0)
                        v = (int32_t) m.result;
                (void) !write(p[1], &v, sizeof(v));
                if (m.message)
                        (void) !write(p[1], m.message, strlen(m.message));
                _exit(0);
        }
        close(p[1]);
        cr_assert_eq(read(p[0], &result, sizeof(result)), (ssize_t) sizeof(result));
        while (got < (ssize_t) size - 1 && (k = read(p[0], text + got, size - 1 - (size_t) got)) > 0)
                got += k;
        text[got] = 0;
        close(p[0]);
        cr_assert_eq(waitpid(child, &st, 0), child);
        return result;
}

/* memcrctl as uid (in the socket group), against our memcrd: its exit
 * status, and what it wrote to stderr in err. */
static int memcrctl_as(uid_t uid, char *err, size_t size, const char *const *args) {
        const char *ctl = getenv("MEMCRCTL");
        const gid_t groups[] = { SOCKET_GROUP };
        char a_socket[160];
        const char *argv[16];
        size_t n = 0;
        int p[2], st;
        ssize_t k, got = 0;
        pid_t child;

        cr_assert_not_null(ctl, "MEMCRCTL is not set");
        snprintf(a_socket, sizeof(a_socket), "--socket=%s", d.sock);
        argv[n++] = ctl;
        argv[n++] = a_socket;
        for (size_t i = 0; args[i] && n < ELEMENTSOF(argv) - 1; i++)
                argv[n++] = args[i];
        argv[n] = NULL;
        cr_assert_eq(pipe(p), 0);
        child = fork();
        cr_assert_geq(child, 0);
        if (child == 0) {
                int null = open("/dev/null", O_WRONLY);
                dup2(p[1], STDERR_FILENO);
                dup2(null, STDOUT_FILENO);
                if (setgroups(1, groups) < 0 || setresgid(uid, uid, uid) < 0 || setresuid(uid, uid, uid) < 0)
                        _exit(126);
                execv(ctl, (char **) argv);
                _exit(127);
        }
        close(p[1]);
        while (got < (ssize_t) size - 1 && (k = read(p[0], err + got, size - 1 - (size_t) got)) > 0)
                got += k;
        err[got] = 0;
        close(p[0]);
        cr_assert_eq(waitpid(child, &st, 0), child);
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int as_alice(uint16_t type, pid_t pid) {
        const gid_t groups[] = { SOCKET_GROUP };
        return request_as(ALICE, ALICE, groups, 1, type, pid);
}

static int as_bob(uint16_t type, pid_t pid) {
        const gid_t groups[] = { SOCKET_GROUP };
        return request_as(BOB, BOB, groups, 1, type, pid);
}

static int as_root(uint16_t type, pid_t pid) {
        return request_as(0, 0, NULL, 0, type, pid);
}

static void verify(Target *t) {
        TargetResult res = {};
        int status = -1;
        cr_assert_eq(target_verify(t, &res, &status), 0);
        cr_assert(res.ok, "target %d found %llu bad words", t->pid, (unsigned long long) res.bad_words);
        cr_assert_eq(status, 0);
        target_stop(t);
}

/* A denied request left the target exactly as it was: running, untraced. */
static void assert_untouched(Target *t) {
        char s = proc_state(t->pid);
        cr_assert(s == 'S' || s == 'R', "target in state %c", s);
        cr_assert_eq(proc_tracer(t->pid), 0);
        TargetResult res = {};
        cr_assert_eq(target_check(t, &res), 0);
        cr_assert(res.ok);
}

static void assert_denial_logged(pid_t pid, const char *reason) {
        char pid_field[64];
        snprintf(pid_field, sizeof(pid_field), "MEMCR_PID=%d ", pid);
        const char *const needles[] = { "MESSAGE_ID=9d30549e49ee4ee7825e0c2bd2c759b7", pid_field, "MEMCR_RESULT=denied",
                                        reason, NULL };
        cr_assert(daemon_log_has(&d, needles), "denial of %d (%s) not logged", pid, reason);
}

Test(security, user_checkpoints_and_restores_own_process) {
        Target t;

        cr_assert_eq(target_start_as(&t, small, ALICE, ALICE), 0);
        cr_assert_eq(as_alice(MSG_CHECKPOINT, t.pid), MEMCR_OK);
        cr_assert_eq(proc_state(t.pid), 't');
        cr_assert_eq(as_alice(MSG_STATUS, t.pid), MEMCR_OK);
        cr_assert_eq(as_alice(MSG_RESTORE, t.pid), MEMCR_OK);
        verify(&t);
}

Test(security, user_is_denied_another_users_process) {
        Target t;

        cr_assert_eq(target_start_as(&t, small, BOB, BOB), 0);
        cr_assert_eq(as_alice(MSG_CHECKPOINT, t.pid), MEMCR_ERR_DENIED);
        assert_untouched(&t);
        assert_denial_logged(t.pid, "MEMCR_REASON=target's uids differ");
        verify(&t);
}

Test(security, user_is_denied_root_process) {
        Target t;

        cr_assert_eq(target_start(&t, small), 0);
        cr_assert_eq(as_alice(MSG_CHECKPOINT, t.pid), MEMCR_ERR_DENIED);
        assert_untouched(&t);
        verify(&t);
}

Test(security, user_is_denied_own_process_with_a_capability) {
        Target t;

        cr_assert_eq(target_start_full(&t, small, ALICE, ALICE, CAP_NET_BIND_SERVICE), 0);
        cr_assert_neq(proc_status_kb(t.pid, "CapEff"), 0, "target has no capability");
        cr_assert_eq(as_alice(MSG_CHECKPOINT, t.pid), MEMCR_ERR_DENIED);
        assert_untouched(&t);
        assert_denial_logged(t.pid, "capabilities");
        /* Root may. */
        cr_assert_eq(as_root(MSG_CHECKPOINT, t.pid), MEMCR_OK);
        cr_assert_eq(as_root(MSG_RESTORE, t.pid), MEMCR_OK);
        verify(&t);
}

/* The same, asked from a user namespace of the caller's own, where it holds
 * every capability: they count for nothing outside. */
Test(security, caller_in_its_own_user_namespace_gains_nothing) {
        Target t;

        cr_assert_eq(target_start_full(&t, small, ALICE, ALICE, CAP_NET_BIND_SERVICE), 0);
        in_own_user_namespace = true;
        int r = as_alice(MSG_CHECKPOINT, t.pid);
        in_own_user_namespace = false;
        cr_assert_eq(r, MEMCR_ERR_DENIED, "result %d", r);
        assert_untouched(&t);
        assert_denial_logged(t.pid, "capabilities");
        target_stop(&t);
}

Test(security, user_is_denied_process_whose_saved_uid_differs) {
        Target t;
        const char *const args[] = { "--heap=8", "--threads=2", "--setresgid=4242:4242:4242",
                                     "--setresuid=4242:4242:0", NULL };

        cr_assert_eq(target_start(&t, args), 0);
        cr_assert_eq(as_alice(MSG_CHECKPOINT, t.pid), MEMCR_ERR_DENIED);
        assert_untouched(&t);
        assert_denial_logged(t.pid, "uids differ");
        cr_assert_eq(as_root(MSG_CHECKPOINT, t.pid), MEMCR_OK);
        cr_assert_eq(as_root(MSG_RESTORE, t.pid), MEMCR_OK);
        verify(&t);
}

Test(security, group_rules) {
        Target t;
        const char *const args[] = { "--heap=8", "--threads=2", "--setresgid=4242:4242:5555",
                                     "--setresuid=4242:4242:4242", NULL };
        const gid_t plain[] = { SOCKET_GROUP }, with_extra[] = { SOCKET_GROUP, EXTRA_GROUP };

        cr_assert_eq(target_start(&t, args), 0);
        /* Saved gid 5555 is not among alice's groups... */
        cr_assert_eq(request_as(ALICE, ALICE, plain, 1, MSG_CHECKPOINT, t.pid), MEMCR_ERR_DENIED);
        assert_untouched(&t);
        assert_denial_logged(t.pid, "gids");
        /* ...unless it is one of her supplementary groups. */
        cr_assert_eq(request_as(ALICE, ALICE, with_extra, 2, MSG_CHECKPOINT, t.pid), MEMCR_OK);
        cr_assert_eq(request_as(ALICE, ALICE, with_extra, 2, MSG_RESTORE, t.pid), MEMCR_OK);
        verify(&t);
}

Test(security, restore_by_another_user_is_denied) {
        Target t;

        cr_assert_eq(target_start_as(&t, small, ALICE, ALICE), 0);
        cr_assert_eq(as_alice(MSG_CHECKPOINT, t.pid), MEMCR_OK);
        cr_assert_eq(as_bob(MSG_RESTORE, t.pid), MEMCR_ERR_DENIED);
        cr_assert_eq(as_bob(MSG_STATUS, t.pid), MEMCR_ERR_DENIED);
        cr_assert_eq(proc_state(t.pid), 't', "a denied restore changed the target");
        assert_denial_logged(t.pid, "MEMCR_OP=restore");
        cr_assert_eq(as_alice(MSG_RESTORE, t.pid), MEMCR_OK);
        verify(&t);
}

Test(security, root_may_checkpoint_any_user) {
        Target t;

        cr_assert_eq(target_start_as(&t, small, BOB, BOB), 0);
        cr_assert_eq(as_root(MSG_CHECKPOINT, t.pid), MEMCR_OK);
        /* The owner may restore what root froze. */
        cr_assert_eq(as_bob(MSG_RESTORE, t.pid), MEMCR_OK);
        verify(&t);
}

Test(security, user_outside_the_socket_group_cannot_connect) {
        Target t;

        cr_assert_eq(target_start_as(&t, small, ALICE, ALICE), 0);
        cr_assert_eq(request_as(ALICE, ALICE, NULL, 0, MSG_CHECKPOINT, t.pid), -1);
        assert_untouched(&t);
        verify(&t);
}

/* ---- What a dump reveals and whether a changed dump is ever used ---- */

/* The watcher's descriptor for the dump file, opened through /proc. */
static int open_dump_of(pid_t watcher) {
        char dir[64], path[512], target[512];
        DIR *dd;
        struct dirent *de;
        int fd = -1;

        snprintf(dir, sizeof(dir), "/proc/%d/fd", watcher);
        dd = opendir(dir);
        cr_assert_not_null(dd);
        while (fd < 0 && (de = readdir(dd))) {
                ssize_t n;
                snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
                n = readlink(path, target, sizeof(target) - 1);
                if (n <= 0)
                        continue;
                target[n] = 0;
                if (strstr(target, d.state) && strstr(target, "(deleted)"))
                        fd = open(path, O_RDWR | O_CLOEXEC);
        }
        closedir(dd);
        cr_assert_geq(fd, 0, "no dump file held by watcher %d", watcher);
        return fd;
}

static pid_t watcher_of(pid_t pid) {
        Message m = {};
        pid_t w;
        cr_assert_eq(daemon_request(&d, MSG_STATUS, pid, 0, &m), 0);
        cr_assert_eq(m.result, MEMCR_OK);
        w = (pid_t) m.watcher_pid;
        message_done(&m);
        return w;
}

typedef enum Tamper { FLIP, SWAP, TRUNCATE, APPEND } Tamper;

static void tamper_and_restore(Tamper how) {
        const char *const args[] = { "--mmap=32", "--threads=2", NULL };
        struct dump_header h;
        Target t;
        Message m = {};
        int fd;

        cr_assert_eq(target_start(&t, args), 0);
        cr_assert_eq(as_root(MSG_CHECKPOINT, t.pid), MEMCR_OK);
        fd = open_dump_of(watcher_of(t.pid));
        cr_assert_eq(pread_full(fd, &h, sizeof(h), 0), 0);
        cr_assert_eq(memcmp(h.magic, DUMP_MAGIC, 8), 0);
        cr_assert_geq(h.n_chunks, 2);

        struct dump_chunk *idx = malloc(h.n_chunks * sizeof(*idx));
        cr_assert_eq(pread_full(fd, idx, h.n_chunks * sizeof(*idx), (off_t) h.index_offset), 0);
        switch (how) {
        case FLIP: {
                uint8_t b;
                off_t off = (off_t) idx[h.n_chunks / 2].offset + 1234;
                cr_assert_eq(pread_full(fd, &b, 1, off), 0);
                b ^= 0x10;
                cr_assert_eq(pwrite_full(fd, &b, 1, off), 0);
                break;
        }
        case SWAP: {
                /* Two chunks of the same size exchange places. */
                size_t a = 0, b = 1;
                while (b < h.n_chunks && idx[b].stored_len != idx[a].stored_len)
                        b++;
                cr_assert_lt(b, h.n_chunks);
                uint8_t *x = malloc(idx[a].stored_len), *y = malloc(idx[b].stored_len);
                cr_assert_eq(pread_full(fd, x, idx[a].stored_len, (off_t) idx[a].offset), 0);
                cr_assert_eq(pread_full(fd, y, idx[b].stored_len, (off_t) idx[b].offset), 0);
                cr_assert_eq(pwrite_full(fd, y, idx[b].stored_len, (off_t) idx[a].offset), 0);
                cr_assert_eq(pwrite_full(fd, x, idx[a].stored_len, (off_t) idx[b].offset), 0);
                free(x);
                free(y);
                break;
        }
        case TRUNCATE:
                cr_assert_eq(ftruncate(fd, (off_t) idx[h.n_chunks - 1].offset), 0);
                break;
        case APPEND:
                cr_assert_eq(pwrite_full(fd, "more", 4, (off_t) h.file_size), 0);
                break;
        }
        free(idx);
        close(fd);

        /* Restore refuses the dump: the target is killed, never resumed with
         * wrong memory, and the log says why. */
        cr_assert_eq(daemon_request(&d, MSG_RESTORE, t.pid, 0, &m), 0);
        cr_assert_eq(m.result, MEMCR_ERR_KILLED, "result %s: %s", memcr_result_to_string(m.result), m.message ?: "");
        message_done(&m);
        int st;
        cr_assert_eq(waitpid(t.pid, &st, 0), t.pid);
        cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "target was not killed");
        t.reaped = true;
        target_stop(&t);

        char pid_field[64];
        snprintf(pid_field, sizeof(pid_field), "MEMCR_PID=%d ", t.pid);
        const char *const needles[] = { "MESSAGE_ID=4d2c111ec80c4c54b179bb720ed38ea2", pid_field, "Bad message", NULL };
        cr_assert(daemon_log_has(&d, needles), "the kill and its reason were not logged");
}

Test(security, tampered_dump_flipped_byte) {
        tamper_and_restore(FLIP);
}

Test(security, tampered_dump_swapped_chunks) {
        tamper_and_restore(SWAP);
}

Test(security, tampered_dump_truncated) {
        tamper_and_restore(TRUNCATE);
}

Test(security, tampered_dump_appended) {
        tamper_and_restore(APPEND);
}

Test(security, dump_is_encrypted_and_key_is_kept_out_of_core_dumps) {
        const char *const args[] = { "--mmap=16", "--threads=2", "--compressible", NULL };
        Target t;
        pid_t w;
        int fd;
        char path[64], line[512];
        FILE *f;
        bool key_page = false;

        cr_assert_eq(target_start(&t, args), 0);
        cr_assert_eq(as_root(MSG_CHECKPOINT, t.pid), MEMCR_OK);
        w = watcher_of(t.pid);

        /* The text the target's memory is full of appears nowhere in the dump. */
        fd = open_dump_of(w);
        struct stat st;
        cr_assert_eq(fstat(fd, &st), 0);
        char *buf = malloc((size_t) st.st_size);
        cr_assert_eq(pread_full(fd, buf, (size_t) st.st_size, 0), 0);
        cr_assert_null(memmem(buf, (size_t) st.st_size, "memcr parks", 11), "clear text in the dump");
        free(buf);
        close(fd);

        /* The key lives in a page of its own, excluded from core dumps (dd)
         * and wiped in a forked child (wf). */
        snprintf(path, sizeof(path), "/proc/%d/smaps", w);
        f = fopen(path, "re");
        cr_assert_not_null(f);
        while (fgets(line, sizeof(line), f))
                if (strncmp(line, "VmFlags:", 8) == 0 && strstr(line, " dd") && strstr(line, " wf"))
                        key_page = true;
        fclose(f);
        cr_assert(key_page, "no dont-dump, wipe-on-fork page in the watcher");

        cr_assert_eq(as_root(MSG_RESTORE, t.pid), MEMCR_OK);
        verify(&t);
}

static void compressed(const char *codec) {
        const char *const args[] = { "--mmap=256", "--threads=2", "--compressible", NULL };
        Target t;
        Message req = { .type = MSG_CHECKPOINT }, m = {};
        int fd;

        cr_assert_eq(target_start(&t, args), 0);
        fd = daemon_connect(&d);
        cr_assert_geq(fd, 0);
        message_set_u32(&req, TAG_PID, (uint32_t) t.pid);
        cr_assert_eq(message_set_string(&req, TAG_CODEC, codec), 0);
        cr_assert_eq(message_send(fd, &req, NULL, 0), 0);
        cr_assert_eq(message_recv(fd, &m, NULL, 0, NULL), 0);
        cr_assert_eq(m.result, MEMCR_OK, "%s", m.message ?: "");
        cr_log_info("%s: %llu bytes of pages in a %llu byte dump", codec, (unsigned long long) m.dump_bytes,
                    (unsigned long long) m.dump_file_bytes);
        cr_assert_geq(m.dump_bytes, 256u << 20);
        cr_assert_leq(m.dump_file_bytes * 4, m.dump_bytes, "not 4 times smaller");
        message_done(&m);
        message_done(&req);
        close(fd);
        cr_assert_eq(as_root(MSG_RESTORE, t.pid), MEMCR_OK);
        verify(&t);
}

Test(security, lz4_dump_is_four_times_smaller) {
        compressed("lz4");
}

Test(security, zstd_dump_is_four_times_smaller) {
        compressed("zstd");
}

Test(security, nothing_guessable_is_exposed) {
        Target t;
        char line[1024], watch_dir[256];
        FILE *f;
        int named = 0;

        cr_assert_eq(target_start(&t, small), 0);
        cr_assert_eq(as_root(MSG_CHECKPOINT, t.pid), MEMCR_OK);
        snprintf(watch_dir, sizeof(watch_dir), "%s/watch/", d.runtime);

        /* Every UNIX socket with a name: ours are memcrd's and the watcher's,
         * inside the 0700 directory. No abstract socket of ours exists. */
        f = fopen("/proc/net/unix", "re");
        cr_assert_not_null(f);
        while (fgets(line, sizeof(line), f)) {
                char *path = strrchr(line, ' ');
                if (!path || !strstr(line, d.dir))
                        continue;
                path++;
                path[strcspn(path, "\n")] = 0;
                named++;
                cr_assert(strcmp(path, d.sock) == 0 || strncmp(path, watch_dir, strlen(watch_dir)) == 0,
                          "unexpected socket %s", path);
        }
        fclose(f);
        cr_assert_geq(named, 2);
        f = fopen("/proc/net/unix", "re");
        while (fgets(line, sizeof(line), f))
                cr_assert_null(strstr(line, "@memcr"), "abstract socket: %s", line);
        fclose(f);

        struct stat st;
        cr_assert_eq(stat(watch_dir, &st), 0);
        cr_assert_eq(st.st_mode & 0777, 0700);
        cr_assert_eq(count_dir_entries(watch_dir), 1);
        cr_assert_eq(stat(d.state, &st), 0);
        cr_assert_eq(st.st_mode & 0777, 0700);
        cr_assert_eq(count_dir_entries(d.state), 0, "the dump has a name");

        cr_assert_eq(as_root(MSG_RESTORE, t.pid), MEMCR_OK);
        verify(&t);
}

/* The target executes a set-uid root program after memcrd authorized the
 * request and before its watcher stopped it: the watcher finds a process
 * that is not the one authorized, refuses, and leaves it running untouched.
 * (memcrd starts the watcher through a wrapper that waits a second, so the
 * order is certain: request, authorization, exec, seize.) */
Test(security, exec_of_a_setuid_program_after_authorization_is_refused) {
        char dir[] = "/var/tmp/memcr-suid-XXXXXX", suid[128], wrapper[128], a_watcher[160], cmd[320], buf[4096];
        const char *watch = getenv("MEMCR_WATCH");
        _cleanup_free_ char *status = NULL;
        int p[2], st;
        pid_t target;

        cr_assert_not_null(watch, "MEMCR_WATCH is not set");
        cr_assert_not_null(mkdtemp(dir));
        cr_assert_eq(chmod(dir, 0755), 0);
        /* A set-uid root copy of sleep(1). */
        snprintf(suid, sizeof(suid), "%s/sleep", dir);
        _cleanup_close_ int in = open("/bin/sleep", O_RDONLY | O_CLOEXEC);
        _cleanup_close_ int out = open(suid, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0755);
        cr_assert(in >= 0 && out >= 0);
        for (ssize_t n; (n = read(in, buf, sizeof(buf))) > 0;)
                cr_assert_eq(write(out, buf, (size_t) n), n);
        cr_assert_eq(fchmod(out, 04755), 0);
        out = safe_close(out); /* else its exec fails: text file busy */
        snprintf(wrapper, sizeof(wrapper), "%s/slow-watcher", dir);
        FILE *f = fopen(wrapper, "we");
        cr_assert_not_null(f);
        fprintf(f, "#!/bin/sh\nsleep 1\nexec '%s' \"$@\"\n", watch);
        cr_assert_eq(fclose(f), 0);
        cr_assert_eq(chmod(wrapper, 0755), 0);

        daemon_stop(&d, SIGTERM);
        snprintf(a_watcher, sizeof(a_watcher), "--watcher=%s", wrapper);
        const char *const extra[] = { "--socket-group=7777", a_watcher, NULL };
        cr_assert_eq(daemon_start(&d, false, extra), 0, "memcrd did not start (see %s)", d.log);

        /* Alice's shell, which executes the set-uid program 300 ms from now. */
        cr_assert_eq(pipe(p), 0);
        target = fork();
        cr_assert_geq(target, 0);
        if (target == 0) {
                close(p[0]);
                if (setgroups(0, NULL) < 0 || setresgid(ALICE, ALICE, ALICE) < 0 || setresuid(ALICE, ALICE, ALICE) < 0)
                        _exit(1);
                if (dup2(p[1], 3) < 0)
                        _exit(1);
                snprintf(cmd, sizeof(cmd), "echo >&3; exec 3>&-; sleep 0.3; exec '%s' 30", suid);
                execl("/bin/sh", "sh", "-c", cmd, (char *) NULL);
                _exit(127);
        }
        close(p[1]);
        cr_assert_eq(read(p[0], buf, 1), 1);
        close(p[0]);

        /* Alice may checkpoint her own shell: allowed, then refused. */
        cr_assert_eq(as_alice(MSG_CHECKPOINT, target), MEMCR_ERR_DENIED);
        snprintf(cmd, sizeof(cmd), "/proc/%i/status", (int) target);
        cr_assert_eq(read_full_file(cmd, 65536, &status, NULL), 0);
        cr_assert_not_null(strstr(status, "\nUid:\t4242\t0\t0"), "not the set-uid program: %s", status);
        char s = proc_state(target);
        cr_assert(s == 'S' || s == 'R', "target in state %c", s);
        cr_assert_eq(proc_tracer(target), 0);
        char pid_field[64];
        snprintf(pid_field, sizeof(pid_field), "MEMCR_PID=%d ", target);
        const char *const refused[] = { pid_field, "changed after the request was authorized", NULL };
        cr_assert(daemon_log_has(&d, refused), "the refusal was not logged");

        kill(target, SIGKILL);
        cr_assert_eq(waitpid(target, &st, 0), target);
        unlink(wrapper);
        unlink(suid);
        rmdir(dir);
}

/* ---- Quotas: what one user may take of memcrd ---- */

/* memcrd again, with other options; ready once its socket is the group's
 * (it changes the group after binding it). */
static void restart_daemon(const char *const *extra) {
        struct stat st;

        daemon_stop(&d, SIGTERM);
        cr_assert_eq(daemon_start(&d, false, extra), 0, "memcrd did not start (see %s)", d.log);
        for (int i = 0; i < 500; i++) {
                if (stat(d.sock, &st) >= 0 && st.st_gid == SOCKET_GROUP)
                        return;
                usleep(10 * 1000);
        }
        cr_assert_fail("the socket never became group %d's", SOCKET_GROUP);
}

#define CAROL 4444

typedef struct Holder {
        pid_t pid;
        int release;           /* closing it lets the holder go */
        unsigned ok, busy, closed;
        char busy_text[256];
} Holder;

/* uid opens n connections one after another, and sends a version request on
 * each (as a client that keeps its connections busy would); it keeps them
 * all open until released. */
static void hold_connections(Holder *h, uid_t uid, unsigned n) {
        const gid_t groups[] = { SOCKET_GROUP };
        int report[2], release[2];

        *h = (Holder) {};
        cr_assert_eq(pipe(report), 0);
        cr_assert_eq(pipe(release), 0);
        h->pid = fork();
        cr_assert_geq(h->pid, 0);
        if (h->pid == 0) {
                Holder r = {};
                char c;

                close(report[0]);
                close(release[1]);
                signal(SIGPIPE, SIG_IGN);
                if (setgroups(1, groups) < 0 || setresgid(uid, uid, uid) < 0 || setresuid(uid, uid, uid) < 0)
                        _exit(1);
                for (unsigned i = 0; i < n; i++) {
                        Message m = {};
                        int fd = daemon_connect(&d);

                        if (fd < 0 || daemon_request_fd(fd, MSG_VERSION, 0, 0, &m) < 0)
                                r.closed++;
                        else if (m.result == MEMCR_OK)
                                r.ok++;
                        else if (m.result == MEMCR_ERR_BUSY) {
                                if (r.busy++ == 0)
                                        snprintf(r.busy_text, sizeof(r.busy_text), "%s", m.message ?: "");
                        }
                        message_done(&m);
                        /* Kept open, answered or not. */
                }
                (void) !write(report[1], &r, sizeof(r));
                (void) !read(release[0], &c, 1);
                _exit(0);
        }
        close(report[1]);
        close(release[0]);
        Holder r;
        cr_assert_eq(read(report[0], &r, sizeof(r)), (ssize_t) sizeof(r));
        close(report[0]);
        h->ok = r.ok;
        h->busy = r.busy;
        h->closed = r.closed;
        memcpy(h->busy_text, r.busy_text, sizeof(h->busy_text));
        h->release = release[1];
        cr_log_info("uid %u: %u connections served, %u told busy (%s), %u closed", (unsigned) uid, h->ok, h->busy,
                    h->busy_text, h->closed);
}

static void release_connections(Holder *h) {
        int st;

        close(h->release);
        cr_assert_eq(waitpid(h->pid, &st, 0), h->pid);
}

/* The audit: one member of the socket's group kept all 256 connection
 * slots; root got none of 8 answers. Now one user gets its share, and the
 * others and root are served. */
Test(security, one_user_cannot_take_every_connection) {
        Holder alice;
        unsigned served = 0;

        hold_connections(&alice, ALICE, 256);
        cr_assert_eq(alice.ok, 32, "alice holds %u connections", alice.ok);
        cr_assert_gt(alice.busy, 0);
        cr_assert_str_eq(alice.busy_text, "limit of 32 connections for uid 4242 reached");
        for (int i = 0; i < 8; i++)
                if (as_root(MSG_VERSION, 0) == MEMCR_OK)
                        served++;
        cr_assert_eq(served, 8, "root got %u of 8 answers", served);
        cr_assert_eq(as_bob(MSG_VERSION, 0), MEMCR_OK);
        const char *const logged[] = { "MESSAGE_ID=999aea784a394e1988f0f90686b11ad9", "MEMCR_LIMIT=connections",
                                       "MEMCR_CALLER_UID=4242", NULL };
        cr_assert(daemon_log_has(&d, logged), "the refusal was not logged");
        release_connections(&alice);
        /* Gone: alice is served again. */
        cr_assert_eq(as_alice(MSG_VERSION, 0), MEMCR_OK);
}

/* Users other than root share --max-clients; root has its own share. */
Test(security, root_keeps_connections_of_its_own) {
        const char *const extra[] = { "--socket-group=7777", "--max-clients=4", "--max-clients-per-user=2", NULL };
        Holder alice, bob, carol, root;
        char text[256];

        restart_daemon(extra);
        hold_connections(&alice, ALICE, 3);
        cr_assert_eq(alice.ok, 2);
        cr_assert_eq(alice.busy, 1);
        hold_connections(&bob, BOB, 2);
        cr_assert_eq(bob.ok, 2);
        /* Four connections of users other than root: nobody else but root. */
        hold_connections(&carol, CAROL, 1);
        cr_assert_eq(carol.ok, 0);
        cr_assert_eq(carol.busy, 1);
        cr_assert_str_eq(carol.busy_text, "limit of 4 connections of users other than root reached");
        cr_assert_eq(request_as_text(0, MSG_VERSION, 0, text, sizeof(text)), MEMCR_OK);
        hold_connections(&root, 0, 3);
        cr_assert_eq(root.ok, 2);
        cr_assert_str_eq(root.busy_text, "limit of 2 connections for uid 0 reached");
        release_connections(&root);
        release_connections(&carol);
        release_connections(&bob);
        release_connections(&alice);
}

/* The audit: one member froze ~505 processes, memcrd then ran out of
 * descriptors and root's checkpoint failed. Now a user has a limit, users
 * other than root together have one, and root's share is its own. */
Test(security, frozen_processes_have_limits) {
        const char *const extra[] = { "--socket-group=7777", "--max-frozen-per-user=2", "--max-frozen-processes=3",
                                      NULL };
        Target a[3], b[2], r;
        char text[512], pid_arg[32];

        restart_daemon(extra);
        for (int i = 0; i < 3; i++)
                cr_assert_eq(target_start_as(&a[i], small, ALICE, ALICE), 0);
        for (int i = 0; i < 2; i++)
                cr_assert_eq(target_start_as(&b[i], small, BOB, BOB), 0);
        cr_assert_eq(target_start(&r, small), 0);

        cr_assert_eq(as_alice(MSG_CHECKPOINT, a[0].pid), MEMCR_OK);
        cr_assert_eq(as_alice(MSG_CHECKPOINT, a[1].pid), MEMCR_OK);
        cr_assert_eq(request_as_text(ALICE, MSG_CHECKPOINT, a[2].pid, text, sizeof(text)), MEMCR_ERR_BUSY);
        cr_assert_str_eq(text, "limit of 2 frozen processes for uid 4242 reached");
        assert_untouched(&a[2]);
        /* What memcrctl makes of it. */
        snprintf(pid_arg, sizeof(pid_arg), "%d", a[2].pid);
        const char *const args[] = { "checkpoint", pid_arg, NULL };
        cr_assert_eq(memcrctl_as(ALICE, text, sizeof(text), args), 1, "%s", text);
        cr_assert_not_null(strstr(text, "limit of 2 frozen processes for uid 4242 reached (busy)"), "%s", text);

        /* Alice and Bob together: three. */
        cr_assert_eq(as_bob(MSG_CHECKPOINT, b[0].pid), MEMCR_OK);
        cr_assert_eq(request_as_text(BOB, MSG_CHECKPOINT, b[1].pid, text, sizeof(text)), MEMCR_ERR_BUSY);
        cr_assert_str_eq(text, "limit of 3 frozen processes of users other than root reached");
        assert_untouched(&b[1]);

        /* Root's share is its own. */
        cr_assert_eq(as_root(MSG_CHECKPOINT, r.pid), MEMCR_OK);
        cr_assert_eq(as_root(MSG_CHECKPOINT, b[1].pid), MEMCR_OK);

        /* Room again once one is restored. */
        cr_assert_eq(as_alice(MSG_RESTORE, a[0].pid), MEMCR_OK);
        cr_assert_eq(as_alice(MSG_CHECKPOINT, a[2].pid), MEMCR_OK);

        const char *const logged[] = { "MESSAGE_ID=999aea784a394e1988f0f90686b11ad9", "MEMCR_LIMIT=frozen",
                                       "MEMCR_CALLER_UID=4343", NULL };
        cr_assert(daemon_log_has(&d, logged), "the refusal was not logged");

        cr_assert_eq(as_alice(MSG_RESTORE, a[1].pid), MEMCR_OK);
        cr_assert_eq(as_alice(MSG_RESTORE, a[2].pid), MEMCR_OK);
        cr_assert_eq(as_bob(MSG_RESTORE, b[0].pid), MEMCR_OK);
        cr_assert_eq(as_root(MSG_RESTORE, b[1].pid), MEMCR_OK);
        cr_assert_eq(as_root(MSG_RESTORE, r.pid), MEMCR_OK);
        for (int i = 0; i < 3; i++)
                verify(&a[i]);
        for (int i = 0; i < 2; i++)
                verify(&b[i]);
        verify(&r);
}

/* Whether another user's process is frozen is none of a caller's business:
 * status, restore and checkpoint get the same denial either way. */
Test(security, other_users_processes_reveal_nothing) {
        static const uint16_t ops[] = { MSG_STATUS, MSG_RESTORE };
        char running[512], frozen[512], text[512];
        Target t, u;

        cr_assert_eq(target_start_as(&t, small, ALICE, ALICE), 0);
        cr_assert_eq(target_start_as(&u, small, ALICE, ALICE), 0);
        for (size_t i = 0; i < ELEMENTSOF(ops); i++) {
                cr_assert_eq(request_as_text(BOB, ops[i], t.pid, running, sizeof(running)), MEMCR_ERR_DENIED,
                             "%s", running);
                cr_assert_eq(as_alice(MSG_CHECKPOINT, t.pid), MEMCR_OK);
                cr_assert_eq(request_as_text(BOB, ops[i], t.pid, frozen, sizeof(frozen)), MEMCR_ERR_DENIED, "%s",
                             frozen);
                cr_assert_str_eq(running, frozen);
                cr_assert_eq(as_alice(MSG_RESTORE, t.pid), MEMCR_OK);
        }
        /* A checkpoint of a frozen process of another user: denied as for one
         * that is not frozen. */
        cr_assert_eq(as_alice(MSG_CHECKPOINT, t.pid), MEMCR_OK);
        cr_assert_eq(request_as_text(BOB, MSG_CHECKPOINT, t.pid, frozen, sizeof(frozen)), MEMCR_ERR_DENIED);
        cr_assert_eq(request_as_text(BOB, MSG_CHECKPOINT, u.pid, running, sizeof(running)), MEMCR_ERR_DENIED);
        cr_assert_not_null(strstr(frozen, "target's uids differ"), "%s", frozen);
        cr_assert_not_null(strstr(running, "target's uids differ"), "%s", running);
        /* The owner is told. */
        cr_assert_eq(request_as_text(ALICE, MSG_STATUS, u.pid, text, sizeof(text)), MEMCR_ERR_NOT_FROZEN, "%s", text);
        cr_assert_eq(as_alice(MSG_RESTORE, t.pid), MEMCR_OK);
        verify(&t);
        verify(&u);
}

/* ---- Without polkit ---- */

/* A bus of our own where nobody provides org.freedesktop.PolicyKit1, given
 * to memcrd as its system bus. Returns dbus-daemon's PID. */
static pid_t bus_without_polkit(char *address, size_t size) {
        char path[160], listen[200];
        pid_t bus;

        snprintf(path, sizeof(path), "%s/bus", d.dir);
        snprintf(listen, sizeof(listen), "--address=unix:path=%s", path);
        snprintf(address, size, "unix:path=%s", path);
        bus = fork();
        cr_assert_geq(bus, 0);
        if (bus == 0) {
                int null = open("/dev/null", O_RDWR);
                dup2(null, STDIN_FILENO);
                dup2(null, STDOUT_FILENO);
                dup2(null, STDERR_FILENO);
                execlp("dbus-daemon", "dbus-daemon", "--session", "--nofork", "--nopidfile", listen, (char *) NULL);
                _exit(127);
        }
        for (int i = 0; i < 500 && access(path, F_OK) < 0; i++)
                usleep(10 * 1000);
        if (access(path, F_OK) < 0) {
                kill(bus, SIGKILL);
                waitpid(bus, NULL, 0);
                cr_skip_test("no dbus-daemon to run a bus without polkit");
        }
        return bus;
}

/* polkit is only Recommended: without it, root and what the rules allow
 * work; what needs polkit is denied, and the answer says polkit is not
 * there (it once said "Operation not possible due to RF-kill", an error
 * name turned into an errno). */
Test(security, without_polkit_root_and_the_rules_still_work) {
        const char *const extra[] = { "--socket-group=7777", "--polkit=yes", NULL };
        char address[200], text[512];
        Target a, b;
        pid_t bus;

        bus = bus_pid = bus_without_polkit(address, sizeof(address));
        setenv("DBUS_SYSTEM_BUS_ADDRESS", address, 1);
        restart_daemon(extra);
        /* Logged once it is ready, a moment after its socket is there. */
        const char *const polkit_on[] = { "memcrd started", "MEMCR_POLKIT=yes", NULL };
        for (int i = 0; i < 500 && !daemon_log_has(&d, polkit_on); i++)
                usleep(10 * 1000);
        cr_assert(daemon_log_has(&d, polkit_on), "memcrd did not take the bus for polkit");

        cr_assert_eq(target_start_as(&a, small, ALICE, ALICE), 0);
        cr_assert_eq(target_start_as(&b, small, BOB, BOB), 0);
        /* The rules allow it: polkit is not asked. */
        cr_assert_eq(as_alice(MSG_CHECKPOINT, a.pid), MEMCR_OK);
        cr_assert_eq(as_alice(MSG_RESTORE, a.pid), MEMCR_OK);
        /* Root: neither. */
        cr_assert_eq(as_root(MSG_CHECKPOINT, b.pid), MEMCR_OK);
        cr_assert_eq(as_root(MSG_RESTORE, b.pid), MEMCR_OK);
        /* Only polkit could allow this, and it is not there: said so. */
        cr_assert_eq(request_as_text(ALICE, MSG_CHECKPOINT, b.pid, text, sizeof(text)), MEMCR_ERR_DENIED, "%s", text);
        cr_log_info("%s", text);
        cr_assert_not_null(strstr(text, "target's uids differ from the caller's uid, and polkit is not available "
                                        "(org.freedesktop.PolicyKit1 not activatable): "),
                           "%s", text);
        cr_assert_null(strstr(text, "RF-kill"));
        assert_untouched(&b);
        assert_denial_logged(b.pid, "MEMCR_AUTH=polkit");
        assert_denial_logged(b.pid, "polkit is not available (org.freedesktop.PolicyKit1 not activatable)");

        verify(&a);
        verify(&b);
        daemon_stop(&d, SIGTERM);
        kill(bus, SIGTERM);
        waitpid(bus, NULL, 0);
        bus_pid = 0;
}
