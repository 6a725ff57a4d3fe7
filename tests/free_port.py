"""Free TCP ports on loopback, for servers started by the tests.

usage: free_port.py            prints a port nothing listens on
       free_port.py --busy N   exits 0 when something listens on port N
"""
import socket
import sys

if len(sys.argv) == 3 and sys.argv[1] == "--busy":
    with socket.socket() as s:
        sys.exit(0 if s.connect_ex(("127.0.0.1", int(sys.argv[2]))) == 0 else 1)
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])
