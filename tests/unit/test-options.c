/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <errno.h>
#include <stdio.h>

#include "config.h"
#include "macro.h"
#include "options.h"

enum {
        ARG_NAME = OPTION_FIRST,
        ARG_FLAG,
        ARG_BAD,
};

static unsigned n_help;
static char seen[256];

static void help(void) {
        n_help++;
}

/* Records "c=value;" per option; --bad fails with -ERANGE. */
static int parse(int c, const char *value) {
        size_t l = strlen(seen);

        if (c == ARG_BAD)
                return -ERANGE;
        snprintf(seen + l, sizeof(seen) - l, "%i=%s;", c, value ?: "-");
        return 0;
}

static const struct option options[] = {
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, OPTION_VERSION },
        { "name", required_argument, NULL, ARG_NAME },
        { "flag", no_argument, NULL, ARG_FLAG },
        { "bad", no_argument, NULL, ARG_BAD },
        {}
};

static const Options o = { "prog", "hq", options, help, parse };

static int run(char **argv) {
        int argc = 0;

        while (argv[argc])
                argc++;
        optind = 0; /* getopt_long() starts afresh */
        opterr = 0;
        return options_parse(&o, argc, argv);
}

Test(options, hands_over_the_programs_options_and_leaves_the_arguments) {
        char *argv[] = { "prog", "--name=x", "-q", "cmd", "--flag", "arg", "--name=y", NULL };
        char expected[64];

        cr_assert_eq(run(argv), 1);
        snprintf(expected, sizeof(expected), "%i=x;%i=-;%i=-;%i=y;", ARG_NAME, 'q', ARG_FLAG, ARG_NAME);
        cr_assert_str_eq(seen, expected);
        /* getopt_long() moved the arguments behind the options */
        cr_assert_eq(optind, 5);
        cr_assert_str_eq(argv[5], "cmd");
        cr_assert_str_eq(argv[6], "arg");
        cr_assert_eq(n_help, 0);
}

Test(options, help_is_shown_and_ends_the_parsing) {
        char *argv[] = { "prog", "--flag", "--help", "--name=x", NULL };
        char *short_argv[] = { "prog", "-h", NULL };
        char expected[16];

        cr_assert_eq(run(argv), 0);
        cr_assert_eq(n_help, 1);
        snprintf(expected, sizeof(expected), "%i=-;", ARG_FLAG);
        cr_assert_str_eq(seen, expected);
        cr_assert_eq(run(short_argv), 0);
        cr_assert_eq(n_help, 2);
}

Test(options, version_prints_the_program_and_its_version, .init = cr_redirect_stdout) {
        char *argv[] = { "prog", "--version", "--flag", NULL };

        cr_assert_eq(run(argv), 0);
        fflush(stdout);
        cr_assert_stdout_eq_str("prog " VERSION "\n");
        cr_assert_str_empty(seen);
}

Test(options, unknown_options_missing_arguments_and_refused_values_fail) {
        char *unknown[] = { "prog", "--nope", NULL };
        char *missing[] = { "prog", "--name", NULL };
        char *refused[] = { "prog", "--flag", "--bad", "--flag", NULL };
        char expected[16];

        cr_assert_eq(run(unknown), -EINVAL);
        cr_assert_eq(run(missing), -EINVAL);
        cr_assert_eq(run(refused), -ERANGE);
        snprintf(expected, sizeof(expected), "%i=-;", ARG_FLAG);
        cr_assert_str_eq(seen, expected);
        cr_assert_eq(n_help, 0);
}
