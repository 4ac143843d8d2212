/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>
#include <sys/types.h>

/* Read a whole file (or what an fd yields from offset 0) into a NUL-terminated
 * buffer. At most max_size bytes (-EFBIG beyond). */
int read_full_file(const char *path, size_t max_size, char **ret, size_t *ret_size);
int read_full_fd(int fd, size_t max_size, char **ret, size_t *ret_size);

/* pread/pwrite until everything is transferred: -EIO on a short read at EOF. */
int pread_full(int fd, void *buf, size_t size, off_t offset);
int pwrite_full(int fd, const void *buf, size_t size, off_t offset);
int write_full(int fd, const void *buf, size_t size);
int read_full(int fd, void *buf, size_t size);
