/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "config.h"
#include "macro.h"
#include "memcr-client.h"
#include "protocol.h"
#include "socket-util.h"

/* The public constants are the protocol's values. */
_Static_assert(MEMCR_CLIENT_OK == (int) MEMCR_OK, "result values differ");
_Static_assert(MEMCR_CLIENT_ERR_FAILED == (int) MEMCR_ERR_FAILED, "result values differ");
_Static_assert(MEMCR_CLIENT_ERR_DENIED == (int) MEMCR_ERR_DENIED, "result values differ");
_Static_assert(MEMCR_CLIENT_ERR_NO_PROCESS == (int) MEMCR_ERR_NO_PROCESS, "result values differ");
_Static_assert(MEMCR_CLIENT_ERR_NOT_FROZEN == (int) MEMCR_ERR_NOT_FROZEN, "result values differ");
_Static_assert(MEMCR_CLIENT_ERR_ALREADY_FROZEN == (int) MEMCR_ERR_ALREADY_FROZEN,
               "result values differ");
_Static_assert(MEMCR_CLIENT_ERR_INVALID == (int) MEMCR_ERR_INVALID, "result values differ");
_Static_assert(MEMCR_CLIENT_ERR_BUSY == (int) MEMCR_ERR_BUSY, "result values differ");
_Static_assert(MEMCR_CLIENT_ERR_TIMEOUT == (int) MEMCR_ERR_TIMEOUT, "result values differ");
_Static_assert(MEMCR_CLIENT_ERR_KILLED == (int) MEMCR_ERR_KILLED, "result values differ");
_Static_assert(MEMCR_CLIENT_ERR_UNSUPPORTED == (int) MEMCR_ERR_UNSUPPORTED, "result values differ");
_Static_assert(MEMCR_CLIENT_ERR_UNSUPPORTED + 1 == (int) _MEMCR_RESULT_MAX, "result values differ");

struct MemcrClient {
        int fd;
        char *socket_path;
        /* Requests answered on this connection. */
        unsigned served;
        /* A request failed half-way: the stream is out of step, the socket closed. */
        bool broken;
        /* A request is running (a progress callback must not start another). */
        bool busy;
};

int memcr_client_connect(const char *socket_path, MemcrClient **ret) {
        _cleanup_free_ MemcrClient *c = NULL;
        int fd;

        if (!ret)
                return -EINVAL;
        if (!socket_path)
                socket_path = MEMCR_SOCKET_PATH;
        if (socket_path[0] == '\0')
                return -EINVAL;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->socket_path = strdup(socket_path);
        if (!c->socket_path)
                return -ENOMEM;
        fd = unix_connect(socket_path, 0);
        if (fd < 0) {
                free(c->socket_path);
                return fd;
        }
        c->fd = fd;
        *ret = TAKE_PTR(c);
        return 0;
}

void memcr_client_free(MemcrClient *c) {
        if (!c)
                return;
        safe_close(c->fd);
        free(c->socket_path);
        free(c);
}

/* memcrd closes a connection between requests once it has lived long
 * enough (its --connection-lifetime=). A request on a connection that
 * memcrd closed so, before this request reached it, gets a new one. */
static bool closed_by_peer(int fd) {
        struct pollfd p = { .fd = fd, .events = POLLIN | POLLRDHUP };
        char c;

        if (poll(&p, 1, 0) <= 0 || !(p.revents & (POLLRDHUP | POLLHUP | POLLERR)))
                return false;
        /* Nothing may wait to be read between requests. */
        return recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) <= 0;
}

static int reconnect(MemcrClient *c) {
        int fd = unix_connect(c->socket_path, 0);

        if (fd < 0)
                return fd;
        safe_close(c->fd);
        c->fd = fd;
        c->served = 0;
        return 0;
}

/* Copy a string into a fixed buffer, truncating at a UTF-8 character boundary. */
static void copy_string(char *dst, size_t size, const char *src) {
        size_t l;

        assert(size > 0);
        if (!src) {
                dst[0] = '\0';
                return;
        }
        l = strnlen(src, size - 1);
        if (src[l] != '\0')
                while (l > 0 && ((uint8_t) src[l] & 0xc0) == 0x80)
                        l--;
        memcpy(dst, src, l);
        dst[l] = '\0';
}

