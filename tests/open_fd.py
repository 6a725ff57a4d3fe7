"""A file held open through a sequence of steps, each step checked.

usage: open_fd.py CASE PATH WANT

CASE is readback, ftruncate, rename or unlink. Does CASE on PATH (created
or truncated), checking each step's outcome against a model of the bytes;
writes the bytes PATH should end with to WANT (nothing for unlink). On the
first wrong step prints "CASE: STEP: what differs" and exits 1.
"""
import os
import sys

case, path, want = sys.argv[1:4]
step = "open"

def fail(msg):
    print(f"{case}: {step}: {msg}")
    sys.exit(1)

def expect(got, model):
    if got != model:
        fail(f"got {len(got)} bytes, want {len(model)} (first difference at "
             f"{next((i for i, (a, b) in enumerate(zip(got, model)) if a != b), min(len(got), len(model)))})")

try:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    if case == "readback":
        step = "write, then pread"
        model = bytearray(os.urandom(100000))
        os.write(fd, model)
        expect(os.pread(fd, 200000, 0), model)
        step = "pwrite inside, then pread"
        patch = os.urandom(3000)
        os.pwrite(fd, patch, 50000)
        model[50000:53000] = patch
        expect(os.pread(fd, 200000, 0), model)
        step = "pwrite past the end, then fstat and pread"
        os.pwrite(fd, b"tail", 120000)
        model += bytes(20000) + b"tail"
        if os.fstat(fd).st_size != len(model):
            fail(f"size {os.fstat(fd).st_size}, want {len(model)}")
        expect(os.pread(fd, 200000, 0), model)
        step = "read by a second descriptor"
        with open(path, "rb") as f:
            expect(f.read(), model)
    elif case == "ftruncate":
        step = "write, ftruncate shorter"
        model = bytearray(os.urandom(10000))
        os.write(fd, model)
        os.ftruncate(fd, 100)
        del model[100:]
        if os.fstat(fd).st_size != 100:
            fail(f"size {os.fstat(fd).st_size}, want 100")
        expect(os.pread(fd, 20000, 0), model)
        step = "ftruncate longer"
        os.ftruncate(fd, 5000)
        model += bytes(4900)
        if os.fstat(fd).st_size != 5000:
            fail(f"size {os.fstat(fd).st_size}, want 5000")
        expect(os.pread(fd, 20000, 0), model)
        step = "write after ftruncate"
        os.pwrite(fd, b"end", 5000)
        model += b"end"
        expect(os.pread(fd, 20000, 0), model)
    elif case == "rename":
        step = "write, rename, write more"
        model = bytearray(os.urandom(7000))
        os.write(fd, model)
        os.rename(path, path + ".renamed")
        more = os.urandom(3000)
        os.write(fd, more)
        model += more
        expect(os.pread(fd, 20000, 0), model)
        step = "fstat, fsync after the rename"
        if os.fstat(fd).st_size != len(model):
            fail(f"size {os.fstat(fd).st_size}, want {len(model)}")
        os.fsync(fd)
        path += ".renamed"
    elif case == "unlink":
        step = "write, unlink"
        model = bytearray(os.urandom(5000))
        os.write(fd, model)
        os.unlink(path)
        if os.path.exists(path):
            fail("the name is still there")
        step = "write after the unlink"
        more = os.urandom(3000)
        os.write(fd, more)
        model += more
        step = "pread after the unlink"
        expect(os.pread(fd, 20000, 0), model)
        step = "fstat after the unlink"
        if os.fstat(fd).st_size != len(model):
            fail(f"size {os.fstat(fd).st_size}, want {len(model)}")
        step = "ftruncate after the unlink"
        os.ftruncate(fd, 100)
        expect(os.pread(fd, 20000, 0), model[:100])
        step = "fsync after the unlink"
        os.fsync(fd)
        model = None
    step = "close"
    os.close(fd)
    if model is None:
        if os.path.exists(path):
            fail("the unlinked name came back")
    else:
        step = "read back by name after close"
        with open(path, "rb") as f:
            expect(f.read(), model)
        with open(want, "wb") as f:
            f.write(model)
except OSError as e:
    fail(f"{e.strerror} (errno {e.errno})")
