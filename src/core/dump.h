/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The dump file: an unnamed (O_TMPFILE) file in the state directory, held
 * open by the watcher.
 *
 *   offset 0                 struct dump_header (DUMP_HEADER_SIZE bytes reserved)
 *   DUMP_HEADER_SIZE         chunk payloads, in the order workers finished them
 *   header.regions_offset    struct dump_region[n_regions]
 *   header.index_offset      struct dump_chunk[n_chunks], sorted by address
 *
 * A chunk is up to chunk_size bytes of contiguous target memory inside one
 * region, compressed (its own codec; CODEC_NONE if it did not shrink) and
 * sealed with AES-256-GCM under a key that exists only in the watcher's
 * memory. The nonce is the chunk's index; the additional data binds the dump
 * id, index, address, lengths, codec and region, so a chunk that is altered,
 * moved, swapped with another, or taken from another dump fails to open.
 * The index gives random access: one page costs one chunk (lazy restore).
 * The file size and header are checked before restore, so truncation and
 * appended data are refused as well.
 */

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cipher.h"
#include "codec.h"
#include "macro.h"

#define DUMP_MAGIC "MEMCRDMP"
#define DUMP_VERSION 1
#define DUMP_HEADER_SIZE 4096
#define DUMP_DEFAULT_CHUNK_SIZE (256u * 1024u)
#define DUMP_MAX_CHUNK_SIZE (4u * 1024u * 1024u)

struct dump_header {
        char magic[8];
        uint32_t version;
        uint32_t header_size;
        uint32_t page_size;
        uint32_t protection;
        uint32_t codec;
        uint32_t chunk_size;
        uint8_t dump_id[16];
        uint64_t pid;
        uint64_t created_usec;
        uint64_t n_regions;
        uint64_t n_chunks;
        uint64_t regions_offset;
        uint64_t index_offset;
        uint64_t data_end;
        uint64_t raw_bytes;
        uint64_t file_size;
        uint8_t tag[16]; /* over header (tag zeroed), regions and index */
};

struct dump_region {
        uint64_t start;
        uint64_t end;
        uint32_t vma_flags;
        uint32_t reserved;
        uint64_t first_chunk;
        uint64_t n_chunks;
};

struct dump_chunk {
        uint64_t addr;
        uint64_t offset;
        uint32_t raw_len;
        uint32_t stored_len;
        uint32_t codec;
        uint32_t region;
        uint8_t tag[16];
};

_Static_assert(sizeof(struct dump_header) == 136, "dump_header layout");
_Static_assert(sizeof(struct dump_region) == 40, "dump_region layout");
_Static_assert(sizeof(struct dump_chunk) == 48, "dump_chunk layout");

typedef struct DumpOptions {
        Codec codec;
        int level;
        Protection protection;
        size_t chunk_size; /* 0: default */
} DumpOptions;

typedef struct Dump {
        int fd;
        struct dump_header header;
        struct dump_region *regions;
        size_t n_regions, allocated_regions;
        struct dump_chunk *chunks;
        size_t n_chunks, allocated_chunks;
        CipherKey *key;
        int level;
        _Atomic uint64_t next_offset;
        bool finished;
} Dump;

/* Per-thread scratch state for storing and loading chunks. */
typedef struct DumpWorker {
        Dump *dump;
        CipherCtx *cipher;
        uint8_t *buf; /* stored-form buffer */
        size_t buf_size;
} DumpWorker;

int dump_new(const char *dir, const DumpOptions *o, pid_t pid, Dump **ret);
Dump *dump_free(Dump *d);
DEFINE_TRIVIAL_CLEANUP_FUNC(Dump *, dump_free);
#define _cleanup_dump_ __attribute__((cleanup(dump_freep)))

int dump_add_region(Dump *d, uint64_t start, uint64_t end, uint32_t vma_flags, uint32_t *ret_index);
/* Split [start, end) of region into chunks. Ranges must come in address order. */
int dump_plan_range(Dump *d, uint32_t region, uint64_t start, uint64_t end);

int dump_worker_init(DumpWorker *w, Dump *d);
void dump_worker_done(DumpWorker *w);

/* Compress, seal and write chunk idx from raw (raw_len bytes). Thread-safe
 * for distinct idx. */
int dump_store_chunk(DumpWorker *w, size_t idx, const void *raw);
/* Read, verify and decode chunk idx into raw (raw_len bytes). Thread-safe. */
int dump_load_chunk(DumpWorker *w, size_t idx, void *raw);

/* Write regions, index and header. */
int dump_finish(Dump *d);
/* Before restore: the file is exactly as we left it (size, header, index). */
int dump_check_file(Dump *d);

uint64_t dump_file_size(const Dump *d);
/* Index of the chunk holding addr, or -ENOENT. */
ssize_t dump_find_chunk(const Dump *d, uint64_t addr);
