/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <linux/kcmp.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "macro.h"
#include "procfs.h"
#include "time-util.h"
#include "watch-target.h"

static pid_t parent_of(pid_t pid) {
        pid_t ppid = 0;

        return procfs_stat(pid, 0, NULL, &ppid) < 0 ? 0 : ppid;
}

/* Is q, a child of pid sharing its memory, a vfork child? Then a thread of
 * pid sleeps (uninterruptibly) until q has left the memory, and the seize
 * waits for that. Either that thread is seen asleep, or the sharing ends,
 * within moments (the child may be on its way out, the parent on its way
 * into that sleep); a clone(CLONE_VM) child goes on sharing with nobody
 * asleep. */
static bool is_vfork_child(pid_t pid, pid_t q) {
        for (int i = 0; i < 50; i++) {
                char wchan[96];

                if (syscall(SYS_kcmp, pid, q, KCMP_VM, 0, 0) != 0 ||
                    target_thread_in_d_state(pid, wchan, sizeof(wchan)) > 0)
                        return true;
                usleep_safe(USEC_PER_MSEC);
        }
        return false;
}

pid_t target_memory_shared_with(pid_t pid) {
        _cleanup_free_ pid_t *pids = NULL;
        size_t n = 0;

        if (procfs_list(0, &pids, &n) < 0)
                return 0;
        for (size_t i = 0; i < n; i++) {
                pid_t q = pids[i];
                long r;

                if (q == pid)
                        continue;
                r = syscall(SYS_kcmp, pid, q, KCMP_VM, 0, 0);
                if (r < 0 && errno == ENOSYS)
                        break; /* no kcmp(): nothing to compare with */
                if (r != 0)
                        continue;
                pid_t parent = parent_of(q);
                if (parent == 0)
                        continue; /* gone meanwhile: it shares nothing any more */
                if (parent == pid && is_vfork_child(pid, q))
                        continue;
                return q;
        }
        return 0;
}

/* The first thread of pid for which found() says yes, 0 if none. */
static pid_t find_thread(pid_t pid, bool (*found)(pid_t pid, pid_t tid, void *userdata), void *userdata) {
        _cleanup_free_ pid_t *tids = NULL;
        size_t n = 0;

        if (procfs_list(pid, &tids, &n) < 0)
                return 0;
        for (size_t i = 0; i < n; i++)
                if (found(pid, tids[i], userdata))
                        return tids[i];
        return 0;
}

static bool traced(pid_t pid, pid_t tid, void *userdata) {
        pid_t *ret_tracer = userdata;

        return procfs_tracer(pid, tid, ret_tracer) >= 0 && *ret_tracer > 0;
}

pid_t target_other_tracer(pid_t pid) {
        pid_t tracer = 0;

        return find_thread(pid, traced, &tracer) > 0 ? tracer : 0;
}

static bool in_d_state(pid_t pid, pid_t tid, _unused_ void *userdata) {
        char state = 0;

        return procfs_stat(pid, tid, &state, NULL) >= 0 && state == 'D';
}

pid_t target_thread_in_d_state(pid_t pid, char *wchan, size_t size) {
        _cleanup_free_ char *w = NULL;
        pid_t tid = find_thread(pid, in_d_state, NULL);

        if (tid > 0 && procfs_read(pid, tid, "wchan", 256, &w) >= 0 && w[0] && !streq(w, "0"))
                snprintf(wchan, size, " in %s", w);
        return tid;
}
