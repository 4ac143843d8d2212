/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "target-util.h"

const char *target_binary(void) {
        const char *p = getenv("MEMCR_TEST_TARGET");
        return p ? p : "memcr-test-target";
}

/* Every target started, so a failed test can still kill them all (a frozen
 * target would otherwise outlive the test, holding its output open). */
static pid_t started[256];
static size_t n_started;

void target_kill_all(void) {
        for (size_t i = 0; i < n_started; i++)
                if (started[i] > 0)
                        kill(started[i], SIGKILL);
        n_started = 0;
}

int target_start_as(Target *t, const char *const *args, int uid, int gid) {
        return target_start_full(t, args, uid, gid, -1);
}

int target_start_full(Target *t, const char *const *args, int uid, int gid, int ambient_cap) {
        return target_start_program(t, target_binary(), args, uid, gid, ambient_cap);
}

int target_start_program(Target *t, const char *binary, const char *const *args, int uid, int gid,
                         int ambient_cap) {
        int in[2], out[2];
        const char *argv[64];
        size_t n = 0;
        char line[512];

        *t = (Target) { .pid = -1, .pidfd = -1, .cmd_fd = -1 };
        argv[n++] = binary;
        for (size_t i = 0; args && args[i] && n < 62; i++)
                argv[n++] = args[i];
        argv[n] = NULL;

        if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0)
                return -errno;

        t->pid = fork();
        if (t->pid < 0)
                return -errno;
        if (t->pid == 0) {
                dup2(in[0], 0);
                dup2(out[1], 1);
                if (ambient_cap >= 0 && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
                        _exit(126);
                if (gid >= 0 && (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0))
                        _exit(126);
                if (uid >= 0 && setresuid(uid, uid, uid) < 0)
                        _exit(126);
                if (ambient_cap >= 0) {
                        /* Keep one capability across exec as an unprivileged user. */
                        cap_t caps = cap_init();
                        cap_value_t v = (cap_value_t) ambient_cap;
                        if (!caps || cap_set_flag(caps, CAP_PERMITTED, 1, &v, CAP_SET) < 0 ||
                            cap_set_flag(caps, CAP_EFFECTIVE, 1, &v, CAP_SET) < 0 ||
                            cap_set_flag(caps, CAP_INHERITABLE, 1, &v, CAP_SET) < 0 || cap_set_proc(caps) < 0 ||
                            cap_set_ambient(v, CAP_SET) < 0)
                                _exit(125);
                }
                /* In the sanitizer build the target is instrumented too; its leak
                 * check at exit would trip over our ptrace (a traced process
                 * cannot be stopped by its own checker) and is not what we test. */
                setenv("ASAN_OPTIONS", "detect_leaks=0:abort_on_error=1", 1);
                execv(argv[0], (char **) argv);
                _exit(127);
        }
        if (n_started < sizeof(started) / sizeof(started[0]))
                started[n_started++] = t->pid;
        close(in[0]);
        close(out[1]);
        t->cmd_fd = in[1];
        t->out = fdopen(out[0], "r");
        if (!t->out)
                return -errno;
        t->pidfd = (int) syscall(SYS_pidfd_open, t->pid, 0);
        if (t->pidfd < 0)
                return -errno;

        if (!fgets(line, sizeof(line), t->out))
                return -EIO;
        unsigned long long bytes = 0, thp = 0;
        int pid = 0;
        if (sscanf(line, "READY pid=%d bytes=%llu thp_kb=%llu", &pid, &bytes, &thp) != 3 || pid != t->pid)
                return -EBADMSG;
        t->bytes = bytes;
        t->thp_kb = thp;
        return 0;
}

int target_start(Target *t, const char *const *args) {
        return target_start_as(t, args, -1, -1);
}

static int parse_result(const char *line, TargetResult *r) {
        unsigned ok;
        unsigned long long bad;

        if (sscanf(line, "RESULT ok=%u bad_words=%llu usr1=%u usr2=%u term=%u eintr=%u regions=%u", &ok,
                   &bad, &r->usr1, &r->usr2, &r->term, &r->eintr, &r->regions) != 7)
                return -EBADMSG;
        r->ok = ok == 1;
        r->bad_words = bad;
        return 0;
}

static int command(Target *t, const char *cmd, TargetResult *ret) {
        char line[512];

        if (write(t->cmd_fd, cmd, strlen(cmd)) != (ssize_t) strlen(cmd))
                return -errno;
        if (!fgets(line, sizeof(line), t->out))
                return -EIO;
        return parse_result(line, ret);
}

int target_command(Target *t, const char *cmd, char *line, size_t size) {
        size_t l = strlen(cmd);

        if (write(t->cmd_fd, cmd, l) != (ssize_t) l || write(t->cmd_fd, "\n", 1) != 1)
                return -errno;
        if (!fgets(line, (int) size, t->out))
                return -EIO;
        line[strcspn(line, "\n")] = 0;
        return 0;
}

int target_check(Target *t, TargetResult *ret) {
        return command(t, "check\n", ret);
}

int target_verify(Target *t, TargetResult *ret, int *ret_exit_status) {
        int st, r;

        r = command(t, "verify\n", ret);
        if (r < 0)
                return r;
        if (waitpid(t->pid, &st, 0) != t->pid)
                return -errno;
        t->reaped = true;
        t->exit_status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (ret_exit_status)
                *ret_exit_status = t->exit_status;
        return 0;
}

