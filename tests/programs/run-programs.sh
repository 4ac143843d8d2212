#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Real programs, not written for memcr, frozen and restored through a private
# memcrd and memcrctl: python3 (also starting a program every 10 ms), perl, node, redis-server, a JVM and a Go
# program from the distribution's packages, and a statically linked
# multi-threaded C program (8 threads, and 300). Each case runs CYCLES eager
# and CYCLES lazy restores; after every one the program checks its own state
# (a digest of its data, taken at start, computed again; its threads still
# running) and answers; the process must still be alive and not killed by a
# signal, and memcrctl must have reported success. A request sent while the
# process is frozen must stay unanswered until the restore. A case whose
# program dies or fails a check starts it again for its remaining cycles.
#
# usage: run-programs.sh [--list] [CASE...]     (all cases by default)
#
# Environment:
#   MEMCRD, MEMCR_WATCH, MEMCRCTL   the binaries under test (required)
#   MEMCR_PROGRAM_STATIC            the static C program (static-threads.c);
#                                   its cases are skipped without it
#   MEMCR_PROGRAM_CYCLES            eager and lazy cycles per case [5; 20
#                                   when MEMCR_PROGRAM_SLOW=1]
#   MEMCR_PROGRAM_KEEP=1            keep the temporary directory (logs)
#   MEMCR_PROGRAM_PYTHON3, _PERL, _NODE, _REDIS_SERVER, _REDIS_CLI, _SOCAT,
#   _JAVA, _GO                      the programs [the distribution's, in /usr/bin]
#
# One line per case and cycle (PASS or FAIL, SKIP for a program that is not
# installed), then "N passed, N failed"; the exit status is 1 when anything
# failed, 77 (skipped) when not run as root.
set -euo pipefail

HERE=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
ALL_CASES=(python3 python3-spawn perl node redis static static-300 go java)

if [[ ${1:-} == --list ]]; then
        printf '%s\n' "${ALL_CASES[@]}"
        exit 0
fi
if [[ ${1:-} == -h || ${1:-} == --help ]]; then
        sed -n '4,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
        exit 0
