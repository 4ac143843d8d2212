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
 */

#include <dirent.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <linux/kcmp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "config.h"
#include "fileio.h"
#include "log.h"
#include "macro.h"
#include "memcr-ids.h"
#include "lazy.h"
#include "memcr.h"
#include "pidfd-util.h"
#include "privileges.h"
#include "procfs.h"
#include "protocol.h"
#include "socket-util.h"

#define JOB_TIMEOUT_SEC 10 /* memcrd sends the job as soon as we are ready */
#define REQUEST_TIMEOUT_SEC 10
#define STOP_TIMEOUT_MSEC 2000 /* the engine's default */

static pid_t arg_pid = 0;
static const char *arg_runtime_dir = MEMCR_RUNTIME_DIR "/watch";
static int arg_ready_fd = -EBADF;
static bool stopped_before_job = false;

typedef struct Watch {
        pid_t pid;
        int pidfd;
        int listen_fd;
        char *socket_path;
        Frozen *frozen;
        uid_t caller_uid;
        uid_t target_uid;
        char comm[64];
        uint64_t max_frozen_sec;
        char codec[16];
        bool encrypted;
        bool lazy_default; /* restore lazily unless asked otherwise */
        /* job connection while checkpointing */
        int job_fd;
        bool want_progress;
        usec_t last_progress;
} Watch;

static void help(void) {
        printf("memcr-watch [OPTIONS] --pid=PID\n"
               "memcr-watch [OPTIONS] [INSTANCE]   (started for a connection, $LISTEN_FDS=1)\n\n"
               "Hold one process frozen by memcrd. Not meant to be run by hand.\n\n"
               "  --pid=PID           the process to hold\n"
               "  --runtime-dir=DIR   where the restore socket lives [%s]\n"
               "  --ready-fd=FD       write one byte here once the socket listens\n",
               MEMCR_RUNTIME_DIR "/watch");
}

static int parse_argv(int argc, char *argv[]) {
        enum { ARG_PID = 0x100, ARG_RUNTIME_DIR, ARG_READY_FD };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "pid", required_argument, NULL, ARG_PID },
                { "runtime-dir", required_argument, NULL, ARG_RUNTIME_DIR },
                { "ready-fd", required_argument, NULL, ARG_READY_FD },
                {}
        };
        int c;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        exit(EXIT_SUCCESS);
                case ARG_PID: {
                        char *end;
                        long v = strtol(optarg, &end, 10);
                        if (*end || v <= 0 || v > INT32_MAX)
                                return log_error_errno(-EINVAL, "invalid PID: %s", optarg);
                        arg_pid = (pid_t) v;
                        break;
                }
                case ARG_RUNTIME_DIR:
                        arg_runtime_dir = optarg;
                        break;
                case ARG_READY_FD:
                        arg_ready_fd = atoi(optarg);
                        break;
                default:
                        return -EINVAL;
                }
        if (optind < argc && arg_pid == 0) {
                /* memcr-watch@PID.service passes the instance as an argument.
                 * An instance started for a connection to memcr-watch.socket
                 * is named after the connection ("3-1234-998"): the PID comes
                 * over the connection (see spawned_for()). */
                char *end;
                long v = strtol(argv[optind], &end, 10);
                if (!*end && v > 0 && v <= INT32_MAX)
                        arg_pid = (pid_t) v;
                else if (!getenv("LISTEN_FDS"))
                        return log_error_errno(-EINVAL, "invalid PID: %s", argv[optind]);
        }
        if (arg_pid <= 0 && !getenv("LISTEN_FDS"))
                return log_error_errno(-EINVAL, "--pid= is required");
        return 0;
}

static int peer_allowed(int fd);

/* Started for a connection to memcrd's spawn socket (memcr-watch.socket,
 * Accept=yes, or anything passing one connected socket the same way):
 * memcrd says which process on it, "PID\n", and learns on it when we are
 * ready, as through --ready-fd=. */
static int spawned_for(pid_t *ret_pid, int *ret_fd) {
        struct timeval tv = { .tv_sec = REQUEST_TIMEOUT_SEC };
        char line[32];
        size_t got = 0;
        long v;
        char *end;
        int n, fd, r;

        n = sd_listen_fds(true);
        if (n < 0)
                return log_error_errno(n, "cannot take the connection passed in: %m");
        if (n != 1)
                return log_error_errno(-EINVAL, "no --pid= and not started for one connection ($LISTEN_FDS=%i)", n);
        fd = SD_LISTEN_FDS_START;
        r = peer_allowed(fd);
        if (r < 0) {
                safe_close(fd);
                return r;
        }
        (void) setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        while (got < sizeof(line) - 1) {
                ssize_t k = read(fd, line + got, 1);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0) {
                        r = k < 0 ? -errno : -ECONNRESET;
                        safe_close(fd);
                        return log_error_errno(r, "no PID came over the connection: %m");
                }
                if (line[got] == '\n')
                        break;
                got++;
        }
        line[got] = 0;
        errno = 0;
        v = strtol(line, &end, 10);
        if (errno != 0 || end == line || *end || v <= 0 || v > INT32_MAX) {
                safe_close(fd);
                return log_error_errno(-EINVAL, "invalid PID over the connection: %s", line);
        }
        *ret_pid = (pid_t) v;
        *ret_fd = fd;
        return 0;
}

static uid_t proc_uid(pid_t pid) {
        uint64_t uid;

        return procfs_status_u64(pid, 0, "Uid", &uid) < 0 ? (uid_t) -1 : (uid_t) uid;
}

