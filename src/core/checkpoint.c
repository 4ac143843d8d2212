/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "fileio.h"
#include "log.h"
#include "macro.h"
#include "memcr.h"
#include "fd-boundary.h"
#include "parasite.h"
#include "procfs.h"
#include "seccomp-probe.h"
#include "transfer.h"
#include "vma.h"

#define DEFAULT_STOP_TIMEOUT (2 * USEC_PER_SEC)

/* Scan v, leaving out the parasite's own mappings: the kernel may have merged
 * them with a neighbouring area of the target. */
static int scan_area(PageScanner *scanner, const Parasite *p, const Vma *v, uint32_t idx,
                     PageRangeList *ranges) {
        uint64_t holes[2][2] = {
                { p->code_addr, p->code_addr + p->code_size },
                { p->data_addr, p->data_addr + PARASITE_DATA_SIZE },
        };
        uint64_t pos = v->start;
        int r;

        if (holes[0][0] > holes[1][0]) {
                uint64_t t0 = holes[0][0], t1 = holes[0][1];
                holes[0][0] = holes[1][0];
                holes[0][1] = holes[1][1];
                holes[1][0] = t0;
                holes[1][1] = t1;
        }
        for (int i = 0; i <= 2 && pos < v->end; i++) {
                uint64_t end = i < 2 ? MIN(holes[i][0], v->end) : v->end;

                if (end > pos) {
                        Vma piece = *v;
                        piece.start = pos;
                        piece.end = end;
                        r = pagescan_vma(scanner, &piece, idx, ranges);
                        if (r < 0)
                                return r;
                }
                if (i < 2)
                        pos = MAX(pos, holes[i][1]);
        }
        return 0;
}

static int read_vmas(Parasite *p, VmaList *ret) {
        _cleanup_free_ char *text = NULL;
        int r;

        r = read_full_fd(p->fds[PARASITE_FD_SMAPS], 256 * 1024 * 1024, &text, NULL);
        if (r < 0)
                return r;
        return vma_list_parse(text, ret);
}

/* Plan the dump: one region per dumpable area that holds data, its data
 * ranges split into chunks. Also returns the ranges for dropping. */
static int plan(Frozen *f, Parasite *p, const VmaList *vmas, PageScanMode mode,
                PageRangeList *ranges) {
        PageScanner scanner;
        int r;

        r = pagescan_init(&scanner, p->fds[PARASITE_FD_PAGEMAP], mode);
        if (r < 0)
                return r;

        for (size_t i = 0; i < vmas->n; i++) {
                const Vma *v = &vmas->vmas[i];
                size_t first = ranges->n;
                uint32_t region;

                if (!vma_is_dumpable(v))
                        continue;
                /* Nothing resident or swapped: nothing to scan. */
                if (v->rss_kb == 0 && v->swap_kb == 0)
                        continue;

                r = scan_area(&scanner, p, v, (uint32_t) i, ranges);
                if (r < 0) {
                        pagescan_done(&scanner);
                        return log_debug_errno(r, "scanning 0x%llx-0x%llx failed: %m",
                                               (unsigned long long) v->start,
                                               (unsigned long long) v->end);
                }
                log_debug("area 0x%llx-0x%llx flags 0x%x rss %llu kB: %zu ranges",
                          (unsigned long long) v->start, (unsigned long long) v->end, v->flags,
                          (unsigned long long) v->rss_kb, ranges->n - first);
                if (ranges->n == first)
                        continue;

                r = dump_add_region(f->dump, v->start, v->end, v->flags, &region);
                if (r < 0)
                        break;
                for (size_t k = first; k < ranges->n && r >= 0; k++)
                        r = dump_plan_range(f->dump, region, ranges->ranges[k].start,
                                            ranges->ranges[k].end);
                if (r < 0)
                        break;
        }
        pagescan_done(&scanner);
        return r < 0 ? r : 0;
}

/* Kill the target while the parasite object still points at its tracee. */
static void kill_target(Frozen *f, Parasite *p) {
        p->tracee = NULL;
        p->code_size = 0;
        p->data_addr = 0;
        memcr_kill(f);
}

