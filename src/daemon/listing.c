/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>

#include "listing.h"
#include "macro.h"
#include "pidfd-util.h"

static void entry_to_message(const Entry *e, Message *m) {
        (void) message_copy_fields(m, &e->info, MESSAGE_INFO_FIELDS);
        message_set_u32(m, TAG_PID, (uint32_t) e->pid);
        message_set_u32(m, TAG_CALLER_UID, e->caller_uid);
        (void) message_set_string(m, TAG_STATE, entry_state_to_string(e->state));
}

/* A caller sees the processes it may restore: its own and those it froze. */
static bool may_see(const CallerCreds *caller, const Entry *e) {
        if (caller->uid == 0 || e->caller_uid == caller->uid)
                return true;
        return MESSAGE_HAS(&e->info, TAG_UID) && e->info.uid == caller->uid;
}

/* No process pid, or only its zombie. */
static bool pid_gone(pid_t pid) {
        _cleanup_close_ int fd = pidfd_open_pid(pid);
        return fd < 0 || pidfd_is_alive(fd) == 0;
}

static bool may_see_ended(const CallerCreds *caller, const Ended *x) {
        return caller->uid == 0 || x->caller_uid == caller->uid || x->target_uid == caller->uid;
}

static void ended_to_message(const Ended *x, Message *m) {
        message_set_u32(m, TAG_PID, (uint32_t) x->pid);
        message_set_u32(m, TAG_CALLER_UID, x->caller_uid);
        if (x->target_uid != (uid_t) -1)
                message_set_u32(m, TAG_UID, x->target_uid);
        if (x->comm[0])
                (void) message_set_string(m, TAG_COMM, x->comm);
        (void) message_set_string(m, TAG_STATE, x->state);
}

void listing_status(const Entry *e, Message *reply) {
        reply->type = MSG_REPLY;
        message_set_u32(reply, TAG_RESULT, MEMCR_OK);
        entry_to_message(e, reply);
}

void listing_list(const Registry *r, const CallerCreds *caller, Message *reply) {
        reply->type = MSG_REPLY;
        message_set_u32(reply, TAG_RESULT, MEMCR_OK);
        for (Entry *e = r->entries; e; e = e->next) {
                Message *x;
                if (!may_see(caller, e))
                        continue;
                x = message_add_entry(reply);
                if (!x)
                        return;
                entry_to_message(e, x);
        }
        /* Lazily restored processes that ended while streaming, as long as no
         * other process has their PID. */
        for (size_t k = 0; k < r->n_ended; k++) {
                const Ended *x = &r->ended[k];
                Message *y;

                if (registry_find_ended(r, x->pid) != x || !may_see_ended(caller, x) ||
                    registry_find((Registry *) r, x->pid) || !pid_gone(x->pid))
                        continue;
                y = message_add_entry(reply);
                if (!y)
                        return;
                ended_to_message(x, y);
        }
}

bool listing_ended(const Registry *r, const CallerCreds *caller, pid_t pid, Message *reply) {
        const Ended *x = registry_find_ended(r, pid);

        if (!x || !may_see_ended(caller, x))
                return false;
        reply->type = MSG_REPLY;
        message_set_result(reply, MEMCR_ERR_NO_PROCESS, ESRCH, x->text);
        ended_to_message(x, reply);
        return true;
}
