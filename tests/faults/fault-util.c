/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include "fault-util.h"
#include "macro.h"

#define SUMMARY_ENV "MEMCR_FAULTS_SUMMARY"

bool faults_slow(void) {
        const char *v = getenv("MEMCR_SLOW_TESTS");
        return v && strcmp(v, "1") == 0;
}

uint64_t mono_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

void summary_init(void) {
        char path[] = "/tmp/memcr-faults-summary-XXXXXX";
        int fd = mkstemp(path);

        if (fd < 0)
                return;
        close(fd);
        setenv(SUMMARY_ENV, path, 1);
}

void summary_record(const char *name, const char *outcome, unsigned targets_verified, uint64_t bytes_verified) {
        const char *path = getenv(SUMMARY_ENV);
        char line[1024];
        int fd, n;

        if (!path)
                return;
        n = snprintf(line, sizeof(line), "%s\t%s\t%u\t%" PRIu64 "\n", name, outcome, targets_verified,
                     bytes_verified);
        fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
        if (fd < 0)
                return;
        /* One write with O_APPEND: records of concurrent cases do not mix. */
        (void) write(fd, line, (size_t) MIN(n, (int) sizeof(line) - 1));
        close(fd);
}

void summary_print(unsigned failed) {
        const char *path = getenv(SUMMARY_ENV);
        unsigned cases = 0, targets = 0;
        uint64_t bytes = 0;
        char line[1024];
        FILE *f;

        if (!path)
                return;
        f = fopen(path, "re");
        fprintf(stderr, "\n==== fault suite summary (%s counts%s) ====\n", faults_slow() ? "full" : "quick",
                faults_slow() ? "" : "; -Dslow-tests=true for the full load and soak runs");
        while (f && fgets(line, sizeof(line), f)) {
                char *name = line, *outcome, *t, *b;

                line[strcspn(line, "\n")] = 0;
                outcome = strchr(name, '\t');
                if (!outcome)
                        continue;
                *outcome++ = 0;
                t = strchr(outcome, '\t');
                if (!t)
                        continue;
                *t++ = 0;
                b = strchr(t, '\t');
                if (!b)
                        continue;
                *b++ = 0;
                cases++;
                targets += (unsigned) strtoul(t, NULL, 10);
                bytes += strtoull(b, NULL, 10);
                fprintf(stderr, "  %-44s %s\n", name, outcome);
        }
        if (f)
                fclose(f);
        fprintf(stderr, "cases run: %u, targets verified: %u, bytes verified: %" PRIu64 " (%.1f GiB), failures: %u\n",
                cases, targets, bytes, (double) bytes / (1024.0 * 1024.0 * 1024.0), failed);
        (void) unlink(path);
}

int private_mounts(void) {
        if (unshare(CLONE_NEWNS) < 0)
                return -errno;
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                return -errno;
        return 0;
}

int mount_tmpfs(const char *dir, const char *size) {
        char opts[64];

        snprintf(opts, sizeof(opts), "size=%s,mode=0700", size);
        if (mount("tmpfs", dir, "tmpfs", MS_NOSUID | MS_NODEV, opts) < 0)
                return -errno;
        return 0;
}

uint64_t fs_used_bytes(const char *path) {
        struct statfs s;

        if (statfs(path, &s) < 0)
                return UINT64_MAX;
        return (uint64_t) (s.f_blocks - s.f_bfree) * (uint64_t) s.f_bsize;
}

static bool read_small(const char *path, char *buf, size_t size, size_t *ret_len) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        ssize_t n;

        if (fd < 0)
                return false;
        n = read(fd, buf, size - 1);
        close(fd);
        if (n < 0)
                return false;
        buf[n] = 0;
        if (ret_len)
                *ret_len = (size_t) n;
        return true;
}

/* Does /proc/PID/cmdline name a watcher of this daemon (optionally for target)? */
static bool is_watcher(pid_t pid, const Daemon *d, pid_t target) {
        char path[64], buf[8192], want_dir[256], want_pid[32];
        bool dir = false, tpid = target <= 0;
        size_t len;

        snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
        if (!read_small(path, buf, sizeof(buf), &len) || len == 0)
                return false;
        if (!strstr(buf, "memcr-watch"))
                return false;
        snprintf(want_dir, sizeof(want_dir), "--runtime-dir=%s/watch", d->runtime);
        snprintf(want_pid, sizeof(want_pid), "--pid=%d", target);
        for (size_t off = 0; off < len; off += strlen(buf + off) + 1) {
                if (strcmp(buf + off, want_dir) == 0)
                        dir = true;
                if (target > 0 && strcmp(buf + off, want_pid) == 0)
                        tpid = true;
        }
        return dir && tpid && proc_state_of(pid) != 'Z';
}

static unsigned scan_watchers(const Daemon *d, pid_t target, pid_t *ret) {
        DIR *dir = opendir("/proc");
        struct dirent *de;
        unsigned n = 0;

        if (!dir)
                return 0;
        while ((de = readdir(dir))) {
                pid_t pid = (pid_t) atoi(de->d_name);
                if (pid <= 0 || !is_watcher(pid, d, target))
                        continue;
                if (ret && n == 0)
                        *ret = pid;
                n++;
        }
        closedir(dir);
        return n;
}

