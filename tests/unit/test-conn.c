/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * The daemon's connections: what a peer said before it closed is heard, even
 * when something sent to it afterwards finds it gone (a watcher that answers
 * a checkpoint and closes, while memcrd sends it an abort).
 */

#include <criterion/criterion.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"
#include "protocol.h"

typedef struct Seen {
        sd_event *event;
        unsigned messages;
        unsigned messages_at_close;
        bool closed;
} Seen;

static int on_message(Conn *c, Message *m, void *userdata) {
        Seen *s = userdata;

        s->messages++;
        return 0;
}

static void on_close(Conn *c, int error, void *userdata) {
        Seen *s = userdata;

        s->closed = true;
        s->messages_at_close = s->messages;
        (void) sd_event_exit(s->event, 0);
}

static const ConnCallbacks callbacks = { .on_message = on_message, .on_close = on_close };

static Conn *make_conn(Seen *s, int *ret_peer) {
        int sv[2];
        Conn *c = NULL;

        cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        cr_assert_geq(sd_event_new(&s->event), 0);
        cr_assert_eq(conn_new(s->event, sv[0], false, &callbacks, s, &c), 0);
        *ret_peer = sv[1];
        return c;
}

Test(conn, answer_before_close_is_read_although_sending_fails) {
        Message m = { .type = MSG_REPLY };
        Seen s = {};
        int peer;
        Conn *c = make_conn(&s, &peer);

        message_set_u32(&m, TAG_PID, 1);
        message_set_u32(&m, TAG_RESULT, 0);
        cr_assert_geq(message_send(peer, &m, NULL, 0), 0);
        cr_assert_eq(close(peer), 0);

        /* The peer is gone: sending fails, but its answer is still unread. */
        cr_assert_lt(conn_send(c, &m), 0);
        cr_assert_not(s.closed, "the connection was closed before the peer's answer was read");

        cr_assert_geq(sd_event_loop(s.event), 0);
        cr_assert(s.closed);
        cr_assert_eq(s.messages_at_close, 1, "%u messages delivered before the close", s.messages_at_close);
        message_done(&m);
        conn_free(c);
        sd_event_unref(s.event);
}

Test(conn, peer_that_leaves_without_a_word_closes_it) {
        Message m = { .type = MSG_REPLY };
        Seen s = {};
        int peer;
        Conn *c = make_conn(&s, &peer);

        cr_assert_eq(close(peer), 0);
        message_set_u32(&m, TAG_PID, 1);
        (void) conn_send(c, &m);
        cr_assert_geq(sd_event_loop(s.event), 0);
        cr_assert(s.closed);
        cr_assert_eq(s.messages_at_close, 0);
        /* Nothing more is queued for a peer that left. */
        cr_assert_lt(conn_send(c, &m), 0);
        message_done(&m);
        conn_free(c);
        sd_event_unref(s.event);
}