static pid_t pid_from_u32(uint32_t v) {
        return v <= INT32_MAX ? (pid_t) v : 0;
}

static void info_from_message(const Message *m, MemcrProcessInfo *ret) {
        *ret = (MemcrProcessInfo) {
                .pid = pid_from_u32(m->pid),
                .uid = m->uid,
                .caller_uid = m->caller_uid,
                .since_usec = m->since_usec,
                .rss_before = m->rss_before,
                .rss_after = m->rss_after,
                .dump_bytes = m->dump_bytes,
                .dump_file_bytes = m->dump_file_bytes,
                .duration_usec = m->duration_usec,
                .watcher_pid = pid_from_u32(m->watcher_pid),
                .threads = m->threads,
                .max_frozen_sec = m->max_frozen_sec,
                .done_bytes = m->done,
                .total_bytes = m->total,
        };
        copy_string(ret->state, sizeof(ret->state), m->state);
        copy_string(ret->comm, sizeof(ret->comm), m->comm);
        copy_string(ret->codec, sizeof(ret->codec), m->codec);
        copy_string(ret->protection, sizeof(ret->protection), m->protection);
}

/* pid: the process the request was about, 0 if none. */
static int reply_from_message(const Message *m, pid_t pid, MemcrReply *ret) {
        MemcrReply reply = {
                .result = (int) m->result,
                .error = m->error <= 4095 ? (int) m->error : EIO,
        };

        if (pid > 0 && MESSAGE_HAS(m, TAG_PID) && m->pid != (uint32_t) pid)
                return -EBADMSG;

        copy_string(reply.message, sizeof(reply.message), m->message);
        info_from_message(m, &reply.info);
        if (pid > 0)
                reply.info.pid = pid;
        *ret = reply;
        return 0;
}

static int send_frame(int fd, const Message *m) {
        int r = message_send(fd, m, NULL, 0);
        return r == -EPIPE ? -ECONNRESET : r;
}

/* Send req, pass PROGRESS frames on, return the REPLY in *ret. */
static int transact(MemcrClient *c, const Message *req, const MemcrClientOptions *o, Message *ret) {
        int r;

        if (c->busy)
                return -EBUSY;
        if (c->broken)
                return -ENOTCONN;

        c->busy = true;
        if (c->served > 0 && closed_by_peer(c->fd)) {
                r = reconnect(c);
                if (r < 0)
                        goto fail;
        }
        r = send_frame(c->fd, req);
        if (r == -ECONNRESET && c->served > 0) {
                /* Closed between the look above and the request: nothing of
                 * it was read. */
                r = reconnect(c);
                if (r >= 0)
                        r = send_frame(c->fd, req);
        }
        while (r >= 0) {
                Message m = {};

                r = message_recv(c->fd, &m, NULL, 0, NULL);
                if (r < 0)
                        break;
                if (m.type == MSG_REPLY) {
                        c->busy = false;
                        c->served++;
                        *ret = m;
                        return 0;
                }
                if (m.type != MSG_PROGRESS ||
                    (MESSAGE_HAS(&m, TAG_PID) && MESSAGE_HAS(req, TAG_PID) && m.pid != req->pid))
                        r = -EBADMSG;
                else if (o && o->progress)
                        o->progress(m.done, m.total, o->userdata);
                message_done(&m);
        }

fail:
        c->busy = false;
        c->broken = true;
        c->fd = safe_close(c->fd);
        return r;
}

static int check_string(const char *s) {
        if (s && strlen(s) > MEMCR_MAX_STRING)
                return -EINVAL;
        return 0;
}

