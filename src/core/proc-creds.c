/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <ctype.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <inttypes.h>
#include <sys/capability.h>
#include <sys/stat.h>

#include "fileio.h"
#include "log.h"
#include "macro.h"
#include "proc-creds.h"
#include "procfs.h"

#define PROC_FILE_MAX (64 * 1024)

/* Fields of /proc/PID/stat, numbered from 1 as in proc(5). */
#define STAT_FIELD_STATE 3
#define STAT_FIELD_FLAGS 9
#define STAT_FIELD_STARTTIME 22

DEFINE_TRIVIAL_CLEANUP_FUNC(cap_t, cap_free);

static bool errno_is_gone(int e) {
        return e == ENOENT || e == ESRCH;
}

/* A file below the open directory /proc/PID, read into c by parse(). A
 * process that has been reaped meanwhile shows up as ENOENT (lookup) or ESRCH
 * (read): both mean -ESRCH. */
static int read_proc_file(int dir_fd, pid_t pid, const char *name, int (*parse)(const char *text, ProcCreds *c),
                          ProcCreds *c) {
        _cleanup_free_ char *text = NULL;
        _cleanup_close_ int fd = -EBADF;
        int r;

        fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return errno_is_gone(errno) ? -ESRCH : -errno;
        r = read_full_fd(fd, PROC_FILE_MAX, &text, NULL);
        if (r < 0)
                return errno_is_gone(-r) ? -ESRCH : r;
        r = parse(text, c);
        if (r < 0)
                return log_debug_errno(r, "Cannot parse /proc/%i/%s: %m", pid, name);
        return 0;
}

/* Unsigned decimal number at *p (after optional blanks), stored in *ret, *p
 * moved past it. */
static int parse_dec(const char **p, uint64_t max, uint64_t *ret) {
        const char *s = *p;
        unsigned long long v;
        char *end;

        while (*s == ' ' || *s == '\t')
                s++;
        if (!isdigit((unsigned char) *s))
                return -EBADMSG;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno != 0 || v > max)
                return -EBADMSG;
        *p = end;
        *ret = v;
        return 0;
}

/* "Uid" and "Gid" lines: real, effective, saved and filesystem id. */
static int parse_ids(const char *text, const char *key, uint32_t ret[static _PROC_ID_MAX]) {
        uint32_t ids[_PROC_ID_MAX];
        const char *p;
        int r;

        p = procfs_status_find(text, key);
        if (!p)
                return -EBADMSG;
        for (size_t i = 0; i < _PROC_ID_MAX; i++) {
                uint64_t v;

                r = parse_dec(&p, UINT32_MAX, &v);
                if (r < 0)
                        return r;
                ids[i] = (uint32_t) v;
        }
        while (*p == ' ' || *p == '\t')
                p++;
        if (*p != '\n' && *p != 0)
                return -EBADMSG;
        memcpy(ret, ids, sizeof(ids));
        return 0;
}

/* "CapXxx:" lines: 64-bit mask in hex. Returns -ENOENT if the line is
 * missing (CapAmb on kernels before 4.3). */
static int parse_cap_mask(const char *text, const char *key, uint64_t *ret) {
        const char *p;
        uint64_t v = 0;
        size_t n = 0;

        p = procfs_status_find(text, key);
        if (!p)
                return -ENOENT;
        while (*p == ' ' || *p == '\t')
                p++;
        for (; isxdigit((unsigned char) *p); p++, n++) {
                int d = isdigit((unsigned char) *p) ? *p - '0' : tolower((unsigned char) *p) - 'a' + 10;

                if (n >= 16)
                        return -EBADMSG;
                v = (v << 4) | (uint64_t) d;
        }
        if (n == 0 || (*p != '\n' && *p != 0))
                return -EBADMSG;
        *ret = v;
        return 0;
}

int proc_status_parse(const char *text, ProcCreds *c) {
        uint32_t uid[_PROC_ID_MAX], gid[_PROC_ID_MAX];
        uint64_t inh, prm, eff, bnd, amb;
        int r;

        assert(text);
        assert(c);

        r = parse_ids(text, "Uid", uid);
        if (r < 0)
                return r;
        r = parse_ids(text, "Gid", gid);
        if (r < 0)
                return r;
        if (parse_cap_mask(text, "CapInh", &inh) < 0 || parse_cap_mask(text, "CapPrm", &prm) < 0 ||
            parse_cap_mask(text, "CapEff", &eff) < 0 || parse_cap_mask(text, "CapBnd", &bnd) < 0)
                return -EBADMSG;
        r = parse_cap_mask(text, "CapAmb", &amb);
        if (r == -ENOENT)
                amb = 0; /* kernel without ambient capabilities */
        else if (r < 0)
                return r;

        memcpy(c->uid, uid, sizeof(uid));
        memcpy(c->gid, gid, sizeof(gid));
        c->cap_inheritable = inh;
        c->cap_permitted = prm;
        c->cap_effective = eff;
        c->cap_bounding = bnd;
        c->cap_ambient = amb;
        return 0;
}

