/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dump.h"
#include "fileio.h"
#include "pattern.h"
#include "target-util.h"

#define CHUNK (64 * 1024)
#define SIZE (16 * CHUNK + 8192) /* 17 chunks, the last one short */
#define BASE 0x7f0000000000ULL

static char dir[64];
static uint8_t *mem;

static void setup(void) {
        strcpy(dir, "/tmp/memcr-dump-XXXXXX");
        cr_assert_not_null(mkdtemp(dir));
        mem = aligned_alloc(4096, SIZE);
        cr_assert_not_null(mem);
        /* Half compressible, half not. */
        pattern_fill(mem, SIZE / 2, 1234);
        memset(mem + SIZE / 2, 'x', SIZE / 2);
}

static void teardown(void) {
        free(mem);
        rmdir(dir);
}

TestSuite(dump, .init = setup, .fini = teardown);

static Dump *make_dump(Codec codec, Protection prot) {
        DumpOptions o = { .codec = codec, .protection = prot, .chunk_size = CHUNK };
        Dump *d = NULL;
        DumpWorker w;
        uint32_t region;

        cr_assert_eq(dump_new(dir, &o, 1, &d), 0);
        cr_assert_eq(dump_add_region(d, BASE, BASE + SIZE + 4096, 0, &region), 0);
        cr_assert_eq(dump_plan_range(d, region, BASE, BASE + SIZE), 0);
        cr_assert_eq(d->n_chunks, 17);
        cr_assert_eq(dump_worker_init(&w, d), 0);
        /* Out of order, as parallel workers would. */
        for (size_t i = 0; i < d->n_chunks; i++) {
                size_t idx = (i * 5) % d->n_chunks;
                cr_assert_eq(dump_store_chunk(&w, idx, mem + (d->chunks[idx].addr - BASE)), 0);
        }
        dump_worker_done(&w);
        cr_assert_eq(dump_finish(d), 0);
        /* Nothing visible in the directory: the file has no name. */
        cr_assert_eq(count_dir_entries(dir), 0);
        return d;
}

static int load_all(Dump *d) {
        uint8_t *out = malloc(CHUNK);
        DumpWorker w;
        int r = dump_check_file(d);

        cr_assert_eq(dump_worker_init(&w, d), 0);
        for (size_t i = 0; r >= 0 && i < d->n_chunks; i++) {
                r = dump_load_chunk(&w, i, out);
                if (r >= 0)
                        cr_assert_eq(memcmp(out, mem + (d->chunks[i].addr - BASE), d->chunks[i].raw_len), 0);
        }
        dump_worker_done(&w);
        free(out);
        return r;
}

static void roundtrip(Codec c, Protection p) {
        if (!codec_supported(c))
                cr_skip_test("codec not built in");
        Dump *d = make_dump(c, p);
        cr_assert_eq(load_all(d), 0);
        if (c != CODEC_NONE)
                cr_assert_lt(d->header.data_end, SIZE, "compressible half did not shrink");
        dump_free(d);
}

Test(dump, roundtrip_plain) { roundtrip(CODEC_NONE, PROTECTION_ENCRYPT); }
Test(dump, roundtrip_lz4) { roundtrip(CODEC_LZ4, PROTECTION_ENCRYPT); }
Test(dump, roundtrip_zstd) { roundtrip(CODEC_ZSTD, PROTECTION_ENCRYPT); }
Test(dump, roundtrip_auth_only) { roundtrip(CODEC_LZ4, PROTECTION_AUTH); }

Test(dump, encrypted_file_does_not_contain_the_data) {
        Dump *d = make_dump(CODEC_NONE, PROTECTION_ENCRYPT);
        uint8_t *file = malloc(d->header.file_size);
        cr_assert_eq(pread_full(d->fd, file, d->header.file_size, 0), 0);
        /* A 64-byte run of the pattern must not appear anywhere. */
        cr_assert_null(memmem(file, d->header.file_size, mem + 4096, 64));
        cr_assert_null(memmem(file, d->header.file_size, mem + SIZE - 128, 64));
        free(file);
        dump_free(d);
}

Test(dump, flipped_byte_is_detected) {
        Dump *d = make_dump(CODEC_NONE, PROTECTION_AUTH);
        uint8_t b;
        off_t off = (off_t) d->chunks[3].offset + 100;
        cr_assert_eq(pread_full(d->fd, &b, 1, off), 0);
        b ^= 1;
        cr_assert_eq(pwrite_full(d->fd, &b, 1, off), 0);
        cr_assert_eq(load_all(d), -EBADMSG);
        dump_free(d);
}

