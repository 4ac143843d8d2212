/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
/* Every record carries the location of the log call that made it (CODE_FILE=,
 * CODE_LINE=, CODE_FUNC= below), not also the location of the send call here. */
#define SD_JOURNAL_SUPPRESS_LOCATION 1
#include <systemd/sd-journal.h>
#include <unistd.h>

#include "log.h"

static LogTarget log_target = LOG_TARGET_AUTO;
static int log_max_level = LOG_INFO;
static const char *log_ident = NULL;

void log_set_target(LogTarget t) {
        log_target = t;
}

void log_set_max_level(int level) {
        log_max_level = level;
}

int log_get_max_level(void) {
        return log_max_level;
}

void log_set_ident(const char *ident) {
        log_ident = ident;
}

int log_parse_level(const char *s) {
        static const char *const names[] = {
                [LOG_EMERG] = "emerg",  [LOG_ALERT] = "alert", [LOG_CRIT] = "crit",
                [LOG_ERR] = "err",      [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice",
                [LOG_INFO] = "info",    [LOG_DEBUG] = "debug",
        };
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (streq(s, names[i]))
                        return (int) i;
        if (streq(s, "error"))
                return LOG_ERR;
        return -EINVAL;
}

void log_parse_environment(void) {
        const char *e = getenv("MEMCR_LOG_LEVEL");
        int l;

        if (e && (l = log_parse_level(e)) >= 0)
                log_max_level = l;
}

static bool use_journal(void) {
        if (log_target == LOG_TARGET_JOURNAL)
                return true;
        if (log_target == LOG_TARGET_STDERR)
                return false;
        /* Started by systemd with the journal attached, or stderr connected to it. */
        return getenv("JOURNAL_STREAM") || getenv("INVOCATION_ID");
}

static void write_stderr(int level, const char *message, char **fields, size_t n_fields) {
        char buf[4096];
        size_t l = 0;
        int k;

        k = snprintf(buf, sizeof(buf), "%s%s%s", log_ident ?: "", log_ident ? ": " : "", message);
        l = k < 0 ? 0 : MIN((size_t) k, sizeof(buf) - 1);
        if (n_fields > 0 && l < sizeof(buf) - 2) {
                k = snprintf(buf + l, sizeof(buf) - l, " [");
                l += k < 0 ? 0 : MIN((size_t) k, sizeof(buf) - l - 1);
                for (size_t i = 0; i < n_fields && l < sizeof(buf) - 2; i++) {
                        k = snprintf(buf + l, sizeof(buf) - l, "%s%s", i > 0 ? " " : "", fields[i]);
                        l += k < 0 ? 0 : MIN((size_t) k, sizeof(buf) - l - 1);
                }
                k = snprintf(buf + l, sizeof(buf) - l, "]");
                l += k < 0 ? 0 : MIN((size_t) k, sizeof(buf) - l - 1);
        }
        (void) level;
        buf[l++] = '\n';
        (void) !write(STDERR_FILENO, buf, MIN(l, sizeof(buf)));
}

static int log_dispatch(int level, int error, const char *file, int line, const char *func,
                        const char *message, char **fields, size_t n_fields) {
        int saved_errno = errno;

        if (use_journal()) {
                struct iovec iov[64];
                char prio[32], code_file[256], code_line[32], code_func[256], errno_field[32];
                char *msg = NULL;
                size_t n = 0;

                if (asprintf(&msg, "MESSAGE=%s", message) < 0)
                        goto fallback;
                snprintf(prio, sizeof(prio), "PRIORITY=%i", level);
                snprintf(code_file, sizeof(code_file), "CODE_FILE=%s", file);
                snprintf(code_line, sizeof(code_line), "CODE_LINE=%i", line);
                snprintf(code_func, sizeof(code_func), "CODE_FUNC=%s", func);
                iov[n++] = (struct iovec) { msg, strlen(msg) };
                iov[n++] = (struct iovec) { prio, strlen(prio) };
                iov[n++] = (struct iovec) { code_file, strlen(code_file) };
                iov[n++] = (struct iovec) { code_line, strlen(code_line) };
                iov[n++] = (struct iovec) { code_func, strlen(code_func) };
                if (error != 0) {
                        snprintf(errno_field, sizeof(errno_field), "ERRNO=%i", abs(error));
                        iov[n++] = (struct iovec) { errno_field, strlen(errno_field) };
                }
                for (size_t i = 0; i < n_fields && n < ELEMENTSOF(iov); i++)
                        iov[n++] = (struct iovec) { fields[i], strlen(fields[i]) };
                int r = sd_journal_sendv(iov, (int) n);
                free(msg);
                if (r >= 0)
                        goto done;
        }
fallback:
        write_stderr(level, message, fields, n_fields);
done:
        errno = saved_errno;
        return error == 0 ? 0 : -abs(error);
}

int log_internal(int level, int error, const char *file, int line, const char *func,
                 const char *format, ...) {
        char buf[2048];
        va_list ap;

        if (level > log_max_level)
                return error == 0 ? 0 : -abs(error);

        /* Let %m refer to the error we were given. */
        if (error != 0)
                errno = abs(error);
        va_start(ap, format);
        vsnprintf(buf, sizeof(buf), format, ap);
        va_end(ap);
        return log_dispatch(level, error, file, line, func, buf, NULL, 0);
}

int log_struct_internal(int level, int error, const char *file, int line, const char *func,
                        const char *message, ...) {
        char *fields[48];
        size_t n = 0;
        va_list ap;

        if (level > log_max_level)
                return error == 0 ? 0 : -abs(error);

        va_start(ap, message);
        for (const char *f; (f = va_arg(ap, const char *));) {
                size_t l = strlen(f);
                /* "FIELD=" with nothing after it: leave the field out. */
                if (l == 0 || f[l - 1] == '=')
                        continue;
                if (n < ELEMENTSOF(fields))
                        fields[n++] = (char *) f;
        }
        va_end(ap);
        return log_dispatch(level, error, file, line, func, message, fields, n);
}

const char *log_field(char *buf, size_t size, const char *field, const char *format, ...) {
        va_list ap;
        int k;

        k = snprintf(buf, size, "%s=", field);
        if (k < 0 || (size_t) k >= size)
                return field;
        va_start(ap, format);
        vsnprintf(buf + k, size - (size_t) k, format, ap);
        va_end(ap);
        return buf;
}
