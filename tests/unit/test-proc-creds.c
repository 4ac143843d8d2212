/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "macro.h"
#include "proc-creds.h"

#define NOBODY 65534

DEFINE_TRIVIAL_CLEANUP_FUNC(DIR *, closedir);

typedef struct Caps {
        uint64_t inheritable, permitted, effective;
} Caps;

static int get_caps(pid_t pid, Caps *ret) {
        struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = pid };
        struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3] = {};

        if (syscall(SYS_capget, &h, d) < 0)
                return -errno;
        ret->inheritable = (uint64_t) d[1].inheritable << 32 | d[0].inheritable;
        ret->permitted = (uint64_t) d[1].permitted << 32 | d[0].permitted;
        ret->effective = (uint64_t) d[1].effective << 32 | d[0].effective;
        return 0;
}

static int clear_inheritable(void) {
        struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
        struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3] = {};

        if (syscall(SYS_capget, &h, d) < 0)
                return -errno;
        d[0].inheritable = d[1].inheritable = 0;
        if (syscall(SYS_capset, &h, d) < 0)
                return -errno;
        return 0;
}

static uint64_t bounding_set(void) {
        uint64_t mask = 0;

        for (int c = 0; c < 64; c++) {
                int r = prctl(PR_CAPBSET_READ, c, 0, 0, 0);
                if (r < 0)
                        break;
                if (r > 0)
                        mask |= UINT64_C(1) << c;
        }
        return mask;
}

static uint64_t ambient_set(void) {
        uint64_t mask = 0;

        for (int c = 0; c < 64; c++) {
                int r = prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, c, 0, 0);
                if (r < 0)
                        break;
                if (r > 0)
                        mask |= UINT64_C(1) << c;
        }
        return mask;
}

/* Flags field of /proc/PID/stat, parsed independently of proc-creds.c. */
static int stat_flags(pid_t pid, unsigned long *ret) {
        char path[64], buf[4096];
        _cleanup_fclose_ FILE *f = NULL;
        unsigned long flags;
        size_t n;
        char *p;

        snprintf(path, sizeof(path), "/proc/%i/stat", pid);
        f = fopen(path, "re");
        if (!f)
                return -errno;
        n = fread(buf, 1, sizeof(buf) - 1, f);
        buf[n] = 0;
        p = strrchr(buf, ')');
        /* state ppid pgrp session tty_nr tpgid flags */
        if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %lu", &flags) != 1)
                return -EBADMSG;
        *ret = flags;
        return 0;
}

/* A child that runs setup (if any), reports its result through a pipe and
 * then waits to be killed. */
static pid_t spawn_child(int (*setup)(void), int *ret_setup_result) {
        int fds[2], result = 0;
        pid_t pid;

        cr_assert_eq(pipe2(fds, O_CLOEXEC), 0);
        pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
                (void) prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
                if (setup)
                        result = setup();
                if (write(fds[1], &result, sizeof(result)) != sizeof(result))
                        _exit(EXIT_FAILURE);
                for (;;)
                        pause();
        }
        (void) close(fds[1]);
        cr_assert_eq(read(fds[0], &result, sizeof(result)), (ssize_t) sizeof(result));
        (void) close(fds[0]);
        *ret_setup_result = result;
        return pid;
}

static void kill_child(pid_t pid) {
        (void) kill(pid, SIGKILL);
        (void) waitpid(pid, NULL, 0);
}

