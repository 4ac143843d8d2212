/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Compression codecs by name, and which of them this build has: enough to
 * check a request or an option without linking any compression library
 * (the codecs themselves are in the engine, codec.h).
 */

typedef enum Codec {
        CODEC_NONE = 0,
        CODEC_LZ4 = 1,
        CODEC_ZSTD = 2,
        _CODEC_MAX,
} Codec;

const char *codec_to_string(Codec c);
int codec_from_string(const char *s); /* Codec or -EINVAL */
int codec_supported(Codec c);         /* 1 if built in, 0 if not */