/* /proc/PID/stat: "pid (comm) state ppid ... flags ... starttime ...". comm
 * may hold any byte, spaces and ')' included, so it ends at the LAST ')'. */
int proc_stat_parse(const char *text, ProcCreds *c) {
        const char *lparen, *rparen, *p;
        uint64_t flags = 0, start_time = 0;
        size_t len;
        char state;
        int r;

        assert(text);
        assert(c);

        lparen = strchr(text, '(');
        rparen = strrchr(text, ')');
        if (!lparen || !rparen || rparen < lparen)
                return -EBADMSG;
        if (rparen[1] != ' ' || !rparen[2] || rparen[3] != ' ')
                return -EBADMSG;
        state = rparen[2];

        p = rparen + 4;
        for (unsigned field = STAT_FIELD_STATE + 1; field <= STAT_FIELD_STARTTIME; field++) {
                if (field == STAT_FIELD_FLAGS || field == STAT_FIELD_STARTTIME) {
                        const char *q = p;
                        uint64_t v;

                        r = parse_dec(&q, UINT64_MAX, &v);
                        if (r < 0)
                                return r;
                        if (*q != ' ' && *q != '\n' && *q != 0)
                                return -EBADMSG;
                        if (field == STAT_FIELD_FLAGS)
                                flags = v;
                        else
                                start_time = v;
                }
                if (field == STAT_FIELD_STARTTIME)
                        break;
                p = strchr(p, ' ');
                if (!p)
                        return -EBADMSG;
                p++;
        }

        /* Names of some kernel threads (workqueue workers) are longer than
         * TASK_COMM_LEN in stat: keep what fits. */
        len = MIN((size_t) (rparen - lparen - 1), sizeof(c->comm) - 1);
        memcpy(c->comm, lparen + 1, len);
        c->comm[len] = 0;
        c->zombie = state == 'Z' || state == 'X';
        c->kernel_thread = flags & PROC_PF_KTHREAD;
        c->start_time = start_time;
        return 0;
}

static int cap_set_to_mask(cap_t caps, cap_flag_t flag, cap_value_t n_bits, uint64_t *ret) {
        uint64_t mask = 0;

        for (cap_value_t v = 0; v < n_bits; v++) {
                cap_flag_value_t set;

                if (cap_get_flag(caps, v, flag, &set) < 0)
                        return errno > 0 ? -errno : -EINVAL;
                if (set == CAP_SET)
                        mask |= UINT64_C(1) << v;
        }
        *ret = mask;
        return 0;
}

static int caps_from_libcap(pid_t pid, ProcCreds *c) {
        _cleanup_(cap_freep) cap_t caps = NULL;
        uint64_t inh, prm, eff;
        cap_value_t n_bits;
        int r;

        caps = cap_get_pid(pid);
        if (!caps)
                return errno > 0 ? -errno : -EIO;

        /* What the running kernel knows (may exceed CAP_LAST_CAP of the
         * headers); a mask has room for 64. */
        n_bits = cap_max_bits();
        if (n_bits <= 0)
                n_bits = CAP_LAST_CAP + 1;
        n_bits = MIN(n_bits, (cap_value_t) 64);

        r = cap_set_to_mask(caps, CAP_INHERITABLE, n_bits, &inh);
        if (r < 0)
                return r;
        r = cap_set_to_mask(caps, CAP_PERMITTED, n_bits, &prm);
        if (r < 0)
                return r;
        r = cap_set_to_mask(caps, CAP_EFFECTIVE, n_bits, &eff);
        if (r < 0)
                return r;

        c->cap_inheritable = inh;
        c->cap_permitted = prm;
        c->cap_effective = eff;
        return 0;
}

