/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * x86_64 part of the parasite. What every architecture's parasite-arch.h
 * provides, always inline (the parasite makes no calls):
 *
 *   long arch_syscall3(long nr, long a1, long a2, long a3)
 *   long arch_syscall4(long nr, long a1, long a2, long a3, long a4)
 *           a system call; the raw result (-errno on failure)
 *   void arch_trap(void)
 *           stop at the breakpoint instruction for the host, for good
 *           (the host's arch_trap_addr() and arch_is_breakpoint() see it)
 *
 * Its meson.build sets parasite_arch_cflags, parasite_arch_ldflags and the
 * patterns check-blob.sh refuses (relocations, call and return
 * instructions).
 */

static inline __attribute__((always_inline)) long arch_syscall3(long nr, long a1, long a2, long a3) {
        long ret;
        __asm__ volatile("syscall"
                         : "=a"(ret)
                         : "a"(nr), "D"(a1), "S"(a2), "d"(a3)
                         : "rcx", "r11", "memory");
        return ret;
}

static inline __attribute__((always_inline)) long arch_syscall4(long nr, long a1, long a2, long a3, long a4) {
        long ret;
        register long r10 __asm__("r10") = a4;
        __asm__ volatile("syscall"
                         : "=a"(ret)
                         : "a"(nr), "D"(a1), "S"(a2), "d"(a3), "r"(r10)
                         : "rcx", "r11", "memory");
        return ret;
}

static inline __attribute__((always_inline, noreturn)) void arch_trap(void) {
        for (;;)
                __asm__ volatile("int3" ::: "memory");
}
