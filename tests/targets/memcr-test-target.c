/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * memcr-test-target: a process whose memory gets checkpointed and restored.
 *
 * It fills the memory regions selected on the command line with an
 * address-dependent pattern (see pattern.h), starts worker threads that sit
 * in different states (computing, sleeping, blocked in read()), writes a
 * READY line and then reads commands from stdin, one per line:
 *
 *   verify   stop the workers, check every region and every worker's stack
 *            array, print a RESULT line, exit 0 if intact and 1 otherwise
 *   check    check every region while the workers keep running, print a
 *            RESULT line and wait for the next command
 *   exit     exit 0 without checking
 *
 * End of file on stdin exits with status 2, start-up errors with status 3.
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pattern.h"

#define EXIT_CORRUPT 1
#define EXIT_EOF 2
#define EXIT_STARTUP 3

#define THP_SIZE ((size_t) 2 << 20)
#define SMALL_BLOCKS 256
#define SMALL_BLOCK_SIZE 1024
#define STACK_ARRAY_SIZE (64 * 1024)
#define MAX_REGIONS 16
#define MAX_THREADS 4096

#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _cleanup_close_ __attribute__((cleanup(closep)))
#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))

/*
 * A region's seed is the base seed plus its id times an odd 64-bit constant,
 * so the seeds of two regions also differ in their high bits: no word of one
 * region matches the pattern of another at any valid address.
 */
#define SEED_STEP UINT64_C(0x9e3779b97f4a7c15)
enum {
    SEED_HEAP = 1, SEED_HEAP_SMALL, SEED_MMAP, SEED_PROT_NONE, SEED_READONLY, SEED_FILE_A,
    SEED_FILE_B, SEED_SHARED, SEED_MEMFD, SEED_MLOCK, SEED_THP,
    SEED_SCRATCH, SEED_SPARSE,
    SEED_THREAD_FIRST, /* worker i uses SEED_THREAD_FIRST + i */
};

typedef enum RegionKind {
    REGION_PLAIN,        /* one range, one seed */
    REGION_PROT_NONE,    /* like REGION_PLAIN, but readable only while being checked */
    REGION_FILE_PRIVATE, /* even pages were rewritten with seed_alt, odd pages hold seed */
    REGION_BLOCKS,       /* n_blocks separate allocations of block_size bytes */
} RegionKind;

typedef struct Region {
    const char *name;
    RegionKind kind;
    bool writable;
    uint8_t *addr;
    size_t size; /* in bytes; for REGION_BLOCKS the sum over all blocks */
    uint64_t seed, seed_alt;
    uint8_t **blocks;
    size_t n_blocks, block_size;
    bool gone;   /* unmapped on request: not checked any more */
    bool zeroed; /* dropped on request (MADV_DONTNEED): must read as zeros */
} Region;

/* What a check found: the number of bad words and details of the first one. */
typedef struct Damage {
    size_t bad_words;
    uintptr_t base;   /* start of the region (or block) holding the first bad word */
    size_t first_bad; /* offset of the first bad word from base, SIZE_MAX if none */
    uint64_t expected, actual;
} Damage;

#define DAMAGE_NULL ((Damage) { .first_bad = SIZE_MAX })

/* Workers are given these roles round-robin. */
typedef enum WorkerRole {
    ROLE_COMPUTE, /* arithmetic loop polling the stop flag */
    ROLE_SLEEP,   /* loop of 10 ms nanosleep() calls */
    ROLE_READ,    /* one blocking read() on its own pipe */
    _ROLE_MAX,
} WorkerRole;

static const char *const role_names[_ROLE_MAX] = { "compute", "nanosleep", "read" };

typedef struct Worker {
    pthread_t thread;
    unsigned idx;
    WorkerRole role;
    int pipe_fd[2]; /* ROLE_READ only */
    uint64_t seed;
    uint64_t sink;  /* result of the computation, so that it is not optimised away */
    Damage damage;  /* outcome of checking the stack array */
    char failure[128]; /* empty unless the role saw a wrong result */
    int failure_errno;
} Worker;

static size_t arg_heap, arg_mmap, arg_prot_none, arg_readonly, arg_file_private;
static size_t arg_shared, arg_memfd, arg_mlock, arg_thp, arg_scratch, arg_sparse;
static uint64_t arg_sparse_pages = 768;
static const char *arg_seccomp; /* ACTION:SYSCALL */
static bool arg_files_sharer;
static bool arg_stamp;
static unsigned arg_threads;
static uint64_t arg_seed = UINT64_C(0x6d656d6372746774);
/* Identities to take at start-up (-1: leave as is): a target whose real,
 * effective and saved ids differ, as after a setuid program dropped some. */
static long arg_uids[3] = { -1, -1, -1 };
static long arg_gids[3] = { -1, -1, -1 };
static int arg_ready_fd = STDOUT_FILENO;
static bool arg_touch_after;

static size_t page_size;
static Region regions[MAX_REGIONS];
static size_t n_regions;
static uint64_t thp_kb;
static Worker *workers;
static pthread_barrier_t workers_ready;
static atomic_bool workers_stop;
static atomic_ulong nanosleep_eintr;

static volatile sig_atomic_t count_usr1, count_usr2, count_term;

/* The SIGUSR2 handler reads this word (in memory that may still be on its way
 * back after a restore) and counts whether it held the right value. */
static const volatile uint64_t *probe_addr;
static uint64_t probe_seed;
static volatile sig_atomic_t probe_ok, probe_bad;

/* --stamp: when the process last came back from a pause (freeze) longer than
 * 50 ms, as seen by a thread that looks at the clock every 200 us. */
typedef struct Stamp {
    atomic_ullong resumed_ns, loops, max_gap_ns, started_ns;
    atomic_uint pauses;
} Stamp;
/* In a page of its own (anonymous, so a lazy restore brings it back on
 * demand): the first write after a restore is a fault of the stamp thread. */
static Stamp *stamp, *stamp_view;

