/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * libmemcr-client and memcrctl against a fake memcrd: a forked child that
 * listens on a socket in a temporary directory, reads requests with
 * message_recv() and answers with message_send() as each test scripts it.
 * The child reports a request it did not expect through its exit status.
 */

#include "memcr-client.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "macro.h"
#include "protocol.h"

/* ---- the fake memcrd ---- */

#define SERVER_CHECK(expr)                                                                         \
        do {                                                                                       \
                if (!(expr)) {                                                                     \
                        fprintf(stderr, "fake memcrd: %s:%d: check failed: %s\n", __FILE__,        \
                                __LINE__, #expr);                                                  \
                        _exit(3);                                                                  \
                }                                                                                  \
        } while (0)

/* Serves connection number index (0, 1, ...) on fd. */
typedef void (*serve_t)(int fd, unsigned index);

typedef struct Server {
        char dir[200];
        char path[256];
        pid_t pid;
} Server;

static void make_temp_dir(char *dir, size_t size) {
        const char *tmp = getenv("TMPDIR");

        snprintf(dir, size, "%s/memcr-client-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
        cr_assert_not_null(mkdtemp(dir));
}

static int listen_at(const char *path, bool do_listen) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd;

        cr_assert_lt(strlen(path), sizeof(sa.sun_path));
        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        cr_assert_geq(fd, 0);
        cr_assert_eq(bind(fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        if (do_listen)
                cr_assert_eq(listen(fd, 8), 0);
        return fd;
}

/* Listen, then fork a child that accepts n_connections one after another. */
static void server_start(Server *s, serve_t serve, unsigned n_connections) {
        pid_t parent = getpid();
        int lfd;

        make_temp_dir(s->dir, sizeof(s->dir));
        snprintf(s->path, sizeof(s->path), "%s/memcr.sock", s->dir);
        lfd = listen_at(s->path, true);

        s->pid = fork();
        cr_assert_geq(s->pid, 0);
        if (s->pid == 0) {
                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (getppid() != parent)
                        _exit(4);
                alarm(20);
                for (unsigned i = 0; i < n_connections; i++) {
                        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
                        SERVER_CHECK(fd >= 0);
                        serve(fd, i);
                        close(fd);
                }
                _exit(0);
        }
        close(lfd);
}

static void server_finish(Server *s) {
        int status;

        cr_assert_eq(waitpid(s->pid, &status, 0), s->pid);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "fake memcrd failed (status 0x%x)",
                  (unsigned) status);
        (void) unlink(s->path);
        (void) rmdir(s->dir);
}

static Message recv_request(int fd, uint16_t type) {
        Message m = {};

        SERVER_CHECK(message_recv(fd, &m, NULL, 0, NULL) == 0);
        if (m.type != type)
                fprintf(stderr, "fake memcrd: got %s, expected %s\n", message_type_to_string(m.type),
                        message_type_to_string(type));
        SERVER_CHECK(m.type == type);
        return m;
}

static void send_and_done(int fd, Message *m) {
        SERVER_CHECK(message_send(fd, m, NULL, 0) == 0);
        message_done(m);
}

static void send_result(int fd, MemcrResult result, uint32_t error, const char *message) {
        Message r = { .type = MSG_REPLY };

        message_set_u32(&r, TAG_RESULT, result);
        if (error > 0)
                message_set_u32(&r, TAG_ERRNO, error);
        if (message)
                SERVER_CHECK(message_set_string(&r, TAG_MESSAGE, message) == 0);
        send_and_done(fd, &r);
}

#define MIB (UINT64_C(1) << 20)
#define GIB (UINT64_C(1) << 30)
#define SINCE_USEC UINT64_C(1715083200000000) /* 2024-05-07 12:00:00 UTC */

static void set_info(Message *m, uint32_t pid, const char *comm) {
        message_set_u32(m, TAG_PID, pid);
        SERVER_CHECK(message_set_string(m, TAG_STATE, "frozen") == 0);
        SERVER_CHECK(message_set_string(m, TAG_COMM, comm) == 0);
        message_set_u32(m, TAG_UID, 0);
        message_set_u32(m, TAG_CALLER_UID, 0);
        message_set_u64(m, TAG_SINCE_USEC, SINCE_USEC);
        message_set_u64(m, TAG_RSS_BEFORE, 812 * MIB);
        message_set_u64(m, TAG_RSS_AFTER, 1258291); /* 1.2M */
        message_set_u64(m, TAG_DUMP_BYTES, 800 * MIB);
        message_set_u64(m, TAG_DUMP_FILE_BYTES, 828899328); /* 790.5M */
        message_set_u32(m, TAG_WATCHER_PID, 77);
        message_set_u32(m, TAG_THREADS, 12);
        SERVER_CHECK(message_set_string(m, TAG_CODEC, "none") == 0);
        SERVER_CHECK(message_set_string(m, TAG_PROTECTION, "encrypt") == 0);
}

static void send_info_reply(int fd, uint32_t pid, const char *comm, uint64_t duration_usec) {
        Message r = { .type = MSG_REPLY };

        message_set_u32(&r, TAG_RESULT, MEMCR_OK);
        set_info(&r, pid, comm);
        if (duration_usec > 0)
                message_set_u64(&r, TAG_DURATION_USEC, duration_usec);
        send_and_done(fd, &r);
}

static void expect_eof(int fd) {
        char c;
        SERVER_CHECK(read(fd, &c, 1) == 0);
}

/* ---- the library ---- */

static void serve_checkpoint_stats(int fd, unsigned index) {
        Message q = recv_request(fd, MSG_CHECKPOINT);
        Message r = { .type = MSG_REPLY };

        SERVER_CHECK(q.pid == 4242);
        SERVER_CHECK(streq(q.dump_dir, "/var/lib/memcr/dumps"));
        SERVER_CHECK(streq(q.codec, "zstd"));
        SERVER_CHECK(q.timeout_msec == 2500);
        SERVER_CHECK(q.max_frozen_sec == 3600);
        SERVER_CHECK(q.flags == (REQUEST_FLAG_INTERACTIVE | REQUEST_FLAG_NO_ENCRYPT));
        SERVER_CHECK(!MESSAGE_HAS(&q, TAG_CALLER_UID));
        message_done(&q);

        message_set_u32(&r, TAG_RESULT, MEMCR_OK);
        message_set_u32(&r, TAG_PID, 4242);
        SERVER_CHECK(message_set_string(&r, TAG_STATE, "frozen") == 0);
        SERVER_CHECK(message_set_string(&r, TAG_COMM, "firefox") == 0);
        message_set_u32(&r, TAG_UID, 1000);
        message_set_u32(&r, TAG_CALLER_UID, 1001);
        message_set_u64(&r, TAG_SINCE_USEC, SINCE_USEC);
        message_set_u64(&r, TAG_RSS_BEFORE, 812 * MIB);
        message_set_u64(&r, TAG_RSS_AFTER, 1258291);
        message_set_u64(&r, TAG_DUMP_BYTES, 800 * MIB);
        message_set_u64(&r, TAG_DUMP_FILE_BYTES, 300 * MIB);
        message_set_u64(&r, TAG_DURATION_USEC, 1430000);
        message_set_u32(&r, TAG_WATCHER_PID, 77);
        message_set_u32(&r, TAG_THREADS, 12);
        SERVER_CHECK(message_set_string(&r, TAG_CODEC, "zstd") == 0);
        SERVER_CHECK(message_set_string(&r, TAG_PROTECTION, "auth") == 0);
        message_set_u64(&r, TAG_MAX_FROZEN_SEC, 3600);
        send_and_done(fd, &r);
        expect_eof(fd);
}

Test(client, checkpoint_reply_with_stats) {
        Server s;
        MemcrClient *c = NULL;
        MemcrReply reply;
        MemcrClientOptions o = {
                .dump_dir = "/var/lib/memcr/dumps",
                .codec = "zstd",
                .timeout_msec = 2500,
                .max_frozen_sec = 3600,
                .interactive = true,
                .no_encrypt = true,
        };

        server_start(&s, serve_checkpoint_stats, 1);
        cr_assert_eq(memcr_client_connect(s.path, &c), 0);
        cr_assert_eq(memcr_client_checkpoint(c, 4242, &o, &reply), 0);
        memcr_client_free(c);
        server_finish(&s);

        cr_assert_eq(reply.result, MEMCR_CLIENT_OK);
        cr_assert_eq(reply.error, 0);
        cr_assert_str_eq(reply.message, "");
        cr_assert_eq(reply.info.pid, 4242);
        cr_assert_str_eq(reply.info.state, "frozen");
        cr_assert_str_eq(reply.info.comm, "firefox");
        cr_assert_eq(reply.info.uid, 1000);
        cr_assert_eq(reply.info.caller_uid, 1001);
        cr_assert_eq(reply.info.since_usec, SINCE_USEC);
        cr_assert_eq(reply.info.rss_before, 812 * MIB);
        cr_assert_eq(reply.info.rss_after, 1258291);
        cr_assert_eq(reply.info.dump_bytes, 800 * MIB);
        cr_assert_eq(reply.info.dump_file_bytes, 300 * MIB);
        cr_assert_eq(reply.info.duration_usec, 1430000);
        cr_assert_eq(reply.info.watcher_pid, 77);
        cr_assert_eq(reply.info.threads, 12);
        cr_assert_str_eq(reply.info.codec, "zstd");
        cr_assert_str_eq(reply.info.protection, "auth");
        cr_assert_eq(reply.info.max_frozen_sec, 3600);
}

static void serve_progress(int fd, unsigned index) {
        Message q = recv_request(fd, MSG_CHECKPOINT);

        SERVER_CHECK(q.pid == 99);
        SERVER_CHECK(q.flags == REQUEST_FLAG_PROGRESS);
        SERVER_CHECK(!MESSAGE_HAS(&q, TAG_DUMP_DIR) && !MESSAGE_HAS(&q, TAG_CODEC));
        SERVER_CHECK(!MESSAGE_HAS(&q, TAG_TIMEOUT_MSEC) && !MESSAGE_HAS(&q, TAG_MAX_FROZEN_SEC));
        message_done(&q);

        for (uint64_t i = 1; i <= 3; i++) {
                Message p = { .type = MSG_PROGRESS };
                message_set_u32(&p, TAG_PID, 99);
                message_set_u64(&p, TAG_DONE, i * GIB);
                message_set_u64(&p, TAG_TOTAL, 3 * GIB);
                send_and_done(fd, &p);
        }
        send_info_reply(fd, 99, "worker", 2000000);
        expect_eof(fd);
}

typedef struct ProgressLog {
        unsigned n;
        uint64_t done[8], total[8];
} ProgressLog;

static void record_progress(uint64_t done, uint64_t total, void *userdata) {
        ProgressLog *l = userdata;

        if (l->n < ELEMENTSOF(l->done)) {
                l->done[l->n] = done;
                l->total[l->n] = total;
        }
        l->n++;
}

Test(client, checkpoint_progress_then_reply) {
        Server s;
        MemcrClient *c = NULL;
        MemcrReply reply;
        ProgressLog log = {};
        MemcrClientOptions o = { .progress = record_progress, .userdata = &log };

        server_start(&s, serve_progress, 1);
        cr_assert_eq(memcr_client_connect(s.path, &c), 0);
        cr_assert_eq(memcr_client_checkpoint(c, 99, &o, &reply), 0);
        memcr_client_free(c);
        server_finish(&s);

        cr_assert_eq(reply.result, MEMCR_CLIENT_OK);
        cr_assert_str_eq(reply.info.comm, "worker");
        cr_assert_eq(log.n, 3);
        for (unsigned i = 0; i < 3; i++) {
                cr_assert_eq(log.done[i], (i + 1) * GIB);
                cr_assert_eq(log.total[i], 3 * GIB);
        }
}

static void serve_sequence(int fd, unsigned index) {
        Message q;

        /* restore: only what a restore takes */
        q = recv_request(fd, MSG_RESTORE);
        SERVER_CHECK(q.pid == 7);
        SERVER_CHECK(q.flags == REQUEST_FLAG_INTERACTIVE);
        SERVER_CHECK(q.timeout_msec == 1500);
        SERVER_CHECK(q.present == ((UINT64_C(1) << TAG_PID) | (UINT64_C(1) << TAG_FLAGS) |
                                   (UINT64_C(1) << TAG_TIMEOUT_MSEC)));
        message_done(&q);
        send_info_reply(fd, 7, "editor", 520000);

        /* status of something not frozen */
        q = recv_request(fd, MSG_STATUS);
        SERVER_CHECK(q.pid == 8);
        SERVER_CHECK(q.present == (UINT64_C(1) << TAG_PID));
        message_done(&q);
        send_result(fd, MEMCR_ERR_NOT_FROZEN, ENOENT, "Process 8 is not frozen");

        /* denied */
        q = recv_request(fd, MSG_CHECKPOINT);
        SERVER_CHECK(q.pid == 9);
        message_done(&q);
        send_result(fd, MEMCR_ERR_DENIED, EACCES, NULL);

        q = recv_request(fd, MSG_VERSION);
        SERVER_CHECK(q.present == 0);
        message_done(&q);
        Message r = { .type = MSG_REPLY };
        message_set_u32(&r, TAG_RESULT, MEMCR_OK);
        SERVER_CHECK(message_set_string(&r, TAG_VERSION, "0.1.0") == 0);
        send_and_done(fd, &r);

        expect_eof(fd);
}

Test(client, several_requests_on_one_connection) {
        Server s;
        MemcrClient *c = NULL;
        MemcrReply reply;
        char version[16];
        MemcrClientOptions o = {
                .dump_dir = "/ignored",
                .codec = "lz4",
                .max_frozen_sec = 10,
                .no_encrypt = true,
                .interactive = true,
                .timeout_msec = 1500,
        };

        server_start(&s, serve_sequence, 1);
        cr_assert_eq(memcr_client_connect(s.path, &c), 0);

        cr_assert_eq(memcr_client_restore(c, 7, &o, &reply), 0);
        cr_assert_eq(reply.result, MEMCR_CLIENT_OK);
        cr_assert_eq(reply.info.pid, 7);
        cr_assert_eq(reply.info.duration_usec, 520000);

        cr_assert_eq(memcr_client_status(c, 8, &reply), 0);
        cr_assert_eq(reply.result, MEMCR_CLIENT_ERR_NOT_FROZEN);
        cr_assert_eq(reply.error, ENOENT);
        cr_assert_str_eq(reply.message, "Process 8 is not frozen");
        cr_assert_eq(reply.info.pid, 8);
        cr_assert_str_eq(reply.info.comm, "");

        cr_assert_eq(memcr_client_checkpoint(c, 9, NULL, &reply), 0);
        cr_assert_eq(reply.result, MEMCR_CLIENT_ERR_DENIED);
        cr_assert_eq(reply.error, EACCES);
        cr_assert_str_eq(reply.message, "");

        cr_assert_eq(memcr_client_version(c, version, sizeof(version)), 0);
        cr_assert_str_eq(version, "0.1.0");

        memcr_client_free(c);
        server_finish(&s);
}

static void reply_three_entries(int fd) {
        Message q = recv_request(fd, MSG_LIST), r = { .type = MSG_REPLY };
        static const uint32_t pids[] = { 300, 100, 200 };
        static const char *const comms[] = { "firefox", "thunderbird", "slack" };

        SERVER_CHECK(q.present == 0);
        message_done(&q);
        message_set_u32(&r, TAG_RESULT, MEMCR_OK);
        for (size_t i = 0; i < 3; i++) {
                Message *e = message_add_entry(&r);
                SERVER_CHECK(e);
                set_info(e, pids[i], comms[i]);
                message_set_u32(e, TAG_UID, (uint32_t) (1000 + i));
                message_set_u64(e, TAG_DUMP_FILE_BYTES, (i + 1) * GIB);
        }
        send_and_done(fd, &r);
}

static void serve_list_once(int fd, unsigned index) {
        reply_three_entries(fd);
        expect_eof(fd);
}

static void serve_list(int fd, unsigned index) {
        Message q;

        reply_three_entries(fd);
        /* then an empty list */
        q = recv_request(fd, MSG_LIST);
        message_done(&q);
        send_result(fd, MEMCR_OK, 0, NULL);

        /* then a refusal */
        q = recv_request(fd, MSG_LIST);
        message_done(&q);
        send_result(fd, MEMCR_ERR_DENIED, EPERM, "no");
        expect_eof(fd);
}

Test(client, list_three_entries) {
        Server s;
        MemcrClient *c = NULL;
        MemcrProcessInfo *list = NULL;
        MemcrReply reply;
        size_t n = 42;

        server_start(&s, serve_list, 1);
        cr_assert_eq(memcr_client_connect(s.path, &c), 0);

        cr_assert_eq(memcr_client_list(c, &list, &n, &reply), 0);
        cr_assert_eq(reply.result, MEMCR_CLIENT_OK);
        cr_assert_eq(n, 3);
        cr_assert_eq(list[0].pid, 300);
        cr_assert_eq(list[1].pid, 100);
        cr_assert_eq(list[2].pid, 200);
        cr_assert_str_eq(list[1].comm, "thunderbird");
        cr_assert_eq(list[2].uid, 1002);
        cr_assert_eq(list[2].dump_file_bytes, 3 * GIB);
        cr_assert_eq(list[0].watcher_pid, 77);
        cr_assert_str_eq(list[0].state, "frozen");
        free(list);

        list = (MemcrProcessInfo *) 0x1;
        cr_assert_eq(memcr_client_list(c, &list, &n, &reply), 0);
        cr_assert_eq(reply.result, MEMCR_CLIENT_OK);
        cr_assert_null(list);
        cr_assert_eq(n, 0);

        n = 42;
        cr_assert_eq(memcr_client_list(c, &list, &n, &reply), 0);
        cr_assert_eq(reply.result, MEMCR_CLIENT_ERR_DENIED);
        cr_assert_eq(reply.error, EPERM);
        cr_assert_str_eq(reply.message, "no");
        cr_assert_null(list);
        cr_assert_eq(n, 0);

        memcr_client_free(c);
        server_finish(&s);
}

static void serve_close_mid_frame(int fd, unsigned index) {
        Message q = recv_request(fd, MSG_CHECKPOINT), p = { .type = MSG_PROGRESS };
        uint8_t *buf;
        size_t size;

        message_done(&q);
        message_set_u64(&p, TAG_DONE, 1);
        message_set_u64(&p, TAG_TOTAL, 2);
        send_and_done(fd, &p);

        /* Half a reply, then gone. */
        Message r = { .type = MSG_REPLY };
        message_set_u32(&r, TAG_RESULT, MEMCR_OK);
        SERVER_CHECK(message_encode(&r, &buf, &size) == 0);
        SERVER_CHECK(write(fd, buf, size / 2) == (ssize_t) (size / 2));
        free(buf);
        message_done(&r);
}

Test(client, connection_closed_mid_request) {
        Server s;
        MemcrClient *c = NULL;
        MemcrReply reply, untouched;
        ProgressLog log = {};
        MemcrClientOptions o = { .progress = record_progress, .userdata = &log };

        memset(&reply, 0xaa, sizeof(reply));
        untouched = reply;

        server_start(&s, serve_close_mid_frame, 1);
        cr_assert_eq(memcr_client_connect(s.path, &c), 0);
        cr_assert_eq(memcr_client_checkpoint(c, 5, &o, &reply), -ECONNRESET);
        cr_assert_eq(memcmp(&reply, &untouched, sizeof(reply)), 0);
        cr_assert_eq(log.n, 1);
        /* The connection is unusable from now on. */
        cr_assert_eq(memcr_client_status(c, 5, &reply), -ENOTCONN);
        memcr_client_free(c);
        server_finish(&s);
}

static void serve_close_after_request(int fd, unsigned index) {
        Message q = recv_request(fd, MSG_RESTORE);
        message_done(&q);
}

Test(client, connection_closed_before_reply) {
        Server s;
        MemcrClient *c = NULL;
        MemcrReply reply;

        server_start(&s, serve_close_after_request, 1);
        cr_assert_eq(memcr_client_connect(s.path, &c), 0);
        cr_assert_eq(memcr_client_restore(c, 5, NULL, &reply), -ECONNRESET);
        memcr_client_free(c);
        server_finish(&s);
}

/* memcrd answers one request, then closes the connection between requests
 * (its connection lifetime is over); the next request connects again. */
static void serve_one_then_close(int fd, unsigned index) {
        Message q = recv_request(fd, MSG_STATUS);
        message_done(&q);
        send_info_reply(fd, index == 0 ? 5 : 6, index == 0 ? "first" : "second", 0);
}

Test(client, connection_closed_between_requests_is_reopened) {
        Server s;
        MemcrClient *c = NULL;
        MemcrReply reply;

        server_start(&s, serve_one_then_close, 2);
        cr_assert_eq(memcr_client_connect(s.path, &c), 0);
        cr_assert_eq(memcr_client_status(c, 5, &reply), 0);
        cr_assert_str_eq(reply.info.comm, "first");
        usleep(100 * 1000); /* the fake memcrd has closed it */
        cr_assert_eq(memcr_client_status(c, 6, &reply), 0);
        cr_assert_str_eq(reply.info.comm, "second");
        memcr_client_free(c);
        server_finish(&s);
}

static void serve_nothing(int fd, unsigned index) {
}

static void serve_expect_eof(int fd, unsigned index) {
        expect_eof(fd);
}

Test(client, peer_gone_before_request_raises_no_sigpipe) {
        Server s;
        MemcrClient *c = NULL;
        MemcrReply reply;

        server_start(&s, serve_nothing, 1);
        cr_assert_eq(memcr_client_connect(s.path, &c), 0);
        server_finish(&s); /* the server has closed its end */
        cr_assert_eq(memcr_client_checkpoint(c, 5, NULL, &reply), -ECONNRESET);
        memcr_client_free(c);
}

static void serve_bad_replies(int fd, unsigned index) {
        Message q;

        if (index == 0) {
                /* A request where a reply belongs. */
                q = recv_request(fd, MSG_STATUS);
                message_done(&q);
                Message r = { .type = MSG_STATUS };
                message_set_u32(&r, TAG_PID, 5);
                send_and_done(fd, &r);
        } else if (index == 1) {
                /* A reply about another process. */
                q = recv_request(fd, MSG_STATUS);
                message_done(&q);
                send_info_reply(fd, 6, "other", 0);
        } else {
                /* Not a frame at all. */
                q = recv_request(fd, MSG_VERSION);
                message_done(&q);
                SERVER_CHECK(write(fd, "HTTP/1.1 400 Bad Request\r\n\r\n", 28) == 28);
        }
}

Test(client, malformed_replies) {
        Server s;
        MemcrClient *c = NULL;
        MemcrReply reply;
        char version[16];

        server_start(&s, serve_bad_replies, 3);
        cr_assert_eq(memcr_client_connect(s.path, &c), 0);
        cr_assert_eq(memcr_client_status(c, 5, &reply), -EBADMSG);
        memcr_client_free(c);
        cr_assert_eq(memcr_client_connect(s.path, &c), 0);
        cr_assert_eq(memcr_client_status(c, 5, &reply), -EBADMSG);
        memcr_client_free(c);
        cr_assert_eq(memcr_client_connect(s.path, &c), 0);
        cr_assert_eq(memcr_client_version(c, version, sizeof(version)), -EBADMSG);
        memcr_client_free(c);
        server_finish(&s);
}

static void serve_long_strings(int fd, unsigned index) {
        char comm[101], message[513];
        Message q, r = { .type = MSG_REPLY };

        q = recv_request(fd, MSG_STATUS);
        message_done(&q);
        memset(comm, 'a', 100);
        comm[100] = '\0';
        /* 510 bytes, then a two-byte character across the 511-byte limit */
        memset(message, 'x', 510);
        strcpy(message + 510, "\xc3\xa9");
        message_set_u32(&r, TAG_RESULT, MEMCR_ERR_FAILED);
        SERVER_CHECK(message_set_string(&r, TAG_COMM, comm) == 0);
        SERVER_CHECK(message_set_string(&r, TAG_MESSAGE, message) == 0);
        send_and_done(fd, &r);

        q = recv_request(fd, MSG_VERSION);
        message_done(&q);
        r = (Message) { .type = MSG_REPLY };
        message_set_u32(&r, TAG_RESULT, MEMCR_OK);
        SERVER_CHECK(message_set_string(&r, TAG_VERSION, "1.2.3-long-version") == 0);
        send_and_done(fd, &r);

        q = recv_request(fd, MSG_VERSION);
        message_done(&q);
        send_result(fd, MEMCR_ERR_DENIED, EACCES, NULL);
        expect_eof(fd);
}

Test(client, long_strings_are_truncated) {
        Server s;
        MemcrClient *c = NULL;
        MemcrReply reply;
        char version[8] = "unset";

        server_start(&s, serve_long_strings, 1);
        cr_assert_eq(memcr_client_connect(s.path, &c), 0);
        cr_assert_eq(memcr_client_status(c, 5, &reply), 0);
        cr_assert_eq(reply.result, MEMCR_CLIENT_ERR_FAILED);
        cr_assert_eq(strlen(reply.info.comm), 63);
        cr_assert_eq(strlen(reply.message), 510);
        cr_assert_eq(strspn(reply.message, "x"), 510);
        cr_assert_eq(memcr_client_version(c, version, sizeof(version)), -ENOBUFS);
        cr_assert_str_eq(version, "unset");
        cr_assert_eq(memcr_client_version(c, version, sizeof(version)), -EACCES);
        memcr_client_free(c);
        server_finish(&s);
}

Test(client, connect_errors) {
        char dir[PATH_MAX], path[PATH_MAX + 16];
        MemcrClient *c = NULL;
        int fd;

        make_temp_dir(dir, sizeof(dir));
        snprintf(path, sizeof(path), "%s/memcr.sock", dir);

        cr_assert_eq(memcr_client_connect(path, &c), -ENOENT);
        cr_assert_null(c);

        /* Bound but nobody listening. */
        fd = listen_at(path, false);
        cr_assert_eq(memcr_client_connect(path, &c), -ECONNREFUSED);
        cr_assert_null(c);
        close(fd);

        cr_assert_eq(memcr_client_connect("", &c), -EINVAL);
        cr_assert_eq(memcr_client_connect(path, NULL), -EINVAL);
        cr_assert_null(c);

        unlink(path);
        rmdir(dir);
}

Test(client, invalid_arguments) {
        Server s;
        MemcrClient *c = NULL;
        MemcrReply reply;
        MemcrProcessInfo *list;
        size_t n;
        char version[8];
        _cleanup_free_ char *long_dir = malloc(MEMCR_MAX_STRING + 2);
        MemcrClientOptions o = { .dump_dir = long_dir };

        cr_assert_not_null(long_dir);
        memset(long_dir, 'd', MEMCR_MAX_STRING + 1);
        long_dir[0] = '/';
        long_dir[MEMCR_MAX_STRING + 1] = '\0';

        /* Nothing of this reaches the server. */
        server_start(&s, serve_expect_eof, 1);
        cr_assert_eq(memcr_client_connect(s.path, &c), 0);
        cr_assert_eq(memcr_client_checkpoint(c, 0, NULL, &reply), -EINVAL);
        cr_assert_eq(memcr_client_checkpoint(c, -1, NULL, &reply), -EINVAL);
        cr_assert_eq(memcr_client_restore(c, 5, NULL, NULL), -EINVAL);
        cr_assert_eq(memcr_client_status(NULL, 5, &reply), -EINVAL);
        cr_assert_eq(memcr_client_list(c, &list, NULL, &reply), -EINVAL);
        cr_assert_eq(memcr_client_list(c, &list, &n, NULL), -EINVAL);
        cr_assert_eq(memcr_client_version(c, version, 0), -EINVAL);
        cr_assert_eq(memcr_client_checkpoint(c, 5, &o, &reply), -EINVAL);
        memcr_client_free(c);
        server_finish(&s);
}

Test(client, result_names) {
        static const char *const names[] = {
                "ok", "failed", "denied", "no-such-process", "not-frozen", "already-frozen",
                "invalid-request", "busy", "timeout", "killed", "unsupported",
        };

        for (int i = 0; i < (int) ELEMENTSOF(names); i++)
                cr_assert_str_eq(memcr_client_result_to_string(i), names[i]);
        cr_assert_str_eq(memcr_client_result_to_string(-1), "unknown");
        cr_assert_str_eq(memcr_client_result_to_string((int) ELEMENTSOF(names)), "unknown");
        cr_assert_eq(MEMCR_CLIENT_ERR_TIMEOUT, MEMCR_ERR_TIMEOUT);
}

/* ---- memcrctl ---- */

static const char *memcrctl_path(void) {
        const char *e = getenv("MEMCRCTL");
        return e && e[0] ? e : "memcrctl";
}

typedef struct Run {
        int status; /* exit status, or -1 if killed */
        char out[8192];
        char err[8192];
} Run;

static void read_back(int fd, char *buf, size_t size) {
        ssize_t n;

        cr_assert_eq(lseek(fd, 0, SEEK_SET), 0);
        n = read(fd, buf, size - 1);
        cr_assert_geq(n, 0);
        buf[n] = '\0';
        close(fd);
}

/* Run memcrctl with the arguments given (NULL-terminated), in UTC and a UTF-8 locale. */
static void run_memcrctl(Run *ret, ...) {
        const char *argv[32] = { "memcrctl" };
        const char *path = memcrctl_path();
        size_t n = 1;
        int out, err, status;
        va_list ap;
        pid_t pid;

        if (access(path, X_OK) < 0)
                cr_skip_test("memcrctl not found at %s", path);

        va_start(ap, ret);
        for (const char *a; (a = va_arg(ap, const char *));) {
                cr_assert_lt(n, ELEMENTSOF(argv) - 1);
                argv[n++] = a;
        }
        va_end(ap);
        argv[n] = NULL;

        out = memfd_create("out", MFD_CLOEXEC);
        err = memfd_create("err", MFD_CLOEXEC);
        cr_assert(out >= 0 && err >= 0);

        pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
                int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
                if (null < 0 || dup2(null, STDIN_FILENO) < 0 || dup2(out, STDOUT_FILENO) < 0 ||
                    dup2(err, STDERR_FILENO) < 0)
                        _exit(127);
                setenv("TZ", "UTC", 1);
                setenv("LC_ALL", "C.UTF-8", 1);
                unsetenv("MEMCR_LOG_LEVEL");
                execv(path, (char **) argv);
                _exit(127);
        }
        cr_assert_eq(waitpid(pid, &status, 0), pid);
        ret->status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        read_back(out, ret->out, sizeof(ret->out));
        read_back(err, ret->err, sizeof(ret->err));
}

static char *socket_arg(const Server *s) {
        static char buf[PATH_MAX + 16];
        snprintf(buf, sizeof(buf), "--socket=%s", s->path);
        return buf;
}

static void serve_cli_checkpoint(int fd, unsigned index) {
        Message q = recv_request(fd, MSG_CHECKPOINT);

        SERVER_CHECK(q.pid == 1234);
        SERVER_CHECK(streq(q.dump_dir, "/srv/dumps"));
        SERVER_CHECK(streq(q.codec, "zstd"));
        SERVER_CHECK(q.timeout_msec == 2500);
        SERVER_CHECK(q.max_frozen_sec == 3600);
        /* stderr is no terminal: no progress wanted */
        SERVER_CHECK(q.flags == REQUEST_FLAG_NO_ENCRYPT);
        message_done(&q);
        send_info_reply(fd, 1234, "firefox", 1430000);
        expect_eof(fd);
}

Test(memcrctl, checkpoint) {
        Server s;
        Run r;

        server_start(&s, serve_cli_checkpoint, 1);
        run_memcrctl(&r, socket_arg(&s), "--timeout=2.5", "--max-frozen=3600", "--dump-dir=/srv/dumps",
                     "--compress=zstd", "--no-encrypt", "checkpoint", "1234", NULL);
        server_finish(&s);
        cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
        cr_assert_str_eq(r.out, "Checkpointed 1234 (firefox): RSS 812.0M → 1.2M, dump 790.5M in 1.43s\n");
        cr_assert_str_eq(r.err, "");
}

static void serve_cli_several(int fd, unsigned index) {
        Message q;

        q = recv_request(fd, MSG_CHECKPOINT);
        SERVER_CHECK(q.pid == 10);
        message_done(&q);
        send_result(fd, MEMCR_ERR_ALREADY_FROZEN, EALREADY, "Process 10 is already frozen");

        q = recv_request(fd, MSG_CHECKPOINT);
        SERVER_CHECK(q.pid == 11);
        message_done(&q);
        send_info_reply(fd, 11, "slack", 520000);

        q = recv_request(fd, MSG_CHECKPOINT);
        SERVER_CHECK(q.pid == 12);
        message_done(&q);
        send_result(fd, MEMCR_ERR_DENIED, EACCES, NULL);
        expect_eof(fd);
}

Test(memcrctl, several_pids_exit_with_first_failure) {
        Server s;
        Run r;

        server_start(&s, serve_cli_several, 1);
        run_memcrctl(&r, socket_arg(&s), "checkpoint", "10", "11", "12", NULL);
        server_finish(&s);
        cr_assert_eq(r.status, 6, "status %d, stderr: %s", r.status, r.err);
        cr_assert_str_eq(r.out, "Checkpointed 11 (slack): RSS 812.0M → 1.2M, dump 790.5M in 0.52s\n");
        cr_assert_str_eq(r.err, "Failed to checkpoint 10: Process 10 is already frozen (already-frozen)\n"
                                "Failed to checkpoint 12: Permission denied (denied)\n");
}

static void serve_cli_json(int fd, unsigned index) {
        Message q;

        q = recv_request(fd, MSG_RESTORE);
        message_done(&q);
        send_info_reply(fd, 5, "a\"b\\c\n\x01", 520000);

        q = recv_request(fd, MSG_RESTORE);
        message_done(&q);
        send_result(fd, MEMCR_ERR_NO_PROCESS, ESRCH, "no \"such\" process");
        expect_eof(fd);
}

Test(memcrctl, json) {
        Server s;
        Run r;

        server_start(&s, serve_cli_json, 1);
        run_memcrctl(&r, socket_arg(&s), "--json", "restore", "5", "6", NULL);
        server_finish(&s);
        cr_assert_eq(r.status, 4, "status %d, stderr: %s", r.status, r.err);
        cr_assert_str_eq(r.out,
                         "{\"result\":\"ok\",\"pid\":5,\"state\":\"frozen\",\"comm\":\"a\\\"b\\\\c\\n\\u0001\","
                         "\"uid\":0,\"caller_uid\":0,\"since_usec\":1715083200000000,\"rss_before\":851443712,"
                         "\"rss_after\":1258291,\"dump_bytes\":838860800,\"dump_file_bytes\":828899328,"
                         "\"duration_usec\":520000,\"watcher_pid\":77,\"threads\":12,\"codec\":\"none\","
                         "\"protection\":\"encrypt\",\"max_frozen_sec\":0}\n"
                         "{\"pid\":6,\"result\":\"no-such-process\",\"error\":3,"
                         "\"message\":\"no \\\"such\\\" process\"}\n");
        cr_assert_str_eq(r.err, "Failed to restore 6: no \"such\" process (no-such-process)\n");
}

Test(memcrctl, list) {
        Server s;
        Run r;

        server_start(&s, serve_list_once, 1);
        run_memcrctl(&r, socket_arg(&s), "list", NULL);
        server_finish(&s);
        cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
        /* uids 1000-1002 may or may not have names here: check the rest. */
        cr_assert(strstr(r.out, "PID COMMAND"), "%s", r.out);
        cr_assert(strstr(r.out, "STATE  SINCE               RSS SAVED DUMP SIZE\n"), "%s", r.out);
        cr_assert(strstr(r.out, "frozen 2024-05-07 12:00:00    810.8M      2.0G\n"), "%s", r.out);
        cr_assert(strstr(r.out, "\n3 frozen processes listed.\n"), "%s", r.out);
        /* sorted by PID */
        cr_assert(strstr(r.out, "100 thunderbird") < strstr(r.out, "200 slack"));
        cr_assert(strstr(r.out, "200 slack") < strstr(r.out, "300 firefox"));
}

static void serve_one_list(int fd, unsigned index) {
        Message q = recv_request(fd, MSG_LIST), r = { .type = MSG_REPLY };
        Message *e;

        message_done(&q);
        message_set_u32(&r, TAG_RESULT, MEMCR_OK);
        e = message_add_entry(&r);
        SERVER_CHECK(e);
        set_info(e, 42, "evil\033[2J");
        send_and_done(fd, &r);
}

Test(memcrctl, list_no_legend_and_escaping) {
        Server s;
        Run r;

        server_start(&s, serve_one_list, 2);
        run_memcrctl(&r, socket_arg(&s), "--no-legend", "list", NULL);
        cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
        cr_assert_str_eq(r.out, "42 evil\\x1b[2J root frozen 2024-05-07 12:00:00 810.8M 790.5M\n");

        run_memcrctl(&r, socket_arg(&s), "--json", "list", NULL);
        server_finish(&s);
        cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
        cr_assert(startswith(r.out, "[{\"pid\":42,\"state\":\"frozen\",\"comm\":\"evil\\u001b[2J\","),
                  "%s", r.out);
        cr_assert(strstr(r.out, "\"max_frozen_sec\":0}]\n"), "%s", r.out);
}

static void serve_cli_status(int fd, unsigned index) {
        Message q = recv_request(fd, MSG_STATUS), r = { .type = MSG_REPLY };

        message_done(&q);
        message_set_u32(&r, TAG_RESULT, MEMCR_OK);
        set_info(&r, 1234, "firefox");
        message_set_u64(&r, TAG_MAX_FROZEN_SEC, 3600);
        send_and_done(fd, &r);
        expect_eof(fd);
}

Test(memcrctl, status) {
        Server s;
        Run r;

        server_start(&s, serve_cli_status, 1);
        run_memcrctl(&r, socket_arg(&s), "status", "1234", NULL);
        server_finish(&s);
        cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
        cr_assert(startswith(r.out, "● 1234 (firefox)\n            State: frozen\n"), "%s", r.out);
        cr_assert(strstr(r.out, "     Frozen since: Tue 2024-05-07 12:00:00 UTC; "), "%s", r.out);
        cr_assert(strstr(r.out, "            Owner: root (0)\n  Checkpointed by: root (0)\n"), "%s", r.out);
        cr_assert(strstr(r.out, "          Watcher: 77\n          Threads: 12\n"), "%s", r.out);
        cr_assert(strstr(r.out, "              RSS: 812.0M → 1.2M (810.8M saved)\n"), "%s", r.out);
        cr_assert(strstr(r.out, "             Dump: 790.5M (800.0M of pages), uncompressed, encrypted\n"),
                  "%s", r.out);
        cr_assert(strstr(r.out, "     Auto-restore: after 1h (Tue 2024-05-07 13:00:00 UTC)\n"), "%s", r.out);
}

static void serve_cli_results(int fd, unsigned index) {
        static const MemcrResult results[] = {
                MEMCR_ERR_DENIED,  MEMCR_ERR_NO_PROCESS, MEMCR_ERR_NOT_FROZEN, MEMCR_ERR_ALREADY_FROZEN,
                MEMCR_ERR_TIMEOUT, MEMCR_ERR_KILLED,     MEMCR_ERR_BUSY,       MEMCR_ERR_INVALID,
        };
        Message q = recv_request(fd, MSG_RESTORE);

        message_done(&q);
        SERVER_CHECK(index < ELEMENTSOF(results));
        send_result(fd, results[index], 0, NULL);
        expect_eof(fd);
}

Test(memcrctl, exit_codes) {
        static const int codes[] = { 3, 4, 5, 6, 8, 1, 1, 1 };
        Server s;
        Run r;

        server_start(&s, serve_cli_results, ELEMENTSOF(codes));
        for (size_t i = 0; i < ELEMENTSOF(codes); i++) {
                run_memcrctl(&r, socket_arg(&s), "restore", "77", NULL);
                cr_assert_eq(r.status, codes[i], "reply %zu: status %d, expected %d (%s)", i, r.status,
                             codes[i], r.err);
                cr_assert_str_eq(r.out, "");
                cr_assert(startswith(r.err, "Failed to restore 77: "), "%s", r.err);
        }
        server_finish(&s);

        run_memcrctl(&r, "--socket=/nonexistent/memcr.sock", "restore", "77", NULL);
        cr_assert_eq(r.status, 7);
        cr_assert_str_eq(r.err, "Failed to connect to memcrd at /nonexistent/memcr.sock: "
                                "No such file or directory\n");
}

static void serve_cli_lost(int fd, unsigned index) {
        Message q = recv_request(fd, MSG_RESTORE);

        message_done(&q);
        if (index == 1)
                send_info_reply(fd, 2, "second", 0);
        /* index 0: close without an answer */
}

Test(memcrctl, reconnects_after_lost_connection) {
        Server s;
        Run r;

        server_start(&s, serve_cli_lost, 2);
        run_memcrctl(&r, socket_arg(&s), "restore", "1", "2", NULL);
        server_finish(&s);
        cr_assert_eq(r.status, 7, "status %d, stderr: %s", r.status, r.err);
        cr_assert_str_eq(r.out, "Restored 2 (second)\n");
        cr_assert_str_eq(r.err, "Failed to restore 1: lost the connection to memcrd "
                                "(Connection reset by peer)\n");
}

Test(memcrctl, quiet_and_version) {
        Server s;
        Run r;

        server_start(&s, serve_cli_status, 1);
        run_memcrctl(&r, socket_arg(&s), "-q", "status", "1234", NULL);
        server_finish(&s);
        cr_assert_eq(r.status, 0);
        cr_assert_str_eq(r.out, "");
        cr_assert_str_eq(r.err, "");

        run_memcrctl(&r, "--version", NULL);
        cr_assert_eq(r.status, 0);
        cr_assert(startswith(r.out, "memcrctl "), "%s", r.out);
}

Test(memcrctl, usage_errors) {
        static const char *const bad_pids[] = { "0", "-1", "+5", "12a", "", " 7", "0x10", "2147483648",
                                                "99999999999999999999" };
        Run r;

        /* No memcrd needed: all of these stop before connecting. */
        for (size_t i = 0; i < ELEMENTSOF(bad_pids); i++) {
                run_memcrctl(&r, "--socket=/nonexistent/memcr.sock", "checkpoint", "--", "5", bad_pids[i],
                             NULL);
                cr_assert_eq(r.status, 2, "PID '%s': status %d", bad_pids[i], r.status);
                cr_assert(strstr(r.err, "Invalid PID"), "%s", r.err);
        }
        run_memcrctl(&r, "checkpoint", NULL);
        cr_assert_eq(r.status, 2);
        run_memcrctl(&r, "frobnicate", NULL);
        cr_assert_eq(r.status, 2);
        cr_assert_str_eq(r.err, "Unknown command 'frobnicate'. See 'memcrctl --help'.\n");
        run_memcrctl(&r, "list", "extra", NULL);
        cr_assert_eq(r.status, 2);
        run_memcrctl(&r, "--compress=gzip", "checkpoint", "5", NULL);
        cr_assert_eq(r.status, 2);
        run_memcrctl(&r, "--timeout=soon", "checkpoint", "5", NULL);
        cr_assert_eq(r.status, 2);
        run_memcrctl(&r, "--timeout=-1", "checkpoint", "5", NULL);
        cr_assert_eq(r.status, 2);
        run_memcrctl(&r, "--max-frozen=1h", "checkpoint", "5", NULL);
        cr_assert_eq(r.status, 2);
        run_memcrctl(&r, "--no-such-option", NULL);
        cr_assert_eq(r.status, 2);
        run_memcrctl(&r, "--help", NULL);
        cr_assert_eq(r.status, 0);
        cr_assert(strstr(r.out, "7 cannot reach memcrd"), "%s", r.out);
}
