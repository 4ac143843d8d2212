/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * The Manager: memcrd's state, its start-up and its loop, when it exits
 * idle, and what it makes of a frozen process whose target or watcher
 * exits while no operation is under way.
 */

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "client.h"
#include "config.h"
#include "fileio.h"
#include "log.h"
#include "macro.h"
#include "manager.h"
#include "memcr-ids.h"
#include "operation.h"
#include "pidfd-util.h"
#include "privileges.h"
#include "rebuild.h"
#include "setup.h"
#include "watcher-socket.h"

#if HAVE_SELINUX
#include <selinux/selinux.h>
#endif

/* Requests about frozen processes wait this long at most, at start-up, for
 * the watchers found to say what they hold. */
#define REBUILD_GRACE_USEC (1 * USEC_PER_SEC)

static usec_t seconds(double s) {
        return (usec_t) (s * 1e6);
}

int manager_new(const ManagerConfig *cfg, Manager **ret) {
        _cleanup_(manager_freep) Manager *m = calloc(1, sizeof(Manager));

        if (!m)
                return log_oom();
        m->listen_fd = -EBADF;
        m->default_codec = cfg->codec ? strdup(cfg->codec) : NULL;
        if (cfg->codec && !m->default_codec)
                return log_oom();
        m->client_timeout = seconds(cfg->client_timeout);
        m->connection_lifetime = seconds(cfg->connection_lifetime);
        m->watcher_timeout = seconds(cfg->watcher_timeout);
        m->max_clients = cfg->max_clients;
        m->max_clients_per_user = cfg->max_clients_per_user;
        m->max_frozen = cfg->max_frozen;
        m->max_frozen_per_user = cfg->max_frozen_per_user;
        m->lazy_restore = cfg->lazy_restore;
        *ret = TAKE_PTR(m);
        return 0;
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        while (m->clients)
                client_free(m->clients);
        while (m->operations)
                operation_free(m->operations);
        while (m->rebuilds)
                rebuild_free(m->rebuilds);
        registry_clear(&m->registry);
        sd_event_source_disable_unref(m->listen_source);
        sd_event_source_disable_unref(m->accept_retry);
        sd_event_source_disable_unref(m->idle_timer);
        sd_event_source_disable_unref(m->idle_check);
        sd_event_source_disable_unref(m->rebuild_grace);
        if (!m->socket_activated && m->listen_fd >= 0) {
                /* The socket we bound ourselves goes with us. */
                safe_close(m->listen_fd);
                if (m->listen_path)
                        (void) unlink(m->listen_path);
        }
        sd_bus_flush_close_unref(m->bus);
        sd_event_unref(m->event);
        free(m->listen_path);
        free(m->runtime_dir);
        free(m->watch_dir);
        free(m->state_dir);
        free(m->default_codec);
        free(m->watcher_binary);
        free(m->watcher_socket);
        return mfree(m);
}

static bool manager_is_idle(Manager *m) {
        return m->n_clients == 0 && m->n_operations == 0 && m->n_rebuilds == 0;
}

static int on_idle(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;

        /* The timer may have been due in the same wait as a connection that
         * was accepted before it ran (and before on_event_done() could turn
         * it off): exiting now would drop that caller. Idle again later,
         * the timer starts again. */
        if (!manager_is_idle(m)) {
                m->idle = false;
                return 0;
        }
        log_info("idle, exiting; %zu frozen process(es) stay with their watchers", m->registry.n_entries);
        return sd_event_exit(m->event, 0);
}

/* After every event: idle now (no connection, nothing under way)? Then the
 * idle timer runs, from the moment memcrd became idle. And requests that
 * waited for the start-up to settle go on. */
static int on_event_done(sd_event_source *s, void *userdata) {
        Manager *m = userdata;
        bool idle = manager_is_idle(m);

        if (m->waiting && manager_registry_settled(m))
                client_resume_waiting(m);
        if (m->idle_timer && idle && !m->idle) {
                (void) sd_event_source_set_time_relative(m->idle_timer, m->idle_timeout);
                (void) sd_event_source_set_enabled(m->idle_timer, SD_EVENT_ONESHOT);
        } else if (m->idle_timer && !idle)
                (void) sd_event_source_set_enabled(m->idle_timer, SD_EVENT_OFF);
        m->idle = idle;
        return 0;
}

