/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "fileio.h"
#include "macro.h"

int read_full_fd(int fd, size_t max_size, char **ret, size_t *ret_size) {
        _cleanup_free_ char *buf = NULL;
        size_t size = 0, allocated = 0;

        assert(fd >= 0);
        assert(ret);

        for (;;) {
                if (allocated - size < 4096) {
                        size_t n = MAX(allocated * 2, (size_t) 16384);
                        char *p;

                        if (n > max_size + 1)
                                n = max_size + 1;
                        if (n <= size)
                                return -EFBIG;
                        p = realloc(buf, n);
                        if (!p)
                                return -ENOMEM;
                        buf = p;
                        allocated = n;
                }
                ssize_t k = pread(fd, buf + size, allocated - size - 1, (off_t) size);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                size += (size_t) k;
                if (size > max_size)
                        return -EFBIG;
        }
        if (!buf) {
                buf = malloc(1);
                if (!buf)
                        return -ENOMEM;
        }
        buf[size] = 0;
        *ret = TAKE_PTR(buf);
        if (ret_size)
                *ret_size = size;
        return 0;
}

int read_full_file(const char *path, size_t max_size, char **ret, size_t *ret_size) {
        _cleanup_close_ int fd = -EBADF;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        return read_full_fd(fd, max_size, ret, ret_size);
}

/* Transfer all of size bytes: at offset (pread/pwrite) or, with offset -1,
 * at the file position (read/write). */
static int transfer_full(int fd, char *p, size_t size, off_t offset, bool writing) {
        while (size > 0) {
                ssize_t k;

                if (offset < 0)
                        k = writing ? write(fd, p, size) : read(fd, p, size);
                else
                        k = writing ? pwrite(fd, p, size, offset) : pread(fd, p, size, offset);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        return -EIO;
                p += k;
                size -= (size_t) k;
                if (offset >= 0)
                        offset += k;
        }
        return 0;
}

int pread_full(int fd, void *buf, size_t size, off_t offset) {
        assert(offset >= 0);
        return transfer_full(fd, buf, size, offset, false);
}

int pwrite_full(int fd, const void *buf, size_t size, off_t offset) {
        assert(offset >= 0);
        return transfer_full(fd, (char *) buf, size, offset, true);
}

int write_full(int fd, const void *buf, size_t size) {
        return transfer_full(fd, (char *) buf, size, -1, true);
}

int read_full(int fd, void *buf, size_t size) {
        return transfer_full(fd, buf, size, -1, false);
}
