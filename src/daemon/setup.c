/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "macro.h"
#include "privileges.h"
#include "setup.h"
#include "socket-util.h"

void setup_raise_nofile(struct rlimit *ret_orig) {
        struct rlimit rl;

        /* Every process and connection costs memcrd descriptors: take all
         * the hard limit allows (as systemd services do; the unit sets
         * LimitNOFILE=), and give watchers the limit we were started with. */
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

void setup_check_nofile(const Manager *m) {
        unsigned need = limits_descriptors_needed(m);
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= need)
                return;
        log_warning("with these limits memcrd may need up to %u descriptors, but it may only open %llu "
                    "(RLIMIT_NOFILE): raise LimitNOFILE=, or lower --max-clients=, --max-clients-per-user=, "
                    "--max-frozen-processes= or --max-frozen-per-user=",
                    need, (unsigned long long) rl.rlim_cur);
}

static int take_systemd_socket(Manager *m) {
        int r;

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

int setup_listen(Manager *m, const ManagerConfig *cfg) {
        int n;

        n = sd_listen_fds(true);
        if (n < 0)
                return log_error_errno(n, "cannot take sockets from systemd: %m");
        if (n > 1)
                return log_error_errno(-EINVAL, "expected one socket from systemd, got %i", n);
        if (n == 1)
                return take_systemd_socket(m);
        if (!cfg->listen)
                return log_error_errno(-EINVAL, "no socket passed in by systemd and no --listen=PATH given");

        /* Others must not get in through a mode that lets them. */
        if (cfg->socket_mode & 0006)
                return log_error_errno(-EPERM, "socket mode %04o would let every user in; refusing",
                                       cfg->socket_mode);
        gid_t gid = (gid_t) -1;
        if (cfg->socket_group) {
                struct group *g = getgrnam(cfg->socket_group);
                char *end;
                gid = (gid_t) strtoul(cfg->socket_group, &end, 10);
                if (g)
                        gid = g->gr_gid;
                else if (*end)
                        return log_error_errno(-ESRCH, "no such group: %s", cfg->socket_group);
        }
        m->listen_fd = unix_listen(cfg->listen, cfg->socket_mode, gid, 128);
        if (m->listen_fd < 0)
                return log_error_errno(m->listen_fd, "cannot listen on %s%s%s: %m", cfg->listen,
                                       cfg->socket_group ? " for group " : "", cfg->socket_group ?: "");
        m->listen_path = strdup(cfg->listen);
        if (!m->listen_path)
                return log_oom();
        return 0;
}

static int ensure_private_dir(const char *path) {
        if (mkdir(path, 0700) < 0 && errno != EEXIST)
                return log_error_errno(-errno, "cannot create %s: %m", path);
        return private_dir_check(path);
}

int setup_directories(Manager *m, const ManagerConfig *cfg) {
        int r;

        m->runtime_dir = strdup(cfg->runtime_dir);
        m->state_dir = strdup(cfg->state_dir);
        if (!m->runtime_dir || !m->state_dir || asprintf(&m->watch_dir, "%s/watch", cfg->runtime_dir) < 0)
                return log_oom();
        m->dump_dirs = cfg->dump_dirs;
        m->n_dump_dirs = cfg->n_dump_dirs;

        /* The runtime directory itself may be shared with the socket; the
         * watchers' directory and every dump directory are ours alone. */
        if (mkdir(m->runtime_dir, 0755) < 0 && errno != EEXIST)
                return log_error_errno(-errno, "cannot create %s: %m", m->runtime_dir);
        r = ensure_private_dir(m->watch_dir);
        if (r >= 0)
                r = ensure_private_dir(m->state_dir);
        for (size_t i = 0; r >= 0 && i < m->n_dump_dirs; i++)
                r = private_dir_check(m->dump_dirs[i]);
        return r;
}

/* Where memcr-watch may be besides the configured and the installed one:
 * next to us (a build tree). */
static const char *const watcher_neighbours[] = { "memcr-watch", "../watch/memcr-watch" };

static int find_watcher(const ManagerConfig *cfg, char **ret) {
        char self[4096], *p;
        ssize_t n;

        if (cfg->watcher_binary)
                return (*ret = strdup(cfg->watcher_binary)) ? 0 : -ENOMEM;
        n = readlink("/proc/self/exe", self, sizeof(self) - 32);
        if (n > 0) {
                self[n] = 0;
                p = strrchr(self, '/');
                for (size_t i = 0; p && i < ELEMENTSOF(watcher_neighbours); i++) {
                        strcpy(p + 1, watcher_neighbours[i]);
                        if (access(self, X_OK) >= 0)
                                return (*ret = strdup(self)) ? 0 : -ENOMEM;
                }
        }
        return (*ret = strdup(MEMCR_LIBEXECDIR "/memcr-watch")) ? 0 : -ENOMEM;
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
        for (size_t i = 0; p && i < ELEMENTSOF(watcher_neighbours); i++) {
                strcpy(p + 1, watcher_neighbours[i]);
                (void) manager_add_own_binary(m, self);
        }
}

int setup_watchers(Manager *m, const ManagerConfig *cfg, const struct rlimit *nofile) {
        int r;

        m->watcher.mode = cfg->watchers;
        if (m->watcher.mode == WATCHER_MODE_AUTO)
                m->watcher.mode = getenv("INVOCATION_ID") && m->bus ? WATCHER_MODE_SYSTEMD : WATCHER_MODE_FORK;
        if (m->watcher.mode == WATCHER_MODE_SYSTEMD && !m->bus)
                return log_error_errno(-ENOTCONN, "watcher units need the system bus, which is not there");
        r = find_watcher(cfg, &m->watcher_binary);
        if (r < 0)
                return r;
        if (cfg->watcher_socket)
                m->watcher_socket = strdup(cfg->watcher_socket);
        else if (asprintf(&m->watcher_socket, "%s/spawn-watcher.sock", m->runtime_dir) < 0)
                m->watcher_socket = NULL;
        if (!m->watcher_socket)
                return log_oom();
        m->watcher.spawn_socket = m->watcher_socket;
        m->watcher.binary = m->watcher_binary;
        m->watcher.watch_dir = m->watch_dir;
        m->watcher.bus = m->bus;
        m->watcher.nofile = *nofile;
        record_own_binaries(m);
        return 0;
}
