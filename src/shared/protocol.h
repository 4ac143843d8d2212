/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The memcr protocol (memcr-protocol(7)): spoken between memcrctl (or any
 * client) and memcrd, and between memcrd and its watchers.
 *
 * A frame is a 16-byte header followed by a payload of at most
 * MEMCR_MAX_PAYLOAD bytes. All integers are little-endian.
 *
 *   uint32 magic     "MCR1" (0x3152434d)
 *   uint16 version   MEMCR_PROTOCOL_VERSION
 *   uint16 type      MessageType
 *   uint32 length    payload bytes
 *   uint32 reserved  must be 0
 *
 * The payload is a sequence of fields: uint16 tag, uint16 length, value.
 * Integers are fixed size (see the tag table), strings are UTF-8 without a
 * terminating NUL and may not contain one. Every tag may appear at most once,
 * except ENTRY (a nested field sequence, one level deep, in LIST replies).
 * Anything else — unknown tags, wrong sizes, trailing bytes, a field a
 * message type does not take — makes the whole message invalid.
 *
 * The first four bytes on a connection also tell memcr's own client
 * protocol apart: an 8-byte {int32 cmd (100 checkpoint, 101 restore), int32
 * pid} request answered by one int32 (0 ok, -1 error, -2 invalid pid).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define MEMCR_PROTOCOL_MAGIC 0x3152434dU
#define MEMCR_PROTOCOL_VERSION 1
#define MEMCR_FRAME_HEADER_SIZE 16
#define MEMCR_MAX_PAYLOAD (64u * 1024u)
#define MEMCR_MAX_STRING 4096u
#define MEMCR_MAX_ENTRIES 4096u

/* The longest time a request may name, for its time limit and for its
 * automatic restore: 10 years. Anything longer is refused (a value near
 * 2^64 would overflow the microseconds, and the timers, it ends up in). */
#define MEMCR_MAX_SECONDS UINT64_C(315360000)
#define MEMCR_MAX_TIMEOUT_MSEC (MEMCR_MAX_SECONDS * 1000)
#define MEMCR_MAX_FROZEN_SEC MEMCR_MAX_SECONDS

/* memcr's client protocol */
#define MEMCR_COMPAT_CHECKPOINT 100
#define MEMCR_COMPAT_RESTORE 101
#define MEMCR_COMPAT_OK 0
#define MEMCR_COMPAT_ERROR (-1)
#define MEMCR_COMPAT_INVALID_PID (-2)

typedef enum MessageType {
        /* client -> memcrd, and memcrd -> watcher */
        MSG_CHECKPOINT = 1,
        MSG_RESTORE = 2,
        MSG_LIST = 3,
        MSG_STATUS = 4,
        MSG_VERSION = 5,
        /* memcrd -> watcher: abandon the checkpoint in progress */
        MSG_ABORT = 6,
        /* replies */
        MSG_REPLY = 0x100,
        MSG_PROGRESS = 0x101,
} MessageType;

typedef enum MemcrResult {
        MEMCR_OK = 0,
        MEMCR_ERR_FAILED = 1,
        MEMCR_ERR_DENIED = 2,
        MEMCR_ERR_NO_PROCESS = 3,
        MEMCR_ERR_NOT_FROZEN = 4,
        MEMCR_ERR_ALREADY_FROZEN = 5,
        MEMCR_ERR_INVALID = 6,
        MEMCR_ERR_BUSY = 7,
        MEMCR_ERR_TIMEOUT = 8,
        MEMCR_ERR_KILLED = 9,
        MEMCR_ERR_UNSUPPORTED = 10,
        _MEMCR_RESULT_MAX,
} MemcrResult;

typedef enum FieldTag {
        TAG_PID = 1,             /* u32 */
        TAG_DUMP_DIR = 2,        /* string */
        TAG_CODEC = 3,           /* string: none, lz4, zstd */
        TAG_TIMEOUT_MSEC = 4,    /* u64: time limit of this request */
        TAG_MAX_FROZEN_SEC = 5,  /* u64: restore automatically after */
        TAG_FLAGS = 6,           /* u32: REQUEST_FLAG_* */
        TAG_RESULT = 7,          /* u32: MemcrResult */
        TAG_ERRNO = 8,           /* u32: positive errno, details */
        TAG_MESSAGE = 9,         /* string */
        TAG_STATE = 10,          /* string: checkpointing, frozen, restoring, streaming */
        TAG_COMM = 11,           /* string */
        TAG_UID = 12,            /* u32: target's owner */
        TAG_CALLER_UID = 13,     /* u32: who checkpointed it */
        TAG_SINCE_USEC = 14,     /* u64: CLOCK_REALTIME when frozen */
        TAG_RSS_BEFORE = 15,     /* u64 bytes */
        TAG_RSS_AFTER = 16,      /* u64 bytes */
        TAG_DUMP_BYTES = 17,     /* u64: page bytes dumped */
        TAG_DUMP_FILE_BYTES = 18,/* u64: size of the dump file */
        TAG_DURATION_USEC = 19,  /* u64 */
        TAG_DONE = 20,           /* u64: progress (bytes; while streaming: back in memory) */
        TAG_TOTAL = 21,          /* u64: progress (bytes) */
        TAG_VERSION = 22,        /* string */
        TAG_WATCHER_PID = 23,    /* u32 */
        TAG_THREADS = 24,        /* u32 */
        TAG_PROTECTION = 25,     /* string: encrypt, auth */
        TAG_ENTRY = 26,          /* nested fields (LIST reply) */
        TAG_AUTH_IDENTITY = 27,  /* string: memcrd to watcher only: the target as it was authorized */
        _TAG_MAX,
} FieldTag;