Test(proc_creds, self) {
        uid_t ruid, euid, suid;
        gid_t rgid, egid, sgid;
        char comm[16] = {};
        ProcCreds c, again;
        Caps caps;

        cr_assert_eq(proc_creds_read(getpid(), &c), 0);
        cr_assert_eq(getresuid(&ruid, &euid, &suid), 0);
        cr_assert_eq(getresgid(&rgid, &egid, &sgid), 0);

        cr_assert_eq(c.pid, getpid());
        cr_assert_eq(c.uid[PROC_ID_REAL], getuid());
        cr_assert_eq(c.uid[PROC_ID_REAL], ruid);
        cr_assert_eq(c.uid[PROC_ID_EFFECTIVE], euid);
        cr_assert_eq(c.uid[PROC_ID_SAVED], suid);
        cr_assert_eq(c.uid[PROC_ID_FS], (uid_t) setfsuid((uid_t) -1));
        cr_assert_eq(c.gid[PROC_ID_REAL], getgid());
        cr_assert_eq(c.gid[PROC_ID_REAL], rgid);
        cr_assert_eq(c.gid[PROC_ID_EFFECTIVE], egid);
        cr_assert_eq(c.gid[PROC_ID_SAVED], sgid);
        cr_assert_eq(c.gid[PROC_ID_FS], (gid_t) setfsgid((gid_t) -1));

        cr_assert_eq(get_caps(0, &caps), 0);
        cr_assert_eq(c.cap_inheritable, caps.inheritable);
        cr_assert_eq(c.cap_permitted, caps.permitted);
        cr_assert_eq(c.cap_effective, caps.effective);
        cr_assert_eq(c.cap_bounding, bounding_set());
        cr_assert_eq(c.cap_ambient, ambient_set());

        cr_assert_eq(prctl(PR_GET_NAME, comm, 0, 0, 0), 0);
        cr_assert_str_eq(c.comm, comm);
        cr_assert_not(c.zombie);
        cr_assert_not(c.kernel_thread);
        cr_assert_gt(c.start_time, 0);

        cr_assert_eq(proc_creds_read(getpid(), &again), 0);
        cr_assert_eq(again.start_time, c.start_time);
}

Test(proc_creds, pid1) {
        ProcCreds self, c;
        int r;

        r = proc_creds_read(1, &c);
        if (r == -EACCES || r == -EPERM)
                cr_skip_test("/proc/1 is not readable");
        cr_assert_eq(r, 0, "%s", strerror(-r));
        cr_assert_eq(c.pid, 1);
        cr_assert_not(c.zombie);
        cr_assert_not(c.kernel_thread);
        cr_assert_neq(c.comm[0], 0);
        cr_assert_eq(proc_creds_read(getpid(), &self), 0);
        cr_assert_leq(c.start_time, self.start_time);
}

Test(proc_creds, nonexistent) {
        ProcCreds c = { .pid = 4242, .comm = "untouched" };
        pid_t pid;

        /* Above PID_MAX_LIMIT: can never exist. */
        cr_assert_eq(proc_creds_read(INT_MAX, &c), -ESRCH);
        cr_assert_eq(c.pid, 4242);
        cr_assert_str_eq(c.comm, "untouched");

        pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0)
                _exit(EXIT_SUCCESS);
        cr_assert_eq(waitpid(pid, NULL, 0), pid);
        cr_assert_eq(proc_creds_read(pid, &c), -ESRCH);
        cr_assert_eq(c.pid, 4242);
}

static int become_nobody(void) {
        int r;

        r = clear_inheritable();
        if (r < 0)
                return r;
        if (setgroups(0, NULL) < 0)
                return -errno;
        if (setresgid(NOBODY, NOBODY, NOBODY) < 0)
                return -errno;
        if (setresuid(NOBODY, NOBODY, NOBODY) < 0)
                return -errno;
        return 0;
}

Test(proc_creds, setresuid_child) {
        ProcCreds c;
        pid_t pid;
        int r, setup;

        if (geteuid() != 0)
                cr_skip_test("needs root");

        pid = spawn_child(become_nobody, &setup);
        if (setup == -EPERM) {
                kill_child(pid);
                cr_skip_test("cannot change uids here");
        }
        cr_assert_eq(setup, 0, "%s", strerror(-setup));

        r = proc_creds_read(pid, &c);
        kill_child(pid);
        cr_assert_eq(r, 0, "%s", strerror(-r));
        cr_assert_eq(c.pid, pid);
        for (size_t i = 0; i < _PROC_ID_MAX; i++) {
                cr_assert_eq(c.uid[i], NOBODY, "uid slot %zu: %u", i, c.uid[i]);
                cr_assert_eq(c.gid[i], NOBODY, "gid slot %zu: %u", i, c.gid[i]);
        }
        cr_assert_eq(c.cap_inheritable, 0);
        cr_assert_eq(c.cap_permitted, 0);
        cr_assert_eq(c.cap_effective, 0);
        cr_assert_eq(c.cap_ambient, 0);
        cr_assert_not(c.zombie);
        cr_assert_not(c.kernel_thread);
}

