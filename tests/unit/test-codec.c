/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "pattern.h"

#define N (256 * 1024)

static void fill_compressible(uint8_t *p, size_t n) {
        /* Text-like runs, pointers and zero runs. */
        for (size_t i = 0; i < n; i++)
                p[i] = (i / 512) % 3 == 0 ? 0 : (uint8_t) "memcr compresses text "[i % 22];
}

static void roundtrip(Codec c) {
        uint8_t *in = malloc(N), *out = malloc(N), *back = malloc(N);
        size_t len = 0;

        cr_assert(in && out && back);
        fill_compressible(in, N);
        cr_assert_eq(codec_compress(c, 0, in, N, out, N, &len), 0);
        cr_assert_lt(len, N / 4, "%s: %zu bytes", codec_to_string(c), len);
        cr_assert_eq(codec_decompress(c, out, len, back, N), 0);
        cr_assert_eq(memcmp(in, back, N), 0);

        /* A wrong expected size or damaged input is refused. */
        cr_assert_eq(codec_decompress(c, out, len, back, N - 4096), -EBADMSG);
        out[len / 2] ^= 0xff;
        out[len / 3] ^= 0x55;
        int r = codec_decompress(c, out, len, back, N);
        cr_assert(r == -EBADMSG || memcmp(in, back, N) != 0);

        /* Incompressible data: ENOSPC, the caller stores it as it is. */
        pattern_fill(in, N, 42);
        cr_assert_eq(codec_compress(c, 0, in, N, out, N, &len), -ENOSPC);
        free(in);
        free(out);
        free(back);
}

Test(codec, names) {
        cr_assert_eq(codec_from_string("none"), CODEC_NONE);
        cr_assert_eq(codec_from_string("lz4"), CODEC_LZ4);
        cr_assert_eq(codec_from_string("zstd"), CODEC_ZSTD);
        cr_assert_eq(codec_from_string("gzip"), -EINVAL);
        cr_assert_str_eq(codec_to_string(CODEC_ZSTD), "zstd");
        cr_assert_null(codec_to_string((Codec) 99));
}

Test(codec, lz4) {
        if (!codec_supported(CODEC_LZ4))
                cr_skip_test("lz4 not built in");
        roundtrip(CODEC_LZ4);
}

Test(codec, zstd) {
        if (!codec_supported(CODEC_ZSTD))
                cr_skip_test("zstd not built in");
        roundtrip(CODEC_ZSTD);
}

Test(codec, none_copies_exactly) {
        uint8_t a[64], b[64];
        memset(a, 7, sizeof(a));
        cr_assert_eq(codec_decompress(CODEC_NONE, a, 64, b, 64), 0);
        cr_assert_eq(memcmp(a, b, 64), 0);
        cr_assert_eq(codec_decompress(CODEC_NONE, a, 64, b, 32), -EBADMSG);
}