static int peer_allowed(int fd) {
        struct ucred u;
        int r;

        /* Only memcrd (our own user) or root may talk to a watcher. */
        r = getpeercred(fd, &u);
        if (r < 0)
                return r;
        if (u.uid != getuid() && u.uid != 0)
                return log_warning_errno(-EPERM, "refusing connection from uid %u pid %i", u.uid, u.pid);
        return 0;
}

static void reply(int fd, MemcrResult result, int error, const char *message, const Watch *w,
                  bool with_stats) {
        Message m = { .type = MSG_REPLY };

        message_set_u32(&m, TAG_RESULT, result);
        if (error != 0)
                message_set_u32(&m, TAG_ERRNO, (uint32_t) abs(error));
        if (message)
                (void) message_set_string(&m, TAG_MESSAGE, message);
        if (with_stats && w && w->frozen) {
                const CheckpointStats *s = &w->frozen->stats;
                message_set_u32(&m, TAG_PID, (uint32_t) w->pid);
                message_set_u32(&m, TAG_WATCHER_PID, (uint32_t) getpid());
                (void) message_set_string(&m, TAG_STATE, "frozen");
                (void) message_set_string(&m, TAG_COMM, w->comm);
                message_set_u32(&m, TAG_UID, w->target_uid);
                message_set_u32(&m, TAG_CALLER_UID, w->caller_uid);
                message_set_u64(&m, TAG_SINCE_USEC, s->frozen_at);
                message_set_u64(&m, TAG_RSS_BEFORE, s->rss_before);
                message_set_u64(&m, TAG_RSS_AFTER, s->rss_after);
                message_set_u64(&m, TAG_DUMP_BYTES, s->dumped_bytes);
                message_set_u64(&m, TAG_DUMP_FILE_BYTES, s->dump_file_bytes);
                message_set_u64(&m, TAG_DURATION_USEC, s->duration);
                message_set_u32(&m, TAG_THREADS, (uint32_t) s->n_threads);
                (void) message_set_string(&m, TAG_CODEC, w->codec);
                (void) message_set_string(&m, TAG_PROTECTION, w->encrypted ? "encrypt" : "auth");
                if (w->max_frozen_sec > 0)
                        message_set_u64(&m, TAG_MAX_FROZEN_SEC, w->max_frozen_sec);
        }
        (void) message_send(fd, &m, NULL, 0);
        message_done(&m);
}

/* Called on our (the tracer's) thread during the checkpoint: report
 * progress, and see whether memcrd asked us to abandon the job. */
static int on_progress(uint64_t done, uint64_t total, void *userdata) {
        Watch *w = userdata;
        struct pollfd p = { .fd = w->job_fd, .events = POLLIN };

        if (w->want_progress) {
                Message m = { .type = MSG_PROGRESS };
                message_set_u32(&m, TAG_PID, (uint32_t) w->pid);
                message_set_u64(&m, TAG_DONE, done);
                message_set_u64(&m, TAG_TOTAL, total);
                (void) message_send(w->job_fd, &m, NULL, 0);
                message_done(&m);
        }
        if (poll(&p, 1, 0) > 0 && (p.revents & POLLIN)) {
                Message m = {};
                int fds[1];
                if (message_recv(w->job_fd, &m, fds, 0, NULL) >= 0 && m.type == MSG_ABORT) {
                        message_done(&m);
                        log_info("checkpoint of %i abandoned on request", w->pid);
                        return -ECANCELED;
                }
                message_done(&m);
        }
        return 0;
}

/* Wait for memcrd's checkpoint job: the first complete request on our socket.
 * Connections that close without a request are ignored. */
static int open_job(Watch *w, Message *ret, int *ret_pidfd) {
        usec_t deadline = usec_add(now_usec(CLOCK_MONOTONIC), JOB_TIMEOUT_SEC * USEC_PER_SEC);
        struct timeval tv = { .tv_sec = REQUEST_TIMEOUT_SEC };
        _cleanup_close_ int sigfd = -EBADF;
        sigset_t mask;
        pid_t pid;
        int r;

        /* Stopped (SIGTERM, SIGINT) before a job came: nothing to restore. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        if (sigfd < 0)
                return -errno;

        for (;;) {
                struct pollfd p[2] = {
                        { .fd = w->listen_fd, .events = POLLIN },
                        { .fd = sigfd, .events = POLLIN },
                };
                _cleanup_close_ int fd = -EBADF;
                int fds[1] = { -EBADF };
                size_t n_fds = 0;
                usec_t now = now_usec(CLOCK_MONOTONIC);

                if (now >= deadline)
                        return log_error_errno(-ETIMEDOUT, "no checkpoint job arrived for %i", w->pid);
                r = poll(p, ELEMENTSOF(p), (int) ((deadline - now) / USEC_PER_MSEC) + 1);
                if (r < 0 && errno != EINTR)
                        return -errno;
                if (r <= 0)
                        continue;
                if (p[1].revents) {
                        log_info("stopped before a checkpoint job for %i arrived", w->pid);
                        stopped_before_job = true;
                        return -ECANCELED;
                }
                if (!p[0].revents)
                        continue;
                fd = accept4(w->listen_fd, NULL, NULL, SOCK_CLOEXEC);
                if (fd < 0 || peer_allowed(fd) < 0)
                        continue;

                (void) setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
                r = message_recv(fd, ret, fds, 1, &n_fds);
                if (r == -ECONNRESET)
                        continue;
                if (r < 0)
                        return log_error_errno(r, "receiving the checkpoint job failed: %m");
                if (ret->type != MSG_CHECKPOINT || n_fds != 1 || ret->pid != (uint32_t) w->pid) {
                        safe_close(fds[0]);
                        reply(fd, MEMCR_ERR_INVALID, EINVAL, "expected a checkpoint job for this PID", NULL,
                              false);
                        message_done(ret);
                        return log_error_errno(-EBADMSG, "unexpected first request");
                }
                /* The pidfd must be for the process we were started for. */
                r = pidfd_get_pid(fds[0], &pid);
                if (r < 0 || pid != w->pid) {
                        safe_close(fds[0]);
                        reply(fd, MEMCR_ERR_NO_PROCESS, ESRCH, "process exited", NULL, false);
                        message_done(ret);
                        return log_error_errno(r < 0 ? r : -ESRCH, "pidfd does not refer to %i", w->pid);
                }
                tv = (struct timeval) {};
                (void) setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
                *ret_pidfd = fds[0];
                return TAKE_FD(fd);
        }
}

