/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "config.h"
#include "log.h"
#include "macro.h"
#include "options.h"
#include "parse.h"
#include "protocol.h"

const char *arg_socket = NULL;
bool arg_json = false;
bool arg_quiet = false;
bool arg_legend = true;
bool arg_ask_password = false;
bool arg_no_encrypt = false;
bool arg_lazy = false;
bool arg_eager = false;
uint64_t arg_timeout_msec = 0;
uint64_t arg_max_frozen_sec = 0;
char *arg_dump_dir = NULL;
const char *arg_codec = NULL;

static void help(void) {
        printf("%1$s [OPTIONS...] COMMAND ...\n\n"
               "Checkpoint the memory of processes to disk and restore it, through memcrd.\n\n"
               "Commands:\n"
               "  checkpoint PID...      Freeze processes and move their memory into dumps\n"
               "  restore PID...         Bring the memory back and let the processes run\n"
               "  list                   List checkpointed processes (the default)\n"
               "  status PID...          Show details about checkpointed processes\n"
               "  version                Show the versions of memcrctl and memcrd\n\n"
               "Options:\n"
               "  -h --help              Show this help\n"
               "     --version           Show the version of memcrctl\n"
               "     --socket=PATH       memcrd's socket [%2$s]\n"
               "     --json              Print JSON: an object per PID, an array for list\n"
               "  -q --quiet             Print nothing but errors\n"
               "     --timeout=SEC       Time limit of each request (fractions allowed;\n"
               "                         0: memcrd's default)\n"
               "     --max-frozen=SEC    Restore automatically after SEC seconds (checkpoint)\n"
               "     --dump-dir=DIR      Directory for the dumps (checkpoint)\n"
               "     --compress=CODEC    Compress dumps: none, lz4, zstd (checkpoint)\n"
               "     --no-encrypt        Authenticate dumps but do not encrypt them (checkpoint)\n"
               "     --lazy              Resume at once and stream memory back behind (restore;\n"
               "                         with checkpoint: make it this process's default)\n"
               "     --eager             Write all memory back before resuming (restore)\n"
               "     --ask-password      Let authorization ask for a password\n"
               "     --no-legend         Print no column headers and no footer (list)\n\n"
               "Exit status:\n"
               "  0 success               5 process not frozen\n"
               "  1 operation failed      6 process already frozen\n"
               "  2 invalid usage         7 cannot reach memcrd\n"
               "  3 permission denied     8 timed out\n"
               "  4 no such process\n"
               "With several PIDs, each is tried; the status is that of the first failure.\n",
               program_invocation_short_name, MEMCR_SOCKET_PATH);
}

/* --NAME=VALUE, seconds read by parse() into *ret: at most max, MEMCR_MAX_SECONDS in the unit of *ret. */
static int parse_seconds_option(const char *name, const char *value, const char *example,
                                int (*parse)(const char *s, uint64_t *ret), uint64_t max, uint64_t *ret) {
        if (parse(value, ret) < 0) {
                log_error("Invalid --%s= value '%s': expected seconds, e.g. %s.", name, value, example);
                return -EINVAL;
        }
        if (*ret > max) {
                log_error("Invalid --%s= value '%s': at most %" PRIu64 " seconds (10 years).", name, value,
                          MEMCR_MAX_SECONDS);
                return -EINVAL;
        }
        return 0;
}

static int parse_dump_dir(const char *value) {
        char *p;

        if (value[0] == '\0') {
                log_error("--dump-dir= needs a directory.");
                return -EINVAL;
        }
        /* memcrd resolves it, not in our working directory: make it absolute. */
        if (value[0] == '/')
                p = strdup(value);
        else {
                _cleanup_free_ char *cwd = get_current_dir_name();
                if (!cwd)
                        return log_error_errno(-errno, "Failed to get the working directory: %m");
                if (asprintf(&p, "%s/%s", cwd, value) < 0)
                        p = NULL;
        }
        if (!p) {
                log_error("Out of memory.");
                return -ENOMEM;
        }
        free(arg_dump_dir);
        arg_dump_dir = p;
        return 0;
}

static int parse_compress(const char *value) {
        if (!streq(value, "none") && !streq(value, "lz4") && !streq(value, "zstd")) {
                log_error("Invalid --compress= value '%s': expected none, lz4 or zstd.", value);
                return -EINVAL;
        }
        arg_codec = value;
        return 0;
}

enum {
        ARG_SOCKET = OPTION_FIRST,
        ARG_JSON,
        ARG_TIMEOUT,
        ARG_MAX_FROZEN,
        ARG_DUMP_DIR,
        ARG_COMPRESS,
        ARG_NO_ENCRYPT,
        ARG_LAZY,
        ARG_EAGER,
        ARG_ASK_PASSWORD,
        ARG_NO_LEGEND,
};

static int parse_option(int c, const char *value) {
        switch (c) {
        case ARG_SOCKET:
                if (value[0] == '\0') {
                        log_error("--socket= needs a path.");
                        return -EINVAL;
                }
                arg_socket = value;
                break;
        case ARG_JSON:
                arg_json = true;
                break;
        case 'q':
                arg_quiet = true;
                break;
        case ARG_TIMEOUT:
                return parse_seconds_option("timeout", value, "30 or 2.5", parse_seconds_to_msec,
                                            MEMCR_MAX_TIMEOUT_MSEC, &arg_timeout_msec);
        case ARG_MAX_FROZEN:
                return parse_seconds_option("max-frozen", value, "3600", parse_seconds_to_sec, MEMCR_MAX_FROZEN_SEC,
                                            &arg_max_frozen_sec);
        case ARG_DUMP_DIR:
                return parse_dump_dir(value);
        case ARG_COMPRESS:
                return parse_compress(value);
        case ARG_NO_ENCRYPT:
                arg_no_encrypt = true;
                break;
        case ARG_LAZY:
                arg_lazy = true;
                break;
        case ARG_EAGER:
                arg_eager = true;
                break;
        case ARG_ASK_PASSWORD:
                arg_ask_password = true;
                break;
        case ARG_NO_LEGEND:
                arg_legend = false;
                break;
        default:
                assert(false);
                return -EINVAL;
        }
        return 0;
}

int parse_argv(int argc, char *argv[]) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, OPTION_VERSION },
                { "socket", required_argument, NULL, ARG_SOCKET },
                { "json", no_argument, NULL, ARG_JSON },
                { "quiet", no_argument, NULL, 'q' },
                { "timeout", required_argument, NULL, ARG_TIMEOUT },
                { "max-frozen", required_argument, NULL, ARG_MAX_FROZEN },
                { "dump-dir", required_argument, NULL, ARG_DUMP_DIR },
                { "compress", required_argument, NULL, ARG_COMPRESS },
                { "no-encrypt", no_argument, NULL, ARG_NO_ENCRYPT },
                { "lazy", no_argument, NULL, ARG_LAZY },
                { "eager", no_argument, NULL, ARG_EAGER },
                { "ask-password", no_argument, NULL, ARG_ASK_PASSWORD },
                { "no-legend", no_argument, NULL, ARG_NO_LEGEND },
                {}
        };
        static const Options o = { "memcrctl", "hq", options, help, parse_option };
        int r;

        r = options_parse(&o, argc, argv);
        if (r <= 0)
                return r;
        if (arg_lazy && arg_eager) {
                log_error("--lazy and --eager contradict each other.");
                return -EINVAL;
        }
        return 1;
}

void args_free(void) {
        arg_dump_dir = mfree(arg_dump_dir);
}
