/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <fcntl.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "alloc-util.h"
#include "fileio.h"
#include "log.h"
#include "macro.h"
#include "pagescan.h"

/* From <linux/fs.h> of Linux 6.7+; older headers lack them. */
#ifndef PAGEMAP_SCAN
struct page_region {
        uint64_t start;
        uint64_t end;
        uint64_t categories;
};

struct pm_scan_arg {
        uint64_t size;
        uint64_t flags;
        uint64_t start;
        uint64_t end;
        uint64_t walk_end;
        uint64_t vec;
        uint64_t vec_len;
        uint64_t max_pages;
        uint64_t category_inverted;
        uint64_t category_mask;
        uint64_t category_anyof_mask;
        uint64_t return_mask;
};
#define PAGEMAP_SCAN _IOWR('f', 16, struct pm_scan_arg)
#define PAGE_IS_WPALLOWED (1 << 0)
#define PAGE_IS_WRITTEN (1 << 1)
#define PAGE_IS_FILE (1 << 2)
#define PAGE_IS_PRESENT (1 << 3)
#define PAGE_IS_SWAPPED (1 << 4)
#define PAGE_IS_PFNZERO (1 << 5)
#define PAGE_IS_HUGE (1 << 6)
#define PAGE_IS_SOFT_DIRTY (1 << 7)
#endif
#ifndef PAGE_IS_GUARD
#define PAGE_IS_GUARD (1 << 8)
#endif

/* pagemap entry bits (Documentation/admin-guide/mm/pagemap.rst) */
#define PM_PFN_MASK ((1ULL << 55) - 1)
#define PM_GUARD_REGION (1ULL << 58)
#define PM_FILE (1ULL << 61)
#define PM_SWAP (1ULL << 62)
#define PM_PRESENT (1ULL << 63)
#define KPF_ZERO_PAGE 24

/* What a dump leaves out (and guard regions, where the kernel tells them). */
#define DUMP_SKIPS (PAGE_IS_FILE | PAGE_IS_PFNZERO)

#define SCAN_VEC_LEN 1024
#define PAGEMAP_BATCH 4096

int page_range_list_add(PageRangeList *l, uint64_t start, uint64_t end, uint32_t vma) {
        assert(start < end);

        if (l->n > 0) {
                PageRange *last = &l->ranges[l->n - 1];
                if (last->end == start && last->vma == vma) {
                        last->end = end;
                        l->bytes += end - start;
                        return 0;
                }
        }
        if (GREEDY_REALLOC(l->ranges, l->allocated, l->n + 1, 256) < 0)
                return -ENOMEM;
        l->ranges[l->n++] = (PageRange) { .start = start, .end = end, .vma = vma };
        l->bytes += end - start;
        return 0;
}

void page_range_list_done(PageRangeList *l) {
        free(l->ranges);
        *l = (PageRangeList) {};
}

/* One PAGEMAP_SCAN of start to end into vec: the pages present or swapped out
 * that are in none of the categories skip. */
static int scan_ioctl(PageScanner *s, uint64_t start, uint64_t end, uint64_t skip, struct page_region *vec,
                      size_t vec_len, uint64_t *ret_walk_end, size_t *ret_n) {
        struct pm_scan_arg arg = {
                .size = sizeof(arg),
                .start = start,
                .end = end,
                .vec = (uint64_t) (uintptr_t) vec,
                .vec_len = vec_len,
                .category_inverted = skip,
                .category_mask = skip,
                .category_anyof_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
                /* A region is all zero pages or none (adjacent matches merge
                 * where this is the same). */
                .return_mask = PAGE_IS_PFNZERO,
        };
        int r = ioctl(s->pagemap_fd, PAGEMAP_SCAN, &arg);
        if (r < 0)
                return -errno;
        *ret_walk_end = arg.walk_end;
        *ret_n = (size_t) r;
        return 0;
}

int pagescan_init(PageScanner *s, int pagemap_fd, PageScanMode mode) {
        struct page_region vec[1];
        uint64_t walk_end;
        size_t n;

        *s = (PageScanner) { .pagemap_fd = pagemap_fd, .kpageflags_fd = -EBADF };

        if (mode == PAGESCAN_AUTO) {
                /* An empty range tells whether the ioctl and the guard category exist. */
                if (scan_ioctl(s, 0, 0, DUMP_SKIPS | PAGE_IS_GUARD, vec, 1, &walk_end, &n) >= 0)
                        s->use_ioctl = s->guard_category = true;
                else if (scan_ioctl(s, 0, 0, DUMP_SKIPS, vec, 1, &walk_end, &n) >= 0)
                        s->use_ioctl = true;
        }
        if (!s->use_ioctl) {
                /* Frame numbers are visible only to privileged openers of
                 * pagemap; when they are, kpageflags tells zero pages apart. */
                s->kpageflags_fd = open("/proc/kpageflags", O_RDONLY | O_CLOEXEC);
                if (s->kpageflags_fd < 0)
                        s->kpageflags_fd = -EBADF;
        }
        log_debug("page scan: %s%s", s->use_ioctl ? "PAGEMAP_SCAN" : "pagemap entries",
                  s->use_ioctl && !s->guard_category ? " (no guard category)" : "");
        return 0;
}

