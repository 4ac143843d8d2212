/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Lazy restore's userfaultfd service: faults answered on the caller's
 * thread, everything else copied by background workers, the target's
 * structural events (fork, mremap, madvise, munmap) applied as they come. */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "fileio.h"
#include "lazy-internal.h"
#include "log.h"
#include "macro.h"


/* Does the page at addr in the target hold the page at src? 1, 0, or -errno. */
static int page_matches(LazyRestore *l, uint64_t addr, const void *src) {
        const size_t ps = (size_t) getpagesize();
        _cleanup_free_ uint8_t *buf = malloc(ps);
        int r;

        if (!buf)
                return -ENOMEM;
        r = pread_full(l->frozen->mem_fd, buf, ps, (off_t) addr);
        if (r < 0)
                return r;
        r = memcmp(buf, src, ps) == 0;
        explicit_bzero(buf, ps);
        return r;
}

/* Copy len bytes from src to dest in the target. Returns 0, -EAGAIN (the
 * target is changing its mappings: retry after the event is handled), or
 * another error. A page that is there already (EEXIST) is accepted only if
 * it holds the dump's bytes, or, with !strict, in a child forked while we
 * streamed (it inherited what we had copied into its parent). In the target
 * itself nothing but us fills a registered page once it runs: a page that
 * is there and differs is not the target's own, and it must not run on with
 * it (-EEXIST). */
static int uffd_copy(LazyRestore *l, int uffd, uint64_t dest, const void *src, uint64_t len, bool strict) {
        const uint64_t ps = (uint64_t) getpagesize();

        while (len > 0) {
                struct uffdio_copy c = { .dst = dest, .src = (uint64_t) (uintptr_t) src, .len = len };

                if (ioctl(uffd, UFFDIO_COPY, &c) >= 0 && c.copy == (int64_t) len)
                        return 0;
                if (c.copy > 0) {
                        dest += (uint64_t) c.copy;
                        src = (const uint8_t *) src + c.copy;
                        len -= (uint64_t) c.copy;
                        continue;
                }
                if (c.copy == -EEXIST || errno == EEXIST) {
                        struct uffdio_range w = { .start = dest, .len = ps };

                        if (strict) {
                                int r = page_matches(l, dest, src);
                                if (r < 0)
                                        return r;
                                if (r == 0)
                                        return log_debug_errno(-EEXIST,
                                                               "page 0x%" PRIx64 " of %i was filled by somebody else", dest,
                                                               l->pid);
                        }
                        (void) ioctl(uffd, UFFDIO_WAKE, &w);
                        dest += ps;
                        src = (const uint8_t *) src + ps;
                        len -= MIN(len, ps);
                        continue;
                }
                return c.copy < 0 ? (int) c.copy : -errno;
        }
        return 0;
}

void lazy_fatal(LazyRestore *l, int error) {
        int expected = 0;
        atomic_compare_exchange_strong(&l->fatal, &expected, error);
        atomic_store(&l->stop, true);
}

static void wait_for_events(LazyRestore *l) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 1000 * 1000;
        if (ts.tv_nsec >= 1000 * 1000 * 1000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000 * 1000 * 1000;
        }
        pthread_mutex_lock(&l->wait_lock);
        (void) pthread_cond_timedwait(&l->wait_cond, &l->wait_lock, &ts);
        pthread_mutex_unlock(&l->wait_lock);
}

/* Put the busy items of chunk into place from raw. The item at hint was
 * claimed while s had hint_epoch; if the epoch moved on (items were split,
 * moved or dropped since), every busy item of the chunk is looked up again.
 * Under the read lock items cannot change shape. */