void target_stop(Target *t) {
        if (t->pid > 0 && !t->reaped) {
                kill(t->pid, SIGKILL);
                (void) waitpid(t->pid, NULL, 0);
                t->reaped = true;
        }
        if (t->out)
                fclose(t->out);
        t->out = NULL;
        if (t->cmd_fd >= 0)
                close(t->cmd_fd);
        t->cmd_fd = -1;
        if (t->pidfd >= 0)
                close(t->pidfd);
        t->pidfd = -1;
}

char proc_state(pid_t pid) {
        char path[64], buf[1024];
        FILE *f;
        char *p;

        snprintf(path, sizeof(path), "/proc/%d/stat", pid);
        f = fopen(path, "re");
        if (!f)
                return 0;
        if (!fgets(buf, sizeof(buf), f)) {
                fclose(f);
                return 0;
        }
        fclose(f);
        p = strrchr(buf, ')');
        return p && p[1] && p[2] ? p[2] : 0;
}

int proc_tracer(pid_t pid) {
        char path[64], line[256];
        FILE *f;
        int tracer = -1;

        snprintf(path, sizeof(path), "/proc/%d/status", pid);
        f = fopen(path, "re");
        if (!f)
                return -1;
        while (fgets(line, sizeof(line), f))
                if (sscanf(line, "TracerPid: %d", &tracer) == 1)
                        break;
        fclose(f);
        return tracer;
}

uint64_t smaps_sum_kb(pid_t pid, const char *field, const char *vmflag) {
        char path[64], line[1024];
        FILE *f;
        uint64_t sum = 0, cur = 0;
        size_t fl = strlen(field);

        snprintf(path, sizeof(path), "/proc/%d/smaps", pid);
        f = fopen(path, "re");
        if (!f)
                return 0;
        while (fgets(line, sizeof(line), f)) {
                if (strncmp(line, field, fl) == 0 && line[fl] == ':')
                        cur = strtoull(line + fl + 1, NULL, 10);
                else if (strncmp(line, "VmFlags:", 8) == 0) {
                        bool match = !vmflag;
                        if (vmflag) {
                                char needle[8];
                                snprintf(needle, sizeof(needle), " %s", vmflag);
                                char *p = strstr(line, needle);
                                match = p && (p[strlen(needle)] == ' ' || p[strlen(needle)] == '\n');
                        }
                        if (match)
                                sum += cur;
                        cur = 0;
                }
        }
        fclose(f);
        return sum;
}

int count_dir_entries(const char *path) {
        DIR *d = opendir(path);
        struct dirent *de;
        int n = 0;

        if (!d)
                return -errno;
        while ((de = readdir(d)))
                if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
                        n++;
        closedir(d);
        return n;
}

unsigned count_own_fds(void) {
        int n = count_dir_entries("/proc/self/fd");
        return n > 0 ? (unsigned) n - 1 : 0; /* minus the directory's own fd */
}

uint64_t proc_status_kb(pid_t pid, const char *field) {
        char path[64], line[256];
        FILE *f;
        uint64_t v = 0;
        size_t fl = strlen(field);

        snprintf(path, sizeof(path), "/proc/%d/status", pid);
        f = fopen(path, "re");
        if (!f)
                return 0;
        while (fgets(line, sizeof(line), f))
                if (strncmp(line, field, fl) == 0 && line[fl] == ':') {
                        v = strtoull(line + fl + 1, NULL, 10);
                        break;
                }
        fclose(f);
        return v;
}

int target_wait_ready(Target *t) {
        unsigned long long bytes = 0, thp = 0;
        char line[512];
        int pid = 0;

        if (!fgets(line, sizeof(line), t->out))
                return -EIO;
        if (sscanf(line, "READY pid=%d bytes=%llu thp_kb=%llu", &pid, &bytes, &thp) != 3 || pid != t->pid)
                return -EBADMSG;
        t->bytes = bytes;
        t->thp_kb = thp;
        return 0;
}

int target_spawn(Target *t, const char *exe, const char *const *args, const char *const *env, bool wait_ready) {
        int in[2], out[2];
        const char *argv[64];
        size_t n = 0;

        *t = (Target) { .pid = -1, .pidfd = -1, .cmd_fd = -1 };
        argv[n++] = exe ?: target_binary();
        for (size_t i = 0; args && args[i] && n < 62; i++)
                argv[n++] = args[i];
        argv[n] = NULL;

        if (pipe2(in, O_CLOEXEC) < 0)
                return -errno;
        if (pipe2(out, O_CLOEXEC) < 0) {
                close(in[0]);
                close(in[1]);
                return -errno;
        }

        t->pid = fork();
        if (t->pid < 0)
                return -errno;
        if (t->pid == 0) {
                /* Never outlive the test, even one that is killed. */
                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                dup2(in[0], 0);
                dup2(out[1], 1);
                /* In the sanitizer build the target is instrumented too; its leak
                 * check at exit would trip over our ptrace (a traced process
                 * cannot be stopped by its own checker) and is not what we test. */
                setenv("ASAN_OPTIONS", "detect_leaks=0:abort_on_error=1", 1);
                for (size_t i = 0; env && env[i]; i++)
                        (void) putenv((char *) env[i]);
                execv(argv[0], (char **) argv);
                _exit(127);
        }
        if (n_started < sizeof(started) / sizeof(started[0]))
                started[n_started++] = t->pid;
        close(in[0]);
        close(out[1]);
        t->cmd_fd = in[1];
        t->out = fdopen(out[0], "r");
        if (!t->out)
                return -errno;
        t->pidfd = (int) syscall(SYS_pidfd_open, t->pid, 0);
        if (t->pidfd < 0)
                return -errno;
        return wait_ready ? target_wait_ready(t) : 0;
}
