/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * memcrd with real targets: concurrent clients, restart with processes
 * frozen, socket activation and idle exit, memcr's own client protocol,
 * malformed input, and the structured log.
 */

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon-util.h"
#include "macro.h"
#include "memcr-ids.h"
#include "target-util.h"
#include "time-util.h"

static Daemon d;
static pid_t activator; /* systemd-socket-activate --accept, starting watchers */

static void setup(void) {
        cr_assert_eq(daemon_setup(&d), 0);
}

static void teardown(void) {
        char report[512];

        target_kill_all();
        if (d.pid > 0)
                daemon_stop(&d, SIGTERM);
        if (activator > 0) {
                kill(activator, SIGTERM);
                waitpid(activator, NULL, 0);
                activator = 0;
        }
        /* memcrd and its watchers log to the file: sanitizer reports too. */
        bool clean = !daemon_log_sanitizer_report(&d, report, sizeof(report));
        daemon_cleanup(&d);
        cr_assert(clean, "sanitizer report in memcrd's log: %s", report);
}

TestSuite(daemon, .init = setup, .fini = teardown, .timeout = 300);

static void start(void) {
        cr_assert_eq(daemon_start(&d, false, NULL), 0, "memcrd did not start (see %s)", d.log);
}

static void expect(const Message *m, MemcrResult r) {
        cr_assert_eq(m->type, MSG_REPLY);
        cr_assert_eq(m->result, r, "result %s (%s), expected %s", memcr_result_to_string(m->result),
                     m->message ?: "", memcr_result_to_string(r));
}

static void checkpoint(pid_t pid) {
        Message m = {};
        cr_assert_eq(daemon_request(&d, MSG_CHECKPOINT, pid, 0, &m), 0);
        expect(&m, MEMCR_OK);
        cr_assert_eq(m.pid, (uint32_t) pid);
        cr_assert_gt(m.dump_bytes, 0);
        cr_assert_lt(m.rss_after, m.rss_before);
        message_done(&m);
        cr_assert_eq(proc_state(pid), 't');
}

static void restore(pid_t pid) {
        Message m = {};
        cr_assert_eq(daemon_request(&d, MSG_RESTORE, pid, 0, &m), 0);
        expect(&m, MEMCR_OK);
        message_done(&m);
        cr_assert_eq(proc_tracer(pid), 0);
}

static void verify(Target *t) {
        TargetResult res = {};
        int status = -1;
        cr_assert_eq(target_verify(t, &res, &status), 0);
        cr_assert(res.ok, "target %d found %llu bad words", t->pid, (unsigned long long) res.bad_words);
        cr_assert_eq(status, 0);
        target_stop(t);
}

static const char *const small[] = { "--heap=16", "--mmap=16", "--threads=4", NULL };

/* Run fn(i) in n forked clients at once; all must succeed. */
static void in_parallel(int n, void (*fn)(int i)) {
        pid_t kids[64];
        for (int i = 0; i < n; i++) {
                kids[i] = fork();
                cr_assert_geq(kids[i], 0);
                if (kids[i] == 0) {
                        fn(i);
                        _exit(0);
                }
        }
        for (int i = 0; i < n; i++) {
                int st;
                cr_assert_eq(waitpid(kids[i], &st, 0), kids[i]);
                cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "client %d failed", i);
        }
}

static Target targets[8];

static void child_checkpoint(int i) {
        Message m = {};
        if (daemon_request(&d, MSG_CHECKPOINT, targets[i].pid, 0, &m) < 0 || m.result != MEMCR_OK)
                _exit(1);
}

static void child_restore(int i) {
        Message m = {};
        if (daemon_request(&d, MSG_RESTORE, targets[i].pid, 0, &m) < 0 || m.result != MEMCR_OK)
                _exit(1);
}

Test(daemon, eight_clients_at_once) {
        Message m = {};

        start();
        for (int i = 0; i < 8; i++)
                cr_assert_eq(target_start(&targets[i], small), 0);
        in_parallel(8, child_checkpoint);

        cr_assert_eq(daemon_request(&d, MSG_LIST, 0, 0, &m), 0);
        expect(&m, MEMCR_OK);
        cr_assert_eq(m.n_entries, 8);
        for (size_t i = 0; i < m.n_entries; i++) {
                cr_assert_str_eq(m.entries[i].state, "frozen");
                cr_assert_gt(m.entries[i].dump_bytes, 32u << 20);
                cr_assert_str_eq(m.entries[i].comm, "memcr-test-targ");
        }
        message_done(&m);
        for (int i = 0; i < 8; i++) {
                cr_assert_eq(proc_state(targets[i].pid), 't');
                cr_assert_lt(proc_status_kb(targets[i].pid, "RssAnon"), 1024);
        }

        in_parallel(8, child_restore);
        for (int i = 0; i < 8; i++)
                verify(&targets[i]);

        cr_assert_eq(daemon_request(&d, MSG_LIST, 0, 0, &m), 0);
        cr_assert_eq(m.n_entries, 0);
        message_done(&m);
}

Test(daemon, status_version_and_errors) {
        Target t;
        Message m = {};

        start();
        cr_assert_eq(target_start(&t, small), 0);

        cr_assert_eq(daemon_request(&d, MSG_VERSION, 0, 0, &m), 0);
        expect(&m, MEMCR_OK);
        cr_assert_not_null(m.version);
        message_done(&m);

        /* Not frozen yet. */
        cr_assert_eq(daemon_request(&d, MSG_RESTORE, t.pid, 0, &m), 0);
        expect(&m, MEMCR_ERR_NOT_FROZEN);
        message_done(&m);
        cr_assert_eq(daemon_request(&d, MSG_STATUS, t.pid, 0, &m), 0);
        expect(&m, MEMCR_ERR_NOT_FROZEN);
        message_done(&m);

        /* No such process. */
        cr_assert_eq(daemon_request(&d, MSG_CHECKPOINT, 0x7ffffff0, 0, &m), 0);
        expect(&m, MEMCR_ERR_NO_PROCESS);
        message_done(&m);

        /* Never a target: PID 1, memcrd itself. */
        cr_assert_eq(daemon_request(&d, MSG_CHECKPOINT, 1, 0, &m), 0);
        cr_assert_neq(m.result, MEMCR_OK);
        message_done(&m);
        cr_assert_eq(daemon_request(&d, MSG_CHECKPOINT, d.pid, 0, &m), 0);
        cr_assert_neq(m.result, MEMCR_OK);
        message_done(&m);

        checkpoint(t.pid);
        /* Again: already frozen. */
        cr_assert_eq(daemon_request(&d, MSG_CHECKPOINT, t.pid, 0, &m), 0);
        expect(&m, MEMCR_ERR_ALREADY_FROZEN);
        message_done(&m);

        cr_assert_eq(daemon_request(&d, MSG_STATUS, t.pid, 0, &m), 0);
        expect(&m, MEMCR_OK);
        cr_assert_str_eq(m.state, "frozen");
        cr_assert_gt(m.watcher_pid, 0);
        cr_assert_eq(m.threads, 5);
        /* The watcher is never a target either. */
        pid_t watcher = (pid_t) m.watcher_pid;
        message_done(&m);
        cr_assert_eq(daemon_request(&d, MSG_CHECKPOINT, watcher, 0, &m), 0);
        cr_assert_neq(m.result, MEMCR_OK);
        message_done(&m);

        restore(t.pid);
        cr_assert_eq(daemon_request(&d, MSG_RESTORE, t.pid, 0, &m), 0);
        expect(&m, MEMCR_ERR_NOT_FROZEN);
        message_done(&m);
        verify(&t);
}

