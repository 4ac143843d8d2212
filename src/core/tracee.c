/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <cpuid.h>
#include <dirent.h>
#include <elf.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fileio.h"
#include "log.h"
#include "macro.h"
#include "procfs.h"
#include "tracee-internal.h"

#ifndef NT_X86_SHSTK
#define NT_X86_SHSTK 0x204
#endif

/* EXITKILL is not set at seize time: as long as nothing of the target's
 * memory is out, our death (or a failure) must leave it running, not kill
 * it. It is armed (tracee_arm_exitkill()) just before pages are dropped. */
#define SEIZE_OPTIONS (PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACEEXEC)
#define HOLD_OPTIONS (SEIZE_OPTIONS | PTRACE_O_EXITKILL)

#define X86_EFLAGS_TF 0x100ULL
#define X86_EFLAGS_DF 0x400ULL
#define X86_64_USER_CS 0x33

#ifndef PTRACE_GET_RSEQ_CONFIGURATION
#define PTRACE_GET_RSEQ_CONFIGURATION 0x420f
#endif

/* <linux/ptrace.h> and <linux/rseq.h>, which do not mix with <sys/ptrace.h>. */
struct rseq_configuration {
        uint64_t rseq_abi_pointer;
        uint32_t rseq_abi_size;
        uint32_t signature;
        uint32_t flags;
        uint32_t pad;
};

struct rseq_cs_desc {
        uint32_t version;
        uint32_t flags;
        uint64_t start_ip;
        uint64_t post_commit_offset;
        uint64_t abort_ip;
};

#define RSEQ_CS_OFFSET 8 /* struct rseq: cpu_id_start, cpu_id, then rseq_cs */

#define DEFAULT_OP_TIMEOUT (30 * USEC_PER_SEC)
#define MAX_SPURIOUS_STOPS 10000

enum wait_kind {
        WAIT_SYSCALL_ENTRY,
        WAIT_SYSCALL_EXIT,
        WAIT_INT3,
        WAIT_TRAP_STOP,
};

static void reap_all(Tracee *t);

bool tracee_has_thread(const Tracee *t, pid_t tid) {
        for (size_t i = 0; i < t->n_threads; i++)
                if (t->threads[i].tid == tid)
                        return true;
        return false;
}

