#!/usr/bin/env python3
"""The host's end of the Linux-guest network tests (tests/linux/test_network.sh).

  nethost.py serve DIR
      an HTTP server for the files in DIR and a "sink", both on 127.0.0.1
      with ports the kernel picks; prints "ready http=PORT sink=PORT" once
      both listen, then serves until it is killed.  A connection to the
      sink sends a line with a length, then that many bytes; the sink
      prints "sink: BYTES MD5 SECONDS MIB/S" (BYTES fewer than the length
      when the connection ended early), answers "BYTES MD5" and closes.
  nethost.py send PORT (--text TEXT | --file FILE) [--timeout S]
      connects to 127.0.0.1:PORT, sends TEXT (and a newline) or FILE, shuts
      its sending side, reads the answer to its end and prints
      "reply: ANSWER" (its first line); with --file also
      "sent: BYTES SECONDS MIB/S" (from connect to the end of the answer).
Exit status 1 with a message on stderr when a connection fails or times out.
"""

import argparse
import functools
import hashlib
import http.server
import socket
import socketserver
import sys
import threading
import time

BLOCK = 1 << 20


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, fmt, *args):
        sys.stderr.write("http: %s\n" % (fmt % args))


class SinkHandler(socketserver.BaseRequestHandler):
    """A line with the length, then that many bytes; the answer goes back on
    the open connection, so the sender knows all arrived before it closes
    (a guest that closed with data still in flight and powered off would
    lose it)."""

    def handle(self):
        sock = self.request
        head = b""
        while b"\n" not in head and len(head) < 64:
            data = sock.recv(64)
            if not data:
                break
            head += data
        line, _, first = head.partition(b"\n")
        try:
            length = int(line)
        except ValueError:
            print("sink: no length line", flush=True)
            return
        md5 = hashlib.md5(first)
        total = len(first)
        start = time.monotonic()
        # Whole blocks at a time (MSG_WAITALL): libslirp writes each of the
        # guest's segments on its own, and a read per segment costs more
        # than the transfer itself in the nested helper.
        buf = bytearray(BLOCK)
        view = memoryview(buf)
        while total < length:
            n = sock.recv_into(view, min(BLOCK, length - total), socket.MSG_WAITALL)
            if not n:
                break
            md5.update(view[:n])
            total += n
        secs = time.monotonic() - start
        rate = total / (1 << 20) / secs if secs > 0 else 0.0
        print("sink: %d %s %.3f %.2f" % (total, md5.hexdigest(), secs, rate), flush=True)
        sock.sendall(b"%d %s\n" % (total, md5.hexdigest().encode()))


class ThreadingTCPServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True


def serve(args):
    handler = functools.partial(QuietHandler, directory=args.dir)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    sink = ThreadingTCPServer(("127.0.0.1", 0), SinkHandler)
    for srv in (httpd, sink):
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    print("ready http=%d sink=%d" % (httpd.server_address[1], sink.server_address[1]), flush=True)
    threading.Event().wait()


def send(args):
    start = time.monotonic()
    total = 0
    try:
        with socket.create_connection(("127.0.0.1", args.port), timeout=args.timeout) as s:
            if args.text is not None:
                s.sendall(args.text.encode() + b"\n")
            else:
                with open(args.file, "rb") as f:
                    total = s.sendfile(f)
            s.shutdown(socket.SHUT_WR)
            reply = b""
            while True:
                data = s.recv(65536)
                if not data:
                    break
                reply += data
    except OSError as e:
        sys.exit("nethost: 127.0.0.1:%d: %s" % (args.port, e))
    secs = time.monotonic() - start
    line = reply.decode(errors="replace").splitlines()
    print("reply: %s" % (line[0] if line else ""))
    if args.file is not None:
        rate = total / (1 << 20) / secs if secs > 0 else 0.0
        print("sent: %d %.3f %.2f" % (total, secs, rate))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("dir")
    s.set_defaults(func=serve)
    s = sub.add_parser("send")
    s.add_argument("port", type=int)
    what = s.add_mutually_exclusive_group(required=True)
    what.add_argument("--text")
    what.add_argument("--file")
    s.add_argument("--timeout", type=float, default=600)
    s.set_defaults(func=send)
    args = p.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
