#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# memcr under a real systemd, the way a user meets it: units, socket
# activation, the memcr user and its capabilities, watcher units, polkit,
# the journal, and the Debian package.
#
#   test-systemd.sh BUILD_DIR
#
# BUILD_DIR is a configured and built tree; it is installed (meson install
# --destdir) into a container booted with systemd as PID 1 (container.sh),
# together with memcr-test-target. The Debian packages are built from the
# source tree (MEMCR_SOURCE_DIR, default: the tree this script is in) in
# the background meanwhile, and installed with dpkg into a second container.
# The host is not changed.
#
# Set MEMCR_TEST_DEB=0 to leave out the package. Prints one PASS, FAIL,
# SKIP or INFO line per check. Exit status: 0 if everything passed, 1 if
# anything failed, 77 if the test cannot run here (not root, tools missing).

# With pipefail, a grep at the end of a pipeline reads all its input
# (>/dev/null, not -q): a writer killed by SIGPIPE would fail the pipeline.
set -uo pipefail

here=$(dirname "$(realpath "$0")")
build=$(realpath "${1:?usage: $0 BUILD_DIR}")
src=$(realpath "${MEMCR_SOURCE_DIR:-$here/../..}")
# shellcheck source=tests/systemd/container.sh
. "$here/container.sh"

T0=$(date +%s%N)
n_pass=0
n_fail=0
n_known=0
pass() { echo "PASS: $*"; n_pass=$((n_pass + 1)); }
fail() { echo "FAIL: $*"; n_fail=$((n_fail + 1)); }
info() { echo "INFO: $*"; }
skip() { echo "SKIP: $*"; }
indent() { sed 's/^/      /'; }
elapsed() { echo "$(( ($(date +%s%N) - T0) / 1000000 )) ms"; }

# check DESCRIPTION CMD...: PASS if CMD succeeds; its output is shown on
# FAIL. CMD runs in this shell (it may be a function that waits for jobs).
check() {
        local what=$1
        shift
        if "$@" >"$work/out" 2>&1; then
                pass "$what"
        else
                fail "$what"
                indent <"$work/out"
        fi
}

# expect_status STATUS DESCRIPTION CMD...: PASS if CMD exits with STATUS.
expect_status() {
        local want=$1 what=$2 st
        shift 2
        "$@" >"$work/out" 2>&1
        st=$?
        if [ "$st" = "$want" ]; then
                pass "$what (exit status $st)"
        else
                fail "$what: exit status $st, expected $want"
                indent <"$work/out"
        fi
}

# known_issue DESCRIPTION ISSUE CMD...: like check, but a failure is a known
# bug (XFAIL, does not fail the test); once it passes, it is a PASS.
known_issue() {
        local what=$1 issue=$2
        shift 2
        if "$@" >"$work/out" 2>&1; then
                pass "$what"
        else
                echo "XFAIL: $what (known issue: $issue)"
                n_known=$((n_known + 1))
                indent <"$work/out"
        fi
}

if [ "$(id -u)" != 0 ]; then
        skip "needs root (namespaces, a booted systemd, other users)"
        exit 77
fi
if ! absent=$(ct_check_prerequisites); then
        skip "missing: $absent"
        exit 77
fi
if ! unshare --pid --fork --mount --cgroup true 2>/dev/null; then
        skip "cannot create namespaces here"
        exit 77
fi
if [ ! -x "$build/tests/targets/memcr-test-target" ]; then
        skip "$build has no tests/targets/memcr-test-target (configured with -Dtests=false?)"
        exit 77
fi