/* Give up the restore socket. Done before the last answer is sent, so that
 * whoever reads it may start a new watcher for the same PID right away: a
 * watcher that unlinked its path after answering could race with the next
 * one binding it. */
static void release_socket(Watch *w) {
        if (w->socket_path) {
                (void) unlink(w->socket_path);
                w->socket_path = NULL;
        }
        w->listen_fd = safe_close(w->listen_fd);
}

static void log_outcome(const char *op, const Watch *w, int r, const char *id, const char *what) {
        log_struct(r < 0 ? LOG_ERR : LOG_INFO, what, MESSAGE_ID(id),
                   LOG_FIELD("MEMCR_PID", "%i", w->pid), LOG_FIELD("MEMCR_OP", "%s", op),
                   LOG_FIELD("MEMCR_RESULT", "%s", memcr_result_to_string(memcr_result_from_errno(r))),
                   LOG_FIELD("MEMCR_CALLER_UID", "%u", w->caller_uid),
                   LOG_FIELD("MEMCR_WATCHER_PID", "%i", (int) getpid()), NULL);
}

static pid_t thread_in_d_state(pid_t pid, char *wchan, size_t size);

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

                if (syscall(SYS_kcmp, pid, q, KCMP_VM, 0, 0) != 0 || thread_in_d_state(pid, wchan, sizeof(wchan)) > 0)
                        return true;
                usleep_safe(USEC_PER_MSEC);
        }
        return false;
}

/* Another process that shares pid's memory (CLONE_VM without CLONE_THREAD:
 * a vfork child with its parent, or clone(CLONE_VM)), 0 if none. Dropping
 * the pages of one would take them from under the other, which runs on.
 * A vfork parent is fine (see is_vfork_child()). A process cannot start
 * sharing its memory with one that exists already, so looking before the
 * checkpoint is enough. */
static pid_t memory_shared_with(pid_t pid) {
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

/* The first thread of pid that is traced by someone (after our own seize
 * failed, that is somebody else), 0 if none. */
static pid_t other_tracer(pid_t pid) {
        _cleanup_free_ pid_t *tids = NULL;
        size_t n = 0;

        if (procfs_list(pid, &tids, &n) < 0)
                return 0;
        for (size_t i = 0; i < n; i++) {
                pid_t tracer = 0;

                if (procfs_tracer(pid, tids[i], &tracer) >= 0 && tracer > 0)
                        return tracer;
        }
        return 0;
}

/* A thread of pid in uninterruptible sleep: its id, and where it sleeps. */
static pid_t thread_in_d_state(pid_t pid, char *wchan, size_t size) {
        _cleanup_free_ pid_t *tids = NULL;
        size_t n = 0;

        if (procfs_list(pid, &tids, &n) < 0)
                return 0;
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *w = NULL;
                char state = 0;

                if (procfs_stat(pid, tids[i], &state, NULL) < 0 || state != 'D')
                        continue;
                if (procfs_read(pid, tids[i], "wchan", 256, &w) >= 0 && w[0] && !streq(w, "0"))
                        snprintf(wchan, size, " in %s", w);
                return tids[i];
        }
        return 0;
}

/* What the caller reads when a checkpoint fails: what happened, and that the
 * process was left as it was. */