void pagescan_done(PageScanner *s) {
        s->kpageflags_fd = safe_close(s->kpageflags_fd);
}

/* The pages of start to end present or swapped out and in none of the
 * categories skip, added to list with tag (zero pages: tag |
 * PAGESCAN_ZERO_PAGE). */
static int scan_range_ioctl(PageScanner *s, uint64_t start, uint64_t end, uint64_t skip, uint32_t tag,
                            PageRangeList *list) {
        _cleanup_free_ struct page_region *vec = malloc(SCAN_VEC_LEN * sizeof(*vec));
        uint64_t pos = start;

        if (!vec)
                return -ENOMEM;
        while (pos < end) {
                uint64_t walk_end, before = pos;
                size_t n;
                int r;

                r = scan_ioctl(s, pos, end, skip, vec, SCAN_VEC_LEN, &walk_end, &n);
                if (r < 0)
                        return r;
                /* Some kernels report a walk_end short of regions they did
                 * return: the walk got at least as far as the last of them.
                 * Nothing is taken twice, and nothing out of order. */
                for (size_t i = 0; i < n; i++) {
                        uint64_t a = MAX(vec[i].start, pos), b = MIN(vec[i].end, end);

                        if (a >= b)
                                continue;
                        r = page_range_list_add(list, a, b,
                                                (vec[i].categories & PAGE_IS_PFNZERO) ? tag | PAGESCAN_ZERO_PAGE : tag);
                        if (r < 0)
                                return r;
                        pos = b;
                }
                pos = MAX(pos, walk_end);
                if (pos <= before)
                        return -EIO; /* no progress */
        }
        return 0;
}

static bool is_zero_pfn(PageScanner *s, uint64_t pfn) {
        uint64_t flags;

        if (s->kpageflags_fd < 0 || pfn == 0)
                return false;
        if (pread_full(s->kpageflags_fd, &flags, sizeof(flags), (off_t) (pfn * sizeof(flags))) < 0)
                return false;
        return flags & (1ULL << KPF_ZERO_PAGE);
}

/* Whether a dump takes the page of pagemap entry e (present or swapped out):
 * not in a guard region, not a file page, not the zero page. */
static bool dump_takes(PageScanner *s, uint64_t e) {
        if (e & PM_GUARD_REGION)
                return false;
        return !(e & PM_PRESENT) || (!(e & PM_FILE) && !is_zero_pfn(s, e & PM_PFN_MASK));
}

/* As scan_range_ioctl(), from pagemap's entries: the pages present or swapped
 * out (dump_only: those a dump takes), zero pages not told apart. */
static int scan_range_pagemap(PageScanner *s, uint64_t start, uint64_t end, bool dump_only, uint32_t tag,
                              PageRangeList *list) {
        _cleanup_free_ uint64_t *buf = malloc(PAGEMAP_BATCH * sizeof(uint64_t));
        uint64_t page_size = (uint64_t) getpagesize();

        if (!buf)
                return -ENOMEM;
        for (uint64_t addr = start; addr < end;) {
                size_t n = (size_t) MIN((end - addr) / page_size, (uint64_t) PAGEMAP_BATCH);
                int r;

                r = pread_full(s->pagemap_fd, buf, n * sizeof(uint64_t),
                               (off_t) (addr / page_size * sizeof(uint64_t)));
                if (r < 0)
                        return r;
                for (size_t i = 0; i < n; i++, addr += page_size) {
                        if (!(buf[i] & (PM_PRESENT | PM_SWAP)) || (dump_only && !dump_takes(s, buf[i])))
                                continue;
                        r = page_range_list_add(list, addr, addr + page_size, tag);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

int pagescan_present(PageScanner *s, uint64_t start, uint64_t end, uint32_t tag, PageRangeList *list) {
        if (s->use_ioctl)
                return scan_range_ioctl(s, start, end, 0, tag, list);
        return scan_range_pagemap(s, start, end, false, tag, list);
}

int pagescan_vma(PageScanner *s, const Vma *v, uint32_t vma_index, PageRangeList *list) {
        assert(s);
        assert(v);
        assert(list);

        if (s->use_ioctl)
                return scan_range_ioctl(s, v->start, v->end, DUMP_SKIPS | (s->guard_category ? PAGE_IS_GUARD : 0),
                                        vma_index, list);
        return scan_range_pagemap(s, v->start, v->end, true, vma_index, list);
}