work=$(mktemp -d /tmp/memcr-systemd-test.XXXXXX)
deb_job=
cleanup() {
        ct_shutdown
        [ -n "$deb_job" ] && kill "$deb_job" 2>/dev/null && wait "$deb_job" 2>/dev/null
        rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The packages take a while: build them while the first container runs.
if [ "${MEMCR_TEST_DEB:-1}" = 0 ]; then
        skip "Debian package (MEMCR_TEST_DEB=0)"
elif ! command -v dpkg-buildpackage >/dev/null || ! command -v dh >/dev/null; then
        skip "Debian package (dpkg-dev or debhelper not installed)"
elif [ ! -d "$src/debian" ]; then
        skip "Debian package (no debian/ in $src)"
else
        mkdir "$work/deb"
        (
                t=$(date +%s%N)
                "$here/build-deb.sh" "$src" "$work/deb" >"$work/deb/out" 2>&1
                st=$?
                echo "$(( ($(date +%s%N) - t) / 1000000 ))" >"$work/deb/msec"
                exit $st
        ) &
        deb_job=$!
fi

TESTDIR=/run/memcr-test
TARGET=/usr/local/lib/memcr-tests/memcr-test-target
SMALL=(--heap=16 --mmap=16 --threads=4)
declare -A T_PID T_FD T_JOB

# ---------------------------------------------------------------------------
# Helpers; everything here runs inside the container.

# memcrctl as USER, bounded in time.
mc() {
        local user=$1
        shift
        ct_run_as "$user" timeout 60 "$MEMCRCTL" "$@"
}

uid_of() { ct_run id -u "$1"; }
unit_pid() { ct_run systemctl show -P MainPID "$1"; }
unit_active() { ct_run systemctl is-active -q "$1"; }
unit_inactive() { ! ct_run systemctl is-active -q "$1"; }
# stat_is "FORMAT" "EXPECTED" PATH...: stat's lines, joined by spaces.
stat_is() {
        local got
        got=$(ct_run stat -c "$1" "${@:3}" | paste -sd ' ')
        [ "$got" = "$2" ] || { echo "got '$got', expected '$2'"; return 1; }
}
# proc_status PID FIELD...: "Field:value " for each field of /proc/PID/status.
proc_status() {
        local pid=$1
        shift
        ct_run awk -v want=" $* " 'index(want, " " substr($1, 1, length($1) - 1) " ") { printf "%s%s ", $1, $2 }' \
                "/proc/$pid/status"
}
proc_state() { ct_run awk '{ print $3 }' "/proc/$1/stat"; }
tracer_of() { ct_run awk '$1 == "TracerPid:" { print $2 }' "/proc/$1/status"; }
is_frozen() { [ "$(proc_state "$1")" = t ] && [ "$(tracer_of "$1")" != 0 ]; }
is_running_free() { [ "$(tracer_of "$1")" = 0 ] && [ "$(proc_state "$1")" != t ]; }
no_units() { [ -z "$(ct_run systemctl list-units --all --no-legend "$@")" ]; }

# Wait until CMD succeeds, for up to SECONDS.
wait_for() {
        local seconds=$1 i
        shift
        for ((i = 0; i < seconds * 10; i++)); do
                "$@" >/dev/null 2>&1 && return 0
                sleep 0.1
        done
        "$@"
}

_target_prepare() {
        local name=$1 user=$2 fd
        ct_run sh -c 'mkdir -p -m 0755 "$1" && cd "$1" && rm -f "$2.in" "$2.out" &&
                      mkfifo -m 0600 "$2.in" && touch "$2.out" && chown "$3" "$2.in" "$2.out"' \
                sh "$TESTDIR" "$name" "$user" || return 1
        # The target reads its commands from the FIFO; open it read-write,
        # so that opening never blocks whoever comes first.
        exec {fd}<>"/proc/$CT_PID/root$TESTDIR/$name.in" || return 1
        T_FD[$name]=$fd
}

_target_ready() {
        local name=$1 out="/proc/$CT_PID/root$TESTDIR/$1.out"
        if ! wait_for 20 grep -q '^READY' "$out"; then
                echo "memcr-test-target $name did not get ready:"
                cat "$out"
                return 1
        fi
        T_PID[$name]=$(sed -n 's/^READY pid=\([0-9]*\).*/\1/p' "$out")
}

# target_start NAME USER [ARGS]: memcr-test-target, started by USER itself.
target_start() {
        local name=$1 user=$2
        shift 2
        _target_prepare "$name" "$user" || return 1
        ct_run_as "$user" sh -c 'io=$1; shift; exec "$0" "$@" <"$io.in" >"$io.out" 2>&1' \
                "$TARGET" "$TESTDIR/$name" "${SMALL[@]}" "$@" &
        T_JOB[$name]=$!
        _target_ready "$name"
}

# target_start_unit NAME USER PROPERTY...: the same as a transient service.
target_start_unit() {
        local name=$1 user=$2 props=() p
        shift 2
        for p in "$@"; do props+=(-p "$p"); done
        _target_prepare "$name" "$user" || return 1
        ct_run systemd-run -q --unit="memcr-test-$name" -p User="$user" -p RemainAfterExit=yes \
                -p StandardInput="file:$TESTDIR/$name.in" -p StandardOutput="append:$TESTDIR/$name.out" \
                -p StandardError="append:$TESTDIR/$name.out" "${props[@]}" \
                "$TARGET" "${SMALL[@]}" || return 1
        T_JOB[$name]=
        _target_ready "$name"
}

_unit_exited() { [ "$(ct_run systemctl show -P SubState "$1")" = exited ]; }

# target_verify NAME: the target checks every byte and exits; it must have
# found everything intact and exited with 0.
target_verify() {
        local name=$1 out="/proc/$CT_PID/root$TESTDIR/$1.out" st unit fd=${T_FD[$1]}
        echo verify >&"$fd"
        if ! wait_for 60 grep -q '^RESULT' "$out"; then
                echo "no RESULT from $name:"
                cat "$out"
                return 1
        fi
        if [ -n "${T_JOB[$name]}" ]; then
                wait "${T_JOB[$name]}"
                st=$?
        else
                unit="memcr-test-$name.service"
                wait_for 20 _unit_exited "$unit"
                st=$(ct_run systemctl show -P ExecMainStatus "$unit")
                ct_run systemctl stop "$unit"
        fi
        exec {fd}>&-
        if ! grep -q '^RESULT ok=1 bad_words=0 ' "$out" || [ "$st" != 0 ]; then
                echo "memcr-test-target $name exited with $st:"
                cat "$out"
                return 1
        fi
}

# journal_has MESSAGE_ID PID [FIELD | FIELD=VALUE]...: the latest record
# with this MESSAGE_ID and MEMCR_PID has every FIELD (not empty), with
# VALUE if given. Prints the record's MEMCR_* fields.
journal_has() {
        local id=$1 pid=$2
        shift 2
        ct_run journalctl --sync >/dev/null 2>&1
        ct_run journalctl -o json --no-pager "MESSAGE_ID=$id" "MEMCR_PID=$pid" |
                python3 -c '
import json, sys
records = [json.loads(line) for line in sys.stdin if line.strip()]
if not records:
    sys.exit("no such record")
r = records[-1]
print(" ".join("%s=%s" % (k, v) for k, v in sorted(r.items()) if k.startswith("MEMCR_")))
bad = []
for want in sys.argv[1:]:
    k, _, v = want.partition("=")
    if not r.get(k) or (v and r[k] != v):
        bad.append("%s is %r" % (k, r.get(k)))
if bad:
    sys.exit("; ".join(bad))
' "$@"
}

# ---------------------------------------------------------------------------
# Setting up a container

boot() {
        if ! ct_boot; then
                fail "booting systemd in a container"
                exit 1
        fi
        info "container booted in $CT_BOOT_MSEC ms ($(ct_run systemctl --version | head -n1))"
}

# Users of the test: alice and bob may use memcrd (group memcr), eve may
# not; carol is a member and may also manage other users' processes (the
# polkit rule below grants her org.memcr.manage-other).
setup_users() {
        ct_write /etc/sysusers.d/memcr-test.conf <<'USERS'
u alice - "memcr test user"
u bob   - "memcr test user"
u carol - "memcr test operator"
u eve   - "memcr test outsider"
m alice memcr
m bob   memcr
m carol memcr
USERS
        ct_run systemd-sysusers /etc/sysusers.d/memcr-test.conf >/dev/null 2>&1
        ct_write /etc/polkit-1/rules.d/40-memcr-test.rules <<'RULES'
polkit.addRule(function(action, subject) {
        if (action.id == "org.memcr.manage-other" && subject.user == "carol")
                return polkit.Result.YES;
});
RULES
        ct_run systemctl restart polkit.service
        ct_run mkdir -p "$(dirname "$TARGET")"
        ct_copy "$build/tests/targets/memcr-test-target" "$TARGET" 0755
        MEMCR_UID=$(uid_of memcr)
        ALICE_UID=$(uid_of alice)
}

# ---------------------------------------------------------------------------
# Checks

verify_units() {
        local man=--man=yes out
        if ! ct_run man -w memcrd.8 >/dev/null 2>&1; then
                man=--man=no
                info "no man pages installed: systemd-analyze verify --man=no"
        fi
        if out=$(ct_run systemd-analyze verify "$man" "$@" 2>&1) && [ -z "$out" ]; then
                pass "systemd-analyze verify: no complaints about ${*##*/}"
        else
                fail "systemd-analyze verify ${*##*/}"
                echo "$out" | indent
        fi
}

security_score() {
        local score
        score=$(ct_run systemd-analyze security --no-pager "$1" 2>/dev/null |
                sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
        if [ -n "$score" ] && awk -v s="$score" -v max="$2" 'BEGIN { exit !(s <= max) }'; then
                pass "systemd-analyze security $1: exposure $score (at most $2)"
        else
                fail "systemd-analyze security $1: exposure '$score', expected at most $2"
                ct_run systemd-analyze security --no-pager "$1" | grep '✗' | indent
        fi
}

memcr_user_ok() {
        ct_run getent passwd memcr | grep -E '^memcr:x:[0-9]+:[0-9]+:[^:]*:/var/lib/memcr:/usr/sbin/nologin$' >/dev/null &&
                [ "$(uid_of memcr)" -lt 1000 ]
}

# /proc/kpageflags (physical page flags, system-wide) stays the kernel's:
# tmpfiles leaves it as it was before (KPF_BEFORE), and neither a member of
# the group memcr (alice) nor the user memcr may open it.
kpageflags_root_only() {
        local u err
        stat_is '%a %U:%G' "$KPF_BEFORE" /proc/kpageflags || return 1
        ct_run_as alice id -Gn | grep -w memcr >/dev/null || { echo "alice is not in group memcr"; return 1; }
        for u in alice memcr; do
                if err=$(ct_run_as "$u" head -c8 /proc/kpageflags 2>&1 >/dev/null); then
                        echo "$u reads /proc/kpageflags"
                        return 1
                fi
                case $err in
                *"Permission denied"*) ;;
                *) echo "$u: $err"; return 1 ;;
                esac
        done
}