/* Print a message (and the error, if any) to stderr; returns error. */
_printf_(2, 3) static int log_errno(int error, const char *fmt, ...) {
    va_list ap;

    fputs("memcr-test-target: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (error != 0)
        fprintf(stderr, ": %s", strerror(error < 0 ? -error : error));
    fputc('\n', stderr);
    return error;
}

static void closep(int *fd) {
    if (*fd >= 0)
        (void) close(*fd);
}

static uint64_t seed_for(unsigned id) {
    return arg_seed + id * SEED_STEP;
}

static void on_signal(int sig) {
    if (sig == SIGUSR1)
        count_usr1++;
    else if (sig == SIGUSR2) {
        count_usr2++;
        if (probe_addr) {
            if (*probe_addr == pattern_word((uintptr_t) probe_addr, probe_seed))
                probe_ok++;
            else
                probe_bad++;
        }
    }
    else if (sig == SIGTERM)
        count_term++;
}

static int install_signal_handlers(void) {
    /* No SA_RESTART: a signal makes blocking calls fail with EINTR. */
    struct sigaction sa = { .sa_handler = on_signal, .sa_flags = 0 };
    static const int sigs[] = { SIGUSR1, SIGUSR2, SIGTERM };

    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < ELEMENTSOF(sigs); i++)
        if (sigaction(sigs[i], &sa, NULL) < 0)
            return log_errno(-errno, "sigaction(%d) failed", sigs[i]);
    return 0;
}

/* Check [p, p+len) against seed and add the outcome to d. */
static void damage_scan(Damage *d, const void *base, const void *p, size_t len, uint64_t seed) {
    size_t first, n;

    n = pattern_check(p, len, seed, &first);
    if (n == 0)
        return;

    if (d->bad_words == 0) {
        const uint8_t *w = (const uint8_t *) p + first;

        d->base = (uintptr_t) base;
        d->first_bad = (size_t) (w - (const uint8_t *) base);
        d->expected = pattern_word((uintptr_t) w, seed);
        memcpy(&d->actual, w, sizeof(d->actual));
    }
    d->bad_words += n;
}

static void damage_report(const char *name, const Damage *d) {
    fprintf(stderr,
            "BAD region=%s addr=0x%" PRIxPTR " first_bad=%zu bad_words=%zu"
            " expected=0x%016" PRIx64 " actual=0x%016" PRIx64 "\n",
            name, d->base, d->first_bad, d->bad_words, d->expected, d->actual);
}

static int region_check(const Region *r, Damage *d) {
    if (r->gone)
        return 0;
    if (r->zeroed) {
        uintptr_t start = ((uintptr_t) r->addr + page_size - 1) & ~(page_size - 1);
        uintptr_t end = ((uintptr_t) r->addr + r->size) & ~(page_size - 1);
        for (uintptr_t a = start; a < end; a += 8)
            if (*(const uint64_t *) a != 0) {
                if (d->bad_words == 0) {
                    d->base = (uintptr_t) r->addr;
                    d->first_bad = a - (uintptr_t) r->addr;
                    d->expected = 0;
                    d->actual = *(const uint64_t *) a;
                }
                d->bad_words++;
            }
        return 0;
    }
    switch (r->kind) {
    case REGION_PLAIN:
        damage_scan(d, r->addr, r->addr, r->size, r->seed);
        return 0;

    case REGION_PROT_NONE:
        if (mprotect(r->addr, r->size, PROT_READ) < 0)
            return -errno;
        damage_scan(d, r->addr, r->addr, r->size, r->seed);
        if (mprotect(r->addr, r->size, PROT_NONE) < 0)
            return -errno;
        return 0;

    case REGION_FILE_PRIVATE:
        for (size_t off = 0; off < r->size; off += page_size)
            damage_scan(d, r->addr, r->addr + off, page_size,
                        (off / page_size) % 2 == 0 ? r->seed_alt : r->seed);
        return 0;

    case REGION_BLOCKS:
        for (size_t i = 0; i < r->n_blocks; i++)
            damage_scan(d, r->blocks[i], r->blocks[i], r->block_size, r->seed);
        return 0;
    }
    return -EINVAL;
}

/* Write one word per page (or block) back with its own value, dirtying the page. */
static void region_touch(const Region *r) {
    volatile uint64_t *w;

    if (!r->writable)
        return;

    if (r->kind == REGION_BLOCKS) {
        for (size_t i = 0; i < r->n_blocks; i++) {
            w = (volatile uint64_t *) (void *) r->blocks[i];
            *w = *w;
        }
        return;
    }

    /* File pages that were never written stay clean and file-backed. */
    size_t step = r->kind == REGION_FILE_PRIVATE ? 2 * page_size : page_size;
    for (size_t off = 0; off < r->size; off += step) {
        w = (volatile uint64_t *) (void *) (r->addr + off);
        *w = *w;
    }
}

static Region *region_add(const char *name, RegionKind kind, void *addr, size_t size, unsigned seed_id) {
    if (n_regions >= MAX_REGIONS)
        abort();
    regions[n_regions] = (Region) {
        .name = name,
        .kind = kind,
        .writable = true,
        .addr = addr,
        .size = size,
        .seed = seed_for(seed_id),
    };
    return &regions[n_regions++];
}

/* Map size bytes of fd (anonymous memory if fd < 0), fill and register them. */
static int map_region(const char *name, size_t size, int flags, int fd, unsigned seed_id, Region **ret) {
    void *p;

    p = mmap(NULL, size, PROT_READ | PROT_WRITE, flags | (fd < 0 ? MAP_ANONYMOUS : 0), fd, 0);
    if (p == MAP_FAILED)
        return log_errno(-errno, "mmap() of %zu bytes for %s failed", size, name);

    pattern_fill(p, size, seed_for(seed_id));
    Region *r = region_add(name, REGION_PLAIN, p, size, seed_id);
    if (ret)
        *ret = r;
    return 0;
}

