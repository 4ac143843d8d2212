#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# check-structure.py against a small tree made here, with each kind of
# offender: it must fail on every one that is not allowlisted, pass when all
# are, and fail again on an allowlisted entry that is no longer an offender.
set -euo pipefail

check=$(dirname "$(readlink -f "$0")")/check-structure.py
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"

fail() {
        echo "FAIL: $*" >&2
        exit 1
}

# Runs the check; expects status $1 and each further argument in its output.
expect() {
        local want=$1 status=0
        shift
        "$check" "$tmp/tree" "$tmp/build" "$tmp/allowlist" >out 2>&1 || status=$?
        cat out
        [ "$status" = "$want" ] || fail "status $status, expected $want"
        for s in "$@"; do
                grep -qF -- "$s" out || fail "no '$s' in the output"
        done
}

mkdir -p tree/src/lib tree/bench build/src/lib/liblib.a.p
{
        echo 'int b(void);'
        echo 'int a(void) { return 1; }'
        echo 'int a_calls_b(void) { return b(); }'
} >tree/src/lib/a.c
{
        echo 'int a(void);'
        echo 'int b(void) { return 2; }'
        echo 'int long_one(int x) {'
        for i in $(seq 1 125); do echo "        x += $i;"; done
        echo '        return x + a();'
        echo '}'
} >tree/src/lib/b.c
seq 1 851 >tree/bench/long.txt
seq 1 850 >tree/bench/just-right.txt
for f in a b; do
        cc -c -o "build/src/lib/liblib.a.p/$f.c.o" "tree/src/lib/$f.c"
done
cat >build/compile_commands.json <<EOF
[
  { "directory": "$tmp/build", "file": "../tree/src/lib/a.c", "output": "src/lib/liblib.a.p/a.c.o" },
  { "directory": "$tmp/build", "file": "../tree/src/lib/b.c", "output": "src/lib/liblib.a.p/b.c.o" }
]
EOF

echo "== nothing allowlisted: three new offenders"
: >allowlist
expect 1 "bench/long.txt: 851 lines" "long_one() is 128 lines long" \
        "src/lib/a.c and src/lib/b.c call each other" "src/lib/a.c uses b" "src/lib/b.c uses a" \
        "new offenders: 3;"
grep -q just-right out && fail "a file of 850 lines is not an offender"
grep -q "a_calls_b()\|a() is\|b() is" out && fail "short functions are not offenders"

echo "== all allowlisted"
cat >allowlist <<EOF
file bench/long.txt
function src/lib/b.c long_one
calls src/lib/b.c src/lib/a.c  # either order
EOF
expect 0 "new offenders: 0; stale allowlist entries: 0; allowlisted offenders left: 3"

echo "== one fixed but still allowlisted"
seq 1 10 >tree/bench/long.txt
expect 1 "allowlist:1: 'file bench/long.txt' is no longer an offender" "stale allowlist entries: 1;"

echo "== a malformed allowlist"
echo "function src/lib/b.c" >allowlist
expect 2 "expected 'file PATH'"

echo "== objects not built"
: >allowlist
rm build/src/lib/liblib.a.p/b.c.o
expect 2 "build the tree first"

echo "check-structure.py: all cases behave"