Test(daemon, restart_with_processes_frozen) {
        Message m = {};
        pid_t watcher = 0;

        start();
        for (int i = 0; i < 4; i++) {
                cr_assert_eq(target_start(&targets[i], small), 0);
                checkpoint(targets[i].pid);
        }
        cr_assert_eq(daemon_stop(&d, SIGKILL), 128 + SIGKILL);
        for (int i = 0; i < 4; i++)
                cr_assert_eq(proc_state(targets[i].pid), 't', "target %d not frozen after memcrd died", i);

        start();
        cr_assert_eq(daemon_request(&d, MSG_LIST, 0, 0, &m), 0);
        expect(&m, MEMCR_OK);
        cr_assert_eq(m.n_entries, 4, "the new memcrd sees %zu frozen processes", m.n_entries);
        for (size_t i = 0; i < m.n_entries; i++) {
                cr_assert_str_eq(m.entries[i].state, "frozen");
                if (m.entries[i].pid == (uint32_t) targets[3].pid)
                        watcher = (pid_t) m.entries[i].watcher_pid;
        }
        message_done(&m);
        cr_assert_gt(watcher, 0);

        for (int i = 0; i < 3; i++)
                restore(targets[i].pid);
        /* A watcher told to stop restores its process. */
        cr_assert_eq(kill(watcher, SIGTERM), 0);
        /* Tens of milliseconds here; seconds on an emulated CPU. */
        for (int i = 0; i < 1000 && proc_tracer(targets[3].pid) != 0; i++)
                usleep(10 * 1000);
        cr_assert_eq(proc_tracer(targets[3].pid), 0);
        for (int i = 0; i < 4; i++)
                verify(&targets[i]);

        /* memcrd noticed: nothing is listed any more. */
        usleep(100 * 1000);
        cr_assert_eq(daemon_request(&d, MSG_LIST, 0, 0, &m), 0);
        cr_assert_eq(m.n_entries, 0);
        message_done(&m);
}

Test(daemon, socket_activated_exits_when_idle) {
        const char *const extra[] = { "--idle-timeout=1", NULL };
        Target t;
        Message m = {};
        int st;

        cr_assert_eq(daemon_start(&d, true, extra), 0);
        cr_assert_eq(target_start(&t, small), 0);
        checkpoint(t.pid);

        /* Idle: memcrd exits by itself, the process stays frozen. */
        pid_t pid = d.pid;
        for (int i = 0; i < 500 && waitpid(pid, &st, WNOHANG) == 0; i++)
                usleep(10 * 1000);
        cr_assert_eq(kill(pid, 0), -1, "memcrd did not exit when idle");
        d.pid = -1;
        cr_assert_eq(proc_state(t.pid), 't');

        /* The next memcrd finds it. */
        cr_assert_eq(daemon_start(&d, true, extra), 0);
        cr_assert_eq(daemon_request(&d, MSG_STATUS, t.pid, 0, &m), 0);
        expect(&m, MEMCR_OK);
        cr_assert_str_eq(m.state, "frozen");
        message_done(&m);
        restore(t.pid);
        verify(&t);
}

/* A caller connects just as memcrd's idle timer falls due (the rounds step
 * across the moment it does): the caller is answered, by this memcrd or, if
 * it exited without taking the connection, by the next one on the same
 * socket (held here as systemd holds it). Before, memcrd could take the
 * connection and then exit with it: the caller got "connection reset". */
Test(daemon, idle_exit_never_drops_a_caller) {
        const char *const extra[] = { "--idle-timeout=1", NULL };
        unsigned exited = 0, rounds = 0;
        Message m = {};

        cr_assert_eq(daemon_start_held(&d, extra), 0);
        cr_assert_eq(daemon_request(&d, MSG_STATUS, getpid(), 0, &m), 0, "memcrd did not answer");
        message_done(&m);
        /* The timer runs from the end of the last request, for 1 s plus
         * up to 250 ms (sd-event's default accuracy). */
        for (unsigned delay_ms = 960; delay_ms <= 1290; delay_ms += 30, rounds++) {
                Message req = { .type = MSG_STATUS };
                int st;

                usleep(delay_ms * 1000);
                int fd = daemon_connect(&d);
                cr_assert_geq(fd, 0);
                message_set_u32(&req, TAG_PID, (uint32_t) getpid());
                /* A connection memcrd took and dropped: EPIPE here. */
                int r = daemon_send(fd, &req);
                message_done(&req);

                /* Answered, dropped, or memcrd exits (within 2 s). */
                struct pollfd p = { .fd = fd, .events = POLLIN };
                bool answered = false, gone = false;
                for (int w = 0; r >= 0 && w < 100 && !gone; w++) {
                        if (poll(&p, 1, 20) == 1) {
                                answered = !(p.revents & (POLLERR | POLLHUP));
                                break;
                        }
                        gone = waitpid(d.pid, &st, WNOHANG) == d.pid;
                }
                for (int w = 0; !answered && !gone && w < 100; w++) {
                        usleep(20 * 1000);
                        gone = waitpid(d.pid, &st, WNOHANG) == d.pid;
                }
                if (gone) {
                        /* Exited: the connection waits in the backlog, unless
                         * memcrd took it along. */
                        d.pid = -1;
                        exited++;
                        cr_assert_eq(daemon_start_held(&d, extra), 0);
                }
                cr_assert(r >= 0, "after %u ms: the caller could not send, memcrd had dropped it (%s)", delay_ms,
                          strerror(-r));
                cr_assert_eq(daemon_recv(fd, &m), 0, "after %u ms: the caller was dropped", delay_ms);
                cr_assert_eq(m.type, MSG_REPLY);
                cr_assert_eq(m.result, MEMCR_ERR_NOT_FROZEN, "after %u ms: %s", delay_ms,
                             memcr_result_to_string(m.result));
                message_done(&m);
                close(fd);
        }
        cr_log_info("%u callers around the idle timeout: memcrd exited %u times without taking one; all answered",
                    rounds, exited);
}

