/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fileio.h"
#include "log.h"
#include "macro.h"
#include "transfer.h"
#include "vma.h"

#define MAX_WORKERS 16
/* Below this, a thread of its own costs more than it saves. */
#define BYTES_PER_THREAD (256 * 1024)

typedef struct Job {
        Dump *dump;
        int mem_fd;
        pid_t pid;
        bool to_dump;
        usec_t deadline;
        transfer_progress_t progress;
        void *userdata;
        _Atomic size_t next;
        _Atomic int error;
        _Atomic uint64_t done_bytes;
        uint64_t total_bytes;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        unsigned finished;
} Job;

unsigned transfer_default_workers(void) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        return (unsigned) MAX(1L, MIN(n, 4L));
}

/* process_vm_readv/writev copy once, straight between our buffer and the
 * target's pages; /proc/PID/mem goes through a bounce page (twice), but it
 * also reaches areas the target itself may not read or write (PROT_NONE,
 * read-only), with FOLL_FORCE. */
static int read_target(Job *j, const struct dump_chunk *c, void *buf) {
        const struct dump_region *reg = &j->dump->regions[c->region];

        if (j->pid > 0 && (reg->vma_flags & VMA_READ)) {
                struct iovec l = { buf, c->raw_len }, r = { (void *) (uintptr_t) c->addr, c->raw_len };
                if (process_vm_readv(j->pid, &l, 1, &r, 1, 0) == (ssize_t) c->raw_len)
                        return 0;
        }
        return pread_full(j->mem_fd, buf, c->raw_len, (off_t) c->addr);
}

static int write_target(Job *j, const struct dump_chunk *c, const void *buf) {
        const struct dump_region *reg = &j->dump->regions[c->region];

        if (j->pid > 0 && (reg->vma_flags & VMA_WRITE)) {
                struct iovec l = { (void *) buf, c->raw_len }, r = { (void *) (uintptr_t) c->addr, c->raw_len };
                if (process_vm_writev(j->pid, &l, 1, &r, 1, 0) == (ssize_t) c->raw_len)
                        return 0;
        }
        return pwrite_full(j->mem_fd, buf, c->raw_len, (off_t) c->addr);
}

static void set_error(Job *j, int r) {
        int expected = 0;
        atomic_compare_exchange_strong(&j->error, &expected, r);
}

static void *worker(void *userdata) {
        Job *j = userdata;
        _cleanup_free_ uint8_t *raw = NULL;
        DumpWorker w;
        int r;

        raw = malloc(j->dump->header.chunk_size);
        if (!raw) {
                set_error(j, -ENOMEM);
                return NULL;
        }
        r = dump_worker_init(&w, j->dump);
        if (r < 0) {
                set_error(j, r);
                return NULL;
        }

        for (;;) {
                size_t idx = atomic_fetch_add(&j->next, 1);
                const struct dump_chunk *c;

                if (idx >= j->dump->n_chunks || atomic_load(&j->error) != 0)
                        break;
                if (j->deadline != 0 && now_usec(CLOCK_MONOTONIC) > j->deadline) {
                        set_error(j, -ETIME);
                        break;
                }
                c = &j->dump->chunks[idx];

                if (j->to_dump) {
                        r = read_target(j, c, raw);
                        if (r >= 0)
                                r = dump_store_chunk(&w, idx, raw);
                } else {
                        r = dump_load_chunk(&w, idx, raw);
                        if (r >= 0)
                                r = write_target(j, c, raw);
                }
                if (r < 0) {
                        log_debug_errno(r, "chunk %zu at 0x%llx: %m", idx,
                                        (unsigned long long) c->addr);
                        set_error(j, r);
                        break;
                }
                        atomic_fetch_add(&j->done_bytes, c->raw_len);
        }

        explicit_bzero(raw, j->dump->header.chunk_size);
        dump_worker_done(&w);
        return NULL;
}

static void *worker_thread(void *userdata) {
        Job *j = userdata;

        worker(j);
        pthread_mutex_lock(&j->lock);
        j->finished++;
        pthread_cond_signal(&j->cond);
        pthread_mutex_unlock(&j->lock);
        return NULL;
}

static void report(Job *j) {
        int r = j->progress(atomic_load(&j->done_bytes), j->total_bytes, j->userdata);
        if (r < 0 && j->to_dump)
                set_error(j, r);
}

static int run(Job *j, unsigned n_workers) {
        pthread_t threads[MAX_WORKERS];
        unsigned started = 0;

        for (size_t i = 0; i < j->dump->n_chunks; i++)
                j->total_bytes += j->dump->chunks[i].raw_len;

        n_workers = MAX(1u, MIN(n_workers, (unsigned) MAX_WORKERS));
        if (j->dump->n_chunks < n_workers)
                n_workers = (unsigned) MAX((size_t) 1, j->dump->n_chunks);

        pthread_mutex_init(&j->lock, NULL);
        pthread_cond_init(&j->cond, NULL);

        /* With a progress callback the calling thread only reports (so the
         * callback always runs on the caller's thread); otherwise it works too. */
        unsigned extra = j->progress ? n_workers : n_workers - 1;
        for (unsigned i = 0; i < extra; i++) {
                if (pthread_create(&threads[started], NULL, worker_thread, j) != 0)
                        break;
                started++;
        }
        if (!j->progress || started == 0)
                worker(j);
        else {
                report(j);
                pthread_mutex_lock(&j->lock);
                while (j->finished < started) {
                        struct timespec ts;
                        clock_gettime(CLOCK_REALTIME, &ts);
                        ts.tv_nsec += 200 * 1000 * 1000;
                        if (ts.tv_nsec >= 1000 * 1000 * 1000) {
                                ts.tv_sec++;
                                ts.tv_nsec -= 1000 * 1000 * 1000;
                        }
                        (void) pthread_cond_timedwait(&j->cond, &j->lock, &ts);
                        pthread_mutex_unlock(&j->lock);
                        report(j);
                        pthread_mutex_lock(&j->lock);
                }
                pthread_mutex_unlock(&j->lock);
        }
        for (unsigned i = 0; i < started; i++)
                pthread_join(threads[i], NULL);
        pthread_cond_destroy(&j->cond);
        pthread_mutex_destroy(&j->lock);
        if (j->progress)
                report(j);
        return atomic_load(&j->error);
}

