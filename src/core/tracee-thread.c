/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The threads of a tracee: waiting for their stops, their options, their
 * registers, collecting their exits. */

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>

#include "log.h"
#include "macro.h"
#include "tracee-internal.h"

#ifndef PTRACE_GET_RSEQ_CONFIGURATION
#define PTRACE_GET_RSEQ_CONFIGURATION 0x420f
#endif

/* <linux/ptrace.h>, which does not mix with <sys/ptrace.h>. */
struct rseq_configuration {
        uint64_t rseq_abi_pointer;
        uint32_t rseq_abi_size;
        uint32_t signature;
        uint32_t flags;
        uint32_t pad;
};

bool tracee_has_thread(const Tracee *t, pid_t tid) {
        for (size_t i = 0; i < t->n_threads; i++)
                if (t->threads[i].tid == tid)
                        return true;
        return false;
}

int tracee_wait_tid(pid_t tid, usec_t timeout, int *ret_status) {
        usec_t deadline = usec_add(now_usec(CLOCK_MONOTONIC), timeout);
        unsigned spins = 0;

        for (;;) {
                int st;
                pid_t r = waitpid(tid, &st, __WALL | WNOHANG);
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return errno == ECHILD ? -ESRCH : -errno;
                }
                if (r > 0) {
                        *ret_status = st;
                        return 0;
                }
                if (now_usec(CLOCK_MONOTONIC) >= deadline)
                        return -ETIMEDOUT;
                /* Stops normally follow within microseconds: spin a little
                 * before sleeping, and never sleep longer than 1 ms. */
                if (spins < 200)
                        sched_yield();
                else
                        usleep_safe(MIN((usec_t) (spins - 199) * 5, (usec_t) 1000));
                spins++;
        }
}

bool tracee_is_stop_signal(int sig) {
        return sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU;
}

bool tracee_is_fault_signal(int sig) {
        return sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE || sig == SIGSYS ||
               sig == SIGTRAP;
}

int tracee_wait_initial_stop(Tracee *t, pid_t tid, usec_t deadline) {
        for (unsigned i = 0; i < MAX_SPURIOUS_STOPS; i++) {
                usec_t now = now_usec(CLOCK_MONOTONIC);
                int st, r;

                r = tracee_wait_tid(tid, deadline > now ? deadline - now : 0, &st);
                if (r < 0)
                        return r;
                if (WIFEXITED(st) || WIFSIGNALED(st))
                        return -ESRCH;
                if (!WIFSTOPPED(st))
                        continue;

                int ev = st >> 16, sig = WSTOPSIG(st);
                if (ev == PTRACE_EVENT_STOP) {
                        if (tracee_is_stop_signal(sig))
                                t->group_stopped = true;
                        return 0;
                }
                if (ev == PTRACE_EVENT_EXEC)
                        return -EAGAIN;
                if (ev != 0 || sig == (SIGTRAP | 0x80)) {
                        if (ptrace(PTRACE_CONT, tid, 0, 0) < 0)
                                return -errno;
                        continue;
                }
                log_debug("thread %i: delivering signal %i that arrived before the freeze", tid, sig);
                if (ptrace(PTRACE_CONT, tid, 0, sig) < 0)
                        return -errno;
        }
        return -EIO;
}

int tracee_add_thread(Tracee *t, pid_t tid) {
        TraceeThread *p = realloc(t->threads, (t->n_threads + 1) * sizeof(TraceeThread));
        if (!p)
                return -ENOMEM;
        t->threads = p;
        t->threads[t->n_threads++] = (TraceeThread) { .tid = tid };
        return 0;
}

int tracee_thread_regs(const Tracee *t, size_t i, ArchRegs *ret) {
        assert(i < t->n_threads);

        if (t->threads[i].gone)
                return -ESRCH;
        return arch_regs_get(t->threads[i].tid, ret);
}

int tracee_thread_rseq(pid_t tid, uint64_t *ret_area, uint32_t *ret_signature) {
        struct rseq_configuration c = {};

        if (ptrace(PTRACE_GET_RSEQ_CONFIGURATION, tid, sizeof(c), &c) < 0)
                return errno == EIO || errno == EINVAL ? 0 : -errno; /* a kernel without rseq */
        if (c.rseq_abi_pointer == 0)
                return 0;
        *ret_area = c.rseq_abi_pointer;
        if (ret_signature)
                *ret_signature = c.signature;
        return 1;
}

int tracee_set_options(Tracee *t, unsigned long options) {
        for (size_t i = 0; i < t->n_threads; i++) {
                if (t->threads[i].gone)
                        continue;
                if (ptrace(PTRACE_SETOPTIONS, t->threads[i].tid, 0, options) < 0)
                        return log_debug_errno(-errno, "setting the ptrace options of thread %i failed: %m",
                                               t->threads[i].tid);
        }
        return 0;
}

int tracee_set_exitkill(Tracee *t, bool on) {
        return tracee_set_options(t, on ? HOLD_OPTIONS : SEIZE_OPTIONS);
}

int tracee_arm_exitkill(Tracee *t) {
        t->exitkill = true;
        return tracee_set_exitkill(t, true);
}

static void reap_thread(TraceeThread *th) {
        for (;;) {
                int st;
                if (tracee_wait_tid(th->tid, 5 * USEC_PER_SEC, &st) < 0)
                        break;
                if (WIFEXITED(st) || WIFSIGNALED(st))
                        break;
                /* Still reporting stops on its way out: keep it moving. */
                (void) ptrace(PTRACE_CONT, th->tid, 0, 0);
        }
        th->gone = th->reaped = true;
}

void tracee_reap_all(Tracee *t) {
        for (int pass = 0; pass < 2; pass++)
                for (size_t i = 0; i < t->n_threads; i++) {
                        TraceeThread *th = &t->threads[i];
                        if (!th->reaped && (th->tid == t->pid) == (pass == 1))
                                reap_thread(th);
                }
}
