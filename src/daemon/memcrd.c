/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * memcrd: the memcr service. Takes requests on a UNIX socket (from systemd,
 * or bound itself with --listen), authorizes them, and has watchers do the
 * work: one watcher per frozen process, so memcrd may exit when idle, be
 * restarted or upgraded while processes stay frozen.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec-name.h"
#include "config.h"
#include "log.h"
#include "macro.h"
#include "manager.h"
#include "options.h"

static ManagerConfig arg = {
        .socket_mode = 0660,
        .runtime_dir = MEMCR_RUNTIME_DIR,
        .state_dir = MEMCR_STATE_DIR,
        .idle_timeout = -1,
        .client_timeout = 30,
        .connection_lifetime = 300,
        .watcher_timeout = 900,
        .max_clients = 256,
        .max_clients_per_user = 32,
        .max_frozen = 1024,
        .max_frozen_per_user = 128,
        .watchers = WATCHER_MODE_AUTO,
        .polkit = -1,
};

static void help(void) {
        printf("memcrd [OPTIONS]\n\n"
               "The memcr service: checkpoints and restores the memory of processes.\n\n"
               "  -h --help                  show this help\n"
               "     --version               show the version\n"
               "     --listen=PATH           bind this socket (without socket activation)\n"
               "     --socket-group=GROUP    group of the socket bound with --listen\n"
               "     --socket-mode=MODE      mode of the socket bound with --listen [0660]\n"
               "     --runtime-dir=DIR       runtime directory [%s]\n"
               "     --state-dir=DIR         default dump directory [%s]\n"
               "     --allow-dump-dir=DIR    another directory requests may name (repeatable)\n"
               "     --compress=CODEC        default compression: none, lz4, zstd [none]\n"
               "     --idle-timeout=SEC      exit when idle this long (0: never)\n"
               "                             [30 when socket-activated, else 0]\n"
               "     --client-timeout=SEC    time a client has to send a request [30]\n"
               "     --connection-lifetime=SEC\n"
               "                             close a connection after this long, between\n"
               "                             requests (0: never) [300]\n"
               "     --max-clients=N         connections of all users but root [256]\n"
               "     --max-clients-per-user=N\n"
               "                             connections of one user, root included [32]\n"
               "     --max-frozen-processes=N\n"
               "                             processes frozen for all users but root [1024]\n"
               "     --max-frozen-per-user=N processes frozen for one user, root included [128]\n"
               "     --watchers=MODE         fork, systemd, socket or auto [auto]\n"
               "     --watcher=PATH          memcr-watch binary (fork mode)\n"
               "     --watcher-socket=PATH   socket that starts a watcher per connection (socket\n"
               "                             mode; systemd mode without polkit)\n"
               "                             [RUNTIME_DIR/spawn-watcher.sock]\n"
               "     --watcher-timeout=SEC   time a watcher has to answer a job, or what it\n"
               "                             holds when memcrd starts [900]\n"
               "     --polkit=BOOL           ask polkit when the rules do not decide [yes when a bus exists]\n"
               "     --lazy-restore          restore lazily (resume at once, stream memory back)\n"
               "                             unless a request asks for an eager restore\n"
               "     --log-level=LEVEL       err, warning, notice, info, debug [info]\n",
               MEMCR_RUNTIME_DIR, MEMCR_STATE_DIR);
}

static int parse_seconds(const char *s, double *ret) {
        char *end;
        double v;

        errno = 0;
        v = strtod(s, &end);
        if (errno != 0 || end == s || *end || v < 0 || v > 1e9)
                return -EINVAL;
        *ret = v;
        return 0;
}

static int parse_count(const char *s, unsigned max, unsigned *ret) {
        char *end;
        unsigned long v;

        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno != 0 || end == s || *end || s[0] == '-' || v == 0 || v > max)
                return -EINVAL;
        *ret = (unsigned) v;
        return 0;
}

static int parse_bool(const char *s) {
        if (streq(s, "yes") || streq(s, "true") || streq(s, "1") || streq(s, "on"))
                return 1;
        if (streq(s, "no") || streq(s, "false") || streq(s, "0") || streq(s, "off"))
                return 0;
        return -EINVAL;
}

