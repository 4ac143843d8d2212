/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* x86_64: the 16 XMM registers. See memcr-vector-target.c. */

#include <stddef.h>
#include <stdint.h>

static size_t vector_size(void) {
        return 16 * 16;
}

static const char *vector_kind(void) {
        return "sse";
}

static void vector_load(const uint8_t *buf) {
        __asm__ volatile(
                         "movdqu 0(%0), %%xmm0\n"
                         "movdqu 16(%0), %%xmm1\n"
                         "movdqu 32(%0), %%xmm2\n"
                         "movdqu 48(%0), %%xmm3\n"
                         "movdqu 64(%0), %%xmm4\n"
                         "movdqu 80(%0), %%xmm5\n"
                         "movdqu 96(%0), %%xmm6\n"
                         "movdqu 112(%0), %%xmm7\n"
                         "movdqu 128(%0), %%xmm8\n"
                         "movdqu 144(%0), %%xmm9\n"
                         "movdqu 160(%0), %%xmm10\n"
                         "movdqu 176(%0), %%xmm11\n"
                         "movdqu 192(%0), %%xmm12\n"
                         "movdqu 208(%0), %%xmm13\n"
                         "movdqu 224(%0), %%xmm14\n"
                         "movdqu 240(%0), %%xmm15\n"
                         :
                         : "r"(buf)
                         : "memory");
}

static void vector_save(uint8_t *buf) {
        __asm__ volatile(
                         "movdqu %%xmm0, 0(%0)\n"
                         "movdqu %%xmm1, 16(%0)\n"
                         "movdqu %%xmm2, 32(%0)\n"
                         "movdqu %%xmm3, 48(%0)\n"
                         "movdqu %%xmm4, 64(%0)\n"
                         "movdqu %%xmm5, 80(%0)\n"
                         "movdqu %%xmm6, 96(%0)\n"
                         "movdqu %%xmm7, 112(%0)\n"
                         "movdqu %%xmm8, 128(%0)\n"
                         "movdqu %%xmm9, 144(%0)\n"
                         "movdqu %%xmm10, 160(%0)\n"
                         "movdqu %%xmm11, 176(%0)\n"
                         "movdqu %%xmm12, 192(%0)\n"
                         "movdqu %%xmm13, 208(%0)\n"
                         "movdqu %%xmm14, 224(%0)\n"
                         "movdqu %%xmm15, 240(%0)\n"
                         :
                         : "r"(buf)
                         : "memory");
}
