/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "alloc-util.h"
#include "log.h"
#include "macro.h"
#include "procfs.h"
#include "tracee-internal.h"

/* <linux/rseq.h>, which does not mix with <sys/ptrace.h>. */
struct rseq_cs_desc {
        uint32_t version;
        uint32_t flags;
        uint64_t start_ip;
        uint64_t post_commit_offset;
        uint64_t abort_ip;
};

#define RSEQ_CS_OFFSET 8 /* struct rseq: cpu_id_start, cpu_id, then rseq_cs */

static int peek_thread(pid_t tid, uint64_t addr, void *buf, size_t len) {
        struct iovec local = { buf, len }, remote = { (void *) (uintptr_t) addr, len };
        ssize_t n = process_vm_readv(tid, &local, 1, &remote, 1, 0);
        return n < 0 ? -errno : (size_t) n == len ? 0 : -EIO;
}

/* A thread stopped inside an rseq critical section: move it to the abort
 * handler, as the kernel does when it preempts such a thread. Our code runs
 * in the thread before it returns there, and the kernel forgets the critical
 * section when it sees the thread outside it (running our code), so it would
 * otherwise commit after having been interrupted. */
static int fixup_rseq(pid_t tid) {
        ArchRegs regs;
        struct rseq_cs_desc cs;
        uint64_t area, cs_ptr;
        uint32_t sig, at_abort;
        int r;

        r = tracee_thread_rseq(tid, &area, &sig);
        if (r <= 0)
                return r;
        /* An area or descriptor we cannot read is the kernel's to judge (it
         * kills the thread on its way back): not ours. */
        if (peek_thread(tid, area + RSEQ_CS_OFFSET, &cs_ptr, sizeof(cs_ptr)) < 0 || cs_ptr == 0)
                return 0;
        if (peek_thread(tid, cs_ptr, &cs, sizeof(cs)) < 0)
                return 0;
        r = arch_regs_get(tid, &regs);
        if (r < 0)
                return r;
        if (arch_regs_pc(&regs) - cs.start_ip >= cs.post_commit_offset)
                return 0; /* outside: the kernel clears rseq_cs itself */
        /* The kernel checks the signature before the abort handler, and kills
         * the thread if it does not match: leave that case to it. */
        if (peek_thread(tid, cs.abort_ip - sizeof(at_abort), &at_abort, sizeof(at_abort)) < 0 || at_abort != sig)
                return 0;
        log_debug("thread %i was inside an rseq critical section, moving it to its abort handler", tid);
        arch_regs_set_pc(&regs, cs.abort_ip);
        return arch_regs_set(tid, &regs);
}

static int pidfd_alive(int pidfd) {
        struct pollfd p = { .fd = pidfd, .events = POLLIN };
        int r = poll(&p, 1, 0);
        if (r < 0)
                return -errno;
        return r == 0; /* readable == exited */
}

/* Seize (and interrupt) every thread of tids not held yet. */
static int seize_new_threads(Tracee *t, const pid_t *tids, size_t n_tids, usec_t stop_timeout) {
        pid_t pid = t->pid;
        int r;

        for (size_t i = 0; i < n_tids; i++) {
                char state;

                if (tracee_has_thread(t, tids[i]))
                        continue;
                if (procfs_stat(pid, tids[i], &state, NULL) < 0)
                        continue; /* gone */
                if (state == 'Z' || state == 'X')
                        continue; /* exited thread (e.g. a leader that called pthread_exit) */

                if (ptrace(PTRACE_SEIZE, tids[i], 0, SEIZE_OPTIONS) < 0) {
                        if (errno == ESRCH)
                                continue;
                        r = -errno;
                        pid_t tracer = 0;
                        if (r == -EPERM && procfs_tracer(pid, 0, &tracer) >= 0 && tracer > 0)
                                r = -EBUSY;
                        return log_debug_errno(r, "PTRACE_SEIZE of %i failed: %m", tids[i]);
                }
                r = tracee_add_thread(t, tids[i]);
                if (r < 0) {
                        /* Cannot detach before it stops: wait for that. */
                        if (ptrace(PTRACE_INTERRUPT, tids[i], 0, 0) >= 0) {
                                int st;
                                (void) tracee_wait_tid(tids[i], stop_timeout, &st);
                                (void) ptrace(PTRACE_DETACH, tids[i], 0, 0);
                        }
                        return r;
                }
                if (ptrace(PTRACE_INTERRUPT, tids[i], 0, 0) < 0 && errno != ESRCH)
                        return -errno;
        }
        return 0;
}

