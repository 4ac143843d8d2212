/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Logging: to the journal when running under systemd (JOURNAL_STREAM or
 * INVOCATION_ID set, or forced), to stderr otherwise. Structured records
 * carry FIELD=value pairs; on stderr they are printed as a single line of
 * "message [FIELD=value ...]" so tests can read them back outside the
 * journal too.
 *
 * The core library only ever logs at LOG_DEBUG.
 */

#include <stdarg.h>
#include <syslog.h>

#include "macro.h"

typedef enum LogTarget {
        LOG_TARGET_AUTO,
        LOG_TARGET_STDERR,
        LOG_TARGET_JOURNAL,
} LogTarget;

void log_set_target(LogTarget t);
void log_set_max_level(int level);
int log_get_max_level(void);
void log_set_ident(const char *ident);
int log_parse_level(const char *s);
/* $MEMCR_LOG_LEVEL overrides the maximum level. */
void log_parse_environment(void);

/* Returns -abs(error) if error != 0, else 0, so that callers can
 * "return log_error_errno(r, ...)". */
int log_internal(int level, int error, const char *file, int line, const char *func,
                 const char *format, ...) _printf_(6, 7);

/* Structured record: format is the MESSAGE, followed by NULL-terminated
 * "FIELD=value" strings (printf-style not supported in fields: pass already
 * formatted strings, see log_field()). */
int log_struct_internal(int level, int error, const char *file, int line, const char *func,
                        const char *message, ...) __attribute__((sentinel));

#define log_full_errno(level, error, ...)                                                          \
        ({                                                                                         \
                int _l = (level), _e = (error);                                                    \
                _l <= log_get_max_level()                                                          \
                        ? log_internal(_l, _e, __FILE__, __LINE__, __func__, __VA_ARGS__)          \
                        : -abs(_e);                                                                \
        })
#define log_full(level, ...) (void) log_full_errno(level, 0, __VA_ARGS__)

#define log_debug(...) log_full(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_full(LOG_INFO, __VA_ARGS__)
#define log_notice(...) log_full(LOG_NOTICE, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, __VA_ARGS__)
#define log_error(...) log_full(LOG_ERR, __VA_ARGS__)

#define log_oom() log_error_errno(-ENOMEM, "Out of memory.")

#define log_debug_errno(e, ...) log_full_errno(LOG_DEBUG, e, __VA_ARGS__)
#define log_info_errno(e, ...) log_full_errno(LOG_INFO, e, __VA_ARGS__)
#define log_warning_errno(e, ...) log_full_errno(LOG_WARNING, e, __VA_ARGS__)
#define log_error_errno(e, ...) log_full_errno(LOG_ERR, e, __VA_ARGS__)

#define log_struct(level, message, ...)                                                            \
        log_struct_internal(level, 0, __FILE__, __LINE__, __func__, message, __VA_ARGS__)
#define log_struct_errno(level, error, message, ...)                                               \
        log_struct_internal(level, error, __FILE__, __LINE__, __func__, message, __VA_ARGS__)

/* Format one "FIELD=value" into a caller-provided buffer (helper for log_struct). */
const char *log_field(char *buf, size_t size, const char *field, const char *format, ...)
        _printf_(4, 5);
#define LOG_FIELD(field, ...) log_field((char[256]){}, 256, field, __VA_ARGS__)
