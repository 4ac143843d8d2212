/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <fcntl.h>
#include <inttypes.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc-util.h"
#include "dump.h"
#include "fileio.h"
#include "log.h"
#include "macro.h"
#include "time-util.h"

struct chunk_aad {
        uint8_t dump_id[16];
        uint64_t index;
        uint64_t addr;
        uint32_t raw_len;
        uint32_t stored_len;
        uint32_t codec;
        uint32_t region;
} __attribute__((packed));

#define METADATA_NONCE_INDEX UINT64_MAX

static void make_nonce(uint64_t index, uint8_t nonce[CIPHER_NONCE_SIZE]) {
        memcpy(nonce, &index, sizeof(index));
        memcpy(nonce + sizeof(index), "MCR1", 4);
}

int dump_new(const char *dir, const DumpOptions *o, pid_t pid, Dump **ret) {
        _cleanup_dump_ Dump *d = NULL;
        size_t chunk_size;
        int r;

        assert(dir);
        assert(o);
        assert(ret);

        if (!codec_supported(o->codec))
                return -EOPNOTSUPP;
        if (o->protection != PROTECTION_ENCRYPT && o->protection != PROTECTION_AUTH)
                return -EINVAL;
        chunk_size = o->chunk_size ?: DUMP_DEFAULT_CHUNK_SIZE;
        if (chunk_size % (size_t) getpagesize() != 0 || chunk_size > DUMP_MAX_CHUNK_SIZE)
                return -EINVAL;

        d = calloc(1, sizeof(Dump));
        if (!d)
                return -ENOMEM;
        d->fd = -EBADF;

        d->fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC | O_EXCL, 0600);
        if (d->fd < 0)
                return -errno;

        r = cipher_key_new(&d->key);
        if (r < 0)
                return r;

        memcpy(d->header.magic, DUMP_MAGIC, sizeof(d->header.magic));
        d->header.version = DUMP_VERSION;
        d->header.header_size = DUMP_HEADER_SIZE;
        d->header.page_size = (uint32_t) getpagesize();
        d->header.protection = o->protection;
        d->header.codec = o->codec;
        d->header.chunk_size = (uint32_t) chunk_size;
        d->header.pid = (uint64_t) pid;
        d->header.created_usec = now_usec(CLOCK_REALTIME);
        if (RAND_bytes(d->header.dump_id, sizeof(d->header.dump_id)) != 1)
                return -EIO;
        atomic_store(&d->next_offset, DUMP_HEADER_SIZE);

        d->level = o->level;

        *ret = TAKE_PTR(d);
        return 0;
}

Dump *dump_free(Dump *d) {
        if (!d)
                return NULL;
        safe_close(d->fd);
        cipher_key_free(d->key);
        free(d->regions);
        free(d->chunks);
        return mfree(d);
}

int dump_add_region(Dump *d, uint64_t start, uint64_t end, uint32_t vma_flags, uint32_t *ret_index) {
        assert(d && !d->finished);
        assert(start < end);

        if (GREEDY_REALLOC(d->regions, d->allocated_regions, d->n_regions + 1, 64) < 0)
                return -ENOMEM;
        d->regions[d->n_regions] = (struct dump_region) {
                .start = start,
                .end = end,
                .vma_flags = vma_flags,
                .first_chunk = d->n_chunks,
        };
        *ret_index = (uint32_t) d->n_regions++;
        return 0;
}

int dump_plan_range(Dump *d, uint32_t region, uint64_t start, uint64_t end) {
        struct dump_region *reg;

        assert(d && !d->finished);
        /* What the page scan found comes from the target and the kernel: a
         * range out of place is refused, never trusted. */
        if (region >= d->n_regions)
                return -EINVAL;
        reg = &d->regions[region];
        if (start < reg->start || end > reg->end || start >= end)
                return log_debug_errno(-EINVAL, "range 0x%" PRIx64 "-0x%" PRIx64 " is outside its area", start, end);
        if (d->n_chunks > 0 && d->chunks[d->n_chunks - 1].addr + d->chunks[d->n_chunks - 1].raw_len > start)
                return log_debug_errno(-EINVAL, "range 0x%" PRIx64 "-0x%" PRIx64 " overlaps or precedes the previous one",
                                       start, end);

        for (uint64_t a = start; a < end;) {
                uint64_t len = MIN(end - a, (uint64_t) d->header.chunk_size);

                if (GREEDY_REALLOC(d->chunks, d->allocated_chunks, d->n_chunks + 1, 256) < 0)
                        return -ENOMEM;
                d->chunks[d->n_chunks++] = (struct dump_chunk) {
                        .addr = a,
                        .raw_len = (uint32_t) len,
                        .region = region,
                };
                reg->n_chunks++;
                d->header.raw_bytes += len;
                a += len;
        }
        return 0;
}