static void describe_failure(const Watch *w, int r, const CheckpointOptions *o, char *buf, size_t size) {
        if (o->reason && o->reason[0]) {
                snprintf(buf, size, "checkpoint of %i refused: %s; it was left untouched", w->pid, o->reason);
                return;
        }
        switch (r) {
        case -EBUSY: {
                pid_t tracer = other_tracer(w->pid);
                char comm[64] = "?";

                if (tracer > 0)
                        (void) procfs_comm(tracer, 0, comm, sizeof(comm));
                snprintf(buf, size,
                         "checkpoint of %i refused: it is being traced by another process (%s, PID %i), a debugger "
                         "perhaps; it was left untouched",
                         w->pid, comm, tracer);
                return;
        }
        case -EAGAIN:
                snprintf(buf, size,
                         "checkpoint of %i failed: it executed a new program while being frozen; it runs on (the new "
                         "program), try again",
                         w->pid);
                return;
        case -ETIMEDOUT: {
                char wchan[96] = "";
                pid_t tid = thread_in_d_state(w->pid, wchan, sizeof(wchan));

                if (tid > 0)
                        snprintf(buf, size,
                                 "checkpoint of %i failed: its thread %i did not stop in time, it is in uninterruptible "
                                 "sleep%s (I/O, vfork, a stuck file system); it was left running",
                                 w->pid, tid, wchan);
                else
                        snprintf(buf, size,
                                 "checkpoint of %i failed: it did not stop or respond in time; it was left running",
                                 w->pid);
                return;
        }
        case -ETIME:
                snprintf(buf, size,
                         "checkpoint of %i aborted: it did not finish within the time limit of the request; it runs "
                         "on unharmed",
                         w->pid);
                return;
        case -ECANCELED:
                snprintf(buf, size,
                         "checkpoint of %i cancelled (a restore request came, or the requester went away); it runs on "
                         "unharmed",
                         w->pid);
                return;
        case -ENOSPC:
        case -EDQUOT:
                snprintf(buf, size, "checkpoint of %i aborted: no space left for the dump in %s; it runs on unharmed",
                         w->pid, o->dump_dir);
                return;
        case -ESRCH:
                snprintf(buf, size, "checkpoint of %i failed: the process exited", w->pid);
                return;
        default:
                snprintf(buf, size, "checkpoint of %i failed: %s", w->pid, strerror(-r));
        }
}

static int do_checkpoint(Watch *w) {
        _cleanup_close_ int job = -EBADF;
        Message m = {};
        CheckpointOptions o = CHECKPOINT_OPTIONS_DEFAULT;
        char reason[256] = "";
        int r;

        o.reason = reason;
        o.reason_size = sizeof(reason);
        job = open_job(w, &m, &w->pidfd);
        if (job < 0)
                return job;

        {
                /* memcrd checked them; the limits hold here too, before the
                 * target is touched. */
                char why[256];
                if (request_check_values(&m, why, sizeof(why)) < 0) {
                        reply(job, MEMCR_ERR_INVALID, EINVAL, why, NULL, false);
                        message_done(&m);
                        return log_error_errno(-EINVAL, "checkpoint job for %i refused: %s", w->pid, why);
                }
        }
        w->caller_uid = MESSAGE_HAS(&m, TAG_CALLER_UID) ? m.caller_uid : (uid_t) -1;
        w->max_frozen_sec = MESSAGE_HAS(&m, TAG_MAX_FROZEN_SEC) ? m.max_frozen_sec : 0;
        w->want_progress = MESSAGE_HAS(&m, TAG_FLAGS) && (m.flags & REQUEST_FLAG_PROGRESS);
        w->encrypted = !(MESSAGE_HAS(&m, TAG_FLAGS) && (m.flags & REQUEST_FLAG_NO_ENCRYPT));
        w->lazy_default = MESSAGE_HAS(&m, TAG_FLAGS) && (m.flags & REQUEST_FLAG_LAZY);
        w->target_uid = proc_uid(w->pid);
        (void) procfs_comm(w->pid, 0, w->comm, sizeof(w->comm));
        snprintf(w->codec, sizeof(w->codec), "%s", MESSAGE_HAS(&m, TAG_CODEC) ? m.codec : "none");

        o.dump_dir = MESSAGE_HAS(&m, TAG_DUMP_DIR) ? m.dump_dir : MEMCR_STATE_DIR;
        /* memcrd says what it authorized; the target must still be that once
         * it is stopped. */
        ProcIdentity identity;
        if (!MESSAGE_HAS(&m, TAG_AUTH_IDENTITY) || proc_identity_from_string(m.auth_identity, &identity) < 0) {
                reply(job, MEMCR_ERR_INVALID, EINVAL, "the checkpoint job does not say what was authorized", NULL,
                      false);
                message_done(&m);
                return log_error_errno(-EBADMSG, "checkpoint job for %i without the authorized identity", w->pid);
        }
        o.identity = &identity;
        r = codec_from_string(w->codec);
        if (r < 0 || !codec_supported((Codec) r)) {
                reply(job, MEMCR_ERR_UNSUPPORTED, EOPNOTSUPP, "compression not supported", NULL, false);
                message_done(&m);
                return log_error_errno(-EOPNOTSUPP, "unsupported codec %s", w->codec);
        }
        o.codec = (Codec) r;
        o.protection = w->encrypted ? PROTECTION_ENCRYPT : PROTECTION_AUTH;
        if (MESSAGE_HAS(&m, TAG_TIMEOUT_MSEC) && m.timeout_msec > 0) {
                o.deadline = usec_add(now_usec(CLOCK_MONOTONIC), m.timeout_msec * USEC_PER_MSEC);
                /* Waiting for the threads to stop counts against the limit too. */
                if (m.timeout_msec < STOP_TIMEOUT_MSEC)
                        o.stop_timeout = m.timeout_msec * USEC_PER_MSEC;
        }
        o.progress = on_progress;
        o.userdata = w;
        w->job_fd = job;

        (void) sd_notifyf(false, "STATUS=Checkpointing %i", w->pid);
        pid_t sharer = memory_shared_with(w->pid);
        if (sharer > 0) {
                char msg[512], comm[64] = "?";

                (void) procfs_comm(sharer, 0, comm, sizeof(comm));
                snprintf(msg, sizeof(msg),
                         "checkpoint of %i refused: it shares its memory with process %i (%s), as a vfork() child "
                         "does with its parent until it executes a program; freezing it would take the memory of the "
                         "other, which runs on. It was left untouched; try again later",
                         w->pid, sharer, comm);
                release_socket(w);
                reply(job, MEMCR_ERR_BUSY, EBUSY, msg, NULL, false);
                message_done(&m);
                return log_error_errno(-EBUSY, "%s", msg);
        }
        r = memcr_checkpoint(w->pid, w->pidfd, &o, &w->frozen);
        w->job_fd = -EBADF;
        if (r == -ETIMEDOUT && o.deadline > 0 && now_usec(CLOCK_MONOTONIC) >= o.deadline)
                r = -ETIME; /* the limit of the request ran out while threads were stopping */
        if (r < 0) {
                char msg[512];
                describe_failure(w, r, &o, msg, sizeof(msg));
                release_socket(w);
                reply(job, memcr_result_from_errno(r), r, msg, w, false);
                message_done(&m);
                return log_debug_errno(r, "%s", msg);
        }

        reply(job, MEMCR_OK, 0, NULL, w, true);
        message_done(&m);
        (void) sd_notifyf(false, "STATUS=Holding %i (%s) frozen", w->pid, w->comm);
        return 0;
}

