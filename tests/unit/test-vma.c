/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <criterion/criterion.h>
#include <errno.h>

#include "vma.h"

static const char smaps[] =
        "55d0c0000000-55d0c0021000 rw-p 00000000 00:00 0                          [heap]\n"
        "Size:                132 kB\n"
        "Rss:                  12 kB\n"
        "AnonHugePages:         0 kB\n"
        "Swap:                  4 kB\n"
        "VmFlags: rd wr mr mw me ac sd\n"
        "7f0000000000-7f0000400000 rw-p 00000000 00:00 0 \n"
        "Rss:                2048 kB\n"
        "AnonHugePages:      2048 kB\n"
        "VmFlags: rd wr mr mw me ac sd hg\n"
        "7f0000400000-7f0000410000 rw-s 00000000 00:01 1234                       /memfd:x (deleted)\n"
        "Rss:                  64 kB\n"
        "VmFlags: rd wr sh mr mw me ms sd\n"
        "7f0000410000-7f0000420000 rw-p 00000000 00:00 0 \n"
        "Rss:                  64 kB\n"
        "VmFlags: rd wr mr mw me lo ac sd\n"
        "7f0000420000-7f0000430000 r--p 00001000 08:01 99                         /usr/lib/x\n"
        "Rss:                  64 kB\n"
        "VmFlags: rd mr mw me sd\n"
        "7f0000430000-7f0000440000 ---p 00000000 00:00 0 \n"
        "Rss:                   0 kB\n"
        "VmFlags: mr mw me sd\n"
        "7f0000440000-7f0000450000 rw-p 00000000 00:00 0 \n"
        "VmFlags: rd wr mr mw me ac sd um\n"
        "7fff00000000-7fff00002000 r-xp 00000000 00:00 0                          [vdso]\n"
        "VmFlags: rd ex mr mw me de sd\n"
        "7fff00010000-7fff00011000 rw-p 00000000 00:00 0 \n"
        "VmFlags: rd wr mr mw me ac sd ss\n"
        "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]\n"
        "VmFlags: ex\n";

Test(vma, parse_and_select) {
        VmaList l = {};

        cr_assert_eq(vma_list_parse(smaps, &l), 0);
        cr_assert_eq(l.n, 10);

        cr_assert_eq(l.vmas[0].start, 0x55d0c0000000ULL);
        cr_assert_eq(l.vmas[0].end, 0x55d0c0021000ULL);
        cr_assert_eq(l.vmas[0].rss_kb, 12);
        cr_assert_eq(l.vmas[0].swap_kb, 4);
        cr_assert(vma_is_dumpable(&l.vmas[0]), "heap");

        cr_assert(l.vmas[1].flags & VMA_HUGEPAGE);
        cr_assert_eq(l.vmas[1].anon_huge_kb, 2048);
        cr_assert(vma_is_dumpable(&l.vmas[1]));

        cr_assert(l.vmas[2].flags & VMA_SHARED);
        cr_assert_not(vma_is_dumpable(&l.vmas[2]), "shared memfd");

        cr_assert(l.vmas[3].flags & VMA_LOCKED);
        cr_assert_not(vma_is_dumpable(&l.vmas[3]), "mlocked");

        cr_assert(l.vmas[4].flags & VMA_FILE);
        cr_assert(vma_is_dumpable(&l.vmas[4]), "private file mapping (COW pages)");

        cr_assert_eq(l.vmas[5].flags & (VMA_READ | VMA_WRITE | VMA_EXEC), 0);
        cr_assert(vma_is_dumpable(&l.vmas[5]), "PROT_NONE");

        cr_assert(l.vmas[6].flags & VMA_UFFD);
        cr_assert_not(vma_is_dumpable(&l.vmas[6]), "target's own userfaultfd");

        cr_assert(l.vmas[7].flags & VMA_SPECIAL);
        cr_assert_not(vma_is_dumpable(&l.vmas[7]), "vdso");

        cr_assert(l.vmas[8].flags & VMA_SHSTK);
        cr_assert_not(vma_is_dumpable(&l.vmas[8]), "shadow stack");

        cr_assert_not(vma_is_dumpable(&l.vmas[9]), "vsyscall");

        cr_assert_eq(vma_list_anon_huge_kb(&l), 2048);
        vma_list_done(&l);
}

Test(vma, garbage_is_refused) {
        VmaList l = {};
        cr_assert_eq(vma_list_parse("Rss: 4 kB\n", &l), -EBADMSG);
        cr_assert_eq(vma_list_parse("", &l), 0);
        cr_assert_eq(l.n, 0);
        vma_list_done(&l);
}
