/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Shared by the files of the tracee module (tracee*.c) only. */

#include "tracee.h"

int tracee_add_thread(Tracee *t, pid_t tid);
bool tracee_is_stop_signal(int sig);