pid_t find_watcher(const Daemon *d, pid_t target) {
        pid_t w = 0;
        (void) scan_watchers(d, target, &w);
        return w;
}

unsigned count_watchers(const Daemon *d) {
        return scan_watchers(d, 0, NULL);
}

int watcher_dump_path(pid_t watcher, const char *dir, char *buf, size_t size) {
        char path[64];
        DIR *d;
        struct dirent *de;
        size_t dl = strlen(dir);
        int r = -ENOENT;

        snprintf(path, sizeof(path), "/proc/%d/fd", watcher);
        d = opendir(path);
        if (!d)
                return -errno;
        while ((de = readdir(d))) {
                char link[512], target[4096];
                ssize_t n;

                if (de->d_name[0] == '.')
                        continue;
                snprintf(link, sizeof(link), "/proc/%d/fd/%s", watcher, de->d_name);
                n = readlink(link, target, sizeof(target) - 1);
                if (n <= 0)
                        continue;
                target[n] = 0;
                if (strncmp(target, dir, dl) == 0 && target[dl] == '/') {
                        snprintf(buf, size, "%s", link);
                        r = 0;
                        break;
                }
        }
        closedir(d);
        return r;
}

int64_t watcher_dump_size(pid_t watcher, const char *dir) {
        char path[512];
        struct stat st;

        if (watcher_dump_path(watcher, dir, path, sizeof(path)) < 0)
                return -1;
        if (stat(path, &st) < 0)
                return -1;
        return (int64_t) st.st_size;
}

unsigned count_open_files_in(const char *dir) {
        DIR *proc = opendir("/proc");
        struct dirent *de;
        size_t dl = strlen(dir);
        unsigned n = 0;

        if (!proc)
                return 0;
        while ((de = readdir(proc))) {
                char path[300];
                DIR *fds;
                struct dirent *fe;

                if (atoi(de->d_name) <= 0)
                        continue;
                snprintf(path, sizeof(path), "/proc/%s/fd", de->d_name);
                fds = opendir(path);
                if (!fds)
                        continue;
                while ((fe = readdir(fds))) {
                        char link[600], target[4096];
                        ssize_t k;

                        if (fe->d_name[0] == '.')
                                continue;
                        snprintf(link, sizeof(link), "%s/%s", path, fe->d_name);
                        k = readlink(link, target, sizeof(target) - 1);
                        if (k <= 0)
                                continue;
                        target[k] = 0;
                        if (strncmp(target, dir, dl) == 0 && target[dl] == '/')
                                n++;
                }
                closedir(fds);
        }
        closedir(proc);
        return n;
}

char *maps_read(pid_t pid) {
        char path[64];
        size_t size = 0, allocated = 64 * 1024;
        char *buf = malloc(allocated);
        int fd;

        if (!buf)
                return NULL;
        snprintf(path, sizeof(path), "/proc/%d/maps", pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                free(buf);
                return NULL;
        }
        for (;;) {
                ssize_t n;

                if (allocated - size < 4096) {
                        char *p = realloc(buf, allocated * 2);
                        if (!p)
                                break;
                        buf = p;
                        allocated *= 2;
                }
                n = read(fd, buf + size, allocated - size - 1);
                if (n <= 0)
                        break;
                size += (size_t) n;
        }
        close(fd);
        buf[size] = 0;
        if (size == 0) {
                free(buf);
                return NULL;
        }
        return buf;
}

unsigned count_anon_exec_mappings(pid_t pid) {
        char *maps = maps_read(pid), *line, *save = NULL;
        unsigned n = 0;

        if (!maps)
                return 0;
        for (line = strtok_r(maps, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                char perms[8] = "";
                unsigned long inode = 1;
                int name = 0;

                if (sscanf(line, "%*x-%*x %7s %*x %*x:%*x %lu %n", perms, &inode, &name) < 2)
                        continue;
                if (strcmp(perms, "r-xp") == 0 && inode == 0 && (name == 0 || line[name] == 0))
                        n++;
        }
        free(maps);
        return n;
}

unsigned count_traced_threads(pid_t pid) {
        char path[64];
        DIR *d;
        struct dirent *de;
        unsigned n = 0;

        snprintf(path, sizeof(path), "/proc/%d/task", pid);
        d = opendir(path);
        if (!d)
                return 0;
        while ((de = readdir(d))) {
                char p[320], buf[4096];
                const char *t;

                if (de->d_name[0] == '.')
                        continue;
                snprintf(p, sizeof(p), "/proc/%d/task/%s/status", pid, de->d_name);
                if (!read_small(p, buf, sizeof(buf), NULL))
                        continue;
                t = strstr(buf, "\nTracerPid:");
                if (t && atoi(t + strlen("\nTracerPid:")) != 0)
                        n++;
        }
        closedir(d);
        return n;
}

unsigned proc_fd_count(pid_t pid) {
        char path[64];
        int n;

        snprintf(path, sizeof(path), "/proc/%d/fd", pid);
        n = count_dir_entries(path);
        return n > 0 ? (unsigned) n : 0;
}

unsigned proc_thread_count(pid_t pid) {
        return (unsigned) proc_status_kb(pid, "Threads");
}

char proc_state_of(pid_t pid) {
        return proc_state(pid);
}
