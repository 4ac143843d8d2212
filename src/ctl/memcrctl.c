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
 */

#include <getopt.h>
#include <inttypes.h>
#include <langinfo.h>
#include <locale.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "format.h"
#include "log.h"
#include "macro.h"
#include "memcr-client.h"
#include "parse.h"
#include "polkit-agent.h"
#include "protocol.h"

enum {
        MEMCRCTL_EXIT_SUCCESS = 0,
        MEMCRCTL_EXIT_FAILED = 1,
        MEMCRCTL_EXIT_USAGE = 2,
        MEMCRCTL_EXIT_DENIED = 3,
        MEMCRCTL_EXIT_NO_PROCESS = 4,
        MEMCRCTL_EXIT_NOT_FROZEN = 5,
        MEMCRCTL_EXIT_ALREADY_FROZEN = 6,
        MEMCRCTL_EXIT_UNREACHABLE = 7,
        MEMCRCTL_EXIT_TIMEOUT = 8,
};

static const char *arg_socket = NULL;
static bool arg_json = false;
static bool arg_quiet = false;
static bool arg_legend = true;
static bool arg_ask_password = false;
static bool arg_no_encrypt = false;
static bool arg_lazy = false;
static bool arg_eager = false;
static uint64_t arg_timeout_msec = 0;
static uint64_t arg_max_frozen_sec = 0;
static char *arg_dump_dir = NULL;
static const char *arg_codec = NULL;

static bool utf8_locale = false;

DEFINE_TRIVIAL_CLEANUP_FUNC(MemcrClient *, memcr_client_free);

typedef enum Operation {
        OP_CHECKPOINT,
        OP_RESTORE,
        OP_STATUS,
} Operation;

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

static const char *glyph_arrow(void) {
        return utf8_locale ? "→" : "->";
}

static const char *glyph_bullet(void) {
        return utf8_locale ? "●" : "*";
}

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

static int exit_code_from_result(int result) {
        switch (result) {
        case MEMCR_CLIENT_OK:
                return MEMCRCTL_EXIT_SUCCESS;
        case MEMCR_CLIENT_ERR_DENIED:
                return MEMCRCTL_EXIT_DENIED;
        case MEMCR_CLIENT_ERR_NO_PROCESS:
                return MEMCRCTL_EXIT_NO_PROCESS;
        case MEMCR_CLIENT_ERR_NOT_FROZEN:
                return MEMCRCTL_EXIT_NOT_FROZEN;
        case MEMCR_CLIENT_ERR_ALREADY_FROZEN:
                return MEMCRCTL_EXIT_ALREADY_FROZEN;
        case MEMCR_CLIENT_ERR_TIMEOUT:
                return MEMCRCTL_EXIT_TIMEOUT;
        default:
                return MEMCRCTL_EXIT_FAILED;
        }
}

static bool errno_is_disconnect(int r) {
        switch (-r) {
        case ECONNRESET:
        case ECONNABORTED:
        case ECONNREFUSED:
        case ENOTCONN:
        case EPIPE:
                return true;
        default:
                return false;
        }
}

static int exit_code_from_errno(int r) {
        if (errno_is_disconnect(r))
                return MEMCRCTL_EXIT_UNREACHABLE;
        switch (-r) {
        case EPERM:
        case EACCES:
                return MEMCRCTL_EXIT_DENIED;
        case ESRCH:
                return MEMCRCTL_EXIT_NO_PROCESS;
        case ETIME:
        case ETIMEDOUT:
                return MEMCRCTL_EXIT_TIMEOUT;
        default:
                return MEMCRCTL_EXIT_FAILED;
        }
}

static const char *result_description(int result) {
        switch (result) {
        case MEMCR_CLIENT_ERR_DENIED:
                return "Access denied";
        case MEMCR_CLIENT_ERR_NO_PROCESS:
                return "No such process";
        case MEMCR_CLIENT_ERR_NOT_FROZEN:
                return "Process is not frozen";
        case MEMCR_CLIENT_ERR_ALREADY_FROZEN:
                return "Process is already frozen";
        case MEMCR_CLIENT_ERR_INVALID:
                return "Invalid request";
        case MEMCR_CLIENT_ERR_BUSY:
                return "Another operation on the process is in progress";
        case MEMCR_CLIENT_ERR_TIMEOUT:
                return "Timed out";
        case MEMCR_CLIENT_ERR_KILLED:
                return "Process was killed";
        case MEMCR_CLIENT_ERR_UNSUPPORTED:
                return "Not supported";
        default:
                return "Operation failed";
        }
}