static int transfer(Dump *d, int mem_fd, const TransferOptions *o, bool to_dump) {
        Job j = {
                .dump = d,
                .mem_fd = mem_fd,
                .pid = o->pid,
                .to_dump = to_dump,
                .deadline = o->deadline,
                .progress = o->progress,
                .userdata = o->userdata,
        };
        return run(&j, o->workers);
}

int transfer_to_dump(Dump *d, int mem_fd, const TransferOptions *o) {
        return transfer(d, mem_fd, o, true);
}

int transfer_from_dump(Dump *d, int mem_fd, const TransferOptions *o) {
        return transfer(d, mem_fd, o, false);
}

/* A share of a chunk list, written by one thread. */
typedef struct Part {
        Dump *dump;
        int mem_fd;
        pid_t pid;
        const uint32_t *chunks;
        size_t n_chunks;
        int result;
} Part;

/* Write chunks (in address order) into the stopped target. Small chunks are
 * gathered into one process_vm_writev(); chunks already written are
 * written again harmlessly. */
static int write_chunks(const Part *p) {
        const uint32_t *chunks = p->chunks;
        const size_t n_chunks = p->n_chunks;
        Dump *d = p->dump;
        const size_t cap = d->header.chunk_size;
        _cleanup_free_ uint8_t *batch = malloc(cap);
        struct iovec lo[64], re[64];
        size_t n = 0, used = 0;
        DumpWorker w;
        int r;

        if (!batch)
                return -ENOMEM;
        r = dump_worker_init(&w, d);
        if (r < 0)
                return r;

        for (size_t i = 0; i <= n_chunks && r >= 0; i++) {
                const struct dump_chunk *c = i < n_chunks ? &d->chunks[chunks[i]] : NULL;
                bool direct = c && !(d->regions[c->region].vma_flags & VMA_WRITE);

                if (n > 0 && (!c || direct || n == ELEMENTSOF(lo) || used + c->raw_len > cap)) {
                        ssize_t k = process_vm_writev(p->pid, lo, n, re, n, 0);
                        if (k < 0 || (size_t) k != used)
                                /* Some page refused: write one by one through mem. */
                                for (size_t j = 0; j < n && r >= 0; j++)
                                        r = pwrite_full(p->mem_fd, lo[j].iov_base, lo[j].iov_len,
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
                        r = pwrite_full(p->mem_fd, batch, c->raw_len, (off_t) c->addr);
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

static void *part_thread(void *userdata) {
        Part *p = userdata;

        p->result = write_chunks(p);
        return NULL;
}

int transfer_chunks_from_dump(Dump *d, int mem_fd, pid_t pid, const uint32_t *chunks, size_t n) {
        Part parts[MAX_WORKERS] = {};
        pthread_t threads[MAX_WORKERS];
        size_t bytes = 0, started = 0, first = 0;
        unsigned n_parts;
        int r;

        if (n == 0)
                return 0;
        for (size_t i = 0; i < n; i++)
                bytes += d->chunks[chunks[i]].raw_len;

        /* The pages are mostly fresh, so the copy is mostly page allocation:
         * above a few hundred KiB it is shared out between threads, one per
         * CPU, in equal byte shares. */
        n_parts = (unsigned) MIN((size_t) transfer_default_workers(), MAX(bytes / BYTES_PER_THREAD, (size_t) 1));
        for (unsigned k = 0, i = 0; k < n_parts; k++) {
                size_t share = 0, goal = bytes / n_parts;
                first = i;
                while (i < n && (share < goal || k == n_parts - 1))
                        share += d->chunks[chunks[i++]].raw_len;
                parts[k] = (Part) { .dump = d, .mem_fd = mem_fd, .pid = pid, .chunks = chunks + first,
                                    .n_chunks = i - first };
        }
        /* Part 0 is ours; the others go to helpers, if they start. */
        for (unsigned k = 1; k < n_parts; k++) {
                if (pthread_create(&threads[k], NULL, part_thread, &parts[k]) != 0)
                        break;
                started = k;
        }
        r = write_chunks(&parts[0]);
        for (unsigned k = 1; k <= started; k++) {
                (void) pthread_join(threads[k], NULL);
                if (r >= 0)
                        r = parts[k].result;
        }
        for (unsigned k = (unsigned) started + 1; k < n_parts && r >= 0; k++)
                r = write_chunks(&parts[k]);
        return r;
}
