/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * What one user may take of memcrd: connections and frozen processes, so
 * that no member of the socket's group can starve the others, or root, or
 * run memcrd out of descriptors. Root has a share of its own: its
 * connections and processes count against its own per-user limit only,
 * never against what the other users share, so root always gets in.
 *
 * Also which processes are memcr's own (memcrd, its watchers, anything
 * running their programs): those are never a target.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client.h"
#include "log.h"
#include "macro.h"
#include "memcr-ids.h"
#include "proc-creds.h"
#include "procfs.h"

/* Connections over a limit are kept just long enough to be told so. */
#define MAX_REFUSED 16

/* mine of the caller's and others of users other than root, against a limit
 * per user and one for everybody but root (root keeps room of its own). */
static int quota_check(unsigned mine, unsigned others, unsigned per_user, unsigned total, uid_t uid,
                       const char *what, char *buf, size_t size) {
        if (mine >= per_user) {
                snprintf(buf, size, "limit of %u %s for uid %u reached", per_user, what, (unsigned) uid);
                return -EUSERS;
        }
        if (uid != 0 && others >= total) {
                snprintf(buf, size, "limit of %u %s of users other than root reached", total, what);
                return -EUSERS;
        }
        return 0;
}

int limits_check_connection(Manager *m, uid_t uid, char *buf, size_t size) {
        unsigned mine = 0, others = 0;

        for (Client *c = m->clients; c; c = c->next) {
                if (c->refusal)
                        continue;
                if (c->creds.uid == uid)
                        mine++;
                if (c->creds.uid != 0)
                        others++;
        }
        return quota_check(mine, others, m->max_clients_per_user, m->max_clients, uid, "connections", buf, size);
}

int limits_check_frozen(Manager *m, uid_t uid, char *buf, size_t size) {
        unsigned mine = 0, others = 0;

        /* Every process memcrd holds or is checkpointing counts, and a
         * lazily restored one while its watcher still streams it. A process
         * found at start-up whose watcher has not said yet who froze it
         * counts as somebody else's. */
        for (Entry *e = m->registry.entries; e; e = e->next) {
                if (e->caller_uid == uid)
                        mine++;
                if (e->caller_uid != 0)
                        others++;
        }
        return quota_check(mine, others, m->max_frozen_per_user, m->max_frozen, uid, "frozen processes", buf,
                           size);
}

bool limits_may_refuse(Manager *m) {
        return m->n_refused < MAX_REFUSED;
}

void limits_log(uid_t uid, pid_t caller_pid, pid_t pid, const char *limit, const char *text) {
        char pid_str[16] = "";

        if (pid > 0)
                snprintf(pid_str, sizeof(pid_str), "%i", (int) pid);
        log_struct(LOG_NOTICE, text, MESSAGE_ID(MEMCR_MESSAGE_LIMIT), LOG_FIELD("MEMCR_LIMIT", "%s", limit),
                   LOG_FIELD("MEMCR_PID", "%s", pid_str), LOG_FIELD("MEMCR_CALLER_UID", "%u", uid),
                   LOG_FIELD("MEMCR_CALLER_PID", "%i", (int) caller_pid), NULL);
}

unsigned limits_descriptors_needed(const Manager *m) {
        /* A connection: its socket, the caller's pidfd, and while a request
         * is decided or runs, a pidfd of the target, a copy for polkit or the
         * operation, the watcher's connection and the pipe or socket it is
         * started through. A frozen process: its pidfd and its watcher's. */
        uint64_t n = 64;

        n += 6 * ((uint64_t) m->max_clients + m->max_clients_per_user + MAX_REFUSED);
        n += 2 * ((uint64_t) m->max_frozen + m->max_frozen_per_user);
        return (unsigned) MIN(n, (uint64_t) UINT32_MAX);
}

