/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Address-dependent memory test patterns.
 *
 * Every 8-byte word of a patterned buffer holds
 *
 *     splitmix64(address ^ seed)
 *
 * where address is the virtual address of that word. Since each word depends
 * on its own location, the check catches not only lost or zeroed pages but
 * also correct data written back at the wrong address, and data belonging to
 * another buffer (which uses a different seed).
 *
 * Buffers must be 8-byte aligned and their length a multiple of 8 bytes.
 */

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The splitmix64 output function: a bijection on 64-bit values. */
static inline uint64_t pattern_mix(uint64_t x) {
    x += UINT64_C(0x9e3779b97f4a7c15);
    x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
    return x ^ (x >> 31);
}

/*
 * Compressible variant (for compression tests and benchmarks): only the first
 * word of every 256 bytes is the address-dependent value; the others repeat
 * text, so a misplaced page is still caught but the data compresses well.
 * Set before filling; every fill and check of the program uses it.
 */
static bool pattern_compressible = false;

static inline uint64_t pattern_text_word(unsigned index, uint64_t seed) {
    static const char text[] = "memcr parks idle processes: their memory goes to a dump, "
                               "and comes back when the user returns. ";
    uint64_t v = 0;
    for (unsigned i = 0; i < 8; i++)
        v |= (uint64_t) (uint8_t) text[(index * 8 + i) % (sizeof(text) - 1)] << (i * 8);
    return v ^ (seed & 0xff);
}

/* The value expected in the 8-byte word at virtual address addr. */
static inline uint64_t pattern_word(uint64_t addr, uint64_t seed) {
    if (pattern_compressible && (addr & 255) != 0)
        return pattern_text_word((unsigned) (addr & 255) / 8, seed);
    return pattern_mix(addr ^ seed);
}

/* Fill len bytes at p with the pattern for seed. */
static inline void pattern_fill(void *p, size_t len, uint64_t seed) {
    uint64_t *w = p;
    uintptr_t addr = (uintptr_t) p;

    assert(addr % 8 == 0);
    assert(len % 8 == 0);

    for (size_t i = 0; i < len / 8; i++, addr += 8)
        w[i] = pattern_word(addr, seed);
}

/*
 * Check len bytes at p against the pattern for seed. Returns the number of
 * words that differ. If first_bad is not NULL it receives the byte offset
 * (from p) of the first differing word, or SIZE_MAX if all words match.
 */
static inline size_t pattern_check(const void *p, size_t len, uint64_t seed, size_t *first_bad) {
    const uint64_t *w = p;
    uintptr_t addr = (uintptr_t) p;
    size_t n_bad = 0, first = SIZE_MAX;

    assert(addr % 8 == 0);
    assert(len % 8 == 0);

    for (size_t i = 0; i < len / 8; i++, addr += 8)
        if (w[i] != pattern_word(addr, seed)) {
            if (n_bad == 0)
                first = i * 8;
            n_bad++;
        }

    if (first_bad)
        *first_bad = first;
    return n_bad;
}
