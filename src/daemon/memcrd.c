/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * memcrd: the memcr service. Takes requests on a UNIX socket (from systemd,
 * or bound itself with --listen), authorizes them, and has watchers do the
 * work: one watcher per frozen process, so memcrd may exit when idle, be
 * restarted or upgraded while processes stay frozen.
 */

#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "client.h"
#include "codec.h"
#include "config.h"
#include "log.h"
#include "macro.h"
#include "manager.h"
#include "memcr-ids.h"
#include "privileges.h"
#include "socket-util.h"

#if HAVE_SELINUX
#include <selinux/selinux.h>
#endif

static const char *arg_listen = NULL;
static const char *arg_socket_group = NULL;
static mode_t arg_socket_mode = 0660;
static const char *arg_runtime_dir = MEMCR_RUNTIME_DIR;
static const char *arg_state_dir = MEMCR_STATE_DIR;
static char **arg_dump_dirs = NULL;
static size_t arg_n_dump_dirs = 0;
static const char *arg_codec = NULL;
static double arg_idle_timeout = -1;
static double arg_client_timeout = 30;
static double arg_connection_lifetime = 300;
static unsigned arg_max_clients = 256;
static unsigned arg_max_clients_per_user = 32;
static unsigned arg_max_frozen = 1024;
static unsigned arg_max_frozen_per_user = 128;
static WatcherMode arg_watchers = WATCHER_MODE_AUTO;
static const char *arg_watcher_binary = NULL;
static const char *arg_watcher_socket = NULL;
static int arg_polkit = -1;
static bool arg_lazy_restore = false;

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

