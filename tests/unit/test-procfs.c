/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "macro.h"
#include "procfs.h"

/* A child that has named itself, dies with us, and waits. */
static pid_t spawn_paused(void) {
        int p[2];
        char c;
        pid_t pid;

        cr_assert_eq(pipe(p), 0);
        pid = fork();
        cr_assert(pid >= 0);
        if (pid == 0) {
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                prctl(PR_SET_NAME, "procfs-child");
                (void) !write(p[1], "x", 1);
                for (;;)
                        pause();
        }
        cr_assert_eq(read(p[0], &c, 1), 1);
        close(p[0]);
        close(p[1]);
        return pid;
}

static void reap(pid_t pid) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
}

Test(procfs, status_find) {
        const char *text = "Name:\tx\nUid:\t1\t2\t3\t4\nTracerPidX:\t9\nTracerPid:\t  42\nNoColon 5\n";

        cr_assert_str_eq(procfs_status_find(text, "Name"), "x\nUid:\t1\t2\t3\t4\nTracerPidX:\t9\nTracerPid:\t  42\nNoColon 5\n");
        cr_assert_eq(strncmp(procfs_status_find(text, "Uid"), "1\t2", 3), 0);
        cr_assert_eq(strncmp(procfs_status_find(text, "TracerPid"), "42\n", 3), 0);
        cr_assert_null(procfs_status_find(text, "Tracer"));
        cr_assert_null(procfs_status_find(text, "NoColon"));
        cr_assert_null(procfs_status_find(text, "id")); /* only at the start of a line */
        cr_assert_null(procfs_status_find("", "Name"));
}

Test(procfs, status_numbers_of_self) {
        uint64_t v;

        cr_assert_eq(procfs_status_u64(getpid(), 0, "Pid", &v), 0);
        cr_assert_eq(v, (uint64_t) getpid());
        cr_assert_eq(procfs_status_u64(getpid(), 0, "Uid", &v), 0);
        cr_assert_eq(v, (uint64_t) getuid());
        cr_assert_eq(procfs_status_u64(getpid(), gettid(), "Pid", &v), 0);
        cr_assert_eq(v, (uint64_t) gettid());
        cr_assert_eq(procfs_status_u64(getpid(), 0, "NoSuchField", &v), -ENODATA);
        cr_assert_eq(procfs_status_u64(getpid(), 0, "Name", &v), -EBADMSG);
}

Test(procfs, tracer_state_and_parent) {
        pid_t child = spawn_paused(), tracer = -1;
        char state = 0, comm[32];
        pid_t ppid = 0;
        int st;

        cr_assert_eq(procfs_tracer(child, 0, &tracer), 0);
        cr_assert_eq(tracer, 0);
        cr_assert_eq(ptrace(PTRACE_SEIZE, child, 0, 0), 0);
        cr_assert_eq(ptrace(PTRACE_INTERRUPT, child, 0, 0), 0);
        cr_assert_eq(waitpid(child, &st, __WALL), child);
        cr_assert_eq(procfs_tracer(child, child, &tracer), 0);
        cr_assert_eq(tracer, getpid());
        cr_assert_eq(procfs_stat(child, 0, &state, &ppid), 0);
        cr_assert_eq(state, 't', "state %c", state);
        cr_assert_eq(ppid, getpid());
        /* the name may hold spaces and parentheses: stat is read past them */
        cr_assert_eq(procfs_comm(child, 0, comm, sizeof(comm)), 0);
        cr_assert_str_eq(comm, "procfs-child");
        reap(child);

        cr_assert_eq(procfs_stat(child, 0, &state, NULL), -ESRCH);
        cr_assert_eq(procfs_tracer(child, 0, &tracer), -ESRCH);
        cr_assert_eq(procfs_comm(child, 0, comm, sizeof(comm)), -ESRCH);
        cr_assert_str_eq(comm, "?");
}

Test(procfs, odd_names_in_stat) {
        char state = 0;
        pid_t ppid = 0;

        prctl(PR_SET_NAME, ") R 1 (x");
        cr_assert_eq(procfs_stat(getpid(), 0, &state, &ppid), 0);
        cr_assert_eq(state, 'R');
        cr_assert_eq(ppid, getppid());
}

static void *sleeper(void *arg) {
        (void) arg;
        prctl(PR_SET_NAME, "procfs-thread");
        for (;;)
                pause();
        return NULL;
}

Test(procfs, threads_and_processes) {
        _cleanup_free_ pid_t *tids = NULL, *pids = NULL;
        size_t n = 0, m = 0;
        pthread_t th[3];
        pid_t child = spawn_paused();
        bool self = false, kid = false;
        size_t before;

        cr_assert_eq(procfs_list(getpid(), &tids, &before), 0);
        free(tids);
        tids = NULL;
        for (size_t i = 0; i < ELEMENTSOF(th); i++)
                cr_assert_eq(pthread_create(&th[i], NULL, sleeper, NULL), 0);
        cr_assert_eq(procfs_list(getpid(), &tids, &n), 0);
        cr_assert_eq(n, before + ELEMENTSOF(th), "%zu threads, %zu before", n, before);
        for (size_t i = 0; i < n; i++) {
                uint64_t tgid;

                cr_assert_eq(procfs_status_u64(getpid(), tids[i], "Tgid", &tgid), 0);
                cr_assert_eq(tgid, (uint64_t) getpid());
        }

        cr_assert_eq(procfs_list(0, &pids, &m), 0);
        for (size_t i = 0; i < m; i++) {
                self |= pids[i] == getpid();
                kid |= pids[i] == child;
                cr_assert_gt(pids[i], 0);
        }
        cr_assert(self && kid);
        reap(child);
        free(tids);
        tids = NULL;
        cr_assert_eq(procfs_list(child, &tids, &n), -ESRCH);
}