static int odd_name(void) {
        return prctl(PR_SET_NAME, "a) b (c) Z 1 2", 0, 0, 0) < 0 ? -errno : 0;
}

Test(proc_creds, comm_with_parentheses) {
        ProcCreds self, c;
        pid_t pid;
        int r, setup;

        pid = spawn_child(odd_name, &setup);
        cr_assert_eq(setup, 0);
        r = proc_creds_read(pid, &c);
        kill_child(pid);
        cr_assert_eq(r, 0, "%s", strerror(-r));
        cr_assert_str_eq(c.comm, "a) b (c) Z 1 2");
        cr_assert_not(c.zombie);
        cr_assert_not(c.kernel_thread);
        cr_assert_eq(proc_creds_read(getpid(), &self), 0);
        cr_assert_geq(c.start_time, self.start_time);
        cr_assert_eq(c.uid[PROC_ID_EFFECTIVE], self.uid[PROC_ID_EFFECTIVE]);
}

Test(proc_creds, zombie) {
        siginfo_t si = {};
        ProcCreds c;
        pid_t pid;
        int r;

        pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0)
                _exit(EXIT_SUCCESS);

        /* Wait for the exit, but leave the child unreaped. */
        cr_assert_eq(waitid(P_PID, (id_t) pid, &si, WEXITED | WNOWAIT), 0);
        r = proc_creds_read(pid, &c);
        cr_assert_eq(waitpid(pid, NULL, 0), pid);
        cr_assert_eq(r, 0, "%s", strerror(-r));
        cr_assert(c.zombie);
        cr_assert_not(c.kernel_thread);
        cr_assert_eq(c.uid[PROC_ID_REAL], getuid());
        cr_assert_eq(c.gid[PROC_ID_REAL], getgid());
        cr_assert_eq(proc_creds_read(pid, &c), -ESRCH);
}

Test(proc_creds, kernel_thread) {
        _cleanup_(closedirp) DIR *d = NULL;
        struct dirent *de;
        bool found = false;

        d = opendir("/proc");
        cr_assert_not_null(d);
        while (!found && (de = readdir(d))) {
                unsigned long flags;
                ProcCreds c;
                char *end;
                long pid;
                int r;

                pid = strtol(de->d_name, &end, 10);
                if (*end != 0 || pid <= 0)
                        continue;
                if (stat_flags((pid_t) pid, &flags) < 0 || !(flags & PROC_PF_KTHREAD))
                        continue;

                r = proc_creds_read((pid_t) pid, &c);
                if (r == -ESRCH)
                        continue; /* exited meanwhile */
                cr_assert_eq(r, 0, "%s", strerror(-r));
                cr_assert(c.kernel_thread, "pid %li", pid);
                cr_assert_not(c.zombie);
                cr_assert_neq(c.comm[0], 0);
                found = true;
        }
        if (!found)
                cr_skip_test("no kernel thread visible in /proc");
}

/* A /proc/PID/stat line as the kernel writes it (52 fields). */
static void format_stat(char *buf, size_t size, const char *comm, char state, unsigned flags,
                        unsigned long long start_time) {
        snprintf(buf, size,
                 "4242 (%s) %c 1 4242 4242 34816 4242 %u 100 0 0 0 5 3 0 0 20 0 1 0 %llu "
                 "10485760 300 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 "
                 "0 0 0 0 0 0 0 0\n",
                 comm, state, flags, start_time);
}