static int on_rebuild_grace(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;

        m->rebuild_grace = sd_event_source_disable_unref(m->rebuild_grace);
        return 0;
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

static void on_target_exit(Entry *e, void *userdata);
static void on_watcher_exit(Entry *e, void *userdata);

static int setup_event(Manager *m) {
        sigset_t mask;
        int r;

        r = sd_event_default(&m->event);
        if (r < 0)
                return r;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);
        (void) sd_event_add_signal(m->event, NULL, SIGTERM, on_signal, m);
        (void) sd_event_add_signal(m->event, NULL, SIGINT, on_signal, m);

        /* The system bus, for polkit and for watcher units. Optional. */
        if (sd_bus_open_system(&m->bus) >= 0)
                (void) sd_bus_attach_event(m->bus, m->event, 0);
        else
                m->bus = NULL;

        m->registry.event = m->event;
        m->registry.on_exit = on_target_exit;
        m->registry.on_watcher_exit = on_watcher_exit;
        m->registry.userdata = m;
        r = sd_event_add_io(m->event, &m->listen_source, m->listen_fd, EPOLLIN, on_listen, m);
        if (r >= 0)
                r = sd_event_add_post(m->event, &m->idle_check, on_event_done, m);
        if (r >= 0 && m->idle_timeout > 0) {
                r = sd_event_add_time_relative(m->event, &m->idle_timer, CLOCK_MONOTONIC, m->idle_timeout, 0,
                                               on_idle, m);
                if (r >= 0)
                        r = sd_event_source_set_enabled(m->idle_timer, SD_EVENT_OFF);
        }
        return r;
}

int manager_startup(Manager *m, const ManagerConfig *cfg) {
        struct rlimit nofile;
        int r;

        setup_raise_nofile(&nofile);
        r = setup_listen(m, cfg);
        if (r < 0)
                return r;
        r = setup_directories(m, cfg);
        if (r < 0)
                return r;
        setup_check_nofile(m);
        /* Everything that needed more (binding and handing over the socket,
         * creating directories) is done: keep CAP_SYS_PTRACE, for the
         * watchers we start, and nothing else. */
        r = privileges_drop_to_ptrace();
        if (r < 0)
                return r;
        m->idle_timeout = seconds(cfg->idle_timeout >= 0 ? cfg->idle_timeout : m->socket_activated ? 30 : 0);
        r = setup_event(m);
        if (r < 0)
                return r;
        m->polkit = cfg->polkit < 0 ? m->bus != NULL : cfg->polkit;
#if HAVE_SELINUX
        m->selinux = is_selinux_enabled() > 0;
#endif
        r = setup_watchers(m, cfg, &nofile);
        if (r < 0)
                return r;

        (void) rebuild_start(m);
        if (m->n_rebuilds > 0)
                (void) sd_event_add_time_relative(m->event, &m->rebuild_grace, CLOCK_MONOTONIC, REBUILD_GRACE_USEC,
                                                  0, on_rebuild_grace, m);
        log_struct(LOG_INFO, "memcrd started", MESSAGE_ID(MEMCR_MESSAGE_DAEMON_STARTED),
                   LOG_FIELD("MEMCR_WATCHERS", "%s", watcher_mode_to_string(m->watcher.mode)),
                   LOG_FIELD("MEMCR_POLKIT", "%s", m->polkit ? "yes" : "no"), NULL);
        return 0;
}

int manager_run(Manager *m) {
        int r;

        (void) sd_notifyf(false, "READY=1\nSTATUS=Serving requests (%zu frozen)", m->registry.n_entries);
        r = sd_event_loop(m->event);
        (void) sd_notify(false, "STOPPING=1\nSTATUS=Stopping");
        log_struct(LOG_INFO, "memcrd stopped", MESSAGE_ID(MEMCR_MESSAGE_DAEMON_STOPPED),
                   LOG_FIELD("MEMCR_FROZEN", "%zu", m->registry.n_entries), NULL);
        return r;
}

static void on_target_exit(Entry *e, void *userdata) {
        Manager *m = userdata;
        char text[256];

        if (e->op)
                return; /* the operation finds out itself */
        if (e->state == ENTRY_STREAMING)
                return; /* it was running: its watcher saw how it ended, and tells at its exit */
        /* A watcher that died left its socket behind (nobody listens); one
         * that saw its process killed says so itself, cleans up and exits. */
        if (!watcher_socket_remove_stale(m->watch_dir, e->pid)) {
                log_debug("frozen process %i is gone; its watcher reports how", e->pid);
                registry_remove(&m->registry, e);
                return;
        }
        snprintf(text, sizeof(text),
                 "frozen process %i is gone: its watcher died, and the kernel killed it with it (fail-safe: its "
                 "memory was in the dump)",
                 e->pid);
        log_struct(LOG_WARNING, text, MESSAGE_ID(MEMCR_MESSAGE_TARGET_EXITED), LOG_FIELD("MEMCR_PID", "%i", (int) e->pid),
                   LOG_FIELD("MEMCR_CALLER_UID", "%u", e->caller_uid),
                   LOG_FIELD("MEMCR_REASON", "%s", "watcher-died"), NULL);
        registry_remove(&m->registry, e);
}

