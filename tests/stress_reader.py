"""One reader process of a phase of test_stress.sh.

usage: stress_reader.py MNT SRC MANIFEST MODE SEED SECONDS RESULT

MODE "first" reads this reader's share of the tree (SEED of $READERS)
whole; any other mode does random operations for SECONDS. Every answer
from the mount MNT is compared with the source tree SRC. Writes
"OPS MISMATCHES" to RESULT and the first few mismatches to stderr.
"""
import errno, os, random, stat, sys, time
mnt, src, manifest, mode, seed, seconds, result = sys.argv[1:8]
seed, seconds = int(seed), float(seconds)
files, dirs = [], []
with open(manifest) as f:
    for line in f:
        kind, size, path = line.rstrip("\n").split("\t", 2)
        (files if kind == "f" else dirs).append((path, int(size)))
rng = random.Random(seed)
ops = mismatches = 0
def bad(what):
    global mismatches
    mismatches += 1
    if mismatches <= 5:
        print("mismatch: %s" % what, file=sys.stderr)
def source_range(path, off, n):
    with open(os.path.join(src, path), "rb") as f:
        return os.pread(f.fileno(), n, off)
def read_range(path, size, off, n, how):
    p = os.path.join(mnt, path)
    flags = os.O_RDONLY
    if how == "direct":
        flags |= os.O_DIRECT
    try:
        fd = os.open(p, flags)
    except OSError as e:
        if how == "direct" and e.errno == errno.EINVAL:
            return read_range(path, size, off, n, "drop")
        raise
    try:
        if how == "drop":
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        got, at = [], off
        while at < off + n:
            chunk = os.pread(fd, off + n - at, at)
            if not chunk:
                break
            got.append(chunk)
            at += len(chunk)
        got = b"".join(got)
    finally:
        os.close(fd)
    want = source_range(path, off, n)
    if got != want:
        bad("%s [%d, +%d) %s: %d bytes differ in %d read" % (
            path, off, n, how, sum(a != b for a, b in zip(got, want)) +
            abs(len(got) - len(want)), len(got)))
def read_whole(path, size):
    # Every byte through the daemon (not the page cache), in pieces of
    # random sizes, and the end of the file.
    p = os.path.join(mnt, path)
    try:
        fd = os.open(p, os.O_RDONLY | os.O_DIRECT)
    except OSError as e:
        if e.errno != errno.EINVAL:
            raise
        fd = os.open(p, os.O_RDONLY)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    try:
        got, at = [], 0
        while True:
            chunk = os.pread(fd, rng.randrange(1, 131073), at)
            if not chunk:
                break
            got.append(chunk)
            at += len(chunk)
    finally:
        os.close(fd)
    got = b"".join(got)
    if got != source_range(path, 0, size + 1):
        bad("%s: %d bytes read whole, want %d" % (path, len(got), size))
def check_stat(path, size):
    st = os.stat(os.path.join(mnt, path))
    if not stat.S_ISREG(st.st_mode) or st.st_size != size:
        bad("stat %s: mode %o size %d, want a file of %d" % (
            path, st.st_mode, st.st_size, size))
def stat_errno(path):
    try:
        os.stat(path)
        return 0
    except OSError as e:
        return e.errno
def check_missing(path):
    # The source says what the answer is: ENOENT, or ENOTDIR below a file.
    want = stat_errno(os.path.join(src, path))
    got = stat_errno(os.path.join(mnt, path))
    if got != want:
        bad("stat %s: %s, want %s" % (
            path, os.strerror(got) if got else "found",
            os.strerror(want) if want else "found"))
def check_listing(path):
    got = sorted(os.listdir(os.path.join(mnt, path)))
    want = sorted(os.listdir(os.path.join(src, path)))
    if got != want:
        bad("ls %s: %d names, want %d" % (path or "/", len(got), len(want)))
def one(op):
    global ops
    try:
        op()
    except OSError as e:
        bad("unexpected error: %s" % e)
    ops += 1
if mode == "first":
    # This reader's share of the tree, every file read whole.
    part, parts = seed, int(os.environ["READERS"])
    for i, (path, size) in enumerate(files):
        if i % parts == part:
            one(lambda: check_stat(path, size))
            one(lambda: read_whole(path, size))
    for i, (path, _) in enumerate(dirs):
        if i % parts == part:
            one(lambda: check_listing(path))
else:
    # The random mix, for the warm-up round and the measured one.
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        r = rng.random()
        path, size = rng.choice(files)
        if r < 0.25:
            one(lambda: check_stat(path, size))
        elif r < 0.40:
            d = rng.choice(dirs)[0]
            name = rng.choice(("nope-%d" % rng.randrange(1 << 30),
                               os.path.basename(path) + "~",
                               "%=" + os.path.basename(path),
                               os.path.basename(path) + "/x"))
            one(lambda: check_missing(os.path.join(d, name)))
        elif r < 0.55:
            one(lambda: check_listing(rng.choice(dirs)[0]))
        else:
            off = rng.randrange(0, size + 1)
            n = rng.choice((1, 4096, 65536, 131072, 1048576))
            n = rng.randrange(0, n + 1)
            how = rng.choice(("plain", "direct", "drop"))
            one(lambda: read_range(path, size, off, n, how))
with open(result, "w") as f:
    print(ops, mismatches, file=f)
