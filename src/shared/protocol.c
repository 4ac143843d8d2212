/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <endian.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "fileio.h"
#include "macro.h"
#include "protocol.h"
#include "string-table.h"

typedef enum FieldKind {
        KIND_NONE,
        KIND_U32,
        KIND_U64,
        KIND_STRING,
        KIND_NESTED,
} FieldKind;

/* What each field is, and where it lives in a Message. */
typedef struct Field {
        FieldKind kind;
        size_t offset;
} Field;

/* 0, and a compile error unless Message's member is of type t. */
#define MEMBER_OF_TYPE(member, t)                                                                  \
        (0 * sizeof(char[__builtin_types_compatible_p(__typeof__(((Message *) 0)->member), t) ? 1 : -1]))
#define FIELD(k, t, member) { .kind = k, .offset = offsetof(Message, member) + MEMBER_OF_TYPE(member, t) }
#define U32(member) FIELD(KIND_U32, uint32_t, member)
#define U64(member) FIELD(KIND_U64, uint64_t, member)
#define STRING(member) FIELD(KIND_STRING, char *, member)

static const Field fields[_TAG_MAX] = {
        [TAG_PID] = U32(pid),
        [TAG_DUMP_DIR] = STRING(dump_dir),
        [TAG_CODEC] = STRING(codec),
        [TAG_TIMEOUT_MSEC] = U64(timeout_msec),
        [TAG_MAX_FROZEN_SEC] = U64(max_frozen_sec),
        [TAG_FLAGS] = U32(flags),
        [TAG_RESULT] = U32(result),
        [TAG_ERRNO] = U32(error),
        [TAG_MESSAGE] = STRING(message),
        [TAG_STATE] = STRING(state),
        [TAG_COMM] = STRING(comm),
        [TAG_UID] = U32(uid),
        [TAG_CALLER_UID] = U32(caller_uid),
        [TAG_SINCE_USEC] = U64(since_usec),
        [TAG_RSS_BEFORE] = U64(rss_before),
        [TAG_RSS_AFTER] = U64(rss_after),
        [TAG_DUMP_BYTES] = U64(dump_bytes),
        [TAG_DUMP_FILE_BYTES] = U64(dump_file_bytes),
        [TAG_DURATION_USEC] = U64(duration_usec),
        [TAG_DONE] = U64(done),
        [TAG_TOTAL] = U64(total),
        [TAG_VERSION] = STRING(version),
        [TAG_WATCHER_PID] = U32(watcher_pid),
        [TAG_THREADS] = U32(threads),
        [TAG_PROTECTION] = STRING(protection),
        [TAG_ENTRY] = { .kind = KIND_NESTED },
        [TAG_AUTH_IDENTITY] = STRING(auth_identity),
};

#define BIT(t) (UINT64_C(1) << (t))

#define INFO_TAGS MESSAGE_INFO_FIELDS

static bool type_known(uint16_t type, uint64_t *ret_allowed, uint64_t *ret_required) {
        uint64_t allowed, required = 0;

        switch (type) {
        case MSG_CHECKPOINT:
                allowed = BIT(TAG_PID) | BIT(TAG_DUMP_DIR) | BIT(TAG_CODEC) | BIT(TAG_TIMEOUT_MSEC) |
                          BIT(TAG_MAX_FROZEN_SEC) | BIT(TAG_FLAGS) | BIT(TAG_CALLER_UID) |
                          BIT(TAG_AUTH_IDENTITY);
                required = BIT(TAG_PID);
                break;
        case MSG_RESTORE:
        case MSG_STATUS:
                allowed = BIT(TAG_PID) | BIT(TAG_FLAGS) | BIT(TAG_TIMEOUT_MSEC);
                required = BIT(TAG_PID);
                break;
        case MSG_LIST:
        case MSG_VERSION:
                allowed = BIT(TAG_FLAGS);
                break;
        case MSG_ABORT:
                allowed = BIT(TAG_PID);
                break;
        case MSG_REPLY:
                allowed = INFO_TAGS | BIT(TAG_RESULT) | BIT(TAG_ERRNO) | BIT(TAG_MESSAGE) |
                          BIT(TAG_DURATION_USEC) | BIT(TAG_VERSION) | BIT(TAG_ENTRY);
                required = BIT(TAG_RESULT);
                break;
        case MSG_PROGRESS:
                allowed = BIT(TAG_PID) | BIT(TAG_DONE) | BIT(TAG_TOTAL);
                required = BIT(TAG_DONE) | BIT(TAG_TOTAL);
                break;
        default:
                return false;
        }
        *ret_allowed = allowed;
        *ret_required = required;
        return true;
}

