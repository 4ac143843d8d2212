/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Chunk compression. Each chunk records its own codec: a chunk that does not
 * shrink is stored as it is (CODEC_NONE) whatever the dump's setting.
 */

#include <stddef.h>
#include <stdint.h>

#include "codec-name.h"

/* Worst-case compressed size for raw_len input. */
size_t codec_bound(Codec c, size_t raw_len);

/* Compress src into dst (capacity dst_cap); returns the compressed size,
 * or -ENOSPC if it would not be smaller than the input. level 0 = default. */
int codec_compress(Codec c, int level, const void *src, size_t src_len, void *dst, size_t dst_cap,
                   size_t *ret_len);

/* Decompress exactly raw_len bytes; -EBADMSG if the data does not decode to that. */
int codec_decompress(Codec c, const void *src, size_t src_len, void *dst, size_t raw_len);
