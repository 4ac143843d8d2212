/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench-target.h"
#include "bench.h"
#include "macro.h"
#include "time-util.h"

volatile sig_atomic_t cancelled = 0;
volatile sig_atomic_t current_target = 0;

void target_done(Target *t) {
        if (t->pid > 0) {
                (void) kill(t->pid, SIGKILL);
                while (waitpid(t->pid, NULL, 0) < 0 && errno == EINTR)
                        ;
        }
        if (current_target == t->pid)
                current_target = 0;
        safe_close(t->in_fd);
        safe_close(t->out_fd);
        *t = TARGET_NULL;
}

/* The next line of the target's output that starts with prefix. */
int target_read_line(Target *t, const char *prefix, usec_t timeout, char *line, size_t size) {
        usec_t deadline = now_usec(CLOCK_MONOTONIC) + timeout;

        for (;;) {
                char *nl = memchr(t->buf, '\n', t->n);
                struct pollfd p = { .fd = t->out_fd, .events = POLLIN };
                usec_t now;
                ssize_t k;

                if (nl) {
                        size_t len = (size_t) (nl - t->buf);
                        bool match = len >= strlen(prefix) && strneq(t->buf, prefix, strlen(prefix));

                        if (match)
                                snprintf(line, size, "%.*s", (int) len, t->buf);
                        memmove(t->buf, nl + 1, t->n - len - 1);
                        t->n -= len + 1;
                        if (match)
                                return 0;
                        continue;
                }
                if (t->n == sizeof(t->buf))
                        t->n = 0; /* an overlong line: drop it */

                now = now_usec(CLOCK_MONOTONIC);
                if (now >= deadline)
                        return -ETIMEDOUT;
                if (poll(&p, 1, (int) ((deadline - now) / USEC_PER_MSEC) + 1) < 0) {
                        if (errno == EINTR && !cancelled)
                                continue;
                        return errno == EINTR ? -ECANCELED : -errno;
                }
                if (!(p.revents & (POLLIN | POLLHUP | POLLERR)))
                        continue;
                k = read(t->out_fd, t->buf + t->n, sizeof(t->buf) - t->n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                if (k == 0)
                        return -EPIPE;
                t->n += (size_t) k;
        }
}

int target_start(const Bench *b, const Combo *c, Target *ret) {
        _cleanup_(target_done) Target t = TARGET_NULL;
        char a1[64], a2[64], a3[64], line[512];
        const char *argv[8];
        int in[2] = { -EBADF, -EBADF }, out[2] = { -EBADF, -EBADF };
        const char *p;
        size_t n = 0;
        int r;

        if (c->reserve == 0) {
                argv[n++] = b->target_path;
                snprintf(a1, sizeof(a1), "--mmap=%" PRIu64, c->size / MIB);
                argv[n++] = a1;
        } else {
                argv[n++] = b->reserve_target_path;
                snprintf(a1, sizeof(a1), "--reserve=%" PRIu64, c->reserve / MIB);
                snprintf(a2, sizeof(a2), "--touch=%" PRIu64, c->size / MIB);
                argv[n++] = a1;
                argv[n++] = a2;
        }
        snprintf(a3, sizeof(a3), "--threads=%u", c->threads);
        argv[n++] = a3;
        if (c->content == CONTENT_TEXT)
                argv[n++] = "--compressible";
        if (arg_lazy && c->reserve == 0)
                argv[n++] = "--stamp"; /* it notes when it runs again after a pause */
        argv[n] = NULL;

        if (pipe2(in, O_CLOEXEC) < 0)
                return -errno;
        if (pipe2(out, O_CLOEXEC) < 0) {
                r = -errno;
                close_many(in, 2);
                return r;
        }
        t.pid = fork();
        if (t.pid < 0) {
                r = -errno;
                close_many(in, 2);
                close_many(out, 2);
                return r;
        }
        if (t.pid == 0) {
                sigset_t none;

                if (dup2(in[0], 0) < 0 || dup2(out[1], 1) < 0)
                        _exit(126);
                sigemptyset(&none);
                sigprocmask(SIG_SETMASK, &none, NULL);
                (void) signal(SIGPIPE, SIG_DFL);
                execv(argv[0], (char **) argv);
                _exit(127);
        }
        current_target = t.pid;
        t.in_fd = TAKE_FD(in[1]);
        t.out_fd = TAKE_FD(out[0]);
        close_many(in, 2);
        close_many(out, 2);

        r = target_read_line(&t, "READY ", READY_TIMEOUT, line, sizeof(line));
        if (r < 0) {
                fprintf(stderr, "memcr-bench: %s did not get ready: %s\n", argv[0], strerror(-r));
                return r;
        }
        p = strstr(line, " pid=");
        if (!p || atoi(p + 5) != t.pid)
                return -EBADMSG;
        p = strstr(line, " bytes=");
        t.bytes = p ? strtoull(p + 7, NULL, 10) : 0;

        *ret = t;
        t = TARGET_NULL;
        return 0;
}

int write_all(int fd, const char *s) {
        size_t n = strlen(s);

        while (n > 0) {
                ssize_t k = write(fd, s, n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                s += k;
                n -= (size_t) k;
        }
        return 0;
}

/* Have the target check every byte; it exits 0 if all is intact. */
int target_verify(Target *t) {
        char line[512] = "";
        const char *p;
        int r, st = 0;

        r = write_all(t->in_fd, "verify\n");
        if (r >= 0)
                r = target_read_line(t, "RESULT ", VERIFY_TIMEOUT, line, sizeof(line));
        if (r < 0) {
                fprintf(stderr, "memcr-bench: target %i gave no verification result: %s\n", (int) t->pid,
                        strerror(-r));
                return r;
        }
        while (waitpid(t->pid, &st, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        if (current_target == t->pid)
                current_target = 0;
        t->pid = 0;
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
                fprintf(stderr, "memcr-bench: VERIFICATION FAILED: %s\n", line);
                return -EBADMSG;
        }
        /* reserve-target: restore must not have populated what was never touched. */
        p = strstr(line, " untouched_resident_pages=");
        if (p && strtoull(p + strlen(" untouched_resident_pages="), NULL, 10) > 0)
                fprintf(stderr, "memcr-bench: warning: %s\n", line);
        return 0;
}

/* When the target last came back from a pause, and how many it noticed. */
int target_stamp(Target *t, uint64_t *ret_resumed_ns, unsigned *ret_pauses) {
        unsigned long long ns;
        char line[256];
        unsigned n;
        int r;

        r = write_all(t->in_fd, "stamp\n");
        if (r >= 0)
                r = target_read_line(t, "STAMP ", VERIFY_TIMEOUT, line, sizeof(line));
        if (r < 0) {
                fprintf(stderr, "memcr-bench: target %i gave no time stamp: %s\n", (int) t->pid, strerror(-r));
                return r;
        }
        if (sscanf(line, "STAMP resumed_ns=%llu pauses=%u", &ns, &n) != 2) {
                fprintf(stderr, "memcr-bench: target %i: unexpected answer: %s\n", (int) t->pid, line);
                return -EBADMSG;
        }
        *ret_resumed_ns = ns;
        *ret_pauses = n;
        return 0;
}