enum {
        REQUEST_FLAG_INTERACTIVE = 1u << 0, /* polkit may ask for a password */
        REQUEST_FLAG_PROGRESS = 1u << 1,    /* send PROGRESS frames */
        REQUEST_FLAG_NO_ENCRYPT = 1u << 2,  /* authenticate the dump but do not encrypt it */
        /* restore: resume at once, stream memory back behind (checkpoint:
         * the default for this process's restore) */
        REQUEST_FLAG_LAZY = 1u << 3,
        REQUEST_FLAG_EAGER = 1u << 4,       /* restore: write everything back first */
        _REQUEST_FLAGS_ALL = (1u << 5) - 1,
};

typedef struct Message Message;
struct Message {
        uint16_t type;
        uint64_t present; /* bit per FieldTag */

        uint32_t pid;
        char *dump_dir;
        char *codec;
        uint64_t timeout_msec;
        uint64_t max_frozen_sec;
        uint32_t flags;
        uint32_t result;
        uint32_t error;
        char *message;
        char *state;
        char *comm;
        uint32_t uid;
        uint32_t caller_uid;
        uint64_t since_usec;
        uint64_t rss_before;
        uint64_t rss_after;
        uint64_t dump_bytes;
        uint64_t dump_file_bytes;
        uint64_t duration_usec;
        uint64_t done;
        uint64_t total;
        char *version;
        uint32_t watcher_pid;
        uint32_t threads;
        char *protection;
        char *auth_identity;

        Message *entries;
        size_t n_entries;
};

#define MESSAGE_HAS(m, tag) (((m)->present >> (tag)) & 1)

void message_done(Message *m);

/* Setters mark the field present. Strings are copied. */
int message_set_string(Message *m, FieldTag tag, const char *s);
void message_set_u32(Message *m, FieldTag tag, uint32_t v);
void message_set_u64(Message *m, FieldTag tag, uint64_t v);
/* A reply's outcome: the result, the errno unless error is 0 (either sign),
 * the sentence unless text is NULL (left out if it cannot be copied). */
void message_set_result(Message *m, MemcrResult result, int error, const char *text);
/* Copy the fields in mask (bits 1 << FieldTag; ENTRY excluded) present in src. */
int message_copy_fields(Message *dst, const Message *src, uint64_t mask);
/* The fields that describe a frozen process (status replies, list entries). */
#define MESSAGE_INFO_FIELDS                                                                         \
        ((UINT64_C(1) << TAG_PID) | (UINT64_C(1) << TAG_STATE) | (UINT64_C(1) << TAG_COMM) |       \
         (UINT64_C(1) << TAG_UID) | (UINT64_C(1) << TAG_CALLER_UID) |                               \
         (UINT64_C(1) << TAG_SINCE_USEC) | (UINT64_C(1) << TAG_RSS_BEFORE) |                        \
         (UINT64_C(1) << TAG_RSS_AFTER) | (UINT64_C(1) << TAG_DUMP_BYTES) |                         \
         (UINT64_C(1) << TAG_DUMP_FILE_BYTES) | (UINT64_C(1) << TAG_WATCHER_PID) |                  \
         (UINT64_C(1) << TAG_THREADS) | (UINT64_C(1) << TAG_PROTECTION) |                           \
         (UINT64_C(1) << TAG_CODEC) | (UINT64_C(1) << TAG_DONE) | (UINT64_C(1) << TAG_TOTAL) |      \
         (UINT64_C(1) << TAG_MAX_FROZEN_SEC))

/* Append an entry (for LIST replies); returns it, or NULL on OOM. */
Message *message_add_entry(Message *m);

/* Encode header + payload into a newly allocated buffer. -E2BIG if too big. */
int message_encode(const Message *m, uint8_t **ret, size_t *ret_size);

/* Validate a frame header; *ret_type and *ret_length on success.
 * -EBADMSG bad magic/reserved, -EPROTONOSUPPORT version, -EMSGSIZE too long. */
int frame_header_parse(const uint8_t hdr[MEMCR_FRAME_HEADER_SIZE], uint16_t *ret_type,
                       uint32_t *ret_length);

/* Decode a payload strictly for its message type. -EBADMSG if anything is off,
 * -EOPNOTSUPP for an unknown type. */
int message_decode(uint16_t type, const uint8_t *payload, size_t size, Message *ret);

/* Blocking I/O on a stream socket, with optional descriptors (SCM_RIGHTS).
 * A peer that closed its end is -EPIPE (never SIGPIPE) to message_send(). */
int message_send(int fd, const Message *m, const int *fds, size_t n_fds);
/* Receives one frame; up to max_fds descriptors in ret_fds (set to -EBADF if
 * none), *ret_n_fds their number. -ECONNRESET on EOF before a full frame. */
int message_recv(int fd, Message *ret, int *ret_fds, size_t max_fds, size_t *ret_n_fds);

/* The values of a decoded request's fields, beyond what decoding checks:
 * times within MEMCR_MAX_*, no contradictory flags. 0, or -EINVAL with a
 * sentence for the caller in buf. */
int request_check_values(const Message *m, char *buf, size_t size);

const char *memcr_result_to_string(MemcrResult r);
/* -EUSERS (a limit of memcrd's was reached) is MEMCR_ERR_BUSY. */
MemcrResult memcr_result_from_errno(int error);
const char *message_type_to_string(uint16_t type);
