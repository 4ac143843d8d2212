/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "list.h"
#include "macro.h"
#include "pidfd-util.h"
#include "registry.h"
#include "string-table.h"

static const char *const entry_state_table[_ENTRY_STATE_MAX] = {
        [ENTRY_CHECKPOINTING] = "checkpointing",
        [ENTRY_FROZEN] = "frozen",
        [ENTRY_RESTORING] = "restoring",
        [ENTRY_STREAMING] = "streaming",
};

DEFINE_STRING_TABLE_TO_STRING(entry_state, EntryState, "unknown");

void registry_add_ended(Registry *r, const Entry *e, const char *state, const char *text) {
        Ended *x = &r->ended[r->ended_next];

        *x = (Ended) {
                .pid = e->pid,
                .caller_uid = e->caller_uid,
                .target_uid = MESSAGE_HAS(&e->info, TAG_UID) ? e->info.uid : (uid_t) -1,
                .at = now_usec(CLOCK_REALTIME),
        };
        snprintf(x->comm, sizeof(x->comm), "%s", e->info.comm ?: "");
        snprintf(x->state, sizeof(x->state), "%s", state);
        snprintf(x->text, sizeof(x->text), "%s", text);
        r->ended_next = (r->ended_next + 1) % REGISTRY_ENDED_MAX;
        r->n_ended = MIN(r->n_ended + 1, (size_t) REGISTRY_ENDED_MAX);
}

const Ended *registry_find_ended(const Registry *r, pid_t pid) {
        uint64_t now = now_usec(CLOCK_REALTIME);

        for (size_t k = 1; k <= r->n_ended; k++) {
                const Ended *x = &r->ended[(r->ended_next + REGISTRY_ENDED_MAX - k) % REGISTRY_ENDED_MAX];
                if (x->pid == pid && x->at + REGISTRY_ENDED_KEEP_USEC > now)
                        return x;
        }
        return NULL;
}

Entry *registry_find(Registry *r, pid_t pid) {
        for (Entry *e = r->entries; e; e = e->next)
                if (e->pid == pid)
                        return e;
        return NULL;
}

void registry_op_done(Registry *r, pid_t pid, const void *op) {
        Entry *e = registry_find(r, pid);

        if (e && e->op == op) {
                e->op = NULL;
                e->rebuilding = false;
        }
}

static int on_target_exit(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Entry *e = userdata;
        Registry *r = e->registry;

        (void) sd_event_source_set_enabled(s, SD_EVENT_OFF);
        if (r->on_exit)
                r->on_exit(e, r->userdata);
        return 0;
}

int registry_add(Registry *r, pid_t pid, int pidfd, EntryState state, uid_t caller_uid, Entry **ret) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ Entry *e = NULL;
        int k;

        assert(!registry_find(r, pid));

        e = calloc(1, sizeof(Entry));
        if (!e)
                return -ENOMEM;
        fd = fcntl(pidfd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
                return -errno;
        k = sd_event_add_io(r->event, &e->exit_source, fd, EPOLLIN, on_target_exit, e);
        if (k < 0)
                return k;
        e->registry = r;
        e->pid = pid;
        e->pidfd = TAKE_FD(fd);
        e->watcher_pidfd = -EBADF;
        e->state = state;
        e->caller_uid = caller_uid;
        LIST_PREPEND(next, r->entries, e);
        r->n_entries++;
        if (ret)
                *ret = e;
        TAKE_PTR(e);
        return 0;
}

void registry_remove(Registry *r, Entry *e) {
        LIST_REMOVE_COUNTED(next, r->entries, r->n_entries, e);
        sd_event_source_disable_unref(e->exit_source);
        sd_event_source_disable_unref(e->watcher_source);
        sd_event_source_disable_unref(e->settle_source);
        safe_close(e->watcher_pidfd);
        safe_close(e->pidfd);
        message_done(&e->info);
        free(e);
}

void registry_clear(Registry *r) {
        while (r->entries)
                registry_remove(r, r->entries);
}

#define WATCHER_SETTLE_USEC (250 * 1000)

static int on_watcher_settled(sd_event_source *s, uint64_t usec, void *userdata) {
        Entry *e = userdata;
        Registry *r = e->registry;

        if (r->on_watcher_exit)
                r->on_watcher_exit(e, r->userdata);
        return 0;
}

/* A watcher that dies takes its target along (PTRACE_O_EXITKILL), but the
 * target's exit is noticed a moment after the watcher's: whether the watcher
 * let it go alive is decided once that moment has passed (the target's exit,
 * if it comes, removes the entry and this timer with it). */
static int on_watcher_exit(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Entry *e = userdata;
        Registry *r = e->registry;
        int k;

        (void) sd_event_source_set_enabled(s, SD_EVENT_OFF);
        k = sd_event_add_time_relative(r->event, &e->settle_source, CLOCK_MONOTONIC, WATCHER_SETTLE_USEC, 0,
                                       on_watcher_settled, e);
        if (k < 0)
                return on_watcher_settled(NULL, 0, e);
        return 0;
}

int entry_watch_watcher(Entry *e, pid_t watcher) {
        int fd, k;

        if (watcher <= 0 || e->watcher_pidfd >= 0)
                return 0;
        fd = pidfd_open_pid(watcher);
        if (fd < 0)
                return fd;
        k = sd_event_add_io(e->registry->event, &e->watcher_source, fd, EPOLLIN, on_watcher_exit, e);
        if (k < 0) {
                safe_close(fd);
                return k;
        }
        e->watcher_pidfd = fd;
        return 0;
}

int entry_set_info(Entry *e, const Message *reply) {
        Message m = { .type = MSG_REPLY };
        int r;

        r = message_copy_fields(&m, reply, MESSAGE_INFO_FIELDS);
        if (r < 0) {
                message_done(&m);
                return r;
        }
        message_done(&e->info);
        e->info = m;
        return 0;
}