# pagemap_frames USER PID: "PRESENT FRAMES": the present pages of PID's
# private writable mappings, and how many of them /proc/PID/pagemap, opened
# by USER, shows a frame number for (the kernel shows them only to an opener
# with CAP_SYS_ADMIN).
pagemap_frames() {
        ct_run_as "$1" python3 - "$2" <<'PY'
import os, struct, sys
pid, page = sys.argv[1], os.sysconf("SC_PAGE_SIZE")
present = frames = 0
with open("/proc/%s/maps" % pid) as maps, open("/proc/%s/pagemap" % pid, "rb") as pm:
    for line in maps:
        f = line.split()
        if not f[1].startswith("rw") or f[1][3] != "p":
            continue
        start, end = (int(x, 16) for x in f[0].split("-"))
        pm.seek(start // page * 8)
        for (e,) in struct.iter_unpack("<Q", pm.read((end - start) // page * 8)):
            if e >> 63:
                present += 1
                frames += (e & ((1 << 55) - 1)) != 0
print(present, frames)
PY
}

# The pagemap the watcher scans is opened inside the target, with its
# rights: for alice's process it shows no frame numbers, so /proc/kpageflags
# (indexed by frame number) could tell nothing about its pages. Root's view
# of the same process has them (the check can see them).
pagemap_without_frames() {
        local a r
        a=$(pagemap_frames alice "$1") && r=$(pagemap_frames root "$1") || return 1
        echo "present pages, with a frame number: as alice $a; as root $r"
        [ "${a% *}" -gt 0 ] && [ "${a#* }" = 0 ] && [ "${r#* }" -gt 0 ]
}

userfaultfd_acl_ok() {
        local acl
        acl=$(ct_run getfacl -cp /dev/userfaultfd) || return 1
        echo "$acl"
        echo "$acl" | grep -x 'user:memcr:rw-' >/dev/null && [ "$(echo "$acl" | grep -c '^user:[^:]')" = 1 ]
}

pkaction_ok() {
        ct_run pkaction --verbose --action-id org.memcr.manage-other | tr -s ' ' | tee /dev/stderr |
                grep -c -e 'implicit any: auth_admin$' -e 'implicit inactive: auth_admin$' \
                        -e 'implicit active: auth_admin_keep$' | grep -x 3 >/dev/null
}

memcrd_not_running() { unit_inactive memcr.service && ! ct_run pgrep -x memcrd; }

# Exactly CAP_SYS_PTRACE, as user memcr, no_new_privs, seccomp.
memcrd_creds_ok() {
        local got want
        got=$(proc_status "$1" Uid Gid CapPrm CapEff CapAmb CapBnd NoNewPrivs Seccomp)
        want="Uid:$MEMCR_UID Gid:$MEMCR_UID CapPrm:0000000000080000 CapEff:0000000000080000 CapBnd:0000000000080000 CapAmb:0000000000080000 NoNewPrivs:1 Seccomp:2 "
        [ "$got" = "$want" ] || { echo "got  $got"; echo "want $want"; return 1; }
}

watcher_unit_listed() {
        ct_run systemctl list-units --no-legend --plain 'memcr-watch@*' | tee /dev/stderr |
                grep -E "^memcr-watch@$1\.service +loaded +active +running" >/dev/null
}

watcher_ok() {
        local target=$1 w=$2
        memcrd_creds_ok "$w" && [ "$(tracer_of "$target")" = "$w" ] &&
                ct_run grep -qx "0::/memcr.slice/memcr-watch@$target.service" "/proc/$w/cgroup"
}

# What memcrd's or a watcher's mount namespace shows the memcr user.
sandbox_view_ok() {
        local n
        for n in "$@"; do
                [ "$(ct_run nsenter -t "$n" -m setpriv --reuid=memcr --regid=memcr --init-groups \
                        head -c8 /proc/kpageflags 2>/dev/null | wc -c)" = 0 ] || { echo "$n: memcr reads /proc/kpageflags"; return 1; }
                ct_run nsenter -t "$n" -m setpriv --reuid=memcr --regid=memcr --init-groups \
                        test -w /run/memcr/watch || { echo "$n: /run/memcr/watch not writable"; return 1; }
        done
}

listed_frozen() { mc "$1" list --no-legend | tee /dev/stderr | grep -E "^$2 .* $3 +frozen" >/dev/null; }

not_traced() {
        local p
        for p in "$@"; do
                [ "$(tracer_of "$p")" = 0 ] || { echo "$p is traced"; return 1; }
        done
}

idle_stop_logged() {
        ct_run journalctl -o json --no-pager MESSAGE_ID=09d2b9ac32014203bb79e40582ddc87f | tail -n1 |
                grep '"MEMCR_FROZEN":"1"' >/dev/null
}

held_frozen() { unit_active "memcr-watch@$1.service" && is_frozen "$1"; }

mc_status_is() {
        local want=$1 st
        shift
        mc "$1" status "$2"
        st=$?
        [ "$st" = "$want" ] || { echo "exit status $st, expected $want"; return 1; }
}

polkit_as() { ct_run_as "$1" systemctl --no-ask-password "${@:2}"; }

# stops_at_once USER UNIT SOCKET: USER stops UNIT within 5 s, it exits
# cleanly (not failed) and its socket is gone.
stops_at_once() {
        local t=$SECONDS log
        polkit_as "$1" stop "$2" || return 1
        [ $((SECONDS - t)) -le 5 ] || { echo "stopping took $((SECONDS - t)) s"; return 1; }
        ! ct_run test -e "$3" || { echo "$3 is still there"; return 1; }
        log=$(ct_run journalctl -o cat --no-pager -u "$2")
        echo "$log"
        echo "$log" | grep 'stopped before a checkpoint job' >/dev/null && ! echo "$log" | grep 'Failed with result' >/dev/null
}

seccomp_on() { [ "$(proc_status "$1" Seccomp)" = "Seccomp:2 " ]; }

# held_through_socket PID: PID is traced by the main process of a watcher
# unit started for a connection to memcr-watch.socket
# (memcr-watch@N-PID-UID.service), in memcr.slice.
held_through_socket() {
        local p=$1 w u unit=
        w=$(tracer_of "$p")
        for u in $(ct_run systemctl list-units --no-legend --plain 'memcr-watch@*' | awk '{ print $1 }'); do
                [ "$(unit_pid "$u")" = "$w" ] && unit=$u
        done
        echo "$p is traced by $w, of '$unit'"
        [[ $unit =~ ^memcr-watch@[0-9]+-[0-9]+-[0-9]+\.service$ ]] &&
                ct_run grep -qx "0::/memcr.slice/$unit" "/proc/$w/cgroup"
}

# denied_naming_polkit USER PID: USER's checkpoint of PID is denied (exit
# status 3), and the answer says polkit is not there, in words.
denied_naming_polkit() {
        local out st
        out=$(mc "$1" checkpoint "$2" 2>&1)
        st=$?
        echo "$out"
        [ "$st" = 3 ] && echo "$out" | grep -F 'polkit is not available (org.freedesktop.PolicyKit1 not activatable)' >/dev/null &&
                ! echo "$out" | grep -i 'rf-kill' >/dev/null
}

fallback_logged() {
        ct_run journalctl --no-pager -o cat -u memcr.service | grep 'starting watchers through /run/memcr/spawn-watcher.sock' >/dev/null
}

no_failed_units() {
        local failed
        failed=$(ct_run systemctl list-units --failed --no-legend --plain)
        [ -z "$failed" ] || { echo "$failed"; return 1; }
}

# ---------------------------------------------------------------------------
# 1. The build tree, installed with meson install

echo "== memcr from $build under systemd"

if ! meson install -C "$build" --no-rebuild --destdir "$work/stage" --quiet >"$work/out" 2>&1; then
        fail "meson install --destdir"
        indent <"$work/out"
        exit 1
fi
unitdir=$(cd "$work/stage" && find . -name memcr.socket -printf '%h\n' | head -n1)
unitdir=${unitdir#.}
MEMCRCTL=$(cd "$work/stage" && find . -path '*/bin/memcrctl' | head -n1)
MEMCRCTL=${MEMCRCTL#.}
MEMCRD=$(cd "$work/stage" && find . -path '*/sbin/memcrd' | head -n1)
MEMCRD=${MEMCRD#.}
if [ -z "$unitdir" ] || [ -z "$MEMCRCTL" ] || [ -z "$MEMCRD" ]; then
        fail "meson install put no memcr.socket, memcrctl or memcrd into $work/stage"
        exit 1
fi
pass "meson install --destdir: $(find "$work/stage" -type f | wc -l) files, units in $unitdir"

boot
ct_copy_tree "$work/stage"
KPF_BEFORE=$(ct_run stat -c '%a %U:%G' /proc/kpageflags)
# What the package's postinst does.
ct_run systemd-sysusers memcr.conf >/dev/null 2>&1
ct_run systemd-tmpfiles --create memcr.conf
ct_run systemctl daemon-reload
setup_users

# --- the installed files
verify_units "$unitdir/memcr.socket" "$unitdir/memcr.service" "$unitdir/memcr-watch@.service" \
        "$unitdir/memcr-watch.socket" "$unitdir/memcr.slice"
security_score memcr.service 1.5
security_score memcr-watch@1.service 1.5
check "sysusers.d: system user memcr, home /var/lib/memcr, no login" memcr_user_ok
check "tmpfiles.d: /run/memcr 0755 root:root; /run/memcr/watch, /var/lib/memcr 0700 memcr:memcr" \
        stat_is '%a %U:%G' '755 root:root 700 memcr:memcr 700 memcr:memcr' /run/memcr /run/memcr/watch /var/lib/memcr
check "tmpfiles.d: /proc/kpageflags left $KPF_BEFORE; alice (group memcr) and memcr may not open it" \
        kpageflags_root_only
if ct_run test -c /dev/userfaultfd; then
        check "tmpfiles.d: ACL on /dev/userfaultfd for user memcr (and no other user)" userfaultfd_acl_ok
else
        skip "tmpfiles.d: ACL on /dev/userfaultfd (the host has no /dev/userfaultfd)"
fi
check "polkit: org.memcr.manage-other is auth_admin / auth_admin / auth_admin_keep" pkaction_ok

# --- socket activation
ct_run systemctl start memcr.socket
check "memcr.socket listening" unit_active memcr.socket
check "/run/memcr/memcr.sock: socket, 0660 root:memcr" stat_is '%F %a %U:%G' 'socket 660 root:memcr' /run/memcr/memcr.sock
check "memcrd not running before the first request" memcrd_not_running

# --- a member of group memcr checkpoints and restores its own process
if target_start t1 alice; then
        p=${T_PID[t1]}
        check "pagemap opened by alice's $p shows no frame numbers: kpageflags would not help the watcher" \
                pagemap_without_frames "$p"
        expect_status 0 "alice (group memcr): memcrctl checkpoint $p, her own process" mc alice checkpoint "$p"
        check "memcr.service started by the request" unit_active memcr.service
        check "$p is frozen (stopped, traced)" is_frozen "$p"
        d=$(unit_pid memcr.service)
        w=$(unit_pid "memcr-watch@$p.service")
        check "memcrd ($d): user memcr, exactly CAP_SYS_PTRACE (CapPrm/CapEff/CapAmb/CapBnd), no_new_privs, seccomp" \
                memcrd_creds_ok "$d"
        check "systemctl list-units 'memcr-watch@*': memcr-watch@$p.service running" watcher_unit_listed "$p"
        check "the watcher ($w) traces $p, in memcr.slice, user memcr, exactly CAP_SYS_PTRACE" watcher_ok "$p" "$w"
        check "inside memcrd's and the watcher's sandboxes memcr writes /run/memcr/watch, cannot read /proc/kpageflags" \
                sandbox_view_ok "$d" "$w"
        check "memcrctl list: $p frozen, owned by alice" listed_frozen alice "$p" alice
        expect_status 0 "alice: memcrctl restore $p" mc alice restore "$p"
        check "$p runs again, not traced" is_running_free "$p"
        check "memcr-test-target $p: every byte verified after the restore" target_verify t1
        check "journal: checkpoint record with MESSAGE_ID and MEMCR_* fields, from memcr.service as memcr" \
                journal_has aac1ed22e2214ab4b3db1ad8de6da24a "$p" MEMCR_OP=checkpoint MEMCR_RESULT=ok \
                MEMCR_CALLER_UID="$ALICE_UID" MEMCR_RSS_BEFORE MEMCR_RSS_AFTER MEMCR_DUMP_BYTES \
                MEMCR_DURATION_USEC _SYSTEMD_UNIT=memcr.service _UID="$MEMCR_UID"
        info "checkpoint record: $(journal_has aac1ed22e2214ab4b3db1ad8de6da24a "$p" 2>&1)"
        check "journal: restore record" \
                journal_has 8c957ea2ccbe451db06f253671b458d6 "$p" MEMCR_OP=restore MEMCR_RESULT=ok \
                MEMCR_CALLER_UID="$ALICE_UID" MEMCR_DUMP_BYTES MEMCR_DURATION_USEC _SYSTEMD_UNIT=memcr.service
        info "restore record: $(journal_has 8c957ea2ccbe451db06f253671b458d6 "$p" 2>&1)"
        check "memcr-watch@$p.service gone after the restore" wait_for 10 no_units "memcr-watch@$p.service"
else
        fail "starting memcr-test-target as alice"
fi

# --- who may not
expect_status 7 "eve (not in group memcr) cannot connect" mc eve list
expect_status 7 "UID 4242 (no passwd entry) cannot connect" mc 4242 list
if target_start tb bob && ct_run sh -c 'sleep 600 >/dev/null 2>&1 & echo $! >/run/memcr-test/root.pid'; then
        pb=${T_PID[tb]}
        pr=$(ct_run cat /run/memcr-test/root.pid)
        expect_status 3 "alice: memcrctl checkpoint $pb (bob's process) denied" mc alice checkpoint "$pb"
        check "journal: denial record (polkit asked: authentication required)" \
                journal_has 9d30549e49ee4ee7825e0c2bd2c759b7 "$pb" MEMCR_OP=checkpoint MEMCR_RESULT=denied \
                MEMCR_CALLER_UID="$ALICE_UID" MEMCR_AUTH=polkit MEMCR_REASON
        info "denial record: $(journal_has 9d30549e49ee4ee7825e0c2bd2c759b7 "$pb" 2>&1)"
        expect_status 3 "alice: memcrctl checkpoint $pr (root's process) denied" mc alice checkpoint "$pr"
        check "bob's and root's processes untouched" not_traced "$pb" "$pr"
        # memcrd (user memcr) may ask polkit about its callers: the action
        # names memcr as its owner.
        expect_status 0 "carol (polkit grants her org.memcr.manage-other): checkpoint $pb, bob's" mc carol checkpoint "$pb"
        expect_status 0 "carol: restore $pb" mc carol restore "$pb"
        check "bob's memcr-test-target $pb: every byte verified" target_verify tb
        ct_run kill "$pr"
else
        fail "starting bob's and root's processes"
fi

# --- memcrd restarted while processes are frozen; stopping a watcher restores
if target_start t2 alice && target_start t3 alice; then
        p2=${T_PID[t2]}
        p3=${T_PID[t3]}
        expect_status 0 "alice: checkpoint $p2 $p3" mc alice checkpoint "$p2" "$p3"
        check "systemctl restart memcr.service with $p2 and $p3 frozen" ct_run systemctl restart memcr.service
        check "the new memcrd knows $p2 is frozen" mc alice status "$p2"
        expect_status 0 "alice: restore $p2 through the new memcrd" mc alice restore "$p2"
        check "memcr-test-target $p2: every byte verified" target_verify t2
        check "systemctl stop memcr-watch@$p3.service" ct_run systemctl stop "memcr-watch@$p3.service"
        check "$p3 runs again, not traced" is_running_free "$p3"
        check "memcrctl status $p3: not frozen any more (memcrd noticed its watcher go)" \
                wait_for 5 mc_status_is 5 alice "$p3"
        check "memcr-test-target $p3: every byte verified" target_verify t3
else
        fail "starting memcr-test-target t2, t3"
fi

# --- lazy restore: the process runs at once, its memory streams back, the
# watcher (with /dev/userfaultfd in its sandbox) lets go when all is back
if target_start t6 alice; then
        p6=${T_PID[t6]}
        expect_status 0 "alice: checkpoint $p6" mc alice checkpoint "$p6"
        expect_status 0 "alice: memcrctl restore --lazy $p6" mc alice restore --lazy "$p6"
        check "memcr-watch@$p6.service gone once the memory is back" wait_for 20 no_units "memcr-watch@$p6.service"
        check "$p6 runs again, not traced" is_running_free "$p6"
        check "journal: lazy restore record (time to running)" \
                journal_has 8c957ea2ccbe451db06f253671b458d6 "$p6" MEMCR_RESTORE=lazy MEMCR_RUNNING_USEC
        check "journal: fully resident record (time to fully resident)" \
                journal_has facd4a38ecbe44648ab2addcd38be20b "$p6" MEMCR_RUNNING_USEC MEMCR_RESIDENT_USEC
        info "lazy restore: $(journal_has facd4a38ecbe44648ab2addcd38be20b "$p6" 2>&1)"
        check "memcr-test-target $p6: every byte verified after the lazy restore" target_verify t6
else
        fail "starting memcr-test-target t6"
fi

# --- exit on idle with a process frozen; back on the next request
ct_write /etc/systemd/system/memcr.service.d/50-idle.conf <<DROPIN
[Service]
ExecStart=
ExecStart=$MEMCRD --runtime-dir=/run/memcr --state-dir=\${STATE_DIRECTORY} --idle-timeout=2
DROPIN
ct_run systemctl daemon-reload
ct_run systemctl stop memcr.service 2>/dev/null   # the socket starts it again
if target_start t4 alice; then
        p4=${T_PID[t4]}
        expect_status 0 "alice: checkpoint $p4 (memcrd with --idle-timeout=2)" mc alice checkpoint "$p4"
        check "memcrd exits when idle" wait_for 15 unit_inactive memcr.service
        check "journal: memcrd stopped, 1 process frozen" idle_stop_logged
        check "$p4 stays frozen, held by memcr-watch@$p4.service" held_frozen "$p4"
        expect_status 0 "alice: restore $p4 (the socket brings memcrd back)" mc alice restore "$p4"
        check "memcr.service active again" unit_active memcr.service
        check "memcr-test-target $p4: every byte verified" target_verify t4
else
        fail "starting memcr-test-target t4"
fi
ct_run rm /etc/systemd/system/memcr.service.d/50-idle.conf
ct_run systemctl daemon-reload

# --- the polkit rule for the memcr user (the PID is nobody's: the watcher
# started for it gets no job and is stopped again)
expect_status 0 "polkit: memcr may stop memcr-watch@4000000.service" polkit_as memcr stop memcr-watch@4000000.service
expect_status 0 "polkit: memcr may start memcr-watch@4000000.service" polkit_as memcr start memcr-watch@4000000.service
check "memcr stops memcr-watch@4000000.service, which got no job, at once and cleanly" \
        stops_at_once memcr memcr-watch@4000000.service /run/memcr/watch/4000000.sock
expect_status 1 "polkit: memcr may not restart memcr-watch@4000000.service" polkit_as memcr restart memcr-watch@4000000.service
expect_status 1 "polkit: memcr may not start memcr.service" polkit_as memcr start memcr.service
expect_status 1 "polkit: memcr may not restart memcr.socket" polkit_as memcr restart memcr.socket
expect_status 1 "polkit: memcr may not start other units (polkit.service)" polkit_as memcr start polkit.service
expect_status 1 "polkit: memcr may not start transient units" \
        ct_run_as memcr systemd-run --no-ask-password -q --unit=memcr-watch@4000001 true
expect_status 1 "polkit: alice may not start memcr-watch@4000002.service" polkit_as alice start memcr-watch@4000002.service

# --- a target running under systemd's system call allow-list
if target_start_unit t5 alice SystemCallFilter=@system-service MemoryDenyWriteExecute=yes \
        NoNewPrivileges=yes SystemCallArchitectures=native LockPersonality=yes; then
        p5=${T_PID[t5]}
        check "memcr-test-t5.service: $p5 runs under a seccomp filter" seccomp_on "$p5"
        expect_status 0 "alice: checkpoint $p5 (SystemCallFilter=@system-service, MemoryDenyWriteExecute=yes)" \
                mc alice checkpoint "$p5"
        expect_status 0 "alice: restore $p5" mc alice restore "$p5"
        check "memcr-test-target $p5 under the allow-list: every byte verified" target_verify t5
else
        fail "starting memcr-test-target as a service with SystemCallFilter=@system-service"
fi

# --- without polkit (it is only recommended): systemd does not let memcrd's
# user start memcr-watch@PID.service, so memcrd starts its watchers through
# memcr-watch.socket; root and what memcr's rules allow need no polkit, and
# whoever needs it is told it is not there
ct_run systemctl stop polkit.service
ct_run systemctl mask --runtime polkit.service >/dev/null 2>&1
ct_run systemctl stop memcr.service 2>/dev/null
if target_start t8 alice && target_start t9 bob &&
        ct_run sh -c 'sleep 600 >/dev/null 2>&1 & echo $! >/run/memcr-test/root2.pid'; then
        p8=${T_PID[t8]}
        p9=${T_PID[t9]}
        pr=$(ct_run cat /run/memcr-test/root2.pid)
        expect_status 0 "polkit masked: root checkpoints $pr" mc root checkpoint "$pr"
        check "$pr is held by a watcher unit started through memcr-watch.socket" held_through_socket "$pr"
        check "journal: memcrd says it starts watchers through memcr-watch.socket" fallback_logged
        expect_status 0 "polkit masked: alice checkpoints her own $p8" mc alice checkpoint "$p8"
        check "polkit masked: alice's checkpoint of bob's $p9 is denied, naming polkit" denied_naming_polkit alice "$p9"
        check "bob's $p9 untouched" not_traced "$p9"
        expect_status 0 "polkit masked: root restores $pr" mc root restore "$pr"
        expect_status 0 "polkit masked: alice restores $p8" mc alice restore "$p8"
        check "$pr runs again, not traced" is_running_free "$pr"
        check "memcr-test-target $p8: every byte verified" target_verify t8
        check "memcr-test-target $p9: every byte verified" target_verify t9
        check "the watcher units started through the socket are gone" wait_for 10 no_units 'memcr-watch@*'
        ct_run kill "$pr"
else
        fail "starting alice's, bob's and root's processes"
fi
ct_run systemctl unmask --runtime polkit.service >/dev/null 2>&1

check "no failed units" no_failed_units
ct_shutdown
info "build tree done after $(elapsed)"

# ---------------------------------------------------------------------------
# 2. The Debian packages, installed with dpkg

deb_socket_ok() {
        ct_run systemctl is-enabled -q memcr.socket && unit_active memcr.socket &&
                stat_is '%a %U:%G' '660 root:memcr' /run/memcr/memcr.sock
}
deb_units_untouched() { unit_inactive memcr.service && no_units 'memcr-watch@*'; }
deb_files_ok() {
        ct_run getent passwd memcr >/dev/null &&
                stat_is '%a %U:%G' '700 memcr:memcr 700 memcr:memcr' /run/memcr/watch /var/lib/memcr &&
                stat_is '%a %U:%G' "$DEB_KPF" /proc/kpageflags
}
deb_polkit_ok() {
        ct_run pkaction --action-id org.memcr.manage-other >/dev/null &&
                ct_run test -f /usr/share/polkit-1/rules.d/50-memcr.rules &&
                stat_is '%a %U' '700 polkitd' /usr/share/polkit-1/rules.d
}
deb_catalog_ok() { ct_run journalctl --list-catalog | grep '^aac1ed22e2214ab4b3db1ad8de6da24a ' >/dev/null; }
deb_held() {
        unit_active "memcr-watch@$1.service" &&
                [ "$(ct_run stat -c %u "/proc/$(unit_pid memcr.service)")" = "$MEMCR_UID" ]
}
deb_reinstall_keeps() {
        local w
        w=$(unit_pid "memcr-watch@$1.service")
        ct_run sh -c 'DEBIAN_FRONTEND=noninteractive dpkg -i /root/memcr-debs/*.deb' >/dev/null &&
                held_frozen "$1" && [ "$(unit_pid "memcr-watch@$1.service")" = "$w" ]
}
# What memcr's tmpfiles.d may change outside its own directories: the mode
# and owner of /proc/kpageflags, and /dev/userfaultfd with its ACL. (The
# container's /dev is its own; /proc/kpageflags is the kernel's, the
# container puts it back when it is gone.)
outside_state() {
        ct_run stat -c '%n %a %U:%G' /proc/kpageflags
        if ct_run test -c /dev/userfaultfd; then
                ct_run stat -c '%n %a %U:%G' /dev/userfaultfd
                ct_run getfacl -cp /dev/userfaultfd
        fi
}
state_is() {
        local now
        now=$(outside_state)
        [ "$now" = "$1" ] && return 0
        echo "expected:"
        echo "$1" | indent
        echo "found:"
        echo "$now" | indent
        return 1
}

# The way earlier versions left /proc/kpageflags: 0440 root:memcr.
plant_old_kpageflags() {
        [ "$DEB_KPF" = '400 root:root' ] &&
                ct_run sh -c 'chown root:memcr /proc/kpageflags && chmod 0440 /proc/kpageflags'
}

all_held_frozen() {
        local p
        for p in "$@"; do
                held_frozen "$p" || { echo "$p is not held frozen"; return 1; }
        done
}

all_running_free() {
        local p
        for p in "$@"; do
                is_running_free "$p" || { echo "$p: state $(proc_state "$p"), tracer $(tracer_of "$p")"; return 1; }
        done
}

# deb_remove_restores PID...: removing the package (apt-get remove) stops
# memcrd and every watcher, which restore their processes, before the unit
# files go; the prerm says so.
deb_remove_restores() {
        local out st p
        if ct_run test -x /usr/bin/apt-get; then
                out=$(ct_run env DEBIAN_FRONTEND=noninteractive apt-get remove -y memcr 2>&1)
        else
                out=$(ct_run dpkg -r memcr 2>&1)
        fi
        st=$?
        # apt-get runs dpkg on a terminal of its own: CR LF.
        out=${out//$'\r'/}
        echo "$out"
        [ "$st" = 0 ] || return 1
        echo "$out" | grep "^memcr: restoring $# frozen processes (PID " >"$work/restoring" || return 1
        for p in "$@"; do
                grep -w "$p" "$work/restoring" >/dev/null || { echo "PID $p not named"; return 1; }
        done
        echo "$out" | grep -x "memcr: restored $# frozen processes" >/dev/null
}

deb_gone() {
        unit_inactive memcr.socket && unit_inactive memcr.service && no_units 'memcr-watch@*' &&
                ! ct_run pgrep -x memcrd && ! ct_run pgrep -x memcr-watch
}

# target_verify, but at once if the target is not running.
deb_verify() { all_running_free "${T_PID[$1]}" && target_verify "$1"; }

if [ -n "$deb_job" ]; then
        echo "== Debian packages"
        wait "$deb_job"
        st=$?
        deb_job=
        if [ $st != 0 ]; then
                fail "dpkg-buildpackage -us -uc -b"
                indent <"$work/deb/out"
        else
                pass "dpkg-buildpackage -us -uc -b in $(cat "$work/deb/msec") ms: $(cd "$work/deb" && echo *.deb)"
                lintian_job=
                if command -v lintian >/dev/null; then
                        (
                                cd "$work/deb" && lintian --fail-on error ./*.changes >lintian.out 2>&1
                                echo $? >lintian.status
                        ) &
                        lintian_job=$!
                fi

                boot
                # Images made for containers forbid maintainer scripts to
                # start services (policy-rc.d); a booted system has no such
                # policy.
                if ct_run test -e /usr/sbin/policy-rc.d; then
                        info "removing /usr/sbin/policy-rc.d (from the host) in the container"
                        ct_run rm /usr/sbin/policy-rc.d
                fi
                ct_run mkdir -p /root/memcr-debs
                for f in "$work"/deb/memcr_*.deb "$work"/deb/libmemcr-client0_*.deb; do
                        ct_copy "$f" "/root/memcr-debs/${f##*/}"
                done
                MEMCRCTL=/usr/bin/memcrctl
                DEB_BEFORE=$(outside_state)
                DEB_KPF=$(ct_run stat -c '%a %U:%G' /proc/kpageflags)
                check "dpkg -i memcr libmemcr-client0" \
                        ct_run sh -c 'DEBIAN_FRONTEND=noninteractive dpkg -i /root/memcr-debs/*.deb'
                check "package: memcr.socket enabled and listening, 0660 root:memcr" deb_socket_ok
                check "package: memcr.service not started, no memcr-watch@ units" deb_units_untouched
                check "package: user memcr, /run/memcr/watch, /var/lib/memcr; /proc/kpageflags left $DEB_KPF" deb_files_ok
                check "package: polkit action and rule in place, rules.d still 0700 polkitd" deb_polkit_ok
                check "package: the journal's catalog has memcr's messages" deb_catalog_ok
                setup_users
                if target_start d1 alice; then
                        p=${T_PID[d1]}
                        expect_status 0 "package: alice checkpoints $p" mc alice checkpoint "$p"
                        check "package: memcr-watch@$p.service holds it, memcrd runs as memcr" deb_held "$p"
                        planted=
                        plant_old_kpageflags && planted=1
                        check "package: reinstalling (an upgrade) leaves $p frozen" deb_reinstall_keeps "$p"
                        if [ -n "$planted" ]; then
                                check "package: the upgrade makes /proc/kpageflags 400 root:root again (earlier versions: 440 root:memcr)" \
                                        stat_is '%a %U:%G' '400 root:root' /proc/kpageflags
                        else
                                skip "package: upgrade from 440 root:memcr /proc/kpageflags (the kernel has it $DEB_KPF)"
                        fi
                        expect_status 0 "package: alice restores $p" mc alice restore "$p"
                        check "package: memcr-test-target $p: every byte verified" target_verify d1
                else
                        fail "package: starting memcr-test-target"
                fi

                # Removal restores whatever is frozen; purge leaves the
                # system as it was.
                if target_start d2 alice && target_start d3 bob; then
                        p2=${T_PID[d2]}
                        p3=${T_PID[d3]}
                        expect_status 0 "package: alice checkpoints $p2" mc alice checkpoint "$p2"
                        expect_status 0 "package: bob checkpoints $p3" mc bob checkpoint "$p3"
                        check "package: $p2 and $p3 frozen, held by their watchers" all_held_frozen "$p2" "$p3"
                        check "apt-get remove memcr: 'memcr: restoring 2 frozen processes', restored" \
                                deb_remove_restores "$p2" "$p3"
                        check "package removed: $p2 and $p3 run again, not traced" all_running_free "$p2" "$p3"
                        check "package removed: memcr-test-target $p2: every byte verified" deb_verify d2
                        check "package removed: memcr-test-target $p3: every byte verified" deb_verify d3
                else
                        fail "package: starting memcr-test-target d2, d3"
                        ct_run dpkg -r memcr >/dev/null 2>&1
                fi
                check "package removed: memcr.socket, memcrd, no memcr-watch@ units (not even not-found ones)" deb_gone
                check "package removed: /proc/kpageflags and /dev/userfaultfd as before the installation" \
                        state_is "$DEB_BEFORE"
                check "dpkg --purge memcr libmemcr-client0" ct_run dpkg --purge memcr libmemcr-client0
                check "package purged: /proc/kpageflags and /dev/userfaultfd as before the installation" \
                        state_is "$DEB_BEFORE"
                ct_shutdown

                if [ -z "$lintian_job" ]; then
                        skip "lintian (not installed)"
                elif wait "$lintian_job" && [ "$(cat "$work/deb/lintian.status")" = 0 ]; then
                        pass "lintian: no errors"
                        grep -v '^running with root' "$work/deb/lintian.out" | indent
                else
                        fail "lintian"
                        indent <"$work/deb/lintian.out"
                fi
        fi
fi

echo "== $n_pass passed, $n_fail failed, $n_known known issues, $(elapsed)"
[ "$n_fail" = 0 ]