static int place_chunk(LazyRestore *l, Space *s, size_t hint, uint64_t hint_epoch, uint32_t chunk,
                       const uint8_t *raw, bool may_wait) {
        for (;;) {
                bool again = false;
                int r = 0;

                pthread_rwlock_rdlock(&l->lock);
                if (s->dead) {
                        pthread_rwlock_unlock(&l->lock);
                        return 0;
                }
                bool fast = s->epoch == hint_epoch && hint < s->set.n_items;
                size_t from = fast ? hint : 0, to = fast ? hint + 1 : s->set.n_items;
                for (size_t i = from; i < to; i++) {
                        Item *it = &s->set.items[i];
                        uint8_t busy = ITEM_BUSY;

                        if (it->chunk != chunk || atomic_load(&it->state) != ITEM_BUSY)
                                continue;
                        r = uffd_copy(l, s->uffd, it->dest, raw + it->offset, it->len, s == l->spaces[0]);
                        if (r == -EAGAIN) {
                                again = true;
                                break;
                        }
                        /* The space is gone (exit, exec) or the area is not ours
                         * any more: nothing to fill. */
                        if (r == -ESRCH || r == -ENOENT || r == -EINVAL)
                                r = 0;
                        if (r < 0)
                                break;
                        if (atomic_compare_exchange_strong(&it->state, &busy, ITEM_DONE)) {
                                atomic_fetch_sub(&s->set.outstanding, 1);
                                atomic_fetch_add(&l->done_bytes, it->len);
                        }
                }
                pthread_rwlock_unlock(&l->lock);
                if (!again)
                        return r;
                /* The target is changing its mappings. Only the thread that
                 * reads the events may not wait for them to be applied. */
                if (!may_wait)
                        return -EAGAIN;
                wait_for_events(l);
                if (atomic_load(&l->stop))
                        return 0;
                hint_epoch = UINT64_MAX;
        }
}

/* Claim the next pending item: stacks first, then in address order. */
static bool claim_next(LazyRestore *l, Space **ret_space, size_t *ret_index, uint64_t *ret_epoch,
                       uint32_t *ret_chunk) {
        bool found = false;

        pthread_rwlock_rdlock(&l->lock);
        for (uint8_t prio = 0; prio < 2 && !found; prio++)
                for (size_t k = 0; k < l->n_spaces && !found; k++) {
                        Space *s = l->spaces[k];
                        if (s->dead || atomic_load(&s->set.outstanding) == 0)
                                continue;
                        /* Items before the cursor were all taken already: start there. */
                        for (size_t i = atomic_load(&s->cursor[prio]); i < s->set.n_items; i++) {
                                uint8_t pending = ITEM_PENDING;
                                Item *it = &s->set.items[i];
                                if (it->priority != prio)
                                        continue;
                                if (atomic_load(&it->state) != ITEM_PENDING)
                                        continue;
                                if (atomic_compare_exchange_strong(&it->state, &pending, ITEM_BUSY)) {
                                        size_t c = atomic_load(&s->cursor[prio]);
                                        while (c < i && !atomic_compare_exchange_weak(&s->cursor[prio], &c, i))
                                                ;
                                        *ret_space = s;
                                        *ret_index = i;
                                        *ret_epoch = s->epoch;
                                        *ret_chunk = it->chunk;
                                        found = true;
                                        break;
                                }
                        }
                }
        pthread_rwlock_unlock(&l->lock);
        return found;
}

/* Every item of chunk in state from goes to state to. */
static void move_chunk(LazyRestore *l, Space *s, uint32_t chunk, uint8_t from, uint8_t to) {
        pthread_rwlock_rdlock(&l->lock);
        for (size_t i = 0; i < s->set.n_items; i++) {
                uint8_t expected = from;
                if (s->set.items[i].chunk == chunk)
                        atomic_compare_exchange_strong(&s->set.items[i].state, &expected, to);
        }
        pthread_rwlock_unlock(&l->lock);
}

/* Mark every other pending item of the same chunk in s busy too: one
 * decryption serves them all. */
static void claim_siblings(LazyRestore *l, Space *s, uint32_t chunk) {
        if (!s->set.split)
                return; /* one item per chunk until something was split */
        move_chunk(l, s, chunk, ITEM_PENDING, ITEM_BUSY);
}

