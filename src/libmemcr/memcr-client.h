/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * libmemcr-client: talk to memcrd, the memcr daemon, over its socket.
 *
 *   MemcrClient *c;
 *   MemcrReply reply;
 *   int r = memcr_client_connect(NULL, &c);
 *   if (r >= 0)
 *           r = memcr_client_checkpoint(c, pid, NULL, &reply);
 *   if (r >= 0 && reply.result == MEMCR_CLIENT_OK)
 *           ... frozen, reply.info has the numbers ...
 *   memcr_client_free(c);
 *
 * Every request function returns 0 when memcrd answered (the outcome is then
 * in reply->result, a MEMCR_CLIENT_* value) and a negative errno when it
 * could not be asked or did not answer:
 *   -ENOENT        no socket at that path (memcrd not installed or not started)
 *   -ECONNREFUSED  nobody listens on the socket
 *   -EACCES        no permission to connect
 *   -ECONNRESET    memcrd closed the connection before answering
 *   -EBADMSG, -EPROTONOSUPPORT, -EMSGSIZE   memcrd sent something unreadable
 *   -ENOTCONN      an earlier request on this connection failed that way;
 *                  connect again
 *   -EINVAL        invalid arguments
 * Out-parameters are only written on success.
 *
 * Requests on one connection run one after another; a MemcrClient must not
 * be used by several threads at the same time. All calls block. memcrd
 * closes a connection between requests once it is older than its
 * --connection-lifetime= (5 minutes by default); the next request then
 * connects again by itself.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Outcome of a request (MemcrReply.result). */
enum {
        MEMCR_CLIENT_OK = 0,
        MEMCR_CLIENT_ERR_FAILED = 1,         /* anything not listed below */
        MEMCR_CLIENT_ERR_DENIED = 2,         /* not authorized */
        MEMCR_CLIENT_ERR_NO_PROCESS = 3,     /* no such process */
        MEMCR_CLIENT_ERR_NOT_FROZEN = 4,     /* restore or status of a process not checkpointed */
        MEMCR_CLIENT_ERR_ALREADY_FROZEN = 5, /* checkpoint of a process already checkpointed */
        MEMCR_CLIENT_ERR_INVALID = 6,        /* memcrd refused the request as malformed */
        MEMCR_CLIENT_ERR_BUSY = 7,           /* another operation on that process is running */
        MEMCR_CLIENT_ERR_TIMEOUT = 8,        /* the request's time limit passed */
        MEMCR_CLIENT_ERR_KILLED = 9,         /* the process was killed */
        MEMCR_CLIENT_ERR_UNSUPPORTED = 10,   /* e.g. a codec memcrd was built without */
};

typedef struct MemcrClient MemcrClient;

/* socket_path NULL: memcrd's default socket. */
int memcr_client_connect(const char *socket_path, MemcrClient **ret);
void memcr_client_free(MemcrClient *c);

typedef struct MemcrClientOptions {
        const char *dump_dir;    /* checkpoint: directory for the dump; NULL = memcrd's default */
        const char *codec;       /* checkpoint: "none", "lz4" or "zstd"; NULL = memcrd's default */
        uint64_t timeout_msec;   /* time limit of the request; 0 = memcrd's default */
        uint64_t max_frozen_sec; /* checkpoint: restore automatically after; 0 = never */
        bool interactive;        /* authorization may ask for a password */
        bool no_encrypt;         /* checkpoint: authenticate the dump but do not encrypt it */
        /* restore: resume at once and stream the memory back behind it;
         * checkpoint: make that this process's default */
        bool lazy;
        bool eager;              /* restore: write everything back before resuming */
        /* Called as memcrd reports progress (checkpoint and restore). */
        void (*progress)(uint64_t done, uint64_t total, void *userdata);
        void *userdata;
} MemcrClientOptions;

/* A checkpointed process as memcrd describes it. Fields memcrd did not
 * report are 0 or "". Strings are NUL-terminated, truncated if longer. */
typedef struct MemcrProcessInfo {
        pid_t pid;
        char state[32];           /* checkpointing, frozen, restoring, streaming */
        char comm[64];
        uid_t uid;                /* owner of the process */
        uid_t caller_uid;         /* who checkpointed it */
        uint64_t since_usec;      /* CLOCK_REALTIME when frozen */
        uint64_t rss_before;      /* bytes */
        uint64_t rss_after;       /* bytes */
        uint64_t dump_bytes;      /* page bytes in the dump */
        uint64_t dump_file_bytes; /* size of the dump file */
        uint64_t duration_usec;   /* of the request answered */
        pid_t watcher_pid;
        uint32_t threads;
        char codec[16];
        char protection[16];      /* "encrypt" or "auth" */
        uint64_t max_frozen_sec;
        uint64_t done_bytes;      /* streaming: memory back in place */
        uint64_t total_bytes;     /* streaming: memory to put back */
} MemcrProcessInfo;

typedef struct MemcrReply {
        int result;               /* MEMCR_CLIENT_* */
        int error;                /* a positive errno with details, or 0 */
        char message[512];        /* human-readable details, or "" */
        MemcrProcessInfo info;
} MemcrReply;

/* o may be NULL for defaults. restore uses only timeout_msec, interactive,
 * lazy, eager and progress of the options. */
int memcr_client_checkpoint(MemcrClient *c, pid_t pid, const MemcrClientOptions *o, MemcrReply *ret);
int memcr_client_restore(MemcrClient *c, pid_t pid, const MemcrClientOptions *o, MemcrReply *ret);
int memcr_client_status(MemcrClient *c, pid_t pid, MemcrReply *ret);

/* All processes checkpointed (that the caller may see). On success *ret is an
 * array of *ret_n entries to free() (NULL if there are none, or if
 * ret_reply->result is not MEMCR_CLIENT_OK). */
int memcr_client_list(MemcrClient *c, MemcrProcessInfo **ret, size_t *ret_n, MemcrReply *ret_reply);

/* memcrd's version as a string in buf. -ENOBUFS if it does not fit; if memcrd
 * answers with an error, that error as a negative errno (-EIO if it gave
 * none). */
int memcr_client_version(MemcrClient *c, char *buf, size_t size);

/* "ok", "denied", "no-such-process", ...; "unknown" for other values. */
const char *memcr_client_result_to_string(int result);

#ifdef __cplusplus
}
#endif
