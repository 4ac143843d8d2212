/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The target's memory areas, as /proc/PID/smaps describes them, and the
 * decision which of them memcr may move out of memory.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
        VMA_READ = 1 << 0,
        VMA_WRITE = 1 << 1,
        VMA_EXEC = 1 << 2,
        VMA_SHARED = 1 << 3,   /* 's' in the permissions */
        VMA_FILE = 1 << 4,     /* backed by a file (inode != 0) */
        VMA_LOCKED = 1 << 5,   /* VmFlags lo */
        VMA_IO = 1 << 6,       /* VmFlags io */
        VMA_PFNMAP = 1 << 7,   /* VmFlags pf */
        VMA_UFFD = 1 << 8,     /* VmFlags um/uw/ui: the target manages it */
        VMA_SPECIAL = 1 << 9,  /* [vdso], [vvar], [vsyscall], [uprobes], ... */
        VMA_SHSTK = 1 << 10,   /* VmFlags ss: shadow stack */
        VMA_DROPPABLE = 1 << 11, /* VmFlags dp */
        VMA_HUGEPAGE = 1 << 12,  /* VmFlags hg */
};

typedef struct Vma {
        uint64_t start;
        uint64_t end;
        uint32_t flags;
        uint64_t rss_kb;
        uint64_t swap_kb;
        uint64_t anon_huge_kb;
} Vma;

typedef struct VmaList {
        Vma *vmas;
        size_t n;
} VmaList;

/* Parse the text of /proc/PID/smaps. */
int vma_list_parse(const char *text, VmaList *ret);
void vma_list_done(VmaList *l);

/* Private memory memcr may dump and drop. */
bool vma_is_dumpable(const Vma *v);

/* Sum of AnonHugePages over all areas (kB). */
uint64_t vma_list_anon_huge_kb(const VmaList *l);