static void *worker(void *userdata) {
        LazyRestore *l = userdata;
        _cleanup_free_ uint8_t *raw = malloc(l->dump->header.chunk_size);
        DumpWorker w;
        int r;


        if (!raw || dump_worker_init(&w, l->dump) < 0) {
                lazy_fatal(l, -ENOMEM);
                return NULL;
        }
        /* Let the target's threads have the CPUs first: what they touch right
         * after resuming is served on demand; the background pass can wait a
         * moment. */
        for (int i = 0; i < 20 && !atomic_load(&l->stop); i++)
                usleep_safe(USEC_PER_MSEC);
        /* And after that, whenever the CPUs are contended: the thread that
         * serves the target's faults, and the target, come first. (Measured
         * with a busy 1 GiB target on 2 CPUs: the median first access and
         * the time to fully resident both shorten, see bench/RESULTS.md.) */
        errno = 0;
        int base = getpriority(PRIO_PROCESS, (id_t) gettid());
        if (errno == 0)
                (void) setpriority(PRIO_PROCESS, (id_t) gettid(), MIN(base + LAZY_WORKER_NICE, 19));
        while (!atomic_load(&l->stop)) {
                Space *s;
                size_t idx;
                uint64_t epoch;
                uint32_t chunk;

                if (!claim_next(l, &s, &idx, &epoch, &chunk))
                        break;
                r = dump_load_chunk(&w, chunk, raw);
                if (r < 0) {
                        log_debug_errno(r, "chunk %u failed verification during lazy restore: %m", chunk);
                        lazy_fatal(l, r);
                        break;
                }
                r = place_chunk(l, s, idx, epoch, chunk, raw, true);
                if (r < 0) {
                        log_debug_errno(r, "filling chunk %u failed: %m", chunk);
                        lazy_fatal(l, r);
                        break;
                }
        }
        explicit_bzero(raw, l->dump->header.chunk_size);
        dump_worker_done(&w);
        return NULL;
}

/* A fault that could not be served before pending events are read. */
static int retry_later(LazyRestore *l, Space *s, uint64_t addr) {
        Retry *p = realloc(l->retries, (l->n_retries + 1) * sizeof(Retry));
        if (!p)
                return -ENOMEM;
        l->retries = p;
        l->retries[l->n_retries++] = (Retry) { .space = s, .addr = addr };
        return 0;
}

/* A page the target is waiting for, served right now on our thread. */
static int serve_fault(LazyRestore *l, Space *s, uint64_t addr, DumpWorker *w, uint8_t *raw) {
        uint64_t page = ALIGN_DOWN(addr, (uint64_t) getpagesize());
        uint32_t chunk = 0;
        uint64_t epoch = 0;
        ssize_t i;
        int r;

        atomic_fetch_add(&l->faults, 1);
        pthread_rwlock_rdlock(&l->lock);
        i = item_set_find(&s->set, page);
        if (i >= 0) {
                uint8_t pending = ITEM_PENDING;
                Item *it = &s->set.items[i];
                if (!atomic_compare_exchange_strong(&it->state, &pending, ITEM_BUSY)) {
                        /* Busy: the copy under way wakes the thread (waking it
                         * now would only make it fault again). Done: it is there
                         * already, the fault is stale. */
                        bool done = atomic_load(&it->state) == ITEM_DONE;
                        pthread_rwlock_unlock(&l->lock);
                        if (done) {
                                struct uffdio_range wake = { .start = page, .len = (uint64_t) getpagesize() };
                                (void) ioctl(s->uffd, UFFDIO_WAKE, &wake);
                        }
                        return 0;
                }
                chunk = it->chunk;
                epoch = s->epoch;
        }
        pthread_rwlock_unlock(&l->lock);

        if (i < 0) {
                /* Nothing was dumped here (never touched, or discarded by the
                 * target since): it reads as zeros. */
                struct uffdio_zeropage z = { .range = { .start = page, .len = (uint64_t) getpagesize() } };
                if (ioctl(s->uffd, UFFDIO_ZEROPAGE, &z) >= 0)
                        return 0;
                if (errno == EEXIST) {
                        struct uffdio_range wake = { .start = page, .len = (uint64_t) getpagesize() };
                        (void) ioctl(s->uffd, UFFDIO_WAKE, &wake);
                        return 0;
                }
                /* An event is pending: serve it after the events were read. */
                if (errno == EAGAIN)
                        return retry_later(l, s, addr);
                if (errno == ENOENT || errno == ESRCH)
                        return 0;
                return -errno;
        }

        claim_siblings(l, s, chunk);
        r = dump_load_chunk(w, chunk, raw);
        if (r < 0)
                return log_debug_errno(r, "chunk %u failed verification during lazy restore: %m", chunk);
        r = place_chunk(l, s, (size_t) i, epoch, chunk, raw, false);
        if (r >= 0 && s->set.split)
                r = place_chunk(l, s, 0, UINT64_MAX, chunk, raw, false);
        if (r == -EAGAIN) {
                /* Give the chunk back (a worker or our retry takes it again once
                 * the event is applied), and remember the waiting thread. */
                move_chunk(l, s, chunk, ITEM_BUSY, ITEM_PENDING);
                return retry_later(l, s, addr);
        }
        return r;
}

