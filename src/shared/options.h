/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The command line of memcr's programs: getopt_long() over argv, -h/--help
 * and --version answered here, every other option handed to the program.
 */

#include <getopt.h>

/* The value of --version in an option table; a program's own long options
 * are numbered from OPTION_FIRST. */
enum {
        OPTION_VERSION = 0x100,
        OPTION_FIRST,
};

typedef struct Options {
        const char *program;       /* --version prints "PROGRAM VERSION" */
        const char *short_options; /* 'h' and the program's own */
        const struct option *options;
        void (*help)(void);
        /* One of the program's own options, value its argument (or NULL):
         * 0, or < 0 to stop (having said why). */
        int (*parse)(int c, const char *value);
} Options;

/* 1 to go on with the arguments from optind on, 0 after --help or --version
 * (done: exit successfully), -EINVAL for an unknown option or a missing
 * argument (getopt_long() said which), or what parse() returned. */
int options_parse(const Options *o, int argc, char *argv[]);
