"""Sets an extended attribute, for where setfattr (package attr) is missing.

usage: set_xattr.py PATH NAME VALUE

Exits 1 with "setxattr: REASON" on stderr when the call fails.
"""
import os
import sys

try:
    os.setxattr(sys.argv[1], sys.argv[2], sys.argv[3].encode())
except OSError as e:
    sys.exit(f"setxattr: {e.strerror}")
