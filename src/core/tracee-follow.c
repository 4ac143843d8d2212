/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Following a target that runs again under ptrace (lazy restore): its
 * threads, and every task they create, stay traced until let go. */

#include <errno.h>
#include <linux/kcmp.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "macro.h"
#include "tracee-internal.h"

#define FOLLOW_OPTIONS                                                                             \
        (PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACEEXEC | PTRACE_O_EXITKILL | PTRACE_O_TRACEFORK |     \
         PTRACE_O_TRACEVFORK | PTRACE_O_TRACECLONE)

int tracee_follow_start(Tracee *t, void *tag) {
        int r;

        assert(t && !t->exec_prepared);

        r = tracee_set_options(t, FOLLOW_OPTIONS);
        if (r < 0)
                return r;
        for (size_t i = 0; i < t->n_threads; i++) {
                t->threads[i].tag = tag;
                t->threads[i].leader = t->threads[i].tid == t->pid;
        }
        for (size_t i = 0; i < t->n_threads; i++)
                if (!t->threads[i].gone)
                        (void) ptrace(PTRACE_CONT, t->threads[i].tid, 0, 0);
        return 0;
}

/* A task created by thread i (which is in the event stop) is traced too (and
 * killed with us). */
static void follow_new_task(Tracee *t, size_t i, int ev, tracee_follow_t cb, void *userdata) {
        unsigned long msg = 0;

        if (ptrace(PTRACE_GETEVENTMSG, t->threads[i].tid, 0, &msg) < 0)
                return;
        if (tracee_add_thread(t, (pid_t) msg) < 0)
                return;
        TraceeThread *th = &t->threads[t->n_threads - 1];
        th->tag = t->threads[i].tag;
        th->stopped = true; /* it starts in a stop, reported in time */
        th->leader = ev == PTRACE_EVENT_FORK || ev == PTRACE_EVENT_VFORK;
        /* A child that shares its parent's memory: vfork(), or a clone() with
         * CLONE_VM and SIGCHLD (reported as a fork). */
        th->vforked = ev == PTRACE_EVENT_VFORK ||
                      (ev == PTRACE_EVENT_FORK &&
                       syscall(SYS_kcmp, t->threads[i].tid, th->tid, KCMP_VM, 0, 0) == 0);
        cb(t, th, ev == PTRACE_EVENT_FORK && !th->vforked ? TRACEE_FOLLOW_FORK : TRACEE_FOLLOW_THREAD, 0,
           userdata);
}

/* Everything thread i reports, until it has nothing more to say. */
static void follow_thread(Tracee *t, size_t i, tracee_follow_t cb, void *userdata) {
        for (;;) {
                TraceeThread *th = &t->threads[i];
                int st;
                pid_t p;

                if (th->gone)
                        return;
                p = waitpid(th->tid, &st, __WALL | WNOHANG);
                if (p <= 0) {
                        if (p < 0 && errno == ECHILD)
                                th->gone = th->reaped = true;
                        return;
                }
                if (WIFEXITED(st) || WIFSIGNALED(st)) {
                        th->gone = th->reaped = true;
                        cb(t, th, TRACEE_FOLLOW_EXIT, st, userdata);
                        return;
                }
                if (!WIFSTOPPED(st))
                        continue;

                int ev = st >> 16, sig = WSTOPSIG(st);
                pid_t tid = th->tid;

                switch (ev) {
                case PTRACE_EVENT_FORK:
                case PTRACE_EVENT_VFORK:
                case PTRACE_EVENT_CLONE:
                        follow_new_task(t, i, ev, cb, userdata);
                        (void) ptrace(PTRACE_CONT, tid, 0, 0);
                        break;
                case PTRACE_EVENT_EXEC:
                        /* A new program: the memory we were filling is gone. */
                        cb(t, th, TRACEE_FOLLOW_EXEC, 0, userdata);
                        (void) ptrace(PTRACE_CONT, tid, 0, 0);
                        break;
                case PTRACE_EVENT_STOP:
                        if (tracee_is_stop_signal(sig))
                                (void) ptrace(PTRACE_LISTEN, tid, 0, 0); /* group stop */
                        else
                                (void) ptrace(PTRACE_CONT, tid, 0, 0);
                        break;
                case 0:
                        /* A signal on its way: deliver it. */
                        (void) ptrace(PTRACE_CONT, tid, 0, sig == (SIGTRAP | 0x80) ? 0 : sig);
                        break;
                default:
                        (void) ptrace(PTRACE_CONT, tid, 0, 0);
                }
        }
}