enum {
        ARG_LISTEN = OPTION_FIRST, ARG_SOCKET_GROUP, ARG_SOCKET_MODE, ARG_RUNTIME_DIR,
        ARG_STATE_DIR, ARG_ALLOW_DUMP_DIR, ARG_COMPRESS, ARG_IDLE_TIMEOUT, ARG_CLIENT_TIMEOUT,
        ARG_MAX_CLIENTS, ARG_WATCHERS, ARG_WATCHER, ARG_POLKIT, ARG_LOG_LEVEL, ARG_LAZY_RESTORE,
        ARG_CONNECTION_LIFETIME, ARG_MAX_CLIENTS_PER_USER, ARG_MAX_FROZEN, ARG_MAX_FROZEN_PER_USER,
        ARG_WATCHER_SOCKET, ARG_WATCHER_TIMEOUT,
};

/* Options that take seconds, and counts with their upper limit. */
static const struct {
        int arg;
        const char *name;
        double *value;
} seconds_options[] = {
        { ARG_IDLE_TIMEOUT, "idle-timeout", &arg.idle_timeout },
        { ARG_CLIENT_TIMEOUT, "client-timeout", &arg.client_timeout },
        { ARG_CONNECTION_LIFETIME, "connection-lifetime", &arg.connection_lifetime },
        { ARG_WATCHER_TIMEOUT, "watcher-timeout", &arg.watcher_timeout },
};

static const struct {
        int arg;
        const char *name;
        unsigned max;
        unsigned *value;
} count_options[] = {
        { ARG_MAX_CLIENTS, "max-clients", 65536, &arg.max_clients },
        { ARG_MAX_CLIENTS_PER_USER, "max-clients-per-user", 65536, &arg.max_clients_per_user },
        { ARG_MAX_FROZEN, "max-frozen-processes", 1000000, &arg.max_frozen },
        { ARG_MAX_FROZEN_PER_USER, "max-frozen-per-user", 1000000, &arg.max_frozen_per_user },
};

/* 1: c was one of the options of the tables above, 0: it was not, < 0: invalid. */
static int parse_number_option(int c, const char *value) {
        for (size_t i = 0; i < ELEMENTSOF(seconds_options); i++)
                if (seconds_options[i].arg == c) {
                        if (parse_seconds(value, seconds_options[i].value) < 0)
                                return log_error_errno(-EINVAL, "invalid --%s: %s", seconds_options[i].name, value);
                        return 1;
                }
        for (size_t i = 0; i < ELEMENTSOF(count_options); i++)
                if (count_options[i].arg == c) {
                        if (parse_count(value, count_options[i].max, count_options[i].value) < 0)
                                return log_error_errno(-EINVAL, "invalid --%s (1 to %u): %s", count_options[i].name,
                                                       count_options[i].max, value);
                        return 1;
                }
        return 0;
}

