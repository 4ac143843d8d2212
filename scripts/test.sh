#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Set up, build and run the whole test suite: the normal build, the
# sanitizer build, a bounded fuzzing run and the cross build for 64-bit ARM,
# whose checks run on Debian's arm64 kernel in an emulated machine. Needs
# root (ptrace of other users' processes, other users via setpriv, a booted
# systemd in private namespaces).
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/deps.sh --arm64
./scripts/build.sh --asan --fuzz --aarch64

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

status=0
echo "== tests (build/)"
meson test -C build --print-errorlogs --num-processes 1 || status=1
echo "== tests under ASan+UBSan (build-asan/)"
meson test -C build-asan --print-errorlogs --num-processes 1 || status=1
echo "== fuzzing the protocol decoder (build-fuzz/, clang + libFuzzer)"
meson test -C build-fuzz --suite fuzz --print-errorlogs || status=1
echo "== on Debian's arm64 kernel, emulated (build-aarch64/, cross-built)"
meson test -C build-aarch64 --suite kernel --print-errorlogs --num-processes 1 || status=1

if [ $status = 0 ]; then echo "ALL TESTS PASSED"; else echo "SOME TESTS FAILED"; fi
exit $status
