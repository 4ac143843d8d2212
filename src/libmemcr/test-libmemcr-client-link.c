/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * Links against libmemcr-client.so the way an outside program does: every
 * public function resolves, the internal protocol code is not exported, and
 * memcr-client.h is the only header needed (compiled as C99 here).
 */

#include "memcr-client.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#define CHECK(expr)                                                                                \
        do {                                                                                       \
                if (!(expr)) {                                                                     \
                        fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #expr);   \
                        return 1;                                                                  \
                }                                                                                  \
        } while (0)

int main(void) {
        const void *functions[] = {
                (const void *) memcr_client_connect,  (const void *) memcr_client_free,
                (const void *) memcr_client_checkpoint, (const void *) memcr_client_restore,
                (const void *) memcr_client_status,   (const void *) memcr_client_list,
                (const void *) memcr_client_version,  (const void *) memcr_client_result_to_string,
        };
        MemcrClient *c = NULL;

        for (size_t i = 0; i < sizeof(functions) / sizeof(functions[0]); i++)
                CHECK(functions[i]);

        CHECK(!dlsym(RTLD_DEFAULT, "message_encode"));
        CHECK(!dlsym(RTLD_DEFAULT, "message_recv"));
        CHECK(!dlsym(RTLD_DEFAULT, "unix_connect"));
        CHECK(dlsym(RTLD_DEFAULT, "memcr_client_connect"));

        CHECK(memcr_client_connect("/nonexistent/memcr.sock", &c) == -ENOENT);
        CHECK(!c);
        CHECK(memcr_client_connect(NULL, NULL) == -EINVAL);
        memcr_client_free(NULL);

        CHECK(strcmp(memcr_client_result_to_string(MEMCR_CLIENT_OK), "ok") == 0);
        CHECK(strcmp(memcr_client_result_to_string(MEMCR_CLIENT_ERR_DENIED), "denied") == 0);
        CHECK(strcmp(memcr_client_result_to_string(-1), "unknown") == 0);
        CHECK(strcmp(memcr_client_result_to_string(11), "unknown") == 0);
        return 0;
}