/* A restore that failed: the target was killed (fail-safe), or had exited
 * (-ESRCH). We are done with it: the dump (and its space) and the socket go
 * before the answer. */
static int restore_failed(Watch *w, int fd, int r, const char *why) {
        char msg[512];
        bool killed = r != -ESRCH;

        w->frozen = frozen_free(w->frozen);
        release_socket(w);
        if (r == -EBADMSG)
                snprintf(msg, sizeof(msg),
                         "restore of %i failed (%s): %s: its dump failed verification (changed or damaged "
                         "on disk); the target was killed rather than resumed with memory that is not its own",
                         w->pid, why, strerror(-r));
        else
                snprintf(msg, sizeof(msg), "restore of %i failed (%s): %s%s", w->pid, why, strerror(-r),
                         killed ? "; the target was killed rather than resumed with memory missing" : "");
        if (killed)
                log_outcome("restore", w, r, MEMCR_MESSAGE_TARGET_KILLED, msg);
        if (fd >= 0)
                reply(fd, killed ? MEMCR_ERR_KILLED : MEMCR_ERR_NO_PROCESS, r, msg, w, false);
        return r;
}

static int do_restore_noted(Watch *w, int fd, const char *why, const char *note) {
        RestoreStats rs = {};
        int r;

        (void) sd_notifyf(false, "STATUS=Restoring %i", w->pid);
        r = memcr_restore(w->frozen, NULL, NULL, &rs);
        if (r < 0)
                return restore_failed(w, fd, r, why);
        w->frozen = frozen_free(w->frozen);
        release_socket(w);
        if (fd >= 0) {
                Message m = { .type = MSG_REPLY };
                message_set_u32(&m, TAG_RESULT, MEMCR_OK);
                message_set_u32(&m, TAG_PID, (uint32_t) w->pid);
                message_set_u64(&m, TAG_DURATION_USEC, rs.duration);
                message_set_u64(&m, TAG_DUMP_BYTES, rs.restored_bytes);
                message_set_u64(&m, TAG_RSS_AFTER, rs.rss_after);
                message_set_u32(&m, TAG_CALLER_UID, w->caller_uid);
                if (note)
                        (void) message_set_string(&m, TAG_MESSAGE, note);
                (void) message_send(fd, &m, NULL, 0);
                message_done(&m);
        }
        log_debug("restored %i (%s)", w->pid, why);
        return 0;
}

static int do_restore(Watch *w, int fd, const char *why) {
        return do_restore_noted(w, fd, why, NULL);
}

static void log_lazy(const Watch *w, const char *what, const LazyProgress *p, const char *id) {
        log_struct(LOG_INFO, what, MESSAGE_ID(id), LOG_FIELD("MEMCR_PID", "%i", w->pid),
                   LOG_FIELD("MEMCR_OP", "%s", "restore"), LOG_FIELD("MEMCR_RESULT", "%s", "ok"),
                   LOG_FIELD("MEMCR_RESTORE", "%s", "lazy"), LOG_FIELD("MEMCR_CALLER_UID", "%u", w->caller_uid),
                   LOG_FIELD("MEMCR_DUMP_BYTES", "%" PRIu64, p->total_bytes),
                   LOG_FIELD("MEMCR_RUNNING_USEC", "%" PRIu64, p->running_usec),
                   LOG_FIELD("MEMCR_RESIDENT_USEC", "%" PRIu64, p->complete_usec),
                   LOG_FIELD("MEMCR_FAULTS", "%" PRIu64, p->faults),
                   LOG_FIELD("MEMCR_WATCHER_PID", "%i", (int) getpid()), NULL);
}

/* How a process ended, in a sentence and in a few words. */
static void describe_exit(int status, char *buf, size_t size, char *state, size_t state_size) {
        if (WIFSIGNALED(status)) {
                const char *name = sigabbrev_np(WTERMSIG(status));
                snprintf(buf, size, "killed by signal %i (SIG%s)%s", WTERMSIG(status), name ?: "?",
                         WCOREDUMP(status) ? ", core dumped" : "");
                snprintf(state, state_size, "died (SIG%s)", name ?: "?");
        } else {
                snprintf(buf, size, "exited with status %i", WEXITSTATUS(status));
                snprintf(state, state_size, "exited (status %i)", WEXITSTATUS(status));
        }
}