/* The field of m for tag if it is of that kind, else NULL. */
static void *field(Message *m, FieldTag tag, FieldKind kind) {
        if ((unsigned) tag >= _TAG_MAX || fields[tag].kind != kind)
                return NULL;
        return (uint8_t *) m + fields[tag].offset;
}

static char **string_field(Message *m, FieldTag tag) {
        return field(m, tag, KIND_STRING);
}

static uint32_t *u32_field(Message *m, FieldTag tag) {
        return field(m, tag, KIND_U32);
}

static uint64_t *u64_field(Message *m, FieldTag tag) {
        return field(m, tag, KIND_U64);
}

/* An integer field: its width on the wire (little-endian), its value. */
static size_t int_size(FieldKind kind) {
        return kind == KIND_U32 ? sizeof(uint32_t) : sizeof(uint64_t);
}

static uint64_t int_get(const Message *m, FieldTag tag) {
        uint32_t *f = u32_field((Message *) m, tag);
        return f ? *f : *u64_field((Message *) m, tag);
}

static void int_set(Message *m, FieldTag tag, uint64_t v) {
        if (fields[tag].kind == KIND_U32)
                message_set_u32(m, tag, (uint32_t) v);
        else
                message_set_u64(m, tag, v);
}

void message_done(Message *m) {
        if (!m)
                return;
        for (int t = 0; t < _TAG_MAX; t++) {
                char **s = string_field(m, (FieldTag) t);
                if (s)
                        free(*s);
        }
        for (size_t i = 0; i < m->n_entries; i++)
                message_done(&m->entries[i]);
        free(m->entries);
        *m = (Message) {};
}

int message_set_string(Message *m, FieldTag tag, const char *s) {
        char **f = string_field(m, tag);
        char *c;

        assert(f);
        assert(s);
        c = strndup(s, MEMCR_MAX_STRING);
        if (!c)
                return -ENOMEM;
        free(*f);
        *f = c;
        m->present |= BIT(tag);
        return 0;
}

void message_set_u32(Message *m, FieldTag tag, uint32_t v) {
        uint32_t *f = u32_field(m, tag);
        assert(f);
        *f = v;
        m->present |= BIT(tag);
}

void message_set_u64(Message *m, FieldTag tag, uint64_t v) {
        uint64_t *f = u64_field(m, tag);
        assert(f);
        *f = v;
        m->present |= BIT(tag);
}

void message_set_result(Message *m, MemcrResult result, int error, const char *text) {
        message_set_u32(m, TAG_RESULT, result);
        if (error != 0)
                message_set_u32(m, TAG_ERRNO, (uint32_t) abs(error));
        if (text)
                (void) message_set_string(m, TAG_MESSAGE, text);
}

int message_copy_fields(Message *dst, const Message *src, uint64_t mask) {
        int r;

        for (int t = 1; t < _TAG_MAX; t++) {
                if (!(mask & BIT(t)) || !MESSAGE_HAS(src, t))
                        continue;
                switch (fields[t].kind) {
                case KIND_U32:
                        message_set_u32(dst, (FieldTag) t, *u32_field((Message *) src, (FieldTag) t));
                        break;
                case KIND_U64:
                        message_set_u64(dst, (FieldTag) t, *u64_field((Message *) src, (FieldTag) t));
                        break;
                case KIND_STRING: {
                        const char *v = *string_field((Message *) src, (FieldTag) t);
                        r = message_set_string(dst, (FieldTag) t, v ?: "");
                        if (r < 0)
                                return r;
                        break;
                }
                default:
                        break; /* entries are not copied */
                }
        }
        return 0;
}