static int setup_heap(size_t size) {
    uint8_t *big, **blocks;
    Region *r;

    /* Small blocks first, while the process has one thread: they come from brk. */
    blocks = calloc(SMALL_BLOCKS, sizeof(blocks[0]));
    if (!blocks)
        return log_errno(-ENOMEM, "calloc() failed");
    for (size_t i = 0; i < SMALL_BLOCKS; i++) {
        blocks[i] = malloc(SMALL_BLOCK_SIZE);
        if (!blocks[i])
            return log_errno(-ENOMEM, "malloc(%d) failed", SMALL_BLOCK_SIZE);
        pattern_fill(blocks[i], SMALL_BLOCK_SIZE, seed_for(SEED_HEAP_SMALL));
    }
    r = region_add("heap-small", REGION_BLOCKS, NULL, SMALL_BLOCKS * SMALL_BLOCK_SIZE, SEED_HEAP_SMALL);
    r->blocks = blocks;
    r->n_blocks = SMALL_BLOCKS;
    r->block_size = SMALL_BLOCK_SIZE;

    big = malloc(size);
    if (!big)
        return log_errno(-ENOMEM, "malloc(%zu) failed", size);
    pattern_fill(big, size, seed_for(SEED_HEAP));
    region_add("heap", REGION_PLAIN, big, size, SEED_HEAP);
    return 0;
}

/*
 * A private mapping of an unlinked temporary file. Pages that were only read
 * stay backed by the page cache, pages written are private anonymous copies.
 */
static int setup_file_private(size_t size) {
    _cleanup_close_ int fd = -1;
    const char *dir = getenv("TMPDIR");
    char path[4096];
    Region *r;
    int n;

    if (!dir || !*dir)
        dir = "/tmp";
    n = snprintf(path, sizeof(path), "%s/memcr-test-target.XXXXXX", dir);
    if (n < 0 || (size_t) n >= sizeof(path))
        return log_errno(-ENAMETOOLONG, "TMPDIR is too long");

    fd = mkostemp(path, O_CLOEXEC);
    if (fd < 0)
        return log_errno(-errno, "failed to create a temporary file in %s", dir);
    (void) unlink(path);
    if (ftruncate(fd, (off_t) size) < 0)
        return log_errno(-errno, "ftruncate() of temporary file failed");

    /*
     * The pattern depends on the address, so the file contents are written
     * through a shared mapping, which is then replaced in place by a private
     * mapping of the same file.
     */
    n = map_region("file-private", size, MAP_SHARED, fd, SEED_FILE_A, &r);
    if (n < 0)
        return n;
    if (mmap(r->addr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, fd, 0) == MAP_FAILED)
        return log_errno(-errno, "mmap(MAP_PRIVATE) of temporary file failed");
    r->kind = REGION_FILE_PRIVATE;
    r->seed_alt = seed_for(SEED_FILE_B);

    /* Read every page, then rewrite every other page (even ones) with the second seed. */
    for (size_t off = 0; off < size; off += page_size)
        (void) *(volatile const uint64_t *) (const void *) (r->addr + off);
    for (size_t off = 0; off < size; off += 2 * page_size)
        pattern_fill(r->addr + off, page_size, r->seed_alt);
    return 0;
}

/* A large mapping with a few pages written, spread evenly over it: what a
 * program's sparse tables look like. Only the written pages are checked. */
static int setup_sparse(size_t size, size_t pages) {
    size_t step;
    uint8_t *p, **blocks;
    Region *r;

    if (pages == 0 || pages > size / page_size)
        return log_errno(-EINVAL, "--sparse-pages=%zu does not fit in %zu bytes", pages, size);
    p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return log_errno(-errno, "mmap() of %zu bytes for sparse failed", size);
    /* Not fatal: it only keeps the kernel from filling huge pages around them. */
    (void) madvise(p, size, MADV_NOHUGEPAGE);
    blocks = calloc(pages, sizeof(blocks[0]));
    if (!blocks)
        return log_errno(-ENOMEM, "calloc() failed");
    step = size / page_size / pages;
    for (size_t i = 0; i < pages; i++) {
        blocks[i] = p + i * step * page_size;
        pattern_fill(blocks[i], page_size, seed_for(SEED_SPARSE));
    }
    r = region_add("sparse", REGION_BLOCKS, NULL, pages * page_size, SEED_SPARSE);
    r->blocks = blocks;
    r->n_blocks = pages;
    r->block_size = page_size;
    return 0;
}

static int setup_memfd(size_t size) {
    _cleanup_close_ int fd = -1;

    fd = memfd_create("memcr-test-target", MFD_CLOEXEC);
    if (fd < 0)
        return log_errno(-errno, "memfd_create() failed");
    if (ftruncate(fd, (off_t) size) < 0)
        return log_errno(-errno, "ftruncate() of memfd failed");
    return map_region("memfd", size, MAP_SHARED, fd, SEED_MEMFD, NULL);
}

/* Sum AnonHugePages (kB) over the mappings that overlap [start, start+size). */
static int read_anon_huge_kb(uintptr_t start, size_t size, uint64_t *ret) {
    unsigned long long a, b, kb;
    uint64_t total = 0;
    char *line = NULL;
    size_t len = 0;
    bool inside = false;
    FILE *f;

    f = fopen("/proc/self/smaps", "re");
    if (!f)
        return -errno;
    while (getline(&line, &len, f) > 0) {
        if (sscanf(line, "%llx-%llx ", &a, &b) == 2)
            inside = a < start + size && b > start;
        else if (inside && sscanf(line, "AnonHugePages: %llu kB", &kb) == 1)
            total += kb;
    }
    free(line);
    fclose(f);
    *ret = total;
    return 0;
}