/* Leave how a lazily restored target ended for memcrd (which shows it in
 * status and list) in RUNTIME_DIR/PID.ended: a short state on the first
 * line, the sentence that was logged on the second. */
static void leave_outcome(const Watch *w, const char *state, const char *text) {
        _cleanup_close_ int fd = -EBADF;
        char path[4096];
        int r;

        snprintf(path, sizeof(path), "%s/%i.ended", arg_runtime_dir, w->pid);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        r = fd < 0 ? -errno : write_full(fd, state, strlen(state));
        if (r >= 0)
                r = write_full(fd, "\n", 1);
        if (r >= 0)
                r = write_full(fd, text, strlen(text));
        if (r < 0)
                log_debug_errno(r, "cannot leave the outcome in %s: %m", path);
}

/* The target ended by itself while its memory streamed back: say how, once. */
static void report_exit(const Watch *w, const LazyProgress *p) {
        char how[96], state[32], text[384];

        describe_exit(p->exit_status, how, sizeof(how), state, sizeof(state));
        snprintf(text, sizeof(text), "process %i (%s) ended %.1f ms after its lazy restore, while its memory streamed back: %s",
                 w->pid, w->comm, (double) p->exited_usec / USEC_PER_MSEC, how);
        log_struct(WIFSIGNALED(p->exit_status) ? LOG_WARNING : LOG_INFO, text, MESSAGE_ID(MEMCR_MESSAGE_RESTORED_DIED),
                   LOG_FIELD("MEMCR_PID", "%i", w->pid), LOG_FIELD("MEMCR_OP", "%s", "restore"),
                   LOG_FIELD("MEMCR_RESTORE", "%s", "lazy"), LOG_FIELD("MEMCR_EXIT", "%s", how),
                   LOG_FIELD("MEMCR_EXITED_USEC", "%" PRIu64, p->exited_usec),
                   LOG_FIELD("MEMCR_CALLER_UID", "%u", w->caller_uid),
                   LOG_FIELD("MEMCR_WATCHER_PID", "%i", (int) getpid()), NULL);
        leave_outcome(w, state, text);
}

static void reply_streaming(int fd, const Watch *w, LazyRestore *l, bool first) {
        Message m = { .type = MSG_REPLY };
        LazyProgress p;

        lazy_restore_progress(l, &p);
        message_set_u32(&m, TAG_RESULT, MEMCR_OK);
        message_set_u32(&m, TAG_PID, (uint32_t) w->pid);
        message_set_u32(&m, TAG_WATCHER_PID, (uint32_t) getpid());
        (void) message_set_string(&m, TAG_STATE, "streaming");
        (void) message_set_string(&m, TAG_COMM, w->comm);
        message_set_u32(&m, TAG_UID, w->target_uid);
        message_set_u32(&m, TAG_CALLER_UID, w->caller_uid);
        message_set_u64(&m, TAG_DONE, p.done_bytes);
        message_set_u64(&m, TAG_TOTAL, p.total_bytes);
        if (first)
                message_set_u64(&m, TAG_DURATION_USEC, p.running_usec);
        (void) message_send(fd, &m, NULL, 0);
        message_done(&m);
}

/* The signals the watcher's loops take from a signalfd (blocked in main()). */
static int open_signalfd(void) {
        sigset_t mask;
        int fd;

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGCHLD);
        fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        return fd < 0 ? -errno : fd;
}

/* The next connection on our socket from a peer that may talk to us, with
 * time limits on its request and our answer; -errno if there is none. */