Message *message_add_entry(Message *m) {
        Message *p;

        if (m->n_entries >= MEMCR_MAX_ENTRIES)
                return NULL;
        p = realloc(m->entries, (m->n_entries + 1) * sizeof(Message));
        if (!p)
                return NULL;
        m->entries = p;
        m->entries[m->n_entries] = (Message) {};
        m->present |= BIT(TAG_ENTRY);
        return &m->entries[m->n_entries++];
}

typedef struct Buffer {
        uint8_t *data;
        size_t size;
        size_t allocated;
} Buffer;

static int buffer_put(Buffer *b, const void *p, size_t n) {
        if (b->size + n > MEMCR_FRAME_HEADER_SIZE + MEMCR_MAX_PAYLOAD)
                return -E2BIG;
        if (b->size + n > b->allocated) {
                size_t a = MAX(b->allocated * 2, b->size + n + 256);
                uint8_t *d = realloc(b->data, a);
                if (!d)
                        return -ENOMEM;
                b->data = d;
                b->allocated = a;
        }
        memcpy(b->data + b->size, p, n);
        b->size += n;
        return 0;
}

static int put_field_header(Buffer *b, uint16_t tag, size_t len) {
        uint16_t h[2] = { htole16(tag), htole16((uint16_t) len) };
        if (len > UINT16_MAX)
                return -E2BIG;
        return buffer_put(b, h, sizeof(h));
}

static int encode_fields(const Message *m, Buffer *b, bool nested) {
        int r;

        for (int t = 1; t < _TAG_MAX; t++) {
                if (!MESSAGE_HAS(m, t))
                        continue;
                switch (fields[t].kind) {
                case KIND_U32:
                case KIND_U64: {
                        size_t n = int_size(fields[t].kind);
                        uint64_t v = int_get(m, (FieldTag) t);
                        uint8_t le[sizeof(uint64_t)];
                        for (size_t i = 0; i < n; i++)
                                le[i] = (uint8_t) (v >> (8 * i));
                        r = put_field_header(b, (uint16_t) t, n);
                        if (r >= 0)
                                r = buffer_put(b, le, n);
                        break;
                }
                case KIND_STRING: {
                        const char *s = *string_field((Message *) m, (FieldTag) t);
                        size_t l = s ? strlen(s) : 0;
                        if (l > MEMCR_MAX_STRING)
                                return -E2BIG;
                        r = put_field_header(b, (uint16_t) t, l);
                        if (r >= 0 && l > 0)
                                r = buffer_put(b, s, l);
                        break;
                }
                case KIND_NESTED:
                        if (nested)
                                return -EINVAL;
                        r = 0;
                        for (size_t i = 0; i < m->n_entries && r >= 0; i++) {
                                Buffer e = {};
                                r = encode_fields(&m->entries[i], &e, true);
                                if (r >= 0)
                                        r = put_field_header(b, TAG_ENTRY, e.size);
                                if (r >= 0 && e.size > 0)
                                        r = buffer_put(b, e.data, e.size);
                                free(e.data);
                        }
                        break;
                default:
                        return -EINVAL;
                }
                if (r < 0)
                        return r;
        }
        return 0;
}