Test(dump, swapped_chunks_are_detected) {
        Dump *d = make_dump(CODEC_NONE, PROTECTION_ENCRYPT);
        uint8_t *a = malloc(CHUNK), *b = malloc(CHUNK);
        /* Two full-size chunks exchange places on disk. */
        cr_assert_eq(pread_full(d->fd, a, CHUNK, (off_t) d->chunks[1].offset), 0);
        cr_assert_eq(pread_full(d->fd, b, CHUNK, (off_t) d->chunks[2].offset), 0);
        cr_assert_eq(pwrite_full(d->fd, b, CHUNK, (off_t) d->chunks[1].offset), 0);
        cr_assert_eq(pwrite_full(d->fd, a, CHUNK, (off_t) d->chunks[2].offset), 0);
        cr_assert_eq(load_all(d), -EBADMSG);
        free(a);
        free(b);
        dump_free(d);
}

Test(dump, chunk_from_another_dump_is_detected) {
        Dump *d1 = make_dump(CODEC_NONE, PROTECTION_ENCRYPT);
        Dump *d2 = make_dump(CODEC_NONE, PROTECTION_ENCRYPT);
        uint8_t *a = malloc(CHUNK);
        /* Replay: the same chunk (same index, same address) from another dump. */
        cr_assert_eq(pread_full(d2->fd, a, CHUNK, (off_t) d2->chunks[4].offset), 0);
        cr_assert_eq(pwrite_full(d1->fd, a, CHUNK, (off_t) d1->chunks[4].offset), 0);
        cr_assert_eq(load_all(d1), -EBADMSG);
        free(a);
        dump_free(d1);
        dump_free(d2);
}

Test(dump, truncation_is_detected) {
        Dump *d = make_dump(CODEC_NONE, PROTECTION_ENCRYPT);
        cr_assert_eq(ftruncate(d->fd, (off_t) d->header.file_size - 1), 0);
        cr_assert_eq(dump_check_file(d), -EBADMSG);
        /* Even if the size check were bypassed, the chunk itself is short. */
        cr_assert_eq(ftruncate(d->fd, (off_t) d->chunks[16].offset + 10), 0);
        DumpWorker w;
        uint8_t *out = malloc(CHUNK);
        cr_assert_eq(dump_worker_init(&w, d), 0);
        cr_assert_eq(dump_load_chunk(&w, 16, out), -EBADMSG);
        dump_worker_done(&w);
        free(out);
        dump_free(d);
}

Test(dump, appended_data_is_detected) {
        Dump *d = make_dump(CODEC_NONE, PROTECTION_ENCRYPT);
        cr_assert_eq(pwrite_full(d->fd, "junk", 4, (off_t) d->header.file_size), 0);
        cr_assert_eq(dump_check_file(d), -EBADMSG);
        dump_free(d);
}

Test(dump, changed_index_on_disk_is_detected) {
        Dump *d = make_dump(CODEC_NONE, PROTECTION_ENCRYPT);
        uint8_t b;
        off_t off = (off_t) d->header.index_offset + 8;
        cr_assert_eq(pread_full(d->fd, &b, 1, off), 0);
        b ^= 0x80;
        cr_assert_eq(pwrite_full(d->fd, &b, 1, off), 0);
        cr_assert_eq(dump_check_file(d), -EBADMSG);
        dump_free(d);
}

Test(dump, find_chunk) {
        Dump *d = make_dump(CODEC_NONE, PROTECTION_ENCRYPT);
        cr_assert_eq(dump_find_chunk(d, BASE), 0);
        cr_assert_eq(dump_find_chunk(d, BASE + CHUNK - 1), 0);
        cr_assert_eq(dump_find_chunk(d, BASE + CHUNK), 1);
        cr_assert_eq(dump_find_chunk(d, BASE + SIZE - 1), 16);
        cr_assert_eq(dump_find_chunk(d, BASE + SIZE), -ENOENT);
        cr_assert_eq(dump_find_chunk(d, BASE - 1), -ENOENT);
        dump_free(d);
}

Test(dump, bad_options_are_refused) {
        DumpOptions o = { .codec = CODEC_NONE, .protection = PROTECTION_ENCRYPT, .chunk_size = 1000 };
        Dump *d = NULL;
        cr_assert_eq(dump_new(dir, &o, 1, &d), -EINVAL);
        o.chunk_size = 0;
        o.protection = 0;
        cr_assert_eq(dump_new(dir, &o, 1, &d), -EINVAL);
        o.protection = PROTECTION_ENCRYPT;
        cr_assert_eq(dump_new("/nonexistent-memcr-dir", &o, 1, &d), -ENOENT);
        cr_assert_null(d);
}
