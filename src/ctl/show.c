/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "args.h"
#include "errors.h"
#include "format.h"
#include "log.h"
#include "macro.h"
#include "show.h"
#include "time-util.h"

static bool utf8_locale = false;

void show_set_utf8(bool b) {
        utf8_locale = b;
}

static const char *glyph_arrow(void) {
        return utf8_locale ? "→" : "->";
}

static const char *glyph_bullet(void) {
        return utf8_locale ? "●" : "*";
}

char *escape_or_oom(const char *s) {
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

void json_write_info(FILE *f, const MemcrProcessInfo *i) {
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

void json_write_failure(pid_t pid, const char *result, int error, const char *message) {
        printf("{\"pid\":%i,\"result\":", (int) pid);
        json_write_string(stdout, result);
        printf(",\"error\":%i,\"message\":", error);
        json_write_string(stdout, message);
        fputs("}\n", stdout);
}

void print_checkpointed(const MemcrReply *reply) {
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

void print_restored(const MemcrReply *reply) {
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

void print_status(const MemcrProcessInfo *i) {
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

void print_table(const MemcrProcessInfo *list, size_t n) {
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