static int parse_argv(int argc, char *argv[]) {
        enum {
                ARG_VERSION = 0x100, ARG_LISTEN, ARG_SOCKET_GROUP, ARG_SOCKET_MODE, ARG_RUNTIME_DIR,
                ARG_STATE_DIR, ARG_ALLOW_DUMP_DIR, ARG_COMPRESS, ARG_IDLE_TIMEOUT, ARG_CLIENT_TIMEOUT,
                ARG_MAX_CLIENTS, ARG_WATCHERS, ARG_WATCHER, ARG_POLKIT, ARG_LOG_LEVEL, ARG_LAZY_RESTORE,
                ARG_CONNECTION_LIFETIME, ARG_MAX_CLIENTS_PER_USER, ARG_MAX_FROZEN, ARG_MAX_FROZEN_PER_USER,
                ARG_WATCHER_SOCKET,
        };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
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
                { "polkit", required_argument, NULL, ARG_POLKIT },
                { "log-level", required_argument, NULL, ARG_LOG_LEVEL },
                { "lazy-restore", no_argument, NULL, ARG_LAZY_RESTORE },
                {}
        };
        int c, r;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        exit(EXIT_SUCCESS);
                case ARG_VERSION:
                        printf("memcrd %s\n", VERSION);
                        exit(EXIT_SUCCESS);
                case ARG_LISTEN:
                        arg_listen = optarg;
                        break;
                case ARG_SOCKET_GROUP:
                        arg_socket_group = optarg;
                        break;
                case ARG_SOCKET_MODE: {
                        char *end;
                        unsigned long v = strtoul(optarg, &end, 8);
                        if (*end || v > 0777)
                                return log_error_errno(-EINVAL, "invalid mode: %s", optarg);
                        arg_socket_mode = (mode_t) v;
                        break;
                }
                case ARG_RUNTIME_DIR:
                        arg_runtime_dir = optarg;
                        break;
                case ARG_STATE_DIR:
                        arg_state_dir = optarg;
                        break;
                case ARG_ALLOW_DUMP_DIR: {
                        char **p = realloc(arg_dump_dirs, (arg_n_dump_dirs + 1) * sizeof(char *));
                        if (!p)
                                return -ENOMEM;
                        arg_dump_dirs = p;
                        arg_dump_dirs[arg_n_dump_dirs++] = optarg;
                        break;
                }
                case ARG_COMPRESS:
                        r = codec_from_string(optarg);
                        if (r < 0 || !codec_supported((Codec) r))
                                return log_error_errno(-EINVAL, "unsupported compression: %s", optarg);
                        arg_codec = optarg;
                        break;
                case ARG_IDLE_TIMEOUT:
                        if (parse_seconds(optarg, &arg_idle_timeout) < 0)
                                return log_error_errno(-EINVAL, "invalid --idle-timeout: %s", optarg);
                        break;
                case ARG_CLIENT_TIMEOUT:
                        if (parse_seconds(optarg, &arg_client_timeout) < 0)
                                return log_error_errno(-EINVAL, "invalid --client-timeout: %s", optarg);
                        break;
                case ARG_MAX_CLIENTS:
                        if (parse_count(optarg, 65536, &arg_max_clients) < 0)
                                return log_error_errno(-EINVAL, "invalid --max-clients (1 to 65536): %s", optarg);
                        break;
                case ARG_MAX_CLIENTS_PER_USER:
                        if (parse_count(optarg, 65536, &arg_max_clients_per_user) < 0)
                                return log_error_errno(-EINVAL, "invalid --max-clients-per-user (1 to 65536): %s",
                                                       optarg);
                        break;
                case ARG_MAX_FROZEN:
                        if (parse_count(optarg, 1000000, &arg_max_frozen) < 0)
                                return log_error_errno(-EINVAL, "invalid --max-frozen-processes (1 to 1000000): %s",
                                                       optarg);
                        break;
                case ARG_MAX_FROZEN_PER_USER:
                        if (parse_count(optarg, 1000000, &arg_max_frozen_per_user) < 0)
                                return log_error_errno(-EINVAL, "invalid --max-frozen-per-user (1 to 1000000): %s",
                                                       optarg);
                        break;
                case ARG_CONNECTION_LIFETIME:
                        if (parse_seconds(optarg, &arg_connection_lifetime) < 0)
                                return log_error_errno(-EINVAL, "invalid --connection-lifetime: %s", optarg);
                        break;
                case ARG_WATCHERS:
                        r = watcher_mode_from_string(optarg);
                        if (r < 0)
                                return log_error_errno(r, "invalid watcher mode: %s", optarg);
                        arg_watchers = (WatcherMode) r;
                        break;
                case ARG_WATCHER:
                        arg_watcher_binary = optarg;
                        break;
                case ARG_WATCHER_SOCKET:
                        arg_watcher_socket = optarg;
                        break;
                case ARG_POLKIT:
                        arg_polkit = parse_bool(optarg);
                        if (arg_polkit < 0)
                                return log_error_errno(-EINVAL, "invalid boolean: %s", optarg);
                        break;
                case ARG_LAZY_RESTORE:
                        arg_lazy_restore = true;
                        break;
                case ARG_LOG_LEVEL:
                        r = log_parse_level(optarg);
                        if (r < 0)
                                return log_error_errno(r, "invalid log level: %s", optarg);
                        log_set_max_level(r);
                        break;
                default:
                        return -EINVAL;
                }
        if (optind < argc)
                return log_error_errno(-EINVAL, "unexpected argument: %s", argv[optind]);
        return 0;
}

void manager_check_idle(Manager *m) {
        bool idle = m->n_clients == 0 && m->n_operations == 0;

        if (!m->idle_timer)
                return;
        if (idle) {
                (void) sd_event_source_set_time_relative(m->idle_timer, m->idle_timeout);
                (void) sd_event_source_set_enabled(m->idle_timer, SD_EVENT_ONESHOT);
        } else
                (void) sd_event_source_set_enabled(m->idle_timer, SD_EVENT_OFF);
}

static int on_idle(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;

        if (m->n_clients > 0 || m->n_operations > 0)
                return 0;
        log_info("idle, exiting; %zu frozen process(es) stay with their watchers", m->registry.n_entries);
        return sd_event_exit(m->event, 0);
}

static int on_listen(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        (void) manager_accept(userdata);
        return 0;
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Manager *m = userdata;

        log_info("received %s, stopping; frozen processes stay with their watchers", strsignal((int) si->ssi_signo));
        return sd_event_exit(m->event, 0);
}

