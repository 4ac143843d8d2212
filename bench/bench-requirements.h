/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The requirements memcr checks itself against, each met or not by the
 * figures of this run: printed, or with --json one object each.
 */

#include "bench.h"

void check_requirements(const Bench *b);