Test(daemon, memcr_client_protocol) {
        Target t;
        int32_t v = 99;

        start();
        cr_assert_eq(target_start(&t, small), 0);
        cr_assert_eq(compat_request(&d, MEMCR_COMPAT_CHECKPOINT, t.pid, &v), 0);
        cr_assert_eq(v, MEMCR_COMPAT_OK);
        cr_assert_eq(proc_state(t.pid), 't');
        cr_assert_lt(proc_status_kb(t.pid, "RssAnon"), 1024);
        cr_assert_eq(compat_request(&d, MEMCR_COMPAT_RESTORE, t.pid, &v), 0);
        cr_assert_eq(v, MEMCR_COMPAT_OK);
        /* Restoring what is not frozen, a PID that does not exist. */
        cr_assert_eq(compat_request(&d, MEMCR_COMPAT_RESTORE, t.pid, &v), 0);
        cr_assert_eq(v, MEMCR_COMPAT_INVALID_PID);
        cr_assert_eq(compat_request(&d, MEMCR_COMPAT_CHECKPOINT, 0x7ffffff0, &v), 0);
        cr_assert_eq(v, MEMCR_COMPAT_INVALID_PID);
        cr_assert_eq(compat_request(&d, MEMCR_COMPAT_CHECKPOINT, -5, &v), 0);
        cr_assert_eq(v, MEMCR_COMPAT_INVALID_PID);
        verify(&t);
}

/* Send raw bytes, then see whether the connection is answered/closed. */
static void raw_and_expect_close(const void *buf, size_t n, bool expect_reply, bool half_close) {
        int fd = daemon_connect(&d);
        char reply[256];
        struct pollfd p = { .fd = fd, .events = POLLIN };
        ssize_t k;

        cr_assert_geq(fd, 0);
        if (n > 0)
                cr_assert_eq(write(fd, buf, n), (ssize_t) n);
        if (half_close)
                shutdown(fd, SHUT_WR);
        cr_assert_eq(poll(&p, 1, 5000), 1, "connection neither answered nor closed");
        k = read(fd, reply, sizeof(reply));
        if (expect_reply) {
                Message m = {};
                uint16_t type;
                uint32_t len;
                cr_assert_geq(k, MEMCR_FRAME_HEADER_SIZE, "no error reply");
                cr_assert_eq(frame_header_parse((uint8_t *) reply, &type, &len), 0);
                cr_assert_eq(message_decode(type, (uint8_t *) reply + 16, len, &m), 0);
                cr_assert_eq(m.result, MEMCR_ERR_INVALID);
                message_done(&m);
                k = read(fd, reply, sizeof(reply));
        }
        cr_assert_eq(k, 0, "connection not closed (read %zd: %s)", k, k < 0 ? strerror(errno) : "data");
        close(fd);

        /* Others are still served. */
        Message m = {};
        cr_assert_eq(daemon_request(&d, MSG_VERSION, 0, 0, &m), 0);
        expect(&m, MEMCR_OK);
        message_done(&m);
}

static size_t frame(uint8_t *buf, uint32_t magic, uint16_t version, uint16_t type, uint32_t len, const void *payload,
                    size_t payload_size) {
        memcpy(buf, &magic, 4);
        memcpy(buf + 4, &version, 2);
        memcpy(buf + 6, &type, 2);
        memcpy(buf + 8, &len, 4);
        memset(buf + 12, 0, 4);
        if (payload_size > 0)
                memcpy(buf + 16, payload, payload_size);
        return 16 + payload_size;
}

Test(daemon, malformed_input) {
        const char *const extra[] = { "--client-timeout=1", NULL };
        uint8_t buf[256];
        const uint8_t pid_field[] = { 1, 0, 4, 0, 1, 0, 0, 0 };
        size_t n;

        cr_assert_eq(daemon_start(&d, false, extra), 0);

        /* Truncated header, then the client leaves. */
        raw_and_expect_close("MCR1\x01\x00", 6, false, true);
        /* Oversized length. */
        n = frame(buf, MEMCR_PROTOCOL_MAGIC, 1, MSG_LIST, 1u << 30, NULL, 0);
        raw_and_expect_close(buf, n, true, false);
        /* Unknown version. */
        n = frame(buf, MEMCR_PROTOCOL_MAGIC, 7, MSG_LIST, 0, NULL, 0);
        raw_and_expect_close(buf, n, true, false);
        /* Unknown command. */
        n = frame(buf, MEMCR_PROTOCOL_MAGIC, 1, 77, 8, pid_field, 8);
        raw_and_expect_close(buf, n, true, false);
        /* A reply type sent as a request. */
        n = frame(buf, MEMCR_PROTOCOL_MAGIC, 1, MSG_PROGRESS, 0, NULL, 0);
        raw_and_expect_close(buf, n, true, false);
        /* Garbage: neither protocol. */
        raw_and_expect_close("GET / HTTP/1.0\r\n\r\n", 18, true, false);
        /* Connects and sends nothing: closed after --client-timeout. */
        raw_and_expect_close(NULL, 0, false, false);
        /* Disconnects in the middle of a request. */
        n = frame(buf, MEMCR_PROTOCOL_MAGIC, 1, MSG_CHECKPOINT, 8, pid_field, 4);
        raw_and_expect_close(buf, n, false, true);
        /* Half a compat request. */
        raw_and_expect_close("\x64\x00\x00\x00\x01", 5, false, true);

        const char *const needles[] = { "malformed request", "MESSAGE_ID=aed6f6e3d04947aa9c89e3c57657e1a7", NULL };
        cr_assert(daemon_log_has(&d, needles), "malformed requests were not logged");
}

Test(daemon, structured_log_fields) {
        Target t;
        char pid_field[64];

        start();
        cr_assert_eq(target_start(&t, small), 0);
        checkpoint(t.pid);
        restore(t.pid);
        verify(&t);

        snprintf(pid_field, sizeof(pid_field), "MEMCR_PID=%d ", t.pid);
        const char *const request[] = { "MESSAGE_ID=f1d699944b5245ca96d482148315a5ca", "MEMCR_OP=checkpoint",
                                        pid_field, "MEMCR_CALLER_UID=0", NULL };
        const char *const allowed[] = { "MESSAGE_ID=d4edae1006aa4d8298d71b140dc07059", "MEMCR_RESULT=allowed",
                                        pid_field, NULL };
        const char *const done[] = { "MESSAGE_ID=aac1ed22e2214ab4b3db1ad8de6da24a", pid_field, "MEMCR_RESULT=ok",
                                     "MEMCR_RSS_BEFORE=", "MEMCR_RSS_AFTER=", "MEMCR_DUMP_BYTES=",
                                     "MEMCR_DURATION_USEC=", NULL };
        const char *const restored[] = { "MESSAGE_ID=8c957ea2ccbe451db06f253671b458d6", pid_field,
                                         "MEMCR_OP=restore", "MEMCR_RESULT=ok", NULL };
        cr_assert(daemon_log_has(&d, request), "no request record");
        cr_assert(daemon_log_has(&d, allowed), "no authorization record");
        cr_assert(daemon_log_has(&d, done), "no checkpoint record with the fields");
        cr_assert(daemon_log_has(&d, restored), "no restore record");
}

