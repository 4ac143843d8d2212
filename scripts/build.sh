#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Configure and build memcr: build/ (normal) and, with --asan, build-asan/
# (AddressSanitizer + UndefinedBehaviorSanitizer; the parasite is never
# instrumented), with --fuzz, build-fuzz/ (clang, libFuzzer targets), with
# --aarch64, build-aarch64/ (cross-built for 64-bit ARM: cross/, needs
# scripts/deps.sh --arm64).
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
for arg in "$@"; do
        case $arg in
        --asan) setup build-asan -Db_sanitize=address,undefined -Db_lundef=false ;;
        --fuzz) CC=clang setup build-fuzz -Dfuzz=true -Dtests=false ;;
        --aarch64) setup build-aarch64 --cross-file cross/aarch64-linux-gnu.ini ;;
        *) echo "unknown option $arg" >&2; exit 2 ;;
        esac
done
