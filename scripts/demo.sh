#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Set up, build and show the main job: a process with 512 MiB of data is
# checkpointed (its memory goes to an encrypted, compressed dump and leaves
# RAM), held frozen for two seconds, restored, and checks every byte.
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