Test(daemon, lazy_restore_through_memcrd) {
        Target t;
        Message m = {};
        char pid_field[64];

        start();
        cr_assert_eq(target_start(&t, small), 0);
        checkpoint(t.pid);

        cr_assert_eq(daemon_request(&d, MSG_RESTORE, t.pid, REQUEST_FLAG_LAZY, &m), 0);
        expect(&m, MEMCR_OK);
        cr_assert_str_eq(m.state, "streaming", "not a lazy restore");
        cr_assert_gt(m.total, 0);
        cr_log_info("running %llu us after the request", (unsigned long long) m.duration_usec);
        message_done(&m);

        /* Checkpointed again while its memory streams back: busy, and says
         * why (unless all was back already: then it is frozen again). */
        cr_assert_eq(daemon_request(&d, MSG_CHECKPOINT, t.pid, 0, &m), 0);
        if (m.result == MEMCR_OK) {
                cr_log_warn("the memory was all back before the second checkpoint: not seen busy");
                message_done(&m);
                restore(t.pid);
        } else {
                expect(&m, MEMCR_ERR_BUSY);
                cr_assert(m.message && strstr(m.message, "still streaming back"), "%s", m.message ?: "(no text)");
                message_done(&m);
        }

        /* It runs: it answers, with every byte right, while memory streams in. */
        TargetResult res = {};
        cr_assert_eq(target_check(&t, &res), 0);
        cr_assert(res.ok);

        /* The watcher lets go when everything is back; memcrd forgets it then. */
        for (int i = 0; i < 500 && proc_tracer(t.pid) != 0; i++)
                usleep(10 * 1000);
        cr_assert_eq(proc_tracer(t.pid), 0, "still traced: streaming never finished");
        for (int i = 0; i < 100; i++) {
                cr_assert_eq(daemon_request(&d, MSG_LIST, 0, 0, &m), 0);
                size_t n = m.n_entries;
                message_done(&m);
                if (n == 0)
                        break;
                usleep(10 * 1000);
        }
        cr_assert_eq(daemon_request(&d, MSG_STATUS, t.pid, 0, &m), 0);
        expect(&m, MEMCR_ERR_NOT_FROZEN);
        message_done(&m);
        verify(&t);

        snprintf(pid_field, sizeof(pid_field), "MEMCR_PID=%d ", t.pid);
        const char *const running[] = { "MESSAGE_ID=8c957ea2ccbe451db06f253671b458d6", pid_field, "MEMCR_RESTORE=lazy",
                                        "MEMCR_RUNNING_USEC=", NULL };
        const char *const resident[] = { "MESSAGE_ID=facd4a38ecbe44648ab2addcd38be20b", pid_field,
                                         "MEMCR_RESIDENT_USEC=", NULL };
        cr_assert(daemon_log_has(&d, running), "no record of the time to running");
        cr_assert(daemon_log_has(&d, resident), "no record of the time to fully resident");
}

Test(daemon, watcher_told_to_stop_restores_and_memcrd_notices) {
        Target t;
        Message m = {};

        start();
        cr_assert_eq(target_start(&t, small), 0);
        checkpoint(t.pid);
        cr_assert_eq(daemon_request(&d, MSG_STATUS, t.pid, 0, &m), 0);
        pid_t watcher = (pid_t) m.watcher_pid;
        message_done(&m);
        cr_assert_eq(kill(watcher, SIGTERM), 0);
        for (int i = 0; i < 200 && proc_tracer(t.pid) != 0; i++)
                usleep(10 * 1000);
        cr_assert_eq(proc_tracer(t.pid), 0);
        /* Not frozen any more, as far as memcrd knows too: it may be frozen again. */
        for (int i = 0; i < 100; i++) {
                cr_assert_eq(daemon_request(&d, MSG_STATUS, t.pid, 0, &m), 0);
                MemcrResult r = m.result;
                message_done(&m);
                if (r == MEMCR_ERR_NOT_FROZEN)
                        break;
                usleep(10 * 1000);
        }
        cr_assert_eq(daemon_request(&d, MSG_STATUS, t.pid, 0, &m), 0);
        expect(&m, MEMCR_ERR_NOT_FROZEN);
        message_done(&m);
        checkpoint(t.pid);
        restore(t.pid);
        verify(&t);
}

/* A lazily restored process that crashes while its memory streams back: the
 * journal and status say it died, of which signal, after its restore; nothing
 * says it was killed while frozen, nothing says its memory is fully back. */
Test(daemon, crash_after_lazy_restore_is_reported) {
        const char *const big[] = { "--mmap=1024", "--threads=2", NULL };
        char pid_field[64];
        Message m = {};
        Target t;

        start();
        cr_assert_eq(target_start(&t, big), 0);
        checkpoint(t.pid);
        cr_assert_eq(daemon_request(&d, MSG_RESTORE, t.pid, REQUEST_FLAG_LAZY, &m), 0);
        expect(&m, MEMCR_OK);
        cr_assert_str_eq(m.state, "streaming");
        message_done(&m);
        /* 1 GiB takes a good part of a second to stream back. (SIGABRT: the
         * sanitizer build handles SIGSEGV itself, slowly, and then aborts.) */
        cr_assert_eq(kill(t.pid, SIGABRT), 0);

        /* The watcher reports, memcrd keeps what it said. */
        bool reported = false;
        for (int i = 0; i < 500 && !reported; i++) {
                cr_assert_eq(daemon_request(&d, MSG_STATUS, t.pid, 0, &m), 0);
                reported = m.result == MEMCR_ERR_NO_PROCESS && m.state;
                if (reported) {
                        cr_log_info("status: %s (%s)", m.message ?: "", m.state);
                        cr_assert_str_eq(m.state, "died (SIGABRT)");
                        cr_assert_not_null(m.message);
                        cr_assert_not_null(strstr(m.message, "SIGABRT"), "%s", m.message);
                        cr_assert_not_null(strstr(m.message, "after its lazy restore"), "%s", m.message);
                }
                message_done(&m);
                if (!reported)
                        usleep(10 * 1000);
        }
        cr_assert(reported, "status never said how %d ended", t.pid);
        cr_assert_eq(daemon_request(&d, MSG_LIST, 0, 0, &m), 0);
        cr_assert_eq(m.n_entries, 1);
        cr_assert_str_eq(m.entries[0].state, "died (SIGABRT)");
        message_done(&m);
        t.reaped = true;

        snprintf(pid_field, sizeof(pid_field), "MEMCR_PID=%d ", t.pid);
        const char *const died[] = { "MESSAGE_ID=" MEMCR_MESSAGE_RESTORED_DIED, pid_field, "MEMCR_EXIT=killed by signal 6 (SIGABRT)", NULL };
        const char *const frozen_lie[] = { pid_field, "killed while frozen", NULL };
        const char *const resident_lie[] = { "MESSAGE_ID=" MEMCR_MESSAGE_RESTORE_RESIDENT, pid_field, NULL };
        cr_assert(daemon_log_has(&d, died), "no record of how it died");
        cr_assert(!daemon_log_has(&d, frozen_lie), "a running process was said to be killed while frozen");
        cr_assert(!daemon_log_has(&d, resident_lie), "a dead process was said to be fully back");
}

