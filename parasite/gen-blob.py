#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Turn the flat parasite image into a C header for the host side."""
import sys

def main():
    src, dst = sys.argv[1], sys.argv[2]
    data = open(src, 'rb').read()
    if not data:
        sys.exit('empty parasite image')
    lines = ['/* Generated from the parasite image; do not edit. */',
             '#pragma once',
             '#include <stddef.h>',
             '',
             '#define PARASITE_BLOB_ENTRY 0',
             'static const unsigned char parasite_blob[] = {']
    for i in range(0, len(data), 12):
        lines.append('        ' + ' '.join('0x%02x,' % b for b in data[i:i + 12]))
    lines.append('};')
    lines.append('')
    with open(dst, 'w') as f:
        f.write('\n'.join(lines))

if __name__ == '__main__':
    main()
