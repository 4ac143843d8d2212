/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * memcr-watch: holds one frozen process.
 *
 * Started by memcrd for one PID (forked, or as memcr-watch@PID.service), it
 * listens on RUNTIME_DIR/PID.sock, takes the checkpoint job and the target's
 * pidfd from memcrd over that socket, checkpoints the target and keeps it
 * frozen. It restores the target and exits on a restore request, on SIGTERM
 * or SIGINT, and when --max-frozen expires; it cleans up and exits if the
 * target dies while frozen. If the watcher itself dies, the kernel kills the
 * target (PTRACE_O_EXITKILL): a process never runs with memory missing.
 *
 * Here: the command line, setting up, and the course of its life. The job
 * from memcrd is in watch-job.c, holding the process in watch-hold.c, the
 * restores in watch-restore.c and watch-stream.c, the event loop they all
 * run in watch-loop.c.
 */

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "macro.h"
#include "options.h"
#include "parse-util.h"
#include "privileges.h"
#include "socket-util.h"
#include "watch-hold.h"
#include "watch-job.h"
#include "watch-loop.h"
#include "watch.h"

static pid_t arg_pid = 0;
static const char *arg_runtime_dir = MEMCR_RUNTIME_DIR "/watch";
static int arg_ready_fd = -EBADF;

static void help(void) {
        printf("memcr-watch [OPTIONS] --pid=PID\n"
               "memcr-watch [OPTIONS] [INSTANCE]   (started for a connection, $LISTEN_FDS=1)\n\n"
               "Hold one process frozen by memcrd. Not meant to be run by hand.\n\n"
               "  --pid=PID           the process to hold\n"
               "  --runtime-dir=DIR   where the restore socket lives [%s]\n"
               "  --ready-fd=FD       write one byte here once the socket listens\n",
               MEMCR_RUNTIME_DIR "/watch");
}

enum {
        ARG_PID = OPTION_FIRST,
        ARG_RUNTIME_DIR,
        ARG_READY_FD,
};

static int parse_option(int c, const char *value) {
        switch (c) {
        case ARG_PID:
                if (pid_from_string(value, &arg_pid) < 0)
                        return log_error_errno(-EINVAL, "invalid PID: %s", value);
                break;
        case ARG_RUNTIME_DIR:
                arg_runtime_dir = value;
                break;
        case ARG_READY_FD:
                arg_ready_fd = atoi(value);
                break;
        default:
                return -EINVAL;
        }
        return 0;
}

/* As options_parse(). */
static int parse_argv(int argc, char *argv[]) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "pid", required_argument, NULL, ARG_PID },
                { "runtime-dir", required_argument, NULL, ARG_RUNTIME_DIR },
                { "ready-fd", required_argument, NULL, ARG_READY_FD },
                {}
        };
        static const Options o = { "memcr-watch", "h", options, help, parse_option };
        int r;

        r = options_parse(&o, argc, argv);
        if (r <= 0)
                return r;
        /* memcr-watch@PID.service passes the instance as an argument. An
         * instance started for a connection to memcr-watch.socket is named
         * after the connection ("3-1234-998"): the PID comes over the
         * connection (see spawned_for()). */
        if (optind < argc && arg_pid == 0 && pid_from_string(argv[optind], &arg_pid) < 0 && !getenv("LISTEN_FDS"))
                return log_error_errno(-EINVAL, "invalid PID: %s", argv[optind]);
        if (arg_pid <= 0 && !getenv("LISTEN_FDS"))
                return log_error_errno(-EINVAL, "--pid= is required");
        return 1;
}

/* The line "PID\n" on fd. */
static int read_pid_line(int fd, pid_t *ret) {
        char line[32];
        size_t got = 0;

        while (got < sizeof(line) - 1) {
                ssize_t k = read(fd, line + got, 1);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return log_error_errno(k < 0 ? -errno : -ECONNRESET, "no PID came over the connection: %m");
                if (line[got] == '\n')
                        break;
                got++;
        }
        line[got] = 0;
        if (pid_from_string(line, ret) < 0)
                return log_error_errno(-EINVAL, "invalid PID over the connection: %s", line);
        return 0;
}

