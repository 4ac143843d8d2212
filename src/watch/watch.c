/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <stdlib.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "memcr-ids.h"
#include "watch.h"

void watch_release_socket(Watch *w) {
        if (w->socket_path) {
                (void) unlink(w->socket_path);
                w->socket_path = NULL;
        }
        w->listen_fd = safe_close(w->listen_fd);
}

void watch_message_set_process(Message *m, const Watch *w, const char *state) {
        message_set_u32(m, TAG_PID, (uint32_t) w->pid);
        message_set_u32(m, TAG_WATCHER_PID, (uint32_t) getpid());
        (void) message_set_string(m, TAG_STATE, state);
        (void) message_set_string(m, TAG_COMM, w->comm);
        message_set_u32(m, TAG_UID, w->target_uid);
        message_set_u32(m, TAG_CALLER_UID, w->caller_uid);
}

static void message_set_frozen(Message *m, const Watch *w) {
        const CheckpointStats *s = &w->frozen->stats;

        watch_message_set_process(m, w, "frozen");
        message_set_u64(m, TAG_SINCE_USEC, s->frozen_at);
        message_set_u64(m, TAG_RSS_BEFORE, s->rss_before);
        message_set_u64(m, TAG_RSS_AFTER, s->rss_after);
        message_set_u64(m, TAG_DUMP_BYTES, s->dumped_bytes);
        message_set_u64(m, TAG_DUMP_FILE_BYTES, s->dump_file_bytes);
        message_set_u64(m, TAG_DURATION_USEC, s->duration);
        message_set_u32(m, TAG_THREADS, (uint32_t) s->n_threads);
        (void) message_set_string(m, TAG_CODEC, w->codec);
        (void) message_set_string(m, TAG_PROTECTION, w->encrypted ? "encrypt" : "auth");
        if (w->max_frozen_sec > 0)
                message_set_u64(m, TAG_MAX_FROZEN_SEC, w->max_frozen_sec);
}

void watch_reply(int fd, MemcrResult result, int error, const char *message, const Watch *w, bool with_stats) {
        Message m = { .type = MSG_REPLY };

        message_set_result(&m, result, error, message);
        if (with_stats && w && w->frozen)
                message_set_frozen(&m, w);
        (void) message_send(fd, &m, NULL, 0);
        message_done(&m);
}

void watch_log_outcome(const Watch *w, const char *op, int r, const char *id, const char *what) {
        log_struct(r < 0 ? LOG_ERR : LOG_INFO, what, MESSAGE_ID(id),
                   LOG_FIELD("MEMCR_PID", "%i", w->pid), LOG_FIELD("MEMCR_OP", "%s", op),
                   LOG_FIELD("MEMCR_RESULT", "%s", memcr_result_to_string(memcr_result_from_errno(r))),
                   LOG_FIELD("MEMCR_CALLER_UID", "%u", w->caller_uid),
                   LOG_FIELD("MEMCR_WATCHER_PID", "%i", (int) getpid()), NULL);
}