static int setup_thp(size_t size) {
    uint8_t *p, *aligned, *end;
    int r;

    /* Over-allocate, then trim to a range aligned to 2 MiB. */
    p = mmap(NULL, size + THP_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return log_errno(-errno, "mmap() of %zu bytes for thp failed", size + THP_SIZE);
    aligned = (uint8_t *) (((uintptr_t) p + THP_SIZE - 1) & ~(uintptr_t) (THP_SIZE - 1));
    end = p + size + THP_SIZE;
    if (aligned > p && munmap(p, (size_t) (aligned - p)) < 0)
        return log_errno(-errno, "munmap() failed");
    if (end > aligned + size && munmap(aligned + size, (size_t) (end - aligned - size)) < 0)
        return log_errno(-errno, "munmap() failed");

    /* Not fatal: without transparent huge pages this is an ordinary region. */
    if (madvise(aligned, size, MADV_HUGEPAGE) < 0)
        log_errno(-errno, "warning: madvise(MADV_HUGEPAGE) failed");

    pattern_fill(aligned, size, seed_for(SEED_THP));
    region_add("thp", REGION_PLAIN, aligned, size, SEED_THP);

    r = read_anon_huge_kb((uintptr_t) aligned, size, &thp_kb);
    if (r < 0)
        return log_errno(r, "failed to read /proc/self/smaps");
    return 0;
}

static int setup_regions(void) {
    Region *reg;
    int r = 0;

    if (arg_heap > 0 && (r = setup_heap(arg_heap)) < 0)
        return r;
    if (arg_mmap > 0 && (r = map_region("mmap", arg_mmap, MAP_PRIVATE, -1, SEED_MMAP, NULL)) < 0)
        return r;
    if (arg_prot_none > 0) {
        if ((r = map_region("prot-none", arg_prot_none, MAP_PRIVATE, -1, SEED_PROT_NONE, &reg)) < 0)
            return r;
        if (mprotect(reg->addr, reg->size, PROT_NONE) < 0)
            return log_errno(-errno, "mprotect(PROT_NONE) failed");
        reg->kind = REGION_PROT_NONE;
        reg->writable = false;
    }
    if (arg_readonly > 0) {
        if ((r = map_region("readonly", arg_readonly, MAP_PRIVATE, -1, SEED_READONLY, &reg)) < 0)
            return r;
        if (mprotect(reg->addr, reg->size, PROT_READ) < 0)
            return log_errno(-errno, "mprotect(PROT_READ) failed");
        reg->writable = false;
    }
    if (arg_file_private > 0 && (r = setup_file_private(arg_file_private)) < 0)
        return r;
    if (arg_shared > 0 && (r = map_region("shared", arg_shared, MAP_SHARED, -1, SEED_SHARED, NULL)) < 0)
        return r;
    if (arg_memfd > 0 && (r = setup_memfd(arg_memfd)) < 0)
        return r;
    if (arg_mlock > 0) {
        if ((r = map_region("mlock", arg_mlock, MAP_PRIVATE, -1, SEED_MLOCK, &reg)) < 0)
            return r;
        /* The raw system call: sanitizer runtimes intercept mlock() and ignore it. */
        if (syscall(SYS_mlock, reg->addr, reg->size) < 0)
            return log_errno(-errno, "mlock() of %zu bytes failed", reg->size);
    }
    if (arg_thp > 0 && (r = setup_thp(arg_thp)) < 0)
        return r;
    if (arg_sparse > 0 && (r = setup_sparse(arg_sparse, (size_t) arg_sparse_pages)) < 0)
        return r;
    if (arg_scratch > 0 && (r = map_region("scratch", arg_scratch, MAP_PRIVATE, -1, SEED_SCRATCH, NULL)) < 0)
        return r;

    /* The SIGUSR2 probe: the last page of the first plain mapped region. */
    for (size_t i = 0; i < n_regions; i++)
        if (regions[i].kind == REGION_PLAIN && (strcmp(regions[i].name, "mmap") == 0 ||
                                                strcmp(regions[i].name, "scratch") == 0)) {
            probe_addr = (const volatile uint64_t *) (void *) (regions[i].addr + regions[i].size - page_size);
            probe_seed = regions[i].seed;
            break;
        }
    return 0;
}

static uint64_t monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000000ULL + (uint64_t) ts.tv_nsec;
}

/* --stamp: notice the end of every pause longer than 50 ms. The thread
 * keeps its own counts too (on its stack, copied to a page of their own), so
 * a page that lost what was written to it shows. */
static void *stamp_thread(void *arg) {
    const struct timespec nap = { .tv_nsec = 200 * 1000 };
    uint64_t last = monotonic_ns(), loops = 0, max_gap = 0;
    unsigned pauses = 0;

    (void) arg;
    atomic_store(&stamp->started_ns, last);
    for (;;) {
        uint64_t now = monotonic_ns();
        loops++;
        atomic_fetch_add(&stamp->loops, 1);
        if (now - last > atomic_load(&stamp->max_gap_ns))
            atomic_store(&stamp->max_gap_ns, now - last);
        if (now - last > max_gap)
            max_gap = now - last;
        if (now - last > 50ULL * 1000 * 1000) {
            pauses++;
            atomic_store(&stamp->resumed_ns, now);
            atomic_fetch_add(&stamp->pauses, 1);
        }
        atomic_store(&stamp_view->loops, loops);
        atomic_store(&stamp_view->max_gap_ns, max_gap);
        atomic_store(&stamp_view->pauses, pauses);
        last = now;
        (void) nanosleep(&nap, NULL);
    }
    return NULL;
}

static Region *region_by_name(const char *name) {
    for (size_t i = 0; i < n_regions; i++)
        if (strcmp(regions[i].name, name) == 0)
            return &regions[i];
    return NULL;
}

/* Commands that change memory while it may still be coming back. */
static void command_unmap(const char *name) {
    Region *reg = region_by_name(name);

    if (!reg || reg->kind == REGION_BLOCKS || munmap(reg->addr, reg->size) < 0) {
        printf("ERROR unmap %s\n", name);
        return;
    }
    if (probe_addr && (uintptr_t) probe_addr >= (uintptr_t) reg->addr &&
        (uintptr_t) probe_addr < (uintptr_t) reg->addr + reg->size)
        probe_addr = NULL;
    reg->gone = true;
    printf("OK unmap %s\n", name);
}

static void command_dontneed(const char *name) {
    Region *reg = region_by_name(name);
    uintptr_t start, end;

    if (!reg || reg->kind == REGION_BLOCKS) {
        printf("ERROR dontneed %s\n", name);
        return;
    }
    start = ((uintptr_t) reg->addr + page_size - 1) & ~(page_size - 1);
    end = ((uintptr_t) reg->addr + reg->size) & ~(page_size - 1);
    if (madvise((void *) start, end - start, MADV_DONTNEED) < 0) {
        printf("ERROR dontneed %s: %s\n", name, strerror(errno));
        return;
    }
    if (probe_addr && (uintptr_t) probe_addr >= start && (uintptr_t) probe_addr < end)
        probe_addr = NULL;
    reg->zeroed = true;
    printf("OK dontneed %s\n", name);
}

