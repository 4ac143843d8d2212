#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""One job per file: the structure of the tree, checked.

Fails when
  * a file in src/, parasite/ or bench/ is longer than MAX_FILE_LINES lines;
  * a function in src/ is longer than MAX_FUNCTION_LINES lines (as pmccabe
    counts them: from the line of its name to its closing brace);
  * two object files of one target built from src/ call each other: A uses
    a symbol that B defines and B one that A defines (from the build's
    object files with nm, so it is exact);
unless the offender is in the allowlist. An allowlisted entry that is no
longer an offender fails the check too: delete it from the list.

Usage: check-structure.py SOURCE_ROOT BUILD_ROOT [ALLOWLIST]
"""

import json
import os
import re
import shutil
import subprocess
import sys

MAX_FILE_LINES = 850
MAX_FUNCTION_LINES = 120
FILE_DIRS = ("src", "parasite", "bench")
FUNCTION_DIRS = ("src",)
CYCLE_DIRS = ("src",)
# nm symbol types of definitions: text, data, bss, read-only, weak, common.
DEFINED_TYPES = set("TDBRWVC")


def fail_setup(message):
    print(f"check-structure: {message}", file=sys.stderr)
    sys.exit(2)


def tree_files(root, dirs, suffixes=None):
    for d in dirs:
        for dirpath, dirnames, filenames in os.walk(os.path.join(root, d)):
            dirnames.sort()
            for name in sorted(filenames):
                if suffixes is None or name.endswith(suffixes):
                    path = os.path.join(dirpath, name)
                    yield os.path.relpath(path, root)


def long_files(root):
    """{("file", path): description} for every file over the limit."""
    found = {}
    for path in tree_files(root, FILE_DIRS):
        with open(os.path.join(root, path), "rb") as f:
            n = sum(1 for _ in f)
        if n > MAX_FILE_LINES:
            found[("file", path)] = f"{path}: {n} lines (at most {MAX_FILE_LINES})"
    return found


PMCCABE_LINE = re.compile(r"^\d+\t\d+\t\d+\t(\d+)\t(\d+)\t(.+)\((\d+)\): (.+)$")


def long_functions(root):
    """{("function", path, name): description} for every function over the limit."""
    pmccabe = shutil.which("pmccabe")
    if not pmccabe:
        fail_setup("pmccabe is not installed (Debian package pmccabe; scripts/deps.sh installs it)")
    paths = list(tree_files(root, FUNCTION_DIRS, (".c", ".h")))
    p = subprocess.run([pmccabe] + paths, cwd=root, capture_output=True, text=True)
    if p.returncode != 0 or p.stderr.strip():
        fail_setup(f"pmccabe failed (status {p.returncode}):\n{p.stderr}")
    found = {}
    for line in p.stdout.splitlines():
        m = PMCCABE_LINE.match(line)
        if not m:
            fail_setup(f"cannot read pmccabe's output: {line!r}")
        first, n, path, name = int(m.group(1)), int(m.group(2)), m.group(3), m.group(5)
        if n > MAX_FUNCTION_LINES:
            found[("function", path, name)] = (
                f"{path}:{first}: {name}() is {n} lines long (at most {MAX_FUNCTION_LINES})")
    return found


def nm_symbols(obj):
    """(defined, undefined) global symbols of an object file."""
    p = subprocess.run(["nm", "-P", "--no-sort", obj], capture_output=True, text=True)
    if p.returncode != 0:
        fail_setup(f"nm {obj} failed:\n{p.stderr}")
    defined, undefined = set(), set()
    for line in p.stdout.splitlines():
        fields = line.split()
        if len(fields) < 2:
            continue
        name, kind = fields[0], fields[1]
        if kind == "U":
            undefined.add(name)
        elif kind in DEFINED_TYPES:
            defined.add(name)
    return defined, undefined


def under(path, dirs):
    return any(path == d or path.startswith(d + os.sep) for d in dirs)


def target_objects(root, build):
    """{target: {source: object}} for the objects of src/ in targets of src/."""
    try:
        with open(os.path.join(build, "compile_commands.json")) as f:
            commands = json.load(f)
    except OSError as e:
        fail_setup(f"{build} is not a configured build directory: {e}")
    targets = {}
    for c in commands:
        source = os.path.relpath(os.path.normpath(os.path.join(c["directory"], c["file"])), root)
        output = c["output"]
        if not under(source, CYCLE_DIRS) or not under(output, CYCLE_DIRS):
            continue
        obj = os.path.join(c["directory"], output)
        if not os.path.exists(obj):
            fail_setup(f"{obj} is missing: build the tree first (ninja -C {build})")
        targets.setdefault(os.path.dirname(output), {})[source] = obj
    return targets


def mutual_calls(root, build):
    """{("calls", a, b): description} for objects of one target that call each other."""
    found = {}
    for target, objects in sorted(target_objects(root, build).items()):
        syms = {src: nm_symbols(obj) for src, obj in objects.items()}
        sources = sorted(syms)
        for i, a in enumerate(sources):
            for b in sources[i + 1:]:
                a_uses_b = sorted(syms[a][1] & syms[b][0])
                b_uses_a = sorted(syms[b][1] & syms[a][0])
                if not a_uses_b or not b_uses_a:
                    continue
                key = ("calls", a, b)
                if key not in found:
                    found[key] = (
                        f"{a} and {b} call each other (in {target}):\n"
                        f"      {a} uses {', '.join(a_uses_b)}\n"
                        f"      {b} uses {', '.join(b_uses_a)}")
    return found


def read_allowlist(path):
    entries = {}
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.split("#", 1)[0].split()
            if not line:
                continue
            kind, args = line[0], line[1:]
            if (kind, len(args)) == ("calls", 2):
                args = sorted(args)
            elif (kind, len(args)) not in (("file", 1), ("function", 2)):
                fail_setup(f"{path}:{n}: expected 'file PATH', 'function PATH NAME' "
                           f"or 'calls PATH PATH', got: {' '.join(line)}")
            entries[(kind, *args)] = n
    return entries


def main(argv):
    if len(argv) not in (3, 4):
        fail_setup("usage: check-structure.py SOURCE_ROOT BUILD_ROOT [ALLOWLIST]")
    root, build = os.path.abspath(argv[1]), os.path.abspath(argv[2])
    allowlist = argv[3] if len(argv) == 4 else os.path.join(os.path.dirname(__file__), "allowlist")
    allowed = read_allowlist(allowlist)

    offenders = {}
    offenders.update(long_files(root))
    offenders.update(long_functions(root))
    offenders.update(mutual_calls(root, build))

    new = [k for k in sorted(offenders) if k not in allowed]
    known = [k for k in sorted(offenders) if k in allowed]
    fixed = [k for k in sorted(allowed, key=allowed.get) if k not in offenders]

    for k in new:
        print(f"FAIL {offenders[k]}")
    for k in fixed:
        print(f"FAIL {os.path.relpath(allowlist, root)}:{allowed[k]}: '{' '.join(k)}' is no longer "
              f"an offender: delete it from the list")
    for k in known:
        print(f"allowed {offenders[k]}")
    print(f"structure: new offenders: {len(new)}; stale allowlist entries: {len(fixed)}; "
          f"allowlisted offenders left: {len(known)}")
    return 1 if new or fixed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
