/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fileio.h"
#include "log.h"
#include "macro.h"
#include "parasite-blob.h"
#include "parasite.h"

static int remote_result(int64_t v) {
        /* Raw syscall results: -4095..-1 are errors. */
        return v < 0 && v >= -4095 ? (int) v : 0;
}

static int remote_mmap(Tracee *t, size_t len, int prot, uint64_t *ret) {
        uint64_t args[6] = { 0, len, (uint64_t) prot, MAP_PRIVATE | MAP_ANONYMOUS, (uint64_t) -1, 0 };
        int64_t v;
        int r;

        r = tracee_syscall(t, SYS_mmap, args, &v);
        if (r < 0)
                return r;
        r = remote_result(v);
        if (r < 0)
                return log_debug_errno(r, "remote mmap failed: %m");
        *ret = (uint64_t) v;
        return 0;
}

static int remote_munmap(Tracee *t, uint64_t addr, size_t len) {
        uint64_t args[6] = { addr, len };
        int64_t v;
        int r;

        r = tracee_syscall(t, SYS_munmap, args, &v);
        if (r < 0)
                return r;
        return remote_result(v);
}

static int write_args(Parasite *p, const struct parasite_args *a, const void *payload,
                      size_t payload_size) {
        /* Before INIT there is no mem descriptor: poke word by word. */
        if (p->fds[PARASITE_FD_MEM] < 0) {
                assert(payload_size == 0);
                return tracee_poke(p->tracee, p->data_addr, a, sizeof(*a));
        }
        struct iovec iov[2] = {
                { (void *) a, sizeof(*a) },
                { (void *) payload, payload_size },
        };
        ssize_t n = pwritev(p->fds[PARASITE_FD_MEM], iov, payload_size > 0 ? 2 : 1,
                            (off_t) p->data_addr);
        if (n < 0)
                return -errno;
        if ((size_t) n != sizeof(*a) + payload_size)
                return -EIO;
        return 0;
}

static int read_args(Parasite *p, struct parasite_args *a) {
        if (p->fds[PARASITE_FD_MEM] < 0)
                return tracee_peek(p->tracee, p->data_addr, a, sizeof(*a));
        return pread_full(p->fds[PARASITE_FD_MEM], a, sizeof(*a), (off_t) p->data_addr);
}

static int run_cmd(Parasite *p, struct parasite_args *a, const void *payload, size_t payload_size) {
        int r;

        a->magic = PARASITE_MAGIC;
        r = write_args(p, a, payload, payload_size);
        if (r < 0)
                return r;
        r = tracee_run(p->tracee, p->code_addr + PARASITE_BLOB_ENTRY, p->data_addr,
                       p->data_addr + PARASITE_DATA_SIZE, p->code_addr,
                       p->code_addr + p->code_size);
        if (r < 0)
                return r;
        r = read_args(p, a);
        if (r < 0)
                return r;
        if (a->magic != PARASITE_MAGIC)
                return -EIO;
        return (int) a->ret;
}

static int getfd(Tracee *t, int remote_fd) {
        int fd = (int) syscall(SYS_pidfd_getfd, t->pidfd, remote_fd, 0);
        if (fd < 0)
                return log_debug_errno(-errno, "pidfd_getfd(%i) failed: %m", remote_fd);
        return fd;
}

static int open_proc_mem(Tracee *t, Parasite *p) {
        char path[64];
        int fd, r;

        snprintf(path, sizeof(path), "/proc/%i/mem", t->pid);
        fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd < 0)
                return log_debug_errno(-errno, "%s: %m (a target that is not dumpable needs a root watcher)", path);
        p->fds[PARASITE_FD_MEM] = fd;
        snprintf(path, sizeof(path), "/proc/%i/pagemap", t->pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return log_debug_errno(-errno, "%s: %m", path);
        p->fds[PARASITE_FD_PAGEMAP] = fd;
        /* We hold every thread of the target, so it cannot have exited and
         * its PID cannot name another process yet; check anyway. */
        r = tracee_is_dead(t) ? -ESRCH : 0;
        return r;
}

int parasite_infect(Tracee *t, Parasite **ret) {
        return parasite_infect_full(t, 0, ret);
}

