/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <criterion/criterion.h>
#include <endian.h>
#include <fcntl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "macro.h"
#include "protocol.h"

static void decode_frame(const uint8_t *buf, size_t size, Message *ret, int expected) {
        uint16_t type;
        uint32_t len;
        int r;

        cr_assert_geq(size, MEMCR_FRAME_HEADER_SIZE);
        r = frame_header_parse(buf, &type, &len);
        if (r < 0) {
                cr_assert_eq(r, expected, "header: %d, expected %d", r, expected);
                return;
        }
        cr_assert_eq(len, size - MEMCR_FRAME_HEADER_SIZE);
        r = message_decode(type, buf + MEMCR_FRAME_HEADER_SIZE, len, ret);
        cr_assert_eq(r, expected, "decode: %d, expected %d", r, expected);
}

Test(protocol, checkpoint_roundtrip) {
        Message m = { .type = MSG_CHECKPOINT }, d = {};
        uint8_t *buf;
        size_t size;

        message_set_u32(&m, TAG_PID, 4242);
        cr_assert_eq(message_set_string(&m, TAG_DUMP_DIR, "/var/lib/memcr"), 0);
        cr_assert_eq(message_set_string(&m, TAG_CODEC, "lz4"), 0);
        message_set_u64(&m, TAG_TIMEOUT_MSEC, 30000);
        message_set_u32(&m, TAG_FLAGS, REQUEST_FLAG_PROGRESS | REQUEST_FLAG_INTERACTIVE);
        cr_assert_eq(message_encode(&m, &buf, &size), 0);
        decode_frame(buf, size, &d, 0);
        cr_assert_eq(d.type, MSG_CHECKPOINT);
        cr_assert_eq(d.pid, 4242);
        cr_assert_str_eq(d.dump_dir, "/var/lib/memcr");
        cr_assert_str_eq(d.codec, "lz4");
        cr_assert_eq(d.timeout_msec, 30000);
        cr_assert_eq(d.flags, REQUEST_FLAG_PROGRESS | REQUEST_FLAG_INTERACTIVE);
        cr_assert_eq(d.present, m.present);
        free(buf);
        message_done(&m);
        message_done(&d);
}

Test(protocol, list_reply_with_entries) {
        Message m = { .type = MSG_REPLY }, d = {};
        uint8_t *buf;
        size_t size;

        message_set_u32(&m, TAG_RESULT, MEMCR_OK);
        for (int i = 0; i < 100; i++) {
                Message *e = message_add_entry(&m);
                cr_assert_not_null(e);
                message_set_u32(e, TAG_PID, (uint32_t) (1000 + i));
                cr_assert_eq(message_set_string(e, TAG_COMM, "firefox"), 0);
                message_set_u64(e, TAG_DUMP_BYTES, (uint64_t) i << 30);
        }
        cr_assert_eq(message_encode(&m, &buf, &size), 0);
        decode_frame(buf, size, &d, 0);
        cr_assert_eq(d.n_entries, 100);
        cr_assert_eq(d.entries[99].pid, 1099);
        cr_assert_eq(d.entries[42].dump_bytes, (uint64_t) 42 << 30);
        cr_assert_str_eq(d.entries[7].comm, "firefox");
        free(buf);
        message_done(&m);
        message_done(&d);
}

/* Build a raw frame: header fields and payload as given. */
static size_t raw_frame(uint8_t *buf, uint32_t magic, uint16_t version, uint16_t type, const void *payload,
                        uint32_t len, uint32_t claimed_len) {
        uint32_t v32 = htole32(magic);
        memcpy(buf, &v32, 4);
        uint16_t v16 = htole16(version);
        memcpy(buf + 4, &v16, 2);
        v16 = htole16(type);
        memcpy(buf + 6, &v16, 2);
        v32 = htole32(claimed_len);
        memcpy(buf + 8, &v32, 4);
        memset(buf + 12, 0, 4);
        if (len > 0)
                memcpy(buf + 16, payload, len);
        return 16 + len;
}