/* ---- Limits, lifetimes and values out of range ---- */

/* A shell script that waits, then runs the real watcher: memcrd's watchers
 * take that long to get ready. */
static void slow_watcher(char *path, size_t size, double seconds) {
        const char *watch = getenv("MEMCR_WATCH");
        FILE *f;

        cr_assert_not_null(watch, "MEMCR_WATCH is not set");
        snprintf(path, size, "%s/slow-watcher", d.dir);
        f = fopen(path, "we");
        cr_assert_not_null(f);
        fprintf(f, "#!/bin/sh\nsleep %.1f\nexec '%s' \"$@\"\n", seconds, watch);
        cr_assert_eq(fclose(f), 0);
        cr_assert_eq(chmod(path, 0755), 0);
}

/* Requests on one connection until memcrd closes it; seconds it lived. */
static double busy_until_closed(int fd, double limit) {
        uint64_t t0 = now_usec(CLOCK_MONOTONIC);

        for (;;) {
                Message m = {};
                double t = (double) (now_usec(CLOCK_MONOTONIC) - t0) / 1e6;

                cr_assert_lt(t, limit, "the connection was still open after %.1f s of requests", t);
                if (daemon_request_fd(fd, MSG_VERSION, 0, 0, &m) < 0)
                        return t;
                expect(&m, MEMCR_OK);
                message_done(&m);
                usleep(100 * 1000);
        }
}

/* A client that keeps sending cheap requests does not keep its connection
 * for ever; one whose checkpoint takes longer than that gets its answer
 * first. */
Test(daemon, connection_lifetime_is_absolute) {
        char watcher[256], a_watcher[300];
        Message m = {};
        Target t;
        int fd;

        signal(SIGPIPE, SIG_IGN); /* requests on a connection memcrd closed */
        slow_watcher(watcher, sizeof(watcher), 2.5);
        snprintf(a_watcher, sizeof(a_watcher), "--watcher=%s", watcher);
        const char *const extra[] = { "--connection-lifetime=1", a_watcher, NULL };
        cr_assert_eq(daemon_start(&d, false, extra), 0, "memcrd did not start (see %s)", d.log);

        fd = daemon_connect(&d);
        cr_assert_geq(fd, 0);
        double lived = busy_until_closed(fd, 5);
        close(fd);
        cr_log_info("a busy connection was closed after %.2f s", lived);
        cr_assert_geq(lived, 0.8);

        /* The checkpoint outlives the connection's lifetime: answered, then
         * the connection is closed. */
        cr_assert_eq(target_start(&t, small), 0);
        fd = daemon_connect(&d);
        cr_assert_geq(fd, 0);
        cr_assert_eq(daemon_request_fd(fd, MSG_CHECKPOINT, t.pid, 0, &m), 0);
        expect(&m, MEMCR_OK);
        message_done(&m);
        cr_assert_lt(daemon_request_fd(fd, MSG_VERSION, 0, 0, &m), 0, "still open after its lifetime");
        close(fd);
        restore(t.pid);
        verify(&t);
}

/* memcrd takes the descriptors its hard limit allows; the watchers it forks
 * get the limit it was started with. */
static void open_files_limit(pid_t pid, unsigned long *soft, unsigned long *hard) {
        char path[64], line[256];
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/limits", pid);
        f = fopen(path, "re");
        cr_assert_not_null(f);
        *soft = *hard = 0;
        while (fgets(line, sizeof(line), f))
                if (strncmp(line, "Max open files", 14) == 0)
                        cr_assert_eq(sscanf(line + 14, "%lu %lu", soft, hard), 2);
        fclose(f);
}

Test(daemon, memcrd_raises_its_descriptor_limit) {
        struct rlimit rl = { .rlim_cur = 256, .rlim_max = 8192 };
        unsigned long soft, hard;
        Message m = {};
        Target t;

        cr_assert_eq(target_start(&t, small), 0);
        cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
        start();
        open_files_limit(d.pid, &soft, &hard);
        cr_assert_eq(hard, 8192);
        cr_assert_eq(soft, 8192, "memcrd's soft limit is %lu", soft);

        checkpoint(t.pid);
        cr_assert_eq(daemon_request(&d, MSG_STATUS, t.pid, 0, &m), 0);
        expect(&m, MEMCR_OK);
        open_files_limit((pid_t) m.watcher_pid, &soft, &hard);
        message_done(&m);
        cr_assert_eq(soft, 256, "the watcher's soft limit is %lu", soft);
        restore(t.pid);
        verify(&t);
}

static void request_with_u64(uint16_t type, pid_t pid, FieldTag tag, uint64_t v, Message *reply) {
        Message req = { .type = type };

        message_set_u32(&req, TAG_PID, (uint32_t) pid);
        message_set_u64(&req, tag, v);
        cr_assert_eq(daemon_request_msg(&d, &req, reply), 0);
        message_done(&req);
}

