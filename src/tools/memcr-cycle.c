/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * memcr-cycle: drive the engine directly, without the daemon. Checkpoints a
 * process, holds it frozen, restores it; prints what happened. An internal
 * tool for tests, benchmarks and the demo, not the user interface
 * (that is memcrctl).
 */

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "memcr.h"
#include "options.h"
#include "parse-util.h"

static const char *arg_dump_dir = "/var/tmp";
static Codec arg_codec = CODEC_NONE;
static Protection arg_protection = PROTECTION_ENCRYPT;
static unsigned arg_cycles = 1;
static double arg_hold = 0;
static bool arg_wait_stdin = false;
static PageScanMode arg_scan = PAGESCAN_AUTO;
static unsigned arg_workers = 0;

static void help(void) {
        printf("memcr-cycle [OPTIONS] PID\n\n"
               "Checkpoint PID, hold it frozen, restore it.\n\n"
               "  --dump-dir=DIR     directory for the (unnamed) dump file [/var/tmp]\n"
               "  --codec=CODEC      none, lz4 or zstd [none]\n"
               "  --no-encrypt       store pages in the clear (still authenticated)\n"
               "  --cycles=N         repeat N times [1]\n"
               "  --hold=SECONDS     stay frozen this long [0]\n"
               "  --wait-stdin       stay frozen until a line is read from stdin\n"
               "  --pagemap          find pages by reading pagemap (no PAGEMAP_SCAN)\n"
               "  --workers=N        transfer threads [one per CPU, at most 4]\n"
               "  --debug            debug logging\n");
}

enum {
        ARG_DUMP_DIR = OPTION_FIRST,
        ARG_CODEC,
        ARG_NO_ENCRYPT,
        ARG_CYCLES,
        ARG_HOLD,
        ARG_WAIT_STDIN,
        ARG_PAGEMAP,
        ARG_WORKERS,
        ARG_DEBUG,
};

/* A count, read leniently (what is no number counts as 0): a tool for tests. */
static unsigned parse_count(const char *s) {
        return (unsigned) strtoul(s, NULL, 10);
}

static int parse_option(int c, const char *value) {
        int r;

        switch (c) {
        case ARG_DUMP_DIR:
                arg_dump_dir = value;
                break;
        case ARG_CODEC:
                r = codec_from_string(value);
                if (r < 0 || !codec_supported((Codec) r)) {
                        log_error("unknown or unsupported codec: %s", value);
                        return -EINVAL;
                }
                arg_codec = (Codec) r;
                break;
        case ARG_NO_ENCRYPT:
                arg_protection = PROTECTION_AUTH;
                break;
        case ARG_CYCLES:
                arg_cycles = parse_count(value);
                break;
        case ARG_HOLD:
                arg_hold = strtod(value, NULL);
                break;
        case ARG_WAIT_STDIN:
                arg_wait_stdin = true;
                break;
        case ARG_PAGEMAP:
                arg_scan = PAGESCAN_PAGEMAP;
                break;
        case ARG_WORKERS:
                arg_workers = parse_count(value);
                break;
        case ARG_DEBUG:
                log_set_max_level(LOG_DEBUG);
                break;
        default:
                return -EINVAL;
        }
        return 0;
}

/* As options_parse(). */
static int parse_argv(int argc, char *argv[], pid_t *ret_pid) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "dump-dir", required_argument, NULL, ARG_DUMP_DIR },
                { "codec", required_argument, NULL, ARG_CODEC },
                { "no-encrypt", no_argument, NULL, ARG_NO_ENCRYPT },
                { "cycles", required_argument, NULL, ARG_CYCLES },
                { "hold", required_argument, NULL, ARG_HOLD },
                { "wait-stdin", no_argument, NULL, ARG_WAIT_STDIN },
                { "pagemap", no_argument, NULL, ARG_PAGEMAP },
                { "workers", required_argument, NULL, ARG_WORKERS },
                { "debug", no_argument, NULL, ARG_DEBUG },
                {}
        };
        static const Options o = { "memcr-cycle", "h", options, help, parse_option };
        int r;

        r = options_parse(&o, argc, argv);
        if (r <= 0)
                return r;
        if (optind + 1 != argc) {
                log_error("expected exactly one PID");
                return -EINVAL;
        }
        if (pid_from_string(argv[optind], ret_pid) < 0) {
                log_error("invalid PID: %s", argv[optind]);
                return -EINVAL;
        }
        return 1;
}

int main(int argc, char *argv[]) {
        pid_t pid;
        _cleanup_close_ int pidfd = -EBADF;
        int r;

        log_set_ident("memcr-cycle");
        log_set_target(LOG_TARGET_STDERR);
        r = parse_argv(argc, argv, &pid);
        if (r <= 0)
                return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;

        pidfd = (int) syscall(SYS_pidfd_open, pid, 0);
        if (pidfd < 0) {
                log_error_errno(-errno, "cannot open process %i: %m", pid);
                return EXIT_FAILURE;
        }

        for (unsigned i = 0; i < arg_cycles; i++) {
                _cleanup_frozen_ Frozen *f = NULL;
                CheckpointOptions o = CHECKPOINT_OPTIONS_DEFAULT;
                RestoreStats rs = {};

                o.dump_dir = arg_dump_dir;
                o.codec = arg_codec;
                o.protection = arg_protection;
                o.scan_mode = arg_scan;
                o.workers = arg_workers;

                r = memcr_checkpoint(pid, pidfd, &o, &f);
                if (r < 0) {
                        log_error_errno(r, "checkpoint of %i failed: %m", pid);
                        return EXIT_FAILURE;
                }
                printf("checkpoint pid=%i cycle=%u threads=%" PRIu64 " rss_before=%" PRIu64
                       " rss_after=%" PRIu64 " dumped=%" PRIu64 " dump_file=%" PRIu64
                       " regions=%" PRIu64 " ranges=%" PRIu64 " thp_kb_before=%" PRIu64
                       " thp_kb_after=%" PRIu64 " usec=%" PRIu64 "\n",
                       pid, i + 1, f->stats.n_threads, f->stats.rss_before, f->stats.rss_after,
                       f->stats.dumped_bytes, f->stats.dump_file_bytes, f->stats.n_regions,
                       f->stats.n_ranges, f->stats.thp_kb_before, f->stats.thp_kb_after,
                       f->stats.duration);
                fflush(stdout);

                if (arg_hold > 0)
                        usleep_safe((usec_t) (arg_hold * 1e6));
                if (arg_wait_stdin) {
                        char line[256];
                        if (!fgets(line, sizeof(line), stdin))
                                log_info("end of input, restoring");
                }

                r = memcr_restore(f, NULL, NULL, &rs);
                if (r < 0) {
                        log_error_errno(r, "restore of %i failed: %m", pid);
                        return EXIT_FAILURE;
                }
                printf("restore pid=%i cycle=%u restored=%" PRIu64 " rss_after=%" PRIu64
                       " usec=%" PRIu64 "\n",
                       pid, i + 1, rs.restored_bytes, rs.rss_after, rs.duration);
                fflush(stdout);
        }
        return EXIT_SUCCESS;
}
