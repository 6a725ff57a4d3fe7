"""The same random operations on two roots side by side, compared.

usage: workload.py ROOT_A ROOT_B SEED OPS [--no-unlink-open]
       workload.py --make-tree ROOT SEED

Each operation runs on ROOT_A, then on ROOT_B, and its outcome (the bytes
read, the size or listing seen, or the errno of a failure) must be the
same on both. Choices depend only on the seed and on ROOT_B's state, so a
run is reproducible. At the end the two trees are compared in full. Prints
the first 20 mismatches and a summary; exits 1 on any mismatch.
--make-tree fills ROOT with a random tree of the same names.
"""
import os
import random
import sys

NAMES = ["a", "b", "c", "dd", "e e"]

if sys.argv[1] == "--make-tree":
    root, rng = sys.argv[2], random.Random(int(sys.argv[3]))
    for _ in range(150):
        p = "/".join(rng.choice(NAMES) for _ in range(rng.randint(1, 4)))
        try:
            os.makedirs(os.path.dirname(os.path.join(root, p)), exist_ok=True)
            with open(os.path.join(root, p), "wb") as f:
                f.write(rng.randbytes(rng.randint(0, 30000)))
        except OSError:
            pass  # a file where a directory should be, or the reverse
    sys.exit(0)

root_a, root_b = sys.argv[1], sys.argv[2]
seed, nops = int(sys.argv[3]), int(sys.argv[4])
unlink_open = "--no-unlink-open" not in sys.argv[5:]
rng = random.Random(seed)
mismatches = 0
counts = {"ok": 0, "err": 0}
cache = None  # ROOT_B's (directories, files) until the tree changes

def j(root, p):
    return root + "/" + p if p else root

def walk():
    global cache
    if cache is None:
        ds, fs = [], []

        def scan(rel):
            with os.scandir(j(root_b, rel)) as it:
                for e in it:
                    p = rel + "/" + e.name if rel else e.name
                    if e.is_dir(follow_symlinks=False):
                        ds.append(p)
                        scan(p)
                    else:
                        fs.append(p)
        scan("")
        cache = (sorted(ds), sorted(fs))
    return cache

def rpath():
    """Any path of 1 to 3 names: its parents may well not exist."""
    return "/".join(rng.choice(NAMES) for _ in range(rng.randint(1, 3)))

def pick():
    """Mostly an existing file or directory, sometimes any path."""
    ds, fs = walk()
    if (ds or fs) and rng.random() < 0.75:
        return rng.choice(sorted(ds + fs))
    return rpath()

def pick_new():
    """Mostly a name in an existing directory, sometimes any path."""
    if rng.random() < 0.2:
        return rpath()
    d = rng.choice([""] + walk()[0])
    return (d + "/" if d else "") + rng.choice(NAMES)

def data(max_len):
    return rng.randbytes(rng.randint(0, max_len))

def outcome(fn, *args):
    try:
        return ("ok", fn(*args))
    except OSError as e:
        return ("err", e.errno)

def short(r):
    s = repr(r)
    return s if len(s) < 100 else s[:97] + "..."

def report(n, what, ra, rb):
    global mismatches
    mismatches += 1
    if mismatches <= 20:
        print(f"op {n}: {what}: {short(ra)} in {root_a}, {short(rb)} in {root_b}")

def both(n, what, fn, *args):
    """Runs fn(root, *args) on each root; returns both outcomes."""
    ra = outcome(fn, root_a, *args)
    rb = outcome(fn, root_b, *args)
    counts[rb[0]] += 1
    if ra != rb:
        report(n, what, ra, rb)
    return ra, rb

