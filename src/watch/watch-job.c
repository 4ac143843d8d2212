/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The checkpoint job from memcrd: taking it, checking it, running it,
 * reporting progress, and answering. */

#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>

#include "config.h"
#include "log.h"
#include "macro.h"
#include "pidfd-util.h"
#include "procfs.h"
#include "watch-job.h"
#include "watch-loop.h"
#include "watch-target.h"

#define JOB_TIMEOUT_SEC 10 /* memcrd sends the job as soon as we are ready */
#define STOP_TIMEOUT_MSEC 2000 /* the engine's default */

typedef struct Job {
        int fd; /* the connection it came on */
        Message message;
} Job;

static void job_done(Job *job) {
        message_done(&job->message);
        job->fd = safe_close(job->fd);
}

/* Stopped (SIGTERM, SIGINT) before a job came: nothing to restore. */
static void job_on_ready(Watch *w, WatchLoop *loop, unsigned ready) {
        if ((ready & 1) && watch_read_signals(loop->fds[0])) {
                log_info("stopped before a checkpoint job for %i arrived", w->pid);
                w->stopped_before_job = true;
                watch_loop_exit(loop, -ECANCELED);
        }
}

static void job_on_request(Watch *w, WatchLoop *loop, WatchRequest *req) {
        Job *job = loop->userdata;
        struct timeval tv = {};
        pid_t pid;
        int r;

        if (req->error < 0) {
                watch_loop_exit(loop, log_error_errno(req->error, "receiving the checkpoint job failed: %m"));
                return;
        }
        if (req->message.type != MSG_CHECKPOINT || req->n_fds != 1 || req->message.pid != (uint32_t) w->pid) {
                watch_reply(req->fd, MEMCR_ERR_INVALID, EINVAL, "expected a checkpoint job for this PID", NULL, false);
                watch_loop_exit(loop, log_error_errno(-EBADMSG, "unexpected first request"));
                return;
        }
        /* The pidfd must be for the process we were started for. */
        r = pidfd_get_pid(req->fds[0], &pid);
        if (r < 0 || pid != w->pid) {
                watch_reply(req->fd, MEMCR_ERR_NO_PROCESS, ESRCH, "process exited", NULL, false);
                watch_loop_exit(loop, log_error_errno(r < 0 ? r : -ESRCH, "pidfd does not refer to %i", w->pid));
                return;
        }
        /* The job runs as long as it takes. */
        (void) setsockopt(req->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        (void) setsockopt(req->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        w->pidfd = TAKE_FD(req->fds[0]);
        job->fd = TAKE_FD(req->fd);
        job->message = req->message;
        req->message = (Message) {};
        watch_loop_exit(loop, 0);
}

/* Wait for memcrd's checkpoint job: the first complete request on our
 * socket. Connections that close without a request are ignored. */
static int job_wait(Watch *w, Job *ret) {
        _cleanup_close_ int sigfd = watch_open_signalfd();
        WatchLoop loop = {
                .fds = { sigfd },
                .n_fds = 1,
                .request_fds = 1,
                .deadline = usec_add(now_usec(CLOCK_MONOTONIC), JOB_TIMEOUT_SEC * USEC_PER_SEC),
                .userdata = ret,
                .on_ready = job_on_ready,
                .on_request = job_on_request,
        };
        int r;

        if (sigfd < 0)
                return sigfd;
        r = watch_loop_run(w, &loop);
        if (r == -ETIMEDOUT)
                return log_error_errno(r, "no checkpoint job arrived for %i", w->pid);
        return r < 0 ? r : loop.result;
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

static void describe_busy(const Watch *w, char *buf, size_t size) {
        pid_t tracer = target_other_tracer(w->pid);
        char comm[64] = "?";

        if (tracer > 0)
                (void) procfs_comm(tracer, 0, comm, sizeof(comm));
        snprintf(buf, size,
                 "checkpoint of %i refused: it is being traced by another process (%s, PID %i), a debugger perhaps; "
                 "it was left untouched",
                 w->pid, comm, tracer);
}

static void describe_stuck(const Watch *w, char *buf, size_t size) {
        char wchan[96] = "";
        pid_t tid = target_thread_in_d_state(w->pid, wchan, sizeof(wchan));

        if (tid > 0)
                snprintf(buf, size,
                         "checkpoint of %i failed: its thread %i did not stop in time, it is in uninterruptible "
                         "sleep%s (I/O, vfork, a stuck file system); it was left running",
                         w->pid, tid, wchan);
        else
                snprintf(buf, size, "checkpoint of %i failed: it did not stop or respond in time; it was left running",
                         w->pid);
}

/* What the caller reads when a checkpoint fails: what happened, and that the
 * process was left as it was. */
static void describe_failure(const Watch *w, int r, const CheckpointOptions *o, char *buf, size_t size) {
        const char *what;

        if (o->reason && o->reason[0]) {
                snprintf(buf, size, "checkpoint of %i refused: %s; it was left untouched", w->pid, o->reason);
                return;
        }
        switch (r) {
        case -EBUSY:
                describe_busy(w, buf, size);
                return;
        case -ETIMEDOUT:
                describe_stuck(w, buf, size);
                return;
        case -EAGAIN:
                what = "failed: it executed a new program while being frozen; it runs on (the new program), try again";
                break;
        case -ETIME:
                what = "aborted: it did not finish within the time limit of the request; it runs on unharmed";
                break;
        case -ECANCELED:
                what = "cancelled (a restore request came, or the requester went away); it runs on unharmed";
                break;
        case -ENOSPC:
        case -EDQUOT:
                snprintf(buf, size, "checkpoint of %i aborted: no space left for the dump in %s; it runs on unharmed",
                         w->pid, o->dump_dir);
                return;
        case -ESRCH:
                what = "failed: the process exited";
                break;
        default:
                snprintf(buf, size, "checkpoint of %i failed: %s", w->pid, strerror(-r));
                return;
        }
        snprintf(buf, size, "checkpoint of %i %s", w->pid, what);
}

/* Refuse the job before the target is touched: answer, and log why. */
static int job_refuse(int fd, MemcrResult result, int error, const char *answer, int r, const char *why) {
        watch_reply(fd, result, error, answer, NULL, false);
        return log_error_errno(r, "%s", why);
}

/* The job's values, checked again (memcrd checked them; the limits hold here
 * too, before the target is touched): into w, and o for the engine. */
static int job_read(Watch *w, const Job *job, CheckpointOptions *o, ProcIdentity *identity) {
        const Message *m = &job->message;
        char why[256], text[384];
        uint64_t uid;
        int r;

        if (request_check_values(m, why, sizeof(why)) < 0) {
                snprintf(text, sizeof(text), "checkpoint job for %i refused: %s", w->pid, why);
                return job_refuse(job->fd, MEMCR_ERR_INVALID, EINVAL, why, -EINVAL, text);
        }
        w->caller_uid = MESSAGE_HAS(m, TAG_CALLER_UID) ? m->caller_uid : (uid_t) -1;
        w->max_frozen_sec = MESSAGE_HAS(m, TAG_MAX_FROZEN_SEC) ? m->max_frozen_sec : 0;
        w->want_progress = MESSAGE_HAS(m, TAG_FLAGS) && (m->flags & REQUEST_FLAG_PROGRESS);
        w->encrypted = !(MESSAGE_HAS(m, TAG_FLAGS) && (m->flags & REQUEST_FLAG_NO_ENCRYPT));
        w->lazy_default = MESSAGE_HAS(m, TAG_FLAGS) && (m->flags & REQUEST_FLAG_LAZY);
        w->target_uid = procfs_status_u64(w->pid, 0, "Uid", &uid) < 0 ? (uid_t) -1 : (uid_t) uid;
        (void) procfs_comm(w->pid, 0, w->comm, sizeof(w->comm));
        snprintf(w->codec, sizeof(w->codec), "%s", MESSAGE_HAS(m, TAG_CODEC) ? m->codec : "none");

        o->dump_dir = MESSAGE_HAS(m, TAG_DUMP_DIR) ? m->dump_dir : MEMCR_STATE_DIR;
        /* memcrd says what it authorized; the target must still be that once
         * it is stopped. */
        if (!MESSAGE_HAS(m, TAG_AUTH_IDENTITY) || proc_identity_from_string(m->auth_identity, identity) < 0) {
                snprintf(text, sizeof(text), "checkpoint job for %i without the authorized identity", w->pid);
                return job_refuse(job->fd, MEMCR_ERR_INVALID, EINVAL,
                                  "the checkpoint job does not say what was authorized", -EBADMSG, text);
        }
        o->identity = identity;
        r = codec_from_string(w->codec);
        if (r < 0 || !codec_supported((Codec) r)) {
                snprintf(text, sizeof(text), "unsupported codec %s", w->codec);
                return job_refuse(job->fd, MEMCR_ERR_UNSUPPORTED, EOPNOTSUPP, "compression not supported", -EOPNOTSUPP,
                                  text);
        }
        o->codec = (Codec) r;
        o->protection = w->encrypted ? PROTECTION_ENCRYPT : PROTECTION_AUTH;
        if (MESSAGE_HAS(m, TAG_TIMEOUT_MSEC) && m->timeout_msec > 0) {
                o->deadline = usec_add(now_usec(CLOCK_MONOTONIC), m->timeout_msec * USEC_PER_MSEC);
                /* Waiting for the threads to stop counts against the limit too. */
                if (m->timeout_msec < STOP_TIMEOUT_MSEC)
                        o->stop_timeout = m->timeout_msec * USEC_PER_MSEC;
        }
        return 0;
}

/* A process that shares its memory with another one is left alone. */
static int refuse_if_shared(Watch *w, int fd) {
        pid_t sharer = target_memory_shared_with(w->pid);
        char msg[512], comm[64] = "?";

        if (sharer <= 0)
                return 0;
        (void) procfs_comm(sharer, 0, comm, sizeof(comm));
        snprintf(msg, sizeof(msg),
                 "checkpoint of %i refused: it shares its memory with process %i (%s), as a vfork() child does with "
                 "its parent until it executes a program; freezing it would take the memory of the other, which runs "
                 "on. It was left untouched; try again later",
                 w->pid, sharer, comm);
        watch_release_socket(w);
        return job_refuse(fd, MEMCR_ERR_BUSY, EBUSY, msg, -EBUSY, msg);
}

int watch_checkpoint(Watch *w) {
        _cleanup_(job_done) Job job = { .fd = -EBADF };
        CheckpointOptions o = CHECKPOINT_OPTIONS_DEFAULT;
        ProcIdentity identity;
        char reason[256] = "", msg[512];
        int r;

        r = job_wait(w, &job);
        if (r < 0)
                return r;
        r = job_read(w, &job, &o, &identity);
        if (r < 0)
                return r;
        o.reason = reason;
        o.reason_size = sizeof(reason);
        o.progress = on_progress;
        o.userdata = w;

        (void) sd_notifyf(false, "STATUS=Checkpointing %i", w->pid);
        r = refuse_if_shared(w, job.fd);
        if (r < 0)
                return r;
        w->job_fd = job.fd;
        r = memcr_checkpoint(w->pid, w->pidfd, &o, &w->frozen);
        w->job_fd = -EBADF;
        if (r == -ETIMEDOUT && o.deadline > 0 && now_usec(CLOCK_MONOTONIC) >= o.deadline)
                r = -ETIME; /* the limit of the request ran out while threads were stopping */
        if (r < 0) {
                describe_failure(w, r, &o, msg, sizeof(msg));
                watch_release_socket(w);
                watch_reply(job.fd, memcr_result_from_errno(r), r, msg, w, false);
                return log_debug_errno(r, "%s", msg);
        }

        watch_reply(job.fd, MEMCR_OK, 0, NULL, w, true);
        (void) sd_notifyf(false, "STATUS=Holding %i (%s) frozen", w->pid, w->comm);
        return 0;
}
