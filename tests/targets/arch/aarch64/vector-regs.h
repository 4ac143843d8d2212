/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* aarch64: the SVE Z and P registers where the CPU has SVE (a system call
 * would zero all of a Z register but its low 128 bits, and every P
 * register), else the 32 NEON registers. See memcr-vector-target.c. */

#include <asm/hwcap.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/auxv.h>

static bool vector_sve(void) {
        return getauxval(AT_HWCAP) & HWCAP_SVE;
}

/* The SVE vector length in bytes. */
static size_t vector_sve_vl(void) {
        uint64_t vl;
        __asm__ volatile(".arch_extension sve\n"
                         "rdvl %0, #1\n"
                         : "=r"(vl));
        return vl;
}

static size_t vector_size(void) {
        return vector_sve() ? 32 * vector_sve_vl() + 16 * (vector_sve_vl() / 8) : 32 * 16;
}

static const char *vector_kind(void) {
        return vector_sve() ? "sve" : "neon";
}

static void vector_load(const uint8_t *buf) {
        if (vector_sve()) {
                const uint8_t *p = buf + 32 * vector_sve_vl();
                __asm__ volatile(".arch_extension sve\n"
                         "ldr z0, [%0, #0, mul vl]\n"
                         "ldr z1, [%0, #1, mul vl]\n"
                         "ldr z2, [%0, #2, mul vl]\n"
                         "ldr z3, [%0, #3, mul vl]\n"
                         "ldr z4, [%0, #4, mul vl]\n"
                         "ldr z5, [%0, #5, mul vl]\n"
                         "ldr z6, [%0, #6, mul vl]\n"
                         "ldr z7, [%0, #7, mul vl]\n"
                         "ldr z8, [%0, #8, mul vl]\n"
                         "ldr z9, [%0, #9, mul vl]\n"
                         "ldr z10, [%0, #10, mul vl]\n"
                         "ldr z11, [%0, #11, mul vl]\n"
                         "ldr z12, [%0, #12, mul vl]\n"
                         "ldr z13, [%0, #13, mul vl]\n"
                         "ldr z14, [%0, #14, mul vl]\n"
                         "ldr z15, [%0, #15, mul vl]\n"
                         "ldr z16, [%0, #16, mul vl]\n"
                         "ldr z17, [%0, #17, mul vl]\n"
                         "ldr z18, [%0, #18, mul vl]\n"
                         "ldr z19, [%0, #19, mul vl]\n"
                         "ldr z20, [%0, #20, mul vl]\n"
                         "ldr z21, [%0, #21, mul vl]\n"
                         "ldr z22, [%0, #22, mul vl]\n"
                         "ldr z23, [%0, #23, mul vl]\n"
                         "ldr z24, [%0, #24, mul vl]\n"
                         "ldr z25, [%0, #25, mul vl]\n"
                         "ldr z26, [%0, #26, mul vl]\n"
                         "ldr z27, [%0, #27, mul vl]\n"
                         "ldr z28, [%0, #28, mul vl]\n"
                         "ldr z29, [%0, #29, mul vl]\n"
                         "ldr z30, [%0, #30, mul vl]\n"
                         "ldr z31, [%0, #31, mul vl]\n"
                         "ldr p0, [%1, #0, mul vl]\n"
                         "ldr p1, [%1, #1, mul vl]\n"
                         "ldr p2, [%1, #2, mul vl]\n"
                         "ldr p3, [%1, #3, mul vl]\n"
                         "ldr p4, [%1, #4, mul vl]\n"
                         "ldr p5, [%1, #5, mul vl]\n"
                         "ldr p6, [%1, #6, mul vl]\n"
                         "ldr p7, [%1, #7, mul vl]\n"
                         "ldr p8, [%1, #8, mul vl]\n"
                         "ldr p9, [%1, #9, mul vl]\n"
                         "ldr p10, [%1, #10, mul vl]\n"
                         "ldr p11, [%1, #11, mul vl]\n"
                         "ldr p12, [%1, #12, mul vl]\n"
                         "ldr p13, [%1, #13, mul vl]\n"
                         "ldr p14, [%1, #14, mul vl]\n"
                         "ldr p15, [%1, #15, mul vl]\n"
                                 :
                                 : "r"(buf), "r"(p)
                                 : "memory");
        } else
                __asm__ volatile(
                         "ldp q0, q1, [%0, #0]\n"
                         "ldp q2, q3, [%0, #32]\n"
                         "ldp q4, q5, [%0, #64]\n"
                         "ldp q6, q7, [%0, #96]\n"
                         "ldp q8, q9, [%0, #128]\n"
                         "ldp q10, q11, [%0, #160]\n"
                         "ldp q12, q13, [%0, #192]\n"
                         "ldp q14, q15, [%0, #224]\n"
                         "ldp q16, q17, [%0, #256]\n"
                         "ldp q18, q19, [%0, #288]\n"
                         "ldp q20, q21, [%0, #320]\n"
                         "ldp q22, q23, [%0, #352]\n"
                         "ldp q24, q25, [%0, #384]\n"
                         "ldp q26, q27, [%0, #416]\n"
                         "ldp q28, q29, [%0, #448]\n"
                         "ldp q30, q31, [%0, #480]\n"
                                 :
                                 : "r"(buf)
                                 : "memory");
}

