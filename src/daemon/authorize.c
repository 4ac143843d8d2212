/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc-util.h"
#include "authorize.h"
#include "bus-util.h"
#include "client.h"
#include "config.h"
#include "log.h"
#include "macro.h"
#include "memcr-ids.h"
#include "pidfd-util.h"
#include "proc-creds.h"

#if HAVE_SELINUX
#include <selinux/selinux.h>
#endif

#define POLKIT_ACTION "org.memcr.manage-other"

struct AuthRequest {
        Client *client;
        PolicyOp op;
        pid_t pid;
        const char *rule_reason; /* why the rules alone did not allow it (static) */
        sd_bus_slot *slot;
        authorize_verdict_t cb;
        void *userdata;
};

/* Is pid in our user namespace? 1, 0, or -errno (then: assume not). */
static int same_user_namespace(pid_t pid) {
        struct stat a, b;
        char path[64];

        snprintf(path, sizeof(path), "/proc/%i/ns/user", pid);
        if (stat(path, &a) < 0 || stat("/proc/self/ns/user", &b) < 0)
                return -errno;
        return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

int authorize_capture_peer(Manager *m, Client *c, int fd) {
        ProcCreds pc;
        int r;

        /* The caller's capabilities count in rule 2 (a caller holding a
         * capability may freeze a target holding it). Read them through the
         * pinned process only. */
        if (c->pidfd >= 0) {
                r = proc_creds_read(c->creds.pid, &pc);
                if (r >= 0 && pidfd_is_alive(c->pidfd) > 0) {
                        /* Capabilities count only in our user namespace: in a
                         * namespace of its own a caller holds them all, over
                         * nothing of ours. */
                        c->creds.cap_effective = same_user_namespace(c->creds.pid) > 0 ? pc.cap_effective : 0;
                        c->start_time = pc.start_time;
                }
        }

#if HAVE_SELINUX
        if (m->selinux) {
                char *con = NULL;
                if (getpeercon(fd, &con) < 0)
                        return log_warning_errno(-errno, "cannot get the security context of peer %i: %m",
                                                 c->creds.pid);
                c->label = strdup(con);
                freecon(con);
                if (!c->label)
                        return -ENOMEM;
        }
#endif
        return 0;
}

static void log_decision(Client *c, PolicyOp op, pid_t pid, bool allowed, const char *how, const char *reason) {
        char text[512];

        snprintf(text, sizeof(text), "%s of %i by uid %u (PID %i) %s (%s): %s", policy_op_to_string(op), (int) pid,
                 c->creds.uid, (int) c->creds.pid, allowed ? "allowed" : "denied", how, reason);
        log_struct(allowed ? LOG_INFO : LOG_NOTICE, text,
                   MESSAGE_ID(allowed ? MEMCR_MESSAGE_AUTH_ALLOWED : MEMCR_MESSAGE_AUTH_DENIED),
                   LOG_FIELD("MEMCR_OP", "%s", policy_op_to_string(op)), LOG_FIELD("MEMCR_PID", "%i", (int) pid),
                   LOG_FIELD("MEMCR_CALLER_UID", "%u", c->creds.uid),
                   LOG_FIELD("MEMCR_CALLER_PID", "%i", (int) c->creds.pid),
                   LOG_FIELD("MEMCR_RESULT", "%s", allowed ? "allowed" : "denied"),
                   LOG_FIELD("MEMCR_AUTH", "%s", how), LOG_FIELD("MEMCR_REASON", "%s", reason), NULL);
}

static int selinux_check(Client *c, pid_t pid, const char **ret_reason) {
#if HAVE_SELINUX
        char *tcon = NULL;
        int r;

        if (!c->manager->selinux || !c->label)
                return 0;
        /* memcr must not be a confused deputy: the caller itself must be
         * allowed to ptrace the target. */
        if (getpidcon(pid, &tcon) < 0) {
                *ret_reason = "cannot read the target's security context";
                return -errno;
        }
        r = selinux_check_access(c->label, tcon, "process", "ptrace", NULL);
        freecon(tcon);
        if (r < 0) {
                *ret_reason = "SELinux does not allow the caller to ptrace the target";
                return -EACCES;
        }
#endif
        return 0;
}

static void deny(Client *c, PolicyOp op, pid_t pid, int error, const char *how, const char *reason,
                 authorize_verdict_t cb, void *userdata) {
        char buf[512];

        log_decision(c, op, pid, false, how, reason);
        snprintf(buf, sizeof(buf), "%s of %i denied: %s", policy_op_to_string(op), pid, reason);
        cb(error, buf, userdata);
}

AuthRequest *auth_request_cancel(AuthRequest *a) {
        if (!a)
                return NULL;
        sd_bus_slot_unref(a->slot);
        return mfree(a);
}

/* polkit's answer: whether, and if not, why not. 0 or -EPERM. */
static int polkit_verdict(AuthRequest *a, sd_bus_message *reply, char *reason, size_t size) {
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        int authorized = 0, challenge = 0, r;

        if (e) {
                /* No polkitd, or it failed: never "allowed"; and say which. */
                char what[320];
                polkit_error_describe(e, what, sizeof(what));
                snprintf(reason, size, "%s, and %s", a->rule_reason, what);
                return -EPERM;
        }
        r = sd_bus_message_enter_container(reply, 'r', "bba{ss}");
        if (r >= 0)
                r = sd_bus_message_read(reply, "bb", &authorized, &challenge);
        if (r < 0) {
                snprintf(reason, size, "polkit sent an answer that could not be read");
                return -EPERM;
        }
        if (!authorized) {
                snprintf(reason, size, "%s",
                         challenge ? "authentication required (try --ask-password)" : "polkit did not authorize it");
                return -EPERM;
        }
        return 0;
}

static int on_polkit_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        AuthRequest *a = userdata;
        Client *c = a->client;
        const char *reason = NULL;
        char buf[448];
        int r;

        r = polkit_verdict(a, reply, buf, sizeof(buf));
        if (r < 0)
                deny(c, a->op, a->pid, r, "polkit", buf, a->cb, a->userdata);
        else if ((r = selinux_check(c, a->pid, &reason)) < 0)
                deny(c, a->op, a->pid, r, "selinux", reason, a->cb, a->userdata);
        else {
                log_decision(c, a->op, a->pid, true, "polkit", "polkit authorized " POLKIT_ACTION);
                a->cb(0, NULL, a->userdata);
        }
        auth_request_cancel(a);
        return 0;
}