int parasite_infect_full(Tracee *t, uint64_t init_flags, Parasite **ret) {
        _cleanup_parasite_ Parasite *p = NULL;
        struct parasite_args a = {};
        int r;

        assert(t);
        assert(ret);

        p = calloc(1, sizeof(Parasite));
        if (!p)
                return -ENOMEM;
        p->tracee = t;
        p->remote_sock = -1;
        for (int i = 0; i < _PARASITE_FD_MAX; i++)
                p->fds[i] = -EBADF;

        r = tracee_prepare_exec(t);
        if (r < 0)
                return r;

        p->code_size = ALIGN_TO(sizeof(parasite_blob), (size_t) getpagesize());
        /* Read+exec from the start and written with FOLL_FORCE: no mapping is
         * ever writable and executable, so MDWE targets work too. */
        r = remote_mmap(t, p->code_size, PROT_READ | PROT_EXEC, &p->code_addr);
        if (r < 0) {
                p->code_size = 0;
                return r;
        }
        r = remote_mmap(t, PARASITE_DATA_SIZE, PROT_READ | PROT_WRITE, &p->data_addr);
        if (r < 0)
                return r;
        r = tracee_poke(t, p->code_addr, parasite_blob, sizeof(parasite_blob));
        if (r < 0)
                return r;

        a.cmd = PARASITE_CMD_INIT;
        a.nr = init_flags;
        r = run_cmd(p, &a, NULL, 0);
        if (r == -EACCES && !(init_flags & PARASITE_INIT_NO_MEM)) {
                /* A process that is not dumpable may not open its own mem and
                 * pagemap (they belong to root then). Open them from here, which
                 * works when we run as root, and let the parasite do the rest. */
                log_debug("target %i may not open its own /proc/self/mem, opening it here", t->pid);
                r = open_proc_mem(t, p);
                if (r < 0)
                        return r;
                a = (struct parasite_args) { .cmd = PARASITE_CMD_INIT, .nr = PARASITE_INIT_NO_MEM };
                r = run_cmd(p, &a, NULL, 0);
        }
        if (r < 0)
                return log_debug_errno(r, "parasite INIT failed: %m");
        p->remote_sock = (int) a.arg;

        int32_t remote[_PARASITE_FD_MAX];
        memcpy(remote, a.fds, sizeof(remote));
        for (int i = 0; i < _PARASITE_FD_MAX; i++) {
                if (remote[i] < 0)
                        continue;
                r = getfd(t, remote[i]);
                if (r < 0)
                        break;
                p->fds[i] = r;
        }

        /* Our copies are all we need: close the target's. */
        a = (struct parasite_args) { .cmd = PARASITE_CMD_CLOSE };
        memcpy(a.fds, remote, sizeof(a.fds));
        int k = run_cmd(p, &a, NULL, 0);
        if (r < 0)
                return r;
        if (k < 0)
                return log_debug_errno(k, "closing the parasite's descriptors failed: %m");

        *ret = TAKE_PTR(p);
        return 0;
}

int parasite_madvise(Parasite *p, const struct parasite_range *ranges, size_t n, int advice,
                     size_t *ret_done) {
        size_t done = 0;
        int r = 0;

        while (done < n) {
                struct parasite_args a = { .cmd = PARASITE_CMD_MADVISE, .arg = (uint64_t) advice };
                size_t batch = MIN(n - done, (size_t) PARASITE_MAX_RANGES);

                a.nr = batch;
                r = run_cmd(p, &a, ranges + done, batch * sizeof(*ranges));
                if (r < 0) {
                        done += MIN((size_t) a.nr, batch);
                        break;
                }
                done += batch;
        }
        if (ret_done)
                *ret_done = done;
        return r;
}

int parasite_send_fd(Parasite *p, int fd, int *ret_remote_fd) {
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int))];
        } control = {};
        char byte = 0;
        struct iovec iov = { &byte, 1 };
        struct msghdr msg = {
                .msg_iov = &iov,
                .msg_iovlen = 1,
                .msg_control = &control,
                .msg_controllen = sizeof(control),
        };
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        struct parasite_args a = { .cmd = PARASITE_CMD_RECV_FD };
        int r;

        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof(int));
        if (sendmsg(p->fds[PARASITE_FD_SOCK], &msg, MSG_NOSIGNAL) < 0)
                return -errno;

        a.fds[0] = p->remote_sock;
        a.fds[1] = a.fds[2] = a.fds[3] = -1;
        r = run_cmd(p, &a, NULL, 0);
        if (r < 0)
                return r;
        *ret_remote_fd = a.fds[1];
        return 0;
}