Test(proc_creds, stat_parse) {
        static const struct {
                const char *comm;
                char state;
                unsigned flags;
                unsigned long long start_time;
                const char *expect_comm;
                bool zombie, kernel_thread;
        } rows[] = {
                { "bash", 'S', 0x00400000, 123456, "bash", false, false },
                { "running", 'R', 0x00400100, 1, "running", false, false },
                { "zombie", 'Z', 0x00400044, 7, "zombie", true, false },
                { "dead", 'X', 0x00400044, 7, "dead", true, false },
                { "kthreadd", 'S', 0x00208040, 24, "kthreadd", false, true },
                { "kworker/0:0H-events_highpri", 'I', 0x04208060, 24, "kworker/0:0H-ev", false, true },
                { "a) b (c", 'S', 0, 99, "a) b (c", false, false },
                { "x) Z 1 2 3 (y", 'S', 0x00400000, 5, "x) Z 1 2 3 (y", false, false },
                { "spa ce)", 'D', 0, 18446744073709551615ULL, "spa ce)", false, false },
                { "new\nline", 'T', 0, 3, "new\nline", false, false },
                { "", 'S', 0, 3, "", false, false },
        };
        static const char *const bad[] = {
                "",
                "4242 bash S 1 2 3",
                "4242 (bash) S 1 4242 4242 34816 4242 4194304 100 0 0 0 5 3 0 0 20 0 1 0",
                "4242 (bash) S 1 4242 4242 34816 4242 x4194304 100 0 0 0 5 3 0 0 20 0 1 0 99 0\n",
                "4242 (bash) S 1 4242 4242 34816 4242 -1 100 0 0 0 5 3 0 0 20 0 1 0 99 0\n",
                "4242 (bash) S 1 4242 4242 34816 4242 0 100 0 0 0 5 3 0 0 20 0 1 0 99x 0\n",
                "4242 (bash) S 1 4242 4242 34816 4242 0 100 0 0 0 5 3 0 0 20 0 1 0 "
                "18446744073709551616 0\n",
                "4242 (bash)S 1 4242 4242 34816 4242 0 100 0 0 0 5 3 0 0 20 0 1 0 99 0\n",
                "4242 (bash) \n",
                ") 4242 (bash S 1",
        };
        char buf[1024];

        for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
                ProcCreds c = {};

                format_stat(buf, sizeof(buf), rows[i].comm, rows[i].state, rows[i].flags, rows[i].start_time);
                cr_assert_eq(proc_stat_parse(buf, &c), 0, "%s", buf);
                cr_assert_str_eq(c.comm, rows[i].expect_comm, "%s", buf);
                cr_assert_eq(c.zombie, rows[i].zombie, "%s", buf);
                cr_assert_eq(c.kernel_thread, rows[i].kernel_thread, "%s", buf);
                cr_assert_eq(c.start_time, rows[i].start_time, "%s", buf);
        }

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                ProcCreds c = { .comm = "untouched", .start_time = 77 };

                cr_assert_eq(proc_stat_parse(bad[i], &c), -EBADMSG, "%s", bad[i]);
                cr_assert_str_eq(c.comm, "untouched");
                cr_assert_eq(c.start_time, 77);
        }
}

#define STATUS_HEAD "Name:\tbash\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t4242\nPid:\t4242\nPPid:\t1\n"
#define STATUS_IDS "Uid:\t1000\t1001\t1002\t1003\nGid:\t100\t101\t102\t103\nGroups:\t10 100\n"
#define STATUS_CAPS_NO_AMB                                                                          \
        "CapInh:\t0000000000000400\nCapPrm:\t0000000000001000\nCapEff:\t0000000000080000\n"      \
        "CapBnd:\t000001ffffffffff\n"
#define STATUS_TAIL "NoNewPrivs:\t0\nSeccomp:\t0\n"

