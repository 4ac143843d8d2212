/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * The parasite: freestanding code executed inside a frozen target by the
 * thread the host picked, one command per run (see parasite-abi.h).
 *
 * Rules for this file: no libc, no calls (every helper is always_inline, so
 * no call/ret ever touches a shadow stack), no floating point or vector
 * registers (the architecture's flags, e.g. -mgeneral-regs-only), no
 * writable globals (the code mapping is read-only). The system calls and the
 * final trap are the architecture's (arch/<cpu family>/parasite-arch.h).
 * The only system calls made are listed in SECURITY.md and
 * memcrd(8): openat, close, socketpair, madvise, recvmsg, and for
 * lazy restore ioctl (USERFAULTFD_IOC_NEW) or userfaultfd.
 */

#include <asm/unistd.h>
#include <stddef.h>
#include <stdint.h>

#include "parasite-abi.h"
#include "parasite-arch.h"

#define AT_FDCWD_ (-100)
#define O_RDONLY_ 00
#define O_RDWR_ 02
#define O_CLOEXEC_ 02000000
#define AF_UNIX_ 1
#define SOCK_SEQPACKET_ 5
#define SOCK_CLOEXEC_ 02000000
#define SOL_SOCKET_ 1
#define SCM_RIGHTS_ 1
#define MSG_CMSG_CLOEXEC_ 0x40000000
#define EINTR_ 4
#define EIO_ 5
#define EINVAL_ 22

#define always_inline inline __attribute__((always_inline))

struct k_iovec {
        void *base;
        uint64_t len;
};

struct k_msghdr {
        void *name;
        int32_t namelen;
        int32_t pad0;
        struct k_iovec *iov;
        uint64_t iovlen;
        void *control;
        uint64_t controllen;
        uint32_t flags;
        uint32_t pad1;
};

struct k_cmsg_fd {
        uint64_t len;
        int32_t level;
        int32_t type;
        int32_t fd;
        int32_t pad;
};

static always_inline long do_init(struct parasite_args *a) {
        static const char mem[] = "/proc/self/mem";
        static const char pagemap[] = "/proc/self/pagemap";
        static const char smaps[] = "/proc/self/smaps";
        uint64_t flags = a->nr;
        int32_t sv[2];
        long r;

        for (int i = 0; i < _PARASITE_FD_MAX; i++)
                a->fds[i] = -1;

        r = arch_syscall4(__NR_socketpair, AF_UNIX_, SOCK_SEQPACKET_ | SOCK_CLOEXEC_, 0, (long) sv);
        if (r < 0)
                return r;
        /* Only one end is handed to the host; the other stays with us. */
        a->fds[PARASITE_FD_SOCK] = sv[1];
        a->arg = (uint64_t) sv[0];

        if (!(flags & PARASITE_INIT_NO_MEM)) {
                r = arch_syscall4(__NR_openat, AT_FDCWD_, (long) mem, O_RDWR_ | O_CLOEXEC_, 0);
                if (r < 0)
                        goto fail;
                a->fds[PARASITE_FD_MEM] = (int32_t) r;

                r = arch_syscall4(__NR_openat, AT_FDCWD_, (long) pagemap, O_RDONLY_ | O_CLOEXEC_, 0);
                if (r < 0)
                        goto fail;
                a->fds[PARASITE_FD_PAGEMAP] = (int32_t) r;
        }

        r = arch_syscall4(__NR_openat, AT_FDCWD_, (long) smaps, O_RDONLY_ | O_CLOEXEC_, 0);
        if (r < 0)
                goto fail;
        a->fds[PARASITE_FD_SMAPS] = (int32_t) r;
        return 0;

fail:
        arch_syscall3(__NR_close, sv[0], 0, 0);
        for (int i = 0; i < _PARASITE_FD_MAX; i++)
                if (a->fds[i] >= 0) {
                        arch_syscall3(__NR_close, a->fds[i], 0, 0);
                        a->fds[i] = -1;
                }
        return r;
}

static always_inline long do_madvise(struct parasite_args *a) {
        if (a->nr > PARASITE_MAX_RANGES)
                return -EINVAL_;
        for (uint64_t i = 0; i < a->nr; i++) {
                long r = arch_syscall3(__NR_madvise, (long) a->ranges[i].start, (long) a->ranges[i].len,
                              (long) a->arg);
                if (r < 0) {
                        a->nr = i;
                        return r;
                }
        }
        return 0;
}

static always_inline long do_close(struct parasite_args *a) {
        long ret = 0;
        for (int i = 0; i < _PARASITE_FD_MAX; i++) {
                if (a->fds[i] < 0)
                        continue;
                long r = arch_syscall3(__NR_close, a->fds[i], 0, 0);
                if (r < 0 && ret == 0)
                        ret = r;
        }
        return ret;
}

static always_inline long do_recv_fd(struct parasite_args *a) {
        struct k_cmsg_fd cmsg = {};
        char byte;
        struct k_iovec iov = { .base = &byte, .len = 1 };
        struct k_msghdr msg;
        long r;

        /* Field by field: an initializer of the whole may become a call of
         * memset. */
        msg.name = NULL;
        msg.namelen = 0;
        msg.pad0 = 0;
        msg.iov = &iov;
        msg.iovlen = 1;
        msg.control = &cmsg;
        msg.controllen = sizeof(cmsg);
        msg.flags = 0;
        msg.pad1 = 0;

        r = arch_syscall3(__NR_recvmsg, a->fds[0], (long) &msg, MSG_CMSG_CLOEXEC_);
        if (r < 0)
                return r;
        if (r != 1 || msg.controllen < 20 || cmsg.level != SOL_SOCKET_ || cmsg.type != SCM_RIGHTS_)
                return -EIO_;
        a->fds[1] = cmsg.fd;
        return 0;
}

#define USERFAULTFD_IOC_NEW_ 0xaa00
#define O_NONBLOCK_ 04000

static always_inline long do_userfaultfd(struct parasite_args *a) {
        long r;

        /* Without UFFD_USER_MODE_ONLY: faults taken by the kernel on our
         * behalf (read() into a missing page) must reach the handler too. */
        if (a->fds[0] >= 0)
                r = arch_syscall3(__NR_ioctl, a->fds[0], USERFAULTFD_IOC_NEW_, O_CLOEXEC_ | O_NONBLOCK_);
        else
                r = arch_syscall3(__NR_userfaultfd, O_CLOEXEC_ | O_NONBLOCK_, 0, 0);
        if (r < 0)
                return r;
        a->fds[1] = (int32_t) r;
        return 0;
}

__attribute__((section(".text.entry"), noreturn, used, visibility("default"))) void
parasite_entry(struct parasite_args *a) {
        long r;

        if (a->magic != PARASITE_MAGIC)
                r = -EINVAL_;
        else
                switch (a->cmd) {
                case PARASITE_CMD_INIT:
                        r = do_init(a);
                        break;
                case PARASITE_CMD_MADVISE:
                        r = do_madvise(a);
                        break;
                case PARASITE_CMD_CLOSE:
                        r = do_close(a);
                        break;
                case PARASITE_CMD_RECV_FD:
                        r = do_recv_fd(a);
                        break;
                case PARASITE_CMD_USERFAULTFD:
                        r = do_userfaultfd(a);
                        break;
                default:
                        r = -EINVAL_;
                }
        a->ret = r;

        arch_trap();
}
