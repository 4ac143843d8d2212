/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <stdio.h>

#include "config.h"
#include "options.h"

int options_parse(const Options *o, int argc, char *argv[]) {
        int c, r;

        while ((c = getopt_long(argc, argv, o->short_options, o->options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        o->help();
                        return 0;
                case OPTION_VERSION:
                        printf("%s %s\n", o->program, VERSION);
                        return 0;
                case '?':
                        return -EINVAL;
                default:
                        r = o->parse(c, optarg);
                        if (r < 0)
                                return r;
                }
        return 1;
}