int proc_creds_read(pid_t pid, ProcCreds *ret) {
        _cleanup_close_ int dir_fd = -EBADF;
        ProcCreds c = { .pid = pid };
        char path[64];
        int r;

        assert(pid > 0);
        assert(ret);

        snprintf(path, sizeof(path), "/proc/%i", pid);
        dir_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir_fd < 0)
                return errno == ENOENT ? -ESRCH : -errno;

        r = read_proc_file(dir_fd, pid, "status", proc_status_parse, &c);
        if (r < 0)
                return r;

        /* Replaces the inheritable, permitted and effective sets from status
         * where libcap can read them. Zombies and kernel threads may fail:
         * status, read through the same directory fd, still shows them. */
        r = caps_from_libcap(pid, &c);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                log_debug_errno(r, "cap_get_pid(%i) failed, using /proc/%i/status: %m", pid, pid);

        /* Read last: the directory fd pins the process, so this only
         * succeeds if it has not been reaped since status was read, and thus
         * cap_get_pid() above cannot have seen a new process with the same
         * pid. */
        r = read_proc_file(dir_fd, pid, "stat", proc_stat_parse, &c);
        if (r < 0)
                return r;

        *ret = c;
        return 0;
}

void caller_creds_done(CallerCreds *c) {
        if (!c)
                return;
        c->groups = mfree(c->groups);
        c->n_groups = 0;
}

int proc_identity_read_exe(pid_t pid, ProcIdentity *id) {
        char path[64];
        struct stat st;

        snprintf(path, sizeof(path), "/proc/%i/exe", pid);
        if (stat(path, &st) < 0)
                return errno == ENOENT ? -ESRCH : -errno;
        id->exe_dev = (uint64_t) st.st_dev;
        id->exe_ino = (uint64_t) st.st_ino;
        return 0;
}

int proc_identity_read(pid_t pid, ProcIdentity *ret) {
        int r;

        r = proc_creds_read(pid, &ret->creds);
        if (r < 0)
                return r;
        return proc_identity_read_exe(pid, ret);
}

#define IDENTITY_FORMAT                                                                                    \
        "uid=%" SCNu32 ",%" SCNu32 ",%" SCNu32 ",%" SCNu32 " gid=%" SCNu32 ",%" SCNu32 ",%" SCNu32 ",%" SCNu32 \
        " cap=%" SCNx64 ",%" SCNx64 ",%" SCNx64 ",%" SCNx64 ",%" SCNx64 " exe=%" SCNu64 ":%" SCNu64

int proc_identity_to_string(const ProcIdentity *id, char *buf, size_t size) {
        const ProcCreds *c = &id->creds;
        int n = snprintf(buf, size, IDENTITY_FORMAT, (uint32_t) c->uid[0], (uint32_t) c->uid[1],
                         (uint32_t) c->uid[2], (uint32_t) c->uid[3], (uint32_t) c->gid[0], (uint32_t) c->gid[1],
                         (uint32_t) c->gid[2], (uint32_t) c->gid[3], c->cap_inheritable, c->cap_permitted,
                         c->cap_effective, c->cap_ambient, c->cap_bounding, id->exe_dev, id->exe_ino);
        return n < 0 || (size_t) n >= size ? -ENOBUFS : 0;
}

int proc_identity_from_string(const char *s, ProcIdentity *ret) {
        uint32_t u[4], g[4];
        ProcIdentity id = {};
        int consumed = 0;

        if (sscanf(s, IDENTITY_FORMAT "%n", &u[0], &u[1], &u[2], &u[3], &g[0], &g[1], &g[2], &g[3],
                   &id.creds.cap_inheritable, &id.creds.cap_permitted, &id.creds.cap_effective,
                   &id.creds.cap_ambient, &id.creds.cap_bounding, &id.exe_dev, &id.exe_ino, &consumed) != 15 ||
            s[consumed] != '\0')
                return -EBADMSG;
        for (int i = 0; i < _PROC_ID_MAX; i++) {
                id.creds.uid[i] = (uid_t) u[i];
                id.creds.gid[i] = (gid_t) g[i];
        }
        *ret = id;
        return 0;
}

const char *proc_identity_differs(const ProcIdentity *a, const ProcIdentity *b) {
        const ProcCreds *x = &a->creds, *y = &b->creds;

        if (memcmp(x->uid, y->uid, sizeof(x->uid)) != 0)
                return "user ids";
        if (memcmp(x->gid, y->gid, sizeof(x->gid)) != 0)
                return "group ids";
        if (x->cap_inheritable != y->cap_inheritable || x->cap_permitted != y->cap_permitted ||
            x->cap_effective != y->cap_effective || x->cap_ambient != y->cap_ambient ||
            x->cap_bounding != y->cap_bounding)
                return "capabilities";
        if (a->exe_dev != b->exe_dev || a->exe_ino != b->exe_ino)
                return "executable";
        return NULL;
}