/* ---- address spaces and their events ---- */

int lazy_add_space(LazyRestore *l, int uffd, pid_t pid, Space **ret) {
        Space **p, *s;
        struct epoll_event ev = { .events = EPOLLIN };

        s = calloc(1, sizeof(Space));
        if (!s)
                return -ENOMEM;
        s->uffd = uffd;
        s->pid = pid;
        p = realloc(l->spaces, (l->n_spaces + 1) * sizeof(Space *));
        if (!p) {
                free(s);
                return -ENOMEM;
        }
        l->spaces = p;
        ev.data.ptr = s;
        if (epoll_ctl(l->epoll_fd, EPOLL_CTL_ADD, uffd, &ev) < 0) {
                free(s);
                return -errno;
        }
        l->spaces[l->n_spaces++] = s;
        *ret = s;
        return 0;
}

void lazy_space_close(LazyRestore *l, Space *s) {
        /* Closing the userfaultfd unregisters every area registered with it. */
        if (s->uffd >= 0) {
                (void) epoll_ctl(l->epoll_fd, EPOLL_CTL_DEL, s->uffd, NULL);
                s->uffd = safe_close(s->uffd);
        }
        s->dead = true;
}

/* A child forked while pages were missing: its missing pages are the
 * parent's outstanding ones, and it is served through the new userfaultfd. */
static int on_fork(LazyRestore *l, Space *parent, int child_uffd) {
        uint64_t bytes;
        Space *s;
        int r;

        fcntl(child_uffd, F_SETFD, FD_CLOEXEC);
        fcntl(child_uffd, F_SETFL, fcntl(child_uffd, F_GETFL) | O_NONBLOCK);
        /* Its areas too must not turn into zero pages should we die. (The
         * keeper holds a few hundred: past that, a child is safe as long
         * as we live, as every child was before there was a keeper.) */
        r = lazy_keeper_hold(&l->keeper, child_uffd);
        if (r < 0)
                log_warning_errno(r,
                                  "the keeper of the lazy restore of %i cannot hold the memory of one more child "
                                  "(%m): should this process die before the memory is back, that child could see "
                                  "zero pages for the moment before it is killed",
                                  l->pid);
        r = lazy_add_space(l, child_uffd, 0, &s);
        if (r < 0) {
                safe_close(child_uffd);
                return r;
        }
        r = item_set_copy_outstanding(&s->set, &parent->set, &bytes);
        if (r < 0)
                return r;
        l->total_bytes += bytes;
        log_debug("child forked while streaming: %zu items to fill", s->set.n_items);
        return 0;
}

/* Cut [start, end) out of the outstanding items (the target discarded or
 * unmapped it), or, with delta != 0, move it by delta (mremap). Called with
 * the write lock held. A busy item's worker notices by the epoch. */
static int space_change(LazyRestore *l, Space *s, uint64_t start, uint64_t end, int64_t delta) {
        uint64_t dropped;
        int r;

        r = item_set_change(&s->set, start, end, delta, &dropped);
        if (r < 0)
                return r;
        atomic_fetch_add(&l->done_bytes, dropped);
        s->epoch++;
        atomic_store(&s->cursor[0], 0);
        atomic_store(&s->cursor[1], 0);
        return 0;
}