/* What went wrong according to a reply: memcrd's message, else its errno, else the result. */
static const char *reply_error_text(const MemcrReply *reply) {
        if (reply->message[0])
                return reply->message;
        if (reply->error > 0)
                return strerror(reply->error);
        return result_description(reply->result);
}

static char *escape_or_oom(const char *s) {
        char *e = escape_for_terminal(s);
        if (!e) {
                log_error("Out of memory.");
                exit(MEMCRCTL_EXIT_FAILED);
        }
        return e;
}

/* "1234 (firefox)", or "1234" if the name is unknown. */
static char *pid_label(pid_t pid, const char *comm) {
        _cleanup_free_ char *e = NULL;
        char *s;
        int k;

        if (comm && comm[0]) {
                e = escape_or_oom(comm);
                k = asprintf(&s, "%i (%s)", (int) pid, e);
        } else
                k = asprintf(&s, "%i", (int) pid);
        if (k < 0) {
                log_error("Out of memory.");
                exit(MEMCRCTL_EXIT_FAILED);
        }
        return s;
}

/* A user name (escaped) or, if there is none, the number. */
static char *user_name(uid_t uid) {
        struct passwd *pw = getpwuid(uid);
        char *s;

        if (pw && pw->pw_name)
                return escape_or_oom(pw->pw_name);
        if (asprintf(&s, "%u", (unsigned) uid) < 0) {
                log_error("Out of memory.");
                exit(MEMCRCTL_EXIT_FAILED);
        }
        return s;
}

static void json_write_info(FILE *f, const MemcrProcessInfo *i) {
        fprintf(f, "\"pid\":%i,\"state\":", (int) i->pid);
        json_write_string(f, i->state);
        fputs(",\"comm\":", f);
        json_write_string(f, i->comm);
        fprintf(f,
                ",\"uid\":%u,\"caller_uid\":%u,\"since_usec\":%" PRIu64 ",\"rss_before\":%" PRIu64
                ",\"rss_after\":%" PRIu64 ",\"dump_bytes\":%" PRIu64 ",\"dump_file_bytes\":%" PRIu64
                ",\"duration_usec\":%" PRIu64 ",\"watcher_pid\":%i,\"threads\":%" PRIu32 ",\"codec\":",
                (unsigned) i->uid, (unsigned) i->caller_uid, i->since_usec, i->rss_before, i->rss_after,
                i->dump_bytes, i->dump_file_bytes, i->duration_usec, (int) i->watcher_pid, i->threads);
        json_write_string(f, i->codec);
        fputs(",\"protection\":", f);
        json_write_string(f, i->protection);
        fprintf(f, ",\"max_frozen_sec\":%" PRIu64, i->max_frozen_sec);
        if (streq(i->state, "streaming"))
                fprintf(f, ",\"done_bytes\":%" PRIu64 ",\"total_bytes\":%" PRIu64, i->done_bytes,
                        i->total_bytes);
}

static void json_write_failure(pid_t pid, const char *result, int error, const char *message) {
        printf("{\"pid\":%i,\"result\":", (int) pid);
        json_write_string(stdout, result);
        printf(",\"error\":%i,\"message\":", error);
        json_write_string(stdout, message);
        fputs("}\n", stdout);
}

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

static void print_checkpointed(const MemcrReply *reply) {
        const MemcrProcessInfo *i = &reply->info;
        char before[FORMAT_BYTES_MAX], after[FORMAT_BYTES_MAX], dump[FORMAT_BYTES_MAX],
                pages[FORMAT_BYTES_MAX], took[FORMAT_DURATION_MAX];
        _cleanup_free_ char *label = pid_label(i->pid, i->comm);

        printf("Checkpointed %s: RSS %s %s %s, dump %s", label,
               format_bytes(before, sizeof(before), i->rss_before), glyph_arrow(),
               format_bytes(after, sizeof(after), i->rss_after),
               format_bytes(dump, sizeof(dump), i->dump_file_bytes ?: i->dump_bytes));
        if (i->codec[0] && !streq(i->codec, "none") && i->dump_bytes > 0) {
                _cleanup_free_ char *codec = escape_or_oom(i->codec);
                printf(" (%s, %s of pages)", codec, format_bytes(pages, sizeof(pages), i->dump_bytes));
        }
        if (i->duration_usec > 0)
                printf(" in %s", format_duration(took, sizeof(took), i->duration_usec));
        putchar('\n');
}

