#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Refuse a parasite object that calls out (undefined symbols), or contains
# relocations that a flat image cannot honour, or that uses call/ret.
# bad_relocs and bad_insns are the architecture's (grep -E patterns on
# readelf -r and objdump -d; see arch/<cpu family>/meson.build); nm, readelf
# and objdump are the binutils for the parasite's processor.
set -eu
obj=$1 stamp=$2 bad_relocs=$3 bad_insns=$4 nm=$5 readelf=$6 objdump=$7
# Each tool's output first: a tool that fails (binutils for another
# processor, say) fails the build instead of passing an empty check.
undef=$("$nm" -u "$obj")
relocs=$("$readelf" -r "$obj")
disasm=$("$objdump" -d "$obj")
if ! printf '%s\n' "$disasm" | grep -q '>:$'; then
        echo "parasite: $objdump shows no code in $obj (binutils for another processor?)" >&2
        exit 1
fi
if [ -n "$undef" ]; then
        echo "parasite: undefined symbols (libc or compiler helpers pulled in):" >&2
        echo "$undef" >&2
        exit 1
fi
if printf '%s\n' "$relocs" | grep -qE "$bad_relocs"; then
        echo "parasite: absolute, GOT or PLT relocations found:" >&2
        printf '%s\n' "$relocs" >&2
        exit 1
fi
# No call/ret: the code must not push to or pop from a shadow stack.
if printf '%s\n' "$disasm" | grep -qE "$bad_insns"; then
        echo "parasite: call/ret instructions found (helpers must be always_inline):" >&2
        printf '%s\n' "$disasm" | grep -E "$bad_insns" >&2
        exit 1
fi
touch "$stamp"