/* Read everything the target's side has sent. Structural events are applied
 * under the write lock, so no copy lands in memory the target just let go;
 * page faults are collected and served afterwards. */
static int drain_uffd(LazyRestore *l, Space *s, DumpWorker *w, uint8_t *raw) {
        struct uffd_msg msgs[64];
        uint64_t faults[64];
        size_t n_faults = 0;
        ssize_t n;
        int r = 0;

        pthread_rwlock_wrlock(&l->lock);
        n = read(s->uffd, msgs, sizeof(msgs));
        if (n < 0) {
                int e = errno;
                pthread_rwlock_unlock(&l->lock);
                if (e == EAGAIN || e == EINTR)
                        return 0;
                /* The address space is gone. */
                lazy_space_close(l, s);
                return 0;
        }
        if (n == 0) {
                pthread_rwlock_unlock(&l->lock);
                lazy_space_close(l, s);
                return 0;
        }
        for (size_t i = 0; i < (size_t) n / sizeof(struct uffd_msg) && r >= 0; i++) {
                const struct uffd_msg *m = &msgs[i];

                switch (m->event) {
                case UFFD_EVENT_PAGEFAULT:
                        faults[n_faults++] = m->arg.pagefault.address;
                        break;
                case UFFD_EVENT_FORK:
                        r = on_fork(l, s, (int) m->arg.fork.ufd);
                        /* on_fork may move l->spaces, not s. */
                        break;
                case UFFD_EVENT_REMAP:
                        r = space_change(l, s, m->arg.remap.from, m->arg.remap.from + m->arg.remap.len,
                                         (int64_t) (m->arg.remap.to - m->arg.remap.from));
                        break;
                case UFFD_EVENT_REMOVE:
                case UFFD_EVENT_UNMAP:
                        r = space_change(l, s, m->arg.remove.start, m->arg.remove.end, 0);
                        break;
                default:
                        break;
                }
        }
        pthread_rwlock_unlock(&l->lock);
        pthread_mutex_lock(&l->wait_lock);
        pthread_cond_broadcast(&l->wait_cond);
        pthread_mutex_unlock(&l->wait_lock);
        if (r < 0)
                return r;

        for (size_t i = 0; i < n_faults && r >= 0; i++)
                r = serve_fault(l, s, faults[i], w, raw);
        return r;
}

void lazy_stop_workers(LazyRestore *l) {
        atomic_store(&l->stop, true);
        pthread_mutex_lock(&l->wait_lock);
        pthread_cond_broadcast(&l->wait_cond);
        pthread_mutex_unlock(&l->wait_lock);
        for (unsigned i = 0; i < l->n_workers; i++)
                pthread_join(l->workers[i], NULL);
        l->n_workers = 0;
}

/* Everything is in: unregister (by closing), and let every task go. */
/* ---- pages that are there before the target runs ---- */

/* Pages of the registered areas that are present before the target runs
 * again were not put there by the target: the kernel wrote a thread's rseq
 * area while our code ran in it, or somebody read or wrote the frozen
 * process's memory (/proc/PID/cmdline is world-readable; /proc/PID/mem,
 * process_vm_writev). UFFDIO_COPY cannot fill such a page (EEXIST), so each
 * gets the dump's bytes here — zeros where nothing was dumped — and leaves
 * the list of pages to stream. Once registered, nothing fills a page of ours
 * without asking us, so after this every page is the dump's. */
