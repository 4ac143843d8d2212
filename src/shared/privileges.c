/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "privileges.h"

static void cap_freep(cap_t *c) {
        if (*c)
                cap_free(*c);
}

int privileges_effective(uint64_t *ret) {
        _cleanup_(cap_freep) cap_t caps = cap_get_proc();
        uint64_t mask = 0;

        if (!caps)
                return -errno;
        for (cap_value_t v = 0; v <= CAP_LAST_CAP && v < 64; v++) {
                cap_flag_value_t f = CAP_CLEAR;
                if (cap_get_flag(caps, v, CAP_EFFECTIVE, &f) >= 0 && f == CAP_SET)
                        mask |= UINT64_C(1) << v;
        }
        *ret = mask;
        return 0;
}

int privileges_drop_to_ptrace(void) {
        _cleanup_(cap_freep) cap_t cur = cap_get_proc(), want = NULL;
        cap_flag_value_t have = CAP_CLEAR;
        const cap_value_t keep[] = { CAP_SYS_PTRACE };
        bool can_setpcap = false;
        uint64_t eff;
        int r;

        if (!cur)
                return log_error_errno(-errno, "cannot read capabilities: %m");
        (void) cap_get_flag(cur, CAP_SYS_PTRACE, CAP_PERMITTED, &have);
        {
                cap_flag_value_t f = CAP_CLEAR;
                (void) cap_get_flag(cur, CAP_SETPCAP, CAP_EFFECTIVE, &f);
                can_setpcap = f == CAP_SET;
        }

        /* The bounding set first: that needs CAP_SETPCAP, which goes next. */
        if (can_setpcap)
                for (cap_value_t v = 0; v <= CAP_LAST_CAP; v++)
                        if (v != CAP_SYS_PTRACE && CAP_IS_SUPPORTED(v) && cap_drop_bound(v) < 0)
                                return log_error_errno(-errno, "cannot drop capability %i from the bounding set: %m", v);

        want = cap_init();
        if (!want)
                return -ENOMEM;
        if (have == CAP_SET) {
                if (cap_set_flag(want, CAP_PERMITTED, 1, keep, CAP_SET) < 0 ||
                    cap_set_flag(want, CAP_EFFECTIVE, 1, keep, CAP_SET) < 0 ||
                    cap_set_flag(want, CAP_INHERITABLE, 1, keep, CAP_SET) < 0)
                        return -errno;
        }
        if (cap_set_proc(want) < 0)
                return log_error_errno(-errno, "cannot drop capabilities: %m");

        /* Ambient: exactly CAP_SYS_PTRACE, so the watchers we execute keep it
         * without being root. */
        if (cap_reset_ambient() < 0 && errno != EINVAL)
                return log_error_errno(-errno, "cannot reset ambient capabilities: %m");
        if (have == CAP_SET && cap_set_ambient(CAP_SYS_PTRACE, CAP_SET) < 0)
                return log_error_errno(-errno, "cannot raise ambient CAP_SYS_PTRACE: %m");

        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return log_error_errno(-errno, "cannot set no_new_privs: %m");

        /* Verify. */
        r = privileges_effective(&eff);
        if (r < 0)
                return log_error_errno(r, "cannot verify capabilities: %m");
        if (eff & ~(UINT64_C(1) << CAP_SYS_PTRACE))
                return log_error_errno(-EPERM, "capabilities 0x%llx remain after dropping",
                                       (unsigned long long) eff);
        if (have != CAP_SET)
                log_debug("running without CAP_SYS_PTRACE: only same-user targets can be traced");
        return 0;
}

int private_dir_check(const char *path) {
        struct stat st;

        if (stat(path, &st) < 0)
                return log_error_errno(-errno, "%s: %m", path);
        if (!S_ISDIR(st.st_mode))
                return log_error_errno(-ENOTDIR, "%s is not a directory", path);
        if (st.st_uid != geteuid() && st.st_uid != 0)
                return log_error_errno(-EPERM, "%s is owned by uid %u, not by us (%u): refusing to use it",
                                       path, st.st_uid, geteuid());
        if (st.st_mode & 0077)
                return log_error_errno(-EPERM, "%s has mode %04o; it must not be accessible to group or others",
                                       path, st.st_mode & 07777);
        return 0;
}
