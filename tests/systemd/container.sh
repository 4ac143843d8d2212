# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
#
# A throw-away system booted with the real systemd as PID 1, for testing
# memcr's units, sysusers.d, tmpfiles.d, polkit rules and package the way a
# user meets them: D-Bus, polkitd, journald, socket activation and all.
#
# The container runs in private PID, mount, network, UTS, IPC and cgroup
# namespaces. Its root file system is an overlay with the host's / as the
# read-only lower layer and a tmpfs as the upper layer: whatever happens
# inside (users created by systemd-sysusers, packages installed with dpkg,
# unit files, the journal) lives in memory and is gone after ct_shutdown.
# It gets a private /dev, a read-only /sys and /proc/sys, and a cgroup2 tree
# of its own.
#
# One thing the namespaces cannot contain: the mode and owner of the global
# /proc entries (/proc/kpageflags, /proc/kpagecount) belong to the kernel,
# so a chmod/chown inside (systemd-tmpfiles' "z" lines) changes them for
# the host too. ct_boot records them and they are put back when the
# container is gone.
#
# Whatever happens to the caller, the container does not outlive it for
# long: a supervisor in a session of its own powers the container off when
# the process that booted it has died, and cleans up the host after the
# container (cgroup, state directory, /proc entries).
#
# Needs root, util-linux (unshare, nsenter, setpriv, script), systemd, dbus
# and polkitd.
#
#   . tests/systemd/container.sh
#   ct_boot                   boot; sets CT_PID (the container's PID 1, as
#                             seen from the host) and CT_STATE
#   ct_run CMD...             run CMD as root inside
#   ct_run_as USER CMD...     run CMD inside as USER (a name from the
#                             container's passwd, or a number)
#   ct_write PATH [MODE]      write stdin to PATH inside
#   ct_copy HOSTFILE PATH [MODE]
#   ct_copy_tree HOSTDIR      copy a directory tree (a DESTDIR) onto /
#   ct_shutdown               power off and remove every trace
#
# Settings (environment): CT_LIFETIME (seconds, default 600: the container
# is killed after that whatever happens), CT_BOOT_TIMEOUT (seconds, default
# 60), CT_OWNER (the PID whose end powers the container off, default: this
# shell), CT_CONSOLE_LOG (exported: copy the console output there when the
# container is gone).

CT_SYSTEMD=${CT_SYSTEMD:-/lib/systemd/systemd}
CT_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
CT_PROC_ENTRIES="/proc/kpageflags /proc/kpagecount"

ct_log() { echo "container: $*" >&2; }

