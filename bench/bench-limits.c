/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <fcntl.h>
#include <linux/magic.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "bench-limits.h"
#include "macro.h"
#include "time-util.h"

typedef struct Mapping {
        void *p;
        size_t size;
} Mapping;

static void mapping_done(Mapping *m) {
        if (m->p && m->p != MAP_FAILED)
                (void) munmap(m->p, m->size);
        *m = (Mapping) {};
}

static int mapping_new(size_t size, Mapping *ret) {
        void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

        if (p == MAP_FAILED)
                return -errno;
        *ret = (Mapping) { .p = p, .size = size };
        return 0;
}

/* Make every page resident, with data that is not all the same. */
static void fill(Mapping *m) {
        uint64_t *w = m->p, x = UINT64_C(0x9e3779b97f4a7c15);

        for (size_t i = 0; i < m->size / sizeof(uint64_t); i++) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                w[i] = x;
        }
}

static double gibps(uint64_t bytes, usec_t usec) {
        return usec > 0 ? (double) bytes / (double) (UINT64_C(1) << 30) / ((double) usec / 1e6) : 0;
}

static usec_t time_memcpy(void *dst, const void *src, size_t size) {
        usec_t t0 = now_usec(CLOCK_MONOTONIC);

        memcpy(dst, src, size);
        /* The copy must not be dropped as unused. */
        __asm__ __volatile__("" : : "r"(dst) : "memory");
        return now_usec(CLOCK_MONOTONIC) - t0;
}

typedef struct FreshCopy {
        const uint8_t *src;
        size_t size;
        pthread_rwlock_t *gate;
        Mapping dst;
        int error;
} FreshCopy;

static void *fresh_copy_thread(void *userdata) {
        FreshCopy *f = userdata;

        /* Held for writing until every thread exists: they start together. */
        pthread_rwlock_rdlock(f->gate);
        pthread_rwlock_unlock(f->gate);
        f->error = mapping_new(f->size, &f->dst);
        if (f->error >= 0)
                (void) time_memcpy(f->dst.p, f->src, f->size);
        return NULL;
}

/* Copy src into freshly mapped memory on n threads, each its own share. */
static int time_fresh_copy(const uint8_t *src, size_t size, unsigned n, usec_t *ret) {
        _cleanup_free_ FreshCopy *f = NULL;
        _cleanup_free_ pthread_t *threads = NULL;
        pthread_rwlock_t gate = PTHREAD_RWLOCK_INITIALIZER;
        size_t share = ALIGN_TO(size / n, (size_t) getpagesize());
        unsigned started = 0;
        usec_t t0, t1;
        int r = 0;

        f = calloc(n, sizeof(FreshCopy));
        threads = calloc(n, sizeof(pthread_t));
        if (!f || !threads)
                return -ENOMEM;
        pthread_rwlock_wrlock(&gate);
        for (unsigned i = 0; i < n; i++) {
                size_t off = MIN(share * i, size);
                f[i] = (FreshCopy) {
                        .src = src + off,
                        .size = MIN(share, size - off),
                        .gate = &gate,
                };
                if (pthread_create(&threads[i], NULL, fresh_copy_thread, &f[i]) != 0) {
                        r = -EAGAIN;
                        break;
                }
                started++;
        }
        t0 = now_usec(CLOCK_MONOTONIC);
        pthread_rwlock_unlock(&gate);
        for (unsigned i = 0; i < started; i++)
                pthread_join(threads[i], NULL);
        t1 = now_usec(CLOCK_MONOTONIC);
        pthread_rwlock_destroy(&gate);
        for (unsigned i = 0; i < started; i++) {
                if (f[i].error < 0 && r >= 0)
                        r = f[i].error;
                mapping_done(&f[i].dst);
        }
        if (r < 0)
                return r;
        *ret = t1 - t0;
        return 0;
}

static int open_file(const char *dir) {
        char path[4096];
        int fd;

        /* Like the dump: an unnamed file. */
        fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC | O_EXCL, 0600);
        if (fd >= 0)
                return fd;
        snprintf(path, sizeof(path), "%s/memcr-bench-write.XXXXXX", dir);
        fd = mkostemp(path, O_CLOEXEC);
        if (fd < 0)
                return -errno;
        (void) unlink(path);
        return fd;
}

