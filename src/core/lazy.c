/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <fcntl.h>
#include <inttypes.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fileio.h"
#include "lazy.h"
#include "log.h"
#include "macro.h"
#include "pagescan.h"
#include "parasite.h"
#include "transfer.h"
#include "vma.h"

#define MAX_WORKERS 8
#define TRACEE_POLL_USEC (5 * USEC_PER_MSEC)
/* Below this, a thread of its own costs more than it saves. */
#define EAGER_BYTES_PER_THREAD (256 * 1024)
#define STREAM_OPTIONS                                                                             \
        (PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACEEXEC | PTRACE_O_EXITKILL | PTRACE_O_TRACEFORK |     \
         PTRACE_O_TRACEVFORK | PTRACE_O_TRACECLONE)

enum {
        ITEM_PENDING = 0,
        ITEM_BUSY = 1,
        ITEM_DONE = 2,
};

/* A piece of a chunk still to be put at dest. Items of a space never overlap
 * and are kept sorted by dest. */
typedef struct Item {
        uint64_t dest;
        uint32_t chunk;
        uint32_t offset; /* of dest's data within the chunk */
        uint32_t len;
        _Atomic uint8_t state;
        uint8_t priority; /* 0 first */
} Item;

/* One address space being filled: the target's, or a child's forked while
 * pages were still streaming. */
typedef struct Space {
        int uffd;
        pid_t pid;
        Item *items;
        size_t n_items;
        _Atomic size_t outstanding; /* items not DONE */
        uint64_t epoch;             /* bumped whenever items move or vanish */
        _Atomic size_t cursor[2];   /* per priority: items before it are not pending */
        bool split;                 /* a chunk may have several items */
        bool dead;
} Space;

typedef struct Retry {
        Space *space;
        uint64_t addr;
} Retry;

typedef struct Task {
        pid_t tid;
        Space *space;
        bool gone;
} Task;

struct LazyRestore {
        Frozen *frozen; /* owned: its dump, pidfd, memory descriptor */
        Dump *dump;
        pid_t pid;

        pthread_rwlock_t lock; /* write: items change shape; read: copies */
        Space **spaces;
        size_t n_spaces;

        Task *tasks;
        size_t n_tasks;

        int epoll_fd;
        int timer_fd;

        pthread_t workers[MAX_WORKERS];
        unsigned n_workers;
        _Atomic bool stop;
        _Atomic int fatal;
        pthread_mutex_t wait_lock;
        pthread_cond_t wait_cond;

        Retry *retries;          /* faults to serve again after the next events */
        size_t n_retries;
        DumpWorker fault_worker; /* for faults served on the caller's thread */
        uint8_t *fault_raw;

        _Atomic uint64_t done_bytes;
        _Atomic uint64_t faults;
        uint64_t total_bytes;
        usec_t started;
        usec_t running_at;
        usec_t complete_at;
        bool released;
        bool exited;      /* the target ended while we streamed */
        int exit_status;  /* as waitpid() reports it */
        usec_t exited_at;
};

/* ---- items ---- */

static ssize_t find_item(const Space *s, uint64_t addr) {
        size_t lo = 0, hi = s->n_items;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                const Item *it = &s->items[mid];
                if (addr < it->dest)
                        hi = mid;
                else if (addr >= it->dest + it->len)
                        lo = mid + 1;
                else
                        return (ssize_t) mid;
        }
        return -ENOENT;
}

static int space_reserve(Space *s, size_t n) {
        Item *p = realloc(s->items, MAX(n, (size_t) 1) * sizeof(Item));
        if (!p)
                return -ENOMEM;
        s->items = p;
        return 0;
}

static int cmp_items(const void *a, const void *b) {
        const Item *x = a, *y = b;
        return x->dest < y->dest ? -1 : x->dest > y->dest;
}

static void space_sort(Space *s) {
        qsort(s->items, s->n_items, sizeof(Item), cmp_items);
}

static void space_count(Space *s) {
        size_t n = 0;
        for (size_t i = 0; i < s->n_items; i++)
                if (atomic_load(&s->items[i].state) != ITEM_DONE)
                        n++;
        atomic_store(&s->outstanding, n);
}

/* Cut [start, end) out of the outstanding items (the target discarded or
 * unmapped it), or, with delta != 0, move it by delta (mremap). Called with
 * the write lock held. A busy item's worker notices by the epoch. */
