/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* aarch64 part of the parasite (see arch/x86_64/parasite-arch.h for what
 * every architecture provides): svc #0 with the number in x8 and the
 * arguments in x0..x5, the result in x0; brk as the trap. */

static inline __attribute__((always_inline)) long arch_syscall3(long nr, long a1, long a2, long a3) {
        register long x8 __asm__("x8") = nr;
        register long x0 __asm__("x0") = a1;
        register long x1 __asm__("x1") = a2;
        register long x2 __asm__("x2") = a3;
        __asm__ volatile("svc #0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2) : "memory");
        return x0;
}

static inline __attribute__((always_inline)) long arch_syscall4(long nr, long a1, long a2, long a3, long a4) {
        register long x8 __asm__("x8") = nr;
        register long x0 __asm__("x0") = a1;
        register long x1 __asm__("x1") = a2;
        register long x2 __asm__("x2") = a3;
        register long x3 __asm__("x3") = a4;
        __asm__ volatile("svc #0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3) : "memory");
        return x0;
}

static inline __attribute__((always_inline, noreturn)) void arch_trap(void) {
        for (;;)
                __asm__ volatile("brk #0" ::: "memory");
}
