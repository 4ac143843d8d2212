/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The eager restore: all memory back first, then the process runs. */

#include <stdio.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "log.h"
#include "memcr-ids.h"
#include "watch-restore.h"

int watch_restore_failed(Watch *w, int fd, int r, const char *why) {
        char msg[512];
        bool killed = r != -ESRCH;

        /* We are done with it: the dump (and its space) and the socket go
         * before the answer. */
        w->frozen = frozen_free(w->frozen);
        watch_release_socket(w);
        if (r == -EBADMSG)
                snprintf(msg, sizeof(msg),
                         "restore of %i (%s) failed (%s): %s: its dump failed verification (changed or damaged "
                         "on disk); the target was killed rather than resumed with memory that is not its own",
                         w->pid, w->comm, why, strerror(-r));
        else
                snprintf(msg, sizeof(msg), "restore of %i (%s) failed (%s): %s%s", w->pid, w->comm, why, strerror(-r),
                         killed ? "; the target was killed rather than resumed with memory missing" : "");
        if (killed)
                watch_log_outcome(w, "restore", r, MEMCR_MESSAGE_TARGET_KILLED, msg);
        if (fd >= 0)
                watch_reply(fd, killed ? MEMCR_ERR_KILLED : MEMCR_ERR_NO_PROCESS, r, msg, w, false);
        return r;
}

int watch_restore(Watch *w, int fd, const char *why, const char *note) {
        RestoreStats rs = {};
        int r;

        (void) sd_notifyf(false, "STATUS=Restoring %i", w->pid);
        r = memcr_restore(w->frozen, NULL, NULL, &rs);
        if (r < 0)
                return watch_restore_failed(w, fd, r, why);
        w->frozen = frozen_free(w->frozen);
        watch_release_socket(w);
        if (fd >= 0) {
                Message m = { .type = MSG_REPLY };
                message_set_u32(&m, TAG_RESULT, MEMCR_OK);
                message_set_u32(&m, TAG_PID, (uint32_t) w->pid);
                message_set_u64(&m, TAG_DURATION_USEC, rs.duration);
                message_set_u64(&m, TAG_DUMP_BYTES, rs.restored_bytes);
                message_set_u64(&m, TAG_RSS_AFTER, rs.rss_after);
                message_set_u32(&m, TAG_CALLER_UID, w->caller_uid);
                if (note)
                        (void) message_set_string(&m, TAG_MESSAGE, note);
                (void) message_send(fd, &m, NULL, 0);
                message_done(&m);
        }
        log_debug("restored %i (%s)", w->pid, why);
        return 0;
}
