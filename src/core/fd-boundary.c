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

static void task_comm(pid_t pid, pid_t tid, char *buf, size_t size) {
        _cleanup_free_ char *c = NULL;
        char path[96];

        snprintf(path, sizeof(path), "/proc/%i/task/%i/comm", pid, tid);
        if (read_full_file(path, 64, &c, NULL) < 0) {
                snprintf(buf, size, "?");
                return;
        }
        c[strcspn(c, "\n")] = 0;
        snprintf(buf, size, "%s", c);
}

/* A task of t's process that we do not hold stopped. */
static pid_t unheld_task(const Tracee *t) {
        char path[64];
        struct dirent *de;
        pid_t found = 0;
        DIR *d;

        snprintf(path, sizeof(path), "/proc/%i/task", t->pid);
        d = opendir(path);
        if (!d)
                return 0;
        while (found == 0 && (de = readdir(d))) {
                pid_t tid = (pid_t) atoi(de->d_name);
                if (tid > 0 && !tracee_has_thread(t, tid))
                        found = tid;
        }
        closedir(d);
        return found;
}

/* Another process whose descriptor table is pid's. */
static pid_t table_sharer(pid_t pid) {
        struct dirent *de;
        pid_t found = 0;
        DIR *d = opendir("/proc");

        if (!d)
                return 0;
        while (found == 0 && (de = readdir(d))) {
                pid_t q = (pid_t) atoi(de->d_name);
                if (q > 0 && q != pid && syscall(SYS_kcmp, pid, q, KCMP_FILES, 0, 0) == 0)
                        found = q;
        }
        closedir(d);
        return found;
}

int fd_table_private(const Tracee *t, char *reason, size_t size) {
        char comm[64];
        pid_t q;

        q = unheld_task(t);
        if (q > 0) {
                task_comm(t->pid, q, comm, sizeof(comm));
                snprintf(reason, size,
                         "its task %i (%s) cannot be held stopped (an io_uring worker, say) and acts in its "
                         "descriptor table, where a lazy restore needs a privileged descriptor for a moment",
                         q, comm);
                return -EPERM;
        }
        q = table_sharer(t->pid);
        if (q > 0) {
                task_comm(q, q, comm, sizeof(comm));
                snprintf(reason, size,
                         "it shares its descriptor table with process %i (%s, clone(CLONE_FILES)), which could take "
                         "the privileged descriptor a lazy restore needs there for a moment",
                         q, comm);
                return -EPERM;
        }
        return 0;
}