# Is everything there that booting needs? Prints what is missing.
ct_check_prerequisites() {
        local missing=() c
        for c in unshare nsenter setpriv setsid findmnt timeout dbus-daemon; do
                command -v "$c" >/dev/null || missing+=("$c")
        done
        [ -x "$CT_SYSTEMD" ] || missing+=("$CT_SYSTEMD")
        [ -x /usr/lib/polkit-1/polkitd ] || missing+=(polkitd)
        if [ ${#missing[@]} -gt 0 ]; then
                echo "${missing[*]}"
                return 1
        fi
}

# The script that becomes the container's PID 1: it sets up the root file
# system and the API file systems, then executes systemd.
_ct_write_init() {
        cat >"$1" <<'INIT'
#!/bin/bash
set -euo pipefail
state=$1; shift

# This is the host PID of the future systemd (/proc is still the host's).
read -r host_pid _ </proc/self/stat

mount -t tmpfs -o mode=0755,size=2G memcr-ct "$state/fs"
mkdir "$state/fs/upper" "$state/fs/work" "$state/fs/root"
mount -t overlay memcr-ct-root \
        -o "lowerdir=/,upperdir=$state/fs/upper,workdir=$state/fs/work" "$state/fs/root"
root=$state/fs/root

# The host's persistent journal would show up under the same machine and
# boot IDs; the container keeps its journal in /run.
if [ -d "$root/var/log/journal" ]; then
        mount -t tmpfs -o mode=2755 memcr-ct-journal "$root/var/log/journal"
fi

# API file systems. Global sysctls and SysRq stay out of reach.
mount -t proc -o nosuid,nodev,noexec proc "$root/proc"
mount --bind "$root/proc/sys" "$root/proc/sys"
mount -o remount,bind,ro "$root/proc/sys"
if [ -e "$root/proc/sysrq-trigger" ]; then
        mount --bind "$root/proc/sysrq-trigger" "$root/proc/sysrq-trigger"
        mount -o remount,bind,ro "$root/proc/sysrq-trigger"
fi
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$root/sys"
# cgroup2 rooted at the container's own cgroup (cgroup namespace): systemd
# finds it mounted, runs in unified mode and touches nothing outside.
mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 "$root/sys/fs/cgroup"

# A private /dev with the usual nodes, and userfaultfd if the host has it.
mount -t tmpfs -o mode=0755,nosuid,size=4m memcr-ct-dev "$root/dev"
node() { mknod -m "$1" "$root/dev/$2" c "$3" "$4"; }
node 666 null 1 3; node 666 zero 1 5; node 666 full 1 7
node 666 random 1 8; node 666 urandom 1 9; node 666 tty 5 0
if [ -c /dev/userfaultfd ]; then
        node 600 userfaultfd "$((0x$(stat -c %t /dev/userfaultfd)))" "$((0x$(stat -c %T /dev/userfaultfd)))"
fi
mkdir -m 755 "$root/dev/pts"
mkdir -m 1777 "$root/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5,nosuid,noexec devpts "$root/dev/pts"
ln -s pts/ptmx "$root/dev/ptmx"
ln -s /proc/self/fd "$root/dev/fd"
ln -s /proc/self/fd/0 "$root/dev/stdin"
ln -s /proc/self/fd/1 "$root/dev/stdout"
ln -s /proc/self/fd/2 "$root/dev/stderr"
# PID 1 writes to /dev/console, which must be a terminal: ours if we have
# one (script(1) gives us a pty and logs it), else nothing.
touch "$root/dev/console"
if [ -t 2 ]; then
        mount --bind "$(readlink /proc/self/fd/2)" "$root/dev/console"
else
        mount --bind "$root/dev/null" "$root/dev/console"
fi

# Configuration of the container only (it lands in the tmpfs layer).
etc=$root/etc/systemd
mkdir -p "$etc/system" "$etc/journald.conf.d" "$etc/system.conf.d" "$root/etc/tmpfiles.d"
cat >"$etc/system/memcr-test.target" <<'UNIT'
[Unit]
Description=memcr test system
Requires=sysinit.target sockets.target dbus.socket
After=sysinit.target sockets.target dbus.socket
AllowIsolate=yes
UNIT
printf '[Journal]\nStorage=volatile\n' >"$etc/journald.conf.d/memcr-test.conf"
printf '[Manager]\nDefaultTimeoutStopSec=10s\nShowStatus=no\n' >"$etc/system.conf.d/memcr-test.conf"
# /tmp is the host's /tmp seen through the overlay: leave it alone.
ln -sf /dev/null "$root/etc/tmpfiles.d/tmp.conf"
# Units that would change the kernel's global state (sysctls, binfmt, the
# clock, modules, audit) or make no sense here.
for u in systemd-sysctl.service systemd-binfmt.service proc-sys-fs-binfmt_misc.automount \
         proc-sys-fs-binfmt_misc.mount systemd-modules-load.service kmod-static-nodes.service \
         systemd-timesyncd.service systemd-journald-audit.socket sys-kernel-config.mount \
         sys-kernel-debug.mount sys-kernel-tracing.mount sys-fs-fuse-connections.mount \
         dev-hugepages.mount systemd-firstboot.service systemd-machine-id-commit.service \
         systemd-pstore.service systemd-random-seed.service systemd-ask-password-console.path \
         systemd-ask-password-wall.path console-getty.service getty.target \
         systemd-update-utmp.service systemd-update-utmp-runlevel.service systemd-initctl.socket \
         systemd-tmpfiles-setup-dev.service systemd-repart.service; do
        ln -sf /dev/null "$etc/system/$u"
done

echo "$host_pid" >"$state/pid"
cd "$root"
mkdir -p .old-root
pivot_root . .old-root
umount -l /.old-root
rmdir /.old-root
exec env -i container=other "$@"
INIT
        chmod 755 "$1"
}

# Mode and owner of a global /proc entry as the kernel has them. The host's
# /proc caches its inodes, so ask a fresh procfs instance.
_ct_proc_stat() { unshare --mount-proc stat -c %a:%u:%g "$1" 2>/dev/null; }

# The host side of a container: runs it, and when it is gone (powered off,
# killed, out of time, or because the process that booted it died) removes
# its cgroup and state directory and puts the global /proc entries back. It
# runs in a session of its own, so that it outlives whoever started it.
_ct_write_supervisor() {
        cat >"$1" <<'SUPERVISOR'
#!/bin/bash
# supervisor STATE CGROUP OWNER_PID COMMAND
state=$1 cgroup=$2 owner=$3 cmd=$4

(
        # The container's cgroup namespace is rooted at this cgroup.
        echo "$BASHPID" >"$cgroup/cgroup.procs"
        # script(1) gives PID 1 a terminal for its console and logs it.
        if command -v script >/dev/null; then
                exec script -qfec "$cmd" "$state/console.log"
        fi
        exec bash -c "$cmd" >"$state/console.log" 2>&1
) </dev/null >/dev/null 2>&1 &
child=$!

stopping=
while kill -0 "$child" 2>/dev/null; do
        if [ -z "$stopping" ] && ! kill -0 "$owner" 2>/dev/null; then
                # Nobody is left to shut it down.
                stopping=$SECONDS
                [ -s "$state/pid" ] && kill -s SIGRTMIN+4 "$(cat "$state/pid")" 2>/dev/null
        elif [ -n "$stopping" ] && [ $((SECONDS - stopping)) -gt 30 ]; then
                [ -s "$state/pid" ] && kill -KILL "$(cat "$state/pid")" 2>/dev/null
        fi
        sleep 0.2
done
wait "$child"

# The namespaces and their mounts went with their last process; left on the
# host are the cgroup (with what systemd made below it) and this directory.
find "$cgroup" -depth -type d -exec rmdir {} + 2>/dev/null
[ -d "$state/cgroup" ] && umount "$state/cgroup" 2>/dev/null
# chown and chmod from the host rewrite the kernel's entries.
while IFS='=' read -r f was; do
        [ -n "$was" ] || continue
        if [ "$(unshare --mount-proc stat -c %a:%u:%g "$f" 2>/dev/null)" != "$was" ]; then
                chown "${was#*:}" "$f"
                chmod "${was%%:*}" "$f"
        fi
done <"$state/proc-saved"
[ -n "${CT_CONSOLE_LOG:-}" ] && cp "$state/console.log" "$CT_CONSOLE_LOG"
if findmnt -rn -o TARGET | grep -q "^$state"; then
        echo "container: mounts left under $state, not removing it" >&2
elif [ -d "$cgroup" ]; then
        echo "container: could not remove cgroup $cgroup" >&2
else
        rm -rf "$state"
fi
SUPERVISOR
        chmod 755 "$1"
}

ct_boot() {
        local t0 cgroot i state_now='' f cmd
        t0=$(date +%s%N)

        CT_STATE=$(mktemp -d /tmp/memcr-ct.XXXXXX)
        mkdir "$CT_STATE/fs"
        for f in $CT_PROC_ENTRIES; do
                [ -e "$f" ] && echo "$f=$(_ct_proc_stat "$f")"
        done >"$CT_STATE/proc-saved"
        _ct_write_init "$CT_STATE/init"
        _ct_write_supervisor "$CT_STATE/supervise"

        # A cgroup of our own, which becomes the root of the container's
        # cgroup namespace.
        cgroot=$(findmnt -n -t cgroup2 -o TARGET | head -n1)
        if [ -z "$cgroot" ]; then
                mkdir "$CT_STATE/cgroup"
                mount -t cgroup2 cgroup2 "$CT_STATE/cgroup"
                cgroot=$CT_STATE/cgroup
        fi
        CT_CGROUP=$cgroot/$(basename "$CT_STATE")
        mkdir "$CT_CGROUP"

        # timeout(1) bounds the container's life (unshare ignores SIGTERM,
        # hence -k); --kill-child takes systemd down if unshare goes away.
        cmd="exec timeout -k 5 ${CT_LIFETIME:-600} \
                unshare --pid --fork --kill-child=SIGKILL --mount --net --uts --ipc --cgroup \
                $CT_STATE/init $CT_STATE $CT_SYSTEMD --system --unit=memcr-test.target \
                --show-status=no --log-target=journal-or-kmsg --log-level=info"
        setsid -w "$CT_STATE/supervise" "$CT_STATE" "$CT_CGROUP" "${CT_OWNER:-$$}" "$cmd" </dev/null >/dev/null 2>&1 &
        CT_SUPERVISOR=$!

        CT_PID=
        for ((i = 0; i < ${CT_BOOT_TIMEOUT:-60} * 20; i++)); do
                if ! kill -0 "$CT_SUPERVISOR" 2>/dev/null; then
                        ct_log "the container died while booting"
                        return 1
                fi
                if [ -z "$CT_PID" ] && [ -s "$CT_STATE/pid" ]; then
                        CT_PID=$(cat "$CT_STATE/pid")
                fi
                if [ -n "$CT_PID" ] && [ "$(readlink "/proc/$CT_PID/exe")" = "$(readlink -f "$CT_SYSTEMD")" ]; then
                        state_now=$(timeout 10 nsenter -t "$CT_PID" -a env -i PATH=$CT_PATH \
                                    systemctl is-system-running --wait 2>/dev/null)
                        case "$state_now" in running|degraded) break ;; esac
                fi
                sleep 0.05
        done
        case "$state_now" in
        running) ;;
        degraded)
                ct_log "booted degraded:"
                ct_run systemctl --failed --no-pager >&2 ;;
        *)
                ct_log "boot did not finish (state '$state_now'):"
                cat "$CT_STATE/console.log" >&2
                return 1 ;;
        esac
        # shellcheck disable=SC2034 # for the caller
        CT_BOOT_MSEC=$(( ($(date +%s%N) - t0) / 1000000 ))
}

