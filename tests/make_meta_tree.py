"""Makes a tree with everything a table with metadata must keep.

usage: make_meta_tree.py ROOT

ROOT (created) holds: an executable, a 0600 file, a setuid and a setgid
file, a setgid and a sticky directory, empty directories, symlinks
(relative, absolute, dangling, to a directory), hard links (three names
in one directory, two in two others), user.* extended attributes on
files and a directory, a 3 MiB file, a FIFO, and, when run as root, a
file and a symlink owned by 1234:5678. Every entry gets a modification
time with nanoseconds (directories last, deepest first, so that making
their children does not change them). Prints "xattrs: no" when the file
system refuses user.* attributes (the tree then has none), else
"xattrs: yes".
"""
import os
import sys

root = sys.argv[1]
os.mkdir(root)


def path(rel):
    return os.path.join(root, rel)


def put(rel, data, mode=0o644):
    with open(path(rel), "wb") as out:
        out.write(data)
    os.chmod(path(rel), mode)


for d in ("bin", "a", "b", "links", "empty", "deep", "deep/er",
          "deep/er/empty", "shared", "tmp", "attrs"):
    os.mkdir(path(d))
os.chmod(path("shared"), 0o2775)
os.chmod(path("tmp"), 0o1777)
os.chmod(path("deep/er"), 0o750)

put("bin/run.sh", b"#!/bin/sh\necho hello\n", 0o755)
put("secret", b"private\n", 0o600)
put("readonly", b"read only\n", 0o444)
put("big", os.urandom(3 << 20))
put("a/h1", b"two names in two directories\n")
os.link(path("a/h1"), path("b/h2"))
put("links/one", b"three names\n", 0o640)
os.link(path("links/one"), path("links/two"))
os.link(path("links/one"), path("links/three"))
os.symlink("one", path("links/rel"))
os.symlink("/etc/hostname", path("abs"))
os.symlink("no/such/file", path("dangling"))
os.symlink("bin", path("dirlink"))
os.mkfifo(path("fifo"))

if os.geteuid() == 0:
    put("owned", b"owned by 1234:5678\n", 0o640)
    os.chown(path("owned"), 1234, 5678)
    os.symlink("owned", path("owned-link"))
    os.chown(path("owned-link"), 1234, 5678, follow_symlinks=False)
# After any chown, which clears them.
put("bin/suid", b"setuid\n", 0o755)
os.chmod(path("bin/suid"), 0o4755)
put("bin/sgid", b"setgid\n", 0o755)
os.chmod(path("bin/sgid"), 0o2755)

put("attrs/file", b"with attributes\n")
xattrs = True
try:
    os.setxattr(path("attrs/file"), "user.comment", b"a comment")
    os.setxattr(path("attrs/file"), "user.bin", b"\x00\x01\xff")
    os.setxattr(path("attrs/file"), "user.empty", b"")
    os.setxattr(path("attrs"), "user.dir", b"on a directory")
    os.setxattr(path("links/one"), "user.link", b"shared by three names")
except OSError:
    xattrs = False
    for p, names in ((path("attrs/file"), os.listxattr(path("attrs/file"))),
                     (path("attrs"), os.listxattr(path("attrs")))):
        for n in names:
            os.removexattr(p, n)

# Times with nanoseconds: every entry but the FIFO, then the directories
# deepest first.
ns = 1_600_000_000_123_456_789
dirs = []
for top, subdirs, files in os.walk(root):
    for name in files + [d for d in subdirs
                         if os.path.islink(os.path.join(top, d))]:
        p = os.path.join(top, name)
        ns += 1_000_000_007
        os.utime(p, ns=(ns, ns), follow_symlinks=False)
    dirs.append(top)
for d in sorted(dirs, key=lambda d: -d.count(os.sep)):
    ns += 3_000_000_011
    os.utime(d, ns=(ns, ns))
print("xattrs:", "yes" if xattrs else "no")
