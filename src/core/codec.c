/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <string.h>

#include "codec.h"
#include "config.h"
#include "macro.h"

#if HAVE_LZ4
#include <lz4.h>
#endif
#if HAVE_ZSTD
#include <zstd.h>
#endif

size_t codec_bound(Codec c, size_t raw_len) {
        switch (c) {
#if HAVE_LZ4
        case CODEC_LZ4:
                return (size_t) LZ4_compressBound((int) raw_len);
#endif
#if HAVE_ZSTD
        case CODEC_ZSTD:
                return ZSTD_compressBound(raw_len);
#endif
        default:
                return raw_len;
        }
}

int codec_compress(Codec c, int level, const void *src, size_t src_len, void *dst, size_t dst_cap,
                   size_t *ret_len) {
        assert(src_len <= INT32_MAX);

        switch (c) {
#if HAVE_LZ4
        case CODEC_LZ4: {
                int n = LZ4_compress_fast(src, dst, (int) src_len, (int) MIN(dst_cap, (size_t) INT32_MAX),
                                          level > 0 ? level : 1);
                if (n <= 0 || (size_t) n >= src_len)
                        return -ENOSPC;
                *ret_len = (size_t) n;
                return 0;
        }
#endif
#if HAVE_ZSTD
        case CODEC_ZSTD: {
                size_t n = ZSTD_compress(dst, dst_cap, src, src_len, level > 0 ? level : 1);
                if (ZSTD_isError(n) || n >= src_len)
                        return -ENOSPC;
                *ret_len = n;
                return 0;
        }
#endif
        default:
                return -EOPNOTSUPP;
        }
}

int codec_decompress(Codec c, const void *src, size_t src_len, void *dst, size_t raw_len) {
        assert(src_len <= INT32_MAX && raw_len <= INT32_MAX);

        switch (c) {
        case CODEC_NONE:
                if (src_len != raw_len)
                        return -EBADMSG;
                memcpy(dst, src, raw_len);
                return 0;
#if HAVE_LZ4
        case CODEC_LZ4: {
                int n = LZ4_decompress_safe(src, dst, (int) src_len, (int) raw_len);
                return n == (int) raw_len ? 0 : -EBADMSG;
        }
#endif
#if HAVE_ZSTD
        case CODEC_ZSTD: {
                size_t n = ZSTD_decompress(dst, raw_len, src, src_len);
                return !ZSTD_isError(n) && n == raw_len ? 0 : -EBADMSG;
        }
#endif
        default:
                return -EOPNOTSUPP;
        }
}
