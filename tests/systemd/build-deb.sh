#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Build memcr's Debian packages from a copy of the source tree (so nothing
# is written next to the tree or into it): build-deb.sh SOURCE_DIR OUT_DIR.
# The .deb, .buildinfo and .changes files end up in OUT_DIR; the build log
# is OUT_DIR/build.log.
set -euo pipefail

src=$(realpath "$1")
out=$(realpath "$2")
work=$(mktemp -d "$out/build.XXXXXX")
trap 'rm -rf "$work"' EXIT

# Everything but version control and build directories (any directory
# meson has configured).
excludes=(--exclude=./.git)
while IFS= read -r d; do
        excludes+=("--exclude=./${d#"$src"/}")
done < <(find "$src" -mindepth 2 -maxdepth 3 -name meson-private -printf '%h\n')
mkdir "$work/memcr"
tar -C "$src" "${excludes[@]}" -cf - . | tar -C "$work/memcr" -xf -
rm -rf "$work/memcr/debian/.debhelper" "$work/memcr/obj-"*

cd "$work/memcr"
DEB_BUILD_OPTIONS="nocheck parallel=$(nproc) ${DEB_BUILD_OPTIONS:-}"
export DEB_BUILD_OPTIONS
if ! dpkg-buildpackage -us -uc -b >"$out/build.log" 2>&1; then
        tail -n 40 "$out/build.log" >&2
        exit 1
fi
mv "$work"/*.deb "$work"/*.buildinfo "$work"/*.changes "$out"/
