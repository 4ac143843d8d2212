/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <string.h>

#include "codec-name.h"
#include "config.h"
#include "macro.h"
#include "string-table.h"

static const char *const codec_table[_CODEC_MAX] = {
        [CODEC_NONE] = "none",
        [CODEC_LZ4] = "lz4",
        [CODEC_ZSTD] = "zstd",
};

DEFINE_STRING_TABLE_TO_STRING(codec, Codec, NULL);
DEFINE_STRING_TABLE_FROM_STRING(codec);

int codec_supported(Codec c) {
        switch (c) {
        case CODEC_NONE:
                return 1;
        case CODEC_LZ4:
                return HAVE_LZ4;
        case CODEC_ZSTD:
                return HAVE_ZSTD;
        default:
                return 0;
        }
}
