"""Checks the size-query protocol of getxattr and listxattr on a file.

usage: xattr_query.py PATH NAME VALUE

Calls lgetxattr and llistxattr through libc, as programs written in C do:
with size 0 (the call answers the size needed), with a buffer one byte
too small (ERANGE), with a buffer of the right size (the bytes), and
lgetxattr of a name the file does not have (ENODATA). NAME must have
the value VALUE (non-empty) and be among the names listed. Prints one line
per problem and exits 1 if there was any; prints nothing and exits 0
otherwise.
"""
import ctypes
import errno
import sys

libc = ctypes.CDLL(None, use_errno=True)
libc.lgetxattr.argtypes = [ctypes.c_char_p, ctypes.c_char_p,
                           ctypes.c_void_p, ctypes.c_size_t]
libc.lgetxattr.restype = ctypes.c_ssize_t
libc.llistxattr.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t]
libc.llistxattr.restype = ctypes.c_ssize_t

path, name, value = (a.encode() for a in sys.argv[1:4])
problems = []


def call(fn, *args):
    """The call's result and errno (0 when it succeeded)."""
    ctypes.set_errno(0)
    n = fn(*args)
    return n, (ctypes.get_errno() if n < 0 else 0)


def expect(what, got, want):
    if got != want:
        problems.append(f"{what}: got {got!r}, want {want!r}")


# getxattr: size query, too small, exact.
n, err = call(libc.lgetxattr, path, name, None, 0)
expect("getxattr size query", (n, err), (len(value), 0))
buf = ctypes.create_string_buffer(len(value))
n, err = call(libc.lgetxattr, path, name, buf, len(value) - 1)
expect("getxattr one byte short", (n, errno.errorcode.get(err)),
       (-1, "ERANGE"))
n, err = call(libc.lgetxattr, path, name, buf, len(value))
expect("getxattr value", (n, buf.raw[:max(n, 0)]), (len(value), value))
n, err = call(libc.lgetxattr, path, b"user.no-such-attribute", buf,
              len(value))
expect("getxattr of a missing name", (n, errno.errorcode.get(err)),
       (-1, "ENODATA"))

# listxattr: size query, too small, exact.
n, err = call(libc.llistxattr, path, None, 0)
if n <= 0:
    problems.append(f"listxattr size query: got {n}, errno {err}")
else:
    names = ctypes.create_string_buffer(n)
    m, err = call(libc.llistxattr, path, names, n - 1)
    expect("listxattr one byte short", (m, errno.errorcode.get(err)),
           (-1, "ERANGE"))
    m, err = call(libc.llistxattr, path, names, n)
    expect("listxattr length", m, n)
    listed = names.raw[:max(m, 0)].split(b"\0")
    if name not in listed:
        problems.append(f"listxattr: {name!r} not in {listed!r}")

for p in problems:
    print(p)
sys.exit(1 if problems else 0)