Test(protocol, malformed_frames_are_refused) {
        uint8_t buf[256];
        Message d = {};
        const uint8_t pid_field[] = { 1, 0, 4, 0, 0x10, 0, 0, 0 };
        const uint8_t short_pid[] = { 1, 0, 2, 0, 0x10, 0 };
        const uint8_t dup_pid[] = { 1, 0, 4, 0, 1, 0, 0, 0, 1, 0, 4, 0, 2, 0, 0, 0 };
        const uint8_t unknown_tag[] = { 1, 0, 4, 0, 1, 0, 0, 0, 200, 0, 0, 0 };
        const uint8_t truncated[] = { 1, 0, 8, 0, 1, 0, 0, 0 };
        const uint8_t zero_pid[] = { 1, 0, 4, 0, 0, 0, 0, 0 };
        const uint8_t nul_string[] = { 1, 0, 4, 0, 1, 0, 0, 0, 2, 0, 3, 0, 'a', 0, 'b' };
        const uint8_t bad_flags[] = { 1, 0, 4, 0, 1, 0, 0, 0, 6, 0, 4, 0, 0, 0, 0, 0x80 };
        const uint8_t entry_in_request[] = { 26, 0, 0, 0 };
        size_t n;

        /* Header problems. */
        n = raw_frame(buf, 0xdeadbeef, 1, MSG_CHECKPOINT, pid_field, 8, 8);
        decode_frame(buf, n, &d, -EBADMSG);
        n = raw_frame(buf, MEMCR_PROTOCOL_MAGIC, 2, MSG_CHECKPOINT, pid_field, 8, 8);
        decode_frame(buf, n, &d, -EPROTONOSUPPORT);
        n = raw_frame(buf, MEMCR_PROTOCOL_MAGIC, 1, MSG_CHECKPOINT, pid_field, 8, MEMCR_MAX_PAYLOAD + 1);
        uint16_t t;
        uint32_t l;
        cr_assert_eq(frame_header_parse(buf, &t, &l), -EMSGSIZE);
        buf[12] = 1; /* reserved */
        cr_assert_eq(frame_header_parse(buf, &t, &l), -EBADMSG);

        /* Payload problems. */
        n = raw_frame(buf, MEMCR_PROTOCOL_MAGIC, 1, 999, pid_field, 8, 8);
        decode_frame(buf, n, &d, -EOPNOTSUPP);
        n = raw_frame(buf, MEMCR_PROTOCOL_MAGIC, 1, MSG_CHECKPOINT, short_pid, sizeof(short_pid), sizeof(short_pid));
        decode_frame(buf, n, &d, -EBADMSG);
        n = raw_frame(buf, MEMCR_PROTOCOL_MAGIC, 1, MSG_CHECKPOINT, dup_pid, sizeof(dup_pid), sizeof(dup_pid));
        decode_frame(buf, n, &d, -EBADMSG);
        n = raw_frame(buf, MEMCR_PROTOCOL_MAGIC, 1, MSG_CHECKPOINT, unknown_tag, sizeof(unknown_tag), sizeof(unknown_tag));
        decode_frame(buf, n, &d, -EBADMSG);
        n = raw_frame(buf, MEMCR_PROTOCOL_MAGIC, 1, MSG_CHECKPOINT, truncated, sizeof(truncated), sizeof(truncated));
        decode_frame(buf, n, &d, -EBADMSG);
        n = raw_frame(buf, MEMCR_PROTOCOL_MAGIC, 1, MSG_CHECKPOINT, zero_pid, sizeof(zero_pid), sizeof(zero_pid));
        decode_frame(buf, n, &d, -EBADMSG);
        n = raw_frame(buf, MEMCR_PROTOCOL_MAGIC, 1, MSG_CHECKPOINT, nul_string, sizeof(nul_string), sizeof(nul_string));
        decode_frame(buf, n, &d, -EBADMSG);
        n = raw_frame(buf, MEMCR_PROTOCOL_MAGIC, 1, MSG_CHECKPOINT, bad_flags, sizeof(bad_flags), sizeof(bad_flags));
        decode_frame(buf, n, &d, -EBADMSG);
        n = raw_frame(buf, MEMCR_PROTOCOL_MAGIC, 1, MSG_LIST, entry_in_request, sizeof(entry_in_request), sizeof(entry_in_request));
        decode_frame(buf, n, &d, -EBADMSG);
        /* Missing required PID. */
        n = raw_frame(buf, MEMCR_PROTOCOL_MAGIC, 1, MSG_RESTORE, NULL, 0, 0);
        decode_frame(buf, n, &d, -EBADMSG);
        /* A restore does not take a dump directory. */
        const uint8_t restore_dir[] = { 1, 0, 4, 0, 1, 0, 0, 0, 2, 0, 1, 0, '/' };
        n = raw_frame(buf, MEMCR_PROTOCOL_MAGIC, 1, MSG_RESTORE, restore_dir, sizeof(restore_dir), sizeof(restore_dir));
        decode_frame(buf, n, &d, -EBADMSG);
        /* Valid: empty LIST. */
        n = raw_frame(buf, MEMCR_PROTOCOL_MAGIC, 1, MSG_LIST, NULL, 0, 0);
        decode_frame(buf, n, &d, 0);
        message_done(&d);
}