/* Are these descriptor numbers (-1: none) free in the target's table? */
static int remote_fds_closed(Tracee *t, int a, int b) {
        const int fds[] = { a, b };

        for (size_t i = 0; i < ELEMENTSOF(fds); i++) {
                if (fds[i] < 0)
                        continue;
                int fd = (int) syscall(SYS_pidfd_getfd, t->pidfd, fds[i], 0);
                if (fd >= 0) {
                        safe_close(fd);
                        return -EBUSY;
                }
                if (errno != EBADF)
                        return -errno;
        }
        return 0;
}

int parasite_userfaultfd(Parasite *p, int dev_fd, int *ret_fd) {
        struct parasite_args a = { .cmd = PARASITE_CMD_USERFAULTFD };
        int remote_dev = -1, fd = -EBADF, r;

        if (dev_fd >= 0) {
                r = parasite_send_fd(p, dev_fd, &remote_dev);
                if (r < 0)
                        return r;
        }
        a.fds[0] = remote_dev;
        a.fds[1] = a.fds[2] = a.fds[3] = -1;
        r = run_cmd(p, &a, NULL, 0);
        if (remote_dev >= 0)
                (void) parasite_close_remote(p, remote_dev);
        if (r >= 0) {
                fd = getfd(p->tracee, a.fds[1]);
                (void) parasite_close_remote(p, a.fds[1]);
        }
        /* Both must be gone from the target's table before it can run: a
         * privileged descriptor left there is for anyone who gets at it. */
        int k = remote_fds_closed(p->tracee, remote_dev, r >= 0 ? a.fds[1] : -1);
        if (r < 0)
                return log_debug_errno(r, "creating a userfaultfd in %i failed: %m", p->tracee->pid);
        if (fd < 0)
                return fd;
        if (k < 0) {
                safe_close(fd);
                return log_debug_errno(k, "a userfaultfd descriptor stayed open in %i: %m", p->tracee->pid);
        }
        *ret_fd = fd;
        return 0;
}

int parasite_close_remote(Parasite *p, int remote_fd) {
        struct parasite_args a = { .cmd = PARASITE_CMD_CLOSE };

        a.fds[0] = remote_fd;
        a.fds[1] = a.fds[2] = a.fds[3] = -1;
        return run_cmd(p, &a, NULL, 0);
}

int parasite_cure(Parasite *p) {
        int r = 0, k;

        assert(p);

        if (p->remote_sock >= 0) {
                k = parasite_close_remote(p, p->remote_sock);
                if (k < 0 && r == 0)
                        r = k;
                p->remote_sock = -1;
        }
        if (p->code_size > 0) {
                k = remote_munmap(p->tracee, p->code_addr, p->code_size);
                if (k < 0 && r == 0)
                        r = k;
                p->code_size = 0;
        }
        if (p->data_addr != 0) {
                k = remote_munmap(p->tracee, p->data_addr, PARASITE_DATA_SIZE);
                if (k < 0 && r == 0)
                        r = k;
                p->data_addr = 0;
        }
        k = tracee_restore_exec(p->tracee);
        if (k < 0 && r == 0)
                r = k;
        if (r < 0)
                log_debug_errno(r, "cure of %i incomplete: %m", p->tracee->pid);
        return r;
}

int parasite_take_fd(Parasite *p, int which) {
        assert(which >= 0 && which < _PARASITE_FD_MAX);
        return TAKE_FD(p->fds[which]);
}

Parasite *parasite_free(Parasite *p) {
        if (!p)
                return NULL;
        if (p->tracee && (p->code_size > 0 || p->data_addr != 0 || p->tracee->exec_prepared))
                (void) parasite_cure(p);
        close_many(p->fds, _PARASITE_FD_MAX);
        return mfree(p);
}
