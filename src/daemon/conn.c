/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <endian.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "alloc-util.h"
#include "conn.h"
#include "log.h"
#include "macro.h"

#define MAX_FRAME (MEMCR_FRAME_HEADER_SIZE + MEMCR_MAX_PAYLOAD)
#define MAX_OUT (4u * 1024u * 1024u)

static void update_events(Conn *c) {
        uint32_t ev = EPOLLRDHUP;

        if (c->closed || !c->io)
                return;
        if (!c->paused && !c->close_after_flush)
                ev |= EPOLLIN;
        if (c->out_done < c->out_size)
                ev |= EPOLLOUT;
        (void) sd_event_source_set_io_events(c->io, ev);
}

static void conn_fail(Conn *c, int error) {
        if (c->closed)
                return;
        c->closed = true;
        if (c->io)
                (void) sd_event_source_set_enabled(c->io, SD_EVENT_OFF);
        if (c->cb->on_close)
                c->cb->on_close(c, error, c->userdata);
}

/* Sending failed because the peer closed its end. What it sent before may
 * still wait to be read (a watcher that answered, then closed): keep reading;
 * the end of its input closes the connection. Returns whether that applies. */
static bool stop_writing(Conn *c, int error) {
        if ((error != -EPIPE && error != -ECONNRESET) || c->close_after_flush)
                return false;
        c->peer_stopped_reading = true;
        c->out_size = c->out_done = 0;
        update_events(c);
        return true;
}

static int flush_out(Conn *c) {
        while (c->out_done < c->out_size) {
                ssize_t k = send(c->fd, c->out + c->out_done, c->out_size - c->out_done,
                                 MSG_NOSIGNAL | MSG_DONTWAIT);
                if (k < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                return 0;
                        return -errno;
                }
                c->out_done += (size_t) k;
        }
        c->out_size = c->out_done = 0;
        return 1;
}

/* Deliver what is complete in the input buffer. Returns < 0 to close. */
static int process_input(Conn *c) {
        while (!c->paused && !c->closed) {
                if (c->detect_compat && c->in_size >= 4) {
                        uint32_t first;
                        memcpy(&first, c->in, 4);
                        c->detect_compat = false;
                        if (le32toh(first) != MEMCR_PROTOCOL_MAGIC) {
                                int32_t cmd = (int32_t) first;
                                if (cmd != MEMCR_COMPAT_CHECKPOINT && cmd != MEMCR_COMPAT_RESTORE) {
                                        if (c->cb->on_bad_frame)
                                                c->cb->on_bad_frame(c, -EBADMSG, c->userdata);
                                        return -EBADMSG;
                                }
                                c->compat = true;
                        }
                }
                if (c->detect_compat)
                        return 0;

                if (c->compat) {
                        int32_t req[2];
                        if (c->in_size < sizeof(req))
                                return 0;
                        memcpy(req, c->in, sizeof(req));
                        c->in_size -= sizeof(req);
                        memmove(c->in, c->in + sizeof(req), c->in_size);
                        if (!c->cb->on_compat)
                                return -EBADMSG;
                        int r = c->cb->on_compat(c, req[0], req[1], c->userdata);
                        if (r < 0)
                                return r;
                        continue;
                }

                if (c->in_size < MEMCR_FRAME_HEADER_SIZE)
                        return 0;
                uint16_t type;
                uint32_t length;
                int r = frame_header_parse(c->in, &type, &length);
                if (r < 0) {
                        if (c->cb->on_bad_frame)
                                c->cb->on_bad_frame(c, r, c->userdata);
                        return r;
                }
                if (c->in_size < MEMCR_FRAME_HEADER_SIZE + length)
                        return 0;

                Message m = {};
                r = message_decode(type, c->in + MEMCR_FRAME_HEADER_SIZE, length, &m);
                size_t used = MEMCR_FRAME_HEADER_SIZE + length;
                c->in_size -= used;
                memmove(c->in, c->in + used, c->in_size);
                if (r < 0) {
                        if (c->cb->on_bad_frame)
                                c->cb->on_bad_frame(c, r, c->userdata);
                        return r;
                }
                r = c->cb->on_message(c, &m, c->userdata);
                message_done(&m);
                if (r < 0)
                        return r;
        }
        return 0;
}