/* read() straight into the region's first page, from a pipe that carries the
 * very bytes the page should hold: a fault taken by the kernel on our behalf
 * must be served like any other. */
static void command_pipe_read(const char *name) {
    Region *reg = region_by_name(name);
    uint64_t *words;
    int p[2];
    ssize_t n;

    if (!reg || reg->kind != REGION_PLAIN || reg->gone || reg->zeroed || pipe(p) < 0) {
        printf("ERROR pipe-read %s\n", name);
        return;
    }
    words = malloc(page_size);
    for (size_t i = 0; i < page_size / 8; i++)
        words[i] = pattern_word((uintptr_t) reg->addr + i * 8, reg->seed);
    if (write(p[1], words, page_size) != (ssize_t) page_size) {
        printf("ERROR pipe-read %s: write\n", name);
        free(words);
        close(p[0]);
        close(p[1]);
        return;
    }
    n = read(p[0], reg->addr, page_size);
    printf("PIPE ok=%d errno=%d\n", n == (ssize_t) page_size, n < 0 ? errno : 0);
    free(words);
    close(p[0]);
    close(p[1]);
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return x < y ? -1 : x > y;
}

/* How long a first read of a page takes while memory may still be coming
 * back: LATENCY_SAMPLES pages spread over a region, each read once (one
 * word, checked); the pages that were not yet resident are timed. */
#define LATENCY_SAMPLES 64
static void command_latency(const char *name) {
    Region *reg = region_by_name(name);
    uint64_t took[LATENCY_SAMPLES];
    size_t n_pages, stretch, missing = 0, bad = 0;

    if (!reg || reg->kind != REGION_PLAIN || reg->gone || reg->zeroed || reg->size < page_size) {
        printf("ERROR latency %s\n", name);
        return;
    }
    n_pages = reg->size / page_size;
    stretch = n_pages >= LATENCY_SAMPLES ? n_pages / LATENCY_SAMPLES : 1;
    for (size_t i = 0; i < LATENCY_SAMPLES; i++) {
        /* Evenly spread, a different page offset in every stretch. */
        size_t page = (i * n_pages) / LATENCY_SAMPLES + (i * 7919) % stretch;
        const volatile uint64_t *w = (const volatile uint64_t *) (void *) (reg->addr + page * page_size);
        unsigned char resident = 1;
        uint64_t t0, v;

        (void) mincore((void *) (uintptr_t) w, page_size, &resident);
        t0 = monotonic_ns();
        v = *w;
        if (!(resident & 1))
            took[missing++] = monotonic_ns() - t0;
        if (v != pattern_word((uintptr_t) w, reg->seed))
            bad++;
    }
    qsort(took, missing, sizeof(took[0]), cmp_u64);
    printf("LATENCY sampled=%d missing=%zu median_ns=%llu max_ns=%llu bad=%zu\n", LATENCY_SAMPLES, missing,
           missing ? (unsigned long long) took[missing / 2] : 0ULL,
           missing ? (unsigned long long) took[missing - 1] : 0ULL, bad);
}

