/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * Preloaded into memcr-test-target (LD_PRELOAD) to give it the habits the
 * fault suite needs, chosen by environment variables:
 *
 *   MEMCR_FAULT_READ=PATH      a thread reads PATH to its end (on a FUSE file
 *                              system whose server holds the read, the thread
 *                              sleeps uninterruptibly)
 *   MEMCR_FAULT_VFORK_MS=N     a thread vforks over and over; each child sleeps
 *                              N ms before it exits, the parent blocked meanwhile
 *   MEMCR_FAULT_CHILD=1        a child that lives until it is killed; its exit
 *                              sends SIGCHLD, which a handler counts and reaps
 *   MEMCR_FAULT_EXEC=PATH      a thread executes the program anew (same
 *                              arguments); one environment string lives in a
 *                              page mapped from PATH, so on a FUSE file system
 *                              whose server holds reads, execve() waits inside
 *                              the kernel until the read is answered, and then
 *                              completes (before it could have been stopped)
 *   MEMCR_FAULT_EXEC_MAIN=1    the main thread does that, before main() runs
 *   MEMCR_FAULT_VMAS=N         N separate one-page mappings holding a pattern,
 *                              checked when the process exits (exit status 1 and
 *                              a BAD line on stderr if any word is wrong)
 *
 * Everything runs from a constructor, before the target's main(); the target
 * itself is not changed.
 *
 * Preloaded into memcr-watch instead:
 *
 *   MEMCR_FAULT_TIMERFD=1      timerfd_create() fails with EMFILE, as in a
 *                              process out of descriptors
 */

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pattern.h"

#define VMA_SEED UINT64_C(0x66617566746d6170)

static uint8_t **vmas;
static size_t n_vmas;
static long page_size;
static unsigned vfork_ms;

static void on_sigchld(int sig) {
        int saved = errno;

        /* Reap the helper child (from whichever thread runs this). */
        while (waitpid(-1, NULL, WNOHANG) > 0)
                ;
        errno = saved;
}

static void *read_thread(void *userdata) {
        const char *path = userdata;
        char buf[4096];
        int fd;

        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                fprintf(stderr, "fault-inject: open(%s): %s\n", path, strerror(errno));
                return NULL;
        }
        while (read(fd, buf, sizeof(buf)) > 0)
                ;
        close(fd);
        return NULL;
}

static void *vfork_thread(void *userdata) {
        for (;;) {
                pid_t child = vfork();

                if (child == 0) {
                        /* Only raw system calls in a vfork child. */
                        struct timespec ts = { .tv_sec = vfork_ms / 1000,
                                               .tv_nsec = (long) (vfork_ms % 1000) * 1000000L };
                        (void) syscall(SYS_nanosleep, &ts, NULL);
                        syscall(SYS_exit, 0);
                }
                if (child < 0) {
                        usleep(10 * 1000);
                        continue;
                }
                while (waitpid(child, NULL, __WCLONE | __WALL) < 0 && errno == EINTR)
                        ;
        }
        return NULL;
}

static char **saved_argv;

static void *exec_thread(void *userdata) {
        const char *path = userdata;
        size_t n = 0;
        char **envp;
        char *page;
        int fd;

        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                fprintf(stderr, "fault-inject: open(%s): %s\n", path, strerror(errno));
                return NULL;
        }
        page = mmap(NULL, (size_t) page_size, PROT_READ, MAP_PRIVATE, fd, 0);
        close(fd);
        if (page == MAP_FAILED)
                return NULL;
        while (environ[n])
                n++;
        envp = calloc(n + 2, sizeof(char *));
        if (!envp)
                return NULL;
        for (size_t i = 0; i < n; i++)
                if (strncmp(environ[i], "MEMCR_FAULT_", strlen("MEMCR_FAULT_")) != 0)
                        envp[i] = environ[i];
                else
                        envp[i] = page;
        /* The kernel copies this string from the file's page: an empty one. */
        envp[n] = page;
        execve("/proc/self/exe", saved_argv, envp);
        fprintf(stderr, "fault-inject: execve: %s\n", strerror(errno));
        free(envp);
        return NULL;
}

static void start_child(void) {
        struct sigaction sa = { .sa_handler = on_sigchld, .sa_flags = SA_RESTART | SA_NOCLDSTOP };
        pid_t child;

        sigemptyset(&sa.sa_mask);
        (void) sigaction(SIGCHLD, &sa, NULL);
        child = fork();
        if (child == 0) {
                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                for (;;)
                        pause();
        }
}

static void map_vmas(size_t n) {
        vmas = calloc(n, sizeof(uint8_t *));
        if (!vmas)
                abort();
        for (size_t i = 0; i < n; i++) {
                /* Neighbours differ in protection, so the kernel cannot merge them. */
                uint8_t *p = mmap(NULL, (size_t) page_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                                  -1, 0);
                if (p == MAP_FAILED)
                        abort();
                pattern_fill(p, (size_t) page_size, VMA_SEED);
                if (i % 2 == 1 && mprotect(p, (size_t) page_size, PROT_READ) < 0)
                        abort();
                vmas[n_vmas++] = p;
        }
}

__attribute__((destructor)) static void check_vmas(void) {
        size_t bad = 0, first = SIZE_MAX;

        for (size_t i = 0; i < n_vmas; i++)
                if (pattern_check(vmas[i], (size_t) page_size, VMA_SEED, NULL) > 0) {
                        if (first == SIZE_MAX)
                                first = i;
                        bad++;
                }
        if (bad > 0) {
                fprintf(stderr, "BAD region=fault-vmas pages=%zu first=%p\n", bad, (void *) vmas[first]);
                fflush(stderr);
                _exit(1);
        }
}

static void spawn(void *(*fn)(void *), void *arg) {
        pthread_t t;
        pthread_attr_t a;

        pthread_attr_init(&a);
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &a, fn, arg) != 0)
                abort();
        pthread_attr_destroy(&a);
}

static bool fail_timerfd;

int timerfd_create(int clockid, int flags) {
        static int (*real)(int, int);

        if (fail_timerfd) {
                errno = EMFILE;
                return -1;
        }
        if (!real)
                real = (int (*)(int, int)) dlsym(RTLD_NEXT, "timerfd_create");
        if (!real) {
                errno = ENOSYS;
                return -1;
        }
        return real(clockid, flags);
}

__attribute__((constructor)) static void fault_inject_init(int argc, char **argv, char **envp) {
        const char *v;

        saved_argv = argv;
        page_size = sysconf(_SC_PAGESIZE);
        /* Not inherited by whatever the target might run. */
        unsetenv("LD_PRELOAD");
        fail_timerfd = getenv("MEMCR_FAULT_TIMERFD") != NULL;

        v = getenv("MEMCR_FAULT_VMAS");
        if (v)
                map_vmas(strtoul(v, NULL, 10));
        if (getenv("MEMCR_FAULT_CHILD"))
                start_child();
        v = getenv("MEMCR_FAULT_VFORK_MS");
        if (v) {
                vfork_ms = (unsigned) strtoul(v, NULL, 10);
                spawn(vfork_thread, NULL);
        }
        v = getenv("MEMCR_FAULT_READ");
        if (v)
                spawn(read_thread, (void *) v);
        v = getenv("MEMCR_FAULT_EXEC");
        if (v && getenv("MEMCR_FAULT_EXEC_MAIN"))
                /* From the main thread, before main(): a single-threaded process. */
                (void) exec_thread((void *) v);
        else if (v)
                spawn(exec_thread, (void *) v);
}
