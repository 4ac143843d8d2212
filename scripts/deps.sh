#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Install what building, testing and packaging memcr needs on Debian 12.
# Safe to run again: does nothing when everything is present.
set -euo pipefail

PACKAGES=(
        # build
        gcc binutils meson ninja-build pkg-config python3
        libsystemd-dev libcap-dev libselinux1-dev libssl-dev liblz4-dev libzstd-dev
        # tests
        libcriterion-dev clang libclang-rt-14-dev util-linux procps
        # the structure check (tests/structure)
        pmccabe
        # tests under a booted systemd (tests/systemd)
        systemd dbus polkitd bsdutils acl man-db
        # tests on Debian's own kernel in a virtual machine (tests/vm)
        qemu-system-x86 busybox-static cpio
        # Debian packaging
        build-essential debhelper dpkg-dev fakeroot lintian
        # real programs (tests/programs)
        python3 perl nodejs redis-server redis-tools socat libc6-dev
        default-jre-headless golang-go
)

missing=()
for p in "${PACKAGES[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
                missing+=("$p")
        fi
done

if [ ${#missing[@]} -gt 0 ]; then
        if [ "$(id -u)" != 0 ]; then
                echo "missing packages (run as root to install): ${missing[*]}" >&2
                exit 1
        fi
        echo "installing: ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