# Commands inside enter every namespace of PID 1 (its root, its PID
# namespace); their environment is reset.
ct_run() {
        nsenter -t "$CT_PID" -a env -i PATH=$CT_PATH LANG=C.UTF-8 SYSTEMD_PAGER= SYSTEMD_COLORS=0 "$@"
}

ct_run_as() {
        local user=$1 pw
        shift
        if ! pw=$(ct_run getent passwd "$user"); then
                if [[ ! $user =~ ^[0-9]+$ ]]; then
                        ct_log "no user $user in the container"
                        return 127
                fi
                # A UID without a passwd entry: its own GID, no other groups.
                nsenter -t "$CT_PID" -a setpriv --reuid="$user" --regid="$user" --clear-groups \
                        env -i PATH=$CT_PATH LANG=C.UTF-8 SYSTEMD_PAGER= SYSTEMD_COLORS=0 "$@"
                return
        fi
        # name:x:uid:gid:...: the primary group from passwd, the others from group.
        IFS=: read -r user _ _ pw _ <<<"$pw"
        nsenter -t "$CT_PID" -a setpriv --reuid="$user" --regid="$pw" --init-groups --reset-env \
                env PATH=$CT_PATH LANG=C.UTF-8 SYSTEMD_PAGER= SYSTEMD_COLORS=0 "$@"
}