static int pid_request(MemcrClient *c, MessageType type, pid_t pid, const MemcrClientOptions *o,
                       MemcrReply *ret) {
        _cleanup_(message_done) Message req = { .type = type }, rep = {};
        uint32_t flags = 0;
        int r;

        if (!c || !ret || pid <= 0)
                return -EINVAL;

        message_set_u32(&req, TAG_PID, (uint32_t) pid);
        if (o) {
                if (o->timeout_msec > 0)
                        message_set_u64(&req, TAG_TIMEOUT_MSEC, o->timeout_msec);
                if (o->interactive)
                        flags |= REQUEST_FLAG_INTERACTIVE;
                if (o->progress)
                        flags |= REQUEST_FLAG_PROGRESS;
                if (o->lazy)
                        flags |= REQUEST_FLAG_LAZY;
                if (o->eager && type == MSG_RESTORE)
                        flags |= REQUEST_FLAG_EAGER;
        }
        if (o && type == MSG_CHECKPOINT) {
                r = check_string(o->dump_dir);
                if (r >= 0)
                        r = check_string(o->codec);
                if (r < 0)
                        return r;
                if (o->dump_dir) {
                        r = message_set_string(&req, TAG_DUMP_DIR, o->dump_dir);
                        if (r < 0)
                                return r;
                }
                if (o->codec) {
                        r = message_set_string(&req, TAG_CODEC, o->codec);
                        if (r < 0)
                                return r;
                }
                if (o->max_frozen_sec > 0)
                        message_set_u64(&req, TAG_MAX_FROZEN_SEC, o->max_frozen_sec);
                if (o->no_encrypt)
                        flags |= REQUEST_FLAG_NO_ENCRYPT;
        }
        if (flags != 0)
                message_set_u32(&req, TAG_FLAGS, flags);

        r = transact(c, &req, o, &rep);
        if (r < 0)
                return r;
        return reply_from_message(&rep, pid, ret);
}

int memcr_client_checkpoint(MemcrClient *c, pid_t pid, const MemcrClientOptions *o, MemcrReply *ret) {
        return pid_request(c, MSG_CHECKPOINT, pid, o, ret);
}

int memcr_client_restore(MemcrClient *c, pid_t pid, const MemcrClientOptions *o, MemcrReply *ret) {
        return pid_request(c, MSG_RESTORE, pid, o, ret);
}

int memcr_client_status(MemcrClient *c, pid_t pid, MemcrReply *ret) {
        return pid_request(c, MSG_STATUS, pid, NULL, ret);
}

int memcr_client_list(MemcrClient *c, MemcrProcessInfo **ret, size_t *ret_n, MemcrReply *ret_reply) {
        _cleanup_(message_done) Message req = { .type = MSG_LIST }, rep = {};
        _cleanup_free_ MemcrProcessInfo *list = NULL;
        MemcrReply reply;
        size_t n = 0;
        int r;

        if (!c || !ret || !ret_n || !ret_reply)
                return -EINVAL;

        r = transact(c, &req, NULL, &rep);
        if (r < 0)
                return r;
        r = reply_from_message(&rep, 0, &reply);
        if (r < 0)
                return r;

        if (reply.result == MEMCR_CLIENT_OK && rep.n_entries > 0) {
                list = calloc(rep.n_entries, sizeof(MemcrProcessInfo));
                if (!list)
                        return -ENOMEM;
                for (; n < rep.n_entries; n++) {
                        const Message *e = &rep.entries[n];

                        if (!MESSAGE_HAS(e, TAG_PID) || e->pid == 0 || e->pid > INT32_MAX)
                                return -EBADMSG;
                        info_from_message(e, &list[n]);
                }
        }

        *ret = TAKE_PTR(list);
        *ret_n = n;
        *ret_reply = reply;
        return 0;
}

int memcr_client_version(MemcrClient *c, char *buf, size_t size) {
        _cleanup_(message_done) Message req = { .type = MSG_VERSION }, rep = {};
        size_t l;
        int r;

        if (!c || !buf || size == 0)
                return -EINVAL;

        r = transact(c, &req, NULL, &rep);
        if (r < 0)
                return r;
        if (rep.result != MEMCR_OK)
                return rep.error > 0 && rep.error <= 4095 ? -(int) rep.error : -EIO;
        if (!MESSAGE_HAS(&rep, TAG_VERSION))
                return -EBADMSG;
        l = strlen(rep.version);
        if (l >= size)
                return -ENOBUFS;
        memcpy(buf, rep.version, l + 1);
        return 0;
}

const char *memcr_client_result_to_string(int result) {
        if (result < 0 || result >= (int) _MEMCR_RESULT_MAX)
                return "unknown";
        return memcr_result_to_string((MemcrResult) result);
}