Test(protocol, send_and_receive_with_descriptor) {
        int sv[2], fds[2], pipefd[2];
        size_t n_fds = 0;
        Message m = { .type = MSG_CHECKPOINT }, d = {};

        cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        cr_assert_eq(pipe2(pipefd, O_CLOEXEC), 0);
        message_set_u32(&m, TAG_PID, 77);
        cr_assert_eq(message_send(sv[0], &m, &pipefd[1], 1), 0);
        cr_assert_eq(message_recv(sv[1], &d, fds, 2, &n_fds), 0);
        cr_assert_eq(d.pid, 77);
        cr_assert_eq(n_fds, 1);
        cr_assert_geq(fds[0], 0);
        cr_assert_eq(fds[1], -EBADF);
        cr_assert_eq(write(fds[0], "x", 1), 1);
        char c;
        cr_assert_eq(read(pipefd[0], &c, 1), 1);
        close(fds[0]);

        /* The peer goes away mid-frame. */
        cr_assert_eq(write(sv[0], "MCR1", 4), 4);
        close(sv[0]);
        cr_assert_eq(message_recv(sv[1], &d, fds, 0, NULL), -ECONNRESET);
        close(sv[1]);
        close(pipefd[0]);
        close(pipefd[1]);
        message_done(&m);
        message_done(&d);
}

Test(protocol, result_mapping) {
        cr_assert_eq(memcr_result_from_errno(0), MEMCR_OK);
        cr_assert_eq(memcr_result_from_errno(-EPERM), MEMCR_ERR_DENIED);
        cr_assert_eq(memcr_result_from_errno(-ESRCH), MEMCR_ERR_NO_PROCESS);
        cr_assert_eq(memcr_result_from_errno(-ENOENT), MEMCR_ERR_NOT_FROZEN);
        cr_assert_eq(memcr_result_from_errno(-EALREADY), MEMCR_ERR_ALREADY_FROZEN);
        cr_assert_eq(memcr_result_from_errno(-EIO), MEMCR_ERR_FAILED);
        cr_assert_str_eq(memcr_result_to_string(MEMCR_ERR_DENIED), "denied");
}

