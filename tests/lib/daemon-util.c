/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon-util.h"
#include "socket-util.h"

const char *memcrd_binary(void) {
        const char *p = getenv("MEMCRD");
        return p ? p : "memcrd";
}

int daemon_setup(Daemon *d) {
        *d = (Daemon) { .pid = -1, .held_fd = -1 };
        strcpy(d->dir, "/tmp/memcrd-test-XXXXXX");
        if (!mkdtemp(d->dir))
                return -errno;
        snprintf(d->sock, sizeof(d->sock), "%s/memcr.sock", d->dir);
        snprintf(d->log, sizeof(d->log), "%s/log", d->dir);
        snprintf(d->runtime, sizeof(d->runtime), "%s/run", d->dir);
        snprintf(d->state, sizeof(d->state), "%s/state", d->dir);
        if (mkdir(d->state, 0700) < 0)
                return -errno;
        /* Targets of other users (tests with setpriv) must reach the socket. */
        if (chmod(d->dir, 0755) < 0)
                return -errno;
        return 0;
}

static int wait_for_socket(Daemon *d) {
        for (int i = 0; i < 500; i++) {
                int fd = daemon_connect(d);
                if (fd >= 0) {
                        close(fd);
                        return 0;
                }
                if (waitpid(d->pid, NULL, WNOHANG) == d->pid) {
                        d->pid = -1;
                        return -ECHILD;
                }
                usleep(10 * 1000);
        }
        return -ETIMEDOUT;
}

/* Fork memcrd: argv after the memcrd's own directories and --polkit=no
 * come before, extra after; with held_fd >= 0, that socket is passed in as
 * systemd passes one (fd 3, LISTEN_FDS). */
