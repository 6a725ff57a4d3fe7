"""Writes a file and keeps it open, as a program killed mid-write would.

usage: hold_open.py PATH SIZE [fsync]

Writes SIZE random bytes to PATH (created or truncated), fsyncs it when
asked, prints "ready", then sleeps with the file open until killed.
"""
import os
import sys
import time

fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fd, os.urandom(int(sys.argv[2])))
if sys.argv[3:] == ["fsync"]:
    os.fsync(fd)
print("ready", flush=True)
time.sleep(60)