int dump_worker_init(DumpWorker *w, Dump *d) {
        int r;

        *w = (DumpWorker) { .dump = d };
        w->buf_size = MAX(codec_bound(d->header.codec, d->header.chunk_size),
                          (size_t) d->header.chunk_size);
        w->buf = malloc(w->buf_size);
        if (!w->buf)
                return -ENOMEM;
        r = cipher_ctx_new(d->key, &w->cipher);
        if (r < 0) {
                w->buf = mfree(w->buf);
                return r;
        }
        return 0;
}

void dump_worker_done(DumpWorker *w) {
        if (w->buf)
                explicit_bzero(w->buf, w->buf_size);
        free(w->buf);
        cipher_ctx_free(w->cipher);
        *w = (DumpWorker) {};
}

static void make_aad(const Dump *d, size_t idx, const struct dump_chunk *c, struct chunk_aad *aad) {
        *aad = (struct chunk_aad) {
                .index = idx,
                .addr = c->addr,
                .raw_len = c->raw_len,
                .stored_len = c->stored_len,
                .codec = c->codec,
                .region = c->region,
        };
        memcpy(aad->dump_id, d->header.dump_id, sizeof(aad->dump_id));
}

int dump_store_chunk(DumpWorker *w, size_t idx, const void *raw) {
        Dump *d = w->dump;
        struct dump_chunk *c;
        struct chunk_aad aad;
        uint8_t nonce[CIPHER_NONCE_SIZE];
        size_t stored_len;
        int r;

        assert(idx < d->n_chunks);
        c = &d->chunks[idx];

        if (d->header.codec != CODEC_NONE &&
            codec_compress(d->header.codec, d->level, raw, c->raw_len, w->buf, w->buf_size,
                           &stored_len) >= 0) {
                c->codec = d->header.codec;
        } else {
                c->codec = CODEC_NONE;
                stored_len = c->raw_len;
                memcpy(w->buf, raw, stored_len);
        }
        c->stored_len = (uint32_t) stored_len;

        make_aad(d, idx, c, &aad);
        make_nonce(idx, nonce);
        r = cipher_seal(w->cipher, d->header.protection, nonce, &aad, sizeof(aad), w->buf, w->buf,
                        stored_len, c->tag);
        if (r < 0)
                return r;

        c->offset = atomic_fetch_add(&d->next_offset, stored_len);
        return pwrite_full(d->fd, w->buf, stored_len, (off_t) c->offset);
}

int dump_load_chunk(DumpWorker *w, size_t idx, void *raw) {
        Dump *d = w->dump;
        const struct dump_chunk *c;
        struct chunk_aad aad;
        uint8_t nonce[CIPHER_NONCE_SIZE];
        int r;

        assert(idx < d->n_chunks);
        c = &d->chunks[idx];
        if (c->stored_len > w->buf_size || c->raw_len > d->header.chunk_size)
                return -EBADMSG;

        r = pread_full(d->fd, w->buf, c->stored_len, (off_t) c->offset);
        if (r == -EIO)
                return -EBADMSG; /* truncated */
        if (r < 0)
                return r;

        make_aad(d, idx, c, &aad);
        make_nonce(idx, nonce);
        if (c->codec == CODEC_NONE) {
                if (c->stored_len != c->raw_len)
                        return -EBADMSG;
                return cipher_open(w->cipher, d->header.protection, nonce, &aad, sizeof(aad), w->buf,
                                   raw, c->stored_len, c->tag);
        }
        r = cipher_open(w->cipher, d->header.protection, nonce, &aad, sizeof(aad), w->buf, w->buf,
                        c->stored_len, c->tag);
        if (r < 0)
                return r;
        return codec_decompress(c->codec, w->buf, c->stored_len, raw, c->raw_len);
}

