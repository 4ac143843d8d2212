/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc-util.h"
#include "macro.h"
#include "vma.h"

static const char *const special_names[] = {
        "[vdso]", "[vvar]", "[vvar_vclock]", "[vsyscall]", "[uprobes]", "[sigpage]", "[vectors]",
};

static uint32_t parse_vmflags(const char *p) {
        uint32_t f = 0;

        /* Two-letter mnemonics separated by spaces (see proc(5)). */
        while (*p) {
                while (*p == ' ')
                        p++;
                if (!p[0] || !p[1])
                        break;
                if (strneq(p, "lo", 2))
                        f |= VMA_LOCKED;
                else if (strneq(p, "io", 2))
                        f |= VMA_IO;
                else if (strneq(p, "pf", 2))
                        f |= VMA_PFNMAP;
                else if (strneq(p, "um", 2) || strneq(p, "uw", 2) || strneq(p, "ui", 2))
                        f |= VMA_UFFD;
                else if (strneq(p, "ss", 2))
                        f |= VMA_SHSTK;
                else if (strneq(p, "dp", 2))
                        f |= VMA_DROPPABLE;
                else if (strneq(p, "hg", 2))
                        f |= VMA_HUGEPAGE;
                p += 2;
        }
        return f;
}

static bool parse_header(const char *line, Vma *v) {
        unsigned long long start, end, inode;
        char perms[5] = {};
        int name_off = -1;

        if (sscanf(line, "%llx-%llx %4s %*s %*s %llu %n", &start, &end, perms, &inode, &name_off) < 4)
                return false;
        if (strlen(perms) != 4 || end <= start)
                return false;

        *v = (Vma) { .start = start, .end = end };
        if (perms[0] == 'r')
                v->flags |= VMA_READ;
        if (perms[1] == 'w')
                v->flags |= VMA_WRITE;
        if (perms[2] == 'x')
                v->flags |= VMA_EXEC;
        if (perms[3] == 's')
                v->flags |= VMA_SHARED;
        if (inode != 0)
                v->flags |= VMA_FILE;
        if (name_off > 0) {
                const char *name = line + name_off;
                for (size_t i = 0; i < ELEMENTSOF(special_names); i++)
                        if (streq(name, special_names[i]))
                                v->flags |= VMA_SPECIAL;
        }
        return true;
}

int vma_list_parse(const char *text, VmaList *ret) {
        _cleanup_free_ Vma *vmas = NULL;
        size_t n = 0, allocated = 0;
        const char *line = text;
        char buf[4096];

        assert(text);
        assert(ret);

        while (*line) {
                const char *nl = strchr(line, '\n');
                size_t len = nl ? (size_t) (nl - line) : strlen(line);
                Vma v;
                const char *val;

                if (len >= sizeof(buf))
                        len = sizeof(buf) - 1;
                memcpy(buf, line, len);
                buf[len] = 0;
                line = nl ? nl + 1 : line + strlen(line);

                /* A header line starts with a hex address and has a '-' right after it. */
                if (parse_header(buf, &v)) {
                        if (GREEDY_REALLOC(vmas, allocated, n + 1, 64) < 0)
                                return -ENOMEM;
                        vmas[n++] = v;
                        continue;
                }
                if (n == 0)
                        return -EBADMSG;

                Vma *cur = &vmas[n - 1];
                if ((val = startswith(buf, "VmFlags:")))
                        cur->flags |= parse_vmflags(val);
                else if ((val = startswith(buf, "Rss:")))
                        cur->rss_kb = strtoull(val, NULL, 10);
                else if ((val = startswith(buf, "Swap:")))
                        cur->swap_kb = strtoull(val, NULL, 10);
                else if ((val = startswith(buf, "AnonHugePages:")))
                        cur->anon_huge_kb = strtoull(val, NULL, 10);
        }

        *ret = (VmaList) { .vmas = TAKE_PTR(vmas), .n = n };
        return 0;
}

void vma_list_done(VmaList *l) {
        free(l->vmas);
        *l = (VmaList) {};
}

bool vma_is_dumpable(const Vma *v) {
        if (v->flags & (VMA_SHARED | VMA_LOCKED | VMA_IO | VMA_PFNMAP | VMA_UFFD | VMA_SPECIAL |
                        VMA_SHSTK | VMA_DROPPABLE))
                return false;
        return true;
}

uint64_t vma_list_anon_huge_kb(const VmaList *l) {
        uint64_t sum = 0;
        for (size_t i = 0; i < l->n; i++)
                sum += l->vmas[i].anon_huge_kb;
        return sum;
}
