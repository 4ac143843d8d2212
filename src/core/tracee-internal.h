/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Shared by the files of the tracee module (tracee*.c) only. */

#include <sys/ptrace.h>

#include "tracee.h"

/* EXITKILL is not set at seize time: as long as nothing of the target's
 * memory is out, our death (or a failure) must leave it running, not kill
 * it. It is armed (tracee_arm_exitkill()) just before pages are dropped. */
#define SEIZE_OPTIONS (PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACEEXEC)
#define HOLD_OPTIONS (SEIZE_OPTIONS | PTRACE_O_EXITKILL)

#define DEFAULT_OP_TIMEOUT (30 * USEC_PER_SEC)
#define MAX_SPURIOUS_STOPS 10000

int tracee_add_thread(Tracee *t, pid_t tid);
bool tracee_is_stop_signal(int sig);
bool tracee_is_fault_signal(int sig);

/* The next wait status of tid, within timeout. */
int tracee_wait_tid(pid_t tid, usec_t timeout, int *ret_status);
/* Wait for the first stop after PTRACE_INTERRUPT. A signal that is about to
 * be delivered first is delivered (it arrived before the freeze). */
int tracee_wait_initial_stop(Tracee *t, pid_t tid, usec_t deadline);
/* PTRACE_SETOPTIONS for every held thread. */
int tracee_set_options(Tracee *t, unsigned long options);
/* PTRACE_O_EXITKILL on or off for every held thread. */
int tracee_set_exitkill(Tracee *t, bool on);
/* Collect the exit of every thread of a dead target (as its tracer, we must).
 * The leader goes last: it is not reported before the others are gone. */
void tracee_reap_all(Tracee *t);
