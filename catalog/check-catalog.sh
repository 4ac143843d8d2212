#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# check-catalog.sh CATALOG IDS_HEADER
#
# Every MESSAGE_ID defined in IDS_HEADER has exactly one entry in CATALOG,
# every entry is for one of them, and every entry has a Subject: and a
# Defined-By: header and some text. If journalctl is there, the catalog must
# also compile into a catalog database without complaint.

set -eu

catalog="$1"
header="$2"
fail=0

err() {
        echo "$catalog: $*" >&2
        fail=1
}

[ -r "$catalog" ] || { echo "cannot read $catalog" >&2; exit 1; }
[ -r "$header" ] || { echo "cannot read $header" >&2; exit 1; }

ids=$(sed -n 's/^#define[[:space:]]\{1,\}MEMCR_MESSAGE_[A-Z0-9_]\{1,\}[[:space:]]\{1,\}"\([0-9a-f]\{32\}\)".*/\1/p' "$header")
[ -n "$ids" ] || { echo "$header: no MESSAGE_IDs found" >&2; exit 1; }

# The header must not define an ID twice either.
dup=$(printf '%s\n' $ids | sort | uniq -d)
[ -z "$dup" ] || { echo "$header: defined more than once: $dup" >&2; exit 1; }

entries=$(sed -n 's/^-- \(.*\)$/\1/p' "$catalog")

for e in $entries; do
        case "$e" in
        *[!0-9a-f]*) err "entry '$e' is not a MESSAGE_ID (32 lower-case hex digits)"; continue ;;
        esac
        [ ${#e} -eq 32 ] || err "entry '$e' is not a MESSAGE_ID (32 lower-case hex digits)"
        printf '%s\n' $ids | grep -qx "$e" || err "entry $e is not defined in $header"
done

dup=$(printf '%s\n' $entries | sort | uniq -d)
[ -z "$dup" ] || err "more than one entry for: $dup"

for id in $ids; do
        printf '%s\n' $entries | grep -qx "$id" || err "no entry for $id"
done

# Per entry: headers up to the first empty line, then text.
awk -v file="$catalog" '
function finish() {
        if (id == "")
                return
        if (!subject)
                { printf "%s: entry %s has no Subject:\n", file, id > "/dev/stderr"; bad = 1 }
        if (!defined)
                { printf "%s: entry %s has no Defined-By:\n", file, id > "/dev/stderr"; bad = 1 }
        if (!text)
                { printf "%s: entry %s has no text\n", file, id > "/dev/stderr"; bad = 1 }
}
/^-- / { finish(); id = $2; in_headers = 1; subject = defined = text = 0; next }
id == "" { next }
in_headers && /^$/ { in_headers = 0; next }
in_headers && /^Subject: ./ { subject = 1; next }
in_headers && /^Defined-By: ./ { defined = 1; next }
in_headers && /^[A-Za-z-]+: / { next }
in_headers { printf "%s: entry %s: not a header line: %s\n", file, id, $0 > "/dev/stderr"; bad = 1; next }
/[^[:space:]]/ { text = 1 }
END { finish(); exit bad }
' "$catalog" || fail=1

[ "$fail" -eq 0 ] || exit 1

# Let journalctl compile it, if it is installed.
if command -v journalctl >/dev/null 2>&1; then
        root=$(mktemp -d)
        trap 'rm -rf "$root"' EXIT
        mkdir -p "$root/usr/lib/systemd/catalog"
        cp "$catalog" "$root/usr/lib/systemd/catalog/memcr.catalog"
        if ! journalctl --root="$root" --update-catalog >"$root/out" 2>&1; then
                cat "$root/out" >&2
                echo "$catalog: journalctl --update-catalog failed" >&2
                exit 1
        fi
        if [ -s "$root/out" ]; then
                cat "$root/out" >&2
                echo "$catalog: journalctl --update-catalog complained" >&2
                exit 1
        fi
        listed=$(journalctl --root="$root" --list-catalog 2>/dev/null | awk '{ print $1 }') || listed=
        if [ -n "$listed" ]; then
                for id in $ids; do
                        printf '%s\n' $listed | grep -qx "$id" ||
                                { echo "$catalog: journalctl did not take the entry for $id" >&2; exit 1; }
                done
        fi
fi
exit 0