int message_encode(const Message *m, uint8_t **ret, size_t *ret_size) {
        Buffer b = {};
        uint8_t hdr[MEMCR_FRAME_HEADER_SIZE] = {};
        uint32_t v32;
        uint16_t v16;
        int r;

        r = buffer_put(&b, hdr, sizeof(hdr));
        if (r >= 0)
                r = encode_fields(m, &b, false);
        if (r < 0) {
                free(b.data);
                return r;
        }
        if (b.size - MEMCR_FRAME_HEADER_SIZE > MEMCR_MAX_PAYLOAD) {
                free(b.data);
                return -E2BIG;
        }
        v32 = htole32(MEMCR_PROTOCOL_MAGIC);
        memcpy(b.data, &v32, 4);
        v16 = htole16(MEMCR_PROTOCOL_VERSION);
        memcpy(b.data + 4, &v16, 2);
        v16 = htole16(m->type);
        memcpy(b.data + 6, &v16, 2);
        v32 = htole32((uint32_t) (b.size - MEMCR_FRAME_HEADER_SIZE));
        memcpy(b.data + 8, &v32, 4);
        *ret = b.data;
        *ret_size = b.size;
        return 0;
}

int frame_header_parse(const uint8_t hdr[MEMCR_FRAME_HEADER_SIZE], uint16_t *ret_type,
                       uint32_t *ret_length) {
        uint32_t magic, length, reserved;
        uint16_t version, type;

        memcpy(&magic, hdr, 4);
        memcpy(&version, hdr + 4, 2);
        memcpy(&type, hdr + 6, 2);
        memcpy(&length, hdr + 8, 4);
        memcpy(&reserved, hdr + 12, 4);
        if (le32toh(magic) != MEMCR_PROTOCOL_MAGIC || reserved != 0)
                return -EBADMSG;
        if (le16toh(version) != MEMCR_PROTOCOL_VERSION)
                return -EPROTONOSUPPORT;
        if (le32toh(length) > MEMCR_MAX_PAYLOAD)
                return -EMSGSIZE;
        *ret_type = le16toh(type);
        *ret_length = le32toh(length);
        return 0;
}

static int decode_fields(const uint8_t *p, size_t size, uint64_t allowed, bool nested, Message *m) {
        size_t off = 0;
        int r;

        while (off < size) {
                uint16_t tag, len;

                if (size - off < 4)
                        return -EBADMSG;
                memcpy(&tag, p + off, 2);
                memcpy(&len, p + off + 2, 2);
                tag = le16toh(tag);
                len = le16toh(len);
                off += 4;
                if (len > size - off)
                        return -EBADMSG;
                if (tag == 0 || tag >= _TAG_MAX || !(allowed & BIT(tag)))
                        return -EBADMSG;
                if (tag != TAG_ENTRY && MESSAGE_HAS(m, tag))
                        return -EBADMSG; /* duplicate */

                switch (fields[tag].kind) {
                case KIND_U32:
                case KIND_U64: {
                        uint64_t v = 0;
                        if (len != int_size(fields[tag].kind))
                                return -EBADMSG;
                        for (size_t i = 0; i < len; i++)
                                v |= (uint64_t) p[off + i] << (8 * i);
                        int_set(m, (FieldTag) tag, v);
                        break;
                }
                case KIND_STRING: {
                        char *s;
                        if (len > MEMCR_MAX_STRING || memchr(p + off, 0, len))
                                return -EBADMSG;
                        s = strndup((const char *) p + off, len);
                        if (!s)
                                return -ENOMEM;
                        free(*string_field(m, (FieldTag) tag));
                        *string_field(m, (FieldTag) tag) = s;
                        m->present |= BIT(tag);
                        break;
                }
                case KIND_NESTED: {
                        Message *e;
                        if (nested)
                                return -EBADMSG;
                        e = message_add_entry(m);
                        if (!e)
                                return m->n_entries >= MEMCR_MAX_ENTRIES ? -EBADMSG : -ENOMEM;
                        r = decode_fields(p + off, len, INFO_TAGS, true, e);
                        if (r < 0)
                                return r;
                        break;
                }
                default:
                        return -EBADMSG;
                }
                off += len;
        }
        return 0;
}

