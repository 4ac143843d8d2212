/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * A seized process: every thread attached with PTRACE_SEIZE and held in a
 * ptrace stop, one of them (the executor) usable to run system calls and
 * code inside the target.
 *
 * State of the executor between calls: its original registers, extended
 * state (arch_ext_save(): e.g. vector registers, a shadow stack pointer) and
 * signal mask are saved by
 * tracee_prepare_exec(); while it runs our code every signal is blocked
 * (PTRACE_SETSIGMASK), so nothing is delivered into half-modified state.
 * tracee_restore_exec() puts everything back and leaves the thread in a stop
 * inside the kernel's signal path, so that when it is finally released an
 * interrupted system call restarts (or returns EINTR) exactly as it would
 * have without us, and signals that arrived meanwhile are delivered then.
 */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "arch.h"
#include "time-util.h"

typedef struct TraceeThread {
        pid_t tid;
        bool stopped; /* seen in its first ptrace stop */
        bool gone;    /* exited while we held it, or released */
        bool reaped;  /* its exit was collected, or it was let go while followed (not ours to collect) */
        bool leader;  /* followed: leads its thread group (collected after the others) */
        bool vforked; /* followed: a process of its own that shares its parent's address
                       * space until it runs a new program or exits (vfork(), posix_spawn()) */
        void *tag;    /* followed: the caller's, inherited by the tasks it creates */
} TraceeThread;

typedef struct Tracee {
        pid_t pid;
        int pidfd; /* not owned */

        TraceeThread *threads;
        size_t n_threads;

        usec_t op_timeout; /* for each stop we wait for */

        /* Executor thread. */
        size_t exec;
        bool exec_prepared;
        bool exec_running_ours; /* registers currently hold our state */
        bool exec_in_syscall_stop;
        ArchRegs regs;
        ArchExtState ext;
        uint64_t sigmask;
        uint64_t syscall_ip;
        bool group_stopped; /* a stop signal took effect while we held it */
        bool exitkill;      /* its memory is out: our death must kill it */
        bool forking;       /* tracee_fork() under way */
        pid_t fork_child;
        int own_pidfd;      /* pidfd we opened ourselves (tracee_adopt_child()), or -EBADF */
} Tracee;

/* Seize all threads of pid (held by pidfd, which must still refer to the
 * same process afterwards), waiting up to stop_timeout for each to stop. */
int tracee_seize(pid_t pid, int pidfd, usec_t stop_timeout, Tracee **ret);

/* The rseq area registered by thread tid: 1 and its address (and the
 * signature of abort handlers), 0 if it has none. */
int tracee_thread_rseq(pid_t tid, uint64_t *ret_area, uint32_t *ret_signature);

/* From now on our death kills the target (its memory is about to go out). */
int tracee_arm_exitkill(Tracee *t);

/* Release every thread (after tracee_restore_exec() if the executor was used). */
int tracee_detach(Tracee *t);

/* Kill the target (fail-safe): SIGKILL through the pidfd, or, without the
 * right to signal it, by making it send SIGKILL to itself. Waits for it. */
int tracee_kill(Tracee *t);

/* The target has exited (or was killed), possibly with threads not yet
 * collected by us. */
bool tracee_is_dead(Tracee *t);

Tracee *tracee_free(Tracee *t);
static inline void tracee_freep(Tracee **t) {
        if (*t)
                tracee_free(*t);
}
#define _cleanup_tracee_ __attribute__((cleanup(tracee_freep)))

int tracee_prepare_exec(Tracee *t);
int tracee_restore_exec(Tracee *t);

/* Run one system call in the target; *ret gets the raw return value
 * (-errno on failure, as the kernel returns it). */
int tracee_syscall(Tracee *t, long nr, const uint64_t args[6], int64_t *ret);

/* Run code at ip as a function of arg on the stack ending at stack_top
 * (arch_set_call()) until it executes the breakpoint instruction at an
 * address inside [ip_lo, ip_hi). */
int tracee_run(Tracee *t, uint64_t ip, uint64_t arg, uint64_t stack_top, uint64_t ip_lo, uint64_t ip_hi);

/* Make the target fork (its executor, prepared) a child traced by us and held
 * in a stop; see tracee_adopt_child(). */
int tracee_fork(Tracee *t, pid_t *ret_child);
/* Take over such a child as a Tracee of its own (on failure it is killed). */
int tracee_adopt_child(pid_t child, Tracee **ret);
/* Make it exit (exit_group(0), which no seccomp filter refuses), or kill it. */
int tracee_exit(Tracee *t);

/* Read/write target memory through ptrace (no /proc access needed). */
int tracee_poke(Tracee *t, uint64_t addr, const void *buf, size_t len);
int tracee_peek(Tracee *t, uint64_t addr, void *buf, size_t len);

/* Following the target while it runs (lazy restore): every thread, and
 * every task they create, stays traced and dies with us (PTRACE_O_EXITKILL);
 * signals pass through and group stops stay in effect. Start: every held
 * thread gets tag and runs. */
int tracee_follow_start(Tracee *t, void *tag);

typedef enum TraceeFollowEvent {
        TRACEE_FOLLOW_EXIT,   /* th ended; status as waitpid() reports it */
        TRACEE_FOLLOW_FORK,   /* th is a new process, forked (tag: its parent's) */
        TRACEE_FOLLOW_THREAD, /* th is a new thread, or vfork()ed (shares the address space) */
        TRACEE_FOLLOW_EXEC,   /* th runs a new program (a vforked one: in an address space
                               * of its own from now on, its parent's stays) */
} TraceeFollowEvent;

typedef void (*tracee_follow_t)(Tracee *t, TraceeThread *th, TraceeFollowEvent ev, int status, void *userdata);

/* Collect what every followed task reports (without waiting), keep them
 * running, and tell cb what happened. */
void tracee_follow(Tracee *t, tracee_follow_t cb, void *userdata);

/* Let one followed task go (from a stop, passing on a signal it was about to
 * get). */
void tracee_follow_release(Tracee *t, TraceeThread *th);

/* Kill every followed task and collect it. */
void tracee_follow_kill(Tracee *t);

/* The registers of held thread i. */
int tracee_thread_regs(const Tracee *t, size_t i, ArchRegs *ret);

/* Is this tid one of ours? */
bool tracee_has_thread(const Tracee *t, pid_t tid);

