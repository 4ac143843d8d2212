/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The lazy restore: the process runs again at once, its memory streams back
 * behind it, and the watcher serves it until all of it is back. */

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "fileio.h"
#include "lazy.h"
#include "log.h"
#include "macro.h"
#include "memcr-ids.h"
#include "watch-loop.h"
#include "watch-restore.h"
#include "watch-stream.h"

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

        snprintf(path, sizeof(path), "%s/%i.ended", w->runtime_dir, w->pid);
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

/* The lazy restore could not go on once the target ran: it was killed. */
_noreturn_ static void stream_failed(Watch *w, int r) {
        char msg[512];

        snprintf(msg, sizeof(msg),
                 "lazy restore of %i (%s) failed: %s%s; the target was killed rather than run on with memory "
                 "missing or not its own",
                 w->pid, w->comm, strerror(-r), r == -EBADMSG ? " (its dump failed verification)" : "");
        watch_log_outcome(w, "restore", r, MEMCR_MESSAGE_TARGET_KILLED, msg);
        leave_outcome(w, "killed", msg);
        watch_release_socket(w);
        /* Whatever the engine could not kill, our exit does
         * (PTRACE_O_EXITKILL). */
        _exit(EXIT_FAILURE);
}

/* All memory is back, or the target ended meanwhile: say which. */
static void stream_done(Watch *w, LazyRestore *l) {
        LazyProgress p;
        char text[256];

        lazy_restore_progress(l, &p);
        if (p.exited) {
                report_exit(w, &p);
                return;
        }
        snprintf(text, sizeof(text),
                 "memory of process %i (%s) fully back, %.1f ms after its lazy restore was asked for (%" PRIu64
                 " pages faulted in on demand); its watcher lets it go",
                 w->pid, w->comm, (double) p.complete_usec / USEC_PER_MSEC, p.faults);
        log_lazy(w, text, &p, MEMCR_MESSAGE_RESTORE_RESIDENT);
}

static void reply_streaming(int fd, const Watch *w, LazyRestore *l, bool first) {
        Message m = { .type = MSG_REPLY };
        LazyProgress p;

        lazy_restore_progress(l, &p);
        message_set_u32(&m, TAG_RESULT, MEMCR_OK);
        watch_message_set_process(&m, w, "streaming");
        message_set_u64(&m, TAG_DONE, p.done_bytes);
        message_set_u64(&m, TAG_TOTAL, p.total_bytes);
        if (first)
                message_set_u64(&m, TAG_DURATION_USEC, p.running_usec);
        (void) message_send(fd, &m, NULL, 0);
        message_done(&m);
}

static void stream_prepare(Watch *w, WatchLoop *loop) {
        LazyRestore *l = loop->userdata;
        int r;

        r = lazy_restore_process(l);
        if (r < 0)
                stream_failed(w, r);
        if (r > 0) {
                stream_done(w, l);
                watch_loop_exit(loop, 0);
        }
}

static void stream_on_ready(Watch *w, WatchLoop *loop, unsigned ready) {
        /* fds[1]: the signalfd */
        if ((ready & 2) && watch_read_signals(loop->fds[1]))
                log_info("stop requested while the memory of %i (%s) is streaming back; finishing that first",
                         w->pid, w->comm);
}

static void stream_on_request(Watch *w, WatchLoop *loop, WatchRequest *req) {
        if (req->error < 0)
                return;
        if (req->message.type == MSG_STATUS || req->message.type == MSG_LIST)
                reply_streaming(req->fd, w, loop->userdata, false);
        else
                watch_reply(req->fd, MEMCR_ERR_BUSY, EBUSY, "its memory is still streaming back", NULL, false);
}

/* The target runs; serve its memory until all of it is back. Requests on our
 * socket get the progress. A stop request cannot cut this short: leaving now
 * would kill the target. */
static int stream(Watch *w, LazyRestore *l) {
        _cleanup_close_ int sigfd = watch_open_signalfd();
        WatchLoop loop = {
                .fds = { lazy_restore_fd(l), sigfd },
                .n_fds = 2,
                .deadline = USEC_INFINITY,
                .userdata = l,
                .prepare = stream_prepare,
                .on_ready = stream_on_ready,
                .on_request = stream_on_request,
        };
        int r;

        /* Leaving now would kill the target: without a signalfd, stop
         * requests are only put off until the memory is back (poll()
         * ignores the negative descriptor). */
        if (sigfd < 0)
                log_warning_errno(sigfd, "no signalfd (%m); stop requests wait until the memory of %i is back",
                                  w->pid);

        r = watch_loop_run(w, &loop);
        return r < 0 ? r : loop.result;
}

/* No lazy restore was possible, and the target is still frozen, nothing
 * lost: do it the eager way, and say why. */
static int restore_eagerly(Watch *w, int fd, int error) {
        char note[384];

        if (w->frozen->no_lazy[0])
                snprintf(note, sizeof(note), "restored eagerly: no lazy restore for %i, %s", w->pid,
                         w->frozen->no_lazy);
        else
                snprintf(note, sizeof(note), "restored eagerly: a lazy restore of %i was not possible (%s)", w->pid,
                         strerror(-error));
        log_info("%s", note);
        return watch_restore(w, fd, "requested (lazy restore not possible)", note);
}

int watch_restore_lazy(Watch *w, int fd) {
        _cleanup_close_ int dev = -EBADF;
        LazyOptions o = { .userfaultfd_dev = -1 };
        LazyRestore *l = NULL;
        LazyProgress progress;
        char text[256];
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
                if (w->frozen && w->frozen->tracee)
                        return restore_eagerly(w, fd, r);
                /* No longer held: its dump failed verification, or the
                 * restore failed once the target could not run without us;
                 * the engine killed it. */
                return watch_restore_failed(w, fd, r, "requested, lazily");
        }
        w->frozen = NULL; /* the lazy restore owns it now */

        lazy_restore_progress(l, &progress);
        snprintf(text, sizeof(text),
                 "process %i (%s) restored lazily on request: running again %.1f ms after it, its memory "
                 "streaming back",
                 w->pid, w->comm, (double) progress.running_usec / USEC_PER_MSEC);
        log_lazy(w, text, &progress, MEMCR_MESSAGE_RESTORE_DONE);
        if (fd >= 0)
                reply_streaming(fd, w, l, true);
        (void) sd_notifyf(false, "STATUS=Streaming the memory of %i back", w->pid);

        r = stream(w, l);
        lazy_restore_free(l);
        return r;
}