static int drop_pages(Parasite *p, const PageRangeList *ranges, size_t *ret_done) {
        _cleanup_free_ struct parasite_range *pr = NULL;

        pr = malloc(MAX(ranges->n, (size_t) 1) * sizeof(*pr));
        if (!pr)
                return -ENOMEM;
        for (size_t i = 0; i < ranges->n; i++)
                pr[i] = (struct parasite_range) {
                        .start = ranges->ranges[i].start,
                        .len = ranges->ranges[i].end - ranges->ranges[i].start,
                };
        return parasite_madvise(p, pr, ranges->n, MADV_DONTNEED, ret_done);
}

/* A Frozen for pid, with its dump created: before the target is touched, so
 * that a bad directory is reported without the target ever stopping. */
static int frozen_new(pid_t pid, int pidfd, const CheckpointOptions *o, Frozen **ret) {
        _cleanup_frozen_ Frozen *f = NULL;
        DumpOptions dopts;
        int r;

        f = calloc(1, sizeof(Frozen));
        if (!f)
                return -ENOMEM;
        f->pid = pid;
        f->mem_fd = f->pagemap_fd = -EBADF;
        f->pidfd = fcntl(pidfd, F_DUPFD_CLOEXEC, 3);
        if (f->pidfd < 0)
                return -errno;
        f->workers = o->workers ?: transfer_default_workers();
        f->scan_mode = o->scan_mode;

        dopts = (DumpOptions) {
                .codec = o->codec,
                .level = o->level,
                .protection = o->protection ?: PROTECTION_ENCRYPT,
                .chunk_size = o->chunk_size,
        };
        r = dump_new(o->dump_dir, &dopts, pid, &f->dump);
        if (r < 0)
                return log_debug_errno(r, "cannot create a dump file in %s: %m", o->dump_dir);

        *ret = TAKE_PTR(f);
        return 0;
}

/* May the seized target be checkpointed (and restored lazily)? */
static int check_target(Frozen *f, const CheckpointOptions *o) {
        char reason[256] = "";
        pid_t pid = f->pid;
        int r;

        if (o->identity) {
                /* Authorization judged the process it saw; now that it cannot
                 * change any more, it must still be that one. */
                ProcIdentity now;
                const char *what;

                r = proc_identity_read(pid, &now);
                if (r < 0)
                        return log_debug_errno(r, "reading the identity of %i failed: %m", pid);
                what = proc_identity_differs(o->identity, &now);
                if (what) {
                        snprintf(reason, sizeof(reason),
                                 "its %s changed after the request was authorized (it executed another program?)",
                                 what);
                        if (o->reason)
                                snprintf(o->reason, o->reason_size, "%s", reason);
                        return log_debug_errno(-EPERM, "%i: %s", pid, reason);
                }
        }
        r = seccomp_probe(f->tracee, reason, sizeof(reason), f->no_lazy, sizeof(f->no_lazy));
        if (r < 0) {
                if (o->reason && reason[0])
                        snprintf(o->reason, o->reason_size, "%s", reason);
                return r;
        }
        /* Who could take a descriptor from its table: decided now, for good
         * (while it is frozen nobody new can come to share the table). */
        if (!f->no_lazy[0])
                (void) fd_table_private(f->tracee, f->no_lazy, sizeof(f->no_lazy));
        return 0;
}

/* Everything is safely in the dump: drop it from memory, and cure. */
static int drop_memory(Frozen *f, Parasite *p, const PageRangeList *ranges) {
        TransferOptions topts;
        pid_t pid = f->pid;
        int r;

        /* From here on, if we die, the target dies with us rather than run with holes. */
        r = tracee_arm_exitkill(f->tracee);
        if (r < 0)
                return r;
        size_t done = 0;
        f->memory_out = true;
        r = drop_pages(p, ranges, &done);
        if (r < 0) {
                int k;

                log_debug_errno(r, "dropping pages failed after %zu of %zu ranges: %m", done, ranges->n);
                /* Put back what was dropped (all of it: writing intact pages
                 * again is harmless), then cure and release. */
                topts = (TransferOptions) { .workers = f->workers, .pid = pid };
                k = transfer_from_dump(f->dump, p->fds[PARASITE_FD_MEM], &topts);
                if (k < 0) {
                        log_debug_errno(k, "putting pages back failed: %m");
                        kill_target(f, p);
                        return r;
                }
                f->memory_out = false;
                return r;
        }

        r = parasite_cure(p);
        if (r < 0) {
                /* Registers or the signal mask could not be put back: the target
                 * cannot run correctly. */
                log_debug_errno(r, "cure failed with memory out, killing %i: %m", pid);
                kill_target(f, p);
                return r;
        }
        return 0;
}