static int accept_request(Watch *w) {
        struct timeval tv = { .tv_sec = REQUEST_TIMEOUT_SEC };
        _cleanup_close_ int fd = accept4(w->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        int r;

        if (fd < 0)
                return -errno;
        r = peer_allowed(fd);
        if (r < 0)
                return r;
        (void) setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        (void) setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        return TAKE_FD(fd);
}

/* The target runs; serve its memory until all of it is back. Requests on our
 * socket get the progress. A stop request cannot cut this short: leaving now
 * would kill the target. */
static int stream(Watch *w, LazyRestore *l) {
        _cleanup_close_ int sigfd = open_signalfd();
        int r;

        /* Leaving now would kill the target: without a signalfd, stop
         * requests are only put off until the memory is back (poll()
         * ignores the negative descriptor). */
        if (sigfd < 0)
                log_warning_errno(sigfd, "no signalfd (%m); stop requests wait until the memory of %i is back",
                                  w->pid);

        for (;;) {
                struct pollfd p[3] = {
                        { .fd = lazy_restore_fd(l), .events = POLLIN },
                        { .fd = w->listen_fd, .events = POLLIN },
                        { .fd = sigfd, .events = POLLIN },
                };
                LazyProgress progress;

                r = lazy_restore_process(l);
                if (r < 0) {
                        char msg[512];

                        snprintf(msg, sizeof(msg),
                                 "lazy restore of %i failed: %s%s; the target was killed rather than run on with memory "
                                 "missing or not its own",
                                 w->pid, strerror(-r), r == -EBADMSG ? " (its dump failed verification)" : "");
                        log_outcome("restore", w, r, MEMCR_MESSAGE_TARGET_KILLED, msg);
                        leave_outcome(w, "killed", msg);
                        release_socket(w);
                        /* Whatever the engine could not kill, our exit does
                         * (PTRACE_O_EXITKILL). */
                        _exit(EXIT_FAILURE);
                }
                if (r > 0) {
                        lazy_restore_progress(l, &progress);
                        if (progress.exited) {
                                report_exit(w, &progress);
                                return 0;
                        }
                        log_lazy(w, "memory of a lazily restored process fully back", &progress,
                                 MEMCR_MESSAGE_RESTORE_RESIDENT);
                        return 0;
                }

                r = poll(p, ELEMENTSOF(p), -1);
                if (r < 0 && errno != EINTR)
                        return -errno;
                if (p[2].revents) {
                        struct signalfd_siginfo si;
                        while (read(sigfd, &si, sizeof(si)) == (ssize_t) sizeof(si))
                                if (si.ssi_signo != SIGCHLD)
                                        log_info("stop requested while the memory of %i is streaming back; "
                                                 "finishing that first", w->pid);
                }
                if (p[1].revents) {
                        _cleanup_close_ int fd = accept_request(w);
                        Message m = {};

                        if (fd < 0)
                                continue;
                        if (message_recv(fd, &m, NULL, 0, NULL) < 0)
                                continue;
                        if (m.type == MSG_STATUS || m.type == MSG_LIST)
                                reply_streaming(fd, w, l, false);
                        else
                                reply(fd, MEMCR_ERR_BUSY, EBUSY, "its memory is still streaming back", NULL, false);
                        message_done(&m);
                }
        }
}

static int do_restore_lazy(Watch *w, int fd) {
        _cleanup_close_ int dev = -EBADF;
        LazyOptions o = { .userfaultfd_dev = -1 };
        LazyRestore *l = NULL;
        LazyProgress progress;
        int r;

        /* /dev/userfaultfd gives the target a userfaultfd that handles faults
         * the kernel takes on its behalf too; without it the target may still
         * be allowed userfaultfd(2). */
        dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
        if (dev < 0)
                log_debug_errno(-errno, "/dev/userfaultfd: %m");
        o.userfaultfd_dev = dev;

        (void) sd_notifyf(false, "STATUS=Restoring %i lazily", w->pid);
        r = lazy_restore_start(w->frozen, &o, &l);
        if (r < 0) {
                if (w->frozen && w->frozen->tracee) {
                        /* Still frozen, nothing lost: do it the eager way, and
                         * say why. */
                        char note[384];
                        if (w->frozen->no_lazy[0])
                                snprintf(note, sizeof(note), "restored eagerly: no lazy restore for %i, %s", w->pid,
                                         w->frozen->no_lazy);
                        else
                                snprintf(note, sizeof(note), "restored eagerly: a lazy restore of %i was not possible (%s)",
                                         w->pid, strerror(-r));
                        log_info("%s", note);
                        return do_restore_noted(w, fd, "requested (lazy restore not possible)", note);
                }
                /* No longer held: its dump failed verification, or the
                 * restore failed once the target could not run without us;
                 * the engine killed it. */
                return restore_failed(w, fd, r, "requested, lazily");
        }
        w->frozen = NULL; /* the lazy restore owns it now */

        lazy_restore_progress(l, &progress);
        log_lazy(w, "process restored lazily: running, memory streaming back", &progress, MEMCR_MESSAGE_RESTORE_DONE);
        if (fd >= 0)
                reply_streaming(fd, w, l, true);
        (void) sd_notifyf(false, "STATUS=Streaming the memory of %i back", w->pid);

        r = stream(w, l);
        lazy_restore_free(l);
        return r;
}

/* Has a thread of the frozen target exited? Every thread is held in a stop,
 * so only SIGKILL can have made one exit. Its exit is ours (the tracer's) to
 * collect: until we do, the process stays a zombie and its pidfd says
 * nothing. Peek without collecting. */
static bool target_dying(Watch *w) {
        siginfo_t si = {};

        if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT | __WALL) >= 0 && si.si_pid > 0 &&
            (si.si_code == CLD_EXITED || si.si_code == CLD_KILLED || si.si_code == CLD_DUMPED))
                return true;
        return w->frozen && w->frozen->tracee && tracee_is_dead(w->frozen->tracee);
}

/* Serve requests while the target is frozen. Returns when it is restored or gone. */
/* The watcher cannot hold the target as it should (a set-up step failed
 * after the checkpoint, or its loop broke): the memory is safe in the dump,
 * so it is written back and the target runs on. Only a dump that fails
 * verification kills (see restore_failed()). */
static int give_back(Watch *w, int error, const char *what) {
        char why[256];

        snprintf(why, sizeof(why), "the watcher could not hold it: %s: %s", what, strerror(-error));
        log_struct_errno(LOG_ERR, error, "cannot hold the frozen process; restoring it",
                         LOG_FIELD("MEMCR_PID", "%i", w->pid), LOG_FIELD("MEMCR_OP", "%s", "hold"),
                         LOG_FIELD("MEMCR_REASON", "%s", why), LOG_FIELD("MEMCR_CALLER_UID", "%u", w->caller_uid),
                         LOG_FIELD("MEMCR_WATCHER_PID", "%i", (int) getpid()), NULL);
        return do_restore(w, -EBADF, why);
}

