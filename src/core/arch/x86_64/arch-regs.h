/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* x86_64: the register set and its accessors (see arch.h). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/user.h>

typedef struct user_regs_struct ArchRegs;

/* The XSAVE area (NT_X86_XSTATE) and the shadow stack pointer (NT_X86_SHSTK,
 * if the thread has a shadow stack). */
typedef struct ArchExtState {
        uint8_t *xstate;
        size_t xstate_size;
        bool have_ssp;
        uint64_t ssp;
} ArchExtState;

#define ARCH_SYSCALL_INSN { 0x0f, 0x05 } /* syscall */
#define ARCH_INSN_ALIGN 1

static inline uint64_t arch_regs_pc(const ArchRegs *r) {
        return r->rip;
}

static inline void arch_regs_set_pc(ArchRegs *r, uint64_t pc) {
        r->rip = pc;
}

static inline uint64_t arch_regs_sp(const ArchRegs *r) {
        return r->rsp;
}

static inline uint64_t arch_regs_tls(const ArchRegs *r) {
        return r->fs_base;
}

/* int3 reports the address after itself. */
static inline uint64_t arch_trap_addr(const ArchRegs *r) {
        return r->rip - 1;
}