int manager_add_own_binary(Manager *m, const char *path) {
        struct stat st;

        if (stat(path, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EINVAL;
        for (size_t i = 0; i < m->n_own_binaries; i++)
                if (m->own_binaries[i].dev == st.st_dev && m->own_binaries[i].ino == st.st_ino)
                        return 0;
        if (m->n_own_binaries >= ELEMENTSOF(m->own_binaries))
                return -ENOSPC;
        m->own_binaries[m->n_own_binaries].dev = st.st_dev;
        m->own_binaries[m->n_own_binaries].ino = st.st_ino;
        m->n_own_binaries++;
        return 0;
}

/* Runs a program named memcr-watch or memcrd: after an upgrade, watchers
 * started before it run a binary that is gone (" (deleted)"). */
static bool runs_program_named_ours(pid_t pid) {
        char path[64], exe[4096];
        const char *base;
        ssize_t n;

        snprintf(path, sizeof(path), "/proc/%i/exe", pid);
        n = readlink(path, exe, sizeof(exe) - 1);
        if (n <= 0)
                return false;
        exe[n] = 0;
        if (n > 10 && streq(exe + n - 10, " (deleted)"))
                exe[n - 10] = 0;
        base = strrchr(exe, '/');
        base = base ? base + 1 : exe;
        return streq(base, "memcr-watch") || streq(base, "memcrd");
}

/* In the unit of memcrd or of a watcher (memcr.service, memcr-watch@….service)? */
static bool in_our_units(pid_t pid) {
        _cleanup_free_ char *text = NULL;
        const char *p;

        if (procfs_read(pid, 0, "cgroup", 64 * 1024, &text) < 0)
                return false;
        /* The unified hierarchy's line: "0::/memcr.slice/memcr-watch@42.service". */
        p = strstr(text, "0::");
        if (p != text && p && p[-1] != '\n')
                p = NULL;
        if (!p)
                return false;
        p += 3;
        while (*p && *p != '\n') {
                size_t len = strcspn(p, "/\n");

                if ((len == strlen("memcr.service") && strncmp(p, "memcr.service", len) == 0) ||
                    (len > strlen("memcr-watch@.service") && strncmp(p, "memcr-watch@", 12) == 0 &&
                     strncmp(p + len - 8, ".service", 8) == 0))
                        return true;
                p += len;
                if (*p == '/')
                        p++;
        }
        return false;
}

bool manager_is_own_process(Manager *m, const ProcCreds *target, const char **ret_reason) {
        pid_t pid = target->pid;
        ProcIdentity id = {};

        if (pid == getpid()) {
                *ret_reason = "the daemon itself is never a target";
                return true;
        }
        /* The watchers memcrd knows of. */
        for (Entry *e = m->registry.entries; e; e = e->next)
                if (MESSAGE_HAS(&e->info, TAG_WATCHER_PID) && (pid_t) e->info.watcher_pid == pid) {
                        *ret_reason = "a watcher process is never a target";
                        return true;
                }
        /* And every process that is one, whether memcrd knows it or not
         * (started by an earlier memcrd, still starting, checkpointing). */
        if (proc_identity_read_exe(pid, &id) >= 0)
                for (size_t i = 0; i < m->n_own_binaries; i++)
                        if ((uint64_t) m->own_binaries[i].dev == id.exe_dev &&
                            (uint64_t) m->own_binaries[i].ino == id.exe_ino) {
                                *ret_reason = "processes running memcr's programs (memcrd, memcr-watch) are never a "
                                              "target";
                                return true;
                        }
        if (runs_program_named_ours(pid)) {
                *ret_reason = "processes running memcr's programs (memcrd, memcr-watch) are never a target";
                return true;
        }
        if (in_our_units(pid)) {
                *ret_reason = "processes of memcr.service and memcr-watch@.service units are never a target";
                return true;
        }
        /* memcrd's own user (a system user, when it is not root) runs memcrd
         * and the watchers, nothing else. */
        if (getuid() != 0 && (target->uid[PROC_ID_REAL] == getuid() || target->uid[PROC_ID_EFFECTIVE] == getuid())) {
                *ret_reason = "processes of memcrd's own user are never a target";
                return true;
        }
        return false;
}