static int setup_listen(Manager *m) {
        int n, r;

        n = sd_listen_fds(true);
        if (n < 0)
                return log_error_errno(n, "cannot take sockets from systemd: %m");
        if (n > 1)
                return log_error_errno(-EINVAL, "expected one socket from systemd, got %i", n);
        if (n == 1) {
                /* A TCP peer cannot be identified: refuse anything but AF_UNIX. */
                r = socket_is_unix_stream(SD_LISTEN_FDS_START);
                if (r <= 0)
                        return log_error_errno(r < 0 ? r : -EPROTOTYPE,
                                               "the socket passed in is not an AF_UNIX stream socket; refusing to serve it");
                m->listen_fd = SD_LISTEN_FDS_START;
                m->socket_activated = true;
                (void) fcntl(m->listen_fd, F_SETFL, fcntl(m->listen_fd, F_GETFL) | O_NONBLOCK);
                return 0;
        }
        if (!arg_listen)
                return log_error_errno(-EINVAL, "no socket passed in by systemd and no --listen=PATH given");

        m->listen_fd = unix_listen(arg_listen, arg_socket_mode, 128);
        if (m->listen_fd < 0)
                return log_error_errno(m->listen_fd, "cannot listen on %s: %m", arg_listen);
        if (arg_socket_group) {
                struct group *g = getgrnam(arg_socket_group);
                char *end;
                gid_t gid = (gid_t) strtoul(arg_socket_group, &end, 10);
                if (g)
                        gid = g->gr_gid;
                else if (*end)
                        return log_error_errno(-ESRCH, "no such group: %s", arg_socket_group);
                if (chown(arg_listen, (uid_t) -1, gid) < 0)
                        return log_error_errno(-errno, "cannot give %s to group %s: %m", arg_listen, arg_socket_group);
        }
        /* Others must not get in through a mode that lets them. */
        if (arg_socket_mode & 0006)
                return log_error_errno(-EPERM, "socket mode %04o would let every user in; refusing", arg_socket_mode);
        return 0;
}

static int ensure_private_dir(const char *path) {
        if (mkdir(path, 0700) < 0 && errno != EEXIST)
                return log_error_errno(-errno, "cannot create %s: %m", path);
        return private_dir_check(path);
}

static int find_watcher(char **ret) {
        char self[4096], *p;
        ssize_t n;

        if (arg_watcher_binary)
                return (*ret = strdup(arg_watcher_binary)) ? 0 : -ENOMEM;
        /* Next to us (a build tree), else the installed one. */
        n = readlink("/proc/self/exe", self, sizeof(self) - 32);
        if (n > 0) {
                self[n] = 0;
                p = strrchr(self, '/');
                if (p) {
                        strcpy(p + 1, "memcr-watch");
                        if (access(self, X_OK) >= 0)
                                return (*ret = strdup(self)) ? 0 : -ENOMEM;
                        strcpy(p + 1, "../watch/memcr-watch");
                        if (access(self, X_OK) >= 0)
                                return (*ret = strdup(self)) ? 0 : -ENOMEM;
                }
        }
        return (*ret = strdup(MEMCR_LIBEXECDIR "/memcr-watch")) ? 0 : -ENOMEM;
}

/* Every process and connection costs memcrd descriptors: take all the
 * hard limit allows (as systemd services do; the unit sets LimitNOFILE=),
 * and give watchers the limit we were started with. */
static void raise_nofile(struct rlimit *ret_orig) {
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
                *ret_orig = (struct rlimit) { .rlim_cur = RLIM_INFINITY, .rlim_max = RLIM_INFINITY };
                return;
        }
        *ret_orig = rl;
        if (rl.rlim_cur >= rl.rlim_max)
                return;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                log_debug_errno(-errno, "cannot raise RLIMIT_NOFILE to %llu: %m", (unsigned long long) rl.rlim_max);
}