static int wait_tid(pid_t tid, usec_t timeout, int *ret_status) {
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

static bool is_fault_signal(int sig) {
        return sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE || sig == SIGSYS ||
               sig == SIGTRAP;
}

/* Wait for the first stop after PTRACE_INTERRUPT. A signal that is about to
 * be delivered first is delivered (it arrived before the freeze). */
static int wait_initial_stop(Tracee *t, pid_t tid, usec_t deadline) {
        for (unsigned i = 0; i < MAX_SPURIOUS_STOPS; i++) {
                usec_t now = now_usec(CLOCK_MONOTONIC);
                int st, r;

                r = wait_tid(tid, deadline > now ? deadline - now : 0, &st);
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

int tracee_thread_regs(const Tracee *t, size_t i, struct user_regs_struct *ret) {
        assert(i < t->n_threads);

        if (t->threads[i].gone)
                return -ESRCH;
        if (ptrace(PTRACE_GETREGS, t->threads[i].tid, 0, ret) < 0)
                return -errno;
        return 0;
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
        struct user_regs_struct regs;
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
        if (ptrace(PTRACE_GETREGS, tid, 0, &regs) < 0)
                return -errno;
        if (regs.rip - cs.start_ip >= cs.post_commit_offset)
                return 0; /* outside: the kernel clears rseq_cs itself */
        /* The kernel checks the signature before the abort handler, and kills
         * the thread if it does not match: leave that case to it. */
        if (peek_thread(tid, cs.abort_ip - sizeof(at_abort), &at_abort, sizeof(at_abort)) < 0 || at_abort != sig)
                return 0;
        log_debug("thread %i was inside an rseq critical section, moving it to its abort handler", tid);
        regs.rip = cs.abort_ip;
        if (ptrace(PTRACE_SETREGS, tid, 0, &regs) < 0)
                return -errno;
        return 0;
}

static int pidfd_alive(int pidfd) {
        struct pollfd p = { .fd = pidfd, .events = POLLIN };
        int r = poll(&p, 1, 0);
        if (r < 0)
                return -errno;
        return r == 0; /* readable == exited */
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

        t = calloc(1, sizeof(Tracee));
        if (!t)
                return -ENOMEM;
        t->pid = pid;
        t->pidfd = pidfd;
        t->own_pidfd = -EBADF;
        t->op_timeout = DEFAULT_OP_TIMEOUT;

        /* Seize until a scan taken while every known thread is stopped finds
         * nothing new: stopped threads cannot create threads. */
        for (;;) {
                _cleanup_free_ pid_t *tids = NULL;
                size_t n_tids = 0, first_new = t->n_threads;

                r = procfs_list(pid, &tids, &n_tids);
                if (r < 0)
                        return r;

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
                                        (void) wait_tid(tids[i], stop_timeout, &st);
                                        (void) ptrace(PTRACE_DETACH, tids[i], 0, 0);
                                }
                                return r;
                        }
                        if (ptrace(PTRACE_INTERRUPT, tids[i], 0, 0) < 0 && errno != ESRCH)
                                return -errno;
                }

                if (first_new == t->n_threads)
                        break;

                for (size_t i = first_new; i < t->n_threads; i++) {
                        r = wait_initial_stop(t, t->threads[i].tid, deadline);
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

static int set_exitkill(Tracee *t, bool on) {
        for (size_t i = 0; i < t->n_threads; i++) {
                if (t->threads[i].gone)
                        continue;
                if (ptrace(PTRACE_SETOPTIONS, t->threads[i].tid, 0, on ? HOLD_OPTIONS : SEIZE_OPTIONS) < 0)
                        return log_debug_errno(-errno, "setting the ptrace options of thread %i failed: %m",
                                               t->threads[i].tid);
        }
        return 0;
}

int tracee_arm_exitkill(Tracee *t) {
        t->exitkill = true;
        return set_exitkill(t, true);
}

static TraceeThread *exec_thread(Tracee *t) {
        return &t->threads[t->exec];
}

/* Has a thread other than except exited? While we run code in the target
 * every other thread is held in a stop, so only a kill (SIGKILL, a seccomp
 * filter killing the process) takes one out; its exit waits for us. */
static bool other_thread_exited(Tracee *t, pid_t except) {
        for (size_t k = 0; k < t->n_threads; k++) {
                siginfo_t si = {};

                if (t->threads[k].gone || t->threads[k].tid == except)
                        continue;
                if (waitid(P_PID, (id_t) t->threads[k].tid, &si, WEXITED | WNOHANG | WNOWAIT | __WALL) == 0 &&
                    si.si_pid == t->threads[k].tid)
                        return true;
        }
        return false;
}

/* Wait for the executor's next stop. A thread group leader's exit is not
 * reported before its other threads were collected, so a target killed while
 * our code runs in its leader shows only in the other threads. */
static int wait_exec(Tracee *t, pid_t tid, int *ret_status) {
        usec_t deadline = usec_add(now_usec(CLOCK_MONOTONIC), t->op_timeout);

        for (;;) {
                usec_t now = now_usec(CLOCK_MONOTONIC);
                int r = wait_tid(tid, MIN(deadline - MIN(deadline, now), 20 * USEC_PER_MSEC), ret_status);

                if (r != -ETIMEDOUT)
                        return r;
                if (now_usec(CLOCK_MONOTONIC) >= deadline)
                        return -ETIMEDOUT;
                if (other_thread_exited(t, tid)) {
                        for (size_t k = 0; k < t->n_threads; k++)
                                t->threads[k].gone = true;
                        t->exec_prepared = false;
                        return log_debug_errno(-ESRCH, "target %i was killed while running our code", t->pid);
                }
        }
}

/* Resume the executor with req and wait for the stop we expect, handling
 * whatever else the kernel reports on the way. */
static int resume_and_wait(Tracee *t, int req, enum wait_kind kind, uint64_t ip_lo, uint64_t ip_hi) {
        pid_t tid = exec_thread(t)->tid;
        int sig = 0, r;

        for (unsigned i = 0; i < MAX_SPURIOUS_STOPS; i++) {
                int st;

                if (req >= 0 && ptrace(req, tid, 0, sig) < 0)
                        return -errno;
                req = req < 0 ? PTRACE_CONT : req;
                sig = 0;

                r = wait_exec(t, tid, &st);
                if (r == -ETIMEDOUT) {
                        /* Our code is stuck (e.g. a syscall held by a seccomp
                         * supervisor): stop the thread so it can be cured. */
                        (void) ptrace(PTRACE_INTERRUPT, tid, 0, 0);
                        r = resume_and_wait(t, -1, WAIT_TRAP_STOP, 0, 0);
                        return r < 0 ? r : -ETIMEDOUT;
                }
                if (r < 0)
                        return r;
                if (WIFEXITED(st) || WIFSIGNALED(st)) {
                        exec_thread(t)->reaped = true;
                        for (size_t k = 0; k < t->n_threads; k++)
                                t->threads[k].gone = true;
                        return log_debug_errno(-ESRCH, "target died (%s %i)",
                                               WIFEXITED(st) ? "status" : "signal",
                                               WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
                }
                if (!WIFSTOPPED(st))
                        continue;

                int ev = st >> 16, s = WSTOPSIG(st);

                if (s == (SIGTRAP | 0x80)) {
                        struct __ptrace_syscall_info info = {};

                        if (ptrace(PTRACE_GET_SYSCALL_INFO, tid, sizeof(info), &info) < 0)
                                return -errno;
                        if (kind == WAIT_SYSCALL_ENTRY && info.op == PTRACE_SYSCALL_INFO_ENTRY)
                                return 0;
                        if (kind == WAIT_SYSCALL_EXIT && info.op == PTRACE_SYSCALL_INFO_EXIT)
                                return 0;
                        if (kind == WAIT_SYSCALL_EXIT && info.op == PTRACE_SYSCALL_INFO_SECCOMP)
                                continue;
                        return log_debug_errno(-EIO, "unexpected syscall stop (op %u)", info.op);
                }
                if (ev == PTRACE_EVENT_STOP) {
                        if (tracee_is_stop_signal(s))
                                t->group_stopped = true;
                        if (kind == WAIT_TRAP_STOP)
                                return 0;
                        continue; /* group stop or notification: keep going */
                }
                if (ev == PTRACE_EVENT_FORK && t->forking) {
                        unsigned long child = 0;
                        if (ptrace(PTRACE_GETEVENTMSG, tid, 0, &child) < 0)
                                return -errno;
                        t->fork_child = (pid_t) child;
                        continue;
                }
                if (ev != 0)
                        return log_debug_errno(-EIO, "unexpected ptrace event %i", ev);

                /* Signal-delivery stop. */
                siginfo_t si = {};
                if (ptrace(PTRACE_GETSIGINFO, tid, 0, &si) < 0)
                        return -errno;

                if (kind == WAIT_INT3 && s == SIGTRAP && si.si_code == SI_KERNEL) {
                        struct user_regs_struct regs;
                        if (ptrace(PTRACE_GETREGS, tid, 0, &regs) < 0)
                                return -errno;
                        if (regs.rip - 1 >= ip_lo && regs.rip - 1 < ip_hi)
                                return 0;
                        return log_debug_errno(-EFAULT, "int3 at unexpected address 0x%llx",
                                               regs.rip - 1);
                }
                if (s == SIGSTOP) {
                        /* Unblockable: let it take effect (group stop); the
                         * process stays stopped after we release it. */
                        sig = SIGSTOP;
                        continue;
                }
                if (is_fault_signal(s) && si.si_code > 0) {
                        /* Our own code faulted, or seccomp refused a syscall with
                         * SIGSYS. The thread stays in this stop (inside the signal
                         * path), from where it can be cured. */
                        return log_debug_errno(s == SIGSYS ? -EPERM : -EFAULT,
                                               "injected code got signal %i (code %i, addr %p)", s,
                                               si.si_code, si.si_addr);
                }
                /* Everything else is blocked while we run, so this is not
                 * expected; keep it pending rather than losing it. */
                log_debug("unexpected signal %i while running injected code, keeping it", s);
                sig = s;
        }
        return -EIO;
}

static uint32_t xstate_buffer_size(void) {
        unsigned a, b, c, d;

        /* CPUID leaf 0xD, sub-leaf 0: ECX is the size of the XSAVE area for
         * every feature the processor supports. */
        if (__get_cpuid_max(0, NULL) < 0xd)
                return 4096;
        __cpuid_count(0xd, 0, a, b, c, d);
        (void) a;
        (void) b;
        (void) d;
        return MAX(c, 512u + 64u);
}

static int find_syscall_insn(Tracee *t, uint64_t *ret) {
        _cleanup_free_ char *maps = NULL;
        char path[64];
        int r;

        snprintf(path, sizeof(path), "/proc/%i/maps", t->pid);
        r = read_full_file(path, 64 * 1024 * 1024, &maps, NULL);
        if (r < 0)
                return r;

        /* Two passes: the vDSO first (always there, never file-backed), then
         * any other executable mapping. */
        for (int pass = 0; pass < 2; pass++) {
                char *line = maps;
                while (line && *line) {
                        char *nl = strchr(line, '\n');
                        unsigned long long start, end;
                        char perms[5] = {};
                        int name_off = 0;

                        if (nl)
                                *nl = 0;
                        if (sscanf(line, "%llx-%llx %4s %*s %*s %*s %n", &start, &end, perms,
                                   &name_off) >= 3 &&
                            perms[2] == 'x' && perms[0] == 'r') {
                                bool vdso = name_off > 0 && streq(line + name_off, "[vdso]");
                                if ((pass == 0) == vdso) {
                                        size_t len = MIN(end - start, 64ULL * 1024);
                                        _cleanup_free_ uint8_t *buf = malloc(len);
                                        struct iovec l = { buf, len }, rm = { (void *) start, len };

                                        if (buf && process_vm_readv(t->pid, &l, 1, &rm, 1, 0) ==
                                                           (ssize_t) len) {
                                                for (size_t i = 0; i + 1 < len; i++)
                                                        if (buf[i] == 0x0f && buf[i + 1] == 0x05) {
                                                                *ret = start + i;
                                                                return 0;
                                                        }
                                        }
                                }
                        }
                        if (nl)
                                *nl = '\n';
                        line = nl ? nl + 1 : NULL;
                }
        }
        return -ENOEXEC;
}

int tracee_prepare_exec(Tracee *t) {
        pid_t tid;
        uint64_t all = ~0ULL;
        int r;

        assert(t);
        if (t->exec_prepared)
                return 0;

        t->exec = 0;
        tid = exec_thread(t)->tid;

        /* While our code runs in it, the target cannot run on by itself: if
         * we die, it dies (it would run our code, or registers not its own). */
        r = set_exitkill(t, true);
        if (r < 0)
                return r;

        if (ptrace(PTRACE_GETREGS, tid, 0, &t->regs) < 0)
                return -errno;
        if (t->regs.cs != X86_64_USER_CS)
                return log_debug_errno(-EOPNOTSUPP, "thread %i is not running 64-bit code", tid);

        free(t->xstate);
        t->xstate_size = xstate_buffer_size();
        t->xstate = calloc(1, t->xstate_size);
        if (!t->xstate)
                return -ENOMEM;
        struct iovec iov = { t->xstate, t->xstate_size };
        if (ptrace(PTRACE_GETREGSET, tid, NT_X86_XSTATE, &iov) < 0)
                return -errno;
        t->xstate_size = iov.iov_len;

        iov = (struct iovec) { &t->ssp, sizeof(t->ssp) };
        t->have_ssp = ptrace(PTRACE_GETREGSET, tid, NT_X86_SHSTK, &iov) >= 0;

        r = find_syscall_insn(t, &t->syscall_ip);
        if (r < 0)
                return log_debug_errno(r, "no syscall instruction found in the target: %m");

        if (ptrace(PTRACE_GETSIGMASK, tid, sizeof(uint64_t), &t->sigmask) < 0)
                return -errno;
        if (ptrace(PTRACE_SETSIGMASK, tid, sizeof(uint64_t), &all) < 0)
                return -errno;

        t->exec_prepared = true;
        t->exec_in_syscall_stop = false;
        log_debug("executor %i prepared: rip=0x%llx orig_rax=%lld xstate=%zu ssp=%s syscall@0x%llx",
                  tid, t->regs.rip, (long long) t->regs.orig_rax, t->xstate_size,
                  t->have_ssp ? "yes" : "no", (unsigned long long) t->syscall_ip);
        return 0;
}

static int set_exec_regs(Tracee *t, const struct user_regs_struct *regs) {
        if (ptrace(PTRACE_SETREGS, exec_thread(t)->tid, 0, regs) < 0)
                return -errno;
        t->exec_running_ours = true;
        return 0;
}

int tracee_syscall(Tracee *t, long nr, const uint64_t args[6], int64_t *ret) {
        struct user_regs_struct regs;
        int r;

        assert(t && t->exec_prepared);

        regs = t->regs;
        regs.rip = t->syscall_ip;
        regs.rax = (unsigned long long) nr;
        regs.orig_rax = ~0ULL; /* no syscall restart for the original call */
        regs.rdi = args[0];
        regs.rsi = args[1];
        regs.rdx = args[2];
        regs.r10 = args[3];
        regs.r8 = args[4];
        regs.r9 = args[5];
        regs.eflags &= ~(X86_EFLAGS_TF | X86_EFLAGS_DF);

        r = set_exec_regs(t, &regs);
        if (r < 0)
                return r;
        t->exec_in_syscall_stop = false;
        r = resume_and_wait(t, PTRACE_SYSCALL, WAIT_SYSCALL_ENTRY, 0, 0);
        if (r < 0)
                return r;
        t->exec_in_syscall_stop = true;
        r = resume_and_wait(t, PTRACE_SYSCALL, WAIT_SYSCALL_EXIT, 0, 0);
        if (r < 0)
                return r;
        if (ptrace(PTRACE_GETREGS, exec_thread(t)->tid, 0, &regs) < 0)
                return -errno;
        *ret = (int64_t) regs.rax;
        return 0;
}

int tracee_fork(Tracee *t, pid_t *ret_child) {
        pid_t tid = exec_thread(t)->tid;
        /* The child's parent is the target's parent, which reaps it (it has
         * reaped processes it did not start before: ours is one more). A
         * process that may not do that (a PID namespace's init) forks its
         * own child. */
        const uint64_t flags[] = { CLONE_PARENT | SIGCHLD, SIGCHLD };
        int64_t v = -EINVAL;
        int r = 0;

        assert(t && t->exec_prepared);
        if (ptrace(PTRACE_SETOPTIONS, tid, 0, HOLD_OPTIONS | PTRACE_O_TRACEFORK) < 0)
                return -errno;
        t->forking = true;
        t->fork_child = 0;
        for (size_t i = 0; i < ELEMENTSOF(flags) && r >= 0 && v == -EINVAL && t->fork_child == 0; i++) {
                uint64_t args[6] = { flags[i] };
                r = tracee_syscall(t, SYS_clone, args, &v);
        }
        t->forking = false;
        if (ptrace(PTRACE_SETOPTIONS, tid, 0, HOLD_OPTIONS) < 0 && r >= 0)
                r = -errno;
        if (r >= 0 && t->fork_child == 0)
                r = v < 0 && v >= -4095 ? (int) v : -EIO;
        if (r < 0) {
                if (t->fork_child > 0) {
                        (void) kill(t->fork_child, SIGKILL);
                        (void) waitpid(t->fork_child, NULL, __WALL);
                }
                return log_debug_errno(r, "fork of %i failed: %m", t->pid);
        }
        *ret_child = t->fork_child;
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
        r = wait_initial_stop(t, child, usec_add(now_usec(CLOCK_MONOTONIC), DEFAULT_OP_TIMEOUT));
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
                        reap_all(t);
                        t->exec_prepared = false;
                        return 0;
                }
        }
        /* exit_group() refused, somehow: by force. */
        t->exec_prepared = false;
        return tracee_kill(t);
}

int tracee_run(Tracee *t, uint64_t ip, uint64_t arg, uint64_t sp, uint64_t ip_lo, uint64_t ip_hi) {
        struct user_regs_struct regs;
        int r;

        assert(t && t->exec_prepared);

        regs = t->regs;
        regs.rip = ip;
        regs.rdi = arg;
        regs.rsp = sp;
        regs.orig_rax = ~0ULL;
        regs.eflags &= ~(X86_EFLAGS_TF | X86_EFLAGS_DF);

        r = set_exec_regs(t, &regs);
        if (r < 0)
                return r;
        t->exec_in_syscall_stop = false;
        return resume_and_wait(t, PTRACE_CONT, WAIT_INT3, ip_lo, ip_hi);
}

int tracee_restore_exec(Tracee *t) {
        pid_t tid;
        struct iovec iov;
        int r;

        assert(t);
        if (!t->exec_prepared)
                return 0;
        if (exec_thread(t)->gone)
                return -ESRCH;
        tid = exec_thread(t)->tid;

        if (t->exec_in_syscall_stop) {
                /* Leave the syscall-exit stop for a stop inside the signal
                 * path, where the restart logic runs after we let go. */
                if (ptrace(PTRACE_INTERRUPT, tid, 0, 0) < 0)
                        return -errno;
                r = resume_and_wait(t, PTRACE_CONT, WAIT_TRAP_STOP, 0, 0);
                if (r < 0)
                        return r;
                t->exec_in_syscall_stop = false;
        }

        if (t->exec_running_ours) {
                if (ptrace(PTRACE_SETREGS, tid, 0, &t->regs) < 0)
                        return -errno;
                iov = (struct iovec) { t->xstate, t->xstate_size };
                if (ptrace(PTRACE_SETREGSET, tid, NT_X86_XSTATE, &iov) < 0)
                        return -errno;
                if (t->have_ssp) {
                        iov = (struct iovec) { &t->ssp, sizeof(t->ssp) };
                        if (ptrace(PTRACE_SETREGSET, tid, NT_X86_SHSTK, &iov) < 0)
                                return -errno;
                }
                t->exec_running_ours = false;
        }
        if (ptrace(PTRACE_SETSIGMASK, tid, sizeof(uint64_t), &t->sigmask) < 0)
                return -errno;

        t->exec_prepared = false;
        /* Ours again: a failure from here on leaves it running, unless its
         * memory is out. */
        if (!t->exitkill)
                return set_exitkill(t, false);
        return 0;
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
                        if (wait_initial_stop(t, th->tid, deadline) < 0) {
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
                reap_all(t);
                if (ret == 0)
                        ret = -ESRCH;
        }
        return ret;
}

static void reap_thread(TraceeThread *th) {
        for (;;) {
                int st;
                if (wait_tid(th->tid, 5 * USEC_PER_SEC, &st) < 0)
                        break;
                if (WIFEXITED(st) || WIFSIGNALED(st))
                        break;
                /* Still reporting stops on its way out: keep it moving. */
                (void) ptrace(PTRACE_CONT, th->tid, 0, 0);
        }
        th->gone = th->reaped = true;
}

/* Collect the exit of every thread of a dead target (as its tracer, we must).
 * The leader goes last: it is not reported before the others are gone. */
static void reap_all(Tracee *t) {
        for (int pass = 0; pass < 2; pass++)
                for (size_t i = 0; i < t->n_threads; i++) {
                        TraceeThread *th = &t->threads[i];
                        if (!th->reaped && (th->tid == t->pid) == (pass == 1))
                                reap_thread(th);
                }
}

int tracee_kill(Tracee *t) {
        assert(t);

        if (syscall(SYS_pidfd_send_signal, t->pidfd, SIGKILL, NULL, 0) >= 0) {
                reap_all(t);
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
        reap_all(t);
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
                reap_all(t);
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
        free(t->xstate);
        free(t);
        return NULL;
}

int tracee_poke(Tracee *t, uint64_t addr, const void *buf, size_t len) {
        const uint8_t *p = buf;
        pid_t tid = exec_thread(t)->tid;

        /* PTRACE_POKEDATA writes with FOLL_FORCE, so read-only (e.g. our
         * read+exec code) mappings can be written too. */
        for (size_t off = 0; off < len; off += sizeof(long)) {
                unsigned long word = 0;
                size_t n = MIN(sizeof(long), len - off);

                if (n < sizeof(long)) {
                        errno = 0;
                        word = (unsigned long) ptrace(PTRACE_PEEKDATA, tid, addr + off, 0);
                        if (errno != 0)
                                return -errno;
                }
                memcpy(&word, p + off, n);
                if (ptrace(PTRACE_POKEDATA, tid, addr + off, word) < 0)
                        return -errno;
        }
        return 0;
}

int tracee_peek(Tracee *t, uint64_t addr, void *buf, size_t len) {
        uint8_t *p = buf;
        pid_t tid = exec_thread(t)->tid;

        for (size_t off = 0; off < len; off += sizeof(long)) {
                unsigned long word;

                errno = 0;
                word = (unsigned long) ptrace(PTRACE_PEEKDATA, tid, addr + off, 0);
                if (errno != 0)
                        return -errno;
                memcpy(p + off, &word, MIN(sizeof(long), len - off));
        }
        return 0;
}