static int space_change(LazyRestore *l, Space *s, uint64_t start, uint64_t end, int64_t delta) {
        size_t n = s->n_items;
        int r;

        /* Worst case every item is split in three. */
        r = space_reserve(s, n * 3 + 2);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                Item *it = &s->items[i];
                uint64_t a = it->dest, b = it->dest + it->len;
                uint64_t lo = MAX(a, start), hi = MIN(b, end);

                if (lo >= hi || atomic_load(&it->state) == ITEM_DONE)
                        continue;
                /* The part before and the part after stay as they are. */
                if (a < lo) {
                        Item before = { .dest = a, .chunk = it->chunk, .offset = it->offset,
                                        .len = (uint32_t) (lo - a), .priority = it->priority };
                        atomic_store(&before.state, atomic_load(&it->state));
                        s->items[s->n_items++] = before;
                }
                if (hi < b) {
                        Item after = { .dest = hi, .chunk = it->chunk, .offset = it->offset + (uint32_t) (hi - a),
                                       .len = (uint32_t) (b - hi), .priority = it->priority };
                        atomic_store(&after.state, atomic_load(&it->state));
                        s->items[s->n_items++] = after;
                }
                /* The middle moves or goes. */
                it->offset += (uint32_t) (lo - a);
                it->len = (uint32_t) (hi - lo);
                it->dest = lo;
                if (delta != 0)
                        it->dest = (uint64_t) ((int64_t) it->dest + delta);
                else {
                        atomic_fetch_add(&l->done_bytes, it->len);
                        atomic_store(&it->state, ITEM_DONE);
                }
        }
        /* Drop what is done (its pages are in place, or were let go), keep
         * the rest sorted. A done item must not stay: its address may now be
         * stale. */
        size_t k = 0;
        for (size_t i = 0; i < s->n_items; i++)
                if (atomic_load(&s->items[i].state) != ITEM_DONE)
                        s->items[k++] = s->items[i];
        s->n_items = k;
        space_sort(s);
        space_count(s);
        s->split = true;
        s->epoch++;
        atomic_store(&s->cursor[0], 0);
        atomic_store(&s->cursor[1], 0);
        return 0;
}

/* Take the sorted, disjoint ranges [starts[i], ends[i]) out of the items of
 * s, in one pass: their pages are in place already. Called before the target
 * runs, with nothing else using s. */
static int space_cut(LazyRestore *l, Space *s, const PageRangeList *cut) {
        _cleanup_free_ Item *out = NULL;
        size_t n = 0, k = 0;

        if (cut->n == 0)
                return 0;
        /* Each range splits at most one item in two. */
        out = malloc((s->n_items + cut->n) * sizeof(Item));
        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < s->n_items; i++) {
                Item it = s->items[i];
                uint64_t end = it.dest + it.len;

                while (k < cut->n && cut->ranges[k].end <= it.dest)
                        k++;
                for (size_t j = k; j < cut->n && cut->ranges[j].start < end && it.len > 0; j++) {
                        uint64_t lo = MAX(cut->ranges[j].start, it.dest), hi = MIN(cut->ranges[j].end, end);

                        if (lo > it.dest) {
                                Item before = it;
                                before.len = (uint32_t) (lo - it.dest);
                                out[n++] = before;
                        }
                        atomic_fetch_add(&l->done_bytes, hi - lo);
                        it.offset += (uint32_t) (hi - it.dest);
                        it.len = (uint32_t) (end - hi);
                        it.dest = hi;
                }
                if (it.len > 0)
                        out[n++] = it;
        }
        free(s->items);
        s->items = TAKE_PTR(out);
        s->n_items = n;
        space_count(s);
        s->split = true;
        return 0;
}

/* ---- copying ---- */

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

