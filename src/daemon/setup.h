/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * What memcrd sets up before it serves: its socket (from systemd, or bound
 * itself), its directories, its descriptor limit, and how watchers are
 * started. Done once, at start-up, while it may still do more than ptrace.
 */

#include <sys/resource.h>

#include "manager.h"

/* Take all the hard limit allows; *ret_orig is the limit we were started with. */
void setup_raise_nofile(struct rlimit *ret_orig);
/* Warn when the limits may need more descriptors than memcrd may open. */
void setup_check_nofile(const Manager *m);
int setup_listen(Manager *m, const ManagerConfig *cfg);
int setup_directories(Manager *m, const ManagerConfig *cfg);
/* How watchers are started, and which programs are memcr's own. */
int setup_watchers(Manager *m, const ManagerConfig *cfg, const struct rlimit *nofile);
