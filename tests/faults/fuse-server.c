/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * A minimal FUSE file system served from a thread of the test, speaking the
 * kernel protocol on /dev/fuse directly. It has two files:
 *
 *   file   4 KiB of zeros
 *   exe    the bytes of another file (a program to execute from here)
 *
 * and can hold READ requests unanswered: a process reading either file then
 * sleeps in the kernel, uninterruptibly, until the reads are released.
 */

#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "fuse-server.h"

#define NODE_ROOT 1
#define NODE_FILE 2
#define NODE_EXE 3
#define FILE_SIZE 4096
#define MAX_HELD 256
#define BUFFER_SIZE (1024 * 1024 + 4096)

typedef struct HeldRead {
        uint64_t unique;
        uint64_t node;
        uint64_t offset;
        uint32_t size;
} HeldRead;

struct FuseServer {
        int fd;
        int exe_fd;
        int stop_pipe[2];
        uint64_t exe_size;
        char dir[64];
        bool mounted;
        pthread_t thread;
        bool thread_started;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        bool hold;
        HeldRead held[MAX_HELD];
        size_t n_held;
        unsigned reads_seen;
        uint8_t *buf;
        uint8_t *data;
};

static void send_reply(FuseServer *s, uint64_t unique, int error, const void *payload, size_t size) {
        struct fuse_out_header h = {
                .len = (uint32_t) (sizeof(h) + (error == 0 ? size : 0)),
                .error = error,
                .unique = unique,
        };
        struct iovec iov[2] = { { &h, sizeof(h) }, { (void *) payload, error == 0 ? size : 0 } };

        /* Fails with ENOENT when the request was interrupted meanwhile: fine. */
        (void) writev(s->fd, iov, iov[1].iov_len > 0 ? 2 : 1);
}

static void fill_attr(FuseServer *s, uint64_t node, struct fuse_attr *a) {
        *a = (struct fuse_attr) { .ino = node, .nlink = 1, .blksize = 4096 };
        switch (node) {
        case NODE_ROOT:
                a->mode = S_IFDIR | 0755;
                a->nlink = 2;
                break;
        case NODE_FILE:
                a->mode = S_IFREG | 0444;
                a->size = FILE_SIZE;
                break;
        case NODE_EXE:
                a->mode = S_IFREG | 0755;
                a->size = s->exe_size;
                break;
        }
        a->blocks = (a->size + 511) / 512;
}

static uint64_t node_size(FuseServer *s, uint64_t node) {
        return node == NODE_FILE ? FILE_SIZE : node == NODE_EXE ? s->exe_size : 0;
}

static void answer_read(FuseServer *s, const HeldRead *r) {
        uint64_t size = node_size(s, r->node);
        size_t n = 0;

        if (r->offset < size)
                n = (size_t) (size - r->offset < r->size ? size - r->offset : r->size);
        if (n > BUFFER_SIZE)
                n = BUFFER_SIZE;
        if (r->node == NODE_EXE && n > 0) {
                ssize_t k = pread(s->exe_fd, s->data, n, (off_t) r->offset);
                if (k < 0) {
                        send_reply(s, r->unique, -EIO, NULL, 0);
                        return;
                }
                n = (size_t) k;
        } else
                memset(s->data, 0, n);
        send_reply(s, r->unique, 0, s->data, n);
}