/* A child made while memory may still be coming back checks it all. */
static void command_fork_check(void) {
    pid_t child = fork();
    int st = 0;

    if (child == 0) {
        bool ok = true;
        for (size_t i = 0; i < n_regions; i++) {
            Damage d = DAMAGE_NULL;
            if (region_check(&regions[i], &d) < 0 || d.bad_words > 0) {
                if (d.bad_words > 0)
                    damage_report(regions[i].name, &d);
                ok = false;
            }
        }
        _exit(ok ? 0 : 1);
    }
    if (child < 0 || waitpid(child, &st, 0) != child) {
        printf("FORK ok=0 error\n");
        return;
    }
    printf("FORK ok=%d\n", WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static uint8_t worker_token(const Worker *w) {
    return (uint8_t) (0xa5 ^ w->idx);
}

static void worker_compute(Worker *w) {
    uint64_t x = w->seed;

    while (!atomic_load_explicit(&workers_stop, memory_order_relaxed))
        for (unsigned i = 0; i < 1024; i++)
            x = pattern_mix(x + i);
    w->sink = x;
}

static void worker_sleep(Worker *w) {
    const struct timespec ts = { .tv_nsec = 10 * 1000 * 1000 };

    while (!atomic_load(&workers_stop)) {
        if (nanosleep(&ts, NULL) == 0)
            continue;
        if (errno != EINTR) {
            w->failure_errno = errno;
            snprintf(w->failure, sizeof(w->failure), "nanosleep() failed");
            return;
        }
        atomic_fetch_add(&nanosleep_eintr, 1);
    }
}

static void worker_read(Worker *w) {
    uint8_t c = 0;
    ssize_t n;

    /* Signals are blocked in this thread, so any failure (EINTR included) is wrong. */
    n = read(w->pipe_fd[0], &c, 1);
    if (n < 0)
        w->failure_errno = errno;
    if (n != 1 || c != worker_token(w))
        snprintf(w->failure, sizeof(w->failure),
                 "read() on pipe returned %zd with byte 0x%02x, expected 1 with 0x%02x", n, c,
                 worker_token(w));
}

static void *worker_main(void *userdata) {
    uint64_t stack_array[STACK_ARRAY_SIZE / sizeof(uint64_t)];
    Worker *w = userdata;

    if (w->role == ROLE_READ) {
        sigset_t ss;

        sigemptyset(&ss);
        sigaddset(&ss, SIGUSR1);
        sigaddset(&ss, SIGUSR2);
        sigaddset(&ss, SIGTERM);
        (void) pthread_sigmask(SIG_BLOCK, &ss, NULL);
    }

    pattern_fill(stack_array, sizeof(stack_array), w->seed);
    /* Hand the array to opaque code, so it is really stored as filled. */
    __asm__ __volatile__("" : : "r"(stack_array) : "memory");
    (void) pthread_barrier_wait(&workers_ready);

    if (w->role == ROLE_COMPUTE)
        worker_compute(w);
    else if (w->role == ROLE_SLEEP)
        worker_sleep(w);
    else
        worker_read(w);

    /* The array may have been rewritten behind the compiler's back: reload it. */
    __asm__ __volatile__("" : : "r"(stack_array) : "memory");
    w->damage = DAMAGE_NULL;
    damage_scan(&w->damage, stack_array, stack_array, sizeof(stack_array), w->seed);
    return NULL;
}

/* Start the workers and wait until each has filled its stack array. */
static int start_workers(void) {
    int r;

    if (arg_threads == 0)
        return 0;

    workers = calloc(arg_threads, sizeof(Worker));
    if (!workers)
        return log_errno(-ENOMEM, "calloc() failed");
    r = pthread_barrier_init(&workers_ready, NULL, arg_threads + 1);
    if (r != 0)
        return log_errno(-r, "pthread_barrier_init() failed");

    for (unsigned i = 0; i < arg_threads; i++) {
        Worker *w = &workers[i];

        w->idx = i;
        w->role = (WorkerRole) (i % _ROLE_MAX);
        w->seed = seed_for(SEED_THREAD_FIRST + i);
        w->pipe_fd[0] = w->pipe_fd[1] = -1;
        if (w->role == ROLE_READ && pipe2(w->pipe_fd, O_CLOEXEC) < 0)
            return log_errno(-errno, "pipe2() failed");

        r = pthread_create(&w->thread, NULL, worker_main, w);
        if (r != 0)
            return log_errno(-r, "pthread_create() failed");
    }

    (void) pthread_barrier_wait(&workers_ready);
    return 0;
}

/* Stop and join all workers; returns false if waking one of them failed. */
static bool stop_workers(void) {
    bool ok = true;

    atomic_store(&workers_stop, true);

    for (unsigned i = 0; i < arg_threads; i++) {
        Worker *w = &workers[i];
        uint8_t c = worker_token(w);
        ssize_t n;

        if (w->role != ROLE_READ)
            continue;
        do
            n = write(w->pipe_fd[1], &c, 1);
        while (n < 0 && errno == EINTR);
        if (n != 1) {
            log_errno(n < 0 ? -errno : -EIO, "write() to pipe of thread %u failed", i);
            /* Wake the reader with end of file instead; it reports that. */
            closep(&w->pipe_fd[1]);
            w->pipe_fd[1] = -1;
            ok = false;
        }
    }

    for (unsigned i = 0; i < arg_threads; i++)
        (void) pthread_join(workers[i].thread, NULL);
    return ok;
}

/* Check all regions (and, with with_workers, the workers) and print RESULT. */
static bool check_all(bool with_workers) {
    size_t bad_words = 0;
    unsigned n_checked = 0;
    bool ok = true;
    int r;

    if (with_workers) {
        ok = stop_workers();

        for (unsigned i = 0; i < arg_threads; i++) {
            const Worker *w = &workers[i];
            char name[32];

            if (w->failure[0]) {
                fprintf(stderr, "FAIL thread=%u role=%s: %s%s%s\n", i, role_names[w->role], w->failure,
                        w->failure_errno ? ": " : "", w->failure_errno ? strerror(w->failure_errno) : "");
                ok = false;
            }
            if (w->damage.bad_words > 0) {
                snprintf(name, sizeof(name), "thread-stack-%u", i);
                damage_report(name, &w->damage);
                bad_words += w->damage.bad_words;
            }
            n_checked++;
        }
    }

    for (size_t i = 0; i < n_regions; i++) {
        Damage d = DAMAGE_NULL;

        r = region_check(&regions[i], &d);
        if (r < 0) {
            log_errno(r, "checking region %s failed", regions[i].name);
            ok = false;
            continue;
        }
        if (d.bad_words > 0) {
            damage_report(regions[i].name, &d);
            bad_words += d.bad_words;
        }
        n_checked++;
    }

    ok = ok && bad_words == 0;
    fflush(stderr);
    printf("RESULT ok=%d bad_words=%zu usr1=%d usr2=%d term=%d eintr=%lu regions=%u\n", ok,
           bad_words, (int) count_usr1, (int) count_usr2, (int) count_term,
           atomic_load(&nanosleep_eintr), n_checked);
    fflush(stdout);
    return ok;
}

/* A seccomp filter on every thread that answers one system call with
 * ACTION (kill: the process dies of SIGSYS; errno: EPERM; trap: SIGSYS to a
 * handler-less process) and allows everything else. */
static int install_seccomp(const char *spec) {
    static const struct { const char *name; int nr; } calls[] = {
        { "socketpair", __NR_socketpair }, { "madvise", __NR_madvise }, { "mmap", __NR_mmap },
        { "ioctl", __NR_ioctl }, { "recvmsg", __NR_recvmsg }, { "reboot", __NR_reboot },
    };
    const char *colon = strchr(spec, ':');
    uint32_t action;
    int nr = -1;

    if (!colon)
        return log_errno(-EINVAL, "--seccomp=%s: expected ACTION:SYSCALL", spec);
    if (strncmp(spec, "kill:", 5) == 0)
        action = SECCOMP_RET_KILL_PROCESS;
    else if (strncmp(spec, "errno:", 6) == 0)
        action = SECCOMP_RET_ERRNO | EPERM;
    else if (strncmp(spec, "trap:", 5) == 0)
        action = SECCOMP_RET_TRAP;
    else
        return log_errno(-EINVAL, "--seccomp=%s: unknown action", spec);
    for (size_t i = 0; i < ELEMENTSOF(calls); i++)
        if (strcmp(colon + 1, calls[i].name) == 0)
            nr = calls[i].nr;
    if (nr < 0)
        return log_errno(-EINVAL, "--seccomp=%s: unknown system call", spec);

    struct sock_filter prog[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t) nr, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, action),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog fprog = { .len = ELEMENTSOF(prog), .filter = prog };

    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return log_errno(-errno, "PR_SET_NO_NEW_PRIVS failed");
    if (syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &fprog) != 0)
        return log_errno(-errno, "installing the seccomp filter failed");
    return 0;
}

/* A process (not a thread) sharing our descriptor table, as
 * clone(CLONE_FILES) makes one; it sleeps until we die. */
static int files_sharer_main(void *arg) {
    (void) arg;
    (void) prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    for (;;)
        pause();
    return 0;
}