static int hold(Watch *w) {
        _cleanup_close_ int sigfd = open_signalfd(), timerfd = -EBADF;
        int r;

        if (sigfd < 0)
                return give_back(w, sigfd, "signalfd");
        timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
        if (timerfd < 0)
                return give_back(w, -errno, "timerfd_create");
        if (w->max_frozen_sec > 0) {
                /* At most MEMCR_MAX_FROZEN_SEC (the job was checked): fits. */
                struct itimerspec its = { .it_value.tv_sec = (time_t) MIN(w->max_frozen_sec, MEMCR_MAX_FROZEN_SEC) };
                if (timerfd_settime(timerfd, 0, &its, NULL) < 0)
                        return give_back(w, -errno, "timerfd_settime for the maximum frozen time");
        }

        for (;;) {
                struct pollfd p[4] = {
                        { .fd = w->listen_fd, .events = POLLIN },
                        { .fd = w->pidfd, .events = POLLIN },
                        { .fd = sigfd, .events = POLLIN },
                        { .fd = timerfd, .events = POLLIN },
                };

                r = poll(p, ELEMENTSOF(p), -1);
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return give_back(w, -errno, "poll");
                }
                if (p[2].revents) {
                        struct signalfd_siginfo si;
                        bool stop = false;

                        while (read(sigfd, &si, sizeof(si)) == (ssize_t) sizeof(si))
                                if (si.ssi_signo != SIGCHLD)
                                        stop = true;
                        if (!target_dying(w) && stop)
                                return do_restore(w, -EBADF, "stop requested");
                }
                if (p[1].revents || target_dying(w)) {
                        log_outcome("hold", w, -ESRCH, MEMCR_MESSAGE_TARGET_EXITED,
                                    "frozen process was killed while frozen; dropping its dump");
                        /* Collects its threads (the fail-safe kill finds it dead already). */
                        w->frozen = frozen_free(w->frozen);
                        return -ESRCH;
                }
                if (p[3].revents) {
                        log_info("%i has been frozen for %" PRIu64 " s, restoring it", w->pid,
                                 w->max_frozen_sec);
                        return do_restore(w, -EBADF, "maximum frozen time reached");
                }
                if (p[0].revents) {
                        _cleanup_close_ int fd = accept_request(w);
                        Message m = {};
                        int fds[1];

                        if (fd < 0)
                                continue;
                        if (message_recv(fd, &m, fds, 0, NULL) < 0)
                                continue;
                        switch (m.type) {
                        case MSG_STATUS:
                        case MSG_LIST:
                                reply(fd, MEMCR_OK, 0, NULL, w, true);
                                break;
                        case MSG_RESTORE: {
                                uint32_t flags = MESSAGE_HAS(&m, TAG_FLAGS) ? m.flags : 0;
                                bool lazy = (flags & REQUEST_FLAG_LAZY) ||
                                            (w->lazy_default && !(flags & REQUEST_FLAG_EAGER));
                                message_done(&m);
                                return lazy ? do_restore_lazy(w, fd) : do_restore(w, fd, "requested");
                        }
                        case MSG_CHECKPOINT:
                                reply(fd, MEMCR_ERR_ALREADY_FROZEN, EALREADY, "already frozen", w, true);
                                break;
                        default:
                                reply(fd, MEMCR_ERR_INVALID, EINVAL, "not a watcher request", NULL, false);
                        }
                        message_done(&m);
                }
        }
}

int main(int argc, char *argv[]) {
        Watch w = { .pidfd = -EBADF, .listen_fd = -EBADF, .job_fd = -EBADF };
        char path[4096];
        sigset_t mask;
        int r;

        log_set_ident("memcr-watch");
        log_parse_environment();
        r = parse_argv(argc, argv);
        if (r < 0)
                return EXIT_FAILURE;
        if (arg_pid <= 0) {
                r = spawned_for(&arg_pid, &arg_ready_fd);
                if (r < 0)
                        return EXIT_FAILURE;
        }
        w.pid = arg_pid;

        r = privileges_drop_to_ptrace();
        if (r < 0)
                return EXIT_FAILURE;
        /* We hold a dump key and a frozen process's memory: no core dumps, and
         * no ptrace by other processes of our own user. */
        if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
                log_error_errno(-errno, "cannot make the watcher undumpable: %m");
                return EXIT_FAILURE;
        }
        r = private_dir_check(arg_runtime_dir);
        if (r < 0)
                return EXIT_FAILURE;

        /* Signals are handled in the poll loop. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGPIPE);
        /* A traced thread's exit is announced with SIGCHLD (see hold()). */
        sigaddset(&mask, SIGCHLD);
        sigprocmask(SIG_BLOCK, &mask, NULL);

        snprintf(path, sizeof(path), "%s/%i.sock", arg_runtime_dir, w.pid);
        w.socket_path = path;
        w.listen_fd = unix_listen(path, 0600, 16);
        if (w.listen_fd < 0) {
                log_error_errno(w.listen_fd, "cannot listen on %s: %m", path);
                return EXIT_FAILURE;
        }

        if (arg_ready_fd >= 0) {
                (void) write(arg_ready_fd, "R", 1);
                safe_close(arg_ready_fd);
        }
        (void) sd_notify(false, "READY=1");

        r = do_checkpoint(&w);
        if (r >= 0) {
                r = hold(&w);
                /* Whatever hold() left behind still frozen goes back. */
                if (w.frozen && w.frozen->tracee && !target_dying(&w))
                        (void) give_back(&w, r < 0 ? r : -EIO, "the watcher is exiting");
                w.frozen = frozen_free(w.frozen);
        }

        (void) sd_notify(false, "STOPPING=1");
        release_socket(&w);
        safe_close(w.pidfd);
        return r < 0 && r != -ESRCH && !stopped_before_job ? EXIT_FAILURE : EXIT_SUCCESS;
}
