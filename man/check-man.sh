#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Render a man page and fail on any warning from man/groff.
# Exit status 77 (skipped) if neither man nor groff is installed.

set -eu

page="$1"
[ -r "$page" ] || { echo "cannot read $page" >&2; exit 1; }

err=$(mktemp)
trap 'rm -f "$err"' EXIT

if command -v man >/dev/null 2>&1; then
        # man runs the preprocessors the page asks for ('\" t: tbl).
        if ! man --warnings -E UTF-8 -l -Tutf8 -Z "$page" >/dev/null 2>"$err"; then
                cat "$err" >&2
                echo "$page: man failed" >&2
                exit 1
        fi
elif command -v groff >/dev/null 2>&1; then
        if ! groff -t -man -ww -z -Tutf8 "$page" 2>"$err"; then
                cat "$err" >&2
                echo "$page: groff failed" >&2
                exit 1
        fi
else
        echo "neither man nor groff is installed, skipping" >&2
        exit 77
fi

if [ -s "$err" ]; then
        cat "$err" >&2
        echo "$page: warnings" >&2
        exit 1
fi
exit 0