int lazy_fill_present(LazyRestore *l, Space *s, const bool *registered) {
        const uint64_t ps = (uint64_t) getpagesize();
        _cleanup_(page_range_list_done) PageRangeList present = {};
        _cleanup_free_ uint8_t *zero = calloc(1, ps), *buf = malloc(ps);
        PageScanner scanner;
        ssize_t loaded = -1;
        uint64_t cut;
        int r = 0;

        if (!zero || !buf)
                return -ENOMEM;
        r = pagescan_init(&scanner, l->frozen->pagemap_fd, l->frozen->scan_mode);
        if (r < 0)
                return r;
        /* Every page of every registered area: a page somebody only read
         * maps the zero page, which the memory map's Rss does not count.
         * Without PAGEMAP_SCAN that reads an entry per page, as the
         * checkpoint's own scan of those areas did. */
        for (size_t i = 0; i < l->dump->n_regions && r >= 0; i++)
                if (registered[i])
                        r = pagescan_present(&scanner, l->dump->regions[i].start, l->dump->regions[i].end,
                                             (uint32_t) i, &present);
        pagescan_done(&scanner);
        if (r < 0)
                return log_debug_errno(r, "reading the page map of %i failed: %m", l->pid);
        if (present.n == 0)
                return 0;
        log_debug("%" PRIu64 " bytes of %i are present before it runs: filling them from the dump", present.bytes,
                  l->pid);

        for (size_t i = 0; i < present.n; i++)
                for (uint64_t addr = present.ranges[i].start; addr < present.ranges[i].end; addr += ps) {
                        ssize_t k = item_set_find(&s->set, addr);
                        const void *src;

                        if (k >= 0) {
                                const Item *it = &s->set.items[k];
                                if ((ssize_t) it->chunk != loaded) {
                                        r = dump_load_chunk(&l->fault_worker, it->chunk, l->fault_raw);
                                        if (r < 0)
                                                return log_debug_errno(r, "chunk %u failed verification: %m", it->chunk);
                                        loaded = it->chunk;
                                }
                                src = l->fault_raw + it->offset + (addr - it->dest);
                        } else if (dump_find_chunk(l->dump, addr) >= 0)
                                continue; /* written before registering */
                        else if (present.ranges[i].vma & PAGESCAN_ZERO_PAGE)
                                continue; /* the zero page: zeros, as nothing was dumped */
                        else {
                                /* Nothing was dumped here: it reads as zeros, or
                                 * somebody wrote it while it was frozen. */
                                r = pread_full(l->frozen->mem_fd, buf, ps, (off_t) addr);
                                if (r < 0)
                                        return r;
                                if (memcmp(buf, zero, ps) == 0)
                                        continue;
                                src = zero;
                        }
                        r = pwrite_full(l->frozen->mem_fd, src, ps, (off_t) addr);
                        if (r < 0)
                                return log_debug_errno(r, "writing page 0x%" PRIx64 " of %i failed: %m", addr, l->pid);
                }
        explicit_bzero(buf, ps);
        r = item_set_cut(&s->set, &present, &cut);
        if (r < 0)
                return r;
        atomic_fetch_add(&l->done_bytes, cut);
        return 0;
}


int lazy_start_workers(LazyRestore *l, unsigned n) {
        n = MIN(n, (unsigned) LAZY_MAX_WORKERS);
        for (unsigned i = 0; i < n; i++) {
                if (pthread_create(&l->workers[i], NULL, worker, l) != 0)
                        break;
                l->n_workers++;
        }
        return 0;
}

int lazy_serve(LazyRestore *l, const struct epoll_event *evs, int n) {
        int r = 0;

        for (int i = 0; i < n && r >= 0; i++) {
                Space *s = evs[i].data.ptr;
                if (!s) {
                        uint64_t ticks;
                        (void) read(l->timer_fd, &ticks, sizeof(ticks));
                        continue;
                }
                if (!s->dead)
                        r = drain_uffd(l, s, &l->fault_worker, l->fault_raw);
        }
        /* Faults put off for an event: the events are read now. */
        if (r >= 0 && l->n_retries > 0) {
                Retry *list = l->retries;
                size_t n_list = l->n_retries;

                l->retries = NULL;
                l->n_retries = 0;
                for (size_t i = 0; i < n_list && r >= 0; i++)
                        if (!list[i].space->dead)
                                r = serve_fault(l, list[i].space, list[i].addr, &l->fault_worker, l->fault_raw);
                free(list);
        }
        return r;
}

void lazy_spaces_free(LazyRestore *l) {
        for (size_t k = 0; k < l->n_spaces; k++) {
                safe_close(l->spaces[k]->uffd);
                item_set_done(&l->spaces[k]->set);
                free(l->spaces[k]);
        }
        l->spaces = mfree(l->spaces);
        l->n_spaces = 0;
}