static void dispatch_io(Conn *c, uint32_t revents) {
        int r;

        if (revents & EPOLLOUT) {
                r = flush_out(c);
                if (r < 0 && !stop_writing(c, r)) {
                        conn_fail(c, r);
                        return;
                }
                if (r > 0 && c->close_after_flush) {
                        conn_fail(c, 0);
                        return;
                }
        }

        if ((revents & EPOLLIN) && !c->paused && !c->close_after_flush) {
                if (!c->in) {
                        c->in = malloc(MAX_FRAME);
                        if (!c->in) {
                                conn_fail(c, -ENOMEM);
                                return;
                        }
                }
                ssize_t k = recv(c->fd, c->in + c->in_size, MAX_FRAME - c->in_size, MSG_DONTWAIT);
                if (k < 0 && errno != EAGAIN && errno != EINTR) {
                        conn_fail(c, -errno);
                        return;
                }
                if (k == 0) {
                        conn_fail(c, c->in_size > 0 ? -ECONNRESET : 0);
                        return;
                }
                if (k > 0) {
                        c->in_size += (size_t) k;
                        r = process_input(c);
                        if (c->closed)
                                return;
                        if (r < 0) {
                                /* Let a queued error reply go out first. */
                                conn_close_after_flush(c);
                                return;
                        }
                }
        } else if (revents & (EPOLLHUP | EPOLLRDHUP | EPOLLERR)) {
                /* Paused (a request is in progress) and the peer left. */
                if (!(revents & EPOLLIN) || c->paused) {
                        conn_fail(c, -ECONNRESET);
                        return;
                }
        }
        if (c->in_size == 0 && c->in && !c->paused) {
                c->in = mfree(c->in);
        }
        update_events(c);
}

/* The owner may free the connection from any of its callbacks: then it is
 * freed once the callback has returned. */
static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Conn *c = userdata;

        c->dispatching = true;
        dispatch_io(c, revents);
        c->dispatching = false;
        if (c->free_pending)
                conn_free(c);
        return 0;
}

int conn_new(sd_event *e, int fd, bool detect_compat, const ConnCallbacks *cb, void *userdata, Conn **ret) {
        _cleanup_free_ Conn *c = NULL;
        int r;

        c = new(Conn, 1);
        if (!c)
                return -ENOMEM;
        *c = (Conn) { .fd = fd, .cb = cb, .userdata = userdata, .detect_compat = detect_compat };
        r = sd_event_add_io(e, &c->io, fd, EPOLLIN | EPOLLRDHUP, on_io, c);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(c);
        return 0;
}

Conn *conn_free(Conn *c) {
        if (!c)
                return NULL;
        if (c->dispatching) {
                c->free_pending = true;
                c->closed = true;
                (void) sd_event_source_set_enabled(c->io, SD_EVENT_OFF);
                return NULL;
        }
        sd_event_source_disable_unref(c->io);
        safe_close(c->fd);
        free(c->in);
        free(c->out);
        return mfree(c);
}

int conn_send_raw(Conn *c, const void *p, size_t n) {
        if (c->closed)
                return -ECONNRESET;
        if (c->peer_stopped_reading)
                return -EPIPE;
        if (c->out_size + n > MAX_OUT)
                return -ENOBUFS;
        uint8_t *o = realloc(c->out, c->out_size + n);
        if (!o)
                return -ENOMEM;
        c->out = o;
        memcpy(c->out + c->out_size, p, n);
        c->out_size += n;
        int r = flush_out(c);
        if (r < 0) {
                if (!stop_writing(c, r))
                        conn_fail(c, r);
                return r;
        }
        if (r > 0 && c->close_after_flush) {
                conn_fail(c, 0);
                return 0;
        }
        update_events(c);
        return 0;
}

int conn_send(Conn *c, const Message *m) {
        _cleanup_free_ uint8_t *buf = NULL;
        size_t size;
        int r;

        r = message_encode(m, &buf, &size);
        if (r < 0)
                return r;
        return conn_send_raw(c, buf, size);
}

void conn_pause(Conn *c, bool paused) {
        c->paused = paused;
        update_events(c);
        if (!paused && c->in_size > 0) {
                int r = process_input(c);
                if (r < 0 && !c->closed)
                        conn_close_after_flush(c);
        }
}

void conn_close_after_flush(Conn *c) {
        if (c->closed)
                return;
        c->close_after_flush = true;
        if (c->out_done >= c->out_size) {
                conn_fail(c, 0);
                return;
        }
        (void) shutdown(c->fd, SHUT_RD);
        update_events(c);
}

bool conn_peer_gone(Conn *c) {
        struct pollfd p = { .fd = c->fd, .events = POLLIN };

        /* POLLHUP only when both directions are shut: a peer that only
         * stopped writing (shutdown(SHUT_WR)) still waits for its answer. */
        return c->closed || (poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLERR)));
}
