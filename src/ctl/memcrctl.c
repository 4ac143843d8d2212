/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * memcrctl: the command line interface to memcrd.
 *
 * Exit status:
 *   0  success
 *   1  the operation failed: any error not listed below (including a target
 *      that was killed, a request memcrd refused as invalid, an unreadable
 *      reply)
 *   2  invalid usage: unknown option or command, malformed PID or value
 *   3  permission denied
 *   4  no such process
 *   5  the process is not frozen
 *   6  the process is already frozen
 *   7  memcrd cannot be reached: connecting failed or the connection was lost
 *   8  timed out
 * With several PIDs each one is tried in turn; the status is that of the
 * first failure.
 *
 * Here: the command line to a command. args.c: the options; verbs.c: the
 * commands; show.c: what they print; errors.c: exit status and error text;
 * format.c, parse.c: values shown and read; polkit-agent.c: a password agent.
 */

#include <errno.h>
#include <langinfo.h>
#include <locale.h>
#include <stdio.h>
#include <unistd.h>

#include "args.h"
#include "errors.h"
#include "log.h"
#include "macro.h"
#include "polkit-agent.h"
#include "show.h"
#include "verbs.h"

static int run(int argc, char *argv[]) {
        const char *verb;
        char **args;
        int n_args, r;

        r = parse_argv(argc, argv);
        if (r == -EINVAL)
                return MEMCRCTL_EXIT_USAGE;
        if (r < 0)
                return MEMCRCTL_EXIT_FAILED;
        if (r == 0)
                return MEMCRCTL_EXIT_SUCCESS;

        if (optind < argc) {
                verb = argv[optind];
                n_args = argc - optind - 1;
                args = argv + optind + 1;
        } else {
                verb = "list";
                n_args = 0;
                args = argv + argc;
        }

        if (streq(verb, "checkpoint"))
                return verb_pids(OP_CHECKPOINT, n_args, args);
        if (streq(verb, "restore"))
                return verb_pids(OP_RESTORE, n_args, args);
        if (streq(verb, "status"))
                return verb_pids(OP_STATUS, n_args, args);
        if (streq(verb, "list"))
                return verb_list(n_args, args);
        if (streq(verb, "version"))
                return verb_version(n_args, args);

        _cleanup_free_ char *e = escape_or_oom(verb);
        log_error("Unknown command '%s'. See '%s --help'.", e, program_invocation_short_name);
        return MEMCRCTL_EXIT_USAGE;
}

int main(int argc, char *argv[]) {
        int code;

        /* Only the character set: numbers are parsed and printed the C way. */
        (void) setlocale(LC_CTYPE, "");
        show_set_utf8(streq(nl_langinfo(CODESET), "UTF-8"));

        log_set_target(LOG_TARGET_STDERR);
        log_parse_environment();

        code = run(argc, argv);

        polkit_agent_close();
        args_free();
        if (fflush(stdout) != 0 && code == 0) {
                log_error("Failed to write output.");
                code = MEMCRCTL_EXIT_FAILED;
        }
        return code;
}
