/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <string.h>

#include "codec-name.h"
#include "config.h"
#include "macro.h"

static const char *const codec_names[_CODEC_MAX] = {
        [CODEC_NONE] = "none",
        [CODEC_LZ4] = "lz4",
        [CODEC_ZSTD] = "zstd",
};

const char *codec_to_string(Codec c) {
        return c >= 0 && c < _CODEC_MAX ? codec_names[c] : NULL;
}

int codec_from_string(const char *s) {
        for (int i = 0; i < _CODEC_MAX; i++)
                if (streq(s, codec_names[i]))
                        return i;
        return -EINVAL;
}

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