fi
CASES=("$@")
if [[ ${#CASES[@]} -eq 0 ]]; then
        CASES=("${ALL_CASES[@]}")
fi
for c in "${CASES[@]}"; do
        if [[ " ${ALL_CASES[*]} " != *" $c "* ]]; then
                echo "unknown case '$c'; cases: ${ALL_CASES[*]}" >&2
                exit 2
        fi
done

: "${MEMCRD:?MEMCRD must name the memcrd binary}"
: "${MEMCR_WATCH:?MEMCR_WATCH must name the memcr-watch binary}"
: "${MEMCRCTL:?MEMCRCTL must name the memcrctl binary}"
STATIC=${MEMCR_PROGRAM_STATIC:-}
if [[ ${MEMCR_PROGRAM_SLOW:-0} == 1 ]]; then
        CYCLES=${MEMCR_PROGRAM_CYCLES:-20}
else
        CYCLES=${MEMCR_PROGRAM_CYCLES:-5}
fi
if ! [[ $CYCLES =~ ^[0-9]+$ ]] || [[ $CYCLES -lt 1 ]]; then
        echo "MEMCR_PROGRAM_CYCLES must be a positive number" >&2
        exit 2
fi

PYTHON3=${MEMCR_PROGRAM_PYTHON3:-/usr/bin/python3}
PERL=${MEMCR_PROGRAM_PERL:-/usr/bin/perl}
NODE=${MEMCR_PROGRAM_NODE:-/usr/bin/node}
REDIS_SERVER=${MEMCR_PROGRAM_REDIS_SERVER:-/usr/bin/redis-server}
REDIS_CLI=${MEMCR_PROGRAM_REDIS_CLI:-/usr/bin/redis-cli}
SOCAT=${MEMCR_PROGRAM_SOCAT:-/usr/bin/socat}
JAVA=${MEMCR_PROGRAM_JAVA:-/usr/bin/java}
GO=${MEMCR_PROGRAM_GO:-/usr/bin/go}

# Bounds, in seconds: nothing waits longer.
CTL_TIMEOUT=120         # each memcrctl request
START_TIMEOUT=180       # a program's start until it is ready
ANSWER_TIMEOUT=120      # an answer after a restore
RELEASE_TIMEOUT=120     # memcrd letting go of a process (lazy: memory streamed back)
QUIT_TIMEOUT=30         # a program exiting when asked to
FROZEN_SEC=0.2          # time spent frozen, waiting for no answer

if [[ $(id -u) != 0 ]]; then
        echo "SKIP: needs root (memcrd freezes processes with ptrace)"
        exit 77
fi

PASSED=0
FAILED=0
TMP=$(mktemp -d "${TMPDIR:-/tmp}/memcr-programs.XXXXXX")
SOCK=$TMP/memcr.sock
MEMCRD_LOG=$TMP/memcrd.log
MEMCRD_PID=
STARTED=()              # every process started here, killed on exit

cleanup() {
        local p args

        set +e
        for p in "${STARTED[@]}"; do
                kill -KILL "$p" 2>/dev/null
        done
        # Watchers detach from memcrd (a session of their own each); they run
        # with their sockets under our runtime directory.
        for p in /proc/[0-9]*; do
                p=${p#/proc/}
                [[ $p == "$$" || $p == "$MEMCRD_PID" ]] && continue
                args=()
                { mapfile -d '' -t args <"/proc/$p/cmdline"; } 2>/dev/null || continue
                if [[ " ${args[*]} " == *" --runtime-dir=$TMP/"* ]]; then
                        kill -KILL "$p" 2>/dev/null
                fi
        done
        if [[ -n $MEMCRD_PID ]]; then
                kill -TERM "$MEMCRD_PID" 2>/dev/null
                for _ in $(seq 50); do
                        kill -0 "$MEMCRD_PID" 2>/dev/null || break
                        sleep 0.1
                done
                kill -KILL "$MEMCRD_PID" 2>/dev/null
        fi
        wait 2>/dev/null
        if [[ ${MEMCR_PROGRAM_KEEP:-0} == 1 ]]; then
                echo "kept $TMP"
        else
                rm -rf "$TMP"
        fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

pass() {
        PASSED=$((PASSED + 1))
        printf 'PASS %s\n' "$*"
}

fail() {
        FAILED=$((FAILED + 1))
        printf 'FAIL %s\n' "$*"
}

now_us() {
        local t=$EPOCHREALTIME
        echo $((10#${t/./}))
}

# Seconds since a now_us value, with two decimals.
since() {
        local d=$(($(now_us) - $1))
        printf '%d.%02d' $((d / 1000000)) $((d % 1000000 / 10000))
}

alive() {
        local s

        [[ $1 =~ ^[0-9]+$ ]] || return 1
        { read -r s <"/proc/$1/stat"; } 2>/dev/null || return 1
        s=${s##*) }
        [[ ${s:0:1} != Z && ${s:0:1} != X ]]
}

# How a child of ours that is no longer alive ended, in ENDING. Not in a
# subshell: only this shell can wait for its children.
ENDING=
ending() {
        local st=0

        wait "$1" 2>/dev/null || st=$?
        if [[ $st -gt 128 && $st -lt 160 ]]; then
                ENDING="killed by SIG$(kill -l $((st - 128))) (signal $((st - 128)))"
        elif [[ $st == 127 ]]; then
                ENDING="gone (exit status 127: not found, or not a child of this shell)"
        else
                ENDING="exited with status $st"
        fi
}

# Once memcrd is gone (a failure of its own), the remaining cases are not run.
MEMCRD_GONE=0
memcrd_alive() {
        [[ $MEMCRD_GONE == 0 ]] || return 1
        if ! alive "$MEMCRD_PID"; then
                MEMCRD_GONE=1
                ending "$MEMCRD_PID"
                fail "memcrd: $ENDING; the remaining cases are not run"
                tail -n 20 "$MEMCRD_LOG" | sed 's/^/     memcrd.log: /'
                return 1
        fi
}

# What memcrd and the watcher logged last about a process, after a failure.
log_for() {
        [[ -n $1 ]] || return 0
        grep -F "MEMCR_PID=$1 " "$MEMCRD_LOG" 2>/dev/null | grep -v ': request' | tail -n 3 |
                sed -e 's/ \[MESSAGE_ID=.*//' -e 's/^/     log: /' || true
}

ctl() {
        timeout -k 5 $((CTL_TIMEOUT + 15)) "$MEMCRCTL" --socket="$SOCK" --timeout="$CTL_TIMEOUT" "$@"
}

start_memcrd() {
        mkdir -m 0700 "$TMP/state"
        "$MEMCRD" --listen="$SOCK" --runtime-dir="$TMP/run" --state-dir="$TMP/state" \
                --watchers=fork --watcher="$MEMCR_WATCH" --polkit=no \
                </dev/null >>"$MEMCRD_LOG" 2>&1 &
        MEMCRD_PID=$!
        for _ in $(seq 300); do
                if [[ -S $SOCK ]] && ctl list >/dev/null 2>&1; then
                        return 0
                fi
                alive "$MEMCRD_PID" || break
                sleep 0.1
        done
        echo "memcrd did not start; its log:" >&2
        tail -n 20 "$MEMCRD_LOG" >&2
        return 1
}

# The state memcrd reports for a process ("" when it knows none), and its
# watcher; STATUS_RC is memcrctl's exit status.
STATE=
WATCHER=
STATUS_RC=0
status_of() {
        local out

        STATUS_RC=0
        out=$(ctl --json status "$1" 2>&1) || STATUS_RC=$?
        STATE=
        WATCHER=
        if [[ $out =~ \"state\":\"([a-z-]+)\" ]]; then
                STATE=${BASH_REMATCH[1]}
        fi
        if [[ $out =~ \"watcher_pid\":([0-9]+) ]]; then
                WATCHER=${BASH_REMATCH[1]}
        fi
        STATUS_OUT=$out
}

CTL_ERROR=
T_CHECKPOINT=
T_RESTORE=

checkpoint() {
        local pid=$1 out rc=0 t0 s

        t0=$(now_us)
        out=$(ctl checkpoint "$pid" 2>&1) || rc=$?
        T_CHECKPOINT=$(since "$t0")
        if [[ $rc != 0 ]]; then
                CTL_ERROR="checkpoint failed (memcrctl exit status $rc): $out"
                return 1
        fi
        status_of "$pid"
        if [[ $STATE != frozen ]]; then
                CTL_ERROR="memcrctl checkpoint succeeded but status says '$STATE' (exit status $STATUS_RC): $STATUS_OUT"
                return 1
        fi
        { read -r s <"/proc/$pid/stat"; } 2>/dev/null || s="gone) ?"
        s=${s##*) }
        if [[ ${s:0:1} != t ]]; then
                CTL_ERROR="checkpointed, but the process is in state '${s:0:1}', not stopped by its tracer"
                return 1
        fi
}

restore() {
        local pid=$1 mode=$2 out rc=0 t0

        t0=$(now_us)
        out=$(ctl restore --"$mode" "$pid" 2>&1) || rc=$?
        T_RESTORE=$(since "$t0")
        if [[ $rc != 0 ]]; then
                CTL_ERROR="$mode restore failed (memcrctl exit status $rc): $out"
                return 1
        fi
}

# Waits until memcrd has let go of a process: at once after an eager restore,
# once its memory is back after a lazy one.
released() {
        local pid=$1 deadline=$((SECONDS + RELEASE_TIMEOUT))

        while :; do
                status_of "$pid"
                case $STATUS_RC in
                        5) return 0 ;;
                        0) ;;
                        *)
                                CTL_ERROR="memcrctl status failed (exit status $STATUS_RC): $STATUS_OUT"
                                return 1 ;;
                esac
                if [[ $SECONDS -ge $deadline ]]; then
                        CTL_ERROR="still '$STATE' in memcrd ${RELEASE_TIMEOUT}s after the restore"
                        return 1
                fi
                sleep 0.1
        done
}

# ---------------------------------------------------------------------------
# Programs that answer requests line by line on two FIFOs: "verify" answered
# with "OK <digest> ..." or "FAIL <reason>", "quit" with "BYE".

P_NAME=
P_PID=
P_IN=
P_OUT=
P_REF=
P_DIR=
P_SEQ=0
P_CMD=()
ANSWER=

# Reads one answer line of the program within $1 seconds. Returns 0 with it
# in ANSWER, 1 on a timeout, 2 when the program is gone.
read_answer() {
        local deadline=$((SECONDS + $1)) part= line rc

        ANSWER=
        while :; do
                line=
                if IFS= read -r -t 0.2 -u "$P_OUT" line; then
                        ANSWER=$part$line
                        return 0
                else
                        rc=$?
                fi
                if [[ $rc -le 128 ]]; then
                        return 2
                fi
                part+=$line
                alive "$P_PID" || return 2
                [[ $SECONDS -lt $deadline ]] || return 1
        done
}

stderr_tail() {
        if [[ -s $P_DIR/stderr ]]; then
                printf '     stderr: %s\n' "$(tail -n 3 "$P_DIR/stderr" | tr '\n' '|' | cut -c1-300)"
        fi
}

program_close() {
        if [[ -n $P_IN ]]; then
                exec {P_IN}>&- {P_OUT}>&-
        fi
        P_IN=
        P_OUT=
}

# Kills the current program (a failed one) and forgets it.
program_kill() {
        if [[ -n $P_PID ]]; then
                kill -KILL "$P_PID" 2>/dev/null || true
                wait "$P_PID" 2>/dev/null || true
                # memcrd notices and lets go of it (a frozen one too).
                released "$P_PID" >/dev/null 2>&1 || true
        fi
        program_close
        P_PID=
}

program_start() {
        local n t0 rc=0

        P_SEQ=$((P_SEQ + 1))
        n=$P_SEQ
        mkfifo "$P_DIR/in.$n" "$P_DIR/out.$n"
        t0=$(now_us)
        (cd "$P_DIR" && exec "${P_CMD[@]}") <"$P_DIR/in.$n" >"$P_DIR/out.$n" 2>>"$P_DIR/stderr" &
        P_PID=$!
        STARTED+=("$P_PID")
        exec {P_IN}<>"$P_DIR/in.$n" {P_OUT}<>"$P_DIR/out.$n"
        read_answer "$START_TIMEOUT" || rc=$?
        if [[ $rc == 2 ]]; then
                ending "$P_PID"
                fail "$P_NAME start: $ENDING before it was ready"
        elif [[ $rc == 1 ]]; then
                fail "$P_NAME start: not ready within ${START_TIMEOUT}s"
        elif [[ $ANSWER != "READY "* ]]; then
                fail "$P_NAME start: '$ANSWER' instead of READY"
        else
                P_REF=${ANSWER#READY }
                printf '     %s: pid %s ready in %ss, digest %s\n' "$P_NAME" "$P_PID" "$(since "$t0")" "$P_REF"
                return 0
        fi
        stderr_tail
        program_kill
        return 1
}

# One cycle: checkpoint, a request while frozen, restore, its answer.
program_cycle() {
        local mode=$1 what=$2 line= rc=0 t0

        if ! alive "$P_PID"; then
                ending "$P_PID"
                fail "$what: the process is gone before the checkpoint: $ENDING"
                return 1
        fi
        if ! checkpoint "$P_PID"; then
                fail "$what: $CTL_ERROR"
                return 1
        fi
        printf 'verify\n' >&"$P_IN"
        if IFS= read -r -t "$FROZEN_SEC" -u "$P_OUT" line || [[ -n $line ]]; then
                fail "$what: answered while frozen: '$line'"
                return 1
        fi
        if ! restore "$P_PID" "$mode"; then
                fail "$what: $CTL_ERROR"
                return 1
        fi
        t0=$(now_us)
        read_answer "$ANSWER_TIMEOUT" || rc=$?
        if [[ $rc == 2 ]]; then
                ending "$P_PID"
                fail "$what: $ENDING $(since "$t0")s after memcrctl reported the $mode restore done"
                stderr_tail
                return 1
        elif [[ $rc == 1 ]]; then
                fail "$what: no answer within ${ANSWER_TIMEOUT}s of the restore"
                return 1
        fi
        if [[ $ANSWER != "OK $P_REF "* ]]; then
                fail "$what: answered '$ANSWER' (digest at start $P_REF)"
                return 1
        fi
        local answered
        answered=$(since "$t0")
        if ! released "$P_PID"; then
                fail "$what: $CTL_ERROR"
                return 1
        fi
        if ! alive "$P_PID"; then
                ending "$P_PID"
                fail "$what: answered, then $ENDING"
                stderr_tail
                return 1
        fi
        pass "$what: ${ANSWER:0:19}… ${ANSWER#OK $P_REF } (checkpoint ${T_CHECKPOINT}s, restore ${T_RESTORE}s, answer ${answered}s)"
}

program_quit() {
        local rc=0 st

        [[ -n $P_PID ]] || return 0     # the last cycle failed and killed it
        if ! alive "$P_PID"; then
                ending "$P_PID"
                fail "$P_NAME quit: the process is gone: $ENDING"
                program_kill
                return
        fi
        printf 'quit\n' >&"$P_IN"
        read_answer "$QUIT_TIMEOUT" || rc=$?
        if [[ $rc != 0 || $ANSWER != BYE ]]; then
                fail "$P_NAME quit: answered '$ANSWER' (read status $rc)"
                program_kill
                return
        fi
        program_close
        for _ in $(seq $((QUIT_TIMEOUT * 10))); do
                alive "$P_PID" || break
                sleep 0.1
        done
        if alive "$P_PID"; then
                fail "$P_NAME quit: still running ${QUIT_TIMEOUT}s after it was asked to exit"
                program_kill
                return
        fi
        ending "$P_PID"
        st=$ENDING
        P_PID=
        if [[ $st == "exited with status 0" ]]; then
                pass "$P_NAME quit: $st"
        else
                fail "$P_NAME quit: $st"
        fi
}

# run_program NAME COMMAND...: CYCLES eager then CYCLES lazy cycles.
run_program() {
        local mode i

        P_NAME=$1
        shift
        P_CMD=("$@")
        P_DIR=$TMP/$P_NAME
        mkdir -p "$P_DIR"
        program_start || return 0
        for mode in eager lazy; do
                for i in $(seq "$CYCLES"); do
                        if [[ -z $P_PID ]]; then
                                printf '     %s: starting it again\n' "$P_NAME"
                                program_start || return 0
                        fi
                        if ! program_cycle "$mode" "$P_NAME $mode $i/$CYCLES"; then
                                log_for "$P_PID"
                                program_kill
                                memcrd_alive || return 0
                        fi
                done
        done
        program_quit
}

need() {
        local p

        for p in "$@"; do
                if [[ ! -x $p ]]; then
                        printf 'SKIP %s: %s is not installed\n' "$CASE" "$p"
                        return 1
                fi
        done
}

case_python3() {
        need "$PYTHON3" || return 0
        # 1M dict entries, 8 threads, 64 MiB bytearray.
        PYTHONDONTWRITEBYTECODE=1 run_program python3 "$PYTHON3" "$HERE/program.py" 1000000 8 64
}

case_python3-spawn() {
        need "$PYTHON3" || return 0
        # 200k dict entries, 2 threads, 32 MiB, and /bin/true started every
        # 10 ms (vfork() and exec while the memory streams back).
        PYTHONDONTWRITEBYTECODE=1 run_program python3-spawn "$PYTHON3" "$HERE/program.py" 200000 2 32 10
}

case_perl() {
        need "$PERL" || return 0
        run_program perl "$PERL" "$HERE/program.pl" 500000 4
}

case_node() {
        need "$NODE" || return 0
        run_program node "$NODE" "$HERE/program.js" 200000
}

case_static() {
        if [[ -z $STATIC || ! -x $STATIC ]]; then
                printf 'SKIP %s: no static program (MEMCR_PROGRAM_STATIC)\n' "$CASE"
                return 0
        fi
        # 8 threads, 4 MiB each.
        run_program static "$STATIC" -t 8 -m 4096 -s 2000
}

case_static-300() {
        if [[ -z $STATIC || ! -x $STATIC ]]; then
                printf 'SKIP %s: no static program (MEMCR_PROGRAM_STATIC)\n' "$CASE"
                return 0
        fi
        # 300 threads, 256 KiB each, each waking up every 20 ms.
        run_program static-300 "$STATIC" -t 300 -m 256 -s 20000
}

case_go() {
        local dir=$TMP/go-build out

        need "$GO" || return 0
        mkdir -p "$dir/tmp"
        cp "$HERE/program.go" "$dir/"
        if ! out=$(cd "$dir" && HOME=$dir GOPATH=$dir/gopath GOCACHE=$dir/cache GOTMPDIR=$dir/tmp \
                   GO111MODULE=off GOFLAGS= CGO_ENABLED=0 \
                   timeout 600 "$GO" build -o program program.go 2>&1); then
                fail "go build: $out"
                return 0
        fi
        run_program go "$dir/program" 500000 200
}

case_java() {
        need "$JAVA" || return 0
        mkdir -p "$TMP/java"
        # No hsperfdata files outside our directory.
        run_program java "$JAVA" -Xmx1g -XX:-UsePerfData -Djava.io.tmpdir="$TMP/java" \
                "$HERE/Program.java" 500000 8
}

# ---------------------------------------------------------------------------
# redis-server, on a UNIX socket of its own, no persistence. One client
# connection (socat on two FIFOs) stays open across every freeze.

R_PID=
K_PID=
K_IN=
K_OUT=
R_SOCK=
R_DIR=
R_REF=
R_KEYS=

redis() {
        timeout 60 "$REDIS_CLI" -s "$R_SOCK" "$@" 2>&1
}

redis_log_tail() {
        local l

        l=$(grep -E 'crashed|signal|Segmentation|ASSERT|Killed' "$R_DIR/redis.log" 2>/dev/null | head -n 3) ||
                l=$(tail -n 3 "$R_DIR/redis.log" 2>/dev/null) || true
        if [[ -n $l ]]; then
                printf '     redis.log: %s\n' "$(tr '\n' '|' <<<"$l" | cut -c1-300)"
        fi
}

# One reply on the kept connection within $1 seconds; a bulk string as its
# contents. Returns like read_answer.
redis_reply() {
        local deadline=$((SECONDS + $1)) part= line rc

        ANSWER=
        while :; do
                line=
                if IFS= read -r -t 0.2 -u "$K_OUT" line; then
                        line=${part}${line%$'\r'}
                        part=
                        if [[ $line == \$* && $line != '$-1' ]]; then
                                continue        # the contents follow
                        fi
                        ANSWER=$line
                        return 0
                else
                        rc=$?
                fi
                [[ $rc -gt 128 ]] || return 2
                part+=$line
                alive "$R_PID" || return 2
                alive "$K_PID" || return 2
                [[ $SECONDS -lt $deadline ]] || return 1
        done
}

redis_stop() {
        if [[ -n $K_IN ]]; then
                exec {K_IN}>&- {K_OUT}>&-
        fi
        K_IN=
        K_OUT=
        [[ -n $K_PID ]] && { kill -KILL "$K_PID" 2>/dev/null || true; wait "$K_PID" 2>/dev/null || true; }
        if [[ -n $R_PID ]]; then
                kill -KILL "$R_PID" 2>/dev/null || true
                wait "$R_PID" 2>/dev/null || true
                released "$R_PID" >/dev/null 2>&1 || true
        fi
        K_PID=
        R_PID=
}

redis_start() {
        local t0 out n

        P_SEQ=$((P_SEQ + 1))
        n=$P_SEQ
        R_SOCK=$R_DIR/redis.$n.sock
        t0=$(now_us)
        "$REDIS_SERVER" --port 0 --unixsocket "$R_SOCK" --unixsocketperm 700 --dir "$R_DIR" \
                --save '' --appendonly no --daemonize no --logfile "$R_DIR/redis.log" \
                --enable-debug-command yes --loglevel notice \
                </dev/null >>"$R_DIR/stderr" 2>&1 &
        R_PID=$!
        STARTED+=("$R_PID")
        for _ in $(seq 300); do
                [[ $(redis PING) == PONG ]] && break
                alive "$R_PID" || break
                sleep 0.1
        done
        if [[ $(redis PING) != PONG ]]; then
                ENDING=running
                alive "$R_PID" || ending "$R_PID"
                fail "redis start: no answer to PING (server $ENDING)"
                redis_log_tail
                redis_stop
                return 1
        fi
        # Strings, and a sorted set, a list and a hash made by a Lua script.
        out=$(redis DEBUG POPULATE 200000 key 64)
        if [[ $out != OK ]]; then
                fail "redis start: DEBUG POPULATE answered '$out'"
                redis_stop
                return 1
        fi
        out=$(redis EVAL "for i = 1, 50000 do
                redis.call('ZADD', 'zset', i, 'member-' .. i)
                redis.call('RPUSH', 'list', 'item-' .. i)
                redis.call('HSET', 'hash', 'field-' .. i, i * 3)
        end
        return redis.call('DBSIZE')" 0)
        R_KEYS=200003
        if [[ $out != "$R_KEYS" ]]; then
                fail "redis start: the Lua script answered '$out', expected $R_KEYS keys"
                redis_stop
                return 1
        fi
        R_REF=$(redis DEBUG DIGEST)
        if ! [[ $R_REF =~ ^[0-9a-f]{40}$ ]]; then
                fail "redis start: DEBUG DIGEST answered '$R_REF'"
                redis_stop
                return 1
        fi

        mkfifo "$R_DIR/kin.$n" "$R_DIR/kout.$n"
        "$SOCAT" - UNIX-CONNECT:"$R_SOCK" <"$R_DIR/kin.$n" >"$R_DIR/kout.$n" 2>>"$R_DIR/stderr" &
        K_PID=$!
        STARTED+=("$K_PID")
        exec {K_IN}<>"$R_DIR/kin.$n" {K_OUT}<>"$R_DIR/kout.$n"
        printf 'CLIENT SETNAME kept-across-freezes\r\n' >&"$K_IN"
        if ! redis_reply 30 || [[ $ANSWER != +OK ]]; then
                fail "redis start: CLIENT SETNAME on the kept connection answered '$ANSWER'"
                redis_stop
                return 1
        fi
        printf '     redis: pid %s ready in %ss, %s keys, digest %s\n' "$R_PID" "$(since "$t0")" "$R_KEYS" "$R_REF"
}

redis_cycle() {
        local mode=$1 what=$2 line= rc=0 t0 out answered

        if ! alive "$R_PID"; then
                ending "$R_PID"
                fail "$what: redis-server is gone before the checkpoint: $ENDING"
                return 1
        fi
        if ! checkpoint "$R_PID"; then
                fail "$what: $CTL_ERROR"
                return 1
        fi
        printf 'DEBUG DIGEST\r\n' >&"$K_IN"
        if IFS= read -r -t "$FROZEN_SEC" -u "$K_OUT" line || [[ -n $line ]]; then
                fail "$what: answered while frozen: '$line'"
                return 1
        fi
        if ! restore "$R_PID" "$mode"; then
                fail "$what: $CTL_ERROR"
                return 1
        fi
        t0=$(now_us)
        redis_reply "$ANSWER_TIMEOUT" || rc=$?
        if [[ $rc == 2 ]]; then
                if ! alive "$R_PID"; then
                        ending "$R_PID"
                        fail "$what: redis-server $ENDING $(since "$t0")s after memcrctl reported the $mode restore done"
                        redis_log_tail
                else
                        ending "$K_PID"
                        fail "$what: the kept connection is closed ($ENDING)"
                fi
                return 1
        elif [[ $rc == 1 ]]; then
                fail "$what: no answer on the kept connection within ${ANSWER_TIMEOUT}s of the restore"
                return 1
        fi
        if [[ $ANSWER != "+$R_REF" ]]; then
                fail "$what: DEBUG DIGEST on the kept connection answered '$ANSWER', expected $R_REF"
                return 1
        fi
        answered=$(since "$t0")
        printf 'CLIENT GETNAME\r\n' >&"$K_IN"
        if ! redis_reply 30 || [[ $ANSWER != kept-across-freezes ]]; then
                fail "$what: CLIENT GETNAME on the kept connection answered '$ANSWER'"
                return 1
        fi
        out=$(redis PING)
        if [[ $out != PONG ]]; then
                fail "$what: PING on a new connection answered '$out'"
                return 1
        fi
        out=$(redis DBSIZE)
        if [[ $out != "$R_KEYS" ]]; then
                fail "$what: DBSIZE answered '$out', expected $R_KEYS"
                return 1
        fi
        if ! released "$R_PID"; then
                fail "$what: $CTL_ERROR"
                return 1
        fi
        if ! alive "$R_PID"; then
                ending "$R_PID"
                fail "$what: answered, then redis-server $ENDING"
                redis_log_tail
                return 1
        fi
        pass "$what: DEBUG DIGEST ${R_REF:0:12}… and name on the kept connection, $R_KEYS keys and PING on a new one (checkpoint ${T_CHECKPOINT}s, restore ${T_RESTORE}s, answer ${answered}s)"
}

case_redis() {
        local mode i out st

        need "$REDIS_SERVER" "$REDIS_CLI" "$SOCAT" || return 0
        R_DIR=$TMP/redis
        mkdir -p "$R_DIR"
        redis_start || return 0
        for mode in eager lazy; do
                for i in $(seq "$CYCLES"); do
                        if [[ -z $R_PID ]]; then
                                printf '     redis: starting it again\n'
                                redis_start || return 0
                        fi
                        if ! redis_cycle "$mode" "redis $mode $i/$CYCLES"; then
                                log_for "$R_PID"
                                redis_stop
                                memcrd_alive || return 0
                        fi
                done
        done
        [[ -n $R_PID ]] || return 0     # the last cycle failed and killed it
        if ! alive "$R_PID"; then
                ending "$R_PID"
                fail "redis quit: redis-server is gone: $ENDING"
                redis_stop
                return 0
        fi
        exec {K_IN}>&- {K_OUT}>&-
        K_IN=
        K_OUT=
        wait "$K_PID" 2>/dev/null || true
        K_PID=
        out=$(redis SHUTDOWN NOSAVE) || true
        for _ in $(seq $((QUIT_TIMEOUT * 10))); do
                alive "$R_PID" || break
                sleep 0.1
        done
        if alive "$R_PID"; then
                fail "redis quit: still running ${QUIT_TIMEOUT}s after SHUTDOWN ($out)"
                redis_stop
                return 0
        fi
        ending "$R_PID"
        st=$ENDING
        R_PID=
        if [[ $st == "exited with status 0" ]]; then
                pass "redis quit: $st"
        else
                fail "redis quit: $st"
        fi
}

# ---------------------------------------------------------------------------

T_START=$(now_us)
if ! start_memcrd; then
        fail "memcrd: did not start"
        echo "$PASSED passed, $FAILED failed"
        exit 1
fi
echo "     memcrd: pid $MEMCRD_PID, $CYCLES eager and $CYCLES lazy cycles per case"

for CASE in "${CASES[@]}"; do
        memcrd_alive || break
        t0=$(now_us)
        "case_$CASE"
        printf '     %s: %ss\n' "$CASE" "$(since "$t0")"
done

if ! memcrd_alive; then
        :
elif grep -qE 'ERROR: (Address|Leak|Thread)Sanitizer|runtime error:' "$MEMCRD_LOG"; then
        fail "memcrd: sanitizer report in its log: $(grep -m1 -E 'ERROR: |runtime error:' "$MEMCRD_LOG")"
fi
if [[ $MEMCRD_GONE == 0 ]]; then
        out=$(ctl --no-legend list 2>&1) || true
        if [[ -n $out ]]; then
                fail "memcrd: still knows processes at the end: $out"
        fi
fi

echo "     total: $(since "$T_START")s"
echo "$PASSED passed, $FAILED failed"
[[ $FAILED == 0 ]]