Test(proc_creds, status_parse) {
        static const char *const bad[] = {
                "",
                STATUS_HEAD STATUS_CAPS_NO_AMB,
                STATUS_HEAD "Uid:\t1000\t1000\t1000\nGid:\t100\t100\t100\t100\n" STATUS_CAPS_NO_AMB,
                STATUS_HEAD "Uid:\t1000\t1000\t1000\t1000\t1000\nGid:\t1\t1\t1\t1\n" STATUS_CAPS_NO_AMB,
                STATUS_HEAD "Uid:\t-1\t1000\t1000\t1000\nGid:\t1\t1\t1\t1\n" STATUS_CAPS_NO_AMB,
                STATUS_HEAD "Uid:\t4294967296\t0\t0\t0\nGid:\t1\t1\t1\t1\n" STATUS_CAPS_NO_AMB,
                STATUS_HEAD STATUS_IDS "CapInh:\t0\nCapPrm:\t0\nCapBnd:\t0\n",
                STATUS_HEAD STATUS_IDS STATUS_CAPS_NO_AMB "CapAmb:\t10000000000000000\n",
                STATUS_HEAD STATUS_IDS STATUS_CAPS_NO_AMB "CapAmb:\t\n",
                STATUS_HEAD STATUS_IDS STATUS_CAPS_NO_AMB "CapAmb:\t00000000000000zz\n",
        };
        ProcCreds c = {};

        cr_assert_eq(proc_status_parse(STATUS_HEAD STATUS_IDS STATUS_CAPS_NO_AMB
                                       "CapAmb:\t0000000000000400\n" STATUS_TAIL,
                                       &c),
                     0);
        for (size_t i = 0; i < _PROC_ID_MAX; i++) {
                cr_assert_eq(c.uid[i], 1000 + i);
                cr_assert_eq(c.gid[i], 100 + i);
        }
        cr_assert_eq(c.cap_inheritable, UINT64_C(1) << CAP_NET_BIND_SERVICE);
        cr_assert_eq(c.cap_permitted, UINT64_C(1) << CAP_NET_ADMIN);
        cr_assert_eq(c.cap_effective, UINT64_C(1) << CAP_SYS_PTRACE);
        cr_assert_eq(c.cap_ambient, UINT64_C(1) << CAP_NET_BIND_SERVICE);
        cr_assert_eq(c.cap_bounding, UINT64_C(0x1ffffffffff));

        /* Kernels without ambient capabilities have no CapAmb line. */
        c = (ProcCreds) { .cap_ambient = 1 };
        cr_assert_eq(proc_status_parse(STATUS_HEAD STATUS_IDS STATUS_CAPS_NO_AMB STATUS_TAIL, &c), 0);
        cr_assert_eq(c.cap_ambient, 0);

        /* Keys count only at the start of a line, and upper-case hex is fine. */
        c = (ProcCreds) {};
        cr_assert_eq(proc_status_parse("Name:\tUid:\t0\t0\t0\t0\n" STATUS_IDS
                                       "CapInh:\t0\nCapPrm:\tFF\nCapEff:\t0\nCapBnd:\t0\nCapAmb:\t0\n",
                                       &c),
                     0);
        cr_assert_eq(c.uid[PROC_ID_REAL], 1000);
        cr_assert_eq(c.cap_permitted, 0xff);

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                c = (ProcCreds) { .uid = { 7, 7, 7, 7 }, .cap_effective = 7 };
                cr_assert_eq(proc_status_parse(bad[i], &c), -EBADMSG, "%s", bad[i]);
                cr_assert_eq(c.uid[PROC_ID_REAL], 7);
                cr_assert_eq(c.cap_effective, 7);
        }
}

Test(proc_creds, libcap_agrees_with_status) {
        _cleanup_free_ char *text = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        ProcCreds from_status = {}, c;
        size_t n = 0;

        /* The status values are what proc_creds_read() falls back to. */
        f = fopen("/proc/self/status", "re");
        cr_assert_not_null(f);
        cr_assert_geq(getdelim(&text, &n, 0, f), 0);
        cr_assert_eq(proc_status_parse(text, &from_status), 0);
        cr_assert_eq(proc_creds_read(getpid(), &c), 0);
        cr_assert_eq(c.cap_inheritable, from_status.cap_inheritable);
        cr_assert_eq(c.cap_permitted, from_status.cap_permitted);
        cr_assert_eq(c.cap_effective, from_status.cap_effective);
        cr_assert_eq(c.cap_ambient, from_status.cap_ambient);
        cr_assert_eq(c.cap_bounding, from_status.cap_bounding);
}
