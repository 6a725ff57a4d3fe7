"""A TCP proxy on loopback that adds latency, and can answer HTTP requests
with faults: the network of a remote table, for tests and benchmarks.

usage: delay_proxy.py --target HOST:PORT [--delay-ms MS] [--port N]
                      [--port-file FILE] [--faults FILE] [--log FILE]

Listens on 127.0.0.1 (on port N, or on a free port), prints the port on
a line of its own once it listens (and writes it to FILE with
--port-file, for a caller that runs it in the background), and forwards
every connection to HOST:PORT. It runs until it is killed.

Latency: every chunk of bytes read from either side is written to the
other side MS milliseconds (default 10) after it was read, in the order
read, so that a request and its answer cost a round trip of 2 x MS (20 ms
by default). A new connection costs one more round trip, as a TCP
handshake would: nothing the client sends on it reaches the target
earlier than 3 x MS after the connection was accepted. Bandwidth is not
limited.

HTTP faults (with --faults or --log; TLS then cannot pass, as the proxy
reads the client's requests: request line, headers, and a body of
Content-Length bytes). Before each request is forwarded, the proxy reads
FILE, if it exists: one line

    KIND COUNT [TEXT]

where KIND is one of
    503     answer "HTTP/1.1 503 Service Unavailable" (the connection
            stays open), instead of forwarding the request;
    reset   close the client's connection with a TCP reset;
    stall   never answer, and forward nothing more of that connection;
COUNT is how many requests to treat so (a number, or "always"), and TEXT,
if given, a string that the request line must contain (a path). After
each request treated, COUNT is lowered in FILE (FILE is removed at 0).
Write FILE with a rename (`echo "503 3" >F.tmp && mv F.tmp F`) so that it
is never read half-written. With --log, one line per request is
appended to FILE: what was done (forward, 503, reset, stall), the
method, the path and the Range header.

Example, 20 ms per round trip in front of a server on port 8080:

    python3 tests/delay_proxy.py --target 127.0.0.1:8080 \
        --port-file proxy.port &
    curl http://127.0.0.1:$(cat proxy.port)/t.sstable
"""
import argparse
import asyncio
import os
import socket
import struct
import sys

CHUNK = 256 * 1024
QUEUED = 64  # chunks in flight a direction before reading pauses


class Link:
    """One direction of a connection: bytes due at a time, written in order."""

    def __init__(self, writer, delay):
        self.writer = writer
        self.delay = delay
        self.queue = asyncio.Queue(QUEUED)
        self.not_before = 0.0

    def due(self):
        """When bytes read now are to be written."""
        return max(asyncio.get_running_loop().time() + self.delay,
                   self.not_before)

    async def put(self, item, due=None):
        """Queues bytes (or "eof", or "reset") to be written MS from now, or
        at DUE."""
        await self.queue.put((self.due() if due is None else due, item))

    async def run(self):
        loop = asyncio.get_running_loop()
        try:
            while True:
                due, item = await self.queue.get()
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if item == "eof":
                    if self.writer.can_write_eof():
                        self.writer.write_eof()
                    return
                if item == "reset":
                    reset(self.writer)
                    return
                self.writer.write(item)
                await self.writer.drain()
        except (ConnectionError, OSError):
            self.writer.transport.abort()