static void check_nofile(const Manager *m) {
        unsigned need = limits_descriptors_needed(m);
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= need)
                return;
        log_warning("with these limits memcrd may need up to %u descriptors, but it may only open %llu "
                    "(RLIMIT_NOFILE): raise LimitNOFILE=, or lower --max-clients=, --max-clients-per-user=, "
                    "--max-frozen-processes= or --max-frozen-per-user=",
                    need, (unsigned long long) rl.rlim_cur);
}

/* Processes running these are memcr's own, never a target: memcrd (this
 * binary) and memcr-watch (the one configured, and wherever find_watcher()
 * would look). */
static void record_own_binaries(Manager *m) {
        char self[4096], *p;
        ssize_t n;

        (void) manager_add_own_binary(m, "/proc/self/exe");
        (void) manager_add_own_binary(m, m->watcher_binary);
        (void) manager_add_own_binary(m, MEMCR_LIBEXECDIR "/memcr-watch");
        n = readlink("/proc/self/exe", self, sizeof(self) - 32);
        if (n <= 0)
                return;
        self[n] = 0;
        p = strrchr(self, '/');
        if (!p)
                return;
        strcpy(p + 1, "memcr-watch");
        (void) manager_add_own_binary(m, self);
        strcpy(p + 1, "../watch/memcr-watch");
        (void) manager_add_own_binary(m, self);
}

static int run(void) {
        Manager m = { .listen_fd = -EBADF };
        struct rlimit nofile;
        sigset_t mask;
        int r;

        raise_nofile(&nofile);

        r = setup_listen(&m);
        if (r < 0)
                goto finish;

        m.runtime_dir = strdup(arg_runtime_dir);
        m.state_dir = strdup(arg_state_dir);
        if (!m.runtime_dir || !m.state_dir || asprintf(&m.watch_dir, "%s/watch", arg_runtime_dir) < 0) {
                r = log_oom();
                goto finish;
        }
        m.dump_dirs = arg_dump_dirs;
        m.n_dump_dirs = arg_n_dump_dirs;
        m.default_codec = arg_codec ? strdup(arg_codec) : NULL;
        m.client_timeout = (usec_t) (arg_client_timeout * 1e6);
        m.connection_lifetime = (usec_t) (arg_connection_lifetime * 1e6);
        m.max_clients = arg_max_clients;
        m.max_clients_per_user = arg_max_clients_per_user;
        m.max_frozen = arg_max_frozen;
        m.max_frozen_per_user = arg_max_frozen_per_user;
        check_nofile(&m);

        /* The runtime directory itself may be shared with the socket; the
         * watchers' directory and every dump directory are ours alone. */
        if (mkdir(m.runtime_dir, 0755) < 0 && errno != EEXIST) {
                r = log_error_errno(-errno, "cannot create %s: %m", m.runtime_dir);
                goto finish;
        }
        r = ensure_private_dir(m.watch_dir);
        if (r >= 0)
                r = ensure_private_dir(m.state_dir);
        for (size_t i = 0; r >= 0 && i < m.n_dump_dirs; i++)
                r = private_dir_check(m.dump_dirs[i]);
        if (r < 0)
                goto finish;

        /* Everything that needed more (binding and handing over the socket,
         * creating directories) is done: keep CAP_SYS_PTRACE, for the
         * watchers we start, and nothing else. */
        r = privileges_drop_to_ptrace();
        if (r < 0)
                goto finish;

        r = sd_event_default(&m.event);
        if (r < 0)
                goto finish;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);
        (void) sd_event_add_signal(m.event, NULL, SIGTERM, on_signal, &m);
        (void) sd_event_add_signal(m.event, NULL, SIGINT, on_signal, &m);

        /* The system bus, for polkit and for watcher units. Optional. */
        if (sd_bus_open_system(&m.bus) >= 0)
                (void) sd_bus_attach_event(m.bus, m.event, 0);
        else
                m.bus = NULL;
        m.polkit = arg_polkit < 0 ? m.bus != NULL : arg_polkit;

#if HAVE_SELINUX
        m.selinux = is_selinux_enabled() > 0;