static void handle(FuseServer *s, const struct fuse_in_header *h, const void *arg) {
        switch (h->opcode) {
        case FUSE_INIT: {
                const struct fuse_init_in *in = arg;
                struct fuse_init_out out = {
                        .major = FUSE_KERNEL_VERSION,
                        .minor = FUSE_KERNEL_MINOR_VERSION,
                        .max_readahead = in->max_readahead,
                        /* Reads through the page cache are sent asynchronously:
                         * the reader waits on a locked page, killable only. */
                        .flags = FUSE_ASYNC_READ,
                        .max_background = 16,
                        .congestion_threshold = 12,
                        .max_write = 128 * 1024,
                        .time_gran = 1,
                };
                send_reply(s, h->unique, 0, &out, sizeof(out));
                return;
        }
        case FUSE_LOOKUP: {
                const char *name = arg;
                struct fuse_entry_out out = { .generation = 1, .entry_valid = 3600, .attr_valid = 3600 };

                if (h->nodeid != NODE_ROOT) {
                        send_reply(s, h->unique, -ENOENT, NULL, 0);
                        return;
                }
                if (strcmp(name, "file") == 0)
                        out.nodeid = NODE_FILE;
                else if (strcmp(name, "exe") == 0)
                        out.nodeid = NODE_EXE;
                else {
                        send_reply(s, h->unique, -ENOENT, NULL, 0);
                        return;
                }
                fill_attr(s, out.nodeid, &out.attr);
                send_reply(s, h->unique, 0, &out, sizeof(out));
                return;
        }
        case FUSE_GETATTR: {
                struct fuse_attr_out out = { .attr_valid = 3600 };
                fill_attr(s, h->nodeid, &out.attr);
                send_reply(s, h->unique, 0, &out, sizeof(out));
                return;
        }
        case FUSE_OPEN:
        case FUSE_OPENDIR: {
                struct fuse_open_out out = { .fh = h->nodeid, .open_flags = FOPEN_KEEP_CACHE };
                send_reply(s, h->unique, 0, &out, sizeof(out));
                return;
        }
        case FUSE_READ: {
                const struct fuse_read_in *in = arg;
                HeldRead r = { .unique = h->unique, .node = h->nodeid, .offset = in->offset, .size = in->size };

                pthread_mutex_lock(&s->lock);
                s->reads_seen++;
                if (s->hold && s->n_held < MAX_HELD) {
                        s->held[s->n_held++] = r;
                        pthread_cond_broadcast(&s->cond);
                        pthread_mutex_unlock(&s->lock);
                        return;
                }
                pthread_cond_broadcast(&s->cond);
                answer_read(s, &r);
                pthread_mutex_unlock(&s->lock);
                return;
        }
        case FUSE_ACCESS:
        case FUSE_FLUSH:
        case FUSE_RELEASE:
        case FUSE_RELEASEDIR:
        case FUSE_FSYNC:
                send_reply(s, h->unique, 0, NULL, 0);
                return;
        case FUSE_STATFS: {
                struct fuse_statfs_out out = { .st = { .bsize = 4096, .namelen = 255, .frsize = 4096 } };
                send_reply(s, h->unique, 0, &out, sizeof(out));
                return;
        }
        case FUSE_FORGET:
        case FUSE_BATCH_FORGET:
        case FUSE_INTERRUPT:
                /* No answer: a held read stays held, interrupted or not. */
                return;
        default:
                send_reply(s, h->unique, -ENOSYS, NULL, 0);
                return;
        }
}

static void *serve(void *userdata) {
        FuseServer *s = userdata;

        for (;;) {
                struct pollfd p[2] = { { .fd = s->fd, .events = POLLIN }, { .fd = s->stop_pipe[0], .events = POLLIN } };
                const struct fuse_in_header *h = (const void *) s->buf;
                ssize_t n;

                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                if (p[1].revents)
                        break;
                if (p[0].revents & (POLLERR | POLLHUP | POLLNVAL))
                        break;
                n = read(s->fd, s->buf, BUFFER_SIZE);
                if (n < 0) {
                        if (errno == EINTR || errno == EAGAIN || errno == ENOENT)
                                continue;
                        break; /* ENODEV: unmounted, or the connection was aborted */
                }
                if ((size_t) n < sizeof(*h))
                        continue;
                if (h->opcode == FUSE_DESTROY) {
                        send_reply(s, h->unique, 0, NULL, 0);
                        break;
                }
                handle(s, h, s->buf + sizeof(*h));
        }
        return NULL;
}

