/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc-util.h"
#include "fileio.h"
#include "macro.h"
#include "procfs.h"

#define PROCFS_PATH_MAX 96

static void procfs_path(char buf[static PROCFS_PATH_MAX], pid_t pid, pid_t tid, const char *name) {
        if (pid == 0)
                snprintf(buf, PROCFS_PATH_MAX, "/proc");
        else if (tid > 0)
                snprintf(buf, PROCFS_PATH_MAX, "/proc/%i/task/%i/%s", pid, tid, name);
        else
                snprintf(buf, PROCFS_PATH_MAX, "/proc/%i/%s", pid, name);
}

int procfs_read(pid_t pid, pid_t tid, const char *name, size_t max, char **ret) {
        char path[PROCFS_PATH_MAX];
        int r;

        assert(pid > 0);
        assert(name);
        assert(ret);

        procfs_path(path, pid, tid, name);
        r = read_full_file(path, max, ret, NULL);
        /* A thread gone meanwhile reads as empty or fails with ESRCH. */
        return r == -ENOENT || r == -ESRCH ? -ESRCH : r;
}

const char *procfs_status_find(const char *text, const char *field) {
        size_t len = strlen(field);

        for (const char *line = text; line && *line;) {
                if (strncmp(line, field, len) == 0 && line[len] == ':')
                        return line + len + 1 + strspn(line + len + 1, " \t");
                line = strchr(line, '\n');
                if (line)
                        line++;
        }
        return NULL;
}

int procfs_status_u64(pid_t pid, pid_t tid, const char *field, uint64_t *ret) {
        _cleanup_free_ char *text = NULL;
        const char *v;
        char *end;
        int r;

        r = procfs_read(pid, tid, "status", 64 * 1024, &text);
        if (r < 0)
                return r;
        if (!*text)
                return -ESRCH;
        v = procfs_status_find(text, field);
        if (!v)
                return -ENODATA;
        errno = 0;
        unsigned long long n = strtoull(v, &end, 10);
        if (errno != 0 || end == v)
                return -EBADMSG;
        *ret = (uint64_t) n;
        return 0;
}

int procfs_tracer(pid_t pid, pid_t tid, pid_t *ret) {
        uint64_t v;
        int r;

        r = procfs_status_u64(pid, tid, "TracerPid", &v);
        if (r < 0)
                return r;
        *ret = (pid_t) v;
        return 0;
}

/* "pid (comm) state ppid ...": comm may hold any byte, so it ends at the last ')'. */
int procfs_stat(pid_t pid, pid_t tid, char *ret_state, pid_t *ret_ppid) {
        _cleanup_free_ char *text = NULL;
        const char *p;
        char state;
        int ppid, r;

        r = procfs_read(pid, tid, "stat", 4096, &text);
        if (r < 0)
                return r;
        if (!*text)
                return -ESRCH;
        p = strrchr(text, ')');
        if (!p || sscanf(p + 1, " %c %i", &state, &ppid) != 2)
                return -EBADMSG;
        if (ret_state)
                *ret_state = state;
        if (ret_ppid)
                *ret_ppid = (pid_t) ppid;
        return 0;
}

int procfs_comm(pid_t pid, pid_t tid, char *buf, size_t size) {
        _cleanup_free_ char *c = NULL;
        int r;

        r = procfs_read(pid, tid, "comm", 256, &c);
        if (r < 0) {
                snprintf(buf, size, "?");
                return r;
        }
        c[strcspn(c, "\n")] = 0;
        snprintf(buf, size, "%s", c);
        return 0;
}

int procfs_list(pid_t pid, pid_t **ret, size_t *ret_n) {
        _cleanup_free_ pid_t *ids = NULL;
        size_t n = 0, allocated = 0;
        char path[PROCFS_PATH_MAX];
        struct dirent *de;
        DIR *d;

        assert(ret);
        assert(ret_n);

        procfs_path(path, pid, 0, "task");
        d = opendir(path);
        if (!d)
                return errno == ENOENT ? -ESRCH : -errno;
        while ((de = readdir(d))) {
                char *end;
                long v = strtol(de->d_name, &end, 10);

                if (end == de->d_name || *end || v <= 0)
                        continue;
                if (GREEDY_REALLOC(ids, allocated, n + 1, 16) < 0) {
                        closedir(d);
                        return -ENOMEM;
                }
                ids[n++] = (pid_t) v;
        }
        closedir(d);
        *ret = TAKE_PTR(ids);
        *ret_n = n;
        return 0;
}