/* memcrctl as root, against our memcrd: its exit status, its stderr in err. */
static int run_memcrctl(char *err, size_t size, const char *const *args) {
        const char *ctl = getenv("MEMCRCTL");
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
                dup2(p[1], STDERR_FILENO);
                int null = open("/dev/null", O_WRONLY);
                dup2(null, STDOUT_FILENO);
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

/* Wait for the watcher of a lazily restored pid to let go (everything back). */
static void wait_untraced(pid_t pid, int cycle) {
        for (int i = 0; i < 3000 && proc_tracer(pid) != 0; i++)
                usleep(10 * 1000);
        cr_assert_eq(proc_tracer(pid), 0, "cycle %d: still traced 30 s after the restore", cycle);
        /* memcrd forgets the entry when the watcher has gone. */
        for (int i = 0; i < 500; i++) {
                Message m = {};
                cr_assert_eq(daemon_request(&d, MSG_STATUS, pid, 0, &m), 0);
                MemcrResult r = m.result;
                message_done(&m);
                if (r == MEMCR_ERR_NOT_FROZEN)
                        return;
                usleep(10 * 1000);
        }
        cr_assert_fail("cycle %d: memcrd still lists %d 5 s after its watcher let go", cycle, pid);
}

/* The whole job as a user does it, through memcrctl, twenty times: a
 * checkpoint, then an eager and a lazy restore in turn, of a target with
 * heap, mmap, thread stacks, PROT_NONE, read-only and private file memory
 * and threads computing, sleeping in nanosleep() and blocked in read().
 * Every byte is checked after each restore; the sleeping and reading
 * threads see their system calls restarted (no EINTR, the right byte
 * read); a signal sent while frozen is delivered once, after the restore. */
Test(daemon, twenty_cycles_through_memcrctl) {
        Target t;
        const char *const args[] = { "--heap=8", "--mmap=8", "--threads=3", "--prot-none=1", "--readonly=1",
                                     "--file-private=1", NULL };
        char err[1024], pid_arg[32];
        TargetResult res = {};
        int status = -1;

        start();
        cr_assert_eq(target_start(&t, args), 0);
        snprintf(pid_arg, sizeof(pid_arg), "%d", t.pid);
        for (int i = 0; i < 20; i++) {
                const char *const cp[] = { "checkpoint", pid_arg, NULL };
                const char *const eager[] = { "restore", pid_arg, NULL };
                const char *const lazy[] = { "restore", "--lazy", pid_arg, NULL };
                bool is_lazy = i % 2 == 1;

                cr_assert_eq(run_memcrctl(err, sizeof(err), cp), 0, "cycle %d: checkpoint: %s", i, err);
                cr_assert_eq(proc_state(t.pid), 't', "cycle %d: not frozen", i);
                if (i == 18)
                        cr_assert_eq(kill(t.pid, SIGUSR1), 0);
                if (i == 19)
                        cr_assert_eq(kill(t.pid, SIGUSR2), 0);
                cr_assert_eq(run_memcrctl(err, sizeof(err), is_lazy ? lazy : eager), 0, "cycle %d: %s restore: %s",
                             i, is_lazy ? "lazy" : "eager", err);
                if (is_lazy)
                        wait_untraced(t.pid, i);
                else
                        cr_assert_eq(proc_tracer(t.pid), 0, "cycle %d: still traced after the restore", i);
                res = (TargetResult) {};
                cr_assert_eq(target_check(&t, &res), 0, "cycle %d: the target does not answer", i);
                cr_assert(res.ok, "cycle %d: %llu bad words", i, (unsigned long long) res.bad_words);
                if (i < 18)
                        cr_assert_eq(res.eintr, 0, "cycle %d: nanosleep saw EINTR: system call restart broken", i);
        }
        cr_assert_eq(target_verify(&t, &res, &status), 0);
        cr_assert(res.ok, "%llu bad words", (unsigned long long) res.bad_words);
        cr_assert_eq(status, 0);
        cr_assert_eq(res.usr1, 1, "SIGUSR1 handled %u times, expected once", res.usr1);
        cr_assert_eq(res.usr2, 1, "SIGUSR2 handled %u times, expected once", res.usr2);
        target_stop(&t);
}

/* A maximum frozen time beyond 2^63 s was accepted, the watcher's timer
 * then failed, and the watcher's clean-up killed the still frozen target.
 * Every time a request names is checked now, with a clear answer, before
 * anything is done. */
Test(daemon, out_of_range_times_are_refused) {
        Message m = {};
        Target t;
        char err[1024], pid_arg[32];

        start();
        cr_assert_eq(target_start(&t, small), 0);

        request_with_u64(MSG_CHECKPOINT, t.pid, TAG_MAX_FROZEN_SEC, (UINT64_C(1) << 63) + 1, &m);
        expect(&m, MEMCR_ERR_INVALID);
        cr_assert_not_null(m.message);
        cr_assert_not_null(strstr(m.message, "maximum frozen time of 9223372036854775809 s is out of range"), "%s",
                           m.message);
        message_done(&m);
        request_with_u64(MSG_CHECKPOINT, t.pid, TAG_TIMEOUT_MSEC, UINT64_MAX, &m);
        expect(&m, MEMCR_ERR_INVALID);
        cr_assert_not_null(strstr(m.message ?: "", "time limit of"), "%s", m.message ?: "");
        message_done(&m);
        request_with_u64(MSG_RESTORE, t.pid, TAG_TIMEOUT_MSEC, UINT64_MAX, &m);
        expect(&m, MEMCR_ERR_INVALID);
        message_done(&m);
        request_with_u64(MSG_STATUS, t.pid, TAG_TIMEOUT_MSEC, MEMCR_MAX_TIMEOUT_MSEC + 1, &m);
        expect(&m, MEMCR_ERR_INVALID);
        message_done(&m);
        /* Nothing was done to it. */
        char s = proc_state(t.pid);
        cr_assert(s == 'S' || s == 'R', "target in state %c", s);
        cr_assert_eq(proc_tracer(t.pid), 0);
        usleep(300 * 1000);
        cr_assert_eq(kill(t.pid, 0), 0, "the target died");

        /* memcrctl says so before asking. */
        snprintf(pid_arg, sizeof(pid_arg), "%d", t.pid);
        const char *const too_long[] = { "--max-frozen=315360001", "checkpoint", pid_arg, NULL };
        cr_assert_eq(run_memcrctl(err, sizeof(err), too_long), 2, "%s", err);
        cr_assert_not_null(strstr(err, "at most 315360000"), "%s", err);
        const char *const huge[] = { "--max-frozen=9223372036854775809", "checkpoint", pid_arg, NULL };
        cr_assert_eq(run_memcrctl(err, sizeof(err), huge), 2, "%s", err);

        /* The longest allowed: frozen, with its timer set. */
        request_with_u64(MSG_CHECKPOINT, t.pid, TAG_MAX_FROZEN_SEC, MEMCR_MAX_FROZEN_SEC, &m);
        expect(&m, MEMCR_OK);
        message_done(&m);
        usleep(300 * 1000);
        cr_assert_eq(daemon_request(&d, MSG_STATUS, t.pid, 0, &m), 0);
        expect(&m, MEMCR_OK);
        cr_assert_str_eq(m.state, "frozen");
        cr_assert_eq(m.max_frozen_sec, MEMCR_MAX_FROZEN_SEC);
        message_done(&m);
        restore(t.pid);
        verify(&t);
}

/* Watchers started through a socket, one per connection (as systemd's
 * memcr-watch.socket does where polkit cannot let memcrd start units). */
Test(daemon, watchers_through_a_socket) {
        const char *watch = getenv("MEMCR_WATCH");
        char spawn[160], a_socket[200], a_dir[200];
        Target t;
        Message m = {};

        cr_assert_not_null(watch, "MEMCR_WATCH is not set");
        snprintf(spawn, sizeof(spawn), "%s/spawn-watcher.sock", d.dir);
        snprintf(a_socket, sizeof(a_socket), "--watcher-socket=%s", spawn);
        snprintf(a_dir, sizeof(a_dir), "--runtime-dir=%s/watch", d.runtime);
        const char *const extra[] = { "--watchers=socket", a_socket, NULL };
        cr_assert_eq(daemon_start(&d, false, extra), 0, "memcrd did not start (see %s)", d.log);

        activator = fork();
        cr_assert_geq(activator, 0);
        if (activator == 0) {
                int fd = open(d.log, O_WRONLY | O_APPEND | O_CLOEXEC);
                if (fd >= 0) {
                        dup2(fd, STDOUT_FILENO);
                        dup2(fd, STDERR_FILENO);
                }
                execlp("systemd-socket-activate", "systemd-socket-activate", "-l", spawn, "--accept", watch, a_dir,
                       (char *) NULL);
                _exit(127);
        }
        for (int i = 0; i < 500 && access(spawn, F_OK) < 0; i++)
                usleep(10 * 1000);
        cr_assert_eq(access(spawn, F_OK), 0, "systemd-socket-activate did not listen");

        cr_assert_eq(target_start(&t, small), 0);
        checkpoint(t.pid);
        cr_assert_eq(daemon_request(&d, MSG_STATUS, t.pid, 0, &m), 0);
        expect(&m, MEMCR_OK);
        pid_t w = (pid_t) m.watcher_pid;
        message_done(&m);
        /* The watcher is the activator's, not memcrd's. */
        char path[64], buf[512];
        snprintf(path, sizeof(path), "/proc/%d/stat", w);
        FILE *f = fopen(path, "re");
        cr_assert_not_null(f);
        cr_assert_not_null(fgets(buf, sizeof(buf), f));
        fclose(f);
        int ppid = 0;
        cr_assert_eq(sscanf(strrchr(buf, ')') + 1, " %*c %d", &ppid), 1);
        cr_assert_eq(ppid, activator, "the watcher's parent is %d", ppid);
        restore(t.pid);
        verify(&t);
        const char *const started[] = { "memcrd started", "MEMCR_WATCHERS=socket", NULL };
        cr_assert(daemon_log_has(&d, started));

        kill(activator, SIGTERM);
        waitpid(activator, NULL, 0);
        activator = 0;
}

/* A watcher killed while no memcrd runs (it exited when idle) takes its
 * process along; the next memcrd finds the socket it left and says so. */
Test(daemon, watcher_killed_while_memcrd_is_gone_is_reported) {
        const char *const extra[] = { "--idle-timeout=1", NULL };
        char pid_field[64];
        Target t;
        Message m = {};
        int st;

        cr_assert_eq(daemon_start(&d, true, extra), 0);
        cr_assert_eq(target_start(&t, small), 0);
        checkpoint(t.pid);
        cr_assert_eq(daemon_request(&d, MSG_STATUS, t.pid, 0, &m), 0);
        pid_t watcher = (pid_t) m.watcher_pid;
        message_done(&m);

        pid_t pid = d.pid;
        for (int i = 0; i < 500 && waitpid(pid, &st, WNOHANG) == 0; i++)
                usleep(10 * 1000);
        cr_assert_eq(kill(pid, 0), -1, "memcrd did not exit when idle");
        d.pid = -1;

        cr_assert_eq(kill(watcher, SIGKILL), 0);
        cr_assert_eq(waitpid(t.pid, &st, 0), t.pid);
        cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "the target was not killed with its watcher");
        t.reaped = true;

        /* The next request starts memcrd again. */
        cr_assert_eq(daemon_start(&d, true, extra), 0);
        cr_assert_eq(daemon_request(&d, MSG_LIST, 0, 0, &m), 0);
        expect(&m, MEMCR_OK);
        cr_assert_eq(m.n_entries, 0);
        message_done(&m);
        snprintf(pid_field, sizeof(pid_field), "MEMCR_PID=%d ", t.pid);
        const char *const reported[] = { "MESSAGE_ID=" MEMCR_MESSAGE_TARGET_EXITED, pid_field,
                                         "MEMCR_REASON=watcher-died", "killed it with its watcher", NULL };
        cr_assert(daemon_log_has(&d, reported), "the loss of %d was not logged", t.pid);
        target_stop(&t);
}

