# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A python3 program for run-programs.sh: a large dict, a large bytearray and
# threads that keep checking random entries of both, while the main thread
# recomputes a digest of everything every few seconds and compares it with
# the one taken at start. Requests on standard input, one answer line each on
# standard output:
#   (at start)  READY <digest>
#   verify      OK <digest> ticks=<n> threads=<n>   (every thread ran since)
#            or FAIL <reason>
#   quit        BYE
#
# usage: program.py ENTRIES THREADS BLOB_MIB [SPAWN_MS]
#
# With SPAWN_MS, one more thread starts /bin/true every SPAWN_MS ms with
# subprocess (vfork() and exec, in python3 on Linux: a child that borrows the
# process's memory until it runs the new program).

import hashlib
import os
import random
import select
import subprocess
import sys
import threading
import time

ENTRIES = int(sys.argv[1])
THREADS = int(sys.argv[2])
BLOB_MIB = int(sys.argv[3])
SPAWN_MS = int(sys.argv[4]) if len(sys.argv) > 4 else 0


def value(i):
    return (i * 2654435761) & 0xFFFFFFFF


def blob_byte(i):
    return (i * 131 + (i >> 12)) & 0xFF


# Keys and values are objects of their own (a str and an int beyond the small
# int cache), the dict a hash table of 2^21 slots for a million entries.
table = {"key-%d" % i: value(i) for i in range(ENTRIES)}
unit = bytes(blob_byte(i) for i in range(1 << 16))
blob = bytearray(unit * (BLOB_MIB * 16))

errors = []
errors_lock = threading.Lock()
ticks = [0] * THREADS
stop = False


def error(text):
    with errors_lock:
        errors.append(text)


def digest():
    h = hashlib.sha256()
    parts = []
    for k, v in table.items():
        parts.append("%s=%d" % (k, v))
        if len(parts) == 65536:
            h.update("\n".join(parts).encode())
            parts = []
    h.update("\n".join(parts).encode())
    h.update(blob)
    return h.hexdigest()


def worker(idx):
    rnd = random.Random(idx)
    local = [rnd.random() for _ in range(10000)]
    local_sum = sum(local)
    while not stop:
        for _ in range(50):
            i = rnd.randrange(ENTRIES)
            v = table.get("key-%d" % i)
            if v != value(i):
                error("thread %d: key-%d is %r, expected %d" % (idx, i, v, value(i)))
        off = rnd.randrange(len(blob) - 4096) & ~0xFFFF
        if blob[off:off + 4096] != unit[:4096]:
            error("thread %d: bytearray differs at offset %d" % (idx, off))
        if sum(local) != local_sum:
            error("thread %d: its own list changed" % idx)
        ticks[idx] += 1
        time.sleep(0.01)


def spawner(idx):
    while not stop:
        r = subprocess.run(["/bin/true"])
        if r.returncode != 0:
            error("spawner: /bin/true returned %d" % r.returncode)
        ticks[idx] += 1
        time.sleep(SPAWN_MS / 1000)


reference = digest()
threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(THREADS)]
if SPAWN_MS:
    ticks.append(0)
    threads.append(threading.Thread(target=spawner, args=(THREADS,), daemon=True))
for t in threads:
    t.start()
print("READY", reference, flush=True)


def verify():
    before = list(ticks)
    d = digest()
    if d != reference:
        return "FAIL digest %s, expected %s" % (d, reference)
    deadline = time.monotonic() + 60
    for i, t in enumerate(threads):
        if not t.is_alive():
            return "FAIL thread %d is gone" % i
        while ticks[i] <= before[i]:
            if time.monotonic() > deadline:
                return "FAIL thread %d made no progress in 60 s" % i
            time.sleep(0.01)
    with errors_lock:
        if errors:
            return "FAIL %d errors; first: %s" % (len(errors), errors[0])
    return "OK %s ticks=%d threads=%d" % (d, sum(ticks), threading.active_count())


last_check = time.monotonic()
pending = b""
while True:
    # The main thread recomputes the digest every 5 s on its own.
    ready, _, _ = select.select([0], [], [], 1.0)
    if time.monotonic() - last_check > 5:
        d = digest()
        if d != reference:
            error("periodic check: digest %s, expected %s" % (d, reference))
        last_check = time.monotonic()
    if not ready:
        continue
    chunk = os.read(0, 4096)
    if not chunk:
        break
    pending += chunk
    while b"\n" in pending:
        line, pending = pending.split(b"\n", 1)
        line = line.strip().decode()
        if line == "verify":
            print(verify(), flush=True)
            last_check = time.monotonic()
        elif line == "quit":
            stop = True
            print("BYE", flush=True)
            sys.exit(0)
        else:
            print("FAIL unknown request %r" % line, flush=True)