int message_decode(uint16_t type, const uint8_t *payload, size_t size, Message *ret) {
        Message m = { .type = type };
        uint64_t allowed, required;
        int r;

        if (!type_known(type, &allowed, &required))
                return -EOPNOTSUPP;
        if (size > MEMCR_MAX_PAYLOAD)
                return -EMSGSIZE;
        r = decode_fields(payload, size, allowed, false, &m);
        if (r >= 0 && (m.present & required) != required)
                r = -EBADMSG;
        if (r >= 0 && MESSAGE_HAS(&m, TAG_FLAGS) && (m.flags & ~_REQUEST_FLAGS_ALL))
                r = -EBADMSG;
        if (r >= 0 && MESSAGE_HAS(&m, TAG_PID) && (m.pid == 0 || m.pid > INT32_MAX))
                r = -EBADMSG;
        if (r >= 0 && MESSAGE_HAS(&m, TAG_RESULT) && m.result >= _MEMCR_RESULT_MAX)
                r = -EBADMSG;
        if (r < 0) {
                message_done(&m);
                return r;
        }
        *ret = m;
        return 0;
}

int message_send(int fd, const Message *m, const int *fds, size_t n_fds) {
        _cleanup_free_ uint8_t *buf = NULL;
        size_t size, done = 0;
        int r;

        assert(n_fds <= 4);
        r = message_encode(m, &buf, &size);
        if (r < 0)
                return r;

        /* The descriptors go with the first bytes. */
        while (done < size) {
                union {
                        struct cmsghdr h;
                        char buf[CMSG_SPACE(sizeof(int) * 4)];
                } control = {};
                struct iovec iov = { buf + done, size - done };
                struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

                if (done == 0 && n_fds > 0) {
                        struct cmsghdr *c;

                        mh.msg_control = &control;
                        mh.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
                        c = CMSG_FIRSTHDR(&mh);
                        c->cmsg_level = SOL_SOCKET;
                        c->cmsg_type = SCM_RIGHTS;
                        c->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
                        memcpy(CMSG_DATA(c), fds, sizeof(int) * n_fds);
                }
                ssize_t k = sendmsg(fd, &mh, MSG_NOSIGNAL);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                done += (size_t) k;
        }
        return 0;
}

int message_recv(int fd, Message *ret, int *ret_fds, size_t max_fds, size_t *ret_n_fds) {
        uint8_t hdr[MEMCR_FRAME_HEADER_SIZE];
        _cleanup_free_ uint8_t *payload = NULL;
        size_t got = 0, n_fds = 0;
        uint16_t type;
        uint32_t length;
        int r;

        for (size_t i = 0; i < max_fds; i++)
                ret_fds[i] = -EBADF;

        /* The header comes with the descriptors, if any. */
        while (got < sizeof(hdr)) {
                union {
                        struct cmsghdr h;
                        char buf[CMSG_SPACE(sizeof(int) * 4)];
                } control = {};
                struct iovec iov = { hdr + got, sizeof(hdr) - got };
                struct msghdr mh = {
                        .msg_iov = &iov,
                        .msg_iovlen = 1,
                        .msg_control = &control,
                        .msg_controllen = sizeof(control),
                };
                ssize_t k = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        goto fail;
                }
                for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
                        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                                continue;
                        size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                        int *p = (int *) CMSG_DATA(c);
                        for (size_t i = 0; i < n; i++) {
                                if (n_fds < max_fds)
                                        ret_fds[n_fds++] = p[i];
                                else
                                        safe_close(p[i]);
                        }
                }
                if (k == 0) {
                        r = -ECONNRESET;
                        goto fail;
                }
                got += (size_t) k;
        }

        r = frame_header_parse(hdr, &type, &length);
        if (r < 0)
                goto fail;
        payload = malloc(MAX(length, 1u));
        if (!payload) {
                r = -ENOMEM;
                goto fail;
        }
        r = read_full(fd, payload, length);
        if (r < 0) {
                r = r == -EIO ? -ECONNRESET : r;
                goto fail;
        }
        r = message_decode(type, payload, length, ret);
        if (r < 0)
                goto fail;
        if (ret_n_fds)
                *ret_n_fds = n_fds;
        return 0;

