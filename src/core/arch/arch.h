/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * What the engine needs to know about the processor: the one interface
 * between the generic code (tracee*.c, lazy.c) and an architecture. Every
 * architecture has a directory arch/<cpu family>/ (meson picks it with
 * host_machine.cpu_family()) holding:
 *
 *   arch-regs.h  the register set and what the executor saves besides it:
 *     ArchRegs          the general registers as ptrace reads them
 *     ArchExtState      state beyond them that our code may change
 *                       (floating point, vector, shadow stack...)
 *     ARCH_SYSCALL_INSN the bytes of the system call instruction, as an
 *                       initializer ({ 0x0f, 0x05 }), searched for in the
 *                       target's executable mappings
 *     ARCH_INSN_ALIGN   the alignment of an instruction (1: any address)
 *     and these static inline accessors:
 *     uint64_t arch_regs_pc(const ArchRegs *r)     program counter
 *     void arch_regs_set_pc(ArchRegs *r, uint64_t pc)
 *     uint64_t arch_regs_sp(const ArchRegs *r)     stack pointer
 *     uint64_t arch_regs_tls(const ArchRegs *r)    thread pointer (0: none)
 *     uint64_t arch_trap_addr(const ArchRegs *r)   address of the breakpoint
 *                       instruction a thread stopped at (the parasite's trap)
 *
 *   arch.c  the functions declared below.
 *
 * The parasite has its own part, parasite/arch/<cpu family>/.
 */

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "arch-regs.h"

/* The general registers of stopped thread tid (-errno from ptrace). */
int arch_regs_get(pid_t tid, ArchRegs *ret);
int arch_regs_set(pid_t tid, const ArchRegs *regs);

/* Does the thread run the architecture's native (64-bit) code, the only
 * kind our system calls and parasite are made for? */
bool arch_regs_native(const ArchRegs *regs);

/* Set regs up to execute system call nr with args from the instruction at
 * insn_addr (ARCH_SYSCALL_INSN), such that the kernel does not restart the
 * system call the thread was stopped in, if any. */
void arch_set_syscall(ArchRegs *regs, uint64_t insn_addr, long nr, const uint64_t args[6]);

/* The raw return value of the system call regs stopped at the exit of
 * (-errno on failure, as the kernel returns it). */
int64_t arch_syscall_result(const ArchRegs *regs);

/* Set regs up to run code at ip as a function of one argument arg, on the
 * stack that ends at stack_top (no system call restart either). */
void arch_set_call(ArchRegs *regs, uint64_t ip, uint64_t arg, uint64_t stack_top);

/* Is si (a SIGTRAP) the report of the breakpoint instruction? */
bool arch_is_breakpoint(const siginfo_t *si);

/* Save the extended state of stopped thread tid into s (replacing what s
 * held), put it back, and free what s holds. */
int arch_ext_save(pid_t tid, ArchExtState *s);
int arch_ext_restore(pid_t tid, const ArchExtState *s);
void arch_ext_done(ArchExtState *s);