static int parse_option(int c, const char *value) {
        int r;

        switch (c) {
        case ARG_LISTEN:
                arg.listen = value;
                break;
        case ARG_SOCKET_GROUP:
                arg.socket_group = value;
                break;
        case ARG_RUNTIME_DIR:
                arg.runtime_dir = value;
                break;
        case ARG_STATE_DIR:
                arg.state_dir = value;
                break;
        case ARG_WATCHER:
                arg.watcher_binary = value;
                break;
        case ARG_WATCHER_SOCKET:
                arg.watcher_socket = value;
                break;
        case ARG_LAZY_RESTORE:
                arg.lazy_restore = true;
                break;
        case ARG_SOCKET_MODE: {
                char *end;
                unsigned long v = strtoul(value, &end, 8);
                if (*end || v > 0777)
                        return log_error_errno(-EINVAL, "invalid mode: %s", value);
                arg.socket_mode = (mode_t) v;
                break;
        }
        case ARG_ALLOW_DUMP_DIR: {
                char **p = realloc(arg.dump_dirs, (arg.n_dump_dirs + 1) * sizeof(char *));
                if (!p)
                        return -ENOMEM;
                arg.dump_dirs = p;
                arg.dump_dirs[arg.n_dump_dirs++] = (char *) value;
                break;
        }
        case ARG_COMPRESS:
                r = codec_from_string(value);
                if (r < 0 || !codec_supported((Codec) r))
                        return log_error_errno(-EINVAL, "unsupported compression: %s", value);
                arg.codec = value;
                break;
        case ARG_WATCHERS:
                r = watcher_mode_from_string(value);
                if (r < 0)
                        return log_error_errno(r, "invalid watcher mode: %s", value);
                arg.watchers = (WatcherMode) r;
                break;
        case ARG_POLKIT:
                arg.polkit = parse_bool(value);
                if (arg.polkit < 0)
                        return log_error_errno(-EINVAL, "invalid boolean: %s", value);
                break;
        case ARG_LOG_LEVEL:
                r = log_parse_level(value);
                if (r < 0)
                        return log_error_errno(r, "invalid log level: %s", value);
                log_set_max_level(r);
                break;
        default:
                r = parse_number_option(c, value);
                return r < 0 ? r : r > 0 ? 0 : -EINVAL;
        }
        return 0;
}

/* As options_parse(). */
static int parse_argv(int argc, char *argv[]) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, OPTION_VERSION },
                { "listen", required_argument, NULL, ARG_LISTEN },
                { "socket-group", required_argument, NULL, ARG_SOCKET_GROUP },
                { "socket-mode", required_argument, NULL, ARG_SOCKET_MODE },
                { "runtime-dir", required_argument, NULL, ARG_RUNTIME_DIR },
                { "state-dir", required_argument, NULL, ARG_STATE_DIR },
                { "allow-dump-dir", required_argument, NULL, ARG_ALLOW_DUMP_DIR },
                { "compress", required_argument, NULL, ARG_COMPRESS },
                { "idle-timeout", required_argument, NULL, ARG_IDLE_TIMEOUT },
                { "client-timeout", required_argument, NULL, ARG_CLIENT_TIMEOUT },
                { "max-clients", required_argument, NULL, ARG_MAX_CLIENTS },
                { "max-clients-per-user", required_argument, NULL, ARG_MAX_CLIENTS_PER_USER },
                { "max-frozen-processes", required_argument, NULL, ARG_MAX_FROZEN },
                { "max-frozen-per-user", required_argument, NULL, ARG_MAX_FROZEN_PER_USER },
                { "connection-lifetime", required_argument, NULL, ARG_CONNECTION_LIFETIME },
                { "watchers", required_argument, NULL, ARG_WATCHERS },
                { "watcher", required_argument, NULL, ARG_WATCHER },
                { "watcher-socket", required_argument, NULL, ARG_WATCHER_SOCKET },
                { "watcher-timeout", required_argument, NULL, ARG_WATCHER_TIMEOUT },
                { "polkit", required_argument, NULL, ARG_POLKIT },
                { "log-level", required_argument, NULL, ARG_LOG_LEVEL },
                { "lazy-restore", no_argument, NULL, ARG_LAZY_RESTORE },
                {}
        };
        static const Options o = { "memcrd", "h", options, help, parse_option };
        int r;

        r = options_parse(&o, argc, argv);
        if (r <= 0)
                return r;
        if (optind < argc)
                return log_error_errno(-EINVAL, "unexpected argument: %s", argv[optind]);
        if (arg.watcher_timeout < 0.001)
                return log_error_errno(-EINVAL, "invalid --watcher-timeout: must be more than 0");
        return 1;
}

static int run(void) {
        _cleanup_(manager_freep) Manager *m = NULL;
        int r;

        r = manager_new(&arg, &m);
        if (r < 0)
                return r;
        r = manager_startup(m, &arg);
        if (r < 0)
                return r;
        return manager_run(m);
}

int main(int argc, char *argv[]) {
        int r;

        log_set_ident("memcrd");
        log_parse_environment();
        r = parse_argv(argc, argv);
        if (r <= 0)
                return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
        r = run();
        free(arg.dump_dirs);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