static int spawn(Daemon *d, const char *const *pre, const char *listen_arg, int held_fd,
                 const char *const *extra) {
        char a_runtime[160], a_state[160];
        const char *argv[48];
        size_t n = 0;

        snprintf(a_runtime, sizeof(a_runtime), "--runtime-dir=%s", d->runtime);
        snprintf(a_state, sizeof(a_state), "--state-dir=%s", d->state);
        for (size_t i = 0; pre && pre[i]; i++)
                argv[n++] = pre[i];
        argv[n++] = memcrd_binary();
        argv[n++] = a_runtime;
        argv[n++] = a_state;
        if (listen_arg)
                argv[n++] = listen_arg;
        argv[n++] = "--polkit=no";
        for (size_t i = 0; extra && extra[i] && n < 46; i++)
                argv[n++] = extra[i];
        argv[n] = NULL;

        d->pid = fork();
        if (d->pid < 0)
                return -errno;
        if (d->pid == 0) {
                int fd = open(d->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
                if (fd < 0)
                        _exit(126);
                if (held_fd >= 0) {
                        char pid[32];
                        /* dup2() onto itself would keep close-on-exec. */
                        if (held_fd == 3 ? fcntl(3, F_SETFD, 0) < 0 : dup2(held_fd, 3) < 0)
                                _exit(126);
                        snprintf(pid, sizeof(pid), "%i", (int) getpid());
                        setenv("LISTEN_PID", pid, 1);
                        setenv("LISTEN_FDS", "1", 1);
                        unsetenv("LISTEN_FDNAMES");
                }
                dup2(fd, 1);
                dup2(fd, 2);
                int devnull = open("/dev/null", O_RDONLY);
                dup2(devnull, 0);
                /* Log to the file, in the structured stderr format. */
                unsetenv("JOURNAL_STREAM");
                unsetenv("INVOCATION_ID");
                execvp(argv[0], (char **) argv);
                _exit(127);
        }
        return 0;
}

int daemon_start(Daemon *d, bool socket_activate, const char *const *extra) {
        /* systemd-socket-activate binds it afresh. */
        const char *const activate[] = { "systemd-socket-activate", "-l", d->sock, NULL };
        char a_listen[160];
        int r;

        snprintf(a_listen, sizeof(a_listen), "--listen=%s", d->sock);
        if (socket_activate)
                (void) unlink(d->sock);
        r = spawn(d, socket_activate ? activate : NULL, socket_activate ? NULL : a_listen, -1, extra);
        if (r < 0)
                return r;
        if (socket_activate) {
                /* The socket exists once systemd-socket-activate listens. */
                for (int i = 0; i < 500; i++) {
                        struct stat st;
                        if (stat(d->sock, &st) >= 0)
                                return 0;
                        usleep(10 * 1000);
                }
                return -ETIMEDOUT;
        }
        return wait_for_socket(d);
}

int daemon_start_held(Daemon *d, const char *const *extra) {
        if (d->held_fd < 0) {
                int fd = unix_listen(d->sock, 0666, (gid_t) -1, 16);
                if (fd < 0)
                        return fd;
                d->held_fd = fd;
        }
        return spawn(d, NULL, NULL, d->held_fd, extra);
}

int daemon_stop(Daemon *d, int sig) {
        int st = 0;

        if (d->pid <= 0)
                return -ESRCH;
        kill(d->pid, sig);
        if (waitpid(d->pid, &st, 0) != d->pid)
                return -errno;
        d->pid = -1;
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

void daemon_cleanup(Daemon *d) {
        char cmd[256];

        if (d->pid > 0)
                daemon_stop(d, SIGKILL);
        if (d->held_fd >= 0)
                close(d->held_fd);
        d->held_fd = -1;
        if (!d->dir[0])
                return;
        if (getenv("MEMCR_TEST_KEEP")) {
                fprintf(stderr, "keeping %s\n", d->dir);
                return;
        }
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d->dir);
        (void) system(cmd);
}

int daemon_connect(const Daemon *d) {
        int fd = unix_connect(d->sock, 0);

        if (fd < 0)
                return fd;
        struct timeval tv = { .tv_sec = 120 };
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        return fd;
}

int daemon_request_fd(int fd, uint16_t type, pid_t pid, uint32_t flags, Message *reply) {
        Message m = { .type = type };
        int r;

        if (pid > 0)
                message_set_u32(&m, TAG_PID, (uint32_t) pid);
        if (flags)
                message_set_u32(&m, TAG_FLAGS, flags);
        r = message_send(fd, &m, NULL, 0);
        message_done(&m);
        if (r < 0)
                return r;
        for (;;) {
                r = message_recv(fd, reply, NULL, 0, NULL);
                if (r < 0 || reply->type != MSG_PROGRESS)
                        return r;
                message_done(reply);
        }
}

int daemon_request(const Daemon *d, uint16_t type, pid_t pid, uint32_t flags, Message *reply) {
        int fd = daemon_connect(d), r;

        if (fd < 0)
                return fd;
        r = daemon_request_fd(fd, type, pid, flags, reply);
        close(fd);
        return r;
}

int compat_request(const Daemon *d, int32_t cmd, int32_t pid, int32_t *ret) {
        int32_t req[2] = { cmd, pid };
        int fd = daemon_connect(d);
        ssize_t k;

        if (fd < 0)
                return fd;
        if (write(fd, req, sizeof(req)) != sizeof(req)) {
                close(fd);
                return -EIO;
        }
        k = read(fd, ret, sizeof(*ret));
        close(fd);
        return k == sizeof(*ret) ? 0 : -EIO;
}

bool daemon_log_has(const Daemon *d, const char *const *needles) {
        char line[4096];
        FILE *f = fopen(d->log, "re");
        bool found = false;

        if (!f)
                return false;
        while (!found && fgets(line, sizeof(line), f)) {
                bool all = true;
                for (size_t i = 0; needles[i]; i++)
                        if (!strstr(line, needles[i])) {
                                all = false;
                                break;
                        }
                found = all;
        }
        fclose(f);
        return found;
}

bool daemon_log_sanitizer_report(const Daemon *d, char *buf, size_t size) {
        char line[4096];
        FILE *f = fopen(d->log, "re");
        bool found = false;

        if (!f)
                return false;
        while (!found && fgets(line, sizeof(line), f))
                if (strstr(line, "Sanitizer") || strstr(line, "runtime error:")) {
                        snprintf(buf, size, "%s", line);
                        found = true;
                }
        fclose(f);
        return found;
}

int daemon_send(int fd, const Message *req) {
        return message_send(fd, req, NULL, 0);
}

int daemon_recv(int fd, Message *reply) {
        for (;;) {
                int r = message_recv(fd, reply, NULL, 0, NULL);
                if (r < 0 || reply->type != MSG_PROGRESS)
                        return r;
                message_done(reply);
        }
}

int daemon_request_msg(const Daemon *d, const Message *req, Message *reply) {
        int fd = daemon_connect(d), r;

        if (fd < 0)
                return fd;
        r = daemon_send(fd, req);
        if (r >= 0)
                r = daemon_recv(fd, reply);
        close(fd);
        return r;
}

int fake_watcher_mode_from_env(FakeWatcherMode *ret) {
        static const char *const names[] = { "silent", "frozen", "streaming", "hang-up" };
        const char *s = getenv("MEMCR_FAKE_WATCHER");

        for (size_t i = 0; s && i < sizeof(names) / sizeof(names[0]); i++)
                if (strcmp(s, names[i]) == 0) {
                        *ret = (FakeWatcherMode) i;
                        return 0;
                }
        return -EINVAL;
}

int fake_watcher_listen(const char *watch_dir, pid_t pid) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd;

        if ((size_t) snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%d.sock", watch_dir, (int) pid) >=
            sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        (void) unlink(sa.sun_path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 || listen(fd, 16) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        return fd;
}

static void fake_watcher_answer(int fd, pid_t pid, const char *state) {
        Message m = { .type = MSG_REPLY };

        message_set_u32(&m, TAG_RESULT, MEMCR_OK);
        message_set_u32(&m, TAG_PID, (uint32_t) pid);
        message_set_u32(&m, TAG_WATCHER_PID, (uint32_t) getpid());
        message_set_u32(&m, TAG_CALLER_UID, 0);
        (void) message_set_string(&m, TAG_STATE, state);
        (void) message_send(fd, &m, NULL, 0);
        message_done(&m);
}

_Noreturn void fake_watcher_serve(int listen_fd, pid_t pid, FakeWatcherMode mode) {
        /* Its target's end is its own, as a watcher's. */
        struct pollfd p[18] = {
                { .fd = listen_fd, .events = POLLIN },
                { .fd = (int) syscall(SYS_pidfd_open, pid, 0), .events = POLLIN },
        };
        size_t n = 2;
        unsigned answered = 0;

        for (;;) {
                if (poll(p, n, 60 * 1000) <= 0 || p[1].revents)
                        _exit(0);
                for (size_t i = 2; i < n; i++)
                        if (p[i].revents) {
                                char c;
                                /* memcrd hung up on a request left unanswered. */
                                if (recv(p[i].fd, &c, 1, MSG_DONTWAIT) <= 0)
                                        _exit(0);
                        }
                if (!p[0].revents)
                        continue;
                int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
                Message req = {};
                int fds[1];
                size_t n_fds = 0;

                if (fd < 0)
                        continue;
                if (message_recv(fd, &req, fds, 1, &n_fds) < 0) {
                        close(fd);
                        continue;
                }
                if (n_fds > 0)
                        close(fds[0]);
                message_done(&req);
                if (mode == FAKE_WATCHER_FROZEN || (mode == FAKE_WATCHER_STREAMING && answered == 0)) {
                        fake_watcher_answer(fd, pid, mode == FAKE_WATCHER_FROZEN ? "frozen" : "streaming");
                        answered++;
                        close(fd);
                } else if (mode == FAKE_WATCHER_HANG_UP)
                        close(fd);
                else if (n < sizeof(p) / sizeof(p[0]))
                        p[n++] = (struct pollfd) { .fd = fd, .events = POLLIN };
                else
                        close(fd);
        }
}

pid_t fake_watcher_fork(const char *watch_dir, pid_t pid, FakeWatcherMode mode) {
        int fd = fake_watcher_listen(watch_dir, pid);
        pid_t child;

        if (fd < 0)
                return fd;
        child = fork();
        if (child < 0) {
                close(fd);
                return -errno;
        }
        if (child == 0)
                fake_watcher_serve(fd, pid, mode);
        close(fd);
        return child;
}