static int checkpoint(pid_t pid, int pidfd, const CheckpointOptions *o, Frozen **ret) {
        _cleanup_frozen_ Frozen *f = NULL;
        _cleanup_parasite_ Parasite *p = NULL;
        _cleanup_(vma_list_done) VmaList vmas = {};
        _cleanup_(page_range_list_done) PageRangeList ranges = {};
        TransferOptions topts;
        usec_t t0 = now_usec(CLOCK_MONOTONIC), t_frozen;
        int r;

        assert(pid > 0);
        assert(pidfd >= 0);
        assert(o);
        assert(ret);

        r = frozen_new(pid, pidfd, o, &f);
        if (r < 0)
                return r;
        f->stats.rss_before = proc_rss_bytes(pid);

        r = tracee_seize(pid, f->pidfd, o->stop_timeout ?: DEFAULT_STOP_TIMEOUT, &f->tracee);
        if (r < 0)
                return r;
        t_frozen = now_usec(CLOCK_MONOTONIC);
        f->stats.frozen_at = now_usec(CLOCK_REALTIME);
        f->stats.n_threads = f->tracee->n_threads;

        r = check_target(f, o);
        if (r < 0)
                return r;
        r = parasite_infect(f->tracee, &p);
        if (r < 0)
                return r;

        r = read_vmas(p, &vmas);
        if (r < 0)
                return log_debug_errno(r, "reading the target's memory map failed: %m");
        f->stats.thp_kb_before = vma_list_anon_huge_kb(&vmas);

        r = plan(f, p, &vmas, o->scan_mode, &ranges);
        if (r < 0)
                return r;
        f->stats.n_regions = f->dump->n_regions;
        f->stats.n_ranges = ranges.n;
        f->stats.dumped_bytes = ranges.bytes;

        topts = (TransferOptions) {
                .workers = f->workers,
                .pid = pid,
                .deadline = o->deadline,
                .progress = o->progress,
                .userdata = o->userdata,
        };
        r = transfer_to_dump(f->dump, p->fds[PARASITE_FD_MEM], &topts);
        if (r < 0)
                return log_debug_errno(r, "writing the dump failed: %m");
        r = dump_finish(f->dump);
        if (r < 0)
                return log_debug_errno(r, "finishing the dump failed: %m");
        if (o->deadline != 0 && now_usec(CLOCK_MONOTONIC) > o->deadline)
                return -ETIME;

        r = drop_memory(f, p, &ranges);
        if (r < 0)
                return r;
        f->mem_fd = parasite_take_fd(p, PARASITE_FD_MEM);
        f->pagemap_fd = parasite_take_fd(p, PARASITE_FD_PAGEMAP);

        /* THP count after dropping, from the same smaps view. */
        {
                _cleanup_(vma_list_done) VmaList after = {};
                if (read_vmas(p, &after) >= 0)
                        f->stats.thp_kb_after = vma_list_anon_huge_kb(&after);
        }
        p = parasite_free(p);

        f->group_stopped = f->tracee->group_stopped;
        f->stats.rss_after = proc_rss_bytes(pid);
        f->stats.dump_file_bytes = dump_file_size(f->dump);
        f->stats.duration = now_usec(CLOCK_MONOTONIC) - t0;
        f->stats.freeze_duration = now_usec(CLOCK_MONOTONIC) - t_frozen;

        log_debug("checkpointed %i: %" PRIu64 " bytes in %" PRIu64 " ranges, rss %" PRIu64 " -> %" PRIu64,
                  pid, f->stats.dumped_bytes, f->stats.n_ranges, f->stats.rss_before,
                  f->stats.rss_after);
        *ret = TAKE_PTR(f);
        return 0;
}

int memcr_checkpoint(pid_t pid, int pidfd, const CheckpointOptions *o, Frozen **ret) {
        struct pollfd p = { .fd = pidfd, .events = POLLIN };
        int r;

        r = checkpoint(pid, pidfd, o, ret);
        /* Whatever failed, if the target is gone that is the story. (Its
         * threads have been collected by now, so the pidfd tells.) */
        if (r < 0 && r != -ESRCH && poll(&p, 1, 0) > 0)
                return log_debug_errno(-ESRCH, "process %i died during checkpoint", pid);
        return r;
}
