/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The executor: system calls and code run inside the target on one of its
 * threads, its state saved before and put back after. */

#include <sched.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "procfs.h"
#include "tracee-internal.h"

enum wait_kind {
        WAIT_SYSCALL_ENTRY,
        WAIT_SYSCALL_EXIT,
        WAIT_BREAKPOINT,
        WAIT_TRAP_STOP,
};

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
                int r = tracee_wait_tid(tid, MIN(deadline - MIN(deadline, now), 20 * USEC_PER_MSEC), ret_status);

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

                if (kind == WAIT_BREAKPOINT && s == SIGTRAP && arch_is_breakpoint(&si)) {
                        ArchRegs regs;
                        uint64_t at;

                        r = arch_regs_get(tid, &regs);
                        if (r < 0)
                                return r;
                        at = arch_trap_addr(&regs);
                        if (at >= ip_lo && at < ip_hi)
                                return 0;
                        return log_debug_errno(-EFAULT, "breakpoint at unexpected address 0x%llx",
                                               (unsigned long long) at);
                }
                if (s == SIGSTOP) {
                        /* Unblockable: let it take effect (group stop); the
                         * process stays stopped after we release it. */
                        sig = SIGSTOP;
                        continue;
                }
                if (tracee_is_fault_signal(s) && si.si_code > 0) {
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

static int find_syscall_insn(Tracee *t, uint64_t *ret) {
        static const uint8_t insn[] = ARCH_SYSCALL_INSN;
        _cleanup_free_ char *maps = NULL;
        int r;

        r = procfs_read(t->pid, 0, "maps", 64 * 1024 * 1024, &maps);
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
                                                for (size_t i = 0; i + sizeof(insn) <= len; i += ARCH_INSN_ALIGN)
                                                        if (memcmp(buf + i, insn, sizeof(insn)) == 0) {
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
        r = tracee_set_exitkill(t, true);
        if (r < 0)
                return r;

        r = arch_regs_get(tid, &t->regs);
        if (r < 0)
                return r;
        if (!arch_regs_native(&t->regs))
                return log_debug_errno(-EOPNOTSUPP, "thread %i is not running 64-bit code", tid);

        r = arch_ext_save(tid, &t->ext);
        if (r < 0)
                return r;

        r = find_syscall_insn(t, &t->syscall_ip);
        if (r < 0)
                return log_debug_errno(r, "no syscall instruction found in the target: %m");

        if (ptrace(PTRACE_GETSIGMASK, tid, sizeof(uint64_t), &t->sigmask) < 0)
                return -errno;
        if (ptrace(PTRACE_SETSIGMASK, tid, sizeof(uint64_t), &all) < 0)
                return -errno;

        t->exec_prepared = true;
        t->exec_in_syscall_stop = false;
        log_debug("executor %i prepared: pc=0x%llx syscall@0x%llx", tid,
                  (unsigned long long) arch_regs_pc(&t->regs), (unsigned long long) t->syscall_ip);
        return 0;
}

static int set_exec_regs(Tracee *t, const ArchRegs *regs) {
        int r = arch_regs_set(exec_thread(t)->tid, regs);
        if (r < 0)
                return r;
        t->exec_running_ours = true;
        return 0;
}

int tracee_syscall(Tracee *t, long nr, const uint64_t args[6], int64_t *ret) {
        ArchRegs regs;
        int r;

        assert(t && t->exec_prepared);

        regs = t->regs;
        arch_set_syscall(&regs, t->syscall_ip, nr, args);

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
        r = arch_regs_get(exec_thread(t)->tid, &regs);
        if (r < 0)
                return r;
        *ret = arch_syscall_result(&regs);
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

int tracee_run(Tracee *t, uint64_t ip, uint64_t arg, uint64_t stack_top, uint64_t ip_lo, uint64_t ip_hi) {
        ArchRegs regs;
        int r;

        assert(t && t->exec_prepared);

        regs = t->regs;
        arch_set_call(&regs, ip, arg, stack_top);

        r = set_exec_regs(t, &regs);
        if (r < 0)
                return r;
        t->exec_in_syscall_stop = false;
        return resume_and_wait(t, PTRACE_CONT, WAIT_BREAKPOINT, ip_lo, ip_hi);
}

int tracee_restore_exec(Tracee *t) {
        pid_t tid;
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
                r = arch_regs_set(tid, &t->regs);
                if (r < 0)
                        return r;
                r = arch_ext_restore(tid, &t->ext);
                if (r < 0)
                        return r;
                t->exec_running_ours = false;
        }
        if (ptrace(PTRACE_SETSIGMASK, tid, sizeof(uint64_t), &t->sigmask) < 0)
                return -errno;

        t->exec_prepared = false;
        /* Ours again: a failure from here on leaves it running, unless its
         * memory is out. */
        if (!t->exitkill)
                return tracee_set_exitkill(t, false);
        return 0;
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
