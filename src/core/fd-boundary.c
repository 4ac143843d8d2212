/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <dirent.h>
#include <linux/kcmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fd-boundary.h"
#include "fileio.h"
#include "log.h"
#include "macro.h"
#include "procfs.h"

/* A task of t's process that we do not hold stopped. */
static pid_t unheld_task(const Tracee *t) {
        _cleanup_free_ pid_t *tids = NULL;
        size_t n = 0;

        if (procfs_list(t->pid, &tids, &n) < 0)
                return 0;
        for (size_t i = 0; i < n; i++)
                if (!tracee_has_thread(t, tids[i]))
                        return tids[i];
        return 0;
}

/* Another process whose descriptor table is pid's. */
static pid_t table_sharer(pid_t pid) {
        _cleanup_free_ pid_t *pids = NULL;
        size_t n = 0;

        if (procfs_list(0, &pids, &n) < 0)
                return 0;
        for (size_t i = 0; i < n; i++)
                if (pids[i] != pid && syscall(SYS_kcmp, pid, pids[i], KCMP_FILES, 0, 0) == 0)
                        return pids[i];
        return 0;
}

int fd_table_private(const Tracee *t, char *reason, size_t size) {
        char comm[64];
        pid_t q;

        q = unheld_task(t);
        if (q > 0) {
                (void) procfs_comm(t->pid, q, comm, sizeof(comm));
                snprintf(reason, size,
                         "its task %i (%s) cannot be held stopped (an io_uring worker, say) and acts in its "
                         "descriptor table, where a lazy restore needs a privileged descriptor for a moment",
                         q, comm);
                return -EPERM;
        }
        q = table_sharer(t->pid);
        if (q > 0) {
                (void) procfs_comm(q, 0, comm, sizeof(comm));
                snprintf(reason, size,
                         "it shares its descriptor table with process %i (%s, clone(CLONE_FILES)), which could take "
                         "the privileged descriptor a lazy restore needs there for a moment",
                         q, comm);
                return -EPERM;
        }
        return 0;
}