/* Wait for the threads seized last (from first on) to stop. */
static int wait_new_threads(Tracee *t, size_t first, usec_t deadline) {
        pid_t pid = t->pid;
        int r;

        for (size_t i = first; i < t->n_threads; i++) {
                r = tracee_wait_initial_stop(t, t->threads[i].tid, deadline);
                if (r == -ESRCH) {
                        t->threads[i].gone = t->threads[i].reaped = true;
                        continue;
                }
                if (r >= 0 || r == -EAGAIN)
                        /* An exec event is a stop too: it can be detached from there. */
                        t->threads[i].stopped = true;
                if (r == -ETIMEDOUT) {
                        char state = '?';
                        (void) procfs_stat(pid, t->threads[i].tid, &state, NULL);
                        return log_debug_errno(r, "thread %i did not stop (state %c)",
                                               t->threads[i].tid, state);
                }
                if (r < 0)
                        return r;
        }
        return 0;
}

int tracee_seize(pid_t pid, int pidfd, usec_t stop_timeout, Tracee **ret) {
        _cleanup_tracee_ Tracee *t = NULL;
        usec_t deadline = usec_add(now_usec(CLOCK_MONOTONIC), stop_timeout);
        int r;

        assert(pid > 0);
        assert(pidfd >= 0);
        assert(ret);

        /* The pidfd pins the process the caller meant: if it has exited, the
         * PID may already name somebody else, who must not even be stopped. */
        r = pidfd_alive(pidfd);
        if (r < 0)
                return r;
        if (r == 0)
                return log_debug_errno(-ESRCH, "process %i has exited", pid);

        t = new(Tracee, 1);
        if (!t)
                return -ENOMEM;
        *t = (Tracee) { .pid = pid, .pidfd = pidfd, .own_pidfd = -EBADF, .op_timeout = DEFAULT_OP_TIMEOUT };

        /* Seize until a scan taken while every known thread is stopped finds
         * nothing new: stopped threads cannot create threads. */
        for (;;) {
                _cleanup_free_ pid_t *tids = NULL;
                size_t n_tids = 0, first_new = t->n_threads;

                r = procfs_list(pid, &tids, &n_tids);
                if (r < 0)
                        return r;

                r = seize_new_threads(t, tids, n_tids, stop_timeout);
                if (r < 0)
                        return r;
                if (first_new == t->n_threads)
                        break;
                r = wait_new_threads(t, first_new, deadline);
                if (r < 0)
                        return r;
        }

        for (size_t i = 0; i < t->n_threads; i++) {
                if (t->threads[i].gone)
                        continue;
                if (ptrace(PTRACE_SETOPTIONS, t->threads[i].tid, 0, SEIZE_OPTIONS) < 0) {
                        if (errno == ESRCH) {
                                t->threads[i].gone = true;
                                continue;
                        }
                        return -errno;
                }
                r = fixup_rseq(t->threads[i].tid);
                if (r < 0)
                        return log_debug_errno(r, "reading the rseq state of thread %i failed: %m",
                                               t->threads[i].tid);
        }

        /* Put usable threads first, the leader before the others. */
        size_t k = 0;
        for (size_t i = 0; i < t->n_threads; i++)
                if (!t->threads[i].gone) {
                        TraceeThread tmp = t->threads[k];
                        t->threads[k] = t->threads[i];
                        t->threads[i] = tmp;
                        k++;
                }
        if (k == 0)
                return -ESRCH;

        /* The pidfd pins the process the caller meant; if it has exited, the PID
         * now names somebody else, and we must not touch that process. */
        r = pidfd_alive(pidfd);
        if (r < 0)
                return r;
        if (r == 0)
                return log_debug_errno(-ESRCH, "process %i exited before it was seized", pid);

        *ret = TAKE_PTR(t);
        return 0;
}

int tracee_adopt_child(pid_t child, Tracee **ret) {
        Tracee *t;
        int r;

        t = calloc(1, sizeof(Tracee));
        if (!t) {
                r = -ENOMEM;
                goto fail;
        }
        t->pid = child;
        t->op_timeout = DEFAULT_OP_TIMEOUT;
        t->own_pidfd = t->pidfd = (int) syscall(SYS_pidfd_open, child, 0);
        if (t->pidfd < 0) {
                r = -errno;
                goto fail;
        }
        r = tracee_add_thread(t, child);
        if (r < 0)
                goto fail;
        /* A child that inherited our tracing starts in a stop. */
        r = tracee_wait_initial_stop(t, child, usec_add(now_usec(CLOCK_MONOTONIC), DEFAULT_OP_TIMEOUT));
        if (r < 0)
                goto fail;
        t->threads[0].stopped = true;
        *ret = t;
        return 0;
fail:
        /* A copy of the target must never run its code. */
        (void) kill(child, SIGKILL);
        (void) ptrace(PTRACE_KILL, child, 0, 0);
        (void) waitpid(child, NULL, __WALL);
        if (t) {
                safe_close(t->own_pidfd);
                free(t->threads);
                free(t);
        }
        return r;
}