static int time_write(int fd, const uint8_t *buf, size_t size, usec_t *ret) {
        usec_t t0 = now_usec(CLOCK_MONOTONIC);

        for (size_t off = 0; off < size;) {
                ssize_t k = write(fd, buf + off, MIN(LIMITS_IO_SIZE, size - off));
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return k < 0 ? -errno : -EIO;
                off += (size_t) k;
        }
        *ret = now_usec(CLOCK_MONOTONIC) - t0;
        return 0;
}

static int time_read(int fd, uint8_t *buf, size_t size, usec_t *ret) {
        usec_t t0 = now_usec(CLOCK_MONOTONIC);

        for (size_t off = 0; off < size;) {
                ssize_t k = pread(fd, buf + off, MIN(LIMITS_IO_SIZE, size - off), (off_t) off);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return k < 0 ? -errno : -EIO;
                off += (size_t) k;
        }
        *ret = now_usec(CLOCK_MONOTONIC) - t0;
        return 0;
}

static void fs_type(const char *dir, char *buf, size_t size) {
        struct statfs s;

        if (statfs(dir, &s) < 0) {
                snprintf(buf, size, "?");
                return;
        }
        switch ((unsigned long) s.f_type) {
        case TMPFS_MAGIC:
                snprintf(buf, size, "tmpfs");
                break;
        case EXT4_SUPER_MAGIC:
                snprintf(buf, size, "ext4");
                break;
        case XFS_SUPER_MAGIC:
                snprintf(buf, size, "xfs");
                break;
        case BTRFS_SUPER_MAGIC:
                snprintf(buf, size, "btrfs");
                break;
        default:
                snprintf(buf, size, "0x%lx", (unsigned long) s.f_type);
        }
}

int limits_measure(const char *dir, Limits *ret) {
        _cleanup_(mapping_done) Mapping src = {}, dst = {};
        size_t size;
        usec_t best_memcpy = 0, best_fresh = 0, best_parallel = 0, best_write = 0, best_read = 0;
        _cleanup_close_ int fd = -EBADF;
        Limits l = {};
        long n;
        int r;

        n = sysconf(_SC_NPROCESSORS_ONLN);
        l.n_cpus = (unsigned) MAX(1L, n);
        n = sysconf(_SC_AVPHYS_PAGES);
        l.bytes = n > 0 ? (uint64_t) n * (uint64_t) getpagesize() / 8 : LIMITS_BYTES_MAX;
        l.bytes = MIN(MAX(l.bytes / LIMITS_BYTES_MIN * LIMITS_BYTES_MIN, LIMITS_BYTES_MIN), LIMITS_BYTES_MAX);
        size = (size_t) l.bytes;
        fs_type(dir, l.fs_type, sizeof(l.fs_type));

        r = mapping_new(size, &src);
        if (r >= 0)
                r = mapping_new(size, &dst);
        if (r < 0)
                return r;
        fill(&src);
        fill(&dst);

        for (unsigned i = 0; i < LIMITS_TRIES; i++) {
                usec_t t = time_memcpy(dst.p, src.p, size);
                if (best_memcpy == 0 || t < best_memcpy)
                        best_memcpy = t;
        }

        for (unsigned i = 0; i < LIMITS_TRIES; i++) {
                usec_t t = 0;

                r = time_fresh_copy(src.p, size, 1, &t);
                if (r < 0)
                        return r;
                if (best_fresh == 0 || t < best_fresh)
                        best_fresh = t;
                r = time_fresh_copy(src.p, size, l.n_cpus, &t);
                if (r < 0)
                        return r;
                if (best_parallel == 0 || t < best_parallel)
                        best_parallel = t;
        }

        for (unsigned i = 0; i < LIMITS_TRIES; i++) {
                usec_t t = 0;

                /* A new file each time: the blocks are allocated again, as for a dump. */
                safe_close(fd);
                fd = open_file(dir);
                if (fd < 0)
                        return fd;
                r = time_write(fd, src.p, size, &t);
                if (r < 0)
                        return r;
                if (best_write == 0 || t < best_write)
                        best_write = t;
        }
        for (unsigned i = 0; i < LIMITS_TRIES; i++) {
                usec_t t = 0;

                r = time_read(fd, dst.p, size, &t);
                if (r < 0)
                        return r;
                if (best_read == 0 || t < best_read)
                        best_read = t;
        }

        l.memcpy_gibps = gibps(size, best_memcpy);
        l.fresh_copy_gibps = gibps(size, best_fresh);
        l.fresh_copy_parallel_gibps = gibps(size, best_parallel);
        l.write_gibps = gibps(size, best_write);
        l.read_gibps = gibps(size, best_read);
        *ret = l;
        return 0;
}