static int ask_polkit(Client *c, PolicyOp op, pid_t pid, const char *rule_reason, authorize_verdict_t cb,
                      void *userdata, AuthRequest **ret) {
        Manager *m = c->manager;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *msg = NULL;
        _cleanup_(auth_request_cancelp) AuthRequest *a = NULL;
        char pid_str[32];
        int r;

        a = new(AuthRequest, 1);
        if (!a)
                return -ENOMEM;
        *a = (AuthRequest) { .client = c, .op = op, .pid = pid, .rule_reason = rule_reason, .cb = cb,
                             .userdata = userdata };

        r = sd_bus_message_new_method_call(m->bus, &msg, "org.freedesktop.PolicyKit1",
                                           "/org/freedesktop/PolicyKit1/Authority",
                                           "org.freedesktop.PolicyKit1.Authority", "CheckAuthorization");
        if (r < 0)
                return r;
        /* Subject: the calling process, pinned by its start time (and uid). */
        r = sd_bus_message_append(msg, "(sa{sv})", "unix-process", 3, "pid", "u", (uint32_t) c->creds.pid,
                                  "start-time", "t", c->start_time, "uid", "i", (int32_t) c->creds.uid);
        if (r < 0)
                return r;
        snprintf(pid_str, sizeof(pid_str), "%i", pid);
        r = sd_bus_message_append(msg, "s", POLKIT_ACTION);
        if (r >= 0)
                r = sd_bus_message_append(msg, "a{ss}", 2, "pid", pid_str, "operation", policy_op_to_string(op));
        if (r >= 0)
                r = sd_bus_message_append(msg, "us", (uint32_t) ((c->flags & REQUEST_FLAG_INTERACTIVE) ? 1 : 0), "");
        if (r < 0)
                return r;
        r = sd_bus_call_async(m->bus, &a->slot, msg, on_polkit_reply, a,
                              (c->flags & REQUEST_FLAG_INTERACTIVE) ? 5 * 60 * USEC_PER_SEC : 25 * USEC_PER_SEC);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(a);
        return 0;
}

int authorize(Client *c, PolicyOp op, pid_t pid, int pidfd, authorize_verdict_t cb, void *userdata,
              AuthRequest **ret) {
        Manager *m = c->manager;
        Entry *e = registry_find(&m->registry, pid);
        PolicyDecision d;
        ProcCreds target;
        const char *reason = NULL;
        int r;

        *ret = NULL;
        r = proc_creds_read(pid, &target);
        if (r >= 0 && op == POLICY_OP_CHECKPOINT) {
                /* What is judged here is what the watcher will hold the target
                 * to once it is stopped. (No executable: a kernel thread, refused
                 * below anyway.) */
                c->target_identity = (ProcIdentity) { .creds = target };
                (void) proc_identity_read_exe(pid, &c->target_identity);
        }
        if (r >= 0 && pidfd_is_alive(pidfd) <= 0)
                r = -ESRCH; /* the PID was reused between pidfd_open and now */
        if (r < 0) {
                deny(c, op, pid, -ESRCH, "policy", "no such process", cb, userdata);
                return 0;
        }

        PolicyInput in = {
                .op = op,
                .caller = &c->creds,
                .target = &target,
                .daemon_pid = getpid(),
                .target_frozen = e != NULL,
                .target_streaming = e && e->state == ENTRY_STREAMING,
                .frozen_by_uid = e ? e->caller_uid : (uid_t) -1,
                .polkit_available = m->polkit && m->bus,
        };
        const char *own = NULL;
        if (manager_is_own_process(m, &target, &own))
                in.own_process = own;
        policy_decide(&in, &d);

        if (d.verdict == POLICY_DENY) {
                deny(c, op, pid, d.error, "policy", d.reason, cb, userdata);
                return 0;
        }
        if (d.verdict == POLICY_ASK_POLKIT) {
                r = ask_polkit(c, op, pid, d.reason, cb, userdata, ret);
                if (r < 0) {
                        char buf[384];
                        snprintf(buf, sizeof(buf), "%s; polkit could not be asked: %s", d.reason,
                                 r == -ENOTCONN || r == -ECONNRESET ? "the system bus connection is gone"
                                                                     : strerror(-r));
                        deny(c, op, pid, -EPERM, "polkit", buf, cb, userdata);
                }
                return 0;
        }

        r = selinux_check(c, pid, &reason);
        if (r < 0) {
                deny(c, op, pid, r, "selinux", reason, cb, userdata);
                return 0;
        }
        log_decision(c, op, pid, true, "policy", d.reason);
        cb(0, NULL, userdata);
        return 0;
}