static int metadata_tag(Dump *d, uint8_t tag[CIPHER_TAG_SIZE]) {
        _cleanup_(cipher_ctx_freep) CipherCtx *c = NULL;
        struct dump_header h = d->header;
        size_t rs = d->n_regions * sizeof(struct dump_region), cs = d->n_chunks * sizeof(struct dump_chunk);
        _cleanup_free_ uint8_t *buf = NULL;
        uint8_t nonce[CIPHER_NONCE_SIZE];
        int r;

        memset(h.tag, 0, sizeof(h.tag));
        buf = malloc(sizeof(h) + rs + cs);
        if (!buf)
                return -ENOMEM;
        memcpy(buf, &h, sizeof(h));
        if (rs > 0)
                memcpy(buf + sizeof(h), d->regions, rs);
        if (cs > 0)
                memcpy(buf + sizeof(h) + rs, d->chunks, cs);

        r = cipher_ctx_new(d->key, &c);
        if (r < 0)
                return r;
        make_nonce(METADATA_NONCE_INDEX, nonce);
        return cipher_seal(c, PROTECTION_AUTH, nonce, NULL, 0, buf, buf, sizeof(h) + rs + cs, tag);
}

int dump_finish(Dump *d) {
        uint8_t header[DUMP_HEADER_SIZE] = {};
        size_t rs, cs;
        int r;

        assert(d && !d->finished);

        d->header.n_regions = d->n_regions;
        d->header.n_chunks = d->n_chunks;
        d->header.data_end = atomic_load(&d->next_offset);
        rs = d->n_regions * sizeof(struct dump_region);
        cs = d->n_chunks * sizeof(struct dump_chunk);
        d->header.regions_offset = d->header.data_end;
        d->header.index_offset = d->header.regions_offset + rs;
        d->header.file_size = d->header.index_offset + cs;

        r = metadata_tag(d, d->header.tag);
        if (r < 0)
                return r;

        if (rs > 0) {
                r = pwrite_full(d->fd, d->regions, rs, (off_t) d->header.regions_offset);
                if (r < 0)
                        return r;
        }
        if (cs > 0) {
                r = pwrite_full(d->fd, d->chunks, cs, (off_t) d->header.index_offset);
                if (r < 0)
                        return r;
        }
        memcpy(header, &d->header, sizeof(d->header));
        r = pwrite_full(d->fd, header, sizeof(header), 0);
        if (r < 0)
                return r;
        d->finished = true;
        return 0;
}

int dump_check_file(Dump *d) {
        struct dump_header h;
        struct stat st;
        int r;

        assert(d && d->finished);

        if (fstat(d->fd, &st) < 0)
                return -errno;
        if ((uint64_t) st.st_size != d->header.file_size)
                return -EBADMSG;
        r = pread_full(d->fd, &h, sizeof(h), 0);
        if (r < 0)
                return r == -EIO ? -EBADMSG : r;
        if (memcmp(&h, &d->header, sizeof(h)) != 0)
                return -EBADMSG;

        /* Regions and index on disk must match ours too (chunks are opened
         * against the in-memory index, which is what binds them). Compared a
         * slice at a time: this runs while the target waits, and a large
         * fresh buffer costs more to fault in than to compare. */
        uint8_t buf[16384];
        size_t rs = d->n_regions * sizeof(struct dump_region);
        size_t size = (size_t) (d->header.file_size - d->header.regions_offset);
        if (size != rs + d->n_chunks * sizeof(struct dump_chunk))
                return -EBADMSG;
        for (size_t done = 0; done < size;) {
                size_t n = MIN(size - done, sizeof(buf));
                r = pread_full(d->fd, buf, n, (off_t) (d->header.regions_offset + done));
                if (r < 0)
                        return r == -EIO ? -EBADMSG : r;
                for (size_t k = 0; k < n;) {
                        size_t at = done + k, m;
                        const uint8_t *ours;
                        if (at < rs) {
                                ours = (const uint8_t *) d->regions + at;
                                m = MIN(n - k, rs - at);
                        } else {
                                ours = (const uint8_t *) d->chunks + (at - rs);
                                m = n - k;
                        }
                        if (memcmp(buf + k, ours, m) != 0)
                                return -EBADMSG;
                        k += m;
                }
                done += n;
        }
        return 0;
}

uint64_t dump_file_size(const Dump *d) {
        return d->finished ? d->header.file_size : atomic_load(&d->next_offset);
}

/* For bsearch(): where the address *key is against chunk c. */
static int cmp_addr_chunk(const void *key, const void *c) {
        uint64_t addr = *(const uint64_t *) key;
        const struct dump_chunk *chunk = c;

        return addr < chunk->addr ? -1 : addr >= chunk->addr + chunk->raw_len;
}

ssize_t dump_find_chunk(const Dump *d, uint64_t addr) {
        const struct dump_chunk *c;

        if (d->n_chunks == 0)
                return -ENOENT;
        c = bsearch(&addr, d->chunks, d->n_chunks, sizeof(*c), cmp_addr_chunk);
        return c ? c - d->chunks : -ENOENT;
}
