"""Writes the source tree of test_stress.sh.

usage: stress_tree.py ROOT COUNT

Nested directories of COUNT small files of 0-64 KiB (sizes biased towards
0 and page boundaries), a few of 1-4 MiB, and neighbours that sort between
a directory and its entries ("x" "x-1" "x.y" "x/..."). No directory is
empty: a table has no empty directories. Always the same tree.
"""
import os, random, sys
root, count = sys.argv[1], int(sys.argv[2])
rng = random.Random(20240611)
def size():
    r = rng.random()
    if r < 0.05:
        return 0
    if r < 0.25:
        return rng.choice((1, 4095, 4096, 4097, 65535, 65536))
    return rng.randrange(0, 65537)
def write(path, n):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(rng.randbytes(n))
dirs = [""]
for a in range(12):
    dirs.append("d%02d" % a)
    for b in range(rng.randrange(1, 6)):
        dirs.append("d%02d/s%d" % (a, b))
        if rng.random() < 0.3:
            dirs.append("d%02d/s%d/deep/er/est" % (a, b))
for i in range(count):
    d = dirs[i % len(dirs)]
    write(os.path.join(root, d, "f%05d%s" % (i, ".bin" if i % 7 == 0 else "")),
          size())
for name in ("x/inside", "x-1", "x.y/z", "x0", "with space/a b"):
    write(os.path.join(root, name), size())
for i, mib in enumerate((1, 2, 3, 4)):
    write(os.path.join(root, "big", "big%d.bin" % i),
          mib * 1048576 - rng.randrange(0, 4096))
