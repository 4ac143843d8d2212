/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * A non-blocking protocol connection on the daemon's event loop: input is
 * collected until whole frames are there (at most one frame's worth is ever
 * buffered), output is queued and written when the peer reads, so a slow or
 * stuck peer never blocks anybody else.
 *
 * A connection accepted from a client may also speak memcr's own 8-byte
 * protocol; it is recognised by its first four bytes (see protocol.h).
 */

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "protocol.h"

typedef struct Conn Conn;

typedef struct ConnCallbacks {
        /* A complete, decoded frame. Return < 0 to close the connection. */
        int (*on_message)(Conn *c, Message *m, void *userdata);
        /* A frame that could not be decoded (error: -EBADMSG, -EMSGSIZE, ...).
         * The connection is closed after the callback (which may queue a reply). */
        void (*on_bad_frame)(Conn *c, int error, void *userdata);
        /* memcr compatibility request (only if detection was enabled). */
        int (*on_compat)(Conn *c, int32_t cmd, int32_t pid, void *userdata);
        /* Peer went away or I/O failed; the owner frees the connection. */
        void (*on_close)(Conn *c, int error, void *userdata);
} ConnCallbacks;

struct Conn {
        int fd;
        sd_event_source *io;
        uint8_t *in;
        size_t in_size;
        uint8_t *out;
        size_t out_size, out_done;
        bool paused;
        bool detect_compat;
        bool compat;
        bool close_after_flush;
        bool closed;
        bool peer_stopped_reading; /* sending failed; what it sent is still read */
        bool dispatching;       /* in one of the callbacks */
        bool free_pending;      /* freed by a callback: once it returns */
        const ConnCallbacks *cb;
        void *userdata;
};

int conn_new(sd_event *e, int fd, bool detect_compat, const ConnCallbacks *cb, void *userdata, Conn **ret);
/* Safe from the connection's own callbacks (freed once they return). */
Conn *conn_free(Conn *c);

int conn_send(Conn *c, const Message *m);
int conn_send_raw(Conn *c, const void *p, size_t n);
/* Stop (or resume) delivering messages; hangups are still noticed. */
void conn_pause(Conn *c, bool paused);
/* Close once everything queued has been written. */
void conn_close_after_flush(Conn *c);
/* Has the peer closed its end, though the loop has not dispatched that yet? */
bool conn_peer_gone(Conn *c);
