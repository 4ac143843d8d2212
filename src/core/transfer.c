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
