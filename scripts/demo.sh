#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Set up, build and show the main job: a process with 512 MiB of data is
# checkpointed (its memory goes to an encrypted, compressed dump and leaves
# RAM), held frozen for two seconds, restored, and checks every byte. Then the
# same through the service: a private memcrd, memcrctl checkpoint, list, and
# a lazy restore (the process runs again at once, its memory streams back).
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/deps.sh
./scripts/build.sh

target=build/tests/targets/memcr-test-target
cycle=build/src/tools/memcr-cycle
dir=$(mktemp -d /var/tmp/memcr-demo.XXXXXX)
fifo=$dir/cmd
mkfifo "$fifo"
trap 'rm -rf "$dir"; [ -n "${pid:-}" ] && kill -9 "$pid" 2>/dev/null || true' EXIT

# The target keeps reading commands from the fifo; exec 3<> keeps it open.
exec 3<>"$fifo"
$target --heap=256 --mmap=256 --threads=4 <&3 >"$dir/out" &
pid=$!
until grep -q READY "$dir/out" 2>/dev/null; do sleep 0.1; done
rss() { awk '/^VmRSS/ {print $2 " kB"}' /proc/$pid/status; }

echo "target $pid: $(cat "$dir/out")"
echo "RSS before checkpoint: $(rss)"
$cycle --dump-dir="$dir" --codec=lz4 --hold=2 "$pid" | while read -r line; do
        echo "$line"
        case "$line" in checkpoint*) echo "RSS while frozen:      $(rss)";; esac
done
echo "RSS after restore:     $(rss)"
echo verify >&3
wait "$pid" && res=0 || res=$?
pid=
cat "$dir/out" | tail -1
[ $res = 0 ] && echo "every byte verified after restore" || { echo "VERIFICATION FAILED ($res)"; exit 1; }

echo
echo "== the same through memcrd and memcrctl, restored lazily"
mkdir -m 0700 "$dir/run" "$dir/state"
sock=$dir/memcr.sock
build/src/daemon/memcrd --listen="$sock" --runtime-dir="$dir/run" --state-dir="$dir/state" \
        --watchers=fork --watcher=build/src/watch/memcr-watch --polkit=no --log-level=warning &
daemon=$!
trap 'rm -rf "$dir"; kill "$daemon" 2>/dev/null || true; [ -n "${pid:-}" ] && kill -9 "$pid" 2>/dev/null || true' EXIT
until [ -S "$sock" ]; do sleep 0.1; done
ctl() { build/src/ctl/memcrctl --socket="$sock" "$@"; }

exec 3<>"$fifo"
: >"$dir/out"
$target --heap=256 --mmap=256 --threads=4 <&3 >"$dir/out" &
pid=$!
until grep -q READY "$dir/out" 2>/dev/null; do sleep 0.1; done
echo "RSS before checkpoint: $(rss)"
ctl checkpoint --compress=lz4 "$pid"
echo "RSS while frozen:      $(rss)"
ctl list
sleep 1
ctl restore --lazy "$pid"
echo "RSS right after the lazy restore: $(rss) (it runs; its memory streams back)"
ctl status "$pid" 2>/dev/null || true
while ctl --quiet status "$pid" 2>/dev/null; do sleep 0.1; done
echo "RSS once fully back:   $(rss)"
echo verify >&3
wait "$pid" && res=0 || res=$?
pid=
tail -1 "$dir/out"
[ $res = 0 ] && echo "every byte verified after the lazy restore" || { echo "VERIFICATION FAILED ($res)"; exit 1; }
