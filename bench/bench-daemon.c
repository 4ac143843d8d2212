/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench-daemon.h"
#include "bench.h"
#include "macro.h"
#include "memcr-client.h"
#include "time-util.h"

static int find_binary(const char *env, const char *self_dir, const char *rel, char **ret) {
        const char *e = env ? getenv(env) : NULL;
        char *p;

        if (e && *e)
                p = strdup(e);
        else if (asprintf(&p, "%s/%s", self_dir, rel) < 0)
                p = NULL;
        if (!p)
                return -ENOMEM;
        if (access(p, X_OK) < 0) {
                int r = -errno;
                fprintf(stderr, "memcr-bench: %s: %s\n", p, strerror(-r));
                if (env)
                        fprintf(stderr, "memcr-bench: build the whole tree (with -Dtests=true for the target), "
                                        "or name the binary in $%s\n", env);
                free(p);
                return r;
        }
        *ret = p;
        return 0;
}

int find_binaries(Bench *b) {
        char self[4096], *slash;
        ssize_t n;
        int r;

        n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        if (n < 0)
                return -errno;
        self[n] = 0;
        slash = strrchr(self, '/');
        if (!slash)
                return -EINVAL;
        *slash = 0;

        /* bench/ sits next to src/ and tests/ in the build tree. */
        r = find_binary("MEMCRD", self, "../src/daemon/memcrd", &b->memcrd_path);
        if (r >= 0)
                r = find_binary("MEMCR_WATCH", self, "../src/watch/memcr-watch", &b->watcher_path);
        if (r >= 0)
                r = find_binary("MEMCR_TEST_TARGET", self, "../tests/targets/memcr-test-target", &b->target_path);
        if (r >= 0)
                r = find_binary(NULL, self, "reserve-target", &b->reserve_target_path);
        return r;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) remove(path);
        return 0;
}

int make_dirs(Bench *b) {
        char tmpl[] = "/tmp/memcr-bench.XXXXXX";

        if (!mkdtemp(tmpl))
                return -errno;
        b->dir = strdup(tmpl);
        if (!b->dir)
                return -ENOMEM;
        if (asprintf(&b->socket_path, "%s/memcr.sock", b->dir) < 0 ||
            asprintf(&b->runtime_dir, "%s/run", b->dir) < 0 || asprintf(&b->state_dir, "%s/state", b->dir) < 0 ||
            asprintf(&b->log_path, "%s/memcrd.log", b->dir) < 0)
                return -ENOMEM;
        if (mkdir(b->runtime_dir, 0700) < 0 || mkdir(b->state_dir, 0700) < 0)
                return -errno;

        if (arg_dump_dir) {
                b->dump_dir = realpath(arg_dump_dir, NULL);
                if (!b->dump_dir)
                        return -errno;
        } else {
                char dump[] = "/dev/shm/memcr-bench.XXXXXX";
                if (!mkdtemp(dump))
                        return -errno;
                b->dump_dir = strdup(dump);
                if (!b->dump_dir)
                        return -ENOMEM;
                b->own_dump_dir = true;
        }
        return 0;
}

void remove_dirs(Bench *b) {
        if (b->dir)
                (void) nftw(b->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        /* Dumps are unnamed files: the directory is empty. */
        if (b->own_dump_dir && b->dump_dir)
                (void) rmdir(b->dump_dir);
}

void print_daemon_log(const Bench *b) {
        _cleanup_fclose_ FILE *f = fopen(b->log_path, "re");
        char line[4096];

        if (!f)
                return;
        fprintf(stderr, "memcr-bench: memcrd's log (%s):\n", b->log_path);
        while (fgets(line, sizeof(line), f))
                fprintf(stderr, "  %s", line);
}

int daemon_start(Bench *b) {
        _cleanup_free_ char *a_listen = NULL, *a_runtime = NULL, *a_state = NULL, *a_dump = NULL,
                *a_watcher = NULL, *a_codec = NULL;
        usec_t deadline;
        pid_t pid;

        if (asprintf(&a_listen, "--listen=%s", b->socket_path) < 0 ||
            asprintf(&a_runtime, "--runtime-dir=%s", b->runtime_dir) < 0 ||
            asprintf(&a_state, "--state-dir=%s", b->state_dir) < 0 ||
            asprintf(&a_dump, "--allow-dump-dir=%s", b->dump_dir) < 0 ||
            asprintf(&a_watcher, "--watcher=%s", b->watcher_path) < 0 ||
            asprintf(&a_codec, "--compress=%s", arg_codec) < 0)
                return -ENOMEM;

        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                const char *argv[] = { b->memcrd_path, a_listen, a_runtime, a_state, a_dump, a_watcher,
                                       a_codec, "--polkit=no", "--idle-timeout=0", "--watchers=fork", NULL };
                int fd = open(b->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
                int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
                sigset_t none;

                if (fd < 0 || null < 0 || dup2(null, 0) < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
                        _exit(126);
                sigemptyset(&none);
                sigprocmask(SIG_SETMASK, &none, NULL);
                (void) signal(SIGPIPE, SIG_DFL);
                /* Log to the file; the watchers it starts are ours to reap, not systemd's. */
                unsetenv("JOURNAL_STREAM");
                unsetenv("INVOCATION_ID");
                unsetenv("NOTIFY_SOCKET");
                unsetenv("LISTEN_FDS");
                unsetenv("LISTEN_PID");
                execv(argv[0], (char **) argv);
                _exit(127);
        }
        b->memcrd_pid = pid;

        deadline = now_usec(CLOCK_MONOTONIC) + DAEMON_START_TIMEOUT;
        for (;;) {
                _cleanup_(memcr_client_freep) MemcrClient *c = NULL;
                char version[64];

                if (memcr_client_connect(b->socket_path, &c) >= 0 &&
                    memcr_client_version(c, version, sizeof(version)) >= 0)
                        return 0;
                if (waitpid(pid, NULL, WNOHANG) == pid) {
                        b->memcrd_pid = 0;
                        fprintf(stderr, "memcr-bench: memcrd exited at start\n");
                        print_daemon_log(b);
                        return -ECHILD;
                }
                if (now_usec(CLOCK_MONOTONIC) > deadline) {
                        fprintf(stderr, "memcr-bench: memcrd does not answer on %s\n", b->socket_path);
                        print_daemon_log(b);
                        return -ETIMEDOUT;
                }
                usleep_safe(10 * USEC_PER_MSEC);
        }
}

void daemon_stop(Bench *b) {
        if (b->memcrd_pid <= 0)
                return;
        (void) kill(b->memcrd_pid, SIGTERM);
        while (waitpid(b->memcrd_pid, NULL, 0) < 0 && errno == EINTR)
                ;
        b->memcrd_pid = 0;
}