# Files are written from inside, so that paths resolve within the
# container (an absolute symlink seen through /proc/PID/root would lead
# back to the host).
ct_write() {
        ct_run sh -c 'mkdir -p "$(dirname "$1")" && cat >"$1" && chmod "$2" "$1"' sh "$1" "${2:-0644}"
}

ct_copy() {
        ct_write "$2" "${3:-0644}" <"$1"
}

ct_copy_tree() {
        tar -C "$1" -cf - . | ct_run tar -C / -xf - --no-same-owner --keep-directory-symlink --no-overwrite-dir
}

ct_shutdown() {
        local i
        [ -n "${CT_SUPERVISOR:-}" ] || return 0

        if [ -n "${CT_PID:-}" ] && kill -0 "$CT_PID" 2>/dev/null; then
                kill -s SIGRTMIN+4 "$CT_PID"       # systemd: poweroff
        fi
        for ((i = 0; i < 300; i++)); do
                kill -0 "$CT_SUPERVISOR" 2>/dev/null || break
                sleep 0.1
        done
        if kill -0 "$CT_SUPERVISOR" 2>/dev/null; then
                # The last process of the PID namespace takes the rest along.
                ct_log "poweroff timed out, killing the container"
                kill -KILL "$CT_PID" 2>/dev/null
        fi
        # The supervisor cleans up after the container.
        for ((i = 0; i < 300; i++)); do
                kill -0 "$CT_SUPERVISOR" 2>/dev/null || break
                sleep 0.1
        done
        wait "$CT_SUPERVISOR" 2>/dev/null
        CT_SUPERVISOR=
        CT_STATE=
        CT_PID=
}
