/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fileio.h"
#include "pagescan.h"

#define PAGES 64

/* Our own memory: which pages does the scanner report? */
static void scan_own(PageScanMode mode) {
        size_t ps = (size_t) getpagesize();
        uint8_t *p = mmap(NULL, PAGES * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        volatile uint8_t sink = 0;
        PageScanner s;
        PageRangeList l = {};
        int fd;

        cr_assert_neq(p, MAP_FAILED);
        (void) madvise(p, PAGES * ps, MADV_NOHUGEPAGE);
        /* Written: pages 0-3, 10, 40-41. Read only (zero page): 20-23. */
        for (int i = 0; i < 4; i++)
                p[i * ps] = 1;
        p[10 * ps] = 1;
        p[40 * ps] = 1;
        p[41 * ps + 17] = 1;
        for (int i = 20; i < 24; i++)
                sink += p[i * ps];
        (void) sink;

        fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
        cr_assert_geq(fd, 0);
        cr_assert_eq(pagescan_init(&s, fd, mode), 0);

        Vma v = { .start = (uint64_t) p, .end = (uint64_t) p + PAGES * ps, .flags = VMA_READ | VMA_WRITE };
        cr_assert_eq(pagescan_vma(&s, &v, 7, &l), 0);

        cr_assert_eq(l.n, 3, "%zu ranges", l.n);
        cr_assert_eq(l.ranges[0].start, (uint64_t) p);
        cr_assert_eq(l.ranges[0].end, (uint64_t) p + 4 * ps);
        cr_assert_eq(l.ranges[1].start, (uint64_t) p + 10 * ps);
        cr_assert_eq(l.ranges[1].end, (uint64_t) p + 11 * ps);
        cr_assert_eq(l.ranges[2].start, (uint64_t) p + 40 * ps);
        cr_assert_eq(l.ranges[2].end, (uint64_t) p + 42 * ps);
        cr_assert_eq(l.ranges[2].vma, 7);
        cr_assert_eq(l.bytes, 7 * ps);

        page_range_list_done(&l);
        pagescan_done(&s);
        close(fd);
        munmap(p, PAGES * ps);
}

Test(pagescan, pagemap_scan) {
        scan_own(PAGESCAN_AUTO);
}

Test(pagescan, pagemap_entries) {
        /* As root the frame numbers are visible, so zero pages are told apart
         * through /proc/kpageflags here too. */
        if (geteuid() != 0)
                cr_skip_test("needs frame numbers (root)");
        scan_own(PAGESCAN_PAGEMAP);
}

Test(pagescan, private_file_mapping_only_dirty_pages) {
        size_t ps = (size_t) getpagesize();
        char path[] = "/tmp/memcr-pagescan-XXXXXX";
        int fd = mkstemp(path);
        PageScanner s;
        PageRangeList l = {};

        cr_assert_geq(fd, 0);
        unlink(path);
        cr_assert_eq(ftruncate(fd, 16 * ps), 0);
        uint8_t *buf = malloc(16 * ps);
        memset(buf, 0xab, 16 * ps);
        cr_assert_eq(pwrite_full(fd, buf, 16 * ps, 0), 0);
        free(buf);

        uint8_t *p = mmap(NULL, 16 * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
        cr_assert_neq(p, MAP_FAILED);
        volatile uint8_t sink = 0;
        for (int i = 0; i < 16; i++)
                sink += p[i * ps]; /* all present, file pages */
        (void) sink;
        p[5 * ps] = 1; /* one COW copy */

        int pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
        cr_assert_eq(pagescan_init(&s, pm, PAGESCAN_AUTO), 0);
        Vma v = { .start = (uint64_t) p, .end = (uint64_t) p + 16 * ps, .flags = VMA_FILE };
        cr_assert_eq(pagescan_vma(&s, &v, 0, &l), 0);
        cr_assert_eq(l.n, 1);
        cr_assert_eq(l.ranges[0].start, (uint64_t) p + 5 * ps);
        cr_assert_eq(l.bytes, ps);
        page_range_list_done(&l);
        pagescan_done(&s);
        close(pm);
        munmap(p, 16 * ps);
        close(fd);
}