#endif

        m.watcher.mode = arg_watchers;
        if (m.watcher.mode == WATCHER_MODE_AUTO)
                m.watcher.mode = getenv("INVOCATION_ID") && m.bus ? WATCHER_MODE_SYSTEMD : WATCHER_MODE_FORK;
        if (m.watcher.mode == WATCHER_MODE_SYSTEMD && !m.bus) {
                r = log_error_errno(-ENOTCONN, "watcher units need the system bus, which is not there");
                goto finish;
        }
        r = find_watcher(&m.watcher_binary);
        if (r < 0)
                goto finish;
        if (arg_watcher_socket)
                m.watcher_socket = strdup(arg_watcher_socket);
        else if (asprintf(&m.watcher_socket, "%s/spawn-watcher.sock", m.runtime_dir) < 0)
                m.watcher_socket = NULL;
        if (!m.watcher_socket) {
                r = log_oom();
                goto finish;
        }
        m.watcher.spawn_socket = m.watcher_socket;
        m.watcher.binary = m.watcher_binary;
        m.watcher.watch_dir = m.watch_dir;
        m.watcher.bus = m.bus;
        m.watcher.nofile = nofile;
        record_own_binaries(&m);

        m.registry.event = m.event;
        m.registry.on_exit = manager_on_target_exit;
        m.registry.on_watcher_exit = manager_on_watcher_exit;
        m.lazy_restore = arg_lazy_restore;
        m.registry.userdata = &m;

        r = sd_event_add_io(m.event, &m.listen_source, m.listen_fd, EPOLLIN, on_listen, &m);
        if (r < 0)
                goto finish;

        if (arg_idle_timeout < 0)
                arg_idle_timeout = m.socket_activated ? 30 : 0;
        m.idle_timeout = (usec_t) (arg_idle_timeout * 1e6);
        if (m.idle_timeout > 0) {
                r = sd_event_add_time_relative(m.event, &m.idle_timer, CLOCK_MONOTONIC, m.idle_timeout, 0,
                                               on_idle, &m);
                if (r < 0)
                        goto finish;
        }

        (void) manager_rebuild(&m);
        manager_check_idle(&m);

        log_struct(LOG_INFO, "memcrd started", MESSAGE_ID(MEMCR_MESSAGE_DAEMON_STARTED),
                   LOG_FIELD("MEMCR_WATCHERS", "%s", watcher_mode_to_string(m.watcher.mode)),
                   LOG_FIELD("MEMCR_POLKIT", "%s", m.polkit ? "yes" : "no"), NULL);
        (void) sd_notifyf(false, "READY=1\nSTATUS=Serving requests (%zu frozen)", m.registry.n_entries);

        r = sd_event_loop(m.event);

        (void) sd_notify(false, "STOPPING=1\nSTATUS=Stopping");
        log_struct(LOG_INFO, "memcrd stopped", MESSAGE_ID(MEMCR_MESSAGE_DAEMON_STOPPED),
                   LOG_FIELD("MEMCR_FROZEN", "%zu", m.registry.n_entries), NULL);

finish:
        while (m.clients)
                client_free(m.clients);
        while (m.operations)
                operation_free(m.operations);
        registry_clear(&m.registry);
        sd_event_source_disable_unref(m.listen_source);
        sd_event_source_disable_unref(m.accept_retry);
        sd_event_source_disable_unref(m.idle_timer);
        if (!m.socket_activated && m.listen_fd >= 0) {
                /* The socket we bound ourselves goes with us. */
                safe_close(m.listen_fd);
                if (arg_listen)
                        (void) unlink(arg_listen);
        }
        sd_bus_flush_close_unref(m.bus);
        sd_event_unref(m.event);
        free(m.runtime_dir);
        free(m.watch_dir);
        free(m.state_dir);
        free(m.default_codec);
        free(m.watcher_binary);
        free(m.watcher_socket);
        return r;
}

int main(int argc, char *argv[]) {
        int r;

        log_set_ident("memcrd");
        log_parse_environment();
        r = parse_argv(argc, argv);
        if (r < 0)
                return EXIT_FAILURE;
        r = run();
        free(arg_dump_dirs);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