int tracee_exit(Tracee *t) {
        uint64_t args[6] = { 0 };
        int64_t v;
        int r;

        r = tracee_prepare_exec(t);
        if (r >= 0) {
                r = tracee_syscall(t, SYS_exit_group, args, &v);
                if (r == -ESRCH) {
                        tracee_reap_all(t);
                        t->exec_prepared = false;
                        return 0;
                }
        }
        /* exit_group() refused, somehow: by force. */
        t->exec_prepared = false;
        return tracee_kill(t);
}

int tracee_detach(Tracee *t) {
        bool dying = false;
        int ret = 0;

        assert(t);
        assert(!t->exec_prepared);

        for (size_t i = 0; i < t->n_threads; i++) {
                TraceeThread *th = &t->threads[i];

                if (th->gone)
                        continue;
                if (!th->stopped) {
                        /* Interrupted but not seen stopping (an error path during
                         * seize): it can only be detached from a stop. */
                        usec_t deadline = usec_add(now_usec(CLOCK_MONOTONIC), USEC_PER_SEC);
                        if (tracee_wait_initial_stop(t, th->tid, deadline) < 0) {
                                th->gone = true;
                                continue;
                        }
                }
                if (ptrace(PTRACE_DETACH, th->tid, 0, 0) < 0) {
                        if (errno == ESRCH) {
                                /* We hold every thread in a stop; only SIGKILL takes
                                 * one out of it. Collect it below. */
                                dying = true;
                                continue;
                        }
                        if (ret == 0)
                                ret = -errno;
                }
                th->gone = true;
        }
        if (dying) {
                tracee_reap_all(t);
                if (ret == 0)
                        ret = -ESRCH;
        }
        return ret;
}

int tracee_kill(Tracee *t) {
        assert(t);

        if (syscall(SYS_pidfd_send_signal, t->pidfd, SIGKILL, NULL, 0) >= 0) {
                tracee_reap_all(t);
                return 0;
        }
        log_debug("pidfd_send_signal(SIGKILL) to %i failed (%m), making it kill itself", t->pid);

        /* No right to signal it: a process may always signal itself. */
        if (!t->exec_prepared)
                (void) tracee_prepare_exec(t);
        if (t->exec_prepared) {
                uint64_t args[6] = { (uint64_t) t->pid, SIGKILL };
                int64_t ret;
                (void) tracee_syscall(t, SYS_kill, args, &ret);
        }
        /* Last resort: PTRACE_KILL on every thread. */
        for (size_t i = 0; i < t->n_threads; i++)
                if (!t->threads[i].gone)
                        (void) ptrace(PTRACE_KILL, t->threads[i].tid, 0, 0);
        tracee_reap_all(t);
        t->exec_prepared = false;
        return 0;
}

bool tracee_is_dead(Tracee *t) {
        /* Look at the threads we hold, not at the pidfd: threads of a killed
         * tracee stay zombies until we collect them (so the pidfd does not
         * report the exit yet), and after a PID was recycled the threads we
         * hold belong to a live process that the pidfd does not name. */
        for (size_t i = 0; i < t->n_threads; i++) {
                char state;

                if (t->threads[i].reaped)
                        continue;
                if (procfs_stat(t->pid, t->threads[i].tid, &state, NULL) < 0)
                        continue;
                if (state != 'Z' && state != 'X')
                        return false;
        }
        return true;
}

Tracee *tracee_free(Tracee *t) {
        if (!t)
                return NULL;
        if (tracee_is_dead(t))
                tracee_reap_all(t);
        else if (t->exec_prepared && tracee_restore_exec(t) < 0) {
                /* Its registers or signal mask could not be put back: it must
                 * not run again. */
                log_debug("cannot restore the executor of %i, killing it", t->pid);
                t->exec_prepared = false;
                (void) tracee_kill(t);
        } else
                /* Whoever frees a Tracee still holding threads has decided the
                 * target may run as it is: release it. */
                (void) tracee_detach(t);
        safe_close(t->own_pidfd);
        free(t->threads);
        arch_ext_done(&t->ext);
        free(t);
        return NULL;
}