Test(protocol, result_errno_and_text_of_a_reply) {
        Message m = { .type = MSG_REPLY }, bare = { .type = MSG_REPLY };

        message_set_result(&m, MEMCR_ERR_NO_PROCESS, -ESRCH, "no process 42");
        cr_assert(MESSAGE_HAS(&m, TAG_RESULT) && MESSAGE_HAS(&m, TAG_ERRNO) && MESSAGE_HAS(&m, TAG_MESSAGE));
        cr_assert_eq(m.result, MEMCR_ERR_NO_PROCESS);
        cr_assert_eq(m.error, (uint32_t) ESRCH);
        cr_assert_str_eq(m.message, "no process 42");
        message_set_result(&m, MEMCR_ERR_TIMEOUT, ETIMEDOUT, "late");
        cr_assert_eq(m.result, MEMCR_ERR_TIMEOUT);
        cr_assert_eq(m.error, (uint32_t) ETIMEDOUT);
        cr_assert_str_eq(m.message, "late");

        message_set_result(&bare, MEMCR_OK, 0, NULL);
        cr_assert_eq(bare.present, UINT64_C(1) << TAG_RESULT);
        cr_assert_eq(bare.result, MEMCR_OK);
        message_done(&m);
        message_done(&bare);
}

/* A limit of memcrd's reached is "busy": try again later. */
Test(protocol, limit_is_busy) {
        cr_assert_eq(memcr_result_from_errno(-EUSERS), MEMCR_ERR_BUSY);
}

/* Every time a request names is bounded: nothing that overflows the
 * microseconds and timers it ends up in gets through. */
Test(protocol, request_values_are_bounded) {
        static const uint16_t types[] = { MSG_CHECKPOINT, MSG_RESTORE, MSG_STATUS };
        char buf[256];

        for (size_t i = 0; i < ELEMENTSOF(types); i++) {
                Message m = { .type = types[i] };

                message_set_u32(&m, TAG_PID, 42);
                cr_assert_eq(request_check_values(&m, buf, sizeof(buf)), 0);
                message_set_u64(&m, TAG_TIMEOUT_MSEC, MEMCR_MAX_TIMEOUT_MSEC);
                cr_assert_eq(request_check_values(&m, buf, sizeof(buf)), 0);
                message_set_u64(&m, TAG_TIMEOUT_MSEC, MEMCR_MAX_TIMEOUT_MSEC + 1);
                cr_assert_eq(request_check_values(&m, buf, sizeof(buf)), -EINVAL);
                cr_assert_not_null(strstr(buf, "time limit of 315360000001 ms is out of range"), "%s", buf);
                message_set_u64(&m, TAG_TIMEOUT_MSEC, UINT64_MAX);
                cr_assert_eq(request_check_values(&m, buf, sizeof(buf)), -EINVAL);
                message_done(&m);
        }

        Message m = { .type = MSG_CHECKPOINT };
        message_set_u32(&m, TAG_PID, 42);
        message_set_u64(&m, TAG_MAX_FROZEN_SEC, MEMCR_MAX_FROZEN_SEC);
        cr_assert_eq(request_check_values(&m, buf, sizeof(buf)), 0);
        /* 2^63 + 1: accepted once, then the watcher's timer failed. */
        message_set_u64(&m, TAG_MAX_FROZEN_SEC, (UINT64_C(1) << 63) + 1);
        cr_assert_eq(request_check_values(&m, buf, sizeof(buf)), -EINVAL);
        cr_assert_not_null(strstr(buf, "maximum frozen time of 9223372036854775809 s is out of range (at most "
                                       "315360000 s, 10 years)"),
                           "%s", buf);
        message_set_u64(&m, TAG_MAX_FROZEN_SEC, 0);
        message_set_u32(&m, TAG_FLAGS, REQUEST_FLAG_LAZY | REQUEST_FLAG_EAGER);
        cr_assert_eq(request_check_values(&m, buf, sizeof(buf)), -EINVAL);
        message_set_u32(&m, TAG_FLAGS, REQUEST_FLAG_LAZY);
        cr_assert_eq(request_check_values(&m, buf, sizeof(buf)), 0);
        message_done(&m);
}
