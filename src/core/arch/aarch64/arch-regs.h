/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* aarch64: the register set and its accessors (see arch.h). */

#include <asm/ptrace.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The general registers (NT_PRSTATUS), the system call number the kernel
 * keeps beside them (NT_ARM_SYSTEM_CALL: what x86_64 calls orig_rax; -1
 * when the thread is in no system call, so that none is restarted) and the
 * thread pointer (NT_ARM_TLS, read only: our code never changes it). */
typedef struct ArchRegs {
        struct user_pt_regs r;
        int32_t syscallno;
        uint64_t tls;
} ArchRegs;

/* The floating point and SIMD registers (NT_PRFPREG) and, when the thread
 * has live SVE state (a system call discards all of a Z register but its
 * low 128 bits, so our system calls would), the whole SVE or streaming SVE
 * register set as the kernel reported it (NT_ARM_SVE or NT_ARM_SSVE). */
typedef struct ArchExtState {
        struct user_fpsimd_state fp;
        bool have_fp;
        unsigned vec_note; /* 0: no live SVE state saved */
        uint8_t *vec;
        size_t vec_size;
} ArchExtState;

#define ARCH_SYSCALL_INSN { 0x01, 0x00, 0x00, 0xd4 } /* svc #0 */
#define ARCH_INSN_ALIGN 4

static inline uint64_t arch_regs_pc(const ArchRegs *r) {
        return r->r.pc;
}

static inline void arch_regs_set_pc(ArchRegs *r, uint64_t pc) {
        r->r.pc = pc;
}

static inline uint64_t arch_regs_sp(const ArchRegs *r) {
        return r->r.sp;
}

static inline uint64_t arch_regs_tls(const ArchRegs *r) {
        return r->tls;
}

/* brk reports its own address. */
static inline uint64_t arch_trap_addr(const ArchRegs *r) {
        return r->r.pc;
}
