/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* aarch64: registers, system calls and extended state of a traced thread
 * (see arch.h).
 *
 * What our code changes in a thread, and so what is saved and put back: the
 * general registers, pc and pstate, the kernel's system call number, and the
 * SVE state a system call discards. The parasite uses general registers only
 * (-mgeneral-regs-only), makes no calls (nothing signed with a pointer
 * authentication key, nothing pushed to a guarded control stack) and runs
 * from a mapping without PROT_BTI; PAC keys, the tagged address control, the
 * thread pointer and SME's ZA array (kept across system calls) are never
 * touched, so they are not saved. */

#include <elf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/uio.h>

#include "arch.h"
#include "log.h"
#include "macro.h"

#ifndef NT_ARM_SSVE
#define NT_ARM_SSVE 0x40b
#endif
#ifndef TRAP_BRKPT
#define TRAP_BRKPT 1
#endif

#define PSTATE_SS (1ULL << 21)          /* software step */
#define PSTATE_BTYPE (3ULL << 10)       /* branch type, checked by BTI */

static int getregset(pid_t tid, unsigned note, void *buf, size_t size, size_t *ret_size) {
        struct iovec iov = { buf, size };

        if (ptrace(PTRACE_GETREGSET, tid, note, &iov) < 0)
                return -errno;
        if (ret_size)
                *ret_size = iov.iov_len;
        else if (iov.iov_len != size)
                return -EIO;
        return 0;
}

static int setregset(pid_t tid, unsigned note, const void *buf, size_t size) {
        struct iovec iov = { (void *) buf, size };

        if (ptrace(PTRACE_SETREGSET, tid, note, &iov) < 0)
                return -errno;
        return 0;
}

int arch_regs_get(pid_t tid, ArchRegs *ret) {
        size_t n = 0;
        int r;

        *ret = (ArchRegs) {};
        r = getregset(tid, NT_PRSTATUS, &ret->r, sizeof(ret->r), &n);
        if (r < 0)
                return r;
        if (n != sizeof(ret->r)) {
                /* A 32-bit thread: arch_regs_native() says no. */
                ret->r.pstate |= PSR_MODE32_BIT;
                return 0;
        }
        r = getregset(tid, NT_ARM_SYSTEM_CALL, &ret->syscallno, sizeof(ret->syscallno), NULL);
        if (r < 0)
                return r;
        return getregset(tid, NT_ARM_TLS, &ret->tls, sizeof(ret->tls), NULL);
}

int arch_regs_set(pid_t tid, const ArchRegs *regs) {
        int r;

        r = setregset(tid, NT_PRSTATUS, &regs->r, sizeof(regs->r));
        if (r < 0)
                return r;
        return setregset(tid, NT_ARM_SYSTEM_CALL, &regs->syscallno, sizeof(regs->syscallno));
}

bool arch_regs_native(const ArchRegs *regs) {
        return !(regs->r.pstate & PSR_MODE32_BIT);
}

static void prepare_pstate(ArchRegs *regs) {
        regs->r.pstate &= ~(PSTATE_SS | PSTATE_BTYPE);
        regs->syscallno = -1; /* no restart of the call the thread was in */
}

void arch_set_syscall(ArchRegs *regs, uint64_t insn_addr, long nr, const uint64_t args[6]) {
        regs->r.pc = insn_addr;
        regs->r.regs[8] = (uint64_t) nr;
        for (size_t i = 0; i < 6; i++)
                regs->r.regs[i] = args[i];
        prepare_pstate(regs);
}

int64_t arch_syscall_result(const ArchRegs *regs) {
        return (int64_t) regs->r.regs[0];
}

void arch_set_call(ArchRegs *regs, uint64_t ip, uint64_t arg, uint64_t stack_top) {
        regs->r.pc = ip;
        regs->r.regs[0] = arg;
        regs->r.regs[30] = 0; /* no return address: the code ends in a trap */
        regs->r.sp = stack_top & ~15ULL;
        prepare_pstate(regs);
}

bool arch_is_breakpoint(const siginfo_t *si) {
        return si->si_signo == SIGTRAP && si->si_code == TRAP_BRKPT;
}

/* The SVE or streaming SVE registers, if the thread has them live. */
static int vec_save(pid_t tid, unsigned note, ArchExtState *s) {
        struct user_sve_header h = {};
        size_t n = 0;
        int r;

        r = getregset(tid, note, &h, sizeof(h), &n);
        if (r == -EINVAL || r == -ENODEV || r == -EIO)
                return 0; /* the CPU or the kernel has no such registers */
        if (r < 0)
                return r;
        if (n < sizeof(h) || (h.flags & SVE_PT_REGS_MASK) != SVE_PT_REGS_SVE || h.size <= sizeof(h))
                return 0;

        s->vec = calloc(1, h.size);
        if (!s->vec)
                return -ENOMEM;
        r = getregset(tid, note, s->vec, h.size, &s->vec_size);
        if (r < 0)
                return r;
        s->vec_note = note;
        return 1;
}

int arch_ext_save(pid_t tid, ArchExtState *s) {
        int r;

        arch_ext_done(s);
        r = getregset(tid, NT_PRFPREG, &s->fp, sizeof(s->fp), NULL);
        if (r < 0)
                return r;
        s->have_fp = true;

        r = vec_save(tid, NT_ARM_SSVE, s);
        if (r == 0)
                r = vec_save(tid, NT_ARM_SVE, s);
        if (r < 0)
                return r;

        log_debug("thread %i: fpsimd saved, %s", tid,
                  s->vec_note == NT_ARM_SSVE ? "streaming SVE state saved" :
                  s->vec_note == NT_ARM_SVE  ? "SVE state saved" : "no live SVE state");
        return 0;
}

int arch_ext_restore(pid_t tid, const ArchExtState *s) {
        /* The SVE set holds the FPSIMD registers too (their low bits). */
        if (s->vec_note != 0)
                return setregset(tid, s->vec_note, s->vec, s->vec_size);
        if (s->have_fp)
                return setregset(tid, NT_PRFPREG, &s->fp, sizeof(s->fp));
        return 0;
}

void arch_ext_done(ArchExtState *s) {
        free(s->vec);
        *s = (ArchExtState) {};
}