/* Started for a connection to memcrd's spawn socket (memcr-watch.socket,
 * Accept=yes, or anything passing one connected socket the same way):
 * memcrd says which process on it, "PID\n", and learns on it when we are
 * ready, as through --ready-fd=. */
static int spawned_for(pid_t *ret_pid, int *ret_fd) {
        struct timeval tv = { .tv_sec = REQUEST_TIMEOUT_SEC };
        _cleanup_close_ int fd = -EBADF;
        int n, r;

        n = sd_listen_fds(true);
        if (n < 0)
                return log_error_errno(n, "cannot take the connection passed in: %m");
        if (n != 1)
                return log_error_errno(-EINVAL, "no --pid= and not started for one connection ($LISTEN_FDS=%i)", n);
        fd = SD_LISTEN_FDS_START;
        r = watch_peer_allowed(fd);
        if (r < 0)
                return r;
        (void) setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        r = read_pid_line(fd, ret_pid);
        if (r < 0)
                return r;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

/* Ready to take the job: without privileges beyond ptrace, undumpable,
 * signals blocked (the loop takes them from a signalfd), the restore socket
 * listening at path. */
static int setup(Watch *w, char *path, size_t size) {
        sigset_t mask;
        int r;

        r = privileges_drop_to_ptrace();
        if (r < 0)
                return r;
        /* We hold a dump key and a frozen process's memory: no core dumps, and
         * no ptrace by other processes of our own user. */
        if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
                return log_error_errno(-errno, "cannot make the watcher undumpable: %m");
        r = private_dir_check(w->runtime_dir);
        if (r < 0)
                return r;

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGPIPE);
        /* A traced thread's exit is announced with SIGCHLD (see watch_hold()). */
        sigaddset(&mask, SIGCHLD);
        sigprocmask(SIG_BLOCK, &mask, NULL);

        snprintf(path, size, "%s/%i.sock", w->runtime_dir, w->pid);
        w->socket_path = path;
        w->listen_fd = unix_listen(path, 0600, (gid_t) -1, 16);
        if (w->listen_fd < 0)
                return log_error_errno(w->listen_fd, "cannot listen on %s: %m", path);

        if (arg_ready_fd >= 0) {
                (void) write(arg_ready_fd, "R", 1);
                arg_ready_fd = safe_close(arg_ready_fd);
        }
        (void) sd_notify(false, "READY=1");
        return 0;
}

int main(int argc, char *argv[]) {
        Watch w = { .pidfd = -EBADF, .listen_fd = -EBADF, .job_fd = -EBADF };
        char path[4096];
        int r;

        log_set_ident("memcr-watch");
        log_parse_environment();
        r = parse_argv(argc, argv);
        if (r <= 0)
                return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
        if (arg_pid <= 0) {
                r = spawned_for(&arg_pid, &arg_ready_fd);
                if (r < 0)
                        return EXIT_FAILURE;
        }
        w.pid = arg_pid;
        w.runtime_dir = arg_runtime_dir;

        r = setup(&w, path, sizeof(path));
        if (r < 0)
                return EXIT_FAILURE;

        r = watch_checkpoint(&w);
        if (r >= 0) {
                r = watch_hold(&w);
                /* Whatever watch_hold() left behind still frozen goes back. */
                if (w.frozen && w.frozen->tracee && !watch_target_dying(&w))
                        (void) watch_give_back(&w, r < 0 ? r : -EIO, "the watcher is exiting");
                w.frozen = frozen_free(w.frozen);
        }

        (void) sd_notify(false, "STOPPING=1");
        watch_release_socket(&w);
        safe_close(w.pidfd);
        return r < 0 && r != -ESRCH && !w.stopped_before_job ? EXIT_FAILURE : EXIT_SUCCESS;
}
