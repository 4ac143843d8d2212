/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * A target under a seccomp filter may refuse the system calls memcr runs
 * inside it, or be killed for them (a systemd SystemCallFilter= kills by
 * default). Before anything runs in such a target, the same sequence runs in
 * a forked copy of it, which inherits the filter, and the copy then exits.
 */

#include <stddef.h>

#include "tracee.h"

/* 0 if t's executor has no seccomp filter or the copy went through (and, if
 * only what a lazy restore needs was refused, why in lazy_reason); -EPERM
 * with the reason in reason if the filter refuses what memcr needs (the
 * target is untouched); another -errno if the probe itself failed. */
int seccomp_probe(Tracee *t, char *reason, size_t size, char *lazy_reason, size_t lazy_size);