def reset(writer):
    """Closes a connection with a TCP reset rather than a FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                            struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()


class Faults:
    def __init__(self, path, log):
        self.path = path
        self.log = open(log, "a", buffering=1) if log else None

    def take(self, line):
        """What to do with a request whose request line is LINE."""
        if not self.path:
            return "forward"
        try:
            with open(self.path) as f:
                words = f.read().split(None, 2)
        except OSError:
            return "forward"
        if len(words) < 2 or words[0] not in ("503", "reset", "stall"):
            return "forward"
        kind, count = words[0], words[1]
        if len(words) == 3 and words[2].strip() not in line:
            return "forward"
        if count != "always":
            left = int(count) - 1
            if left < 0:
                return "forward"
            if left == 0:
                os.unlink(self.path)
            else:
                tmp = self.path + ".proxy"
                with open(tmp, "w") as f:
                    rest = " " + words[2].strip() if len(words) == 3 else ""
                    f.write("%s %d%s\n" % (kind, left, rest))
                os.replace(tmp, self.path)
        return kind

    def note(self, what, head):
        if self.log is None:
            return
        lines = head.decode("latin-1").split("\r\n")
        method, path = (lines[0].split(" ") + ["", ""])[:2]
        rng = "-"
        for h in lines[1:]:
            if h.lower().startswith("range:"):
                rng = h.split(":", 1)[1].strip()
        self.log.write("%s %s %s %s\n" % (what, method, path, rng))


def body_length(head):
    for h in head.decode("latin-1").split("\r\n")[1:]:
        if h.lower().startswith("content-length:"):
            return int(h.split(":", 1)[1])
    return 0


SERVICE_UNAVAILABLE = (b"HTTP/1.1 503 Service Unavailable\r\n"
                       b"Content-Type: text/plain\r\n"
                       b"Content-Length: 20\r\n\r\n"
                       b"service unavailable\n")


async def client_side(reader, up, down, faults):
    """Reads the client's bytes; forwards them, or requests one by one."""
    http = faults.path or faults.log
    buf = b""
    try:
        while True:
            data = await reader.read(CHUNK)
            if not data:
                break
            if not http:
                await up.put(data)
                continue
            buf += data
            while True:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    break
                head = buf[:end + 4]
                need = end + 4 + body_length(head)
                if len(buf) < need:
                    break
                request, buf = buf[:need], buf[need:]
                line = head.split(b"\r\n", 1)[0].decode("latin-1")
                what = faults.take(line)
                faults.note(what, head)
                # An answer of the proxy's own comes when the server's
                # would: the request's way there, and back.
                back = up.due() + down.delay
                if what == "forward":
                    await up.put(request)
                elif what == "503":
                    await down.put(SERVICE_UNAVAILABLE, back)
                elif what == "reset":
                    await down.put("reset", back)
                    return
                else:  # stall: wait for the client to give up
                    while await reader.read(CHUNK):
                        pass
                    await down.put("reset")
                    return
    except (ConnectionError, OSError):
        pass
    await up.put("eof")


async def server_side(reader, down):
    try:
        while True:
            data = await reader.read(CHUNK)
            if not data:
                break
            await down.put(data)
    except (ConnectionError, OSError):
        pass
    await down.put("eof")


async def serve(args, faults, client_reader, client_writer):
    loop = asyncio.get_running_loop()
    accepted = loop.time()
    try:
        up_reader, up_writer = await asyncio.open_connection(
            args.target_host, args.target_port)
    except OSError:
        reset(client_writer)
        return
    up = Link(up_writer, args.delay)
    up.not_before = accepted + 3 * args.delay  # the handshake's round trip
    down = Link(client_writer, args.delay)
    tasks = [asyncio.create_task(t) for t in (
        up.run(), down.run(), client_side(client_reader, up, down, faults),
        server_side(up_reader, down))]
    # The connection is over when the client's side has been closed (a
    # FIN passed on, or a reset) and the server's bytes are delivered.
    await asyncio.wait([tasks[1]])
    for t in tasks:
        t.cancel()
    for w in (client_writer, up_writer):
        w.transport.abort()


async def main():
    p = argparse.ArgumentParser(description="a delaying TCP proxy")
    p.add_argument("--target", required=True, help="HOST:PORT")
    p.add_argument("--delay-ms", type=float, default=10.0)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file")
    p.add_argument("--faults")
    p.add_argument("--log")
    args = p.parse_args()
    args.target_host, target_port = args.target.rsplit(":", 1)
    args.target_port = int(target_port)
    args.delay = args.delay_ms / 1000.0
    faults = Faults(args.faults, args.log)
    server = await asyncio.start_server(
        lambda r, w: serve(args, faults, r, w), "127.0.0.1", args.port,
        reuse_address=True)
    port = server.sockets[0].getsockname()[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.replace(tmp, args.port_file)
    print(port, flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(130)