/* Without a word from the watcher: it died (and took the process along),
 * or it had let the process go, all memory back, just before the process
 * ended. Logged here, as nobody else knows. */
static char *streaming_ended_unknown(Manager *m, const Entry *e, char *state, size_t size) {
        bool watcher_died = watcher_socket_remove_stale(m->watch_dir, e->pid);
        char buf[384];

        snprintf(buf, sizeof(buf),
                 watcher_died ? "process %i ended while its memory streamed back: its watcher died, and the "
                                "kernel killed it with it (fail-safe: memory was missing)"
                              : "process %i ended right after its lazy restore completed; how is not known",
                 e->pid);
        log_struct(LOG_WARNING, buf, MESSAGE_ID(MEMCR_MESSAGE_RESTORED_DIED),
                   LOG_FIELD("MEMCR_PID", "%i", (int) e->pid), LOG_FIELD("MEMCR_OP", "%s", "restore"),
                   LOG_FIELD("MEMCR_RESTORE", "%s", "lazy"),
                   LOG_FIELD("MEMCR_EXIT", "%s", watcher_died ? "killed with its watcher" : "unknown"),
                   LOG_FIELD("MEMCR_EXITED_USEC", "%s", "unknown"), LOG_FIELD("MEMCR_CALLER_UID", "%u", e->caller_uid),
                   NULL);
        snprintf(state, size, watcher_died ? "killed" : "ended");
        return strdup(buf);
}

/* A lazily restored process ended while its watcher streamed its memory
 * back: the watcher said how (and logged it) in WATCH_DIR/PID.ended. Keep
 * that for status and list. */
static void streaming_ended(Manager *m, Entry *e) {
        _cleanup_free_ char *text = NULL;
        char path[4096], state[32] = "ended";
        const char *p;

        snprintf(path, sizeof(path), "%s/%i.ended", m->watch_dir, e->pid);
        /* Its first line is the short state, the second the whole story. */
        if (read_full_file(path, 1024, &text, NULL) >= 0 && (p = strchr(text, '\n'))) {
                (void) unlink(path);
                snprintf(state, sizeof(state), "%.*s", (int) (p - text), text);
                memmove(text, p + 1, strlen(p + 1) + 1);
        } else {
                free(text);
                text = streaming_ended_unknown(m, e, state, sizeof(state));
        }
        registry_add_ended(&m->registry, e, state, text ?: "ended");
        registry_remove(&m->registry, e);
}

/* The watcher holding e exited. With an operation under way, the operation
 * finds out; a target that died is for on_target_exit(). Otherwise the
 * watcher let the process go by itself: stopped (SIGTERM, systemctl stop),
 * its maximum frozen time reached, or its streaming done; it logged that. */
static void on_watcher_exit(Entry *e, void *userdata) {
        Manager *m = userdata;

        if (e->op)
                return;
        if (e->state == ENTRY_STREAMING && pidfd_is_alive(e->pidfd) <= 0) {
                streaming_ended(m, e);
                return;
        }
        if (pidfd_is_alive(e->pidfd) <= 0)
                return;
        if (e->state == ENTRY_STREAMING)
                /* The watcher logged it, with the figures of the streaming. */
                log_debug("%i is fully back in memory, released by its watcher", e->pid);
        else {
                char text[128];
                snprintf(text, sizeof(text), "%i was restored by its watcher", e->pid);
                log_struct(LOG_INFO, text, LOG_FIELD("MEMCR_PID", "%i", (int) e->pid),
                           LOG_FIELD("MEMCR_OP", "%s", "restore"), LOG_FIELD("MEMCR_RESULT", "%s", "ok"),
                           LOG_FIELD("MEMCR_CALLER_UID", "%u", e->caller_uid),
                           LOG_FIELD("MEMCR_REASON", "%s", "watcher"), NULL);
        }
        registry_remove(&m->registry, e);
}
