"""Makes a tree of small files for the mount tests.

usage: make_tree.py ROOT DIRS FILES_PER_DIR MAX_SIZE SEED

ROOT/dNN/fNNN, each file of 0 to MAX_SIZE random bytes; the same SEED
gives the same tree.
"""
import os
import random
import sys

root, dirs, files, max_size, seed = sys.argv[1], *map(int, sys.argv[2:6])
rng = random.Random(seed)
for d in range(dirs):
    path = os.path.join(root, "d%02d" % d)
    os.makedirs(path, exist_ok=True)
    for f in range(files):
        with open(os.path.join(path, "f%03d" % f), "wb") as out:
            out.write(rng.randbytes(rng.randint(0, max_size)))
