/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "config.h"
#include "errors.h"
#include "format.h"
#include "log.h"
#include "macro.h"
#include "memcr-client.h"
#include "parse-util.h"
#include "polkit-agent.h"
#include "show.h"
#include "verbs.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(MemcrClient *, memcr_client_free);

static const char *const op_verb[] = {
        [OP_CHECKPOINT] = "checkpoint",
        [OP_RESTORE] = "restore",
        [OP_STATUS] = "get status of",
};

static const char *const op_progress[] = {
        [OP_CHECKPOINT] = "Checkpointing",
        [OP_RESTORE] = "Restoring",
        [OP_STATUS] = "Querying",
};

typedef struct Progress {
        Operation op;
        pid_t pid;
        bool shown;
} Progress;

static void progress_draw(uint64_t done, uint64_t total, void *userdata) {
        Progress *p = userdata;
        char a[FORMAT_BYTES_MAX], b[FORMAT_BYTES_MAX];

        if (total > 0) {
                unsigned percent = done >= total ? 100 : (unsigned) ((double) done * 100.0 / (double) total);
                fprintf(stderr, "\r%s %i: %u%% (%s of %s)\033[K", op_progress[p->op], (int) p->pid,
                        percent, format_bytes(a, sizeof(a), done), format_bytes(b, sizeof(b), total));
        } else
                fprintf(stderr, "\r%s %i: %s\033[K", op_progress[p->op], (int) p->pid,
                        format_bytes(a, sizeof(a), done));
        p->shown = true;
}

static void progress_clear(Progress *p) {
        if (!p->shown)
                return;
        fputs("\r\033[K", stderr);
        p->shown = false;
}

static void ask_password_agent_open(void) {
        int r;

        if (!arg_ask_password)
                return;
        r = polkit_agent_open();
        if (r < 0)
                log_warning_errno(r, "Failed to start a polkit agent, continuing without: %m");
}

/* 0 or the exit status. */
static int connect_daemon(MemcrClient **ret) {
        int r;

        r = memcr_client_connect(arg_socket, ret);
        if (r < 0) {
                log_error_errno(r, "Failed to connect to memcrd at %s: %m",
                                arg_socket ?: MEMCR_SOCKET_PATH);
                return MEMCRCTL_EXIT_UNREACHABLE;
        }
        return 0;
}

/* For a command that takes no arguments: 0 and a connection, or the exit
 * status. */
static int connect_daemon_no_args(const char *verb, int argc, MemcrClient **ret) {
        if (argc > 0) {
                log_error("Command '%s' takes no arguments.", verb);
                return MEMCRCTL_EXIT_USAGE;
        }
        return connect_daemon(ret);
}

/* Report a request that got no reply; returns the exit status. */
static int report_transport_failure(const char *what, pid_t pid, int r) {
        int code = exit_code_from_errno(r);

        if (errno_is_disconnect(r))
                log_error_errno(r, "Failed to %s: lost the connection to memcrd (%m)", what);
        else if (r == -EBADMSG || r == -EPROTONOSUPPORT || r == -EMSGSIZE)
                log_error_errno(r, "Failed to %s: unreadable reply from memcrd (%m)", what);
        else
                log_error_errno(r, "Failed to %s: %m", what);

        if (arg_json && pid > 0)
                json_write_failure(pid, code == MEMCRCTL_EXIT_UNREACHABLE ? "unreachable" : "failed",
                                   -r, strerror(-r));
        return code;
}

static int report_reply_failure(const char *what, pid_t pid, const MemcrReply *reply) {
        const char *text = reply_error_text(reply);
        _cleanup_free_ char *e = escape_or_oom(text);

        log_error("Failed to %s: %s (%s)", what, e, memcr_client_result_to_string(reply->result));
        if (arg_json && pid > 0)
                json_write_failure(pid, memcr_client_result_to_string(reply->result), reply->error, text);
        return exit_code_from_result(reply->result);
}

static int do_request(MemcrClient *c, Operation op, pid_t pid, MemcrReply *ret) {
        Progress p = { .op = op, .pid = pid };
        MemcrClientOptions o = {
                .dump_dir = arg_dump_dir,
                .codec = arg_codec,
                .timeout_msec = arg_timeout_msec,
                .max_frozen_sec = arg_max_frozen_sec,
                .interactive = arg_ask_password,
                .no_encrypt = arg_no_encrypt,
                .lazy = arg_lazy,
                .eager = arg_eager,
        };
        int r;

        if (!arg_quiet && !arg_json && isatty(STDERR_FILENO)) {
                o.progress = progress_draw;
                o.userdata = &p;
        }

        switch (op) {
        case OP_CHECKPOINT:
                r = memcr_client_checkpoint(c, pid, &o, ret);
                break;
        case OP_RESTORE:
                r = memcr_client_restore(c, pid, &o, ret);
                break;
        case OP_STATUS:
                r = memcr_client_status(c, pid, ret);
                break;
        default:
                assert(false);
                r = -EINVAL;
        }
        progress_clear(&p);
        return r;
}

