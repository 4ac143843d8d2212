/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * A watcher that misbehaves, for memcrd to be tested against: started by
 * memcrd as memcr-watch would be (--pid=PID --runtime-dir=DIR
 * --ready-fd=FD), it says it is ready and then serves its socket the way
 * $MEMCR_FAKE_WATCHER says (see daemon-util.h).
 */

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon-util.h"

int main(int argc, char *argv[]) {
        static const struct option options[] = {
                { "pid", required_argument, NULL, 'p' },
                { "runtime-dir", required_argument, NULL, 'd' },
                { "ready-fd", required_argument, NULL, 'r' },
                {}
        };
        const char *dir = NULL;
        FakeWatcherMode mode;
        int c, ready = -1, fd;
        pid_t pid = 0;

        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case 'p':
                        pid = atoi(optarg);
                        break;
                case 'd':
                        dir = optarg;
                        break;
                case 'r':
                        ready = atoi(optarg);
                        break;
                default:
                        return EXIT_FAILURE;
                }
        if (pid <= 0 || !dir || fake_watcher_mode_from_env(&mode) < 0) {
                fprintf(stderr, "fake-watcher: --pid=, --runtime-dir= and $MEMCR_FAKE_WATCHER are needed\n");
                return EXIT_FAILURE;
        }
        fd = fake_watcher_listen(dir, pid);
        if (fd < 0) {
                fprintf(stderr, "fake-watcher: cannot listen: %s\n", strerror(-fd));
                return EXIT_FAILURE;
        }
        if (ready >= 0) {
                (void) write(ready, "R", 1);
                close(ready);
        }
        fake_watcher_serve(fd, pid, mode);
}
