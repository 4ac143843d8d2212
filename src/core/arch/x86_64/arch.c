/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* x86_64: registers, system calls and extended state of a traced thread
 * (see arch.h). */

#include <cpuid.h>
#include <elf.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/ptrace.h>
#include <sys/uio.h>

#include "arch.h"
#include "log.h"
#include "macro.h"

#ifndef NT_X86_SHSTK
#define NT_X86_SHSTK 0x204
#endif

#define X86_EFLAGS_TF 0x100ULL
#define X86_EFLAGS_DF 0x400ULL
#define X86_64_USER_CS 0x33

int arch_regs_get(pid_t tid, ArchRegs *ret) {
        if (ptrace(PTRACE_GETREGS, tid, 0, ret) < 0)
                return -errno;
        return 0;
}

int arch_regs_set(pid_t tid, const ArchRegs *regs) {
        if (ptrace(PTRACE_SETREGS, tid, 0, regs) < 0)
                return -errno;
        return 0;
}

bool arch_regs_native(const ArchRegs *regs) {
        return regs->cs == X86_64_USER_CS;
}

void arch_set_syscall(ArchRegs *regs, uint64_t insn_addr, long nr, const uint64_t args[6]) {
        regs->rip = insn_addr;
        regs->rax = (unsigned long long) nr;
        regs->orig_rax = ~0ULL; /* no syscall restart for the original call */
        regs->rdi = args[0];
        regs->rsi = args[1];
        regs->rdx = args[2];
        regs->r10 = args[3];
        regs->r8 = args[4];
        regs->r9 = args[5];
        regs->eflags &= ~(X86_EFLAGS_TF | X86_EFLAGS_DF);
}

int64_t arch_syscall_result(const ArchRegs *regs) {
        return (int64_t) regs->rax;
}

void arch_set_call(ArchRegs *regs, uint64_t ip, uint64_t arg, uint64_t stack_top) {
        regs->rip = ip;
        regs->rdi = arg;
        /* As after a call: the return address slot below an aligned top. */
        regs->rsp = stack_top - 8;
        regs->orig_rax = ~0ULL;
        regs->eflags &= ~(X86_EFLAGS_TF | X86_EFLAGS_DF);
}

bool arch_is_breakpoint(const siginfo_t *si) {
        return si->si_signo == SIGTRAP && si->si_code == SI_KERNEL;
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

int arch_ext_save(pid_t tid, ArchExtState *s) {
        struct iovec iov;

        arch_ext_done(s);
        s->xstate_size = xstate_buffer_size();
        s->xstate = calloc(1, s->xstate_size);
        if (!s->xstate)
                return -ENOMEM;
        iov = (struct iovec) { s->xstate, s->xstate_size };
        if (ptrace(PTRACE_GETREGSET, tid, NT_X86_XSTATE, &iov) < 0)
                return -errno;
        s->xstate_size = iov.iov_len;

        iov = (struct iovec) { &s->ssp, sizeof(s->ssp) };
        s->have_ssp = ptrace(PTRACE_GETREGSET, tid, NT_X86_SHSTK, &iov) >= 0;

        log_debug("thread %i: xstate=%zu ssp=%s", tid, s->xstate_size, s->have_ssp ? "yes" : "no");
        return 0;
}

int arch_ext_restore(pid_t tid, const ArchExtState *s) {
        struct iovec iov = { s->xstate, s->xstate_size };

        if (ptrace(PTRACE_SETREGSET, tid, NT_X86_XSTATE, &iov) < 0)
                return -errno;
        if (s->have_ssp) {
                iov = (struct iovec) { (void *) &s->ssp, sizeof(s->ssp) };
                if (ptrace(PTRACE_SETREGSET, tid, NT_X86_SHSTK, &iov) < 0)
                        return -errno;
        }
        return 0;
}

void arch_ext_done(ArchExtState *s) {
        free(s->xstate);
        *s = (ArchExtState) {};
}
