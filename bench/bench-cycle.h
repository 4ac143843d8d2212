/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * One run: a target checkpointed, held and restored through memcrd, with
 * --lazy a lazy restore of it after that, with --compare the same kind of
 * target through another tool; the target verifies its memory at the end.
 */

#include "bench.h"

int run_cycle(Bench *b, const Combo *c, Run *ret);
