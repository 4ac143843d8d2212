/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Identities of a process: its uids, gids and capability sets, plus the few
 * facts from /proc/PID/stat that decide whether it can be a target at all.
 * Also the identity of a client of the daemon, as captured when it connected.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* PF_KTHREAD in the flags field of /proc/PID/stat. */
#define PROC_PF_KTHREAD 0x00200000U

enum {
        PROC_ID_REAL,
        PROC_ID_EFFECTIVE,
        PROC_ID_SAVED,
        PROC_ID_FS,
        _PROC_ID_MAX,
};

typedef struct ProcCreds {
        pid_t pid;
        uid_t uid[_PROC_ID_MAX];  /* real, effective, saved, filesystem ("Uid:" of /proc/PID/status) */
        gid_t gid[_PROC_ID_MAX];  /* the same for "Gid:" */
        uint64_t cap_inheritable;
        uint64_t cap_permitted;
        uint64_t cap_effective;
        uint64_t cap_ambient;
        uint64_t cap_bounding;
        bool kernel_thread;       /* PF_KTHREAD set */
        bool zombie;              /* state Z or X */
        char comm[16];            /* NUL-terminated, raw bytes as the kernel keeps them */
        uint64_t start_time;      /* field 22 of /proc/PID/stat: clock ticks since boot */
} ProcCreds;

/*
 * Read the identity of pid. The effective, permitted and inheritable sets
 * come from libcap (cap_get_pid()); where that fails (zombies, kernel
 * threads) they are taken from /proc/PID/status instead. Ambient and
 * bounding sets always come from /proc/PID/status.
 *
 * Every file is opened relative to one /proc/PID directory fd, and the
 * process is checked to still exist after cap_get_pid(), so all values
 * describe the same process even if its pid is reused meanwhile.
 *
 * Returns -ESRCH if the process does not exist (or vanished while being
 * read), -EBADMSG if /proc contents could not be parsed.
 */
int proc_creds_read(pid_t pid, ProcCreds *ret); /* pid > 0 */

/* Parsers of the text of /proc/PID/status (uids, gids and the five
 * capability sets; a missing CapAmb line reads as an empty set) and of
 * /proc/PID/stat (comm, zombie, kernel_thread, start_time). They set only
 * those fields of c, and only on success; -EBADMSG on malformed text. */
int proc_status_parse(const char *text, ProcCreds *c);
int proc_stat_parse(const char *text, ProcCreds *c);

/* What authorization judged a target by: its ids, its capability sets and
 * the identity of its executable. memcrd hands it to the watcher as text,
 * and the watcher compares it with the target once every thread is stopped:
 * a process that executed a set-uid or file-capability program meanwhile is
 * not the one that was authorized. */
typedef struct ProcIdentity {
        ProcCreds creds;
        uint64_t exe_dev;
        uint64_t exe_ino;
} ProcIdentity;

#define PROC_IDENTITY_STRING_MAX 256

int proc_identity_read(pid_t pid, ProcIdentity *ret);
/* Only the executable's identity (the creds are read already). */
int proc_identity_read_exe(pid_t pid, ProcIdentity *id);
int proc_identity_to_string(const ProcIdentity *id, char *buf, size_t size);
int proc_identity_from_string(const char *s, ProcIdentity *ret);
/* NULL if a and b are the same identity, else what differs ("uids", "gids",
 * "capabilities", "executable"). */
const char *proc_identity_differs(const ProcIdentity *a, const ProcIdentity *b);

/* A client of the daemon, as captured at accept time (SO_PEERCRED, SO_PEERGROUPS). */
typedef struct CallerCreds {
        pid_t pid;
        uid_t uid;
        gid_t gid;
        gid_t *groups;            /* supplementary groups, owned */
        size_t n_groups;
        uint64_t cap_effective;   /* from proc_creds_read() of the caller's (pidfd-verified) pid */
} CallerCreds;

/* Free what c owns and reset it; c itself is not freed. */
void caller_creds_done(CallerCreds *c);
