/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * What the journal receives from log.c. Each test runs in a mount namespace
 * of its own with a tmpfs on /run, where a datagram socket of the test sits
 * at /run/systemd/journal/socket: libsystemd's sd_journal_sendv() sends the
 * record there as it would to systemd-journald, and the test reads it back
 * in the journal's native protocol.
 */

#include <criterion/criterion.h>
#include <endian.h>
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"

#define JOURNAL_SOCKET "/run/systemd/journal/socket"
#define MAX_FIELDS 64

typedef struct Record {
        char buf[65536];
        char *name[MAX_FIELDS];
        char *value[MAX_FIELDS];
        size_t n;
} Record;

/* A socket of ours where libsystemd looks for the journal's. */
static int journal_socket_take_over(void) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX, .sun_path = JOURNAL_SOCKET };
        int fd;

        if (geteuid() != 0)
                cr_skip_test("needs root (a mount namespace with /run of its own)");
        cr_assert_eq(unshare(CLONE_NEWNS), 0, "unshare: %s", strerror(errno));
        cr_assert_eq(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0, "mount: %s", strerror(errno));
        cr_assert_eq(mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755"), 0,
                     "mount tmpfs on /run: %s", strerror(errno));
        cr_assert_eq(mkdir("/run/systemd", 0755), 0);
        cr_assert_eq(mkdir("/run/systemd/journal", 0755), 0);
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        cr_assert_geq(fd, 0);
        cr_assert_eq(bind(fd, (struct sockaddr *) &sa, sizeof(sa)), 0, "bind: %s", strerror(errno));
        return fd;
}

/* The one datagram sent so far, split into fields: NAME=value\n, or
 * NAME\n, a 64-bit little-endian length, the value and \n. */
static void record_receive(int fd, Record *ret) {
        ssize_t k;
        char *p, *end;

        k = recv(fd, ret->buf, sizeof(ret->buf) - 1, MSG_DONTWAIT);
        cr_assert_gt(k, 0, "no record on the journal socket: %s", k < 0 ? strerror(errno) : "empty");
        cr_assert_eq(recv(fd, (char[1]){}, 1, MSG_DONTWAIT), -1, "more than one record");
        ret->buf[k] = 0;
        ret->n = 0;
        for (p = ret->buf, end = ret->buf + k; p < end;) {
                char *nl = memchr(p, '\n', (size_t) (end - p)), *eq;

                cr_assert_not_null(nl, "unterminated field: %s", p);
                cr_assert_lt(ret->n, MAX_FIELDS);
                *nl = 0;
                eq = strchr(p, '=');
                ret->name[ret->n] = p;
                if (eq) {
                        *eq = 0;
                        ret->value[ret->n] = eq + 1;
                        p = nl + 1;
                } else {
                        uint64_t le, len;

                        cr_assert_leq(nl + 1 + sizeof(le), end);
                        memcpy(&le, nl + 1, sizeof(le));
                        len = le64toh(le);
                        cr_assert_leq(len, (uint64_t) (end - (nl + 1 + sizeof(le))) - 1);
                        ret->value[ret->n] = nl + 1 + sizeof(le);
                        ret->value[ret->n][len] = 0;
                        p = ret->value[ret->n] + len + 1;
                }
                ret->n++;
        }
}

static size_t record_count(const Record *r, const char *name) {
        size_t n = 0;

        for (size_t i = 0; i < r->n; i++)
                if (streq(r->name[i], name))
                        n++;
        return n;
}

static const char *record_get(const Record *r, const char *name) {
        cr_assert_eq(record_count(r, name), 1, "%s= %zu times in the record", name, record_count(r, name));
        for (size_t i = 0; i < r->n; i++)
                if (streq(r->name[i], name))
                        return r->value[i];
        return NULL;
}

/* Exactly one location, and it is the caller's. */
static void assert_location(const Record *r, int line, const char *func) {
        char l[16];

        cr_assert_str_eq(record_get(r, "CODE_FILE"), __FILE__);
        snprintf(l, sizeof(l), "%i", line);
        cr_assert_str_eq(record_get(r, "CODE_LINE"), l);
        cr_assert_str_eq(record_get(r, "CODE_FUNC"), func);
}

Test(log, message_carries_the_callers_location) {
        _cleanup_close_ int fd = journal_socket_take_over();
        Record *r = calloc(1, sizeof(Record));
        int line;

        cr_assert_not_null(r);
        log_set_target(LOG_TARGET_JOURNAL);
        line = __LINE__ + 1;
        log_info("Checkpointed %i.", 42);

        record_receive(fd, r);
        cr_assert_str_eq(record_get(r, "MESSAGE"), "Checkpointed 42.");
        cr_assert_str_eq(record_get(r, "PRIORITY"), "6");
        cr_assert_eq(record_count(r, "ERRNO"), 0);
        assert_location(r, line, __func__);
        free(r);
}

Test(log, structured_record_carries_the_callers_location) {
        _cleanup_close_ int fd = journal_socket_take_over();
        Record *r = calloc(1, sizeof(Record));
        const char *operation;
        int line, k;

        cr_assert_not_null(r);
        log_set_target(LOG_TARGET_JOURNAL);
        operation = LOG_FIELD("MEMCR_OPERATION", "%s", "restore");
        line = __LINE__ + 1;
        k = log_struct_errno(LOG_ERR, -ESRCH, "Restore failed.", "MEMCR_PID=42", operation, "MEMCR_EMPTY=", NULL);
        cr_assert_eq(k, -ESRCH);

        record_receive(fd, r);
        cr_assert_str_eq(record_get(r, "MESSAGE"), "Restore failed.");
        cr_assert_str_eq(record_get(r, "PRIORITY"), "3");
        cr_assert_str_eq(record_get(r, "ERRNO"), "3");
        cr_assert_str_eq(record_get(r, "MEMCR_PID"), "42");
        cr_assert_str_eq(record_get(r, "MEMCR_OPERATION"), "restore");
        cr_assert_eq(record_count(r, "MEMCR_EMPTY"), 0);
        assert_location(r, line, __func__);
        free(r);
}