void tracee_follow(Tracee *t, tracee_follow_t cb, void *userdata) {
        /* Tasks added meanwhile are looked at in the same pass. */
        for (size_t i = 0; i < t->n_threads; i++)
                follow_thread(t, i, cb, userdata);
}

/* A task created by one we are letting go (a fork, vfork or thread that was
 * attached on its creation): let it go too, once it is in its first stop.
 * Left traced, it would never run (a vfork parent would wait for it for
 * ever) and our exit would kill it. */
static void release_new_task(pid_t tid, usec_t deadline) {
        while (now_usec(CLOCK_MONOTONIC) < deadline) {
                int st;
                pid_t p = waitpid(tid, &st, __WALL | WNOHANG);
                if (p == 0) {
                        usleep_safe(200);
                        continue;
                }
                if (p > 0 && WIFSTOPPED(st))
                        (void) ptrace(PTRACE_DETACH, tid, 0, 0);
                return;
        }
}

void tracee_follow_release(Tracee *t, TraceeThread *th) {
        (void) t;

        if (th->gone)
                return;
        /* Let go of it, and it is not ours to collect any more. */
        th->reaped = true;
        if (ptrace(PTRACE_INTERRUPT, th->tid, 0, 0) < 0) {
                th->gone = true;
                return;
        }
        usec_t deadline = usec_add(now_usec(CLOCK_MONOTONIC), 2 * USEC_PER_SEC);
        while (now_usec(CLOCK_MONOTONIC) < deadline) {
                int st;
                pid_t p = waitpid(th->tid, &st, __WALL | WNOHANG);
                if (p == 0) {
                        usleep_safe(200);
                        continue;
                }
                if (p < 0 || WIFEXITED(st) || WIFSIGNALED(st))
                        break;
                if (!WIFSTOPPED(st))
                        continue;
                /* From a stop, passing on a signal it was about to get. */
                int ev = st >> 16, sig = WSTOPSIG(st);
                if (ev == 0 && sig != (SIGTRAP | 0x80))
                        (void) ptrace(PTRACE_DETACH, th->tid, 0, sig);
                else if (ev == PTRACE_EVENT_STOP || ev == 0)
                        (void) ptrace(PTRACE_DETACH, th->tid, 0, 0);
                else {
                        unsigned long child = 0;
                        if ((ev == PTRACE_EVENT_FORK || ev == PTRACE_EVENT_VFORK || ev == PTRACE_EVENT_CLONE) &&
                            ptrace(PTRACE_GETEVENTMSG, th->tid, 0, &child) >= 0 && child > 0)
                                release_new_task((pid_t) child, deadline);
                        (void) ptrace(PTRACE_CONT, th->tid, 0, 0);
                        continue;
                }
                break;
        }
        th->gone = true;
}

void tracee_follow_kill(Tracee *t) {
        /* SIGKILL to every traced task: each is a member of a process that
         * must not run on. */
        for (size_t i = 0; i < t->n_threads; i++)
                if (!t->threads[i].gone)
                        (void) syscall(SYS_tgkill, t->threads[i].tid, t->threads[i].tid, SIGKILL);
        for (size_t i = 0; i < t->n_threads; i++)
                if (!t->threads[i].gone)
                        (void) ptrace(PTRACE_KILL, t->threads[i].tid, 0, 0);
        /* Collect them: a thread group's leader only after its other
         * threads (it is not reported before they are gone). */
        usec_t deadline = usec_add(now_usec(CLOCK_MONOTONIC), 5 * USEC_PER_SEC);
        for (int pass = 0; pass < 2; pass++)
                for (size_t i = 0; i < t->n_threads; i++) {
                        TraceeThread *th = &t->threads[i];

                        if (th->gone || th->leader != (pass == 1))
                                continue;
                        while (now_usec(CLOCK_MONOTONIC) < deadline) {
                                int st;
                                pid_t p = waitpid(th->tid, &st, __WALL | WNOHANG);
                                if (p < 0 || (p > 0 && (WIFEXITED(st) || WIFSIGNALED(st))))
                                        break;
                                if (p > 0)
                                        (void) ptrace(PTRACE_CONT, th->tid, 0, 0);
                                else
                                        usleep_safe(500);
                        }
                        th->gone = th->reaped = true;
                }
}