int verb_pids(Operation op, int argc, char *argv[]) {
        _cleanup_(memcr_client_freep) MemcrClient *c = NULL;
        _cleanup_free_ pid_t *pids = NULL;
        int ret = 0, r;

        if (argc < 1) {
                log_error("Command '%s' needs at least one PID.", op == OP_STATUS ? "status" : op_verb[op]);
                return MEMCRCTL_EXIT_USAGE;
        }
        pids = calloc((size_t) argc, sizeof(pid_t));
        if (!pids) {
                log_error("Out of memory.");
                return MEMCRCTL_EXIT_FAILED;
        }
        for (int i = 0; i < argc; i++) {
                r = pid_from_string(argv[i], &pids[i]);
                if (r < 0) {
                        _cleanup_free_ char *e = escape_or_oom(argv[i]);
                        log_error("Invalid PID '%s': expected a decimal number from 1 to %" PRIi32 ".", e,
                                  INT32_MAX);
                        return MEMCRCTL_EXIT_USAGE;
                }
        }

        /* Only checkpoint and restore requests carry the interactive flag. */
        if (op != OP_STATUS)
                ask_password_agent_open();

        for (int i = 0; i < argc; i++) {
                char what[64];
                MemcrReply reply;
                int code;

                snprintf(what, sizeof(what), "%s %i", op_verb[op], (int) pids[i]);

                /* After a lost connection, the next PID gets a new one. */
                if (!c) {
                        code = connect_daemon(&c);
                        if (code != 0)
                                return ret ?: code;
                }

                r = do_request(c, op, pids[i], &reply);
                if (r < 0) {
                        code = report_transport_failure(what, pids[i], r);
                        memcr_client_free(TAKE_PTR(c));
                } else if (reply.result != MEMCR_CLIENT_OK)
                        code = report_reply_failure(what, pids[i], &reply);
                else {
                        code = 0;
                        if (arg_json) {
                                fputs("{\"result\":\"ok\",", stdout);
                                json_write_info(stdout, &reply.info);
                                fputs("}\n", stdout);
                        } else if (!arg_quiet) {
                                if (op == OP_CHECKPOINT)
                                        print_checkpointed(&reply);
                                else if (op == OP_RESTORE)
                                        print_restored(&reply);
                                else {
                                        if (i > 0)
                                                putchar('\n');
                                        print_status(&reply.info);
                                }
                        }
                }
                fflush(stdout);
                if (ret == 0)
                        ret = code;
        }
        return ret;
}

static int compare_info(const void *a, const void *b) {
        const MemcrProcessInfo *x = a, *y = b;
        return (x->pid > y->pid) - (x->pid < y->pid);
}

int verb_list(int argc, char *argv[]) {
        _cleanup_(memcr_client_freep) MemcrClient *c = NULL;
        _cleanup_free_ MemcrProcessInfo *list = NULL;
        MemcrReply reply;
        size_t n;
        int r;

        r = connect_daemon_no_args("list", argc, &c);
        if (r != 0)
                return r;
        r = memcr_client_list(c, &list, &n, &reply);
        if (r < 0)
                return report_transport_failure("list frozen processes", 0, r);
        if (reply.result != MEMCR_CLIENT_OK)
                return report_reply_failure("list frozen processes", 0, &reply);

        if (n > 0)
                qsort(list, n, sizeof(MemcrProcessInfo), compare_info);

        if (arg_json) {
                putchar('[');
                for (size_t j = 0; j < n; j++) {
                        fputs(j > 0 ? ",{" : "{", stdout);
                        json_write_info(stdout, &list[j]);
                        putchar('}');
                }
                fputs("]\n", stdout);
        } else if (!arg_quiet)
                print_table(list, n);
        return MEMCRCTL_EXIT_SUCCESS;
}

int verb_version(int argc, char *argv[]) {
        _cleanup_(memcr_client_freep) MemcrClient *c = NULL;
        char version[256];
        int r;

        r = connect_daemon_no_args("version", argc, &c);
        if (r != 0)
                return r;
        r = memcr_client_version(c, version, sizeof(version));
        if (r < 0)
                return report_transport_failure("get the version of memcrd", 0, r);

        if (arg_json) {
                fputs("{\"client\":", stdout);
                json_write_string(stdout, VERSION);
                fputs(",\"daemon\":", stdout);
                json_write_string(stdout, version);
                fputs("}\n", stdout);
        } else if (!arg_quiet) {
                _cleanup_free_ char *e = escape_or_oom(version);
                printf("memcrctl %s\nmemcrd %s\n", VERSION, e);
        }
        return MEMCRCTL_EXIT_SUCCESS;
}
