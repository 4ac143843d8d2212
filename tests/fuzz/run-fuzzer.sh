#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# run-fuzzer.sh FUZZER SEED_CORPUS SECONDS: fuzz for a bounded time; any
# crash, leak or sanitizer finding fails (libFuzzer exits non-zero).
set -eu
fuzzer=$1 seeds=$2 seconds=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$seeds"/* "$work"/
cd "$work"
exec "$fuzzer" -max_total_time="$seconds" -max_len=70000 -timeout=10 -rss_limit_mb=1024 \
        -print_final_stats=1 "$work"