static void fatal(LazyRestore *l, int error) {
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
                bool fast = s->epoch == hint_epoch && hint < s->n_items;
                size_t from = fast ? hint : 0, to = fast ? hint + 1 : s->n_items;
                for (size_t i = from; i < to; i++) {
                        Item *it = &s->items[i];
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
                                atomic_fetch_sub(&s->outstanding, 1);
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
                        if (s->dead || atomic_load(&s->outstanding) == 0)
                                continue;
                        /* Items before the cursor were all taken already: start there. */
                        for (size_t i = atomic_load(&s->cursor[prio]); i < s->n_items; i++) {
                                uint8_t pending = ITEM_PENDING;
                                Item *it = &s->items[i];
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

/* Mark every other pending item of the same chunk in s busy too: one
 * decryption serves them all. */
static void claim_siblings(LazyRestore *l, Space *s, uint32_t chunk) {
        if (!s->split)
                return; /* one item per chunk until something was split */
        pthread_rwlock_rdlock(&l->lock);
        for (size_t i = 0; i < s->n_items; i++) {
                uint8_t pending = ITEM_PENDING;
                if (s->items[i].chunk == chunk)
                        atomic_compare_exchange_strong(&s->items[i].state, &pending, ITEM_BUSY);
        }
        pthread_rwlock_unlock(&l->lock);
}

static void *worker(void *userdata) {
        LazyRestore *l = userdata;
        _cleanup_free_ uint8_t *raw = malloc(l->dump->header.chunk_size);
        DumpWorker w;
        int r;


        if (!raw || dump_worker_init(&w, l->dump) < 0) {
                fatal(l, -ENOMEM);
                return NULL;
        }
        /* Let the target's threads have the CPUs first: what they touch right
         * after resuming is served on demand; the background pass can wait a
         * moment. */
        for (int i = 0; i < 20 && !atomic_load(&l->stop); i++)
                usleep_safe(USEC_PER_MSEC);
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
                        fatal(l, r);
                        break;
                }
                r = place_chunk(l, s, idx, epoch, chunk, raw, true);
                if (r < 0) {
                        log_debug_errno(r, "filling chunk %u failed: %m", chunk);
                        fatal(l, r);
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
        i = find_item(s, page);
        if (i >= 0) {
                uint8_t pending = ITEM_PENDING;
                Item *it = &s->items[i];
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
        if (r >= 0 && s->split)
                r = place_chunk(l, s, 0, UINT64_MAX, chunk, raw, false);
        if (r == -EAGAIN) {
                /* Give the chunk back (a worker or our retry takes it again once
                 * the event is applied), and remember the waiting thread. */
                pthread_rwlock_rdlock(&l->lock);
                for (size_t k = 0; k < s->n_items; k++) {
                        uint8_t busy = ITEM_BUSY;
                        if (s->items[k].chunk == chunk)
                                atomic_compare_exchange_strong(&s->items[k].state, &busy, ITEM_PENDING);
                }
                pthread_rwlock_unlock(&l->lock);
                return retry_later(l, s, addr);
        }
        return r;
}

/* ---- address spaces and their events ---- */

static int add_space(LazyRestore *l, int uffd, pid_t pid, Space **ret) {
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

static void space_close(LazyRestore *l, Space *s) {
        /* Closing the userfaultfd unregisters every area registered with it. */
        if (s->uffd >= 0) {
                (void) epoll_ctl(l->epoll_fd, EPOLL_CTL_DEL, s->uffd, NULL);
                s->uffd = safe_close(s->uffd);
        }
        s->dead = true;
}

static int add_task(LazyRestore *l, pid_t tid, Space *s) {
        Task *p = realloc(l->tasks, (l->n_tasks + 1) * sizeof(Task));
        if (!p)
                return -ENOMEM;
        l->tasks = p;
        l->tasks[l->n_tasks++] = (Task) { .tid = tid, .space = s };
        return 0;
}

/* A child forked while pages were missing: its missing pages are the
 * parent's outstanding ones, and it is served through the new userfaultfd. */
static int on_fork(LazyRestore *l, Space *parent, int child_uffd) {
        Space *s;
        int r;

        fcntl(child_uffd, F_SETFD, FD_CLOEXEC);
        fcntl(child_uffd, F_SETFL, fcntl(child_uffd, F_GETFL) | O_NONBLOCK);
        r = add_space(l, child_uffd, 0, &s);
        if (r < 0) {
                safe_close(child_uffd);
                return r;
        }
        r = space_reserve(s, parent->n_items);
        if (r < 0)
                return r;
        for (size_t i = 0; i < parent->n_items; i++) {
                const Item *it = &parent->items[i];
                if (atomic_load(&it->state) == ITEM_DONE)
                        continue;
                /* Busy in the parent means not yet there, in the child too. */
                s->items[s->n_items] = *it;
                atomic_store(&s->items[s->n_items].state, ITEM_PENDING);
                l->total_bytes += it->len;
                s->n_items++;
        }
        space_count(s);
        log_debug("child forked while streaming: %zu items to fill", s->n_items);
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
                space_close(l, s);
                return 0;
        }
        if (n == 0) {
                pthread_rwlock_unlock(&l->lock);
                space_close(l, s);
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

/* ---- the traced tasks ---- */

/* Keep every traced task running; signals pass through, group stops stay. */
static void handle_tracees(LazyRestore *l) {
        for (size_t i = 0; i < l->n_tasks; i++) {
                Task *t = &l->tasks[i];

                for (;;) {
                        int st;
                        pid_t p;

                        if (t->gone)
                                break;
                        p = waitpid(t->tid, &st, __WALL | WNOHANG);
                        if (p <= 0) {
                                if (p < 0 && errno == ECHILD)
                                        t->gone = true;
                                break;
                        }
                        if (WIFEXITED(st) || WIFSIGNALED(st)) {
                                t->gone = true;
                                /* How the process ended: the first of its threads
                                 * to report says (a fatal signal ends them all). */
                                if (t->space == l->spaces[0] && !l->exited) {
                                        l->exited = true;
                                        l->exit_status = st;
                                        l->exited_at = now_usec(CLOCK_MONOTONIC);
                                }
                                break;
                        }
                        if (!WIFSTOPPED(st))
                                continue;

                        int ev = st >> 16, sig = WSTOPSIG(st);
                        unsigned long msg = 0;

                        switch (ev) {
                        case PTRACE_EVENT_FORK:
                        case PTRACE_EVENT_VFORK:
                        case PTRACE_EVENT_CLONE:
                                /* The new task is traced too (and killed with us). */
                                if (ptrace(PTRACE_GETEVENTMSG, t->tid, 0, &msg) >= 0) {
                                        Space *s = t->space;
                                        /* A fork has an address space of its own: the
                                         * newest one, whose userfaultfd event was read
                                         * before the parent could report the fork. A
                                         * vfork or a thread shares the parent's. */
                                        if (ev == PTRACE_EVENT_FORK && l->n_spaces > 1) {
                                                s = l->spaces[l->n_spaces - 1];
                                                if (s->pid == 0)
                                                        s->pid = (pid_t) msg;
                                        }
                                        (void) add_task(l, (pid_t) msg, s);
                                        t = &l->tasks[i]; /* tasks may have moved */
                                }
                                (void) ptrace(PTRACE_CONT, t->tid, 0, 0);
                                break;
                        case PTRACE_EVENT_EXEC:
                                /* A new program: the memory we were filling is gone. */
                                if (t->space) {
                                        pthread_rwlock_wrlock(&l->lock);
                                        space_close(l, t->space);
                                        pthread_rwlock_unlock(&l->lock);
                                }
                                (void) ptrace(PTRACE_CONT, t->tid, 0, 0);
                                break;
                        case PTRACE_EVENT_STOP:
                                if (sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU)
                                        (void) ptrace(PTRACE_LISTEN, t->tid, 0, 0); /* group stop */
                                else
                                        (void) ptrace(PTRACE_CONT, t->tid, 0, 0);
                                break;
                        case 0:
                                /* A signal on its way: deliver it. */
                                (void) ptrace(PTRACE_CONT, t->tid, 0, sig == (SIGTRAP | 0x80) ? 0 : sig);
                                break;
                        default:
                                (void) ptrace(PTRACE_CONT, t->tid, 0, 0);
                        }
                }
        }
}

/* Let go of one task: from a stop, passing on a signal it was about to get. */
static void release_task(Task *t) {
        if (t->gone)
                return;
        if (ptrace(PTRACE_INTERRUPT, t->tid, 0, 0) < 0) {
                t->gone = true;
                return;
        }
        usec_t deadline = usec_add(now_usec(CLOCK_MONOTONIC), 2 * USEC_PER_SEC);
        while (now_usec(CLOCK_MONOTONIC) < deadline) {
                int st;
                pid_t p = waitpid(t->tid, &st, __WALL | WNOHANG);
                if (p == 0) {
                        usleep_safe(200);
                        continue;
                }
                if (p < 0 || WIFEXITED(st) || WIFSIGNALED(st))
                        break;
                if (!WIFSTOPPED(st))
                        continue;
                int ev = st >> 16, sig = WSTOPSIG(st);
                if (ev == 0 && sig != (SIGTRAP | 0x80))
                        (void) ptrace(PTRACE_DETACH, t->tid, 0, sig);
                else if (ev == PTRACE_EVENT_STOP || ev == 0)
                        (void) ptrace(PTRACE_DETACH, t->tid, 0, 0);
                else {
                        (void) ptrace(PTRACE_CONT, t->tid, 0, 0);
                        continue;
                }
                break;
        }
        t->gone = true;
}

static bool all_done(LazyRestore *l) {
        for (size_t k = 0; k < l->n_spaces; k++)
                if (!l->spaces[k]->dead && atomic_load(&l->spaces[k]->outstanding) > 0)
                        return false;
        return true;
}

static bool target_gone(LazyRestore *l) {
        for (size_t i = 0; i < l->n_tasks; i++)
                if (!l->tasks[i].gone && l->tasks[i].space == l->spaces[0])
                        return false;
        return true;
}

static void stop_workers(LazyRestore *l) {
        atomic_store(&l->stop, true);
        pthread_mutex_lock(&l->wait_lock);
        pthread_cond_broadcast(&l->wait_cond);
        pthread_mutex_unlock(&l->wait_lock);
        for (unsigned i = 0; i < l->n_workers; i++)
                pthread_join(l->workers[i], NULL);
        l->n_workers = 0;
}

/* Everything is in: unregister (by closing), and let every task go. */
static void release_all(LazyRestore *l) {
        stop_workers(l);
        for (size_t k = 0; k < l->n_spaces; k++)
                space_close(l, l->spaces[k]);
        for (size_t i = 0; i < l->n_tasks; i++)
                release_task(&l->tasks[i]);
        l->released = true;
        if (l->complete_at == 0)
                l->complete_at = now_usec(CLOCK_MONOTONIC);
}

static void kill_all(LazyRestore *l) {
        stop_workers(l);
        /* SIGKILL to every traced task: each is a member of a process we must
         * not let run with pages missing. */
        for (size_t i = 0; i < l->n_tasks; i++)
                if (!l->tasks[i].gone)
                        (void) syscall(SYS_tgkill, l->tasks[i].tid, l->tasks[i].tid, SIGKILL);
        for (size_t i = 0; i < l->n_tasks; i++) {
                if (l->tasks[i].gone)
                        continue;
                (void) ptrace(PTRACE_KILL, l->tasks[i].tid, 0, 0);
        }
        /* Collect them: a thread group's leader only after its other
         * threads (it is not reported before they are gone). */
        usec_t deadline = usec_add(now_usec(CLOCK_MONOTONIC), 5 * USEC_PER_SEC);
        for (int pass = 0; pass < 2; pass++)
                for (size_t i = 0; i < l->n_tasks; i++) {
                        Task *t = &l->tasks[i];
                        bool leader = t->space && t->tid == t->space->pid;

                        if (t->gone || leader != (pass == 1))
                                continue;
                        while (now_usec(CLOCK_MONOTONIC) < deadline) {
                                int st;
                                pid_t p = waitpid(t->tid, &st, __WALL | WNOHANG);
                                if (p < 0 || (p > 0 && (WIFEXITED(st) || WIFSIGNALED(st))))
                                        break;
                                if (p > 0)
                                        (void) ptrace(PTRACE_CONT, t->tid, 0, 0);
                                else
                                        usleep_safe(500);
                        }
                        t->gone = true;
                }
        for (size_t k = 0; k < l->n_spaces; k++)
                space_close(l, l->spaces[k]);
        l->released = true;
}

/* ---- pages that are there before the target runs ---- */

/* Pages of the registered areas that are present before the target runs
 * again were not put there by the target: the kernel wrote a thread's rseq
 * area while our code ran in it, or somebody read or wrote the frozen
 * process's memory (/proc/PID/cmdline is world-readable; /proc/PID/mem,
 * process_vm_writev). UFFDIO_COPY cannot fill such a page (EEXIST), so each
 * gets the dump's bytes here — zeros where nothing was dumped — and leaves
 * the list of pages to stream. Once registered, nothing fills a page of ours
 * without asking us, so after this every page is the dump's. */
static int fill_present(LazyRestore *l, Space *s, const bool *registered) {
        const uint64_t ps = (uint64_t) getpagesize();
        _cleanup_(page_range_list_done) PageRangeList present = {};
        _cleanup_free_ uint8_t *zero = calloc(1, ps), *buf = malloc(ps);
        PageScanner scanner;
        ssize_t loaded = -1;
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
                        ssize_t k = find_item(s, addr);
                        const void *src;

                        if (k >= 0) {
                                const Item *it = &s->items[k];
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
        return space_cut(l, s, &present);
}

/* ---- start ---- */

typedef struct EagerSet {
        const bool *registered;
        const uint64_t *stacks; /* every thread's stack pointer */
        size_t n_stacks;
} EagerSet;

/* Written before the target runs: areas that cannot be registered (private
 * file mappings), and the chunks under the threads' stack pointers, which
 * they touch first thing. */
static bool eager_chunk(const Dump *d, size_t idx, void *userdata) {
        const EagerSet *e = userdata;
        const struct dump_chunk *c = &d->chunks[idx];

        if (!e->registered[c->region])
                return true;
        for (size_t i = 0; i < e->n_stacks; i++)
                if (e->stacks[i] >= c->addr && e->stacks[i] - 512 < c->addr + c->raw_len)
                        return true;
        return false;
}

static bool holds_stack(const EagerSet *e, const struct dump_region *reg) {
        for (size_t i = 0; i < e->n_stacks; i++)
                if (e->stacks[i] >= reg->start && e->stacks[i] < reg->end)
                        return true;
        return false;
}

/* A share of the eager set, written by one thread. */
typedef struct EagerPart {
        LazyRestore *l;
        const uint32_t *chunks;
        size_t n_chunks;
        int result;
} EagerPart;

/* Write chunks (in address order) into the stopped target. Small chunks are
 * gathered into one process_vm_writev(); chunks already written are
 * written again harmlessly. */
static int write_chunks(LazyRestore *l, const uint32_t *chunks, size_t n_chunks) {
        const size_t cap = l->dump->header.chunk_size;
        _cleanup_free_ uint8_t *batch = malloc(cap);
        struct iovec lo[64], re[64];
        size_t n = 0, used = 0;
        DumpWorker w;
        int r;

        if (!batch)
                return -ENOMEM;
        r = dump_worker_init(&w, l->dump);
        if (r < 0)
                return r;

        for (size_t i = 0; i <= n_chunks && r >= 0; i++) {
                const struct dump_chunk *c = i < n_chunks ? &l->dump->chunks[chunks[i]] : NULL;
                bool direct = c && !(l->dump->regions[c->region].vma_flags & VMA_WRITE);

                if (n > 0 && (!c || direct || n == ELEMENTSOF(lo) || used + c->raw_len > cap)) {
                        ssize_t k = process_vm_writev(l->pid, lo, n, re, n, 0);
                        if (k < 0 || (size_t) k != used)
                                /* Some page refused: write one by one through mem. */
                                for (size_t j = 0; j < n && r >= 0; j++)
                                        r = pwrite_full(l->frozen->mem_fd, lo[j].iov_base, lo[j].iov_len,
                                                        (off_t) (uintptr_t) re[j].iov_base);
                        n = used = 0;
                }
                if (!c || r < 0)
                        continue;
                r = dump_load_chunk(&w, chunks[i], batch + used);
                if (r < 0)
                        continue;
                if (direct) {
                        /* Read-only to the target: only mem (FOLL_FORCE) writes it. */
                        r = pwrite_full(l->frozen->mem_fd, batch, c->raw_len, (off_t) c->addr);
                        continue;
                }
                lo[n] = (struct iovec) { batch + used, c->raw_len };
                re[n] = (struct iovec) { (void *) (uintptr_t) c->addr, c->raw_len };
                n++;
                used += c->raw_len;
        }
        explicit_bzero(batch, cap);
        dump_worker_done(&w);
        return r;
}

static void *eager_thread(void *userdata) {
        EagerPart *p = userdata;

        p->result = write_chunks(p->l, p->chunks, p->n_chunks);
        return NULL;
}

/* Write the eager set while the target waits: every microsecond here is one
 * it does not run. Its pages are fresh (a private file mapping's copies,
 * stacks), so the copy is mostly page allocation: above a few hundred KiB
 * it is shared out between threads, one per CPU, in equal byte shares. */
static int write_eagerly(LazyRestore *l, const EagerSet *e) {
        _cleanup_free_ uint32_t *list = NULL;
        EagerPart parts[MAX_WORKERS] = {};
        pthread_t threads[MAX_WORKERS];
        size_t n = 0, bytes = 0, started = 0, first = 0;
        unsigned n_parts;
        int r;

        list = calloc(MAX(l->dump->n_chunks, (size_t) 1), sizeof(uint32_t));
        if (!list)
                return -ENOMEM;
        for (size_t i = 0; i < l->dump->n_chunks; i++)
                if (eager_chunk(l->dump, i, (void *) e)) {
                        list[n++] = (uint32_t) i;
                        bytes += l->dump->chunks[i].raw_len;
                }
        if (n == 0)
                return 0;

        n_parts = (unsigned) MIN((size_t) MIN(transfer_default_workers(), (unsigned) MAX_WORKERS),
                                 MAX(bytes / EAGER_BYTES_PER_THREAD, (size_t) 1));
        for (unsigned k = 0, i = 0; k < n_parts; k++) {
                size_t share = 0, goal = bytes / n_parts;
                first = i;
                while (i < n && (share < goal || k == n_parts - 1))
                        share += l->dump->chunks[list[i++]].raw_len;
                parts[k] = (EagerPart) { .l = l, .chunks = list + first, .n_chunks = i - first };
        }
        /* Part 0 is ours; the others go to helpers, if they start. */
        for (unsigned k = 1; k < n_parts; k++) {
                if (pthread_create(&threads[k], NULL, eager_thread, &parts[k]) != 0)
                        break;
                started = k;
        }
        r = write_chunks(l, parts[0].chunks, parts[0].n_chunks);
        for (unsigned k = 1; k <= started; k++) {
                (void) pthread_join(threads[k], NULL);
                if (r >= 0)
                        r = parts[k].result;
        }
        for (unsigned k = (unsigned) started + 1; k < n_parts && r >= 0; k++)
                r = write_chunks(l, parts[k].chunks, parts[k].n_chunks);
        return r;
}

/* prctl() in the target; its result, or -errno. */
static int remote_prctl(Tracee *t, int option, uint64_t arg) {
        uint64_t args[6] = { (uint64_t) option, arg };
        int64_t v;
        int r;

        r = tracee_syscall(t, SYS_prctl, args, &v);
        if (r < 0)
                return r;
        return v < 0 && v >= -4095 ? (int) v : (int) MIN(v, (int64_t) INT32_MAX);
}

/* The userfaultfd made inside the target, from our /dev/userfaultfd. Both
 * sit in the target's descriptor table for a moment: nobody else may take
 * them. Nobody shares the table and every task of the target is held (see
 * fd_table_private(), checked at the checkpoint); a process of the target's
 * own user could still use pidfd_getfd(), so the target is not dumpable
 * meanwhile (only CAP_SYS_PTRACE passes then), and both are gone from the
 * table before it is dumpable again. */
static int make_userfaultfd(Frozen *f, Parasite *p, int dev_fd, int *ret_uffd) {
        int dumpable, r, k;

        dumpable = remote_prctl(f->tracee, PR_GET_DUMPABLE, 0);
        if (dumpable < 0)
                return log_debug_errno(dumpable, "prctl(PR_GET_DUMPABLE) in %i failed: %m", f->pid);
        if (dumpable == 1) {
                r = remote_prctl(f->tracee, PR_SET_DUMPABLE, 0);
                if (r < 0)
                        return log_debug_errno(r, "prctl(PR_SET_DUMPABLE, 0) in %i failed: %m", f->pid);
        }
        r = parasite_userfaultfd(p, dev_fd, ret_uffd);
        if (dumpable == 1) {
                k = remote_prctl(f->tracee, PR_SET_DUMPABLE, 1);
                if (k < 0)
                        log_debug_errno(k, "making %i dumpable again failed: %m", f->pid);
        }
        return r;
}

int lazy_restore_start(Frozen *f, const LazyOptions *o, LazyRestore **ret) {
        _cleanup_free_ bool *registered = NULL;
        _cleanup_free_ uint64_t *stacks = NULL;
        size_t n_stacks = 0;
        _cleanup_parasite_ Parasite *p = NULL;
        LazyRestore *l;
        Space *main_space;
        struct uffdio_api api = {
                .api = UFFD_API,
                .features = UFFD_FEATURE_EVENT_FORK | UFFD_FEATURE_EVENT_REMAP | UFFD_FEATURE_EVENT_REMOVE |
                            UFFD_FEATURE_EVENT_UNMAP,
        };
        int uffd = -EBADF, r;

        assert(f);
        assert(o);
        assert(ret);

        if (!f->tracee || !f->memory_out)
                return -ENOENT;
        if (f->no_lazy[0])
                return log_debug_errno(-EPERM, "no lazy restore of %i: %s", f->pid, f->no_lazy);
        r = dump_check_file(f->dump);
        if (r < 0) {
                log_debug_errno(r, "dump of %i failed verification, killing it: %m", f->pid);
                memcr_kill(f);
                return r;
        }

        l = calloc(1, sizeof(LazyRestore));
        if (!l)
                return -ENOMEM;
        l->started = now_usec(CLOCK_MONOTONIC);
        l->frozen = f;
        l->dump = f->dump;
        l->pid = f->pid;
        l->epoll_fd = l->timer_fd = -EBADF;
        pthread_rwlock_init(&l->lock, NULL);
        pthread_mutex_init(&l->wait_lock, NULL);
        pthread_cond_init(&l->wait_cond, NULL);

        /* The target makes its own userfaultfd: it is bound to the address
         * space of its creator. */
        r = parasite_infect_full(f->tracee, PARASITE_INIT_NO_MEM, &p);
        if (r >= 0)
                r = make_userfaultfd(f, p, o->userfaultfd_dev, &uffd);
        if (r >= 0)
                r = parasite_cure(p);
        p = parasite_free(p);
        if (r < 0)
                goto fail;

        /* The handshake with the events needs CAP_SYS_PTRACE (fork events): we
         * make it, not the target. */
        if (ioctl(uffd, UFFDIO_API, &api) < 0) {
                r = log_debug_errno(-errno, "UFFDIO_API failed: %m");
                goto fail;
        }

        l->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        l->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
        if (l->epoll_fd < 0 || l->timer_fd < 0) {
                r = -errno;
                goto fail;
        }
        struct itimerspec its = { .it_value.tv_nsec = TRACEE_POLL_USEC * 1000,
                                  .it_interval.tv_nsec = TRACEE_POLL_USEC * 1000 };
        struct epoll_event tev = { .events = EPOLLIN, .data.ptr = NULL };
        if (timerfd_settime(l->timer_fd, 0, &its, NULL) < 0 ||
            epoll_ctl(l->epoll_fd, EPOLL_CTL_ADD, l->timer_fd, &tev) < 0) {
                r = -errno;
                goto fail;
        }
        r = add_space(l, uffd, f->pid, &main_space);
        if (r < 0)
                goto fail;
        uffd = -EBADF;

        /* What the target needs before it may run is written first, while
         * nothing is registered yet (a write into a registered missing page
         * would wait for us): areas that cannot be registered (private file
         * mappings) and the chunks under the threads' stack pointers. */
        registered = calloc(MAX(l->dump->n_regions, (size_t) 1), sizeof(bool));
        if (!registered) {
                r = -ENOMEM;
                goto fail;
        }
        for (size_t i = 0; i < l->dump->n_regions; i++)
                registered[i] = !(l->dump->regions[i].vma_flags & VMA_FILE);

        /* Each thread's stack pointer, thread pointer and rseq area: touched
         * first thing (the kernel writes the rseq area on the way back). */
        stacks = calloc(MAX(f->tracee->n_threads, (size_t) 1) * 3, sizeof(uint64_t));
        if (!stacks) {
                r = -ENOMEM;
                goto fail;
        }
        for (size_t i = 0; i < f->tracee->n_threads; i++) {
                pid_t tid = f->tracee->threads[i].tid;
                struct user_regs_struct regs;
                uint64_t rseq;

                if (f->tracee->threads[i].gone || ptrace(PTRACE_GETREGS, tid, 0, &regs) < 0)
                        continue;
                stacks[n_stacks++] = regs.rsp;
                if (regs.fs_base != 0)
                        stacks[n_stacks++] = regs.fs_base;
                if (tracee_thread_rseq(tid, &rseq, NULL) > 0)
                        stacks[n_stacks++] = rseq;
        }
        EagerSet eager = { .registered = registered, .stacks = stacks, .n_stacks = n_stacks };

        /* The buffers for serving faults on our thread. */
        l->fault_raw = malloc(l->dump->header.chunk_size);
        if (!l->fault_raw) {
                r = -ENOMEM;
                goto fail;
        }
        r = dump_worker_init(&l->fault_worker, l->dump);
        if (r < 0) {
                free(l->fault_raw);
                l->fault_raw = NULL;
                goto fail;
        }
        r = write_eagerly(l, &eager);
        if (r < 0)
                goto fail_kill;

        for (size_t i = 0; i < l->dump->n_regions; i++) {
                const struct dump_region *reg = &l->dump->regions[i];
                struct uffdio_register rg = {
                        .range = { .start = reg->start, .len = reg->end - reg->start },
                        .mode = UFFDIO_REGISTER_MODE_MISSING,
                };
                if (!registered[i] || ioctl(main_space->uffd, UFFDIO_REGISTER, &rg) >= 0)
                        continue;
                /* Refused (the kernel knows why): restore it whole, now. */
                log_debug_errno(-errno, "cannot register 0x%llx-0x%llx, restoring it first: %m",
                                (unsigned long long) reg->start, (unsigned long long) reg->end);
                registered[i] = false;
                r = write_eagerly(l, &eager);
                if (r < 0)
                        goto fail_kill;
        }

        r = space_reserve(main_space, l->dump->n_chunks);
        if (r < 0)
                goto fail_kill;
        for (size_t i = 0; i < l->dump->n_regions; i++) {
                const struct dump_region *reg = &l->dump->regions[i];
                uint8_t prio;

                if (!registered[i])
                        continue;
                prio = holds_stack(&eager, reg) ? 0 : 1;
                for (uint64_t c = reg->first_chunk; c < reg->first_chunk + reg->n_chunks; c++) {
                        const struct dump_chunk *ch = &l->dump->chunks[c];
                        if (eager_chunk(l->dump, c, &eager))
                                continue; /* written already */
                        Item *it = &main_space->items[main_space->n_items++];
                        *it = (Item) { .dest = ch->addr, .chunk = (uint32_t) c, .len = ch->raw_len, .priority = prio };
                        atomic_store(&it->state, ITEM_PENDING);
                        l->total_bytes += ch->raw_len;
                }
        }
        /* Chunks are in address order, and so are the items made from them. */
        space_count(main_space);
        r = fill_present(l, main_space, registered);
        if (r < 0)
                goto fail_kill;
        /* What was written before it runs is back already. */
        for (size_t i = 0; i < l->dump->n_chunks; i++)
                if (eager_chunk(l->dump, i, &eager)) {
                        l->total_bytes += l->dump->chunks[i].raw_len;
                        l->done_bytes += l->dump->chunks[i].raw_len;
                }

        /* Keep every thread under ptrace, and whatever they create, so that
         * our death takes them along; then let them run. */
        for (size_t i = 0; i < f->tracee->n_threads; i++) {
                TraceeThread *th = &f->tracee->threads[i];
                if (th->gone)
                        continue;
                if (ptrace(PTRACE_SETOPTIONS, th->tid, 0, STREAM_OPTIONS) < 0) {
                        r = -errno;
                        goto fail_kill;
                }
                r = add_task(l, th->tid, main_space);
                if (r < 0)
                        goto fail_kill;
        }

        for (size_t i = 0; i < l->n_tasks; i++)
                (void) ptrace(PTRACE_CONT, l->tasks[i].tid, 0, 0);
        l->running_at = now_usec(CLOCK_MONOTONIC);

        /* The background pass starts once the target runs. */
        unsigned n = o->fault_only ? 0 : MIN(o->workers ?: transfer_default_workers(), (unsigned) MAX_WORKERS);
        for (unsigned i = 0; i < n; i++) {
                if (pthread_create(&l->workers[i], NULL, worker, l) != 0)
                        break;
                l->n_workers++;
        }

        /* The tracee now belongs to us. */
        f->tracee->n_threads = 0;
        f->tracee = tracee_free(f->tracee);
        f->memory_out = false;

        log_debug("lazy restore of %i: running after %" PRIu64 " us, %" PRIu64 " bytes to stream", f->pid,
                  l->running_at - l->started, l->total_bytes - l->done_bytes);
        *ret = l;
        return 0;

fail_kill:
        if (l->fault_raw) {
                free(l->fault_raw);
                dump_worker_done(&l->fault_worker);
        }
        /* Areas are registered with a userfaultfd of ours: the target cannot
         * run without us any more. */
        log_debug_errno(r, "lazy restore of %i failed after registering, killing it: %m", f->pid);
        memcr_kill(f);
fail:
        safe_close(uffd);
        for (size_t k = 0; k < l->n_spaces; k++) {
                safe_close(l->spaces[k]->uffd);
                free(l->spaces[k]->items);
                free(l->spaces[k]);
        }
        free(l->spaces);
        free(l->tasks);
        safe_close(l->epoll_fd);
        safe_close(l->timer_fd);
        pthread_rwlock_destroy(&l->lock);
        free(l);
        return r;
}

int lazy_restore_fd(LazyRestore *l) {
        return l->epoll_fd;
}

int lazy_restore_process(LazyRestore *l) {
        struct epoll_event evs[16];
        int n, r = 0;

        if (l->released)
                return 1;

        n = epoll_wait(l->epoll_fd, evs, ELEMENTSOF(evs), 0);
        if (n < 0 && errno != EINTR)
                return -errno;

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
        handle_tracees(l);

        if (r < 0)
                fatal(l, r);
        r = atomic_load(&l->fatal);
        if (r < 0) {
                log_debug_errno(r, "lazy restore of %i failed, killing it: %m", l->pid);
                kill_all(l);
                return r;
        }
        if (target_gone(l)) {
                log_debug("%i exited while its memory was streaming", l->pid);
                release_all(l);
                return 1;
        }
        /* Children done, or gone, are let go one by one. */
        for (size_t k = 1; k < l->n_spaces; k++) {
                Space *s = l->spaces[k];
                bool known = false, alive = false;
                for (size_t i = 0; i < l->n_tasks; i++)
                        if (l->tasks[i].space == s) {
                                known = true;
                                if (!l->tasks[i].gone)
                                        alive = true;
                        }
                /* A fresh child is not known until its parent reports the fork. */
                if (!s->dead && known && (atomic_load(&s->outstanding) == 0 || !alive)) {
                        pthread_rwlock_wrlock(&l->lock);
                        space_close(l, s);
                        pthread_rwlock_unlock(&l->lock);
                        for (size_t i = 0; i < l->n_tasks; i++)
                                if (l->tasks[i].space == s)
                                        release_task(&l->tasks[i]);
                }
        }
        if (all_done(l)) {
                release_all(l);
                return 1;
        }
        return 0;
}

void lazy_restore_progress(LazyRestore *l, LazyProgress *ret) {
        *ret = (LazyProgress) {
                .total_bytes = l->total_bytes,
                .done_bytes = MIN(atomic_load(&l->done_bytes), l->total_bytes),
                .faults = atomic_load(&l->faults),
                .spaces = l->n_spaces,
                .running_usec = l->running_at - l->started,
                .complete_usec = l->complete_at ? l->complete_at - l->started : 0,
                .exited = l->exited,
                .exit_status = l->exit_status,
                .exited_usec = l->exited ? l->exited_at - l->running_at : 0,
        };
}

LazyRestore *lazy_restore_free(LazyRestore *l) {
        if (!l)
                return NULL;
        if (!l->released) {
                /* Not everything is in: it must not run on with holes. */
                log_debug("lazy restore of %i abandoned, killing it", l->pid);
                kill_all(l);
        }
        for (size_t k = 0; k < l->n_spaces; k++) {
                safe_close(l->spaces[k]->uffd);
                free(l->spaces[k]->items);
                free(l->spaces[k]);
        }
        free(l->spaces);
        free(l->tasks);
        free(l->retries);
        safe_close(l->epoll_fd);
        safe_close(l->timer_fd);
        if (l->fault_raw) {
                explicit_bzero(l->fault_raw, l->dump->header.chunk_size);
                free(l->fault_raw);
                dump_worker_done(&l->fault_worker);
        }
        pthread_rwlock_destroy(&l->lock);
        pthread_mutex_destroy(&l->wait_lock);
        pthread_cond_destroy(&l->wait_cond);
        frozen_free(l->frozen);
        free(l);
        return NULL;
}
