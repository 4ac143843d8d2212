/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * libFuzzer target for the protocol decoder: whatever arrives on memcrd's
 * socket goes through frame_header_parse() and message_decode(). Anything
 * that decodes must encode again and decode to the same message.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protocol.h"

static void same(const Message *a, const Message *b) {
        if (a->type != b->type || a->present != b->present || a->n_entries != b->n_entries ||
            a->pid != b->pid || a->flags != b->flags || a->result != b->result ||
            a->dump_bytes != b->dump_bytes)
                abort();
        if ((a->codec || b->codec) && (!a->codec || !b->codec || strcmp(a->codec, b->codec) != 0))
                abort();
        for (size_t i = 0; i < a->n_entries; i++)
                same(&a->entries[i], &b->entries[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        Message m = {}, again = {};
        uint8_t *buf = NULL;
        size_t buf_size;
        uint16_t type;
        uint32_t length;

        if (size < MEMCR_FRAME_HEADER_SIZE)
                return 0;
        if (frame_header_parse(data, &type, &length) < 0)
                return 0;
        if (length > size - MEMCR_FRAME_HEADER_SIZE)
                return 0;
        if (message_decode(type, data + MEMCR_FRAME_HEADER_SIZE, length, &m) < 0)
                return 0;

        if (message_encode(&m, &buf, &buf_size) < 0)
                abort();
        if (frame_header_parse(buf, &type, &length) < 0 || type != m.type ||
            length != buf_size - MEMCR_FRAME_HEADER_SIZE)
                abort();
        if (message_decode(type, buf + MEMCR_FRAME_HEADER_SIZE, length, &again) < 0)
                abort();
        same(&m, &again);

        free(buf);
        message_done(&m);
        message_done(&again);
        return 0;
}