static void vector_save(uint8_t *buf) {
        if (vector_sve()) {
                uint8_t *p = buf + 32 * vector_sve_vl();
                __asm__ volatile(".arch_extension sve\n"
                         "str z0, [%0, #0, mul vl]\n"
                         "str z1, [%0, #1, mul vl]\n"
                         "str z2, [%0, #2, mul vl]\n"
                         "str z3, [%0, #3, mul vl]\n"
                         "str z4, [%0, #4, mul vl]\n"
                         "str z5, [%0, #5, mul vl]\n"
                         "str z6, [%0, #6, mul vl]\n"
                         "str z7, [%0, #7, mul vl]\n"
                         "str z8, [%0, #8, mul vl]\n"
                         "str z9, [%0, #9, mul vl]\n"
                         "str z10, [%0, #10, mul vl]\n"
                         "str z11, [%0, #11, mul vl]\n"
                         "str z12, [%0, #12, mul vl]\n"
                         "str z13, [%0, #13, mul vl]\n"
                         "str z14, [%0, #14, mul vl]\n"
                         "str z15, [%0, #15, mul vl]\n"
                         "str z16, [%0, #16, mul vl]\n"
                         "str z17, [%0, #17, mul vl]\n"
                         "str z18, [%0, #18, mul vl]\n"
                         "str z19, [%0, #19, mul vl]\n"
                         "str z20, [%0, #20, mul vl]\n"
                         "str z21, [%0, #21, mul vl]\n"
                         "str z22, [%0, #22, mul vl]\n"
                         "str z23, [%0, #23, mul vl]\n"
                         "str z24, [%0, #24, mul vl]\n"
                         "str z25, [%0, #25, mul vl]\n"
                         "str z26, [%0, #26, mul vl]\n"
                         "str z27, [%0, #27, mul vl]\n"
                         "str z28, [%0, #28, mul vl]\n"
                         "str z29, [%0, #29, mul vl]\n"
                         "str z30, [%0, #30, mul vl]\n"
                         "str z31, [%0, #31, mul vl]\n"
                         "str p0, [%1, #0, mul vl]\n"
                         "str p1, [%1, #1, mul vl]\n"
                         "str p2, [%1, #2, mul vl]\n"
                         "str p3, [%1, #3, mul vl]\n"
                         "str p4, [%1, #4, mul vl]\n"
                         "str p5, [%1, #5, mul vl]\n"
                         "str p6, [%1, #6, mul vl]\n"
                         "str p7, [%1, #7, mul vl]\n"
                         "str p8, [%1, #8, mul vl]\n"
                         "str p9, [%1, #9, mul vl]\n"
                         "str p10, [%1, #10, mul vl]\n"
                         "str p11, [%1, #11, mul vl]\n"
                         "str p12, [%1, #12, mul vl]\n"
                         "str p13, [%1, #13, mul vl]\n"
                         "str p14, [%1, #14, mul vl]\n"
                         "str p15, [%1, #15, mul vl]\n"
                                 :
                                 : "r"(buf), "r"(p)
                                 : "memory");
        } else
                __asm__ volatile(
                         "stp q0, q1, [%0, #0]\n"
                         "stp q2, q3, [%0, #32]\n"
                         "stp q4, q5, [%0, #64]\n"
                         "stp q6, q7, [%0, #96]\n"
                         "stp q8, q9, [%0, #128]\n"
                         "stp q10, q11, [%0, #160]\n"
                         "stp q12, q13, [%0, #192]\n"
                         "stp q14, q15, [%0, #224]\n"
                         "stp q16, q17, [%0, #256]\n"
                         "stp q18, q19, [%0, #288]\n"
                         "stp q20, q21, [%0, #320]\n"
                         "stp q22, q23, [%0, #352]\n"
                         "stp q24, q25, [%0, #384]\n"
                         "stp q26, q27, [%0, #416]\n"
                         "stp q28, q29, [%0, #448]\n"
                         "stp q30, q31, [%0, #480]\n"
                                 :
                                 : "r"(buf)
                                 : "memory");
}