static void print_restored(const MemcrReply *reply) {
        const MemcrProcessInfo *i = &reply->info;
        char took[FORMAT_DURATION_MAX];
        _cleanup_free_ char *label = pid_label(i->pid, i->comm);

        if (i->duration_usec > 0)
                printf("Restored %s in %s\n", label, format_duration(took, sizeof(took), i->duration_usec));
        else
                printf("Restored %s\n", label);
        /* Anything memcrd adds, such as why a lazy restore was done eagerly. */
        if (reply->message[0]) {
                _cleanup_free_ char *note = escape_or_oom(reply->message);
                printf("  %s\n", note);
        }
}

#define STATUS_FIELD(label, fmt, ...) printf("%17s: " fmt, label, ##__VA_ARGS__)

static void print_status(const MemcrProcessInfo *i) {
        _cleanup_free_ char *label = pid_label(i->pid, i->comm), *owner = user_name(i->uid),
                            *caller = user_name(i->caller_uid);
        char a[FORMAT_BYTES_MAX], b[FORMAT_BYTES_MAX], c[FORMAT_BYTES_MAX];
        char ts[FORMAT_TIMESTAMP_MAX], span[FORMAT_TIMESPAN_MAX];
        uint64_t now = 0;
        struct timespec t;

        if (clock_gettime(CLOCK_REALTIME, &t) >= 0)
                now = (uint64_t) t.tv_sec * USEC_PER_SEC + (uint64_t) t.tv_nsec / NSEC_PER_USEC;

        printf("%s %s\n", glyph_bullet(), label);
        if (i->state[0]) {
                _cleanup_free_ char *state = escape_or_oom(i->state);
                STATUS_FIELD("State", "%s\n", state);
        }
        if (i->since_usec > 0) {
                STATUS_FIELD("Frozen since", "%s",
                             format_timestamp_long(ts, sizeof(ts), i->since_usec));
                if (now >= i->since_usec)
                        printf("; %s ago", format_timespan(span, sizeof(span), now - i->since_usec));
                putchar('\n');
        }
        STATUS_FIELD("Owner", "%s (%u)\n", owner, (unsigned) i->uid);
        STATUS_FIELD("Checkpointed by", "%s (%u)\n", caller, (unsigned) i->caller_uid);
        if (i->watcher_pid > 0)
                STATUS_FIELD("Watcher", "%i\n", (int) i->watcher_pid);
        if (i->threads > 0)
                STATUS_FIELD("Threads", "%" PRIu32 "\n", i->threads);
        if (i->rss_before > 0)
                STATUS_FIELD("RSS", "%s %s %s (%s saved)\n", format_bytes(a, sizeof(a), i->rss_before),
                             glyph_arrow(), format_bytes(b, sizeof(b), i->rss_after),
                             format_bytes(c, sizeof(c), i->rss_before - MIN(i->rss_after, i->rss_before)));
        if (i->dump_file_bytes > 0 || i->dump_bytes > 0) {
                _cleanup_free_ char *codec = escape_or_oom(i->codec),
                                    *protection = escape_or_oom(i->protection);

                STATUS_FIELD("Dump", "%s",
                             format_bytes(a, sizeof(a), i->dump_file_bytes ?: i->dump_bytes));
                if (i->dump_file_bytes > 0 && i->dump_bytes > 0)
                        printf(" (%s of pages)", format_bytes(b, sizeof(b), i->dump_bytes));
                if (!codec[0] || streq(codec, "none"))
                        fputs(", uncompressed", stdout);
                else
                        printf(", %s", codec);
                if (streq(protection, "encrypt"))
                        fputs(", encrypted", stdout);
                else if (streq(protection, "auth"))
                        fputs(", authenticated", stdout);
                else if (protection[0])
                        printf(", %s", protection);
                putchar('\n');
        }
        if (streq(i->state, "streaming") && i->total_bytes > 0) {
                char done[32], total[32];
                STATUS_FIELD("Streaming", "%s of %s back in memory (%u%%)\n",
                             format_bytes(done, sizeof(done), i->done_bytes),
                             format_bytes(total, sizeof(total), i->total_bytes),
                             (unsigned) (i->done_bytes * 100 / i->total_bytes));
        }
        if (i->max_frozen_sec > 0) {
                uint64_t after = UINT64_MAX;

                if (i->max_frozen_sec <= UINT64_MAX / USEC_PER_SEC)
                        after = i->max_frozen_sec * USEC_PER_SEC;

                STATUS_FIELD("Auto-restore", "after %s", format_timespan(span, sizeof(span), after));
                if (i->since_usec > 0 && after <= UINT64_MAX - i->since_usec) {
                        uint64_t at = i->since_usec + after;

                        printf(" (%s", format_timestamp_long(ts, sizeof(ts), at));
                        if (at > now)
                                printf(", in %s", format_timespan(span, sizeof(span), at - now));
                        putchar(')');
                }
                putchar('\n');
        }
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

static int verb_pids(Operation op, int argc, char *argv[]) {
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
                r = parse_pid(argv[i], &pids[i]);
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

enum {
        COL_PID,
        COL_COMMAND,
        COL_USER,
        COL_STATE,
        COL_SINCE,
        COL_SAVED,
        COL_DUMP,
        _COL_MAX,
};

/* A state of a process memcrd holds (or is restoring), as opposed to one it
 * remembers because it ended after a restore. */
static bool is_held_state(const char *s) {
        static const char *const held[] = { "", "checkpointing", "frozen", "restoring", "streaming" };
        for (size_t i = 0; i < ELEMENTSOF(held); i++)
                if (streq(s, held[i]))
                        return true;
        return false;
}

static void print_table(const MemcrProcessInfo *list, size_t n) {
        static const char *const header[_COL_MAX] = {
                "PID", "COMMAND", "USER", "STATE", "SINCE", "RSS SAVED", "DUMP SIZE",
        };
        static const bool right[_COL_MAX] = {
                [COL_PID] = true, [COL_SAVED] = true, [COL_DUMP] = true,
        };
        size_t width[_COL_MAX] = {};
        char *(*cells)[_COL_MAX] = calloc(n + 1, sizeof(*cells));

        if (!cells) {
                log_error("Out of memory.");
                exit(MEMCRCTL_EXIT_FAILED);
        }

        for (size_t k = 0; k < _COL_MAX; k++)
                cells[0][k] = escape_or_oom(header[k]);
        for (size_t j = 0; j < n; j++) {
                const MemcrProcessInfo *i = &list[j];
                char pid[16], since[FORMAT_TIMESTAMP_MAX] = "-";
                char saved[FORMAT_BYTES_MAX] = "-", dump[FORMAT_BYTES_MAX] = "-";
                char **row = cells[j + 1];

                snprintf(pid, sizeof(pid), "%i", (int) i->pid);
                if (i->since_usec > 0)
                        format_timestamp(since, sizeof(since), i->since_usec);
                if (i->rss_before > 0)
                        format_bytes(saved, sizeof(saved), i->rss_before - MIN(i->rss_after, i->rss_before));
                if (i->dump_file_bytes > 0 || i->dump_bytes > 0)
                        format_bytes(dump, sizeof(dump), i->dump_file_bytes ?: i->dump_bytes);

                row[COL_PID] = escape_or_oom(pid);
                row[COL_COMMAND] = escape_or_oom(i->comm[0] ? i->comm : "-");
                row[COL_USER] = user_name(i->uid);
                row[COL_STATE] = escape_or_oom(i->state[0] ? i->state : "-");
                row[COL_SINCE] = escape_or_oom(since);
                row[COL_SAVED] = escape_or_oom(saved);
                row[COL_DUMP] = escape_or_oom(dump);
        }

        for (size_t j = arg_legend ? 0 : 1; j <= n; j++)
                for (size_t k = 0; k < _COL_MAX; k++)
                        width[k] = MAX(width[k], utf8_width(cells[j][k]));

        for (size_t j = arg_legend ? 0 : 1; j <= n; j++) {
                for (size_t k = 0; k < _COL_MAX; k++) {
                        size_t pad = width[k] - utf8_width(cells[j][k]);

                        if (k > 0)
                                putchar(' ');
                        if (right[k])
                                printf("%*s%s", (int) pad, "", cells[j][k]);
                        else if (k + 1 < _COL_MAX)
                                printf("%s%*s", cells[j][k], (int) pad, "");
                        else
                                fputs(cells[j][k], stdout);
                }
                putchar('\n');
        }

        if (arg_legend) {
                /* Processes memcrd remembers because they ended after a restore
                 * (their state says how) are not frozen. */
                size_t ended = 0;
                for (size_t j = 0; j < n; j++)
                        if (!is_held_state(list[j].state))
                                ended++;
                printf("\n%zu frozen %s listed", n - ended, n - ended == 1 ? "process" : "processes");
                if (ended > 0)
                        printf("; %zu ended after a restore", ended);
                puts(".");
        }

        for (size_t j = 0; j <= n; j++)
                for (size_t k = 0; k < _COL_MAX; k++)
                        free(cells[j][k]);
        free(cells);
}

static int verb_list(int argc, char *argv[]) {
        _cleanup_(memcr_client_freep) MemcrClient *c = NULL;
        _cleanup_free_ MemcrProcessInfo *list = NULL;
        MemcrReply reply;
        size_t n;
        int r;

        if (argc > 0) {
                log_error("Command 'list' takes no arguments.");
                return MEMCRCTL_EXIT_USAGE;
        }

        r = connect_daemon(&c);
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

static int verb_version(int argc, char *argv[]) {
        _cleanup_(memcr_client_freep) MemcrClient *c = NULL;
        char version[256];
        int r;

        if (argc > 0) {
                log_error("Command 'version' takes no arguments.");
                return MEMCRCTL_EXIT_USAGE;
        }

        r = connect_daemon(&c);
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

/* 1 to go on, 0 to exit successfully (--help, --version), -EINVAL on bad usage,
 * another -errno on other failures. */
static int parse_argv(int argc, char *argv[]) {
        enum {
                ARG_VERSION = 0x100,
                ARG_SOCKET,
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
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
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
        int c, r;

        while ((c = getopt_long(argc, argv, "hq", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("memcrctl %s\n", VERSION);
                        return 0;
                case ARG_SOCKET:
                        if (optarg[0] == '\0') {
                                log_error("--socket= needs a path.");
                                return -EINVAL;
                        }
                        arg_socket = optarg;
                        break;
                case ARG_JSON:
                        arg_json = true;
                        break;
                case 'q':
                        arg_quiet = true;
                        break;
                case ARG_TIMEOUT:
                        r = parse_seconds_to_msec(optarg, &arg_timeout_msec);
                        if (r < 0) {
                                log_error("Invalid --timeout= value '%s': expected seconds, e.g. 30 or 2.5.",
                                          optarg);
                                return -EINVAL;
                        }
                        if (arg_timeout_msec > MEMCR_MAX_TIMEOUT_MSEC) {
                                log_error("Invalid --timeout= value '%s': at most %" PRIu64 " seconds (10 years).",
                                          optarg, MEMCR_MAX_SECONDS);
                                return -EINVAL;
                        }
                        break;
                case ARG_MAX_FROZEN:
                        r = parse_seconds_to_sec(optarg, &arg_max_frozen_sec);
                        if (r < 0) {
                                log_error("Invalid --max-frozen= value '%s': expected seconds, e.g. 3600.",
                                          optarg);
                                return -EINVAL;
                        }
                        if (arg_max_frozen_sec > MEMCR_MAX_FROZEN_SEC) {
                                log_error("Invalid --max-frozen= value '%s': at most %" PRIu64 " seconds (10 years).",
                                          optarg, MEMCR_MAX_FROZEN_SEC);
                                return -EINVAL;
                        }
                        break;
                case ARG_DUMP_DIR: {
                        char *p;

                        if (optarg[0] == '\0') {
                                log_error("--dump-dir= needs a directory.");
                                return -EINVAL;
                        }
                        /* memcrd resolves it, not in our working directory: make it absolute. */
                        if (optarg[0] == '/')
                                p = strdup(optarg);
                        else {
                                _cleanup_free_ char *cwd = get_current_dir_name();
                                if (!cwd)
                                        return log_error_errno(-errno,
                                                               "Failed to get the working directory: %m");
                                if (asprintf(&p, "%s/%s", cwd, optarg) < 0)
                                        p = NULL;
                        }
                        if (!p) {
                                log_error("Out of memory.");
                                return -ENOMEM;
                        }
                        free(arg_dump_dir);
                        arg_dump_dir = p;
                        break;
                }
                case ARG_COMPRESS:
                        if (!streq(optarg, "none") && !streq(optarg, "lz4") && !streq(optarg, "zstd")) {
                                log_error("Invalid --compress= value '%s': expected none, lz4 or zstd.",
                                          optarg);
                                return -EINVAL;
                        }
                        arg_codec = optarg;
                        break;
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
                case '?':
                        return -EINVAL;
                default:
                        assert(false);
                        return -EINVAL;
                }
        if (arg_lazy && arg_eager) {
                log_error("--lazy and --eager contradict each other.");
                return -EINVAL;
        }
        return 1;
}

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
        utf8_locale = streq(nl_langinfo(CODESET), "UTF-8");

        log_set_target(LOG_TARGET_STDERR);
        log_parse_environment();

        code = run(argc, argv);

        polkit_agent_close();
        free(arg_dump_dir);
        if (fflush(stdout) != 0 && code == 0) {
                log_error("Failed to write output.");
                code = MEMCRCTL_EXIT_FAILED;
        }
        return code;
}
