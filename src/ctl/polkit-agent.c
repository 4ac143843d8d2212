/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "macro.h"
#include "polkit-agent.h"

#define POLKIT_AGENT_BINARY_PATH "/usr/bin/pkttyagent"

static pid_t agent_pid = 0;

_noreturn_ static void exec_agent(pid_t parent, int notify_fd) {
        char notify[16];

        /* Go away with memcrctl, whatever happens to it. */
        if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != parent)
                _exit(EXIT_FAILURE);

        /* The agent talks to the user on stdout/stderr: keep them on the terminal
         * even if memcrctl's output goes elsewhere. */
        for (int fd = STDOUT_FILENO; fd <= STDERR_FILENO; fd++)
                if (!isatty(fd)) {
                        int tty = open("/dev/tty", O_WRONLY | O_NOCTTY | O_CLOEXEC);
                        if (tty >= 0) {
                                (void) dup2(tty, fd);
                                safe_close(tty);
                        }
                }

        /* Everything else memcrctl has open is O_CLOEXEC. */
        if (fcntl(notify_fd, F_SETFD, 0) < 0)
                _exit(EXIT_FAILURE);
        snprintf(notify, sizeof(notify), "%i", notify_fd);
        execl(POLKIT_AGENT_BINARY_PATH, POLKIT_AGENT_BINARY_PATH, "--notify-fd", notify,
              "--fallback", (char *) NULL);
        _exit(EXIT_FAILURE);
}

int polkit_agent_open(void) {
        int fds[2];
        pid_t parent, pid;
        char c;

        if (agent_pid > 0)
                return 0;
        /* root is authorized without asking */
        if (geteuid() == 0)
                return 0;
        /* About input: stdin, not stdout. */
        if (!isatty(STDIN_FILENO))
                return 0;
        if (access(POLKIT_AGENT_BINARY_PATH, X_OK) < 0)
                return 0;

        if (pipe2(fds, O_CLOEXEC) < 0)
                return -errno;

        parent = getpid();
        pid = fork();
        if (pid < 0) {
                int r = -errno;
                safe_close(fds[0]);
                safe_close(fds[1]);
                return r;
        }
        if (pid == 0)
                exec_agent(parent, fds[1]);

        safe_close(fds[1]);
        agent_pid = pid;

        /* The agent closes its end once it is registered (or when it exits). */
        while (read(fds[0], &c, 1) < 0 && errno == EINTR)
                ;
        safe_close(fds[0]);
        return 1;
}

void polkit_agent_close(void) {
        if (agent_pid <= 0)
                return;

        (void) kill(agent_pid, SIGTERM);
        (void) kill(agent_pid, SIGCONT);
        while (waitpid(agent_pid, NULL, 0) < 0 && errno == EINTR)
                ;
        agent_pid = 0;
}
