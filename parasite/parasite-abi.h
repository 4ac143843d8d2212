/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The contract between the host (watcher) and the parasite blob that runs
 * inside a frozen target. Both sides include this header: the parasite is
 * built freestanding, so only fixed-width types from <stdint.h> (which is
 * freestanding) are used, and every structure has an explicit layout.
 *
 * Memory layout inside the target while infected (two private anonymous
 * mappings, created by remote mmap() calls and removed on cure):
 *
 *   code mapping (PROT_READ|PROT_EXEC, written with PTRACE_POKEDATA):
 *     +0                  parasite_entry (asserted by the linker script)
 *     ...                 rest of .text and .rodata
 *
 *   data mapping (PROT_READ|PROT_WRITE), PARASITE_DATA_SIZE bytes:
 *     +0                  struct parasite_args (command block)
 *     +sizeof(args)       command payload (ranges), up to PARASITE_ARGS_SIZE
 *     +PARASITE_ARGS_SIZE stack, PARASITE_STACK_SIZE bytes, growing down
 *                         from the end of the mapping
 *
 * The host starts a command by writing the command block, pointing the
 * executing thread's program counter at the code mapping, its first argument
 * register at the data mapping and its stack pointer at the top of the stack
 * (arch_set_call()), and resuming it. The parasite performs the command,
 * stores the result in the block and executes the breakpoint instruction
 * (arch_trap(), x86_64: int3); the host sees the SIGTRAP stop and reads the
 * block back. The parasite never returns and
 * never uses the target's own stack.
 */

#include <stdint.h>

#define PARASITE_MAGIC 0x4d435250u /* "PRCM" */
#define PARASITE_ABI_VERSION 1u

#define PARASITE_ARGS_SIZE (64u * 1024u)
#define PARASITE_STACK_SIZE (16u * 1024u)
#define PARASITE_DATA_SIZE (PARASITE_ARGS_SIZE + PARASITE_STACK_SIZE)

enum parasite_cmd {
        /* Create a socketpair and open /proc/self/{mem,pagemap,smaps}; return
         * the descriptor numbers in fds[] (-1 for what was not asked for).
         * nr holds PARASITE_INIT_* flags. On failure nothing stays open. */
        PARASITE_CMD_INIT = 1,
        /* madvise() each range in ranges[0..nr) with the advice in arg;
         * on failure nr is set to the index of the failing range. */
        PARASITE_CMD_MADVISE = 2,
        /* close() every non-negative descriptor in fds[]. */
        PARASITE_CMD_CLOSE = 3,
        /* Receive one descriptor (SCM_RIGHTS) on fds[0]; return it in fds[1]. */
        PARASITE_CMD_RECV_FD = 4,
        /* Create a userfaultfd for this process: USERFAULTFD_IOC_NEW on the
         * /dev/userfaultfd descriptor in fds[0], or, if fds[0] < 0, the
         * userfaultfd(2) system call. Returns the new descriptor in fds[1]. */
        PARASITE_CMD_USERFAULTFD = 6,
};

enum {
        /* Do not open mem and pagemap: the target is not dumpable, so it may
         * not open them itself; the host opens them instead. */
        PARASITE_INIT_NO_MEM = 1u << 0,
};

enum {
        PARASITE_FD_SOCK = 0,
        PARASITE_FD_MEM = 1,
        PARASITE_FD_PAGEMAP = 2,
        PARASITE_FD_SMAPS = 3,
        _PARASITE_FD_MAX = 4,
};

struct parasite_range {
        uint64_t start;
        uint64_t len;
};

struct parasite_args {
        uint32_t magic;
        uint32_t cmd;
        int64_t ret; /* 0 or -errno, written by the parasite */
        uint64_t nr; /* number of ranges in, failing index out */
        uint64_t arg;
        int32_t fds[_PARASITE_FD_MAX];
        uint64_t reserved[4];
        struct parasite_range ranges[];
};

#define PARASITE_MAX_RANGES                                                                        \
        ((PARASITE_ARGS_SIZE - sizeof(struct parasite_args)) / sizeof(struct parasite_range))

_Static_assert(sizeof(struct parasite_args) == 80, "parasite_args layout changed");
_Static_assert(sizeof(struct parasite_range) == 16, "parasite_range layout changed");
