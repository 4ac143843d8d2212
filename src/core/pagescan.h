/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Which pages of an area hold private data: present or swapped, anonymous
 * (a copy-on-write copy in a private file mapping counts, the file's own
 * page does not), not the shared zero page, not a guard region.
 * PAGEMAP_SCAN (Linux >= 6.7) answers in bulk; reading pagemap entries is the
 * fallback.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vma.h"

typedef struct PageRange {
        uint64_t start;
        uint64_t end;
        uint32_t vma; /* index into the VmaList it came from */
} PageRange;

typedef struct PageRangeList {
        PageRange *ranges;
        size_t n;
        size_t allocated;
        uint64_t bytes;
} PageRangeList;

typedef enum PageScanMode {
        PAGESCAN_AUTO,     /* PAGEMAP_SCAN if the kernel has it */
        PAGESCAN_PAGEMAP,  /* always read pagemap entries */
} PageScanMode;

typedef struct PageScanner {
        int pagemap_fd;    /* not owned */
        int kpageflags_fd; /* owned, may be -EBADF */
        bool use_ioctl;
        bool guard_category;
} PageScanner;

int pagescan_init(PageScanner *s, int pagemap_fd, PageScanMode mode);
void pagescan_done(PageScanner *s);

/* Append the data-holding ranges of v (index vma_index) to list. */
int pagescan_vma(PageScanner *s, const Vma *v, uint32_t vma_index, PageRangeList *list);

/* Append every page of [start, end) that is present or swapped, whatever
 * it holds, tagged with tag; the shared zero page (where the kernel tells)
 * with tag | PAGESCAN_ZERO_PAGE. */
#define PAGESCAN_ZERO_PAGE (UINT32_C(1) << 31)
int pagescan_present(PageScanner *s, uint64_t start, uint64_t end, uint32_t tag, PageRangeList *list);

int page_range_list_add(PageRangeList *l, uint64_t start, uint64_t end, uint32_t vma);
void page_range_list_done(PageRangeList *l);