/* Watchers that take a request and never answer: memcrd goes on serving
 * everybody else meanwhile, and the stalled exchange ends by its timer. */

/* A request on a new connection, answered within ms milliseconds. */
static void answered_within(uint16_t type, pid_t pid, unsigned ms) {
        uint64_t t0 = now_usec(CLOCK_MONOTONIC);
        Message m = {};

        cr_assert_eq(daemon_request(&d, type, pid, 0, &m), 0);
        uint64_t took = now_usec(CLOCK_MONOTONIC) - t0;
        cr_assert_eq(m.result, MEMCR_OK, "%s: %s", memcr_result_to_string(m.result), m.message ?: "");
        message_done(&m);
        cr_assert_lt(took, ms * USEC_PER_MSEC, "%s answered after %llu ms", message_type_to_string(type),
                     (unsigned long long) (took / USEC_PER_MSEC));
}

/* What "at once" is: 100 ms; with the sanitizers, which make memcrd and
 * its clients several times slower (forking memcrd, for one), 250 ms. */
#if defined(__SANITIZE_ADDRESS__)
#define AT_ONCE_MS 250
#else
#define AT_ONCE_MS 100
#endif

/* Others' requests, for about this long: each answered at once. */
static void others_served(unsigned ms) {
        uint64_t end = now_usec(CLOCK_MONOTONIC) + ms * USEC_PER_MSEC;

        while (now_usec(CLOCK_MONOTONIC) < end) {
                answered_within(MSG_VERSION, 0, AT_ONCE_MS);
                answered_within(MSG_LIST, 0, AT_ONCE_MS);
                usleep(20 * 1000);
        }
}

/* A fake watcher for pid, serving the runtime directory before memcrd starts. */
static pid_t fake_watcher_before_start(pid_t pid, FakeWatcherMode mode) {
        char watch[160];
        pid_t w;

        snprintf(watch, sizeof(watch), "%s/watch", d.runtime);
        cr_assert_eq(mkdir(d.runtime, 0755), 0);
        cr_assert_eq(mkdir(watch, 0700), 0);
        w = fake_watcher_fork(watch, pid, mode);
        cr_assert_gt(w, 0);
        return w;
}