def do_write(root, p, off, d):
    fd = os.open(j(root, p), os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        return os.pwrite(fd, d, off)
    finally:
        os.close(fd)

def do_append(root, p, d):
    fd = os.open(j(root, p), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        return os.write(fd, d)
    finally:
        os.close(fd)

def do_read(root, p):
    with open(j(root, p), "rb") as f:
        return f.read()

def do_stat(root, p):
    st = os.stat(j(root, p))
    return "dir" if os.path.isdir(j(root, p)) else ("file", st.st_size)

def op(n):
    """One operation; returns whether it may have changed the tree."""
    r = rng.random()
    if r < 0.20:
        p = pick() if rng.random() < 0.5 else pick_new()
        off, d = rng.randint(0, 40000), data(20000)
        both(n, f"write {p} at {off} ({len(d)} bytes)", do_write, p, off, d)
    elif r < 0.30:
        p = pick() if rng.random() < 0.5 else pick_new()
        d = data(10000)
        both(n, f"append {p} ({len(d)} bytes)", do_append, p, d)
    elif r < 0.38:
        p, size = pick(), rng.randint(0, 50000)
        both(n, f"truncate {p} to {size}",
             lambda root, p, s: os.truncate(j(root, p), s), p, size)
    elif r < 0.52:
        p = pick()
        q = pick() if rng.random() < 0.5 else pick_new()
        both(n, f"rename {p} to {q}",
             lambda root, p, q: os.rename(j(root, p), j(root, q)), p, q)
    elif r < 0.58:
        p = pick()
        both(n, f"unlink {p}", lambda root, p: os.unlink(j(root, p)), p)
    elif r < 0.66:
        p = pick_new()
        both(n, f"mkdir {p}", lambda root, p: os.mkdir(j(root, p)), p)
    elif r < 0.70:
        p = pick()
        both(n, f"rmdir {p}", lambda root, p: os.rmdir(j(root, p)), p)
    elif r < 0.90:
        s, p = rng.random(), pick()
        if s < 0.5:
            both(n, f"read {p}", do_read, p)
        elif s < 0.8:
            both(n, f"stat {p}", do_stat, p)
        else:
            p = "" if rng.random() < 0.2 else p
            both(n, f"list {p or '.'}",
                 lambda root, p: sorted(os.listdir(j(root, p))), p)
        return False
    else:
        session(n)
    return True

def session(n):
    """One file held open on both roots: writes read back, ftruncate,
    fstat, fsync, and perhaps a rename or an unlink of it while open."""
    p = pick() if rng.random() < 0.5 else pick_new()
    opened = [outcome(lambda root: os.open(j(root, p), os.O_RDWR | os.O_CREAT,
                                           0o644), root)
              for root in (root_a, root_b)]
    counts[opened[1][0]] += 1
    if opened[0][0] != opened[1][0] or (opened[1][0] == "err" and
                                        opened[0] != opened[1]):
        report(n, f"open {p} O_RDWR|O_CREAT", opened[0], opened[1])
    if opened[0][0] != "ok" or opened[1][0] != "ok":
        for r in opened:
            if r[0] == "ok":
                os.close(r[1])
        return
    fds = [opened[0][1], opened[1][1]]
    gone = False
    for _ in range(rng.randint(2, 7)):
        s = rng.random()
        if s < 0.3:
            off, d = rng.randint(0, 30000), data(8000)
            what = f"pwrite {len(d)} bytes at {off}"
            fn = lambda fd, root: os.pwrite(fd, d, off)
        elif s < 0.55:
            off, ln = rng.randint(0, 30000), rng.randint(0, 40000)
            what = f"pread {ln} bytes at {off}"
            fn = lambda fd, root: os.pread(fd, ln, off)
        elif s < 0.7:
            size = rng.randint(0, 40000)
            what, fn = f"ftruncate to {size}", lambda fd, root: os.ftruncate(fd, size)
        elif s < 0.8:
            what, fn = "fstat", lambda fd, root: os.fstat(fd).st_size
        elif s < 0.84:
            what, fn = "fsync", lambda fd, root: os.fsync(fd)
        elif s < 0.92 and not gone:
            q = pick_new()
            what = f"rename it to {q}"
            fn = lambda fd, root: os.rename(j(root, p), j(root, q))
        elif unlink_open and not gone:
            what, fn = "unlink it", lambda fd, root: os.unlink(j(root, p))
        else:
            what, fn = "fstat", lambda fd, root: os.fstat(fd).st_size
        res = [outcome(fn, fd, root) for fd, root in zip(fds, (root_a, root_b))]
        counts[res[1][0]] += 1
        if res[0] != res[1]:
            report(n, f"open {p}: {what}", res[0], res[1])
        elif res[1][0] == "ok" and what.startswith("rename"):
            p = q
        elif res[1][0] == "ok" and what.startswith("unlink"):
            gone = True
    for fd, root in zip(fds, (root_a, root_b)):
        r = outcome(os.close, fd)
        if r[0] != "ok":
            report(n, f"close {p}", r if root == root_a else "ok",
                   r if root == root_b else "ok")

for n in range(nops):
    if op(n):
        cache = None

def tree(root):
    """Every path under root: "dir" or the file's bytes."""
    out = {}

    def scan(rel):
        with os.scandir(j(root, rel)) as it:
            for e in it:
                p = rel + "/" + e.name if rel else e.name
                if e.is_dir(follow_symlinks=False):
                    out[p] = "dir"
                    scan(p)
                else:
                    with open(j(root, p), "rb") as f:
                        out[p] = f.read()
    scan("")
    return out

try:
    ta = tree(root_a)
except OSError as e:
    ta = {}
    report("end", f"reading {root_a}", ("err", e.errno), "ok")
tb = tree(root_b)
for p in sorted(set(ta) | set(tb)):
    if ta.get(p) != tb.get(p):
        report("end", f"the trees at {p}", ta.get(p, "missing"),
               tb.get(p, "missing"))
files = sum(1 for v in tb.values() if v != "dir")
print(f"{nops} operations: {counts['ok']} steps succeeded and {counts['err']} "
      f"failed alike; {files} files at the end; {mismatches} mismatches")
sys.exit(1 if mismatches else 0)