int fuse_server_start(const char *exe, FuseServer **ret) {
        FuseServer *s;
        char opts[256];
        struct stat st;

        s = calloc(1, sizeof(FuseServer));
        if (!s)
                return -ENOMEM;
        s->fd = s->exe_fd = s->stop_pipe[0] = s->stop_pipe[1] = -1;
        pthread_mutex_init(&s->lock, NULL);
        pthread_cond_init(&s->cond, NULL);
        s->buf = malloc(BUFFER_SIZE);
        s->data = malloc(BUFFER_SIZE);
        if (!s->buf || !s->data)
                goto fail_errno;
        if (exe) {
                s->exe_fd = open(exe, O_RDONLY | O_CLOEXEC);
                if (s->exe_fd < 0 || fstat(s->exe_fd, &st) < 0)
                        goto fail_errno;
                s->exe_size = (uint64_t) st.st_size;
        }
        strcpy(s->dir, "/tmp/memcr-fuse-XXXXXX");
        if (!mkdtemp(s->dir))
                goto fail_errno;
        if (pipe2(s->stop_pipe, O_CLOEXEC) < 0)
                goto fail_errno;
        s->fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
        if (s->fd < 0)
                goto fail_errno;
        snprintf(opts, sizeof(opts), "fd=%i,rootmode=40000,user_id=0,group_id=0,allow_other", s->fd);
        if (mount("memcr-faults", s->dir, "fuse.memcr-faults", MS_NOSUID | MS_NODEV, opts) < 0)
                goto fail_errno;
        s->mounted = true;
        if (pthread_create(&s->thread, NULL, serve, s) != 0) {
                errno = EAGAIN;
                goto fail_errno;
        }
        s->thread_started = true;
        *ret = s;
        return 0;

fail_errno:;
        int r = -errno;
        fuse_server_stop(s);
        return r;
}

const char *fuse_server_dir(const FuseServer *s) {
        return s->dir;
}

void fuse_server_hold(FuseServer *s, bool hold) {
        pthread_mutex_lock(&s->lock);
        s->hold = hold;
        pthread_mutex_unlock(&s->lock);
}

int fuse_server_wait_held(FuseServer *s, size_t n, unsigned timeout_ms) {
        struct timespec ts;
        int r = 0;

        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += timeout_ms / 1000;
        ts.tv_nsec += (long) (timeout_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&s->lock);
        while (s->n_held < n && r == 0)
                r = pthread_cond_timedwait(&s->cond, &s->lock, &ts);
        pthread_mutex_unlock(&s->lock);
        return r == 0 ? 0 : -ETIMEDOUT;
}

size_t fuse_server_release(FuseServer *s) {
        size_t n;

        pthread_mutex_lock(&s->lock);
        s->hold = false;
        n = s->n_held;
        for (size_t i = 0; i < s->n_held; i++)
                answer_read(s, &s->held[i]);
        s->n_held = 0;
        pthread_mutex_unlock(&s->lock);
        return n;
}

void fuse_server_stop(FuseServer *s) {
        if (!s)
                return;
        if (s->thread_started) {
                (void) write(s->stop_pipe[1], "x", 1);
                pthread_join(s->thread, NULL);
        }
        /* Closing the device aborts the connection: whoever still waits for
         * an answer gets an error. */
        if (s->fd >= 0)
                close(s->fd);
        if (s->mounted)
                (void) umount2(s->dir, MNT_DETACH);
        if (s->stop_pipe[0] >= 0)
                close(s->stop_pipe[0]);
        if (s->stop_pipe[1] >= 0)
                close(s->stop_pipe[1]);
        if (s->dir[0])
                (void) rmdir(s->dir);
        if (s->exe_fd >= 0)
                close(s->exe_fd);
        pthread_mutex_destroy(&s->lock);
        pthread_cond_destroy(&s->cond);
        free(s->buf);
        free(s->data);
        free(s);
}