fail:
        close_many(ret_fds, n_fds);
        return r;
}

int request_check_values(const Message *m, char *buf, size_t size) {
        if (MESSAGE_HAS(m, TAG_TIMEOUT_MSEC) && m->timeout_msec > MEMCR_MAX_TIMEOUT_MSEC) {
                snprintf(buf, size,
                         "time limit of %" PRIu64 " ms is out of range (at most %" PRIu64 " ms, 10 years)",
                         m->timeout_msec, MEMCR_MAX_TIMEOUT_MSEC);
                return -EINVAL;
        }
        if (MESSAGE_HAS(m, TAG_MAX_FROZEN_SEC) && m->max_frozen_sec > MEMCR_MAX_FROZEN_SEC) {
                snprintf(buf, size,
                         "maximum frozen time of %" PRIu64 " s is out of range (at most %" PRIu64 " s, 10 years)",
                         m->max_frozen_sec, MEMCR_MAX_FROZEN_SEC);
                return -EINVAL;
        }
        if (MESSAGE_HAS(m, TAG_FLAGS) && (m->flags & REQUEST_FLAG_LAZY) && (m->flags & REQUEST_FLAG_EAGER)) {
                snprintf(buf, size, "a request cannot ask for both a lazy and an eager restore");
                return -EINVAL;
        }
        return 0;
}

static const char *const memcr_result_table[_MEMCR_RESULT_MAX] = {
        [MEMCR_OK] = "ok",
        [MEMCR_ERR_FAILED] = "failed",
        [MEMCR_ERR_DENIED] = "denied",
        [MEMCR_ERR_NO_PROCESS] = "no-such-process",
        [MEMCR_ERR_NOT_FROZEN] = "not-frozen",
        [MEMCR_ERR_ALREADY_FROZEN] = "already-frozen",
        [MEMCR_ERR_INVALID] = "invalid-request",
        [MEMCR_ERR_BUSY] = "busy",
        [MEMCR_ERR_TIMEOUT] = "timeout",
        [MEMCR_ERR_KILLED] = "killed",
        [MEMCR_ERR_UNSUPPORTED] = "unsupported",
};

DEFINE_STRING_TABLE_TO_STRING(memcr_result, MemcrResult, "unknown");

MemcrResult memcr_result_from_errno(int error) {
        switch (abs(error)) {
        case 0:
                return MEMCR_OK;
        case EPERM:
        case EACCES:
                return MEMCR_ERR_DENIED;
        case ESRCH:
                return MEMCR_ERR_NO_PROCESS;
        case ENOENT:
                return MEMCR_ERR_NOT_FROZEN;
        case EALREADY:
                return MEMCR_ERR_ALREADY_FROZEN;
        case EINVAL:
        case EBADMSG:
        case EMSGSIZE:
        case EPROTONOSUPPORT:
                return MEMCR_ERR_INVALID;
        case EBUSY:
        case EAGAIN:
        case EUSERS:
                return MEMCR_ERR_BUSY;
        case ETIME:
        case ETIMEDOUT:
                return MEMCR_ERR_TIMEOUT;
        case EOPNOTSUPP:
                return MEMCR_ERR_UNSUPPORTED;
        default:
                return MEMCR_ERR_FAILED;
        }
}

const char *message_type_to_string(uint16_t type) {
        switch (type) {
        case MSG_CHECKPOINT:
                return "checkpoint";
        case MSG_RESTORE:
                return "restore";
        case MSG_LIST:
                return "list";
        case MSG_STATUS:
                return "status";
        case MSG_VERSION:
                return "version";
        case MSG_ABORT:
                return "abort";
        case MSG_REPLY:
                return "reply";
        case MSG_PROGRESS:
                return "progress";
        default:
                return "unknown";
        }
}
