#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Configure and build memcr: build/ (normal) and, with --asan, build-asan/
# (AddressSanitizer + UndefinedBehaviorSanitizer; the parasite is never
# instrumented).
set -euo pipefail
cd "$(dirname "$0")/.."

setup() {
        local dir=$1; shift
        if [ ! -f "$dir/build.ninja" ]; then
                meson setup "$dir" "$@"
        fi
        ninja -C "$dir"
}

setup build
if [ "${1:-}" = --asan ]; then
        setup build-asan -Db_sanitize=address,undefined -Db_lundef=false
fi