static void start_with_fake_watchers(const char *mode) {
        const char *fake = getenv("MEMCR_FAKE_WATCHER_BIN");
        char a_watcher[300];

        cr_assert_not_null(fake, "MEMCR_FAKE_WATCHER_BIN is not set");
        setenv("MEMCR_FAKE_WATCHER", mode, 1);
        snprintf(a_watcher, sizeof(a_watcher), "--watcher=%s", fake);
        const char *const extra[] = { a_watcher, "--watcher-timeout=2", NULL };
        cr_assert_eq(daemon_start(&d, false, extra), 0, "memcrd did not start (see %s)", d.log);
        /* Its socket listens before memcrd has started: once it answers,
         * it runs its loop. */
        Message m = {};
        cr_assert_eq(daemon_request(&d, MSG_VERSION, 0, 0, &m), 0);
        message_done(&m);
}

/* A target, and a fake watcher that serves its socket when memcrd starts. */
static pid_t start_with_a_watcher_found(Target *t, FakeWatcherMode mode) {
        pid_t w;

        cr_assert_eq(target_start(t, small), 0);
        w = fake_watcher_before_start(t->pid, mode);
        start_with_fake_watchers("silent");
        return w;
}

/* Wait (3 s at most) for a line in memcrd's log. */
static bool log_shows(const char *text) {
        const char *const needles[] = { text, NULL };

        for (int i = 0; i < 300; i++) {
                if (daemon_log_has(&d, needles))
                        return true;
                usleep(10 * 1000);
        }
        return false;
}

/* A request a stalled watcher holds up; others are served meanwhile (for
 * others_ms). Its answer in ret; the time it took. */
static uint64_t stalled_request(uint16_t type, pid_t pid, unsigned others_ms, Message *ret) {
        Message req = { .type = type };
        int fd = daemon_connect(&d);

        cr_assert_geq(fd, 0);
        message_set_u32(&req, TAG_PID, (uint32_t) pid);
        uint64_t t0 = now_usec(CLOCK_MONOTONIC);
        cr_assert_eq(daemon_send(fd, &req), 0);
        message_done(&req);
        others_served(others_ms);
        cr_assert_eq(daemon_recv(fd, ret), 0);
        close(fd);
        return now_usec(CLOCK_MONOTONIC) - t0;
}

Test(daemon, a_watcher_that_never_answers_its_job_stalls_nobody) {
        char text[128];
        Message m = {};
        Target t;

        start_with_fake_watchers("silent");
        cr_assert_eq(target_start(&t, small), 0);
        uint64_t took = stalled_request(MSG_CHECKPOINT, t.pid, 1500, &m);
        cr_assert_eq(m.result, MEMCR_ERR_TIMEOUT, "%s: %s", memcr_result_to_string(m.result), m.message ?: "");
        snprintf(text, sizeof(text), "checkpoint of %d failed: its watcher did not answer within 2 s", t.pid);
        cr_assert_str_eq(m.message, text);
        message_done(&m);
        cr_assert_geq(took, 1900 * USEC_PER_MSEC);
        cr_assert_lt(took, 5 * USEC_PER_SEC);
        const char *const logged[] = { "MESSAGE_ID=" MEMCR_MESSAGE_CHECKPOINT_FAILED, text, NULL };
        cr_assert(daemon_log_has(&d, logged), "the timeout was not logged");
        /* Not frozen, not listed. */
        cr_assert_eq(daemon_request(&d, MSG_LIST, 0, 0, &m), 0);
        cr_assert_eq(m.n_entries, 0);
        message_done(&m);
        target_stop(&t);
}

Test(daemon, a_watcher_that_never_says_what_it_holds_stalls_nobody) {
        char pid_text[64];
        Message m = {};
        Target t;
        pid_t w = start_with_a_watcher_found(&t, FAKE_WATCHER_SILENT);

        /* Requests about nothing frozen are answered at once. */
        for (int i = 0; i < 10; i++) {
                answered_within(MSG_VERSION, 0, AT_ONCE_MS);
                usleep(20 * 1000);
        }
        /* A list waits for the watchers found, a second at most: then it
         * shows the process as not yet known. */
        uint64_t t0 = now_usec(CLOCK_MONOTONIC);
        cr_assert_eq(daemon_request(&d, MSG_LIST, 0, 0, &m), 0);
        cr_assert_lt(now_usec(CLOCK_MONOTONIC) - t0, 1200 * USEC_PER_MSEC);
        cr_assert_eq(m.n_entries, 1);
        cr_assert_eq(m.entries[0].pid, (uint32_t) t.pid);
        cr_assert_str_eq(m.entries[0].state, "checkpointing");
        message_done(&m);
        others_served(500);

        /* Its time is up: forgotten, and said why. */
        snprintf(pid_text, sizeof(pid_text), "the watcher of %d did not say within 2 s what it holds", t.pid);
        cr_assert(log_shows(pid_text), "the timeout was not logged");
        cr_assert_eq(daemon_request(&d, MSG_LIST, 0, 0, &m), 0);
        cr_assert_eq(m.n_entries, 0);
        message_done(&m);
        /* memcrd hung up on it. */
        cr_assert_eq(waitpid(w, NULL, 0), w);
        target_stop(&t);
}

Test(daemon, a_watcher_that_never_tells_its_progress_stalls_nobody) {
        char pid_text[96];
        Message m = {};
        Target t;
        pid_t w = start_with_a_watcher_found(&t, FAKE_WATCHER_STREAMING);
        /* Found streaming (its watcher said so once). */
        for (int i = 0; i < 100; i++) {
                cr_assert_eq(daemon_request(&d, MSG_LIST, 0, 0, &m), 0);
                bool found = m.n_entries == 1 && streq(m.entries[0].state, "streaming");
                message_done(&m);
                if (found)
                        break;
                cr_assert_lt(i, 99, "the streaming process was not found");
                usleep(10 * 1000);
        }

        /* Its status asks the watcher for the progress, which never comes. */
        uint64_t took = stalled_request(MSG_STATUS, t.pid, 700, &m);
        /* After a second, what the watcher said last. */
        cr_assert_eq(m.result, MEMCR_OK, "%s: %s", memcr_result_to_string(m.result), m.message ?: "");
        cr_assert_str_eq(m.state, "streaming");
        message_done(&m);
        cr_assert_geq(took, 900 * USEC_PER_MSEC);
        cr_assert_lt(took, 3 * USEC_PER_SEC);
        snprintf(pid_text, sizeof(pid_text), "the watcher of %d did not tell its progress within 1 s", t.pid);
        cr_assert(log_shows(pid_text), "the timeout was not logged");
        kill(w, SIGKILL);
        waitpid(w, NULL, 0);
        target_stop(&t);
}