static int start_files_sharer(void) {
    static uint8_t stack[64 * 1024] __attribute__((aligned(16)));
    pid_t pid = clone(files_sharer_main, stack + sizeof(stack), CLONE_FILES | SIGCHLD, NULL);
    if (pid < 0)
        return log_errno(-errno, "clone(CLONE_FILES) failed");
    return 0;
}

static int write_ready(void) {
    uint64_t total = (uint64_t) arg_threads * STACK_ARRAY_SIZE;
    char buf[128];
    size_t done = 0;
    int len;

    for (size_t i = 0; i < n_regions; i++)
        total += regions[i].size;

    len = snprintf(buf, sizeof(buf), "READY pid=%d bytes=%" PRIu64 " thp_kb=%" PRIu64 "\n",
                   (int) getpid(), total, thp_kb);
    while (done < (size_t) len) {
        ssize_t n = write(arg_ready_fd, buf + done, (size_t) len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return log_errno(n < 0 ? -errno : -EIO, "writing READY line to fd %d failed", arg_ready_fd);
        done += (size_t) n;
    }
    return 0;
}

/*
 * Read one line from stdin into line, without the line ending, retrying after
 * signals. Returns 1 for a line, 0 at end of file, -errno on error. Lines
 * longer than the buffer are split.
 */
static int read_command(char *line, size_t size) {
    static char buf[256];
    static size_t buffered;
    char *nl;
    size_t len;

    while (!(nl = memchr(buf, '\n', buffered)) && buffered < sizeof(buf)) {
        ssize_t n = read(STDIN_FILENO, buf + buffered, sizeof(buf) - buffered);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0) {
            if (buffered == 0)
                return 0;
            break; /* a last line without newline */
        }
        buffered += (size_t) n;
    }

    len = nl ? (size_t) (nl - buf) : buffered;
    memcpy(line, buf, len < size ? len : size - 1);
    line[len < size ? len : size - 1] = '\0';
    line[strcspn(line, "\r")] = '\0';

    len = nl ? len + 1 : len;
    memmove(buf, buf + len, buffered - len);
    buffered -= len;
    return 1;
}

static int parse_u64(const char *s, uint64_t max, uint64_t *ret) {
    unsigned long long v;
    char *end;

    if (*s == '\0' || *s == '-')
        return -EINVAL;
    errno = 0;
    v = strtoull(s, &end, 0);
    if (errno != 0 || *end != '\0')
        return -EINVAL;
    if (v > max)
        return -ERANGE;
    *ret = v;
    return 0;
}

/* Returns 1 to go on, 0 to exit successfully (--help), -errno on bad usage. */
static int parse_argv(int argc, char *argv[]) {
    /* Region sizes, given in MiB (KiB for --mlock); getopt value = index here. */
    static const struct {
        const char *name;
        size_t *dest;
        unsigned shift;
    } sizes[] = {
        { "heap", &arg_heap, 20 },         { "mmap", &arg_mmap, 20 },
        { "prot-none", &arg_prot_none, 20 }, { "readonly", &arg_readonly, 20 },
        { "file-private", &arg_file_private, 20 }, { "shared", &arg_shared, 20 },
        { "memfd", &arg_memfd, 20 },       { "mlock", &arg_mlock, 10 },
        { "thp", &arg_thp, 20 },           { "scratch", &arg_scratch, 20 },
        { "sparse", &arg_sparse, 20 },
    };
    static const struct option options[] = {
        { "heap", required_argument, NULL, 0 },
        { "mmap", required_argument, NULL, 1 },
        { "prot-none", required_argument, NULL, 2 },
        { "readonly", required_argument, NULL, 3 },
        { "file-private", required_argument, NULL, 4 },
        { "shared", required_argument, NULL, 5 },
        { "memfd", required_argument, NULL, 6 },
        { "mlock", required_argument, NULL, 7 },
        { "thp", required_argument, NULL, 8 },
        { "scratch", required_argument, NULL, 9 },
        { "sparse", required_argument, NULL, 10 },
        { "sparse-pages", required_argument, NULL, 'P' },
        { "seccomp", required_argument, NULL, 'X' },
        { "files-sharer", no_argument, NULL, 'F' },
        { "stamp", no_argument, NULL, 'S' },
        { "threads", required_argument, NULL, 'n' },
        { "seed", required_argument, NULL, 's' },
        { "ready-fd", required_argument, NULL, 'r' },
        { "touch-after", no_argument, NULL, 't' },
        { "compressible", no_argument, NULL, 'c' },
        { "setresuid", required_argument, NULL, 'U' },
        { "setresgid", required_argument, NULL, 'G' },
        { "help", no_argument, NULL, 'h' },
        {}
    };
    uint64_t v;
    int c, r;

    while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
        if (c >= 0 && (size_t) c < ELEMENTSOF(sizes)) {
            r = parse_u64(optarg, (SIZE_MAX - THP_SIZE) >> sizes[c].shift, &v);
            if (r < 0)
                return log_errno(r, "invalid size for --%s: '%s'", sizes[c].name, optarg);
            *sizes[c].dest = (size_t) v << sizes[c].shift;
            continue;
        }

        switch (c) {
        case 'n':
            if ((r = parse_u64(optarg, MAX_THREADS, &v)) < 0)
                return log_errno(r, "invalid thread count '%s'", optarg);
            arg_threads = (unsigned) v;
            break;
        case 's':
            if ((r = parse_u64(optarg, UINT64_MAX, &arg_seed)) < 0)
                return log_errno(r, "invalid seed '%s'", optarg);
            break;
        case 'r':
            if ((r = parse_u64(optarg, INT32_MAX, &v)) < 0)
                return log_errno(r, "invalid file descriptor '%s'", optarg);
            if (fcntl((int) v, F_GETFD) < 0)
                return log_errno(-errno, "--ready-fd=%s is not an open file descriptor", optarg);
            arg_ready_fd = (int) v;
            break;
        case 't':
            arg_touch_after = true;
            break;
        case 'c':
            pattern_compressible = true;
            break;
        case 'X':
            arg_seccomp = optarg;
            break;
        case 'F':
            arg_files_sharer = true;
            break;
        case 'P':
            if (parse_u64(optarg, 1u << 24, &arg_sparse_pages) < 0)
                return log_errno(-EINVAL, "bad --sparse-pages=%s", optarg);
            break;
        case 'S':
            arg_stamp = true;
            break;
        case 'U':
        case 'G': {
            unsigned long ids[3];
            if (sscanf(optarg, "%lu:%lu:%lu", &ids[0], &ids[1], &ids[2]) != 3)
                return log_errno(-EINVAL, "expected R:E:S, got '%s'", optarg);
            for (int i = 0; i < 3; i++)
                (c == 'U' ? arg_uids : arg_gids)[i] = (long) ids[i];
            break;
        }
        case 'h':
            printf("Usage: %s [--heap=MIB] [--mmap=MIB] [--threads=N] [--prot-none=MIB]\n"
                   "       [--readonly=MIB] [--file-private=MIB] [--shared=MIB] [--memfd=MIB]\n"
                   "       [--mlock=KIB] [--thp=MIB] [--sparse=MIB] [--sparse-pages=N] [--seed=N]\n"
                   "       [--ready-fd=FD] [--touch-after] [--seccomp=kill|errno|trap:SYSCALL] [--files-sharer]\n"
                   "       [--compressible] [--setresgid=R:E:S] [--setresuid=R:E:S]\n"
                   "Commands on stdin: verify, check, exit, stamp, probe, latency REGION,\n"
                   "  unmap REGION, dontneed REGION, pipe-read REGION, fork-check\n",
                   argv[0]);
            return 0;
        default:
            return -EINVAL;
        }
    }
    if (optind < argc)
        return log_errno(-EINVAL, "unexpected argument '%s'", argv[optind]);
    return 1;
}

