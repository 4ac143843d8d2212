/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * memcrctl's options. parse_argv() returns 1 to go on, 0 to exit
 * successfully (--help, --version), -EINVAL on bad usage, another -errno on
 * other failures; optind is then the index of the command.
 */

#include <stdbool.h>
#include <stdint.h>

extern const char *arg_socket;
extern bool arg_json;
extern bool arg_quiet;
extern bool arg_legend;
extern bool arg_ask_password;
extern bool arg_no_encrypt;
extern bool arg_lazy;
extern bool arg_eager;
extern uint64_t arg_timeout_msec;
extern uint64_t arg_max_frozen_sec;
extern char *arg_dump_dir;
extern const char *arg_codec;

int parse_argv(int argc, char *argv[]);
void args_free(void);
