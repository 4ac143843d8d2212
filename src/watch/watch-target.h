/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * What a process, and those around it, are doing that stands in the way of
 * its checkpoint: sharing its memory, being traced by someone else, sleeping
 * uninterruptibly. Read from /proc (procfs.h) when a checkpoint is refused
 * or failed, to say why.
 */

#include <stddef.h>
#include <sys/types.h>

/* Another process that shares pid's memory (CLONE_VM without CLONE_THREAD:
 * a vfork child with its parent, or clone(CLONE_VM)), 0 if none. Dropping
 * the pages of one would take them from under the other, which runs on.
 * A vfork parent is fine: its child leaves the memory before long. A
 * process cannot start sharing its memory with one that exists already, so
 * looking before the checkpoint is enough. */
pid_t target_memory_shared_with(pid_t pid);

/* The first thread of pid that is traced by someone (after our own seize
 * failed, that is somebody else): its tracer, 0 if none. */
pid_t target_other_tracer(pid_t pid);

/* A thread of pid in uninterruptible sleep: its id, and where it sleeps
 * (" in WCHAN", or left as it was if the kernel does not say); 0 if none. */
pid_t target_thread_in_d_state(pid_t pid, char *wchan, size_t size);