int main(int argc, char *argv[]) {
    char line[64];
    int r;

    page_size = (size_t) sysconf(_SC_PAGESIZE);

    r = parse_argv(argc, argv);
    if (r <= 0)
        return r < 0 ? EXIT_STARTUP : EXIT_SUCCESS;

    /* Identities first (gids while we may still change them), so that
     * everything below runs as the process memcr will be asked about. */
    if (arg_gids[0] >= 0 &&
        setresgid((gid_t) arg_gids[0], (gid_t) arg_gids[1], (gid_t) arg_gids[2]) < 0)
        return log_errno(-errno, "setresgid failed"), EXIT_STARTUP;
    if (arg_uids[0] >= 0 &&
        setresuid((uid_t) arg_uids[0], (uid_t) arg_uids[1], (uid_t) arg_uids[2]) < 0)
        return log_errno(-errno, "setresuid failed"), EXIT_STARTUP;

    if (install_signal_handlers() < 0 || setup_regions() < 0 || start_workers() < 0)
        return EXIT_STARTUP;
    if (arg_stamp) {
        pthread_t t;
        void *page = mmap(NULL, page_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (page == MAP_FAILED)
            return log_errno(-errno, "cannot map the stamp page"), EXIT_STARTUP;
        stamp = page;
        page = mmap(NULL, page_size, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (page == MAP_FAILED || mprotect(page, page_size, PROT_READ | PROT_WRITE) < 0)
            return log_errno(-errno, "cannot map the stamp page"), EXIT_STARTUP;
        stamp_view = page;
        if (pthread_create(&t, NULL, stamp_thread, NULL) != 0)
            return log_errno(-EAGAIN, "cannot start the stamp thread"), EXIT_STARTUP;
    }
    if (arg_files_sharer && start_files_sharer() < 0)
        return EXIT_STARTUP;
    if (arg_seccomp && install_seccomp(arg_seccomp) < 0)
        return EXIT_STARTUP;
    if (write_ready() < 0)
        return EXIT_STARTUP;

    for (;;) {
        r = read_command(line, sizeof(line));
        if (r < 0) {
            log_errno(r, "reading stdin failed");
            return EXIT_EOF;
        }
        if (r == 0) {
            log_errno(0, "end of file on stdin");
            return EXIT_EOF;
        }

        if (strcmp(line, "verify") == 0)
            return check_all(true) ? EXIT_SUCCESS : EXIT_CORRUPT;
        if (strcmp(line, "exit") == 0)
            return EXIT_SUCCESS;
        if (strcmp(line, "check") == 0) {
            (void) check_all(false);
            if (arg_touch_after)
                for (size_t i = 0; i < n_regions; i++)
                    region_touch(&regions[i]);
        } else if (strncmp(line, "unmap ", 6) == 0)
            command_unmap(line + 6);
        else if (strncmp(line, "dontneed ", 9) == 0)
            command_dontneed(line + 9);
        else if (strncmp(line, "pipe-read ", 10) == 0)
            command_pipe_read(line + 10);
        else if (strcmp(line, "fork-check") == 0)
            command_fork_check();
        else if (strcmp(line, "stamp") == 0)
            printf("STAMP resumed_ns=%llu pauses=%u view_pauses=%u view_loops=%llu view_max_gap_ns=%llu "
                   "started_ns=%llu loops=%llu max_gap_ns=%llu at=%p\n",
                   stamp ? (unsigned long long) atomic_load(&stamp->resumed_ns) : 0ULL,
                   stamp ? atomic_load(&stamp->pauses) : 0U, stamp ? atomic_load(&stamp_view->pauses) : 0U,
                   stamp ? (unsigned long long) atomic_load(&stamp_view->loops) : 0ULL,
                   stamp ? (unsigned long long) atomic_load(&stamp_view->max_gap_ns) : 0ULL,
                   stamp ? (unsigned long long) atomic_load(&stamp->started_ns) : 0ULL,
                   stamp ? (unsigned long long) atomic_load(&stamp->loops) : 0ULL,
                   stamp ? (unsigned long long) atomic_load(&stamp->max_gap_ns) : 0ULL,
                   stamp ? (void *) &stamp->pauses : NULL);
        else if (strncmp(line, "latency ", 8) == 0)
            command_latency(line + 8);
        else if (strcmp(line, "probe") == 0)
            printf("PROBE ok=%d bad=%d\n", (int) probe_ok, (int) probe_bad);
        else if (line[0] != '\0')
            log_errno(0, "unknown command '%s'", line);
        fflush(stdout);
    }
}
