#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Install what building, testing and packaging memcr needs on Debian 12.
# Safe to run again: does nothing when everything is present.
#
#   deps.sh [--arm64]
#
# --arm64 also sets up the cross build for arm64 (cross/aarch64-linux-gnu.ini)
# and the tests in an emulated arm64 machine (tests/vm/run-in-vm.sh --arch
# aarch64): the arm64 architecture is added to dpkg, the cross compiler, the
# arm64 libraries and qemu-system-aarch64 are installed, and the arm64
# packages of Criterion that cannot be installed beside the host's (libnanomsg5
# is not Multi-Arch: same) are fetched with apt-get download and unpacked into
# $MEMCR_ARM64_SYSROOT (default /var/cache/memcr-tests/arm64-sysroot, the
# path the cross file names), never installed.
set -euo pipefail

arm64=0
case ${1:-} in
"") ;;
--arm64) arm64=1 ;;
*) echo "usage: $0 [--arm64]" >&2; exit 2 ;;
esac

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

ARM64_PACKAGES=(
        # the cross compiler and binutils (aarch64-linux-gnu-*)
        gcc-aarch64-linux-gnu binutils-aarch64-linux-gnu
        # the libraries, and aarch64-linux-gnu-pkg-config
        libc6-dev:arm64 pkgconf:arm64
        libsystemd-dev:arm64 libcap-dev:arm64 libselinux1-dev:arm64 libssl-dev:arm64
        liblz4-dev:arm64 libzstd-dev:arm64
        # what Criterion needs that installs beside the host's: its libraries
        # and the pkg-config files its own names (Requires.private)
        libffi-dev:arm64 libgit2-1.5:arm64 libboxfort-dev:arm64 libpcre2-dev:arm64
        zlib1g-dev:arm64
        # the emulated arm64 machine (tests/vm)
        qemu-system-arm busybox-static cpio
)

# Criterion's arm64 packages that cannot be installed here, unpacked into
# the sysroot: the library, its pkg-config file and the libraries and
# pkg-config files it names that are not Multi-Arch: same.
SYSROOT_PACKAGES=(libcriterion3 libcriterion-dev libnanomsg5 libnanomsg-dev libgit2-dev)
sysroot=${MEMCR_ARM64_SYSROOT:-/var/cache/memcr-tests/arm64-sysroot}

installed() {
        dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

need_root() {
        if [ "$(id -u)" != 0 ]; then
                echo "$1 (run as root to install)" >&2
                exit 1
        fi
}

missing=()
for p in "${PACKAGES[@]}"; do
        installed "$p" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
        need_root "missing packages: ${missing[*]}"
        echo "installing: ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

[ $arm64 = 1 ] || exit 0

# --- arm64 -------------------------------------------------------------------

updated=0
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
        need_root "the arm64 architecture is not added to dpkg"
        echo "adding the arm64 architecture"
        dpkg --add-architecture arm64
        apt-get update -qq
        updated=1
fi

missing=()
for p in "${ARM64_PACKAGES[@]}"; do
        installed "$p" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
        need_root "missing packages: ${missing[*]}"
        echo "installing: ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        [ $updated = 1 ] || apt-get update -qq
        updated=1
        # --no-remove: an arm64 package that does not install beside the
        # host's must fail here, not replace it.
        apt-get install -y -qq --no-install-recommends --no-remove "${missing[@]}" >/dev/null
fi

# The sysroot is complete when it holds every package (its list of what was
# unpacked, written last) and the library.
complete=1
for p in "${SYSROOT_PACKAGES[@]}"; do
        grep -q "^$p " "$sysroot/.packages" 2>/dev/null || complete=0
done
[ -e "$sysroot/usr/lib/aarch64-linux-gnu/libcriterion.so" ] || complete=0
[ $complete = 0 ] || exit 0

need_root "$sysroot is missing or incomplete"
echo "fetching into $sysroot: ${SYSROOT_PACKAGES[*]}"
mkdir -p "$(dirname "$sysroot")"
tmp=$(mktemp -d "$(dirname "$sysroot")/.sysroot.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# apt-get download drops root to _apt for the transfer.
chown _apt "$tmp" 2>/dev/null || true
[ $updated = 1 ] || apt-get update -qq
if ! (cd "$tmp" && apt-get download -q "${SYSROOT_PACKAGES[@]/%/:arm64}" >"$tmp/apt.log" 2>&1); then
        cat "$tmp/apt.log" >&2
        exit 1
fi
mkdir "$tmp/root"
for deb in "$tmp"/*.deb; do
        dpkg -x "$deb" "$tmp/root"
        # shellcheck disable=SC2016 # dpkg-deb expands them
        dpkg-deb -W --showformat='${Package} ${Version}\n' "$deb" >>"$tmp/root/.packages"
done
chmod 755 "$tmp/root"
rm -rf "$sysroot"
mv "$tmp/root" "$sysroot"
